/* Per-stream output of the RTSP server: one hub reader that packetizes each
 * frame once into a refcounted blob (stream-wide SSRC, sequence numbers and
 * timestamps, RFC 3550 5.1) and fans the blob out to every playing session;
 * a GOP cache of those blobs so that PLAY starts at the last keyframe; UDP
 * port pairs per track (RFC 2326 12.39 server_port); RTCP SR every 5 s per
 * track (RFC 3550 6.4.1). Everything here runs on the stream's loop. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "media/rtsp/sdp_out.h"
#include "media/rtsp/server_int.h"
#include "util/clock.h"
#include "util/log.h"

static uint32_t rand32(void)
{
    uint32_t v = 0;
    if (RAND_bytes((unsigned char *)&v, sizeof v) != 1)
        v = (uint32_t)ms_mono_us() * 2654435761u;
    return v;
}

static void gop_clear(srv_out_t *o)
{
    for (uint32_t i = 0; i < o->gop_len; i++)
        ms_blob_unref(o->gop[i].blob);
    o->gop_len = 0;
    o->gop_bytes = 0;
}

static int gop_grow(srv_out_t *o)
{
    uint32_t cap = o->gop_cap ? o->gop_cap * 2 : 256;
    srv_pkt_t *g = realloc(o->gop, cap * sizeof *g);
    if (!g)
        return -ENOMEM;
    o->gop = g;
    o->gop_cap = cap;
    return 0;
}

/* (Re)initialises the packetizers from the hub's tracks. Sequence numbers
 * and SSRCs of tracks whose codec did not change are kept. */
static void setup_tracks(srv_out_t *o)
{
    ms_hub_t *hub = o->st.hub;
    int n = ms_hub_ntracks(hub);
    o->has_video = 0;
    for (int i = 0; i < n && i < MS_MAX_TRACKS; i++) {
        const ms_codec_params_t *p = ms_hub_track(hub, i);
        srv_track_t *t = &o->tracks[i];
        int same =
            t->active && t->params.codec == p->codec && t->params.clock_rate == p->clock_rate;
        t->params = *p;
        if (p->kind == MS_TRACK_VIDEO)
            o->has_video = 1;
        if (same)
            continue;
        ms_rtp_packetizer_cfg_t c = {
            .codec = p->codec,
            .pt = (uint8_t)ms_sdp_out_pt(p, i),
            .channel = (uint8_t)(2 * i),
            .clock_rate = p->clock_rate ? p->clock_rate : 90000,
            .ssrc = rand32(),
            .seq = (uint16_t)rand32(),
            .ts_offset = rand32(),
            .mtu = MS_RTP_DEFAULT_MTU,
            .channels = p->channels,
        };
        t->pt = c.pt;
        t->has_last = 0;
        t->active = ms_rtp_packetizer_init(&t->pk, &c) == 0;
    }
    for (int i = n; i < MS_MAX_TRACKS; i++)
        o->tracks[i].active = 0;
    if (n > 0)
        o->ntracks = n;
}

int ms_rtsp_srv_out_prepare(srv_out_t *o)
{
    if (ms_hub_ntracks(o->st.hub) == 0)
        return -EAGAIN;
    if (o->ntracks != ms_hub_ntracks(o->st.hub))
        setup_tracks(o);
    return 0;
}

