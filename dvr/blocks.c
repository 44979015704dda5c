/* Chunk blocks and per-stream totals of the local index (docs/dvr.md,
 * "Index"). Kept by ms_dvr_db_insert/update/delete in the writer's
 * transaction, rebuilt from the chunks when an index predates them.
 *
 * blocks(uid, b_ms, data): every closed chunk of a stream whose start falls
 * in the 10-minute bucket [b_ms, b_ms + BLOCK_MS), as one blob of records
 * sorted by start. A 24 h window of 2 s chunks reads 145 blobs instead of
 * 43k chunk rows (an index entry plus a table row each), which is what an
 * archive playlist of a day costs. Chunks still being written (open = 1)
 * change every second and stay out of the blocks: the reader adds them from
 * the chunks table through a partial index on open chunks.
 *
 * The record format (dvr/block_fmt.h, fuzzed by fuzz/fuzz_dvr_block.c):
 * chunk header, fragment table, path and root, every length checked
 * against the blob (it comes from a file on disk).
 *
 * totals(uid, chunks, bytes): row count and indexed bytes per stream (open
 * chunks included), so the status of a stream reads one row. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dvr/block_fmt.h"
#include "dvr/dvr_int.h"
#include "util/log.h"

#define CTX      "[dvr] [index]"
#define BLOCK_MS 600000
static int sq_err(sqlite3 *db, int rc, const char *what)
{
    MS_ERROR(CTX, "%s: %s (%d)", what, sqlite3_errmsg(db), rc);
    return rc == SQLITE_NOMEM ? -ENOMEM : rc == SQLITE_BUSY ? -EBUSY : -EIO;
}

static int64_t block_of(int64_t start_ms)
{
    int64_t q = start_ms / BLOCK_MS;
    if (start_ms % BLOCK_MS < 0)
        q--;
    return q * BLOCK_MS;
}

typedef ms_dvr_brec_t rec_t;

/* Parses a block blob into *out (malloc'ed, may be NULL when n = 0).
 * -EINVAL for a malformed blob. */
static int blk_parse(const uint8_t *p, size_t len, rec_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    size_t cap = 0, k = 0, at = 0;
    rec_t *v = NULL, r;
    memset(&r, 0, sizeof r);
    int rc;
    while ((rc = blkf_next(p, len, &at, &r)) == 1) {
        if (k == cap) {
            size_t nc = cap ? cap * 2 : 64;
            rec_t *nv = realloc(v, nc * sizeof *nv);
            if (!nv) {
                free(v);
                return -ENOMEM;
            }
            v = nv;
            cap = nc;
        }
        v[k++] = r;
    }
    if (rc < 0) {
        free(v);
        return rc;
    }
    *out = v;
    *n = k;
    return 0;
}

/* Encodes v[0..n) into a new blob (malloc'ed); a root equal to the
 * previous record's is written once. */
static uint8_t *blk_build(const rec_t *v, size_t n, size_t *len)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += blkf_size(&v[i], 0);
    uint8_t *p = malloc(total ? total : 1);
    if (!p)
        return NULL;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        const rec_t *r = &v[i];
        int same = i && v[i - 1].rlen == r->rlen && memcmp(v[i - 1].root, r->root, r->rlen) == 0;
        at += blkf_write(p + at, r, same);
    }
    *len = at;
    return p;
}

/* Reads the blob of (uid, b) into a malloc'ed copy (*p NULL when none). */
static int blk_load(sqlite3 *db, const char *uid, int64_t b, uint8_t **p, size_t *len)
{
    *p = NULL;
    *len = 0;
    sqlite3_stmt *st = NULL;
    int rc = ms_dvr_db_prep(db, "SELECT data FROM blocks WHERE uid=? AND b_ms=?", &st);
    if (rc != SQLITE_OK)
        return sq_err(db, rc, "blocks");
    sqlite3_bind_text(st, 1, uid, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, b);
    int err = 0;
    if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        size_t l = (size_t)sqlite3_column_bytes(st, 0);
        const void *d = sqlite3_column_blob(st, 0);
        *p = malloc(l ? l : 1);
        if (!*p)
            err = -ENOMEM;
        else if (l)
            memcpy(*p, d, l);
        *len = l;
    } else if (rc != SQLITE_DONE) {
        err = sq_err(db, rc, "blocks");
    }
    ms_dvr_db_fin(st);
    return err;
}

