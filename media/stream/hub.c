#include "media/stream/hub.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/clock.h"
#include "util/log.h"

/* The GOP cache is bounded so that a camera with a huge GOP (or no video
 * keyframes at all) cannot grow memory without limit; past the bound (the
 * hub's limits, and GOP_MAX_FRAMES) the cache is dropped, counted, and new
 * readers wait for the next keyframe. */
#define GOP_MAX_FRAMES 4096
#define DEFAULT_QUEUE  1024
#define RING_INITIAL   64 /* slots allocated at first; most readers pop at once */

struct ms_reader {
    ms_hub_t *hub;
    ms_reader_t *next;
    ms_frame_t **ring;
    uint32_t cap;   /* the configured bound (queue_frames) */
    uint32_t alloc; /* slots allocated: grows by doubling up to cap, as needed */
    uint32_t head, count;
    int64_t bytes; /* payload bytes queued */
    int wait_key;
    uint64_t dropped;
    uint32_t overflows;
    ms_reader_opts_t opts;
};

struct ms_hub {
    char ctx[128];
    int ntracks;
    ms_codec_params_t *tracks; /* ntracks, allocated by set_tracks (1.6 KiB each) */
    uint32_t generation;
    int has_video;
    ms_frame_t **gop;
    uint32_t gop_len, gop_cap;
    atomic_int_least64_t gop_bytes; /* read by ms_hub_get_info() on other threads */
    int64_t gop_start_us;           /* arrival of the cached keyframe (coarse mono) */
    int64_t max_bytes, max_ms;      /* limits (ms_hub_set_limits) */
    int batch_pending;              /* frames published since the last batch end */
    ms_reader_t *readers;
    int nreaders;
    int prompt_readers;                /* open readers with opts.prompt (loop) */
    atomic_int_least64_t prompt_until; /* mono ms (any thread) */

    pthread_mutex_t info_lock; /* guards tracks/generation copies for other threads */
    atomic_int clients;
    atomic_uint_least64_t bytes_out;
    atomic_uint_least64_t frames_in;
    atomic_uint_least64_t bytes_in;
    atomic_int_least64_t last_frame_us;
    atomic_int_least64_t last_key_us;
    atomic_uint_least64_t keys;     /* video keyframes published */
    atomic_uint_least64_t hit_keys; /* keys at the last limit hit, + 1 (0 = no hit) */
    /* keyframe-wait limit hits; the text under info_lock */
    atomic_uint_least64_t limit_hits;
    atomic_int_least64_t limit_hit_us;
    char limit_what[96];
};

ms_hub_t *ms_hub_new(const char *log_ctx)
{
    ms_hub_t *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    snprintf(h->ctx, sizeof h->ctx, "%s", log_ctx ? log_ctx : "[hub]");
    pthread_mutex_init(&h->info_lock, NULL);
    h->max_bytes = MS_HUB_DEF_MAX_BYTES;
    h->max_ms = MS_HUB_DEF_MAX_MS;
    return h;
}

void ms_hub_set_limits(ms_hub_t *h, int64_t max_bytes, int64_t max_ms)
{
    h->max_bytes = max_bytes > 0 ? max_bytes : MS_HUB_DEF_MAX_BYTES;
    h->max_ms = max_ms > 0 ? max_ms : MS_HUB_DEF_MAX_MS;
}

int64_t ms_hub_limit_bytes(const ms_hub_t *h)
{
    return h->max_bytes;
}

int64_t ms_hub_limit_ms(const ms_hub_t *h)
{
    return h->max_ms;
}

void ms_hub_note_limit(ms_hub_t *h, const char *what)
{
    atomic_fetch_add(&h->limit_hits, 1);
    atomic_store(&h->limit_hit_us, ms_mono_us());
    atomic_store(&h->hit_keys, atomic_load(&h->keys) + 1);
    pthread_mutex_lock(&h->info_lock);
    snprintf(h->limit_what, sizeof h->limit_what, "%s", what);
    pthread_mutex_unlock(&h->info_lock);
    int64_t key = atomic_load(&h->last_key_us);
    MS_WARN(h->ctx, "no keyframe for %lld s: %s",
            key ? (long long)((ms_mono_us() - key) / 1000000) : -1LL, what);
}

static void gop_clear(ms_hub_t *h)
{
    for (uint32_t i = 0; i < h->gop_len; i++)
        ms_frame_unref(h->gop[i]);
    h->gop_len = 0;
    atomic_store_explicit(&h->gop_bytes, 0, memory_order_relaxed);
}

