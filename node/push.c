/* Push to rtmp:// targets (node/push.h). */
#include "node/push.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "media/rtmp/chunk.h"
#include "media/rtmp/client.h"
#include "media/rtmp/flv.h"
#include "util/clock.h"
#include "util/log.h"

#define CONNECT_TIMEOUT_MS 10000
#define STALL_MS           15000
#define HEALTHY_MS         5000
#define RETRY_FIRST_MS     1000
#define RETRY_MAX_MS       30000
#define RETRY_RESET_MS     30000 /* a session that published this long starts the delay over */
#define QUEUE_MAX          (8u << 20)
#define TICK_MS            1000

typedef enum { T_WAIT = 0, T_RESOLVE, T_CONNECT, T_RTMP, T_PUBLISHING } tstate_t;

typedef struct target {
    struct ms_push *p;
    int idx;
    ms_rtmp_url_t u;
    int url_ok;
    tstate_t st;
    uv_getaddrinfo_t gai;
    int gai_busy;
    uv_tcp_t tcp;
    int tcp_open; /* initialised and not yet closed */
    uv_connect_t creq;
    uv_timer_t timer; /* retry delay */
    int cl_init;
    ms_rtmp_client_t cl;
    ms_reader_t *reader;
    int pl_init;
    ms_flv_play_t pl;
    int64_t delay_ms;
    int64_t state_ms;      /* mono ms the current state began */
    int64_t progress_ms;   /* mono ms of the last write completion (or backlog start) */
    int64_t last_sent_ms;  /* mono ms bytes were last accepted, 0 = never (under p->mu) */
    ms_push_status_t stat; /* under p->mu */
} target_t;

struct ms_push {
    uv_loop_t *loop;
    ms_hub_t *hub;
    char ctx[200];
    int stopping;
    int pending; /* handles and requests not yet closed / completed */
    uv_timer_t tick;
    pthread_mutex_t mu;
    int n;
    target_t t[];
};

static void try_free(ms_push_t *p)
{
    if (p->stopping && p->pending == 0) {
        pthread_mutex_destroy(&p->mu);
        free(p);
    }
}

static void handle_closed(uv_handle_t *h)
{
    ms_push_t *p = h->data;
    p->pending--;
    try_free(p);
}

static void set_state(target_t *t, tstate_t st, const char *name, const char *err)
{
    t->st = st;
    t->state_ms = ms_mono_ms();
    pthread_mutex_lock(&t->p->mu);
    snprintf(t->stat.state, sizeof t->stat.state, "%s", name);
    t->stat.since_us = ms_wall_us();
    if (err)
        snprintf(t->stat.last_error, sizeof t->stat.last_error, "%s", err);
    pthread_mutex_unlock(&t->p->mu);
}

static void start_target(target_t *t);

static void tcp_closed(uv_handle_t *h)
{
    target_t *t = h->data;
    ms_push_t *p = t->p;
    p->pending--;
    try_free(p);
}

/* Ends the session of t (reader, client, socket). */
static void end_session(target_t *t)
{
    if (t->reader) {
        ms_hub_reader_close(t->reader);
        t->reader = NULL;
    }
    if (t->pl_init) {
        ms_flv_play_free(&t->pl);
        t->pl_init = 0;
    }
    if (t->cl_init) {
        ms_rtmp_client_free(&t->cl);
        t->cl_init = 0;
    }
    if (t->gai_busy)
        uv_cancel((uv_req_t *)&t->gai);
    if (t->tcp_open) {
        t->tcp_open = 0;
        t->tcp.data = t;
        uv_close((uv_handle_t *)&t->tcp, tcp_closed);
    }
}

static void retry_cb(uv_timer_t *h)
{
    target_t *t = h->data;
    if (!t->p->stopping && t->st == T_WAIT && !t->tcp_open && !t->gai_busy)
        start_target(t);
}

