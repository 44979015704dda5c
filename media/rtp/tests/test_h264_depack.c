/* H.264 depacketization (RFC 6184) through the whole receiver, with RTP
 * packets built from a real libx264 stream (tests/data): single NAL, STAP-A,
 * FU-A, reordering, loss, duplicates, sequence wrap, SSRC change, TCP mode,
 * sprop-parameter-sets insertion and unsupported packet types. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "media/rtp/tests/rtp_test_util.h"

#define N_AUS 64
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
    return g_n_aus == 50 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    free(g_es);
    return 0;
}

static ms_rtp_receiver_t *new_rx(t_out_t *o, uint32_t window, const char *fmtp)
{
    ms_rtp_receiver_cfg_t c = {0};
    c.codec = MS_CODEC_H264;
    c.clock_rate = 90000;
    c.payload_type = 96;
    c.fmtp = fmtp;
    c.reorder_window = window;
    c.on_frame = t_on_frame;
    c.on_params = t_on_params;
    c.ud = o;
    char err[128];
    ms_rtp_receiver_t *r = ms_rtp_receiver_new(&c, err, sizeof err);
    assert_non_null(r);
    return r;
}

static void packetize_all(t_pkts_t *p, uint16_t seq0, uint32_t ts0, size_t mtu, int agg,
                          int skip_ps)
{
    p->seq = seq0;
    p->ssrc = 0x11223344;
    p->pt = 96;
    for (size_t i = 0; i < g_n_aus; i++)
        t_packetize(0, p, &g_aus[i], ts0 + (uint32_t)(i * 3600), mtu, agg, skip_ps);
}

static void feed(ms_rtp_receiver_t *r, t_pkts_t *p, const size_t *order, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        t_bytes_t *b = &p->pkts[order ? order[i] : i];
        assert_int_equal(ms_rtp_receiver_rtp(r, b->data, b->len, (int64_t)i * 1000), 0);
    }
}

/* Frame k of the output must be AU au_idx of the input, byte for byte. */
static void check_frame(const ms_frame_t *f, size_t au_idx, int64_t pts0)
{
    ms_buf_t want = MS_BUF_INIT;
    t_au_payload(0, &g_aus[au_idx], &want);
    assert_int_equal(f->size, want.len);
    assert_memory_equal(f->data, want.data, want.len);
    assert_int_equal(f->pts, pts0 + (int64_t)au_idx * 3600);
    assert_int_equal(!!(f->flags & MS_FRAME_KEY), g_aus[au_idx].key);
    ms_buf_free(&want);
}

static void check_all(const t_out_t *o, int64_t pts0)
{
    assert_int_equal(o->n, g_n_aus);
    for (size_t i = 0; i < o->n; i++)
        check_frame(o->f[i], i, pts0);
}

static void test_fu_a_and_single(void **state)
{
    (void)state;
    t_pkts_t *p = calloc(1, sizeof *p);
    t_out_t o = {0};
    packetize_all(p, 1000, 12345, 400, 0, 0);
    assert_true(p->n > 100); /* IDRs are fragmented */
    ms_rtp_receiver_t *r = new_rx(&o, 64, "packetization-mode=1");
    feed(r, p, NULL, p->n);
    check_all(&o, 0);
    const ms_rtp_stats_t *s = ms_rtp_receiver_stats(r);
    assert_int_equal(s->packets, p->n);
    assert_int_equal(s->lost, 0);
    assert_int_equal(s->frames, 50);
    assert_int_equal(s->frames_dropped, 0);
    assert_int_equal(s->malformed, 0);
    /* params from the in-band SPS */
    assert_int_equal(o.params.width, 320);
    assert_int_equal(o.params.height, 240);
    assert_int_equal(o.params.profile, 77);
    assert_true(o.params.sps_len > 0 && o.params.pps_len > 0);
    assert_int_equal(o.params_calls, 1);
    ms_rtp_receiver_free(r);
    t_out_free(&o);
    t_pkts_free(p);
    free(p);
}

/* Access units are assembled in the frame that carries them (depack_au.c):
 * sizes far above the expected one (the frame grows several times), far
 * below (copied into an exact frame), close to it (handed over as is), an
 * IDR with its parameter sets, and one over the size kept between AUs. Every
 * frame, all still held, equals its input byte for byte. */
