/* RTMP client (publisher) state machine against the repo's own server
 * state machine (media/rtmp/conn.h), URL parsing, and refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "media/rtmp/amf0.h"
#include "media/rtmp/chunk.h"
#include "media/rtmp/client.h"
#include "media/rtmp/conn.h"

/* Moves bytes both ways until nothing is left; returns the first server
 * event (or NONE). Bytes after an event are fed on the next call. */
static int pump(ms_rtmp_client_t *cl, ms_rtmp_conn_t *sv, ms_buf_t *pend, ms_rtmp_ev_t *ev)
{
    for (int i = 0; i < 100; i++) {
        int moved = 0;
        if (cl->out.len) {
            ms_buf_append(pend, cl->out.data, cl->out.len);
            ms_buf_reset(&cl->out);
        }
        while (pend->len) {
            size_t used = 0;
            int r = ms_rtmp_conn_feed(sv, pend->data, pend->len, &used, ev);
            memmove(pend->data, pend->data + used, pend->len - used);
            pend->len -= used;
            moved = 1;
            if (r != 0)
                return r;
            if (used == 0)
                break;
        }
        if (sv->out.len) {
            int r = ms_rtmp_client_feed(cl, sv->out.data, sv->out.len);
            ms_buf_reset(&sv->out);
            if (r < 0)
                return r;
            moved = 1;
        }
        if (!moved && !cl->out.len)
            return 0;
    }
    return -ELOOP;
}

static void test_publish_against_server(void **st)
{
    (void)st;
    ms_rtmp_client_t cl;
    ms_rtmp_conn_t sv;
    ms_buf_t pend = MS_BUF_INIT;
    ms_rtmp_ev_t ev;
    ms_rtmp_client_init(&cl, "live", "rtmp://127.0.0.1:1935/live", "cam1?key=k");
    ms_rtmp_conn_init(&sv, 0);
    assert_int_equal(cl.out.len, 1 + 1536);
    assert_int_equal(pump(&cl, &sv, &pend, &ev), 1);
    assert_int_equal(ev.type, MS_RTMP_EV_PUBLISH);
    assert_string_equal(sv.app, "live");
    assert_string_equal(sv.tc_url, "rtmp://127.0.0.1:1935/live");
    assert_string_equal(sv.name, "cam1");
    assert_string_equal(sv.query, "key=k");
    assert_int_equal(cl.state, MS_RTMPC_PUBLISH);
    ms_rtmp_conn_publish_ok(&sv);
    assert_int_equal(pump(&cl, &sv, &pend, &ev), 0);
    assert_int_equal(cl.state, MS_RTMPC_PUBLISHING);
    assert_int_equal(cl.stream_id, sv.stream_id);

    /* a video message larger than one chunk reaches the server whole */
    uint8_t body[10000];
    for (size_t i = 0; i < sizeof body; i++)
        body[i] = (uint8_t)i;
    ms_rtmp_client_send_media(&cl, MS_RTMP_VIDEO, 1234, body, sizeof body);
    assert_int_equal(pump(&cl, &sv, &pend, &ev), 1);
    assert_int_equal(ev.type, MS_RTMP_EV_MEDIA);
    assert_int_equal(ev.msg_type, MS_RTMP_VIDEO);
    assert_int_equal(ev.ts_ms, 1234);
    assert_int_equal(ev.len, sizeof body);
    assert_memory_equal(ev.data, body, sizeof body);
    ms_rtmp_client_send_media(&cl, MS_RTMP_AUDIO, 1240, body, 20);
    assert_int_equal(pump(&cl, &sv, &pend, &ev), 1);
    assert_int_equal(ev.msg_type, MS_RTMP_AUDIO);
    assert_int_equal(ev.len, 20);

    ms_rtmp_client_free(&cl);
    ms_rtmp_conn_free(&sv);
    ms_buf_free(&pend);
}

static void test_publish_refused(void **st)
{
    (void)st;
    ms_rtmp_client_t cl;
    ms_rtmp_conn_t sv;
    ms_buf_t pend = MS_BUF_INIT;
    ms_rtmp_ev_t ev;
    ms_rtmp_client_init(&cl, "live", "rtmp://h/live", "cam1");
    ms_rtmp_conn_init(&sv, 0);
    assert_int_equal(pump(&cl, &sv, &pend, &ev), 1);
    ms_rtmp_conn_refuse(&sv, "NetStream.Publish.BadName", "already publishing");
    assert_int_equal(pump(&cl, &sv, &pend, &ev), -ECONNREFUSED);
    assert_int_equal(cl.state, MS_RTMPC_FAILED);
    assert_non_null(strstr(cl.error, "NetStream.Publish.BadName"));
    assert_non_null(strstr(cl.error, "already publishing"));
    ms_rtmp_client_free(&cl);
    ms_rtmp_conn_free(&sv);
    ms_buf_free(&pend);
}

static void test_bad_handshake(void **st)
{
    (void)st;
    ms_rtmp_client_t cl;
    ms_rtmp_client_init(&cl, "live", "rtmp://h/live", "cam1");
    const uint8_t http[] = "HTTP/1.1 400 Bad Request\r\n";
    assert_int_equal(ms_rtmp_client_feed(&cl, http, sizeof http - 1), -EPROTO);
    assert_int_equal(cl.state, MS_RTMPC_FAILED);
    assert_true(cl.error[0] != '\0');
    ms_rtmp_client_free(&cl);
}

static void test_url_parse(void **st)
{
    (void)st;
    ms_rtmp_url_t u;
    assert_int_equal(ms_rtmp_url_parse("rtmp://127.0.0.1:19350/live/cam1", &u), 0);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 19350);
    assert_string_equal(u.app, "live");
    assert_string_equal(u.name, "cam1");
    assert_string_equal(u.tc_url, "rtmp://127.0.0.1:19350/live");
    assert_int_equal(ms_rtmp_url_parse("rtmp://example.com/a/b/c?key=1", &u), 0);
    assert_string_equal(u.host, "example.com");
    assert_int_equal(u.port, 1935);
    assert_string_equal(u.app, "a/b");
    assert_string_equal(u.name, "c?key=1");
    assert_int_equal(ms_rtmp_url_parse("rtmp://[::1]:2000/live/x", &u), 0);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 2000);
    const char *bad[] = {"http://h/live/x", "rtmp://h/live",   "rtmp://h/live/",
                         "rtmp:///live/x",  "rtmp://h:0/a/b",  "rtmp://h:70000/a/b",
                         "rtmp://h:x/a/b",  "rtmp://h/a/b c",  "rtmp://h//b",
                         "rtmp://u@h/a/b",  "rtmp://[::1/a/b", NULL};
    for (int i = 0; bad[i]; i++)
        assert_int_equal(ms_rtmp_url_parse(bad[i], &u), -EINVAL);
    assert_int_equal(ms_rtmp_url_parse(NULL, &u), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_publish_against_server),
        cmocka_unit_test(test_publish_refused),
        cmocka_unit_test(test_bad_handshake),
        cmocka_unit_test(test_url_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
