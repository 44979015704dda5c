/* Archive HLS playlist renderer (dvr/archive.h), RFC 8216: 4.3.3.5
 * EXT-X-PLAYLIST-TYPE (VOD / EVENT), 4.3.2.5 EXT-X-MAP, 4.3.2.6
 * EXT-X-PROGRAM-DATE-TIME, 4.3.2.3 EXT-X-DISCONTINUITY, 4.3.3.4
 * EXT-X-ENDLIST, 3.3 fragmented MPEG-4 segments. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "dvr/archive.h"
#include "util/urlquery.h"

typedef struct {
    const ms_dvr_chunk_t *c;
    size_t i, j; /* fragments [i, j] */
    int64_t t0, t1;
} seg_t;

/* Output is formatted into a stack buffer per segment and appended once
 * (no printf: a 24 h playlist of 2 s chunks has ~43k segments, four lines
 * each). */

static const char D2[] = "00010203040506070809101112131415161718192021222324252627282930313233"
                         "34353637383940414243444546474849505152535455565758596061626364656667"
                         "6869707172737475767778798081828384858687888990919293949596979899";

/* Decimal of v at p, two digits per division; returns the end. */
static char *w_u(char *p, uint64_t v)
{
    static const uint64_t P10[20] = {1ull,
                                     10ull,
                                     100ull,
                                     1000ull,
                                     10000ull,
                                     100000ull,
                                     1000000ull,
                                     10000000ull,
                                     100000000ull,
                                     1000000000ull,
                                     10000000000ull,
                                     100000000000ull,
                                     1000000000000ull,
                                     10000000000000ull,
                                     100000000000000ull,
                                     1000000000000000ull,
                                     10000000000000000ull,
                                     100000000000000000ull,
                                     1000000000000000000ull,
                                     10000000000000000000ull};
    /* digits: log10 from the bit length (1233/4096 ~ log10(2)), corrected */
    int n = (64 - __builtin_clzll(v | 1)) * 1233 >> 12;
    n += n < 20 && v >= P10[n];
    if (n < 1)
        n = 1;
    char *e = p + n;
    while (v >= 100) {
        unsigned r = (unsigned)(v % 100);
        v /= 100;
        e -= 2;
        memcpy(e, D2 + 2 * r, 2);
    }
    if (v >= 10) {
        e -= 2;
        memcpy(e, D2 + 2 * v, 2);
    } else {
        *--e = (char)('0' + v);
    }
    return p + n;
}

static char *w_i(char *p, int64_t v)
{
    if (v < 0) {
        *p++ = '-';
        return w_u(p, (uint64_t)0 - (uint64_t)v);
    }
    return w_u(p, (uint64_t)v);
}

#define W_LIT(p, s) (memcpy((p), (s), sizeof(s) - 1), (p) + sizeof(s) - 1)

/* v in [0, 100) as two digits. */
static void dig2(char *p, int v)
{
    memcpy(p, D2 + 2 * v, 2);
}

/* "YYYY-MM-DDT" of the day being rendered (gmtime once per day). */
typedef struct {
    int64_t day;
    char date[16];
    size_t dlen;
} day_cache_t;

/* EXT-X-PROGRAM-DATE-TIME line of ms at p (at most 52 bytes); returns the
 * end. */
static char *w_pdt(char *p, day_cache_t *dc, int64_t ms)
{
    int64_t day = ms >= 0 ? ms / 86400000 : (ms - 86399999) / 86400000;
    if (day != dc->day || !dc->dlen) {
        time_t s = (time_t)(day * 86400);
        struct tm tm;
        gmtime_r(&s, &tm);
        snprintf(dc->date, sizeof dc->date, "%04d-%02d-%02dT", (tm.tm_year + 1900) % 10000,
                 (tm.tm_mon + 1) % 100, tm.tm_mday % 100);
        dc->day = day;
        dc->dlen = strlen(dc->date);
    }
    int64_t r = ms - day * 86400000; /* [0, 86400000) */
    p = W_LIT(p, "#EXT-X-PROGRAM-DATE-TIME:");
    memcpy(p, dc->date, dc->dlen);
    p += dc->dlen;
    dig2(p, (int)(r / 3600000));
    p[2] = ':';
    dig2(p + 3, (int)(r / 60000 % 60));
    p[5] = ':';
    dig2(p + 6, (int)(r / 1000 % 60));
    p[8] = '.';
    int m = (int)(r % 1000);
    p[9] = (char)('0' + m / 100);
    dig2(p + 10, m % 100);
    memcpy(p + 12, "Z\n", 2);
    return p + 14;
}

