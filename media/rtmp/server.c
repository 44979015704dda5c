/* RTMP server: accept thread, hand-off to the stream loops, publishers and
 * players there (media/rtmp/server.h). */
#include "media/rtmp/server.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "media/rtmp/amf0.h"
#include "media/rtmp/conn.h"
#include "media/rtmp/flv.h"
#include "util/clock.h"
#include "util/connlimit.h"
#include "util/ipaddr.h"
#include "util/log.h"

#define ACCEPT_TIMEOUT_MS 10000
#define ACCEPT_MAX_CONNS  1024
#define STOP_WAIT_S       5
#define READ_BUF          65536
#define PLAY_QUEUE_MAX    (8u << 20) /* unsent bytes before a player is resynchronised */
#define STALL_MS          10000
#define PUB_IDLE_MS       10000
#define MAX_MSG           (8u << 20)  /* a publisher's messages */
#define MAX_MSG_SMALL     (64u << 10) /* before publish/play, and a player's */
#define ACC_READ_BUF      16384

typedef struct rconn rconn_t;

struct ms_rtmp_server {
    ms_rtmp_server_cfg_t cfg;
    char address[64];
    char ctx[256];
    int port;
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_async_t wake;
    uv_thread_t thread;
    int thread_started;
    int accept_conns; /* accept thread only */
    ms_connlimit_t *conns;
    ms_ratelimit_t rl_limit;
    pthread_mutex_t mu; /* guards what follows */
    pthread_cond_t cv;
    int stopping;
    int pending; /* posted tasks not yet run */
    uint64_t next_id;
    int live; /* stream-loop connections not yet freed */
    rconn_t *list;
};

/* ---- accept thread ------------------------------------------------------ */

typedef struct {
    uv_tcp_t tcp;
    uv_timer_t timer;
    ms_rtmp_server_t *srv;
    ms_rtmp_conn_t *rc;
    int closing, open_handles, counted, close_when_sent;
    int authorizing;           /* cfg.authorize_publish has not called back yet */
    size_t rest_off, rest_len; /* unread bytes in buf past the publish request */
    int grant;                 /* cfg.authorize_publish's non-negative answer */
    ms_ip_t ip;
    struct sockaddr_storage peer;
    uint8_t buf[ACC_READ_BUF];
} acc_t;

typedef struct {
    ms_rtmp_server_t *srv;
    ms_rtmp_stream_t st;
    int fd;
    int publish;
    int grant; /* for cfg.publish_begin */
    int counted;
    int64_t expires;
    ms_ip_t ip;
    struct sockaddr_storage peer;
    ms_rtmp_conn_t *rc;
    size_t len;
    uint8_t data[];
} handoff_t;

static void acc_free(acc_t *a)
{
    a->srv->accept_conns--;
    if (a->counted)
        ms_connlimit_release(a->srv->conns, &a->ip);
    if (a->rc) {
        ms_rtmp_conn_free(a->rc);
        free(a->rc);
    }
    free(a);
}

static void acc_closed(uv_handle_t *h)
{
    acc_t *a = h->data;
    if (--a->open_handles > 0 || a->authorizing)
        return; /* acc_authorized frees it */
    acc_free(a);
}

static void acc_close(acc_t *a)
{
    if (a->closing)
        return;
    a->closing = 1;
    uv_close((uv_handle_t *)&a->tcp, acc_closed);
    uv_close((uv_handle_t *)&a->timer, acc_closed);
}

/* Sends len bytes of p on s: written at once when nothing is queued and the
 * socket takes them (uv_try_write: no copy, no allocation; the common case
 * for a player that keeps up), what is left copied into a uv_write whose
 * callback cb gets req->data = data. Returns the bytes taken (written or
 * queued): fewer than len when the rest could not be copied or queued (out
 * of memory, a closed socket). The stream's loop. */
static size_t send_bytes(uv_stream_t *s, uint8_t *p, size_t len, void *data, uv_write_cb cb)
{
    size_t done = 0;
    if (uv_stream_get_write_queue_size(s) == 0) {
        uv_buf_t b0 = uv_buf_init((char *)p, (unsigned)len);
        int n = uv_try_write(s, &b0, 1);
        if (n > 0)
            done = (size_t)n;
        if (done == len)
            return len;
    }
    uv_write_t *req = malloc(sizeof *req + (len - done));
    if (!req)
        return done;
    memcpy(req + 1, p + done, len - done);
    req->data = data;
    uv_buf_t b = uv_buf_init((char *)(req + 1), (unsigned)(len - done));
    if (uv_write(req, s, &b, 1, cb) != 0) {
        free(req);
        return done;
    }
    return len;
}

static void acc_write_done(uv_write_t *req, int status)
{
    acc_t *a = req->data;
    free(req);
    if (a->close_when_sent &&
        (status < 0 || uv_stream_get_write_queue_size((uv_stream_t *)&a->tcp) == 0))
        acc_close(a);
}

