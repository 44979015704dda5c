/* Playback access control: one decision for every playback path (live and
 * archive HLS playlists and segments, live fMP4, JPEG snapshots, MP4 export,
 * RTSP), and share links.
 *
 * Access modes of a stream (docs/access.md "Access modes", access.mode):
 *   public     anyone may play;
 *   protected  clients whose address is inside access.whitelist (CIDRs) may
 *              play; a valid token also admits (share links work for every
 *              stream);
 *   private    every request carries ?token= (util/token.h).
 * The client address is the TCP peer, or, when the peer is one of the
 * node's trusted_proxies, the address the forwarding headers name
 * (util/ipaddr.h, ms_ip_forwarded_client).
 *
 * Threads: any (pure functions of their arguments; ms_access_check reads
 * the wall clock). Every argument is borrowed. */
#ifndef MS_API_ACCESS_H
#define MS_API_ACCESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "node/config.h"
#include "util/ipaddr.h"
#include "util/token.h"

#define MS_ACCESS_LIVE    MS_TOKEN_LIVE
#define MS_ACCESS_ARCHIVE MS_TOKEN_ARCHIVE

/* The client address of a request from peer (see ms_ip_forwarded_client):
 * headers are believed only when peer is inside one of the n trusted CIDRs.
 * xff/forwarded: X-Forwarded-For / Forwarded header values or NULL.
 * Returns 0 or -EAFNOSUPPORT (peer is not AF_INET/AF_INET6). */
int ms_access_client_addr(const struct sockaddr *peer, const char *xff, const char *forwarded,
                          char *const *trusted, size_t n, ms_ip_t *out);

/* ---- the playback decision point -------------------------------------
 *
 * ms_playback_decide() is the one place that decides whether a client may
 * play: every protocol calls it for a new playback session (HLS playlist,
 * segment, live.mp4, JPEG, MP4 export, RTSP DESCRIBE/SETUP/PLAY) and again
 * for every other resource, range or seek the session asks for. The
 * decision carries what the session may do afterwards: the archive window
 * it may play and when it lapses (token expiry), so a protocol can cache it
 * per session and re-check only at `expires` (docs/access.md).
 *
 * Order: the stream's access mode (public, protected whitelist, private),
 * then the token (util/token.h), then, for an allowed request, the Lua
 * on_play hooks of the node (node/lua.h ms_lua_on_play, docs/lua.md),
 * which may only narrow it: a refusal is MS_PLAY_DENIED (403). Their
 * answer is cached per session (protocol, stream, client, token, user
 * agent) until the session idles out or the token expires, so an HLS
 * session runs them once, not per segment.
 *
 * What a refused client learns (docs/security.md "Playback"): a request
 * that does not carry a genuine token for the stream (no token, a tampered
 * one, one for another stream, a protected stream outside its whitelist)
 * gets MS_PLAY_HIDDEN, answered exactly as an unknown stream is (HTTP 404
 * "unknown stream"; RTSP 401 with a Digest challenge); only the holder of a
 * genuine token for this stream is told why it does not play
 * (MS_PLAY_DENIED: expired, wrong mode, another address, outside the
 * window: HTTP / RTSP 403). */

#define MS_PLAY_ANY_TIME INT64_MIN /* at_ms: an archive session, no time yet */

typedef enum {
    MS_PLAY_ALLOW = 0,
    MS_PLAY_HIDDEN, /* refuse as an unknown stream */
    MS_PLAY_DENIED, /* refuse with the reason (403) */
} ms_play_verdict_t;

typedef struct {
    const ms_stream_cfg_t *stream; /* borrowed */
    const ms_node_cfg_t *node;     /* borrowed */
    const struct sockaddr *peer;   /* TCP peer */
    const char *xff, *forwarded;   /* forwarding headers or NULL */
    const char *token;             /* ?token= (or an RTSP token user name); NULL/"" none */
    int mode;                      /* MS_ACCESS_LIVE | MS_ACCESS_ARCHIVE */
    int64_t at_ms;                 /* archive: the time asked (UTC ms) or MS_PLAY_ANY_TIME */
    /* for the on_play hook (node/lua.h); NULL = "" */
    const char *protocol;   /* hls | rtsp | rtmp | flv | mp4 | jpeg | archive */
    const char *query;      /* the raw query string */
    const char *user_agent; /* User-Agent header */
} ms_play_req_t;

