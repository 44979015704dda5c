/* AAC (RFC 3640 AAC-hbr), G.711 (RFC 3551) and ONVIF metadata through the
 * receiver; the AAC frames come from a real ADTS stream (tests/data). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "media/rtp/tests/rtp_test_util.h"

#define N_AU 128
static uint8_t *g_es;
static size_t g_len;
static const uint8_t *g_au[N_AU];
static size_t g_au_len[N_AU], g_n;

static int setup(void **state)
{
    (void)state;
    g_es = t_load("aac_48k_mono.aac", &g_len);
    if (!g_es)
        return -1;
    size_t off = 0;
    while (off + 7 <= g_len && g_n < N_AU) { /* ADTS without CRC */
        size_t fl = ((size_t)(g_es[off + 3] & 3) << 11) | ((size_t)g_es[off + 4] << 3) |
                    (g_es[off + 5] >> 5);
        if (fl < 7 || off + fl > g_len || g_es[off] != 0xff)
            return -1;
        g_au[g_n] = g_es + off + 7;
        g_au_len[g_n] = fl - 7;
        g_n++;
        off += fl;
    }
    return g_n == 95 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    free(g_es);
    return 0;
}

static ms_rtp_receiver_t *new_rx(t_out_t *o, ms_codec_t codec, uint32_t rate, int pt,
                                 const char *fmtp, uint32_t window)
{
    ms_rtp_receiver_cfg_t c = {0};
    c.codec = codec;
    c.clock_rate = rate;
    c.payload_type = pt;
    c.channels = 1;
    c.fmtp = fmtp;
    c.reorder_window = window;
    c.on_frame = t_on_frame;
    c.on_params = t_on_params;
    c.ud = o;
    ms_rtp_receiver_t *r = ms_rtp_receiver_new(&c, NULL, 0);
    assert_non_null(r);
    return r;
}

static const char *AAC_FMTP = "streamtype=5; profile-level-id=15; mode=AAC-hbr; config=1188; "
                              "SizeLength=13; IndexLength=3; IndexDeltaLength=3";

/* Packs AUs [first, first+count) into one packet. */
static void aac_packet(t_pkts_t *p, size_t first, size_t count)
{
    uint8_t hdr[2 + 2 * 64];
    size_t hl = 2;
    hdr[0] = (uint8_t)((count * 16) >> 8);
    hdr[1] = (uint8_t)(count * 16);
    ms_buf_t data = MS_BUF_INIT;
    for (size_t i = 0; i < count; i++) {
        uint16_t h = (uint16_t)(g_au_len[first + i] << 3); /* size(13) index(-delta)(3)=0 */
        hdr[hl++] = (uint8_t)(h >> 8);
        hdr[hl++] = (uint8_t)h;
        ms_buf_append(&data, g_au[first + i], g_au_len[first + i]);
    }
    t_rtp(p, (uint32_t)(first * 1024), 1, hdr, hl, data.data, data.len);
    ms_buf_free(&data);
}

static void check_aac(const t_out_t *o, size_t k, size_t au)
{
    assert_int_equal(o->f[k]->size, g_au_len[au]);
    assert_memory_equal(o->f[k]->data, g_au[au], g_au_len[au]);
    assert_int_equal(o->f[k]->pts, (int64_t)au * 1024);
    assert_true(o->f[k]->flags & MS_FRAME_KEY);
}

static void test_aac_multi_au(void **state)
{
    (void)state;
    t_pkts_t *p = calloc(1, sizeof *p);
    p->pt = 97;
    p->seq = 65530;
    for (size_t i = 0; i < g_n; i += 4)
        aac_packet(p, i, g_n - i < 4 ? g_n - i : 4);
    t_out_t o = {0};
    ms_rtp_receiver_t *r = new_rx(&o, MS_CODEC_AAC, 48000, 97, AAC_FMTP, 64);
    assert_int_equal(o.params_calls, 1);
    assert_int_equal(o.params.sample_rate, 48000);
    assert_int_equal(o.params.channels, 1);
    assert_int_equal(o.params.asc_len, 2);
    assert_int_equal(o.params.asc[0], 0x11);
    assert_int_equal(o.params.asc[1], 0x88);
    for (size_t i = 0; i < p->n; i++)
        assert_int_equal(ms_rtp_receiver_rtp(r, p->pkts[i].data, p->pkts[i].len, 0), 0);
    assert_int_equal(o.n, g_n);
    for (size_t i = 0; i < g_n; i++)
        check_aac(&o, i, i);
    assert_int_equal(ms_rtp_receiver_stats(r)->malformed, 0);
    ms_rtp_receiver_free(r);
    t_out_free(&o);
    t_pkts_free(p);
    free(p);
}

