/* MPEG-TS muxer: real H.264/H.265/AAC elementary streams muxed into TS must
 * be accepted by ffprobe with every frame decoded; packet-level checks of
 * PAT/PMT CRC, continuity counters and random access indicators. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <unistd.h>

#include "media/ts/tests/es.h"
#include "media/ts/ts.h"

static void test_crc32(void **state)
{
    (void)state;
    /* CRC-32/MPEG-2 check value for "123456789". */
    assert_int_equal(ms_ts_crc32((const uint8_t *)"123456789", 9), 0x0376E6E7u);
}

/* Walks the packets: sync bytes, CC continuity per PID, PSI CRCs; returns
 * the number of packets with random_access_indicator on pid. */
static int check_packets(const ms_buf_t *b, int pid_rai, int *npes)
{
    int cc[8192];
    for (int i = 0; i < 8192; i++)
        cc[i] = -1;
    int rai = 0;
    *npes = 0;
    assert_int_equal(b->len % 188, 0);
    for (size_t o = 0; o < b->len; o += 188) {
        const uint8_t *p = b->data + o;
        assert_int_equal(p[0], 0x47);
        int pid = ((p[1] & 0x1F) << 8) | p[2];
        int pusi = p[1] & 0x40;
        int afc = (p[3] >> 4) & 3;
        assert_true(afc & 1); /* every packet has payload */
        if (cc[pid] >= 0)
            assert_int_equal(p[3] & 0xF, (cc[pid] + 1) & 0xF);
        cc[pid] = p[3] & 0xF;
        size_t pay = 4;
        if (afc & 2) {
            pay = 5 + p[4];
            assert_true(pay <= 188);
            if (p[4] > 0 && (p[5] & 0x40) && pid == pid_rai)
                rai++;
        }
        if ((pid == 0 || pid == MS_TS_PID_PMT) && pusi) {
            const uint8_t *s = p + pay + 1 + p[pay];
            size_t sl = (size_t)(((s[1] & 0xF) << 8) | s[2]);
            assert_int_equal(ms_ts_crc32(s, 3 + sl), 0); /* CRC over section incl. CRC = 0 */
        }
        if (pid == pid_rai && pusi) {
            assert_int_equal(p[pay], 0);
            assert_int_equal(p[pay + 1], 0);
            assert_int_equal(p[pay + 2], 1);
            (*npes)++;
        }
    }
    return rai;
}

static void write_file(const char *path, const ms_buf_t *b)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(b->data, 1, b->len, fp), b->len);
    fclose(fp);
}

static void mux_all(ms_ts_mux_t *m, es_t *v, es_t *a, ms_buf_t *out)
{
    int iv = 0, ia = 0;
    assert_int_equal(ms_ts_mux_write_tables(m, out), 0);
    while ((v && iv < v->n) || (a && ia < a->n)) {
        int take_v;
        if (!v || iv >= v->n)
            take_v = 0;
        else if (!a || ia >= a->n)
            take_v = 1;
        else
            take_v = v->frames[iv]->dts <= ms_ts_to_90k(a->frames[ia]->dts, 48000);
        if (take_v && v->frames[iv]->flags & MS_FRAME_KEY && iv > 0)
            assert_int_equal(ms_ts_mux_write_tables(m, out), 0);
        ms_frame_t *f = take_v ? v->frames[iv++] : a->frames[ia++];
        assert_int_equal(ms_ts_mux_write_frame(m, f, 90000, out), 0);
    }
}

