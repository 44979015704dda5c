/* Live HLS segmenter, loop side: reads frames from the hub, cuts parts and
 * segments, muxes them (TS or fMP4) into immutable blobs and publishes them
 * (RFC 8216 3 and 6.2; LL-HLS parts: draft-pantos-hls-rfc8216bis 4.4.4.9).
 *
 * Cutting rules: a segment starts on a video keyframe (audio-only: any
 * frame) once target_ms of media has elapsed; a part ends as soon as the
 * frame of the driving track (video when present) that brings it to ~part_ms
 * is written, its end estimated from the last frame interval (the next
 * frame's arrival is not awaited: it would add a frame interval of latency). A part starting with
 * a keyframe is INDEPENDENT. A new timeline (MS_FRAME_DISCONT on a track
 * that already produced frames, or a new track set) closes the open segment
 * and the next one carries EXT-X-DISCONTINUITY; output timestamps are kept
 * monotonic across it (out = dts + offset), so fMP4 tfdt never goes back. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "media/hls/hls_int.h"
#include "util/clock.h"
#include "util/log.h"

#define TOL90 900 /* 10 ms tolerance on cut decisions */

/* Something was written to the open part (or queued for it). */
static size_t part_len(const ms_hls_t *h)
{
    return (h->part_blob ? h->part_blob->len : 0) + (size_t)h->ntsq;
}

static void drop_tsq(ms_hls_t *h)
{
    for (int i = 0; i < h->ntsq; i++)
        ms_frame_unref(h->tsq[i].f);
    h->ntsq = 0;
    h->tsq_bytes = 0;
}

/* Muxes the queued frames of the TS part into a blob of their exact size:
 * PAT and PMT (every part may start playback), then each frame as one PES
 * (ISO/IEC 13818-1 2.4.3.6). Empties the queue. NULL on error. */
static ms_blob_t *ts_part_take(ms_hls_t *h)
{
    size_t total = 2 * MS_TS_PACKET + h->tsq_bytes;
    ms_blob_t *blob = ms_blob_new(NULL, total);
    if (blob) {
        ms_buf_t b;
        ms_buf_wrap(&b, blob->data, total);
        ms_ts_mux_write_tables(h->ts, &b);
        for (int i = 0; i < h->ntsq; i++)
            if (ms_ts_mux_write_frame(h->ts, h->tsq[i].f, h->off90, &b) < 0 && !b.err)
                MS_DEBUG(h->ctx, "frame not muxed (track %d)", h->tsq[i].f->track);
        if (b.err || b.len != total) {
            MS_WARN(h->ctx, "TS part size mismatch (%zu of %zu bytes)", b.len, total);
            ms_blob_unref(blob);
            blob = NULL;
        }
    }
    drop_tsq(h);
    return blob;
}

/* The finished part (one reference for the caller), NULL on error. TS is
 * muxed here from the queued frames; an fMP4 fragment was already built
 * (build_fmp4_part). Both are written straight into a blob of their exact
 * size: no part buffer per stream, no copy into the blob. */
static ms_blob_t *part_take(ms_hls_t *h)
{
    if (h->ts)
        return ts_part_take(h);
    ms_blob_t *blob = h->part_blob;
    h->part_blob = NULL;
    return blob;
}

static int64_t to_track(int64_t t90, uint32_t rate)
{
    if (rate == 90000)
        return t90;
    int64_t q = t90 / 90000, r = t90 % 90000;
    if (r < 0) {
        q--;
        r += 90000;
    }
    return q * rate + r * rate / 90000;
}

static void drop_pending(ms_hls_t *h)
{
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < h->npend[k]; i++)
            ms_frame_unref(h->pend[k][i]);
        h->npend[k] = 0;
    }
}

void ms_hls_seg_release(ms_hls_t *h)
{
    drop_pending(h);
    drop_tsq(h);
    free(h->tsq);
    h->tsq = NULL;
    h->tsq_cap = 0;
    ms_ts_mux_free(h->ts);
    h->ts = NULL;
    ms_fmp4_free(h->mp4);
    h->mp4 = NULL;
    ms_blob_unref(h->part_blob);
    h->part_blob = NULL;
    free(h->pend[0]); /* one block for the four arrays */
    h->pend[0] = h->pend[1] = NULL;
    h->pend_dts[0] = h->pend_dts[1] = NULL;
}

