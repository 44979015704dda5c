/* Pure writer of the head of a progressive MP4 file (ISO/IEC 14496-12:
 * ftyp, moov with complete sample tables, then the mdat header) for media
 * whose bytes already exist elsewhere (the archive's fMP4 chunks): the
 * caller streams the mdat payload itself. Used by the MP4 export
 * (dvr/mp4export.c, docs/dvr.md "MP4 export").
 *
 * No I/O, no globals; any thread. */
#ifndef MS_MEDIA_FMP4_PROGRESSIVE_H
#define MS_MEDIA_FMP4_PROGRESSIVE_H

#include <stddef.h>
#include <stdint.h>

#include "media/fmp4/demux.h"
#include "util/buf.h"

typedef struct {
    uint32_t dur;   /* in the track's timescale */
    uint32_t size;  /* bytes */
    uint32_t flags; /* sample_flags; sync when !(flags & 0x10000) */
    int32_t cto;    /* pts - dts */
    uint64_t off;   /* offset of the bytes inside the mdat payload */
} ms_mp4p_sample_t;

typedef struct {
    const ms_fmp4d_track_t *src; /* borrowed: id, timescale, hdlr, stsd... */
    const ms_mp4p_sample_t *s;   /* borrowed, decode order */
    size_t n;
} ms_mp4p_track_t;

/* Appends ftyp + moov + the 16-byte mdat header (64-bit largesize) of a
 * file whose mdat payload is mdat_payload bytes to out. Chunk offsets
 * (co64) are absolute file offsets: header length + sample.off; samples
 * of one track at consecutive offsets form one chunk (8.7.4 stsc). Tables:
 * stts (8.6.1.2), ctts v1 when any cto != 0 (8.6.1.3), stss for video
 * tracks with non-sync samples (8.6.2), stsz (8.7.3), stsc, co64 (8.7.5).
 * creation: UTC unix seconds for mvhd/tkhd/mdhd. Tracks with no sample are
 * skipped. Returns the header length (> 0), -EINVAL (no track with
 * samples) or -ENOMEM. */
int64_t ms_mp4p_write_head(const ms_mp4p_track_t *t, int nt, uint64_t mdat_payload,
                           int64_t creation, ms_buf_t *out);

#endif