/* Walks the selected segments; emit(seg) for each. Returns the count. */
static size_t select_segs(const ms_dvr_chunk_t *v, size_t n, const ms_dvr_pl_opts_t *o,
                          void (*emit)(void *ud, const seg_t *s), void *ud, int64_t *maxdur)
{
    size_t count = 0;
    int started = 0;
    int64_t end_ms = 0;
    *maxdur = 0;
    for (size_t ci = 0; ci < n; ci++) {
        const ms_dvr_chunk_t *c = &v[ci];
        if (!c->nfrags)
            continue;
        size_t k = 0;
        if (!started) {
            if (c->end_ms <= o->from_ms)
                continue;
            for (size_t q = 0; q < c->nfrags; q++)
                if (c->frags[q].key && c->frags[q].t_ms <= o->from_ms)
                    k = q;
            started = 1;
            end_ms = c->frags[k].t_ms + o->dur_ms;
        }
        while (k < c->nfrags) {
            if (!o->event && count && c->frags[k].t_ms + c->frags[k].dur_ms / 2 >= end_ms)
                return count;
            seg_t s = {c, k, k, c->frags[k].t_ms, c->frags[k].t_ms + c->frags[k].dur_ms};
            size_t q = k + 1;
            for (; q < c->nfrags; q++) {
                const ms_dvr_frag_t *f = &c->frags[q];
                if (f->key && s.t1 - s.t0 >= o->target_ms)
                    break;
                if (!o->event && f->t_ms + f->dur_ms / 2 >= end_ms)
                    break;
                s.j = q;
                s.t1 = f->t_ms + f->dur_ms;
            }
            /* event: an unfinished group of an open chunk is not listed */
            if (o->event && c->open && q >= c->nfrags)
                return count;
            if (s.t1 - s.t0 > *maxdur)
                *maxdur = s.t1 - s.t0;
            emit(ud, &s);
            count++;
            k = q;
        }
    }
    return count;
}

typedef struct {
    ms_buf_t *b;
    const ms_dvr_pl_opts_t *o;
    size_t qlen;
    const ms_dvr_chunk_t *prev_c;
    int64_t prev_end;
    day_cache_t dc;
    const ms_dvr_chunk_t *cs_c; /* chunk of cs */
    char cs[48];
    size_t cslen;
} render_t;

/* One segment: [DISCONTINUITY] [MAP] PROGRAM-DATE-TIME, EXTINF, URI. The
 * fixed parts (at most ~250 bytes) go through a stack buffer; the query
 * string (any length) is appended from the options. */
static void emit_seg(void *ud, const seg_t *s)
{
    render_t *r = ud;
    ms_buf_t *b = r->b;
    char t[320];
    char *p = t;
    int first = r->prev_c == NULL;
    int disc =
        !first && (s->t0 - r->prev_end > r->o->gap_ms || s->t0 < r->prev_end - r->o->gap_ms ||
                   s->c->init_len != r->prev_c->init_len);
    if (disc)
        p = W_LIT(p, "#EXT-X-DISCONTINUITY\n");
    if (s->c != r->cs_c) {
        /* "{id}-{start_ms}" of the chunk, shared by its segments */
        char *q = w_i(r->cs, s->c->id);
        *q++ = '-';
        q = w_i(q, s->c->start_ms);
        *q++ = '-';
        r->cslen = (size_t)(q - r->cs);
        r->cs_c = s->c;
    }
    if (first || disc) {
        p = W_LIT(p, "#EXT-X-MAP:URI=\"archive-init-");
        memcpy(p, r->cs, r->cslen - 1);
        p += r->cslen - 1;
        p = W_LIT(p, ".mp4");
        ms_buf_append(b, t, (size_t)(p - t));
        ms_buf_append(b, r->o->query, r->qlen);
        p = t;
        p = W_LIT(p, "\"\n");
    }
    p = w_pdt(p, &r->dc, s->t0);
    int64_t d = s->t1 - s->t0;
    if (d < 0)
        d = 0;
    p = W_LIT(p, "#EXTINF:");
    p = w_i(p, d / 1000);
    int m = (int)(d % 1000);
    p[0] = '.';
    p[1] = (char)('0' + m / 100);
    dig2(p + 2, m % 100);
    p += 4;
    p = W_LIT(p, ",\narchive-seg-");
    memcpy(p, r->cs, r->cslen);
    p += r->cslen;
    p = w_u(p, s->i);
    *p++ = '-';
    p = w_u(p, s->j);
    p = W_LIT(p, ".m4s");
    if (r->qlen) {
        ms_buf_append(b, t, (size_t)(p - t));
        ms_buf_append(b, r->o->query, r->qlen);
        p = t;
    }
    *p++ = '\n';
    ms_buf_append(b, t, (size_t)(p - t));
    r->prev_c = s->c;
    r->prev_end = s->t1;
}

