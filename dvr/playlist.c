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

static void pdt(ms_buf_t *b, int64_t ms)
{
    time_t s = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    int64_t rem = ms - (int64_t)s * 1000;
    struct tm tm;
    gmtime_r(&s, &tm);
    ms_buf_printf(b, "#EXT-X-PROGRAM-DATE-TIME:%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\n",
                  tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  (int)rem);
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
        ms_buf_printf(b, "#EXT-X-DISCONTINUITY\n");
    if (first || disc)
        ms_buf_printf(b, "#EXT-X-MAP:URI=\"archive-init-%" PRId64 "-%" PRId64 ".mp4%s\"\n",
                      s->c->id, s->c->start_ms, r->o->query);
    pdt(b, s->t0);
    int64_t d = s->t1 - s->t0;
    ms_buf_printf(b, "#EXTINF:%" PRId64 ".%03d,\n", d / 1000, (int)(d % 1000));
    ms_buf_printf(b, "archive-seg-%" PRId64 "-%" PRId64 "-%zu-%zu.m4s%s\n", s->c->id,
                  s->c->start_ms, s->i, s->j, r->o->query);
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
    render_t r = {out, o, NULL, 0};
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
