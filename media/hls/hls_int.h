/* Internal state of the live HLS output (media/hls/hls.h), shared by the
 * public/thread-safe side (hls.c) and the loop-side segmenter
 * (segmenter.c). Not a public header.
 *
 * Ownership and threads: everything below `lock` that HTTP threads read
 * (segments, init blobs, the cached playlist, waiters, counters) is written
 * by the loop thread under `lock` and read by other threads under `lock`,
 * which they hold only to copy references. The loop thread may read the
 * segment list without the lock (it is the only writer). The muxing state
 * (loop side) is touched by the loop thread only. */
#ifndef MS_MEDIA_HLS_HLS_INT_H
#define MS_MEDIA_HLS_HLS_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "media/fmp4/fmp4.h"
#include "media/hls/hls.h"
#include "media/ts/ts.h"
#include "util/buf.h"

/* Segments kept after leaving the window while the output is watched (a
 * playlist was asked within HLS_WATCHED_SEGS target durations): a player
 * that loaded the playlist just before a segment left it may still ask for
 * it. Unwatched, nobody holds a playlist listing them: freed at once (an
 * HLS output of a camera nobody watches costs its window only). */
#define HLS_KEEP_EXPIRED    2
#define HLS_WATCHED_SEGS(h) ((int64_t)(h)->cfg.window + 2)
#define HLS_PART_SEGS       3 /* complete segments whose parts are listed */
#define HLS_MAX_INITS       4
#define HLS_TICK_MS         250 /* expires blocked requests (deadlines of seconds) */
/* An LL-HLS request (blocking reload, part) asks the source for prompt
 * delivery this long (media/stream/hub.h); clients renew it every part. */
#define HLS_PROMPT_HOLD_MS 5000
#define HLS_FMP4_MAX       512 /* pending samples per track in one part */

typedef struct {
    ms_blob_t *blob; /* NULL once dropped (old segments) */
    int64_t dur;     /* 90 kHz */
    int independent;
} hls_part_t;

typedef struct {
    int64_t msn;
    int64_t start; /* 90 kHz output time */
    int64_t dur;
    int64_t pdt_us;
    int discont;
    uint32_t gen;
    int complete;
    hls_part_t *parts; /* the segment's bytes: served as this list, never copied */
    int nparts, cap;
    size_t bytes;
} hls_seg_t;

typedef struct hls_waiter {
    struct hls_waiter *next;
    int64_t msn;
    int part;
    int64_t deadline_ms;
    void (*cb)(void *ud);
    void *ud;
} hls_waiter_t;

typedef struct {
    uint32_t gen;
    ms_blob_t *blob;
} hls_init_t;

/* A frame queued for the open TS part and the bytes it will take there
 * (ms_ts_mux_frame_size, computed when it is queued: its payload is still
 * in the cache then, and the part's size is known without a pass over
 * cold frames when it closes). */
typedef struct {
    ms_frame_t *f;
    size_t ts_bytes;
} hls_tsq_t;

struct ms_hls {
    atomic_int refs;
    char ctx[128];
    uv_loop_t *loop;
    ms_hub_t *hub;
    ms_reader_t *reader;
    uv_timer_t timer;
    ms_hls_cfg_t cfg;

    pthread_mutex_t lock;
    /* --- guarded by lock --- */
    int stopped;
    ms_hls_format_t format; /* AUTO until the first track set */
    hls_seg_t **segs;       /* oldest first; the last one may be open */
    int nsegs, segs_cap;
    int nlisted_from; /* index of the first listed segment in segs */
    hls_init_t inits[HLS_MAX_INITS];
    ms_blob_t *playlist; /* cached text for the state below, without query */
    int64_t pl_open_msn; /* msn of the open segment the cached playlist shows */
    int pl_open_parts;   /* its parts */
    int pl_ready;
    uint32_t pl_target_s; /* EXT-X-TARGETDURATION (set with the segment list) */
    hls_waiter_t *waiters;
    uint64_t segments_total, bytes_total;
    int64_t held_bytes; /* bytes of the parts of every segment in segs */
    uint32_t held_parts;
    int64_t disc_seq;
    int64_t last_pl_ms; /* ms_mono_ms() of the last playlist request, 0 none */
    ms_hls_latency_t lat;

    /* --- loop thread only --- */
    uint32_t target_s;
    int vtrack, atrack; /* hub track indexes carried, -1 none */
    int ntracks;
    uint32_t rate[MS_MAX_TRACKS];
    uint32_t gen;
    int next_discont;
    int64_t next_msn;
    ms_ts_mux_t *ts;
    ms_fmp4_t *mp4;
    uint32_t frag_seq;
    /* timeline: out90 = to90k(dts) + off90 */
    int have_timeline;
    int64_t off90;
    int seen[MS_MAX_TRACKS]; /* track produced a frame in this timeline */
    int64_t last_end90;      /* end of the last frame written (driver track) */
    int64_t last_dur90;      /* last driver frame interval */
    /* current part */
    hls_seg_t *cur;
    int64_t part_start90;
    int part_independent;
    int part_ended;     /* closed early; the next driver frame opens a part */
    int64_t part_rx_us; /* reception time of the first frame of the part */
    /* TS: the frames of the open part (references, in arrival order). The
     * part is muxed when it closes, straight into a blob of its exact size
     * (ms_ts_mux_frame_size): no part buffer per stream and no copy of the
     * part into its blob. The frames are held by the GOP cache anyway. */
    hls_tsq_t *tsq;
    int ntsq, tsq_cap;
    size_t tsq_bytes; /* their TS bytes (sum of the entries' ts_bytes) */
    /* fMP4: the fragment of the part being closed, built at its exact size
     * from the pending samples below (segmenter.c build_fmp4_part). Earlier
     * builds kept a part buffer per stream and copied each part into its
     * blob; building in place and shrinking the buffer into the blob was
     * measured to fragment the heap; an exact-size allocation does neither. */
    ms_blob_t *part_blob;
    ms_frame_t **pend[2]; /* fMP4 only (allocated on first use): [0] video, [1] audio */
    int64_t *pend_dts[2]; /* output dts in track timescale */
    int npend[2];
    int64_t last_adur; /* last audio sample duration (track timescale) */
};

/* segmenter.c (loop thread) */
void ms_hls_seg_on_frames(ms_reader_t *r, void *ud);
void ms_hls_seg_on_tracks(ms_reader_t *r, void *ud);
void ms_hls_seg_release(ms_hls_t *h); /* frees loop-side muxing state */

/* hls.c */
/* Publishes a change of the segment list (loop thread, takes the lock):
 * drops the cached playlist text (re-rendered by the next request) and fires
 * satisfied waiters. */
void ms_hls_republish(ms_hls_t *h);
void ms_hls_seg_free(hls_seg_t *s);

#endif
