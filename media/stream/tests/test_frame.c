/* Frame memory (media/stream/frame.c): size classes, the per-thread cache
 * of freed frames, resizing in place and by copy, and frames released on a
 * thread other than the one that allocated them. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "media/stream/frame.h"

static void fill(ms_frame_t *f, size_t n, uint8_t seed)
{
    for (size_t i = 0; i < n; i++)
        f->data[i] = (uint8_t)(seed + i * 13);
}

static int check(const ms_frame_t *f, size_t n, uint8_t seed)
{
    for (size_t i = 0; i < n; i++)
        if (f->data[i] != (uint8_t)(seed + i * 13))
            return 0;
    return 1;
}

/* The room a frame gets is at least what was asked and at most 1/8 (plus
 * the smallest class) more; the payload is copied. */
static void test_classes(void **state)
{
    (void)state;
    static const size_t sizes[] = {0, 1, 100, 207, 208, 1000, 4096, 5000, 33000, 262000, 300000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        uint8_t *src = malloc(n + 1);
        for (size_t j = 0; j < n; j++)
            src[j] = (uint8_t)(j * 7 + 3);
        ms_frame_t *f = ms_frame_new(src, n);
        assert_non_null(f);
        assert_int_equal(f->size, n);
        assert_true(f->cap >= n);
        assert_true(f->cap <= n + n / 8 + 256);
        assert_memory_equal(f->data, src, n);
        assert_int_equal(f->flags, 0);
        assert_int_equal(f->pts, 0);
        memset(f->data, 0xAB, f->cap); /* the whole room is writable */
        ms_frame_unref(f);
        free(src);
    }
    ms_frame_cache_flush();
}

/* A frame freed on the allocating thread is reused for the next frame of
 * its class (the cache), its header reset. */
static void test_reuse(void **state)
{
    (void)state;
    ms_frame_t *a = ms_frame_new(NULL, 5000);
    assert_non_null(a);
    a->pts = 77;
    a->flags = MS_FRAME_KEY;
    ms_frame_t *keep = ms_frame_ref(a);
    ms_frame_unref(a); /* still referenced: not freed */
    assert_int_equal(keep->pts, 77);
    ms_frame_unref(keep);
    ms_frame_t *b = ms_frame_new(NULL, 4990);
    assert_ptr_equal(b, a);
    assert_int_equal(b->pts, 0);
    assert_int_equal(b->flags, 0);
    assert_int_equal(b->size, 4990);
    ms_frame_unref(b);
    /* a much larger class does not take it */
    ms_frame_t *c = ms_frame_new(NULL, 20000);
    assert_ptr_not_equal(c, a);
    ms_frame_unref(c);
    ms_frame_cache_flush();
}

/* Resizing within the room keeps the frame; beyond it, moves it and keeps
 * the first bytes and the header. */
static void test_resize(void **state)
{
    (void)state;
    ms_frame_t *f = ms_frame_new(NULL, 3000);
    assert_non_null(f);
    size_t cap = f->cap;
    fill(f, cap, 5);
    f->pts = 1234;
    f->track = 2;
    ms_frame_t *g = ms_frame_resize(f, cap);
    assert_ptr_equal(g, f);
    assert_int_equal(g->size, cap);
    ms_frame_t *h = ms_frame_resize(g, cap * 3);
    assert_non_null(h);
    assert_int_equal(h->size, cap * 3);
    assert_true(h->cap >= cap * 3);
    assert_true(check(h, cap, 5));
    assert_int_equal(h->pts, 1234);
    assert_int_equal(h->track, 2);
    memset(h->data + cap, 0, h->cap - cap);
    ms_frame_unref(h);
    ms_frame_cache_flush();
}

/* Many frames freed at once (a GOP cache cleared): the cache keeps what its
 * bound allows and frees the rest; every frame comes back intact. */
static void test_burst(void **state)
{
    (void)state;
    enum { N = 2000 };
    ms_frame_t **v = calloc(N, sizeof *v);
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++) {
            size_t n = 1000 + (size_t)((i * 7919) % 9000); /* 18 MB in all */
            v[i] = ms_frame_new(NULL, n);
            assert_non_null(v[i]);
            fill(v[i], n, (uint8_t)i);
        }
        for (int i = 0; i < N; i++) {
            assert_true(check(v[i], v[i]->size, (uint8_t)i));
            ms_frame_unref(v[i]);
        }
    }
    free(v);
    ms_frame_cache_flush();
}

typedef struct {
    ms_frame_t **v;
    int n;
    int alloc_too;
} thr_arg_t;

static void *release_thread(void *p)
{
    thr_arg_t *a = p;
    if (a->alloc_too) {
        /* a thread that allocates frames gets a cache, emptied when it exits */
        ms_frame_t *own = ms_frame_new(NULL, 700);
        ms_frame_unref(own);
    }
    for (int i = 0; i < a->n; i++) {
        if (!check(a->v[i], a->v[i]->size, (uint8_t)i))
            return (void *)1;
        ms_frame_unref(a->v[i]);
    }
    return NULL;
}

/* Frames allocated on one thread and released on another, which either
 * never allocated a frame (freed at once) or did (kept in its cache until it
 * exits). LeakSanitizer checks that nothing stays behind. */
static void test_other_thread(void **state)
{
    (void)state;
    enum { N = 300 };
    for (int mode = 0; mode < 2; mode++) {
        ms_frame_t *v[N];
        for (int i = 0; i < N; i++) {
            v[i] = ms_frame_new(NULL, 200 + (size_t)i * 50);
            assert_non_null(v[i]);
            fill(v[i], v[i]->size, (uint8_t)i);
        }
        thr_arg_t a = {v, N, mode};
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, release_thread, &a), 0);
        void *ret = (void *)1;
        assert_int_equal(pthread_join(t, &ret), 0);
        assert_null(ret);
    }
    ms_frame_cache_flush();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classes),      cmocka_unit_test(test_reuse),
        cmocka_unit_test(test_resize),       cmocka_unit_test(test_burst),
        cmocka_unit_test(test_other_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
