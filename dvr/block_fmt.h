/* Record format of the index's chunk blocks (dvr/blocks.c, docs/dvr.md
 * "Index"): pure, header-only so that the fuzz target reads blobs with the
 * very code the index uses. Any thread; borrows everything.
 *
 * A blob is a run of records, little-endian:
 *   u32 record length (header included), i64 id, i64 start_ms, i64 end_ms,
 *   u64 bytes, u32 init_len, u32 nfrags, u16 path length, u16 root length
 *   (BLKF_ROOT_SAME: the root of the previous record), then nfrags fragment
 *   records of 32 bytes (as in chunks.frags), the path, the root (no NUL).
 * The blob comes from a file on disk: every length is checked against it. */
#ifndef MS_DVR_BLOCK_FMT_H
#define MS_DVR_BLOCK_FMT_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define BLKF_HDR       48
#define BLKF_ROOT_SAME 0xFFFFu

/* One record; frags, path and root point into the blob (or, to encode,
 * into the caller's data). */
typedef struct {
    int64_t id, start_ms, end_ms;
    uint64_t bytes;
    uint32_t init_len, nfrags;
    const uint8_t *frags; /* nfrags records of 32 bytes */
    const char *path, *root;
    size_t plen, rlen;
} ms_dvr_brec_t;

static inline uint64_t blkf_le64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

static inline uint32_t blkf_le32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap32(v);
#endif
    return v;
}

static inline uint16_t blkf_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static inline void blkf_put(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Parses the record at *at of p[0..len) into *r and advances *at: 1, 0 at
 * the end of the blob, -EINVAL when malformed. r carries the root from one
 * call to the next: zero it before the first record of a blob. */
static inline int blkf_next(const uint8_t *p, size_t len, size_t *at, ms_dvr_brec_t *r)
{
    if (*at >= len)
        return 0;
    if (len - *at < BLKF_HDR)
        return -EINVAL;
    const uint8_t *q = p + *at;
    uint32_t rl = blkf_le32(q), nf = blkf_le32(q + 40);
    size_t pl = blkf_le16(q + 44), rl2 = blkf_le16(q + 46);
    if (rl < BLKF_HDR || rl > len - *at || nf > rl / 32)
        return -EINVAL;
    size_t body = (size_t)nf * 32 + pl + (rl2 == BLKF_ROOT_SAME ? 0 : rl2);
    if (body != rl - BLKF_HDR || (rl2 == BLKF_ROOT_SAME && !r->root))
        return -EINVAL;
    r->id = (int64_t)blkf_le64(q + 4);
    r->start_ms = (int64_t)blkf_le64(q + 12);
    r->end_ms = (int64_t)blkf_le64(q + 20);
    r->bytes = blkf_le64(q + 28);
    r->init_len = blkf_le32(q + 36);
    r->nfrags = nf;
    r->frags = q + BLKF_HDR;
    r->path = (const char *)r->frags + (size_t)nf * 32;
    r->plen = pl;
    if (rl2 != BLKF_ROOT_SAME) {
        r->root = r->path + pl;
        r->rlen = rl2;
    }
    *at += rl;
    return 1;
}

/* Encoded length of r (same_root: its root is the previous record's). */
static inline size_t blkf_size(const ms_dvr_brec_t *r, int same_root)
{
    return BLKF_HDR + (size_t)r->nfrags * 32 + r->plen + (same_root ? 0 : r->rlen);
}

/* Writes r at q (blkf_size(r, same_root) bytes); plen and rlen must be
 * below BLKF_ROOT_SAME. Returns the length written. */
static inline size_t blkf_write(uint8_t *q, const ms_dvr_brec_t *r, int same_root)
{
    size_t rl = blkf_size(r, same_root);
    blkf_put(q, rl, 4);
    blkf_put(q + 4, (uint64_t)r->id, 8);
    blkf_put(q + 12, (uint64_t)r->start_ms, 8);
    blkf_put(q + 20, (uint64_t)r->end_ms, 8);
    blkf_put(q + 28, r->bytes, 8);
    blkf_put(q + 36, r->init_len, 4);
    blkf_put(q + 40, r->nfrags, 4);
    blkf_put(q + 44, r->plen, 2);
    blkf_put(q + 46, same_root ? BLKF_ROOT_SAME : r->rlen, 2);
    uint8_t *d = q + BLKF_HDR;
    if (r->nfrags)
        memcpy(d, r->frags, (size_t)r->nfrags * 32);
    d += (size_t)r->nfrags * 32;
    if (r->plen)
        memcpy(d, r->path, r->plen);
    d += r->plen;
    if (!same_root && r->rlen)
        memcpy(d, r->root, r->rlen);
    return rl;
}

#endif
