/* Live fMP4 output of one stream (GET /{stream}/live.mp4): one muxer per
 * stream, not per client. It is a hub reader on the stream's worker loop
 * that produces the init segment (ftyp+moov) and one fragment (moof+mdat,
 * ISO/IEC 14496-12 section 8.8) per GOP or per ~frag_ms, whichever is
 * shorter, as immutable refcounted blobs shared by every client.
 *
 * Subscribers (one per HTTP client) get: the init segment, then the
 * fragments from the latest keyframe-starting fragment on, through a
 * bounded per-subscriber queue of blob references. A subscriber whose queue
 * is full drops what is queued and resumes at the next fragment that starts
 * with a keyframe (a "strike"); after MS_FMP4_LIVE_STRIKES strikes without
 * ever draining its queue it is ended. A new track set or a timeline
 * discontinuity (MS_FRAME_DISCONT) ends every subscriber (the client
 * reconnects and gets the new init segment): one HTTP body never mixes two
 * timelines.
 *
 * Threads: ms_fmp4_live_new/stop run on the worker loop. subscribe, next,
 * close, stats and ref/unref are thread-safe. The wake callback runs on the
 * worker loop while an internal lock is held: it must only signal (e.g.
 * MHD_resume_connection) and must not call back into this API. */
#ifndef MS_MEDIA_FMP4_LIVE_H
#define MS_MEDIA_FMP4_LIVE_H

#include <stdint.h>
#include <uv.h>

#include "media/stream/hub.h"
#include "util/blob.h"

#define MS_FMP4_LIVE_STRIKES 3

typedef struct {
    uint32_t frag_ms; /* longest fragment; 0 = 500 */
    const char *log_ctx;
} ms_fmp4_live_cfg_t;

typedef struct ms_fmp4_live ms_fmp4_live_t;
typedef struct ms_fmp4_sub ms_fmp4_sub_t;

/* Opens a hub reader on loop. NULL on allocation failure. */
ms_fmp4_live_t *ms_fmp4_live_new(uv_loop_t *loop, ms_hub_t *hub, const ms_fmp4_live_cfg_t *cfg);
/* Loop thread: closes the reader, ends every subscriber (waking it) and
 * drops the creator's reference. */
void ms_fmp4_live_stop(ms_fmp4_live_t *l);
ms_fmp4_live_t *ms_fmp4_live_ref(ms_fmp4_live_t *l);
void ms_fmp4_live_unref(ms_fmp4_live_t *l); /* NULL is a no-op */

/* Any thread. A new subscriber with a queue of max_queue fragments (0 = 64).
 * wake(ud) is called (loop thread) after ms_fmp4_sub_next returned -EAGAIN,
 * once, when something is ready. Returns NULL with *err = -ESHUTDOWN
 * (stopped) or -ENOMEM. The subscriber holds a reference on l. */
ms_fmp4_sub_t *ms_fmp4_live_subscribe(ms_fmp4_live_t *l, uint32_t max_queue, void (*wake)(void *ud),
                                      void *ud, int *err);
/* Any thread (one caller at a time per subscriber). Returns 0 with *out (a
 * new reference: the next blob of the body, in order); -EAGAIN when nothing
 * is queued (wake will be called); -EPIPE when the subscriber was ended (too
 * slow, new tracks or timeline) or -ESHUTDOWN when the output stopped. */
int ms_fmp4_sub_next(ms_fmp4_sub_t *s, ms_blob_t **out);
/* Any thread. After it returns, wake is never called again. */
void ms_fmp4_sub_close(ms_fmp4_sub_t *s);
/* Fragments this subscriber lost to overflow. */
uint64_t ms_fmp4_sub_dropped(ms_fmp4_sub_t *s);

typedef struct {
    int ready; /* an init segment exists */
    int subscribers;
    uint64_t fragments; /* produced since start */
    uint64_t bytes;
} ms_fmp4_live_stats_t;
void ms_fmp4_live_stats(ms_fmp4_live_t *l, ms_fmp4_live_stats_t *out);

#endif
