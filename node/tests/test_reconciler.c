/* Unit tests of the reconciler (node/reconciler.c): what it applies, when
 * it does nothing (same rev and run state), and the streams it could not
 * apply, which it reports as pending and retries on the next run. The
 * registry is replaced by callbacks that record each call. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <errno.h>
#include <jansson.h>

#include "node/reconciler.h"

static struct {
    int applies, removes;
    char last_uid[64];
    ms_run_state_t last_state;
    char fail_uid[64]; /* apply of this uid fails */
} rec;

static int record_apply(const ms_stream_cfg_t *cfg, ms_run_state_t desired)
{
    if (strcmp(cfg->uid, rec.fail_uid) == 0)
        return -ENOMEM;
    rec.applies++;
    snprintf(rec.last_uid, sizeof rec.last_uid, "%s", cfg->uid);
    rec.last_state = desired;
    return 0;
}

static int record_remove(const char *uid)
{
    (void)uid;
    rec.removes++;
    return 0;
}

/* A stream of the state (the shape ms_fsm_list gives) on primary p. */
static json_t *stream(const char *uid, const char *p, int rev)
{
    char url[96];
    snprintf(url, sizeof url, "rtsp://127.0.0.1:1/%s", uid);
    return json_pack("{s:s,s:s,s:s,s:{s:s?,s:n,s:i}}", "uid", uid, "name", uid, "url", url,
                     "placement", "primary", p, "backup", "rev", rev);
}

static void test_pending_retried(void **st)
{
    (void)st;
    memset(&rec, 0, sizeof rec);
    ms_reconciler_t *rc = ms_reconciler_new("n1", record_apply, record_remove);
    assert_non_null(rc);
    json_t *streams = json_pack("[o,o]", stream("a", "n1", 1), stream("b", "n2", 1));

    /* b cannot be applied: pending, a runs here */
    snprintf(rec.fail_uid, sizeof rec.fail_uid, "b");
    assert_int_equal(ms_reconciler_run(rc, streams, 1), 1);
    assert_int_equal(ms_reconciler_pending(rc), 1);
    assert_int_equal(rec.applies, 1);
    assert_string_equal(rec.last_uid, "a");
    assert_int_equal(rec.last_state, MS_RUN_ACTIVE);

    /* the same state again: only b is tried (a has the same rev) */
    assert_int_equal(ms_reconciler_run(rc, streams, 1), 0);
    assert_int_equal(rec.applies, 1);
    assert_int_equal(ms_reconciler_pending(rc), 1);

    /* b can be applied now: held suspended (its primary is n2), nothing pending */
    rec.fail_uid[0] = '\0';
    assert_int_equal(ms_reconciler_run(rc, streams, 1), 1);
    assert_int_equal(rec.applies, 2);
    assert_string_equal(rec.last_uid, "b");
    assert_int_equal(rec.last_state, MS_RUN_SUSPEND);
    assert_int_equal(ms_reconciler_pending(rc), 0);
    assert_int_equal(ms_reconciler_run(rc, streams, 1), 0);
    assert_int_equal(rec.applies, 2);

    /* a stream whose state does not parse (no url) stays pending */
    json_t *bad = json_pack("{s:s,s:s,s:{s:s,s:i}}", "uid", "c", "name", "c", "placement",
                            "primary", "n1", "rev", 1);
    json_array_append_new(streams, bad);
    assert_int_equal(ms_reconciler_run(rc, streams, 1), 0);
    assert_int_equal(ms_reconciler_pending(rc), 1);

    /* a left the state: removed; not a member any more: b suspended stays */
    json_array_remove(streams, 0);
    json_array_remove(streams, 1);
    assert_int_equal(ms_reconciler_run(rc, streams, 0), 1);
    assert_int_equal(rec.removes, 1);
    assert_int_equal(ms_reconciler_pending(rc), 0);
    json_decref(streams);
    ms_reconciler_free(rc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pending_retried),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
