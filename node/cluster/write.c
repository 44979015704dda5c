/* The write path: a command submitted on the leader or forwarded to it
 * (blocking HTTP in the thread pool), retried until its deadline and
 * answered after its local apply (cluster_int.h). Control loop, except
 * fwd_work (thread pool). */
#include "node/cluster_http.h"
#include "raft/commands.h"
#include "node/cluster/cluster_int.h"

/* ---- the write path ------------------------------------------------------- */

static void wop_try(wop_t *w);

static void wop_closed(uv_handle_t *h)
{
    wop_t *w = h->data;
    free(w->text);
    free(w->fwd_resp);
    free(w);
    ms_cl.outstanding--;
}

void cl_wop_finish(wop_t *w, unsigned st, json_t *res)
{
    cl_reconcile(); /* the reply must see its own write on this node */
    if (w->cb)
        w->cb(w->ud, st, res);
    json_decref(res);
    uv_close((uv_handle_t *)&w->timer, wop_closed);
}

static unsigned result_status(json_t *res)
{
    if (!json_is_object(res))
        return 500;
    if (json_object_get(res, "error")) {
        json_int_t s = json_integer_value(json_object_get(res, "status"));
        return s >= 400 && s < 600 ? (unsigned)s : 400;
    }
    return 200;
}

static void wop_retry_cb(uv_timer_t *t)
{
    wop_try(t->data);
}

static void wop_later(wop_t *w)
{
    if (ms_cl.stopping || (w->deadline && ms_mono_ms() >= w->deadline)) {
        cl_wop_finish(
            w, 503,
            json_pack("{s:s}", "error",
                      ms_cl.stopping ? "the node is stopping" : "no leader: retry later"));
        return;
    }
    uv_timer_start(&w->timer, wop_retry_cb, 50, 0);
}

void cl_submit_cb(void *ud, int status, json_t *result)
{
    wop_t *w = ud;
    if (status < 0 && w->leader_only) {
        cl_wop_finish(w, 503, json_pack("{s:s}", "error", "leadership lost"));
        return;
    }
    if (status < 0) {
        wop_later(w); /* same req_id: applies at most once */
        return;
    }
    cl_wop_finish(w, result_status(result), json_incref(result));
}

static void fwd_work(uv_work_t *req)
{
    wop_t *w = req->data;
    /* never past the write's own deadline: a report stuck on an unreachable
     * leader would hold back the next ones (reports are one at a time) */
    int64_t left = w->deadline ? w->deadline - ms_mono_ms() : FWD_TIMEOUT_MS;
    int tmo = left < 100 ? 100 : left < FWD_TIMEOUT_MS ? (int)left : FWD_TIMEOUT_MS;
    w->fwd_rc = ms_chttp_request(w->base, "POST", "/api/v1/cluster/submit", w->text, w->len,
                                 ms_cl.cfg->secret, cl_my_id(), tmo, &w->fwd_status, &w->fwd_resp);
}

void cl_wait_check(void)
{
    uint64_t idx = ms_cl.waiting ? cl_applied_index() : 0;
    int64_t now = ms_mono_ms();
    for (wop_t **pp = &ms_cl.waiting; *pp;) {
        wop_t *w = *pp;
        if (idx >= w->wait_index || now >= w->wait_until || ms_cl.stopping) {
            *pp = w->next_wait;
            cl_wop_finish(w, w->st, w->res);
            continue;
        }
        pp = &w->next_wait;
    }
}

static void fwd_done(uv_work_t *req, int status)
{
    wop_t *w = req->data;
    (void)status;
    json_t *j = NULL;
    if (w->fwd_rc == 0 && w->fwd_resp)
        j = json_loads(w->fwd_resp, 0, NULL);
    free(w->fwd_resp);
    w->fwd_resp = NULL;
    if (w->fwd_rc < 0 || w->fwd_status == 503 || !j || !json_object_get(j, "result")) {
        if (w->fwd_rc == 0 && w->fwd_status != 503 && w->fwd_status != 0) {
            /* the leader refused the command itself (400/403): final */
            json_t *res = j ? j : json_pack("{s:s}", "error", "bad answer from the leader");
            cl_wop_finish(w, (unsigned)w->fwd_status, res);
            return;
        }
        json_decref(j);
        wop_later(w);
        return;
    }
    w->res = json_incref(json_object_get(j, "result"));
    w->st = result_status(w->res);
    w->wait_index = (uint64_t)json_integer_value(json_object_get(j, "index"));
    w->wait_until = ms_mono_ms() + 2000;
    json_decref(j);
    w->next_wait = ms_cl.waiting;
    ms_cl.waiting = w;
    cl_wait_check();
}

static void wop_try(wop_t *w)
{
    if (ms_cl.stopping) {
        wop_later(w);
        return;
    }
    if (ms_raft_is_leader(ms_cl.raft)) {
        if (ms_raft_submit(ms_cl.raft, w->text, w->len, cl_submit_cb, w) == 0)
            return;
        wop_later(w);
        return;
    }
    if (w->leader_only) { /* decided on a state this node no longer leads */
        cl_wop_finish(w, 503, json_pack("{s:s}", "error", "not the leader any more"));
        return;
    }
    if (cl_leader_base(w->base, sizeof w->base) == 0 && strcmp(w->base, ms_cl.http_base) != 0) {
        w->work.data = w;
        if (uv_queue_work(ms_cl.loop, &w->work, fwd_work, fwd_done) == 0)
            return;
    }
    wop_later(w);
}

/* Writes cmd (stolen) to the replicated log through the leader; cb(ud,
 * http status, result) once. deadline_ms 0: retried until stop.
 * leader_only: submitted only while this node leads (leader duties: a
 * deposed leader's decisions must not reach the new leader). */
int cl_cluster_write_ex(json_t *cmd, int deadline_ms, int leader_only, wop_cb cb, void *ud)
{
    wop_t *w = calloc(1, sizeof *w);
    if (!w || !cmd) {
        free(w);
        json_decref(cmd);
        return -ENOMEM;
    }
    w->text = ms_cmd_encode(cmd, &w->len);
    json_decref(cmd);
    if (!w->text) {
        free(w);
        return -ENOMEM;
    }
    w->deadline = deadline_ms ? ms_mono_ms() + deadline_ms : 0;
    w->leader_only = leader_only;
    w->cb = cb;
    w->ud = ud;
    uv_timer_init(ms_cl.loop, &w->timer);
    w->timer.data = w;
    ms_cl.outstanding++;
    wop_try(w);
    return 0;
}

int cl_cluster_write(json_t *cmd, int deadline_ms, wop_cb cb, void *ud)
{
    return cl_cluster_write_ex(cmd, deadline_ms, 0, cb, ud);
}
