/* RTSP client media path: track selection from the SDP, RTP receivers,
 * UDP port pairs (RFC 2326 12.39 client_port), interleaved channels
 * (RFC 2326 10.12), RTCP receiver reports (RFC 3550 6.4.2), timeline
 * alignment across tracks and publishing into the hub, status counters. */
#include "media/rtsp/client_int.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/clock.h"

#define UDP_PORT_MIN         20000
#define UDP_PORT_PAIRS       20000
#define UDP_TRIES            16
#define LOSS_PROBLEM_PERCENT 5
#define LOSS_MIN_PACKETS     200
#define NO_FRAMES_PROBLEM_MS 3000

/* ---- frames and timeline ---- */

static int recent_losses(const ms_rtsp_client_t *c, int64_t now)
{
    int n = 0;
    for (int i = 0; i < 3; i++)
        if (c->losses[i] && now - c->losses[i] <= 5 * 60 * 1000)
            n++;
    return n;
}

static void session_active(ms_rtsp_sess_t *s)
{
    ms_rtsp_client_t *c = s->c;
    int64_t now = ms_mono_ms();
    s->active_since_ms = now;
    c->redirects = 0;
    pthread_mutex_lock(&c->lock);
    c->status.state = MS_STATE_ACTIVE;
    c->status.characteristic = recent_losses(c, now) >= 3 ? MS_CHAR_PROBLEMATIC : MS_CHAR_OK;
    snprintf(c->status.reason, sizeof c->status.reason, "%s",
             c->status.characteristic == MS_CHAR_PROBLEMATIC ? "frequent disconnections" : "");
    c->status.reconnects = 0;
    c->status.connected_at_us = ms_wall_us();
    pthread_mutex_unlock(&c->lock);
}

/* Timeline (frame.h): all tracks of a session share one timeline whose zero
 * is base_wall_us, the capture time of the session's first frame. Each
 * track's receiver timeline (first frame = 0) is shifted once, at its first
 * frame, by the offset that puts that frame at its capture time: from the
 * RTCP SR mapping (RFC 3550 6.4.1) when the track has one, else from its
 * arrival time. The offset is then constant, so dts stays monotonic. */
static void on_frame(void *ud, ms_frame_t *f)
{
    ms_rtsp_track_t *t = ud;
    ms_rtsp_sess_t *s = t->s;
    ms_rtsp_client_t *c = s->c;
    if (s->dead || !s->hub_set) {
        ms_frame_unref(f);
        return;
    }
    int64_t rx_pts = f->pts;
    int64_t sr_wall = 0;
    int have_sr = ms_rtp_receiver_ntp(t->rx, rx_pts, &sr_wall);
    if (!t->started) {
        int64_t cap = have_sr ? sr_wall : ms_wall_us();
        if (!s->first_frame_sent)
            s->base_wall_us = cap;
        int64_t target = (cap - s->base_wall_us) * (int64_t)t->clock_rate / 1000000;
        t->offset = target - f->dts;
        t->started = 1;
    }
    f->pts += t->offset;
    f->dts += t->offset;
    f->track = (uint8_t)t->index;
    f->wallclock_us =
        have_sr ? sr_wall : s->base_wall_us + f->pts * 1000000 / (int64_t)t->clock_rate;
    if (!s->first_frame_sent) {
        s->first_frame_sent = 1;
        f->flags |= MS_FRAME_DISCONT;
        session_active(s);
    }
    /* Later, MS_FRAME_DISCONT comes from the receiver: its timestamps jumped
     * (or the SSRC changed) and it started a new timeline that continues
     * right after the last frame (media/rtp/timeline.c), so the offset
     * above stays valid; muxers still cut there. */
    ms_hub_publish(c->hub, f);
    ms_frame_unref(f);
}

static void on_params(void *ud, const ms_codec_params_t *p)
{
    ms_rtsp_track_t *t = ud;
    t->params = *p;
    if (t->s->hub_set && !t->s->dead)
        ms_hub_update_params(t->s->c->hub, t->index, p);
}

void ms_rtsp_cl_hub_start(ms_rtsp_sess_t *s)
{
    ms_codec_params_t p[CL_MAX_TRACKS];
    for (int i = 0; i < s->ntracks; i++)
        p[i] = s->tracks[i].params;
    if (ms_hub_set_tracks(s->c->hub, p, s->ntracks) == 0)
        s->hub_set = 1;
}