void ms_hub_free(ms_hub_t *h)
{
    if (!h)
        return;
    if (h->readers)
        MS_ERROR(h->ctx, "hub freed with %d readers still open", h->nreaders);
    gop_clear(h);
    free(h->gop);
    free(h->tracks);
    pthread_mutex_destroy(&h->info_lock);
    free(h);
}

static void notify_tracks(ms_hub_t *h)
{
    ms_reader_t *r = h->readers;
    while (r) {
        ms_reader_t *next = r->next; /* the callback may close r */
        if (r->opts.on_tracks)
            r->opts.on_tracks(r, r->opts.ud);
        r = next;
    }
}

int ms_hub_set_tracks(ms_hub_t *h, const ms_codec_params_t *tracks, int ntracks)
{
    if (ntracks < 0 || ntracks > MS_MAX_TRACKS)
        return -EINVAL;
    ms_codec_params_t *nt = NULL;
    if (ntracks > 0) {
        nt = malloc(sizeof *nt * (size_t)ntracks);
        if (!nt)
            return -ENOMEM;
    }
    pthread_mutex_lock(&h->info_lock);
    free(h->tracks);
    h->tracks = nt;
    h->ntracks = ntracks;
    h->has_video = 0;
    for (int i = 0; i < ntracks; i++) {
        h->tracks[i] = tracks[i];
        if (tracks[i].kind == MS_TRACK_VIDEO)
            h->has_video = 1;
    }
    h->generation++;
    pthread_mutex_unlock(&h->info_lock);
    gop_clear(h);
    notify_tracks(h);
    return 0;
}

int ms_hub_update_params(ms_hub_t *h, int track, const ms_codec_params_t *p)
{
    if (track < 0 || track >= h->ntracks)
        return -EINVAL;
    pthread_mutex_lock(&h->info_lock);
    h->tracks[track] = *p;
    pthread_mutex_unlock(&h->info_lock);
    return 0;
}

void ms_hub_reset(ms_hub_t *h)
{
    ms_hub_set_tracks(h, NULL, 0);
}

int ms_hub_ntracks(const ms_hub_t *h)
{
    return h->ntracks;
}

const ms_codec_params_t *ms_hub_track(const ms_hub_t *h, int track)
{
    if (track < 0 || track >= h->ntracks)
        return NULL;
    return &h->tracks[track];
}

uint32_t ms_hub_generation(const ms_hub_t *h)
{
    return h->generation;
}

void ms_hub_get_info(ms_hub_t *h, ms_hub_info_t *out)
{
    pthread_mutex_lock(&h->info_lock);
    out->ntracks = h->ntracks;
    if (h->ntracks > 0)
        memcpy(out->tracks, h->tracks, sizeof(ms_codec_params_t) * (size_t)h->ntracks);
    out->generation = h->generation;
    out->readers = h->nreaders;
    snprintf(out->limit_what, sizeof out->limit_what, "%s", h->limit_what);
    pthread_mutex_unlock(&h->info_lock);
    out->last_key_us = atomic_load(&h->last_key_us);
    out->limit_hits = atomic_load(&h->limit_hits);
    out->limit_hit_us = atomic_load(&h->limit_hit_us);
    uint64_t hk = atomic_load(&h->hit_keys);
    out->limit_waiting = hk && hk - 1 == atomic_load(&h->keys);
    out->gop_bytes = atomic_load(&h->gop_bytes);
    out->last_frame_us = atomic_load(&h->last_frame_us);
    out->frames_in = atomic_load(&h->frames_in);
    out->bytes_in = atomic_load(&h->bytes_in);
}

void ms_hub_clients_add(ms_hub_t *h, int delta)
{
    atomic_fetch_add(&h->clients, delta);
}

int ms_hub_clients(ms_hub_t *h)
{
    return atomic_load(&h->clients);
}

void ms_hub_bytes_out_add(ms_hub_t *h, uint64_t n)
{
    atomic_fetch_add_explicit(&h->bytes_out, n, memory_order_relaxed);
}

uint64_t ms_hub_bytes_out(ms_hub_t *h)
{
    return atomic_load(&h->bytes_out);
}

static int is_video_key(const ms_hub_t *h, const ms_frame_t *f)
{
    return (f->flags & MS_FRAME_KEY) && f->track < h->ntracks &&
           h->tracks[f->track].kind == MS_TRACK_VIDEO;
}

