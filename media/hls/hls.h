/* Live HLS output of one stream (RFC 8216, with the Low-Latency HLS
 * extensions of draft-pantos-hls-rfc8216bis: EXT-X-PART, EXT-X-PRELOAD-HINT,
 * EXT-X-SERVER-CONTROL CAN-BLOCK-RELOAD, _HLS_msn/_HLS_part).
 *
 * One muxer per stream, not per client: it is a reader of the stream hub on
 * the stream's worker loop and produces immutable refcounted blobs
 * (segments, parts, init segment) that every HTTP client shares.
 *
 * Segments are cut on video keyframes once target_duration has elapsed;
 * parts of ~part_duration are cut inside segments (a segment's bytes are the
 * concatenation of its parts). Format: MPEG-TS (ISO/IEC 13818-1) for H.264
 * with AAC; fMP4/CMAF (ISO/IEC 14496-12) for H.265 (and for any stream when
 * format = fmp4). G.711 and ONVIF tracks are not carried in HLS. A sliding
 * window of `window` segments is kept; a new timeline (MS_FRAME_DISCONT or a
 * new set of tracks) gets EXT-X-DISCONTINUITY. Every segment has
 * EXT-X-PROGRAM-DATE-TIME from the frames' wallclock.
 *
 * URIs inside playlists (all relative to the playlist):
 *   seg{msn}.ts | seg{msn}.m4s     full segment
 *   part{msn}.{i}.ts | .m4s         part i of segment msn
 *   init{gen}.mp4                   fMP4 init segment of track set gen
 * with "?{query_suffix}" appended to each when a suffix is given (tokens).
 *
 * Threads: ms_hls_new/ms_hls_stop run on the worker loop. Everything else is
 * thread-safe (HTTP threads), guarded by an internal mutex held only to copy
 * references. Lifetime: refcounted; ms_hls_new returns one reference owned by
 * the stream; HTTP handlers take their own with ms_hls_ref while serving. */
#ifndef MS_MEDIA_HLS_HLS_H
#define MS_MEDIA_HLS_HLS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "media/stream/hub.h"
#include "util/blob.h"

typedef enum { MS_HLS_AUTO = 0, MS_HLS_TS, MS_HLS_FMP4 } ms_hls_format_t;

typedef struct {
    ms_hls_format_t format;
    uint32_t target_ms; /* segment target duration; 0 = 2000 */
    uint32_t part_ms;   /* LL-HLS part target; 0 = 200 */
    uint32_t window;    /* segments in the playlist; 0 = 6 */
    const char *log_ctx;
    /* First EXT-X-MEDIA-SEQUENCE and EXT-X-DISCONTINUITY-SEQUENCE; 0 = start
     * at 0. Nonzero: the output continues a timeline that another output
     * (another server, after a failover or transfer) may have served to the
     * same players, so both numbers must only grow (RFC 8216 section 6.2.2)
     * and the first segment carries EXT-X-DISCONTINUITY (section 4.3.2.3):
     * its timestamps do not follow the other output's. The node passes a
     * clock-derived base (node/streams.c). */
    int64_t seq_base;
    /* First EXT-X-DISCONTINUITY-SEQUENCE when seq_base is set; 0 = seq_base. */
    int64_t disc_base;
} ms_hls_cfg_t;

typedef struct ms_hls ms_hls_t;

/* Opens a hub reader on loop. NULL on allocation failure. */
ms_hls_t *ms_hls_new(uv_loop_t *loop, ms_hub_t *hub, const ms_hls_cfg_t *cfg);
/* Loop thread: closes the reader and timers, wakes every waiter, then drops
 * the creator's reference. Blobs already handed out stay valid. */
void ms_hls_stop(ms_hls_t *h);
ms_hls_t *ms_hls_ref(ms_hls_t *h);
void ms_hls_unref(ms_hls_t *h);

typedef struct {
    int64_t msn;              /* _HLS_msn, -1 when absent */
    int part;                 /* _HLS_part, -1 when absent */
    const char *query_suffix; /* appended as "?suffix" to every URI; NULL or "" = none */
} ms_hls_playlist_req_t;

