/* REST calls on /streams: put, patch, actions (restart, enable,
 * disable, delete) and transfer (cluster_int.h, docs/api.md). Control
 * loop, except restart_work (thread pool). */
#include "node/cluster_http.h"
#include "node/uid.h"
#include "util/jsonmerge.h"
#include "node/cluster/cluster_int.h"

/* POST /streams, PUT /streams/{id} and the result of PATCH: o (taken) is
 * validated with the config parser. The read-only members a GET answers
 * ("status", "placement", "added", "activation": docs/api.md) are ignored,
 * so GET -> edit -> PUT round-trips. */
static void stream_put_obj(ms_cluster_job_t *j, json_t *o)
{
    static const char *const read_only[] = {"status", "placement", "added", "activation"};
    for (size_t i = 0; i < sizeof read_only / sizeof *read_only; i++)
        json_object_del(o, read_only[i]);
    json_t *cur = j->id[0] ? ms_fsm_get_stream(ms_cl.fsm, j->id) : NULL;
    if (j->id[0] && !cur) {
        json_decref(o);
        cl_job_reply(j, 404, json_pack("{s:s,s:s}", "error", "unknown stream", "field", "id"));
        return;
    }
    if (cur) {
        const char *uid = json_string_value(json_object_get(cur, "uid"));
        json_t *bu = json_object_get(o, "uid");
        if (bu && (!json_is_string(bu) || strcmp(json_string_value(bu), uid) != 0)) {
            json_decref(o);
            json_decref(cur);
            cl_job_reply(j, 400,
                         json_pack("{s:s,s:s}", "error", "uid cannot change", "field", "uid"));
            return;
        }
        json_object_set_new(o, "uid", json_string(uid));
        json_decref(cur);
    } else if (json_is_string(json_object_get(o, "uid")) && !j->req_seen &&
               cl_stream_uid_exists(json_string_value(json_object_get(o, "uid")))) {
        /* POST creates: an existing uid is not overwritten (PUT updates) */
        json_decref(o);
        cl_job_reply(
            j, 409,
            json_pack("{s:s,s:s}", "error", "a stream with this uid exists", "field", "uid"));
        return;
    } else if (!json_object_get(o, "uid")) {
        char uid[MS_UID_LEN];
        if (j->req_id[0])
            ms_uid_derive("api-stream", j->req_id, uid);
        else
            ms_uid_random(uid);
        json_object_set_new(o, "uid", json_string(uid));
    }
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    ms_stream_cfg_t cfg;
    ms_errlist_t errs = {0};
    int r = text ? ms_stream_cfg_parse(text, strlen(text), "body", &cfg, &errs) : -1;
    free(text);
    if (r < 0) {
        /* "body: KEY: reason" -> field KEY */
        const char *line = errs.n ? errs.lines[0] : "body: : invalid stream";
        const char *k = strstr(line, ": ");
        char field[128] = "";
        const char *reason = line;
        if (k) {
            const char *k2 = strstr(k + 2, ": ");
            if (k2) {
                snprintf(field, sizeof field, "%.*s", (int)(k2 - k - 2), k + 2);
                reason = k2 + 2;
            }
        }
        cl_job_reply(j, 400, json_pack("{s:s,s:s}", "error", reason, "field", field));
        ms_errlist_free(&errs);
        ms_stream_cfg_free(&cfg);
        return;
    }
    ms_errlist_free(&errs);
    json_t *sj = ms_stream_cfg_to_json(&cfg);
    ms_stream_cfg_free(&cfg);
    json_t *cmd = cl_cmd_with_req(
        "stream_upsert", json_pack("{s:o,s:s}", "stream", sj, "added", "manual"), j->req_key);
    if (cl_cluster_write(cmd, API_DEADLINE_MS, cl_job_write_cb, j) < 0)
        cl_job_reply(j, 500, json_pack("{s:s}", "error", "out of memory"));
}

void cl_stream_put(ms_cluster_job_t *j)
{
    json_t *o;
    if (cl_body_json(j, &o) < 0)
        return;
    stream_put_obj(j, o);
}

/* PATCH /streams/{id}: a JSON merge patch (RFC 7396) on the stored stream
 * object (without "placement"; keys stored as null are absent), then
 * validated and written like PUT. */
