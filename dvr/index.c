/* Local chunk index (SQLite, WAL). One connection per thread: each writer
 * thread owns one, readers (API threads) keep their own (dvr.c).
 *
 * chunks: a row per chunk file (stream uid, root, path, start/end ms,
 * bytes, init length, open flag, fragments as a blob of 32-byte records:
 * t_ms i64, dur_ms u32, key u32, offset u64, size u64, little-endian).
 * streams: per-stream retention depth, kept after the stream stops so old
 * chunks still age out.
 * ranges: contiguous recordings per stream (chunks merged while the hole
 * between them is <= the gap threshold), kept by ms_dvr_db_insert/update/
 * delete in the caller's transaction (built from the chunks once for an
 * index that predates them: ms_dvr_db_ranges_rebuild), so listing 30 days
 * of ranges reads a few hundred rows instead of every chunk.
 * blocks, totals: the closed chunks in 10-minute blobs and the per-stream
 * count and bytes (blocks.c), kept by the same calls. A row replaced by a
 * re-indexed file is deleted through ms_dvr_db_delete first, so all three
 * follow it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dvr/dvr_int.h"
#include "util/log.h"

#define CTX "[dvr] [index]"

static const char *SCHEMA =
    "CREATE TABLE IF NOT EXISTS chunks("
    " id INTEGER PRIMARY KEY,"
    " uid TEXT NOT NULL,"
    " root TEXT NOT NULL,"
    " path TEXT NOT NULL UNIQUE,"
    " start_ms INTEGER NOT NULL,"
    " end_ms INTEGER NOT NULL,"
    " bytes INTEGER NOT NULL,"
    " init_len INTEGER NOT NULL,"
    " open INTEGER NOT NULL DEFAULT 0,"
    " frags BLOB);"
    "DROP INDEX IF EXISTS chunks_uid_start;"
    "CREATE INDEX IF NOT EXISTS chunks_uid_se ON chunks(uid, start_ms, end_ms, bytes);"
    "CREATE INDEX IF NOT EXISTS chunks_root_start ON chunks(root, start_ms);"
    "CREATE TABLE IF NOT EXISTS streams(uid TEXT PRIMARY KEY, depth_s INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS ranges("
    " id INTEGER PRIMARY KEY,"
    " uid TEXT NOT NULL,"
    " start_ms INTEGER NOT NULL,"
    " end_ms INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS ranges_uid_se ON ranges(uid, start_ms, end_ms);"
    /* blocks.c */
    "CREATE TABLE IF NOT EXISTS blocks("
    " uid TEXT NOT NULL,"
    " b_ms INTEGER NOT NULL,"
    " data BLOB NOT NULL,"
    " PRIMARY KEY(uid, b_ms));"
    "CREATE INDEX IF NOT EXISTS chunks_open ON chunks(uid, start_ms) WHERE open=1;"
    "CREATE TABLE IF NOT EXISTS totals("
    " uid TEXT PRIMARY KEY,"
    " chunks INTEGER NOT NULL,"
    " bytes INTEGER NOT NULL);";

static int sq_err(sqlite3 *db, int rc, const char *what)
{
    MS_ERROR(CTX, "%s: %s (%d)", what, sqlite3_errmsg(db), rc);
    return rc == SQLITE_NOMEM ? -ENOMEM : rc == SQLITE_BUSY ? -EBUSY : -EIO;
}

/* Prepared statements kept per thread for one connection: parsing the SQL
 * again was about half the cost of a writer's row update (every second per
 * stream) and of a short read. Keyed by the SQL text's address (string
 * literals only); reset and unbound by ms_dvr_db_fin, finalized by
 * ms_dvr_db_forget before the connection closes (ms_dvr_db_close, the read
 * connections of dvr.c, the writer thread at its end). A full table
 * prepares uncached statements (finalized by ms_dvr_db_fin). */
#define STC_N 48
static _Thread_local struct {
    sqlite3 *db;
    const char *sql[STC_N];
    sqlite3_stmt *st[STC_N];
    int n;
} stc;

void ms_dvr_db_forget(sqlite3 *db)
{
    if (!db || stc.db != db)
        return;
    for (int i = 0; i < stc.n; i++)
        sqlite3_finalize(stc.st[i]);
    stc.n = 0;
    stc.db = NULL;
}

