/* RTSP server for live streams (RFC 2326): rtsp://H:PORT/{stream}.
 *
 * Methods: OPTIONS, DESCRIBE (SDP from the stream's tracks), SETUP over
 * TCP-interleaved (10.12) or UDP unicast (RTP + RTCP port pairs), PLAY
 * (starts at the last keyframe from the GOP cache, RTP-Info), PAUSE,
 * TEARDOWN, GET_PARAMETER (keepalive). Sessions time out after
 * session_timeout_s without a request or RTCP from the client.
 *
 * Threads and hand-off: one accept thread (its own loop) owns the listening
 * socket. It reads a connection's first request(s) until one names a known
 * stream, then duplicates the socket descriptor (dup of uv_fileno), closes
 * its own handle and posts the descriptor plus the bytes read so far to the
 * stream's loop, where uv_tcp_open() adopts it (a uv_tcp_t cannot move
 * between loops, a descriptor can). From then on the connection lives on
 * the stream's loop next to the hub: no locks on the media path.
 *
 * Fan-out: per stream, one "output" (a hub reader on the stream's loop)
 * packetizes each frame once (media/rtp/packetize.h) into a refcounted blob
 * with stream-wide SSRC, sequence numbers and timestamps; every session
 * queues references to the same blobs (RTP-Info tells each client the seq
 * and rtptime of its first packet). Each TCP session has a bounded queue:
 * on overflow it is emptied and the session resumes at the next video
 * keyframe; a session that overflows 3 times within 10 s, or whose socket
 * makes no write progress for 10 s, is closed. UDP packets are sent with
 * uv_udp_try_send (a full socket drops, as UDP would). RTCP SR every 5 s per
 * track (NTP from the frames' wallclock).
 *
 * The server does not know the node: streams are found through callbacks. */
#ifndef MS_MEDIA_RTSP_SERVER_H
#define MS_MEDIA_RTSP_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <uv.h>

#include "media/stream/hub.h"
#include "util/buf.h"

typedef struct ms_rtsp_server ms_rtsp_server_t;

/* A stream as the node hands it to the server. */
typedef struct {
    void *ref;       /* opaque reference, released with cfg->release (identity of the stream) */
    ms_hub_t *hub;   /* borrowed while ref is held; used on the stream's loop only */
    uv_loop_t *loop; /* the stream's loop */
    void *exec;      /* passed to cfg->post to run code on that loop */
    char name[64];
    char uid[64];
} ms_rtsp_stream_t;

/* What an allowed request may do afterwards (filled by the authorize hook
 * on 200): the archive window the session may play, [from_ms, to_ms) UTC
 * ms (INT64_MIN / INT64_MAX: no limit; playback starts at the keyframe at
 * or before a time inside it and stops at to_ms with an RTCP BYE), and the
 * UTC second the grant lapses at (the connection is closed then; 0 =
 * never). */
typedef struct {
    int64_t from_ms, to_ms;
    int64_t expires;
} ms_rtsp_grant_t;

/* Access control hook. Called on the stream's loop for OPTIONS (naming a
 * stream), DESCRIBE, SETUP and PLAY whenever the request names another
 * resource than the one last allowed on the connection (another query:
 * ?token=, ?from=; a request without a query keeps the last decision), and
 * on the accept thread for a request naming a stream lookup does not know
 * (grant NULL: the answer must then be the one a refused request gets, so
 * that names cannot be probed). query is the request URL's query
 * ("token=..." or ""), authorization the Authorization header or NULL,
 * method/uri those of the request (Digest needs them). Returns 200
 * (allowed; *grant filled), 401 (then www_authenticate_out holds the
 * WWW-Authenticate value to send), 403 or 404. */
typedef int (*ms_rtsp_authorize_fn)(void *ud, const char *stream, const char *query,
                                    const struct sockaddr *peer, const char *authorization,
                                    const char *method, const char *uri, char *www_authenticate_out,
                                    size_t cap, ms_rtsp_grant_t *grant);

