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

/* ---- sample entry -> codec parameters ---- */

static int copy_ps(uint8_t *dst, uint16_t *dlen, const uint8_t *p, size_t len)
{
    if (*dlen || len == 0 || len > MS_PARAM_SET_MAX)
        return 0; /* keep the first one */
    memcpy(dst, p, len);
    *dlen = (uint16_t)len;
    return 0;
}

/* avcC body (ISO/IEC 14496-15 5.3.3.1). */
static int parse_avcc(const uint8_t *p, size_t len, ms_codec_params_t *o)
{
    if (len < 7)
        return -EINVAL;
    o->profile = p[1];
    o->level = p[3];
    size_t off = 6;
    for (int set = 0; set < 2; set++) {
        unsigned cnt = set == 0 ? (p[5] & 0x1fu) : 0;
        if (set == 1) {
            if (off >= len)
                return -EINVAL;
            cnt = p[off++];
        }
        for (unsigned i = 0; i < cnt; i++) {
            if (off + 2 > len)
                return -EINVAL;
            size_t n = ms_rd_be16(p + off);
            off += 2;
            if (n > len - off)
                return -EINVAL;
            if (set == 0)
                copy_ps(o->sps, &o->sps_len, p + off, n);
            else
                copy_ps(o->pps, &o->pps_len, p + off, n);
            off += n;
        }
    }
    return 0;
}

/* hvcC body (ISO/IEC 14496-15 8.3.3.1): 22 bytes, then the NAL arrays. */
static int parse_hvcc(const uint8_t *p, size_t len, ms_codec_params_t *o)
{
    if (len < 23)
        return -EINVAL;
    o->profile = p[1] & 0x1f;
    o->level = p[12];
    unsigned narr = p[22];
    size_t off = 23;
    for (unsigned a = 0; a < narr; a++) {
        if (off + 3 > len)
            return -EINVAL;
        unsigned type = p[off] & 0x3fu, cnt = ms_rd_be16(p + off + 1);
        off += 3;
        for (unsigned i = 0; i < cnt; i++) {
            if (off + 2 > len)
                return -EINVAL;
            size_t n = ms_rd_be16(p + off);
            off += 2;
            if (n > len - off)
                return -EINVAL;
            if (type == 32)
                copy_ps(o->vps, &o->vps_len, p + off, n);
            else if (type == 33)
                copy_ps(o->sps, &o->sps_len, p + off, n);
            else if (type == 34)
                copy_ps(o->pps, &o->pps_len, p + off, n);
            off += n;
        }
    }
    return 0;
}

/* MPEG-4 descriptor header (ISO/IEC 14496-1 8.3.3): tag, then a length of
 * 1..4 bytes of 7 bits. Returns the header length or 0. */
static size_t desc_hdr(const uint8_t *p, size_t len, uint8_t *tag, size_t *size)
{
    if (len < 2)
        return 0;
    *tag = p[0];
    size_t n = 0, i = 1;
    for (; i < 5 && i < len; i++) {
        n = n << 7 | (p[i] & 0x7fu);
        if (!(p[i] & 0x80))
            break;
    }
    if (i >= 5 || i >= len || n > len - i - 1)
        return 0;
    *size = n;
    return i + 1;
}

/* esds body after version/flags: ES_Descriptor > DecoderConfigDescriptor >
 * DecoderSpecificInfo (14496-1 7.2.6.5, 7.2.6.6, 7.2.6.7). */
