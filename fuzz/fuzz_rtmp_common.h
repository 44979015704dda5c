/* The input of the RTMP connection targets (fuzz_rtmp_chunk: the server
 * side, fuzz_rtmp_client: the publisher side): the first byte sets the size
 * of the pieces the rest is fed in (1..1786 bytes), and a valid simple
 * handshake (version 3, zeroed random parts; RTMP 1.0 section 5.2) is put
 * before the rest so that the chunk stream is reached. */
#ifndef MS_FUZZ_RTMP_COMMON_H
#define MS_FUZZ_RTMP_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "media/rtmp/handshake.h"

/* The handshake and data[1..] in a new buffer of *total bytes (the caller
 * frees it), the piece size in *step; NULL when size is 0 or out of memory. */
static uint8_t *rtmp_fuzz_input(const uint8_t *data, size_t size, size_t *step, size_t *total)
{
    if (size < 1)
        return NULL;
    *step = (size_t)data[0] * 7 + 1;
    data++;
    size--;
    size_t hs = 1 + 2 * MS_RTMP_HS_SIZE;
    uint8_t *buf = calloc(1, hs + size);
    if (!buf)
        return NULL;
    buf[0] = 3;
    if (size)
        memcpy(buf + hs, data, size);
    *total = hs + size;
    return buf;
}

#endif
