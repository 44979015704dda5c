/* MPEG-2 Transport Stream muxer (ISO/IEC 13818-1): PSI tables (2.4.4),
 * PES packets (2.4.3.6), transport packets with adaptation fields (2.4.3.2,
 * 2.4.3.4). Carriage of AVC/HEVC (2.14, 2.17) as Annex-B byte streams with
 * an access unit delimiter, AAC as ADTS (ISO/IEC 13818-7 / 14496-3 1.A.2). */
#include "media/ts/ts.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "media/codec/aac.h"
#include "media/codec/h264.h"
#include "media/codec/h265.h"
#include "media/codec/nal.h"

#define TS_SYNC     0x47
#define TS_PAYLOAD  184
#define PTS_MASK    ((UINT64_C(1) << 33) - 1)
#define ST_AAC_ADTS 0x0F
#define ST_H264     0x1B
#define ST_H265     0x24

typedef struct {
    int carried;
    uint16_t pid;
    uint8_t stream_type;
    uint8_t stream_id;
    uint8_t cc;
    ms_codec_params_t params;
    ms_aac_config_t aac;
} ts_track_t;

struct ms_ts_mux {
    int ntracks;
    uint16_t pcr_pid;
    uint8_t cc_pat, cc_pmt;
    /* PAT and PMT packets, built once (their CRC too): a part writes them
     * with only the continuity counter patched. */
    uint8_t psi[2][MS_TS_PACKET];
    ts_track_t tracks[]; /* ntracks (each holds a copy of the params) */
};

static void build_psi(ms_ts_mux_t *m);

uint32_t ms_ts_crc32(const uint8_t *p, size_t n)
{
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        crc ^= (uint32_t)p[i] << 24;
        for (int b = 0; b < 8; b++)
            crc = (crc & 0x80000000u) ? (crc << 1) ^ 0x04C11DB7u : crc << 1;
    }
    return crc;
}

int64_t ms_ts_to_90k(int64_t t, uint32_t rate)
{
    if (rate == 0 || rate == 90000)
        return t;
    /* Split to avoid overflow for large t. */
    int64_t q = t / rate, r = t % rate;
    if (r < 0) {
        q--;
        r += rate;
    }
    return q * 90000 + (r * 90000) / rate;
}

ms_ts_mux_t *ms_ts_mux_new(const ms_codec_params_t *tracks, int ntracks)
{
    if (ntracks <= 0 || ntracks > MS_MAX_TRACKS)
        return NULL;
    ms_ts_mux_t *m = calloc(1, sizeof *m + sizeof(ts_track_t) * (size_t)ntracks);
    if (!m)
        return NULL;
    m->ntracks = ntracks;
    int ncarried = 0, nvideo = 0, naudio = 0;
    int pcr_video = -1, pcr_audio = -1;
    for (int i = 0; i < ntracks; i++) {
        ts_track_t *t = &m->tracks[i];
        t->params = tracks[i];
        switch (tracks[i].codec) {
        case MS_CODEC_H264:
            t->stream_type = ST_H264;
            t->stream_id = (uint8_t)(0xE0 + nvideo++);
            break;
        case MS_CODEC_H265:
            t->stream_type = ST_H265;
            t->stream_id = (uint8_t)(0xE0 + nvideo++);
            break;
        case MS_CODEC_AAC:
            if (ms_aac_parse_asc(tracks[i].asc, tracks[i].asc_len, &t->aac) < 0) {
                /* No usable ASC: assume AAC-LC from the declared rate. */
                t->aac.object_type = 2;
                t->aac.sample_rate = tracks[i].sample_rate;
                t->aac.sr_index = ms_aac_sr_index(tracks[i].sample_rate);
                t->aac.channels = tracks[i].channels;
                if (t->aac.sr_index < 0)
                    continue;
            }
            t->stream_type = ST_AAC_ADTS;
            t->stream_id = (uint8_t)(0xC0 + naudio++);
            break;
        default:
            continue;
        }
        t->carried = 1;
        t->pid = (uint16_t)(MS_TS_PID_ES0 + ncarried++);
        if (tracks[i].kind == MS_TRACK_VIDEO && pcr_video < 0)
            pcr_video = t->pid;
        if (tracks[i].kind == MS_TRACK_AUDIO && pcr_audio < 0)
            pcr_audio = t->pid;
    }
    if (!ncarried) {
        free(m);
        return NULL;
    }
    m->pcr_pid = (uint16_t)(pcr_video >= 0 ? pcr_video : pcr_audio);
    build_psi(m);
    return m;
}

