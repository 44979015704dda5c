/* Cross-server archive HLS playlists, the node part: which servers hold
 * the window, their playlists fetched node to node, the splice served
 * (api/archive_splice.c is the pure part). See archive_remote.h and
 * docs/cluster.md "Archive index handoff". RFC 8216 section 6.2.2: the
 * pieces of other servers are marked with discontinuities. */
#include <errno.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/archive_remote.h"
#include "node/archive_view.h"
#include "node/cluster_http.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/sizes.h"

/* Query key of a node-to-node fetch: answer from the local archive only. */
#define LOCAL_KEY "cluster_local"
/* At most this many servers are asked for one playlist. */
#define MAX_SERVERS 8

/* ---- node part ------------------------------------------------------------ */

/* Servers whose last fetch failed, skipped (listed as missing at once) until
 * a time: a dead holder costs one wait per MS_ARCH_REMOTE_BACKOFF_MS, not
 * one per playlist request. Any MHD thread; under g_bo_mu. */
#define BACKOFF_SLOTS 16
static pthread_mutex_t g_bo_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    char server[64];
    int64_t until_ms;
} g_bo[BACKOFF_SLOTS];

static int backoff_active(const char *server, int64_t now_ms)
{
    int on = 0;
    pthread_mutex_lock(&g_bo_mu);
    for (int i = 0; i < BACKOFF_SLOTS; i++)
        if (g_bo[i].until_ms > now_ms && strcmp(g_bo[i].server, server) == 0)
            on = 1;
    pthread_mutex_unlock(&g_bo_mu);
    return on;
}

/* until_ms 0 clears the server's entry (it answered). */
static void backoff_set(const char *server, int64_t until_ms)
{
    pthread_mutex_lock(&g_bo_mu);
    int slot = -1;
    for (int i = 0; i < BACKOFF_SLOTS && slot < 0; i++)
        if (strcmp(g_bo[i].server, server) == 0)
            slot = i;
    for (int i = 0; i < BACKOFF_SLOTS && slot < 0 && until_ms; i++)
        if (g_bo[i].until_ms <= until_ms - MS_ARCH_REMOTE_BACKOFF_MS)
            slot = i; /* expired */
    if (slot >= 0) {
        snprintf(g_bo[slot].server, sizeof g_bo[slot].server, "%.63s", until_ms ? server : "");
        g_bo[slot].until_ms = until_ms;
    }
    pthread_mutex_unlock(&g_bo_mu);
}

void ms_archive_remote_backoff_reset(void)
{
    pthread_mutex_lock(&g_bo_mu);
    memset(g_bo, 0, sizeof g_bo);
    pthread_mutex_unlock(&g_bo_mu);
}

int ms_archive_remote_local_only(ms_req_t *r)
{
    char v[8];
    return ms_api_query(r, LOCAL_KEY, v, sizeof v) != -ENOENT;
}

int ms_archive_remote_internal(ms_req_t *r)
{
    if (!ms_archive_remote_local_only(r))
        return 0;
    const char *mac = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MS_CHTTP_HEADER);
    const ms_node_cfg_t *cfg = ms_api_cfg();
    const char *nid = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MS_CHTTP_NODE);
    return mac && cfg &&
           ms_chttp_verify(cfg->secret, mac, nid, r->method, r->raw, r->body,
                           r->body ? r->body_len : 0, ms_wall_us() / 1000, NULL) == 0;
}

typedef struct {
    char server[64];
    char http[MS_HTTP_BASE_MAX];
    int64_t lo, hi; /* UTC s, the union of its pieces within the window */
} piece_t;

/* Other servers' pieces overlapping [from, to] (UTC s), one entry per
 * server. Returns the count. */
static int collect(const char *uid, int64_t from, int64_t to, piece_t *p, int cap)
{
    json_t *arr = json_array();
    if (!arr)
        return 0;
    ms_archive_view_pieces(uid, from, to, arr);
    int n = 0;
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e)
    {
        const char *srv = json_string_value(json_object_get(e, "server"));
        const char *http = json_string_value(json_object_get(e, "http"));
        int64_t f = json_integer_value(json_object_get(e, "from"));
        int64_t t = json_integer_value(json_object_get(e, "to"));
        if (!srv || !http)
            continue;
        int64_t lo = f > from ? f : from, hi = t < to ? t : to;
        int k = 0;
        while (k < n && strcmp(p[k].server, srv) != 0)
            k++;
        if (k == n) {
            if (n == cap)
                continue;
            snprintf(p[k].server, sizeof p[k].server, "%s", srv);
            snprintf(p[k].http, sizeof p[k].http, "%s", http);
            p[k].lo = lo;
            p[k].hi = hi;
            n++;
        } else {
            if (lo < p[k].lo)
                p[k].lo = lo;
            if (hi > p[k].hi)
                p[k].hi = hi;
        }
    }
    json_decref(arr);
    return n;
}

int ms_archive_remote_servers(const char *uid, int64_t from, int64_t to)
{
    piece_t p[MAX_SERVERS];
    return collect(uid, from, to, p, MAX_SERVERS);
}

static void add_missing(char *missing, size_t cap, const char *server)
{
    size_t n = strlen(missing);
    if (n + strlen(server) + 2 < cap)
        snprintf(missing + n, cap - n, "%s%s", n ? "," : "", server);
}

