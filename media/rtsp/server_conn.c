/* One RTSP connection of the server on its stream's loop: request handling
 * (RFC 2326 section 10: OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN,
 * GET_PARAMETER), the session (12.37, one per connection), and the bounded
 * TCP-interleaved send queue (10.12) with the slow-client policy of
 * media/rtsp/server.h. */
#include <errno.h>
#include <stdatomic.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "media/rtsp/sdp_out.h"
#include "media/rtsp/server_int.h"
#include "util/clock.h"
#include "util/log.h"

#define PUBLIC_METHODS "OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, GET_PARAMETER"

typedef struct {
    uv_write_t req;
    srv_conn_t *c;
    ms_blob_t *blob; /* NULL: raw bytes follow the struct */
} wreq_t;

static void pump(srv_conn_t *c);

static void write_done(uv_write_t *req, int status)
{
    wreq_t *w = (wreq_t *)req;
    srv_conn_t *c = w->c;
    ms_blob_unref(w->blob);
    free(w);
    if (c->closing)
        return;
    if (status < 0) {
        ms_rtsp_srv_conn_close(c, uv_strerror(status));
        return;
    }
    c->last_progress_ms = ms_mono_ms();
    pump(c); /* more of the queue may go now */
}

static int submit(srv_conn_t *c, wreq_t *w, void *data, size_t len)
{
    if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) == 0)
        c->last_progress_ms = ms_mono_ms();
    w->c = c;
    uv_buf_t b = uv_buf_init(data, (unsigned)len);
    int r = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, write_done);
    if (r != 0) {
        ms_blob_unref(w->blob);
        free(w);
        ms_rtsp_srv_conn_close(c, uv_strerror(r));
        return r;
    }
    if (c->out)
        ms_hub_bytes_out_add(c->out->st.hub, len);
    c->bytes_sent += len;
    return 0;
}

void ms_rtsp_srv_conn_send_raw(srv_conn_t *c, const void *data, size_t len)
{
    if (c->closing)
        return;
    wreq_t *w = malloc(sizeof *w + len);
    if (!w) {
        ms_rtsp_srv_conn_close(c, "out of memory");
        return;
    }
    w->blob = NULL;
    memcpy(w + 1, data, len);
    submit(c, w, w + 1, len);
}

/* Sends one frame's records (consumes p->blob's reference). */
static void write_pkt(srv_conn_t *c, srv_pkt_t *p)
{
    int t = p->track;
    ms_blob_t *b = p->blob;
    if (c->ch_rtp[t] != 2 * t) {
        /* The client chose other interleaved channels: patch a copy. */
        ms_blob_t *cp = ms_blob_new(b->data, b->len);
        ms_blob_unref(b);
        if (!cp) {
            ms_rtsp_srv_conn_close(c, "out of memory");
            return;
        }
        size_t off = 0, pl;
        const uint8_t *pkt;
        while (off < cp->len && ms_rtp_records_next(cp->data, cp->len, &off, &pkt, &pl, NULL) == 1)
            cp->data[pkt - cp->data - 3] = c->ch_rtp[t];
        b = cp;
    }
    wreq_t *w = malloc(sizeof *w);
    if (!w) {
        ms_blob_unref(b);
        ms_rtsp_srv_conn_close(c, "out of memory");
        return;
    }
    w->blob = b;
    submit(c, w, b->data, b->len);
}

static void pump(srv_conn_t *c)
{
    while (!c->closing && c->count &&
           uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) < SRV_WRITE_HIGH) {
        srv_pkt_t p = c->ring[c->head];
        c->head = (c->head + 1) & (c->ring_cap - 1);
        c->count--;
        c->queued_bytes -= p.blob->len;
        write_pkt(c, &p);
    }
}

static void ring_clear(srv_conn_t *c)
{
    while (c->count) {
        ms_blob_unref(c->ring[c->head].blob);
        c->head = (c->head + 1) & (c->ring_cap - 1);
        c->count--;
    }
    c->queued_bytes = 0;
}

/* Doubles the ring (at least 64 slots), keeping the queued order. */
static int ring_grow(srv_conn_t *c)
{
    uint32_t cap = c->ring_cap ? c->ring_cap * 2 : 64;
    srv_pkt_t *r = malloc(cap * sizeof *r);
    if (!r)
        return -ENOMEM;
    for (uint32_t i = 0; i < c->count; i++)
        r[i] = c->ring[(c->head + i) & (c->ring_cap - 1)];
    free(c->ring);
    c->ring = r;
    c->ring_cap = cap;
    c->head = 0;
    return 0;
}

