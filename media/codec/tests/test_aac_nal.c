/* AudioSpecificConfig / ADTS helpers and the NAL framing helpers. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "media/codec/aac.h"
#include "media/codec/nal.h"

static void test_asc(void **state)
{
    (void)state;
    ms_aac_config_t c;
    const uint8_t lc_48k_2[] = {0x11, 0x90}; /* config=1190 (AAC-LC 48 kHz stereo) */
    assert_int_equal(ms_aac_parse_asc(lc_48k_2, 2, &c), 0);
    assert_int_equal(c.object_type, 2);
    assert_int_equal(c.sr_index, 3);
    assert_int_equal(c.sample_rate, 48000);
    assert_int_equal(c.channels, 2);
    const uint8_t lc_16k_1[] = {0x14, 0x08}; /* config=1408 */
    assert_int_equal(ms_aac_parse_asc(lc_16k_1, 2, &c), 0);
    assert_int_equal(c.sample_rate, 16000);
    assert_int_equal(c.channels, 1);
    /* HE-AAC explicit: aot 5, core 24 kHz, stereo, ext 48 kHz, core aot 2. */
    const uint8_t he[] = {0x2b, 0x11, 0x88, 0x00};
    assert_int_equal(ms_aac_parse_asc(he, sizeof he, &c), 0);
    assert_int_equal(c.object_type, 2);
    assert_int_equal(c.sample_rate, 24000);
    assert_int_equal(c.channels, 2);
    /* explicit frequency (index 15) */
    const uint8_t expl[] = {0x17, 0x80, 0x01, 0xf4, 0x08}; /* 1000 Hz, mono */
    assert_int_equal(ms_aac_parse_asc(expl, sizeof expl, &c), 0);
    assert_int_equal(c.sr_index, 15);
    assert_int_equal(c.sample_rate, 1000);
    assert_int_equal(c.channels, 1);
    assert_int_equal(ms_aac_parse_asc(lc_48k_2, 1, &c), -EINVAL);
    const uint8_t bad_idx[] = {0x16, 0x90}; /* index 13: reserved */
    assert_int_equal(ms_aac_parse_asc(bad_idx, 2, &c), -EINVAL);
}

static void test_build_asc(void **state)
{
    (void)state;
    uint8_t a[2];
    assert_int_equal(ms_aac_build_asc(2, 48000, 2, a), 2);
    assert_int_equal(a[0], 0x11);
    assert_int_equal(a[1], 0x90);
    assert_int_equal(ms_aac_build_asc(2, 44100, 1, a), 2);
    assert_int_equal(a[0], 0x12);
    assert_int_equal(a[1], 0x08);
    assert_int_equal(ms_aac_build_asc(2, 12345, 1, a), 0);
    assert_int_equal(ms_aac_sr_index(8000), 11);
    assert_int_equal(ms_aac_sr_index(7350), 12);
    assert_int_equal(ms_aac_sr_index(1), -1);
}

static void test_adts(void **state)
{
    (void)state;
    ms_aac_config_t c = {2, 3, 48000, 2};
    uint8_t h[7];
    assert_int_equal(ms_aac_adts_header(&c, 351, h), 0);
    /* What ffmpeg's ADTS muxer wrote for a 351-byte 48 kHz stereo frame. */
    const uint8_t want[7] = {0xff, 0xf1, 0x4c, 0x80, 0x2c, 0xdf, 0xfc};
    assert_memory_equal(h, want, 7);
    assert_int_equal(ms_aac_adts_header(&c, 8192, h), -EINVAL);
    ms_aac_config_t bad = {2, -1, 12345, 2};
    assert_int_equal(ms_aac_adts_header(&bad, 10, h), -EINVAL);
}

static void test_nal_next(void **state)
{
    (void)state;
    const uint8_t buf[] = {0, 0, 0, 2, 0x65, 0xaa, 0, 0, 0, 1, 0x41, 0, 0, 0, 9, 1};
    size_t off = 0;
    const uint8_t *n;
    size_t nl;
    assert_int_equal(ms_nal_next(buf, sizeof buf, &off, &n, &nl), 1);
    assert_int_equal(nl, 2);
    assert_int_equal(n[0], 0x65);
    assert_int_equal(ms_nal_next(buf, sizeof buf, &off, &n, &nl), 1);
    assert_int_equal(nl, 1);
    assert_int_equal(n[0], 0x41);
    assert_int_equal(ms_nal_next(buf, sizeof buf, &off, &n, &nl), -1);
    off = 0;
    assert_int_equal(ms_nal_next(buf, 11, &off, &n, &nl), 1);
    assert_int_equal(ms_nal_next(buf, 11, &off, &n, &nl), 1);
    assert_int_equal(ms_nal_next(buf, 11, &off, &n, &nl), 0);
}

static void test_annexb(void **state)
{
    (void)state;
    const uint8_t s[] = {0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 0, 0, 3, 1, 0};
    size_t off = 0;
    const uint8_t *n;
    size_t nl;
    assert_int_equal(ms_annexb_next(s, sizeof s, &off, &n, &nl), 1);
    assert_int_equal(nl, 3);
    assert_int_equal(n[0], 0x67);
    assert_int_equal(ms_annexb_next(s, sizeof s, &off, &n, &nl), 1);
    assert_int_equal(nl, 2);
    assert_int_equal(n[0], 0x68);
    assert_int_equal(ms_annexb_next(s, sizeof s, &off, &n, &nl), 1);
    assert_int_equal(nl, 5); /* 65 00 00 03 01, trailing zero dropped */
    assert_int_equal(n[0], 0x65);
    assert_int_equal(ms_annexb_next(s, sizeof s, &off, &n, &nl), 0);

    uint8_t u[8];
    assert_int_equal(ms_nal_unescape(u, n, nl), 4);
    const uint8_t want[] = {0x65, 0, 0, 1};
    assert_memory_equal(u, want, 4);
}

static void test_bits(void **state)
{
    (void)state;
    /* 1 | 010 | 011 | 00100 | 00101 -> ue 0,1,2,3 ; se of 4 = -2 */
    const uint8_t b[] = {0xa6, 0x42, 0x80};
    ms_bits_t r;
    ms_bits_init(&r, b, sizeof b);
    assert_int_equal(ms_bits_ue(&r), 0);
    assert_int_equal(ms_bits_ue(&r), 1);
    assert_int_equal(ms_bits_ue(&r), 2);
    assert_int_equal(ms_bits_ue(&r), 3);
    assert_int_equal(ms_bits_se(&r), -2); /* codeNum 4 -> -2 (9.1.1) */
    assert_int_equal(r.err, 0);
    (void)ms_bits_read(&r, 32);
    assert_int_equal(r.err, 1);
    ms_bits_init(&r, b, 1);
    ms_bits_skip(&r, 9);
    assert_int_equal(r.err, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_asc),    cmocka_unit_test(test_build_asc),
        cmocka_unit_test(test_adts),   cmocka_unit_test(test_nal_next),
        cmocka_unit_test(test_annexb), cmocka_unit_test(test_bits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