/* The session failed: log, record, retry later. */
static void fail(target_t *t, const char *why)
{
    if (t->p->stopping || t->st == T_WAIT)
        return;
    int64_t now = ms_mono_ms();
    if (t->st == T_PUBLISHING && now - t->state_ms >= RETRY_RESET_MS)
        t->delay_ms = 0;
    t->delay_ms = t->delay_ms ? t->delay_ms * 2 : RETRY_FIRST_MS;
    if (t->delay_ms > RETRY_MAX_MS)
        t->delay_ms = RETRY_MAX_MS;
    MS_WARN(t->p->ctx, "push to %s failed: %s; retrying in %lld ms", t->stat.url, why,
            (long long)t->delay_ms);
    pthread_mutex_lock(&t->p->mu);
    t->stat.failures++;
    pthread_mutex_unlock(&t->p->mu);
    set_state(t, T_WAIT, "retrying", why);
    end_session(t);
    uv_timer_start(&t->timer, retry_cb, (uint64_t)t->delay_ms, 0);
}

static void account(target_t *t, size_t n);

typedef struct {
    uv_write_t req;
    size_t len;
} wreq_t;

static void write_done(uv_write_t *req, int status)
{
    target_t *t = req->data;
    size_t len = ((wreq_t *)req)->len;
    free(req);
    if (status == UV_ECANCELED)
        return;
    if (status == 0)
        account(t, len);
    else {
        char why[128];
        snprintf(why, sizeof why, "write: %s", uv_strerror(status));
        fail(t, why);
    }
}

static void flush(target_t *t)
{
    ms_buf_t *o = &t->cl.out;
    if (!t->tcp_open || o->len == 0 || o->err) {
        ms_buf_reset(o);
        return;
    }
    if (uv_stream_get_write_queue_size((uv_stream_t *)&t->tcp) == 0)
        t->progress_ms = ms_mono_ms(); /* the stall clock starts with a backlog */
    wreq_t *w = malloc(sizeof *w + o->len);
    if (w) {
        memcpy(w + 1, o->data, o->len);
        w->req.data = t;
        w->len = o->len;
        uv_buf_t b = uv_buf_init((char *)(w + 1), (unsigned)o->len);
        if (uv_write(&w->req, (uv_stream_t *)&t->tcp, &b, 1, write_done) != 0)
            free(w);
    }
    if (o->cap > (1u << 20))
        ms_buf_free(o);
    else
        ms_buf_reset(o);
}

static void emit(void *ud, uint8_t type, uint32_t ts, const uint8_t *body, size_t len)
{
    target_t *t = ud;
    uint8_t mt = type == MS_FLV_TAG_AUDIO   ? MS_RTMP_AUDIO
                 : type == MS_FLV_TAG_VIDEO ? MS_RTMP_VIDEO
                                            : MS_RTMP_DATA_AMF0;
    ms_rtmp_client_send_media(&t->cl, mt, ts, body, len);
}

static void on_tracks(ms_reader_t *r, void *ud)
{
    (void)r;
    target_t *t = ud;
    int n = ms_hub_ntracks(t->p->hub);
    ms_codec_params_t tr[MS_MAX_TRACKS];
    for (int i = 0; i < n && i < MS_MAX_TRACKS; i++)
        tr[i] = *ms_hub_track(t->p->hub, i);
    ms_flv_play_tracks(&t->pl, tr, n < MS_MAX_TRACKS ? n : MS_MAX_TRACKS);
}

static void on_frames(ms_reader_t *r, void *ud)
{
    target_t *t = ud;
    ms_frame_t *f;
    while ((f = ms_reader_pop(r)) != NULL) {
        if (uv_stream_get_write_queue_size((uv_stream_t *)&t->tcp) > QUEUE_MAX) {
            ms_flv_play_resync(&t->pl); /* slow target: resume at the next keyframe */
        } else {
            int nt = ms_hub_ntracks(t->p->hub);
            const ms_codec_params_t *cur = f->track < nt ? ms_hub_track(t->p->hub, f->track) : NULL;
            if (ms_flv_play_frame(&t->pl, f, cur, emit, t) < 0) {
                ms_frame_unref(f);
                fail(t, "out of memory");
                return;
            }
        }
        ms_frame_unref(f);
    }
    flush(t);
}