int ms_dvr_db_prep(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
    *st = NULL;
    if (stc.db != db) {
        ms_dvr_db_forget(stc.db);
        stc.db = db;
    }
    for (int i = 0; i < stc.n; i++)
        if (stc.sql[i] == sql) {
            *st = stc.st[i];
            return SQLITE_OK;
        }
    if (stc.n == STC_N)
        return sqlite3_prepare_v2(db, sql, -1, st, NULL);
    int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
    if (rc == SQLITE_OK) {
        stc.sql[stc.n] = sql;
        stc.st[stc.n++] = *st;
    }
    return rc;
}

void ms_dvr_db_fin(sqlite3_stmt *st)
{
    if (!st)
        return;
    for (int i = 0; i < stc.n; i++)
        if (stc.st[i] == st) {
            sqlite3_reset(st);
            sqlite3_clear_bindings(st);
            return;
        }
    sqlite3_finalize(st);
}

int ms_dvr_db_open(const char *path, sqlite3 **out)
{
    sqlite3 *db = NULL;
    *out = NULL;
    int rc = sqlite3_open_v2(
        path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        int e = db ? sq_err(db, rc, "open") : -ENOMEM;
        sqlite3_close(db);
        return e;
    }
    sqlite3_busy_timeout(db, 10000);
    char *msg = NULL;
    rc = sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL, NULL, &msg);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, SCHEMA, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        MS_ERROR(CTX, "schema: %s", msg ? msg : "?");
        sqlite3_free(msg);
        sqlite3_close(db);
        return -EIO;
    }
    *out = db;
    return 0;
}

void ms_dvr_db_close(sqlite3 *db)
{
    if (db) {
        ms_dvr_db_forget(db);
        sqlite3_close(db);
    }
}

