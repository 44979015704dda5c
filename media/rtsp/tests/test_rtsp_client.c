/* RTSP client against a small fake RTSP server on loopback (libuv, same
 * loop): Digest auth, DESCRIBE/SETUP/PLAY over TCP interleaved, H.264 frames
 * published into a hub, TEARDOWN on stop; and a 404 that makes the stream
 * "incorrect". */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <uv.h>

#include "media/rtsp/auth.h"
#include "media/rtsp/client.h"
#include "media/rtsp/msg.h"
#include "util/buf.h"
#include "util/clock.h"

/* ---- fake server ---- */

typedef struct {
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_tcp_t conn;
    int have_conn;
    uv_timer_t rtp_timer;
    ms_rtsp_parser_t parser;
    int port;
    int describe_status; /* 200 or e.g. 404 */
    int require_auth;
    char nonce[64];
    int unauthorized_sent;
    int authorized_ok;
    int setups, plays, teardowns, keepalives;
    uint16_t seq;
    uint32_t ts;
    int frames_sent;
    uint8_t rbuf[65536];
} fake_t;

static const char *k_sdp = "v=0\r\n"
                           "o=- 1 1 IN IP4 127.0.0.1\r\n"
                           "s=fake\r\n"
                           "t=0 0\r\n"
                           "a=control:*\r\n"
                           "m=video 0 RTP/AVP 96\r\n"
                           "a=rtpmap:96 H264/90000\r\n"
                           "a=fmtp:96 packetization-mode=1;sprop-parameter-sets="
                           "Z2QAFKzZQUH7ARAAAAMAEAAAAwPA8UKZYA==,aOvjyyLA\r\n"
                           "a=control:stream=0\r\n"
                           "m=audio 0 RTP/AVP 98\r\n"
                           "a=rtpmap:98 opus/48000/2\r\n"
                           "a=control:stream=1\r\n";

static void on_wr(uv_write_t *w, int status)
{
    (void)status;
    free(w);
}

static void srv_send(fake_t *f, const void *data, size_t len)
{
    uv_write_t *w = malloc(sizeof *w + len);
    assert_non_null(w);
    memcpy(w + 1, data, len);
    uv_buf_t b = uv_buf_init((char *)(w + 1), (unsigned)len);
    if (uv_write(w, (uv_stream_t *)&f->conn, &b, 1, on_wr) < 0)
        free(w);
}

static void srv_reply(fake_t *f, const ms_rtsp_msg_t *m, int status, const char *extra,
                      const char *body)
{
    ms_buf_t b = MS_BUF_INIT;
    assert_int_equal(ms_rtsp_build_response(&b, status, NULL, ms_rtsp_msg_cseq(m),
                                            f->setups ? "12345678;timeout=60" : NULL, extra,
                                            body ? "application/sdp" : NULL, body,
                                            body ? strlen(body) : 0),
                     0);
    srv_send(f, b.data, b.len);
    ms_buf_free(&b);
}

/* One H.264 access unit per tick as single NAL unit packets (RFC 6184
 * 5.6): an IDR every 10 frames, P slices otherwise. */
static void on_rtp_timer(uv_timer_t *t)
{
    fake_t *f = t->data;
    if (!f->have_conn)
        return;
    uint8_t pkt[4 + 12 + 64];
    int idr = f->frames_sent % 10 == 0;
    size_t plen = 40;
    pkt[0] = '$';
    pkt[1] = 0;
    pkt[2] = 0;
    pkt[3] = (uint8_t)(12 + plen);
    uint8_t *r = pkt + 4;
    r[0] = 0x80;
    r[1] = 0x80 | 96; /* marker: last packet of the access unit */
    r[2] = (uint8_t)(f->seq >> 8);
    r[3] = (uint8_t)f->seq;
    r[4] = (uint8_t)(f->ts >> 24);
    r[5] = (uint8_t)(f->ts >> 16);
    r[6] = (uint8_t)(f->ts >> 8);
    r[7] = (uint8_t)f->ts;
    r[8] = 0x11;
    r[9] = 0x22;
    r[10] = 0x33;
    r[11] = 0x44;
    r[12] = idr ? 0x65 : 0x41;
    r[13] = 0x88; /* first_mb_in_slice = 0, ... */
    for (size_t i = 2; i < plen; i++)
        r[12 + i] = (uint8_t)(i * 7 + 1);
    srv_send(f, pkt, 4 + 12 + plen);
    f->seq++;
    f->ts += 3600;
    f->frames_sent++;
}

