/* SDP writer (RFC 4566) for RTSP DESCRIBE answers (RFC 2326 appendix C):
 * one media section per track with its RTP payload format:
 *  - H.264: a=rtpmap H264/90000, a=fmtp packetization-mode=1,
 *    profile-level-id, sprop-parameter-sets (RFC 6184 section 8.1);
 *  - H.265: a=rtpmap H265/90000, a=fmtp sprop-vps/sps/pps (RFC 7798 7.1);
 *  - AAC:   a=rtpmap MPEG4-GENERIC/rate/channels, a=fmtp mode=AAC-hbr,
 *    sizelength=13, indexlength=3, indexdeltalength=3, config=ASC in hex
 *    (RFC 3640 section 4.1);
 *  - G.711: static payload types 0 (PCMU) / 8 (PCMA) at 8000 Hz mono,
 *    a dynamic type with an rtpmap otherwise (RFC 3551 section 6);
 *  - ONVIF metadata: a=rtpmap vnd.onvif.metadata/90000.
 * Each media gets a=control (the caller's per-track control URL); the
 * session has a=range:npt=now- (live) and a=control:*.
 *
 * Pure code; callable from any thread on its own buffers. */
#ifndef MS_MEDIA_RTSP_SDP_OUT_H
#define MS_MEDIA_RTSP_SDP_OUT_H

#include <stdint.h>

#include "media/stream/frame.h"
#include "util/buf.h"

typedef struct {
    const ms_codec_params_t *params; /* borrowed */
    int pt;                          /* from ms_sdp_out_pt() */
    const char *control;             /* a=control value, e.g. "trackID=0" or an absolute URL */
} ms_sdp_out_track_t;

/* The RTP payload type to use for a track: static 0/8 for G.711 at 8000 Hz
 * mono, else 96 + index (dynamic range, RFC 3551 section 3). */
int ms_sdp_out_pt(const ms_codec_params_t *p, int index);

/* Appends the SDP to out. origin_addr is the address for o= and c=
 * ("IN IP4 0.0.0.0" when NULL); session_name for s= ("-" when NULL).
 * Tracks with a codec the writer does not know are skipped. Returns the
 * number of media sections written or -ENOMEM / -EINVAL (n out of range). */
int ms_sdp_write(ms_buf_t *out, const char *session_name, const char *origin_addr,
                 uint64_t session_id, const ms_sdp_out_track_t *tracks, int n);

#endif