/* Runs one cached statement without parameters (transaction control). */
static int exec1(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    int rc = ms_dvr_db_prep(db, sql, &st);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_step(st);
    ms_dvr_db_fin(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

int ms_dvr_db_begin(sqlite3 *db)
{
    int rc = exec1(db, "BEGIN IMMEDIATE");
    return rc == SQLITE_OK ? 0 : sq_err(db, rc, "begin");
}

int ms_dvr_db_commit(sqlite3 *db)
{
    int rc = exec1(db, "COMMIT");
    if (rc != SQLITE_OK) {
        int e = sq_err(db, rc, "commit");
        exec1(db, "ROLLBACK");
        return e;
    }
    return 0;
}

static void put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

void *ms_dvr_frags_encode(const ms_dvr_frag_t *f, size_t n, size_t *len)
{
    *len = n * 32;
    uint8_t *p = malloc(*len ? *len : 1);
    if (!p)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        uint8_t *q = p + i * 32;
        put_le(q, (uint64_t)f[i].t_ms, 8);
        put_le(q + 8, f[i].dur_ms, 4);
        put_le(q + 12, f[i].key, 4);
        put_le(q + 16, f[i].off, 8);
        put_le(q + 24, f[i].size, 8);
    }
    return p;
}

int ms_dvr_frags_decode(const void *p, size_t len, ms_dvr_frag_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (len % 32)
        return -EINVAL;
    if (!len)
        return 0;
    ms_dvr_frag_t *f = calloc(len / 32, sizeof *f);
    if (!f)
        return -ENOMEM;
    const uint8_t *b = p;
    for (size_t i = 0; i < len / 32; i++) {
        const uint8_t *q = b + i * 32;
        f[i].t_ms = (int64_t)get_le(q, 8);
        f[i].dur_ms = (uint32_t)get_le(q + 8, 4);
        f[i].key = (uint32_t)get_le(q + 12, 4);
        f[i].off = get_le(q + 16, 8);
        f[i].size = get_le(q + 24, 8);
    }
    *out = f;
    *n = len / 32;
    return 0;
}

static int64_t gap_ms(void)
{
    return ms_dvr_g.tun.gap_ms > 0 ? ms_dvr_g.tun.gap_ms : 2000;
}

/* Runs a prepared statement with up to 4 int64 parameters after a text
 * first parameter (uid may be NULL: no text parameter). */
static int run(sqlite3 *db, const char *sql, const char *uid, const int64_t *a, int na)
{
    sqlite3_stmt *st = NULL;
    int rc = ms_dvr_db_prep(db, sql, &st);
    if (rc != SQLITE_OK)
        return sq_err(db, rc, "ranges");
    int k = 1;
    if (uid)
        sqlite3_bind_text(st, k++, uid, -1, SQLITE_STATIC);
    for (int i = 0; i < na; i++)
        sqlite3_bind_int64(st, k++, a[i]);
    rc = sqlite3_step(st);
    ms_dvr_db_fin(st);
    return rc == SQLITE_DONE ? 0 : sq_err(db, rc, "ranges");
}

/* One row of two or three int64 columns; 1 found, 0 none, < 0 error. */
static int row3(sqlite3 *db, const char *sql, const char *uid, const int64_t *a, int na, int64_t *x,
                int64_t *y, int64_t *z)
{
    sqlite3_stmt *st = NULL;
    int rc = ms_dvr_db_prep(db, sql, &st);
    if (rc != SQLITE_OK)
        return sq_err(db, rc, "ranges");
    int k = 1;
    if (uid)
        sqlite3_bind_text(st, k++, uid, -1, SQLITE_STATIC);
    for (int i = 0; i < na; i++)
        sqlite3_bind_int64(st, k++, a[i]);
    rc = sqlite3_step(st);
    int found = rc == SQLITE_ROW;
    if (found) {
        *x = sqlite3_column_int64(st, 0);
        *y = sqlite3_column_int64(st, 1);
        if (z)
            *z = sqlite3_column_int64(st, 2);
    }
    ms_dvr_db_fin(st);
    if (!found && rc != SQLITE_DONE)
        return sq_err(db, rc, "ranges");
    return found;
}

/* The chunk [s, e) of uid was added (or grew): every range within the gap
 * threshold of it is merged with it into one. Ranges of a stream are
 * disjoint and sorted, so the walk from the last range starting before
 * e + gap stops at the first one ending before s - gap. */
static int range_add(sqlite3 *db, const char *uid, int64_t s, int64_t e)
{
    int64_t gap = gap_ms();
    sqlite3_stmt *st = NULL;
    int rc = ms_dvr_db_prep(db,
                            "SELECT id,start_ms,end_ms FROM ranges WHERE uid=? AND start_ms<=? "
                            "ORDER BY start_ms DESC",
                            &st);
    if (rc != SQLITE_OK)
        return sq_err(db, rc, "ranges");
    sqlite3_bind_text(st, 1, uid, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, e + gap);
    int64_t keep = 0, ns = s, ne = e;
    int64_t drop[16];
    int ndrop = 0, more = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0), rs = sqlite3_column_int64(st, 1),
                re = sqlite3_column_int64(st, 2);
        if (re < s - gap)
            break;
        if (rs < ns)
            ns = rs;
        if (re > ne)
            ne = re;
        if (!keep)
            keep = id;
        else if (ndrop < 16)
            drop[ndrop++] = id;
        else
            more = 1;
    }
    ms_dvr_db_fin(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return sq_err(db, rc, "ranges");
    int err = 0;
    for (int i = 0; i < ndrop && !err; i++)
        err = run(db, "DELETE FROM ranges WHERE id=?", NULL, &drop[i], 1);
    if (!err && more) /* merged more than 17 ranges at once (reconciliation) */
        err = run(db, "DELETE FROM ranges WHERE uid=? AND start_ms>? AND start_ms<? AND id<>?", uid,
                  (int64_t[]){ns, ne, keep}, 3);
    if (err)
        return err;
    if (keep)
        return run(db, "UPDATE ranges SET start_ms=?,end_ms=? WHERE id=?", NULL,
                   (int64_t[]){ns, ne, keep}, 3);
    return run(db, "INSERT INTO ranges(uid,start_ms,end_ms) VALUES(?,?,?)", uid, (int64_t[]){s, e},
               2);
}

/* The chunk [s, e) of uid was removed (its row already deleted): its range
 * loses its head or its tail, or splits when the chunks left on both sides
 * are more than the gap apart. The neighbours are the chunk starting last
 * before s and the first one starting at or after s inside the range
 * (chunks of one stream do not overlap). */
