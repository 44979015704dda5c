/* RTP packetizers (media/rtp/packetize.h). */
#include "media/rtp/packetize.h"

#include <errno.h>
#include <string.h>

#define RTP_HDR 12
#define REC_HDR 4 /* RFC 2326 10.12: '$' channel len16 */

int ms_rtp_packetizer_init(ms_rtp_packetizer_t *p, const ms_rtp_packetizer_cfg_t *cfg)
{
    memset(p, 0, sizeof *p);
    switch (cfg->codec) {
    case MS_CODEC_H264:
    case MS_CODEC_H265:
    case MS_CODEC_AAC:
    case MS_CODEC_PCMA:
    case MS_CODEC_PCMU:
    case MS_CODEC_ONVIF_META:
        break;
    default:
        return -EINVAL;
    }
    p->cfg = *cfg;
    if (!p->cfg.mtu)
        p->cfg.mtu = MS_RTP_DEFAULT_MTU;
    if (p->cfg.mtu < MS_RTP_MIN_MTU || p->cfg.mtu > 65535)
        return -EINVAL;
    if (!p->cfg.clock_rate)
        p->cfg.clock_rate = 90000;
    if (p->cfg.channels <= 0)
        p->cfg.channels = 1;
    p->seq = cfg->seq;
    p->offset = cfg->ts_offset;
    return 0;
}

uint32_t ms_rtp_packetizer_ts(const ms_rtp_packetizer_t *p, int64_t pts)
{
    return (uint32_t)(uint64_t)(pts + p->offset);
}

/* Starts one record + RTP fixed header (RFC 3550 5.1); the caller appends
 * payload_len bytes of payload. */
static void put_header(ms_rtp_packetizer_t *p, ms_buf_t *out, int marker, uint32_t ts,
                       size_t payload_len)
{
    size_t len = RTP_HDR + payload_len;
    ms_buf_u8(out, '$');
    ms_buf_u8(out, p->cfg.channel);
    ms_buf_be16(out, (uint16_t)len);
    ms_buf_u8(out, 0x80); /* V=2, P=0, X=0, CC=0 */
    ms_buf_u8(out, (uint8_t)((marker ? 0x80 : 0) | (p->cfg.pt & 0x7f)));
    ms_buf_be16(out, p->seq++);
    ms_buf_be32(out, ts);
    ms_buf_be32(out, p->cfg.ssrc);
    p->packets++;
    p->octets += (uint32_t)payload_len;
}

/* One NAL unit (H.264: RFC 6184 5.6 single / 5.8 FU-A; H.265: RFC 7798
 * 4.4.1 single / 4.4.3 FU). last: it ends the access unit (marker). */
static int put_nal(ms_rtp_packetizer_t *p, ms_buf_t *out, const uint8_t *nal, size_t len,
                   uint32_t ts, int last, int hevc)
{
    size_t room = p->cfg.mtu - RTP_HDR;
    size_t hl = hevc ? 2 : 1;
    if (len < hl)
        return -EINVAL;
    if (len <= room) {
        put_header(p, out, last, ts, len);
        ms_buf_append(out, nal, len);
        return 1;
    }
    size_t fu_hdr = hevc ? 3 : 2;
    size_t chunk = room - fu_hdr;
    const uint8_t *d = nal + hl;
    size_t left = len - hl;
    int n = 0;
    int start = 1;
    while (left) {
        size_t take = left < chunk ? left : chunk;
        int end = take == left;
        put_header(p, out, end && last, ts, fu_hdr + take);
        if (hevc) {
            /* PayloadHdr: F and LayerId/TID kept, Type = 49 (RFC 7798 4.4.3) */
            ms_buf_u8(out, (uint8_t)((nal[0] & 0x81) | (49 << 1)));
            ms_buf_u8(out, nal[1]);
            ms_buf_u8(out,
                      (uint8_t)((start ? 0x80 : 0) | (end ? 0x40 : 0) | ((nal[0] >> 1) & 0x3f)));
        } else {
            /* FU indicator: F and NRI kept, Type = 28 (RFC 6184 5.8) */
            ms_buf_u8(out, (uint8_t)((nal[0] & 0xe0) | 28));
            ms_buf_u8(out, (uint8_t)((start ? 0x80 : 0) | (end ? 0x40 : 0) | (nal[0] & 0x1f)));
        }
        ms_buf_append(out, d, take);
        d += take;
        left -= take;
        start = 0;
        n++;
    }
    return n;
}