static void emit_none(void *ud, const seg_t *s)
{
    (void)ud;
    (void)s;
}

int ms_dvr_playlist(const ms_dvr_chunk_t *v, size_t n, const ms_dvr_pl_opts_t *o, ms_buf_t *out)
{
    int64_t maxdur = 0;
    size_t nsegs = select_segs(v, n, o, emit_none, NULL, &maxdur);
    int64_t target = (maxdur + 999) / 1000;
    if (o->event && target < 10)
        target = 10; /* EVENT: the target must not change as the list grows */
    if (target < 1)
        target = 1;
    ms_buf_printf(out, "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:%" PRId64 "\n", target);
    ms_buf_printf(out, "#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:%s\n",
                  o->event ? "EVENT" : "VOD");
    ms_buf_printf(out, "#EXT-X-INDEPENDENT-SEGMENTS\n");
    size_t qlen = strlen(o->query);
    /* one allocation for the whole list (nsegs from the first pass): at
     * most ~110 bytes plus the query per segment, more at a MAP */
    ms_buf_reserve(out, nsegs * (128 + qlen) + 64);
    render_t r = {out, o, qlen, NULL, 0, {0, "", 0}, NULL, "", 0};
    size_t count = select_segs(v, n, o, emit_seg, &r, &maxdur);
    if (!o->event)
        ms_buf_printf(out, "#EXT-X-ENDLIST\n");
    return out->err ? -ENOMEM : (int)count;
}

int ms_dvr_media_name(const char *name, int64_t *id, int64_t *start_ms, int64_t *i, int64_t *j)
{
    char buf[128];
    size_t len = strlen(name);
    if (len >= sizeof buf)
        return -EINVAL;
    memcpy(buf, name, len + 1);
    int kind;
    char *p;
    if (strncmp(buf, "archive-seg-", 12) == 0 && len > 16 && strcmp(buf + len - 4, ".m4s") == 0) {
        kind = 1;
        p = buf + 12;
    } else if (strncmp(buf, "archive-init-", 13) == 0 && len > 17 &&
               strcmp(buf + len - 4, ".mp4") == 0) {
        kind = 2;
        p = buf + 13;
    } else {
        return -EINVAL;
    }
    buf[len - 4] = '\0';
    int dashes = 0;
    for (const char *q = p; *q; q++)
        dashes += *q == '-';
    if (dashes != (kind == 1 ? 3 : 1))
        return -EINVAL;
    char *parts[4];
    int np = 0;
    for (char *q = p; np < 4;) {
        parts[np++] = q;
        char *dash = strchr(q, '-');
        if (!dash)
            break;
        *dash = '\0';
        q = dash + 1;
    }
    if ((kind == 1 && np != 4) || (kind == 2 && np != 2))
        return -EINVAL;
    int64_t x[4] = {0, 0, 0, 0};
    for (int k = 0; k < np; k++)
        if (ms_url_parse_i64(parts[k], 0, INT64_MAX / 2, &x[k]) < 0)
            return -EINVAL;
    if (strchr(parts[np - 1], '-'))
        return -EINVAL;
    *id = x[0];
    *start_ms = x[1];
    if (i)
        *i = x[2];
    if (j)
        *j = x[3];
    if (kind == 1 && x[3] < x[2])
        return -EINVAL;
    return kind;
}
