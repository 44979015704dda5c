/* The node's use of the replicated state: raft start, join, the write path
 * (leader submit or forward), reports, leader duties, REST execution. See
 * cluster.h and docs/cluster.md "How a node uses the state".
 *
 * Everything here runs on the control loop except ms_cluster_post (any
 * thread) and the forward workers (libuv thread pool, blocking HTTP). */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>
#include <sqlite3.h>
#include <sys/resource.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "dvr/dvr.h"
#include "node/archive_view.h"
#include "node/cluster.h"
#include "node/lua.h"
#include "node/cluster_http.h"
#include "node/hls_hint.h"
#include "node/placement.h"
#include "node/placement_view.h"
#include "node/reconciler.h"
#include "node/rtsp_redirect.h"
#include "node/uid.h"
#include "raft/commands.h"
#include "raft/fsm.h"
#include "raft/node.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/jsonmerge.h"
#include "util/kdf.h"
#include "util/log.h"
#include "util/nodeauth.h"
#include "util/replay.h"

#define CTX               g.ctx
#define TICK_MS           250
#define TICK_EARLY_MS     10 /* tick_run: a raft tick this close to TICK_MS will do */
#define TICK_LATE_MS      60 /* the fallback timer: more than one raft heartbeat late */
#define RECONCILE_FULL_MS 2000
#define REPORT_MS         500
/* The leader's own report: on a notable change of its load, else at least
 * this often (its liveness is raft's: leader_report_due, observe_reports) */
#define LEADER_REPORT_MAX_MS 5000
#define DOWN_AFTER_MS        1500 /* default; setting down_after_ms */
/* A new leader marks nobody down before it has led this long: live nodes'
 * reports held up by the election land within it (they are retried every
 * 50 ms). Ages themselves are observed by every node (observe_reports). */
#define LEADER_SETTLE_MS 700
#define ARCHIVE_EVERY_MS 5000 /* publish this node's archive ranges (when changed) */
#define API_DEADLINE_MS  4000
#define FWD_TIMEOUT_MS   3000
#define JOIN_EVERY_MS    500
#define JOIN_REPLAY_CAP  4096 /* joins accepted within 60 s, all joiners together */
#define MAX_VOTERS       5
#define HANDOVER_MS      3000 /* graceful stop: bound on handing primaries to backups */

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

static struct {
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
} g = {.qmu = PTHREAD_MUTEX_INITIALIZER};

static int64_t wall_ms(void)
{
    return ms_wall_us() / 1000;
}

int ms_cluster_enabled(void)
{
    return atomic_load(&g.enabled);
}

int ms_cluster_ready(void)
{
    return g.ready;
}

/* ---- state helpers ------------------------------------------------------ */

static uint64_t my_id(void)
{
    return g.raft ? ms_raft_id(g.raft) : 0;
}

/* Cached reads of the state. The control loop reads the same tables
 * several times per tick and after every applied command, while most
 * commands are load reports that change nothing but the servers' load
 * columns (ms_fsm_changes() does not count them). A list is read again
 * only when what it depends on may have changed: streams, groups,
 * clusters and settings when ms_fsm_changes() moved, servers when any
 * command was applied (ms_fsm_applied(), plus changes for a snapshot
 * restored at the same index). The getters return a new reference to the
 * shared array: the caller must not modify it (servers_copy() gives rows
 * that may be changed), and nothing of it is handed to another thread
 * (API replies read ms_fsm_list() themselves). Control loop only. */
typedef struct {
    json_t *v;
    uint64_t seq, changes;
    int valid;
} cached_t;

static struct {
    cached_t streams, servers, groups, clusters, settings, archive;
} g_cache;

static void cache_drop(cached_t *c)
{
    json_decref(c->v);
    memset(c, 0, sizeof *c);
}

/* The settings table as one object key -> decoded value (schema 2). */
static json_t *read_settings(void)
{
    json_t *o = json_object();
    sqlite3_stmt *q = NULL;
    if (!o || ms_fsm_schema_version(g.fsm) < 2 ||
        sqlite3_prepare_v2(ms_fsm_db(g.fsm), "SELECT key, value FROM settings", -1, &q, NULL) !=
            SQLITE_OK) {
        sqlite3_finalize(q);
        return o;
    }
    while (sqlite3_step(q) == SQLITE_ROW) {
        const char *k = (const char *)sqlite3_column_text(q, 0);
        const char *t = (const char *)sqlite3_column_text(q, 1);
        json_t *j = t ? json_loads(t, JSON_DECODE_ANY, NULL) : NULL;
        if (k && j)
            json_object_set_new(o, k, j);
        else
            json_decref(j);
    }
    sqlite3_finalize(q);
    return o;
}

/* table: an ms_fsm_list() name, or "settings". per_seq: also re-read after
 * every applied command. New reference (may be NULL when the read failed). */
static json_t *cached_list(cached_t *c, const char *table, int per_seq)
{
    uint64_t ch = ms_fsm_changes(g.fsm), seq = ms_fsm_applied(g.fsm);
    if (!c->valid || c->changes != ch || (per_seq && c->seq != seq)) {
        json_t *v = strcmp(table, "settings") == 0 ? read_settings() : ms_fsm_list(g.fsm, table);
        json_decref(c->v);
        c->v = v;
        c->changes = ch;
        c->seq = seq;
        c->valid = v != NULL; /* a failed read is retried next time */
    }
    return json_incref(c->v);
}

static json_t *state_streams(void)
{
    return cached_list(&g_cache.streams, "streams", 0);
}

static json_t *state_servers(void)
{
    return cached_list(&g_cache.servers, "servers", 1);
}

static json_t *state_groups(void)
{
    return cached_list(&g_cache.groups, "groups", 0);
}

static json_t *state_clusters(void)
{
    return cached_list(&g_cache.clusters, "clusters", 0);
}

static json_t *state_archive(void)
{
    return cached_list(&g_cache.archive, "archive", 0);
}

static int64_t setting_int(const char *key, int64_t def);

/* Draining (POST /servers/{name}/drain, docs/cluster.md "Draining a
 * server"): the cluster setting "drain.{name}" is true while the server is
 * drained; placement (node/placement.c) reads it as the row's "draining".
 * The key must be a valid setting name: at most 63 characters. */
#define DRAIN_PREFIX   "drain."
#define DRAIN_NAME_MAX (63 - (int)(sizeof DRAIN_PREFIX - 1))

static int server_draining(const char *name)
{
    char k[80];
    if (!name || (int)strlen(name) > DRAIN_NAME_MAX)
        return 0;
    snprintf(k, sizeof k, DRAIN_PREFIX "%s", name);
    return setting_int(k, 0) != 0;
}

/* The servers as rows the caller may change (json_object_set on a row
 * replaces the value in that row only; nested values stay shared and must
 * not be changed), each with its "draining". New array. */
static json_t *servers_copy(void)
{
    json_t *list = state_servers(), *out = json_array(), *s;
    size_t i;
    if (!list || !out) {
        json_decref(list);
        json_decref(out);
        return NULL;
    }
    json_array_foreach(list, i, s)
    {
        json_t *c = json_copy(s);
        if (c && server_draining(json_string_value(json_object_get(s, "name"))))
            json_object_set_new(c, "draining", json_true());
        json_array_append_new(out, c);
    }
    json_decref(list);
    return out;
}

static json_t *server_by(const char *key, json_t *val)
{
    json_t *list = state_servers(), *s, *out = NULL;
    size_t i;
    json_array_foreach(list, i, s) if (json_equal(json_object_get(s, key), val))
    {
        out = json_incref(s);
        break;
    }
    json_decref(list);
    return out;
}

/* The http base URL of a server row ("" when none). */
static void server_http(json_t *srv, char *out, size_t cap)
{
    out[0] = '\0';
    json_t *addrs = json_object_get(srv, "addresses"), *a;
    size_t i;
    json_array_foreach(addrs, i, a)
    {
        const char *s = json_string_value(a);
        if (s && strncmp(s, "http://", 7) == 0) {
            snprintf(out, cap, "%s", s);
            return;
        }
    }
}

/* The leader's http base from the servers table; 0 when known. */
static int leader_base(char *out, size_t cap)
{
    ms_raft_info_t in;
    ms_raft_info(g.raft, &in);
    out[0] = '\0';
    if (!in.leader_id)
        return -EAGAIN;
    json_t *id = json_integer((json_int_t)in.leader_id);
    json_t *srv = server_by("id", id);
    json_decref(id);
    if (srv)
        server_http(srv, out, cap);
    json_decref(srv);
    return out[0] ? 0 : -EAGAIN;
}

/* 1 when this node is a voter or standby of the raft configuration. */
static int raft_member(void)
{
    int role = ms_raft_member_role(g.raft, my_id());
    return role == MS_RAFT_VOTER || role == MS_RAFT_STANDBY;
}

static json_t *my_row(void)
{
    json_t *id = json_integer((json_int_t)my_id());
    json_t *s = server_by("id", id);
    json_decref(id);
    return s;
}

static uint64_t applied_index(void)
{
    ms_raft_info_t in;
    ms_raft_info(g.raft, &in);
    return in.last_applied;
}

/* ---- reconcile ------------------------------------------------------------ */

static void placement_opts(ms_placement_opts_t *o, int64_t now);

/* Why stream (a row of the state) has no server, as a fresh search over
 * this node's copy of the state sees it: a new string (caller frees), or
 * NULL when a server qualifies (the leader's next duty run assigns it). */
static char *unplaced_reason(json_t *stream, json_t *servers, json_t *streams)
{
    json_t *groups = state_groups(), *clusters = state_clusters();
    ms_placement_opts_t po;
    placement_opts(&po, wall_ms());
    /* only the leader is healthy without a report (it reports rarely): a
     * follower judges as the leader does, so every node gives the leader's
     * reason (docs/cluster.md "One status on every node") */
    json_t *leader = NULL;
    if (!ms_raft_is_leader(g.raft)) {
        ms_raft_info_t in;
        ms_raft_info(g.raft, &in);
        json_t *id = json_integer((json_int_t)in.leader_id);
        leader = in.leader_id ? server_by("id", id) : NULL;
        json_decref(id);
        po.self = json_string_value(json_object_get(leader, "name"));
    }
    json_t *r =
        ms_placement_search(servers, groups ? groups : json_array(),
                            clusters ? clusters : json_array(), streams, stream, NULL, NULL, &po);
    const char *why = json_string_value(json_object_get(r, "reason"));
    char *out = why ? strdup(why) : NULL;
    json_decref(r);
    json_decref(leader);
    json_decref(groups);
    json_decref(clusters);
    return out;
}

/* The placement view the HTTP threads read (status, redirects). */
static void view_refresh(json_t *streams)
{
    json_t *servers = state_servers(), *st, *s;
    size_t i, k;
    ms_rtsp_redirect_servers_set(servers);
    ms_placement_view_begin(g.cfg->name);
    json_array_foreach(streams, i, st)
    {
        json_t *pl = json_object_get(st, "placement");
        const char *p = json_string_value(json_object_get(pl, "primary"));
        char http[160] = "";
        json_array_foreach(
            servers, k, s) if (p && strcmp(json_string_value(json_object_get(s, "name")), p) == 0)
            server_http(s, http, sizeof http);
        ms_placement_view_put(json_string_value(json_object_get(st, "uid")),
                              json_string_value(json_object_get(st, "name")), p,
                              json_string_value(json_object_get(pl, "backup")), http,
                              json_integer_value(json_object_get(pl, "transferred_at")) > 0);
        char *why = p ? NULL : unplaced_reason(st, servers, streams);
        ms_placement_view_annotate(json_string_value(json_object_get(st, "uid")),
                                   json_is_object(json_object_get(pl, "source")), why);
        free(why);
    }
    ms_placement_view_end();
    json_decref(servers);
}

/* The archive view the HTTP threads read (merged ranges, archive
 * redirects): the published ranges of streams that record (seed rule: with
 * recording off the index is not handed off), with each server's http
 * address. */
static void archive_view_refresh(json_t *streams)
{
    json_t *arch = state_archive(), *servers = state_servers();
    json_t *rows = json_array(), *a, *st, *s;
    size_t i, k;
    json_array_foreach(arch, i, a)
    {
        const char *uid = json_string_value(json_object_get(a, "stream_uid"));
        const char *srv = json_string_value(json_object_get(a, "server"));
        if (!uid || !srv)
            continue;
        int rec = 0;
        json_array_foreach(streams, k, st)
        {
            const char *u = json_string_value(json_object_get(st, "uid"));
            if (u && strcmp(u, uid) == 0)
                rec = json_is_true(json_object_get(json_object_get(st, "dvr"), "enabled"));
        }
        if (!rec)
            continue;
        char http[300] = "";
        json_array_foreach(servers, k, s)
        {
            const char *n = json_string_value(json_object_get(s, "name"));
            if (n && strcmp(n, srv) == 0)
                server_http(s, http, sizeof http);
        }
        json_t *rg = json_object_get(a, "ranges");
        json_t *parsed = json_is_string(rg)
                             ? json_loads(json_string_value(rg), JSON_DECODE_ANY, NULL)
                             : json_incref(rg);
        json_array_append_new(rows, json_pack("{s:s,s:s,s:s,s:o}", "stream", uid, "server", srv,
                                              "http", http, "ranges",
                                              json_is_array(parsed) ? parsed : json_array()));
        if (!json_is_array(parsed))
            json_decref(parsed);
    }
    ms_archive_view_set(rows, g.cfg->name);
    json_decref(rows);
    json_decref(servers);
    json_decref(arch);
}

/* Runs only when something other than load reports changed
 * (ms_fsm_changes), and every RECONCILE_FULL_MS while the reconciler has
 * streams it could not apply (retries of streams that failed to start):
 * reading every stream from SQLite several times a second per node was the
 * node's main CPU cost. */
static void reconcile(void)
{
    uint64_t changes = ms_fsm_changes(g.fsm);
    int64_t now = ms_mono_ms();
    g.seen_applied = ms_fsm_applied(g.fsm);
    if (g.reconciled && changes == g.seen_changes &&
        (now - g.last_reconcile < RECONCILE_FULL_MS || !ms_reconciler_pending(g.rec)))
        return;
    g.seen_changes = changes;
    g.last_reconcile = now;
    json_t *streams = state_streams();
    json_t *row = my_row();
    g.reconciled = streams != NULL; /* a failed read is retried at once */
    if (streams)
        ms_reconciler_run(g.rec, streams, row != NULL);
    view_refresh(streams);
    archive_view_refresh(streams);
    json_decref(row);
    json_decref(streams);
    g.seen_applied = ms_fsm_applied(g.fsm);
}

/* ---- the write path ------------------------------------------------------- */

static void wop_try(wop_t *w);

static void wop_closed(uv_handle_t *h)
{
    wop_t *w = h->data;
    free(w->text);
    free(w->fwd_resp);
    free(w);
    g.outstanding--;
}

static void wop_finish(wop_t *w, unsigned st, json_t *res)
{
    reconcile(); /* the reply must see its own write on this node */
    if (w->cb)
        w->cb(w->ud, st, res);
    json_decref(res);
    uv_close((uv_handle_t *)&w->timer, wop_closed);
}

static unsigned result_status(json_t *res)
{
    if (!json_is_object(res))
        return 500;
    if (json_object_get(res, "error")) {
        json_int_t s = json_integer_value(json_object_get(res, "status"));
        return s >= 400 && s < 600 ? (unsigned)s : 400;
    }
    return 200;
}

static void wop_retry_cb(uv_timer_t *t)
{
    wop_try(t->data);
}

static void wop_later(wop_t *w)
{
    if (g.stopping || (w->deadline && ms_mono_ms() >= w->deadline)) {
        wop_finish(w, 503,
                   json_pack("{s:s}", "error",
                             g.stopping ? "the node is stopping" : "no leader: retry later"));
        return;
    }
    uv_timer_start(&w->timer, wop_retry_cb, 50, 0);
}

static void submit_cb(void *ud, int status, json_t *result)
{
    wop_t *w = ud;
    if (status < 0 && w->leader_only) {
        wop_finish(w, 503, json_pack("{s:s}", "error", "leadership lost"));
        return;
    }
    if (status < 0) {
        wop_later(w); /* same req_id: applies at most once */
        return;
    }
    wop_finish(w, result_status(result), json_incref(result));
}