static void test_aac_fragmented_with_loss(void **state)
{
    (void)state;
    t_pkts_t *p = calloc(1, sizeof *p);
    p->pt = 97;
    /* every AU in 3 fragments: each carries one AU header with the full size */
    for (size_t i = 0; i < 20; i++) {
        size_t l = g_au_len[i], part = l / 3 + 1;
        for (size_t off = 0; off < l; off += part) {
            size_t c = l - off < part ? l - off : part;
            uint8_t hdr[4] = {0, 16, (uint8_t)((l << 3) >> 8), (uint8_t)(l << 3)};
            t_rtp(p, (uint32_t)(i * 1024), off + c == l, hdr, 4, g_au[i] + off, c);
        }
    }
    t_out_t o = {0};
    ms_rtp_receiver_t *r = new_rx(&o, MS_CODEC_AAC, 48000, 97, AAC_FMTP, 0);
    for (size_t i = 0; i < p->n; i++) {
        if (i == 3 * 5 + 1) /* middle fragment of AU 5 */
            continue;
        assert_int_equal(ms_rtp_receiver_rtp(r, p->pkts[i].data, p->pkts[i].len, 0), 0);
    }
    assert_int_equal(o.n, 19);
    for (size_t i = 0; i < 19; i++)
        check_aac(&o, i, i < 5 ? i : i + 1);
    const ms_rtp_stats_t *s = ms_rtp_receiver_stats(r);
    assert_int_equal(s->lost, 1);
    assert_int_equal(s->frames_dropped, 1);
    ms_rtp_receiver_free(r);
    t_out_free(&o);
    t_pkts_free(p);
    free(p);
}

static void test_aac_bad(void **state)
{
    (void)state;
    ms_rtp_receiver_cfg_t c = {0};
    c.codec = MS_CODEC_AAC;
    c.clock_rate = 48000;
    c.on_frame = t_on_frame;
    c.fmtp = "mode=AAC-hbr; config=1188";
    assert_null(ms_rtp_receiver_new(&c, NULL, 0)); /* no sizelength */
    c.fmtp = "mode=AAC-hbr; sizelength=13; config=zz";
    assert_null(ms_rtp_receiver_new(&c, NULL, 0));
    t_out_t o = {0};
    ms_rtp_receiver_t *r = new_rx(&o, MS_CODEC_AAC, 48000, 97, AAC_FMTP, 0);
    t_pkts_t *p = calloc(1, sizeof *p);
    p->pt = 97;
    const uint8_t big_hdr[] = {0x10, 0x00, 0x00};         /* 4096 header bits */
    const uint8_t short_au[] = {0, 16, 0x00, 0x50, 1, 2}; /* AU of 10 bytes, 2 present */
    const uint8_t two_short[] = {0, 32, 0x00, 0x10, 0x00, 0x50, 1, 2};
    t_rtp(p, 0, 1, big_hdr, sizeof big_hdr, NULL, 0);
    t_rtp(p, 0, 1, short_au, sizeof short_au, NULL, 0); /* marker + fragment start */
    t_rtp(p, 0, 1, two_short, sizeof two_short, NULL, 0);
    for (size_t i = 0; i < p->n; i++)
        ms_rtp_receiver_rtp(r, p->pkts[i].data, p->pkts[i].len, 0);
    assert_int_equal(ms_rtp_receiver_stats(r)->malformed, 3);
    /* the first AU of two_short is whole; the second runs past the end */
    assert_int_equal(o.n, 1);
    assert_int_equal(o.f[0]->size, 2);
    t_out_free(&o);
    ms_rtp_receiver_free(r);
    t_pkts_free(p);
    free(p);
}

