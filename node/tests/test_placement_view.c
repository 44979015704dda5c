/* Unit tests of the placement view (node/placement_view.c): lookups by uid
 * or name answer the first row in put order that matches either, as a scan
 * would, also when a name of one stream is the uid of another; a new view
 * replaces the old one whole. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <errno.h>

#include "node/placement_view.h"

static void test_lookup(void **st)
{
    (void)st;
    ms_placement_view_t v;
    ms_placement_view_begin("n1");
    /* rows come ordered by name; 200 of them, in reverse uid order */
    for (int i = 0; i < 200; i++) {
        char uid[32], name[32];
        snprintf(uid, sizeof uid, "u%03d", 199 - i);
        snprintf(name, sizeof name, "cam%03d", i);
        ms_placement_view_put(uid, name, i % 2 ? "n1" : "n2", "n3", "http://h:1", i == 7);
    }
    /* "x" is the name of a later row and the uid of an earlier one */
    ms_placement_view_put("x", "zz-first", "n2", NULL, NULL, 0);
    ms_placement_view_put("u-late", "x", "n1", NULL, NULL, 0);
    ms_placement_view_end();

    assert_int_equal(ms_placement_view_get("u000", &v), 0); /* row 199 */
    assert_string_equal(v.primary, "n1");
    assert_int_equal(v.self_primary, 1);
    assert_int_equal(ms_placement_view_get("cam007", &v), 0);
    assert_int_equal(v.transferred, 1);
    assert_string_equal(v.primary, "n1");
    assert_string_equal(v.backup, "n3");
    assert_string_equal(v.primary_http, "http://h:1");
    assert_int_equal(ms_placement_view_get("u192", &v), 0); /* row 7 again, by uid */
    assert_int_equal(v.transferred, 1);
    assert_int_equal(ms_placement_view_get("cam008", &v), 0);
    assert_string_equal(v.primary, "n2");
    assert_int_equal(v.self_primary, 0);
    assert_int_equal(ms_placement_view_get("x", &v), 0); /* the first of the two */
    assert_string_equal(v.primary, "n2");
    assert_string_equal(v.backup, "");
    assert_int_equal(ms_placement_view_get("u-late", &v), 0);
    assert_string_equal(v.primary, "n1");
    assert_int_equal(ms_placement_view_get("cam200", &v), -ENOENT);
    assert_int_equal(ms_placement_view_get("", &v), -ENOENT);
    assert_int_equal(ms_placement_view_get(NULL, &v), -ENOENT);

    /* a new view replaces the old one */
    ms_placement_view_begin("n2");
    ms_placement_view_put("a", "cam-a", "n2", NULL, NULL, 0);
    ms_placement_view_end();
    assert_int_equal(ms_placement_view_get("cam007", &v), -ENOENT);
    assert_int_equal(ms_placement_view_get("cam-a", &v), 0);
    assert_int_equal(v.self_primary, 1);

    /* an empty view finds nothing */
    ms_placement_view_begin("n2");
    ms_placement_view_end();
    assert_int_equal(ms_placement_view_get("a", &v), -ENOENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
