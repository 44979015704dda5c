/* REST job helpers (replies, bodies, req_id commands) and the proxy of a
 * REST call to another node (cluster_int.h). Control loop, except
 * proxy_work (thread pool). */
#include <sqlite3.h>

#include "node/cluster_http.h"
#include "raft/commands.h"
#include "node/cluster/cluster_int.h"

/* ---- REST jobs -------------------------------------------------------------- */

void cl_job_reply(ms_cluster_job_t *j, unsigned st, json_t *body)
{
    j->status = st;
    j->reply = body ? body : json_object();
    if (st == 503 && !j->retry_after)
        j->retry_after = 1;
    j->done(j);
}

/* A 63-bit raft id as the API shows it: a decimal string, since JSON
 * numbers above 2^53 lose precision in JavaScript (docs/api.md). */
json_t *cl_id_json(json_t *v)
{
    char b[32];
    if (!json_is_integer(v))
        return json_incref(v ? v : json_null());
    snprintf(b, sizeof b, "%" PRIu64, (uint64_t)json_integer_value(v));
    return json_string(b);
}

/* Replaces o[key] (an integer id) by its string form; nothing when absent. */
void cl_id_to_string(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (v)
        json_object_set_new(o, key, cl_id_json(v));
}

void cl_job_write_cb(void *ud, unsigned st, json_t *res)
{
    ms_cluster_job_t *j = ud;
    json_t *body = json_deep_copy(res);
    if (st == 200 && json_is_object(body)) {
        json_t *s = json_object_get(body, "stream");
        if (s && !json_object_get(body, "error") && strcmp(j->method, "DELETE") != 0) {
            json_t *tmp = json_deep_copy(s); /* the stream object alone */
            json_decref(body);
            body = tmp;
            json_t *pl = json_object_get(body, "placement");
            if (json_is_object(pl)) { /* why it has no server (null: placed or about to be) */
                char *why = NULL;
                if (!json_is_string(json_object_get(pl, "primary"))) {
                    json_t *servers = cl_state_servers(), *streams = cl_state_streams();
                    why = cl_unplaced_reason(body, servers, streams);
                    json_decref(servers);
                    json_decref(streams);
                }
                json_object_set_new(pl, "reason", why ? json_string(why) : json_null());
                free(why);
            }
            if (strcmp(j->method, "POST") == 0 && !j->id[0])
                st = 201;
        }
    }
    /* a server row in the answer (PUT /servers/{name}): its 63-bit id as a
     * string, as every server view gives it (docs/api.md) */
    if (json_is_object(json_object_get(body, "server")))
        cl_id_to_string(json_object_get(body, "server"), "id");
    if (body && json_object_get(body, "error"))
        json_object_del(body, "status");
    cl_job_reply(j, st, body);
}

json_t *cl_cmd_with_req(const char *op, json_t *args, const char *req_id)
{
    if (req_id && req_id[0])
        return ms_cmd_new_at(op, args, req_id, cl_wall_ms());
    return ms_cmd_new(op, args);
}

int cl_body_json(ms_cluster_job_t *j, json_t **out)
{
    json_error_t e;
    *out = NULL;
    if (!j->body || !j->body_len) {
        cl_job_reply(j, 400, json_pack("{s:s}", "error", "a JSON body is required"));
        return -1;
    }
    *out = json_loadb(j->body, j->body_len, JSON_REJECT_DUPLICATES, &e);
    if (!*out || !json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        cl_job_reply(j, 400, json_pack("{s:s}", "error", "the body is not a JSON object"));
        return -1;
    }
    return 0;
}

int cl_stream_uid_exists(const char *uid)
{
    sqlite3_stmt *q = NULL;
    int found = sqlite3_prepare_v2(ms_fsm_db(ms_cl.fsm), "SELECT 1 FROM streams WHERE uid = ?", -1,
                                   &q, NULL) == SQLITE_OK &&
                sqlite3_bind_text(q, 1, uid, -1, SQLITE_STATIC) == SQLITE_OK &&
                sqlite3_step(q) == SQLITE_ROW;
    sqlite3_finalize(q);
    return found;
}

/* ---- proxy to another node (leader or the stream's server) -------------- */

static void proxy_try(proxy_t *p);

static void proxy_closed(uv_handle_t *h)
{
    proxy_t *p = h->data;
    free(p->resp);
    free(p);
    ms_cl.outstanding--;
}

static void proxy_retry_cb(uv_timer_t *t)
{
    proxy_try(t->data);
}

static void proxy_later(proxy_t *p)
{
    if (ms_cl.stopping || ms_mono_ms() >= p->deadline) {
        cl_job_reply(p->job, 503, json_pack("{s:s}", "error", "no leader: retry later"));
        uv_close((uv_handle_t *)&p->timer, proxy_closed);
        return;
    }
    uv_timer_start(&p->timer, proxy_retry_cb, 50, 0);
}

static void proxy_done(uv_work_t *req, int status)
{
    proxy_t *p = req->data;
    (void)status;
    json_t *body = p->rc == 0 && p->resp ? json_loads(p->resp, 0, NULL) : NULL;
    if (p->rc < 0 || p->status == 503 || !body) {
        json_decref(body);
        free(p->resp);
        p->resp = NULL;
        proxy_later(p);
        return;
    }
    cl_job_reply(p->job, (unsigned)p->status, body);
    uv_close((uv_handle_t *)&p->timer, proxy_closed);
}

static void proxy_work(uv_work_t *req)
{
    proxy_t *p = req->data;
    ms_cluster_job_t *j = p->job;
    p->rc = ms_chttp_request(p->base, p->method, p->path, j->body, j->body ? j->body_len : 0,
                             ms_cl.cfg->secret, cl_my_id(), FWD_TIMEOUT_MS, &p->status, &p->resp);
}

static void proxy_try(proxy_t *p)
{
    if (!ms_cl.stopping && cl_leader_base(p->base, sizeof p->base) == 0 &&
        strcmp(p->base, ms_cl.http_base) != 0) {
        p->work.data = p;
        if (uv_queue_work(ms_cl.loop, &p->work, proxy_work, proxy_done) == 0)
            return;
    }
    proxy_later(p);
}

/* Executes j on the leader (this request, internally authenticated). */
void cl_to_leader(ms_cluster_job_t *j, const char *path)
{
    if (j->internal) { /* never forwarded twice */
        cl_job_reply(j, 503, json_pack("{s:s}", "error", "not the leader"));
        return;
    }
    proxy_t *p = calloc(1, sizeof *p);
    if (!p) {
        cl_job_reply(j, 500, json_pack("{s:s}", "error", "out of memory"));
        return;
    }
    p->job = j;
    snprintf(p->method, sizeof p->method, "%s", j->method);
    snprintf(p->path, sizeof p->path, "%s", path);
    p->deadline = ms_mono_ms() + API_DEADLINE_MS;
    uv_timer_init(ms_cl.loop, &p->timer);
    p->timer.data = p;
    ms_cl.outstanding++;
    proxy_try(p);
}
