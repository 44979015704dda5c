/* libFuzzer: RTP AAC-hbr depacketization (RFC 3640) and the other audio /
 * metadata depacketizers through the receiver. */
#include "fuzz/fuzz_rtp_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 0 && (data[0] & 6) == 2)
        return fuzz_rtp_run(MS_CODEC_ONVIF_META, 90000, NULL, data, size);
    if (size > 0 && (data[0] & 6) == 4)
        return fuzz_rtp_run(MS_CODEC_PCMU, 8000, NULL, data, size);
    if (size > 0 && (data[0] & 6) == 6)
        return fuzz_rtp_run(MS_CODEC_AAC, 48000,
                            "mode=generic;sizelength=6;indexlength=2;indexdeltalength=2;"
                            "ctsdeltalength=4;dtsdeltalength=3;randomaccessindication=1;"
                            "streamstateindication=2;auxiliarydatasizelength=5;config=1190",
                            data, size);
    return fuzz_rtp_run(MS_CODEC_AAC, 48000,
                        "streamtype=5;mode=AAC-hbr;config=1188;sizelength=13;indexlength=3;"
                        "indexdeltalength=3",
                        data, size);
}
