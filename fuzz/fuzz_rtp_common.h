/* Shared libFuzzer driver for the RTP receiver: the input is a sequence of
 * packets, each preceded by a 2-byte big-endian length; a length with the
 * top bit set is fed as RTCP instead of RTP. */
#ifndef MS_FUZZ_RTP_COMMON_H
#define MS_FUZZ_RTP_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "media/rtp/receiver.h"

static void fuzz_on_frame(void *ud, ms_frame_t *f)
{
    (void)ud;
    /* touch the payload so ASan checks it */
    volatile uint8_t x = 0;
    for (uint32_t i = 0; i < f->size; i++)
        x ^= f->data[i];
    (void)x;
    ms_frame_unref(f);
}

static void fuzz_on_params(void *ud, const ms_codec_params_t *p)
{
    (void)ud;
    (void)p;
}

static int fuzz_rtp_run(ms_codec_t codec, uint32_t rate, const char *fmtp, const uint8_t *data,
                        size_t size)
{
    if (size < 1)
        return 0;
    ms_rtp_receiver_cfg_t c = {0};
    c.codec = codec;
    c.clock_rate = rate;
    c.payload_type = -1;
    c.fmtp = fmtp;
    c.reorder_window = data[0] & 1 ? 0 : 16; /* TCP or UDP behaviour */
    c.on_frame = fuzz_on_frame;
    c.on_params = fuzz_on_params;
    ms_rtp_receiver_t *r = ms_rtp_receiver_new(&c, NULL, 0);
    if (!r)
        return 0;
    size_t off = 1;
    int64_t now = 0;
    while (size - off >= 2) {
        size_t l = ((size_t)(data[off] & 0x7f) << 8) | data[off + 1];
        int rtcp = data[off] & 0x80;
        off += 2;
        if (l > size - off)
            l = size - off;
        if (rtcp)
            ms_rtp_receiver_rtcp(r, data + off, l, now);
        else
            ms_rtp_receiver_rtp(r, data + off, l, now);
        off += l;
        now += 20000;
    }
    uint8_t rr[512];
    (void)ms_rtp_receiver_rtcp_rr(r, rr, sizeof rr, now);
    int64_t w;
    (void)ms_rtp_receiver_ntp(r, 12345, &w);
    ms_rtp_receiver_flush(r);
    ms_rtp_receiver_free(r);
    return 0;
}

#endif
