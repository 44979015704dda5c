/* Builders for replicated commands (docs/cluster.md "Commands").
 *
 * These run where a write enters the cluster (the leader, or the node that
 * forwards to it), never inside apply: they stamp the wall clock and a
 * unique req_id into the command so that apply stays deterministic.
 *
 * Threads: any (the req_id prefix is drawn once under pthread_once, the
 * counter is atomic). */
#ifndef MS_RAFT_COMMANDS_H
#define MS_RAFT_COMMANDS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* A unique 128-bit id as 32 lowercase hex characters + NUL: 64 random bits
 * drawn once per process, then a 64-bit counter. 0 or -EIO. */
int ms_cmd_req_id(char out[33]);

/* {"v":1, "op":op, "req_id":<unique>, "ts":<wall clock ms>, "args":args}.
 * Steals args (NULL means {}). Returns a new reference, NULL on error. */
json_t *ms_cmd_new(const char *op, json_t *args);
/* Same with an explicit req_id and ts (retries keep the original req_id;
 * tests need fixed values). Steals args. */
json_t *ms_cmd_new_at(const char *op, json_t *args, const char *req_id, int64_t ts_ms);

/* Compact JSON text of a command (malloc'ed, *len bytes without the NUL),
 * NULL on error. Borrows cmd. */
char *ms_cmd_encode(const json_t *cmd, size_t *len);

/* The command that creates the newest schema this binary knows; the
 * leader submits it (after its barrier) when the state has no schema, and
 * schema_upgrade when the state is older than the binary. New references. */
json_t *ms_cmd_schema_init(void);
json_t *ms_cmd_schema_upgrade(void);

#endif
