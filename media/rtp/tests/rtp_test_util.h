/* Test helpers: load the real elementary streams of tests/data, split them
 * into access units, packetize them as RTP (RFC 6184 / RFC 7798 / RFC 3640)
 * and collect the receiver's output. Included by the RTP unit tests only. */
#ifndef MS_RTP_TEST_UTIL_H
#define MS_RTP_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "media/codec/nal.h"
#include "media/rtp/receiver.h"
#include "util/buf.h"

#define T_MAX_PKTS   4096
#define T_MAX_FRAMES 512

typedef struct {
    uint8_t *data;
    size_t len;
} t_bytes_t;

typedef struct {
    t_bytes_t pkts[T_MAX_PKTS];
    size_t n;
    uint16_t seq;
    uint32_t ssrc;
    int pt;
} t_pkts_t;

typedef struct {
    ms_frame_t *f[T_MAX_FRAMES];
    size_t n;
    ms_codec_params_t params;
    int params_calls;
} t_out_t;

static inline uint8_t *t_load(const char *name, size_t *len)
{
    const char *dir = getenv("MS_TEST_DATA");
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir ? dir : "tests/data", name);
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    uint8_t *buf = malloc(1 << 20);
    *len = fread(buf, 1, 1 << 20, fp);
    fclose(fp);
    return buf;
}

static inline void t_on_frame(void *ud, ms_frame_t *f)
{
    t_out_t *o = ud;
    if (o->n < T_MAX_FRAMES)
        o->f[o->n++] = f;
    else
        ms_frame_unref(f);
}

static inline void t_on_params(void *ud, const ms_codec_params_t *p)
{
    t_out_t *o = ud;
    o->params = *p;
    o->params_calls++;
}

static inline void t_out_free(t_out_t *o)
{
    for (size_t i = 0; i < o->n; i++)
        ms_frame_unref(o->f[i]);
    o->n = 0;
}

static inline void t_pkts_free(t_pkts_t *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->pkts[i].data);
    p->n = 0;
}

/* Appends one RTP packet (RFC 3550 5.1 header, no CSRC/extension). */
static inline void t_rtp(t_pkts_t *p, uint32_t ts, int marker, const uint8_t *a, size_t al,
                         const uint8_t *b, size_t bl)
{
    if (p->n >= T_MAX_PKTS)
        abort();
    uint8_t *d = malloc(12 + al + bl);
    d[0] = 0x80;
    d[1] = (uint8_t)((marker ? 0x80 : 0) | p->pt);
    d[2] = (uint8_t)(p->seq >> 8);
    d[3] = (uint8_t)p->seq;
    ms_wr_be32(d + 4, ts);
    ms_wr_be32(d + 8, p->ssrc);
    if (al)
        memcpy(d + 12, a, al);
    if (bl)
        memcpy(d + 12 + al, b, bl);
    p->pkts[p->n].data = d;
    p->pkts[p->n].len = 12 + al + bl;
    p->n++;
    p->seq++;
}

/* One access unit = a list of NALs (pointers into the file). */
typedef struct {
    const uint8_t *nal[16];
    size_t len[16];
    size_t n;
    int key;
} t_au_t;

static inline int t_is_vcl(int hevc, const uint8_t *n)
{
    return hevc ? ((n[0] >> 1) & 0x3f) < 32 : ((n[0] & 0x1f) >= 1 && (n[0] & 0x1f) <= 5);
}

/* Splits an Annex-B stream into access units: a non-VCL NAL after a VCL NAL,
 * or a VCL NAL that starts a picture, begins a new AU. */
