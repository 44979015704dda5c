/* Basic and Digest access authentication for RTSP (RFC 2617; RFC 2326
 * sections 12.5 and 12.44 reuse HTTP's). MD5 and randomness from OpenSSL. */
#include "media/rtsp/auth.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

/* ---- tokenizer for auth-params (RFC 2617 1.2, RFC 2616 2.2) ---- */

typedef struct {
    const char *p;
} lex_t;

static void skip_ws(lex_t *l)
{
    while (*l->p == ' ' || *l->p == '\t' || *l->p == '\r' || *l->p == '\n')
        l->p++;
}

static int is_tok(int c)
{
    return c > 0x20 && c < 0x7f && !strchr("()<>@,;:\\\"/[]?={}", c);
}

/* token68 / value tokens may contain '/' '=' etc. (base64 opaque values) */
static int is_valchar(int c)
{
    return c > 0x20 && c < 0x7f && c != ',' && c != '"';
}

static size_t read_token(lex_t *l, char *out, size_t cap)
{
    size_t n = 0;
    while (is_tok((unsigned char)*l->p)) {
        if (n + 1 < cap)
            out[n++] = *l->p;
        l->p++;
    }
    if (cap)
        out[n] = '\0';
    return n;
}

/* Reads a token or quoted-string value into out (truncation reported by
 * returning -ENAMETOOLONG). */
static int read_value(lex_t *l, char *out, size_t cap)
{
    size_t n = 0;
    int trunc = 0;
    if (*l->p == '"') {
        l->p++;
        while (*l->p && *l->p != '"') {
            if (*l->p == '\\' && l->p[1])
                l->p++;
            if (n + 1 < cap)
                out[n++] = *l->p;
            else
                trunc = 1;
            l->p++;
        }
        if (*l->p != '"')
            return -EINVAL;
        l->p++;
    } else {
        while (is_valchar((unsigned char)*l->p)) {
            if (n + 1 < cap)
                out[n++] = *l->p;
            else
                trunc = 1;
            l->p++;
        }
    }
    out[n] = '\0';
    return trunc ? -ENAMETOOLONG : 0;
}

static int has_list_token(const char *list, const char *tok)
{
    size_t tl = strlen(tok);
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == ',' || *p == '\t')
            p++;
        size_t n = strcspn(p, ", \t");
        if (n == tl && strncasecmp(p, tok, tl) == 0)
            return 1;
        p += n;
    }
    return 0;
}

