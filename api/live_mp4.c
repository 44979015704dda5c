/* HTTP glue for live.mp4 and the snapshots (api/live_mp4.h).
 *
 * live.mp4: a callback response (MHD_create_response_from_callback, chunked
 * transfer coding of RFC 9112 section 7.1) reading blobs from an fMP4
 * subscriber. When the subscriber's queue is empty the content reader
 * suspends the connection and the subscriber's wake (worker loop) resumes
 * it. The wake may fire between "queue empty" and the suspend: a `pending`
 * flag then makes the reader return 0 and be called again instead of
 * suspending. The glue mutex is never held while calling into the
 * subscriber (whose lock is held while wake runs), so locks nest one way.
 *
 * Every suspended connection (live.mp4 waiting for data, snapshot waiting
 * for its decode) is on one list under that mutex so that the server can
 * resume them all before MHD_stop_daemon (ms_live_mp4_set_stopping): MHD
 * must not be stopped with suspended connections. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "api/live_mp4.h"
#include "media/rtmp/flv_live.h"
#include "node/streams.h"
#include "util/clock.h"

/* One suspended connection. Guarded by g_mu. */
typedef struct susp {
    struct susp *prev, *next;
    struct MHD_Connection *conn;
    int suspended;
} susp_t;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static susp_t g_susp = {&g_susp, &g_susp, NULL, 0};
static int g_stopping; /* guarded by g_mu */

/* Caller holds g_mu and has checked g_stopping. */
static void suspend_locked(susp_t *e)
{
    e->suspended = 1;
    e->next = &g_susp;
    e->prev = g_susp.prev;
    g_susp.prev->next = e;
    g_susp.prev = e;
    MHD_suspend_connection(e->conn);
}

static void unlink_locked(susp_t *e)
{
    if (!e->suspended)
        return;
    e->suspended = 0;
    e->prev->next = e->next;
    e->next->prev = e->prev;
    e->prev = e->next = e;
}

/* Caller holds g_mu. */
static void resume_locked(susp_t *e)
{
    if (!e->suspended)
        return;
    unlink_locked(e);
    MHD_resume_connection(e->conn);
}

void ms_live_mp4_set_stopping(int stopping)
{
    pthread_mutex_lock(&g_mu);
    g_stopping = stopping;
    while (stopping && g_susp.next != &g_susp)
        resume_locked(g_susp.next);
    pthread_mutex_unlock(&g_mu);
}

typedef struct {
    susp_t susp;         /* first: the connection */
    ms_fmp4_sub_t *sub;  /* live.mp4, or: */
    ms_flv_live_t *flv;  /* live.flv (the client's reference) */
    ms_stream_t *stream; /* live.flv: held until the loop detached flv */
    ms_hub_t *hub;
    uint64_t *sent;  /* the router's byte count (see ms_live_reply_t) or NULL */
    int64_t expires; /* UTC s, 0 = never */
    ms_blob_t *cur;
    size_t off;
    int pending; /* guarded by g_mu */
    void *sess;  /* playback session handle, or NULL */
    void (*sess_bytes)(void *sess, uint64_t bytes);
    void (*sess_close)(void *sess);
    uint64_t total;    /* body bytes handed to MHD */
    atomic_int killed; /* an administrator ended the session */
} live_conn_t;

static void live_wake(void *ud)
{
    live_conn_t *c = ud;
    pthread_mutex_lock(&g_mu);
    if (c->susp.suspended)
        resume_locked(&c->susp);
    else
        c->pending = 1;
    pthread_mutex_unlock(&g_mu);
}

/* Any thread (the session table's kick, under its lock): the body ends at
 * the next read; a waiting connection is resumed for it. */
static void live_kick(void *ctx, uint64_t arg)
{
    (void)arg;
    live_conn_t *c = ctx;
    atomic_store(&c->killed, 1);
    live_wake(c);
}

