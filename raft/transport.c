/* The authenticated raft transport (see transport.h). What libraft needs
 * from a raft_uv_transport (raft/uv.h): the accept callback gets the
 * connecting server's id and address and a uv_stream_t it owns (it
 * uv_close()s it and releases it with raft_free, so streams are allocated
 * with raft_malloc); a connect request's callback fires exactly once, with
 * a stream or an error, RAFT_CANCELED when the transport closes first; no
 * accept callback after close(); close's callback only once nothing is
 * left running. Handshake bytes are read in exact lengths and reading stops
 * before the stream is handed over, so libraft's first read starts at the
 * first byte after the handshake. */
#include "raft/transport.h"

#include <assert.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "util/log.h"

#define CTX "[raft] [transport]"

enum {
    P_CONNECTING, /* outgoing: resolving or TCP connect */
    P_CHALLENGE,  /* outgoing: HELLO sent, reading CHALLENGE */
    P_HELLO_HDR,  /* incoming: reading HELLO's fixed header */
    P_HELLO_ADDR, /* incoming: reading HELLO's address */
    P_PROOF,      /* incoming: CHALLENGE sent, reading PROOF */
    P_VERIFIED    /* peer proved itself: hand over once our write is done */
};

typedef struct tconn tconn_t;

typedef struct {
    struct raft_uv_transport *t;
    uv_loop_t *loop;
    uint8_t key[MS_RHS_KEY_LEN];
    raft_id id;
    char *address; /* advertised, from init */
    char *bind;
    raft_uv_accept_cb accept_cb;
    uv_tcp_t listener;
    int listener_open; /* initialised and not yet closed */
    tconn_t *conns;    /* connections not yet handed over nor aborted */
    unsigned alive;    /* tconn_t allocated (listed or closing) */
    unsigned incoming; /* of the listed, incoming handshakes */
    int closing;
    raft_uv_transport_close_cb close_cb;
    ms_ratelimit_t rl;
} impl_t;

struct tconn {
    impl_t *m;
    tconn_t *prev, *next;
    int listed, outgoing, phase, aborting, handed;
    int writes, writing; /* writes issued (at most 2), of those not yet done */
    int refs;            /* tcp handle, timer handle, getaddrinfo in flight */
    int status;
    struct raft_uv_connect *req;
    raft_uv_connect_cb cb;
    raft_id peer_id;
    char where[MS_RHS_ADDR_MAX + 1]; /* peer for logs: dialled address or ip:port */
    uv_tcp_t *tcp;                   /* raft_malloc'ed; NULL once handed over */
    uv_timer_t timer;
    uv_getaddrinfo_t gai;
    int resolving;
    uv_connect_t creq;
    uv_write_t wreq[2]; /* one per message we send: HELLO+PROOF or CHALLENGE */
    uint8_t out[2][MS_RHS_HELLO_MAX];
    uint8_t in[MS_RHS_HELLO_MAX];
    size_t need, got;
    ms_rhs_t hs;
};

static impl_t *impl_of(struct raft_uv_transport *t)
{
    return t->impl;
}

/* ---- helpers -------------------------------------------------------- */

/* "host:port" or "[v6]:port" into host and port. 0 or -EINVAL. */
static int split_hostport(const char *s, char *host, size_t cap, int *port)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s)
        return -EINVAL;
    const char *h = s;
    size_t hl = (size_t)(colon - s);
    if (h[0] == '[') {
        if (hl < 3 || h[hl - 1] != ']')
            return -EINVAL;
        h++;
        hl -= 2;
    }
    if (hl == 0 || hl >= cap)
        return -EINVAL;
    char *end = NULL;
    long p = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || p < 1 || p > 65535)
        return -EINVAL;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (int)p;
    return 0;
}

/* Numeric address into ss. 0 or -EINVAL (not numeric). */
static int numeric_addr(const char *host, int port, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0)
        return 0;
    if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0)
        return 0;
    return -EINVAL;
}

static void peer_name(uv_tcp_t *tcp, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    char ip[64] = "?";
    int port = 0;
    if (uv_tcp_getpeername(tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET) {
            uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof ip);
            port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof ip);
            port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        }
    }
    snprintf(out, cap, ss.ss_family == AF_INET6 ? "[%s]:%d" : "%s:%d", ip, port);
}

