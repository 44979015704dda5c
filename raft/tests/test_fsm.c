/* Unit tests of the replicated state machine (raft/fsm.h): determinism,
 * req_id dedup, rejections, schema commands, snapshot round trip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <errno.h>
#include <sqlite3.h>

#include "raft/commands.h"
#include "raft/fsm.h"
#include "raft/fsm_int.h"

/* Applies op(args) with a fixed req_id and ts; returns the result. */
static json_t *run(ms_fsm_t *f, const char *op, const char *args, const char *req_id, int64_t ts)
{
    json_t *a = json_loads(args, 0, NULL);
    assert_non_null(a);
    json_t *cmd = ms_cmd_new_at(op, a, req_id, ts);
    assert_non_null(cmd);
    size_t len;
    char *txt = ms_cmd_encode(cmd, &len);
    json_decref(cmd);
    json_t *res = NULL;
    assert_int_equal(ms_fsm_apply(f, txt, len, &res), 0);
    free(txt);
    assert_non_null(res);
    return res;
}

static void ok(ms_fsm_t *f, const char *op, const char *args, const char *req_id, int64_t ts)
{
    json_t *r = run(f, op, args, req_id, ts);
    if (!json_is_true(json_object_get(r, "ok"))) {
        char *s = json_dumps(r, 0);
        fail_msg("%s rejected: %s", op, s);
    }
    json_decref(r);
}

/* Expects a rejection with the given status and field. */
static void rejected(ms_fsm_t *f, const char *op, const char *args, const char *req_id, int status,
                     const char *field)
{
    json_t *r = run(f, op, args, req_id, 1000);
    assert_non_null(json_object_get(r, "error"));
    assert_int_equal(json_integer_value(json_object_get(r, "status")), status);
    if (field)
        assert_string_equal(json_string_value(json_object_get(r, "field")), field);
    json_decref(r);
}

static ms_fsm_t *new_fsm(void)
{
    ms_fsm_t *f = NULL;
    assert_int_equal(ms_fsm_new(&f), 0);
    return f;
}

static void sum(ms_fsm_t *f, char out[65])
{
    assert_int_equal(ms_fsm_checksum(f, out), 0);
    assert_int_equal(strlen(out), 64);
}

/* A fixed scenario touching every table. */
static void scenario(ms_fsm_t *f)
{
    char id[16];
    ok(f, "schema_init", "{\"version\":2}", "r-schema", 1700000000000);
    ok(f, "group_upsert", "{\"name\":\"north\",\"subnets\":[\"192.0.2.0/24\",\"2001:db8::/32\"]}",
       "r-g1", 1700000000100);
    for (int i = 1; i <= 3; i++) {
        char args[256], req[16];
        snprintf(args, sizeof args,
                 "{\"id\":%d,\"name\":\"n%d\",\"addresses\":[\"127.0.0.%d:7000\"],"
                 "\"group\":\"north\",\"stream_limit\":100}",
                 i, i, i);
        snprintf(req, sizeof req, "r-s%d", i);
        ok(f, "server_upsert", args, req, 1700000000200 + i);
    }
    ok(f, "cluster_upsert",
       "{\"name\":\"c1\",\"group\":\"north\",\"main\":\"n1\","
       "\"additional\":\"n2\"}",
       "r-c1", 1700000000300);
    for (int i = 0; i < 10; i++) {
        char args[512];
        snprintf(args, sizeof args,
                 "{\"added\":\"%s\",\"stream\":{\"uid\":\"u%d\",\"name\":\"cam%d\","
                 "\"url\":\"rtsp://192.0.2.%d/s\",\"dvr\":{\"enabled\":%s,\"depth_s\":%d},"
                 "\"reserve\":true,\"group\":\"north\"}}",
                 i % 2 ? "auto" : "manual", i, i, i + 10, i % 3 ? "true" : "false", 3600 * (i + 1));
        snprintf(id, sizeof id, "r-st%d", i);
        ok(f, "stream_upsert", args, id, 1700000001000 + i);
        snprintf(
            args, sizeof args,
            "{\"stream\":\"cam%d\",\"primary\":\"n%d\",\"backup\":\"n%d\",\"role\":\"primary\"}", i,
            1 + i % 3, 1 + (i + 1) % 3);
        snprintf(id, sizeof id, "r-as%d", i);
        ok(f, "stream_assign", args, id, 1700000002000 + i);
    }
    ok(f, "server_report",
       "{\"name\":\"n1\",\"storage_total\":1000000,\"storage_used\":5000,\"load\":{\"cpu\":0.25}}",
       "r-rep1", 1700000003000);
    ok(f, "archive_ranges_set",
       "{\"stream\":\"cam1\",\"server\":\"n2\",\"ranges\":[[1700000000,1700003600],[1700007200,"
       "1700010000]]}",
       "r-ar1", 1700000004000);
    ok(f, "stream_set_state", "{\"stream\":\"cam2\",\"enabled\":false,\"audio\":false}", "r-ss1",
       1700000005000);
    ok(f, "stream_remove", "{\"stream\":\"u9\"}", "r-rm9", 1700000006000);
    ok(f, "setting_set", "{\"key\":\"transfer_cooldown_s\",\"value\":3600}", "r-set1",
       1700000007000);
}

