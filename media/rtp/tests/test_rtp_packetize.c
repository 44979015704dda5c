/* Packetizers (RFC 6184, RFC 7798, RFC 3640, RFC 3551, ONVIF) and the SDP
 * writer, checked end to end against the project's own receive path: frames
 * from real elementary streams (tests/data) are packetized, described with
 * ms_sdp_write(), the SDP is parsed back with ms_sdp_parse(), a receiver is
 * configured from the parsed a=fmtp, and the depacketized frames must equal
 * the input byte for byte with the same timestamps. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "media/rtp/packetize.h"
#include "media/rtp/rtp_internal.h"
#include "media/rtp/tests/rtp_test_util.h"
#include "media/rtsp/sdp.h"
#include "media/rtsp/sdp_out.h"

/* Builds a one-track SDP, parses it, and returns a receiver configured from
 * the parsed media (what an RTSP client does). */
static ms_rtp_receiver_t *rx_from_sdp(const ms_codec_params_t *par, t_out_t *o, int *pt_out)
{
    int pt = ms_sdp_out_pt(par, 0);
    ms_sdp_out_track_t tr = {par, pt, "trackID=0"};
    ms_buf_t b = MS_BUF_INIT;
    assert_int_equal(ms_sdp_write(&b, "test", "127.0.0.1", 42, &tr, 1), 1);
    ms_sdp_t sdp;
    assert_int_equal(ms_sdp_parse((const char *)b.data, b.len, &sdp), 0);
    assert_int_equal(sdp.nmedia, 1);
    const ms_sdp_media_t *m = &sdp.media[0];
    assert_int_equal(m->codec, par->codec);
    assert_non_null(m->fmt);
    assert_string_equal(m->control, "trackID=0");
    assert_int_equal(m->fmt->pt, pt);
    ms_rtp_receiver_cfg_t c = {0};
    c.codec = m->codec;
    c.clock_rate = m->fmt->clock_rate ? m->fmt->clock_rate : 90000;
    c.payload_type = m->fmt->pt;
    c.channels = m->fmt->channels;
    c.fmtp = m->fmt->fmtp;
    c.on_frame = t_on_frame;
    c.on_params = t_on_params;
    c.ud = o;
    char err[128] = "";
    ms_rtp_receiver_t *r = ms_rtp_receiver_new(&c, err, sizeof err);
    if (!r)
        fail_msg("receiver: %s\nSDP:\n%.*s", err, (int)b.len, (const char *)b.data);
    ms_sdp_free(&sdp);
    ms_buf_free(&b);
    *pt_out = pt;
    return r;
}

/* Packetizes frames and feeds every record to the receiver; checks the
 * record framing, the header fields and the marker rule. */
static void run(ms_rtp_packetizer_t *pk, ms_rtp_receiver_t *rx, ms_frame_t **frames, size_t n,
                int marker_every_frame)
{
    uint16_t want_seq = pk->seq;
    for (size_t i = 0; i < n; i++) {
        ms_buf_t b = MS_BUF_INIT;
        int np = ms_rtp_packetize(pk, frames[i], &b);
        assert_true(np > 0);
        size_t off = 0;
        const uint8_t *p;
        size_t pl;
        uint8_t ch;
        int k = 0;
        int r;
        while ((r = ms_rtp_records_next(b.data, b.len, &off, &p, &pl, &ch)) == 1) {
            k++;
            assert_true(pl <= pk->cfg.mtu);
            assert_int_equal(ch, pk->cfg.channel);
            assert_int_equal(p[0], 0x80);
            assert_int_equal(p[1] & 0x7f, pk->cfg.pt);
            assert_int_equal(ms_rd_be16(p + 2), want_seq);
            want_seq++;
            assert_int_equal(ms_rd_be32(p + 8), pk->cfg.ssrc);
            if (marker_every_frame)
                assert_int_equal(!!(p[1] & 0x80), k == np);
            assert_int_equal(ms_rtp_receiver_rtp(rx, p, pl, 1000 + (int64_t)i), 0);
        }
        assert_int_equal(r, 0);
        assert_int_equal(k, np);
        ms_buf_free(&b);
    }
    ms_rtp_receiver_flush(rx);
}

