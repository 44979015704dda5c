/* Playback routes other than HLS and the access check in front of every
 * playback route (docs/api.md "Playback"):
 *   GET /{stream}/live.mp4        live fragmented MP4 (ISO/IEC 14496-12)
 *   GET /{stream}/videoshot.jpg   JPEG of the latest keyframe, full size
 *   GET /{stream}/preview.jpg     the same, preview size
 *   GET /{stream}/preview.mp4     one-frame MP4 of the latest keyframe
 * Each takes ?token= for private streams (api/access.h). The responses are
 * built by api/live_mp4.c; this file adds access control, CORS and the
 * accounting (status and bytes for the log and /metrics, output bytes and
 * viewers on the stream's hub). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "api/access.h"
#include "api/api.h"
#include "api/live_mp4.h"
#include "util/clock.h"
#include "util/log.h"

static const char *const cors_hdrs[] = {"Access-Control-Allow-Origin", "*", NULL};
static const char *const retry_hdrs[] = {"Retry-After", "1", "Cache-Control", "no-cache", NULL};

static pthread_mutex_t g_refuse_mu = PTHREAD_MUTEX_INITIALIZER;
static ms_ratelimit_t g_refuse_rl = MS_RATELIMIT_INIT(1000);

int ms_api_is_playback(ms_route_id_t id)
{
    return id == MS_ROUTE_HLS_PLAYLIST || id == MS_ROUTE_HLS_MEDIA || id == MS_ROUTE_LIVE_MP4 ||
           id == MS_ROUTE_SNAPSHOT || id == MS_ROUTE_PREVIEW_MP4 || id == MS_ROUTE_ARCHIVE;
}

/* Logs a refusal (at most one line a second). */
static void log_refusal(ms_req_t *r, const char *name, const char *reason)
{
    uint32_t skipped = 0;
    pthread_mutex_lock(&g_refuse_mu);
    int ok = ms_ratelimit_ok(&g_refuse_rl, &skipped);
    pthread_mutex_unlock(&g_refuse_mu);
    if (!ok)
        return;
    char ctx[MS_NAME_MAX + 32];
    snprintf(ctx, sizeof(ctx), "%s [stream %s]", MS_API_CTX, name);
    MS_INFO(ctx, "playback refused for %s (%s %s): %s%s", r->peer, r->method ? r->method : "-",
            r->route.name ? r->route.name : "", reason,
            skipped ? " (and earlier refusals not logged)" : "");
}

/* The protocol name the on_play hook sees (docs/lua.md). */
static const char *route_protocol(ms_route_id_t id)
{
    switch (id) {
    case MS_ROUTE_HLS_PLAYLIST:
    case MS_ROUTE_HLS_MEDIA:
        return "hls";
    case MS_ROUTE_LIVE_MP4:
    case MS_ROUTE_PREVIEW_MP4:
        return "mp4";
    case MS_ROUTE_LIVE_FLV:
        return "flv";
    case MS_ROUTE_SNAPSHOT:
        return "jpeg";
    case MS_ROUTE_ARCHIVE:
        return "archive";
    default:
        return "http";
    }
}

int ms_api_playback_decide(ms_req_t *r, const ms_stream_cfg_t *cfg, const char *token, int mode,
                           int64_t at_ms, ms_play_decision_t *d, enum MHD_Result *ret)
{
    char query[MS_URL_MAX + 1] = "";
    if (r->parts.query && r->parts.query_len < sizeof query) {
        memcpy(query, r->parts.query, r->parts.query_len);
        query[r->parts.query_len] = '\0';
    }
    ms_play_req_t q = {
        .stream = cfg,
        .node = ms_api_cfg(),
        .peer = (const struct sockaddr *)&r->peer_sa,
        .xff = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-Forwarded-For"),
        .forwarded = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Forwarded"),
        .token = token,
        .mode = mode,
        .at_ms = at_ms,
        .protocol = route_protocol(r->route.id),
        .query = query,
        .user_agent = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "User-Agent"),
    };
    int rc = ms_playback_decide(&q, ms_wall_us() / 1000000, d);
    if (rc == 0)
        return 0;
    log_refusal(r, cfg->name, d->reason);
    /* hidden: the very answer an unknown stream gets (api/access.h) */
    *ret = rc == -ENOENT ? ms_api_reply_error(r, 404, "unknown stream", NULL, NULL)
                         : ms_api_reply_error(r, 403, d->reason, NULL, NULL);
    return rc;
}