static void test_in_place_sizes(void **state)
{
    (void)state;
    static const size_t sizes[] = {300,  20000, 250,  5000, 5100, 4900, 90000,
                                   5000, 10,    6000, 6100, 7000, 120,  40000};
    size_t n = sizeof sizes / sizeof sizes[0];
    t_pkts_t *p = calloc(1, sizeof *p);
    t_out_t o = {0};
    p->ssrc = 777;
    p->seq = 100;
    p->pt = 96;
    static const uint8_t sps[] = {0x67, 0x42, 0xc0, 0x1e, 0xda, 0x02, 0x80, 0xbf, 0xe5,
                                  0xc0, 0x44, 0x00, 0x00, 0x03, 0x00, 0x04, 0x00, 0x00,
                                  0x03, 0x00, 0xc8, 0x3c, 0x58, 0xba, 0x80};
    static const uint8_t pps[] = {0x68, 0xce, 0x3c, 0x80};
    uint8_t *nal = malloc(120000);
    ms_buf_t want[sizeof sizes / sizeof sizes[0]];
    for (size_t i = 0; i < n; i++) {
        int idr = i == 0 || i == 6;
        size_t l = sizes[i];
        nal[0] = idr ? 0x65 : 0x41;
        nal[1] = 0x88; /* first_mb_in_slice 0 */
        for (size_t j = 2; j < l; j++)
            nal[j] = (uint8_t)(i * 31 + j * 7 + 1);
        uint32_t ts = (uint32_t)(i * 3600);
        ms_buf_t *w = &want[i];
        memset(w, 0, sizeof *w);
        if (idr) {
            t_rtp(p, ts, 0, sps, sizeof sps, NULL, 0);
            t_rtp(p, ts, 0, pps, sizeof pps, NULL, 0);
            ms_buf_be32(w, sizeof sps);
            ms_buf_append(w, sps, sizeof sps);
            ms_buf_be32(w, sizeof pps);
            ms_buf_append(w, pps, sizeof pps);
        }
        ms_buf_be32(w, (uint32_t)l);
        ms_buf_append(w, nal, l);
        if (l <= 1000) {
            t_rtp(p, ts, 1, nal, l, NULL, 0);
            continue;
        }
        /* FU-A (RFC 6184 5.8), 1000-byte fragments */
        for (size_t off = 1; off < l; off += 1000) {
            size_t fl = l - off < 1000 ? l - off : 1000;
            uint8_t fu[2] = {
                (uint8_t)((nal[0] & 0xe0) | 28),
                (uint8_t)((off == 1 ? 0x80 : 0) | (off + fl == l ? 0x40 : 0) | (nal[0] & 0x1f))};
            t_rtp(p, ts, off + fl == l, fu, 2, nal + off, fl);
        }
    }
    ms_rtp_receiver_t *r = new_rx(&o, 0, "packetization-mode=1");
    feed(r, p, NULL, p->n);
    assert_int_equal(o.n, n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(o.f[i]->size, want[i].len);
        assert_memory_equal(o.f[i]->data, want[i].data, want[i].len);
        assert_int_equal(!!(o.f[i]->flags & MS_FRAME_KEY), i == 0 || i == 6);
        assert_int_equal(o.f[i]->pts, (int64_t)i * 3600);
        ms_buf_free(&want[i]);
    }
    assert_int_equal(ms_rtp_receiver_stats(r)->frames_dropped, 0);
    ms_rtp_receiver_free(r);
    free(nal);
    t_out_free(&o);
    t_pkts_free(p);
    free(p);
}

static void test_stap_a(void **state)
{
    (void)state;
    t_pkts_t *p = calloc(1, sizeof *p);
    t_out_t o = {0};
    packetize_all(p, 7, 0, 1400, 1, 0);
    /* SPS+PPS+SEI travel in one STAP-A */
    assert_int_equal(p->pkts[0].data[12] & 0x1f, 24);
    ms_rtp_receiver_t *r = new_rx(&o, 0, NULL);
    feed(r, p, NULL, p->n);
    check_all(&o, 0);
    ms_rtp_receiver_free(r);
    t_out_free(&o);
    t_pkts_free(p);
    free(p);
}

