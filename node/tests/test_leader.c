/* Unit tests of the leader's duties (node/cluster/leader.c,
 * cl_leader_duties; docs/cluster.md "Failover", "Placement and failover"):
 * which commands the leader writes for a healthy server, a silent one, after
 * an election, for a primary on a down server and for a placement. No
 * process, no raft, no loop: the real state machine (raft/fsm.c) on its
 * in-memory database, the test's clocks and a recorder of the leader's
 * writes (the seams of ms_cl.seam, node/cluster/cluster_int.h) that applies
 * them to that state machine as a commit would. The placement rules
 * themselves are tested in test_placement.c; here only the leader's use of
 * them (settling, failover writes, if_primary, roles, removal). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "node/cluster/cluster_int.h"
#include "raft/commands.h"
#include "raft/fsm.h"

#define WALL0 1700000000000LL
#define MONO0 5000000LL
#define NREC  64

static ms_fsm_t *g_fsm;
static ms_node_cfg_t g_cfg; /* the leader: n1 */
static int64_t t_mono, t_wall;
static int g_leading;

/* The leader's writes, in order; those before g_flushed are applied. */
static struct {
    json_t *cmd;
    wop_cb cb;
    void *ud;
} g_rec[NREC];
static int g_nrec, g_flushed;
static int g_write_fail; /* the next writes refused with -ENOMEM (cmd freed, no cb) */

static int seam_leader(void)
{
    return g_leading;
}

static int64_t seam_mono(void)
{
    return t_mono;
}

static int64_t seam_wall(void)
{
    return t_wall;
}

static int seam_write(json_t *cmd, int deadline_ms, int leader_only, wop_cb cb, void *ud)
{
    assert_non_null(cmd);
    assert_int_equal(leader_only, 1); /* a deposed leader's decision must not reach the next */
    assert_true(deadline_ms > 0);
    if (g_write_fail > 0) {
        g_write_fail--;
        json_decref(cmd);
        return -ENOMEM;
    }
    assert_true(g_nrec < NREC);
    g_rec[g_nrec].cmd = cmd;
    g_rec[g_nrec].cb = cb;
    g_rec[g_nrec].ud = ud;
    g_nrec++;
    return 0;
}

/* Applies cmd (borrowed) to the state machine; the result (new). */
static json_t *apply_cmd(json_t *cmd)
{
    size_t len;
    char *txt = ms_cmd_encode(cmd, &len);
    assert_non_null(txt);
    json_t *res = NULL;
    assert_int_equal(ms_fsm_apply(g_fsm, txt, len, &res), 0);
    free(txt);
    assert_non_null(res);
    return res;
}

/* Commits the leader's writes not applied yet, in order, and answers each
 * (as write.c does after the local apply). */
static void flush(void)
{
    for (; g_flushed < g_nrec; g_flushed++) {
        json_t *res = apply_cmd(g_rec[g_flushed].cmd);
        if (json_object_get(res, "error")) {
            char *t = json_dumps(res, 0);
            fail_msg("the leader's write was refused: %s", t);
        }
        g_rec[g_flushed].cb(g_rec[g_flushed].ud, 200, res);
        json_decref(res);
    }
}

/* A command of the test (not the leader's), stamped with the test's wall
 * clock, which must be accepted. */
static void apply(const char *op, const char *fmt, ...)
{
    static unsigned n;
    char args[1024], req[32];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(req, sizeof req, "test-%u", n++);
    json_t *a = json_loads(args, 0, NULL);
    assert_non_null(a);
    json_t *cmd = ms_cmd_new_at(op, a, req, t_wall);
    json_t *res = apply_cmd(cmd);
    json_decref(cmd);
    if (!json_is_true(json_object_get(res, "ok"))) {
        char *t = json_dumps(res, 0);
        fail_msg("%s %s refused: %s", op, args, t);
    }
    json_decref(res);
}

static void report(const char *name)
{
    apply("server_report", "{\"name\":\"%s\"}", name);
}

static void advance(int64_t ms)
{
    t_mono += ms;
    t_wall += ms;
}

