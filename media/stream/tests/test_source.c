/* The source's event window (ms_src_window_note): what makes a stream
 * "problematic" while its RTP timestamps keep jumping, and ok again once
 * they stopped for a minute. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "media/stream/source.h"

static void test_jump_window(void **state)
{
    (void)state;
    ms_src_window_t w = {0};
    int64_t t = 5000000; /* a monotonic clock, ms */
    assert_int_equal(ms_src_window_note(&w, 0, t), 0);
    /* one jump a second for 3 s: 3 in the window (the problem threshold) */
    assert_int_equal(ms_src_window_note(&w, 1, t += 1000), 1);
    assert_int_equal(ms_src_window_note(&w, 2, t += 1000), 2);
    assert_int_equal(ms_src_window_note(&w, 3, t += 1000), MS_SRC_JUMPS_PROBLEM);
    /* five more within the same second, ticks every second without jumps */
    assert_int_equal(ms_src_window_note(&w, 8, t += 200), 8);
    for (int i = 0; i < 56; i++)
        assert_int_equal(ms_src_window_note(&w, 8, t += 1000), 8);
    /* a minute of buckets: the current second and the 59 before it */
    assert_int_equal(ms_src_window_note(&w, 8, t += 1000), 8);
    /* the first jumps leave the window one by one, the burst last */
    assert_int_equal(ms_src_window_note(&w, 8, t += 1000), 7);
    assert_int_equal(ms_src_window_note(&w, 8, t += 1000), 6);
    assert_int_equal(ms_src_window_note(&w, 8, t += 1000), 0);
    /* a long silence clears everything; the count never goes back */
    assert_int_equal(ms_src_window_note(&w, 9, t += 3600000), 1);
    assert_int_equal(ms_src_window_note(&w, 5, t += 1000), 1);
    /* a huge total saturates instead of wrapping */
    assert_int_equal(ms_src_window_note(&w, UINT64_MAX, t += 1000), INT32_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jump_window),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
