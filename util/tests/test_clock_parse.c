/* URL times: UTC seconds or the ISO 8601 basic form of RFC 2326 3.7
 * (archive-{from}-..., ?at=, RTSP Range: clock=). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "util/clock.h"

static void test_utc_parse_s(void **st)
{
    (void)st;
    int64_t s = 0;
    assert_int_equal(ms_utc_parse_s("1700000000", &s), 0);
    assert_int_equal(s, 1700000000);
    assert_int_equal(ms_utc_parse_s("20231114T221320Z", &s), 0);
    assert_int_equal(s, 1700000000);
    assert_int_equal(ms_utc_parse_s("20231114T221320.75Z", &s), 0); /* fraction dropped */
    assert_int_equal(s, 1700000000);
    assert_int_equal(ms_utc_parse_s("19700101T000001Z", &s), 0);
    assert_int_equal(s, 1);
    static const char *const bad[] = {"",
                                      "0",
                                      "-5",
                                      "17e9",
                                      "1700000000x",
                                      "99999999999999999999",
                                      "2023-11-14T22:13:20Z",
                                      "20231114T221320",
                                      "20231314T221320Z",
                                      "20231114T251320Z",
                                      "20231114T2213Z",
                                      "20231114T221320.Z5",
                                      "19700101T000000Z",
                                      "20231114X221320Z"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        s = 42;
        if (ms_utc_parse_s(bad[i], &s) != -EINVAL)
            fail_msg("accepted \"%s\"", bad[i]);
        assert_int_equal(s, 42);
    }
    assert_int_equal(ms_utc_parse_s(NULL, &s), -EINVAL);
}

static void test_utc_basic_parse(void **st)
{
    (void)st;
    int64_t us = 0;
    const char *v = "19961108T143520.25Zjunk";
    assert_int_equal(ms_utc_basic_parse(v, 19, &us), 0);
    assert_int_equal(us, 847463720250000LL);
    assert_int_equal(ms_utc_basic_parse(v, 18, &us), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utc_parse_s),
        cmocka_unit_test(test_utc_basic_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
