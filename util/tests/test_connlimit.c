/* Per-address connection counting (util/connlimit.h): the limit per
 * address, other addresses unaffected, release, the address cap, force. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>

#include "util/connlimit.h"

static ms_ip_t ip(const char *s)
{
    ms_ip_t a;
    assert_int_equal(ms_ip_parse(s, &a), 0);
    return a;
}

static void test_limit(void **st)
{
    (void)st;
    ms_connlimit_t *t = ms_connlimit_new(3, 100);
    ms_ip_t a = ip("192.0.2.1"), b = ip("::ffff:192.0.2.2"), a6 = ip("2001:db8::1");
    for (int i = 0; i < 3; i++) {
        assert_true(ms_connlimit_room(t, &a));
        assert_int_equal(ms_connlimit_acquire(t, &a), 0);
    }
    assert_false(ms_connlimit_room(t, &a));
    assert_int_equal(ms_connlimit_acquire(t, &a), -EBUSY);
    assert_int_equal(ms_connlimit_count(t, &a), 3);
    assert_true(ms_connlimit_room(t, &b));
    assert_int_equal(ms_connlimit_acquire(t, &b), 0);
    assert_int_equal(ms_connlimit_acquire(t, &a6), 0);
    ms_connlimit_release(t, &a);
    assert_true(ms_connlimit_room(t, &a));
    assert_int_equal(ms_connlimit_acquire_force(t, &a), 0);
    assert_int_equal(ms_connlimit_acquire_force(t, &a), 0); /* past the limit */
    assert_int_equal(ms_connlimit_count(t, &a), 4);
    for (int i = 0; i < 4; i++)
        ms_connlimit_release(t, &a);
    assert_int_equal(ms_connlimit_count(t, &a), 0);
    ms_connlimit_release(t, &b);
    ms_connlimit_release(t, &a6);
    ms_connlimit_free(t);
}

static void test_max_addrs(void **st)
{
    (void)st;
    ms_connlimit_t *t = ms_connlimit_new(2, 10);
    ms_ip_t v[11];
    for (int i = 0; i < 11; i++) {
        char s[32];
        snprintf(s, sizeof s, "10.0.0.%d", i + 1);
        v[i] = ip(s);
    }
    for (int i = 0; i < 10; i++)
        assert_int_equal(ms_connlimit_acquire(t, &v[i]), 0);
    assert_false(ms_connlimit_room(t, &v[10]));
    assert_int_equal(ms_connlimit_acquire(t, &v[10]), -ENOSPC);
    assert_int_equal(ms_connlimit_acquire(t, &v[0]), 0); /* known address: fine */
    ms_connlimit_release(t, &v[1]);                      /* entry gone: room again */
    assert_int_equal(ms_connlimit_acquire(t, &v[10]), 0);
    ms_connlimit_free(t); /* frees the entries still counted */
    assert_null(ms_connlimit_new(0, 10));
    assert_null(ms_connlimit_new(1, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limit),
        cmocka_unit_test(test_max_addrs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
