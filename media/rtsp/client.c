/* RTSP 1.0 client (RFC 2326): connection, request/response state machine,
 * authentication, redirects, keepalive, teardown and reconnects. Media
 * handling (tracks, UDP, frames, timeline) lives in client_media.c.
 *
 * Structure: each connection attempt is a session object (ms_rtsp_sess_t)
 * holding every uv handle it uses. A failed or finished session is detached
 * from the client at once and freed when the close callbacks of all its
 * handles and the callbacks of its pending requests have run, so a new
 * session never waits for the old one to finish closing. */
#include "media/rtsp/client_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/clock.h"

#define TICK_MS           100
#define TEARDOWN_WAIT_MS  500
#define AUTO_FALLBACK_MS  2000
#define STABLE_SESSION_MS 10000 /* a session this long resets the reconnect delay */
#define PROBLEM_WINDOW_MS (5 * 60 * 1000)
#define MAX_REDIRECTS     3
#define USER_AGENT        "mediaserver/" MS_VERSION

typedef struct {
    uv_write_t req;
    ms_rtsp_sess_t *s;
    size_t len;
    uint8_t data[];
} wreq_t;

static void start_session(ms_rtsp_client_t *c);
static void sess_close(ms_rtsp_sess_t *s);
static void send_request(ms_rtsp_sess_t *s, const char *method, const char *url, const char *extra);
static void client_maybe_done(ms_rtsp_client_t *c);
static void pace_update(ms_rtsp_sess_t *s, int64_t now);

void ms_rtsp_cl_set_status(ms_rtsp_client_t *c, ms_stream_state_t st, ms_characteristic_t ch,
                           const char *reason)
{
    pthread_mutex_lock(&c->lock);
    c->status.state = st;
    c->status.characteristic = ch;
    if (st != MS_STATE_ACTIVE)
        c->status.bitrate_kbps = 0;
    snprintf(c->status.reason, sizeof c->status.reason, "%s", reason ? reason : "");
    pthread_mutex_unlock(&c->lock);
}

/* ---- session lifetime ---- */

static void sess_maybe_free(ms_rtsp_sess_t *s)
{
    if (!s->dead || s->pending > 0)
        return;
    ms_rtsp_client_t *c = s->c;
    ms_rtsp_cl_tracks_free(s);
    ms_rtsp_parser_free(&s->parser);
    free(s);
    c->nsessions--;
    client_maybe_done(c);
}

void ms_rtsp_cl_sess_handle_closed(ms_rtsp_sess_t *s)
{
    s->pending--;
    sess_maybe_free(s);
}

static void on_handle_closed(uv_handle_t *h)
{
    ms_rtsp_cl_sess_handle_closed(h->data);
}

static void on_udp_closed(uv_handle_t *h)
{
    ms_rtsp_track_t *t = h->data; /* UDP handles point at their track */
    ms_rtsp_cl_sess_handle_closed(t->s);
}

static void sess_close(ms_rtsp_sess_t *s)
{
    if (s->dead)
        return;
    s->dead = 1;
    s->state = SS_CLOSING;
    ms_rtsp_client_t *c = s->c;
    if (c->sess == s) {
        c->sess = NULL;
        pthread_mutex_lock(&c->lock);
        c->status.reads[0] = '\0';
        pthread_mutex_unlock(&c->lock);
    }
    for (int i = 0; i < s->ntracks; i++)
        if (s->tracks[i].rx)
            ms_rtp_receiver_flush(s->tracks[i].rx);
    uv_cancel((uv_req_t *)&s->gai); /* fails harmlessly when not queued */
    if (s->tcp_open) {
        s->tcp_open = 0;
        uv_close((uv_handle_t *)&s->tcp, on_handle_closed);
    }
    if (s->tick_open) {
        s->tick_open = 0;
        uv_close((uv_handle_t *)&s->tick, on_handle_closed);
    }
    if (s->extra_open) {
        s->extra_open = 0;
        uv_close((uv_handle_t *)&s->extra, on_handle_closed);
    }
    for (int i = 0; i < s->ntracks; i++) {
        ms_rtsp_track_t *t = &s->tracks[i];
        if (t->udp_open) {
            t->udp_open = 0;
            uv_close((uv_handle_t *)&t->udp[0], on_udp_closed);
            uv_close((uv_handle_t *)&t->udp[1], on_udp_closed);
        }
    }
    sess_maybe_free(s);
}

static void on_retry(uv_timer_t *t)
{
    ms_rtsp_client_t *c = t->data;
    if (!c->stopping && !c->sess)
        start_session(c);
}

