/* Admin authentication for /api/v1 (and /metrics when metrics_auth):
 * HTTP Basic (RFC 7617) against admin.user/admin.password, or
 * "Authorization: Bearer KEY" (RFC 6750 section 2.1) with KEY in admin.keys
 * or a login token from POST /api/v1/login (util/logintoken.h: stateless,
 * HMAC-SHA256 under the MS_KDF_LOGIN key of the cluster secret, so any node
 * with the same secret accepts it).
 *
 * When no admin credential is configured at all (no password and no keys)
 * the API answers only clients on loopback, without credentials; any other
 * client gets 403. Secrets are compared in constant time. */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "api/api.h"
#include "node/auth_guard.h"
#include "util/clock.h"
#include "util/kdf.h"
#include "util/log.h"
#include "util/logintoken.h"

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

static const char *admin_user(const ms_node_cfg_t *cfg)
{
    return cfg->admin_user[0] ? cfg->admin_user : "admin";
}

/* Verifies a login token against the node's secret and the current admin
 * user and password: 0, -EKEYEXPIRED (authentic but expired) or -EACCES. */
static int login_token_check(const ms_node_cfg_t *cfg, const char *tok)
{
    uint8_t key[MS_KDF_KEY_LEN];
    if (!cfg->secret[0] || ms_kdf_derive(cfg->secret, MS_KDF_LOGIN, key) < 0)
        return -EACCES;
    int rc = ms_login_token_verify(tok, key, admin_user(cfg), cfg->admin_password,
                                   ms_wall_us() / 1000000, NULL);
    OPENSSL_cleanse(key, sizeof key);
    return rc == 0 ? 0 : rc == MS_LOGIN_EEXPIRED ? -EKEYEXPIRED : -EACCES;
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
        /* Evaluate both comparisons, no short-circuit on the user name. */
        int ok = ms_auth_secret_eq(user, admin_user(cfg));
        ok &= ms_auth_secret_eq(pass, cfg->admin_password);
        OPENSSL_cleanse(pass, sizeof(pass));
        return ok ? 0 : -EACCES;
    }
    char tok[512];
    if (ms_auth_parse_bearer(authz, tok, sizeof(tok)) == 0) {
        int ok = 0;
        for (size_t i = 0; have_keys && i < cfg->napi_keys; i++)
            ok |= cfg->api_keys[i] && ms_auth_secret_eq(tok, cfg->api_keys[i]);
        /* Login tokens exist only where a password can make them. */
        int lrc = !ok && have_password ? login_token_check(cfg, tok) : -EACCES;
        OPENSSL_cleanse(tok, sizeof(tok));
        return ok || lrc == 0 ? 0 : lrc;
    }
    return -EACCES;
}

/* ---- POST /api/v1/login ------------------------------------------------- */

/* A required string member of at most cap - 1 bytes, or a 400 reply. */
static int body_string(ms_req_t *r, json_t *j, const char *key, size_t cap, const char **out,
                       enum MHD_Result *ret)
{
    json_t *v = json_object_get(j, key);
    char msg[96];
    if (!v) {
        snprintf(msg, sizeof msg, "%s is required", key);
        *ret = ms_api_reply_error(r, 400, msg, key, NULL);
        return -EINVAL;
    }
    if (!json_is_string(v) || json_string_length(v) >= cap ||
        strlen(json_string_value(v)) != json_string_length(v)) {
        snprintf(msg, sizeof msg, "%s must be a string of at most %zu bytes without NUL", key,
                 cap - 1);
        *ret = ms_api_reply_error(r, 400, msg, key, NULL);
        return -EINVAL;
    }
    *out = json_string_value(v);
    return 0;
}

/* Parses {"user","password"[,"ttl_s"]}; 0 or -EINVAL after a 400 reply
 * (field names the member). *j is the parsed body (the caller frees it). */
