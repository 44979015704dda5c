/* RTP header parsing (RFC 3550 5.1), RTCP SR -> wallclock mapping (6.4.1),
 * receiver reports (6.4.2), fmtp/base64 helpers. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "media/rtp/rtp_internal.h"
#include "media/rtp/tests/rtp_test_util.h"
#include "util/encoding.h"

static void test_header_fields(void **state)
{
    (void)state;
    /* V=2 P=1 X=1 CC=2, M=1 PT=96, two CSRCs, 1-word extension, 3 pad bytes */
    const uint8_t pkt[] = {0xb2, 0xe0, 0x12, 0x34, 0, 0, 0x10, 0,    0xaa, 0xbb, 0xcc,
                           0xdd, 1,    2,    3,    4, 5, 6,    7,    8,    0xbe, 0xde,
                           0,    1,    9,    9,    9, 9, 0x41, 0x42, 0,    0,    3};
    ms_rtp_packet_t p;
    assert_int_equal(ms_rtp_packet_parse(pkt, sizeof pkt, &p), 0);
    assert_int_equal(p.marker, 1);
    assert_int_equal(p.pt, 96);
    assert_int_equal(p.seq, 0x1234);
    assert_int_equal(p.ts, 0x1000);
    assert_int_equal(p.ssrc, 0xaabbccdd);
    assert_int_equal(p.csrc_count, 2);
    assert_int_equal(p.payload_len, 2);
    assert_int_equal(p.payload[0], 0x41);
    /* every truncation is rejected */
    for (size_t l = 0; l < sizeof pkt; l++)
        assert_int_equal(ms_rtp_packet_parse(pkt, l, &p), -EINVAL);
    uint8_t bad[sizeof pkt];
    memcpy(bad, pkt, sizeof pkt);
    bad[sizeof bad - 1] = 0; /* padding count 0 */
    assert_int_equal(ms_rtp_packet_parse(bad, sizeof bad, &p), -EINVAL);
    bad[sizeof bad - 1] = 200; /* more padding than payload */
    assert_int_equal(ms_rtp_packet_parse(bad, sizeof bad, &p), -EINVAL);
}

static void pcmu(t_pkts_t *p, uint32_t ts)
{
    uint8_t s[160];
    memset(s, 0xff, sizeof s);
    t_rtp(p, ts, 0, s, sizeof s, NULL, 0);
}

static size_t sr(uint8_t *o, uint32_t ssrc, uint64_t ntp, uint32_t rtp_ts)
{
    /* SR (no report blocks) + empty SDES, as a compound packet (6.1) */
    memset(o, 0, 36);
    o[0] = 0x80;
    o[1] = 200;
    o[3] = 6;
    ms_wr_be32(o + 4, ssrc);
    ms_wr_be32(o + 8, (uint32_t)(ntp >> 32));
    ms_wr_be32(o + 12, (uint32_t)ntp);
    ms_wr_be32(o + 16, rtp_ts);
    ms_wr_be32(o + 20, 10);
    ms_wr_be32(o + 24, 1600);
    o[28] = 0x80;
    o[29] = 202;
    o[31] = 1;
    ms_wr_be32(o + 32, ssrc);
    return 36;
}