static void copy_trunc(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

typedef struct {
    ms_auth_challenge_t ch;
    int usable;
    int seen_algo_bad;
} cand_t;

static void consider(ms_auth_challenge_t *best, cand_t *c, int *unsupported)
{
    if (c->ch.scheme == MS_AUTH_NONE)
        return;
    if (!c->usable || c->seen_algo_bad || (c->ch.scheme == MS_AUTH_DIGEST && !c->ch.nonce[0])) {
        *unsupported = 1;
        return;
    }
    if (c->ch.scheme > best->scheme)
        *best = c->ch;
}

int ms_auth_challenge_parse(ms_auth_challenge_t *best, const char *value)
{
    if (!value)
        return -EINVAL;
    lex_t l = {value};
    cand_t c;
    memset(&c, 0, sizeof c);
    int unsupported = 0;
    char tok[64], val[1024];
    for (int guard = 0; guard < 256; guard++) {
        skip_ws(&l);
        while (*l.p == ',') {
            l.p++;
            skip_ws(&l);
        }
        if (!*l.p)
            break;
        if (read_token(&l, tok, sizeof tok) == 0)
            return -EINVAL;
        skip_ws(&l);
        if (*l.p == '=' && c.ch.scheme != MS_AUTH_NONE + 0 && tok[0]) {
            l.p++;
            skip_ws(&l);
            int r = read_value(&l, val, sizeof val);
            if (r == -EINVAL)
                return r;
            if (!c.usable)
                continue;
            if (strcasecmp(tok, "realm") == 0) {
                copy_trunc(c.ch.realm, sizeof c.ch.realm, val);
            } else if (strcasecmp(tok, "nonce") == 0) {
                if (r < 0 || strlen(val) >= sizeof c.ch.nonce)
                    c.seen_algo_bad = 1;
                copy_trunc(c.ch.nonce, sizeof c.ch.nonce, val);
            } else if (strcasecmp(tok, "opaque") == 0) {
                if (r < 0 || strlen(val) >= sizeof c.ch.opaque)
                    c.seen_algo_bad = 1;
                copy_trunc(c.ch.opaque, sizeof c.ch.opaque, val);
            } else if (strcasecmp(tok, "algorithm") == 0) {
                if (strcasecmp(val, "MD5") != 0)
                    c.seen_algo_bad = 1;
            } else if (strcasecmp(tok, "qop") == 0) {
                c.ch.qop_auth = has_list_token(val, "auth");
            } else if (strcasecmp(tok, "stale") == 0) {
                c.ch.stale = strcasecmp(val, "true") == 0;
            }
            continue;
        }
        if (*l.p == '=') {
            /* a parameter before any scheme */
            return -EINVAL;
        }
        /* a new challenge starts with its scheme */
        consider(best, &c, &unsupported);
        memset(&c, 0, sizeof c);
        c.ch.scheme = MS_AUTH_BASIC; /* placeholder so params attach */
        if (strcasecmp(tok, "Digest") == 0) {
            c.ch.scheme = MS_AUTH_DIGEST;
            c.usable = 1;
        } else if (strcasecmp(tok, "Basic") == 0) {
            c.ch.scheme = MS_AUTH_BASIC;
            c.usable = 1;
        } else {
            c.usable = 0;
        }
    }
    consider(best, &c, &unsupported);
    if (best->scheme != MS_AUTH_NONE)
        return 0;
    return unsupported ? -ENOTSUP : -EINVAL;
}

/* ---- MD5 helpers ---- */

static int md5_hex(char out[33], int n, ...)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx)
        return -ENOMEM;
    int ok = EVP_DigestInit_ex(ctx, EVP_md5(), NULL);
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n && ok; i++) {
        const char *s = va_arg(ap, const char *);
        ok = EVP_DigestUpdate(ctx, s, strlen(s));
    }
    va_end(ap);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (ok)
        ok = EVP_DigestFinal_ex(ctx, md, &len);
    EVP_MD_CTX_free(ctx);
    if (!ok || len != 16)
        return -EIO;
    static const char hx[] = "0123456789abcdef";
    for (unsigned i = 0; i < 16; i++) {
        out[2 * i] = hx[md[i] >> 4];
        out[2 * i + 1] = hx[md[i] & 15];
    }
    out[32] = '\0';
    return 0;
}

int ms_auth_digest_response(const char *user, const char *realm, const char *pass,
                            const char *method, const char *uri, const char *nonce, const char *nc,
                            const char *cnonce, const char *qop, char out[33])
{
    char ha1[33], ha2[33];
    /* RFC 2617 3.2.2.2: A1 = username ":" realm ":" passwd */
    int r = md5_hex(ha1, 5, user, ":", realm, ":", pass);
    /* RFC 2617 3.2.2.3: A2 = Method ":" digest-uri-value */
    if (r == 0)
        r = md5_hex(ha2, 3, method, ":", uri);
    if (r < 0)
        return r;
    if (qop && *qop) /* 3.2.2.1: KD(H(A1), nonce:nc:cnonce:qop:H(A2)) */
        return md5_hex(out, 11, ha1, ":", nonce, ":", nc, ":", cnonce, ":", qop, ":", ha2);
    /* RFC 2069 compatibility: KD(H(A1), nonce:H(A2)) */
    return md5_hex(out, 5, ha1, ":", nonce, ":", ha2);
}

/* Appends s as a quoted-string (escaping '"' and '\\'). */
static int put_quoted(char *out, size_t cap, size_t *o, const char *s)
{
    if (*o + 1 >= cap)
        return -ENAMETOOLONG;
    out[(*o)++] = '"';
    for (; *s; s++) {
        if ((unsigned char)*s < 0x20)
            return -EINVAL;
        if (*s == '"' || *s == '\\') {
            if (*o + 1 >= cap)
                return -ENAMETOOLONG;
            out[(*o)++] = '\\';
        }
        if (*o + 1 >= cap)
            return -ENAMETOOLONG;
        out[(*o)++] = *s;
    }
    if (*o + 1 >= cap)
        return -ENAMETOOLONG;
    out[(*o)++] = '"';
    out[*o] = '\0';
    return 0;
}

static int put_str(char *out, size_t cap, size_t *o, const char *s)
{
    size_t n = strlen(s);
    if (*o + n + 1 > cap)
        return -ENAMETOOLONG;
    memcpy(out + *o, s, n + 1);
    *o += n;
    return 0;
}

