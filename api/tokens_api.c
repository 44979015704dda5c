/* Playback tokens and share links of one stream (docs/api.md "REST API", docs/access.md "Tokens"):
 *   POST /api/v1/streams/{id}/tokens
 *        {"ttl_s":3600,"mode":"live|archive","from":t,"duration_s":s,"ip":"…"}
 *        -> {"token":"…","expires":t}
 *   POST /api/v1/streams/{id}/share
 *        {"mode":"live|archive","from":t,"public":false,"ttl_s":…,"protocol":"rtsp|hls"}
 *        -> {"url":"…","expires":t|null}
 * Tokens are util/token.h (HMAC-SHA256, RFC 2104) under the node's secret;
 * share links are api/access.h ms_share_build. Admin authentication is
 * checked by the router. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "api/access.h"
#include "api/api.h"
#include "util/clock.h"

#define TOKEN_MAX_TTL_S (365LL * 86400) /* API tokens: 1 s .. one year */

/* Parses the request body as a JSON object (an absent body is {}).
 * Replies 400 and returns NULL on failure. */
static json_t *body_object(ms_req_t *r, enum MHD_Result *ret)
{
    if (!r->body || r->body_len == 0)
        return json_object();
    json_error_t e;
    json_t *j = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &e);
    if (!j) {
        char msg[256];
        snprintf(msg, sizeof(msg), "malformed JSON body: %s (line %d, column %d)", e.text, e.line,
                 e.column);
        *ret = ms_api_reply_error(r, 400, msg, NULL, NULL);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        *ret = ms_api_reply_error(r, 400, "the body must be a JSON object", NULL, NULL);
        return NULL;
    }
    return j;
}

/* The issue time of a token: the current second rounded up, so that a token
 * verified against the truncated clock (util/token.c: refused once
 * now >= expires) lives at least ttl_s, never a fraction of it. */
static int64_t issue_time(void)
{
    return (ms_wall_us() + 999999) / 1000000;
}

/* 0 when every key of j is in the NULL-terminated list; else replies 400
 * naming the first unknown key and returns -EINVAL. */
static int known_keys(ms_req_t *r, json_t *j, const char *const *keys, enum MHD_Result *ret)
{
    const char *k;
    json_t *v;
    json_object_foreach(j, k, v)
    {
        (void)v;
        int ok = 0;
        for (size_t i = 0; keys[i]; i++)
            if (strcmp(k, keys[i]) == 0)
                ok = 1;
        if (!ok) {
            *ret = ms_api_reply_error(r, 400, "unknown key", k, NULL);
            return -EINVAL;
        }
    }
    return 0;
}

/* Optional integer key in [min, max]; *out keeps its default when absent. */
static int get_int(ms_req_t *r, json_t *j, const char *key, int64_t min, int64_t max, int64_t *out,
                   enum MHD_Result *ret)
{
    json_t *v = json_object_get(j, key);
    if (!v || json_is_null(v))
        return 0;
    char msg[128];
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        snprintf(msg, sizeof(msg), "%s must be an integer between %lld and %lld", key,
                 (long long)min, (long long)max);
        *ret = ms_api_reply_error(r, 400, msg, key, NULL);
        return -EINVAL;
    }
    *out = json_integer_value(v);
    return 0;
}

/* Optional "mode": "live" (default) | "archive". */
static int get_mode(ms_req_t *r, json_t *j, int *mode, enum MHD_Result *ret)
{
    json_t *v = json_object_get(j, "mode");
    *mode = MS_ACCESS_LIVE;
    if (!v)
        return 0;
    const char *m = json_string_value(v);
    if (m && strcmp(m, "live") == 0)
        return 0;
    if (m && strcmp(m, "archive") == 0) {
        *mode = MS_ACCESS_ARCHIVE;
        return 0;
    }
    *ret = ms_api_reply_error(r, 400, "mode must be \"live\" or \"archive\"", "mode", NULL);
    return -EINVAL;
}

/* The stream of the route and its config (freed by the caller), or NULL
 * after a 404 reply. */
static ms_stream_t *find_stream(ms_req_t *r, ms_stream_cfg_t *cfg, enum MHD_Result *ret)
{
    ms_stream_t *s = ms_streams_find(r->route.stream);
    memset(cfg, 0, sizeof(*cfg));
    if (!s) {
        *ret = ms_api_reply_error(r, 404, "unknown stream", NULL, NULL);
        return NULL;
    }
    if (ms_stream_get_cfg(s, cfg) < 0) {
        ms_stream_unref(s);
        *ret = ms_api_reply_error(r, 500, "out of memory", NULL, NULL);
        return NULL;
    }
    return s;
}

