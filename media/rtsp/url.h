/* RTSP URLs (RFC 2326 section 3.2, RFC 3986 syntax) and resolution of
 * per-track control URLs (RFC 2326 appendix C.1.1, RFC 3986 section 5.2).
 *
 * Pure code: no I/O, no allocation; callable from any thread. */
#ifndef MS_MEDIA_RTSP_URL_H
#define MS_MEDIA_RTSP_URL_H

#include <stddef.h>
#include <stdint.h>

#define MS_RTSP_URL_MAX 2048

typedef struct {
    int secure;                 /* rtsps:// */
    int has_userinfo;           /* user[:pass]@ was present */
    char user[128];             /* percent-decoded */
    char pass[128];             /* percent-decoded */
    char host[256];             /* without the brackets of an IPv6 literal */
    int ipv6;                   /* host was a [..] literal */
    uint16_t port;              /* 554 (rtsp) / 322 (rtsps) when absent */
    char path[MS_RTSP_URL_MAX]; /* path + "?query", "/" when empty; fragment dropped */
} ms_rtsp_url_t;

/* Parses an absolute rtsp:// or rtsps:// URL into *out (written by the
 * callee). Returns 0, -EINVAL (syntax, other scheme, bad port) or
 * -ENAMETOOLONG (a component exceeds its buffer). */
int ms_rtsp_url_parse(const char *s, ms_rtsp_url_t *out);

/* Formats u without credentials ("rtsp://host:port/path"; brackets around an
 * IPv6 host). Returns the length, or -ENAMETOOLONG when cap is too small. */
int ms_rtsp_url_format(const ms_rtsp_url_t *u, char *out, size_t cap);

/* Resolves a control attribute (RFC 2326 C.1.1) against base (the
 * Content-Base, else Content-Location, else request URL, chosen by the
 * caller):
 *  - an absolute URL ("scheme:...") is used as is;
 *  - "*" or "" names the base itself;
 *  - "//authority..." and "/abs/path" follow RFC 3986 section 5.2;
 *  - a relative path is appended to the base treated as a directory (a
 *    missing trailing "/" is added, the base's query is dropped), because
 *    cameras commonly send a Content-Base (or none) without the trailing
 *    slash and mean it as the aggregate URL; dot segments are removed
 *    (RFC 3986 section 5.2.4).
 * Returns the length written (NUL-terminated), or -EINVAL/-ENAMETOOLONG. */
int ms_rtsp_url_resolve(const char *base, const char *ref, char *out, size_t cap);

/* Percent-decodes src[0..len) into out (NUL-terminated). Returns the decoded
 * length or -EINVAL (bad escape, embedded NUL) / -ENAMETOOLONG. */
int ms_rtsp_url_pct_decode(const char *src, size_t len, char *out, size_t cap);

#endif