static void fwd_work(uv_work_t *req)
{
    wop_t *w = req->data;
    /* never past the write's own deadline: a report stuck on an unreachable
     * leader would hold back the next ones (reports are one at a time) */
    int64_t left = w->deadline ? w->deadline - ms_mono_ms() : FWD_TIMEOUT_MS;
    int tmo = left < 100 ? 100 : left < FWD_TIMEOUT_MS ? (int)left : FWD_TIMEOUT_MS;
    w->fwd_rc = ms_chttp_request(w->base, "POST", "/api/v1/cluster/submit", w->text, w->len,
                                 g.cfg->secret, my_id(), tmo, &w->fwd_status, &w->fwd_resp);
}

static void wait_check(void)
{
    uint64_t idx = g.waiting ? applied_index() : 0;
    int64_t now = ms_mono_ms();
    for (wop_t **pp = &g.waiting; *pp;) {
        wop_t *w = *pp;
        if (idx >= w->wait_index || now >= w->wait_until || g.stopping) {
            *pp = w->next_wait;
            wop_finish(w, w->st, w->res);
            continue;
        }
        pp = &w->next_wait;
    }
}

static void fwd_done(uv_work_t *req, int status)
{
    wop_t *w = req->data;
    (void)status;
    json_t *j = NULL;
    if (w->fwd_rc == 0 && w->fwd_resp)
        j = json_loads(w->fwd_resp, 0, NULL);
    free(w->fwd_resp);
    w->fwd_resp = NULL;
    if (w->fwd_rc < 0 || w->fwd_status == 503 || !j || !json_object_get(j, "result")) {
        if (w->fwd_rc == 0 && w->fwd_status != 503 && w->fwd_status != 0) {
            /* the leader refused the command itself (400/403): final */
            json_t *res = j ? j : json_pack("{s:s}", "error", "bad answer from the leader");
            wop_finish(w, (unsigned)w->fwd_status, res);
            return;
        }
        json_decref(j);
        wop_later(w);
        return;
    }
    w->res = json_incref(json_object_get(j, "result"));
    w->st = result_status(w->res);
    w->wait_index = (uint64_t)json_integer_value(json_object_get(j, "index"));
    w->wait_until = ms_mono_ms() + 2000;
    json_decref(j);
    w->next_wait = g.waiting;
    g.waiting = w;
    wait_check();
}

static void wop_try(wop_t *w)
{
    if (g.stopping) {
        wop_later(w);
        return;
    }
    if (ms_raft_is_leader(g.raft)) {
        if (ms_raft_submit(g.raft, w->text, w->len, submit_cb, w) == 0)
            return;
        wop_later(w);
        return;
    }
    if (w->leader_only) { /* decided on a state this node no longer leads */
        wop_finish(w, 503, json_pack("{s:s}", "error", "not the leader any more"));
        return;
    }
    if (leader_base(w->base, sizeof w->base) == 0 && strcmp(w->base, g.http_base) != 0) {
        w->work.data = w;
        if (uv_queue_work(g.loop, &w->work, fwd_work, fwd_done) == 0)
            return;
    }
    wop_later(w);
}

/* Writes cmd (stolen) to the replicated log through the leader; cb(ud,
 * http status, result) once. deadline_ms 0: retried until stop.
 * leader_only: submitted only while this node leads (leader duties: a
 * deposed leader's decisions must not reach the new leader). */
static int cluster_write_ex(json_t *cmd, int deadline_ms, int leader_only, wop_cb cb, void *ud)
{
    wop_t *w = calloc(1, sizeof *w);
    if (!w || !cmd) {
        free(w);
        json_decref(cmd);
        return -ENOMEM;
    }
    w->text = ms_cmd_encode(cmd, &w->len);
    json_decref(cmd);
    if (!w->text) {
        free(w);
        return -ENOMEM;
    }
    w->deadline = deadline_ms ? ms_mono_ms() + deadline_ms : 0;
    w->leader_only = leader_only;
    w->cb = cb;
    w->ud = ud;
    uv_timer_init(g.loop, &w->timer);
    w->timer.data = w;
    g.outstanding++;
    wop_try(w);
    return 0;
}

static int cluster_write(json_t *cmd, int deadline_ms, wop_cb cb, void *ud)
{
    return cluster_write_ex(cmd, deadline_ms, 0, cb, ud);
}

/* ---- REST jobs -------------------------------------------------------------- */

static void job_reply(ms_cluster_job_t *j, unsigned st, json_t *body)
{
    j->status = st;
    j->reply = body ? body : json_object();
    if (st == 503 && !j->retry_after)
        j->retry_after = 1;
    j->done(j);
}

/* A 63-bit raft id as the API shows it: a decimal string, since JSON
 * numbers above 2^53 lose precision in JavaScript (docs/api.md). */
static json_t *id_json(json_t *v)
{
    char b[32];
    if (!json_is_integer(v))
        return json_incref(v ? v : json_null());
    snprintf(b, sizeof b, "%" PRIu64, (uint64_t)json_integer_value(v));
    return json_string(b);
}

/* Replaces o[key] (an integer id) by its string form; nothing when absent. */
static void id_to_string(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (v)
        json_object_set_new(o, key, id_json(v));
}

static void job_write_cb(void *ud, unsigned st, json_t *res)
{
    ms_cluster_job_t *j = ud;
    json_t *body = json_deep_copy(res);
    if (st == 200 && json_is_object(body)) {
        json_t *s = json_object_get(body, "stream");
        if (s && !json_object_get(body, "error") && strcmp(j->method, "DELETE") != 0) {
            json_t *tmp = json_deep_copy(s); /* the stream object alone */
            json_decref(body);
            body = tmp;
            json_t *pl = json_object_get(body, "placement");
            if (json_is_object(pl)) { /* why it has no server (null: placed or about to be) */
                char *why = NULL;
                if (!json_is_string(json_object_get(pl, "primary"))) {
                    json_t *servers = state_servers(), *streams = state_streams();
                    why = unplaced_reason(body, servers, streams);
                    json_decref(servers);
                    json_decref(streams);
                }
                json_object_set_new(pl, "reason", why ? json_string(why) : json_null());
                free(why);
            }
            if (strcmp(j->method, "POST") == 0 && !j->id[0])
                st = 201;
        }
    }
    /* a server row in the answer (PUT /servers/{name}): its 63-bit id as a
     * string, as every server view gives it (docs/api.md) */
    if (json_is_object(json_object_get(body, "server")))
        id_to_string(json_object_get(body, "server"), "id");
    if (body && json_object_get(body, "error"))
        json_object_del(body, "status");
    job_reply(j, st, body);
}

static json_t *cmd_with_req(const char *op, json_t *args, const char *req_id)
{
    if (req_id && req_id[0])
        return ms_cmd_new_at(op, args, req_id, wall_ms());
    return ms_cmd_new(op, args);
}

static int body_json(ms_cluster_job_t *j, json_t **out)
{
    json_error_t e;
    *out = NULL;
    if (!j->body || !j->body_len) {
        job_reply(j, 400, json_pack("{s:s}", "error", "a JSON body is required"));
        return -1;
    }
    *out = json_loadb(j->body, j->body_len, JSON_REJECT_DUPLICATES, &e);
    if (!*out || !json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        job_reply(j, 400, json_pack("{s:s}", "error", "the body is not a JSON object"));
        return -1;
    }
    return 0;
}

static int stream_uid_exists(const char *uid)
{
    sqlite3_stmt *q = NULL;
    int found = sqlite3_prepare_v2(ms_fsm_db(g.fsm), "SELECT 1 FROM streams WHERE uid = ?", -1, &q,
                                   NULL) == SQLITE_OK &&
                sqlite3_bind_text(q, 1, uid, -1, SQLITE_STATIC) == SQLITE_OK &&
                sqlite3_step(q) == SQLITE_ROW;
    sqlite3_finalize(q);
    return found;
}

/* POST /streams, PUT /streams/{id} and the result of PATCH: o (taken) is
 * validated with the config parser. The read-only members a GET answers
 * ("status", "placement", "added", "activation": docs/api.md) are ignored,
 * so GET -> edit -> PUT round-trips. */
static void stream_put_obj(ms_cluster_job_t *j, json_t *o)
{
    static const char *const read_only[] = {"status", "placement", "added", "activation"};
    for (size_t i = 0; i < sizeof read_only / sizeof *read_only; i++)
        json_object_del(o, read_only[i]);
    json_t *cur = j->id[0] ? ms_fsm_get_stream(g.fsm, j->id) : NULL;
    if (j->id[0] && !cur) {
        json_decref(o);
        job_reply(j, 404, json_pack("{s:s,s:s}", "error", "unknown stream", "field", "id"));
        return;
    }
    if (cur) {
        const char *uid = json_string_value(json_object_get(cur, "uid"));
        json_t *bu = json_object_get(o, "uid");
        if (bu && (!json_is_string(bu) || strcmp(json_string_value(bu), uid) != 0)) {
            json_decref(o);
            json_decref(cur);
            job_reply(j, 400, json_pack("{s:s,s:s}", "error", "uid cannot change", "field", "uid"));
            return;
        }
        json_object_set_new(o, "uid", json_string(uid));
        json_decref(cur);
    } else if (json_is_string(json_object_get(o, "uid")) && !j->req_seen &&
               stream_uid_exists(json_string_value(json_object_get(o, "uid")))) {
        /* POST creates: an existing uid is not overwritten (PUT updates) */
        json_decref(o);
        job_reply(j, 409,
                  json_pack("{s:s,s:s}", "error", "a stream with this uid exists", "field", "uid"));
        return;
    } else if (!json_object_get(o, "uid")) {
        char uid[MS_UID_LEN];
        if (j->req_id[0])
            ms_uid_derive("api-stream", j->req_id, uid);
        else
            ms_uid_random(uid);
        json_object_set_new(o, "uid", json_string(uid));
    }
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    ms_stream_cfg_t cfg;
    ms_errlist_t errs = {0};
    int r = text ? ms_stream_cfg_parse(text, strlen(text), "body", &cfg, &errs) : -1;
    free(text);
    if (r < 0) {
        /* "body: KEY: reason" -> field KEY */
        const char *line = errs.n ? errs.lines[0] : "body: : invalid stream";
        const char *k = strstr(line, ": ");
        char field[128] = "";
        const char *reason = line;
        if (k) {
            const char *k2 = strstr(k + 2, ": ");
            if (k2) {
                snprintf(field, sizeof field, "%.*s", (int)(k2 - k - 2), k + 2);
                reason = k2 + 2;
            }
        }
        job_reply(j, 400, json_pack("{s:s,s:s}", "error", reason, "field", field));
        ms_errlist_free(&errs);
        ms_stream_cfg_free(&cfg);
        return;
    }
    ms_errlist_free(&errs);
    json_t *sj = ms_stream_cfg_to_json(&cfg);
    ms_stream_cfg_free(&cfg);
    json_t *cmd = cmd_with_req("stream_upsert",
                               json_pack("{s:o,s:s}", "stream", sj, "added", "manual"), j->req_key);
    if (cluster_write(cmd, API_DEADLINE_MS, job_write_cb, j) < 0)
        job_reply(j, 500, json_pack("{s:s}", "error", "out of memory"));
}

static void stream_put(ms_cluster_job_t *j)
{
    json_t *o;
    if (body_json(j, &o) < 0)
        return;
    stream_put_obj(j, o);
}

/* PATCH /streams/{id}: a JSON merge patch (RFC 7396) on the stored stream
 * object (without "placement"; keys stored as null are absent), then
 * validated and written like PUT. */
static void stream_patch(ms_cluster_job_t *j)
{
    json_t *patch;
    if (body_json(j, &patch) < 0)
        return;
    json_t *cur = ms_fsm_get_stream(g.fsm, j->id);
    if (!cur) {
        json_decref(patch);
        job_reply(j, 404, json_pack("{s:s,s:s}", "error", "unknown stream", "field", "id"));
        return;
    }
    json_object_del(cur, "placement");
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(cur, tmp, k, v)
    {
        if (json_is_null(v))
            json_object_del(cur, k);
    }
    json_t *o = ms_json_merge_patch(cur, patch);
    json_decref(cur);
    json_decref(patch);
    if (!json_is_object(o)) {
        json_decref(o);
        job_reply(j, 400, json_pack("{s:s}", "error", "the patch nests too deep"));
        return;
    }
    stream_put_obj(j, o);
}

static void restart_work(uv_work_t *req);
static void restart_done(uv_work_t *req, int status);

static void stream_transfer(ms_cluster_job_t *j, json_t *cur);

static void stream_action(ms_cluster_job_t *j)
{
    json_t *cur = ms_fsm_get_stream(g.fsm, j->id);
    if (!cur) {
        job_reply(j, 404, json_pack("{s:s,s:s}", "error", "unknown stream", "field", "id"));
        return;
    }
    const char *uid = json_string_value(json_object_get(cur, "uid"));
    json_t *cmd = NULL;
    if (strcmp(j->action, "transfer") == 0) {
        stream_transfer(j, cur); /* takes cur */
        return;
    }
    if (strcmp(j->action, "update-indexes") == 0) {
        /* a state command every node reacts to (tick_run): each republishes
         * the ranges of its local archive at once */
        cmd = cmd_with_req(
            "setting_set",
            json_pack("{s:s,s:I}", "key", "update_indexes", "value", (json_int_t)wall_ms()),
            j->req_key);
        json_decref(cur);
        if (!cmd || cluster_write(cmd, API_DEADLINE_MS, job_write_cb, j) < 0)
            job_reply(j, 500, json_pack("{s:s}", "error", "out of memory"));
        return;
    }
    if (strcmp(j->method, "DELETE") == 0) {
        /* a stream of a node's streams_dir would come back at its next
         * reload: the file is the thing to delete */
        json_t *src = json_object_get(json_object_get(cur, "placement"), "source");
        const char *file = json_string_value(json_object_get(src, "file"));
        if (file) {
            char msg[600];
            snprintf(msg, sizeof msg,
                     "defined by %s in streams_dir of node %s; delete the file instead", file,
                     json_string_value(json_object_get(src, "node"))
                         ? json_string_value(json_object_get(src, "node"))
                         : "?");
            job_reply(j, 409,
                      json_pack("{s:s,s:s,s:O}", "error", msg, "file", file, "node",
                                json_object_get(src, "node") ? json_object_get(src, "node")
                                                             : json_null()));
            json_decref(cur);
            return;
        }
        cmd = cmd_with_req("stream_remove", json_pack("{s:s}", "stream", uid), j->req_key);
    } else if (strcmp(j->action, "enable") == 0 || strcmp(j->action, "disable") == 0) {
        cmd = cmd_with_req(
            "stream_set_state",
            json_pack("{s:s,s:b}", "stream", uid, "enabled", strcmp(j->action, "enable") == 0),
            j->req_key);
    } else if (strcmp(j->action, "restart") == 0) {
        /* not a state change: done by the server that runs the stream */
        const char *prim =
            json_string_value(json_object_get(json_object_get(cur, "placement"), "primary"));
        json_t *row = my_row();
        const char *me = json_string_value(json_object_get(row, "name"));
        if (prim && me && strcmp(prim, me) == 0) {
            int r = ms_reconciler_restart(g.rec, uid);
            job_reply(j, r == 0 ? 200 : 409,
                      r == 0 ? json_pack("{s:b,s:s}", "ok", 1, "server", me)
                             : json_pack("{s:s}", "error", "the stream is not running here"));
        } else if (!prim) {
            job_reply(j, 409, json_pack("{s:s}", "error", "the stream is not assigned yet"));
        } else if (j->internal) {
            job_reply(j, 409, json_pack("{s:s}", "error", "the stream is not running here"));
        } else {
            json_t *srv =
                server_by("name", json_object_get(json_object_get(cur, "placement"), "primary"));
            proxy_t *p = calloc(1, sizeof *p);
            if (p && srv) {
                p->job = j;
                server_http(srv, p->base, sizeof p->base);
                snprintf(p->method, sizeof p->method, "POST");
                snprintf(p->path, sizeof p->path, "/api/v1/streams/%s/restart", uid);
                p->work.data = p;
                g.outstanding++;
                uv_queue_work(g.loop, &p->work, restart_work, restart_done);
            } else {
                free(p);
                job_reply(j, 503, json_pack("{s:s}", "error", "server unknown"));
            }
            json_decref(srv);
        }
        json_decref(row);
        json_decref(cur);
        return;
    }
    json_decref(cur);
    if (!cmd) {
        job_reply(j, 404, json_pack("{s:s}", "error", "not found"));
        return;
    }
    if (cluster_write(cmd, API_DEADLINE_MS, job_write_cb, j) < 0)
        job_reply(j, 500, json_pack("{s:s}", "error", "out of memory"));
}

