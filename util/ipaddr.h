/* IP addresses, CIDR blocks and forwarding headers, for playback access
 * control (protected mode whitelists, trusted proxies, IP-bound tokens).
 * Pure: no I/O, no globals.
 *
 * Every address is held as 16 bytes: IPv6 as is (RFC 4291 section 2.2),
 * IPv4 as an IPv4-mapped IPv6 address ::ffff:a.b.c.d (RFC 4291 section
 * 2.5.5.2), so an IPv4 client seen on a dual-stack socket and the same client
 * seen on an IPv4 socket compare equal. An IPv4 CIDR "a.b.c.d/n" becomes
 * ::ffff:a.b.c.d/(96+n): it matches IPv4 clients (plain or mapped) only;
 * "::/0" matches everything.
 *
 * Threads: any; every function only touches its arguments. */
#ifndef MS_UTIL_IPADDR_H
#define MS_UTIL_IPADDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct {
    uint8_t a[16];
} ms_ip_t;

typedef struct {
    ms_ip_t net; /* host bits cleared */
    int bits;    /* 0..128 (an IPv4 /n is stored as 96 + n) */
    int v4;      /* 1 when written as an IPv4 block ("a.b.c.d[/n]") */
} ms_cidr_t;

#define MS_IP_STRLEN 46 /* INET6_ADDRSTRLEN */

/* Parses a literal IPv4 ("192.0.2.1") or IPv6 ("2001:db8::1",
 * "::ffff:192.0.2.1") address, without brackets, port or zone.
 * Returns 0 or -EINVAL. */
int ms_ip_parse(const char *s, ms_ip_t *out);
/* Same for s[0..len). */
int ms_ip_parse_n(const char *s, size_t len, ms_ip_t *out);
/* From a socket address (AF_INET or AF_INET6). Returns 0 or -EAFNOSUPPORT. */
int ms_ip_from_sockaddr(const struct sockaddr *sa, ms_ip_t *out);
/* 1 when ip is IPv4 (mapped). */
int ms_ip_is_v4(const ms_ip_t *ip);
/* Text form: dotted quad for IPv4, RFC 5952 for IPv6. Returns out. */
char *ms_ip_format(const ms_ip_t *ip, char *out, size_t cap);
int ms_ip_equal(const ms_ip_t *x, const ms_ip_t *y);

/* "a.b.c.d/n" (n 0..32), "v6/n" (n 0..128) or a bare address (/32, /128).
 * Set host bits are accepted and cleared. Returns 0 or -EINVAL. */
int ms_cidr_parse(const char *s, ms_cidr_t *out);

/* Flags of ms_cidr_parse_opt. */
enum {
    MS_CIDR_NEED_PREFIX = 1,   /* reject a bare address: "/n" is required */
    MS_CIDR_LEADING_ZEROS = 2, /* accept a prefix length with leading zeros ("/08") */
};
/* ms_cidr_parse with flags (0: exactly ms_cidr_parse). On -EINVAL, *why (when
 * why is not NULL) is set to a static English message saying what is wrong
 * (an address that is not IPv4/IPv6, a bad prefix length, a prefix length
 * out of range); out may then hold garbage. */
int ms_cidr_parse_opt(const char *s, unsigned flags, ms_cidr_t *out, const char **why);
int ms_cidr_match(const ms_cidr_t *c, const ms_ip_t *ip);
/* 1 when ip is inside any of the n CIDR strings (unparsable entries never
 * match), else 0. */
int ms_cidr_list_match(char *const *cidrs, size_t n, const ms_ip_t *ip);

/* Resolves the client address of a request that came from TCP peer `peer`
 * (RFC 7239 section 7.4 / de-facto X-Forwarded-For):
 *  - when peer is not trusted (trusted(peer, ud) == 0), the client is peer and
 *    the headers are ignored (anyone can send them);
 *  - otherwise the forwarding chain (Forwarded "for=" values, RFC 7239
 *    section 4 and 6, when that header is present, else X-Forwarded-For) is
 *    walked from the nearest hop (rightmost) outwards, and the client is the
 *    first address that is not a trusted proxy (or the farthest one when
 *    every hop is trusted);
 *  - an element that is not an address ("unknown", obfuscated identifiers,
 *    garbage) ends the walk: the client is then the last address believed
 *    (the proxy that forwarded the unusable element).
 * Addresses may carry a port ("192.0.2.1:80", "[2001:db8::1]:80").
 * xff/forwarded may be NULL. Returns 0 (always yields an address). */
int ms_ip_forwarded_client(const ms_ip_t *peer, const char *xff, const char *forwarded,
                           int (*trusted)(const ms_ip_t *ip, void *ud), void *ud, ms_ip_t *out);

#endif
