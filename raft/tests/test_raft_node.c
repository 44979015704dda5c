/* ms_raft_t over real raft_uv TCP on loopback: single-node bootstrap,
 * post-election barrier, automatic schema, submit + dedup, restart from
 * the data dir, then a three-node cluster grown with add/assign, replicated
 * writes with equal checksums, and a graceful stop that hands leadership
 * over. Every wait is bounded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <signal.h>
#include <unistd.h>

#include "raft/commands.h"
#include "raft/fsm.h"
#include "raft/node.h"
#include "util/clock.h"

typedef struct {
    ms_fsm_t *fsm;
    ms_raft_t *r;
    char addr[64];
    int ready, stopped;
} member_t;

static uv_loop_t loop;
static uv_timer_t ticker;

static void tick_cb(uv_timer_t *t)
{
    (void)t;
}

/* Runs the loop until *flag (or pred) holds, at most ms milliseconds. */
static int run_until(int (*pred)(void *), void *arg, uint64_t ms)
{
    uint64_t end = uv_now(&loop) + ms;
    while (!pred(arg)) {
        if (uv_now(&loop) > end)
            return 0;
        uv_run(&loop, UV_RUN_ONCE);
    }
    return 1;
}

static int never(void *p)
{
    (void)p;
    return 0;
}

static int flag_set(void *p)
{
    return *(int *)p != 0;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t len = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &len);
    close(fd);
    return ntohs(sa.sin_port);
}

static void on_leader(void *ud, int ready)
{
    ((member_t *)ud)->ready = ready;
}

static void member_start(member_t *m, const char *dir, int join)
{
    snprintf(m->addr, sizeof m->addr, "127.0.0.1:%d", free_port());
    assert_int_equal(ms_fsm_new(&m->fsm), 0);
    ms_raft_cfg_t cfg = {0};
    cfg.data_dir = dir;
    cfg.address = m->addr;
    cfg.secret = "test cluster secret";
    cfg.join = join;
    cfg.on_leader = on_leader;
    cfg.ud = m;
    m->ready = m->stopped = 0;
    assert_int_equal(ms_raft_new(&loop, &cfg, m->fsm, &m->r), 0);
    assert_int_equal(ms_raft_start(m->r), 0);
}

static void stopped_cb(void *ud)
{
    ((member_t *)ud)->stopped = 1;
}

static void member_stop(member_t *m)
{
    ms_raft_stop(m->r, stopped_cb, m);
    assert_true(run_until(flag_set, &m->stopped, 10000));
    ms_raft_free(m->r);
    m->r = NULL;
}

typedef struct {
    int done, status;
    json_t *result;
} call_t;

static void submit_cb(void *ud, int status, json_t *result)
{
    call_t *c = ud;
    c->done = 1;
    c->status = status;
    c->result = json_incref(result);
}

static json_t *submit_text(member_t *m, const char *txt)
{
    call_t c = {0};
    assert_int_equal(ms_raft_submit(m->r, txt, strlen(txt), submit_cb, &c), 0);
    assert_true(run_until(flag_set, &c.done, 10000));
    assert_int_equal(c.status, 0);
    assert_non_null(c.result);
    return c.result;
}

static char *cmd_text(const char *op, const char *args)
{
    json_t *cmd = ms_cmd_new(op, json_loads(args, 0, NULL));
    char *t = ms_cmd_encode(cmd, NULL);
    json_decref(cmd);
    return t;
}

static int schema_ready(void *p)
{
    return ms_fsm_schema_version(((member_t *)p)->fsm) == MS_FSM_SCHEMA_LATEST;
}

static void barrier_cb(void *ud, int status)
{
    *(int *)ud = status == 0 ? 1 : -1;
}

static char tmpl[256];

