/* Live fMP4 output (media/fmp4/live.h): fragmenting on the worker loop and
 * the subscribers' bounded queues. Fragments follow ISO/IEC 14496-12
 * section 8.8 (movie fragments); each begins at a video keyframe or at a
 * time cut (then its first sample is not a sync sample).
 *
 * Lazy muxing: with no subscriber the hub reader stays open only to follow
 * the track set (the init segment stays current) and lets every frame go at
 * once: nothing is muxed and no GOP of fragments is held. The first
 * subscriber (any thread) wakes the loop with a uv_async; the loop then
 * re-opens its reader, which hands it the hub's GOP cache at once, so a new
 * client still starts on the latest keyframe without waiting for the next.
 * When the last subscriber leaves, the loop goes back to idle the same way. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "media/fmp4/fmp4.h"
#include "media/fmp4/live.h"
#include "util/buf.h"
#include "util/log.h"

#define GOP_KEEP  64  /* fragments kept for new subscribers */
#define FRAG_MAX  512 /* frames in one fragment before a forced cut */
#define DEF_QUEUE 64

struct ms_fmp4_sub {
    ms_fmp4_sub_t *next, *prev;
    ms_fmp4_live_t *l;
    ms_blob_t *init; /* still to send */
    ms_blob_t **q;
    uint32_t cap, head, n;
    int64_t qbytes; /* bytes queued in q */
    int skipping, strikes, ended, armed;
    int got; /* something was handed out: the body has begun */
    uint64_t dropped;
    void (*wake)(void *ud);
    void *ud;
};

struct ms_fmp4_live {
    atomic_int refs;
    char ctx[128];
    ms_fmp4_live_cfg_t cfg;
    ms_reader_t *reader;
    /* loop only */
    ms_hub_t *hub;
    uv_async_t async; /* subscribers came or all left: (de)activate */
    int active;       /* muxing (some subscriber), else frames are let go */
    ms_fmp4_t *mp4;
    ms_codec_params_t params[MS_MAX_TRACKS];
    int ntracks, vtrack, started;
    int64_t origin90; /* timeline origin in 90 kHz */
    ms_frame_t *pend[FRAG_MAX];
    int npend;
    int64_t frag_start90;
    uint32_t seq;
    uint32_t last_dur[MS_MAX_TRACKS];
    ms_buf_t buf;

    pthread_mutex_t lock;
    /* --- guarded by lock --- */
    int stopped;
    ms_blob_t *init;
    ms_blob_t *gop[GOP_KEEP];
    int ngop;
    int64_t gop_bytes;
    int gop_broken;    /* dropped at its limit: nothing kept until the next keyframe */
    int64_t max_bytes; /* the hub's limit (set at creation): kept GOP, each queue */
    ms_fmp4_sub_t *subs;
    int nsubs;
    uint64_t fragments, bytes;
};

ms_fmp4_live_t *ms_fmp4_live_ref(ms_fmp4_live_t *l)
{
    atomic_fetch_add(&l->refs, 1);
    return l;
}

static void gop_clear_locked(ms_fmp4_live_t *l)
{
    for (int i = 0; i < l->ngop; i++)
        ms_blob_unref(l->gop[i]);
    l->ngop = 0;
    l->gop_bytes = 0;
}

void ms_fmp4_live_unref(ms_fmp4_live_t *l)
{
    if (!l || atomic_fetch_sub(&l->refs, 1) != 1)
        return;
    gop_clear_locked(l);
    ms_blob_unref(l->init);
    ms_fmp4_free(l->mp4);
    ms_buf_free(&l->buf);
    pthread_mutex_destroy(&l->lock);
    free(l);
}

/* ---- subscribers ------------------------------------------------------------ */

static void sub_wake_locked(ms_fmp4_sub_t *s)
{
    if (s->armed) {
        s->armed = 0;
        s->wake(s->ud);
    }
}

static void sub_drop_queue(ms_fmp4_sub_t *s)
{
    while (s->n) {
        ms_blob_unref(s->q[s->head]);
        s->head = (s->head + 1) % s->cap;
        s->n--;
        s->dropped++;
    }
    s->qbytes = 0;
}

