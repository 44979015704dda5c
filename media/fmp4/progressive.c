/* Progressive MP4 head writer (media/fmp4/progressive.h), ISO/IEC
 * 14496-12: 4.3 ftyp, 8.2.2 mvhd, 8.3.2 tkhd, 8.4.2 mdhd, 8.6.1.2 stts,
 * 8.6.1.3 ctts, 8.6.2 stss, 8.7.3 stsz, 8.7.4 stsc, 8.7.5 co64. */
#include "media/fmp4/box.h"
#include "media/fmp4/progressive.h"

#include <errno.h>
#include <string.h>

#define EPOCH_1904 2082844800ull /* seconds from 1904-01-01 to 1970-01-01 */

static uint64_t track_dur(const ms_mp4p_track_t *t)
{
    uint64_t d = 0;
    for (size_t i = 0; i < t->n; i++)
        d += t->s[i].dur;
    return d;
}

static uint64_t to_ms(uint64_t d, uint32_t ts)
{
    return ts ? d / ts * 1000 + (d % ts) * 1000 / ts : 0;
}

static int is_video(const ms_mp4p_track_t *t)
{
    return t->src->handler == MS_FOURCC('v', 'i', 'd', 'e');
}

static void stbl(ms_buf_t *b, const ms_mp4p_track_t *t, uint64_t base)
{
    size_t o = ms_mp4_box_open(b, "stbl");
    ms_buf_append(b, t->src->stsd.p, t->src->stsd.len);

    /* stts: run-length of equal durations */
    size_t x = ms_mp4_fullbox_open(b, "stts", 0, 0), cnt_at = b->len;
    uint32_t entries = 0;
    ms_buf_be32(b, 0);
    for (size_t i = 0; i < t->n;) {
        size_t j = i + 1;
        while (j < t->n && t->s[j].dur == t->s[i].dur)
            j++;
        ms_buf_be32(b, (uint32_t)(j - i));
        ms_buf_be32(b, t->s[i].dur);
        entries++;
        i = j;
    }
    if (!b->err)
        ms_buf_put_be32_at(b, cnt_at, entries);
    ms_mp4_box_close(b, x);

    int any_cto = 0, all_sync = 1;
    for (size_t i = 0; i < t->n; i++) {
        any_cto |= t->s[i].cto != 0;
        all_sync &= !(t->s[i].flags & 0x00010000u);
    }
    if (any_cto) {
        x = ms_mp4_fullbox_open(b, "ctts", 1, 0);
        cnt_at = b->len;
        entries = 0;
        ms_buf_be32(b, 0);
        for (size_t i = 0; i < t->n;) {
            size_t j = i + 1;
            while (j < t->n && t->s[j].cto == t->s[i].cto)
                j++;
            ms_buf_be32(b, (uint32_t)(j - i));
            ms_buf_be32(b, (uint32_t)t->s[i].cto);
            entries++;
            i = j;
        }
        if (!b->err)
            ms_buf_put_be32_at(b, cnt_at, entries);
        ms_mp4_box_close(b, x);
    }
    if (is_video(t) && !all_sync) {
        x = ms_mp4_fullbox_open(b, "stss", 0, 0);
        cnt_at = b->len;
        entries = 0;
        ms_buf_be32(b, 0);
        for (size_t i = 0; i < t->n; i++)
            if (!(t->s[i].flags & 0x00010000u)) {
                ms_buf_be32(b, (uint32_t)(i + 1));
                entries++;
            }
        if (!b->err)
            ms_buf_put_be32_at(b, cnt_at, entries);
        ms_mp4_box_close(b, x);
    }

    x = ms_mp4_fullbox_open(b, "stsz", 0, 0);
    ms_buf_be32(b, 0); /* sample_size: every size in the table */
    ms_buf_be32(b, (uint32_t)t->n);
    for (size_t i = 0; i < t->n; i++)
        ms_buf_be32(b, t->s[i].size);
    ms_mp4_box_close(b, x);

    /* chunks: maximal runs of samples at consecutive offsets */
    x = ms_mp4_fullbox_open(b, "stsc", 0, 0);
    cnt_at = b->len;
    entries = 0;
    ms_buf_be32(b, 0);
    uint32_t chunk = 0, last_per = 0;
    for (size_t i = 0; i < t->n;) {
        size_t j = i + 1;
        while (j < t->n && t->s[j].off == t->s[j - 1].off + t->s[j - 1].size)
            j++;
        chunk++;
        if ((uint32_t)(j - i) != last_per) {
            last_per = (uint32_t)(j - i);
            ms_buf_be32(b, chunk);
            ms_buf_be32(b, last_per);
            ms_buf_be32(b, 1); /* sample_description_index */
            entries++;
        }
        i = j;
    }
    if (!b->err)
        ms_buf_put_be32_at(b, cnt_at, entries);
    ms_mp4_box_close(b, x);

    x = ms_mp4_fullbox_open(b, "co64", 0, 0);
    ms_buf_be32(b, chunk);
    for (size_t i = 0; i < t->n;) {
        size_t j = i + 1;
        while (j < t->n && t->s[j].off == t->s[j - 1].off + t->s[j - 1].size)
            j++;
        ms_buf_be64(b, base + t->s[i].off);
        i = j;
    }
    ms_mp4_box_close(b, x);
    ms_mp4_box_close(b, o);
}

