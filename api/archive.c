/* Archive playback over HTTP and the DVR REST calls (docs/dvr.md):
 *   GET  /{stream}/archive-FROM-DURATION.m3u8 | archive-FROM-now.m3u8
 *   GET  /{stream}/archive-FROM-DURATION.mp4 (HTTP Range, RFC 7233)
 *   GET  /{stream}/archive-init-*.mp4, archive-seg-*.m4s (HLS media)
 *   GET  /{stream}/videoshot.jpg|preview.jpg?at=T
 *   GET  /api/v1/streams/{id}/ranges?from=&to=
 *   POST /api/v1/streams/{id}/events {"duration_s":30}
 * Every handler runs on an MHD thread: index queries and file reads block
 * that thread only, never a media loop. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/access.h"
#include "api/archive_remote.h"
#include "dvr/archive.h"
#include "dvr/dvr.h"
#include "media/snapshot/snapshot.h"
#include "node/archive_view.h"
#include "node/cluster.h"
#include "util/clock.h"
#include "util/log.h"

static int cmp_from(const void *a, const void *b)
{
    json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "from"));
    json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "from"));
    return (x > y) - (x < y);
}

/* Sorts an array of {"from": t, ...} objects by from. */
static void sort_by_from(json_t *arr)
{
    size_t n = json_array_size(arr);
    json_t **v = calloc(n ? n : 1, sizeof *v);
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        v[i] = json_incref(json_array_get(arr, i));
    qsort(v, n, sizeof *v, cmp_from);
    json_array_clear(arr);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, v[i]);
    free(v);
}

enum MHD_Result ms_api_stream_ranges(ms_req_t *r)
{
    ms_stream_t *s = ms_streams_find(r->route.stream);
    if (!s)
        return ms_api_reply_error(r, 404, "unknown stream", NULL, NULL);
    ms_stream_cfg_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    int rc = ms_stream_get_cfg(s, &cfg);
    ms_stream_unref(s);
    if (rc < 0)
        return ms_api_reply_error(r, 500, "out of memory", NULL, NULL);
    char v[32];
    int64_t from = 0, to = 0;
    enum MHD_Result ret;
    if (ms_api_query(r, "from", v, sizeof(v)) >= 0 &&
        ms_url_parse_i64(v, 0, INT64_MAX / 2000, &from) < 0) {
        ret = ms_api_reply_error(r, 400, "from: UTC seconds expected", "from", NULL);
        goto out;
    }
    if (ms_api_query(r, "to", v, sizeof(v)) >= 0 &&
        ms_url_parse_i64(v, 0, INT64_MAX / 2000, &to) < 0) {
        ret = ms_api_reply_error(r, 400, "to: UTC seconds expected", "to", NULL);
        goto out;
    }
    if (to > 0 && to < from) {
        ret = ms_api_reply_error(r, 400, "to is before from", "to", NULL);
        goto out;
    }
    json_t *j = NULL;
    rc = ms_dvr_ranges(cfg.uid, from, to, &j);
    json_t *arr = j ? json_object_get(j, "ranges") : NULL;
    /* index handoff (docs/cluster.md): the ranges the other servers
     * published for this stream, so any node lists the whole history; not
     * with recording off (seed rule) */
    if (rc == 0 && cfg.dvr_enabled && json_is_array(arr) &&
        ms_archive_view_append(cfg.uid, from, to > 0 ? to : ms_wall_us() / 1000000, arr) > 0)
        sort_by_from(arr);
    if (rc < 0)
        ret = ms_api_reply_error(r, 503, "archive index unavailable", NULL, NULL);
    else
        ret = ms_api_reply_json(r, 200, j, NULL);
out:
    ms_stream_cfg_free(&cfg);
    return ret;
}

