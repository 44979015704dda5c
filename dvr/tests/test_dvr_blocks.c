/* The chunk blocks and totals (dvr/blocks.c): after any sequence of chunk
 * inserts, updates (a chunk growing while written, then closed), replaced
 * rows and deletes, the chunks read from the blocks equal the chunk rows
 * field by field (and render the same playlist byte for byte), the totals
 * equal a count over the rows, and the blocks equal a rebuild. A broken
 * block blob is refused, not trusted. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "dvr/archive.h"
#include "dvr/dvr_int.h"

#define T0 1699999800000LL /* a multiple of the 10-minute block */

typedef struct {
    char dir[256];
    char path[320];
    sqlite3 *db;
} fx_t;

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "%s/msdvrbXXXXXX", P_tmpdir);
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/dvr_index.sqlite", f->dir);
    ms_dvr_g.tun.gap_ms = 2000;
    assert_int_equal(ms_dvr_db_open(f->path, &f->db), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    ms_dvr_db_close(f->db);
    char p[400];
    snprintf(p, sizeof p, "%s-wal", f->path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", f->path);
    unlink(p);
    unlink(f->path);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* A chunk [s, s + nf * 1000) of uid with nf fragments (keyframe every 2),
 * under root; written with the writer's calls: inserted open and grown
 * fragment by fragment, then closed (closed = 1), or left open. */
static int64_t put(sqlite3 *db, const char *uid, const char *root, int64_t s, size_t nf, int closed,
                   unsigned salt)
{
    ms_dvr_wchunk_t c;
    memset(&c, 0, sizeof c);
    snprintf(c.uid, sizeof c.uid, "%s", uid);
    ms_dvr_chunk_path(c.path, sizeof c.path, root, uid, s);
    ms_dvr_frag_t fr[8];
    assert_true(nf >= 1 && nf <= 8);
    for (size_t i = 0; i < nf; i++)
        fr[i] = (ms_dvr_frag_t){s + (int64_t)i * 1000, 1000, (uint32_t)(i % 2 == 0),
                                700 + i * (5000 + salt), 5000 + salt};
    c.frags = fr;
    c.start_ms = c.end_ms = s;
    c.init_len = 700 + salt % 3;
    c.bytes = 700;
    assert_int_equal(ms_dvr_db_insert(db, &c, root), 0);
    for (size_t i = 1; i <= nf; i++) {
        c.nfrags = i;
        c.end_ms = s + (int64_t)i * 1000;
        c.bytes = 700 + i * (5000 + salt);
        assert_int_equal(ms_dvr_db_update(db, &c, 1), 0);
    }
    if (closed)
        assert_int_equal(ms_dvr_db_update(db, &c, 0), 0);
    return c.rowid;
}

/* Reindexes an existing path as the startup reconciliation does (INSERT
 * OR REPLACE of a closed chunk with the same path). */
static int64_t reindex(sqlite3 *db, const char *uid, const char *root, int64_t s, size_t nf)
{
    ms_dvr_wchunk_t c;
    memset(&c, 0, sizeof c);
    snprintf(c.uid, sizeof c.uid, "%s", uid);
    ms_dvr_chunk_path(c.path, sizeof c.path, root, uid, s);
    ms_dvr_frag_t fr[8];
    for (size_t i = 0; i < nf; i++)
        fr[i] = (ms_dvr_frag_t){s + (int64_t)i * 1000, 1000, 1, 700 + i * 4000, 4000};
    c.frags = fr;
    c.nfrags = nf;
    c.start_ms = s;
    c.end_ms = s + (int64_t)nf * 1000;
    c.init_len = 700;
    c.bytes = 700 + nf * 4000;
    c.closed = 1;
    assert_int_equal(ms_dvr_db_insert(db, &c, root), 0);
    return c.rowid;
}

static void same_chunks(const ms_dvr_chunk_t *a, size_t na, const ms_dvr_chunk_t *b, size_t nb)
{
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++) {
        assert_int_equal(a[i].id, b[i].id);
        assert_string_equal(a[i].uid, b[i].uid);
        assert_string_equal(a[i].path, b[i].path);
        assert_string_equal(a[i].root, b[i].root);
        assert_int_equal(a[i].start_ms, b[i].start_ms);
        assert_int_equal(a[i].end_ms, b[i].end_ms);
        assert_int_equal(a[i].bytes, b[i].bytes);
        assert_int_equal(a[i].init_len, b[i].init_len);
        assert_int_equal(a[i].open, b[i].open);
        assert_int_equal(a[i].nfrags, b[i].nfrags);
        if (a[i].nfrags)
            assert_memory_equal(a[i].frags, b[i].frags, a[i].nfrags * sizeof *a[i].frags);
    }
}

/* Window [from, to) of uid: blocks + open rows == rows, and the same
 * playlist (VOD and EVENT) from both. Returns the chunk count. */
static size_t check_window(sqlite3 *db, const char *uid, int64_t from, int64_t to)
{
    ms_dvr_chunk_t *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    assert_int_equal(ms_dvr_db_query_from(db, uid, from, to, 1, &a, &na), 0);
    assert_int_equal(ms_dvr_db_query_from(db, uid, from, to, 0, &b, &nb), 0);
    same_chunks(a, na, b, nb);
    for (int ev = 0; ev < 2; ev++) {
        int64_t dur = to - from < 864000000 ? to - from : 864000000;
        ms_dvr_pl_opts_t o = {from, dur, ev, 2000, 4000, "?token=t"};
        ms_buf_t x = MS_BUF_INIT, y = MS_BUF_INIT;
        int kx = ms_dvr_playlist(a, na, &o, &x), ky = ms_dvr_playlist(b, nb, &o, &y);
        assert_int_equal(kx, ky);
        assert_int_equal(x.len, y.len);
        if (x.len)
            assert_memory_equal(x.data, y.data, x.len);
        ms_buf_free(&x);
        ms_buf_free(&y);
    }
    ms_dvr_chunks_free(a, na);
    ms_dvr_chunks_free(b, nb);
    return na;
}

static void check_totals(sqlite3 *db, const char *uid)
{
    ms_dvr_totals_t t;
    assert_int_equal(ms_dvr_db_totals(db, uid, &t), 0);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT count(*),coalesce(sum(bytes),0),"
                                        "coalesce(min(start_ms),0),coalesce(max(end_ms),0) "
                                        "FROM chunks WHERE uid=?",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(st, 1, uid, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(t.chunks, sqlite3_column_int64(st, 0));
    assert_int_equal(t.bytes, sqlite3_column_int64(st, 1));
    if (t.chunks) {
        assert_int_equal(t.first_ms, sqlite3_column_int64(st, 2));
        assert_int_equal(t.last_ms, sqlite3_column_int64(st, 3));
    }
    sqlite3_finalize(st);
}

/* blocks and totals tables as text (hex of the blobs). */
static char *dump(sqlite3 *db)
{
    ms_buf_t b = MS_BUF_INIT;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT uid||':'||b_ms||':'||hex(data) FROM blocks "
                                        "UNION ALL SELECT uid||'='||chunks||'/'||bytes FROM "
                                        "totals WHERE chunks<>0 ORDER BY 1",
                                        -1, &st, NULL),
                     SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW) {
        ms_buf_append(&b, sqlite3_column_text(st, 0), (size_t)sqlite3_column_bytes(st, 0));
        ms_buf_append(&b, "\n", 1);
    }
    sqlite3_finalize(st);
    char *s = strdup(b.len ? ms_buf_cstr(&b) : "");
    ms_buf_free(&b);
    assert_non_null(s);
    return s;
}

