/* libFuzzer target: the server handshake (media/rtmp/handshake.h) and what
 * follows it, fed in pieces whose sizes come from the input: arbitrary C0,
 * C1 (simple or digest form), C2. */
#include <stddef.h>
#include <stdint.h>

#include "media/rtmp/handshake.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = (size_t)data[0] * 13 + 1;
    data++;
    size--;
    ms_rtmp_hs_t hs;
    ms_rtmp_hs_init(&hs);
    ms_buf_t out = MS_BUF_INIT;
    size_t off = 0;
    while (off < size && hs.state != MS_RTMP_HS_DONE) {
        size_t n = size - off < step ? size - off : step;
        ssize_t r = ms_rtmp_hs_feed(&hs, data + off, n, &out);
        if (r < 0)
            break;
        if (r == 0)
            __builtin_trap(); /* no progress on bytes while not done */
        off += (size_t)r;
    }
    if (hs.state != MS_RTMP_HS_C0C1 && out.len != 1 + 2 * MS_RTMP_HS_SIZE && !out.err)
        __builtin_trap();
    ms_buf_free(&out);
    return 0;
}
