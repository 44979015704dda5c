/* Pure fMP4 reader (media/fmp4/demux.h). ISO/IEC 14496-12: 4.2 box header,
 * 8.2.2 mvhd, 8.3.2 tkhd, 8.4.2 mdhd, 8.4.3 hdlr, 8.5.2 stsd, 8.8.3 trex,
 * 8.8.4 moof, 8.8.7 tfhd, 8.8.8 trun, 8.8.12 tfdt. */
#include "media/fmp4/demux.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"

#define MAX_SAMPLES_PER_MOOF 100000u

size_t ms_fmp4d_box(const uint8_t *p, size_t avail, uint64_t *size, uint32_t *type)
{
    if (avail < 8)
        return 0;
    uint64_t sz = ms_rd_be32(p);
    *type = ms_rd_be32(p + 4);
    size_t hl = 8;
    if (sz == 1) {
        if (avail < 16)
            return 0;
        sz = ((uint64_t)ms_rd_be32(p + 8) << 32) | ms_rd_be32(p + 12);
        hl = 16;
    } else if (sz == 0) {
        sz = avail;
    }
    if (sz < hl || sz > avail)
        return 0;
    *size = sz;
    return hl;
}

static uint64_t rd64(const uint8_t *p)
{
    return ((uint64_t)ms_rd_be32(p) << 32) | ms_rd_be32(p + 4);
}

static ms_fmp4d_track_t *by_id(ms_fmp4d_init_t *in, uint32_t id)
{
    for (int i = 0; i < in->ntracks; i++)
        if (in->t[i].id == id)
            return &in->t[i];
    return NULL;
}

/* Walks the children of a container box body; depth-limited. */
static void walk(const uint8_t *p, size_t len, ms_fmp4d_init_t *in, ms_fmp4d_track_t *cur,
                 int depth)
{
    size_t off = 0;
    if (depth > 6)
        return;
    while (off < len) {
        uint64_t sz;
        uint32_t type;
        size_t hl = ms_fmp4d_box(p + off, len - off, &sz, &type);
        if (!hl)
            return;
        const uint8_t *b = p + off + hl;
        size_t bl = (size_t)sz - hl;
        ms_fmp4d_span_t whole = {p + off, (size_t)sz};
        switch (type) {
        case MS_FOURCC('t', 'r', 'a', 'k'): {
            ms_fmp4d_track_t t;
            memset(&t, 0, sizeof t);
            walk(b, bl, in, &t, depth + 1);
            if (!t.id || !t.timescale || !t.stsd.len)
                break;
            ms_fmp4d_track_t *old = by_id(in, t.id);
            if (old) { /* trex came first: keep its defaults */
                t.def_dur = old->def_dur;
                t.def_size = old->def_size;
                t.def_flags = old->def_flags;
                *old = t;
            } else if (in->ntracks < MS_FMP4D_MAX_TRACKS) {
                in->t[in->ntracks++] = t;
            }
            break;
        }
        case MS_FOURCC('m', 'd', 'i', 'a'):
        case MS_FOURCC('m', 'i', 'n', 'f'):
        case MS_FOURCC('s', 't', 'b', 'l'):
        case MS_FOURCC('m', 'v', 'e', 'x'):
            walk(b, bl, in, cur, depth + 1);
            break;
        case MS_FOURCC('t', 'k', 'h', 'd'):
            if (cur && bl >= 4) {
                size_t at = b[0] == 1 ? 4 + 16 : 4 + 8;
                if (bl >= at + 4)
                    cur->id = ms_rd_be32(b + at);
                if (bl >= 8) {
                    cur->width = ms_rd_be32(b + bl - 8);
                    cur->height = ms_rd_be32(b + bl - 4);
                }
            }
            break;
        case MS_FOURCC('m', 'd', 'h', 'd'):
            if (cur && bl >= 4) {
                size_t at = b[0] == 1 ? 4 + 16 : 4 + 8;
                size_t dl = b[0] == 1 ? 8 : 4;
                if (bl >= at + 4)
                    cur->timescale = ms_rd_be32(b + at);
                if (bl >= at + 4 + dl + 2)
                    cur->language = ms_rd_be16(b + at + 4 + dl);
            }
            break;
        case MS_FOURCC('h', 'd', 'l', 'r'):
            if (cur && bl >= 12) {
                cur->handler = ms_rd_be32(b + 8);
                cur->hdlr = whole;
            }
            break;
        case MS_FOURCC('v', 'm', 'h', 'd'):
        case MS_FOURCC('s', 'm', 'h', 'd'):
        case MS_FOURCC('n', 'm', 'h', 'd'):
            if (cur)
                cur->xmhd = whole;
            break;
        case MS_FOURCC('d', 'i', 'n', 'f'):
            if (cur)
                cur->dinf = whole;
            break;
        case MS_FOURCC('s', 't', 's', 'd'):
            if (cur && bl >= 8)
                cur->stsd = whole;
            break;
        case MS_FOURCC('t', 'r', 'e', 'x'):
            if (bl >= 24) {
                uint32_t id = ms_rd_be32(b + 4);
                ms_fmp4d_track_t *t = by_id(in, id);
                if (!t && in->ntracks < MS_FMP4D_MAX_TRACKS) {
                    t = &in->t[in->ntracks++];
                    memset(t, 0, sizeof *t);
                    t->id = id;
                }
                if (t) {
                    t->def_dur = ms_rd_be32(b + 12);
                    t->def_size = ms_rd_be32(b + 16);
                    t->def_flags = ms_rd_be32(b + 20);
                }
            }
            break;
        default:
            break;
        }
        off += (size_t)sz;
    }
}