void cl_stream_patch(ms_cluster_job_t *j)
{
    json_t *patch;
    if (cl_body_json(j, &patch) < 0)
        return;
    json_t *cur = ms_fsm_get_stream(ms_cl.fsm, j->id);
    if (!cur) {
        json_decref(patch);
        cl_job_reply(j, 404, json_pack("{s:s,s:s}", "error", "unknown stream", "field", "id"));
        return;
    }
    json_object_del(cur, "placement");
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(cur, tmp, k, v)
    {
        if (json_is_null(v))
            json_object_del(cur, k);
    }
    json_t *o = ms_json_merge_patch(cur, patch);
    json_decref(cur);
    json_decref(patch);
    if (!json_is_object(o)) {
        json_decref(o);
        cl_job_reply(j, 400, json_pack("{s:s}", "error", "the patch nests too deep"));
        return;
    }
    stream_put_obj(j, o);
}

static void restart_work(uv_work_t *req);
static void restart_done(uv_work_t *req, int status);

static void stream_transfer(ms_cluster_job_t *j, json_t *cur);

void cl_stream_action(ms_cluster_job_t *j)
{
    json_t *cur = ms_fsm_get_stream(ms_cl.fsm, j->id);
    if (!cur) {
        cl_job_reply(j, 404, json_pack("{s:s,s:s}", "error", "unknown stream", "field", "id"));
        return;
    }
    const char *uid = json_string_value(json_object_get(cur, "uid"));
    json_t *cmd = NULL;
    if (strcmp(j->action, "transfer") == 0) {
        stream_transfer(j, cur); /* takes cur */
        return;
    }
    if (strcmp(j->action, "update-indexes") == 0) {
        /* a state command every node reacts to (tick_run): each republishes
         * the ranges of its local archive at once */
        cmd = cl_cmd_with_req(
            "setting_set",
            json_pack("{s:s,s:I}", "key", "update_indexes", "value", (json_int_t)cl_wall_ms()),
            j->req_key);
        json_decref(cur);
        if (!cmd || cl_cluster_write(cmd, API_DEADLINE_MS, cl_job_write_cb, j) < 0)
            cl_job_reply(j, 500, json_pack("{s:s}", "error", "out of memory"));
        return;
    }
    if (strcmp(j->method, "DELETE") == 0) {
        /* a stream of a node's streams_dir would come back at its next
         * reload: the file is the thing to delete */
        json_t *src = json_object_get(json_object_get(cur, "placement"), "source");
        const char *file = json_string_value(json_object_get(src, "file"));
        if (file) {
            char msg[600];
            snprintf(msg, sizeof msg,
                     "defined by %s in streams_dir of node %s; delete the file instead", file,
                     json_string_value(json_object_get(src, "node"))
                         ? json_string_value(json_object_get(src, "node"))
                         : "?");
            cl_job_reply(j, 409,
                         json_pack("{s:s,s:s,s:O}", "error", msg, "file", file, "node",
                                   json_object_get(src, "node") ? json_object_get(src, "node")
                                                                : json_null()));
            json_decref(cur);
            return;
        }
        cmd = cl_cmd_with_req("stream_remove", json_pack("{s:s}", "stream", uid), j->req_key);
    } else if (strcmp(j->action, "enable") == 0 || strcmp(j->action, "disable") == 0) {
        cmd = cl_cmd_with_req(
            "stream_set_state",
            json_pack("{s:s,s:b}", "stream", uid, "enabled", strcmp(j->action, "enable") == 0),
            j->req_key);
    } else if (strcmp(j->action, "restart") == 0) {
        /* not a state change: done by the server that runs the stream */
        const char *prim =
            json_string_value(json_object_get(json_object_get(cur, "placement"), "primary"));
        json_t *row = cl_my_row();
        const char *me = json_string_value(json_object_get(row, "name"));
        if (prim && me && strcmp(prim, me) == 0) {
            int r = ms_reconciler_restart(ms_cl.rec, uid);
            cl_job_reply(j, r == 0 ? 200 : 409,
                         r == 0 ? json_pack("{s:b,s:s}", "ok", 1, "server", me)
                                : json_pack("{s:s}", "error", "the stream is not running here"));
        } else if (!prim) {
            cl_job_reply(j, 409, json_pack("{s:s}", "error", "the stream is not assigned yet"));
        } else if (j->internal) {
            cl_job_reply(j, 409, json_pack("{s:s}", "error", "the stream is not running here"));
        } else {
            json_t *srv =
                cl_server_by("name", json_object_get(json_object_get(cur, "placement"), "primary"));
            proxy_t *p = calloc(1, sizeof *p);
            if (p && srv) {
                p->job = j;
                cl_server_http(srv, p->base, sizeof p->base);
                snprintf(p->method, sizeof p->method, "POST");
                snprintf(p->path, sizeof p->path, "/api/v1/streams/%s/restart", uid);
                p->work.data = p;
                ms_cl.outstanding++;
                uv_queue_work(ms_cl.loop, &p->work, restart_work, restart_done);
            } else {
                free(p);
                cl_job_reply(j, 503, json_pack("{s:s}", "error", "server unknown"));
            }
            json_decref(srv);
        }
        json_decref(row);
        json_decref(cur);
        return;
    }
    json_decref(cur);
    if (!cmd) {
        cl_job_reply(j, 404, json_pack("{s:s}", "error", "not found"));
        return;
    }
    if (cl_cluster_write(cmd, API_DEADLINE_MS, cl_job_write_cb, j) < 0)
        cl_job_reply(j, 500, json_pack("{s:s}", "error", "out of memory"));
}

