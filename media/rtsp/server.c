/* RTSP server: listening socket, accept thread, hand-off of connections to
 * the stream loops, start and stop (media/rtsp/server.h).
 *
 * Hand-off (RFC 2326 lets a client send several requests before it names a
 * stream, e.g. "OPTIONS *"): the accept thread parses requests until one
 * names a stream that lookup() knows, answers the others itself (OPTIONS,
 * 404), then dup()s the descriptor, closes its own uv_tcp_t and posts the
 * descriptor and every unanswered byte to the stream's loop. The stream
 * loop re-parses those bytes, so the request that named the stream is
 * handled there, next to the hub.
 *
 * Redirects (cfg.redirect, docs/cluster.md "Playback on any node"): before
 * the hand-off, a request for a stream another server serves is answered
 * here with 302 and the Location of the same path and query on that server
 * (RFC 2326 11.3.3); the connection stays open for further requests. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "media/rtsp/server_int.h"
#include "util/connlimit.h"
#include "util/log.h"
#include "util/sizes.h"

#define ACCEPT_TIMEOUT_MS 10000 /* default time to name a stream */
#define ACCEPT_MAX_REQS   16
#define ACCEPT_MAX_CONNS  1024
#define STOP_WAIT_S       5
#define PUBLIC_HDR                                                                                 \
    "Public: OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, GET_PARAMETER\r\nServer: "           \
    "mediaserver\r\n"

typedef struct {
    uv_tcp_t tcp;
    uv_timer_t timer;
    ms_rtsp_server_t *srv;
    ms_buf_t raw;
    int nreq;
    int closing;
    int open_handles;
    int counted; /* ip is counted in srv->conns */
    ms_ip_t ip;
} acc_conn_t;

typedef struct {
    ms_rtsp_server_t *srv;
    ms_rtsp_stream_t st;
    int fd;
    int counted; /* ip is counted in srv->conns: the adopting loop releases it */
    ms_ip_t ip;
    size_t len;
    uint8_t data[];
} handoff_t;

static void acc_closed(uv_handle_t *h)
{
    acc_conn_t *a = h->data;
    if (--a->open_handles > 0)
        return;
    a->srv->accept_conns--;
    if (a->counted)
        ms_connlimit_release(a->srv->conns, &a->ip);
    ms_buf_free(&a->raw);
    free(a);
}

static void acc_close(acc_conn_t *a)
{
    if (a->closing)
        return;
    a->closing = 1;
    uv_close((uv_handle_t *)&a->tcp, acc_closed);
    uv_close((uv_handle_t *)&a->timer, acc_closed);
}

static void acc_write_done(uv_write_t *req, int status)
{
    (void)status;
    free(req);
}

/* Writes b's bytes (copied) to the connection. */
static void acc_send(acc_conn_t *a, const ms_buf_t *b)
{
    if (b->err)
        return;
    uv_write_t *req = malloc(sizeof *req + b->len);
    if (req) {
        memcpy(req + 1, b->data, b->len);
        uv_buf_t buf = uv_buf_init((char *)(req + 1), (unsigned)b->len);
        if (uv_write(req, (uv_stream_t *)&a->tcp, &buf, 1, acc_write_done) != 0)
            free(req);
    }
}

static void acc_reply(acc_conn_t *a, int status, long cseq, const char *extra)
{
    ms_buf_t b = MS_BUF_INIT;
    ms_rtsp_build_response(&b, status, NULL, cseq, NULL, extra, NULL, NULL, 0);
    acc_send(a, &b);
    ms_buf_free(&b);
}

static void handoff_task(void *arg)
{
    handoff_t *h = arg;
    ms_rtsp_server_t *srv = h->srv;
    pthread_mutex_lock(&srv->mu);
    int stopping = srv->stopping;
    pthread_mutex_unlock(&srv->mu);
    if (stopping) {
        close(h->fd);
        srv->cfg.release(srv->cfg.ud, h->st.ref);
        if (h->counted)
            ms_connlimit_release(srv->conns, &h->ip);
    } else {
        ms_rtsp_srv_adopt(srv, &h->st, h->fd, h->data, h->len, h->counted ? &h->ip : NULL);
    }
    free(h);
    pthread_mutex_lock(&srv->mu);
    srv->pending--;
    pthread_cond_broadcast(&srv->cv);
    pthread_mutex_unlock(&srv->mu);
}

