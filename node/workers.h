/* Media worker threads: N threads, each running its own uv_loop_t.
 * Other threads hand work to a worker only through ms_worker_post(): the
 * task is queued under a mutex and the loop woken with uv_async_send (async
 * sends coalesce, so the callback drains the whole queue). */
#ifndef MS_NODE_WORKERS_H
#define MS_NODE_WORKERS_H

#include <uv.h>

typedef struct ms_worker ms_worker_t;
typedef struct ms_workers ms_workers_t;

typedef void (*ms_task_fn)(ms_worker_t *w, void *arg);

/* Starts n threads. NULL on failure. */
ms_workers_t *ms_workers_start(int n);
/* Runs every queued task, stops the loops (after each loop has closed all
 * its handles) and joins the threads. */
void ms_workers_stop(ms_workers_t *ws);
int ms_workers_count(const ms_workers_t *ws);
ms_worker_t *ms_workers_get(ms_workers_t *ws, int i);

/* Any thread. Runs fn(w, arg) on the worker's loop. Returns 0 or -ENOMEM
 * or -ESHUTDOWN (after stop, fn is not called). */
int ms_worker_post(ms_worker_t *w, ms_task_fn fn, void *arg);
uv_loop_t *ms_worker_loop(ms_worker_t *w);

/* Memory give-back. Any thread (a stream was removed): asks the workers'
 * trim thread to give the free memory of every malloc arena back to the
 * system (malloc_trim(0)) 1 s after the last request, at most once every
 * MS_TRIM_MIN_GAP_MS, off the media loops (a trim walks the arenas' free
 * lists: milliseconds to tens of ms on a large heap). Returns at once. */
#define MS_TRIM_MIN_GAP_MS 2000
void ms_workers_trim_soon(ms_workers_t *ws);
/* Trims done so far (any thread; tests, metrics). */
unsigned long ms_workers_trims(ms_workers_t *ws);
int ms_worker_index(const ms_worker_t *w);

#endif