static void test_sr_mapping_and_rr(void **state)
{
    (void)state;
    t_out_t o = {0};
    ms_rtp_receiver_cfg_t c = {0};
    c.codec = MS_CODEC_PCMU;
    c.clock_rate = 8000;
    c.payload_type = 0;
    c.reorder_window = 4;
    c.on_frame = t_on_frame;
    c.ud = &o;
    ms_rtp_receiver_t *r = ms_rtp_receiver_new(&c, NULL, 0);
    assert_non_null(r);
    uint8_t rr[256];
    assert_int_equal(ms_rtp_receiver_rtcp_rr(r, rr, sizeof rr, 0), 0); /* nothing yet */

    t_pkts_t *p = calloc(1, sizeof *p);
    p->ssrc = 0x01020304;
    p->seq = 65534;
    const uint32_t ts0 = 0xfffffe00u; /* the RTP timestamp wraps */
    for (uint32_t i = 0; i < 10; i++)
        pcmu(p, ts0 + i * 160);
    for (size_t i = 0; i < 5; i++)
        ms_rtp_receiver_rtp(r, p->pkts[i].data, p->pkts[i].len, 1000000);
    int64_t wall;
    assert_int_equal(ms_rtp_receiver_ntp(r, 0, &wall), 0);
    /* frames before any SR: wallclock = arrival mapped onto the timeline */
    assert_int_equal(o.f[0]->wallclock_us, 1000000);
    assert_int_equal(o.f[1]->wallclock_us, 1020000);

    /* SR: NTP 1700000000.5 (unix) <-> RTP ts0 + 800 (100 ms after pts 0) */
    uint64_t ntp = ((uint64_t)(1700000000ull + 2208988800ull) << 32) | 0x80000000u;
    uint8_t pkt[64];
    size_t n = sr(pkt, 0x01020304, ntp, ts0 + 800);
    assert_int_equal(ms_rtp_receiver_rtcp(r, pkt, n, 1100000), 0);
    assert_int_equal(ms_rtp_receiver_ntp(r, 0, &wall), 1);
    assert_int_equal(wall, 1700000000400000ll);
    assert_int_equal(ms_rtp_receiver_ntp(r, 8000, &wall), 1);
    assert_int_equal(wall, 1700000001400000ll);
    /* an SR of another SSRC is ignored, garbage is rejected */
    n = sr(pkt, 0x9999, 0, 0);
    assert_int_equal(ms_rtp_receiver_rtcp(r, pkt, n, 0), 0);
    assert_int_equal(ms_rtp_receiver_ntp(r, 0, &wall), 1);
    assert_int_equal(wall, 1700000000400000ll);
    assert_int_equal(ms_rtp_receiver_rtcp(r, pkt, 30, 0), -EINVAL);

    /* lose packet 6, then the frames carry SR-based wallclock */
    for (size_t i = 5; i < 10; i++)
        if (i != 6)
            ms_rtp_receiver_rtp(r, p->pkts[i].data, p->pkts[i].len, 1200000);
    ms_rtp_receiver_flush(r);
    assert_int_equal(o.n, 9);
    assert_int_equal(o.f[5]->pts, 5 * 160);
    assert_int_equal(o.f[5]->wallclock_us, 1700000000500000ll);
    assert_int_equal(o.f[8]->pts, 9 * 160);

    n = ms_rtp_receiver_rtcp_rr(r, rr, sizeof rr, 1100000 + 250000);
    assert_true(n >= 32 + 8 && n % 4 == 0);
    assert_int_equal(rr[0], 0x81);
    assert_int_equal(rr[1], 201);
    assert_int_equal(ms_rd_be16(rr + 2), 7);
    assert_int_equal(ms_rd_be32(rr + 8), 0x01020304);
    assert_int_equal(rr[12], 256 / 10);                           /* fraction lost 1/10 */
    assert_int_equal(ms_rd_be32(rr + 12) & 0xffffff, 1);          /* cumulative */
    assert_int_equal(ms_rd_be32(rr + 16), 65536u + 7u);           /* one cycle, seq 7 */
    assert_int_equal(ms_rd_be32(rr + 24), (uint32_t)(ntp >> 16)); /* LSR */
    assert_int_equal(ms_rd_be32(rr + 28), 65536 / 4);             /* DLSR 0.25 s */
    assert_int_equal(rr[33], 202);
    assert_int_equal(rr[40], 1); /* CNAME */
    assert_memory_equal(rr + 42, "mediaserver", 11);
    ms_rtp_receiver_free(r);
    t_out_free(&o);
    t_pkts_free(p);
    free(p);
}

