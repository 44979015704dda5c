/* Chunk file scanner (dvr/dvr.h ms_dvr_scan_fd): walks the top-level boxes
 * of an fMP4 file (ISO/IEC 14496-12 section 4.2 box header), takes the
 * track ids, timescales and handlers from moov (8.3.2 tkhd, 8.4.2 mdhd,
 * 8.4.3 hdlr, 8.8.3 trex) and, for every moof followed by a whole mdat, the
 * decode time and duration of the primary track's run (8.8.7 tfhd, 8.8.12
 * tfdt, 8.8.8 trun). Bytes come from disk and may be torn or hostile: every
 * length is checked, nothing asserts. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dvr/dvr.h"
#include "util/buf.h"

#define MAX_META_BOX (16u << 20) /* moov / moof larger than this: not ours */
#define MAX_TRACKS   8

typedef struct {
    uint32_t id, timescale, def_dur, def_flags;
    int video;
} trk_t;

typedef struct {
    trk_t t[MAX_TRACKS];
    int n;
} moov_t;

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

/* Box header at p (avail bytes). Returns header length, 0 if malformed. */
static size_t box_hdr(const uint8_t *p, size_t avail, uint64_t *size, uint32_t *type)
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

#define FOURCC(a, b, c, d)                                                                         \
    (((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8) | (uint32_t)(d))

static trk_t *trk_get(moov_t *m, uint32_t id)
{
    for (int i = 0; i < m->n; i++)
        if (m->t[i].id == id)
            return &m->t[i];
    return NULL;
}

/* Recursive walk of moov: containers moov/trak/mdia/mvex. */
static void parse_moov(const uint8_t *p, size_t len, moov_t *m, trk_t *cur)
{
    size_t off = 0;
    while (off < len) {
        uint64_t sz;
        uint32_t type;
        size_t hl = box_hdr(p + off, len - off, &sz, &type);
        if (!hl)
            return;
        const uint8_t *b = p + off + hl;
        size_t bl = (size_t)sz - hl;
        if (type == FOURCC('t', 'r', 'a', 'k')) {
            trk_t t;
            memset(&t, 0, sizeof t);
            parse_moov(b, bl, m, &t);
            if (t.id && t.timescale && m->n < MAX_TRACKS) {
                trk_t *old = trk_get(m, t.id);
                if (old) { /* trex came first */
                    old->timescale = t.timescale;
                    old->video = t.video;
                } else {
                    m->t[m->n++] = t;
                }
            }
        } else if (type == FOURCC('m', 'd', 'i', 'a') || type == FOURCC('m', 'v', 'e', 'x')) {
            parse_moov(b, bl, m, cur);
        } else if (type == FOURCC('t', 'k', 'h', 'd') && cur && bl >= 4) {
            size_t at = b[0] == 1 ? 4 + 16 : 4 + 8;
            if (bl >= at + 4)
                cur->id = ms_rd_be32(b + at);
        } else if (type == FOURCC('m', 'd', 'h', 'd') && cur && bl >= 4) {
            size_t at = b[0] == 1 ? 4 + 16 : 4 + 8;
            if (bl >= at + 4)
                cur->timescale = ms_rd_be32(b + at);
        } else if (type == FOURCC('h', 'd', 'l', 'r') && cur && bl >= 12) {
            cur->video = ms_rd_be32(b + 8) == FOURCC('v', 'i', 'd', 'e');
        } else if (type == FOURCC('t', 'r', 'e', 'x') && bl >= 24) {
            uint32_t id = ms_rd_be32(b + 4);
            trk_t *t = trk_get(m, id);
            if (!t && m->n < MAX_TRACKS) {
                t = &m->t[m->n++];
                memset(t, 0, sizeof *t);
                t->id = id;
            }
            if (t) {
                t->def_dur = ms_rd_be32(b + 12);
                t->def_flags = ms_rd_be32(b + 20);
            }
        }
        off += (size_t)sz;
    }
}

static const trk_t *primary(const moov_t *m)
{
    for (int i = 0; i < m->n; i++)
        if (m->t[i].video && m->t[i].timescale)
            return &m->t[i];
    for (int i = 0; i < m->n; i++)
        if (m->t[i].timescale)
            return &m->t[i];
    return NULL;
}

/* One traf: fills fr with its decode time, duration and first-sample sync
 * flag and *id with its track. Returns 0, or -1 when malformed. */
static int parse_traf(const uint8_t *p, size_t len, const moov_t *m, ms_dvr_frag_t *fr,
                      uint32_t *idout)
{
    size_t off = 0;
    uint32_t id = 0, def_dur = 0, def_flags = 0;
    int have_tfdt = 0, have_trun = 0;
    uint64_t tfdt = 0, total = 0;
    uint32_t first_flags = 0;
    const trk_t *t = NULL;
    while (off < len) {
        uint64_t sz;
        uint32_t type;
        size_t hl = box_hdr(p + off, len - off, &sz, &type);
        if (!hl)
            return -1;
        const uint8_t *b = p + off + hl;
        size_t bl = (size_t)sz - hl;
        if (type == FOURCC('t', 'f', 'h', 'd')) {
            if (bl < 8)
                return -1;
            uint32_t fl = ms_rd_be24(b + 1);
            id = ms_rd_be32(b + 4);
            t = trk_get((moov_t *)(uintptr_t)m, id);
            if (!t || !t->timescale)
                return -1;
            def_dur = t->def_dur;
            def_flags = t->def_flags;
            size_t at = 8;
            if (fl & 0x1)
                at += 8;
            if (fl & 0x2)
                at += 4;
            if (fl & 0x8) {
                if (bl < at + 4)
                    return -1;
                def_dur = ms_rd_be32(b + at);
                at += 4;
            }
            if (fl & 0x10)
                at += 4;
            if (fl & 0x20) {
                if (bl < at + 4)
                    return -1;
                def_flags = ms_rd_be32(b + at);
            }
        } else if (type == FOURCC('t', 'f', 'd', 't')) {
            if (bl < 8)
                return -1;
            if (b[0] == 1) {
                if (bl < 12)
                    return -1;
                tfdt = ((uint64_t)ms_rd_be32(b + 4) << 32) | ms_rd_be32(b + 8);
            } else {
                tfdt = ms_rd_be32(b + 4);
            }
            have_tfdt = 1;
        } else if (type == FOURCC('t', 'r', 'u', 'n') && t) {
            if (bl < 8)
                return -1;
            uint32_t fl = ms_rd_be24(b + 1);
            uint32_t count = ms_rd_be32(b + 4);
            size_t at = 8;
            int has_first = 0;
            if (fl & 0x1)
                at += 4;
            if (fl & 0x4) {
                if (bl < at + 4)
                    return -1;
                if (!have_trun) {
                    first_flags = ms_rd_be32(b + at);
                    has_first = 1;
                }
                at += 4;
            }
            if (at > bl)
                return -1;
            size_t per = 0;
            per += (fl & 0x100) ? 4 : 0;
            per += (fl & 0x200) ? 4 : 0;
            per += (fl & 0x400) ? 4 : 0;
            per += (fl & 0x800) ? 4 : 0;
            if (per && count > (bl - at) / per)
                return -1;
            for (uint32_t i = 0; i < count; i++) {
                size_t s = at + (size_t)i * per;
                uint32_t d = def_dur, f = def_flags;
                if (fl & 0x100) {
                    d = ms_rd_be32(b + s);
                    s += 4;
                }
                if (fl & 0x200)
                    s += 4;
                if (fl & 0x400)
                    f = ms_rd_be32(b + s);
                if (i == 0 && !has_first && !have_trun)
                    first_flags = f;
                total += d;
            }
            have_trun = 1;
        }
        off += (size_t)sz;
    }
    if (!t || !have_tfdt || !have_trun)
        return -1;
    uint64_t ts = t->timescale;
    fr->t_ms = (int64_t)(tfdt / ts * 1000 + (tfdt % ts) * 1000 / ts);
    fr->dur_ms = (uint32_t)(total * 1000 / ts);
    fr->key = t->video ? !(first_flags & 0x00010000u) : 1;
    *idout = id;
    return 0;
}

/* The fragment's time is the primary track's run (video), else the first
 * run's. */
static int parse_moof(const uint8_t *p, size_t len, const moov_t *m, ms_dvr_frag_t *fr)
{
    const trk_t *pt = primary(m);
    size_t off = 0;
    int found = 0;
    while (off < len) {
        uint64_t sz;
        uint32_t type;
        size_t hl = box_hdr(p + off, len - off, &sz, &type);
        if (!hl)
            return -1;
        if (type == FOURCC('t', 'r', 'a', 'f')) {
            ms_dvr_frag_t f;
            uint32_t id = 0;
            memset(&f, 0, sizeof f);
            if (parse_traf(p + off + hl, (size_t)sz - hl, m, &f, &id) < 0)
                return -1;
            if (!found || (pt && id == pt->id && found != 2)) {
                *fr = f;
                found = pt && id == pt->id ? 2 : 1;
            }
        }
        off += (size_t)sz;
    }
    return found ? 0 : -1;
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
    moov_t m;
    memset(&m, 0, sizeof m);
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
            if (type == FOURCC('m', 'o', 'o', 'v')) {
                if (sz > MAX_META_BOX) {
                    rc = -EINVAL;
                    goto done;
                }
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
                parse_moov(meta + hl, (size_t)sz - hl, &m, NULL);
                if (!primary(&m)) {
                    rc = -EINVAL;
                    goto done;
                }
                have_moov = 1;
                out->init_len = (uint32_t)(off + sz);
                out->valid_len = off + sz;
            } else if (type != FOURCC('f', 't', 'y', 'p') && type != FOURCC('f', 'r', 'e', 'e')) {
                rc = -EINVAL;
                goto done;
            }
        } else if (type == FOURCC('m', 'o', 'o', 'f')) {
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
            if (parse_moof(meta + hl, (size_t)sz - hl, &m, &pend) < 0)
                break;
            pend_off = off;
            have_pend = 1;
        } else if (type == FOURCC('m', 'd', 'a', 't') && have_pend) {
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
        } else if (type == FOURCC('s', 't', 'y', 'p') || type == FOURCC('f', 'r', 'e', 'e')) {
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
    if (rc < 0)
        ms_dvr_scan_free(out);
    return rc;
}