static int check_auth(fake_t *f, const ms_rtsp_msg_t *m)
{
    if (!f->require_auth)
        return 1;
    const char *a = ms_rtsp_msg_header(m, "Authorization");
    ms_auth_credentials_t c;
    if (a && ms_auth_credentials_parse(a, &c) == 0 && strcmp(c.username, "admin") == 0 &&
        ms_auth_verify(&c, m->method, "fake cam", f->nonce, "s3cr@t", 0) == 0) {
        f->authorized_ok++;
        return 1;
    }
    char hdr[256], extra[600];
    assert_true(ms_auth_server_challenge("fake cam", f->nonce, sizeof f->nonce, hdr, sizeof hdr) >
                0);
    snprintf(extra, sizeof extra,
             "WWW-Authenticate: Basic realm=\"fake cam\"\r\n"
             "WWW-Authenticate: %s\r\n",
             hdr);
    srv_reply(f, m, 401, extra, NULL);
    f->unauthorized_sent++;
    return 0;
}

static void srv_request(fake_t *f, const ms_rtsp_msg_t *m)
{
    if (strcmp(m->method, "OPTIONS") == 0) {
        if (f->plays)
            f->keepalives++;
        srv_reply(f, m, 200, "Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER\r\n",
                  NULL);
    } else if (strcmp(m->method, "DESCRIBE") == 0) {
        if (!check_auth(f, m))
            return;
        if (f->describe_status != 200) {
            srv_reply(f, m, f->describe_status, NULL, NULL);
            return;
        }
        char extra[128];
        snprintf(extra, sizeof extra, "Content-Base: rtsp://127.0.0.1:%d/cam/\r\n", f->port);
        srv_reply(f, m, 200, extra, k_sdp);
    } else if (strcmp(m->method, "SETUP") == 0) {
        if (!check_auth(f, m))
            return;
        char want[64];
        snprintf(want, sizeof want, "rtsp://127.0.0.1:%d/cam/stream=0", f->port);
        assert_string_equal(m->uri, want);
        ms_rtsp_transport_t t;
        assert_int_equal(ms_rtsp_transport_parse(ms_rtsp_msg_header(m, "Transport"), 0, &t), 0);
        assert_int_equal(t.tcp, 1);
        f->setups++;
        srv_reply(f, m, 200, "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n", NULL);
    } else if (strcmp(m->method, "PLAY") == 0) {
        if (!check_auth(f, m))
            return;
        assert_string_equal(ms_rtsp_msg_header(m, "Session"), "12345678");
        f->plays++;
        srv_reply(f, m, 200, "Range: npt=0.000-\r\n", NULL);
        uv_timer_start(&f->rtp_timer, on_rtp_timer, 0, 20);
    } else if (strcmp(m->method, "TEARDOWN") == 0) {
        f->teardowns++;
        srv_reply(f, m, 200, NULL, NULL);
        uv_timer_stop(&f->rtp_timer);
    } else if (strcmp(m->method, "GET_PARAMETER") == 0) {
        f->keepalives++;
        srv_reply(f, m, 200, NULL, NULL);
    } else {
        srv_reply(f, m, 501, NULL, NULL);
    }
}

static void srv_alloc(uv_handle_t *h, size_t s, uv_buf_t *b)
{
    (void)s;
    fake_t *f = h->data;
    *b = uv_buf_init((char *)f->rbuf, sizeof f->rbuf);
}

