/* RTP timestamp timeline (media/rtp/timeline.c) through the whole receiver:
 * a frame 1 h ahead, a step 1 h back, a lost run of packets, 32-bit wrap
 * (RFC 3550 section 5.1), a drifting camera clock, a network stall, audio,
 * A/V sync across a video jump, the RTCP SR mapping across a jump. Output
 * dts must stay strictly increasing and continuous, with MS_FRAME_DISCONT
 * exactly where a new timeline starts (a lasting jump; a one-frame outlier
 * is absorbed) and the counters matching. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "media/rtp/rtp_internal.h"
#include "media/rtp/tests/rtp_test_util.h"

#define N_AUS  64
#define HOUR90 (3600ll * 90000)
#define HOUR8  (3600ll * 8000)
static uint8_t *g_es;
static size_t g_es_len;
static t_au_t g_aus[N_AUS];
static size_t g_n_aus;

static int setup(void **state)
{
    (void)state;
    g_es = t_load("h264_320x240_25fps.h264", &g_es_len);
    if (!g_es)
        return -1;
    g_n_aus = t_split_aus(0, g_es, g_es_len, g_aus, N_AUS);
    return g_n_aus == 50 && g_aus[0].key && g_aus[25].key ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    free(g_es);
    return 0;
}

static ms_rtp_receiver_t *new_rx(t_out_t *o, ms_codec_t codec, uint32_t rate, int pt)
{
    ms_rtp_receiver_cfg_t c = {0};
    c.codec = codec;
    c.clock_rate = rate;
    c.payload_type = pt;
    c.reorder_window = 0; /* TCP: packets are released at once */
    c.on_frame = t_on_frame;
    c.on_params = t_on_params;
    c.ud = o;
    ms_rtp_receiver_t *r = ms_rtp_receiver_new(&c, NULL, 0);
    assert_non_null(r);
    return r;
}

/* Video: 50 frames of the test stream, frame i with RTP timestamp ts[i],
 * arriving at 40 ms * i (+ 1 s); frames in skip are not sent. */
static ms_rtp_receiver_t *run_video(t_out_t *o, const uint32_t *ts, const int *skip)
{
    ms_rtp_receiver_t *r = new_rx(o, MS_CODEC_H264, 90000, 96);
    t_pkts_t *p = calloc(1, sizeof *p);
    p->ssrc = 0x11223344;
    p->pt = 96;
    for (size_t i = 0; i < g_n_aus; i++) {
        size_t n0 = p->n;
        t_packetize(0, p, &g_aus[i], ts[i], 1000, 0, 0);
        if (skip && skip[i])
            continue;
        for (size_t k = n0; k < p->n; k++)
            assert_int_equal(ms_rtp_receiver_rtp(r, p->pkts[k].data, p->pkts[k].len,
                                                 1000000 + (int64_t)i * 40000),
                             0);
    }
    ms_rtp_receiver_flush(r);
    t_pkts_free(p);
    free(p);
    return r;
}

/* dts strictly increasing; returns how many frames carry MS_FRAME_DISCONT */
static int check_mono(const t_out_t *o)
{
    int disc = 0;
    for (size_t i = 0; i < o->n; i++) {
        if (o->f[i]->flags & MS_FRAME_DISCONT)
            disc++;
        if (i)
            assert_true(o->f[i]->dts > o->f[i - 1]->dts);
        assert_true(o->f[i]->pts >= o->f[i]->dts);
    }
    return disc;
}

static void test_video_one_frame_hour_ahead(void **state)
{
    (void)state;
    uint32_t ts[50];
    for (int i = 0; i < 50; i++)
        ts[i] = 1000u + (uint32_t)i * 3600u;
    ts[20] += (uint32_t)HOUR90; /* one frame 1 h ahead, then normal again */
    t_out_t o = {0};
    ms_rtp_receiver_t *r = run_video(&o, ts, NULL);
    assert_int_equal(o.n, 50);
    /* absorbed: the outlier keeps its place on the timeline, no cut */
    assert_int_equal(check_mono(&o), 0);
    /* continuous: one frame interval everywhere, and not shifted after */
    for (size_t i = 1; i < o.n; i++)
        assert_int_equal(o.f[i]->dts - o.f[i - 1]->dts, 3600);
    assert_int_equal(o.f[49]->dts, 49 * 3600);
    assert_int_equal(o.f[49]->pts, 49 * 3600);
    const ms_rtp_stats_t *s = ms_rtp_receiver_stats(r);
    assert_int_equal(s->ts_jumps, 1);
    assert_int_equal(s->ts_resyncs, 0);
    ms_rtp_receiver_free(r);
    t_out_free(&o);
}

