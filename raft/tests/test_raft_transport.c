/* The authenticated raft transport (raft/transport.h) driven directly, as
 * libraft drives it: two transports with the same key connect and the
 * stream carries bytes from the first byte after the handshake; a wrong key
 * fails the connect and never reaches the accept callback; a silent
 * client is dropped after the handshake timeout; a silent peer fails the
 * connect after the connect timeout; close() cancels pending connects (their
 * callbacks fire with RAFT_CANCELED) and handshakes and frees everything
 * (run under ASan for the leaks). Every wait is bounded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "raft/transport.h"
#include "util/kdf.h"

static uv_loop_t loop;
static uint8_t key[MS_RHS_KEY_LEN], other[MS_RHS_KEY_LEN];

typedef struct {
    struct raft_uv_transport t;
    char addr[64];
    int accepted, closed;
    raft_id peer_id;
    char peer_addr[64];
    uv_stream_t *stream;
} side_t;

typedef struct {
    struct raft_uv_connect req;
    int fired, status;
    uv_stream_t *stream;
} conn_t;

static int run_until(int (*pred)(void *), void *arg, uint64_t ms)
{
    uint64_t end = uv_now(&loop) + ms;
    while (!pred(arg)) {
        if (uv_now(&loop) > end)
            return 0;
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(1000);
        uv_update_time(&loop);
    }
    return 1;
}

static int flag_set(void *p)
{
    return *(int *)p != 0;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t len = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &len);
    close(fd);
    return ntohs(sa.sin_port);
}

static void accept_cb(struct raft_uv_transport *t, raft_id id, const char *address,
                      uv_stream_t *stream)
{
    side_t *s = (side_t *)t;
    s->accepted++;
    s->peer_id = id;
    snprintf(s->peer_addr, sizeof s->peer_addr, "%s", address);
    s->stream = stream;
}

static void connect_cb(struct raft_uv_connect *req, uv_stream_t *stream, int status)
{
    conn_t *c = (conn_t *)req;
    c->fired++;
    c->status = status;
    c->stream = stream;
}

static void closed_cb(struct raft_uv_transport *t)
{
    ((side_t *)t)->closed = 1;
}

static void stream_freed(uv_handle_t *h)
{
    raft_free(h);
}

static void side_start(side_t *s, const uint8_t *k, raft_id id)
{
    memset(s, 0, sizeof *s);
    snprintf(s->addr, sizeof s->addr, "127.0.0.1:%d", free_port());
    s->t.version = 1;
    assert_int_equal(ms_raft_transport_init(&s->t, &loop, k, NULL), 0);
    assert_int_equal(s->t.init(&s->t, id, s->addr), 0);
    assert_int_equal(s->t.listen(&s->t, accept_cb), 0);
}

static void side_close(side_t *s)
{
    if (s->stream)
        uv_close((uv_handle_t *)s->stream, stream_freed);
    s->stream = NULL;
    s->t.close(&s->t, closed_cb);
    assert_true(run_until(flag_set, &s->closed, 5000));
    ms_raft_transport_free(&s->t);
}

static int setup(void **st)
{
    (void)st;
    uv_loop_init(&loop);
    if (ms_kdf_derive("cluster secret", MS_KDF_RAFT, key) < 0 ||
        ms_kdf_derive("another secret", MS_KDF_RAFT, other) < 0)
        return -1;
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    uv_run(&loop, UV_RUN_NOWAIT);
    return uv_loop_close(&loop) == 0 ? 0 : -1;
}

typedef struct {
    uv_stream_t *s;
    char buf[64];
    size_t got;
} reader_t;

static void rd_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
    reader_t *r = h->data;
    (void)sz;
    *b = uv_buf_init(r->buf + r->got, (unsigned)(sizeof r->buf - r->got));
}

static void rd_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    reader_t *r = s->data;
    (void)b;
    if (n > 0)
        r->got += (size_t)n;
}

static int got5(void *p)
{
    return ((reader_t *)p)->got >= 5;
}

static void write_done(uv_write_t *w, int status)
{
    (void)status;
    free(w);
}

static void test_same_key_connects(void **st)
{
    (void)st;
    side_t a, b;
    side_start(&a, key, 11);
    side_start(&b, key, 22);
    conn_t c = {0};
    assert_int_equal(a.t.connect(&a.t, &c.req, 22, b.addr, connect_cb), 0);
    assert_true(run_until(flag_set, &c.fired, 5000));
    assert_int_equal(c.status, 0);
    assert_non_null(c.stream);
    assert_true(run_until(flag_set, &b.accepted, 5000));
    assert_int_equal(b.peer_id, 11);
    assert_string_equal(b.peer_addr, a.addr);
    /* the first bytes libraft writes are the first it reads on the other side */
    uv_write_t *w = malloc(sizeof *w);
    uv_buf_t buf = uv_buf_init((char *)"hello", 5);
    assert_int_equal(uv_write(w, c.stream, &buf, 1, write_done), 0);
    reader_t r = {.s = b.stream};
    b.stream->data = &r;
    assert_int_equal(uv_read_start(b.stream, rd_alloc, rd_cb), 0);
    assert_true(run_until(got5, &r, 5000));
    assert_int_equal(r.got, 5);
    assert_memory_equal(r.buf, "hello", 5);
    uv_read_stop(b.stream);
    uv_close((uv_handle_t *)c.stream, stream_freed);
    side_close(&a);
    side_close(&b);
}

