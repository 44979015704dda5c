/* H.265 depacketization (RFC 7798) through the receiver, with RTP packets
 * built from a real libx265 stream (tests/data): single NAL, AP, FU, loss,
 * reordering, sprop-vps/sps/pps insertion and DONL rejection. */
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
    g_es = t_load("h265_320x240_25fps.h265", &g_es_len);
    if (!g_es)
        return -1;
    g_n_aus = t_split_aus(1, g_es, g_es_len, g_aus, N_AUS);
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
    c.codec = MS_CODEC_H265;
    c.clock_rate = 90000;
    c.payload_type = 97;
    c.fmtp = fmtp;
    c.reorder_window = window;
    c.on_frame = t_on_frame;
    c.on_params = t_on_params;
    c.ud = o;
    ms_rtp_receiver_t *r = ms_rtp_receiver_new(&c, NULL, 0);
    assert_non_null(r);
    return r;
}

static void packetize_all(t_pkts_t *p, uint16_t seq0, size_t mtu, int agg, int skip_ps)
{
    p->seq = seq0;
    p->ssrc = 0x5555;
    p->pt = 97;
    for (size_t i = 0; i < g_n_aus; i++)
        t_packetize(1, p, &g_aus[i], (uint32_t)(i * 3600), mtu, agg, skip_ps);
}

static void feed(ms_rtp_receiver_t *r, t_pkts_t *p, const size_t *order, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        t_bytes_t *b = &p->pkts[order ? order[i] : i];
        assert_int_equal(ms_rtp_receiver_rtp(r, b->data, b->len, (int64_t)i * 1000), 0);
    }
}

static void check_frame(const ms_frame_t *f, size_t au_idx)
{
    ms_buf_t want = MS_BUF_INIT;
    t_au_payload(1, &g_aus[au_idx], &want);
    assert_int_equal(f->size, want.len);
    assert_memory_equal(f->data, want.data, want.len);
    assert_int_equal(f->pts, (int64_t)au_idx * 3600);
    assert_int_equal(!!(f->flags & MS_FRAME_KEY), g_aus[au_idx].key);
    ms_buf_free(&want);
}

static void test_ap_fu_reorder(void **state)
{
    (void)state;
    t_pkts_t *p = calloc(1, sizeof *p);
    t_out_t o = {0};
    packetize_all(p, 65000, 300, 1, 0);
    assert_int_equal((p->pkts[0].data[12] >> 1) & 0x3f, 48); /* VPS+SPS+PPS+SEI in an AP */
    size_t *order = malloc(p->n * sizeof *order);
    for (size_t i = 0; i < p->n; i++)
        order[i] = i;
    for (size_t i = 2; i + 2 < p->n; i += 5) {
        size_t t = order[i];
        order[i] = order[i + 2];
        order[i + 2] = t;
    }
    ms_rtp_receiver_t *r = new_rx(&o, 64, NULL);
    feed(r, p, order, p->n);
    assert_int_equal(o.n, 50);
    for (size_t i = 0; i < 50; i++)
        check_frame(o.f[i], i);
    const ms_rtp_stats_t *s = ms_rtp_receiver_stats(r);
    assert_true(s->reordered > 0);
    assert_int_equal(s->lost, 0);
    assert_int_equal(s->malformed, 0);
    assert_int_equal(o.params.codec, MS_CODEC_H265);
    assert_int_equal(o.params.width, 320);
    assert_int_equal(o.params.height, 240);
    assert_int_equal(o.params.profile, 1);
    assert_true(o.params.vps_len > 0);
    free(order);
    ms_rtp_receiver_free(r);
    t_out_free(&o);
    t_pkts_free(p);
    free(p);
}