static int login_body(ms_req_t *r, json_t **j, const char **user, const char **pass, int64_t *ttl_s,
                      enum MHD_Result *ret)
{
    json_error_t e;
    *j = r->body && r->body_len ? json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &e)
                                : NULL;
    if (!*j) {
        char msg[256];
        if (r->body && r->body_len)
            snprintf(msg, sizeof msg, "malformed JSON body: %s (line %d, column %d)", e.text,
                     e.line, e.column);
        else
            snprintf(msg, sizeof msg, "the body must be {\"user\": ..., \"password\": ...}");
        *ret = ms_api_reply_error(r, 400, msg, NULL, NULL);
        return -EINVAL;
    }
    if (!json_is_object(*j)) {
        *ret = ms_api_reply_error(r, 400, "the body must be a JSON object", NULL, NULL);
        return -EINVAL;
    }
    const char *k;
    json_t *v;
    json_object_foreach(*j, k, v)
    {
        (void)v;
        if (strcmp(k, "user") != 0 && strcmp(k, "password") != 0 && strcmp(k, "ttl_s") != 0) {
            *ret = ms_api_reply_error(r, 400, "unknown key", k, NULL);
            return -EINVAL;
        }
    }
    const ms_node_cfg_t *cfg = ms_api_cfg();
    if (body_string(r, *j, "user", sizeof cfg->admin_user, user, ret) < 0 ||
        body_string(r, *j, "password", sizeof cfg->admin_password, pass, ret) < 0)
        return -EINVAL;
    *ttl_s = MS_LOGIN_TTL_DEFAULT_S;
    v = json_object_get(*j, "ttl_s");
    if (v) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 ||
            json_integer_value(v) > MS_LOGIN_TTL_MAX_S) {
            char msg[96];
            snprintf(msg, sizeof msg, "ttl_s must be an integer between 1 and %d",
                     MS_LOGIN_TTL_MAX_S);
            *ret = ms_api_reply_error(r, 400, msg, "ttl_s", NULL);
            return -EINVAL;
        }
        *ttl_s = json_integer_value(v);
    }
    return 0;
}

/* Wipes the password in the parsed body before it is freed. */
static void wipe_password(json_t *j)
{
    json_t *v = j ? json_object_get(j, "password") : NULL;
    if (v && json_is_string(v))
        OPENSSL_cleanse((char *)(uintptr_t)json_string_value(v), json_string_length(v));
}

enum MHD_Result ms_api_login(ms_req_t *r, const ms_ip_t *ip)
{
    const ms_node_cfg_t *cfg = ms_api_cfg();
    enum MHD_Result ret = MHD_NO;
    int64_t left = ip ? ms_auth_guard_check(ip, "http") : 0;
    if (left > 0) {
        char secs[24];
        snprintf(secs, sizeof secs, "%lld", (long long)((left + 999) / 1000));
        const char *const hdrs[] = {"Retry-After", secs, NULL};
        return ms_api_reply_error(
            r, 429, "too many failed authentication attempts from this address", NULL, hdrs);
    }
    json_t *j = NULL;
    const char *user = NULL, *pass = NULL;
    int64_t ttl_s = 0;
    if (login_body(r, &j, &user, &pass, &ttl_s, &ret) < 0)
        goto out;
    if (!cfg->admin_password[0]) {
        ret = ms_api_reply_error(r, 403,
                                 "admin.password is not set on this node: there is nothing to "
                                 "log in with (use admin.keys as Bearer keys)",
                                 NULL, NULL);
        goto out;
    }
    /* Both comparisons, in constant time, no short-circuit on the user. */
    int ok = ms_auth_secret_eq(user, admin_user(cfg));
    ok &= ms_auth_secret_eq(pass, cfg->admin_password);
    if (!ok) {
        if (ip)
            ms_auth_guard_failed(ip, "http", "login");
        static const char *const hdrs[] = {"WWW-Authenticate", "Bearer realm=\"mediaserver\"",
                                           "Cache-Control", "no-store", NULL};
        ret = ms_api_reply_error(r, 401, "wrong user or password", NULL, hdrs);
        goto out;
    }
    if (ip)
        ms_auth_guard_ok(ip);
    uint8_t key[MS_KDF_KEY_LEN], id[MS_LOGIN_ID_LEN];
    char tok[MS_LOGIN_TOKEN_MAX];
    /* Issued: the current second; expires: rounded up, so that a token
     * verified against the truncated clock lives at least ttl_s. */
    int64_t wall = ms_wall_us();
    int64_t now = wall / 1000000, expires = (wall + 999999) / 1000000 + ttl_s;
    int rc = cfg->secret[0] ? ms_kdf_derive(cfg->secret, MS_KDF_LOGIN, key) : -EINVAL;
    if (rc == 0)
        rc = RAND_bytes(id, sizeof id) == 1 ? 0 : -EIO;
    if (rc == 0)
        rc = ms_login_token_make(key, admin_user(cfg), cfg->admin_password, now, expires, id, tok,
                                 sizeof tok);
    OPENSSL_cleanse(key, sizeof key);
    if (rc < 0) {
        ret = ms_api_reply_error(r, 500, "cannot make a token", NULL, NULL);
        goto out;
    }
    MS_INFO(MS_API_CTX, "admin login from %s: token valid %lld s", r->peer, (long long)ttl_s);
    static const char *const hdrs[] = {"Cache-Control", "no-store", NULL};
    ret = ms_api_reply_json(
        r, 200, json_pack("{s:s,s:I}", "token", tok, "expires", (json_int_t)expires), hdrs);
    OPENSSL_cleanse(tok, sizeof tok);
out:
    wipe_password(j);
    json_decref(j);
    return ret;
}
