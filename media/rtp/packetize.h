/* RTP send path for one track: packetization of frames (media/stream/frame.h)
 * into RTP packets (RFC 3550 section 5.1 fixed header) for
 *  - H.264 (RFC 6184: single NAL unit packets 5.6, FU-A 5.8; packetization-mode=1),
 *  - H.265 (RFC 7798: single NAL unit packets 4.4.1, FU 4.4.3),
 *  - AAC   (RFC 3640 3.3.6 AAC-hbr: one AU per packet, 13-bit AU-size,
 *           3-bit AU-Index; an AU bigger than the MTU is fragmented, 3.2.3),
 *  - G.711 (RFC 3551 4.5.14: PCMU/PCMA, 8 bits per sample),
 *  - ONVIF metadata (split on the MTU, marker on the last packet),
 * and RTCP sender reports (RFC 3550 6.4.1 SR + 6.5 SDES CNAME).
 *
 * Output records: every packet is written in the interleaved framing of
 * RFC 2326 section 10.12 ('$', channel, 16-bit length, packet) so that one
 * buffer can be written as is to a TCP-interleaved client (channel patched
 * when the client chose another one) or walked packet by packet for UDP
 * (ms_rtp_records_next()). The sequence numbers, SSRC and timestamps are
 * stream-wide: one packetizer per track of a stream, shared by every client.
 *
 * Pure code: no I/O, no clock reads, no allocation beyond the ms_buf_t the
 * caller passes. A packetizer is a value owned by one thread. */
#ifndef MS_MEDIA_RTP_PACKETIZE_H
#define MS_MEDIA_RTP_PACKETIZE_H

#include <stddef.h>
#include <stdint.h>

#include "media/stream/frame.h"
#include "util/buf.h"

#define MS_RTP_DEFAULT_MTU 1400 /* RTP packet size (header included) */
#define MS_RTP_MIN_MTU     64

typedef struct {
    ms_codec_t codec;
    uint8_t pt;
    uint8_t channel;     /* interleaved channel written in each record */
    uint32_t clock_rate; /* the track's clock (frame pts units) */
    uint32_t ssrc;
    uint16_t seq;       /* sequence number of the first packet */
    uint32_t ts_offset; /* RTP timestamp = pts + ts_offset (mod 2^32) */
    size_t mtu;         /* max RTP packet size; 0 = MS_RTP_DEFAULT_MTU */
    int channels;       /* G.711: audio channels (samples per byte group); 0 = 1 */
} ms_rtp_packetizer_cfg_t;

typedef struct {
    ms_rtp_packetizer_cfg_t cfg;
    uint16_t seq;     /* next sequence number */
    int64_t offset;   /* current pts -> RTP timestamp offset */
    int started;      /* a frame was packetized */
    uint32_t last_ts; /* RTP timestamp of the last frame */
    uint32_t packets; /* sender's packet count (RFC 3550 6.4.1) */
    uint32_t octets;  /* sender's payload octet count */
} ms_rtp_packetizer_t;

/* Returns 0 or -EINVAL (unsupported codec, MTU below MS_RTP_MIN_MTU). */
int ms_rtp_packetizer_init(ms_rtp_packetizer_t *p, const ms_rtp_packetizer_cfg_t *cfg);

/* Appends the packets of frame f (borrowed) to out. The marker bit is set
 * on the last packet of a video access unit / metadata frame / AAC AU.
 * A frame with MS_FRAME_DISCONT (after the first) keeps the RTP timestamps
 * continuous: the new timeline starts one nominal frame (40 ms) after the
 * last timestamp sent. Returns the number of packets (>= 0; 0 for an empty
 * video frame), -EINVAL (malformed length prefixes, AAC AU over 8191 bytes)
 * or -ENOMEM (out->err). On error nothing is counted, but out may hold a
 * partial tail: the caller truncates back to its previous length. */
int ms_rtp_packetize(ms_rtp_packetizer_t *p, const ms_frame_t *f, ms_buf_t *out);

/* The RTP timestamp that the frame time pts maps to now. */
uint32_t ms_rtp_packetizer_ts(const ms_rtp_packetizer_t *p, int64_t pts);

/* Walks the records of buf[0..len): on success sets *pkt and *pkt_len to the
 * next RTP packet (and *channel when not NULL), advances *off and returns 1;
 * returns 0 at the end and -EINVAL on a malformed record. */
int ms_rtp_records_next(const uint8_t *buf, size_t len, size_t *off, const uint8_t **pkt,
                        size_t *pkt_len, uint8_t *channel);

/* RTCP compound packet: SR (RFC 3550 6.4.1, no report blocks) + SDES with
 * CNAME (6.5.1). ntp is 32.32 fixed point seconds since 1900. Returns the
 * length or 0 when cap is too small (cname is cut to 255 bytes). */
size_t ms_rtcp_build_sr_packet(uint8_t *out, size_t cap, uint32_t ssrc, uint64_t ntp,
                               uint32_t rtp_ts, uint32_t packets, uint32_t octets,
                               const char *cname);

/* UTC microseconds since the unix epoch -> NTP 32.32 (RFC 3550 section 4). */
uint64_t ms_rtcp_ntp_from_unix_us(int64_t us);

#endif