static void test_g711(void **state)
{
    (void)state;
    t_out_t o = {0};
    ms_rtp_receiver_t *r = new_rx(&o, MS_CODEC_PCMA, 8000, 8, NULL, 8);
    assert_int_equal(o.params_calls, 1);
    assert_int_equal(o.params.sample_rate, 8000);
    assert_int_equal(o.params.channels, 1);
    t_pkts_t *p = calloc(1, sizeof *p);
    p->pt = 8;
    uint8_t s[160];
    for (int i = 0; i < 10; i++) {
        memset(s, 0xd5 + i, sizeof s);
        t_rtp(p, (uint32_t)(1000 + i * 160), i == 0, s, sizeof s, NULL, 0);
    }
    /* packets 0..9 with 4 and 5 swapped, 7 lost */
    size_t order[] = {0, 1, 2, 3, 5, 4, 6, 8, 9};
    for (size_t i = 0; i < 9; i++)
        ms_rtp_receiver_rtp(r, p->pkts[order[i]].data, p->pkts[order[i]].len, 0);
    /* another payload type (comfort noise) is ignored */
    const uint8_t cn[13] = {0x80, 13, 0, 99, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    assert_int_equal(ms_rtp_receiver_rtp(r, cn, sizeof cn, 0), 0);
    ms_rtp_receiver_flush(r);
    assert_int_equal(o.n, 9);
    size_t want[] = {0, 1, 2, 3, 4, 5, 6, 8, 9};
    for (size_t i = 0; i < 9; i++) {
        assert_int_equal(o.f[i]->size, 160);
        assert_int_equal(o.f[i]->data[0], 0xd5 + want[i]);
        assert_int_equal(o.f[i]->pts, (int64_t)want[i] * 160);
    }
    const ms_rtp_stats_t *st = ms_rtp_receiver_stats(r);
    assert_int_equal(st->lost, 1);
    assert_int_equal(st->reordered, 1);
    assert_int_equal(st->frames_dropped, 0);
    ms_rtp_receiver_free(r);
    t_out_free(&o);
    t_pkts_free(p);
    free(p);
}

static void test_onvif_meta(void **state)
{
    (void)state;
    t_out_t o = {0};
    ms_rtp_receiver_t *r = new_rx(&o, MS_CODEC_ONVIF_META, 90000, 107, NULL, 0);
    t_pkts_t *p = calloc(1, sizeof *p);
    p->pt = 107;
    const char *doc[3] = {"<tt:MetadataStream xmlns:tt=\"http://www.onvif.org/ver10/schema\">",
                          "<tt:Event/>", "</tt:MetadataStream>"};
    for (int d = 0; d < 3; d++)
        for (int i = 0; i < 3; i++)
            t_rtp(p, (uint32_t)(d * 90000), i == 2, (const uint8_t *)doc[i], strlen(doc[i]), NULL,
                  0);
    for (size_t i = 0; i < p->n; i++)
        if (i != 4) /* a middle packet of document 1 */
            ms_rtp_receiver_rtp(r, p->pkts[i].data, p->pkts[i].len, 0);
    assert_int_equal(o.n, 2);
    char want[256];
    snprintf(want, sizeof want, "%s%s%s", doc[0], doc[1], doc[2]);
    assert_int_equal(o.f[0]->size, strlen(want));
    assert_memory_equal(o.f[0]->data, want, strlen(want));
    assert_int_equal(o.f[1]->pts, 180000);
    assert_memory_equal(o.f[1]->data, want, strlen(want));
    assert_int_equal(ms_rtp_receiver_stats(r)->frames_dropped, 1);
    ms_rtp_receiver_free(r);
    t_out_free(&o);
    t_pkts_free(p);
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_aac_multi_au), cmocka_unit_test(test_aac_fragmented_with_loss),
        cmocka_unit_test(test_aac_bad),      cmocka_unit_test(test_g711),
        cmocka_unit_test(test_onvif_meta),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
