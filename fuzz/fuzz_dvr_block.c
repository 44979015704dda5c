/* libFuzzer target: the record reader of the DVR index's chunk blocks
 * (dvr/block_fmt.h, a blob read from the index file on disk). Every record
 * it accepts lies inside the input; the records re-encoded and read again
 * are the same (root sharing included). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dvr/block_fmt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_RECS 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ms_dvr_brec_t v[MAX_RECS];
    size_t n = 0, at = 0;
    ms_dvr_brec_t r;
    memset(&r, 0, sizeof r);
    int rc;
    while (n < MAX_RECS && (rc = blkf_next(data, size, &at, &r)) == 1) {
        const uint8_t *end = data + size;
        if (r.frags < data || r.frags + (size_t)r.nfrags * 32 > end ||
            (const uint8_t *)r.path + r.plen > end || (const uint8_t *)r.root + r.rlen > end ||
            (const uint8_t *)r.root < data || at > size)
            abort();
        v[n++] = r;
    }
    if (!n)
        return 0;
    /* re-encode what was read, sharing roots like the index does */
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += blkf_size(&v[i], 0);
    uint8_t *p = malloc(total);
    if (!p)
        return 0;
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        int same = i && v[i - 1].rlen == v[i].rlen && !memcmp(v[i - 1].root, v[i].root, v[i].rlen);
        len += blkf_write(p + len, &v[i], same);
    }
    at = 0;
    memset(&r, 0, sizeof r);
    for (size_t i = 0; i < n; i++) {
        if (blkf_next(p, len, &at, &r) != 1)
            abort();
        const ms_dvr_brec_t *o = &v[i];
        if (r.id != o->id || r.start_ms != o->start_ms || r.end_ms != o->end_ms ||
            r.bytes != o->bytes || r.init_len != o->init_len || r.nfrags != o->nfrags ||
            r.plen != o->plen || r.rlen != o->rlen ||
            memcmp(r.frags, o->frags, (size_t)r.nfrags * 32) || memcmp(r.path, o->path, r.plen) ||
            memcmp(r.root, o->root, r.rlen))
            abort();
    }
    if (blkf_next(p, len, &at, &r) != 0)
        abort();
    free(p);
    return 0;
}