/* ---- tracks ---- */

int ms_rtsp_cl_tracks_select(ms_rtsp_sess_t *s, const ms_sdp_t *sdp, char *err, size_t errlen)
{
    ms_rtsp_client_t *c = s->c;
    unsigned have = 0;
    int usable = ms_sdp_usable(sdp);
    char unsup[128] = "";
    char ctl[MS_RTSP_URL_MAX];
    for (int i = 0; i < sdp->nmedia && s->ntracks < CL_MAX_TRACKS; i++) {
        const ms_sdp_media_t *m = &sdp->media[i];
        if (m->codec == MS_CODEC_NONE) {
            const char *enc =
                m->nformats && m->formats[0].encoding ? m->formats[0].encoding : m->media;
            size_t ul = strlen(unsup);
            snprintf(unsup + ul, sizeof unsup - ul, "%s%s", ul ? "," : "", enc);
            continue;
        }
        unsigned bit = 1u << m->kind;
        if (!(c->channels & bit) || (have & bit))
            continue;
        ms_rtsp_track_t *t = &s->tracks[s->ntracks];
        memset(t, 0, sizeof *t);
        t->s = s;
        t->index = s->ntracks;
        t->codec = m->codec;
        t->kind = m->kind;
        t->clock_rate = m->fmt->clock_rate;
        t->pt = m->fmt->pt;
        t->channels = m->fmt->channels;
        if (m->fmt->fmtp && !(t->fmtp = strdup(m->fmt->fmtp))) {
            snprintf(err, errlen, "out of memory");
            return -ENOMEM;
        }
        if (ms_rtsp_url_resolve(s->base, m->control ? m->control : "", ctl, sizeof ctl) < 0) {
            free(t->fmtp);
            t->fmtp = NULL;
            MS_WARN(c->ctx, "track %d: bad control URL, skipped", i);
            continue;
        }
        if (!(t->control = strdup(ctl))) {
            free(t->fmtp);
            t->fmtp = NULL;
            snprintf(err, errlen, "out of memory");
            return -ENOMEM;
        }
        t->params.codec = t->codec;
        t->params.kind = t->kind;
        t->params.clock_rate = t->clock_rate;
        if (t->kind == MS_TRACK_AUDIO) {
            t->params.sample_rate = (int)t->clock_rate;
            t->params.channels = t->channels ? t->channels : 1;
        }
        ms_rtp_receiver_cfg_t rc = {
            .codec = t->codec,
            .clock_rate = t->clock_rate,
            .payload_type = t->pt,
            .channels = t->channels,
            .fmtp = t->fmtp,
            .reorder_window = s->tcp_transport ? 0 : 64,
            .on_frame = on_frame,
            .on_params = on_params,
            .ud = t,
        };
        char rerr[128] = "";
        t->rx = ms_rtp_receiver_new(&rc, rerr, sizeof rerr);
        if (!t->rx) {
            MS_WARN(c->ctx, "track %d (%s): %s, skipped", i, ms_codec_name(t->codec), rerr);
            free(t->fmtp);
            t->fmtp = NULL;
            free(t->control);
            t->control = NULL;
            continue;
        }
        have |= bit;
        s->ntracks++;
    }
    if (s->ntracks == 0) {
        if (usable == 0)
            snprintf(err, errlen, "no supported codec in the SDP%s%s", unsup[0] ? ": " : "", unsup);
        else
            snprintf(err, errlen, "no usable track for the configured channels");
        return -ENOTSUP;
    }
    return 0;
}

void ms_rtsp_cl_tracks_free(ms_rtsp_sess_t *s)
{
    ms_rtsp_client_t *c = s->c;
    for (int i = 0; i < s->ntracks; i++) {
        ms_rtsp_track_t *t = &s->tracks[i];
        if (t->rx) {
            const ms_rtp_stats_t *st = ms_rtp_receiver_stats(t->rx);
            c->acc_packets += st->packets;
            c->acc_lost += st->lost;
            c->acc_dropped += st->frames_dropped;
            c->acc_jumps += st->ts_jumps;
            c->acc_resyncs += st->ts_resyncs;
            ms_rtp_receiver_free(t->rx);
            t->rx = NULL;
        }
        free(t->fmtp);
        t->fmtp = NULL;
        free(t->control);
        t->control = NULL;
    }
    s->ntracks = 0;
}

