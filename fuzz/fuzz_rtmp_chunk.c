/* libFuzzer target: an RTMP server connection after the handshake
 * (media/rtmp/conn.h: chunk stream, protocol control, commands), fed in
 * pieces; a publish/play request is granted so that media messages are
 * parsed too. A valid simple handshake is prepended. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "fuzz/fuzz_rtmp_common.h"
#include "media/rtmp/conn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t step, total;
    uint8_t *buf = rtmp_fuzz_input(data, size, &step, &total);
    if (!buf)
        return 0;
    ms_rtmp_conn_t c;
    ms_rtmp_conn_init(&c, 1 << 20);
    size_t off = 0;
    while (off < total) {
        size_t n = total - off < step ? total - off : step, used = 0;
        ms_rtmp_ev_t ev;
        int r = ms_rtmp_conn_feed(&c, buf + off, n, &used, &ev);
        if (used > n)
            __builtin_trap();
        off += used;
        if (r < 0)
            break;
        if (r == 1 && ev.type == MS_RTMP_EV_PUBLISH)
            ms_rtmp_conn_publish_ok(&c);
        else if (r == 1 && ev.type == MS_RTMP_EV_PLAY)
            ms_rtmp_conn_play_ok(&c);
        else if (r == 0 && used < n)
            __builtin_trap();
        if (c.out.len > (8u << 20))
            ms_buf_reset(&c.out);
    }
    ms_rtmp_conn_free(&c);
    free(buf);
    return 0;
}