void ms_ts_mux_free(ms_ts_mux_t *m)
{
    if (!m)
        return;
    free(m);
}

int ms_ts_mux_carries(const ms_ts_mux_t *m, int track)
{
    return track >= 0 && track < m->ntracks && m->tracks[track].carried;
}

int ms_ts_mux_pid(const ms_ts_mux_t *m, int track)
{
    return ms_ts_mux_carries(m, track) ? m->tracks[track].pid : -1;
}

/* One section (2.4.4.3 / 2.4.4.8) in one packet with pointer_field 0; the
 * continuity counter (byte 3, low nibble) is set when the packet is written. */
static void section_packet(uint8_t pkt[MS_TS_PACKET], uint16_t pid, const uint8_t *sec, size_t len)
{
    memset(pkt, 0xFF, MS_TS_PACKET);
    pkt[0] = TS_SYNC;
    pkt[1] = (uint8_t)(0x40 | (pid >> 8)); /* payload_unit_start_indicator */
    pkt[2] = (uint8_t)pid;
    pkt[3] = 0x10; /* payload only */
    pkt[4] = 0;    /* pointer_field */
    memcpy(pkt + 5, sec, len);
}

static size_t finish_section(uint8_t *s, size_t len)
{
    /* section_length counts the bytes after it, CRC included. */
    size_t sl = len - 3 + 4;
    s[1] = (uint8_t)(0xB0 | (sl >> 8));
    s[2] = (uint8_t)sl;
    uint32_t crc = ms_ts_crc32(s, len);
    ms_wr_be32(s + len, crc);
    return len + 4;
}

static void build_psi(ms_ts_mux_t *m)
{
    uint8_t s[180];
    /* program_association_section (2.4.4.3) */
    size_t n = 0;
    s[n++] = 0x00; /* table_id */
    n += 2;        /* section_length */
    s[n++] = 0x00; /* transport_stream_id */
    s[n++] = 0x01;
    s[n++] = 0xC1; /* reserved, version 0, current_next_indicator */
    s[n++] = 0x00; /* section_number */
    s[n++] = 0x00; /* last_section_number */
    s[n++] = 0x00; /* program_number 1 */
    s[n++] = 0x01;
    s[n++] = (uint8_t)(0xE0 | (MS_TS_PID_PMT >> 8));
    s[n++] = (uint8_t)(MS_TS_PID_PMT & 0xFF);
    n = finish_section(s, n);
    section_packet(m->psi[0], 0, s, n);

    /* TS_program_map_section (2.4.4.8) */
    n = 0;
    s[n++] = 0x02;
    n += 2;
    s[n++] = 0x00; /* program_number 1 */
    s[n++] = 0x01;
    s[n++] = 0xC1;
    s[n++] = 0x00;
    s[n++] = 0x00;
    s[n++] = (uint8_t)(0xE0 | (m->pcr_pid >> 8));
    s[n++] = (uint8_t)m->pcr_pid;
    s[n++] = 0xF0; /* program_info_length 0 */
    s[n++] = 0x00;
    for (int i = 0; i < m->ntracks; i++) {
        const ts_track_t *t = &m->tracks[i];
        if (!t->carried)
            continue;
        s[n++] = t->stream_type;
        s[n++] = (uint8_t)(0xE0 | (t->pid >> 8));
        s[n++] = (uint8_t)t->pid;
        s[n++] = 0xF0; /* ES_info_length 0 */
        s[n++] = 0x00;
    }
    n = finish_section(s, n);
    section_packet(m->psi[1], MS_TS_PID_PMT, s, n);
}

