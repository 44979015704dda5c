/* RTP receiver for one track: ties the header parser, reorder window,
 * depacketizer, timestamp unwrapping and RTCP together (RFC 3550). */
#include "media/rtp/receiver.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "media/rtp/rtp_internal.h"

/* Seconds from 1900-01-01 (NTP epoch) to 1970-01-01 (RFC 868). */
#define NTP_UNIX_OFFSET 2208988800ull

struct ms_rtp_receiver {
    ms_rtp_receiver_cfg_t cfg;
    const ms_rtp_depack_ops_t *ops;
    void *dp;
    ms_rtp_stats_t st;
    ms_codec_params_t params;
    int params_dirty;
    ms_rtp_reorder_t ro;
    int have_ssrc;
    uint32_t ssrc;
    int64_t now_us; /* of the packet being processed */
    /* The packet being pushed, parsed: released at once (TCP, or in order),
     * deliver() takes it from here instead of parsing it again. */
    const uint8_t *cur_raw;
    const ms_rtp_packet_t *cur_pkt;

    /* RTP timestamps: 64-bit unwrapped value of the last delivered packet
     * (RFC 3550 section 5.1: 32-bit wrap is not a jump). */
    int ts_started;
    int64_t last_ext_ts;
    /* output pts/dts, re-anchored on timestamp jumps (timeline.c) */
    ms_rtp_timeline_t tl;
    ms_frame_t *held; /* a frame whose timestamp jumped (timeline.c), or NULL */
    int need_key, seen_key;

    /* RTCP SR mapping, kept on the output timeline (sr_pts = the SR's RTP
     * timestamp as an output pts) so that it stays valid across jumps */
    int have_sr;
    uint64_t sr_ntp;
    int64_t sr_pts;
    int64_t sr_arrival_us;
    /* arrival-time mapping when there is no SR */
    int have_wall_base;
    int64_t wall_base_us;

    /* receiver report state (RFC 3550 A.3, A.8) */
    uint64_t expected_prior, received_prior;
    int have_transit;
    int64_t last_transit;
    int64_t jitter_q4; /* jitter * 16, timestamp units */
};

static const ms_rtp_depack_ops_t *ops_for(ms_codec_t c)
{
    switch (c) {
    case MS_CODEC_H264:
        return &ms_rtp_depack_h264;
    case MS_CODEC_H265:
        return &ms_rtp_depack_h265;
    case MS_CODEC_AAC:
        return &ms_rtp_depack_aac;
    case MS_CODEC_PCMA:
    case MS_CODEC_PCMU:
        return &ms_rtp_depack_g711;
    case MS_CODEC_ONVIF_META:
        return &ms_rtp_depack_meta;
    case MS_CODEC_NONE:
        break;
    }
    return NULL;
}

static int64_t unwrap_ts(const ms_rtp_receiver_t *r, uint32_t ts)
{
    return r->last_ext_ts + (int32_t)(ts - (uint32_t)r->last_ext_ts);
}

static void release_held(ms_rtp_receiver_t *r, int have_next, uint32_t next_ts);

static void deliver(void *ud, const uint8_t *pkt, size_t len, uint64_t lost)
{
    ms_rtp_receiver_t *r = ud;
    ms_rtp_packet_t p;
    if (pkt == r->cur_raw)
        p = *r->cur_pkt;
    else if (ms_rtp_packet_parse(pkt, len, &p) != 0)
        return; /* parsed once already */
    if (!r->ts_started) {
        r->ts_started = 1;
        r->last_ext_ts = (int64_t)p.ts + ((int64_t)1 << 32);
    } else {
        r->last_ext_ts = unwrap_ts(r, p.ts);
    }
    r->ops->packet(r, r->dp, &p, lost);
}