static void udp_send(srv_conn_t *c, const srv_pkt_t *p)
{
    srv_out_t *o = c->out;
    srv_track_t *t = &o->tracks[p->track];
    if (t->udp_state != SRV_UDP_BOUND)
        return;
    size_t off = 0, pl;
    const uint8_t *pkt;
    uint64_t sent = 0;
    while (ms_rtp_records_next(p->blob->data, p->blob->len, &off, &pkt, &pl, NULL) == 1) {
        uv_buf_t b = uv_buf_init((char *)(uintptr_t)pkt, (unsigned)pl);
        if (uv_udp_try_send(&t->rtp, &b, 1, (const struct sockaddr *)&c->udp_rtp[p->track]) < 0)
            c->udp_dropped++;
        else
            sent += pl;
    }
    ms_hub_bytes_out_add(o->st.hub, sent);
    c->bytes_sent += sent;
}

void ms_rtsp_srv_conn_enqueue(srv_conn_t *c, const srv_pkt_t *p)
{
    if (!c->arch)
        ms_rtsp_srv_conn_queue(c, p);
}

void ms_rtsp_srv_conn_queue(srv_conn_t *c, const srv_pkt_t *p)
{
    if (c->closing || c->state != SESS_PLAYING || p->track >= MS_MAX_TRACKS || !c->setup[p->track])
        return;
    if (c->wait_key) {
        if (!p->vkey) {
            c->dropped++;
            return;
        }
        c->wait_key = 0;
    }
    if (!c->tcp_transport) {
        udp_send(c, p);
        return;
    }
    if (c->count >= SRV_QUEUE_CAP + c->q_gop_frames ||
        c->queued_bytes + p->blob->len > SRV_QUEUE_BYTES + c->q_gop_bytes) {
        /* Slow client: drop what is queued and resume at the next video
         * keyframe (nginx-rtmp's resync); close it if it keeps happening. */
        int64_t now = ms_mono_ms();
        c->dropped += c->count + 1;
        ring_clear(c);
        c->overflow_ms[c->overflows % SRV_OVERFLOW_LIMIT] = now;
        c->overflows++;
        if (c->overflows >= SRV_OVERFLOW_LIMIT &&
            now - c->overflow_ms[c->overflows % SRV_OVERFLOW_LIMIT] <= SRV_OVERFLOW_WIN_MS) {
            ms_rtsp_srv_conn_close(c, "too slow (queue overflowed repeatedly)");
            return;
        }
        MS_WARN(c->ctx, "send queue overflow: dropped to the next keyframe");
        if ((c->arch || c->out->has_video) && !p->vkey) {
            c->wait_key = 1;
            return;
        }
    }
    if (c->count == c->ring_cap && ring_grow(c) != 0) {
        ms_rtsp_srv_conn_close(c, "out of memory");
        return;
    }
    c->ring[(c->head + c->count) & (c->ring_cap - 1)] =
        (srv_pkt_t){ms_blob_ref(p->blob), p->track, p->vkey};
    c->count++;
    c->queued_bytes += p->blob->len;
    pump(c);
}

void ms_rtsp_srv_conn_end_session(srv_conn_t *c)
{
    ring_clear(c);
    if (c->sess) {
        const ms_rtsp_server_cfg_t *cf = &c->srv->cfg;
        if (cf->session_bytes)
            cf->session_bytes(cf->ud, c->sess, c->bytes_sent);
        if (cf->session_close)
            cf->session_close(cf->ud, c->sess);
        c->sess = NULL;
    }
    if (c->counted_client && c->out)
        ms_hub_clients_add(c->out->st.hub, -1);
    c->counted_client = 0;
    c->state = SESS_NONE;
    c->session[0] = '\0';
    c->was_played = 0;
    c->wait_key = 0;
    memset(c->setup, 0, sizeof c->setup);
}

static void conn_closed(uv_handle_t *h)
{
    srv_conn_t *c = h->data;
    ring_clear(c);
    free(c->ring);
    free(c);
}

void ms_rtsp_srv_conn_close(srv_conn_t *c, const char *why)
{
    if (c->closing)
        return;
    if (c->dropped || c->udp_dropped)
        MS_INFO(c->ctx, "closed: %s (dropped %llu frames, %llu UDP packets)", why,
                (unsigned long long)c->dropped, (unsigned long long)c->udp_dropped);
    else
        MS_INFO(c->ctx, "closed: %s", why);
    ms_rtsp_srv_conn_end_session(c);
    ms_rtsp_srv_arch_detach(c->arch);
    c->arch = NULL;
    c->closing = 1;
    /* released here, not in conn_closed: the server (and its table) may be
     * gone once the last connection has detached */
    if (c->ip_counted)
        ms_connlimit_release(c->srv->conns, &c->ip);
    c->ip_counted = 0;
    ms_rtsp_parser_free(&c->parser);
    srv_out_t *o = c->out;
    c->out = NULL;
    uv_close((uv_handle_t *)&c->tcp, conn_closed);
    if (o)
        ms_rtsp_srv_out_detach(o, c);
}

