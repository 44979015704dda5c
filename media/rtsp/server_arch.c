/* Archive replay of one RTSP connection (media/rtsp/server_int.h): the
 * archive handle is opened and read on the libuv threadpool (uv_queue_work;
 * never blocking the stream loop), at most one work at a time; the frames
 * read ahead are packetized per session (media/rtp/packetize.h, RFC 3550
 * 5.1) and sent in real time, paced by their wall time with a 10 ms timer
 * (a recording hole, MS_FRAME_DISCONT, is skipped without waiting). An RTCP
 * SR (RFC 3550 6.4.1) maps the RTP timestamps to the archive's wall time.
 * TCP-interleaved sessions only (RFC 2326 10.12). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "media/rtsp/sdp_out.h"
#include "media/rtsp/server_int.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/token.h"
#include "util/urlquery.h"

#define TICK_MS     10
#define RETRY_MS    500 /* read again after "nothing more yet" */
#define LOW_WATER   64  /* frames queued: read more below this */
#define SR_EVERY_MS 5000

static uint32_t rand32(void)
{
    uint32_t v = 0;
    if (RAND_bytes((unsigned char *)&v, sizeof v) != 1)
        v = (uint32_t)ms_mono_us() * 2654435761u;
    return v;
}

int ms_rtsp_archive_query(const char *query, int64_t *ms)
{
    char v[64];
    if (!query || !query[0] || ms_url_query_get(query, strlen(query), "from", v, sizeof v) < 0)
        return 0;
    char *end = NULL;
    long long s = strtoll(v, &end, 10);
    if (end && *end == '\0' && s > 0 && s <= MS_ARCHIVE_FROM_MAX) {
        *ms = (int64_t)s * 1000;
        return 1;
    }
    /* RFC 2326 3.7 utc-time form, as in Range: clock= */
    char hdr[96];
    snprintf(hdr, sizeof hdr, "clock=%s-", v);
    ms_rtsp_range_t r;
    if (ms_rtsp_range_parse(hdr, &r) == 0 && r.kind == MS_RANGE_CLOCK && r.has_start) {
        *ms = r.start_us / 1000;
        return 1;
    }
    return 0;
}

static void q_clear(srv_arch_t *a)
{
    while (a->qn) {
        ms_frame_unref(a->q[a->qh]);
        a->qh = (a->qh + 1) % ARCH_QCAP;
        a->qn--;
    }
    for (int i = 0; i < a->wn; i++)
        ms_frame_unref(a->wq[i]);
    a->wn = 0;
}

static void arch_free_now(srv_arch_t *a);

static void timer_closed(uv_handle_t *h)
{
    srv_arch_t *a = h->data;
    ms_buf_free(&a->scratch);
    free(a);
}

static void arch_free_now(srv_arch_t *a)
{
    q_clear(a);
    /* closing the handle only frees memory and a descriptor */
    if (a->h)
        a->srv->cfg.archive_close(a->srv->cfg.ud, a->h);
    if (a->old_h)
        a->srv->cfg.archive_close(a->srv->cfg.ud, a->old_h);
    a->h = a->old_h = NULL;
    uv_close((uv_handle_t *)&a->timer, timer_closed);
}

/* ---- threadpool ---- */

static void work_run(uv_work_t *w)
{
    srv_arch_t *a = w->data;
    const ms_rtsp_server_cfg_t *cfg = &a->srv->cfg;
    if (a->old_h) {
        cfg->archive_close(cfg->ud, a->old_h);
        a->old_h = NULL;
    }
    if (a->inflight == 1) {
        a->work_rc = cfg->archive_open(cfg->ud, a->uid, a->at_ms, &a->h, a->params, &a->ntracks,
                                       &a->start_ms);
        return;
    }
    a->work_rc = 0;
    while (a->wn < ARCH_FILL) {
        ms_frame_t *f = NULL;
        int r = cfg->archive_read(cfg->ud, a->h, &f);
        if (r <= 0) {
            a->work_rc = r;
            break;
        }
        a->wq[a->wn++] = f;
        a->work_rc = 1;
    }
}

static void setup_packetizers(srv_arch_t *a)
{
    for (int i = 0; i < a->ntracks; i++) {
        const ms_codec_params_t *p = &a->params[i];
        uint16_t seq = a->pk_ok[i] ? a->pk[i].seq : (uint16_t)rand32();
        uint32_t ssrc = a->pk_ok[i] ? a->pk[i].cfg.ssrc : rand32();
        ms_rtp_packetizer_cfg_t c = {
            .codec = p->codec,
            .pt = (uint8_t)ms_sdp_out_pt(p, i),
            .channel = (uint8_t)(2 * i),
            .clock_rate = p->clock_rate ? p->clock_rate : 90000,
            .ssrc = ssrc,
            .seq = seq,
            .ts_offset = rand32(),
            .mtu = MS_RTP_DEFAULT_MTU,
            .channels = p->channels,
        };
        a->pt[i] = c.pt;
        a->pk_ok[i] = ms_rtp_packetizer_init(&a->pk[i], &c) == 0;
        a->has_last[i] = 0;
    }
}

