/* Admin login tokens: see logintoken.h. */
#include "util/logintoken.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "util/token.h"

#define VERSION  1
#define MAC_LEN  32
#define BODY_LEN (1 + 8 + 8 + MS_LOGIN_ID_LEN)
#define RAW_LEN  (BODY_LEN + MAC_LEN)
#define CONTEXT  "ms-login-v1"

static void put64(uint8_t *p, int64_t v)
{
    uint64_t u = (uint64_t)v;
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)u;
        u >>= 8;
    }
}

static int64_t get64(const uint8_t *p)
{
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
        u = (u << 8) | p[i];
    return (int64_t)u;
}

/* mac = HMAC-SHA256(key, CONTEXT NUL | body | SHA-256(user) | SHA-256(password)).
 * Returns 0 or -EIO. */
static int mac_of(const uint8_t key[MS_KDF_KEY_LEN], const uint8_t body[BODY_LEN], const char *user,
                  const char *password, uint8_t mac[MAC_LEN])
{
    uint8_t msg[sizeof(CONTEXT) + BODY_LEN + 2 * SHA256_DIGEST_LENGTH];
    size_t n = 0;
    memcpy(msg, CONTEXT, sizeof(CONTEXT)); /* with its NUL */
    n += sizeof(CONTEXT);
    memcpy(msg + n, body, BODY_LEN);
    n += BODY_LEN;
    SHA256((const unsigned char *)user, strlen(user), msg + n);
    n += SHA256_DIGEST_LENGTH;
    SHA256((const unsigned char *)password, strlen(password), msg + n);
    n += SHA256_DIGEST_LENGTH;
    unsigned int len = 0;
    int ok = HMAC(EVP_sha256(), key, MS_KDF_KEY_LEN, msg, n, mac, &len) != NULL && len == MAC_LEN;
    OPENSSL_cleanse(msg, sizeof msg);
    return ok ? 0 : -EIO;
}

int ms_login_token_make(const uint8_t key[MS_KDF_KEY_LEN], const char *user, const char *password,
                        int64_t issued, int64_t expires, const uint8_t id[MS_LOGIN_ID_LEN],
                        char *out, size_t cap)
{
    if (!key || !user || !password || !id || !out || issued < 0 || expires <= issued)
        return -EINVAL;
    if (cap < MS_LOGIN_TOKEN_MAX)
        return -ENOSPC;
    uint8_t raw[RAW_LEN];
    raw[0] = VERSION;
    put64(raw + 1, issued);
    put64(raw + 9, expires);
    memcpy(raw + 17, id, MS_LOGIN_ID_LEN);
    int rc = mac_of(key, raw, user, password, raw + BODY_LEN);
    if (rc == 0)
        rc = ms_b64url_encode(raw, sizeof raw, out, cap);
    OPENSSL_cleanse(raw, sizeof raw);
    return rc;
}

int ms_login_token_verify(const char *token, const uint8_t key[MS_KDF_KEY_LEN], const char *user,
                          const char *password, int64_t now, int64_t *expires)
{
    if (!token || !key || !user || !password)
        return -EINVAL;
    size_t len = strnlen(token, MS_LOGIN_TOKEN_MAX);
    uint8_t raw[RAW_LEN + 1];
    if (len >= MS_LOGIN_TOKEN_MAX || ms_b64url_decode(token, len, raw, sizeof raw) != RAW_LEN ||
        raw[0] != VERSION)
        return MS_LOGIN_ETAMPERED;
    uint8_t mac[MAC_LEN];
    if (mac_of(key, raw, user, password, mac) < 0)
        return -EIO;
    int good = CRYPTO_memcmp(mac, raw + BODY_LEN, MAC_LEN) == 0;
    OPENSSL_cleanse(mac, sizeof mac);
    if (!good)
        return MS_LOGIN_ETAMPERED;
    int64_t iss = get64(raw + 1), exp = get64(raw + 9);
    if (iss < 0 || exp <= iss)
        return MS_LOGIN_ETAMPERED; /* never made by ms_login_token_make */
    if (expires)
        *expires = exp;
    return now >= exp ? MS_LOGIN_EEXPIRED : 0;
}
