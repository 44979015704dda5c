/* libFuzzer target: HTTP request-target parsing and routing
 * (util/urlquery.c). Input: first byte picks the method, the rest is the
 * raw request target as it arrives on the wire. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "util/urlquery.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const methods[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "X"};
    static char target[MS_URL_MAX + 2];
    static char segbuf[MS_URL_MAX + 1];
    char *segs[MS_URL_MAX_SEGS];
    char v[256], enc[1024];
    if (size < 1)
        return 0;
    const char *method = methods[data[0] % 6];
    size_t len = size - 1;
    if (len > MS_URL_MAX + 1)
        len = MS_URL_MAX + 1;
    memcpy(target, data + 1, len);
    target[len] = '\0';

    ms_url_parts_t p;
    if (ms_url_split(target, len, &p) < 0)
        return 0;
    (void)ms_url_query_validate(p.query, p.query_len);
    static const char *const keys[] = {"_HLS_msn", "_HLS_part", "token", "name", "role", ""};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        int n = ms_url_query_get(p.query, p.query_len, keys[i], v, sizeof(v));
        if (n >= 0) {
            if (strlen(v) != (size_t)n)
                __builtin_trap();
            int64_t x;
            (void)ms_url_parse_i64(v, -1000, INT64_MAX, &x);
            (void)ms_url_encode(v, enc, sizeof(enc));
            (void)ms_url_csv_has(v, "primary");
        }
    }
    int n = ms_url_path_split(p.path, p.path_len, segbuf, sizeof(segbuf), segs, MS_URL_MAX_SEGS);
    if (n < 0)
        return 0;
    for (int i = 0; i < n; i++) {
        /* invariants of a split path: no traversal, no separators */
        if (strcmp(segs[i], "..") == 0 || strcmp(segs[i], ".") == 0 || strchr(segs[i], '/'))
            __builtin_trap();
        (void)ms_url_is_hls_media(segs[i]);
    }
    ms_route_t r;
    ms_route_match(method, segs, n, &r);
    if (!r.allow)
        __builtin_trap();
    return 0;
}