static void work_done(uv_work_t *w, int status)
{
    srv_arch_t *a = w->data;
    int op = a->inflight;
    a->inflight = 0;
    if (!a->c) {
        arch_free_now(a);
        return;
    }
    if (status < 0)
        a->work_rc = -ECANCELED;
    if (op == 1) {
        if (a->work_rc == 0) {
            a->opened = 1;
            a->at_end = 0;
            setup_packetizers(a); /* a seek keeps SSRC and seq, new RTP timeline */
        }
        ms_rtsp_srv_conn_arch_done(a->c, a->work_rc);
        return;
    }
    for (int i = 0; i < a->wn; i++) {
        if (a->qn < ARCH_QCAP) {
            a->q[(a->qh + a->qn) % ARCH_QCAP] = a->wq[i];
            a->qn++;
        } else {
            ms_frame_unref(a->wq[i]);
        }
    }
    a->wn = 0;
    if (a->work_rc <= 0) {
        a->at_end = 1;
        a->retry_mono_ms = ms_mono_ms() + RETRY_MS;
        if (a->work_rc < 0)
            MS_WARN(a->c->ctx, "archive read: %s", strerror(-a->work_rc));
    }
}

static int start_work(srv_arch_t *a, int op)
{
    if (a->inflight)
        return -EBUSY;
    a->inflight = op;
    a->work.data = a;
    int r = uv_queue_work(a->loop, &a->work, work_run, work_done);
    if (r != 0) {
        a->inflight = 0;
        return -EIO;
    }
    return 0;
}

int ms_rtsp_srv_arch_open(srv_arch_t *a, int64_t at_ms)
{
    if (a->inflight)
        return -EBUSY;
    q_clear(a);
    a->playing = 0;
    a->old_h = a->h;
    a->h = NULL;
    a->at_ms = at_ms;
    a->ended = 0;
    return start_work(a, 1);
}

/* ---- sending ---- */

static void send_sr(srv_arch_t *a, int i)
{
    srv_conn_t *c = a->c;
    uint8_t sr[4 + 128];
    size_t n = ms_rtcp_build_sr_packet(
        sr + 4, sizeof sr - 4, a->pk[i].cfg.ssrc, ms_rtcp_ntp_from_unix_us(a->last_wall_us[i]),
        a->pk[i].last_ts, a->pk[i].packets, a->pk[i].octets, "mediaserver");
    if (!n)
        return;
    sr[0] = '$';
    sr[1] = c->ch_rtcp[i];
    sr[2] = (uint8_t)(n >> 8);
    sr[3] = (uint8_t)n;
    ms_rtsp_srv_conn_send_raw(c, sr, n + 4);
}

static void send_frame(srv_arch_t *a, ms_frame_t *f)
{
    srv_conn_t *c = a->c;
    int t = f->track;
    if (t >= a->ntracks || !a->pk_ok[t] || !c->setup[t])
        return;
    ms_buf_reset(&a->scratch);
    if (ms_rtp_packetize(&a->pk[t], f, &a->scratch) <= 0)
        return;
    int first = !a->has_last[t];
    a->last_wall_us[t] = f->wallclock_us;
    a->has_last[t] = 1;
    srv_pkt_t p = {ms_buf_to_blob(&a->scratch), (uint8_t)t,
                   (uint8_t)(a->params[t].kind == MS_TRACK_VIDEO && (f->flags & MS_FRAME_KEY))};
    if (!p.blob)
        return;
    ms_rtsp_srv_conn_queue(c, &p);
    ms_blob_unref(p.blob);
    if (first && !c->closing)
        send_sr(a, t);
}

/* The end of the session's window: an RTCP compound of SR + BYE (RFC 3550
 * 6.1, 6.6: V=2, SC=1, PT=203, length 1, the SSRC) on every track set up,
 * as a source leaving; clients end the stream on it (ffmpeg once every
 * track said BYE). Nothing is sent afterwards. */
static void send_bye(srv_arch_t *a)
{
    srv_conn_t *c = a->c;
    a->ended = 1;
    a->playing = 0;
    q_clear(a);
    for (int i = 0; i < a->ntracks && !c->closing; i++) {
        if (!c->setup[i] || !a->pk_ok[i])
            continue;
        uint8_t pkt[4 + 128 + 8];
        size_t n = a->has_last[i]
                       ? ms_rtcp_build_sr_packet(pkt + 4, 128, a->pk[i].cfg.ssrc,
                                                 ms_rtcp_ntp_from_unix_us(a->last_wall_us[i]),
                                                 a->pk[i].last_ts, a->pk[i].packets,
                                                 a->pk[i].octets, "mediaserver")
                       : 0;
        uint8_t *b = pkt + 4 + n;
        uint32_t ssrc = a->pk[i].cfg.ssrc;
        b[0] = 0x81; /* V=2, P=0, SC=1 */
        b[1] = 203;  /* BYE */
        b[2] = 0;
        b[3] = 1; /* length in 32-bit words minus one */
        b[4] = (uint8_t)(ssrc >> 24);
        b[5] = (uint8_t)(ssrc >> 16);
        b[6] = (uint8_t)(ssrc >> 8);
        b[7] = (uint8_t)ssrc;
        n += 8;
        pkt[0] = '$';
        pkt[1] = c->ch_rtcp[i];
        pkt[2] = (uint8_t)(n >> 8);
        pkt[3] = (uint8_t)n;
        ms_rtsp_srv_conn_send_raw(c, pkt, n + 4);
    }
    MS_INFO(c->ctx, "archive playback reached the end of the session's window: RTCP BYE sent");
}