static void refuse_log(impl_t *m, tconn_t *c, int err)
{
    uint32_t sup = 0;
    char more[64] = "";
    if (!ms_ratelimit_ok(&m->rl, &sup))
        return;
    if (sup)
        snprintf(more, sizeof more, " (%u similar lines suppressed)", sup);
    if (c->outgoing)
        MS_WARN(CTX,
                "handshake with %s (id %llu) failed: %s (does it hold this cluster's secret?)%s",
                c->where, (unsigned long long)c->peer_id, ms_rhs_strerror(err), more);
    else
        MS_WARN(CTX, "refused raft connection from %s: %s%s", c->where, ms_rhs_strerror(err), more);
}

static void maybe_fire_close(impl_t *m)
{
    if (m->closing && !m->listener_open && m->alive == 0 && m->close_cb) {
        raft_uv_transport_close_cb cb = m->close_cb;
        m->close_cb = NULL;
        cb(m->t);
    }
}

static void unlink_conn(tconn_t *c)
{
    impl_t *m = c->m;
    if (!c->listed)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        m->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->listed = 0;
    if (!c->outgoing)
        m->incoming--;
}

/* The last reference went: free c and, for an outgoing request that was
 * not handed over, fire its callback with the failure. */
static void conn_release(tconn_t *c)
{
    if (c->refs > 0)
        return;
    impl_t *m = c->m;
    struct raft_uv_connect *req = c->outgoing && !c->handed ? c->req : NULL;
    raft_uv_connect_cb cb = c->cb;
    int status = c->status ? c->status : RAFT_NOCONNECTION;
    ms_rhs_clear(&c->hs);
    free(c);
    m->alive--;
    if (req)
        cb(req, NULL, m->closing ? RAFT_CANCELED : status);
    maybe_fire_close(m);
}

static void tcp_closed_cb(uv_handle_t *h)
{
    tconn_t *c = h->data;
    raft_free(h);
    c->tcp = NULL;
    c->refs--;
    conn_release(c);
}

static void timer_closed_cb(uv_handle_t *h)
{
    tconn_t *c = h->data;
    c->refs--;
    conn_release(c);
}

/* Ends a connection that did not make it: log (err != 0), close its
 * handles, cancel the lookup; the request's callback fires once all is
 * closed. Idempotent. */
static void conn_abort(tconn_t *c, int status, int err)
{
    if (c->aborting)
        return;
    c->aborting = 1;
    c->status = status;
    unlink_conn(c);
    if (err)
        refuse_log(c->m, c, err);
    uv_close((uv_handle_t *)&c->timer, timer_closed_cb);
    if (c->resolving)
        uv_cancel((uv_req_t *)&c->gai); /* its callback still comes */
    if (c->tcp)
        uv_close((uv_handle_t *)c->tcp, tcp_closed_cb);
}

/* The peer proved itself and our last write is done: give the stream to
 * libraft. c lives on until its timer is closed. */
static void conn_handover(tconn_t *c)
{
    impl_t *m = c->m;
    uv_tcp_t *tcp = c->tcp;
    assert(c->phase == P_VERIFIED && c->writing == 0 && !c->aborting);
    unlink_conn(c);
    c->handed = 1;
    c->aborting = 1; /* nothing else happens to c but its timer's close */
    c->tcp = NULL;
    c->refs--;
    tcp->data = NULL;
    uv_close((uv_handle_t *)&c->timer, timer_closed_cb);
    if (c->outgoing)
        c->cb(c->req, (uv_stream_t *)tcp, 0);
    else
        m->accept_cb(m->t, c->hs.peer_id, c->hs.peer_address, (uv_stream_t *)tcp);
}

static void timer_cb(uv_timer_t *t)
{
    tconn_t *c = t->data;
    /* a TCP connect that did not complete is a peer that is down: no log */
    conn_abort(c, RAFT_NOCONNECTION, c->phase == P_CONNECTING ? 0 : -ETIMEDOUT);
}

static void write_cb(uv_write_t *w, int status)
{
    tconn_t *c = w->data;
    c->writing--;
    if (c->aborting)
        return;
    if (status < 0) {
        conn_abort(c, RAFT_NOCONNECTION, 0);
        return;
    }
    if (c->phase == P_VERIFIED && c->writing == 0)
        conn_handover(c);
}

/* The buffer of the next write: each message has its own, untouched until
 * its callback (libuv keeps pointing at it). */
static uint8_t *next_out(tconn_t *c)
{
    assert(c->writes < 2);
    return c->out[c->writes];
}

