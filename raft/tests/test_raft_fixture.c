/* The state machine driven by libraft's in-memory cluster (raft_fixture):
 * election and replicated writes, equal checksums on every server,
 * snapshot install to a lagging follower, and a write whose leader is
 * lost mid-flight being applied at most once after the client's retry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <raft.h>
#include <raft/fixture.h>

#include "raft/commands.h"
#include "raft/fsm.h"
#include "raft/fsm_raft.h"

#define N 3

typedef struct {
    struct raft_fixture f;
    ms_fsm_t *fsm[N];
    struct raft_fsm rf[N];
    /* per server: how many times req_id "mid" was applied for real / as a
     * duplicate (from the fsm apply hook) */
    int mid[N][2]; /* [real, duplicate] */
} fx_t;

typedef struct {
    struct raft_apply req;
    int fired, status;
} apply_req_t;

static void hook(void *ud, const char *req_id, const char *op, json_t *res)
{
    int *counts = ud; /* [real, dup] */
    (void)op;
    if (req_id && strcmp(req_id, "mid") == 0) {
        if (json_is_true(json_object_get(res, "duplicate")))
            counts[1]++;
        else
            counts[0]++;
    }
}

static int setup(void **state)
{
    fx_t *x = calloc(1, sizeof *x);
    assert_non_null(x);
    assert_int_equal(raft_fixture_init(&x->f), 0);
    for (unsigned i = 0; i < N; i++) {
        assert_int_equal(ms_fsm_new(&x->fsm[i]), 0);
        ms_fsm_raft_init(&x->rf[i], x->fsm[i]);
        assert_int_equal(raft_fixture_grow(&x->f, &x->rf[i]), 0);
        /* the fixture traces every step to stderr: keep it for debugging */
        if (!getenv("MS_RAFT_TRACE"))
            raft_fixture_get(&x->f, i)->tracer = NULL;
    }
    for (unsigned i = 0; i < N; i++)
        ms_fsm_set_apply_hook(x->fsm[i], hook, x->mid[i]);
    struct raft_configuration conf;
    assert_int_equal(raft_fixture_configuration(&x->f, N, &conf), 0);
    assert_int_equal(raft_fixture_bootstrap(&x->f, &conf), 0);
    raft_configuration_close(&conf);
    assert_int_equal(raft_fixture_start(&x->f), 0);
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    fx_t *x = *state;
    raft_fixture_close(&x->f);
    for (unsigned i = 0; i < N; i++)
        ms_fsm_free(x->fsm[i]);
    free(x);
    return 0;
}

static void apply_cb(struct raft_apply *req, int status, void *result)
{
    apply_req_t *a = req->data;
    (void)result;
    a->fired = 1;
    a->status = status;
}

/* Submits op(args) on server i; returns the entry's index. */
static raft_index submit(fx_t *x, unsigned i, apply_req_t *a, const char *op, const char *args,
                         const char *req_id)
{
    json_t *cmd = req_id ? ms_cmd_new_at(op, json_loads(args, 0, NULL), req_id, 1700000000000)
                         : ms_cmd_new(op, json_loads(args, 0, NULL));
    assert_non_null(cmd);
    size_t len;
    char *txt = ms_cmd_encode(cmd, &len);
    json_decref(cmd);
    struct raft_buffer buf;
    buf.len = len;
    buf.base = raft_malloc(len);
    memcpy(buf.base, txt, len);
    free(txt);
    memset(a, 0, sizeof *a);
    a->req.data = a;
    struct raft *r = raft_fixture_get(&x->f, i);
    assert_int_equal(raft_apply(r, &a->req, &buf, 1, apply_cb), 0);
    return raft_last_index(r);
}

static void assert_same_state(fx_t *x)
{
    char s0[65], si[65];
    assert_int_equal(ms_fsm_checksum(x->fsm[0], s0), 0);
    for (unsigned i = 1; i < N; i++) {
        assert_int_equal(ms_fsm_checksum(x->fsm[i], si), 0);
        assert_string_equal(s0, si);
        assert_int_equal(ms_fsm_applied(x->fsm[i]), ms_fsm_applied(x->fsm[0]));
    }
}

