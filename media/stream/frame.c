#include "media/stream/frame.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Frame memory. Every frame used to be one malloc of its exact size and
 * one free when its last reference went: sizes of a few KiB to a few tens
 * of KiB, all different, so glibc searched its size bins (and unlinked
 * neighbours) for each, touching cold heap memory. Frames are now rounded
 * up to size classes (8 per power of two: at most 1/8 more) and a thread
 * that allocates frames keeps the frames it frees in a cache of its own,
 * one LIFO list per class: an allocation takes the last frame freed in its
 * class (or the next class), without touching any other memory.
 *
 * Bounds: at most MS_FRAME_CACHE_BYTES per thread; every FC_TRIM_OPS cache
 * operations, what stayed unused through the whole window (the lowest
 * level the cache fell to) is given back to free(), so an idle thread's
 * cache empties. Threads: the cache is thread-local (no locks); a thread
 * that never allocated a frame has none and frees at once; a thread's cache
 * is emptied when it exits (key destructor), the main thread's at exit(). */
#if defined(__SANITIZE_ADDRESS__)
#define FC_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FC_ASAN 1
#endif
#endif
#ifdef FC_ASAN
#include <sanitizer/asan_interface.h>
#define FC_POISON(p, n)   ASAN_POISON_MEMORY_REGION(p, n)
#define FC_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define FC_POISON(p, n)   ((void)(p), (void)(n))
#define FC_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define FC_MIN_SHIFT 8  /* smallest class: 256 bytes */
#define FC_MAX_SHIFT 18 /* largest class cached: 256 KiB */
#define FC_MAX       ((size_t)1 << FC_MAX_SHIFT)
#define FC_CLASSES   (1 + (FC_MAX_SHIFT - FC_MIN_SHIFT) * 8)
#define FC_TRIM_OPS  8192

typedef struct fc_node {
    struct fc_node *next;
} fc_node_t;

typedef struct {
    int state;    /* 0: not set up, 1: on, -1: off (thread exiting) */
    size_t bytes; /* cached */
    size_t low;   /* lowest `bytes` since the last trim */
    uint32_t ops;
    fc_node_t *head[FC_CLASSES];
} fcache_t;

static _Thread_local fcache_t tl_cache;
static pthread_key_t fc_key;
static pthread_once_t fc_once = PTHREAD_ONCE_INIT;
static int fc_key_ok;

/* Class of an allocation of total bytes (0 < total <= FC_MAX): class 0
 * holds up to 256 bytes, then 8 classes per power of two. */
static unsigned fc_class(size_t total)
{
    if (total <= ((size_t)1 << FC_MIN_SHIFT))
        return 0;
    unsigned e = 63u - (unsigned)__builtin_clzll((unsigned long long)(total - 1));
    size_t k = (total - 1 - ((size_t)1 << e)) / ((size_t)1 << (e - 3)); /* 0..7 */
    return 1 + (e - FC_MIN_SHIFT) * 8 + (unsigned)k;
}

/* Bytes of an allocation of class c (the largest total of the class). */
static size_t fc_size(unsigned c)
{
    if (c == 0)
        return (size_t)1 << FC_MIN_SHIFT;
    unsigned e = FC_MIN_SHIFT + (c - 1) / 8, k = (c - 1) % 8 + 1;
    return ((size_t)1 << e) + ((size_t)k << (e - 3));
}

static void fc_drop_class(fcache_t *c, unsigned k)
{
    size_t sz = fc_size(k);
    while (c->head[k]) {
        fc_node_t *n = c->head[k];
        c->head[k] = n->next;
        c->bytes -= sz;
        FC_UNPOISON(n, sz);
        free(n);
    }
}

void ms_frame_cache_flush(void)
{
    fcache_t *c = &tl_cache;
    for (unsigned k = 0; k < FC_CLASSES; k++)
        fc_drop_class(c, k);
    c->low = 0;
}

static void fc_thread_exit(void *p)
{
    (void)p;
    ms_frame_cache_flush();
    tl_cache.state = -1;
}

static void fc_make_key(void)
{
    fc_key_ok = pthread_key_create(&fc_key, fc_thread_exit) == 0;
    if (fc_key_ok)
        (void)atexit(ms_frame_cache_flush); /* the main thread runs no key destructor */
}

/* Sets up the calling thread's cache (on its first frame allocation). */
static void fc_setup(fcache_t *c)
{
    (void)pthread_once(&fc_once, fc_make_key);
    if (fc_key_ok && pthread_setspecific(fc_key, c) == 0)
        c->state = 1;
    else
        c->state = -1;
}

/* Gives back to free() what stayed unused for a whole window (largest
 * classes first). */
