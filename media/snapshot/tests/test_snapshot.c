/* Snapshots: real H.264/H.265 keyframes decoded and encoded as JPEG (sizes
 * checked by ffprobe decoding the files), the per-keyframe cache (200
 * concurrent get() calls from 8 threads cause exactly one decode; a new
 * keyframe causes one more), and the one-frame MP4 decoded by ffprobe. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <pthread.h>
#include <unistd.h>

#include "media/snapshot/snapshot.h"
#include "media/ts/tests/es.h"

static char tmpdir[200];

static void write_blob(const char *path, const ms_blob_t *b)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(b->data, 1, b->len, fp), b->len);
    fclose(fp);
}

/* ffprobe decodes the image: codec name and size; any stderr is an error. */
static void probe_image(const char *path, const char *codec, int w, int h)
{
    char cmd[1024], line[256];
    snprintf(cmd, sizeof cmd,
             "ffprobe -v error -count_frames -show_entries "
             "stream=codec_name,width,height,nb_read_frames -of default=nw=1 '%s' 2>&1",
             path);
    FILE *fp = popen(cmd, "r");
    assert_non_null(fp);
    int gw = -1, gh = -1, frames = -1, other = 0;
    char gc[32] = "";
    while (fgets(line, sizeof line, fp)) {
        line[strcspn(line, "\n")] = 0;
        if (!strncmp(line, "width=", 6))
            gw = atoi(line + 6);
        else if (!strncmp(line, "height=", 7))
            gh = atoi(line + 7);
        else if (!strncmp(line, "nb_read_frames=", 15))
            frames = atoi(line + 15);
        else if (!strncmp(line, "codec_name=", 11)) {
            size_t k = strlen(line + 11);
            k = k < sizeof gc - 1 ? k : sizeof gc - 1;
            memcpy(gc, line + 11, k);
            gc[k] = 0;
        } else {
            fprintf(stderr, "ffprobe: %s\n", line);
            other++;
        }
    }
    assert_int_equal(pclose(fp), 0);
    assert_int_equal(other, 0);
    assert_string_equal(gc, codec);
    assert_int_equal(gw, w);
    assert_int_equal(gh, h);
    assert_int_equal(frames, 1);
}

static void encode_one(const char *file, int h265)
{
    es_t es;
    assert_int_equal(es_load_video(&es, file, h265, 0), 50);
    assert_true(es.frames[0]->flags & MS_FRAME_KEY);
    ms_blob_t *full = NULL, *prev = NULL;
    assert_int_equal(ms_snapshot_encode(&es.params, es.frames[0]->data, es.frames[0]->size, 160, 4,
                                        &full, &prev),
                     0);
    assert_true(full->len > 1000);
    assert_int_equal(full->data[0], 0xFF); /* SOI (ITU-T T.81 B.1.1.3) */
    assert_int_equal(full->data[1], 0xD8);
    char path[300];
    snprintf(path, sizeof path, "%s/full.jpg", tmpdir);
    write_blob(path, full);
    probe_image(path, "mjpeg", 320, 240);
    snprintf(path, sizeof path, "%s/preview.jpg", tmpdir);
    write_blob(path, prev);
    probe_image(path, "mjpeg", 160, 120);
    ms_blob_unref(full);
    ms_blob_unref(prev);
    /* odd preview width rounds to even, aspect kept: 101 -> 100 x 76 */
    assert_int_equal(ms_snapshot_encode(&es.params, es.frames[0]->data, es.frames[0]->size, 101, 4,
                                        &full, &prev),
                     0);
    write_blob(path, prev);
    probe_image(path, "mjpeg", 100, 76);
    ms_blob_unref(full);
    ms_blob_unref(prev);
    /* garbage: an error, no crash */
    uint8_t junk[64];
    memset(junk, 0, sizeof junk);
    junk[3] = 60;
    assert_true(ms_snapshot_encode(&es.params, junk, sizeof junk, 160, 4, &full, &prev) < 0);
    assert_null(full);
    es_free(&es);
}

static void test_encode_h264(void **st)
{
    (void)st;
    encode_one("h264_320x240_25fps.h264", 0);
}

static void test_encode_h265(void **st)
{
    (void)st;
    encode_one("h265_320x240_25fps.h265", 1);
}

/* ---- the loop object -------------------------------------------------------- */

typedef struct {
    ms_snapshot_t *snap;
    atomic_int eagain, ok, other, ready;
    pthread_barrier_t bar;
} conc_t;

static void on_ready(void *ud)
{
    conc_t *c = ud;
    atomic_fetch_add(&c->ready, 1);
}

static void *getter(void *arg)
{
    conc_t *c = arg;
    pthread_barrier_wait(&c->bar);
    for (int i = 0; i < 25; i++) {
        ms_blob_t *b = NULL;
        int rc = ms_snapshot_get(c->snap, i & 1, &b, on_ready, c);
        if (rc == -EAGAIN)
            atomic_fetch_add(&c->eagain, 1);
        else if (rc == 0)
            atomic_fetch_add(&c->ok, 1);
        else
            atomic_fetch_add(&c->other, 1);
        ms_blob_unref(b);
    }
    return NULL;
}

static void run_until_ready(uv_loop_t *loop, conc_t *c, int want)
{
    for (int i = 0; i < 500 && atomic_load(&c->ready) < want; i++) {
        uv_run(loop, UV_RUN_NOWAIT);
        usleep(10000);
    }
    assert_int_equal(atomic_load(&c->ready), want);
}

