/* RTSP access control (api/rtsp_access.h). */
#include "api/rtsp_access.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "api/access.h"
#include "media/rtsp/auth.h"
#include "media/rtsp/server.h"
#include "node/auth_guard.h"
#include "node/config.h"
#include "node/streams.h"
#include "util/clock.h"
#include "util/ipaddr.h"
#include "util/kdf.h"
#include "util/log.h"
#include "util/urlquery.h"

#define REALM         "mediaserver"
#define NONCE_LIFE_S  300
#define NONCE_MAC_HEX 32

static ms_ratelimit_t g_rl = MS_RATELIMIT_INIT(1000);

/* nonce = 16 hex digits of the issue time (s) + 16 hex random digits (so
 * that every challenge has its own nonce and nonce counts are per client)
 * + 32 hex digits of HMAC-SHA256(K, "rtsp-nonce:" time random), K the
 * secret's key for this purpose (util/kdf.h MS_KDF_RTSP_NONCE). */
#define NONCE_RAND_HEX 16
#define NONCE_LEN      (16 + NONCE_RAND_HEX + NONCE_MAC_HEX)
#define NC_TABLE_SIZE  4096

static void nonce_mac(const char *secret, const char *head, char *hex)
{
    char msg[64];
    int n = snprintf(msg, sizeof msg, "rtsp-nonce:%.*s", 16 + NONCE_RAND_HEX, head);
    uint8_t key[MS_KDF_KEY_LEN];
    if (ms_kdf_derive(secret, MS_KDF_RTSP_NONCE, key) < 0)
        memset(key, 0, sizeof key); /* an empty secret: config always sets one */
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    HMAC(EVP_sha256(), key, (int)sizeof key, (const unsigned char *)msg, (size_t)n, mac, &maclen);
    for (int i = 0; i < NONCE_MAC_HEX / 2; i++)
        snprintf(hex + 2 * i, 3, "%02x", mac[i]);
}

static int nonce_make(const char *secret, int64_t t, char *out, size_t cap)
{
    unsigned char rnd[NONCE_RAND_HEX / 2];
    if (cap < NONCE_LEN + 1 || RAND_bytes(rnd, sizeof rnd) != 1)
        return -EIO;
    int o = snprintf(out, cap, "%016" PRIx64, (uint64_t)t);
    for (size_t i = 0; i < sizeof rnd; i++)
        o += snprintf(out + o, cap - (size_t)o, "%02x", rnd[i]);
    nonce_mac(secret, out, out + o);
    return 0;
}

/* 1 with the issue time in *issued when nonce is one of ours and younger
 * than NONCE_LIFE_S. */
static int nonce_valid(const char *secret, const char *nonce, int64_t now, int64_t *issued)
{
    if (strlen(nonce) != NONCE_LEN)
        return 0;
    uint64_t t = 0;
    for (int i = 0; i < 16 + NONCE_RAND_HEX; i++) {
        char ch = nonce[i];
        int v = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
        if (v < 0)
            return 0;
        if (i < 16)
            t = t << 4 | (uint64_t)v;
    }
    if ((int64_t)t > now + 5 || now - (int64_t)t > NONCE_LIFE_S)
        return 0;
    char want[NONCE_MAC_HEX + 1];
    nonce_mac(secret, nonce, want);
    *issued = (int64_t)t;
    return CRYPTO_memcmp(want, nonce + 16 + NONCE_RAND_HEX, NONCE_MAC_HEX) == 0;
}

/* The nonce counts seen (RFC 2617 3.2.2), for every RTSP connection. */
static pthread_once_t g_nc_once = PTHREAD_ONCE_INIT;
static ms_auth_nc_table_t *g_nc;

static void nc_init(void)
{
    g_nc = ms_auth_nc_new(NC_TABLE_SIZE);
}

/* RFC 2617 3.2.2: nc is 8 hex digits; the RFC 2069 form (no qop) has none
 * and counts as 0 (single use). -1 when malformed. */
static int64_t parse_nc(const ms_auth_credentials_t *cr)
{
    if (!cr->qop[0])
        return 0;
    size_t n = strlen(cr->nc);
    if (n == 0 || n > 8 || strspn(cr->nc, "0123456789abcdefABCDEF") != n)
        return -1;
    return (int64_t)strtoll(cr->nc, NULL, 16);
}