static void gop_push(ms_hub_t *h, ms_frame_t *f)
{
    if (!h->has_video)
        return; /* audio-only: every frame is a start point, nothing to cache */
    if (is_video_key(h, f)) {
        gop_clear(h);
        h->gop_start_us = ms_mono_coarse_us();
    } else if (h->gop_len == 0) {
        return; /* no keyframe yet: nothing a reader could start from */
    }
    int64_t gop_bytes = atomic_load_explicit(&h->gop_bytes, memory_order_relaxed);
    int64_t age_ms = (ms_mono_coarse_us() - h->gop_start_us) / 1000;
    if (h->gop_len >= GOP_MAX_FRAMES || gop_bytes + f->size > h->max_bytes || age_ms > h->max_ms) {
        char what[96];
        snprintf(what, sizeof what, "GOP cache dropped at %lld MB, %lld s",
                 (long long)(gop_bytes >> 20), (long long)(age_ms / 1000));
        gop_clear(h);
        ms_hub_note_limit(h, what);
        return;
    }
    if (h->gop_len == h->gop_cap) {
        uint32_t cap = h->gop_cap ? h->gop_cap * 2 : 256;
        ms_frame_t **g = realloc(h->gop, cap * sizeof *g);
        if (!g) {
            gop_clear(h);
            return;
        }
        h->gop = g;
        h->gop_cap = cap;
    }
    h->gop[h->gop_len++] = ms_frame_ref(f);
    /* loop-only writer: no locked read-modify-write (see ms_hub_publish) */
    atomic_store_explicit(&h->gop_bytes, gop_bytes + f->size, memory_order_relaxed);
}

static void ring_clear(ms_reader_t *r)
{
    r->bytes = 0;
    while (r->count) {
        ms_frame_unref(r->ring[r->head]);
        r->head = (r->head + 1) % r->alloc;
        r->count--;
    }
}

/* Doubles the ring's allocation (up to cap), keeping the queued frames in
 * order. Returns 0 or -ENOMEM (the caller treats the ring as full). */
static int ring_grow(ms_reader_t *r)
{
    uint32_t na = r->alloc * 2 > r->cap ? r->cap : r->alloc * 2;
    ms_frame_t **nr = malloc(sizeof *nr * na);
    if (!nr)
        return -ENOMEM;
    for (uint32_t i = 0; i < r->count; i++)
        nr[i] = r->ring[(r->head + i) % r->alloc];
    free(r->ring);
    r->ring = nr;
    r->alloc = na;
    r->head = 0;
    return 0;
}

/* Queues f on r; returns 1 if queued. */
static int reader_push(ms_reader_t *r, ms_frame_t *f)
{
    ms_hub_t *h = r->hub;
    if (r->wait_key) {
        if (h->has_video && !is_video_key(h, f)) {
            r->dropped++;
            return 0;
        }
        r->wait_key = 0;
    }
    if (r->count == r->alloc && r->alloc < r->cap)
        (void)ring_grow(r);
    /* bytes too: 2 x the limit leaves room for a whole GOP cache at open */
    if (r->count == r->alloc || (r->count && r->bytes + f->size > 2 * h->max_bytes)) {
        r->dropped += r->count + 1;
        r->overflows++;
        ring_clear(r);
        r->wait_key = h->has_video && !is_video_key(h, f);
        if (r->wait_key)
            return 0;
    }
    r->ring[(r->head + r->count) % r->alloc] = ms_frame_ref(f);
    r->count++;
    r->bytes += f->size;
    return 1;
}

