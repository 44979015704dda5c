/* libFuzzer target: the RTSP server's request-target parser
 * (ms_rtsp_target_parse, media/rtsp/server.h) and the redirect Location
 * built from it (ms_rtsp_redirect_location), fed with the request line URI
 * of every request a client can send. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "media/rtsp/server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    ms_rtsp_target_t *t = malloc(sizeof *t);
    if (t && ms_rtsp_target_parse(s, t) == 0) {
        /* invariants: NUL-terminated fields, base is a prefix of the URI */
        if (strlen(t->base) > size || strncmp(t->base, s, strlen(t->base)) != 0 || !t->stream[0])
            abort();
        if (t->track < -1)
            abort();
    }
    /* the Location of a redirect built from the same URI (RFC 2326 11.3.3):
     * the base, then a path, never a control character or space */
    static const char base[] = "rtsp://192.0.2.1:8554";
    char loc[4200];
    int n = ms_rtsp_redirect_location(base, s, loc, sizeof loc);
    if (n >= 0) {
        if ((size_t)n != strlen(loc) || strncmp(loc, base, sizeof base - 1) != 0 ||
            loc[sizeof base - 1] != '/' || strpbrk(loc, "\r\n "))
            abort();
        ms_buf_t b = MS_BUF_INIT;
        if (ms_rtsp_build_redirect(&b, 1, loc) != 0)
            abort();
        ms_buf_free(&b);
    }
    free(t);
    free(s);
    return 0;
}
