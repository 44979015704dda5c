/* The node's streams: registry and lifecycle (node/streams.h).
 *
 * Registry: an array of streams under a rwlock; the registry holds one
 * reference per registered stream. A stream's uid and name are written only
 * with the registry write lock held (and the stream's mutex), so lookups under
 * the read lock can compare them without the stream's mutex.
 *
 * Lifecycle: every change (apply, remove) updates the stream's desired state
 * and config under its mutex and posts step() to the stream's worker. step()
 * runs on that loop only and converges the running parts (RTSP client, HLS
 * output, rate timer) to what is desired; it is idempotent, so posts that
 * pile up cost nothing. Stopping an RTSP client is asynchronous (TEARDOWN,
 * handle closes): step() runs again from its done callback. A removed stream
 * is finalized once everything is closed; its worker's "life" reference is
 * then dropped. The hub lives as long as the stream object (any thread may
 * hold it through ms_stream_hub()).
 *
 * Mapping to status.state (docs/config.md "Stream status"): MS_RUN_ACTIVE runs the client, whose
 * state (initialization | active | inactive) is reported; MS_RUN_SUSPEND
 * (backup role, or the config has enabled=false) reports "suspend" (reason
 * "disabled" for the latter); a stream being removed reports "empty". */
#include "node/hls_hint.h"
#include "node/push.h"
#include "node/placement_view.h"
#include "node/streams.h"

#include <inttypes.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#include "dvr/dvr.h"
#include "media/rtsp/client.h"
#include "util/clock.h"
#include "util/log.h"

#define RATE_SAMPLES     6    /* rates are averaged over the last 5 s */
#define RATE_INTERVAL_MS 1000 /* per-stream rate timer */
#define SHUTDOWN_WAIT_S  15   /* bound on waiting for TEARDOWNs at shutdown */
/* Spacing of RTSP client starts on one worker: a start that comes less than
 * this after the previous one on the same worker waits on a per-stream timer,
 * so a node that starts (or is given) many streams at once does not open all
 * their connections in the same instant (200 cameras on 2 workers: ~2 s). */
#define START_STAGGER_MS 20

typedef struct {
    char url[2048];
    ms_transport_t transport;
    unsigned channels;
    uint32_t interval_ms, max_interval_ms;
} src_params_t;

typedef struct {
    int format;
    uint32_t segment_ms, part_ms, window;
} hls_params_t;

typedef struct {
    int enabled;
    int64_t depth_s;
    int chunk_s;
    int mode;
} dvr_params_t;

/* Life of a uv handle the stream owns (loop thread only). */
typedef enum {
    HANDLE_NONE = 0, /* not initialised */
    HANDLE_OPEN,     /* initialised (a timer may be running) */
    HANDLE_CLOSING,  /* uv_close asked, its callback pending */
    HANDLE_CLOSED,   /* the close callback ran */
} handle_state_t;

struct ms_stream {
    atomic_int refs;
    ms_worker_t *worker;
    ms_hub_t *hub;

    pthread_mutex_t mu; /* guards everything down to the loop-only part */
    ms_stream_cfg_t cfg;
    ms_run_state_t desired;
    ms_rtsp_client_t *client;
    ms_hls_t *hls;
    ms_snapshot_t *snap;      /* videoshot.jpg, preview.jpg, preview.mp4 */
    ms_fmp4_live_t *live_mp4; /* live.mp4 */
    ms_push_t *push;          /* push targets (node/push.h), NULL = none */
    double in_kbps, out_kbps;
    char fail_reason[256];
    int restart_req; /* ms_streams_restart: tear the source down once */

    /* loop only */
    src_params_t run_src;
    hls_params_t run_hls;
    ms_dvr_recorder_t *dvr;
    dvr_params_t run_dvr;
    int client_stopping;
    char run_push[MS_PUSH_MAX][512]; /* the push targets s->push runs */
    int run_npush;
    handle_state_t timer_state;
    uv_timer_t timer;
    handle_state_t start_timer_state; /* armed only while start_pending */
    uv_timer_t start_timer;
    int start_pending; /* a client start waits for its slot (start_timer) */
    int start_due;     /* the slot came: start without taking another one */
    int finalized;
    int in_step, step_again;
    int64_t rate_t[RATE_SAMPLES];
    uint64_t rate_in[RATE_SAMPLES], rate_out[RATE_SAMPLES];
    unsigned rate_n;
    int64_t status_logged_us; /* mono us of the last status_log_s line */
    char ctx[160];
    /* RTMP publisher of a publish:// stream: kick/arg loop only; the rest
     * under mu (status) */
    void (*pub_kick)(void *arg);
    void *pub_arg;
    int pub_on;
    int pub_dvr; /* stream loop: the publisher's DVR override, -1 none, 0 off, 1 on */
    int64_t pub_since_us;
    uint32_t pub_sessions;
};

static struct {
    int inited;
    pthread_rwlock_t lock;
    ms_stream_t **v;
    size_t n, cap;
    ms_workers_t *workers;
    int *per_worker;
    uint64_t *next_start_ms; /* per worker, loop time; only its loop touches it */
    int nworkers;
    char node_name[MS_NAME_MAX];
    char ctx[MS_NAME_MAX + 16];
    pthread_mutex_t live_mu;
    pthread_cond_t live_cv;
    int live;                      /* streams created and not yet finalized */
    uint32_t batch_ms;             /* node ingest_batch_ms */
    int64_t limit_bytes, limit_ms; /* node keyframe_wait_mb/_s (hub limits) */
    int64_t status_log_us;         /* node status_log_s, 0 = off */
} g;

