/* Worker threads: tasks posted from several threads all run, in FIFO order
 * per poster, on the right worker thread; stop runs what is queued, closes
 * the handles tasks left open and joins; malloc trims are coalesced. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "node/workers.h"

#define NPOSTERS 4
#define NTASKS   5000
#define NWORKERS 3

typedef struct {
    int poster;
    int seq;
    int worker;
} item_t;

static atomic_int g_ran;
static atomic_int g_wrong_thread;
/* last sequence number seen per (worker, poster): each worker's loop is the
 * only writer of its row */
static int g_last[NWORKERS][NPOSTERS];
static atomic_int g_order_bad;
static uv_thread_t g_tid[NWORKERS];
static atomic_int g_tid_set[NWORKERS];

static void record_tid(ms_worker_t *w, void *arg)
{
    (void)arg;
    g_tid[ms_worker_index(w)] = uv_thread_self();
    atomic_store(&g_tid_set[ms_worker_index(w)], 1);
}

static void task(ms_worker_t *w, void *arg)
{
    item_t *it = arg;
    int wi = ms_worker_index(w);
    uv_thread_t self = uv_thread_self();
    if (wi != it->worker || !uv_thread_equal(&self, &g_tid[wi]))
        atomic_fetch_add(&g_wrong_thread, 1);
    if (it->seq <= g_last[wi][it->poster])
        atomic_fetch_add(&g_order_bad, 1);
    g_last[wi][it->poster] = it->seq;
    atomic_fetch_add(&g_ran, 1);
    free(it);
}

typedef struct {
    ms_workers_t *ws;
    int poster;
    int fails;
} poster_t;

static void *poster_main(void *arg)
{
    poster_t *p = arg;
    for (int i = 1; i <= NTASKS; i++) {
        item_t *it = malloc(sizeof *it);
        it->poster = p->poster;
        it->seq = i;
        it->worker = i % ms_workers_count(p->ws);
        if (ms_worker_post(ms_workers_get(p->ws, it->worker), task, it) != 0) {
            free(it);
            p->fails++;
        }
    }
    return NULL;
}

static void wait_count(atomic_int *c, int want)
{
    for (int i = 0; i < 1000 && atomic_load(c) < want; i++)
        usleep(10000);
}

static void test_post_from_many_threads(void **state)
{
    (void)state;
    ms_workers_t *ws = ms_workers_start(NWORKERS);
    assert_non_null(ws);
    assert_int_equal(ms_workers_count(ws), NWORKERS);
    assert_null(ms_workers_get(ws, NWORKERS));
    for (int i = 0; i < NWORKERS; i++) {
        assert_int_equal(ms_worker_index(ms_workers_get(ws, i)), i);
        assert_int_equal(ms_worker_post(ms_workers_get(ws, i), record_tid, NULL), 0);
    }
    for (int i = 0; i < NWORKERS; i++) {
        for (int k = 0; k < 500 && !atomic_load(&g_tid_set[i]); k++)
            usleep(2000);
        assert_true(atomic_load(&g_tid_set[i]));
    }

    pthread_t th[NPOSTERS];
    poster_t ps[NPOSTERS];
    for (int i = 0; i < NPOSTERS; i++) {
        ps[i] = (poster_t){ws, i, 0};
        assert_int_equal(pthread_create(&th[i], NULL, poster_main, &ps[i]), 0);
    }
    for (int i = 0; i < NPOSTERS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(ps[i].fails, 0);
    }
    wait_count(&g_ran, NPOSTERS * NTASKS);
    assert_int_equal(atomic_load(&g_ran), NPOSTERS * NTASKS);
    assert_int_equal(atomic_load(&g_wrong_thread), 0);
    assert_int_equal(atomic_load(&g_order_bad), 0);
    ms_workers_stop(ws);
}

/* A task that leaves a timer open: stop must still close it and return. */
static atomic_int g_timer_fired;
static void timer_cb(uv_timer_t *t)
{
    (void)t;
    atomic_fetch_add(&g_timer_fired, 1);
}

static void open_timer(ms_worker_t *w, void *arg)
{
    uv_timer_t *t = arg;
    uv_timer_init(ms_worker_loop(w), t);
    uv_timer_start(t, timer_cb, 1, 5);
}

static atomic_int g_late;
static void late_task(ms_worker_t *w, void *arg)
{
    (void)w;
    (void)arg;
    atomic_fetch_add(&g_late, 1);
}

static void test_stop_closes_handles(void **state)
{
    (void)state;
    static uv_timer_t timers[2];
    ms_workers_t *ws = ms_workers_start(2);
    assert_non_null(ws);
    ms_worker_t *w0 = ms_workers_get(ws, 0);
    assert_int_equal(ms_worker_post(w0, open_timer, &timers[0]), 0);
    assert_int_equal(ms_worker_post(ms_workers_get(ws, 1), open_timer, &timers[1]), 0);
    wait_count(&g_timer_fired, 4);
    assert_true(atomic_load(&g_timer_fired) >= 4);
    /* queued tasks run before the loop stops */
    for (int i = 0; i < 100; i++)
        assert_int_equal(ms_worker_post(w0, late_task, NULL), 0);
    ms_workers_stop(ws); /* returns only when the loops closed every handle */
    assert_int_equal(atomic_load(&g_late), 100);
}

static void test_bad_count(void **state)
{
    (void)state;
    assert_null(ms_workers_start(0));
    assert_null(ms_workers_start(-3));
    assert_int_equal(ms_workers_count(NULL), 0);
}

/* Memory give-back: a burst of requests is one trim, 1 s after the last;
 * the next comes no sooner than MS_TRIM_MIN_GAP_MS after it. */
static void test_trim_coalesces(void **state)
{
    (void)state;
    ms_workers_t *ws = ms_workers_start(1);
    assert_non_null(ws);
    for (int i = 0; i < 100; i++)
        ms_workers_trim_soon(ws);
    usleep(500 * 1000);
    assert_int_equal(ms_workers_trims(ws), 0); /* not before 1 s */
    for (int i = 0; i < 40 && ms_workers_trims(ws) == 0; i++)
        usleep(50 * 1000);
    assert_int_equal(ms_workers_trims(ws), 1);
    ms_workers_trim_soon(ws);
    usleep(1300 * 1000);
    assert_int_equal(ms_workers_trims(ws), 1); /* rate-limited: 2 s after the first */
    for (int i = 0; i < 40 && ms_workers_trims(ws) == 1; i++)
        usleep(50 * 1000);
    assert_int_equal(ms_workers_trims(ws), 2);
    ms_workers_stop(ws); /* joins the trim thread */
    ms_workers_trim_soon(NULL);
    assert_int_equal(ms_workers_trims(NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_post_from_many_threads),
        cmocka_unit_test(test_stop_closes_handles),
        cmocka_unit_test(test_bad_count),
        cmocka_unit_test(test_trim_coalesces),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