/* Builds the fMP4 fragment of the pending samples (ISO/IEC 14496-12 8.8.4
 * moof + mdat) into h->part_blob, allocated at its exact size
 * (ms_fmp4_fragment_size). */
static int build_fmp4_part(ms_hls_t *h, int64_t end90)
{
    ms_fmp4_sample_t *s[2] = {NULL, NULL};
    ms_fmp4_run_t runs[2];
    int nruns = 0, rc = 0;
    for (int k = 0; k < 2; k++) {
        int n = h->npend[k];
        int track = k == 0 ? h->vtrack : h->atrack;
        if (!n || track < 0)
            continue;
        s[k] = malloc(sizeof(ms_fmp4_sample_t) * (size_t)n);
        if (!s[k]) {
            rc = -ENOMEM;
            goto out;
        }
        for (int i = 0; i < n; i++) {
            int64_t d;
            if (i + 1 < n)
                d = h->pend_dts[k][i + 1] - h->pend_dts[k][i];
            else if (k == 0)
                d = to_track(end90, h->rate[track]) - h->pend_dts[k][i];
            else
                d = h->last_adur;
            if (d <= 0 || d > (int64_t)h->rate[track] * 10)
                d = k == 0 ? (h->last_dur90 > 0 ? h->last_dur90 : 3600) : 1024;
            if (k == 1)
                h->last_adur = d;
            s[k][i].frame = h->pend[k][i];
            s[k][i].duration = (uint32_t)d;
        }
        int64_t base = h->pend_dts[k][0];
        runs[nruns].track = track;
        runs[nruns].base_dts = base > 0 ? (uint64_t)base : 0;
        runs[nruns].samples = s[k];
        runs[nruns].nsamples = (size_t)n;
        nruns++;
    }
    if (nruns) {
        size_t size = ms_fmp4_fragment_size(h->mp4, runs, nruns);
        ms_blob_t *blob = size ? ms_blob_new(NULL, size) : NULL;
        if (!blob) {
            rc = size ? -ENOMEM : -EINVAL;
            goto out;
        }
        ms_buf_t b;
        ms_buf_wrap(&b, blob->data, size);
        rc = ms_fmp4_write_fragment(h->mp4, ++h->frag_seq, runs, nruns, &b);
        if (rc == 0 && b.len != size)
            rc = -EINVAL;
        if (rc < 0) {
            ms_blob_unref(blob);
            goto out;
        }
        ms_blob_unref(h->part_blob); /* none: the previous part was taken */
        h->part_blob = blob;
    }
out:
    free(s[0]);
    free(s[1]);
    drop_pending(h);
    return rc;
}

static void observe_latency(ms_hls_t *h, int64_t rx_us)
{
    if (!rx_us)
        return;
    double ms = (double)(ms_mono_us() - rx_us) / 1000.0;
    if (ms < 0)
        ms = 0;
    h->lat.count++;
    h->lat.sum_ms += ms;
    for (int i = 0; i < MS_HLS_LAT_BUCKETS; i++)
        if (ms <= ms_hls_latency_bounds_ms[i])
            h->lat.buckets[i]++;
}

/* Ends the current part at output time end90 and publishes it. */
static void close_part(ms_hls_t *h, int64_t end90)
{
    hls_seg_t *seg = h->cur;
    if (!seg)
        return;
    if (h->mp4 && build_fmp4_part(h, end90) < 0)
        MS_WARN(h->ctx, "fMP4 fragment failed");
    if (!part_len(h))
        return;
    ms_blob_t *blob = part_take(h);
    if (!blob) {
        MS_WARN(h->ctx, "out of memory building a part");
        return;
    }
    pthread_mutex_lock(&h->lock); /* HTTP threads read seg->parts under the lock */
    if (seg->nparts == seg->cap) {
        int cap = seg->cap ? seg->cap * 2 : 16;
        hls_part_t *np = realloc(seg->parts, sizeof *np * (size_t)cap);
        if (!np) {
            pthread_mutex_unlock(&h->lock);
            ms_blob_unref(blob);
            return;
        }
        seg->parts = np;
        seg->cap = cap;
    }
    hls_part_t *p = &seg->parts[seg->nparts];
    p->blob = blob;
    p->dur = end90 > h->part_start90 ? end90 - h->part_start90 : 0;
    p->independent = h->part_independent;
    seg->nparts++;
    seg->bytes += blob->len;
    h->held_bytes += (int64_t)blob->len;
    h->held_parts++;
    h->bytes_total += blob->len;
    observe_latency(h, h->part_rx_us);
    pthread_mutex_unlock(&h->lock);
    ms_hls_republish(h);
}