static void check_same(t_out_t *o, ms_frame_t **frames, size_t n, int64_t pts0)
{
    assert_int_equal(o->n, n);
    for (size_t i = 0; i < n; i++) {
        if (o->f[i]->size != frames[i]->size ||
            memcmp(o->f[i]->data, frames[i]->data, frames[i]->size) != 0)
            fail_msg("frame %zu differs (size %u vs %u)", i, o->f[i]->size, frames[i]->size);
        assert_int_equal(o->f[i]->pts, frames[i]->pts - pts0);
    }
}

/* ---- H.264 / H.265 from the real clips ---- */

static size_t load_video(int hevc, ms_frame_t **frames, size_t max, ms_codec_params_t *par,
                         uint8_t **es)
{
    size_t len = 0;
    *es = t_load(hevc ? "h265_320x240_25fps.h265" : "h264_320x240_25fps.h264", &len);
    assert_non_null(*es);
    static t_au_t aus[128];
    size_t n = t_split_aus(hevc, *es, len, aus, 128);
    assert_true(n >= 50);
    memset(par, 0, sizeof *par);
    par->codec = hevc ? MS_CODEC_H265 : MS_CODEC_H264;
    par->kind = MS_TRACK_VIDEO;
    par->clock_rate = 90000;
    for (size_t i = 0; i < aus[0].n; i++) {
        const uint8_t *nal = aus[0].nal[i];
        size_t l = aus[0].len[i];
        int t = hevc ? (nal[0] >> 1) & 0x3f : nal[0] & 0x1f;
        if (hevc && t == 32) {
            memcpy(par->vps, nal, l);
            par->vps_len = (uint16_t)l;
        } else if (t == (hevc ? 33 : 7)) {
            memcpy(par->sps, nal, l);
            par->sps_len = (uint16_t)l;
        } else if (t == (hevc ? 34 : 8)) {
            memcpy(par->pps, nal, l);
            par->pps_len = (uint16_t)l;
        }
    }
    assert_true(par->sps_len > 0 && par->pps_len > 0);
    ms_buf_t b = MS_BUF_INIT;
    size_t k = 0;
    for (size_t i = 0; i < n && k < max; i++) {
        t_au_payload(hevc, &aus[i], &b);
        ms_frame_t *f = ms_frame_new(b.data, b.len);
        f->pts = f->dts = 90000 + (int64_t)i * 3600;
        f->flags = aus[i].key ? MS_FRAME_KEY : 0;
        frames[k++] = f;
    }
    ms_buf_free(&b);
    return k;
}

static void video_roundtrip(int hevc, size_t mtu)
{
    ms_frame_t *frames[128];
    ms_codec_params_t par;
    uint8_t *es;
    size_t n = load_video(hevc, frames, 128, &par, &es);
    t_out_t o = {0};
    int pt;
    ms_rtp_receiver_t *rx = rx_from_sdp(&par, &o, &pt);
    ms_rtp_packetizer_cfg_t c = {.codec = par.codec,
                                 .pt = (uint8_t)pt,
                                 .channel = 4,
                                 .clock_rate = 90000,
                                 .ssrc = 0x11223344,
                                 .seq = 65500, /* wraps during the run */
                                 .ts_offset = 0xfffff000u,
                                 .mtu = mtu};
    ms_rtp_packetizer_t pk;
    assert_int_equal(ms_rtp_packetizer_init(&pk, &c), 0);
    run(&pk, rx, frames, n, 1);
    check_same(&o, frames, n, 90000);
    const ms_rtp_stats_t *st = ms_rtp_receiver_stats(rx);
    assert_int_equal(st->lost, 0);
    assert_int_equal(st->malformed, 0);
    assert_int_equal(st->frames_dropped, 0);
    assert_int_equal(st->packets, pk.packets);
    t_out_free(&o);
    ms_rtp_receiver_free(rx);
    for (size_t i = 0; i < n; i++)
        ms_frame_unref(frames[i]);
    free(es);
}