void ms_rtsp_srv_conn_tick(srv_conn_t *c, int64_t now)
{
    if (c->closing)
        return;
    /* the decision lapses with its token: the session ends (at most one
     * tick, 1 s, late) */
    if (c->authorized && c->grant.expires && ms_wall_us() / 1000000 >= c->grant.expires) {
        ms_rtsp_srv_conn_close(c, "token expired");
        return;
    }
    if (now - c->last_activity_ms > (int64_t)c->srv->cfg.session_timeout_s * 1000) {
        ms_rtsp_srv_conn_close(c, "session timeout");
        return;
    }
    if (c->sess && c->srv->cfg.session_bytes)
        c->srv->cfg.session_bytes(c->srv->cfg.ud, c->sess, c->bytes_sent);
    if (c->tcp_transport && c->state == SESS_PLAYING &&
        (c->count || uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > 0) &&
        now - c->last_progress_ms > SRV_STALL_MS) {
        ms_rtsp_srv_conn_close(c, "too slow (no write progress)");
        return;
    }
}

/* ---- requests ---- */

static void reply(srv_conn_t *c, int status, long cseq, const char *extra, const char *ctype,
                  const void *body, size_t len)
{
    char sess[64] = "";
    if (c->session[0])
        snprintf(sess, sizeof sess, "%s;timeout=%u", c->session, c->srv->cfg.session_timeout_s);
    char hdr[4096];
    snprintf(hdr, sizeof hdr, "Server: mediaserver\r\n%s", extra ? extra : "");
    ms_buf_t b = MS_BUF_INIT;
    if (ms_rtsp_build_response(&b, status, NULL, cseq, sess[0] ? sess : NULL, hdr, ctype, body,
                               len) == 0)
        ms_rtsp_srv_conn_send_raw(c, b.data, b.len);
    ms_buf_free(&b);
}

static int check_session(srv_conn_t *c, const ms_rtsp_msg_t *m)
{
    const char *v = ms_rtsp_msg_header(m, "Session");
    if (!v)
        return c->session[0] ? 0 : -1; /* lenient: same connection */
    char id[64];
    int to;
    if (ms_rtsp_session_parse(v, id, sizeof id, &to) != 0)
        return -1;
    return c->session[0] && strcmp(id, c->session) == 0 ? 0 : -1;
}

/* "<base>/trackID=N[?query]"; -ENAMETOOLONG when it does not fit. */
static int make_control(char *out, size_t cap, const ms_rtsp_target_t *t, int track)
{
    ms_buf_t b = MS_BUF_INIT;
    ms_buf_printf(&b, "%s/trackID=%d%s%s", t->base, track, t->query[0] ? "?" : "", t->query);
    int r = b.err || b.len >= cap ? -ENAMETOOLONG : 0;
    if (r == 0) {
        memcpy(out, b.data, b.len);
        out[b.len] = '\0';
    }
    ms_buf_free(&b);
    return r;
}

static void do_describe(srv_conn_t *c, long cseq, const ms_rtsp_target_t *t)
{
    srv_out_t *o = c->out;
    if (ms_rtsp_srv_out_prepare(o) < 0) {
        reply(c, 503, cseq, "Retry-After: 2\r\n", NULL, NULL, 0);
        return;
    }
    ms_sdp_out_track_t tracks[MS_MAX_TRACKS];
    int n = 0;
    for (int i = 0; i < o->ntracks; i++) {
        if (!o->tracks[i].active)
            continue;
        /* Absolute control URLs keep the query (token) and do not depend on
         * how a client resolves relative ones against a base with a query. */
        if (make_control(c->control[i], sizeof c->control[i], t, i) < 0) {
            reply(c, 414, cseq, NULL, NULL, NULL, 0);
            return;
        }
        tracks[n++] = (ms_sdp_out_track_t){&o->tracks[i].params, o->tracks[i].pt, c->control[i]};
    }
    char addr[64] = "0.0.0.0";
    struct sockaddr_storage self;
    int sl = sizeof self;
    if (uv_tcp_getsockname(&c->tcp, (struct sockaddr *)&self, &sl) == 0)
        uv_ip_name((struct sockaddr *)&self, addr, sizeof addr);
    ms_buf_t sdp = MS_BUF_INIT;
    if (ms_sdp_write(&sdp, o->st.name, addr, (uint64_t)ms_wall_us() / 1000000, tracks, n) <= 0) {
        ms_buf_free(&sdp);
        reply(c, 500, cseq, NULL, NULL, NULL, 0);
        return;
    }
    char extra[2200];
    snprintf(extra, sizeof extra, "Content-Base: %s/\r\n", t->base);
    reply(c, 200, cseq, extra, "application/sdp", sdp.data, sdp.len);
    ms_buf_free(&sdp);
}

