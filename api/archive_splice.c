/* Cross-server archive playlists, the pure part (api/archive_remote.h):
 * parse an archive media playlist, merge the segment lists of several
 * servers, render one playlist. No I/O, no globals: unit-tested
 * (api/tests/test_archive_remote.c) and fuzzed (fuzz/fuzz_archive_splice.c).
 *
 * RFC 8216: 4.3.2.1 EXTINF, 4.3.2.3 EXT-X-DISCONTINUITY, 4.3.2.5 EXT-X-MAP,
 * 4.3.2.6 EXT-X-PROGRAM-DATE-TIME, 4.3.3.1 EXT-X-TARGETDURATION, 4.3.3.5
 * EXT-X-PLAYLIST-TYPE, 4.3.3.4 EXT-X-ENDLIST, 6.2.2 (a server splicing
 * media of other encodings marks each switch with a discontinuity). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/archive_remote.h"

/* Two segments of two servers overlapping by less than this are both kept
 * (rounding of fragment times); more, and the later one is dropped. */
#define OVERLAP_TOL_MS 250

/* ---- pure part ---------------------------------------------------------- */

void ms_arch_list_free(ms_arch_list_t *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].uri);
        free(l->v[i].map);
    }
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int num(const char *s, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int ms_arch_parse_pdt(const char *s, size_t len, int64_t *out_ms)
{
    int y, mo, d, h, mi, se, ms = 0;
    if (len < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' ||
        num(s, 4, &y) < 0 || num(s + 5, 2, &mo) < 0 || num(s + 8, 2, &d) < 0 ||
        num(s + 11, 2, &h) < 0 || num(s + 14, 2, &mi) < 0 || num(s + 17, 2, &se) < 0)
        return -EINVAL;
    size_t k = 19;
    if (s[k] == '.') {
        int scale = 100;
        for (k++; k < len && s[k] >= '0' && s[k] <= '9'; k++) {
            ms += (s[k] - '0') * scale;
            scale /= 10;
        }
    }
    /* UTC only: what ms_dvr_playlist writes */
    if (!(k + 1 == len && s[k] == 'Z') && !(k + 6 == len && memcmp(s + k, "+00:00", 6) == 0))
        return -EINVAL;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
        return -EINVAL;
    int64_t days = days_from_civil(y, mo, d);
    *out_ms = ((days * 24 + h) * 60 + mi) * 60000 + (int64_t)se * 1000 + ms;
    return 0;
}

/* "<seconds>[.<fraction>]" up to the comma -> ms. */
static int parse_extinf(const char *s, size_t len, int64_t *out)
{
    int64_t v = 0;
    size_t k = 0;
    for (; k < len && s[k] >= '0' && s[k] <= '9'; k++) {
        if (v > 86400000)
            return -EINVAL;
        v = v * 10 + (s[k] - '0');
    }
    if (k == 0)
        return -EINVAL;
    v *= 1000;
    if (k < len && s[k] == '.') {
        int scale = 100;
        for (k++; k < len && s[k] >= '0' && s[k] <= '9'; k++) {
            v += (s[k] - '0') * scale;
            scale /= 10;
        }
    }
    *out = v;
    return 0;
}

/* prefix + uri (uri of len bytes), or uri alone when it is absolute. */
static char *join(const char *prefix, const char *uri, size_t len)
{
    int abs = (len >= 7 && strncmp(uri, "http://", 7) == 0) ||
              (len >= 8 && strncmp(uri, "https://", 8) == 0);
    size_t pl = abs ? 0 : strlen(prefix);
    char *o = malloc(pl + len + 1);
    if (!o)
        return NULL;
    memcpy(o, prefix, pl);
    memcpy(o + pl, uri, len);
    o[pl + len] = '\0';
    return o;
}

static int starts(const char *line, size_t len, const char *tag)
{
    size_t tl = strlen(tag);
    return len >= tl && memcmp(line, tag, tl) == 0;
}

int ms_arch_parse(const char *text, size_t len, const char *prefix, int src, ms_arch_list_t *l)
{
    if (len < 7 || memcmp(text, "#EXTM3U", 7) != 0)
        return -EINVAL;
    int count = 0, disc = 0, have_pdt = 0, have_next = 0;
    int64_t pdt = 0, next = 0, dur = -1;
    char *map = NULL;
    size_t pos = 0;
    while (pos < len) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t ll = nl ? (size_t)(nl - line) : len - pos;
        pos += ll + (nl ? 1 : 0);
        if (ll && line[ll - 1] == '\r')
            ll--;
        if (ll == 0)
            continue;
        if (starts(line, ll, "#EXT-X-PROGRAM-DATE-TIME:")) {
            have_pdt = ms_arch_parse_pdt(line + 25, ll - 25, &pdt) == 0;
        } else if (starts(line, ll, "#EXTINF:")) {
            if (parse_extinf(line + 8, ll - 8, &dur) < 0)
                dur = -1;
        } else if (ll == 20 && starts(line, ll, "#EXT-X-DISCONTINUITY")) {
            disc = 1;
        } else if (starts(line, ll, "#EXT-X-MAP:")) {
            const char *u = NULL;
            for (size_t k = 11; k + 5 <= ll; k++)
                if (memcmp(line + k, "URI=\"", 5) == 0) {
                    u = line + k + 5;
                    break;
                }
            const char *q = u ? memchr(u, '"', (size_t)(line + ll - u)) : NULL;
            free(map);
            map = q ? join(prefix, u, (size_t)(q - u)) : NULL;
            if (q && !map)
                goto nomem;
        } else if (line[0] != '#') {
            int64_t t = have_pdt ? pdt : next;
            if (dur >= 0 && (have_pdt || have_next)) {
                if (l->n == l->cap) {
                    size_t nc = l->cap ? l->cap * 2 : 64;
                    ms_arch_seg_t *nv = realloc(l->v, nc * sizeof *nv);
                    if (!nv)
                        goto nomem;
                    l->v = nv;
                    l->cap = nc;
                }
                ms_arch_seg_t *s = &l->v[l->n];
                memset(s, 0, sizeof *s);
                s->uri = join(prefix, line, ll);
                s->map = map ? strdup(map) : NULL;
                if (!s->uri || (map && !s->map)) {
                    free(s->uri);
                    free(s->map);
                    goto nomem;
                }
                s->t_ms = t;
                s->dur_ms = dur;
                s->disc = disc;
                s->src = src;
                l->n++;
                count++;
                next = t + dur;
                have_next = 1;
            }
            have_pdt = 0;
            disc = 0;
            dur = -1;
        }
    }
    free(map);
    return count;
nomem:
    free(map);
    return -ENOMEM;
}