/* ---- packets ---- */

void ms_rtsp_cl_count_bytes(ms_rtsp_client_t *c, size_t n)
{
    c->bytes_window += n;
}

void ms_rtsp_cl_arrival(ms_rtsp_sess_t *s)
{
    s->rx_wall_us = ms_wall_us();
    s->rx_mono_ms = ms_mono_ms();
}

static void feed(ms_rtsp_track_t *t, int rtcp, const uint8_t *data, size_t len)
{
    ms_rtsp_sess_t *s = t->s;
    if (!t->rx || s->dead)
        return;
    int64_t now_us = s->rx_wall_us;
    ms_rtsp_cl_count_bytes(s->c, len);
    if (rtcp) {
        (void)ms_rtp_receiver_rtcp(t->rx, data, len, now_us);
    } else {
        s->got_rtp = 1;
        s->last_data_ms = s->rx_mono_ms;
        uint64_t lost0 = ms_rtp_receiver_stats(t->rx)->lost;
        (void)ms_rtp_receiver_rtp(t->rx, data, len, now_us);
        uint64_t lost1 = ms_rtp_receiver_stats(t->rx)->lost;
        if (lost1 > lost0 && s->tcp_transport && len >= 4 &&
            s->last_data_ms - s->gap_log_ms >= 10000) {
            /* TCP loses nothing: a gap in the sequence numbers (RFC 3550
             * 5.1) means the camera never sent those packets (e.g. its
             * send queue overflowed). Said at most every 10 s. */
            s->gap_log_ms = s->last_data_ms;
            MS_WARN(s->c->ctx, "RTP sequence gap over TCP: %llu packet(s) missing before seq %u",
                    (unsigned long long)(lost1 - lost0), ((unsigned)data[2] << 8) | data[3]);
        }
    }
}

void ms_rtsp_cl_interleaved(ms_rtsp_sess_t *s, uint8_t ch, const uint8_t *data, size_t len)
{
    if (s->state != SS_PLAYING)
        return;
    for (int i = 0; i < s->ntracks; i++) {
        ms_rtsp_track_t *t = &s->tracks[i];
        if (t->ch_rtp == ch)
            feed(t, 0, data, len);
        else if (t->ch_rtcp == ch)
            feed(t, 1, data, len);
        else
            continue;
        return;
    }
}

static void on_udp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    (void)h;
    uint8_t *rb = ms_rtsp_cl_read_buf();
    *buf = uv_buf_init((char *)rb, rb ? CL_READ_BUF : 0);
}

static int same_host(const struct sockaddr_storage *a, const struct sockaddr *b)
{
    if (a->ss_family != b->sa_family)
        return 0;
    if (a->ss_family == AF_INET)
        return memcmp(&((const struct sockaddr_in *)a)->sin_addr,
                      &((const struct sockaddr_in *)(const void *)b)->sin_addr,
                      sizeof(struct in_addr)) == 0;
    if (a->ss_family == AF_INET6)
        return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                      &((const struct sockaddr_in6 *)(const void *)b)->sin6_addr,
                      sizeof(struct in6_addr)) == 0;
    return 0;
}

static void on_udp_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
                        const struct sockaddr *addr, unsigned flags)
{
    (void)flags;
    ms_rtsp_track_t *t = h->data;
    ms_rtsp_sess_t *s = t->s;
    if (nread <= 0 || !addr || s->dead || s->state != SS_PLAYING)
        return;
    /* only the server we talk to may feed this track */
    if (!same_host(&s->peer, addr))
        return;
    ms_rtsp_cl_arrival(s);
    feed(t, h == &t->udp[1], (const uint8_t *)buf->base, (size_t)nread);
}