/* Records a failure of session s: status, logs, schedules the reconnect. */
static void sess_fail(ms_rtsp_sess_t *s, ms_characteristic_t ch, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void sess_fail(ms_rtsp_sess_t *s, ms_characteristic_t ch, const char *fmt, ...)
{
    if (s->dead)
        return;
    ms_rtsp_client_t *c = s->c;
    char reason[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    int64_t now = ms_mono_ms();
    int was_active = s->active_since_ms > 0;
    if (was_active) {
        /* loss of an established session: frequent ones make the camera
         * problematic */
        memmove(&c->losses[1], &c->losses[0], sizeof c->losses - sizeof c->losses[0]);
        c->losses[0] = now;
        int recent = 0;
        for (int i = 0; i < 3; i++)
            if (c->losses[i] && now - c->losses[i] <= PROBLEM_WINDOW_MS)
                recent++;
        if (recent >= 3 && ch != MS_CHAR_INCORRECT)
            ch = MS_CHAR_PROBLEMATIC;
        if (now - s->active_since_ms >= STABLE_SESSION_MS)
            c->delay_ms = c->interval_ms;
    }
    uint32_t supp = 0;
    if (ms_ratelimit_ok(&c->rl, &supp))
        MS_WARN(c->ctx, "%s (%s; reconnect in %u ms%s)", reason, ms_characteristic_name(ch),
                c->delay_ms, supp ? ", repeated errors suppressed" : "");
    ms_rtsp_cl_set_status(c, MS_STATE_INACTIVE, ch, reason);
    sess_close(s);
    if (!c->stopping) {
        uv_timer_start(&c->retry, on_retry, c->delay_ms, 0);
        uint64_t d = (uint64_t)c->delay_ms * 2;
        c->delay_ms = d > c->max_interval_ms ? c->max_interval_ms : (uint32_t)d;
    }
}

/* Restart at once (redirect, transport fallback): not a failure. */
static void sess_restart(ms_rtsp_sess_t *s)
{
    ms_rtsp_client_t *c = s->c;
    sess_close(s);
    if (!c->stopping)
        start_session(c);
}

/* ---- I/O ---- */

static void on_write(uv_write_t *req, int status)
{
    wreq_t *w = (wreq_t *)req;
    ms_rtsp_sess_t *s = w->s;
    free(w);
    s->pending--;
    if (status < 0 && status != UV_ECANCELED && !s->dead)
        sess_fail(s, MS_CHAR_DISCONNECTED, "write failed: %s", uv_strerror(status));
    sess_maybe_free(s);
}

int ms_rtsp_cl_send_raw(ms_rtsp_sess_t *s, const void *data, size_t len)
{
    if (s->dead || !s->tcp_open)
        return -ENOTCONN;
    /* bound the queued bytes: a stuck peer must not grow memory */
    if (uv_stream_get_write_queue_size((uv_stream_t *)&s->tcp) > (1u << 20))
        return -ENOBUFS;
    wreq_t *w = malloc(sizeof *w + len);
    if (!w)
        return -ENOMEM;
    w->s = s;
    w->len = len;
    memcpy(w->data, data, len);
    uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)len);
    int r = uv_write(&w->req, (uv_stream_t *)&s->tcp, &b, 1, on_write);
    if (r < 0) {
        free(w);
        return r;
    }
    s->pending++;
    return 0;
}

static int has_credentials(const ms_rtsp_sess_t *s)
{
    return s->purl.has_userinfo;
}

static void send_request(ms_rtsp_sess_t *s, const char *method, const char *url, const char *extra)
{
    char authz[2048];
    const char *a = NULL;
    if (s->auth.scheme != MS_AUTH_NONE && has_credentials(s)) {
        if (ms_auth_authorization(&s->auth, s->purl.user, s->purl.pass, method, url, authz,
                                  sizeof authz) > 0)
            a = authz;
    }
    ms_rtsp_request_t rq = {
        .method = method,
        .uri = url,
        .cseq = ++s->cseq,
        .session = s->session_id[0] ? s->session_id : NULL,
        .user_agent = USER_AGENT,
        .authorization = a,
        .extra = extra,
    };
    ms_buf_t b = MS_BUF_INIT;
    int r = ms_rtsp_build_request(&b, &rq);
    if (r == 0)
        r = ms_rtsp_cl_send_raw(s, b.data, b.len);
    ms_buf_free(&b);
    if (r < 0) {
        sess_fail(s, MS_CHAR_DISCONNECTED, "cannot send %s: %s", method, strerror(-r));
        return;
    }
    s->wait_cseq = rq.cseq;
    s->wait_method = method;
    s->wait_since_ms = ms_mono_ms();
}

/* The request for the current step (re-sent after a 401). */
static void send_step(ms_rtsp_sess_t *s)
{
    char extra[512];
    switch (s->state) {
    case SS_OPTIONS:
        send_request(s, "OPTIONS", s->url, NULL);
        break;
    case SS_DESCRIBE:
        send_request(s, "DESCRIBE", s->url, "Accept: application/sdp\r\n");
        break;
    case SS_SETUP: {
        ms_rtsp_track_t *t = &s->tracks[s->setup_index];
        if (s->tcp_transport) {
            t->ch_rtp = 2 * s->setup_index;
            t->ch_rtcp = t->ch_rtp + 1;
            snprintf(extra, sizeof extra, "Transport: RTP/AVP/TCP;unicast;interleaved=%d-%d\r\n",
                     t->ch_rtp, t->ch_rtcp);
        } else {
            if (!t->udp_open) {
                int r = ms_rtsp_cl_udp_open(t);
                if (r < 0) {
                    sess_fail(s, MS_CHAR_DISCONNECTED, "cannot bind UDP ports: %s", uv_strerror(r));
                    return;
                }
            }
            snprintf(extra, sizeof extra, "Transport: RTP/AVP;unicast;client_port=%u-%u\r\n",
                     (unsigned)t->local_port, (unsigned)t->local_port + 1);
        }
        send_request(s, "SETUP", t->control, extra);
        break;
    }
    case SS_PLAY:
        send_request(s, "PLAY", s->aggregate, "Range: npt=0.000-\r\n");
        break;
    default:
        break;
    }
}

static void goto_step(ms_rtsp_sess_t *s, ms_rtsp_sess_state_t st)
{
    s->state = st;
    s->state_since_ms = ms_mono_ms();
    s->auth_tries = 0;
    send_step(s);
}

/* ---- responses ---- */

static ms_characteristic_t status_characteristic(int code)
{
    return code >= 500 ? MS_CHAR_DISCONNECTED : MS_CHAR_INCORRECT;
}

