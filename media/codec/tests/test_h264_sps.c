/* H.264 SPS parsing and avcC building, on parameter sets produced by libx264
 * (ffmpeg -f lavfi -i testsrc=size=WxH -c:v libx264 ...) and the avcC boxes
 * that ffmpeg's MP4 muxer wrote for the same streams. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <string.h>

#include <cmocka.h>

#include "media/codec/h264.h"
#include "media/codec/nal.h"

/* testsrc 640x360 High 4:2:0, level 3.0, 25 fps */
static const uint8_t a360_sps[] = {0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9, 0x40, 0xa0, 0x2f,
                                   0xf9, 0x70, 0x11, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00,
                                   0x00, 0x03, 0x00, 0x32, 0x0f, 0x16, 0x2d, 0x96};
static const uint8_t a360_pps[] = {0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0};
static const uint8_t a1366_sps[] = {0x67, 0x64, 0x00, 0x20, 0xac, 0xd9, 0x40, 0x56, 0x06,
                                    0x1e, 0x6f, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10,
                                    0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x83, 0x19, 0x60};
static const uint8_t a1366_pps[] = {0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0};
static const uint8_t base_sps[] = {0x67, 0x42, 0xc0, 0x0b, 0xd9, 0x02, 0xc4, 0xec,
                                   0x04, 0x40, 0x00, 0x00, 0x03, 0x00, 0x40, 0x00,
                                   0x00, 0x0c, 0x83, 0xc5, 0x0a, 0x92};
static const uint8_t base_pps[] = {0x68, 0xcb, 0x83, 0xcb, 0x20};
static const uint8_t h444_sps[] = {0x67, 0xf4, 0x00, 0x20, 0x91, 0x9b, 0x28, 0x0a, 0xc0,
                                   0xc3, 0xc5, 0xf8, 0x08, 0x80, 0x00, 0x00, 0x03, 0x00,
                                   0x80, 0x00, 0x00, 0x19, 0x07, 0x8c, 0x18, 0xcb};
static const uint8_t h444_pps[] = {0x68, 0xeb, 0xe3, 0xc4, 0x48, 0x44};
static const uint8_t hi10_sps[] = {0x67, 0x6e, 0x00, 0x0d, 0xa6, 0xcd, 0x94, 0x14, 0x1f,
                                   0xb0, 0x11, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00,
                                   0x03, 0x00, 0x32, 0x0f, 0x14, 0x29, 0x96};
static const uint8_t hi10_pps[] = {0x68, 0xeb, 0xe3, 0xcb, 0x30, 0x02, 0xc0};
static const uint8_t intl_sps[] = {0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9, 0x40, 0xa0, 0x63,
                                   0xf3, 0xe0, 0x22, 0x00, 0x00, 0x03, 0x00, 0x02, 0x00,
                                   0x00, 0x03, 0x00, 0x64, 0x3e, 0x28, 0x53, 0x2c};
static const uint8_t intl_pps[] = {0x68, 0xfb, 0xa3, 0xcb, 0x22, 0xc0};
static const uint8_t avcc_a[] = {
    0x01, 0x64, 0x00, 0x1e, 0xff, 0xe1, 0x00, 0x1a, 0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9, 0x40, 0xa0,
    0x2f, 0xf9, 0x70, 0x11, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x03, 0x00, 0x32, 0x0f, 0x16,
    0x2d, 0x96, 0x01, 0x00, 0x06, 0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0, 0xfd, 0xf8, 0xf8, 0x00};
static const uint8_t avcc_a1366[] = {
    0x01, 0x64, 0x00, 0x20, 0xff, 0xe1, 0x00, 0x1b, 0x67, 0x64, 0x00, 0x20, 0xac, 0xd9, 0x40, 0x56,
    0x06, 0x1e, 0x6f, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1,
    0x83, 0x19, 0x60, 0x01, 0x00, 0x06, 0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0, 0xfd, 0xf8, 0xf8, 0x00};
