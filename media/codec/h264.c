/* H.264 sequence parameter set parsing (ITU-T H.264 7.3.2.1.1, E.1.1) and the
 * AVCDecoderConfigurationRecord (ISO/IEC 14496-15 5.3.3.1). */
#include "media/codec/h264.h"

#include <errno.h>
#include <string.h>

#include "media/codec/nal.h"

#define SPS_MAX 4096

/* 7.3.2.1.1.1 scaling_list(): only parsed to skip it. */
static void skip_scaling_list(ms_bits_t *b, int size)
{
    int last = 8, next = 8;
    for (int j = 0; j < size && !b->err; j++) {
        if (next != 0) {
            int32_t delta = ms_bits_se(b);
            if (delta < -128 || delta > 127) {
                b->err = 1;
                return;
            }
            next = (last + delta + 256) % 256;
        }
        last = next == 0 ? last : next;
    }
}

static int high_profile(int p)
{
    switch (p) {
    case 100:
    case 110:
    case 122:
    case 244:
    case 44:
    case 83:
    case 86:
    case 118:
    case 128:
    case 138:
    case 139:
    case 134:
    case 135:
        return 1;
    default:
        return 0;
    }
}

/* E.1.1 vui_parameters(): only up to the timing info. */
static void parse_vui(ms_bits_t *b, ms_h264_sps_t *s)
{
    if (ms_bits_read(b, 1)) {          /* aspect_ratio_info_present_flag */
        if (ms_bits_read(b, 8) == 255) /* Extended_SAR */
            ms_bits_skip(b, 32);
    }
    if (ms_bits_read(b, 1)) /* overscan_info_present_flag */
        ms_bits_skip(b, 1);
    if (ms_bits_read(b, 1)) { /* video_signal_type_present_flag */
        ms_bits_skip(b, 4);
        if (ms_bits_read(b, 1))
            ms_bits_skip(b, 24);
    }
    if (ms_bits_read(b, 1)) { /* chroma_loc_info_present_flag */
        ms_bits_ue(b);
        ms_bits_ue(b);
    }
    if (ms_bits_read(b, 1)) { /* timing_info_present_flag */
        uint32_t units = ms_bits_read(b, 32);
        uint32_t scale = ms_bits_read(b, 32);
        if (!b->err && units && scale && scale <= INT32_MAX && units <= INT32_MAX / 2) {
            /* A frame is two field ticks (E.2.1, equation C-1). */
            s->fps_num = (int)scale;
            s->fps_den = (int)(units * 2);
        }
    }
}