int ms_ts_mux_write_tables(ms_ts_mux_t *m, ms_buf_t *out)
{
    if (ms_buf_reserve(out, 2 * MS_TS_PACKET) < 0)
        return -ENOMEM;
    uint8_t *o = out->data + out->len;
    memcpy(o, m->psi[0], MS_TS_PACKET);
    o[3] = (uint8_t)(0x10 | (m->cc_pat & 0x0F));
    m->cc_pat = (uint8_t)((m->cc_pat + 1) & 0x0F);
    memcpy(o + MS_TS_PACKET, m->psi[1], MS_TS_PACKET);
    o[MS_TS_PACKET + 3] = (uint8_t)(0x10 | (m->cc_pmt & 0x0F));
    m->cc_pmt = (uint8_t)((m->cc_pmt + 1) & 0x0F);
    out->len += 2 * MS_TS_PACKET;
    return 0;
}

/* PTS/DTS field (2.4.3.7): 4-bit prefix, 33 bits with marker bits. */
static void put_ts(uint8_t *p, unsigned prefix, uint64_t t)
{
    t &= PTS_MASK;
    p[0] = (uint8_t)((prefix << 4) | ((t >> 29) & 0x0E) | 1);
    p[1] = (uint8_t)(t >> 22);
    p[2] = (uint8_t)(((t >> 14) & 0xFE) | 1);
    p[3] = (uint8_t)(t >> 7);
    p[4] = (uint8_t)(((t << 1) & 0xFE) | 1);
}

static const uint8_t START_CODE[4] = {0, 0, 0, 1};

/* The PES packet of one frame as a list of pieces (header, start codes, NAL
 * units, ADTS header, raw AAC) pointing into the frame and the track params:
 * the transport packets are filled straight from them, so the PES is never
 * assembled in a scratch buffer (no per-stream buffer as large as the largest
 * keyframe, and one copy less per byte). */
#define PIECES_STACK 64
typedef struct {
    const uint8_t *p;
    size_t len;
} piece_t;

typedef struct {
    piece_t *v;
    int n, cap;
    size_t total;
} pieces_t;

static void add_piece(pieces_t *ps, const uint8_t *p, size_t len)
{
    if (!len || ps->n >= ps->cap)
        return; /* cap is counted before filling: never reached */
    ps->v[ps->n].p = p;
    ps->v[ps->n].len = len;
    ps->n++;
    ps->total += len;
}

static void add_nal(pieces_t *ps, const uint8_t *nal, size_t len)
{
    if (!len)
        return;
    add_piece(ps, START_CODE, 4);
    add_piece(ps, nal, len);
}

/* One pass over the NAL units of a video frame: how many (AUDs included),
 * whether it carries its parameter sets, and the bytes of the elementary
 * stream video_pieces() lays out for it (AUD, parameter sets for a keyframe
 * that lacks them, its NAL units but its own AUDs, each after a 4-byte start
 * code). -EINVAL when the payload is malformed. */