static void test_determinism(void **state)
{
    (void)state;
    ms_fsm_t *a = new_fsm(), *b = new_fsm(), *c = new_fsm();
    char sa[65], sb[65], sc[65], empty[65];
    sum(a, empty);
    scenario(a);
    scenario(b);
    scenario(c);
    sum(a, sa);
    sum(b, sb);
    sum(c, sc);
    assert_string_equal(sa, sb);
    assert_string_equal(sa, sc);
    assert_string_not_equal(sa, empty);
    assert_int_equal(ms_fsm_applied(a), ms_fsm_applied(b));

    /* the checksum really covers the data: one more change differs, and
     * the same change on the other copy converges again */
    ok(a, "server_report", "{\"name\":\"n2\",\"storage_used\":1}", "r-x", 1700000009000);
    sum(a, sa);
    assert_string_not_equal(sa, sb);
    ok(b, "server_report", "{\"name\":\"n2\",\"storage_used\":1}", "r-x", 1700000009000);
    sum(b, sb);
    assert_string_equal(sa, sb);
    /* the same op with a different ts is a different state */
    ok(c, "server_report", "{\"name\":\"n2\",\"storage_used\":1}", "r-x", 1700000009001);
    sum(c, sc);
    assert_string_not_equal(sa, sc);

    /* stored values came from the command, not the clock */
    json_t *s = ms_fsm_get_stream(a, "cam3");
    assert_non_null(s);
    json_t *p = json_object_get(s, "placement");
    assert_int_equal(json_integer_value(json_object_get(p, "created_at")), 1700000001);
    assert_int_equal(json_integer_value(json_object_get(p, "updated_at")), 1700000002);
    assert_string_equal(json_string_value(json_object_get(p, "primary")), "n1");
    assert_string_equal(json_string_value(json_object_get(p, "backup")), "n2");
    assert_string_equal(json_string_value(json_object_get(p, "added")), "auto");
    json_decref(s);
    assert_null(ms_fsm_get_stream(a, "cam9"));
    ms_fsm_free(a);
    ms_fsm_free(b);
    ms_fsm_free(c);
}