/* Sends (a copy of) rc->out and empties it. */
static void acc_flush(acc_t *a)
{
    ms_buf_t *o = &a->rc->out;
    if (o->len == 0 || o->err || a->closing) {
        ms_buf_reset(o);
        return;
    }
    (void)send_bytes((uv_stream_t *)&a->tcp, o->data, o->len, a, acc_write_done);
    ms_buf_reset(o);
}

/* Sends what is pending, then closes. */
static void acc_finish(acc_t *a)
{
    uv_read_stop((uv_stream_t *)&a->tcp);
    a->close_when_sent = 1;
    acc_flush(a);
    if (uv_stream_get_write_queue_size((uv_stream_t *)&a->tcp) == 0)
        acc_close(a);
}

static void handoff_task(void *arg);

static int acc_handoff(acc_t *a, ms_rtmp_stream_t *st, int publish, int64_t expires,
                       const uint8_t *rest, size_t len)
{
    ms_rtmp_server_t *srv = a->srv;
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&a->tcp, &fd) != 0)
        goto err;
    int nfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (nfd < 0)
        goto err;
    handoff_t *h = malloc(sizeof *h + len);
    if (!h) {
        close(nfd);
        goto err;
    }
    h->srv = srv;
    h->st = *st;
    h->fd = nfd;
    h->publish = publish;
    h->grant = a->grant;
    h->expires = expires;
    h->counted = a->counted;
    h->ip = a->ip;
    h->peer = a->peer;
    h->rc = a->rc;
    h->len = len;
    if (len)
        memcpy(h->data, rest, len);
    pthread_mutex_lock(&srv->mu);
    srv->pending++;
    pthread_mutex_unlock(&srv->mu);
    if (srv->cfg.post(srv->cfg.ud, st->exec, handoff_task, h) != 0) {
        pthread_mutex_lock(&srv->mu);
        srv->pending--;
        pthread_cond_broadcast(&srv->cv);
        pthread_mutex_unlock(&srv->mu);
        close(nfd);
        free(h);
        goto err;
    }
    a->rc = NULL;   /* went with the hand-off */
    a->counted = 0; /* likewise */
    acc_close(a);
    return 0;
err:
    srv->cfg.release(srv->cfg.ud, st->ref);
    return -1;
}

static void acc_proceed(acc_t *a, int publish, const uint8_t *rest, size_t len);

/* cfg.authorize_publish's answer, on the accept thread. */
static void acc_authorized(void *arg, int result)
{
    acc_t *a = arg;
    a->authorizing = 0;
    if (a->closing) {
        if (a->open_handles == 0)
            acc_free(a);
        return;
    }
    if (result < 0) {
        char ip[MS_IP_STRLEN] = "?";
        ms_ip_format(&a->ip, ip, sizeof ip);
        MS_WARN(a->srv->ctx, "publish of %s by %s refused by the on_publish hook", a->rc->name, ip);
        ms_rtmp_conn_refuse(a->rc, "NetStream.Publish.Unauthorized",
                            "refused by the on_publish hook");
        acc_finish(a);
        return;
    }
    a->grant = result;
    acc_proceed(a, 1, a->buf + a->rest_off, a->rest_len);
}

/* A publish or play request on the accept thread. */
static void acc_request(acc_t *a, int publish, const uint8_t *rest, size_t len)
{
    ms_rtmp_server_t *srv = a->srv;
    ms_rtmp_conn_t *rc = a->rc;
    uv_read_stop((uv_stream_t *)&a->tcp);
    if (publish && srv->cfg.authorize_publish) {
        /* reading stopped: buf keeps the bytes past the request until then */
        a->rest_off = (size_t)(rest - a->buf);
        a->rest_len = len;
        a->authorizing = 1;
        /* the hook's own timeout bounds the wait from now on: the refusal
         * is then told, not cut short by the request timeout */
        uv_timer_stop(&a->timer);
        if (srv->cfg.authorize_publish(srv->cfg.ud, &srv->loop, rc->app, rc->name, rc->query,
                                       (const struct sockaddr *)&a->peer, acc_authorized, a) < 0)
            acc_authorized(a, -EACCES);
        return;
    }
    acc_proceed(a, publish, rest, len);
}

/* After any publish hook: the play decision, the lookup and the hand-off. */
static void acc_proceed(acc_t *a, int publish, const uint8_t *rest, size_t len)
{
    ms_rtmp_server_t *srv = a->srv;
    ms_rtmp_conn_t *rc = a->rc;
    char ip[MS_IP_STRLEN] = "?";
    ms_ip_format(&a->ip, ip, sizeof ip);
    int64_t expires = 0;
    if (!publish && srv->cfg.authorize_play) {
        int r = srv->cfg.authorize_play(srv->cfg.ud, rc->name, rc->query,
                                        (const struct sockaddr *)&a->peer, &expires);
        if (r < 0) {
            MS_INFO(srv->ctx, "play of %s by %s refused (%s)", rc->name, ip,
                    r == -EACCES ? "access denied" : "unknown stream");
            ms_rtmp_conn_refuse(
                rc, r == -EACCES ? "NetStream.Play.Failed" : "NetStream.Play.StreamNotFound",
                r == -EACCES ? "access denied" : "unknown stream");
            acc_finish(a);
            return;
        }
    }
    ms_rtmp_stream_t st;
    if (srv->cfg.lookup(srv->cfg.ud, rc->name, &st) != 0) {
        MS_WARN(srv->ctx, "%s of unknown stream %s by %s refused", publish ? "publish" : "play",
                rc->name, ip);
        if (publish)
            ms_rtmp_conn_refuse(rc, "NetStream.Publish.BadName", "unknown stream");
        else
            ms_rtmp_conn_refuse(rc, "NetStream.Play.StreamNotFound", "unknown stream");
        acc_finish(a);
        return;
    }
    /* answers still in rc->out (createStream's) go out from the stream loop,
     * in order, with the answer to this request */
    if (acc_handoff(a, &st, publish, expires, rest, len) != 0)
        acc_close(a);
}

