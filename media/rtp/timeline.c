/* Per-track output timeline of the RTP receiver: maps the extended (64-bit,
 * RFC 3550 section 5.1) RTP timestamp of each frame onto the output pts/dts
 * and re-anchors it when the camera's timestamps jump.
 *
 * A frame's timestamp step (d_ts, since the previous frame) is compared with
 * its arrival step (d_arr, the caller's clock in the same units):
 *  - forward jump:  d_ts > d_arr + jump threshold (the timestamps ran ahead
 *    of real time by more than the threshold in one frame);
 *  - backward jump: d_ts < -reorder tolerance (a step back longer than any
 *    B-frame reordering).
 * A lost run of packets (d_ts and d_arr grow together), a network stall or
 * batched reads (d_arr larger than d_ts) and a drifting camera clock (a
 * fraction of a frame per frame) are not jumps. 32-bit wrap is handled by
 * the caller's unwrapping before this point.
 *
 * On a jump the frame starts a new timeline (MS_FRAME_DISCONT): its output
 * is the last output dts plus one nominal frame interval (the smallest
 * recent positive d_ts), or plus the arrival step when that is longer than
 * the threshold (a real pause), so output dts stays monotonic and
 * continuous and the track stays in step with the arrival clock (the other
 * tracks of the stream, which did not jump, keep their sync).
 * A single outlier (one frame far off, then the old timeline again) is
 * resynced twice: the frame after it fits the timeline from before the
 * outlier and re-anchors back; it counts as a resync, not a second jump, and
 * since both re-anchors continue from the last output, the stream is not
 * shifted. No frame is dropped (the outlier may be a keyframe). */
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

int ms_rtp_timeline_map(ms_rtp_timeline_t *tl, int64_t ext, int64_t arr_us, int64_t *pts,
                        int64_t *dts)
{
    int flags = 0;
    if (!tl->started) {
        tl->started = 1;
        tl->off = -ext;
        tl->last_ext = ext;
        tl->last_arr_us = arr_us;
        tl->last_dts = *pts = *dts = 0;
        return 0;
    }
    int64_t d_ts = ext - tl->last_ext;
    int64_t d_arr = ticks(tl, arr_us - tl->last_arr_us);
    int jump = 0;
    if (tl->resync_next) {
        tl->resync_next = 0;
        tl->resyncs++;
        tl->outlier = 0;
        jump = 1;
    } else if (d_ts > d_arr + tl->thresh || d_ts < -tl->reorder) {
        jump = 1;
        int64_t d2 = ext - tl->pre_ext, a2 = ticks(tl, arr_us - tl->pre_arr_us);
        if (tl->outlier && d2 >= -tl->reorder && d2 <= a2 + tl->thresh) {
            tl->resyncs++; /* back on the timeline from before a one-frame outlier */
            tl->outlier = 0;
        } else {
            tl->jumps++;
            tl->outlier = 1;
            tl->pre_ext = tl->last_ext;
            tl->pre_arr_us = tl->last_arr_us;
        }
    } else {
        tl->outlier = 0;
        learn(tl, d_ts);
    }
    if (jump) {
        int64_t step = d_arr > tl->thresh ? d_arr : tl->nominal;
        tl->off = tl->last_dts + step - ext;
        flags |= MS_FRAME_DISCONT;
    }
    int64_t p = ext + tl->off;
    int64_t d = p > tl->last_dts ? p : tl->last_dts + 1; /* strictly increasing */
    tl->last_ext = ext;
    tl->last_arr_us = arr_us;
    tl->last_dts = d;
    *pts = p;
    *dts = d;
    return flags;
}
