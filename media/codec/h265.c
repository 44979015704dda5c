/* H.265 sequence parameter set parsing (ITU-T H.265 7.3.2.2.1, 7.3.3) and the
 * HEVCDecoderConfigurationRecord (ISO/IEC 14496-15 8.3.3.1). */
#include "media/codec/h265.h"

#include <errno.h>
#include <string.h>

#include "media/codec/nal.h"

#define SPS_MAX 4096

/* 7.3.3 profile_tier_level(1, maxNumSubLayersMinus1). */
static void parse_ptl(ms_bits_t *b, int max_sub_layers_minus1, ms_h265_sps_t *s)
{
    s->general_profile_space = (int)ms_bits_read(b, 2);
    s->general_tier_flag = (int)ms_bits_read(b, 1);
    s->general_profile_idc = (int)ms_bits_read(b, 5);
    s->general_profile_compat_flags = ms_bits_read(b, 32);
    uint64_t hi = ms_bits_read(b, 16), lo = ms_bits_read(b, 32);
    s->general_constraint_flags = (hi << 32) | lo; /* 48 bits: progressive .. inbld */
    s->general_level_idc = (int)ms_bits_read(b, 8);
    int prof[8] = {0}, lvl[8] = {0};
    for (int i = 0; i < max_sub_layers_minus1; i++) {
        prof[i] = (int)ms_bits_read(b, 1);
        lvl[i] = (int)ms_bits_read(b, 1);
    }
    if (max_sub_layers_minus1 > 0)
        for (int i = max_sub_layers_minus1; i < 8; i++)
            ms_bits_skip(b, 2); /* reserved_zero_2bits */
    for (int i = 0; i < max_sub_layers_minus1; i++) {
        if (prof[i])
            ms_bits_skip(b, 88); /* sub_layer profile space .. inbld/reserved */
        if (lvl[i])
            ms_bits_skip(b, 8); /* sub_layer_level_idc */
    }
}

int ms_h265_parse_sps(const uint8_t *nal, size_t len, ms_h265_sps_t *out)
{
    uint8_t rbsp[SPS_MAX];
    if (!nal || len < 4 || ((nal[0] >> 1) & 0x3f) != MS_H265_NAL_SPS)
        return -EINVAL;
    if (len > SPS_MAX)
        len = SPS_MAX;
    size_t n = ms_nal_unescape(rbsp, nal + 2, len - 2);
    ms_bits_t b;
    ms_bits_init(&b, rbsp, n);

    ms_h265_sps_t s;
    memset(&s, 0, sizeof s);
    ms_bits_skip(&b, 4); /* sps_video_parameter_set_id */
    int msl = (int)ms_bits_read(&b, 3);
    if (msl > 6)
        return -EINVAL;
    s.num_temporal_layers = msl + 1;
    s.temporal_id_nested = (int)ms_bits_read(&b, 1);
    parse_ptl(&b, msl, &s);
    if (ms_bits_ue(&b) > 15) /* sps_seq_parameter_set_id */
        return -EINVAL;
    uint32_t cf = ms_bits_ue(&b);
    if (cf > 3)
        return -EINVAL;
    s.chroma_format_idc = (int)cf;
    int separate = 0;
    if (cf == 3)
        separate = (int)ms_bits_read(&b, 1);
    uint32_t w = ms_bits_ue(&b), h = ms_bits_ue(&b);
    uint32_t cl = 0, cr = 0, ct = 0, cb = 0;
    if (ms_bits_read(&b, 1)) { /* conformance_window_flag */
        cl = ms_bits_ue(&b);
        cr = ms_bits_ue(&b);
        ct = ms_bits_ue(&b);
        cb = ms_bits_ue(&b);
    }
    uint32_t bdl = ms_bits_ue(&b), bdc = ms_bits_ue(&b);
    if (b.err || w == 0 || h == 0 || w > 16888 || h > 16888 || bdl > 8 || bdc > 8)
        return -EINVAL;
    s.bit_depth_luma = (int)bdl + 8;
    s.bit_depth_chroma = (int)bdc + 8;
    /* 7.4.3.2.1 / Table 6-1: SubWidthC, SubHeightC. */
    int ca = separate ? 0 : (int)cf;
    uint64_t sw = (ca == 1 || ca == 2) ? 2 : 1, sh = ca == 1 ? 2 : 1;
    uint64_t cw = sw * ((uint64_t)cl + cr), ch = sh * ((uint64_t)ct + cb);
    if (cw >= w || ch >= h)
        return -EINVAL;
    s.width = (int)(w - cw);
    s.height = (int)(h - ch);
    *out = s;
    return 0;
}

