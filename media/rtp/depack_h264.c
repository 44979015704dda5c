/* H.264 RTP depacketizer (RFC 6184): single NAL unit packets (5.6), STAP-A
 * (5.7.1) and FU-A (5.8) in non-interleaved mode. STAP-B, MTAP16/24 and
 * FU-B belong to the interleaved mode and are rejected (counted malformed).
 * Access unit boundary: marker bit (5.1) or a timestamp change. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "media/codec/h264.h"
#include "media/rtp/rtp_internal.h"
#include "util/encoding.h"

static int init(ms_rtp_receiver_t *r, void *st, const char *fmtp, char *err, size_t errlen)
{
    ms_rtp_au_t *a = st;
    a->hevc = 0;
    if (ms_rtp_fmtp_int(fmtp, "packetization-mode", 0) > 1) {
        if (err && errlen)
            snprintf(err, errlen, "H.264 interleaved mode (packetization-mode=2) unsupported");
        return -EINVAL;
    }
    char v[2048];
    if (ms_rtp_fmtp_get(fmtp, "sprop-parameter-sets", v, sizeof v) > 0) {
        /* 8.2.1: comma-separated base64 NAL units. */
        char *save = NULL;
        for (char *tok = strtok_r(v, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            uint8_t nal[MS_PARAM_SET_MAX];
            int n = ms_b64_decode(tok, strlen(tok), MS_B64_STD | MS_B64_URL | MS_B64_LENIENT, nal,
                                  sizeof nal);
            if (n > 0)
                (void)ms_rtp_au_param_set(r, 0, nal, (size_t)n);
        }
    }
    return 0;
}

/* Can this NAL (header + first payload byte, when present) open an AU
 * (H.264 7.4.1.2.3)? A slice opens one when first_mb_in_slice == 0, i.e.
 * its ue(v) is the single bit '1'. */
static int opens_au(const uint8_t *nal, size_t len)
{
    int t = ms_h264_nal_type(nal[0]);
    if (t == MS_H264_NAL_AUD || t == MS_H264_NAL_SPS || t == MS_H264_NAL_PPS ||
        t == MS_H264_NAL_SEI)
        return 1;
    if (t == MS_H264_NAL_SLICE || t == MS_H264_NAL_IDR)
        return len > 1 && (nal[1] & 0x80);
    return 0;
}

static void packet(ms_rtp_receiver_t *r, void *st, const ms_rtp_packet_t *p, uint64_t lost)
{
    ms_rtp_au_t *a = (ms_rtp_au_t *)st;
    const uint8_t *d = p->payload;
    size_t n = p->payload_len;
    if (lost)
        ms_rtp_au_gap(a);
    if (n < 1) {
        ms_rtp_receiver_count_malformed(r);
        return;
    }
    int type = d[0] & 0x1f;
    int starts = 0;
    if (type >= 1 && type <= 23)
        starts = opens_au(d, n);
    else if (type == 24 && n >= 4)
        starts = opens_au(d + 3, n - 3);
    else if (type == 28 && n >= 2 && (d[1] & 0x80)) {
        uint8_t hdr[2] = {(uint8_t)((d[0] & 0xe0) | (d[1] & 0x1f)), n > 2 ? d[2] : 0};
        starts = opens_au(hdr, n > 2 ? 2 : 1);
    }
    ms_rtp_au_packet(r, a, p, starts);

    if (type >= 1 && type <= 23) { /* 5.6 single NAL unit packet */
        if (a->fu_active)
            ms_rtp_au_bad(r, a);
        ms_rtp_au_add(r, a, d, n);
    } else if (type == 24) { /* 5.7.1 STAP-A: [size(16) NAL]+ */
        if (a->fu_active)
            ms_rtp_au_bad(r, a);
        size_t off = 1;
        int ok = n > 1;
        /* Validate the whole packet first so a bad one adds nothing. */
        while (ok && off < n) {
            if (n - off < 2) {
                ok = 0;
                break;
            }
            size_t sz = ((size_t)d[off] << 8) | d[off + 1];
            off += 2;
            if (sz == 0 || sz > n - off)
                ok = 0;
            off += sz;
        }
        if (!ok) {
            ms_rtp_au_bad(r, a);
        } else {
            off = 1;
            while (off < n) {
                size_t sz = ((size_t)d[off] << 8) | d[off + 1];
                ms_rtp_au_add(r, a, d + off + 2, sz);
                off += 2 + sz;
            }
        }
    } else if (type == 28) { /* 5.8 FU-A: indicator, header(S E R type), data */
        if (n < 2) {
            ms_rtp_au_bad(r, a);
        } else {
            int s = d[1] >> 7, e = (d[1] >> 6) & 1;
            if (s && e) { /* both set is not allowed (5.8) */
                ms_rtp_au_bad(r, a);
            } else {
                uint8_t hdr = (uint8_t)((d[0] & 0xe0) | (d[1] & 0x1f));
                ms_rtp_au_fu(r, a, s, e, &hdr, 1, d + 2, n - 2);
            }
        }
    } else {
        /* 0, 30, 31 undefined; 25-27, 29 (STAP-B, MTAPs, FU-B) are the
         * interleaved mode we do not negotiate. */
        ms_rtp_au_bad(r, a);
    }
    if (p->marker)
        ms_rtp_au_finish(r, a);
}

const ms_rtp_depack_ops_t ms_rtp_depack_h264 = {
    sizeof(ms_rtp_au_t), init, packet, ms_rtp_au_op_flush, ms_rtp_au_op_reset,
    ms_rtp_au_op_destroy};
