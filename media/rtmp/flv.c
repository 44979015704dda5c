/* FLV tag bodies <-> hub frames (media/rtmp/flv.h). Section numbers: FLV
 * 10.1 annex E; ISO/IEC 14496-15 5.3.3.1 (avcC), 8.3.3.1 (hvcC); Enhanced
 * RTMP v2 (Veovera, 2023) "ExVideoTagHeader". */
#include "media/rtmp/flv.h"

#include <errno.h>
#include <string.h>

#include "media/codec/aac.h"
#include "media/codec/h264.h"
#include "media/codec/h265.h"
#include "media/rtmp/amf0.h"

#define FOURCC_HVC1 0x68766331u /* "hvc1" */
#define FOURCC_AVC1 0x61766331u /* "avc1" */

void ms_flv_in_init(ms_flv_in_t *in)
{
    memset(in, 0, sizeof *in);
    in->nal_len = 4;
}

int64_t ms_flv_frame_ms(const ms_codec_params_t *p, int64_t t)
{
    uint32_t rate = p->clock_rate ? p->clock_rate : 90000;
    return t >= 0 ? t * 1000 / rate : -((-t) * 1000 / rate);
}

static int set_ps(uint8_t *dst, uint16_t *dlen, const uint8_t *src, size_t n)
{
    if (n == 0 || n > MS_PARAM_SET_MAX)
        return -EINVAL;
    memcpy(dst, src, n);
    *dlen = (uint16_t)n;
    return 0;
}

/* AVCDecoderConfigurationRecord: the first SPS and PPS. */
static int parse_avcc(ms_flv_in_t *in, const uint8_t *p, size_t n)
{
    ms_codec_params_t v;
    memset(&v, 0, sizeof v);
    if (n < 7 || p[0] != 1)
        return -EINVAL;
    int nal_len = (p[4] & 3) + 1;
    if (nal_len == 3)
        return -EINVAL; /* not a valid size (5.3.3.1.2) */
    size_t off = 5;
    int nsps = p[off++] & 0x1f;
    for (int i = 0; i < nsps; i++) {
        if (n - off < 2 || n - off - 2 < ms_rd_be16(p + off))
            return -EINVAL;
        size_t l = ms_rd_be16(p + off);
        if (i == 0 && set_ps(v.sps, &v.sps_len, p + off + 2, l) < 0)
            return -EINVAL;
        off += 2 + l;
    }
    if (off >= n)
        return -EINVAL;
    int npps = p[off++];
    for (int i = 0; i < npps; i++) {
        if (n - off < 2 || n - off - 2 < ms_rd_be16(p + off))
            return -EINVAL;
        size_t l = ms_rd_be16(p + off);
        if (i == 0 && set_ps(v.pps, &v.pps_len, p + off + 2, l) < 0)
            return -EINVAL;
        off += 2 + l;
    }
    if (!v.sps_len || !v.pps_len)
        return -EINVAL;
    ms_h264_sps_t sps;
    if (ms_h264_parse_sps(v.sps, v.sps_len, &sps) == 0) {
        v.width = sps.width;
        v.height = sps.height;
        v.profile = sps.profile_idc;
        v.level = sps.level_idc;
    }
    v.codec = MS_CODEC_H264;
    v.kind = MS_TRACK_VIDEO;
    v.clock_rate = 90000;
    in->changed |= !in->have_video || memcmp(&v, &in->video, sizeof v) != 0;
    in->video = v;
    in->have_video = 1;
    in->nal_len = nal_len;
    return 0;
}

