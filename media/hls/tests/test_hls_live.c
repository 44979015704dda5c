/* Live HLS output driven by a real uv loop and a hub fed with real
 * H.264/H.265/AAC frames: segments/parts cut on keyframes, the sliding
 * window, LL-HLS blocking (playlist and preload-hinted part), waiter
 * timeout, discontinuities, and the produced media decoded by ffprobe. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <unistd.h>

#include "media/hls/hls.h"
#include "util/clock.h"
#include "media/ts/tests/es.h"

typedef struct {
    uv_loop_t loop;
    ms_hub_t *hub;
    es_t v, a;
    int with_audio;
    int64_t vnext, anext; /* global frame counters (timestamps continue) */
    int64_t base_v, base_a;
} fx_t;

static ms_frame_t *frame_clone(const ms_frame_t *src, int64_t ts, uint8_t flags)
{
    ms_frame_t *f = ms_frame_new(src->data, src->size);
    f->track = src->track;
    f->flags = flags;
    f->pts = f->dts = ts;
    return f;
}

/* Publishes `n` video frames (the clip looped) with the audio frames that
 * fall before each, timestamps continuing from the previous call. */
static void publish(fx_t *fx, int n, uint8_t first_flags)
{
    for (int i = 0; i < n; i++) {
        int64_t vi = fx->vnext++;
        int64_t vts = fx->base_v + vi * 3600;
        while (fx->with_audio && (fx->base_a + fx->anext * 1024) * 90000 / 48000 <= vts) {
            const ms_frame_t *src = fx->a.frames[fx->anext % fx->a.n];
            int64_t ats = fx->base_a + fx->anext++ * 1024;
            ms_frame_t *f = frame_clone(src, ats, MS_FRAME_KEY);
            f->wallclock_us = 1700000000000000LL + ats * 1000000 / 48000;
            ms_hub_publish(fx->hub, f);
            ms_frame_unref(f);
        }
        const ms_frame_t *src = fx->v.frames[vi % fx->v.n];
        ms_frame_t *f = frame_clone(src, vts, (uint8_t)(src->flags | (i == 0 ? first_flags : 0)));
        f->wallclock_us = 1700000000000000LL + vts * 100 / 9;
        ms_hub_publish(fx->hub, f);
        ms_frame_unref(f);
    }
}

static void fx_init(fx_t *fx, const char *vfile, int h265, int with_audio)
{
    memset(fx, 0, sizeof *fx);
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    fx->hub = ms_hub_new("[test]");
    assert_int_equal(es_load_video(&fx->v, vfile, h265, 0), 50);
    ms_codec_params_t tr[2] = {fx->v.params};
    fx->with_audio = with_audio;
    if (with_audio) {
        assert_true(es_load_aac(&fx->a, "aac_48k_mono.aac", 1) > 90);
        tr[1] = fx->a.params;
    }
    assert_int_equal(ms_hub_set_tracks(fx->hub, tr, with_audio ? 2 : 1), 0);
}

