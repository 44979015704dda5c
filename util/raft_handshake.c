/* The raft connection handshake codec (see raft_handshake.h for the wire
 * format). HMAC-SHA256 is RFC 2104's HMAC over SHA-256 (OpenSSL's HMAC());
 * MACs are compared in constant time (CRYPTO_memcmp). */
#include "util/raft_handshake.h"

#include <assert.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#define VERSION     1
#define T_HELLO     1
#define T_CHALLENGE 2
#define T_PROOF     3

static const char LABEL_ACCEPT[] = "MSRH1 accept";   /* + its NUL */
static const char LABEL_CONNECT[] = "MSRH1 connect"; /* + its NUL */

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static void put_head(uint8_t *p, uint8_t type)
{
    memcpy(p, "MSRH", 4);
    p[4] = VERSION;
    p[5] = type;
    p[6] = 0;
    p[7] = 0;
}

/* Magic, version and type; byte 7 (and 6 unless HELLO) must be zero. */
static int check_head(const uint8_t *p, uint8_t type)
{
    if (memcmp(p, "MSRH", 4) != 0 || p[4] != VERSION || p[5] != type || p[7] != 0 ||
        (type != T_HELLO && p[6] != 0))
        return MS_RHS_EMALFORMED;
    return 0;
}

/* HMAC-SHA256(key, label NUL || a || b || c) (RFC 2104). 0 or -EIO. */
static int mac3(const uint8_t key[MS_RHS_KEY_LEN], const char *label, size_t label_len,
                const uint8_t *a, size_t alen, const uint8_t *b, size_t blen, const uint8_t *c,
                size_t clen, uint8_t out[MS_RHS_MAC_LEN])
{
    int ok = 0;
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    if (ctx) {
        OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0),
                               OSSL_PARAM_construct_end()};
        size_t n = 0;
        ok = EVP_MAC_init(ctx, key, MS_RHS_KEY_LEN, params) == 1 &&
             EVP_MAC_update(ctx, (const unsigned char *)label, label_len) == 1 &&
             (!alen || EVP_MAC_update(ctx, a, alen) == 1) &&
             (!blen || EVP_MAC_update(ctx, b, blen) == 1) &&
             (!clen || EVP_MAC_update(ctx, c, clen) == 1) &&
             EVP_MAC_final(ctx, out, &n, MS_RHS_MAC_LEN) == 1 && n == MS_RHS_MAC_LEN;
    }
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    return ok ? 0 : -EIO;
}

static int addr_ok(const uint8_t *s, size_t n)
{
    if (n < 1 || n > MS_RHS_ADDR_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x21 || s[i] > 0x7e)
            return 0;
    return 1;
}

int ms_rhs_connect_start(ms_rhs_t *hs, const uint8_t key[MS_RHS_KEY_LEN], uint64_t self_id,
                         const char *self_address, uint64_t peer_id,
                         const uint8_t nonce[MS_RHS_NONCE_LEN], uint8_t out[MS_RHS_HELLO_MAX],
                         size_t *out_len)
{
    assert(hs && key && nonce && out && out_len);
    memset(hs, 0, sizeof *hs);
    size_t alen = self_address ? strnlen(self_address, MS_RHS_ADDR_MAX + 1) : 0;
    if (!self_id || !peer_id || !addr_ok((const uint8_t *)self_address, alen))
        return -EINVAL;
    memcpy(hs->key, key, MS_RHS_KEY_LEN);
    hs->self_id = self_id;
    hs->peer_id = peer_id;
    uint8_t *p = hs->hello;
    put_head(p, T_HELLO);
    p[6] = (uint8_t)alen;
    put64(p + 8, self_id);
    put64(p + 16, peer_id);
    memcpy(p + 24, nonce, MS_RHS_NONCE_LEN);
    memcpy(p + MS_RHS_HELLO_HDR, self_address, alen);
    hs->hello_len = MS_RHS_HELLO_HDR + alen;
    memcpy(out, hs->hello, hs->hello_len);
    *out_len = hs->hello_len;
    hs->stage = 1;
    return 0;
}

