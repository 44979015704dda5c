/* The ranges table (dvr/index.c): kept by the chunk insert/update/delete
 * calls, equal to a rebuild from the chunks after any sequence of them. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "dvr/dvr_int.h"

typedef struct {
    char dir[256];
    char path[320];
    sqlite3 *db;
} fx_t;

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "%s/msdvrrXXXXXX", P_tmpdir);
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

/* Inserts a closed chunk [s, e) of uid; returns its row id. */
static int64_t add(sqlite3 *db, const char *uid, int64_t s, int64_t e)
{
    ms_dvr_wchunk_t c;
    memset(&c, 0, sizeof c);
    snprintf(c.uid, sizeof c.uid, "%s", uid);
    snprintf(c.path, sizeof c.path, "/r/%s/%lld.m4s", uid, (long long)s);
    ms_dvr_frag_t fr = {s, (uint32_t)(e - s), 1, 700, 5000};
    c.frags = &fr;
    c.nfrags = 1;
    c.start_ms = s;
    c.end_ms = e;
    c.bytes = 5700;
    c.init_len = 700;
    c.closed = 1;
    assert_int_equal(ms_dvr_db_insert(db, &c, "/r"), 0);
    assert_true(c.rowid > 0);
    return c.rowid;
}

/* The ranges rows as "uid:start-end;..." */
static void dump(sqlite3 *db, char *out, size_t n)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT uid,start_ms,end_ms FROM ranges "
                                        "ORDER BY uid,start_ms",
                                        -1, &st, NULL),
                     SQLITE_OK);
    size_t k = 0;
    out[0] = '\0';
    while (sqlite3_step(st) == SQLITE_ROW && k < n) {
        int w = snprintf(out + k, n - k, "%s:%lld-%lld;", (const char *)sqlite3_column_text(st, 0),
                         (long long)sqlite3_column_int64(st, 1),
                         (long long)sqlite3_column_int64(st, 2));
        assert_true(w > 0 && (size_t)w < n - k);
        k += (size_t)w;
    }
    sqlite3_finalize(st);
}

