/* AMF0 (Adobe Action Message Format 0, "AMF0 File Format Specification",
 * 2007): the encoding of RTMP command and data messages (RTMP 1.0 section
 * 7.1.1, 7.1.2). Pure, any thread; every object belongs to its caller.
 *
 * Encoding appends to an ms_buf_t (errors latch in the buffer). Decoding is
 * a cursor over borrowed bytes: ms_amf0_next() returns one value at a time;
 * an object, ECMA array or strict array is returned as a whole (its raw
 * bytes in v->raw) and skipped, and its properties are read with
 * ms_amf0_prop(). Nesting is bounded by MS_AMF0_MAX_DEPTH. */
#ifndef MS_MEDIA_RTMP_AMF0_H
#define MS_MEDIA_RTMP_AMF0_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* Type markers (AMF0 section 2.1). */
enum {
    MS_AMF0_NUMBER = 0x00,
    MS_AMF0_BOOLEAN = 0x01,
    MS_AMF0_STRING = 0x02,
    MS_AMF0_OBJECT = 0x03,
    MS_AMF0_MOVIECLIP = 0x04,
    MS_AMF0_NULL = 0x05,
    MS_AMF0_UNDEFINED = 0x06,
    MS_AMF0_REFERENCE = 0x07,
    MS_AMF0_ECMA_ARRAY = 0x08,
    MS_AMF0_OBJECT_END = 0x09,
    MS_AMF0_STRICT_ARRAY = 0x0a,
    MS_AMF0_DATE = 0x0b,
    MS_AMF0_LONG_STRING = 0x0c,
    MS_AMF0_UNSUPPORTED = 0x0d,
    MS_AMF0_XML_DOC = 0x0f,
    MS_AMF0_TYPED_OBJECT = 0x10,
};

#define MS_AMF0_MAX_DEPTH 16

typedef struct {
    int type;           /* marker */
    double num;         /* NUMBER, DATE; BOOLEAN as 0/1; REFERENCE index */
    const uint8_t *str; /* STRING, LONG_STRING, XML_DOC (not NUL-terminated) */
    size_t str_len;
    const uint8_t *raw; /* OBJECT, ECMA_ARRAY, TYPED_OBJECT: the property list
                           (after the marker, count or class name) up to and
                           including the end marker; STRICT_ARRAY: after the count */
    size_t raw_len;
} ms_amf0_val_t;

/* Reads the value at *off in buf[0..len) and advances *off past it.
 * Returns 1, 0 at the end of buf, or -EINVAL (malformed, truncated, too
 * deep, AVM+ switch 0x11 or an unknown marker). */
int ms_amf0_next(const uint8_t *buf, size_t len, size_t *off, ms_amf0_val_t *v);
/* Looks up property name in an OBJECT / ECMA_ARRAY / TYPED_OBJECT value
 * (obj from ms_amf0_next). Returns 1 found (*out set), 0 absent, -EINVAL. */
int ms_amf0_prop(const ms_amf0_val_t *obj, const char *name, ms_amf0_val_t *out);
/* Copies a STRING / LONG_STRING value into out (NUL-terminated). Returns the
 * length, -EINVAL (not a string, or an embedded NUL) or -ENAMETOOLONG. */
int ms_amf0_str(const ms_amf0_val_t *v, char *out, size_t cap);
/* Convenience: property name of obj as a string into out (""/absent:
 * returns 0 with out ""), or -EINVAL / -ENAMETOOLONG. */
int ms_amf0_prop_str(const ms_amf0_val_t *obj, const char *name, char *out, size_t cap);

/* Encoders (section 2.2 ff.). Strings longer than 65535 bytes are written
 * as LONG_STRING. */
void ms_amf0_put_number(ms_buf_t *b, double v);
void ms_amf0_put_bool(ms_buf_t *b, int v);
void ms_amf0_put_string(ms_buf_t *b, const char *s);
void ms_amf0_put_null(ms_buf_t *b);
void ms_amf0_put_object_start(ms_buf_t *b);
void ms_amf0_put_ecma_start(ms_buf_t *b, uint32_t count);
/* A property name (UTF-8-empty-allowed key without marker, section 2.5),
 * followed by one put_* value. */
void ms_amf0_put_key(ms_buf_t *b, const char *key);
void ms_amf0_put_object_end(ms_buf_t *b); /* 00 00 09 */

#endif
