/* Fragmented MP4 (ISO/IEC 14496-12): init segment (4.3 ftyp, 8.2 moov,
 * 8.3 trak, 8.4 mdia, 8.5 stbl, 8.8.1 mvex) and movie fragments (8.8.4
 * moof, 8.8.7 tfhd, 8.8.8 trun, 8.8.12 tfdt). Sample entries: ISO/IEC
 * 14496-15 5.4 (avc1 + avcC) and 8.4 (hvc1 + hvcC); ISO/IEC 14496-14 5.6
 * (mp4a + esds). */
#include "media/fmp4/box.h"
#include "media/fmp4/fmp4.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "media/codec/h264.h"
#include "media/codec/h265.h"

typedef struct {
    int carried;
    uint32_t id;
    uint32_t timescale;
    ms_codec_params_t p;
} fmp4_track_t;

struct ms_fmp4 {
    int ntracks;
    uint32_t next_id;
    fmp4_track_t tracks[MS_MAX_TRACKS];
};

ms_fmp4_t *ms_fmp4_new(const ms_codec_params_t *tracks, int ntracks)
{
    if (ntracks < 0 || ntracks > MS_MAX_TRACKS)
        return NULL;
    ms_fmp4_t *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->ntracks = ntracks;
    m->next_id = 1;
    for (int i = 0; i < ntracks; i++) {
        fmp4_track_t *t = &m->tracks[i];
        t->p = tracks[i];
        if (tracks[i].codec != MS_CODEC_H264 && tracks[i].codec != MS_CODEC_H265 &&
            tracks[i].codec != MS_CODEC_AAC)
            continue;
        t->timescale = tracks[i].clock_rate;
        if (!t->timescale)
            t->timescale =
                tracks[i].kind == MS_TRACK_AUDIO ? (uint32_t)tracks[i].sample_rate : 90000;
        if (!t->timescale)
            continue;
        t->carried = 1;
        t->id = m->next_id++;
    }
    if (m->next_id == 1) {
        free(m);
        return NULL;
    }
    return m;
}

void ms_fmp4_free(ms_fmp4_t *m)
{
    free(m);
}

int ms_fmp4_carries(const ms_fmp4_t *m, int track)
{
    return track >= 0 && track < m->ntracks && m->tracks[track].carried;
}

uint32_t ms_fmp4_track_id(const ms_fmp4_t *m, int track)
{
    return ms_fmp4_carries(m, track) ? m->tracks[track].id : 0;
}

uint32_t ms_fmp4_timescale(const ms_fmp4_t *m, int track)
{
    return ms_fmp4_carries(m, track) ? m->tracks[track].timescale : 0;
}

static void put_ftyp(ms_buf_t *b)
{
    size_t o = ms_mp4_box_open(b, "ftyp");
    ms_buf_append(b, "iso6", 4); /* major_brand */
    ms_buf_be32(b, 0);           /* minor_version */
    ms_buf_append(b, "iso6cmfcisommp41", 16);
    ms_mp4_box_close(b, o);
}

void ms_fmp4_write_styp(ms_buf_t *b)
{
    size_t o = ms_mp4_box_open(b, "styp");
    ms_buf_append(b, "msdh", 4);
    ms_buf_be32(b, 0);
    ms_buf_append(b, "msdhmsixcmfs", 12);
    ms_mp4_box_close(b, o);
}

static void put_mvhd(ms_buf_t *b, uint32_t next_id)
{
    size_t o = ms_mp4_fullbox_open(b, "mvhd", 0, 0);
    ms_buf_be32(b, 0);          /* creation_time */
    ms_buf_be32(b, 0);          /* modification_time */
    ms_buf_be32(b, 1000);       /* timescale */
    ms_buf_be32(b, 0);          /* duration: fragmented */
    ms_buf_be32(b, 0x00010000); /* rate 1.0 */
    ms_buf_be16(b, 0x0100);     /* volume 1.0 */
    ms_buf_fill(b, 0, 10);      /* reserved */
    ms_mp4_put_matrix(b);
    ms_buf_fill(b, 0, 24); /* pre_defined */
    ms_buf_be32(b, next_id);
    ms_mp4_box_close(b, o);
}