static void test_video_step_hour_back(void **state)
{
    (void)state;
    uint32_t ts[50];
    for (int i = 0; i < 50; i++)
        ts[i] = 5000u + (uint32_t)i * 3600u - (i >= 20 ? (uint32_t)HOUR90 : 0u);
    t_out_t o = {0};
    ms_rtp_receiver_t *r = run_video(&o, ts, NULL);
    assert_int_equal(o.n, 50);
    assert_int_equal(check_mono(&o), 1);
    assert_true(o.f[20]->flags & MS_FRAME_DISCONT);
    for (size_t i = 1; i < o.n; i++)
        assert_int_equal(o.f[i]->dts - o.f[i - 1]->dts, 3600);
    const ms_rtp_stats_t *s = ms_rtp_receiver_stats(r);
    assert_int_equal(s->ts_jumps, 1);
    assert_int_equal(s->ts_resyncs, 1);
    ms_rtp_receiver_free(r);
    t_out_free(&o);
}

static void test_video_lasting_jump_ahead(void **state)
{
    (void)state;
    uint32_t ts[50];
    for (int i = 0; i < 50; i++)
        ts[i] = (uint32_t)i * 3600u + (i >= 10 ? (uint32_t)(2 * HOUR90) : 0u);
    t_out_t o = {0};
    ms_rtp_receiver_t *r = run_video(&o, ts, NULL);
    assert_int_equal(o.n, 50);
    assert_int_equal(check_mono(&o), 1);
    assert_true(o.f[10]->flags & MS_FRAME_DISCONT);
    for (size_t i = 1; i < o.n; i++)
        assert_int_equal(o.f[i]->dts - o.f[i - 1]->dts, 3600);
    assert_int_equal(ms_rtp_receiver_stats(r)->ts_jumps, 1);
    ms_rtp_receiver_free(r);
    t_out_free(&o);
}

static void test_video_lost_run_and_wrap(void **state)
{
    (void)state;
    /* starts 10 frames before the 32-bit wrap; frames 5..8 are lost (the
     * camera's clock and the arrival clock both move on): not jumps */
    uint32_t ts[50];
    int skip[50] = {0};
    for (int i = 0; i < 50; i++)
        ts[i] = 0xffffffffu - 10u * 3600u + (uint32_t)i * 3600u;
    for (int i = 5; i < 9; i++)
        skip[i] = 1;
    t_out_t o = {0};
    ms_rtp_receiver_t *r = run_video(&o, ts, skip);
    /* whole frames lost: the next one starts a clean access unit */
    assert_int_equal(o.n, 50 - 4);
    assert_int_equal(check_mono(&o), 0);
    assert_int_equal(o.f[5]->dts, 9 * 3600); /* the hole stays a hole */
    for (size_t i = 6; i < o.n; i++)
        assert_int_equal(o.f[i]->dts - o.f[i - 1]->dts, 3600);
    const ms_rtp_stats_t *s = ms_rtp_receiver_stats(r);
    assert_int_equal(s->ts_jumps, 0);
    assert_int_equal(s->ts_resyncs, 0);
    ms_rtp_receiver_free(r);
    t_out_free(&o);
}

static void pcmu_pkt(t_pkts_t *p, uint32_t ts)
{
    uint8_t s[160];
    memset(s, 0xff, sizeof s);
    t_rtp(p, ts, 0, s, sizeof s, NULL, 0);
}

/* Audio: n packets of 20 ms (160 samples at 8 kHz), packet i with RTP
 * timestamp tsf(i) arriving at arrf(i); each packet is one frame. Frames
 * are checked and released as they come (t_out_t holds 512). */
typedef struct {
    size_t frames;
    int disc;
    int64_t last_dts, max_step;
    int64_t dts_at[8]; /* dts of the frames asked for in want_at */
    size_t want_at[8];
    int nwant;
} a_res_t;