/* Writes (or, for n = 0, deletes) the blob of (uid, b). */
static int blk_store(sqlite3 *db, const char *uid, int64_t b, const rec_t *v, size_t n)
{
    sqlite3_stmt *st = NULL;
    int rc;
    if (!n) {
        rc = ms_dvr_db_prep(db, "DELETE FROM blocks WHERE uid=? AND b_ms=?", &st);
        if (rc != SQLITE_OK)
            return sq_err(db, rc, "blocks");
    } else {
        size_t len;
        uint8_t *p = blk_build(v, n, &len);
        if (!p)
            return -ENOMEM;
        rc = ms_dvr_db_prep(db, "INSERT OR REPLACE INTO blocks(uid,b_ms,data) VALUES(?,?,?)", &st);
        if (rc != SQLITE_OK) {
            free(p);
            return sq_err(db, rc, "blocks");
        }
        sqlite3_bind_blob(st, 3, p, (int)len, free);
    }
    sqlite3_bind_text(st, 1, uid, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, b);
    rc = sqlite3_step(st);
    ms_dvr_db_fin(st);
    return rc == SQLITE_DONE ? 0 : sq_err(db, rc, "blocks");
}

/* Replaces the record `id` of the block starting at b with add (NULL: only
 * removes it). A malformed stored blob is replaced by what can be kept (the
 * new record alone) and the index marked for a blocks rebuild at the next
 * start; readers meanwhile read that window from the chunk rows. */
