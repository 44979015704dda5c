/* HTTP glue of the live outputs that are not HLS (new routes, wired by the
 * router in server.c):
 *   GET /{stream}/live.mp4       ms_live_mp4_respond (chunked fMP4 body)
 *   GET /{stream}/videoshot.jpg  ms_snapshot_respond(..., preview 0)
 *   GET /{stream}/preview.jpg    ms_snapshot_respond(..., preview 1)
 *   GET /{stream}/preview.mp4    ms_snapshot_mp4_respond
 * The caller has already decided access (api/access.h ms_playback_decide).
 *
 * Threads: MHD handler threads (the daemon needs MHD_ALLOW_SUSPEND_RESUME).
 * Every object argument is borrowed; the response takes its own references.
 * hub may be NULL (no output accounting). */
#ifndef MS_API_LIVE_MP4_H
#define MS_API_LIVE_MP4_H

#include <stdint.h>

#include <microhttpd.h>

#include "media/fmp4/live.h"
#include "media/snapshot/snapshot.h"
#include "media/stream/hub.h"

/* Queues a 200 video/mp4 response of unknown length fed from a new
 * subscriber of live (init segment, then fragments), or 503 when the
 * output has no init segment yet. The body ends when the subscriber is ended
 * (too slow, new tracks, output stopped); the client then reconnects.
 * Counts one client on hub while the body is served. */
enum MHD_Result ms_live_mp4_respond(struct MHD_Connection *conn, ms_fmp4_live_t *live,
                                    ms_hub_t *hub);

/* JPEG snapshot: 200 image/jpeg; while the one decode of the current
 * keyframe runs the connection is suspended and this must be called again
 * for the same request (return MHD_YES without a response: *pending is set
 * to 1 and MHD calls the access handler again once resumed); 503 when no
 * keyframe yet, 500 when it cannot be decoded. */
enum MHD_Result ms_snapshot_respond(struct MHD_Connection *conn, ms_snapshot_t *snap, int preview,
                                    int *pending);
/* One-frame MP4 of the latest keyframe: 200 video/mp4 or 503. */
enum MHD_Result ms_snapshot_mp4_respond(struct MHD_Connection *conn, ms_snapshot_t *snap);

/* Accounting and extra headers for the same responses (the router's
 * variants, additive): every response gets the NULL-terminated name/value
 * list `headers` (may be NULL); status gets the status queued (0 when none
 * was, e.g. while a snapshot is pending) and body_len the size of a fixed
 * body. For live.mp4, *sent (when non-NULL) grows by every body byte handed
 * to MHD; it is only written from the content reader, which MHD never runs
 * after the request-completed callback, so it may point into the request's
 * context. With expires set, the live.mp4 body ends (end of stream) at the
 * first fragment handed out at or after that time. */
typedef struct {
    const char *const *headers;
    unsigned status;
    uint64_t body_len;
    uint64_t *sent;
    int64_t expires; /* live.mp4: UTC s the body ends at (token expiry), 0 = never */
    /* live.mp4, optional (NULL sess_open = none): the body as a playback
     * session (docs/api.md "Sessions"). sess_open(sess_ud, kick, ctx) runs
     * once the body is set up and returns a handle (NULL: not tracked);
     * kick(ctx, 0), from any thread until sess_close returned, ends the body
     * at the next read (the connection is resumed if it waits). sess_bytes
     * gets the body bytes sent so far, sess_close runs when MHD frees the
     * response (before anything else of it). */
    void *(*sess_open)(void *ud, void (*kick)(void *ctx, uint64_t arg), void *ctx);
    void (*sess_bytes)(void *sess, uint64_t bytes);
    void (*sess_close)(void *sess);
    void *sess_ud;
} ms_live_reply_t;

/* GET /{stream}/live.flv (docs/rtmp.md): a 200 video/x-flv body of
 * unknown length (chunked) from a new HTTP-FLV subscriber of s's hub
 * (media/rtmp/flv_live.h), attached on the stream's worker; it starts at
 * the GOP cache's keyframe and ends when the client is too slow or the
 * stream stops. s is borrowed (the body takes its own reference). */
struct ms_stream;
enum MHD_Result ms_live_flv_respond_acct(struct MHD_Connection *conn, struct ms_stream *s,
                                         ms_live_reply_t *acct);

enum MHD_Result ms_live_mp4_respond_acct(struct MHD_Connection *conn, ms_fmp4_live_t *live,
                                         ms_hub_t *hub, ms_live_reply_t *acct);
enum MHD_Result ms_snapshot_respond_acct(struct MHD_Connection *conn, ms_snapshot_t *snap,
                                         int preview, int *pending, ms_live_reply_t *acct);
/* Server stop (additive): with stopping != 0, resumes every connection
 * suspended by these responses and keeps new ones from suspending (live.mp4
 * bodies end, pending snapshots answer 503), so that MHD_stop_daemon finds
 * no suspended connection; 0 re-allows suspending (server start). Any
 * thread. */
void ms_live_mp4_set_stopping(int stopping);

enum MHD_Result ms_snapshot_mp4_respond_acct(struct MHD_Connection *conn, ms_snapshot_t *snap,
                                             ms_live_reply_t *acct);

#endif
