/* Text encodings of bytes (util/encoding.h): RFC 4648. */
#include "util/encoding.h"

#include <ctype.h>
#include <errno.h>

int ms_hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int ms_b64url_encode(const uint8_t *in, size_t len, char *out, size_t cap)
{
    size_t need = len / 3 * 4 + (len % 3 ? len % 3 + 1 : 0);
    if (need + 1 > cap)
        return -ENOSPC;
    size_t o = 0, i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8) | in[i + 2];
        out[o++] = b64chars[v >> 18];
        out[o++] = b64chars[(v >> 12) & 63];
        out[o++] = b64chars[(v >> 6) & 63];
        out[o++] = b64chars[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = b64chars[v >> 18];
        out[o++] = b64chars[(v >> 12) & 63];
    } else if (len - i == 2) {
        uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8);
        out[o++] = b64chars[v >> 18];
        out[o++] = b64chars[(v >> 12) & 63];
        out[o++] = b64chars[(v >> 6) & 63];
    }
    out[o] = '\0';
    return (int)o;
}

static int b64val(int c, unsigned flags)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if ((c == '+' && (flags & MS_B64_STD)) || (c == '-' && (flags & MS_B64_URL)))
        return 62;
    if ((c == '/' && (flags & MS_B64_STD)) || (c == '_' && (flags & MS_B64_URL)))
        return 63;
    return -1;
}

int ms_b64_decode(const char *in, size_t len, unsigned flags, uint8_t *out, size_t cap)
{
    int lenient = (flags & MS_B64_LENIENT) != 0;
    if (!lenient) {
        if (len % 4 == 1)
            return -EINVAL;
        size_t need = len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0);
        if (need > cap)
            return -ENOSPC;
    }
    size_t o = 0;
    uint32_t acc = 0;
    int nbits = 0;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)in[i];
        if (lenient && c == '=')
            break;
        if (lenient && isspace(c))
            continue;
        int v = b64val(c, flags);
        if (v < 0)
            return -EINVAL;
        acc = (acc << 6) | (uint32_t)v;
        nbits += 6;
        if (nbits >= 8) {
            nbits -= 8;
            if (o >= cap)
                return -ENOSPC;
            out[o++] = (uint8_t)(acc >> nbits);
            acc &= (1u << nbits) - 1;
        }
    }
    if (!lenient && acc != 0) /* non-canonical: leftover bits must be zero */
        return -EINVAL;
    return (int)o;
}

int ms_b64url_decode(const char *in, size_t len, uint8_t *out, size_t cap)
{
    return ms_b64_decode(in, len, MS_B64_URL, out, cap);
}
