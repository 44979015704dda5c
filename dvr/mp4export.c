/* MP4 export and keyframe-at-a-time from the archive (dvr/archive.h,
 * docs/dvr.md "MP4 export"). The export reads only metadata at open (the
 * init segment and every moof of the window), builds ftyp + moov + mdat
 * header with media/fmp4/progressive.h, and describes the mdat payload as
 * a list of extents (chunk file, offset, length): the mdat payload of every
 * selected fragment, in order. Reads of any byte range binary-search that
 * list and pread only those bytes (no whole-file buffering). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dvr/archive.h"
#include "media/fmp4/demux.h"
#include "media/fmp4/progressive.h"

#define MAX_MOOF     (16u << 20)
#define MAX_EXTENTS  (1u << 20)
#define KEY_LOOKBACK (3600 * 1000) /* keyframe search: one hour back at most */

typedef struct {
    uint32_t file; /* index into paths */
    uint64_t src, len, dst;
} extent_t;

struct ms_dvr_export {
    ms_blob_t *head;
    uint64_t size;
    int64_t start_ms;
    char (*paths)[MS_DVR_PATH_MAX];
    size_t npaths;
    extent_t *ext;
    size_t next;
    int fd;
    uint32_t fd_file;
};

int ms_dvr_read_at(int fd, void *p, size_t n, uint64_t off)
{
    uint8_t *q = p;
    while (n) {
        ssize_t k = pread(fd, q, n, (off_t)off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return k < 0 ? -errno : -EIO;
        q += k;
        n -= (size_t)k;
        off += (uint64_t)k;
    }
    return 0;
}

/* First read of a fragment: the moof of a second of video is a few hundred
 * bytes, so one pread usually brings the moof and the mdat header. */
#define FRAG_HEAD_READ 4096

/* Reads the moof of fragment f of the open file fd into *buf (grown) and
 * demuxes its samples into *v; payload and plen get the mdat payload
 * extent. ISO/IEC 14496-12 4.2 (box header, largesize), 8.8.4 (moof). */
static int read_frag(int fd, const ms_dvr_frag_t *f, const ms_fmp4d_init_t *in, uint8_t **buf,
                     size_t *bcap, ms_fmp4d_sample_t **v, size_t *n, size_t *cap, uint64_t *payload,
                     uint64_t *plen)
{
    if (f->size < 16)
        return -EIO;
    size_t got = f->size < FRAG_HEAD_READ ? (size_t)f->size : FRAG_HEAD_READ;
    if (*bcap < got) {
        uint8_t *nb = realloc(*buf, FRAG_HEAD_READ);
        if (!nb)
            return -ENOMEM;
        *buf = nb;
        *bcap = FRAG_HEAD_READ;
    }
    int rc = ms_dvr_read_at(fd, *buf, got, f->off);
    if (rc < 0)
        return rc;
    const uint8_t *hdr = *buf;
    uint64_t msz = ms_rd_be32(hdr);
    if (msz == 1)
        msz = ((uint64_t)ms_rd_be32(hdr + 8) << 32) | ms_rd_be32(hdr + 12);
    if (ms_rd_be32(hdr + 4) != MS_FOURCC('m', 'o', 'o', 'f') || msz < 16 || msz > MAX_MOOF ||
        msz + 8 > f->size)
        return -EIO;
    /* the moof and up to 16 bytes of mdat header */
    size_t need = (size_t)(msz + 16 <= f->size ? msz + 16 : f->size);
    if (need > got) {
        if (*bcap < need) {
            uint8_t *nb = realloc(*buf, need);
            if (!nb)
                return -ENOMEM;
            *buf = nb;
            *bcap = need;
        }
        if ((rc = ms_dvr_read_at(fd, *buf + got, need - got, f->off + got)) < 0)
            return rc;
    }
    const uint8_t *mh = *buf + msz;
    uint32_t mtype = ms_rd_be32(mh + 4);
    uint64_t mhl = ms_rd_be32(mh) == 1 ? 16 : 8;
    if (mtype != MS_FOURCC('m', 'd', 'a', 't') || msz + mhl > f->size)
        return -EIO;
    *payload = f->off + msz + mhl;
    *plen = f->size - msz - mhl;
    size_t before = *n;
    rc = ms_fmp4d_moof(in, *buf, (size_t)msz, f->off, v, n, cap);
    if (rc < 0)
        return rc == -ENOMEM ? rc : -EIO;
    for (size_t i = before; i < *n; i++)
        if ((*v)[i].off < *payload || (*v)[i].off + (*v)[i].size > *payload + *plen)
            return -EIO;
    return 0;
}

typedef struct {
    ms_mp4p_sample_t *s;
    size_t n, cap;
    uint64_t first_dts, last_dts;
    uint32_t last_dur;
} tsamp_t;

static int tpush(tsamp_t *t, const ms_mp4p_sample_t *s)
{
    if (t->n == t->cap) {
        size_t nc = t->cap ? t->cap * 2 : 256;
        ms_mp4p_sample_t *ns = realloc(t->s, nc * sizeof *ns);
        if (!ns)
            return -ENOMEM;
        t->s = ns;
        t->cap = nc;
    }
    t->s[t->n++] = *s;
    return 0;
}

static int64_t dts_ms(uint64_t dts, uint32_t ts)
{
    return (int64_t)(dts / ts * 1000 + (dts % ts) * 1000 / ts);
}

int ms_dvr_export_open(const char *uid, int64_t from_ms, int64_t dur_ms, ms_dvr_export_t **out)
{
    *out = NULL;
    if (dur_ms <= 0)
        return -EINVAL;
    ms_dvr_chunk_t *v = NULL;
    size_t n = 0;
    int rc = ms_dvr_chunks(uid, from_ms, from_ms + dur_ms, &v, &n);
    if (rc < 0)
        return rc;
    ms_dvr_export_t *x = calloc(1, sizeof *x);
    ms_blob_t *init = NULL;
    ms_fmp4d_init_t in;
    tsamp_t ts[MS_FMP4D_MAX_TRACKS];
    memset(ts, 0, sizeof ts);
    ms_fmp4d_sample_t *sv = NULL;
    size_t sn = 0, scap = 0, bcap = 0, ecap = 0;
    uint8_t *buf = NULL;
    ms_buf_t head = MS_BUF_INIT;
    int fd = -1;
    if (!x) {
        rc = -ENOMEM;
        goto err;
    }
    x->fd = -1;
    x->paths = n ? calloc(n, sizeof *x->paths) : NULL;
    if (n && !x->paths) {
        rc = -ENOMEM;
        goto err;
    }
    int started = 0, stop = 0;
    int64_t end_ms = 0;
    uint64_t dst = 0;
    for (size_t ci = 0; ci < n && !stop; ci++) {
        const ms_dvr_chunk_t *c = &v[ci];
        if (!c->nfrags || c->end_ms <= from_ms)
            continue;
        /* one descriptor per chunk for its init segment and its moofs */
        fd = open(c->path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ms_blob_t *ci_init = c->init_len <= c->bytes ? ms_blob_new(NULL, c->init_len) : NULL;
        if (!ci_init || ms_dvr_read_at(fd, ci_init->data, c->init_len, 0) < 0) {
            ms_blob_unref(ci_init);
            close(fd);
            fd = -1;
            continue;
        }
        if (!init) {
            if (ms_fmp4d_init(ci_init->data, ci_init->len, &in) < 0) {
                ms_blob_unref(ci_init);
                close(fd);
                fd = -1;
                continue;
            }
            init = ci_init;
        } else {
            /* one moov holds one sample description per track here */
            int same = ci_init->len == init->len && !memcmp(ci_init->data, init->data, init->len);
            ms_blob_unref(ci_init);
            if (!same)
                break;
        }
        size_t k = 0;
        if (!started) {
            for (size_t q = 0; q < c->nfrags; q++)
                if (c->frags[q].key && c->frags[q].t_ms <= from_ms)
                    k = q;
            started = 1;
            x->start_ms = c->frags[k].t_ms;
            end_ms = c->frags[k].t_ms + dur_ms;
        }
        uint32_t file = (uint32_t)x->npaths;
        snprintf(x->paths[x->npaths++], MS_DVR_PATH_MAX, "%s", c->path);
        for (; k < c->nfrags; k++) {
            const ms_dvr_frag_t *f = &c->frags[k];
            if (f->t_ms >= end_ms) {
                stop = 1;
                break;
            }
            uint64_t pay, plen;
            sn = 0;
            rc = read_frag(fd, f, &in, &buf, &bcap, &sv, &sn, &scap, &pay, &plen);
            if (rc == -ENOMEM)
                goto err;
            if (rc < 0) {
                stop = 1; /* torn or vanished: the export ends here */
                break;
            }
            if (x->next == ecap) {
                size_t nc = ecap ? ecap * 2 : 64;
                extent_t *ne = nc <= MAX_EXTENTS ? realloc(x->ext, nc * sizeof *ne) : NULL;
                if (!ne) {
                    rc = -ENOMEM;
                    goto err;
                }
                x->ext = ne;
                ecap = nc;
            }
            x->ext[x->next++] = (extent_t){file, pay, plen, dst};
            for (size_t q = 0; q < sn; q++) {
                const ms_fmp4d_sample_t *s = &sv[q];
                tsamp_t *t = &ts[s->track];
                uint32_t tsc = in.t[s->track].timescale;
                if (dts_ms(s->dts, tsc) >= end_ms)
                    continue; /* trimmed to the asked duration */
                if (!t->n && in.t[s->track].handler == MS_FOURCC('v', 'i', 'd', 'e') &&
                    !MS_FMP4D_SYNC(s))
                    continue; /* a video track starts on a sync sample */
                if (t->n) {
                    /* durations from decode times: a recording hole shows
                     * as a longer sample, the timeline stays wall time */
                    uint64_t d = s->dts > t->last_dts ? s->dts - t->last_dts : t->last_dur;
                    if (d > UINT32_MAX)
                        d = t->last_dur;
                    t->s[t->n - 1].dur = (uint32_t)d;
                }
                ms_mp4p_sample_t o = {s->dur, s->size, s->flags, s->cto, dst + (s->off - pay)};
                if ((rc = tpush(t, &o)) < 0)
                    goto err;
                t->last_dts = s->dts;
                t->last_dur = s->dur;
            }
            dst += plen;
        }
        close(fd);
        fd = -1;
    }
    if (!init || !dst) {
        rc = -ENOENT;
        goto err;
    }
    ms_mp4p_track_t tr[MS_FMP4D_MAX_TRACKS];
    for (int i = 0; i < in.ntracks; i++)
        tr[i] = (ms_mp4p_track_t){&in.t[i], ts[i].s, ts[i].n};
    int64_t hl = ms_mp4p_write_head(tr, in.ntracks, dst, x->start_ms / 1000, &head);
    if (hl < 0) {
        rc = hl == -ENOMEM ? -ENOMEM : -ENOENT;
        goto err;
    }
    x->head = ms_buf_to_blob(&head);
    if (!x->head) {
        rc = -ENOMEM;
        goto err;
    }
    x->size = (uint64_t)hl + dst;
    for (size_t i = 0; i < x->next; i++)
        x->ext[i].dst += (uint64_t)hl;
    rc = 0;
    *out = x;
    x = NULL;
err:
    if (fd >= 0)
        close(fd);
    ms_buf_free(&head);
    free(buf);
    free(sv);
    for (int i = 0; i < MS_FMP4D_MAX_TRACKS; i++)
        free(ts[i].s);
    ms_blob_unref(init);
    ms_dvr_chunks_free(v, n);
    ms_dvr_export_free(x);
    return rc;
}

uint64_t ms_dvr_export_size(const ms_dvr_export_t *x)
{
    return x->size;
}

int64_t ms_dvr_export_start_ms(const ms_dvr_export_t *x)
{
    return x->start_ms;
}

ssize_t ms_dvr_export_read(ms_dvr_export_t *x, uint64_t off, uint8_t *buf, size_t len)
{
    if (off >= x->size)
        return 0;
    if (len > x->size - off)
        len = (size_t)(x->size - off);
    size_t done = 0;
    if (off < x->head->len) {
        size_t k = x->head->len - (size_t)off;
        if (k > len)
            k = len;
        memcpy(buf, x->head->data + off, k);
        done = k;
    }
    while (done < len) {
        uint64_t at = off + done;
        size_t lo = 0, hi = x->next;
        while (hi - lo > 1) {
            size_t mid = (lo + hi) / 2;
            if (x->ext[mid].dst <= at)
                lo = mid;
            else
                hi = mid;
        }
        const extent_t *e = &x->ext[lo];
        if (at < e->dst || at >= e->dst + e->len)
            return -EIO;
        if (x->fd < 0 || x->fd_file != e->file) {
            if (x->fd >= 0)
                close(x->fd);
            x->fd = open(x->paths[e->file], O_RDONLY | O_CLOEXEC);
            if (x->fd < 0)
                return -EIO;
            x->fd_file = e->file;
        }
        uint64_t k = e->dst + e->len - at;
        if (k > len - done)
            k = len - done;
        ssize_t r = pread(x->fd, buf + done, (size_t)k, (off_t)(e->src + (at - e->dst)));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return done ? (ssize_t)done : -EIO;
        done += (size_t)r;
    }
    return (ssize_t)done;
}

void ms_dvr_export_free(ms_dvr_export_t *x)
{
    if (!x)
        return;
    if (x->fd >= 0)
        close(x->fd);
    ms_blob_unref(x->head);
    free(x->paths);
    free(x->ext);
    free(x);
}

int ms_dvr_keyframe_at(const char *uid, int64_t at_ms, ms_codec_params_t *params,
                       ms_blob_t **payload, int64_t *t_ms)
{
    *payload = NULL;
    ms_dvr_chunk_t *v = NULL;
    size_t n = 0;
    int rc = ms_dvr_chunks(uid, at_ms - KEY_LOOKBACK, at_ms + 1, &v, &n);
    if (rc < 0)
        return rc;
    /* the newest keyframe fragment at or before at_ms */
    const ms_dvr_chunk_t *c = NULL;
    const ms_dvr_frag_t *f = NULL;
    for (size_t ci = 0; ci < n; ci++)
        for (size_t q = 0; q < v[ci].nfrags; q++)
            if (v[ci].frags[q].key && v[ci].frags[q].t_ms <= at_ms) {
                c = &v[ci];
                f = &v[ci].frags[q];
            }
    ms_blob_t *init = NULL;
    ms_fmp4d_sample_t *sv = NULL;
    size_t sn = 0, scap = 0, bcap = 0;
    uint8_t *buf = NULL;
    int fd = -1;
    rc = -ENOENT;
    if (!c)
        goto out;
    ms_fmp4d_init_t in;
    if ((rc = ms_dvr_chunk_read(c, 0, c->init_len, &init)) < 0)
        goto out;
    if (ms_fmp4d_init(init->data, init->len, &in) < 0 || ms_fmp4d_video(&in) < 0) {
        rc = -ENOENT;
        goto out;
    }
    int vi = ms_fmp4d_video(&in);
    fd = open(c->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    uint64_t pay, plen;
    if ((rc = read_frag(fd, f, &in, &buf, &bcap, &sv, &sn, &scap, &pay, &plen)) < 0)
        goto out;
    rc = -ENOENT;
    for (size_t q = 0; q < sn; q++) {
        if (sv[q].track != vi)
            continue;
        if (!MS_FMP4D_SYNC(&sv[q]))
            break;
        const ms_fmp4d_span_t *sd = &in.t[vi].stsd;
        uint32_t fourcc = sd->len >= 20 ? ms_rd_be32(sd->p + 20) : 0;
        memset(params, 0, sizeof *params);
        if (fourcc == MS_FOURCC('a', 'v', 'c', '1') || fourcc == MS_FOURCC('a', 'v', 'c', '3'))
            params->codec = MS_CODEC_H264;
        else if (fourcc == MS_FOURCC('h', 'v', 'c', '1') || fourcc == MS_FOURCC('h', 'e', 'v', '1'))
            params->codec = MS_CODEC_H265;
        else
            break;
        params->kind = MS_TRACK_VIDEO;
        params->clock_rate = in.t[vi].timescale;
        params->width = (int)(in.t[vi].width >> 16);
        params->height = (int)(in.t[vi].height >> 16);
        ms_blob_t *b = ms_blob_new(NULL, sv[q].size);
        if (!b) {
            rc = -ENOMEM;
            break;
        }
        if ((rc = ms_dvr_read_at(fd, b->data, sv[q].size, sv[q].off)) < 0) {
            ms_blob_unref(b);
            break;
        }
        *payload = b;
        *t_ms = dts_ms(sv[q].dts, in.t[vi].timescale);
        rc = 0;
        break;
    }
out:
    if (fd >= 0)
        close(fd);
    free(buf);
    free(sv);
    ms_blob_unref(init);
    ms_dvr_chunks_free(v, n);
    return rc;
}