static void acc_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    acc_t *a = h->data;
    buf->base = (char *)a->buf;
    buf->len = sizeof a->buf;
}

static void acc_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    acc_t *a = s->data;
    if (nread < 0) {
        acc_close(a);
        return;
    }
    size_t off = 0, len = (size_t)nread;
    while (off < len && !a->closing) {
        size_t used = 0;
        ms_rtmp_ev_t ev;
        int r = ms_rtmp_conn_feed(a->rc, a->buf + off, len - off, &used, &ev);
        off += used;
        if (r < 0) {
            acc_finish(a); /* a refusal the connection wrote goes out first */
            return;
        }
        if (r == 1 && (ev.type == MS_RTMP_EV_PUBLISH || ev.type == MS_RTMP_EV_PLAY)) {
            acc_request(a, ev.type == MS_RTMP_EV_PUBLISH, a->buf + off, len - off);
            return;
        }
        if (r == 0 && used == 0)
            break;
    }
    acc_flush(a);
}

static void acc_timeout(uv_timer_t *t)
{
    acc_t *a = t->data;
    MS_DEBUG(a->srv->ctx, "connection closed: no publish or play within %u ms",
             a->srv->cfg.handshake_timeout_ms);
    acc_close(a);
}

static int acc_count(acc_t *a)
{
    ms_rtmp_server_t *srv = a->srv;
    int len = sizeof a->peer;
    if (uv_tcp_getpeername(&a->tcp, (struct sockaddr *)&a->peer, &len) != 0 ||
        ms_ip_from_sockaddr((const struct sockaddr *)&a->peer, &a->ip) < 0)
        return 0;
    if (!srv->conns ||
        (srv->cfg.exempt && srv->cfg.exempt(srv->cfg.ud, (const struct sockaddr *)&a->peer)))
        return 0;
    int rc = ms_connlimit_acquire(srv->conns, &a->ip);
    if (rc == 0) {
        a->counted = 1;
        return 0;
    }
    uint32_t supp = 0;
    if (ms_ratelimit_ok(&srv->rl_limit, &supp)) {
        char ip[MS_IP_STRLEN];
        MS_WARN(srv->ctx,
                "refused a connection from %s: %u connections from that address "
                "(%u more refusals suppressed)",
                ms_ip_format(&a->ip, ip, sizeof ip), srv->cfg.conns_per_ip, supp);
    }
    return -EBUSY;
}

static void on_connection(uv_stream_t *l, int status)
{
    ms_rtmp_server_t *srv = l->data;
    if (status < 0)
        return;
    acc_t *a = calloc(1, sizeof *a);
    if (!a)
        return;
    a->srv = srv;
    uv_tcp_init(&srv->loop, &a->tcp);
    a->tcp.data = a;
    uv_timer_init(&srv->loop, &a->timer);
    a->timer.data = a;
    a->open_handles = 2;
    srv->accept_conns++;
    a->rc = malloc(sizeof *a->rc);
    if (uv_accept(l, (uv_stream_t *)&a->tcp) != 0 || !a->rc ||
        srv->accept_conns > ACCEPT_MAX_CONNS || acc_count(a) < 0) {
        acc_close(a);
        return;
    }
    ms_rtmp_conn_init(a->rc, MAX_MSG_SMALL); /* commands only until publish/play */
    uv_tcp_nodelay(&a->tcp, 1);
    uv_timer_start(&a->timer, acc_timeout, srv->cfg.handshake_timeout_ms, 0);
    uv_read_start((uv_stream_t *)&a->tcp, acc_alloc, acc_read);
}

static void close_walk(uv_handle_t *h, void *arg)
{
    if (uv_is_closing(h))
        return;
    if (h->data == arg)
        uv_close(h, NULL);
    else
        acc_close(h->data);
}

static void wake_cb(uv_async_t *as)
{
    uv_walk(as->loop, close_walk, as->data);
}

static void accept_main(void *arg)
{
    ms_rtmp_server_t *srv = arg;
    uv_run(&srv->loop, UV_RUN_DEFAULT);
}

/* ---- stream loop -------------------------------------------------------- */

