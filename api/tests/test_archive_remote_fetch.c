/* Cross-server archive playlists, node part (api/archive_remote.c,
 * ms_archive_remote_splice): the pieces another server published
 * (node/archive_view.h) are fetched from a stand-in server on loopback
 * that answers canned HTTP/1.1 (RFC 9112) responses: the request it gets,
 * the spliced playlist, a server that answers 404 or never answers (the
 * budget of MS_ARCH_REMOTE_TIMEOUT_MS, X-Archive-Missing). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "api/archive_remote.h"
#include "node/archive_view.h"
#include "util/clock.h"

#define T0 1700000000000LL /* 2023-11-14T22:13:20.000Z */

/* ---- a one-request stand-in server ------------------------------------ */

typedef struct {
    int lfd, port;
    int mode; /* 0: answer body with 200, 1: 404, 2: accept and say nothing */
    const char *body;
    char request[2048];
    pthread_t th;
} peer_t;

static void *peer_run(void *arg)
{
    peer_t *p = arg;
    struct pollfd pf = {.fd = p->lfd, .events = POLLIN};
    if (poll(&pf, 1, 5000) != 1)
        return NULL;
    int fd = accept(p->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    size_t n = 0;
    for (int i = 0; i < 100 && n < sizeof p->request - 1 && !strstr(p->request, "\r\n\r\n"); i++) {
        struct pollfd q = {.fd = fd, .events = POLLIN};
        if (poll(&q, 1, 2000) != 1)
            break;
        ssize_t k = recv(fd, p->request + n, sizeof p->request - 1 - n, 0);
        if (k <= 0)
            break;
        n += (size_t)k;
        p->request[n] = '\0';
    }
    if (p->mode == 2) {
        struct pollfd q = {.fd = fd, .events = POLLIN};
        poll(&q, 1, 4000); /* until the client gives up and closes */
    } else {
        char head[256];
        const char *body = p->mode == 1 ? "{\"error\":\"nothing recorded\"}" : p->body;
        int hn = snprintf(head, sizeof head,
                          "HTTP/1.1 %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                          p->mode == 1 ? "404 Not Found" : "200 OK", strlen(body));
        send(fd, head, (size_t)hn, MSG_NOSIGNAL);
        send(fd, body, strlen(body), MSG_NOSIGNAL);
    }
    close(fd);
    return NULL;
}

static void peer_start(peer_t *p, int mode, const char *body)
{
    memset(p, 0, sizeof *p);
    p->mode = mode;
    p->body = body;
    p->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(p->lfd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(p->lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(p->lfd, 4), 0);
    socklen_t al = sizeof a;
    assert_int_equal(getsockname(p->lfd, (struct sockaddr *)&a, &al), 0);
    p->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&p->th, NULL, peer_run, p), 0);
}

static void peer_stop(peer_t *p)
{
    pthread_join(p->th, NULL);
    close(p->lfd);
}

/* ---- the archives --------------------------------------------------------- */

static void mk_chunk(ms_dvr_chunk_t *c, ms_dvr_frag_t *f, int64_t id, int64_t start, size_t nf)
{
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < nf; i++) {
        f[i].t_ms = start + (int64_t)i * 1000;
        f[i].dur_ms = 1000;
        f[i].key = i % 2 == 0;
        f[i].off = 700 + i * 100;
        f[i].size = 100;
    }
    c->id = id;
    c->start_ms = start;
    c->end_ms = start + (int64_t)nf * 1000;
    c->init_len = 700;
    c->nfrags = nf;
    c->frags = f;
}

/* The other server's archive: 8 s from T0 + 10 s, as its renderer writes
 * it for the sub-window it is asked (token in the URIs). */
static char *remote_playlist(void)
{
    static ms_dvr_chunk_t c[2];
    static ms_dvr_frag_t f0[4], f1[4];
    mk_chunk(&c[0], f0, 7, T0 + 10000, 4);
    mk_chunk(&c[1], f1, 8, T0 + 14000, 4);
    ms_dvr_pl_opts_t o = {T0 + 10000, 10000, 0, 2000, 4000, "?token=abc"};
    ms_buf_t b = MS_BUF_INIT;
    assert_true(ms_dvr_playlist(c, 2, &o, &b) > 0);
    char *s = strdup(ms_buf_cstr(&b));
    ms_buf_free(&b);
    return s;
}

