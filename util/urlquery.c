#include "util/urlquery.h"

#include <errno.h>
#include <string.h>

#include "util/encoding.h"

int ms_url_split(const char *target, size_t len, ms_url_parts_t *out)
{
    memset(out, 0, sizeof(*out));
    if (len > MS_URL_MAX)
        return -E2BIG;
    if (len == 0 || target[0] != '/')
        return -EINVAL;
    size_t q = len;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)target[i];
        /* RFC 3986 section 2: no controls, spaces or fragments in a target. */
        if (c <= 0x20 || c == 0x7f || c == '#')
            return -EINVAL;
        if (c == '?' && q == len)
            q = i;
    }
    out->path = target;
    out->path_len = q;
    if (q < len) {
        out->query = target + q + 1;
        out->query_len = len - q - 1;
    }
    return 0;
}

int ms_url_decode(const char *in, size_t len, int form, char *out, size_t outcap)
{
    size_t o = 0;
    if (outcap == 0)
        return -ENOSPC;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c == '\0')
            return -EINVAL;
        if (c == '%') {
            /* RFC 3986 section 2.1: "%" HEXDIG HEXDIG */
            if (len - i < 3)
                return -EINVAL;
            int hi = ms_hexval(in[i + 1]), lo = ms_hexval(in[i + 2]);
            if (hi < 0 || lo < 0)
                return -EINVAL;
            c = (char)((hi << 4) | lo);
            if (c == '\0')
                return -EINVAL;
            i += 2;
        } else if (form && c == '+') {
            c = ' ';
        }
        if (o + 1 >= outcap)
            return -ENOSPC;
        out[o++] = c;
    }
    out[o] = '\0';
    if (o > (size_t)0x7fffffff)
        return -ENOSPC;
    return (int)o;
}

int ms_url_path_split(const char *path, size_t len, char *buf, size_t bufcap, char **segs,
                      int maxsegs)
{
    size_t i = 0, used = 0;
    int n = 0;
    if (len == 0 || path[0] != '/')
        return -EINVAL;
    i = 1;
    while (i < len) {
        size_t start = i;
        while (i < len && path[i] != '/')
            i++;
        size_t seglen = i - start;
        if (seglen == 0)
            return -EINVAL; /* "//": a trailing '/' was consumed below */
        if (n >= maxsegs)
            return -E2BIG;
        if (used >= bufcap)
            return -ENOSPC;
        int d = ms_url_decode(path + start, seglen, 0, buf + used, bufcap - used);
        if (d < 0)
            return d;
        char *seg = buf + used;
        if (strchr(seg, '/') || strchr(seg, '\\'))
            return -EINVAL;
        if (strcmp(seg, ".") == 0 || strcmp(seg, "..") == 0)
            return -EINVAL;
        segs[n++] = seg;
        used += (size_t)d + 1;
        if (i < len)
            i++; /* skip '/' */
    }
    return n;
}

/* Iterates the pairs of a raw query: calls fn for each; stops when fn
 * returns non-zero and returns that value. */
typedef int (*pair_fn)(const char *k, size_t klen, const char *v, size_t vlen, int hasv, void *ud);

static int query_each(const char *q, size_t len, pair_fn fn, void *ud)
{
    size_t i = 0;
    while (i <= len && q) {
        size_t start = i;
        while (i < len && q[i] != '&' && q[i] != ';')
            i++;
        if (i > start) {
            const char *eq = memchr(q + start, '=', i - start);
            int r;
            if (eq)
                r = fn(q + start, (size_t)(eq - (q + start)), eq + 1, (size_t)(q + i - eq - 1), 1,
                       ud);
            else
                r = fn(q + start, i - start, NULL, 0, 0, ud);
            if (r)
                return r;
        }
        i++;
    }
    return 0;
}

typedef struct {
    const char *key;
    char *out;
    size_t outcap;
    int result;
} get_ctx_t;

