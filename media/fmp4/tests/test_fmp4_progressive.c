/* fMP4 demuxer (media/fmp4/demux.h) and progressive MP4 head writer
 * (media/fmp4/progressive.h): real H.264/H.265 + AAC frames are muxed into
 * fragments, read back sample by sample (sizes, bytes, sync flags, decode
 * times), then rewritten as a progressive MP4 (moov first) that ffprobe
 * must decode completely. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <unistd.h>

#include "media/fmp4/demux.h"
#include "media/fmp4/fmp4.h"
#include "media/fmp4/progressive.h"
#include "media/ts/tests/es.h"

#define PER 5 /* video frames per fragment */

static const uint8_t *child(const uint8_t *p, size_t len, const char *type, size_t *blen)
{
    size_t o = 0;
    while (o + 8 <= len) {
        size_t s = ms_rd_be32(p + o);
        if (s == 1)
            s = (size_t)(((uint64_t)ms_rd_be32(p + o + 8) << 32) | ms_rd_be32(p + o + 12));
        assert_true(s >= 8 && o + s <= len);
        if (!memcmp(p + o + 4, type, 4)) {
            *blen = s;
            return p + o;
        }
        o += s;
    }
    return NULL;
}

static void run_case(const char *vfile, int h265, int with_audio, const char *codec_name)
{
    es_t v, a;
    memset(&v, 0, sizeof v);
    memset(&a, 0, sizeof a);
    assert_int_equal(es_load_video(&v, vfile, h265, 0), 50);
    ms_codec_params_t tr[2] = {v.params};
    int ntr = 1;
    if (with_audio) {
        assert_true(es_load_aac(&a, "aac_48k_mono.aac", 1) > 90);
        tr[1] = a.params;
        ntr = 2;
    }
    ms_fmp4_t *m = ms_fmp4_new(tr, ntr);
    assert_non_null(m);
    ms_buf_t file = MS_BUF_INIT;
    assert_int_equal(ms_fmp4_write_init(m, &file), 0);
    size_t init_len = file.len;
    /* fragments with a wall-clock-like tfdt, as the DVR writes them */
    const uint64_t base = 1700000000ull * 90000;
    size_t moof_off[32];
    int nfrag = 0, ia = 0;
    for (int iv = 0; iv < v.n; iv += PER) {
        ms_fmp4_sample_t vs[PER], as[64];
        int n = v.n - iv < PER ? v.n - iv : PER, na = 0;
        for (int k = 0; k < n; k++)
            vs[k] = (ms_fmp4_sample_t){v.frames[iv + k], 3600};
        uint64_t abase = with_audio && ia < a.n ? (uint64_t)ia * 1024 : 0;
        while (with_audio && ia < a.n && na < 64 &&
               (iv + n == v.n || (int64_t)ia * 1024 * 90000 / 48000 < (int64_t)(iv + n) * 3600))
            as[na++] = (ms_fmp4_sample_t){a.frames[ia++], 1024};
        ms_fmp4_run_t runs[2] = {{0, base + (uint64_t)iv * 3600, vs, (size_t)n},
                                 {1, abase, as, (size_t)na}};
        moof_off[nfrag++] = file.len;
        assert_int_equal(ms_fmp4_write_fragment(m, (uint32_t)nfrag, runs, na ? 2 : 1, &file), 0);
    }
    assert_false(file.err);

    /* demux */
    ms_fmp4d_init_t in;
    assert_int_equal(ms_fmp4d_init(file.data, init_len, &in), 0);
    assert_int_equal(in.ntracks, ntr);
    assert_int_equal(ms_fmp4d_video(&in), 0);
    assert_int_equal(in.t[0].timescale, 90000);
    assert_int_equal(in.t[0].width >> 16, 320);
    ms_fmp4d_sample_t *sv = NULL;
    size_t sn = 0, scap = 0;
    for (int f = 0; f < nfrag; f++) {
        size_t end = f + 1 < nfrag ? moof_off[f + 1] : file.len;
        uint64_t msz;
        uint32_t type;
        assert_true(ms_fmp4d_box(file.data + moof_off[f], end - moof_off[f], &msz, &type) > 0);
        assert_int_equal(
            ms_fmp4d_moof(&in, file.data + moof_off[f], (size_t)msz, moof_off[f], &sv, &sn, &scap),
            0);
        /* a truncated moof is refused, never read past */
        size_t before = sn;
        assert_int_equal(ms_fmp4d_moof(&in, file.data + moof_off[f], (size_t)msz - 9, moof_off[f],
                                       &sv, &sn, &scap),
                         -EINVAL);
        assert_int_equal(sn, before);
    }
    assert_int_equal(sn, (size_t)(v.n + (with_audio ? a.n : 0)));
    /* per-track tables for the progressive writer; payload = the sample
     * bytes in file order */
    ms_mp4p_sample_t *ps[2] = {calloc(sn, sizeof(ms_mp4p_sample_t)),
                               calloc(sn, sizeof(ms_mp4p_sample_t))};
    size_t pn[2] = {0, 0};
    ms_buf_t payload = MS_BUF_INIT;
    int vi = 0;
    for (size_t i = 0; i < sn; i++) {
        const ms_fmp4d_sample_t *s = &sv[i];
        assert_true(s->off + s->size <= file.len);
        if (s->track == 0) {
            const ms_frame_t *fr = v.frames[vi];
            assert_int_equal(s->size, fr->size);
            assert_memory_equal(file.data + s->off, fr->data, fr->size);
            assert_int_equal(MS_FMP4D_SYNC(s), !!(fr->flags & MS_FRAME_KEY));
            assert_true(s->dts == base + (uint64_t)vi * 3600);
            vi++;
        }
        ps[s->track][pn[s->track]++] =
            (ms_mp4p_sample_t){s->dur, s->size, s->flags, s->cto, payload.len};
        ms_buf_append(&payload, file.data + s->off, s->size);
    }
    assert_int_equal(vi, v.n);

    ms_mp4p_track_t pt[2] = {{&in.t[0], ps[0], pn[0]}, {&in.t[1], ps[1], pn[1]}};
    ms_buf_t out = MS_BUF_INIT;
    int64_t hl = ms_mp4p_write_head(pt, ntr, payload.len, 1700000000, &out);
    assert_true(hl > 0);
    assert_int_equal((size_t)hl, out.len);
    size_t bl;
    assert_true(child(out.data, out.len, "ftyp", &bl) == out.data);
    const uint8_t *moov = child(out.data, out.len, "moov", &bl);
    assert_non_null(moov);
    assert_int_equal(ms_rd_be32(out.data + out.len - 8), 0); /* mdat largesize high */
    assert_int_equal(ms_rd_be32(out.data + out.len - 4), 16 + payload.len);
    /* the first chunk offset of the video track is the start of mdat payload */
    const uint8_t *trak = child(moov + 8, bl - 8, "trak", &bl);
    const uint8_t *mdia = child(trak + 8, bl - 8, "mdia", &bl);
    const uint8_t *minf = child(mdia + 8, bl - 8, "minf", &bl);
    const uint8_t *stbl = child(minf + 8, bl - 8, "stbl", &bl);
    size_t tl;
    const uint8_t *co64 = child(stbl + 8, bl - 8, "co64", &tl);
    assert_non_null(co64);
    assert_true(((uint64_t)ms_rd_be32(co64 + 16) << 32 | ms_rd_be32(co64 + 20)) == (uint64_t)hl);
    const uint8_t *stsz = child(stbl + 8, bl - 8, "stsz", &tl);
    assert_int_equal(ms_rd_be32(stsz + 16), (uint32_t)v.n);
    assert_non_null(child(stbl + 8, bl - 8, "stss", &tl));
    ms_buf_append(&out, payload.data, payload.len);

    char path[] = "ms_progressive_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, out.data, out.len), (ssize_t)out.len);
    close(fd);
    char codec[64] = "";
    assert_int_equal(es_ffprobe(path, "video", codec, sizeof codec), 50);
    assert_string_equal(codec, codec_name);
    if (with_audio)
        assert_int_equal(es_ffprobe(path, "audio", codec, sizeof codec), a.n);
    remove(path);

    /* no samples: refused */
    ms_mp4p_track_t none = {&in.t[0], NULL, 0};
    ms_buf_t e = MS_BUF_INIT;
    assert_int_equal(ms_mp4p_write_head(&none, 1, 0, 0, &e), -EINVAL);
    ms_buf_free(&e);
    ms_buf_free(&out);
    ms_buf_free(&payload);
    free(ps[0]);
    free(ps[1]);
    free(sv);
    ms_buf_free(&file);
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

static void test_init_garbage(void **state)
{
    (void)state;
    ms_fmp4d_init_t in;
    static const uint8_t junk[] = {0, 0, 0, 16,  'm', 'o', 'o', 'v',
                                   0, 0, 0, 200, 't', 'r', 'a', 'k'};
    assert_int_equal(ms_fmp4d_init(junk, sizeof junk, &in), -EINVAL);
    assert_int_equal(ms_fmp4d_init(junk, 7, &in), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_h264_aac),
        cmocka_unit_test(test_h265),
        cmocka_unit_test(test_init_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