/* One run of the duties; the number of commands it wrote (left unapplied
 * until flush()). */
static int duties(void)
{
    int before = g_nrec;
    cl_leader_duties();
    return g_nrec - before;
}

static const char *rec_op(int i)
{
    return json_string_value(json_object_get(g_rec[i].cmd, "op"));
}

static const char *rec_arg(int i, const char *key)
{
    return json_string_value(json_object_get(json_object_get(g_rec[i].cmd, "args"), key));
}

/* The index of the first recorded write from `from` on for stream uid. */
static int rec_find(int from, const char *uid)
{
    for (int i = from; i < g_nrec; i++)
        if (rec_arg(i, "stream") && strcmp(rec_arg(i, "stream"), uid) == 0)
            return i;
    fail_msg("no write for stream %s", uid);
    return -1;
}

/* The row of one server or stream as the state machine has it now. */
static json_t *row(const char *table, const char *key, const char *name)
{
    json_t *list = ms_fsm_list(g_fsm, table), *r, *out = NULL;
    size_t i;
    json_array_foreach(list, i, r) if (strcmp(json_string_value(json_object_get(r, key)), name) ==
                                       0) out = json_incref(r);
    json_decref(list);
    assert_non_null(out);
    return out;
}

static void assert_health(const char *name, const char *want)
{
    json_t *r = row("servers", "name", name);
    assert_string_equal(json_string_value(json_object_get(r, "health")), want);
    json_decref(r);
}

static void assert_placement(const char *uid, const char *primary, const char *backup)
{
    json_t *r = row("streams", "uid", uid), *pl = json_object_get(r, "placement");
    assert_string_equal(json_string_value(json_object_get(pl, "primary")), primary);
    if (backup)
        assert_string_equal(json_string_value(json_object_get(pl, "backup")), backup);
    json_decref(r);
}

static void add_stream(const char *uid, const char *primary, const char *backup)
{
    apply("stream_upsert", "{\"stream\":{\"uid\":\"%s\",\"name\":\"cam-%s\"}}", uid, uid);
    if (primary)
        apply("stream_assign", "{\"stream\":\"%s\",\"primary\":\"%s\",\"backup\":\"%s\"}", uid,
              primary, backup);
}

/* n1 (the leader), n2, n3, all up with a report just now, no address to
 * probe. The leader has led for 10 s unless the test says otherwise. */
static int setup(void **state)
{
    (void)state;
    assert_int_equal(ms_fsm_new(&g_fsm), 0);
    t_mono = MONO0;
    t_wall = WALL0;
    json_t *init = ms_cmd_schema_init();
    json_t *res = apply_cmd(init);
    json_decref(init);
    json_decref(res);
    snprintf(g_cfg.name, sizeof g_cfg.name, "n1");
    ms_cl.cfg = &g_cfg;
    ms_cl.fsm = g_fsm;
    ms_cl.seam.is_leader = seam_leader;
    ms_cl.seam.mono_ms = seam_mono;
    ms_cl.seam.wall_ms = seam_wall;
    ms_cl.seam.write = seam_write;
    g_leading = 1;
    ms_cl.leader_since = t_mono - 10000;
    for (int i = 1; i <= 3; i++) {
        apply("server_upsert", "{\"id\":%d,\"name\":\"n%d\",\"stream_limit\":100}", i, i);
        char n[8];
        snprintf(n, sizeof n, "n%d", i);
        report(n);
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < g_nrec; i++)
        json_decref(g_rec[i].cmd);
    g_nrec = g_flushed = g_write_fail = 0;
    cl_cache_drop_all();
    ms_buf_free(&ms_cl.duty.sig);
    json_decref(ms_cl.placement_logged);
    ms_cl = (ms_cluster_ctx_t){.qmu = PTHREAD_MUTEX_INITIALIZER, .duty = {.sig = MS_BUF_INIT}};
    ms_fsm_free(g_fsm);
    g_fsm = NULL;
    return 0;
}