static void do_setup(srv_conn_t *c, const ms_rtsp_msg_t *m, long cseq, const ms_rtsp_target_t *t)
{
    srv_out_t *o = c->out;
    srv_arch_t *a = c->arch;
    if (a && !a->opened) {
        reply(c, 455, cseq, NULL, NULL, NULL, 0); /* DESCRIBE opens the archive */
        return;
    }
    if (!a && ms_rtsp_srv_out_prepare(o) < 0) {
        reply(c, 503, cseq, NULL, NULL, NULL, 0);
        return;
    }
    int ntracks = a ? a->ntracks : o->ntracks;
    int track = t->track;
    if (track < 0 && ntracks == 1)
        track = 0;
    if (track < 0) {
        reply(c, 459, cseq, NULL, NULL, NULL, 0); /* Aggregate Operation Not Allowed */
        return;
    }
    if (track >= ntracks || (a ? !a->pk_ok[track] : !o->tracks[track].active)) {
        reply(c, 404, cseq, NULL, NULL, NULL, 0);
        return;
    }
    if (ms_rtsp_msg_header(m, "Session") && check_session(c, m) != 0) {
        reply(c, 454, cseq, NULL, NULL, NULL, 0);
        return;
    }
    const char *th = ms_rtsp_msg_header(m, "Transport");
    ms_rtsp_transport_t tr;
    int found = 0;
    for (int i = 0; th && i < 8 && !found; i++) {
        int r = ms_rtsp_transport_parse(th, i, &tr);
        if (r == -ENOENT)
            break;
        if (r != 0 || tr.multicast || (tr.mode[0] && strcasecmp(tr.mode, "PLAY") != 0))
            continue;
        if (!tr.tcp && !tr.has_client_port)
            continue;
        if (a && !tr.tcp)
            continue; /* archive sessions: TCP-interleaved only */
        if (c->session[0] && c->tcp_transport != tr.tcp)
            continue; /* one transport per session */
        found = 1;
    }
    if (!found) {
        reply(c, 461, cseq, NULL, NULL, NULL, 0);
        return;
    }
    char thdr[512];
    srv_track_t *st = &o->tracks[track];
    uint32_t ssrc = a ? a->pk[track].cfg.ssrc : st->pk.cfg.ssrc;
    if (tr.tcp) {
        int ca = tr.has_interleaved ? tr.interleaved[0] : 2 * track;
        int cb = tr.has_interleaved ? tr.interleaved[1] : 2 * track + 1;
        if (ca < 0 || ca > 255 || cb < 0 || cb > 255) {
            reply(c, 461, cseq, NULL, NULL, NULL, 0);
            return;
        }
        c->ch_rtp[track] = (uint8_t)ca;
        c->ch_rtcp[track] = (uint8_t)cb;
        snprintf(thdr, sizeof thdr,
                 "Transport: RTP/AVP/TCP;unicast;interleaved=%d-%d;ssrc=%08X\r\n", ca, cb, ssrc);
    } else {
        int port = ms_rtsp_srv_out_udp(o, track);
        if (port < 0) {
            MS_WARN(c->ctx, "no UDP port pair: %s", strerror(-port));
            reply(c, 500, cseq, NULL, NULL, NULL, 0);
            return;
        }
        int cp0 = tr.client_port[0], cp1 = tr.client_port[1] ? tr.client_port[1] : cp0 + 1;
        if (cp0 <= 0 || cp0 > 65535 || cp1 <= 0 || cp1 > 65535) {
            reply(c, 461, cseq, NULL, NULL, NULL, 0);
            return;
        }
        /* Packets go to the address of the control connection (never to a
         * Transport "destination": no reflection to third parties). */
        c->udp_rtp[track] = c->peer;
        c->udp_rtcp[track] = c->peer;
        if (c->peer.ss_family == AF_INET6) {
            ((struct sockaddr_in6 *)&c->udp_rtp[track])->sin6_port = htons((uint16_t)cp0);
            ((struct sockaddr_in6 *)&c->udp_rtcp[track])->sin6_port = htons((uint16_t)cp1);
        } else {
            ((struct sockaddr_in *)&c->udp_rtp[track])->sin_port = htons((uint16_t)cp0);
            ((struct sockaddr_in *)&c->udp_rtcp[track])->sin_port = htons((uint16_t)cp1);
        }
        snprintf(thdr, sizeof thdr,
                 "Transport: RTP/AVP;unicast;client_port=%d-%d;server_port=%d-%d;ssrc=%08X\r\n",
                 cp0, cp1, port, port + 1, st->pk.cfg.ssrc);
    }
    if (!c->session[0]) {
        uint8_t rnd[8];
        if (RAND_bytes(rnd, sizeof rnd) != 1) {
            reply(c, 500, cseq, NULL, NULL, NULL, 0);
            return;
        }
        for (int i = 0; i < 8; i++)
            snprintf(c->session + 2 * i, 3, "%02X", rnd[i]);
        c->state = SESS_READY;
        c->tcp_transport = tr.tcp;
        c->counted_client = 1;
        ms_hub_clients_add(o->st.hub, 1);
        if (c->srv->cfg.session_open)
            c->sess = c->srv->cfg.session_open(c->srv->cfg.ud, o->st.ref,
                                               (const struct sockaddr *)&c->peer,
                                               ms_rtsp_msg_header(m, "User-Agent"), c->id);
        (void)st;
    }
    if (!c->control[track][0] &&
        make_control(c->control[track], sizeof c->control[track], t, track) < 0)
        c->control[track][0] = '\0';
    c->setup[track] = 1;
    reply(c, 200, cseq, thdr, NULL, NULL, 0);
}

