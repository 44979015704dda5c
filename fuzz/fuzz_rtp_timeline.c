/* libFuzzer: the RTP receiver's timeline (media/rtp/timeline.c) driven by
 * timestamp sequences rather than packet bytes. After a 4-byte initial RTP
 * timestamp, the input is a sequence of 5-byte records, each one frame:
 *   byte 0: bit 0 track (0: H.264 video, 1: PCMU audio), bit 1 split (video:
 *           the frame in two packets, the marker on the second), bit 2
 *           keyframe (video IDR), bits 3-7 shift;
 *   bytes 1-2: signed 16-bit mantissa: the RTP timestamp moves by
 *           mantissa << shift (mod 2^32: wraps, jumps of any size);
 *   byte 3: arrival step: < 200: that many ms, else (b - 199) s;
 *   byte 4: bit 7 set: (b & 7) packets lost before this one.
 * Every frame carries its record index in its payload, so the callback knows
 * its arrival. Invariants, per track: output dts strictly increasing, and no
 * step between two outputs longer than the arrival time they span (from the
 * output before the previous one, which covers a held outlier) plus twice the
 * jump threshold: no sample of absurd duration whatever the timestamps. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "media/rtp/receiver.h"
#include "media/rtp/rtp_internal.h"
#include "util/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    const int64_t *arr; /* arrival of each record, us */
    size_t nrec;
    uint32_t rate;
    int outputs;
    int64_t last_dts, a1, a2; /* arrivals of the last two outputs */
} track_t;

/* The record index written into the payload by the driver. */
static long frame_record(const ms_frame_t *f, int video)
{
    if (!video)
        return f->size >= 4 ? (long)ms_rd_be32(f->data) : -1;
    size_t off = 0;
    while (off + 4 <= f->size) {
        uint32_t l = ms_rd_be32(f->data + off);
        off += 4;
        if (l > f->size - off)
            break;
        const uint8_t *n = f->data + off;
        int t = l ? n[0] & 0x1f : 0;
        if ((t == 1 || t == 5) && l >= 5)
            return (long)ms_rd_be32(n + 1);
        off += l;
    }
    return -1;
}

static void check(track_t *t, ms_frame_t *f, int video)
{
    long rec = frame_record(f, video);
    if (rec < 0 || (size_t)rec >= t->nrec)
        abort(); /* every frame comes from a record */
    int64_t a = t->arr[rec];
    if (t->outputs) {
        if (f->dts <= t->last_dts)
            abort(); /* dts must be strictly increasing */
        int64_t span_us = a - t->a2;
        if (span_us < 0)
            span_us = 0;
        int64_t bound =
            span_us * (int64_t)t->rate / 1000000 + 2 * (int64_t)t->rate * MS_RTP_JUMP_MS / 1000 + 1;
        if (f->dts - t->last_dts > bound)
            abort(); /* a sample of absurd duration */
    }
    t->a2 = t->outputs ? t->a1 : a;
    t->a1 = a;
    t->last_dts = f->dts;
    t->outputs++;
    ms_frame_unref(f);
}

static void on_video(void *ud, ms_frame_t *f)
{
    check(ud, f, 1);
}

static void on_audio(void *ud, ms_frame_t *f)
{
    check(ud, f, 0);
}

static size_t rtp(uint8_t *o, int marker, int pt, uint16_t seq, uint32_t ts, uint32_t ssrc)
{
    o[0] = 0x80;
    o[1] = (uint8_t)((marker ? 0x80 : 0) | pt);
    o[2] = (uint8_t)(seq >> 8);
    o[3] = (uint8_t)seq;
    ms_wr_be32(o + 4, ts);
    ms_wr_be32(o + 8, ssrc);
    return 12;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    size_t nrec = (size - 4) / 5;
    int64_t *arr = malloc(sizeof *arr * (nrec ? nrec : 1));
    if (!arr)
        return 0;
    track_t tr[2] = {{arr, nrec, 90000, 0, 0, 0, 0}, {arr, nrec, 8000, 0, 0, 0, 0}};
    ms_rtp_receiver_cfg_t vc = {0}, ac = {0};
    vc.codec = MS_CODEC_H264;
    vc.clock_rate = 90000;
    vc.payload_type = 96;
    vc.fmtp = "packetization-mode=1;sprop-parameter-sets=Z2QAHqy0BQF/y4CIAAADAAgAAAMBkHixdQ==,"
              "aO88sA==";
    vc.on_frame = on_video;
    vc.ud = &tr[0];
    ac.codec = MS_CODEC_PCMU;
    ac.clock_rate = 8000;
    ac.payload_type = 0;
    ac.on_frame = on_audio;
    ac.ud = &tr[1];
    ms_rtp_receiver_t *rx[2] = {ms_rtp_receiver_new(&vc, NULL, 0),
                                ms_rtp_receiver_new(&ac, NULL, 0)};
    if (!rx[0] || !rx[1])
        abort();
    uint32_t ts[2] = {ms_rd_be32(data), ms_rd_be32(data) ^ 0x5a5a5a5au};
    uint16_t seq[2] = {1, 1};
    int64_t now = 1000000;
    uint8_t pkt[12 + 16];
    for (size_t i = 0; i < nrec; i++) {
        const uint8_t *r = data + 4 + i * 5;
        int track = r[0] & 1, split = (r[0] >> 1) & 1, key = (r[0] >> 2) & 1, shift = r[0] >> 3;
        int16_t mant = (int16_t)ms_rd_be16(r + 1);
        ts[track] += (uint32_t)((uint64_t)(int64_t)mant << shift);
        now += r[3] < 200 ? (int64_t)r[3] * 1000 : (int64_t)(r[3] - 199) * 1000000;
        arr[i] = now;
        if (r[4] & 0x80)
            seq[track] = (uint16_t)(seq[track] + (r[4] & 7));
        if (track == 0) {
            for (int k = 0; k <= split; k++) {
                size_t n = rtp(pkt, k == split, 96, seq[0]++, ts[0], 0x11223344);
                pkt[n++] = key ? 0x65 : 0x41;
                ms_wr_be32(pkt + n, (uint32_t)i);
                n += 4;
                memset(pkt + n, 0x88, 4);
                n += 4;
                ms_rtp_receiver_rtp(rx[0], pkt, n, now);
            }
        } else {
            size_t n = rtp(pkt, 0, 0, seq[1]++, ts[1], 0x55667788);
            ms_wr_be32(pkt + n, (uint32_t)i);
            n += 4;
            memset(pkt + n, 0xff, 8);
            n += 8;
            ms_rtp_receiver_rtp(rx[1], pkt, n, now);
        }
    }
    for (int k = 0; k < 2; k++) {
        ms_rtp_receiver_flush(rx[k]);
        const ms_rtp_stats_t *st = ms_rtp_receiver_stats(rx[k]);
        if (st->ts_jumps > st->frames + 1)
            abort(); /* at most one jump per frame */
        ms_rtp_receiver_free(rx[k]);
    }
    free(arr);
    return 0;
}