static void handle_frame(srv_out_t *o, ms_frame_t *f)
{
    if (f->track >= o->ntracks || !o->tracks[f->track].active)
        return;
    srv_track_t *t = &o->tracks[f->track];
    ms_buf_reset(&o->scratch);
    int n = ms_rtp_packetize(&t->pk, f, &o->scratch);
    if (n <= 0)
        return;
    t->last_ts = t->pk.last_ts;
    t->last_wall_us = f->wallclock_us;
    t->has_last = 1;
    srv_pkt_t p = {ms_buf_to_blob(&o->scratch), f->track,
                   (uint8_t)(t->params.kind == MS_TRACK_VIDEO && (f->flags & MS_FRAME_KEY))};
    if (!p.blob)
        return;
    /* GOP cache: from the last video keyframe on (docs/architecture.md "Data flow"). */
    if (o->has_video) {
        if (p.vkey)
            gop_clear(o);
        if (p.vkey || o->gop_len > 0) {
            /* capped like every buffer that waits for a keyframe (the
             * node's keyframe_wait_mb, media/stream/hub.h "Limits"); the
             * hub reports the hit, its own cache having the same cap */
            if (o->gop_len >= SRV_GOP_MAX ||
                (int64_t)(o->gop_bytes + p.blob->len) > ms_hub_limit_bytes(o->st.hub) ||
                (o->gop_len == o->gop_cap && gop_grow(o) != 0)) {
                gop_clear(o);
            } else {
                o->gop[o->gop_len++] = (srv_pkt_t){ms_blob_ref(p.blob), p.track, p.vkey};
                o->gop_bytes += p.blob->len;
            }
        }
    }
    for (srv_conn_t *c = o->conns, *next; c; c = next) {
        next = c->next;
        ms_rtsp_srv_conn_enqueue(c, &p);
    }
    ms_blob_unref(p.blob);
}

static void on_frames(ms_reader_t *r, void *ud)
{
    srv_out_t *o = ud;
    ms_frame_t *f;
    while (o->reader == r && (f = ms_reader_pop(r))) {
        handle_frame(o, f);
        ms_frame_unref(f);
    }
}

static void on_tracks(ms_reader_t *r, void *ud)
{
    (void)r;
    srv_out_t *o = ud;
    gop_clear(o);
    int n = ms_hub_ntracks(o->st.hub);
    if (n == 0)
        return; /* source gone: sessions wait for it to come back */
    int changed = n != o->ntracks;
    for (int i = 0; i < n && !changed; i++) {
        const ms_codec_params_t *p = ms_hub_track(o->st.hub, i);
        changed = p->codec != o->tracks[i].params.codec ||
                  p->clock_rate != o->tracks[i].params.clock_rate;
    }
    if (changed && o->conns) {
        /* The sessions' SDP no longer describes the stream. */
        MS_INFO(o->ctx, "tracks changed: closing %d RTSP connection(s)", o->nconns);
        o->ntracks = 0;
        for (int i = 0; i < MS_MAX_TRACKS; i++)
            o->tracks[i].active = 0;
        while (o->conns && !o->closing) /* the last close frees the out */
            ms_rtsp_srv_conn_close(o->conns, "stream tracks changed");
        return;
    }
    setup_tracks(o);
}

/* ---- RTCP SR and UDP ---- */

static void send_sr(srv_out_t *o)
{
    for (int i = 0; i < o->ntracks; i++) {
        srv_track_t *t = &o->tracks[i];
        if (!t->active || !t->has_last)
            continue;
        int64_t wall = t->last_wall_us > 0 ? t->last_wall_us : ms_wall_us();
        uint8_t sr[4 + 128];
        size_t n = ms_rtcp_build_sr_packet(sr + 4, sizeof sr - 4, t->pk.cfg.ssrc,
                                           ms_rtcp_ntp_from_unix_us(wall), t->last_ts,
                                           t->pk.packets, t->pk.octets, "mediaserver");
        if (!n)
            continue;
        for (srv_conn_t *c = o->conns; c; c = c->next) {
            if (c->arch || c->state != SESS_PLAYING || !c->setup[i])
                continue; /* archive sessions send their own SRs */
            if (c->tcp_transport) {
                sr[0] = '$';
                sr[1] = c->ch_rtcp[i];
                sr[2] = (uint8_t)(n >> 8);
                sr[3] = (uint8_t)n;
                if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) < SRV_WRITE_HIGH)
                    ms_rtsp_srv_conn_send_raw(c, sr, n + 4);
            } else if (t->udp_state == SRV_UDP_BOUND) {
                uv_buf_t b = uv_buf_init((char *)sr + 4, (unsigned)n);
                uv_udp_try_send(&t->rtcp, &b, 1, (const struct sockaddr *)&c->udp_rtcp[i]);
            }
        }
    }
}

