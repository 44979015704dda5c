/* Archive HLS playlist renderer (dvr/archive.h ms_dvr_playlist) on
 * synthetic chunk tables: keyframe start at or before `from`, VOD end,
 * discontinuity at a hole, token carried into every URI, EVENT lists only
 * finished segments of an open chunk; media name parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "dvr/archive.h"

#define T0 1700000000000LL

/* A chunk of nf 1 s fragments from start_ms, keyframe every `gop` frags. */
static void mk(ms_dvr_chunk_t *c, ms_dvr_frag_t *f, int64_t id, int64_t start_ms, size_t nf,
               int gop, int open)
{
    memset(c, 0, sizeof *c);
    c->id = id;
    c->start_ms = start_ms;
    c->end_ms = start_ms + (int64_t)nf * 1000;
    c->init_len = 700;
    c->open = open;
    c->nfrags = nf;
    c->frags = f;
    for (size_t i = 0; i < nf; i++)
        f[i] = (ms_dvr_frag_t){start_ms + (int64_t)i * 1000, 1000, (i % (size_t)gop) == 0,
                               700 + i * 5000, 5000};
    c->bytes = 700 + nf * 5000;
}

static int count(const char *s, const char *w)
{
    int n = 0;
    for (const char *p = strstr(s, w); p; p = strstr(p + 1, w))
        n++;
    return n;
}

static void test_vod(void **state)
{
    (void)state;
    ms_dvr_chunk_t c[3];
    ms_dvr_frag_t f[3][10];
    mk(&c[0], f[0], 1, T0, 10, 2, 0);
    mk(&c[1], f[1], 2, T0 + 10000, 10, 2, 0);
    mk(&c[2], f[2], 3, T0 + 30000, 10, 2, 0); /* 10 s hole */
    ms_dvr_pl_opts_t o = {T0 + 3500, 30000, 0, 2000, 4000, "?token=abc"};
    ms_buf_t b = MS_BUF_INIT;
    int n = ms_dvr_playlist(c, 3, &o, &b);
    assert_true(n > 0);
    const char *s = ms_buf_cstr(&b);
    assert_non_null(strstr(s, "#EXT-X-PLAYLIST-TYPE:VOD\n"));
    assert_non_null(strstr(s, "#EXT-X-ENDLIST\n"));
    /* first segment: keyframe fragment 2 (t0 + 2 s), the last at or before from */
    assert_non_null(strstr(s, "#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:22.000Z\n"));
    assert_non_null(strstr(s, "archive-seg-1-1700000000000-2-5.m4s?token=abc\n"));
    assert_int_equal(count(s, "#EXT-X-DISCONTINUITY"), 1);
    assert_int_equal(count(s, "#EXT-X-MAP:URI=\"archive-init-"), 2);
    assert_int_equal(count(s, "#EXT-X-PROGRAM-DATE-TIME:"), n);
    /* 30 s from t0+2 s end at t0+32 s: chunk 3's first two fragments */
    assert_non_null(strstr(s, "archive-seg-3-1700000030000-0-1.m4s?token=abc\n"));
    assert_null(strstr(s, "archive-seg-3-1700000030000-0-2"));
    /* every URI line carries the token */
    for (const char *p = s; (p = strchr(p, '\n')) && p[1]; p++)
        if (p[1] != '#')
            assert_int_equal(strncmp(strchr(p + 1, '?'), "?token=abc\n", 11), 0);
    ms_buf_free(&b);
}

static void test_event_open_chunk(void **state)
{
    (void)state;
    ms_dvr_chunk_t c[1];
    ms_dvr_frag_t f[10];
    mk(&c[0], f, 7, T0, 7, 2, 1); /* open, 7 fragments: groups 0-3, 4-6 (unfinished) */
    ms_dvr_pl_opts_t o = {T0, 0, 1, 2000, 4000, ""};
    ms_buf_t b = MS_BUF_INIT;
    assert_int_equal(ms_dvr_playlist(c, 1, &o, &b), 1);
    const char *s = ms_buf_cstr(&b);
    assert_non_null(strstr(s, "#EXT-X-PLAYLIST-TYPE:EVENT\n"));
    assert_null(strstr(s, "#EXT-X-ENDLIST"));
    assert_non_null(strstr(s, "archive-seg-7-1700000000000-0-3.m4s\n"));
    assert_non_null(strstr(s, "#EXT-X-TARGETDURATION:10\n"));
    ms_buf_free(&b);
    c[0].open = 0; /* closed: the last group is listed */
    assert_int_equal(ms_dvr_playlist(c, 1, &o, &b), 2);
    ms_buf_free(&b);
    assert_int_equal(ms_dvr_playlist(c, 0, &o, &b), 0);
    ms_buf_free(&b);
}

