/* libFuzzer: RTP H.264 depacketization (RFC 6184) through the receiver. */
#include "fuzz/fuzz_rtp_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_rtp_run(
        MS_CODEC_H264, 90000,
        "packetization-mode=1;sprop-parameter-sets=Z01ADdoFB+wEQAAAAwBAAAAMg8UKqA==,"
        "aO88gA==",
        data, size);
}