static int challenge(const ms_node_cfg_t *node, int stale, char *www, size_t cap)
{
    char nonce[NONCE_LEN + 1];
    if (nonce_make(node->secret, ms_wall_us() / 1000000, nonce, sizeof nonce) < 0)
        return 401; /* no challenge: the client cannot retry with Digest */
    snprintf(www, cap, "Digest realm=\"%s\", nonce=\"%s\", algorithm=MD5, qop=\"auth\"%s", REALM,
             nonce, stale ? ", stale=true" : "");
    return 401;
}

/* The admin credentials of a request (Basic or Digest), with the
 * per-address back-off (node/auth_guard.h), the Digest uri check and the
 * nonce counts. Returns 200 or 401 (*stale when a new nonce would do). */
static int check_admin(const ms_node_cfg_t *node, const ms_auth_credentials_t *cr,
                       const struct sockaddr *peer, const char *method, const char *uri, int *stale,
                       char *reason, size_t rcap)
{
    ms_ip_t ip;
    int have_ip = ms_ip_from_sockaddr(peer, &ip) == 0;
    if (have_ip && ms_auth_guard_check(&ip, "rtsp") > 0) {
        snprintf(reason, rcap, "too many failed logins from this address");
        return 401;
    }
    int is_digest = cr->scheme == MS_AUTH_DIGEST;
    int64_t now = ms_wall_us() / 1000000, issued = 0;
    if (is_digest && !nonce_valid(node->secret, cr->nonce, now, &issued)) {
        snprintf(reason, rcap, "stale or foreign Digest nonce");
        *stale = 1;
        return 401;
    }
    const char *what = is_digest ? "Digest" : "Basic";
    if (is_digest && !ms_auth_digest_uri_match(cr->uri, uri)) {
        snprintf(reason, rcap, "the Digest uri is not the request's");
        if (have_ip)
            ms_auth_guard_failed(&ip, "rtsp", "Digest for another uri");
        return 401;
    }
    if (ms_auth_verify(cr, method, REALM, cr->nonce, node->admin_password, 1) != 0) {
        snprintf(reason, rcap, "wrong admin credentials");
        if (have_ip)
            ms_auth_guard_failed(&ip, "rtsp", what);
        return 401;
    }
    if (is_digest) {
        pthread_once(&g_nc_once, nc_init);
        int64_t nc = parse_nc(cr);
        int rc = -ENOMEM;
        if (g_nc && nc >= 0) {
            ms_auth_nc_expire(g_nc, now - NONCE_LIFE_S);
            rc = ms_auth_nc_use(g_nc, cr->nonce, issued, nc);
        }
        if (rc < 0) {
            snprintf(reason, rcap, "%s",
                     rc == -EALREADY ? "replayed Digest nonce count"
                                     : "Digest nonce count not accepted");
            *stale = 1;
            return 401;
        }
    }
    if (have_ip)
        ms_auth_guard_ok(&ip);
    return 200;
}

static void grant_of(const ms_play_decision_t *d, ms_rtsp_grant_t *g)
{
    if (!g)
        return;
    g->from_ms = d->win_from_ms;
    g->to_ms = d->win_to_ms;
    g->expires = d->expires;
}

static int decide(const ms_node_cfg_t *node, const ms_stream_cfg_t *cfg,
                  const struct sockaddr *peer, const char *tok, int mode, int64_t at_ms,
                  const char *query, ms_play_decision_t *d)
{
    ms_play_req_t q = {cfg,           node, peer, NULL, NULL, tok, mode, at_ms, .protocol = "rtsp",
                       .query = query};
    return ms_playback_decide(&q, ms_wall_us() / 1000000, d);
}

/* Credentials of a request the URL alone does not admit: a token as user
 * name (decided like ?token=), or the admin user (the whole archive, no
 * expiry). Returns 200 (grant filled), 401 (*stale when a new nonce would
 * do) or 403. */
