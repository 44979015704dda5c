/* Test helper (header-only): loads the elementary streams of tests/data and
 * splits them into frames in the payload format of media/stream/frame.h.
 * Shared by the TS, fMP4 and HLS tests. */
#ifndef MS_TEST_ES_H
#define MS_TEST_ES_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "media/codec/nal.h"
#include "media/stream/frame.h"
#include "util/buf.h"

#define ES_MAX_FRAMES 256

typedef struct {
    ms_codec_params_t params;
    ms_frame_t *frames[ES_MAX_FRAMES];
    int n;
} es_t;

static inline uint8_t *es_load(const char *name, size_t *len)
{
    const char *dir = getenv("MS_TEST_DATA");
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir ? dir : "tests/data", name);
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *p = malloc((size_t)n);
    if (p && fread(p, 1, (size_t)n, fp) != (size_t)n) {
        free(p);
        p = NULL;
    }
    fclose(fp);
    *len = (size_t)n;
    return p;
}

static inline void es_free(es_t *es)
{
    for (int i = 0; i < es->n; i++)
        ms_frame_unref(es->frames[i]);
    es->n = 0;
}

static inline void es_push(es_t *es, ms_buf_t *au, int key, int track, int64_t ts)
{
    if (!au->len || es->n >= ES_MAX_FRAMES)
        return;
    ms_frame_t *f = ms_frame_new(au->data, au->len);
    f->track = (uint8_t)track;
    f->flags = key ? MS_FRAME_KEY : 0;
    f->pts = f->dts = ts;
    f->wallclock_us = 1700000000000000LL + ts * 1000 / 90;
    es->frames[es->n++] = f;
    ms_buf_reset(au);
}

/* Annex-B H.264 (h265 = 0) or H.265 (h265 = 1) -> one frame per access unit
 * (25 fps: 3600 ticks of 90 kHz), AUDs stripped, keyframes flagged. */
static inline int es_load_video(es_t *es, const char *name, int h265, int track)
{
    size_t len;
    memset(es, 0, sizeof *es);
    uint8_t *buf = es_load(name, &len);
    if (!buf)
        return -1;
    ms_codec_params_t *p = &es->params;
    p->codec = h265 ? MS_CODEC_H265 : MS_CODEC_H264;
    p->kind = MS_TRACK_VIDEO;
    p->clock_rate = 90000;
    p->width = 320;
    p->height = 240;
    ms_buf_t au = MS_BUF_INIT;
    int key = 0, has_vcl = 0;
    size_t off = 0;
    const uint8_t *nal;
    size_t nlen;
    while (ms_annexb_next(buf, len, &off, &nal, &nlen) == 1) {
        int type = h265 ? (nal[0] >> 1) & 0x3f : nal[0] & 0x1f;
        int vcl = h265 ? type < 32 : (type >= 1 && type <= 5);
        int first_slice = vcl && nlen > 2 && (h265 ? (nal[2] & 0x80) : (nal[1] & 0x80));
        int aud = h265 ? type == 35 : type == 9;
        int ps_or_sei = h265 ? (type >= 32 && type <= 40) : (type >= 6 && type <= 8);
        if (has_vcl && (first_slice || ps_or_sei || aud)) {
            es_push(es, &au, key, track, (int64_t)es->n * 3600);
            key = has_vcl = 0;
        }
        if (aud)
            continue;
        if (vcl) {
            has_vcl = 1;
            if (h265 ? (type >= 16 && type <= 23) : type == 5)
                key = 1;
        }
        uint8_t *dst = NULL;
        uint16_t *dlen = NULL;
        if (h265 ? type == 32 : 0) {
            dst = p->vps;
            dlen = &p->vps_len;
        } else if (h265 ? type == 33 : type == 7) {
            dst = p->sps;
            dlen = &p->sps_len;
        } else if (h265 ? type == 34 : type == 8) {
            dst = p->pps;
            dlen = &p->pps_len;
        }
        if (dst && nlen <= MS_PARAM_SET_MAX && !*dlen) {
            memcpy(dst, nal, nlen);
            *dlen = (uint16_t)nlen;
        }
        ms_buf_be32(&au, (uint32_t)nlen);
        ms_buf_append(&au, nal, nlen);
    }
    if (has_vcl)
        es_push(es, &au, key, track, (int64_t)es->n * 3600);
    ms_buf_free(&au);
    free(buf);
    return es->n;
}

