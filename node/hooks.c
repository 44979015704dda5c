/* HTTP authorization hooks (node/hooks.h). */
#include "node/hooks.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "node/cluster_http.h"

int ms_hook_url_split(const char *url, char *base, size_t bcap, char *target, size_t tcap)
{
    if (!url || strncmp(url, "http://", 7) != 0)
        return -EINVAL;
    for (const char *c = url; *c; c++)
        if ((unsigned char)*c <= ' ' || *c == 0x7f)
            return -EINVAL;
    const char *h = url + 7;
    const char *end = h + strcspn(h, "/?#");
    if (*end == '#')
        return -EINVAL;
    const char *hend = end, *port = NULL;
    if (*h == '[') {
        const char *rb = memchr(h, ']', (size_t)(end - h));
        if (!rb || rb == h + 1)
            return -EINVAL;
        if (rb + 1 < end) {
            if (rb[1] != ':')
                return -EINVAL;
            port = rb + 2;
        }
        hend = rb + 1;
    } else {
        const char *colon = memchr(h, ':', (size_t)(end - h));
        if (colon) {
            port = colon + 1;
            hend = colon;
        }
    }
    if (hend == h)
        return -EINVAL;
    long pn = 80;
    if (port) {
        if (port == end || end - port > 5)
            return -EINVAL;
        pn = 0;
        for (const char *c = port; c < end; c++) {
            if (*c < '0' || *c > '9')
                return -EINVAL;
            pn = pn * 10 + (*c - '0');
        }
        if (pn < 1 || pn > 65535)
            return -EINVAL;
    }
    int n = snprintf(base, bcap, "http://%.*s:%ld", (int)(hend - h), h, pn);
    if (n < 0 || (size_t)n >= bcap)
        return -ENOSPC;
    const char *t = end;
    if (strchr(t, '#'))
        return -EINVAL;
    n = snprintf(target, tcap, "%s%s", *t == '/' ? "" : "/", t);
    if (n < 0 || (size_t)n >= tcap)
        return -ENOSPC;
    return 0;
}

int ms_hook_parse_answer(const char *body, ms_hook_answer_t *out)
{
    out->dvr = -1;
    size_t n = body ? strlen(body) : 0;
    while (n && (body[n - 1] == ' ' || body[n - 1] == '\n' || body[n - 1] == '\r' ||
                 body[n - 1] == '\t'))
        n--;
    size_t s = 0;
    while (s < n && (body[s] == ' ' || body[s] == '\n' || body[s] == '\r' || body[s] == '\t'))
        s++;
    if (s == n)
        return 0;
    json_t *j = json_loadb(body + s, n - s, 0, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        return -EINVAL;
    }
    int rc = 0;
    json_t *d = json_object_get(j, "dvr");
    if (d) {
        if (json_is_boolean(d))
            out->dvr = json_is_true(d);
        else
            rc = -EINVAL;
    }
    json_decref(j);
    return rc;
}

int ms_hook_call(const char *url, const ms_hook_req_t *q, int timeout_ms, ms_hook_answer_t *ans,
                 char *why, size_t cap)
{
    ms_hook_answer_t tmp;
    if (!ans)
        ans = &tmp;
    ans->dvr = -1;
    if (timeout_ms <= 0)
        timeout_ms = MS_HOOK_TIMEOUT_MS_DEFAULT;
    char base[MS_HOOK_URL_MAX], target[MS_HOOK_URL_MAX];
    if (ms_hook_url_split(url, base, sizeof base, target, sizeof target) < 0) {
        snprintf(why, cap, "bad hook URL");
        return -EACCES;
    }
    json_t *j =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "action", q->action ? q->action : "",
                  "stream", q->stream ? q->stream : "", "app", q->app ? q->app : "", "ip",
                  q->ip ? q->ip : "", "protocol", q->protocol ? q->protocol : "", "query",
                  q->query ? q->query : "", "token", q->token ? q->token : "");
    char *body = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!body) {
        snprintf(why, cap, "out of memory");
        return -EACCES;
    }
    int status = 0;
    char *resp = NULL;
    /* unsigned; node id 1 only fills X-MS-Node-Id, which hooks ignore */
    int r = ms_chttp_request(base, "POST", target, body, strlen(body), NULL, 1, timeout_ms, &status,
                             &resp);
    free(body);
    if (r < 0) {
        if (r == -ETIMEDOUT)
            snprintf(why, cap, "hook gave no answer within %d ms", timeout_ms);
        else
            snprintf(why, cap, "hook unreachable (%s)", strerror(-r));
        free(resp);
        return -EACCES;
    }
    if (status < 200 || status > 299) {
        snprintf(why, cap, "hook answered %d", status);
        free(resp);
        return -EACCES;
    }
    r = ms_hook_parse_answer(resp, ans);
    free(resp);
    if (r < 0) {
        snprintf(why, cap, "hook answered %d with a body that is not valid overrides", status);
        return -EACCES;
    }
    return 0;
}
