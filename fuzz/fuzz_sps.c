/* libFuzzer: H.264 / H.265 SPS parsing, avcC/hvcC building, AudioSpecificConfig
 * parsing and the NAL iterators. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "media/codec/aac.h"
#include "media/codec/h264.h"
#include "media/codec/h265.h"
#include "media/codec/nal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t out[70000];
    ms_h264_sps_t s4;
    ms_h265_sps_t s5;
    ms_aac_config_t ac;
    if (size == 0)
        return 0;
    uint8_t *h4 = malloc(size);
    if (!h4)
        return 0;
    /* H.264: force the SPS NAL type so the parser is reached */
    for (size_t i = 0; i < size; i++)
        h4[i] = data[i];
    h4[0] = (uint8_t)((h4[0] & 0xe0) | 7);
    (void)ms_h264_parse_sps(h4, size, &s4);
    (void)ms_h264_avcc(h4, size, data, size, out, sizeof out);
    /* H.265 */
    h4[0] = (uint8_t)((data[0] & 0x81) | (33 << 1));
    (void)ms_h265_parse_sps(h4, size, &s5);
    (void)ms_h265_hvcc(data, size, h4, size, data, size, out, sizeof out);
    free(h4);
    if (ms_aac_parse_asc(data, size, &ac) == 0) {
        uint8_t adts[7];
        (void)ms_aac_adts_header(&ac, size, adts);
    }
    size_t off = 0;
    const uint8_t *n;
    size_t nl;
    while (ms_annexb_next(data, size, &off, &n, &nl) == 1)
        (void)ms_nal_unescape(out, n, nl < sizeof out ? nl : sizeof out);
    off = 0;
    while (ms_nal_next(data, size, &off, &n, &nl) == 1)
        ;
    return 0;
}
