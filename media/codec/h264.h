/* H.264 bitstream helpers (ITU-T H.264 / ISO/IEC 14496-10). Pure. */
#ifndef MS_MEDIA_CODEC_H264_H
#define MS_MEDIA_CODEC_H264_H

#include <stddef.h>
#include <stdint.h>

#define MS_H264_NAL_SLICE 1
#define MS_H264_NAL_IDR   5
#define MS_H264_NAL_SEI   6
#define MS_H264_NAL_SPS   7
#define MS_H264_NAL_PPS   8
#define MS_H264_NAL_AUD   9

static inline int ms_h264_nal_type(uint8_t b0)
{
    return b0 & 0x1f;
}

typedef struct {
    int profile_idc, constraint_flags, level_idc;
    int chroma_format_idc;
    int bit_depth_luma, bit_depth_chroma;
    int width, height; /* after cropping */
    int frame_mbs_only;
    int fps_num, fps_den; /* from VUI timing when present, else 0 */
} ms_h264_sps_t;

/* nal: a whole SPS NAL unit including its header byte, escaped as on the
 * wire. Returns 0 or -EINVAL (truncated/invalid values). Sec. 7.3.2.1.1. */
int ms_h264_parse_sps(const uint8_t *nal, size_t len, ms_h264_sps_t *out);

/* AVCDecoderConfigurationRecord (ISO/IEC 14496-15 5.3.3.1) from one SPS and
 * one PPS; returns its length or 0 if cap is too small. */
size_t ms_h264_avcc(const uint8_t *sps, size_t sps_len, const uint8_t *pps, size_t pps_len,
                    uint8_t *out, size_t cap);

#endif
