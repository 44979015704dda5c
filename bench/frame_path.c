/* Per-frame media path without sockets: an H.264 Annex-B clip is cut into
 * access units, packetized into RTP (RFC 6184 FU-A, 1400-byte MTU, SPS/PPS
 * before every IDR as a camera with config-interval=1 sends them), then fed
 * packet by packet through what a worker does for an interleaved RTSP camera:
 * RTP receiver -> access unit -> frame -> hub -> live HLS (1 s segments,
 * 200 ms parts, TS or fMP4).
 *
 *     bench_frame_path CLIP.h264 [LOOPS] [ts|fmp4] [WINDOW]
 *
 * Prints the frames published, the segments produced and a 64-bit FNV-1a
 * hash of every listed segment's bytes (the output must stay byte-identical
 * across changes of the path), and the CPU time per frame. WINDOW (segments
 * kept; default: all, for the hash) set to 6 recycles memory as a node
 * does, which the CPU time per frame should be measured with (first touches
 * of fresh pages would dominate it otherwise). For instruction counts
 * run it under `valgrind --tool=callgrind` and read the inclusive cost of
 * ms_rtp_receiver_rtp (the whole path hangs below it) divided by the frames
 * (bench/README.md). Timestamps and arrival times are derived from the
 * frame index, so two runs produce the same bytes. With BENCH_DUMP=PREFIX in
 * the environment every listed segment is also written to PREFIX000,
 * PREFIX001... (to find which one differs when the hash changes). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "media/codec/h264.h"
#include "media/codec/nal.h"
#include "media/hls/hls.h"
#include "media/rtp/packetize.h"
#include "media/rtp/receiver.h"
#include "media/stream/hub.h"

typedef struct {
    ms_hub_t *hub;
    uint64_t frames;
} ctx_t;

static void on_frame(void *ud, ms_frame_t *f)
{
    ctx_t *c = ud;
    f->track = 0;
    if (c->frames == 0)
        f->flags |= MS_FRAME_DISCONT;
    c->frames++;
    ms_hub_publish(c->hub, f);
    ms_frame_unref(f);
}

static void on_params(void *ud, const ms_codec_params_t *p)
{
    ctx_t *c = ud;
    (void)ms_hub_update_params(c->hub, 0, p);
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *d = n > 0 ? malloc((size_t)n) : NULL;
    if (d && fread(d, 1, (size_t)n, fp) != (size_t)n) {
        free(d);
        d = NULL;
    }
    fclose(fp);
    *len = d ? (size_t)n : 0;
    return d;
}

static int is_vcl(int t)
{
    return t == MS_H264_NAL_IDR || t == MS_H264_NAL_SLICE;
}

/* Packetizes one AU (AVCC in au) at pts; flushes au. */
static int emit_au(ms_rtp_packetizer_t *pk, ms_buf_t *au, int key, int64_t pts, ms_buf_t *out)
{
    if (!au->len)
        return 0;
    ms_frame_t *f = ms_frame_new(au->data, au->len);
    if (!f)
        return -ENOMEM;
    f->pts = f->dts = pts;
    f->flags = key ? MS_FRAME_KEY : 0;
    int r = ms_rtp_packetize(pk, f, out);
    ms_frame_unref(f);
    ms_buf_reset(au);
    return r < 0 ? r : 0;
}

static void put_nal(ms_buf_t *b, const uint8_t *n, size_t l)
{
    ms_buf_be32(b, (uint32_t)l);
    ms_buf_append(b, n, l);
}