static void test_window_full_and_timeout(void **state)
{
    (void)state;
    t_out_t o = {0};
    ms_rtp_receiver_cfg_t c = {0};
    c.codec = MS_CODEC_PCMU;
    c.clock_rate = 8000;
    c.payload_type = 0;
    c.reorder_window = 4;
    c.on_frame = t_on_frame;
    c.ud = &o;
    ms_rtp_receiver_t *r = ms_rtp_receiver_new(&c, NULL, 0);
    t_pkts_t *p = calloc(1, sizeof *p);
    for (uint32_t i = 0; i < 20; i++)
        pcmu(p, i * 160);
    ms_rtp_receiver_rtp(r, p->pkts[0].data, p->pkts[0].len, 0);
    /* 1 and 2 missing: 3 and 4 are held; 5 falls outside the window
     * [1, 1 + 4): the hole is given up and counted lost */
    for (size_t i = 3; i <= 4; i++)
        ms_rtp_receiver_rtp(r, p->pkts[i].data, p->pkts[i].len, 0);
    assert_int_equal(o.n, 1);
    ms_rtp_receiver_rtp(r, p->pkts[5].data, p->pkts[5].len, 0);
    assert_int_equal(o.n, 4);
    assert_int_equal(o.f[1]->pts, 3 * 160);
    ms_rtp_receiver_rtp(r, p->pkts[6].data, p->pkts[6].len, 0);
    assert_int_equal(o.n, 5);
    assert_int_equal(ms_rtp_receiver_stats(r)->lost, 2);
    /* late arrival of 1: dropped, not a duplicate */
    ms_rtp_receiver_rtp(r, p->pkts[1].data, p->pkts[1].len, 0);
    assert_int_equal(o.n, 5);
    assert_int_equal(ms_rtp_receiver_stats(r)->duplicates, 0);
    /* 7 missing, 8 held; released after the hold time even with room */
    ms_rtp_receiver_rtp(r, p->pkts[8].data, p->pkts[8].len, 10000);
    assert_int_equal(o.n, 5);
    ms_rtp_receiver_rtp(r, p->pkts[10].data, p->pkts[10].len, 10000 + 600000);
    assert_int_equal(o.n, 6); /* 8 released (7 lost); 10 waits for 9 */
    assert_int_equal(ms_rtp_receiver_stats(r)->lost, 3);
    assert_int_equal(o.f[5]->pts, 8 * 160);
    ms_rtp_receiver_flush(r);
    assert_int_equal(o.n, 7);
    assert_int_equal(ms_rtp_receiver_stats(r)->lost, 4);
    assert_int_equal(o.f[6]->pts, 10 * 160);
    ms_rtp_receiver_free(r);
    t_out_free(&o);
    t_pkts_free(p);
    free(p);
}

static void count_frame(void *ud, ms_frame_t *f)
{
    size_t *n = ud;
    (*n)++;
    ms_frame_unref(f);
}

/* TCP-interleaved (no reorder window): an unbroken sequence, across the
 * 16-bit wrap (RFC 3550 A.1), counts no loss and drops nothing; a real gap
 * counts exactly its size; an old or repeated packet is neither lost nor
 * delivered. */
static void test_tcp_no_window(void **state)
{
    (void)state;
    size_t frames = 0;
    ms_rtp_receiver_cfg_t c = {0};
    c.codec = MS_CODEC_PCMU;
    c.clock_rate = 8000;
    c.payload_type = 0;
    c.reorder_window = 0;
    c.on_frame = count_frame;
    c.ud = &frames;
    ms_rtp_receiver_t *r = ms_rtp_receiver_new(&c, NULL, 0);
    assert_non_null(r);
    t_pkts_t *p = calloc(1, sizeof *p);
    p->seq = 65000; /* wraps after 536 packets */
    for (uint32_t i = 0; i < 3000; i++)
        pcmu(p, 0xfffff000u + i * 160); /* the timestamp wraps too */
    for (size_t i = 0; i < 2000; i++)
        assert_int_equal(ms_rtp_receiver_rtp(r, p->pkts[i].data, p->pkts[i].len, 0), 0);
    assert_int_equal(frames, 2000);
    assert_int_equal(ms_rtp_receiver_stats(r)->lost, 0);
    assert_int_equal(ms_rtp_receiver_stats(r)->frames_dropped, 0);
    /* a repeat of an old packet: ignored, not lost */
    ms_rtp_receiver_rtp(r, p->pkts[1990].data, p->pkts[1990].len, 0);
    assert_int_equal(frames, 2000);
    assert_int_equal(ms_rtp_receiver_stats(r)->lost, 0);
    /* 5 never sent */
    for (size_t i = 2005; i < 3000; i++)
        ms_rtp_receiver_rtp(r, p->pkts[i].data, p->pkts[i].len, 0);
    assert_int_equal(frames, 2995);
    assert_int_equal(ms_rtp_receiver_stats(r)->lost, 5);
    ms_rtp_receiver_free(r);
    t_pkts_free(p);
    free(p);
}