/* Sends len bytes written to next_out(c). */
static int conn_write(tconn_t *c, size_t len)
{
    int i = c->writes;
    uv_buf_t b = uv_buf_init((char *)c->out[i], (unsigned)len);
    c->wreq[i].data = c;
    int rc = uv_write(&c->wreq[i], (uv_stream_t *)c->tcp, &b, 1, write_cb);
    if (rc == 0) {
        c->writes++;
        c->writing++;
    }
    return rc;
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    tconn_t *c = h->data;
    (void)suggested;
    assert(c->got < c->need && c->need <= sizeof c->in);
    *buf = uv_buf_init((char *)c->in + c->got, (unsigned)(c->need - c->got));
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static int conn_read(tconn_t *c, size_t need)
{
    c->need = need;
    c->got = 0;
    return uv_read_start((uv_stream_t *)c->tcp, alloc_cb, read_cb);
}

/* A whole message is in c->in. */
static void conn_process(tconn_t *c)
{
    impl_t *m = c->m;
    uint8_t nonce[MS_RHS_NONCE_LEN];
    int rc;
    switch (c->phase) {
    case P_CHALLENGE:
        rc = ms_rhs_connect_finish(&c->hs, c->in, c->got, next_out(c));
        if (rc < 0) {
            conn_abort(c, RAFT_NOCONNECTION, rc);
            return;
        }
        c->phase = P_VERIFIED;
        if (conn_write(c, MS_RHS_PROOF_LEN) < 0)
            conn_abort(c, RAFT_NOCONNECTION, 0);
        return; /* handed over when the write is done */
    case P_HELLO_HDR:
        rc = ms_rhs_hello_addr_len(c->in, c->got);
        if (rc < 0) {
            conn_abort(c, RAFT_NOCONNECTION, rc);
            return;
        }
        c->phase = P_HELLO_ADDR;
        c->need = MS_RHS_HELLO_HDR + (size_t)rc; /* keep the header in c->in */
        if (uv_read_start((uv_stream_t *)c->tcp, alloc_cb, read_cb) < 0)
            conn_abort(c, RAFT_NOCONNECTION, 0);
        return;
    case P_HELLO_ADDR:
        if (RAND_bytes(nonce, sizeof nonce) != 1) {
            conn_abort(c, RAFT_NOCONNECTION, 0);
            return;
        }
        rc = ms_rhs_accept_hello(&c->hs, m->key, m->id, c->in, c->got, nonce, next_out(c));
        if (rc < 0) {
            conn_abort(c, RAFT_NOCONNECTION, rc);
            return;
        }
        c->phase = P_PROOF;
        if (conn_write(c, MS_RHS_CHALLENGE_LEN) < 0 || conn_read(c, MS_RHS_PROOF_LEN) < 0)
            conn_abort(c, RAFT_NOCONNECTION, 0);
        return;
    case P_PROOF:
        rc = ms_rhs_accept_finish(&c->hs, c->in, c->got);
        if (rc < 0) {
            conn_abort(c, RAFT_NOCONNECTION, rc);
            return;
        }
        c->phase = P_VERIFIED;
        if (!c->writing)
            conn_handover(c);
        return;
    default:
        assert(0);
    }
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    tconn_t *c = s->data;
    (void)buf;
    if (c->aborting || nread == 0)
        return;
    if (nread < 0) {
        /* closed mid-handshake: a scanner, or a peer that refused us */
        conn_abort(c, RAFT_NOCONNECTION, -ECONNRESET);
        return;
    }
    c->got += (size_t)nread;
    assert(c->got <= c->need);
    if (c->got < c->need)
        return;
    uv_read_stop(s);
    conn_process(c);
}

/* ---- connect -------------------------------------------------------- */

static void connect_cb(uv_connect_t *req, int status)
{
    tconn_t *c = req->data;
    impl_t *m = c->m;
    uint8_t nonce[MS_RHS_NONCE_LEN];
    size_t len = 0;
    if (c->aborting)
        return;
    if (status < 0) {
        conn_abort(c, RAFT_NOCONNECTION, 0);
        return;
    }
    uv_os_fd_t fd;
    int tmo = MS_RAFT_STALL_TIMEOUT_MS;
    if (uv_fileno((uv_handle_t *)c->tcp, &fd) == 0)
        (void)setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &tmo, sizeof tmo);
    if (RAND_bytes(nonce, sizeof nonce) != 1 ||
        ms_rhs_connect_start(&c->hs, m->key, m->id, m->address, c->peer_id, nonce, next_out(c),
                             &len) < 0) {
        conn_abort(c, RAFT_NOCONNECTION, 0);
        return;
    }
    c->phase = P_CHALLENGE;
    uv_timer_start(&c->timer, timer_cb, MS_RAFT_HANDSHAKE_TIMEOUT_MS, 0);
    if (conn_write(c, len) < 0 || conn_read(c, MS_RHS_CHALLENGE_LEN) < 0)
        conn_abort(c, RAFT_NOCONNECTION, 0);
}