/* Servers that report every 500 ms, with streams on them: the leader
 * writes nothing in 10 s of ticks, and its runs are skipped once quiet. */
static void test_healthy_servers_get_nothing(void **state)
{
    (void)state;
    add_stream("u1", "n2", "n3");
    add_stream("u2", "n3", "n2");
    for (int t = 0; t < 40; t++) {
        assert_int_equal(duties(), 0);
        advance(250);
        if (t % 2) {
            report("n2");
            report("n3");
        }
    }
    assert_true(ms_cl.duty.runs >= 1);   /* it did decide, and decided nothing */
    assert_true(ms_cl.duty.skips >= 30); /* then reports alone change no decision */
    assert_health("n2", "up");
    assert_health("n3", "up");
    assert_placement("u1", "n2", "n3");
}

/* Runs the duties every 250 ms while n3 reports and n2 is silent; returns
 * n2's silence (ms) at the run that marked it down. */
static int64_t silence_until_down(void)
{
    int64_t since = t_mono;
    for (int t = 0; t < 100; t++) {
        int n = duties();
        if (n) {
            assert_int_equal(n, 1);
            assert_string_equal(rec_op(g_nrec - 1), "server_set_health");
            assert_string_equal(rec_arg(g_nrec - 1, "name"), "n2");
            assert_string_equal(rec_arg(g_nrec - 1, "health"), "down");
            return t_mono - since;
        }
        flush();
        advance(250);
        report("n3");
    }
    fail_msg("n2 never marked down");
    return -1;
}

/* A server silent past down_after_ms (default 1500) is marked down once,
 * on the first run after: not before, and not again. */
static void test_silent_server_marked_down(void **state)
{
    (void)state;
    duties(); /* first observation of the reports */
    int64_t silent = silence_until_down();
    assert_true(silent > DOWN_AFTER_MS);
    assert_true(silent <= DOWN_AFTER_MS + 250);
    assert_health("n2", "up"); /* not committed yet */
    assert_int_equal(ms_cl.duty_busy, 1);
    assert_int_equal(duties(), 0); /* one decision at a time */
    flush();
    assert_int_equal(ms_cl.duty_busy, 0);
    assert_health("n2", "down");
    for (int t = 0; t < 8; t++) {
        advance(250);
        report("n3");
        assert_int_equal(duties(), 0);
    }
    assert_health("n3", "up");
}

/* The setting down_after_ms is what the leader waits for. */
static void test_down_after_ms_setting(void **state)
{
    (void)state;
    apply("setting_set", "{\"key\":\"down_after_ms\",\"value\":4000}");
    duties();
    int64_t silent = silence_until_down();
    assert_true(silent > 4000);
    assert_true(silent <= 4000 + 250);
}

/* A freshly elected leader marks nobody down and moves no assigned
 * stream while it settles (not even one on a server already down), even
 * for a server silent since long before the election: that server's
 * silence counts from the end of settling. An unassigned stream is placed
 * at once. */
