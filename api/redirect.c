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
#include "util/sizes.h"
#include "util/urlquery.h"

/* The archive window [from, to] (UTC seconds) asked by an archive playlist
 * or MP4 export (archive-FROM-DURATION.m3u8|.mp4, archive-FROM-now.m3u8)
 * or a JPEG at a time (?at=); -1 for anything else (archive media segments
 * are relative to their playlist and so already go to its server). */
static int archive_window(ms_req_t *r, int64_t *from, int64_t *to)
{
    char v[64];
    if (r->route.id == MS_ROUTE_SNAPSHOT) {
        if (ms_api_query(r, "at", v, sizeof v) < 0 || ms_utc_parse_s(v, from) < 0)
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
    if (ms_utc_parse_s(v, from) < 0)
        return -1;
    if (strcmp(dash + 1, "now") == 0)
        *to = ms_wall_us() / 1000000;
    else if (ms_url_parse_i64(dash + 1, 1, 86400, &dur) == 0)
        *to = *from + dur;
    else
        return -1;
    return 0;
}

/* Redirect hops (a query parameter ms_hop=N the node adds to every Location
 * it sends): while the servers apply a placement change one after the
 * other (a transfer, a failover), one may still send a player to the old
 * primary while the old primary already sends it to the new one. A request
 * that has been redirected MAX_HOPS times is answered where it lands
 * (a 503 with Retry-After at worst) instead of looping until the player
 * gives up (browsers stop after 20 redirects: seen with hls.js). */
#define MAX_HOPS 2

/* base + the request's path and query with ms_hop=N+1 (any ms_hop of the
 * request dropped) into out. -1 when the request already made MAX_HOPS
 * hops or out is too small. */
static int location(ms_req_t *r, const char *base, char *out, size_t cap)
{
    char v[16];
    int64_t hops = 0;
    if (ms_api_query(r, "ms_hop", v, sizeof v) >= 0 && ms_url_parse_i64(v, 0, 1000, &hops) < 0)
        hops = MAX_HOPS;
    if (hops >= MAX_HOPS)
        return -1;
    const char *q = strchr(r->raw, '?');
    size_t plen = q ? (size_t)(q - r->raw) : strlen(r->raw);
    int n = snprintf(out, cap, "%s%.*s", base, (int)plen, r->raw);
    if (n < 0 || (size_t)n >= cap)
        return -1;
    size_t len = (size_t)n;
    char sep = '?';
    for (const char *p = q ? q + 1 : NULL; p && *p;) {
        const char *e = strchr(p, '&');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l && !(l >= 7 && strncmp(p, "ms_hop=", 7) == 0) &&
            !(l == 6 && !strncmp(p, "ms_hop", 6))) {
            n = snprintf(out + len, cap - len, "%c%.*s", sep, (int)l, p);
            if (n < 0 || (size_t)n >= cap - len)
                return -1;
            len += (size_t)n;
            sep = '&';
        }
        p = e ? e + 1 : NULL;
    }
    n = snprintf(out + len, cap - len, "%cms_hop=%lld", sep, (long long)hops + 1);
    return n < 0 || (size_t)n >= cap - len ? -1 : 0;
}

/* The playback decision comes before any redirect (docs/security.md
 * "Playback"): a request this node would refuse is refused here, as it
 * would be on the target, rather than told where the stream runs. Only for
 * a stream configured here (otherwise this node cannot decide and the
 * target decides). 1 when refused (*ret queued). */
static int refused_here(ms_req_t *r, int archive, enum MHD_Result *ret)
{
    ms_stream_t *s = ms_streams_find(r->route.stream);
    if (!s)
        return 0;
    ms_stream_cfg_t cfg;
    memset(&cfg, 0, sizeof cfg);
    int rc = ms_stream_get_cfg(s, &cfg);
    ms_stream_unref(s);
    if (rc < 0)
        return 0;
    char tok[512];
    if (ms_api_query(r, "token", tok, sizeof tok) < 0)
        tok[0] = '\0';
    ms_play_decision_t d;
    rc = ms_api_playback_decide(r, &cfg, tok, archive ? MS_ACCESS_ARCHIVE : MS_ACCESS_LIVE,
                                MS_PLAY_ANY_TIME, &d, ret);
    ms_stream_cfg_free(&cfg);
    return rc < 0;
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
    char uid[64], http[MS_HTTP_BASE_MAX], server[64];
    if (ms_archive_view_elsewhere(r->route.stream, from, to, uid, sizeof uid, http, sizeof http,
                                  server, sizeof server) != 1 ||
        (m3u8 && ms_archive_remote_servers(uid, from, to) != 1))
        return 0;
    char loc[2048];
    if (location(r, http, loc, sizeof loc) < 0)
        return 0;
    if (refused_here(r, 1, ret))
        return 1;
    const char *hdrs[] = {"Location", loc, "Cache-Control", "no-store", NULL};
    *ret = ms_api_reply_error(r, 302, "this archive is held by another server", NULL, hdrs);
    return 1;
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
         id != MS_ROUTE_LIVE_FLV && id != MS_ROUTE_PREVIEW_MP4 &&
         (id != MS_ROUTE_SNAPSHOT || ms_api_archive_wants_jpeg(r))))
        return 0;
    ms_placement_view_t pv;
    if (ms_placement_view_get(r->route.stream, &pv) < 0 || pv.self_primary || !pv.primary_http[0])
        return 0; /* runs here, unassigned, or unknown: answered locally */
    if (refused_here(r, 0, ret))
        return 1;
    char loc[2048];
    if (location(r, pv.primary_http, loc, sizeof loc) < 0)
        return 0; /* too many hops (or too long): answered here */
    const char *hdrs[] = {"Location", loc, "Cache-Control", "no-store", NULL};
    *ret = ms_api_reply_error(r, 302, "the stream runs on another server", NULL, hdrs);
    return 1;
}
