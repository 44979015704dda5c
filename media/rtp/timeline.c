/* Per-track output timeline of the RTP receiver: maps the extended (64-bit,
 * RFC 3550 section 5.1) RTP timestamp of each frame onto the output pts/dts
 * and re-anchors it when the camera's timestamps jump.
 *
 * A frame's timestamp step (d_ts, since the previous frame) is compared with
 * its arrival step (d_arr, the caller's clock in the same units):
 *  - forward jump:  d_ts > d_arr + MS_RTP_JUMP_MS (the timestamps ran ahead
 *    of real time by more than 2 s in one frame);
 *  - backward jump: d_ts < -MS_RTP_REORDER_MS (a step back longer than any
 *    B-frame reordering).
 * A lost run of packets (d_ts and d_arr grow together), a network stall or
 * batched reads (d_arr larger than d_ts) and a drifting camera clock (a
 * fraction of a frame per frame: 0.1% is 40 us per 40 ms frame) are not
 * jumps. 32-bit wrap is handled by the caller's unwrapping before this.
 *
 * A frame that jumps is held (MS_RTP_TL_HOLD) until the next frame tells
 * which case it is (one frame of latency, at jumps only):
 *  - a single outlier: the next frame fits the timeline from before it. The
 *    held frame keeps its content (it may be a keyframe) but gets the time
 *    one nominal interval after the last output, with no discontinuity: the
 *    stream is neither cut nor shifted. Counted as a jump.
 *  - a lasting jump (the next frame follows the held one, or there is no
 *    next frame): the held frame starts a new timeline (MS_FRAME_DISCONT)
 *    that continues one nominal interval after the last output dts (or the
 *    arrival step when that is longer than the threshold: a real pause), so
 *    output dts stays monotonic and continuous and the track stays in step
 *    with the arrival clock (the other tracks of the stream keep their
 *    sync). Counted as a jump and a resync.
 * The nominal interval is the smallest of the last MS_RTP_TL_RECENT positive
 * steps. An SSRC change restarts the timeline the same way (a resync). */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "media/rtp/rtp_internal.h"

void ms_rtp_timeline_init(ms_rtp_timeline_t *tl, uint32_t clock_rate, int video)
{
    memset(tl, 0, sizeof *tl);
    tl->rate = clock_rate ? clock_rate : 90000;
    tl->thresh = (int64_t)tl->rate * MS_RTP_JUMP_MS / 1000;
    tl->reorder = (int64_t)tl->rate * MS_RTP_REORDER_MS / 1000;
    /* until learned: 25 fps video, 20 ms audio packets (1024 for AAC is
     * learned from the first two frames) */
    tl->nominal = video ? tl->rate / 25 : tl->rate / 50;
    if (tl->nominal <= 0)
        tl->nominal = 1;
}

void ms_rtp_timeline_restart(ms_rtp_timeline_t *tl)
{
    if (tl->started)
        tl->resync_next = 1;
}

static void learn(ms_rtp_timeline_t *tl, int64_t d_ts)
{
    if (d_ts <= 0 || d_ts > tl->thresh)
        return;
    tl->recent[tl->nrecent++ % MS_RTP_TL_RECENT] = d_ts;
    int n = tl->nrecent < MS_RTP_TL_RECENT ? tl->nrecent : MS_RTP_TL_RECENT;
    int64_t m = tl->recent[0];
    for (int i = 1; i < n; i++)
        if (tl->recent[i] < m)
            m = tl->recent[i];
    tl->nominal = m;
}

static int64_t ticks(const ms_rtp_timeline_t *tl, int64_t us)
{
    if (us <= 0)
        return 0;
    /* saturate: an arrival step of centuries is as good as a long pause */
    if (us > (int64_t)1 << 40)
        us = (int64_t)1 << 40;
    return us * (int64_t)tl->rate / 1000000;
}

static int fits(const ms_rtp_timeline_t *tl, int64_t d_ts, int64_t d_arr)
{
    return d_ts >= -tl->reorder && d_ts <= d_arr + tl->thresh;
}

static void out(ms_rtp_timeline_t *tl, int64_t ext, int64_t arr_us, int64_t *pts, int64_t *dts)
{
    int64_t p = ext + tl->off;
    int64_t d = p > tl->last_dts ? p : tl->last_dts + 1; /* strictly increasing */
    tl->last_ext = ext;
    tl->last_arr_us = arr_us;
    tl->last_dts = d;
    *pts = p;
    *dts = d;
}

/* New timeline for the frame (ext, arr_us): continues after the last dts. */
static void reanchor(ms_rtp_timeline_t *tl, int64_t ext, int64_t arr_us)
{
    int64_t d_arr = ticks(tl, arr_us - tl->last_arr_us);
    int64_t step = d_arr > tl->thresh ? d_arr : tl->nominal;
    tl->off = tl->last_dts + step - ext;
    tl->resyncs++;
}

int ms_rtp_timeline_map(ms_rtp_timeline_t *tl, int64_t ext, int64_t arr_us, int64_t *pts,
                        int64_t *dts)
{
    assert(!tl->held);
    if (!tl->started) {
        tl->started = 1;
        tl->off = -ext;
        tl->last_ext = ext;
        tl->last_arr_us = arr_us;
        tl->last_dts = *pts = *dts = 0;
        return 0;
    }
    if (tl->resync_next) {
        tl->resync_next = 0;
        reanchor(tl, ext, arr_us);
        out(tl, ext, arr_us, pts, dts);
        return MS_FRAME_DISCONT;
    }
    int64_t d_ts = ext - tl->last_ext;
    if (!fits(tl, d_ts, ticks(tl, arr_us - tl->last_arr_us))) {
        tl->jumps++;
        tl->held = 1;
        tl->h_ext = ext;
        tl->h_arr_us = arr_us;
        return MS_RTP_TL_HOLD;
    }
    learn(tl, d_ts);
    out(tl, ext, arr_us, pts, dts);
    return 0;
}

int ms_rtp_timeline_resolve(ms_rtp_timeline_t *tl, int have_next, int64_t next_ext,
                            int64_t next_arr_us, int64_t *pts, int64_t *dts)
{
    assert(tl->held);
    tl->held = 0;
    if (have_next && fits(tl, next_ext - tl->last_ext, ticks(tl, next_arr_us - tl->last_arr_us))) {
        /* a one-frame outlier: its time is the old timeline's next slot */
        int64_t ext = tl->last_ext + tl->nominal;
        out(tl, ext, tl->h_arr_us, pts, dts);
        return 0;
    }
    reanchor(tl, tl->h_ext, tl->h_arr_us);
    out(tl, tl->h_ext, tl->h_arr_us, pts, dts);
    return MS_FRAME_DISCONT;
}
