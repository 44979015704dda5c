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

/* Decimal of v (no printf: a 24 h playlist of 2 s chunks has ~43k
 * segments, four lines each). */
static void put_u(ms_buf_t *b, uint64_t v)
{
    char t[24];
    size_t i = sizeof t;
    do {
        t[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    ms_buf_append(b, t + i, sizeof t - i);
}

static void put_i(ms_buf_t *b, int64_t v)
{
    if (v < 0) {
        ms_buf_append(b, "-", 1);
        put_u(b, (uint64_t)0 - (uint64_t)v);
    } else {
        put_u(b, (uint64_t)v);
    }
}

static void put_s(ms_buf_t *b, const char *s)
{
    ms_buf_append(b, s, strlen(s));
}

static void dig(char *p, int v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

/* "YYYY-MM-DDT" of the day being rendered (gmtime once per day). */
typedef struct {
    int64_t day;
    char date[16];
} day_cache_t;

static void pdt(ms_buf_t *b, day_cache_t *dc, int64_t ms)
{
    int64_t day = ms >= 0 ? ms / 86400000 : (ms - 86399999) / 86400000;
    if (day != dc->day || !dc->date[0]) {
        time_t s = (time_t)(day * 86400);
        struct tm tm;
        gmtime_r(&s, &tm);
        snprintf(dc->date, sizeof dc->date, "%04d-%02d-%02dT", (tm.tm_year + 1900) % 10000,
                 (tm.tm_mon + 1) % 100, tm.tm_mday % 100);
        dc->day = day;
    }
    int64_t r = ms - day * 86400000; /* [0, 86400000) */
    char t[64] = "#EXT-X-PROGRAM-DATE-TIME:";
    size_t k = strlen(t);
    size_t dl = strlen(dc->date);
    memcpy(t + k, dc->date, dl);
    k += dl;
    dig(t + k, (int)(r / 3600000), 2);
    t[k + 2] = ':';
    dig(t + k + 3, (int)(r / 60000 % 60), 2);
    t[k + 5] = ':';
    dig(t + k + 6, (int)(r / 1000 % 60), 2);
    t[k + 8] = '.';
    dig(t + k + 9, (int)(r % 1000), 3);
    memcpy(t + k + 12, "Z\n", 2);
    ms_buf_append(b, t, k + 14);
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
    const ms_dvr_chunk_t *prev_c;
    int64_t prev_end;
    day_cache_t dc;
} render_t;

static void emit_seg(void *ud, const seg_t *s)
{
    render_t *r = ud;
    ms_buf_t *b = r->b;
    int first = r->prev_c == NULL;
    int disc =
        !first && (s->t0 - r->prev_end > r->o->gap_ms || s->t0 < r->prev_end - r->o->gap_ms ||
                   s->c->init_len != r->prev_c->init_len);
    if (disc)
        put_s(b, "#EXT-X-DISCONTINUITY\n");
    if (first || disc) {
        put_s(b, "#EXT-X-MAP:URI=\"archive-init-");
        put_i(b, s->c->id);
        put_s(b, "-");
        put_i(b, s->c->start_ms);
        put_s(b, ".mp4");
        put_s(b, r->o->query);
        put_s(b, "\"\n");
    }
    pdt(b, &r->dc, s->t0);
    int64_t d = s->t1 - s->t0;
    if (d < 0)
        d = 0;
    char ms3[5] = ".000";
    dig(ms3 + 1, (int)(d % 1000), 3);
    put_s(b, "#EXTINF:");
    put_i(b, d / 1000);
    put_s(b, ms3);
    put_s(b, ",\narchive-seg-");
    put_i(b, s->c->id);
    put_s(b, "-");
    put_i(b, s->c->start_ms);
    put_s(b, "-");
    put_u(b, s->i);
    put_s(b, "-");
    put_u(b, s->j);
    put_s(b, ".m4s");
    put_s(b, r->o->query);
    put_s(b, "\n");
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
    select_segs(v, n, o, emit_none, NULL, &maxdur);
    int64_t target = (maxdur + 999) / 1000;
    if (o->event && target < 10)
        target = 10; /* EVENT: the target must not change as the list grows */
    if (target < 1)
        target = 1;
    ms_buf_printf(out, "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:%" PRId64 "\n", target);
    ms_buf_printf(out, "#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:%s\n",
                  o->event ? "EVENT" : "VOD");
    ms_buf_printf(out, "#EXT-X-INDEPENDENT-SEGMENTS\n");
    render_t r = {out, o, NULL, 0, {0, ""}};
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
