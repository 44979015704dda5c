/* util/owner.h: the first caller owns, another thread does not. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>

#include "util/owner.h"

static ms_owner_t g_owner;

static void *other(void *arg)
{
    *(int *)arg = ms_owner_check(&g_owner);
    return NULL;
}

static void test_owner(void **state)
{
    (void)state;
    assert_int_equal(ms_owner_check(&g_owner), 1); /* first caller: owner */
    assert_int_equal(ms_owner_check(&g_owner), 1);
    int r = -1;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, other, &r), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(r, 0);
    assert_int_equal(ms_owner_check(&g_owner), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_owner),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