/* ADTS AAC -> raw frames (1024 samples each, clock = sample rate) and the
 * AudioSpecificConfig built from the first header (ISO/IEC 14496-3 1.A.2). */
static inline int es_load_aac(es_t *es, const char *name, int track)
{
    static const int rates[13] = {96000, 88200, 64000, 48000, 44100, 32000, 24000,
                                  22050, 16000, 12000, 11025, 8000,  7350};
    size_t len;
    memset(es, 0, sizeof *es);
    uint8_t *buf = es_load(name, &len);
    if (!buf)
        return -1;
    ms_codec_params_t *p = &es->params;
    size_t off = 0;
    ms_buf_t au = MS_BUF_INIT;
    while (off + 7 <= len && buf[off] == 0xFF && (buf[off + 1] & 0xF0) == 0xF0) {
        const uint8_t *h = buf + off;
        int prot_absent = h[1] & 1;
        int profile = h[2] >> 6, sri = (h[2] >> 2) & 0xF;
        int ch = ((h[2] & 1) << 2) | (h[3] >> 6);
        size_t flen = ((size_t)(h[3] & 3) << 11) | ((size_t)h[4] << 3) | (h[5] >> 5);
        size_t hl = prot_absent ? 7 : 9;
        if (flen < hl || off + flen > len || sri > 12)
            break;
        if (!p->codec) {
            p->codec = MS_CODEC_AAC;
            p->kind = MS_TRACK_AUDIO;
            p->sample_rate = rates[sri];
            p->clock_rate = (uint32_t)rates[sri];
            p->channels = ch;
            unsigned asc =
                ((unsigned)(profile + 1) << 11) | ((unsigned)sri << 7) | ((unsigned)ch << 3);
            p->asc[0] = (uint8_t)(asc >> 8);
            p->asc[1] = (uint8_t)asc;
            p->asc_len = 2;
        }
        ms_buf_append(&au, h + hl, flen - hl);
        int64_t ts = (int64_t)es->n * 1024;
        es_push(es, &au, 1, track, 0);
        es->frames[es->n - 1]->pts = es->frames[es->n - 1]->dts = ts;
        es->frames[es->n - 1]->wallclock_us = 1700000000000000LL + ts * 1000000 / p->sample_rate;
        off += flen;
    }
    ms_buf_free(&au);
    free(buf);
    return es->n;
}

/* Runs ffprobe on path and returns the number of frames it decoded for the
 * stream of the given codec_type ("video"/"audio"), or -1. codec_out gets
 * the codec name. Any stderr output counts as an error (-2). */
static inline int es_ffprobe(const char *path, const char *codec_type, char *codec_out, size_t cap)
{
    char cmd[1024];
    char errpath[600];
    snprintf(errpath, sizeof errpath, "%s.err", path);
    snprintf(cmd, sizeof cmd,
             "ffprobe -v error -count_frames -select_streams %c -show_entries "
             "stream=codec_name,nb_read_frames -of default=nw=1 '%s' 2>'%s'",
             codec_type[0], path, errpath);
    FILE *fp = popen(cmd, "r");
    if (!fp)
        return -1;
    char line[256];
    int frames = -1;
    while (fgets(line, sizeof line, fp)) {
        line[strcspn(line, "\r\n")] = 0;
        if (!strncmp(line, "codec_name=", 11) && codec_out && cap) {
            size_t k = strlen(line + 11);
            if (k >= cap)
                k = cap - 1;
            memcpy(codec_out, line + 11, k);
            codec_out[k] = 0;
        } else if (!strncmp(line, "nb_read_frames=", 15))
            frames = atoi(line + 15);
    }
    int rc = pclose(fp);
    FILE *ef = fopen(errpath, "r");
    long errlen = 0;
    if (ef) {
        fseek(ef, 0, SEEK_END);
        errlen = ftell(ef);
        if (errlen > 0) {
            fseek(ef, 0, SEEK_SET);
            char e[512];
            size_t k = fread(e, 1, sizeof e - 1, ef);
            e[k] = 0;
            fprintf(stderr, "ffprobe stderr: %s\n", e);
        }
        fclose(ef);
    }
    remove(errpath);
    if (rc != 0)
        return -1;
    return errlen > 0 ? -2 : frames;
}

#endif