static void on_describe(ms_rtsp_sess_t *s, const ms_rtsp_msg_t *m)
{
    ms_rtsp_client_t *c = s->c;
    const char *base = ms_rtsp_msg_header(m, "Content-Base");
    if (!base)
        base = ms_rtsp_msg_header(m, "Content-Location");
    if (!base || ms_rtsp_url_resolve(s->url, base, s->base, sizeof s->base) < 0)
        snprintf(s->base, sizeof s->base, "%s", s->url);

    pthread_mutex_lock(&c->lock);
    size_t n = m->body_len < MS_SDP_MAX - 1 ? m->body_len : MS_SDP_MAX - 1;
    memcpy(c->status.sdp, m->body, n);
    c->status.sdp[n] = '\0';
    pthread_mutex_unlock(&c->lock);

    /* The parsed SDP is needed only to choose the tracks (which copy what
     * they keep): not kept in the session (5.5 KiB per camera). */
    ms_sdp_t *sdp = calloc(1, sizeof *sdp);
    if (!sdp) {
        sess_fail(s, MS_CHAR_DISCONNECTED, "out of memory (SDP)");
        return;
    }
    int r = ms_sdp_parse((const char *)m->body, m->body_len, sdp);
    if (r < 0) {
        ms_sdp_free(sdp);
        free(sdp);
        sess_fail(s, MS_CHAR_INCORRECT, "unparsable SDP (%s)", strerror(-r));
        return;
    }
    const char *ctl = sdp->control;
    if (!ctl || !*ctl || strcmp(ctl, "*") == 0 ||
        ms_rtsp_url_resolve(s->base, ctl, s->aggregate, sizeof s->aggregate) < 0)
        snprintf(s->aggregate, sizeof s->aggregate, "%s", s->base);
    char err[256] = "";
    r = ms_rtsp_cl_tracks_select(s, sdp, err, sizeof err);
    ms_sdp_free(sdp);
    free(sdp);
    if (r < 0) {
        sess_fail(s, MS_CHAR_INCORRECT, "%s", err);
        return;
    }
    s->setup_index = 0;
    goto_step(s, SS_SETUP);
}

static void on_setup(ms_rtsp_sess_t *s, const ms_rtsp_msg_t *m)
{
    ms_rtsp_track_t *t = &s->tracks[s->setup_index];
    const char *sess = ms_rtsp_msg_header(m, "Session");
    if (sess) {
        char id[256];
        int to;
        if (ms_rtsp_session_parse(sess, id, sizeof id, &to) == 0) {
            if (!s->session_id[0])
                snprintf(s->session_id, sizeof s->session_id, "%s", id);
            s->session_timeout_s = to;
        }
    }
    if (!s->session_id[0]) {
        sess_fail(s, MS_CHAR_INCORRECT, "SETUP answer without a Session header");
        return;
    }
    ms_rtsp_transport_t tr;
    if (ms_rtsp_transport_parse(ms_rtsp_msg_header(m, "Transport"), 0, &tr) == 0) {
        if (s->tcp_transport && tr.has_interleaved) {
            t->ch_rtp = tr.interleaved[0];
            t->ch_rtcp = tr.interleaved[1];
        } else if (!s->tcp_transport) {
            if (tr.tcp) {
                sess_fail(s, MS_CHAR_INCORRECT, "server answered a UDP SETUP with TCP");
                return;
            }
            if (tr.has_server_port)
                ms_rtsp_cl_udp_set_server(t, tr.server_port[0], tr.server_port[1]);
        }
    }
    if (s->setup_index + 1 < s->ntracks) {
        s->setup_index++;
        goto_step(s, SS_SETUP);
    } else {
        goto_step(s, SS_PLAY);
    }
}

static void on_play(ms_rtsp_sess_t *s)
{
    ms_rtsp_client_t *c = s->c;
    int64_t now = ms_mono_ms();
    s->state = SS_PLAYING;
    s->state_since_ms = now;
    s->play_ms = now;
    s->last_data_ms = now;
    s->last_keepalive_ms = now;
    s->last_rr_ms = now;
    MS_INFO(c->ctx, "playing %s over %s (%d track%s, session timeout %d s)", s->url,
            s->tcp_transport ? "tcp" : "udp", s->ntracks, s->ntracks == 1 ? "" : "s",
            s->session_timeout_s);
    pthread_mutex_lock(&c->lock);
    snprintf(c->status.transport, sizeof c->status.transport, "%s",
             s->tcp_transport ? "tcp" : "udp");
    snprintf(c->status.reads, sizeof c->status.reads, "on_arrival");
    pthread_mutex_unlock(&c->lock);
    ms_rtsp_cl_hub_start(s);
    if (!s->tcp_transport) {
        ms_rtsp_cl_udp_punch(s);
    } else {
        pace_update(s, now); /* batched: reads the first frame every FIRST_READ_MS */
    }
}

static int try_auth(ms_rtsp_sess_t *s, const ms_rtsp_msg_t *m)
{
    if (!has_credentials(s) || s->auth_tries >= 1)
        return 0;
    ms_auth_challenge_t ch;
    memset(&ch, 0, sizeof ch);
    int ok = 0;
    for (int i = 0; i < m->nheaders; i++)
        if (strcasecmp(m->headers[i].name, "WWW-Authenticate") == 0 &&
            ms_auth_challenge_parse(&ch, m->headers[i].value) == 0)
            ok = 1;
    if (!ok)
        return 0;
    s->auth = ch;
    s->auth_tries++;
    send_step(s);
    return 1;
}