static void test_h264_roundtrip(void **state)
{
    (void)state;
    static const size_t mtus[] = {64, 100, 577, 1200, 1400, 1500};
    for (size_t i = 0; i < sizeof mtus / sizeof mtus[0]; i++)
        video_roundtrip(0, mtus[i]);
}

static void test_h265_roundtrip(void **state)
{
    (void)state;
    static const size_t mtus[] = {64, 101, 577, 1400};
    for (size_t i = 0; i < sizeof mtus / sizeof mtus[0]; i++)
        video_roundtrip(1, mtus[i]);
}

/* NAL sizes around the MTU: single NAL vs FU-A boundaries (RFC 6184 5.8),
 * after a real IDR so that the receiver has a keyframe to start from. */
static void nal_sizes_around_mtu(int hevc)
{
    const size_t mtu = 200;
    ms_frame_t *frames[64];
    ms_codec_params_t par;
    uint8_t *es;
    size_t n = load_video(hevc, frames, 1, &par, &es);
    assert_int_equal(n, 1);
    /* payload sizes: room = 188 per packet; FU chunk = 186 (H.264) / 185 */
    static const size_t sizes[] = {187,         188,         189,         190,
                                   186 + 1 + 1, 2 * 186 + 1, 2 * 186 + 2, 2 * 185 + 2,
                                   2 * 185 + 3, 3 * 186,     1000};
    int64_t pts = 90000;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t l = sizes[i];
        ms_frame_t *f = ms_frame_new(NULL, 4 + l);
        ms_wr_be32(f->data, (uint32_t)l);
        for (size_t j = 0; j < l; j++)
            f->data[4 + j] = (uint8_t)(j * 7 + i);
        if (hevc) {
            f->data[4] = 1 << 1; /* TRAIL_R */
            f->data[5] = 1;
            f->data[6] |= 0x80; /* first_slice_segment_in_pic_flag */
        } else {
            f->data[4] = 0x41; /* non-IDR slice */
            f->data[5] |= 0x80;
        }
        pts += 3600;
        f->pts = f->dts = pts;
        frames[n++] = f;
    }
    t_out_t o = {0};
    int pt;
    ms_rtp_receiver_t *rx = rx_from_sdp(&par, &o, &pt);
    ms_rtp_packetizer_cfg_t c = {
        .codec = par.codec, .pt = (uint8_t)pt, .clock_rate = 90000, .ssrc = 7, .mtu = mtu};
    ms_rtp_packetizer_t pk;
    assert_int_equal(ms_rtp_packetizer_init(&pk, &c), 0);
    run(&pk, rx, frames, n, 1);
    check_same(&o, frames, n, 90000);
    t_out_free(&o);
    ms_rtp_receiver_free(rx);
    for (size_t i = 0; i < n; i++)
        ms_frame_unref(frames[i]);
    free(es);
}

static void test_h264_sizes(void **state)
{
    (void)state;
    nal_sizes_around_mtu(0);
}

static void test_h265_sizes(void **state)
{
    (void)state;
    nal_sizes_around_mtu(1);
}

/* ---- AAC from the real ADTS stream ---- */

