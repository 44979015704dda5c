/* Frame hub: GOP cache start, fan-out without copies, overflow resync. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "media/stream/hub.h"

typedef struct {
    int calls;
    int tracks_calls;
} counter_t;

static void on_frames(ms_reader_t *r, void *ud)
{
    (void)r;
    ((counter_t *)ud)->calls++;
}

static void on_tracks(ms_reader_t *r, void *ud)
{
    (void)r;
    ((counter_t *)ud)->tracks_calls++;
}

static ms_hub_t *new_hub_av(void)
{
    ms_hub_t *h = ms_hub_new("[test]");
    ms_codec_params_t t[2] = {0};
    t[0].codec = MS_CODEC_H264;
    t[0].kind = MS_TRACK_VIDEO;
    t[0].clock_rate = 90000;
    t[1].codec = MS_CODEC_AAC;
    t[1].kind = MS_TRACK_AUDIO;
    t[1].clock_rate = 48000;
    assert_int_equal(ms_hub_set_tracks(h, t, 2), 0);
    return h;
}

static void publish(ms_hub_t *h, int track, int key, int64_t pts)
{
    ms_frame_t *f = ms_frame_new("abcd", 4);
    assert_non_null(f);
    f->track = (uint8_t)track;
    f->flags = key ? MS_FRAME_KEY : 0;
    f->pts = f->dts = pts;
    ms_hub_publish(h, f);
    ms_frame_unref(f);
}

static void test_gop_cache_start(void **state)
{
    (void)state;
    ms_hub_t *h = new_hub_av();
    publish(h, 0, 0, 0); /* before any keyframe: not cached */
    publish(h, 0, 1, 1);
    publish(h, 1, 1, 2);
    publish(h, 0, 0, 3);
    counter_t c = {0, 0};
    ms_reader_opts_t o = {.on_frames = on_frames, .ud = &c};
    ms_reader_t *r = ms_hub_reader_open(h, &o);
    assert_non_null(r);
    assert_int_equal(c.calls, 1);
    assert_int_equal(ms_reader_queued(r), 3);
    ms_frame_t *f = ms_reader_pop(r);
    assert_true(f->flags & MS_FRAME_KEY);
    assert_int_equal(f->pts, 1);
    ms_frame_unref(f);
    /* a new keyframe resets the cache */
    publish(h, 0, 1, 10);
    ms_reader_t *r2 = ms_hub_reader_open(h, &(ms_reader_opts_t){0});
    assert_int_equal(ms_reader_queued(r2), 1);
    ms_hub_reader_close(r2);
    ms_hub_reader_close(r);
    ms_hub_free(h);
}

static void test_shared_not_copied(void **state)
{
    (void)state;
    ms_hub_t *h = new_hub_av();
    ms_reader_opts_t o = {0};
    ms_reader_t *a = ms_hub_reader_open(h, &o);
    ms_reader_t *b = ms_hub_reader_open(h, &o);
    ms_frame_t *f = ms_frame_new("key!", 4);
    f->track = 0;
    f->flags = MS_FRAME_KEY;
    ms_hub_publish(h, f);
    /* publisher + GOP cache + two readers */
    assert_int_equal(atomic_load(&f->refs), 4);
    ms_frame_t *fa = ms_reader_pop(a);
    ms_frame_t *fb = ms_reader_pop(b);
    assert_ptr_equal(fa, f);
    assert_ptr_equal(fb, f);
    ms_frame_unref(fa);
    ms_frame_unref(fb);
    ms_frame_unref(f);
    ms_hub_reader_close(a);
    ms_hub_reader_close(b);
    ms_hub_free(h);
}

static void test_overflow_resyncs_on_keyframe(void **state)
{
    (void)state;
    ms_hub_t *h = new_hub_av();
    ms_reader_opts_t o = {.queue_frames = 4};
    ms_reader_t *r = ms_hub_reader_open(h, &o);
    publish(h, 0, 0, 0); /* waiting for a key: dropped */
    assert_int_equal(ms_reader_queued(r), 0);
    publish(h, 0, 1, 1);
    publish(h, 0, 0, 2);
    publish(h, 1, 1, 3);
    publish(h, 0, 0, 4);
    assert_int_equal(ms_reader_queued(r), 4);
    publish(h, 0, 0, 5); /* overflow: ring emptied, waits for a keyframe */
    assert_int_equal(ms_reader_queued(r), 0);
    assert_int_equal(ms_reader_overflows(r), 1);
    publish(h, 1, 1, 6); /* audio is no start point while video exists */
    publish(h, 0, 0, 7);
    assert_int_equal(ms_reader_queued(r), 0);
    publish(h, 0, 1, 8);
    assert_int_equal(ms_reader_queued(r), 1);
    ms_frame_t *f = ms_reader_pop(r);
    assert_int_equal(f->pts, 8);
    ms_frame_unref(f);
    assert_int_equal(ms_reader_dropped(r), 1 + 5 + 2);
    ms_hub_reader_close(r);
    ms_hub_free(h);
}

