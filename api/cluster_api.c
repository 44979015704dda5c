/* REST on the replicated state: the MHD side (see cluster_api.h). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"
#include "api/cluster_api.h"
#include "node/cluster.h"
#include "node/cluster_http.h"
#include "util/clock.h"

typedef struct centry {
    ms_cluster_job_t job;
    ms_req_t *r;
    int64_t start_us;
    int done, abandoned, consumed;
    int64_t done_ms;
    struct centry *next;
} centry_t;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static centry_t *g_list;
static int g_stopping;

static void entry_free(centry_t *e)
{
    json_decref(e->job.reply);
    free(e->job.body);
    free(e);
}

static void unlink_locked(centry_t *e)
{
    for (centry_t **pp = &g_list; *pp; pp = &(*pp)->next)
        if (*pp == e) {
            *pp = e->next;
            return;
        }
}

/* Control loop: the job has its answer. */
static void job_done(ms_cluster_job_t *job)
{
    centry_t *e = job->ud;
    pthread_mutex_lock(&g_mu);
    e->done = 1;
    e->done_ms = ms_mono_ms();
    if (e->consumed) {
        pthread_mutex_unlock(&g_mu);
        entry_free(e);
        return;
    }
    if (!e->abandoned)
        MHD_resume_connection(e->r->conn);
    pthread_mutex_unlock(&g_mu);
}

void ms_api_cluster_quiesce(void)
{
    pthread_mutex_lock(&g_mu);
    g_stopping = 1;
    for (centry_t *e = g_list; e; e = e->next)
        if (!e->done && !e->abandoned) {
            e->abandoned = 1;
            MHD_resume_connection(e->r->conn);
        }
    pthread_mutex_unlock(&g_mu);
}

static enum MHD_Result answer(ms_req_t *r, centry_t *e)
{
    ms_cluster_job_t *j = &e->job;
    char ra[16];
    snprintf(ra, sizeof ra, "%d", j->retry_after);
    const char *hdrs[] = {"Retry-After", ra, NULL};
    json_t *body = j->reply ? j->reply : json_object();
    j->reply = NULL;
    return ms_api_reply_json(r, j->status ? j->status : 500, body, j->retry_after ? hdrs : NULL);
}

/* Which calls are ours: 1 and fills job fields, or 0. */
static int classify(ms_req_t *r, ms_cluster_job_t *j)
{
    char *const *s = r->segs + 2;
    int n = r->nsegs - 3;
    const char *m = r->method;
    int get = strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0;
    char v[8];
    int consistent = ms_api_query(r, "consistent", v, sizeof v) >= 0 && strcmp(v, "1") == 0;
    if (strcmp(s[0], "streams") == 0) {
        if (n == 0 && (strcmp(m, "POST") == 0 || (get && consistent)))
            goto ok;
        if (n == 1 && (strcmp(m, "PUT") == 0 || strcmp(m, "PATCH") == 0 ||
                       strcmp(m, "DELETE") == 0 || (get && consistent)))
            goto ok;
        if (n == 2 && strcmp(m, "POST") == 0 &&
            (strcmp(s[2], "restart") == 0 || strcmp(s[2], "enable") == 0 ||
             strcmp(s[2], "disable") == 0 || strcmp(s[2], "transfer") == 0 ||
             strcmp(s[2], "update-indexes") == 0))
            goto ok;
        return 0;
    }
    if (strcmp(s[0], "cluster") == 0) {
        if ((n == 0 && get) || (n == 1 && strcmp(s[1], "submit") == 0 && strcmp(m, "POST") == 0))
            goto ok;
        return 0;
    }
    if (strcmp(s[0], "groups") == 0 || strcmp(s[0], "clusters") == 0) {
        if ((n == 0 && (get || strcmp(m, "POST") == 0)) ||
            (n == 1 && (get || strcmp(m, "PUT") == 0 || strcmp(m, "DELETE") == 0)))
            goto ok;
        return 0;
    }
    if (strcmp(s[0], "servers") == 0) {
        if ((n == 0 && get) ||
            (n == 1 && (get || strcmp(m, "PUT") == 0 || strcmp(m, "DELETE") == 0)) ||
            (n == 2 && strcmp(m, "POST") == 0 &&
             (strcmp(s[2], "drain") == 0 || strcmp(s[2], "undrain") == 0)))
            goto ok;
        return 0;
    }
    return 0;
ok:
    snprintf(j->method, sizeof j->method, "%s", m);
    snprintf(j->res, sizeof j->res, "%s", s[0]);
    if (n >= 1)
        snprintf(j->id, sizeof j->id, "%s", s[1]);
    if (n >= 2)
        snprintf(j->action, sizeof j->action, "%s", s[2]);
    j->consistent = consistent;
    return strlen(n >= 1 ? s[1] : "") < sizeof j->id ? 1 : 0;
}