enum MHD_Result ms_api_stream_events(ms_req_t *r)
{
    ms_stream_t *s = ms_streams_find(r->route.stream);
    if (!s)
        return ms_api_reply_error(r, 404, "unknown stream", NULL, NULL);
    ms_stream_cfg_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    int rc = ms_stream_get_cfg(s, &cfg);
    ms_stream_unref(s);
    if (rc < 0)
        return ms_api_reply_error(r, 500, "out of memory", NULL, NULL);
    enum MHD_Result ret;
    json_error_t jerr;
    json_t *body = r->body ? json_loadb(r->body, r->body_len, 0, &jerr) : NULL;
    json_t *d = body ? json_object_get(body, "duration_s") : NULL;
    if (!body || !json_is_object(body)) {
        ret = ms_api_reply_error(r, 400, "JSON object body expected", NULL, NULL);
        goto out;
    }
    if (!json_is_integer(d) || json_integer_value(d) <= 0 || json_integer_value(d) > 86400) {
        ret =
            ms_api_reply_error(r, 400, "duration_s: integer 1..86400 expected", "duration_s", NULL);
        goto out;
    }
    if (!cfg.dvr_enabled || cfg.dvr_mode != MS_DVR_EVENT) {
        ret = ms_api_reply_error(r, 409, "stream does not record in event mode", "dvr.mode", NULL);
        goto out;
    }
    rc = ms_dvr_event(cfg.uid, (int64_t)json_integer_value(d));
    if (rc == -ENOENT)
        ret = ms_api_reply_error(r, 409, "stream is not recording (not running here)", NULL, NULL);
    else if (rc == -EINVAL)
        ret = ms_api_reply_error(r, 400, "bad duration_s", "duration_s", NULL);
    else if (rc < 0)
        ret = ms_api_reply_error(r, 500, "event failed", NULL, NULL);
    else
        ret = ms_api_reply_json(
            r, 200,
            json_pack("{s:s,s:I}", "uid", cfg.uid, "duration_s", (json_int_t)json_integer_value(d)),
            NULL);
out:
    json_decref(body);
    ms_stream_cfg_free(&cfg);
    return ret;
}

/* ---- archive playback --------------------------------------------------- */

#define SEG_TARGET_MS 4000

typedef struct {
    ms_stream_cfg_t cfg;
    char tok[512];
    char query[600];      /* "?token=..." or "" for URIs in playlists */
    ms_play_decision_t d; /* the session's window and expiry */
} arch_t;

/* Finds the stream and decides archive access (api/access.h
 * ms_playback_decide) for time at_ms (UTC ms) or MS_PLAY_ANY_TIME (the
 * caller then holds the request to a->d's window). 0, or the reply is
 * queued in *ret. On success a->cfg must be freed. */
static int arch_open(ms_req_t *r, arch_t *a, int64_t at_ms, enum MHD_Result *ret)
{
    memset(a, 0, sizeof *a);
    int n = ms_api_query(r, "token", a->tok, sizeof a->tok);
    if (n == -ENOSPC) {
        *ret = ms_api_reply_error(r, 400, "token too long", "token", NULL);
        return -EINVAL;
    }
    if (n < 0)
        a->tok[0] = '\0';
    ms_stream_t *s = ms_streams_find(r->route.stream);
    if (!s) {
        *ret = ms_api_reply_error(r, 404, "unknown stream", NULL, NULL);
        return -ENOENT;
    }
    int rc = ms_stream_get_cfg(s, &a->cfg);
    ms_stream_unref(s);
    if (rc < 0) {
        *ret = ms_api_reply_error(r, 500, "out of memory", NULL, NULL);
        return -ENOMEM;
    }
    /* a signed node-to-node playlist fetch (api/archive_remote.c): the
     * asking node already decided access for its client (and clipped the
     * window it asks for) */
    if (ms_archive_remote_internal(r)) {
        a->d.verdict = MS_PLAY_ALLOW;
        a->d.win_from_ms = INT64_MIN;
        a->d.win_to_ms = INT64_MAX;
        rc = 0;
    } else {
        rc = ms_api_playback_decide(r, &a->cfg, a->tok, MS_ACCESS_ARCHIVE, at_ms, &a->d, ret);
    }
    if (rc < 0) {
        ms_stream_cfg_free(&a->cfg);
        return rc;
    }
    if (a->tok[0]) {
        char enc[sizeof a->tok * 3];
        if (ms_url_encode(a->tok, enc, sizeof enc) < 0 ||
            (size_t)snprintf(a->query, sizeof a->query, "?token=%s", enc) >= sizeof a->query) {
            *ret = ms_api_reply_error(r, 400, "token too long", "token", NULL);
            ms_stream_cfg_free(&a->cfg);
            return -EINVAL;
        }
    }
    return 0;
}

