/* Unit tests of the command builders (raft/commands.h): req_id shape and
 * uniqueness (a per-process random prefix + a counter). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "raft/commands.h"

#define N_IDS 2000

static int cmp_id(const void *a, const void *b)
{
    return memcmp(a, b, 33);
}

static void test_req_id_unique(void **state)
{
    (void)state;
    static char ids[N_IDS][33];
    for (int i = 0; i < N_IDS; i++) {
        assert_int_equal(ms_cmd_req_id(ids[i]), 0);
        assert_int_equal(strlen(ids[i]), 32);
        for (int k = 0; k < 32; k++)
            assert_non_null(strchr("0123456789abcdef", ids[i][k]));
        /* one process: one prefix, then a counter that steps by one */
        assert_memory_equal(ids[i], ids[0], 16);
        if (i > 0) {
            unsigned long long a = strtoull(ids[i - 1] + 16, NULL, 16);
            unsigned long long b = strtoull(ids[i] + 16, NULL, 16);
            assert_true(b == a + 1);
        }
    }
    qsort(ids, N_IDS, sizeof ids[0], cmp_id);
    for (int i = 1; i < N_IDS; i++)
        assert_int_not_equal(memcmp(ids[i - 1], ids[i], 33), 0);
}

static void test_cmd_carries_id(void **state)
{
    (void)state;
    json_t *a = ms_cmd_new("server_report", json_pack("{s:s}", "name", "n1"));
    json_t *b = ms_cmd_new("server_report", json_pack("{s:s}", "name", "n1"));
    assert_non_null(a);
    assert_non_null(b);
    const char *ia = json_string_value(json_object_get(a, "req_id"));
    const char *ib = json_string_value(json_object_get(b, "req_id"));
    assert_non_null(ia);
    assert_non_null(ib);
    assert_int_equal(strlen(ia), 32);
    assert_string_not_equal(ia, ib);
    assert_string_equal(json_string_value(json_object_get(a, "op")), "server_report");
    json_decref(a);
    json_decref(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_req_id_unique),
        cmocka_unit_test(test_cmd_carries_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