/* Returns 0 when the connection was handed off (and closed here). */
static int acc_handoff(acc_conn_t *a, ms_rtsp_stream_t *st)
{
    ms_rtsp_server_t *srv = a->srv;
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&a->tcp, &fd) != 0)
        goto err;
    int nfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (nfd < 0)
        goto err;
    handoff_t *h = malloc(sizeof *h + a->raw.len);
    if (!h) {
        close(nfd);
        goto err;
    }
    h->srv = srv;
    h->st = *st;
    h->fd = nfd;
    h->counted = a->counted;
    h->ip = a->ip;
    h->len = a->raw.len;
    if (a->raw.len)
        memcpy(h->data, a->raw.data, a->raw.len);
    pthread_mutex_lock(&srv->mu);
    srv->pending++;
    pthread_mutex_unlock(&srv->mu);
    uv_read_stop((uv_stream_t *)&a->tcp);
    if (srv->cfg.post(srv->cfg.ud, st->exec, handoff_task, h) != 0) {
        pthread_mutex_lock(&srv->mu);
        srv->pending--;
        pthread_cond_broadcast(&srv->cv);
        pthread_mutex_unlock(&srv->mu);
        close(nfd);
        free(h);
        goto err;
    }
    a->counted = 0; /* the count went with the connection (handoff_task) */
    acc_close(a);
    return 0;
err:
    srv->cfg.release(srv->cfg.ud, st->ref);
    return -1;
}

/* The stream a request names: lookup, or lookup_archive for a ?from=
 * request of a stream not running here. 0 and a new reference in *st. */
static int acc_lookup(ms_rtsp_server_t *srv, const ms_rtsp_target_t *t, ms_rtsp_stream_t *st)
{
    if (srv->cfg.lookup(srv->cfg.ud, t->stream, st) == 0)
        return 0;
    int64_t ms;
    if (srv->cfg.lookup_archive && srv->cfg.archive_open && ms_rtsp_archive_query(t->query, &ms))
        return srv->cfg.lookup_archive(srv->cfg.ud, t->stream, st);
    return -ENOENT;
}

/* Asks cfg.authorize about request m for t's stream (grant NULL: nothing
 * is kept on this connection); answers a refusal (401 with its challenge,
 * 403, 404) and returns 1, or 0 when allowed. */
static int acc_refused(acc_conn_t *a, const ms_rtsp_target_t *t, const ms_rtsp_msg_t *m, long cseq)
{
    ms_rtsp_server_t *srv = a->srv;
    struct sockaddr_storage peer;
    int pl = sizeof peer;
    memset(&peer, 0, sizeof peer);
    uv_tcp_getpeername(&a->tcp, (struct sockaddr *)&peer, &pl);
    char www[512] = "", extra[600] = "";
    int code = srv->cfg.authorize(srv->cfg.ud, t->stream, t->query, (const struct sockaddr *)&peer,
                                  ms_rtsp_msg_header(m, "Authorization"), m->method, m->uri, www,
                                  sizeof www, NULL);
    if (code == 200)
        return 0;
    if (code == 401 && www[0] && !strpbrk(www, "\r\n"))
        snprintf(extra, sizeof extra, "WWW-Authenticate: %s\r\n", www);
    acc_reply(a, code == 401 || code == 403 ? code : 404, cseq, extra[0] ? extra : NULL);
    return 1;
}

/* A request for a stream another server serves (cfg.redirect): 302 Moved
 * Temporarily with the Location of the same path and query there (RFC 2326
 * 11.3.3; the client opens a new connection). An OPTIONS for it gets 200
 * here: clients send OPTIONS first and only follow a redirect of DESCRIBE
 * or PLAY (GStreamer's rtspsrc; ffmpeg ignores the OPTIONS status).
 * Returns 1 when answered. */
