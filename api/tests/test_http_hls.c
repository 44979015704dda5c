/* Live HLS over HTTP on loopback with real frames: a stream's hub is fed
 * with the H.264 test clip from its worker loop; the playlist, segments,
 * token propagation, LL-HLS blocking reload and preload-hint parts
 * (suspend/resume of the MHD connection), client counting, and stopping the
 * server while a request is suspended. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
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

#include "api/http.h"
#include "media/ts/tests/es.h"
#include "node/config.h"
#include "node/streams.h"
#include "node/workers.h"
#include "util/clock.h"

static int g_port;
static ms_workers_t *g_ws;
static es_t g_es;
static int64_t g_next; /* next video frame index */

typedef struct {
    int status; /* 0 when the connection closed without a response */
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

static void get(const char *target, resp_t *r)
{
    memset(r, 0, sizeof(*r));
    char req[1024];
    int len = snprintf(req, sizeof(req),
                       "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                       "User-Agent: hls-test\r\nAuthorization: Basic YWRtaW46cHc=\r\n\r\n",
                       target);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = {15, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return;
    }
    send(fd, req, (size_t)len, MSG_NOSIGNAL);
    size_t cap = 4 << 20, got = 0;
    char *buf = malloc(cap + 1);
    for (int i = 0; i < 100000 && got < cap; i++) {
        ssize_t n = recv(fd, buf + got, cap - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    char *end = strstr(buf, "\r\n\r\n");
    if (end && sscanf(buf, "HTTP/1.%*d %d", &r->status) == 1) {
        size_t hl = (size_t)(end - buf);
        if (hl >= sizeof(r->head))
            hl = sizeof(r->head) - 1;
        memcpy(r->head, buf, hl);
        r->body_len = got - (size_t)(end + 4 - buf);
        r->body = malloc(r->body_len + 1);
        memcpy(r->body, end + 4, r->body_len);
        r->body[r->body_len] = '\0';
    }
    free(buf);
}

static void resp_free(resp_t *r)
{
    free(r->body);
    r->body = NULL;
}

/* ---- feeding the stream's hub on its worker loop ---- */

typedef struct {
    ms_hub_t *hub;
    int n;
    int discont;
    atomic_int done;
} feed_t;

static void feed_task(ms_worker_t *w, void *arg)
{
    (void)w;
    feed_t *f = arg;
    if (f->discont)
        ms_hub_set_tracks(f->hub, &g_es.params, 1);
    for (int i = 0; i < f->n; i++) {
        int64_t vi = g_next++;
        const ms_frame_t *src = g_es.frames[vi % g_es.n];
        ms_frame_t *fr = ms_frame_new(src->data, src->size);
        fr->track = 0;
        fr->flags = (uint8_t)(src->flags | (f->discont && i == 0 ? MS_FRAME_DISCONT : 0));
        fr->pts = fr->dts = vi * 3600;
        fr->wallclock_us = ms_wall_us();
        ms_hub_publish(f->hub, fr);
        ms_frame_unref(fr);
    }
    atomic_store(&f->done, 1);
}

static void feed(ms_hub_t *hub, int n, int discont)
{
    feed_t f = {hub, n, discont, 0};
    assert_int_equal(ms_worker_post(ms_workers_get(g_ws, 0), feed_task, &f), 0);
    for (int i = 0; i < 500 && !atomic_load(&f.done); i++)
        usleep(10000);
    assert_true(atomic_load(&f.done));
}

typedef struct {
    const char *target;
    resp_t r;
    atomic_int finished;
    int64_t done_ms;
} async_t;

static void *async_main(void *arg)
{
    async_t *a = arg;
    get(a->target, &a->r);
    a->done_ms = ms_mono_ms();
    atomic_store(&a->finished, 1);
    return NULL;
}

static int count_clients(void)
{
    resp_t r;
    get("/api/v1/streams/live", &r);
    assert_int_equal(r.status, 200);
    json_t *j = json_loadb(r.body, r.body_len, 0, NULL);
    assert_non_null(j);
    int n = (int)json_integer_value(json_object_get(json_object_get(j, "status"), "clients"));
    json_decref(j);
    resp_free(&r);
    return n;
}

static void test_live_hls(void **state)
{
    (void)state;
    assert_int_equal(es_load_video(&g_es, "h264_320x240_25fps.h264", 0, 0), 50);
    char dir[] = "/tmp/ms-http-hls-XXXXXX";
    assert_non_null(mkdtemp(dir));
    ms_node_cfg_t cfg;
    ms_node_cfg_defaults(&cfg);
    snprintf(cfg.name, sizeof(cfg.name), "t1");
    snprintf(cfg.data_dir, sizeof(cfg.data_dir), "%s", dir);
    snprintf(cfg.listen_address, sizeof(cfg.listen_address), "127.0.0.1");
    snprintf(cfg.admin_password, sizeof(cfg.admin_password), "pw");
    snprintf(cfg.admin_user, sizeof(cfg.admin_user), "admin");
    cfg.port_https = 0;
    g_port = cfg.port_http = free_port();
    g_ws = ms_workers_start(1);
    assert_non_null(g_ws);
    assert_int_equal(ms_streams_init(g_ws, &cfg), 0);
    char err[256];
    assert_int_equal(ms_http_start(&cfg, err, sizeof(err)), 0);

    /* The camera does not answer: the hub is fed by the test instead. */
    ms_stream_cfg_t sc;
    ms_stream_cfg_defaults(&sc);
    snprintf(sc.name, sizeof(sc.name), "live");
    snprintf(sc.uid, sizeof(sc.uid), "11111111-2222-3333-4444-555555555555");
    snprintf(sc.url, sizeof(sc.url), "rtsp://127.0.0.1:%d/none", free_port());
    sc.channels = MS_CHANNEL_VIDEO;
    sc.hls_format = MS_HLS_TS;
    sc.hls_segment_ms = 1000;
    sc.hls_part_ms = 200;
    sc.hls_window = 3;
    assert_int_equal(ms_streams_apply(&sc, MS_RUN_ACTIVE), 0);
    ms_stream_cfg_free(&sc);
    ms_stream_t *s = NULL;
    ms_hls_t *h = NULL;
    for (int i = 0; i < 500 && !h; i++) {
        if (!s)
            s = ms_streams_find("live");
        if (s)
            h = ms_stream_hls(s);
        if (!h)
            usleep(10000);
    }
    assert_non_null(h);
    ms_hls_unref(h);
    ms_hub_t *hub = ms_stream_hub(s);

    resp_t r;
    /* No segment yet: the request is held 3 target durations, then 503. */
    int64_t t_ask = ms_mono_ms();
    get("/live/index.m3u8", &r);
    assert_int_equal(r.status, 503);
    assert_true(ms_mono_ms() - t_ask >= 2500);
    resp_free(&r);

    /* Held until the first segment exists, then answered. */
    async_t first = {"/live/index.m3u8", {0}, 0, 0};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, async_main, &first), 0);
    usleep(300000);
    assert_false(atomic_load(&first.finished));
    feed(hub, 176, 1); /* keyframes every second: segments 0..6 complete, 7 open */
    pthread_join(th, NULL);
    assert_int_equal(first.r.status, 200);
    resp_free(&first.r);

    /* Sequence numbers start at a clock-derived base (node/streams.c):
     * segment k is B + k. */
    ms_hls_info_t info;
    h = ms_stream_hls(s);
    assert_non_null(h);
    ms_hls_get_info(h, &info);
    ms_hls_unref(h);
    int64_t B = info.first_msn - 4;
    assert_true(B > 17000000000LL); /* tenths of a second since 1970, after 2023 */
    char path[160], want[160];
    get("/live/index.m3u8", &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strcasestr(r.head, "Content-Type: application/vnd.apple.mpegurl"));
    assert_non_null(strcasestr(r.head, "Cache-Control: no-cache"));
    assert_non_null(strstr(r.body, "#EXTM3U"));
    snprintf(want, sizeof want, "\nseg%lld.ts\n", (long long)(B + 6));
    assert_non_null(strstr(r.body, want));
    resp_free(&r);
    assert_int_equal(count_clients(), 1);

    /* The token travels into every URI. */
    get("/live/index.m3u8?token=a%2Bb", &r);
    assert_int_equal(r.status, 200);
    snprintf(path, sizeof path, "\nseg%lld.ts?token=a%%2Bb\n", (long long)(B + 6));
    assert_non_null(strstr(r.body, path));
    assert_null(strstr(r.body, want));
    resp_free(&r);
    /* one viewer per stream and client address (docs/security.md): another
     * token from the same address is the same viewer */
    assert_int_equal(count_clients(), 1);

    /* By uid too; segments are TS, cacheable. */
    snprintf(path, sizeof path, "/11111111-2222-3333-4444-555555555555/seg%lld.ts",
             (long long)(B + 6));
    get(path, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strcasestr(r.head, "Content-Type: video/mp2t"));
    assert_non_null(strcasestr(r.head, "Cache-Control: max-age="));
    assert_true(r.body_len > 1000 && r.body_len % 188 == 0);
    assert_int_equal((unsigned char)r.body[0], 0x47);
    resp_free(&r);
    snprintf(path, sizeof path, "/live/seg%lld.ts", (long long)(B + 1));
    get(path, &r);
    assert_int_equal(r.status, 404); /* expired */
    resp_free(&r);
    snprintf(path, sizeof path, "/live/index.m3u8?_HLS_msn=%lld", (long long)(B + 100));
    get(path, &r);
    assert_int_equal(r.status, 400); /* too far ahead */
    resp_free(&r);

    /* Blocking playlist reload: part 7.1 does not exist yet. */
    char pa[160], pp[160], pq[160];
    snprintf(pa, sizeof pa, "/live/index.m3u8?_HLS_msn=%lld&_HLS_part=1", (long long)(B + 7));
    async_t a = {pa, {0}, 0, 0};
    assert_int_equal(pthread_create(&th, NULL, async_main, &a), 0);
    usleep(300000);
    assert_false(atomic_load(&a.finished));
    int64_t fed_ms = ms_mono_ms();
    feed(hub, 10, 0); /* 0.4 s: parts 7.0 and 7.1 */
    pthread_join(th, NULL);
    assert_int_equal(a.r.status, 200);
    assert_true(a.done_ms >= fed_ms);
    snprintf(want, sizeof want, "part%lld.1.ts", (long long)(B + 7));
    assert_non_null(strstr(a.r.body, want));
    resp_free(&a.r);

    /* A preload-hinted part blocks until it is produced. */
    snprintf(pp, sizeof pp, "/live/part%lld.2.ts", (long long)(B + 7));
    async_t p = {pp, {0}, 0, 0};
    assert_int_equal(pthread_create(&th, NULL, async_main, &p), 0);
    usleep(300000);
    assert_false(atomic_load(&p.finished));
    fed_ms = ms_mono_ms();
    feed(hub, 6, 0);
    pthread_join(th, NULL);
    assert_int_equal(p.r.status, 200);
    assert_true(p.done_ms >= fed_ms);
    assert_int_equal((unsigned char)p.r.body[0], 0x47);
    resp_free(&p.r);

    /* Stopping the server with a suspended request: it is resumed and
     * answered (or closed), never left hanging. */
    snprintf(pq, sizeof pq, "/live/index.m3u8?_HLS_msn=%lld", (long long)(B + 8));
    async_t q = {pq, {0}, 0, 0};
    assert_int_equal(pthread_create(&th, NULL, async_main, &q), 0);
    usleep(300000);
    assert_false(atomic_load(&q.finished));
    int64_t t0 = ms_mono_ms();
    ms_http_stop();
    pthread_join(th, NULL);
    assert_true(ms_mono_ms() - t0 < 2500);
    assert_true(q.r.status == 0 || q.r.status == 503);
    resp_free(&q.r);

    ms_stream_unref(s);
    ms_streams_shutdown();
    ms_workers_stop(g_ws);
    ms_node_cfg_free(&cfg);
    es_free(&g_es);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_live_hls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