struct rconn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    int open_handles;
    int closing;
    int close_when_sent;
    ms_rtmp_server_t *srv;
    ms_rtmp_stream_t st;
    rconn_t *next;
    ms_rtmp_conn_t *rc;
    int counted;
    ms_ip_t ip;
    struct sockaddr_storage peer;
    char ctx[384];
    int64_t last_in_ms, last_progress_ms;
    int64_t expires; /* player: UTC s its access decision lapses at, 0 = never */
    uint64_t bytes_out;
    uint64_t id;
    void *sess; /* player session handle (cfg.session_open) */
    /* publisher */
    int publisher, attached;
    ms_flv_in_t in;
    int declared, vidx, aidx, want_disc, need_vkey;
    int have_t0;
    int64_t wall0_us, ts0_ms;
    uint32_t bad_msgs;
    int warned_codec;
    /* player */
    ms_reader_t *reader;
    ms_flv_play_t pl;
    int unpublished; /* UnpublishNotify sent, no PublishNotify since */
    uint8_t buf[READ_BUF];
};

static void conn_close(rconn_t *c, const char *why);

static void conn_closed(uv_handle_t *h)
{
    rconn_t *c = h->data;
    if (--c->open_handles > 0)
        return;
    ms_rtmp_server_t *srv = c->srv;
    srv->cfg.release(srv->cfg.ud, c->st.ref);
    if (c->counted)
        ms_connlimit_release(srv->conns, &c->ip);
    ms_rtmp_conn_free(c->rc);
    free(c->rc);
    ms_flv_play_free(&c->pl);
    pthread_mutex_lock(&srv->mu);
    for (rconn_t **pp = &srv->list; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    srv->live--;
    pthread_cond_broadcast(&srv->cv);
    pthread_mutex_unlock(&srv->mu);
    free(c);
}

static void conn_write_done(uv_write_t *req, int status)
{
    rconn_t *c = req->data;
    free(req);
    if (status == 0)
        c->last_progress_ms = ms_mono_ms();
    if (c->close_when_sent &&
        (status < 0 || uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) == 0))
        conn_close(c, NULL);
}

static void conn_flush(rconn_t *c)
{
    ms_buf_t *o = &c->rc->out;
    if (o->len == 0 || o->err || c->closing) {
        ms_buf_reset(o);
        return;
    }
    if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) == 0)
        c->last_progress_ms = ms_mono_ms(); /* the stall clock starts with a backlog */
    size_t queued = uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp);
    size_t n = send_bytes((uv_stream_t *)&c->tcp, o->data, o->len, c, conn_write_done);
    c->bytes_out += n;
    if (n == o->len && queued == 0 && uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) == 0)
        c->last_progress_ms = ms_mono_ms(); /* all written at once */
    if (o->cap > (1u << 20))                /* do not keep a large buffer around */
        ms_buf_free(o);
    else
        ms_buf_reset(o);
}

static void conn_finish(rconn_t *c)
{
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->close_when_sent = 1;
    conn_flush(c);
    if (!c->closing && uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) == 0)
        conn_close(c, NULL);
}

static void conn_close(rconn_t *c, const char *why)
{
    if (c->closing)
        return;
    c->closing = 1;
    if (why)
        MS_INFO(c->ctx, "closed: %s", why);
    if (c->attached) {
        c->attached = 0;
        c->srv->cfg.publish_end(c->srv->cfg.ud, c->st.ref, c);
        ms_hub_reset(c->st.hub); /* the source is gone */
        MS_INFO(c->ctx, "publisher left");
    }
    if (c->reader) {
        ms_hub_reader_close(c->reader);
        c->reader = NULL;
        ms_hub_clients_add(c->st.hub, -1);
    }
    if (c->sess) {
        if (c->srv->cfg.session_bytes)
            c->srv->cfg.session_bytes(c->srv->cfg.ud, c->sess, c->bytes_out);
        if (c->srv->cfg.session_close)
            c->srv->cfg.session_close(c->srv->cfg.ud, c->sess);
        c->sess = NULL;
    }
    uv_close((uv_handle_t *)&c->tcp, conn_closed);
    uv_close((uv_handle_t *)&c->timer, conn_closed);
}

static void kick_cb(void *arg)
{
    conn_close(arg, "replaced by a new publisher (publish.republish = kick)");
}

/* ---- publisher ---- */

static int declare(rconn_t *c)
{
    ms_codec_params_t t[2];
    int n = 0;
    c->vidx = c->aidx = -1;
    if (c->in.have_video) {
        c->vidx = n;
        t[n++] = c->in.video;
    }
    if (c->in.have_audio) {
        c->aidx = n;
        t[n++] = c->in.audio;
    }
    if (n == 0 || ms_hub_set_tracks(c->st.hub, t, n) != 0)
        return -1;
    c->in.changed = 0;
    c->declared = 1;
    c->want_disc = 1;
    c->need_vkey = c->vidx >= 0;
    MS_INFO(c->ctx, "publishing %s%s%s", c->vidx >= 0 ? ms_codec_name(c->in.video.codec) : "",
            n == 2 ? " + " : "", c->aidx >= 0 ? ms_codec_name(c->in.audio.codec) : "");
    return 0;
}

