/* Live snapshot object (media/snapshot/snapshot.h): the hub reader that
 * keeps the latest keyframe, the per-keyframe JPEG cache with its single
 * decode in flight (uv_queue_work), and the one-frame MP4. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "media/fmp4/fmp4.h"
#include "media/snapshot/snapshot.h"
#include "util/buf.h"
#include "util/log.h"

typedef struct waiter {
    struct waiter *next;
    void (*cb)(void *ud);
    void *ud;
} waiter_t;

struct ms_snapshot {
    atomic_int refs;
    char ctx[128];
    uv_loop_t *loop;
    ms_hub_t *hub;
    ms_reader_t *reader; /* loop only */
    int vtrack;          /* loop only */
    uv_async_t async;
    ms_snapshot_cfg_t cfg;
    atomic_uint_least64_t decodes;

    pthread_mutex_t lock;
    /* --- guarded by lock --- */
    int stopped;
    ms_frame_t *key; /* latest video keyframe */
    ms_codec_params_t params;
    uint64_t key_seq; /* bumped for every new keyframe (0 = none yet) */
    uint64_t jpeg_seq;
    ms_blob_t *full, *preview;
    int jpeg_err; /* decode of jpeg_seq failed */
    int busy;     /* a decode is in flight */
    int want;     /* a decode was asked for and not started yet */
    waiter_t *waiters;
    uint64_t mp4_seq;
    ms_blob_t *mp4;
};

typedef struct {
    uv_work_t req;
    ms_snapshot_t *s;
    ms_frame_t *frame;
    ms_codec_params_t params;
    uint64_t seq;
    int rc;
    ms_blob_t *full, *preview;
} job_t;

static void snap_free(ms_snapshot_t *s)
{
    ms_frame_unref(s->key);
    ms_blob_unref(s->full);
    ms_blob_unref(s->preview);
    ms_blob_unref(s->mp4);
    while (s->waiters) {
        waiter_t *w = s->waiters;
        s->waiters = w->next;
        free(w);
    }
    pthread_mutex_destroy(&s->lock);
    free(s);
}

ms_snapshot_t *ms_snapshot_ref(ms_snapshot_t *s)
{
    atomic_fetch_add(&s->refs, 1);
    return s;
}

void ms_snapshot_unref(ms_snapshot_t *s)
{
    if (s && atomic_fetch_sub(&s->refs, 1) == 1)
        snap_free(s);
}

uint64_t ms_snapshot_decodes(ms_snapshot_t *s)
{
    return atomic_load(&s->decodes);
}

static void fire(waiter_t *w)
{
    while (w) {
        waiter_t *next = w->next;
        w->cb(w->ud);
        free(w);
        w = next;
    }
}

/* ---- decode on the thread pool ------------------------------------------ */

static void work_cb(uv_work_t *req)
{
    job_t *j = req->data;
    atomic_fetch_add(&j->s->decodes, 1);
    j->rc = ms_snapshot_encode(&j->params, j->frame->data, j->frame->size, j->s->cfg.preview_width,
                               j->s->cfg.quality, &j->full, &j->preview);
}

static void after_work_cb(uv_work_t *req, int status)
{
    job_t *j = req->data;
    ms_snapshot_t *s = j->s;
    if (status < 0 && j->rc == 0)
        j->rc = -ECANCELED;
    if (j->rc < 0)
        MS_WARN(s->ctx, "keyframe decode/encode failed: %d", j->rc);
    pthread_mutex_lock(&s->lock);
    s->busy = 0;
    ms_blob_t *old_full = s->full, *old_prev = s->preview;
    s->full = j->full;
    s->preview = j->preview;
    s->jpeg_seq = j->seq;
    s->jpeg_err = j->rc < 0;
    waiter_t *w = s->waiters;
    s->waiters = NULL;
    pthread_mutex_unlock(&s->lock);
    ms_blob_unref(old_full);
    ms_blob_unref(old_prev);
    fire(w);
    ms_frame_unref(j->frame);
    free(j);
    ms_snapshot_unref(s);
}

