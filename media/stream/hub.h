/* Stream hub: the meeting point of one source and many readers.
 *
 * The source (RTSP client, later RTMP publisher, archive) declares tracks and
 * publishes frames; readers (HLS muxer, DVR recorder, RTSP server sessions)
 * each get a bounded ring of frame references. Nothing is copied per reader.
 *
 * Threads: a hub lives on its stream's worker loop. Every function here is
 * called on that loop, except those marked "any thread" (which only touch
 * atomics or take the hub's info lock).
 *
 * Readers: a new reader starts with the GOP cache (refs back to the last
 * video keyframe, all tracks interleaved as published), so it can begin
 * decoding at once. When its ring is full at publish time the ring is
 * emptied, the dropped frames are counted, and the reader resumes at the next
 * video keyframe (docs/architecture.md "Data flow"; nginx-rtmp's resync). The owner of a
 * reader that overflows repeatedly may close it (ms_reader_overflows()).
 *
 * Callback: on_frames runs synchronously inside ms_hub_publish() (and inside
 * ms_hub_reader_open() when the GOP cache is non-empty) after frames were
 * queued; the reader may pop them right there or later. on_tracks runs when
 * the source declares a new set of tracks (a (re)connect); frames after it
 * use the new params. A callback must not close another reader; closing its
 * own reader from inside a callback is allowed. */
#ifndef MS_MEDIA_STREAM_HUB_H
#define MS_MEDIA_STREAM_HUB_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "media/stream/frame.h"

typedef struct ms_hub ms_hub_t;
typedef struct ms_reader ms_reader_t;

typedef struct {
    uint32_t queue_frames; /* ring bound (slots are allocated as frames queue up); 0 = 1024;
                              the ring also holds at most 2 x the hub's limit bytes */
    int prompt; /* a viewer behind it wants each frame as soon as it arrives (see below) */
    void (*on_frames)(ms_reader_t *r, void *ud);
    void (*on_tracks)(ms_reader_t *r, void *ud);
    void (*on_batch_end)(ms_reader_t *r, void *ud); /* may be NULL; ms_hub_batch_end() */
    uint32_t batch_max_ms; /* 0, or: a batched source reads at least this often while the
                              reader is open (the DVR recorder: a bounded kill -9 loss) */
    void *ud;
} ms_reader_opts_t;

/* Snapshot of the hub for other threads (API, metrics). */
typedef struct {
    int ntracks;
    ms_codec_params_t tracks[MS_MAX_TRACKS];
    uint32_t generation;   /* bumped by every ms_hub_set_tracks() */
    int64_t last_frame_us; /* monotonic time of the last published frame, 0 = never */
    uint64_t frames_in;    /* frames published since the hub was created */
    uint64_t bytes_in;
    int64_t gop_bytes; /* bytes held by the GOP cache */
    int readers;
    /* Keyframe waits (see "Limits" below). */
    int64_t last_key_us;  /* monotonic time of the last video keyframe, 0 = none yet */
    uint64_t limit_hits;  /* times a buffer waiting for a keyframe hit its cap */
    int64_t limit_hit_us; /* monotonic time of the last hit, 0 = never */
    char limit_what[96];  /* what the last hit did ("HLS segment cut at 32 MB") */
    int limit_waiting;    /* no video keyframe came since the last hit */
} ms_hub_info_t;

ms_hub_t *ms_hub_new(const char *log_ctx);
/* All readers must have been closed. Releases the GOP cache. */
void ms_hub_free(ms_hub_t *hub);

/* Limits. Every per-stream buffer that waits for a video keyframe (the GOP
 * cache here, the readers' rings, and the buffers of the readers
 * themselves: the HLS open segment, the live MP4 kept fragments and
 * subscriber queues, the DVR fragment and pre-event buffer) holds at most
 * max_bytes and max_ms of media; past that it cuts, drops or resynchronises
 * at the next keyframe and reports it with ms_hub_note_limit(), so a camera
 * that stops sending keyframes cannot grow memory without bound. Defaults:
 * MS_HUB_DEF_MAX_BYTES, MS_HUB_DEF_MAX_MS (the node's keyframe_wait_mb and
 * keyframe_wait_s, docs/config.md). set_limits: loop, before readers open
 * (0 = default). ms_hub_limit_bytes/ms: loop. */