static void a_collect(t_out_t *o, a_res_t *res)
{
    for (size_t i = 0; i < o->n; i++) {
        const ms_frame_t *f = o->f[i];
        if (f->flags & MS_FRAME_DISCONT)
            res->disc++;
        if (res->frames) {
            assert_true(f->dts > res->last_dts);
            if (f->dts - res->last_dts > res->max_step)
                res->max_step = f->dts - res->last_dts;
        }
        for (int k = 0; k < res->nwant; k++)
            if (res->want_at[k] == res->frames)
                res->dts_at[k] = f->dts;
        res->last_dts = f->dts;
        res->frames++;
    }
    t_out_free(o);
}

static ms_rtp_receiver_t *run_audio(size_t n, uint32_t (*tsf)(size_t), int64_t (*arrf)(size_t),
                                    a_res_t *res)
{
    t_out_t o = {0};
    ms_rtp_receiver_t *r = new_rx(&o, MS_CODEC_PCMU, 8000, 0);
    t_pkts_t *p = calloc(1, sizeof *p);
    p->ssrc = 0x5566;
    for (size_t i = 0; i < n; i++) {
        pcmu_pkt(p, tsf(i));
        assert_int_equal(ms_rtp_receiver_rtp(r, p->pkts[0].data, p->pkts[0].len, arrf(i)), 0);
        t_pkts_free(p);
        if (o.n > 256)
            a_collect(&o, res);
    }
    ms_rtp_receiver_flush(r);
    a_collect(&o, res);
    free(p);
    return r;
}

static int64_t arr_20ms(size_t i)
{
    return 5000000 + (int64_t)i * 20000;
}
static uint32_t ts_drift(size_t i)
{
    /* the camera's clock 0.1% fast: 160.16 samples per 20 ms of arrival,
     * 3.6 s ahead after an hour */
    return (uint32_t)(123456u + (uint64_t)i * 16016u / 100u);
}
static uint32_t ts_audio_jumps(size_t i)
{
    uint32_t t = 777u + (uint32_t)i * 160u;
    if (i == 100)
        t += (uint32_t)HOUR8; /* one packet 1 h ahead */
    if (i >= 300)
        t -= (uint32_t)HOUR8; /* a lasting step 1 h back */
    return t;
}
static uint32_t ts_plain(size_t i)
{
    return 0xfffff000u + (uint32_t)i * 160u; /* wraps at packet ~25 */
}
static int64_t arr_stall(size_t i)
{
    /* a 5 s network stall before packet 200, then the backlog at once */
    if (i < 200)
        return (int64_t)i * 20000;
    if (i < 450)
        return 200 * 20000 + 5000000;
    return (int64_t)i * 20000;
}

static void test_audio_drift_is_not_a_jump(void **state)
{
    (void)state;
    a_res_t res = {0};
    size_t n = 180000; /* an hour of 20 ms packets */
    ms_rtp_receiver_t *r = run_audio(n, ts_drift, arr_20ms, &res);
    assert_int_equal(res.frames, n);
    assert_int_equal(res.disc, 0);
    assert_true(res.max_step <= 161);
    assert_int_equal(ms_rtp_receiver_stats(r)->ts_jumps, 0);
    ms_rtp_receiver_free(r);
}

static void test_audio_jumps(void **state)
{
    (void)state;
    a_res_t res = {.nwant = 1, .want_at = {399}};
    ms_rtp_receiver_t *r = run_audio(400, ts_audio_jumps, arr_20ms, &res);
    assert_int_equal(res.frames, 400);
    assert_int_equal(res.disc, 1); /* the step back; the outlier is absorbed */
    assert_int_equal(res.max_step, 160);
    assert_int_equal(res.dts_at[0], 399 * 160); /* continuous, not shifted */
    const ms_rtp_stats_t *s = ms_rtp_receiver_stats(r);
    assert_int_equal(s->ts_jumps, 2);
    assert_int_equal(s->ts_resyncs, 1);
    /* the last frame held by a jump comes out at the flush */
    ms_rtp_receiver_free(r);
}

static void test_audio_wrap_and_stall(void **state)
{
    (void)state;
    a_res_t res = {0};
    ms_rtp_receiver_t *r = run_audio(600, ts_plain, arr_stall, &res);
    assert_int_equal(res.frames, 600);
    assert_int_equal(res.disc, 0);
    assert_int_equal(res.max_step, 160);
    assert_int_equal(res.last_dts, 599 * 160);
    assert_int_equal(ms_rtp_receiver_stats(r)->ts_jumps, 0);
    ms_rtp_receiver_free(r);
}