static const uint8_t avcc_c444[] = {
    0x01, 0xf4, 0x00, 0x20, 0xff, 0xe1, 0x00, 0x1a, 0x67, 0xf4, 0x00, 0x20, 0x91, 0x9b, 0x28, 0x0a,
    0xc0, 0xc3, 0xc5, 0xf8, 0x08, 0x80, 0x00, 0x00, 0x03, 0x00, 0x80, 0x00, 0x00, 0x19, 0x07, 0x8c,
    0x18, 0xcb, 0x01, 0x00, 0x06, 0x68, 0xeb, 0xe3, 0xc4, 0x48, 0x44, 0xff, 0xf8, 0xf8, 0x00};
static const uint8_t avcc_d10[] = {
    0x01, 0x6e, 0x00, 0x0d, 0xff, 0xe1, 0x00, 0x19, 0x67, 0x6e, 0x00, 0x0d, 0xa6, 0xcd, 0x94, 0x14,
    0x1f, 0xb0, 0x11, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x03, 0x00, 0x32, 0x0f, 0x14, 0x29,
    0x96, 0x01, 0x00, 0x07, 0x68, 0xeb, 0xe3, 0xcb, 0x30, 0x02, 0xc0, 0xfd, 0xfa, 0xfa, 0x00};
static const uint8_t avcc_e[] = {
    0x01, 0x64, 0x00, 0x1e, 0xff, 0xe1, 0x00, 0x1a, 0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9, 0x40, 0xa0,
    0x63, 0xf3, 0xe0, 0x22, 0x00, 0x00, 0x03, 0x00, 0x02, 0x00, 0x00, 0x03, 0x00, 0x64, 0x3e, 0x28,
    0x53, 0x2c, 0x01, 0x00, 0x06, 0x68, 0xfb, 0xa3, 0xcb, 0x22, 0xc0, 0xfd, 0xf8, 0xf8, 0x00};

static void test_sps_basic(void **state)
{
    (void)state;
    ms_h264_sps_t s;
    assert_int_equal(ms_h264_parse_sps(a360_sps, sizeof a360_sps, &s), 0);
    assert_int_equal(s.profile_idc, 100);
    assert_int_equal(s.level_idc, 30);
    assert_int_equal(s.chroma_format_idc, 1);
    assert_int_equal(s.bit_depth_luma, 8);
    assert_int_equal(s.width, 640);
    assert_int_equal(s.height, 360); /* 368 coded, cropped by 8 lines */
    assert_int_equal(s.frame_mbs_only, 1);
    assert_int_equal(s.fps_num, 50);
    assert_int_equal(s.fps_den, 2);
}

static void test_sps_cropping_1366(void **state)
{
    (void)state;
    ms_h264_sps_t s;
    assert_int_equal(ms_h264_parse_sps(a1366_sps, sizeof a1366_sps, &s), 0);
    assert_int_equal(s.profile_idc, 100);
    assert_int_equal(s.level_idc, 32);
    assert_int_equal(s.width, 1366); /* 1376 coded, right crop 5 units of 2 */
    assert_int_equal(s.height, 768);
    assert_int_equal(s.fps_num * 1, 60);
    assert_int_equal(s.fps_den, 2);
}

static void test_sps_baseline(void **state)
{
    (void)state;
    ms_h264_sps_t s;
    assert_int_equal(ms_h264_parse_sps(base_sps, sizeof base_sps, &s), 0);
    assert_int_equal(s.profile_idc, 66);
    assert_int_equal(s.level_idc, 11);
    assert_int_equal(s.chroma_format_idc, 1);
    assert_int_equal(s.width, 176);
    assert_int_equal(s.height, 144);
}