/* ---- proxy to another node (leader or the stream's server) -------------- */

static void restart_work(uv_work_t *req)
{
    proxy_t *p = req->data;
    p->rc = ms_chttp_request(p->base, p->method, p->path, NULL, 0, g.cfg->secret, my_id(),
                             FWD_TIMEOUT_MS, &p->status, &p->resp);
}

static void restart_done(uv_work_t *req, int status)
{
    proxy_t *p = req->data;
    (void)status;
    json_t *body = p->rc == 0 && p->resp ? json_loads(p->resp, 0, NULL) : NULL;
    if (p->rc < 0 || !body)
        job_reply(p->job, 503, json_pack("{s:s}", "error", "the stream's server does not answer"));
    else
        job_reply(p->job, (unsigned)p->status, body);
    free(p->resp);
    free(p);
    g.outstanding--;
}

static void proxy_try(proxy_t *p);

static void proxy_closed(uv_handle_t *h)
{
    proxy_t *p = h->data;
    free(p->resp);
    free(p);
    g.outstanding--;
}

static void proxy_retry_cb(uv_timer_t *t)
{
    proxy_try(t->data);
}

static void proxy_later(proxy_t *p)
{
    if (g.stopping || ms_mono_ms() >= p->deadline) {
        job_reply(p->job, 503, json_pack("{s:s}", "error", "no leader: retry later"));
        uv_close((uv_handle_t *)&p->timer, proxy_closed);
        return;
    }
    uv_timer_start(&p->timer, proxy_retry_cb, 50, 0);
}

static void proxy_done(uv_work_t *req, int status)
{
    proxy_t *p = req->data;
    (void)status;
    json_t *body = p->rc == 0 && p->resp ? json_loads(p->resp, 0, NULL) : NULL;
    if (p->rc < 0 || p->status == 503 || !body) {
        json_decref(body);
        free(p->resp);
        p->resp = NULL;
        proxy_later(p);
        return;
    }
    job_reply(p->job, (unsigned)p->status, body);
    uv_close((uv_handle_t *)&p->timer, proxy_closed);
}

static void proxy_work(uv_work_t *req)
{
    proxy_t *p = req->data;
    ms_cluster_job_t *j = p->job;
    p->rc = ms_chttp_request(p->base, p->method, p->path, j->body, j->body ? j->body_len : 0,
                             g.cfg->secret, my_id(), FWD_TIMEOUT_MS, &p->status, &p->resp);
}

static void proxy_try(proxy_t *p)
{
    if (!g.stopping && leader_base(p->base, sizeof p->base) == 0 &&
        strcmp(p->base, g.http_base) != 0) {
        p->work.data = p;
        if (uv_queue_work(g.loop, &p->work, proxy_work, proxy_done) == 0)
            return;
    }
    proxy_later(p);
}

/* Executes j on the leader (this request, internally authenticated). */
static void to_leader(ms_cluster_job_t *j, const char *path)
{
    if (j->internal) { /* never forwarded twice */
        job_reply(j, 503, json_pack("{s:s}", "error", "not the leader"));
        return;
    }
    proxy_t *p = calloc(1, sizeof *p);
    if (!p) {
        job_reply(j, 500, json_pack("{s:s}", "error", "out of memory"));
        return;
    }
    p->job = j;
    snprintf(p->method, sizeof p->method, "%s", j->method);
    snprintf(p->path, sizeof p->path, "%s", path);
    p->deadline = ms_mono_ms() + API_DEADLINE_MS;
    uv_timer_init(g.loop, &p->timer);
    p->timer.data = p;
    g.outstanding++;
    proxy_try(p);
}

/* ---- servers -------------------------------------------------------------- */

static json_t *raft_roles(void)
{
    json_t *info = ms_raft_info_json(g.raft), *m, *roles = json_object();
    size_t i;
    uint64_t lid =
        (uint64_t)json_integer_value(json_object_get(json_object_get(info, "leader"), "id"));
    json_array_foreach(json_object_get(info, "members"), i, m)
    {
        char k[32];
        uint64_t id = (uint64_t)json_integer_value(json_object_get(m, "id"));
        snprintf(k, sizeof k, "%" PRIu64, id);
        json_object_set_new(
            roles, k,
            json_string(id == lid ? "leader" : json_string_value(json_object_get(m, "role"))));
    }
    json_decref(info);
    return roles;
}

/* lage: how long ago this node last heard from the raft leader (0 on
 * the leader itself, -1 when unknown). The leader writes its own report
 * only on a notable change or every LEADER_REPORT_MAX_MS, so its
 * report_age_ms is the smaller of its report's age and lage: the
 * age of the latest sign of life, as for the others. */
static json_t *server_view(json_t *s, json_t *roles, int64_t now, int64_t lage)
{
    json_t *o = json_deep_copy(s);
    char k[32];
    snprintf(k, sizeof k, "%" JSON_INTEGER_FORMAT, json_integer_value(json_object_get(s, "id")));
    json_t *role = json_object_get(roles, k);
    json_object_set_new(o, "raft_role", role ? json_incref(role) : json_string("none"));
    json_object_set_new(
        o, "draining",
        json_boolean(server_draining(json_string_value(json_object_get(s, "name")))));
    json_object_set_new(o, "id", json_string(k));
    json_t *lr = json_object_get(s, "last_report_ms");
    if (json_is_integer(lr)) {
        int64_t age = now - json_integer_value(lr);
        const char *rs = json_string_value(role);
        if (lage >= 0 && rs && strcmp(rs, "leader") == 0 && lage < age)
            age = lage;
        json_object_set_new(o, "report_age_ms", json_integer(age));
    } else {
        json_object_set_new(o, "report_age_ms", json_null());
    }
    return o;
}

static int64_t leader_age(void)
{
    if (ms_raft_is_leader(g.raft))
        return 0;
    int64_t contact = ms_raft_leader_contact_ms(g.raft, NULL);
    return contact ? ms_mono_ms() - contact : -1;
}

static void servers_get(ms_cluster_job_t *j)
{
    json_t *list = state_servers(), *roles = raft_roles(), *s;
    int64_t now = wall_ms();
    size_t i;
    if (j->id[0]) {
        json_array_foreach(list, i,
                           s) if (strcmp(json_string_value(json_object_get(s, "name")), j->id) == 0)
        {
            job_reply(j, 200, server_view(s, roles, now, leader_age()));
            json_decref(list);
            json_decref(roles);
            return;
        }
        job_reply(j, 404, json_pack("{s:s,s:s}", "error", "unknown server", "field", "name"));
    } else {
        json_t *arr = json_array();
        int64_t la = leader_age();
        json_array_foreach(list, i, s) json_array_append_new(arr, server_view(s, roles, now, la));
        job_reply(j, 200, json_pack("{s:o}", "servers", arr));
    }
    json_decref(list);
    json_decref(roles);
}

static void servers_put(ms_cluster_job_t *j)
{
    json_t *o;
    if (body_json(j, &o) < 0)
        return;
    json_t *name = json_string(j->id);
    json_t *s = server_by("name", name);
    json_decref(name);
    if (!s) {
        json_decref(o);
        job_reply(j, 404, json_pack("{s:s,s:s}", "error", "unknown server", "field", "name"));
        return;
    }
    json_t *args =
        json_pack("{s:O,s:O,s:O,s:O,s:O,s:O,s:O}", "id", json_object_get(s, "id"), "name",
                  json_object_get(s, "name"), "addresses", json_object_get(s, "addresses"), "group",
                  json_object_get(s, "group"), "distribution", json_object_get(s, "distribution"),
                  "stream_limit", json_object_get(s, "stream_limit"), "bitrate_limit_kbps",
                  json_object_get(s, "bitrate_limit_kbps"));
    json_object_set_new(args, "distribution",
                        json_boolean(json_integer_value(json_object_get(s, "distribution"))));
    json_decref(s);
    static const char *const keys[] = {"group", "distribution", "stream_limit",
                                       "bitrate_limit_kbps"};
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        size_t i;
        for (i = 0; i < 4; i++)
            if (strcmp(k, keys[i]) == 0)
                break;
        if (i == 4) {
            job_reply(j, 400, json_pack("{s:s,s:s}", "error", "unknown key", "field", k));
            json_decref(o);
            json_decref(args);
            return;
        }
        json_object_set(args, k, v);
    }
    json_decref(o);
    if (cluster_write(cmd_with_req("server_upsert", args, j->req_key), API_DEADLINE_MS,
                      job_write_cb, j) < 0)
        job_reply(j, 500, json_pack("{s:s}", "error", "out of memory"));
}

/* POST /servers/{name}/drain and /undrain: the setting drain.{name} set
 * (true) or deleted; once applied, the answer is the server's view (with
 * "draining"). The leader's duties then hand its primaries to their backups
 * (or place them again) and place nothing more there (node/placement.c). */
static void drain_write_cb(void *ud, unsigned st, json_t *res)
{
    ms_cluster_job_t *j = ud;
    if (st != 200) {
        job_reply(j, st, json_deep_copy(res));
        return;
    }
    servers_get(j);
}

static void servers_drain(ms_cluster_job_t *j)
{
    json_t *name = json_string(j->id);
    json_t *s = server_by("name", name);
    json_decref(name);
    if (!s) {
        job_reply(j, 404, json_pack("{s:s,s:s}", "error", "unknown server", "field", "name"));
        return;
    }
    json_decref(s);
    if ((int)strlen(j->id) > DRAIN_NAME_MAX) {
        job_reply(j, 400,
                  json_pack("{s:s,s:s}", "error",
                            "server names longer than 57 characters cannot be drained", "field",
                            "name"));
        return;
    }
    char k[160]; /* j->id: at most 127 bytes */
    snprintf(k, sizeof k, DRAIN_PREFIX "%s", j->id);
    int on = strcmp(j->action, "drain") == 0;
    MS_INFO(CTX, "server %s: %s", j->id, on ? "draining (placement keeps away)" : "undrained");
    json_t *cmd = cmd_with_req(
        "setting_set", json_pack("{s:s,s:o}", "key", k, "value", on ? json_true() : json_null()),
        j->req_key);
    if (!cmd || cluster_write(cmd, API_DEADLINE_MS, drain_write_cb, j) < 0)
        job_reply(j, 500, json_pack("{s:s}", "error", "out of memory"));
}

/* DELETE /servers/{name} on the leader: move its streams, drop the row,
 * then remove it from raft. */
typedef struct {
    ms_cluster_job_t *job;
    uint64_t id;
    char name[MS_NAME_MAX];
    int pending, failed;
} rm_t;

/* Ends a removal: the server may be placed on again (g.removing). */
static void rm_free(rm_t *rm)
{
    g.removing[0] = '\0';
    free(rm);
}

static void rm_raft_cb(void *ud, int status)
{
    rm_t *rm = ud;
    if (status < 0)
        job_reply(
            rm->job, 503,
            json_pack("{s:s,s:s}", "error", "raft remove failed", "reason", strerror(-status)));
    else
        job_reply(rm->job, 200, json_pack("{s:b,s:s}", "ok", 1, "removed", rm->name));
    rm_free(rm);
}

static void drain_clear_cb(void *ud, unsigned st, json_t *res)
{
    (void)ud;
    if (st != 200)
        MS_WARN(CTX, "clearing the drain setting of a removed server refused (%u): %s", st,
                json_string_value(json_object_get(res, "error")));
}

static void rm_row_cb(void *ud, unsigned st, json_t *res)
{
    rm_t *rm = ud;
    if (st != 200 && st != 404) {
        job_reply(rm->job, st, json_deep_copy(res));
        rm_free(rm);
        return;
    }
    /* a server added again under this name starts undrained */
    if ((int)strlen(rm->name) <= DRAIN_NAME_MAX && server_draining(rm->name)) {
        char k[160];
        snprintf(k, sizeof k, DRAIN_PREFIX "%s", rm->name);
        json_t *cmd = ms_cmd_new("setting_set", json_pack("{s:s,s:n}", "key", k, "value"));
        if (cmd)
            cluster_write(cmd, API_DEADLINE_MS, drain_clear_cb, NULL);
    }
    int r = ms_raft_remove(g.raft, rm->id, rm_raft_cb, rm);
    if (r < 0)
        rm_raft_cb(rm, r);
}

static void rm_moved_cb(void *ud, unsigned st, json_t *res)
{
    rm_t *rm = ud;
    (void)res;
    if (st != 200)
        rm->failed = 1;
    if (--rm->pending > 0)
        return;
    if (rm->failed) {
        job_reply(rm->job, 503, json_pack("{s:s}", "error", "could not move the server's streams"));
        rm_free(rm);
        return;
    }
    cluster_write(ms_cmd_new("server_remove", json_pack("{s:s}", "name", rm->name)), 3000,
                  rm_row_cb, rm);
}

static const char *pick_server(json_t *servers, json_t *streams, const char *exclude, int64_t now);

static void rm_barrier_cb(void *ud, int status);

static void servers_delete(ms_cluster_job_t *j)
{
    if (!ms_raft_is_leader(g.raft)) {
        char path[256];
        snprintf(path, sizeof path, "/api/v1/servers/%s", j->id);
        to_leader(j, path);
        return;
    }
    json_t *name = json_string(j->id);
    json_t *s = server_by("name", name);
    json_decref(name);
    if (!s) {
        job_reply(j, 404, json_pack("{s:s,s:s}", "error", "unknown server", "field", "name"));
        return;
    }
    if (g.removing[0]) {
        json_decref(s);
        job_reply(
            j, 409,
            json_pack("{s:s,s:s}", "error", "another server is being removed", "field", "name"));
        return;
    }
    rm_t *rm = calloc(1, sizeof *rm);
    if (!rm) {
        json_decref(s);
        job_reply(j, 500, json_pack("{s:s}", "error", "out of memory"));
        return;
    }
    rm->job = j;
    rm->id = (uint64_t)json_integer_value(json_object_get(s, "id"));
    snprintf(rm->name, sizeof rm->name, "%.63s", j->id);
    json_decref(s);
    /* From now on the leader's duties place nothing on it; the barrier lets
     * the assignments they already submitted apply before the moves are
     * computed (else one landing after the moves kept a stream on it and
     * server_remove answered 409). */
    snprintf(g.removing, sizeof g.removing, "%s", rm->name);
    if (ms_raft_barrier(g.raft, rm_barrier_cb, rm) < 0)
        rm_barrier_cb(rm, -EAGAIN);
}

/* DELETE /servers/{name}, once earlier writes are applied: moves the
 * streams whose primary or backup the server is, then removes it. */
static void rm_barrier_cb(void *ud, int status)
{
    rm_t *rm = ud;
    if (status < 0) {
        job_reply(rm->job, 503, json_pack("{s:s}", "error", "not the leader"));
        rm_free(rm);
        return;
    }
    /* streams: a fresh list (each move is counted in it for the next pick) */
    json_t *servers = state_servers(), *streams = ms_fsm_list(g.fsm, "streams"), *st;
    size_t i;
    rm->pending = 1;
    json_array_foreach(streams, i, st)
    {
        json_t *pl = json_object_get(st, "placement");
        const char *p = json_string_value(json_object_get(pl, "primary"));
        const char *b = json_string_value(json_object_get(pl, "backup"));
        if ((p && strcmp(p, rm->name) == 0) || (b && strcmp(b, rm->name) == 0)) {
            const char *np = pick_server(servers, streams, rm->name, wall_ms());
            json_t *args = json_pack("{s:O,s:s?,s:n,s:s}", "stream", json_object_get(st, "uid"),
                                     "primary", np, "backup", "role", "primary");
            rm->pending++;
            if (np) { /* count it for the next pick */
                json_object_set_new(pl, "primary", json_string(np));
            }
            cluster_write(ms_cmd_new("stream_assign", args), 3000, rm_moved_cb, rm);
        }
    }
    json_decref(servers);
    json_decref(streams);
    rm_moved_cb(rm, 200, NULL);
}