static void aac_roundtrip(size_t mtu)
{
    size_t len = 0;
    uint8_t *es = t_load("aac_48k_mono.aac", &len);
    assert_non_null(es);
    ms_frame_t *frames[128];
    size_t n = 0, off = 0;
    while (off + 7 <= len && n < 128) {
        size_t fl =
            ((size_t)(es[off + 3] & 3) << 11) | ((size_t)es[off + 4] << 3) | (es[off + 5] >> 5);
        assert_true(fl > 7 && off + fl <= len);
        ms_frame_t *f = ms_frame_new(es + off + 7, fl - 7);
        f->pts = f->dts = 48000 + (int64_t)n * 1024;
        f->flags = MS_FRAME_KEY;
        frames[n++] = f;
        off += fl;
    }
    assert_int_equal(n, 95);
    ms_codec_params_t par = {0};
    par.codec = MS_CODEC_AAC;
    par.kind = MS_TRACK_AUDIO;
    par.clock_rate = 48000;
    par.sample_rate = 48000;
    par.channels = 1;
    par.asc[0] = 0x11; /* AAC-LC, 48 kHz, mono (ISO/IEC 14496-3 1.6.2.1) */
    par.asc[1] = 0x88;
    par.asc_len = 2;
    t_out_t o = {0};
    int pt;
    ms_rtp_receiver_t *rx = rx_from_sdp(&par, &o, &pt);
    ms_rtp_packetizer_cfg_t c = {.codec = MS_CODEC_AAC,
                                 .pt = (uint8_t)pt,
                                 .clock_rate = 48000,
                                 .ssrc = 99,
                                 .seq = 1,
                                 .mtu = mtu};
    ms_rtp_packetizer_t pk;
    assert_int_equal(ms_rtp_packetizer_init(&pk, &c), 0);
    run(&pk, rx, frames, n, 1);
    check_same(&o, frames, n, 48000);
    t_out_free(&o);
    ms_rtp_receiver_free(rx);
    for (size_t i = 0; i < n; i++)
        ms_frame_unref(frames[i]);
    free(es);
}

static void test_aac_roundtrip(void **state)
{
    (void)state;
    aac_roundtrip(1400);
    aac_roundtrip(80); /* every AU fragmented (RFC 3640 3.2.3) */
}

/* ---- G.711 and ONVIF metadata ---- */

static void test_g711_roundtrip(void **state)
{
    (void)state;
    for (int codec = MS_CODEC_PCMA; codec <= MS_CODEC_PCMU; codec++) {
        ms_codec_params_t par = {0};
        par.codec = (ms_codec_t)codec;
        par.kind = MS_TRACK_AUDIO;
        par.clock_rate = 8000;
        par.sample_rate = 8000;
        par.channels = 1;
        ms_frame_t *frames[20];
        for (size_t i = 0; i < 20; i++) {
            frames[i] = ms_frame_new(NULL, 160);
            for (size_t j = 0; j < 160; j++)
                frames[i]->data[j] = (uint8_t)(i * 31 + j);
            frames[i]->pts = frames[i]->dts = (int64_t)i * 160;
            frames[i]->flags = MS_FRAME_KEY;
        }
        t_out_t o = {0};
        int pt;
        ms_rtp_receiver_t *rx = rx_from_sdp(&par, &o, &pt);
        assert_int_equal(pt, codec == MS_CODEC_PCMU ? 0 : 8);
        ms_rtp_packetizer_cfg_t c = {
            .codec = par.codec, .pt = (uint8_t)pt, .clock_rate = 8000, .ssrc = 5};
        ms_rtp_packetizer_t pk;
        assert_int_equal(ms_rtp_packetizer_init(&pk, &c), 0);
        run(&pk, rx, frames, 20, 0);
        check_same(&o, frames, 20, 0);
        t_out_free(&o);
        ms_rtp_receiver_free(rx);
        for (size_t i = 0; i < 20; i++)
            ms_frame_unref(frames[i]);
    }
}