static void sub_end_locked(ms_fmp4_sub_t *s, int code)
{
    if (!s->ended)
        s->ended = code;
    sub_wake_locked(s);
}

static void sub_push_locked(ms_fmp4_sub_t *s, ms_blob_t *b, int key)
{
    if (s->ended)
        return;
    if (s->skipping) {
        if (!key) {
            s->dropped++;
            return;
        }
        s->skipping = 0;
    }
    /* full: by count, or by bytes (the hub's limit; one fragment always fits) */
    if (s->n == s->cap || (s->n && s->qbytes + (int64_t)b->len > s->l->max_bytes)) {
        sub_drop_queue(s);
        if (++s->strikes >= MS_FMP4_LIVE_STRIKES) {
            sub_end_locked(s, -EPIPE);
            return;
        }
        if (!key) {
            s->skipping = 1;
            s->dropped++;
            return;
        }
    }
    s->q[(s->head + s->n) % s->cap] = ms_blob_ref(b);
    s->n++;
    s->qbytes += (int64_t)b->len;
    sub_wake_locked(s);
}

/* Wakes the loop to re-check whether muxing is needed (lock held, so stop
 * cannot close the handle meanwhile). */
static void kick_locked(ms_fmp4_live_t *l)
{
    if (!l->stopped)
        uv_async_send(&l->async);
}

ms_fmp4_sub_t *ms_fmp4_live_subscribe(ms_fmp4_live_t *l, uint32_t max_queue, void (*wake)(void *ud),
                                      void *ud, int *err)
{
    ms_fmp4_sub_t *s = calloc(1, sizeof *s);
    if (!max_queue)
        max_queue = DEF_QUEUE;
    if (s)
        s->q = calloc(max_queue, sizeof *s->q);
    if (!s || !s->q) {
        free(s);
        *err = -ENOMEM;
        return NULL;
    }
    s->cap = max_queue;
    s->wake = wake;
    s->ud = ud;
    pthread_mutex_lock(&l->lock);
    if (l->stopped) {
        pthread_mutex_unlock(&l->lock);
        free(s->q);
        free(s);
        *err = -ESHUTDOWN;
        return NULL;
    }
    s->l = ms_fmp4_live_ref(l);
    if (l->init) {
        s->init = ms_blob_ref(l->init);
        for (int i = 0; i < l->ngop; i++)
            sub_push_locked(s, l->gop[i], i == 0);
    }
    s->next = l->subs;
    if (l->subs)
        l->subs->prev = s;
    l->subs = s;
    if (l->nsubs++ == 0)
        kick_locked(l);
    pthread_mutex_unlock(&l->lock);
    *err = 0;
    return s;
}

int ms_fmp4_sub_next(ms_fmp4_sub_t *s, ms_blob_t **out)
{
    ms_fmp4_live_t *l = s->l;
    int rc = 0;
    *out = NULL;
    pthread_mutex_lock(&l->lock);
    if (s->init) {
        *out = s->init;
        s->init = NULL;
        s->got = 1;
    } else if (s->n) {
        *out = s->q[s->head];
        s->head = (s->head + 1) % s->cap;
        s->n--;
        s->qbytes -= (int64_t)(*out)->len;
        s->got = 1;
    } else if (s->ended) {
        rc = s->ended;
    } else {
        s->strikes = 0; /* drained: it kept up */
        s->armed = 1;
        rc = -EAGAIN;
    }
    pthread_mutex_unlock(&l->lock);
    return rc;
}

uint64_t ms_fmp4_sub_dropped(ms_fmp4_sub_t *s)
{
    pthread_mutex_lock(&s->l->lock);
    uint64_t d = s->dropped;
    pthread_mutex_unlock(&s->l->lock);
    return d;
}

