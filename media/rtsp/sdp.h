/* SDP (RFC 4566) as described by RTSP DESCRIBE (RFC 2326 appendix C):
 * session and media sections, c=, a=control, a=rtpmap, a=fmtp, a=range,
 * and the mapping of each media's format onto ms_codec_t.
 *
 * Pure code; an ms_sdp_t is owned by one thread. Bounded: at most
 * MS_SDP_MAX_MEDIA media sections (extra ones are ignored), lines longer
 * than MS_SDP_MAX_LINE are skipped, input over MS_SDP_MAX_TEXT is refused.
 * Content-Base resolution of control URLs is the caller's job
 * (ms_rtsp_url_resolve()). */
#ifndef MS_MEDIA_RTSP_SDP_H
#define MS_MEDIA_RTSP_SDP_H

#include <stddef.h>
#include <stdint.h>

#include "media/rtp/fmtp.h" /* ms_rtp_fmtp_get: a value of a format's fmtp */
#include "media/stream/frame.h"

#define MS_SDP_MAX_MEDIA   16
#define MS_SDP_MAX_FORMATS 8
#define MS_SDP_MAX_LINE    16384
#define MS_SDP_MAX_TEXT    (256 * 1024)

typedef struct {
    int pt;
    const char *encoding; /* rtpmap encoding name, or NULL */
    uint32_t clock_rate;  /* 0 when unknown */
    int channels;         /* rtpmap encoding parameters (audio), 0 = unknown */
    const char *fmtp;     /* parameters after "a=fmtp:<pt> ", or NULL */
} ms_sdp_format_t;

typedef struct {
    char media[16]; /* "video", "audio", "application", ... */
    int port;
    const char *proto; /* "RTP/AVP" ... */
    int nformats;
    ms_sdp_format_t formats[MS_SDP_MAX_FORMATS];
    const char *control;    /* a=control value, or NULL */
    const char *connection; /* media-level c= address, or NULL */
    int direction_sendonly, direction_recvonly, direction_inactive;

    /* Result of codec mapping: the first format of the m= line we can use. */
    ms_codec_t codec; /* MS_CODEC_NONE when nothing is usable */
    ms_track_kind_t kind;
    const ms_sdp_format_t *fmt; /* the chosen format, or NULL */
} ms_sdp_media_t;

typedef struct {
    char *text; /* private NUL-separated copy; every const char * points into it */
    const char *session_name;
    const char *control;    /* session-level a=control */
    const char *range;      /* session-level a=range value */
    const char *connection; /* session-level c= address */
    int nmedia;
    ms_sdp_media_t media[MS_SDP_MAX_MEDIA];
} ms_sdp_t;

/* Parses text[0..len) into *sdp (which must be released with ms_sdp_free(),
 * also after a failure). Returns 0, -EINVAL (not SDP: no v=0 line first,
 * or no m= line), -EMSGSIZE (too long) or -ENOMEM. */
int ms_sdp_parse(const char *text, size_t len, ms_sdp_t *sdp);
void ms_sdp_free(ms_sdp_t *sdp);

/* Number of media with a usable codec. */
int ms_sdp_usable(const ms_sdp_t *sdp);

#endif
