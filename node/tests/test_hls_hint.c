/* Live HLS numbering across servers (node/hls_hint.h): the highest report
 * of a stream wins, a new output starts above it by the segments that could
 * have been cut since, and without a report from tenths of a second. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "node/hls_hint.h"

static void test_base(void **state)
{
    (void)state;
    const char *uid = "0d6b6c1e-3f0a-4c5e-9a55-2f4f0b7a2a11";
    int64_t now = 1795280000000, msn, disc;
    ms_hls_hint_base(uid, 1000, now, &msn, &disc);
    assert_int_equal(msn, now / 100); /* no report yet */
    assert_int_equal(disc, now / 100);

    json_t *servers = json_pack(
        "[{s:s,s:{s:{s:[I,I,I]}}},{s:s,s:{s:{s:[I,I,I],s:[s]}}},{s:s}]", "name", "n1", "load",
        "hls", uid, (json_int_t)17952000100, (json_int_t)17952000003, (json_int_t)(now - 1500),
        "name", "n2", "load", "hls", uid, (json_int_t)17952000050, (json_int_t)17952000007,
        (json_int_t)now, "other", "bogus", "name", "n3");
    assert_non_null(servers);
    ms_hls_hint_update(servers);
    json_decref(servers);
    /* n1's msn (higher) reported 1.5 s ago with 1 s segments: at most 2
     * more segments since, plus one; n2's discontinuity (higher) */
    ms_hls_hint_base(uid, 1000, now, &msn, &disc);
    assert_int_equal(msn, 17952000100 + 3);
    assert_int_equal(disc, 17952000007 + 3);
    /* a later report without the numbers (they come every few reports):
     * the last ones seen are kept */
    servers = json_pack("[{s:s,s:{s:i}},{s:s,s:{}}]", "name", "n1", "load", "streams", 1, "name",
                        "n2", "load");
    ms_hls_hint_update(servers);
    json_decref(servers);
    ms_hls_hint_base(uid, 1000, now, &msn, &disc);
    assert_int_equal(msn, 17952000100 + 3);
    /* other streams: from the clock */
    ms_hls_hint_base("nope", 1000, now, &msn, &disc);
    assert_int_equal(msn, now / 100);
    ms_hls_hint_clear();
    ms_hls_hint_base(uid, 1000, now, &msn, &disc);
    assert_int_equal(msn, now / 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_base)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
