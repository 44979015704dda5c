/* Live HLS output object: lifetime, the thread-safe request side (playlist,
 * segments, blocking waits: RFC 8216bis 6.2.5.2 blocking playlist reload and
 * 6.2.5.3 preload hints), the cached playlist, and the waiter timer. The
 * loop-side cutting and muxing is in segmenter.c. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "media/hls/hls_int.h"
#include "media/hls/playlist.h"
#include "util/clock.h"
#include "util/log.h"

/* 220: an LL-HLS part of 200 ms + 20 ms, the latency target (bench/llhls) */
const double ms_hls_latency_bounds_ms[MS_HLS_LAT_BUCKETS] = {
    25, 50, 100, 150, 200, 220, 250, 300, 500, 750, 1000, 1500, 2000, 5000, 10000};

void ms_hls_seg_free(hls_seg_t *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->nparts; i++)
        ms_blob_unref(s->parts[i].blob);
    free(s->parts);
    free(s);
}

static void hls_free(ms_hls_t *h)
{
    for (int i = 0; i < h->nsegs; i++)
        ms_hls_seg_free(h->segs[i]);
    free(h->segs);
    for (int i = 0; i < HLS_MAX_INITS; i++)
        ms_blob_unref(h->inits[i].blob);
    ms_blob_unref(h->playlist);
    while (h->waiters) {
        hls_waiter_t *w = h->waiters;
        h->waiters = w->next;
        free(w);
    }
    pthread_mutex_destroy(&h->lock);
    free(h);
}

ms_hls_t *ms_hls_ref(ms_hls_t *h)
{
    atomic_fetch_add(&h->refs, 1);
    return h;
}

void ms_hls_unref(ms_hls_t *h)
{
    if (h && atomic_fetch_sub(&h->refs, 1) == 1)
        hls_free(h);
}

/* Availability of (msn, part) in the published playlist state, locked. */
static int available_locked(const ms_hls_t *h, int64_t msn, int part)
{
    if (msn < 0)
        return h->pl_ready;
    if (msn < h->pl_open_msn)
        return 1;
    return msn == h->pl_open_msn && part >= 0 && part < h->pl_open_parts;
}

/* Takes the waiters that are satisfied (or all when `all`, or timed out at
 * now_ms when now_ms >= 0) off the list, locked. */
static hls_waiter_t *take_waiters_locked(ms_hls_t *h, int all, int64_t now_ms)
{
    hls_waiter_t *fire = NULL, **pp = &h->waiters;
    while (*pp) {
        hls_waiter_t *w = *pp;
        if (all || available_locked(h, w->msn, w->part) ||
            (now_ms >= 0 && now_ms >= w->deadline_ms)) {
            *pp = w->next;
            w->next = fire;
            fire = w;
        } else {
            pp = &w->next;
        }
    }
    return fire;
}

static void fire_waiters(hls_waiter_t *w)
{
    while (w) {
        hls_waiter_t *next = w->next;
        w->cb(w->ud);
        free(w);
        w = next;
    }
}

/* Renders the playlist of the current state into a new blob (NULL on
 * failure). Called with the lock held, on any thread: every field read here
 * is written under the lock by the loop thread. */
static ms_blob_t *render_locked(ms_hls_t *h)
{
    int first = h->nlisted_from, n = h->nsegs - first;
    int total_parts = 0;
    if (n <= 0)
        return NULL;
    for (int i = first; i < h->nsegs; i++)
        total_parts += h->segs[i]->nparts;
    ms_blob_t *blob = NULL;
    ms_hls_pl_seg_t *ps = calloc((size_t)n, sizeof *ps);
    ms_hls_pl_part_t *pp = calloc((size_t)total_parts + 1, sizeof *pp);
    if (ps && pp) {
        int np = 0, complete_seen = 0;
        for (int i = h->nsegs - 1; i >= first; i--) {
            const hls_seg_t *s = h->segs[i];
            ms_hls_pl_seg_t *d = &ps[i - first];
            d->msn = s->msn;
            d->dur = s->dur;
            d->pdt_us = s->pdt_us;
            d->discont = s->discont;
            d->gen = s->gen;
            d->complete = s->complete;
            if (s->complete && ++complete_seen > HLS_PART_SEGS)
                continue;
            d->parts = pp + np;
            d->nparts = s->nparts;
            for (int k = 0; k < s->nparts; k++) {
                pp[np].dur = s->parts[k].dur;
                pp[np++].independent = s->parts[k].independent;
            }
        }
        /* The hint follows the segment list itself (not the last
         * republish), so a part cut just before republish is never both
         * listed and hinted. */
        const hls_seg_t *last = h->segs[h->nsegs - 1];
        ms_hls_pl_t pl = {
            .fmp4 = h->format == MS_HLS_FMP4,
            .target_s = h->pl_target_s,
            .part_target_ms = h->cfg.part_ms,
            .disc_seq = h->disc_seq,
            .segs = ps,
            .nsegs = n,
            .hint_msn = last->complete ? last->msn + 1 : last->msn,
            .hint_part = last->complete ? 0 : last->nparts,
        };
        ms_buf_t b = MS_BUF_INIT;
        if (ms_hls_pl_render(&pl, &b) == 0)
            blob = ms_buf_to_blob(&b);
        ms_buf_free(&b);
    }
    free(ps);
    free(pp);
    return blob;
}