static int acc_redirect(acc_conn_t *a, const ms_rtsp_target_t *t, const ms_rtsp_msg_t *m, int here,
                        long cseq)
{
    ms_rtsp_server_t *srv = a->srv;
    if (!srv->cfg.redirect)
        return 0;
    int is_options = strcmp(m->method, "OPTIONS") == 0;
    if (!is_options && strcmp(m->method, "DESCRIBE") != 0 && strcmp(m->method, "SETUP") != 0 &&
        strcmp(m->method, "PLAY") != 0)
        return 0;
    char base[MS_HTTP_BASE_MAX] = "", loc[2400];
    if (srv->cfg.redirect(srv->cfg.ud, t->stream, t->query, here, base, sizeof base) != 1)
        return 0;
    if (ms_rtsp_redirect_location(base, m->uri, loc, sizeof loc) < 0)
        return 0;
    /* the playback decision comes first (docs/access.md): a request the
     * stream refuses gets the refusal here, not the other server's name */
    if (srv->cfg.authorize && acc_refused(a, t, m, cseq))
        return 1;
    if (is_options) {
        acc_reply(a, 200, cseq, PUBLIC_HDR);
        return 1;
    }
    ms_buf_t b = MS_BUF_INIT;
    if (ms_rtsp_build_redirect(&b, cseq, loc) == 0) {
        MS_DEBUG(srv->ctx, "%s %s: 302 to %s", m->method, t->stream, loc);
        acc_send(a, &b);
    }
    ms_buf_free(&b);
    return 1;
}

static void acc_process(acc_conn_t *a)
{
    ms_rtsp_server_t *srv = a->srv;
    while (!a->closing && a->raw.len) {
        ms_rtsp_parser_t p;
        ms_rtsp_parser_init(&p);
        ms_rtsp_event_t ev;
        int r = ms_rtsp_parser_feed(&p, a->raw.data, a->raw.len);
        if (r == 0)
            r = ms_rtsp_parser_next(&p, &ev);
        if (r == 0) {
            ms_rtsp_parser_free(&p);
            return;
        }
        if (r < 0) {
            ms_rtsp_parser_free(&p);
            acc_reply(a, 400, -1, NULL);
            acc_close(a);
            return;
        }
        size_t used = p.off;
        if (ev.type == MS_RTSP_EV_MESSAGE && ev.msg.is_request) {
            long cseq = ms_rtsp_msg_cseq(&ev.msg);
            ms_rtsp_target_t *t = malloc(sizeof *t);
            int tr = t ? ms_rtsp_target_parse(ev.msg.uri, t) : -ENOMEM;
            ms_rtsp_stream_t st;
            int found = 0, moved = 0;
            if (tr == 0) {
                found = acc_lookup(srv, t, &st) == 0;
                moved = acc_redirect(a, t, &ev.msg, found, cseq);
                if (moved && found)
                    srv->cfg.release(srv->cfg.ud, st.ref);
            }
            if (found && !moved) {
                free(t);
                ms_rtsp_parser_free(&p);
                if (acc_handoff(a, &st) == 0)
                    return;
                acc_reply(a, 500, cseq, NULL);
                acc_close(a);
                return;
            }
            if (moved) {
                /* answered: 302, or 200 to an OPTIONS */
            } else if (strcmp(ev.msg.method, "OPTIONS") == 0 && tr == -ENOENT) {
                acc_reply(a, 200, cseq, PUBLIC_HDR);
            } else if (tr == 0 && srv->cfg.authorize && acc_refused(a, t, &ev.msg, cseq)) {
                /* an unknown name gets the answer of a refused stream
                 * (server.h authorize), so names cannot be probed */
            } else if (tr == 0 && srv->cfg.disabled && srv->cfg.disabled(srv->cfg.ud, t->stream)) {
                /* allowed, but not served: say why (docs/access.md) */
                ms_buf_t b = MS_BUF_INIT;
                ms_rtsp_build_response(&b, 503, "Stream Disabled", cseq, NULL, NULL, NULL, NULL, 0);
                acc_send(a, &b);
                ms_buf_free(&b);
            } else {
                acc_reply(a, tr == -EINVAL ? 400 : 404, cseq, NULL);
            }
            free(t);
            if (++a->nreq >= ACCEPT_MAX_REQS)
                acc_close(a);
        }
        ms_rtsp_parser_free(&p);
        /* drop the answered request (or a stray interleaved frame) */
        memmove(a->raw.data, a->raw.data + used, a->raw.len - used);
        a->raw.len -= used;
    }
}