/* ---- cluster -------------------------------------------------------------- */

static json_t *cluster_view(void)
{
    json_t *o = ms_raft_info_json(g.raft);
    json_object_set_new(o, "name", json_string(g.cfg->name));
    json_t *lid = json_object_get(json_object_get(o, "leader"), "id");
    json_t *ls = lid ? server_by("id", lid) : NULL;
    if (ls)
        json_object_set_new(json_object_get(o, "leader"), "name", /* a copy: the reply leaves */
                            json_deep_copy(json_object_get(ls, "name"))); /* the loop */
    json_decref(ls);
    int voters = 0;
    json_t *m, *vs = json_array();
    size_t i;
    json_array_foreach(json_object_get(o, "members"), i, m)
    {
        json_t *srv = server_by("id", json_object_get(m, "id"));
        if (srv)
            json_object_set_new(m, "name", json_deep_copy(json_object_get(srv, "name")));
        json_decref(srv);
        if (strcmp(json_string_value(json_object_get(m, "role")), "voter") == 0) {
            voters++;
            json_array_append(vs, json_object_get(m, "id"));
        }
    }
    json_object_set_new(o, "voter_ids", vs);
    /* the ids as strings, once the lookups by integer id are done */
    id_to_string(o, "id");
    if (json_is_object(json_object_get(o, "leader")))
        id_to_string(json_object_get(o, "leader"), "id");
    json_array_foreach(json_object_get(o, "members"), i, m) id_to_string(m, "id");
    json_array_foreach(vs, i, m) json_array_set_new(vs, i, id_json(m));
    return o;
}

/* POST /api/v1/cluster/submit (internal): a command from another node. */
static const char *const fwd_ops[] = {"server_upsert",     "server_report",
                                      "server_set_health", "stream_upsert",
                                      "stream_remove",     "stream_set_state",
                                      "stream_assign",     "archive_ranges_set",
                                      "group_upsert",      "group_remove",
                                      "cluster_upsert",    "cluster_remove",
                                      "setting_set",       NULL};