static void connect_to(tconn_t *c, const struct sockaddr *sa)
{
    c->creq.data = c;
    if (uv_tcp_connect(&c->creq, c->tcp, sa, connect_cb) < 0)
        conn_abort(c, RAFT_NOCONNECTION, 0);
}

static void gai_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    tconn_t *c = req->data;
    c->resolving = 0;
    c->refs--;
    if (c->aborting) {
        uv_freeaddrinfo(res);
        conn_release(c);
        return;
    }
    if (status < 0 || !res)
        conn_abort(c, RAFT_NOCONNECTION, 0);
    else
        connect_to(c, res->ai_addr);
    uv_freeaddrinfo(res);
}

/* Initialises a new connection's TCP handle and timer on the transport's
 * loop, with one reference for each handle, and lists it (every connection
 * is cancelled by close()). Loop thread. */
static void conn_attach(impl_t *m, tconn_t *c, uv_tcp_t *tcp)
{
    uv_tcp_init(m->loop, tcp);
    tcp->data = c;
    c->tcp = tcp;
    uv_timer_init(m->loop, &c->timer);
    c->timer.data = c;
    c->refs = 2;
    m->alive++;
    c->next = m->conns;
    if (m->conns)
        m->conns->prev = c;
    m->conns = c;
    c->listed = 1;
}

