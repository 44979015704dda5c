/* Internals of the node's cluster part (node/cluster.h is its public face;
 * docs/cluster.md "How a node uses the state"). Only the files of node/cluster/
 * include this header, and node/tests/test_leader.c (through ms_cl.seam).
 *
 * Files, lowest first; a file calls only the files above it in this list
 * (calls go downward):
 *  - state.c       the context ms_cl, ms_cluster_enabled/ready, the state
 *                  cache and its cached reads (streams, servers, groups,
 *                  clusters, settings, archive), server lookups, settings,
 *                  placement inputs (cl_server_healthy, cl_pick_server,
 *                  cl_placement_opts, the once-per-change placement log)
 *  - reconcile.c   applying the state to this node: the reconciler, the
 *                  placement and archive views the HTTP threads read
 *  - write.c       the write path: a command submitted on the leader or
 *                  forwarded to it (thread pool), retried until its deadline,
 *                  answered after its local apply
 *  - reports.c     this node's server row and load reports (server_upsert,
 *                  server_report), its archive ranges
 *  - leader.c      failure detection (report ages observed by every node,
 *                  probes of silent servers) and the leader's duties
 *                  (marking servers down, placement, recovery)
 *  - jobs.c        REST job helpers (replies, bodies, req_id commands) and
 *                  the proxy of a REST call to another node (thread pool)
 *  - rest_streams.c  /streams: put, patch, actions, transfer
 *  - rest_servers.c  /servers: get, put, drain, delete
 *  - rest_cluster.c  /cluster and the named tables, req_id checks, the job
 *                  queue and its dispatch (ms_cluster_post)
 *  - join.c        joins over UDP on the raft port number
 *  - lifecycle.c   the loop hooks (tick), the loader hooks, start, ready,
 *                  graceful stop (handover) and free
 *
 * Threads: everything runs on the control loop except ms_cluster_post and
 * ms_cluster_enabled (any thread) and the *_work functions of write.c,
 * jobs.c, rest_streams.c and leader.c (libuv thread pool: blocking HTTP to
 * another node; they touch only their own request and ms_cl.cfg). */
#ifndef MS_NODE_CLUSTER_INT_H
#define MS_NODE_CLUSTER_INT_H

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <uv.h>

#include "node/cluster.h"
#include "node/placement.h"
#include "node/reconciler.h"
#include "raft/fsm.h"
#include "raft/node.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/kdf.h"
#include "util/log.h"
#include "util/nodeauth.h"
#include "util/replay.h"

#define CTX               ms_cl.ctx
#define TICK_MS           250
#define TICK_EARLY_MS     10 /* tick_run: a raft tick this close to TICK_MS will do */
#define TICK_LATE_MS      60 /* the fallback timer: more than one raft heartbeat late */
#define RECONCILE_FULL_MS 2000
#define REPORT_MS         500
/* The leader's own report: on a notable change of its load, else at least
 * this often (its liveness is raft's: leader_report_due, cl_observe_reports) */
#define LEADER_REPORT_MAX_MS 5000
#define DOWN_AFTER_MS        1500 /* default; setting down_after_ms */
/* A new leader marks nobody down before it has led this long: live nodes'
 * reports held up by the election land within it (they are retried every
 * 50 ms). Ages themselves are observed by every node (cl_observe_reports). */
#define LEADER_SETTLE_MS 700
#define ARCHIVE_EVERY_MS 5000 /* publish this node's archive ranges (when changed) */
#define API_DEADLINE_MS  4000
#define FWD_TIMEOUT_MS   3000
#define JOIN_EVERY_MS    500
#define JOIN_REPLAY_CAP  4096 /* joins accepted within 60 s, all joiners together */
#define MAX_VOTERS       5
#define HANDOVER_MS      3000 /* graceful stop: bound on handing primaries to backups */
/* Draining (POST /servers/{name}/drain, docs/cluster.md "Draining a
 * server"): the cluster setting "drain.{name}" is true while the server is
 * drained; placement (node/placement.c) reads it as the row's "draining".
 * The key must be a valid setting name: at most 63 characters. */
#define DRAIN_PREFIX   "drain."
#define DRAIN_NAME_MAX (63 - (int)(sizeof DRAIN_PREFIX - 1))
#define OBS_MAX        64 /* servers in the observed ages and the probes */

typedef void (*wop_cb)(void *ud, unsigned status, json_t *result);