static void start_part(ms_hls_t *h, int64_t t90, int independent)
{
    h->part_start90 = t90;
    h->part_independent = independent;
    if (!part_len(h) && !h->npend[0] && !h->npend[1])
        h->part_rx_us = 0; /* else frames carried over keep their arrival time */
}

/* Window maintenance, under the lock: frees segments past the grace
 * window, drops parts of old segments, counts discontinuities that left the
 * playlist (RFC 8216 6.2.2). */
static void prune_locked(ms_hls_t *h)
{
    int ncomplete = 0;
    for (int i = 0; i < h->nsegs; i++)
        ncomplete += h->segs[i]->complete;
    int window = (int)h->cfg.window;
    int first = ncomplete > window ? ncomplete - window : 0;
    for (int i = h->nlisted_from; i < first; i++)
        if (h->segs[i]->discont)
            h->disc_seq++;
    h->nlisted_from = first;
    int watched = h->last_pl_ms &&
                  ms_mono_ms() - h->last_pl_ms <= HLS_WATCHED_SEGS(h) * (int64_t)h->cfg.target_ms;
    int drop = first - (watched ? HLS_KEEP_EXPIRED : 0);
    if (drop > 0) {
        for (int i = 0; i < drop; i++) {
            h->held_bytes -= (int64_t)h->segs[i]->bytes;
            h->held_parts -= (uint32_t)h->segs[i]->nparts;
            ms_hls_seg_free(h->segs[i]);
        }
        memmove(h->segs, h->segs + drop, sizeof(hls_seg_t *) * (size_t)(h->nsegs - drop));
        h->nsegs -= drop;
        h->nlisted_from -= drop;
    }
    /* Every segment keeps its parts until it is freed: a segment is served
     * as the list of its part blobs (ms_hls_segment_body), so no byte is
     * held twice. */
}

static void close_segment(ms_hls_t *h, int64_t end90)
{
    hls_seg_t *seg = h->cur;
    if (!seg)
        return;
    h->cur = NULL;
    /* The segment's bytes are its parts' (no concatenated copy). */
    int empty = seg->nparts == 0;
    int64_t dur = end90 > seg->start ? end90 - seg->start : 0;
    uint32_t secs = (uint32_t)((dur + 45000) / 90000);
    if (secs > h->target_s)
        h->target_s = secs;
    pthread_mutex_lock(&h->lock);
    h->pl_target_s = h->target_s; /* a listed segment never exceeds it */
    seg->dur = dur;
    seg->complete = 1;
    if (!empty)
        h->segments_total++;
    prune_locked(h);
    pthread_mutex_unlock(&h->lock);
    if (empty) {
        MS_WARN(h->ctx, "segment %lld dropped (empty)", (long long)seg->msn);
        pthread_mutex_lock(&h->lock);
        /* An empty segment is removed at once: it was never listed. */
        for (int i = 0; i < h->nsegs; i++) {
            if (h->segs[i] == seg) {
                memmove(h->segs + i, h->segs + i + 1,
                        sizeof(hls_seg_t *) * (size_t)(h->nsegs - i - 1));
                h->nsegs--;
                break;
            }
        }
        pthread_mutex_unlock(&h->lock);
        if (seg->discont)
            h->next_discont = 1;
        h->next_msn = seg->msn;
        ms_hls_seg_free(seg);
    }
    ms_hls_republish(h);
}