/* HEVCDecoderConfigurationRecord: the first VPS, SPS and PPS. */
static int parse_hvcc(ms_flv_in_t *in, const uint8_t *p, size_t n)
{
    ms_codec_params_t v;
    memset(&v, 0, sizeof v);
    if (n < 23 || p[0] != 1)
        return -EINVAL;
    int nal_len = (p[21] & 3) + 1;
    if (nal_len == 3)
        return -EINVAL;
    int narr = p[22];
    size_t off = 23;
    for (int a = 0; a < narr; a++) {
        if (n - off < 3)
            return -EINVAL;
        int type = p[off] & 0x3f;
        int cnt = ms_rd_be16(p + off + 1);
        off += 3;
        for (int i = 0; i < cnt; i++) {
            if (n - off < 2 || n - off - 2 < ms_rd_be16(p + off))
                return -EINVAL;
            size_t l = ms_rd_be16(p + off);
            const uint8_t *d = p + off + 2;
            off += 2 + l;
            if (i != 0)
                continue;
            int r = 0;
            if (type == 32)
                r = set_ps(v.vps, &v.vps_len, d, l);
            else if (type == 33)
                r = set_ps(v.sps, &v.sps_len, d, l);
            else if (type == 34)
                r = set_ps(v.pps, &v.pps_len, d, l);
            if (r < 0)
                return r;
        }
    }
    if (!v.vps_len || !v.sps_len || !v.pps_len)
        return -EINVAL;
    ms_h265_sps_t sps;
    if (ms_h265_parse_sps(v.sps, v.sps_len, &sps) == 0) {
        v.width = sps.width;
        v.height = sps.height;
        v.profile = sps.general_profile_idc;
        v.level = sps.general_level_idc;
    }
    v.codec = MS_CODEC_H265;
    v.kind = MS_TRACK_VIDEO;
    v.clock_rate = 90000;
    in->changed |= !in->have_video || memcmp(&v, &in->video, sizeof v) != 0;
    in->video = v;
    in->have_video = 1;
    in->nal_len = nal_len;
    return 0;
}

static uint32_t rd_nal_len(const uint8_t *p, int size)
{
    uint32_t v = 0;
    for (int i = 0; i < size; i++)
        v = v << 8 | p[i];
    return v;
}

/* Length-prefixed NALUs (in->nal_len bytes each) into a frame with 4-byte
 * lengths; AUDs stripped, parameter sets prepended to a keyframe that has
 * none in-band. */
static int nalus_to_frame(ms_flv_in_t *in, int h265, const uint8_t *p, size_t n, int64_t dts_ms,
                          int32_t cts, ms_frame_t **out)
{
    int ls = in->nal_len;
    size_t need = 0, off = 0;
    int key = 0, has_ps = 0, count = 0;
    while (off < n) {
        if (n - off < (size_t)ls)
            return -EINVAL;
        uint32_t l = rd_nal_len(p + off, ls);
        off += (size_t)ls;
        if (l == 0 || n - off < l)
            return -EINVAL;
        int t = h265 ? ms_h265_nal_type(p[off]) : ms_h264_nal_type(p[off]);
        int aud = h265 ? t == 35 : t == MS_H264_NAL_AUD;
        if (!aud) {
            need += 4 + l;
            count++;
        }
        if (h265 ? ms_h265_is_irap(t) : t == MS_H264_NAL_IDR)
            key = 1;
        if (h265 ? t == 33 : t == MS_H264_NAL_SPS)
            has_ps = 1;
        off += l;
    }
    if (count == 0)
        return 0; /* nothing but AUDs */
    const ms_codec_params_t *v = &in->video;
    int add_ps = key && !has_ps;
    if (add_ps)
        need += (v->vps_len ? 4u + v->vps_len : 0) + 4u + v->sps_len + 4u + v->pps_len;
    if (need > UINT32_MAX)
        return -EINVAL;
    ms_frame_t *f = ms_frame_new(NULL, need);
    if (!f)
        return -ENOMEM;
    uint8_t *w = f->data;
    if (add_ps) {
        const uint8_t *ps[3] = {v->vps, v->sps, v->pps};
        size_t pl[3] = {v->vps_len, v->sps_len, v->pps_len};
        for (int i = 0; i < 3; i++) {
            if (!pl[i])
                continue;
            ms_wr_be32(w, (uint32_t)pl[i]);
            memcpy(w + 4, ps[i], pl[i]);
            w += 4 + pl[i];
        }
    }
    off = 0;
    while (off < n) {
        uint32_t l = rd_nal_len(p + off, ls);
        off += (size_t)ls;
        int t = h265 ? ms_h265_nal_type(p[off]) : ms_h264_nal_type(p[off]);
        if (!(h265 ? t == 35 : t == MS_H264_NAL_AUD)) {
            ms_wr_be32(w, l);
            memcpy(w + 4, p + off, l);
            w += 4 + l;
        }
        off += l;
    }
    f->track = 0;
    f->flags = key ? MS_FRAME_KEY : 0;
    f->dts = dts_ms * 90;
    f->pts = (dts_ms + cts) * 90;
    *out = f;
    return 1;
}