static void do_play(srv_conn_t *c, const ms_rtsp_msg_t *m, long cseq)
{
    srv_out_t *o = c->out;
    if (check_session(c, m) != 0) {
        reply(c, 454, cseq, NULL, NULL, NULL, 0);
        return;
    }
    int any = 0;
    for (int i = 0; i < MS_MAX_TRACKS; i++)
        any |= c->setup[i];
    if (!any) {
        reply(c, 455, cseq, NULL, NULL, NULL, 0);
        return;
    }
    if (c->state == SESS_PLAYING) {
        reply(c, 200, cseq, "Range: npt=now-\r\n", NULL, NULL, 0);
        return;
    }
    char info[MS_MAX_TRACKS * 2300];
    ms_rtsp_srv_out_play(o, c, c->was_played, info, sizeof info);
    char extra[sizeof info + 64];
    snprintf(extra, sizeof extra, "Range: npt=now-\r\n%s%s%s", info[0] ? "RTP-Info: " : "", info,
             info[0] ? "\r\n" : "");
    reply(c, 200, cseq, extra, NULL, NULL, 0);
    if (c->closing)
        return;
    c->state = SESS_PLAYING;
    int resume = c->was_played;
    c->was_played = 1;
    c->last_progress_ms = ms_mono_ms();
    MS_INFO(c->ctx, "playing over %s", c->tcp_transport ? "TCP" : "UDP");
    ms_rtsp_srv_out_start(o, c, resume);
}

/* ---- archive sessions (?from=, server_arch.c) ---- */

static void arch_describe_reply(srv_conn_t *c, long cseq)
{
    srv_arch_t *a = c->arch;
    ms_sdp_out_track_t tracks[MS_MAX_TRACKS];
    int n = 0;
    for (int i = 0; i < a->ntracks; i++) {
        if (!a->pk_ok[i])
            continue;
        ms_rtsp_target_t t;
        memset(&t, 0, sizeof t);
        snprintf(t.base, sizeof t.base, "%s", c->arch_base);
        if (make_control(c->control[i], sizeof c->control[i], &t, i) < 0) {
            reply(c, 414, cseq, NULL, NULL, NULL, 0);
            return;
        }
        tracks[n++] = (ms_sdp_out_track_t){&a->params[i], a->pt[i], c->control[i]};
    }
    ms_buf_t sdp = MS_BUF_INIT;
    if (ms_sdp_write(&sdp, c->out ? c->out->st.name : "archive", "0.0.0.0",
                     (uint64_t)ms_wall_us() / 1000000, tracks, n) <= 0) {
        ms_buf_free(&sdp);
        reply(c, 500, cseq, NULL, NULL, NULL, 0);
        return;
    }
    char extra[2200];
    snprintf(extra, sizeof extra, "Content-Base: %s/\r\n", c->arch_base);
    reply(c, 200, cseq, extra, "application/sdp", sdp.data, sdp.len);
    ms_buf_free(&sdp);
}

