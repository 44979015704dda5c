/* SDP a=fmtp parameter lookup (RFC 4566 section 6, "a=fmtp:<format>
 * <format specific parameters>", here the part after the format; see
 * media/rtp/fmtp.h) and the hex decoder its values need (base64 is
 * util/encoding.h). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "media/rtp/rtp_internal.h"
#include "util/encoding.h"

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

int ms_rtp_hex_decode(const char *s, uint8_t *out, size_t cap)
{
    size_t n = strlen(s);
    if (n % 2 || n / 2 > cap)
        return -1;
    for (size_t i = 0; i < n; i += 2) {
        int hi = ms_hexval((unsigned char)s[i]), lo = ms_hexval((unsigned char)s[i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    return (int)(n / 2);
}