static ssize_t live_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    live_conn_t *c = cls;
    if (atomic_load(&c->killed))
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (!c->cur) {
        /* the decision lapses with the token: the body ends at a fragment
         * boundary (docs/access.md "Expiry") */
        if (c->expires && ms_wall_us() / 1000000 >= c->expires)
            return MHD_CONTENT_READER_END_OF_STREAM;
        int rc = c->flv ? ms_flv_live_next(c->flv, &c->cur) : ms_fmp4_sub_next(c->sub, &c->cur);
        if (rc == -EAGAIN) {
            pthread_mutex_lock(&g_mu);
            int stopping = g_stopping;
            if (c->pending)
                c->pending = 0;
            else if (!stopping)
                suspend_locked(&c->susp);
            pthread_mutex_unlock(&g_mu);
            return stopping ? MHD_CONTENT_READER_END_OF_STREAM : 0;
        }
        if (rc < 0)
            return MHD_CONTENT_READER_END_OF_STREAM;
        c->off = 0;
    }
    size_t n = c->cur->len - c->off;
    if (n > max)
        n = max;
    memcpy(buf, c->cur->data + c->off, n);
    c->off += n;
    if (c->off == c->cur->len) {
        ms_blob_unref(c->cur);
        c->cur = NULL;
    }
    if (c->hub)
        ms_hub_bytes_out_add(c->hub, n);
    if (c->sent)
        *c->sent += n;
    c->total += n;
    if (c->sess && c->sess_bytes)
        c->sess_bytes(c->sess, c->total);
    return (ssize_t)n;
}

/* live.flv: the subscriber's loop side (media/rtmp/flv_live.h) runs on
 * the stream's worker; the stream reference keeps the hub alive until it
 * is detached there. */
typedef struct {
    ms_flv_live_t *flv;
    ms_stream_t *stream;
} flv_task_t;

static void flv_attach_task(ms_worker_t *w, void *arg)
{
    (void)w;
    ms_flv_live_attach(arg); /* a failure ends the body (next: -EPIPE) */
}

static void flv_detach_task(ms_worker_t *w, void *arg)
{
    (void)w;
    flv_task_t *t = arg;
    ms_flv_live_detach(t->flv);
    ms_stream_unref(t->stream);
    free(t);
}

static void flv_release(live_conn_t *c)
{
    ms_flv_live_close(c->flv); /* no wake after this */
    flv_task_t *t = malloc(sizeof *t);
    if (t) {
        t->flv = c->flv;
        t->stream = c->stream;
        if (ms_worker_post(ms_stream_worker(c->stream), flv_detach_task, t) == 0)
            return;
        free(t);
    }
    /* the worker is gone (shutdown): its loop side is leaked with the
     * stream reference rather than freed under a reader it may still hold */
}

static void live_free(void *cls)
{
    live_conn_t *c = cls;
    if (c->sess && c->sess_close)
        c->sess_close(c->sess); /* no kick after this */
    if (c->flv)
        flv_release(c);
    else
        ms_fmp4_sub_close(c->sub); /* no wake after this */
    ms_blob_unref(c->cur);
    if (c->hub)
        ms_hub_clients_add(c->hub, -1);
    pthread_mutex_lock(&g_mu);
    unlink_locked(&c->susp); /* never linked here in practice: MHD frees
                                responses of connections it runs */
    pthread_mutex_unlock(&g_mu);
    free(c);
}

static void add_headers(struct MHD_Response *r, const ms_live_reply_t *acct)
{
    for (size_t i = 0; acct && acct->headers && acct->headers[i] && acct->headers[i + 1]; i += 2)
        MHD_add_response_header(r, acct->headers[i], acct->headers[i + 1]);
}

static enum MHD_Result queued(enum MHD_Result ret, ms_live_reply_t *acct, unsigned code,
                              uint64_t len)
{
    if (acct && ret == MHD_YES) {
        acct->status = code;
        acct->body_len = len;
    }
    return ret;
}

static enum MHD_Result reply_text(struct MHD_Connection *conn, unsigned code, const char *msg,
                                  ms_live_reply_t *acct)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(msg), (void *)(uintptr_t)msg,
                                                             MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "text/plain");
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    if (code == 503)
        MHD_add_response_header(r, "Retry-After", "1");
    add_headers(r, acct);
    enum MHD_Result ret = MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);
    return queued(ret, acct, code, strlen(msg));
}

