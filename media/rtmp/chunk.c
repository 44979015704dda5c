/* RTMP chunk stream (media/rtmp/chunk.h); sections of Adobe RTMP 1.0. */
#include "media/rtmp/chunk.h"

#include <errno.h>
#include <string.h>

void ms_rtmp_chunk_rd_init(ms_rtmp_chunk_rd_t *rd, uint32_t max_msg)
{
    memset(rd, 0, sizeof *rd);
    rd->chunk_size = MS_RTMP_DEF_CHUNK;
    rd->max_msg = max_msg ? max_msg : MS_RTMP_DEF_MAX_MSG;
}

void ms_rtmp_chunk_rd_free(ms_rtmp_chunk_rd_t *rd)
{
    for (int i = 0; i < MS_RTMP_MAX_CSIDS; i++)
        ms_buf_free(&rd->cs[i].payload);
    memset(rd->cs, 0, sizeof rd->cs);
    rd->held = 0;
}

static ms_rtmp_cs_t *cs_get(ms_rtmp_chunk_rd_t *rd, uint32_t csid, int create)
{
    ms_rtmp_cs_t *free_slot = NULL;
    for (int i = 0; i < MS_RTMP_MAX_CSIDS; i++) {
        if (rd->cs[i].inuse && rd->cs[i].csid == csid)
            return &rd->cs[i];
        if (!rd->cs[i].inuse && !free_slot)
            free_slot = &rd->cs[i];
    }
    if (!create || !free_slot)
        return NULL;
    memset(free_slot, 0, sizeof *free_slot);
    free_slot->inuse = 1;
    free_slot->csid = csid;
    return free_slot;
}

static void cs_drop_partial(ms_rtmp_chunk_rd_t *rd, ms_rtmp_cs_t *cs)
{
    if (cs->partial)
        rd->held -= cs->payload.len;
    cs->partial = 0;
    ms_buf_reset(&cs->payload);
}

/* Length of the header that starts with hdr[0..have): 0 when more bytes
 * are needed to know it. cs: the chunk stream (for type 3's extended ts). */
static size_t hdr_len(ms_rtmp_chunk_rd_t *rd, size_t *basic, uint32_t *csid, int *fmt)
{
    const uint8_t *h = rd->hdr;
    if (rd->hdr_have < 1)
        return 0;
    *fmt = h[0] >> 6;
    uint32_t id = h[0] & 0x3f;
    if (id == 0) { /* 5.3.1.1: 2-byte form, ids 64-319 */
        *basic = 2;
        if (rd->hdr_have < 2)
            return 0;
        *csid = 64u + h[1];
    } else if (id == 1) { /* 3-byte form, ids 64-65599 */
        *basic = 3;
        if (rd->hdr_have < 3)
            return 0;
        *csid = 64u + h[1] + 256u * h[2];
    } else {
        *basic = 1;
        *csid = id;
    }
    static const size_t mh[4] = {11, 7, 3, 0};
    size_t n = *basic + mh[*fmt];
    if (*fmt < 3) {
        if (rd->hdr_have < n)
            return n; /* read that much first, then decide on the extension */
        if (ms_rd_be24(h + *basic) == 0xffffff)
            n += 4;
    } else {
        ms_rtmp_cs_t *cs = cs_get(rd, *csid, 0);
        if (cs && cs->ext)
            n += 4;
    }
    return n;
}