static void on_redirect(ms_rtsp_sess_t *s, const char *loc)
{
    ms_rtsp_client_t *c = s->c;
    ms_rtsp_url_t u;
    if (!loc || c->redirects >= MAX_REDIRECTS || ms_rtsp_url_parse(loc, &u) < 0) {
        sess_fail(s, MS_CHAR_INCORRECT, "redirect %s",
                  loc ? "loop or bad Location" : "without Location");
        return;
    }
    c->redirects++;
    MS_INFO(c->ctx, "redirected to %s", loc);
    snprintf(c->redirect_url, sizeof c->redirect_url, "%s", loc);
    sess_restart(s);
}

static void on_response(ms_rtsp_sess_t *s, const ms_rtsp_msg_t *m)
{
    long cseq = ms_rtsp_msg_cseq(m);
    if (!s->wait_method || cseq != (long)s->wait_cseq)
        return; /* late keepalive answer or a stray response */
    const char *method = s->wait_method;
    s->wait_method = NULL;
    s->wait_since_ms = 0;
    int st = m->status;

    if (s->state == SS_TEARDOWN) {
        sess_close(s);
        return;
    }
    if (s->state == SS_PLAYING) {
        /* keepalive answer */
        if (st == 454)
            sess_fail(s, MS_CHAR_DISCONNECTED, "session lost (454 on keepalive)");
        return;
    }
    if (st == 401) {
        if (try_auth(s, m))
            return;
        sess_fail(s, MS_CHAR_INCORRECT, "%s: 401 Unauthorized%s", method,
                  has_credentials(s) ? " (bad credentials)" : " (no credentials in the URL)");
        return;
    }
    if (st >= 300 && st < 400 && (s->state == SS_OPTIONS || s->state == SS_DESCRIBE)) {
        on_redirect(s, ms_rtsp_msg_header(m, "Location"));
        return;
    }
    if (s->state == SS_OPTIONS) {
        /* some cameras refuse OPTIONS: carry on with DESCRIBE */
        const char *pub = st < 300 ? ms_rtsp_msg_header(m, "Public") : NULL;
        s->has_get_parameter = pub && strstr(pub, "GET_PARAMETER") != NULL;
        goto_step(s, SS_DESCRIBE);
        return;
    }
    if (st == 461 && s->state == SS_SETUP && !s->tcp_transport &&
        s->c->transport == MS_TRANSPORT_AUTO) {
        MS_INFO(s->c->ctx, "UDP transport refused (461), switching to TCP");
        s->c->tcp_learned = 1;
        sess_restart(s);
        return;
    }
    if (st < 200 || st >= 300) {
        sess_fail(s, status_characteristic(st), "%s: %d %s", method, st,
                  m->reason && *m->reason ? m->reason : ms_rtsp_reason(st));
        return;
    }
    switch (s->state) {
    case SS_DESCRIBE:
        on_describe(s, m);
        break;
    case SS_SETUP:
        on_setup(s, m);
        break;
    case SS_PLAY:
        on_play(s);
        break;
    default:
        break;
    }
}

/* A request from the server (RFC 2326 10: e.g. OPTIONS or GET_PARAMETER as
 * keepalive, ANNOUNCE): answer 200 for the harmless ones, 501 else. */
static void on_server_request(ms_rtsp_sess_t *s, const ms_rtsp_msg_t *m)
{
    int ok = strcmp(m->method, "OPTIONS") == 0 || strcmp(m->method, "GET_PARAMETER") == 0 ||
             strcmp(m->method, "SET_PARAMETER") == 0;
    ms_buf_t b = MS_BUF_INIT;
    if (ms_rtsp_build_response(&b, ok ? 200 : 501, NULL, ms_rtsp_msg_cseq(m), NULL, NULL, NULL,
                               NULL, 0) == 0)
        (void)ms_rtsp_cl_send_raw(s, b.data, b.len);
    ms_buf_free(&b);
}

static pthread_once_t rbuf_once = PTHREAD_ONCE_INIT;
static pthread_key_t rbuf_key; /* its destructor frees the buffer at thread exit */
static _Thread_local uint8_t *rbuf;

static void rbuf_key_init(void)
{
    if (pthread_key_create(&rbuf_key, free) != 0)
        MS_WARN("[rtsp-client]", "pthread_key_create failed: read buffers leak at thread exit");
}

uint8_t *ms_rtsp_cl_read_buf(void)
{
    if (!rbuf) {
        pthread_once(&rbuf_once, rbuf_key_init);
        rbuf = malloc(CL_READ_BUF);
        if (rbuf)
            (void)pthread_setspecific(rbuf_key, rbuf);
    }
    return rbuf;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    (void)h;
    uint8_t *rb = ms_rtsp_cl_read_buf();
    *buf = uv_buf_init((char *)rb, rb ? CL_READ_BUF : 0);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    ms_rtsp_sess_t *s = st->data;
    if (s->dead)
        return;
    if (nread < 0) {
        sess_fail(s, MS_CHAR_DISCONNECTED, "%s",
                  nread == UV_EOF ? "connection closed by the server" : uv_strerror((int)nread));
        return;
    }
    if (nread == 0)
        return;
    ms_rtsp_cl_arrival(s);
    const uint8_t *d = (const uint8_t *)buf->base;
    size_t n = (size_t)nread;
    ms_rtsp_parser_t *p = &s->parser;
    while (n > 0 && !s->dead) {
        /* Fast path (RFC 2326 10.12 interleaved frames): while the parser
         * holds nothing, complete '$' frames are handed on straight from the
         * read buffer, without a copy into the parser nor a memmove of the
         * rest after each frame. */
        while (p->off == p->len && !p->error && n >= 4 && d[0] == '$') {
            size_t l = ((size_t)d[2] << 8) | d[3];
            if (n < 4 + l)
                break;
            ms_rtsp_cl_interleaved(s, d[1], d + 4, l);
            if (s->dead)
                return;
            d += 4 + l;
            n -= 4 + l;
        }
        if (n == 0)
            return;
        /* The parser gets what the fast path cannot take: a frame cut by the
         * end of a read (then, from the next read, only the bytes that
         * complete it, so the fast path resumes right after), and RTSP
         * messages with whatever follows them in the read. */
        size_t take = n;
        const uint8_t *head = p->off == p->len ? d : p->buf + p->off;
        size_t held = p->len - p->off;
        if (head[0] == '$') {
            if (held < 4)
                take = 4 - held; /* complete the 4-byte header first */
            else
                take = 4 + (((size_t)head[2] << 8) | head[3]) - held;
            if (take > n)
                take = n;
        }
        int r = ms_rtsp_parser_feed(p, d, take);
        d += take;
        n -= take;
        ms_rtsp_event_t ev;
        while (r == 0 && !s->dead && (r = ms_rtsp_parser_next(p, &ev)) == 1) {
            r = 0;
            if (ev.type == MS_RTSP_EV_INTERLEAVED)
                ms_rtsp_cl_interleaved(s, ev.channel, ev.data, ev.len);
            else if (ev.msg.is_request)
                on_server_request(s, &ev.msg);
            else
                on_response(s, &ev.msg);
        }
        if (r < 0) {
            if (!s->dead)
                sess_fail(s, MS_CHAR_INCORRECT, "malformed RTSP data from the server (%s)",
                          strerror(-r));
            return;
        }
    }
}