static void pub_media(rconn_t *c, const ms_rtmp_ev_t *ev)
{
    ms_frame_t *f = NULL;
    int video = ev->msg_type == MS_RTMP_VIDEO;
    if (ev->msg_type == MS_RTMP_DATA_AMF0)
        return; /* @setDataFrame onMetaData: the sequence headers say it all */
    int r = video ? ms_flv_in_video(&c->in, ev->ts_ms, ev->data, ev->len, &f)
                  : ms_flv_in_audio(&c->in, ev->ts_ms, ev->data, ev->len, &f);
    if (r == -ENOTSUP) {
        if (!c->warned_codec++)
            MS_WARN(c->ctx, "%s codec not supported (FLV %s 0x%02x): its messages are dropped",
                    video ? "video" : "audio", video ? "video" : "audio",
                    ev->len ? ev->data[0] : 0);
        return;
    }
    if (r < 0) {
        if (c->bad_msgs++ == 0)
            MS_WARN(c->ctx, "malformed %s message dropped", video ? "video" : "audio");
        return;
    }
    if (c->in.changed && c->declared) {
        if (c->in.have_video != (c->vidx >= 0) || c->in.have_audio != (c->aidx >= 0)) {
            c->declared = 0; /* another set of tracks: declared again */
        } else {
            if (c->vidx >= 0)
                ms_hub_update_params(c->st.hub, c->vidx, &c->in.video);
            if (c->aidx >= 0)
                ms_hub_update_params(c->st.hub, c->aidx, &c->in.audio);
            c->in.changed = 0;
        }
    }
    if (r == 0)
        return;
    if (!c->declared && declare(c) < 0) {
        ms_frame_unref(f);
        return;
    }
    if (video && c->need_vkey) {
        if (!(f->flags & MS_FRAME_KEY)) {
            ms_frame_unref(f);
            return;
        }
        c->need_vkey = 0;
    }
    f->track = (uint8_t)(video ? c->vidx : c->aidx);
    if (c->want_disc) {
        f->flags |= MS_FRAME_DISCONT;
        c->want_disc = 0;
    }
    if (!c->have_t0) {
        c->have_t0 = 1;
        c->wall0_us = ms_wall_us();
        c->ts0_ms = ev->ts_ms;
    }
    f->wallclock_us = c->wall0_us + (ev->ts_ms - c->ts0_ms) * 1000;
    ms_hub_publish(c->st.hub, f);
    ms_frame_unref(f);
}

/* ---- player ---- */

static void play_emit(void *ud, uint8_t type, uint32_t ts, const uint8_t *body, size_t len)
{
    rconn_t *c = ud;
    ms_rtmp_conn_send_media(c->rc, type, ts, body, len);
}

static void play_tracks(rconn_t *c)
{
    int n = ms_hub_ntracks(c->st.hub);
    ms_codec_params_t t[MS_MAX_TRACKS];
    for (int i = 0; i < n && i < MS_MAX_TRACKS; i++)
        t[i] = *ms_hub_track(c->st.hub, i);
    ms_flv_play_tracks(&c->pl, t, n);
}

static void on_tracks(ms_reader_t *r, void *ud)
{
    (void)r;
    rconn_t *c = ud;
    play_tracks(c);
    /* the publisher left / a new one came (nginx-rtmp's notifications) */
    int n = ms_hub_ntracks(c->st.hub);
    if (n == 0 && !c->unpublished) {
        c->unpublished = 1;
        ms_rtmp_conn_status(c->rc, "status", "NetStream.Play.UnpublishNotify",
                            "the source is gone");
        conn_flush(c);
    } else if (n > 0 && c->unpublished) {
        c->unpublished = 0;
        ms_rtmp_conn_status(c->rc, "status", "NetStream.Play.PublishNotify", "the source is back");
        conn_flush(c);
    }
}

static void on_frames(ms_reader_t *r, void *ud)
{
    rconn_t *c = ud;
    ms_frame_t *f;
    while ((f = ms_reader_pop(r)) != NULL) {
        if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > PLAY_QUEUE_MAX) {
            ms_flv_play_resync(&c->pl); /* slow player: resume at the next keyframe */
        } else {
            const ms_codec_params_t *cur =
                f->track < ms_hub_ntracks(c->st.hub) ? ms_hub_track(c->st.hub, f->track) : NULL;
            if (ms_flv_play_frame(&c->pl, f, cur, play_emit, c) < 0) {
                ms_frame_unref(f);
                conn_close(c, "out of memory");
                return;
            }
        }
        ms_frame_unref(f);
    }
    conn_flush(c);
}

/* ---- reading ---- */

static void conn_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    rconn_t *c = h->data;
    buf->base = (char *)c->buf;
    buf->len = sizeof c->buf;
}

