/* Crash recovery: after a kill -9 the files and the index disagree (a chunk
 * torn mid-fragment, a chunk file gone, an orphan file the index never
 * saw, a row left "open"); reopening reconciles them and the torn file is
 * a valid fMP4 again. */
#include "dvr/tests/dvr_test.h"

#include <sqlite3.h>

static void copy_file(const char *from, const char *to)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "mkdir -p \"$(dirname '%s')\" && cp '%s' '%s'", to, from, to);
    assert_int_equal(system(cmd), 0);
}

static void test_recover(void **state)
{
    (void)state;
    dt_t t;
    dt_setup(&t, 99);
    assert_int_equal(dt_dvr_init(&t), 0);
    ms_stream_cfg_t cfg;
    dt_stream_cfg(&cfg, "cam-r", 2, 3600, MS_DVR_CONTINUOUS);
    ms_dvr_recorder_t *rec = dt_rec_start(&t, &cfg);
    assert_non_null(rec);
    int64_t wall0 = dt_wall0(300);
    dt_feed(&t, 0, 200, wall0, 0, 0); /* 8 s: 4 chunks of 2 s */
    ms_dvr_recorder_stop(rec);
    assert_int_equal(uv_run(&t.loop, UV_RUN_DEFAULT), 0);
    ms_dvr_shutdown();

    ms_dvr_chunk_t *v;
    size_t n;
    assert_int_equal(ms_dvr_chunks("cam-r", 0, INT64_MAX / 2, &v, &n), 0);
    assert_int_equal(n, 4);
    /* chunk 1: torn in the middle of its last fragment */
    const ms_dvr_frag_t *last = &v[1].frags[v[1].nfrags - 1];
    uint64_t torn = last->off + last->size / 2;
    assert_int_equal(truncate(v[1].path, (off_t)torn), 0);
    /* chunk 2: file gone */
    assert_int_equal(unlink(v[2].path), 0);
    /* an orphan: a copy of chunk 0 under another stream, unknown to the index */
    char orphan[1400];
    snprintf(orphan, sizeof orphan, "%s/cam-o/2020/01/01/00/1.m4s", t.root);
    copy_file(v[0].path, orphan);
    /* a file with an init segment only (killed right after opening) */
    char empty[1400];
    snprintf(empty, sizeof empty, "%s/cam-o/2020/01/01/00/2.m4s", t.root);
    copy_file(v[3].path, empty);
    assert_int_equal(truncate(empty, v[3].init_len), 0);
    /* chunk 3: the row says "open" with stale figures (kill -9 mid-chunk) */
    char db_path[700];
    snprintf(db_path, sizeof db_path, "%s/dvr_index.sqlite", t.dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(db_path, &db), SQLITE_OK);
    char sql[200];
    snprintf(sql, sizeof sql, "UPDATE chunks SET open=1, bytes=10, frags=NULL WHERE id=%lld",
             (long long)v[3].id);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    /* reopen: reconciled */
    assert_int_equal(dt_dvr_init(&t), 0);
    ms_dvr_chunk_t *w;
    size_t m;
    assert_int_equal(ms_dvr_chunks("cam-r", 0, INT64_MAX / 2, &w, &m), 0);
    assert_int_equal(m, 3);
    assert_int_equal(w[0].start_ms, v[0].start_ms);
    assert_int_equal(w[0].bytes, v[0].bytes);
    /* the torn one lost its last fragment only, and decodes */
    assert_string_equal(w[1].path, v[1].path);
    assert_int_equal(w[1].nfrags, v[1].nfrags - 1);
    assert_int_equal(w[1].bytes, last->off);
    assert_int_equal(dt_file_size(w[1].path), last->off);
    assert_int_equal(w[1].end_ms, last->t_ms);
    assert_int_equal(dt_frames(w[1].path), 25);
    /* the "open" row was rebuilt from the file */
    assert_string_equal(w[2].path, v[3].path);
    assert_int_equal(w[2].open, 0);
    assert_int_equal(w[2].bytes, v[3].bytes);
    assert_int_equal(w[2].nfrags, v[3].nfrags);
    assert_int_equal(w[2].end_ms, v[3].end_ms);
    /* the orphan is indexed with the times found in its fragments */
    ms_dvr_chunk_t *o;
    size_t on;
    assert_int_equal(ms_dvr_chunks("cam-o", 0, INT64_MAX / 2, &o, &on), 0);
    assert_int_equal(on, 1);
    assert_string_equal(o[0].path, orphan);
    assert_int_equal(o[0].start_ms, v[0].start_ms);
    assert_int_equal(o[0].end_ms, v[0].end_ms);
    assert_int_equal(o[0].nfrags, v[0].nfrags);
    /* the init-only file was removed */
    assert_int_equal(access(empty, F_OK), -1);
    /* ranges: 0-3 s (the torn chunk now ends at 3 s), then 6-8 s (the
     * deleted chunk left a hole longer than the gap threshold) */
    json_t *r;
    assert_int_equal(ms_dvr_ranges("cam-r", 0, 0, &r), 0);
    json_t *arr = json_object_get(r, "ranges");
    assert_int_equal(json_array_size(arr), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(arr, 0), "from")),
                     wall0 / 1000000);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(arr, 0), "duration")), 3);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(arr, 1), "from")),
                     wall0 / 1000000 + 6);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(arr, 1), "duration")), 2);
    json_decref(r);

    /* a second reconcile finds nothing to do */
    ms_dvr_shutdown();
    assert_int_equal(dt_dvr_init(&t), 0);
    ms_dvr_chunk_t *x;
    size_t xn;
    assert_int_equal(ms_dvr_chunks("cam-r", 0, INT64_MAX / 2, &x, &xn), 0);
    assert_int_equal(xn, 3);
    for (size_t i = 0; i < xn; i++) {
        assert_int_equal(x[i].id, w[i].id);
        assert_int_equal(x[i].bytes, w[i].bytes);
    }
    ms_dvr_chunks_free(x, xn);
    ms_dvr_shutdown();

    ms_dvr_chunks_free(o, on);
    ms_dvr_chunks_free(w, m);
    ms_dvr_chunks_free(v, n);
    dt_teardown(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recover),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
