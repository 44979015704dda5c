/* Playback on a node that does not run the stream (docs/cluster.md
 * "Playback on any node"): live HLS (playlist, segments, parts, init),
 * live.mp4 and the live JPEGs answer 302 Found (RFC 9110 section 15.4.3)
 * to the same target (path and query, so ?token= is kept) on the http
 * address of the stream's primary. An HLS player asks again for every
 * playlist reload (RFC 8216 section 6.3.4) and so follows a failover:
 * after it, the old URL redirects to the new primary. */
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "node/cluster.h"
#include "node/placement_view.h"

int ms_api_redirect_route(ms_req_t *r, enum MHD_Result *ret)
{
    ms_route_id_t id = r->route.id;
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
