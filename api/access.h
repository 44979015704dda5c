/* Playback access control: one decision for every playback path (live and
 * archive HLS playlists and segments, live fMP4, JPEG snapshots, MP4 export,
 * RTSP), and share links.
 *
 * Access modes of a stream (CONTRACT.md "Stream", access.mode):
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

/* The decision for one playback request. mode: MS_ACCESS_LIVE or
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
