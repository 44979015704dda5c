/* Playback sessions of a stream on this node (docs/api.md "Sessions"):
 *   GET    /api/v1/streams/{id}/sessions         the list
 *   DELETE /api/v1/streams/{id}/sessions/{sid}   ends one
 * Admin calls (server.c authenticates them). The table is the node's
 * (api/clients.c): in a cluster a node answers with its own viewers only. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"

static json_t *session_json(const ms_session_info_t *si)
{
    return json_pack("{s:s,s:s,s:s,s:s,s:I,s:I}", "id", si->id, "protocol", si->protocol, "ip",
                     si->ip, "user_agent", si->user_agent, "since", (json_int_t)si->since, "bytes",
                     (json_int_t)si->bytes);
}

enum MHD_Result ms_api_stream_sessions(ms_req_t *r)
{
    ms_stream_t *s = ms_streams_find(r->route.stream);
    if (!s)
        return ms_api_reply_error(r, 404, "unknown stream", NULL, NULL);
    ms_stream_cfg_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    int rc = ms_stream_get_cfg(s, &cfg);
    ms_stream_unref(s);
    if (rc < 0)
        return ms_api_reply_error(r, 500, "out of memory", NULL, NULL);
    char uid[64];
    snprintf(uid, sizeof uid, "%s", cfg.uid);
    ms_stream_cfg_free(&cfg);

    if (strcmp(r->method, "DELETE") == 0) {
        rc = ms_api_sessions_end(uid, r->route.name);
        if (rc == -ENOENT)
            return ms_api_reply_error(r, 404, "unknown session", NULL, NULL);
        if (rc < 0)
            return ms_api_reply_error(r, 500, "out of memory", NULL, NULL);
        return ms_api_reply_text(r, 204, "text/plain", "", 0, NULL);
    }
    ms_session_info_t *v = NULL;
    size_t n = 0;
    json_t *arr = json_array();
    if (!arr || ms_api_sessions_list(uid, &v, &n) < 0) {
        json_decref(arr);
        return ms_api_reply_error(r, 500, "out of memory", NULL, NULL);
    }
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, session_json(&v[i]));
    free(v);
    return ms_api_reply_json(r, 200, arr, NULL);
}