static void srv_closed(uv_handle_t *h)
{
    fake_t *f = h->data;
    f->have_conn = 0;
}

static void srv_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    (void)b;
    fake_t *f = st->data;
    if (n < 0) {
        uv_timer_stop(&f->rtp_timer);
        if (!uv_is_closing((uv_handle_t *)&f->conn))
            uv_close((uv_handle_t *)&f->conn, srv_closed);
        return;
    }
    assert_int_equal(ms_rtsp_parser_feed(&f->parser, f->rbuf, (size_t)n), 0);
    ms_rtsp_event_t ev;
    int r;
    while ((r = ms_rtsp_parser_next(&f->parser, &ev)) == 1) {
        if (ev.type == MS_RTSP_EV_MESSAGE) {
            assert_int_equal(ev.msg.is_request, 1);
            assert_non_null(ms_rtsp_msg_header(&ev.msg, "User-Agent"));
            srv_request(f, &ev.msg);
        }
        /* interleaved RTCP RRs from the client are accepted silently */
    }
    assert_int_equal(r, 0);
}

static void srv_on_conn(uv_stream_t *l, int status)
{
    fake_t *f = l->data;
    assert_int_equal(status, 0);
    assert_int_equal(f->have_conn, 0);
    uv_tcp_init(f->loop, &f->conn);
    f->conn.data = f;
    assert_int_equal(uv_accept(l, (uv_stream_t *)&f->conn), 0);
    f->have_conn = 1;
    ms_rtsp_parser_free(&f->parser);
    ms_rtsp_parser_init(&f->parser);
    uv_read_start((uv_stream_t *)&f->conn, srv_alloc, srv_read);
}

static void fake_start(fake_t *f, uv_loop_t *loop)
{
    memset(f, 0, sizeof *f);
    f->loop = loop;
    f->describe_status = 200;
    ms_rtsp_parser_init(&f->parser);
    uv_tcp_init(loop, &f->listener);
    f->listener.data = f;
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    assert_int_equal(uv_tcp_bind(&f->listener, (const struct sockaddr *)&a, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&f->listener, 4, srv_on_conn), 0);
    struct sockaddr_in got;
    int len = sizeof got;
    uv_tcp_getsockname(&f->listener, (struct sockaddr *)&got, &len);
    f->port = ntohs(got.sin_port);
    uv_timer_init(loop, &f->rtp_timer);
    f->rtp_timer.data = f;
}

static void noop_close(uv_handle_t *h)
{
    (void)h;
}

static void fake_stop(fake_t *f)
{
    uv_close((uv_handle_t *)&f->listener, noop_close);
    uv_close((uv_handle_t *)&f->rtp_timer, noop_close);
    if (f->have_conn && !uv_is_closing((uv_handle_t *)&f->conn))
        uv_close((uv_handle_t *)&f->conn, srv_closed);
    ms_rtsp_parser_free(&f->parser);
}

/* ---- hub reader ---- */

typedef struct {
    int frames, keys, disconts, tracks_events;
    int64_t last_dts;
    int dts_monotonic;
    int first_flags;
    int64_t first_wallclock;
} sink_t;

static void on_frames(ms_reader_t *r, void *ud)
{
    sink_t *k = ud;
    ms_frame_t *f;
    while ((f = ms_reader_pop(r))) {
        if (k->frames == 0) {
            k->first_flags = f->flags;
            k->first_wallclock = f->wallclock_us;
        } else if (f->dts < k->last_dts) {
            k->dts_monotonic = 0;
        }
        k->last_dts = f->dts;
        k->frames++;
        if (f->flags & MS_FRAME_KEY)
            k->keys++;
        if (f->flags & MS_FRAME_DISCONT)
            k->disconts++;
        assert_int_equal(f->track, 0);
        assert_true(f->size > 4);
        ms_frame_unref(f);
    }
}

static void on_tracks(ms_reader_t *r, void *ud)
{
    (void)r;
    sink_t *k = ud;
    k->tracks_events++;
}

