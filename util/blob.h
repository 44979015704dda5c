/* Refcounted immutable byte blobs: segments, parts, packetized data and
 * playlists are built once and shared by every client (never copied per
 * client). The refcount is atomic, so a blob may be released on any thread.
 *
 * Ownership: ms_blob_new() returns a blob with one reference owned by the
 * caller; ms_blob_ref() adds one and returns the same pointer; ms_blob_unref()
 * drops one and frees at zero. Contents may be written only by the creator,
 * before the blob is shared. */
#ifndef MS_UTIL_BLOB_H
#define MS_UTIL_BLOB_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ms_blob {
    atomic_int refs;
    size_t len;
    uint8_t data[];
} ms_blob_t;

/* NULL on allocation failure. data may be NULL (contents left uninitialised). */
ms_blob_t *ms_blob_new(const void *data, size_t len);
ms_blob_t *ms_blob_ref(ms_blob_t *b);
void ms_blob_unref(ms_blob_t *b); /* NULL is a no-op */

#endif
