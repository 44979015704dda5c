/* REST calls on /cluster and the named tables, the req_id check, and the
 * job queue: ms_cluster_post (any thread) and its dispatch on the control
 * loop (cluster_int.h, docs/api.md). */
#include <sqlite3.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "node/cluster/cluster_int.h"

/* ---- cluster -------------------------------------------------------------- */

static json_t *cluster_view(void)
{
    json_t *o = ms_raft_info_json(ms_cl.raft);
    json_object_set_new(o, "name", json_string(ms_cl.cfg->name));
    json_t *lid = json_object_get(json_object_get(o, "leader"), "id");
    json_t *ls = lid ? cl_server_by("id", lid) : NULL;
    if (ls)
        json_object_set_new(json_object_get(o, "leader"), "name", /* a copy: the reply leaves */
                            json_deep_copy(json_object_get(ls, "name"))); /* the loop */
    json_decref(ls);
    int voters = 0;
    json_t *m, *vs = json_array();
    size_t i;
    json_array_foreach(json_object_get(o, "members"), i, m)
    {
        json_t *srv = cl_server_by("id", json_object_get(m, "id"));
        if (srv)
            json_object_set_new(m, "name", json_deep_copy(json_object_get(srv, "name")));
        json_decref(srv);
        if (strcmp(json_string_value(json_object_get(m, "role")), "voter") == 0) {
            voters++;
            json_array_append(vs, json_object_get(m, "id"));
        }
    }
    json_object_set_new(o, "voter_ids", vs);
    /* the ids as strings, once the lookups by integer id are done */
    cl_id_to_string(o, "id");
    if (json_is_object(json_object_get(o, "leader")))
        cl_id_to_string(json_object_get(o, "leader"), "id");
    json_array_foreach(json_object_get(o, "members"), i, m) cl_id_to_string(m, "id");
    json_array_foreach(vs, i, m) json_array_set_new(vs, i, cl_id_json(m));
    return o;
}

/* POST /api/v1/cluster/submit (internal): a command from another node. */
static const char *const fwd_ops[] = {"server_upsert",     "server_report",
                                      "server_set_health", "stream_upsert",
                                      "stream_remove",     "stream_set_state",
                                      "stream_assign",     "archive_ranges_set",
                                      "group_upsert",      "group_remove",
                                      "cluster_upsert",    "cluster_remove",
                                      "setting_set",       NULL};

