/* Node glue for the RTSP server (node/rtsp_glue.h). */
#include "node/rtsp_glue.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dvr/archive.h"
#include "node/rtsp_redirect.h"
#include "node/streams.h"
#include "util/ipaddr.h"
#include "util/log.h"

static ms_rtsp_server_t *g_srv;
static const ms_node_cfg_t *g_cfg; /* borrowed from ms_rtsp_glue_start */

/* A stream in run state >= min_state (new reference in out->ref). */
static int find_stream(const char *name, ms_run_state_t min_state, ms_rtsp_stream_t *out)
{
    ms_stream_t *s = ms_streams_find(name);
    if (!s)
        return -ENOENT;
    ms_stream_cfg_t cfg;
    if (ms_stream_run_state(s) < min_state || ms_stream_get_cfg(s, &cfg) < 0) {
        ms_stream_unref(s);
        return -ENOENT;
    }
    memset(out, 0, sizeof *out);
    out->ref = s;
    out->hub = ms_stream_hub(s);
    ms_worker_t *w = ms_stream_worker(s);
    out->loop = ms_worker_loop(w);
    out->exec = w;
    snprintf(out->name, sizeof out->name, "%s", cfg.name);
    snprintf(out->uid, sizeof out->uid, "%s", cfg.uid);
    ms_stream_cfg_free(&cfg);
    return 0;
}

static int glue_lookup(void *ud, const char *name, ms_rtsp_stream_t *out)
{
    (void)ud;
    return find_stream(name, MS_RUN_ACTIVE, out);
}

/* ?from= requests: the archive of a stream configured here but run by
 * another server (held suspended here, e.g. the old primary after a
 * transfer) is served too. */
static int glue_lookup_archive(void *ud, const char *name, ms_rtsp_stream_t *out)
{
    (void)ud;
    return find_stream(name, MS_RUN_SUSPEND, out);
}

/* A stream configured here with enabled = false. */
static int glue_disabled(void *ud, const char *name)
{
    (void)ud;
    ms_stream_t *s = ms_streams_find(name);
    if (!s)
        return 0;
    ms_stream_cfg_t cfg;
    memset(&cfg, 0, sizeof cfg);
    int off = ms_stream_get_cfg(s, &cfg) == 0 && !cfg.enabled;
    ms_stream_cfg_free(&cfg);
    ms_stream_unref(s);
    return off;
}

static void glue_release(void *ud, void *ref)
{
    (void)ud;
    ms_stream_unref(ref);
}

static int glue_running(void *ud, void *ref)
{
    (void)ud;
    ms_run_state_t st = ms_stream_run_state(ref);
    return st == MS_RUN_ACTIVE ? 1 : st == MS_RUN_SUSPEND ? 2 : 0;
}

typedef struct {
    void (*fn)(void *arg);
    void *arg;
} task_t;

static void glue_task(ms_worker_t *w, void *arg)
{
    (void)w;
    task_t t = *(task_t *)arg;
    free(arg);
    t.fn(t.arg);
}

static int glue_post(void *ud, void *exec, void (*fn)(void *arg), void *arg)
{
    (void)ud;
    task_t *t = malloc(sizeof *t);
    if (!t)
        return -ENOMEM;
    t->fn = fn;
    t->arg = arg;
    int r = ms_worker_post(exec, glue_task, t);
    if (r < 0)
        free(t);
    return r;
}

/* Archive replay (dvr/archive.h), on the libuv threadpool. */
static int glue_archive_open(void *ud, const char *uid, int64_t from_ms, void **h,
                             ms_codec_params_t tracks[MS_MAX_TRACKS], int *ntracks,
                             int64_t *start_ms)
{
    (void)ud;
    ms_dvr_replay_t *r = NULL;
    int rc = ms_dvr_replay_open(uid, from_ms, &r, tracks, ntracks, start_ms);
    *h = r;
    return rc;
}

static int glue_archive_read(void *ud, void *h, ms_frame_t **f)
{
    (void)ud;
    return ms_dvr_replay_next(h, f);
}

static void glue_archive_close(void *ud, void *h)
{
    (void)ud;
    ms_dvr_replay_free(h);
}

static const ms_rtsp_glue_sessions_t *g_sess; /* borrowed, static */

void ms_rtsp_glue_set_sessions(const ms_rtsp_glue_sessions_t *hooks)
{
    g_sess = hooks;
}

/* Any thread (the session table's kick, under its lock): posts the close
 * to the stream's loop (ms_rtsp_server_kick), never closes here. */
static void glue_kick(void *exec, uint64_t conn_id)
{
    ms_rtsp_server_t *srv = g_srv;
    if (srv)
        ms_rtsp_server_kick(srv, exec, conn_id);
}

static void *glue_session_open(void *ud, void *ref, const struct sockaddr *peer, const char *ua,
                               uint64_t conn_id)
{
    (void)ud;
    if (!g_sess || !g_sess->open)
        return NULL;
    return g_sess->open(ref, "rtsp", peer, ua, glue_kick, ms_stream_worker(ref), conn_id);
}

static void glue_session_bytes(void *ud, void *sess, uint64_t bytes)
{
    (void)ud;
    if (g_sess && g_sess->bytes)
        g_sess->bytes(sess, bytes);
}

static void glue_session_close(void *ud, void *sess)
{
    (void)ud;
    if (g_sess && g_sess->close)
        g_sess->close(sess);
}

/* Trusted proxies are exempt from listen.conns_per_ip. */
static int glue_exempt(void *ud, const struct sockaddr *peer)
{
    (void)ud;
    ms_ip_t ip;
    return g_cfg && ms_ip_from_sockaddr(peer, &ip) == 0 &&
           ms_cidr_list_match(g_cfg->trusted_proxies, g_cfg->ntrusted_proxies, &ip);
}

int ms_rtsp_glue_start(const ms_node_cfg_t *cfg, ms_rtsp_authorize_fn authorize, void *auth_ud,
                       char *err, size_t errlen)
{
    if (g_srv)
        return -EALREADY;
    if (cfg->port_rtsp <= 0)
        return 0;
    char ctx[MS_NAME_MAX + 32];
    snprintf(ctx, sizeof ctx, "[node %s] [rtsp-server]", cfg->name);
    g_cfg = cfg;
    ms_rtsp_server_cfg_t sc = {
        .address = cfg->listen_address,
        .port = cfg->port_rtsp,
        .log_ctx = ctx,
        .request_timeout_ms = (uint32_t)cfg->request_timeout_s * 1000u,
        .conns_per_ip = (uint32_t)cfg->conns_per_ip,
        .exempt = glue_exempt,
        .lookup = glue_lookup,
        .release = glue_release,
        .running = glue_running,
        .lookup_archive = glue_lookup_archive,
        .redirect = ms_rtsp_redirect_decide,
        .post = glue_post,
        .authorize = authorize,
        .archive_open = glue_archive_open,
        .archive_read = glue_archive_read,
        .archive_close = glue_archive_close,
        .disabled = glue_disabled,
        .session_open = glue_session_open,
        .session_bytes = glue_session_bytes,
        .session_close = glue_session_close,
        .ud = auth_ud,
    };
    g_srv = ms_rtsp_server_start(&sc, err, errlen);
    return g_srv ? 0 : -EADDRINUSE;
}

void ms_rtsp_glue_stop(void)
{
    ms_rtsp_server_t *s = g_srv;
    g_srv = NULL;
    ms_rtsp_server_stop(s);
}
