/* Join datagrams and node HTTP headers: encode, parse, authenticate; see
 * util/nodeauth.h. HMAC-SHA256 (RFC 2104, FIPS 180-4) through OpenSSL's
 * one-shot functions; MACs are compared in constant time. */
#include "util/nodeauth.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "util/encoding.h"

static const char HX[] = "0123456789abcdef";

static void hex_put(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = HX[b[i] >> 4];
        out[2 * i + 1] = HX[b[i] & 15];
    }
    out[2 * n] = '\0';
}

/* A lowercase hex digit (the canonical form written by hex_put), or -1. */
static int hexval(char c)
{
    return c >= 'A' && c <= 'F' ? -1 : ms_hexval((unsigned char)c);
}

/* Exactly 2n lowercase hex digits into n bytes. */
static int hex_get(const char *s, size_t len, uint8_t *out, size_t n)
{
    if (len != 2 * n)
        return -EBADMSG;
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -EBADMSG;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

/* Canonical decimal (no sign, no leading zero but "0"), <= max. */
static int dec_get(const char *s, size_t len, uint64_t max, uint64_t *out)
{
    if (len == 0 || len > 20 || (len > 1 && s[0] == '0'))
        return -EBADMSG;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EBADMSG;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (max - d) / 10)
            return -EBADMSG;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

static int fresh(int64_t ts, int64_t now_ms)
{
    return ts >= now_ms - MS_NAUTH_SKEW_MS && ts <= now_ms + MS_NAUTH_SKEW_MS;
}

static int hmac(const uint8_t key[MS_KDF_KEY_LEN], const void *msg, size_t n, uint8_t md[32])
{
    unsigned mdlen = 0;
    if (!HMAC(EVP_sha256(), key, MS_KDF_KEY_LEN, msg, n, md, &mdlen) || mdlen != 32)
        return -EIO;
    return 0;
}

/* ---- join datagrams ------------------------------------------------------ */

static const char *const OPS[] = {NULL, "join", "joining", "redirect"};

static int addr_ok(const char *a)
{
    size_t n = strlen(a);
    if (n == 0 || n > MS_JOIN_ADDR_MAX || strcmp(a, "-") == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)a[i] <= 0x20 || (unsigned char)a[i] >= 0x7f)
            return 0;
    return 1;
}

int ms_join_encode(const uint8_t key[MS_KDF_KEY_LEN], const ms_join_msg_t *m, char *out, size_t cap)
{
    assert(key && m && out);
    if (m->op < MS_JOIN_REQ || m->op > MS_JOIN_REDIRECT || m->from == 0 || m->ts_ms < 0)
        return -EINVAL;
    int want_addr = m->op != MS_JOIN_ACCEPT;
    if (want_addr ? !addr_ok(m->addr) : m->addr[0] != '\0')
        return -EINVAL;
    if ((m->op == MS_JOIN_REQ) != (m->to == 0))
        return -EINVAL;
    char nonce[33], reply[33] = "-";
    hex_put(m->nonce, MS_NAUTH_NONCE_LEN, nonce);
    if (m->op != MS_JOIN_REQ)
        hex_put(m->reply_to, MS_NAUTH_NONCE_LEN, reply);
    char buf[MS_JOIN_MAX + 1];
    int n = snprintf(buf, sizeof buf, "MSJ1 %s %" PRIu64 " %" PRIu64 " %" PRId64 " %s %s %s ",
                     OPS[m->op], m->from, m->to, m->ts_ms, nonce, reply, want_addr ? m->addr : "-");
    if (n < 0 || (size_t)n + 64 > MS_JOIN_MAX)
        return -EINVAL;
    uint8_t md[32];
    if (hmac(key, buf, (size_t)n, md) < 0)
        return -EIO;
    hex_put(md, 32, buf + n);
    size_t len = (size_t)n + 64;
    if (len + 1 > cap)
        return -ENOSPC;
    memcpy(out, buf, len + 1);
    return (int)len;
}