static int range_remove(sqlite3 *db, const char *uid, int64_t s, int64_t e)
{
    int64_t id, rs, re;
    int rc = row3(db,
                  "SELECT id,start_ms,end_ms FROM ranges WHERE uid=? AND start_ms<=? "
                  "ORDER BY start_ms DESC LIMIT 1",
                  uid, &s, 1, &id, &rs, &re);
    if (rc <= 0 || re < e)
        return rc; /* not covered: nothing to trim */
    int64_t ps = 0, pe = 0, ns = 0, ne = 0;
    int hp = row3(db,
                  "SELECT start_ms,end_ms FROM chunks WHERE uid=? AND start_ms>=? AND start_ms<? "
                  "ORDER BY start_ms DESC LIMIT 1",
                  uid, (int64_t[]){rs, s}, 2, &ps, &pe, NULL);
    if (hp < 0)
        return hp;
    int hn = row3(db,
                  "SELECT start_ms,end_ms FROM chunks WHERE uid=? AND start_ms>=? AND start_ms<=? "
                  "ORDER BY start_ms LIMIT 1",
                  uid, (int64_t[]){s, re}, 2, &ns, &ne, NULL);
    if (hn < 0)
        return hn;
    if (!hp && !hn)
        return run(db, "DELETE FROM ranges WHERE id=?", NULL, &id, 1);
    if (!hp)
        return run(db, "UPDATE ranges SET start_ms=? WHERE id=?", NULL, (int64_t[]){ns, id}, 2);
    if (!hn)
        return run(db, "UPDATE ranges SET end_ms=? WHERE id=?", NULL, (int64_t[]){pe, id}, 2);
    if (ns - pe <= gap_ms())
        return 0;
    rc = run(db, "UPDATE ranges SET end_ms=? WHERE id=?", NULL, (int64_t[]){pe, id}, 2);
    if (rc == 0)
        rc = run(db, "INSERT INTO ranges(uid,start_ms,end_ms) VALUES(?,?,?)", uid,
                 (int64_t[]){ns, re}, 2);
    return rc;
}

int ms_dvr_db_ranges_rebuild(sqlite3 *db)
{
    int rc = run(db, "DELETE FROM ranges", NULL, NULL, 0);
    if (rc < 0)
        return rc;
    sqlite3_stmt *st = NULL, *ins = NULL;
    rc = sqlite3_prepare_v2(db, "SELECT uid,start_ms,end_ms FROM chunks ORDER BY uid,start_ms", -1,
                            &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db, "INSERT INTO ranges(uid,start_ms,end_ms) VALUES(?,?,?)", -1,
                                &ins, NULL);
    if (rc != SQLITE_OK) {
        sqlite3_finalize(st);
        return sq_err(db, rc, "ranges rebuild");
    }
    int64_t gap = gap_ms(), cs = 0, ce = 0;
    char cur[64] = "";
    int have = 0, err = 0;
    for (;;) {
        rc = sqlite3_step(st);
        const char *uid = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
        int64_t s = 0, e = 0;
        if (uid) {
            s = sqlite3_column_int64(st, 1);
            e = sqlite3_column_int64(st, 2);
            if (have && strcmp(uid, cur) == 0 && s - ce <= gap) {
                if (e > ce)
                    ce = e;
                continue;
            }
        }
        if (have) {
            sqlite3_bind_text(ins, 1, cur, -1, SQLITE_STATIC);
            sqlite3_bind_int64(ins, 2, cs);
            sqlite3_bind_int64(ins, 3, ce);
            int r2 = sqlite3_step(ins);
            sqlite3_reset(ins);
            if (r2 != SQLITE_DONE) {
                err = sq_err(db, r2, "ranges rebuild");
                break;
            }
        }
        if (!uid)
            break;
        snprintf(cur, sizeof cur, "%s", uid);
        cs = s;
        ce = e;
        have = 1;
    }
    if (!err && rc != SQLITE_DONE)
        err = sq_err(db, rc, "ranges rebuild");
    sqlite3_finalize(st);
    sqlite3_finalize(ins);
    return err;
}

