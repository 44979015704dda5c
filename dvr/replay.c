/* Frame replay of the archive (dvr/archive.h): walks the fragments of the
 * chunks in order, demuxes each (media/fmp4/demux.c, ISO/IEC 14496-12
 * 8.8) and returns its samples as frames in wall-time order. Used by the
 * RTSP archive sessions on the libuv threadpool. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dvr/archive.h"
#include "media/fmp4/demux.h"
#include "util/clock.h"

#define LOOKBACK_MS (3600 * 1000) /* keyframe search: one hour back */
#define AHEAD_MS    60000         /* chunk queries reach past now */
#define GAP_MS      2000          /* a hole longer than this is a discontinuity */
#define MAX_FRAG    (64u << 20)   /* bytes of one fragment (moof + mdat) */

struct ms_dvr_replay {
    char uid[64];
    ms_dvr_chunk_t *v;
    size_t n, ci, fi; /* current chunk list, chunk and next fragment */
    int64_t cur_id;   /* id of the chunk whose init is loaded (0 none) */
    ms_blob_t *first_init;
    ms_blob_t *init;
    ms_fmp4d_init_t in;
    int map[MS_FMP4D_MAX_TRACKS]; /* demux track -> output track or -1 */
    int fd;
    int64_t prev_end_ms; /* end of the last fragment read (0 none) */
    int discont;
    int ended;
    uint8_t *buf;
    size_t bcap;
    ms_fmp4d_sample_t *sv;
    size_t sn, scap;
    ms_frame_t **q;
    size_t qn, qi, qcap;
};

static int64_t ts_us(uint64_t t, uint32_t scale)
{
    return (int64_t)(t / scale * 1000000 + (t % scale) * 1000000 / scale);
}

/* Loads the init segment of chunk c and opens its file. The first init
 * fixes the tracks; a later chunk must carry the same bytes. */
static int load_chunk(ms_dvr_replay_t *r, const ms_dvr_chunk_t *c)
{
    ms_blob_t *init = NULL;
    int rc = ms_dvr_chunk_read(c, 0, c->init_len, &init);
    if (rc < 0)
        return rc;
    if (r->first_init && (init->len != r->first_init->len ||
                          memcmp(init->data, r->first_init->data, init->len) != 0)) {
        ms_blob_unref(init);
        r->ended = 1;
        return -ENOTSUP;
    }
    ms_fmp4d_init_t in;
    if (ms_fmp4d_init(init->data, init->len, &in) < 0) {
        ms_blob_unref(init);
        return -EIO;
    }
    int fd = open(c->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        ms_blob_unref(init);
        return rc;
    }
    if (r->fd >= 0)
        close(r->fd);
    r->fd = fd;
    ms_blob_unref(r->init);
    r->init = init;
    r->in = in;
    r->cur_id = c->id;
    if (!r->first_init)
        r->first_init = ms_blob_ref(init);
    return 0;
}

static int cmp_frame(const void *a, const void *b)
{
    const ms_frame_t *x = *(ms_frame_t *const *)a, *y = *(ms_frame_t *const *)b;
    if (x->wallclock_us != y->wallclock_us)
        return x->wallclock_us < y->wallclock_us ? -1 : 1;
    return x->track < y->track ? -1 : x->track > y->track;
}

static void q_clear(ms_dvr_replay_t *r)
{
    for (size_t i = r->qi; i < r->qn; i++)
        ms_frame_unref(r->q[i]);
    r->qn = r->qi = 0;
}

/* Reads fragment f of the loaded chunk into frames. */
static int load_frag(ms_dvr_replay_t *r, const ms_dvr_frag_t *f)
{
    if (f->size < 16 || f->size > MAX_FRAG)
        return -EIO;
    if (r->bcap < f->size) {
        uint8_t *nb = realloc(r->buf, (size_t)f->size);
        if (!nb)
            return -ENOMEM;
        r->buf = nb;
        r->bcap = (size_t)f->size;
    }
    int rc = ms_dvr_read_at(r->fd, r->buf, (size_t)f->size, f->off);
    if (rc < 0)
        return rc;
    uint64_t msz;
    uint32_t type;
    if (!ms_fmp4d_box(r->buf, (size_t)f->size, &msz, &type) ||
        type != MS_FOURCC('m', 'o', 'o', 'f') || msz > f->size)
        return -EIO;
    r->sn = 0;
    if ((rc = ms_fmp4d_moof(&r->in, r->buf, (size_t)msz, f->off, &r->sv, &r->sn, &r->scap)) < 0)
        return rc;
    q_clear(r);
    if (r->qcap < r->sn) {
        ms_frame_t **nq = realloc(r->q, r->sn * sizeof *nq);
        if (!nq)
            return -ENOMEM;
        r->q = nq;
        r->qcap = r->sn;
    }
    int vi = ms_fmp4d_video(&r->in);
    for (size_t i = 0; i < r->sn; i++) {
        const ms_fmp4d_sample_t *s = &r->sv[i];
        int m = s->track >= 0 && s->track < MS_FMP4D_MAX_TRACKS ? r->map[s->track] : -1;
        if (m < 0 || s->off < f->off || s->size > f->size || s->off - f->off > f->size - s->size)
            continue;
        ms_frame_t *fr = ms_frame_new(r->buf + (s->off - f->off), s->size);
        if (!fr)
            return -ENOMEM;
        uint32_t scale = r->in.t[s->track].timescale ? r->in.t[s->track].timescale : 90000;
        fr->track = (uint8_t)m;
        fr->dts = (int64_t)s->dts;
        fr->pts = (int64_t)s->dts + s->cto;
        fr->wallclock_us = ts_us(s->dts, scale);
        fr->flags = (uint8_t)(s->track != vi || MS_FMP4D_SYNC(s) ? MS_FRAME_KEY : 0);
        r->q[r->qn++] = fr;
    }
    qsort(r->q, r->qn, sizeof *r->q, cmp_frame);
    if (r->qn && r->discont)
        r->q[0]->flags |= MS_FRAME_DISCONT;
    r->discont = 0;
    r->prev_end_ms = f->t_ms + f->dur_ms;
    return 0;
}