/* Video dimensions: params when set, else the SPS. */
static void video_size(const ms_codec_params_t *p, int *w, int *h)
{
    *w = p->width;
    *h = p->height;
    if (*w > 0 && *h > 0)
        return;
    if (p->codec == MS_CODEC_H264) {
        ms_h264_sps_t s;
        if (ms_h264_parse_sps(p->sps, p->sps_len, &s) == 0) {
            *w = s.width;
            *h = s.height;
        }
    } else {
        ms_h265_sps_t s;
        if (ms_h265_parse_sps(p->sps, p->sps_len, &s) == 0) {
            *w = s.width;
            *h = s.height;
        }
    }
    if (*w < 0 || *w > 0xFFFF)
        *w = 0;
    if (*h < 0 || *h > 0xFFFF)
        *h = 0;
}

static void put_tkhd(ms_buf_t *b, const fmp4_track_t *t)
{
    size_t o = ms_mp4_fullbox_open(b, "tkhd", 0, 0x000003); /* enabled, in movie */
    ms_buf_be32(b, 0);
    ms_buf_be32(b, 0);
    ms_buf_be32(b, t->id);
    ms_buf_be32(b, 0); /* reserved */
    ms_buf_be32(b, 0); /* duration */
    ms_buf_fill(b, 0, 8);
    ms_buf_be16(b, 0); /* layer */
    ms_buf_be16(b, 0); /* alternate_group */
    ms_buf_be16(b, t->p.kind == MS_TRACK_AUDIO ? 0x0100 : 0);
    ms_buf_be16(b, 0);
    ms_mp4_put_matrix(b);
    int w = 0, h = 0;
    if (t->p.kind == MS_TRACK_VIDEO)
        video_size(&t->p, &w, &h);
    ms_buf_be32(b, (uint32_t)w << 16);
    ms_buf_be32(b, (uint32_t)h << 16);
    ms_mp4_box_close(b, o);
}

static void put_mdhd(ms_buf_t *b, const fmp4_track_t *t)
{
    size_t o = ms_mp4_fullbox_open(b, "mdhd", 0, 0);
    ms_buf_be32(b, 0);
    ms_buf_be32(b, 0);
    ms_buf_be32(b, t->timescale);
    ms_buf_be32(b, 0);
    ms_buf_be16(b, 0x55C4); /* language "und" (ISO-639-2/T packed) */
    ms_buf_be16(b, 0);
    ms_mp4_box_close(b, o);
}

static void put_hdlr(ms_buf_t *b, int audio)
{
    size_t o = ms_mp4_fullbox_open(b, "hdlr", 0, 0);
    ms_buf_be32(b, 0);
    ms_buf_append(b, audio ? "soun" : "vide", 4);
    ms_buf_fill(b, 0, 12);
    const char *name = audio ? "SoundHandler" : "VideoHandler";
    ms_buf_append(b, name, strlen(name) + 1);
    ms_mp4_box_close(b, o);
}

static int put_video_entry(ms_buf_t *b, const fmp4_track_t *t)
{
    const ms_codec_params_t *p = &t->p;
    int h265 = p->codec == MS_CODEC_H265;
    uint8_t rec[4 * MS_PARAM_SET_MAX + 64];
    size_t n;
    if (!p->sps_len || !p->pps_len || (h265 && !p->vps_len))
        return -EINVAL;
    if (h265)
        n = ms_h265_hvcc(p->vps, p->vps_len, p->sps, p->sps_len, p->pps, p->pps_len, rec,
                         sizeof rec);
    else
        n = ms_h264_avcc(p->sps, p->sps_len, p->pps, p->pps_len, rec, sizeof rec);
    if (!n)
        return -EINVAL;
    int w, h;
    video_size(p, &w, &h);
    /* VisualSampleEntry (14496-12 12.1.3) */
    size_t o = ms_mp4_box_open(b, h265 ? "hvc1" : "avc1");
    ms_buf_fill(b, 0, 6);
    ms_buf_be16(b, 1); /* data_reference_index */
    ms_buf_fill(b, 0, 16);
    ms_buf_be16(b, (uint16_t)w);
    ms_buf_be16(b, (uint16_t)h);
    ms_buf_be32(b, 0x00480000); /* 72 dpi */
    ms_buf_be32(b, 0x00480000);
    ms_buf_be32(b, 0);
    ms_buf_be16(b, 1);     /* frame_count */
    ms_buf_fill(b, 0, 32); /* compressorname */
    ms_buf_be16(b, 0x0018);
    ms_buf_be16(b, 0xFFFF);
    size_t c = ms_mp4_box_open(b, h265 ? "hvcC" : "avcC");
    ms_buf_append(b, rec, n);
    ms_mp4_box_close(b, c);
    ms_mp4_box_close(b, o);
    return 0;
}