int ms_join_decode(const uint8_t key[MS_KDF_KEY_LEN], const void *buf, size_t n, int64_t now_ms,
                   ms_replay_t *replay, ms_join_msg_t *m)
{
    assert(key && m && (buf || n == 0));
    memset(m, 0, sizeof *m);
    if (n < 5 || n > MS_JOIN_MAX)
        return -EBADMSG;
    const char *s = buf;
    /* nine tokens separated by single spaces, printable ASCII */
    const char *tok[9];
    size_t tl[9], nt = 0, start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == ' ') {
            if (i == start || nt == 9)
                return -EBADMSG;
            tok[nt] = s + start;
            tl[nt++] = i - start;
            start = i + 1;
        } else if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e) {
            return -EBADMSG;
        }
    }
    if (nt != 9 || tl[0] != 4 || memcmp(tok[0], "MSJ1", 4) != 0)
        return -EBADMSG;
    int op = 0;
    for (int k = 1; k <= 3; k++)
        if (tl[1] == strlen(OPS[k]) && memcmp(tok[1], OPS[k], tl[1]) == 0)
            op = k;
    uint64_t ts = 0;
    uint8_t mac[32];
    if (!op || dec_get(tok[2], tl[2], UINT64_MAX, &m->from) < 0 || m->from == 0 ||
        dec_get(tok[3], tl[3], UINT64_MAX, &m->to) < 0 ||
        dec_get(tok[4], tl[4], INT64_MAX, &ts) < 0 ||
        hex_get(tok[5], tl[5], m->nonce, MS_NAUTH_NONCE_LEN) < 0 ||
        hex_get(tok[8], tl[8], mac, 32) < 0 || tl[7] > MS_JOIN_ADDR_MAX)
        return -EBADMSG;
    m->op = (ms_join_op_t)op;
    m->ts_ms = (int64_t)ts;
    int dash_reply = tl[6] == 1 && tok[6][0] == '-', dash_addr = tl[7] == 1 && tok[7][0] == '-';
    if (op == MS_JOIN_REQ
            ? (m->to != 0 || !dash_reply)
            : (m->to == 0 || hex_get(tok[6], tl[6], m->reply_to, MS_NAUTH_NONCE_LEN) < 0))
        return -EBADMSG;
    if ((op == MS_JOIN_ACCEPT) != dash_addr)
        return -EBADMSG;
    if (!dash_addr) {
        memcpy(m->addr, tok[7], tl[7]);
        m->addr[tl[7]] = '\0';
    }
    uint8_t md[32];
    if (hmac(key, s, (size_t)(tok[8] - s), md) < 0 || CRYPTO_memcmp(md, mac, 32) != 0)
        return -EACCES;
    if (!fresh(m->ts_ms, now_ms))
        return -ETIME;
    if (replay)
        return ms_replay_check_add(replay, m->nonce, m->ts_ms + MS_NAUTH_SKEW_MS, now_ms);
    return 0;
}

void ms_join_pending_add(ms_join_pending_t *p, const uint8_t nonce[MS_NAUTH_NONCE_LEN],
                         int64_t now_ms)
{
    assert(p && nonce);
    unsigned k = p->next % MS_JOIN_PENDING;
    memcpy(p->nonce[k], nonce, MS_NAUTH_NONCE_LEN);
    p->sent_ms[k] = now_ms > 0 ? now_ms : 1;
    p->next = (k + 1) % MS_JOIN_PENDING;
}

int ms_join_pending_take(ms_join_pending_t *p, const uint8_t reply_to[MS_NAUTH_NONCE_LEN],
                         int64_t now_ms)
{
    assert(p && reply_to);
    for (unsigned k = 0; k < MS_JOIN_PENDING; k++) {
        if (!p->sent_ms[k] || CRYPTO_memcmp(p->nonce[k], reply_to, MS_NAUTH_NONCE_LEN) != 0)
            continue;
        int ok = fresh(p->sent_ms[k], now_ms);
        p->sent_ms[k] = 0;
        return ok ? 0 : -ENOENT;
    }
    return -ENOENT;
}

/* ---- node HTTP header ---------------------------------------------------- */