static int32_t rd_si24(const uint8_t *p)
{
    int32_t v = (int32_t)ms_rd_be24(p);
    return v & 0x800000 ? v - 0x1000000 : v;
}

int ms_flv_in_video(ms_flv_in_t *in, int64_t ts_ms, const uint8_t *p, size_t n, ms_frame_t **out)
{
    *out = NULL;
    if (n < 1)
        return -EINVAL;
    if (p[0] & 0x80) { /* Enhanced RTMP ExVideoTagHeader */
        int ptype = p[0] & 0x0f;
        int ftype = (p[0] >> 4) & 7;
        if (n < 5)
            return -EINVAL;
        uint32_t fourcc = ms_rd_be32(p + 1);
        if (fourcc != FOURCC_HVC1 && fourcc != FOURCC_AVC1)
            return -ENOTSUP;
        int h265 = fourcc == FOURCC_HVC1;
        if (ftype == 5)
            return 0; /* video info/command frame */
        p += 5;
        n -= 5;
        if (ptype == 0)
            return h265 ? parse_hvcc(in, p, n) : parse_avcc(in, p, n);
        if (ptype != 1 && ptype != 3)
            return 0; /* SequenceEnd, Metadata, MPEG2TSSequenceStart */
        if (!in->have_video || in->video.codec != (h265 ? MS_CODEC_H265 : MS_CODEC_H264))
            return 0; /* no configuration yet */
        int32_t cts = 0;
        if (ptype == 1) {
            if (n < 3)
                return -EINVAL;
            cts = rd_si24(p);
            p += 3;
            n -= 3;
        }
        return nalus_to_frame(in, h265, p, n, ts_ms, cts, out);
    }
    int codec = p[0] & 0x0f;
    if ((p[0] >> 4) == 5)
        return 0; /* video info/command frame (E.4.3.1) */
    if (codec != 7)
        return -ENOTSUP;
    if (n < 5)
        return -EINVAL;
    int ptype = p[1];
    int32_t cts = rd_si24(p + 2);
    if (ptype == 0)
        return parse_avcc(in, p + 5, n - 5);
    if (ptype != 1)
        return 0; /* end of sequence */
    if (!in->have_video || in->video.codec != MS_CODEC_H264)
        return 0;
    return nalus_to_frame(in, 0, p + 5, n - 5, ts_ms, cts, out);
}

int ms_flv_in_audio(ms_flv_in_t *in, int64_t ts_ms, const uint8_t *p, size_t n, ms_frame_t **out)
{
    *out = NULL;
    if (n < 1)
        return -EINVAL;
    int fmt = p[0] >> 4;
    if (fmt == 10) {
        if (n < 2)
            return -EINVAL;
        if (p[1] == 0) {
            ms_aac_config_t ac;
            if (n - 2 > sizeof in->audio.asc || ms_aac_parse_asc(p + 2, n - 2, &ac) < 0 ||
                ac.sample_rate <= 0)
                return -EINVAL;
            ms_codec_params_t a;
            memset(&a, 0, sizeof a);
            a.codec = MS_CODEC_AAC;
            a.kind = MS_TRACK_AUDIO;
            a.sample_rate = ac.sample_rate;
            a.clock_rate = (uint32_t)ac.sample_rate;
            a.channels = ac.channels;
            memcpy(a.asc, p + 2, n - 2);
            a.asc_len = (uint16_t)(n - 2);
            in->changed |= !in->have_audio || memcmp(&a, &in->audio, sizeof a) != 0;
            in->audio = a;
            in->have_audio = 1;
            return 0;
        }
        if (!in->have_audio || in->audio.codec != MS_CODEC_AAC)
            return 0;
        p += 2;
        n -= 2;
    } else if (fmt == 7 || fmt == 8) {
        ms_codec_t c = fmt == 7 ? MS_CODEC_PCMA : MS_CODEC_PCMU;
        if (!in->have_audio || in->audio.codec != c) {
            memset(&in->audio, 0, sizeof in->audio);
            in->audio.codec = c;
            in->audio.kind = MS_TRACK_AUDIO;
            in->audio.sample_rate = 8000;
            in->audio.clock_rate = 8000;
            in->audio.channels = 1;
            in->have_audio = 1;
            in->changed = 1;
        }
        p += 1;
        n -= 1;
    } else {
        return -ENOTSUP;
    }
    if (n == 0)
        return 0;
    ms_frame_t *f = ms_frame_new(p, n);
    if (!f)
        return -ENOMEM;
    f->track = 0;
    f->flags = MS_FRAME_KEY;
    f->dts = f->pts = ts_ms * (int64_t)in->audio.clock_rate / 1000;
    *out = f;
    return 1;
}