/* Re-reads the chunk list from the current chunk on (new fragments of an
 * open chunk, chunks written since). Keeps the position. */
static int refresh(ms_dvr_replay_t *r)
{
    int64_t from = r->n ? r->v[r->ci < r->n ? r->ci : r->n - 1].start_ms : r->prev_end_ms;
    int64_t cur = r->ci < r->n ? r->v[r->ci].id : 0;
    ms_dvr_chunk_t *v = NULL;
    size_t n = 0;
    int rc = ms_dvr_chunks(r->uid, from, ms_wall_us() / 1000 + AHEAD_MS, &v, &n);
    if (rc < 0)
        return rc;
    size_t ci = n;
    for (size_t i = 0; i < n; i++)
        if (v[i].id == cur || (v[i].start_ms >= r->prev_end_ms && v[i].id != r->cur_id)) {
            ci = i;
            break;
        }
    if (ci < n && v[ci].id != cur)
        r->fi = 0; /* the current chunk vanished or a newer one follows */
    ms_dvr_chunks_free(r->v, r->n);
    r->v = v;
    r->n = n;
    r->ci = ci;
    return 0;
}

int ms_dvr_replay_next(ms_dvr_replay_t *r, ms_frame_t **f)
{
    *f = NULL;
    for (int guard = 0; guard < 4096 && !r->ended; guard++) {
        if (r->qi < r->qn) {
            *f = r->q[r->qi++];
            return 1;
        }
        if (r->ci >= r->n || r->fi >= r->v[r->ci].nfrags) {
            if (r->ci < r->n && !r->v[r->ci].open) {
                r->ci++; /* closed chunk done: the next one */
                r->fi = 0;
                if (r->ci < r->n)
                    continue;
            }
            int rc = refresh(r);
            if (rc < 0)
                return rc;
            if (r->ci >= r->n || (r->fi >= r->v[r->ci].nfrags && r->v[r->ci].open))
                return 0; /* nothing new yet */
            continue;
        }
        const ms_dvr_chunk_t *c = &r->v[r->ci];
        if (c->id != r->cur_id) {
            int rc = load_chunk(r, c);
            if (rc == -ENOTSUP)
                return 0;
            if (rc < 0) {
                r->ci++; /* vanished (retention): skip it */
                r->fi = 0;
                continue;
            }
        }
        const ms_dvr_frag_t *fr = &c->frags[r->fi++];
        if (r->prev_end_ms && fr->t_ms - r->prev_end_ms > GAP_MS)
            r->discont = 1;
        int rc = load_frag(r, fr);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int ms_dvr_replay_ended(const ms_dvr_replay_t *r)
{
    return r->ended;
}

void ms_dvr_replay_free(ms_dvr_replay_t *r)
{
    if (!r)
        return;
    q_clear(r);
    free(r->q);
    free(r->sv);
    free(r->buf);
    if (r->fd >= 0)
        close(r->fd);
    ms_blob_unref(r->init);
    ms_blob_unref(r->first_init);
    ms_dvr_chunks_free(r->v, r->n);
    free(r);
}

int ms_dvr_replay_open(const char *uid, int64_t from_ms, ms_dvr_replay_t **out,
                       ms_codec_params_t tracks[MS_MAX_TRACKS], int *ntracks, int64_t *start_ms)
{
    *out = NULL;
    *ntracks = 0;
    ms_dvr_replay_t *r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    r->fd = -1;
    snprintf(r->uid, sizeof r->uid, "%s", uid);
    int rc =
        ms_dvr_chunks(uid, from_ms - LOOKBACK_MS, ms_wall_us() / 1000 + AHEAD_MS, &r->v, &r->n);
    if (rc < 0)
        goto err;
    /* the last keyframe fragment at or before from_ms, else the first after */
    size_t bc = r->n, bf = 0, ac = r->n, af = 0;
    for (size_t ci = 0; ci < r->n; ci++)
        for (size_t q = 0; q < r->v[ci].nfrags; q++) {
            const ms_dvr_frag_t *fr = &r->v[ci].frags[q];
            if (!fr->key)
                continue;
            if (fr->t_ms <= from_ms) {
                bc = ci;
                bf = q;
            } else if (ac == r->n) {
                ac = ci;
                af = q;
            }
        }
    if (bc == r->n) {
        bc = ac;
        bf = af;
    }
    rc = -ENOENT;
    if (bc == r->n)
        goto err;
    r->ci = bc;
    r->fi = bf;
    *start_ms = r->v[bc].frags[bf].t_ms;
    if ((rc = load_chunk(r, &r->v[bc])) < 0)
        goto err;
    int n = 0;
    for (int i = 0; i < r->in.ntracks && i < MS_FMP4D_MAX_TRACKS; i++) {
        r->map[i] = -1;
        if (n < MS_MAX_TRACKS && ms_fmp4d_params(&r->in.t[i], &tracks[n]) == 0)
            r->map[i] = n++;
    }
    for (int i = r->in.ntracks; i < MS_FMP4D_MAX_TRACKS; i++)
        r->map[i] = -1;
    rc = -ENOENT;
    if (n == 0)
        goto err;
    *ntracks = n;
    *out = r;
    return 0;
err:
    ms_dvr_replay_free(r);
    return rc;
}