static void conn_input(rconn_t *c, const uint8_t *data, size_t len)
{
    size_t off = 0;
    int published = 0;
    c->last_in_ms = ms_mono_ms();
    while (off < len && !c->closing) {
        size_t used = 0;
        ms_rtmp_ev_t ev;
        int r = ms_rtmp_conn_feed(c->rc, data + off, len - off, &used, &ev);
        off += used;
        if (r < 0) {
            MS_INFO(c->ctx, "protocol error (%s): closing", strerror(-r));
            conn_finish(c);
            break;
        }
        if (r == 1 && ev.type == MS_RTMP_EV_MEDIA && c->attached) {
            pub_media(c, &ev);
            published = 1;
        } else if (r == 1 && ev.type == MS_RTMP_EV_UNPUBLISH) {
            ms_rtmp_conn_status(c->rc, "status", "NetStream.Unpublish.Success",
                                "stopped publishing");
            conn_finish(c);
            break;
        } else if (r == 1 && (ev.type == MS_RTMP_EV_PUBLISH || ev.type == MS_RTMP_EV_PLAY)) {
            conn_finish(c); /* one stream per connection */
            break;
        } else if (r == 0 && used == 0) {
            break;
        }
    }
    if (published && !c->closing)
        ms_hub_batch_end(c->st.hub);
    if (!c->closing)
        conn_flush(c);
}

static void conn_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    rconn_t *c = s->data;
    if (nread < 0) {
        conn_close(c, nread == UV_EOF ? "peer closed the connection" : uv_strerror((int)nread));
        return;
    }
    conn_input(c, c->buf, (size_t)nread);
}

static void conn_tick(uv_timer_t *t)
{
    rconn_t *c = t->data;
    int64_t now = ms_mono_ms();
    if (c->srv->cfg.running && !c->srv->cfg.running(c->srv->cfg.ud, c->st.ref))
        conn_close(c, "the stream is no longer served here");
    else if (c->expires && ms_wall_us() / 1000000 >= c->expires)
        conn_close(c, "access expired (token)");
    else if (c->publisher && now - c->last_in_ms > PUB_IDLE_MS)
        conn_close(c, "publisher sent nothing for 10 s");
    else if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > 0 &&
             now - c->last_progress_ms > STALL_MS)
        conn_close(c, "no write progress for 10 s");
    else if (c->sess && c->srv->cfg.session_bytes)
        c->srv->cfg.session_bytes(c->srv->cfg.ud, c->sess, c->bytes_out);
}

static void handoff_task(void *arg)
{
    handoff_t *h = arg;
    ms_rtmp_server_t *srv = h->srv;
    pthread_mutex_lock(&srv->mu);
    int stopping = srv->stopping;
    rconn_t *c = stopping ? NULL : calloc(1, sizeof *c);
    if (c) {
        c->next = srv->list;
        srv->list = c;
        srv->live++;
        c->id = ++srv->next_id;
    }
    srv->pending--;
    pthread_cond_broadcast(&srv->cv);
    pthread_mutex_unlock(&srv->mu);
    if (!c) {
        close(h->fd);
        srv->cfg.release(srv->cfg.ud, h->st.ref);
        if (h->counted)
            ms_connlimit_release(srv->conns, &h->ip);
        ms_rtmp_conn_free(h->rc);
        free(h->rc);
        free(h);
        return;
    }
    c->srv = srv;
    c->st = h->st;
    c->rc = h->rc;
    c->counted = h->counted;
    c->ip = h->ip;
    c->peer = h->peer;
    c->publisher = h->publish;
    c->expires = h->expires;
    if (c->publisher)
        c->rc->rd.max_msg = MAX_MSG; /* video frames from now on */
    c->vidx = c->aidx = -1;
    ms_flv_in_init(&c->in);
    ms_flv_play_init(&c->pl);
    c->last_in_ms = c->last_progress_ms = ms_mono_ms();
    char ip[MS_IP_STRLEN] = "?";
    ms_ip_format(&c->ip, ip, sizeof ip);
    snprintf(c->ctx, sizeof c->ctx, "%s [stream %s] [%s %s]", srv->ctx, c->st.name,
             c->publisher ? "publisher" : "player", ip);
    uv_tcp_init(c->st.loop, &c->tcp);
    c->tcp.data = c;
    uv_timer_init(c->st.loop, &c->timer);
    c->timer.data = c;
    c->open_handles = 2;
    int fd_ok = uv_tcp_open(&c->tcp, h->fd) == 0;
    if (!fd_ok)
        close(h->fd);
    uv_timer_start(&c->timer, conn_tick, 1000, 1000);
    if (!fd_ok) {
        conn_close(c, "cannot adopt the socket");
        free(h);
        return;
    }
    if (c->publisher) {
        int r = srv->cfg.publish_begin(srv->cfg.ud, c->st.ref, c->rc->query, h->grant,
                                       (const struct sockaddr *)&c->peer, kick_cb, c);
        if (r < 0) {
            const char *code =
                r == -EACCES ? "NetStream.Publish.Unauthorized" : "NetStream.Publish.BadName";
            const char *desc = r == -EACCES  ? "bad or missing publish key"
                               : r == -EBUSY ? "the stream already has a publisher"
                                             : "the stream takes no publisher";
            MS_WARN(c->ctx, "publish refused: %s", desc);
            ms_rtmp_conn_refuse(c->rc, code, desc);
            conn_finish(c);
            free(h);
            return;
        }
        c->attached = 1;
        ms_rtmp_conn_publish_ok(c->rc);
        MS_INFO(c->ctx, "publisher connected");
    } else {
        ms_rtmp_conn_play_ok(c->rc);
        play_tracks(c);
        ms_hub_clients_add(c->st.hub, 1);
        ms_reader_opts_t o = {.prompt = 1, .on_frames = on_frames, .on_tracks = on_tracks, .ud = c};
        c->reader = ms_hub_reader_open(c->st.hub, &o);
        if (!c->reader) {
            ms_hub_clients_add(c->st.hub, -1);
            conn_close(c, "out of memory");
            free(h);
            return;
        }
        if (srv->cfg.session_open)
            c->sess =
                srv->cfg.session_open(srv->cfg.ud, c->st.ref, (const struct sockaddr *)&c->peer,
                                      c->rc->flash_ver[0] ? c->rc->flash_ver : NULL, c->id);
        MS_INFO(c->ctx, "player connected");
    }
    conn_flush(c);
    if (!c->closing)
        uv_read_start((uv_stream_t *)&c->tcp, conn_alloc, conn_read);
    if (h->len && !c->closing)
        conn_input(c, h->data, h->len);
    free(h);
}