static void test_stream_object(void **state)
{
    (void)state;
    ms_fsm_t *f = new_fsm();
    ok(f, "schema_init", "{\"version\":1}", "r0", 1000);
    const char *cfg = "{\"uid\":\"0d6b6c1e-3f0a-4c5e-9a55-2f4f0b7a2a11\",\"name\":\"cam1\","
                      "\"url\":\"rtsp://user:pass@192.0.2.10:554/stream1\",\"enabled\":true,"
                      "\"channels\":[\"video\",\"audio\"],\"transport\":\"tcp\","
                      "\"reconnect\":{\"interval_ms\":500,\"max_interval_ms\":20000},"
                      "\"dvr\":{\"enabled\":true,\"depth_s\":604800,\"chunk_s\":10,"
                      "\"mode\":\"event\"},\"access\":{\"mode\":\"protected\","
                      "\"whitelist\":[\"192.0.2.0/24\"]},\"camera\":\"cam-0042\","
                      "\"quality\":\"low\",\"reserve\":true,\"group\":\"north\","
                      "\"hls_segment_ms\":2000}";
    char args[2048];
    snprintf(args, sizeof args, "{\"stream\":%s}", cfg);
    json_t *r = run(f, "stream_upsert", args, "r1", 5000);
    assert_true(json_is_true(json_object_get(r, "created")));
    json_t *st = json_object_get(r, "stream");
    json_t *want = json_loads(cfg, 0, NULL);
    /* every key of the stream object comes back as given */
    const char *k;
    json_t *v;
    json_object_foreach(want, k, v)
    {
        if (!json_equal(v, json_object_get(st, k)))
            fail_msg("key %s differs", k);
    }
    json_decref(r);

    /* an update keeps placement and bumps rev; audio off edits channels */
    r = run(f, "stream_upsert", args, "r2", 6000);
    assert_true(json_is_false(json_object_get(r, "created")));
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(json_object_get(r, "stream"), "placement"), "rev")),
                     2);
    json_decref(r);
    ok(f, "stream_set_state", "{\"stream\":\"cam1\",\"audio\":false,\"state\":\"suspend\"}", "r3",
       7000);
    st = ms_fsm_get_stream(f, "0d6b6c1e-3f0a-4c5e-9a55-2f4f0b7a2a11");
    json_t *ch = json_object_get(st, "channels");
    assert_int_equal(json_array_size(ch), 1);
    assert_string_equal(json_string_value(json_array_get(ch, 0)), "video");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(st, "placement"), "state")), "suspend");
    json_decref(st);
    json_decref(want);

    /* defaults for absent keys */
    ok(f, "stream_upsert", "{\"stream\":{\"uid\":\"u2\",\"name\":\"cam2\"}}", "r4", 8000);
    st = ms_fsm_get_stream(f, "cam2");
    assert_true(json_is_true(json_object_get(st, "enabled")));
    assert_string_equal(json_string_value(json_object_get(st, "transport")), "auto");
    assert_int_equal(json_array_size(json_object_get(st, "channels")), 2);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(st, "dvr"), "chunk_s")),
                     10);
    json_decref(st);
    json_t *all = ms_fsm_list(f, "streams");
    assert_int_equal(json_array_size(all), 2);
    json_decref(all);
    ms_fsm_free(f);
}

