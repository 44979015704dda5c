/* RTSP authentication (RFC 2326 section 12.5/12.44 uses HTTP's): Basic and
 * Digest access authentication of RFC 2617 (MD5, qop=auth with nc/cnonce,
 * and the RFC 2069 form without qop).
 *
 * Client side: parse WWW-Authenticate challenges, build Authorization.
 * Server side: build a challenge, parse and verify an Authorization header.
 * Pure code apart from RAND_bytes (OpenSSL, thread-safe); no allocation
 * except the nonce-count table (ms_auth_nc_new).
 * Callable from any thread on its own objects. */
#ifndef MS_MEDIA_RTSP_AUTH_H
#define MS_MEDIA_RTSP_AUTH_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    MS_AUTH_NONE = 0,
    MS_AUTH_BASIC = 1,
    MS_AUTH_DIGEST = 2,
} ms_auth_scheme_t;

typedef struct {
    ms_auth_scheme_t scheme;
    char realm[128];
    char nonce[256];
    char opaque[256];
    int qop_auth; /* the server offered qop="auth" */
    int stale;
    uint32_t nc; /* nonce count used by the last Authorization */
} ms_auth_challenge_t;

/* Parses one WWW-Authenticate header value (RFC 2617 1.2; the value may
 * hold several challenges) and merges the best usable one into *best:
 * Digest with MD5 (or no algorithm) beats Basic; among equals the first
 * wins. Call with *best zeroed before the first header. Returns 0 when
 * *best is usable afterwards, else -ENOTSUP (only unknown schemes or
 * algorithms such as SHA-256/MD5-sess) or -EINVAL (syntax). */
int ms_auth_challenge_parse(ms_auth_challenge_t *best, const char *value);

/* Builds the Authorization header value for a request (increments ch->nc
 * and draws a fresh cnonce with RAND_bytes for qop=auth). Returns the
 * length or -ENAMETOOLONG/-EINVAL/-EIO. */
int ms_auth_authorization(ms_auth_challenge_t *ch, const char *user, const char *pass,
                          const char *method, const char *uri, char *out, size_t cap);

/* RFC 2617 3.2.2.1 request-digest (lowercase hex, 32 chars + NUL into
 * out[33]). qop NULL or "" selects the RFC 2069 form (no nc/cnonce). */
int ms_auth_digest_response(const char *user, const char *realm, const char *pass,
                            const char *method, const char *uri, const char *nonce, const char *nc,
                            const char *cnonce, const char *qop, char out[33]);

/* Server side. The credentials a client sent (Authorization value). */
typedef struct {
    ms_auth_scheme_t scheme;
    char username[128];
    char password[128]; /* Basic only */
    char realm[128];
    char nonce[256];
    char uri[1024];
    char response[64];
    char qop[16];
    char nc[16];
    char cnonce[128];
    char algorithm[16];
} ms_auth_credentials_t;

/* Fills hdr with a WWW-Authenticate value 'Digest realm="..", nonce="..",
 * algorithm=MD5, qop="auth"' and nonce with a fresh random nonce (32 hex).
 * Returns the header length or a negative errno. */
int ms_auth_server_challenge(const char *realm, char *nonce, size_t nonce_cap, char *hdr,
                             size_t hdr_cap);
/* Parses an Authorization value. Returns 0, -EINVAL or -ENOTSUP. */
int ms_auth_credentials_parse(const char *value, ms_auth_credentials_t *out);
/* Verifies parsed credentials against the expected password for
 * c->username, the realm and the nonce this server issued. Basic is
 * accepted only when allow_basic and with a non-empty user name (the
 * caller checks which user); its password is compared in constant time
 * through SHA-256 of both sides (no length leak). Digest: the response is
 * compared in constant time; the caller also checks the digest uri
 * (ms_auth_digest_uri_match) and the nonce count (ms_auth_nc_use).
 * Returns 0 or -EACCES. */
int ms_auth_verify(const ms_auth_credentials_t *c, const char *method, const char *realm,
                   const char *nonce, const char *pass, int allow_basic);

/* RFC 2617 3.2.2.5: the digest-uri must name the Request-URI. 1 when the
 * two name the same resource: equal after removing "scheme://authority"
 * from either (a client may send the absolute or the abs_path form, and
 * the host name it used), else 0. Path and query are compared exactly. */
int ms_auth_digest_uri_match(const char *digest_uri, const char *request_uri);

/* Nonce counts (RFC 2617 3.2.2: nc must increase for each use of a nonce,
 * so a captured Authorization cannot be replayed). A bounded table of the
 * nonces in use; when full, the oldest-issued nonce is forgotten and every
 * nonce issued as early or earlier is refused as stale from then on (the
 * client gets a new challenge), so forgetting never allows a replay.
 * Thread-safe (one mutex); no I/O. */
#define MS_AUTH_NONCE_MAX 128
typedef struct ms_auth_nc_table ms_auth_nc_table_t;
/* Returns a table of cap nonces (the caller owns it) or NULL. */
ms_auth_nc_table_t *ms_auth_nc_new(size_t cap);
void ms_auth_nc_free(ms_auth_nc_table_t *t);
/* Records one use of nonce (issued at issued_s, the caller's clock) with
 * nonce count nc (the hex nc value; 0 for the RFC 2069 form without qop,
 * which makes such a nonce single-use). Returns 0 when nc is above every
 * count seen with that nonce, -EALREADY when not (a replay), -ESTALE when
 * the nonce may have been forgotten, -EINVAL (empty or too long nonce). */
int ms_auth_nc_use(ms_auth_nc_table_t *t, const char *nonce, int64_t issued_s, int64_t nc);
/* Forgets the nonces issued before before_s (expired ones); they are
 * stale from then on. */
void ms_auth_nc_expire(ms_auth_nc_table_t *t, int64_t before_s);

#endif