void ms_fmp4_sub_close(ms_fmp4_sub_t *s)
{
    if (!s)
        return;
    ms_fmp4_live_t *l = s->l;
    pthread_mutex_lock(&l->lock);
    if (s->prev)
        s->prev->next = s->next;
    else
        l->subs = s->next;
    if (s->next)
        s->next->prev = s->prev;
    if (--l->nsubs == 0)
        kick_locked(l);
    s->armed = 0;
    pthread_mutex_unlock(&l->lock);
    ms_blob_unref(s->init);
    s->dropped = 0;
    sub_drop_queue(s);
    free(s->q);
    free(s);
    ms_fmp4_live_unref(l);
}

void ms_fmp4_live_stats(ms_fmp4_live_t *l, ms_fmp4_live_stats_t *out)
{
    pthread_mutex_lock(&l->lock);
    out->ready = l->init != NULL;
    out->subscribers = l->nsubs;
    out->fragments = l->fragments;
    out->bytes = l->bytes;
    pthread_mutex_unlock(&l->lock);
}

/* ---- fragmenting (loop) -------------------------------------------------- */

static void drop_pending(ms_fmp4_live_t *l)
{
    for (int i = 0; i < l->npend; i++)
        ms_frame_unref(l->pend[i]);
    l->npend = 0;
}

/* Ends the current timeline: every subscriber ends, the kept GOP goes. */
static void reset_timeline(ms_fmp4_live_t *l, int end_subs, int new_init)
{
    drop_pending(l);
    l->started = 0;
    pthread_mutex_lock(&l->lock);
    gop_clear_locked(l);
    /* A body that has begun cannot change timeline: it ends. One that has
     * not (the client came before the first keyframe) starts afresh. */
    for (ms_fmp4_sub_t *s = l->subs; s; s = s->next) {
        if (s->got) {
            if (end_subs)
                sub_end_locked(s, -EPIPE);
        } else {
            sub_drop_queue(s);
            s->skipping = 0;
            if (new_init) {
                ms_blob_unref(s->init);
                s->init = NULL;
            }
        }
    }
    pthread_mutex_unlock(&l->lock);
}

static int64_t to90(const ms_fmp4_live_t *l, int track, int64_t t)
{
    uint32_t rate = l->params[track].clock_rate ? l->params[track].clock_rate : 90000;
    return rate == 90000 ? t : t * 90000 / rate;
}

static void emit(ms_fmp4_live_t *l, const ms_frame_t *next_of)
{
    if (!l->npend)
        return;
    ms_fmp4_sample_t *smp = malloc(sizeof *smp * (size_t)l->npend);
    ms_fmp4_run_t runs[MS_MAX_TRACKS];
    int nruns = 0;
    if (!smp) {
        drop_pending(l);
        return;
    }
    size_t k = 0;
    int key =
        l->vtrack < 0 || (l->pend[0]->track == l->vtrack && (l->pend[0]->flags & MS_FRAME_KEY));
    for (int t = 0; t < l->ntracks; t++) {
        if (!ms_fmp4_carries(l->mp4, t))
            continue;
        size_t first = k;
        int64_t base = -1;
        for (int i = 0; i < l->npend; i++) {
            const ms_frame_t *f = l->pend[i];
            if (f->track != t)
                continue;
            /* duration: to the next frame of this track (in this fragment,
             * else the frame that triggered the cut, else the last one) */
            int64_t nd = -1;
            for (int j = i + 1; j < l->npend && nd < 0; j++)
                if (l->pend[j]->track == t)
                    nd = l->pend[j]->dts;
            if (nd < 0 && next_of && next_of->track == t)
                nd = next_of->dts;
            uint32_t d = ms_fmp4_sample_duration(f->dts, nd, l->last_dur[t],
                                                 l->params[t].clock_rate, l->params[t].codec);
            l->last_dur[t] = d;
            if (base < 0) {
                uint32_t rate = l->params[t].clock_rate ? l->params[t].clock_rate : 90000;
                base = f->dts - l->origin90 * rate / 90000;
            }
            smp[k].frame = f;
            smp[k].duration = d;
            k++;
        }
        if (k > first && base >= 0) {
            runs[nruns].track = t;
            runs[nruns].base_dts = (uint64_t)base;
            runs[nruns].samples = smp + first;
            runs[nruns].nsamples = k - first;
            nruns++;
        }
    }
    ms_buf_reset(&l->buf);
    ms_blob_t *b = NULL;
    if (nruns && ms_fmp4_write_fragment(l->mp4, ++l->seq, runs, nruns, &l->buf) == 0)
        b = ms_buf_to_blob(&l->buf);
    free(smp);
    drop_pending(l);
    if (!b)
        return;
    pthread_mutex_lock(&l->lock);
    char what[96] = "";
    if (key) {
        gop_clear_locked(l);
        l->gop_broken = 0;
    } else if (!l->gop_broken &&
               (l->ngop == GOP_KEEP || l->gop_bytes + (int64_t)b->len > l->max_bytes)) {
        /* no keyframe for too long: new subscribers wait for the next one */
        snprintf(what, sizeof what, "live MP4 GOP dropped at %lld MB, %d fragments",
                 (long long)(l->gop_bytes >> 20), l->ngop);
        gop_clear_locked(l);
        l->gop_broken = 1;
    }
    if (!l->gop_broken) {
        l->gop[l->ngop++] = ms_blob_ref(b);
        l->gop_bytes += (int64_t)b->len;
    }
    l->fragments++;
    l->bytes += b->len;
    for (ms_fmp4_sub_t *s = l->subs; s; s = s->next)
        sub_push_locked(s, b, key);
    pthread_mutex_unlock(&l->lock);
    ms_blob_unref(b);
    if (what[0])
        ms_hub_note_limit(l->hub, what);
}