int ms_archive_remote_splice(const char *uid, const ms_dvr_chunk_t *v, size_t nv,
                             const ms_dvr_pl_opts_t *o, int64_t to_ms, ms_buf_t *out, char *missing,
                             size_t cap)
{
    int64_t from_ms = o->from_ms;
    int event = o->event;
    const char *query = o->query;
    int64_t from = from_ms / 1000, to = (to_ms + 999) / 1000;
    piece_t p[MAX_SERVERS];
    int np = collect(uid, from, to, p, MAX_SERVERS);
    if (np <= 0)
        return -ENOENT;
    const ms_node_cfg_t *cfg = ms_api_cfg();
    ms_arch_list_t l = {0};
    /* the local piece is rendered for its own sub-window, like the remote
     * ones: from its first chunk in the window to its last (VOD), so that
     * the renderer's length (first segment start + duration) ends it */
    ms_dvr_pl_opts_t lo = *o;
    int64_t a = INT64_MAX, b = INT64_MIN;
    for (size_t i = 0; i < nv; i++) {
        if (!v[i].nfrags || v[i].end_ms <= from_ms || v[i].start_ms >= to_ms)
            continue;
        /* a chunk's end as its fragments say: the end_ms of the chunk
         * being written (or just closed) can lag its last fragments */
        int64_t ce = v[i].end_ms;
        const ms_dvr_frag_t *lf = &v[i].frags[v[i].nfrags - 1];
        if (lf->t_ms + lf->dur_ms > ce)
            ce = lf->t_ms + lf->dur_ms;
        int64_t s0 = v[i].start_ms > from_ms ? v[i].start_ms : from_ms;
        int64_t e0 = ce < to_ms ? ce : to_ms;
        a = s0 < a ? s0 : a;
        b = e0 > b ? e0 : b;
    }
    int rc = 0;
    if (a < b) {
        if (!event) {
            lo.from_ms = a;
            lo.dur_ms = b - a;
        }
        ms_buf_t lb = MS_BUF_INIT;
        rc = ms_dvr_playlist(v, nv, &lo, &lb);
        if (rc >= 0)
            rc = ms_arch_parse((const char *)lb.data, lb.len, "", 0, &l);
        ms_buf_free(&lb);
        if (rc == -ENOMEM)
            goto out;
    }
    int64_t now = ms_wall_us() / 1000000;
    int64_t deadline = ms_mono_ms() + MS_ARCH_REMOTE_TIMEOUT_MS;
    for (int k = 0; k < np; k++) {
        char path[1600], pre[420];
        /* its sub-window: from its published start to the window end. The
         * published end lags what the server holds (one publishing
         * period, 5 s, and the last fragments of the chunk it closed when
         * it lost the stream), so it does not bound the question: the
         * server lists what it has, and ms_arch_render orders the pieces */
        int growing = p[k].hi >= now - 10;
        p[k].hi = to;
        int64_t d = p[k].hi - p[k].lo;
        if (d < 1)
            d = 1;
        if (d > 86400)
            d = 86400;
        int n;
        /* an event window whose remote piece reaches now asks that server's
         * growing playlist; otherwise its sub-window (VOD) */
        if (event && growing)
            n = snprintf(path, sizeof path, "/%s/archive-%" PRId64 "-now.m3u8%s%s" LOCAL_KEY "=1",
                         uid, p[k].lo, query, query[0] ? "&" : "?");
        else
            n = snprintf(path, sizeof path,
                         "/%s/archive-%" PRId64 "-%" PRId64 ".m3u8%s%s" LOCAL_KEY "=1", uid,
                         p[k].lo, d, query, query[0] ? "&" : "?");
        int pn = snprintf(pre, sizeof pre, "%s/%s/", p[k].http, uid);
        /* the budget left, shared by the servers still to ask: one that
         * does not answer cannot starve the next */
        int64_t left = (deadline - ms_mono_ms()) / (np - k);
        int status = 0, skipped = backoff_active(p[k].server, ms_mono_ms());
        char *body = NULL;
        rc = skipped ? -EAGAIN : -ETIMEDOUT;
        if (!skipped && n > 0 && (size_t)n < sizeof path && pn > 0 && (size_t)pn < sizeof pre &&
            left > 0)
            rc = ms_chttp_request(p[k].http, "GET", path, NULL, 0, cfg ? cfg->secret : NULL, 0,
                                  (int)left, &status, &body);
        if (rc == 0 && status == 200)
            rc = ms_arch_parse(body, strlen(body), pre, k + 1, &l);
        else if (rc == 0 && status == 404)
            rc = 0; /* nothing recorded there after all */
        else if (rc == 0)
            rc = -EPROTO;
        free(body);
        if (rc == -ENOMEM)
            goto out;
        if (rc < 0) {
            /* unreachable (not a bad answer to this one window): skip it a while */
            int down = rc == -ETIMEDOUT || rc == -ECONNREFUSED || rc == -EHOSTUNREACH ||
                       rc == -ENETUNREACH || rc == -ECONNRESET;
            if (!skipped)
                MS_WARN(MS_API_CTX, "archive playlist of %s from %s (%s): %s%s", uid, p[k].server,
                        p[k].http, status ? "bad status" : strerror(-rc),
                        down ? "; not asked again for 10 s" : "");
            if (!skipped && down)
                backoff_set(p[k].server, ms_mono_ms() + MS_ARCH_REMOTE_BACKOFF_MS);
            add_missing(missing, cap, p[k].server);
        } else {
            backoff_set(p[k].server, 0);
        }
    }
    rc = ms_arch_render(&l, from_ms, to_ms, event, 2000, out);
out:
    ms_arch_list_free(&l);
    return rc;
}
