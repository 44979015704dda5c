/* AMF0 codec (media/rtmp/amf0.h). Section numbers: AMF0 File Format
 * Specification (Adobe, 2007). */
#include "media/rtmp/amf0.h"

#include <errno.h>
#include <string.h>

static double rd_double(const uint8_t *p)
{
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
        u = (u << 8) | p[i];
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static int skip_value(const uint8_t *buf, size_t len, size_t *off, int depth, ms_amf0_val_t *v);

/* Skips a property list ("key value"... then 00 00 09, section 2.5). */
static int skip_props(const uint8_t *buf, size_t len, size_t *off, int depth)
{
    for (;;) {
        if (len - *off < 2)
            return -EINVAL;
        size_t klen = ms_rd_be16(buf + *off);
        *off += 2;
        if (klen == 0) {
            if (len - *off < 1 || buf[*off] != MS_AMF0_OBJECT_END)
                return -EINVAL;
            *off += 1;
            return 0;
        }
        if (len - *off < klen)
            return -EINVAL;
        *off += klen;
        ms_amf0_val_t tmp;
        if (skip_value(buf, len, off, depth + 1, &tmp) < 0)
            return -EINVAL;
    }
}

static int skip_value(const uint8_t *buf, size_t len, size_t *off, int depth, ms_amf0_val_t *v)
{
    if (depth > MS_AMF0_MAX_DEPTH || *off >= len)
        return -EINVAL;
    memset(v, 0, sizeof *v);
    v->type = buf[(*off)++];
    size_t n;
    switch (v->type) {
    case MS_AMF0_NUMBER:
        if (len - *off < 8)
            return -EINVAL;
        v->num = rd_double(buf + *off);
        *off += 8;
        return 0;
    case MS_AMF0_BOOLEAN:
        if (len - *off < 1)
            return -EINVAL;
        v->num = buf[(*off)++] != 0;
        return 0;
    case MS_AMF0_STRING:
        if (len - *off < 2)
            return -EINVAL;
        n = ms_rd_be16(buf + *off);
        *off += 2;
        goto str;
    case MS_AMF0_LONG_STRING:
    case MS_AMF0_XML_DOC:
        if (len - *off < 4)
            return -EINVAL;
        n = ms_rd_be32(buf + *off);
        *off += 4;
    str:
        if (len - *off < n)
            return -EINVAL;
        v->str = buf + *off;
        v->str_len = n;
        *off += n;
        return 0;
    case MS_AMF0_NULL:
    case MS_AMF0_UNDEFINED:
    case MS_AMF0_UNSUPPORTED:
        return 0;
    case MS_AMF0_REFERENCE:
        if (len - *off < 2)
            return -EINVAL;
        v->num = ms_rd_be16(buf + *off);
        *off += 2;
        return 0;
    case MS_AMF0_DATE:
        if (len - *off < 10)
            return -EINVAL;
        v->num = rd_double(buf + *off);
        *off += 10; /* + time-zone S16, reserved (section 2.13) */
        return 0;
    case MS_AMF0_TYPED_OBJECT:
        if (len - *off < 2)
            return -EINVAL;
        n = ms_rd_be16(buf + *off);
        *off += 2;
        if (len - *off < n)
            return -EINVAL;
        *off += n;
        goto obj;
    case MS_AMF0_ECMA_ARRAY:
        if (len - *off < 4)
            return -EINVAL;
        *off += 4; /* the count is a hint only; the list ends with 00 00 09 */
        goto obj;
    case MS_AMF0_OBJECT:
    obj : {
        size_t start = *off;
        if (skip_props(buf, len, off, depth) < 0)
            return -EINVAL;
        v->raw = buf + start;
        v->raw_len = *off - start;
        return 0;
    }
    case MS_AMF0_STRICT_ARRAY: {
        if (len - *off < 4)
            return -EINVAL;
        uint32_t cnt = ms_rd_be32(buf + *off);
        *off += 4;
        size_t start = *off;
        for (uint32_t i = 0; i < cnt; i++) {
            ms_amf0_val_t tmp;
            if (skip_value(buf, len, off, depth + 1, &tmp) < 0)
                return -EINVAL; /* also bounds a huge count by the input */
        }
        v->raw = buf + start;
        v->raw_len = *off - start;
        return 0;
    }
    default: /* MOVIECLIP, RECORDSET (reserved), OBJECT_END here, AVM+ 0x11 */
        return -EINVAL;
    }
}

int ms_amf0_next(const uint8_t *buf, size_t len, size_t *off, ms_amf0_val_t *v)
{
    if (*off >= len)
        return 0;
    size_t o = *off;
    if (skip_value(buf, len, &o, 0, v) < 0)
        return -EINVAL;
    *off = o;
    return 1;
}

int ms_amf0_prop(const ms_amf0_val_t *obj, const char *name, ms_amf0_val_t *out)
{
    if (obj->type != MS_AMF0_OBJECT && obj->type != MS_AMF0_ECMA_ARRAY &&
        obj->type != MS_AMF0_TYPED_OBJECT)
        return -EINVAL;
    const uint8_t *buf = obj->raw;
    size_t len = obj->raw_len, off = 0, nlen = strlen(name);
    for (;;) {
        if (len - off < 2)
            return -EINVAL;
        size_t klen = ms_rd_be16(buf + off);
        off += 2;
        if (klen == 0)
            return 0;
        if (len - off < klen)
            return -EINVAL;
        const uint8_t *key = buf + off;
        off += klen;
        ms_amf0_val_t v;
        if (skip_value(buf, len, &off, 1, &v) < 0)
            return -EINVAL;
        if (klen == nlen && memcmp(key, name, nlen) == 0) {
            *out = v;
            return 1;
        }
    }
}

int ms_amf0_str(const ms_amf0_val_t *v, char *out, size_t cap)
{
    if (cap)
        out[0] = '\0';
    if (v->type != MS_AMF0_STRING && v->type != MS_AMF0_LONG_STRING)
        return -EINVAL;
    if (memchr(v->str, 0, v->str_len))
        return -EINVAL;
    if (v->str_len >= cap)
        return -ENAMETOOLONG;
    if (v->str_len)
        memcpy(out, v->str, v->str_len);
    out[v->str_len] = '\0';
    return (int)v->str_len;
}

int ms_amf0_prop_str(const ms_amf0_val_t *obj, const char *name, char *out, size_t cap)
{
    if (cap)
        out[0] = '\0';
    ms_amf0_val_t v;
    int r = ms_amf0_prop(obj, name, &v);
    if (r <= 0)
        return r;
    return ms_amf0_str(&v, out, cap);
}

void ms_amf0_put_number(ms_buf_t *b, double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    ms_buf_u8(b, MS_AMF0_NUMBER);
    ms_buf_be64(b, u);
}

void ms_amf0_put_bool(ms_buf_t *b, int v)
{
    ms_buf_u8(b, MS_AMF0_BOOLEAN);
    ms_buf_u8(b, v ? 1 : 0);
}

void ms_amf0_put_string(ms_buf_t *b, const char *s)
{
    size_t n = strlen(s);
    if (n > 0xffff) {
        ms_buf_u8(b, MS_AMF0_LONG_STRING);
        ms_buf_be32(b, (uint32_t)n);
    } else {
        ms_buf_u8(b, MS_AMF0_STRING);
        ms_buf_be16(b, (uint16_t)n);
    }
    ms_buf_append(b, s, n);
}

void ms_amf0_put_null(ms_buf_t *b)
{
    ms_buf_u8(b, MS_AMF0_NULL);
}

void ms_amf0_put_object_start(ms_buf_t *b)
{
    ms_buf_u8(b, MS_AMF0_OBJECT);
}

void ms_amf0_put_ecma_start(ms_buf_t *b, uint32_t count)
{
    ms_buf_u8(b, MS_AMF0_ECMA_ARRAY);
    ms_buf_be32(b, count);
}

void ms_amf0_put_key(ms_buf_t *b, const char *key)
{
    size_t n = strlen(key);
    if (n > 0xffff)
        n = 0xffff;
    ms_buf_be16(b, (uint16_t)n);
    ms_buf_append(b, key, n);
}

void ms_amf0_put_object_end(ms_buf_t *b)
{
    ms_buf_be16(b, 0);
    ms_buf_u8(b, MS_AMF0_OBJECT_END);
}
