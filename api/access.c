/* Playback access control and share links (api/access.h). */
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api/access.h"
#include "node/hooks.h"
#include "node/lua.h"
#include "util/urlquery.h"

typedef struct {
    char *const *cidrs;
    size_t n;
} trusted_t;

static int is_trusted(const ms_ip_t *ip, void *ud)
{
    const trusted_t *t = ud;
    return ms_cidr_list_match(t->cidrs, t->n, ip);
}

int ms_access_client_addr(const struct sockaddr *peer, const char *xff, const char *forwarded,
                          char *const *trusted, size_t n, ms_ip_t *out)
{
    ms_ip_t p;
    int rc = ms_ip_from_sockaddr(peer, &p);
    if (rc < 0)
        return rc;
    trusted_t t = {trusted, n};
    return ms_ip_forwarded_client(&p, xff, forwarded, n ? is_trusted : NULL, &t, out);
}

static int decided(ms_play_decision_t *d, ms_play_verdict_t v, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int decided(ms_play_decision_t *d, ms_play_verdict_t v, const char *fmt, ...)
{
    d->verdict = v;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->reason, sizeof d->reason, fmt, ap);
    va_end(ap);
    return v == MS_PLAY_ALLOW ? 0 : v == MS_PLAY_HIDDEN ? -ENOENT : -EACCES;
}

/* The built-in rules (access mode, token); ctext gets the client address. */
static int builtin_decide(const ms_play_req_t *q, int64_t now, ms_play_decision_t *d, char *ctext)
{
    assert(q && q->stream && q->node && d);
    memset(d, 0, sizeof *d);
    d->win_from_ms = INT64_MIN;
    d->win_to_ms = INT64_MAX;
    const ms_stream_cfg_t *s = q->stream;
    const ms_node_cfg_t *node = q->node;
    ms_ip_t client;
    int have_ip = ms_access_client_addr(q->peer, q->xff, q->forwarded, node->trusted_proxies,
                                        node->ntrusted_proxies, &client) == 0;
    if (have_ip)
        ms_ip_format(&client, ctext, MS_IP_STRLEN);
    if (s->access_mode == MS_ACCESS_PUBLIC)
        return decided(d, MS_PLAY_ALLOW, "public stream");
    if (!have_ip)
        return decided(d, MS_PLAY_HIDDEN, "%s", "unknown client address family");

    const char *token = q->token;
    int have_token = token && *token;
    if (s->access_mode == MS_ACCESS_PROTECTED) {
        if (ms_cidr_list_match(s->whitelist, s->nwhitelist, &client))
            return decided(d, MS_PLAY_ALLOW, "%s in whitelist", ctext);
        if (!have_token)
            return decided(d, MS_PLAY_HIDDEN, "client %s not in the whitelist", ctext);
    } else if (!have_token) {
        return decided(d, MS_PLAY_HIDDEN, "%s", "private stream: token required");
    }

    int archive = q->mode == MS_ACCESS_ARCHIVE;
    int64_t wf = 0, wt = 0;
    int64_t at = 0;
    if (archive) {
        /* an archive session with no time yet is verified at the start of
         * the token's own window (read unverified; the MAC check follows) */
        if (q->at_ms == MS_PLAY_ANY_TIME)
            at = ms_token_window(token, &wf, &wt) == 0 ? wf : 0;
        else
            at = q->at_ms >= 0 ? q->at_ms / 1000 : -((-q->at_ms + 999) / 1000);
    }
    char why[96];
    int rc =
        ms_token_verify(token, node->secret, s->uid, archive ? MS_TOKEN_ARCHIVE : MS_TOKEN_LIVE,
                        now, ctext, at, why, sizeof why);
    /* not a genuine token of this stream: tell nothing (as unknown) */
    if (rc == MS_TOKEN_ETAMPERED || rc == MS_TOKEN_ESTREAM)
        return decided(d, MS_PLAY_HIDDEN, "%s", why);
    if (rc < 0)
        return decided(d, MS_PLAY_DENIED, "%s", why);
    int64_t exp = 0;
    if (ms_token_expires(token, &exp) == 0 && exp == 0 && !node->external_access)
        return decided(d, MS_PLAY_DENIED, "%s",
                       "public links are disabled (external_access is off)");
    d->by_token = 1;
    d->expires = exp;
    if (archive && ms_token_window(token, &wf, &wt) == 0) {
        d->win_from_ms = wf * 1000;
        d->win_to_ms = wt * 1000;
    }
    return decided(d, MS_PLAY_ALLOW, "%s", "valid token");
}

