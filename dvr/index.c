/* Local chunk index (SQLite, WAL). One connection per thread: each writer
 * thread owns one, readers (API threads) open their own for a call.
 *
 * chunks: a row per chunk file (stream uid, root, path, start/end ms,
 * bytes, init length, open flag, fragments as a blob of 32-byte records:
 * t_ms i64, dur_ms u32, key u32, offset u64, size u64, little-endian).
 * streams: per-stream retention depth, kept after the stream stops so old
 * chunks still age out. */
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
    "CREATE INDEX IF NOT EXISTS chunks_uid_start ON chunks(uid, start_ms);"
    "CREATE INDEX IF NOT EXISTS chunks_root_start ON chunks(root, start_ms);"
    "CREATE TABLE IF NOT EXISTS streams(uid TEXT PRIMARY KEY, depth_s INTEGER NOT NULL);";

static int sq_err(sqlite3 *db, int rc, const char *what)
{
    MS_ERROR(CTX, "%s: %s (%d)", what, sqlite3_errmsg(db), rc);
    return rc == SQLITE_NOMEM ? -ENOMEM : rc == SQLITE_BUSY ? -EBUSY : -EIO;
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
    if (db)
        sqlite3_close(db);
}

int ms_dvr_db_begin(sqlite3 *db)
{
    int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : sq_err(db, rc, "begin");
}

int ms_dvr_db_commit(sqlite3 *db)
{
    int rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        int e = sq_err(db, rc, "commit");
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
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

int ms_dvr_db_insert(sqlite3 *db, ms_dvr_wchunk_t *c, const char *root)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db,
                                "INSERT OR REPLACE INTO chunks(uid,root,path,start_ms,end_ms,bytes,"
                                "init_len,open,frags) VALUES(?,?,?,?,?,?,?,?,?)",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sq_err(db, rc, "insert");
    size_t flen;
    void *fb = ms_dvr_frags_encode(c->frags, c->nfrags, &flen);
    if (!fb) {
        sqlite3_finalize(st);
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
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return sq_err(db, rc, "insert");
    c->rowid = sqlite3_last_insert_rowid(db);
    return 0;
}

int ms_dvr_db_update(sqlite3 *db, const ms_dvr_wchunk_t *c, int open)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(
        db, "UPDATE chunks SET start_ms=?,end_ms=?,bytes=?,open=?,frags=? WHERE id=?", -1, &st,
        NULL);
    if (rc != SQLITE_OK)
        return sq_err(db, rc, "update");
    size_t flen;
    void *fb = ms_dvr_frags_encode(c->frags, c->nfrags, &flen);
    if (!fb) {
        sqlite3_finalize(st);
        return -ENOMEM;
    }
    sqlite3_bind_int64(st, 1, c->start_ms);
    sqlite3_bind_int64(st, 2, c->end_ms);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)c->bytes);
    sqlite3_bind_int(st, 4, open);
    sqlite3_bind_blob(st, 5, fb, (int)flen, free);
    sqlite3_bind_int64(st, 6, c->rowid);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : sq_err(db, rc, "update");
}

int ms_dvr_db_delete(sqlite3 *db, int64_t rowid)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "DELETE FROM chunks WHERE id=?", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sq_err(db, rc, "delete");
    sqlite3_bind_int64(st, 1, rowid);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : sq_err(db, rc, "delete");
}

int ms_dvr_db_set_stream(sqlite3 *db, const char *uid, int64_t depth_s)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO streams(uid,depth_s) VALUES(?,?)", -1,
                                &st, NULL);
    if (rc != SQLITE_OK)
        return sq_err(db, rc, "stream");
    sqlite3_bind_text(st, 1, uid, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, depth_s);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : sq_err(db, rc, "stream");
}

void ms_dvr_chunks_free(ms_dvr_chunk_t *v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i].frags);
    free(v);
}

int ms_dvr_db_query(sqlite3 *db, const char *uid, int64_t from_ms, int64_t to_ms,
                    ms_dvr_chunk_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db,
                                "SELECT id,uid,path,root,start_ms,end_ms,bytes,init_len,open,frags "
                                "FROM chunks WHERE uid=? AND end_ms>? AND start_ms<? "
                                "ORDER BY start_ms",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sq_err(db, rc, "query");
    sqlite3_bind_text(st, 1, uid, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, from_ms);
    sqlite3_bind_int64(st, 3, to_ms);
    ms_dvr_chunk_t *v = NULL;
    size_t cnt = 0, cap = 0;
    int err = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (cnt == cap) {
            size_t nc = cap ? cap * 2 : 16;
            ms_dvr_chunk_t *nv = realloc(v, nc * sizeof *nv);
            if (!nv) {
                err = -ENOMEM;
                break;
            }
            v = nv;
            cap = nc;
        }
        ms_dvr_chunk_t *c = &v[cnt];
        memset(c, 0, sizeof *c);
        c->id = sqlite3_column_int64(st, 0);
        snprintf(c->uid, sizeof c->uid, "%s", (const char *)sqlite3_column_text(st, 1));
        snprintf(c->path, sizeof c->path, "%s", (const char *)sqlite3_column_text(st, 2));
        snprintf(c->root, sizeof c->root, "%s", (const char *)sqlite3_column_text(st, 3));
        c->start_ms = sqlite3_column_int64(st, 4);
        c->end_ms = sqlite3_column_int64(st, 5);
        c->bytes = (uint64_t)sqlite3_column_int64(st, 6);
        c->init_len = (uint32_t)sqlite3_column_int64(st, 7);
        c->open = sqlite3_column_int(st, 8);
        const void *fb = sqlite3_column_blob(st, 9);
        int fl = sqlite3_column_bytes(st, 9);
        cnt++;
        if (fb && fl > 0 && (err = ms_dvr_frags_decode(fb, (size_t)fl, &c->frags, &c->nfrags)) < 0)
            break;
    }
    if (!err && rc != SQLITE_DONE)
        err = sq_err(db, rc, "query");
    sqlite3_finalize(st);
    if (err) {
        ms_dvr_chunks_free(v, cnt);
        return err;
    }
    *out = v;
    *n = cnt;
    return 0;
}

int ms_dvr_db_ranges(sqlite3 *db, const char *uid, int64_t from_ms, int64_t to_ms, int64_t gap_ms,
                     ms_dvr_span_t **out, size_t *n, ms_dvr_totals_t *tot)
{
    *out = NULL;
    *n = 0;
    if (tot)
        memset(tot, 0, sizeof *tot);
    sqlite3_stmt *st = NULL;
    /* only the times (and sizes): no path, no fragment table, so 30 days of
     * 2 s chunks stay a single pass over the (uid, start_ms) index */
    int rc = sqlite3_prepare_v2(db,
                                "SELECT start_ms,end_ms,bytes FROM chunks "
                                "WHERE uid=? AND start_ms<? AND end_ms>? ORDER BY start_ms",
                                -1, &st, NULL);
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
        if (tot) {
            if (!tot->chunks)
                tot->first_ms = s;
            tot->chunks++;
            tot->bytes += (uint64_t)sqlite3_column_int64(st, 2);
            if (e > tot->last_ms)
                tot->last_ms = e;
        }
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
    sqlite3_finalize(st);
    if (err) {
        free(v);
        return err;
    }
    *out = v;
    *n = k;
    return 0;
}
