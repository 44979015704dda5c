/* Live HLS numbering across servers: see hls_hint.h. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "media/hls/hls.h"
#include "node/hls_hint.h"
#include "node/streams.h"
#include "util/clock.h"
#include "util/owner.h"

typedef struct {
    char uid[64];
    int64_t msn, disc, at_ms;
} hint_t;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static hint_t *g_v;
static size_t g_n;
/* control loop: the last load.hls seen per server name (a report carries it
 * only every few reports, node/cluster/reports.c) */
static json_t *g_last;
static ms_owner_t g_ctl; /* the control loop: update and clear */

json_t *ms_hls_hint_report(void)
{
    json_t *out = json_object();
    ms_stream_t **list = NULL;
    size_t n = ms_streams_list(&list);
    int64_t now = ms_wall_us() / 1000;
    for (size_t i = 0; i < n; i++) {
        ms_hls_t *h = ms_stream_hls(list[i]);
        ms_stream_cfg_t cfg;
        memset(&cfg, 0, sizeof cfg);
        if (h && ms_stream_get_cfg(list[i], &cfg) == 0) {
            ms_hls_info_t info;
            ms_hls_get_info(h, &info);
            if (info.next_msn > 0)
                json_object_set_new(out, cfg.uid,
                                    json_pack("[I,I,I]", (json_int_t)info.next_msn,
                                              (json_int_t)info.last_disc, (json_int_t)now));
            ms_stream_cfg_free(&cfg);
        }
        ms_hls_unref(h);
        ms_stream_unref(list[i]);
    }
    free(list);
    return out;
}

static hint_t *find(hint_t *v, size_t n, const char *uid)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].uid, uid) == 0)
            return &v[i];
    return NULL;
}

void ms_hls_hint_update(json_t *servers)
{
    MS_ASSERT_OWNER(&g_ctl);
    hint_t *v = NULL;
    size_t n = 0, cap = 0;
    size_t i;
    json_t *s;
    if (!g_last)
        g_last = json_object();
    json_array_foreach(servers, i, s)
    {
        const char *name = json_string_value(json_object_get(s, "name"));
        json_t *map = json_object_get(json_object_get(s, "load"), "hls");
        if (name && json_is_object(map))
            json_object_set(g_last, name, map);
    }
    const char *server;
    json_object_foreach(g_last, server, s)
    {
        const char *uid;
        json_t *e;
        json_object_foreach(s, uid, e)
        {
            json_int_t msn = json_integer_value(json_array_get(e, 0));
            json_int_t disc = json_integer_value(json_array_get(e, 1));
            json_int_t at = json_integer_value(json_array_get(e, 2));
            if (strlen(uid) >= sizeof v[0].uid || msn <= 0 || disc < 0 || at <= 0)
                continue; /* not what a node reports: ignored */
            hint_t *h = find(v, n, uid);
            if (!h) {
                if (n == cap) {
                    size_t nc = cap ? cap * 2 : 64;
                    hint_t *nv = realloc(v, nc * sizeof *nv);
                    if (!nv)
                        continue;
                    v = nv;
                    cap = nc;
                }
                h = &v[n++];
                memset(h, 0, sizeof *h);
                memcpy(h->uid, uid, strlen(uid) + 1);
            }
            if (msn > h->msn) {
                h->msn = msn;
                h->at_ms = at;
            }
            if (disc > h->disc)
                h->disc = disc;
        }
    }
    pthread_mutex_lock(&g_mu);
    hint_t *old = g_v;
    g_v = v;
    g_n = n;
    pthread_mutex_unlock(&g_mu);
    free(old);
}

void ms_hls_hint_clear(void)
{
    MS_ASSERT_OWNER(&g_ctl);
    json_decref(g_last);
    g_last = NULL;
    pthread_mutex_lock(&g_mu);
    free(g_v);
    g_v = NULL;
    g_n = 0;
    pthread_mutex_unlock(&g_mu);
}

void ms_hls_hint_base(const char *uid, uint32_t target_ms, int64_t now_wall_ms, int64_t *msn,
                      int64_t *disc)
{
    *msn = *disc = now_wall_ms / 100;
    pthread_mutex_lock(&g_mu);
    hint_t *h = find(g_v, g_n, uid);
    if (h) {
        /* segments the reporting output may have cut since its report */
        int64_t t = target_ms ? target_ms : 2000;
        int64_t since = now_wall_ms > h->at_ms ? now_wall_ms - h->at_ms : 0;
        int64_t more = (since + t - 1) / t + 1;
        *msn = h->msn + more;
        *disc = h->disc + more;
    }
    pthread_mutex_unlock(&g_mu);
}
