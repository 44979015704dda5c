/* libFuzzer target: fMP4 reader of archive chunk files
 * (media/fmp4/demux.h) and the progressive MP4 writer fed with what it
 * reads. Input: an init segment followed by moof boxes, as a chunk file. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "media/fmp4/demux.h"
#include "media/fmp4/progressive.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ms_fmp4d_init_t in;
    if (ms_fmp4d_init(data, size, &in) < 0)
        return 0;
    (void)ms_fmp4d_video(&in);
    ms_fmp4d_sample_t *sv = NULL;
    size_t n = 0, cap = 0, off = 0;
    while (off < size) {
        uint64_t bs;
        uint32_t type;
        size_t hl = ms_fmp4d_box(data + off, size - off, &bs, &type);
        if (!hl)
            break;
        if (type == MS_FOURCC('m', 'o', 'o', 'f'))
            (void)ms_fmp4d_moof(&in, data + off, (size_t)bs, off, &sv, &n, &cap);
        off += (size_t)bs;
    }
    ms_mp4p_sample_t *ps = n ? calloc(n, sizeof *ps) : NULL;
    if (ps) {
        ms_mp4p_track_t t[MS_FMP4D_MAX_TRACKS];
        size_t k = 0;
        for (int i = 0; i < in.ntracks; i++) {
            size_t first = k;
            for (size_t j = 0; j < n; j++)
                if (sv[j].track == i)
                    ps[k++] = (ms_mp4p_sample_t){sv[j].dur, sv[j].size, sv[j].flags, sv[j].cto,
                                                 sv[j].off};
            t[i] = (ms_mp4p_track_t){&in.t[i], ps + first, k - first};
        }
        ms_buf_t b = MS_BUF_INIT;
        (void)ms_mp4p_write_head(t, in.ntracks, size, 0, &b);
        ms_buf_free(&b);
        free(ps);
    }
    free(sv);
    return 0;
}
