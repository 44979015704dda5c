/* REST calls on /servers: get, put, drain and delete (cluster_int.h,
 * docs/api.md). Control loop. */
#include "raft/commands.h"
#include "node/cluster/cluster_int.h"

/* ---- servers -------------------------------------------------------------- */

static json_t *raft_roles(void)
{
    json_t *info = ms_raft_info_json(ms_cl.raft), *m, *roles = json_object();
    size_t i;
    uint64_t lid =
        (uint64_t)json_integer_value(json_object_get(json_object_get(info, "leader"), "id"));
    json_array_foreach(json_object_get(info, "members"), i, m)
    {
        char k[32];
        uint64_t id = (uint64_t)json_integer_value(json_object_get(m, "id"));
        snprintf(k, sizeof k, "%" PRIu64, id);
        json_object_set_new(
            roles, k,
            json_string(id == lid ? "leader" : json_string_value(json_object_get(m, "role"))));
    }
    json_decref(info);
    return roles;
}

/* lage: how long ago this node last heard from the raft leader (0 on
 * the leader itself, -1 when unknown). The leader writes its own report
 * only on a notable change or every LEADER_REPORT_MAX_MS, so its
 * report_age_ms is the smaller of its report's age and lage: the
 * age of the latest sign of life, as for the others. */
static json_t *server_view(json_t *s, json_t *roles, int64_t now, int64_t lage)
{
    json_t *o = json_deep_copy(s);
    char k[32];
    snprintf(k, sizeof k, "%" JSON_INTEGER_FORMAT, json_integer_value(json_object_get(s, "id")));
    json_t *role = json_object_get(roles, k);
    json_object_set_new(o, "raft_role", role ? json_incref(role) : json_string("none"));
    json_object_set_new(
        o, "draining",
        json_boolean(cl_server_draining(json_string_value(json_object_get(s, "name")))));
    json_object_set_new(o, "id", json_string(k));
    json_t *lr = json_object_get(s, "last_report_ms");
    if (json_is_integer(lr)) {
        int64_t age = now - json_integer_value(lr);
        const char *rs = json_string_value(role);
        if (lage >= 0 && rs && strcmp(rs, "leader") == 0 && lage < age)
            age = lage;
        json_object_set_new(o, "report_age_ms", json_integer(age));
    } else {
        json_object_set_new(o, "report_age_ms", json_null());
    }
    return o;
}

static int64_t leader_age(void)
{
    if (ms_raft_is_leader(ms_cl.raft))
        return 0;
    int64_t contact = ms_raft_leader_contact_ms(ms_cl.raft, NULL);
    return contact ? ms_mono_ms() - contact : -1;
}

void cl_servers_get(ms_cluster_job_t *j)
{
    json_t *list = cl_state_servers(), *roles = raft_roles(), *s;
    int64_t now = cl_wall_ms();
    size_t i;
    if (j->id[0]) {
        json_array_foreach(list, i,
                           s) if (strcmp(json_string_value(json_object_get(s, "name")), j->id) == 0)
        {
            cl_job_reply(j, 200, server_view(s, roles, now, leader_age()));
            json_decref(list);
            json_decref(roles);
            return;
        }
        cl_job_reply(j, 404, json_pack("{s:s,s:s}", "error", "unknown server", "field", "name"));
    } else {
        json_t *arr = json_array();
        int64_t la = leader_age();
        json_array_foreach(list, i, s) json_array_append_new(arr, server_view(s, roles, now, la));
        cl_job_reply(j, 200, json_pack("{s:o}", "servers", arr));
    }
    json_decref(list);
    json_decref(roles);
}