static void test_h264_aac(void **state)
{
    (void)state;
    es_t v, a;
    memset(&a, 0, sizeof a);
    assert_int_equal(es_load_video(&v, "h264_320x240_25fps.h264", 0, 0), 50);
    assert_true(es_load_aac(&a, "aac_48k_mono.aac", 1) > 90);
    ms_codec_params_t tr[3] = {v.params, a.params};
    tr[2].codec = MS_CODEC_PCMA; /* not carried */
    tr[2].kind = MS_TRACK_AUDIO;
    ms_ts_mux_t *m = ms_ts_mux_new(tr, 3);
    assert_non_null(m);
    assert_int_equal(ms_ts_mux_pid(m, 0), 0x100);
    assert_int_equal(ms_ts_mux_pid(m, 1), 0x101);
    assert_int_equal(ms_ts_mux_carries(m, 2), 0);
    ms_buf_t out = MS_BUF_INIT;
    mux_all(m, &v, &a, &out);
    int npes = 0;
    assert_int_equal(check_packets(&out, 0x100, &npes), 2); /* 2 IDR frames */
    assert_int_equal(npes, 50);

    char path[] = "/tmp/ms_ts_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    write_file(path, &out);
    char codec[64] = "";
    assert_int_equal(es_ffprobe(path, "video", codec, sizeof codec), 50);
    assert_string_equal(codec, "h264");
    assert_int_equal(es_ffprobe(path, "audio", codec, sizeof codec), a.n);
    assert_string_equal(codec, "aac");
    remove(path);
    ms_buf_free(&out);
    ms_ts_mux_free(m);
    es_free(&v);
    es_free(&a);
}

static void test_h265(void **state)
{
    (void)state;
    es_t v;
    assert_int_equal(es_load_video(&v, "h265_320x240_25fps.h265", 1, 0), 50);
    ms_ts_mux_t *m = ms_ts_mux_new(&v.params, 1);
    assert_non_null(m);
    ms_buf_t out = MS_BUF_INIT;
    mux_all(m, &v, NULL, &out);
    int npes = 0;
    assert_int_equal(check_packets(&out, 0x100, &npes), 2);
    assert_int_equal(npes, 50);
    char path[] = "/tmp/ms_ts_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    write_file(path, &out);
    char codec[64] = "";
    assert_int_equal(es_ffprobe(path, "video", codec, sizeof codec), 50);
    assert_string_equal(codec, "hevc");
    remove(path);
    ms_buf_free(&out);
    ms_ts_mux_free(m);
    es_free(&v);
}

/* A keyframe without in-band SPS/PPS gets them from the params; the first
 * PES of the stream starts with an AUD. */
static void test_param_insertion(void **state)
{
    (void)state;
    es_t v;
    assert_int_equal(es_load_video(&v, "h264_320x240_25fps.h264", 0, 0), 50);
    /* Rebuild frame 0 without its SPS/PPS. */
    ms_frame_t *f0 = v.frames[0];
    ms_buf_t nb = MS_BUF_INIT;
    size_t off = 0;
    const uint8_t *nal;
    size_t nlen;
    while (ms_nal_next(f0->data, f0->size, &off, &nal, &nlen) == 1) {
        if ((nal[0] & 0x1f) == 7 || (nal[0] & 0x1f) == 8)
            continue;
        ms_buf_be32(&nb, (uint32_t)nlen);
        ms_buf_append(&nb, nal, nlen);
    }
    ms_frame_t *f = ms_frame_new(nb.data, nb.len);
    f->flags = MS_FRAME_KEY;
    ms_ts_mux_t *m = ms_ts_mux_new(&v.params, 1);
    ms_buf_t out = MS_BUF_INIT;
    assert_int_equal(ms_ts_mux_write_frame(m, f, 0, &out), 0);
    /* PES payload after the 14-byte header (PTS only) in the first packet
     * (which has an adaptation field with PCR: 4 + 8). */
    const uint8_t *pes = out.data + 12;
    assert_memory_equal(pes, "\x00\x00\x01\xE0", 4);
    const uint8_t *es = pes + 14;
    static const uint8_t aud[6] = {0, 0, 0, 1, 0x09, 0xF0};
    assert_memory_equal(es, aud, 6);
    assert_memory_equal(es + 6, "\x00\x00\x00\x01", 4);
    assert_int_equal(es[10] & 0x1f, 7);
    assert_memory_equal(es + 10, v.params.sps, v.params.sps_len);
    ms_frame_unref(f);
    ms_buf_free(&nb);
    ms_buf_free(&out);
    ms_ts_mux_free(m);
    es_free(&v);
}

/* Reassembles the payload of the PES packets of pid from TS packets
 * (headers and adaptation fields stripped) into out. */
