/* The HTTP server on loopback: starts ms_http_start on a free port with a
 * real stream registry and checks status codes, headers and bodies of the
 * playback routes, the REST API, auth and /metrics through a raw socket. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "api/api.h"
#include "api/http.h"
#include "node/config.h"
#include "node/streams.h"
#include "node/workers.h"

/* "admin:pw" */
#define AUTH "Authorization: Basic YWRtaW46cHc=\r\n"

static int g_port;

typedef struct {
    int status;
    char head[4096];
    char *body;
    size_t body_len;
} resp_t;

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t l = sizeof(a);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &l), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* Sends raw request bytes, reads until the server closes (Connection:
 * close), bounded by a 10 s receive timeout and 4 MiB. */
static void raw(const char *req, size_t len, resp_t *r)
{
    memset(r, 0, sizeof(*r));
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(fd, req + off, len - off, MSG_NOSIGNAL);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    size_t cap = 4 << 20, got = 0;
    char *buf = malloc(cap + 1);
    assert_non_null(buf);
    for (int i = 0; i < 100000 && got < cap; i++) {
        ssize_t n = recv(fd, buf + got, cap - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    char *end = strstr(buf, "\r\n\r\n");
    assert_non_null(end);
    size_t hl = (size_t)(end - buf);
    assert_true(hl < sizeof(r->head));
    memcpy(r->head, buf, hl);
    r->head[hl] = '\0';
    assert_int_equal(sscanf(buf, "HTTP/1.%*d %d", &r->status), 1);
    r->body_len = got - hl - 4;
    r->body = malloc(r->body_len + 1);
    memcpy(r->body, end + 4, r->body_len);
    r->body[r->body_len] = '\0';
    free(buf);
}

static void req(const char *method, const char *target, const char *extra, resp_t *r)
{
    char buf[16384];
    int n = snprintf(buf, sizeof(buf),
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                     "User-Agent: test\r\n%s\r\n",
                     method, target, extra ? extra : "");
    assert_true(n > 0 && (size_t)n < sizeof(buf));
    raw(buf, (size_t)n, r);
}

static void resp_free(resp_t *r)
{
    free(r->body);
    r->body = NULL;
}

static int has_header(const resp_t *r, const char *line)
{
    return strcasestr(r->head, line) != NULL;
}

static json_t *body_json(const resp_t *r)
{
    json_error_t e;
    json_t *j = json_loadb(r->body, r->body_len, 0, &e);
    if (!j)
        fprintf(stderr, "bad JSON (%s): %s\n", e.text, r->body);
    assert_non_null(j);
    return j;
}

static void expect_error(const char *method, const char *target, const char *extra, int status)
{
    resp_t r;
    req(method, target, extra, &r);
    if (r.status != status)
        fprintf(stderr, "%s %s: %d %s\n", method, target, r.status, r.body);
    assert_int_equal(r.status, status);
    json_t *j = body_json(&r);
    assert_true(json_is_string(json_object_get(j, "error")));
    json_decref(j);
    resp_free(&r);
}

/* A request with a body (Content-Length or, when chunked, the chunked
 * transfer coding of RFC 9112 section 7.1 in pieces of 3 bytes). */
static void req_body(const char *method, const char *target, const char *body, int chunked,
                     resp_t *r)
{
    char buf[16384];
    size_t bl = strlen(body);
    int n = snprintf(buf, sizeof(buf),
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" AUTH
                     "Content-Type: application/json\r\n",
                     method, target);
    if (!chunked) {
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, "Content-Length: %zu\r\n\r\n%s", bl, body);
    } else {
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, "Transfer-Encoding: chunked\r\n\r\n");
        for (size_t off = 0; off < bl; off += 3) {
            size_t k = bl - off < 3 ? bl - off : 3;
            n += snprintf(buf + n, sizeof(buf) - (size_t)n, "%zx\r\n%.*s\r\n", k, (int)k,
                          body + off);
        }
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, "0\r\n\r\n");
    }
    assert_true(n > 0 && (size_t)n < sizeof(buf));
    raw(buf, (size_t)n, r);
}