static void test_tracks_callback_and_info(void **state)
{
    (void)state;
    ms_hub_t *h = new_hub_av();
    counter_t c = {0, 0};
    ms_reader_opts_t o = {.on_tracks = on_tracks, .ud = &c};
    ms_reader_t *r = ms_hub_reader_open(h, &o);
    publish(h, 0, 1, 0);
    ms_hub_info_t info;
    ms_hub_get_info(h, &info);
    assert_int_equal(info.ntracks, 2);
    assert_int_equal(info.frames_in, 1);
    assert_int_equal(info.readers, 1);
    assert_true(info.gop_bytes == 4);
    ms_hub_reset(h);
    assert_int_equal(c.tracks_calls, 1);
    assert_int_equal(ms_hub_ntracks(h), 0);
    ms_hub_get_info(h, &info);
    assert_int_equal(info.gop_bytes, 0);
    ms_hub_clients_add(h, 2);
    ms_hub_bytes_out_add(h, 100);
    assert_int_equal(ms_hub_clients(h), 2);
    assert_int_equal(ms_hub_bytes_out(h), 100);
    ms_hub_reader_close(r);
    ms_hub_free(h);
}

/* The ring's allocation grows as frames queue up (up to queue_frames) and
 * keeps their order across the wrap; the bound still holds. */
static void test_ring_grows_in_order(void **state)
{
    (void)state;
    ms_hub_t *h = new_hub_av();
    counter_t c = {0, 0};
    ms_reader_opts_t o = {.queue_frames = 300, .on_frames = on_frames, .ud = &c};
    ms_reader_t *r = ms_hub_reader_open(h, &o);
    assert_non_null(r);
    publish(h, 0, 1, 0);
    /* wrap the initial allocation before it grows */
    for (int i = 1; i <= 40; i++)
        publish(h, 0, 0, i);
    for (int i = 0; i <= 30; i++) {
        ms_frame_t *f = ms_reader_pop(r);
        assert_non_null(f);
        assert_int_equal(f->pts, i);
        ms_frame_unref(f);
    }
    for (int i = 41; i < 300; i++)
        publish(h, 0, 0, i);
    assert_int_equal(ms_reader_queued(r), 269);
    assert_int_equal(ms_reader_dropped(r), 0);
    for (int i = 31; i < 300; i++) {
        ms_frame_t *f = ms_reader_pop(r);
        assert_non_null(f);
        assert_int_equal(f->pts, i);
        ms_frame_unref(f);
    }
    assert_null(ms_reader_pop(r));
    /* the bound: 300 queued, the 301st overflows */
    for (int i = 0; i < 301; i++)
        publish(h, 0, 0, i);
    assert_int_equal(ms_reader_overflows(r), 1);
    ms_hub_reader_close(r);

    ms_hub_free(h);
}

/* Prompt delivery: prompt readers while open (or flagged), and a time
 * renewed by outputs that serve many clients. */
static void test_prompt_delivery(void **state)
{
    (void)state;
    ms_hub_t *h = new_hub_av();
    counter_t c = {0, 0};
    assert_false(ms_hub_prompt_wanted(h, 1000));
    ms_reader_opts_t plain = {.on_frames = on_frames, .ud = &c};
    ms_reader_opts_t prompt = {.prompt = 7, .on_frames = on_frames, .ud = &c};
    ms_reader_t *a = ms_hub_reader_open(h, &plain);
    assert_false(ms_hub_prompt_wanted(h, 1000));
    ms_reader_t *b = ms_hub_reader_open(h, &prompt);
    ms_reader_t *b2 = ms_hub_reader_open(h, &prompt);
    assert_true(ms_hub_prompt_wanted(h, 1000));
    ms_hub_reader_close(b);
    assert_true(ms_hub_prompt_wanted(h, 1000));
    ms_reader_set_prompt(b2, 0);
    ms_reader_set_prompt(b2, 0); /* idempotent */
    assert_false(ms_hub_prompt_wanted(h, 1000));
    ms_reader_set_prompt(a, 1);
    assert_true(ms_hub_prompt_wanted(h, 1000));
    ms_hub_reader_close(a); /* closing a reader flagged later counts it down */
    assert_false(ms_hub_prompt_wanted(h, 1000));
    /* a time: wanted strictly before it; an earlier time never shortens it */
    ms_hub_want_prompt(h, 5000);
    ms_hub_want_prompt(h, 3000);
    assert_true(ms_hub_prompt_wanted(h, 4999));
    assert_false(ms_hub_prompt_wanted(h, 5000));
    ms_hub_reader_close(b2);
    ms_hub_free(h);
}

/* The read bound readers ask of a batched source: the smallest of the open
 * readers' opts.batch_max_ms, 0 when none asks. */