static unsigned elect(fx_t *x)
{
    assert_true(raft_fixture_step_until_has_leader(&x->f, 10000));
    unsigned l = raft_fixture_leader_index(&x->f);
    assert_true(l < N);
    return l;
}

static void test_election_and_writes(void **state)
{
    fx_t *x = *state;
    static apply_req_t reqs[32];
    unsigned l = elect(x);
    raft_index last = submit(x, l, &reqs[0], "schema_init", "{\"version\":2}", NULL);
    submit(x, l, &reqs[1], "server_upsert", "{\"id\":1,\"name\":\"n1\"}", NULL);
    submit(x, l, &reqs[2], "server_upsert", "{\"id\":2,\"name\":\"n2\"}", NULL);
    for (int k = 0; k < 20; k++) {
        char args[256];
        snprintf(
            args, sizeof args,
            "{\"stream\":{\"uid\":\"u%d\",\"name\":\"cam%d\",\"url\":\"rtsp://192.0.2.1/%d\"}}", k,
            k, k);
        last = submit(x, l, &reqs[3 + k], "stream_upsert", args, NULL);
    }
    last = submit(x, l, &reqs[23], "stream_assign",
                  "{\"stream\":\"cam7\",\"primary\":\"n1\",\"backup\":\"n2\"}", NULL);
    /* a rejected command replicates and is rejected everywhere alike */
    last =
        submit(x, l, &reqs[24], "stream_assign", "{\"stream\":\"cam7\",\"primary\":\"n9\"}", NULL);
    assert_true(raft_fixture_step_until_applied(&x->f, N, last, 10000));
    for (int k = 0; k < 25; k++) {
        assert_true(reqs[k].fired);
        assert_int_equal(reqs[k].status, 0);
    }
    assert_same_state(x);
    for (unsigned i = 0; i < N; i++) {
        json_t *all = ms_fsm_list(x->fsm[i], "streams");
        assert_int_equal(json_array_size(all), 20);
        json_decref(all);
        json_t *s = ms_fsm_get_stream(x->fsm[i], "cam7");
        assert_string_equal(
            json_string_value(json_object_get(json_object_get(s, "placement"), "backup")), "n2");
        json_decref(s);
    }
    /* a follower refuses writes */
    unsigned fol = (l + 1) % N;
    struct raft_buffer buf = {raft_malloc(2), 2};
    memcpy(buf.base, "{}", 2);
    struct raft_apply req;
    assert_int_equal(raft_apply(raft_fixture_get(&x->f, fol), &req, &buf, 1, NULL), RAFT_NOTLEADER);
    raft_free(buf.base);
}

static void test_snapshot_install(void **state)
{
    fx_t *x = *state;
    static apply_req_t reqs[64];
    for (unsigned i = 0; i < N; i++) {
        raft_set_snapshot_threshold(raft_fixture_get(&x->f, i), 8);
        raft_set_snapshot_trailing(raft_fixture_get(&x->f, i), 2);
    }
    unsigned l = elect(x);
    unsigned lag = (l + 1) % N;
    raft_index last = submit(x, l, &reqs[0], "schema_init", "{\"version\":1}", NULL);
    assert_true(raft_fixture_step_until_applied(&x->f, N, last, 10000));
    /* cut one follower off while the others go far ahead (snapshots) */
    for (unsigned j = 0; j < N; j++) {
        if (j != lag) {
            raft_fixture_disconnect(&x->f, lag, j);
            raft_fixture_disconnect(&x->f, j, lag);
        }
    }
    for (int k = 0; k < 40; k++) {
        char args[128];
        snprintf(args, sizeof args, "{\"name\":\"g%d\",\"subnets\":[\"10.%d.0.0/16\"]}", k, k);
        last = submit(x, l, &reqs[1 + k], "group_upsert", args, NULL);
    }
    assert_true(raft_fixture_step_until_applied(&x->f, l, last, 10000));
    assert_true(ms_fsm_applied(x->fsm[lag]) < ms_fsm_applied(x->fsm[l]));
    for (unsigned j = 0; j < N; j++) {
        if (j != lag) {
            raft_fixture_reconnect(&x->f, lag, j);
            raft_fixture_reconnect(&x->f, j, lag);
        }
    }
    assert_true(raft_fixture_step_until_applied(&x->f, N, last, 20000));
    /* the follower caught up through InstallSnapshot, i.e. fsm restore */
    assert_true(raft_fixture_n_recv(&x->f, lag, RAFT_INSTALL_SNAPSHOT) > 0);
    assert_same_state(x);
    json_t *g = ms_fsm_list(x->fsm[lag], "groups");
    assert_int_equal(json_array_size(g), 40);
    json_decref(g);
}

