/* Playback tokens for private streams and share links.
 *
 * A token is base64url without padding (RFC 4648 section 5) of
 *   payload = version(1) | flags(1) | expires(8) | from(8) | to(8)
 *             | stream tag(16) [| client ip(16)]
 *   mac     = HMAC-SHA256(K, "ms-token-v1" NUL | payload)   (RFC 2104)
 *   K       = ms_kdf_derive(secret, MS_KDF_TOKEN) (util/kdf.h, HKDF)
 * all integers big-endian. flags: bit 0 archive mode (else live), bit 1 an
 * IP binding follows. expires 0 = no expiry (public share link). from/to:
 * the archive window [from, to) (0 for live). The stream tag is the first
 * 16 bytes of SHA-256(uid), so a token names its stream without carrying
 * the uid; the MAC covers everything, so changing any byte (or rotating the
 * node's secret) invalidates the token. The MAC is compared in constant
 * time (CRYPTO_memcmp).
 *
 * Pure (no I/O, no clock: the caller passes now); fuzzed by
 * fuzz/fuzz_token.c. Threads: any. */
#ifndef MS_UTIL_TOKEN_H
#define MS_UTIL_TOKEN_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "util/encoding.h" /* ms_b64url_encode, ms_b64url_decode */

typedef enum { MS_TOKEN_LIVE = 0, MS_TOKEN_ARCHIVE = 1 } ms_token_mode_t;

/* Verification failures (negative errno values, distinct). */
#define MS_TOKEN_ETAMPERED (-EBADMSG)       /* bad format, version or MAC */
#define MS_TOKEN_EEXPIRED  (-EKEYEXPIRED)   /* now >= expires */
#define MS_TOKEN_ESTREAM   (-EXDEV)         /* made for another stream */
#define MS_TOKEN_EIP       (-EADDRNOTAVAIL) /* bound to another client address */
#define MS_TOKEN_EMODE     (-EOPNOTSUPP)    /* live token for archive or back */
#define MS_TOKEN_EWINDOW   (-ERANGE)        /* archive time outside [from, to) */

/* The largest UTC second an archive `from` may name: what every archive
 * route accepts (HTTP archive-FROM-DUR.*, RTSP ?from=), so share links and
 * archive tokens outside [1, MS_ARCHIVE_FROM_MAX] are refused at creation. */
#define MS_ARCHIVE_FROM_MAX 99999999999LL

#define MS_TOKEN_MAX 160 /* longest token text, with its NUL */

/* Makes a token. secret: non-empty; uid: the stream uid; mode: live or
 * archive (archive needs from < to); expires: UTC seconds, 0 = never;
 * client_ip: NULL/"" or a literal IPv4/IPv6 address the token is bound to.
 * Writes the NUL-terminated text into out. Returns its length, -EINVAL for a
 * bad argument, -ENOSPC when cap is too small (MS_TOKEN_MAX always fits). */
int ms_token_make(const char *secret, const char *uid, ms_token_mode_t mode, int64_t expires,
                  int64_t from, int64_t to, const char *client_ip, char *out, size_t cap);

/* Verifies token for stream uid, requested mode, time now, the request's
 * client address (text, may be NULL when unknown) and, for archive, the
 * archive time asked for (at_time). Checks, in order: format and MAC
 * (tampered), stream, mode, expiry, client address, archive window.
 * Returns 0 or one of MS_TOKEN_E*; reason (may be NULL) gets a short
 * human-readable cause. */
int ms_token_verify(const char *token, const char *secret, const char *uid, ms_token_mode_t mode,
                    int64_t now, const char *client_ip, int64_t at_time, char *reason,
                    size_t reason_cap);

/* The expiry written in a token, without checking the MAC: use only after
 * ms_token_verify succeeded. Returns 0 or -EINVAL. */
int ms_token_expires(const char *token, int64_t *expires);

/* The archive window [from, to) (UTC seconds) written in a token, without
 * checking the MAC: use only after ms_token_verify succeeded (or to learn
 * which time to verify an archive token at). Live tokens give 0, 0.
 * Returns 0 or -EINVAL. */
int ms_token_window(const char *token, int64_t *from, int64_t *to);

#endif
