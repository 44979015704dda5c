/* Stream directory: scan (valid, invalid, duplicate, hidden and foreign
 * files, derived uids), the pure diff, and reloads driving a recording fake
 * of ms_streams_apply/remove. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "node/loader.h"
#include "node/uid.h"

static char g_dir[64];

static void put(const char *name, const char *text)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", g_dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void del(const char *name)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", g_dir, name);
    unlink(p);
}

static int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "ms_loader_XXXXXX"); /* in the test's working directory */
    return mkdtemp(g_dir) ? 0 : -1;
}

static void clean(void)
{
    const char *names[] = {"a.json", "b.json", "c.json", "d.json", ".hidden.json", "x.txt"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        del(names[i]);
}

static int teardown(void **state)
{
    (void)state;
    clean();
    return rmdir(g_dir);
}

/* ---- recording fake of the streams module ---- */
static char g_calls[64][160];
static int g_ncalls;
static const char *g_fail_name; /* apply of this name fails with -EEXIST */

static int fake_apply(const ms_stream_cfg_t *c, ms_run_state_t d)
{
    if (g_fail_name && strcmp(c->name, g_fail_name) == 0)
        return -EEXIST;
    snprintf(g_calls[g_ncalls++], sizeof g_calls[0], "apply %s %s %.64s", c->name,
             d == MS_RUN_ACTIVE ? "active" : "suspend", c->url);
    return 0;
}

static int fake_remove(const char *uid)
{
    snprintf(g_calls[g_ncalls++], sizeof g_calls[0], "remove %s", uid);
    return 0;
}

static int called(const char *line)
{
    for (int i = 0; i < g_ncalls; i++)
        if (strcmp(g_calls[i], line) == 0)
            return 1;
    return 0;
}

static int has_line_prefix(const ms_errlist_t *e, const char *prefix)
{
    for (size_t i = 0; i < e->n; i++)
        if (strncmp(e->lines[i], prefix, strlen(prefix)) == 0)
            return 1;
    return 0;
}

static void test_scan(void **state)
{
    (void)state;
    put("a.json", "{\"uid\":\"u-a\",\"name\":\"cam1\",\"url\":\"rtsp://h/a\"}");
    put("b.json", "{\"name\":\"cam2\",\"url\":\"rtsp://h/b\",\"enabled\":false}");
    put("c.json", "{\"name\":\"cam3\",\"url\":\"http://h/c\"}");
    put("d.json", "{\"name\":\"cam1\",\"url\":\"rtsp://h/d\"}");
    put(".hidden.json", "{\"name\":\"hid\",\"url\":\"rtsp://h/h\"}");
    put("x.txt", "not json");
    ms_stream_set_t s;
    ms_errlist_t e = {0};
    assert_int_equal(ms_loader_scan(g_dir, "n1", &s, &e), 0);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.v[0].name, "cam1");
    assert_string_equal(s.v[0].uid, "u-a");
    assert_string_equal(s.v[1].name, "cam2");
    char uid[MS_UID_LEN];
    ms_uid_derive("n1", "b.json", uid);
    assert_string_equal(s.v[1].uid, uid);
    char want[256];
    snprintf(want, sizeof want, "%s/a.json", g_dir);
    assert_string_equal(s.v[0].source_file, want);
    assert_int_equal(s.nfailed, 2);
    snprintf(want, sizeof want, "%s/c.json: url: must start with rtsp:// or rtsps://", g_dir);
    assert_true(has_line_prefix(&e, want));
    snprintf(want, sizeof want, "%s/d.json: name: \"cam1\" is already used by %s/a.json", g_dir,
             g_dir);
    assert_true(has_line_prefix(&e, want));
    assert_int_equal(e.n, 2);
    ms_stream_set_free(&s);
    ms_errlist_free(&e);

    /* a second scan derives the same uid for b.json */
    assert_int_equal(ms_loader_scan(g_dir, "n1", &s, &e), 0);
    assert_string_equal(s.v[1].uid, uid);
    ms_stream_set_free(&s);
    ms_errlist_free(&e);

    /* missing directory */
    assert_true(ms_loader_scan("no-such-dir-here", "n1", &s, &e) < 0);
    assert_true(has_line_prefix(&e, "no-such-dir-here: (dir): cannot open the stream directory"));
    ms_errlist_free(&e);
}

static void mk(ms_stream_cfg_t *c, const char *uid, const char *name, const char *url,
               const char *file)
{
    ms_stream_cfg_defaults(c);
    snprintf(c->uid, sizeof c->uid, "%s", uid);
    snprintf(c->name, sizeof c->name, "%s", name);
    snprintf(c->url, sizeof c->url, "%s", url);
    snprintf(c->source_file, sizeof c->source_file, "%s", file);
}

