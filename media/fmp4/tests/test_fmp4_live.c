/* Live fMP4 output on a real hub fed with real H.264 + AAC frames: the body
 * a subscriber reads (init + fragments) is decoded by ffprobe without
 * errors; a late subscriber starts on a keyframe fragment; a slow one drops
 * to the next keyframe fragment (still decodable) and is ended when it
 * stays behind; a discontinuity ends begun bodies; wake is called. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <unistd.h>

#include "media/fmp4/live.h"
#include "media/ts/tests/es.h"

static char tmpdir[200];

typedef struct {
    ms_hub_t *hub;
    es_t v, a;
    int64_t vn, an;
} fx_t;

static void publish(fx_t *fx, int n, uint8_t first_flags)
{
    for (int i = 0; i < n; i++) {
        int64_t vi = fx->vn++;
        int64_t vts = vi * 3600;
        while ((fx->an * 1024) * 90000 / 48000 <= vts) {
            const ms_frame_t *src = fx->a.frames[fx->an % fx->a.n];
            ms_frame_t *f = ms_frame_new(src->data, src->size);
            f->track = 1;
            f->flags = MS_FRAME_KEY;
            f->pts = f->dts = fx->an++ * 1024;
            ms_hub_publish(fx->hub, f);
            ms_frame_unref(f);
        }
        const ms_frame_t *src = fx->v.frames[vi % fx->v.n];
        ms_frame_t *f = ms_frame_new(src->data, src->size);
        f->track = 0;
        f->flags = (uint8_t)(src->flags | (i == 0 ? first_flags : 0));
        f->pts = f->dts = vts;
        ms_hub_publish(fx->hub, f);
        ms_frame_unref(f);
    }
}

static void fx_init(fx_t *fx)
{
    memset(fx, 0, sizeof *fx);
    fx->hub = ms_hub_new("[test]");
    assert_int_equal(es_load_video(&fx->v, "h264_320x240_25fps.h264", 0, 0), 50);
    assert_true(es_load_aac(&fx->a, "aac_48k_mono.aac", 1) > 90);
    ms_codec_params_t tr[2] = {fx->v.params, fx->a.params};
    assert_int_equal(ms_hub_set_tracks(fx->hub, tr, 2), 0);
}

static void fx_done(fx_t *fx)
{
    ms_hub_free(fx->hub);
    es_free(&fx->v);
    es_free(&fx->a);
}

static int wakes;
static void on_wake(void *ud)
{
    (void)ud;
    wakes++;
}

/* Reads everything queued into a file; returns the last rc. */
static int drain(ms_fmp4_sub_t *s, FILE *fp, int *blobs)
{
    ms_blob_t *b;
    int rc;
    while ((rc = ms_fmp4_sub_next(s, &b)) == 0) {
        if (fp)
            assert_int_equal(fwrite(b->data, 1, b->len, fp), b->len);
        (*blobs)++;
        ms_blob_unref(b);
    }
    return rc;
}

static int keyframes_in(const fx_t *fx, int64_t from, int64_t to)
{
    int k = 0;
    for (int64_t i = from; i < to; i++)
        k += (fx->v.frames[i % fx->v.n]->flags & MS_FRAME_KEY) != 0;
    return k;
}

