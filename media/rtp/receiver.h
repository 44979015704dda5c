/* RTP receive path for one track: RTP header parsing (RFC 3550 section 5.1),
 * SSRC tracking, sequence unwrapping, a reorder window for UDP, loss and
 * duplicate detection, RTCP SR -> wallclock mapping (RFC 3550 section 6.4.1),
 * and depacketization into frames (RFC 6184 H.264, RFC 7798 H.265,
 * RFC 3640 AAC-hbr, RFC 3551 G.711, ONVIF metadata).
 *
 * Pure code: no I/O, no loop, no clock reads: the caller passes now_us, the
 * arrival time as wall-clock UTC microseconds (ms_wall_us()); it drives the
 * fallback wallclock_us before any SR, jitter and the RR delay fields.
 * One receiver per track; owned and called by one thread.
 *
 * Frames leave through on_frame with one reference that the callee owns.
 * Their pts/dts are the unwrapped 64-bit RTP timestamps of the track
 * (clock_rate units) minus the first timestamp seen, so the first frame has
 * pts 0 (the source aligns tracks; see ms_rtp_receiver_ntp()), plus an
 * offset that changes only when the timestamps jump (forward or back by
 * more than the arrival clock allows) for good, or the SSRC changes: that
 * frame carries MS_FRAME_DISCONT and continues one frame interval after the
 * last output, so dts is strictly increasing and continuous. A frame that
 * jumps is held until the next frame of the track (or a flush); when that
 * one fits the old timeline the held frame was a one-frame outlier and is
 * emitted on the old timeline without MS_FRAME_DISCONT (media/rtp/
 * timeline.c, docs/architecture.md "RTP timeline"). A frame whose
 * packets were not all received is dropped and, for video, every following
 * frame is dropped until the next keyframe (counted in stats).
 * For H.264/H.265 a keyframe always carries the parameter sets in-band
 * (inserted from the SDP/last-seen sets when the camera did not send them),
 * see media/stream/frame.h. When the parameter sets (and so the resolution)
 * change, on_params runs before the frame that uses them. */
#ifndef MS_MEDIA_RTP_RECEIVER_H
#define MS_MEDIA_RTP_RECEIVER_H

#include <stddef.h>
#include <stdint.h>

#include "media/stream/frame.h"

typedef struct ms_rtp_receiver ms_rtp_receiver_t;

typedef struct {
    ms_codec_t codec;
    uint32_t clock_rate;
    int payload_type;
    int channels;            /* audio channels from the rtpmap (0 = unknown) */
    const char *fmtp;        /* the SDP a=fmtp parameters after "PT ", or NULL */
    uint32_t reorder_window; /* packets held for reordering (UDP: 64; TCP: 0) */
    void (*on_frame)(void *ud, ms_frame_t *f);
    void (*on_params)(void *ud, const ms_codec_params_t *p);
    void *ud;
} ms_rtp_receiver_cfg_t;

typedef struct {
    uint64_t packets; /* accepted RTP packets */
    uint64_t bytes;   /* RTP payload bytes */
    uint64_t lost;    /* sequence numbers never received */
    uint64_t duplicates;
    uint64_t reordered;      /* arrived out of order but within the window */
    uint64_t malformed;      /* packets or payloads rejected as invalid */
    uint64_t frames;         /* frames emitted */
    uint64_t frames_dropped; /* frames dropped because of loss/corruption */
    uint32_t ssrc_changes;
    uint64_t ts_jumps;   /* RTP timestamp jumps: a new timeline was started */
    uint64_t ts_resyncs; /* re-anchors without a jump: SSRC change, back after an outlier */
} ms_rtp_stats_t;

/* Returns NULL on bad config (unsupported codec, unparsable fmtp for AAC)
 * with a reason in err (may be NULL). Initial params are parsed from fmtp
 * (sprop-parameter-sets / sprop-vps,sps,pps / config=) when present and
 * delivered through on_params during this call. */
ms_rtp_receiver_t *ms_rtp_receiver_new(const ms_rtp_receiver_cfg_t *cfg, char *err, size_t errlen);
void ms_rtp_receiver_free(ms_rtp_receiver_t *r);

/* Feed one RTP packet (UDP datagram or interleaved frame). Returns 0, or
 * -EINVAL for a malformed packet (counted, nothing else happens). */
int ms_rtp_receiver_rtp(ms_rtp_receiver_t *r, const uint8_t *pkt, size_t len, int64_t now_us);
/* Feed one RTCP compound packet. Returns 0 or -EINVAL. */
int ms_rtp_receiver_rtcp(ms_rtp_receiver_t *r, const uint8_t *pkt, size_t len, int64_t now_us);
/* Emit whatever the reorder window still holds (call on timeout/teardown). */
void ms_rtp_receiver_flush(ms_rtp_receiver_t *r);

const ms_rtp_stats_t *ms_rtp_receiver_stats(const ms_rtp_receiver_t *r);
const ms_codec_params_t *ms_rtp_receiver_params(const ms_rtp_receiver_t *r);
uint32_t ms_rtp_receiver_ssrc(const ms_rtp_receiver_t *r);

/* NTP mapping from the last RTCP SR: returns 1 and sets *wall_us to the UTC
 * microseconds that correspond to frame time pts (as emitted), or 0 when no
 * SR has been received yet. */
int ms_rtp_receiver_ntp(const ms_rtp_receiver_t *r, int64_t pts, int64_t *wall_us);

/* Builds an RTCP RR (+ SDES CNAME) for this receiver into out; returns its
 * length or 0 when there is nothing to report yet. */
size_t ms_rtp_receiver_rtcp_rr(ms_rtp_receiver_t *r, uint8_t *out, size_t cap, int64_t now_us);

#endif
