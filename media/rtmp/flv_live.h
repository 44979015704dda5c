/* HTTP-FLV body of one client (GET /{stream}/live.flv): an FLV file (FLV
 * 10.1 annex E: header, onMetaData, sequence headers, then one tag per
 * frame) made from a hub reader, starting at the GOP cache's keyframe
 * (media/rtmp/flv.h ms_flv_play_t), through a bounded queue of blobs.
 *
 * A subscriber whose queue holds more than MS_FLV_LIVE_QUEUE_BYTES drops
 * it and resumes at the next keyframe (a strike); after
 * MS_FLV_LIVE_STRIKES strikes it is ended. A new set of tracks continues
 * the same body (the sequence headers are sent again), as RTMP play does.
 *
 * Threads: new/next/close/unref on any thread; attach and detach on the
 * stream's loop (the hub's), the caller posts them there. wake(ud) runs on
 * the loop after next() returned -EAGAIN, once, when a blob is queued or
 * the body ends; it must only signal. A subscriber holds two references:
 * the client's (dropped by close) and the loop's (dropped by detach). */
#ifndef MS_MEDIA_RTMP_FLV_LIVE_H
#define MS_MEDIA_RTMP_FLV_LIVE_H

#include <stdint.h>

#include "media/stream/hub.h"
#include "util/blob.h"

#define MS_FLV_LIVE_QUEUE_BYTES (4u << 20)
#define MS_FLV_LIVE_STRIKES     3

typedef struct ms_flv_live ms_flv_live_t;

/* Any thread. NULL on allocation failure. The FLV header is queued. */
ms_flv_live_t *ms_flv_live_new(ms_hub_t *hub, void (*wake)(void *ud), void *ud);
/* Stream loop: opens the hub reader. 0 or -ENOMEM / -EPIPE (closed
 * already: nothing is opened). */
int ms_flv_live_attach(ms_flv_live_t *l);
/* Stream loop: closes the reader and drops the loop's reference (also when
 * attach was never called or failed). */
void ms_flv_live_detach(ms_flv_live_t *l);
/* Any thread, one caller at a time: 0 with *out (a new reference, the next
 * piece of the body), -EAGAIN (wake will be called), -EPIPE (ended: too
 * slow, or the output stopped). */
int ms_flv_live_next(ms_flv_live_t *l, ms_blob_t **out);
/* Any thread: the client is gone; after it returns wake is never called
 * again. Drops the client's reference. */
void ms_flv_live_close(ms_flv_live_t *l);

#endif