ms_rtp_receiver_t *ms_rtp_receiver_new(const ms_rtp_receiver_cfg_t *cfg, char *err, size_t errlen)
{
    const ms_rtp_depack_ops_t *ops = cfg ? ops_for(cfg->codec) : NULL;
    if (!ops || !cfg->on_frame) {
        if (err && errlen)
            snprintf(err, errlen, "unsupported codec or missing callback");
        return NULL;
    }
    if (cfg->clock_rate == 0) {
        if (err && errlen)
            snprintf(err, errlen, "clock rate is 0");
        return NULL;
    }
    ms_rtp_receiver_t *r = calloc(1, sizeof *r);
    if (!r)
        goto nomem;
    r->cfg = *cfg;
    r->cfg.fmtp = NULL; /* borrowed only during this call */
    r->ops = ops;
    r->params.codec = cfg->codec;
    r->params.kind = ms_codec_kind(cfg->codec);
    r->params.clock_rate = cfg->clock_rate;
    r->need_key = r->params.kind == MS_TRACK_VIDEO;
    ms_rtp_timeline_init(&r->tl, cfg->clock_rate, r->params.kind == MS_TRACK_VIDEO);
    if (r->params.kind == MS_TRACK_AUDIO) {
        r->params.sample_rate = (int)cfg->clock_rate;
        r->params.channels = cfg->channels;
    }
    r->dp = calloc(1, ops->state_size);
    if (!r->dp)
        goto nomem;
    if (ms_rtp_reorder_init(&r->ro, cfg->reorder_window, &r->st, deliver, r) != 0)
        goto nomem;
    if (ops->init(r, r->dp, cfg->fmtp, err, errlen) != 0)
        goto fail;
    if (r->params_dirty && r->cfg.on_params) {
        r->params_dirty = 0;
        r->cfg.on_params(r->cfg.ud, &r->params);
    }
    r->params_dirty = 0;
    return r;
nomem:
    if (err && errlen)
        snprintf(err, errlen, "out of memory");
fail:
    ms_rtp_receiver_free(r);
    return NULL;
}

void ms_rtp_receiver_free(ms_rtp_receiver_t *r)
{
    if (!r)
        return;
    ms_rtp_reorder_free(&r->ro);
    ms_frame_unref(r->held);
    if (r->dp) {
        r->ops->destroy(r->dp);
        free(r->dp);
    }
    free(r);
}

static void ssrc_change(ms_rtp_receiver_t *r, uint32_t ssrc)
{
    /* A new source: its sequence and timestamp spaces are unrelated to the
     * old one (RFC 3550 8.2). Drop partial state, start a new timeline. */
    r->st.ssrc_changes++;
    release_held(r, 0, 0);
    ms_rtp_reorder_reset(&r->ro);
    r->ops->reset(r, r->dp);
    r->ssrc = ssrc;
    ms_rtp_timeline_restart(&r->tl); /* continues one frame after the last output */
    r->ts_started = 0;
    r->have_sr = 0;
    r->have_transit = 0;
    r->expected_prior = r->received_prior = 0;
    if (r->params.kind == MS_TRACK_VIDEO)
        r->need_key = 1;
}

int ms_rtp_receiver_rtp(ms_rtp_receiver_t *r, const uint8_t *pkt, size_t len, int64_t now_us)
{
    ms_rtp_packet_t p;
    if (ms_rtp_packet_parse(pkt, len, &p) != 0) {
        r->st.malformed++;
        return -EINVAL;
    }
    if (r->cfg.payload_type >= 0 && p.pt != r->cfg.payload_type)
        return 0; /* another payload type on the same SSRC (e.g. comfort noise) */
    r->now_us = now_us;
    if (!r->have_ssrc) {
        r->have_ssrc = 1;
        r->ssrc = p.ssrc;
    } else if (p.ssrc != r->ssrc) {
        ssrc_change(r, p.ssrc);
    }
    r->st.packets++;
    r->st.bytes += p.payload_len;

    /* Interarrival jitter (RFC 3550 A.8), in timestamp units. */
    int64_t arrival = (int64_t)((double)now_us * r->cfg.clock_rate / 1e6);
    int64_t transit = arrival - (int64_t)p.ts;
    if (r->have_transit) {
        int64_t d = (int32_t)(uint32_t)(transit - r->last_transit);
        if (d < 0)
            d = -d;
        r->jitter_q4 += d - ((r->jitter_q4 + 8) >> 4);
    }
    r->have_transit = 1;
    r->last_transit = transit;

    r->cur_raw = pkt;
    r->cur_pkt = &p;
    int rc = ms_rtp_reorder_push(&r->ro, p.seq, pkt, len, now_us);
    r->cur_raw = NULL;
    r->cur_pkt = NULL;
    return rc != 0 ? -ENOMEM : 0;
}