/* "YYYYMMDDTHHMMSS.mmmZ" (RFC 2326 3.7 utc-time). */
static void clock_str(int64_t ms, char *out, size_t cap)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    snprintf(out, cap, "%04d%02d%02dT%02d%02d%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

static void arch_play_reply(srv_conn_t *c, long cseq)
{
    srv_arch_t *a = c->arch;
    char info[MS_MAX_TRACKS * 2300];
    ms_rtsp_srv_arch_rtpinfo(a, info, sizeof info);
    char clk[40];
    clock_str(a->start_ms, clk, sizeof clk);
    char extra[sizeof info + 128];
    snprintf(extra, sizeof extra, "Range: clock=%s-\r\n%s%s%s", clk, info[0] ? "RTP-Info: " : "",
             info, info[0] ? "\r\n" : "");
    reply(c, 200, cseq, extra, NULL, NULL, 0);
    if (c->closing)
        return;
    c->state = SESS_PLAYING;
    c->was_played = 1;
    c->last_progress_ms = ms_mono_ms();
    MS_INFO(c->ctx, "archive playing from %s", clk);
    ms_rtsp_srv_arch_start(a);
}

void ms_rtsp_srv_conn_arch_done(srv_conn_t *c, int rc)
{
    int what = c->arch_pending;
    long cseq = c->arch_cseq;
    c->arch_pending = 0;
    if (c->closing)
        return;
    if (rc < 0) {
        MS_INFO(c->ctx, "archive open: %s", strerror(-rc));
        reply(c, rc == -ENOENT ? 404 : what == 2 ? 457 : 500, cseq, NULL, NULL, NULL, 0);
    } else if (what == 1) {
        arch_describe_reply(c, cseq);
    } else if (what == 2) {
        arch_play_reply(c, cseq);
    }
    if (!c->closing)
        ms_rtsp_srv_conn_input(c, NULL, 0); /* requests that waited */
}

static void arch_describe(srv_conn_t *c, long cseq, const ms_rtsp_target_t *t, int64_t from_ms)
{
    snprintf(c->arch_base, sizeof c->arch_base, "%s", t->base);
    if (c->arch->opened) {
        arch_describe_reply(c, cseq);
        return;
    }
    c->arch_pending = 1;
    c->arch_cseq = cseq;
    if (ms_rtsp_srv_arch_open(c->arch, from_ms) < 0) {
        c->arch_pending = 0;
        reply(c, 503, cseq, "Retry-After: 1\r\n", NULL, NULL, 0);
    }
}

static void arch_play(srv_conn_t *c, const ms_rtsp_msg_t *m, long cseq)
{
    srv_arch_t *a = c->arch;
    if (check_session(c, m) != 0) {
        reply(c, 454, cseq, NULL, NULL, NULL, 0);
        return;
    }
    int any = 0;
    for (int i = 0; i < MS_MAX_TRACKS; i++)
        any |= c->setup[i];
    if (!any || !a->opened) {
        reply(c, 455, cseq, NULL, NULL, NULL, 0);
        return;
    }
    /* Range (RFC 2326 12.29): clock= seeks to that UTC time; npt= counts
     * from the time the session was opened at (npt=0 at the first PLAY
     * keeps the position). */
    int64_t seek = -1;
    const char *rh = ms_rtsp_msg_header(m, "Range");
    ms_rtsp_range_t r;
    if (rh && ms_rtsp_range_parse(rh, &r) == 0 && r.has_start && !r.start_now) {
        if (r.kind == MS_RANGE_CLOCK)
            seek = r.start_us / 1000;
        else if (r.kind == MS_RANGE_NPT && (c->was_played || r.start_s > 0.0005))
            seek = a->at_ms + (int64_t)(r.start_s * 1000.0);
    }
    if (seek < 0 && (a->at_ms < c->grant.from_ms || a->at_ms >= c->grant.to_ms)) {
        /* the position was allowed by an earlier decision of this
         * connection, not by the current one */
        MS_INFO(c->ctx, "archive position outside the session's window refused");
        reply(c, 457, cseq, NULL, NULL, NULL, 0);
        return;
    }
    if (seek < 0) {
        arch_play_reply(c, cseq);
        return;
    }
    /* a seek is held to the session's window (the archive window rule,
     * docs/access.md): outside it, 457 Invalid Range (RFC 2326 11.3.12) */
    if (seek < c->grant.from_ms || seek >= c->grant.to_ms) {
        MS_INFO(c->ctx, "seek outside the session's archive window refused");
        reply(c, 457, cseq, NULL, NULL, NULL, 0);
        return;
    }
    c->state = SESS_READY;
    ms_rtsp_srv_arch_pause(a);
    c->arch_pending = 2;
    c->arch_cseq = cseq;
    if (ms_rtsp_srv_arch_open(a, seek) < 0) {
        c->arch_pending = 0;
        reply(c, 503, cseq, "Retry-After: 1\r\n", NULL, NULL, 0);
    }
}

static void handle_request(srv_conn_t *c, const ms_rtsp_msg_t *m)
{
    srv_out_t *o = c->out;
    long cseq = ms_rtsp_msg_cseq(m);
    if (cseq < 0) {
        reply(c, 400, -1, NULL, NULL, NULL, 0);
        return;
    }
    const char *method = m->method;
    ms_rtsp_target_t *t = malloc(sizeof *t);
    if (!t) {
        reply(c, 500, cseq, NULL, NULL, NULL, 0);
        return;
    }
    int tr = ms_rtsp_target_parse(m->uri, t);
    if (tr == -EINVAL) {
        reply(c, 400, cseq, NULL, NULL, NULL, 0);
        goto out;
    }
    if (tr == 0 && strcmp(t->stream, o->st.name) != 0 && strcmp(t->stream, o->st.uid) != 0) {
        reply(c, 404, cseq, NULL, NULL, NULL, 0); /* another stream on this connection */
        goto out;
    }
    /* The playback decision (media/rtsp/server.h authorize): for every
     * request that names another resource than the one last allowed (its
     * query: ?token=, ?from=), not once per connection; a request without a
     * query (the Content-Base of the DESCRIBE, "*") keeps the last one. */
    int is_options = strcmp(method, "OPTIONS") == 0;
    int needs_auth = (is_options && tr == 0) || strcmp(method, "DESCRIBE") == 0 ||
                     strcmp(method, "SETUP") == 0 || strcmp(method, "PLAY") == 0;
    const char *key = tr == 0 ? t->query : "";
    if (needs_auth && c->authorized && (!key[0] || strcmp(key, c->auth_query) == 0))
        needs_auth = 0;
    if (needs_auth) {
        ms_rtsp_grant_t g = {INT64_MIN, INT64_MAX, 0};
        int code = 200;
        char www[512] = "";
        /* on a connection with an archive session a request without from=
         * acts on that session: it is decided as the archive at its time */
        char dq[sizeof t->query + 32];
        int64_t qms = 0;
        const char *decide_q = key;
        if (c->arch && !ms_rtsp_archive_query(key, &qms)) {
            snprintf(dq, sizeof dq, "from=%lld%s%s", (long long)(c->arch->at_ms / 1000),
                     key[0] ? "&" : "", key);
            decide_q = dq;
        }
        if (c->srv->cfg.authorize)
            code = c->srv->cfg.authorize(
                c->srv->cfg.ud, o->st.name, decide_q, (const struct sockaddr *)&c->peer,
                ms_rtsp_msg_header(m, "Authorization"), method, m->uri, www, sizeof www, &g);
        if (code != 200) {
            char extra[600] = "";
            if (code == 401 && www[0] && !strpbrk(www, "\r\n"))
                snprintf(extra, sizeof extra, "WWW-Authenticate: %s\r\n", www);
            if (code != 401 && code != 403 && code != 404)
                code = 403;
            /* the authorize hook logs refusals, rate-limited */
            MS_DEBUG(c->ctx, "%s refused: %d", method, code);
            reply(c, code, cseq, extra[0] ? extra : NULL, NULL, NULL, 0);
            goto out;
        }
        c->authorized = 1;
        snprintf(c->auth_query, sizeof c->auth_query, "%s", key);
        c->grant = g;
        if (c->arch)
            c->arch->end_ms = g.to_ms;
    }
    if (is_options) {
        reply(c, 200, cseq, "Public: " PUBLIC_METHODS "\r\n", NULL, NULL, 0);
        goto out;
    }
    needs_auth = strcmp(method, "DESCRIBE") == 0 || strcmp(method, "SETUP") == 0 ||
                 strcmp(method, "PLAY") == 0;
    int64_t from_ms = 0;
    int has_from = tr == 0 && c->srv->cfg.archive_open && ms_rtsp_archive_query(t->query, &from_ms);
    if (has_from && !c->arch && needs_auth) {
        c->arch = ms_rtsp_srv_arch_new(c, o->st.uid);
        if (!c->arch) {
            reply(c, 500, cseq, NULL, NULL, NULL, 0);
            goto out;
        }
        c->arch->end_ms = c->grant.to_ms;
    }
    if (c->arch && strcmp(method, "DESCRIBE") == 0) {
        if (!has_from)
            from_ms = c->arch->at_ms;
        arch_describe(c, cseq, t, from_ms);
    } else if (c->arch && strcmp(method, "PLAY") == 0) {
        arch_play(c, m, cseq);
    } else if (c->arch && strcmp(method, "PAUSE") == 0) {
        if (check_session(c, m) != 0) {
            reply(c, 454, cseq, NULL, NULL, NULL, 0);
        } else {
            if (c->state == SESS_PLAYING)
                c->state = SESS_READY;
            ms_rtsp_srv_arch_pause(c->arch);
            reply(c, 200, cseq, NULL, NULL, NULL, 0);
        }
    } else if (strcmp(method, "DESCRIBE") == 0) {
        if (tr != 0)
            reply(c, 404, cseq, NULL, NULL, NULL, 0);
        else
            do_describe(c, cseq, t);
    } else if (strcmp(method, "SETUP") == 0) {
        if (tr != 0)
            reply(c, 404, cseq, NULL, NULL, NULL, 0);
        else
            do_setup(c, m, cseq, t);
    } else if (strcmp(method, "PLAY") == 0) {
        do_play(c, m, cseq);
    } else if (strcmp(method, "PAUSE") == 0) {
        if (check_session(c, m) != 0) {
            reply(c, 454, cseq, NULL, NULL, NULL, 0);
        } else {
            if (c->state == SESS_PLAYING)
                c->state = SESS_READY;
            ring_clear(c);
            reply(c, 200, cseq, NULL, NULL, NULL, 0);
        }
    } else if (strcmp(method, "TEARDOWN") == 0) {
        if (check_session(c, m) != 0) {
            reply(c, 454, cseq, NULL, NULL, NULL, 0);
        } else {
            ms_rtsp_srv_conn_end_session(c);
            if (c->arch)
                ms_rtsp_srv_arch_pause(c->arch);
            reply(c, 200, cseq, NULL, NULL, NULL, 0);
        }
    } else if (strcmp(method, "GET_PARAMETER") == 0 || strcmp(method, "SET_PARAMETER") == 0) {
        if (ms_rtsp_msg_header(m, "Session") && check_session(c, m) != 0)
            reply(c, 454, cseq, NULL, NULL, NULL, 0);
        else
            reply(c, 200, cseq, NULL, NULL, NULL, 0);
    } else if (strcmp(method, "ANNOUNCE") == 0 || strcmp(method, "RECORD") == 0 ||
               strcmp(method, "REDIRECT") == 0) {
        reply(c, 405, cseq, "Allow: " PUBLIC_METHODS "\r\n", NULL, NULL, 0);
    } else {
        reply(c, 501, cseq, NULL, NULL, NULL, 0);
    }
out:
    free(t);
}

void ms_rtsp_srv_conn_input(srv_conn_t *c, const uint8_t *data, size_t len)
{
    if (c->closing)
        return;
    if (len && ms_rtsp_parser_feed(&c->parser, data, len) != 0) {
        ms_rtsp_srv_conn_close(c, "bad request stream");
        return;
    }
    for (;;) {
        if (c->arch && (c->arch->inflight == 1 || c->arch_pending)) {
            c->input_paused = 1; /* the next request waits for the archive */
            return;
        }
        c->input_paused = 0;
        ms_rtsp_event_t ev;
        int r = ms_rtsp_parser_next(&c->parser, &ev);
        if (r == 0)
            return;
        if (r < 0) {
            reply(c, 400, -1, NULL, NULL, NULL, 0);
            ms_rtsp_srv_conn_close(c, "malformed request");
            return;
        }
        c->last_activity_ms = ms_mono_ms();
        if (ev.type == MS_RTSP_EV_MESSAGE) {
            if (ev.msg.is_request)
                handle_request(c, &ev.msg);
        }
        /* interleaved frames from the client are RTCP RR: keepalive only */
        if (c->closing)
            return;
    }
}

static void conn_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)h;
    (void)hint;
    static _Thread_local char rx[16384];
    buf->base = rx;
    buf->len = sizeof rx;
}

