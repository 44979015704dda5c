/* util/procfs.h: "Key: value" lines of proc(5) files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <unistd.h>

#include "util/procfs.h"

static void test_values(void **state)
{
    (void)state;
    char path[64];
    snprintf(path, sizeof path, "/tmp/ms-test-procfs-%d", (int)getpid());
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("Name:\tmediaserver\nVmRSSx:\t9 kB\nVmRSS:\t   123456 kB\nThreads:\t7\n", f);
    fclose(f);
    assert_int_equal(ms_procfs_value(path, "VmRSS"), 123456); /* not VmRSSx's */
    assert_int_equal(ms_procfs_value(path, "Threads"), 7);
    assert_int_equal(ms_procfs_value(path, "VmRS"), 0); /* a prefix is not a key */
    assert_int_equal(ms_procfs_value(path, "Nope"), 0);
    unlink(path);
    assert_int_equal(ms_procfs_value(path, "VmRSS"), 0); /* no file */
    assert_true(ms_procfs_value("/proc/self/status", "VmRSS") > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_values)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
