#include "media/stream/frame.h"

#include <stdlib.h>
#include <string.h>

ms_frame_t *ms_frame_new(const void *data, size_t size)
{
    if (size > UINT32_MAX)
        return NULL;
    ms_frame_t *f = malloc(sizeof *f + size);
    if (!f)
        return NULL;
    memset(f, 0, sizeof *f);
    atomic_init(&f->refs, 1);
    f->size = (uint32_t)size;
    f->data = (uint8_t *)(f + 1);
    if (data && size)
        memcpy(f->data, data, size);
    return f;
}

ms_frame_t *ms_frame_resize(ms_frame_t *f, size_t size)
{
    if (size > UINT32_MAX)
        return NULL;
    ms_frame_t *n = realloc(f, sizeof *n + size);
    if (!n)
        return NULL;
    n->data = (uint8_t *)(n + 1);
    n->size = (uint32_t)size;
    return n;
}

ms_frame_t *ms_frame_ref(ms_frame_t *f)
{
    atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    return f;
}

void ms_frame_unref(ms_frame_t *f)
{
    if (f && atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) == 1)
        free(f);
}

const char *ms_codec_name(ms_codec_t c)
{
    switch (c) {
    case MS_CODEC_H264:
        return "h264";
    case MS_CODEC_H265:
        return "h265";
    case MS_CODEC_AAC:
        return "aac";
    case MS_CODEC_PCMA:
        return "pcma";
    case MS_CODEC_PCMU:
        return "pcmu";
    case MS_CODEC_ONVIF_META:
        return "onvif";
    case MS_CODEC_NONE:
        break;
    }
    return "none";
}

ms_track_kind_t ms_codec_kind(ms_codec_t c)
{
    switch (c) {
    case MS_CODEC_H264:
    case MS_CODEC_H265:
        return MS_TRACK_VIDEO;
    case MS_CODEC_AAC:
    case MS_CODEC_PCMA:
    case MS_CODEC_PCMU:
        return MS_TRACK_AUDIO;
    default:
        return MS_TRACK_APP;
    }
}