static void tick(uv_timer_t *tm)
{
    srv_arch_t *a = tm->data;
    srv_conn_t *c = a->c;
    if (!c || c->closing || !a->opened || !a->h || a->ended)
        return;
    int64_t now_us = ms_mono_us();
    if (a->playing) {
        for (int guard = 0; a->qn && guard < ARCH_QCAP && !c->closing; guard++) {
            if (c->count > SRV_QUEUE_CAP / 2) {
                a->base_mono_us += TICK_MS * 1000; /* client behind: hold the clock */
                break;
            }
            ms_frame_t *f = a->q[a->qh];
            int64_t media = f->wallclock_us - a->base_wall_us;
            if ((f->flags & MS_FRAME_DISCONT) || media < -1000000 || media > 10000000) {
                /* hole or jump: re-anchor without waiting */
                a->base_wall_us = f->wallclock_us;
                a->base_mono_us = now_us;
                media = 0;
            }
            if (media > now_us - a->base_mono_us)
                break;
            if (a->end_ms != INT64_MAX && f->wallclock_us >= a->end_ms * 1000) {
                send_bye(a);
                return;
            }
            a->qh = (a->qh + 1) % ARCH_QCAP;
            a->qn--;
            send_frame(a, f);
            ms_frame_unref(f);
        }
        int64_t now_ms = now_us / 1000;
        if (!c->closing && now_ms - a->last_sr_ms >= SR_EVERY_MS) {
            a->last_sr_ms = now_ms;
            for (int i = 0; i < a->ntracks; i++)
                if (a->has_last[i] && c->setup[i])
                    send_sr(a, i);
        }
    }
    if (!c->closing && !a->inflight && a->qn < LOW_WATER &&
        (!a->at_end || ms_mono_ms() >= a->retry_mono_ms))
        start_work(a, 2);
}

void ms_rtsp_srv_arch_rtpinfo(srv_arch_t *a, char *out, size_t cap)
{
    srv_conn_t *c = a->c;
    size_t len = 0;
    out[0] = '\0';
    for (int i = 0; i < a->ntracks; i++) {
        if (!c->setup[i] || !a->pk_ok[i])
            continue;
        /* the RTP time of the start's wall time in this track's clock */
        uint32_t rate = a->pk[i].cfg.clock_rate;
        int64_t pts = a->start_ms / 1000 * (int64_t)rate + (a->start_ms % 1000) * rate / 1000;
        int n = snprintf(out + len, cap - len, "%surl=%s;seq=%u;rtptime=%u", len ? "," : "",
                         c->control[i], a->pk[i].seq, ms_rtp_packetizer_ts(&a->pk[i], pts));
        if (n < 0 || (size_t)n >= cap - len) {
            out[len] = '\0';
            break;
        }
        len += (size_t)n;
    }
}

void ms_rtsp_srv_arch_start(srv_arch_t *a)
{
    if (a->playing)
        return;
    a->playing = 1;
    a->base_mono_us = ms_mono_us();
    a->base_wall_us = a->qn ? a->q[a->qh]->wallclock_us : a->start_ms * 1000;
    a->last_sr_ms = ms_mono_ms();
    if (!a->timer_on) {
        uv_timer_start(&a->timer, tick, 0, TICK_MS);
        a->timer_on = 1;
    }
}

void ms_rtsp_srv_arch_pause(srv_arch_t *a)
{
    a->playing = 0;
    /* on resume the queue head is sent at once and pacing goes on from it */
}

srv_arch_t *ms_rtsp_srv_arch_new(srv_conn_t *c, const char *uid)
{
    srv_arch_t *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->c = c;
    a->srv = c->srv;
    a->loop = c->tcp.loop;
    snprintf(a->uid, sizeof a->uid, "%s", uid);
    a->scratch = (ms_buf_t)MS_BUF_INIT;
    a->end_ms = INT64_MAX;
    uv_timer_init(a->loop, &a->timer);
    a->timer.data = a;
    uv_timer_start(&a->timer, tick, TICK_MS, TICK_MS);
    a->timer_on = 1;
    return a;
}

void ms_rtsp_srv_arch_detach(srv_arch_t *a)
{
    if (!a)
        return;
    a->c = NULL;
    uv_timer_stop(&a->timer);
    if (!a->inflight)
        arch_free_now(a);
}
