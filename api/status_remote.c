/* The primary's status of streams, read node to node. See status_remote.h. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "api/archive_remote.h"
#include "api/status_remote.h"
#include "node/cluster_http.h"
#include "node/placement_view.h"
#include "util/clock.h"
#include "util/log.h"

/* One server's table: the answer of its last successful read. */
typedef struct {
    char server[64];
    json_t *table;   /* {uid: compact status}, NULL before the first answer */
    int64_t at;      /* mono ms of that answer */
    int64_t backoff; /* mono ms until which the server is not asked */
    int failing;     /* the last read failed (logged once per outage) */
} entry_t;

#define MAX_SERVERS 64

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
/* held while one thread fetches: the others then find the fresh table */
static pthread_mutex_t g_fetch_mu = PTHREAD_MUTEX_INITIALIZER;
static entry_t g_e[MAX_SERVERS];

/* Under g_mu: the entry of server (a new one, or the oldest replaced). */
static entry_t *entry(const char *server)
{
    entry_t *old = &g_e[0];
    for (int i = 0; i < MAX_SERVERS; i++) {
        if (strcmp(g_e[i].server, server) == 0)
            return &g_e[i];
        if (!g_e[i].server[0] || g_e[i].at < old->at)
            old = &g_e[i];
        if (!g_e[i].server[0])
            break;
    }
    json_decref(old->table);
    memset(old, 0, sizeof *old);
    snprintf(old->server, sizeof old->server, "%s", server);
    return old;
}

/* Under g_mu: the fresh table of server (new reference) or NULL. */
static json_t *fresh(const char *server, int64_t now, int64_t *age, int *backoff)
{
    entry_t *e = entry(server);
    *backoff = e->backoff > now;
    if (e->table && now - e->at < MS_STATUS_REMOTE_TTL_MS) {
        *age = now - e->at;
        return json_incref(e->table);
    }
    return NULL;
}

json_t *ms_status_remote_get(const char *server, const char *http, const char *uid, int64_t *age_ms,
                             const char **why)
{
    int64_t age = 0;
    int backoff = 0;
    *why = "unreachable";
    if (!server || !server[0] || !http || !http[0] || !uid)
        return NULL;
    pthread_mutex_lock(&g_mu);
    json_t *t = fresh(server, ms_mono_ms(), &age, &backoff);
    pthread_mutex_unlock(&g_mu);
    if (!t && !backoff) {
        pthread_mutex_lock(&g_fetch_mu);
        pthread_mutex_lock(&g_mu); /* another thread may have fetched meanwhile */
        t = fresh(server, ms_mono_ms(), &age, &backoff);
        pthread_mutex_unlock(&g_mu);
        if (!t && !backoff) {
            const ms_node_cfg_t *cfg = ms_api_cfg();
            int status = 0;
            char *body = NULL;
            int rc = ms_chttp_request(http, "GET", "/api/v1/streams?cluster_local=1", NULL, 0,
                                      cfg ? cfg->secret : NULL, 0, MS_STATUS_REMOTE_TIMEOUT_MS,
                                      &status, &body);
            json_t *j = rc == 0 && status == 200 ? json_loads(body, 0, NULL) : NULL;
            json_t *tab = json_object_get(j, "streams");
            free(body);
            pthread_mutex_lock(&g_mu);
            entry_t *e = entry(server);
            if (json_is_object(tab)) {
                json_decref(e->table);
                e->table = json_incref(tab);
                e->at = ms_mono_ms();
                e->backoff = 0;
                if (e->failing)
                    MS_INFO(MS_API_CTX, "status of %s's streams (%s): answers again", server, http);
                e->failing = 0;
                t = json_incref(tab);
                age = 0;
            } else {
                e->backoff = ms_mono_ms() + MS_STATUS_REMOTE_BACKOFF_MS;
                if (!e->failing) /* once per outage: asked again every backoff */
                    MS_WARN(MS_API_CTX, "status of %s's streams (%s): %s", server, http,
                            rc < 0 ? strerror(-rc) : "bad answer");
                e->failing = 1;
            }
            pthread_mutex_unlock(&g_mu);
            json_decref(j);
        }
        pthread_mutex_unlock(&g_fetch_mu);
    }
    if (!t)
        return NULL;
    json_t *s = json_incref(json_object_get(t, uid));
    json_decref(t);
    if (!s)
        *why = "not running";
    *age_ms = age;
    return s;
}

json_t *ms_status_compact(const ms_stream_status_t *st)
{
    json_t *j = json_object();
    if (!j)
        return NULL;
    json_object_set_new(j, "state", json_string(ms_stream_state_name(st->src.state)));
    json_object_set_new(j, "characteristic",
                        json_string(ms_characteristic_name(st->src.characteristic)));
    json_object_set_new(j, "reason", json_string(st->src.reason));
    json_object_set_new(j, "bitrate_kbps", json_real(st->src.bitrate_kbps));
    json_object_set_new(j, "output_kbps", json_real(st->output_kbps));
    json_object_set_new(j, "clients", json_integer(st->clients));
    json_object_set_new(j, "width", json_integer(st->width));
    json_object_set_new(j, "height", json_integer(st->height));
    json_object_set_new(j, "video_codec", json_string(st->video_codec));
    json_object_set_new(j, "audio_codec", json_string(st->audio_codec));
    json_object_set_new(j, "uptime_s", json_integer(st->uptime_s));
    json_object_set_new(j, "reconnects", json_integer(st->src.reconnects));
    json_object_set_new(j, "reconnects_total", json_integer(st->src.reconnects_total));
    json_object_set_new(j, "transport", json_string(st->src.transport));
    json_object_set_new(j, "hls_ready", json_boolean(st->hls_ready));
    return j;
}

int ms_status_remote_internal(ms_req_t *r)
{
    /* the same check as the archive's internal reads: cluster_local and a
     * valid node signature */
    return ms_archive_remote_internal(r);
}

enum MHD_Result ms_api_streams_local(ms_req_t *r)
{
    ms_stream_t **list = NULL;
    size_t n = ms_streams_list(&list);
    json_t *tab = json_object();
    ms_stream_status_t *st = calloc(1, sizeof(*st));
    for (size_t i = 0; i < n; i++) {
        if (tab && st) {
            ms_stream_cfg_t cfg;
            ms_placement_view_t pv;
            memset(&cfg, 0, sizeof(cfg));
            /* the streams the state places here (a disabled one too: it
             * says "suspend", "disabled") */
            if (ms_stream_get_cfg(list[i], &cfg) == 0 && ms_placement_view_get(cfg.uid, &pv) == 0 &&
                pv.self_primary) {
                ms_stream_get_status(list[i], st);
                json_object_set_new(tab, cfg.uid, ms_status_compact(st));
            }
            ms_stream_cfg_free(&cfg);
        }
        ms_stream_unref(list[i]);
    }
    free(list);
    free(st);
    if (!tab)
        return ms_api_reply_error(r, 500, "out of memory", NULL, NULL);
    return ms_api_reply_json(r, 200, json_pack("{s:o}", "streams", tab), NULL);
}
