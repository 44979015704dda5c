/* libFuzzer target: the AMF0 decoder (media/rtmp/amf0.h): every top-level
 * value, property lookups in objects, string copies. */
#include <stddef.h>
#include <stdint.h>

#include "media/rtmp/amf0.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t off = 0;
    ms_amf0_val_t v, p;
    char s[256];
    while (ms_amf0_next(data, size, &off, &v) == 1) {
        if (off > size)
            __builtin_trap();
        ms_amf0_str(&v, s, sizeof s);
        if (ms_amf0_prop(&v, "app", &p) == 1)
            ms_amf0_str(&p, s, sizeof s);
        ms_amf0_prop_str(&v, "tcUrl", s, sizeof s);
    }
    return 0;
}