/* The table as rebuilt from the chunks (in a transaction rolled back). */
static void rebuilt(sqlite3 *db, char *out, size_t n)
{
    assert_int_equal(sqlite3_exec(db, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(ms_dvr_db_ranges_rebuild(db), 0);
    dump(db, out, n);
    assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
}

static void check(sqlite3 *db, const char *want)
{
    char a[4096], b[4096];
    dump(db, a, sizeof a);
    rebuilt(db, b, sizeof b);
    if (want)
        assert_string_equal(a, want);
    assert_string_equal(a, b);
}

static void test_insert_gap(void **state)
{
    fx_t *f = *state;
    add(f->db, "a", 10000, 12000);
    add(f->db, "a", 12000, 14000);
    check(f->db, "a:10000-14000;");
    add(f->db, "a", 16000, 18000); /* hole of exactly the threshold: same range */
    check(f->db, "a:10000-18000;");
    add(f->db, "a", 20001, 22000); /* 2001 ms: a new range */
    check(f->db, "a:10000-18000;a:20001-22000;");
    add(f->db, "b", 12000, 14000); /* another stream: its own ranges */
    check(f->db, "a:10000-18000;a:20001-22000;b:12000-14000;");
    add(f->db, "a", 18000, 20001); /* fills the hole: the two ranges merge */
    check(f->db, "a:10000-22000;b:12000-14000;");
    add(f->db, "a", 5000, 7000); /* before, 3 s away */
    check(f->db, "a:5000-7000;a:10000-22000;b:12000-14000;");
    add(f->db, "a", 7000, 9000); /* bridges the head */
    check(f->db, "a:5000-22000;b:12000-14000;");
}

static void test_grow_while_written(void **state)
{
    fx_t *f = *state;
    add(f->db, "a", 0, 2000);
    /* the writer inserts the open chunk with end = start, then updates it
     * about every second */
    ms_dvr_wchunk_t c;
    memset(&c, 0, sizeof c);
    snprintf(c.uid, sizeof c.uid, "a");
    snprintf(c.path, sizeof c.path, "/r/a/open.m4s");
    ms_dvr_frag_t fr[3] = {
        {3000, 1000, 1, 700, 10}, {4000, 1000, 0, 710, 10}, {5000, 1000, 1, 720, 10}};
    c.frags = fr;
    c.start_ms = c.end_ms = 3000;
    c.init_len = 700;
    assert_int_equal(ms_dvr_db_insert(f->db, &c, "/r"), 0);
    check(f->db, "a:0-3000;");
    for (size_t i = 1; i <= 3; i++) {
        c.nfrags = i;
        c.end_ms = 3000 + (int64_t)i * 1000;
        assert_int_equal(ms_dvr_db_update(f->db, &c, 1), 0);
        char want[64];
        snprintf(want, sizeof want, "a:0-%lld;", (long long)c.end_ms);
        check(f->db, want);
    }
    /* a restart after a failed write moves the start: old span removed */
    c.start_ms = 9000;
    c.end_ms = 10000;
    assert_int_equal(ms_dvr_db_update(f->db, &c, 0), 0);
    check(f->db, "a:0-2000;a:9000-10000;");
}

static void test_retention_trim_split(void **state)
{
    fx_t *f = *state;
    int64_t id[10];
    for (int i = 0; i < 10; i++)
        id[i] = add(f->db, "a", i * 2000, i * 2000 + 2000);
    check(f->db, "a:0-20000;");
    assert_int_equal(ms_dvr_db_delete(f->db, id[0]), 0); /* oldest: retention by age */
    check(f->db, "a:2000-20000;");
    assert_int_equal(ms_dvr_db_delete(f->db, id[9]), 0); /* newest */
    check(f->db, "a:2000-18000;");
    assert_int_equal(ms_dvr_db_delete(f->db, id[5]), 0); /* a 2 s hole: no split */
    check(f->db, "a:2000-18000;");
    assert_int_equal(ms_dvr_db_delete(f->db, id[4]), 0); /* now 4 s: split */
    check(f->db, "a:2000-8000;a:12000-18000;");
    for (int i = 1; i < 4; i++)
        assert_int_equal(ms_dvr_db_delete(f->db, id[i]), 0);
    check(f->db, "a:12000-18000;");
    for (int i = 6; i < 9; i++)
        assert_int_equal(ms_dvr_db_delete(f->db, id[i]), 0);
    check(f->db, "");
}

/* Random inserts and deletes of non-overlapping chunks of random lengths
 * (holes around the threshold) on two streams; after each step the table
 * equals the rebuild. */
static void test_rebuild_equals_incremental(void **state)
{
    fx_t *f = *state;
    enum { SLOTS = 60, STEPS = 600 };
    int64_t rows[2][SLOTS];
    memset(rows, 0, sizeof rows);
    unsigned seed = 12345;
    int inserted = 0, deleted = 0;
    for (int step = 0; step < STEPS; step++) {
        seed = seed * 1103515245u + 12345u;
        int u = (int)((seed >> 8) % 2);
        int slot = (int)((seed >> 12) % SLOTS);
        int64_t len = 1000 + (int64_t)((seed >> 20) % 1001); /* holes of 2..3 s */
        const char *uid = u ? "b" : "a";
        if (rows[u][slot]) {
            assert_int_equal(ms_dvr_db_delete(f->db, rows[u][slot]), 0);
            rows[u][slot] = 0;
            deleted++;
        } else {
            rows[u][slot] = add(f->db, uid, slot * 2000, slot * 2000 + len);
            inserted++;
        }
        check(f->db, NULL);
    }
    assert_true(inserted > 100 && deleted > 100);
    char a[4096];
    dump(f->db, a, sizeof a);
    assert_true(strchr(a, ';') != NULL); /* not trivially empty */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_insert_gap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grow_while_written, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention_trim_split, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rebuild_equals_incremental, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