/* ---- start / stop ------------------------------------------------------- */

ms_rtmp_server_t *ms_rtmp_server_start(const ms_rtmp_server_cfg_t *cfg, char *err, size_t errlen)
{
    if (!cfg || !cfg->lookup || !cfg->release || !cfg->post || !cfg->publish_begin ||
        !cfg->publish_end || cfg->port < 0 || cfg->port > 65535) {
        snprintf(err, errlen, "invalid configuration");
        return NULL;
    }
    ms_rtmp_server_t *srv = calloc(1, sizeof *srv);
    if (!srv) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    srv->cfg = *cfg;
    snprintf(srv->address, sizeof srv->address, "%s",
             cfg->address && cfg->address[0] ? cfg->address : "0.0.0.0");
    snprintf(srv->ctx, sizeof srv->ctx, "%s", cfg->log_ctx ? cfg->log_ctx : "[rtmp-server]");
    srv->cfg.address = srv->address;
    srv->cfg.log_ctx = srv->ctx;
    if (!srv->cfg.handshake_timeout_ms)
        srv->cfg.handshake_timeout_ms = ACCEPT_TIMEOUT_MS;
    srv->rl_limit = (ms_ratelimit_t)MS_RATELIMIT_INIT(1000);
    if (cfg->conns_per_ip &&
        !(srv->conns = ms_connlimit_new(cfg->conns_per_ip, 4 * ACCEPT_MAX_CONNS))) {
        snprintf(err, errlen, "out of memory");
        free(srv);
        return NULL;
    }
    pthread_mutex_init(&srv->mu, NULL);
    pthread_cond_init(&srv->cv, NULL);
    int r = uv_loop_init(&srv->loop);
    if (r != 0) {
        snprintf(err, errlen, "loop: %s", uv_strerror(r));
        goto err_free;
    }
    struct sockaddr_storage ss;
    if (strchr(srv->address, ':'))
        r = uv_ip6_addr(srv->address, cfg->port, (struct sockaddr_in6 *)&ss);
    else
        r = uv_ip4_addr(srv->address, cfg->port, (struct sockaddr_in *)&ss);
    if (r != 0) {
        snprintf(err, errlen, "bad listen address %s", srv->address);
        goto err_loop;
    }
    uv_tcp_init(&srv->loop, &srv->listener);
    srv->listener.data = srv;
    r = uv_tcp_bind(&srv->listener, (const struct sockaddr *)&ss, 0);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&srv->listener, 256, on_connection);
    if (r != 0) {
        snprintf(err, errlen, "%s:%d: %s", srv->address, cfg->port, uv_strerror(r));
        uv_close((uv_handle_t *)&srv->listener, NULL);
        uv_run(&srv->loop, UV_RUN_NOWAIT);
        goto err_loop;
    }
    struct sockaddr_storage bound;
    int blen = sizeof bound;
    uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&bound, &blen);
    srv->port = bound.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
                                            : ntohs(((struct sockaddr_in *)&bound)->sin_port);
    uv_async_init(&srv->loop, &srv->wake, wake_cb);
    srv->wake.data = srv;
    if (uv_thread_create(&srv->thread, accept_main, srv) != 0) {
        snprintf(err, errlen, "cannot start the accept thread");
        uv_walk(&srv->loop, close_walk, srv);
        uv_run(&srv->loop, UV_RUN_DEFAULT);
        goto err_loop;
    }
    srv->thread_started = 1;
    MS_INFO(srv->ctx, "listening on %s:%d", srv->address, srv->port);
    return srv;
