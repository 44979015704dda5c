/* GET /api/v1/streams and GET /api/v1/streams/{id} (docs/api.md "REST API"):
 * each stream is its config object with a "status" object added. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "dvr/dvr.h"
#include "api/status_remote.h"
#include "node/placement_view.h"
#include "util/clock.h"

json_t *ms_api_status_json(const ms_stream_status_t *st)
{
    json_t *j = json_object();
    if (!j)
        return NULL;
    json_object_set_new(j, "state", json_string(ms_stream_state_name(st->src.state)));
    json_object_set_new(j, "characteristic",
                        json_string(ms_characteristic_name(st->src.characteristic)));
    json_object_set_new(j, "role", json_string(st->role[0] ? st->role : "primary"));
    json_object_set_new(j, "server", json_string(st->server));
    json_object_set_new(j, "backup_server",
                        st->backup_server[0] ? json_string(st->backup_server) : json_null());
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
    json_object_set_new(j, "sdp", json_string(st->src.sdp));
    /* extras */
    json_object_set_new(j, "reason", json_string(st->src.reason));
    json_object_set_new(j, "transport", json_string(st->src.transport));
    json_object_set_new(j, "reads", json_string(st->src.reads));
    json_object_set_new(j, "rtp_lost", json_integer((json_int_t)st->src.rtp_lost));
    json_object_set_new(j, "frames_dropped", json_integer((json_int_t)st->src.frames_dropped));
    json_object_set_new(j, "timestamp_jumps", json_integer((json_int_t)st->src.timestamp_jumps));
    json_object_set_new(j, "timestamp_resyncs",
                        json_integer((json_int_t)st->src.timestamp_resyncs));
    json_object_set_new(j, "keyframe_limit_hits",
                        json_integer((json_int_t)st->keyframe_limit_hits));
    json_object_set_new(j, "hls_ready", json_boolean(st->hls_ready));
    json_t *push = json_array(); /* push targets (docs/rtmp.md "Push") */
    for (int i = 0; push && i < st->npush; i++) {
        const ms_push_status_t *ps = &st->push[i];
        json_array_append_new(push, json_pack("{s:s,s:s,s:b,s:I,s:I,s:I,s:I,s:s?}", "url", ps->url,
                                              "state", ps->state, "healthy", ps->healthy,
                                              "bytes_sent", (json_int_t)ps->bytes_sent, "connects",
                                              (json_int_t)ps->connects, "failures",
                                              (json_int_t)ps->failures, "since",
                                              (json_int_t)(ps->since_us / 1000000), "last_error",
                                              ps->last_error[0] ? ps->last_error : NULL));
    }
    json_object_set_new(j, "push", push);
    /* what the stream's hub (GOP cache) and HLS output hold in memory:
     * counters kept up to date by the hub and the segmenter, no walk */
    json_object_set_new(j, "memory_bytes",
                        json_integer((json_int_t)(st->gop_bytes + st->hls_bytes)));
    return j;
}

/* Fields of a stream item beyond its config and status (docs/api.md):
 * "added" (auto: from a stream file; manual: written over the API),
 * "activation" (auto: enabled by its config; manual: disabled, waits for
 * an enable call). */
static void stream_extras(json_t *j, const ms_stream_cfg_t *cfg, const ms_placement_view_t *pv)
{
    /* in a cluster the state says (placement.source); a node without raft
     * runs only stream files */
    int from_file = pv ? pv->from_file : 1;
    json_object_set_new(j, "added", json_string(from_file ? "auto" : "manual"));
    json_object_set_new(j, "activation", json_string(cfg->enabled ? "auto" : "manual"));
}

/* The keys of a status object the primary's compact status replaces. */
static void status_merge(json_t *sj, json_t *remote)
{
    const char *k;
    json_t *v;
    json_object_foreach(remote, k, v) json_object_set(sj, k, v);
}

/* The figures of a stream nobody runs (unplaced, or a primary that does not
 * answer): no source, no outputs. */
static void status_idle(json_t *sj, const char *reason)
{
    json_object_set_new(sj, "state", json_string("inactive"));
    json_object_set_new(sj, "characteristic", json_string("disconnected"));
    json_object_set_new(sj, "reason", json_string(reason));
    static const char *const zero_r[] = {"bitrate_kbps", "output_kbps", NULL};
    static const char *const zero_i[] = {"clients", "width", "height", "uptime_s", NULL};
    for (const char *const *z = zero_r; *z; z++)
        json_object_set_new(sj, *z, json_real(0));
    for (const char *const *z = zero_i; *z; z++)
        json_object_set_new(sj, *z, json_integer(0));
    json_object_set_new(sj, "video_codec", json_string(""));
    json_object_set_new(sj, "audio_codec", json_string(""));
    json_object_set_new(sj, "hls_ready", json_false());
}

