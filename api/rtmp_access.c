/* Access control of RTMP players (api/rtmp_access.h). */
#include "api/rtmp_access.h"

#include <errno.h>
#include <string.h>

#include "api/access.h"
#include "node/config.h"
#include "node/streams.h"
#include "util/clock.h"
#include "util/urlquery.h"

int ms_rtmp_access_authorize_play(void *ud, const char *stream, const char *query,
                                  const struct sockaddr *peer, int64_t *expires)
{
    const ms_node_cfg_t *node = ud;
    *expires = 0;
    ms_stream_t *s = ms_streams_find(stream);
    if (!s)
        return -ENOENT;
    ms_stream_cfg_t cfg;
    if (ms_stream_get_cfg(s, &cfg) < 0) {
        ms_stream_unref(s);
        return -ENOENT;
    }
    char tok[1024] = "";
    if (query && query[0] && ms_url_query_get(query, strlen(query), "token", tok, sizeof tok) < 0)
        tok[0] = '\0';
    ms_play_req_t q = {
        .stream = &cfg,
        .node = node,
        .peer = peer,
        .token = tok,
        .mode = MS_ACCESS_LIVE,
        .at_ms = MS_PLAY_ANY_TIME,
        .protocol = "rtmp",
        .query = query ? query : "",
    };
    ms_play_decision_t d;
    int r = ms_playback_decide(&q, ms_wall_us() / 1000000, &d);
    if (r == 0)
        *expires = d.expires;
    ms_stream_cfg_free(&cfg);
    ms_stream_unref(s);
    return r == 0 ? 0 : r == -EACCES ? -EACCES : -ENOENT;
}
