/* fMP4 muxer: init segment + fragments built from real H.264/H.265/AAC
 * streams, concatenated, must be decoded completely by ffprobe; box-level
 * checks of the fragment layout (tfdt, trun sizes, data offsets, flags). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <unistd.h>

#include "media/fmp4/fmp4.h"
#include "media/ts/tests/es.h"

static void write_tmp(char *path, const ms_buf_t *b)
{
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, b->data, b->len), (ssize_t)b->len);
    close(fd);
}

/* Finds the first box of `type` inside [p, p+len) (one level); NULL if none. */
static const uint8_t *find_box(const uint8_t *p, size_t len, const char *type, size_t *blen)
{
    size_t o = 0;
    while (o + 8 <= len) {
        size_t s = ms_rd_be32(p + o);
        assert_true(s >= 8 && o + s <= len);
        if (!memcmp(p + o + 4, type, 4)) {
            *blen = s;
            return p + o;
        }
        o += s;
    }
    return NULL;
}

/* Fragments of `per` video frames (plus the audio frames that start before
 * the fragment's end). */
static void mux(ms_fmp4_t *m, es_t *v, es_t *a, int per, ms_buf_t *out, int *nfrag)
{
    ms_fmp4_sample_t vs[64], as[64];
    int ia = 0;
    uint32_t seq = 1;
    *nfrag = 0;
    for (int iv = 0; iv < v->n; iv += per) {
        int n = v->n - iv < per ? v->n - iv : per;
        for (int k = 0; k < n; k++) {
            vs[k].frame = v->frames[iv + k];
            vs[k].duration = 3600;
        }
        int64_t end = (int64_t)(iv + n) * 3600;
        int na = 0;
        size_t abase = a && ia < a->n ? (size_t)a->frames[ia]->dts : 0;
        while (a && ia < a->n && (iv + n == v->n || a->frames[ia]->dts * 90000 / 48000 < end) &&
               na < 64) {
            as[na].frame = a->frames[ia++];
            as[na++].duration = 1024;
        }
        ms_fmp4_run_t runs[2] = {
            {0, (uint64_t)iv * 3600, vs, (size_t)n},
            {1, abase, as, (size_t)na},
        };
        size_t start = out->len;
        assert_int_equal(ms_fmp4_write_fragment(m, seq++, runs, 2, out), 0);
        /* the exact size a caller allocates for it (media/hls) */
        assert_int_equal(ms_fmp4_fragment_size(m, runs, 2), out->len - start);
        (*nfrag)++;
        /* Check moof/traf/tfdt/trun of the video run. */
        size_t mlen = 0, tlen = 0, blen = 0;
        const uint8_t *moof = find_box(out->data + start, out->len - start, "moof", &mlen);
        assert_non_null(moof);
        const uint8_t *traf = find_box(moof + 8, mlen - 8, "traf", &tlen);
        assert_non_null(traf);
        const uint8_t *tfdt = find_box(traf + 8, tlen - 8, "tfdt", &blen);
        assert_non_null(tfdt);
        assert_int_equal(tfdt[8], 1);
        assert_int_equal(ms_rd_be32(tfdt + 16), (uint32_t)(iv * 3600));
        const uint8_t *trun = find_box(traf + 8, tlen - 8, "trun", &blen);
        assert_non_null(trun);
        assert_int_equal(ms_rd_be32(trun + 12), (uint32_t)n);
        uint32_t doff = ms_rd_be32(trun + 16);
        assert_int_equal(doff, mlen + 8); /* first sample right after the mdat header */
        assert_memory_equal(moof + doff, vs[0].frame->data, vs[0].frame->size);
        assert_int_equal(ms_rd_be32(trun + 20 + 4), vs[0].frame->size);
        uint32_t flags0 = ms_rd_be32(trun + 20 + 8);
        assert_int_equal(flags0, (vs[0].frame->flags & MS_FRAME_KEY) ? 0x02000000u : 0x01010000u);
    }
}