/* The start of the keyframe fragment that contains from_ms (the first
 * chunk ending after it; as dvr/playlist.c and dvr/mp4export.c start), or
 * from_ms when none does. */
static int64_t kf_at(const ms_dvr_chunk_t *v, size_t n, int64_t from_ms)
{
    for (size_t ci = 0; ci < n; ci++) {
        const ms_dvr_chunk_t *c = &v[ci];
        if (!c->nfrags || c->end_ms <= from_ms)
            continue;
        size_t k = 0;
        for (size_t q = 0; q < c->nfrags; q++)
            if (c->frags[q].key && c->frags[q].t_ms <= from_ms)
                k = q;
        return c->frags[k].t_ms < from_ms ? c->frags[k].t_ms : from_ms;
    }
    return from_ms;
}

/* The length to ask the playlist / export for: they end at their first
 * keyframe + length. Up to the request's end as before; when the session's
 * window ends first, up to exactly that end (the window rule: from the
 * keyframe containing its start up to its end). */
static int64_t span_ms(const arch_t *a, int64_t kf, int64_t from_ms, int64_t end_ms)
{
    if (end_ms == a->d.win_to_ms && kf < from_ms)
        return end_ms - kf;
    return end_ms - from_ms;
}

/* [*from_ms, *to_ms) held to the session's window; 0, or the 403 queued. */
static int arch_clip(ms_req_t *r, arch_t *a, int64_t *from_ms, int64_t *to_ms, enum MHD_Result *ret)
{
    if (ms_play_clip(&a->d, from_ms, to_ms))
        return 0;
    *ret = ms_api_reply_error(r, 403, "outside the token's archive window", NULL, NULL);
    ms_stream_cfg_free(&a->cfg);
    return -EACCES;
}

static enum MHD_Result queue_resp(ms_req_t *r, unsigned code, struct MHD_Response *resp,
                                  const char *ctype, uint64_t len)
{
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(resp, "Access-Control-Allow-Origin", "*");
    enum MHD_Result ret = MHD_queue_response(r->conn, code, resp);
    MHD_destroy_response(resp);
    if (ret == MHD_YES) {
        r->status = code;
        r->bytes = len;
    }
    return ret;
}

/* The archive window rule (api/access.h ms_play_clip) for fragments
 * [i, j] of chunk c: the first starts at or after the keyframe fragment
 * that contains the window's start (at most one GOP before it) and every
 * one starts before the window's end. any: the chunk only has to overlap
 * that span (its init segment). */
static int frags_allowed(const ms_play_decision_t *d, const ms_dvr_chunk_t *c, size_t i, size_t j,
                         int any)
{
    if (d->win_from_ms == INT64_MIN && d->win_to_ms == INT64_MAX)
        return 1;
    /* a chunk that ends before the window's start holds nothing of it (the
     * keyframe rule reaches back only inside the chunk that contains it) */
    if (!c->nfrags || c->end_ms <= d->win_from_ms)
        return 0;
    /* the earliest fragment start the window allows in this chunk */
    int64_t lo = d->win_from_ms;
    for (size_t q = 0; q < c->nfrags; q++)
        if (c->frags[q].key && c->frags[q].t_ms <= d->win_from_ms)
            lo = c->frags[q].t_ms;
    if (any)
        return c->end_ms > lo && c->start_ms < d->win_to_ms;
    return c->frags[i].t_ms >= lo && c->frags[j].t_ms < d->win_to_ms;
}

/* HLS media: init segment or fragments [i, j] of one chunk, served from
 * the file (sendfile where MHD can). */