/* Batched reading (the node's ingest_batch_ms; media/stream/hub.h "prompt
 * delivery"). While the hub has no viewer that needs frames at once, the
 * interleaved TCP socket is not watched: the session tick reads whatever
 * arrived since the last one. Every session tick of a worker loop falls on
 * the same multiple of the batch interval, so one wakeup serves them all,
 * and each read takes several frames at once (fewer system calls, and fewer
 * TCP ACKs, which the kernel sends on reads). A frame waits at most one
 * interval in the socket; its timestamps come from RTP, not from arrival.
 * Returns the bytes read. */
static size_t sess_drain(ms_rtsp_sess_t *s)
{
    uv_os_fd_t fd;
    size_t got = 0;
    uint8_t *rb = ms_rtsp_cl_read_buf();
    if (!rb || uv_fileno((uv_handle_t *)&s->tcp, &fd) != 0)
        return 0;
    /* bounded: 256 reads of 64 KiB per tick is > 130 Mbit/s at 1 s batches */
    for (int i = 0; i < 256 && !s->dead; i++) {
        ssize_t n = read(fd, rb, CL_READ_BUF);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return got;
        uv_buf_t b = uv_buf_init((char *)rb, CL_READ_BUF);
        ssize_t st = n > 0 ? n : n == 0 ? UV_EOF : uv_translate_sys_error(errno);
        if (n > 0)
            got += (size_t)n;
        on_read((uv_stream_t *)&s->tcp, st, &b);
        if (n < (ssize_t)CL_READ_BUF)
            return got; /* a short read emptied the socket */
    }
    return got;
}

static void set_reads(ms_rtsp_client_t *c, const char *how)
{
    pthread_mutex_lock(&c->lock);
    snprintf(c->status.reads, sizeof c->status.reads, "%s", how);
    pthread_mutex_unlock(&c->lock);
}

static void extra_update(ms_rtsp_sess_t *s);

/* Switches the session between batched and prompt reading. */
static void sess_set_paced(ms_rtsp_sess_t *s, int paced)
{
    if (s->paced == paced || s->dead || !s->tcp_open)
        return;
    if (paced) {
        if (uv_read_stop((uv_stream_t *)&s->tcp) == 0) {
            s->paced = 1;
            set_reads(s->c, "batched");
        }
        return;
    }
    sess_drain(s); /* what waited in the socket comes first */
    if (s->dead)
        return;
    int r = uv_read_start((uv_stream_t *)&s->tcp, on_alloc, on_read);
    if (r < 0) {
        sess_fail(s, MS_CHAR_DISCONNECTED, "read: %s", uv_strerror(r));
        return;
    }
    s->paced = 0;
    extra_update(s);
    set_reads(s->c, "on_arrival");
}

/* Reads between the batch ticks (the session's `extra` timer), for two
 * reasons:
 * - A new session's first frame. A start, a reconnect or a backup activated
 *   by a failover would wait up to one batch interval for its first read
 *   after PLAY (ticks fall on multiples of the interval); instead the socket
 *   is read every FIRST_READ_MS until the first frame is out (at most
 *   FIRST_READS times).
 * - A camera that sends more per interval than the socket holds. The
 *   kernel's receive buffer is the TCP window: once a batch fills it, the
 *   camera is held back by flow control until the next read, and the
 *   buffer's auto-tuning does not grow it (it grows when a reader takes
 *   more per round trip than the buffer holds, which a full buffer read
 *   once per interval never does). Seen: an 8 Mbit/s camera held to
 *   1.9 Mbit/s by a 229 KiB buffer read once a second, the rest waiting in
 *   the camera. So a read that finds the buffer more than half full doubles
 *   the session's reads per interval (s->split, up to one read every
 *   FIRST_READ_MS); SPLIT_CALM reads in a row that find less than an
 *   eighth halve it again.
 * - A reader that bounds the wait (the hub's ms_hub_batch_max_ms(): the DVR
 *   recorder asks for 500 ms, so that a kill -9 loses at most about 0.5 s
 *   in the socket plus the camera's own latency, within 1 s; docs/dvr.md
 *   "What a crash loses"). The interval is cut into the fewest equal reads
 *   that meet the bound (1000 ms into 2 x 500 ms).
 * The extra reads fall on multiples of their period (like the ticks, so the
 * sessions of a worker are read in one wakeup); an extra read or a tick due
 * within a tenth of a period of the last read skips its read (it would find
 * the socket empty), so reads are at most 1.1 periods apart.
 * The reads stay batched: the socket is not watched in between. */
