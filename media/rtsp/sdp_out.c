/* SDP writer (media/rtsp/sdp_out.h). */
#include "media/rtsp/sdp_out.h"

#include <errno.h>
#include <string.h>

#include <openssl/evp.h>

/* Appends base64 (RFC 4648 section 4) of data. */
static void put_b64(ms_buf_t *out, const uint8_t *data, size_t len)
{
    unsigned char tmp[((MS_PARAM_SET_MAX + 2) / 3) * 4 + 1];
    if (len > MS_PARAM_SET_MAX) {
        out->err = 1;
        return;
    }
    int n = EVP_EncodeBlock(tmp, data, (int)len);
    if (n < 0) {
        out->err = 1;
        return;
    }
    ms_buf_append(out, tmp, (size_t)n);
}

static void put_hex(ms_buf_t *out, const uint8_t *d, size_t len)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        ms_buf_u8(out, (uint8_t)hx[d[i] >> 4]);
        ms_buf_u8(out, (uint8_t)hx[d[i] & 15]);
    }
}

int ms_sdp_out_pt(const ms_codec_params_t *p, int index)
{
    uint32_t rate = p->sample_rate > 0 ? (uint32_t)p->sample_rate : p->clock_rate;
    int mono = p->channels <= 1;
    if (p->codec == MS_CODEC_PCMU && rate == 8000 && mono)
        return 0;
    if (p->codec == MS_CODEC_PCMA && rate == 8000 && mono)
        return 8;
    return 96 + index;
}

static void put_h264(ms_buf_t *out, const ms_codec_params_t *p, int pt)
{
    ms_buf_printf(out, "a=rtpmap:%d H264/90000\r\n", pt);
    ms_buf_printf(out, "a=fmtp:%d packetization-mode=1", pt);
    /* RFC 6184 8.1: profile-level-id = profile_idc, constraint flags,
     * level_idc (the three bytes after the SPS NAL header). */
    if (p->sps_len >= 4)
        ms_buf_printf(out, ";profile-level-id=%02x%02x%02x", p->sps[1], p->sps[2], p->sps[3]);
    if (p->sps_len && p->pps_len) {
        ms_buf_printf(out, ";sprop-parameter-sets=");
        put_b64(out, p->sps, p->sps_len);
        ms_buf_u8(out, ',');
        put_b64(out, p->pps, p->pps_len);
    }
    ms_buf_printf(out, "\r\n");
}

static void put_h265(ms_buf_t *out, const ms_codec_params_t *p, int pt)
{
    ms_buf_printf(out, "a=rtpmap:%d H265/90000\r\n", pt);
    if (!p->vps_len && !p->sps_len && !p->pps_len)
        return;
    ms_buf_printf(out, "a=fmtp:%d ", pt);
    const char *sep = "";
    if (p->vps_len) {
        ms_buf_printf(out, "sprop-vps=");
        put_b64(out, p->vps, p->vps_len);
        sep = ";";
    }
    if (p->sps_len) {
        ms_buf_printf(out, "%ssprop-sps=", sep);
        put_b64(out, p->sps, p->sps_len);
        sep = ";";
    }
    if (p->pps_len) {
        ms_buf_printf(out, "%ssprop-pps=", sep);
        put_b64(out, p->pps, p->pps_len);
    }
    ms_buf_printf(out, "\r\n");
}

static void put_aac(ms_buf_t *out, const ms_codec_params_t *p, int pt)
{
    uint32_t rate = p->sample_rate > 0 ? (uint32_t)p->sample_rate : p->clock_rate;
    int ch = p->channels > 0 ? p->channels : 1;
    ms_buf_printf(out, "a=rtpmap:%d MPEG4-GENERIC/%u/%d\r\n", pt, rate, ch);
    /* RFC 3640 4.1 / 3.3.6 (AAC-hbr) */
    ms_buf_printf(out,
                  "a=fmtp:%d streamtype=5;profile-level-id=1;mode=AAC-hbr;sizelength=13;"
                  "indexlength=3;indexdeltalength=3",
                  pt);
    if (p->asc_len) {
        ms_buf_printf(out, ";config=");
        put_hex(out, p->asc, p->asc_len);
    }
    ms_buf_printf(out, "\r\n");
}

int ms_sdp_write(ms_buf_t *out, const char *session_name, const char *origin_addr,
                 uint64_t session_id, const ms_sdp_out_track_t *tracks, int n)
{
    if (n < 0 || n > MS_MAX_TRACKS * 4)
        return -EINVAL;
    const char *addr = origin_addr && origin_addr[0] ? origin_addr : "0.0.0.0";
    const char *af = strchr(addr, ':') ? "IP6" : "IP4";
    /* RFC 4566 5: v=, o=, s=, c=, t= in this order, then session attributes */
    ms_buf_printf(out, "v=0\r\n");
    ms_buf_printf(out, "o=- %llu 1 IN %s %s\r\n", (unsigned long long)session_id, af, addr);
    ms_buf_printf(out, "s=%s\r\n", session_name && session_name[0] ? session_name : "-");
    ms_buf_printf(out, "c=IN %s %s\r\n", af, strcmp(af, "IP6") == 0 ? "::" : "0.0.0.0");
    ms_buf_printf(out, "t=0 0\r\n");
    ms_buf_printf(out, "a=tool:mediaserver\r\n");
    ms_buf_printf(out, "a=control:*\r\n");
    ms_buf_printf(out, "a=range:npt=now-\r\n");
    int written = 0;
    for (int i = 0; i < n; i++) {
        const ms_codec_params_t *p = tracks[i].params;
        int pt = tracks[i].pt;
        const char *media;
        switch (p->codec) {
        case MS_CODEC_H264:
        case MS_CODEC_H265:
            media = "video";
            break;
        case MS_CODEC_AAC:
        case MS_CODEC_PCMA:
        case MS_CODEC_PCMU:
            media = "audio";
            break;
        case MS_CODEC_ONVIF_META:
            media = "application";
            break;
        default:
            continue;
        }
        ms_buf_printf(out, "m=%s 0 RTP/AVP %d\r\n", media, pt);
        switch (p->codec) {
        case MS_CODEC_H264:
            put_h264(out, p, pt);
            break;
        case MS_CODEC_H265:
            put_h265(out, p, pt);
            break;
        case MS_CODEC_AAC:
            put_aac(out, p, pt);
            break;
        case MS_CODEC_PCMA:
        case MS_CODEC_PCMU: {
            uint32_t rate = p->sample_rate > 0 ? (uint32_t)p->sample_rate : p->clock_rate;
            int ch = p->channels > 0 ? p->channels : 1;
            const char *enc = p->codec == MS_CODEC_PCMU ? "PCMU" : "PCMA";
            if (ch > 1)
                ms_buf_printf(out, "a=rtpmap:%d %s/%u/%d\r\n", pt, enc, rate, ch);
            else
                ms_buf_printf(out, "a=rtpmap:%d %s/%u\r\n", pt, enc, rate ? rate : 8000);
            break;
        }
        default:
            ms_buf_printf(out, "a=rtpmap:%d vnd.onvif.metadata/90000\r\n", pt);
            break;
        }
        if (tracks[i].control)
            ms_buf_printf(out, "a=control:%s\r\n", tracks[i].control);
        written++;
    }
    return out->err ? -ENOMEM : written;
}
