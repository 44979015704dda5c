/* H.265 RTP depacketizer (RFC 7798): single NAL unit packets (4.4.1),
 * aggregation packets (4.4.2) and fragmentation units (4.4.3), without
 * DONL/DOND fields (sprop-max-don-diff must be 0, 7.1). PACI (4.4.4) is
 * rejected (counted malformed). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "media/codec/h265.h"
#include "media/rtp/rtp_internal.h"
#include "util/encoding.h"

#define AP 48
#define FU 49

static void load_sprop(ms_rtp_receiver_t *r, const char *fmtp, const char *key)
{
    char v[2048];
    if (ms_rtp_fmtp_get(fmtp, key, v, sizeof v) <= 0)
        return;
    char *save = NULL;
    for (char *tok = strtok_r(v, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        uint8_t nal[MS_PARAM_SET_MAX];
        int n = ms_b64_decode(tok, strlen(tok), MS_B64_STD | MS_B64_URL | MS_B64_LENIENT, nal,
                              sizeof nal);
        if (n > 0)
            (void)ms_rtp_au_param_set(r, 1, nal, (size_t)n);
    }
}

static int init(ms_rtp_receiver_t *r, void *st, const char *fmtp, char *err, size_t errlen)
{
    ms_rtp_au_t *a = st;
    a->hevc = 1;
    if (ms_rtp_fmtp_int(fmtp, "sprop-max-don-diff", 0) != 0 ||
        ms_rtp_fmtp_int(fmtp, "sprop-depack-buf-nalus", 0) != 0) {
        if (err && errlen)
            snprintf(err, errlen, "H.265 with DONL (sprop-max-don-diff > 0) unsupported");
        return -EINVAL;
    }
    load_sprop(r, fmtp, "sprop-vps");
    load_sprop(r, fmtp, "sprop-sps");
    load_sprop(r, fmtp, "sprop-pps");
    return 0;
}

/* Can this NAL open an access unit (H.265 7.4.2.4.4)? VCL NALs do when
 * first_slice_segment_in_pic_flag (the first bit after the header) is 1. */
static int opens_au(const uint8_t *nal, size_t len)
{
    if (len < 2)
        return 0;
    int t = ms_h265_nal_type(nal[0]);
    if (t == MS_H265_NAL_AUD || t == MS_H265_NAL_VPS || t == MS_H265_NAL_SPS ||
        t == MS_H265_NAL_PPS || t == MS_H265_NAL_SEI_PREFIX)
        return 1;
    if (t < 32)
        return len > 2 && (nal[2] & 0x80);
    return 0;
}

static void packet(ms_rtp_receiver_t *r, void *st, const ms_rtp_packet_t *p, uint64_t lost)
{
    ms_rtp_au_t *a = (ms_rtp_au_t *)st;
    const uint8_t *d = p->payload;
    size_t n = p->payload_len;
    if (lost)
        ms_rtp_au_gap(a);
    if (n < 2 || (d[0] & 0x80)) { /* F bit must be 0 (1.1.4) */
        ms_rtp_receiver_count_malformed(r);
        return;
    }
    int type = ms_h265_nal_type(d[0]);
    int starts = 0;
    if (type < AP)
        starts = opens_au(d, n);
    else if (type == AP && n >= 5)
        starts = opens_au(d + 4, n - 4);
    else if (type == FU && n >= 3 && (d[2] & 0x80)) {
        uint8_t hdr[3] = {(uint8_t)((d[0] & 0x81) | ((d[2] & 0x3f) << 1)), d[1], n > 3 ? d[3] : 0};
        starts = opens_au(hdr, n > 3 ? 3 : 2);
    }
    ms_rtp_au_packet(r, a, p, starts);

    if (type < AP) { /* 4.4.1 single NAL unit packet */
        if (a->fu_active)
            ms_rtp_au_bad(r, a);
        ms_rtp_au_add(r, a, d, n);
    } else if (type == AP) { /* 4.4.2: header(2), [size(16) NAL]+ */
        if (a->fu_active)
            ms_rtp_au_bad(r, a);
        size_t off = 2;
        int ok = n > 2, count = 0;
        while (ok && off < n) {
            if (n - off < 2) {
                ok = 0;
                break;
            }
            size_t sz = ((size_t)d[off] << 8) | d[off + 1];
            off += 2;
            if (sz < 2 || sz > n - off)
                ok = 0;
            off += sz;
            count++;
        }
        if (!ok || count < 2) { /* an AP carries at least two NALs */
            ms_rtp_au_bad(r, a);
        } else {
            off = 2;
            while (off < n) {
                size_t sz = ((size_t)d[off] << 8) | d[off + 1];
                ms_rtp_au_add(r, a, d + off + 2, sz);
                off += 2 + sz;
            }
        }
    } else if (type == FU) { /* 4.4.3: header(2), FU header(S E type), data */
        if (n < 3) {
            ms_rtp_au_bad(r, a);
        } else {
            int s = d[2] >> 7, e = (d[2] >> 6) & 1;
            if (s && e) {
                ms_rtp_au_bad(r, a);
            } else {
                uint8_t hdr[2] = {(uint8_t)((d[0] & 0x81) | ((d[2] & 0x3f) << 1)), d[1]};
                ms_rtp_au_fu(r, a, s, e, hdr, 2, d + 3, n - 3);
            }
        }
    } else { /* 50 PACI, 51-63 unspecified */
        ms_rtp_au_bad(r, a);
    }
    if (p->marker)
        ms_rtp_au_finish(r, a);
}

const ms_rtp_depack_ops_t ms_rtp_depack_h265 = {
    sizeof(ms_rtp_au_t), init, packet, ms_rtp_au_op_flush, ms_rtp_au_op_reset,
    ms_rtp_au_op_destroy};
