/* Cross-server archive playlists, pure part (api/archive_remote.h): the
 * playlists the local renderer (ms_dvr_playlist) writes for two servers'
 * pieces are parsed and spliced into one timeline (RFC 8216 sections
 * 4.3.2.3, 4.3.2.5, 4.3.2.6). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api/archive_remote.h"
#include "dvr/archive.h"

#define T0 1700000000000LL /* 2023-11-14T22:13:20.000Z */

/* One chunk of nf fragments of 1 s each, keyframes every other fragment. */
static void mk_chunk(ms_dvr_chunk_t *c, ms_dvr_frag_t *f, int64_t id, int64_t start, size_t nf,
                     uint32_t init_len)
{
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < nf; i++) {
        f[i].t_ms = start + (int64_t)i * 1000;
        f[i].dur_ms = 1000;
        f[i].key = i % 2 == 0;
        f[i].off = init_len + i * 100;
        f[i].size = 100;
    }
    c->id = id;
    c->start_ms = start;
    c->end_ms = start + (int64_t)nf * 1000;
    c->init_len = init_len;
    c->nfrags = nf;
    c->frags = f;
}

/* Renders chunks as ms_dvr_playlist does for a window. */
static char *render_local(const ms_dvr_chunk_t *v, size_t n, int64_t from, int64_t dur,
                          const char *query)
{
    ms_dvr_pl_opts_t o = {from, dur, 0, 2000, 4000, query};
    ms_buf_t b = MS_BUF_INIT;
    assert_true(ms_dvr_playlist(v, n, &o, &b) >= 0);
    char *s = strdup(ms_buf_cstr(&b));
    ms_buf_free(&b);
    return s;
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

static void test_pdt(void **state)
{
    (void)state;
    int64_t ms = 0;
    const char *s = "2023-11-14T22:13:20.250Z";
    assert_int_equal(ms_arch_parse_pdt(s, strlen(s), &ms), 0);
    assert_int_equal(ms, T0 + 250);
    s = "1970-01-01T00:00:00+00:00";
    assert_int_equal(ms_arch_parse_pdt(s, strlen(s), &ms), 0);
    assert_int_equal(ms, 0);
    s = "2024-02-29T23:59:59.9Z";
    assert_int_equal(ms_arch_parse_pdt(s, strlen(s), &ms), 0);
    assert_int_equal(ms, 1709251199900LL);
    s = "2023-11-14T22:13:20.250+01:00"; /* not UTC: refused */
    assert_int_equal(ms_arch_parse_pdt(s, strlen(s), &ms), -EINVAL);
    s = "2023-1x-14T22:13:20Z";
    assert_int_equal(ms_arch_parse_pdt(s, strlen(s), &ms), -EINVAL);
    assert_int_equal(ms_arch_parse_pdt("", 0, &ms), -EINVAL);
}

static void test_parse(void **state)
{
    (void)state;
    ms_dvr_chunk_t c[2];
    ms_dvr_frag_t f0[6], f1[6];
    mk_chunk(&c[0], f0, 1, T0, 6, 700);
    mk_chunk(&c[1], f1, 2, T0 + 6000, 6, 700);
    char *pl = render_local(c, 2, T0, 12000, "?token=a%20b");
    ms_arch_list_t l = {0};
    int n = ms_arch_parse(pl, strlen(pl), "http://127.0.0.1:9/s/", 3, &l);
    assert_true(n >= 3);
    assert_int_equal((size_t)n, l.n);
    int64_t total = 0;
    for (size_t i = 0; i < l.n; i++) {
        assert_int_equal(l.v[i].src, 3);
        assert_true(strncmp(l.v[i].uri, "http://127.0.0.1:9/s/archive-seg-", 33) == 0);
        assert_non_null(strstr(l.v[i].uri, ".m4s?token=a%20b"));
        assert_non_null(l.v[i].map);
        assert_true(strncmp(l.v[i].map, "http://127.0.0.1:9/s/archive-init-", 34) == 0);
        if (i)
            assert_int_equal(l.v[i].t_ms, l.v[i - 1].t_ms + l.v[i - 1].dur_ms);
        total += l.v[i].dur_ms;
    }
    assert_int_equal(l.v[0].t_ms, T0);
    assert_int_equal(total, 12000);
    ms_arch_list_free(&l);
    assert_int_equal(ms_arch_parse("nope", 4, "", 0, &l), -EINVAL);
    /* CRLF, absolute URIs kept, a segment without a time is skipped */
    const char *t = "#EXTM3U\r\n#EXTINF:2.5,\r\nlost.m4s\r\n"
                    "#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:20.000Z\r\n#EXTINF:2.5,\r\n"
                    "http://h:1/x.m4s\r\n#EXTINF:1,\r\ny.m4s";
    assert_int_equal(ms_arch_parse(t, strlen(t), "P/", 0, &l), 2);
    assert_string_equal(l.v[0].uri, "http://h:1/x.m4s");
    assert_int_equal(l.v[0].dur_ms, 2500);
    assert_string_equal(l.v[1].uri, "P/y.m4s");
    assert_int_equal(l.v[1].t_ms, T0 + 2500);
    assert_null(l.v[1].map);
    ms_arch_list_free(&l);
    free(pl);
}

/* Local piece [T0, T0+8 s), remote piece [T0+9.5 s, T0+17.5 s) after a
 * transfer, asked as one 17 s window: both in time order, one
 * discontinuity and a new EXT-X-MAP at the switch, remote URIs absolute. */
static void test_splice_two_servers(void **state)
{
    (void)state;
    ms_dvr_chunk_t a[2], b[2];
    ms_dvr_frag_t fa0[4], fa1[4], fb0[4], fb1[4];
    mk_chunk(&a[0], fa0, 10, T0, 4, 700);
    mk_chunk(&a[1], fa1, 11, T0 + 4000, 4, 700);
    mk_chunk(&b[0], fb0, 20, T0 + 9500, 4, 700);
    mk_chunk(&b[1], fb1, 21, T0 + 13500, 4, 700);
    char *local = render_local(a, 2, T0, 17000, "?token=t");
    /* what the other server answers for its sub-window, asked from the
     * second its range starts: its renderer starts at its first keyframe */
    char *remote = render_local(b, 2, T0 + 9000, 9000, "?token=t");
    ms_arch_list_t l = {0};
    assert_true(ms_arch_parse(remote, strlen(remote), "http://127.0.0.2:8080/uid/", 1, &l) > 0);
    assert_true(ms_arch_parse(local, strlen(local), "", 0, &l) > 0);
    ms_buf_t out = MS_BUF_INIT;
    int n = ms_arch_render(&l, T0, T0 + 17000, 0, 2000, &out);
    const char *pl = ms_buf_cstr(&out);
    assert_true(n >= 4);
    assert_int_equal(count(pl, "#EXT-X-DISCONTINUITY\n"), 1);
    assert_int_equal(count(pl, "#EXT-X-MAP:"), 2);
    assert_int_equal(count(pl, "#EXT-X-ENDLIST\n"), 1);
    assert_int_equal(count(pl, "#EXT-X-PROGRAM-DATE-TIME:"), (size_t)n);
    assert_non_null(strstr(pl, "#EXT-X-PLAYLIST-TYPE:VOD\n"));
    /* local first (relative), then the remote (absolute), token kept */
    const char *first_remote = strstr(pl, "http://127.0.0.2:8080/uid/archive-seg-20-");
    const char *last_local = strstr(pl, "archive-seg-11-");
    const char *disc = strstr(pl, "#EXT-X-DISCONTINUITY");
    assert_non_null(first_remote);
    assert_non_null(last_local);
    assert_true(last_local < disc && disc < first_remote);
    assert_non_null(strstr(disc, "#EXT-X-MAP:URI=\"http://127.0.0.2:8080/uid/archive-init-20-"));
    assert_non_null(strstr(pl, "#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:29.500Z\n"));
    assert_int_equal(count(pl, "?token=t"), (size_t)n + 2);
    /* a re-parse of the output gives increasing times */
    ms_arch_list_t l2 = {0};
    assert_int_equal(ms_arch_parse(pl, strlen(pl), "", 0, &l2), n);
    for (size_t i = 1; i < l2.n; i++)
        assert_true(l2.v[i].t_ms >= l2.v[i - 1].t_ms + l2.v[i - 1].dur_ms);
    assert_int_equal(l2.v[0].t_ms, T0);
    assert_int_equal(l2.v[l2.n - 1].t_ms + l2.v[l2.n - 1].dur_ms, T0 + 17500);
    ms_arch_list_free(&l2);
    ms_arch_list_free(&l);
    ms_buf_free(&out);
    free(local);
    free(remote);
}

/* The same seconds from two servers (a split brain, or a remote sub-window
 * starting at a keyframe before the local piece ends): listed once; VOD
 * clips to the window; EVENT keeps no ENDLIST. */
static void test_overlap_and_clip(void **state)
{
    (void)state;
    ms_dvr_chunk_t a[1], b[1];
    ms_dvr_frag_t fa[8], fb[8];
    mk_chunk(&a[0], fa, 1, T0, 8, 700);
    mk_chunk(&b[0], fb, 2, T0 + 4000, 8, 800);
    char *local = render_local(a, 1, T0, 30000, "");
    char *remote = render_local(b, 1, T0 + 4000, 30000, "");
    ms_arch_list_t l = {0};
    assert_true(ms_arch_parse(local, strlen(local), "", 0, &l) > 0);
    assert_true(ms_arch_parse(remote, strlen(remote), "http://r/", 1, &l) > 0);
    ms_buf_t out = MS_BUF_INIT;
    int n = ms_arch_render(&l, T0, T0 + 10000, 0, 2000, &out);
    const char *pl = ms_buf_cstr(&out);
    ms_arch_list_t l2 = {0};
    assert_int_equal(ms_arch_parse(pl, strlen(pl), "", 0, &l2), n);
    for (size_t i = 1; i < l2.n; i++)
        assert_true(l2.v[i].t_ms >= l2.v[i - 1].t_ms + l2.v[i - 1].dur_ms - 250);
    /* local covers [T0, T0+8 s); the remote adds [T0+8, T0+10) only */
    assert_true(l2.v[l2.n - 1].t_ms < T0 + 10000);
    assert_int_equal(count(pl, "http://r/archive-seg-2-"), 1);
    assert_int_equal(count(pl, "#EXT-X-DISCONTINUITY\n"), 1);
    ms_arch_list_free(&l2);
    ms_arch_list_free(&l);
    ms_buf_reset(&out);
    /* event, nothing kept but the header */
    l = (ms_arch_list_t){0};
    assert_int_equal(ms_arch_render(&l, T0, T0, 1, 2000, &out), 0);
    pl = ms_buf_cstr(&out);
    assert_non_null(strstr(pl, "#EXT-X-PLAYLIST-TYPE:EVENT\n"));
    assert_null(strstr(pl, "ENDLIST"));
    assert_non_null(strstr(pl, "#EXT-X-TARGETDURATION:10\n"));
    ms_buf_free(&out);
    free(local);
    free(remote);
}

/* A server that did not answer: its hole is a discontinuity between the
 * pieces around it. */
static void test_hole(void **state)
{
    (void)state;
    ms_dvr_chunk_t a[2];
    ms_dvr_frag_t f0[4], f1[4];
    mk_chunk(&a[0], f0, 1, T0, 4, 700);
    mk_chunk(&a[1], f1, 2, T0 + 20000, 4, 700);
    char *local = render_local(a, 2, T0, 24000, "");
    ms_arch_list_t l = {0};
    assert_true(ms_arch_parse(local, strlen(local), "", 0, &l) > 0);
    ms_buf_t out = MS_BUF_INIT;
    int n = ms_arch_render(&l, T0, T0 + 24000, 0, 2000, &out);
    assert_true(n >= 2);
    assert_int_equal(count(ms_buf_cstr(&out), "#EXT-X-DISCONTINUITY\n"), 1);
    ms_arch_list_free(&l);
    ms_buf_free(&out);
    free(local);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pdt),
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_splice_two_servers),
        cmocka_unit_test(test_overlap_and_clip),
        cmocka_unit_test(test_hole),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
