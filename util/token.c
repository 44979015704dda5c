/* Playback tokens (util/token.h): HMAC-SHA256 (RFC 2104, FIPS 180-4) over a
 * fixed binary payload, base64url without padding (RFC 4648 section 5). */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "util/ipaddr.h"
#include "util/kdf.h"
#include "util/token.h"

#define TOKEN_VERSION 1
#define F_ARCHIVE     0x01u
#define F_IP          0x02u
#define TAG_LEN       16
#define BASE_LEN      (1 + 1 + 8 + 8 + 8 + TAG_LEN) /* 42 */
#define MAC_LEN       32
#define RAW_MAX       (BASE_LEN + 16 + MAC_LEN)

static const char domain[] = "ms-token-v1"; /* MAC input prefix, NUL included */
static void put_be64(uint8_t *p, int64_t sv)
{
    uint64_t v = (uint64_t)sv;
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static int64_t get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return (int64_t)v;
}

static void stream_tag(const char *uid, uint8_t tag[TAG_LEN])
{
    uint8_t md[SHA256_DIGEST_LENGTH];
    SHA256((const uint8_t *)uid, strlen(uid), md);
    memcpy(tag, md, TAG_LEN);
}

/* The token key: HKDF of the cluster secret with its own label (util/kdf.h),
 * so a token MAC says nothing about the keys of the other purposes. The
 * derivation is cached per thread for the last secret seen (a node has
 * one), keyed by the secret's SHA-256. */
static int token_key(const char *secret, uint8_t key[MS_KDF_KEY_LEN])
{
    static _Thread_local struct {
        int ok;
        uint8_t secret_md[SHA256_DIGEST_LENGTH];
        uint8_t key[MS_KDF_KEY_LEN];
    } cache;
    uint8_t md[SHA256_DIGEST_LENGTH];
    SHA256((const uint8_t *)secret, strlen(secret), md);
    if (!cache.ok || CRYPTO_memcmp(md, cache.secret_md, sizeof md) != 0) {
        cache.ok = 0;
        if (ms_kdf_derive(secret, MS_KDF_TOKEN, cache.key) < 0)
            return -EINVAL;
        memcpy(cache.secret_md, md, sizeof md);
        cache.ok = 1;
    }
    memcpy(key, cache.key, MS_KDF_KEY_LEN);
    return 0;
}

static int mac(const char *secret, const uint8_t *payload, size_t len, uint8_t out[MAC_LEN])
{
    uint8_t key[MS_KDF_KEY_LEN];
    if (token_key(secret, key) < 0)
        return -EINVAL;
    uint8_t msg[sizeof domain + RAW_MAX];
    memcpy(msg, domain, sizeof domain);
    memcpy(msg + sizeof domain, payload, len);
    unsigned int olen = 0;
    if (!HMAC(EVP_sha256(), key, (int)sizeof key, msg, sizeof domain + len, out, &olen) ||
        olen != MAC_LEN)
        return -EINVAL;
    return 0;
}

int ms_token_make(const char *secret, const char *uid, ms_token_mode_t mode, int64_t expires,
                  int64_t from, int64_t to, const char *client_ip, char *out, size_t cap)
{
    if (!secret || !*secret || !uid || !*uid || !out || expires < 0)
        return -EINVAL;
    if (mode != MS_TOKEN_LIVE && mode != MS_TOKEN_ARCHIVE)
        return -EINVAL;
    if (mode == MS_TOKEN_ARCHIVE && !(from >= 0 && from < to))
        return -EINVAL;
    if (mode == MS_TOKEN_LIVE)
        from = to = 0;
    uint8_t raw[RAW_MAX];
    size_t n = 0;
    raw[n++] = TOKEN_VERSION;
    uint8_t flags = mode == MS_TOKEN_ARCHIVE ? F_ARCHIVE : 0;
    ms_ip_t ip;
    int has_ip = client_ip && *client_ip;
    if (has_ip) {
        if (ms_ip_parse(client_ip, &ip) < 0)
            return -EINVAL;
        flags |= F_IP;
    }
    raw[n++] = flags;
    put_be64(raw + n, expires);
    n += 8;
    put_be64(raw + n, from);
    n += 8;
    put_be64(raw + n, to);
    n += 8;
    stream_tag(uid, raw + n);
    n += TAG_LEN;
    if (has_ip) {
        memcpy(raw + n, ip.a, 16);
        n += 16;
    }
    if (mac(secret, raw, n, raw + n) < 0)
        return -EINVAL;
    n += MAC_LEN;
    return ms_b64url_encode(raw, n, out, cap);
}

