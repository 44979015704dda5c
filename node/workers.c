/* Media worker threads (node/workers.h; docs/architecture.md "Process and threads").
 *
 * Each worker owns one uv_loop_t run by its own thread. The only way in from
 * another thread is ms_worker_post(): the task goes into a mutex-protected
 * FIFO and the loop is woken with uv_async_send(). Async sends coalesce (one
 * callback for many sends), so the callback drains the whole queue. */
#include "node/workers.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "util/clock.h"
#include "util/log.h"

typedef struct task {
    struct task *next;
    ms_task_fn fn;
    void *arg;
} task_t;

struct ms_worker {
    ms_workers_t *ws;
    int index;
    uv_loop_t loop;
    uv_async_t async;
    uv_thread_t thread;
    int thread_started;
    pthread_mutex_t mu; /* guards head/tail/stopping */
    task_t *head, *tail;
    int stopping;
    char ctx[32];
};

struct ms_workers {
    int n;
    ms_worker_t *w;
    /* the trim thread (ms_workers_trim_soon) */
    pthread_t trim_thread;
    int trim_started;
    pthread_mutex_t trim_mu;
    pthread_cond_t trim_cv;
    int64_t trim_due_ms; /* mono ms; 0 = nothing asked */
    int trim_stop;
    unsigned long trims;
};

#define TRIM_DELAY_MS 1000

/* Waits for requests; trims TRIM_DELAY_MS after the last one (a burst of
 * removals is one trim), never twice within MS_TRIM_MIN_GAP_MS. */
static void *trim_main(void *arg)
{
    ms_workers_t *ws = arg;
    int64_t last = 0;
    pthread_mutex_lock(&ws->trim_mu);
    while (!ws->trim_stop) {
        int64_t now = ms_mono_ms();
        int64_t due = ws->trim_due_ms;
        if (due && last && due < last + MS_TRIM_MIN_GAP_MS)
            due = last + MS_TRIM_MIN_GAP_MS;
        if (due && now >= due) {
            ws->trim_due_ms = 0;
            pthread_mutex_unlock(&ws->trim_mu);
            int64_t t0 = ms_mono_us();
            int freed = malloc_trim(0);
            MS_DEBUG("[workers]", "malloc_trim: %s in %lld us",
                     freed ? "memory given back" : "nothing", (long long)(ms_mono_us() - t0));
            last = ms_mono_ms();
            pthread_mutex_lock(&ws->trim_mu);
            ws->trims++;
            continue;
        }
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t wait_ms = due ? due - now : 3600 * 1000;
        ts.tv_sec += (time_t)(wait_ms / 1000);
        ts.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&ws->trim_cv, &ws->trim_mu, &ts);
    }
    pthread_mutex_unlock(&ws->trim_mu);
    return NULL;
}

void ms_workers_trim_soon(ms_workers_t *ws)
{
    if (!ws || !ws->trim_started)
        return;
    pthread_mutex_lock(&ws->trim_mu);
    ws->trim_due_ms = ms_mono_ms() + TRIM_DELAY_MS;
    pthread_cond_signal(&ws->trim_cv);
    pthread_mutex_unlock(&ws->trim_mu);
}

unsigned long ms_workers_trims(ms_workers_t *ws)
{
    if (!ws || !ws->trim_started)
        return 0;
    pthread_mutex_lock(&ws->trim_mu);
    unsigned long n = ws->trims;
    pthread_mutex_unlock(&ws->trim_mu);
    return n;
}

static int trim_start(ms_workers_t *ws)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&ws->trim_mu, NULL);
    pthread_cond_init(&ws->trim_cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&ws->trim_thread, NULL, trim_main, ws) != 0) {
        pthread_cond_destroy(&ws->trim_cv);
        pthread_mutex_destroy(&ws->trim_mu);
        return -ENOMEM;
    }
    ws->trim_started = 1;
    return 0;
}

static void trim_stop(ms_workers_t *ws)
{
    if (!ws->trim_started)
        return;
    pthread_mutex_lock(&ws->trim_mu);
    ws->trim_stop = 1;
    pthread_cond_signal(&ws->trim_cv);
    pthread_mutex_unlock(&ws->trim_mu);
    pthread_join(ws->trim_thread, NULL);
    pthread_cond_destroy(&ws->trim_cv);
    pthread_mutex_destroy(&ws->trim_mu);
    ws->trim_started = 0;
}