/* ES_Descriptor (ISO/IEC 14496-1 7.2.6.5) with the AudioSpecificConfig as
 * DecoderSpecificInfo; every length fits the 1-byte form. */
static int put_audio_entry(ms_buf_t *b, const fmp4_track_t *t)
{
    const ms_codec_params_t *p = &t->p;
    if (!p->asc_len || p->asc_len > 64)
        return -EINVAL;
    size_t o = ms_mp4_box_open(b, "mp4a");
    ms_buf_fill(b, 0, 6);
    ms_buf_be16(b, 1);
    ms_buf_fill(b, 0, 8);
    ms_buf_be16(b, (uint16_t)(p->channels > 0 ? p->channels : 2));
    ms_buf_be16(b, 16); /* samplesize */
    ms_buf_be32(b, 0);
    uint32_t sr = (uint32_t)(p->sample_rate > 0 ? p->sample_rate : (int)t->timescale);
    ms_buf_be32(b, sr > 0xFFFF ? 0 : sr << 16);
    size_t e = ms_mp4_fullbox_open(b, "esds", 0, 0);
    uint8_t dsi = (uint8_t)p->asc_len;
    uint8_t dcd = (uint8_t)(13 + 2 + dsi);
    uint8_t esd = (uint8_t)(3 + 2 + dcd + 3);
    ms_buf_u8(b, 0x03); /* ES_DescrTag */
    ms_buf_u8(b, esd);
    ms_buf_be16(b, (uint16_t)t->id); /* ES_ID */
    ms_buf_u8(b, 0);                 /* flags */
    ms_buf_u8(b, 0x04);              /* DecoderConfigDescrTag */
    ms_buf_u8(b, dcd);
    ms_buf_u8(b, 0x40); /* objectTypeIndication: Audio ISO/IEC 14496-3 */
    ms_buf_u8(b, 0x15); /* streamType audio (5) << 2 | upStream 0 | reserved 1 */
    ms_buf_be24(b, 0);  /* bufferSizeDB */
    ms_buf_be32(b, 0);  /* maxBitrate */
    ms_buf_be32(b, 0);  /* avgBitrate */
    ms_buf_u8(b, 0x05); /* DecSpecificInfoTag */
    ms_buf_u8(b, dsi);
    ms_buf_append(b, p->asc, p->asc_len);
    ms_buf_u8(b, 0x06); /* SLConfigDescrTag */
    ms_buf_u8(b, 1);
    ms_buf_u8(b, 0x02); /* predefined: MP4 */
    ms_mp4_box_close(b, e);
    ms_mp4_box_close(b, o);
    return 0;
}

