/* Request-target parsing of the RTSP server (ms_rtsp_target_parse). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "media/rtsp/server.h"

static ms_rtsp_target_t t;

static void test_forms(void **state)
{
    (void)state;
    assert_int_equal(ms_rtsp_target_parse("rtsp://127.0.0.1:8554/cam1", &t), 0);
    assert_string_equal(t.stream, "cam1");
    assert_int_equal(t.track, -1);
    assert_string_equal(t.query, "");
    assert_string_equal(t.base, "rtsp://127.0.0.1:8554/cam1");

    assert_int_equal(ms_rtsp_target_parse("rtsp://h/cam1/", &t), 0);
    assert_string_equal(t.base, "rtsp://h/cam1");

    assert_int_equal(ms_rtsp_target_parse("rtsp://h:1/cam1/trackID=2?token=abc.def", &t), 0);
    assert_int_equal(t.track, 2);
    assert_string_equal(t.query, "token=abc.def");
    assert_string_equal(t.base, "rtsp://h:1/cam1");

    /* a client that appended the control to a base holding a query */
    assert_int_equal(ms_rtsp_target_parse("rtsp://h/cam1?token=x/trackID=1", &t), 0);
    assert_int_equal(t.track, 1);
    assert_string_equal(t.query, "token=x");
    assert_string_equal(t.stream, "cam1");

    /* uid, percent-encoding, origin form, IPv6 host */
    assert_int_equal(ms_rtsp_target_parse("/0d6b6c1e-3f0a%2D4c5e?x=1", &t), 0);
    assert_string_equal(t.stream, "0d6b6c1e-3f0a-4c5e");
    assert_string_equal(t.base, "/0d6b6c1e-3f0a%2D4c5e");
    assert_int_equal(ms_rtsp_target_parse("rtsp://[::1]:8554/cam", &t), 0);
    assert_string_equal(t.stream, "cam");
    assert_string_equal(t.base, "rtsp://[::1]:8554/cam");
    assert_int_equal(ms_rtsp_target_parse("RTSP://H/Cam/TRACKID=0", &t), 0);
    assert_int_equal(t.track, 0);
}

static void test_errors(void **state)
{
    (void)state;
    assert_int_equal(ms_rtsp_target_parse("*", &t), -ENOENT);
    assert_int_equal(ms_rtsp_target_parse("rtsp://h:8554", &t), -ENOENT);
    assert_int_equal(ms_rtsp_target_parse("rtsp://h/", &t), -ENOENT);
    assert_int_equal(ms_rtsp_target_parse("http://h/cam", &t), -EINVAL);
    assert_int_equal(ms_rtsp_target_parse("cam", &t), -EINVAL);
    assert_int_equal(ms_rtsp_target_parse("/a%2Fb", &t), -EINVAL); /* encoded slash */
    assert_int_equal(ms_rtsp_target_parse("/a%zz", &t), -EINVAL);
    assert_int_equal(ms_rtsp_target_parse("/a b", &t), -EINVAL);
    char big[4000];
    memset(big, 'a', sizeof big - 1);
    big[0] = '/';
    big[sizeof big - 1] = '\0';
    assert_int_equal(ms_rtsp_target_parse(big, &t), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_forms), cmocka_unit_test(test_errors)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