static void on_frame(ms_fmp4_live_t *l, ms_frame_t *f)
{
    if (!l->mp4 || f->track >= l->ntracks || !ms_fmp4_carries(l->mp4, f->track)) {
        ms_frame_unref(f);
        return;
    }
    if ((f->flags & MS_FRAME_DISCONT) && l->started)
        reset_timeline(l, 1, 0);
    int is_video = f->track == l->vtrack;
    int is_key = is_video && (f->flags & MS_FRAME_KEY);
    int64_t t90 = to90(l, f->track, f->dts);
    if (!l->started) {
        /* A body starts at a video keyframe (any frame for audio only). */
        if (l->vtrack >= 0 && !is_key) {
            ms_frame_unref(f);
            return;
        }
        l->started = 1;
        l->origin90 = t90;
        l->frag_start90 = t90;
    }
    if (t90 < l->origin90) { /* audio slightly before the first keyframe */
        ms_frame_unref(f);
        return;
    }
    int time_cut =
        (is_video || l->vtrack < 0) && t90 - l->frag_start90 >= (int64_t)l->cfg.frag_ms * 90;
    if (l->npend && (is_key || time_cut || l->npend == FRAG_MAX)) {
        emit(l, f);
        l->frag_start90 = t90;
    }
    l->pend[l->npend++] = f;
}

static void on_frames(ms_reader_t *r, void *ud)
{
    ms_fmp4_live_t *l = ud;
    ms_frame_t *f;
    while ((f = ms_reader_pop(r)) != NULL) {
        if (l->active)
            on_frame(l, f);
        else
            ms_frame_unref(f); /* idle: nobody to mux for */
    }
}

static void setup_tracks(ms_fmp4_live_t *l, ms_hub_t *hub)
{
    reset_timeline(l, 1, 1);
    ms_fmp4_free(l->mp4);
    l->mp4 = NULL;
    l->ntracks = ms_hub_ntracks(hub);
    l->vtrack = -1;
    for (int i = 0; i < l->ntracks; i++) {
        l->params[i] = *ms_hub_track(hub, i);
        l->last_dur[i] = 0;
        if (l->vtrack < 0 &&
            (l->params[i].codec == MS_CODEC_H264 || l->params[i].codec == MS_CODEC_H265))
            l->vtrack = i;
    }
    ms_blob_t *init = NULL;
    if (l->ntracks > 0)
        l->mp4 = ms_fmp4_new(l->params, l->ntracks);
    if (l->mp4) {
        ms_buf_reset(&l->buf);
        if (ms_fmp4_write_init(l->mp4, &l->buf) == 0)
            init = ms_buf_to_blob(&l->buf);
        if (!init) {
            MS_WARN(l->ctx, "cannot write the init segment (missing parameter sets?)");
            ms_fmp4_free(l->mp4);
            l->mp4 = NULL;
        }
    }
    pthread_mutex_lock(&l->lock);
    ms_blob_unref(l->init);
    l->init = init;
    for (ms_fmp4_sub_t *s = l->subs; init && s; s = s->next)
        if (!s->got && !s->ended && !s->init) {
            s->init = ms_blob_ref(init);
            sub_wake_locked(s);
        }
    pthread_mutex_unlock(&l->lock);
}