static int parse_esds(const uint8_t *p, size_t len, ms_codec_params_t *o)
{
    uint8_t tag;
    size_t sz, h = desc_hdr(p, len, &tag, &sz);
    if (!h || tag != 0x03 || sz < 3)
        return -EINVAL;
    p += h;
    len = sz;
    uint8_t fl = p[2];
    size_t off = 3;
    if (fl & 0x80)
        off += 2; /* dependsOn_ES_ID */
    if (fl & 0x40) {
        if (off >= len)
            return -EINVAL;
        off += 1u + p[off]; /* URL */
    }
    if (fl & 0x20)
        off += 2; /* OCR_ES_Id */
    if (off >= len)
        return -EINVAL;
    h = desc_hdr(p + off, len - off, &tag, &sz);
    if (!h || tag != 0x04 || sz < 13)
        return -EINVAL;
    const uint8_t *d = p + off + h;
    size_t dl = sz;
    h = desc_hdr(d + 13, dl - 13, &tag, &sz);
    if (!h || tag != 0x05 || sz == 0 || sz > sizeof o->asc)
        return -EINVAL;
    memcpy(o->asc, d + 13 + h, sz);
    o->asc_len = (uint16_t)sz;
    return 0;
}

int ms_fmp4d_params(const ms_fmp4d_track_t *t, ms_codec_params_t *out)
{
    memset(out, 0, sizeof *out);
    const uint8_t *p = t->stsd.p;
    size_t len = t->stsd.len;
    /* stsd: box header 8, version/flags 4, entry_count 4 (8.5.2.2) */
    if (!p || len < 16 + 8)
        return -EINVAL;
    uint64_t esz;
    uint32_t etype;
    size_t eh = ms_fmp4d_box(p + 16, len - 16, &esz, &etype);
    if (!eh || esz > len - 16 || esz < eh)
        return -EINVAL;
    const uint8_t *e = p + 16;
    size_t elen = (size_t)esz, child;
    if (etype == MS_FOURCC('a', 'v', 'c', '1') || etype == MS_FOURCC('a', 'v', 'c', '3')) {
        out->codec = MS_CODEC_H264;
        child = 8 + 78; /* VisualSampleEntry (8.5.2.2) */
    } else if (etype == MS_FOURCC('h', 'v', 'c', '1') || etype == MS_FOURCC('h', 'e', 'v', '1')) {
        out->codec = MS_CODEC_H265;
        child = 8 + 78;
    } else if (etype == MS_FOURCC('m', 'p', '4', 'a')) {
        out->codec = MS_CODEC_AAC;
        child = 8 + 28; /* AudioSampleEntry version 0 */
    } else {
        return -ENOTSUP;
    }
    if (elen < child)
        return -EINVAL;
    out->kind = out->codec == MS_CODEC_AAC ? MS_TRACK_AUDIO : MS_TRACK_VIDEO;
    out->clock_rate = t->timescale;
    if (out->kind == MS_TRACK_VIDEO) {
        out->width = ms_rd_be16(e + 8 + 24);
        out->height = ms_rd_be16(e + 8 + 26);
    } else {
        out->channels = ms_rd_be16(e + 8 + 16);
        out->sample_rate = (int)(ms_rd_be32(e + 8 + 24) >> 16);
    }
    int found = 0;
    for (size_t off = child; off + 8 <= elen;) {
        uint64_t bsz;
        uint32_t bt;
        size_t bh = ms_fmp4d_box(e + off, elen - off, &bsz, &bt);
        if (!bh || bsz < bh || bsz > elen - off)
            return -EINVAL;
        const uint8_t *b = e + off + bh;
        size_t bl = (size_t)bsz - bh;
        int r = 0;
        if (bt == MS_FOURCC('a', 'v', 'c', 'C') && out->codec == MS_CODEC_H264)
            r = parse_avcc(b, bl, out), found = 1;
        else if (bt == MS_FOURCC('h', 'v', 'c', 'C') && out->codec == MS_CODEC_H265)
            r = parse_hvcc(b, bl, out), found = 1;
        else if (bt == MS_FOURCC('e', 's', 'd', 's') && out->codec == MS_CODEC_AAC)
            r = bl < 4 ? -EINVAL : parse_esds(b + 4, bl - 4, out), found = 1;
        if (r < 0)
            return r;
        off += (size_t)bsz;
    }
    return found ? 0 : -EINVAL;
}