typedef struct {
    const char *address; /* listen address ("0.0.0.0", "::", "127.0.0.1") */
    int port;
    const char *log_ctx;
    uint32_t session_timeout_s; /* 0 = 60 */
    /* A new connection must name a stream this server knows within
     * request_timeout_ms (0 = 10000) or it is closed. */
    uint32_t request_timeout_ms;
    /* At most conns_per_ip connections per client address (IPv6 per
     * address) may wait there at once (before their hand-off to a stream);
     * more are closed at once. 0 = no limit. */
    uint32_t conns_per_ip;
    /* Accept thread, optional: 1 for a peer the limit does not apply to
     * (trusted proxies). */
    int (*exempt)(void *ud, const struct sockaddr *peer);
    /* Any thread (the accept thread): fills *out with a new reference.
     * Returns 0 or -ENOENT. */
    int (*lookup)(void *ud, const char *name_or_uid, ms_rtsp_stream_t *out);
    /* Any thread: drops a reference from lookup. */
    void (*release)(void *ud, void *ref);
    /* Stream loop: 1 while the stream is to be served, 0 once it is being
     * removed (the server then closes its sessions), 2 while it is
     * configured here but runs elsewhere (live sessions are closed, archive
     * sessions go on). May be NULL. */
    int (*running)(void *ud, void *ref);
    /* Any thread (the accept thread), optional: like lookup, for a request
     * that asks for the archive (?from=) of a stream lookup does not know
     * (configured here, not running: the archive of a stream another server
     * runs now). NULL = archive only of the streams lookup finds. */
    int (*lookup_archive)(void *ud, const char *name_or_uid, ms_rtsp_stream_t *out);
    /* Accept thread, optional: whether the first request of a connection
     * that names a stream goes to another server (RFC 2326 11.3.3, RFC 7826
     * 13.3.4: 302 Moved Temporarily). stream is the request's (decoded)
     * stream segment, query its query ("" when none), here 1 when lookup
     * (or lookup_archive for ?from=) found the stream on this server.
     * Returns 1 with base set to the other server's "rtsp://host:port"
     * (cap bytes; the Location keeps the request's path and query), 0 to
     * answer here. May block briefly (an archive index read). */
    int (*redirect)(void *ud, const char *stream, const char *query, int here, char *base,
                    size_t cap);
    /* Any thread: runs fn(arg) on the loop behind exec. 0 or a negative
     * errno (fn is then not called). */
    int (*post)(void *ud, void *exec, void (*fn)(void *arg), void *arg);
    ms_rtsp_authorize_fn authorize; /* NULL = every stream is public */
    /* Archive replay (rtsp://H/{stream}?from=T, Range: clock= on PLAY). The
     * three run on the libuv threadpool (blocking allowed), one call at a
     * time per handle; NULL archive_open = no archive (the ?from= query is
     * then ignored). open: a handle positioned at the last keyframe at or
     * before from_ms, the tracks and *start_ms (wall time of its first
     * frame); 0 or a negative errno (-ENOENT: nothing recorded there).
     * read: the next frame in wall-time order (new reference; wallclock_us
     * = archive wall time, MS_FRAME_DISCONT after a hole): 1, 0 (nothing
     * more for now) or a negative errno. close: frees the handle. */
    int (*archive_open)(void *ud, const char *uid, int64_t from_ms, void **h,
                        ms_codec_params_t tracks[MS_MAX_TRACKS], int *ntracks, int64_t *start_ms);
    int (*archive_read)(void *ud, void *h, ms_frame_t **f);
    void (*archive_close)(void *ud, void *h);
    /* Viewer sessions, optional (NULL session_open = none), on the stream
     * loop. session_open when a connection sets its session up (its first
     * SETUP): ref is the stream's, peer and user_agent (NULL when absent)
     * the client's, conn_id names the connection for ms_rtsp_server_kick;
     * returns an opaque handle (NULL: not tracked). session_bytes gives the
     * bytes sent so far on the connection (every second and at the end);
     * session_close when the session ends (TEARDOWN, connection closed). */
    /* Accept thread, optional: 1 when name is a stream configured here but
     * disabled (lookup does not find it). A request for it that the
     * authorize hook allows is answered "503 Stream Disabled" (RFC 2326
     * 7.1.1 lets the reason phrase vary) without Retry-After; a refused
     * one gets the refusal, as an unknown name does. */
    int (*disabled)(void *ud, const char *name);
    void *(*session_open)(void *ud, void *ref, const struct sockaddr *peer, const char *user_agent,
                          uint64_t conn_id);
    void (*session_bytes)(void *ud, void *sess, uint64_t bytes);
    void (*session_close)(void *ud, void *sess);
    void *ud;
} ms_rtsp_server_cfg_t;