static int setup(void **state)
{
    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    uv_timer_init(&loop, &ticker);
    uv_timer_start(&ticker, tick_cb, 10, 10);
    const char *t = getenv("TMPDIR");
    snprintf(tmpl, sizeof tmpl, "%s/ms-raft-XXXXXX", t && *t ? t : P_tmpdir);
    assert_non_null(mkdtemp(tmpl));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    uv_close((uv_handle_t *)&ticker, NULL);
    if (getenv("MS_DEBUG_HANDLES"))
        uv_print_all_handles(&loop, stderr);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0); /* no handle left behind */
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpl);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static void test_single_node_restart(void **state)
{
    (void)state;
    char dir[300];
    snprintf(dir, sizeof dir, "%s/n1", tmpl);
    member_t m = {0};
    member_start(&m, dir, 0);
    uint64_t id = ms_raft_id(m.r);
    assert_true(id != 0);
    assert_true(run_until(flag_set, &m.ready, 10000));
    assert_true(ms_raft_is_leader(m.r));
    assert_true(run_until(schema_ready, &m, 10000));

    char *txt = cmd_text("stream_upsert", "{\"stream\":{\"uid\":\"u1\",\"name\":\"cam1\"}}");
    json_t *r1 = submit_text(&m, txt);
    assert_true(json_is_true(json_object_get(r1, "ok")));
    json_t *r2 = submit_text(&m, txt); /* a client retry: same req_id */
    assert_true(json_is_true(json_object_get(r2, "duplicate")));
    json_decref(r1);
    json_decref(r2);
    free(txt);
    txt = cmd_text("stream_assign", "{\"stream\":\"cam1\",\"primary\":\"ghost\"}");
    r1 = submit_text(&m, txt); /* a rejection is a result, not a failure */
    assert_int_equal(json_integer_value(json_object_get(r1, "status")), 404);
    json_decref(r1);
    free(txt);
    assert_int_equal(ms_raft_submit(m.r, "{}", 2, submit_cb, NULL), -EINVAL);
    /* the req_id that matches the result is the top-level one, not nested
     * "req_id" keys and strings (submit scans the text for it) */
    const char *nested = "{\"v\":1,\"op\":\"stream_upsert\",\"req_id\" : \"top-1\",\"ts\":1000,"
                         "\"args\":{\"stream\":{\"uid\":\"u2\",\"name\":\"cam2\",\"req_id\":"
                         "\"nested-1\"},\"x\":[\"req_id\",{\"req_id\":\"n2\"},\"a\\\"req_id\\\":"
                         "\\\"n3\"]}}";
    r1 = submit_text(&m, nested);
    assert_true(json_is_true(json_object_get(r1, "ok")));
    json_decref(r1);
    r1 = submit_text(&m, nested); /* the same top-level req_id: deduplicated */
    assert_true(json_is_true(json_object_get(r1, "duplicate")));
    json_decref(r1);
    /* an escaped req_id is read by the JSON parser instead */
    r1 = submit_text(&m, "{\"v\":1,\"op\":\"setting_set\",\"ts\":1000,\"args\":{\"key\":\"k1\","
                         "\"value\":1},\"req_id\":\"esc\\u002d1\"}");
    assert_true(json_is_true(json_object_get(r1, "ok")));
    json_decref(r1);
    assert_int_equal(ms_raft_member_role(m.r, id), MS_RAFT_VOTER);
    assert_int_equal(ms_raft_member_role(m.r, id + 1), -1);

    int b = 0;
    assert_int_equal(ms_raft_barrier(m.r, barrier_cb, &b), 0);
    assert_true(run_until(flag_set, &b, 10000));
    assert_int_equal(b, 1);

    json_t *info = ms_raft_info_json(m.r);
    assert_string_equal(json_string_value(json_object_get(info, "state")), "leader");
    assert_int_equal(json_integer_value(json_object_get(info, "voters")), 1);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(info, "leader"), "id")),
                     (json_int_t)id);
    json_decref(info);
    char before[65], after[65];
    assert_int_equal(ms_fsm_checksum(m.fsm, before), 0);
    uint64_t applied = ms_fsm_applied(m.fsm);
    member_stop(&m);
    ms_fsm_free(m.fsm);

    /* restart from the data dir: same id, the log rebuilds the same state */
    member_t m2 = {0};
    member_start(&m2, dir, 0);
    assert_int_equal(ms_raft_id(m2.r), id);
    assert_true(run_until(flag_set, &m2.ready, 10000));
    assert_int_equal(ms_fsm_applied(m2.fsm), applied);
    assert_int_equal(ms_fsm_checksum(m2.fsm, after), 0);
    assert_string_equal(before, after);
    json_t *s = ms_fsm_get_stream(m2.fsm, "cam1");
    assert_non_null(s);
    json_decref(s);
    member_stop(&m2);
    ms_fsm_free(m2.fsm);
}

typedef struct {
    member_t *m;
    int n;
    uint64_t applied;
} group_t;

static int all_applied(void *p)
{
    group_t *g = p;
    for (int i = 0; i < g->n; i++)
        if (g->m[i].r && ms_fsm_applied(g->m[i].fsm) < g->applied)
            return 0;
    return 1;
}