/* Turns sj (the local status) into the cluster's view (docs/api.md
 * "Status"): state and figures as the primary sees them, role/server/
 * backup_server from the placement, and status.local: what this node
 * holds. pv: the stream's placement, NULL when the node runs no cluster. */
static void status_cluster(json_t *sj, const ms_stream_cfg_t *cfg, const ms_placement_view_t *pv)
{
    const char *self = ms_api_cfg() ? ms_api_cfg()->name : "";
    const char *lstate = json_string_value(json_object_get(sj, "state"));
    const char *lrole = "primary";
    int64_t age = 0;
    if (!pv) {
        json_object_set_new(
            sj, "local", json_pack("{s:s,s:s}", "state", lstate ? lstate : "none", "role", lrole));
        json_object_set_new(sj, "age_ms", json_integer(0));
        return;
    }
    const char *crole = pv->transferred ? "migrated" : "primary";
    if (pv->self_primary)
        lrole = crole;
    else if (pv->backup[0] && strcmp(pv->backup, self) == 0)
        lrole = "secondary";
    else
        lrole = "none";
    /* a node neither primary nor backup holds a suspended copy: "none";
     * a copy running there anyway (a view catching up) shows as it is */
    int none = strcmp(lrole, "none") == 0 && (!lstate || strcmp(lstate, "suspend") == 0);
    json_object_set_new(
        sj, "local",
        json_pack("{s:s,s:s}", "state", none ? "none" : (lstate ? lstate : "none"), "role", lrole));
    json_object_set_new(sj, "role", json_string(crole));
    json_object_set_new(sj, "server", json_string(pv->primary));
    json_object_set_new(sj, "backup_server", pv->backup[0] ? json_string(pv->backup) : json_null());
    if (!pv->primary[0]) { /* unplaced: the leader's reason, the same everywhere */
        status_idle(sj, pv->reason[0] ? pv->reason : "no server runs the stream");
    } else if (!pv->self_primary) {
        const char *why = NULL;
        json_t *rs = ms_status_remote_get(pv->primary, pv->primary_http, cfg->uid, &age, &why);
        if (rs) {
            status_merge(sj, rs);
        } else {
            char r[200];
            snprintf(r, sizeof r, "primary %s %s", pv->primary,
                     strcmp(why, "not running") == 0 ? "does not run it yet" : "does not answer");
            status_idle(sj, r);
            json_object_set_new(
                sj, "state",
                json_string(strcmp(why, "not running") == 0 ? "initialization" : "inactive"));
        }
        json_decref(rs);
    }
    json_object_set_new(sj, "age_ms", json_integer(age));
}

/* Config + status of s; cfg_out receives a copy for filtering when non-NULL
 * (it must then be freed by the caller). */
static json_t *stream_json(ms_stream_t *s, ms_stream_cfg_t *cfg_out)
{
    ms_stream_cfg_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    if (ms_stream_get_cfg(s, &cfg) < 0)
        return NULL;
    ms_stream_status_t *st = calloc(1, sizeof(*st));
    if (!st) {
        ms_stream_cfg_free(&cfg);
        return NULL;
    }
    ms_stream_get_status(s, st);
    json_t *j = ms_stream_cfg_to_json(&cfg);
    json_t *sj = ms_api_status_json(st);
    if (!j || !sj) {
        json_decref(j);
        json_decref(sj);
        j = NULL;
    } else {
        ms_placement_view_t pv;
        int in_view = ms_placement_view_get(cfg.uid, &pv) == 0;
        status_cluster(sj, &cfg, in_view ? &pv : NULL);
        json_object_set_new(j, "status", sj);
        stream_extras(j, &cfg, in_view ? &pv : NULL);
    }
    free(st);
    if (cfg_out)
        *cfg_out = cfg;
    else
        ms_stream_cfg_free(&cfg);
    return j;
}

json_t *ms_api_stream_json(ms_stream_t *s)
{
    return stream_json(s, NULL);
}

typedef struct {
    char name[128];
    char role[128];
    char state[128];
    int dvr, audio;
} filters_t;

static int get_filter(ms_req_t *r, const char *key, char *out, size_t cap)
{
    int n = ms_api_query(r, key, out, cap);
    if (n == -ENOENT) {
        out[0] = '\0';
        return 0;
    }
    return n < 0 ? n : 0;
}

static int get_flag(ms_req_t *r, const char *key, int *out)
{
    char v[8];
    int n = ms_api_query(r, key, v, sizeof(v));
    *out = -1;
    if (n == -ENOENT)
        return 0;
    if (n < 0)
        return n;
    if (strcmp(v, "1") == 0 || strcmp(v, "true") == 0)
        *out = 1;
    else if (strcmp(v, "0") == 0 || strcmp(v, "false") == 0)
        *out = 0;
    else
        return -EINVAL;
    return 0;
}