static void test_sps_high444(void **state)
{
    (void)state;
    ms_h264_sps_t s;
    assert_int_equal(ms_h264_parse_sps(h444_sps, sizeof h444_sps, &s), 0);
    assert_int_equal(s.profile_idc, 244);
    assert_int_equal(s.chroma_format_idc, 3);
    assert_int_equal(s.width, 1366); /* 4:4:4 crop unit is 1 sample */
    assert_int_equal(s.height, 768);
}

static void test_sps_high10(void **state)
{
    (void)state;
    ms_h264_sps_t s;
    assert_int_equal(ms_h264_parse_sps(hi10_sps, sizeof hi10_sps, &s), 0);
    assert_int_equal(s.profile_idc, 110);
    assert_int_equal(s.level_idc, 13);
    assert_int_equal(s.bit_depth_luma, 10);
    assert_int_equal(s.bit_depth_chroma, 10);
    assert_int_equal(s.width, 320);
    assert_int_equal(s.height, 240);
}

static void test_sps_interlaced(void **state)
{
    (void)state;
    ms_h264_sps_t s;
    assert_int_equal(ms_h264_parse_sps(intl_sps, sizeof intl_sps, &s), 0);
    assert_int_equal(s.frame_mbs_only, 0);
    assert_int_equal(s.width, 640);
    assert_int_equal(s.height, 360); /* 12 map units of 32 lines, crop 6 x 4 */
}

/* Minimal MSB-first bit writer with Exp-Golomb, to build SPSs with syntax
 * elements libx264 never emits (SPS scaling lists, 4:2:2 cropping). */
typedef struct {
    uint8_t b[64];
    size_t bit;
} bw_t;
static void put(bw_t *w, uint32_t v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        if ((v >> i) & 1)
            w->b[w->bit >> 3] |= (uint8_t)(0x80 >> (w->bit & 7));
        w->bit++;
    }
}
static void ue(bw_t *w, uint32_t v)
{
    uint32_t x = v + 1;
    int n = 0;
    while ((x >> n) > 1)
        n++;
    put(w, 0, n);
    put(w, x, n + 1);
}
static void se(bw_t *w, int32_t v)
{
    ue(w, v > 0 ? (uint32_t)(2 * v - 1) : (uint32_t)(-2 * v));
}

static size_t build_high422_sps(uint8_t *out)
{
    bw_t w;
    memset(&w, 0, sizeof w);
    put(&w, 0x67, 8);
    put(&w, 122, 8); /* High 4:2:2 */
    put(&w, 0, 8);
    put(&w, 40, 8);
    ue(&w, 0); /* sps id */
    ue(&w, 2); /* chroma_format_idc 4:2:2 */
    ue(&w, 2); /* bit depth 10 */
    ue(&w, 2);
    put(&w, 0, 1);
    put(&w, 1, 1); /* seq_scaling_matrix_present_flag */
    for (int i = 0; i < 8; i++) {
        put(&w, i == 0 || i == 6 ? 1 : 0, 1);
        if (i == 0) { /* 4x4 list: a few deltas then a zero (use default) */
            se(&w, 5);
            se(&w, -3);
            se(&w, -2 - 8);
        } else if (i == 6) { /* 8x8 list: 64 explicit deltas */
            for (int j = 0; j < 64; j++)
                se(&w, j & 1 ? 1 : -1);
        }
    }
    ue(&w, 0); /* log2_max_frame_num_minus4 */
    ue(&w, 1); /* poc type 1 */
    put(&w, 0, 1);
    se(&w, -2);
    se(&w, 1);
    ue(&w, 2);
    se(&w, 4);
    se(&w, -4);
    ue(&w, 1);     /* max_num_ref_frames */
    put(&w, 0, 1); /* gaps */
    ue(&w, 119);   /* 1920 */
    ue(&w, 67);    /* 1088 */
    put(&w, 1, 1); /* frame_mbs_only */
    put(&w, 1, 1); /* direct_8x8 */
    put(&w, 1, 1); /* cropping */
    ue(&w, 1);     /* left 2 px */
    ue(&w, 0);
    ue(&w, 0);
    ue(&w, 8);     /* bottom 8 lines (4:2:2 crop unit y = 1) */
    put(&w, 0, 1); /* no VUI */
    put(&w, 1, 1); /* rbsp stop bit */
    memcpy(out, w.b, sizeof w.b);
    return (w.bit + 7) / 8;
}