static size_t put_array(uint8_t *out, int type, const uint8_t *nal, size_t len)
{
    /* array_completeness = 0: our samples carry the parameter sets in-band
     * too (every keyframe, see media/stream/frame.h), so they are not only
     * here ('hev1' semantics). */
    out[0] = (uint8_t)(type & 0x3f);
    out[1] = 0;
    out[2] = 1; /* numNalus */
    out[3] = (uint8_t)(len >> 8);
    out[4] = (uint8_t)len;
    memcpy(out + 5, nal, len);
    return 5 + len;
}

size_t ms_h265_hvcc(const uint8_t *vps, size_t vps_len, const uint8_t *sps, size_t sps_len,
                    const uint8_t *pps, size_t pps_len, uint8_t *out, size_t cap)
{
    ms_h265_sps_t s;
    if (!sps || sps_len > 0xffff || vps_len > 0xffff || pps_len > 0xffff)
        return 0;
    if (ms_h265_parse_sps(sps, sps_len, &s) != 0)
        return 0;
    int arrays = 1 + (vps && vps_len > 0) + (pps && pps_len > 0);
    size_t need = 23 + 5 * (size_t)arrays + sps_len + (vps ? vps_len : 0) + (pps ? pps_len : 0);
    if (cap < need)
        return 0;
    size_t o = 0;
    out[o++] = 1; /* configurationVersion */
    out[o++] = (uint8_t)((s.general_profile_space << 6) | (s.general_tier_flag << 5) |
                         s.general_profile_idc);
    for (int i = 3; i >= 0; i--)
        out[o++] = (uint8_t)(s.general_profile_compat_flags >> (8 * i));
    for (int i = 5; i >= 0; i--)
        out[o++] = (uint8_t)(s.general_constraint_flags >> (8 * i));
    out[o++] = (uint8_t)s.general_level_idc;
    int mss = s.min_spatial_segmentation & 0xfff;
    out[o++] = (uint8_t)(0xf0 | (mss >> 8)); /* reserved '1111' */
    out[o++] = (uint8_t)mss;
    out[o++] = (uint8_t)(0xfc | (s.parallelism_type & 3));
    out[o++] = (uint8_t)(0xfc | (s.chroma_format_idc & 3));
    out[o++] = (uint8_t)(0xf8 | ((s.bit_depth_luma - 8) & 7));
    out[o++] = (uint8_t)(0xf8 | ((s.bit_depth_chroma - 8) & 7));
    out[o++] = 0; /* avgFrameRate (unspecified) */
    out[o++] = 0;
    /* constantFrameRate = 0, numTemporalLayers, temporalIdNested,
     * lengthSizeMinusOne = 3 */
    out[o++] =
        (uint8_t)(((s.num_temporal_layers & 7) << 3) | ((s.temporal_id_nested & 1) << 2) | 3);
    out[o++] = (uint8_t)arrays;
    if (vps && vps_len > 0)
        o += put_array(out + o, MS_H265_NAL_VPS, vps, vps_len);
    o += put_array(out + o, MS_H265_NAL_SPS, sps, sps_len);
    if (pps && pps_len > 0)
        o += put_array(out + o, MS_H265_NAL_PPS, pps, pps_len);
    return o;
}