int ms_flv_out_supported(const ms_codec_params_t *p)
{
    switch (p->codec) {
    case MS_CODEC_H264:
    case MS_CODEC_H265:
    case MS_CODEC_AAC:
    case MS_CODEC_PCMA:
    case MS_CODEC_PCMU:
        return 1;
    default:
        return 0;
    }
}

static void put_si24(ms_buf_t *out, int32_t v)
{
    ms_buf_be24(out, (uint32_t)v & 0xffffffu);
}

int ms_flv_out_video_seq(const ms_codec_params_t *p, ms_buf_t *out)
{
    uint8_t rec[2 * MS_PARAM_SET_MAX * 3 + 64];
    size_t n;
    if (p->codec == MS_CODEC_H264) {
        n = ms_h264_avcc(p->sps, p->sps_len, p->pps, p->pps_len, rec, sizeof rec);
        if (!n || !p->sps_len || !p->pps_len)
            return -EINVAL;
        ms_buf_u8(out, 0x17);
        ms_buf_u8(out, 0);
        ms_buf_be24(out, 0);
    } else if (p->codec == MS_CODEC_H265) {
        n = ms_h265_hvcc(p->vps, p->vps_len, p->sps, p->sps_len, p->pps, p->pps_len, rec,
                         sizeof rec);
        if (!n)
            return -EINVAL;
        ms_buf_u8(out, 0x80 | 0x10 | 0); /* keyframe, SequenceStart */
        ms_buf_be32(out, FOURCC_HVC1);
    } else {
        return -ENOTSUP;
    }
    ms_buf_append(out, rec, n);
    return out->err ? -ENOMEM : 0;
}

int ms_flv_out_video(const ms_codec_params_t *p, const ms_frame_t *f, int32_t cts_ms, ms_buf_t *out)
{
    int key = (f->flags & MS_FRAME_KEY) != 0;
    if (cts_ms < -0x800000 || cts_ms > 0x7fffff)
        cts_ms = 0;
    if (p->codec == MS_CODEC_H264) {
        ms_buf_u8(out, key ? 0x17 : 0x27);
        ms_buf_u8(out, 1);
        put_si24(out, cts_ms);
    } else if (p->codec == MS_CODEC_H265) {
        ms_buf_u8(out, (uint8_t)(0x80 | (key ? 0x10 : 0x20) | 1)); /* CodedFrames */
        ms_buf_be32(out, FOURCC_HVC1);
        put_si24(out, cts_ms);
    } else {
        return -ENOTSUP;
    }
    ms_buf_append(out, f->data, f->size); /* 4-byte lengths, as the config says */
    return out->err ? -ENOMEM : 0;
}

int ms_flv_out_audio_seq(const ms_codec_params_t *p, ms_buf_t *out)
{
    if (p->codec == MS_CODEC_PCMA || p->codec == MS_CODEC_PCMU)
        return 0;
    if (p->codec != MS_CODEC_AAC || !p->asc_len)
        return -ENOTSUP;
    ms_buf_u8(out, 0xaf); /* E.4.2.1: AAC is always 44 kHz, 16-bit, stereo here */
    ms_buf_u8(out, 0);
    ms_buf_append(out, p->asc, p->asc_len);
    return out->err ? -ENOMEM : 0;
}