static void test_dedup(void **state)
{
    (void)state;
    ms_fsm_t *f = new_fsm();
    char before[65], after[65];
    ok(f, "schema_init", "{\"version\":1}", "r0", 1000);
    const char *args = "{\"stream\":{\"uid\":\"u1\",\"name\":\"cam1\"}}";
    json_t *r1 = run(f, "stream_upsert", args, "same-id", 2000);
    sum(f, before);
    uint64_t n = ms_fsm_applied(f);
    /* the retry (even with another ts) is answered from the dedup table */
    json_t *r2 = run(f, "stream_upsert", args, "same-id", 3000);
    sum(f, after);
    assert_string_equal(before, after);
    assert_int_equal(ms_fsm_applied(f), n);
    assert_true(json_is_true(json_object_get(r2, "duplicate")));
    json_object_del(r2, "duplicate");
    assert_true(json_equal(r1, r2));
    json_decref(r1);
    json_decref(r2);
    json_t *st = ms_fsm_get_stream(f, "cam1");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(st, "placement"), "rev")),
                     1);
    json_decref(st);

    /* a new req_id with the same args is a second application */
    ok(f, "stream_upsert", args, "other-id", 4000);
    st = ms_fsm_get_stream(f, "cam1");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(st, "placement"), "rev")),
                     2);
    json_decref(st);

    /* a rejected command is remembered too: its retry gets the same answer */
    rejected(f, "stream_assign", "{\"stream\":\"cam1\",\"primary\":\"nope\"}", "rej-1", 404,
             "primary");
    json_t *r3 = run(f, "stream_assign", "{\"stream\":\"cam1\",\"primary\":\"nope\"}", "rej-1", 5);
    assert_true(json_is_true(json_object_get(r3, "duplicate")));
    json_decref(r3);

    /* pruning keeps the last MS_FSM_DEDUP_KEEP req_ids, deterministically */
    for (int i = 0; i < MS_FSM_DEDUP_KEEP; i++) {
        char id[32];
        snprintf(id, sizeof id, "fill-%d", i);
        ok(f, "server_upsert", "{\"id\":1,\"name\":\"n1\"}", id, 10000 + i);
    }
    json_t *r4 = run(f, "stream_upsert", args, "same-id", 99999); /* pruned: applies again */
    assert_null(json_object_get(r4, "duplicate"));
    json_decref(r4);
    json_t *r5 = run(f, "server_upsert", "{\"id\":1,\"name\":\"n1\"}", "fill-9999", 99999);
    assert_true(json_is_true(json_object_get(r5, "duplicate")));
    json_decref(r5);
    int64_t cnt = 0;
    sqlite3_stmt *q;
    assert_int_equal(
        sqlite3_prepare_v2(ms_fsm_db(f), "SELECT count(*) FROM applied_reqs", -1, &q, NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    cnt = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    assert_int_equal(cnt, MS_FSM_DEDUP_KEEP);
    ms_fsm_free(f);
}

static void test_rejections(void **state)
{
    (void)state;
    ms_fsm_t *f = new_fsm();
    char s0[65], s1[65];
    json_t *res = NULL;

    /* ops need a schema first */
    rejected(f, "stream_upsert", "{\"stream\":{\"uid\":\"u1\",\"name\":\"c\"}}", "a1", 409, "op");
    ok(f, "schema_init", "{\"version\":1}", "a2", 1000);

    /* malformed input: never a crash, no req_id means no state change */
    sum(f, s0);
    const char *bad[] = {"",
                         "{",
                         "[]",
                         "null",
                         "{\"v\":1}",
                         "{\"v\":\"1\",\"op\":\"x\"}",
                         "{\"v\":1,\"op\":\"stream_remove\",\"req_id\":\"has space\","
                         "\"ts\":1,\"args\":{}}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(ms_fsm_apply(f, bad[i], strlen(bad[i]), &res), 0);
        assert_non_null(json_object_get(res, "error"));
        json_decref(res);
    }
    sum(f, s1);
    assert_string_equal(s0, s1);

    /* a newer command version stops the node instead of diverging */
    const char *v2 = "{\"v\":2,\"op\":\"x\",\"req_id\":\"a\",\"ts\":1,\"args\":{}}";
    assert_int_equal(ms_fsm_apply(f, v2, strlen(v2), &res), -EPROTO);
    assert_null(res);

    rejected(f, "no_such_op", "{}", "b1", 400, "op");
    rejected(f, "stream_upsert", "{\"stream\":{\"name\":\"c\"}}", "b2", 400, "uid");
    rejected(f, "stream_upsert", "{\"stream\":{\"uid\":\"u1\",\"name\":\"a/b\"}}", "b3", 400,
             "name");
    rejected(f, "stream_upsert",
             "{\"stream\":{\"uid\":\"u1\",\"name\":\"c\",\"dvr\":{\"depth_s\":-1}}}", "b4", 400,
             "dvr.depth_s");
    rejected(f, "stream_upsert",
             "{\"stream\":{\"uid\":\"u1\",\"name\":\"c\",\"channels\":[\"video\",\"smell\"]}}",
             "b5", 400, "channels");
    rejected(f, "stream_upsert",
             "{\"stream\":{\"uid\":\"u1\",\"name\":\"c\",\"access\":{\"mode\":\"secret\"}}}", "b6",
             400, "access.mode");
    rejected(f, "stream_upsert",
             "{\"stream\":{\"uid\":\"u1\",\"name\":\"c\",\"dvr\":{\"bogus\":1}}}", "b7", 400,
             "dvr");
    ok(f, "stream_upsert", "{\"stream\":{\"uid\":\"u1\",\"name\":\"c\"}}", "b8", 2000);
    rejected(f, "stream_upsert", "{\"stream\":{\"uid\":\"u2\",\"name\":\"c\"}}", "b9", 409, "name");
    rejected(f, "stream_assign", "{\"stream\":\"zz\"}", "b10", 404, "stream");
    rejected(f, "group_upsert", "{\"name\":\"g\",\"subnets\":[\"10.0.0.0/33\"]}", "b11", 400,
             "subnets");
    /* a subnet needs its prefix length; leading zeros have always passed */
    rejected(f, "group_upsert", "{\"name\":\"g\",\"subnets\":[\"10.0.0.1\"]}", "b11a", 400,
             "subnets");
    rejected(f, "group_upsert", "{\"name\":\"g\",\"subnets\":[\"::/1x\"]}", "b11b", 400, "subnets");
    ok(f, "group_upsert", "{\"name\":\"g0\",\"subnets\":[\"10.0.0.0/008\",\"fd00::/08\"]}", "b11c",
       2500);
    rejected(f, "cluster_upsert", "{\"name\":\"c1\",\"main\":\"ghost\"}", "b12", 404, "main");
    ok(f, "server_upsert", "{\"id\":7,\"name\":\"n7\"}", "b13", 3000);
    rejected(f, "server_upsert", "{\"id\":8,\"name\":\"n7\"}", "b14", 409, "name");
    ok(f, "stream_assign", "{\"stream\":\"c\",\"primary\":\"n7\",\"transfer\":true}", "b15",
       4000000);
    rejected(f, "server_remove", "{\"name\":\"n7\"}", "b16", 409, "name");
    json_t *st = ms_fsm_get_stream(f, "u1");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(st, "placement"), "transferred_at")),
        4000);
    json_decref(st);
    rejected(f, "archive_ranges_set",
             "{\"stream\":\"c\",\"server\":\"n7\",\"ranges\":[[10,20],[15,30]]}", "b17", 400,
             "ranges");
    rejected(f, "setting_set", "{\"key\":\"k\",\"value\":1}", "b18", 409, "op");
    ms_fsm_free(f);
}

