/* libFuzzer target: the RTSP server's request-target parser
 * (ms_rtsp_target_parse, media/rtsp/server.h), fed with the request line
 * URI of every request a client can send. */
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
    free(t);
    free(s);
    return 0;
}