int ms_h264_parse_sps(const uint8_t *nal, size_t len, ms_h264_sps_t *out)
{
    uint8_t rbsp[SPS_MAX];
    if (!nal || len < 4 || (nal[0] & 0x1f) != MS_H264_NAL_SPS)
        return -EINVAL;
    if (len > SPS_MAX)
        len = SPS_MAX; /* everything we read lies well within the first bytes */
    size_t n = ms_nal_unescape(rbsp, nal + 1, len - 1);
    ms_bits_t b;
    ms_bits_init(&b, rbsp, n);

    ms_h264_sps_t s;
    memset(&s, 0, sizeof s);
    s.profile_idc = (int)ms_bits_read(&b, 8);
    s.constraint_flags = (int)ms_bits_read(&b, 8);
    s.level_idc = (int)ms_bits_read(&b, 8);
    if (ms_bits_ue(&b) > 31) /* seq_parameter_set_id */
        return -EINVAL;
    s.chroma_format_idc = 1;
    s.bit_depth_luma = s.bit_depth_chroma = 8;
    int separate_planes = 0;
    if (high_profile(s.profile_idc)) {
        uint32_t cf = ms_bits_ue(&b);
        if (cf > 3)
            return -EINVAL;
        s.chroma_format_idc = (int)cf;
        if (cf == 3)
            separate_planes = (int)ms_bits_read(&b, 1);
        uint32_t bdl = ms_bits_ue(&b), bdc = ms_bits_ue(&b);
        if (bdl > 6 || bdc > 6)
            return -EINVAL;
        s.bit_depth_luma = (int)bdl + 8;
        s.bit_depth_chroma = (int)bdc + 8;
        ms_bits_skip(&b, 1);       /* qpprime_y_zero_transform_bypass_flag */
        if (ms_bits_read(&b, 1)) { /* seq_scaling_matrix_present_flag */
            int lists = cf != 3 ? 8 : 12;
            for (int i = 0; i < lists && !b.err; i++)
                if (ms_bits_read(&b, 1))
                    skip_scaling_list(&b, i < 6 ? 16 : 64);
        }
    }
    if (ms_bits_ue(&b) > 12) /* log2_max_frame_num_minus4 */
        return -EINVAL;
    uint32_t poc_type = ms_bits_ue(&b);
    if (poc_type == 0) {
        if (ms_bits_ue(&b) > 12) /* log2_max_pic_order_cnt_lsb_minus4 */
            return -EINVAL;
    } else if (poc_type == 1) {
        ms_bits_skip(&b, 1);
        ms_bits_se(&b);
        ms_bits_se(&b);
        uint32_t cycle = ms_bits_ue(&b);
        if (cycle > 255)
            return -EINVAL;
        for (uint32_t i = 0; i < cycle && !b.err; i++)
            ms_bits_se(&b);
    } else if (poc_type != 2) {
        return -EINVAL;
    }
    ms_bits_ue(&b);      /* max_num_ref_frames */
    ms_bits_skip(&b, 1); /* gaps_in_frame_num_value_allowed_flag */
    uint32_t wmbs = ms_bits_ue(&b) + 1;
    uint32_t hmaps = ms_bits_ue(&b) + 1;
    s.frame_mbs_only = (int)ms_bits_read(&b, 1);
    if (!s.frame_mbs_only)
        ms_bits_skip(&b, 1); /* mb_adaptive_frame_field_flag */
    ms_bits_skip(&b, 1);     /* direct_8x8_inference_flag */
    uint32_t cl = 0, cr = 0, ct = 0, cb = 0;
    if (ms_bits_read(&b, 1)) { /* frame_cropping_flag */
        cl = ms_bits_ue(&b);
        cr = ms_bits_ue(&b);
        ct = ms_bits_ue(&b);
        cb = ms_bits_ue(&b);
    }
    if (b.err || wmbs > 1024 || hmaps > 1024)
        return -EINVAL;
    if (ms_bits_read(&b, 1)) /* vui_parameters_present_flag */
        parse_vui(&b, &s);
    /* A truncated VUI still leaves a usable resolution; drop only timing. */
    if (b.err)
        s.fps_num = s.fps_den = 0;

    /* 7.4.2.1.1: crop units depend on ChromaArrayType. */
    int chroma_array_type = separate_planes ? 0 : s.chroma_format_idc;
    int fm = 2 - s.frame_mbs_only;
    uint32_t cux = 1, cuy = (uint32_t)fm;
    if (chroma_array_type != 0) {
        cux = chroma_array_type == 3 ? 1 : 2;
        cuy = (chroma_array_type == 1 ? 2u : 1u) * (uint32_t)fm;
    }
    uint64_t w = (uint64_t)wmbs * 16, h = (uint64_t)hmaps * 16 * (uint64_t)fm;
    uint64_t cw = (uint64_t)cux * ((uint64_t)cl + cr), ch = (uint64_t)cuy * ((uint64_t)ct + cb);
    if (cw >= w || ch >= h)
        return -EINVAL;
    s.width = (int)(w - cw);
    s.height = (int)(h - ch);
    *out = s;
    return 0;
}

static size_t put16(uint8_t *p, size_t len)
{
    p[0] = (uint8_t)(len >> 8);
    p[1] = (uint8_t)len;
    return 2;
}

size_t ms_h264_avcc(const uint8_t *sps, size_t sps_len, const uint8_t *pps, size_t pps_len,
                    uint8_t *out, size_t cap)
{
    if (!sps || !pps || sps_len < 4 || pps_len < 1 || sps_len > 0xffff || pps_len > 0xffff)
        return 0;
    int profile = sps[1];
    /* ISO/IEC 14496-15 (4th ed.) 5.3.3.1: the chroma/bit-depth extension is
     * present for every profile but Baseline (66), Main (77), Extended (88). */
    int ext = profile != 66 && profile != 77 && profile != 88;
    size_t need = 6 + 2 + sps_len + 1 + 2 + pps_len + (ext ? 4 : 0);
    if (cap < need)
        return 0;
    size_t o = 0;
    out[o++] = 1;      /* configurationVersion */
    out[o++] = sps[1]; /* AVCProfileIndication */
    out[o++] = sps[2]; /* profile_compatibility */
    out[o++] = sps[3]; /* AVCLevelIndication */
    out[o++] = 0xff;   /* reserved '111111' + lengthSizeMinusOne = 3 */
    out[o++] = 0xe1;   /* reserved '111' + numOfSequenceParameterSets = 1 */
    o += put16(out + o, sps_len);
    memcpy(out + o, sps, sps_len);
    o += sps_len;
    out[o++] = 1; /* numOfPictureParameterSets */
    o += put16(out + o, pps_len);
    memcpy(out + o, pps, pps_len);
    o += pps_len;
    if (ext) {
        ms_h264_sps_t s;
        if (ms_h264_parse_sps(sps, sps_len, &s) != 0) {
            s.chroma_format_idc = 1;
            s.bit_depth_luma = s.bit_depth_chroma = 8;
        }
        out[o++] = (uint8_t)(0xfc | (s.chroma_format_idc & 3));
        out[o++] = (uint8_t)(0xf8 | ((s.bit_depth_luma - 8) & 7));
        out[o++] = (uint8_t)(0xf8 | ((s.bit_depth_chroma - 8) & 7));
        out[o++] = 0; /* numOfSequenceParameterSetExt */
    }
    return o;
}
