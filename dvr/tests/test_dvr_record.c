/* DVR recording: chunk files decoded by ffprobe with the right frame count
 * and duration, the index equal to the files, ranges with gaps, the
 * reading API. Real uv loop, real hub, real clip. */
#include "dvr/tests/dvr_test.h"

static void stop_and_flush(dt_t *t, ms_dvr_recorder_t *rec)
{
    ms_dvr_recorder_stop(rec);
    assert_int_equal(uv_run(&t->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(ms_dvr_flush(), 0);
}

/* 10 s at 25 fps, chunks of 4 s: cuts at the keyframes of 4 s and 8 s. */
static void test_record_chunks(void **state)
{
    (void)state;
    dt_t t;
    dt_setup(&t, 99);
    assert_int_equal(dt_dvr_init(&t), 0);
    ms_stream_cfg_t cfg;
    dt_stream_cfg(&cfg, "cam-a", 4, 3600, MS_DVR_CONTINUOUS);
    ms_dvr_recorder_t *rec = dt_rec_start(&t, &cfg);
    assert_non_null(rec);
    int64_t wall0 = dt_wall0(60);
    dt_feed(&t, 0, 250, wall0, 0, 0);
    stop_and_flush(&t, rec);

    ms_dvr_chunk_t *v;
    size_t n;
    assert_int_equal(ms_dvr_chunks("cam-a", 0, INT64_MAX / 2, &v, &n), 0);
    assert_int_equal(n, 3);
    const int want_frames[3] = {100, 100, 50};
    const int64_t want_start[3] = {0, 4000, 8000};
    int total = 0;
    for (size_t i = 0; i < n; i++) {
        ms_dvr_chunk_t *c = &v[i];
        assert_string_equal(c->uid, "cam-a");
        assert_int_equal(c->open, 0);
        assert_int_equal(c->start_ms, wall0 / 1000 + want_start[i]);
        assert_int_equal(c->end_ms, wall0 / 1000 + want_start[i] + want_frames[i] * 40);
        assert_non_null(strstr(c->path, "/cam-a/"));
        /* one fragment per 1 s GOP, each starting with a keyframe */
        assert_int_equal(c->nfrags, (size_t)(want_frames[i] / 25));
        for (size_t k = 0; k < c->nfrags; k++) {
            assert_int_equal(c->frags[k].key, 1);
            assert_int_equal(c->frags[k].t_ms, c->start_ms + (int64_t)k * 1000);
            assert_int_equal(c->frags[k].dur_ms, 1000);
        }
        /* the file decodes cleanly, frame count and duration */
        int frames = dt_frames(c->path);
        assert_int_equal(frames, want_frames[i]);
        total += frames;
        int64_t dur = dt_duration_ms(c->path);
        assert_true(dur >= want_frames[i] * 40 - 40 && dur <= want_frames[i] * 40 + 40);
        /* the index equals the file */
        assert_int_equal(dt_file_size(c->path), c->bytes);
        int fd = open(c->path, O_RDONLY);
        assert_true(fd >= 0);
        ms_dvr_scan_t sc;
        assert_int_equal(ms_dvr_scan_fd(fd, c->bytes, &sc), 0);
        close(fd);
        assert_int_equal(sc.valid_len, c->bytes);
        assert_int_equal(sc.init_len, c->init_len);
        assert_int_equal(sc.nfrags, c->nfrags);
        for (size_t k = 0; k < sc.nfrags; k++) {
            assert_int_equal(sc.frags[k].t_ms, c->frags[k].t_ms);
            assert_int_equal(sc.frags[k].dur_ms, c->frags[k].dur_ms);
            assert_int_equal(sc.frags[k].off, c->frags[k].off);
            assert_int_equal(sc.frags[k].size, c->frags[k].size);
            assert_int_equal(sc.frags[k].key, c->frags[k].key);
        }
        ms_dvr_scan_free(&sc);
    }
    assert_int_equal(total, 250);
    /* as many files under the root as rows */
    int files = 0;
    uint64_t bytes = 0;
    dt_walk(t.root, &files, &bytes);
    assert_int_equal(files, 3);
    assert_int_equal(bytes, v[0].bytes + v[1].bytes + v[2].bytes);

    /* reading API: init + fragment 1 of chunk 1 form a decodable file */
    ms_blob_t *init = NULL, *frag = NULL;
    assert_int_equal(ms_dvr_chunk_read(&v[1], 0, v[1].init_len, &init), 0);
    assert_int_equal(ms_dvr_chunk_read(&v[1], v[1].frags[1].off, v[1].frags[1].size, &frag), 0);
    assert_int_equal(init->len, v[1].init_len);
    assert_int_equal(frag->len, v[1].frags[1].size);
    char part[700];
    snprintf(part, sizeof part, "%s/part.mp4", t.dir);
    FILE *fp = fopen(part, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(init->data, 1, init->len, fp), init->len);
    assert_int_equal(fwrite(frag->data, 1, frag->len, fp), frag->len);
    fclose(fp);
    assert_int_equal(dt_frames(part), 25);
    ms_blob_unref(init);
    ms_blob_unref(frag);
    ms_blob_t *none = NULL;
    assert_int_equal(ms_dvr_chunk_read(&v[0], v[0].bytes + 1, 10, &none), -ERANGE);

    /* one range of 10 s */
    json_t *r = NULL;
    assert_int_equal(ms_dvr_ranges("cam-a", 0, 0, &r), 0);
    json_t *arr = json_object_get(r, "ranges");
    assert_int_equal(json_array_size(arr), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(arr, 0), "from")),
                     wall0 / 1000000);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(arr, 0), "duration")), 10);
    assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 0), "server")), "n1");
    json_decref(r);
    /* a window before the recording: nothing */
    assert_int_equal(ms_dvr_ranges("cam-a", 0, wall0 / 1000000 - 1, &r), 0);
    assert_int_equal(json_array_size(json_object_get(r, "ranges")), 0);
    json_decref(r);

    /* status and storage for cpanel */
    json_t *st = NULL;
    assert_int_equal(ms_dvr_status("cam-a", &st), 0);
    assert_int_equal(json_integer_value(json_object_get(st, "ranges")), 1);
    assert_int_equal(json_integer_value(json_object_get(st, "chunks")), 3);
    assert_int_equal(json_integer_value(json_object_get(st, "bytes")), (json_int_t)bytes);
    json_decref(st);
    assert_int_equal(ms_dvr_status("nope", &st), -ENOENT);
    assert_int_equal(ms_dvr_storage(&st), 0);
    json_t *root0 = json_array_get(json_object_get(st, "roots"), 0);
    assert_string_equal(json_string_value(json_object_get(root0, "path")), t.root);
    assert_true(json_integer_value(json_object_get(root0, "total_bytes")) > 0);
    assert_true(json_integer_value(json_object_get(root0, "free_bytes")) > 0);
    json_decref(st);

    ms_dvr_chunks_free(v, n);
    ms_dvr_shutdown();
    dt_teardown(&t);
}

