/* RTP fixed header parsing (RFC 3550 section 5.1, header extension 5.3.1). */
#include <errno.h>

#include "media/rtp/rtp_internal.h"

int ms_rtp_packet_parse(const uint8_t *p, size_t len, ms_rtp_packet_t *out)
{
    if (!p || len < 12)
        return -EINVAL;
    out->version = (uint8_t)(p[0] >> 6);
    out->padding = (uint8_t)((p[0] >> 5) & 1);
    out->extension = (uint8_t)((p[0] >> 4) & 1);
    out->csrc_count = (uint8_t)(p[0] & 0x0f);
    out->marker = (uint8_t)(p[1] >> 7);
    out->pt = (uint8_t)(p[1] & 0x7f);
    out->seq = (uint16_t)((p[2] << 8) | p[3]);
    out->ts = ((uint32_t)p[4] << 24) | ((uint32_t)p[5] << 16) | ((uint32_t)p[6] << 8) | p[7];
    out->ssrc = ((uint32_t)p[8] << 24) | ((uint32_t)p[9] << 16) | ((uint32_t)p[10] << 8) | p[11];
    if (out->version != 2)
        return -EINVAL;
    size_t off = 12 + 4 * (size_t)out->csrc_count;
    if (off > len)
        return -EINVAL;
    if (out->extension) {
        /* defined-by-profile (16), length in 32-bit words (16), data */
        if (len - off < 4)
            return -EINVAL;
        size_t words = (size_t)((p[off + 2] << 8) | p[off + 3]);
        off += 4;
        if (len - off < 4 * words)
            return -EINVAL;
        off += 4 * words;
    }
    size_t end = len;
    if (out->padding) {
        /* The last octet counts the padding octets, itself included. */
        uint8_t pad = p[len - 1];
        if (pad == 0 || pad > end - off)
            return -EINVAL;
        end -= pad;
    }
    out->payload = p + off;
    out->payload_len = end - off;
    return 0;
}