int ms_dvr_db_insert(sqlite3 *db, ms_dvr_wchunk_t *c, const char *root)
{
    /* a row of the same path (a re-indexed file) is replaced: deleted
     * first, so that its block, the totals and the ranges follow */
    sqlite3_stmt *st = NULL;
    int rc = ms_dvr_db_prep(db, "SELECT id FROM chunks WHERE path=?", &st);
    if (rc != SQLITE_OK)
        return sq_err(db, rc, "insert");
    sqlite3_bind_text(st, 1, c->path, -1, SQLITE_STATIC);
    int64_t old = 0;
    if ((rc = sqlite3_step(st)) == SQLITE_ROW)
        old = sqlite3_column_int64(st, 0);
    ms_dvr_db_fin(st);
    st = NULL;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return sq_err(db, rc, "insert");
    if (old && (rc = ms_dvr_db_delete(db, old)) < 0)
        return rc;
    rc = ms_dvr_db_prep(db,
                        "INSERT OR REPLACE INTO chunks(uid,root,path,start_ms,end_ms,bytes,"
                        "init_len,open,frags) VALUES(?,?,?,?,?,?,?,?,?)",
                        &st);
    if (rc != SQLITE_OK)
        return sq_err(db, rc, "insert");
    size_t flen;
    void *fb = ms_dvr_frags_encode(c->frags, c->nfrags, &flen);
    if (!fb) {
        ms_dvr_db_fin(st);
        return -ENOMEM;
    }
    sqlite3_bind_text(st, 1, c->uid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, root, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, c->path, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, c->start_ms);
    sqlite3_bind_int64(st, 5, c->end_ms);
    sqlite3_bind_int64(st, 6, (sqlite3_int64)c->bytes);
    sqlite3_bind_int64(st, 7, c->init_len);
    sqlite3_bind_int(st, 8, !c->closed);
    sqlite3_bind_blob(st, 9, fb, (int)flen, free);
    rc = sqlite3_step(st);
    ms_dvr_db_fin(st);
    if (rc != SQLITE_DONE)
        return sq_err(db, rc, "insert");
    c->rowid = sqlite3_last_insert_rowid(db);
    if ((rc = ms_dvr_db_chunk_indexed(db, c, root, c->closed, (int64_t)c->bytes, 1)) < 0)
        return rc;
    return range_add(db, c->uid, c->start_ms, c->end_ms);
}

int ms_dvr_db_update(sqlite3 *db, const ms_dvr_wchunk_t *c, int open)
{
    int64_t os = 0, oe = 0, ob = 0;
    int oopen = 1, had = 0;
    char root[MS_DVR_ROOT_MAX] = "";
    sqlite3_stmt *st = NULL;
    int rc =
        ms_dvr_db_prep(db, "SELECT start_ms,end_ms,bytes,open,root FROM chunks WHERE id=?", &st);
    if (rc != SQLITE_OK)
        return sq_err(db, rc, "update");
    sqlite3_bind_int64(st, 1, c->rowid);
    if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        had = 1;
        os = sqlite3_column_int64(st, 0);
        oe = sqlite3_column_int64(st, 1);
        ob = sqlite3_column_int64(st, 2);
        oopen = sqlite3_column_int(st, 3);
        const char *r = (const char *)sqlite3_column_text(st, 4);
        snprintf(root, sizeof root, "%s", r ? r : "");
    }
    ms_dvr_db_fin(st);
    st = NULL;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return sq_err(db, rc, "update");
    rc = ms_dvr_db_prep(
        db, "UPDATE chunks SET start_ms=?,end_ms=?,bytes=?,open=?,frags=? WHERE id=?", &st);
    if (rc != SQLITE_OK)
        return sq_err(db, rc, "update");
    size_t flen;
    void *fb = ms_dvr_frags_encode(c->frags, c->nfrags, &flen);
    if (!fb) {
        ms_dvr_db_fin(st);
        return -ENOMEM;
    }
    sqlite3_bind_int64(st, 1, c->start_ms);
    sqlite3_bind_int64(st, 2, c->end_ms);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)c->bytes);
    sqlite3_bind_int(st, 4, open);
    sqlite3_bind_blob(st, 5, fb, (int)flen, free);
    sqlite3_bind_int64(st, 6, c->rowid);
    rc = sqlite3_step(st);
    ms_dvr_db_fin(st);
    if (rc != SQLITE_DONE)
        return sq_err(db, rc, "update");
    if (!had)
        return 0;
    if (!oopen && (rc = ms_dvr_db_chunk_unindexed(db, c->uid, c->rowid, os, 1)) < 0)
        return rc;
    if ((rc = ms_dvr_db_chunk_indexed(db, c, root, !open, (int64_t)c->bytes - ob, 0)) < 0)
        return rc;
    if (os == c->start_ms && oe == c->end_ms)
        return 0;
    /* a chunk only grows at its end while written; anything else is a
     * removal of the old span and an addition of the new one */
    if (os != c->start_ms || oe > c->end_ms) {
        if ((rc = range_remove(db, c->uid, os, oe)) < 0)
            return rc;
    }
    return range_add(db, c->uid, c->start_ms, c->end_ms);
}