enum MHD_Result ms_live_mp4_respond(struct MHD_Connection *conn, ms_fmp4_live_t *live,
                                    ms_hub_t *hub)
{
    return ms_live_mp4_respond_acct(conn, live, hub, NULL);
}

enum MHD_Result ms_live_mp4_respond_acct(struct MHD_Connection *conn, ms_fmp4_live_t *live,
                                         ms_hub_t *hub, ms_live_reply_t *acct)
{
    ms_fmp4_live_stats_t st;
    if (!live)
        return reply_text(conn, 503, "stream not ready\n", acct);
    ms_fmp4_live_stats(live, &st);
    if (!st.ready)
        return reply_text(conn, 503, "stream not ready\n", acct);
    live_conn_t *c = calloc(1, sizeof *c);
    if (!c)
        return reply_text(conn, 500, "out of memory\n", acct);
    c->susp.conn = conn;
    c->susp.prev = c->susp.next = &c->susp;
    c->hub = hub;
    c->sent = acct ? acct->sent : NULL;
    c->expires = acct ? acct->expires : 0;
    int err = 0;
    c->sub = ms_fmp4_live_subscribe(live, 0, live_wake, c, &err);
    if (!c->sub) {
        free(c);
        return reply_text(conn, err == -ENOMEM ? 500 : 503, "stream not ready\n", acct);
    }
    if (hub)
        ms_hub_clients_add(hub, 1);
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, live_read, c, live_free);
    if (!r) {
        live_free(c);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "video/mp4");
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    add_headers(r, acct);
    enum MHD_Result ret = MHD_queue_response(conn, 200, r);
    if (ret == MHD_YES && acct && acct->sess_open) {
        /* before MHD_destroy_response: the response (and c) is alive */
        c->sess_bytes = acct->sess_bytes;
        c->sess_close = acct->sess_close;
        c->sess = acct->sess_open(acct->sess_ud, live_kick, c);
    }
    MHD_destroy_response(r);
    return queued(ret, acct, 200, 0);
}

enum MHD_Result ms_live_flv_respond_acct(struct MHD_Connection *conn, ms_stream_t *s,
                                         ms_live_reply_t *acct)
{
    ms_hub_t *hub = ms_stream_hub(s);
    live_conn_t *c = calloc(1, sizeof *c);
    if (!c)
        return reply_text(conn, 500, "out of memory\n", acct);
    c->susp.conn = conn;
    c->susp.prev = c->susp.next = &c->susp;
    c->hub = hub;
    c->sent = acct ? acct->sent : NULL;
    c->expires = acct ? acct->expires : 0;
    c->flv = ms_flv_live_new(hub, live_wake, c);
    if (!c->flv) {
        free(c);
        return reply_text(conn, 500, "out of memory\n", acct);
    }
    c->stream = ms_stream_ref(s);
    if (ms_worker_post(ms_stream_worker(s), flv_attach_task, c->flv) != 0) {
        ms_flv_live_close(c->flv);
        ms_flv_live_detach(c->flv); /* never attached: no reader to close */
        ms_stream_unref(c->stream);
        free(c);
        return reply_text(conn, 503, "stream not ready\n", acct);
    }
    ms_hub_clients_add(hub, 1);
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, live_read, c, live_free);
    if (!r) {
        live_free(c);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "video/x-flv");
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    add_headers(r, acct);
    enum MHD_Result ret = MHD_queue_response(conn, 200, r);
    if (ret == MHD_YES && acct && acct->sess_open) {
        c->sess_bytes = acct->sess_bytes;
        c->sess_close = acct->sess_close;
        c->sess = acct->sess_open(acct->sess_ud, live_kick, c);
    }
    MHD_destroy_response(r);
    return queued(ret, acct, 200, 0);
}

/* ---- snapshots ---------------------------------------------------------------- */