static int video_scan(const ts_track_t *t, const ms_frame_t *f, int *has_ps, int *nnal,
                      size_t *es_bytes)
{
    int h265 = t->params.codec == MS_CODEC_H265;
    int t_sps = h265 ? MS_H265_NAL_SPS : MS_H264_NAL_SPS;
    int t_aud = h265 ? MS_H265_NAL_AUD : MS_H264_NAL_AUD;
    size_t off = 0, total = 4 + (h265 ? 3 : 2); /* the AUD */
    const uint8_t *nal;
    size_t nlen;
    int r;
    *has_ps = *nnal = 0;
    while ((r = ms_nal_next(f->data, f->size, &off, &nal, &nlen)) == 1) {
        if (!nlen)
            continue;
        int type = h265 ? ms_h265_nal_type(nal[0]) : ms_h264_nal_type(nal[0]);
        if (type == t_sps)
            *has_ps = 1;
        if (type != t_aud)
            total += 4 + nlen;
        (*nnal)++;
    }
    if (r < 0)
        return -EINVAL;
    if ((f->flags & MS_FRAME_KEY) && !*has_ps) {
        if (h265 && t->params.vps_len)
            total += 4 + t->params.vps_len;
        if (t->params.sps_len)
            total += 4 + t->params.sps_len;
        if (t->params.pps_len)
            total += 4 + t->params.pps_len;
    }
    *es_bytes = total;
    return 0;
}

static void add_aud(pieces_t *ps, int h265)
{
    if (h265) {
        static const uint8_t aud[3] = {0x46, 0x01, 0x50}; /* pic_type 2: any */
        add_nal(ps, aud, sizeof aud);
    } else {
        static const uint8_t aud[2] = {0x09, 0xF0}; /* primary_pic_type 7: any */
        add_nal(ps, aud, sizeof aud);
    }
}

/* Annex-B access unit: AUD first (H.264 7.4.1.2.3 / H.265 7.4.2.4.4), the
 * parameter sets for keyframes that lack them, then the frame's NAL units
 * (its own AUDs dropped), in one pass over the frame: the NAL units are laid
 * out after room for six pieces (the parameter sets); once it is known
 * which sets the frame lacks, they and the pieces before them (PES header,
 * AUD) are put right before the NAL units and ps->v starts there. ps holds
 * the PES header only. Returns 0, -EINVAL, or 1 when the pieces did not fit
 * in ps (ps unchanged: video_pieces counts first). */
static int video_pieces_fast(const ts_track_t *t, const ms_frame_t *f, pieces_t *ps)
{
    int h265 = t->params.codec == MS_CODEC_H265;
    int t_sps = h265 ? MS_H265_NAL_SPS : MS_H264_NAL_SPS;
    int t_aud = h265 ? MS_H265_NAL_AUD : MS_H264_NAL_AUD;
    int n0 = ps->n;
    size_t total0 = ps->total;
    if (n0 != 1 || ps->n + 2 + 6 > ps->cap)
        return 1;
    add_aud(ps, h265); /* pieces 1, 2 */
    ps->n += 6;        /* 3..8: room for the parameter sets */
    int has_ps = 0, r;
    size_t off = 0, nlen;
    const uint8_t *nal;
    while ((r = ms_nal_next(f->data, f->size, &off, &nal, &nlen)) == 1) {
        if (!nlen)
            continue;
        int type = h265 ? ms_h265_nal_type(nal[0]) : ms_h264_nal_type(nal[0]);
        if (type == t_sps)
            has_ps = 1;
        if (type == t_aud)
            continue;
        if (ps->n + 2 > ps->cap) {
            ps->n = n0;
            ps->total = total0;
            return 1;
        }
        add_nal(ps, nal, nlen);
    }
    if (r < 0) {
        ps->n = n0;
        ps->total = total0;
        return -EINVAL;
    }
    piece_t sets[6];
    int ns = 0;
    if ((f->flags & MS_FRAME_KEY) && !has_ps) {
        const uint8_t *set[3] = {t->params.vps, t->params.sps, t->params.pps};
        size_t len[3] = {h265 ? t->params.vps_len : 0, t->params.sps_len, t->params.pps_len};
        for (int i = 0; i < 3; i++) {
            if (!len[i])
                continue;
            sets[ns].p = START_CODE;
            sets[ns++].len = 4;
            sets[ns].p = set[i];
            sets[ns++].len = len[i];
            ps->total += 4 + len[i];
        }
    }
    /* v[0..2] (PES header, AUD) and the sets move to end at v[8] */
    int shift = 6 - ns;
    piece_t head[3] = {ps->v[0], ps->v[1], ps->v[2]};
    piece_t *v = ps->v + shift;
    v[0] = head[0];
    v[1] = head[1];
    v[2] = head[2];
    for (int i = 0; i < ns; i++)
        v[3 + i] = sets[i];
    ps->v = v;
    ps->n -= shift;
    ps->cap -= shift;
    return 0;
}