static void acc_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    acc_conn_t *a = h->data;
    if (ms_buf_reserve(&a->raw, 4096) < 0) {
        buf->base = NULL;
        buf->len = 0;
        return;
    }
    buf->base = (char *)a->raw.data + a->raw.len;
    buf->len = a->raw.cap - a->raw.len;
}

static void acc_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    acc_conn_t *a = s->data;
    if (nread < 0) {
        acc_close(a);
        return;
    }
    a->raw.len += (size_t)nread;
    if (a->raw.len > MS_RTSP_MAX_HEADER_BLOCK + 4096) {
        acc_close(a);
        return;
    }
    acc_process(a);
}

static void acc_timeout(uv_timer_t *t)
{
    acc_close(t->data);
}

/* Counts a new connection for its address (cfg.conns_per_ip). Returns 0,
 * or -EBUSY when the address has its share already (logged, rate-limited). */
static int acc_count(acc_conn_t *a)
{
    ms_rtsp_server_t *srv = a->srv;
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (!srv->conns || uv_tcp_getpeername(&a->tcp, (struct sockaddr *)&ss, &len) != 0 ||
        ms_ip_from_sockaddr((const struct sockaddr *)&ss, &a->ip) < 0)
        return 0;
    if (srv->cfg.exempt && srv->cfg.exempt(srv->cfg.ud, (const struct sockaddr *)&ss))
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
                "refused a connection from %s: %u connections waiting from that address "
                "(%u more refusals suppressed)",
                ms_ip_format(&a->ip, ip, sizeof ip), srv->cfg.conns_per_ip, supp);
    }
    return -EBUSY;
}

static void on_connection(uv_stream_t *l, int status)
{
    ms_rtsp_server_t *srv = l->data;
    if (status < 0)
        return;
    acc_conn_t *a = calloc(1, sizeof *a);
    if (!a)
        return;
    a->srv = srv;
    uv_tcp_init(&srv->loop, &a->tcp);
    a->tcp.data = a;
    a->open_handles = 2;
    srv->accept_conns++;
    uv_timer_init(&srv->loop, &a->timer);
    a->timer.data = a;
    if (uv_accept(l, (uv_stream_t *)&a->tcp) != 0 || srv->accept_conns > ACCEPT_MAX_CONNS ||
        acc_count(a) < 0) {
        acc_close(a);
        return;
    }
    uv_timer_start(&a->timer, acc_timeout, srv->cfg.request_timeout_ms, 0);
    uv_read_start((uv_stream_t *)&a->tcp, acc_alloc, acc_read);
}

/* Accept loop: the listener and the async carry srv in data, accepted
 * connections their acc_conn_t. */
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
    /* Stop: close the listener and every connection not yet handed off. */
    uv_walk(as->loop, close_walk, as->data);
}

static void accept_main(void *arg)
{
    ms_rtsp_server_t *srv = arg;
    uv_run(&srv->loop, UV_RUN_DEFAULT);
}