int ms_auth_authorization(ms_auth_challenge_t *ch, const char *user, const char *pass,
                          const char *method, const char *uri, char *out, size_t cap)
{
    if (!user || !pass || !method || !uri || cap == 0)
        return -EINVAL;
    if (ch->scheme == MS_AUTH_BASIC) {
        /* RFC 2617 2: "Basic" base64(userid ":" password) */
        char plain[260];
        int n = snprintf(plain, sizeof plain, "%s:%s", user, pass);
        if (n < 0 || (size_t)n >= sizeof plain)
            return -ENAMETOOLONG;
        unsigned char b64[4 * (sizeof plain / 3 + 1) + 1];
        int bl = EVP_EncodeBlock(b64, (const unsigned char *)plain, n);
        if (bl < 0 || (size_t)bl + 7 > cap)
            return -ENAMETOOLONG;
        memcpy(out, "Basic ", 6);
        memcpy(out + 6, b64, (size_t)bl + 1);
        return bl + 6;
    }
    if (ch->scheme != MS_AUTH_DIGEST)
        return -EINVAL;
    char resp[33], nc[9] = "", cnonce[17] = "";
    if (ch->qop_auth) {
        ch->nc++;
        snprintf(nc, sizeof nc, "%08x", (unsigned)ch->nc);
        unsigned char rnd[8];
        if (RAND_bytes(rnd, sizeof rnd) != 1)
            return -EIO;
        for (int i = 0; i < 8; i++)
            snprintf(cnonce + 2 * i, 3, "%02x", rnd[i]);
    }
    int r = ms_auth_digest_response(user, ch->realm, pass, method, uri, ch->nonce, nc, cnonce,
                                    ch->qop_auth ? "auth" : NULL, resp);
    if (r < 0)
        return r;
    size_t o = 0;
    out[0] = '\0';
    r = put_str(out, cap, &o, "Digest username=");
    if (!r)
        r = put_quoted(out, cap, &o, user);
    if (!r)
        r = put_str(out, cap, &o, ", realm=");
    if (!r)
        r = put_quoted(out, cap, &o, ch->realm);
    if (!r)
        r = put_str(out, cap, &o, ", nonce=");
    if (!r)
        r = put_quoted(out, cap, &o, ch->nonce);
    if (!r)
        r = put_str(out, cap, &o, ", uri=");
    if (!r)
        r = put_quoted(out, cap, &o, uri);
    if (!r)
        r = put_str(out, cap, &o, ", response=");
    if (!r)
        r = put_quoted(out, cap, &o, resp);
    if (!r && ch->opaque[0]) {
        r = put_str(out, cap, &o, ", opaque=");
        if (!r)
            r = put_quoted(out, cap, &o, ch->opaque);
    }
    if (!r && ch->qop_auth) {
        r = put_str(out, cap, &o, ", qop=auth, nc=");
        if (!r)
            r = put_str(out, cap, &o, nc);
        if (!r)
            r = put_str(out, cap, &o, ", cnonce=");
        if (!r)
            r = put_quoted(out, cap, &o, cnonce);
    }
    return r < 0 ? r : (int)o;
}

/* ---- server side ---- */

static int sha256(const char *s, unsigned char out[32])
{
    unsigned int len = 0;
    if (EVP_Digest(s, strlen(s), out, &len, EVP_sha256(), NULL) != 1 || len != 32)
        return -EIO;
    return 0;
}

/* The part of an RTSP URI after "scheme://authority" (RFC 2326 3.2), or
 * the whole string when it has no scheme (an abs_path). */
static const char *uri_path(const char *u)
{
    const char *p = strstr(u, "://");
    if (!p || p == u || strcspn(u, ":/?#") != (size_t)(p - u))
        return u;
    p += 3;
    return p + strcspn(p, "/?#");
}

int ms_auth_digest_uri_match(const char *digest_uri, const char *request_uri)
{
    if (!digest_uri || !request_uri || !digest_uri[0] || !request_uri[0])
        return 0;
    return strcmp(uri_path(digest_uri), uri_path(request_uri)) == 0;
}

/* ---- nonce counts (RFC 2617 3.2.2) ---- */

typedef struct {
    char nonce[MS_AUTH_NONCE_MAX + 1];
    int64_t issued_s;
    int64_t last_nc; /* -1 = not used yet */
} nc_entry_t;