static void restart_work(uv_work_t *req)
{
    proxy_t *p = req->data;
    p->rc = ms_chttp_request(p->base, p->method, p->path, NULL, 0, ms_cl.cfg->secret, cl_my_id(),
                             FWD_TIMEOUT_MS, &p->status, &p->resp);
}

static void restart_done(uv_work_t *req, int status)
{
    proxy_t *p = req->data;
    (void)status;
    json_t *body = p->rc == 0 && p->resp ? json_loads(p->resp, 0, NULL) : NULL;
    if (p->rc < 0 || !body)
        cl_job_reply(p->job, 503,
                     json_pack("{s:s}", "error", "the stream's server does not answer"));
    else
        cl_job_reply(p->job, (unsigned)p->status, body);
    free(p->resp);
    free(p);
    ms_cl.outstanding--;
}

/* POST /streams/{id}/transfer, body optional (docs/api.md): {"cluster":
 * name} or {"server": name} (at most one; neither = an automatic search
 * excluding the current primary), "force": true (override the one-hour
 * cooldown, logged at WARN), "dry_run": true (answer the search's outcome
 * {"main", "additional", "rejected": [{"server", "reason"}]} and move
 * nothing). Any other key is 400 with its name in "field". Written as
 * stream_assign with role "migrated", transfer true (the FSM refuses a
 * second transfer within the hour unless force: 409 + time_left_s) and
 * if_primary (a concurrent failover wins). The archive stays where it is
 * (archive_locations keep every server's ranges). Takes cur. */