static void test_loss_drops_until_irap(void **state)
{
    (void)state;
    t_pkts_t *p = calloc(1, sizeof *p);
    t_out_t o = {0};
    packetize_all(p, 10, 200, 0, 0);
    size_t drop = 0;
    for (size_t i = 0; i < p->n; i++)
        if (ms_rd_be32(p->pkts[i].data + 4) == 5 * 3600) {
            drop = i + 1; /* second packet of AU 5 */
            break;
        }
    assert_int_equal(ms_rd_be32(p->pkts[drop].data + 4), 5 * 3600);
    size_t *order = malloc(p->n * sizeof *order), k = 0;
    for (size_t i = 0; i < p->n; i++)
        if (i != drop)
            order[k++] = i;
    ms_rtp_receiver_t *r = new_rx(&o, 0, NULL);
    feed(r, p, order, k);
    assert_int_equal(o.n, 5 + 25);
    for (size_t i = 0; i < 5; i++)
        check_frame(o.f[i], i);
    for (size_t i = 5; i < 30; i++)
        check_frame(o.f[i], i + 20);
    assert_int_equal(ms_rtp_receiver_stats(r)->frames_dropped, 20);
    free(order);
    ms_rtp_receiver_free(r);
    t_out_free(&o);
    t_pkts_free(p);
    free(p);
}

static void b64(const uint8_t *s, size_t l, char *out)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < l; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16;
        if (i + 1 < l)
            v |= (uint32_t)s[i + 1] << 8;
        if (i + 2 < l)
            v |= s[i + 2];
        out[o++] = tbl[(v >> 18) & 63];
        out[o++] = tbl[(v >> 12) & 63];
        out[o++] = i + 1 < l ? tbl[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < l ? tbl[v & 63] : '=';
    }
    out[o] = 0;
}

static void test_sprop_insertion(void **state)
{
    (void)state;
    t_pkts_t *p = calloc(1, sizeof *p);
    t_out_t o = {0};
    packetize_all(p, 0, 1200, 0, 1);
    char v[3][256], fmtp[1024];
    for (int j = 0; j < 3; j++)
        b64(g_aus[0].nal[j], g_aus[0].len[j], v[j]);
    snprintf(fmtp, sizeof fmtp, "sprop-vps=%s; sprop-sps=%s; sprop-pps=%s", v[0], v[1], v[2]);
    ms_rtp_receiver_t *r = new_rx(&o, 64, fmtp);
    assert_int_equal(o.params_calls, 1);
    assert_int_equal(o.params.width, 320);
    feed(r, p, NULL, p->n);
    assert_int_equal(o.n, 50);
    for (size_t i = 0; i < 50; i++)
        check_frame(o.f[i], i);
    ms_rtp_receiver_free(r);
    t_out_free(&o);
    t_pkts_free(p);
    free(p);
}

static void test_donl_rejected_and_bad_packets(void **state)
{
    (void)state;
    ms_rtp_receiver_cfg_t c = {0};
    c.codec = MS_CODEC_H265;
    c.clock_rate = 90000;
    c.payload_type = 97;
    c.on_frame = t_on_frame;
    c.fmtp = "sprop-max-don-diff=2";
    char err[128] = "";
    assert_null(ms_rtp_receiver_new(&c, err, sizeof err));
    assert_non_null(strstr(err, "DONL"));

    t_out_t o = {0};
    ms_rtp_receiver_t *r = new_rx(&o, 0, NULL);
    t_pkts_t *p = calloc(1, sizeof *p);
    p->pt = 97;
    const uint8_t paci[] = {50 << 1, 1, 0, 0};
    const uint8_t fbit[] = {0x80 | (1 << 1), 1, 0};
    const uint8_t ap1[] = {48 << 1, 1, 0, 2, 0x40, 1}; /* AP with a single NAL */
    const uint8_t apbad[] = {48 << 1, 1, 0, 9, 0x40};
    t_rtp(p, 0, 0, paci, sizeof paci, NULL, 0);
    t_rtp(p, 0, 0, fbit, sizeof fbit, NULL, 0);
    t_rtp(p, 0, 0, ap1, sizeof ap1, NULL, 0);
    t_rtp(p, 0, 1, apbad, sizeof apbad, NULL, 0);
    feed(r, p, NULL, p->n);
    assert_int_equal(o.n, 0);
    assert_int_equal(ms_rtp_receiver_stats(r)->malformed, 4);
    ms_rtp_receiver_free(r);
    t_pkts_free(p);
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ap_fu_reorder),
        cmocka_unit_test(test_loss_drops_until_irap),
        cmocka_unit_test(test_sprop_insertion),
        cmocka_unit_test(test_donl_rejected_and_bad_packets),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
