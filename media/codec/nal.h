/* NAL unit framing helpers shared by H.264 and H.265 (ISO/IEC 14496-10
 * Annex B byte streams, ISO/IEC 14496-15 length-prefixed samples). Pure. */
#ifndef MS_MEDIA_CODEC_NAL_H
#define MS_MEDIA_CODEC_NAL_H

#include <stddef.h>
#include <stdint.h>

/* Iterates 4-byte length-prefixed NAL units (the frame payload format).
 * *off starts at 0. Returns 1 with *nal and *nal_len set, 0 at the end, -1 when
 * a length runs past the buffer (malformed). */
int ms_nal_next(const uint8_t *buf, size_t len, size_t *off, const uint8_t **nal, size_t *nal_len);

/* Iterates an Annex-B byte stream (start codes 00 00 01 / 00 00 00 01).
 * *off starts at 0. Returns 1 with the next NAL (without start code), 0 at end. */
int ms_annexb_next(const uint8_t *buf, size_t len, size_t *off, const uint8_t **nal,
                   size_t *nal_len);

/* Removes emulation prevention bytes (00 00 03 -> 00 00) into dst (which
 * must hold len bytes); returns the output length. */
size_t ms_nal_unescape(uint8_t *dst, const uint8_t *src, size_t len);

/* Exp-Golomb bit reader over an unescaped RBSP. Reading past the end sets
 * err and returns 0; parsers check err once at the end. */
typedef struct {
    const uint8_t *p;
    size_t len; /* bytes */
    size_t pos; /* bit position */
    int err;
} ms_bits_t;
void ms_bits_init(ms_bits_t *b, const uint8_t *p, size_t len);
uint32_t ms_bits_read(ms_bits_t *b, int n); /* n <= 32 */
void ms_bits_skip(ms_bits_t *b, size_t n);
uint32_t ms_bits_ue(ms_bits_t *b);
int32_t ms_bits_se(ms_bits_t *b);

#endif