#define FIRST_READ_MS 100
#define FIRST_READS   30
#define SPLIT_CALM    20

static uint64_t extra_period(const ms_rtsp_sess_t *s)
{
    const ms_rtsp_client_t *c = s->c;
    if (s->dead || s->state != SS_PLAYING || !s->paced || c->batch_ms <= FIRST_READ_MS)
        return 0;
    if (!s->first_frame_sent && s->first_reads < FIRST_READS)
        return FIRST_READ_MS;
    uint64_t p = s->split > 1 ? c->batch_ms / (uint64_t)s->split : 0;
    uint64_t bound = ms_hub_batch_max_ms(c->hub);
    if (bound && bound < c->batch_ms) {
        uint64_t k = (c->batch_ms + bound - 1) / bound; /* reads per interval */
        uint64_t q = c->batch_ms / k;
        if (q < FIRST_READ_MS)
            q = FIRST_READ_MS;
        if (!p || q < p)
            p = q;
    }
    return p;
}

static void on_extra_read(uv_timer_t *t);

/* Starts, retimes or stops the extra reads to match extra_period(). */
static void extra_update(ms_rtsp_sess_t *s)
{
    uint64_t p = extra_period(s);
    if (p == s->extra_ms)
        return;
    s->extra_ms = p;
    if (p == 0) {
        if (s->extra_open) {
            s->extra_open = 0;
            uv_close((uv_handle_t *)&s->extra, on_handle_closed);
        }
        return;
    }
    if (!s->extra_open) {
        uv_timer_init(s->c->loop, &s->extra);
        s->extra.data = s;
        s->extra_open = 1;
        s->pending++;
    }
    uv_timer_start(&s->extra, on_extra_read, ms_phase_delay(uv_now(s->c->loop), p), 0);
}

/* One batched read: drain the socket, hand the batch on, and adapt the
 * reads per interval to what the read found. */
static void batch_read(ms_rtsp_sess_t *s)
{
    size_t got = sess_drain(s);
    if (s->dead)
        return;
    s->last_read_ms = uv_now(s->c->loop);
    ms_hub_batch_end(s->c->hub); /* the recorder writes the batch at once */
    uv_os_fd_t fd;
    int rcvbuf = 0;
    socklen_t len = sizeof rcvbuf;
    if (uv_fileno((uv_handle_t *)&s->tcp, &fd) != 0 ||
        getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, &len) != 0 || rcvbuf <= 0)
        return;
    int max_split = (int)(s->c->batch_ms / FIRST_READ_MS);
    if (got > (size_t)rcvbuf / 2 && s->split * 2 <= max_split) {
        s->split *= 2;
        s->split_calm = 0;
        if (s->split > s->split_logged) { /* each step once per session */
            s->split_logged = s->split;
            MS_INFO(s->c->ctx,
                    "a batch filled the receive buffer (%zu of %d bytes): reading every %llu ms",
                    got, rcvbuf, (unsigned long long)(s->c->batch_ms / (uint64_t)s->split));
        }
    } else if (s->split > 1 && got < (size_t)rcvbuf / 8) {
        if (++s->split_calm >= SPLIT_CALM) {
            s->split /= 2;
            s->split_calm = 0;
        }
    } else {
        s->split_calm = 0;
    }
    extra_update(s);
}

static void on_extra_read(uv_timer_t *t)
{
    ms_rtsp_sess_t *s = t->data;
    if (s->dead)
        return;
    if (!s->first_frame_sent)
        s->first_reads++;
    uint64_t p = extra_period(s);
    if (p != 0 && uv_now(s->c->loop) - s->last_read_ms >= p / 10)
        batch_read(s);
    if (s->dead)
        return;
    extra_update(s);
    /* one-shot, re-armed on the next multiple of the period: a repeating
     * libuv timer restarts from the time it ran, so its lateness would add
     * up and move it off the other sessions' reads */
    if (s->extra_open && s->extra_ms)
        uv_timer_start(&s->extra, on_extra_read, ms_phase_delay(uv_now(s->c->loop), s->extra_ms),
                       0);
}

/* PLAYING over TCP: batched unless the hub wants prompt delivery. */
static void pace_update(ms_rtsp_sess_t *s, int64_t now)
{
    ms_rtsp_client_t *c = s->c;
    int want = s->tcp_transport && c->batch_ms > 0 && !ms_hub_prompt_wanted(c->hub, now);
    if (want != s->paced)
        sess_set_paced(s, want);
    else if (s->paced && !(s->extra_ms && uv_now(c->loop) - s->last_read_ms < s->extra_ms / 10))
        batch_read(s); /* (an extra read that just ran found the socket empty) */
    if (!s->dead)
        extra_update(s);
}

