/* Fragmented MP4 muxer (ISO/IEC 14496-12 with the CMAF constraints of
 * ISO/IEC 23000-19; sample entries per ISO/IEC 14496-15 (avc1/hvc1) and
 * ISO/IEC 14496-14 (mp4a + esds)). Pure: no I/O, no loop, no clock.
 *
 * An init segment describes the tracks; media fragments (moof + mdat) carry
 * any number of samples of any number of tracks. The caller supplies each
 * sample's duration (from the next frame's dts, which is why live users
 * keep one frame per track back) and the decode time of each run (tfdt).
 * Used by live HLS (each LL-HLS part is one fragment), live fMP4 output and
 * the DVR chunk writer.
 *
 * Track ids are 1 + the index among carried tracks (H.264, H.265, AAC);
 * G.711 and ONVIF tracks are not carried. Timescale: the track clock_rate
 * (90000 for video, the sample rate for AAC), so frame times need no
 * conversion.
 *
 * Threads: a muxer is owned by one thread at a time; write_fragment does
 * not modify it. */
#ifndef MS_MEDIA_FMP4_FMP4_H
#define MS_MEDIA_FMP4_FMP4_H

#include <stddef.h>
#include <stdint.h>

#include "media/stream/frame.h"
#include "util/buf.h"

typedef struct ms_fmp4 ms_fmp4_t;

/* Copies the params. NULL on allocation failure or when no track can be
 * carried. */
ms_fmp4_t *ms_fmp4_new(const ms_codec_params_t *tracks, int ntracks);
void ms_fmp4_free(ms_fmp4_t *m); /* NULL is a no-op */

int ms_fmp4_carries(const ms_fmp4_t *m, int track);
uint32_t ms_fmp4_track_id(const ms_fmp4_t *m, int track);  /* 0 when not carried */
uint32_t ms_fmp4_timescale(const ms_fmp4_t *m, int track); /* 0 when not carried */

/* Appends ftyp + moov (mvhd, trak per carried track with empty sample
 * tables, mvex/trex). Returns 0, -EINVAL (a video track without SPS/PPS, an
 * AAC track without AudioSpecificConfig) or -ENOMEM. */
int ms_fmp4_write_init(const ms_fmp4_t *m, ms_buf_t *out);

typedef struct {
    const ms_frame_t *frame; /* borrowed; payload copied into mdat as is */
    uint32_t duration;       /* in the track timescale */
} ms_fmp4_sample_t;

typedef struct {
    int track;         /* index of the track (as given to ms_fmp4_new) */
    uint64_t base_dts; /* tfdt baseMediaDecodeTime of the first sample */
    const ms_fmp4_sample_t *samples;
    size_t nsamples;
} ms_fmp4_run_t;

/* Appends one fragment: moof (mfhd seq, one traf per non-empty run: tfhd
 * default-base-is-moof, tfdt v1, trun v1 with size, duration, flags and
 * signed composition offsets (pts - dts)) then one mdat holding the runs'
 * samples in order. Returns 0, -EINVAL (no samples, track not carried) or
 * -ENOMEM. */
int ms_fmp4_write_fragment(const ms_fmp4_t *m, uint32_t seq, const ms_fmp4_run_t *runs, int nruns,
                           ms_buf_t *out);

/* Bytes ms_fmp4_write_fragment() appends for these runs (lets a caller
 * allocate the fragment at its exact size), or 0 when it would fail
 * (no samples, track not carried). */
size_t ms_fmp4_fragment_size(const ms_fmp4_t *m, const ms_fmp4_run_t *runs, int nruns);

/* Longest sample duration ever written, in seconds: a longer step between
 * two frames is a hole or a timestamp fault, not a sample. */
#define MS_FMP4_MAX_SAMPLE_S 10

/* The duration of the sample at dts whose track's next frame is at next_dts
 * (-1: unknown), in the track timescale (rate): next_dts - dts when that is
 * in (0, MS_FMP4_MAX_SAMPLE_S s]; else last (the track's previous
 * duration) when it is in that range; else the nominal frame (1024 for AAC,
 * 20 ms for other audio, 1/25 s for video). Never 0, never absurd, so no
 * muxer writes a sample of nonsensical length whatever the timestamps
 * (media/stream/frame.h). Pure; any thread. */
uint32_t ms_fmp4_sample_duration(int64_t dts, int64_t next_dts, uint32_t last, uint32_t rate,
                                 ms_codec_t codec);

/* Appends a 'styp' box (CMAF segment type), optional before fragments. */
void ms_fmp4_write_styp(ms_buf_t *out);

#endif
