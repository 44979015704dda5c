/* RTSP URL parsing and control URL resolution (RFC 2326 section 3.2 and
 * appendix C.1.1, RFC 3986 sections 3 and 5.2). */
#include "media/rtsp/url.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util/encoding.h"

int ms_rtsp_url_pct_decode(const char *src, size_t len, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)src[i];
        if (c == '%') {
            if (i + 2 >= len)
                return -EINVAL;
            int h = ms_hexval((unsigned char)src[i + 1]), l = ms_hexval((unsigned char)src[i + 2]);
            if (h < 0 || l < 0)
                return -EINVAL;
            c = h * 16 + l;
            i += 2;
        }
        if (c == 0)
            return -EINVAL;
        if (o + 1 >= cap)
            return -ENAMETOOLONG;
        out[o++] = (char)c;
    }
    if (cap == 0)
        return -ENAMETOOLONG;
    out[o] = '\0';
    return (int)o;
}

static int copy_n(char *dst, size_t cap, const char *src, size_t n)
{
    if (n + 1 > cap)
        return -ENAMETOOLONG;
    memcpy(dst, src, n);
    dst[n] = '\0';
    return 0;
}

/* Characters never allowed anywhere in a URL we send on a request line. */
static int bad_url_char(int c)
{
    return c <= 0x20 || c == 0x7f;
}

int ms_rtsp_url_parse(const char *s, ms_rtsp_url_t *u)
{
    memset(u, 0, sizeof *u);
    if (!s)
        return -EINVAL;
    const char *p;
    if (strncasecmp(s, "rtsp://", 7) == 0) {
        p = s + 7;
    } else if (strncasecmp(s, "rtsps://", 8) == 0) {
        u->secure = 1;
        p = s + 8;
    } else {
        return -EINVAL;
    }
    for (const char *q = p; *q; q++)
        if (bad_url_char((unsigned char)*q))
            return -EINVAL;

    size_t alen = strcspn(p, "/?#");
    const char *auth = p, *aend = p + alen;
    /* userinfo: up to the last '@' of the authority (RFC 3986 3.2.1);
     * passwords with an unescaped '@' are common in camera URLs. */
    const char *at = NULL;
    for (const char *q = auth; q < aend; q++)
        if (*q == '@')
            at = q;
    if (at) {
        u->has_userinfo = 1;
        const char *colon = memchr(auth, ':', (size_t)(at - auth));
        size_t ulen = colon ? (size_t)(colon - auth) : (size_t)(at - auth);
        int r = ms_rtsp_url_pct_decode(auth, ulen, u->user, sizeof u->user);
        if (r < 0)
            return r;
        if (colon) {
            r = ms_rtsp_url_pct_decode(colon + 1, (size_t)(at - colon - 1), u->pass,
                                       sizeof u->pass);
            if (r < 0)
                return r;
        }
        auth = at + 1;
    }

    const char *hend, *portp = NULL;
    if (auth < aend && *auth == '[') {
        const char *rb = memchr(auth, ']', (size_t)(aend - auth));
        if (!rb || rb == auth + 1)
            return -EINVAL;
        for (const char *q = auth + 1; q < rb; q++)
            if (!isxdigit((unsigned char)*q) && *q != ':' && *q != '.' && *q != '%')
                return -EINVAL;
        int r = copy_n(u->host, sizeof u->host, auth + 1, (size_t)(rb - auth - 1));
        if (r < 0)
            return r;
        u->ipv6 = 1;
        hend = rb + 1;
        if (hend < aend) {
            if (*hend != ':')
                return -EINVAL;
            portp = hend + 1;
        }
    } else {
        const char *colon = memchr(auth, ':', (size_t)(aend - auth));
        hend = colon ? colon : aend;
        if (hend == auth)
            return -EINVAL;
        for (const char *q = auth; q < hend; q++)
            if (!isalnum((unsigned char)*q) && *q != '-' && *q != '.' && *q != '_')
                return -EINVAL;
        int r = copy_n(u->host, sizeof u->host, auth, (size_t)(hend - auth));
        if (r < 0)
            return r;
        if (colon)
            portp = colon + 1;
    }
    u->port = u->secure ? 322 : 554;
    if (portp && portp < aend) {
        unsigned long port = 0;
        for (const char *q = portp; q < aend; q++) {
            if (!isdigit((unsigned char)*q))
                return -EINVAL;
            port = port * 10 + (unsigned long)(*q - '0');
            if (port > 65535)
                return -EINVAL;
        }
        if (port == 0)
            return -EINVAL;
        u->port = (uint16_t)port;
    }

    const char *path = aend;
    size_t plen = strcspn(path, "#");
    size_t o = 0;
    if (plen == 0 || path[0] != '/')
        u->path[o++] = '/';
    if (o + plen + 1 > sizeof u->path)
        return -ENAMETOOLONG;
    memcpy(u->path + o, path, plen);
    u->path[o + plen] = '\0';
    return 0;
}