static void test_sequence_wrap_and_reorder(void **state)
{
    (void)state;
    t_pkts_t *p = calloc(1, sizeof *p);
    t_out_t o = {0};
    packetize_all(p, 65500, 0xfffff000u, 300, 1, 0); /* seq and ts both wrap */
    size_t *order = malloc(p->n * sizeof *order);
    for (size_t i = 0; i < p->n; i++)
        order[i] = i;
    /* swap neighbours every 7 packets and move one packet 5 places later */
    for (size_t i = 3; i + 1 < p->n; i += 7) {
        size_t t = order[i];
        order[i] = order[i + 1];
        order[i + 1] = t;
    }
    size_t moved = order[40];
    memmove(&order[40], &order[41], 5 * sizeof *order);
    order[45] = moved;
    ms_rtp_receiver_t *r = new_rx(&o, 16, NULL);
    feed(r, p, order, p->n);
    check_all(&o, 0);
    const ms_rtp_stats_t *s = ms_rtp_receiver_stats(r);
    assert_true(s->reordered > 10);
    assert_int_equal(s->lost, 0);
    assert_int_equal(s->frames_dropped, 0);
    free(order);
    ms_rtp_receiver_free(r);
    t_out_free(&o);
    t_pkts_free(p);
    free(p);
}

static void test_duplicates(void **state)
{
    (void)state;
    t_pkts_t *p = calloc(1, sizeof *p);
    t_out_t o = {0};
    packetize_all(p, 100, 0, 500, 0, 0);
    size_t n = p->n;
    size_t *order = malloc(2 * n * sizeof *order);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        order[k++] = i;
        if (i % 10 == 5)
            order[k++] = i; /* immediate duplicate */
        if (i % 10 == 9)
            order[k++] = i - 3; /* late duplicate of a released packet */
    }
    ms_rtp_receiver_t *r = new_rx(&o, 32, NULL);
    feed(r, p, order, k);
    check_all(&o, 0);
    const ms_rtp_stats_t *s = ms_rtp_receiver_stats(r);
    assert_int_equal(s->duplicates, k - n);
    assert_int_equal(s->lost, 0);
    free(order);
    ms_rtp_receiver_free(r);
    t_out_free(&o);
    t_pkts_free(p);
    free(p);
}

/* Index of the first packet of AU i when each AU's packets are counted. */
static size_t first_pkt_of(t_pkts_t *p, uint32_t ts)
{
    for (size_t i = 0; i < p->n; i++)
        if (ms_rd_be32(p->pkts[i].data + 4) == ts)
            return i;
    fail();
    return 0;
}

static void run_loss(uint32_t window)
{
    t_pkts_t *p = calloc(1, sizeof *p);
    t_out_t o = {0};
    packetize_all(p, 0, 0, 200, 0, 0);
    /* lose the second packet of AU 10 (a P frame split in fragments) */
    size_t first = first_pkt_of(p, 10 * 3600);
    assert_int_equal(ms_rd_be32(p->pkts[first + 1].data + 4), 10 * 3600);
    size_t *order = malloc(p->n * sizeof *order);
    size_t k = 0;
    for (size_t i = 0; i < p->n; i++)
        if (i != first + 1)
            order[k++] = i;
    ms_rtp_receiver_t *r = new_rx(&o, window, NULL);
    feed(r, p, order, k);
    ms_rtp_receiver_flush(r);
    const ms_rtp_stats_t *s = ms_rtp_receiver_stats(r);
    assert_int_equal(s->lost, 1);
    /* AU 10 is lost, 11..24 depend on it; 25 is the next IDR */
    assert_int_equal(s->frames_dropped, 15);
    assert_int_equal(o.n, 35);
    for (size_t i = 0; i < 10; i++)
        check_frame(o.f[i], i, 0);
    for (size_t i = 10; i < 35; i++)
        check_frame(o.f[i], i + 15, 0);
    assert_true(o.f[10]->flags & MS_FRAME_KEY);
    free(order);
    ms_rtp_receiver_free(r);
    t_out_free(&o);
    t_pkts_free(p);
    free(p);
}

static void test_loss_udp_window(void **state)
{
    (void)state;
    run_loss(8); /* released when the window fills up */
}