static int check_command(json_t *c, const char **why)
{
    const char *op = json_string_value(json_object_get(c, "op"));
    const char *rid = json_string_value(json_object_get(c, "req_id"));
    *why = NULL;
    if (!json_is_object(c))
        *why = "the command is not a JSON object";
    else if (json_integer_value(json_object_get(c, "v")) != MS_FSM_CMD_VERSION ||
             !json_is_integer(json_object_get(c, "v")))
        *why = "v: unsupported command version";
    else if (!json_is_integer(json_object_get(c, "ts")))
        *why = "ts: must be an integer";
    else if (!json_is_object(json_object_get(c, "args")))
        *why = "args: must be an object";
    else if (!rid || !rid[0] || strlen(rid) > 64 ||
             strspn(rid, "abcdefghijklmnopqrstuvwxyz"
                         "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                         "0123456789_-") != strlen(rid))
        *why = "req_id: 1-64 characters [A-Za-z0-9_-]";
    else if (!op)
        *why = "op: missing";
    else {
        int ok = 0;
        for (int i = 0; fwd_ops[i]; i++)
            ok |= strcmp(op, fwd_ops[i]) == 0;
        if (!ok)
            *why = "op: unknown or not accepted from another node";
        else if (json_object_size(c) != 5)
            *why = "unknown keys in the command";
    }
    if (!*why && strcmp(op, "stream_upsert") == 0) {
        json_t *s = json_deep_copy(json_object_get(json_object_get(c, "args"), "stream"));
        ms_stream_cfg_t cfg;
        if (!json_is_object(s) || ms_reconciler_cfg_from_state(s, &cfg) < 0)
            *why = "args.stream: not a valid stream";
        ms_stream_cfg_free(&cfg);
        json_decref(s);
    }
    return *why ? -EINVAL : 0;
}

static void nudge_cb(void *ud, int status)
{
    (void)ud;
    (void)status;
}

static void submit_job_cb(void *ud, unsigned st, json_t *res)
{
    ms_cluster_job_t *j = ud;
    /* Followers learn a new commit index with the next AppendEntries (up to
     * two heartbeats later); a barrier entry sends one at once, so the
     * forwarding follower applies the command (and answers) sooner. */
    if (st != 503 && ms_raft_is_leader(g.raft))
        ms_raft_barrier(g.raft, nudge_cb, NULL);
    if (st == 503) {
        job_reply(j, 503, json_deep_copy(res));
        return;
    }
    job_reply(j, 200, json_pack("{s:O,s:I}", "result", res, "index", (json_int_t)applied_index()));
}

static int member_id(uint64_t id)
{
    return ms_raft_member_role(g.raft, id) >= 0;
}

static void cluster_submit(ms_cluster_job_t *j)
{
    if (!ms_raft_is_leader(g.raft)) {
        job_reply(j, 503, json_pack("{s:s}", "error", "not the leader"));
        return;
    }
    if (!member_id(j->from_node)) {
        job_reply(j, 403, json_pack("{s:s}", "error", "the sending node is not a member"));
        return;
    }
    json_error_t e;
    json_t *c = j->body ? json_loadb(j->body, j->body_len, JSON_REJECT_DUPLICATES, &e) : NULL;
    const char *why = "the body is not JSON";
    if (!c || check_command(c, &why) < 0) {
        json_decref(c);
        job_reply(j, 400, json_pack("{s:s}", "error", why));
        return;
    }
    json_decref(c);
    wop_t *w = calloc(1, sizeof *w);
    if (!w) {
        job_reply(j, 500, NULL);
        return;
    }
    w->text = malloc(j->body_len + 1);
    memcpy(w->text, j->body, j->body_len);
    w->text[j->body_len] = '\0';
    w->len = j->body_len;
    w->deadline = ms_mono_ms() + 2000;
    w->cb = submit_job_cb;
    w->ud = j;
    uv_timer_init(g.loop, &w->timer);
    w->timer.data = w;
    g.outstanding++;
    if (ms_raft_submit(g.raft, w->text, w->len, submit_cb, w) != 0)
        wop_finish(w, 503, json_pack("{s:s}", "error", "not the leader"));
}

static void barrier_cb(void *ud, int status)
{
    ms_cluster_job_t *j = ud;
    if (status < 0) {
        job_reply(j, 503, json_pack("{s:s}", "error", "leadership lost"));
        return;
    }
    reconcile();
    j->proceed = 1;
    j->done(j);
}

/* GET/POST /groups, /clusters; GET/PUT/DELETE /{name} (docs/api.md): reads
 * from the local state, writes as group_upsert/group_remove and
 * cluster_upsert/cluster_remove (the FSM validates: CIDR subnets, servers
 * and group exist, 409 while referenced). */
static void named_crud(ms_cluster_job_t *j, const char *list, const char *up, const char *rm)
{
    if (strcmp(j->method, "GET") == 0 || strcmp(j->method, "HEAD") == 0) {
        json_t *all = ms_fsm_list(g.fsm, list), *o, *hit = NULL;
        size_t i;
        if (!all) {
            job_reply(j, 500, json_pack("{s:s}", "error", "state unavailable"));
            return;
        }
        if (!j->id[0]) {
            job_reply(j, 200, json_pack("{s:o}", list, all));
            return;
        }
        json_array_foreach(all, i, o) if (!hit && json_is_string(json_object_get(o, "name")) &&
                                          strcmp(json_string_value(json_object_get(o, "name")),
                                                 j->id) == 0) hit = json_incref(o);
        json_decref(all);
        if (hit)
            job_reply(j, 200, hit);
        else
            job_reply(j, 404, json_pack("{s:s,s:s}", "error", "not found", "field", "name"));
        return;
    }
    json_t *args = NULL;
    if (strcmp(j->method, "DELETE") == 0) {
        args = json_pack("{s:s}", "name", j->id);
    } else {
        if (body_json(j, &args) < 0)
            return;
        if (j->id[0])
            json_object_set_new(args, "name", json_string(j->id));
        const char *m = json_string_value(json_object_get(args, "main"));
        const char *a = json_string_value(json_object_get(args, "additional"));
        const char *nm = json_string_value(json_object_get(args, "name"));
        if (strcmp(list, "clusters") == 0 && m && a && nm) /* make the pool rule visible */
            MS_INFO(CTX,
                    "cluster %s (main %s, additional %s) asked for: its servers take reserved "
                    "streams only; new unreserved streams go to the servers in no cluster",
                    nm, m, a);
    }
    if (cluster_write(cmd_with_req(strcmp(j->method, "DELETE") == 0 ? rm : up, args, j->req_key),
                      API_DEADLINE_MS, job_write_cb, j) < 0)
        job_reply(j, 500, json_pack("{s:s}", "error", "out of memory"));
}

/* ---- dispatch ----------------------------------------------------------- */

/* X-MS-Req-Id (docs/api.md "Retries"). The command's req_id is
 * hex(SHA-256(client id))[0..32] followed by hex(SHA-256(method, resource,
 * id, action, body))[0..16] (the body as canonical JSON when it parses: key
 * order and spacing do not count). A retry of the same request is the same
 * command, deduplicated by the state (the first answer again); the same
 * client id with another request finds an applied command with its prefix
 * and another suffix and is answered 409. Returns 0, or -1 when j was
 * answered. Control loop. */
static int req_check(ms_cluster_job_t *j)
{
    j->req_key[0] = '\0';
    j->req_seen = 0;
    if (!j->req_id[0])
        return 0;
    uint8_t h[SHA256_DIGEST_LENGTH];
    char hex[2 * SHA256_DIGEST_LENGTH + 1];
    SHA256((const uint8_t *)j->req_id, strlen(j->req_id), h);
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", h[i]);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    json_t *bj = j->body && j->body_len ? json_loadb(j->body, j->body_len, 0, NULL) : NULL;
    char *canon = bj ? json_dumps(bj, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) : NULL;
    json_decref(bj);
    const char *b = canon ? canon : j->body ? j->body : "";
    size_t bl = canon ? strlen(canon) : j->body ? j->body_len : 0;
    unsigned hl = 0;
    int ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
    const char *parts[] = {j->method, j->res, j->id, j->action};
    for (size_t i = 0; ok && i < sizeof parts / sizeof *parts; i++)
        ok = EVP_DigestUpdate(md, parts[i], strlen(parts[i]) + 1) == 1; /* with the NUL */
    ok = ok && EVP_DigestUpdate(md, b, bl) == 1 && EVP_DigestFinal_ex(md, h, &hl) == 1;
    EVP_MD_CTX_free(md);
    free(canon);
    if (!ok) {
        job_reply(j, 500, json_pack("{s:s}", "error", "cannot hash the request"));
        return -1;
    }
    for (int i = 0; i < 8; i++)
        snprintf(hex + 32 + 2 * i, 3, "%02x", h[i]);
    snprintf(j->req_key, sizeof j->req_key, "%s", hex);
    /* applied commands of this client id: [prefix, prefix + "g") */
    char lo[33], hi[34];
    memcpy(lo, hex, 32);
    lo[32] = '\0';
    snprintf(hi, sizeof hi, "%sg", lo);
    sqlite3_stmt *q = NULL;
    int same = 0, other = 0;
    if (sqlite3_prepare_v2(ms_fsm_db(g.fsm),
                           "SELECT req_id FROM applied_reqs WHERE req_id >= ? AND req_id < ?", -1,
                           &q, NULL) == SQLITE_OK) {
        sqlite3_bind_text(q, 1, lo, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 2, hi, -1, SQLITE_STATIC);
        while (sqlite3_step(q) == SQLITE_ROW) {
            const char *k = (const char *)sqlite3_column_text(q, 0);
            if (k && strcmp(k, j->req_key) == 0)
                same = 1;
            else
                other = 1;
        }
    }
    sqlite3_finalize(q);
    if (other && !same) {
        job_reply(j, 409,
                  json_pack("{s:s,s:s}", "error",
                            "X-MS-Req-Id was already used for a different request", "field",
                            "X-MS-Req-Id"));
        return -1;
    }
    j->req_seen = same;
    return 0;
}

static void run_job(ms_cluster_job_t *j)
{
    int get = strcmp(j->method, "GET") == 0 || strcmp(j->method, "HEAD") == 0;
    if (g.stopping || g.handing_over) {
        job_reply(j, 503, json_pack("{s:s}", "error", "the node is stopping"));
        return;
    }
    if (!get && strcmp(j->res, "cluster") != 0 && req_check(j) < 0)
        return;
    if (strcmp(j->res, "cluster") == 0) {
        if (!j->id[0] && get)
            job_reply(j, 200, cluster_view());
        else if (strcmp(j->id, "submit") == 0 && j->internal)
            cluster_submit(j);
        else
            job_reply(j, 404, json_pack("{s:s}", "error", "not found"));
        return;
    }
    if (strcmp(j->res, "groups") == 0) {
        named_crud(j, "groups", "group_upsert", "group_remove");
        return;
    }
    if (strcmp(j->res, "clusters") == 0) {
        named_crud(j, "clusters", "cluster_upsert", "cluster_remove");
        return;
    }
    if (strcmp(j->res, "servers") == 0) {
        if (get)
            servers_get(j);
        else if (j->action[0])
            servers_drain(j);
        else if (strcmp(j->method, "PUT") == 0)
            servers_put(j);
        else
            servers_delete(j);
        return;
    }
    /* streams */
    if (get) { /* ?consistent=1 */
        if (ms_raft_is_leader(g.raft)) {
            if (ms_raft_barrier(g.raft, barrier_cb, j) < 0)
                job_reply(j, 503, json_pack("{s:s}", "error", "not the leader"));
        } else {
            char path[512];
            snprintf(path, sizeof path, "/api/v1/streams%s%s?consistent=1", j->id[0] ? "/" : "",
                     j->id);
            to_leader(j, path);
        }
        return;
    }
    if (strcmp(j->method, "POST") == 0 && !j->id[0])
        stream_put(j);
    else if (strcmp(j->method, "PUT") == 0)
        stream_put(j);
    else if (strcmp(j->method, "PATCH") == 0)
        stream_patch(j);
    else
        stream_action(j);
}

static void async_cb(uv_async_t *h)
{
    (void)h;
    pthread_mutex_lock(&g.qmu);
    ms_cluster_job_t *j = g.qhead;
    g.qhead = g.qtail = NULL;
    pthread_mutex_unlock(&g.qmu);
    while (j) {
        ms_cluster_job_t *next = j->next;
        j->next = NULL;
        run_job(j);
        j = next;
    }
}

int ms_cluster_post(ms_cluster_job_t *job)
{
    pthread_mutex_lock(&g.qmu);
    if (g.qclosed || !atomic_load(&g.enabled)) {
        pthread_mutex_unlock(&g.qmu);
        return -ESHUTDOWN;
    }
    job->next = NULL;
    if (g.qtail)
        g.qtail->next = job;
    else
        g.qhead = job;
    g.qtail = job;
    pthread_mutex_unlock(&g.qmu);
    uv_async_send(&g.async);
    return 0;
}

/* ---- periodic duties ------------------------------------------------------- */

static void busy_done(void *ud, unsigned st, json_t *res)
{
    int *flag = ud;
    if (st != 200 && flag != &g.report_busy)
        MS_WARN(CTX, "cluster write refused (%u): %s", st,
                json_string_value(json_object_get(res, "error")));
    (*flag)--;
}

static void self_upsert(void)
{
    /* the row is compared again only when a command was applied since it
     * last matched (nothing else changes it) */
    static uint64_t same_at;
    uint64_t applied = ms_fsm_applied(g.fsm);
    if (g.upsert_busy || (same_at && applied == same_at) || !raft_member())
        return;
    json_t *row = my_row();
    char want[300], rtsp[300];
    snprintf(want, sizeof want, "%s", g.http_base);
    snprintf(rtsp, sizeof rtsp, "rtsp://%s:%d", g.cfg->advertise, g.cfg->port_rtsp);
    int same = 0;
    if (row) {
        char have[300];
        server_http(row, have, sizeof have);
        /* the rtsp address too: RTSP redirects go there (node/rtsp_redirect.h) */
        const char *hr = json_string_value(json_array_get(json_object_get(row, "addresses"), 1));
        same = strcmp(have, want) == 0 && hr && strcmp(hr, rtsp) == 0 &&
               strcmp(json_string_value(json_object_get(row, "name")), g.cfg->name) == 0;
    }
    json_decref(row);
    if (same) {
        same_at = applied;
        return;
    }
    json_t *args = json_pack("{s:I,s:s,s:[s,s,s],s:s,s:b,s:I,s:I}", "id", (json_int_t)my_id(),
                             "name", g.cfg->name, "addresses", g.http_base, rtsp, g.raft_addr,
                             "group", g.cfg->cluster_group[0] ? g.cfg->cluster_group : "default",
                             "distribution", g.cfg->cluster_distribution, "stream_limit",
                             (json_int_t)g.cfg->cluster_stream_limit, "bitrate_limit_kbps",
                             (json_int_t)g.cfg->cluster_bitrate_limit_kbps);
    g.upsert_busy++;
    if (cluster_write(ms_cmd_new("server_upsert", args), 3000, busy_done, &g.upsert_busy) < 0)
        g.upsert_busy--;
}

static void sample_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    int64_t cpu = (int64_t)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec +
                  (int64_t)ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec;
    int64_t now = ms_mono_us();
    if (g.cpu_wall_last && now > g.cpu_wall_last)
        g.cpu_pct = 100.0 * (double)(cpu - g.cpu_last_us) / (double)(now - g.cpu_wall_last);
    g.cpu_last_us = cpu;
    g.cpu_wall_last = now;
}

static int64_t setting_int(const char *key, int64_t def);

/* What the last written load report said (report()): the leader compares
 * its load with it and writes only on a notable change. */
static struct {
    int valid;
    int streams, active, clients, kbps;
    int64_t total, used;
    int64_t at;    /* mono ms of that write */
    unsigned nrep; /* reports written (the HLS hints ride every 4th) */
} g_rep;

/* The leader's report is due: never written, its row not "up" or still
 * announcing a stop, LEADER_REPORT_MAX_MS since the last one, or the load
 * changed notably (counts; bitrate by more than a tenth; storage total, or
 * used by more than 1% of the total; the bitrate or storage limit crossed
 * either way: what placement.c reads of a server). Followers report every
 * REPORT_MS regardless: the leader judges their liveness by it. */
static int leader_report_due(json_t *row, int streams, int active, int clients, int kbps,
                             int64_t total, int64_t used, int64_t now)
{
    const char *h = json_string_value(json_object_get(row, "health"));
    if (!g_rep.valid || !h || strcmp(h, "up") != 0 ||
        json_is_true(json_object_get(json_object_get(row, "load"), "leaving")) ||
        now - g_rep.at >= LEADER_REPORT_MAX_MS)
        return 1;
    if (streams != g_rep.streams || active != g_rep.active || clients != g_rep.clients ||
        total != g_rep.total)
        return 1;
    int dk = kbps > g_rep.kbps ? kbps - g_rep.kbps : g_rep.kbps - kbps;
    if ((int64_t)dk * 10 > (int64_t)(kbps > g_rep.kbps ? kbps : g_rep.kbps))
        return 1;
    int64_t du = used > g_rep.used ? used - g_rep.used : g_rep.used - used;
    if (total > 0 && du * 100 > total)
        return 1;
    int64_t bl = json_integer_value(json_object_get(row, "bitrate_limit_kbps"));
    if (bl > 0 && (kbps >= bl) != (g_rep.kbps >= bl))
        return 1;
    int64_t pct = setting_int("storage_max_pct", 80);
    if (total > 0 && (used * 100 > pct * total) != (g_rep.used * 100 > pct * total))
        return 1;
    return 0;
}

static void report(void)
{
    json_t *row = my_row();
    if (!row || g.report_busy || g.handing_over) { /* leaving: handover_announce */
        json_decref(row);
        return;
    }
    int leader = ms_raft_is_leader(g.raft);
    ms_stream_t **list = NULL;
    size_t n = ms_streams_list(&list);
    int running = 0, active = 0, clients = 0;
    double kbps = 0;
    for (size_t i = 0; i < n; i++) {
        ms_stream_load_t ld;
        ms_stream_get_load(list[i], &ld);
        if (ld.run == MS_RUN_ACTIVE) {
            running++;
            active += ld.source_active;
            clients += ld.clients;
            kbps += ld.bitrate_kbps;
        }
        ms_stream_unref(list[i]);
    }
    free(list);
    json_t *storage = NULL, *root;
    int64_t total = 0, used = 0;
    size_t i;
    if (ms_dvr_storage(&storage) == 0) {
        json_array_foreach(json_object_get(storage, "roots"), i, root)
        {
            total += json_integer_value(json_object_get(root, "total_bytes"));
            used += json_integer_value(json_object_get(root, "used_bytes"));
        }
    }
    int64_t now = ms_mono_ms();
    if (leader && !leader_report_due(row, running, active, clients, (int)kbps, total, used, now)) {
        json_decref(row);
        json_decref(storage);
        return;
    }
    json_decref(row);
    g_rep.valid = 1;
    g_rep.streams = running;
    g_rep.active = active;
    g_rep.clients = clients;
    g_rep.kbps = (int)kbps;
    g_rep.total = total;
    g_rep.used = used;
    g_rep.at = now;
    sample_cpu(); /* averaged since the previous written report */
    json_t *load =
        json_pack("{s:i,s:i,s:i,s:i,s:f}", "streams", running, "active", active, "clients", clients,
                  "bitrate_kbps", (int)kbps, "cpu_pct", (double)(int)(g.cpu_pct * 10) / 10.0);
    json_object_set_new(load, "storage",
                        storage ? json_incref(json_object_get(storage, "roots")) : json_array());
    /* the Lua scripts this node runs (docs/lua.md: each node's own files) */
    json_t *lua = ms_lua_global() ? ms_lua_status(ms_lua_global()) : NULL;
    if (lua)
        json_object_set(load, "lua_hash", json_object_get(lua, "hash"));
    json_decref(lua);
    /* a new output adds the segments cut since the report (node/hls_hint.c);
     * 100 streams make ~6 KB of it: every 4th report of a follower (2 s),
     * every report of the leader (its reports are rarer), none while this
     * is the only server (nobody else starts this node's streams) */
    json_t *servers = state_servers();
    int others = json_array_size(servers) > 1;
    json_decref(servers);
    if (others && (leader || g_rep.nrep % 4 == 0))
        json_object_set_new(load, "hls", ms_hls_hint_report());
    g_rep.nrep++;
    json_decref(storage);
    json_t *args =
        json_pack("{s:s,s:I,s:I,s:o,s:s}", "name", g.cfg->name, "storage_total", (json_int_t)total,
                  "storage_used", (json_int_t)used, "load", load, "health", "up");
    g.report_busy++;
    if (cluster_write(ms_cmd_new("server_report", args), 1500, busy_done, &g.report_busy) < 0)
        g.report_busy--;
}

/* Coarse ranges of the local archive of uid as [[from, to], ...] (UTC
 * seconds, sorted, not overlapping: what archive_ranges_set accepts); NULL
 * when the index cannot be read. Reads the local index (a small query). */
static json_t *local_ranges(const char *uid)
{
    json_t *j = NULL, *r;
    if (ms_dvr_ranges(uid, 0, 0, &j) < 0)
        return NULL;
    json_t *out = json_array(), *last = NULL;
    size_t i;
    json_array_foreach(json_object_get(j, "ranges"), i, r)
    {
        json_int_t f = json_integer_value(json_object_get(r, "from"));
        json_int_t t = f + json_integer_value(json_object_get(r, "duration"));
        json_int_t lt = last ? json_integer_value(json_array_get(last, 1)) : -1;
        if (last && f <= lt) { /* rounding made them touch: one range */
            if (t > lt)
                json_array_set_new(last, 1, json_integer(t));
            continue;
        }
        last = json_pack("[I,I]", f, t);
        json_array_append_new(out, last);
    }
    json_decref(j);
    return out;
}

/* Index handoff (docs/cluster.md "Archive index handoff"): every node
 * publishes the coarse ranges of its local archive per recording stream
 * into the state (archive_ranges_set), only those that differ from what
 * the state holds for it; a stream that does not record has nothing
 * published (its row is cleared). */
static void archive_publish(void)
{
    json_t *row = my_row();
    if (!row || g.archive_busy) {
        json_decref(row);
        return;
    }
    json_decref(row);
    json_t *streams = state_streams(), *arch = state_archive();
    json_t *st, *a;
    size_t i, k;
    json_array_foreach(streams, i, st)
    {
        const char *uid = json_string_value(json_object_get(st, "uid"));
        if (!uid)
            continue;
        json_t *have = NULL;
        json_array_foreach(arch, k, a)
        {
            const char *u = json_string_value(json_object_get(a, "stream_uid"));
            const char *s = json_string_value(json_object_get(a, "server"));
            if (u && s && strcmp(u, uid) == 0 && strcmp(s, g.cfg->name) == 0) {
                json_t *rg = json_object_get(a, "ranges");
                have = json_is_string(rg) ? json_loads(json_string_value(rg), 0, NULL)
                                          : json_incref(rg);
            }
        }
        int rec = json_is_true(json_object_get(json_object_get(st, "dvr"), "enabled"));
        json_t *want = rec ? local_ranges(uid) : json_array();
        int same = have ? json_equal(want, have) : json_array_size(want) == 0;
        if (want && !same) {
            json_t *args =
                json_pack("{s:s,s:s,s:O}", "stream", uid, "server", g.cfg->name, "ranges", want);
            g.archive_busy++;
            if (cluster_write(ms_cmd_new("archive_ranges_set", args), 3000, busy_done,
                              &g.archive_busy) < 0)
                g.archive_busy--;
        }
        json_decref(want);
        json_decref(have);
    }
    json_decref(arch);
    json_decref(streams);
}

static int server_healthy(json_t *s, int64_t now)
{
    const char *name = json_string_value(json_object_get(s, "name"));
    if (name && strcmp(name, g.cfg->name) == 0)
        return 1; /* the leader itself */
    json_t *lr = json_object_get(s, "last_report_ms");
    const char *h = json_string_value(json_object_get(s, "health"));
    return h && strcmp(h, "up") == 0 && json_is_integer(lr) &&
           now - json_integer_value(lr) <= setting_int("down_after_ms", DOWN_AFTER_MS);
}

/* Least-loaded healthy server taking streams (fewest assigned streams, then
 * name order), not exclude; NULL when none. Borrowed from servers. */
static const char *pick_server(json_t *servers, json_t *streams, const char *exclude, int64_t now)
{
    const char *best = NULL;
    int64_t best_n = 0;
    json_t *s, *st;
    size_t i, k;
    json_array_foreach(servers, i, s)
    {
        const char *name = json_string_value(json_object_get(s, "name"));
        if (!name || (exclude && strcmp(name, exclude) == 0) || !server_healthy(s, now) ||
            !json_integer_value(json_object_get(s, "distribution")))
            continue;
        int64_t n = 0;
        json_array_foreach(streams, k, st)
        {
            const char *p =
                json_string_value(json_object_get(json_object_get(st, "placement"), "primary"));
            n += p && strcmp(p, name) == 0;
        }
        if (n >= json_integer_value(json_object_get(s, "stream_limit")))
            continue;
        if (!best || n < best_n) {
            best = name;
            best_n = n;
        }
    }
    return best;
}

/* An integer cluster setting (setting_set; docs/cluster.md "Placement"),
 * def when absent. */
static int64_t setting_int(const char *key, int64_t def)
{
    json_t *all = cached_list(&g_cache.settings, "settings", 0);
    json_t *j = json_object_get(all, key);
    int64_t v = def;
    if (json_is_integer(j))
        v = json_integer_value(j);
    else if (json_is_boolean(j))
        v = json_is_true(j);
    json_decref(all);
    return v;
}

/* The leader logs why a stream is unplaced (WARN), or the note of how it
 * was placed (a reserved stream without a cluster in its group: WARN),
 * once per change of that text: {uid: text} of what was logged last. */
static json_t *g_placement_logged;

static void placement_log_once(const char *uid, const char *name, const char *text, int placed)
{
    if (!uid)
        return;
    if (!g_placement_logged && !(g_placement_logged = json_object()))
        return;
    const char *last = json_string_value(json_object_get(g_placement_logged, uid));
    if (!text || !text[0]) {
        if (placed)
            json_object_del(g_placement_logged, uid);
        return;
    }
    if (last && strcmp(last, text) == 0)
        return;
    json_object_set_new(g_placement_logged, uid, json_string(text));
    if (placed)
        MS_WARN(CTX, "stream %s: %s", name ? name : uid, text);
    else
        MS_WARN(CTX, "stream %s: unplaced: %s", name ? name : uid, text);
}

static void placement_opts(ms_placement_opts_t *o, int64_t now)
{
    ms_placement_opts_defaults(o);
    o->now_ms = now;
    o->self = g.cfg->name;
    o->down_after_ms = (int)setting_int("down_after_ms", DOWN_AFTER_MS);
    o->storage_max_pct = (int)setting_int("storage_max_pct", 80);
    o->failback = setting_int("failback", 0) != 0;
}

/* Report ages observed on this node: every node (not only the leader)
 * notes the monotonic time at which each server's last_report_ms last
 * changed in its applied state, so a freshly elected leader already knows
 * how long a server has been silent without trusting other clocks and
 * without waiting a grace period (docs/cluster.md "Failover"). */
#define OBS_MAX 64
static struct {
    char name[64];
    int64_t last_report_ms, seen_mono;
} g_obs[OBS_MAX];
static int g_nobs;

static void observe_reports(void)
{
    if (!g.fsm)
        return;
    json_t *servers = state_servers(), *s;
    size_t i;
    int64_t now = ms_mono_ms();
    int fresh = 0;
    /* The leader writes its own report only on a notable change or every
     * LEADER_REPORT_MAX_MS (report()): a follower counts the leader's
     * silence from the last message it had from it (raft heartbeats every
     * 50 ms), so a leader that dies is as silent here as a follower that
     * dies, and one alive is never silent. */
    uint64_t lid = 0;
    int64_t contact = ms_raft_leader_contact_ms(g.raft, &lid);
    json_array_foreach(servers, i, s)
    {
        const char *name = json_string_value(json_object_get(s, "name"));
        int64_t lr = json_integer_value(json_object_get(s, "last_report_ms"));
        if (!name || strlen(name) >= sizeof g_obs[0].name)
            continue;
        int k;
        for (k = 0; k < g_nobs && strcmp(g_obs[k].name, name) != 0; k++)
            ;
        if (k == g_nobs) {
            if (g_nobs == OBS_MAX)
                continue;
            g_nobs++;
            snprintf(g_obs[k].name, sizeof g_obs[k].name, "%s", name);
            g_obs[k].last_report_ms = lr;
            g_obs[k].seen_mono = now; /* first seen: counts from here */
            fresh = 1;
        } else if (g_obs[k].last_report_ms != lr) {
            g_obs[k].last_report_ms = lr;
            g_obs[k].seen_mono = now;
            fresh = 1;
        }
        if (lid && (uint64_t)json_integer_value(json_object_get(s, "id")) == lid &&
            contact > g_obs[k].seen_mono)
            g_obs[k].seen_mono = contact;
    }
    if (fresh) /* a new load report: where each stream's HLS numbering stands */
        ms_hls_hint_update(servers);
    json_decref(servers);
}

/* Probes of servers silent since before this node's election: a server
 * whose HTTP port refuses the connection has no process behind it (kill -9,
 * crash), so no election held its reports up: like the previous leader it
 * is exempt from the settling wait and from the floor on its silence
 * (observed_ages). A server cut off by a partition does not refuse (no
 * RST): the connect times out and nothing changes for it. */
static struct {
    char name[64];
    int64_t term_since; /* leader_since of the leadership that probed it */
    int refused;
} g_probe[OBS_MAX];

typedef struct {
    uv_work_t work;
    char base[300], name[64];
    int64_t term_since;
    uint64_t from; /* this node's raft id (X-MS-Node-Id) */
    int rc;
} probe_t;

static void probe_work(uv_work_t *req)
{
    probe_t *p = req->data;
    int st = 0;
    char *resp = NULL;
    p->rc = ms_chttp_request(p->base, "GET", "/api/v1/cluster", NULL, 0, g.cfg->secret, p->from,
                             1000, &st, &resp);
    free(resp);
}

static void probe_done(uv_work_t *req, int status)
{
    probe_t *p = req->data;
    (void)status;
    g.outstanding--;
    for (int k = 0; k < OBS_MAX; k++)
        if (strcmp(g_probe[k].name, p->name) == 0 && g_probe[k].term_since == p->term_since &&
            g.leader_since == p->term_since && p->rc == -ECONNREFUSED) {
            g_probe[k].refused = 1;
            MS_INFO(CTX, "server %s: connection refused: no process, no settling wait for it",
                    p->name);
        }
    free(p);
}

/* 1 when name refused this leadership's probe. */
static int probe_refused(const char *name)
{
    for (int k = 0; name && k < OBS_MAX; k++)
        if (g_probe[k].name[0] && strcmp(g_probe[k].name, name) == 0)
            return g_probe[k].refused && g_probe[k].term_since == g.leader_since;
    return 0;
}

/* While settling, probes once each server (not this one, not the previous
 * leader) whose last report was observed before this leadership began. */
static void probe_silent(json_t *servers)
{
    json_t *s;
    size_t i;
    if (!g.leader_since || ms_mono_ms() - g.leader_since >= LEADER_SETTLE_MS)
        return;
    json_array_foreach(servers, i, s)
    {
        const char *name = json_string_value(json_object_get(s, "name"));
        if (!name || strlen(name) >= sizeof g_probe[0].name || strcmp(name, g.cfg->name) == 0 ||
            (uint64_t)json_integer_value(json_object_get(s, "id")) == g.prev_leader)
            continue;
        int k, seen_before = 0;
        for (k = 0; k < g_nobs; k++)
            if (strcmp(g_obs[k].name, name) == 0)
                seen_before = g_obs[k].seen_mono < g.leader_since;
        if (!seen_before)
            continue;
        int free_k = -1;
        for (k = 0; k < OBS_MAX; k++) {
            if (strcmp(g_probe[k].name, name) == 0)
                break;
            if (free_k < 0 && !g_probe[k].name[0])
                free_k = k;
        }
        if (k == OBS_MAX && (k = free_k) < 0)
            continue;
        if (g_probe[k].name[0] && g_probe[k].term_since == g.leader_since)
            continue; /* probed already */
        probe_t *p = calloc(1, sizeof *p);
        if (!p)
            return;
        server_http(s, p->base, sizeof p->base);
        if (!p->base[0]) {
            free(p);
            continue;
        }
        snprintf(g_probe[k].name, sizeof g_probe[k].name, "%s", name);
        g_probe[k].term_since = g.leader_since;
        g_probe[k].refused = 0;
        snprintf(p->name, sizeof p->name, "%s", name);
        p->term_since = g.leader_since;
        p->from = my_id();
        p->work.data = p;
        if (uv_queue_work(g.loop, &p->work, probe_work, probe_done) == 0)
            g.outstanding++;
        else
            free(p);
    }
}

/* Rewrites last_report_ms of each server (servers: ms_fsm_list array,
 * modified in place) to the leader's wall clock minus the age observed
 * here, so placement.c's age test uses this node's observation. */
static void observed_ages(json_t *servers, int64_t now_wall)
{
    json_t *s;
    size_t i;
    int64_t now = ms_mono_ms();
    json_array_foreach(servers, i, s)
    {
        const char *name = json_string_value(json_object_get(s, "name"));
        for (int k = 0; name && k < g_nobs; k++)
            if (strcmp(g_obs[k].name, name) == 0 &&
                json_is_integer(json_object_get(s, "last_report_ms"))) {
                int64_t seen = g_obs[k].seen_mono;
                /* After an election the others' reports may have been held
                 * up longer than the settling period (a forward stuck on an
                 * old leader cut off by a partition): while leading, their
                 * silence counts from the end of settling. Not the previous
                 * leader's: it submitted its own reports. */
                if (g.leader_since && seen < g.leader_since + LEADER_SETTLE_MS &&
                    (uint64_t)json_integer_value(json_object_get(s, "id")) != g.prev_leader &&
                    !probe_refused(name))
                    seen = g.leader_since + LEADER_SETTLE_MS;
                json_object_set_new(s, "last_report_ms", json_integer(now_wall - (now - seen)));
            }
    }
}

/* The leader's duties run after every applied command and every tick, but
 * their decisions (servers marked down, ms_placement_plan) depend only on
 * the streams, groups, clusters and settings (ms_fsm_changes()) and, per
 * server, on what placement.c reads of it: health, healthy now (the report
 * age against down_after_ms, as observed here), distribution, stream
 * limit, bitrate and storage over their limits, group. A load report
 * changes none of these unless it crosses a limit or brings a server back,
 * so while they stay equal and the last run decided nothing, the run is
 * skipped (the plan would be empty again). */
static struct {
    ms_buf_t sig;     /* inputs of the last full run */
    int quiet;        /* that run wrote nothing and was not settling */
    int alone;        /* that run saw no server but this one, no removal under way */
    uint64_t applied; /* ms_fsm_applied() at that run */
    uint64_t runs;    /* full runs and skips (read in a debugger) */
    uint64_t skips;
} g_duty = {.sig = MS_BUF_INIT};

/* placement.c's reading of a number (booleans are 0/1). */
static int64_t num_of(json_t *v)
{
    if (json_is_boolean(v))
        return json_is_true(v);
    return json_is_integer(v) ? json_integer_value(v) : (int64_t)json_number_value(v);
}

/* The inputs of leader_duties' decisions (see g_duty) into b. servers: as
 * leader_duties prepared them (observed ages, removal under way). */
static void duty_inputs(ms_buf_t *b, json_t *servers, const char *old_leader, int64_t now)
{
    json_t *s;
    size_t i;
    int64_t pct = setting_int("storage_max_pct", 80);
    ms_buf_printf(b, "%" PRIu64 " %zu:%s %zu:%s\n", ms_fsm_changes(g.fsm), strlen(g.removing),
                  g.removing, old_leader ? strlen(old_leader) : 0, old_leader ? old_leader : "");
    json_array_foreach(servers, i, s)
    {
        const char *name = json_string_value(json_object_get(s, "name"));
        const char *health = json_string_value(json_object_get(s, "health"));
        const char *grp = json_string_value(json_object_get(s, "group"));
        int64_t bl = num_of(json_object_get(s, "bitrate_limit_kbps"));
        int64_t tot = num_of(json_object_get(s, "storage_total"));
        int64_t used = num_of(json_object_get(s, "storage_used"));
        int over_bitrate =
            bl > 0 && num_of(json_object_get(json_object_get(s, "load"), "bitrate_kbps")) >= bl;
        ms_buf_printf(b, "%zu:%s %zu:%s %d %" PRId64 " %" PRId64 " %" PRId64 " %d %zu:%s %d\n",
                      name ? strlen(name) : 0, name ? name : "", health ? strlen(health) : 0,
                      health ? health : "", server_healthy(s, now),
                      num_of(json_object_get(s, "distribution")),
                      num_of(json_object_get(s, "draining")),
                      num_of(json_object_get(s, "stream_limit")), over_bitrate,
                      grp ? strlen(grp) : 0, grp ? grp : "", tot > 0 && used * 100 > pct * tot);
    }
}

static void leader_duties(void)
{
    if (!ms_raft_is_leader(g.raft) || g.duty_busy)
        return;
    if (!g.leader_since)
        g.leader_since = ms_mono_ms();
    /* settling: a new leader assigns unassigned streams only, until live
     * nodes' reports held up by the election had time to land */
    int grace = ms_mono_ms() - g.leader_since < LEADER_SETTLE_MS;
    /* Alone (a single-node cluster): no report age can flip over time (the
     * leader is always healthy to itself), so while nothing was applied
     * since a quiet run the inputs are the same without reading them. */
    if (!grace && g_duty.quiet && g_duty.alone && !g.removing[0] &&
        g_duty.applied == ms_fsm_applied(g.fsm)) {
        g_duty.skips++;
        return;
    }
    g_duty.applied = ms_fsm_applied(g.fsm);
    int po_down = (int)setting_int("down_after_ms", DOWN_AFTER_MS);
    int64_t now = wall_ms();
    observe_reports();
    json_t *servers = servers_copy(), *streams = state_streams();
    json_t *s, *st;
    size_t i;
    int wrote = 0;
    probe_silent(servers);
    observed_ages(servers, now);
    json_array_foreach(servers, i, s)
    {
        const char *sn = json_string_value(json_object_get(s, "name"));
        if (g.removing[0] && sn && strcmp(sn, g.removing) == 0) /* DELETE under way */
            json_object_set_new(s, "distribution", json_integer(0));
    }
    /* The previous leader submitted its own reports, so no election held
     * them up: when it is the server gone silent, it is marked down and its
     * streams fail over without waiting for the settling period (the
     * others' delayed reports only matter for the others). */
    const char *old_leader = NULL;
    json_array_foreach(servers, i, s)
    {
        if (g.prev_leader && g.prev_leader != my_id() &&
            (uint64_t)json_integer_value(json_object_get(s, "id")) == g.prev_leader &&
            !server_healthy(s, now))
            old_leader = json_string_value(json_object_get(s, "name"));
    }
    g_duty.alone =
        !g.removing[0] && json_array_size(servers) == 1 &&
        (uint64_t)json_integer_value(json_object_get(json_array_get(servers, 0), "id")) == my_id();
    ms_buf_t sig = MS_BUF_INIT;
    duty_inputs(&sig, servers, old_leader, now);
    if (!grace && g_duty.quiet && !sig.err && !g_duty.sig.err && sig.len == g_duty.sig.len &&
        memcmp(sig.data, g_duty.sig.data, sig.len) == 0) {
        g_duty.skips++;
        ms_buf_free(&sig);
        json_decref(servers);
        json_decref(streams);
        return;
    }
    ms_buf_free(&g_duty.sig);
    g_duty.sig = sig;
    g_duty.runs++;
    {
        json_array_foreach(servers, i, s)
        {
            const char *h = json_string_value(json_object_get(s, "health"));
            const char *sn = json_string_value(json_object_get(s, "name"));
            if (grace && !(old_leader && sn && strcmp(sn, old_leader) == 0) && !probe_refused(sn))
                continue;
            if (h && strcmp(h, "down") != 0 && !server_healthy(s, now)) {
                g.duty_busy++;
                wrote++;
                MS_INFO(CTX, "server %s: no report for %d ms: down",
                        json_string_value(json_object_get(s, "name")), po_down);
                cluster_write_ex(
                    ms_cmd_new("server_set_health",
                               json_pack("{s:O,s:s}", "name", json_object_get(s, "name"), "health",
                                         "down")),
                    2000, 1, busy_done, &g.duty_busy);
            }
        }
    }
    /* placement (node/placement.c): new streams, failover to the backup,
     * a new backup; during the grace period only unassigned streams */
    json_t *groups = state_groups(), *clusters = state_clusters();
    ms_placement_opts_t po;
    placement_opts(&po, now);
    json_t *plan = ms_placement_plan(servers, groups ? groups : json_array(),
                                     clusters ? clusters : json_array(), streams, &po);
    json_t *d;
    /* the next run may be skipped when this one had nothing to decide */
    g_duty.quiet = !grace && !wrote && plan && json_array_size(plan) == 0;
    json_array_foreach(plan, i, d)
    {
        json_t *cur = NULL;
        size_t k;
        json_array_foreach(streams, k, st) if (json_equal(json_object_get(st, "uid"),
                                                          json_object_get(d, "uid"))) cur = st;
        json_t *pl = json_object_get(cur, "placement");
        const char *p = json_string_value(json_object_get(pl, "primary"));
        const char *np = json_string_value(json_object_get(d, "primary"));
        if (cur && json_array_size(servers) > 0) /* none: the node is starting */
            placement_log_once(json_string_value(json_object_get(d, "uid")),
                               json_string_value(json_object_get(d, "name")),
                               json_string_value(json_object_get(d, np ? "note" : "reason")),
                               np != NULL);
        if (!cur ||
            (grace && p && !(old_leader && strcmp(p, old_leader) == 0) && !probe_refused(p)) ||
            (!np && !p))
            continue;
        if (!p || strcmp(np, p) != 0)
            MS_INFO(CTX, "stream %s: primary %s%s%s%s",
                    json_string_value(json_object_get(d, "name")), np, p ? " (was " : "",
                    p ? p : "",
                    p ? (json_is_true(json_object_get(d, "failover")) ? ", down: backup activated)"
                                                                      : ")")
                      : "");
        json_t *args =
            json_pack("{s:O,s:O,s:O,s:s,s:o}", "stream", json_object_get(d, "uid"), "primary",
                      json_object_get(d, "primary"), "backup", json_object_get(d, "backup"), "role",
                      /* a transferred stream stays "migrated" on its server */
                      p && np && strcmp(p, np) == 0 &&
                              strcmp(json_string_value(json_object_get(pl, "role"))
                                         ? json_string_value(json_object_get(pl, "role"))
                                         : "",
                                     "migrated") == 0
                          ? "migrated"
                          : "primary",
                      "if_primary", p ? json_string(p) : json_null());
        g.duty_busy++;
        cluster_write_ex(ms_cmd_new("stream_assign", args), 2000, 1, busy_done, &g.duty_busy);
    }
    json_decref(plan);
    json_decref(groups);
    json_decref(clusters);
    json_decref(servers);
    json_decref(streams);
}

/* POST /streams/{id}/transfer, body optional (docs/api.md): {"cluster":
 * name} or {"server": name} (at most one; neither = an automatic search
 * excluding the current primary), "force": true (override the one-hour
 * cooldown, logged at WARN), "dry_run": true (answer the search's outcome
 * {"main", "additional", "rejected": [{"server", "reason"}]} and move
 * nothing). Any other key is 400 with its name in "field". Written as
 * stream_assign with role "migrated", transfer true (the FSM refuses a
 * second transfer within the hour unless force: 409 + time_left_s) and
 * if_primary (a concurrent failover wins). The archive stays where it is
 * (archive_locations keep every server's ranges). Takes cur. */
static void stream_transfer(ms_cluster_job_t *j, json_t *cur)
{
    json_t *body = NULL;
    const char *want = NULL, *target = NULL;
    int force = 0, dry = 0;
    const char *bad = NULL, *why = NULL;
    if (j->body && j->body_len) {
        json_error_t e;
        body = json_loadb(j->body, j->body_len, JSON_REJECT_DUPLICATES, &e);
        if (!json_is_object(body)) {
            bad = "body";
            why = "the body must be a JSON object: {\"cluster\"|\"server\": name, \"force\": "
                  "bool, \"dry_run\": bool}";
        }
        const char *k;
        json_t *v;
        json_object_foreach(json_is_object(body) ? body : NULL, k, v)
        {
            if (bad)
                break;
            if (strcmp(k, "cluster") == 0 || strcmp(k, "server") == 0) {
                if (!json_is_string(v) && !json_is_null(v)) {
                    bad = k;
                    why = "must be a name";
                } else if (k[0] == 'c') {
                    want = json_string_value(v);
                } else {
                    target = json_string_value(v);
                }
            } else if (strcmp(k, "force") == 0 || strcmp(k, "dry_run") == 0) {
                if (!json_is_boolean(v)) {
                    bad = k;
                    why = "must be true or false";
                } else if (k[0] == 'f') {
                    force = json_is_true(v);
                } else {
                    dry = json_is_true(v);
                }
            } else {
                bad = k;
                why = "unknown key (expected cluster, server, force, dry_run)";
            }
        }
        if (!bad && want && target) {
            bad = "server";
            why = "give either cluster or server, not both";
        }
    }
    if (bad) {
        job_reply(j, 400, json_pack("{s:s,s:s}", "error", why, "field", bad));
        json_decref(body);
        json_decref(cur);
        return;
    }
    if (want) {
        json_t *cls = state_clusters(), *c;
        size_t i;
        int found = 0;
        json_array_foreach(cls, i, c) found |=
            strcmp(json_string_value(json_object_get(c, "name"))
                       ? json_string_value(json_object_get(c, "name"))
                       : "",
                   want) == 0;
        json_decref(cls);
        if (!found) {
            json_decref(body);
            json_decref(cur);
            job_reply(j, 404,
                      json_pack("{s:s,s:s}", "error", "no such cluster", "field", "cluster"));
            return;
        }
    }
    if (target) {
        json_t *srv = server_by("name", json_object_get(body, "server"));
        int found = srv != NULL;
        json_decref(srv);
        if (!found) {
            json_decref(body);
            json_decref(cur);
            job_reply(j, 404, json_pack("{s:s,s:s}", "error", "no such server", "field", "server"));
            return;
        }
    }
    const char *prim =
        json_string_value(json_object_get(json_object_get(cur, "placement"), "primary"));
    int64_t now = wall_ms();
    observe_reports();
    json_t *servers = servers_copy(), *streams = state_streams();
    json_t *groups = state_groups(), *clusters = state_clusters();
    observed_ages(servers, now);
    ms_placement_opts_t po;
    placement_opts(&po, now);
    json_t *found = target ? ms_placement_search_server(servers, groups ? groups : json_array(),
                                                        clusters ? clusters : json_array(), streams,
                                                        cur, target, &po)
                           : ms_placement_search(servers, groups ? groups : json_array(),
                                                 clusters ? clusters : json_array(), streams, cur,
                                                 want, prim, &po);
    json_decref(servers);
    json_decref(streams);
    json_decref(groups);
    json_decref(clusters);
    const char *np = json_string_value(json_object_get(found, "primary"));
    const char *sname = json_string_value(json_object_get(cur, "name"));
    int64_t last = json_integer_value(
        json_object_get(json_object_get(cur, "placement"), "transferred_at")); /* seconds */
    if (!found) {
        job_reply(j, 500, json_pack("{s:s}", "error", "out of memory"));
    } else if (dry) {
        json_t *rep = json_pack(
            "{s:O,s:O,s:O}", "main", np ? json_object_get(found, "primary") : json_null(),
            "additional",
            np && json_object_get(found, "backup") ? json_object_get(found, "backup") : json_null(),
            "rejected", json_object_get(found, "rejected"));
        if (rep && !np)
            json_object_set(rep, "reason", json_object_get(found, "reason"));
        job_reply(j, 200, rep);
    } else if (!np) {
        job_reply(j, 409,
                  json_pack("{s:s,s:s?,s:O}", "error", "no qualifying server for the transfer",
                            "reason", json_string_value(json_object_get(found, "reason")),
                            "rejected", json_object_get(found, "rejected")));
    } else {
        json_t *args = json_pack(
            "{s:O,s:s,s:O,s:s,s:b,s:o,s:b}", "stream", json_object_get(cur, "uid"), "primary", np,
            "backup", json_object_get(found, "backup"), "role", "migrated", "transfer", 1,
            "if_primary", prim ? json_string(prim) : json_null(), "force", force);
        if (force)
            MS_WARN(CTX,
                    "stream %s: transfer forced by an administrator: the one-hour cooldown is "
                    "overridden (previous transfer %lld s ago)",
                    sname, last > 0 ? (long long)(now / 1000 - last) : -1LL);
        MS_INFO(CTX, "stream %s: transfer %s -> %s", sname, prim ? prim : "-", np);
        if (cluster_write(cmd_with_req("stream_assign", args, j->req_key), API_DEADLINE_MS,
                          job_write_cb, j) < 0)
            job_reply(j, 500, json_pack("{s:s}", "error", "out of memory"));
    }
    json_decref(found);
    json_decref(body);
    json_decref(cur);
}

static void update_ready(void)
{
    if (g.ready || g.loader_pending)
        return;
    json_t *row = my_row();
    int ok = row != NULL;
    json_decref(row);
    if (ok && ms_raft_is_leader(g.raft)) {
        json_t *streams = state_streams(), *st;
        size_t i;
        json_array_foreach(streams, i, st) if (!json_string_value(json_object_get(
                                                   json_object_get(st, "placement"), "primary")))
            ok = 0;
        json_decref(streams);
    }
    if (ok) {
        g.ready = 1;
        MS_INFO(CTX, "cluster state ready (raft id %" PRIu64 ")", my_id());
    }
}

/* ---- join (UDP on the raft port number) ----------------------------------- */

typedef struct {
    uv_udp_send_t req;
    char buf[MS_JOIN_MAX + 1];
} udp_out_t;

static void udp_sent(uv_udp_send_t *req, int status)
{
    (void)status;
    free(req->data);
}

static void udp_send(const struct sockaddr *to, const char *text)
{
    udp_out_t *o = calloc(1, sizeof *o);
    if (!o)
        return;
    size_t n = strlen(text);
    if (n >= sizeof o->buf) {
        free(o);
        return;
    }
    memcpy(o->buf, text, n);
    o->req.data = o;
    uv_buf_t b = uv_buf_init(o->buf, (unsigned)n);
    if (uv_udp_send(&o->req, &g.udp, &b, 1, to, udp_sent) != 0)
        free(o);
}

/* Signs m (a fresh nonce, now) and sends it to to. Returns 0 or -errno. */
static int join_send(const struct sockaddr *to, ms_join_msg_t *m)
{
    char out[MS_JOIN_MAX + 1];
    if (!g.join_keyed || RAND_bytes(m->nonce, sizeof m->nonce) != 1)
        return -EIO;
    m->from = my_id();
    m->ts_ms = wall_ms();
    int n = ms_join_encode(g.join_key, m, out, sizeof out);
    if (n < 0)
        return n;
    udp_send(to, out);
    return 0;
}

/* A datagram refused: counted, logged at most every 10 s. */
static void join_ignored(const struct sockaddr *from, const char *why)
{
    g.join_ignored++;
    uint32_t supp = 0;
    if (!ms_ratelimit_ok(&g.join_rl, &supp))
        return;
    char ip[64] = "?";
    if (from->sa_family == AF_INET6)
        uv_ip6_name((const struct sockaddr_in6 *)from, ip, sizeof ip);
    else if (from->sa_family == AF_INET)
        uv_ip4_name((const struct sockaddr_in *)from, ip, sizeof ip);
    MS_WARN(CTX, "ignored a join datagram from %s: %s (%" PRIu64 " ignored in all)", ip, why,
            g.join_ignored);
}

typedef struct {
    uint64_t id;
    int voter;
} join_t;

static void join_assigned(void *ud, int status)
{
    join_t *jn = ud;
    MS_INFO(CTX, "join of %" PRIu64 ": %s", jn->id,
            status == 0 ? (jn->voter ? "voter" : "standby") : strerror(-status));
    free(jn);
}

static void join_added(void *ud, int status)
{
    join_t *jn = ud;
    if (status < 0) {
        MS_WARN(CTX, "raft add %" PRIu64 ": %s", jn->id, strerror(-status));
        free(jn);
        return;
    }
    if (ms_raft_assign(g.raft, jn->id, jn->voter ? MS_RAFT_VOTER : MS_RAFT_STANDBY, join_assigned,
                       jn) < 0)
        free(jn);
}

static void handle_join(uint64_t id, const char *addr)
{
    json_t *info = ms_raft_info_json(g.raft), *m;
    size_t i;
    int voters = 0, found = 0, spare = 0;
    json_array_foreach(json_object_get(info, "members"), i, m)
    {
        const char *role = json_string_value(json_object_get(m, "role"));
        voters += strcmp(role, "voter") == 0;
        if ((uint64_t)json_integer_value(json_object_get(m, "id")) == id) {
            found = 1;
            spare = strcmp(role, "spare") == 0;
        }
    }
    json_decref(info);
    if (found && !spare)
        return;
    join_t *jn = calloc(1, sizeof *jn);
    if (!jn)
        return;
    jn->id = id;
    jn->voter = voters < MAX_VOTERS;
    MS_INFO(CTX, "node %" PRIu64 " (%s) asks to join", id, addr);
    int r = found ? ms_raft_assign(g.raft, id, jn->voter ? MS_RAFT_VOTER : MS_RAFT_STANDBY,
                                   join_assigned, jn)
                  : ms_raft_add(g.raft, id, addr, join_added, jn);
    if (r < 0)
        free(jn);
}

static void udp_alloc(uv_handle_t *h, size_t sug, uv_buf_t *buf)
{
    (void)h;
    (void)sug;
    static char mem[2048];
    *buf = uv_buf_init(mem, sizeof mem);
}

static const char *join_why(int r)
{
    switch (r) {
    case -EACCES:
        return "bad MAC (another secret?)";
    case -ETIME:
        return "stale timestamp (clocks more than 30 s apart?)";
    case -EALREADY:
        return "replayed";
    case -EBUSY:
        return "replay cache full";
    case -ENOENT:
        return "answers no join of this node";
    default:
        return "malformed";
    }
}

/* Join datagrams (docs/security.md "Joins and node-to-node HTTP"): a join
 * is authenticated, fresh and not seen before; an answer (joining,
 * redirect) is authenticated, addressed to this node and answers a join it
 * sent (each join answered once). Anything else is ignored. */
static void udp_recv(uv_udp_t *h, ssize_t n, const uv_buf_t *buf, const struct sockaddr *from,
                     unsigned flags)
{
    (void)h;
    (void)flags;
    if (n <= 0 || !from || g.stopping)
        return;
    if (!g.join_keyed) {
        join_ignored(from, "no cluster secret configured");
        return;
    }
    ms_join_msg_t m;
    int64_t now = wall_ms();
    int r = ms_join_decode(g.join_key, buf->base, (size_t)n, now, NULL, &m);
    if (r == 0 && m.op == MS_JOIN_REQ) {
        r = ms_replay_check_add(g.join_replay, m.nonce, m.ts_ms + MS_NAUTH_SKEW_MS, now);
    } else if (r == 0) {
        r = m.to == my_id() ? ms_join_pending_take(&g.join_pend, m.reply_to, now) : -ENOENT;
    }
    if (r < 0) {
        join_ignored(from, join_why(r));
        return;
    }
    if (m.op == MS_JOIN_REQ) {
        ms_join_msg_t a = {.to = m.from};
        memcpy(a.reply_to, m.nonce, sizeof a.reply_to);
        if (ms_raft_is_leader(g.raft)) {
            handle_join(m.from, m.addr);
            a.op = MS_JOIN_ACCEPT;
        } else {
            ms_raft_info_t in;
            ms_raft_info(g.raft, &in);
            if (!in.leader_address || !in.leader_address[0] ||
                strlen(in.leader_address) > MS_JOIN_ADDR_MAX)
                return; /* no leader known: the joiner tries the next address */
            a.op = MS_JOIN_REDIRECT;
            snprintf(a.addr, sizeof a.addr, "%s", in.leader_address);
        }
        join_send(from, &a);
    } else if (m.op == MS_JOIN_REDIRECT) {
        if (strlen(m.addr) < sizeof g.join_redirect)
            snprintf(g.join_redirect, sizeof g.join_redirect, "%s", m.addr);
    }
    /* MS_JOIN_ACCEPT: the leader adds this node; raft contact follows */
}

static int resolve_hostport(const char *hp, struct sockaddr_storage *out)
{
    char host[256];
    const char *colon = strrchr(hp, ':');
    if (!colon || (size_t)(colon - hp) >= sizeof host)
        return -EINVAL;
    const char *h = hp;
    size_t hl = (size_t)(colon - hp);
    if (h[0] == '[' && hl >= 2) {
        h++;
        hl -= 2;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    int port = atoi(colon + 1);
    memset(out, 0, sizeof *out);
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)out) == 0)
        return 0;
    if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)out) == 0)
        return 0;
    if (strcmp(host, "localhost") == 0)
        return uv_ip4_addr("127.0.0.1", port, (struct sockaddr_in *)out);
    return -EINVAL;
}