/* Frames stop for 5 s (dts and wall clock jump together), then the wall
 * clock alone jumps by 5 s: three ranges. */
static void test_ranges_gap(void **state)
{
    (void)state;
    dt_t t;
    dt_setup(&t, 99);
    assert_int_equal(dt_dvr_init(&t), 0);
    ms_stream_cfg_t cfg;
    dt_stream_cfg(&cfg, "cam-g", 10, 3600, MS_DVR_CONTINUOUS);
    ms_dvr_recorder_t *rec = dt_rec_start(&t, &cfg);
    assert_non_null(rec);
    int64_t wall0 = dt_wall0(120);
    dt_feed(&t, 0, 100, wall0, 0, 0);                  /* 0..4 s */
    dt_feed(&t, 100, 100, wall0, 5 * 90000, 5000000);  /* 9..13 s */
    dt_feed(&t, 200, 100, wall0, 5 * 90000, 10000000); /* 18..22 s */
    /* a short hole (1 s < gap) does not end a range */
    dt_feed(&t, 300, 50, wall0, 6 * 90000, 11000000); /* 23..25 s */
    stop_and_flush(&t, rec);

    json_t *r = NULL;
    assert_int_equal(ms_dvr_ranges("cam-g", 0, 0, &r), 0);
    json_t *arr = json_object_get(r, "ranges");
    assert_int_equal(json_array_size(arr), 3);
    const int64_t from[3] = {0, 9, 18}, dur[3] = {4, 4, 7};
    for (size_t i = 0; i < 3; i++) {
        json_t *o = json_array_get(arr, i);
        assert_int_equal(json_integer_value(json_object_get(o, "from")), wall0 / 1000000 + from[i]);
        assert_int_equal(json_integer_value(json_object_get(o, "duration")), dur[i]);
    }
    json_decref(r);
    /* a window inside the second range returns only it */
    assert_int_equal(ms_dvr_ranges("cam-g", wall0 / 1000000 + 10, wall0 / 1000000 + 11, &r), 0);
    arr = json_object_get(r, "ranges");
    assert_int_equal(json_array_size(arr), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(arr, 0), "from")),
                     wall0 / 1000000 + 9);
    json_decref(r);
    ms_dvr_shutdown();
    dt_teardown(&t);
}

static void stop_loop(uv_timer_t *h)
{
    uv_stop(h->loop);
}

static void run_for(dt_t *t, uint64_t ms)
{
    uv_timer_t tm;
    uv_timer_init(&t->loop, &tm);
    uv_timer_start(&tm, stop_loop, ms, 0);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&tm, NULL);
    uv_run(&t->loop, UV_RUN_NOWAIT);
}

