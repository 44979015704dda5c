/* Push (nginx-rtmp "push", SRS "forward"): the node that runs a stream
 * publishes its frames to each configured rtmp:// target
 * (docs/rtmp.md "Push"), as an RTMP client (media/rtmp/client.h) fed from
 * a hub reader through the same FLV tag code as RTMP play
 * (media/rtmp/flv.h ms_flv_play_t).
 *
 * Each target connects (a name is resolved with getaddrinfo at each
 * attempt; its first address is used), must reach
 * NetStream.Publish.Start within 10 s, then gets every frame from the GOP
 * cache's keyframe on. Any failure (refused, reset, protocol error, no
 * write progress for 15 s) closes the connection and retries after a delay
 * that starts at 1 s and doubles up to 30 s; a session that published for
 * 30 s starts the delay over. A target whose socket holds more than 8 MiB
 * unsent skips frames up to the next keyframe.
 *
 * Threads: start and stop on the stream's loop (the hub's); status on any
 * thread while the caller knows the object is not stopped (the stream
 * reads it under its own lock, and clears its pointer under that lock
 * before ms_push_stop). */
#ifndef MS_NODE_PUSH_H
#define MS_NODE_PUSH_H

#include <stdint.h>

#include <uv.h>

#include "media/stream/hub.h"

typedef struct ms_push ms_push_t;

typedef struct {
    char url[512];
    char state[16];       /* "connecting", "publishing", "retrying" */
    int healthy;          /* publishing and bytes were sent within the last 5 s */
    uint64_t bytes_sent;  /* all sessions, bytes the socket accepted */
    uint32_t connects;    /* sessions that reached publishing */
    uint32_t failures;    /* sessions that failed */
    int64_t since_us;     /* UTC us the current state began */
    char last_error[256]; /* "" = none yet */
} ms_push_status_t;

/* Stream loop. Starts pushing hub's frames to urls[0..n) (rtmp:// URLs
 * that ms_rtmp_url_parse accepts; others are reported as failing). log_ctx
 * is copied. Returns the object (stopped with ms_push_stop) or NULL (out
 * of memory). */
ms_push_t *ms_push_start(uv_loop_t *loop, ms_hub_t *hub, const char *log_ctx,
                         const char (*urls)[512], int n);
/* Stream loop: closes every connection and the reader; the memory goes
 * when the handles have closed (the loop must keep running). NULL: no-op. */
void ms_push_stop(ms_push_t *p);
/* Any thread (see above): copies up to cap target states into out, returns
 * the number copied. */
int ms_push_status(ms_push_t *p, ms_push_status_t *out, int cap);

#endif