static void test_meta_roundtrip(void **state)
{
    (void)state;
    ms_codec_params_t par = {0};
    par.codec = MS_CODEC_ONVIF_META;
    par.kind = MS_TRACK_APP;
    par.clock_rate = 90000;
    ms_frame_t *frames[3];
    static const size_t sizes[] = {100, 1388, 5000};
    for (size_t i = 0; i < 3; i++) {
        frames[i] = ms_frame_new(NULL, sizes[i]);
        for (size_t j = 0; j < sizes[i]; j++)
            frames[i]->data[j] = (uint8_t)('a' + (i + j) % 26);
        frames[i]->pts = frames[i]->dts = (int64_t)i * 90000;
        frames[i]->flags = MS_FRAME_KEY;
    }
    t_out_t o = {0};
    int pt;
    ms_rtp_receiver_t *rx = rx_from_sdp(&par, &o, &pt);
    ms_rtp_packetizer_cfg_t c = {
        .codec = par.codec, .pt = (uint8_t)pt, .clock_rate = 90000, .ssrc = 6};
    ms_rtp_packetizer_t pk;
    assert_int_equal(ms_rtp_packetizer_init(&pk, &c), 0);
    run(&pk, rx, frames, 3, 1);
    check_same(&o, frames, 3, 0);
    t_out_free(&o);
    ms_rtp_receiver_free(rx);
    for (size_t i = 0; i < 3; i++)
        ms_frame_unref(frames[i]);
}

/* ---- timestamps, errors, RTCP ---- */

static void test_discont_and_errors(void **state)
{
    (void)state;
    ms_rtp_packetizer_cfg_t c = {
        .codec = MS_CODEC_H264, .pt = 96, .clock_rate = 90000, .ssrc = 1, .ts_offset = 1000};
    ms_rtp_packetizer_t pk;
    assert_int_equal(ms_rtp_packetizer_init(&pk, &c), 0);
    uint8_t nal[] = {0, 0, 0, 3, 0x41, 0x9a, 0x01};
    ms_frame_t *f = ms_frame_new(nal, sizeof nal);
    f->pts = 9000;
    ms_buf_t b = MS_BUF_INIT;
    assert_int_equal(ms_rtp_packetize(&pk, f, &b), 1);
    assert_int_equal(ms_rd_be32(b.data + 4 + 4), 10000);
    /* a new timeline restarting at 0 continues 40 ms after the last one */
    f->pts = 0;
    f->flags = MS_FRAME_DISCONT;
    ms_buf_reset(&b);
    assert_int_equal(ms_rtp_packetize(&pk, f, &b), 1);
    assert_int_equal(ms_rd_be32(b.data + 4 + 4), 10000 + 3600);
    /* malformed length prefix: error, counters and seq untouched */
    uint16_t seq = pk.seq;
    uint32_t pkts = pk.packets;
    f->data[3] = 9;
    ms_buf_reset(&b);
    assert_int_equal(ms_rtp_packetize(&pk, f, &b), -EINVAL);
    assert_int_equal(pk.seq, seq);
    assert_int_equal(pk.packets, pkts);
    ms_frame_unref(f);
    ms_buf_free(&b);
    c.codec = MS_CODEC_NONE;
    assert_int_equal(ms_rtp_packetizer_init(&pk, &c), -EINVAL);
    c.codec = MS_CODEC_AAC;
    c.mtu = 20;
    assert_int_equal(ms_rtp_packetizer_init(&pk, &c), -EINVAL);
    /* truncated record */
    uint8_t rec[] = {'$', 0, 0, 10, 1, 2};
    size_t off = 0;
    const uint8_t *p;
    size_t pl;
    assert_int_equal(ms_rtp_records_next(rec, sizeof rec, &off, &p, &pl, NULL), -EINVAL);
}

static void test_rtcp_sr(void **state)
{
    (void)state;
    uint8_t out[128];
    int64_t us = 1700000000LL * 1000000 + 500000;
    uint64_t ntp = ms_rtcp_ntp_from_unix_us(us);
    assert_int_equal(ntp >> 32, 1700000000ull + 2208988800ull);
    assert_int_equal((uint32_t)ntp, 0x80000000u);
    size_t n = ms_rtcp_build_sr_packet(out, sizeof out, 0xabcdef01, ntp, 123456, 10, 2000, "ms");
    assert_true(n > 28 && n % 4 == 0);
    /* parsed back by the receive path's RTCP code */
    ms_rtcp_sr_t sr;
    assert_int_equal(ms_rtcp_find_sr(out, n, &sr), 1);
    assert_int_equal(sr.ssrc, 0xabcdef01);
    assert_int_equal(sr.ntp, ntp);
    assert_int_equal(sr.rtp_ts, 123456);
    assert_int_equal(sr.packets, 10);
    assert_int_equal(sr.octets, 2000);
    assert_int_equal(ms_rtcp_build_sr_packet(out, 20, 1, ntp, 0, 0, 0, "ms"), 0);
}