void ms_hub_publish(ms_hub_t *h, ms_frame_t *f)
{
    if (f->track >= h->ntracks)
        return;
    /* The loop is the only writer: a relaxed load and store (plain moves)
     * instead of a locked read-modify-write per frame; readers on other
     * threads still see whole values. */
    atomic_store_explicit(&h->frames_in,
                          atomic_load_explicit(&h->frames_in, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    atomic_store_explicit(&h->bytes_in,
                          atomic_load_explicit(&h->bytes_in, memory_order_relaxed) + f->size,
                          memory_order_relaxed);
    /* "last frame seen" needs no better than the kernel tick: the coarse
     * clock costs no timer read per frame. */
    atomic_store_explicit(&h->last_frame_us, ms_mono_coarse_us(), memory_order_relaxed);
    if (is_video_key(h, f)) {
        atomic_store_explicit(&h->last_key_us, ms_mono_coarse_us(), memory_order_relaxed);
        atomic_store_explicit(&h->keys, atomic_load_explicit(&h->keys, memory_order_relaxed) + 1,
                              memory_order_relaxed);
    }
    h->batch_pending = 1;
    gop_push(h, f);
    ms_reader_t *r = h->readers;
    while (r) {
        ms_reader_t *next = r->next; /* the callback may close r */
        if (reader_push(r, f) && r->opts.on_frames)
            r->opts.on_frames(r, r->opts.ud);
        r = next;
    }
}

void ms_hub_batch_end(ms_hub_t *h)
{
    if (!h->batch_pending)
        return;
    h->batch_pending = 0;
    ms_reader_t *r = h->readers;
    while (r) {
        ms_reader_t *next = r->next; /* the callback may close r */
        if (r->opts.on_batch_end)
            r->opts.on_batch_end(r, r->opts.ud);
        r = next;
    }
}

void ms_hub_want_prompt(ms_hub_t *h, int64_t until_mono_ms)
{
    int_least64_t cur = atomic_load_explicit(&h->prompt_until, memory_order_relaxed);
    while (cur < until_mono_ms &&
           !atomic_compare_exchange_weak_explicit(&h->prompt_until, &cur, until_mono_ms,
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

int ms_hub_prompt_wanted(const ms_hub_t *h, int64_t now_mono_ms)
{
    return h->prompt_readers > 0 ||
           atomic_load_explicit(&h->prompt_until, memory_order_relaxed) > now_mono_ms;
}

uint32_t ms_hub_batch_max_ms(const ms_hub_t *h)
{
    uint32_t m = 0;
    for (const ms_reader_t *r = h->readers; r; r = r->next)
        if (r->opts.batch_max_ms && (!m || r->opts.batch_max_ms < m))
            m = r->opts.batch_max_ms;
    return m;
}

ms_reader_t *ms_hub_reader_open(ms_hub_t *h, const ms_reader_opts_t *opts)
{
    ms_reader_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->hub = h;
    r->opts = *opts;
    r->cap = opts->queue_frames ? opts->queue_frames : DEFAULT_QUEUE;
    r->alloc = r->cap < RING_INITIAL ? r->cap : RING_INITIAL;
    r->ring = calloc(r->alloc, sizeof *r->ring);
    if (!r->ring) {
        free(r);
        return NULL;
    }
    /* Start on a keyframe: the GOP cache if there is one, else wait. */
    r->wait_key = h->has_video;
    for (uint32_t i = 0; i < h->gop_len; i++)
        reader_push(r, h->gop[i]);
    r->next = h->readers;
    h->readers = r;
    r->opts.prompt = !!opts->prompt;
    if (r->opts.prompt)
        h->prompt_readers++;
    pthread_mutex_lock(&h->info_lock);
    h->nreaders++;
    pthread_mutex_unlock(&h->info_lock);
    if (r->count && r->opts.on_frames)
        r->opts.on_frames(r, r->opts.ud);
    return r;
}

void ms_hub_reader_close(ms_reader_t *r)
{
    if (!r)
        return;
    ms_hub_t *h = r->hub;
    for (ms_reader_t **p = &h->readers; *p; p = &(*p)->next) {
        if (*p == r) {
            *p = r->next;
            break;
        }
    }
    if (r->opts.prompt)
        h->prompt_readers--;
    pthread_mutex_lock(&h->info_lock);
    h->nreaders--;
    pthread_mutex_unlock(&h->info_lock);
    ring_clear(r);
    free(r->ring);
    free(r);
}

void ms_reader_set_prompt(ms_reader_t *r, int prompt)
{
    prompt = !!prompt;
    if (!r || r->opts.prompt == prompt)
        return;
    r->opts.prompt = prompt;
    r->hub->prompt_readers += prompt ? 1 : -1;
}

ms_frame_t *ms_reader_pop(ms_reader_t *r)
{
    if (!r->count)
        return NULL;
    ms_frame_t *f = r->ring[r->head];
    r->head = (r->head + 1) % r->alloc;
    r->count--;
    r->bytes -= f->size;
    return f;
}

uint32_t ms_reader_queued(const ms_reader_t *r)
{
    return r->count;
}

uint64_t ms_reader_dropped(const ms_reader_t *r)
{
    return r->dropped;
}

uint32_t ms_reader_overflows(const ms_reader_t *r)
{
    return r->overflows;
}

ms_hub_t *ms_reader_hub(const ms_reader_t *r)
{
    return r->hub;
}