static int bind_udp(int family, uint16_t port)
{
    int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t sl;
    if (family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(port);
        a->sin6_addr = in6addr_any;
        sl = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons(port);
        a->sin_addr.s_addr = htonl(INADDR_ANY);
        sl = sizeof *a;
    }
    int rcvbuf = 1 << 20; /* video bursts (a keyframe is many datagrams) */
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    if (bind(fd, (struct sockaddr *)&ss, sl) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    return fd;
}

/* Binds an even/odd RTP/RTCP port pair (RFC 3550 11) and starts receiving. */
int ms_rtsp_cl_udp_open(ms_rtsp_track_t *t)
{
    ms_rtsp_sess_t *s = t->s;
    int family = s->peer.ss_family == AF_INET6 ? AF_INET6 : AF_INET;
    uint64_t seed = uv_hrtime() ^ ((uint64_t)(uintptr_t)t << 7);
    int fds[2] = {-1, -1};
    uint16_t port = 0;
    for (int i = 0; i < UDP_TRIES; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        port = (uint16_t)(UDP_PORT_MIN + 2 * ((seed >> 33) % (UDP_PORT_PAIRS / 2)));
        fds[0] = bind_udp(family, port);
        if (fds[0] < 0)
            continue;
        fds[1] = bind_udp(family, (uint16_t)(port + 1));
        if (fds[1] >= 0)
            break;
        close(fds[0]);
        fds[0] = -1;
    }
    if (fds[0] < 0 || fds[1] < 0)
        return UV_EADDRINUSE;
    int r = 0;
    for (int k = 0; k < 2; k++) {
        uv_udp_init(s->c->loop, &t->udp[k]);
        t->udp[k].data = t;
        s->pending++;
    }
    t->udp_open = 1; /* closed by the session from now on */
    for (int k = 0; k < 2; k++) {
        int e = uv_udp_open(&t->udp[k], fds[k]);
        if (e < 0) {
            close(fds[k]);
            if (k == 0)
                close(fds[1]);
            return e;
        }
    }
    for (int k = 0; k < 2 && r == 0; k++)
        r = uv_udp_recv_start(&t->udp[k], on_udp_alloc, on_udp_recv);
    t->local_port = port;
    return r;
}

void ms_rtsp_cl_udp_set_server(ms_rtsp_track_t *t, int rtp_port, int rtcp_port)
{
    ms_rtsp_sess_t *s = t->s;
    for (int k = 0; k < 2; k++) {
        t->srv[k] = s->peer;
        uint16_t port = htons((uint16_t)(k == 0 ? rtp_port : rtcp_port));
        if (s->peer.ss_family == AF_INET6)
            ((struct sockaddr_in6 *)&t->srv[k])->sin6_port = port;
        else
            ((struct sockaddr_in *)&t->srv[k])->sin_port = port;
    }
    t->has_srv = 1;
}

static void udp_send(ms_rtsp_track_t *t, int k, const uint8_t *data, size_t len)
{
    if (!t->udp_open || !t->has_srv)
        return;
    uv_buf_t b = uv_buf_init((char *)(uintptr_t)data, (unsigned)len);
    (void)uv_udp_try_send(&t->udp[k], &b, 1, (const struct sockaddr *)&t->srv[k]);
}

/* Opens NAT/firewall state towards the server's ports: a minimal RTP header
 * to the RTP port and an empty RTCP RR (RFC 3550 6.4.2) to the RTCP port. */
void ms_rtsp_cl_udp_punch(ms_rtsp_sess_t *s)
{
    for (int i = 0; i < s->ntracks; i++) {
        ms_rtsp_track_t *t = &s->tracks[i];
        uint8_t rtp[12] = {0x80, (uint8_t)t->pt};
        uint8_t rr[8] = {0x80, 201, 0, 1, 0, 0, 0, (uint8_t)(i + 1)};
        for (int n = 0; n < 2; n++) {
            udp_send(t, 0, rtp, sizeof rtp);
            udp_send(t, 1, rr, sizeof rr);
        }
    }
}

void ms_rtsp_cl_send_rr(ms_rtsp_sess_t *s)
{
    uint8_t buf[4 + 512];
    int64_t now_us = ms_wall_us();
    for (int i = 0; i < s->ntracks && !s->dead; i++) {
        ms_rtsp_track_t *t = &s->tracks[i];
        if (!t->rx)
            continue;
        size_t n = ms_rtp_receiver_rtcp_rr(t->rx, buf + 4, sizeof buf - 4, now_us);
        if (n == 0 || n > sizeof buf - 4)
            continue;
        if (s->tcp_transport) {
            buf[0] = '$';
            buf[1] = (uint8_t)t->ch_rtcp;
            buf[2] = (uint8_t)(n >> 8);
            buf[3] = (uint8_t)n;
            (void)ms_rtsp_cl_send_raw(s, buf, n + 4);
        } else {
            udp_send(t, 1, buf + 4, n);
        }
    }
}

/* ---- status ---- */

void ms_rtsp_cl_stats_tick(ms_rtsp_client_t *c, int64_t now_ms)
{
    if (c->bitrate_since_ms == 0)
        c->bitrate_since_ms = now_ms;
    int64_t el = now_ms - c->bitrate_since_ms;
    if (el < 1000)
        return;
    /* rolling average over the last 5 one-second samples */
    c->bitrate_samples[c->bitrate_pos] = (double)c->bytes_window * 8.0 / (double)el;
    c->bitrate_pos = (c->bitrate_pos + 1) % 5;
    if (c->bitrate_n < 5)
        c->bitrate_n++;
    c->bytes_window = 0;
    c->bitrate_since_ms = now_ms;
    double sum = 0;
    for (int i = 0; i < c->bitrate_n; i++)
        sum += c->bitrate_samples[i];

    uint64_t packets = 0, lost = 0, dropped = 0, malformed = 0, frames = 0, jumps = 0, resyncs = 0;
    ms_rtsp_sess_t *s = c->sess;
    for (int i = 0; s && i < s->ntracks; i++) {
        if (!s->tracks[i].rx)
            continue;
        const ms_rtp_stats_t *st = ms_rtp_receiver_stats(s->tracks[i].rx);
        packets += st->packets;
        lost += st->lost;
        dropped += st->frames_dropped;
        malformed += st->malformed;
        frames += st->frames;
        jumps += st->ts_jumps;
        resyncs += st->ts_resyncs;
    }
    int recent_jumps = ms_src_window_note(&c->jump_window, c->acc_jumps + jumps, now_ms);
    pthread_mutex_lock(&c->lock);
    c->status.bitrate_kbps = sum / c->bitrate_n;
    c->status.rtp_packets = c->acc_packets + packets;
    c->status.rtp_lost = c->acc_lost + lost;
    c->status.frames_dropped = c->acc_dropped + dropped;
    c->status.timestamp_jumps = c->acc_jumps + jumps;
    c->status.timestamp_resyncs = c->acc_resyncs + resyncs;
    if (s && s->play_ms > 0 && c->status.state == MS_STATE_INITIALIZATION &&
        now_ms - s->play_ms >= NO_FRAMES_PROBLEM_MS && packets + malformed > 0 && frames == 0) {
        /* Packets arrive but nothing decodable comes out of them: the camera
         * is reachable but its media is broken. */
        c->status.characteristic = MS_CHAR_PROBLEMATIC;
        snprintf(c->status.reason, sizeof c->status.reason,
                 "RTP received but no usable frame for %lld s (%llu packets, %llu malformed, "
                 "%llu lost, %llu frames dropped)",
                 (long long)((now_ms - s->play_ms) / 1000), (unsigned long long)packets,
                 (unsigned long long)malformed, (unsigned long long)lost,
                 (unsigned long long)dropped);
    }
    if (c->status.state == MS_STATE_ACTIVE) {
        uint64_t total = packets + lost;
        int lossy = total >= LOSS_MIN_PACKETS && lost * 100 > total * LOSS_PROBLEM_PERCENT;
        if (lossy) {
            c->status.characteristic = MS_CHAR_PROBLEMATIC;
            snprintf(c->status.reason, sizeof c->status.reason, "RTP loss %.1f%%",
                     (double)lost * 100.0 / (double)total);
        } else if (recent_jumps >= MS_SRC_JUMPS_PROBLEM) {
            c->status.characteristic = MS_CHAR_PROBLEMATIC;
            snprintf(c->status.reason, sizeof c->status.reason,
                     "RTP timestamps jumped %d times in the last minute", recent_jumps);
        } else if (recent_losses(c, now_ms) >= 3) {
            c->status.characteristic = MS_CHAR_PROBLEMATIC;
            snprintf(c->status.reason, sizeof c->status.reason, "frequent disconnections");
        } else {
            c->status.characteristic = MS_CHAR_OK;
            c->status.reason[0] = '\0';
        }
    }
    pthread_mutex_unlock(&c->lock);
}