static int put_video(ms_rtp_packetizer_t *p, const ms_frame_t *f, ms_buf_t *out, uint32_t ts)
{
    int hevc = p->cfg.codec == MS_CODEC_H265;
    /* Validate the length prefixes first: the marker goes on the last NAL. */
    size_t off = 0, last_off = 0;
    int nnal = 0;
    while (off < f->size) {
        if (f->size - off < 4)
            return -EINVAL;
        uint32_t l = ms_rd_be32(f->data + off);
        if (l == 0 || l > f->size - off - 4)
            return -EINVAL;
        last_off = off;
        off += 4 + l;
        nnal++;
    }
    int total = 0;
    for (off = 0; nnal > 0 && off < f->size;) {
        uint32_t l = ms_rd_be32(f->data + off);
        int n = put_nal(p, out, f->data + off + 4, l, ts, off == last_off, hevc);
        if (n < 0)
            return n;
        total += n;
        off += 4 + l;
    }
    return total;
}

/* RFC 3640 3.2.1: AU-headers-length (bits) then one AU-header of
 * sizelength=13 + indexlength=3 (index 0); fragments of one AU each carry
 * the AU-size of the whole AU (3.2.3), the marker is set on the last. */
static int put_aac(ms_rtp_packetizer_t *p, const ms_frame_t *f, ms_buf_t *out, uint32_t ts)
{
    if (f->size == 0 || f->size > 8191)
        return -EINVAL;
    size_t chunk = p->cfg.mtu - RTP_HDR - 4;
    size_t left = f->size;
    const uint8_t *d = f->data;
    int n = 0;
    while (left) {
        size_t take = left < chunk ? left : chunk;
        put_header(p, out, take == left, ts, 4 + take);
        ms_buf_be16(out, 16);
        ms_buf_be16(out, (uint16_t)(f->size << 3));
        ms_buf_append(out, d, take);
        d += take;
        left -= take;
        n++;
    }
    return n;
}

/* G.711 (RFC 3551 4.5.14): one byte per sample and channel; a frame larger
 * than a packet is split, each part stamped with its first sample's time. */
static int put_g711(ms_rtp_packetizer_t *p, const ms_frame_t *f, ms_buf_t *out, uint32_t ts)
{
    size_t ch = (size_t)p->cfg.channels;
    size_t chunk = (p->cfg.mtu - RTP_HDR) / ch * ch;
    size_t done = 0;
    int n = 0;
    while (done < f->size) {
        size_t take = f->size - done < chunk ? f->size - done : chunk;
        put_header(p, out, 0, ts + (uint32_t)(done / ch), take);
        ms_buf_append(out, f->data + done, take);
        done += take;
        n++;
    }
    return n;
}

static int put_meta(ms_rtp_packetizer_t *p, const ms_frame_t *f, ms_buf_t *out, uint32_t ts)
{
    size_t chunk = p->cfg.mtu - RTP_HDR;
    size_t done = 0;
    int n = 0;
    while (done < f->size) {
        size_t take = f->size - done < chunk ? f->size - done : chunk;
        put_header(p, out, done + take == f->size, ts, take);
        ms_buf_append(out, f->data + done, take);
        done += take;
        n++;
    }
    return n;
}

