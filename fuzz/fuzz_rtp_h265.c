/* libFuzzer: RTP H.265 depacketization (RFC 7798) through the receiver. */
#include "fuzz/fuzz_rtp_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_rtp_run(MS_CODEC_H265, 90000, NULL, data, size);
}