static void step(ms_stream_t *s);

/* ---- references ------------------------------------------------------- */

ms_stream_t *ms_stream_ref(ms_stream_t *s)
{
    if (s)
        atomic_fetch_add(&s->refs, 1);
    return s;
}

void ms_stream_unref(ms_stream_t *s)
{
    if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    /* Last reference: the worker finalized it (no client, no HLS reader). */
    ms_hub_free(s->hub);
    ms_stream_cfg_free(&s->cfg);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static void live_done(void)
{
    pthread_mutex_lock(&g.live_mu);
    g.live--;
    pthread_cond_broadcast(&g.live_cv);
    pthread_mutex_unlock(&g.live_mu);
}

/* ---- worker side ------------------------------------------------------ */

static void src_from_cfg(src_params_t *p, const ms_stream_cfg_t *c)
{
    memset(p, 0, sizeof *p);
    snprintf(p->url, sizeof p->url, "%s", c->url);
    p->transport = c->transport;
    p->channels = c->channels;
    p->interval_ms = c->reconnect_interval_ms;
    p->max_interval_ms = c->reconnect_max_interval_ms;
}

static void hls_from_cfg(hls_params_t *p, const ms_stream_cfg_t *c)
{
    memset(p, 0, sizeof *p);
    p->format = c->hls_format;
    p->segment_ms = c->hls_segment_ms;
    p->part_ms = c->hls_part_ms;
    p->window = c->hls_window;
}

static void dvr_from_cfg(dvr_params_t *p, const ms_stream_cfg_t *c)
{
    memset(p, 0, sizeof *p);
    p->enabled = c->dvr_enabled;
    p->depth_s = c->dvr_depth_s;
    p->chunk_s = c->dvr_chunk_s;
    p->mode = (int)c->dvr_mode;
}

/* The periodic status line of node config status_log_s (docs/config.md). */
static void status_log(ms_stream_t *s)
{
    ms_stream_status_t *st = calloc(1, sizeof *st);
    if (!st)
        return;
    ms_stream_get_status(s, st);
    MS_INFO(s->ctx,
            "status: %s (%s), in %.0f kbit/s, out %.0f kbit/s, %d clients, %" PRIu64
            " frames dropped, %" PRIu64 " rtp lost, up %" PRId64 " s",
            ms_stream_state_name(st->src.state), st->role, st->src.bitrate_kbps, st->output_kbps,
            st->clients, (uint64_t)st->src.frames_dropped, (uint64_t)st->src.rtp_lost,
            st->uptime_s);
    free(st);
}

static void rate_timer_cb(uv_timer_t *t)
{
    ms_stream_t *s = t->data;
    ms_hub_info_t info;
    ms_hub_get_info(s->hub, &info);
    uint64_t out = ms_hub_bytes_out(s->hub);
    int64_t now = ms_mono_us();
    unsigned i = s->rate_n % RATE_SAMPLES;
    s->rate_t[i] = now;
    s->rate_in[i] = info.bytes_in;
    s->rate_out[i] = out;
    s->rate_n++;
    if (s->rate_n < 2)
        return;
    unsigned oldest = s->rate_n >= RATE_SAMPLES ? s->rate_n % RATE_SAMPLES : 0;
    double dt = (double)(now - s->rate_t[oldest]) / 1e6;
    if (dt <= 0)
        return;
    double in = (double)(info.bytes_in - s->rate_in[oldest]) * 8.0 / 1000.0 / dt;
    double o = (double)(out - s->rate_out[oldest]) * 8.0 / 1000.0 / dt;
    pthread_mutex_lock(&s->mu);
    s->in_kbps = in;
    s->out_kbps = o;
    pthread_mutex_unlock(&s->mu);
    if (g.status_log_us > 0 && now - s->status_logged_us >= g.status_log_us) {
        s->status_logged_us = now;
        status_log(s);
    }
}

static void timer_closed(uv_handle_t *h)
{
    ms_stream_t *s = h->data;
    s->timer_state = HANDLE_CLOSED;
    step(s);
}

static void start_timer_cb(uv_timer_t *t)
{
    ms_stream_t *s = t->data;
    s->start_pending = 0;
    s->start_due = 1;
    step(s);
}

static void start_timer_closed(uv_handle_t *h)
{
    ms_stream_t *s = h->data;
    s->start_timer_state = HANDLE_CLOSED;
    step(s);
}

/* Loop thread. Takes this worker's next start slot: returns 1 when the client
 * may start now, 0 when the start was deferred to s->start_timer (or is still
 * waiting for it). */
static int start_slot(ms_stream_t *s)
{
    if (s->start_due) {
        s->start_due = 0;
        return 1;
    }
    if (s->start_pending)
        return 0;
    uv_loop_t *loop = ms_worker_loop(s->worker);
    uint64_t now = uv_now(loop);
    uint64_t *next = &g.next_start_ms[ms_worker_index(s->worker)];
    uint64_t slot = *next > now ? *next : now;
    *next = slot + START_STAGGER_MS;
    if (slot == now)
        return 1;
    if (s->start_timer_state == HANDLE_NONE) {
        s->start_timer.data = s;
        uv_timer_init(loop, &s->start_timer);
        s->start_timer_state = HANDLE_OPEN;
    }
    uv_timer_start(&s->start_timer, start_timer_cb, slot - now, 0);
    s->start_pending = 1;
    return 0;
}

static void client_done(void *ud)
{
    ms_stream_t *s = ud;
    s->client_stopping = 0;
    step(s);
}

static void stop_hls(ms_stream_t *s)
{
    pthread_mutex_lock(&s->mu);
    ms_hls_t *h = s->hls;
    s->hls = NULL;
    pthread_mutex_unlock(&s->mu);
    if (h) {
        MS_DEBUG(s->ctx, "stopping HLS output");
        ms_hls_stop(h);
    }
}

/* Outputs without parameters of their own (snapshots, live MP4): they run
 * whenever the stream runs. */
static void stop_outputs(ms_stream_t *s)
{
    pthread_mutex_lock(&s->mu);
    ms_snapshot_t *snap = s->snap;
    ms_fmp4_live_t *live = s->live_mp4;
    s->snap = NULL;
    s->live_mp4 = NULL;
    pthread_mutex_unlock(&s->mu);
    if (snap)
        ms_snapshot_stop(snap);
    if (live)
        ms_fmp4_live_stop(live);
}

static void start_outputs(ms_stream_t *s)
{
    char ctx[200];
    snprintf(ctx, sizeof ctx, "%s [snapshot]", s->ctx);
    uv_loop_t *loop = ms_worker_loop(s->worker);
    ms_snapshot_t *snap = ms_snapshot_new(loop, s->hub, &(ms_snapshot_cfg_t){.log_ctx = ctx});
    ms_fmp4_live_t *live = ms_fmp4_live_new(loop, s->hub, &(ms_fmp4_live_cfg_t){0});
    if (!snap || !live)
        MS_ERROR(s->ctx, "cannot start the snapshot/live MP4 outputs (out of memory)");
    pthread_mutex_lock(&s->mu);
    s->snap = snap;
    s->live_mp4 = live;
    pthread_mutex_unlock(&s->mu);
}

/* Push targets (node/push.h): restarted when the list changes. */
static void sync_push(ms_stream_t *s, const ms_stream_cfg_t *want, int run)
{
    int same = want->npush == s->run_npush;
    for (int i = 0; same && i < want->npush; i++)
        same = strcmp(want->push_url[i], s->run_push[i]) == 0;
    if (s->push && (!run || !same)) {
        pthread_mutex_lock(&s->mu);
        ms_push_t *p = s->push;
        s->push = NULL;
        pthread_mutex_unlock(&s->mu);
        ms_push_stop(p);
        s->run_npush = 0;
    }
    if (run && want->npush > 0 && !s->push) {
        char ctx[200];
        snprintf(ctx, sizeof ctx, "%s [push]", s->ctx);
        ms_push_t *p =
            ms_push_start(ms_worker_loop(s->worker), s->hub, ctx, want->push_url, want->npush);
        if (!p) {
            MS_ERROR(s->ctx, "cannot start push (out of memory)");
            return;
        }
        memcpy(s->run_push, want->push_url, sizeof s->run_push);
        s->run_npush = want->npush;
        pthread_mutex_lock(&s->mu);
        s->push = p;
        pthread_mutex_unlock(&s->mu);
    }
}

static void stop_client(ms_stream_t *s)
{
    pthread_mutex_lock(&s->mu);
    ms_rtsp_client_t *c = s->client;
    s->client = NULL;
    pthread_mutex_unlock(&s->mu);
    if (c) {
        MS_INFO(s->ctx, "stopping source");
        s->client_stopping = 1;
        ms_rtsp_client_stop(c, client_done, s);
    }
}

static void start_client(ms_stream_t *s, const ms_stream_cfg_t *want)
{
    char ctx[200], err[256] = "";
    snprintf(ctx, sizeof ctx, "%s [rtsp-client]", s->ctx);
    ms_rtsp_client_cfg_t cc = {
        .url = want->url,
        .transport = want->transport,
        .channels = want->channels,
        .interval_ms = want->reconnect_interval_ms,
        .max_interval_ms = want->reconnect_max_interval_ms,
        .timeout_ms = 0,
        .batch_ms = g.batch_ms,
        .log_ctx = ctx,
    };
    ms_rtsp_client_t *c =
        ms_rtsp_client_start(ms_worker_loop(s->worker), &cc, s->hub, err, sizeof err);
    pthread_mutex_lock(&s->mu);
    s->client = c;
    if (c)
        s->fail_reason[0] = '\0';
    else
        snprintf(s->fail_reason, sizeof s->fail_reason, "%s", err[0] ? err : "cannot start");
    pthread_mutex_unlock(&s->mu);
    src_from_cfg(&s->run_src, want);
    if (c)
        MS_INFO(s->ctx, "source started");
    else
        MS_ERROR(s->ctx, "cannot start the source: %s", err);
}

static void start_hls(ms_stream_t *s, const ms_stream_cfg_t *want)
{
    char ctx[200];
    snprintf(ctx, sizeof ctx, "%s [hls]", s->ctx);
    ms_hls_cfg_t hc = {
        .format = (ms_hls_format_t)want->hls_format,
        .target_ms = want->hls_segment_ms,
        .part_ms = want->hls_part_ms,
        .window = want->hls_window,
        .log_ctx = ctx,
    };
    /* Above the numbers of every earlier output of this stream, on any
     * server (node/hls_hint.h): a player that follows the stream across a
     * failover or transfer sees them grow by about the time that passed. */
    ms_hls_hint_base(want->uid, want->hls_segment_ms, ms_wall_us() / 1000, &hc.seq_base,
                     &hc.disc_base);
    ms_hls_t *h = ms_hls_new(ms_worker_loop(s->worker), s->hub, &hc);
    if (!h)
        MS_ERROR(s->ctx, "cannot start the HLS output (out of memory)");
    pthread_mutex_lock(&s->mu);
    s->hls = h;
    pthread_mutex_unlock(&s->mu);
    hls_from_cfg(&s->run_hls, want);
}

static void finalize(ms_stream_t *s)
{
    s->finalized = 1;
    MS_INFO(s->ctx, "stopped");
    pthread_rwlock_wrlock(&g.lock);
    if (g.per_worker)
        g.per_worker[ms_worker_index(s->worker)]--;
    pthread_rwlock_unlock(&g.lock);
    live_done();
    ms_stream_unref(s); /* the worker's life reference */
    /* what the stream held (frames, segments, buffers) goes back to the
     * system, in one trim for a burst of removals (node/workers.h) */
    ms_workers_trim_soon(g.workers);
}

static void step_once(ms_stream_t *s)
{
    ms_stream_cfg_t want;
    pthread_mutex_lock(&s->mu);
    ms_run_state_t desired = s->desired;
    int rc = ms_stream_cfg_copy(&want, &s->cfg);
    pthread_mutex_unlock(&s->mu);
    if (rc < 0) {
        MS_ERROR(s->ctx, "out of memory while applying the config");
        return;
    }
    snprintf(s->ctx, sizeof s->ctx, "%s [stream %s]", g.ctx, want.name);

    int run = desired == MS_RUN_ACTIVE;
    if (run && s->timer_state == HANDLE_NONE) {
        s->timer.data = s;
        uv_loop_t *loop = ms_worker_loop(s->worker);
        uv_timer_init(loop, &s->timer);
        uv_timer_start(&s->timer, rate_timer_cb, ms_phase_delay(uv_now(loop), RATE_INTERVAL_MS),
                       RATE_INTERVAL_MS);
        s->timer_state = HANDLE_OPEN;
    }

    src_params_t wsrc;
    hls_params_t whls;
    src_from_cfg(&wsrc, &want);
    hls_from_cfg(&whls, &want);

    pthread_mutex_lock(&s->mu);
    int have_client = s->client != NULL, have_hls = s->hls != NULL;
    int have_outputs = s->snap != NULL || s->live_mp4 != NULL;
    int restart = s->restart_req;
    s->restart_req = 0;
    pthread_mutex_unlock(&s->mu);

    if (have_outputs && !run) {
        stop_outputs(s);
        have_outputs = 0;
    }

    /* HLS parameters changed: recreate the output (its reader stays on the
     * same hub, so the source is not disturbed). */
    if (have_hls && (!run || memcmp(&whls, &s->run_hls, sizeof whls) != 0)) {
        stop_hls(s);
        have_hls = 0;
    }
    /* Source parameters changed, or a restart was asked: restart the
     * client only (a new RTSP session; the outputs stay on the hub). */
    if (restart && run)
        MS_INFO(s->ctx, "restarted: the source reconnects (new RTSP session)");
    if (have_client && (!run || restart || memcmp(&wsrc, &s->run_src, sizeof wsrc) != 0)) {
        stop_client(s);
        have_client = 0;
    }
    if (!run && (s->start_pending || s->start_due)) {
        uv_timer_stop(&s->start_timer);
        s->start_pending = s->start_due = 0;
    }
    /* publish:// streams: the RTMP publisher is the source (no client); one
     * that is no longer wanted (stopped, suspended, url changed, restart)
     * is closed */
    int publish = ms_stream_cfg_is_publish(&want);
    if (s->pub_kick && (!run || !publish || restart))
        s->pub_kick(s->pub_arg); /* detaches it */
    if (run && !publish && !have_client && !s->client_stopping && start_slot(s))
        start_client(s, &want);
    if (run && !have_hls)
        start_hls(s, &want);
    if (run && !have_outputs)
        start_outputs(s);
    sync_push(s, &want, run);

    /* The DVR recorder is one more reader of the hub; any dvr.* change
     * restarts it (the chunk being written is closed cleanly). */
    dvr_params_t wdvr;
    dvr_from_cfg(&wdvr, &want);
    /* a publisher's override (the on_publish hook, docs/rtmp.md) */
    int dvr_on = s->pub_dvr >= 0 ? s->pub_dvr : want.dvr_enabled;
    wdvr.enabled = dvr_on;
    if (s->dvr && (!run || memcmp(&wdvr, &s->run_dvr, sizeof wdvr) != 0)) {
        ms_dvr_recorder_stop(s->dvr);
        s->dvr = NULL;
    }
    if (run && dvr_on && !s->dvr) {
        ms_dvr_rec_cfg_t dc = {.uid = want.uid,
                               .name = want.name,
                               .enabled = 1,
                               .chunk_s = want.dvr_chunk_s,
                               .depth_s = want.dvr_depth_s,
                               .event_mode = want.dvr_mode == MS_DVR_EVENT};
        s->dvr = ms_dvr_recorder_start(ms_worker_loop(s->worker), s->hub, &dc);
        if (!s->dvr)
            MS_ERROR(s->ctx, "cannot start the DVR recorder");
        s->run_dvr = wdvr;
    }

    if (desired == MS_RUN_STOPPED && !s->client_stopping) {
        if (s->start_timer_state == HANDLE_OPEN) {
            s->start_timer_state = HANDLE_CLOSING;
            uv_close((uv_handle_t *)&s->start_timer, start_timer_closed);
        }
        if (s->timer_state == HANDLE_OPEN) {
            s->timer_state = HANDLE_CLOSING;
            uv_close((uv_handle_t *)&s->timer, timer_closed);
        } else if ((s->timer_state == HANDLE_NONE || s->timer_state == HANDLE_CLOSED) &&
                   (s->start_timer_state == HANDLE_NONE || s->start_timer_state == HANDLE_CLOSED)) {
            ms_stream_cfg_free(&want);
            finalize(s);
            return;
        }
    }
    ms_stream_cfg_free(&want);
}

/* Loop thread. Re-entrant calls (a done callback fired from inside a stop)
 * are folded into another pass. */
static void step(ms_stream_t *s)
{
    if (s->finalized)
        return;
    if (s->in_step) {
        s->step_again = 1;
        return;
    }
    ms_stream_ref(s); /* finalize() may drop the last other reference */
    s->in_step = 1;
    for (int i = 0; i < 8; i++) {
        s->step_again = 0;
        step_once(s);
        if (s->finalized || !s->step_again)
            break;
    }
    s->in_step = 0;
    ms_stream_unref(s);
}

static void step_task(ms_worker_t *w, void *arg)
{
    (void)w;
    ms_stream_t *s = arg;
    step(s);
    ms_stream_unref(s);
}

/* Posts step() with a reference (consumed by the task). */
static int post_step(ms_stream_t *s)
{
    ms_stream_ref(s);
    int r = ms_worker_post(s->worker, step_task, s);
    if (r < 0)
        ms_stream_unref(s);
    return r;
}

/* ---- registry --------------------------------------------------------- */

int ms_streams_init(ms_workers_t *workers, const ms_node_cfg_t *node)
{
    if (g.inited)
        return -EALREADY;
    if (!workers || ms_workers_count(workers) < 1)
        return -EINVAL;
    memset(&g, 0, sizeof g);
    g.workers = workers;
    g.nworkers = ms_workers_count(workers);
    g.per_worker = calloc((size_t)g.nworkers, sizeof *g.per_worker);
    g.next_start_ms = calloc((size_t)g.nworkers, sizeof *g.next_start_ms);
    if (!g.per_worker || !g.next_start_ms) {
        free(g.per_worker);
        free(g.next_start_ms);
        g.per_worker = NULL;
        g.next_start_ms = NULL;
        return -ENOMEM;
    }
    snprintf(g.node_name, sizeof g.node_name, "%s", node ? node->name : "");
    g.batch_ms = node ? node->ingest_batch_ms : 0;
    g.limit_bytes = node ? (int64_t)node->keyframe_wait_mb << 20 : 0;
    g.limit_ms = node ? (int64_t)node->keyframe_wait_s * 1000 : 0;
    g.status_log_us = node ? (int64_t)node->status_log_s * 1000000 : 0;
    snprintf(g.ctx, sizeof g.ctx, "[node %s]", g.node_name);
    pthread_rwlock_init(&g.lock, NULL);
    pthread_mutex_init(&g.live_mu, NULL);
    pthread_cond_init(&g.live_cv, NULL);
    g.inited = 1;
    return 0;
}

/* Registry lock held. */
static ssize_t find_uid_locked(const char *uid)
{
    for (size_t i = 0; i < g.n; i++)
        if (strcmp(g.v[i]->cfg.uid, uid) == 0)
            return (ssize_t)i;
    return -1;
}

static ms_worker_t *pick_worker_locked(void)
{
    int best = 0;
    for (int i = 1; i < g.nworkers; i++)
        if (g.per_worker[i] < g.per_worker[best])
            best = i;
    g.per_worker[best]++;
    return ms_workers_get(g.workers, best);
}

static ms_stream_t *stream_new(const ms_stream_cfg_t *cfg, ms_run_state_t desired)
{
    ms_stream_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    snprintf(s->ctx, sizeof s->ctx, "%s [stream %s]", g.ctx, cfg->name);
    s->pub_dvr = -1;
    s->hub = ms_hub_new(s->ctx);
    if (!s->hub || ms_stream_cfg_copy(&s->cfg, cfg) < 0) {
        ms_hub_free(s->hub);
        free(s);
        return NULL;
    }
    ms_hub_set_limits(s->hub, g.limit_bytes, g.limit_ms); /* before any reader */
    pthread_mutex_init(&s->mu, NULL);
    s->desired = desired;
    atomic_init(&s->refs, 2); /* the registry's and the worker's life reference */
    return s;
}

int ms_streams_apply(const ms_stream_cfg_t *cfg, ms_run_state_t desired)
{
    if (!g.inited)
        return -EINVAL;
    if (!cfg || !cfg->uid[0] || !cfg->name[0])
        return -EINVAL;
    if (desired == MS_RUN_STOPPED)
        return ms_streams_remove(cfg->uid);
    if (desired == MS_RUN_ACTIVE && !cfg->enabled)
        desired = MS_RUN_SUSPEND;

    ms_stream_cfg_t copy;
    if (ms_stream_cfg_copy(&copy, cfg) < 0)
        return -ENOMEM;

    pthread_rwlock_wrlock(&g.lock);
    for (size_t i = 0; i < g.n; i++)
        if (strcmp(g.v[i]->cfg.name, cfg->name) == 0 && strcmp(g.v[i]->cfg.uid, cfg->uid) != 0) {
            pthread_rwlock_unlock(&g.lock);
            ms_stream_cfg_free(&copy);
            return -EEXIST;
        }
    ssize_t idx = find_uid_locked(cfg->uid);
    ms_stream_t *s;
    if (idx < 0) {
        if (g.n == g.cap) {
            size_t cap = g.cap ? g.cap * 2 : 16;
            ms_stream_t **nv = realloc(g.v, cap * sizeof *nv);
            if (!nv) {
                pthread_rwlock_unlock(&g.lock);
                ms_stream_cfg_free(&copy);
                return -ENOMEM;
            }
            g.v = nv;
            g.cap = cap;
        }
        s = stream_new(cfg, desired);
        if (!s) {
            pthread_rwlock_unlock(&g.lock);
            ms_stream_cfg_free(&copy);
            return -ENOMEM;
        }
        s->worker = pick_worker_locked();
        g.v[g.n++] = s;
        pthread_mutex_lock(&g.live_mu);
        g.live++;
        pthread_mutex_unlock(&g.live_mu);
        MS_INFO(s->ctx, "added (uid %s, worker %d, %s)", cfg->uid, ms_worker_index(s->worker),
                desired == MS_RUN_ACTIVE ? "active" : "suspended");
        ms_stream_cfg_free(&copy);
    } else {
        s = g.v[idx];
        pthread_mutex_lock(&s->mu);
        if (strcmp(s->cfg.name, copy.name) != 0)
            MS_INFO(s->ctx, "renamed to %s", copy.name);
        ms_stream_cfg_free(&s->cfg);
        s->cfg = copy; /* moved */
        s->desired = desired;
        pthread_mutex_unlock(&s->mu);
    }
    ms_stream_ref(s);
    pthread_rwlock_unlock(&g.lock);
    int r = post_step(s);
    ms_stream_unref(s);
    return r;
}

int ms_streams_restart(const char *name_or_uid)
{
    ms_stream_t *s = ms_streams_find(name_or_uid);
    if (!s)
        return -ENOENT;
    pthread_mutex_lock(&s->mu);
    int run = s->desired == MS_RUN_ACTIVE;
    if (run)
        s->restart_req = 1;
    pthread_mutex_unlock(&s->mu);
    int r = -EAGAIN;
    if (run) {
        MS_INFO(s->ctx, "restart requested");
        r = post_step(s);
    }
    ms_stream_unref(s);
    return r;
}

int ms_streams_remove(const char *uid)
{
    if (!g.inited || !uid)
        return -EINVAL;
    pthread_rwlock_wrlock(&g.lock);
    ssize_t idx = find_uid_locked(uid);
    if (idx < 0) {
        pthread_rwlock_unlock(&g.lock);
        return -ENOENT;
    }
    ms_stream_t *s = g.v[idx];
    g.v[idx] = g.v[--g.n];
    pthread_mutex_lock(&s->mu);
    s->desired = MS_RUN_STOPPED;
    pthread_mutex_unlock(&s->mu);
    pthread_rwlock_unlock(&g.lock);
    MS_INFO(s->ctx, "removing");
    int r = post_step(s);
    ms_stream_unref(s); /* the registry's reference */
    return r;
}

ms_stream_t *ms_streams_find(const char *name_or_uid)
{
    if (!g.inited || !name_or_uid)
        return NULL;
    ms_stream_t *found = NULL;
    pthread_rwlock_rdlock(&g.lock);
    for (size_t i = 0; i < g.n && !found; i++)
        if (strcmp(g.v[i]->cfg.name, name_or_uid) == 0)
            found = g.v[i];
    for (size_t i = 0; i < g.n && !found; i++)
        if (strcmp(g.v[i]->cfg.uid, name_or_uid) == 0)
            found = g.v[i];
    ms_stream_ref(found);
    pthread_rwlock_unlock(&g.lock);
    return found;
}

static int cmp_by_name(const void *a, const void *b)
{
    const ms_stream_t *x = *(ms_stream_t *const *)a, *y = *(ms_stream_t *const *)b;
    return strcmp(x->cfg.name, y->cfg.name);
}

size_t ms_streams_list(ms_stream_t ***out)
{
    *out = NULL;
    if (!g.inited)
        return 0;
    pthread_rwlock_rdlock(&g.lock);
    size_t n = g.n;
    ms_stream_t **arr = calloc(n ? n : 1, sizeof *arr);
    if (!arr) {
        pthread_rwlock_unlock(&g.lock);
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        arr[i] = ms_stream_ref(g.v[i]);
    /* sorted by name (stable output for the API), names read under the lock */
    qsort(arr, n, sizeof *arr, cmp_by_name);
    pthread_rwlock_unlock(&g.lock);
    *out = arr;
    return n;
}

void ms_streams_shutdown(void)
{
    if (!g.inited)
        return;
    pthread_rwlock_wrlock(&g.lock);
    ms_stream_t **all = g.v;
    size_t n = g.n;
    g.v = NULL;
    g.n = g.cap = 0;
    pthread_rwlock_unlock(&g.lock);
    for (size_t i = 0; i < n; i++) {
        ms_stream_t *s = all[i];
        pthread_mutex_lock(&s->mu);
        s->desired = MS_RUN_STOPPED;
        pthread_mutex_unlock(&s->mu);
        if (post_step(s) < 0) {
            /* worker already gone: nothing runs on its loop any more */
            MS_ERROR(s->ctx, "worker stopped before the stream");
            live_done();
            ms_stream_unref(s);
        }
        ms_stream_unref(s);
    }
    free(all);

    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += SHUTDOWN_WAIT_S;
    pthread_mutex_lock(&g.live_mu);
    while (g.live > 0)
        if (pthread_cond_timedwait(&g.live_cv, &g.live_mu, &deadline) == ETIMEDOUT)
            break;
    int left = g.live;
    pthread_mutex_unlock(&g.live_mu);
    if (left > 0)
        MS_WARN(g.ctx, "%d stream(s) still stopping after %d s", left, SHUTDOWN_WAIT_S);
    else
        MS_INFO(g.ctx, "all streams stopped");
    /* The registry stays usable for late references; only the bookkeeping
     * of a fully stopped node is released. */
    if (left == 0) {
        pthread_rwlock_wrlock(&g.lock);
        free(g.per_worker);
        g.per_worker = NULL;
        free(g.next_start_ms);
        g.next_start_ms = NULL;
        pthread_rwlock_unlock(&g.lock);
        g.inited = 0;
    }
}

/* ---- per-stream accessors (any thread) -------------------------------- */

int ms_stream_get_cfg(ms_stream_t *s, ms_stream_cfg_t *dst)
{
    pthread_mutex_lock(&s->mu);
    int r = ms_stream_cfg_copy(dst, &s->cfg);
    pthread_mutex_unlock(&s->mu);
    return r;
}

void ms_stream_get_load(ms_stream_t *s, ms_stream_load_t *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&s->mu);
    out->run = s->desired;
    int have = 0, active = 0;
    double kbps = 0;
    if (out->run == MS_RUN_ACTIVE && s->client) {
        ms_rtsp_client_get_load(s->client, &active, &kbps);
        have = 1;
    } else if (out->run == MS_RUN_ACTIVE && s->pub_on) {
        active = 1;
        have = 1;
    }
    double in_kbps = s->in_kbps;
    pthread_mutex_unlock(&s->mu);
    if (out->run == MS_RUN_ACTIVE)
        out->clients = ms_hub_clients(s->hub);
    if (!have)
        return;
    out->source_active = active;
    out->bitrate_kbps = kbps;
    /* as ms_stream_get_status: the hub's input rate when the source has none */
    if (out->bitrate_kbps <= 0 && out->source_active)
        out->bitrate_kbps = in_kbps;
}

void ms_stream_get_status(ms_stream_t *s, ms_stream_status_t *out)
{
    memset(out, 0, sizeof *out);
    double in_kbps;
    pthread_mutex_lock(&s->mu);
    ms_run_state_t desired = s->desired;
    if (s->client) {
        ms_rtsp_client_get_status(s->client, &out->src);
    } else if (desired == MS_RUN_ACTIVE && ms_stream_cfg_is_publish(&s->cfg)) {
        out->src.state = s->pub_on ? MS_STATE_ACTIVE : MS_STATE_INACTIVE;
        out->src.connected_at_us = s->pub_on ? s->pub_since_us : 0;
        out->src.reconnects_total = s->pub_sessions > 0 ? s->pub_sessions - 1 : 0;
        snprintf(out->src.transport, sizeof out->src.transport, "%s", s->pub_on ? "tcp" : "");
        if (!s->pub_on)
            snprintf(out->src.reason, sizeof out->src.reason, "waiting for a publisher");
    } else if (desired == MS_RUN_SUSPEND) {
        out->src.state = MS_STATE_SUSPEND;
        if (!s->cfg.enabled)
            snprintf(out->src.reason, sizeof out->src.reason, "disabled");
    } else if (desired == MS_RUN_ACTIVE && s->fail_reason[0]) {
        out->src.state = MS_STATE_INACTIVE;
        out->src.characteristic = MS_CHAR_INCORRECT;
        snprintf(out->src.reason, sizeof out->src.reason, "%s", s->fail_reason);
    } else if (desired == MS_RUN_ACTIVE) {
        out->src.state = MS_STATE_INITIALIZATION; /* between two clients */
    } else {
        out->src.state = MS_STATE_EMPTY; /* being removed */
    }
    if (s->hls) {
        ms_hls_info_t hi;
        ms_hls_get_info(s->hls, &hi);
        out->hls_ready = hi.ready;
        out->hls_bytes = hi.bytes_held;
    }
    if (s->push)
        out->npush = ms_push_status(s->push, out->push, MS_PUSH_MAX);
    out->output_kbps = s->out_kbps;
    in_kbps = s->in_kbps;
    pthread_mutex_unlock(&s->mu);

    /* input bitrate from the hub's byte count when the source has none
     * (only while media flows: a source reports 0 when not active) */
    if (out->src.bitrate_kbps <= 0 && out->src.state == MS_STATE_ACTIVE)
        out->src.bitrate_kbps = in_kbps;
    ms_placement_view_t pv; /* cluster: the stream's placement in the state */
    if (ms_placement_view_get(s->cfg.uid, &pv) == 0) {
        snprintf(out->role, sizeof out->role, "%s",
                 !pv.self_primary ? "secondary"
                 : pv.transferred ? "migrated"
                                  : "primary");
        snprintf(out->server, sizeof out->server, "%s", pv.primary);
        snprintf(out->backup_server, sizeof out->backup_server, "%s", pv.backup);
    } else {
        snprintf(out->role, sizeof out->role, "primary");
        snprintf(out->server, sizeof out->server, "%s", g.node_name);
        out->backup_server[0] = '\0';
    }
    out->clients = ms_hub_clients(s->hub);

    ms_hub_info_t info;
    ms_hub_get_info(s->hub, &info);
    snprintf(out->video_codec, sizeof out->video_codec, "%s", "");
    snprintf(out->audio_codec, sizeof out->audio_codec, "%s", "");
    int have_v = 0, have_a = 0;
    for (int i = 0; i < info.ntracks && i < MS_MAX_TRACKS; i++) {
        const ms_codec_params_t *t = &info.tracks[i];
        if (t->kind == MS_TRACK_VIDEO && !have_v) {
            have_v = 1;
            out->width = t->width;
            out->height = t->height;
            snprintf(out->video_codec, sizeof out->video_codec, "%s", ms_codec_name(t->codec));
        } else if (t->kind == MS_TRACK_AUDIO && !have_a) {
            have_a = 1;
            snprintf(out->audio_codec, sizeof out->audio_codec, "%s", ms_codec_name(t->codec));
        }
    }
    out->frames_in = info.frames_in;
    out->bytes_in = info.bytes_in;
    out->gop_bytes = info.gop_bytes;
    out->keyframe_limit_hits = info.limit_hits;
    /* A buffer hit its cap and still no keyframe came since: say so. */
    if (out->src.state == MS_STATE_ACTIVE && info.limit_waiting) {
        int64_t since = info.last_key_us ? info.last_key_us : info.limit_hit_us;
        snprintf(out->src.reason, sizeof out->src.reason, "no keyframe for %lld s: %s",
                 (long long)((ms_mono_us() - since) / 1000000), info.limit_what);
    }
    if (out->src.connected_at_us > 0 && out->src.state == MS_STATE_ACTIVE) {
        int64_t up = (ms_wall_us() - out->src.connected_at_us) / 1000000;
        out->uptime_s = up > 0 ? up : 0;
    }
}

ms_hls_t *ms_stream_hls(ms_stream_t *s)
{
    pthread_mutex_lock(&s->mu);
    ms_hls_t *h = s->hls ? ms_hls_ref(s->hls) : NULL;
    pthread_mutex_unlock(&s->mu);
    return h;
}

ms_snapshot_t *ms_stream_snapshot(ms_stream_t *s)
{
    pthread_mutex_lock(&s->mu);
    ms_snapshot_t *p = s->snap ? ms_snapshot_ref(s->snap) : NULL;
    pthread_mutex_unlock(&s->mu);
    return p;
}

ms_fmp4_live_t *ms_stream_live_mp4(ms_stream_t *s)
{
    pthread_mutex_lock(&s->mu);
    ms_fmp4_live_t *p = s->live_mp4 ? ms_fmp4_live_ref(s->live_mp4) : NULL;
    pthread_mutex_unlock(&s->mu);
    return p;
}

ms_hub_t *ms_stream_hub(ms_stream_t *s)
{
    return s->hub;
}

ms_run_state_t ms_stream_run_state(ms_stream_t *s)
{
    pthread_mutex_lock(&s->mu);
    ms_run_state_t r = s->desired;
    pthread_mutex_unlock(&s->mu);
    return r;
}

ms_worker_t *ms_stream_worker(ms_stream_t *s)
{
    return s->worker;
}

/* ---- RTMP publishers -------------------------------------------------- */

int ms_stream_cfg_is_publish(const ms_stream_cfg_t *cfg)
{
    return strcmp(cfg->url, "publish://") == 0;
}

int ms_stream_publisher_attach(ms_stream_t *s, void (*kick)(void *arg), void *arg, const char *peer,
                               int dvr)
{
    pthread_mutex_lock(&s->mu);
    int ok = s->desired == MS_RUN_ACTIVE && ms_stream_cfg_is_publish(&s->cfg);
    int kick_old = s->cfg.republish_kick;
    pthread_mutex_unlock(&s->mu);
    if (!ok || s->finalized)
        return -ENOENT;
    if (s->pub_kick) {
        if (!kick_old)
            return -EBUSY;
        MS_INFO(s->ctx, "new publisher from %s replaces the current one", peer ? peer : "?");
        s->pub_kick(s->pub_arg); /* detaches it (ms_stream_publisher_detach) */
        if (s->pub_kick)
            return -EBUSY;
    }
    s->pub_kick = kick;
    s->pub_arg = arg;
    if (dvr != s->pub_dvr) {
        MS_INFO(s->ctx, "publisher from %s: DVR %s by the on_publish hook", peer ? peer : "?",
                dvr < 0 ? "as configured"
                : dvr   ? "on"
                        : "off");
        s->pub_dvr = dvr;
        post_step(s);
    }
    pthread_mutex_lock(&s->mu);
    s->pub_on = 1;
    s->pub_since_us = ms_wall_us();
    s->pub_sessions++;
    pthread_mutex_unlock(&s->mu);
    return 0;
}

void ms_stream_publisher_detach(ms_stream_t *s, void *arg)
{
    if (!s->pub_kick || s->pub_arg != arg)
        return;
    s->pub_kick = NULL;
    s->pub_arg = NULL;
    if (s->pub_dvr >= 0) {
        s->pub_dvr = -1; /* back to the stream's own setting */
        post_step(s);
    }
    pthread_mutex_lock(&s->mu);
    s->pub_on = 0;
    s->pub_since_us = 0;
    pthread_mutex_unlock(&s->mu);
}