static void publishing(target_t *t)
{
    MS_INFO(t->p->ctx, "push to %s: publishing", t->stat.url);
    pthread_mutex_lock(&t->p->mu);
    t->stat.connects++;
    pthread_mutex_unlock(&t->p->mu);
    set_state(t, T_PUBLISHING, "publishing", NULL);
    ms_flv_play_init(&t->pl);
    t->pl_init = 1;
    on_tracks(NULL, t);
    ms_reader_opts_t o = {.prompt = 1, .on_frames = on_frames, .on_tracks = on_tracks, .ud = t};
    ms_reader_t *r = ms_hub_reader_open(t->p->hub, &o);
    if (r && t->st != T_PUBLISHING) {
        ms_hub_reader_close(r); /* failed inside the GOP cache's on_frames */
        return;
    }
    t->reader = r;
    if (!r)
        fail(t, "out of memory");
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)h;
    (void)hint;
    static _Thread_local char rbuf[16384];
    *buf = uv_buf_init(rbuf, sizeof rbuf);
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    target_t *t = s->data;
    if (nread == 0)
        return;
    if (nread < 0) {
        char why[128];
        snprintf(why, sizeof why, "%s",
                 nread == UV_EOF ? "connection closed by the server" : uv_strerror((int)nread));
        fail(t, why);
        return;
    }
    int was = t->cl.state;
    if (ms_rtmp_client_feed(&t->cl, (const uint8_t *)buf->base, (size_t)nread) < 0) {
        char why[300];
        snprintf(why, sizeof why, "%s", t->cl.error);
        flush(t);
        fail(t, why);
        return;
    }
    flush(t);
    if (was != MS_RTMPC_PUBLISHING && t->cl.state == MS_RTMPC_PUBLISHING)
        publishing(t);
}

static void connect_cb(uv_connect_t *req, int status)
{
    target_t *t = req->data;
    if (status == UV_ECANCELED || t->p->stopping || !t->tcp_open)
        return;
    if (status < 0) {
        char why[128];
        snprintf(why, sizeof why, "connect: %s", uv_strerror(status));
        fail(t, why);
        return;
    }
    set_state(t, T_RTMP, "connecting", NULL);
    ms_rtmp_client_init(&t->cl, t->u.app, t->u.tc_url, t->u.name);
    t->cl_init = 1;
    t->tcp.data = t;
    uv_read_start((uv_stream_t *)&t->tcp, alloc_cb, read_cb);
    flush(t);
}

static void do_connect(target_t *t, const struct sockaddr *sa)
{
    if (uv_tcp_init(t->p->loop, &t->tcp) != 0) {
        fail(t, "cannot create a socket");
        return;
    }
    t->tcp_open = 1;
    t->p->pending++;
    t->tcp.data = t;
    uv_tcp_nodelay(&t->tcp, 1);
    set_state(t, T_CONNECT, "connecting", NULL);
    t->creq.data = t;
    int r = uv_tcp_connect(&t->creq, &t->tcp, sa, connect_cb);
    if (r < 0) {
        char why[128];
        snprintf(why, sizeof why, "connect: %s", uv_strerror(r));
        fail(t, why);
    }
}

static void gai_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    target_t *t = req->data;
    ms_push_t *p = t->p;
    t->gai_busy = 0;
    p->pending--;
    if (p->stopping || status == UV_ECANCELED) {
        uv_freeaddrinfo(res);
        try_free(p);
        return;
    }
    if (status < 0 || !res) {
        char why[300];
        snprintf(why, sizeof why, "cannot resolve %s: %s", t->u.host, uv_strerror(status));
        uv_freeaddrinfo(res);
        fail(t, why);
        return;
    }
    struct sockaddr_storage ss;
    memcpy(&ss, res->ai_addr, res->ai_addrlen);
    uv_freeaddrinfo(res);
    ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)t->u.port); /* same offset in v6 */
    do_connect(t, (struct sockaddr *)&ss);
}

