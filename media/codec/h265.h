/* H.265 bitstream helpers (ITU-T H.265 / ISO/IEC 23008-2). Pure. */
#ifndef MS_MEDIA_CODEC_H265_H
#define MS_MEDIA_CODEC_H265_H

#include <stddef.h>
#include <stdint.h>

#define MS_H265_NAL_BLA_W_LP   16
#define MS_H265_NAL_CRA        21 /* IRAP range is 16..23 */
#define MS_H265_NAL_IDR_W_RADL 19
#define MS_H265_NAL_IDR_N_LP   20
#define MS_H265_NAL_VPS        32
#define MS_H265_NAL_SPS        33
#define MS_H265_NAL_PPS        34
#define MS_H265_NAL_AUD        35
#define MS_H265_NAL_SEI_PREFIX 39

static inline int ms_h265_nal_type(uint8_t b0)
{
    return (b0 >> 1) & 0x3f;
}
static inline int ms_h265_is_irap(int type)
{
    return type >= 16 && type <= 23;
}

typedef struct {
    int general_profile_space, general_tier_flag, general_profile_idc;
    uint32_t general_profile_compat_flags;
    uint64_t general_constraint_flags; /* 48 bits */
    int general_level_idc;
    int chroma_format_idc;
    int bit_depth_luma, bit_depth_chroma;
    int width, height;                              /* after conformance window */
    int min_spatial_segmentation, parallelism_type; /* hvcC defaults 0 */
    int num_temporal_layers, temporal_id_nested;
} ms_h265_sps_t;

/* nal: a whole SPS NAL unit including its 2-byte header, escaped.
 * Returns 0 or -EINVAL. Sec. 7.3.2.2. */
int ms_h265_parse_sps(const uint8_t *nal, size_t len, ms_h265_sps_t *out);

/* HEVCDecoderConfigurationRecord (ISO/IEC 14496-15 8.3.3.1) with arrays for
 * VPS, SPS and PPS; returns its length or 0 on error / cap too small. */
size_t ms_h265_hvcc(const uint8_t *vps, size_t vps_len, const uint8_t *sps, size_t sps_len,
                    const uint8_t *pps, size_t pps_len, uint8_t *out, size_t cap);

#endif