int ms_api_playback_access(ms_req_t *r, ms_stream_t *s, const char *token, enum MHD_Result *ret)
{
    ms_play_decision_t d;
    return ms_api_playback_access_d(r, s, token, &d, ret);
}

int ms_api_playback_access_d(ms_req_t *r, ms_stream_t *s, const char *token, ms_play_decision_t *d,
                             enum MHD_Result *ret)
{
    ms_stream_cfg_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    if (ms_stream_get_cfg(s, &cfg) < 0) {
        *ret = ms_api_reply_error(r, 500, "out of memory", NULL, NULL);
        return -ENOMEM;
    }
    int rc = ms_api_playback_decide(r, &cfg, token, MS_ACCESS_LIVE, 0, d, ret);
    ms_stream_cfg_free(&cfg);
    return rc < 0 ? rc : 0;
}

static int stream_disabled(ms_stream_t *s)
{
    ms_stream_cfg_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    if (ms_stream_get_cfg(s, &cfg) < 0)
        return 0;
    int off = !cfg.enabled;
    ms_stream_cfg_free(&cfg);
    return off;
}

static const char *const nocache_hdrs[] = {"Cache-Control", "no-cache", NULL};

int ms_api_playback_gate(ms_req_t *r, ms_stream_t *s, int hls, enum MHD_Result *ret)
{
    if (hls && ms_api_client_refused(r, s)) {
        *ret = ms_api_reply_error(r, 403, "session ended by an administrator", NULL, nocache_hdrs);
        return -ECANCELED;
    }
    if (stream_disabled(s)) {
        *ret = ms_api_reply_error(r, 503, "stream disabled", NULL, nocache_hdrs);
        return -EPERM;
    }
    return 0;
}

enum MHD_Result ms_api_reply_unavailable(ms_req_t *r, ms_stream_t *s)
{
    if (stream_disabled(s))
        return ms_api_reply_error(r, 503, "stream disabled", NULL, nocache_hdrs);
    ms_stream_status_t *st = calloc(1, sizeof(*st));
    json_t *j = json_pack("{s:s}", "error", "stream not ready");
    if (st && j) {
        ms_stream_get_status(s, st);
        json_object_set_new(j, "status", json_pack("{s:s}", "reason", st->src.reason));
    }
    free(st);
    if (!j)
        return ms_api_reply_error(r, 503, "stream not ready", NULL, retry_hdrs);
    return ms_api_reply_json(r, 503, j, retry_hdrs);
}

/* Finds the stream of the route and checks access. Returns a reference, or
 * NULL with the reply queued in *ret. tok receives ?token= ("" if none). */
static ms_stream_t *open_stream(ms_req_t *r, char *tok, size_t cap, ms_play_decision_t *d,
                                enum MHD_Result *ret)
{
    int n = ms_api_query(r, "token", tok, cap);
    if (n == -ENOSPC) {
        *ret = ms_api_reply_error(r, 400, "token too long", "token", NULL);
        return NULL;
    }
    if (n < 0)
        tok[0] = '\0';
    ms_stream_t *s = ms_streams_find(r->route.stream);
    if (!s) {
        *ret = ms_api_reply_error(r, 404, "unknown stream", NULL, NULL);
        return NULL;
    }
    /* the JPEG and preview.mp4 fetches share the HLS session of the client
     * (one per stream and address): an ended one refuses them too */
    int hls = r->route.id != MS_ROUTE_LIVE_MP4 && r->route.id != MS_ROUTE_LIVE_FLV;
    if (ms_api_playback_access_d(r, s, tok, d, ret) < 0 ||
        ms_api_playback_gate(r, s, hls, ret) < 0) {
        ms_stream_unref(s);
        return NULL;
    }
    return s;
}

/* Records what live_mp4.c queued in r (for the log and /metrics). */
static enum MHD_Result record(ms_req_t *r, enum MHD_Result ret, const ms_live_reply_t *acct)
{
    if (acct->status) {
        r->status = acct->status;
        r->bytes = acct->body_len;
    }
    return ret;
}

typedef struct {
    ms_req_t *r;
    ms_stream_t *s;
} live_sess_t;

static void *live_sess_open(void *ud, void (*kick)(void *ctx, uint64_t arg), void *ctx)
{
    live_sess_t *ls = ud;
    return ms_api_session_open(ls->r, ls->s, ls->r->route.id == MS_ROUTE_LIVE_FLV ? "flv" : "mp4",
                               kick, ctx);
}

static void session_bytes_v(void *ss, uint64_t bytes)
{
    ms_api_session_bytes(ss, bytes);
}

static void session_close_v(void *ss)
{
    ms_api_session_close(ss);
}