static void publish(int port)
{
    char http[64];
    snprintf(http, sizeof http, "http://127.0.0.1:%d", port);
    json_t *rows = json_pack("[{s:s,s:s,s:s,s:[[I,I]]}, {s:s,s:s,s:s,s:[[I,I]]}]", "stream", "u1",
                             "server", "r1", "http", http, "ranges", (json_int_t)(T0 / 1000 + 10),
                             (json_int_t)(T0 / 1000 + 18), "stream", "u1", "server", "self", "http",
                             "http://127.0.0.1:1", "ranges", (json_int_t)(T0 / 1000),
                             (json_int_t)(T0 / 1000 + 8));
    assert_non_null(rows);
    ms_archive_view_set(rows, "self");
    json_decref(rows);
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* Local [T0, T0 + 8 s) here, [T0 + 10 s, T0 + 18 s) on r1; the window
 * [T0, T0 + 20 s) with a token. */
static void do_splice(int mode, ms_buf_t *out, char *missing, size_t cap, peer_t *p, int *rc,
                      int64_t *took_ms)
{
    char *body = remote_playlist();
    peer_start(p, mode, body);
    publish(p->port);
    ms_dvr_chunk_t c[2];
    ms_dvr_frag_t f0[4], f1[4];
    mk_chunk(&c[0], f0, 1, T0, 4);
    mk_chunk(&c[1], f1, 2, T0 + 4000, 4);
    ms_dvr_pl_opts_t o = {T0, 20000, 0, 2000, 4000, "?token=abc"};
    missing[0] = '\0';
    int64_t t0 = ms_mono_ms();
    *rc = ms_archive_remote_splice("u1", c, 2, &o, T0 + 20000, out, missing, cap);
    *took_ms = ms_mono_ms() - t0;
    peer_stop(p);
    ms_archive_view_clear();
    free(body);
}

static void test_fetch_and_splice(void **state)
{
    (void)state;
    ms_archive_remote_backoff_reset();
    peer_t p;
    ms_buf_t out = MS_BUF_INIT;
    char missing[64], want[160];
    int rc;
    int64_t took;
    do_splice(0, &out, missing, sizeof missing, &p, &rc, &took);
    /* the other server was asked for its sub-window (from its published
     * start to the window end: its published end may lag what it holds),
     * local part only, with the token (unsigned: no running node config) */
    snprintf(want, sizeof want,
             "GET /u1/archive-%lld-10.m3u8?token=abc&cluster_local=1 HTTP/1.1\r\n",
             (long long)(T0 / 1000 + 10));
    assert_true(strncmp(p.request, want, strlen(want)) == 0);
    const char *pl = ms_buf_cstr(&out);
    assert_true(rc >= 4);
    assert_string_equal(missing, "");
    char abs[64];
    snprintf(abs, sizeof abs, "http://127.0.0.1:%d/u1/archive-seg-7-", p.port);
    const char *first_remote = strstr(pl, abs);
    const char *last_local = strstr(pl, "\narchive-seg-2-");
    assert_non_null(first_remote);
    assert_non_null(last_local);
    assert_true(last_local < strstr(pl, "#EXT-X-DISCONTINUITY") &&
                strstr(pl, "#EXT-X-DISCONTINUITY") < first_remote);
    assert_int_equal(count(pl, "#EXT-X-DISCONTINUITY"), 1);
    assert_int_equal(count(pl, "#EXT-X-MAP:"), 2);
    assert_int_equal(count(pl, "?token=abc"), (size_t)rc + 2);
    assert_non_null(strstr(pl, "#EXT-X-ENDLIST"));
    ms_buf_free(&out);
}

static void test_remote_404_and_silent(void **state)
{
    (void)state;
    ms_archive_remote_backoff_reset();
    peer_t p;
    ms_buf_t out = MS_BUF_INIT;
    char missing[64];
    int rc;
    int64_t took;
    /* 404: nothing there after all; not a failure */
    do_splice(1, &out, missing, sizeof missing, &p, &rc, &took);
    assert_int_equal(rc, 2);
    assert_string_equal(missing, "");
    assert_null(strstr(ms_buf_cstr(&out), "http://"));
    ms_buf_free(&out);
    /* a server that never answers: the local part within the budget and
     * the server named as missing */
    out = (ms_buf_t)MS_BUF_INIT;
    do_splice(2, &out, missing, sizeof missing, &p, &rc, &took);
    assert_int_equal(rc, 2);
    assert_string_equal(missing, "r1");
    assert_true(took >= MS_ARCH_REMOTE_TIMEOUT_MS - 50 && took < MS_ARCH_REMOTE_TIMEOUT_MS + 1000);
    assert_null(strstr(ms_buf_cstr(&out), "http://"));
    ms_buf_free(&out);
    /* asked again at once: r1 is skipped (missing without a wait or a
     * connection: nothing listens on port 1) */
    publish(1);
    ms_dvr_chunk_t c[1];
    ms_dvr_frag_t f[4];
    mk_chunk(&c[0], f, 1, T0, 4);
    ms_dvr_pl_opts_t o = {T0, 20000, 0, 2000, 4000, ""};
    out = (ms_buf_t)MS_BUF_INIT;
    missing[0] = '\0';
    int64_t t0 = ms_mono_ms();
    assert_int_equal(
        ms_archive_remote_splice("u1", c, 1, &o, T0 + 20000, &out, missing, sizeof missing), 1);
    assert_true(ms_mono_ms() - t0 < 200);
    assert_string_equal(missing, "r1");
    ms_buf_free(&out);
    ms_archive_view_clear();
    ms_archive_remote_backoff_reset();
}

static void test_no_other_server(void **state)
{
    (void)state;
    ms_dvr_chunk_t c[1];
    ms_dvr_frag_t f[4];
    mk_chunk(&c[0], f, 1, T0, 4);
    ms_dvr_pl_opts_t o = {T0, 4000, 0, 2000, 4000, ""};
    ms_buf_t out = MS_BUF_INIT;
    char missing[16] = "";
    ms_archive_view_clear();
    assert_int_equal(
        ms_archive_remote_splice("u1", c, 1, &o, T0 + 4000, &out, missing, sizeof missing),
        -ENOENT);
    assert_int_equal(ms_archive_remote_servers("u1", T0 / 1000, T0 / 1000 + 4), 0);
    ms_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fetch_and_splice),
        cmocka_unit_test(test_remote_404_and_silent),
        cmocka_unit_test(test_no_other_server),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
