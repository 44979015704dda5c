/* MPEG-2 Transport Stream muxer (ISO/IEC 13818-1). Pure: no I/O, no loop.
 *
 * One muxer per output (an HLS stream, a TS file): it keeps the continuity
 * counters of its PIDs, so consecutive writes form one valid stream.
 * Carried tracks: H.264 (stream_type 0x1B), H.265 (0x24), AAC in ADTS
 * (0x0F). Other tracks (G.711, ONVIF metadata) are skipped.
 *
 * PIDs: PAT 0, PMT 0x1000, elementary streams 0x100 + carried track order
 * (video first as declared). The PCR rides on the first video PID (or the
 * first audio PID when there is no video) and is sent with every frame of
 * that PID.
 *
 * Times: frame pts/dts are in the track clock (see media/stream/frame.h);
 * the muxer converts them to 90 kHz, adds `offset_90k` (the caller's
 * timeline shift, e.g. to keep timestamps continuous over a discontinuity)
 * and wraps to 33 bits.
 *
 * Threads: a muxer is owned by one thread at a time. */
#ifndef MS_MEDIA_TS_TS_H
#define MS_MEDIA_TS_TS_H

#include <stddef.h>
#include <stdint.h>

#include "media/stream/frame.h"
#include "util/buf.h"

#define MS_TS_PACKET  188
#define MS_TS_PID_PMT 0x1000
#define MS_TS_PID_ES0 0x100

typedef struct ms_ts_mux ms_ts_mux_t;

/* Copies the params. Returns NULL on allocation failure or when no track
 * can be carried (-> nothing to mux). */
ms_ts_mux_t *ms_ts_mux_new(const ms_codec_params_t *tracks, int ntracks);
void ms_ts_mux_free(ms_ts_mux_t *m); /* NULL is a no-op */

/* 1 when track index `track` is carried, else 0. */
int ms_ts_mux_carries(const ms_ts_mux_t *m, int track);
/* PID of a carried track, or -1. */
int ms_ts_mux_pid(const ms_ts_mux_t *m, int track);

/* Appends one PAT and one PMT packet (2 x 188 bytes) to out. Write them at
 * the start of every segment / part that a player may start from.
 * Returns 0 or -ENOMEM (out->err). */
int ms_ts_mux_write_tables(ms_ts_mux_t *m, ms_buf_t *out);

/* Appends the frame as one PES (2.4.3.6) split in TS packets. Borrows f.
 * H.264/H.265: the 4-byte length prefixes become Annex-B start codes, an
 * AUD is inserted first, and a keyframe without in-band parameter sets gets
 * them from the track params. AAC: an ADTS header from the
 * AudioSpecificConfig is prepended. Returns 0, -EINVAL (track not carried,
 * malformed payload) or -ENOMEM. */
int ms_ts_mux_write_frame(ms_ts_mux_t *m, const ms_frame_t *f, int64_t offset_90k, ms_buf_t *out);

/* Bytes that ms_ts_mux_write_frame() would append for f (a whole number of
 * packets; the offset does not change it), or 0 when it would write nothing
 * (track not carried, malformed payload). Lets a caller allocate a part at
 * its exact size before writing it. Borrows f. */
size_t ms_ts_mux_frame_size(const ms_ts_mux_t *m, const ms_frame_t *f);

/* CRC-32/MPEG-2 (Annex A): poly 0x04C11DB7, init 0xFFFFFFFF, no reflection. */
uint32_t ms_ts_crc32(const uint8_t *p, size_t n);

/* Converts t from clock `rate` to 90 kHz (rounding toward -inf). */
int64_t ms_ts_to_90k(int64_t t, uint32_t rate);

#endif