/* The HTTP on_play hook (node/hooks.h), run by the session cache on a miss. */
static int play_hook(void *ud, const ms_lua_req_t *r, char *why, size_t cap)
{
    const ms_node_cfg_t *n = ud;
    ms_hook_req_t h = {.action = "play",
                       .stream = r->stream,
                       .app = "",
                       .ip = r->ip,
                       .protocol = r->protocol,
                       .query = r->query,
                       .token = r->token};
    return ms_hook_call(n->hook_on_play, &h, n->hook_timeout_ms, NULL, why, cap);
}

int ms_playback_decide(const ms_play_req_t *q, int64_t now, ms_play_decision_t *d)
{
    char ctext[MS_IP_STRLEN] = "";
    int rc = builtin_decide(q, now, d, ctext);
    if (rc != 0)
        return rc;
    /* the deployment's policy (docs/lua.md on_play) may only narrow it */
    ms_lua_req_t lq = {
        .action = "play",
        .stream = q->stream->name,
        .app = "",
        .protocol = q->protocol,
        .ip = ctext,
        .query = q->query,
        .token = q->token,
        .user_agent = q->user_agent,
        .mode = q->mode == MS_ACCESS_ARCHIVE ? "archive" : "live",
    };
    char why[128];
    /* then the HTTP on_play hook and the Lua on_play scripts, once per
     * session (the session cache) */
    int hooked = q->node && q->node->hook_on_play[0];
    if (ms_lua_on_play_pre(&lq, d->expires, hooked ? play_hook : NULL, (void *)(uintptr_t)q->node,
                           why, sizeof why) < 0)
        return decided(d, MS_PLAY_DENIED, "%s", why[0] ? why : "refused by on_play");
    return 0;
}

int ms_play_clip(const ms_play_decision_t *d, int64_t *from_ms, int64_t *to_ms)
{
    int64_t f = *from_ms > d->win_from_ms ? *from_ms : d->win_from_ms;
    int64_t t = *to_ms < d->win_to_ms ? *to_ms : d->win_to_ms;
    if (f >= t)
        return 0;
    *from_ms = f;
    *to_ms = t;
    return 1;
}

int ms_play_time_ok(const ms_play_decision_t *d, int64_t t_ms)
{
    return t_ms >= d->win_from_ms && t_ms < d->win_to_ms;
}

int ms_access_check_at(const ms_stream_cfg_t *s, const ms_node_cfg_t *node,
                       const struct sockaddr *peer, const char *xff, const char *forwarded,
                       const char *token, int mode, int64_t at, int64_t now, char *reason,
                       size_t reason_cap)
{
    ms_play_req_t q = {s, node, peer, xff, forwarded, token, mode, at * 1000};
    ms_play_decision_t d;
    int rc = ms_playback_decide(&q, now, &d);
    if (reason && reason_cap)
        snprintf(reason, reason_cap, "%s", d.reason);
    if (rc == 0)
        return 0;
    /* no credentials at all on a private stream: 401 */
    if (rc == -ENOENT && s->access_mode == MS_ACCESS_PRIVATE && !(token && *token))
        return -EPERM;
    return -EACCES;
}

int ms_access_check(const ms_stream_cfg_t *s, const ms_node_cfg_t *node,
                    const struct sockaddr *peer, const char *xff, const char *forwarded,
                    const char *token, int mode, int64_t at, char *reason, size_t reason_cap)
{
    return ms_access_check_at(s, node, peer, xff, forwarded, token, mode, at, (int64_t)time(NULL),
                              reason, reason_cap);
}

static int bad(int code, const char **field, const char *f, char *err, size_t cap, const char *msg)
{
    if (field)
        *field = f;
    if (err && cap)
        snprintf(err, cap, "%s", msg);
    return code;
}