#define MS_HUB_DEF_MAX_BYTES (32 * 1024 * 1024)
#define MS_HUB_DEF_MAX_MS    30000
void ms_hub_set_limits(ms_hub_t *hub, int64_t max_bytes, int64_t max_ms);
int64_t ms_hub_limit_bytes(const ms_hub_t *hub);
int64_t ms_hub_limit_ms(const ms_hub_t *hub);
/* Loop: a buffer hit its cap; `what` says what was done (copied, e.g. "HLS
 * segment cut at 32 MB"). Counted in ms_hub_info_t.limit_hits. */
void ms_hub_note_limit(ms_hub_t *hub, const char *what);

/* Source side. set_tracks declares the tracks of a new session (copying the
 * params) and clears the GOP cache; the next frame should carry
 * MS_FRAME_DISCONT. update_params replaces one track's params (in-band
 * parameter set change, resolution learned from SPS). Return 0 or -EINVAL
 * (set_tracks: -ENOMEM too, the previous tracks then stay). */
int ms_hub_set_tracks(ms_hub_t *hub, const ms_codec_params_t *tracks, int ntracks);
int ms_hub_update_params(ms_hub_t *hub, int track, const ms_codec_params_t *p);
/* Clears tracks (source gone); readers get on_tracks with ntracks == 0. */
void ms_hub_reset(ms_hub_t *hub);
/* Borrows f: every reader that queues it takes its own reference. */
void ms_hub_publish(ms_hub_t *hub, ms_frame_t *f);
/* The source delivered what one batched read brought (see "Prompt delivery"
 * below): readers that hold frames back to group them (the DVR recorder)
 * pass them on now (opts.on_batch_end), so a batch reaches the disk at once
 * and not one fragment duration later. A no-op when nothing was published
 * since the last call. Loop. */
void ms_hub_batch_end(ms_hub_t *hub);

/* Loop-side accessors (valid until the next set_tracks/update_params). */
int ms_hub_ntracks(const ms_hub_t *hub);
const ms_codec_params_t *ms_hub_track(const ms_hub_t *hub, int track);
uint32_t ms_hub_generation(const ms_hub_t *hub);

/* Any thread. */
void ms_hub_get_info(ms_hub_t *hub, ms_hub_info_t *out);

/* Output accounting, any thread: viewers currently attached (HLS clients,
 * RTSP sessions...) and bytes delivered to them. */
void ms_hub_clients_add(ms_hub_t *hub, int delta);
int ms_hub_clients(ms_hub_t *hub);
void ms_hub_bytes_out_add(ms_hub_t *hub, uint64_t n);
uint64_t ms_hub_bytes_out(ms_hub_t *hub);

/* Prompt delivery. A source may read its camera in batches (the node's
 * ingest_batch_ms) while nobody needs frames the moment they arrive: cameras
 * that are only recorded, or watched over classic HLS (whose segments last
 * seconds), cost far fewer wakeups and system calls that way. A viewer that
 * does need them asks for prompt delivery: a reader opened with
 * opts.prompt (an RTSP or live MP4 viewer) for as long as it is open, or an
 * output serving many clients (LL-HLS) until a time it renews with every
 * request. ms_hub_want_prompt: any thread. ms_hub_prompt_wanted: loop. */
void ms_hub_want_prompt(ms_hub_t *hub, int64_t until_mono_ms);
int ms_hub_prompt_wanted(const ms_hub_t *hub, int64_t now_mono_ms);
/* The smallest opts.batch_max_ms of the open readers, 0 when none asks for
 * one: a source reading in batches reads at least that often (the reads stay
 * batched). Walks the readers (a handful). Loop. */
uint32_t ms_hub_batch_max_ms(const ms_hub_t *hub);

/* Reader side. */
ms_reader_t *ms_hub_reader_open(ms_hub_t *hub, const ms_reader_opts_t *opts);
void ms_hub_reader_close(ms_reader_t *r); /* releases queued frames */
/* Returns the next frame (a reference the caller owns) or NULL when empty. */
ms_frame_t *ms_reader_pop(ms_reader_t *r);
uint32_t ms_reader_queued(const ms_reader_t *r);
uint64_t ms_reader_dropped(const ms_reader_t *r);   /* frames dropped by overflow */
uint32_t ms_reader_overflows(const ms_reader_t *r); /* times the ring overflowed */
ms_hub_t *ms_reader_hub(const ms_reader_t *r);
/* Changes opts.prompt of an open reader (loop). */
void ms_reader_set_prompt(ms_reader_t *r, int prompt);

#endif
