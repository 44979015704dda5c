/* The loop hooks (the periodic tick), the loader hooks, start, ready,
 * graceful stop (handover of primaries) and free (cluster_int.h).
 * Control loop. */
#include <sys/stat.h>

#include <openssl/crypto.h>

#include "node/archive_view.h"
#include "node/cluster_http.h"
#include "node/hls_hint.h"
#include "raft/commands.h"
#include "node/cluster/cluster_int.h"

static void update_ready(void)
{
    if (ms_cl.ready || ms_cl.loader_pending)
        return;
    json_t *row = cl_my_row();
    int ok = row != NULL;
    json_decref(row);
    if (ok && ms_raft_is_leader(ms_cl.raft)) {
        json_t *streams = cl_state_streams(), *st;
        size_t i;
        json_array_foreach(streams, i, st) if (!json_string_value(json_object_get(
                                                   json_object_get(st, "placement"), "primary")))
            ok = 0;
        json_decref(streams);
    }
    if (ok) {
        ms_cl.ready = 1;
        MS_INFO(CTX, "cluster state ready (raft id %" PRIu64 ")", cl_my_id());
    }
}

/* ---- loop hooks ------------------------------------------------------------ */

static void sweep_files(void);
static void tick_cb(uv_timer_t *t);

/* The periodic work every TICK_MS. It rides the loop iterations libraft's
 * own tick wakes up anyway (every heartbeat, 50 ms): check_cb runs it on
 * the first iteration at least TICK_MS - TICK_EARLY_MS after the last run,
 * so it costs no wakeup of its own. ms_cl.tick is only a fallback, pushed
 * TICK_MS + TICK_LATE_MS ahead at every run (when nothing else wakes the
 * loop, e.ms_cl. raft not ticking). */
