/* libFuzzer target: FLV tag bodies to frames (media/rtmp/flv.h). The input
 * is a list of records [type:1][len:2][body]; video (9) and audio (8)
 * bodies go through the ingest side, and each frame made is written back
 * out (FLV bodies and a file tag) and through the player side
 * (ms_flv_play_t) with the tracks the ingest side found. */
#include <stddef.h>
#include <stdint.h>

#include "media/rtmp/flv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void sink(void *ud, uint8_t type, uint32_t ts, const uint8_t *body, size_t len)
{
    ms_buf_t *b = ud;
    ms_flv_file_tag(b, type, ts, body, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ms_flv_play_t pl;
    ms_flv_play_init(&pl);
    ms_buf_t played = MS_BUF_INIT;
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
            ms_codec_params_t t[2] = {in.video, in.audio};
            ms_flv_play_tracks(&pl, t, 2);
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
            f->track = type & 1 ? 0 : 1;
            if (type & 2)
                f->flags |= MS_FRAME_DISCONT;
            ms_flv_play_frame(&pl, f, f->track ? &in.audio : &in.video, sink, &played);
            if (played.len > (1u << 20))
                ms_buf_reset(&played);
            ms_frame_unref(f);
        }
        ms_buf_free(&out);
    }
    ms_buf_free(&played);
    ms_flv_play_free(&pl);
    return 0;
}
