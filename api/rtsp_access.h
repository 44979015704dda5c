/* Access control of the RTSP server (docs/access.md "RTSP": private streams take
 * ?token= on every playback URL; RTSP clients that cannot pass a query use
 * credentials instead). See docs/access.md.
 *
 * Decision (api/access.h ms_playback_decide, the one decision point), for
 * every request that names another resource on the connection (see
 * media/rtsp/server.h, authorize):
 *  1. the ?token= of the request URL (public, protected whitelist, private
 *     token); ?from= asks for the archive at that time.
 *  2. A request without a genuine token for the stream (hidden) may
 *     authenticate:
 *     - with a token as the user name (rtsp://TOKEN:x@host/stream), Basic or
 *       Digest: the token is decided as in 1, the password is ignored;
 *     - with the node's admin user and password, Digest (RFC 2617, MD5,
 *       qop=auth) or Basic: the whole archive, no expiry.
 *     Otherwise 401 with a Digest challenge whose nonce is hex time + 64
 *     random bits + HMAC-SHA256(secret, both), valid for 5 minutes. A
 *     Digest answer must name the request's URI (RFC 2617 3.2.2.5) and
 *     use a nonce count above the last one seen with its nonce (a bounded
 *     table, media/rtsp/auth.h); a replay gets 401 with stale=true.
 *     Basic needs the admin user name (never empty). Failed admin logins
 *     count in the per-address back-off of node/auth_guard.h: a blocked
 *     address gets 401 without its credentials being checked. An unknown
 *     stream gets the same 401 (404 only for the admin user).
 *  3. A genuine token that does not allow the request (expired, wrong mode
 *     or address, outside its window): 403.
 * The grant carries the token's archive window and expiry. */
#ifndef MS_API_RTSP_ACCESS_H
#define MS_API_RTSP_ACCESS_H

#include <stddef.h>
#include <sys/socket.h>

#include "media/rtsp/server.h"

/* ms_rtsp_authorize_fn for the RTSP server; ud is the node config
 * (const ms_node_cfg_t *, borrowed for the server's life). Any thread. */
int ms_rtsp_access_authorize(void *ud, const char *stream, const char *query,
                             const struct sockaddr *peer, const char *authorization,
                             const char *method, const char *uri, char *www, size_t cap,
                             ms_rtsp_grant_t *grant);

#endif