int ms_rtp_receiver_rtcp(ms_rtp_receiver_t *r, const uint8_t *pkt, size_t len, int64_t now_us)
{
    ms_rtcp_sr_t sr;
    int rc = ms_rtcp_find_sr(pkt, len, &sr);
    if (rc < 0)
        return -EINVAL;
    if (rc == 0)
        return 0;
    if (r->have_ssrc && sr.ssrc != r->ssrc)
        return 0; /* another source (or a stale one) */
    if (!r->ts_started || !r->tl.started || r->tl.held)
        return 0; /* need an RTP timestamp to unwrap against, and a settled timeline */
    /* The SR's timestamp is "now" in the camera's RTP clock: one that does
     * not fit the last frame's (RFC 3550 6.4.1) by the jump rules would map
     * the capture times an hour off; the next SR will do. */
    int64_t sr_ext = unwrap_ts(r, sr.rtp_ts);
    int64_t d = sr_ext - r->tl.last_ext;
    int64_t el = now_us - r->tl.last_arr_us;
    int64_t a = el > 0 ? el * (int64_t)r->cfg.clock_rate / 1000000 : 0;
    if (d < -r->tl.thresh || d > a + r->tl.thresh)
        return 0;
    r->have_sr = 1;
    r->sr_ntp = sr.ntp;
    r->sr_pts = sr_ext + r->tl.off;
    r->sr_arrival_us = now_us;
    return 0;
}

void ms_rtp_receiver_flush(ms_rtp_receiver_t *r)
{
    ms_rtp_reorder_flush(&r->ro);
    r->ops->flush(r, r->dp);
    release_held(r, 0, 0);
}

const ms_rtp_stats_t *ms_rtp_receiver_stats(const ms_rtp_receiver_t *r)
{
    return &r->st;
}

const ms_codec_params_t *ms_rtp_receiver_params(const ms_rtp_receiver_t *r)
{
    return &r->params;
}

uint32_t ms_rtp_receiver_ssrc(const ms_rtp_receiver_t *r)
{
    return r->ssrc;
}

static int64_t ntp_to_unix_us(uint64_t ntp)
{
    int64_t sec = (int64_t)(ntp >> 32) - (int64_t)NTP_UNIX_OFFSET;
    int64_t frac_us = (int64_t)(((ntp & 0xffffffffu) * 1000000u) >> 32);
    return sec * 1000000 + frac_us;
}

int ms_rtp_receiver_ntp(const ms_rtp_receiver_t *r, int64_t pts, int64_t *wall_us)
{
    if (!r->have_sr)
        return 0;
    int64_t d = pts - r->sr_pts;
    *wall_us = ntp_to_unix_us(r->sr_ntp) + d * 1000000 / (int64_t)r->cfg.clock_rate;
    return 1;
}

size_t ms_rtp_receiver_rtcp_rr(ms_rtp_receiver_t *r, uint8_t *out, size_t cap, int64_t now_us)
{
    if (!r->have_ssrc || !r->ro.started)
        return 0;
    ms_rtcp_rr_t rr;
    memset(&rr, 0, sizeof rr);
    rr.reporter_ssrc = r->ssrc ^ 0x6d736d73u; /* stable, differs from the source */
    rr.source_ssrc = r->ssrc;
    uint64_t expected = r->ro.max_seen - r->ro.base + 1;
    uint64_t received = r->ro.received;
    int64_t cum = (int64_t)expected - (int64_t)received;
    rr.cumulative_lost = cum > INT32_MAX ? INT32_MAX : (int32_t)cum;
    uint64_t exp_int = expected - r->expected_prior;
    uint64_t rec_int = received - r->received_prior;
    r->expected_prior = expected;
    r->received_prior = received;
    if (exp_int > 0 && rec_int < exp_int)
        rr.fraction_lost = (uint8_t)(((exp_int - rec_int) << 8) / exp_int);
    /* extended highest sequence number: cycles << 16 | seq */
    rr.ext_highest_seq = (uint32_t)(r->ro.max_seen - (r->ro.base & ~(uint64_t)0xffff));
    rr.jitter = (uint32_t)(r->jitter_q4 >> 4);
    if (r->have_sr) {
        rr.lsr = (uint32_t)(r->sr_ntp >> 16);
        int64_t dl = now_us - r->sr_arrival_us;
        if (dl < 0)
            dl = 0;
        rr.dlsr = (uint32_t)(dl * 65536 / 1000000);
    }
    rr.cname = "mediaserver";
    return ms_rtcp_build_rr(&rr, out, cap);
}

/* ---- services for the depacketizers ---- */

ms_codec_params_t *ms_rtp_receiver_params_mut(ms_rtp_receiver_t *r)
{
    return &r->params;
}

void ms_rtp_receiver_params_changed(ms_rtp_receiver_t *r)
{
    r->params_dirty = 1;
}