int ms_dvr_db_delete(sqlite3 *db, int64_t rowid)
{
    sqlite3_stmt *st = NULL;
    int rc = ms_dvr_db_prep(db, "DELETE FROM chunks WHERE id=? RETURNING uid,start_ms,end_ms,bytes",
                            &st);
    if (rc != SQLITE_OK)
        return sq_err(db, rc, "delete");
    sqlite3_bind_int64(st, 1, rowid);
    char uid[64] = "";
    int64_t s = 0, e = 0, b = 0;
    int found = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        snprintf(uid, sizeof uid, "%s", (const char *)sqlite3_column_text(st, 0));
        s = sqlite3_column_int64(st, 1);
        e = sqlite3_column_int64(st, 2);
        b = sqlite3_column_int64(st, 3);
        found = 1;
    }
    ms_dvr_db_fin(st);
    if (rc != SQLITE_DONE)
        return sq_err(db, rc, "delete");
    if (!found)
        return 0;
    /* out of its block whatever the open flag says (a row edited after a
     * crash may say open and still be in a block; no write when absent) */
    if ((rc = ms_dvr_db_chunk_unindexed(db, uid, rowid, s, 1)) < 0 ||
        (rc = ms_dvr_db_totals_add(db, uid, -1, -b)) < 0)
        return rc;
    return range_remove(db, uid, s, e);
}

int ms_dvr_db_set_stream(sqlite3 *db, const char *uid, int64_t depth_s)
{
    sqlite3_stmt *st = NULL;
    int rc = ms_dvr_db_prep(db, "INSERT OR REPLACE INTO streams(uid,depth_s) VALUES(?,?)", &st);
    if (rc != SQLITE_OK)
        return sq_err(db, rc, "stream");
    sqlite3_bind_text(st, 1, uid, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, depth_s);
    rc = sqlite3_step(st);
    ms_dvr_db_fin(st);
    return rc == SQLITE_DONE ? 0 : sq_err(db, rc, "stream");
}

void ms_dvr_chunks_free(ms_dvr_chunk_t *v, size_t n)
{
    if (!v)
        return;
    /* v[n] is the hidden trailer holding the two pools (ms_dvr_db_query) */
    free((void *)(uintptr_t)v[n].path);
    free(v[n].frags);
    free(v);
}

int ms_dvr_db_query(sqlite3 *db, const char *uid, int64_t from_ms, int64_t to_ms,
                    ms_dvr_chunk_t **out, size_t *n)
{
    return ms_dvr_db_query_from(db, uid, from_ms, to_ms, 1, out, n);
}

int ms_dvr_db_ranges(sqlite3 *db, const char *uid, int64_t from_ms, int64_t to_ms, int64_t gap_ms,
                     ms_dvr_span_t **out, size_t *n, ms_dvr_totals_t *tot)
{
    *out = NULL;
    *n = 0;
    if (tot)
        memset(tot, 0, sizeof *tot);
    if (tot) {
        int rc = ms_dvr_db_totals(db, uid, tot);
        if (rc < 0)
            return rc;
    }
    sqlite3_stmt *st = NULL;
    /* the ranges table (kept with the chunks): a few rows per recording
     * hole instead of every chunk of the window */
    int rc = ms_dvr_db_prep(db,
                            "SELECT start_ms,end_ms FROM ranges "
                            "WHERE uid=? AND start_ms<? AND end_ms>? ORDER BY start_ms",
                            &st);
    if (rc != SQLITE_OK)
        return sq_err(db, rc, "ranges");
    sqlite3_bind_text(st, 1, uid, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, to_ms);
    sqlite3_bind_int64(st, 3, from_ms);
    ms_dvr_span_t *v = NULL;
    size_t k = 0, cap = 0;
    int err = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t s = sqlite3_column_int64(st, 0), e = sqlite3_column_int64(st, 1);
        if (k && s - v[k - 1].end_ms <= gap_ms) {
            if (e > v[k - 1].end_ms)
                v[k - 1].end_ms = e;
            continue;
        }
        if (k == cap) {
            size_t nc = cap ? cap * 2 : 16;
            ms_dvr_span_t *nv = realloc(v, nc * sizeof *nv);
            if (!nv) {
                err = -ENOMEM;
                break;
            }
            v = nv;
            cap = nc;
        }
        v[k].start_ms = s;
        v[k].end_ms = e;
        k++;
    }
    if (!err && rc != SQLITE_DONE)
        err = sq_err(db, rc, "ranges");
    ms_dvr_db_fin(st);
    if (err) {
        free(v);
        return err;
    }
    *out = v;
    *n = k;
    return 0;
}
