/* MP4 export (dvr/archive.h ms_dvr_export_*) from a real recording: moov
 * before mdat (ISO/IEC 14496-12 4.2, 8.2), ffprobe decodes the asked window
 * from its keyframe with no error, the bytes are the same whatever the
 * block size of the reads, a range read equals the same span of the whole,
 * and the mdat payload is the recorded samples (bytes of the chunk files).
 * The keyframe at a time is the one at or before it. */
#include "dvr/archive.h"
#include "dvr/tests/dvr_test.h"
#include "media/fmp4/demux.h"

/* Reads the whole export in blocks of bs bytes into a new buffer. */
static uint8_t *read_all(ms_dvr_export_t *x, size_t bs, uint64_t *len)
{
    uint64_t size = ms_dvr_export_size(x);
    uint8_t *p = malloc((size_t)size + 1);
    assert_non_null(p);
    uint64_t off = 0;
    for (int guard = 0; guard < 1000000; guard++) {
        ssize_t k = ms_dvr_export_read(x, off, p + off, bs);
        assert_true(k >= 0);
        if (k == 0)
            break;
        off += (uint64_t)k;
        assert_true(off <= size);
    }
    assert_int_equal(off, size);
    *len = off;
    return p;
}

static void test_export(void **state)
{
    (void)state;
    dt_t t;
    dt_setup(&t, 99);
    assert_int_equal(dt_dvr_init(&t), 0);
    ms_stream_cfg_t cfg;
    dt_stream_cfg(&cfg, "cam-x", 4, 3600, MS_DVR_CONTINUOUS);
    ms_dvr_recorder_t *rec = dt_rec_start(&t, &cfg);
    assert_non_null(rec);
    int64_t wall0 = dt_wall0(60);
    dt_feed(&t, 0, 250, wall0, 0, 0); /* 10 s, chunks of 4 s, a keyframe per second */
    ms_dvr_recorder_stop(rec);
    assert_int_equal(uv_run(&t.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(ms_dvr_flush(), 0);

    /* 6 s from 2.5 s: starts at the keyframe of 2 s, spans two chunks */
    int64_t t0 = wall0 / 1000;
    ms_dvr_export_t *x = NULL;
    assert_int_equal(ms_dvr_export_open("cam-x", t0 + 2500, 6000, &x), 0);
    assert_int_equal(ms_dvr_export_start_ms(x), t0 + 2000);
    uint64_t size = ms_dvr_export_size(x), len, len2;
    uint8_t *a = read_all(x, 1024 * 1024, &len);
    uint8_t *b = read_all(x, 4093, &len2); /* odd blocks: every boundary */
    assert_int_equal(len, len2);
    assert_memory_equal(a, b, (size_t)len);
    /* a range in the middle, across the head/mdat edge and extents */
    for (uint64_t off = 0; off + 10000 < size; off += 7777) {
        uint8_t r[10000];
        ssize_t k = ms_dvr_export_read(x, off, r, sizeof r);
        assert_int_equal(k, sizeof r);
        assert_memory_equal(r, a + off, sizeof r);
    }
    assert_int_equal(ms_dvr_export_read(x, size, a, 10), 0);
    /* top-level boxes: ftyp, moov, then mdat to the end of the file */
    uint64_t off = 0;
    uint32_t order[3] = {0, 0, 0};
    int nb = 0;
    while (off + 8 <= size && nb < 3) {
        uint64_t bs = ms_rd_be32(a + off);
        uint32_t type = ms_rd_be32(a + off + 4);
        if (bs == 1)
            bs = ((uint64_t)ms_rd_be32(a + off + 8) << 32) | ms_rd_be32(a + off + 12);
        order[nb++] = type;
        assert_true(bs >= 8);
        off += bs;
    }
    assert_int_equal(off, size);
    assert_int_equal(order[0], MS_FOURCC('f', 't', 'y', 'p'));
    assert_int_equal(order[1], MS_FOURCC('m', 'o', 'o', 'v'));
    assert_int_equal(order[2], MS_FOURCC('m', 'd', 'a', 't'));
    /* the payload is the recorded samples: the first video sample of the
     * 2 s keyframe fragment is in the mdat, byte for byte */
    ms_dvr_chunk_t *v;
    size_t n;
    assert_int_equal(ms_dvr_chunks("cam-x", t0 + 2000, t0 + 2001, &v, &n), 0);
    assert_int_equal(n, 1);
    ms_codec_params_t params;
    ms_blob_t *kf = NULL;
    int64_t kt = 0;
    assert_int_equal(ms_dvr_keyframe_at("cam-x", t0 + 2500, &params, &kf, &kt), 0);
    assert_int_equal(kt, t0 + 2000);
    assert_int_equal(params.codec, MS_CODEC_H264);
    assert_true(kf->len > 100);
    int found = 0;
    for (uint64_t i = 0; i + kf->len <= size && !found; i++)
        found = memcmp(a + i, kf->data, kf->len) == 0;
    assert_true(found);
    ms_blob_unref(kf);
    ms_dvr_chunks_free(v, n);
    /* decodes: 6 s of frames from the keyframe, no error */
    char path[700];
    snprintf(path, sizeof path, "%s/export.mp4", t.dir);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(a, 1, (size_t)len, fp), len);
    fclose(fp);
    assert_int_equal(dt_frames(path), 150);
    int64_t dur = dt_duration_ms(path);
    assert_true(dur >= 6000 - 40 && dur <= 6000 + 40);
    free(a);
    free(b);
    ms_dvr_export_free(x);
    /* nothing recorded there */
    assert_int_equal(ms_dvr_export_open("cam-x", t0 + 100000, 5000, &x), -ENOENT);

    ms_dvr_shutdown();
    dt_teardown(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_export),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