static void on_done(void *ud)
{
    *(int *)ud = 1;
}

static int run_until(uv_loop_t *loop, int (*cond)(void *), void *arg, int64_t ms)
{
    int64_t deadline = ms_mono_ms() + ms;
    while (!cond(arg) && ms_mono_ms() < deadline)
        uv_run(loop, UV_RUN_ONCE);
    return cond(arg);
}

static int enough_frames(void *arg)
{
    return ((sink_t *)arg)->frames >= 30;
}

static int flag_set(void *arg)
{
    return *(int *)arg;
}

static void walk_cb(uv_handle_t *h, void *arg)
{
    (void)arg;
    fprintf(stderr, "leftover handle type %d\n", (int)h->type);
}

static void finish_loop(uv_loop_t *loop)
{
    for (int i = 0; i < 100 && uv_run(loop, UV_RUN_NOWAIT); i++)
        ;
    uv_walk(loop, walk_cb, NULL);
    assert_int_equal(uv_loop_close(loop), 0);
}

static void test_play_tcp_digest(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    fake_t f;
    fake_start(&f, &loop);
    f.require_auth = 1;

    ms_hub_t *hub = ms_hub_new("[test hub]");
    sink_t sink = {.dts_monotonic = 1};
    ms_reader_opts_t ro = {
        .queue_frames = 4096, .on_frames = on_frames, .on_tracks = on_tracks, .ud = &sink};
    ms_reader_t *rd = ms_hub_reader_open(hub, &ro);

    char url[128], err[128];
    snprintf(url, sizeof url, "rtsp://admin:s3cr%%40t@127.0.0.1:%d/cam", f.port);
    ms_rtsp_client_cfg_t cfg = {.url = url,
                                .transport = MS_TRANSPORT_TCP,
                                .channels = MS_CHANNEL_VIDEO | MS_CHANNEL_AUDIO,
                                .interval_ms = 100,
                                .max_interval_ms = 1000,
                                .timeout_ms = 3000,
                                .log_ctx = "[test] [rtsp-client]"};
    ms_rtsp_client_t *c = ms_rtsp_client_start(&loop, &cfg, hub, err, sizeof err);
    assert_non_null(c);
    ms_source_status_t st;
    ms_rtsp_client_get_status(c, &st);
    assert_int_equal(st.state, MS_STATE_INITIALIZATION);

    assert_true(run_until(&loop, enough_frames, &sink, 5000));
    ms_rtsp_client_get_status(c, &st);
    assert_int_equal(st.state, MS_STATE_ACTIVE);
    assert_int_equal(st.characteristic, MS_CHAR_OK);
    assert_string_equal(st.transport, "tcp");
    assert_non_null(strstr(st.sdp, "H264/90000"));
    assert_int_equal(st.reconnects, 0);
    assert_int_equal(st.reconnects_total, 0);
    assert_true(f.unauthorized_sent >= 1);
    assert_true(f.authorized_ok >= 3); /* DESCRIBE, SETUP, PLAY */
    assert_int_equal(f.setups, 1);     /* the opus track is ignored */
    assert_int_equal(ms_hub_ntracks(hub), 1);
    assert_int_equal(ms_hub_track(hub, 0)->codec, MS_CODEC_H264);
    assert_true(sink.tracks_events >= 1);
    assert_int_equal(sink.first_flags & (MS_FRAME_DISCONT | MS_FRAME_KEY),
                     MS_FRAME_DISCONT | MS_FRAME_KEY);
    assert_int_equal(sink.disconts, 1);
    assert_true(sink.keys >= 3);
    assert_int_equal(sink.dts_monotonic, 1);
    int64_t now = ms_wall_us();
    assert_true(sink.first_wallclock > now - 10000000 && sink.first_wallclock <= now);

    int done = 0;
    ms_rtsp_client_stop(c, on_done, &done);
    assert_true(run_until(&loop, flag_set, &done, 2000));
    assert_int_equal(f.teardowns, 1);
    assert_int_equal(ms_hub_ntracks(hub), 0);
    ms_hub_reader_close(rd);
    ms_hub_free(hub);
    fake_stop(&f);
    finish_loop(&loop);
}

