/* Media frames: one access unit each, immutable once published.
 *
 * Payload formats (the contract between ingest and every muxer):
 *  - H.264 / H.265: NAL units, each preceded by a 4-byte big-endian length
 *    (AVCC/HVCC style, no start codes, no emulation prevention changes).
 *    A keyframe (MS_FRAME_KEY) always carries its parameter sets in-band
 *    (VPS/SPS/PPS before the IRAP/IDR NAL): ingest inserts them when the
 *    camera sent them only in SDP, so every segment and every new reader can
 *    start on any keyframe. AUD NALs are stripped.
 *  - AAC: one raw AAC frame (no ADTS header); the AudioSpecificConfig lives
 *    in the track's codec params.
 *  - G.711 A-law / mu-law: raw 8-bit samples.
 *  - ONVIF metadata (application track): the XML fragment as received.
 *
 * Times: pts/dts are 64-bit, in the track's clock (clock_rate units: 90000
 * for video, the sample rate for audio), on a timeline shared by all tracks
 * of the stream (equal values mean the same instant, within A/V sync
 * accuracy). dts is monotonic per track. A frame with MS_FRAME_DISCONT
 * starts a new timeline (after a reconnect or a source change): muxers mark
 * a discontinuity and must not assume continuity across it.
 *
 * wallclock_us is the capture time in UTC microseconds: from RTCP SR when the
 * camera sends it, else the arrival time mapped onto the timeline.
 *
 * Ownership: ms_frame_new() returns a frame with one reference; refcount is
 * atomic so frames may be released on any thread, but a frame is published
 * (and its payload written) only on its stream's worker loop. */
#ifndef MS_MEDIA_STREAM_FRAME_H
#define MS_MEDIA_STREAM_FRAME_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    MS_CODEC_NONE = 0,
    MS_CODEC_H264,
    MS_CODEC_H265,
    MS_CODEC_AAC,
    MS_CODEC_PCMA, /* G.711 A-law */
    MS_CODEC_PCMU, /* G.711 mu-law */
    MS_CODEC_ONVIF_META,
} ms_codec_t;

typedef enum {
    MS_TRACK_VIDEO = 0,
    MS_TRACK_AUDIO = 1,
    MS_TRACK_APP = 2,
} ms_track_kind_t;

#define MS_CHANNEL_VIDEO (1u << MS_TRACK_VIDEO)
#define MS_CHANNEL_AUDIO (1u << MS_TRACK_AUDIO)
#define MS_CHANNEL_APP   (1u << MS_TRACK_APP)

#define MS_FRAME_KEY     0x01u /* video IDR/IRAP (audio frames: always set) */
#define MS_FRAME_DISCONT 0x02u /* first frame of a new timeline */
#define MS_FRAME_CORRUPT 0x04u /* reserved: never published today (lossy frames are dropped) */

#define MS_MAX_TRACKS 4

typedef struct ms_frame {
    atomic_int refs;
    uint8_t track; /* index into the stream's tracks */
    uint8_t flags;
    uint16_t reserved;
    uint32_t size;
    uint32_t cap; /* payload bytes the allocation holds (>= size); set by ms_frame_new */
    int64_t pts;
    int64_t dts;
    int64_t wallclock_us;
    uint8_t *data; /* points into the same allocation, after the header */
} ms_frame_t;

/* New frame with `size` payload bytes (copied from data when data != NULL).
 * NULL on allocation failure. f->cap may exceed size: the allocation is
 * rounded up to a size class (at most 1/8 more, see frame.c), and a frame
 * still private to its creator may use the room up to cap.
 *
 * Allocation: frames of up to 256 KiB come from a small cache of the
 * calling thread (recently freed frames, by size class) before malloc; the
 * cache belongs to threads that allocate frames (workers) and is bounded in
 * bytes per thread (MS_FRAME_CACHE_BYTES). A frame freed on a thread that
 * never allocated one goes back to free() at once, so frames may still be
 * released on any thread. Any thread. */
ms_frame_t *ms_frame_new(const void *data, size_t size);
#define MS_FRAME_CACHE_BYTES (1u << 20)
/* Frees the calling thread's cached frame memory (e.g. before the thread
 * idles for long; threads that exit do it by themselves). Any thread. */
void ms_frame_cache_flush(void);
/* Resizes the payload of a frame still private to its creator (one
 * reference, never published), e.g. one being assembled in place: keeps the
 * first min(old, new) bytes, sets f->size = size and returns the frame
 * (possibly moved: use the returned pointer; unchanged when size <= f->cap),
 * or NULL on allocation failure (f unchanged). The creator may later lower
 * f->size without resizing (the allocation stays as it is). Creator's
 * thread only. */
ms_frame_t *ms_frame_resize(ms_frame_t *f, size_t size);
ms_frame_t *ms_frame_ref(ms_frame_t *f);
void ms_frame_unref(ms_frame_t *f); /* NULL is a no-op */

/* Codec parameters of one track. A value type (copyable); sizes are fixed
 * so that no ownership question arises when it is copied between threads. */
#define MS_PARAM_SET_MAX 512
typedef struct {
    ms_codec_t codec;
    ms_track_kind_t kind;
    uint32_t clock_rate;
    /* video */
    int width, height;
    int profile, level; /* profile_idc / general_profile_idc, level_idc */
    uint8_t vps[MS_PARAM_SET_MAX], sps[MS_PARAM_SET_MAX], pps[MS_PARAM_SET_MAX];
    uint16_t vps_len, sps_len, pps_len;
    /* audio */
    int sample_rate, channels;
    uint8_t asc[64]; /* AAC AudioSpecificConfig */
    uint16_t asc_len;
} ms_codec_params_t;

const char *
ms_codec_name(ms_codec_t c); /* "h264", "h265", "aac", "pcma", "pcmu", "onvif", "none" */
ms_track_kind_t ms_codec_kind(ms_codec_t c);

#endif