static inline size_t t_split_aus(int hevc, const uint8_t *buf, size_t len, t_au_t *aus, size_t max)
{
    size_t off = 0, n = 0;
    const uint8_t *nal;
    size_t nl;
    int prev_vcl = 0;
    while (ms_annexb_next(buf, len, &off, &nal, &nl) == 1) {
        int vcl = t_is_vcl(hevc, nal);
        int first_slice = vcl && (hevc ? (nal[2] & 0x80) : (nal[1] & 0x80));
        if (n == 0 || (prev_vcl && (!vcl || first_slice))) {
            if (n == max)
                break;
            memset(&aus[n], 0, sizeof aus[n]);
            n++;
        }
        t_au_t *a = &aus[n - 1];
        if (a->n < 16) {
            a->nal[a->n] = nal;
            a->len[a->n] = nl;
            a->n++;
        }
        int t = hevc ? (nal[0] >> 1) & 0x3f : nal[0] & 0x1f;
        if (hevc ? (t >= 16 && t <= 23) : t == 5)
            a->key = 1;
        prev_vcl = vcl;
    }
    return n;
}

/* Expected frame payload: 4-byte length-prefixed NALs, optionally without
 * parameter sets (when skip_ps) and without AUDs. */
static inline void t_au_payload(int hevc, const t_au_t *a, ms_buf_t *o)
{
    ms_buf_reset(o);
    for (size_t i = 0; i < a->n; i++) {
        ms_buf_be32(o, (uint32_t)a->len[i]);
        ms_buf_append(o, a->nal[i], a->len[i]);
    }
    (void)hevc;
}

/* Packetizes one AU: NALs up to mtu go as single NAL packets (or are
 * aggregated into STAP-A/AP when aggregate), larger ones as FU-A/FU.
 * skip_ps drops parameter sets (they then come from sprop). */
static inline void t_packetize(int hevc, t_pkts_t *p, const t_au_t *a, uint32_t ts, size_t mtu,
                               int aggregate, int skip_ps)
{
    uint8_t agg[4096];
    size_t agg_len = 0, agg_count = 0;
    for (size_t i = 0; i < a->n; i++) {
        const uint8_t *n = a->nal[i];
        size_t l = a->len[i];
        int t = hevc ? (n[0] >> 1) & 0x3f : n[0] & 0x1f;
        int ps = hevc ? (t >= 32 && t <= 34) : (t == 7 || t == 8);
        if (skip_ps && ps)
            continue;
        int last = i + 1 == a->n;
        if (aggregate && l + 2 < mtu / 2 && !last) {
            if (agg_len == 0) {
                if (hevc) {
                    agg[0] = 48 << 1;
                    agg[1] = 1;
                    agg_len = 2;
                } else {
                    agg[0] = 24;
                    agg_len = 1;
                }
            }
            agg[agg_len++] = (uint8_t)(l >> 8);
            agg[agg_len++] = (uint8_t)l;
            memcpy(agg + agg_len, n, l);
            agg_len += l;
            agg_count++;
            continue;
        }
        if (agg_len) {
            if (agg_count == 1 && !hevc) /* STAP-A with one NAL is fine */
                t_rtp(p, ts, 0, agg, agg_len, NULL, 0);
            else if (agg_count == 1) /* an AP needs two: send single */
                t_rtp(p, ts, 0, agg + 4, agg_len - 4, NULL, 0);
            else
                t_rtp(p, ts, 0, agg, agg_len, NULL, 0);
            agg_len = agg_count = 0;
        }
        if (l <= mtu) {
            t_rtp(p, ts, last, n, l, NULL, 0);
            continue;
        }
        size_t hl = hevc ? 2 : 1;
        size_t off = hl;
        while (off < l) {
            size_t chunk = l - off > mtu - 3 ? mtu - 3 : l - off;
            uint8_t h[3];
            int s = off == hl, e = off + chunk == l;
            if (hevc) {
                h[0] = (uint8_t)((n[0] & 0x81) | (49 << 1));
                h[1] = n[1];
                h[2] = (uint8_t)((s << 7) | (e << 6) | t);
            } else {
                h[0] = (uint8_t)((n[0] & 0xe0) | 28);
                h[1] = (uint8_t)((s << 7) | (e << 6) | t);
            }
            t_rtp(p, ts, last && e, h, hevc ? 3 : 2, n + off, chunk);
            off += chunk;
        }
    }
}

#endif
