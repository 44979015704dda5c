/* One cluster member: libraft over our authenticated TCP transport
 * (raft/transport.h) and raft_uv's disk I/O, its log and snapshots
 * under <data_dir>/raft, driving an ms_fsm_t (docs/cluster.md). This is
 * the only module that calls libraft for real.
 *
 * - Pre-vote on, election timeout 500 ms, heartbeat 50 ms, reconnect
 *   delay 100 ms (defaults; see ms_raft_cfg_t).
 * - Bootstrap: with cfg.join == 0 and no raft state in data_dir, the node
 *   bootstraps a one-voter cluster (one node alone is a working cluster);
 *   with state it restarts from it. With cfg.join != 0 it starts empty and
 *   waits until a leader adds it (ms_raft_add + ms_raft_assign there).
 * - The node id is persistent: <data_dir>/raft/node-id (decimal), created
 *   at first start from a random 63-bit value.
 * - After winning an election the node appends a barrier; only when it is
 *   applied does the node act as leader (cfg.on_leader(ud, 1)), and then it
 *   first submits schema_init / schema_upgrade when the state's schema is
 *   older than this binary's.
 * - ms_raft_stop() hands leadership to another voter first (raft_transfer).
 * - Every raft connection starts with a handshake that proves both nodes
 *   hold the cluster secret (util/raft_handshake.h) before libraft sees it.
 *
 * The process must ignore SIGPIPE (raft_uv writes to peers' sockets).
 *
 * Threads: everything runs on the control loop given to ms_raft_new();
 * every function must be called on that loop's thread. */
#ifndef MS_RAFT_NODE_H
#define MS_RAFT_NODE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "raft/fsm.h"

typedef struct ms_raft ms_raft_t;

enum { MS_RAFT_STANDBY = 0, MS_RAFT_VOTER = 1, MS_RAFT_SPARE = 2 }; /* raft roles */

typedef struct {
    const char *data_dir; /* required; raft files in <data_dir>/raft */
    const char *address;  /* required; "host:port" advertised to peers */
    const char *bind;     /* optional "a.b.c.d:port" to listen on (same port) */
    /* The cluster secret; the raft transport's handshake key is derived from
     * it (raft/transport.h). NULL or "": a random key, so this node talks
     * raft with nobody else. Not kept. */
    const char *secret;
    int join;                     /* 1: never bootstrap, wait to be added */
    unsigned election_timeout_ms; /* 0: 500 */
    unsigned heartbeat_ms;        /* 0: 50 */
    unsigned connect_retry_ms;    /* 0: 100 */
    unsigned snapshot_threshold;  /* 0: 1024 entries */
    unsigned snapshot_trailing;   /* 0: 128 entries */
    /* Leader readiness changes: ready = 1 after the post-election barrier,
     * 0 when leadership is lost. May be NULL. */
    void (*on_leader)(void *ud, int ready);
    void *ud;
} ms_raft_cfg_t;

/* Error codes beyond the usual ones:
 * -EREMOTE      this node is not the leader (forward to ms_raft_info's leader)
 * -ECONNABORTED leadership was lost before the entry committed: the
 *               command may still apply later; retry with the same req_id
 * -ECANCELED    the node is stopping */

/* Creates the node (nothing runs yet). Borrows loop and fsm (both must
 * outlive the node); copies cfg strings. Creates <data_dir>/raft and the
 * node id file. Returns 0 or a negative errno. */
int ms_raft_new(uv_loop_t *loop, const ms_raft_cfg_t *cfg, ms_fsm_t *fsm, ms_raft_t **out);
/* Bootstraps when needed (see above) and starts raft: loads the snapshot
 * and log into the fsm, listens on the raft port. 0 or negative errno. */
int ms_raft_start(ms_raft_t *r);

/* Result of a submitted command: status 0 and the apply result (borrowed,
 * incref to keep; it may itself be a rejection {"error":...}), or a
 * negative errno and result NULL. */
typedef void (*ms_raft_submit_cb)(void *ud, int status, json_t *result);
/* Appends a command (JSON text from raft/commands.h, copied) to the log.
 * Only on the leader (-EREMOTE otherwise). cb fires exactly once, on the
 * loop, unless this returns an error. */
int ms_raft_submit(ms_raft_t *r, const char *json, size_t len, ms_raft_submit_cb cb, void *ud);

/* Waits until every entry before it is applied (read-your-writes on the
 * leader). cb(ud, 0 or negative errno). Only on the leader. */
int ms_raft_barrier(ms_raft_t *r, void (*cb)(void *ud, int status), void *ud);

/* Membership changes (on the leader): add a server as spare, then assign
 * it a role (MS_RAFT_VOTER / MS_RAFT_STANDBY); remove. Up to 5 voters is
 * the policy of the caller. cb(ud, 0 or negative errno). */
int ms_raft_add(ms_raft_t *r, uint64_t id, const char *address, void (*cb)(void *ud, int status),
                void *ud);
int ms_raft_assign(ms_raft_t *r, uint64_t id, int role, void (*cb)(void *ud, int status), void *ud);
int ms_raft_remove(ms_raft_t *r, uint64_t id, void (*cb)(void *ud, int status), void *ud);

typedef struct {
    uint64_t id;
    const char *address;        /* borrowed */
    const char *state;          /* "follower" | "candidate" | "leader" | "unavailable" */
    int leader_ready;           /* leader and its post-election barrier applied */
    uint64_t leader_id;         /* 0 when unknown */
    const char *leader_address; /* borrowed, NULL when unknown */
    uint64_t term, commit_index, last_applied, last_index;
} ms_raft_info_t;
void ms_raft_info(ms_raft_t *r, ms_raft_info_t *out);
/* GET /api/v1/cluster: {id, address, state, leader:{id,address}|null, term,
 * commit_index, last_applied, members:[{id,address,role}], voters,
 * checksum, schema}. New reference. */
json_t *ms_raft_info_json(ms_raft_t *r);
uint64_t ms_raft_id(const ms_raft_t *r);
/* Role of server id in the raft configuration this node holds
 * (MS_RAFT_VOTER, MS_RAFT_STANDBY or MS_RAFT_SPARE), -1 when it is not in
 * it or raft is not started. Reads libraft's configuration directly: no
 * JSON, no state checksum (the control loop asks several times a second). */
int ms_raft_member_role(ms_raft_t *r, uint64_t id);
int ms_raft_is_leader(ms_raft_t *r); /* leader_ready */
/* On a follower that knows its leader: the monotonic time (ms_mono_ms()
 * base) at which it last heard from that leader (libraft resets its
 * election timer on each AppendEntries of the current leader, heartbeats
 * included: Raft paper section 5.2), and *leader_id set to it. 0 (and
 * *leader_id 0) otherwise: leader, candidate, no leader known, not
 * started. leader_id may be NULL. */
int64_t ms_raft_leader_contact_ms(ms_raft_t *r, uint64_t *leader_id);

/* Graceful stop: transfer leadership (when leader with another voter),
 * then close raft and its I/O. cb fires on the loop when every handle is
 * closed; then ms_raft_free() may be called. Pending submissions complete
 * with an error. */
void ms_raft_stop(ms_raft_t *r, void (*cb)(void *ud), void *ud);
/* Frees a node that was never started or whose stop cb has fired. */
void ms_raft_free(ms_raft_t *r);

#endif
