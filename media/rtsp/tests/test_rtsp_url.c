/* RTSP URL parsing and control URL resolution. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "media/rtsp/url.h"

static void test_parse_basic(void **state)
{
    (void)state;
    ms_rtsp_url_t u;
    assert_int_equal(ms_rtsp_url_parse("rtsp://192.0.2.10/stream1", &u), 0);
    assert_string_equal(u.host, "192.0.2.10");
    assert_int_equal(u.port, 554);
    assert_string_equal(u.path, "/stream1");
    assert_int_equal(u.has_userinfo, 0);
    assert_int_equal(u.secure, 0);

    assert_int_equal(ms_rtsp_url_parse("RTSPS://cam.example:8322", &u), 0);
    assert_int_equal(u.secure, 1);
    assert_int_equal(u.port, 8322);
    assert_string_equal(u.path, "/");

    assert_int_equal(
        ms_rtsp_url_parse("rtsp://h/Streaming/Channels/101?transportmode=unicast#x", &u), 0);
    assert_string_equal(u.path, "/Streaming/Channels/101?transportmode=unicast");
    assert_int_equal(ms_rtsp_url_parse("rtsp://h?x=1", &u), 0);
    assert_string_equal(u.path, "/?x=1");
}

static void test_parse_userinfo(void **state)
{
    (void)state;
    ms_rtsp_url_t u;
    assert_int_equal(ms_rtsp_url_parse("rtsp://admin:p%40ss%3Aw0rd@10.0.0.1:8554/live", &u), 0);
    assert_int_equal(u.has_userinfo, 1);
    assert_string_equal(u.user, "admin");
    assert_string_equal(u.pass, "p@ss:w0rd");
    assert_int_equal(u.port, 8554);
    /* an unescaped '@' in the password: the last '@' ends the userinfo */
    assert_int_equal(ms_rtsp_url_parse("rtsp://user:a@b@host/x", &u), 0);
    assert_string_equal(u.pass, "a@b");
    assert_string_equal(u.host, "host");
    /* user only */
    assert_int_equal(ms_rtsp_url_parse("rtsp://viewer@host/x", &u), 0);
    assert_string_equal(u.user, "viewer");
    assert_string_equal(u.pass, "");
    /* bad escapes */
    assert_int_equal(ms_rtsp_url_parse("rtsp://a:%zz@host/", &u), -EINVAL);
    assert_int_equal(ms_rtsp_url_parse("rtsp://a:%4@host/", &u), -EINVAL);
    assert_int_equal(ms_rtsp_url_parse("rtsp://a:%00@host/", &u), -EINVAL);
}

static void test_parse_ipv6_and_errors(void **state)
{
    (void)state;
    ms_rtsp_url_t u;
    char buf[256];
    assert_int_equal(ms_rtsp_url_parse("rtsp://[::1]:8554/cam", &u), 0);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.ipv6, 1);
    assert_int_equal(u.port, 8554);
    assert_true(ms_rtsp_url_format(&u, buf, sizeof buf) > 0);
    assert_string_equal(buf, "rtsp://[::1]:8554/cam");
    assert_int_equal(ms_rtsp_url_parse("rtsp://[fe80::1]/", &u), 0);
    assert_int_equal(u.port, 554);

    assert_int_equal(ms_rtsp_url_parse("http://host/", &u), -EINVAL);
    assert_int_equal(ms_rtsp_url_parse("rtsp://", &u), -EINVAL);
    assert_int_equal(ms_rtsp_url_parse("rtsp://host:0/", &u), -EINVAL);
    assert_int_equal(ms_rtsp_url_parse("rtsp://host:65536/", &u), -EINVAL);
    assert_int_equal(ms_rtsp_url_parse("rtsp://host:12a/", &u), -EINVAL);
    assert_int_equal(ms_rtsp_url_parse("rtsp://[::1/", &u), -EINVAL);
    assert_int_equal(ms_rtsp_url_parse("rtsp://[::1]x/", &u), -EINVAL);
    assert_int_equal(ms_rtsp_url_parse("rtsp://ho st/", &u), -EINVAL);
    assert_int_equal(ms_rtsp_url_parse("rtsp://host/a b", &u), -EINVAL);
    assert_int_equal(ms_rtsp_url_parse("rtsp://host/a\r\nX: y", &u), -EINVAL);
    assert_int_equal(ms_rtsp_url_parse(NULL, &u), -EINVAL);

    assert_int_equal(ms_rtsp_url_parse("rtsp://u:p@host:1234/a?b", &u), 0);
    assert_int_equal(ms_rtsp_url_format(&u, buf, sizeof buf), 20);
    assert_string_equal(buf, "rtsp://host:1234/a?b");
    assert_int_equal(ms_rtsp_url_format(&u, buf, 5), -ENAMETOOLONG);
}

static void check_resolve(const char *base, const char *ref, const char *expect)
{
    char out[512];
    int n = ms_rtsp_url_resolve(base, ref, out, sizeof out);
    assert_true(n >= 0);
    assert_string_equal(out, expect);
    assert_int_equal((size_t)n, strlen(expect));
}

static void test_resolve(void **state)
{
    (void)state;
    /* Content-Base with the trailing slash (GStreamer, Axis) */
    check_resolve("rtsp://h:8554/test/", "stream=0", "rtsp://h:8554/test/stream=0");
    /* no trailing slash: treated as a directory (Hikvision-style bases) */
    check_resolve("rtsp://h/Streaming/Channels/101", "trackID=1",
                  "rtsp://h/Streaming/Channels/101/trackID=1");
    /* base query dropped for relative paths */
    check_resolve("rtsp://h/live?x=1", "track2", "rtsp://h/live/track2");
    /* absolute control */
    check_resolve("rtsp://h/a/", "rtsp://other:99/b/trackID=3", "rtsp://other:99/b/trackID=3");
    /* aggregate */
    check_resolve("rtsp://h/a/", "*", "rtsp://h/a/");
    check_resolve("rtsp://h/a/", "", "rtsp://h/a/");
    /* RFC 3986 5.2: absolute path, network path, query, dot segments */
    check_resolve("rtsp://h:554/a/b/", "/c/d", "rtsp://h:554/c/d");
    check_resolve("rtsp://h/a/b", "//g:1/x", "rtsp://g:1/x");
    check_resolve("rtsp://h/a/b", "?q=1", "rtsp://h/a/b?q=1");
    check_resolve("rtsp://h/a/b/", "../c", "rtsp://h/a/c");
    check_resolve("rtsp://h/a/b/", "./c/./d", "rtsp://h/a/b/c/d");
    check_resolve("rtsp://h/a/", "../../../x", "rtsp://h/x");
    check_resolve("rtsp://h", "track1", "rtsp://h/track1");
    check_resolve("rtsp://[::1]:8554/cam/", "t=1?y", "rtsp://[::1]:8554/cam/t=1?y");
    check_resolve("rtsp://h/a/", "  trackID=0  ", "rtsp://h/a/trackID=0");

    char out[64];
    assert_int_equal(ms_rtsp_url_resolve("nourl", "x", out, sizeof out), -EINVAL);
    assert_int_equal(ms_rtsp_url_resolve("rtsp://h/a/", "x y", out, sizeof out), -EINVAL);
    assert_int_equal(
        ms_rtsp_url_resolve("rtsp://h/a/",
                            "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", out,
                            sizeof out),
        -ENAMETOOLONG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_basic),
        cmocka_unit_test(test_parse_userinfo),
        cmocka_unit_test(test_parse_ipv6_and_errors),
        cmocka_unit_test(test_resolve),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