static enum MHD_Result serve_media(ms_req_t *r, const char *name)
{
    int64_t id, cstart, i = 0, j = 0;
    int kind = ms_dvr_media_name(name, &id, &cstart, &i, &j);
    if (kind < 0)
        return ms_api_reply_error(r, 404, "not found", NULL, NULL);
    arch_t a;
    enum MHD_Result ret;
    if (arch_open(r, &a, MS_PLAY_ANY_TIME, &ret) < 0)
        return ret;
    ms_dvr_chunk_t *v = NULL;
    size_t n = 0;
    int rc = ms_dvr_chunks(a.cfg.uid, cstart, cstart + 1, &v, &n);
    const ms_dvr_chunk_t *c = NULL;
    for (size_t k = 0; rc == 0 && k < n; k++)
        if (v[k].id == id && v[k].start_ms == cstart)
            c = &v[k];
    uint64_t off = 0, len = 0;
    int outside = 0;
    if (c && kind == 2) {
        len = c->init_len;
        outside = !frags_allowed(&a.d, c, 0, c->nfrags ? c->nfrags - 1 : 0, 1);
    } else if (c && kind == 1 && (uint64_t)j < c->nfrags) {
        off = c->frags[i].off;
        len = c->frags[j].off + c->frags[j].size - off;
        outside = !frags_allowed(&a.d, c, (size_t)i, (size_t)j, 0);
    } else {
        c = NULL;
    }
    if (c && outside) {
        ret = ms_api_reply_error(r, 403, "outside the token's archive window", NULL, NULL);
        ms_dvr_chunks_free(v, n);
        ms_stream_cfg_free(&a.cfg);
        return ret;
    }
    int fd = c ? open(c->path, O_RDONLY | O_CLOEXEC) : -1;
    if (fd < 0) {
        ret = ms_api_reply_error(r, 404, "no such archive segment", NULL, NULL);
    } else {
        struct MHD_Response *resp =
            MHD_create_response_from_fd_at_offset64(len, fd, off); /* takes fd */
        if (!resp)
            close(fd);
        ret = queue_resp(r, 200, resp, kind == 2 ? "video/mp4" : "video/iso.segment", len);
    }
    ms_dvr_chunks_free(v, n);
    ms_stream_cfg_free(&a.cfg);
    return ret;
}

static enum MHD_Result serve_playlist(ms_req_t *r, int64_t from, int64_t dur, int event)
{
    arch_t a;
    enum MHD_Result ret;
    if (arch_open(r, &a, MS_PLAY_ANY_TIME, &ret) < 0)
        return ret;
    /* the asked window held to the session's (api/access.h) */
    int64_t from_ms = from * 1000, end_ms = event ? INT64_MAX : (from + dur) * 1000;
    if (arch_clip(r, &a, &from_ms, &end_ms, &ret) < 0)
        return ret;
    /* -now with a window that has ended: a VOD list up to its end; while it
     * has not, an EVENT list (every listed segment starts before now, so
     * inside the window) that gets its ENDLIST once the window is over */
    if (event && end_ms != INT64_MAX && end_ms <= ms_wall_us() / 1000)
        event = 0;
    else if (event)
        end_ms = INT64_MAX;
    int64_t to_ms = event ? (ms_wall_us() / 1000) + 60000 : end_ms + 60000;
    ms_dvr_chunk_t *v = NULL;
    size_t n = 0;
    int rc = ms_dvr_chunks(a.cfg.uid, from_ms, to_ms, &v, &n);
    if (rc < 0) {
        ret = ms_api_reply_error(r, 503, "archive index unavailable", NULL, NULL);
        goto out;
    }
    int64_t span = span_ms(&a, kf_at(v, n, from_ms), from_ms, end_ms);
    ms_dvr_pl_opts_t o = {from_ms, span, event, 2000, SEG_TARGET_MS, a.query};
    if (event)
        o.dur_ms = 0;
    ms_buf_t b = MS_BUF_INIT;
    rc = ms_dvr_playlist(v, n, &o, &b);
    /* pieces of the window on other servers: one timeline (docs/cluster.md
     * "Playback on any node"); not for a node-to-node fetch (no loops) */
    char missing[256] = "";
    if (rc >= 0 && a.cfg.dvr_enabled && ms_cluster_enabled() && !ms_archive_remote_local_only(r)) {
        ms_buf_t sp = MS_BUF_INIT;
        int k = ms_archive_remote_splice(a.cfg.uid, v, n, &o, event ? to_ms - 60000 : end_ms, &sp,
                                         missing, sizeof missing);
        if (k == -ENOENT) {
            ms_buf_free(&sp);
        } else {
            ms_buf_free(&b);
            b = sp;
            rc = k;
        }
    }
    const char *hdrs[] = {"Cache-Control", "no-cache", missing[0] ? "X-Archive-Missing" : NULL,
                          missing, NULL};
    if (rc < 0)
        ret = ms_api_reply_error(r, 500, "out of memory", NULL, NULL);
    else if (rc == 0 && !event && missing[0])
        ret = ms_api_reply_error(r, 502, "the servers holding this window did not answer", NULL,
                                 hdrs + 2);
    else if (rc == 0 && !event)
        ret = ms_api_reply_error(r, 404, "nothing recorded in this window", NULL, NULL);
    else
        ret = ms_api_reply_text(r, 200, "application/vnd.apple.mpegurl", (const char *)b.data,
                                b.len, event ? hdrs : hdrs + 2);
    ms_buf_free(&b);
    ms_dvr_chunks_free(v, n);
out:
    ms_stream_cfg_free(&a.cfg);
    return ret;
}

