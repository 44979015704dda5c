/* ONVIF metadata depacketizer (ONVIF Streaming Specification 5.2.1.1,
 * "vnd.onvif.metadata"): the XML document is split over packets of one
 * timestamp and the marker bit is set on its last packet. */
#include <errno.h>

#include "media/rtp/rtp_internal.h"
#include "util/buf.h"

typedef struct {
    ms_buf_t doc;
    uint32_t ts;
    int active, corrupt, pending_gap;
} meta_t;

static int init(ms_rtp_receiver_t *r, void *st, const char *fmtp, char *err, size_t errlen)
{
    (void)st;
    (void)fmtp;
    (void)err;
    (void)errlen;
    ms_rtp_receiver_params_changed(r);
    return 0;
}

static void finish(ms_rtp_receiver_t *r, meta_t *m)
{
    if (m->active && (m->doc.len || m->corrupt))
        ms_rtp_receiver_emit(r, m->doc.data, m->doc.len, m->ts, 1, m->corrupt || m->doc.err);
    ms_buf_reset(&m->doc);
    m->active = m->corrupt = 0;
}

static void packet(ms_rtp_receiver_t *r, void *st, const ms_rtp_packet_t *p, uint64_t lost)
{
    meta_t *m = st;
    if (lost) {
        if (m->active)
            m->corrupt = 1;
        m->pending_gap = 1;
    }
    if (m->active && p->ts != m->ts)
        finish(r, m);
    if (!m->active) {
        m->active = 1;
        m->ts = p->ts;
        /* A loss between documents may have taken this one's head. */
        m->corrupt = m->pending_gap;
    }
    m->pending_gap = 0;
    if (m->doc.len + p->payload_len > MS_RTP_MAX_FRAME) {
        ms_rtp_receiver_count_malformed(r);
        m->corrupt = 1;
        ms_buf_reset(&m->doc);
    } else if (!m->corrupt) {
        ms_buf_append(&m->doc, p->payload, p->payload_len);
    }
    if (p->marker)
        finish(r, m);
}

static void flush(ms_rtp_receiver_t *r, void *st)
{
    (void)r;
    meta_t *m = st;
    ms_buf_reset(&m->doc); /* no marker yet: incomplete */
    m->active = m->corrupt = 0;
}

static void reset(ms_rtp_receiver_t *r, void *st)
{
    flush(r, st);
    ((meta_t *)st)->pending_gap = 0;
}

static void destroy(void *st)
{
    ms_buf_free(&((meta_t *)st)->doc);
}

const ms_rtp_depack_ops_t ms_rtp_depack_meta = {sizeof(meta_t), init,  packet,
                                                flush,          reset, destroy};