static void pes_payload(const ms_buf_t *ts, int pid, ms_buf_t *out)
{
    for (size_t o = 0; o < ts->len; o += 188) {
        const uint8_t *p = ts->data + o;
        if ((((p[1] & 0x1F) << 8) | p[2]) != pid)
            continue;
        size_t pay = (p[3] & 0x20) ? 5u + p[4] : 4u;
        assert_true(pay <= 188);
        ms_buf_append(out, p + pay, 188 - pay);
    }
}

/* A frame of many NAL units (more than the muxer's on-stack piece list)
 * and over 64 KiB (PES_packet_length 0, 2.4.3.7), then a small one: the
 * packets carry exactly the PES header, an AUD and each NAL with a start
 * code, in order. */
static void test_pes_pieces(void **state)
{
    (void)state;
    ms_codec_params_t tr[1];
    memset(tr, 0, sizeof tr);
    tr[0].codec = MS_CODEC_H264;
    tr[0].kind = MS_TRACK_VIDEO;
    tr[0].clock_rate = 90000;
    ms_ts_mux_t *m = ms_ts_mux_new(tr, 1);
    assert_non_null(m);
    ms_buf_t fr = MS_BUF_INIT, want = MS_BUF_INIT, ts = MS_BUF_INIT, got = MS_BUF_INIT;
    static const uint8_t sc[4] = {0, 0, 0, 1};
    static const uint8_t aud[2] = {0x09, 0xF0};
    for (int k = 0; k < 2; k++) {
        int nnal = k == 0 ? 40 : 3;
        size_t nlen = k == 0 ? 1900 : 100;
        ms_buf_reset(&fr);
        ms_buf_reset(&want);
        ms_buf_append(&want, sc, 4);
        ms_buf_append(&want, aud, 2);
        for (int i = 0; i < nnal; i++) {
            ms_buf_be32(&fr, (uint32_t)nlen);
            ms_buf_append(&want, sc, 4);
            for (size_t j = 0; j < nlen; j++) {
                uint8_t c = (uint8_t)(j == 0 ? 0x01 : (i * 7 + j * 13 + k) | 1); /* non-IDR slice */
                ms_buf_u8(&fr, c);
                ms_buf_u8(&want, c);
            }
        }
        ms_frame_t *f = ms_frame_new(fr.data, fr.len);
        assert_non_null(f);
        f->pts = f->dts = 3600 * k;
        ms_buf_reset(&ts);
        assert_int_equal(ms_ts_mux_write_frame(m, f, 0, &ts), 0);
        ms_frame_unref(f);
        assert_int_equal(ts.len % 188, 0);
        ms_buf_reset(&got);
        pes_payload(&ts, MS_TS_PID_ES0, &got);
        /* PES header: start code, stream_id, length, flags, PTS only */
        assert_true(got.len >= 14 + want.len);
        assert_int_equal(got.data[0], 0);
        assert_int_equal(got.data[1], 0);
        assert_int_equal(got.data[2], 1);
        assert_int_equal(got.data[3], 0xE0);
        size_t pes_len = ((size_t)got.data[4] << 8) | got.data[5];
        assert_int_equal(pes_len, k == 0 ? 0 : 8 + want.len);
        assert_int_equal(got.data[8], 5);
        assert_memory_equal(got.data + 14, want.data, want.len);
        /* only the last packet is stuffed: nothing follows the PES */
        assert_int_equal(got.len, 14 + want.len);
    }
    ms_buf_free(&fr);
    ms_buf_free(&want);
    ms_buf_free(&ts);
    ms_buf_free(&got);
    ms_ts_mux_free(m);
}

/* Every frame's ms_ts_mux_frame_size() is what ms_ts_mux_write_frame()
 * appends (H.264 with SPS/PPS in-band and inserted, pts != dts, AAC, H.265,
 * a malformed payload: 0 and nothing written), and a part written into a
 * wrapped buffer of exactly that size fills it without reallocating; one
 * byte less sets err. */