static void test_loss_tcp(void **state)
{
    (void)state;
    run_loss(0);
}

static void test_loss_of_whole_frame_before_idr(void **state)
{
    (void)state;
    /* Losing all packets of AU 24 must not cost the IDR of AU 25: its first
     * packet opens an access unit. */
    t_pkts_t *p = calloc(1, sizeof *p);
    t_out_t o = {0};
    packetize_all(p, 0, 0, 1400, 1, 0);
    size_t a = first_pkt_of(p, 24 * 3600), b = first_pkt_of(p, 25 * 3600);
    size_t *order = malloc(p->n * sizeof *order);
    size_t k = 0;
    for (size_t i = 0; i < p->n; i++)
        if (i < a || i >= b)
            order[k++] = i;
    ms_rtp_receiver_t *r = new_rx(&o, 64, NULL);
    feed(r, p, order, k);
    ms_rtp_receiver_flush(r);
    assert_int_equal(o.n, 49);
    assert_int_equal(ms_rtp_receiver_stats(r)->lost, b - a);
    check_frame(o.f[24], 25, 0);
    free(order);
    ms_rtp_receiver_free(r);
    t_out_free(&o);
    t_pkts_free(p);
    free(p);
}

static void test_sprop_insertion(void **state)
{
    (void)state;
    t_pkts_t *p = calloc(1, sizeof *p);
    t_out_t o = {0};
    packetize_all(p, 5, 0, 1000, 0, 1); /* no SPS/PPS in band */
    /* base64 of the stream's SPS and PPS */
    const t_au_t *k = &g_aus[0];
    assert_int_equal(k->nal[0][0] & 0x1f, 7);
    char fmtp[512];
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char b64[2][128];
    for (int j = 0; j < 2; j++) {
        const uint8_t *s = k->nal[j];
        size_t l = k->len[j], o2 = 0;
        for (size_t i = 0; i < l; i += 3) {
            uint32_t v = (uint32_t)s[i] << 16;
            if (i + 1 < l)
                v |= (uint32_t)s[i + 1] << 8;
            if (i + 2 < l)
                v |= s[i + 2];
            b64[j][o2++] = tbl[(v >> 18) & 63];
            b64[j][o2++] = tbl[(v >> 12) & 63];
            b64[j][o2++] = i + 1 < l ? tbl[(v >> 6) & 63] : '=';
            b64[j][o2++] = i + 2 < l ? tbl[v & 63] : '=';
        }
        b64[j][o2] = 0;
    }
    snprintf(fmtp, sizeof fmtp,
             "packetization-mode=1; profile-level-id=4d400d; sprop-parameter-sets=%s,%s", b64[0],
             b64[1]);
    ms_rtp_receiver_t *r = new_rx(&o, 64, fmtp);
    /* params delivered during new() */
    assert_int_equal(o.params_calls, 1);
    assert_int_equal(o.params.width, 320);
    assert_int_equal(o.params.height, 240);
    assert_int_equal(o.params.level, 13);
    feed(r, p, NULL, p->n);
    /* keyframes got SPS+PPS back in front: identical to the original AUs */
    check_all(&o, 0);
    assert_int_equal(o.params_calls, 1);
    ms_rtp_receiver_free(r);
    t_out_free(&o);
    t_pkts_free(p);
    free(p);
}

static void test_ssrc_change(void **state)
{
    (void)state;
    t_pkts_t *p = calloc(1, sizeof *p);
    t_pkts_t *q = calloc(1, sizeof *q);
    t_out_t o = {0};
    packetize_all(p, 0, 0, 1000, 0, 0);
    packetize_all(q, 30000, 777777, 1000, 0, 0);
    for (size_t i = 0; i < q->n; i++)
        ms_wr_be32(q->pkts[i].data + 8, 0xcafe);
    ms_rtp_receiver_t *r = new_rx(&o, 64, NULL);
    size_t half = first_pkt_of(p, 30 * 3600);
    feed(r, p, NULL, half);
    feed(r, q, NULL, q->n);
    const ms_rtp_stats_t *s = ms_rtp_receiver_stats(r);
    assert_int_equal(s->ssrc_changes, 1);
    assert_int_equal(ms_rtp_receiver_ssrc(r), 0xcafe);
    assert_int_equal(s->lost, 0);
    assert_int_equal(o.n, 30 + 50);
    /* frame 30 = first of the new source, marked, timeline continues */
    assert_true(o.f[30]->flags & MS_FRAME_DISCONT);
    assert_true(o.f[30]->flags & MS_FRAME_KEY);
    assert_int_equal(o.f[30]->pts, o.f[29]->pts + 3600);
    for (size_t i = 31; i < o.n; i++) {
        assert_false(o.f[i]->flags & MS_FRAME_DISCONT);
        assert_int_equal(o.f[i]->pts - o.f[i - 1]->pts, 3600);
    }
    ms_rtp_receiver_free(r);
    t_out_free(&o);
    t_pkts_free(p);
    t_pkts_free(q);
    free(p);
    free(q);
}

