/* Event-based recording: nothing is written while idle; an event starts a
 * recording that includes the pre-event buffer (frames from before the
 * call, from a keyframe at least prebuffer_ms old) and ends when the
 * window closes. */
#include "dvr/tests/dvr_test.h"

static void test_event(void **state)
{
    (void)state;
    dt_t t;
    dt_setup(&t, 99);
    assert_int_equal(dt_dvr_init(&t), 0);
    ms_stream_cfg_t cfg;
    dt_stream_cfg(&cfg, "cam-e", 60, 3600, MS_DVR_EVENT);
    ms_dvr_recorder_t *rec = dt_rec_start(&t, &cfg);
    assert_non_null(rec);
    assert_int_equal(ms_dvr_event("cam-x", 10), -ENOENT);
    assert_int_equal(ms_dvr_event("cam-e", 0), -EINVAL);

    int64_t wall0 = dt_wall0(60);
    dt_feed(&t, 0, 250, wall0, 0, 0); /* 10 s idle: keyframes every second */
    assert_int_equal(ms_dvr_flush(), 0);
    ms_dvr_chunk_t *v;
    size_t n;
    assert_int_equal(ms_dvr_chunks("cam-e", 0, INT64_MAX / 2, &v, &n), 0);
    assert_int_equal(n, 0);
    json_t *st;
    assert_int_equal(ms_dvr_status("cam-e", &st), 0);
    assert_false(json_is_true(json_object_get(st, "recording")));
    /* the pre-event buffer is memory held by the recorder */
    assert_true(json_integer_value(json_object_get(st, "memory_bytes")) > 100000);
    assert_string_equal(json_string_value(json_object_get(st, "mode")), "event");
    json_decref(st);

    /* event for 2 s of wall time: the next frames are recorded after the
     * buffer (the keyframe of 4 s is the newest at least 5 s old) */
    assert_int_equal(ms_dvr_event("cam-e", 2), 0);
    dt_feed(&t, 250, 50, wall0, 0, 0); /* 10..12 s */
    assert_int_equal(ms_dvr_status("cam-e", &st), 0);
    assert_true(json_is_true(json_object_get(st, "recording")));
    json_decref(st);
    /* let the window close (and its one-batch grace), then more frames:
     * not recorded */
    usleep(3100 * 1000);
    dt_feed(&t, 300, 50, wall0, 0, 0);
    assert_int_equal(ms_dvr_flush(), 0);

    assert_int_equal(ms_dvr_chunks("cam-e", 0, INT64_MAX / 2, &v, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(v[0].start_ms, wall0 / 1000 + 4000);
    assert_int_equal(v[0].end_ms, wall0 / 1000 + 12000);
    assert_int_equal(v[0].open, 0);
    assert_int_equal(dt_frames(v[0].path), 200);
    ms_dvr_chunks_free(v, n);

    /* a second event: starts again from the buffer, which restarted at the
     * first keyframe after the window closed (12 s) */
    assert_int_equal(ms_dvr_event("cam-e", 30), 0);
    dt_feed(&t, 350, 25, wall0, 0, 0); /* 14..15 s */
    ms_dvr_recorder_stop(rec);
    assert_int_equal(uv_run(&t.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(ms_dvr_flush(), 0);
    assert_int_equal(ms_dvr_chunks("cam-e", 0, INT64_MAX / 2, &v, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(v[1].start_ms, wall0 / 1000 + 12000);
    assert_int_equal(v[1].end_ms, wall0 / 1000 + 15000);
    assert_int_equal(dt_frames(v[1].path), 75);
    ms_dvr_chunks_free(v, n);

    json_t *r;
    assert_int_equal(ms_dvr_ranges("cam-e", 0, 0, &r), 0);
    /* 4..12 s and 12..15 s touch: one range */
    assert_int_equal(json_array_size(json_object_get(r, "ranges")), 1);
    json_decref(r);
    ms_dvr_shutdown();
    dt_teardown(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_event),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