static void on_tracks(ms_reader_t *r, void *ud)
{
    setup_tracks(ud, ms_reader_hub(r));
}

static void on_async(uv_async_t *a)
{
    ms_fmp4_live_t *l = a->data;
    pthread_mutex_lock(&l->lock);
    int want = l->nsubs > 0 && !l->stopped;
    pthread_mutex_unlock(&l->lock);
    if (want == l->active || !l->reader)
        return;
    l->active = want;
    /* Either way the timeline restarts: pending frames and the kept GOP go
     * (subscribers whose body has begun are kept: none when idle). */
    reset_timeline(l, 0, 0);
    if (!want) {
        ms_reader_set_prompt(l->reader, 0); /* idle: the source may batch */
        return;
    }
    /* Re-open the reader: the hub replays its GOP cache into on_frames at
     * once, so the new subscriber gets the latest keyframe right away. The
     * init segment is current: the idle reader followed the track set. */
    ms_reader_opts_t ro = {
        .queue_frames = 0, .prompt = 1, .on_frames = on_frames, .on_tracks = on_tracks, .ud = l};
    ms_hub_reader_close(l->reader);
    l->reader = ms_hub_reader_open(l->hub, &ro);
    if (!l->reader)
        MS_WARN(l->ctx, "cannot re-open the hub reader");
}

static void on_async_closed(uv_handle_t *h)
{
    ms_fmp4_live_unref(h->data);
}

ms_fmp4_live_t *ms_fmp4_live_new(uv_loop_t *loop, ms_hub_t *hub, const ms_fmp4_live_cfg_t *cfg)
{
    ms_fmp4_live_t *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    atomic_init(&l->refs, 1);
    if (cfg)
        l->cfg = *cfg;
    if (!l->cfg.frag_ms)
        l->cfg.frag_ms = 500;
    snprintf(l->ctx, sizeof l->ctx, "%s [live-mp4]", cfg && cfg->log_ctx ? cfg->log_ctx : "");
    l->cfg.log_ctx = l->ctx;
    l->vtrack = -1;
    pthread_mutex_init(&l->lock, NULL);
    l->hub = hub;
    l->max_bytes = ms_hub_limit_bytes(hub);
    if (uv_async_init(loop, &l->async, on_async) < 0) {
        ms_fmp4_live_unref(l);
        return NULL;
    }
    l->async.data = l;
    ms_fmp4_live_ref(l); /* owned by the async handle until its close callback */
    ms_reader_opts_t ro = {
        .queue_frames = 0, .on_frames = on_frames, .on_tracks = on_tracks, .ud = l};
    /* on_tracks only reports later changes: take the current track set
     * first, then the GOP cache (delivered inside reader_open). */
    setup_tracks(l, hub);
    l->reader = ms_hub_reader_open(hub, &ro);
    if (!l->reader) {
        uv_close((uv_handle_t *)&l->async, on_async_closed);
        ms_fmp4_live_unref(l);
        return NULL;
    }
    return l;
}

void ms_fmp4_live_stop(ms_fmp4_live_t *l)
{
    if (!l)
        return;
    ms_hub_reader_close(l->reader);
    l->reader = NULL;
    drop_pending(l);
    pthread_mutex_lock(&l->lock);
    l->stopped = 1;
    for (ms_fmp4_sub_t *s = l->subs; s; s = s->next)
        sub_end_locked(s, -ESHUTDOWN);
    pthread_mutex_unlock(&l->lock);
    uv_close((uv_handle_t *)&l->async, on_async_closed);
    ms_fmp4_live_unref(l);
}