void cl_servers_put(ms_cluster_job_t *j)
{
    json_t *o;
    if (cl_body_json(j, &o) < 0)
        return;
    json_t *name = json_string(j->id);
    json_t *s = cl_server_by("name", name);
    json_decref(name);
    if (!s) {
        json_decref(o);
        cl_job_reply(j, 404, json_pack("{s:s,s:s}", "error", "unknown server", "field", "name"));
        return;
    }
    json_t *args =
        json_pack("{s:O,s:O,s:O,s:O,s:O,s:O,s:O}", "id", json_object_get(s, "id"), "name",
                  json_object_get(s, "name"), "addresses", json_object_get(s, "addresses"), "group",
                  json_object_get(s, "group"), "distribution", json_object_get(s, "distribution"),
                  "stream_limit", json_object_get(s, "stream_limit"), "bitrate_limit_kbps",
                  json_object_get(s, "bitrate_limit_kbps"));
    json_object_set_new(args, "distribution",
                        json_boolean(json_integer_value(json_object_get(s, "distribution"))));
    json_decref(s);
    static const char *const keys[] = {"group", "distribution", "stream_limit",
                                       "bitrate_limit_kbps"};
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        size_t i;
        for (i = 0; i < 4; i++)
            if (strcmp(k, keys[i]) == 0)
                break;
        if (i == 4) {
            cl_job_reply(j, 400, json_pack("{s:s,s:s}", "error", "unknown key", "field", k));
            json_decref(o);
            json_decref(args);
            return;
        }
        json_object_set(args, k, v);
    }
    json_decref(o);
    if (cl_cluster_write(cl_cmd_with_req("server_upsert", args, j->req_key), API_DEADLINE_MS,
                         cl_job_write_cb, j) < 0)
        cl_job_reply(j, 500, json_pack("{s:s}", "error", "out of memory"));
}

/* POST /servers/{name}/drain and /undrain: the setting drain.{name} set
 * (true) or deleted; once applied, the answer is the server's view (with
 * "draining"). The leader's duties then hand its primaries to their backups
 * (or place them again) and place nothing more there (node/placement.c). */
static void drain_write_cb(void *ud, unsigned st, json_t *res)
{
    ms_cluster_job_t *j = ud;
    if (st != 200) {
        cl_job_reply(j, st, json_deep_copy(res));
        return;
    }
    cl_servers_get(j);
}

void cl_servers_drain(ms_cluster_job_t *j)
{
    json_t *name = json_string(j->id);
    json_t *s = cl_server_by("name", name);
    json_decref(name);
    if (!s) {
        cl_job_reply(j, 404, json_pack("{s:s,s:s}", "error", "unknown server", "field", "name"));
        return;
    }
    json_decref(s);
    if ((int)strlen(j->id) > DRAIN_NAME_MAX) {
        cl_job_reply(j, 400,
                     json_pack("{s:s,s:s}", "error",
                               "server names longer than 57 characters cannot be drained", "field",
                               "name"));
        return;
    }
    char k[160]; /* j->id: at most 127 bytes */
    snprintf(k, sizeof k, DRAIN_PREFIX "%s", j->id);
    int on = strcmp(j->action, "drain") == 0;
    MS_INFO(CTX, "server %s: %s", j->id, on ? "draining (placement keeps away)" : "undrained");
    json_t *cmd = cl_cmd_with_req(
        "setting_set", json_pack("{s:s,s:o}", "key", k, "value", on ? json_true() : json_null()),
        j->req_key);
    if (!cmd || cl_cluster_write(cmd, API_DEADLINE_MS, drain_write_cb, j) < 0)
        cl_job_reply(j, 500, json_pack("{s:s}", "error", "out of memory"));
}

/* DELETE /servers/{name} on the leader: move its streams, drop the row,
 * then remove it from raft. */
typedef struct {
    ms_cluster_job_t *job;
    uint64_t id;
    char name[MS_NAME_MAX];
    int pending, failed;
} rm_t;

/* Ends a removal: the server may be placed on again (ms_cl.removing). */
static void rm_free(rm_t *rm)
{
    ms_cl.removing[0] = '\0';
    free(rm);
}

static void rm_raft_cb(void *ud, int status)
{
    rm_t *rm = ud;
    if (status < 0)
        cl_job_reply(
            rm->job, 503,
            json_pack("{s:s,s:s}", "error", "raft remove failed", "reason", strerror(-status)));
    else
        cl_job_reply(rm->job, 200, json_pack("{s:b,s:s}", "ok", 1, "removed", rm->name));
    rm_free(rm);
}

static void drain_clear_cb(void *ud, unsigned st, json_t *res)
{
    (void)ud;
    if (st != 200)
        MS_WARN(CTX, "clearing the drain setting of a removed server refused (%u): %s", st,
                json_string_value(json_object_get(res, "error")));
}