static void try_join(void)
{
    if (!g.cfg->ncluster_join || !g.udp_up || raft_member())
        return;
    int64_t now = ms_mono_ms();
    if (now - g.last_join < JOIN_EVERY_MS)
        return;
    g.last_join = now;
    const char *target;
    if (g.join_redirect[0]) {
        target = g.join_redirect;
    } else {
        target = g.cfg->cluster_join[g.join_target % (int)g.cfg->ncluster_join];
        g.join_target++;
    }
    struct sockaddr_storage ss;
    if (resolve_hostport(target, &ss) < 0) {
        g.join_redirect[0] = '\0';
        return;
    }
    g.join_redirect[0] = '\0';
    ms_join_msg_t m = {.op = MS_JOIN_REQ};
    if (strlen(g.raft_addr) >= sizeof m.addr)
        return;
    memcpy(m.addr, g.raft_addr, strlen(g.raft_addr) + 1);
    if (join_send((const struct sockaddr *)&ss, &m) == 0)
        ms_join_pending_add(&g.join_pend, m.nonce, m.ts_ms);
}

/* ---- loop hooks ------------------------------------------------------------ */

static void sweep_files(void);
static void tick_cb(uv_timer_t *t);

/* The periodic work every TICK_MS. It rides the loop iterations libraft's
 * own tick wakes up anyway (every heartbeat, 50 ms): check_cb runs it on
 * the first iteration at least TICK_MS - TICK_EARLY_MS after the last run,
 * so it costs no wakeup of its own. g.tick is only a fallback, pushed
 * TICK_MS + TICK_LATE_MS ahead at every run (when nothing else wakes the
 * loop, e.g. raft not ticking). */