static void test_wrong_key_refused(void **st)
{
    (void)st;
    side_t a, b;
    side_start(&a, other, 11);
    side_start(&b, key, 22);
    conn_t c = {0};
    assert_int_equal(a.t.connect(&a.t, &c.req, 22, b.addr, connect_cb), 0);
    assert_true(run_until(flag_set, &c.fired, 5000));
    assert_int_equal(c.status, RAFT_NOCONNECTION);
    assert_null(c.stream);
    /* and the wrong target id with the right key */
    side_t d;
    side_start(&d, key, 33);
    conn_t c2 = {0};
    assert_int_equal(d.t.connect(&d.t, &c2.req, 99, b.addr, connect_cb), 0);
    assert_true(run_until(flag_set, &c2.fired, 5000));
    assert_int_equal(c2.status, RAFT_NOCONNECTION);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(b.accepted, 0);
    side_close(&a);
    side_close(&b);
    side_close(&d);
}

static int fd_closed(void *p)
{
    char ch;
    struct pollfd pf = {.fd = *(int *)p, .events = POLLIN};
    return poll(&pf, 1, 0) == 1 && recv(*(int *)p, &ch, 1, MSG_DONTWAIT) == 0;
}

static int raw_connect(const char *addr)
{
    int port = atoi(strrchr(addr, ':') + 1);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)port);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

/* A client that says nothing goes after the handshake timeout, one that
 * sends libraft's own preamble at once; close() with a handshake under way
 * frees it. */
static void test_silent_and_garbage_clients(void **st)
{
    (void)st;
    side_t b;
    side_start(&b, key, 22);
    int silent = raw_connect(b.addr), garbage = raw_connect(b.addr);
    uint8_t pre[56] = {1, 0, 0, 0, 0, 0, 0, 0, 42};
    assert_int_equal(send(garbage, pre, sizeof pre, 0), (ssize_t)sizeof pre);
    uint64_t t0 = uv_now(&loop);
    assert_true(run_until(fd_closed, &garbage, 1000));
    assert_true(uv_now(&loop) - t0 < 1000);
    assert_true(run_until(fd_closed, &silent, MS_RAFT_HANDSHAKE_TIMEOUT_MS + 1000));
    assert_true(uv_now(&loop) - t0 >= MS_RAFT_HANDSHAKE_TIMEOUT_MS - 50);
    close(silent);
    close(garbage);
    int pending = raw_connect(b.addr);
    uv_run(&loop, UV_RUN_NOWAIT);
    side_close(&b);
    assert_int_equal(b.accepted, 0);
    close(pending);
}

/* A peer whose accept queue is full answers no SYN: the connect fails after
 * the connect timeout; close() while another such connect is pending fires
 * its callback with RAFT_CANCELED. */
static void test_connect_timeout_and_cancel(void **st)
{
    (void)st;
    int port = free_port(), fds[3];
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)port);
    fds[0] = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(bind(fds[0], (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(fds[0], 0), 0);
    for (int i = 1; i < 3; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        (void)connect(fds[i], (struct sockaddr *)&sa, sizeof sa);
    }
    usleep(100 * 1000);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    side_t a;
    side_start(&a, key, 11);
    conn_t c = {0}, c2 = {0};
    uint64_t t0 = uv_now(&loop);
    assert_int_equal(a.t.connect(&a.t, &c.req, 22, addr, connect_cb), 0);
    assert_true(run_until(flag_set, &c.fired, MS_RAFT_CONNECT_TIMEOUT_MS + 2000));
    uint64_t took = uv_now(&loop) - t0;
    printf("connect to a silent peer failed after %llu ms\n", (unsigned long long)took);
    assert_int_equal(c.status, RAFT_NOCONNECTION);
    /* the kernel may also have answered (no silent peer here): then fast */
    if (took >= 200)
        assert_true(took >= MS_RAFT_CONNECT_TIMEOUT_MS - 50);
    assert_int_equal(a.t.connect(&a.t, &c2.req, 22, addr, connect_cb), 0);
    /* and one that needs a name lookup, cancelled as well */
    conn_t c3 = {0};
    assert_int_equal(a.t.connect(&a.t, &c3.req, 23, "localhost:1", connect_cb), 0);
    side_close(&a);
    assert_int_equal(c2.fired, 1);
    assert_int_equal(c2.status, RAFT_CANCELED);
    assert_int_equal(c3.fired, 1);
    assert_int_equal(c3.status, RAFT_CANCELED);
    for (int i = 0; i < 3; i++)
        close(fds[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_key_connects),
        cmocka_unit_test(test_wrong_key_refused),
        cmocka_unit_test(test_silent_and_garbage_clients),
        cmocka_unit_test(test_connect_timeout_and_cancel),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