static void test_sps_scaling_lists_422(void **state)
{
    (void)state;
    uint8_t sps[64];
    size_t n = build_high422_sps(sps);
    ms_h264_sps_t s;
    assert_int_equal(ms_h264_parse_sps(sps, n, &s), 0);
    assert_int_equal(s.profile_idc, 122);
    assert_int_equal(s.chroma_format_idc, 2);
    assert_int_equal(s.bit_depth_luma, 10);
    assert_int_equal(s.width, 1918); /* crop unit x is 2 for 4:2:2 */
    assert_int_equal(s.height, 1080);
    assert_int_equal(s.fps_num, 0);
    /* Every truncation is rejected or parsed, never read past the end. */
    for (size_t l = 0; l < n; l++) {
        ms_h264_sps_t t;
        (void)ms_h264_parse_sps(sps, l, &t);
    }
    assert_int_equal(ms_h264_parse_sps(sps, 20, &s), -EINVAL);
}

static void test_sps_invalid(void **state)
{
    (void)state;
    ms_h264_sps_t s;
    assert_int_equal(ms_h264_parse_sps(a360_pps, sizeof a360_pps, &s), -EINVAL);
    assert_int_equal(ms_h264_parse_sps(a360_sps, 3, &s), -EINVAL);
    assert_int_equal(ms_h264_parse_sps(a360_sps, 8, &s), -EINVAL);
}

static void check_avcc(const uint8_t *sps, size_t sl, const uint8_t *pps, size_t pl,
                       const uint8_t *want, size_t wl)
{
    uint8_t out[256];
    size_t n = ms_h264_avcc(sps, sl, pps, pl, out, sizeof out);
    assert_int_equal(n, wl);
    assert_memory_equal(out, want, wl);
    assert_int_equal(ms_h264_avcc(sps, sl, pps, pl, out, wl - 1), 0);
}

static void test_avcc_matches_ffmpeg(void **state)
{
    (void)state;
    check_avcc(a360_sps, sizeof a360_sps, a360_pps, sizeof a360_pps, avcc_a, sizeof avcc_a);
    check_avcc(a1366_sps, sizeof a1366_sps, a1366_pps, sizeof a1366_pps, avcc_a1366,
               sizeof avcc_a1366);
    check_avcc(h444_sps, sizeof h444_sps, h444_pps, sizeof h444_pps, avcc_c444, sizeof avcc_c444);
    check_avcc(hi10_sps, sizeof hi10_sps, hi10_pps, sizeof hi10_pps, avcc_d10, sizeof avcc_d10);
    check_avcc(intl_sps, sizeof intl_sps, intl_pps, sizeof intl_pps, avcc_e, sizeof avcc_e);
    /* Baseline: no chroma/bit-depth extension. */
    uint8_t out[128];
    size_t n = ms_h264_avcc(base_sps, sizeof base_sps, base_pps, sizeof base_pps, out, sizeof out);
    assert_int_equal(n, 6 + 2 + sizeof base_sps + 1 + 2 + sizeof base_pps);
    assert_int_equal(out[1], 66);
    assert_int_equal(out[4], 0xff);
    assert_int_equal(out[5], 0xe1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sps_basic),
        cmocka_unit_test(test_sps_cropping_1366),
        cmocka_unit_test(test_sps_baseline),
        cmocka_unit_test(test_sps_high444),
        cmocka_unit_test(test_sps_high10),
        cmocka_unit_test(test_sps_interlaced),
        cmocka_unit_test(test_sps_scaling_lists_422),
        cmocka_unit_test(test_sps_invalid),
        cmocka_unit_test(test_avcc_matches_ffmpeg),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
