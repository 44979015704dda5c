/* Synchronous reads of the replicated state (node/cluster_read.h). */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "node/cluster.h"
#include "node/cluster_read.h"

typedef struct {
    ms_cluster_job_t job; /* first: done(job) gets back the whole */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done, abandoned;
} rjob_t;

static void rjob_free(rjob_t *r)
{
    json_decref(r->job.reply);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
}

/* Control loop: the answer is in; the waiter takes it, or the job is
 * freed here when the waiter gave up. */
static void rjob_done(ms_cluster_job_t *j)
{
    rjob_t *r = (rjob_t *)j;
    pthread_mutex_lock(&r->mu);
    if (r->abandoned) {
        pthread_mutex_unlock(&r->mu);
        rjob_free(r);
        return;
    }
    r->done = 1;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

int ms_cluster_read(const char *res, int timeout_ms, unsigned *status, json_t **reply)
{
    assert(res && status && reply);
    *status = 0;
    *reply = NULL;
    if (strcmp(res, "servers") != 0 && strcmp(res, "cluster") != 0)
        return -EINVAL;
    if (!ms_cluster_enabled())
        return -ENOTSUP;
    if (timeout_ms <= 0)
        timeout_ms = MS_CLUSTER_READ_TIMEOUT_MS;
    rjob_t *r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&r->mu, NULL);
    snprintf(r->job.method, sizeof r->job.method, "GET");
    snprintf(r->job.res, sizeof r->job.res, "%s", res);
    r->job.done = rjob_done;
    r->job.ud = r;
    if (ms_cluster_post(&r->job) < 0) {
        rjob_free(r);
        return -ESHUTDOWN;
    }
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&r->mu);
    while (!r->done)
        if (pthread_cond_timedwait(&r->cv, &r->mu, &until) == ETIMEDOUT)
            break;
    if (!r->done) { /* the loop frees it when it answers */
        r->abandoned = 1;
        pthread_mutex_unlock(&r->mu);
        return -ETIMEDOUT;
    }
    pthread_mutex_unlock(&r->mu);
    *status = r->job.status;
    *reply = r->job.reply;
    r->job.reply = NULL;
    rjob_free(r);
    return 0;
}