enum MHD_Result ms_api_stream_tokens(ms_req_t *r)
{
    static const char *const keys[] = {"ttl_s", "mode", "from", "duration_s", "ip", NULL};
    enum MHD_Result ret = MHD_NO;
    ms_stream_cfg_t cfg;
    ms_stream_t *s = find_stream(r, &cfg, &ret);
    if (!s)
        return ret;
    json_t *j = body_object(r, &ret);
    if (!j)
        goto out;
    int64_t ttl = 3600, from = 0, dur = MS_SHARE_WINDOW_S;
    int mode = MS_ACCESS_LIVE;
    if (known_keys(r, j, keys, &ret) < 0 || get_mode(r, j, &mode, &ret) < 0 ||
        get_int(r, j, "ttl_s", 1, TOKEN_MAX_TTL_S, &ttl, &ret) < 0 ||
        get_int(r, j, "from", 1, MS_ARCHIVE_FROM_MAX, &from, &ret) < 0 ||
        get_int(r, j, "duration_s", 1, 366LL * 86400, &dur, &ret) < 0)
        goto out;
    if (mode == MS_ACCESS_ARCHIVE && from == 0) {
        ret = ms_api_reply_error(r, 400, "an archive token needs from", "from", NULL);
        goto out;
    }
    if (mode == MS_ACCESS_LIVE && json_object_get(j, "from")) {
        ret = ms_api_reply_error(r, 400, "from is for archive tokens", "from", NULL);
        goto out;
    }
    const char *ip = NULL;
    json_t *jip = json_object_get(j, "ip");
    if (jip && !json_is_null(jip)) {
        ms_ip_t tmp;
        ip = json_string_value(jip);
        if (!ip || ms_ip_parse(ip, &tmp) < 0) {
            ret =
                ms_api_reply_error(r, 400, "ip must be a literal IPv4 or IPv6 address", "ip", NULL);
            goto out;
        }
    }
    int64_t expires = issue_time() + ttl;
    char tok[MS_TOKEN_MAX];
    int n = ms_token_make(ms_api_cfg()->secret, cfg.uid,
                          mode == MS_ACCESS_ARCHIVE ? MS_TOKEN_ARCHIVE : MS_TOKEN_LIVE, expires,
                          mode == MS_ACCESS_ARCHIVE ? from : 0,
                          mode == MS_ACCESS_ARCHIVE ? from + dur : 0, ip, tok, sizeof(tok));
    if (n < 0) {
        ret = ms_api_reply_error(r, 500, "cannot make a token", NULL, NULL);
        goto out;
    }
    ret = ms_api_reply_json(
        r, 200, json_pack("{s:s,s:I}", "token", tok, "expires", (json_int_t)expires), NULL);
out:
    json_decref(j);
    ms_stream_cfg_free(&cfg);
    ms_stream_unref(s);
    return ret;
}

enum MHD_Result ms_api_stream_share(ms_req_t *r)
{
    static const char *const keys[] = {"mode", "from", "public", "ttl_s", "protocol", NULL};
    enum MHD_Result ret = MHD_NO;
    ms_stream_cfg_t cfg;
    ms_stream_t *s = find_stream(r, &cfg, &ret);
    if (!s)
        return ret;
    json_t *j = body_object(r, &ret);
    if (!j)
        goto out;
    ms_share_req_t req;
    memset(&req, 0, sizeof(req));
    req.protocol = MS_SHARE_HLS;
    /* ttl_s is range-checked by ms_share_build (1 s .. 30 days). */
    if (known_keys(r, j, keys, &ret) < 0 || get_mode(r, j, &req.mode, &ret) < 0 ||
        get_int(r, j, "from", 1, MS_ARCHIVE_FROM_MAX, &req.from, &ret) < 0 ||
        get_int(r, j, "ttl_s", INT64_MIN / 4, INT64_MAX / 4, &req.ttl_s, &ret) < 0)
        goto out;
    json_t *pub = json_object_get(j, "public");
    if (pub && !json_is_null(pub)) {
        if (!json_is_boolean(pub)) {
            ret = ms_api_reply_error(r, 400, "public must be true or false", "public", NULL);
            goto out;
        }
        req.is_public = json_is_true(pub);
    }
    json_t *jp = json_object_get(j, "protocol");
    if (jp) {
        const char *p = json_string_value(jp);
        if (p && strcmp(p, "hls") == 0)
            req.protocol = MS_SHARE_HLS;
        else if (p && strcmp(p, "rtsp") == 0)
            req.protocol = MS_SHARE_RTSP;
        else {
            ret = ms_api_reply_error(r, 400, "protocol must be \"rtsp\" or \"hls\"", "protocol",
                                     NULL);
            goto out;
        }
    }
    if (json_object_get(j, "ttl_s") && req.ttl_s == 0 && !req.is_public) {
        ret = ms_api_reply_error(r, 400, "ttl_s must be between 1 s and 30 days", "ttl_s", NULL);
        goto out;
    }
    char url[1024], err[160];
    int64_t expires = 0;
    const char *field = NULL;
    int rc = ms_share_build(&req, &cfg, ms_api_cfg(), issue_time(), url, sizeof(url), &expires,
                            &field, err, sizeof(err));
    if (rc == 0) {
        json_t *o = json_pack("{s:s}", "url", url);
        if (o)
            json_object_set_new(o, "expires",
                                expires ? json_integer((json_int_t)expires) : json_null());
        ret = ms_api_reply_json(r, 200, o, NULL);
    } else if (rc == -EINVAL) {
        ret = ms_api_reply_error(r, 400, err, field, NULL);
    } else if (rc == -EPERM && field && strcmp(field, "mode") == 0) {
        /* An archive link for a low-quality stream: the request does not
         * fit this stream (bad input), not a node setting. */
        ret = ms_api_reply_error(r, 400, err, field, NULL);
    } else if (rc == -EPERM) {
        ret = ms_api_reply_error(r, 409, err, field, NULL);
    } else {
        ret = ms_api_reply_error(r, 500, err[0] ? err : "cannot build the link", NULL, NULL);
    }
out:
    json_decref(j);
    ms_stream_cfg_free(&cfg);
    ms_stream_unref(s);
    return ret;
}