static void fc_tick(fcache_t *c)
{
    if (++c->ops < FC_TRIM_OPS)
        return;
    c->ops = 0;
    size_t excess = c->low;
    for (unsigned k = FC_CLASSES; k-- > 0 && excess;) {
        size_t sz = fc_size(k);
        while (c->head[k] && excess) {
            fc_node_t *n = c->head[k];
            c->head[k] = n->next;
            c->bytes -= sz;
            excess = excess > sz ? excess - sz : 0;
            FC_UNPOISON(n, sz);
            free(n);
        }
    }
    c->low = c->bytes;
}

/* A cached allocation of class k or k + 1 (*k updated), else NULL. */
static void *fc_take(unsigned *k)
{
    fcache_t *c = &tl_cache;
    if (c->state != 1) {
        if (c->state != 0)
            return NULL;
        fc_setup(c);
        return NULL;
    }
    unsigned cls = *k;
    fc_node_t *n = c->head[cls];
    if (!n && cls + 1 < FC_CLASSES && (n = c->head[cls + 1]) != NULL)
        cls++;
    if (!n) {
        fc_tick(c);
        return NULL;
    }
    size_t sz = fc_size(cls);
    FC_UNPOISON(n, sz);
    c->head[cls] = n->next;
    c->bytes -= sz;
    if (c->bytes < c->low)
        c->low = c->bytes;
    fc_tick(c);
    *k = cls;
    return n;
}

/* Frees the memory of a frame whose last reference went. */
static void fc_put(ms_frame_t *f)
{
    fcache_t *c = &tl_cache;
    size_t total = sizeof *f + f->cap;
    if (c->state != 1 || total > FC_MAX || c->bytes + total > MS_FRAME_CACHE_BYTES) {
        free(f);
        return;
    }
    unsigned k = fc_class(total); /* total is the class's size */
    fc_node_t *n = (fc_node_t *)f;
    n->next = c->head[k];
    c->head[k] = n;
    c->bytes += total;
    FC_POISON((uint8_t *)n + sizeof *n, total - sizeof *n);
    fc_tick(c);
}

ms_frame_t *ms_frame_new(const void *data, size_t size)
{
    if (size > UINT32_MAX - FC_MAX)
        return NULL;
    size_t total = sizeof(ms_frame_t) + size;
    ms_frame_t *f = NULL;
    if (total <= FC_MAX) {
        unsigned k = fc_class(total);
        f = fc_take(&k);
        total = fc_size(k);
    }
    if (!f)
        f = malloc(total);
    if (!f)
        return NULL;
    memset(f, 0, sizeof *f);
    atomic_init(&f->refs, 1);
    f->size = (uint32_t)size;
    f->cap = (uint32_t)(total - sizeof *f);
    f->data = (uint8_t *)(f + 1);
    if (data && size)
        memcpy(f->data, data, size);
    return f;
}

ms_frame_t *ms_frame_resize(ms_frame_t *f, size_t size)
{
    if (size <= f->cap) {
        f->size = (uint32_t)size;
        return f;
    }
    ms_frame_t *n = ms_frame_new(NULL, size);
    if (!n)
        return NULL;
    uint32_t cap = n->cap;
    memcpy(n, f, sizeof *n); /* header: refs (1, private), times, flags */
    n->cap = cap;
    n->data = (uint8_t *)(n + 1);
    n->size = (uint32_t)size;
    memcpy(n->data, f->data, f->size < size ? f->size : size);
    fc_put(f);
    return n;
}

ms_frame_t *ms_frame_ref(ms_frame_t *f)
{
    atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    return f;
}

void ms_frame_unref(ms_frame_t *f)
{
    if (f && atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) == 1)
        fc_put(f);
}

const char *ms_codec_name(ms_codec_t c)
{
    switch (c) {
    case MS_CODEC_H264:
        return "h264";
    case MS_CODEC_H265:
        return "h265";
    case MS_CODEC_AAC:
        return "aac";
    case MS_CODEC_PCMA:
        return "pcma";
    case MS_CODEC_PCMU:
        return "pcmu";
    case MS_CODEC_ONVIF_META:
        return "onvif";
    case MS_CODEC_NONE:
        break;
    }
    return "none";
}

ms_track_kind_t ms_codec_kind(ms_codec_t c)
{
    switch (c) {
    case MS_CODEC_H264:
    case MS_CODEC_H265:
        return MS_TRACK_VIDEO;
    case MS_CODEC_AAC:
    case MS_CODEC_PCMA:
    case MS_CODEC_PCMU:
        return MS_TRACK_AUDIO;
    default:
        return MS_TRACK_APP;
    }
}
