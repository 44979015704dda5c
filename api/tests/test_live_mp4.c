/* live.mp4 and snapshot glue against real peers over loopback: an MHD
 * daemon serves a hub fed in real time (25 fps H.264 + AAC) from a uv loop
 * thread; ffmpeg reads /live.mp4 and decodes it with no error line; ffprobe
 * decodes /videoshot.jpg, /preview.jpg and /preview.mp4 over HTTP. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <unistd.h>

#include "api/live_mp4.h"
#include "media/ts/tests/es.h"

typedef struct {
    uv_loop_t loop;
    uv_timer_t timer;
    uv_async_t stop;
    ms_hub_t *hub;
    ms_fmp4_live_t *live;
    ms_snapshot_t *snap;
    es_t v, a;
    int64_t vn, an;
    atomic_int ready;
    atomic_int keyframes; /* video keyframes published */
} srv_t;

static srv_t S;

static void on_tick(uv_timer_t *t)
{
    (void)t;
    int64_t vi = S.vn++;
    int64_t vts = vi * 3600;
    while ((S.an * 1024) * 90000 / 48000 <= vts) {
        const ms_frame_t *src = S.a.frames[S.an % S.a.n];
        ms_frame_t *f = ms_frame_new(src->data, src->size);
        f->track = 1;
        f->flags = MS_FRAME_KEY;
        f->pts = f->dts = S.an++ * 1024;
        ms_hub_publish(S.hub, f);
        ms_frame_unref(f);
    }
    const ms_frame_t *src = S.v.frames[vi % S.v.n];
    ms_frame_t *f = ms_frame_new(src->data, src->size);
    f->flags = (uint8_t)(src->flags | (vi == 0 ? MS_FRAME_DISCONT : 0));
    f->pts = f->dts = vts;
    ms_hub_publish(S.hub, f);
    ms_frame_unref(f);
    if (src->flags & MS_FRAME_KEY)
        atomic_fetch_add(&S.keyframes, 1);
    if (vi == 30)
        atomic_store(&S.ready, 1);
}

static void on_closed(uv_handle_t *h)
{
    (void)h;
}

static void on_stop(uv_async_t *a)
{
    (void)a;
    ms_fmp4_live_stop(S.live);
    ms_snapshot_stop(S.snap);
    uv_close((uv_handle_t *)&S.timer, on_closed);
    uv_close((uv_handle_t *)&S.stop, on_closed);
}

/* The loop's handles (live, snapshot, timer) are made by the main thread
 * before this thread and the HTTP daemon's threads start, so both see
 * S.live and S.snap through pthread_create. (Made here, they were
 * published to the MHD workers only through the socket ffmpeg opened
 * later: a data race for TSan.) */
static void *loop_thread(void *arg)
{
    (void)arg;
    uv_run(&S.loop, UV_RUN_DEFAULT);
    return NULL;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *ver, const char *up, size_t *upn,
                               void **pp)
{
    (void)cls, (void)method, (void)ver, (void)up, (void)upn, (void)pp;
    int pending = 0;
    if (!strcmp(url, "/live.mp4"))
        return ms_live_mp4_respond(c, S.live, S.hub);
    if (!strcmp(url, "/videoshot.jpg"))
        return ms_snapshot_respond(c, S.snap, 0, &pending);
    if (!strcmp(url, "/preview.jpg"))
        return ms_snapshot_respond(c, S.snap, 1, &pending);
    if (!strcmp(url, "/preview.mp4"))
        return ms_snapshot_mp4_respond(c, S.snap);
    return MHD_NO;
}

/* Runs cmd; returns the number of stdout lines starting with key and the
 * value of the last; *errs counts other lines (stderr merged). */
static int run(const char *cmd, const char *key, int *last, int *errs)
{
    FILE *fp = popen(cmd, "r");
    assert_non_null(fp);
    char line[512];
    int n = 0;
    *errs = 0;
    while (fgets(line, sizeof line, fp)) {
        if (!strncmp(line, key, strlen(key))) {
            n++;
            *last = atoi(line + strlen(key));
        } else if (!strchr(line, '=')) {
            fprintf(stderr, "peer: %s", line);
            (*errs)++;
        }
    }
    pclose(fp);
    return n;
}