static void test_names(void **state)
{
    (void)state;
    int64_t id, st, i, j;
    assert_int_equal(ms_dvr_media_name("archive-seg-12-1700000000000-3-9.m4s", &id, &st, &i, &j),
                     1);
    assert_true(id == 12 && st == T0 && i == 3 && j == 9);
    assert_int_equal(ms_dvr_media_name("archive-init-12-1700000000000.mp4", &id, &st, NULL, NULL),
                     2);
    static const char *const bad[] = {"archive-seg-12-1-9-3.m4s",  "archive-seg-1-2-3.m4s",
                                      "archive-seg-1-2-3-4-5.m4s", "archive-seg--1-2-3-4.m4s",
                                      "archive-init-1.mp4",        "archive-seg-a-1-2-3.m4s",
                                      "archive-init-1-2.m4s",      NULL};
    for (int k = 0; bad[k]; k++)
        assert_int_equal(ms_dvr_media_name(bad[k], &id, &st, &i, &j), -EINVAL);
}

/* A fixed table (a day boundary, a hole, a change of init segment, an open
 * chunk, a token) rendered three ways; the expected text is the output of
 * the renderer before it formatted through a stack buffer, so every line
 * (segments, durations, discontinuities, PROGRAM-DATE-TIME) stays the
 * same byte for byte. */
#define T1 1700006390000LL /* 2023-11-14T23:59:50Z */

static void mk2(ms_dvr_chunk_t *c, ms_dvr_frag_t *f, int64_t id, int64_t start_ms, size_t nf,
                int gop, int open, uint32_t init_len, uint32_t dur)
{
    mk(c, f, id, start_ms, nf, gop, open);
    c->init_len = init_len;
    c->end_ms = start_ms + (int64_t)nf * dur;
    for (size_t i = 0; i < nf; i++) {
        f[i].t_ms = start_ms + (int64_t)i * dur;
        f[i].dur_ms = dur;
    }
}