/* Binds and starts the accept thread. Returns NULL with a reason in err. The
 * cfg strings are copied. Call from the control thread. */
ms_rtsp_server_t *ms_rtsp_server_start(const ms_rtsp_server_cfg_t *cfg, char *err, size_t errlen);
/* The bound port (useful when cfg->port was 0). */
int ms_rtsp_server_port(const ms_rtsp_server_t *s);
/* Closes connection conn_id of the stream whose loop runs exec (an
 * administrator ended the session): posted to that loop with cfg->post,
 * never done on the calling thread. Any thread while the server runs. 0 or
 * a negative errno (the post failed). A connection already gone is
 * ignored. */
int ms_rtsp_server_kick(ms_rtsp_server_t *s, void *exec, uint64_t conn_id);
/* Stops accepting, closes every connection and output on the stream loops
 * (which must still be running) and waits (bounded, 5 s) for them; frees s.
 * Call from the thread that started it, never from a stream loop. */
void ms_rtsp_server_stop(ms_rtsp_server_t *s);

/* Pure request-target parsing (fuzzed): splits an RTSP request URI
 * ("rtsp://h:p/name/trackID=1?token=x", "/name?token=x/trackID=1", "*")
 * into the stream name (percent-decoded first path segment), the track
 * (-1 when absent) and the query (without any "/trackID=N" a client
 * appended to it). base gets the URI without query and without the
 * trailing "/" or "/trackID=N" (the aggregate URL). Returns 0, -ENOENT
 * ("*" or no stream segment) or -EINVAL. */
typedef struct {
    char stream[128];
    int track;
    char query[1024];
    char base[2048];
} ms_rtsp_target_t;
int ms_rtsp_target_parse(const char *uri, ms_rtsp_target_t *out);

/* The Location of a redirect (RFC 2326 11.3.3, 12.25 Location): base
 * ("rtsp://host:port", no trailing "/") + the path of request_uri's stream
 * (as the client wrote it, up to the stream segment: a SETUP's
 * "/trackID=N" is dropped) + "?" + its query when it has one (so ?token=
 * and ?from= are kept). Pure, any thread. Returns the length, -EINVAL
 * (bad uri or base, or a base with a control character) or -ENAMETOOLONG. */
int ms_rtsp_redirect_location(const char *base, const char *request_uri, char *out, size_t cap);

/* Appends a "302 Moved Temporarily" response with Location to out (RFC
 * 2326 7.1, 11.3.3). location is borrowed. 0, -EINVAL (CR/LF in location)
 * or -ENOMEM. Pure, any thread. */
int ms_rtsp_build_redirect(ms_buf_t *out, long cseq, const char *location);

/* The archive time asked by a request query's from= (UTC seconds, or the
 * RFC 2326 3.7 form YYYYMMDDTHHMMSS[.fff]Z): 1 and *ms (UTC ms) when present
 * and valid, else 0. Pure, any thread. */
int ms_rtsp_archive_query(const char *query, int64_t *ms);

#endif