static void start_segment(ms_hls_t *h, int64_t t90, int64_t wallclock_us)
{
    hls_seg_t *seg = calloc(1, sizeof *seg);
    if (!seg)
        return;
    seg->msn = h->next_msn++;
    seg->start = t90;
    seg->pdt_us = wallclock_us;
    seg->discont = h->next_discont;
    seg->gen = h->gen;
    pthread_mutex_lock(&h->lock);
    if (h->nsegs == h->segs_cap) {
        int cap = h->segs_cap ? h->segs_cap * 2 : 16;
        hls_seg_t **s = realloc(h->segs, sizeof *s * (size_t)cap);
        if (!s) {
            pthread_mutex_unlock(&h->lock);
            free(seg);
            h->next_msn--;
            return;
        }
        h->segs = s;
        h->segs_cap = cap;
    }
    h->segs[h->nsegs++] = seg;
    pthread_mutex_unlock(&h->lock);
    h->next_discont = 0;
    h->cur = seg;
    h->part_ended = 0;
    start_part(h, t90, 1);
}

/* Closes the open part and segment at the end of the last frame. */
static void finish_open(ms_hls_t *h)
{
    if (!h->cur)
        return;
    close_part(h, h->last_end90);
    close_segment(h, h->last_end90);
}

void ms_hls_seg_on_tracks(ms_reader_t *r, void *ud)
{
    (void)r;
    ms_hls_t *h = ud;
    finish_open(h);
    drop_pending(h);
    drop_tsq(h);
    ms_ts_mux_free(h->ts);
    h->ts = NULL;
    ms_fmp4_free(h->mp4);
    h->mp4 = NULL;
    ms_blob_unref(h->part_blob);
    h->part_blob = NULL;
    h->have_timeline = 0;
    h->vtrack = h->atrack = -1;
    h->ntracks = ms_hub_ntracks(h->hub);
    if (h->ntracks <= 0)
        return;
    /* The muxers copy what they need: the params are a temporary here. */
    ms_codec_params_t *params = malloc(sizeof *params * (size_t)h->ntracks);
    if (!params) {
        MS_WARN(h->ctx, "out of memory (tracks)");
        h->ntracks = 0;
        return;
    }
    for (int i = 0; i < h->ntracks; i++) {
        const ms_codec_params_t *p = ms_hub_track(h->hub, i);
        params[i] = *p;
        h->rate[i] = p->clock_rate                                     ? p->clock_rate
                     : p->kind == MS_TRACK_AUDIO && p->sample_rate > 0 ? (uint32_t)p->sample_rate
                                                                       : 90000;
        int video = p->codec == MS_CODEC_H264 || p->codec == MS_CODEC_H265;
        if (video && h->vtrack < 0)
            h->vtrack = i;
        else if (p->codec == MS_CODEC_AAC && h->atrack < 0 && p->asc_len)
            h->atrack = i;
        else
            params[i].codec = MS_CODEC_NONE; /* not carried: G.711, ONVIF, extra tracks */
    }
    if (h->vtrack < 0 && h->atrack < 0) {
        h->ntracks = 0;
        free(params);
        return;
    }
    pthread_mutex_lock(&h->lock);
    if (h->format == MS_HLS_AUTO)
        h->format =
            h->vtrack >= 0 && params[h->vtrack].codec == MS_CODEC_H265 ? MS_HLS_FMP4 : MS_HLS_TS;
    ms_hls_format_t fmt = h->format;
    pthread_mutex_unlock(&h->lock);
    h->gen++;
    if (h->segments_total || h->nsegs)
        h->next_discont = 1;
    if (fmt == MS_HLS_TS) {
        h->ts = ms_ts_mux_new(params, h->ntracks);
        free(params);
        if (!h->ts)
            MS_WARN(h->ctx, "cannot create the TS muxer");
        return;
    }
    h->mp4 = ms_fmp4_new(params, h->ntracks);
    free(params);
    ms_buf_t b = MS_BUF_INIT;
    ms_blob_t *init = NULL;
    if (h->mp4 && ms_fmp4_write_init(h->mp4, &b) == 0)
        init = ms_buf_to_blob(&b);
    ms_buf_free(&b);
    if (!init) {
        MS_WARN(h->ctx, "cannot build the fMP4 init segment (missing parameter sets?)");
        ms_fmp4_free(h->mp4);
        h->mp4 = NULL;
        return;
    }
    pthread_mutex_lock(&h->lock);
    ms_blob_unref(h->inits[0].blob);
    memmove(h->inits, h->inits + 1, sizeof h->inits[0] * (HLS_MAX_INITS - 1));
    h->inits[HLS_MAX_INITS - 1].gen = h->gen;
    h->inits[HLS_MAX_INITS - 1].blob = init;
    pthread_mutex_unlock(&h->lock);
}