static int get_pair(const char *k, size_t klen, const char *v, size_t vlen, int hasv, void *ud)
{
    get_ctx_t *g = ud;
    char kb[128];
    int d = ms_url_decode(k, klen, 1, kb, sizeof(kb));
    if (d == -ENOSPC)
        return 0; /* a key longer than any we look for */
    if (d < 0)
        return 0; /* bad keys of other pairs are reported by validate */
    if (strcmp(kb, g->key) != 0)
        return 0;
    if (!hasv) {
        if (g->outcap == 0)
            g->result = -ENOSPC;
        else {
            g->out[0] = '\0';
            g->result = 0;
        }
        return 1;
    }
    g->result = ms_url_decode(v, vlen, 1, g->out, g->outcap);
    return 1;
}

int ms_url_query_get(const char *query, size_t len, const char *key, char *out, size_t outcap)
{
    get_ctx_t g = {key, out, outcap, -ENOENT};
    if (!query)
        return -ENOENT;
    query_each(query, len, get_pair, &g);
    return g.result;
}

static int check_escapes(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\0')
            return -EINVAL;
        if (s[i] == '%') {
            if (len - i < 3 || ms_hexval(s[i + 1]) < 0 || ms_hexval(s[i + 2]) < 0)
                return -EINVAL;
            if (s[i + 1] == '0' && s[i + 2] == '0')
                return -EINVAL;
            i += 2;
        }
    }
    return 0;
}

static int validate_pair(const char *k, size_t klen, const char *v, size_t vlen, int hasv, void *ud)
{
    (void)ud;
    (void)hasv;
    if (check_escapes(k, klen) < 0 || (v && check_escapes(v, vlen) < 0))
        return -EINVAL;
    return 0;
}

int ms_url_query_validate(const char *query, size_t len)
{
    if (!query)
        return 0;
    return query_each(query, len, validate_pair, NULL);
}

int ms_url_encode(const char *s, char *out, size_t outcap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        int keep = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                   c == '-' || c == '.' || c == '_' || c == '~';
        size_t need = keep ? 1 : 3;
        if (o + need >= outcap)
            return -ENOSPC;
        if (keep) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    if (outcap == 0)
        return -ENOSPC;
    out[o] = '\0';
    return (int)o;
}

int ms_url_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    int neg = 0;
    uint64_t v = 0;
    const char *p = s;
    if (!s || !*s)
        return -EINVAL;
    if (*p == '-') {
        if (min >= 0)
            return -EINVAL;
        neg = 1;
        p++;
    }
    if (!*p)
        return -EINVAL;
    if (p[0] == '0' && p[1] != '\0')
        return -EINVAL;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return -EINVAL;
        if (v > (UINT64_MAX - 9) / 10)
            return -ERANGE;
        v = v * 10 + (uint64_t)(*p - '0');
        if (v > (uint64_t)INT64_MAX + 1)
            return -ERANGE;
    }
    int64_t r;
    if (neg) {
        if (v == (uint64_t)INT64_MAX + 1)
            r = INT64_MIN;
        else
            r = -(int64_t)v;
    } else {
        if (v > (uint64_t)INT64_MAX)
            return -ERANGE;
        r = (int64_t)v;
    }
    if (r < min || r > max)
        return -ERANGE;
    *out = r;
    return 0;
}

int ms_url_csv_has(const char *csv, const char *word)
{
    size_t wl = strlen(word);
    const char *p = csv;
    while (p && *p) {
        const char *c = strchr(p, ',');
        size_t l = c ? (size_t)(c - p) : strlen(p);
        if (l == wl && strncmp(p, word, l) == 0)
            return 1;
        p = c ? c + 1 : NULL;
    }
    return 0;
}

static size_t digits(const char *s)
{
    size_t n = 0;
    while (s[n] >= '0' && s[n] <= '9')
        n++;
    return n;
}