static void start_target(target_t *t)
{
    if (!t->url_ok) {
        fail(t, "bad url");
        return;
    }
    struct sockaddr_storage ss;
    if (uv_ip4_addr(t->u.host, t->u.port, (struct sockaddr_in *)&ss) == 0 ||
        uv_ip6_addr(t->u.host, t->u.port, (struct sockaddr_in6 *)&ss) == 0) {
        do_connect(t, (struct sockaddr *)&ss);
        return;
    }
    set_state(t, T_RESOLVE, "connecting", NULL);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    t->gai.data = t;
    if (uv_getaddrinfo(t->p->loop, &t->gai, gai_cb, t->u.host, NULL, &hints) == 0) {
        t->gai_busy = 1;
        t->p->pending++;
    } else {
        fail(t, "cannot resolve the host");
    }
}

/* Every second: connect timeout, stalls, health. */
static void tick_cb(uv_timer_t *h)
{
    ms_push_t *p = h->data;
    int64_t now = ms_mono_ms();
    for (int i = 0; i < p->n; i++) {
        target_t *t = &p->t[i];
        if ((t->st == T_RESOLVE || t->st == T_CONNECT || t->st == T_RTMP) &&
            now - t->state_ms > CONNECT_TIMEOUT_MS) {
            fail(t, "timed out before NetStream.Publish.Start");
            continue;
        }
        if (t->st == T_PUBLISHING && t->tcp_open &&
            uv_stream_get_write_queue_size((uv_stream_t *)&t->tcp) > 0 &&
            now - t->progress_ms > STALL_MS) {
            fail(t, "stalled: the target accepted no bytes for 15 s");
            continue;
        }
    }
}

static void account(target_t *t, size_t n)
{
    int64_t now = ms_mono_ms();
    t->progress_ms = now;
    pthread_mutex_lock(&t->p->mu);
    t->last_sent_ms = now;
    t->stat.bytes_sent += n;
    pthread_mutex_unlock(&t->p->mu);
}

ms_push_t *ms_push_start(uv_loop_t *loop, ms_hub_t *hub, const char *log_ctx,
                         const char (*urls)[512], int n)
{
    assert(n > 0);
    ms_push_t *p = calloc(1, sizeof *p + (size_t)n * sizeof(target_t));
    if (!p)
        return NULL;
    p->loop = loop;
    p->hub = hub;
    p->n = n;
    snprintf(p->ctx, sizeof p->ctx, "%s", log_ctx);
    pthread_mutex_init(&p->mu, NULL);
    uv_timer_init(loop, &p->tick);
    p->tick.data = p;
    p->pending++;
    uv_timer_start(&p->tick, tick_cb, TICK_MS, TICK_MS);
    for (int i = 0; i < n; i++) {
        target_t *t = &p->t[i];
        t->p = p;
        t->idx = i;
        snprintf(t->stat.url, sizeof t->stat.url, "%s", urls[i]);
        t->url_ok = ms_rtmp_url_parse(urls[i], &t->u) == 0;
        uv_timer_init(loop, &t->timer);
        t->timer.data = t;
        p->pending++;
        start_target(t);
    }
    return p;
}

void ms_push_stop(ms_push_t *p)
{
    if (!p)
        return;
    p->stopping = 1;
    uv_close((uv_handle_t *)&p->tick, handle_closed);
    for (int i = 0; i < p->n; i++) {
        target_t *t = &p->t[i];
        end_session(t);
        t->timer.data = p;
        uv_close((uv_handle_t *)&t->timer, handle_closed);
    }
}

int ms_push_status(ms_push_t *p, ms_push_status_t *out, int cap)
{
    int64_t now = ms_mono_ms();
    pthread_mutex_lock(&p->mu);
    int n = p->n < cap ? p->n : cap;
    for (int i = 0; i < n; i++) {
        out[i] = p->t[i].stat;
        out[i].healthy = strcmp(out[i].state, "publishing") == 0 && p->t[i].last_sent_ms > 0 &&
                         now - p->t[i].last_sent_ms <= HEALTHY_MS;
    }
    pthread_mutex_unlock(&p->mu);
    return n;
}
