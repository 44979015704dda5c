/* The HTTP hooks' pure parts (node/hooks.h): URL split, answer overrides;
 * ms_hook_call against a closed port and a bad URL (refusals). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "node/hooks.h"

static void check_split(const char *url, int want, const char *base, const char *target)
{
    char b[64], t[64];
    int r = ms_hook_url_split(url, b, sizeof b, t, sizeof t);
    if (r != want)
        fail_msg("%s: %d, want %d", url ? url : "(null)", r, want);
    if (want == 0) {
        assert_string_equal(b, base);
        assert_string_equal(t, target);
    }
}

static void test_url_split(void **state)
{
    (void)state;
    check_split("http://127.0.0.1:8080/hook", 0, "http://127.0.0.1:8080", "/hook");
    check_split("http://auth.example", 0, "http://auth.example:80", "/");
    check_split("http://auth.example/", 0, "http://auth.example:80", "/");
    check_split("http://h:81?x=1", 0, "http://h:81", "/?x=1");
    check_split("http://h/a/b?x=1&y=2", 0, "http://h:80", "/a/b?x=1&y=2");
    check_split("http://[::1]:9000/p", 0, "http://[::1]:9000", "/p");
    check_split("http://[::1]/p", 0, "http://[::1]:80", "/p");
    check_split("https://h/p", -EINVAL, NULL, NULL);
    check_split("ftp://h/p", -EINVAL, NULL, NULL);
    check_split("http://", -EINVAL, NULL, NULL);
    check_split("http:///p", -EINVAL, NULL, NULL);
    check_split("http://:80/p", -EINVAL, NULL, NULL);
    check_split("http://h:/p", -EINVAL, NULL, NULL);
    check_split("http://h:0/p", -EINVAL, NULL, NULL);
    check_split("http://h:65536/p", -EINVAL, NULL, NULL);
    check_split("http://h:8x/p", -EINVAL, NULL, NULL);
    check_split("http://h:123456/p", -EINVAL, NULL, NULL);
    check_split("http://h/a b", -EINVAL, NULL, NULL);
    check_split("http://h/a\r\nX: y", -EINVAL, NULL, NULL);
    check_split("http://h/p#frag", -EINVAL, NULL, NULL);
    check_split("http://[::1/p", -EINVAL, NULL, NULL);
    check_split("http://[]/p", -EINVAL, NULL, NULL);
    check_split("http://[::1]x/p", -EINVAL, NULL, NULL);
    check_split("http://a-very-long-host-name-that-does-not-fit-in-64-bytes.example.com:80/",
                -ENOSPC, NULL, NULL);
    check_split(NULL, -EINVAL, NULL, NULL);
}

static void test_parse_answer(void **state)
{
    (void)state;
    ms_hook_answer_t a;
    assert_int_equal(ms_hook_parse_answer(NULL, &a), 0);
    assert_int_equal(a.dvr, -1);
    assert_int_equal(ms_hook_parse_answer(" \r\n", &a), 0);
    assert_int_equal(a.dvr, -1);
    assert_int_equal(ms_hook_parse_answer("{}", &a), 0);
    assert_int_equal(a.dvr, -1);
    assert_int_equal(ms_hook_parse_answer("{\"dvr\": false, \"other\": 1}\n", &a), 0);
    assert_int_equal(a.dvr, 0);
    assert_int_equal(ms_hook_parse_answer("{\"dvr\": true}", &a), 0);
    assert_int_equal(a.dvr, 1);
    assert_int_equal(ms_hook_parse_answer("{\"dvr\": \"no\"}", &a), -EINVAL);
    assert_int_equal(ms_hook_parse_answer("OK", &a), -EINVAL);
    assert_int_equal(ms_hook_parse_answer("[true]", &a), -EINVAL);
    assert_int_equal(ms_hook_parse_answer("{\"dvr\":", &a), -EINVAL);
}

static void test_call_refuses(void **state)
{
    (void)state;
    ms_hook_req_t q = {.action = "publish", .stream = "s"};
    char why[128];
    /* port 1 on loopback: nothing listens, connection refused */
    assert_int_equal(ms_hook_call("http://127.0.0.1:1/h", &q, 500, NULL, why, sizeof why), -EACCES);
    assert_non_null(strstr(why, "unreachable"));
    assert_int_equal(ms_hook_call("https://127.0.0.1/h", &q, 500, NULL, why, sizeof why), -EACCES);
    assert_string_equal(why, "bad hook URL");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_split),
        cmocka_unit_test(test_parse_answer),
        cmocka_unit_test(test_call_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
