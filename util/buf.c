#include "util/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ms_buf_wrap(ms_buf_t *b, void *mem, size_t cap)
{
    b->data = mem;
    b->len = 0;
    b->cap = mem ? cap : 0;
    b->err = 0;
    b->fixed = 1;
}

void ms_buf_free(ms_buf_t *b)
{
    if (!b->fixed)
        free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->err = 0;
    b->fixed = 0;
}

void ms_buf_reset(ms_buf_t *b)
{
    b->len = 0;
    b->err = 0;
}

int ms_buf_reserve(ms_buf_t *b, size_t extra)
{
    if (b->err)
        return -1;
    if (b->len + extra <= b->cap)
        return 0;
    if (b->fixed) {
        b->err = 1;
        return -1;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra) {
        if (cap > ((size_t)1 << 40)) {
            b->err = 1;
            return -1;
        }
        cap *= 2;
    }
    uint8_t *p = realloc(b->data, cap);
    if (!p) {
        b->err = 1;
        return -1;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

void ms_buf_append(ms_buf_t *b, const void *p, size_t n)
{
    if (n == 0 || ms_buf_reserve(b, n) < 0)
        return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void ms_buf_u8(ms_buf_t *b, uint8_t v)
{
    ms_buf_append(b, &v, 1);
}

void ms_buf_be16(ms_buf_t *b, uint16_t v)
{
    uint8_t p[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    ms_buf_append(b, p, 2);
}

void ms_buf_be24(ms_buf_t *b, uint32_t v)
{
    uint8_t p[3] = {(uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    ms_buf_append(b, p, 3);
}

void ms_buf_be32(ms_buf_t *b, uint32_t v)
{
    uint8_t p[4];
    ms_wr_be32(p, v);
    ms_buf_append(b, p, 4);
}

void ms_buf_be64(ms_buf_t *b, uint64_t v)
{
    ms_buf_be32(b, (uint32_t)(v >> 32));
    ms_buf_be32(b, (uint32_t)v);
}

void ms_buf_fill(ms_buf_t *b, uint8_t v, size_t n)
{
    if (n == 0 || ms_buf_reserve(b, n) < 0)
        return;
    memset(b->data + b->len, v, n);
    b->len += n;
}

void ms_buf_printf(ms_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || ms_buf_reserve(b, (size_t)n + 1) < 0)
        return;
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void ms_buf_put_be32_at(ms_buf_t *b, size_t off, uint32_t v)
{
    if (!b->err && off + 4 <= b->len)
        ms_wr_be32(b->data + off, v);
}

ms_blob_t *ms_buf_to_blob(const ms_buf_t *b)
{
    if (b->err)
        return NULL;
    return ms_blob_new(b->data, b->len);
}

char *ms_buf_cstr(ms_buf_t *b)
{
    if (ms_buf_reserve(b, 1) < 0)
        return NULL;
    b->data[b->len] = 0;
    return (char *)b->data;
}