/* Returns 0 and *out (new reference, text/m3u8) on success;
 * -EAGAIN when the request blocks (msn/part not produced yet): call
 *   ms_hls_wait() and ask again when it fires;
 * -ENOENT when no segment exists yet (stream not ready: HTTP 503; a
 *   ms_hls_wait() with msn -1 fires once one exists);
 * -ERANGE when msn/part is too far ahead (HTTP 400, RFC 8216bis 6.2.5.2);
 * -ESHUTDOWN when the output stopped. */
int ms_hls_playlist(ms_hls_t *h, const ms_hls_playlist_req_t *req, ms_blob_t **out);

/* name is the last path component ("seg12.ts", "part12.3.m4s", "init1.mp4").
 * Returns 0 and *out (new reference) and *content_type (static string);
 * -ENOENT unknown or expired (404); -EAGAIN when name is the part announced
 * by EXT-X-PRELOAD-HINT (or the next one) and not produced yet: *wait_msn and
 * *wait_part say what to wait for (ms_hls_wait), then ask again. */
int ms_hls_segment(ms_hls_t *h, const char *name, ms_blob_t **out, const char **content_type,
                   int64_t *wait_msn, int *wait_part);
/* (A segment is copied into one new blob here; HTTP uses ms_hls_segment_body.) */

/* The body of a media file as a list of blobs, sent one after the other:
 * a segment is the list of its parts (never concatenated, so no byte is held
 * twice); a part or init segment is one blob. blobs[] are references owned by
 * the holder; release them with ms_hls_body_free. */
typedef struct {
    ms_blob_t **blobs;
    int n;
    size_t len; /* total bytes */
} ms_hls_body_t;

/* Same as ms_hls_segment (names, return codes, waits), giving the body as a
 * blob list (zero-copy). Any thread. On failure *out is empty. */
int ms_hls_segment_body(ms_hls_t *h, const char *name, ms_hls_body_t *out,
                        const char **content_type, int64_t *wait_msn, int *wait_part);
/* Drops the references held by b and empties it. */
void ms_hls_body_free(ms_hls_body_t *b);

/* Calls cb(ud) exactly once, on the loop thread, when part `part` of segment
 * `msn` exists (part -1: the whole segment; msn -1: the playlist has its
 * first segment), when the output stops, or after
 * a timeout of 3 target durations. Returns 1 without registering (and without
 * calling cb) if already available, 0 when registered, -ESHUTDOWN if stopped. */
int ms_hls_wait(ms_hls_t *h, int64_t msn, int part, void (*cb)(void *ud), void *ud);

typedef struct {
    int ready; /* at least one segment exists */
    int64_t first_msn, last_msn;
    uint32_t segments, parts;
    uint64_t segments_total;
    uint64_t bytes_total;   /* bytes of media produced */
    int64_t bytes_held;     /* bytes currently held in the window */
    ms_hls_format_t format; /* the format in use (ts or fmp4) */
    /* Where the numbering stands: the next media sequence number this output
     * would give (after every segment it holds, open one included) and the
     * discontinuity sequence of its last segment (EXT-X-DISCONTINUITY-SEQUENCE
     * plus the listed EXT-X-DISCONTINUITY tags). A later output of the same
     * stream (on another server) starts above both (ms_hls_cfg_t.seq_base). */
    int64_t next_msn, last_disc;
} ms_hls_info_t;
void ms_hls_get_info(ms_hls_t *h, ms_hls_info_t *out);

/* Latency from a frame's arrival in the hub to the part that holds it being
 * listed in the playlist, for the /metrics histogram (any thread). Buckets
 * are cumulative counts for each bound in ms_hls_latency_bounds_ms. */
#define MS_HLS_LAT_BUCKETS 15
extern const double ms_hls_latency_bounds_ms[MS_HLS_LAT_BUCKETS];
typedef struct {
    uint64_t buckets[MS_HLS_LAT_BUCKETS]; /* count of observations <= bound */
    uint64_t count;
    double sum_ms;
} ms_hls_latency_t;
void ms_hls_get_latency(ms_hls_t *h, ms_hls_latency_t *out);

#endif