static void check_rebuild(sqlite3 *db)
{
    char *a = dump(db);
    assert_int_equal(sqlite3_exec(db, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(ms_dvr_db_blocks_rebuild(db), 0);
    char *b = dump(db);
    assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    assert_string_equal(a, b);
    free(a);
    free(b);
}

static void check_all(sqlite3 *db)
{
    static const char *uids[] = {"a", "b"};
    for (int u = 0; u < 2; u++) {
        check_totals(db, uids[u]);
        check_window(db, uids[u], INT64_MIN / 2, INT64_MAX / 2);
        check_window(db, uids[u], T0 + 1500, T0 + 30000);
        check_window(db, uids[u], T0 + 599000, T0 + 1201000); /* across block edges */
    }
    check_rebuild(db);
}

static void test_writer_sequence(void **state)
{
    fx_t *f = *state;
    /* chunks of 6 s from T0 - 30 s, some across a block edge (T0 + 600 s) */
    int64_t s = T0 - 30000;
    int64_t ids[300];
    int k = 0;
    for (; s < T0 + 1250000; s += 6000, k++) {
        if (k == 100)
            s += 20000; /* a hole */
        ids[k] = put(f->db, "a", k % 7 == 3 ? "/r2" : "/r1", s, 6, 1, (unsigned)k);
    }
    int64_t open_id = put(f->db, "a", "/r1", s, 3, 0, 9); /* still being written */
    put(f->db, "b", "/r1", T0, 5, 1, 1);
    assert_true(check_window(f->db, "a", INT64_MIN / 2, INT64_MAX / 2) == (size_t)k + 1);
    check_all(f->db);
    /* retention: the oldest go, and one in the middle (a split) */
    for (int i = 0; i < 10; i++)
        assert_int_equal(ms_dvr_db_delete(f->db, ids[i]), 0);
    assert_int_equal(ms_dvr_db_delete(f->db, ids[150]), 0);
    check_all(f->db);
    /* the open chunk closes; a re-indexed file replaces its row */
    ms_dvr_chunk_t *v = NULL;
    size_t n = 0;
    assert_int_equal(ms_dvr_db_query_from(f->db, "a", s, s + 1, 1, &v, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(v[0].id, open_id);
    assert_int_equal(v[0].open, 1);
    ms_dvr_chunks_free(v, n);
    reindex(f->db, "a", "/r1", s, 2);
    reindex(f->db, "a", "/r1", T0 - 30000 + 50 * 6000, 4);
    check_all(f->db);
    /* the same chunk deleted twice: the second is a no-op */
    assert_int_equal(ms_dvr_db_delete(f->db, ids[20]), 0);
    assert_int_equal(ms_dvr_db_delete(f->db, ids[20]), 0);
    check_all(f->db);
}

/* Random inserts (open or closed), closes and deletes on two streams and
 * two roots; after each step the reads and the rebuild agree. */
static void test_random(void **state)
{
    fx_t *f = *state;
    enum { SLOTS = 50, STEPS = 400 };
    int64_t rows[2][SLOTS];
    memset(rows, 0, sizeof rows);
    unsigned seed = 4242;
    int ins = 0, del = 0;
    for (int step = 0; step < STEPS; step++) {
        seed = seed * 1103515245u + 12345u;
        int u = (int)((seed >> 8) % 2);
        int slot = (int)((seed >> 12) % SLOTS);
        size_t nf = 1 + (seed >> 18) % 8;
        const char *uid = u ? "b" : "a";
        /* 40 s apart: slots across several 10-minute blocks */
        int64_t s = T0 - 200000 + (int64_t)slot * 40000;
        if (rows[u][slot]) {
            assert_int_equal(ms_dvr_db_delete(f->db, rows[u][slot]), 0);
            rows[u][slot] = 0;
            del++;
        } else {
            rows[u][slot] = put(f->db, uid, (seed >> 24) % 3 ? "/r1" : "/r2", s, nf,
                                (seed >> 26) % 5 != 0, (unsigned)step);
            ins++;
        }
        if (step % 10 == 0 || step == STEPS - 1)
            check_all(f->db);
    }
    assert_true(ins > 100 && del > 50);
}

/* A block blob that does not parse is never read past: the window is read
 * from the chunk rows instead (same chunks); the next change of that block
 * replaces it and marks the index for a blocks rebuild at the next start. */
static void test_bad_blob(void **state)
{
    fx_t *f = *state;
    put(f->db, "a", "/r1", T0, 3, 1, 0);
    put(f->db, "a", "/r1", T0 + 3000, 2, 1, 0);
    put(f->db, "a", "/r1", T0 + 5000, 2, 0, 0); /* open */
    ms_dvr_chunk_t *v = NULL;
    size_t n = 0;
    assert_int_equal(ms_dvr_db_query_from(f->db, "a", T0, T0 + 9000, 1, &v, &n), 0);
    assert_int_equal(n, 3);
    ms_dvr_chunks_free(v, n);
    /* truncated record, a length field past the end, a first record that
     * says "same root as the previous one" */
    static const char *bad[] = {"UPDATE blocks SET data=substr(data,1,40)",
                                "UPDATE blocks SET data=x'ffffff7f' || substr(data,5)",
                                "UPDATE blocks SET data=substr(data,1,46) || x'ffff' || "
                                "substr(data,49)"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(sqlite3_exec(f->db, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_exec(f->db, bad[i], NULL, NULL, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_changes(f->db), 1);
        check_window(f->db, "a", T0, T0 + 9000); /* blocks path == rows */
        assert_int_equal(ms_dvr_db_query_from(f->db, "a", T0, T0 + 9000, 1, &v, &n), 0);
        assert_int_equal(n, 3);
        assert_int_equal(v[0].start_ms, T0);
        assert_int_equal(v[2].open, 1);
        ms_dvr_chunks_free(v, n);
        assert_int_equal(sqlite3_exec(f->db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    }
    assert_int_equal(sqlite3_exec(f->db, "PRAGMA user_version=2; UPDATE blocks SET data=x'00'",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    put(f->db, "a", "/r1", T0 + 7000, 1, 1, 0); /* same block: replaced */
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(f->db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 1);
    sqlite3_finalize(st);
    /* the replaced blob holds the new record only: the blocks path now
     * misses the two older chunks, which the rebuild restores */
    assert_int_equal(ms_dvr_db_query_from(f->db, "a", T0, T0 + 9000, 1, &v, &n), 0);
    assert_int_equal(n, 2);
    ms_dvr_chunks_free(v, n);
    assert_int_equal(ms_dvr_db_blocks_rebuild(f->db), 0);
    assert_int_equal(check_window(f->db, "a", T0, T0 + 9000), 4);
    check_rebuild(f->db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_writer_sequence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_blob, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