int ms_fmp4d_init(const uint8_t *p, size_t len, ms_fmp4d_init_t *out)
{
    memset(out, 0, sizeof *out);
    size_t off = 0;
    while (off < len) {
        uint64_t sz;
        uint32_t type;
        size_t hl = ms_fmp4d_box(p + off, len - off, &sz, &type);
        if (!hl)
            return -EINVAL;
        if (type == MS_FOURCC('m', 'o', 'o', 'v')) {
            walk(p + off + hl, (size_t)sz - hl, out, NULL, 0);
            /* drop trex-only entries (no trak) */
            int k = 0;
            for (int i = 0; i < out->ntracks; i++)
                if (out->t[i].timescale && out->t[i].stsd.len)
                    out->t[k++] = out->t[i];
            out->ntracks = k;
            return k ? 0 : -EINVAL;
        }
        off += (size_t)sz;
    }
    return -EINVAL;
}

int ms_fmp4d_video(const ms_fmp4d_init_t *in)
{
    for (int i = 0; i < in->ntracks; i++)
        if (in->t[i].handler == MS_FOURCC('v', 'i', 'd', 'e'))
            return i;
    return -1;
}

static int push(ms_fmp4d_sample_t **v, size_t *n, size_t *cap, const ms_fmp4d_sample_t *s)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        ms_fmp4d_sample_t *nv = realloc(*v, nc * sizeof *nv);
        if (!nv)
            return -ENOMEM;
        *v = nv;
        *cap = nc;
    }
    (*v)[(*n)++] = *s;
    return 0;
}