static void on_connect(uv_connect_t *req, int status)
{
    ms_rtsp_sess_t *s = req->data;
    s->pending--;
    if (s->dead) {
        sess_maybe_free(s);
        return;
    }
    if (status < 0) {
        sess_fail(s, MS_CHAR_DISCONNECTED, "connect to %s:%u failed: %s", s->purl.host,
                  (unsigned)s->purl.port, uv_strerror(status));
        return;
    }
    int len = sizeof s->peer;
    uv_tcp_getpeername(&s->tcp, (struct sockaddr *)&s->peer, &len);
    uv_tcp_nodelay(&s->tcp, 1);
    int r = uv_read_start((uv_stream_t *)&s->tcp, on_alloc, on_read);
    if (r < 0) {
        sess_fail(s, MS_CHAR_DISCONNECTED, "read: %s", uv_strerror(r));
        return;
    }
    goto_step(s, SS_OPTIONS);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    ms_rtsp_sess_t *s = req->data;
    s->pending--;
    if (s->dead) {
        if (res)
            uv_freeaddrinfo(res);
        sess_maybe_free(s);
        return;
    }
    if (status < 0 || !res) {
        sess_fail(s, MS_CHAR_DISCONNECTED, "cannot resolve %s: %s", s->purl.host,
                  uv_strerror(status));
        if (res)
            uv_freeaddrinfo(res);
        return;
    }
    int r = uv_tcp_init(s->c->loop, &s->tcp);
    if (r == 0) {
        s->tcp.data = s;
        s->tcp_open = 1;
        s->pending++;
        s->connect_req.data = s;
        s->state = SS_CONNECT;
        s->state_since_ms = ms_mono_ms();
        r = uv_tcp_connect(&s->connect_req, &s->tcp, res->ai_addr, on_connect);
        if (r == 0)
            s->pending++;
    }
    uv_freeaddrinfo(res);
    if (r < 0)
        sess_fail(s, MS_CHAR_DISCONNECTED, "connect: %s", uv_strerror(r));
}

/* ---- periodic work ---- */

static void send_keepalive(ms_rtsp_sess_t *s)
{
    /* RFC 2326 10.8: GET_PARAMETER with no body is a keepalive; OPTIONS
     * when the server did not list it. */
    send_request(s, s->has_get_parameter ? "GET_PARAMETER" : "OPTIONS", s->aggregate, NULL);
}

static void on_tick(uv_timer_t *tm)
{
    ms_rtsp_sess_t *s = tm->data;
    if (s->dead)
        return;
    ms_rtsp_client_t *c = s->c;
    int64_t now = ms_mono_ms();
    uint32_t to = c->timeout_ms;
    switch (s->state) {
    case SS_RESOLVE:
    case SS_CONNECT:
        if (now - s->state_since_ms > to)
            sess_fail(s, MS_CHAR_DISCONNECTED, "%s %s:%u timed out",
                      s->state == SS_RESOLVE ? "resolving" : "connecting to", s->purl.host,
                      (unsigned)s->purl.port);
        return;
    case SS_TEARDOWN:
        if (now - s->state_since_ms > TEARDOWN_WAIT_MS)
            sess_close(s);
        return;
    case SS_PLAYING:
        pace_update(s, now);
        if (s->dead)
            return;
        break;
    default:
        if (s->wait_since_ms && now - s->wait_since_ms > to)
            sess_fail(s, MS_CHAR_DISCONNECTED, "no answer to %s within %u ms",
                      s->wait_method ? s->wait_method : "request", to);
        return;
    }
    if (!s->tcp_transport && !s->got_rtp && c->transport == MS_TRANSPORT_AUTO &&
        now - s->play_ms > AUTO_FALLBACK_MS) {
        MS_INFO(c->ctx, "no RTP over UDP within %d ms, switching to TCP", AUTO_FALLBACK_MS);
        c->tcp_learned = 1;
        sess_restart(s);
        return;
    }
    if (now - s->last_data_ms > to) {
        sess_fail(s, MS_CHAR_DISCONNECTED, "no media data for %u ms", to);
        return;
    }
    int64_t ka = (int64_t)s->session_timeout_s * 1000 / 2;
    if (ka < 1000)
        ka = 1000;
    if (now - s->last_keepalive_ms >= ka) {
        s->last_keepalive_ms = now;
        send_keepalive(s);
        if (s->dead)
            return;
    }
    if (now - s->last_rr_ms >= 5000) {
        s->last_rr_ms = now;
        ms_rtsp_cl_send_rr(s);
    }
    ms_rtsp_cl_stats_tick(c, now);
}

/* ---- client ---- */

static void strip_userinfo(const char *in, char *out, size_t cap)
{
    const char *p = strstr(in, "://");
    if (!p) {
        snprintf(out, cap, "%s", in);
        return;
    }
    p += 3;
    size_t alen = strcspn(p, "/?#");
    const char *at = NULL;
    for (const char *q = p; q < p + alen; q++)
        if (*q == '@')
            at = q;
    if (!at) {
        snprintf(out, cap, "%s", in);
        return;
    }
    snprintf(out, cap, "%.*s%s", (int)(p - in), in, at + 1);
}