/* The same with the pieces counted first, for frames with many NAL units;
 * *heap is set when the piece array had to be allocated (the caller frees
 * it). */
static int video_pieces(const ts_track_t *t, const ms_frame_t *f, pieces_t *ps, piece_t **heap)
{
    int fast = video_pieces_fast(t, f, ps);
    if (fast <= 0)
        return fast;

    int h265 = t->params.codec == MS_CODEC_H265;
    int t_aud = h265 ? MS_H265_NAL_AUD : MS_H264_NAL_AUD;
    size_t off = 0, es_bytes;
    const uint8_t *nal;
    size_t nlen;
    int has_ps, nnal;
    if (video_scan(t, f, &has_ps, &nnal, &es_bytes) < 0)
        return -EINVAL;
    int need = ps->n + 2 * (nnal + 4);
    if (need > ps->cap) {
        piece_t *v = malloc(sizeof *v * (size_t)need);
        if (!v)
            return -ENOMEM;
        memcpy(v, ps->v, sizeof *v * (size_t)ps->n);
        ps->v = *heap = v;
        ps->cap = need;
    }
    add_aud(ps, h265);
    if ((f->flags & MS_FRAME_KEY) && !has_ps) {
        if (h265)
            add_nal(ps, t->params.vps, t->params.vps_len);
        add_nal(ps, t->params.sps, t->params.sps_len);
        add_nal(ps, t->params.pps, t->params.pps_len);
    }
    off = 0;
    while (ms_nal_next(f->data, f->size, &off, &nal, &nlen) == 1) {
        if (!nlen)
            continue;
        int type = h265 ? ms_h265_nal_type(nal[0]) : ms_h264_nal_type(nal[0]);
        if (type == t_aud)
            continue;
        add_nal(ps, nal, nlen);
    }
    return 0;
}

/* Number of transport packets for a PES of n bytes whose first packet
 * carries an adaptation field of af0 bytes. */
static size_t ts_packets(size_t n, size_t af0)
{
    size_t room0 = TS_PAYLOAD - af0;
    return 1 + (n > room0 ? (n - room0 + TS_PAYLOAD - 1) / TS_PAYLOAD : 0);
}

/* Reading position in a piece list. */
typedef struct {
    const piece_t *v;
    const uint8_t *p; /* next byte of the current piece */
    size_t left;      /* bytes left in the current piece */
} cursor_t;

static void cursor_next(cursor_t *c)
{
    c->v++;
    c->p = c->v->p;
    c->left = c->v->len;
}

/* Copies want bytes from the cursor to d (the pieces hold at least that). */
static void gather(cursor_t *c, uint8_t *d, size_t want)
{
    while (want) {
        if (!c->left)
            cursor_next(c);
        size_t take = c->left < want ? c->left : want;
        memcpy(d, c->p, take);
        d += take;
        want -= take;
        c->p += take;
        c->left -= take;
    }
}

/* Splits one PES (its pieces) into transport packets (2.4.3.2), written
 * straight into out. The first packet carries the PCR and
 * random_access_indicator when asked (2.4.3.4); the last one is padded with
 * adaptation field stuffing. The packets in between (payload only, 184
 * bytes) take the fast path: a fixed header and one copy from the piece. */