static int put_trak(ms_buf_t *b, const fmp4_track_t *t)
{
    int audio = t->p.kind == MS_TRACK_AUDIO;
    size_t trak = ms_mp4_box_open(b, "trak");
    put_tkhd(b, t);
    size_t mdia = ms_mp4_box_open(b, "mdia");
    put_mdhd(b, t);
    put_hdlr(b, audio);
    size_t minf = ms_mp4_box_open(b, "minf");
    if (audio) {
        size_t o = ms_mp4_fullbox_open(b, "smhd", 0, 0);
        ms_buf_be32(b, 0);
        ms_mp4_box_close(b, o);
    } else {
        size_t o = ms_mp4_fullbox_open(b, "vmhd", 0, 1);
        ms_buf_fill(b, 0, 8);
        ms_mp4_box_close(b, o);
    }
    size_t dinf = ms_mp4_box_open(b, "dinf");
    size_t dref = ms_mp4_fullbox_open(b, "dref", 0, 0);
    ms_buf_be32(b, 1);
    size_t url = ms_mp4_fullbox_open(b, "url ", 0, 1); /* self-contained */
    ms_mp4_box_close(b, url);
    ms_mp4_box_close(b, dref);
    ms_mp4_box_close(b, dinf);
    size_t stbl = ms_mp4_box_open(b, "stbl");
    size_t stsd = ms_mp4_fullbox_open(b, "stsd", 0, 0);
    ms_buf_be32(b, 1);
    int rc = audio ? put_audio_entry(b, t) : put_video_entry(b, t);
    if (rc < 0)
        return rc;
    ms_mp4_box_close(b, stsd);
    static const char *empty[] = {"stts", "stsc", "stco"};
    for (int i = 0; i < 3; i++) {
        size_t o = ms_mp4_fullbox_open(b, empty[i], 0, 0);
        ms_buf_be32(b, 0);
        ms_mp4_box_close(b, o);
    }
    size_t stsz = ms_mp4_fullbox_open(b, "stsz", 0, 0);
    ms_buf_be32(b, 0); /* sample_size */
    ms_buf_be32(b, 0); /* sample_count */
    ms_mp4_box_close(b, stsz);
    ms_mp4_box_close(b, stbl);
    ms_mp4_box_close(b, minf);
    ms_mp4_box_close(b, mdia);
    ms_mp4_box_close(b, trak);
    return 0;
}

int ms_fmp4_write_init(const ms_fmp4_t *m, ms_buf_t *out)
{
    size_t start = out->len;
    put_ftyp(out);
    size_t moov = ms_mp4_box_open(out, "moov");
    put_mvhd(out, m->next_id);
    for (int i = 0; i < m->ntracks; i++) {
        if (!m->tracks[i].carried)
            continue;
        int rc = put_trak(out, &m->tracks[i]);
        if (rc < 0) {
            out->len = start;
            return rc;
        }
    }
    size_t mvex = ms_mp4_box_open(out, "mvex");
    for (int i = 0; i < m->ntracks; i++) {
        if (!m->tracks[i].carried)
            continue;
        size_t o = ms_mp4_fullbox_open(out, "trex", 0, 0);
        ms_buf_be32(out, m->tracks[i].id);
        ms_buf_be32(out, 1); /* default_sample_description_index */
        ms_buf_be32(out, 0);
        ms_buf_be32(out, 0);
        ms_buf_be32(out, 0);
        ms_mp4_box_close(out, o);
    }
    ms_mp4_box_close(out, mvex);
    ms_mp4_box_close(out, moov);
    return out->err ? -ENOMEM : 0;
}

/* sample_flags (8.8.3.1): sync samples depend on nothing (2); others
 * depend on others (1) and are non-sync. */
#define FLAGS_SYNC     0x02000000u
#define FLAGS_NON_SYNC 0x01010000u

size_t ms_fmp4_fragment_size(const ms_fmp4_t *m, const ms_fmp4_run_t *runs, int nruns)
{
    size_t n = 8 + 16;            /* moof, mfhd */
    size_t samples = 0, data = 8; /* mdat header */
    for (int r = 0; r < nruns; r++) {
        if (!runs[r].nsamples)
            continue;
        if (!ms_fmp4_carries(m, runs[r].track))
            return 0;
        /* traf, tfhd (track_ID), tfdt v1, trun v1 (count, data_offset, 16
         * bytes per sample) */
        n += 8 + 16 + 20 + 20 + 16 * runs[r].nsamples;
        samples += runs[r].nsamples;
        for (size_t i = 0; i < runs[r].nsamples; i++)
            data += runs[r].samples[i].frame->size;
    }
    return samples ? n + data : 0;
}