int ms_api_cluster_route(ms_req_t *r, enum MHD_Result *ret)
{
    if (!ms_cluster_enabled() || r->nsegs < 3 || strcmp(r->segs[0], "api") != 0 ||
        strcmp(r->segs[1], "v1") != 0)
        return 0;
    /* second call after the loop answered */
    pthread_mutex_lock(&g_mu);
    centry_t *e = g_list;
    int64_t now = ms_mono_ms();
    for (centry_t **pp = &g_list; *pp;) { /* entries of vanished connections */
        centry_t *x = *pp;
        if (x->done && !x->consumed && now - x->done_ms > 60000 && x->r != r) {
            *pp = x->next;
            entry_free(x);
            continue;
        }
        pp = &x->next;
    }
    for (e = g_list; e; e = e->next)
        if (e->r == r && e->start_us == r->start_us)
            break;
    if (e) {
        if (!e->done && !e->abandoned) { /* not expected: keep waiting */
            pthread_mutex_unlock(&g_mu);
            *ret = MHD_YES;
            return 1;
        }
        unlink_locked(e);
        if (!e->done) { /* abandoned at stop: the loop frees it */
            e->consumed = 1;
            pthread_mutex_unlock(&g_mu);
            *ret = ms_api_reply_error(r, 503, "the node is stopping", NULL, NULL);
            return 1;
        }
        pthread_mutex_unlock(&g_mu);
        if (e->job.proceed) { /* the local read handler answers (after the barrier) */
            entry_free(e);
            *ret = r->nsegs == 3 ? ms_api_streams_list(r) : ms_api_stream_get(r);
            return 1;
        }
        *ret = answer(r, e);
        entry_free(e);
        return 1;
    }
    pthread_mutex_unlock(&g_mu);

    e = calloc(1, sizeof *e);
    if (!e) {
        *ret = ms_api_reply_error(r, 500, "out of memory", NULL, NULL);
        return 1;
    }
    if (!classify(r, &e->job)) {
        free(e);
        return 0;
    }
    /* authentication: another node (secret) or an administrator */
    const ms_node_cfg_t *cfg = ms_api_cfg();
    const char *mac = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MS_CHTTP_HEADER);
    if (mac) {
        const char *nid = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MS_CHTTP_NODE);
        if (ms_chttp_verify(cfg->secret, mac, nid, r->method, r->raw, r->body, r->body_len,
                            ms_wall_us() / 1000, &e->job.from_node) < 0) {
            free(e);
            *ret = ms_api_reply_error(r, 401, "bad cluster signature", NULL, NULL);
            return 1;
        }
        e->job.internal = 1;
    } else {
        if (strcmp(e->job.res, "cluster") == 0 && e->job.id[0]) {
            free(e);
            *ret = ms_api_reply_error(r, 401, "internal call", NULL, NULL);
            return 1;
        }
        int ok = 0; /* with the login back-off, like every admin call */
        enum MHD_Result aret = ms_api_check_admin(r, &ok);
        if (!ok) {
            free(e);
            *ret = aret;
            return 1;
        }
    }
    if (strcmp(e->job.method, "PATCH") == 0) {
        /* RFC 7396 section 4: application/merge-patch+json; plain JSON too */
        const char *ct =
            MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
        size_t cl = ct ? strcspn(ct, "; \t") : 0;
        if (!ct || !((cl == 28 && strncasecmp(ct, "application/merge-patch+json", cl) == 0) ||
                     (cl == 16 && strncasecmp(ct, "application/json", cl) == 0))) {
            free(e);
            *ret = ms_api_reply_error(r, 415,
                                      "PATCH takes application/merge-patch+json (RFC 7396) "
                                      "or application/json",
                                      "Content-Type", NULL);
            return 1;
        }
    }
    const char *rid = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-MS-Req-Id");
    if (rid && strlen(rid) >= 1 && strlen(rid) <= 64 &&
        strspn(rid, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") ==
            strlen(rid))
        snprintf(e->job.req_id, sizeof e->job.req_id, "%s", rid);
    if (r->body && r->body_len) {
        e->job.body = malloc(r->body_len + 1);
        if (!e->job.body) {
            free(e);
            *ret = ms_api_reply_error(r, 500, "out of memory", NULL, NULL);
            return 1;
        }
        memcpy(e->job.body, r->body, r->body_len + 1);
        e->job.body_len = r->body_len;
    }
    e->job.done = job_done;
    e->job.ud = e;
    e->r = r;
    e->start_us = r->start_us;
    pthread_mutex_lock(&g_mu);
    if (g_stopping) {
        pthread_mutex_unlock(&g_mu);
        entry_free(e);
        *ret = ms_api_reply_error(r, 503, "the node is stopping", NULL, NULL);
        return 1;
    }
    e->next = g_list;
    g_list = e;
    MHD_suspend_connection(r->conn);
    pthread_mutex_unlock(&g_mu);
    if (ms_cluster_post(&e->job) < 0) {
        e->job.status = 503;
        e->job.retry_after = 1;
        e->job.reply = json_pack("{s:s}", "error", "the node is stopping");
        job_done(&e->job);
    }
    *ret = MHD_YES;
    return 1;
}