/* A full header is in rd->hdr: sets up rd->cur. */
static int hdr_apply(ms_rtmp_chunk_rd_t *rd, size_t basic, uint32_t csid, int fmt)
{
    const uint8_t *h = rd->hdr + basic;
    ms_rtmp_cs_t *cs = cs_get(rd, csid, fmt == 0);
    if (!cs)
        return -EPROTO; /* 5.3.1.2.2-4 need a previous header; or too many streams */
    if (fmt != 0 && !cs->type)
        return -EPROTO;
    if (fmt < 3) {
        if (cs->partial) /* a new header on a stream mid-message: the old one is lost */
            cs_drop_partial(rd, cs);
        uint32_t tsf = ms_rd_be24(h);
        if (fmt <= 1) {
            cs->len = ms_rd_be24(h + 3);
            cs->type = h[6];
            if (cs->type == 0)
                return -EPROTO;
        }
        if (fmt == 0)
            cs->sid = (uint32_t)h[7] | (uint32_t)h[8] << 8 | (uint32_t)h[9] << 16 |
                      (uint32_t)h[10] << 24; /* little-endian (5.3.1.2.1) */
        static const size_t mh[3] = {11, 7, 3};
        cs->ext = tsf == 0xffffff;
        if (cs->ext)
            tsf = ms_rd_be32(h + mh[fmt]);
        cs->ts_field = tsf;
        cs->ts = fmt == 0 ? tsf : cs->ts + tsf;
    } else if (!cs->partial) {
        /* 5.3.1.2.4: a new message with the previous header; its delta */
        if (cs->ext)
            cs->ts_field = ms_rd_be32(h);
        cs->ts += cs->ts_field;
    }
    if (!cs->partial) {
        if (cs->len > rd->max_msg)
            return -EMSGSIZE;
        cs->partial = 1;
        ms_buf_reset(&cs->payload);
    }
    uint32_t left = cs->len - (uint32_t)cs->payload.len;
    rd->cur = cs;
    rd->cur_left = left < rd->chunk_size ? left : rd->chunk_size;
    return 0;
}

int ms_rtmp_chunk_read(ms_rtmp_chunk_rd_t *rd, const uint8_t *data, size_t len, size_t *used,
                       ms_rtmp_msg_t *msg)
{
    size_t u = 0;
    for (;;) {
        if (!rd->cur) {
            size_t basic = 0;
            uint32_t csid = 0;
            int fmt = 0;
            size_t need;
            /* accumulate the header byte by byte until its length is known */
            while ((need = hdr_len(rd, &basic, &csid, &fmt)) == 0 || rd->hdr_have < need) {
                if (u == len) {
                    rd->bytes_in += u;
                    *used = u;
                    return 0;
                }
                rd->hdr[rd->hdr_have++] = data[u++];
            }
            rd->hdr_have = 0;
            int r = hdr_apply(rd, basic, csid, fmt);
            if (r < 0) {
                *used = u;
                return r;
            }
        }
        ms_rtmp_cs_t *cs = rd->cur;
        size_t n = len - u < rd->cur_left ? len - u : rd->cur_left;
        if (n) {
            if (rd->held + n > 2 * (size_t)rd->max_msg) {
                *used = u;
                return -EMSGSIZE;
            }
            ms_buf_append(&cs->payload, data + u, n);
            if (cs->payload.err) {
                *used = u;
                return -ENOMEM;
            }
            rd->held += n;
            u += n;
            rd->cur_left -= (uint32_t)n;
        }
        if (rd->cur_left > 0) {
            rd->bytes_in += u;
            *used = u;
            return 0;
        }
        rd->cur = NULL;
        if (cs->payload.len < cs->len)
            continue; /* the next chunk of this message comes later */
        /* message complete */
        cs->partial = 0;
        rd->held -= cs->payload.len;
        msg->csid = cs->csid;
        msg->type = cs->type;
        msg->stream_id = cs->sid;
        msg->timestamp = cs->ts;
        msg->data = cs->payload.data;
        msg->len = cs->payload.len;
        if (cs->type == MS_RTMP_SET_CHUNK_SIZE && cs->payload.len >= 4) {
            uint32_t sz = ms_rd_be32(cs->payload.data) & 0x7fffffffu; /* 5.4.1: bit 0 is 0 */
            if (sz < 1 || sz > MS_RTMP_MAX_CHUNK) {
                *used = u;
                return -EPROTO;
            }
            rd->chunk_size = sz;
        } else if (cs->type == MS_RTMP_ABORT && cs->payload.len >= 4) {
            ms_rtmp_cs_t *a = cs_get(rd, ms_rd_be32(cs->payload.data), 0);
            if (a && a != cs)
                cs_drop_partial(rd, a);
        }
        rd->bytes_in += u;
        *used = u;
        return 1;
    }
}

static void basic_hdr(ms_buf_t *out, int fmt, uint32_t csid)
{
    if (csid >= 2 && csid <= 63) {
        ms_buf_u8(out, (uint8_t)(fmt << 6 | csid));
    } else if (csid >= 64 && csid <= 319) {
        ms_buf_u8(out, (uint8_t)(fmt << 6));
        ms_buf_u8(out, (uint8_t)(csid - 64));
    } else {
        uint32_t v = csid - 64;
        ms_buf_u8(out, (uint8_t)(fmt << 6 | 1));
        ms_buf_u8(out, (uint8_t)(v & 0xff));
        ms_buf_u8(out, (uint8_t)(v >> 8));
    }
}