/* One write on its way to the leader. */
typedef struct wop {
    char *text;
    size_t len;
    int64_t deadline; /* mono ms, 0 = until stop */
    wop_cb cb;
    void *ud;
    uv_timer_t timer;
    uv_work_t work;
    char base[300]; /* leader http base while forwarding */
    int fwd_rc, fwd_status;
    char *fwd_resp;
    uint64_t wait_index; /* wait for the local apply of this raft index */
    int64_t wait_until;
    unsigned st;
    json_t *res;
    struct wop *next_wait;
    int leader_only; /* a leader's decision: dropped, never forwarded, when deposed */
} wop_t;

/* A proxied REST call (to the leader). */
typedef struct proxy {
    ms_cluster_job_t *job;
    char method[8], path[512];
    char base[300];
    int64_t deadline;
    uv_timer_t timer;
    uv_work_t work;
    int rc, status;
    char *resp;
} proxy_t;

/* One cached list of the state (state.c "Cached reads"). */
typedef struct {
    json_t *v;
    uint64_t seq, changes;
    int valid;
} cached_t;

/* The cluster part's state: one per process (there is one control loop),
 * defined in state.c as ms_cl. Control loop only, except enabled (atomic)
 * and the job queue (qmu). */
typedef struct {
    uv_loop_t *loop;
    const ms_node_cfg_t *cfg;
    char ctx[MS_NAME_MAX + 32];
    ms_fsm_t *fsm;
    ms_raft_t *raft;
    ms_reconciler_t *rec;
    atomic_int enabled;
    int started, stopping, ready;
    pthread_mutex_t qmu;
    int qclosed;
    ms_cluster_job_t *qhead, *qtail;
    uv_async_t async;
    uv_timer_t tick;
    uv_check_t check;
    uv_udp_t udp;
    int udp_up;
    char udp_mem[2048];      /* join.c: the receive buffer of udp (one datagram at a time) */
    uint64_t upsert_same_at; /* reports.c: ms_fsm_applied() when this node's row last matched */
    uint64_t seen_applied;
    uint64_t seen_changes; /* ms_fsm_changes() at the last reconcile */
    int reconciled;
    int64_t last_reconcile;
    int64_t last_report, last_join, leader_since, last_duty;
    uint64_t last_tick;   /* uv_now of the last tick_run */
    uint64_t prev_leader; /* raft id of the last leader seen while not leading */
    int report_busy, upsert_busy, duty_busy;
    int archive_busy, archive_force;
    int64_t last_archive, reindex_seen;
    int loader_pending;
    int sweep_pending; /* sweep_files() to do (start, reload) */
    int outstanding;   /* works in the thread pool, wops and proxies alive */
    char raft_addr[300], http_base[300];
    int join_target;
    char join_redirect[300];
    /* joins (docs/security.md "Joins and node-to-node HTTP") */
    int join_keyed;                   /* join_key derived (a secret is set) */
    uint8_t join_key[MS_KDF_KEY_LEN]; /* ms_kdf_derive(secret, MS_KDF_JOIN) */
    ms_replay_t *join_replay;         /* nonces of the joins accepted */
    ms_join_pending_t join_pend;      /* the joins this node sent */
    uint64_t join_ignored;            /* datagrams refused (bad MAC, stale, replay...) */
    ms_ratelimit_t join_rl;
    wop_t *waiting;
    double cpu_pct;
    int64_t cpu_last_us, cpu_wall_last;
    void (*stop_cb)(void *);
    void *stop_ud;
    int handing_over, handover_pending, handover_timer_up;
    char removing[MS_NAME_MAX]; /* DELETE /servers/{name} under way (leader): place nothing there */
    uv_timer_t handover_timer;
    /* state.c: the cached lists */
    struct {
        cached_t streams, servers, groups, clusters, settings, archive;
    } cache;
    /* state.c: the leader logs why a stream is unplaced (WARN), or the note
     * of how it was placed (a reserved stream without a cluster in its
     * group: WARN), once per change of that text: {uid: text} of what was
     * logged last. */
    json_t *placement_logged;
    /* reports.c: what the last written load report said (cl_report()): the
     * leader compares its load with it and writes only on a notable
     * change. */
    struct {
        int valid;
        int streams, active, clients, kbps;
        int64_t total, used;
        int64_t at;    /* mono ms of that write */
        unsigned nrep; /* reports written (the HLS hints ride every 4th) */
    } rep;
    /* leader.c: report ages observed on this node (cl_observe_reports()) */
    struct {
        char name[64];
        int64_t last_report_ms, seen_mono;
    } obs[OBS_MAX];
    int nobs;
    /* leader.c: probes of servers silent since before this node's
     * election (probe_silent()) */
    struct {
        char name[64];
        int64_t term_since; /* leader_since of the leadership that probed it */
        int refused;
    } probe[OBS_MAX];
    /* leader.c: what the last run of cl_leader_duties() decided on */
    struct {
        ms_buf_t sig;     /* inputs of the last full run */
        int quiet;        /* that run wrote nothing and was not settling */
        int alone;        /* that run saw no server but this one, no removal under way */
        uint64_t applied; /* ms_fsm_applied() at that run */
        uint64_t runs;    /* full runs and skips (read in a debugger) */
        uint64_t skips;
    } duty;
    /* Seams for the unit tests of the leader's duties (node/tests/
     * test_leader.c, which runs leader.c on an in-memory state machine
     * without raft or a loop). All NULL in the node: leader.c then uses
     * ms_raft_is_leader(raft), ms_mono_ms(), ms_wall_us() and
     * cl_cluster_write_ex(). Set before the first call, control loop. */
    struct {
        int (*is_leader)(void);
        int64_t (*mono_ms)(void); /* cl_mono_ms() */
        int64_t (*wall_ms)(void); /* cl_wall_ms() */
        /* the leader's writes (cl_duty_write()): same contract as
         * cl_cluster_write_ex (cmd stolen, cb once) */
        int (*write)(json_t *cmd, int deadline_ms, int leader_only, wop_cb cb, void *ud);
    } seam;
} ms_cluster_ctx_t;