int ms_url_is_hls_media(const char *name)
{
    const char *p;
    size_t d;
    if (strncmp(name, "seg", 3) == 0) {
        p = name + 3;
        if ((d = digits(p)) == 0)
            return 0;
        p += d;
        return strcmp(p, ".ts") == 0 || strcmp(p, ".m4s") == 0;
    }
    if (strncmp(name, "part", 4) == 0) {
        p = name + 4;
        if ((d = digits(p)) == 0)
            return 0;
        p += d;
        if (*p++ != '.')
            return 0;
        if ((d = digits(p)) == 0)
            return 0;
        p += d;
        return strcmp(p, ".ts") == 0 || strcmp(p, ".m4s") == 0;
    }
    if (strncmp(name, "init", 4) == 0) {
        p = name + 4;
        if ((d = digits(p)) == 0)
            return 0;
        return strcmp(p + d, ".mp4") == 0;
    }
    return 0;
}

static int is_get(const char *m)
{
    return strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0;
}

static void set(ms_route_t *r, ms_route_id_t id, const char *method, const char *allow)
{
    r->id = id;
    r->allow = allow;
    r->method_ok = 1;
    if (strcmp(allow, "GET, HEAD") == 0)
        r->method_ok = is_get(method);
    else if (strcmp(allow, "POST") == 0)
        r->method_ok = strcmp(method, "POST") == 0;
    else if (strcmp(allow, "DELETE") == 0)
        r->method_ok = strcmp(method, "DELETE") == 0;
    else if (strcmp(allow, "GET, HEAD, POST") == 0)
        r->method_ok = is_get(method) || strcmp(method, "POST") == 0;
    else if (strcmp(allow, "GET, HEAD, PUT, DELETE") == 0)
        r->method_ok =
            is_get(method) || strcmp(method, "PUT") == 0 || strcmp(method, "DELETE") == 0;
    else if (strcmp(allow, "GET, HEAD, PUT, PATCH, DELETE") == 0)
        r->method_ok = is_get(method) || strcmp(method, "PUT") == 0 ||
                       strcmp(method, "PATCH") == 0 || strcmp(method, "DELETE") == 0;
}

/* The REST table (docs/api.md "REST API"). Calls on the replicated state
 * (writes, servers, groups, clusters, cluster) match as MS_ROUTE_API_PLANNED:
 * api/cluster_api.c serves them on a node with listen.raft set, and a node
 * without raft answers them 501 rather than 404 (docs/api.md). */
static void match_api(const char *m, char *const *s, int n, ms_route_t *r)
{
    r->id = MS_ROUTE_API_UNKNOWN;
    r->method_ok = 1;
    r->allow = "";
    if (n == 0)
        return;
    const char *res = s[0];
    if (strcmp(res, "streams") == 0) {
        if (n == 1) {
            set(r, MS_ROUTE_API_STREAMS, m, "GET, HEAD, POST");
            if (r->method_ok && !is_get(m))
                r->id = MS_ROUTE_API_PLANNED;
        } else if (n == 2) {
            r->stream = s[1];
            set(r, MS_ROUTE_API_STREAM, m, "GET, HEAD, PUT, PATCH, DELETE");
            if (r->method_ok && !is_get(m))
                r->id = MS_ROUTE_API_PLANNED;
        } else if (n == 3) {
            static const char *const post_actions[] = {"restart", "enable",   "disable",
                                                       "events",  "transfer", "update-indexes"};
            r->stream = s[1];
            if (strcmp(s[2], "ranges") == 0) {
                set(r, MS_ROUTE_API_RANGES, m, "GET, HEAD");
                return;
            }
            if (strcmp(s[2], "events") == 0) {
                set(r, MS_ROUTE_API_EVENTS, m, "POST");
                return;
            }
            if (strcmp(s[2], "tokens") == 0) {
                set(r, MS_ROUTE_API_TOKENS, m, "POST");
                return;
            }
            if (strcmp(s[2], "share") == 0) {
                set(r, MS_ROUTE_API_SHARE, m, "POST");
                return;
            }
            if (strcmp(s[2], "sessions") == 0) {
                set(r, MS_ROUTE_API_SESSIONS, m, "GET, HEAD");
                return;
            }
            for (size_t i = 0; i < sizeof(post_actions) / sizeof(post_actions[0]); i++)
                if (strcmp(s[2], post_actions[i]) == 0) {
                    set(r, MS_ROUTE_API_PLANNED, m, "POST");
                    return;
                }
        } else if (n == 4 && strcmp(s[2], "sessions") == 0) {
            r->stream = s[1];
            r->name = s[3];
            set(r, MS_ROUTE_API_SESSIONS, m, "DELETE");
        }
        return;
    }
    if (strcmp(res, "login") == 0 && n == 1) {
        set(r, MS_ROUTE_API_LOGIN, m, "POST");
        return;
    }
    if (strcmp(res, "system") == 0 && n == 1) {
        set(r, MS_ROUTE_API_SYSTEM, m, "GET, HEAD");
        return;
    }
    if (strcmp(res, "cluster") == 0 && n == 1) {
        set(r, MS_ROUTE_API_PLANNED, m, "GET, HEAD");
        return;
    }
    if (strcmp(res, "servers") == 0) {
        if (n == 1)
            set(r, MS_ROUTE_API_PLANNED, m, "GET, HEAD");
        else if (n == 2)
            set(r, MS_ROUTE_API_PLANNED, m, "GET, HEAD, PUT, DELETE");
        return;
    }
    if (strcmp(res, "groups") == 0 || strcmp(res, "clusters") == 0) {
        if (n == 1)
            set(r, MS_ROUTE_API_PLANNED, m, "GET, HEAD, POST");
        else if (n == 2)
            set(r, MS_ROUTE_API_PLANNED, m, "GET, HEAD, PUT, DELETE");
        return;
    }
}

