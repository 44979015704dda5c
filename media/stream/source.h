/* What a source (RTSP client today; RTMP publisher, archive later) reports
 * about itself. The stream status (docs/config.md "Stream status") is built from this, the
 * hub info and the outputs' counters.
 *
 * state (docs/config.md "Stream status"): empty = no source configured / never started;
 * initialization = connecting, no media yet; active = media flowing;
 * inactive = not connected (waiting to reconnect); suspend = held by the
 * node without pulling (backup role, disabled).
 * characteristic: ok; incorrect = the camera answers but cannot be used as
 * configured (bad credentials, 404, unsupported codec, bad SDP);
 * problematic = connects but drops or loses often, or its RTP timestamps
 * keep jumping (MS_SRC_JUMPS_PROBLEM in MS_SRC_JUMPS_WINDOW_MS); disconnected = cannot be
 * reached (refused, timeout, no route). */
#ifndef MS_MEDIA_STREAM_SOURCE_H
#define MS_MEDIA_STREAM_SOURCE_H

#include <stdint.h>

typedef enum {
    MS_STATE_EMPTY = 0,
    MS_STATE_INITIALIZATION,
    MS_STATE_ACTIVE,
    MS_STATE_INACTIVE,
    MS_STATE_SUSPEND,
} ms_stream_state_t;

typedef enum {
    MS_CHAR_OK = 0,
    MS_CHAR_INCORRECT,
    MS_CHAR_PROBLEMATIC,
    MS_CHAR_DISCONNECTED,
} ms_characteristic_t;

const char *ms_stream_state_name(ms_stream_state_t s);
const char *ms_characteristic_name(ms_characteristic_t c);

#define MS_SDP_MAX 8192

/* A source whose RTP timestamps jumped this many times within the window
 * is problematic (status.reason says so) until the window holds fewer. */
#define MS_SRC_JUMPS_PROBLEM   3
#define MS_SRC_JUMPS_WINDOW_MS 60000

/* Events per second over the last MS_SRC_JUMPS_WINDOW_MS (a ring of
 * one-second buckets). Zero-initialise. */
typedef struct {
    uint64_t seen;  /* the running total already counted */
    int64_t last_s; /* second of the newest bucket */
    uint32_t sec[MS_SRC_JUMPS_WINDOW_MS / 1000];
} ms_src_window_t;

/* Adds the events since the last call (total = a running total that only
 * grows) at now_ms (a monotonic clock that does not go back) and returns
 * how many fell in the last window (capped at INT32_MAX). Pure; the
 * owner's thread. */
int ms_src_window_note(ms_src_window_t *w, uint64_t total, int64_t now_ms);

typedef struct {
    ms_stream_state_t state;
    ms_characteristic_t characteristic;
    char reason[256];           /* last error, human readable; "" when fine */
    uint32_t reconnects;        /* attempts since the last loss of the source */
    uint32_t reconnects_total;  /* reconnections since the stream started */
    int64_t connected_at_us;    /* wall clock of the current session's first frame, 0 if none */
    double bitrate_kbps;        /* input bitrate, averaged over a few seconds */
    uint64_t rtp_packets;       /* received */
    uint64_t rtp_lost;          /* detected as missing */
    uint64_t frames_dropped;    /* dropped for loss/corruption */
    uint64_t timestamp_jumps;   /* RTP timestamp jumps: a new timeline was started */
    uint64_t timestamp_resyncs; /* re-anchors without a jump (SSRC change, end of an outlier) */
    char transport[8];          /* "udp" | "tcp" | "" */
    char reads[12];             /* "batched" | "on_arrival" | "" (not playing) */
    char sdp[MS_SDP_MAX];       /* the camera's SDP, as received */
} ms_source_status_t;

#endif