enum MHD_Result ms_api_live_mp4(ms_req_t *r)
{
    char tok[512];
    enum MHD_Result ret = MHD_NO;
    ms_play_decision_t d;
    ms_stream_t *s = open_stream(r, tok, sizeof(tok), &d, &ret);
    if (!s)
        return ret;
    ms_fmp4_live_t *live = ms_stream_live_mp4(s);
    ms_fmp4_live_stats_t lst;
    if (live)
        ms_fmp4_live_stats(live, &lst);
    if (!live || !lst.ready) {
        /* no init segment yet: why (the source's reason) */
        ms_fmp4_live_unref(live);
        ret = ms_api_reply_unavailable(r, s);
        goto out;
    }
    /* The hub counts this viewer while the body is served and its bytes as
     * they are sent; r->sent feeds the request log. */
    /* the body ends when the token expires (at the next fragment after) */
    ms_live_reply_t acct = {cors_hdrs,
                            0,
                            0,
                            &r->sent,
                            d.expires,
                            live_sess_open,
                            session_bytes_v,
                            session_close_v,
                            &(live_sess_t){r, s}};
    ret = record(r, ms_live_mp4_respond_acct(r->conn, live, ms_stream_hub(s), &acct), &acct);
    ms_fmp4_live_unref(live);
out:
    ms_stream_unref(s);
    return ret;
}

/* GET /{stream}/live.flv: HTTP-FLV, the same access decision and
 * accounting as live.mp4; 503 while the stream has no tracks yet. */
enum MHD_Result ms_api_live_flv(ms_req_t *r)
{
    char tok[512];
    enum MHD_Result ret = MHD_NO;
    ms_play_decision_t d;
    ms_stream_t *s = open_stream(r, tok, sizeof(tok), &d, &ret);
    if (!s)
        return ret;
    if (ms_stream_run_state(s) != MS_RUN_ACTIVE) {
        ret = ms_api_reply_unavailable(r, s);
        goto out;
    }
    ms_live_reply_t acct = {cors_hdrs,
                            0,
                            0,
                            &r->sent,
                            d.expires,
                            live_sess_open,
                            session_bytes_v,
                            session_close_v,
                            &(live_sess_t){r, s}};
    ret = record(r, ms_live_flv_respond_acct(r->conn, s, &acct), &acct);
out:
    ms_stream_unref(s);
    return ret;
}

enum MHD_Result ms_api_snapshot(ms_req_t *r)
{
    char tok[512];
    enum MHD_Result ret = MHD_NO;
    ms_play_decision_t d;
    ms_stream_t *s = open_stream(r, tok, sizeof(tok), &d, &ret);
    if (!s)
        return ret;
    ms_snapshot_t *snap = ms_stream_snapshot(s);
    if (!snap) {
        ret = ms_api_reply_unavailable(r, s);
        goto out;
    }
    int preview = strcmp(r->route.name, "preview.jpg") == 0;
    int pending = 0;
    ms_live_reply_t acct = {cors_hdrs, 0, 0, NULL, 0};
    ret = record(r, ms_snapshot_respond_acct(r->conn, snap, preview, &pending, &acct), &acct);
    ms_snapshot_unref(snap);
    /* pending: the connection is suspended until the decode is done; MHD
     * calls the access handler again, which routes here once more. */
    if (!pending && acct.status == 200) {
        ms_hub_t *hub = ms_stream_hub(s);
        if (hub)
            ms_hub_bytes_out_add(hub, acct.body_len);
        ms_api_client_seen(r, s, "jpeg", acct.body_len); /* a short-lived viewer, like HLS */
    }
out:
    ms_stream_unref(s);
    return ret;
}

enum MHD_Result ms_api_preview_mp4(ms_req_t *r)
{
    char tok[512];
    enum MHD_Result ret = MHD_NO;
    ms_play_decision_t d;
    ms_stream_t *s = open_stream(r, tok, sizeof(tok), &d, &ret);
    if (!s)
        return ret;
    ms_snapshot_t *snap = ms_stream_snapshot(s);
    ms_live_reply_t acct = {cors_hdrs, 0, 0, NULL, 0};
    ret = record(r, ms_snapshot_mp4_respond_acct(r->conn, snap, &acct), &acct);
    ms_snapshot_unref(snap);
    if (acct.status == 200) {
        ms_hub_t *hub = ms_stream_hub(s);
        if (hub)
            ms_hub_bytes_out_add(hub, acct.body_len);
        ms_api_client_seen(r, s, "mp4", acct.body_len);
    }
    ms_stream_unref(s);
    return ret;
}
