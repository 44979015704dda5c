/* IP addresses, CIDR blocks and forwarding headers (util/ipaddr.h).
 * RFC 4291 (IPv6 addressing, IPv4-mapped addresses section 2.5.5.2),
 * RFC 4632 (CIDR notation), RFC 7239 (Forwarded header). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util/ipaddr.h"

static const uint8_t v4_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

int ms_ip_parse_n(const char *s, size_t len, ms_ip_t *out)
{
    char tmp[MS_IP_STRLEN];
    if (!s || len == 0 || len >= sizeof tmp)
        return -EINVAL;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    struct in_addr a4;
    struct in6_addr a6;
    if (memchr(tmp, ':', len)) {
        if (inet_pton(AF_INET6, tmp, &a6) != 1)
            return -EINVAL;
        memcpy(out->a, &a6, 16);
        return 0;
    }
    if (inet_pton(AF_INET, tmp, &a4) != 1)
        return -EINVAL;
    memcpy(out->a, v4_prefix, 12);
    memcpy(out->a + 12, &a4, 4);
    return 0;
}

int ms_ip_parse(const char *s, ms_ip_t *out)
{
    return s ? ms_ip_parse_n(s, strlen(s), out) : -EINVAL;
}

int ms_ip_from_sockaddr(const struct sockaddr *sa, ms_ip_t *out)
{
    if (!sa)
        return -EAFNOSUPPORT;
    if (sa->sa_family == AF_INET) {
        struct sockaddr_in sin;
        memcpy(&sin, sa, sizeof sin);
        memcpy(out->a, v4_prefix, 12);
        memcpy(out->a + 12, &sin.sin_addr, 4);
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 sin6;
        memcpy(&sin6, sa, sizeof sin6);
        memcpy(out->a, &sin6.sin6_addr, 16);
        return 0;
    }
    return -EAFNOSUPPORT;
}

int ms_ip_is_v4(const ms_ip_t *ip)
{
    return memcmp(ip->a, v4_prefix, 12) == 0;
}

char *ms_ip_format(const ms_ip_t *ip, char *out, size_t cap)
{
    if (!cap)
        return out;
    const char *r = ms_ip_is_v4(ip) ? inet_ntop(AF_INET, ip->a + 12, out, (socklen_t)cap)
                                    : inet_ntop(AF_INET6, ip->a, out, (socklen_t)cap);
    if (!r)
        out[0] = '\0';
    return out;
}

int ms_ip_equal(const ms_ip_t *x, const ms_ip_t *y)
{
    return memcmp(x->a, y->a, 16) == 0;
}

static void clear_host_bits(ms_ip_t *ip, int bits)
{
    for (int i = 0; i < 16; i++) {
        int keep = bits - i * 8;
        if (keep >= 8)
            continue;
        if (keep <= 0)
            ip->a[i] = 0;
        else
            ip->a[i] = (uint8_t)(ip->a[i] & (0xff << (8 - keep)));
    }
}

#define CIDR_BAD_ADDR "must be an IPv4 or IPv6 address or CIDR (e.g. 192.0.2.0/24)"
#define CIDR_BAD_LEN  "bad prefix length after /"

static int cidr_fail(const char **why, const char *msg)
{
    if (why)
        *why = msg;
    return -EINVAL;
}

int ms_cidr_parse_opt(const char *s, unsigned flags, ms_cidr_t *out, const char **why)
{
    if (!s)
        return cidr_fail(why, CIDR_BAD_ADDR);
    const char *slash = strchr(s, '/');
    size_t alen = slash ? (size_t)(slash - s) : strlen(s);
    if (ms_ip_parse_n(s, alen, &out->net) < 0)
        return cidr_fail(why, CIDR_BAD_ADDR);
    int v4 = memchr(s, ':', alen) == NULL;
    int max = v4 ? 32 : 128;
    int bits = max;
    if (!slash && (flags & MS_CIDR_NEED_PREFIX))
        return cidr_fail(why, "must be a CIDR block with a /prefix length (e.g. 192.0.2.0/24)");
    if (slash) {
        const char *p = slash + 1;
        if (!*p || strlen(p) > 3)
            return cidr_fail(why, CIDR_BAD_LEN);
        bits = 0;
        for (; *p; p++) {
            if (*p < '0' || *p > '9')
                return cidr_fail(why, CIDR_BAD_LEN);
            bits = bits * 10 + (*p - '0');
        }
        if (slash[1] == '0' && slash[2] && !(flags & MS_CIDR_LEADING_ZEROS))
            return cidr_fail(why, CIDR_BAD_LEN); /* no leading zeros */
        if (bits > max)
            return cidr_fail(why, v4 ? "IPv4 prefix length must be 0..32"
                                     : "IPv6 prefix length must be 0..128");
    }
    out->v4 = v4;
    out->bits = v4 ? 96 + bits : bits;
    clear_host_bits(&out->net, out->bits);
    return 0;
}

int ms_cidr_parse(const char *s, ms_cidr_t *out)
{
    return ms_cidr_parse_opt(s, 0, out, NULL);
}

int ms_cidr_match(const ms_cidr_t *c, const ms_ip_t *ip)
{
    ms_ip_t x = *ip;
    clear_host_bits(&x, c->bits);
    return memcmp(x.a, c->net.a, 16) == 0;
}