static int check_credentials(const ms_node_cfg_t *node, const ms_stream_cfg_t *cfg,
                             const struct sockaddr *peer, const char *authorization,
                             const char *method, const char *uri, int mode, int64_t at_ms,
                             int *stale, char *reason, size_t rcap, ms_rtsp_grant_t *grant)
{
    ms_auth_credentials_t cr;
    if (ms_auth_credentials_parse(authorization, &cr) < 0) {
        snprintf(reason, rcap, "unparsable Authorization header");
        return 401;
    }
    if (cr.username[0] && (!node->admin_user[0] || strcmp(cr.username, node->admin_user) != 0)) {
        ms_play_decision_t d;
        int rc = decide(node, cfg, peer, cr.username, mode, at_ms, NULL, &d);
        snprintf(reason, rcap, "%s", d.reason);
        if (rc == 0)
            grant_of(&d, grant);
        return rc == 0 ? 200 : rc == -ENOENT ? 401 : 403;
    }
    if (!node->admin_password[0]) {
        snprintf(reason, rcap, "no admin password configured");
        return 401;
    }
    int code = check_admin(node, &cr, peer, method, uri, stale, reason, rcap);
    if (code == 200 && grant)
        *grant = (ms_rtsp_grant_t){INT64_MIN, INT64_MAX, 0};
    return code;
}

int ms_rtsp_access_authorize(void *ud, const char *stream, const char *query,
                             const struct sockaddr *peer, const char *authorization,
                             const char *method, const char *uri, char *www, size_t cap,
                             ms_rtsp_grant_t *grant)
{
    const ms_node_cfg_t *node = ud;
    ms_stream_t *s = ms_streams_find(stream);
    ms_stream_cfg_t cfg;
    memset(&cfg, 0, sizeof cfg);
    if (s && ms_stream_get_cfg(s, &cfg) < 0) {
        ms_stream_unref(s);
        s = NULL;
    }
    if (!s) {
        /* an unknown name gets what a refused private stream gets (a
         * Digest challenge), so names cannot be probed; the admin user
         * learns that it does not exist */
        ms_auth_credentials_t cr;
        char why[96];
        int stale = 0;
        if (authorization && ms_auth_credentials_parse(authorization, &cr) == 0 &&
            node->admin_user[0] && node->admin_password[0] &&
            strcmp(cr.username, node->admin_user) == 0 &&
            check_admin(node, &cr, peer, method, uri, &stale, why, sizeof why) == 200)
            return 404;
        return challenge(node, stale, www, cap);
    }
    ms_stream_unref(s);

    char tok[1024] = "", reason[256] = "";
    if (query && query[0] && ms_url_query_get(query, strlen(query), "token", tok, sizeof tok) < 0)
        tok[0] = '\0';
    /* ?from= asks for the archive: the token must allow it at that time */
    int mode = MS_ACCESS_LIVE;
    int64_t at_ms = 0, from_ms = 0;
    if (query && ms_rtsp_archive_query(query, &from_ms)) {
        mode = MS_ACCESS_ARCHIVE;
        at_ms = from_ms;
    }
    ms_play_decision_t d;
    int rc = decide(node, &cfg, peer, tok[0] ? tok : NULL, mode, at_ms, query, &d);
    snprintf(reason, sizeof reason, "%s", d.reason);
    int code = 200;
    if (rc == 0) {
        grant_of(&d, grant);
    } else if (rc == -ENOENT) {
        /* no genuine token in the URL: other credentials, else the same
         * challenge an unknown stream gets */
        int stale = 0;
        code = authorization ? check_credentials(node, &cfg, peer, authorization, method, uri, mode,
                                                 at_ms, &stale, reason, sizeof reason, grant)
                             : 401;
        if (code == 401)
            challenge(node, stale, www, cap);
    } else {
        code = 403;
    }
    if (code != 200) {
        uint32_t supp = 0;
        if (ms_ratelimit_ok(&g_rl, &supp))
            MS_INFO("[rtsp-server]", "[stream %s] %s refused (%d): %s%s", cfg.name, method, code,
                    reason[0] ? reason : "credentials required",
                    supp ? " (repeats suppressed)" : "");
    }
    ms_stream_cfg_free(&cfg);
    return code;
}