static void fx_done(fx_t *fx)
{
    ms_hub_free(fx->hub);
    /* Every handle closed: the loop ends and closes cleanly. */
    assert_int_equal(uv_run(&fx->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    es_free(&fx->v);
    es_free(&fx->a);
}

static char *get_playlist(ms_hls_t *h, int64_t msn, int part, int *rc)
{
    ms_hls_playlist_req_t req = {msn, part, NULL};
    ms_blob_t *b = NULL;
    *rc = ms_hls_playlist(h, &req, &b);
    if (*rc < 0)
        return NULL;
    char *s = strndup((const char *)b->data, b->len);
    ms_blob_unref(b);
    return s;
}

static void append_seg(ms_hls_t *h, const char *name, ms_buf_t *out)
{
    ms_blob_t *b = NULL;
    const char *ct = NULL;
    int64_t wm;
    int wp;
    assert_int_equal(ms_hls_segment(h, name, &b, &ct, &wm, &wp), 0);
    ms_buf_append(out, b->data, b->len);
    ms_blob_unref(b);
}

static int probe(const ms_buf_t *b, const char *type, char *codec)
{
    char path[] = "/tmp/ms_hls_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, b->data, b->len), (ssize_t)b->len);
    close(fd);
    int n = es_ffprobe(path, type, codec, 64);
    remove(path);
    return n;
}

static int fired;
static void on_fire(void *ud)
{
    (void)ud;
    fired++;
}

static void test_ts_live(void **state)
{
    (void)state;
    fx_t fx;
    fx_init(&fx, "h264_320x240_25fps.h264", 0, 1);
    ms_hls_cfg_t cfg = {MS_HLS_AUTO, 1000, 200, 3, "[test]"};
    ms_hls_t *h = ms_hls_new(&fx.loop, fx.hub, &cfg);
    assert_non_null(h);
    int rc;
    assert_null(get_playlist(h, -1, -1, &rc));
    assert_int_equal(rc, -ENOENT);

    publish(&fx, 20, MS_FRAME_DISCONT); /* 0.8 s: parts exist, no segment yet */
    assert_null(get_playlist(h, -1, -1, &rc));
    assert_int_equal(rc, -ENOENT);
    ms_blob_t *b = NULL;
    const char *ct;
    int64_t wm;
    int wp;
    assert_int_equal(ms_hls_segment(h, "part0.0.ts", &b, &ct, &wm, &wp), 0);
    assert_string_equal(ct, "video/mp2t");
    assert_int_equal(b->data[0], 0x47);
    assert_int_equal(b->data[5], 0x00); /* PAT first */
    ms_blob_unref(b);

    publish(&fx, 156, 0); /* frames 0..175: keyframes every second, 175 opens seg 7 */
    ms_hls_info_t info;
    ms_hls_get_info(h, &info);
    assert_int_equal(info.ready, 1);
    assert_int_equal(info.format, MS_HLS_TS);
    assert_int_equal(info.segments_total, 7); /* 0..6 complete, 7 open */
    assert_int_equal(info.segments, 3);
    assert_int_equal(info.first_msn, 4);
    assert_int_equal(info.last_msn, 6);

    char *pl = get_playlist(h, -1, -1, &rc);
    assert_non_null(pl);
    assert_non_null(strstr(pl, "#EXT-X-TARGETDURATION:1\n"));
    assert_non_null(strstr(pl, "#EXT-X-MEDIA-SEQUENCE:4\n"));
    assert_non_null(strstr(pl, "#EXTINF:1.000,\nseg6.ts\n"));
    assert_null(strstr(pl, "seg3.ts"));
    assert_non_null(strstr(pl, "#EXT-X-PART:DURATION=0.200,URI=\"part6.0.ts\",INDEPENDENT=YES\n"
                               "#EXT-X-PART:DURATION=0.200,URI=\"part6.1.ts\"\n"));
    /* The open segment 7 has 0 parts cut so far (the 8 s keyframe opened it). */
    assert_non_null(strstr(pl, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part7.0.ts\"\n"));
    free(pl);

    /* Window: 4..6 listed, 2..3 still served for slow clients, 1 gone. */
    assert_int_equal(ms_hls_segment(h, "seg2.ts", &b, &ct, &wm, &wp), 0);
    ms_blob_unref(b);
    assert_int_equal(ms_hls_segment(h, "seg1.ts", &b, &ct, &wm, &wp), -ENOENT);
    assert_int_equal(ms_hls_segment(h, "seg9.m4s", &b, &ct, &wm, &wp), -ENOENT);
    assert_int_equal(ms_hls_segment(h, "init1.mp4", &b, &ct, &wm, &wp), -ENOENT);

    /* What the output holds (ms_stream_hls_bytes): segments 2..6, 5 parts
     * each (the open segment 7 has no part yet). */
    ms_buf_t held = MS_BUF_INIT;
    for (int i = 2; i <= 6; i++) {
        char name[32];
        snprintf(name, sizeof name, "seg%d.ts", i);
        append_seg(h, name, &held);
    }
    ms_hls_get_info(h, &info);
    assert_int_equal(info.parts, 25);
    assert_int_equal(info.bytes_held, (int64_t)held.len);
    ms_buf_free(&held);

    /* A segment is the concatenation of its parts. */
    ms_buf_t parts = MS_BUF_INIT, seg = MS_BUF_INIT;
    for (int i = 0; i < 5; i++) {
        char name[32];
        snprintf(name, sizeof name, "part6.%d.ts", i);
        append_seg(h, name, &parts);
    }
    assert_int_equal(ms_hls_segment(h, "part6.5.ts", &b, &ct, &wm, &wp), -ENOENT);
    append_seg(h, "seg6.ts", &seg);
    assert_int_equal(parts.len, seg.len);
    assert_memory_equal(parts.data, seg.data, seg.len);
    ms_buf_free(&parts);

    /* Segments 4..6 played in sequence decode completely (3 s). */
    ms_buf_reset(&seg);
    append_seg(h, "seg4.ts", &seg);
    append_seg(h, "seg5.ts", &seg);
    append_seg(h, "seg6.ts", &seg);
    char codec[64];
    assert_int_equal(probe(&seg, "video", codec), 75);
    assert_string_equal(codec, "h264");
    int na = probe(&seg, "audio", codec);
    assert_true(na >= 138 && na <= 142); /* 3 s of 1024-sample frames at 48 kHz */
    assert_string_equal(codec, "aac");
    ms_buf_free(&seg);

    /* Blocking reload: part 7.0 does not exist yet. */
    assert_null(get_playlist(h, 7, 0, &rc));
    assert_int_equal(rc, -EAGAIN);
    assert_null(get_playlist(h, 10, -1, &rc));
    assert_int_equal(rc, -ERANGE);
    assert_int_equal(ms_hls_segment(h, "part7.0.ts", &b, &ct, &wm, &wp), -EAGAIN);
    assert_int_equal(wm, 7);
    assert_int_equal(wp, 0);
    fired = 0;
    assert_int_equal(ms_hls_wait(h, 7, 0, on_fire, NULL), 0);
    assert_int_equal(ms_hls_wait(h, 6, -1, on_fire, NULL), 1); /* already there */
    publish(&fx, 3, 0);
    assert_int_equal(fired, 0); /* part 7.0 is cut when its 5th frame (200 ms) is written */
    publish(&fx, 1, 0);
    assert_int_equal(fired, 1);
    pl = get_playlist(h, 7, 0, &rc);
    assert_non_null(pl);
    assert_non_null(strstr(pl, "URI=\"part7.0.ts\",INDEPENDENT=YES\n"));
    assert_non_null(strstr(pl, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part7.1.ts\"\n"));
    free(pl);
    assert_int_equal(ms_hls_segment(h, "part7.0.ts", &b, &ct, &wm, &wp), 0);
    ms_blob_unref(b);

    /* Token carried into every URI. */
    ms_hls_playlist_req_t req = {-1, -1, "token=t1"};
    assert_int_equal(ms_hls_playlist(h, &req, &b), 0);
    char *tpl = strndup((const char *)b->data, b->len);
    assert_non_null(strstr(tpl, "seg6.ts?token=t1\n"));
    assert_non_null(strstr(tpl, "part7.1.ts?token=t1\"\n"));
    free(tpl);
    ms_blob_unref(b);

    ms_hls_latency_t lat;
    ms_hls_get_latency(h, &lat);
    assert_true(lat.count >= 36); /* 5 parts per segment, 7 segments + 1 */
    assert_int_equal(lat.buckets[MS_HLS_LAT_BUCKETS - 1], lat.count);

    /* Stop wakes waiters; requests then fail with -ESHUTDOWN. */
    assert_int_equal(ms_hls_wait(h, 9, 0, on_fire, NULL), 0);
    ms_hls_ref(h);
    ms_hls_stop(h);
    assert_int_equal(fired, 2);
    assert_null(get_playlist(h, -1, -1, &rc));
    assert_int_equal(rc, -ESHUTDOWN);
    assert_int_equal(ms_hls_wait(h, 9, 0, on_fire, NULL), -ESHUTDOWN);
    ms_hls_unref(h);
    fx_done(&fx);
}

static void test_wait_timeout(void **state)
{
    (void)state;
    fx_t fx;
    fx_init(&fx, "h264_320x240_25fps.h264", 0, 0);
    ms_hls_cfg_t cfg = {MS_HLS_TS, 200, 100, 3, "[test]"};
    ms_hls_t *h = ms_hls_new(&fx.loop, fx.hub, &cfg);
    publish(&fx, 30, MS_FRAME_DISCONT);
    fired = 0;
    assert_int_equal(ms_hls_wait(h, 100, 0, on_fire, NULL), 0);
    int64_t t0 = ms_mono_ms();
    for (int i = 0; i < 100 && !fired; i++)
        uv_run(&fx.loop, UV_RUN_ONCE);
    int64_t dt = ms_mono_ms() - t0;
    assert_int_equal(fired, 1);
    assert_true(dt >= 550 && dt < 2000); /* 3 target durations = 600 ms */
    ms_hls_stop(h);
    fx_done(&fx);
}

/* seq_base: an output that continues another server's timeline numbers its
 * segments and discontinuities from the base, the first segment is a
 * discontinuity; a wait for msn -1 fires once the first segment exists. */
static void test_seq_base(void **state)
{
    (void)state;
    fx_t fx;
    fx_init(&fx, "h264_320x240_25fps.h264", 0, 0);
    ms_hls_cfg_t cfg = {MS_HLS_TS, 1000, 200, 3, "[test]", 17637000000};
    ms_hls_t *h = ms_hls_new(&fx.loop, fx.hub, &cfg);
    assert_non_null(h);
    fired = 0;
    assert_int_equal(ms_hls_wait(h, -1, -1, on_fire, NULL), 0);
    publish(&fx, 20, MS_FRAME_DISCONT); /* parts, no segment yet */
    for (int i = 0; i < 5; i++)
        uv_run(&fx.loop, UV_RUN_NOWAIT);
    assert_int_equal(fired, 0);
    publish(&fx, 40, 0); /* the 1 s keyframe closes the first segment */
    for (int i = 0; i < 20 && !fired; i++)
        uv_run(&fx.loop, UV_RUN_NOWAIT);
    assert_int_equal(fired, 1);
    assert_int_equal(ms_hls_wait(h, -1, -1, on_fire, NULL), 1); /* ready: not registered */
    int rc;
    char *pl = get_playlist(h, -1, -1, &rc);
    assert_non_null(pl);
    assert_non_null(strstr(pl, "#EXT-X-MEDIA-SEQUENCE:17637000000\n"));
    assert_non_null(strstr(pl, "#EXT-X-DISCONTINUITY-SEQUENCE:17637000000\n"));
    assert_non_null(strstr(pl, "#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:"));
    assert_non_null(strstr(pl, "seg17637000000.ts\n"));
    free(pl);
    publish(&fx, 100, 0); /* 4 more segments: the first leaves the window */
    pl = get_playlist(h, -1, -1, &rc);
    assert_non_null(pl);
    assert_null(strstr(pl, "#EXT-X-DISCONTINUITY\n"));
    assert_non_null(strstr(pl, "#EXT-X-DISCONTINUITY-SEQUENCE:17637000001\n"));
    free(pl);
    ms_hls_stop(h);
    fx_done(&fx);
}

/* Expired segments are kept only while someone watches (a playlist was
 * asked lately): unwatched, a segment leaving the window is freed at once. */
static void test_expired_kept_while_watched(void **state)
{
    (void)state;
    fx_t fx;
    fx_init(&fx, "h264_320x240_25fps.h264", 0, 0);
    ms_hls_cfg_t cfg = {MS_HLS_TS, 1000, 200, 3, "[test]"};
    ms_hls_t *h = ms_hls_new(&fx.loop, fx.hub, &cfg);
    assert_non_null(h);
    publish(&fx, 176, MS_FRAME_DISCONT); /* segments 0..6 complete, 4..6 listed */
    ms_hls_info_t info;
    ms_hls_get_info(h, &info);
    assert_int_equal(info.first_msn, 4);
    assert_int_equal(info.segments, 3);
    ms_blob_t *b = NULL;
    const char *ct;
    int64_t wm;
    int wp;
    assert_int_equal(ms_hls_segment(h, "seg3.ts", &b, &ct, &wm, &wp), -ENOENT); /* freed */
    assert_int_equal(ms_hls_segment(h, "seg4.ts", &b, &ct, &wm, &wp), 0);
    ms_blob_unref(b);
    int64_t unwatched = info.bytes_held;
    int rc;
    free(get_playlist(h, -1, -1, &rc)); /* a player arrives */
    assert_int_equal(rc, 0);
    publish(&fx, 50, 0); /* two more segments: 4 and 5 leave the window */
    ms_hls_get_info(h, &info);
    assert_int_equal(info.first_msn, 6);
    assert_int_equal(ms_hls_segment(h, "seg4.ts", &b, &ct, &wm, &wp), 0); /* kept */
    ms_blob_unref(b);
    assert_int_equal(ms_hls_segment(h, "seg5.ts", &b, &ct, &wm, &wp), 0);
    ms_blob_unref(b);
    assert_true(info.bytes_held > unwatched);
    ms_hls_stop(h);
    fx_done(&fx);
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* H.265 -> fMP4; a reconnect (new track set) gets a discontinuity and a new
 * init segment; a DISCONT flag inside a session gets a discontinuity. */
static void test_fmp4_discont(void **state)
{
    (void)state;
    fx_t fx;
    fx_init(&fx, "h265_320x240_25fps.h265", 1, 0);
    ms_hls_cfg_t cfg = {MS_HLS_AUTO, 1000, 200, 10, "[test]"};
    ms_hls_t *h = ms_hls_new(&fx.loop, fx.hub, &cfg);
    publish(&fx, 50, MS_FRAME_DISCONT); /* seg0 complete, seg1 open */
    /* Timeline restarts (camera clock reset) inside the session. */
    fx.base_v = -fx.vnext * 3600 + 5 * 90000;
    publish(&fx, 50, MS_FRAME_DISCONT);
    /* Reconnect: new track set, timestamps restart. */
    assert_int_equal(ms_hub_set_tracks(fx.hub, &fx.v.params, 1), 0);
    fx.base_v = -fx.vnext * 3600;
    publish(&fx, 51, MS_FRAME_DISCONT);

    int rc;
    char *pl = get_playlist(h, -1, -1, &rc);
    assert_non_null(pl);
    ms_hls_info_t info;
    ms_hls_get_info(h, &info);
    assert_int_equal(info.format, MS_HLS_FMP4);
    assert_int_equal(info.segments_total, 6);
    assert_int_equal(count(pl, "#EXT-X-DISCONTINUITY\n"), 2);
    assert_non_null(strstr(pl, "#EXT-X-MAP:URI=\"init1.mp4\"\n"));
    assert_non_null(strstr(pl, "#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init2.mp4\"\n"));
    assert_non_null(strstr(pl, "#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME"));
    assert_non_null(strstr(pl, "seg3.m4s"));
    free(pl);

    /* init1 + segments 0..3 (same track set) decode completely. */
    ms_buf_t all = MS_BUF_INIT;
    append_seg(h, "init1.mp4", &all);
    for (int i = 0; i < 4; i++) {
        char name[32];
        snprintf(name, sizeof name, "seg%d.m4s", i);
        append_seg(h, name, &all);
    }
    char codec[64];
    assert_int_equal(probe(&all, "video", codec), 100);
    assert_string_equal(codec, "hevc");
    ms_buf_reset(&all);
    append_seg(h, "init2.mp4", &all);
    append_seg(h, "seg4.m4s", &all);
    append_seg(h, "seg5.m4s", &all);
    assert_int_equal(probe(&all, "video", codec), 50);
    ms_buf_free(&all);
    ms_hls_stop(h);
    fx_done(&fx);
}

/* Audio-only AAC: segments cut by time, TS with the PCR on the audio PID. */
static void test_audio_only(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    ms_hub_t *hub = ms_hub_new("[test]");
    es_t a;
    assert_true(es_load_aac(&a, "aac_48k_mono.aac", 0) > 90);
    ms_codec_params_t tr[2] = {a.params};
    tr[1].codec = MS_CODEC_PCMU; /* skipped */
    tr[1].kind = MS_TRACK_AUDIO;
    tr[1].clock_rate = 8000;
    assert_int_equal(ms_hub_set_tracks(hub, tr, 2), 0);
    ms_hls_cfg_t cfg = {MS_HLS_AUTO, 1000, 200, 3, "[test]"};
    ms_hls_t *h = ms_hls_new(&loop, hub, &cfg);
    assert_non_null(h);
    for (int i = 0; i < 150; i++) { /* 3.2 s */
        ms_frame_t *f = frame_clone(a.frames[i % a.n], (int64_t)i * 1024,
                                    (uint8_t)(MS_FRAME_KEY | (i == 0 ? MS_FRAME_DISCONT : 0)));
        f->wallclock_us = 1700000000000000LL + (int64_t)i * 1024 * 1000000 / 48000;
        ms_hub_publish(hub, f);
        ms_frame_unref(f);
        ms_frame_t *g = ms_frame_new("\xff\xff", 2); /* G.711 frame: ignored */
        g->track = 1;
        g->flags = MS_FRAME_KEY;
        ms_hub_publish(hub, g);
        ms_frame_unref(g);
    }
    ms_hls_info_t info;
    ms_hls_get_info(h, &info);
    assert_int_equal(info.format, MS_HLS_TS);
    assert_int_equal(info.segments_total, 3);
    int rc;
    char *pl = get_playlist(h, -1, -1, &rc);
    assert_non_null(pl);
    assert_non_null(strstr(pl, "#EXTINF:1.003,\nseg0.ts\n"));
    free(pl);
    ms_buf_t all = MS_BUF_INIT;
    append_seg(h, "seg0.ts", &all);
    append_seg(h, "seg1.ts", &all);
    char codec[64];
    assert_int_equal(probe(&all, "audio", codec), 94); /* 2 x 47 frames of 21.3 ms */
    assert_string_equal(codec, "aac");
    ms_buf_free(&all);
    ms_hls_stop(h);
    ms_hub_free(hub);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
    es_free(&a);
}

/* Publishes n video frames that are all P-frames (a camera that stopped
 * sending keyframes), timestamps continuing. */
static void publish_nokey(fx_t *fx, int n)
{
    for (int i = 0; i < n; i++) {
        int64_t vi = fx->vnext++;
        const ms_frame_t *src = fx->v.frames[vi % fx->v.n];
        if (src->flags & MS_FRAME_KEY)
            src = fx->v.frames[(vi + 1) % fx->v.n];
        ms_frame_t *f = frame_clone(src, fx->base_v + vi * 3600, 0);
        f->wallclock_us = 1700000000000000LL + (fx->base_v + vi * 3600) * 100 / 9;
        ms_hub_publish(fx->hub, f);
        ms_frame_unref(f);
    }
}

/* No keyframe for longer than the hub's limit: the open segment is cut
 * (counted, said), nothing is muxed until the next keyframe, which starts a
 * decodable segment after a discontinuity. */
static void test_segment_limit_without_keyframes(void **state)
{
    (void)state;
    fx_t fx;
    fx_init(&fx, "h264_320x240_25fps.h264", 0, 0);
    ms_hub_set_limits(fx.hub, 0, 1000); /* 1 s, so the 4 x target (2 s) rules */
    ms_hls_cfg_t cfg = {MS_HLS_TS, 500, 100, 3, "[test]"};
    ms_hls_t *h = ms_hls_new(&fx.loop, fx.hub, &cfg);
    publish(&fx, 50, MS_FRAME_DISCONT);
    ms_hls_info_t before;
    ms_hls_get_info(h, &before);
    publish_nokey(&fx, 500); /* 20 s of P-frames */
    ms_hub_info_t hi;
    ms_hub_get_info(fx.hub, &hi);
    assert_int_equal(hi.limit_hits, 1);
    assert_non_null(strstr(hi.limit_what, "HLS segment cut"));
    ms_hls_info_t mid;
    ms_hls_get_info(h, &mid);
    /* one segment of at most 2 s was added, then nothing */
    assert_int_equal(mid.segments_total, before.segments_total + 1);
    int rc;
    char *pl = get_playlist(h, -1, -1, &rc);
    assert_non_null(pl);
    assert_non_null(strstr(pl, "#EXTINF:2.0"));
    free(pl);
    publish(&fx, 75, 0); /* keyframes again (the clip loops on its IDR) */
    ms_hls_info_t after;
    ms_hls_get_info(h, &after);
    assert_true(after.segments_total >= mid.segments_total + 2);
    pl = get_playlist(h, -1, -1, &rc);
    assert_non_null(pl);
    assert_non_null(strstr(pl, "#EXT-X-DISCONTINUITY\n"));
    free(pl);
    char name[64];
    snprintf(name, sizeof name, "seg%lld.ts", (long long)after.last_msn);
    ms_buf_t b = MS_BUF_INIT;
    append_seg(h, name, &b);
    char codec[64];
    assert_true(probe(&b, "v", codec) > 0);
    ms_buf_free(&b);
    ms_hls_stop(h);
    fx_done(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ts_live),
        cmocka_unit_test(test_wait_timeout),
        cmocka_unit_test(test_seq_base),
        cmocka_unit_test(test_expired_kept_while_watched),
        cmocka_unit_test(test_fmp4_discont),
        cmocka_unit_test(test_audio_only),
        cmocka_unit_test(test_segment_limit_without_keyframes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
