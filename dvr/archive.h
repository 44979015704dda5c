/* Archive playback helpers on top of the DVR reading API (dvr/dvr.h):
 * the archive HLS playlist renderer (pure), the MP4 export (index ->
 * progressive MP4 served by byte ranges) and the keyframe at a time
 * (JPEG). docs/dvr.md "Reading side". Errors: 0 or a negative errno. */
#ifndef MS_DVR_ARCHIVE_H
#define MS_DVR_ARCHIVE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "dvr/dvr.h"
#include "media/stream/frame.h"
#include "util/buf.h"

/* ---- archive HLS playlist (dvr/playlist.c), RFC 8216 ------------------ */

typedef struct {
    int64_t from_ms;   /* window start (UTC ms) */
    int64_t dur_ms;    /* window length; ignored when event */
    int event;         /* 1: EVENT playlist growing to live (no ENDLIST) */
    int64_t gap_ms;    /* a hole longer than this is a discontinuity */
    int64_t target_ms; /* wanted segment length (segments start on keyframes) */
    const char *query; /* appended to every URI ("" or "?token=..."), borrowed */
} ms_dvr_pl_opts_t;

/* Renders the playlist of chunks v[0..n) (oldest first, as ms_dvr_chunks
 * returns them) into out. Pure: any thread, borrows everything.
 * - media segments are groups of whole fragments of one chunk starting on
 *   a keyframe fragment, URIs archive-seg-{id}-{start_ms}-{i}-{j}.m4s,
 *   init segments archive-init-{id}-{start_ms}.mp4 (EXT-X-MAP);
 * - the first segment starts at the last keyframe fragment at or before
 *   from_ms; VOD: the last ends at the fragment boundary nearest to
 *   first-segment-start + dur_ms;
 * - every segment has EXT-X-PROGRAM-DATE-TIME; a hole > gap_ms or a new
 *   init segment (other init length) gets EXT-X-DISCONTINUITY + EXT-X-MAP;
 * - event: segments of a chunk still being written are listed only once
 *   complete, so a listed segment never changes.
 * Returns the number of segments (>= 0) or -ENOMEM. */
int ms_dvr_playlist(const ms_dvr_chunk_t *v, size_t n, const ms_dvr_pl_opts_t *o, ms_buf_t *out);

/* Parses a segment name archive-seg-{id}-{start_ms}-{i}-{j}.m4s (1) or an
 * init name archive-init-{id}-{start_ms}.mp4 (2): returns 1 / 2, -EINVAL
 * otherwise. i, j may be NULL for init names. */
int ms_dvr_media_name(const char *name, int64_t *id, int64_t *start_ms, int64_t *i, int64_t *j);

/* ---- MP4 export (dvr/mp4export.c) ------------------------------------- */

typedef struct ms_dvr_export ms_dvr_export_t;

/* Any thread but a media loop (reads the index, the init segment and every
 * moof of the window: blocking). Builds the export of uid for
 * [from_ms, from_ms + dur_ms): starts at the last keyframe at or before
 * from_ms, covers dur_ms from there (samples trimmed by time), stops early
 * at a change of init segment. Returns 0, -ENOENT (nothing recorded in the
 * window), -ENOMEM, -EIO. *out is owned by the caller. */
int ms_dvr_export_open(const char *uid, int64_t from_ms, int64_t dur_ms, ms_dvr_export_t **out);
uint64_t ms_dvr_export_size(const ms_dvr_export_t *x);
/* Wall time (UTC ms) of the first sample. */
int64_t ms_dvr_export_start_ms(const ms_dvr_export_t *x);
/* Copies up to len bytes of the file at off into buf. One thread at a time
 * per export (it caches a descriptor). Returns the count (0 at the end) or
 * a negative errno (a chunk vanished or shrank: -EIO). */
ssize_t ms_dvr_export_read(ms_dvr_export_t *x, uint64_t off, uint8_t *buf, size_t len);
void ms_dvr_export_free(ms_dvr_export_t *x); /* NULL is a no-op */

/* ---- keyframe at a time (dvr/mp4export.c) ----------------------------- */

/* Any thread but a media loop. The video keyframe of uid nearest at or
 * before at_ms (searching back at most one hour): its payload in the frame
 * format of media/stream/frame.h (length-prefixed NAL units, new blob) and
 * codec params (codec, kind, clock rate; parameter sets are in-band).
 * *t_ms gets its wall time. -ENOENT when none. */
int ms_dvr_keyframe_at(const char *uid, int64_t at_ms, ms_codec_params_t *params,
                       ms_blob_t **payload, int64_t *t_ms);

/* ---- frame replay (dvr/replay.c), used by RTSP archive playback -------- */

typedef struct ms_dvr_replay ms_dvr_replay_t;

/* Blocking (index and file reads): any thread but a media loop; a replay is
 * used by one thread at a time. Opens the archive of uid at the last video
 * keyframe fragment at or before from_ms (or the first one after it when
 * nothing was recorded before). tracks[0..*ntracks) get the codec params
 * of the chunk's init segment (H.264, H.265, AAC; others are skipped),
 * *start_ms the wall time of the first frame. -ENOENT: nothing recorded at
 * or after from_ms (within an hour before it). *out is the caller's. */
int ms_dvr_replay_open(const char *uid, int64_t from_ms, ms_dvr_replay_t **out,
                       ms_codec_params_t tracks[MS_MAX_TRACKS], int *ntracks, int64_t *start_ms);
/* The next frame in wall-time order across tracks (new reference in *f):
 * frame.track indexes the tracks of open, pts/dts are in the track's clock
 * (the fMP4 timescale; wall time as tfdt carries it), wallclock_us is the
 * sample's wall time, MS_FRAME_KEY marks video sync samples (every audio
 * frame), MS_FRAME_DISCONT the first frame after a recording hole > 2 s.
 * Follows chunks written after the open (the archive grows to live).
 * Returns 1, 0 (nothing more recorded yet, or the next chunk has another
 * init segment: see ms_dvr_replay_ended) or a negative errno. */
int ms_dvr_replay_next(ms_dvr_replay_t *r, ms_frame_t **f);
/* 1 once the replay cannot continue (a change of init segment). */
int ms_dvr_replay_ended(const ms_dvr_replay_t *r);
void ms_dvr_replay_free(ms_dvr_replay_t *r); /* NULL is a no-op */

/* Reads exactly n bytes at off (pread, EINTR retried). 0, -EIO at end of
 * file, or a negative errno. Any thread. */
int ms_dvr_read_at(int fd, void *p, size_t n, uint64_t off);

#endif
