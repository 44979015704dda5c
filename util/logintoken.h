/* Admin login tokens (POST /api/v1/login, docs/api.md "Authentication").
 *
 * A token is base64url without padding (RFC 4648 section 5) of
 *   version(1) = 1 | issued(8) | expires(8) | id(16) | mac(32)
 *   mac = HMAC-SHA256(key, "ms-login-v1" NUL | version | issued | expires
 *                          | id | SHA-256(user) | SHA-256(password))
 * (RFC 2104; integers big-endian, UTC seconds), 87 characters. key is the
 * cluster secret's MS_KDF_LOGIN key (util/kdf.h), so every node with the
 * same secret accepts the token without any shared state, and rotating
 * the secret invalidates every token. The user name and password are not
 * in the token but under the MAC: a token is valid only while admin.user
 * and admin.password are the ones it was made for. id is random (the
 * caller's), so two tokens made in the same second differ.
 *
 * Pure (no I/O, no clock: the caller passes now; no randomness: the caller
 * passes id); fuzzed by fuzz/fuzz_logintoken.c. Threads: any. */
#ifndef MS_UTIL_LOGINTOKEN_H
#define MS_UTIL_LOGINTOKEN_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "util/kdf.h"

#define MS_LOGIN_ID_LEN    16
#define MS_LOGIN_TOKEN_MAX 96 /* token text with its NUL (87 + 1 fit) */

/* Verification failures (negative errno values, distinct). */
#define MS_LOGIN_ETAMPERED                                                                         \
    (-EBADMSG)                           /* bad format, version or MAC (altered,                   \
                                            another key, user or password) */
#define MS_LOGIN_EEXPIRED (-EKEYEXPIRED) /* authentic, but now >= expires */

/* Makes a token for user/password (NUL-terminated; password may be ""),
 * valid from issued until expires (issued < expires), with the random id.
 * Writes the NUL-terminated text into out (cap bytes). Returns its length,
 * -EINVAL for a bad argument, -ENOSPC when cap < MS_LOGIN_TOKEN_MAX is too
 * small, -EIO when OpenSSL fails. */
int ms_login_token_make(const uint8_t key[MS_KDF_KEY_LEN], const char *user, const char *password,
                        int64_t issued, int64_t expires, const uint8_t id[MS_LOGIN_ID_LEN],
                        char *out, size_t cap);

/* Verifies token (NUL-terminated text) for user/password at time now.
 * Checks format, version and MAC first (in constant time), then expiry.
 * Returns 0, MS_LOGIN_ETAMPERED, MS_LOGIN_EEXPIRED or -EINVAL (NULL
 * argument). expires (may be NULL) gets the token's expiry when the MAC
 * is good (also when expired). */
int ms_login_token_verify(const char *token, const uint8_t key[MS_KDF_KEY_LEN], const char *user,
                          const char *password, int64_t now, int64_t *expires);

#endif