static enum MHD_Result reply_blob(struct MHD_Connection *conn, const char *ctype, ms_blob_t *b,
                                  ms_live_reply_t *acct)
{
    size_t len = b->len;
    struct MHD_Response *r = MHD_create_response_from_buffer_with_free_callback_cls(
        b->len, b->data, (MHD_ContentReaderFreeCallback)ms_blob_unref, b);
    if (!r) {
        ms_blob_unref(b);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", ctype);
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    add_headers(r, acct);
    enum MHD_Result ret = MHD_queue_response(conn, 200, r);
    MHD_destroy_response(r);
    return queued(ret, acct, 200, len);
}

/* One wait for a decode: shared by the handler and the ready callback
 * (two references). The suspend happens under g_mu before the callback can
 * resume; a callback that fires first makes the handler retry instead. */
typedef struct {
    susp_t susp;
    atomic_int refs;
    int fired; /* guarded by g_mu */
} snap_wait_t;

static void wait_unref(snap_wait_t *w)
{
    if (atomic_fetch_sub(&w->refs, 1) == 1)
        free(w);
}

static void snap_ready(void *ud)
{
    snap_wait_t *w = ud;
    pthread_mutex_lock(&g_mu);
    w->fired = 1;
    resume_locked(&w->susp);
    pthread_mutex_unlock(&g_mu);
    wait_unref(w);
}

enum MHD_Result ms_snapshot_respond(struct MHD_Connection *conn, ms_snapshot_t *snap, int preview,
                                    int *pending)
{
    return ms_snapshot_respond_acct(conn, snap, preview, pending, NULL);
}

enum MHD_Result ms_snapshot_respond_acct(struct MHD_Connection *conn, ms_snapshot_t *snap,
                                         int preview, int *pending, ms_live_reply_t *acct)
{
    *pending = 0;
    if (acct)
        acct->status = 0;
    if (!snap)
        return reply_text(conn, 503, "stream not ready\n", acct);
    ms_blob_t *b = NULL;
    int rc = -EAGAIN;
    for (int tries = 0; tries < 3 && rc == -EAGAIN; tries++) {
        snap_wait_t *w = calloc(1, sizeof *w);
        if (!w)
            return reply_text(conn, 500, "out of memory\n", acct);
        atomic_init(&w->refs, 2);
        w->susp.conn = conn;
        w->susp.prev = w->susp.next = &w->susp;
        rc = ms_snapshot_get(snap, preview, &b, snap_ready, w);
        if (rc != -EAGAIN) {
            wait_unref(w); /* the callback was not registered */
            wait_unref(w);
            break;
        }
        pthread_mutex_lock(&g_mu);
        int fired = w->fired, stopping = g_stopping;
        if (!fired && !stopping)
            suspend_locked(&w->susp);
        pthread_mutex_unlock(&g_mu);
        wait_unref(w);
        if (stopping)
            return reply_text(conn, 503, "server stopping\n", acct);
        if (!fired) {
            *pending = 1; /* MHD calls the handler again after the resume */
            return MHD_YES;
        }
    }
    switch (rc) {
    case 0:
        return reply_blob(conn, "image/jpeg", b, acct);
    case -ENOENT:
    case -ESHUTDOWN:
    case -EAGAIN:
        return reply_text(conn, 503, "no picture yet\n", acct);
    case -EIO:
        return reply_text(conn, 500, "cannot decode the keyframe\n", acct);
    default:
        return reply_text(conn, 500, "snapshot failed\n", acct);
    }
}

enum MHD_Result ms_snapshot_mp4_respond(struct MHD_Connection *conn, ms_snapshot_t *snap)
{
    return ms_snapshot_mp4_respond_acct(conn, snap, NULL);
}

enum MHD_Result ms_snapshot_mp4_respond_acct(struct MHD_Connection *conn, ms_snapshot_t *snap,
                                             ms_live_reply_t *acct)
{
    ms_blob_t *b = NULL;
    int rc = snap ? ms_snapshot_get_mp4(snap, &b) : -ENOENT;
    if (rc == 0)
        return reply_blob(conn, "video/mp4", b, acct);
    return reply_text(conn, rc == -ENOMEM ? 500 : 503, "no picture yet\n", acct);
}