static void test_live_body(void **st)
{
    (void)st;
    fx_t fx;
    fx_init(&fx);
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    ms_fmp4_live_cfg_t cfg = {.frag_ms = 500, .log_ctx = "[test]"};
    ms_fmp4_live_t *l = ms_fmp4_live_new(&loop, fx.hub, &cfg);
    assert_non_null(l);
    int err = 1;
    ms_fmp4_sub_t *a = ms_fmp4_live_subscribe(l, 0, on_wake, NULL, &err);
    assert_non_null(a);
    assert_int_equal(err, 0);
    uv_run(&loop, UV_RUN_NOWAIT); /* the first subscriber starts the muxing */

    char pa[300], pb[300];
    snprintf(pa, sizeof pa, "%s/a.mp4", tmpdir);
    snprintf(pb, sizeof pb, "%s/b.mp4", tmpdir);
    FILE *fa = fopen(pa, "wb"), *fb = fopen(pb, "wb");
    assert_non_null(fa);
    assert_non_null(fb);
    int na = 0, nb = 0;
    wakes = 0;
    assert_int_equal(drain(a, fa, &na), -EAGAIN); /* init only */
    assert_int_equal(na, 1);
    publish(&fx, 60, MS_FRAME_DISCONT);
    assert_true(wakes >= 1);
    assert_int_equal(drain(a, fa, &na), -EAGAIN);

    /* a late subscriber: init + the fragments from the last keyframe on */
    ms_fmp4_sub_t *b = ms_fmp4_live_subscribe(l, 0, on_wake, NULL, &err);
    assert_non_null(b);
    assert_int_equal(drain(b, fb, &nb), -EAGAIN);
    assert_true(nb >= 2);
    publish(&fx, 140, 0);
    assert_int_equal(drain(a, fa, &na), -EAGAIN);
    assert_int_equal(drain(b, fb, &nb), -EAGAIN);
    fclose(fa);
    fclose(fb);
    ms_fmp4_live_stats_t stx;
    ms_fmp4_live_stats(l, &stx);
    assert_int_equal(stx.subscribers, 2);
    assert_int_equal(stx.ready, 1);
    assert_int_equal((uint64_t)na, 1 + stx.fragments);
    /* 200 frames of 40 ms: at least one fragment per 500 ms and per GOP */
    assert_true(stx.fragments >= 15);
    assert_true(stx.fragments >= (uint64_t)keyframes_in(&fx, 0, 200) - 1);

    char codec[32];
    int va = es_ffprobe(pa, "video", codec, sizeof codec);
    assert_string_equal(codec, "h264");
    assert_true(va >= 185 && va <= 200); /* the last open fragment is not out yet */
    assert_true(es_ffprobe(pa, "audio", codec, sizeof codec) > 250);
    assert_string_equal(codec, "aac");
    int vb = es_ffprobe(pb, "video", codec, sizeof codec);
    assert_true(vb > 100 && vb < va);

    /* a timeline discontinuity ends begun bodies */
    publish(&fx, 10, MS_FRAME_DISCONT);
    ms_blob_t *x;
    assert_int_equal(ms_fmp4_sub_next(a, &x), -EPIPE);
    ms_fmp4_sub_close(a);
    ms_fmp4_sub_close(b);
    ms_fmp4_live_t *held = ms_fmp4_live_ref(l); /* as an HTTP thread would */
    ms_fmp4_live_stop(l);
    assert_null(ms_fmp4_live_subscribe(held, 0, on_wake, NULL, &err));
    assert_int_equal(err, -ESHUTDOWN);
    ms_fmp4_live_unref(held);
    uv_run(&loop, UV_RUN_NOWAIT); /* closes the handles */
    assert_int_equal(uv_loop_close(&loop), 0);
    fx_done(&fx);
}

static void test_live_slow(void **st)
{
    (void)st;
    fx_t fx;
    fx_init(&fx);
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    ms_fmp4_live_cfg_t cfg = {.frag_ms = 200};
    ms_fmp4_live_t *l = ms_fmp4_live_new(&loop, fx.hub, &cfg);
    int err;
    /* queue of 4 fragments: reads after every 60 frames (overflowing) */
    ms_fmp4_sub_t *s = ms_fmp4_live_subscribe(l, 4, on_wake, NULL, &err);
    ms_fmp4_sub_t *dead = ms_fmp4_live_subscribe(l, 4, on_wake, NULL, &err);
    uv_run(&loop, UV_RUN_NOWAIT);
    char p[300];
    snprintf(p, sizeof p, "%s/slow.mp4", tmpdir);
    FILE *fp = fopen(p, "wb");
    int n = 0, nd = 0;
    ms_blob_t *b;
    assert_int_equal(ms_fmp4_sub_next(dead, &b), 0); /* the init only */
    ms_blob_unref(b);
    for (int round = 0; round < 4; round++) {
        publish(&fx, 60, round == 0 ? MS_FRAME_DISCONT : 0);
        assert_int_equal(drain(s, fp, &n), -EAGAIN);
    }
    fclose(fp);
    assert_true(ms_fmp4_sub_dropped(s) > 0);
    /* drops happen at fragment boundaries and resume on a keyframe: clean */
    char codec[32];
    int v = es_ffprobe(p, "video", codec, sizeof codec);
    assert_true(v > 20 && v < 240);
    /* the one that never reads is ended after MS_FMP4_LIVE_STRIKES overflows
     * (what was queued before is still handed out first) */
    int rc = drain(dead, NULL, &nd);
    assert_int_equal(rc, -EPIPE);
    assert_true(nd <= 4);
    ms_fmp4_sub_close(dead);
    ms_fmp4_live_stop(l);
    /* after stop: queued blobs, then -ESHUTDOWN */
    assert_int_equal(drain(s, NULL, &n), -ESHUTDOWN);
    ms_fmp4_sub_close(s);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&loop), 0);
    fx_done(&fx);
}

/* With no subscriber nothing is muxed or kept; the first subscriber starts
 * at once on the hub's GOP cache; after the last one leaves it is idle. */
