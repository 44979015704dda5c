/* Live snapshots of one stream: videoshot.jpg (full size), preview.jpg
 * (small: preview_width wide, aspect kept, even dimensions) and preview.mp4
 * (the latest keyframe as a one-sample fMP4: init segment + one fragment,
 * ISO/IEC 14496-12; no decode).
 *
 * The object is a reader of the stream hub on the stream's worker loop; it
 * keeps only the latest video keyframe (a reference) and its codec params.
 * JPEGs are made on demand: the keyframe is decoded in-process (libavcodec
 * H.264 / H.265 decoder), encoded once at full size and once scaled
 * (libswscale) with libavcodec's MJPEG encoder, and both blobs are cached
 * for that keyframe. However many clients ask, each keyframe is decoded at
 * most once; requests that arrive while the decode runs wait for it. The
 * decode runs on libuv's thread pool (uv_queue_work), never on the worker
 * loop itself.
 *
 * Threads: ms_snapshot_new/ms_snapshot_stop run on the worker loop. get,
 * get_mp4, decodes and ref/unref are thread-safe. `ready` callbacks run on
 * the worker loop. Lifetime: refcounted like media/hls/hls.h; ms_snapshot_new
 * returns one reference owned by the stream. */
#ifndef MS_MEDIA_SNAPSHOT_SNAPSHOT_H
#define MS_MEDIA_SNAPSHOT_SNAPSHOT_H

#include <stdint.h>
#include <uv.h>

#include "media/stream/hub.h"
#include "util/blob.h"

typedef struct {
    int preview_width; /* 0 = 320; never larger than the picture */
    int quality;       /* MJPEG qscale 2 (best) .. 31; 0 = 4 */
    const char *log_ctx;
} ms_snapshot_cfg_t;

typedef struct ms_snapshot ms_snapshot_t;

/* Opens a hub reader on loop (the hub's loop). NULL on allocation failure. */
ms_snapshot_t *ms_snapshot_new(uv_loop_t *loop, ms_hub_t *hub, const ms_snapshot_cfg_t *cfg);
/* Loop thread: closes the reader, fires pending ready callbacks (the retry
 * then gets -ESHUTDOWN) and drops the creator's reference. Blobs already
 * handed out stay valid. */
void ms_snapshot_stop(ms_snapshot_t *s);
ms_snapshot_t *ms_snapshot_ref(ms_snapshot_t *s);
void ms_snapshot_unref(ms_snapshot_t *s); /* NULL is a no-op */

/* JPEG of the latest keyframe: preview 0 = full size, 1 = preview size.
 * Returns 0 with *out (new reference, image/jpeg);
 * -EAGAIN when a decode is in flight (or was started by this call): ready(ud)
 *   is then called exactly once on the loop thread when it ends; ask again;
 * -ENOENT when no video keyframe has arrived yet (HTTP 503);
 * -EIO when this keyframe could not be decoded (HTTP 500; the next keyframe
 *   is tried afresh);
 * -ESHUTDOWN after stop; -ENOMEM. */
int ms_snapshot_get(ms_snapshot_t *s, int preview, ms_blob_t **out, void (*ready)(void *ud),
                    void *ud);

/* The latest keyframe as a playable MP4 (ftyp+moov, then moof+mdat), built
 * once per keyframe. Returns 0 with *out (new reference, video/mp4),
 * -ENOENT, -ESHUTDOWN or -ENOMEM. */
int ms_snapshot_get_mp4(ms_snapshot_t *s, ms_blob_t **out);

/* Decodes run so far (any thread), for tests and /metrics. */
uint64_t ms_snapshot_decodes(ms_snapshot_t *s);

/* Pure part (media/snapshot/jpeg.c): decodes one keyframe (frame payload
 * format of media/stream/frame.h) of an H.264/H.265 track and encodes it as
 * JPEG at full size (*full) and scaled to preview_width (*preview); both are
 * new references. Any thread; blocking (tens of ms). Returns 0, -EINVAL
 * (codec not supported), -EIO (decode failed) or -ENOMEM. */
int ms_snapshot_encode(const ms_codec_params_t *p, const uint8_t *payload, size_t len,
                       int preview_width, int quality, ms_blob_t **full, ms_blob_t **preview);

#endif
