/* Live HLS playback (RFC 8216; LL-HLS blocking reload and preload hints of
 * draft-pantos-hls-rfc8216bis section 6.2.5.2):
 *   GET /{stream}/index.m3u8[?_HLS_msn=N[&_HLS_part=M]][&token=T]
 *   GET /{stream}/seg*.ts|m4s, part*.ts|m4s, init*.mp4
 * Blocking requests suspend the MHD connection until the HLS muxer has the
 * asked part (ms_hls_wait), then the handler runs again and retries. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "api/api.h"

/* Looks up the stream, checks playback access (api/access.h; tok is the
 * request's ?token=) and takes its HLS output. Replies (404/401/403/503) and
 * returns NULL on failure; otherwise *sp and the returned output are
 * references. */
static ms_hls_t *open_hls(ms_req_t *r, const char *tok, ms_stream_t **sp, enum MHD_Result *ret)
{
    ms_stream_t *s = ms_streams_find(r->route.stream);
    if (!s) {
        *ret = ms_api_reply_error(r, 404, "unknown stream", NULL, NULL);
        return NULL;
    }
    if (ms_api_playback_access(r, s, tok, ret) < 0 || ms_api_playback_gate(r, s, 1, ret) < 0) {
        ms_stream_unref(s);
        return NULL;
    }
    ms_hls_t *h = ms_stream_hls(s);
    if (!h) {
        *ret = ms_api_reply_unavailable(r, s);
        ms_stream_unref(s);
        return NULL;
    }
    *sp = s;
    return h;
}

/* RFC 8216 section 3: MPEG-TS video/mp2t; fMP4 init mp4, media
 * segments video/iso.segment. Used when the muxer gives no type. */
static const char *type_of(const char *name)
{
    size_t n = strlen(name);
    if (n > 3 && strcmp(name + n - 3, ".ts") == 0)
        return "video/mp2t";
    if (n > 4 && strcmp(name + n - 4, ".m4s") == 0)
        return "video/iso.segment";
    return "video/mp4";
}

/* ll: the request is a blocking reload (_HLS_msn): an LL-HLS client. */
static void account(ms_stream_t *s, ms_req_t *r, size_t bytes, int ll)
{
    ms_hub_t *hub = ms_stream_hub(s);
    if (hub)
        ms_hub_bytes_out_add(hub, bytes);
    ms_api_client_seen(r, s, ll ? "llhls" : "hls", bytes);
}

/* token=... of the request, for the suffix of every URI in the playlist
 * (docs/access.md "Tokens": HLS playlists carry ?token= into every
 * segment/part URI). */
static int token_of(ms_req_t *r, char *tok, size_t cap)
{
    int n = ms_api_query(r, "token", tok, cap);
    if (n < 0)
        tok[0] = '\0';
    return n;
}

enum MHD_Result ms_api_hls_playlist(ms_req_t *r)
{
    char v[32], tok[512], suffix[1600];
    int64_t msn = -1, part = -1;
    int n;
    if ((n = ms_api_query(r, "_HLS_msn", v, sizeof(v))) != -ENOENT) {
        if (n < 0 || ms_url_parse_i64(v, 0, INT64_MAX / 2, &msn) < 0)
            return ms_api_reply_error(r, 400, "bad _HLS_msn", "_HLS_msn", NULL);
    }
    if ((n = ms_api_query(r, "_HLS_part", v, sizeof(v))) != -ENOENT) {
        if (n < 0 || ms_url_parse_i64(v, 0, 1000000, &part) < 0)
            return ms_api_reply_error(r, 400, "bad _HLS_part", "_HLS_part", NULL);
        /* RFC 8216bis 6.2.5.2: _HLS_part without _HLS_msn is an error. */
        if (msn < 0)
            return ms_api_reply_error(r, 400, "_HLS_part requires _HLS_msn", "_HLS_part", NULL);
    }
    if (token_of(r, tok, sizeof(tok)) == -ENOSPC)
        return ms_api_reply_error(r, 400, "token too long", "token", NULL);
    suffix[0] = '\0';
    if (tok[0]) {
        memcpy(suffix, "token=", 7);
        if (ms_url_encode(tok, suffix + 6, sizeof(suffix) - 6) < 0)
            return ms_api_reply_error(r, 400, "token too long", "token", NULL);
    }