static void test_live_lazy(void **st)
{
    (void)st;
    fx_t fx;
    fx_init(&fx);
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    ms_fmp4_live_cfg_t cfg = {.frag_ms = 200};
    ms_fmp4_live_t *l = ms_fmp4_live_new(&loop, fx.hub, &cfg);
    assert_non_null(l);
    publish(&fx, 60, MS_FRAME_DISCONT);
    uv_run(&loop, UV_RUN_NOWAIT);
    ms_fmp4_live_stats_t stx;
    ms_fmp4_live_stats(l, &stx);
    assert_int_equal(stx.ready, 1);
    assert_int_equal(stx.fragments, 0);
    int err;
    ms_fmp4_sub_t *s = ms_fmp4_live_subscribe(l, 0, on_wake, NULL, &err);
    assert_non_null(s);
    uv_run(&loop, UV_RUN_NOWAIT);
    int n = 0;
    char p[300];
    snprintf(p, sizeof p, "%s/lazy.mp4", tmpdir);
    FILE *fp = fopen(p, "wb");
    assert_non_null(fp);
    assert_int_equal(drain(s, fp, &n), -EAGAIN);
    fclose(fp);
    assert_true(n >= 2); /* init + fragments of the GOP cache, no new frame */
    char codec[32];
    assert_true(es_ffprobe(p, "video", codec, sizeof codec) >= 1);
    assert_string_equal(codec, "h264");
    ms_fmp4_live_stats(l, &stx);
    uint64_t made = stx.fragments;
    assert_true(made >= 1);
    ms_fmp4_sub_close(s);
    uv_run(&loop, UV_RUN_NOWAIT);
    publish(&fx, 60, 0);
    ms_fmp4_live_stats(l, &stx);
    assert_true(stx.fragments == made);
    ms_fmp4_live_stop(l);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&loop), 0);
    fx_done(&fx);
}

/* Video P-frames only (a camera that stopped sending keyframes). */
static void publish_nokey(fx_t *fx, int n)
{
    for (int i = 0; i < n; i++) {
        int64_t vi = fx->vn++;
        const ms_frame_t *src = fx->v.frames[vi % fx->v.n];
        if (src->flags & MS_FRAME_KEY)
            src = fx->v.frames[(vi + 1) % fx->v.n];
        ms_frame_t *f = ms_frame_new(src->data, src->size);
        f->track = 0;
        f->flags = 0;
        f->pts = f->dts = vi * 3600;
        ms_hub_publish(fx->hub, f);
        ms_frame_unref(f);
    }
}

/* No keyframe for longer than the hub's byte limit: the kept GOP is dropped
 * (counted once) and a new subscriber waits for the next keyframe; a
 * subscriber that does not read holds at most the limit. */
static void test_live_keyframe_limit(void **st)
{
    (void)st;
    fx_t fx;
    fx_init(&fx);
    ms_hub_set_limits(fx.hub, 40000, 0);
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    ms_fmp4_live_cfg_t cfg = {.frag_ms = 200};
    ms_fmp4_live_t *l = ms_fmp4_live_new(&loop, fx.hub, &cfg);
    int err;
    ms_fmp4_sub_t *idle = ms_fmp4_live_subscribe(l, 64, on_wake, NULL, &err);
    uv_run(&loop, UV_RUN_NOWAIT);
    publish(&fx, 25, MS_FRAME_DISCONT);
    publish_nokey(&fx, 250); /* 10 s of P-frames */
    ms_hub_info_t hi;
    ms_hub_get_info(fx.hub, &hi);
    assert_true(hi.limit_hits >= 1);
    assert_true(hi.limit_waiting);
    assert_true(ms_fmp4_sub_dropped(idle) > 0); /* its queue hit the byte limit */
    ms_fmp4_sub_t *late = ms_fmp4_live_subscribe(l, 0, on_wake, NULL, &err);
    uv_run(&loop, UV_RUN_NOWAIT);
    int n = 0;
    assert_int_equal(drain(late, NULL, &n), -EAGAIN);
    assert_int_equal(n, 1); /* the init segment only: no fragment to start from */
    publish(&fx, 30, 0);    /* keyframes again */
    n = 0;
    assert_int_equal(drain(late, NULL, &n), -EAGAIN);
    assert_true(n >= 1); /* fragments from the keyframe on */
    ms_fmp4_sub_close(late);
    ms_fmp4_sub_close(idle);
    ms_fmp4_live_stop(l);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&loop), 0);
    fx_done(&fx);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "%s/ms_live_XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_live_body),
        cmocka_unit_test(test_live_slow),
        cmocka_unit_test(test_live_lazy),
        cmocka_unit_test(test_live_keyframe_limit),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[260];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0 && !rc)
        rc = 1;
    return rc;
}