static void test_grace_after_election(void **state)
{
    (void)state;
    add_stream("u1", "n2", "n3");
    /* n4: marked down by the previous leader, which could not move u4 */
    apply("server_upsert", "{\"id\":4,\"name\":\"n4\"}");
    report("n4");
    apply("server_set_health", "{\"name\":\"n4\",\"health\":\"down\"}");
    add_stream("u4", "n4", "n3");
    g_leading = 0; /* a follower: it observes the reports (lifecycle's tick) */
    ms_cl.leader_since = 0;
    cl_observe_reports();
    assert_int_equal(duties(), 0); /* not leading: nothing */
    for (int t = 0; t < 12; t++) { /* n2 silent for 3 s */
        advance(250);
        report("n3");
        cl_observe_reports();
    }
    add_stream("u2", NULL, NULL);
    g_leading = 1; /* elected */
    int n = duties();
    int64_t elected = ms_cl.leader_since;
    assert_int_equal(elected, t_mono);
    /* only the new stream is placed: u4, on a server down, waits */
    assert_int_equal(n, 1);
    assert_string_equal(rec_op(0), "stream_assign");
    assert_string_equal(rec_arg(0, "stream"), "u2");
    assert_null(rec_arg(0, "if_primary"));
    assert_true(json_is_null(json_object_get(json_object_get(g_rec[0].cmd, "args"), "if_primary")));
    flush();
    /* n2: nothing until down_after_ms past the end of settling */
    int64_t down_at = -1;
    for (int t = 0; t < 40 && down_at < 0; t++) {
        advance(250);
        report("n3");
        int before = g_nrec;
        n = duties();
        for (int i = before; i < g_nrec; i++)
            if (strcmp(rec_op(i), "server_set_health") == 0) {
                assert_string_equal(rec_arg(i, "name"), "n2");
                down_at = t_mono - elected;
            } else if (strcmp(rec_arg(i, "stream"), "u4") == 0) {
                assert_true(t_mono - elected >= LEADER_SETTLE_MS);
                assert_string_equal(rec_arg(i, "if_primary"), "n4");
            } else {
                assert_string_equal(rec_arg(i, "stream"), "u1");
                assert_true(down_at > 0); /* after n2 is marked down */
            }
        flush();
    }
    assert_true(down_at > LEADER_SETTLE_MS + DOWN_AFTER_MS);
    assert_true(down_at <= LEADER_SETTLE_MS + DOWN_AFTER_MS + 250);
    assert_health("n2", "down");
    assert_placement("u4", "n3", NULL); /* moved once settled */
    /* and then u1 fails over to its backup */
    for (int t = 0; t < 4; t++) {
        advance(250);
        report("n3");
        duties();
        flush();
    }
    assert_placement("u1", "n3", NULL);
}

/* The previous leader is exempt from settling: it submitted its own
 * reports, so when it is the server gone silent it is marked down and its
 * streams fail over in the new leader's first run. */
static void test_previous_leader_down_at_once(void **state)
{
    (void)state;
    add_stream("u1", "n2", "n3");
    g_leading = 0;
    ms_cl.leader_since = 0;
    ms_cl.prev_leader = 2; /* n2 */
    cl_observe_reports();
    for (int t = 0; t < 8; t++) {
        advance(250);
        report("n3");
        cl_observe_reports();
    }
    g_leading = 1;
    int n = duties();
    assert_int_equal(n, 2);
    assert_string_equal(rec_op(0), "server_set_health");
    assert_string_equal(rec_arg(0, "name"), "n2");
    assert_string_equal(rec_op(1), "stream_assign");
    assert_string_equal(rec_arg(1, "stream"), "u1");
    assert_string_equal(rec_arg(1, "primary"), "n3");
    assert_string_equal(rec_arg(1, "if_primary"), "n2");
    flush();
    assert_health("n2", "down");
    assert_placement("u1", "n3", NULL);
}

/* A stream whose primary is on a down server: its healthy backup takes
 * over (the write names the old primary in if_primary, so it applies only
 * if nothing moved it meanwhile) and gets a new backup; with its backup
 * down too, it gets a new placement on the one healthy server. */
static void test_primary_on_down_server(void **state)
{
    (void)state;
    add_stream("u1", "n2", "n3");
    add_stream("u2", "n2", "n3");
    apply("server_set_health", "{\"name\":\"n2\",\"health\":\"down\"}");
    assert_int_equal(duties(), 2);
    for (int i = 0; i < 2; i++) {
        assert_string_equal(rec_op(i), "stream_assign");
        assert_string_equal(rec_arg(i, "primary"), "n3");
        assert_string_equal(rec_arg(i, "backup"), "n1");
        assert_string_equal(rec_arg(i, "if_primary"), "n2");
        assert_string_equal(rec_arg(i, "role"), "primary");
    }
    flush();
    assert_placement("u1", "n3", "n1");
    assert_int_equal(duties(), 0); /* settled */

    /* n3 down as well: u1 moves to n1, the only healthy server */
    apply("server_set_health", "{\"name\":\"n3\",\"health\":\"down\"}");
    int before = g_nrec;
    assert_int_equal(duties(), 2);
    for (int i = before; i < g_nrec; i++) {
        assert_string_equal(rec_arg(i, "primary"), "n1");
        assert_string_equal(rec_arg(i, "if_primary"), "n3");
    }
    flush();
    assert_placement("u1", "n1", NULL);
}