/* Frames stop mid-GOP: the pending frames reach the disk and the index
 * within about a second (the chunk still open), and the chunk is closed
 * once the gap threshold passed. H.265 this time. */
static void test_stall_flush_h265(void **state)
{
    (void)state;
    dt_t t;
    dt_setup_codec(&t, 99, 1);
    assert_int_equal(dt_dvr_init(&t), 0);
    ms_stream_cfg_t cfg;
    dt_stream_cfg(&cfg, "cam-s", 10, 3600, MS_DVR_CONTINUOUS);
    ms_dvr_recorder_t *rec = dt_rec_start(&t, &cfg);
    assert_non_null(rec);
    int64_t wall0 = dt_wall0(60);
    dt_feed(&t, 0, 30, wall0, 0, 0); /* one GOP + 5 frames */
    assert_int_equal(ms_dvr_flush(), 0);
    ms_dvr_chunk_t *v;
    size_t n;
    assert_int_equal(ms_dvr_chunks("cam-s", 0, INT64_MAX / 2, &v, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(v[0].nfrags, 1); /* the first GOP only */
    ms_dvr_chunks_free(v, n);

    run_for(&t, 1400);
    assert_int_equal(ms_dvr_flush(), 0);
    assert_int_equal(ms_dvr_chunks("cam-s", 0, INT64_MAX / 2, &v, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(v[0].open, 1);
    assert_int_equal(v[0].nfrags, 2);
    assert_int_equal(v[0].end_ms, wall0 / 1000 + 30 * 40);
    assert_int_equal(dt_file_size(v[0].path), v[0].bytes);
    /* what a kill -9 would leave now decodes: all 30 frames */
    assert_int_equal(dt_frames_codec(v[0].path, "hevc"), 30);
    ms_dvr_chunks_free(v, n);

    run_for(&t, 1200); /* idle > gap: the session ends */
    assert_int_equal(ms_dvr_flush(), 0);
    assert_int_equal(ms_dvr_chunks("cam-s", 0, INT64_MAX / 2, &v, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(v[0].open, 0);
    assert_int_equal(v[0].end_ms, wall0 / 1000 + 30 * 40);
    ms_dvr_chunks_free(v, n);
    json_t *st;
    assert_int_equal(ms_dvr_status("cam-s", &st), 0);
    assert_false(json_is_true(json_object_get(st, "recording")));
    json_decref(st);

    ms_dvr_recorder_stop(rec);
    assert_int_equal(uv_run(&t.loop, UV_RUN_DEFAULT), 0);
    ms_dvr_shutdown();
    dt_teardown(&t);
}

/* A batched read ended (ms_hub_batch_end): the frames it brought are
 * written at once, not at the next fragment cut (what a kill -9 loses is at
 * most one batch interval, docs/dvr.md). */
static void test_batch_end_writes_at_once(void **state)
{
    (void)state;
    dt_t t;
    dt_setup(&t, 99);
    assert_int_equal(dt_dvr_init(&t), 0);
    ms_stream_cfg_t cfg;
    dt_stream_cfg(&cfg, "cam-b", 10, 3600, MS_DVR_CONTINUOUS);
    ms_dvr_recorder_t *rec = dt_rec_start(&t, &cfg);
    assert_non_null(rec);
    int64_t wall0 = dt_wall0(60);
    dt_feed(&t, 0, 30, wall0, 0, 0); /* one GOP + 5 frames */
    assert_int_equal(ms_dvr_flush(), 0);
    ms_dvr_chunk_t *v;
    size_t n;
    assert_int_equal(ms_dvr_chunks("cam-b", 0, INT64_MAX / 2, &v, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(v[0].end_ms, wall0 / 1000 + 25 * 40); /* the 5 frames wait */
    ms_dvr_chunks_free(v, n);
    ms_hub_batch_end(t.hub);
    assert_int_equal(ms_dvr_flush(), 0);
    assert_int_equal(ms_dvr_chunks("cam-b", 0, INT64_MAX / 2, &v, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(v[0].nfrags, 2);
    assert_int_equal(v[0].end_ms, wall0 / 1000 + 30 * 40);
    assert_int_equal(dt_frames(v[0].path), 30);
    ms_dvr_chunks_free(v, n);
    dt_feed(&t, 30, 20, wall0, 0, 0); /* the GOP goes on: 20 more frames, then the keyframe */
    ms_hub_batch_end(t.hub);
    stop_and_flush(&t, rec);
    assert_int_equal(ms_dvr_chunks("cam-b", 0, INT64_MAX / 2, &v, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(dt_frames(v[0].path), 50);
    ms_dvr_chunks_free(v, n);
    ms_dvr_shutdown();
    dt_teardown(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_chunks),
        cmocka_unit_test(test_ranges_gap),
        cmocka_unit_test(test_stall_flush_h265),
        cmocka_unit_test(test_batch_end_writes_at_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
