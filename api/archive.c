/* Archive playback over HTTP and the DVR REST calls (docs/dvr.md):
 *   GET  /{stream}/archive-FROM-DURATION.m3u8 | archive-FROM-now.m3u8
 *   GET  /{stream}/archive-FROM-DURATION.mp4 (HTTP Range, RFC 7233)
 *   GET  /{stream}/archive-init-*.mp4, archive-seg-*.m4s (HLS media)
 *   GET  /{stream}/videoshot.jpg|preview.jpg?at=T
 *   GET  /api/v1/streams/{id}/ranges?from=&to=
 *   POST /api/v1/streams/{id}/events {"duration_s":30}
 * Every handler runs on an MHD thread: index queries and file reads block
 * that thread only, never a media loop. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "dvr/dvr.h"
#include "util/log.h"

enum MHD_Result ms_api_stream_ranges(ms_req_t *r)
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
    char v[32];
    int64_t from = 0, to = 0;
    enum MHD_Result ret;
    if (ms_api_query(r, "from", v, sizeof(v)) >= 0 &&
        ms_url_parse_i64(v, 0, INT64_MAX / 2000, &from) < 0) {
        ret = ms_api_reply_error(r, 400, "from: UTC seconds expected", "from", NULL);
        goto out;
    }
    if (ms_api_query(r, "to", v, sizeof(v)) >= 0 &&
        ms_url_parse_i64(v, 0, INT64_MAX / 2000, &to) < 0) {
        ret = ms_api_reply_error(r, 400, "to: UTC seconds expected", "to", NULL);
        goto out;
    }
    if (to > 0 && to < from) {
        ret = ms_api_reply_error(r, 400, "to is before from", "to", NULL);
        goto out;
    }
    json_t *j = NULL;
    rc = ms_dvr_ranges(cfg.uid, from, to, &j);
    if (rc < 0)
        ret = ms_api_reply_error(r, 503, "archive index unavailable", NULL, NULL);
    else
        ret = ms_api_reply_json(r, 200, j, NULL);
out:
    ms_stream_cfg_free(&cfg);
    return ret;
}

enum MHD_Result ms_api_stream_events(ms_req_t *r)
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
    enum MHD_Result ret;
    json_error_t jerr;
    json_t *body = r->body ? json_loadb(r->body, r->body_len, 0, &jerr) : NULL;
    json_t *d = body ? json_object_get(body, "duration_s") : NULL;
    if (!body || !json_is_object(body)) {
        ret = ms_api_reply_error(r, 400, "JSON object body expected", NULL, NULL);
        goto out;
    }
    if (!json_is_integer(d) || json_integer_value(d) <= 0 || json_integer_value(d) > 86400) {
        ret =
            ms_api_reply_error(r, 400, "duration_s: integer 1..86400 expected", "duration_s", NULL);
        goto out;
    }
    if (!cfg.dvr_enabled || cfg.dvr_mode != MS_DVR_EVENT) {
        ret = ms_api_reply_error(r, 409, "stream does not record in event mode", "dvr.mode", NULL);
        goto out;
    }
    rc = ms_dvr_event(cfg.uid, (int64_t)json_integer_value(d));
    if (rc == -ENOENT)
        ret = ms_api_reply_error(r, 409, "stream is not recording (not running here)", NULL, NULL);
    else if (rc == -EINVAL)
        ret = ms_api_reply_error(r, 400, "bad duration_s", "duration_s", NULL);
    else if (rc < 0)
        ret = ms_api_reply_error(r, 500, "event failed", NULL, NULL);
    else
        ret = ms_api_reply_json(
            r, 200,
            json_pack("{s:s,s:I}", "uid", cfg.uid, "duration_s", (json_int_t)json_integer_value(d)),
            NULL);
out:
    json_decref(body);
    ms_stream_cfg_free(&cfg);
    return ret;
}

int ms_api_archive_wants_jpeg(ms_req_t *r)
{
    char v[32];
    return ms_api_query(r, "at", v, sizeof(v)) != -ENOENT;
}

enum MHD_Result ms_api_archive_jpeg(ms_req_t *r)
{
    return ms_api_reply_error(r, 501, "not implemented yet", NULL, NULL);
}

enum MHD_Result ms_api_archive(ms_req_t *r)
{
    return ms_api_reply_error(r, 501, "not implemented yet", NULL, NULL);
}
