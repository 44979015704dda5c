/* SDP a=fmtp parameter lookup (RFC 4566 section 6, "a=fmtp:<format>
 * <format specific parameters>", here the part after the format) and the
 * decoders its values need: base64 (RFC 4648 section 4) and hex. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "media/rtp/rtp_internal.h"

int ms_rtp_fmtp_get(const char *fmtp, const char *key, char *out, size_t cap)
{
    if (!fmtp || !key || cap == 0)
        return -1;
    size_t kl = strlen(key);
    const char *p = fmtp;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ';')
            p++;
        const char *end = strchr(p, ';');
        if (!end)
            end = p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(end - p));
        if (eq) {
            const char *ke = eq;
            while (ke > p && (ke[-1] == ' ' || ke[-1] == '\t'))
                ke--;
            if ((size_t)(ke - p) == kl && strncasecmp(p, key, kl) == 0) {
                const char *v = eq + 1;
                while (v < end && (*v == ' ' || *v == '\t'))
                    v++;
                const char *ve = end;
                while (ve > v &&
                       (ve[-1] == ' ' || ve[-1] == '\t' || ve[-1] == '\r' || ve[-1] == '\n'))
                    ve--;
                size_t vl = (size_t)(ve - v);
                if (vl + 1 > cap)
                    return -1;
                memcpy(out, v, vl);
                out[vl] = 0;
                return (int)vl;
            }
        }
        p = end;
    }
    return -1;
}

long ms_rtp_fmtp_int(const char *fmtp, const char *key, long def)
{
    char v[32];
    if (ms_rtp_fmtp_get(fmtp, key, v, sizeof v) <= 0)
        return def;
    char *e;
    long n = strtol(v, &e, 10);
    if (*e || n < 0)
        return def;
    return n;
}

static int b64v(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

int ms_rtp_base64_decode(const char *s, size_t slen, uint8_t *out, size_t cap)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < slen; i++) {
        int c = (unsigned char)s[i];
        if (c == '=')
            break;
        if (isspace(c))
            continue;
        int v = b64v(c);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= cap)
                return -1;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    return (int)o;
}

int ms_rtp_hex_decode(const char *s, uint8_t *out, size_t cap)
{
    size_t n = strlen(s);
    if (n % 2 || n / 2 > cap)
        return -1;
    for (size_t i = 0; i < n; i += 2) {
        int hi = isxdigit((unsigned char)s[i]), lo = isxdigit((unsigned char)s[i + 1]);
        if (!hi || !lo)
            return -1;
        char b[3] = {s[i], s[i + 1], 0};
        out[i / 2] = (uint8_t)strtoul(b, NULL, 16);
    }
    return (int)(n / 2);
}
