/* Text encodings of bytes: base64 (RFC 4648 sections 4 and 5) and hex
 * digits. Pure: no I/O, no globals.
 *
 * Threads: any; every function only touches its arguments. Output buffers
 * belong to the caller. */
#ifndef MS_UTIL_ENCODING_H
#define MS_UTIL_ENCODING_H

#include <stddef.h>
#include <stdint.h>

/* Value of one hex digit (0-9, a-f, A-F), or -1. */
int ms_hexval(int c);

/* Flags of ms_b64_decode: which alphabet(s), and how strict. */
enum {
    MS_B64_STD = 1, /* '+' and '/' for 62 and 63 (RFC 4648 section 4) */
    MS_B64_URL = 2, /* '-' and '_' for 62 and 63 (RFC 4648 section 5) */
    /* Lenient (SDP fmtp values, e.g. sprop-parameter-sets, RFC 6184 section
     * 8.1): whitespace is skipped, the first '=' ends the text, trailing
     * bits are dropped and the length is not checked. Without it the text
     * is strict: no padding, no whitespace, a length that is not 1 mod 4
     * and zero trailing bits. */
    MS_B64_LENIENT = 4,
};

/* Decodes in[0..len) into out[0..cap). Returns the byte count, -EINVAL on a
 * character outside the alphabet (or, strict, a bad length or non-zero
 * trailing bits) or -ENOSPC when out is too small. */
int ms_b64_decode(const char *in, size_t len, unsigned flags, uint8_t *out, size_t cap);

/* base64url without padding (RFC 4648 section 5). encode writes a NUL
 * terminated text and returns its length or -ENOSPC; decode is
 * ms_b64_decode(in, len, MS_B64_URL, out, cap) (strict). */
int ms_b64url_encode(const uint8_t *in, size_t len, char *out, size_t cap);
int ms_b64url_decode(const char *in, size_t len, uint8_t *out, size_t cap);

#endif