int ms_flv_out_audio(const ms_codec_params_t *p, const ms_frame_t *f, ms_buf_t *out)
{
    if (p->codec == MS_CODEC_AAC) {
        ms_buf_u8(out, 0xaf);
        ms_buf_u8(out, 1);
    } else if (p->codec == MS_CODEC_PCMA || p->codec == MS_CODEC_PCMU) {
        ms_buf_u8(out, p->codec == MS_CODEC_PCMA ? 0x72 : 0x82); /* 16-bit flag as ffmpeg */
    } else {
        return -ENOTSUP;
    }
    ms_buf_append(out, f->data, f->size);
    return out->err ? -ENOMEM : 0;
}

void ms_flv_out_metadata(const ms_codec_params_t *v, const ms_codec_params_t *a, ms_buf_t *out)
{
    ms_amf0_put_string(out, "onMetaData");
    ms_amf0_put_ecma_start(out, 0);
    if (v) {
        ms_amf0_put_key(out, "width");
        ms_amf0_put_number(out, v->width);
        ms_amf0_put_key(out, "height");
        ms_amf0_put_number(out, v->height);
        ms_amf0_put_key(out, "videocodecid");
        ms_amf0_put_number(out, v->codec == MS_CODEC_H265 ? (double)FOURCC_HVC1 : 7);
    }
    if (a) {
        ms_amf0_put_key(out, "audiocodecid");
        ms_amf0_put_number(out, a->codec == MS_CODEC_AAC ? 10 : a->codec == MS_CODEC_PCMA ? 7 : 8);
        ms_amf0_put_key(out, "audiosamplerate");
        ms_amf0_put_number(out, a->sample_rate);
        ms_amf0_put_key(out, "stereo");
        ms_amf0_put_bool(out, a->channels > 1);
    }
    ms_amf0_put_object_end(out);
}

void ms_flv_file_header(ms_buf_t *out, int has_video, int has_audio)
{
    ms_buf_append(out, "FLV", 3);
    ms_buf_u8(out, 1);
    ms_buf_u8(out, (uint8_t)((has_audio ? 4 : 0) | (has_video ? 1 : 0)));
    ms_buf_be32(out, 9);
    ms_buf_be32(out, 0); /* PreviousTagSize0 */
}

void ms_flv_file_tag(ms_buf_t *out, uint8_t type, uint32_t ts_ms, const uint8_t *body, size_t len)
{
    ms_buf_u8(out, type);
    ms_buf_be24(out, (uint32_t)len);
    ms_buf_be24(out, ts_ms & 0xffffffu);
    ms_buf_u8(out, (uint8_t)(ts_ms >> 24)); /* TimestampExtended */
    ms_buf_be24(out, 0);                    /* StreamID */
    ms_buf_append(out, body, len);
    ms_buf_be32(out, (uint32_t)(11 + len));
}

void ms_flv_play_init(ms_flv_play_t *pl)
{
    memset(pl, 0, sizeof *pl);
    pl->vtrack = pl->atrack = -1;
    pl->need_key = 1;
}

void ms_flv_play_free(ms_flv_play_t *pl)
{
    ms_buf_free(&pl->scratch);
}

int ms_flv_play_tracks(ms_flv_play_t *pl, const ms_codec_params_t *tracks, int n)
{
    pl->vtrack = pl->atrack = -1;
    for (int i = 0; i < n; i++) {
        if (!ms_flv_out_supported(&tracks[i]))
            continue;
        if (tracks[i].kind == MS_TRACK_VIDEO && pl->vtrack < 0) {
            pl->vtrack = i;
            pl->v = tracks[i];
        } else if (tracks[i].kind == MS_TRACK_AUDIO && pl->atrack < 0) {
            pl->atrack = i;
            pl->a = tracks[i];
        }
    }
    pl->headers_sent = 0;
    pl->need_key = 1;
    pl->rebase = pl->have_base; /* a new source session: a new timeline */
    return (pl->vtrack >= 0) + (pl->atrack >= 0);
}

void ms_flv_play_resync(ms_flv_play_t *pl)
{
    pl->need_key = 1;
}

