/* libFuzzer target: the RTMP client (publisher) side (media/rtmp/client.h)
 * reading a server's answers: chunk stream, protocol control, _result /
 * _error / onStatus commands, fed in pieces whose size comes from the
 * first byte. A valid S0 S1 S2 is prepended; once publishing, a media
 * message is sent now and then. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "fuzz/fuzz_rtmp_common.h"
#include "media/rtmp/client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t step, total;
    uint8_t *buf = rtmp_fuzz_input(data, size, &step, &total);
    if (!buf)
        return 0;
    ms_rtmp_client_t c;
    ms_rtmp_client_init(&c, "live", "rtmp://127.0.0.1/live", "cam1");
    size_t off = 0;
    static const uint8_t body[] = {0x17, 0x01, 0, 0, 0, 0, 0, 0, 1, 0x65};
    while (off < total) {
        size_t n = total - off < step ? total - off : step;
        if (ms_rtmp_client_feed(&c, buf + off, n) < 0) {
            if (c.state != MS_RTMPC_FAILED || !c.error[0])
                __builtin_trap();
            break;
        }
        off += n;
        if (c.state == MS_RTMPC_PUBLISHING)
            ms_rtmp_client_send_media(&c, 9, (uint32_t)off, body, sizeof body);
        if (c.out.len > (8u << 20))
            ms_buf_reset(&c.out);
    }
    ms_rtmp_client_free(&c);
    free(buf);
    return 0;
}