struct ms_auth_nc_table {
    pthread_mutex_t mu;
    size_t cap, n;
    int64_t watermark_s; /* nonces issued at or before this may have been forgotten */
    nc_entry_t e[];
};

ms_auth_nc_table_t *ms_auth_nc_new(size_t cap)
{
    if (cap == 0 || cap > 1u << 20)
        return NULL;
    ms_auth_nc_table_t *t = calloc(1, sizeof *t + cap * sizeof(nc_entry_t));
    if (!t)
        return NULL;
    pthread_mutex_init(&t->mu, NULL);
    t->cap = cap;
    t->watermark_s = INT64_MIN;
    return t;
}

void ms_auth_nc_free(ms_auth_nc_table_t *t)
{
    if (!t)
        return;
    pthread_mutex_destroy(&t->mu);
    free(t);
}

int ms_auth_nc_use(ms_auth_nc_table_t *t, const char *nonce, int64_t issued_s, int64_t nc)
{
    size_t len = strlen(nonce);
    if (len == 0 || len > MS_AUTH_NONCE_MAX || nc < 0)
        return -EINVAL;
    int rc = 0;
    pthread_mutex_lock(&t->mu);
    nc_entry_t *e = NULL;
    for (size_t i = 0; i < t->n && !e; i++)
        if (t->e[i].issued_s == issued_s && strcmp(t->e[i].nonce, nonce) == 0)
            e = &t->e[i];
    if (e) {
        if (nc <= e->last_nc)
            rc = -EALREADY; /* replayed or reordered */
        else
            e->last_nc = nc;
    } else if (issued_s <= t->watermark_s) {
        rc = -ESTALE; /* its counts may have been forgotten */
    } else {
        if (t->n == t->cap) {
            /* forget the oldest nonce; every nonce as old is stale from now */
            size_t old = 0;
            for (size_t i = 1; i < t->n; i++)
                if (t->e[i].issued_s < t->e[old].issued_s)
                    old = i;
            if (t->e[old].issued_s > t->watermark_s)
                t->watermark_s = t->e[old].issued_s;
            t->e[old] = t->e[--t->n];
            if (issued_s <= t->watermark_s)
                rc = -ESTALE;
        }
        if (rc == 0) {
            e = &t->e[t->n++];
            memcpy(e->nonce, nonce, len + 1);
            e->issued_s = issued_s;
            e->last_nc = nc;
        }
    }
    pthread_mutex_unlock(&t->mu);
    return rc;
}

void ms_auth_nc_expire(ms_auth_nc_table_t *t, int64_t before_s)
{
    pthread_mutex_lock(&t->mu);
    if (before_s - 1 > t->watermark_s)
        t->watermark_s = before_s - 1;
    for (size_t i = 0; i < t->n;)
        if (t->e[i].issued_s < before_s)
            t->e[i] = t->e[--t->n];
        else
            i++;
    pthread_mutex_unlock(&t->mu);
}

int ms_auth_server_challenge(const char *realm, char *nonce, size_t nonce_cap, char *hdr,
                             size_t hdr_cap)
{
    if (nonce_cap < 33)
        return -ENAMETOOLONG;
    unsigned char rnd[16];
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        return -EIO;
    for (int i = 0; i < 16; i++)
        snprintf(nonce + 2 * i, 3, "%02x", rnd[i]);
    size_t o = 0;
    hdr[0] = '\0';
    int r = put_str(hdr, hdr_cap, &o, "Digest realm=");
    if (!r)
        r = put_quoted(hdr, hdr_cap, &o, realm);
    if (!r)
        r = put_str(hdr, hdr_cap, &o, ", nonce=");
    if (!r)
        r = put_quoted(hdr, hdr_cap, &o, nonce);
    if (!r)
        r = put_str(hdr, hdr_cap, &o, ", algorithm=MD5, qop=\"auth\"");
    return r < 0 ? r : (int)o;
}

