/* libFuzzer target: SDP parser (media/rtsp/sdp.h). */
#include <stddef.h>
#include <stdint.h>

#include "media/rtsp/sdp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ms_sdp_t s;
    if (ms_sdp_parse((const char *)data, size, &s) == 0) {
        char v[256];
        for (int i = 0; i < s.nmedia; i++) {
            const ms_sdp_media_t *m = &s.media[i];
            if (m->fmt && m->fmt->fmtp)
                (void)ms_rtp_fmtp_get(m->fmt->fmtp, "sprop-parameter-sets", v, sizeof v);
        }
        (void)ms_sdp_usable(&s);
    }
    ms_sdp_free(&s);
    return 0;
}
