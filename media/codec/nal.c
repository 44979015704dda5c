/* NAL unit framing and the RBSP bit reader (ISO/IEC 14496-10 7.2 / 7.4.1,
 * Annex B byte streams; ISO/IEC 14496-15 length-prefixed samples). */
#include "media/codec/nal.h"

int ms_nal_next(const uint8_t *buf, size_t len, size_t *off, const uint8_t **nal, size_t *nal_len)
{
    size_t o = *off;
    if (o >= len)
        return 0;
    if (len - o < 4)
        return -1;
    uint32_t n = ((uint32_t)buf[o] << 24) | ((uint32_t)buf[o + 1] << 16) |
                 ((uint32_t)buf[o + 2] << 8) | buf[o + 3];
    o += 4;
    if (n > len - o)
        return -1;
    *nal = buf + o;
    *nal_len = n;
    *off = o + n;
    return 1;
}

/* Finds the next 00 00 01 at or after i; returns its index or len. */
static size_t find_start(const uint8_t *buf, size_t len, size_t i)
{
    while (i + 3 <= len) {
        if (buf[i + 2] > 1)
            i += 3;
        else if (buf[i] == 0 && buf[i + 1] == 0 && buf[i + 2] == 1)
            return i;
        else
            i++;
    }
    return len;
}

int ms_annexb_next(const uint8_t *buf, size_t len, size_t *off, const uint8_t **nal,
                   size_t *nal_len)
{
    size_t o = *off;
    for (;;) {
        if (o >= len)
            return 0;
        size_t s = find_start(buf, len, o);
        if (s == len) {
            /* No start code: the remainder (if any, and only when this is
             * the first call) is taken as one NAL. */
            if (o == 0 && len > 0) {
                *nal = buf;
                *nal_len = len;
                *off = len;
                return 1;
            }
            *off = len;
            return 0;
        }
        size_t begin = s + 3;
        size_t e = find_start(buf, len, begin);
        size_t end = e;
        /* Trailing zero bytes belong to the next start code (00 00 00 01)
         * or are trailing_zero_8bits (Annex B.1). */
        while (end > begin && buf[end - 1] == 0)
            end--;
        *off = e;
        if (end > begin) {
            *nal = buf + begin;
            *nal_len = end - begin;
            return 1;
        }
        o = e; /* empty NAL: skip */
    }
}

size_t ms_nal_unescape(uint8_t *dst, const uint8_t *src, size_t len)
{
    size_t o = 0;
    int zeros = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = src[i];
        if (zeros >= 2 && c == 3) {
            zeros = 0;
            continue;
        }
        dst[o++] = c;
        zeros = c == 0 ? zeros + 1 : 0;
    }
    return o;
}

void ms_bits_init(ms_bits_t *b, const uint8_t *p, size_t len)
{
    b->p = p;
    b->len = len;
    b->pos = 0;
    b->err = 0;
}

static int read_bit(ms_bits_t *b)
{
    if (b->pos >= b->len * 8) {
        b->err = 1;
        return 0;
    }
    int v = (b->p[b->pos >> 3] >> (7 - (b->pos & 7))) & 1;
    b->pos++;
    return v;
}

uint32_t ms_bits_read(ms_bits_t *b, int n)
{
    uint32_t v = 0;
    if (n <= 0 || n > 32)
        return 0;
    for (int i = 0; i < n; i++)
        v = (v << 1) | (uint32_t)read_bit(b);
    return b->err ? 0 : v;
}

void ms_bits_skip(ms_bits_t *b, size_t n)
{
    if (n > b->len * 8 - (b->pos < b->len * 8 ? b->pos : b->len * 8) || b->pos > b->len * 8) {
        b->pos = b->len * 8;
        b->err = 1;
        return;
    }
    b->pos += n;
}

/* ue(v), 9.1: leading zeros, a one, then that many bits. Values that need
 * more than 31 leading zeros are invalid in every syntax element we read. */
uint32_t ms_bits_ue(ms_bits_t *b)
{
    int lz = 0;
    while (!read_bit(b)) {
        if (b->err || ++lz > 31) {
            b->err = 1;
            return 0;
        }
    }
    if (lz == 0)
        return 0;
    uint32_t rest = ms_bits_read(b, lz);
    if (b->err)
        return 0;
    return (uint32_t)(((uint64_t)1 << lz) - 1 + rest);
}

/* se(v), 9.1.1. */
int32_t ms_bits_se(ms_bits_t *b)
{
    uint32_t k = ms_bits_ue(b);
    if (k & 1)
        return (int32_t)((k + 1) / 2);
    return -(int32_t)(k / 2);
}
