/* AAC configuration helpers (ISO/IEC 14496-3). Pure. */
#ifndef MS_MEDIA_CODEC_AAC_H
#define MS_MEDIA_CODEC_AAC_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int object_type; /* 2 = AAC-LC */
    int sr_index;    /* sampling_frequency_index, 15 = explicit */
    int sample_rate;
    int channels; /* channel_configuration */
} ms_aac_config_t;

/* AudioSpecificConfig (1.6.2.1). Returns 0 or -EINVAL. */
int ms_aac_parse_asc(const uint8_t *asc, size_t len, ms_aac_config_t *out);
/* Builds a 2-byte AudioSpecificConfig; returns 2, or 0 for a rate without index. */
size_t ms_aac_build_asc(int object_type, int sample_rate, int channels, uint8_t out[2]);
/* 7-byte ADTS header (no CRC) for a raw frame of frame_len bytes (1.A.2.2).
 * Returns 0 or -EINVAL (rate without index, frame too large). */
int ms_aac_adts_header(const ms_aac_config_t *c, size_t frame_len, uint8_t out[7]);
/* sampling_frequency_index for a rate, or -1. */
int ms_aac_sr_index(int sample_rate);

#endif