static void conn_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    srv_conn_t *c = s->data;
    if (nread < 0) {
        ms_rtsp_srv_conn_close(c, nread == UV_EOF ? "peer closed" : uv_strerror((int)nread));
        return;
    }
    ms_rtsp_srv_conn_input(c, (const uint8_t *)buf->base, (size_t)nread);
}

srv_conn_t *ms_rtsp_srv_conn_new(srv_out_t *o, int fd)
{
    srv_conn_t *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return NULL;
    }
    static atomic_uint_fast64_t next_id;
    c->srv = o->srv;
    c->out = o;
    c->id = atomic_fetch_add(&next_id, 1) + 1;
    uv_tcp_init(o->st.loop, &c->tcp);
    c->tcp.data = c;
    if (uv_tcp_open(&c->tcp, fd) != 0) {
        close(fd);
        c->closing = 1;
        uv_close((uv_handle_t *)&c->tcp, conn_closed);
        return NULL;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    int sz = SRV_SNDBUF;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    int pl = sizeof c->peer;
    uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&c->peer, &pl);
    char ip[48] = "?";
    uv_ip_name((struct sockaddr *)&c->peer, ip, sizeof ip);
    int port = c->peer.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&c->peer)->sin6_port)
                                             : ntohs(((struct sockaddr_in *)&c->peer)->sin_port);
    snprintf(c->peer_str, sizeof c->peer_str, "%s:%d", ip, port);
    snprintf(c->ctx, sizeof c->ctx, "%s [client %s]", o->ctx, c->peer_str);
    ms_rtsp_parser_init(&c->parser);
    c->last_activity_ms = c->last_progress_ms = ms_mono_ms();
    c->next = o->conns;
    o->conns = c;
    o->nconns++;
    uv_read_start((uv_stream_t *)&c->tcp, conn_alloc, conn_read);
    MS_DEBUG(c->ctx, "connected");
    return c;
}

srv_conn_t *ms_rtsp_srv_conn_find(ms_rtsp_server_t *srv, void *exec, uint64_t id)
{
    srv_conn_t *found = NULL;
    pthread_mutex_lock(&srv->mu);
    for (srv_out_t *o = srv->outs; o && !found; o = o->next)
        if (o->st.exec == exec) /* this loop's out: its conns are ours to read */
            for (srv_conn_t *c = o->conns; c; c = c->next)
                if (c->id == id && !c->closing) {
                    found = c;
                    break;
                }
    pthread_mutex_unlock(&srv->mu);
    return found;
}
