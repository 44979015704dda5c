/* The node side of RTSP redirects (node/rtsp_redirect.h): the table of the
 * servers' RTSP addresses taken from their state rows, and no redirect
 * while the node runs no cluster. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "node/rtsp_redirect.h"

static void test_addresses(void **state)
{
    (void)state;
    json_t *rows = json_loads(
        "[{\"name\":\"n1\",\"addresses\":[\"http://127.0.0.1:8080\",\"rtsp://127.0.0.1:8554\","
        "\"127.0.0.1:7000\"]},"
        " {\"name\":\"n2\",\"addresses\":[\"http://10.0.0.2:8080\",\"rtsp://10.0.0.2:0\"]},"
        " {\"name\":\"n3\",\"addresses\":[]},"
        " {\"name\":\"n4\",\"addresses\":[\"rtsp://[::1]:9554\"]},"
        " {\"name\":\"n5\",\"addresses\":[\"rtsp://h:x\",\"rtsp://h:70000\",\"rtsp://h:5/p\","
        "\"rtsp://h:554\"]},"
        " {\"addresses\":[\"rtsp://nameless:1\"]}]",
        0, NULL);
    assert_non_null(rows);
    ms_rtsp_redirect_servers_set(rows);
    json_decref(rows); /* borrowed: the table holds copies */
    char out[64];
    assert_int_equal(ms_rtsp_redirect_server_rtsp("n1", out, sizeof out), 0);
    assert_string_equal(out, "rtsp://127.0.0.1:8554");
    /* RTSP listener off (port 0), or no address at all */
    assert_int_equal(ms_rtsp_redirect_server_rtsp("n2", out, sizeof out), -ENOENT);
    assert_int_equal(ms_rtsp_redirect_server_rtsp("n3", out, sizeof out), -ENOENT);
    assert_int_equal(ms_rtsp_redirect_server_rtsp("n4", out, sizeof out), 0);
    assert_string_equal(out, "rtsp://[::1]:9554");
    /* the first usable one */
    assert_int_equal(ms_rtsp_redirect_server_rtsp("n5", out, sizeof out), 0);
    assert_string_equal(out, "rtsp://h:554");
    assert_int_equal(ms_rtsp_redirect_server_rtsp("nameless", out, sizeof out), -ENOENT);
    assert_int_equal(ms_rtsp_redirect_server_rtsp("nope", out, sizeof out), -ENOENT);
    assert_int_equal(ms_rtsp_redirect_server_rtsp("", out, sizeof out), -EINVAL);
    assert_int_equal(ms_rtsp_redirect_server_rtsp("n1", out, 10), -ENAMETOOLONG);
    /* replaced, then emptied */
    rows = json_loads("[{\"name\":\"n1\",\"addresses\":[\"rtsp://192.0.2.7:1554\"]}]", 0, NULL);
    ms_rtsp_redirect_servers_set(rows);
    json_decref(rows);
    assert_int_equal(ms_rtsp_redirect_server_rtsp("n1", out, sizeof out), 0);
    assert_string_equal(out, "rtsp://192.0.2.7:1554");
    assert_int_equal(ms_rtsp_redirect_server_rtsp("n4", out, sizeof out), -ENOENT);
    ms_rtsp_redirect_servers_set(NULL);
    assert_int_equal(ms_rtsp_redirect_server_rtsp("n1", out, sizeof out), -ENOENT);
}

static void test_no_cluster_no_redirect(void **state)
{
    (void)state;
    json_t *rows =
        json_loads("[{\"name\":\"n1\",\"addresses\":[\"rtsp://192.0.2.7:1554\"]}]", 0, NULL);
    ms_rtsp_redirect_servers_set(rows);
    json_decref(rows);
    char base[128] = "";
    assert_int_equal(ms_rtsp_redirect_decide(NULL, "cam", "", 0, base, sizeof base), 0);
    assert_int_equal(ms_rtsp_redirect_decide(NULL, "cam", "from=1700000000", 1, base, sizeof base),
                     0);
    assert_string_equal(base, "");
    ms_rtsp_redirect_servers_set(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_no_cluster_no_redirect),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
