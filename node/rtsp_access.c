/* RTSP access control (node/rtsp_access.h). */
#include "node/rtsp_access.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "api/access.h"
#include "media/rtsp/auth.h"
#include "media/rtsp/server.h"
#include "node/config.h"
#include "node/streams.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/urlquery.h"

#define REALM         "mediaserver"
#define NONCE_LIFE_S  300
#define NONCE_MAC_HEX 32

static ms_ratelimit_t g_rl = MS_RATELIMIT_INIT(1000);

/* nonce = 16 hex digits of the issue time (s) + 32 hex digits of
 * HMAC-SHA256(secret, "rtsp-nonce:" time). */
static void nonce_make(const char *secret, int64_t t, char *out, size_t cap)
{
    char msg[64];
    int n = snprintf(msg, sizeof msg, "rtsp-nonce:%016" PRIx64, (uint64_t)t);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)msg, (size_t)n, mac,
         &maclen);
    char hex[NONCE_MAC_HEX + 1];
    for (int i = 0; i < NONCE_MAC_HEX / 2; i++)
        snprintf(hex + 2 * i, 3, "%02x", mac[i]);
    snprintf(out, cap, "%016" PRIx64 "%s", (uint64_t)t, hex);
}

static int nonce_valid(const char *secret, const char *nonce, int64_t now)
{
    if (strlen(nonce) != 16 + NONCE_MAC_HEX)
        return 0;
    uint64_t t = 0;
    for (int i = 0; i < 16; i++) {
        char ch = nonce[i];
        int v = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
        if (v < 0)
            return 0;
        t = t << 4 | (uint64_t)v;
    }
    if ((int64_t)t > now + 5 || now - (int64_t)t > NONCE_LIFE_S)
        return 0;
    char want[64];
    nonce_make(secret, (int64_t)t, want, sizeof want);
    return CRYPTO_memcmp(want, nonce, 16 + NONCE_MAC_HEX) == 0;
}

static int challenge(const ms_node_cfg_t *node, char *www, size_t cap)
{
    char nonce[64];
    nonce_make(node->secret, ms_wall_us() / 1000000, nonce, sizeof nonce);
    snprintf(www, cap, "Digest realm=\"%s\", nonce=\"%s\", algorithm=MD5, qop=\"auth\"", REALM,
             nonce);
    return 401;
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
                  ms_play_decision_t *d)
{
    ms_play_req_t q = {cfg, node, peer, NULL, NULL, tok, mode, at_ms};
    return ms_playback_decide(&q, ms_wall_us() / 1000000, d);
}

/* The admin user's credentials (Digest or Basic): 1 when they match. */
static int admin_ok(const ms_node_cfg_t *node, const ms_auth_credentials_t *cr, const char *method,
                    char *reason, size_t rcap)
{
    if (!node->admin_password[0]) {
        snprintf(reason, rcap, "no admin password configured");
        return 0;
    }
    if (cr->scheme == MS_AUTH_DIGEST &&
        !nonce_valid(node->secret, cr->nonce, ms_wall_us() / 1000000)) {
        snprintf(reason, rcap, "stale or foreign Digest nonce");
        return 0;
    }
    if (ms_auth_verify(cr, method, REALM, cr->nonce, node->admin_password, 1) == 0)
        return 1;
    snprintf(reason, rcap, "wrong admin credentials");
    return 0;
}

/* Credentials of a request the URL alone does not admit: a token as user
 * name (decided like ?token=), or the admin user (the whole archive, no
 * expiry). Returns 200 (grant filled), 401 or 403. */
static int check_credentials(const ms_node_cfg_t *node, const ms_stream_cfg_t *cfg,
                             const struct sockaddr *peer, const char *authorization,
                             const char *method, int mode, int64_t at_ms, char *reason, size_t rcap,
                             ms_rtsp_grant_t *grant)
{
    ms_auth_credentials_t cr;
    if (ms_auth_credentials_parse(authorization, &cr) < 0) {
        snprintf(reason, rcap, "unparsable Authorization header");
        return 401;
    }
    if (cr.username[0] && (!node->admin_user[0] || strcmp(cr.username, node->admin_user) != 0)) {
        ms_play_decision_t d;
        int rc = decide(node, cfg, peer, cr.username, mode, at_ms, &d);
        snprintf(reason, rcap, "%s", d.reason);
        if (rc == 0)
            grant_of(&d, grant);
        return rc == 0 ? 200 : rc == -ENOENT ? 401 : 403;
    }
    if (!admin_ok(node, &cr, method, reason, rcap))
        return 401;
    if (grant)
        *grant = (ms_rtsp_grant_t){INT64_MIN, INT64_MAX, 0};
    return 200;
}

int ms_rtsp_access_authorize(void *ud, const char *stream, const char *query,
                             const struct sockaddr *peer, const char *authorization,
                             const char *method, const char *uri, char *www, size_t cap,
                             ms_rtsp_grant_t *grant)
{
    (void)uri; /* the Digest uri is checked by ms_auth_verify from the header itself */
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
        if (authorization && ms_auth_credentials_parse(authorization, &cr) == 0 &&
            node->admin_user[0] && strcmp(cr.username, node->admin_user) == 0 &&
            admin_ok(node, &cr, method, why, sizeof why))
            return 404;
        return challenge(node, www, cap);
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
    int rc = decide(node, &cfg, peer, tok[0] ? tok : NULL, mode, at_ms, &d);
    snprintf(reason, sizeof reason, "%s", d.reason);
    int code = 200;
    if (rc == 0) {
        grant_of(&d, grant);
    } else if (rc == -ENOENT) {
        /* no genuine token in the URL: other credentials, else the same
         * challenge an unknown stream gets */
        code = authorization ? check_credentials(node, &cfg, peer, authorization, method, mode,
                                                 at_ms, reason, sizeof reason, grant)
                             : 401;
        if (code == 401)
            challenge(node, www, cap);
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