err_loop:
    uv_loop_close(&srv->loop);
err_free:
    pthread_mutex_destroy(&srv->mu);
    pthread_cond_destroy(&srv->cv);
    ms_connlimit_free(srv->conns);
    free(srv);
    return NULL;
}

int ms_rtmp_server_port(const ms_rtmp_server_t *s)
{
    return s->port;
}

typedef struct {
    ms_rtmp_server_t *srv;
    void *exec;
} shutdown_t;

/* Stream loop: closes this loop's connections. */
static void shutdown_task(void *arg)
{
    shutdown_t *sd = arg;
    ms_rtmp_server_t *srv = sd->srv;
    for (;;) {
        rconn_t *c = NULL;
        pthread_mutex_lock(&srv->mu);
        for (rconn_t *x = srv->list; x; x = x->next)
            if (x->st.exec == sd->exec && !x->closing) {
                c = x;
                break;
            }
        pthread_mutex_unlock(&srv->mu);
        if (!c)
            break;
        conn_close(c, "server stopping");
    }
    free(sd);
}

typedef struct {
    ms_rtmp_server_t *srv;
    void *exec;
    uint64_t id;
} kick_t;

/* Stream loop: closes the kicked connection (srv->pending keeps srv alive
 * until this ran). */
static void kick_task(void *arg)
{
    kick_t *k = arg;
    ms_rtmp_server_t *srv = k->srv;
    rconn_t *c = NULL;
    pthread_mutex_lock(&srv->mu);
    for (rconn_t *x = srv->list; x && !c; x = x->next)
        if (x->st.exec == k->exec && x->id == k->id && !x->closing)
            c = x;
    pthread_mutex_unlock(&srv->mu);
    if (c)
        conn_close(c, "session ended by an administrator");
    free(k);
    pthread_mutex_lock(&srv->mu);
    srv->pending--;
    pthread_cond_broadcast(&srv->cv);
    pthread_mutex_unlock(&srv->mu);
}

int ms_rtmp_server_kick(ms_rtmp_server_t *srv, void *exec, uint64_t conn_id)
{
    if (!srv || !exec)
        return -EINVAL;
    kick_t *k = malloc(sizeof *k);
    if (!k)
        return -ENOMEM;
    k->srv = srv;
    k->exec = exec;
    k->id = conn_id;
    pthread_mutex_lock(&srv->mu);
    if (srv->stopping) {
        pthread_mutex_unlock(&srv->mu);
        free(k);
        return -ESHUTDOWN;
    }
    srv->pending++;
    pthread_mutex_unlock(&srv->mu);
    int r = srv->cfg.post(srv->cfg.ud, exec, kick_task, k);
    if (r != 0) {
        pthread_mutex_lock(&srv->mu);
        srv->pending--;
        pthread_cond_broadcast(&srv->cv);
        pthread_mutex_unlock(&srv->mu);
        free(k);
    }
    return r;
}

static int wait_for(ms_rtmp_server_t *srv, int live)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += STOP_WAIT_S;
    pthread_mutex_lock(&srv->mu);
    int r = 0;
    while (live ? srv->live > 0 : srv->pending > 0)
        if (pthread_cond_timedwait(&srv->cv, &srv->mu, &dl) == ETIMEDOUT) {
            r = -ETIMEDOUT;
            break;
        }
    pthread_mutex_unlock(&srv->mu);
    return r;
}

void ms_rtmp_server_stop(ms_rtmp_server_t *srv)
{
    if (!srv)
        return;
    pthread_mutex_lock(&srv->mu);
    srv->stopping = 1;
    pthread_mutex_unlock(&srv->mu);
    if (srv->thread_started) {
        uv_async_send(&srv->wake);
        uv_thread_join(&srv->thread);
    }
    int bad = wait_for(srv, 0) < 0;
    void *execs[256];
    int nexec = 0;
    pthread_mutex_lock(&srv->mu);
    for (rconn_t *c = srv->list; c; c = c->next) {
        int seen = 0;
        for (int i = 0; i < nexec; i++)
            seen |= execs[i] == c->st.exec;
        if (!seen && nexec < 256)
            execs[nexec++] = c->st.exec;
    }
    pthread_mutex_unlock(&srv->mu);
    for (int i = 0; i < nexec; i++) {
        shutdown_t *sd = malloc(sizeof *sd);
        if (!sd)
            continue;
        sd->srv = srv;
        sd->exec = execs[i];
        if (srv->cfg.post(srv->cfg.ud, execs[i], shutdown_task, sd) != 0)
            free(sd);
    }
    bad |= wait_for(srv, 1) < 0;
    if (bad) {
        MS_WARN(srv->ctx, "connections still closing at stop");
        return; /* leak rather than free memory in use */
    }
    uv_loop_close(&srv->loop);
    pthread_mutex_destroy(&srv->mu);
    pthread_cond_destroy(&srv->cv);
    ms_connlimit_free(srv->conns);
    MS_INFO(srv->ctx, "stopped");
    free(srv);
}