/* A video jump while the audio of the same camera goes on: after the jump
 * the video frames' times still match the audio's at the same arrival. */
static void test_av_sync_across_video_jump(void **state)
{
    (void)state;
    uint32_t ts[50];
    for (int i = 0; i < 50; i++)
        ts[i] = (uint32_t)i * 3600u + (i >= 20 ? (uint32_t)(3 * HOUR90) : 0u);
    t_out_t vo = {0};
    ms_rtp_receiver_t *v = run_video(&vo, ts, NULL);
    a_res_t res = {.nwant = 1, .want_at = {98}}; /* 98 * 20 ms = 49 * 40 ms */
    ms_rtp_receiver_t *a = run_audio(100, ts_plain, arr_20ms, &res);
    assert_int_equal(vo.n, 50);
    int64_t v_us = vo.f[49]->dts * 1000000 / 90000;
    int64_t a_us = res.dts_at[0] * 1000000 / 8000;
    assert_true(llabs(v_us - a_us) <= 40000);
    ms_rtp_receiver_free(v);
    ms_rtp_receiver_free(a);
    t_out_free(&vo);
}

static size_t sr_pkt(uint8_t *o, uint32_t ssrc, uint64_t ntp, uint32_t rtp_ts)
{
    memset(o, 0, 28);
    o[0] = 0x80;
    o[1] = 200;
    o[3] = 6;
    ms_wr_be32(o + 4, ssrc);
    ms_wr_be32(o + 8, (uint32_t)(ntp >> 32));
    ms_wr_be32(o + 12, (uint32_t)ntp);
    ms_wr_be32(o + 16, rtp_ts);
    return 28;
}

/* The SR mapping stays on the output timeline: the capture times of the
 * frames after a jump continue from those before it (no 1 h wallclock
 * step that would make the recorder cut a session at every frame). */
static void test_sr_wallclock_across_jump(void **state)
{
    (void)state;
    t_out_t o = {0};
    ms_rtp_receiver_t *r = new_rx(&o, MS_CODEC_PCMU, 8000, 0);
    t_pkts_t *p = calloc(1, sizeof *p);
    p->ssrc = 0x5566;
    uint64_t ntp = (uint64_t)(1700000000ull + 2208988800ull) << 32;
    for (uint32_t i = 0; i < 60; i++) {
        uint32_t ts = i * 160u + (i >= 30 ? (uint32_t)HOUR8 : 0u);
        pcmu_pkt(p, ts);
        ms_rtp_receiver_rtp(r, p->pkts[0].data, p->pkts[0].len, arr_20ms(i));
        t_pkts_free(p);
        if (i == 5) {
            uint8_t b[32];
            size_t n = sr_pkt(b, 0x5566, ntp, 5 * 160);
            assert_int_equal(ms_rtp_receiver_rtcp(r, b, n, arr_20ms(i)), 0);
        }
    }
    /* an SR still in the old timestamp space after the lasting jump is
     * ignored (it would put the capture times an hour back) */
    uint8_t b[32];
    size_t bn = sr_pkt(b, 0x5566, ntp + ((uint64_t)1 << 32), 55 * 160);
    assert_int_equal(ms_rtp_receiver_rtcp(r, b, bn, arr_20ms(59)), 0);
    pcmu_pkt(p, 60 * 160u + (uint32_t)HOUR8);
    ms_rtp_receiver_rtp(r, p->pkts[0].data, p->pkts[0].len, arr_20ms(60));
    t_pkts_free(p);
    assert_int_equal(o.n, 61);
    assert_int_equal(o.f[60]->wallclock_us, 1700000000000000ll + 55 * 20000);
    assert_true(o.f[30]->flags & MS_FRAME_DISCONT);
    for (size_t i = 7; i < o.n; i++)
        assert_int_equal(o.f[i]->wallclock_us - o.f[i - 1]->wallclock_us, 20000);
    ms_rtp_receiver_free(r);
    t_out_free(&o);
    free(p);
}

/* The timeline alone: B-frame reordering (small steps back) is not a jump,
 * a camera pausing for 10 s keeps its gap, SSRC-style restarts count. */
