/* The primary's status read node to node (api/status_remote.c,
 * ms_status_remote_get): a stand-in server on loopback answers canned
 * HTTP/1.1 (RFC 9112) responses: the request it gets, one read per server
 * within MS_STATUS_REMOTE_TTL_MS (a second call finds the cache: the
 * stand-in answers one request only), a stream the server does not run, a
 * server that refuses (not asked again for MS_STATUS_REMOTE_BACKOFF_MS) or
 * never answers (given up after MS_STATUS_REMOTE_TIMEOUT_MS). */
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

#include "api/status_remote.h"
#include "util/clock.h"

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

static const char *TABLE = "{\"streams\":{\"u1\":{\"state\":\"active\",\"bitrate_kbps\":2048,"
                           "\"clients\":3}}}";

static void base_of(const peer_t *p, char *out, size_t cap)
{
    snprintf(out, cap, "http://127.0.0.1:%d", p->port);
}

static void test_read_once_then_cache(void **state)
{
    (void)state;
    peer_t p;
    char http[64];
    int64_t age = -1;
    const char *why = NULL;
    peer_start(&p, 0, TABLE);
    base_of(&p, http, sizeof http);
    json_t *s = ms_status_remote_get("s1", http, "u1", &age, &why);
    peer_stop(&p); /* it answered its one request */
    assert_non_null(s);
    assert_string_equal(json_string_value(json_object_get(s, "state")), "active");
    assert_int_equal(json_integer_value(json_object_get(s, "clients")), 3);
    assert_true(age >= 0 && age < 100);
    json_decref(s);
    const char *want = "GET /api/v1/streams?cluster_local=1 HTTP/1.1\r\n";
    assert_true(strncmp(p.request, want, strlen(want)) == 0);
    /* from the cache: nobody listens any more */
    s = ms_status_remote_get("s1", http, "u1", &age, &why);
    assert_non_null(s);
    assert_true(age >= 0 && age < MS_STATUS_REMOTE_TTL_MS);
    json_decref(s);
    /* a stream the server does not run */
    assert_null(ms_status_remote_get("s1", http, "u2", &age, &why));
    assert_string_equal(why, "not running");
    /* once the table is older than the TTL it is read again: refused now */
    struct timespec ts = {MS_STATUS_REMOTE_TTL_MS / 1000,
                          (MS_STATUS_REMOTE_TTL_MS % 1000) * 1000000L + 50000000L};
    nanosleep(&ts, NULL);
    assert_null(ms_status_remote_get("s1", http, "u1", &age, &why));
    assert_string_equal(why, "unreachable");
}

static void test_refused_then_backoff(void **state)
{
    (void)state;
    peer_t p;
    char http[64];
    int64_t age = 0;
    const char *why = NULL;
    peer_start(&p, 0, TABLE);
    base_of(&p, http, sizeof http);
    /* a free port: connect to the stand-in, then close it before asking */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    a.sin_port = htons((uint16_t)p.port);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    close(fd);
    peer_stop(&p); /* the listener is closed: connections are refused */
    int64_t t0 = ms_mono_ms();
    assert_null(ms_status_remote_get("s2", http, "u1", &age, &why));
    assert_string_equal(why, "unreachable");
    assert_true(ms_mono_ms() - t0 < MS_STATUS_REMOTE_TIMEOUT_MS);
    /* not asked again within the backoff, even once it listens */
    peer_t q;
    peer_start(&q, 0, TABLE);
    char http2[64];
    base_of(&q, http2, sizeof http2);
    assert_null(ms_status_remote_get("s2", http2, "u1", &age, &why));
    /* another server is asked */
    json_t *s = ms_status_remote_get("s3", http2, "u1", &age, &why);
    peer_stop(&q);
    assert_non_null(s);
    json_decref(s);
}

static void test_silent_server_times_out(void **state)
{
    (void)state;
    peer_t p;
    char http[64];
    int64_t age = 0;
    const char *why = NULL;
    peer_start(&p, 2, NULL);
    base_of(&p, http, sizeof http);
    int64_t t0 = ms_mono_ms();
    assert_null(ms_status_remote_get("s4", http, "u1", &age, &why));
    int64_t took = ms_mono_ms() - t0;
    peer_stop(&p);
    assert_true(took >= MS_STATUS_REMOTE_TIMEOUT_MS - 50 &&
                took < MS_STATUS_REMOTE_TIMEOUT_MS + 500);
    t0 = ms_mono_ms();
    assert_null(ms_status_remote_get("s4", http, "u1", &age, &why));
    assert_true(ms_mono_ms() - t0 < 50); /* backoff: not asked again */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_once_then_cache),
        cmocka_unit_test(test_refused_then_backoff),
        cmocka_unit_test(test_silent_server_times_out),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
