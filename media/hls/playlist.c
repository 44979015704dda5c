/* HLS media playlist rendering: RFC 8216 4.3 (media playlist tags) and
 * draft-pantos-hls-rfc8216bis 4.4.3.7 (EXT-X-PART-INF), 4.4.3.8
 * (EXT-X-SERVER-CONTROL), 4.4.4.9 (EXT-X-PART), 4.4.5.3
 * (EXT-X-PRELOAD-HINT). */
#include "media/hls/playlist.h"

#include <errno.h>
#include <string.h>
#include <time.h>

static void put_secs(ms_buf_t *b, int64_t ticks)
{
    if (ticks < 0)
        ticks = 0;
    /* Milliseconds, rounded; printed as seconds with 3 decimals. */
    int64_t ms = (ticks + 45) / 90;
    ms_buf_printf(b, "%lld.%03lld", (long long)(ms / 1000), (long long)(ms % 1000));
}

static void put_query(ms_buf_t *b, const char *q)
{
    if (q && *q)
        ms_buf_printf(b, "?%s", q);
}

static void put_pdt(ms_buf_t *b, int64_t us)
{
    time_t s = (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&s, &tm);
    ms_buf_printf(b, "#EXT-X-PROGRAM-DATE-TIME:%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\n",
                  tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  (int)((us / 1000) % 1000));
}

int ms_hls_pl_render(const ms_hls_pl_t *pl, ms_buf_t *b)
{
    if (pl->nsegs <= 0)
        return -EINVAL;
    const char *ext = pl->fmp4 ? "m4s" : "ts";
    int ll = pl->part_target_ms > 0;
    ms_buf_printf(b, "#EXTM3U\n");
    /* Version 9 for the LL-HLS tags; 6 for EXT-X-MAP in fMP4 media
     * playlists (RFC 8216 7); 3 for TS with decimal EXTINF. */
    ms_buf_printf(b, "#EXT-X-VERSION:%d\n", ll ? 9 : pl->fmp4 ? 6 : 3);
    ms_buf_printf(b, "#EXT-X-TARGETDURATION:%u\n", pl->target_s);
    if (ll) {
        ms_buf_printf(b, "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=");
        put_secs(b, (int64_t)pl->part_target_ms * 90 * 3);
        ms_buf_printf(b, "\n#EXT-X-PART-INF:PART-TARGET=");
        put_secs(b, (int64_t)pl->part_target_ms * 90);
        ms_buf_printf(b, "\n");
    }
    ms_buf_printf(b, "#EXT-X-MEDIA-SEQUENCE:%lld\n", (long long)pl->segs[0].msn);
    ms_buf_printf(b, "#EXT-X-DISCONTINUITY-SEQUENCE:%lld\n", (long long)pl->disc_seq);
    ms_buf_printf(b, "#EXT-X-INDEPENDENT-SEGMENTS\n");
    uint32_t map_gen = 0;
    for (int i = 0; i < pl->nsegs; i++) {
        const ms_hls_pl_seg_t *s = &pl->segs[i];
        if (!s->complete && s->nparts == 0)
            break; /* an open segment without parts is only hinted */
        if (s->discont)
            ms_buf_printf(b, "#EXT-X-DISCONTINUITY\n");
        if (pl->fmp4 && (i == 0 || s->gen != map_gen)) {
            ms_buf_printf(b, "#EXT-X-MAP:URI=\"init%u.mp4", s->gen);
            put_query(b, pl->query);
            ms_buf_printf(b, "\"\n");
            map_gen = s->gen;
        }
        if (s->pdt_us > 0)
            put_pdt(b, s->pdt_us);
        for (int p = 0; ll && p < s->nparts; p++) {
            ms_buf_printf(b, "#EXT-X-PART:DURATION=");
            put_secs(b, s->parts[p].dur);
            ms_buf_printf(b, ",URI=\"part%lld.%d.%s", (long long)s->msn, p, ext);
            put_query(b, pl->query);
            ms_buf_printf(b, "\"%s\n", s->parts[p].independent ? ",INDEPENDENT=YES" : "");
        }
        if (!s->complete)
            break;
        ms_buf_printf(b, "#EXTINF:");
        put_secs(b, s->dur);
        ms_buf_printf(b, ",\nseg%lld.%s", (long long)s->msn, ext);
        put_query(b, pl->query);
        ms_buf_printf(b, "\n");
    }
    if (ll && pl->hint_part >= 0) {
        ms_buf_printf(b, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part%lld.%d.%s",
                      (long long)pl->hint_msn, pl->hint_part, ext);
        put_query(b, pl->query);
        ms_buf_printf(b, "\"\n");
    }
    if (pl->endlist)
        ms_buf_printf(b, "#EXT-X-ENDLIST\n");
    return b->err ? -ENOMEM : 0;
}

int ms_hls_pl_add_query(const char *in, size_t len, const char *query, ms_buf_t *out)
{
    size_t qlen = query ? strlen(query) : 0;
    size_t i = 0;
    while (i < len) {
        const char *nl = memchr(in + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - in) : len;
        const char *line = in + i;
        size_t llen = end - i;
        if (qlen && llen > 0 && line[0] != '#') {
            ms_buf_append(out, line, llen);
            ms_buf_u8(out, '?');
            ms_buf_append(out, query, qlen);
        } else if (qlen && llen > 0) {
            /* URI="..." attributes: insert before the closing quote. */
            size_t k = 0;
            while (k < llen) {
                if (llen - k > 5 && !memcmp(line + k, "URI=\"", 5)) {
                    const char *q = memchr(line + k + 5, '"', llen - k - 5);
                    if (!q)
                        break;
                    size_t qend = (size_t)(q - line);
                    ms_buf_append(out, line + k, qend - k);
                    ms_buf_u8(out, '?');
                    ms_buf_append(out, query, qlen);
                    k = qend;
                } else {
                    ms_buf_u8(out, (uint8_t)line[k++]);
                }
            }
            if (k < llen)
                ms_buf_append(out, line + k, llen - k);
        } else {
            ms_buf_append(out, line, llen);
        }
        if (nl)
            ms_buf_u8(out, '\n');
        i = end + 1;
    }
    return out->err ? -ENOMEM : 0;
}