static int packetize(ms_buf_t *out, uint16_t pid, uint8_t *cc, const pieces_t *ps, int64_t pcr,
                     int rai)
{
    size_t n = ps->total;
    size_t af0 = pcr >= 0 ? 8 : rai ? 2 : 0;
    size_t npk = ts_packets(n, af0);
    if (ms_buf_reserve(out, npk * MS_TS_PACKET) < 0)
        return -ENOMEM;
    uint8_t *o = out->data + out->len;
    size_t pos = 0;
    cursor_t cur = {ps->v, ps->v[0].p, ps->v[0].len};
    uint8_t c = *cc;
    const uint8_t pid_hi = (uint8_t)(pid >> 8), pid_lo = (uint8_t)pid;
    for (size_t k = 0; k < npk; k++) {
        uint8_t *pkt = o + k * MS_TS_PACKET;
        if (k > 0 && n - pos >= TS_PAYLOAD) {
            pkt[0] = TS_SYNC;
            pkt[1] = pid_hi;
            pkt[2] = pid_lo;
            pkt[3] = (uint8_t)(0x10 | c);
            c = (uint8_t)((c + 1) & 0x0F);
            if (cur.left >= TS_PAYLOAD) {
                memcpy(pkt + 4, cur.p, TS_PAYLOAD);
                cur.p += TS_PAYLOAD;
                cur.left -= TS_PAYLOAD;
            } else {
                gather(&cur, pkt + 4, TS_PAYLOAD);
            }
            pos += TS_PAYLOAD;
            continue;
        }
        uint8_t *af = pkt + 4;
        size_t aflen = 0;
        if (k == 0 && af0) {
            af[1] = (uint8_t)((rai ? 0x40 : 0) | (pcr >= 0 ? 0x10 : 0));
            aflen = 2;
            if (pcr >= 0) {
                uint64_t base = (uint64_t)pcr & PTS_MASK;
                af[2] = (uint8_t)(base >> 25);
                af[3] = (uint8_t)(base >> 17);
                af[4] = (uint8_t)(base >> 9);
                af[5] = (uint8_t)(base >> 1);
                af[6] = (uint8_t)(((base & 1) << 7) | 0x7E); /* extension 0 */
                af[7] = 0;
                aflen = 8;
            }
        }
        size_t room = TS_PAYLOAD - aflen;
        size_t rem = n - pos;
        if (rem < room) {
            size_t stuff = room - rem;
            if (aflen == 0) {
                if (stuff >= 2) {
                    af[1] = 0; /* no flags */
                    memset(af + 2, 0xFF, stuff - 2);
                }
                aflen = stuff;
            } else {
                memset(af + aflen, 0xFF, stuff);
                aflen += stuff;
            }
            room = rem;
        }
        if (aflen)
            af[0] = (uint8_t)(aflen - 1);
        pkt[0] = TS_SYNC;
        pkt[1] = (uint8_t)((k == 0 ? 0x40 : 0) | pid_hi);
        pkt[2] = pid_lo;
        pkt[3] = (uint8_t)((aflen ? 0x30 : 0x10) | c);
        c = (uint8_t)((c + 1) & 0x0F);
        gather(&cur, af + aflen, room);
        pos += room;
    }
    *cc = c;
    out->len += npk * MS_TS_PACKET;
    return 0;
}

static uint32_t track_rate(const ts_track_t *t)
{
    return t->params.clock_rate               ? t->params.clock_rate
           : t->params.kind == MS_TRACK_AUDIO ? (uint32_t)t->params.sample_rate
                                              : 90000;
}

/* Bytes of the elementary stream data video_pieces() lays out for f, or
 * -1 when the payload is malformed. */
static long video_es_size(const ts_track_t *t, const ms_frame_t *f)
{
    int has_ps, nnal;
    size_t bytes;
    return video_scan(t, f, &has_ps, &nnal, &bytes) < 0 ? -1 : (long)bytes;
}