static int http_mac(const uint8_t key[MS_KDF_KEY_LEN], uint64_t id, const char *method,
                    const char *path, const void *body, size_t blen, int64_t ts,
                    const char nonce_hex[33], uint8_t md[32])
{
    uint8_t bh[32];
    char bhex[65];
    if (!SHA256(blen ? body : (const void *)"", blen, bh))
        return -EIO;
    hex_put(bh, 32, bhex);
    char tail[200];
    int tn =
        snprintf(tail, sizeof tail, "\n%s\n%" PRIu64 "\n%" PRId64 "\n%s", bhex, id, ts, nonce_hex);
    assert(tn > 0 && (size_t)tn < sizeof tail);
    size_t ml = strlen(method), pl = strlen(path), n = 14 + ml + 1 + pl + (size_t)tn;
    char *msg = malloc(n);
    if (!msg)
        return -ENOMEM;
    memcpy(msg, "ms-cluster-v2\n", 14);
    memcpy(msg + 14, method, ml);
    msg[14 + ml] = '\n';
    memcpy(msg + 15 + ml, path, pl);
    memcpy(msg + 15 + ml + pl, tail, (size_t)tn);
    int r = hmac(key, msg, n, md);
    free(msg);
    return r;
}

static int line_ok(const char *s)
{
    return strchr(s, '\n') == NULL;
}

int ms_nauth_http_sign(const uint8_t key[MS_KDF_KEY_LEN], uint64_t node_id, const char *method,
                       const char *path, const void *body, size_t blen, int64_t now_ms,
                       const uint8_t nonce[MS_NAUTH_NONCE_LEN], char *out, size_t cap)
{
    assert(key && method && path && nonce && out && (body || blen == 0));
    if (node_id == 0 || now_ms < 0 || !line_ok(method) || !line_ok(path))
        return -EINVAL;
    char nh[33], mh[65];
    uint8_t md[32];
    hex_put(nonce, MS_NAUTH_NONCE_LEN, nh);
    int r = http_mac(key, node_id, method, path, body, blen, now_ms, nh, md);
    if (r < 0)
        return r;
    hex_put(md, 32, mh);
    int n = snprintf(out, cap, "v2.%" PRIu64 ".%" PRId64 ".%s.%s", node_id, now_ms, nh, mh);
    if (n < 0 || (size_t)n >= cap)
        return -ENOSPC;
    return n;
}

int ms_nauth_http_verify(const uint8_t key[MS_KDF_KEY_LEN], const char *hdr, const char *claimed_id,
                         const char *method, const char *path, const void *body, size_t blen,
                         int64_t now_ms, ms_replay_t *replay, uint64_t *node_id)
{
    assert(key && method && path && (body || blen == 0));
    if (node_id)
        *node_id = 0;
    if (!hdr || strncmp(hdr, "v2.", 3) != 0 || strlen(hdr) > MS_NAUTH_HDR_MAX)
        return -EBADMSG;
    const char *f[4];
    size_t fl[4];
    const char *p = hdr + 3;
    for (int k = 0; k < 4; k++) {
        const char *d = k < 3 ? strchr(p, '.') : p + strlen(p);
        if (!d)
            return -EBADMSG;
        f[k] = p;
        fl[k] = (size_t)(d - p);
        p = d + 1;
    }
    uint64_t id = 0, ts = 0;
    uint8_t nonce[MS_NAUTH_NONCE_LEN], mac[32], md[32];
    if (dec_get(f[0], fl[0], UINT64_MAX, &id) < 0 || id == 0 ||
        dec_get(f[1], fl[1], INT64_MAX, &ts) < 0 || hex_get(f[2], fl[2], nonce, sizeof nonce) < 0 ||
        hex_get(f[3], fl[3], mac, 32) < 0)
        return -EBADMSG;
    if (!line_ok(method) || !line_ok(path))
        return -EACCES;
    char nh[33];
    memcpy(nh, f[2], 32);
    nh[32] = '\0';
    int r = http_mac(key, id, method, path, body, blen, (int64_t)ts, nh, md);
    if (r < 0)
        return r;
    if (CRYPTO_memcmp(md, mac, 32) != 0)
        return -EACCES;
    if (claimed_id) {
        uint64_t cid = 0;
        if (dec_get(claimed_id, strlen(claimed_id), UINT64_MAX, &cid) < 0 || cid != id)
            return -EACCES;
    }
    if (!fresh((int64_t)ts, now_ms))
        return -ETIME;
    if (replay &&
        (r = ms_replay_check_add(replay, nonce, (int64_t)ts + MS_NAUTH_SKEW_MS, now_ms)) < 0)
        return r;
    if (node_id)
        *node_id = id;
    return 0;
}