static void check_sizes(ms_ts_mux_t *m, ms_frame_t *const *frames, int n)
{
    size_t total = 2 * 188;
    for (int i = 0; i < n; i++) {
        ms_buf_t one = MS_BUF_INIT;
        int r = ms_ts_mux_write_frame(m, frames[i], 90000, &one);
        size_t sz = ms_ts_mux_frame_size(m, frames[i]);
        assert_int_equal(sz, r == 0 ? one.len : 0);
        assert_int_equal(one.len % 188, 0);
        total += sz;
        ms_buf_free(&one);
    }
    uint8_t *mem = malloc(total);
    assert_non_null(mem);
    ms_buf_t b;
    ms_buf_wrap(&b, mem, total);
    assert_int_equal(ms_ts_mux_write_tables(m, &b), 0);
    for (int i = 0; i < n; i++)
        (void)ms_ts_mux_write_frame(m, frames[i], 0, &b);
    assert_int_equal(b.err, 0);
    assert_ptr_equal(b.data, mem);
    assert_int_equal(b.len, total);
    ms_buf_wrap(&b, mem, total - 1);
    assert_int_equal(ms_ts_mux_write_tables(m, &b), 0);
    for (int i = 0; i < n; i++)
        (void)ms_ts_mux_write_frame(m, frames[i], 0, &b);
    assert_int_equal(b.err, 1);
    ms_buf_free(&b); /* borrowed: not freed */
    free(mem);
}

static void test_frame_size(void **state)
{
    (void)state;
    es_t v, a, h;
    memset(&a, 0, sizeof a);
    assert_int_equal(es_load_video(&v, "h264_320x240_25fps.h264", 0, 0), 50);
    assert_true(es_load_aac(&a, "aac_48k_mono.aac", 1) > 90);
    ms_codec_params_t tr[2] = {v.params, a.params};
    ms_ts_mux_t *m = ms_ts_mux_new(tr, 2);
    assert_non_null(m);
    /* a keyframe without its SPS/PPS (inserted from the params), a frame
     * with pts != dts, and a malformed length prefix */
    ms_frame_t *nops = ms_frame_new(NULL, v.frames[0]->size);
    size_t off = 0, o = 0;
    const uint8_t *nal;
    size_t nlen;
    while (ms_nal_next(v.frames[0]->data, v.frames[0]->size, &off, &nal, &nlen) == 1) {
        if ((nal[0] & 0x1f) == 7 || (nal[0] & 0x1f) == 8)
            continue;
        ms_wr_be32(nops->data + o, (uint32_t)nlen);
        memcpy(nops->data + o + 4, nal, nlen);
        o += 4 + nlen;
    }
    nops->size = (uint32_t)o;
    nops->flags = MS_FRAME_KEY;
    ms_frame_t *bad = ms_frame_new("\x00\x00\x01\x00\x65", 5);
    ms_frame_t *shifted = ms_frame_ref(v.frames[3]);
    ms_frame_t *list[ES_MAX_FRAMES * 2 + 3];
    int n = 0;
    list[n++] = nops;
    list[n++] = bad;
    for (int i = 0; i < v.n; i++)
        list[n++] = v.frames[i];
    for (int i = 0; i < a.n; i++)
        list[n++] = a.frames[i];
    ms_frame_t *dts = ms_frame_new(shifted->data, shifted->size);
    dts->pts = shifted->pts + 7200;
    dts->dts = shifted->dts;
    list[n++] = dts;
    check_sizes(m, list, n);
    ms_ts_mux_free(m);
    ms_frame_unref(nops);
    ms_frame_unref(bad);
    ms_frame_unref(shifted);
    ms_frame_unref(dts);

    assert_int_equal(es_load_video(&h, "h265_320x240_25fps.h265", 1, 0), 50);
    m = ms_ts_mux_new(&h.params, 1);
    assert_non_null(m);
    check_sizes(m, h.frames, h.n);
    ms_ts_mux_free(m);
    es_free(&h);
    es_free(&v);
    es_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32),      cmocka_unit_test(test_h264_aac),
        cmocka_unit_test(test_h265),       cmocka_unit_test(test_param_insertion),
        cmocka_unit_test(test_pes_pieces), cmocka_unit_test(test_frame_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