int ms_rtsp_url_format(const ms_rtsp_url_t *u, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s://%s%s%s:%u%s", u->secure ? "rtsps" : "rtsp", u->ipv6 ? "[" : "",
                     u->host, u->ipv6 ? "]" : "", (unsigned)u->port, u->path);
    if (n < 0 || (size_t)n >= cap)
        return -ENAMETOOLONG;
    return n;
}

/* RFC 3986 section 3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) */
static size_t scheme_len(const char *s)
{
    if (!isalpha((unsigned char)s[0]))
        return 0;
    size_t i = 1;
    while (isalnum((unsigned char)s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.')
        i++;
    return s[i] == ':' ? i : 0;
}

/* RFC 3986 section 5.2.4 remove_dot_segments, on path[0..len) into out.
 * out must have room for len + 1 bytes. Returns the output length. */
static size_t remove_dots(const char *in, size_t len, char *out)
{
    size_t o = 0, i = 0;
    while (i < len) {
        const char *p = in + i;
        size_t rest = len - i;
        if (rest >= 3 && memcmp(p, "../", 3) == 0) {
            i += 3;
        } else if (rest >= 2 && memcmp(p, "./", 2) == 0) {
            i += 2;
        } else if (rest >= 3 && memcmp(p, "/./", 3) == 0) {
            i += 2;
        } else if (rest == 2 && memcmp(p, "/.", 2) == 0) {
            out[o++] = '/';
            i += 2;
        } else if ((rest >= 4 && memcmp(p, "/../", 4) == 0) ||
                   (rest == 3 && memcmp(p, "/..", 3) == 0)) {
            i += 3;
            while (o > 0 && out[o - 1] != '/')
                o--;
            if (o > 0)
                o--;
            if (rest == 3)
                out[o++] = '/';
        } else if ((rest == 1 && p[0] == '.') || (rest == 2 && memcmp(p, "..", 2) == 0)) {
            i = len;
        } else {
            /* move the first segment (with its leading '/') to the output */
            size_t n = 1;
            while (n < rest && p[n] != '/')
                n++;
            if (p[0] != '/') {
                n = 0;
                while (n < rest && p[n] != '/')
                    n++;
            }
            memcpy(out + o, p, n);
            o += n;
            i += n;
        }
    }
    out[o] = '\0';
    return o;
}

/* Appends path (dot segments removed) + tail to out at *o. */
static int emit_path(char *out, size_t cap, size_t *o, const char *path, size_t plen,
                     const char *tail)
{
    char tmp[MS_RTSP_URL_MAX + 1];
    if (plen > MS_RTSP_URL_MAX)
        return -ENAMETOOLONG;
    size_t n = remove_dots(path, plen, tmp);
    size_t tl = strlen(tail);
    if (*o + n + tl + 1 > cap)
        return -ENAMETOOLONG;
    memcpy(out + *o, tmp, n);
    memcpy(out + *o + n, tail, tl);
    *o += n + tl;
    out[*o] = '\0';
    return 0;
}

int ms_rtsp_url_resolve(const char *base, const char *ref, char *out, size_t cap)
{
    if (!base || !ref || cap == 0)
        return -EINVAL;
    /* strip surrounding whitespace of the attribute value */
    while (*ref == ' ' || *ref == '\t')
        ref++;
    size_t rlen = strcspn(ref, "#");
    while (rlen > 0 && (ref[rlen - 1] == ' ' || ref[rlen - 1] == '\t'))
        rlen--;
    if (rlen > MS_RTSP_URL_MAX)
        return -ENAMETOOLONG;
    char r[MS_RTSP_URL_MAX + 1];
    memcpy(r, ref, rlen);
    r[rlen] = '\0';
    for (size_t i = 0; i < rlen; i++)
        if (bad_url_char((unsigned char)r[i]))
            return -EINVAL;

    if (scheme_len(r) > 0) {
        if (rlen + 1 > cap)
            return -ENAMETOOLONG;
        memcpy(out, r, rlen + 1);
        return (int)rlen;
    }

    /* split the base: scheme "://" authority path [?query] */
    size_t sl = scheme_len(base);
    if (sl == 0 || strncmp(base + sl, "://", 3) != 0)
        return -EINVAL;
    size_t blen = strcspn(base, "#");
    const char *auth = base + sl + 3;
    size_t alen = strcspn(auth, "/?#");
    const char *bpath = auth + alen;
    size_t bplen = strcspn(bpath, "?#");
    const char *bquery = bpath + bplen;
    size_t bqlen = (size_t)(base + blen - bquery);

    if (rlen == 0 || strcmp(r, "*") == 0) {
        if (blen + 1 > cap)
            return -ENAMETOOLONG;
        memcpy(out, base, blen);
        out[blen] = '\0';
        return (int)blen;
    }

    size_t o = 0;
    if (r[0] == '/' && r[1] == '/') {
        /* network-path reference: scheme ":" ref */
        const char *rauth = r + 2;
        size_t ral = strcspn(rauth, "/?");
        if (sl + 1 + 2 + ral + 1 > cap)
            return -ENAMETOOLONG;
        memcpy(out, base, sl + 1);
        o = sl + 1;
        memcpy(out + o, r, 2 + ral);
        o += 2 + ral;
        out[o] = '\0';
        const char *rp = rauth + ral;
        size_t rpl = strcspn(rp, "?");
        int e = emit_path(out, cap, &o, rp, rpl, rp + rpl);
        return e < 0 ? e : (int)o;
    }

    size_t head = (size_t)(bpath - base);
    if (head + 1 > cap)
        return -ENAMETOOLONG;
    memcpy(out, base, head);
    o = head;
    out[o] = '\0';

    if (r[0] == '/') {
        size_t rpl = strcspn(r, "?");
        int e = emit_path(out, cap, &o, r, rpl, r + rpl);
        return e < 0 ? e : (int)o;
    }
    if (r[0] == '?') {
        char tail[MS_RTSP_URL_MAX + 1];
        memcpy(tail, r, rlen + 1);
        int e = emit_path(out, cap, &o, bplen ? bpath : "/", bplen ? bplen : 1, tail);
        return e < 0 ? e : (int)o;
    }
    (void)bqlen;
    /* relative path: base path as a directory + ref */
    char merged[MS_RTSP_URL_MAX + 1];
    size_t rpl = strcspn(r, "?");
    size_t m = 0;
    if (bplen == 0) {
        merged[m++] = '/';
    } else {
        if (bplen > MS_RTSP_URL_MAX - 1)
            return -ENAMETOOLONG;
        memcpy(merged, bpath, bplen);
        m = bplen;
        if (merged[m - 1] != '/')
            merged[m++] = '/';
    }
    if (m + rpl > MS_RTSP_URL_MAX)
        return -ENAMETOOLONG;
    memcpy(merged + m, r, rpl);
    m += rpl;
    int e = emit_path(out, cap, &o, merged, m, r + rpl);
    return e < 0 ? e : (int)o;
}
