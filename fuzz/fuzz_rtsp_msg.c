/* libFuzzer target: incremental RTSP parser (media/rtsp/msg.h) fed in chunk
 * sizes taken from the input, plus the header value parsers on every
 * header of every parsed message. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "media/rtsp/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void headers(const ms_rtsp_msg_t *m)
{
    for (int i = 0; i < m->nheaders; i++) {
        const char *v = m->headers[i].value;
        ms_rtsp_transport_t t;
        if (ms_rtsp_transport_parse(v, 0, &t) == 0) {
            char out[512];
            (void)ms_rtsp_transport_format(&t, out, sizeof out);
        }
        char id[128];
        int to;
        (void)ms_rtsp_session_parse(v, id, sizeof id, &to);
        ms_rtsp_rtpinfo_t ri[4];
        (void)ms_rtsp_rtpinfo_parse(v, ri, 4);
        ms_rtsp_range_t r;
        (void)ms_rtsp_range_parse(v, &r);
    }
    (void)ms_rtsp_msg_cseq(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    /* first byte seeds the chunk sizes */
    unsigned seed = data[0];
    data++;
    size--;
    ms_rtsp_parser_t p;
    ms_rtsp_parser_init(&p);
    size_t off = 0;
    while (off < size) {
        seed = seed * 1103515245u + 12345u;
        size_t n = 1 + (seed >> 16) % 64;
        if (n > size - off)
            n = size - off;
        if (ms_rtsp_parser_feed(&p, data + off, n) < 0)
            break;
        off += n;
        ms_rtsp_event_t ev;
        int r;
        while ((r = ms_rtsp_parser_next(&p, &ev)) == 1) {
            if (ev.type == MS_RTSP_EV_MESSAGE) {
                headers(&ev.msg);
                if (ev.msg.body_len)
                    (void)memchr(ev.msg.body, 0, ev.msg.body_len);
            } else if (ev.len) {
                (void)memchr(ev.data, 0, ev.len);
            }
        }
        if (r < 0)
            break;
    }
    ms_rtsp_parser_free(&p);
    return 0;
}