int ms_share_build(const ms_share_req_t *req, const ms_stream_cfg_t *s, const ms_node_cfg_t *node,
                   int64_t now, char *url, size_t url_cap, int64_t *expires, const char **field,
                   char *err, size_t err_cap)
{
    if (field)
        *field = NULL;
    if (req->mode != MS_ACCESS_LIVE && req->mode != MS_ACCESS_ARCHIVE)
        return bad(-EINVAL, field, "mode", err, err_cap, "mode must be live or archive");
    if (req->protocol != MS_SHARE_HLS && req->protocol != MS_SHARE_RTSP)
        return bad(-EINVAL, field, "protocol", err, err_cap, "protocol must be rtsp or hls");
    int64_t from = 0, to = 0;
    if (req->mode == MS_ACCESS_ARCHIVE) {
        if (req->from <= 0)
            return bad(-EINVAL, field, "from", err, err_cap, "archive links need from");
        if (req->from > MS_ARCHIVE_FROM_MAX)
            return bad(-EINVAL, field, "from", err, err_cap,
                       "from is not a time the archive routes accept");
        if (strcmp(s->quality, "high") != 0)
            return bad(-EPERM, field, "mode", err, err_cap,
                       "archive links exist only for high-quality streams");
        from = req->from;
        to = from + MS_SHARE_WINDOW_S;
    }
    int64_t exp = 0;
    if (req->is_public) {
        if (!node->external_access)
            return bad(-EPERM, field, "public", err, err_cap,
                       "public links need external_access on the node");
        if (req->ttl_s != 0)
            return bad(-EINVAL, field, "ttl_s", err, err_cap, "a public link has no ttl");
    } else {
        int64_t ttl = req->ttl_s ? req->ttl_s : 86400;
        if (ttl < 1 || ttl > MS_SHARE_MAX_TTL)
            return bad(-EINVAL, field, "ttl_s", err, err_cap,
                       "ttl_s must be between 1 s and 30 days");
        exp = now + ttl;
    }
    int port = req->protocol == MS_SHARE_HLS ? node->port_http : node->port_rtsp;
    if (port <= 0)
        return bad(-EPERM, field, "protocol", err, err_cap,
                   "that protocol's listener is disabled on this node");
    if (!s->uid[0] || !s->name[0])
        return bad(-EINVAL, field, "uid", err, err_cap, "stream has no uid or name");

    char tok[MS_TOKEN_MAX];
    int n = ms_token_make(node->secret, s->uid,
                          req->mode == MS_ACCESS_ARCHIVE ? MS_TOKEN_ARCHIVE : MS_TOKEN_LIVE, exp,
                          from, to, NULL, tok, sizeof tok);
    if (n < 0)
        return bad(-EINVAL, field, NULL, err, err_cap, "cannot make a token (no secret?)");
    /* An IPv6 literal host needs brackets (RFC 3986 section 3.2.2). */
    const char *host = node->advertise;
    int v6 = strchr(host, ':') != NULL;
    char name[3 * MS_NAME_MAX + 1];
    if (ms_url_encode(s->name, name, sizeof name) < 0)
        return bad(-EINVAL, field, "name", err, err_cap, "stream name too long");
    if (req->protocol == MS_SHARE_HLS) {
        if (req->mode == MS_ACCESS_LIVE)
            n = snprintf(url, url_cap, "http://%s%s%s:%d/%s/index.m3u8?token=%s", v6 ? "[" : "",
                         host, v6 ? "]" : "", port, name, tok);
        else
            n = snprintf(url, url_cap, "http://%s%s%s:%d/%s/archive-%lld-%d.m3u8?token=%s",
                         v6 ? "[" : "", host, v6 ? "]" : "", port, name, (long long)from,
                         MS_SHARE_WINDOW_S, tok);
    } else {
        if (req->mode == MS_ACCESS_LIVE)
            n = snprintf(url, url_cap, "rtsp://%s%s%s:%d/%s?token=%s", v6 ? "[" : "", host,
                         v6 ? "]" : "", port, name, tok);
        else
            n = snprintf(url, url_cap, "rtsp://%s%s%s:%d/%s?from=%lld&token=%s", v6 ? "[" : "",
                         host, v6 ? "]" : "", port, name, (long long)from, tok);
    }
    if (n < 0 || (size_t)n >= url_cap)
        return bad(-ENOSPC, field, NULL, err, err_cap, "url buffer too small");
    if (expires)
        *expires = exp;
    if (err && err_cap)
        err[0] = '\0';
    return 0;
}