void ms_route_match(const char *method, char *const *segs, int nsegs, ms_route_t *out)
{
    memset(out, 0, sizeof(*out));
    out->method_ok = 1;
    out->allow = "";
    if (nsegs <= 0) {
        set(out, MS_ROUTE_ROOT, method, "GET, HEAD");
        return;
    }
    if (nsegs >= 2 && strcmp(segs[0], "api") == 0 && strcmp(segs[1], "v1") == 0) {
        match_api(method, segs + 2, nsegs - 2, out);
        return;
    }
    if (nsegs == 1 && strcmp(segs[0], "metrics") == 0) {
        set(out, MS_ROUTE_METRICS, method, "GET, HEAD");
        return;
    }
    if (nsegs == 2 && strcmp(segs[0], "api") != 0) {
        if (strcmp(segs[1], "index.m3u8") == 0) {
            out->stream = segs[0];
            set(out, MS_ROUTE_HLS_PLAYLIST, method, "GET, HEAD");
            return;
        }
        if (ms_url_is_hls_media(segs[1])) {
            out->stream = segs[0];
            out->name = segs[1];
            set(out, MS_ROUTE_HLS_MEDIA, method, "GET, HEAD");
            return;
        }
        /* Archive playback (docs/api.md "Archive playback"): the handler
         * parses the name (archive-FROM-DURATION.m3u8|.mp4, segments). */
        if (strncmp(segs[1], "archive-", 8) == 0) {
            out->stream = segs[0];
            out->name = segs[1];
            set(out, MS_ROUTE_ARCHIVE, method, "GET, HEAD");
            return;
        }
        /* Live outputs that are not HLS (docs/api.md "Playback"). */
        static const struct {
            const char *name;
            ms_route_id_t id;
        } live[] = {{"live.mp4", MS_ROUTE_LIVE_MP4},
                    {"live.flv", MS_ROUTE_LIVE_FLV},
                    {"videoshot.jpg", MS_ROUTE_SNAPSHOT},
                    {"preview.jpg", MS_ROUTE_SNAPSHOT},
                    {"preview.mp4", MS_ROUTE_PREVIEW_MP4}};
        for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++)
            if (strcmp(segs[1], live[i].name) == 0) {
                out->stream = segs[0];
                out->name = segs[1];
                set(out, live[i].id, method, "GET, HEAD");
                return;
            }
    }
    /* The web panel's files (docs/cpanel.md); after the playback names so
     * that a stream called "cpanel" still plays. */
    if (strcmp(segs[0], "cpanel") == 0) {
        set(out, MS_ROUTE_CPANEL, method, "GET, HEAD");
        return;
    }
    out->id = MS_ROUTE_NONE;
}