/* 1 when every comma-separated item of v is one of allowed (NULL-ended). */
static int csv_valid(const char *v, const char *const *allowed)
{
    while (*v) {
        size_t n = strcspn(v, ",");
        int ok = 0;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = strlen(*a) == n && strncmp(*a, v, n) == 0;
        if (!ok)
            return 0;
        v += n;
        if (*v == ',')
            v++;
    }
    return 1;
}

/* st: the stream's status object (the cluster's view: role and state are
 * the same on every node). */
static int matches(const filters_t *f, const ms_stream_cfg_t *c, json_t *st)
{
    const char *role = json_string_value(json_object_get(st, "role"));
    const char *state = json_string_value(json_object_get(st, "state"));
    if (f->name[0] && !strstr(c->name, f->name))
        return 0;
    if (f->role[0] && !ms_url_csv_has(f->role, role ? role : ""))
        return 0;
    if (f->state[0] && !ms_url_csv_has(f->state, state ? state : ""))
        return 0;
    if (f->dvr >= 0 && (c->dvr_enabled != 0) != f->dvr)
        return 0;
    if (f->audio >= 0 && ((c->channels & MS_CHANNEL_AUDIO) != 0) != f->audio)
        return 0;
    return 1;
}

enum MHD_Result ms_api_streams_list(ms_req_t *r)
{
    filters_t f;
    if (get_filter(r, "name", f.name, sizeof(f.name)) < 0)
        return ms_api_reply_error(r, 400, "bad filter", "name", NULL);
    static const char *const roles[] = {"primary", "secondary", "migrated", NULL};
    static const char *const states[] = {"empty",    "initialization", "active",
                                         "inactive", "suspend",        NULL};
    if (get_filter(r, "role", f.role, sizeof(f.role)) < 0 || !csv_valid(f.role, roles))
        return ms_api_reply_error(r, 400, "must be a list of primary, secondary, migrated", "role",
                                  NULL);
    if (get_filter(r, "state", f.state, sizeof(f.state)) < 0 || !csv_valid(f.state, states))
        return ms_api_reply_error(
            r, 400, "must be a list of empty, initialization, active, inactive, suspend", "state",
            NULL);
    if (get_flag(r, "dvr", &f.dvr) < 0)
        return ms_api_reply_error(r, 400, "must be 0 or 1", "dvr", NULL);
    if (get_flag(r, "audio", &f.audio) < 0)
        return ms_api_reply_error(r, 400, "must be 0 or 1", "audio", NULL);

    ms_stream_t **list = NULL;
    size_t n = ms_streams_list(&list);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        ms_stream_cfg_t cfg;
        memset(&cfg, 0, sizeof(cfg));
        json_t *j = arr ? stream_json(list[i], &cfg) : NULL;
        if (j) {
            if (matches(&f, &cfg, json_object_get(j, "status")))
                json_array_append_new(arr, j);
            else
                json_decref(j);
            ms_stream_cfg_free(&cfg);
        }
        ms_stream_unref(list[i]);
    }
    free(list);
    if (!arr)
        return ms_api_reply_error(r, 500, "out of memory", NULL, NULL);
    return ms_api_reply_json(r, 200, json_pack("{s:o}", "streams", arr), NULL);
}

enum MHD_Result ms_api_stream_get(ms_req_t *r)
{
    ms_stream_t *s = ms_streams_find(r->route.stream);
    if (!s)
        return ms_api_reply_error(r, 404, "unknown stream", "id", NULL);
    json_t *j = ms_api_stream_json(s);
    ms_stream_unref(s);
    if (!j)
        return ms_api_reply_error(r, 500, "out of memory", NULL, NULL);
    /* cpanel Overview of a recording stream (docs/dvr.md "Status"). */
    const char *uid = json_string_value(json_object_get(j, "uid"));
    json_t *st = json_object_get(j, "status"), *dvr = NULL;
    if (uid && json_is_object(st) && ms_dvr_status(uid, &dvr) == 0) {
        /* status.local.archive: this node holds recordings of it (the
         * same index query; the list leaves it out) */
        json_object_set_new(json_object_get(st, "local"), "archive",
                            json_boolean(json_integer_value(json_object_get(dvr, "chunks")) > 0));
        if (json_is_true(json_object_get(json_object_get(j, "dvr"), "enabled")))
            json_object_set_new(st, "dvr", dvr);
        else
            json_decref(dvr);
    }
    return ms_api_reply_json(r, 200, j, NULL);
}