ms_rtsp_server_t *ms_rtsp_server_start(const ms_rtsp_server_cfg_t *cfg, char *err, size_t errlen)
{
    if (!cfg || !cfg->lookup || !cfg->release || !cfg->post || cfg->port < 0 || cfg->port > 65535) {
        snprintf(err, errlen, "invalid configuration");
        return NULL;
    }
    ms_rtsp_server_t *srv = calloc(1, sizeof *srv);
    if (!srv) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    srv->cfg = *cfg;
    snprintf(srv->address, sizeof srv->address, "%s",
             cfg->address && cfg->address[0] ? cfg->address : "0.0.0.0");
    snprintf(srv->ctx, sizeof srv->ctx, "%s", cfg->log_ctx ? cfg->log_ctx : "[rtsp-server]");
    srv->cfg.address = srv->address;
    srv->cfg.log_ctx = srv->ctx;
    if (!srv->cfg.session_timeout_s)
        srv->cfg.session_timeout_s = 60;
    if (!srv->cfg.request_timeout_ms)
        srv->cfg.request_timeout_ms = ACCEPT_TIMEOUT_MS;
    srv->rl_limit = (ms_ratelimit_t)MS_RATELIMIT_INIT(1000);
    if (cfg->conns_per_ip &&
        !(srv->conns = ms_connlimit_new(cfg->conns_per_ip, 4 * ACCEPT_MAX_CONNS))) {
        snprintf(err, errlen, "out of memory");
        free(srv);
        return NULL;
    }
    pthread_mutex_init(&srv->mu, NULL);
    pthread_cond_init(&srv->cv, NULL);
    srv->next_udp_port = (uint16_t)(20000 + (getpid() % 1000) * 40);

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

int ms_rtsp_server_port(const ms_rtsp_server_t *s)
{
    return s->port;
}

typedef struct {
    ms_rtsp_server_t *srv;
    void *exec;
} shutdown_t;

/* Stream loop: closes the outs of this loop. */
static void shutdown_task(void *arg)
{
    shutdown_t *sd = arg;
    ms_rtsp_server_t *srv = sd->srv;
    for (;;) {
        srv_out_t *o = NULL;
        pthread_mutex_lock(&srv->mu);
        for (srv_out_t *x = srv->outs; x; x = x->next)
            if (x->st.exec == sd->exec && !x->closing) {
                o = x;
                break;
            }
        pthread_mutex_unlock(&srv->mu);
        if (!o)
            break;
        ms_rtsp_srv_out_shutdown(o);
    }
    free(sd);
}

typedef struct {
    ms_rtsp_server_t *srv;
    void *exec;
    uint64_t id;
} kick_t;

/* Stream loop: closes the kicked connection (srv->pending keeps srv alive
 * until this ran). */
static void kick_task(void *arg)
{
    kick_t *k = arg;
    ms_rtsp_server_t *srv = k->srv;
    srv_conn_t *c = ms_rtsp_srv_conn_find(srv, k->exec, k->id);
    if (c)
        ms_rtsp_srv_conn_close(c, "session ended by an administrator");
    free(k);
    pthread_mutex_lock(&srv->mu);
    srv->pending--;
    pthread_cond_broadcast(&srv->cv);
    pthread_mutex_unlock(&srv->mu);
}

int ms_rtsp_server_kick(ms_rtsp_server_t *srv, void *exec, uint64_t conn_id)
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

static int wait_for(ms_rtsp_server_t *srv, int outs)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += STOP_WAIT_S;
    pthread_mutex_lock(&srv->mu);
    int r = 0;
    while (outs ? srv->nouts > 0 : srv->pending > 0)
        if (pthread_cond_timedwait(&srv->cv, &srv->mu, &dl) == ETIMEDOUT) {
            r = -ETIMEDOUT;
            break;
        }
    pthread_mutex_unlock(&srv->mu);
    return r;
}

void ms_rtsp_server_stop(ms_rtsp_server_t *srv)
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
    /* One shutdown task per distinct loop. */
    void *execs[256];
    int nexec = 0;
    pthread_mutex_lock(&srv->mu);
    for (srv_out_t *o = srv->outs; o; o = o->next) {
        int seen = 0;
        for (int i = 0; i < nexec; i++)
            seen |= execs[i] == o->st.exec;
        if (!seen && nexec < 256)
            execs[nexec++] = o->st.exec;
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
        /* Something still references srv on a stream loop: leak it rather
         * than free memory in use. */
        MS_WARN(srv->ctx, "connections still closing at stop");
        return;
    }
    uv_loop_close(&srv->loop);
    pthread_mutex_destroy(&srv->mu);
    pthread_cond_destroy(&srv->cv);
    ms_connlimit_free(srv->conns);
    MS_INFO(srv->ctx, "stopped");
    free(srv);
}
