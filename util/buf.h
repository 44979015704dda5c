/* Growable byte buffer for building output (muxers, messages, playlists).
 * Owned by one thread. On allocation failure the buffer enters an error
 * state (err = 1), further appends are ignored, and the caller checks err
 * once at the end.
 *
 * A buffer made by ms_buf_wrap() writes into memory the caller owns (e.g. a
 * blob allocated at the exact size of what will be written): it never
 * reallocates nor frees it, and an append past its capacity sets err. */
#ifndef MS_UTIL_BUF_H
#define MS_UTIL_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "util/blob.h"

typedef struct {
    uint8_t *data;
    size_t len;
    size_t cap;
    int err;
    int fixed; /* data is borrowed (ms_buf_wrap): never reallocated nor freed */
} ms_buf_t;

#define MS_BUF_INIT                                                                                \
    {                                                                                              \
        NULL, 0, 0, 0, 0                                                                           \
    }

/* Wraps cap bytes at mem (borrowed) as an empty fixed-capacity buffer. */
void ms_buf_wrap(ms_buf_t *b, void *mem, size_t cap);
void ms_buf_free(ms_buf_t *b);  /* a wrapped buffer: forgets mem without freeing it */
void ms_buf_reset(ms_buf_t *b); /* len = 0, keeps capacity, clears err */
int ms_buf_reserve(ms_buf_t *b, size_t extra); /* 0 or -1 */
void ms_buf_append(ms_buf_t *b, const void *p, size_t n);
void ms_buf_u8(ms_buf_t *b, uint8_t v);
void ms_buf_be16(ms_buf_t *b, uint16_t v);
void ms_buf_be24(ms_buf_t *b, uint32_t v);
void ms_buf_be32(ms_buf_t *b, uint32_t v);
void ms_buf_be64(ms_buf_t *b, uint64_t v);
void ms_buf_fill(ms_buf_t *b, uint8_t v, size_t n);
void ms_buf_printf(ms_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Patches a big-endian u32 at offset off (already written). */
void ms_buf_put_be32_at(ms_buf_t *b, size_t off, uint32_t v);
/* Returns a new blob with the contents (NULL on error or b->err). */
ms_blob_t *ms_buf_to_blob(const ms_buf_t *b);
/* NUL-terminates (without counting it in len) and returns data, or NULL on error. */
char *ms_buf_cstr(ms_buf_t *b);

/* Big-endian readers for parsers (no bounds check: caller checks). */
static inline uint16_t ms_rd_be16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}
static inline uint32_t ms_rd_be24(const uint8_t *p)
{
    return ((uint32_t)p[0] << 16) | ((uint32_t)p[1] << 8) | p[2];
}
static inline uint32_t ms_rd_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline void ms_wr_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

#endif