/* The one context (state.c). */
extern ms_cluster_ctx_t ms_cl;

/* The monotonic clock of leader.c (ms_mono_ms(), or the test's seam).
 * Control loop. */
static inline int64_t cl_mono_ms(void)
{
    return ms_cl.seam.mono_ms ? ms_cl.seam.mono_ms() : ms_mono_ms();
}

/* ---- state.c */
/* Called by jobs.c, join.c, leader.c, lifecycle.c, reconcile.c, rest_servers.c, rest_streams.c on
 * the control loop. */
int64_t cl_wall_ms(void);
/* Called by jobs, join, leader, lifecycle, reports, rest_streams, write on the control loop, and by
 * the forward/proxy workers (thread pool; ms_cl.raft is set before any runs). */
uint64_t cl_my_id(void);
/* Drops every cached read of the state (streams, servers, groups, clusters,
 * settings, archive). Called by lifecycle.c (free) on the control loop, and
 * by node/tests/test_leader.c between cases. */
void cl_cache_drop_all(void);
/* Called by jobs.c, leader.c, lifecycle.c, reconcile.c, reports.c, rest_streams.c on the control
 * loop. */
json_t *cl_state_streams(void);
/* Called by jobs.c, leader.c, reconcile.c, reports.c, rest_servers.c on the control loop. */
json_t *cl_state_servers(void);
/* Called by leader.c, lifecycle.c, reconcile.c, rest_streams.c on the control loop. */
json_t *cl_state_groups(void);
/* Called by leader.c, lifecycle.c, reconcile.c, rest_streams.c on the control loop. */
json_t *cl_state_clusters(void);
/* Called by reconcile.c, reports.c on the control loop. */
json_t *cl_state_archive(void);
/* Called by rest_servers.c on the control loop. */
int cl_server_draining(const char *name);
/* Called by leader.c, lifecycle.c, rest_streams.c on the control loop. */
json_t *cl_servers_copy(void);
/* Called by reconcile.c, rest_cluster.c, rest_servers.c, rest_streams.c on the control loop. */
json_t *cl_server_by(const char *key, json_t *val);
/* Called by leader.c, reconcile.c, reports.c, rest_streams.c on the control loop. */
void cl_server_http(json_t *srv, char *out, size_t cap);
/* Called by jobs.c, write.c on the control loop. */
int cl_leader_base(char *out, size_t cap);
/* Called by join.c, reports.c on the control loop. */
int cl_raft_member(void);
/* Called by lifecycle.c, reconcile.c, reports.c, rest_streams.c on the control loop. */
json_t *cl_my_row(void);
/* Called by rest_cluster.c, write.c on the control loop. */
uint64_t cl_applied_index(void);
/* Called by leader.c, lifecycle.c on the control loop. */
int cl_server_healthy(json_t *s, int64_t now);
/* Called by rest_servers.c on the control loop. */
const char *cl_pick_server(json_t *servers, json_t *streams, const char *exclude, int64_t now);
/* Called by leader.c, lifecycle.c, reports.c on the control loop. */
int64_t cl_setting_int(const char *key, int64_t def);
/* Called by leader.c on the control loop. */
void cl_placement_log_once(const char *uid, const char *name, const char *text, int placed);
/* Called by leader.c, lifecycle.c, reconcile.c, rest_streams.c on the control loop. */
void cl_placement_opts(ms_placement_opts_t *o, int64_t now);