static void start_session(ms_rtsp_client_t *c)
{
    const char *url = c->redirect_url[0] ? c->redirect_url : c->url;
    ms_rtsp_sess_t *s = calloc(1, sizeof *s);
    if (!s) {
        ms_rtsp_cl_set_status(c, MS_STATE_INACTIVE, MS_CHAR_DISCONNECTED, "out of memory");
        uv_timer_start(&c->retry, on_retry, c->delay_ms, 0);
        return;
    }
    s->c = c;
    s->split = 1;
    c->nsessions++;
    c->sess = s;
    if (c->started_sessions++ > 0) {
        pthread_mutex_lock(&c->lock);
        c->status.reconnects++;
        c->status.reconnects_total++;
        pthread_mutex_unlock(&c->lock);
    }
    ms_rtsp_parser_init(&s->parser);
    s->session_timeout_s = 60;
    s->tcp_transport =
        c->transport == MS_TRANSPORT_TCP || (c->transport == MS_TRANSPORT_AUTO && c->tcp_learned);
    if (ms_rtsp_url_parse(url, &s->purl) < 0) {
        s->dead = 1;
        sess_maybe_free(s);
        c->sess = NULL;
        return;
    }
    if (c->redirect_url[0] && !s->purl.has_userinfo && c->purl.has_userinfo) {
        /* keep the configured credentials across a redirect */
        s->purl.has_userinfo = 1;
        memcpy(s->purl.user, c->purl.user, sizeof s->purl.user);
        memcpy(s->purl.pass, c->purl.pass, sizeof s->purl.pass);
    }
    c->redirect_url[0] = '\0';
    strip_userinfo(url, s->url, sizeof s->url);
    pthread_mutex_lock(&c->lock);
    c->status.state = MS_STATE_INITIALIZATION;
    pthread_mutex_unlock(&c->lock);

    s->state = SS_RESOLVE;
    s->state_since_ms = ms_mono_ms();
    uv_timer_init(c->loop, &s->tick);
    s->tick.data = s;
    s->tick_open = 1;
    s->pending++;
    /* ticks on multiples of the period: a worker's sessions tick together */
    uint64_t period = c->batch_ms ? c->batch_ms : TICK_MS;
    uv_timer_start(&s->tick, on_tick, ms_phase_delay(uv_now(c->loop), period), period);

    char port[8];
    snprintf(port, sizeof port, "%u", (unsigned)s->purl.port);
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    s->gai.data = s;
    int r = uv_getaddrinfo(c->loop, &s->gai, on_resolved, s->purl.host, port, &hints);
    if (r < 0) {
        sess_fail(s, MS_CHAR_DISCONNECTED, "cannot resolve %s: %s", s->purl.host, uv_strerror(r));
        return;
    }
    s->pending++;
}

ms_rtsp_client_t *ms_rtsp_client_start(uv_loop_t *loop, const ms_rtsp_client_cfg_t *cfg,
                                       ms_hub_t *hub, char *err, size_t errlen)
{
    ms_rtsp_url_t u;
    if (!cfg || !cfg->url || ms_rtsp_url_parse(cfg->url, &u) < 0) {
        snprintf(err, errlen, "invalid RTSP URL");
        return NULL;
    }
    if (u.secure) {
        snprintf(err, errlen, "rtsps:// is not supported by the RTSP client yet");
        return NULL;
    }
    ms_rtsp_client_t *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->url = strdup(cfg->url);
    if (!c->url) {
        free(c);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->loop = loop;
    c->hub = hub;
    c->purl = u;
    c->transport = cfg->transport;
    c->channels = cfg->channels ? cfg->channels : MS_CHANNEL_VIDEO | MS_CHANNEL_AUDIO;
    c->interval_ms = cfg->interval_ms ? cfg->interval_ms : 1000;
    c->max_interval_ms =
        cfg->max_interval_ms >= c->interval_ms ? cfg->max_interval_ms : c->interval_ms;
    c->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : 5000;
    c->batch_ms = cfg->batch_ms > 1000 ? 1000 : cfg->batch_ms;
    c->delay_ms = c->interval_ms;
    snprintf(c->ctx, sizeof c->ctx, "%s", cfg->log_ctx ? cfg->log_ctx : "[rtsp-client]");
    c->rl = (ms_ratelimit_t)MS_RATELIMIT_INIT(10000);
    pthread_mutex_init(&c->lock, NULL);
    c->status.state = MS_STATE_INITIALIZATION;
    uv_timer_init(loop, &c->retry);
    c->retry.data = c;
    c->retry_open = 1;
    start_session(c);
    return c;
}

static void on_retry_closed(uv_handle_t *h)
{
    ms_rtsp_client_t *c = h->data;
    c->retry_open = 0;
    client_maybe_done(c);
}

static void client_maybe_done(ms_rtsp_client_t *c)
{
    if (!c->stopping || c->nsessions > 0 || c->retry_open)
        return;
    ms_hub_reset(c->hub);
    void (*done)(void *) = c->done;
    void *ud = c->done_ud;
    if (done)
        done(ud);
    pthread_mutex_destroy(&c->lock);
    free(c->url);
    free(c);
}

void ms_rtsp_client_stop(ms_rtsp_client_t *c, void (*done)(void *ud), void *ud)
{
    if (c->stopping)
        return;
    c->stopping = 1;
    c->done = done;
    c->done_ud = ud;
    ms_rtsp_cl_set_status(c, MS_STATE_INACTIVE, MS_CHAR_OK, "stopped");
    ms_rtsp_sess_t *s = c->sess;
    if (s && s->tcp_open && s->session_id[0] && s->state >= SS_SETUP && s->state <= SS_PLAYING) {
        /* RFC 2326 10.7: best effort, bounded by TEARDOWN_WAIT_MS in on_tick */
        sess_set_paced(s, 0); /* read the answer as it comes */
        s->state = SS_TEARDOWN;
        s->state_since_ms = ms_mono_ms();
        send_request(s, "TEARDOWN", s->aggregate, NULL);
    } else if (s) {
        sess_close(s);
    }
    uv_timer_stop(&c->retry);
    uv_close((uv_handle_t *)&c->retry, on_retry_closed);
}

void ms_rtsp_client_get_status(ms_rtsp_client_t *c, ms_source_status_t *out)
{
    pthread_mutex_lock(&c->lock);
    *out = c->status;
    pthread_mutex_unlock(&c->lock);
}

void ms_rtsp_client_get_load(ms_rtsp_client_t *c, int *active, double *bitrate_kbps)
{
    pthread_mutex_lock(&c->lock);
    *active = c->status.state == MS_STATE_ACTIVE;
    *bitrate_kbps = c->status.bitrate_kbps;
    pthread_mutex_unlock(&c->lock);
}