static const char *const GOLD[3] = {
    /* 11 segs */
    "#EXTM3U\n"
    "#EXT-X-VERSION:7\n"
    "#EXT-X-TARGETDURATION:3\n"
    "#EXT-X-MEDIA-SEQUENCE:0\n"
    "#EXT-X-PLAYLIST-TYPE:VOD\n"
    "#EXT-X-INDEPENDENT-SEGMENTS\n"
    "#EXT-X-MAP:URI=\"archive-init-11-1700006390000.mp4?token=a.b\"\n"
    "#EXT-X-PROGRAM-DATE-TIME:2023-11-14T23:59:50.000Z\n"
    "#EXTINF:2.000,\n"
    "archive-seg-11-1700006390000-0-1.m4s?token=a.b\n"
    "#EXT-X-PROGRAM-DATE-TIME:2023-11-14T23:59:52.000Z\n"
    "#EXTINF:2.000,\n"
    "archive-seg-11-1700006390000-2-3.m4s?token=a.b\n"
    "#EXT-X-PROGRAM-DATE-TIME:2023-11-14T23:59:54.000Z\n"
    "#EXTINF:2.000,\n"
    "archive-seg-11-1700006390000-4-5.m4s?token=a.b\n"
    "#EXT-X-PROGRAM-DATE-TIME:2023-11-14T23:59:56.000Z\n"
    "#EXTINF:3.000,\n"
    "archive-seg-12-1700006396000-0-2.m4s?token=a.b\n"
    "#EXT-X-PROGRAM-DATE-TIME:2023-11-14T23:59:59.000Z\n"
    "#EXTINF:3.000,\n"
    "archive-seg-12-1700006396000-3-5.m4s?token=a.b\n"
    "#EXT-X-DISCONTINUITY\n"
    "#EXT-X-MAP:URI=\"archive-init-13-1700006405000.mp4?token=a.b\"\n"
    "#EXT-X-PROGRAM-DATE-TIME:2023-11-15T00:00:05.000Z\n"
    "#EXTINF:2.000,\n"
    "archive-seg-13-1700006405000-0-1.m4s?token=a.b\n"
    "#EXT-X-PROGRAM-DATE-TIME:2023-11-15T00:00:07.000Z\n"
    "#EXTINF:2.000,\n"
    "archive-seg-13-1700006405000-2-3.m4s?token=a.b\n"
    "#EXT-X-PROGRAM-DATE-TIME:2023-11-15T00:00:09.000Z\n"
    "#EXTINF:1.000,\n"
    "archive-seg-13-1700006405000-4-4.m4s?token=a.b\n"
    "#EXT-X-DISCONTINUITY\n"
    "#EXT-X-MAP:URI=\"archive-init-14-1700006410000.mp4?token=a.b\"\n"
    "#EXT-X-PROGRAM-DATE-TIME:2023-11-15T00:00:10.000Z\n"
    "#EXTINF:2.000,\n"
    "archive-seg-14-1700006410000-0-3.m4s?token=a.b\n"
    "#EXT-X-PROGRAM-DATE-TIME:2023-11-15T00:00:12.000Z\n"
    "#EXTINF:2.000,\n"
    "archive-seg-14-1700006410000-4-7.m4s?token=a.b\n"
    "#EXT-X-PROGRAM-DATE-TIME:2023-11-15T00:00:14.000Z\n"
    "#EXTINF:1.000,\n"
    "archive-seg-15-1700006414000-0-0.m4s?token=a.b\n"
    "#EXT-X-ENDLIST\n",
    /* 7 segs */
    "#EXTM3U\n"
    "#EXT-X-VERSION:7\n"
    "#EXT-X-TARGETDURATION:10\n"
    "#EXT-X-MEDIA-SEQUENCE:0\n"
    "#EXT-X-PLAYLIST-TYPE:EVENT\n"
    "#EXT-X-INDEPENDENT-SEGMENTS\n"
    "#EXT-X-MAP:URI=\"archive-init-11-1700006390000.mp4\"\n"
    "#EXT-X-PROGRAM-DATE-TIME:2023-11-14T23:59:50.000Z\n"
    "#EXTINF:4.000,\n"
    "archive-seg-11-1700006390000-0-3.m4s\n"
    "#EXT-X-PROGRAM-DATE-TIME:2023-11-14T23:59:54.000Z\n"
    "#EXTINF:2.000,\n"
    "archive-seg-11-1700006390000-4-5.m4s\n"
    "#EXT-X-PROGRAM-DATE-TIME:2023-11-14T23:59:56.000Z\n"
    "#EXTINF:6.000,\n"
    "archive-seg-12-1700006396000-0-5.m4s\n"
    "#EXT-X-DISCONTINUITY\n"
    "#EXT-X-MAP:URI=\"archive-init-13-1700006405000.mp4\"\n"
    "#EXT-X-PROGRAM-DATE-TIME:2023-11-15T00:00:05.000Z\n"
    "#EXTINF:4.000,\n"
    "archive-seg-13-1700006405000-0-3.m4s\n"
    "#EXT-X-PROGRAM-DATE-TIME:2023-11-15T00:00:09.000Z\n"
    "#EXTINF:1.000,\n"
    "archive-seg-13-1700006405000-4-4.m4s\n"
    "#EXT-X-DISCONTINUITY\n"
    "#EXT-X-MAP:URI=\"archive-init-14-1700006410000.mp4\"\n"
    "#EXT-X-PROGRAM-DATE-TIME:2023-11-15T00:00:10.000Z\n"
    "#EXTINF:4.000,\n"
    "archive-seg-14-1700006410000-0-7.m4s\n"
    "#EXT-X-PROGRAM-DATE-TIME:2023-11-15T00:00:14.000Z\n"
    "#EXTINF:4.000,\n"
    "archive-seg-15-1700006414000-0-3.m4s\n",
    /* 1 segs */
    "#EXTM3U\n"
    "#EXT-X-VERSION:7\n"
    "#EXT-X-TARGETDURATION:6\n"
    "#EXT-X-MEDIA-SEQUENCE:0\n"
    "#EXT-X-PLAYLIST-TYPE:VOD\n"
    "#EXT-X-INDEPENDENT-SEGMENTS\n"
    "#EXT-X-MAP:URI=\"archive-init-12-1700006396000.mp4\"\n"
    "#EXT-X-PROGRAM-DATE-TIME:2023-11-14T23:59:56.000Z\n"
    "#EXTINF:6.000,\n"
    "archive-seg-12-1700006396000-0-5.m4s\n"
    "#EXT-X-ENDLIST\n",
};

static void test_golden(void **state)
{
    (void)state;
    ms_dvr_chunk_t c[5];
    ms_dvr_frag_t f[5][12];
    mk2(&c[0], f[0], 11, T1, 6, 2, 0, 700, 1000);
    mk2(&c[1], f[1], 12, T1 + 6000, 6, 3, 0, 700, 1000);  /* crosses midnight */
    mk2(&c[2], f[2], 13, T1 + 15000, 5, 1, 0, 700, 1000); /* 3 s hole */
    mk2(&c[3], f[3], 14, T1 + 20000, 8, 4, 0, 720, 500);  /* new init segment */
    mk2(&c[4], f[4], 15, T1 + 24000, 7, 2, 1, 720, 1000); /* open */
    const ms_dvr_pl_opts_t o[3] = {{T1 + 1500, 25000, 0, 2000, 2000, "?token=a.b"},
                                   {T1 + 500, 0, 1, 2000, 4000, ""},
                                   {T1 + 7000, 9000, 0, 2000, 4000, ""}};
    const int segs[3] = {11, 7, 1};
    for (int k = 0; k < 3; k++) {
        ms_buf_t b = MS_BUF_INIT;
        assert_int_equal(ms_dvr_playlist(c, 5, &o[k], &b), segs[k]);
        assert_string_equal(ms_buf_cstr(&b), GOLD[k]);
        ms_buf_free(&b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vod),
        cmocka_unit_test(test_event_open_chunk),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_golden),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