static void rm_row_cb(void *ud, unsigned st, json_t *res)
{
    rm_t *rm = ud;
    if (st != 200 && st != 404) {
        cl_job_reply(rm->job, st, json_deep_copy(res));
        rm_free(rm);
        return;
    }
    /* a server added again under this name starts undrained */
    if ((int)strlen(rm->name) <= DRAIN_NAME_MAX && cl_server_draining(rm->name)) {
        char k[160];
        snprintf(k, sizeof k, DRAIN_PREFIX "%s", rm->name);
        json_t *cmd = ms_cmd_new("setting_set", json_pack("{s:s,s:n}", "key", k, "value"));
        if (cmd)
            cl_cluster_write(cmd, API_DEADLINE_MS, drain_clear_cb, NULL);
    }
    int r = ms_raft_remove(ms_cl.raft, rm->id, rm_raft_cb, rm);
    if (r < 0)
        rm_raft_cb(rm, r);
}

static void rm_moved_cb(void *ud, unsigned st, json_t *res)
{
    rm_t *rm = ud;
    (void)res;
    if (st != 200)
        rm->failed = 1;
    if (--rm->pending > 0)
        return;
    if (rm->failed) {
        cl_job_reply(rm->job, 503,
                     json_pack("{s:s}", "error", "could not move the server's streams"));
        rm_free(rm);
        return;
    }
    cl_cluster_write(ms_cmd_new("server_remove", json_pack("{s:s}", "name", rm->name)), 3000,
                     rm_row_cb, rm);
}

static void rm_barrier_cb(void *ud, int status);

void cl_servers_delete(ms_cluster_job_t *j)
{
    if (!ms_raft_is_leader(ms_cl.raft)) {
        char path[256];
        snprintf(path, sizeof path, "/api/v1/servers/%s", j->id);
        cl_to_leader(j, path);
        return;
    }
    json_t *name = json_string(j->id);
    json_t *s = cl_server_by("name", name);
    json_decref(name);
    if (!s) {
        cl_job_reply(j, 404, json_pack("{s:s,s:s}", "error", "unknown server", "field", "name"));
        return;
    }
    if (ms_cl.removing[0]) {
        json_decref(s);
        cl_job_reply(
            j, 409,
            json_pack("{s:s,s:s}", "error", "another server is being removed", "field", "name"));
        return;
    }
    rm_t *rm = calloc(1, sizeof *rm);
    if (!rm) {
        json_decref(s);
        cl_job_reply(j, 500, json_pack("{s:s}", "error", "out of memory"));
        return;
    }
    rm->job = j;
    rm->id = (uint64_t)json_integer_value(json_object_get(s, "id"));
    snprintf(rm->name, sizeof rm->name, "%.63s", j->id);
    json_decref(s);
    /* From now on the leader's duties place nothing on it; the barrier lets
     * the assignments they already submitted apply before the moves are
     * computed (else one landing after the moves kept a stream on it and
     * server_remove answered 409). */
    snprintf(ms_cl.removing, sizeof ms_cl.removing, "%s", rm->name);
    if (ms_raft_barrier(ms_cl.raft, rm_barrier_cb, rm) < 0)
        rm_barrier_cb(rm, -EAGAIN);
}

/* DELETE /servers/{name}, once earlier writes are applied: moves the
 * streams whose primary or backup the server is, then removes it. */
static void rm_barrier_cb(void *ud, int status)
{
    rm_t *rm = ud;
    if (status < 0) {
        cl_job_reply(rm->job, 503, json_pack("{s:s}", "error", "not the leader"));
        rm_free(rm);
        return;
    }
    /* streams: a fresh list (each move is counted in it for the next pick) */
    json_t *servers = cl_state_servers(), *streams = ms_fsm_list(ms_cl.fsm, "streams"), *st;
    size_t i;
    rm->pending = 1;
    json_array_foreach(streams, i, st)
    {
        json_t *pl = json_object_get(st, "placement");
        const char *p = json_string_value(json_object_get(pl, "primary"));
        const char *b = json_string_value(json_object_get(pl, "backup"));
        if ((p && strcmp(p, rm->name) == 0) || (b && strcmp(b, rm->name) == 0)) {
            const char *np = cl_pick_server(servers, streams, rm->name, cl_wall_ms());
            json_t *args = json_pack("{s:O,s:s?,s:n,s:s}", "stream", json_object_get(st, "uid"),
                                     "primary", np, "backup", "role", "primary");
            rm->pending++;
            if (np) { /* count it for the next pick */
                json_object_set_new(pl, "primary", json_string(np));
            }
            cl_cluster_write(ms_cmd_new("stream_assign", args), 3000, rm_moved_cb, rm);
        }
    }
    json_decref(servers);
    json_decref(streams);
    rm_moved_cb(rm, 200, NULL);
}