/* ---- reconcile.c */
/* Called by jobs.c on the control loop. */
char *cl_unplaced_reason(json_t *stream, json_t *servers, json_t *streams);
/* Called by lifecycle.c, rest_cluster.c, write.c on the control loop. */
void cl_reconcile(void);

/* ---- write.c */
/* Called by rest_cluster.c on the control loop. */
void cl_wop_finish(wop_t *w, unsigned st, json_t *res);
/* Called by rest_cluster.c on the control loop. */
void cl_submit_cb(void *ud, int status, json_t *result);
/* Called by lifecycle.c on the control loop. */
void cl_wait_check(void);
/* Called by leader.c on the control loop. */
int cl_cluster_write_ex(json_t *cmd, int deadline_ms, int leader_only, wop_cb cb, void *ud);
/* Called by lifecycle.c, reports.c, rest_cluster.c, rest_servers.c, rest_streams.c on the control
 * loop. */
int cl_cluster_write(json_t *cmd, int deadline_ms, wop_cb cb, void *ud);

/* ---- reports.c */
/* Called by leader.c on the control loop. */
void cl_busy_done(void *ud, unsigned st, json_t *res);
/* Called by lifecycle.c on the control loop. */
void cl_self_upsert(void);
/* Called by lifecycle.c on the control loop. */
void cl_report(void);
/* Called by lifecycle.c on the control loop. */
void cl_archive_publish(void);

/* ---- leader.c */
/* Called by lifecycle.c, rest_streams.c on the control loop. */
void cl_observe_reports(void);
/* Called by lifecycle.c, rest_streams.c on the control loop. */
void cl_observed_ages(json_t *servers, int64_t now_wall);
/* Called by lifecycle.c on the control loop. */
void cl_leader_duties(void);

/* ---- jobs.c */
/* Called by rest_cluster.c, rest_servers.c, rest_streams.c on the control loop. */
void cl_job_reply(ms_cluster_job_t *j, unsigned st, json_t *body);
/* Called by rest_cluster.c on the control loop. */
json_t *cl_id_json(json_t *v);
/* Called by rest_cluster.c on the control loop. */
void cl_id_to_string(json_t *o, const char *key);
/* Called by rest_cluster.c, rest_servers.c, rest_streams.c on the control loop. */
void cl_job_write_cb(void *ud, unsigned st, json_t *res);
/* Called by rest_cluster.c, rest_servers.c, rest_streams.c on the control loop. */
json_t *cl_cmd_with_req(const char *op, json_t *args, const char *req_id);
/* Called by rest_cluster.c, rest_servers.c, rest_streams.c on the control loop. */
int cl_body_json(ms_cluster_job_t *j, json_t **out);
/* Called by rest_streams.c on the control loop. */
int cl_stream_uid_exists(const char *uid);
/* Called by rest_cluster.c, rest_servers.c on the control loop. */
void cl_to_leader(ms_cluster_job_t *j, const char *path);

/* ---- rest_streams.c */
/* Called by rest_cluster.c on the control loop. */
void cl_stream_put(ms_cluster_job_t *j);
/* Called by rest_cluster.c on the control loop. */
void cl_stream_patch(ms_cluster_job_t *j);
/* Called by rest_cluster.c on the control loop. */
void cl_stream_action(ms_cluster_job_t *j);

/* ---- rest_servers.c */
/* Called by rest_cluster.c on the control loop. */
void cl_servers_get(ms_cluster_job_t *j);
/* Called by rest_cluster.c on the control loop. */
void cl_servers_put(ms_cluster_job_t *j);
/* Called by rest_cluster.c on the control loop. */
void cl_servers_drain(ms_cluster_job_t *j);
/* Called by rest_cluster.c on the control loop. */
void cl_servers_delete(ms_cluster_job_t *j);

/* ---- rest_cluster.c */
/* Called by lifecycle.c on the control loop. */
void cl_async_cb(uv_async_t *h);

/* ---- join.c */
/* Called by lifecycle.c on the control loop. */
void cl_udp_alloc(uv_handle_t *h, size_t sug, uv_buf_t *buf);
/* Called by lifecycle.c on the control loop. */
void cl_udp_recv(uv_udp_t *h, ssize_t n, const uv_buf_t *buf, const struct sockaddr *from,
                 unsigned flags);
/* Called by lifecycle.c on the control loop. */
int cl_resolve_hostport(const char *hp, struct sockaddr_storage *out);
/* Called by lifecycle.c on the control loop. */
void cl_try_join(void);

#endif