static void test_diff(void **state)
{
    (void)state;
    ms_stream_cfg_t cv[4], nv[3];
    mk(&cv[0], "u1", "s1", "rtsp://h/1", "f1");
    mk(&cv[1], "u2", "s2", "rtsp://h/2", "f2"); /* file removed */
    mk(&cv[2], "u3", "s3", "rtsp://h/3", "f3"); /* file now invalid */
    mk(&cv[3], "u4", "s4", "rtsp://h/4", "f4"); /* unchanged */
    mk(&nv[0], "u1", "s1", "rtsp://h/1-new", "f1");
    mk(&nv[1], "u5", "s5", "rtsp://h/5", "f5");
    mk(&nv[2], "u4", "s4", "rtsp://h/4", "f4");
    char *failed[] = {"f3"};
    ms_stream_set_t cur = {cv, 4, NULL, 0}, next = {nv, 3, failed, 1};
    ms_loader_action_t *a;
    long n = ms_loader_diff(&cur, &next, &a);
    assert_int_equal(n, 4);
    assert_int_equal(a[0].op, MS_LOADER_REMOVE);
    assert_int_equal(a[0].index, 1);
    assert_int_equal(a[1].op, MS_LOADER_UPDATE);
    assert_int_equal(a[1].index, 0);
    assert_int_equal(a[2].op, MS_LOADER_ADD);
    assert_int_equal(a[2].index, 1);
    assert_int_equal(a[3].op, MS_LOADER_KEEP);
    assert_int_equal(a[3].index, 2);
    free(a);

    /* from nothing: all adds; to nothing: all removes */
    ms_stream_set_t empty = {0};
    n = ms_loader_diff(&empty, &next, &a);
    assert_int_equal(n, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(a[i].op, MS_LOADER_ADD);
    free(a);
    n = ms_loader_diff(&cur, &empty, &a);
    assert_int_equal(n, 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(a[i].op, MS_LOADER_REMOVE);
    free(a);
    n = ms_loader_diff(&next, &next, &a);
    assert_int_equal(n, 0);
    free(a);
}

static void test_reload(void **state)
{
    (void)state;
    ms_loader_t l;
    ms_loader_init(&l, g_dir, "n1", fake_apply, fake_remove);
    char uid_b[MS_UID_LEN];
    ms_uid_derive("n1", "b.json", uid_b);
    clean();

    put("a.json", "{\"uid\":\"u-a\",\"name\":\"cam1\",\"url\":\"rtsp://h/a\"}");
    put("b.json", "{\"name\":\"cam2\",\"url\":\"rtsp://h/b\",\"enabled\":false}");
    put("c.json", "{\"name\":\"cam3\",\"url\":\"bad\"}");
    g_ncalls = 0;
    assert_int_equal(ms_loader_reload(&l), 1); /* one problem: c.json */
    assert_int_equal(g_ncalls, 2);
    assert_true(called("apply cam1 active rtsp://h/a"));
    assert_true(called("apply cam2 suspend rtsp://h/b"));

    /* nothing changed: nothing touched */
    g_ncalls = 0;
    assert_int_equal(ms_loader_reload(&l), 1);
    assert_int_equal(g_ncalls, 0);

    /* change a, remove b, fix c */
    put("a.json", "{\"uid\":\"u-a\",\"name\":\"cam1\",\"url\":\"rtsp://h/a2\"}");
    del("b.json");
    put("c.json", "{\"name\":\"cam3\",\"url\":\"rtsp://h/c\"}");
    g_ncalls = 0;
    assert_int_equal(ms_loader_reload(&l), 0);
    assert_int_equal(g_ncalls, 3);
    char want[128];
    snprintf(want, sizeof want, "remove %s", uid_b);
    assert_true(called(want));
    assert_true(called("apply cam1 active rtsp://h/a2"));
    assert_true(called("apply cam3 active rtsp://h/c"));
    assert_string_equal(g_calls[0], want); /* removals first */

    /* a breaks: cam1 keeps running (no remove), stays current */
    put("a.json", "{\"uid\":\"u-a\",\"name\":\"cam1\",\"url\":");
    g_ncalls = 0;
    assert_int_equal(ms_loader_reload(&l), 1);
    assert_int_equal(g_ncalls, 0);
    /* a is fixed with its old content: nothing to do */
    put("a.json", "{\"uid\":\"u-a\",\"name\":\"cam1\",\"url\":\"rtsp://h/a2\"}");
    g_ncalls = 0;
    assert_int_equal(ms_loader_reload(&l), 0);
    assert_int_equal(g_ncalls, 0);

    /* a failed apply is retried by the next reload */
    put("d.json", "{\"name\":\"cam4\",\"url\":\"rtsp://h/d\"}");
    g_fail_name = "cam4";
    g_ncalls = 0;
    assert_int_equal(ms_loader_reload(&l), 1);
    assert_int_equal(g_ncalls, 0);
    g_fail_name = NULL;
    assert_int_equal(ms_loader_reload(&l), 0);
    assert_int_equal(g_ncalls, 1);
    assert_true(called("apply cam4 active rtsp://h/d"));

    /* unreadable directory: nothing changes */
    ms_loader_t l2;
    ms_loader_init(&l2, "no-such-dir-here", "n1", fake_apply, fake_remove);
    g_ncalls = 0;
    assert_true(ms_loader_reload(&l2) < 0);
    assert_int_equal(g_ncalls, 0);
    ms_loader_free(&l2);

    /* every file gone: everything removed */
    del("a.json");
    del("c.json");
    del("d.json");
    g_ncalls = 0;
    assert_int_equal(ms_loader_reload(&l), 0);
    assert_int_equal(g_ncalls, 3);
    assert_true(called("remove u-a"));
    assert_int_equal(l.cur.n, 0);
    ms_loader_free(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scan),
        cmocka_unit_test(test_diff),
        cmocka_unit_test(test_reload),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