static int t_connect(struct raft_uv_transport *t, struct raft_uv_connect *req, raft_id id,
                     const char *address, raft_uv_connect_cb cb)
{
    impl_t *m = impl_of(t);
    char host[MS_RHS_ADDR_MAX + 1], port_s[8];
    int port = 0;
    struct sockaddr_storage ss;
    assert(!m->closing && req && cb);
    if (!address || strlen(address) > MS_RHS_ADDR_MAX ||
        split_hostport(address, host, sizeof host, &port) < 0)
        return RAFT_NOCONNECTION;
    tconn_t *c = calloc(1, sizeof *c);
    uv_tcp_t *tcp = raft_malloc(sizeof *tcp);
    if (!c || !tcp) {
        free(c);
        raft_free(tcp);
        return RAFT_NOMEM;
    }
    c->m = m;
    c->outgoing = 1;
    c->phase = P_CONNECTING;
    c->req = req;
    c->cb = cb;
    c->peer_id = id;
    snprintf(c->where, sizeof c->where, "%s", address);
    conn_attach(m, c, tcp);
    uv_timer_start(&c->timer, timer_cb, MS_RAFT_CONNECT_TIMEOUT_MS, 0);
    if (numeric_addr(host, port, &ss) == 0) {
        connect_to(c, (struct sockaddr *)&ss);
        return 0;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    snprintf(port_s, sizeof port_s, "%d", port);
    c->gai.data = c;
    if (uv_getaddrinfo(m->loop, &c->gai, gai_cb, host, port_s, &hints) < 0) {
        conn_abort(c, RAFT_NOCONNECTION, 0);
        return 0; /* the callback fires once the handles are closed */
    }
    c->resolving = 1;
    c->refs++;
    return 0;
}

/* ---- listen --------------------------------------------------------- */

static void listen_cb(uv_stream_t *server, int status)
{
    impl_t *m = server->data;
    if (status < 0 || m->closing)
        return;
    tconn_t *c = calloc(1, sizeof *c);
    uv_tcp_t *tcp = raft_malloc(sizeof *tcp);
    if (!c || !tcp) {
        free(c);
        raft_free(tcp);
        return; /* the connection waits in the backlog */
    }
    c->m = m;
    c->phase = P_HELLO_HDR;
    conn_attach(m, c, tcp);
    m->incoming++;
    if (uv_accept(server, (uv_stream_t *)tcp) < 0) {
        conn_abort(c, RAFT_NOCONNECTION, 0);
        return;
    }
    peer_name(tcp, c->where, sizeof c->where);
    if (m->incoming > MS_RAFT_HANDSHAKES_MAX) {
        uint32_t sup = 0;
        if (ms_ratelimit_ok(&m->rl, &sup))
            MS_WARN(CTX,
                    "refused raft connection from %s: %d handshakes already under way (%u "
                    "similar lines suppressed)",
                    c->where, MS_RAFT_HANDSHAKES_MAX, sup);
        conn_abort(c, RAFT_NOCONNECTION, 0);
        return;
    }
    uv_timer_start(&c->timer, timer_cb, MS_RAFT_HANDSHAKE_TIMEOUT_MS, 0);
    if (conn_read(c, MS_RHS_HELLO_HDR) < 0)
        conn_abort(c, RAFT_NOCONNECTION, 0);
}

static void listener_closed_cb(uv_handle_t *h)
{
    impl_t *m = h->data;
    m->listener_open = 0;
    maybe_fire_close(m);
}

static int t_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
    impl_t *m = impl_of(t);
    const char *where = m->bind ? m->bind : m->address;
    char host[MS_RHS_ADDR_MAX + 1];
    int port = 0;
    struct sockaddr_storage ss;
    assert(!m->listener_open && !m->closing);
    m->accept_cb = cb;
    if (!where || split_hostport(where, host, sizeof host, &port) < 0) {
        snprintf(t->errmsg, sizeof t->errmsg, "bad listen address %s", where ? where : "(none)");
        return RAFT_INVALID;
    }
    if (numeric_addr(host, port, &ss) < 0) {
        struct addrinfo hints = {.ai_flags = AI_PASSIVE, .ai_socktype = SOCK_STREAM}, *res = NULL;
        char port_s[8];
        snprintf(port_s, sizeof port_s, "%d", port);
        if (getaddrinfo(host, port_s, &hints, &res) != 0 || !res) {
            snprintf(t->errmsg, sizeof t->errmsg, "cannot resolve %s", where);
            return RAFT_IOERR;
        }
        memcpy(&ss, res->ai_addr, res->ai_addrlen);
        freeaddrinfo(res);
    }
    uv_tcp_init(m->loop, &m->listener);
    m->listener.data = m;
    m->listener_open = 1;
    int rc = uv_tcp_bind(&m->listener, (struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&m->listener, 64, listen_cb);
    if (rc < 0) {
        snprintf(t->errmsg, sizeof t->errmsg, "listen on %s: %s", where, uv_strerror(rc));
        uv_close((uv_handle_t *)&m->listener, listener_closed_cb);
        return RAFT_IOERR;
    }
    return 0;
}

/* ---- init / close --------------------------------------------------- */

static int t_init(struct raft_uv_transport *t, raft_id id, const char *address)
{
    impl_t *m = impl_of(t);
    if (!id || !address || !address[0] || strlen(address) > MS_RHS_ADDR_MAX)
        return RAFT_INVALID;
    char *a = strdup(address);
    if (!a)
        return RAFT_NOMEM;
    free(m->address);
    m->address = a;
    m->id = id;
    return 0;
}

static void t_close(struct raft_uv_transport *t, raft_uv_transport_close_cb cb)
{
    impl_t *m = impl_of(t);
    assert(!m->closing);
    m->closing = 1;
    m->close_cb = cb;
    if (m->listener_open && !uv_is_closing((uv_handle_t *)&m->listener))
        uv_close((uv_handle_t *)&m->listener, listener_closed_cb);
    while (m->conns)
        conn_abort(m->conns, RAFT_CANCELED, 0);
    maybe_fire_close(m);
}

int ms_raft_transport_init(struct raft_uv_transport *t, uv_loop_t *loop,
                           const uint8_t key[MS_RHS_KEY_LEN], const char *bind)
{
    assert(t && loop && key);
    impl_t *m = calloc(1, sizeof *m);
    if (!m)
        return -ENOMEM;
    if (bind && !(m->bind = strdup(bind))) {
        free(m);
        return -ENOMEM;
    }
    m->t = t;
    m->loop = loop;
    memcpy(m->key, key, MS_RHS_KEY_LEN);
    m->rl = (ms_ratelimit_t)MS_RATELIMIT_INIT(1000);
    t->impl = m;
    t->init = t_init;
    t->listen = t_listen;
    t->connect = t_connect;
    t->close = t_close;
    return 0;
}

void ms_raft_transport_free(struct raft_uv_transport *t)
{
    impl_t *m = t ? impl_of(t) : NULL;
    if (!m)
        return;
    assert(m->alive == 0 && !m->listener_open);
    OPENSSL_cleanse(m->key, sizeof m->key);
    free(m->address);
    free(m->bind);
    free(m);
    t->impl = NULL;
}
