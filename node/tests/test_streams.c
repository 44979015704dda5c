/* Stream registry and lifecycle on real workers, with real RTSP clients
 * pointed at a loopback port where nothing listens: lookups by name and uid,
 * name conflicts, rename, suspend/disabled status, source restart on a URL
 * change, removal and shutdown (every stream finalized, workers stop with no
 * handle left). Client starts on one worker are spaced (START_STAGGER_MS in
 * node/streams.c): measured on a loopback listener, with removals, suspends
 * and URL changes of streams still waiting for their slot. */
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

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include "node/streams.h"
#include "util/clock.h"

static ms_stream_cfg_t mkcfg(const char *uid, const char *name, const char *url)
{
    ms_stream_cfg_t c;
    ms_stream_cfg_defaults(&c);
    snprintf(c.uid, sizeof c.uid, "%s", uid);
    snprintf(c.name, sizeof c.name, "%s", name);
    snprintf(c.url, sizeof c.url, "%s", url);
    c.reconnect_interval_ms = 100;
    c.reconnect_max_interval_ms = 200;
    return c;
}

/* Polls the status until pred holds (bounded: 5 s). */
static int wait_state(const char *id, ms_stream_state_t want)
{
    for (int i = 0; i < 500; i++) {
        ms_stream_t *s = ms_streams_find(id);
        if (s) {
            ms_stream_status_t st;
            ms_stream_get_status(s, &st);
            ms_stream_unref(s);
            if (st.src.state == want)
                return 1;
        }
        usleep(10000);
    }
    return 0;
}

static void test_lifecycle(void **state)
{
    (void)state;
    ms_workers_t *ws = ms_workers_start(2);
    assert_non_null(ws);
    ms_node_cfg_t node;
    ms_node_cfg_defaults(&node);
    snprintf(node.name, sizeof node.name, "n1");
    assert_int_equal(ms_streams_init(ws, &node), 0);

    /* port 9 on loopback: connection refused */
    ms_stream_cfg_t a = mkcfg("uid-a", "cam-a", "rtsp://127.0.0.1:9/a");
    ms_stream_cfg_t b = mkcfg("uid-b", "cam-b", "rtsp://127.0.0.1:9/b");
    ms_stream_cfg_t dup = mkcfg("uid-x", "cam-a", "rtsp://127.0.0.1:9/x");
    assert_int_equal(ms_streams_apply(&a, MS_RUN_ACTIVE), 0);
    assert_int_equal(ms_streams_apply(&b, MS_RUN_SUSPEND), 0);
    assert_int_equal(ms_streams_apply(&dup, MS_RUN_ACTIVE), -EEXIST);

    ms_stream_t *s = ms_streams_find("cam-a");
    assert_non_null(s);
    ms_stream_t *s2 = ms_streams_find("uid-a");
    assert_ptr_equal(s, s2);
    ms_stream_unref(s2);
    assert_null(ms_streams_find("nope"));
    assert_int_equal(ms_stream_run_state(s), MS_RUN_ACTIVE);
    assert_non_null(ms_stream_hub(s));
    ms_stream_cfg_t got;
    assert_int_equal(ms_stream_get_cfg(s, &got), 0);
    assert_string_equal(got.url, "rtsp://127.0.0.1:9/a");
    ms_stream_cfg_free(&got);

    /* refused connections: the client reports inactive/disconnected */
    assert_true(wait_state("cam-a", MS_STATE_INACTIVE));
    ms_stream_status_t st;
    ms_stream_get_status(s, &st);
    assert_string_equal(st.role, "primary");
    assert_string_equal(st.server, "n1");
    assert_int_equal(st.src.characteristic, MS_CHAR_DISCONNECTED);
    assert_int_equal(st.uptime_s, 0);
    assert_int_equal(st.hls_ready, 0);
    ms_stream_unref(s);

    /* suspended stream: state suspend, no client */
    assert_true(wait_state("cam-b", MS_STATE_SUSPEND));
    /* disabled: suspend with reason "disabled", even when asked for ACTIVE */
    b.enabled = 0;
    assert_int_equal(ms_streams_apply(&b, MS_RUN_ACTIVE), 0);
    s = ms_streams_find("uid-b");
    assert_int_equal(ms_stream_run_state(s), MS_RUN_SUSPEND);
    ms_stream_get_status(s, &st);
    assert_int_equal(st.src.state, MS_STATE_SUSPEND);
    assert_string_equal(st.src.reason, "disabled");
    ms_stream_unref(s);

    /* rename: old name gone, new name and uid found, same object */
    s = ms_streams_find("uid-b");
    snprintf(b.name, sizeof b.name, "cam-b2");
    assert_int_equal(ms_streams_apply(&b, MS_RUN_SUSPEND), 0);
    assert_null(ms_streams_find("cam-b"));
    s2 = ms_streams_find("cam-b2");
    assert_ptr_equal(s, s2);
    ms_stream_unref(s);
    ms_stream_unref(s2);

    /* URL change restarts the source; the stream object stays */
    s = ms_streams_find("cam-a");
    snprintf(a.url, sizeof a.url, "rtsp://127.0.0.1:9/a2");
    assert_int_equal(ms_streams_apply(&a, MS_RUN_ACTIVE), 0);
    usleep(100000);
    assert_true(wait_state("cam-a", MS_STATE_INACTIVE));
    s2 = ms_streams_find("cam-a");
    assert_ptr_equal(s, s2);
    ms_stream_unref(s2);

    ms_stream_t **list;
    size_t n = ms_streams_list(&list);
    assert_int_equal(n, 2);
    ms_stream_get_cfg(list[0], &got);
    assert_string_equal(got.name, "cam-a"); /* sorted by name */
    ms_stream_cfg_free(&got);
    for (size_t i = 0; i < n; i++)
        ms_stream_unref(list[i]);
    free(list);

    /* remove: gone from lookups at once; our reference stays usable */
    assert_int_equal(ms_streams_remove("uid-a"), 0);
    assert_int_equal(ms_streams_remove("uid-a"), -ENOENT);
    assert_null(ms_streams_find("cam-a"));
    ms_stream_get_status(s, &st); /* still valid memory */
    assert_int_equal(ms_stream_run_state(s), MS_RUN_STOPPED);
    ms_stream_unref(s);

    ms_streams_shutdown();
    ms_workers_stop(ws);
    ms_node_cfg_free(&node);
}

