/* The replicated state machine: cluster state in an in-memory SQLite
 * database, changed only by versioned JSON commands (docs/cluster.md
 * "Commands", "Tables").
 *
 * A command is {"v":1, "op":"...", "req_id":"<hex>", "ts":<unix ms>,
 * "args":{...}}. Each op is a whitelisted, deterministic change: apply never
 * reads the clock or random numbers (times and ids are stamped into the
 * command by the leader or the forwarding node, see raft/commands.h), so
 * every node that applies the same sequence of commands holds byte-equal
 * state and the same ms_fsm_checksum().
 *
 * A command whose req_id was already applied is not applied again: apply
 * returns the stored result of the first application (so a client retry
 * after a lost leader gets the original answer). A command that is
 * malformed or breaks a rule (unknown op, missing key, unknown server...)
 * is deterministically rejected: it is still "applied" (it counts in the
 * dedup table) and returns an error result; it never crashes the node.
 *
 * Ownership: the caller owns the ms_fsm_t. Threads: one thread at a time
 * (the control loop in the node, any single thread in tests); the object
 * holds no locks. */
#ifndef MS_RAFT_FSM_H
#define MS_RAFT_FSM_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Command format version understood by this binary. A command with a
 * higher "v" is not rejected but refused with -EPROTO (the node stops
 * applying rather than diverge from newer nodes: upgrade the binary). */
#define MS_FSM_CMD_VERSION 1
/* Newest schema version this binary can build (schema_init/upgrade). */
#define MS_FSM_SCHEMA_LATEST 3
/* How many applied req_ids the dedup table keeps (by apply sequence). */
#define MS_FSM_DEDUP_KEEP 10000
/* Largest accepted command (bytes of JSON). */
#define MS_FSM_CMD_MAX (1024 * 1024)

typedef struct ms_fsm ms_fsm_t;

/* Called after every applied command (also rejected and deduplicated ones)
 * with the command's req_id (NULL when the command had none usable), its op
 * (NULL when unparsable) and the result (borrowed: incref to keep). */
typedef void (*ms_fsm_apply_hook_t)(void *ud, const char *req_id, const char *op, json_t *result);

/* Creates an empty state (no schema: the first command of a cluster is
 * schema_init). Returns 0 or -ENOMEM / -EIO. */
int ms_fsm_new(ms_fsm_t **out);
/* NULL is a no-op. */
void ms_fsm_free(ms_fsm_t *fsm);

/* Sets (or clears with NULL) the hook described above. */
void ms_fsm_set_apply_hook(ms_fsm_t *fsm, ms_fsm_apply_hook_t hook, void *ud);

/* Applies one command (len bytes of JSON, borrowed; need not be
 * NUL-terminated). On 0, *result (when result is not NULL) receives a new
 * reference: {"ok":true, ...op specific...} or
 * {"error":"reason", "field":"key", "status":400|404|409} for a rejected
 * command; a deduplicated command also carries "duplicate":true.
 * Returns a negative errno only when the node must not continue applying:
 * -EPROTO (command or schema version newer than this binary), -ENOMEM,
 * -EIO (SQLite failure). */
int ms_fsm_apply(ms_fsm_t *fsm, const void *json, size_t len, json_t **result);

/* Number of commands applied (including rejected and duplicate ones). */
uint64_t ms_fsm_applied(const ms_fsm_t *fsm);
/* Process-local counter of applied commands that changed the state other
 * than load reports (server_report), plus snapshot restores: a reader that
 * remembers it can skip work while nothing but load figures changed. */
uint64_t ms_fsm_changes(const ms_fsm_t *fsm);
/* Schema version of the state (0 before schema_init). */
int ms_fsm_schema_version(const ms_fsm_t *fsm);
/* Successful ms_fsm_snapshot() / ms_fsm_restore() calls since ms_fsm_new()
 * (process-local counters for diagnostics; not part of the state). Same
 * thread as the other calls. */
uint64_t ms_fsm_snapshot_count(const ms_fsm_t *fsm);
uint64_t ms_fsm_restore_count(const ms_fsm_t *fsm);

/* SHA-256 (hex, NUL-terminated) of the canonical dump of the whole state:
 * every table in name order, its CREATE statement, then its rows ordered by
 * every column, each value type-tagged and length-prefixed (docs/cluster.md
 * "Checksum"). Equal on every node at the same applied command.
 * Returns 0 or -ENOMEM / -EIO. */
int ms_fsm_checksum(ms_fsm_t *fsm, char out[65]);
/* The canonical dump itself (for debugging a checksum mismatch), a new
 * malloc'ed buffer in *out (*len bytes). */
int ms_fsm_dump(ms_fsm_t *fsm, char **out, size_t *len);

/* Snapshot: *out receives a new buffer allocated with alloc (so raft can
 * own it: pass raft_malloc), made of an 16-byte header ("MSFSM001" + u64
 * big-endian length) and the sqlite3_serialize image. */
int ms_fsm_snapshot(ms_fsm_t *fsm, void *(*alloc)(size_t), void **out, size_t *len);
/* Replaces the whole state with a snapshot image (borrowed). The old state
 * stays in place when the image is invalid (-EINVAL) or on -ENOMEM. */
int ms_fsm_restore(ms_fsm_t *fsm, const void *data, size_t len);

/* Read access for local queries (API, reconciler): the SQLite handle,
 * borrowed, valid until the next ms_fsm_restore() or ms_fsm_free(). Reads
 * only: every write goes through ms_fsm_apply(). */
struct sqlite3 *ms_fsm_db(ms_fsm_t *fsm);

/* Convenience reads used by the API and the tests. Each returns a new
 * reference or NULL when absent. */
json_t *ms_fsm_get_stream(ms_fsm_t *fsm, const char *uid_or_name);
json_t *ms_fsm_list(ms_fsm_t *fsm, const char *table); /* "streams", "servers",
                                                           "groups", "clusters",
                                                           "archive" */

#endif