static void on_async(uv_async_t *a)
{
    ms_snapshot_t *s = a->data;
    job_t *j = calloc(1, sizeof *j);
    pthread_mutex_lock(&s->lock);
    if (s->stopped || s->busy || !s->want || !s->key) {
        pthread_mutex_unlock(&s->lock);
        free(j);
        return;
    }
    s->want = 0;
    if (!j) {
        s->jpeg_seq = s->key_seq;
        s->jpeg_err = 1;
        waiter_t *w = s->waiters;
        s->waiters = NULL;
        pthread_mutex_unlock(&s->lock);
        fire(w);
        return;
    }
    s->busy = 1;
    j->s = ms_snapshot_ref(s);
    j->frame = ms_frame_ref(s->key);
    j->params = s->params;
    j->seq = s->key_seq;
    pthread_mutex_unlock(&s->lock);
    j->req.data = j;
    if (uv_queue_work(s->loop, &j->req, work_cb, after_work_cb) < 0) {
        j->rc = -ENOMEM;
        after_work_cb(&j->req, 0);
    }
}

int ms_snapshot_get(ms_snapshot_t *s, int preview, ms_blob_t **out, void (*ready)(void *ud),
                    void *ud)
{
    *out = NULL;
    int rc, kick = 0;
    pthread_mutex_lock(&s->lock);
    if (s->stopped) {
        rc = -ESHUTDOWN;
    } else if (!s->key) {
        rc = -ENOENT;
    } else if (s->jpeg_seq == s->key_seq && s->full) {
        *out = ms_blob_ref(preview ? s->preview : s->full);
        rc = 0;
    } else if (s->jpeg_seq == s->key_seq && s->jpeg_err && !s->busy) {
        rc = -EIO;
    } else if (!ready) {
        rc = -EINVAL;
    } else {
        waiter_t *w = malloc(sizeof *w);
        if (!w) {
            rc = -ENOMEM;
        } else {
            w->cb = ready;
            w->ud = ud;
            w->next = s->waiters;
            s->waiters = w;
            if (!s->busy && !s->want)
                kick = s->want = 1;
            rc = -EAGAIN;
        }
    }
    pthread_mutex_unlock(&s->lock);
    if (kick)
        uv_async_send(&s->async);
    return rc;
}

/* ---- one-frame MP4 -------------------------------------------------------- */

static ms_blob_t *build_mp4(const ms_codec_params_t *p, const ms_frame_t *f)
{
    ms_fmp4_t *m = ms_fmp4_new(p, 1);
    if (!m)
        return NULL;
    ms_buf_t b = MS_BUF_INIT;
    ms_fmp4_sample_t smp = {f, 3600};
    ms_fmp4_run_t run = {0, 0, &smp, 1};
    ms_blob_t *blob = NULL;
    if (ms_fmp4_write_init(m, &b) == 0 && ms_fmp4_write_fragment(m, 1, &run, 1, &b) == 0)
        blob = ms_buf_to_blob(&b);
    ms_buf_free(&b);
    ms_fmp4_free(m);
    return blob;
}

int ms_snapshot_get_mp4(ms_snapshot_t *s, ms_blob_t **out)
{
    *out = NULL;
    pthread_mutex_lock(&s->lock);
    if (s->stopped || !s->key) {
        int rc = s->stopped ? -ESHUTDOWN : -ENOENT;
        pthread_mutex_unlock(&s->lock);
        return rc;
    }
    if (s->mp4 && s->mp4_seq == s->key_seq) {
        *out = ms_blob_ref(s->mp4);
        pthread_mutex_unlock(&s->lock);
        return 0;
    }
    ms_frame_t *f = ms_frame_ref(s->key);
    ms_codec_params_t p = s->params;
    uint64_t seq = s->key_seq;
    pthread_mutex_unlock(&s->lock);

    /* Built outside the lock (a memcpy of one keyframe); two racing
     * builders of the same keyframe both succeed, one result is cached. */
    ms_blob_t *b = build_mp4(&p, f);
    ms_frame_unref(f);
    if (!b)
        return -ENOMEM;
    pthread_mutex_lock(&s->lock);
    if (seq > s->mp4_seq || !s->mp4) {
        ms_blob_unref(s->mp4);
        s->mp4 = ms_blob_ref(b);
        s->mp4_seq = seq;
    }
    pthread_mutex_unlock(&s->lock);
    *out = b;
    return 0;
}

