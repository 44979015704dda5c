/* Chunk file scanner (dvr/dvr.h ms_dvr_scan_fd): walks the top-level boxes
 * of an fMP4 file (ISO/IEC 14496-12 section 4.2 box header) and hands moov
 * and every moof followed by a whole mdat to the fMP4 demuxer
 * (media/fmp4/demux.c, fuzzed): track ids, timescales and handlers (8.3.2
 * tkhd, 8.4.2 mdhd, 8.4.3 hdlr, 8.8.3 trex), then per fragment the decode
 * time, duration and first sync flag of the primary track's run (8.8.7
 * tfhd, 8.8.12 tfdt, 8.8.8 trun). Bytes come from disk and may be torn or
 * hostile: every length is checked, nothing asserts. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dvr/dvr.h"
#include "media/fmp4/demux.h"
#include "util/buf.h"

#define MAX_META_BOX (16u << 20) /* moov / moof larger than this: not ours */

static int rd_full(int fd, void *p, size_t n, uint64_t off)
{
    uint8_t *q = p;
    while (n) {
        ssize_t k = pread(fd, q, n, (off_t)off);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (k == 0)
            return -EIO;
        q += k;
        n -= (size_t)k;
        off += (uint64_t)k;
    }
    return 0;
}

/* Index of the track that times the fragments: the first video track,
 * else the first track with a timescale; -1 when none. */
static int primary(const ms_fmp4d_init_t *in)
{
    int v = ms_fmp4d_video(in);
    if (v >= 0 && in->t[v].timescale)
        return v;
    for (int i = 0; i < in->ntracks; i++)
        if (in->t[i].timescale)
            return i;
    return -1;
}

/* The fragment of the moof box p[0..len) (header included, at file offset
 * off), demuxed by media/fmp4/demux.c: its time is the primary track's run
 * (video), else the run of the first sample's track. 0 or -1. */
static int frag_of(const ms_fmp4d_init_t *in, int pt, const uint8_t *p, size_t len, uint64_t off,
                   ms_fmp4d_sample_t **v, size_t *cap, ms_dvr_frag_t *fr)
{
    size_t n = 0;
    if (ms_fmp4d_moof(in, p, len, off, v, &n, cap) < 0 || !n)
        return -1;
    int tr = pt;
    size_t first = n;
    for (size_t i = 0; i < n && first == n; i++)
        if ((*v)[i].track == tr)
            first = i;
    if (first == n) {
        tr = (*v)[0].track;
        first = 0;
    }
    const ms_fmp4d_track_t *t = &in->t[tr];
    if (!t->timescale)
        return -1;
    uint64_t total = 0;
    for (size_t i = first; i < n; i++)
        if ((*v)[i].track == tr)
            total += (*v)[i].dur;
    uint64_t ts = t->timescale, dts = (*v)[first].dts;
    fr->t_ms = (int64_t)(dts / ts * 1000 + (dts % ts) * 1000 / ts);
    fr->dur_ms = (uint32_t)(total * 1000 / ts);
    fr->key = t->handler == MS_FOURCC('v', 'i', 'd', 'e') ? MS_FMP4D_SYNC(&(*v)[first]) : 1;
    return 0;
}

void ms_dvr_scan_free(ms_dvr_scan_t *s)
{
    if (!s)
        return;
    free(s->frags);
    s->frags = NULL;
    s->nfrags = 0;
}

int ms_dvr_scan_fd(int fd, uint64_t size, ms_dvr_scan_t *out)
{
    memset(out, 0, sizeof *out);
    ms_fmp4d_init_t in;
    uint8_t *init = NULL; /* the moov box: in's spans borrow it */
    ms_fmp4d_sample_t *samples = NULL;
    size_t scap = 0;
    int pt = -1;
    uint64_t off = 0;
    int have_moov = 0, rc = 0;
    size_t cap = 0, fcap = 0;
    uint8_t *meta = NULL;
    uint8_t hdr[16];
    ms_dvr_frag_t pend;
    uint64_t pend_off = 0;
    int have_pend = 0;
    while (off + 8 <= size) {
        size_t avail = size - off < 16 ? (size_t)(size - off) : 16;
        if ((rc = rd_full(fd, hdr, avail, off)) < 0)
            goto done;
        uint64_t sz = ms_rd_be32(hdr);
        uint32_t type = ms_rd_be32(hdr + 4);
        size_t hl = 8;
        if (sz == 1) {
            if (avail < 16)
                break;
            sz = ((uint64_t)ms_rd_be32(hdr + 8) << 32) | ms_rd_be32(hdr + 12);
            hl = 16;
        } else if (sz == 0) {
            sz = size - off;
        }
        if (sz < hl)
            break; /* garbage: the valid prefix ends here */
        if (sz > size - off)
            break; /* torn box */
        if (!have_moov) {
            if (type == MS_FOURCC('m', 'o', 'o', 'v')) {
                if (sz > MAX_META_BOX) {
                    rc = -EINVAL;
                    goto done;
                }
                if (!(init = malloc((size_t)sz))) {
                    rc = -ENOMEM;
                    goto done;
                }
                if ((rc = rd_full(fd, init, (size_t)sz, off)) < 0)
                    goto done;
                if (ms_fmp4d_init(init, (size_t)sz, &in) < 0 || (pt = primary(&in)) < 0) {
                    rc = -EINVAL;
                    goto done;
                }
                have_moov = 1;
                out->init_len = (uint32_t)(off + sz);
                out->valid_len = off + sz;
            } else if (type != MS_FOURCC('f', 't', 'y', 'p') &&
                       type != MS_FOURCC('f', 'r', 'e', 'e')) {
                rc = -EINVAL;
                goto done;
            }
        } else if (type == MS_FOURCC('m', 'o', 'o', 'f')) {
            if (sz > MAX_META_BOX)
                break;
            if (cap < sz) {
                uint8_t *nm = realloc(meta, (size_t)sz);
                if (!nm) {
                    rc = -ENOMEM;
                    goto done;
                }
                meta = nm;
                cap = (size_t)sz;
            }
            if ((rc = rd_full(fd, meta, (size_t)sz, off)) < 0)
                goto done;
            memset(&pend, 0, sizeof pend);
            if (frag_of(&in, pt, meta, (size_t)sz, off, &samples, &scap, &pend) < 0)
                break;
            pend_off = off;
            have_pend = 1;
        } else if (type == MS_FOURCC('m', 'd', 'a', 't') && have_pend) {
            if (out->nfrags == fcap) {
                size_t nc = fcap ? fcap * 2 : 16;
                ms_dvr_frag_t *nf = realloc(out->frags, nc * sizeof *nf);
                if (!nf) {
                    rc = -ENOMEM;
                    goto done;
                }
                out->frags = nf;
                fcap = nc;
            }
            pend.off = pend_off;
            pend.size = off + sz - pend_off;
            out->frags[out->nfrags++] = pend;
            have_pend = 0;
            out->valid_len = off + sz;
        } else if (type == MS_FOURCC('s', 't', 'y', 'p') || type == MS_FOURCC('f', 'r', 'e', 'e')) {
            if (!have_pend)
                out->valid_len = off + sz;
        } else {
            break;
        }
        off += sz;
    }
    if (!have_moov && rc == 0)
        out->valid_len = 0;
done:
    free(meta);
    free(init);
    free(samples);
    if (rc < 0)
        ms_dvr_scan_free(out);
    return rc;
}