static bool other_leader(struct raft_fixture *f, void *arg)
{
    unsigned old = *(unsigned *)arg;
    for (unsigned i = 0; i < f->n; i++)
        if (i != old && raft_state(raft_fixture_get(f, i)) == RAFT_LEADER)
            return true;
    return false;
}

static void test_leadership_lost_mid_write(void **state)
{
    fx_t *x = *state;
    static apply_req_t reqs[8];
    unsigned l = elect(x);
    raft_index last = submit(x, l, &reqs[0], "schema_init", "{\"version\":1}", NULL);
    assert_true(raft_fixture_step_until_applied(&x->f, N, last, 10000));

    /* The leader's entry reaches the followers but their answers are lost:
     * the leader cannot commit. Then it is cut off, steps down, and the
     * client sees an error while the followers elect a new leader. */
    for (unsigned j = 0; j < N; j++)
        if (j != l)
            raft_fixture_saturate(&x->f, j, l);
    const char *args = "{\"stream\":{\"uid\":\"u1\",\"name\":\"cam1\"}}";
    raft_index idx = submit(x, l, &reqs[1], "stream_upsert", args, "mid");
    for (unsigned j = 0; j < N; j++) {
        if (j != l) {
            assert_true(raft_fixture_step_until_delivered(&x->f, l, j, 5000));
            assert_true(raft_last_index(raft_fixture_get(&x->f, j)) >= idx);
        }
    }
    for (unsigned j = 0; j < N; j++) {
        if (j != l) {
            raft_fixture_desaturate(&x->f, j, l);
            raft_fixture_disconnect(&x->f, j, l);
            raft_fixture_disconnect(&x->f, l, j);
        }
    }
    assert_true(raft_fixture_step_until(&x->f, other_leader, &l, 20000));
    assert_int_not_equal(raft_state(raft_fixture_get(&x->f, l)), RAFT_LEADER);
    assert_true(reqs[1].fired);
    assert_int_not_equal(reqs[1].status, 0);

    /* The client retries with the same req_id on the new leader. */
    unsigned nl = N;
    for (unsigned i = 0; i < N; i++)
        if (raft_state(raft_fixture_get(&x->f, i)) == RAFT_LEADER)
            nl = i;
    assert_true(nl < N && nl != l);
    last = submit(x, nl, &reqs[2], "stream_upsert", args, "mid");
    for (unsigned j = 0; j < N; j++) {
        if (j != l) {
            raft_fixture_reconnect(&x->f, j, l);
            raft_fixture_reconnect(&x->f, l, j);
        }
    }
    assert_true(raft_fixture_step_until_applied(&x->f, N, last, 20000));
    assert_true(reqs[2].fired);
    assert_int_equal(reqs[2].status, 0);

    /* Applied exactly once on every server (the original entry committed
     * under the new leader, the retry was answered from the dedup table). */
    for (unsigned i = 0; i < N; i++) {
        /* both entries are in every log: one real apply, one duplicate */
        assert_int_equal(x->mid[i][0], 1);
        assert_int_equal(x->mid[i][1], 1);
        json_t *s = ms_fsm_get_stream(x->fsm[i], "cam1");
        assert_non_null(s);
        assert_int_equal(
            json_integer_value(json_object_get(json_object_get(s, "placement"), "rev")), 1);
        json_decref(s);
    }
    assert_same_state(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_election_and_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_install, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leadership_lost_mid_write, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
