/* Playback on a node that does not run the stream (docs/cluster.md
 * "Playback on any node"): live HLS (playlist, segments, parts, init),
 * live.mp4 and the live JPEGs answer 302 Found (RFC 9110 section 15.4.3)
 * to the same target (path and query, so ?token= is kept) on the http
 * address of the stream's primary. An HLS player asks again for every
 * playlist reload (RFC 8216 section 6.3.4) and so follows a failover:
 * after it, the old URL redirects to the new primary.
 * Archive playlists, MP4 exports and JPEGs at a time go to the server that
 * holds the asked window when this one has none of it (archive_redirect);
 * an archive playlist whose window lies on several other servers is
 * spliced here instead (api/archive_remote.c). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "api/archive_remote.h"
#include "dvr/dvr.h"
#include "node/archive_view.h"
#include "node/cluster.h"
#include "node/placement_view.h"
#include "util/clock.h"
#include "util/urlquery.h"

/* The archive window [from, to] (UTC seconds) asked by an archive playlist
 * or MP4 export (archive-FROM-DURATION.m3u8|.mp4, archive-FROM-now.m3u8)
 * or a JPEG at a time (?at=); -1 for anything else (archive media segments
 * are relative to their playlist and so already go to its server). */
static int archive_window(ms_req_t *r, int64_t *from, int64_t *to)
{
    char v[64];
    if (r->route.id == MS_ROUTE_SNAPSHOT) {
        if (ms_api_query(r, "at", v, sizeof v) < 0 ||
            ms_url_parse_i64(v, 1, INT64_MAX / 4000, from) < 0)
            return -1;
        *to = *from;
        return 0;
    }
    const char *name = r->route.name;
    size_t len = name ? strlen(name) : 0;
    if (r->route.id != MS_ROUTE_ARCHIVE || len < 14 || len >= sizeof v ||
        strncmp(name, "archive-", 8) != 0 || strncmp(name, "archive-seg-", 12) == 0 ||
        strncmp(name, "archive-init-", 13) == 0)
        return -1;
    memcpy(v, name + 8, len - 8 + 1);
    char *ext = strrchr(v, '.'), *dash = strchr(v, '-');
    if (!ext || !dash || dash > ext)
        return -1;
    *ext = *dash = '\0';
    int64_t dur = 0;
    if (ms_url_parse_i64(v, 1, INT64_MAX / 4000, from) < 0)
        return -1;
    if (strcmp(dash + 1, "now") == 0)
        *to = ms_wall_us() / 1000000;
    else if (ms_url_parse_i64(dash + 1, 1, 86400, &dur) == 0)
        *to = *from + dur;
    else
        return -1;
    return 0;
}

/* Archive playback (docs/cluster.md "Archive index handoff"): served here
 * when the local archive has any part of the window, else 302 to the
 * server whose published ranges overlap it the most (path and query kept,
 * so ?token= too). Not with recording off (nothing is handed off). */
static int archive_redirect(ms_req_t *r, enum MHD_Result *ret)
{
    int64_t from, to;
    if (archive_window(r, &from, &to) < 0 || ms_archive_remote_local_only(r))
        return 0;
    /* an HLS playlist of a window held by several other servers is spliced
     * here (api/archive_remote.c), not redirected */
    size_t nl = r->route.name ? strlen(r->route.name) : 0;
    int m3u8 = nl > 5 && strcmp(r->route.name + nl - 5, ".m3u8") == 0;
    ms_stream_t *s = ms_streams_find(r->route.stream);
    if (!s)
        return 0;
    ms_stream_cfg_t cfg;
    memset(&cfg, 0, sizeof cfg);
    int rc = ms_stream_get_cfg(s, &cfg);
    ms_stream_unref(s);
    if (rc < 0)
        return 0;
    int done = 0;
    json_t *j = NULL;
    char http[300], server[64];
    if (cfg.dvr_enabled && (!m3u8 || ms_archive_remote_servers(cfg.uid, from, to) == 1) &&
        (ms_dvr_ranges(cfg.uid, from, to, &j) < 0 ||
         json_array_size(json_object_get(j, "ranges")) == 0) &&
        ms_archive_view_holder(cfg.uid, from, to, http, sizeof http, server, sizeof server) == 0) {
        char loc[2048];
        int n = snprintf(loc, sizeof loc, "%s%s", http, r->raw);
        if (n > 0 && (size_t)n < sizeof loc) {
            const char *hdrs[] = {"Location", loc, "Cache-Control", "no-store", NULL};
            *ret = ms_api_reply_error(r, 302, "this archive is held by another server", NULL, hdrs);
            done = 1;
        }
    }
    json_decref(j);
    ms_stream_cfg_free(&cfg);
    return done;
}

int ms_api_redirect_route(ms_req_t *r, enum MHD_Result *ret)
{
    ms_route_id_t id = r->route.id;
    if (ms_cluster_enabled() && r->route.stream && r->route.method_ok &&
        (id == MS_ROUTE_ARCHIVE || (id == MS_ROUTE_SNAPSHOT && ms_api_archive_wants_jpeg(r))) &&
        archive_redirect(r, ret))
        return 1;
    if (!ms_cluster_enabled() || !r->route.stream || !r->route.method_ok ||
        (id != MS_ROUTE_HLS_PLAYLIST && id != MS_ROUTE_HLS_MEDIA && id != MS_ROUTE_LIVE_MP4 &&
         id != MS_ROUTE_PREVIEW_MP4 && (id != MS_ROUTE_SNAPSHOT || ms_api_archive_wants_jpeg(r))))
        return 0;
    ms_placement_view_t pv;
    if (ms_placement_view_get(r->route.stream, &pv) < 0 || pv.self_primary || !pv.primary_http[0])
        return 0; /* runs here, unassigned, or unknown: answered locally */
    char loc[2048];
    int n = snprintf(loc, sizeof loc, "%s%s", pv.primary_http, r->raw);
    if (n < 0 || (size_t)n >= sizeof loc)
        return 0;
    const char *hdrs[] = {"Location", loc, "Cache-Control", "no-store", NULL};
    *ret = ms_api_reply_error(r, 302, "the stream runs on another server", NULL, hdrs);
    return 1;
}
