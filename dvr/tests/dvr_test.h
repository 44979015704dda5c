/* Test helpers (header-only) for the DVR tests: a temporary node (data
 * directory + one storage root), a real uv loop and hub fed with the real
 * clip of tests/data (media/ts/tests/es.h), file walking and ffprobe. */
#ifndef MS_DVR_TEST_H
#define MS_DVR_TEST_H

#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "dvr/dvr.h"
#include "node/config.h" /* the tests build node and stream configs */
#include "media/ts/tests/es.h"
#include "util/clock.h"

typedef struct {
    char dir[512];
    char root[600];
    ms_node_cfg_t node;
    ms_storage_cfg_t st;
    uv_loop_t loop;
    ms_hub_t *hub;
    es_t es;
} dt_t;

static inline void dt_rm_rf(const char *path)
{
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", path);
}

/* New temp node: data_dir = dir, one root dir/archive with max_pct; the hub
 * carries the H.264 clip (h265 = 0) or the H.265 one. */
static inline void dt_setup_codec(dt_t *t, int max_pct, int h265)
{
    memset(t, 0, sizeof *t);
    snprintf(t->dir, sizeof t->dir, "%s/msdvrXXXXXX", P_tmpdir);
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->root, sizeof t->root, "%s/archive", t->dir);
    ms_node_cfg_defaults(&t->node);
    snprintf(t->node.name, sizeof t->node.name, "n1");
    snprintf(t->node.data_dir, sizeof t->node.data_dir, "%s", t->dir);
    snprintf(t->st.path, sizeof t->st.path, "%s", t->root);
    t->st.max_used_percent = max_pct;
    t->node.storage = &t->st;
    t->node.nstorage = 1;
    assert_int_equal(uv_loop_init(&t->loop), 0);
    assert_int_equal(es_load_video(&t->es,
                                   h265 ? "h265_320x240_25fps.h265" : "h264_320x240_25fps.h264",
                                   h265, 0),
                     50);
    t->hub = ms_hub_new("[test]");
    assert_non_null(t->hub);
    assert_int_equal(ms_hub_set_tracks(t->hub, &t->es.params, 1), 0);
}

static inline void dt_setup(dt_t *t, int max_pct)
{
    dt_setup_codec(t, max_pct, 0);
}

static inline void dt_teardown(dt_t *t)
{
    ms_hub_free(t->hub);
    assert_int_equal(uv_run(&t->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&t->loop), 0);
    es_free(&t->es);
    t->node.storage = NULL; /* on the stack of t */
    t->node.nstorage = 0;
    ms_node_cfg_free(&t->node);
    dt_rm_rf(t->dir);
}

static inline void dt_stream_cfg(ms_stream_cfg_t *c, const char *uid, int chunk_s, int64_t depth_s,
                                 ms_dvr_mode_t mode)
{
    ms_stream_cfg_defaults(c);
    snprintf(c->uid, sizeof c->uid, "%s", uid);
    snprintf(c->name, sizeof c->name, "%s", uid);
    c->dvr_enabled = 1;
    c->dvr_chunk_s = chunk_s;
    c->dvr_depth_s = depth_s;
    c->dvr_mode = mode;
}

/* ms_dvr_init with t's node config (its one storage root). */
static inline int dt_dvr_init(dt_t *t)
{
    ms_dvr_root_cfg_t root = {.path = t->st.path, .max_used_percent = t->st.max_used_percent};
    ms_dvr_cfg_t d = {.node_name = t->node.name,
                      .data_dir = t->node.data_dir,
                      .roots = t->node.nstorage ? &root : NULL,
                      .nroots = t->node.nstorage};
    return ms_dvr_init(&d);
}

/* ms_dvr_recorder_start on t's loop and hub with the dvr.* keys of c. */
static inline ms_dvr_recorder_t *dt_rec_start(dt_t *t, const ms_stream_cfg_t *c)
{
    ms_dvr_rec_cfg_t rc = {.uid = c->uid,
                           .name = c->name,
                           .enabled = c->dvr_enabled,
                           .chunk_s = c->dvr_chunk_s,
                           .depth_s = c->dvr_depth_s,
                           .event_mode = c->dvr_mode == MS_DVR_EVENT};
    return ms_dvr_recorder_start(&t->loop, t->hub, &rc);
}

/* Publishes frames i = first .. first+n-1 of a looped clip (25 fps, IDR
 * every 25 frames): dts = i * 3600 + dts_off, wallclock = wall0_us +
 * i * 40 ms + wall_off_us. */
static inline void dt_feed(dt_t *t, int first, int n, int64_t wall0_us, int64_t dts_off,
                           int64_t wall_off_us)
{
    for (int i = first; i < first + n; i++) {
        const ms_frame_t *src = t->es.frames[i % t->es.n];
        ms_frame_t *f = ms_frame_new(src->data, src->size);
        assert_non_null(f);
        f->track = 0;
        f->flags = src->flags & MS_FRAME_KEY;
        f->dts = f->pts = (int64_t)i * 3600 + dts_off;
        f->wallclock_us = wall0_us + (int64_t)i * 40000 + wall_off_us;
        ms_hub_publish(t->hub, f);
        ms_frame_unref(f);
    }
}

/* Whole seconds, `ago_s` before now. */
static inline int64_t dt_wall0(int64_t ago_s)
{
    return (ms_wall_us() / 1000000 - ago_s) * 1000000;
}

static inline void dt_walk(const char *dir, int *count, uint64_t *bytes)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char p[1200];
        int k = snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (k < 0 || (size_t)k >= sizeof p)
            continue;
        struct stat sb;
        if (lstat(p, &sb) < 0)
            continue;
        if (S_ISDIR(sb.st_mode)) {
            dt_walk(p, count, bytes);
        } else if (strstr(e->d_name, ".m4s")) {
            (*count)++;
            *bytes += (uint64_t)sb.st_size;
        }
    }
    closedir(d);
}

static inline uint64_t dt_file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (uint64_t)sb.st_size : (uint64_t)-1;
}

/* ffprobe: frames decoded (video) with no error line. */
static inline int dt_frames_codec(const char *path, const char *want)
{
    char codec[32] = "", p[400];
    if (strlen(path) >= sizeof p)
        return -1;
    memcpy(p, path, strlen(path) + 1);
    int n = es_ffprobe(p, "video", codec, sizeof codec);
    if (n >= 0 && strcmp(codec, want) != 0)
        return -3;
    return n;
}

static inline int dt_frames(const char *path)
{
    return dt_frames_codec(path, "h264");
}

/* ffprobe: the file's media duration in ms (-1 on error). Chunk times are
 * wall-clock times (tfdt = UTC), so ffprobe's "duration" counts from 0:
 * the media duration is duration - start_time. */
static inline int64_t dt_duration_ms(const char *path)
{
    char cmd[1400];
    snprintf(cmd, sizeof cmd,
             "ffprobe -v error -show_entries format=start_time,duration -of default=nw=1 '%s'",
             path);
    FILE *fp = popen(cmd, "r");
    if (!fp)
        return -1;
    char line[128];
    double start = -1, dur = -1;
    while (fgets(line, sizeof line, fp)) {
        if (!strncmp(line, "start_time=", 11))
            start = atof(line + 11);
        else if (!strncmp(line, "duration=", 9))
            dur = atof(line + 9);
    }
    pclose(fp);
    if (start < 0 || dur < 0)
        return -1;
    return (int64_t)((dur - start) * 1000 + 0.5);
}

#endif