static void tick_run(void)
{
    if (g.stopping)
        return;
    g.last_tick = uv_now(g.loop);
    uv_timer_start(&g.tick, tick_cb, TICK_MS + TICK_LATE_MS, 0);
    try_join();
    if (!ms_raft_is_leader(g.raft)) {
        g.leader_since = 0;
        g_duty.quiet = 0; /* a new leadership decides afresh */
        ms_raft_info_t in;
        ms_raft_info(g.raft, &in);
        if (in.leader_id && in.leader_id != my_id())
            g.prev_leader = in.leader_id;
    }
    self_upsert();
    sweep_files();
    int64_t now = ms_mono_ms();
    if (now - g.last_report >= REPORT_MS) {
        g.last_report = now;
        report();
    }
    observe_reports();
    leader_duties();
    reconcile();
    update_ready();
    /* POST /streams/{id}/update-indexes writes setting update_indexes:
     * every node republishes at once when it sees the value change */
    int64_t ri = setting_int("update_indexes", 0);
    if (ri != g.reindex_seen) {
        g.reindex_seen = ri;
        g.archive_force = 1;
    }
    if ((g.archive_force || now - g.last_archive >= ARCHIVE_EVERY_MS) && !g.archive_busy) {
        g.archive_force = 0;
        g.last_archive = now;
        archive_publish();
    }
}

static void tick_cb(uv_timer_t *t)
{
    (void)t;
    tick_run();
}

static void check_cb(uv_check_t *h)
{
    (void)h;
    if (!g.stopping && uv_now(g.loop) - g.last_tick >= TICK_MS - TICK_EARLY_MS)
        tick_run();
    if (g.waiting)
        wait_check();
    if (!g.stopping && g.raft && ms_fsm_applied(g.fsm) != g.seen_applied) {
        reconcile();
        observe_reports();
        int64_t now = ms_mono_ms();
        if (now - g.last_duty >= 20) { /* assign new streams without waiting a tick */
            g.last_duty = now;
            leader_duties();
            update_ready();
        }
    }
}

/* ---- loader hooks ------------------------------------------------------------ */

static void loader_done(void *ud, unsigned st, json_t *res)
{
    char *what = ud;
    g.loader_pending--;
    if (st != 200)
        MS_WARN(CTX, "stream file %s: the cluster refused it (%u): %s", what, st,
                json_string_value(json_object_get(res, "error")));
    free(what);
}