/* A new stream is placed by the leader with if_primary null (only if still
 * unassigned); a server with distribution off, or one being removed
 * (DELETE /servers/{name} under way), gets nothing; a stream that cannot
 * be placed anywhere is not written. */
static void test_placement_new_streams(void **state)
{
    (void)state;
    add_stream("u0", "n1", "n3");
    apply("server_upsert", "{\"id\":3,\"name\":\"n3\",\"distribution\":false}");
    snprintf(ms_cl.removing, sizeof ms_cl.removing, "n2");
    add_stream("u1", NULL, NULL);
    duties();
    int k = rec_find(0, "u1");
    assert_string_equal(rec_op(k), "stream_assign");
    /* n2 has fewer streams than n1, but is being removed */
    assert_string_equal(rec_arg(k, "primary"), "n1");
    assert_true(json_is_null(json_object_get(json_object_get(g_rec[k].cmd, "args"), "if_primary")));
    for (int i = 0; i < g_nrec; i++)
        assert_string_not_equal(rec_arg(i, "primary"), "n2");
    flush();
    assert_placement("u1", "n1", NULL);

    /* the removal done: n2 takes the next stream */
    ms_cl.removing[0] = '\0';
    add_stream("u2", NULL, NULL);
    int before = g_nrec;
    duties();
    assert_string_equal(rec_arg(rec_find(before, "u2"), "primary"), "n2");
    flush();
    assert_placement("u2", "n2", NULL);

    /* nobody qualifies: no write (the reason is logged once) */
    apply("server_upsert", "{\"id\":1,\"name\":\"n1\",\"distribution\":false}");
    apply("server_upsert", "{\"id\":2,\"name\":\"n2\",\"distribution\":false}");
    add_stream("u3", NULL, NULL);
    before = g_nrec;
    duties();
    for (int i = before; i < g_nrec; i++)
        assert_string_not_equal(rec_arg(i, "stream"), "u3");
    assert_non_null(json_object_get(ms_cl.placement_logged, "u3"));
}

/* A reserved stream goes to the main of a cluster of its group, with the
 * cluster's additional server as its backup. */
static void test_placement_reserved_cluster(void **state)
{
    (void)state;
    apply("cluster_upsert",
          "{\"name\":\"c1\",\"group\":\"default\",\"main\":\"n3\",\"additional\":\"n2\"}");
    apply("stream_upsert",
          "{\"stream\":{\"uid\":\"r1\",\"name\":\"res\",\"reserve\":true,\"group\":\"default\"}}");
    assert_int_equal(duties(), 1);
    assert_string_equal(rec_arg(0, "stream"), "r1");
    assert_string_equal(rec_arg(0, "primary"), "n3");
    assert_string_equal(rec_arg(0, "backup"), "n2");
    flush();
    assert_placement("r1", "n3", "n2");
}

/* A draining server hands its primaries to their backups. */
static void test_placement_draining(void **state)
{
    (void)state;
    add_stream("u1", "n2", "n3");
    apply("setting_set", "{\"key\":\"drain.n2\",\"value\":true}");
    assert_int_equal(duties(), 1);
    assert_string_equal(rec_arg(0, "stream"), "u1");
    assert_string_equal(rec_arg(0, "primary"), "n3");
    assert_string_equal(rec_arg(0, "if_primary"), "n2");
    flush();
    assert_placement("u1", "n3", NULL);
}

/* A transferred stream ("migrated" on its server) keeps that role when
 * only its backup changes. */