static void publish(ms_hub_t *hub, es_t *es, int from, int n, int64_t base)
{
    for (int i = from; i < from + n; i++) {
        ms_frame_t *f = ms_frame_new(es->frames[i]->data, es->frames[i]->size);
        f->flags = es->frames[i]->flags | (i == 0 ? MS_FRAME_DISCONT : 0);
        f->pts = f->dts = base + (int64_t)i * 3600;
        ms_hub_publish(hub, f);
        ms_frame_unref(f);
    }
}

static void loop_test(const char *file, int h265, const char *codec)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    ms_hub_t *hub = ms_hub_new("[test]");
    es_t es;
    assert_int_equal(es_load_video(&es, file, h265, 0), 50);
    assert_int_equal(ms_hub_set_tracks(hub, &es.params, 1), 0);
    ms_snapshot_cfg_t cfg = {.preview_width = 160, .log_ctx = "[test]"};
    ms_snapshot_t *snap = ms_snapshot_new(&loop, hub, &cfg);
    assert_non_null(snap);

    static conc_t c;
    memset(&c, 0, sizeof c);
    c.snap = snap;
    ms_blob_t *b = NULL;
    assert_int_equal(ms_snapshot_get(snap, 0, &b, on_ready, &c), -ENOENT);
    assert_int_equal(ms_snapshot_get_mp4(snap, &b), -ENOENT);
    publish(hub, &es, 0, 10, 0);

    /* 200 concurrent requests for the same keyframe: one decode. */
    pthread_t th[8];
    pthread_barrier_init(&c.bar, NULL, 8);
    for (int i = 0; i < 8; i++)
        assert_int_equal(pthread_create(&th[i], NULL, getter, &c), 0);
    for (int i = 0; i < 8; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&c.bar);
    assert_int_equal(atomic_load(&c.eagain) + atomic_load(&c.ok), 200);
    assert_int_equal(atomic_load(&c.other), 0);
    run_until_ready(&loop, &c, atomic_load(&c.eagain));
    assert_int_equal(ms_snapshot_decodes(snap), 1);
    for (int i = 0; i < 200; i++) {
        assert_int_equal(ms_snapshot_get(snap, i & 1, &b, on_ready, &c), 0);
        ms_blob_unref(b);
    }
    assert_int_equal(ms_snapshot_decodes(snap), 1);
    char path[300];
    assert_int_equal(ms_snapshot_get(snap, 1, &b, NULL, NULL), 0);
    snprintf(path, sizeof path, "%s/p.jpg", tmpdir);
    write_blob(path, b);
    ms_blob_unref(b);
    probe_image(path, "mjpeg", 160, 120);

    /* one-frame MP4, cached per keyframe */
    ms_blob_t *m1 = NULL, *m2 = NULL;
    assert_int_equal(ms_snapshot_get_mp4(snap, &m1), 0);
    assert_int_equal(ms_snapshot_get_mp4(snap, &m2), 0);
    assert_ptr_equal(m1, m2);
    snprintf(path, sizeof path, "%s/preview.mp4", tmpdir);
    write_blob(path, m1);
    ms_blob_unref(m1);
    ms_blob_unref(m2);
    char got[32] = "";
    assert_int_equal(es_ffprobe(path, "video", got, sizeof got), 1);
    assert_string_equal(got, codec);

    /* A new keyframe (the clip's second GOP or a loop of it): one more
     * decode, and the cached MP4 is rebuilt. */
    int nextkey = -1;
    for (int i = 1; i < es.n; i++)
        if (es.frames[i]->flags & MS_FRAME_KEY) {
            nextkey = i;
            break;
        }
    if (nextkey > 0)
        publish(hub, &es, 10, nextkey - 10 + 1, 0);
    else
        publish(hub, &es, 0, 1, 50 * 3600);
    int before = atomic_load(&c.ready);
    assert_int_equal(ms_snapshot_get(snap, 0, &b, on_ready, &c), -EAGAIN);
    assert_int_equal(ms_snapshot_get(snap, 1, &b, on_ready, &c), -EAGAIN);
    run_until_ready(&loop, &c, before + 2);
    assert_int_equal(ms_snapshot_get(snap, 0, &b, on_ready, &c), 0);
    ms_blob_unref(b);
    assert_int_equal(ms_snapshot_decodes(snap), 2);
    assert_int_equal(ms_snapshot_get_mp4(snap, &m2), 0);
    ms_blob_unref(m2);

    /* a pending request is released by stop; the retry sees -ESHUTDOWN */
    publish(hub, &es, 0, 1, 200 * 3600);
    before = atomic_load(&c.ready);
    assert_int_equal(ms_snapshot_get(snap, 0, &b, on_ready, &c), -EAGAIN);
    ms_snapshot_stop(snap);
    assert_int_equal(atomic_load(&c.ready), before + 1);
    ms_hub_free(hub);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
    es_free(&es);
}

static void test_loop_h264(void **st)
{
    (void)st;
    loop_test("h264_320x240_25fps.h264", 0, "h264");
}

static void test_loop_h265(void **st)
{
    (void)st;
    loop_test("h265_320x240_25fps.h265", 1, "hevc");
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "%s/ms_snapshot_XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_h264),
        cmocka_unit_test(test_encode_h265),
        cmocka_unit_test(test_loop_h264),
        cmocka_unit_test(test_loop_h265),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[260];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        rc = rc ? rc : 1;
    return rc;
}