static void add_frame(ms_hls_t *h, ms_frame_t *f)
{
    /* The arrival time of the part's first frame (for the latency
     * histogram): read here, once per part, not once per frame. The frame
     * was published a moment ago (on_frames runs inside ms_hub_publish). */
    if (!h->part_rx_us)
        h->part_rx_us = ms_mono_us();
    if (h->ts) {
        /* muxed when the part closes (ts_part_take); h->off90 only changes
         * after the open part was closed (finish_open) */
        if (h->ntsq == h->tsq_cap) {
            int cap = h->tsq_cap ? h->tsq_cap * 2 : 16;
            hls_tsq_t *q = realloc(h->tsq, sizeof *q * (size_t)cap);
            if (!q) {
                MS_WARN(h->ctx, "out of memory (part queue): frame not muxed");
                return;
            }
            h->tsq = q;
            h->tsq_cap = cap;
        }
        /* 0 for a frame that will not be muxed (ts_part_take logs it) */
        size_t n = ms_ts_mux_frame_size(h->ts, f);
        h->tsq[h->ntsq].f = ms_frame_ref(f);
        h->tsq[h->ntsq].ts_bytes = n;
        h->ntsq++;
        h->tsq_bytes += n;
        return;
    }
    int k = f->track == h->vtrack ? 0 : 1;
    if (!h->pend[0]) {
        /* One block: pend[0], pend[1], pend_dts[0], pend_dts[1]. */
        size_t fp = sizeof(ms_frame_t *) * HLS_FMP4_MAX, dp = sizeof(int64_t) * HLS_FMP4_MAX;
        uint8_t *blk = malloc(2 * fp + 2 * dp);
        if (!blk)
            return;
        h->pend[0] = (ms_frame_t **)blk;
        h->pend[1] = (ms_frame_t **)(blk + fp);
        h->pend_dts[0] = (int64_t *)(blk + 2 * fp);
        h->pend_dts[1] = (int64_t *)(blk + 2 * fp + dp);
    }
    if (h->npend[k] >= HLS_FMP4_MAX)
        return;
    h->pend[k][h->npend[k]] = ms_frame_ref(f);
    h->pend_dts[k][h->npend[k]] = f->dts + to_track(h->off90, h->rate[f->track]);
    h->npend[k]++;
}

/* Media bytes of the open segment: its parts and what waits for the next. */
static int64_t seg_bytes(const ms_hls_t *h)
{
    return (int64_t)h->cur->bytes + (int64_t)h->tsq_bytes +
           (h->part_blob ? (int64_t)h->part_blob->len : 0);
}

/* The open segment would pass the hub's limits with f: its byte limit, or
 * its time limit but never less than 4 target durations (a camera whose GOP
 * is longer than the target still gets whole-GOP segments). */
static int seg_over_limit(const ms_hls_t *h, int64_t o90, const ms_frame_t *f)
{
    int64_t lim_ms = ms_hub_limit_ms(h->hub);
    if (lim_ms < 4 * (int64_t)h->cfg.target_ms)
        lim_ms = 4 * (int64_t)h->cfg.target_ms;
    return o90 - h->cur->start > lim_ms * 90 ||
           seg_bytes(h) + (int64_t)f->size > ms_hub_limit_bytes(h->hub);
}