void ms_rtp_receiver_count_malformed(ms_rtp_receiver_t *r)
{
    r->st.malformed++;
}

/* Whether a frame of len bytes and RTP timestamp ts may be emitted
 * (counts the drops). First emits a held frame (before any on_params that
 * belongs to this one). */
static int emit_ok(ms_rtp_receiver_t *r, size_t len, int *key, int corrupt, uint32_t ts)
{
    int video = r->params.kind == MS_TRACK_VIDEO;
    release_held(r, 1, ts);
    if (r->params_dirty) {
        r->params_dirty = 0;
        if (r->cfg.on_params)
            r->cfg.on_params(r->cfg.ud, &r->params);
    }
    if (!video)
        *key = 1;
    if (corrupt || len > MS_RTP_MAX_FRAME) {
        r->st.frames_dropped++;
        if (video)
            r->need_key = 1;
        return 0;
    }
    if (video && r->need_key && !*key) {
        if (r->seen_key)
            r->st.frames_dropped++; /* before the first keyframe: not a loss */
        return 0;
    }
    return 1;
}

/* Sets f's times and flags (tf: MS_FRAME_DISCONT or 0; f->flags already
 * holds MS_FRAME_KEY) and hands it to on_frame. */
static void publish(ms_rtp_receiver_t *r, ms_frame_t *f, int64_t pts, int64_t dts, int tf)
{
    r->st.ts_jumps = r->tl.jumps;
    r->st.ts_resyncs = r->tl.resyncs;
    f->pts = pts;
    f->dts = dts;
    f->flags = (uint8_t)((f->flags & MS_FRAME_KEY) | (tf & MS_FRAME_DISCONT));
    int64_t wall;
    if (ms_rtp_receiver_ntp(r, pts, &wall)) {
        f->wallclock_us = wall;
    } else {
        int64_t off = pts * 1000000 / (int64_t)r->cfg.clock_rate;
        if (!r->have_wall_base) {
            r->have_wall_base = 1;
            r->wall_base_us = r->now_us - off;
        }
        f->wallclock_us = r->wall_base_us + off;
    }
    r->st.frames++;
    r->cfg.on_frame(r->cfg.ud, f);
}

/* Emits the held frame, if any: next_ts is the RTP timestamp of the frame
 * that follows it (have_next), which tells an outlier from a lasting jump. */
static void release_held(ms_rtp_receiver_t *r, int have_next, uint32_t next_ts)
{
    if (!r->held)
        return;
    ms_frame_t *f = r->held;
    r->held = NULL;
    int64_t pts, dts;
    int tf = ms_rtp_timeline_resolve(&r->tl, have_next, have_next ? unwrap_ts(r, next_ts) : 0,
                                     r->now_us, &pts, &dts);
    publish(r, f, pts, dts, tf);
}

/* Stamps f (times, flags) and hands it to on_frame, or holds it when its
 * timestamp jumped (until the next frame or a flush). */
static void emit_stamped(ms_rtp_receiver_t *r, ms_frame_t *f, uint32_t ts, int key)
{
    r->need_key = 0;
    if (key)
        r->seen_key = 1;
    f->flags = key ? MS_FRAME_KEY : 0;
    int64_t pts, dts;
    int tf = ms_rtp_timeline_map(&r->tl, unwrap_ts(r, ts), r->now_us, &pts, &dts);
    r->st.ts_jumps = r->tl.jumps;
    if (tf & MS_RTP_TL_HOLD) {
        r->held = f;
        return;
    }
    publish(r, f, pts, dts, tf);
}

void ms_rtp_receiver_emit(ms_rtp_receiver_t *r, const uint8_t *data, size_t len, uint32_t ts,
                          int key, int corrupt)
{
    if (!emit_ok(r, len, &key, corrupt, ts))
        return;
    ms_frame_t *f = ms_frame_new(data, len);
    if (!f) {
        r->st.frames_dropped++;
        r->need_key = r->params.kind == MS_TRACK_VIDEO;
        return;
    }
    emit_stamped(r, f, ts, key);
}

void ms_rtp_receiver_emit_frame(ms_rtp_receiver_t *r, ms_frame_t *f, uint32_t ts, int key)
{
    if (!emit_ok(r, f->size, &key, 0, ts)) {
        ms_frame_unref(f);
        return;
    }
    f->track = 0;
    f->reserved = 0;
    emit_stamped(r, f, ts, key);
}
