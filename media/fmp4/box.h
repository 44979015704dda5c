/* ISO BMFF box writing helpers (ISO/IEC 14496-12 section 4.2), shared by
 * the fragmented (fmp4.c) and progressive (progressive.c) writers.
 * ms_mp4_box_open writes a placeholder size and the type and returns the
 * box's offset; ms_mp4_box_close patches the size once the body is written. */
#ifndef MS_MEDIA_FMP4_BOX_H
#define MS_MEDIA_FMP4_BOX_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

static inline size_t ms_mp4_box_open(ms_buf_t *b, const char *type)
{
    size_t off = b->len;
    ms_buf_be32(b, 0);
    ms_buf_append(b, type, 4);
    return off;
}

/* FullBox (4.2): version and 24-bit flags after the header. */
static inline size_t ms_mp4_fullbox_open(ms_buf_t *b, const char *type, uint8_t version,
                                         uint32_t flags)
{
    size_t off = ms_mp4_box_open(b, type);
    ms_buf_be32(b, ((uint32_t)version << 24) | (flags & 0xFFFFFF));
    return off;
}

static inline void ms_mp4_box_close(ms_buf_t *b, size_t off)
{
    if (!b->err)
        ms_buf_put_be32_at(b, off, (uint32_t)(b->len - off));
}

/* The unity transformation matrix of mvhd/tkhd (8.2.2, 8.3.2). */
static inline void ms_mp4_put_matrix(ms_buf_t *b)
{
    static const uint32_t unity[9] = {0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000};
    for (int i = 0; i < 9; i++)
        ms_buf_be32(b, unity[i]);
}

#endif