static void stream_transfer(ms_cluster_job_t *j, json_t *cur)
{
    json_t *body = NULL;
    const char *want = NULL, *target = NULL;
    int force = 0, dry = 0;
    const char *bad = NULL, *why = NULL;
    if (j->body && j->body_len) {
        json_error_t e;
        body = json_loadb(j->body, j->body_len, JSON_REJECT_DUPLICATES, &e);
        if (!json_is_object(body)) {
            bad = "body";
            why = "the body must be a JSON object: {\"cluster\"|\"server\": name, \"force\": "
                  "bool, \"dry_run\": bool}";
        }
        const char *k;
        json_t *v;
        json_object_foreach(json_is_object(body) ? body : NULL, k, v)
        {
            if (bad)
                break;
            if (strcmp(k, "cluster") == 0 || strcmp(k, "server") == 0) {
                if (!json_is_string(v) && !json_is_null(v)) {
                    bad = k;
                    why = "must be a name";
                } else if (k[0] == 'c') {
                    want = json_string_value(v);
                } else {
                    target = json_string_value(v);
                }
            } else if (strcmp(k, "force") == 0 || strcmp(k, "dry_run") == 0) {
                if (!json_is_boolean(v)) {
                    bad = k;
                    why = "must be true or false";
                } else if (k[0] == 'f') {
                    force = json_is_true(v);
                } else {
                    dry = json_is_true(v);
                }
            } else {
                bad = k;
                why = "unknown key (expected cluster, server, force, dry_run)";
            }
        }
        if (!bad && want && target) {
            bad = "server";
            why = "give either cluster or server, not both";
        }
    }
    if (bad) {
        cl_job_reply(j, 400, json_pack("{s:s,s:s}", "error", why, "field", bad));
        json_decref(body);
        json_decref(cur);
        return;
    }
    if (want) {
        json_t *cls = cl_state_clusters(), *c;
        size_t i;
        int found = 0;
        json_array_foreach(cls, i, c) found |=
            strcmp(json_string_value(json_object_get(c, "name"))
                       ? json_string_value(json_object_get(c, "name"))
                       : "",
                   want) == 0;
        json_decref(cls);
        if (!found) {
            json_decref(body);
            json_decref(cur);
            cl_job_reply(j, 404,
                         json_pack("{s:s,s:s}", "error", "no such cluster", "field", "cluster"));
            return;
        }
    }
    if (target) {
        json_t *srv = cl_server_by("name", json_object_get(body, "server"));
        int found = srv != NULL;
        json_decref(srv);
        if (!found) {
            json_decref(body);
            json_decref(cur);
            cl_job_reply(j, 404,
                         json_pack("{s:s,s:s}", "error", "no such server", "field", "server"));
            return;
        }
    }
    const char *prim =
        json_string_value(json_object_get(json_object_get(cur, "placement"), "primary"));
    int64_t now = cl_wall_ms();
    cl_observe_reports();
    json_t *servers = cl_servers_copy(), *streams = cl_state_streams();
    json_t *groups = cl_state_groups(), *clusters = cl_state_clusters();
    cl_observed_ages(servers, now);
    ms_placement_opts_t po;
    cl_placement_opts(&po, now);
    json_t *found = target ? ms_placement_search_server(servers, groups ? groups : json_array(),
                                                        clusters ? clusters : json_array(), streams,
                                                        cur, target, &po)
                           : ms_placement_search(servers, groups ? groups : json_array(),
                                                 clusters ? clusters : json_array(), streams, cur,
                                                 want, prim, &po);
    json_decref(servers);
    json_decref(streams);
    json_decref(groups);
    json_decref(clusters);
    const char *np = json_string_value(json_object_get(found, "primary"));
    const char *sname = json_string_value(json_object_get(cur, "name"));
    int64_t last = json_integer_value(
        json_object_get(json_object_get(cur, "placement"), "transferred_at")); /* seconds */
    if (!found) {
        cl_job_reply(j, 500, json_pack("{s:s}", "error", "out of memory"));
    } else if (dry) {
        json_t *rep = json_pack(
            "{s:O,s:O,s:O}", "main", np ? json_object_get(found, "primary") : json_null(),
            "additional",
            np && json_object_get(found, "backup") ? json_object_get(found, "backup") : json_null(),
            "rejected", json_object_get(found, "rejected"));
        if (rep && !np)
            json_object_set(rep, "reason", json_object_get(found, "reason"));
        cl_job_reply(j, 200, rep);
    } else if (!np) {
        cl_job_reply(j, 409,
                     json_pack("{s:s,s:s?,s:O}", "error", "no qualifying server for the transfer",
                               "reason", json_string_value(json_object_get(found, "reason")),
                               "rejected", json_object_get(found, "rejected")));
    } else {
        json_t *args = json_pack(
            "{s:O,s:s,s:O,s:s,s:b,s:o,s:b}", "stream", json_object_get(cur, "uid"), "primary", np,
            "backup", json_object_get(found, "backup"), "role", "migrated", "transfer", 1,
            "if_primary", prim ? json_string(prim) : json_null(), "force", force);
        if (force)
            MS_WARN(CTX,
                    "stream %s: transfer forced by an administrator: the one-hour cooldown is "
                    "overridden (previous transfer %lld s ago)",
                    sname, last > 0 ? (long long)(now / 1000 - last) : -1LL);
        MS_INFO(CTX, "stream %s: transfer %s -> %s", sname, prim ? prim : "-", np);
        if (cl_cluster_write(cl_cmd_with_req("stream_assign", args, j->req_key), API_DEADLINE_MS,
                             cl_job_write_cb, j) < 0)
            cl_job_reply(j, 500, json_pack("{s:s}", "error", "out of memory"));
    }
    json_decref(found);
    json_decref(body);
    json_decref(cur);
}