void ms_hls_republish(ms_hls_t *h)
{
    /* The loop thread is the only writer of segs: read without the lock.
     * The text itself is rendered lazily, by the first playlist request
     * after a change (render_locked), so a part cut with nobody asking
     * costs no rendering. */
    int ready = 0;
    for (int i = h->nlisted_from; i < h->nsegs; i++)
        ready |= h->segs[i]->complete;
    const hls_seg_t *last = h->nsegs ? h->segs[h->nsegs - 1] : NULL;
    pthread_mutex_lock(&h->lock);
    ms_blob_t *old = h->playlist;
    h->playlist = NULL;
    h->pl_ready = ready;
    h->pl_target_s = h->target_s;
    if (last && !last->complete) {
        h->pl_open_msn = last->msn;
        h->pl_open_parts = last->nparts;
    } else {
        h->pl_open_msn = h->next_msn;
        h->pl_open_parts = 0;
    }
    hls_waiter_t *fire = take_waiters_locked(h, 0, -1);
    pthread_mutex_unlock(&h->lock);
    ms_blob_unref(old);
    fire_waiters(fire);
}

static void on_tick(uv_timer_t *t)
{
    ms_hls_t *h = t->data;
    pthread_mutex_lock(&h->lock);
    hls_waiter_t *fire = take_waiters_locked(h, 0, ms_mono_ms());
    pthread_mutex_unlock(&h->lock);
    fire_waiters(fire);
}

static void on_timer_closed(uv_handle_t *hd)
{
    ms_hls_unref(hd->data);
}

ms_hls_t *ms_hls_new(uv_loop_t *loop, ms_hub_t *hub, const ms_hls_cfg_t *cfg)
{
    ms_hls_t *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    atomic_init(&h->refs, 1);
    h->cfg = *cfg;
    if (!h->cfg.target_ms)
        h->cfg.target_ms = 2000;
    if (!h->cfg.part_ms)
        h->cfg.part_ms = 200;
    if (!h->cfg.window)
        h->cfg.window = 6;
    snprintf(h->ctx, sizeof h->ctx, "%s [hls]", cfg->log_ctx ? cfg->log_ctx : "");
    h->cfg.log_ctx = h->ctx;
    h->format = cfg->format;
    h->loop = loop;
    h->hub = hub;
    h->vtrack = h->atrack = -1;
    h->target_s = (h->cfg.target_ms + 999) / 1000;
    h->pl_target_s = h->target_s;
    if (h->cfg.seq_base > 0) {
        h->next_msn = h->pl_open_msn = h->cfg.seq_base;
        h->disc_seq = h->cfg.disc_base > 0 ? h->cfg.disc_base : h->cfg.seq_base;
        h->next_discont = 1;
    }
    pthread_mutex_init(&h->lock, NULL);
    if (uv_timer_init(loop, &h->timer) < 0) {
        hls_free(h);
        return NULL;
    }
    h->timer.data = h;
    ms_hls_ref(h); /* owned by the timer handle until its close callback */
    uv_timer_start(&h->timer, on_tick, ms_phase_delay(uv_now(loop), HLS_TICK_MS), HLS_TICK_MS);
    ms_hls_seg_on_tracks(NULL, h);
    ms_reader_opts_t ro = {
        .queue_frames = 0,
        .on_frames = ms_hls_seg_on_frames,
        .on_tracks = ms_hls_seg_on_tracks,
        .ud = h,
    };
    h->reader = ms_hub_reader_open(hub, &ro);
    if (!h->reader) {
        ms_hls_seg_release(h);
        uv_close((uv_handle_t *)&h->timer, on_timer_closed);
        ms_hls_unref(h);
        return NULL;
    }
    return h;
}

void ms_hls_stop(ms_hls_t *h)
{
    if (!h)
        return;
    ms_hub_reader_close(h->reader);
    h->reader = NULL;
    ms_hls_seg_release(h);
    pthread_mutex_lock(&h->lock);
    h->stopped = 1;
    hls_waiter_t *fire = take_waiters_locked(h, 1, -1);
    pthread_mutex_unlock(&h->lock);
    fire_waiters(fire);
    uv_close((uv_handle_t *)&h->timer, on_timer_closed);
    ms_hls_unref(h);
}

