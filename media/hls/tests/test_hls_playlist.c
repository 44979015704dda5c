/* HLS playlist renderer: exact text for known states (TS with LL-HLS parts,
 * discontinuity and preload hint; fMP4 with EXT-X-MAP changes; tokens). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "media/hls/playlist.h"

static void test_ts_ll(void **state)
{
    (void)state;
    ms_hls_pl_part_t p10[2] = {{18000, 1}, {18000, 0}};
    ms_hls_pl_part_t p11[2] = {{18000, 1}, {9000, 0}};
    ms_hls_pl_seg_t segs[3] = {
        {9, 180000, 1700000000000000LL, 0, 1, 1, NULL, 0},
        {10, 36000, 1700000002000000LL, 1, 1, 1, p10, 2},
        {11, 0, 1700000002400000LL, 0, 1, 0, p11, 2},
    };
    ms_hls_pl_t pl = {.fmp4 = 0,
                      .target_s = 2,
                      .part_target_ms = 200,
                      .disc_seq = 3,
                      .segs = segs,
                      .nsegs = 3,
                      .hint_msn = 11,
                      .hint_part = 2};
    ms_buf_t b = MS_BUF_INIT;
    assert_int_equal(ms_hls_pl_render(&pl, &b), 0);
    const char *want = "#EXTM3U\n"
                       "#EXT-X-VERSION:9\n"
                       "#EXT-X-TARGETDURATION:2\n"
                       "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.600\n"
                       "#EXT-X-PART-INF:PART-TARGET=0.200\n"
                       "#EXT-X-MEDIA-SEQUENCE:9\n"
                       "#EXT-X-DISCONTINUITY-SEQUENCE:3\n"
                       "#EXT-X-INDEPENDENT-SEGMENTS\n"
                       "#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:20.000Z\n"
                       "#EXTINF:2.000,\n"
                       "seg9.ts\n"
                       "#EXT-X-DISCONTINUITY\n"
                       "#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:22.000Z\n"
                       "#EXT-X-PART:DURATION=0.200,URI=\"part10.0.ts\",INDEPENDENT=YES\n"
                       "#EXT-X-PART:DURATION=0.200,URI=\"part10.1.ts\"\n"
                       "#EXTINF:0.400,\n"
                       "seg10.ts\n"
                       "#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:22.400Z\n"
                       "#EXT-X-PART:DURATION=0.200,URI=\"part11.0.ts\",INDEPENDENT=YES\n"
                       "#EXT-X-PART:DURATION=0.100,URI=\"part11.1.ts\"\n"
                       "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part11.2.ts\"\n";
    assert_string_equal(ms_buf_cstr(&b), want);

    /* The same state with a token: rendered directly and added afterwards. */
    ms_buf_t q = MS_BUF_INIT, q2 = MS_BUF_INIT;
    pl.query = "token=abc";
    assert_int_equal(ms_hls_pl_render(&pl, &q), 0);
    assert_int_equal(ms_hls_pl_add_query(want, strlen(want), "token=abc", &q2), 0);
    assert_string_equal(ms_buf_cstr(&q), ms_buf_cstr(&q2));
    assert_non_null(strstr(ms_buf_cstr(&q), "\nseg9.ts?token=abc\n"));
    assert_non_null(strstr(ms_buf_cstr(&q), "URI=\"part11.2.ts?token=abc\"\n"));
    assert_non_null(strstr(ms_buf_cstr(&q), "URI=\"part10.0.ts?token=abc\",INDEPENDENT=YES\n"));
    ms_buf_free(&b);
    ms_buf_free(&q);
    ms_buf_free(&q2);
}

static void test_fmp4_map(void **state)
{
    (void)state;
    ms_hls_pl_seg_t segs[3] = {
        {0, 90000, 0, 0, 1, 1, NULL, 0},
        {1, 90000, 0, 0, 1, 1, NULL, 0},
        {2, 45000, 0, 1, 2, 1, NULL, 0},
    };
    ms_hls_pl_t pl = {
        .fmp4 = 1, .target_s = 1, .segs = segs, .nsegs = 3, .hint_part = -1, .endlist = 1};
    ms_buf_t b = MS_BUF_INIT;
    assert_int_equal(ms_hls_pl_render(&pl, &b), 0);
    const char *want = "#EXTM3U\n"
                       "#EXT-X-VERSION:6\n"
                       "#EXT-X-TARGETDURATION:1\n"
                       "#EXT-X-MEDIA-SEQUENCE:0\n"
                       "#EXT-X-DISCONTINUITY-SEQUENCE:0\n"
                       "#EXT-X-INDEPENDENT-SEGMENTS\n"
                       "#EXT-X-MAP:URI=\"init1.mp4\"\n"
                       "#EXTINF:1.000,\n"
                       "seg0.m4s\n"
                       "#EXTINF:1.000,\n"
                       "seg1.m4s\n"
                       "#EXT-X-DISCONTINUITY\n"
                       "#EXT-X-MAP:URI=\"init2.mp4\"\n"
                       "#EXTINF:0.500,\n"
                       "seg2.m4s\n"
                       "#EXT-X-ENDLIST\n";
    assert_string_equal(ms_buf_cstr(&b), want);
    ms_buf_free(&b);
    pl.nsegs = 0;
    assert_int_equal(ms_hls_pl_render(&pl, &b), -EINVAL);
    ms_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ts_ll),
        cmocka_unit_test(test_fmp4_map),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
