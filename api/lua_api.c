/* The Lua calls of the REST API (docs/lua.md, docs/api.md "Lua"), admin
 * authenticated like the rest of /api/v1:
 *   GET  /api/v1/lua                 the scripts that run and their hashes
 *   POST /api/v1/lua/reload          re-reads lua_dir; each file's result
 *   GET  /api/v1/lua/panel           the scripts' cpanel columns and fields
 *   ANY  /api/v1/lua/{name}/{path}   a route the script {name}.lua
 *                                    registered with ms.route (JSON in/out)
 * MHD threads. */
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "node/lua.h"

static enum MHD_Result no_engine(ms_req_t *r)
{
    return ms_api_reply_error(r, 503, "Lua is not running on this node", NULL, NULL);
}

enum MHD_Result ms_api_lua(ms_req_t *r)
{
    ms_lua_t *e = ms_lua_global();
    int get = strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0;
    if (r->nsegs == 3) {
        if (!get) {
            const char *hdrs[] = {"Allow", "GET, HEAD", NULL};
            return ms_api_reply_error(r, 405, "method not allowed", NULL, hdrs);
        }
        if (!e)
            return no_engine(r);
        json_t *j = ms_lua_status(e);
        return j ? ms_api_reply_json(r, 200, j, NULL)
                 : ms_api_reply_error(r, 500, "out of memory", NULL, NULL);
    }
    if (r->nsegs == 4 && strcmp(r->segs[3], "reload") == 0) {
        if (strcmp(r->method, "POST") != 0) {
            const char *hdrs[] = {"Allow", "POST", NULL};
            return ms_api_reply_error(r, 405, "method not allowed", NULL, hdrs);
        }
        if (!e)
            return no_engine(r);
        json_t *j = ms_lua_reload(e);
        return j ? ms_api_reply_json(r, 200, j, NULL)
                 : ms_api_reply_error(r, 500, "out of memory", NULL, NULL);
    }
    if (r->nsegs == 4 && strcmp(r->segs[3], "panel") == 0) {
        if (!get) {
            const char *hdrs[] = {"Allow", "GET, HEAD", NULL};
            return ms_api_reply_error(r, 405, "method not allowed", NULL, hdrs);
        }
        /* without an engine: no extensions (the cpanel asks every node) */
        json_t *j = e ? ms_lua_panel(e) : json_pack("{s:[],s:[]}", "columns", "fields");
        return j ? ms_api_reply_json(r, 200, j, NULL)
                 : ms_api_reply_error(r, 500, "out of memory", NULL, NULL);
    }
    if (!e)
        return no_engine(r);
    /* the path under the script: "/" and the decoded segments */
    char path[MS_URL_MAX + 2] = "/";
    size_t len = 1;
    for (int i = 4; i < r->nsegs; i++) {
        int n = snprintf(path + len, sizeof path - len, "%s%s", i > 4 ? "/" : "", r->segs[i]);
        if (n < 0 || (size_t)n >= sizeof path - len)
            return ms_api_reply_error(r, 414, "request target too long", NULL, NULL);
        len += (size_t)n;
    }
    char query[MS_URL_MAX + 1] = "";
    if (r->parts.query && r->parts.query_len < sizeof query) {
        memcpy(query, r->parts.query, r->parts.query_len);
        query[r->parts.query_len] = '\0';
    }
    json_t *out = NULL;
    int code =
        ms_lua_http(e, r->segs[3], r->method, path, query, r->peer, r->body, r->body_len, &out);
    if (code < 0)
        return ms_api_reply_error(r, 500, "out of memory", NULL, NULL);
    return ms_api_reply_json(r, (unsigned)code, out, NULL);
}