int ms_cluster_loader_apply(const ms_stream_cfg_t *cfg, ms_run_state_t desired)
{
    (void)desired; /* enabled is in the config */
    json_t *sj = ms_stream_cfg_to_json(cfg);
    if (!sj)
        return -ENOMEM;
    char *what = strdup(cfg->source_file[0] ? cfg->source_file : cfg->name);
    const char *base = strrchr(cfg->source_file, '/');
    base = base ? base + 1 : cfg->source_file;
    g.loader_pending++;
    g.sweep_pending = 1;
    if (cluster_write(ms_cmd_new("stream_upsert",
                                 json_pack("{s:o,s:s,s:s,s:s}", "stream", sj, "added", "auto",
                                           "source_node", g.cfg->name, "source_file", base)),
                      0, loader_done, what) < 0) {
        g.loader_pending--;
        free(what);
        return -ENOMEM;
    }
    return 0;
}

/* Removes from the state the streams that came from this node's stream files
 * whose file is gone (deleted while the node was down): once the node's
 * state is ready and its own files are applied, after start and after each
 * reload that changed something. Control loop only. */
static void sweep_files(void)
{
    if (!g.sweep_pending || !g.ready || g.loader_pending || !g.cfg->streams_dir[0] ||
        ms_fsm_schema_version(g.fsm) < 3)
        return;
    g.sweep_pending = 0;
    json_t *streams = state_streams(), *st;
    size_t i;
    json_array_foreach(streams, i, st)
    {
        json_t *src = json_object_get(json_object_get(st, "placement"), "source");
        const char *node = json_string_value(json_object_get(src, "node"));
        const char *file = json_string_value(json_object_get(src, "file"));
        const char *uid = json_string_value(json_object_get(st, "uid"));
        if (!node || !file || !uid || strcmp(node, g.cfg->name) != 0 || strchr(file, '/'))
            continue;
        char path[MS_PATH_MAX + 300];
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s", g.cfg->streams_dir, file);
        if (stat(path, &sb) == 0 || errno != ENOENT)
            continue;
        MS_INFO(CTX, "stream file %s is gone: removing stream %s from the cluster", file,
                json_string_value(json_object_get(st, "name")));
        char *what = strdup(path);
        g.loader_pending++;
        if (cluster_write(ms_cmd_new("stream_remove", json_pack("{s:s}", "stream", uid)), 0,
                          loader_done, what) < 0) {
            g.loader_pending--;
            free(what);
        }
    }
    json_decref(streams);
}

int ms_cluster_loader_remove(const char *uid)
{
    char *what = strdup(uid);
    g.loader_pending++;
    if (cluster_write(ms_cmd_new("stream_remove", json_pack("{s:s}", "stream", uid)), 0,
                      loader_done, what) < 0) {
        g.loader_pending--;
        free(what);
        return -ENOMEM;
    }
    return 0;
}

/* ---- start / stop ------------------------------------------------------------ */

int ms_cluster_start(uv_loop_t *loop, const ms_node_cfg_t *cfg)
{
    if (cfg->port_raft <= 0)
        return 0;
    int r;
    g.loop = loop;
    g.cfg = cfg;
    snprintf(g.ctx, sizeof g.ctx, "[node %s] [cluster]", cfg->name);
    const char *adv = cfg->advertise[0] ? cfg->advertise : "127.0.0.1";
    int v6 = strchr(adv, ':') != NULL;
    snprintf(g.raft_addr, sizeof g.raft_addr, "%s%s%s:%d", v6 ? "[" : "", adv, v6 ? "]" : "",
             cfg->port_raft);
    snprintf(g.http_base, sizeof g.http_base, "http://%s%s%s:%d", v6 ? "[" : "", adv, v6 ? "]" : "",
             cfg->port_http);
    char bind[300];
    const char *la = cfg->listen_address[0] ? cfg->listen_address : "0.0.0.0";
    snprintf(bind, sizeof bind, "%s:%d", la, cfg->port_raft);
    if ((r = ms_fsm_new(&g.fsm)) < 0)
        return r;
    g.rec = ms_reconciler_new(cfg->name, ms_streams_apply, ms_streams_remove);
    if (!g.rec)
        return -ENOMEM;
    ms_raft_cfg_t rc = {.data_dir = cfg->data_dir,
                        .address = g.raft_addr,
                        .bind = strchr(la, ':') ? NULL : bind,
                        .secret = cfg->secret,
                        .join = cfg->ncluster_join > 0};
    /* Test hook: MS_RAFT_SNAPSHOT_THRESHOLD / MS_RAFT_SNAPSHOT_TRAILING (entries) let the
     * multi-node tests force snapshots and their installation on a lagging follower. */
    const char *ev = getenv("MS_RAFT_SNAPSHOT_THRESHOLD");
    if (ev && atoi(ev) > 0)
        rc.snapshot_threshold = (unsigned)atoi(ev);
    ev = getenv("MS_RAFT_SNAPSHOT_TRAILING");
    if (ev && atoi(ev) > 0)
        rc.snapshot_trailing = (unsigned)atoi(ev);
    if ((r = ms_raft_new(loop, &rc, g.fsm, &g.raft)) < 0)
        return r;
    ms_chttp_set_self(my_id());
    g.join_rl = (ms_ratelimit_t)MS_RATELIMIT_INIT(10000);
    g.join_keyed = cfg->secret[0] && ms_kdf_derive(cfg->secret, MS_KDF_JOIN, g.join_key) == 0;
    if (!g.join_replay && !(g.join_replay = ms_replay_new(JOIN_REPLAY_CAP)))
        return -ENOMEM;
    if ((r = ms_raft_start(g.raft)) < 0) {
        MS_ERROR(CTX, "raft on %s: %s", g.raft_addr, strerror(-r));
        return r;
    }
    g.started = 1;
    g.sweep_pending = 1;
    uv_async_init(loop, &g.async, async_cb);
    uv_timer_init(loop, &g.tick);
    uv_check_init(loop, &g.check);
    g.last_tick = uv_now(loop);
    uv_timer_start(&g.tick, tick_cb, TICK_MS + TICK_LATE_MS, 0); /* fallback: tick_run */
    uv_check_start(&g.check, check_cb);
    struct sockaddr_storage ss;
    char lab[300];
    snprintf(lab, sizeof lab, "%s%s%s:%d", strchr(la, ':') ? "[" : "", la,
             strchr(la, ':') ? "]" : "", cfg->port_raft);
    uv_udp_init(loop, &g.udp);
    g.udp_up = 1;
    if (resolve_hostport(lab, &ss) == 0 &&
        uv_udp_bind(&g.udp, (const struct sockaddr *)&ss, 0) == 0)
        uv_udp_recv_start(&g.udp, udp_alloc, udp_recv);
    else
        MS_WARN(CTX, "cannot listen for joins on udp %s", lab);
    atomic_store(&g.enabled, 1);
    MS_INFO(CTX, "raft %s (id %" PRIu64 "), %s", g.raft_addr, my_id(),
            cfg->ncluster_join ? "joining" : "bootstrap or restart");
    return 0;
}

static void closed_cb(uv_handle_t *h)
{
    (void)h;
}

static void raft_stopped(void *ud)
{
    (void)ud;
    uv_close((uv_handle_t *)&g.async, closed_cb);
    uv_close((uv_handle_t *)&g.tick, closed_cb);
    uv_close((uv_handle_t *)&g.check, closed_cb);
    if (g.udp_up)
        uv_close((uv_handle_t *)&g.udp, closed_cb);
    g.udp_up = 0;
    if (g.handover_timer_up)
        uv_close((uv_handle_t *)&g.handover_timer, closed_cb);
    g.handover_timer_up = 0;
    MS_INFO(CTX, "raft stopped");
    if (g.stop_cb)
        g.stop_cb(g.stop_ud);
}

/* The stop proper, after the hand-over: 503 to what is queued, leadership
 * handed over (ms_raft_stop), then raft_stopped. */
static void stop_now(void)
{
    if (g.stopping)
        return;
    g.handing_over = 0;
    g.stopping = 1;
    if (g.handover_timer_up)
        uv_timer_stop(&g.handover_timer);
    async_cb(&g.async); /* answers queued calls 503 */
    wait_check();
    ms_raft_stop(g.raft, raft_stopped, NULL);
}

static void handover_done(void *ud, unsigned st, json_t *res)
{
    char *name = ud;
    if (st == 200)
        MS_INFO(CTX, "stream %s: handed over", name);
    else
        MS_WARN(CTX, "stream %s: hand-over refused (%u): %s", name, st,
                json_string_value(json_object_get(res, "error")));
    free(name);
    if (--g.handover_pending == 0)
        stop_now();
}

/* A server that announced it is leaving (graceful stop): load.leaving in
 * its last report. */
static int server_leaving(json_t *s)
{
    return json_is_true(json_object_get(json_object_get(s, "load"), "leaving"));
}

static void announce_done(void *ud, unsigned st, json_t *res)
{
    (void)ud;
    if (st != 200)
        MS_WARN(CTX, "could not announce the stop to the cluster (%u): %s", st,
                json_string_value(json_object_get(res, "error")));
    if (--g.handover_pending == 0)
        stop_now();
}

/* Graceful stop: one last report with load.leaving set, so other nodes
 * stopping next do not hand their streams to this one (it still looks
 * healthy until down_after_ms; placement ignores the flag, so the backups
 * it holds stay put for a quick restart). Returns 0 when written. */
static int handover_announce(void)
{
    json_t *row = my_row();
    json_t *load = json_deep_copy(json_object_get(row, "load"));
    if (!json_is_object(load)) {
        json_decref(load);
        load = json_object();
    }
    json_object_set_new(load, "leaving", json_true());
    json_t *args = json_pack("{s:s,s:I,s:I,s:o,s:s}", "name", g.cfg->name, "storage_total",
                             (json_int_t)json_integer_value(json_object_get(row, "storage_total")),
                             "storage_used",
                             (json_int_t)json_integer_value(json_object_get(row, "storage_used")),
                             "load", load, "health", "up");
    json_decref(row);
    if (!args)
        return -ENOMEM;
    g.handover_pending++;
    if (cluster_write(ms_cmd_new("server_report", args), HANDOVER_MS, announce_done, NULL) < 0) {
        g.handover_pending--;
        return -ENOMEM;
    }
    return 0;
}

static void handover_timer_cb(uv_timer_t *t)
{
    (void)t;
    if (g.handover_pending > 0)
        MS_WARN(CTX, "hand-over: %d write(s) not applied within %d ms: stopping anyway",
                g.handover_pending, HANDOVER_MS);
    stop_now(); /* the writes still pending are then answered 503 (wop_later) */
}

/* Graceful stop, first step: every stream this node is the primary of is
 * handed to its backup by a stream_assign through the leader (like every
 * write; if_primary: a concurrent decision wins), primary and backup
 * swapped so the stopped node comes back as the backup (no failback). A
 * stream whose backup is not healthy gets a fresh search excluding this
 * node (node/placement.c), or stays (it fails over after down_after_ms).
 * Servers that announced they are leaving too are no targets. Besides,
 * one last report announces this node is leaving (handover_announce). The
 * stop goes on once every write is applied here, at most HANDOVER_MS
 * later. Returns the number of writes started, or -1 when there is nothing
 * to do: no leader known (nobody could apply the writes), or no other
 * healthy server that is not leaving. Control loop. */
static int handover_start(void)
{
    if (!g.fsm || !g.raft || !ms_cluster_ready())
        return -1;
    ms_raft_info_t in;
    ms_raft_info(g.raft, &in);
    if (!in.leader_id || (in.leader_id == my_id() && !ms_raft_is_leader(g.raft)))
        return -1; /* no leader, or this one before its barrier applied (no quorum) */
    int64_t now = wall_ms();
    observe_reports();
    json_t *servers = servers_copy(), *streams = state_streams();
    json_t *groups = state_groups(), *clusters = state_clusters();
    json_t *st, *s;
    size_t i, k;
    int n = 0;
    if (!servers || !streams)
        goto out;
    observed_ages(servers, now);
    ms_placement_opts_t po;
    placement_opts(&po, now);
    po.self = NULL; /* this node is leaving: never "healthy because it leads" */
    int others = 0;
    json_array_foreach(servers, k, s)
    {
        const char *sn = json_string_value(json_object_get(s, "name"));
        if (server_leaving(s)) /* stopping too: not a target (this copy only) */
            json_object_set_new(s, "health", json_string("down"));
        else if (sn && strcmp(sn, g.cfg->name) != 0 && server_healthy(s, now))
            others++;
    }
    if (!others) { /* nobody to hand over to, nobody to tell */
        n = -1;
        goto out;
    }
    json_array_foreach(streams, i, st)
    {
        json_t *pl = json_object_get(st, "placement");
        const char *p = json_string_value(json_object_get(pl, "primary"));
        const char *b = json_string_value(json_object_get(pl, "backup"));
        if (!p || strcmp(p, g.cfg->name) != 0)
            continue;
        int ok = 0;
        json_array_foreach(servers, k, s)
        {
            const char *sn = json_string_value(json_object_get(s, "name"));
            if (b && sn && strcmp(sn, b) == 0 && strcmp(b, g.cfg->name) != 0)
                ok = server_healthy(s, now);
        }
        json_t *found = NULL;
        const char *np = ok ? b : NULL, *nb = g.cfg->name;
        if (!np) {
            found = ms_placement_search(servers, groups ? groups : json_array(),
                                        clusters ? clusters : json_array(), streams, st, NULL,
                                        g.cfg->name, &po);
            np = json_string_value(json_object_get(found, "primary"));
            nb = json_string_value(json_object_get(found, "backup"));
        }
        const char *name = json_string_value(json_object_get(st, "name"));
        if (!np || strcmp(np, g.cfg->name) == 0) {
            MS_WARN(CTX, "stream %s: no server to hand it over to: it fails over later",
                    name ? name : "?");
            json_decref(found);
            continue;
        }
        MS_INFO(CTX, "stream %s: handing over to %s (graceful stop)", name ? name : "?", np);
        json_t *args =
            json_pack("{s:O,s:s,s:s?,s:s,s:s}", "stream", json_object_get(st, "uid"), "primary", np,
                      "backup", nb, "role", "primary", "if_primary", g.cfg->name);
        char *what = strdup(name ? name : "?");
        json_decref(found);
        if (!what || !args) {
            free(what);
            json_decref(args);
            continue;
        }
        g.handover_pending++;
        if (cluster_write(ms_cmd_new("stream_assign", args), HANDOVER_MS, handover_done, what) <
            0) {
            g.handover_pending--;
            free(what);
            continue;
        }
        n++;
    }
    if (handover_announce() == 0)
        n++;
out:
    json_decref(servers);
    json_decref(streams);
    json_decref(groups);
    json_decref(clusters);
    return n;
}

void ms_cluster_stop(void (*cb)(void *ud), void *ud)
{
    g.stop_cb = cb;
    g.stop_ud = ud;
    if (!g.started) {
        if (cb)
            cb(ud);
        return;
    }
    if (g.stopping || g.handing_over)
        return;
    pthread_mutex_lock(&g.qmu);
    g.qclosed = 1;
    pthread_mutex_unlock(&g.qmu);
    g.handing_over = 1;
    async_cb(&g.async);                       /* answers queued calls 503 (run_job) */
    uv_timer_init(g.loop, &g.handover_timer); /* closed in raft_stopped */
    g.handover_timer_up = 1;
    uv_timer_start(&g.handover_timer, handover_timer_cb, HANDOVER_MS, 0);
    if (handover_start() <= 0)
        stop_now();
}

void ms_cluster_free(void)
{
    atomic_store(&g.enabled, 0);
    if (g.raft)
        ms_raft_free(g.raft);
    ms_reconciler_free(g.rec);
    ms_fsm_free(g.fsm);
    ms_archive_view_clear();
    ms_hls_hint_clear();
    cache_drop(&g_cache.streams);
    cache_drop(&g_cache.servers);
    cache_drop(&g_cache.groups);
    cache_drop(&g_cache.clusters);
    cache_drop(&g_cache.settings);
    cache_drop(&g_cache.archive);
    ms_buf_free(&g_duty.sig);
    g_duty.quiet = 0;
    json_decref(g_placement_logged);
    g_placement_logged = NULL;
    g.raft = NULL;
    g.rec = NULL;
    g.fsm = NULL;
    ms_replay_free(g.join_replay);
    g.join_replay = NULL;
    OPENSSL_cleanse(g.join_key, sizeof g.join_key);
    g.join_keyed = 0;
}