int ms_hls_playlist(ms_hls_t *h, const ms_hls_playlist_req_t *req, ms_blob_t **out)
{
    ms_blob_t *pl = NULL;
    int rc = 0;
    pthread_mutex_lock(&h->lock);
    h->last_pl_ms = ms_mono_ms();            /* watched: expired segments are kept */
    if (!h->stopped && req && req->msn >= 0) /* an LL-HLS client (blocking reload) */
        ms_hub_want_prompt(h->hub, h->last_pl_ms + HLS_PROMPT_HOLD_MS);
    if (h->stopped)
        rc = -ESHUTDOWN;
    else if (!h->pl_ready)
        rc = -ENOENT;
    else if (req && req->msn >= 0 && req->msn > h->pl_open_msn + 2)
        rc = -ERANGE;
    else if (req && req->msn >= 0 && !available_locked(h, req->msn, req->part))
        rc = -EAGAIN;
    else {
        if (!h->playlist)
            h->playlist = render_locked(h); /* cached until the next change */
        if (h->playlist)
            pl = ms_blob_ref(h->playlist);
        else
            rc = -ENOMEM;
    }
    pthread_mutex_unlock(&h->lock);
    if (rc < 0)
        return rc;
    if (!req || !req->query_suffix || !*req->query_suffix) {
        *out = pl;
        return 0;
    }
    ms_buf_t b = MS_BUF_INIT;
    ms_hls_pl_add_query((const char *)pl->data, pl->len, req->query_suffix, &b);
    ms_blob_unref(pl);
    *out = ms_buf_to_blob(&b);
    ms_buf_free(&b);
    return *out ? 0 : -ENOMEM;
}

