/* G.711 PCMU/PCMA depacketizer (RFC 3551 sections 4.5.14, 6: payload types
 * 0 and 8, 8 bits per sample). Each packet becomes one frame. */
#include <errno.h>

#include "media/rtp/rtp_internal.h"

typedef struct {
    int unused;
} g711_t;

static int init(ms_rtp_receiver_t *r, void *st, const char *fmtp, char *err, size_t errlen)
{
    (void)st;
    (void)fmtp;
    (void)err;
    (void)errlen;
    ms_codec_params_t *p = ms_rtp_receiver_params_mut(r);
    if (p->channels == 0)
        p->channels = 1;
    ms_rtp_receiver_params_changed(r);
    return 0;
}

static void packet(ms_rtp_receiver_t *r, void *st, const ms_rtp_packet_t *p, uint64_t lost)
{
    (void)st;
    (void)lost; /* each packet stands alone: nothing to repair */
    if (p->payload_len == 0) {
        ms_rtp_receiver_count_malformed(r);
        return;
    }
    ms_rtp_receiver_emit(r, p->payload, p->payload_len, p->ts, 1, 0);
}

static void nop(ms_rtp_receiver_t *r, void *st)
{
    (void)r;
    (void)st;
}

static void destroy(void *st)
{
    (void)st;
}

const ms_rtp_depack_ops_t ms_rtp_depack_g711 = {sizeof(g711_t), init, packet, nop, nop, destroy};