int ms_cidr_list_match(char *const *cidrs, size_t n, const ms_ip_t *ip)
{
    for (size_t i = 0; i < n; i++) {
        ms_cidr_t c;
        if (cidrs[i] && ms_cidr_parse(cidrs[i], &c) == 0 && ms_cidr_match(&c, ip))
            return 1;
    }
    return 0;
}

/* ---- forwarding headers ------------------------------------------------ */

#define MAX_HOPS 32

typedef struct {
    const char *p;
    size_t len; /* 0: an element without a usable node */
} hop_t;

typedef struct {
    hop_t h[MAX_HOPS];
    int n;
} hops_t;

static void hops_add(hops_t *hs, const char *p, size_t len)
{
    if (hs->n == MAX_HOPS) { /* keep the nearest MAX_HOPS */
        memmove(hs->h, hs->h + 1, sizeof(hop_t) * (MAX_HOPS - 1));
        hs->n--;
    }
    hs->h[hs->n].p = p;
    hs->h[hs->n].len = len;
    hs->n++;
}

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static void trim(const char **p, size_t *len)
{
    while (*len && is_ows(**p)) {
        (*p)++;
        (*len)--;
    }
    while (*len && is_ows((*p)[*len - 1]))
        (*len)--;
}

/* A node (RFC 7239 section 6): IPv4[:port], "[IPv6]"[:port]; X-Forwarded-For
 * may also hold a bare IPv6 address. Returns 0 or -EINVAL. */
static int parse_node(const char *p, size_t len, ms_ip_t *out)
{
    trim(&p, &len);
    if (len >= 2 && p[0] == '"' && p[len - 1] == '"') {
        p++;
        len -= 2;
    }
    if (!len)
        return -EINVAL;
    if (p[0] == '[') {
        const char *end = memchr(p, ']', len);
        if (!end)
            return -EINVAL;
        size_t rest = len - (size_t)(end + 1 - p);
        const char *r = end + 1;
        if (rest) {
            if (r[0] != ':' || rest < 2)
                return -EINVAL;
            for (size_t i = 1; i < rest; i++)
                if (r[i] < '0' || r[i] > '9')
                    return -EINVAL;
        }
        if (!memchr(p + 1, ':', (size_t)(end - p - 1)))
            return -EINVAL; /* brackets hold IPv6 only */
        return ms_ip_parse_n(p + 1, (size_t)(end - p - 1), out);
    }
    size_t colons = 0, last = 0;
    for (size_t i = 0; i < len; i++)
        if (p[i] == ':') {
            colons++;
            last = i;
        }
    if (colons == 1) { /* IPv4:port */
        if (last + 1 == len)
            return -EINVAL;
        for (size_t i = last + 1; i < len; i++)
            if (p[i] < '0' || p[i] > '9')
                return -EINVAL;
        if (memchr(p, ':', last))
            return -EINVAL;
        return ms_ip_parse_n(p, last, out) == 0 && ms_ip_is_v4(out) ? 0 : -EINVAL;
    }
    return ms_ip_parse_n(p, len, out);
}

/* Forwarded: elements split by ',', pairs by ';', "for" = token or
 * quoted-string (RFC 7239 section 4). A comma inside a quoted string does
 * not split. */
static void split_forwarded(const char *s, hops_t *hs)
{
    const char *elem = s;
    int inq = 0;
    for (const char *p = s;; p++) {
        if (*p == '"')
            inq = !inq;
        if (*p && (inq || *p != ','))
            continue;
        /* element [elem, p) */
        const char *found = NULL;
        size_t flen = 0;
        const char *pair = elem;
        int q2 = 0;
        for (const char *e = elem;; e++) {
            if (e < p && *e == '"')
                q2 = !q2;
            if (e < p && (q2 || *e != ';'))
                continue;
            const char *k = pair;
            size_t klen = (size_t)(e - pair);
            trim(&k, &klen);
            if (klen > 4 && strncasecmp(k, "for", 3) == 0) {
                const char *v = k + 3;
                size_t vlen = klen - 3;
                trim(&v, &vlen);
                if (vlen && v[0] == '=') {
                    found = v + 1;
                    flen = vlen - 1;
                }
            }
            if (e >= p)
                break;
            pair = e + 1;
        }
        hops_add(hs, found, found ? flen : 0);
        if (!*p)
            break;
        elem = p + 1;
    }
}

static void split_xff(const char *s, hops_t *hs)
{
    const char *start = s;
    for (const char *p = s;; p++) {
        if (*p && *p != ',')
            continue;
        hops_add(hs, start, (size_t)(p - start));
        if (!*p)
            break;
        start = p + 1;
    }
}

int ms_ip_forwarded_client(const ms_ip_t *peer, const char *xff, const char *forwarded,
                           int (*trusted)(const ms_ip_t *ip, void *ud), void *ud, ms_ip_t *out)
{
    *out = *peer;
    if (!trusted || !trusted(peer, ud))
        return 0;
    hops_t hs;
    hs.n = 0;
    if (forwarded && *forwarded)
        split_forwarded(forwarded, &hs);
    else if (xff && *xff)
        split_xff(xff, &hs);
    for (int i = hs.n - 1; i >= 0; i--) {
        ms_ip_t ip;
        if (!hs.h[i].len || parse_node(hs.h[i].p, hs.h[i].len, &ip) < 0)
            return 0; /* unusable element: the last believed address stands */
        *out = ip;
        if (!trusted(&ip, ud))
            return 0;
    }
    return 0;
}