static void test_batch_max(void **state)
{
    (void)state;
    ms_hub_t *h = new_hub_av();
    counter_t c = {0, 0};
    assert_int_equal(ms_hub_batch_max_ms(h), 0);
    ms_reader_opts_t plain = {.on_frames = on_frames, .ud = &c};
    ms_reader_opts_t rec = {.on_frames = on_frames, .batch_max_ms = 500, .ud = &c};
    ms_reader_opts_t tight = {.on_frames = on_frames, .batch_max_ms = 200, .ud = &c};
    ms_reader_t *a = ms_hub_reader_open(h, &plain);
    assert_int_equal(ms_hub_batch_max_ms(h), 0);
    ms_reader_t *b = ms_hub_reader_open(h, &rec);
    assert_int_equal(ms_hub_batch_max_ms(h), 500);
    ms_reader_t *d = ms_hub_reader_open(h, &tight);
    assert_int_equal(ms_hub_batch_max_ms(h), 200);
    ms_hub_reader_close(d);
    assert_int_equal(ms_hub_batch_max_ms(h), 500);
    ms_hub_reader_close(b);
    assert_int_equal(ms_hub_batch_max_ms(h), 0);
    ms_hub_reader_close(a);
    ms_hub_free(h);
}

static void publish_sized(ms_hub_t *h, int key, int64_t pts, uint32_t size)
{
    ms_frame_t *f = ms_frame_new(NULL, size);
    assert_non_null(f);
    f->track = 0;
    f->flags = key ? MS_FRAME_KEY : 0;
    f->pts = f->dts = pts;
    ms_hub_publish(h, f);
    ms_frame_unref(f);
}

/* A camera that stops sending keyframes: the GOP cache stops at the hub's
 * byte limit (counted once, with what was done), new readers wait for the
 * next keyframe, and a slow reader's ring is capped by bytes too. */
static void test_limits_without_keyframes(void **state)
{
    (void)state;
    ms_hub_t *h = new_hub_av();
    ms_hub_set_limits(h, 1 << 20, 0); /* 1 MiB */
    assert_int_equal(ms_hub_limit_bytes(h), 1 << 20);
    assert_int_equal(ms_hub_limit_ms(h), MS_HUB_DEF_MAX_MS);
    ms_reader_t *slow = ms_hub_reader_open(h, &(ms_reader_opts_t){.queue_frames = 4096});
    publish_sized(h, 1, 0, 100000);
    for (int i = 1; i < 40; i++) /* 4 MB of P-frames */
        publish_sized(h, 0, i * 3600, 100000);
    ms_hub_info_t info;
    ms_hub_get_info(h, &info);
    assert_true(info.gop_bytes == 0);
    assert_int_equal(info.limit_hits, 1); /* once per keyframe-less stretch */
    assert_non_null(strstr(info.limit_what, "GOP cache dropped"));
    assert_true(info.last_key_us > 0 && info.limit_hit_us > 0);
    assert_true(info.limit_waiting);
    /* the unread ring holds at most 2 x the limit */
    assert_true(ms_reader_queued(slow) * 100000u <= 2u << 20);
    assert_true(ms_reader_overflows(slow) >= 1);
    ms_reader_t *r = ms_hub_reader_open(h, &(ms_reader_opts_t){0});
    assert_int_equal(ms_reader_queued(r), 0); /* waits for a keyframe */
    publish_sized(h, 0, 41 * 3600, 1000);
    assert_int_equal(ms_reader_queued(r), 0);
    publish_sized(h, 1, 42 * 3600, 1000);
    assert_int_equal(ms_reader_queued(r), 1);
    ms_hub_get_info(h, &info);
    assert_true(info.gop_bytes == 1000);
    assert_false(info.limit_waiting); /* a keyframe came */
    ms_hub_reader_close(r);
    ms_hub_reader_close(slow);
    ms_hub_free(h);
}

typedef struct {
    int frames, batches;
} batch_t;

static void on_batch_end(ms_reader_t *r, void *ud)
{
    (void)r;
    ((batch_t *)ud)->batches++;
}

static void test_batch_end(void **state)
{
    (void)state;
    ms_hub_t *h = new_hub_av();
    batch_t b = {0, 0};
    ms_reader_t *r =
        ms_hub_reader_open(h, &(ms_reader_opts_t){.on_batch_end = on_batch_end, .ud = &b});
    ms_hub_batch_end(h); /* nothing published: no call */
    assert_int_equal(b.batches, 0);
    publish(h, 0, 1, 0);
    publish(h, 0, 0, 1);
    ms_hub_batch_end(h);
    assert_int_equal(b.batches, 1);
    ms_hub_batch_end(h);
    assert_int_equal(b.batches, 1);
    ms_hub_reader_close(r);
    ms_hub_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gop_cache_start),
        cmocka_unit_test(test_shared_not_copied),
        cmocka_unit_test(test_overflow_resyncs_on_keyframe),
        cmocka_unit_test(test_tracks_callback_and_info),
        cmocka_unit_test(test_ring_grows_in_order),
        cmocka_unit_test(test_prompt_delivery),
        cmocka_unit_test(test_batch_max),
        cmocka_unit_test(test_limits_without_keyframes),
        cmocka_unit_test(test_batch_end),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