static uint64_t fnv(uint64_t h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s CLIP.h264 [LOOPS] [ts|fmp4] [WINDOW]\n", argv[0]);
        return 2;
    }
    int loops = argc > 2 ? atoi(argv[2]) : 3;
    int fmp4 = argc > 3 && strcmp(argv[3], "fmp4") == 0;
    uint32_t window = argc > 4 ? (uint32_t)atoi(argv[4]) : 100000;
    size_t clen;
    uint8_t *clip = read_file(argv[1], &clen);
    if (!clip) {
        fprintf(stderr, "cannot read %s\n", argv[1]);
        return 1;
    }

    /* 1. RTP records of LOOPS passes over the clip. */
    ms_rtp_packetizer_t pk;
    ms_rtp_packetizer_cfg_t pc = {
        .codec = MS_CODEC_H264, .pt = 96, .clock_rate = 90000, .ssrc = 0x12345678, .seq = 1000};
    if (ms_rtp_packetizer_init(&pk, &pc) != 0)
        return 1;
    ms_buf_t rec = MS_BUF_INIT, au = MS_BUF_INIT;
    uint8_t sps[512], pps[512];
    size_t sps_len = 0, pps_len = 0;
    int64_t fi = 0;
    for (int l = 0; l < loops; l++) {
        size_t off = 0;
        const uint8_t *n;
        size_t nl;
        int have_vcl = 0, key = 0;
        while (ms_annexb_next(clip, clen, &off, &n, &nl) == 1) {
            if (!nl)
                continue;
            int t = ms_h264_nal_type(n[0]);
            if (have_vcl && (!is_vcl(t) || (nl > 1 && (n[1] & 0x80)))) {
                if (emit_au(&pk, &au, key, fi++ * 3600, &rec) < 0)
                    return 1;
                have_vcl = key = 0;
            }
            if (t == MS_H264_NAL_SPS && nl <= sizeof sps) {
                memcpy(sps, n, nl);
                sps_len = nl;
                continue;
            }
            if (t == MS_H264_NAL_PPS && nl <= sizeof pps) {
                memcpy(pps, n, nl);
                pps_len = nl;
                continue;
            }
            if (t == MS_H264_NAL_AUD)
                continue;
            if (t == MS_H264_NAL_IDR && !have_vcl && sps_len && pps_len) {
                put_nal(&au, sps, sps_len);
                put_nal(&au, pps, pps_len);
                key = 1;
            }
            have_vcl |= is_vcl(t);
            put_nal(&au, n, nl);
        }
        if (have_vcl && emit_au(&pk, &au, key, fi++ * 3600, &rec) < 0)
            return 1;
    }
    if (rec.err)
        return 1;

    /* 2. The path: receiver -> hub -> HLS. */
    uv_loop_t loop;
    uv_loop_init(&loop);
    ctx_t c = {0};
    c.hub = ms_hub_new("[bench]");
    ms_codec_params_t tp;
    memset(&tp, 0, sizeof tp);
    tp.codec = MS_CODEC_H264;
    tp.kind = MS_TRACK_VIDEO;
    tp.clock_rate = 90000;
    /* the SDP's sprop-parameter-sets: the fMP4 init segment needs them */
    memcpy(tp.sps, sps, sps_len);
    tp.sps_len = (uint16_t)sps_len;
    memcpy(tp.pps, pps, pps_len);
    tp.pps_len = (uint16_t)pps_len;
    ms_h264_sps_t si;
    if (ms_h264_parse_sps(sps, sps_len, &si) == 0) {
        tp.width = si.width;
        tp.height = si.height;
        tp.profile = si.profile_idc;
        tp.level = si.level_idc;
    }
    ms_hub_set_tracks(c.hub, &tp, 1);
    ms_hls_cfg_t hc = {.format = fmp4 ? MS_HLS_FMP4 : MS_HLS_TS,
                       .target_ms = 1000,
                       .part_ms = 200,
                       .window = window,
                       .log_ctx = "[bench]"};
    ms_hls_t *h = ms_hls_new(&loop, c.hub, &hc);
    ms_rtp_receiver_cfg_t rc = {.codec = MS_CODEC_H264,
                                .clock_rate = 90000,
                                .payload_type = 96,
                                .on_frame = on_frame,
                                .on_params = on_params,
                                .ud = &c};
    char err[128];
    ms_rtp_receiver_t *rx = ms_rtp_receiver_new(&rc, err, sizeof err);
    if (!h || !rx) {
        fprintf(stderr, "setup failed: %s\n", rx ? "hls" : err);
        return 1;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
    size_t off = 0;
    const uint8_t *pkt;
    size_t pl;
    int64_t now_us = 1700000000000000ll;
    uint64_t npk = 0;
    while (ms_rtp_records_next(rec.data, rec.len, &off, &pkt, &pl, NULL) == 1) {
        uint32_t ts =
            ((uint32_t)pkt[4] << 24) | ((uint32_t)pkt[5] << 16) | ((uint32_t)pkt[6] << 8) | pkt[7];
        (void)ms_rtp_receiver_rtp(rx, pkt, pl, now_us + (int64_t)(ts / 90u) * 1000);
        npk++;
    }
    ms_rtp_receiver_flush(rx);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
    double ns = (double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec);

    /* 3. Hash every listed segment (and the init segment for fMP4). */
    ms_blob_t *plb = NULL;
    ms_hls_playlist_req_t req = {.msn = -1, .part = -1, .query_suffix = NULL};
    uint64_t hash = 0xcbf29ce484222325ull;
    int nseg = 0;
    size_t bytes = 0;
    if (ms_hls_playlist(h, &req, &plb) == 0) {
        char *txt = malloc(plb->len + 1);
        memcpy(txt, plb->data, plb->len);
        txt[plb->len] = 0;
        char *save = NULL;
        for (char *ln = strtok_r(txt, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save)) {
            const char *name = NULL;
            if (strncmp(ln, "seg", 3) == 0)
                name = ln;
            else if (strncmp(ln, "#EXT-X-MAP:URI=\"", 16) == 0) {
                name = ln + 16;
                char *q = strchr(ln + 16, '"');
                if (q)
                    *q = 0;
            }
            if (!name)
                continue;
            ms_hls_body_t body = {0};
            const char *ct;
            int64_t wm;
            int wp;
            if (ms_hls_segment_body(h, name, &body, &ct, &wm, &wp) != 0)
                continue;
            const char *dump = getenv("BENCH_DUMP");
            FILE *df = NULL;
            if (dump) {
                char fn[512];
                snprintf(fn, sizeof fn, "%s%03d", dump, nseg);
                df = fopen(fn, "wb");
            }
            for (int i = 0; i < body.n; i++) {
                hash = fnv(hash, body.blobs[i]->data, body.blobs[i]->len);
                if (df)
                    fwrite(body.blobs[i]->data, 1, body.blobs[i]->len, df);
            }
            if (df)
                fclose(df);
            bytes += body.len;
            nseg++;
            ms_hls_body_free(&body);
        }
        free(txt);
        ms_blob_unref(plb);
    }
    printf("packets %" PRIu64 " frames %" PRIu64 " segments %d bytes %zu hash %016" PRIx64
           " cpu %.0f ns/frame\n",
           npk, c.frames, nseg, bytes, hash, c.frames ? ns / (double)c.frames : 0.0);

    ms_rtp_receiver_free(rx);
    ms_hls_stop(h);
    for (int i = 0; i < 100 && uv_run(&loop, UV_RUN_NOWAIT); i++)
        ;
    ms_hub_free(c.hub);
    uv_loop_close(&loop);
    ms_buf_free(&rec);
    ms_buf_free(&au);
    free(clip);
    return 0;
}
