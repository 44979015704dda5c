/* libFuzzer target: RTSP URL parsing and control resolution
 * (media/rtsp/url.h). Input: "base\nref". */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "media/rtsp/url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192)
        return 0;
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    char *ref = strchr(s, '\n');
    if (ref)
        *ref++ = '\0';
    ms_rtsp_url_t u;
    char out[MS_RTSP_URL_MAX + 64];
    if (ms_rtsp_url_parse(s, &u) == 0)
        (void)ms_rtsp_url_format(&u, out, sizeof out);
    if (ref) {
        int n = ms_rtsp_url_resolve(s, ref, out, sizeof out);
        if (n >= 0 && strlen(out) != (size_t)n)
            abort();
        char small[16];
        (void)ms_rtsp_url_resolve(s, ref, small, sizeof small);
    }
    free(s);
    return 0;
}
