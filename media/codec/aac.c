/* AAC configuration helpers: AudioSpecificConfig (ISO/IEC 14496-3 1.6.2.1)
 * and the ADTS header (ISO/IEC 14496-3 1.A.2.2 / ISO/IEC 13818-7 6.2). */
#include "media/codec/aac.h"

#include <errno.h>

#include "media/codec/nal.h"

/* Table 1.18 samplingFrequencyIndex. */
static const int sr_table[13] = {96000, 88200, 64000, 48000, 44100, 32000, 24000,
                                 22050, 16000, 12000, 11025, 8000,  7350};

int ms_aac_sr_index(int sample_rate)
{
    for (int i = 0; i < 13; i++)
        if (sr_table[i] == sample_rate)
            return i;
    return -1;
}

static int read_aot(ms_bits_t *b)
{
    int aot = (int)ms_bits_read(b, 5);
    if (aot == 31)
        aot = 32 + (int)ms_bits_read(b, 6);
    return aot;
}

static int read_rate(ms_bits_t *b, int *idx)
{
    *idx = (int)ms_bits_read(b, 4);
    if (*idx == 15)
        return (int)ms_bits_read(b, 24);
    if (*idx >= 13)
        return 0;
    return sr_table[*idx];
}

int ms_aac_parse_asc(const uint8_t *asc, size_t len, ms_aac_config_t *out)
{
    ms_bits_t b;
    if (!asc || len < 2)
        return -EINVAL;
    ms_bits_init(&b, asc, len);
    ms_aac_config_t c;
    c.object_type = read_aot(&b);
    c.sample_rate = read_rate(&b, &c.sr_index);
    c.channels = (int)ms_bits_read(&b, 4);
    if (c.object_type == 5 || c.object_type == 29) {
        /* Explicit SBR/PS signalling: the extension rate, then the core
         * object type. The core values describe the raw frames. */
        int ext_idx;
        (void)read_rate(&b, &ext_idx);
        c.object_type = read_aot(&b);
    }
    if (b.err || c.object_type == 0 || c.sample_rate <= 0)
        return -EINVAL;
    *out = c;
    return 0;
}

size_t ms_aac_build_asc(int object_type, int sample_rate, int channels, uint8_t out[2])
{
    int idx = ms_aac_sr_index(sample_rate);
    if (idx < 0 || object_type <= 0 || object_type > 30 || channels < 0 || channels > 15)
        return 0;
    out[0] = (uint8_t)((object_type << 3) | (idx >> 1));
    out[1] = (uint8_t)(((idx & 1) << 7) | (channels << 3));
    return 2;
}

int ms_aac_adts_header(const ms_aac_config_t *c, size_t frame_len, uint8_t out[7])
{
    int idx = c->sr_index;
    if (idx < 0 || idx >= 13)
        idx = ms_aac_sr_index(c->sample_rate);
    size_t total = frame_len + 7;
    if (idx < 0 || total > 0x1fff || c->object_type < 1 || c->object_type > 4 || c->channels < 0 ||
        c->channels > 7)
        return -EINVAL;
    int profile = c->object_type - 1;
    out[0] = 0xff; /* syncword */
    out[1] = 0xf1; /* syncword, ID = 0 (MPEG-4), layer 0, protection_absent 1 */
    out[2] = (uint8_t)((profile << 6) | (idx << 2) | (c->channels >> 2));
    out[3] = (uint8_t)(((c->channels & 3) << 6) | (int)(total >> 11));
    out[4] = (uint8_t)(total >> 3);
    out[5] = (uint8_t)(((total & 7) << 5) | 0x1f); /* buffer fullness 0x7ff: VBR */
    out[6] = 0xfc;                                 /* fullness low bits, 1 raw block */
    return 0;
}