static void test_aud_stripped_and_unsupported(void **state)
{
    (void)state;
    t_out_t o = {0};
    ms_rtp_receiver_t *r = new_rx(&o, 0, NULL);
    t_pkts_t *p = calloc(1, sizeof *p);
    p->pt = 96;
    p->ssrc = 1;
    const uint8_t aud[] = {0x09, 0xf0};
    /* AUD + the IDR AU as singles */
    t_rtp(p, 0, 0, aud, sizeof aud, NULL, 0);
    for (size_t i = 0; i < g_aus[0].n; i++)
        t_rtp(p, 0, i + 1 == g_aus[0].n, g_aus[0].nal[i], g_aus[0].len[i], NULL, 0);
    /* STAP-B (25), MTAP16 (26), FU-B (29), type 0 and 30: rejected */
    const uint8_t bad[][4] = {
        {25, 0, 0, 0}, {26, 0, 0, 0}, {29, 0x80, 0, 0}, {0, 1, 2, 3}, {30, 1, 2, 3}};
    for (size_t i = 0; i < 5; i++)
        t_rtp(p, 3600, 0, bad[i], 4, NULL, 0);
    /* truncated STAP-A and FU-A with S and E */
    const uint8_t stap[] = {24, 0, 9, 0x67};
    t_rtp(p, 3600, 0, stap, sizeof stap, NULL, 0);
    const uint8_t fuse[] = {28, 0xc5, 1, 2};
    t_rtp(p, 3600, 1, fuse, sizeof fuse, NULL, 0);
    feed(r, p, NULL, p->n);
    assert_int_equal(o.n, 1);
    check_frame(o.f[0], 0, 0);
    const ms_rtp_stats_t *s = ms_rtp_receiver_stats(r);
    assert_int_equal(s->malformed, 7);
    assert_int_equal(s->frames_dropped, 1);
    /* malformed RTP headers */
    const uint8_t v1[12] = {0x40, 96};
    assert_int_equal(ms_rtp_receiver_rtp(r, v1, sizeof v1, 0), -EINVAL);
    assert_int_equal(ms_rtp_receiver_rtp(r, v1, 5, 0), -EINVAL);
    ms_rtp_receiver_free(r);
    t_out_free(&o);
    t_pkts_free(p);
    free(p);
}

static void test_bad_config(void **state)
{
    (void)state;
    ms_rtp_receiver_cfg_t c = {0};
    c.codec = MS_CODEC_H264;
    c.clock_rate = 90000;
    c.on_frame = t_on_frame;
    c.fmtp = "packetization-mode=2";
    char err[128] = "";
    assert_null(ms_rtp_receiver_new(&c, err, sizeof err));
    assert_true(strlen(err) > 0);
    c.fmtp = NULL;
    c.codec = MS_CODEC_NONE;
    assert_null(ms_rtp_receiver_new(&c, err, sizeof err));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fu_a_and_single),
        cmocka_unit_test(test_stap_a),
        cmocka_unit_test(test_in_place_sizes),
        cmocka_unit_test(test_sequence_wrap_and_reorder),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_loss_udp_window),
        cmocka_unit_test(test_loss_tcp),
        cmocka_unit_test(test_loss_of_whole_frame_before_idr),
        cmocka_unit_test(test_sprop_insertion),
        cmocka_unit_test(test_ssrc_change),
        cmocka_unit_test(test_aud_stripped_and_unsupported),
        cmocka_unit_test(test_bad_config),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