/* ---- SDP writer: two tracks, round trip through the parser ---- */

static void test_sdp_two_tracks(void **state)
{
    (void)state;
    ms_codec_params_t v = {0}, a = {0};
    v.codec = MS_CODEC_H264;
    v.clock_rate = 90000;
    static const uint8_t sps[] = {0x67, 0x4d, 0x40, 0x1e, 0xec, 0xa0};
    static const uint8_t pps[] = {0x68, 0xeb, 0xe3, 0xcb};
    memcpy(v.sps, sps, sizeof sps);
    v.sps_len = sizeof sps;
    memcpy(v.pps, pps, sizeof pps);
    v.pps_len = sizeof pps;
    a.codec = MS_CODEC_AAC;
    a.clock_rate = a.sample_rate = 44100;
    a.channels = 2;
    a.asc[0] = 0x12;
    a.asc[1] = 0x10;
    a.asc_len = 2;
    ms_sdp_out_track_t tr[2] = {{&v, ms_sdp_out_pt(&v, 0), "rtsp://127.0.0.1:8554/cam/trackID=0"},
                                {&a, ms_sdp_out_pt(&a, 1), "trackID=1"}};
    ms_buf_t b = MS_BUF_INIT;
    assert_int_equal(ms_sdp_write(&b, "cam", "127.0.0.1", 7, tr, 2), 2);
    char *text = ms_buf_cstr(&b);
    assert_non_null(strstr(text, "profile-level-id=4d401e"));
    assert_non_null(strstr(text, "sprop-parameter-sets=Z01AHuyg,aOvjyw=="));
    assert_non_null(strstr(text, "a=rtpmap:97 MPEG4-GENERIC/44100/2\r\n"));
    assert_non_null(strstr(text, "config=1210"));
    assert_non_null(strstr(text, "a=range:npt=now-\r\n"));
    ms_sdp_t sdp;
    assert_int_equal(ms_sdp_parse(text, b.len, &sdp), 0);
    assert_int_equal(sdp.nmedia, 2);
    assert_int_equal(ms_sdp_usable(&sdp), 2);
    assert_string_equal(sdp.control, "*");
    assert_string_equal(sdp.range, "npt=now-");
    assert_int_equal(sdp.media[0].codec, MS_CODEC_H264);
    assert_string_equal(sdp.media[0].control, "rtsp://127.0.0.1:8554/cam/trackID=0");
    assert_int_equal(sdp.media[1].codec, MS_CODEC_AAC);
    assert_int_equal(sdp.media[1].fmt->clock_rate, 44100);
    assert_int_equal(sdp.media[1].fmt->channels, 2);
    char val[64];
    assert_true(ms_rtp_fmtp_get(sdp.media[1].fmt->fmtp, "sizelength", val, sizeof val) > 0);
    assert_string_equal(val, "13");
    ms_sdp_free(&sdp);
    ms_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_h264_roundtrip), cmocka_unit_test(test_h265_roundtrip),
        cmocka_unit_test(test_h264_sizes),     cmocka_unit_test(test_h265_sizes),
        cmocka_unit_test(test_aac_roundtrip),  cmocka_unit_test(test_g711_roundtrip),
        cmocka_unit_test(test_meta_roundtrip), cmocka_unit_test(test_discont_and_errors),
        cmocka_unit_test(test_rtcp_sr),        cmocka_unit_test(test_sdp_two_tracks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