static void test_migrated_role_kept(void **state)
{
    (void)state;
    add_stream("u1", NULL, NULL);
    apply("stream_assign",
          "{\"stream\":\"u1\",\"primary\":\"n2\",\"backup\":\"n3\",\"role\":\"migrated\"}");
    apply("server_set_health", "{\"name\":\"n3\",\"health\":\"down\"}");
    assert_int_equal(duties(), 1);
    assert_string_equal(rec_arg(0, "primary"), "n2");
    assert_string_equal(rec_arg(0, "backup"), "n1");
    assert_string_equal(rec_arg(0, "role"), "migrated");
    flush();
}

/* The cluster settings the leader passes to placement: storage_max_pct
 * (a server fuller than that takes no new stream) and failback (a reserved
 * stream returns to its cluster's main once that is healthy again). */
static void test_placement_settings(void **state)
{
    (void)state;
    apply("server_upsert", "{\"id\":1,\"name\":\"n1\",\"distribution\":false}");
    apply("server_upsert", "{\"id\":3,\"name\":\"n3\",\"distribution\":false}");
    apply("server_report", "{\"name\":\"n2\",\"storage_total\":100,\"storage_used\":85}");
    add_stream("u1", NULL, NULL);
    assert_int_equal(duties(), 0); /* n2 85 % full, over the default 80 % */
    apply("setting_set", "{\"key\":\"storage_max_pct\",\"value\":90}");
    assert_int_equal(duties(), 1);
    assert_string_equal(rec_arg(0, "stream"), "u1");
    assert_string_equal(rec_arg(0, "primary"), "n2");
    flush();

    apply("server_upsert", "{\"id\":3,\"name\":\"n3\",\"distribution\":true}");
    apply("cluster_upsert",
          "{\"name\":\"c1\",\"group\":\"default\",\"main\":\"n3\",\"additional\":\"n2\"}");
    apply("stream_upsert",
          "{\"stream\":{\"uid\":\"r1\",\"name\":\"res\",\"reserve\":true,\"group\":\"default\"}}");
    apply("stream_assign", "{\"stream\":\"r1\",\"primary\":\"n2\",\"backup\":\"n3\"}");
    int before = g_nrec;
    duties();
    for (int i = before; i < g_nrec; i++) /* on the additional after a failover: stays */
        assert_string_not_equal(rec_arg(i, "stream"), "r1");
    flush();
    apply("setting_set", "{\"key\":\"failback\",\"value\":true}");
    before = g_nrec;
    duties();
    int k = rec_find(before, "r1");
    assert_string_equal(rec_arg(k, "primary"), "n3");
    assert_string_equal(rec_arg(k, "backup"), "n2");
    assert_string_equal(rec_arg(k, "if_primary"), "n2");
    flush();
    assert_placement("r1", "n3", "n2");
}

/* A write refused at once (out of memory: cl_cluster_write_ex returns
 * -ENOMEM and never calls back) does not leave the duties busy for ever:
 * the next run decides again. */
static void test_refused_write_retried(void **state)
{
    (void)state;
    apply("server_set_health", "{\"name\":\"n2\",\"health\":\"down\"}");
    add_stream("u1", "n2", "n3");
    g_write_fail = 1;
    assert_int_equal(duties(), 0);
    assert_int_equal(g_write_fail, 0); /* it was tried */
    assert_int_equal(ms_cl.duty_busy, 0);
    advance(250);
    report("n3");
    assert_int_equal(duties(), 1);
    assert_string_equal(rec_arg(0, "stream"), "u1");
    assert_string_equal(rec_arg(0, "primary"), "n3");
    flush();
    assert_placement("u1", "n3", NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_healthy_servers_get_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_silent_server_marked_down, setup, teardown),
        cmocka_unit_test_setup_teardown(test_down_after_ms_setting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grace_after_election, setup, teardown),
        cmocka_unit_test_setup_teardown(test_previous_leader_down_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_primary_on_down_server, setup, teardown),
        cmocka_unit_test_setup_teardown(test_placement_new_streams, setup, teardown),
        cmocka_unit_test_setup_teardown(test_placement_reserved_cluster, setup, teardown),
        cmocka_unit_test_setup_teardown(test_placement_draining, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrated_role_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_placement_settings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_write_retried, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