static void test_server(void **state)
{
    (void)state;
    char dir[] = "/tmp/ms-http-test-XXXXXX";
    assert_non_null(mkdtemp(dir));
    ms_node_cfg_t cfg;
    ms_node_cfg_defaults(&cfg);
    snprintf(cfg.name, sizeof(cfg.name), "t1");
    snprintf(cfg.data_dir, sizeof(cfg.data_dir), "%s", dir);
    snprintf(cfg.listen_address, sizeof(cfg.listen_address), "127.0.0.1");
    snprintf(cfg.admin_user, sizeof(cfg.admin_user), "admin");
    snprintf(cfg.admin_password, sizeof(cfg.admin_password), "pw");
    cfg.port_https = 0;
    g_port = cfg.port_http = free_port();

    ms_workers_t *ws = ms_workers_start(1);
    assert_non_null(ws);
    assert_int_equal(ms_streams_init(ws, &cfg), 0);
    char err[256];
    int rc = ms_http_start(&cfg, err, sizeof(err));
    if (rc < 0)
        fprintf(stderr, "ms_http_start: %s\n", err);
    assert_int_equal(rc, 0);

    resp_t r;
    /* unknown stream */
    expect_error("GET", "/nosuch/index.m3u8", NULL, 404);
    expect_error("GET", "/nosuch/seg1.ts", NULL, 404);
    expect_error("GET", "/nosuch/file.txt", NULL, 404);
    /* API without / with wrong credentials */
    req("GET", "/api/v1/streams", NULL, &r);
    assert_int_equal(r.status, 401);
    assert_true(has_header(&r, "WWW-Authenticate: Basic realm=\"mediaserver\""));
    resp_free(&r);
    expect_error("GET", "/api/v1/streams", "Authorization: Basic YWRtaW46cHg=\r\n", 401);
    expect_error("GET", "/api/v1/system", "Authorization: Bearer nope\r\n", 401);
    /* empty list */
    req("GET", "/api/v1/streams", AUTH, &r);
    assert_int_equal(r.status, 200);
    assert_true(has_header(&r, "Content-Type: application/json"));
    assert_string_equal(r.body, "{\"streams\":[]}");
    resp_free(&r);
    /* system */
    req("GET", "/api/v1/system", AUTH, &r);
    assert_int_equal(r.status, 200);
    json_t *j = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "name")), "t1");
    assert_true(json_integer_value(json_object_get(j, "threads")) >= 2);
    assert_int_equal(json_integer_value(json_object_get(j, "streams")), 0);
    assert_true(json_integer_value(json_object_get(json_object_get(j, "memory"), "rss_bytes")) > 0);
    json_t *d0 = json_array_get(json_object_get(j, "disks"), 0);
    assert_true(json_integer_value(json_object_get(d0, "total_bytes")) > 0);
    json_decref(j);
    resp_free(&r);
    /* cluster calls on a node without the cluster state (501), wrong methods, unknown paths */
    req_body("POST", "/api/v1/streams", "{}", 0, &r);
    assert_int_equal(r.status, 501);
    resp_free(&r);
    /* bodies are read before routing (in pieces when chunked) */
    req_body("POST", "/api/v1/streams/nosuch/tokens", "{\"ttl_s\": 60, \"mode\": \"live\"}", 1, &r);
    assert_int_equal(r.status, 404);
    resp_free(&r);
    expect_error("POST", "/api/v1/streams/nosuch/share", AUTH "Content-Length: 100000\r\n", 413);
    {
        size_t big = MS_API_BODY_MAX + 10;
        char *b = malloc(big + 1);
        assert_non_null(b);
        memset(b, ' ', big);
        b[big] = '\0';
        char *hdr = malloc(big + 512);
        assert_non_null(hdr);
        int hn = snprintf(hdr, big + 512,
                          "POST /api/v1/streams/x/tokens HTTP/1.1\r\nHost: h\r\n"
                          "Connection: close\r\n" AUTH "Transfer-Encoding: chunked\r\n\r\n"
                          "%zx\r\n%s\r\n0\r\n\r\n",
                          big, b);
        raw(hdr, (size_t)hn, &r);
        assert_int_equal(r.status, 413);
        resp_free(&r);
        free(hdr);
        free(b);
    }
    expect_error("DELETE", "/api/v1/streams/x", AUTH, 501);
    /* PATCH is a stream call (RFC 7396): without the cluster state, 501 as PUT */
    expect_error("PATCH", "/api/v1/streams/x", AUTH, 501);
    expect_error("TRACE", "/api/v1/streams/x", AUTH, 405);
    expect_error("GET", "/api/v1/bogus", AUTH, 404);
    expect_error("GET", "/api/v1/streams/nosuch", AUTH, 404);
    req("POST", "/cam/index.m3u8", NULL, &r);
    assert_int_equal(r.status, 405);
    assert_true(has_header(&r, "Allow: GET, HEAD"));
    resp_free(&r);
    /* hostile targets */
    expect_error("GET", "/a/%2e%2e/b", NULL, 400);
    expect_error("GET", "/a/../../etc/passwd", NULL, 400);
    expect_error("GET", "/cam/index.m3u8?x=%zz", NULL, 400);
    expect_error("GET", "/cam%00/index.m3u8", NULL, 400);
    {
        char *big = malloc(5000 + 16);
        memset(big, 'a', 5000 + 8);
        big[0] = '/';
        big[5000 + 8] = '\0';
        req("GET", big, NULL, &r);
        assert_int_equal(r.status, 414);
        resp_free(&r);
        free(big);
    }
    /* garbage bytes never crash the server */
    raw("\x01\x02 / HTTP/1.1\r\n\r\n", 18, &r);
    assert_true(r.status >= 400);
    resp_free(&r);
    /* keep-alive: two pipelined requests on one connection, both answered */
    {
        static const char two[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
                                  "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        raw(two, sizeof(two) - 1, &r);
        assert_int_equal(r.status, 200);
        assert_null(strcasestr(r.head, "Connection: close"));
        assert_non_null(strstr(r.body, "HTTP/1.1 302 Found\r\n"));
        assert_non_null(strcasestr(r.body, "Location: /cpanel/"));
        resp_free(&r);
    }
    /* root: the web panel (docs/cpanel.md) */
    req("GET", "/", NULL, &r);
    assert_int_equal(r.status, 302);
    assert_non_null(strcasestr(r.head, "Location: /cpanel/"));
    resp_free(&r);

    /* a stream whose camera is unreachable: listed, playlist not ready */
    ms_stream_cfg_t sc;
    ms_stream_cfg_defaults(&sc);
    snprintf(sc.uid, sizeof(sc.uid), "0d6b6c1e-3f0a-4c5e-9a55-2f4f0b7a2a11");
    snprintf(sc.name, sizeof(sc.name), "cam1");
    snprintf(sc.url, sizeof(sc.url), "rtsp://127.0.0.1:%d/none", free_port());
    assert_int_equal(ms_streams_apply(&sc, MS_RUN_ACTIVE), 0);
    ms_stream_cfg_free(&sc);
    ms_stream_t *s = NULL;
    for (int i = 0; i < 200 && !(s = ms_streams_find("cam1")); i++)
        usleep(10000);
    assert_non_null(s);
    ms_stream_unref(s);

    req("GET", "/cam1/index.m3u8", NULL, &r);
    assert_int_equal(r.status, 503);
    assert_true(has_header(&r, "Retry-After: 1"));
    assert_non_null(strstr(r.body, "stream not ready"));
    resp_free(&r);
    expect_error("GET", "/cam1/index.m3u8?_HLS_msn=abc", NULL, 400);
    expect_error("GET", "/cam1/index.m3u8?_HLS_msn=-1", NULL, 400);
    expect_error("GET", "/cam1/index.m3u8?_HLS_part=1", NULL, 400);

    req("GET", "/api/v1/streams/cam1", AUTH, &r);
    assert_int_equal(r.status, 200);
    j = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "name")), "cam1");
    json_t *st = json_object_get(j, "status");
    static const char *const keys[] = {
        "state",        "characteristic", "role",      "server",     "backup_server",
        "bitrate_kbps", "output_kbps",    "clients",   "width",      "height",
        "video_codec",  "audio_codec",    "uptime_s",  "reconnects", "reconnects_total",
        "sdp",          "reason",         "transport", "rtp_lost",   "frames_dropped",
        "hls_ready"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (!json_object_get(st, keys[i]))
            fprintf(stderr, "status.%s missing\n", keys[i]);
        assert_non_null(json_object_get(st, keys[i]));
    }
    assert_non_null(json_object_get(st, "timestamp_jumps"));
    assert_non_null(json_object_get(st, "timestamp_resyncs"));
    json_decref(j);
    resp_free(&r);
    /* by uid too */
    req("GET", "/api/v1/streams/0d6b6c1e-3f0a-4c5e-9a55-2f4f0b7a2a11", AUTH, &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    /* filters */
    static const struct {
        const char *q;
        size_t n;
    } filters[] = {{"?name=am", 1},      {"?name=zz", 0},
                   {"?role=primary", 1}, {"?role=secondary", 0},
                   {"?dvr=1", 0},        {"?state=suspend", 0},
                   {"?audio=0", 0},      {"?name=cam&role=migrated,primary", 1}};
    for (size_t i = 0; i < sizeof(filters) / sizeof(filters[0]); i++) {
        char t[128];
        snprintf(t, sizeof(t), "/api/v1/streams%s", filters[i].q);
        req("GET", t, AUTH, &r);
        assert_int_equal(r.status, 200);
        j = body_json(&r);
        if (json_array_size(json_object_get(j, "streams")) != filters[i].n)
            fprintf(stderr, "%s: %s\n", t, r.body);
        assert_int_equal(json_array_size(json_object_get(j, "streams")), filters[i].n);
        json_decref(j);
        resp_free(&r);
    }
    expect_error("GET", "/api/v1/streams?dvr=maybe", AUTH, 400);

    /* metrics */
    req("GET", "/metrics", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_true(has_header(&r, "Content-Type: text/plain; version=0.0.4"));
    assert_non_null(strstr(r.body, "# TYPE ms_stream_up gauge\n"));
    /* role and server labels tell the copies of a stream apart */
    assert_non_null(
        strstr(r.body, "ms_stream_up{stream=\"cam1\",role=\"primary\",server=\"t1\"} 0\n"));
    assert_non_null(
        strstr(r.body, "ms_stream_clients{stream=\"cam1\",role=\"primary\",server=\"t1\"} 0\n"));
    assert_non_null(strstr(r.body, "ms_http_requests_total{code=\"404\"} "));
    assert_non_null(strstr(r.body, "ms_http_requests_total{code=\"401\"} 3\n"));
    assert_non_null(strstr(r.body, "ms_process_resident_memory_bytes "));
    resp_free(&r);

    ms_http_stop();
    ms_streams_shutdown();
    ms_workers_stop(ws);
    ms_node_cfg_free(&cfg);
    rmdir(dir);
}

static void test_bad_tls(void **state)
{
    (void)state;
    char dir[] = "/tmp/ms-http-tls-XXXXXX";
    assert_non_null(mkdtemp(dir));
    ms_node_cfg_t cfg;
    ms_node_cfg_defaults(&cfg);
    snprintf(cfg.name, sizeof(cfg.name), "t1");
    snprintf(cfg.data_dir, sizeof(cfg.data_dir), "%s", dir);
    snprintf(cfg.listen_address, sizeof(cfg.listen_address), "127.0.0.1");
    cfg.port_http = 0;
    cfg.port_https = free_port();
    snprintf(cfg.tls_cert, sizeof(cfg.tls_cert), "%s/cert.pem", dir);
    snprintf(cfg.tls_key, sizeof(cfg.tls_key), "%s/key.pem", dir);
    char err[256];
    /* missing files */
    assert_int_equal(ms_http_start(&cfg, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "tls.cert"));
    /* not PEM */
    FILE *f = fopen(cfg.tls_cert, "w");
    fputs("not a certificate\n", f);
    fclose(f);
    f = fopen(cfg.tls_key, "w");
    fputs("not a key\n", f);
    fclose(f);
    assert_int_equal(ms_http_start(&cfg, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "not a PEM certificate"));
    /* bad listen address */
    cfg.port_https = 0;
    cfg.port_http = free_port();
    snprintf(cfg.listen_address, sizeof(cfg.listen_address), "not-an-ip");
    assert_int_equal(ms_http_start(&cfg, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "listen.address"));
    ms_http_stop();
    unlink(cfg.tls_cert);
    unlink(cfg.tls_key);
    rmdir(dir);
    ms_node_cfg_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_server),
        cmocka_unit_test(test_bad_tls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