static void test_http_peers(void **st)
{
    (void)st;
    memset(&S, 0, sizeof S);
    assert_int_equal(uv_loop_init(&S.loop), 0);
    assert_int_equal(uv_async_init(&S.loop, &S.stop, on_stop), 0);
    S.hub = ms_hub_new("[test]");
    assert_int_equal(es_load_video(&S.v, "h264_320x240_25fps.h264", 0, 0), 50);
    assert_true(es_load_aac(&S.a, "aac_48k_mono.aac", 1) > 90);
    ms_codec_params_t tr[2] = {S.v.params, S.a.params};
    assert_int_equal(ms_hub_set_tracks(S.hub, tr, 2), 0);
    ms_fmp4_live_cfg_t lc = {.frag_ms = 500};
    ms_snapshot_cfg_t sc = {.preview_width = 160};
    S.live = ms_fmp4_live_new(&S.loop, S.hub, &lc);
    S.snap = ms_snapshot_new(&S.loop, S.hub, &sc);
    assert_non_null(S.live);
    assert_non_null(S.snap);
    assert_int_equal(uv_timer_init(&S.loop, &S.timer), 0);
    assert_int_equal(uv_timer_start(&S.timer, on_tick, 0, 40), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, loop_thread, NULL), 0);

    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME, 0, NULL, NULL,
        handler, NULL, MHD_OPTION_THREAD_POOL_SIZE, 4, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&(struct sockaddr_in){.sin_family = AF_INET,
                                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)},
        MHD_OPTION_END);
    assert_non_null(d);
    int port = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)->port;
    for (int i = 0; i < 300 && !atomic_load(&S.ready); i++)
        usleep(10000);
    assert_true(atomic_load(&S.ready));

    char cmd[512];
    int last = 0, errs = 0;
    /* 3 s of live.mp4 decoded by ffmpeg, no error line */
    snprintf(cmd, sizeof cmd,
             "timeout 20 ffmpeg -nostdin -v error -i http://127.0.0.1:%d/live.mp4 -t 3 -map 0:v:0 "
             "-f null - -progress pipe:1 2>&1",
             port);
    assert_true(run(cmd, "frame=", &last, &errs) > 0);
    assert_int_equal(errs, 0);
    assert_true(last >= 60);

    static const struct {
        const char *path;
        int w, h;
    } imgs[] = {{"videoshot.jpg", 320, 240}, {"preview.jpg", 160, 120}};
    int k0 = atomic_load(&S.keyframes);
    for (int i = 0; i < 2; i++) {
        snprintf(cmd, sizeof cmd,
                 "timeout 20 ffprobe -v error -show_entries stream=width,height -of "
                 "default=nw=1 http://127.0.0.1:%d/%s 2>&1",
                 port, imgs[i].path);
        int w = 0, h = 0;
        assert_int_equal(run(cmd, "width=", &w, &errs), 1);
        assert_int_equal(errs, 0);
        assert_int_equal(w, imgs[i].w);
        snprintf(cmd, sizeof cmd,
                 "timeout 20 ffprobe -v error -show_entries stream=height -of default=nw=1 "
                 "http://127.0.0.1:%d/%s 2>&1",
                 port, imgs[i].path);
        assert_int_equal(run(cmd, "height=", &h, &errs), 1);
        assert_int_equal(h, imgs[i].h);
    }
    snprintf(cmd, sizeof cmd,
             "timeout 20 ffprobe -v error -count_frames -show_entries stream=nb_read_frames -of "
             "default=nw=1 http://127.0.0.1:%d/preview.mp4 2>&1",
             port);
    assert_int_equal(run(cmd, "nb_read_frames=", &last, &errs), 1);
    assert_int_equal(errs, 0);
    assert_int_equal(last, 1);
    /* the JPEG was decoded at most once per keyframe seen: the one cached
     * when the requests began plus those published during them (a fixed
     * bound of 4 failed on a loaded machine, where the five requests took
     * long enough to see more keyframes) */
    int seen = atomic_load(&S.keyframes) - k0 + 1, dec = (int)ms_snapshot_decodes(S.snap);
    if (dec < 1 || dec > seen)
        fprintf(stderr, "decodes %d, keyframes seen %d\n", dec, seen);
    assert_true(dec >= 1 && dec <= seen);

    uv_async_send(&S.stop);
    pthread_join(th, NULL);
    MHD_stop_daemon(d);
    ms_hub_free(S.hub);
    assert_int_equal(uv_loop_close(&S.loop), 0);
    es_free(&S.v);
    es_free(&S.a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_http_peers)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
