/* The node's cluster membership and its use of the replicated state
 * (docs/cluster.md "How a node uses the state").
 *
 * With listen.raft = 0 nothing here runs: the node is a single server and
 * its stream directory drives the streams directly (as before the cluster).
 * Otherwise ms_cluster_start() creates the ms_fsm_t and the ms_raft_t on
 * the control loop, joins or bootstraps, and from then on:
 *  - stream files are applied to the state (stream_upsert, added "manual"),
 *  - every node runs exactly the streams the state assigns to it
 *    (reconciler.c): primary == this node -> active, else suspended,
 *  - every node reports its load about every second (server_report),
 *  - the leader marks servers without a fresh report "down" and assigns
 *    unassigned streams (or those of down servers) to the least-loaded
 *    healthy server,
 *  - REST calls are executed here (ms_cluster_post from the HTTP threads).
 *
 * Threads: ms_cluster_start/stop/ready and the loader hooks on the control
 * loop (main thread); ms_cluster_enabled and ms_cluster_post from any
 * thread. */
#ifndef MS_NODE_CLUSTER_H
#define MS_NODE_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "node/config.h"
#include "node/streams.h"

/* A REST call handed from an HTTP thread to the control loop. The HTTP side
 * fills the input part, the loop fills the output part and calls done(job)
 * on the loop thread exactly once. The job belongs to the HTTP side. */
typedef struct ms_cluster_job {
    /* input */
    char method[8];
    char res[16];       /* "streams", "servers", "cluster" */
    char id[128];       /* {id}/{name} or internal call name, "" when absent */
    char action[16];    /* restart | enable | disable, "" when absent */
    int consistent;     /* ?consistent=1 */
    int internal;       /* authenticated by the node secret (another node) */
    uint64_t from_node; /* X-MS-Node-Id of an internal call */
    char req_id[65];    /* X-MS-Req-Id, "" when absent */
    /* set by the loop: the command req_id for req_id (hash of the id and
     * of the request, docs/api.md "Retries") and whether the state has
     * already applied it (a retry) */
    char req_key[65];
    int req_seen;
    char *body; /* borrowed until done, may be NULL */
    size_t body_len;
    /* output */
    unsigned status; /* HTTP status */
    json_t *reply;   /* reply body (owned by the job) */
    int retry_after; /* seconds for a 503, 0 = none */
    int proceed;     /* 1: answered by the normal local handler (after a barrier) */
    void (*done)(struct ms_cluster_job *job);
    void *ud;
    struct ms_cluster_job *next; /* queue link */
} ms_cluster_job_t;

/* Starts the cluster on loop (borrowed; cfg borrowed until stop). Returns 0
 * (also when listen.raft is 0: then ms_cluster_enabled() stays 0) or a
 * negative errno. */
int ms_cluster_start(uv_loop_t *loop, const ms_node_cfg_t *cfg);
/* 1 when the node runs with the replicated state. Any thread. */
int ms_cluster_enabled(void);
/* 1 once the initial stream files are in the state and this node's streams
 * are applied (start waits for it, bounded, before serving HTTP). */
int ms_cluster_ready(void);
/* Graceful stop: pending calls answered 503, the streams this node is the
 * primary of handed to their backups (through the leader, bounded 3 s),
 * leadership handed over (ms_raft_stop), handles closed; cb(ud) on the
 * loop when done. Control loop. */
void ms_cluster_stop(void (*cb)(void *ud), void *ud);
/* Frees what is left after stop's cb (or when start failed). */
void ms_cluster_free(void);

/* Queues job for the control loop. Any thread. Returns 0 or -ESHUTDOWN. */
int ms_cluster_post(ms_cluster_job_t *job);

/* Loader hooks (ms_loader_t.apply/remove) in cluster mode: the stream file
 * becomes a stream_upsert / stream_remove written to the state (retried
 * until a leader accepts it). Control loop only. */
int ms_cluster_loader_apply(const ms_stream_cfg_t *cfg, ms_run_state_t desired);
int ms_cluster_loader_remove(const char *uid);

#endif
