/* Request-target parsing for the HTTP server: path/query split, strict
 * percent-decoding, path segments with traversal rejection, query lookup,
 * and route matching. Pure (no I/O, no globals), fuzzed by
 * fuzz/fuzz_http_query.c.
 *
 * RFC 3986 section 2.1 (percent-encoding), 3.3 (path), 3.4 (query);
 * application/x-www-form-urlencoded ('+' is a space) for query values.
 *
 * Threads: any; every function only touches its arguments. */
#ifndef MS_UTIL_URLQUERY_H
#define MS_UTIL_URLQUERY_H

#include <stddef.h>
#include <stdint.h>

#define MS_URL_MAX      4096 /* longer request targets get HTTP 414 */
#define MS_URL_MAX_SEGS 8    /* more path segments than this: no route */

/* Splits a raw request target (origin-form, "/path?query", RFC 7230 5.3.1).
 * Borrows target: path and query point into it (not NUL-terminated).
 * Returns 0, -E2BIG when len > MS_URL_MAX, -EINVAL when the target does not
 * start with '/' or holds a control byte, space or '#'. */
typedef struct {
    const char *path;
    size_t path_len;
    const char *query; /* NULL when no '?' */
    size_t query_len;
} ms_url_parts_t;
int ms_url_split(const char *target, size_t len, ms_url_parts_t *out);

/* Strict percent-decoding of in[0..len) into out (outcap bytes, always
 * NUL-terminated on success). form != 0 decodes '+' as a space.
 * Returns the decoded length, -EINVAL for a bad escape or an encoded NUL,
 * -ENOSPC when out is too small. */
int ms_url_decode(const char *in, size_t len, int form, char *out, size_t outcap);

/* Splits a raw path ("/a/b%20c/d") into decoded segments written into buf
 * (bufcap bytes), segs[i] pointing into buf. A trailing '/' is ignored;
 * "/" gives 0 segments. Returns the count, -EINVAL for bad encoding, an
 * empty inner segment ("//"), "." or "..", a decoded '/' or '\\';
 * -E2BIG for more than maxsegs segments; -ENOSPC when buf is too small. */
int ms_url_path_split(const char *path, size_t len, char *buf, size_t bufcap, char **segs,
                      int maxsegs);

/* Finds the first key=value pair with the given key (compared after
 * decoding) in a raw query and decodes its value into out. A key without
 * '=' has an empty value. Returns the value length, -ENOENT when absent,
 * -EINVAL for bad encoding (of that pair), -ENOSPC when out is too small. */
int ms_url_query_get(const char *query, size_t len, const char *key, char *out, size_t outcap);
/* 0 when every pair of the query decodes, else -EINVAL. */
int ms_url_query_validate(const char *query, size_t len);

/* Percent-encodes s (RFC 3986 unreserved characters kept) into out.
 * Returns the length or -ENOSPC. */
int ms_url_encode(const char *s, char *out, size_t outcap);

/* Strict decimal integer in [min, max] ("-" allowed when min < 0, no spaces,
 * no '+', no leading zeros beyond "0"). Returns 0 or -EINVAL / -ERANGE. */
int ms_url_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);

/* 1 when word is one of the comma-separated items of csv ("a,b,c"). */
int ms_url_csv_has(const char *csv, const char *word);

/* Routes (docs/api.md "Playback" and "REST API"). */
typedef enum {
    MS_ROUTE_NONE = 0,     /* 404 */
    MS_ROUTE_ROOT,         /* GET /: 302 to /cpanel/ */
    MS_ROUTE_METRICS,      /* GET /metrics */
    MS_ROUTE_HLS_PLAYLIST, /* GET /{stream}/index.m3u8 */
    MS_ROUTE_HLS_MEDIA,    /* GET /{stream}/seg*.ts|m4s, part*.ts|m4s, init*.mp4 */
    MS_ROUTE_LIVE_MP4,     /* GET /{stream}/live.mp4 */
    MS_ROUTE_LIVE_FLV,     /* GET /{stream}/live.flv (HTTP-FLV, docs/rtmp.md) */
    MS_ROUTE_SNAPSHOT,     /* GET /{stream}/videoshot.jpg|preview.jpg (name says which) */
    MS_ROUTE_PREVIEW_MP4,  /* GET /{stream}/preview.mp4 */
    MS_ROUTE_API_STREAMS,  /* GET /api/v1/streams */
    MS_ROUTE_API_STREAM,   /* GET /api/v1/streams/{id} */
    MS_ROUTE_API_SYSTEM,   /* GET /api/v1/system */
    MS_ROUTE_API_TOKENS,   /* POST /api/v1/streams/{id}/tokens */
    MS_ROUTE_API_SHARE,    /* POST /api/v1/streams/{id}/share */
    MS_ROUTE_ARCHIVE,      /* GET /{stream}/archive-*.m3u8|.mp4|.m4s (api/archive.c) */
    MS_ROUTE_API_RANGES,   /* GET /api/v1/streams/{id}/ranges */
    MS_ROUTE_API_EVENTS,   /* POST /api/v1/streams/{id}/events */
    MS_ROUTE_API_LOGIN,    /* POST /api/v1/login (no admin auth: api/auth.c) */
    MS_ROUTE_API_SESSIONS, /* GET /api/v1/streams/{id}/sessions, DELETE .../sessions/{sid} (name) */
    MS_ROUTE_API_PLANNED,  /* a call on the replicated state: api/cluster_api.c, else 501 */
    MS_ROUTE_API_UNKNOWN,  /* under /api/v1 but no such resource: 404 */
    MS_ROUTE_CPANEL,       /* GET /cpanel and /cpanel/{file...} (api/cpanel.c) */
} ms_route_id_t;

typedef struct {
    ms_route_id_t id;
    const char *stream; /* {stream} / {id} segment (borrowed from segs) */
    const char *name;   /* media file name (borrowed) */
    const char *allow;  /* Allow header value when the method is wrong */
    int method_ok;      /* 0: the path exists but not for this method (405) */
} ms_route_t;

/* Matches method ("GET", "HEAD", "POST"...) and decoded segments. Never
 * fails: unknown paths give MS_ROUTE_NONE. */
void ms_route_match(const char *method, char *const *segs, int nsegs, ms_route_t *out);

/* 1 when name is a live HLS media name: seg<N>.ts, seg<N>.m4s,
 * part<N>.<I>.ts, part<N>.<I>.m4s, init<N>.mp4 (digits only), else 0. */
int ms_url_is_hls_media(const char *name);

#endif