static void change_cb(void *ud, int status)
{
    *(int *)ud = status == 0 ? 1 : -1;
}

static int other_ready(void *p)
{
    member_t *m = p;
    return m[1].ready || m[2].ready;
}

static void test_three_nodes(void **state)
{
    (void)state;
    member_t m[3] = {{0}};
    char dir[300];
    for (int i = 0; i < 3; i++) {
        snprintf(dir, sizeof dir, "%s/c%d", tmpl, i);
        member_start(&m[i], dir, i > 0);
    }
    assert_true(run_until(flag_set, &m[0].ready, 10000));
    assert_true(run_until(schema_ready, &m[0], 10000));
    for (int i = 1; i < 3; i++) {
        int done = 0;
        assert_int_equal(ms_raft_add(m[0].r, ms_raft_id(m[i].r), m[i].addr, change_cb, &done), 0);
        assert_true(run_until(flag_set, &done, 10000));
        assert_int_equal(done, 1);
        assert_int_equal(ms_raft_member_role(m[0].r, ms_raft_id(m[i].r)), MS_RAFT_SPARE);
        done = 0;
        assert_int_equal(
            ms_raft_assign(m[0].r, ms_raft_id(m[i].r), MS_RAFT_VOTER, change_cb, &done), 0);
        assert_true(run_until(flag_set, &done, 20000));
        assert_int_equal(done, 1);
        assert_int_equal(ms_raft_member_role(m[0].r, ms_raft_id(m[i].r)), MS_RAFT_VOTER);
    }
    for (int k = 0; k < 5; k++) {
        char args[128];
        snprintf(args, sizeof args, "{\"stream\":{\"uid\":\"u%d\",\"name\":\"cam%d\"}}", k, k);
        char *txt = cmd_text("stream_upsert", args);
        json_decref(submit_text(&m[0], txt));
        free(txt);
    }
    group_t g = {m, 3, ms_fsm_applied(m[0].fsm)};
    assert_true(run_until(all_applied, &g, 10000));
    char s0[65], si[65];
    assert_int_equal(ms_fsm_checksum(m[0].fsm, s0), 0);
    for (int i = 1; i < 3; i++) {
        assert_int_equal(ms_fsm_checksum(m[i].fsm, si), 0);
        assert_string_equal(s0, si);
        assert_int_equal(ms_raft_submit(m[i].r, "{}", 2, submit_cb, NULL), -EREMOTE);
    }
    json_t *info = ms_raft_info_json(m[1].r);
    assert_int_equal(json_integer_value(json_object_get(info, "voters")), 3);
    json_decref(info);

    /* followers know when they last heard from the leader (heartbeats every
     * 50 ms); the leader itself has no such time */
    uint64_t lid = 1;
    assert_int_equal(ms_raft_leader_contact_ms(m[0].r, &lid), 0);
    assert_int_equal(lid, 0);
    assert_false(run_until(never, NULL, 300)); /* the loop runs 300 ms */
    for (int i = 1; i < 3; i++) {
        int64_t at = ms_raft_leader_contact_ms(m[i].r, &lid);
        assert_int_equal(lid, ms_raft_id(m[0].r));
        assert_true(at > 0);
        assert_true(ms_mono_ms() - at >= 0);
        assert_true(ms_mono_ms() - at < 1000); /* ~50 ms unless the machine stalls */
    }

    /* graceful stop of the leader hands leadership to another voter */
    member_stop(&m[0]);
    assert_true(run_until(other_ready, m, 10000));
    member_t *nl = m[1].ready ? &m[1] : &m[2];
    char *txt = cmd_text("stream_remove", "{\"stream\":\"cam0\"}");
    json_t *res = submit_text(nl, txt);
    assert_true(json_is_true(json_object_get(res, "ok")));
    json_decref(res);
    free(txt);
    g.applied = ms_fsm_applied(nl->fsm);
    assert_true(run_until(all_applied, &g, 10000));
    assert_int_equal(ms_fsm_checksum(m[1].fsm, s0), 0);
    assert_int_equal(ms_fsm_checksum(m[2].fsm, si), 0);
    assert_string_equal(s0, si);
    member_stop(&m[1]);
    member_stop(&m[2]);
    for (int i = 0; i < 3; i++)
        ms_fsm_free(m[i].fsm);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* as the daemon does: peers close sockets */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_single_node_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_three_nodes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