/* ---- hub reader (loop) ---------------------------------------------------- */

static void on_tracks(ms_reader_t *r, void *ud)
{
    ms_snapshot_t *s = ud;
    ms_hub_t *hub = r ? ms_reader_hub(r) : s->hub;
    s->vtrack = -1;
    for (int i = 0; i < ms_hub_ntracks(hub); i++) {
        ms_codec_t c = ms_hub_track(hub, i)->codec;
        if (c == MS_CODEC_H264 || c == MS_CODEC_H265) {
            s->vtrack = i;
            break;
        }
    }
    /* A new session (or the source gone): the old picture is stale. */
    pthread_mutex_lock(&s->lock);
    ms_frame_t *old = s->key;
    s->key = NULL;
    pthread_mutex_unlock(&s->lock);
    ms_frame_unref(old);
}

static void on_frames(ms_reader_t *r, void *ud)
{
    ms_snapshot_t *s = ud;
    ms_frame_t *f;
    while ((f = ms_reader_pop(r)) != NULL) {
        if (s->vtrack >= 0 && f->track == s->vtrack && (f->flags & MS_FRAME_KEY)) {
            const ms_codec_params_t *p = ms_hub_track(ms_reader_hub(r), s->vtrack);
            pthread_mutex_lock(&s->lock);
            ms_frame_t *old = s->key;
            s->key = f;
            f = old;
            if (p)
                s->params = *p;
            s->key_seq++;
            pthread_mutex_unlock(&s->lock);
        }
        ms_frame_unref(f);
    }
}

static void on_async_closed(uv_handle_t *h)
{
    ms_snapshot_unref(h->data);
}

ms_snapshot_t *ms_snapshot_new(uv_loop_t *loop, ms_hub_t *hub, const ms_snapshot_cfg_t *cfg)
{
    ms_snapshot_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    atomic_init(&s->refs, 1);
    atomic_init(&s->decodes, 0);
    if (cfg)
        s->cfg = *cfg;
    if (s->cfg.preview_width <= 0)
        s->cfg.preview_width = 320;
    if (s->cfg.quality < 2 || s->cfg.quality > 31)
        s->cfg.quality = 4;
    snprintf(s->ctx, sizeof s->ctx, "%s [snapshot]", cfg && cfg->log_ctx ? cfg->log_ctx : "");
    s->cfg.log_ctx = s->ctx;
    s->loop = loop;
    s->hub = hub;
    s->vtrack = -1;
    pthread_mutex_init(&s->lock, NULL);
    if (uv_async_init(loop, &s->async, on_async) < 0) {
        snap_free(s);
        return NULL;
    }
    s->async.data = s;
    ms_snapshot_ref(s); /* owned by the async handle until its close callback */
    on_tracks(NULL, s);
    /* Only the latest keyframe matters; a small ring would drop to the next
     * keyframe anyway, but the callback drains it at every publish. */
    ms_reader_opts_t ro = {
        .queue_frames = 0, .on_frames = on_frames, .on_tracks = on_tracks, .ud = s};
    s->reader = ms_hub_reader_open(hub, &ro);
    if (!s->reader) {
        uv_close((uv_handle_t *)&s->async, on_async_closed);
        ms_snapshot_unref(s);
        return NULL;
    }
    return s;
}

void ms_snapshot_stop(ms_snapshot_t *s)
{
    if (!s)
        return;
    ms_hub_reader_close(s->reader);
    s->reader = NULL;
    pthread_mutex_lock(&s->lock);
    s->stopped = 1;
    waiter_t *w = s->waiters;
    s->waiters = NULL;
    pthread_mutex_unlock(&s->lock);
    fire(w);
    uv_close((uv_handle_t *)&s->async, on_async_closed);
    ms_snapshot_unref(s);
}
