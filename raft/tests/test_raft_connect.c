/* The connect timeout of the raft transport (raft/transport.c): a peer
 * that drops SYNs silently (as one cut off by a partition does) is reached
 * soon after it comes back, instead of at the kernel's next SYN
 * retransmission (1, 3, 7, 15 s after the first).
 *
 * The silent peer is a loopback listener whose accept queue is full: Linux
 * drops further SYNs without an answer. A leader assigns a standby at that
 * address; after ~7.5 s the listener goes and the real member starts there.
 * Without the timeout the pending connect would next retry at 15 s (7.5 s
 * later); with it the standby has caught up within 3 s. Every wait is
 * bounded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include "raft/commands.h"
#include "raft/fsm.h"
#include "raft/node.h"

typedef struct {
    ms_fsm_t *fsm;
    ms_raft_t *r;
    char addr[64];
    int ready, stopped;
} member_t;

static uv_loop_t loop;
static uv_timer_t ticker;
static char tmpl[256];

static void tick_cb(uv_timer_t *t)
{
    (void)t;
}

/* Runs the loop until pred holds, at most ms milliseconds. */
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

static int flag_set(void *p)
{
    return *(int *)p != 0;
}

static int never(void *p)
{
    (void)p;
    return 0;
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

static void member_new(member_t *m, const char *dir, int join, int port)
{
    snprintf(m->addr, sizeof m->addr, "127.0.0.1:%d", port);
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
    ms_fsm_free(m->fsm);
}

static void change_cb(void *ud, int status)
{
    *(int *)ud = status == 0 ? 1 : -1;
}

static int schema_ready(void *p)
{
    return ms_fsm_schema_version(((member_t *)p)->fsm) == MS_FSM_SCHEMA_LATEST;
}

typedef struct {
    member_t *leader, *follower;
} pair_t;

static int caught_up(void *p)
{
    pair_t *pr = p;
    return ms_fsm_applied(pr->follower->fsm) > 0 &&
           ms_fsm_applied(pr->follower->fsm) == ms_fsm_applied(pr->leader->fsm);
}

/* A listener on 127.0.0.1:port whose accept queue is full (backlog 0, two
 * connections never accepted): further SYNs get no answer. fds[0] is the
 * listener. Returns 0 when a probe connect indeed hangs. */
static int black_hole(int port, int fds[3])
{
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)port);
    int one = 1;
    fds[0] = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(fds[0], SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fds[0], (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fds[0], 0) != 0)
        return -1;
    for (int i = 1; i < 3; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        (void)connect(fds[i], (struct sockaddr *)&sa, sizeof sa);
    }
    usleep(100 * 1000);
    int probe = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int rc = connect(probe, (struct sockaddr *)&sa, sizeof sa);
    struct pollfd p = {.fd = probe, .events = POLLOUT};
    int hung = rc != 0 && errno == EINPROGRESS && poll(&p, 1, 400) == 0;
    close(probe);
    return hung ? 0 : -1;
}

static void test_silent_peer_reached_after_it_returns(void **state)
{
    (void)state;
    char dir[300];
    member_t a = {0}, b = {0};
    snprintf(dir, sizeof dir, "%s/a", tmpl);
    member_new(&a, dir, 0, free_port());
    assert_int_equal(ms_raft_start(a.r), 0);
    assert_true(run_until(flag_set, &a.ready, 10000));
    assert_true(run_until(schema_ready, &a, 10000));

    int port = free_port(), bh[3] = {-1, -1, -1};
    if (black_hole(port, bh) != 0) {
        for (int i = 0; i < 3; i++)
            if (bh[i] >= 0)
                close(bh[i]);
        member_stop(&a);
        skip(); /* this kernel answers or refuses: no silent peer to test with */
    }
    snprintf(dir, sizeof dir, "%s/b", tmpl);
    member_new(&b, dir, 1, port); /* created (id known), not started yet */

    int done = 0;
    assert_int_equal(ms_raft_add(a.r, ms_raft_id(b.r), b.addr, change_cb, &done), 0);
    assert_true(run_until(flag_set, &done, 10000));
    assert_int_equal(done, 1);
    done = 0; /* the leader starts replicating to it: its connect hangs */
    assert_int_equal(ms_raft_assign(a.r, ms_raft_id(b.r), MS_RAFT_STANDBY, change_cb, &done), 0);
    assert_false(run_until(never, NULL, 7500));

    for (int i = 0; i < 3; i++)
        close(bh[i]);
    assert_int_equal(ms_raft_start(b.r), 0);
    uint64_t t0 = uv_now(&loop);
    pair_t pr = {&a, &b};
    assert_true(run_until(caught_up, &pr, 15000));
    uint64_t took = uv_now(&loop) - t0;
    printf("standby caught up %llu ms after the silent peer came back\n", (unsigned long long)took);
    assert_true(took < 3000);
    assert_true(run_until(flag_set, &done, 10000));
    assert_int_equal(done, 1);

    member_stop(&b);
    member_stop(&a);
}

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
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0); /* no handle left behind */
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpl);
    assert_int_equal(system(cmd), 0);
    return 0;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* as the daemon does: peers close sockets */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_silent_peer_reached_after_it_returns, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
