/* Pure fragmented-MP4 reader (ISO/IEC 14496-12): the tracks of an init
 * segment (ftyp + moov) and the samples of one movie fragment (moof). Used
 * by the archive (MP4 export, JPEG at a time, RTSP replay) to read the
 * chunk files the DVR wrote, and fuzzed (fuzz/fuzz_fmp4_demux.c).
 *
 * Bytes may come from a torn or hostile file: every length is checked,
 * nothing asserts. No I/O, no globals; any thread. */
#ifndef MS_MEDIA_FMP4_DEMUX_H
#define MS_MEDIA_FMP4_DEMUX_H

#include <stddef.h>
#include <stdint.h>

#include "media/stream/frame.h"

#define MS_FMP4D_MAX_TRACKS 8

/* A byte span borrowed from the buffer given to ms_fmp4d_init. */
typedef struct {
    const uint8_t *p;
    size_t len;
} ms_fmp4d_span_t;

typedef struct {
    uint32_t id, timescale;
    uint32_t handler;                      /* hdlr handler_type ('vide', 'soun', ...) */
    uint32_t width, height;                /* tkhd, 16.16 fixed point */
    uint16_t language;                     /* mdhd packed ISO-639-2/T */
    uint32_t def_dur, def_size, def_flags; /* trex (8.8.3) */
    ms_fmp4d_span_t hdlr;                  /* whole hdlr box */
    ms_fmp4d_span_t xmhd;                  /* whole vmhd / smhd / nmhd box (or empty) */
    ms_fmp4d_span_t dinf;                  /* whole dinf box (or empty) */
    ms_fmp4d_span_t stsd;                  /* whole stsd box (sample entries) */
} ms_fmp4d_track_t;

typedef struct {
    int ntracks;
    ms_fmp4d_track_t t[MS_FMP4D_MAX_TRACKS];
} ms_fmp4d_init_t;

/* Parses the init segment p[0..len) (top-level boxes; moov required).
 * The spans in out borrow p. Returns 0 or -EINVAL. */
int ms_fmp4d_init(const uint8_t *p, size_t len, ms_fmp4d_init_t *out);
/* Index of the first video track ('vide'), else -1. */
int ms_fmp4d_video(const ms_fmp4d_init_t *in);

typedef struct {
    int track;      /* index into ms_fmp4d_init_t.t */
    uint64_t dts;   /* decode time in the track's timescale (tfdt + sums) */
    uint32_t dur;   /* sample duration */
    uint32_t size;  /* bytes */
    uint32_t flags; /* sample_flags (8.8.3.1); sync when !(flags & 0x10000) */
    int32_t cto;    /* composition time offset (pts - dts) */
    uint64_t off;   /* byte offset of the data: moof_off + base + data_offset + sum */
} ms_fmp4d_sample_t;

#define MS_FMP4D_SYNC(s) (!((s)->flags & 0x00010000u))

/* Samples of the moof box at p[0..len) (the whole box, header included)
 * that starts at file offset moof_off, in traf order, appended to *v
 * (capacity *cap, count *n; realloc'ed). The base data offset is the tfhd
 * base-data-offset when present, else the moof start (default-base-is-moof
 * and the first traf's implicit base, 8.8.7.1). At most max_samples are
 * accepted per call. Returns 0, -EINVAL (malformed) or -ENOMEM. */
int ms_fmp4d_moof(const ms_fmp4d_init_t *in, const uint8_t *p, size_t len, uint64_t moof_off,
                  ms_fmp4d_sample_t **v, size_t *n, size_t *cap);

/* Codec parameters of track t from its first sample entry (stsd): avc1/avc3
 * + avcC, hvc1/hev1 + hvcC (ISO/IEC 14496-15 5.3.3, 8.3.3: first SPS/PPS/
 * VPS of the arrays), mp4a + esds (ISO/IEC 14496-1 7.2.6.5-7: the
 * DecoderSpecificInfo = AudioSpecificConfig). Fills codec, kind,
 * clock_rate (the timescale), width/height, parameter sets, channels and
 * sample_rate (from the entry) and asc. Returns 0, -ENOTSUP (another
 * sample entry) or -EINVAL (malformed). */
int ms_fmp4d_params(const ms_fmp4d_track_t *t, ms_codec_params_t *out);

/* Box header at p (avail bytes): returns the header length (8 or 16) and
 * fills *size (whole box) and *type, or 0 when malformed or torn. A size
 * of 0 means "to the end" (avail). */
size_t ms_fmp4d_box(const uint8_t *p, size_t avail, uint64_t *size, uint32_t *type);

#define MS_FOURCC(a, b, c, d)                                                                      \
    (((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8) | (uint32_t)(d))

#endif
