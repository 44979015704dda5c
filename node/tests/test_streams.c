/* Stream registry and lifecycle on real workers, with real RTSP clients
 * pointed at a loopback port where nothing listens: lookups by name and uid,
 * name conflicts, rename, suspend/disabled status, source restart on a URL
 * change, removal and shutdown (every stream finalized, workers stop with no
 * handle left). */
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

#include "node/streams.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lifecycle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