int ms_fmp4_write_fragment(const ms_fmp4_t *m, uint32_t seq, const ms_fmp4_run_t *runs, int nruns,
                           ms_buf_t *out)
{
    size_t total = 0;
    for (int r = 0; r < nruns; r++) {
        if (runs[r].nsamples && !ms_fmp4_carries(m, runs[r].track))
            return -EINVAL;
        total += runs[r].nsamples;
    }
    if (!total)
        return -EINVAL;
    size_t data_off_pos[MS_MAX_TRACKS * 4];
    if (nruns > (int)(sizeof data_off_pos / sizeof data_off_pos[0]))
        return -EINVAL;

    size_t moof = ms_mp4_box_open(out, "moof");
    size_t o = ms_mp4_fullbox_open(out, "mfhd", 0, 0);
    ms_buf_be32(out, seq);
    ms_mp4_box_close(out, o);
    for (int r = 0; r < nruns; r++) {
        const ms_fmp4_run_t *run = &runs[r];
        if (!run->nsamples)
            continue;
        const fmp4_track_t *t = &m->tracks[run->track];
        size_t traf = ms_mp4_box_open(out, "traf");
        o = ms_mp4_fullbox_open(out, "tfhd", 0, 0x020000); /* default-base-is-moof */
        ms_buf_be32(out, t->id);
        ms_mp4_box_close(out, o);
        o = ms_mp4_fullbox_open(out, "tfdt", 1, 0);
        ms_buf_be64(out, run->base_dts);
        ms_mp4_box_close(out, o);
        /* data-offset, duration, size, flags, composition offset present. */
        o = ms_mp4_fullbox_open(out, "trun", 1, 0x000F01);
        ms_buf_be32(out, (uint32_t)run->nsamples);
        data_off_pos[r] = out->len;
        ms_buf_be32(out, 0);
        int audio = t->p.kind == MS_TRACK_AUDIO;
        for (size_t i = 0; i < run->nsamples; i++) {
            const ms_frame_t *f = run->samples[i].frame;
            ms_buf_be32(out, run->samples[i].duration);
            ms_buf_be32(out, f->size);
            ms_buf_be32(out, (audio || (f->flags & MS_FRAME_KEY)) ? FLAGS_SYNC : FLAGS_NON_SYNC);
            int64_t cto = f->pts - f->dts;
            if (cto > INT32_MAX || cto < INT32_MIN)
                cto = 0;
            ms_buf_be32(out, (uint32_t)(int32_t)cto);
        }
        ms_mp4_box_close(out, o);
        ms_mp4_box_close(out, traf);
    }
    ms_mp4_box_close(out, moof);
    if (out->err)
        return -ENOMEM;
    size_t mdat = ms_mp4_box_open(out, "mdat");
    for (int r = 0; r < nruns; r++) {
        if (!runs[r].nsamples)
            continue;
        ms_buf_put_be32_at(out, data_off_pos[r], (uint32_t)(out->len - moof));
        for (size_t i = 0; i < runs[r].nsamples; i++) {
            const ms_frame_t *f = runs[r].samples[i].frame;
            ms_buf_append(out, f->data, f->size);
        }
    }
    ms_mp4_box_close(out, mdat);
    return out->err ? -ENOMEM : 0;
}

uint32_t ms_fmp4_sample_duration(int64_t dts, int64_t next_dts, uint32_t last, uint32_t rate,
                                 ms_codec_t codec)
{
    if (!rate)
        rate = 90000;
    int64_t max = (int64_t)MS_FMP4_MAX_SAMPLE_S * rate;
    if (next_dts >= 0 && next_dts > dts && next_dts - dts <= max)
        return (uint32_t)(next_dts - dts);
    if (last > 0 && last <= max)
        return last;
    if (codec == MS_CODEC_AAC)
        return 1024;
    if (ms_codec_kind(codec) == MS_TRACK_AUDIO)
        return rate / 50 ? rate / 50 : 1;
    return rate / 25 ? rate / 25 : 1;
}