int ms_rhs_connect_finish(ms_rhs_t *hs, const uint8_t *in, size_t len,
                          uint8_t out[MS_RHS_PROOF_LEN])
{
    assert(hs && out);
    if (hs->stage != 1)
        return -EINVAL;
    if (!in || len != MS_RHS_CHALLENGE_LEN || check_head(in, T_CHALLENGE) < 0)
        return MS_RHS_EMALFORMED;
    uint8_t want[MS_RHS_MAC_LEN];
    if (mac3(hs->key, LABEL_ACCEPT, sizeof LABEL_ACCEPT, hs->hello, hs->hello_len, in, 56, NULL, 0,
             want) < 0)
        return -EIO;
    /* the MAC first: a wrong id from a non-member reads as "bad MAC" */
    if (CRYPTO_memcmp(want, in + 56, MS_RHS_MAC_LEN) != 0)
        return MS_RHS_EBADMAC;
    if (get64(in + 8) != hs->peer_id || get64(in + 16) != hs->self_id)
        return MS_RHS_EWRONGID;
    memcpy(hs->challenge, in, MS_RHS_CHALLENGE_LEN);
    put_head(out, T_PROOF);
    if (mac3(hs->key, LABEL_CONNECT, sizeof LABEL_CONNECT, hs->hello, hs->hello_len, in,
             MS_RHS_CHALLENGE_LEN, out, 8, out + 8) < 0)
        return -EIO;
    hs->stage = 2;
    return 0;
}

int ms_rhs_hello_addr_len(const uint8_t *in, size_t len)
{
    if (!in || len != MS_RHS_HELLO_HDR || check_head(in, T_HELLO) < 0 || in[6] == 0)
        return MS_RHS_EMALFORMED;
    return in[6];
}

int ms_rhs_accept_hello(ms_rhs_t *hs, const uint8_t key[MS_RHS_KEY_LEN], uint64_t self_id,
                        const uint8_t *in, size_t len, const uint8_t nonce[MS_RHS_NONCE_LEN],
                        uint8_t out[MS_RHS_CHALLENGE_LEN])
{
    assert(hs && key && nonce && out);
    memset(hs, 0, sizeof *hs);
    if (!self_id)
        return -EINVAL;
    if (!in || len < MS_RHS_HELLO_HDR)
        return MS_RHS_EMALFORMED;
    int alen = ms_rhs_hello_addr_len(in, MS_RHS_HELLO_HDR);
    if (alen < 0 || len != MS_RHS_HELLO_HDR + (size_t)alen ||
        !addr_ok(in + MS_RHS_HELLO_HDR, (size_t)alen))
        return MS_RHS_EMALFORMED;
    uint64_t from = get64(in + 8), to = get64(in + 16);
    if (to != self_id || from == 0 || from == self_id)
        return MS_RHS_EWRONGID;
    memcpy(hs->key, key, MS_RHS_KEY_LEN);
    hs->self_id = self_id;
    hs->peer_id = from;
    memcpy(hs->hello, in, len);
    hs->hello_len = len;
    memcpy(hs->peer_address, in + MS_RHS_HELLO_HDR, (size_t)alen);
    hs->peer_address[alen] = '\0';
    uint8_t *p = hs->challenge;
    put_head(p, T_CHALLENGE);
    put64(p + 8, self_id);
    put64(p + 16, from);
    memcpy(p + 24, nonce, MS_RHS_NONCE_LEN);
    if (mac3(hs->key, LABEL_ACCEPT, sizeof LABEL_ACCEPT, hs->hello, hs->hello_len, p, 56, NULL, 0,
             p + 56) < 0)
        return -EIO;
    memcpy(out, p, MS_RHS_CHALLENGE_LEN);
    hs->stage = 1;
    return 0;
}

int ms_rhs_accept_finish(ms_rhs_t *hs, const uint8_t *in, size_t len)
{
    assert(hs);
    if (hs->stage != 1)
        return -EINVAL;
    if (!in || len != MS_RHS_PROOF_LEN || check_head(in, T_PROOF) < 0)
        return MS_RHS_EMALFORMED;
    uint8_t want[MS_RHS_MAC_LEN];
    if (mac3(hs->key, LABEL_CONNECT, sizeof LABEL_CONNECT, hs->hello, hs->hello_len, hs->challenge,
             MS_RHS_CHALLENGE_LEN, in, 8, want) < 0)
        return -EIO;
    if (CRYPTO_memcmp(want, in + 8, MS_RHS_MAC_LEN) != 0)
        return MS_RHS_EBADMAC;
    hs->stage = 2;
    return 0;
}

const char *ms_rhs_strerror(int err)
{
    switch (err) {
    case 0:
        return "ok";
    case MS_RHS_EMALFORMED:
        return "malformed";
    case MS_RHS_EBADMAC:
        return "bad MAC";
    case MS_RHS_EWRONGID:
        return "wrong id";
    case -ETIMEDOUT:
        return "timeout";
    case -ECONNRESET:
        return "closed by the peer";
    case -EINVAL:
        return "invalid use";
    default:
        return "error";
    }
}

void ms_rhs_clear(ms_rhs_t *hs)
{
    if (hs)
        OPENSSL_cleanse(hs, sizeof *hs);
}