static void test_schema(void **state)
{
    (void)state;
    ms_fsm_t *f = new_fsm(), *g = new_fsm();
    json_t *res = NULL;
    assert_int_equal(ms_fsm_schema_version(f), 0);
    rejected(f, "schema_upgrade", "{\"to\":2}", "s0", 409, "op");
    ok(f, "schema_init", "{\"version\":1}", "s1", 1);
    assert_int_equal(ms_fsm_schema_version(f), 1);
    rejected(f, "schema_init", "{\"version\":1}", "s2", 409, "version");
    rejected(f, "setting_set", "{\"key\":\"a\",\"value\":\"b\"}", "s3", 409, "op");
    ok(f, "schema_upgrade", "{\"to\":2}", "s4", 2);
    assert_int_equal(ms_fsm_schema_version(f), 2);
    ok(f, "setting_set", "{\"key\":\"a\",\"value\":\"b\"}", "s5", 3);
    rejected(f, "schema_upgrade", "{\"to\":1}", "s6", 409, "to");

    /* a schema newer than the binary: stop (-EPROTO), state untouched */
    char before[65], after[65];
    sum(f, before);
    const char *up = "{\"v\":1,\"op\":\"schema_upgrade\",\"req_id\":\"s7\",\"ts\":4,"
                     "\"args\":{\"to\":99}}";
    assert_int_equal(ms_fsm_apply(f, up, strlen(up), &res), -EPROTO);
    sum(f, after);
    assert_string_equal(before, after);

    /* init straight to 2 == init 1 + upgrade 2 in table layout */
    ok(g, "schema_init", "{\"version\":2}", "t1", 1);
    assert_int_equal(ms_fsm_schema_version(g), 2);
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_prepare_v2(ms_fsm_db(g),
                                        "SELECT count(*) FROM sqlite_master WHERE name='settings'",
                                        -1, &q, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(q, 0), 1);
    sqlite3_finalize(q);

    /* the commands builders stamp the binary's latest version */
    json_t *c = ms_cmd_schema_init();
    assert_int_equal(json_integer_value(json_object_get(json_object_get(c, "args"), "version")),
                     MS_FSM_SCHEMA_LATEST);
    assert_int_equal(strlen(json_string_value(json_object_get(c, "req_id"))), 32);
    assert_true(json_integer_value(json_object_get(c, "ts")) > 1600000000000);
    json_decref(c);
    ms_fsm_free(f);
    ms_fsm_free(g);
}

static void test_snapshot(void **state)
{
    (void)state;
    ms_fsm_t *a = new_fsm(), *b = new_fsm();
    scenario(a);
    char sa[65], sb[65];
    sum(a, sa);
    void *img = NULL;
    size_t len = 0;
    assert_int_equal(ms_fsm_snapshot(a, malloc, &img, &len), 0);
    assert_true(len > 16);
    assert_memory_equal(img, "MSFSM001", 8);

    /* damaged images are refused and leave the state alone */
    sum(b, sb);
    assert_int_equal(ms_fsm_restore(b, img, len - 1), -EINVAL);
    unsigned char *bad = malloc(len);
    memcpy(bad, img, len);
    memset(bad + 16, 0x5a, 100); /* clobber the SQLite header */
    assert_int_equal(ms_fsm_restore(b, bad, len), -EINVAL);
    free(bad);
    char sb2[65];
    sum(b, sb2);
    assert_string_equal(sb, sb2);

    assert_int_equal(ms_fsm_restore(b, img, len), 0);
    free(img);
    sum(b, sb);
    assert_string_equal(sa, sb);
    assert_int_equal(ms_fsm_schema_version(b), 2);
    assert_int_equal(ms_fsm_applied(b), ms_fsm_applied(a));

    /* the restored copy keeps evolving exactly like the original, dedup
     * table included */
    json_t *r = run(b, "stream_assign", "{\"stream\":\"cam0\",\"primary\":\"n3\"}", "r-as0", 9);
    assert_true(json_is_true(json_object_get(r, "duplicate")));
    json_decref(r);
    ok(a, "stream_remove", "{\"stream\":\"cam0\"}", "r-next", 1700000010000);
    ok(b, "stream_remove", "{\"stream\":\"cam0\"}", "r-next", 1700000010000);
    sum(a, sa);
    sum(b, sb);
    assert_string_equal(sa, sb);
    ms_fsm_free(a);
    ms_fsm_free(b);
}

