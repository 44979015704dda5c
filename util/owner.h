/* One-thread ownership check for state that a single thread may change
 * ("control loop only"): the first caller becomes the owner, every later
 * caller must be that thread. Meant for assert(ms_owner_check(&o)) at the
 * top of such functions (MS_ASSERT_OWNER), so a call from another thread
 * fails in debug builds (unit tests, ASan) instead of racing.
 *
 * An ms_owner_t is zero-initialised (static storage) and never reset.
 * Threads: any (that is what it checks). */
#ifndef MS_UTIL_OWNER_H
#define MS_UTIL_OWNER_H

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>

typedef struct {
    atomic_int state; /* 0 no owner yet, 1 being recorded, 2 recorded */
    pthread_t tid;
} ms_owner_t;

/* 1 when the calling thread owns o (becoming its owner when o has none),
 * else 0. */
static inline int ms_owner_check(ms_owner_t *o)
{
    int expect = 0;
    if (atomic_compare_exchange_strong(&o->state, &expect, 1)) {
        o->tid = pthread_self();
        atomic_store(&o->state, 2);
        return 1;
    }
    while (atomic_load(&o->state) != 2)
        ; /* another thread is recording itself: a few instructions */
    return pthread_equal(o->tid, pthread_self()) != 0;
}

/* assert(3) that the caller owns *o (compiled out with NDEBUG). */
#define MS_ASSERT_OWNER(o)                                                                         \
    do {                                                                                           \
        (void)(o);                                                                                 \
        assert(ms_owner_check(o));                                                                 \
    } while (0)

#endif
