/* The cluster-wide archive view. See archive_view.h. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "dvr/dvr.h"
#include "node/archive_view.h"
#include "node/streams.h"

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static json_t *g_rows; /* owned; only touched under g_mu */
static char g_self[64];

void ms_archive_view_set(json_t *rows, const char *self)
{
    json_t *copy = rows ? json_deep_copy(rows) : NULL;
    pthread_mutex_lock(&g_mu);
    json_t *old = g_rows;
    g_rows = copy;
    snprintf(g_self, sizeof g_self, "%s", self ? self : "");
    pthread_mutex_unlock(&g_mu);
    json_decref(old);
}

void ms_archive_view_clear(void)
{
    ms_archive_view_set(NULL, NULL);
}

/* Calls fn for every [f, t] of another server's row of uid overlapping
 * [from, to]; under g_mu. */
typedef void (*range_fn)(void *ud, const char *server, const char *http, int64_t f, int64_t t);

static int each_range(const char *uid, int64_t from, int64_t to, range_fn fn, void *ud)
{
    int n = 0;
    size_t i, k;
    json_t *row, *rg;
    pthread_mutex_lock(&g_mu);
    json_array_foreach(g_rows, i, row)
    {
        const char *s = json_string_value(json_object_get(row, "stream"));
        const char *srv = json_string_value(json_object_get(row, "server"));
        const char *http = json_string_value(json_object_get(row, "http"));
        if (!s || !srv || strcmp(s, uid) != 0 || strcmp(srv, g_self) == 0)
            continue;
        json_array_foreach(json_object_get(row, "ranges"), k, rg)
        {
            int64_t f = json_integer_value(json_array_get(rg, 0));
            int64_t t = json_integer_value(json_array_get(rg, 1));
            if (t < from || f > to)
                continue;
            fn(ud, srv, http ? http : "", f, t);
            n++;
        }
    }
    pthread_mutex_unlock(&g_mu);
    return n;
}

static void append_cb(void *ud, const char *server, const char *http, int64_t f, int64_t t)
{
    (void)http;
    json_array_append_new(ud, json_pack("{s:I,s:I,s:s}", "from", (json_int_t)f, "duration",
                                        (json_int_t)(t - f), "server", server));
}

int ms_archive_view_append(const char *uid, int64_t from, int64_t to, json_t *arr)
{
    if (!uid || !arr)
        return 0;
    return each_range(uid, from, to, append_cb, arr);
}

static void pieces_cb(void *ud, const char *server, const char *http, int64_t f, int64_t t)
{
    json_array_append_new(ud, json_pack("{s:I,s:I,s:s,s:s}", "from", (json_int_t)f, "to",
                                        (json_int_t)t, "server", server, "http", http));
}

int ms_archive_view_pieces(const char *uid, int64_t from, int64_t to, json_t *arr)
{
    if (!uid || !arr)
        return 0;
    return each_range(uid, from, to, pieces_cb, arr);
}

typedef struct {
    int64_t from, to, best, best_f;
    char *http, *server;
    size_t cap, scap;
} holder_t;

static void holder_cb(void *ud, const char *server, const char *http, int64_t f, int64_t t)
{
    holder_t *h = ud;
    int64_t lo = f > h->from ? f : h->from, hi = t < h->to ? t : h->to;
    int64_t ov = hi - lo;
    if (!http[0] || (h->best >= 0 && (ov < h->best || (ov == h->best && f >= h->best_f))))
        return;
    h->best = ov;
    h->best_f = f;
    snprintf(h->http, h->cap, "%s", http);
    snprintf(h->server, h->scap, "%s", server);
}

int ms_archive_view_holder(const char *uid, int64_t from, int64_t to, char *http, size_t cap,
                           char *server, size_t scap)
{
    if (!uid || !cap || !scap)
        return -EINVAL;
    http[0] = server[0] = '\0';
    holder_t h = {from, to, -1, 0, http, server, cap, scap};
    each_range(uid, from, to, holder_cb, &h);
    return h.best >= 0 ? 0 : -ENOENT;
}

int ms_archive_view_elsewhere(const char *stream, int64_t from, int64_t to, char *uid, size_t ucap,
                              char *http, size_t cap, char *server, size_t scap)
{
    ms_stream_t *s = ms_streams_find(stream);
    if (!s)
        return 0;
    ms_stream_cfg_t cfg;
    memset(&cfg, 0, sizeof cfg);
    int rc = ms_stream_get_cfg(s, &cfg);
    ms_stream_unref(s);
    if (rc < 0)
        return 0;
    json_t *j = NULL;
    int yes = cfg.dvr_enabled &&
              (ms_dvr_ranges(cfg.uid, from, to, &j) < 0 ||
               json_array_size(json_object_get(j, "ranges")) == 0) &&
              ms_archive_view_holder(cfg.uid, from, to, http, cap, server, scap) == 0;
    if (yes && uid)
        snprintf(uid, ucap, "%s", cfg.uid);
    json_decref(j);
    ms_stream_cfg_free(&cfg);
    return yes;
}