static int n_hook;
static void hook(void *ud, const char *req_id, const char *op, json_t *res)
{
    (void)ud;
    (void)res;
    if (req_id && op)
        n_hook++;
}

static void test_hook_and_dump(void **state)
{
    (void)state;
    ms_fsm_t *f = new_fsm();
    ms_fsm_set_apply_hook(f, hook, NULL);
    ok(f, "schema_init", "{\"version\":1}", "h1", 1);
    ok(f, "group_upsert", "{\"name\":\"g\"}", "h2", 2);
    assert_int_equal(n_hook, 2);
    char *d = NULL;
    size_t len = 0;
    assert_int_equal(ms_fsm_dump(f, &d, &len), 0);
    assert_non_null(strstr(d, "table server_groups 3\nrow\nT1:g\nT2:[]\nI1\n"));
    free(d);
    ms_fsm_free(f);
}

/* The statement cache (ms_fsm_prep / ms_fsm_done): a statement given back
 * is handed out again, reset and unbound; the same text asked while it is
 * in use gets a statement of its own; a restore drops the cache with the
 * old database and the restored state is read through new statements. */
static void test_statement_cache(void **state)
{
    (void)state;
    ms_fsm_t *f;
    assert_int_equal(ms_fsm_new(&f), 0);
    ok(f, "schema_init", "{\"version\":1}", "r1", 1000);
    const char *sql = "SELECT value FROM meta WHERE key = ?";
    sqlite3_stmt *a, *b, *c;
    assert_int_equal(ms_fsm_prep(f, &a, sql, "t", "seq"), 0);
    assert_int_equal(sqlite3_step(a), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int64(a, 0), 1);
    assert_int_equal(ms_fsm_prep(f, &b, sql, "t", "schema"), 0); /* a is in use */
    assert_ptr_not_equal(a, b);
    assert_int_equal(sqlite3_step(b), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int64(b, 0), 1);
    ms_fsm_done(f, b);
    ms_fsm_done(f, a);
    assert_int_equal(ms_fsm_prep(f, &c, sql, "", NULL), 0); /* a again, unbound */
    assert_ptr_equal(a, c);
    assert_int_equal(sqlite3_step(c), SQLITE_DONE); /* key = NULL: no row */
    ms_fsm_done(f, c);
    for (int i = 0; i < 3; i++) { /* commands run through cached statements */
        char rid[16], args[96];
        snprintf(rid, sizeof rid, "s%d", i);
        snprintf(args, sizeof args,
                 "{\"id\":%d,\"name\":\"srv%d\",\"addresses\":[\"http://127.0.0.1:%d\"]}", i + 1, i,
                 8000 + i);
        ok(f, "server_upsert", args, rid, 2000 + i);
    }
    void *img;
    size_t len;
    assert_int_equal(ms_fsm_snapshot(f, malloc, &img, &len), 0);
    ok(f, "server_remove", "{\"name\":\"srv2\"}", "s9", 3000);
    json_t *l = ms_fsm_list(f, "servers");
    assert_int_equal(json_array_size(l), 2);
    json_decref(l);
    assert_int_equal(ms_fsm_restore(f, img, len), 0);
    free(img);
    l = ms_fsm_list(f, "servers");
    assert_int_equal(json_array_size(l), 3);
    json_decref(l);
    assert_int_equal(ms_fsm_applied(f), 4);
    ok(f, "server_remove", "{\"name\":\"srv2\"}", "s9", 3000); /* not a duplicate here */
    l = ms_fsm_list(f, "servers");
    assert_int_equal(json_array_size(l), 2);
    json_decref(l);
    ms_fsm_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_determinism),   cmocka_unit_test(test_stream_object),
        cmocka_unit_test(test_dedup),         cmocka_unit_test(test_rejections),
        cmocka_unit_test(test_schema),        cmocka_unit_test(test_snapshot),
        cmocka_unit_test(test_hook_and_dump), cmocka_unit_test(test_statement_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