/* Parses a decimal number at *p; advances *p. -1 when none. */
static int64_t parse_num(const char **p)
{
    const char *s = *p;
    int64_t v = 0;
    if (*s < '0' || *s > '9')
        return -1;
    while (*s >= '0' && *s <= '9') {
        if (v > (INT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (*s++ - '0');
    }
    *p = s;
    return v;
}

void ms_hls_body_free(ms_hls_body_t *b)
{
    for (int i = 0; i < b->n; i++)
        ms_blob_unref(b->blobs[i]);
    free(b->blobs);
    memset(b, 0, sizeof *b);
}

/* Takes references to blobs[0..n) into out (out->n = n). */
static int body_set(ms_hls_body_t *out, ms_blob_t *const *blobs, int n)
{
    out->blobs = malloc(sizeof *out->blobs * (size_t)(n ? n : 1));
    if (!out->blobs)
        return -ENOMEM;
    out->n = n;
    out->len = 0;
    for (int i = 0; i < n; i++) {
        out->blobs[i] = ms_blob_ref(blobs[i]);
        out->len += blobs[i]->len;
    }
    return 0;
}

int ms_hls_segment_body(ms_hls_t *h, const char *name, ms_hls_body_t *out,
                        const char **content_type, int64_t *wait_msn, int *wait_part)
{
    enum { K_SEG, K_PART, K_INIT } kind;
    const char *p = name;
    int64_t msn = -1, part = -1;
    if (!strncmp(p, "seg", 3)) {
        kind = K_SEG;
        p += 3;
        msn = parse_num(&p);
    } else if (!strncmp(p, "part", 4)) {
        kind = K_PART;
        p += 4;
        msn = parse_num(&p);
        if (*p++ != '.')
            return -ENOENT;
        part = parse_num(&p);
        if (part < 0 || part > 100000)
            return -ENOENT;
    } else if (!strncmp(p, "init", 4)) {
        kind = K_INIT;
        p += 4;
        msn = parse_num(&p);
    } else {
        return -ENOENT;
    }
    memset(out, 0, sizeof *out);
    if (msn < 0)
        return -ENOENT;
    int rc = -ENOENT;
    pthread_mutex_lock(&h->lock);
    int fmp4 = h->format == MS_HLS_FMP4;
    const char *ext = kind == K_INIT ? ".mp4" : fmp4 ? ".m4s" : ".ts";
    if (strcmp(p, ext) != 0 || (kind == K_INIT && !fmp4)) {
        pthread_mutex_unlock(&h->lock);
        return -ENOENT;
    }
    *content_type = kind == K_INIT || fmp4 ? "video/mp4" : "video/mp2t";
    if (kind == K_PART && !h->stopped) /* only LL-HLS clients ask for parts */
        ms_hub_want_prompt(h->hub, ms_mono_ms() + HLS_PROMPT_HOLD_MS);
    if (kind == K_INIT) {
        for (int i = 0; i < HLS_MAX_INITS; i++) {
            if (h->inits[i].blob && h->inits[i].gen == (uint64_t)msn)
                rc = body_set(out, &h->inits[i].blob, 1);
        }
        pthread_mutex_unlock(&h->lock);
        return rc;
    }
    for (int i = 0; i < h->nsegs; i++) {
        hls_seg_t *s = h->segs[i];
        if (s->msn != msn)
            continue;
        if (kind == K_SEG && s->complete && s->nparts) {
            /* A segment is the concatenation of its parts (RFC 8216bis
             * 4.4.4.9): handed out as their list, not copied. */
            rc = -ENOMEM;
            out->blobs = malloc(sizeof *out->blobs * (size_t)s->nparts);
            if (out->blobs) {
                rc = 0;
                for (int k = 0; k < s->nparts; k++) {
                    if (!s->parts[k].blob)
                        continue;
                    out->blobs[out->n++] = ms_blob_ref(s->parts[k].blob);
                    out->len += s->parts[k].blob->len;
                }
            }
        } else if (kind == K_PART && part < s->nparts && s->parts[part].blob) {
            rc = body_set(out, &s->parts[part].blob, 1);
        }
        break;
    }
    /* The hinted part (or the one after it) not produced yet: block. */
    if (rc < 0 && kind == K_PART && !h->stopped && h->pl_ready &&
        ((msn == h->pl_open_msn && part >= h->pl_open_parts && part <= h->pl_open_parts + 1) ||
         (msn == h->pl_open_msn + 1 && part <= 1))) {
        *wait_msn = msn;
        *wait_part = (int)part;
        rc = -EAGAIN;
    }
    pthread_mutex_unlock(&h->lock);
    return rc;
}

int ms_hls_segment(ms_hls_t *h, const char *name, ms_blob_t **out, const char **content_type,
                   int64_t *wait_msn, int *wait_part)
{
    ms_hls_body_t b;
    int rc = ms_hls_segment_body(h, name, &b, content_type, wait_msn, wait_part);
    if (rc < 0)
        return rc;
    if (b.n == 1) {
        *out = ms_blob_ref(b.blobs[0]);
    } else {
        /* A copy for callers that need one buffer (the HTTP side does not). */
        *out = ms_blob_new(NULL, b.len);
        if (*out) {
            size_t o = 0;
            for (int i = 0; i < b.n; i++) {
                memcpy((*out)->data + o, b.blobs[i]->data, b.blobs[i]->len);
                o += b.blobs[i]->len;
            }
        }
    }
    ms_hls_body_free(&b);
    return *out ? 0 : -ENOMEM;
}

int ms_hls_wait(ms_hls_t *h, int64_t msn, int part, void (*cb)(void *ud), void *ud)
{
    hls_waiter_t *w = malloc(sizeof *w);
    if (!w)
        return -ENOMEM;
    w->msn = msn;
    w->part = part;
    w->cb = cb;
    w->ud = ud;
    w->deadline_ms = ms_mono_ms() + 3 * (int64_t)h->cfg.target_ms;
    pthread_mutex_lock(&h->lock);
    int rc = 0;
    if (h->stopped)
        rc = -ESHUTDOWN;
    else if (available_locked(h, msn, part))
        rc = 1;
    else {
        w->next = h->waiters;
        h->waiters = w;
    }
    pthread_mutex_unlock(&h->lock);
    if (rc != 0)
        free(w);
    return rc;
}

void ms_hls_get_info(ms_hls_t *h, ms_hls_info_t *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&h->lock);
    out->ready = h->pl_ready;
    out->format = h->format;
    out->segments_total = h->segments_total;
    out->bytes_total = h->bytes_total;
    out->first_msn = out->last_msn = -1;
    out->next_msn = h->cfg.seq_base > 0 ? h->cfg.seq_base : 0;
    out->last_disc = h->disc_seq;
    for (int i = 0; i < h->nsegs; i++) {
        const hls_seg_t *s = h->segs[i];
        if (s->msn >= out->next_msn)
            out->next_msn = s->msn + 1;
        if (i >= h->nlisted_from && s->discont)
            out->last_disc++;
        if (s->complete && i >= h->nlisted_from) {
            if (out->first_msn < 0)
                out->first_msn = s->msn;
            out->last_msn = s->msn;
            out->segments++;
        }
    }
    /* kept as running sums (segmenter.c close_part, prune_locked): this is
     * called for every stream by each cluster load report and /metrics */
    out->parts = h->held_parts;
    out->bytes_held = h->held_bytes;
    pthread_mutex_unlock(&h->lock);
}

void ms_hls_get_latency(ms_hls_t *h, ms_hls_latency_t *out)
{
    pthread_mutex_lock(&h->lock);
    *out = h->lat;
    pthread_mutex_unlock(&h->lock);
}
