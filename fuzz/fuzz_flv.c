/* libFuzzer target: FLV tag bodies to frames (media/rtmp/flv.h). The input
 * is a list of records [type:1][len:2][body]; video (9) and audio (8)
 * bodies go through the ingest side, and each frame made is written back
 * out (FLV bodies and a file tag). */
#include <stddef.h>
#include <stdint.h>

#include "media/rtmp/flv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ms_flv_in_t in;
    ms_flv_in_init(&in);
    size_t off = 0;
    int64_t ts = 0;
    while (size - off >= 3) {
        uint8_t type = data[off];
        size_t len = (size_t)data[off + 1] << 8 | data[off + 2];
        off += 3;
        if (len > size - off)
            len = size - off;
        const uint8_t *b = data + off;
        off += len;
        ts += 20;
        ms_frame_t *f = NULL;
        int r =
            type & 1 ? ms_flv_in_video(&in, ts, b, len, &f) : ms_flv_in_audio(&in, ts, b, len, &f);
        ms_buf_t out = MS_BUF_INIT;
        if (r == 0 && in.changed) {
            in.changed = 0;
            if (in.have_video)
                ms_flv_out_video_seq(&in.video, &out);
            if (in.have_audio)
                ms_flv_out_audio_seq(&in.audio, &out);
        }
        if (r == 1) {
            if (!f)
                __builtin_trap();
            if (type & 1)
                ms_flv_out_video(&in.video, f, 0, &out);
            else
                ms_flv_out_audio(&in.audio, f, &out);
            ms_buf_t file = MS_BUF_INIT;
            ms_flv_file_tag(&file, type & 1 ? 9 : 8, (uint32_t)ts, out.data, out.len);
            ms_buf_free(&file);
            ms_frame_unref(f);
        }
        ms_buf_free(&out);
    }
    return 0;
}