/* Loopback listener on an ephemeral port; returns the fd (port in *port). */
static int listen_any(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(fd, 256), 0);
    socklen_t len = sizeof sa;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

#define NSTAG 40

/* Accepts up to want connections (bounded: deadline_ms); records the time of
 * each accept (poll woken at once, so close to the connect). */
static int accept_n(int lfd, int *fds, int64_t *at, int want, int deadline_ms)
{
    int n = 0;
    int64_t end = ms_mono_us() + (int64_t)deadline_ms * 1000;
    while (n < want && ms_mono_us() < end) {
        struct pollfd p = {.fd = lfd, .events = POLLIN};
        if (poll(&p, 1, 5) <= 0)
            continue;
        for (int fd; n < want && (fd = accept(lfd, NULL, NULL)) >= 0; n++) {
            fds[n] = fd;
            at[n] = ms_mono_us();
        }
    }
    return n;
}

static void test_stagger(void **state)
{
    (void)state;
    ms_workers_t *ws = ms_workers_start(1);
    assert_non_null(ws);
    ms_node_cfg_t node;
    ms_node_cfg_defaults(&node);
    snprintf(node.name, sizeof node.name, "n1");
    assert_int_equal(ms_streams_init(ws, &node), 0);
    int port;
    int lfd = listen_any(&port);
    char url[64], uid[32], name[32];
    snprintf(url, sizeof url, "rtsp://127.0.0.1:%d/cam", port);

    /* NSTAG streams at once on one worker: their connections are spread over
     * (NSTAG - 1) * 20 ms; the listener answers nothing (OPTIONS pending). */
    int64_t t0 = ms_mono_us();
    for (int i = 0; i < NSTAG; i++) {
        snprintf(uid, sizeof uid, "u%d", i);
        snprintf(name, sizeof name, "c%d", i);
        ms_stream_cfg_t c = mkcfg(uid, name, url);
        assert_int_equal(ms_streams_apply(&c, MS_RUN_ACTIVE), 0);
        ms_stream_cfg_free(&c);
    }
    int fds[NSTAG];
    int64_t at[NSTAG];
    int n = accept_n(lfd, fds, at, 5, 4000);
    assert_int_equal(n, 5);
    /* still waiting for its slot: initialization, not inactive */
    ms_stream_t *s = ms_streams_find("c39");
    assert_non_null(s);
    ms_stream_status_t st;
    ms_stream_get_status(s, &st);
    assert_int_equal(st.src.state, MS_STATE_INITIALIZATION);
    ms_stream_unref(s);
    n += accept_n(lfd, fds + n, at + n, NSTAG - n, 4000);
    assert_int_equal(n, NSTAG);
    int64_t span_ms = (at[NSTAG - 1] - t0) / 1000;
    int64_t first_ms = (at[0] - t0) / 1000;
    printf("%d connections: first after %lld ms, last after %lld ms\n", NSTAG, (long long)first_ms,
           (long long)span_ms);
    assert_true(first_ms < 150);
    assert_true(span_ms >= (NSTAG - 1) * 20 * 3 / 4); /* 585 ms of 780 */
    assert_true(span_ms < 3000);
    for (int i = 0; i < n; i++)
        close(fds[i]);

    /* Streams added while the slots are taken, then removed / suspended /
     * given a new URL before their timer fires: no handle leaks, no late
     * start of a removed stream (ASan and the workers' loop close check).
     * A second listener: the clients above reconnect to the first one. */
    int port2;
    int lfd2 = listen_any(&port2);
    snprintf(url, sizeof url, "rtsp://127.0.0.1:%d/cam", port2);
    for (int i = 0; i < 20; i++) {
        snprintf(uid, sizeof uid, "v%d", i);
        snprintf(name, sizeof name, "d%d", i);
        ms_stream_cfg_t c = mkcfg(uid, name, url);
        assert_int_equal(ms_streams_apply(&c, MS_RUN_ACTIVE), 0);
        if (i % 4 == 1)
            assert_int_equal(ms_streams_remove(uid), 0);
        else if (i % 4 == 2)
            assert_int_equal(ms_streams_apply(&c, MS_RUN_SUSPEND), 0);
        else if (i % 4 == 3) {
            snprintf(c.url, sizeof c.url, "rtsp://127.0.0.1:%d/other", port2);
            assert_int_equal(ms_streams_apply(&c, MS_RUN_ACTIVE), 0);
        }
        ms_stream_cfg_free(&c);
    }
    usleep(50000);
    for (int i = 0; i < 20; i += 4) { /* removed while waiting */
        snprintf(uid, sizeof uid, "v%d", i + 1);
        assert_null(ms_streams_find(uid));
    }
    s = ms_streams_find("d2");
    ms_stream_get_status(s, &st);
    assert_int_equal(st.src.state, MS_STATE_SUSPEND);
    ms_stream_unref(s);
    /* 10 of the 20 still start (d0, d3, d4, d7, ...), the others never */
    n = accept_n(lfd2, fds, at, 11, 1500);
    assert_int_equal(n, 10);
    for (int i = 0; i < n; i++)
        close(fds[i]);

    /* shutdown with timers still armed */
    for (int i = 0; i < 10; i++) {
        snprintf(uid, sizeof uid, "w%d", i);
        snprintf(name, sizeof name, "e%d", i);
        ms_stream_cfg_t c = mkcfg(uid, name, url);
        assert_int_equal(ms_streams_apply(&c, MS_RUN_ACTIVE), 0);
        ms_stream_cfg_free(&c);
    }
    ms_streams_shutdown();
    ms_workers_stop(ws);
    ms_node_cfg_free(&node);
    close(lfd);
    close(lfd2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lifecycle),
        cmocka_unit_test(test_stagger),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