size_t ms_ts_mux_frame_size(const ms_ts_mux_t *m, const ms_frame_t *f)
{
    if (!ms_ts_mux_carries(m, f->track))
        return 0;
    const ts_track_t *t = &m->tracks[f->track];
    uint32_t rate = track_rate(t);
    int with_dts = ms_ts_to_90k(f->pts, rate) != ms_ts_to_90k(f->dts, rate);
    size_t n = 9 + 5 + (with_dts ? 5 : 0); /* PES header */
    if (t->stream_type == ST_AAC_ADTS) {
        uint8_t adts[7];
        if (ms_aac_adts_header(&t->aac, f->size, adts) < 0)
            return 0;
        n += 7 + f->size;
    } else {
        long es = video_es_size(t, f);
        if (es < 0)
            return 0;
        n += (size_t)es;
    }
    int is_video = t->params.kind == MS_TRACK_VIDEO;
    int pcr = t->pid == m->pcr_pid;
    int rai = (f->flags & MS_FRAME_KEY) && (is_video || pcr);
    return ts_packets(n, pcr ? 8 : rai ? 2 : 0) * MS_TS_PACKET;
}

int ms_ts_mux_write_frame(ms_ts_mux_t *m, const ms_frame_t *f, int64_t offset_90k, ms_buf_t *out)
{
    if (!ms_ts_mux_carries(m, f->track))
        return -EINVAL;
    if (out->err)
        return -ENOMEM;
    ts_track_t *t = &m->tracks[f->track];
    uint32_t rate = track_rate(t);
    int64_t pts = ms_ts_to_90k(f->pts, rate) + offset_90k;
    int64_t dts = ms_ts_to_90k(f->dts, rate) + offset_90k;
    int with_dts = pts != dts;

    /* PES header (2.4.3.6), then for AAC the ADTS header; PES_packet_length
     * is filled in once the pieces are known. */
    uint8_t hdr[32];
    size_t hl = 0;
    hdr[hl++] = 0x00;
    hdr[hl++] = 0x00;
    hdr[hl++] = 0x01;
    hdr[hl++] = t->stream_id;
    hdr[hl++] = 0; /* PES_packet_length */
    hdr[hl++] = 0;
    hdr[hl++] = 0x84; /* '10', data_alignment_indicator */
    hdr[hl++] = with_dts ? 0xC0 : 0x80;
    hdr[hl++] = with_dts ? 10 : 5;
    put_ts(hdr + hl, with_dts ? 3 : 2, (uint64_t)pts);
    hl += 5;
    if (with_dts) {
        put_ts(hdr + hl, 1, (uint64_t)dts);
        hl += 5;
    }

    piece_t stack[PIECES_STACK];
    piece_t *heap = NULL;
    pieces_t ps = {stack, 0, PIECES_STACK, 0};
    add_piece(&ps, hdr, hl);
    if (t->stream_type == ST_AAC_ADTS) {
        if (ms_aac_adts_header(&t->aac, f->size, hdr + hl) < 0)
            return -EINVAL;
        add_piece(&ps, hdr + hl, 7);
        add_piece(&ps, f->data, f->size);
    } else {
        int r = video_pieces(t, f, &ps, &heap);
        if (r < 0)
            return r;
    }
    size_t pes_len = ps.total - 6;
    if (pes_len <= 0xFFFF) {
        hdr[4] = (uint8_t)(pes_len >> 8);
        hdr[5] = (uint8_t)pes_len;
    } /* else 0: unbounded, allowed for video (2.4.3.7) */

    int is_video = t->params.kind == MS_TRACK_VIDEO;
    /* PCR base = DTS of the frame (extension 0): the T-STD delay is left to
     * the player, which is what HLS clients expect. */
    int64_t pcr = t->pid == m->pcr_pid ? (int64_t)((uint64_t)dts & PTS_MASK) : -1;
    int rai = (f->flags & MS_FRAME_KEY) && (is_video || t->pid == m->pcr_pid);
    int r = packetize(out, t->pid, &t->cc, &ps, pcr, rai);
    free(heap);
    return r;
}