int ms_auth_credentials_parse(const char *value, ms_auth_credentials_t *c)
{
    memset(c, 0, sizeof *c);
    if (!value)
        return -EINVAL;
    lex_t l = {value};
    skip_ws(&l);
    char tok[32], val[1024];
    if (read_token(&l, tok, sizeof tok) == 0)
        return -EINVAL;
    skip_ws(&l);
    if (strcasecmp(tok, "Basic") == 0) {
        size_t n = strcspn(l.p, " \t\r\n");
        unsigned char dec[(sizeof c->username + sizeof c->password) + 4];
        if (n == 0 || n % 4 != 0 || n / 4 * 3 > sizeof dec - 1)
            return -EINVAL;
        int dl = EVP_DecodeBlock(dec, (const unsigned char *)l.p, (int)n);
        if (dl < 0)
            return -EINVAL;
        /* EVP_DecodeBlock counts padding bytes as output */
        if (n >= 1 && l.p[n - 1] == '=')
            dl--;
        if (n >= 2 && l.p[n - 2] == '=')
            dl--;
        dec[dl] = '\0';
        if (memchr(dec, '\0', (size_t)dl))
            return -EINVAL;
        char *colon = strchr((char *)dec, ':');
        if (!colon)
            return -EINVAL;
        *colon = '\0';
        if (strlen((char *)dec) >= sizeof c->username || strlen(colon + 1) >= sizeof c->password)
            return -EINVAL;
        strcpy(c->username, (char *)dec);
        strcpy(c->password, colon + 1);
        c->scheme = MS_AUTH_BASIC;
        return 0;
    }
    if (strcasecmp(tok, "Digest") != 0)
        return -ENOTSUP;
    c->scheme = MS_AUTH_DIGEST;
    for (int guard = 0; guard < 64; guard++) {
        skip_ws(&l);
        while (*l.p == ',') {
            l.p++;
            skip_ws(&l);
        }
        if (!*l.p)
            break;
        if (read_token(&l, tok, sizeof tok) == 0)
            return -EINVAL;
        skip_ws(&l);
        if (*l.p != '=')
            return -EINVAL;
        l.p++;
        skip_ws(&l);
        if (read_value(&l, val, sizeof val) < 0)
            return -EINVAL;
        struct {
            const char *name;
            char *dst;
            size_t cap;
        } f[] = {
            {"username", c->username, sizeof c->username},
            {"realm", c->realm, sizeof c->realm},
            {"nonce", c->nonce, sizeof c->nonce},
            {"uri", c->uri, sizeof c->uri},
            {"response", c->response, sizeof c->response},
            {"qop", c->qop, sizeof c->qop},
            {"nc", c->nc, sizeof c->nc},
            {"cnonce", c->cnonce, sizeof c->cnonce},
            {"algorithm", c->algorithm, sizeof c->algorithm},
        };
        for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
            if (strcasecmp(tok, f[i].name) == 0) {
                if (strlen(val) >= f[i].cap)
                    return -EINVAL;
                strcpy(f[i].dst, val);
            }
        }
    }
    if (!c->username[0] || !c->nonce[0] || !c->uri[0] || strlen(c->response) != 32)
        return -EINVAL;
    if (c->algorithm[0] && strcasecmp(c->algorithm, "MD5") != 0)
        return -ENOTSUP;
    if (c->qop[0] && (strcasecmp(c->qop, "auth") != 0 || !c->nc[0] || !c->cnonce[0]))
        return -ENOTSUP;
    return 0;
}

int ms_auth_verify(const ms_auth_credentials_t *c, const char *method, const char *realm,
                   const char *nonce, const char *pass, int allow_basic)
{
    if (!pass)
        return -EACCES;
    if (c->scheme == MS_AUTH_BASIC) {
        /* An empty user name is no user (RFC 7617 section 2 needs a
         * user-id). The passwords are compared through their SHA-256 so
         * that neither their content nor their length shows in the time. */
        unsigned char da[32], db[32];
        if (!allow_basic || !c->username[0] || sha256(c->password, da) < 0 || sha256(pass, db) < 0)
            return -EACCES;
        return CRYPTO_memcmp(da, db, sizeof da) == 0 ? 0 : -EACCES;
    }
    if (c->scheme != MS_AUTH_DIGEST || strcmp(c->realm, realm) != 0 || strcmp(c->nonce, nonce) != 0)
        return -EACCES;
    char expect[33];
    if (ms_auth_digest_response(c->username, realm, pass, method, c->uri, nonce, c->nc, c->cnonce,
                                c->qop[0] ? c->qop : NULL, expect) < 0)
        return -EACCES;
    char got[33];
    for (int i = 0; i < 32; i++) {
        char ch = c->response[i];
        got[i] = (ch >= 'A' && ch <= 'F') ? (char)(ch - 'A' + 'a') : ch;
    }
    got[32] = '\0';
    return CRYPTO_memcmp(expect, got, 32) == 0 ? 0 : -EACCES;
}