static void tick_run(void)
{
    if (ms_cl.stopping)
        return;
    ms_cl.last_tick = uv_now(ms_cl.loop);
    uv_timer_start(&ms_cl.tick, tick_cb, TICK_MS + TICK_LATE_MS, 0);
    cl_try_join();
    if (!ms_raft_is_leader(ms_cl.raft)) {
        ms_cl.leader_since = 0;
        ms_cl.duty.quiet = 0; /* a new leadership decides afresh */
        ms_raft_info_t in;
        ms_raft_info(ms_cl.raft, &in);
        if (in.leader_id && in.leader_id != cl_my_id())
            ms_cl.prev_leader = in.leader_id;
    }
    cl_self_upsert();
    sweep_files();
    int64_t now = ms_mono_ms();
    if (now - ms_cl.last_report >= REPORT_MS) {
        ms_cl.last_report = now;
        cl_report();
    }
    cl_observe_reports();
    cl_leader_duties();
    cl_reconcile();
    update_ready();
    /* POST /streams/{id}/update-indexes writes setting update_indexes:
     * every node republishes at once when it sees the value change */
    int64_t ri = cl_setting_int("update_indexes", 0);
    if (ri != ms_cl.reindex_seen) {
        ms_cl.reindex_seen = ri;
        ms_cl.archive_force = 1;
    }
    if ((ms_cl.archive_force || now - ms_cl.last_archive >= ARCHIVE_EVERY_MS) &&
        !ms_cl.archive_busy) {
        ms_cl.archive_force = 0;
        ms_cl.last_archive = now;
        cl_archive_publish();
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
    if (!ms_cl.stopping && uv_now(ms_cl.loop) - ms_cl.last_tick >= TICK_MS - TICK_EARLY_MS)
        tick_run();
    if (ms_cl.waiting)
        cl_wait_check();
    if (!ms_cl.stopping && ms_cl.raft && ms_fsm_applied(ms_cl.fsm) != ms_cl.seen_applied) {
        cl_reconcile();
        cl_observe_reports();
        int64_t now = ms_mono_ms();
        if (now - ms_cl.last_duty >= 20) { /* assign new streams without waiting a tick */
            ms_cl.last_duty = now;
            cl_leader_duties();
            update_ready();
        }
    }
}

/* ---- loader hooks ------------------------------------------------------------ */

static void loader_done(void *ud, unsigned st, json_t *res)
{
    char *what = ud;
    ms_cl.loader_pending--;
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
    ms_cl.loader_pending++;
    ms_cl.sweep_pending = 1;
    if (cl_cluster_write(ms_cmd_new("stream_upsert",
                                    json_pack("{s:o,s:s,s:s,s:s}", "stream", sj, "added", "auto",
                                              "source_node", ms_cl.cfg->name, "source_file", base)),
                         0, loader_done, what) < 0) {
        ms_cl.loader_pending--;
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
    if (!ms_cl.sweep_pending || !ms_cl.ready || ms_cl.loader_pending ||
        !ms_cl.cfg->streams_dir[0] || ms_fsm_schema_version(ms_cl.fsm) < 3)
        return;
    ms_cl.sweep_pending = 0;
    json_t *streams = cl_state_streams(), *st;
    size_t i;
    json_array_foreach(streams, i, st)
    {
        json_t *src = json_object_get(json_object_get(st, "placement"), "source");
        const char *node = json_string_value(json_object_get(src, "node"));
        const char *file = json_string_value(json_object_get(src, "file"));
        const char *uid = json_string_value(json_object_get(st, "uid"));
        if (!node || !file || !uid || strcmp(node, ms_cl.cfg->name) != 0 || strchr(file, '/'))
            continue;
        char path[MS_PATH_MAX + 300];
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s", ms_cl.cfg->streams_dir, file);
        if (stat(path, &sb) == 0 || errno != ENOENT)
            continue;
        MS_INFO(CTX, "stream file %s is gone: removing stream %s from the cluster", file,
                json_string_value(json_object_get(st, "name")));
        char *what = strdup(path);
        ms_cl.loader_pending++;
        if (cl_cluster_write(ms_cmd_new("stream_remove", json_pack("{s:s}", "stream", uid)), 0,
                             loader_done, what) < 0) {
            ms_cl.loader_pending--;
            free(what);
        }
    }
    json_decref(streams);
}

int ms_cluster_loader_remove(const char *uid)
{
    char *what = strdup(uid);
    ms_cl.loader_pending++;
    if (cl_cluster_write(ms_cmd_new("stream_remove", json_pack("{s:s}", "stream", uid)), 0,
                         loader_done, what) < 0) {
        ms_cl.loader_pending--;
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
    ms_cl.loop = loop;
    ms_cl.cfg = cfg;
    snprintf(ms_cl.ctx, sizeof ms_cl.ctx, "[node %s] [cluster]", cfg->name);
    const char *adv = cfg->advertise[0] ? cfg->advertise : "127.0.0.1";
    int v6 = strchr(adv, ':') != NULL;
    snprintf(ms_cl.raft_addr, sizeof ms_cl.raft_addr, "%s%s%s:%d", v6 ? "[" : "", adv,
             v6 ? "]" : "", cfg->port_raft);
    snprintf(ms_cl.http_base, sizeof ms_cl.http_base, "http://%s%s%s:%d", v6 ? "[" : "", adv,
             v6 ? "]" : "", cfg->port_http);
    char bind[300];
    const char *la = cfg->listen_address[0] ? cfg->listen_address : "0.0.0.0";
    snprintf(bind, sizeof bind, "%s:%d", la, cfg->port_raft);
    if ((r = ms_fsm_new(&ms_cl.fsm)) < 0)
        return r;
    ms_cl.rec = ms_reconciler_new(cfg->name, ms_streams_apply, ms_streams_remove);
    if (!ms_cl.rec)
        return -ENOMEM;
    ms_raft_cfg_t rc = {.data_dir = cfg->data_dir,
                        .address = ms_cl.raft_addr,
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
    if ((r = ms_raft_new(loop, &rc, ms_cl.fsm, &ms_cl.raft)) < 0)
        return r;
    ms_chttp_set_self(cl_my_id());
    ms_cl.join_rl = (ms_ratelimit_t)MS_RATELIMIT_INIT(10000);
    ms_cl.join_keyed =
        cfg->secret[0] && ms_kdf_derive(cfg->secret, MS_KDF_JOIN, ms_cl.join_key) == 0;
    if (!ms_cl.join_replay && !(ms_cl.join_replay = ms_replay_new(JOIN_REPLAY_CAP)))
        return -ENOMEM;
    if ((r = ms_raft_start(ms_cl.raft)) < 0) {
        MS_ERROR(CTX, "raft on %s: %s", ms_cl.raft_addr, strerror(-r));
        return r;
    }
    ms_cl.started = 1;
    ms_cl.sweep_pending = 1;
    uv_async_init(loop, &ms_cl.async, cl_async_cb);
    uv_timer_init(loop, &ms_cl.tick);
    uv_check_init(loop, &ms_cl.check);
    ms_cl.last_tick = uv_now(loop);
    uv_timer_start(&ms_cl.tick, tick_cb, TICK_MS + TICK_LATE_MS, 0); /* fallback: tick_run */
    uv_check_start(&ms_cl.check, check_cb);
    struct sockaddr_storage ss;
    char lab[300];
    snprintf(lab, sizeof lab, "%s%s%s:%d", strchr(la, ':') ? "[" : "", la,
             strchr(la, ':') ? "]" : "", cfg->port_raft);
    uv_udp_init(loop, &ms_cl.udp);
    ms_cl.udp_up = 1;
    if (cl_resolve_hostport(lab, &ss) == 0 &&
        uv_udp_bind(&ms_cl.udp, (const struct sockaddr *)&ss, 0) == 0)
        uv_udp_recv_start(&ms_cl.udp, cl_udp_alloc, cl_udp_recv);
    else
        MS_WARN(CTX, "cannot listen for joins on udp %s", lab);
    atomic_store(&ms_cl.enabled, 1);
    MS_INFO(CTX, "raft %s (id %" PRIu64 "), %s", ms_cl.raft_addr, cl_my_id(),
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
    uv_close((uv_handle_t *)&ms_cl.async, closed_cb);
    uv_close((uv_handle_t *)&ms_cl.tick, closed_cb);
    uv_close((uv_handle_t *)&ms_cl.check, closed_cb);
    if (ms_cl.udp_up)
        uv_close((uv_handle_t *)&ms_cl.udp, closed_cb);
    ms_cl.udp_up = 0;
    if (ms_cl.handover_timer_up)
        uv_close((uv_handle_t *)&ms_cl.handover_timer, closed_cb);
    ms_cl.handover_timer_up = 0;
    MS_INFO(CTX, "raft stopped");
    if (ms_cl.stop_cb)
        ms_cl.stop_cb(ms_cl.stop_ud);
}

/* The stop proper, after the hand-over: 503 to what is queued, leadership
 * handed over (ms_raft_stop), then raft_stopped. */
static void stop_now(void)
{
    if (ms_cl.stopping)
        return;
    ms_cl.handing_over = 0;
    ms_cl.stopping = 1;
    if (ms_cl.handover_timer_up)
        uv_timer_stop(&ms_cl.handover_timer);
    cl_async_cb(&ms_cl.async); /* answers queued calls 503 */
    cl_wait_check();
    ms_raft_stop(ms_cl.raft, raft_stopped, NULL);
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
    if (--ms_cl.handover_pending == 0)
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
    if (--ms_cl.handover_pending == 0)
        stop_now();
}

/* Graceful stop: one last report with load.leaving set, so other nodes
 * stopping next do not hand their streams to this one (it still looks
 * healthy until down_after_ms; placement ignores the flag, so the backups
 * it holds stay put for a quick restart). Returns 0 when written. */
static int handover_announce(void)
{
    json_t *row = cl_my_row();
    json_t *load = json_deep_copy(json_object_get(row, "load"));
    if (!json_is_object(load)) {
        json_decref(load);
        load = json_object();
    }
    json_object_set_new(load, "leaving", json_true());
    json_t *args = json_pack("{s:s,s:I,s:I,s:o,s:s}", "name", ms_cl.cfg->name, "storage_total",
                             (json_int_t)json_integer_value(json_object_get(row, "storage_total")),
                             "storage_used",
                             (json_int_t)json_integer_value(json_object_get(row, "storage_used")),
                             "load", load, "health", "up");
    json_decref(row);
    if (!args)
        return -ENOMEM;
    ms_cl.handover_pending++;
    if (cl_cluster_write(ms_cmd_new("server_report", args), HANDOVER_MS, announce_done, NULL) < 0) {
        ms_cl.handover_pending--;
        return -ENOMEM;
    }
    return 0;
}

static void handover_timer_cb(uv_timer_t *t)
{
    (void)t;
    if (ms_cl.handover_pending > 0)
        MS_WARN(CTX, "hand-over: %d write(s) not applied within %d ms: stopping anyway",
                ms_cl.handover_pending, HANDOVER_MS);
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
    if (!ms_cl.fsm || !ms_cl.raft || !ms_cluster_ready())
        return -1;
    ms_raft_info_t in;
    ms_raft_info(ms_cl.raft, &in);
    if (!in.leader_id || (in.leader_id == cl_my_id() && !ms_raft_is_leader(ms_cl.raft)))
        return -1; /* no leader, or this one before its barrier applied (no quorum) */
    int64_t now = cl_wall_ms();
    cl_observe_reports();
    json_t *servers = cl_servers_copy(), *streams = cl_state_streams();
    json_t *groups = cl_state_groups(), *clusters = cl_state_clusters();
    json_t *st, *s;
    size_t i, k;
    int n = 0;
    if (!servers || !streams)
        goto out;
    cl_observed_ages(servers, now);
    ms_placement_opts_t po;
    cl_placement_opts(&po, now);
    po.self = NULL; /* this node is leaving: never "healthy because it leads" */
    int others = 0;
    json_array_foreach(servers, k, s)
    {
        const char *sn = json_string_value(json_object_get(s, "name"));
        if (server_leaving(s)) /* stopping too: not a target (this copy only) */
            json_object_set_new(s, "health", json_string("down"));
        else if (sn && strcmp(sn, ms_cl.cfg->name) != 0 && cl_server_healthy(s, now))
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
        if (!p || strcmp(p, ms_cl.cfg->name) != 0)
            continue;
        int ok = 0;
        json_array_foreach(servers, k, s)
        {
            const char *sn = json_string_value(json_object_get(s, "name"));
            if (b && sn && strcmp(sn, b) == 0 && strcmp(b, ms_cl.cfg->name) != 0)
                ok = cl_server_healthy(s, now);
        }
        json_t *found = NULL;
        const char *np = ok ? b : NULL, *nb = ms_cl.cfg->name;
        if (!np) {
            found = ms_placement_search(servers, groups ? groups : json_array(),
                                        clusters ? clusters : json_array(), streams, st, NULL,
                                        ms_cl.cfg->name, &po);
            np = json_string_value(json_object_get(found, "primary"));
            nb = json_string_value(json_object_get(found, "backup"));
        }
        const char *name = json_string_value(json_object_get(st, "name"));
        if (!np || strcmp(np, ms_cl.cfg->name) == 0) {
            MS_WARN(CTX, "stream %s: no server to hand it over to: it fails over later",
                    name ? name : "?");
            json_decref(found);
            continue;
        }
        MS_INFO(CTX, "stream %s: handing over to %s (graceful stop)", name ? name : "?", np);
        json_t *args =
            json_pack("{s:O,s:s,s:s?,s:s,s:s}", "stream", json_object_get(st, "uid"), "primary", np,
                      "backup", nb, "role", "primary", "if_primary", ms_cl.cfg->name);
        char *what = strdup(name ? name : "?");
        json_decref(found);
        if (!what || !args) {
            free(what);
            json_decref(args);
            continue;
        }
        ms_cl.handover_pending++;
        if (cl_cluster_write(ms_cmd_new("stream_assign", args), HANDOVER_MS, handover_done, what) <
            0) {
            ms_cl.handover_pending--;
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
    ms_cl.stop_cb = cb;
    ms_cl.stop_ud = ud;
    if (!ms_cl.started) {
        if (cb)
            cb(ud);
        return;
    }
    if (ms_cl.stopping || ms_cl.handing_over)
        return;
    pthread_mutex_lock(&ms_cl.qmu);
    ms_cl.qclosed = 1;
    pthread_mutex_unlock(&ms_cl.qmu);
    ms_cl.handing_over = 1;
    cl_async_cb(&ms_cl.async);                        /* answers queued calls 503 (run_job) */
    uv_timer_init(ms_cl.loop, &ms_cl.handover_timer); /* closed in raft_stopped */
    ms_cl.handover_timer_up = 1;
    uv_timer_start(&ms_cl.handover_timer, handover_timer_cb, HANDOVER_MS, 0);
    if (handover_start() <= 0)
        stop_now();
}

void ms_cluster_free(void)
{
    atomic_store(&ms_cl.enabled, 0);
    if (ms_cl.raft)
        ms_raft_free(ms_cl.raft);
    ms_reconciler_free(ms_cl.rec);
    ms_fsm_free(ms_cl.fsm);
    ms_archive_view_clear();
    ms_hls_hint_clear();
    cl_cache_drop_all();
    ms_buf_free(&ms_cl.duty.sig);
    ms_cl.duty.quiet = 0;
    json_decref(ms_cl.placement_logged);
    ms_cl.placement_logged = NULL;
    ms_cl.raft = NULL;
    ms_cl.rec = NULL;
    ms_cl.fsm = NULL;
    ms_replay_free(ms_cl.join_replay);
    ms_cl.join_replay = NULL;
    OPENSSL_cleanse(ms_cl.join_key, sizeof ms_cl.join_key);
    ms_cl.join_keyed = 0;
}
