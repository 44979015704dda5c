/* HLS media playlist rendering (RFC 8216 section 4, with the Low-Latency
 * extensions of draft-pantos-hls-rfc8216bis: EXT-X-PART, EXT-X-PART-INF,
 * EXT-X-SERVER-CONTROL, EXT-X-PRELOAD-HINT). Pure: a description in, text
 * out; no clock, no I/O. Used by the live HLS output (media/hls/hls.c) and
 * reusable for archive playlists (no parts, ENDLIST). */
#ifndef MS_MEDIA_HLS_PLAYLIST_H
#define MS_MEDIA_HLS_PLAYLIST_H

#include <stdint.h>

#include "util/buf.h"

typedef struct {
    int64_t dur; /* 90 kHz ticks */
    int independent;
} ms_hls_pl_part_t;

typedef struct {
    int64_t msn;
    int64_t dur;                   /* 90 kHz ticks (complete segments) */
    int64_t pdt_us;                /* UTC of the first frame; 0 = no EXT-X-PROGRAM-DATE-TIME */
    int discont;                   /* EXT-X-DISCONTINUITY before it */
    uint32_t gen;                  /* fMP4: init segment init{gen}.mp4 */
    int complete;                  /* 0: the open segment (only parts, must be last) */
    const ms_hls_pl_part_t *parts; /* listed when nparts > 0 */
    int nparts;
} ms_hls_pl_seg_t;

typedef struct {
    int fmp4;
    uint32_t target_s;           /* EXT-X-TARGETDURATION */
    uint32_t part_target_ms;     /* 0 = no LL-HLS tags */
    int64_t disc_seq;            /* EXT-X-DISCONTINUITY-SEQUENCE */
    const ms_hls_pl_seg_t *segs; /* oldest first; msn of segs[0] is the media sequence */
    int nsegs;
    int64_t hint_msn; /* EXT-X-PRELOAD-HINT part{hint_msn}.{hint_part}; hint_part < 0 = none */
    int hint_part;
    int endlist;       /* EXT-X-ENDLIST */
    const char *query; /* appended as "?query" to every URI; NULL/"" = none */
} ms_hls_pl_t;

/* Appends the playlist text to out. Returns 0, -EINVAL (no segment) or
 * -ENOMEM. */
int ms_hls_pl_render(const ms_hls_pl_t *pl, ms_buf_t *out);

/* Copies playlist text `in` to out with "?query" appended to every URI (URI
 * lines and URI="..." attributes). Returns 0 or -ENOMEM. */
int ms_hls_pl_add_query(const char *in, size_t len, const char *query, ms_buf_t *out);

#endif