    enum MHD_Result ret = MHD_NO;
    ms_stream_t *s = NULL;
    ms_hls_t *h = open_hls(r, tok, &s, &ret);
    if (!h)
        return ret;
    ms_hls_playlist_req_t req = {msn, (int)part, suffix};
    ms_blob_t *b = NULL;
    int rc = ms_hls_playlist(h, &req, &b);
    if (rc == -ENOENT && r->waits == 0) {
        /* No segment yet (a stream just started, e.g. on the server a
         * failover or transfer moved it to, where players land through the
         * 302 of api/redirect.c): hold the request until the first segment,
         * at most 3 target durations, as a blocking reload would (RFC 8216bis
         * 6.2.5.2). A 503 would end many players (ffmpeg reads a failed
         * reload as the end of the stream). */
        rc = ms_api_suspend(r, h, -1, -1);
        if (rc == 0) {
            ret = MHD_YES; /* answered after resume */
            goto out;
        }
        rc = -ENOENT;
    }
    if (rc == -EAGAIN) {
        rc = ms_api_suspend(r, h, msn, (int)part);
        if (rc == 0) {
            ret = MHD_YES; /* answered after resume */
            goto out;
        }
    }
    static const char *const hdrs[] = {"Cache-Control", "no-cache", NULL};
    switch (rc) {
    case 0: {
        size_t len = b->len;
        ret = ms_api_reply_blob(r, 200, "application/vnd.apple.mpegurl", b, hdrs);
        account(s, r, len, msn >= 0);
        break;
    }
    case -ENOENT:
        ret = ms_api_reply_unavailable(r, s);
        break;
    case -ERANGE:
        ret = ms_api_reply_error(r, 400, "_HLS_msn/_HLS_part too far ahead", "_HLS_msn", NULL);
        break;
    case -ENOMEM:
        ret = ms_api_reply_error(r, 500, "out of memory", NULL, NULL);
        break;
    default: /* -ESHUTDOWN, -ELOOP */
        ret = ms_api_reply_unavailable(r, s);
        break;
    }
out:
    ms_hls_unref(h);
    ms_stream_unref(s);
    return ret;
}

enum MHD_Result ms_api_hls_media(ms_req_t *r)
{
    char tok[512];
    if (token_of(r, tok, sizeof(tok)) == -ENOSPC)
        return ms_api_reply_error(r, 400, "token too long", "token", NULL);
    enum MHD_Result ret = MHD_NO;
    ms_stream_t *s = NULL;
    ms_hls_t *h = open_hls(r, tok, &s, &ret);
    if (!h)
        return ret;
    ms_hls_body_t b;
    const char *ctype = NULL;
    int64_t wmsn = -1;
    int wpart = -1;
    int rc = ms_hls_segment_body(h, r->route.name, &b, &ctype, &wmsn, &wpart);
    if (rc == -EAGAIN) {
        /* A preload-hinted part (RFC 8216bis 4.4.5.3): block until it exists. */
        rc = ms_api_suspend(r, h, wmsn, wpart);
        if (rc == 0) {
            ret = MHD_YES;
            goto out;
        }
    }
    if (rc == 0) {
        /* Media files never change once produced: cacheable. */
        static const char *const hdrs[] = {"Cache-Control", "max-age=60", NULL};
        size_t len = b.len;
        ret = ms_api_reply_body(r, 200, ctype ? ctype : type_of(r->route.name), &b, hdrs);
        account(s, r, len, 0);
    } else if (rc == -ENOENT) {
        ret = ms_api_reply_error(r, 404, "no such segment", NULL, NULL);
    } else if (rc == -ENOMEM) {
        ret = ms_api_reply_error(r, 500, "out of memory", NULL, NULL);
    } else {
        ret = ms_api_reply_unavailable(r, s);
    }
out:
    ms_hls_unref(h);
    ms_stream_unref(s);
    return ret;
}