typedef struct {
    ms_rtsp_client_t *c;
} probe_t;

static int is_incorrect(void *arg)
{
    ms_source_status_t st;
    ms_rtsp_client_get_status(((probe_t *)arg)->c, &st);
    return st.characteristic == MS_CHAR_INCORRECT && st.state == MS_STATE_INACTIVE;
}

static void test_404_incorrect(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    fake_t f;
    fake_start(&f, &loop);
    f.describe_status = 404;
    ms_hub_t *hub = ms_hub_new("[test hub]");
    char url[128], err[128];
    snprintf(url, sizeof url, "rtsp://127.0.0.1:%d/missing", f.port);
    ms_rtsp_client_cfg_t cfg = {.url = url,
                                .transport = MS_TRANSPORT_AUTO,
                                .interval_ms = 5000,
                                .max_interval_ms = 10000,
                                .log_ctx = "[test404]"};
    probe_t p = {ms_rtsp_client_start(&loop, &cfg, hub, err, sizeof err)};
    assert_non_null(p.c);
    assert_true(run_until(&loop, is_incorrect, &p, 3000));
    ms_source_status_t st;
    ms_rtsp_client_get_status(p.c, &st);
    assert_non_null(strstr(st.reason, "404"));
    int done = 0;
    ms_rtsp_client_stop(p.c, on_done, &done);
    assert_true(run_until(&loop, flag_set, &done, 2000));
    assert_int_equal(f.teardowns, 0);
    ms_hub_free(hub);
    fake_stop(&f);
    finish_loop(&loop);
}

static int is_disconnected(void *arg)
{
    ms_source_status_t st;
    ms_rtsp_client_get_status(((probe_t *)arg)->c, &st);
    return st.characteristic == MS_CHAR_DISCONNECTED && st.reconnects >= 1;
}

static void test_refused_reconnects(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    /* a port with nothing listening: bind, read the port, close */
    uv_tcp_t tmp;
    uv_tcp_init(&loop, &tmp);
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_bind(&tmp, (const struct sockaddr *)&a, 0);
    struct sockaddr_in got;
    int len = sizeof got;
    uv_tcp_getsockname(&tmp, (struct sockaddr *)&got, &len);
    uv_close((uv_handle_t *)&tmp, noop_close);
    uv_run(&loop, UV_RUN_NOWAIT);

    ms_hub_t *hub = ms_hub_new("[test hub]");
    char url[128], err[128];
    snprintf(url, sizeof url, "rtsp://127.0.0.1:%d/x", ntohs(got.sin_port));
    ms_rtsp_client_cfg_t cfg = {
        .url = url, .interval_ms = 50, .max_interval_ms = 200, .log_ctx = "[test-refused]"};
    probe_t p = {ms_rtsp_client_start(&loop, &cfg, hub, err, sizeof err)};
    assert_non_null(p.c);
    assert_true(run_until(&loop, is_disconnected, &p, 3000));
    ms_source_status_t st;
    ms_rtsp_client_get_status(p.c, &st);
    assert_int_equal(st.state == MS_STATE_INACTIVE || st.state == MS_STATE_INITIALIZATION, 1);
    assert_true(st.reconnects_total >= 1);
    int done = 0;
    ms_rtsp_client_stop(p.c, on_done, &done);
    assert_true(run_until(&loop, flag_set, &done, 2000));
    ms_hub_free(hub);
    finish_loop(&loop);

    /* config errors */
    assert_null(ms_rtsp_client_start(&loop, &(ms_rtsp_client_cfg_t){.url = "http://x/"}, hub, err,
                                     sizeof err));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_play_tcp_digest),
        cmocka_unit_test(test_404_incorrect),
        cmocka_unit_test(test_refused_reconnects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