static void test_fmtp_base64(void **state)
{
    (void)state;
    char v[64];
    const char *f = "packetization-mode=1;profile-level-id=42e01f; "
                    "sprop-parameter-sets=Z0IAH5WoFAFuQA==,aM48gA==;SizeLength = 13";
    assert_int_equal(ms_rtp_fmtp_get(f, "sprop-parameter-sets", v, sizeof v), 25);
    assert_string_equal(v, "Z0IAH5WoFAFuQA==,aM48gA==");
    assert_int_equal(ms_rtp_fmtp_int(f, "sizelength", 0), 13);
    assert_int_equal(ms_rtp_fmtp_int(f, "packetization-mode", 7), 1);
    assert_int_equal(ms_rtp_fmtp_int(f, "mode", 7), 7);
    assert_int_equal(ms_rtp_fmtp_get(f, "profile-level-id", v, 4), -1);
    uint8_t b[16];
    assert_int_equal(
        ms_b64_decode("aM48gA==", 8, MS_B64_STD | MS_B64_URL | MS_B64_LENIENT, b, sizeof b), 4);
    const uint8_t want[] = {0x68, 0xce, 0x3c, 0x80};
    assert_memory_equal(b, want, 4);
    assert_int_equal(
        ms_b64_decode("a*==", 4, MS_B64_STD | MS_B64_URL | MS_B64_LENIENT, b, sizeof b), -EINVAL);
    assert_int_equal(ms_b64_decode("aM48gA==", 8, MS_B64_STD | MS_B64_URL | MS_B64_LENIENT, b, 3),
                     -ENOSPC);
    /* lenient: blanks skipped, both alphabets, trailing bits dropped */
    assert_int_equal(
        ms_b64_decode(" aM4\r\n8gA", 9, MS_B64_STD | MS_B64_URL | MS_B64_LENIENT, b, sizeof b), 4);
    assert_memory_equal(b, want, 4);
    assert_int_equal(
        ms_b64_decode("+/-_", 4, MS_B64_STD | MS_B64_URL | MS_B64_LENIENT, b, sizeof b), 3);
    assert_int_equal(b[0], 0xfb);
    assert_int_equal(b[2], 0xbf);
    assert_int_equal(
        ms_b64_decode("aM48g", 5, MS_B64_STD | MS_B64_URL | MS_B64_LENIENT, b, sizeof b), 3);
    assert_int_equal(ms_rtp_hex_decode("1190", b, sizeof b), 2);
    assert_int_equal(b[0], 0x11);
    assert_int_equal(ms_rtp_hex_decode("aBcD", b, sizeof b), 2);
    assert_int_equal(b[0], 0xab);
    assert_int_equal(b[1], 0xcd);
    assert_int_equal(ms_rtp_hex_decode("1g", b, sizeof b), -1);
    assert_int_equal(ms_rtp_hex_decode("119", b, sizeof b), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_fields),
        cmocka_unit_test(test_sr_mapping_and_rr),
        cmocka_unit_test(test_window_full_and_timeout),
        cmocka_unit_test(test_tcp_no_window),
        cmocka_unit_test(test_fmtp_base64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
