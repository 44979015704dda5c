/* Per-address back-off (util/backoff.h): blocking after N failures in the
 * window, the growing delay and its cap, other addresses unaffected,
 * IPv6 /64 keying, the reset after a quiet time, success, bounded memory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "util/backoff.h"

static ms_ip_t ip(const char *s)
{
    ms_ip_t a;
    assert_int_equal(ms_ip_parse(s, &a), 0);
    return a;
}

static const ms_backoff_cfg_t CFG = {3, 10000, 1000, 8000, 60000, 4};

static void test_blocks_after_n(void **st)
{
    (void)st;
    ms_backoff_t *t = ms_backoff_new(&CFG);
    assert_non_null(t);
    ms_ip_t a = ip("192.0.2.1"), b = ip("192.0.2.2");
    assert_int_equal(ms_backoff_check(t, &a, 0), 0);
    assert_int_equal(ms_backoff_fail(t, &a, 0), 0);
    assert_int_equal(ms_backoff_fail(t, &a, 10), 0);
    assert_int_equal(ms_backoff_fail(t, &a, 20), 1000); /* third failure: blocked 1 s */
    assert_int_equal(ms_backoff_check(t, &a, 20), 1000);
    assert_int_equal(ms_backoff_check(t, &a, 520), 500);
    assert_int_equal(ms_backoff_check(t, &b, 520), 0); /* another address is not affected */
    assert_int_equal(ms_backoff_check(t, &a, 1020), 0);
    /* the next block in a row doubles, up to the cap */
    int64_t now = 1020, want[] = {2000, 4000, 8000, 8000};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(ms_backoff_fail(t, &a, now), 0);
        assert_int_equal(ms_backoff_fail(t, &a, now), 0);
        assert_int_equal(ms_backoff_fail(t, &a, now), want[i]);
        now += want[i];
        assert_int_equal(ms_backoff_check(t, &a, now - 1), 1);
        assert_int_equal(ms_backoff_check(t, &a, now), 0);
    }
    /* after reset_ms without failures the delay starts over */
    now += 60001;
    ms_backoff_fail(t, &a, now);
    ms_backoff_fail(t, &a, now);
    assert_int_equal(ms_backoff_fail(t, &a, now), 1000);
    ms_backoff_free(t);
}

static void test_window(void **st)
{
    (void)st;
    ms_backoff_t *t = ms_backoff_new(&CFG);
    ms_ip_t a = ip("192.0.2.1");
    /* failures spread wider than the window never block */
    for (int64_t now = 0; now < 100000; now += 6000)
        assert_int_equal(ms_backoff_fail(t, &a, now), 0);
    ms_backoff_free(t);
}

static void test_success_forgets(void **st)
{
    (void)st;
    ms_backoff_t *t = ms_backoff_new(&CFG);
    ms_ip_t a = ip("192.0.2.1");
    ms_backoff_fail(t, &a, 0);
    ms_backoff_fail(t, &a, 0);
    ms_backoff_success(t, &a);
    assert_int_equal(ms_backoff_size(t), 0);
    assert_int_equal(ms_backoff_fail(t, &a, 0), 0);
    assert_int_equal(ms_backoff_fail(t, &a, 0), 0);
    assert_int_equal(ms_backoff_fail(t, &a, 0), 1000);
    ms_backoff_free(t);
}

static void test_ipv6_prefix(void **st)
{
    (void)st;
    ms_backoff_t *t = ms_backoff_new(&CFG);
    ms_ip_t a = ip("2001:db8:1:2::1"), b = ip("2001:db8:1:2::ffff:7"), c = ip("2001:db8:1:3::1");
    ms_backoff_fail(t, &a, 0);
    ms_backoff_fail(t, &b, 0);
    assert_int_equal(ms_backoff_fail(t, &a, 0), 1000); /* same /64 */
    assert_int_equal(ms_backoff_check(t, &b, 0), 1000);
    assert_int_equal(ms_backoff_check(t, &c, 0), 0);
    ms_backoff_free(t);
}

static void test_bounded(void **st)
{
    (void)st;
    ms_backoff_t *t = ms_backoff_new(&CFG); /* 4 entries */
    ms_ip_t blocked = ip("198.51.100.1");
    for (int i = 0; i < 3; i++)
        ms_backoff_fail(t, &blocked, 0);
    assert_true(ms_backoff_check(t, &blocked, 0) > 0);
    /* 1000 other addresses fail once each: the table never grows past 4 and
     * the blocked address (not the oldest unblocked ones) is kept */
    for (int i = 0; i < 1000; i++) {
        char s[32];
        snprintf(s, sizeof s, "10.0.%d.%d", i / 250, i % 250 + 1);
        ms_ip_t x = ip(s);
        ms_backoff_fail(t, &x, 1 + i / 100);
        assert_true(ms_backoff_size(t) <= 4);
    }
    assert_true(ms_backoff_check(t, &blocked, 11) > 0);
    ms_backoff_free(t);
}

static void test_bad_cfg(void **st)
{
    (void)st;
    ms_backoff_cfg_t c = CFG;
    c.max_failures = 0;
    assert_null(ms_backoff_new(&c));
    c = CFG;
    c.max_entries = 0;
    assert_null(ms_backoff_new(&c));
    c = CFG;
    c.max_delay_ms = 10;
    assert_null(ms_backoff_new(&c));
    ms_backoff_cfg_t d = MS_BACKOFF_DEFAULTS;
    ms_backoff_t *t = ms_backoff_new(&d);
    assert_non_null(t);
    ms_backoff_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blocks_after_n),  cmocka_unit_test(test_window),
        cmocka_unit_test(test_success_forgets), cmocka_unit_test(test_ipv6_prefix),
        cmocka_unit_test(test_bounded),         cmocka_unit_test(test_bad_cfg),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