/* ---- MP4 export with Range (RFC 7233 section 2.1, 4.1, 4.4) ---------- */

typedef struct {
    ms_dvr_export_t *x;
    uint64_t start;
} mp4_body_t;

static ssize_t mp4_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    mp4_body_t *m = cls;
    ssize_t k = ms_dvr_export_read(m->x, m->start + pos, (uint8_t *)buf, max);
    if (k < 0)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    if (k == 0)
        return MHD_CONTENT_READER_END_OF_STREAM;
    return k;
}

static void mp4_free(void *cls)
{
    mp4_body_t *m = cls;
    ms_dvr_export_free(m->x);
    free(m);
}

/* "bytes=a-b" | "bytes=a-" | "bytes=-n" against size: 1 with [*a, *b]
 * set, 0 to ignore the header (unsupported form: serve 200), -1 when
 * unsatisfiable (416). */
static int parse_range(const char *h, uint64_t size, uint64_t *a, uint64_t *b)
{
    if (strncmp(h, "bytes=", 6) != 0 || strchr(h, ','))
        return 0;
    const char *p = h + 6;
    const char *dash = strchr(p, '-');
    if (!dash)
        return 0;
    char lo[24], hi[24];
    size_t ll = (size_t)(dash - p), hl = strlen(dash + 1);
    if (ll >= sizeof lo || hl >= sizeof hi)
        return 0;
    memcpy(lo, p, ll);
    lo[ll] = '\0';
    memcpy(hi, dash + 1, hl + 1);
    int64_t x = 0, y = 0;
    if (!ll) {
        if (ms_url_parse_i64(hi, 0, INT64_MAX, &y) < 0)
            return 0;
        if (y == 0 || size == 0)
            return -1;
        *a = (uint64_t)y >= size ? 0 : size - (uint64_t)y;
        *b = size - 1;
        return 1;
    }
    if (ms_url_parse_i64(lo, 0, INT64_MAX, &x) < 0)
        return 0;
    if (hl && ms_url_parse_i64(hi, 0, INT64_MAX, &y) < 0)
        return 0;
    if (hl && y < x)
        return 0;
    if ((uint64_t)x >= size)
        return -1;
    *a = (uint64_t)x;
    *b = hl && (uint64_t)y < size - 1 ? (uint64_t)y : size - 1;
    return 1;
}

/* MP4 export: a download named {stream}-{from}-{duration}.mp4 (from as the
 * URL gave it), or shown in the browser with ?inline=1 (docs/api.md). */
