/* HTTP-FLV body of one client (media/rtmp/flv_live.h). */
#include "media/rtmp/flv_live.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "media/rtmp/flv.h"
#include "util/buf.h"

typedef struct qent {
    struct qent *next;
    ms_blob_t *b;
} qent_t;

struct ms_flv_live {
    atomic_int refs;
    ms_hub_t *hub;
    pthread_mutex_t mu; /* guards the queue, flags and wake */
    qent_t *head, *tail;
    size_t bytes;
    int ended, closed, want_wake, strikes;
    void (*wake)(void *ud);
    void *ud;
    /* loop only */
    ms_reader_t *reader;
    ms_flv_play_t pl;
    ms_buf_t out;
};

static void unref(ms_flv_live_t *l)
{
    if (atomic_fetch_sub(&l->refs, 1) != 1)
        return;
    for (qent_t *e = l->head, *n; e; e = n) {
        n = e->next;
        ms_blob_unref(e->b);
        free(e);
    }
    ms_flv_play_free(&l->pl);
    ms_buf_free(&l->out);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

static void drop_queue_locked(ms_flv_live_t *l)
{
    for (qent_t *e = l->head, *n; e; e = n) {
        n = e->next;
        ms_blob_unref(e->b);
        free(e);
    }
    l->head = l->tail = NULL;
    l->bytes = 0;
}

/* Queues b (consumed); wakes the client. Loop or creator. */
static void push(ms_flv_live_t *l, ms_blob_t *b)
{
    qent_t *e = b ? malloc(sizeof *e) : NULL;
    void (*wake)(void *) = NULL;
    pthread_mutex_lock(&l->mu);
    if (!e) {
        l->ended = 1;
    } else if (!l->ended && !l->closed) {
        e->b = b;
        e->next = NULL;
        if (l->tail)
            l->tail->next = e;
        else
            l->head = e;
        l->tail = e;
        l->bytes += b->len;
        e = NULL;
        b = NULL;
    }
    if (l->want_wake && !l->closed) {
        l->want_wake = 0;
        wake = l->wake;
    }
    if (wake)
        wake(l->ud); /* under mu: close() waits for it */
    pthread_mutex_unlock(&l->mu);
    free(e);
    ms_blob_unref(b);
}

ms_flv_live_t *ms_flv_live_new(ms_hub_t *hub, void (*wake)(void *ud), void *ud)
{
    ms_flv_live_t *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    atomic_init(&l->refs, 2);
    l->hub = hub;
    l->wake = wake;
    l->ud = ud;
    pthread_mutex_init(&l->mu, NULL);
    ms_flv_play_init(&l->pl);
    ms_buf_t h = MS_BUF_INIT;
    ms_flv_file_header(&h, 1, 1);
    ms_blob_t *b = h.err ? NULL : ms_blob_new(h.data, h.len);
    ms_buf_free(&h);
    if (!b) {
        ms_flv_play_free(&l->pl);
        pthread_mutex_destroy(&l->mu);
        free(l);
        return NULL;
    }
    push(l, b);
    return l;
}

static void emit(void *ud, uint8_t type, uint32_t ts, const uint8_t *body, size_t len)
{
    ms_flv_live_t *l = ud;
    ms_flv_file_tag(&l->out, type, ts, body, len);
}

static void tracks(ms_flv_live_t *l)
{
    int n = ms_hub_ntracks(l->hub);
    ms_codec_params_t t[MS_MAX_TRACKS];
    for (int i = 0; i < n && i < MS_MAX_TRACKS; i++)
        t[i] = *ms_hub_track(l->hub, i);
    ms_flv_play_tracks(&l->pl, t, n);
}

static void on_tracks(ms_reader_t *r, void *ud)
{
    (void)r;
    tracks(ud);
}

static void on_frames(ms_reader_t *r, void *ud)
{
    ms_flv_live_t *l = ud;
    ms_frame_t *f;
    while ((f = ms_reader_pop(r)) != NULL) {
        pthread_mutex_lock(&l->mu);
        size_t queued = l->bytes;
        int over = queued > MS_FLV_LIVE_QUEUE_BYTES;
        if (over) {
            drop_queue_locked(l);
            if (++l->strikes >= MS_FLV_LIVE_STRIKES)
                l->ended = 1;
        }
        pthread_mutex_unlock(&l->mu);
        if (over)
            ms_flv_play_resync(&l->pl); /* resume at the next keyframe */
        const ms_codec_params_t *cur =
            f->track < ms_hub_ntracks(l->hub) ? ms_hub_track(l->hub, f->track) : NULL;
        ms_flv_play_frame(&l->pl, f, cur, emit, l);
        ms_frame_unref(f);
    }
    if (l->out.len || l->out.err) {
        push(l, l->out.err ? NULL : ms_blob_new(l->out.data, l->out.len));
        ms_buf_reset(&l->out);
    }
}

int ms_flv_live_attach(ms_flv_live_t *l)
{
    pthread_mutex_lock(&l->mu);
    int gone = l->closed || l->ended;
    pthread_mutex_unlock(&l->mu);
    if (gone)
        return -EPIPE;
    tracks(l);
    ms_reader_opts_t o = {.prompt = 1, .on_frames = on_frames, .on_tracks = on_tracks, .ud = l};
    l->reader = ms_hub_reader_open(l->hub, &o);
    return l->reader ? 0 : -ENOMEM;
}

void ms_flv_live_detach(ms_flv_live_t *l)
{
    if (l->reader) {
        ms_hub_reader_close(l->reader);
        l->reader = NULL;
    }
    pthread_mutex_lock(&l->mu);
    l->ended = 1;
    pthread_mutex_unlock(&l->mu);
    push(l, NULL); /* ends the body and wakes a waiting client */
    unref(l);
}

int ms_flv_live_next(ms_flv_live_t *l, ms_blob_t **out)
{
    pthread_mutex_lock(&l->mu);
    qent_t *e = l->head;
    int r;
    if (e) {
        l->head = e->next;
        if (!l->head)
            l->tail = NULL;
        l->bytes -= e->b->len;
        *out = e->b;
        if (!l->head)
            l->strikes = 0; /* drained */
        r = 0;
    } else if (l->ended) {
        r = -EPIPE;
    } else {
        l->want_wake = 1;
        r = -EAGAIN;
    }
    pthread_mutex_unlock(&l->mu);
    free(e);
    return r;
}

void ms_flv_live_close(ms_flv_live_t *l)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    l->closed = 1;
    l->want_wake = 0;
    drop_queue_locked(l);
    pthread_mutex_unlock(&l->mu);
    unref(l);
}