int ms_rtp_packetize(ms_rtp_packetizer_t *p, const ms_frame_t *f, ms_buf_t *out)
{
    if ((f->flags & MS_FRAME_DISCONT) && p->started) {
        /* Keep the RTP timeline monotonic across a source restart. */
        int64_t step = p->cfg.clock_rate / 25;
        p->offset = (int64_t)p->last_ts + step - f->pts;
    }
    uint32_t ts = ms_rtp_packetizer_ts(p, f->pts);
    ms_rtp_packetizer_t saved = *p;
    int n;
    switch (p->cfg.codec) {
    case MS_CODEC_H264:
    case MS_CODEC_H265:
        n = put_video(p, f, out, ts);
        break;
    case MS_CODEC_AAC:
        n = put_aac(p, f, out, ts);
        break;
    case MS_CODEC_PCMA:
    case MS_CODEC_PCMU:
        n = put_g711(p, f, out, ts);
        break;
    case MS_CODEC_ONVIF_META:
        n = put_meta(p, f, out, ts);
        break;
    default:
        n = -EINVAL;
        break;
    }
    if (n >= 0 && out->err)
        n = -ENOMEM;
    if (n < 0) {
        int64_t off = p->offset;
        *p = saved;
        p->offset = off;
        return n;
    }
    p->started = 1;
    p->last_ts = ts;
    return n;
}

int ms_rtp_records_next(const uint8_t *buf, size_t len, size_t *off, const uint8_t **pkt,
                        size_t *pkt_len, uint8_t *channel)
{
    size_t o = *off;
    if (o >= len)
        return 0;
    if (len - o < REC_HDR || buf[o] != '$')
        return -EINVAL;
    size_t l = ms_rd_be16(buf + o + 2);
    if (l > len - o - REC_HDR)
        return -EINVAL;
    if (channel)
        *channel = buf[o + 1];
    *pkt = buf + o + REC_HDR;
    *pkt_len = l;
    *off = o + REC_HDR + l;
    return 1;
}

static void wr_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

size_t ms_rtcp_build_sr_packet(uint8_t *out, size_t cap, uint32_t ssrc, uint64_t ntp,
                               uint32_t rtp_ts, uint32_t packets, uint32_t octets,
                               const char *cname)
{
    size_t cl = cname ? strlen(cname) : 0;
    if (cl > 255)
        cl = 255;
    /* SDES chunk: SSRC, CNAME item (type, len, text), END, pad to 32 bits */
    size_t sdes_chunk = 4 + 2 + cl + 1;
    sdes_chunk = (sdes_chunk + 3) & ~(size_t)3;
    size_t total = 28 + 4 + sdes_chunk;
    if (cap < total)
        return 0;
    memset(out, 0, total);
    out[0] = 0x80; /* V=2, RC=0 */
    out[1] = 200;  /* SR */
    wr_be16(out + 2, 6);
    ms_wr_be32(out + 4, ssrc);
    ms_wr_be32(out + 8, (uint32_t)(ntp >> 32));
    ms_wr_be32(out + 12, (uint32_t)ntp);
    ms_wr_be32(out + 16, rtp_ts);
    ms_wr_be32(out + 20, packets);
    ms_wr_be32(out + 24, octets);
    uint8_t *s = out + 28;
    s[0] = 0x81; /* V=2, SC=1 */
    s[1] = 202;  /* SDES */
    wr_be16(s + 2, (uint16_t)((4 + sdes_chunk) / 4 - 1));
    ms_wr_be32(s + 4, ssrc);
    s[8] = 1; /* CNAME */
    s[9] = (uint8_t)cl;
    if (cl)
        memcpy(s + 10, cname, cl);
    /* END item and padding are the zeros already there */
    return total;
}

uint64_t ms_rtcp_ntp_from_unix_us(int64_t us)
{
    /* RFC 3550 section 4: NTP epoch is 1900-01-01, 2208988800 s before unix. */
    uint64_t sec = (uint64_t)(us / 1000000) + 2208988800ull;
    uint64_t frac = ((uint64_t)(us % 1000000) << 32) / 1000000;
    return (sec << 32) | frac;
}