static int emit_buf(ms_flv_play_t *pl, uint8_t type, uint32_t ts, ms_flv_emit_fn emit, void *ud)
{
    if (pl->scratch.err)
        return -ENOMEM;
    emit(ud, type, ts, pl->scratch.data, pl->scratch.len);
    ms_buf_reset(&pl->scratch);
    return 1;
}

int ms_flv_play_frame(ms_flv_play_t *pl, const ms_frame_t *f, const ms_codec_params_t *cur,
                      ms_flv_emit_fn emit, void *ud)
{
    int video = f->track == pl->vtrack && pl->vtrack >= 0;
    int audio = f->track == pl->atrack && pl->atrack >= 0;
    if (!video && !audio)
        return 0;
    int key = video && (f->flags & MS_FRAME_KEY);
    if (f->flags & MS_FRAME_DISCONT)
        pl->rebase = pl->have_base; /* also when this frame is skipped below */
    if (pl->vtrack >= 0 && pl->need_key) {
        if (!key)
            return 0; /* audio too: the output starts with the video keyframe */
        pl->need_key = 0;
    }
    const ms_codec_params_t *p = video ? &pl->v : &pl->a;
    int64_t ms = ms_flv_frame_ms(p, f->dts);
    if (!pl->have_base) {
        pl->have_base = 1;
        pl->base_ms = ms;
    }
    int64_t out = ms - pl->base_ms;
    if (pl->rebase || out < pl->last_ms - 10000 || out > pl->last_ms + 10000) {
        pl->rebase = 0;
        pl->base_ms = ms - (pl->last_ms + 40); /* continue the output timeline */
        out = pl->last_ms + 40;
    }
    if (out < 0)
        out = 0;
    if (out > pl->last_ms)
        pl->last_ms = out;
    uint32_t ts = (uint32_t)out;
    int n = 0, r;
    if (key && cur && cur->codec == pl->v.codec &&
        (cur->sps_len != pl->v.sps_len || memcmp(cur->sps, pl->v.sps, cur->sps_len) ||
         cur->pps_len != pl->v.pps_len || memcmp(cur->pps, pl->v.pps, cur->pps_len))) {
        pl->v = *cur; /* in-band parameter change */
        if (pl->headers_sent && ms_flv_out_video_seq(&pl->v, &pl->scratch) == 0) {
            if ((r = emit_buf(pl, MS_FLV_TAG_VIDEO, ts, emit, ud)) < 0)
                return r;
            n++;
        }
    }
    if (!pl->headers_sent) {
        pl->headers_sent = 1;
        ms_flv_out_metadata(pl->vtrack >= 0 ? &pl->v : NULL, pl->atrack >= 0 ? &pl->a : NULL,
                            &pl->scratch);
        if ((r = emit_buf(pl, MS_FLV_TAG_SCRIPT, ts, emit, ud)) < 0)
            return r;
        n++;
        if (pl->vtrack >= 0 && ms_flv_out_video_seq(&pl->v, &pl->scratch) == 0) {
            if ((r = emit_buf(pl, MS_FLV_TAG_VIDEO, ts, emit, ud)) < 0)
                return r;
            n++;
        }
        ms_buf_reset(&pl->scratch);
        if (pl->atrack >= 0 && ms_flv_out_audio_seq(&pl->a, &pl->scratch) == 0 && pl->scratch.len) {
            if ((r = emit_buf(pl, MS_FLV_TAG_AUDIO, ts, emit, ud)) < 0)
                return r;
            n++;
        }
        ms_buf_reset(&pl->scratch);
    }
    if (video) {
        int64_t cts = ms_flv_frame_ms(p, f->pts) - ms_flv_frame_ms(p, f->dts);
        r = ms_flv_out_video(&pl->v, f, (int32_t)cts, &pl->scratch);
    } else {
        r = ms_flv_out_audio(&pl->a, f, &pl->scratch);
    }
    if (r < 0) {
        ms_buf_reset(&pl->scratch);
        return r == -ENOMEM ? r : n;
    }
    if ((r = emit_buf(pl, video ? MS_FLV_TAG_VIDEO : MS_FLV_TAG_AUDIO, ts, emit, ud)) < 0)
        return r;
    return n + 1;
}