static void rtcp_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)h;
    (void)hint;
    static _Thread_local char rx[2048];
    buf->base = rx;
    buf->len = sizeof rx;
}

static int same_addr(const struct sockaddr *a, const struct sockaddr_storage *b)
{
    if (a->sa_family != b->ss_family)
        return 0;
    if (a->sa_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
    return x->sin6_port == y->sin6_port && memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
}

/* RTCP from UDP clients (RR, BYE): content ignored, counts as keepalive. */
static void rtcp_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
                      unsigned flags)
{
    (void)buf;
    (void)flags;
    srv_out_t *o = h->data;
    if (nread <= 0 || !addr)
        return;
    int64_t now = ms_mono_ms();
    for (srv_conn_t *c = o->conns; c; c = c->next)
        for (int i = 0; i < MS_MAX_TRACKS; i++)
            if (c->setup[i] && !c->tcp_transport && same_addr(addr, &c->udp_rtcp[i]))
                c->last_activity_ms = now;
}

static int bind_udp(int family, const char *addr, int port)
{
    int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t len;
    if (family == AF_INET6) {
        struct sockaddr_in6 *s6 = (void *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        inet_pton(AF_INET6, addr, &s6->sin6_addr);
        len = sizeof *s6;
    } else {
        struct sockaddr_in *s4 = (void *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        inet_pton(AF_INET, addr, &s4->sin_addr);
        len = sizeof *s4;
    }
    if (bind(fd, (struct sockaddr *)&ss, len) != 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    return fd;
}

int ms_rtsp_srv_out_udp(srv_out_t *o, int track)
{
    srv_track_t *t = &o->tracks[track];
    if (t->udp_state == SRV_UDP_BOUND)
        return t->udp_port;
    if (t->udp_state != SRV_UDP_NONE)
        return -EBUSY;
    ms_rtsp_server_t *srv = o->srv;
    int family = strchr(srv->address, ':') ? AF_INET6 : AF_INET;
    for (int attempt = 0; attempt < 64; attempt++) {
        pthread_mutex_lock(&srv->mu);
        int port = srv->next_udp_port;
        srv->next_udp_port = (uint16_t)(port + 2 >= 60000 ? 20000 : port + 2);
        pthread_mutex_unlock(&srv->mu);
        int a = bind_udp(family, srv->address, port);
        if (a < 0)
            continue;
        int b = bind_udp(family, srv->address, port + 1);
        if (b < 0) {
            close(a);
            continue;
        }
        uv_loop_t *loop = o->st.loop;
        uv_udp_init(loop, &t->rtp);
        uv_udp_init(loop, &t->rtcp);
        t->rtp.data = t->rtcp.data = o;
        if (uv_udp_open(&t->rtp, a) != 0)
            close(a);
        if (uv_udp_open(&t->rtcp, b) != 0)
            close(b);
        int sz = 1 << 20;
        setsockopt(a, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
        uv_udp_recv_start(&t->rtcp, rtcp_alloc, rtcp_recv);
        t->udp_state = SRV_UDP_BOUND;
        t->udp_port = port;
        return port;
    }
    return -EADDRINUSE;
}

/* ---- PLAY ---- */

void ms_rtsp_srv_out_play(srv_out_t *o, srv_conn_t *c, int resume, char *rtpinfo, size_t cap)
{
    size_t len = 0;
    rtpinfo[0] = '\0';
    for (int i = 0; i < o->ntracks; i++) {
        if (!c->setup[i] || !o->tracks[i].active)
            continue;
        srv_track_t *t = &o->tracks[i];
        uint16_t seq = t->pk.seq;
        uint32_t ts = 0;
        int has_ts = 0;
        if (!resume) {
            for (uint32_t k = 0; k < o->gop_len; k++)
                if (o->gop[k].track == i) {
                    const uint8_t *d = o->gop[k].blob->data; /* record + RTP header */
                    seq = ms_rd_be16(d + 4 + 2);
                    ts = ms_rd_be32(d + 4 + 4);
                    has_ts = 1;
                    break;
                }
        }
        int n;
        if (has_ts)
            n = snprintf(rtpinfo + len, cap - len, "%surl=%s;seq=%u;rtptime=%u", len ? "," : "",
                         c->control[i], seq, ts);
        else
            n = snprintf(rtpinfo + len, cap - len, "%surl=%s;seq=%u", len ? "," : "", c->control[i],
                         seq);
        if (n < 0 || (size_t)n >= cap - len) {
            rtpinfo[len] = '\0';
            break;
        }
        len += (size_t)n;
    }
}

void ms_rtsp_srv_out_start(srv_out_t *o, srv_conn_t *c, int resume)
{
    if (resume) {
        c->wait_key = o->has_video;
        return;
    }
    c->wait_key = 0;
    c->q_gop_frames = o->gop_len; /* the burst below fits beside the usual queue */
    c->q_gop_bytes = o->gop_bytes;
    for (uint32_t k = 0; k < o->gop_len && !c->closing; k++)
        ms_rtsp_srv_conn_enqueue(c, &o->gop[k]);
}

/* ---- lifetime ---- */

static void out_handle_closed(uv_handle_t *h)
{
    srv_out_t *o = h->data;
    if (--o->pending_closes > 0)
        return;
    ms_rtsp_server_t *srv = o->srv;
    srv->cfg.release(srv->cfg.ud, o->st.ref);
    ms_buf_free(&o->scratch);
    free(o->gop);
    free(o);
    pthread_mutex_lock(&srv->mu);
    srv->nouts--;
    pthread_cond_broadcast(&srv->cv);
    pthread_mutex_unlock(&srv->mu);
}

/* Called when the last connection left (or at shutdown with none left). */
static void out_destroy(srv_out_t *o)
{
    ms_rtsp_server_t *srv = o->srv;
    o->closing = 1;
    pthread_mutex_lock(&srv->mu);
    for (srv_out_t **p = &srv->outs; *p; p = &(*p)->next)
        if (*p == o) {
            *p = o->next;
            break;
        }
    pthread_mutex_unlock(&srv->mu);
    ms_reader_t *r = o->reader;
    o->reader = NULL;
    ms_hub_reader_close(r);
    gop_clear(o);
    o->pending_closes = 1;
    uv_close((uv_handle_t *)&o->timer, out_handle_closed);
    for (int i = 0; i < MS_MAX_TRACKS; i++) {
        srv_track_t *t = &o->tracks[i];
        if (t->udp_state == SRV_UDP_BOUND) {
            t->udp_state = SRV_UDP_CLOSING;
            o->pending_closes += 2;
            uv_close((uv_handle_t *)&t->rtp, out_handle_closed);
            uv_close((uv_handle_t *)&t->rtcp, out_handle_closed);
        }
    }
    MS_DEBUG(o->ctx, "output closed");
}

void ms_rtsp_srv_out_detach(srv_out_t *o, srv_conn_t *c)
{
    for (srv_conn_t **p = &o->conns; *p; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            o->nconns--;
            break;
        }
    if (o->nconns == 0 && !o->closing)
        out_destroy(o);
}

void ms_rtsp_srv_out_shutdown(srv_out_t *o)
{
    if (o->closing)
        return;
    if (!o->conns) {
        out_destroy(o);
        return;
    }
    while (o->conns && !o->closing)
        ms_rtsp_srv_conn_close(o->conns, "server stopping");
}

static void out_tick(uv_timer_t *tm)
{
    srv_out_t *o = tm->data;
    ms_rtsp_server_t *srv = o->srv;
    int run = srv->cfg.running ? srv->cfg.running(srv->cfg.ud, o->st.ref) : 1;
    if (run == 0) {
        MS_INFO(o->ctx, "stream stopped: closing %d RTSP connection(s)", o->nconns);
        ms_rtsp_srv_out_shutdown(o);
        return;
    }
    int64_t now = ms_mono_ms();
    o->ticks++;
    /* a conn may close itself (and the last one frees the out's list) */
    srv_conn_t *c = o->conns;
    while (c && !o->closing) {
        srv_conn_t *next = c->next;
        if (run == 2 && !c->arch)
            ms_rtsp_srv_conn_close(c, "the stream runs on another server now");
        else
            ms_rtsp_srv_conn_tick(c, now);
        c = next;
    }
    if (!o->closing && o->ticks % SRV_SR_INTERVAL == 0)
        send_sr(o);
}

static srv_out_t *out_new(ms_rtsp_server_t *srv, const ms_rtsp_stream_t *st)
{
    srv_out_t *o = calloc(1, sizeof *o);
    if (!o) {
        srv->cfg.release(srv->cfg.ud, st->ref);
        return NULL;
    }
    o->srv = srv;
    o->st = *st;
    snprintf(o->ctx, sizeof o->ctx, "%s [stream %s]", srv->ctx, st->name);
    setup_tracks(o);
    ms_reader_opts_t ro = {.queue_frames = 4096,
                           .prompt = 1, /* an RTSP viewer expects live latency */
                           .on_frames = on_frames,
                           .on_tracks = on_tracks,
                           .ud = o};
    uv_timer_init(st->loop, &o->timer);
    o->timer.data = o;
    uv_timer_start(&o->timer, out_tick, 1000, 1000);
    pthread_mutex_lock(&srv->mu);
    o->next = srv->outs;
    srv->outs = o;
    srv->nouts++;
    pthread_mutex_unlock(&srv->mu);
    /* The hub queues its GOP cache to the new reader and calls on_frames
     * before it returns, when o->reader is not yet set (on_frames ignores a
     * reader that is not ours): packetize it into our GOP cache here, so
     * that the first PLAY starts from it as one burst. Left queued, it was
     * sent as live frames with the next one, past the send queue's cap. */
    o->reader = ms_hub_reader_open(st->hub, &ro);
    if (!o->reader) {
        out_destroy(o);
        return NULL;
    }
    on_frames(o->reader, o);
    return o;
}

void ms_rtsp_srv_adopt(ms_rtsp_server_t *srv, ms_rtsp_stream_t *st, int fd, const uint8_t *data,
                       size_t len, const ms_ip_t *counted)
{
    srv_out_t *o = NULL;
    pthread_mutex_lock(&srv->mu);
    for (srv_out_t *x = srv->outs; x; x = x->next)
        if (x->st.ref == st->ref && !x->closing) {
            o = x;
            break;
        }
    pthread_mutex_unlock(&srv->mu);
    if (o) {
        srv->cfg.release(srv->cfg.ud, st->ref); /* the out holds one already */
    } else {
        o = out_new(srv, st);
        if (!o) {
            close(fd); /* out_new released the reference */
            if (counted)
                ms_connlimit_release(srv->conns, counted);
            return;
        }
    }
    srv_conn_t *c = ms_rtsp_srv_conn_new(o, fd);
    if (!c) {
        if (counted)
            ms_connlimit_release(srv->conns, counted);
        if (o->nconns == 0 && !o->closing)
            out_destroy(o);
        return;
    }
    if (counted) {
        c->ip_counted = 1;
        c->ip = *counted;
    }
    ms_rtsp_srv_conn_input(c, data, len);
}