typedef struct {
    ms_play_verdict_t verdict;
    int by_token;        /* allowed because of a token */
    int64_t win_from_ms; /* archive window [win_from_ms, win_to_ms) UTC ms; */
    int64_t win_to_ms;   /* INT64_MIN / INT64_MAX when unrestricted */
    int64_t expires;     /* UTC s the decision lapses at; 0 = never */
    char reason[160];    /* why (for logs; the 403 body for DENIED) */
} ms_play_decision_t;

/* Decides one playback request at time now (UTC s). Fills *d and returns 0
 * (allow), -ENOENT (MS_PLAY_HIDDEN) or -EACCES (MS_PLAY_DENIED). Any thread;
 * pure apart from its arguments and the node's Lua hooks (none in unit
 * tests: node/lua.h ms_lua_global). */
int ms_playback_decide(const ms_play_req_t *q, int64_t now, ms_play_decision_t *d);

/* The archive window rule, one for every protocol (docs/access.md): a
 * session whose decision allows [F, E) may play from the keyframe that
 * contains F (at most one GOP before F) up to E, and nothing else.
 * Intersects the asked range [*from_ms, *to_ms) with the decision's window:
 * 1 when something is left (the range is narrowed), 0 when the two do not
 * overlap. Pure. */
int ms_play_clip(const ms_play_decision_t *d, int64_t *from_ms, int64_t *to_ms);

/* Whether a seek or a start at t_ms (UTC ms) is inside the decision's
 * window: 1 or 0. Pure. */
int ms_play_time_ok(const ms_play_decision_t *d, int64_t t_ms);

/* The decision for one playback request (the original interface, kept for
 * callers that need no window: a wrapper of ms_playback_decide). mode: MS_ACCESS_LIVE or
 * MS_ACCESS_ARCHIVE; at: the archive time asked for (UTC seconds; ignored
 * for live). token: the ?token= value or NULL/"".
 * Returns 0 (allow), -EACCES (HTTP 403 / RTSP 403: refused, reason says
 * why and should be logged) or -EPERM (HTTP 401 / RTSP 401: a private
 * stream asked without a token). reason (may be NULL) always gets text. */
int ms_access_check(const ms_stream_cfg_t *s, const ms_node_cfg_t *node,
                    const struct sockaddr *peer, const char *xff, const char *forwarded,
                    const char *token, int mode, int64_t at, char *reason, size_t reason_cap);

/* Same with an explicit clock (tests, callers that already read it). */
int ms_access_check_at(const ms_stream_cfg_t *s, const ms_node_cfg_t *node,
                       const struct sockaddr *peer, const char *xff, const char *forwarded,
                       const char *token, int mode, int64_t at, int64_t now, char *reason,
                       size_t reason_cap);

/* Share links (POST /api/v1/streams/{id}/share). */
typedef enum { MS_SHARE_HLS = 0, MS_SHARE_RTSP } ms_share_proto_t;

typedef struct {
    int mode;      /* MS_ACCESS_LIVE | MS_ACCESS_ARCHIVE */
    int64_t from;  /* archive: start (UTC seconds, > 0); window is one day */
    int is_public; /* no expiry; needs node->external_access */
    int64_t ttl_s; /* temporary link lifetime: 1 s .. 30 days; 0 = 1 day */
    ms_share_proto_t protocol;
} ms_share_req_t;

#define MS_SHARE_WINDOW_S 86400
#define MS_SHARE_MAX_TTL  (30 * 86400)

/* Builds the URL of a share link for stream s on this node (advertise
 * address, HTTP or RTSP port):
 *   hls live      http://A:P/{name}/index.m3u8?token=T
 *   hls archive   http://A:P/{name}/archive-{from}-86400.m3u8?token=T
 *   rtsp live     rtsp://A:P/{name}?token=T
 *   rtsp archive  rtsp://A:P/{name}?from={from}&token=T
 * *expires gets the expiry (0 for a public link). now: UTC seconds.
 * Returns 0; -EINVAL for a bad request (HTTP 400; *field names the key);
 * -EPERM when the node's or stream's config forbids it (HTTP 409: public
 * link without external_access, archive of a low-quality stream, protocol
 * whose listener is disabled); -ENOSPC when url is too small. err gets the
 * message. */
int ms_share_build(const ms_share_req_t *req, const ms_stream_cfg_t *s, const ms_node_cfg_t *node,
                   int64_t now, char *url, size_t url_cap, int64_t *expires, const char **field,
                   char *err, size_t err_cap);

#endif
