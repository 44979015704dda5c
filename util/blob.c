#include "util/blob.h"

#include <stdlib.h>
#include <string.h>

ms_blob_t *ms_blob_new(const void *data, size_t len)
{
    ms_blob_t *b = malloc(sizeof *b + len);
    if (!b)
        return NULL;
    atomic_init(&b->refs, 1);
    b->len = len;
    if (data && len)
        memcpy(b->data, data, len);
    return b;
}

ms_blob_t *ms_blob_ref(ms_blob_t *b)
{
    atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
    return b;
}

void ms_blob_unref(ms_blob_t *b)
{
    if (b && atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1)
        free(b);
}