static void close_walk_cb(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* Worker loop: runs every queued task in FIFO order. Tasks posted by the
 * tasks themselves are run in the same drain. */
static void async_cb(uv_async_t *a)
{
    ms_worker_t *w = a->data;
    for (;;) {
        pthread_mutex_lock(&w->mu);
        task_t *t = w->head;
        w->head = w->tail = NULL;
        int stopping = w->stopping;
        pthread_mutex_unlock(&w->mu);
        if (!t) {
            if (stopping) {
                /* Nothing can be queued any more: close every handle still
                 * open (owners should have closed theirs already) so that
                 * uv_run() returns. */
                uv_walk(&w->loop, close_walk_cb, NULL);
            }
            return;
        }
        while (t) {
            task_t *next = t->next;
            t->fn(w, t->arg);
            free(t);
            t = next;
        }
    }
}

static void worker_main(void *arg)
{
    ms_worker_t *w = arg;
    uv_run(&w->loop, UV_RUN_DEFAULT);
    /* The loop only returns when no handle is left: finish close callbacks. */
    uv_run(&w->loop, UV_RUN_NOWAIT);
    if (uv_loop_close(&w->loop) != 0)
        MS_ERROR(w->ctx, "loop closed with handles still open");
}

ms_workers_t *ms_workers_start(int n)
{
    if (n < 1 || n > 1024)
        return NULL;
    ms_workers_t *ws = calloc(1, sizeof *ws);
    if (!ws)
        return NULL;
    ws->w = calloc((size_t)n, sizeof *ws->w);
    if (!ws->w) {
        free(ws);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        ms_worker_t *w = &ws->w[i];
        w->ws = ws;
        w->index = i;
        snprintf(w->ctx, sizeof w->ctx, "[worker %d]", i);
        pthread_mutex_init(&w->mu, NULL);
        if (uv_loop_init(&w->loop) != 0)
            goto err;
        w->async.data = w;
        if (uv_async_init(&w->loop, &w->async, async_cb) != 0) {
            uv_loop_close(&w->loop);
            goto err;
        }
        if (uv_thread_create(&w->thread, worker_main, w) != 0) {
            uv_close((uv_handle_t *)&w->async, NULL);
            uv_run(&w->loop, UV_RUN_NOWAIT);
            uv_loop_close(&w->loop);
            goto err;
        }
        w->thread_started = 1;
        ws->n = i + 1;
    }
    if (trim_start(ws) < 0)
        goto err;
    return ws;
err:
    ms_workers_stop(ws);
    return NULL;
}

void ms_workers_stop(ms_workers_t *ws)
{
    if (!ws)
        return;
    trim_stop(ws);
    for (int i = 0; i < ws->n; i++) {
        ms_worker_t *w = &ws->w[i];
        pthread_mutex_lock(&w->mu);
        w->stopping = 1;
        pthread_mutex_unlock(&w->mu);
        uv_async_send(&w->async);
    }
    for (int i = 0; i < ws->n; i++) {
        ms_worker_t *w = &ws->w[i];
        if (w->thread_started)
            uv_thread_join(&w->thread);
        /* Tasks posted after the final drain are dropped (never called). */
        task_t *t = w->head;
        while (t) {
            task_t *next = t->next;
            free(t);
            t = next;
        }
        pthread_mutex_destroy(&w->mu);
    }
    free(ws->w);
    free(ws);
}

int ms_workers_count(const ms_workers_t *ws)
{
    return ws ? ws->n : 0;
}

ms_worker_t *ms_workers_get(ms_workers_t *ws, int i)
{
    if (!ws || i < 0 || i >= ws->n)
        return NULL;
    return &ws->w[i];
}

int ms_worker_post(ms_worker_t *w, ms_task_fn fn, void *arg)
{
    task_t *t = malloc(sizeof *t);
    if (!t)
        return -ENOMEM;
    t->next = NULL;
    t->fn = fn;
    t->arg = arg;
    pthread_mutex_lock(&w->mu);
    if (w->stopping) {
        pthread_mutex_unlock(&w->mu);
        free(t);
        return -ESHUTDOWN;
    }
    if (w->tail)
        w->tail->next = t;
    else
        w->head = t;
    w->tail = t;
    /* Sent under the lock: once stopping is set the async handle may be
     * closed by the worker, so no send may race with that. */
    uv_async_send(&w->async);
    pthread_mutex_unlock(&w->mu);
    return 0;
}

uv_loop_t *ms_worker_loop(ms_worker_t *w)
{
    return &w->loop;
}

int ms_worker_index(const ms_worker_t *w)
{
    return w->index;
}