static void mp4_disposition(ms_req_t *r, struct MHD_Response *resp, const char *from_txt,
                            int64_t dur)
{
    char v[8], name[200], hdr[300];
    if (ms_api_query(r, "inline", v, sizeof v) >= 0 && strcmp(v, "1") == 0)
        return;
    snprintf(name, sizeof name, "%s-%s-%" PRId64 ".mp4", r->route.stream ? r->route.stream : "",
             from_txt, dur);
    for (char *c = name; *c; c++) /* a quoted-string token: no quote, backslash, control */
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '-' || *c == '_' || *c == '.'))
            *c = '_';
    snprintf(hdr, sizeof hdr, "attachment; filename=\"%s\"", name); /* RFC 6266 */
    MHD_add_response_header(resp, "Content-Disposition", hdr);
}

static enum MHD_Result serve_mp4(ms_req_t *r, int64_t from, int64_t dur, const char *from_txt)
{
    arch_t a;
    enum MHD_Result ret;
    if (arch_open(r, &a, MS_PLAY_ANY_TIME, &ret) < 0)
        return ret;
    /* the export is cut to the session's window: it starts at the keyframe
     * at or before the window's start and ends before its end */
    int64_t from_ms = from * 1000, end_ms = (from + dur) * 1000;
    if (arch_clip(r, &a, &from_ms, &end_ms, &ret) < 0)
        return ret;
    int64_t kf = from_ms;
    if (end_ms == a.d.win_to_ms) {
        ms_dvr_chunk_t *v = NULL;
        size_t n = 0;
        if (ms_dvr_chunks(a.cfg.uid, from_ms, from_ms + 1, &v, &n) == 0) {
            kf = kf_at(v, n, from_ms);
            ms_dvr_chunks_free(v, n);
        }
    }
    ms_dvr_export_t *x = NULL;
    int rc = ms_dvr_export_open(a.cfg.uid, from_ms, span_ms(&a, kf, from_ms, end_ms), &x);
    ms_stream_cfg_free(&a.cfg);
    if (rc == -ENOENT)
        return ms_api_reply_error(r, 404, "nothing recorded in this window", NULL, NULL);
    if (rc < 0)
        return ms_api_reply_error(r, 500, "export failed", NULL, NULL);
    uint64_t size = ms_dvr_export_size(x), lo = 0, hi = size - 1;
    const char *rh = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Range");
    int pr = rh ? parse_range(rh, size, &lo, &hi) : 0;
    char cr[96];
    if (pr < 0) {
        ms_dvr_export_free(x);
        snprintf(cr, sizeof cr, "bytes */%" PRIu64, size);
        const char *h[] = {"Content-Range", cr, NULL};
        return ms_api_reply_error(r, 416, "range not satisfiable", NULL, h);
    }
    mp4_body_t *m = malloc(sizeof *m);
    if (!m) {
        ms_dvr_export_free(x);
        return ms_api_reply_error(r, 500, "out of memory", NULL, NULL);
    }
    m->x = x;
    m->start = lo;
    uint64_t len = hi - lo + 1;
    struct MHD_Response *resp =
        MHD_create_response_from_callback(len, 1024 * 1024, mp4_reader, m, mp4_free);
    if (!resp) {
        mp4_free(m);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Accept-Ranges", "bytes");
    mp4_disposition(r, resp, from_txt, dur);
    if (pr > 0) {
        snprintf(cr, sizeof cr, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, lo, hi, size);
        MHD_add_response_header(resp, "Content-Range", cr);
    }
    return queue_resp(r, pr > 0 ? 206 : 200, resp, "video/mp4", len);
}

enum MHD_Result ms_api_archive(ms_req_t *r)
{
    const char *name = r->route.name;
    if (strncmp(name, "archive-seg-", 12) == 0 || strncmp(name, "archive-init-", 13) == 0)
        return serve_media(r, name);
    /* archive-FROM-DURATION.m3u8 | archive-FROM-now.m3u8 | archive-FROM-DURATION.mp4 */
    char buf[64];
    size_t len = strlen(name);
    if (len >= sizeof buf || len < 14)
        return ms_api_reply_error(r, 404, "not found", NULL, NULL);
    memcpy(buf, name + 8, len - 8 + 1);
    char *ext = strrchr(buf, '.');
    char *dash = strchr(buf, '-');
    if (!ext || !dash || dash > ext)
        return ms_api_reply_error(r, 404, "not found", NULL, NULL);
    int m3u8 = strcmp(ext, ".m3u8") == 0, mp4 = strcmp(ext, ".mp4") == 0;
    *ext = '\0';
    *dash = '\0';
    int64_t from = 0, dur = 0;
    int now = strcmp(dash + 1, "now") == 0;
    if (!m3u8 && !mp4)
        return ms_api_reply_error(r, 404, "not found", NULL, NULL);
    if (ms_utc_parse_s(buf, &from) < 0 || from < 1 || from > MS_ARCHIVE_FROM_MAX)
        return ms_api_reply_error(r, 400, "from: UTC seconds or YYYYMMDDThhmmssZ expected", "from",
                                  NULL);
    if (!now && ms_url_parse_i64(dash + 1, 1, 86400, &dur) < 0)
        return ms_api_reply_error(r, 400, "duration: 1..86400 seconds", "duration", NULL);
    if (now && mp4)
        return ms_api_reply_error(r, 400, "MP4 export needs a duration", "duration", NULL);
    if (m3u8)
        return serve_playlist(r, from, dur, now);
    return serve_mp4(r, from, dur, buf);
}

/* ---- JPEG at a time ----------------------------------------------------- */

int ms_api_archive_wants_jpeg(ms_req_t *r)
{
    char v[32];
    return ms_api_query(r, "at", v, sizeof(v)) != -ENOENT;
}

enum MHD_Result ms_api_archive_jpeg(ms_req_t *r)
{
    char v[32];
    int64_t at = 0;
    if (ms_api_query(r, "at", v, sizeof v) < 0 || ms_utc_parse_s(v, &at) < 0 || at < 1 ||
        at > MS_ARCHIVE_FROM_MAX)
        return ms_api_reply_error(r, 400, "at: UTC seconds or YYYYMMDDThhmmssZ expected", "at",
                                  NULL);
    arch_t a;
    enum MHD_Result ret;
    /* the frame shown is the keyframe at or before at: at most one GOP
     * before a window's start, as for every archive protocol */
    if (arch_open(r, &a, at * 1000, &ret) < 0)
        return ret;
    ms_codec_params_t p;
    ms_blob_t *kf = NULL;
    int64_t t_ms = 0;
    int rc = ms_dvr_keyframe_at(a.cfg.uid, at * 1000 + 999, &p, &kf, &t_ms);
    ms_stream_cfg_free(&a.cfg);
    if (rc == -ENOENT)
        return ms_api_reply_error(r, 404, "no recorded keyframe at or before this time", "at",
                                  NULL);
    if (rc < 0)
        return ms_api_reply_error(r, 500, "archive read failed", NULL, NULL);
    /* Decoding blocks this MHD thread for tens of ms, never a media loop. */
    ms_blob_t *full = NULL, *prev = NULL;
    int preview = strcmp(r->route.name, "preview.jpg") == 0;
    rc = ms_snapshot_encode(&p, kf->data, kf->len, 320, 5, &full, &prev);
    ms_blob_unref(kf);
    if (rc < 0)
        return ms_api_reply_error(r, 500, "decode failed", NULL, NULL);
    char ts[32];
    snprintf(ts, sizeof ts, "%" PRId64 ".%03d", t_ms / 1000, (int)(t_ms % 1000));
    const char *h[] = {"X-Frame-Time", ts, "Access-Control-Allow-Origin", "*", NULL};
    ms_blob_t *out = preview ? prev : full;
    ms_blob_unref(preview ? full : prev);
    return ms_api_reply_blob(r, 200, "image/jpeg", out, h);
}