static int traf(const ms_fmp4d_init_t *in, const uint8_t *p, size_t len, uint64_t moof_off,
                ms_fmp4d_sample_t **v, size_t *n, size_t *cap, size_t *budget)
{
    int ti = -1;
    uint64_t base = moof_off, dts = 0;
    uint32_t def_dur = 0, def_size = 0, def_flags = 0;
    int have_tfhd = 0;
    size_t off = 0;
    /* tfhd and tfdt precede trun in practice, but do not rely on it: two
     * passes (first tfhd/tfdt, then the runs). */
    for (int pass = 0; pass < 2; pass++) {
        off = 0;
        while (off < len) {
            uint64_t sz;
            uint32_t type;
            size_t hl = ms_fmp4d_box(p + off, len - off, &sz, &type);
            if (!hl)
                return -EINVAL;
            const uint8_t *b = p + off + hl;
            size_t bl = (size_t)sz - hl;
            off += (size_t)sz;
            if (pass == 0 && type == MS_FOURCC('t', 'f', 'h', 'd')) {
                if (bl < 8)
                    return -EINVAL;
                uint32_t fl = ms_rd_be24(b + 1);
                uint32_t id = ms_rd_be32(b + 4);
                for (int i = 0; i < in->ntracks; i++)
                    if (in->t[i].id == id)
                        ti = i;
                if (ti < 0)
                    return -EINVAL;
                def_dur = in->t[ti].def_dur;
                def_size = in->t[ti].def_size;
                def_flags = in->t[ti].def_flags;
                size_t at = 8;
                size_t need = at + ((fl & 0x1) ? 8 : 0) + ((fl & 0x2) ? 4 : 0) +
                              ((fl & 0x8) ? 4 : 0) + ((fl & 0x10) ? 4 : 0) + ((fl & 0x20) ? 4 : 0);
                if (bl < need)
                    return -EINVAL;
                if (fl & 0x1) {
                    base = rd64(b + at);
                    at += 8;
                }
                if (fl & 0x2)
                    at += 4;
                if (fl & 0x8) {
                    def_dur = ms_rd_be32(b + at);
                    at += 4;
                }
                if (fl & 0x10) {
                    def_size = ms_rd_be32(b + at);
                    at += 4;
                }
                if (fl & 0x20)
                    def_flags = ms_rd_be32(b + at);
                have_tfhd = 1;
            } else if (pass == 0 && type == MS_FOURCC('t', 'f', 'd', 't')) {
                if (bl < 8)
                    return -EINVAL;
                if (b[0] == 1) {
                    if (bl < 12)
                        return -EINVAL;
                    dts = rd64(b + 4);
                } else {
                    dts = ms_rd_be32(b + 4);
                }
            } else if (pass == 1 && type == MS_FOURCC('t', 'r', 'u', 'n')) {
                if (!have_tfhd || bl < 8)
                    return -EINVAL;
                uint32_t fl = ms_rd_be24(b + 1);
                int version = b[0];
                uint32_t count = ms_rd_be32(b + 4);
                size_t at = 8;
                int64_t doff = 0;
                uint32_t first_flags = 0;
                int has_first = 0;
                if (fl & 0x1) {
                    if (bl < at + 4)
                        return -EINVAL;
                    doff = (int32_t)ms_rd_be32(b + at);
                    at += 4;
                }
                if (fl & 0x4) {
                    if (bl < at + 4)
                        return -EINVAL;
                    first_flags = ms_rd_be32(b + at);
                    has_first = 1;
                    at += 4;
                }
                size_t per = ((fl & 0x100) ? 4 : 0) + ((fl & 0x200) ? 4 : 0) +
                             ((fl & 0x400) ? 4 : 0) + ((fl & 0x800) ? 4 : 0);
                if (per && count > (bl - at) / per)
                    return -EINVAL;
                if (count > *budget)
                    return -EINVAL;
                *budget -= count;
                if ((int64_t)base + doff < 0)
                    return -EINVAL;
                uint64_t data = (uint64_t)((int64_t)base + doff);
                for (uint32_t i = 0; i < count; i++) {
                    ms_fmp4d_sample_t s;
                    size_t q = at + (size_t)i * per;
                    s.track = ti;
                    s.dur = def_dur;
                    s.size = def_size;
                    s.flags = (i == 0 && has_first) ? first_flags : def_flags;
                    s.cto = 0;
                    if (fl & 0x100) {
                        s.dur = ms_rd_be32(b + q);
                        q += 4;
                    }
                    if (fl & 0x200) {
                        s.size = ms_rd_be32(b + q);
                        q += 4;
                    }
                    if (fl & 0x400) {
                        uint32_t f = ms_rd_be32(b + q);
                        if (!(i == 0 && has_first))
                            s.flags = f;
                        q += 4;
                    }
                    if (fl & 0x800) {
                        uint32_t c = ms_rd_be32(b + q);
                        s.cto = version ? (int32_t)c : (int32_t)(c & 0x7FFFFFFF);
                    }
                    s.dts = dts;
                    s.off = data;
                    dts += s.dur;
                    data += s.size;
                    int rc = push(v, n, cap, &s);
                    if (rc < 0)
                        return rc;
                }
            }
        }
    }
    return have_tfhd ? 0 : -EINVAL;
}

int ms_fmp4d_moof(const ms_fmp4d_init_t *in, const uint8_t *p, size_t len, uint64_t moof_off,
                  ms_fmp4d_sample_t **v, size_t *n, size_t *cap)
{
    uint64_t sz;
    uint32_t type;
    size_t hl = ms_fmp4d_box(p, len, &sz, &type);
    if (!hl || type != MS_FOURCC('m', 'o', 'o', 'f'))
        return -EINVAL;
    size_t budget = MAX_SAMPLES_PER_MOOF;
    size_t off = hl, start = *n;
    while (off < sz) {
        uint64_t bs;
        uint32_t bt;
        size_t bh = ms_fmp4d_box(p + off, (size_t)sz - off, &bs, &bt);
        if (!bh)
            goto bad;
        if (bt == MS_FOURCC('t', 'r', 'a', 'f')) {
            int rc = traf(in, p + off + bh, (size_t)bs - bh, moof_off, v, n, cap, &budget);
            if (rc < 0) {
                *n = start;
                return rc;
            }
        }
        off += (size_t)bs;
    }
    return 0;
bad:
    *n = start;
    return -EINVAL;
}