void ms_rtmp_chunk_write(ms_buf_t *out, uint32_t chunk_size, uint32_t csid, uint8_t type,
                         uint32_t stream_id, uint32_t timestamp, const uint8_t *p, size_t len)
{
    if (chunk_size == 0)
        chunk_size = MS_RTMP_DEF_CHUNK;
    if (csid < 2 || csid > 65599)
        csid = 3;
    int ext = timestamp >= 0xffffff;
    basic_hdr(out, 0, csid);
    ms_buf_be24(out, ext ? 0xffffff : timestamp);
    ms_buf_be24(out, (uint32_t)len);
    ms_buf_u8(out, type);
    ms_buf_u8(out, (uint8_t)stream_id);
    ms_buf_u8(out, (uint8_t)(stream_id >> 8));
    ms_buf_u8(out, (uint8_t)(stream_id >> 16));
    ms_buf_u8(out, (uint8_t)(stream_id >> 24));
    if (ext)
        ms_buf_be32(out, timestamp);
    size_t off = 0;
    for (;;) {
        size_t n = len - off < chunk_size ? len - off : chunk_size;
        ms_buf_append(out, p + off, n);
        off += n;
        if (off >= len)
            break;
        basic_hdr(out, 3, csid);
        if (ext)
            ms_buf_be32(out, timestamp);
    }
}

static void ctrl(ms_buf_t *out, uint8_t type, const uint8_t *p, size_t n)
{
    ms_rtmp_chunk_write(out, MS_RTMP_DEF_CHUNK, 2, type, 0, 0, p, n);
}

void ms_rtmp_put_set_chunk_size(ms_buf_t *out, uint32_t size)
{
    uint8_t p[4];
    ms_wr_be32(p, size & 0x7fffffffu);
    ctrl(out, MS_RTMP_SET_CHUNK_SIZE, p, 4);
}

void ms_rtmp_put_ack(ms_buf_t *out, uint32_t seq)
{
    uint8_t p[4];
    ms_wr_be32(p, seq);
    ctrl(out, MS_RTMP_ACK, p, 4);
}

void ms_rtmp_put_window_ack_size(ms_buf_t *out, uint32_t size)
{
    uint8_t p[4];
    ms_wr_be32(p, size);
    ctrl(out, MS_RTMP_WINDOW_ACK_SIZE, p, 4);
}

void ms_rtmp_put_set_peer_bw(ms_buf_t *out, uint32_t size, uint8_t limit_type)
{
    uint8_t p[5];
    ms_wr_be32(p, size);
    p[4] = limit_type;
    ctrl(out, MS_RTMP_SET_PEER_BW, p, 5);
}

void ms_rtmp_put_user_control(ms_buf_t *out, uint16_t event, uint32_t value)
{
    uint8_t p[6];
    p[0] = (uint8_t)(event >> 8);
    p[1] = (uint8_t)event;
    ms_wr_be32(p + 2, value);
    ctrl(out, MS_RTMP_USER_CONTROL, p, 6);
}

void ms_rtmp_ack_due(ms_buf_t *out, uint64_t bytes_in, uint64_t *acked, uint32_t peer_window)
{
    if (peer_window && bytes_in - *acked >= peer_window) {
        *acked = bytes_in;
        ms_rtmp_put_ack(out, (uint32_t)bytes_in);
    }
}

int ms_rtmp_peer_control(ms_buf_t *out, const ms_rtmp_msg_t *m, uint32_t *peer_window)
{
    switch (m->type) {
    case MS_RTMP_WINDOW_ACK_SIZE:
        if (m->len >= 4)
            *peer_window = ms_rd_be32(m->data);
        return 1;
    case MS_RTMP_USER_CONTROL:
        /* 7.1.7: PingRequest (6) is answered with PingResponse (7) */
        if (m->len >= 6 && ms_rd_be16(m->data) == 6)
            ms_rtmp_put_user_control(out, 7, ms_rd_be32(m->data + 2));
        return 1;
    default:
        return 0;
    }
}