static void process(ms_hls_t *h, ms_frame_t *f)
{
    int t = f->track;
    if ((t != h->vtrack && t != h->atrack) || (!h->ts && !h->mp4))
        return;
    int64_t d90 = ms_ts_to_90k(f->dts, h->rate[t]);
    if (!h->have_timeline) {
        h->off90 = h->last_end90 - d90;
        h->have_timeline = 1;
        memset(h->seen, 0, sizeof h->seen);
    } else if ((f->flags & MS_FRAME_DISCONT) && h->seen[t]) {
        finish_open(h);
        h->next_discont = 1;
        h->off90 = h->last_end90 - d90;
        memset(h->seen, 0, sizeof h->seen);
    }
    h->seen[t] = 1;
    int64_t o90 = d90 + h->off90;
    int driver = h->vtrack >= 0 ? t == h->vtrack : t == h->atrack;
    int key = (f->flags & MS_FRAME_KEY) || t == h->atrack;
    int64_t target90 = (int64_t)h->cfg.target_ms * 90;
    int64_t part90 = (int64_t)h->cfg.part_ms * 90;
    if (!h->cur) {
        if (!driver || !key)
            return; /* wait for a keyframe */
        start_segment(h, o90, f->wallclock_us);
        if (!h->cur)
            return;
    } else if (driver) {
        /* The first video segment of the output (a stream just activated,
         * e.g. on a backup after a failover) ends at the first keyframe after one
         * part's worth of media, so a playlist with a complete segment
         * exists sooner; its EXTINF is short, which RFC 8216 section 4.3.3.1
         * allows (only the upper bound, EXT-X-TARGETDURATION, is binding). */
        int64_t seg90 = h->segments_total == 0 && h->vtrack >= 0 ? part90 : target90;
        if (!key && seg_over_limit(h, o90, f)) {
            /* No keyframe for too long (media/stream/hub.h "Limits"): the
             * open segment ends here and the output waits for the next
             * keyframe, which starts a segment after EXT-X-DISCONTINUITY
             * (RFC 8216 4.3.2.3: the media between is not in the output). */
            char what[96];
            snprintf(what, sizeof what, "HLS segment cut at %lld MB, %lld s",
                     (long long)(seg_bytes(h) >> 20), (long long)((o90 - h->cur->start) / 90000));
            close_part(h, o90);
            close_segment(h, o90);
            h->next_discont = 1;
            h->part_ended = 0;
            ms_hub_note_limit(h->hub, what);
            return;
        }
        if (key && o90 - h->cur->start >= seg90 - TOL90) {
            /* After an early cut, only audio written since can be pending:
             * it is carried into the new segment's first part. */
            if (!h->part_ended)
                close_part(h, o90);
            close_segment(h, o90);
            start_segment(h, o90, f->wallclock_us);
            if (!h->cur)
                return;
        } else if (h->part_ended) {
            /* The previous part was closed when its last frame was written:
             * this frame opens the next one. */
            h->part_ended = 0;
            h->part_start90 = o90;
            h->part_independent = key; /* part_rx_us may already be set by audio */
        } else if (o90 - h->part_start90 >= part90 - TOL90) {
            /* Not cut early (irregular frame intervals): cut here. */
            close_part(h, o90);
            start_part(h, o90, key);
        }
    }
    if (driver) {
        int64_t prev_end = h->last_end90 - h->last_dur90;
        int64_t d = o90 - prev_end;
        if (d > 0 && d < 10 * 90000)
            h->last_dur90 = d;
        else if (h->last_dur90 <= 0)
            h->last_dur90 = h->vtrack >= 0 ? 3600 : 1920;
        h->last_end90 = o90 + h->last_dur90;
    }
    add_frame(h, f);
    /* A part is cut as soon as the frame that completes its target duration
     * is written (its end = this frame's dts + the last frame interval), not
     * when the next frame arrives: that would add one frame interval to the
     * part's latency. A segment boundary still needs the next keyframe, so
     * the next frame either opens a new part or a new segment. */
    if (driver && h->cur && !h->part_ended && h->last_end90 - h->part_start90 >= part90 - TOL90) {
        close_part(h, h->last_end90);
        start_part(h, h->last_end90, 0);
        h->part_ended = 1;
    }
}

void ms_hls_seg_on_frames(ms_reader_t *r, void *ud)
{
    ms_hls_t *h = ud;
    ms_frame_t *f;
    while ((f = ms_reader_pop(r))) {
        process(h, f);
        ms_frame_unref(f);
    }
}
