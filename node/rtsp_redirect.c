/* RTSP redirects in the cluster (node/rtsp_redirect.h). */
#include "node/rtsp_redirect.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dvr/dvr.h"
#include "media/rtsp/server.h"
#include "node/archive_view.h"
#include "node/cluster.h"
#include "node/placement_view.h"
#include "node/streams.h"
#include "util/sizes.h"

#define RTSP_CAP 160

typedef struct {
    char name[64];
    char rtsp[RTSP_CAP];
} srv_addr_t;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static srv_addr_t *g_addrs; /* owned; under g_mu */
static size_t g_n;

/* "rtsp://host:port" with a port in 1..65535, else 0. */
static int rtsp_usable(const char *s)
{
    if (!s || strncmp(s, "rtsp://", 7) != 0 || strlen(s) >= RTSP_CAP)
        return 0;
    const char *colon = strrchr(s + 7, ':');
    if (!colon || colon == s + 7 || strchr(colon, '/'))
        return 0;
    char *end = NULL;
    long port = strtol(colon + 1, &end, 10);
    return end && end != colon + 1 && *end == '\0' && port > 0 && port <= 65535;
}

void ms_rtsp_redirect_servers_set(json_t *servers)
{
    size_t n = json_array_size(servers), k = 0, i;
    srv_addr_t *v = n ? calloc(n, sizeof *v) : NULL;
    json_t *s, *a;
    json_array_foreach(servers, i, s)
    {
        const char *name = json_string_value(json_object_get(s, "name"));
        if (!v || !name || strlen(name) >= sizeof v[k].name)
            continue;
        size_t j;
        json_array_foreach(json_object_get(s, "addresses"), j, a)
        {
            const char *addr = json_string_value(a);
            if (rtsp_usable(addr)) {
                snprintf(v[k].name, sizeof v[k].name, "%s", name);
                snprintf(v[k].rtsp, sizeof v[k].rtsp, "%s", addr);
                k++;
                break;
            }
        }
    }
    pthread_mutex_lock(&g_mu);
    srv_addr_t *old = g_addrs;
    g_addrs = v;
    g_n = k;
    pthread_mutex_unlock(&g_mu);
    free(old);
}

int ms_rtsp_redirect_server_rtsp(const char *name, char *out, size_t cap)
{
    int rc = -ENOENT;
    if (!name || !name[0] || !cap)
        return -EINVAL;
    pthread_mutex_lock(&g_mu);
    for (size_t i = 0; i < g_n; i++)
        if (strcmp(g_addrs[i].name, name) == 0) {
            rc = (size_t)snprintf(out, cap, "%s", g_addrs[i].rtsp) < cap ? 0 : -ENAMETOOLONG;
            break;
        }
    pthread_mutex_unlock(&g_mu);
    return rc;
}

/* Archive at T (UTC s): the other server holding T when the local archive
 * has nothing there (recording on only: without it nothing is handed off,
 * docs/cluster.md "Archive index handoff"). 1 and base, else 0. */
static int archive_target(const char *stream, int64_t t, char *base, size_t cap)
{
    char http[MS_HTTP_BASE_MAX], server[64];
    return ms_archive_view_elsewhere(stream, t, t, NULL, 0, http, sizeof http, server,
                                     sizeof server) == 1 &&
           ms_rtsp_redirect_server_rtsp(server, base, cap) == 0;
}

int ms_rtsp_redirect_decide(void *ud, const char *stream, const char *query, int here, char *base,
                            size_t cap)
{
    (void)ud;
    if (!ms_cluster_enabled() || !stream || !base || !cap)
        return 0;
    int64_t from_ms = 0;
    if (query && ms_rtsp_archive_query(query, &from_ms))
        return archive_target(stream, from_ms / 1000, base, cap);
    if (here)
        return 0; /* a node that still runs the stream serves it */
    ms_placement_view_t pv;
    if (ms_placement_view_get(stream, &pv) < 0 || pv.self_primary || !pv.primary[0])
        return 0; /* unknown, unassigned, or ours (not started yet): answered here */
    return ms_rtsp_redirect_server_rtsp(pv.primary, base, cap) == 0;
}