static int fail(int code, char *reason, size_t cap, const char *msg)
{
    if (reason && cap)
        snprintf(reason, cap, "%s", msg);
    return code;
}

/* Decodes and checks the layout (not the MAC). Returns the raw length or -1. */
static int decode_raw(const char *token, uint8_t raw[RAW_MAX])
{
    if (!token)
        return -1;
    size_t len = strnlen(token, MS_TOKEN_MAX);
    if (len >= MS_TOKEN_MAX)
        return -1;
    int n = ms_b64url_decode(token, len, raw, RAW_MAX);
    if (n < BASE_LEN + MAC_LEN || raw[0] != TOKEN_VERSION || (raw[1] & ~(F_ARCHIVE | F_IP)))
        return -1;
    size_t want = BASE_LEN + ((raw[1] & F_IP) ? 16u : 0u) + MAC_LEN;
    return (size_t)n == want ? n : -1;
}

int ms_token_expires(const char *token, int64_t *expires)
{
    uint8_t raw[RAW_MAX];
    if (decode_raw(token, raw) < 0)
        return -EINVAL;
    *expires = get_be64(raw + 2);
    return 0;
}

int ms_token_window(const char *token, int64_t *from, int64_t *to)
{
    uint8_t raw[RAW_MAX];
    if (decode_raw(token, raw) < 0)
        return -EINVAL;
    *from = get_be64(raw + 10);
    *to = get_be64(raw + 18);
    return 0;
}

int ms_token_verify(const char *token, const char *secret, const char *uid, ms_token_mode_t mode,
                    int64_t now, const char *client_ip, int64_t at_time, char *reason,
                    size_t reason_cap)
{
    uint8_t raw[RAW_MAX], want[MAC_LEN];
    int n = decode_raw(token, raw);
    if (n < 0)
        return fail(MS_TOKEN_ETAMPERED, reason, reason_cap, "tampered token (bad format)");
    size_t plen = (size_t)n - MAC_LEN;
    if (!secret || !*secret || mac(secret, raw, plen, want) < 0 ||
        CRYPTO_memcmp(want, raw + plen, MAC_LEN) != 0)
        return fail(MS_TOKEN_ETAMPERED, reason, reason_cap, "tampered token (bad signature)");
    uint8_t tag[TAG_LEN];
    stream_tag(uid ? uid : "", tag);
    if (memcmp(tag, raw + 26, TAG_LEN) != 0)
        return fail(MS_TOKEN_ESTREAM, reason, reason_cap, "token is for another stream");
    ms_token_mode_t tmode = (raw[1] & F_ARCHIVE) ? MS_TOKEN_ARCHIVE : MS_TOKEN_LIVE;
    if (tmode != mode)
        return fail(MS_TOKEN_EMODE, reason, reason_cap,
                    tmode == MS_TOKEN_LIVE ? "live token used for archive"
                                           : "archive token used for live");
    int64_t expires = get_be64(raw + 2);
    if (expires != 0 && now >= expires)
        return fail(MS_TOKEN_EEXPIRED, reason, reason_cap, "token expired");
    if (raw[1] & F_IP) {
        ms_ip_t ip;
        if (!client_ip || ms_ip_parse(client_ip, &ip) < 0 || memcmp(ip.a, raw + BASE_LEN, 16))
            return fail(MS_TOKEN_EIP, reason, reason_cap, "token is bound to another address");
    }
    if (tmode == MS_TOKEN_ARCHIVE) {
        int64_t from = get_be64(raw + 10), to = get_be64(raw + 18);
        if (at_time < from || at_time >= to)
            return fail(MS_TOKEN_EWINDOW, reason, reason_cap, "outside the token's archive window");
    }
    if (reason && reason_cap)
        reason[0] = '\0';
    return 0;
}
