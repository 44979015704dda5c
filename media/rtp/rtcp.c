/* RTCP: sender report parsing (RFC 3550 section 6.4.1) and receiver report +
 * SDES CNAME building (sections 6.4.2, 6.5.1) for compound packets (6.1). */
#include <errno.h>
#include <string.h>

#include "media/rtp/rtp_internal.h"
#include "util/buf.h"

int ms_rtcp_find_sr(const uint8_t *p, size_t len, ms_rtcp_sr_t *out)
{
    size_t off = 0;
    int found = 0;
    if (!p || len < 4)
        return -EINVAL;
    while (off < len) {
        if (len - off < 4)
            return -EINVAL;
        const uint8_t *h = p + off;
        if ((h[0] >> 6) != 2)
            return -EINVAL;
        size_t plen = 4 * ((size_t)ms_rd_be16(h + 2) + 1);
        if (plen > len - off)
            return -EINVAL;
        if (h[1] == 200 && !found) {
            if (plen < 28)
                return -EINVAL;
            out->ssrc = ms_rd_be32(h + 4);
            out->ntp = ((uint64_t)ms_rd_be32(h + 8) << 32) | ms_rd_be32(h + 12);
            out->rtp_ts = ms_rd_be32(h + 16);
            out->packets = ms_rd_be32(h + 20);
            out->octets = ms_rd_be32(h + 24);
            found = 1;
        }
        off += plen;
    }
    return found;
}

size_t ms_rtcp_build_rr(const ms_rtcp_rr_t *rr, uint8_t *out, size_t cap)
{
    const char *cname = rr->cname ? rr->cname : "";
    size_t cl = strlen(cname);
    if (cl > 255)
        cl = 255;
    /* SDES chunk: SSRC, CNAME item (type, len, text), end item, pad to 4. */
    size_t chunk = 4 + 2 + cl + 1;
    chunk = (chunk + 3) & ~(size_t)3;
    size_t total = 32 + 4 + chunk;
    if (cap < total)
        return 0;
    uint8_t *o = out;
    o[0] = 0x81; /* V=2, P=0, RC=1 */
    o[1] = 201;
    o[2] = 0;
    o[3] = 7; /* (32 / 4) - 1 */
    ms_wr_be32(o + 4, rr->reporter_ssrc);
    ms_wr_be32(o + 8, rr->source_ssrc);
    int32_t cum = rr->cumulative_lost;
    if (cum > 0x7fffff)
        cum = 0x7fffff;
    if (cum < -0x800000)
        cum = -0x800000;
    ms_wr_be32(o + 12, ((uint32_t)rr->fraction_lost << 24) | ((uint32_t)cum & 0xffffff));
    ms_wr_be32(o + 16, rr->ext_highest_seq);
    ms_wr_be32(o + 20, rr->jitter);
    ms_wr_be32(o + 24, rr->lsr);
    ms_wr_be32(o + 28, rr->dlsr);
    o += 32;
    o[0] = 0x81; /* SC=1 */
    o[1] = 202;
    o[2] = (uint8_t)(((4 + chunk) / 4 - 1) >> 8);
    o[3] = (uint8_t)((4 + chunk) / 4 - 1);
    memset(o + 4, 0, chunk);
    ms_wr_be32(o + 4, rr->reporter_ssrc);
    o[8] = 1; /* CNAME */
    o[9] = (uint8_t)cl;
    memcpy(o + 10, cname, cl);
    return total;
}