static void test_timeline_rules(void **state)
{
    (void)state;
    ms_rtp_timeline_t tl;
    ms_rtp_timeline_init(&tl, 90000, 1);
    int64_t pts, dts, last = -1;
    /* I P B B P B B ... in decode order: pts 0, 3, 1, 2, 6, 4, 5 frames */
    static const int order[] = {0, 3, 1, 2, 6, 4, 5, 9, 7, 8};
    for (int i = 0; i < 10; i++) {
        int fl = ms_rtp_timeline_map(&tl, 1000 + order[i] * 3600, (int64_t)i * 40000, &pts, &dts);
        assert_int_equal(fl, 0);
        assert_int_equal(pts, order[i] * 3600);
        assert_true(dts > last);
        last = dts;
    }
    /* a 10 s pause of the camera (timestamps and arrival move together) */
    assert_int_equal(ms_rtp_timeline_map(&tl, 1000 + 10 * 3600 + 900000, 10400000, &pts, &dts), 0);
    assert_int_equal(pts, 10 * 3600 + 900000);
    /* a restart continues one nominal interval (3600) after the last dts */
    ms_rtp_timeline_restart(&tl);
    assert_int_equal(ms_rtp_timeline_map(&tl, 42, 10440000, &pts, &dts), MS_FRAME_DISCONT);
    assert_int_equal(dts, 10 * 3600 + 900000 + 3600);
    assert_int_equal(tl.jumps, 0);
    assert_int_equal(tl.resyncs, 1);
    /* a jump after a real pause longer than the threshold keeps the pause;
     * with no next frame it is a lasting one */
    int64_t d0 = dts;
    assert_int_equal(ms_rtp_timeline_map(&tl, 42 - HOUR90, 10440000 + 5000000, &pts, &dts),
                     MS_RTP_TL_HOLD);
    assert_int_equal(tl.jumps, 1);
    assert_int_equal(ms_rtp_timeline_resolve(&tl, 0, 0, 0, &pts, &dts), MS_FRAME_DISCONT);
    assert_int_equal(dts - d0, 5 * 90000);
    assert_int_equal(tl.resyncs, 2);
    /* held, then the next frame continues the held one: a new timeline */
    d0 = dts;
    assert_int_equal(ms_rtp_timeline_map(&tl, 42 + HOUR90, 15480000, &pts, &dts), MS_RTP_TL_HOLD);
    assert_int_equal(ms_rtp_timeline_resolve(&tl, 1, 42 + HOUR90 + 3600, 15520000, &pts, &dts),
                     MS_FRAME_DISCONT);
    assert_int_equal(dts, d0 + 3600);
    assert_int_equal(ms_rtp_timeline_map(&tl, 42 + HOUR90 + 3600, 15520000, &pts, &dts), 0);
    assert_int_equal(dts, d0 + 7200);
    /* held, then the next frame fits the old timeline: an outlier */
    d0 = dts;
    assert_int_equal(ms_rtp_timeline_map(&tl, 42 + 2 * HOUR90, 15560000, &pts, &dts),
                     MS_RTP_TL_HOLD);
    assert_int_equal(ms_rtp_timeline_resolve(&tl, 1, 42 + HOUR90 + 3 * 3600, 15600000, &pts, &dts),
                     0);
    assert_int_equal(dts, d0 + 3600);
    assert_int_equal(ms_rtp_timeline_map(&tl, 42 + HOUR90 + 3 * 3600, 15600000, &pts, &dts), 0);
    assert_int_equal(dts, d0 + 7200);
    assert_int_equal(tl.jumps, 3);
    assert_int_equal(tl.resyncs, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_video_one_frame_hour_ahead),
        cmocka_unit_test(test_video_step_hour_back),
        cmocka_unit_test(test_video_lasting_jump_ahead),
        cmocka_unit_test(test_video_lost_run_and_wrap),
        cmocka_unit_test(test_audio_drift_is_not_a_jump),
        cmocka_unit_test(test_audio_jumps),
        cmocka_unit_test(test_audio_wrap_and_stall),
        cmocka_unit_test(test_av_sync_across_video_jump),
        cmocka_unit_test(test_sr_wallclock_across_jump),
        cmocka_unit_test(test_timeline_rules),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