static void run_case(const char *vfile, int h265, int with_audio, const char *codec_name)
{
    es_t v, a;
    memset(&v, 0, sizeof v);
    memset(&a, 0, sizeof a);
    assert_int_equal(es_load_video(&v, vfile, h265, 0), 50);
    int ntr = 1;
    ms_codec_params_t tr[3] = {v.params};
    if (with_audio) {
        assert_true(es_load_aac(&a, "aac_48k_mono.aac", 1) > 90);
        tr[1] = a.params;
        tr[2].codec = MS_CODEC_ONVIF_META; /* not carried */
        tr[2].kind = MS_TRACK_APP;
        ntr = 3;
    }
    ms_fmp4_t *m = ms_fmp4_new(tr, ntr);
    assert_non_null(m);
    assert_int_equal(ms_fmp4_track_id(m, 0), 1);
    if (with_audio) {
        assert_int_equal(ms_fmp4_track_id(m, 1), 2);
        assert_int_equal(ms_fmp4_timescale(m, 1), 48000);
        assert_int_equal(ms_fmp4_carries(m, 2), 0);
    }
    ms_buf_t out = MS_BUF_INIT;
    assert_int_equal(ms_fmp4_write_init(m, &out), 0);
    size_t blen = 0;
    assert_non_null(find_box(out.data, out.len, "ftyp", &blen));
    const uint8_t *moov = find_box(out.data, out.len, "moov", &blen);
    assert_non_null(moov);
    assert_non_null(find_box(moov + 8, blen - 8, "mvex", &blen));
    int nfrag = 0;
    mux(m, &v, with_audio ? &a : NULL, 5, &out, &nfrag);
    assert_int_equal(nfrag, 10);

    char path[] = "/tmp/ms_fmp4_XXXXXX";
    write_tmp(path, &out);
    char codec[64] = "";
    assert_int_equal(es_ffprobe(path, "video", codec, sizeof codec), 50);
    assert_string_equal(codec, codec_name);
    if (with_audio) {
        assert_int_equal(es_ffprobe(path, "audio", codec, sizeof codec), a.n);
        assert_string_equal(codec, "aac");
    }
    remove(path);
    ms_buf_free(&out);
    ms_fmp4_free(m);
    es_free(&v);
    es_free(&a);
}

static void test_h264_aac(void **state)
{
    (void)state;
    run_case("h264_320x240_25fps.h264", 0, 1, "h264");
}

static void test_h265(void **state)
{
    (void)state;
    run_case("h265_320x240_25fps.h265", 1, 0, "hevc");
}

static void test_errors(void **state)
{
    (void)state;
    ms_codec_params_t p = {0};
    p.codec = MS_CODEC_PCMU;
    p.kind = MS_TRACK_AUDIO;
    assert_null(ms_fmp4_new(&p, 1)); /* nothing carried */
    p.codec = MS_CODEC_H264;
    p.kind = MS_TRACK_VIDEO;
    p.clock_rate = 90000;
    ms_fmp4_t *m = ms_fmp4_new(&p, 1);
    assert_non_null(m);
    ms_buf_t out = MS_BUF_INIT;
    assert_int_equal(ms_fmp4_write_init(m, &out), -EINVAL); /* no SPS/PPS */
    assert_int_equal(out.len, 0);
    ms_fmp4_run_t run = {0, 0, NULL, 0};
    assert_int_equal(ms_fmp4_write_fragment(m, 1, &run, 1, &out), -EINVAL);
    assert_int_equal(ms_fmp4_fragment_size(m, &run, 1), 0);
    ms_buf_free(&out);
    ms_fmp4_free(m);
}

/* Sample durations: the step to the next frame when sane, else the last
 * one, else the nominal frame; never 0 nor hours (a frozen or jumping dts). */
static void test_sample_duration(void **state)
{
    (void)state;
    assert_int_equal(ms_fmp4_sample_duration(1000, 4600, 0, 90000, MS_CODEC_H264), 3600);
    assert_int_equal(ms_fmp4_sample_duration(1000, 1000, 3000, 90000, MS_CODEC_H264), 3000);
    assert_int_equal(ms_fmp4_sample_duration(1000, 900, 0, 90000, MS_CODEC_H264), 3600);
    assert_int_equal(ms_fmp4_sample_duration(0, 3600ll * 90000, 3600, 90000, MS_CODEC_H264), 3600);
    assert_int_equal(ms_fmp4_sample_duration(0, 20ll * 3600 * 90000, 0, 90000, MS_CODEC_H264),
                     3600); /* > 4G ticks: no 32-bit truncation */
    assert_int_equal(ms_fmp4_sample_duration(0, -1, 0, 48000, MS_CODEC_AAC), 1024);
    assert_int_equal(ms_fmp4_sample_duration(0, -1, 0, 8000, MS_CODEC_PCMU), 160);
    assert_int_equal(ms_fmp4_sample_duration(0, 10 * 90000, 0, 90000, MS_CODEC_H264), 900000);
    assert_int_equal(ms_fmp4_sample_duration(0, 10 * 90000 + 1, 4000000000u, 90000, MS_CODEC_H264),
                     3600);
    assert_int_equal(ms_fmp4_sample_duration(0, 5, 0, 0, MS_CODEC_H264), 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sample_duration),
        cmocka_unit_test(test_h264_aac),
        cmocka_unit_test(test_h265),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