static void trak(ms_buf_t *b, const ms_mp4p_track_t *t, uint64_t base, uint64_t ctime)
{
    const ms_fmp4d_track_t *s = t->src;
    uint64_t d = track_dur(t);
    size_t o = ms_mp4_box_open(b, "trak");
    size_t x = ms_mp4_fullbox_open(b, "tkhd", 1, 0x000003); /* enabled, in movie */
    ms_buf_be64(b, ctime);
    ms_buf_be64(b, ctime);
    ms_buf_be32(b, s->id);
    ms_buf_be32(b, 0);
    ms_buf_be64(b, to_ms(d, s->timescale)); /* in the movie timescale (1000) */
    ms_buf_fill(b, 0, 8);
    ms_buf_be16(b, 0); /* layer */
    ms_buf_be16(b, 0); /* alternate_group */
    ms_buf_be16(b, s->handler == MS_FOURCC('s', 'o', 'u', 'n') ? 0x0100 : 0);
    ms_buf_be16(b, 0);
    ms_mp4_put_matrix(b);
    ms_buf_be32(b, s->width);
    ms_buf_be32(b, s->height);
    ms_mp4_box_close(b, x);

    size_t m = ms_mp4_box_open(b, "mdia");
    x = ms_mp4_fullbox_open(b, "mdhd", 1, 0);
    ms_buf_be64(b, ctime);
    ms_buf_be64(b, ctime);
    ms_buf_be32(b, s->timescale);
    ms_buf_be64(b, d);
    ms_buf_be16(b, s->language ? s->language : 0x55C4); /* "und" */
    ms_buf_be16(b, 0);
    ms_mp4_box_close(b, x);
    ms_buf_append(b, s->hdlr.p, s->hdlr.len);
    size_t mi = ms_mp4_box_open(b, "minf");
    if (s->xmhd.len) {
        ms_buf_append(b, s->xmhd.p, s->xmhd.len);
    } else if (is_video(t)) {
        x = ms_mp4_fullbox_open(b, "vmhd", 0, 1);
        ms_buf_fill(b, 0, 8);
        ms_mp4_box_close(b, x);
    } else {
        x = ms_mp4_fullbox_open(b, "smhd", 0, 0);
        ms_buf_be32(b, 0);
        ms_mp4_box_close(b, x);
    }
    if (s->dinf.len) {
        ms_buf_append(b, s->dinf.p, s->dinf.len);
    } else {
        size_t di = ms_mp4_box_open(b, "dinf");
        size_t dr = ms_mp4_fullbox_open(b, "dref", 0, 0);
        ms_buf_be32(b, 1);
        size_t u = ms_mp4_fullbox_open(b, "url ", 0, 1); /* self-contained */
        ms_mp4_box_close(b, u);
        ms_mp4_box_close(b, dr);
        ms_mp4_box_close(b, di);
    }
    stbl(b, t, base);
    ms_mp4_box_close(b, mi);
    ms_mp4_box_close(b, m);
    ms_mp4_box_close(b, o);
}

static void head(ms_buf_t *b, const ms_mp4p_track_t *t, int nt, uint64_t mdat_payload,
                 uint64_t base, uint64_t ctime)
{
    size_t o = ms_mp4_box_open(b, "ftyp");
    ms_buf_append(b, "isom", 4);
    ms_buf_be32(b, 0x200);
    ms_buf_append(b, "isomiso2avc1mp41", 16);
    ms_mp4_box_close(b, o);

    uint64_t dur = 0;
    uint32_t next_id = 1;
    for (int i = 0; i < nt; i++) {
        if (!t[i].n)
            continue;
        uint64_t d = to_ms(track_dur(&t[i]), t[i].src->timescale);
        if (d > dur)
            dur = d;
        if (t[i].src->id >= next_id)
            next_id = t[i].src->id + 1;
    }
    size_t mv = ms_mp4_box_open(b, "moov");
    size_t x = ms_mp4_fullbox_open(b, "mvhd", 1, 0);
    ms_buf_be64(b, ctime);
    ms_buf_be64(b, ctime);
    ms_buf_be32(b, 1000);
    ms_buf_be64(b, dur);
    ms_buf_be32(b, 0x00010000); /* rate 1.0 */
    ms_buf_be16(b, 0x0100);     /* volume 1.0 */
    ms_buf_fill(b, 0, 10);
    ms_mp4_put_matrix(b);
    ms_buf_fill(b, 0, 24);
    ms_buf_be32(b, next_id);
    ms_mp4_box_close(b, x);
    for (int i = 0; i < nt; i++)
        if (t[i].n)
            trak(b, &t[i], base, ctime);
    ms_mp4_box_close(b, mv);

    ms_buf_be32(b, 1); /* largesize follows */
    ms_buf_append(b, "mdat", 4);
    ms_buf_be64(b, 16 + mdat_payload);
}

int64_t ms_mp4p_write_head(const ms_mp4p_track_t *t, int nt, uint64_t mdat_payload,
                           int64_t creation, ms_buf_t *out)
{
    int any = 0;
    for (int i = 0; i < nt; i++)
        any |= t[i].n > 0 && t[i].src && t[i].src->stsd.len && t[i].src->hdlr.len;
    if (!any)
        return -EINVAL;
    for (int i = 0; i < nt; i++)
        if (t[i].n && (!t[i].src || !t[i].src->stsd.len || !t[i].src->hdlr.len))
            return -EINVAL;
    uint64_t ctime = creation > 0 ? (uint64_t)creation + EPOCH_1904 : 0;
    /* The head's size does not depend on the offsets (co64 has a fixed
     * width): measure with base 0, then write with the real base. */
    ms_buf_t probe = MS_BUF_INIT;
    head(&probe, t, nt, mdat_payload, 0, ctime);
    if (probe.err) {
        ms_buf_free(&probe);
        return -ENOMEM;
    }
    uint64_t hl = probe.len;
    ms_buf_free(&probe);
    size_t start = out->len;
    head(out, t, nt, mdat_payload, hl, ctime);
    if (out->err)
        return -ENOMEM;
    return (int64_t)(out->len - start);
}