static int seg_cmp(const void *a, const void *b)
{
    const ms_arch_seg_t *x = a, *y = b;
    if (x->t_ms != y->t_ms)
        return (x->t_ms > y->t_ms) - (x->t_ms < y->t_ms);
    if (x->src != y->src)
        return (x->src > y->src) - (x->src < y->src);
    return strcmp(x->uri, y->uri);
}

static int str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void put_pdt(ms_buf_t *b, int64_t ms)
{
    int64_t sec = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
    time_t tt = (time_t)sec;
    struct tm tm;
    gmtime_r(&tt, &tm);
    ms_buf_printf(b, "#EXT-X-PROGRAM-DATE-TIME:%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\n",
                  (tm.tm_year + 1900) % 10000, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                  tm.tm_sec, (int)(ms - sec * 1000));
}

/* Marks l->v[i].src = -1 for the segments not rendered; returns the
 * longest kept duration. */
static int64_t select_kept(ms_arch_list_t *l, int64_t from_ms, int64_t to_ms, int event)
{
    int64_t maxdur = 0, prev_end = 0;
    int have = 0;
    for (size_t i = 0; i < l->n; i++) {
        ms_arch_seg_t *s = &l->v[i];
        if ((!event && (s->t_ms >= to_ms || s->t_ms + s->dur_ms <= from_ms)) ||
            (have && s->t_ms < prev_end - OVERLAP_TOL_MS)) {
            s->src = -1;
            continue;
        }
        have = 1;
        prev_end = s->t_ms + s->dur_ms;
        if (s->dur_ms > maxdur)
            maxdur = s->dur_ms;
    }
    return maxdur;
}

int ms_arch_render(ms_arch_list_t *l, int64_t from_ms, int64_t to_ms, int event, int64_t gap_ms,
                   ms_buf_t *out)
{
    if (l->n > 1)
        qsort(l->v, l->n, sizeof *l->v, seg_cmp);
    int64_t target = (select_kept(l, from_ms, to_ms, event) + 999) / 1000;
    if (event && target < 10)
        target = 10; /* EVENT: the target must not change as the list grows */
    if (target < 1)
        target = 1;
    ms_buf_printf(out, "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:%" PRId64 "\n", target);
    ms_buf_printf(out, "#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:%s\n",
                  event ? "EVENT" : "VOD");
    ms_buf_printf(out, "#EXT-X-INDEPENDENT-SEGMENTS\n");
    const ms_arch_seg_t *prev = NULL;
    int count = 0;
    for (size_t i = 0; i < l->n; i++) {
        const ms_arch_seg_t *s = &l->v[i];
        if (s->src < 0)
            continue;
        int64_t prev_end = prev ? prev->t_ms + prev->dur_ms : 0;
        int disc = prev && (s->src != prev->src || !str_eq(s->map, prev->map) ||
                            s->t_ms - prev_end > gap_ms || (s->disc && s->src == prev->src));
        if (disc)
            ms_buf_printf(out, "#EXT-X-DISCONTINUITY\n");
        if (s->map && (!prev || disc))
            ms_buf_printf(out, "#EXT-X-MAP:URI=\"%s\"\n", s->map);
        put_pdt(out, s->t_ms);
        ms_buf_printf(out, "#EXTINF:%" PRId64 ".%03d,\n%s\n", s->dur_ms / 1000,
                      (int)(s->dur_ms % 1000), s->uri);
        prev = s;
        count++;
    }
    if (!event)
        ms_buf_printf(out, "#EXT-X-ENDLIST\n");
    return out->err ? -ENOMEM : count;
}