static int blk_change(sqlite3 *db, const char *uid, int64_t b, int64_t id, const rec_t *add)
{
    uint8_t *p;
    size_t len;
    int rc = blk_load(db, uid, b, &p, &len);
    if (rc < 0)
        return rc;
    rec_t *v = NULL;
    size_t n = 0;
    if (p && (rc = blk_parse(p, len, &v, &n)) < 0) {
        if (rc == -ENOMEM) {
            free(p);
            return rc;
        }
        /* the records it held are rebuilt from the chunk rows at the next
         * start (user_version below 2 means: blocks to build) */
        MS_WARN(CTX, "block %s/%lld unreadable: replaced, blocks rebuilt at the next start", uid,
                (long long)b);
        sqlite3_exec(db, "PRAGMA user_version=1", NULL, NULL, NULL);
        n = 0;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (v[i].id != id)
            v[k++] = v[i];
    int changed = k != n;
    n = k;
    if (add) {
        rec_t *nv = realloc(v, (n + 1) * sizeof *nv);
        if (!nv) {
            free(v);
            free(p);
            return -ENOMEM;
        }
        v = nv;
        size_t at = n; /* sorted by (start, id); appends are the usual case */
        while (at > 0 && (v[at - 1].start_ms > add->start_ms ||
                          (v[at - 1].start_ms == add->start_ms && v[at - 1].id > add->id)))
            at--;
        memmove(&v[at + 1], &v[at], (n - at) * sizeof *v);
        v[at] = *add;
        n++;
        changed = 1;
    }
    rc = changed || (p && !n) ? blk_store(db, uid, b, v, n) : 0;
    free(v);
    free(p);
    return rc;
}

/* Adds or removes the record of a closed chunk. */
static int blk_add(sqlite3 *db, const ms_dvr_wchunk_t *c, const char *root)
{
    size_t flen;
    void *fb = ms_dvr_frags_encode(c->frags, c->nfrags, &flen);
    if (!fb)
        return -ENOMEM;
    size_t pl = strlen(c->path), rl = strlen(root);
    if (pl >= BLKF_ROOT_SAME || rl >= BLKF_ROOT_SAME) {
        free(fb);
        return -ENAMETOOLONG;
    }
    rec_t r = {c->rowid, c->start_ms, c->end_ms, c->bytes, c->init_len, (uint32_t)c->nfrags,
               fb,       c->path,     root,      pl,       rl};
    int rc = blk_change(db, c->uid, block_of(c->start_ms), c->rowid, &r);
    free(fb);
    return rc;
}

int ms_dvr_db_chunk_indexed(sqlite3 *db, const ms_dvr_wchunk_t *c, const char *root, int closed,
                            int64_t dbytes, int dcount)
{
    int rc = 0;
    if (closed)
        rc = blk_add(db, c, root);
    if (rc == 0 && (dbytes || dcount))
        rc = ms_dvr_db_totals_add(db, c->uid, dcount, dbytes);
    return rc;
}

int ms_dvr_db_chunk_unindexed(sqlite3 *db, const char *uid, int64_t id, int64_t start_ms,
                              int closed)
{
    return closed ? blk_change(db, uid, block_of(start_ms), id, NULL) : 0;
}

int ms_dvr_db_totals_add(sqlite3 *db, const char *uid, int dcount, int64_t dbytes)
{
    sqlite3_stmt *st = NULL;
    int rc = ms_dvr_db_prep(db,
                            "INSERT INTO totals(uid,chunks,bytes) VALUES(?1,?2,?3) "
                            "ON CONFLICT(uid) DO UPDATE SET chunks=chunks+?2,bytes=bytes+?3",
                            &st);
    if (rc != SQLITE_OK)
        return sq_err(db, rc, "totals");
    sqlite3_bind_text(st, 1, uid, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, dcount);
    sqlite3_bind_int64(st, 3, dbytes);
    rc = sqlite3_step(st);
    ms_dvr_db_fin(st);
    return rc == SQLITE_DONE ? 0 : sq_err(db, rc, "totals");
}

int ms_dvr_db_totals(sqlite3 *db, const char *uid, ms_dvr_totals_t *t)
{
    memset(t, 0, sizeof *t);
    sqlite3_stmt *st = NULL;
    int rc = ms_dvr_db_prep(db,
                            "SELECT chunks,bytes,(SELECT min(start_ms) FROM ranges WHERE uid=?1),"
                            "(SELECT max(end_ms) FROM ranges WHERE uid=?1) "
                            "FROM totals WHERE uid=?1",
                            &st);
    if (rc != SQLITE_OK)
        return sq_err(db, rc, "totals");
    sqlite3_bind_text(st, 1, uid, -1, SQLITE_STATIC);
    if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t n = sqlite3_column_int64(st, 0);
        t->chunks = n > 0 ? (size_t)n : 0;
        t->bytes = (uint64_t)sqlite3_column_int64(st, 1);
        t->first_ms = sqlite3_column_int64(st, 2);
        t->last_ms = sqlite3_column_int64(st, 3);
    }
    ms_dvr_db_fin(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sq_err(db, rc, "totals");
}

int ms_dvr_db_totals_rebuild(sqlite3 *db)
{
    int rc = sqlite3_exec(db,
                          "DELETE FROM totals;"
                          "INSERT INTO totals(uid,chunks,bytes) "
                          "SELECT uid,count(*),sum(bytes) FROM chunks GROUP BY uid",
                          NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : sq_err(db, rc, "totals rebuild");
}

int ms_dvr_db_blocks_rebuild(sqlite3 *db)
{
    int rc = ms_dvr_db_totals_rebuild(db);
    if (rc < 0)
        return rc;
    rc = sqlite3_exec(db, "DELETE FROM blocks", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return sq_err(db, rc, "blocks rebuild");
    sqlite3_stmt *st = NULL;
    rc = sqlite3_prepare_v2(db,
                            "SELECT uid,id,start_ms,end_ms,bytes,init_len,frags,path,root FROM "
                            "chunks WHERE open=0 ORDER BY uid,start_ms,id",
                            -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sq_err(db, rc, "blocks rebuild");
    /* records of the current (uid, block) copied into one buffer; the rec_t
     * pointers are offsets until the block is written */
    char cur[64] = "";
    int64_t cb = 0;
    rec_t *v = NULL;
    size_t n = 0, cap = 0, blen = 0, bcap = 0;
    uint8_t *buf = NULL;
    int err = 0, have = 0;
    for (;;) {
        rc = sqlite3_step(st);
        const char *uid = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
        int64_t s = uid ? sqlite3_column_int64(st, 2) : 0;
        if (have && (!uid || strcmp(uid, cur) != 0 || block_of(s) != cb)) {
            for (size_t i = 0; i < n; i++) {
                v[i].frags = buf + (uintptr_t)v[i].frags;
                v[i].path = (const char *)buf + (uintptr_t)v[i].path;
                v[i].root = (const char *)buf + (uintptr_t)v[i].root;
            }
            if ((err = blk_store(db, cur, cb, v, n)) < 0)
                break;
            n = 0;
            blen = 0;
            have = 0;
        }
        if (!uid)
            break;
        size_t fl = (size_t)sqlite3_column_bytes(st, 6);
        const void *fb = sqlite3_column_blob(st, 6);
        size_t pl = (size_t)sqlite3_column_bytes(st, 7), rl = (size_t)sqlite3_column_bytes(st, 8);
        const void *path = sqlite3_column_text(st, 7), *root = sqlite3_column_text(st, 8);
        if (fl % 32 || pl >= BLKF_ROOT_SAME || rl >= BLKF_ROOT_SAME || !path || !root)
            continue; /* not representable: left to the row query (never written so) */
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 512;
            rec_t *nv = realloc(v, nc * sizeof *nv);
            if (!nv) {
                err = -ENOMEM;
                break;
            }
            v = nv;
            cap = nc;
        }
        if (blen + fl + pl + rl > bcap) {
            size_t nc = bcap ? bcap : 65536;
            while (nc < blen + fl + pl + rl)
                nc *= 2;
            uint8_t *nb = realloc(buf, nc);
            if (!nb) {
                err = -ENOMEM;
                break;
            }
            buf = nb;
            bcap = nc;
        }
        rec_t *r = &v[n++];
        r->id = sqlite3_column_int64(st, 1);
        r->start_ms = s;
        r->end_ms = sqlite3_column_int64(st, 3);
        r->bytes = (uint64_t)sqlite3_column_int64(st, 4);
        r->init_len = (uint32_t)sqlite3_column_int64(st, 5);
        r->nfrags = (uint32_t)(fl / 32);
        r->frags = (const uint8_t *)(uintptr_t)blen;
        if (fl)
            memcpy(buf + blen, fb, fl);
        blen += fl;
        r->path = (const char *)(uintptr_t)blen;
        memcpy(buf + blen, path, pl);
        blen += pl;
        r->plen = pl;
        r->root = (const char *)(uintptr_t)blen;
        memcpy(buf + blen, root, rl);
        blen += rl;
        r->rlen = rl;
        if (!have) {
            snprintf(cur, sizeof cur, "%s", uid);
            cb = block_of(s);
            have = 1;
        }
    }
    if (!err && rc != SQLITE_DONE)
        err = sq_err(db, rc, "blocks rebuild");
    sqlite3_finalize(st);
    free(v);
    free(buf);
    return err;
}

/* ---- the reading side --------------------------------------------------- */

/* Growable byte buffer of the query's pools. */
typedef struct {
    uint8_t *p;
    size_t len, cap;
    int err;
} pool_t;

static size_t pool_put(pool_t *b, const void *data, size_t len)
{
    size_t at = b->len;
    if (b->len + len > b->cap) {
        size_t nc = b->cap ? b->cap : 4096;
        while (nc < b->len + len)
            nc *= 2;
        uint8_t *np = realloc(b->p, nc);
        if (!np) {
            b->err = 1;
            return 0;
        }
        b->p = np;
        b->cap = nc;
    }
    if (len && data)
        memcpy(b->p + b->len, data, len);
    b->len += len;
    return at;
}

/* Grows b to hold extra more bytes at once (the pools would otherwise be
 * copied by realloc a dozen times while a day of chunks is decoded). */
static void pool_reserve(pool_t *b, size_t extra)
{
    if (b->err || b->len + extra <= b->cap)
        return;
    uint8_t *np = realloc(b->p, b->len + extra);
    if (np) {
        b->p = np;
        b->cap = b->len + extra;
    }
}

typedef struct {
    pool_t rows, fr, str;
    size_t cnt, nfr;
    size_t last_root, last_root_len; /* the previous chunk's root in str */
    const char *last_root_src;       /* and where it was copied from */
} acc_t;

/* Appends one chunk; path/root are copied (not NUL-terminated: lengths),
 * frags are decoded from their 32-byte records. */
static int acc_add(acc_t *a, ms_dvr_chunk_t *c, const char *path, size_t pl, const char *root,
                   size_t rl, const uint8_t *fb, size_t nf)
{
    size_t po = pool_put(&a->str, NULL, pl + 1);
    if (!a->str.err) {
        memcpy(a->str.p + po, path, pl);
        a->str.p[po + pl] = '\0';
    }
    int reuse = !a->str.err && a->last_root != (size_t)-1 &&
                (root == a->last_root_src ||
                 (a->last_root_len == rl && memcmp(a->str.p + a->last_root, root, rl) == 0));
    if (!reuse) {
        size_t ro = pool_put(&a->str, NULL, rl + 1);
        if (!a->str.err) {
            memcpy(a->str.p + ro, root, rl);
            a->str.p[ro + rl] = '\0';
        }
        a->last_root = ro;
        a->last_root_len = rl;
    }
    a->last_root_src = root;
    c->path = (const char *)(uintptr_t)po;
    c->root = (const char *)(uintptr_t)a->last_root;
    c->nfrags = nf;
    c->frags = (ms_dvr_frag_t *)(uintptr_t)a->nfr;
    size_t fo = pool_put(&a->fr, NULL, nf * sizeof(ms_dvr_frag_t));
    if (a->fr.err || a->str.err)
        return -ENOMEM;
    ms_dvr_frag_t *fd = (ms_dvr_frag_t *)(void *)(a->fr.p + fo);
    for (size_t i = 0; i < nf; i++) {
        const uint8_t *q = fb + i * 32;
        fd[i].t_ms = (int64_t)blkf_le64(q);
        fd[i].dur_ms = blkf_le32(q + 8);
        fd[i].key = blkf_le32(q + 12);
        fd[i].off = blkf_le64(q + 16);
        fd[i].size = blkf_le64(q + 24);
    }
    a->nfr += nf;
    pool_put(&a->rows, c, sizeof *c);
    a->cnt++;
    return a->rows.err ? -ENOMEM : 0;
}

static int chunk_cmp(const void *x, const void *y)
{
    const ms_dvr_chunk_t *a = x, *b = y;
    if (a->start_ms != b->start_ms)
        return a->start_ms < b->start_ms ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

/* The read path's SQL (prepared once per thread and connection:
 * ms_dvr_db_prep in index.c). */
enum { SQ_BEGIN, SQ_COMMIT, SQ_LOWER, SQ_BLOCKS, SQ_BSIZE, SQ_OPEN, SQ_ALL, SQ_N };
static const char *const SQ_SQL[SQ_N] = {
    "BEGIN DEFERRED",
    "COMMIT",
    "SELECT max(start_ms) FROM chunks WHERE uid=? AND start_ms<=?",
    "SELECT data FROM blocks WHERE uid=? AND b_ms>=? AND b_ms<? ORDER BY b_ms",
    "SELECT sum(length(data)) FROM blocks WHERE uid=? AND b_ms>=? AND b_ms<?",
    "SELECT id,path,root,start_ms,end_ms,bytes,init_len,open,frags FROM chunks WHERE uid=? AND "
    "open=1 AND start_ms>=? AND start_ms<? AND end_ms>? ORDER BY start_ms",
    "SELECT id,path,root,start_ms,end_ms,bytes,init_len,open,frags FROM chunks WHERE uid=? AND "
    "start_ms>=? AND start_ms<? AND end_ms>? ORDER BY start_ms",
};

/* The statement k of db, ready to bind (NULL on error); ms_dvr_db_fin
 * after use. */
static sqlite3_stmt *sq(sqlite3 *db, int k)
{
    sqlite3_stmt *st = NULL;
    int rc = ms_dvr_db_prep(db, SQ_SQL[k], &st);
    if (rc != SQLITE_OK) {
        sq_err(db, rc, "query");
        return NULL;
    }
    return st;
}

static void sq_done(sqlite3_stmt *st)
{
    ms_dvr_db_fin(st);
}

/* Rows of the chunks table (open ones only, or all) into a. */
static int acc_rows(sqlite3 *db, acc_t *a, const char *uid, int64_t lo, int64_t from_ms,
                    int64_t to_ms, int open_only)
{
    sqlite3_stmt *st = sq(db, open_only ? SQ_OPEN : SQ_ALL);
    if (!st)
        return -EIO;
    int rc;
    sqlite3_bind_text(st, 1, uid, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, lo);
    sqlite3_bind_int64(st, 3, to_ms);
    sqlite3_bind_int64(st, 4, from_ms);
    int err = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        ms_dvr_chunk_t c;
        c.id = sqlite3_column_int64(st, 0);
        c.uid = NULL;
        const char *path = (const char *)sqlite3_column_text(st, 1);
        size_t pl = (size_t)sqlite3_column_bytes(st, 1);
        const char *root = (const char *)sqlite3_column_text(st, 2);
        size_t rl = (size_t)sqlite3_column_bytes(st, 2);
        c.start_ms = sqlite3_column_int64(st, 3);
        c.end_ms = sqlite3_column_int64(st, 4);
        c.bytes = (uint64_t)sqlite3_column_int64(st, 5);
        c.init_len = (uint32_t)sqlite3_column_int64(st, 6);
        c.open = sqlite3_column_int(st, 7);
        const uint8_t *fb = sqlite3_column_blob(st, 8);
        size_t fl = (size_t)sqlite3_column_bytes(st, 8);
        if (fl % 32) {
            err = -EINVAL;
            break;
        }
        a->last_root_src = NULL; /* row text changes with each step */
        if ((err = acc_add(a, &c, path ? path : "", path ? pl : 0, root ? root : "", root ? rl : 0,
                           fb, fb ? fl / 32 : 0)) < 0)
            break;
    }
    if (!err && rc != SQLITE_DONE)
        err = sq_err(db, rc, "query");
    sq_done(st);
    return err;
}

/* Closed chunks from the blocks into a. */
static int acc_blocks(sqlite3 *db, acc_t *a, const char *uid, int64_t lo, int64_t from_ms,
                      int64_t to_ms)
{
    int64_t b0 = lo == INT64_MIN ? INT64_MIN : block_of(lo);
    /* bytes of all the blobs of the window (length() reads no content):
     * with the first blob's mix of records, fragments and strings, the
     * pools are sized once */
    int64_t total = 0;
    sqlite3_stmt *st = sq(db, SQ_BSIZE);
    if (st) {
        sqlite3_bind_text(st, 1, uid, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, b0);
        sqlite3_bind_int64(st, 3, to_ms);
        if (sqlite3_step(st) == SQLITE_ROW)
            total = sqlite3_column_int64(st, 0);
        sq_done(st);
    }
    st = sq(db, SQ_BLOCKS);
    if (!st)
        return -EIO;
    int rc = SQLITE_DONE, first = 1;
    sqlite3_bind_text(st, 1, uid, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, b0);
    sqlite3_bind_int64(st, 3, to_ms);
    int err = 0;
    while (!err && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const uint8_t *p = sqlite3_column_blob(st, 0);
        size_t len = (size_t)sqlite3_column_bytes(st, 0);
        if (first && len && total > 0 && (uint64_t)total / len < 100000) {
            /* records, fragments and string bytes of this blob (headers
             * only; a bad blob is caught below) */
            size_t nr = 0, nf = 0, sb = 0, at = 0;
            ms_dvr_brec_t r;
            memset(&r, 0, sizeof r);
            while (blkf_next(p, len, &at, &r) == 1) {
                nr++;
                nf += r.nfrags;
                sb += r.plen + 2;
            }
            double k = (double)total / (double)len * 1.02;
            pool_reserve(&a->rows, (size_t)((double)(nr + 1) * k) * sizeof(ms_dvr_chunk_t));
            pool_reserve(&a->fr, (size_t)((double)nf * k) * sizeof(ms_dvr_frag_t));
            pool_reserve(&a->str, (size_t)((double)sb * k) + 4096);
        }
        first = 0;
        a->last_root_src = NULL;
        ms_dvr_brec_t r;
        memset(&r, 0, sizeof r);
        size_t at = 0;
        int k;
        while (!err && (k = blkf_next(p, len, &at, &r)) != 0) {
            if (k < 0) {
                err = k;
                break;
            }
            if (r.start_ms < lo || r.start_ms >= to_ms || r.end_ms <= from_ms)
                continue;
            ms_dvr_chunk_t c;
            c.id = r.id;
            c.uid = NULL;
            c.start_ms = r.start_ms;
            c.end_ms = r.end_ms;
            c.bytes = r.bytes;
            c.init_len = r.init_len;
            c.open = 0;
            err = acc_add(a, &c, r.path, r.plen, r.root, r.rlen, r.frags, r.nfrags);
        }
    }
    if (err == -EINVAL)
        MS_WARN(CTX, "a block of %s is unreadable: read from the chunk rows", uid);
    if (!err && rc != SQLITE_DONE)
        err = sq_err(db, rc, "query");
    sq_done(st);
    return err;
}

/* The lower bound of the (uid, start_ms) scan: the start of the last chunk
 * starting at or before from_ms (chunks of one stream do not overlap, so
 * no earlier one reaches past from_ms); INT64_MIN when none. */
static int64_t lower_bound(sqlite3 *db, const char *uid, int64_t from_ms)
{
    int64_t lo = INT64_MIN;
    sqlite3_stmt *st = sq(db, SQ_LOWER);
    if (!st)
        return lo;
    sqlite3_bind_text(st, 1, uid, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, from_ms);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        lo = sqlite3_column_int64(st, 0);
    sq_done(st);
    return lo;
}

int ms_dvr_db_query_from(sqlite3 *db, const char *uid, int64_t from_ms, int64_t to_ms,
                         int use_blocks, ms_dvr_chunk_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    /* one read transaction: the blocks and the open rows of one snapshot
     * (a chunk closing meanwhile is in exactly one of them) */
    int txn = 0;
    sqlite3_stmt *bt = sqlite3_get_autocommit(db) ? sq(db, SQ_BEGIN) : NULL;
    if (bt) {
        txn = sqlite3_step(bt) == SQLITE_DONE;
        sq_done(bt);
    }
    acc_t a;
    memset(&a, 0, sizeof a);
    a.last_root = (size_t)-1;
    int64_t lo = lower_bound(db, uid, from_ms);
    int err;
    if (use_blocks) {
        err = acc_blocks(db, &a, uid, lo, from_ms, to_ms);
        if (err == -EINVAL) {
            /* a blob that does not parse: this window is read from the
             * chunk rows (right, slower) until the writer replaces it */
            free(a.rows.p);
            free(a.fr.p);
            free(a.str.p);
            memset(&a, 0, sizeof a);
            a.last_root = (size_t)-1;
            use_blocks = 0;
        }
    }
    if (use_blocks) {
        size_t closed = a.cnt;
        if (!err)
            err = acc_rows(db, &a, uid, lo, from_ms, to_ms, 1);
        if (!err && a.cnt > closed && closed)
            qsort(a.rows.p, a.cnt, sizeof(ms_dvr_chunk_t), chunk_cmp);
    } else {
        err = acc_rows(db, &a, uid, lo, from_ms, to_ms, 0);
    }
    sqlite3_stmt *ct = txn ? sq(db, SQ_COMMIT) : NULL;
    if (ct) {
        sqlite3_step(ct);
        sq_done(ct);
    } else if (txn) {
        sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    }
    /* the uid (once), then a hidden trailer v[cnt] holding the pools (see
     * ms_dvr_chunks_free); the row buffer becomes the array */
    size_t uo = pool_put(&a.str, uid, strlen(uid) + 1);
    ms_dvr_chunk_t tr;
    memset(&tr, 0, sizeof tr);
    pool_put(&a.rows, &tr, sizeof tr);
    if (!err && (a.rows.err || a.str.err || a.fr.err))
        err = -ENOMEM;
    if (err || !a.cnt) {
        free(a.rows.p);
        free(a.fr.p);
        free(a.str.p);
        return err;
    }
    ms_dvr_chunk_t *v = (ms_dvr_chunk_t *)(void *)a.rows.p;
    ms_dvr_frag_t *f0 = (ms_dvr_frag_t *)(void *)a.fr.p;
    const char *s0 = (const char *)a.str.p;
    for (size_t i = 0; i < a.cnt; i++) {
        v[i].uid = s0 + uo;
        v[i].path = s0 + (uintptr_t)v[i].path;
        v[i].root = s0 + (uintptr_t)v[i].root;
        v[i].frags = v[i].nfrags ? f0 + (uintptr_t)v[i].frags : NULL;
    }
    v[a.cnt].path = s0;
    v[a.cnt].frags = f0;
    *out = v;
    *n = a.cnt;
    return 0;
}
