/* Admin authentication for /api/v1 (and /metrics when metrics_auth):
 * HTTP Basic (RFC 7617) against admin.user/admin.password, or
 * "Authorization: Bearer KEY" (RFC 6750 section 2.1) with KEY in admin.keys.
 *
 * When no admin credential is configured at all (no password and no keys)
 * the API answers only clients on loopback, without credentials; any other
 * client gets 403. Secrets are compared in constant time. */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "api/api.h"

/* RFC 7235 section 2.1: the scheme is case-insensitive, followed by one or
 * more spaces. Returns the credentials part or NULL. */
static const char *after_scheme(const char *hdr, const char *scheme)
{
    size_t n = strlen(scheme);
    if (!hdr || strncasecmp(hdr, scheme, n) != 0 || hdr[n] != ' ')
        return NULL;
    hdr += n;
    while (*hdr == ' ')
        hdr++;
    return *hdr ? hdr : NULL;
}

int ms_auth_parse_basic(const char *hdr, char *user, size_t ucap, char *pass, size_t pcap)
{
    const char *b64 = after_scheme(hdr, "Basic");
    if (!b64 || ucap == 0 || pcap == 0)
        return -EINVAL;
    size_t len = strlen(b64);
    while (len > 0 && b64[len - 1] == ' ')
        len--;
    if (len == 0 || len % 4 != 0 || len > 1024)
        return -EINVAL;
    for (size_t i = 0; i < len; i++) {
        char c = b64[i];
        int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 c == '+' || c == '/' || (c == '=' && i >= len - 2);
        if (!ok)
            return -EINVAL;
    }
    if (b64[len - 2] == '=' && b64[len - 1] != '=')
        return -EINVAL;
    unsigned char dec[1024];
    int n = EVP_DecodeBlock(dec, (const unsigned char *)b64, (int)len);
    if (n < 0)
        return -EINVAL;
    /* EVP_DecodeBlock counts the padding as zero bytes. */
    if (b64[len - 1] == '=')
        n--;
    if (b64[len - 2] == '=')
        n--;
    if (n < 0)
        return -EINVAL;
    unsigned char *colon = memchr(dec, ':', (size_t)n);
    if (!colon || memchr(dec, '\0', (size_t)n))
        return -EINVAL;
    size_t ulen = (size_t)(colon - dec), plen = (size_t)n - ulen - 1;
    if (ulen + 1 > ucap || plen + 1 > pcap)
        return -EINVAL;
    memcpy(user, dec, ulen);
    user[ulen] = '\0';
    memcpy(pass, colon + 1, plen);
    pass[plen] = '\0';
    OPENSSL_cleanse(dec, sizeof(dec));
    return 0;
}

int ms_auth_parse_bearer(const char *hdr, char *tok, size_t cap)
{
    const char *t = after_scheme(hdr, "Bearer");
    if (!t)
        return -EINVAL;
    size_t len = strlen(t);
    while (len > 0 && t[len - 1] == ' ')
        len--;
    if (len == 0 || len + 1 > cap)
        return -EINVAL;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)t[i] <= 0x20 || (unsigned char)t[i] >= 0x7f)
            return -EINVAL;
    memcpy(tok, t, len);
    tok[len] = '\0';
    return 0;
}

int ms_auth_secret_eq(const char *a, const char *b)
{
    /* Hash both sides so that neither the content nor the length of the
     * secret leaks through timing; then compare the digests in constant time. */
    unsigned char da[SHA256_DIGEST_LENGTH], db[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)a, strlen(a), da);
    SHA256((const unsigned char *)b, strlen(b), db);
    return CRYPTO_memcmp(da, db, sizeof(da)) == 0;
}

int ms_auth_is_loopback(const struct sockaddr *sa)
{
    if (!sa)
        return 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
            return 1;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
            return in6->sin6_addr.s6_addr[12] == 127;
    }
    return 0;
}

int ms_auth_check(const ms_node_cfg_t *cfg, const char *authz, int peer_loopback)
{
    int have_password = cfg->admin_password[0] != '\0';
    int have_keys = cfg->napi_keys > 0;
    if (!have_password && !have_keys)
        return peer_loopback ? 0 : -EPERM;
    if (!authz)
        return -EACCES;
    char user[256], pass[512];
    if (have_password && ms_auth_parse_basic(authz, user, sizeof(user), pass, sizeof(pass)) == 0) {
        const char *want_user = cfg->admin_user[0] ? cfg->admin_user : "admin";
        /* Evaluate both comparisons, no short-circuit on the user name. */
        int ok = ms_auth_secret_eq(user, want_user);
        ok &= ms_auth_secret_eq(pass, cfg->admin_password);
        OPENSSL_cleanse(pass, sizeof(pass));
        return ok ? 0 : -EACCES;
    }
    char tok[512];
    if (have_keys && ms_auth_parse_bearer(authz, tok, sizeof(tok)) == 0) {
        int ok = 0;
        for (size_t i = 0; i < cfg->napi_keys; i++)
            ok |= cfg->api_keys[i] && ms_auth_secret_eq(tok, cfg->api_keys[i]);
        OPENSSL_cleanse(tok, sizeof(tok));
        return ok ? 0 : -EACCES;
    }
    return -EACCES;
}
