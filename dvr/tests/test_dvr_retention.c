/* Retention: by age (a short depth removes the chunks that ended before it,
 * file and row together, empty directories pruned) and by fullness (an
 * injected statvfs reports a 2 MB disk whose usage is the size of the
 * chunk files: the oldest chunks go until usage is under the limit). */
#include "dvr/tests/dvr_test.h"

#define FAKE_BLOCKS 2048 /* 1 KiB blocks: a 2 MiB disk */

static char g_root[600];
static atomic_int g_calls;

static int fake_statvfs(const char *path, struct statvfs *out)
{
    (void)path;
    int files = 0;
    uint64_t bytes = 0;
    dt_walk(g_root, &files, &bytes);
    memset(out, 0, sizeof *out);
    out->f_bsize = out->f_frsize = 1024;
    uint64_t used = (bytes + 1023) / 1024;
    if (used > FAKE_BLOCKS)
        used = FAKE_BLOCKS;
    out->f_blocks = FAKE_BLOCKS;
    out->f_bfree = out->f_bavail = FAKE_BLOCKS - used;
    atomic_fetch_add(&g_calls, 1);
    return 0;
}

static void set_tuning(void)
{
    ms_dvr_tuning_t tu;
    ms_dvr_tuning_defaults(&tu);
    tu.retention_ms = 3600 * 1000; /* only when asked */
    tu.statvfs_fn = fake_statvfs;
    ms_dvr_set_tuning(&tu);
}

static void test_retention_age(void **state)
{
    (void)state;
    dt_t t;
    dt_setup(&t, 99);
    snprintf(g_root, sizeof g_root, "%s", t.root);
    set_tuning();
    assert_int_equal(dt_dvr_init(&t), 0);
    ms_stream_cfg_t cfg;
    dt_stream_cfg(&cfg, "cam-d", 2, 60, MS_DVR_CONTINUOUS);
    ms_dvr_recorder_t *rec = dt_rec_start(&t, &cfg);
    assert_non_null(rec);
    int64_t old0 = dt_wall0(2 * 3600); /* two hours ago: another hour dir */
    dt_feed(&t, 0, 100, old0, 0, 0);
    /* 30 s ago, new timeline */
    int64_t new0 = dt_wall0(30);
    dt_feed(&t, 100, 100, new0 - 100 * 40000, 10 * 90000, 0);
    ms_dvr_recorder_stop(rec);
    assert_int_equal(uv_run(&t.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(ms_dvr_flush(), 0);

    ms_dvr_chunk_t *v;
    size_t n;
    assert_int_equal(ms_dvr_chunks("cam-d", 0, INT64_MAX / 2, &v, &n), 0);
    assert_int_equal(n, 4);
    char old_dir[1400];
    snprintf(old_dir, sizeof old_dir, "%s", v[0].path);
    *strrchr(old_dir, '/') = '\0';
    ms_dvr_chunks_free(v, n);

    assert_int_equal(ms_dvr_retention_now(), 0);
    assert_int_equal(ms_dvr_chunks("cam-d", 0, INT64_MAX / 2, &v, &n), 0);
    assert_int_equal(n, 2);
    for (size_t i = 0; i < n; i++)
        assert_true(v[i].start_ms >= new0 / 1000);
    int files = 0;
    uint64_t bytes = 0;
    dt_walk(t.root, &files, &bytes);
    assert_int_equal(files, 2);
    assert_int_equal(bytes, v[0].bytes + v[1].bytes);
    /* the old hour's directory went with its files */
    assert_int_equal(access(old_dir, F_OK), -1);
    ms_dvr_chunks_free(v, n);
    ms_dvr_shutdown();
    ms_dvr_set_tuning(NULL);
    dt_teardown(&t);
}

static void test_retention_full(void **state)
{
    (void)state;
    dt_t t;
    dt_setup(&t, 10); /* 10 % of 2 MiB */
    snprintf(g_root, sizeof g_root, "%s", t.root);
    set_tuning();
    assert_int_equal(dt_dvr_init(&t), 0);
    ms_stream_cfg_t cfg;
    /* two streams on the same root, depth long enough never to matter */
    dt_stream_cfg(&cfg, "cam-f1", 2, 86400, MS_DVR_CONTINUOUS);
    ms_dvr_recorder_t *rec = dt_rec_start(&t, &cfg);
    assert_non_null(rec);
    int64_t wall0 = dt_wall0(600);
    dt_feed(&t, 0, 500, wall0, 0, 0); /* 20 s, ~750 KB */
    ms_dvr_recorder_stop(rec);
    assert_int_equal(uv_run(&t.loop, UV_RUN_DEFAULT), 0);
    dt_stream_cfg(&cfg, "cam-f2", 2, 86400, MS_DVR_CONTINUOUS);
    rec = dt_rec_start(&t, &cfg);
    assert_non_null(rec);
    dt_feed(&t, 500, 100, wall0, 0, 0); /* after cam-f1 */
    ms_dvr_recorder_stop(rec);
    assert_int_equal(uv_run(&t.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(ms_dvr_flush(), 0);

    int files = 0;
    uint64_t bytes = 0;
    dt_walk(t.root, &files, &bytes);
    assert_int_equal(files, 13);                  /* cam-f2 got the hub's GOP cache (19 s) */
    assert_true(bytes > FAKE_BLOCKS * 1024 / 10); /* over the limit */

    assert_int_equal(ms_dvr_retention_now(), 0);
    files = 0;
    bytes = 0;
    dt_walk(t.root, &files, &bytes);
    /* under 10 %, and not much under: one chunk at a time */
    uint64_t limit = FAKE_BLOCKS * 1024 / 10;
    assert_true(bytes <= limit);
    ms_dvr_chunk_t *a, *b;
    size_t na, nb;
    assert_int_equal(ms_dvr_chunks("cam-f1", 0, INT64_MAX / 2, &a, &na), 0);
    assert_int_equal(ms_dvr_chunks("cam-f2", 0, INT64_MAX / 2, &b, &nb), 0);
    assert_int_equal(na + nb, (size_t)files);
    /* the oldest went first: cam-f2 (newest) is whole, cam-f1 kept its end */
    assert_int_equal(nb, 3);
    assert_true(na > 0 && na < 10);
    assert_int_equal(a[na - 1].end_ms, wall0 / 1000 + 20000);
    uint64_t sum = 0;
    for (size_t i = 0; i < na; i++)
        sum += a[i].bytes;
    for (size_t i = 0; i < nb; i++)
        sum += b[i].bytes;
    assert_int_equal(sum, bytes);
    /* one chunk fewer would not have been enough */
    assert_true(bytes + a[0].bytes > limit - 20000);

    json_t *st;
    assert_int_equal(ms_dvr_storage(&st), 0);
    json_t *r0 = json_array_get(json_object_get(st, "roots"), 0);
    assert_int_equal(json_integer_value(json_object_get(r0, "total_bytes")), FAKE_BLOCKS * 1024);
    assert_true(json_integer_value(json_object_get(r0, "used_percent")) <= 10);
    assert_int_equal(json_integer_value(json_object_get(r0, "max_used_percent")), 10);
    json_decref(st);
    assert_true(atomic_load(&g_calls) > 0);

    ms_dvr_chunks_free(a, na);
    ms_dvr_chunks_free(b, nb);
    ms_dvr_shutdown();
    ms_dvr_set_tuning(NULL);
    dt_teardown(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retention_age),
        cmocka_unit_test(test_retention_full),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
