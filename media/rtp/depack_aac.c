/* MPEG-4 AAC RTP depacketizer, RFC 3640 (mode AAC-hbr and the generic AU
 * header syntax): AU-headers-length and AU headers (3.2.1), the auxiliary
 * section (3.2.2), several AUs per packet (3.2.3) and AUs fragmented over
 * several packets (3.2.3, marker bit on the last fragment). The AU header
 * field lengths come from the fmtp (4.1). AU-Index values give the AU
 * serial numbers; each AU lasts constantDuration (default 1024) samples. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "media/codec/aac.h"
#include "media/codec/nal.h"
#include "media/rtp/rtp_internal.h"

#define MAX_AUS 256

typedef struct {
    int size_len, index_len, delta_len, cts_len, dts_len, rap, state_len, aux_len;
    uint32_t dur;
    ms_buf_t frag;
    uint32_t frag_size, frag_ts;
    int frag_active;
} aac_t;

static int init(ms_rtp_receiver_t *r, void *st, const char *fmtp, char *err, size_t errlen)
{
    aac_t *a = st;
    a->size_len = (int)ms_rtp_fmtp_int(fmtp, "sizelength", 0);
    a->index_len = (int)ms_rtp_fmtp_int(fmtp, "indexlength", 0);
    a->delta_len = (int)ms_rtp_fmtp_int(fmtp, "indexdeltalength", 0);
    a->cts_len = (int)ms_rtp_fmtp_int(fmtp, "ctsdeltalength", 0);
    a->dts_len = (int)ms_rtp_fmtp_int(fmtp, "dtsdeltalength", 0);
    a->rap = ms_rtp_fmtp_int(fmtp, "randomaccessindication", 0) != 0;
    a->state_len = (int)ms_rtp_fmtp_int(fmtp, "streamstateindication", 0);
    a->aux_len = (int)ms_rtp_fmtp_int(fmtp, "auxiliarydatasizelength", 0);
    a->dur = (uint32_t)ms_rtp_fmtp_int(fmtp, "constantduration", 1024);
    if (a->size_len < 1 || a->size_len > 32 || a->index_len > 32 || a->delta_len > 32 ||
        a->cts_len > 32 || a->dts_len > 32 || a->state_len > 32 || a->aux_len > 32 || a->dur == 0 ||
        a->dur > 100000) {
        if (err && errlen)
            snprintf(err, errlen, "AAC fmtp: missing or invalid sizelength/indexlength");
        return -EINVAL;
    }
    char hex[256];
    if (ms_rtp_fmtp_get(fmtp, "config", hex, sizeof hex) > 0) {
        ms_codec_params_t *p = ms_rtp_receiver_params_mut(r);
        ms_aac_config_t c;
        int n = ms_rtp_hex_decode(hex, p->asc, sizeof p->asc);
        if (n < 2 || ms_aac_parse_asc(p->asc, (size_t)n, &c) != 0) {
            if (err && errlen)
                snprintf(err, errlen, "AAC fmtp: invalid config=");
            return -EINVAL;
        }
        p->asc_len = (uint16_t)n;
        p->sample_rate = c.sample_rate;
        p->channels = c.channels;
    }
    ms_rtp_receiver_params_changed(r);
    return 0;
}

static void drop_frag(ms_rtp_receiver_t *r, aac_t *a)
{
    if (a->frag_active)
        ms_rtp_receiver_emit(r, NULL, 0, a->frag_ts, 1, 1);
    a->frag_active = 0;
    ms_buf_reset(&a->frag);
}

static void packet(ms_rtp_receiver_t *r, void *st, const ms_rtp_packet_t *p, uint64_t lost)
{
    aac_t *a = st;
    const uint8_t *d = p->payload;
    size_t n = p->payload_len;
    if (lost)
        drop_frag(r, a);
    if (n < 2)
        goto bad;
    size_t hdr_bits = ms_rd_be16(d);
    size_t hdr_bytes = (hdr_bits + 7) / 8;
    if (hdr_bits == 0 || 2 + hdr_bytes > n)
        goto bad;
    ms_bits_t b;
    ms_bits_init(&b, d + 2, hdr_bytes);
    uint32_t sizes[MAX_AUS];
    uint32_t serial[MAX_AUS];
    size_t count = 0;
    uint32_t cur = 0;
    while (b.pos < hdr_bits && count < MAX_AUS) {
        uint32_t size = ms_bits_read(&b, a->size_len);
        uint32_t idx = ms_bits_read(&b, count == 0 ? a->index_len : a->delta_len);
        if (a->cts_len && ms_bits_read(&b, 1)) /* CTS-flag, CTS-delta */
            ms_bits_skip(&b, (size_t)a->cts_len);
        if (a->dts_len && ms_bits_read(&b, 1))
            ms_bits_skip(&b, (size_t)a->dts_len);
        if (a->rap)
            ms_bits_skip(&b, 1);
        ms_bits_skip(&b, (size_t)a->state_len);
        if (b.err || b.pos > hdr_bits)
            goto bad;
        cur = count == 0 ? 0 : cur + 1 + idx;
        sizes[count] = size;
        serial[count] = cur;
        count++;
    }
    if (count == 0 || b.pos < hdr_bits)
        goto bad;
    size_t off = 2 + hdr_bytes;
    if (a->aux_len) { /* 3.2.2 auxiliary section, skipped */
        ms_bits_init(&b, d + off, n - off);
        uint32_t aux = ms_bits_read(&b, a->aux_len);
        size_t aux_bytes = ((size_t)a->aux_len + aux + 7) / 8;
        if (b.err || aux_bytes > n - off)
            goto bad;
        off += aux_bytes;
    }
    size_t avail = n - off;

    if (a->frag_active) {
        if (count != 1 || p->ts != a->frag_ts || sizes[0] != a->frag_size) {
            drop_frag(r, a); /* the rest of that AU never came */
        } else {
            size_t need = a->frag_size - a->frag.len;
            if (avail > need) {
                drop_frag(r, a);
                goto bad;
            }
            ms_buf_append(&a->frag, d + off, avail);
            if (a->frag.len == a->frag_size) {
                ms_rtp_receiver_emit(r, a->frag.data, a->frag.len, a->frag_ts, 1, a->frag.err);
                a->frag_active = 0;
                ms_buf_reset(&a->frag);
            } else if (p->marker) {
                drop_frag(r, a); /* last fragment but bytes are missing */
            }
            return;
        }
    }
    if (count == 1 && sizes[0] > avail) {
        /* First fragment of an AU (or a middle one whose start was lost:
         * then the sizes will not add up and the AU is dropped). */
        if (sizes[0] > MS_RTP_MAX_FRAME || p->marker)
            goto bad;
        ms_buf_reset(&a->frag);
        ms_buf_append(&a->frag, d + off, avail);
        a->frag_active = 1;
        a->frag_size = sizes[0];
        a->frag_ts = p->ts;
        return;
    }
    for (size_t i = 0; i < count; i++) {
        if (sizes[i] > avail)
            goto bad;
        if (sizes[i] > 0)
            ms_rtp_receiver_emit(r, d + off, sizes[i], p->ts + serial[i] * a->dur, 1, 0);
        off += sizes[i];
        avail -= sizes[i];
    }
    return;
bad:
    ms_rtp_receiver_count_malformed(r);
}

static void flush(ms_rtp_receiver_t *r, void *st)
{
    (void)r;
    aac_t *a = st;
    a->frag_active = 0; /* an incomplete AU is not emitted */
    ms_buf_reset(&a->frag);
}

static void reset(ms_rtp_receiver_t *r, void *st)
{
    flush(r, st);
}

static void destroy(void *st)
{
    ms_buf_free(&((aac_t *)st)->frag);
}

const ms_rtp_depack_ops_t ms_rtp_depack_aac = {sizeof(aac_t), init, packet, flush, reset, destroy};