static int check_command(json_t *c, const char **why)
{
    const char *op = json_string_value(json_object_get(c, "op"));
    const char *rid = json_string_value(json_object_get(c, "req_id"));
    *why = NULL;
    if (!json_is_object(c))
        *why = "the command is not a JSON object";
    else if (json_integer_value(json_object_get(c, "v")) != MS_FSM_CMD_VERSION ||
             !json_is_integer(json_object_get(c, "v")))
        *why = "v: unsupported command version";
    else if (!json_is_integer(json_object_get(c, "ts")))
        *why = "ts: must be an integer";
    else if (!json_is_object(json_object_get(c, "args")))
        *why = "args: must be an object";
    else if (!rid || !rid[0] || strlen(rid) > 64 ||
             strspn(rid, "abcdefghijklmnopqrstuvwxyz"
                         "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                         "0123456789_-") != strlen(rid))
        *why = "req_id: 1-64 characters [A-Za-z0-9_-]";
    else if (!op)
        *why = "op: missing";
    else {
        int ok = 0;
        for (int i = 0; fwd_ops[i]; i++)
            ok |= strcmp(op, fwd_ops[i]) == 0;
        if (!ok)
            *why = "op: unknown or not accepted from another node";
        else if (json_object_size(c) != 5)
            *why = "unknown keys in the command";
    }
    if (!*why && strcmp(op, "stream_upsert") == 0) {
        json_t *s = json_deep_copy(json_object_get(json_object_get(c, "args"), "stream"));
        ms_stream_cfg_t cfg;
        if (!json_is_object(s) || ms_reconciler_cfg_from_state(s, &cfg) < 0)
            *why = "args.stream: not a valid stream";
        ms_stream_cfg_free(&cfg);
        json_decref(s);
    }
    return *why ? -EINVAL : 0;
}

static void nudge_cb(void *ud, int status)
{
    (void)ud;
    (void)status;
}

static void submit_job_cb(void *ud, unsigned st, json_t *res)
{
    ms_cluster_job_t *j = ud;
    /* Followers learn a new commit index with the next AppendEntries (up to
     * two heartbeats later); a barrier entry sends one at once, so the
     * forwarding follower applies the command (and answers) sooner. */
    if (st != 503 && ms_raft_is_leader(ms_cl.raft))
        ms_raft_barrier(ms_cl.raft, nudge_cb, NULL);
    if (st == 503) {
        cl_job_reply(j, 503, json_deep_copy(res));
        return;
    }
    cl_job_reply(j, 200,
                 json_pack("{s:O,s:I}", "result", res, "index", (json_int_t)cl_applied_index()));
}

static int member_id(uint64_t id)
{
    return ms_raft_member_role(ms_cl.raft, id) >= 0;
}

static void cluster_submit(ms_cluster_job_t *j)
{
    if (!ms_raft_is_leader(ms_cl.raft)) {
        cl_job_reply(j, 503, json_pack("{s:s}", "error", "not the leader"));
        return;
    }
    if (!member_id(j->from_node)) {
        cl_job_reply(j, 403, json_pack("{s:s}", "error", "the sending node is not a member"));
        return;
    }
    json_error_t e;
    json_t *c = j->body ? json_loadb(j->body, j->body_len, JSON_REJECT_DUPLICATES, &e) : NULL;
    const char *why = "the body is not JSON";
    if (!c || check_command(c, &why) < 0) {
        json_decref(c);
        cl_job_reply(j, 400, json_pack("{s:s}", "error", why));
        return;
    }
    json_decref(c);
    wop_t *w = calloc(1, sizeof *w);
    if (!w) {
        cl_job_reply(j, 500, NULL);
        return;
    }
    w->text = malloc(j->body_len + 1);
    memcpy(w->text, j->body, j->body_len);
    w->text[j->body_len] = '\0';
    w->len = j->body_len;
    w->deadline = ms_mono_ms() + 2000;
    w->cb = submit_job_cb;
    w->ud = j;
    uv_timer_init(ms_cl.loop, &w->timer);
    w->timer.data = w;
    ms_cl.outstanding++;
    if (ms_raft_submit(ms_cl.raft, w->text, w->len, cl_submit_cb, w) != 0)
        cl_wop_finish(w, 503, json_pack("{s:s}", "error", "not the leader"));
}

static void barrier_cb(void *ud, int status)
{
    ms_cluster_job_t *j = ud;
    if (status < 0) {
        cl_job_reply(j, 503, json_pack("{s:s}", "error", "leadership lost"));
        return;
    }
    cl_reconcile();
    j->proceed = 1;
    j->done(j);
}

/* GET/POST /groups, /clusters; GET/PUT/DELETE /{name} (docs/api.md): reads
 * from the local state, writes as group_upsert/group_remove and
 * cluster_upsert/cluster_remove (the FSM validates: CIDR subnets, servers
 * and group exist, 409 while referenced). */
static void named_crud(ms_cluster_job_t *j, const char *list, const char *up, const char *rm)
{
    if (strcmp(j->method, "GET") == 0 || strcmp(j->method, "HEAD") == 0) {
        json_t *all = ms_fsm_list(ms_cl.fsm, list), *o, *hit = NULL;
        size_t i;
        if (!all) {
            cl_job_reply(j, 500, json_pack("{s:s}", "error", "state unavailable"));
            return;
        }
        if (!j->id[0]) {
            cl_job_reply(j, 200, json_pack("{s:o}", list, all));
            return;
        }
        json_array_foreach(all, i, o) if (!hit && json_is_string(json_object_get(o, "name")) &&
                                          strcmp(json_string_value(json_object_get(o, "name")),
                                                 j->id) == 0) hit = json_incref(o);
        json_decref(all);
        if (hit)
            cl_job_reply(j, 200, hit);
        else
            cl_job_reply(j, 404, json_pack("{s:s,s:s}", "error", "not found", "field", "name"));
        return;
    }
    json_t *args = NULL;
    if (strcmp(j->method, "DELETE") == 0) {
        args = json_pack("{s:s}", "name", j->id);
    } else {
        if (cl_body_json(j, &args) < 0)
            return;
        if (j->id[0])
            json_object_set_new(args, "name", json_string(j->id));
        const char *m = json_string_value(json_object_get(args, "main"));
        const char *a = json_string_value(json_object_get(args, "additional"));
        const char *nm = json_string_value(json_object_get(args, "name"));
        if (strcmp(list, "clusters") == 0 && m && a && nm) /* make the pool rule visible */
            MS_INFO(CTX,
                    "cluster %s (main %s, additional %s) asked for: its servers take reserved "
                    "streams only; new unreserved streams go to the servers in no cluster",
                    nm, m, a);
    }
    if (cl_cluster_write(
            cl_cmd_with_req(strcmp(j->method, "DELETE") == 0 ? rm : up, args, j->req_key),
            API_DEADLINE_MS, cl_job_write_cb, j) < 0)
        cl_job_reply(j, 500, json_pack("{s:s}", "error", "out of memory"));
}

/* ---- dispatch ----------------------------------------------------------- */

/* X-MS-Req-Id (docs/api.md "Retries"). The command's req_id is
 * hex(SHA-256(client id))[0..32] followed by hex(SHA-256(method, resource,
 * id, action, body))[0..16] (the body as canonical JSON when it parses: key
 * order and spacing do not count). A retry of the same request is the same
 * command, deduplicated by the state (the first answer again); the same
 * client id with another request finds an applied command with its prefix
 * and another suffix and is answered 409. Returns 0, or -1 when j was
 * answered. Control loop. */
static int req_check(ms_cluster_job_t *j)
{
    j->req_key[0] = '\0';
    j->req_seen = 0;
    if (!j->req_id[0])
        return 0;
    uint8_t h[SHA256_DIGEST_LENGTH];
    char hex[2 * SHA256_DIGEST_LENGTH + 1];
    SHA256((const uint8_t *)j->req_id, strlen(j->req_id), h);
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", h[i]);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    json_t *bj = j->body && j->body_len ? json_loadb(j->body, j->body_len, 0, NULL) : NULL;
    char *canon = bj ? json_dumps(bj, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) : NULL;
    json_decref(bj);
    const char *b = canon ? canon : j->body ? j->body : "";
    size_t bl = canon ? strlen(canon) : j->body ? j->body_len : 0;
    unsigned hl = 0;
    int ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
    const char *parts[] = {j->method, j->res, j->id, j->action};
    for (size_t i = 0; ok && i < sizeof parts / sizeof *parts; i++)
        ok = EVP_DigestUpdate(md, parts[i], strlen(parts[i]) + 1) == 1; /* with the NUL */
    ok = ok && EVP_DigestUpdate(md, b, bl) == 1 && EVP_DigestFinal_ex(md, h, &hl) == 1;
    EVP_MD_CTX_free(md);
    free(canon);
    if (!ok) {
        cl_job_reply(j, 500, json_pack("{s:s}", "error", "cannot hash the request"));
        return -1;
    }
    for (int i = 0; i < 8; i++)
        snprintf(hex + 32 + 2 * i, 3, "%02x", h[i]);
    snprintf(j->req_key, sizeof j->req_key, "%s", hex);
    /* applied commands of this client id: [prefix, prefix + "g") */
    char lo[33], hi[34];
    memcpy(lo, hex, 32);
    lo[32] = '\0';
    snprintf(hi, sizeof hi, "%sg", lo);
    sqlite3_stmt *q = NULL;
    int same = 0, other = 0;
    if (sqlite3_prepare_v2(ms_fsm_db(ms_cl.fsm),
                           "SELECT req_id FROM applied_reqs WHERE req_id >= ? AND req_id < ?", -1,
                           &q, NULL) == SQLITE_OK) {
        sqlite3_bind_text(q, 1, lo, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 2, hi, -1, SQLITE_STATIC);
        while (sqlite3_step(q) == SQLITE_ROW) {
            const char *k = (const char *)sqlite3_column_text(q, 0);
            if (k && strcmp(k, j->req_key) == 0)
                same = 1;
            else
                other = 1;
        }
    }
    sqlite3_finalize(q);
    if (other && !same) {
        cl_job_reply(j, 409,
                     json_pack("{s:s,s:s}", "error",
                               "X-MS-Req-Id was already used for a different request", "field",
                               "X-MS-Req-Id"));
        return -1;
    }
    j->req_seen = same;
    return 0;
}

static void run_job(ms_cluster_job_t *j)
{
    int get = strcmp(j->method, "GET") == 0 || strcmp(j->method, "HEAD") == 0;
    if (ms_cl.stopping || ms_cl.handing_over) {
        cl_job_reply(j, 503, json_pack("{s:s}", "error", "the node is stopping"));
        return;
    }
    if (!get && strcmp(j->res, "cluster") != 0 && req_check(j) < 0)
        return;
    if (strcmp(j->res, "cluster") == 0) {
        if (!j->id[0] && get)
            cl_job_reply(j, 200, cluster_view());
        else if (strcmp(j->id, "submit") == 0 && j->internal)
            cluster_submit(j);
        else
            cl_job_reply(j, 404, json_pack("{s:s}", "error", "not found"));
        return;
    }
    if (strcmp(j->res, "groups") == 0) {
        named_crud(j, "groups", "group_upsert", "group_remove");
        return;
    }
    if (strcmp(j->res, "clusters") == 0) {
        named_crud(j, "clusters", "cluster_upsert", "cluster_remove");
        return;
    }
    if (strcmp(j->res, "servers") == 0) {
        if (get)
            cl_servers_get(j);
        else if (j->action[0])
            cl_servers_drain(j);
        else if (strcmp(j->method, "PUT") == 0)
            cl_servers_put(j);
        else
            cl_servers_delete(j);
        return;
    }
    /* streams */
    if (get) { /* ?consistent=1 */
        if (ms_raft_is_leader(ms_cl.raft)) {
            if (ms_raft_barrier(ms_cl.raft, barrier_cb, j) < 0)
                cl_job_reply(j, 503, json_pack("{s:s}", "error", "not the leader"));
        } else {
            char path[512];
            snprintf(path, sizeof path, "/api/v1/streams%s%s?consistent=1", j->id[0] ? "/" : "",
                     j->id);
            cl_to_leader(j, path);
        }
        return;
    }
    if (strcmp(j->method, "POST") == 0 && !j->id[0])
        cl_stream_put(j);
    else if (strcmp(j->method, "PUT") == 0)
        cl_stream_put(j);
    else if (strcmp(j->method, "PATCH") == 0)
        cl_stream_patch(j);
    else
        cl_stream_action(j);
}

void cl_async_cb(uv_async_t *h)
{
    (void)h;
    pthread_mutex_lock(&ms_cl.qmu);
    ms_cluster_job_t *j = ms_cl.qhead;
    ms_cl.qhead = ms_cl.qtail = NULL;
    pthread_mutex_unlock(&ms_cl.qmu);
    while (j) {
        ms_cluster_job_t *next = j->next;
        j->next = NULL;
        run_job(j);
        j = next;
    }
}

int ms_cluster_post(ms_cluster_job_t *job)
{
    pthread_mutex_lock(&ms_cl.qmu);
    if (ms_cl.qclosed || !atomic_load(&ms_cl.enabled)) {
        pthread_mutex_unlock(&ms_cl.qmu);
        return -ESHUTDOWN;
    }
    job->next = NULL;
    if (ms_cl.qtail)
        ms_cl.qtail->next = job;
    else
        ms_cl.qhead = job;
    ms_cl.qtail = job;
    pthread_mutex_unlock(&ms_cl.qmu);
    uv_async_send(&ms_cl.async);
    return 0;
}
