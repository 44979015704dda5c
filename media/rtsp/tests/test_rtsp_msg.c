/* RTSP message framing, interleaved frames and header parsers. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "media/rtsp/msg.h"

static const char describe_resp[] = "RTSP/1.0 200 OK\r\n"
                                    "CSeq: 2\r\n"
                                    "Content-Type: application/sdp\r\n"
                                    "Content-Base: rtsp://127.0.0.1:8554/test/\r\n"
                                    "X-Folded: first\r\n"
                                    "  second\r\n"
                                    "\tthird\r\n"
                                    "content-length: 10\r\n"
                                    "\r\n"
                                    "v=0\r\ns=x\r\n";

static void expect_describe(const ms_rtsp_msg_t *m)
{
    assert_int_equal(m->is_request, 0);
    assert_int_equal(m->status, 200);
    assert_string_equal(m->reason, "OK");
    assert_int_equal(ms_rtsp_msg_cseq(m), 2);
    assert_string_equal(ms_rtsp_msg_header(m, "CONTENT-BASE"), "rtsp://127.0.0.1:8554/test/");
    assert_string_equal(ms_rtsp_msg_header(m, "x-folded"), "first second third");
    assert_int_equal(m->body_len, 10);
    assert_memory_equal(m->body, "v=0\r\ns=x\r\n", 10);
    assert_null(ms_rtsp_msg_header(m, "Session"));
}

/* Stream: interleaved frame, response, interleaved frame, request. */
static size_t build_stream(uint8_t *out)
{
    size_t n = 0;
    static const uint8_t f1[] = {'$', 0, 0, 5, 0x80, 0x60, 1, 2, 3};
    memcpy(out + n, f1, sizeof f1);
    n += sizeof f1;
    memcpy(out + n, describe_resp, sizeof describe_resp - 1);
    n += sizeof describe_resp - 1;
    static const uint8_t f2[] = {'$', 3, 0, 0};
    memcpy(out + n, f2, sizeof f2);
    n += sizeof f2;
    const char *req = "GET_PARAMETER rtsp://h/x RTSP/1.0\nCSeq: 7\nSession: abc\n\n";
    memcpy(out + n, req, strlen(req));
    n += strlen(req);
    return n;
}

static void check_events(ms_rtsp_parser_t *p, int *stage)
{
    ms_rtsp_event_t ev;
    int r;
    while ((r = ms_rtsp_parser_next(p, &ev)) == 1) {
        switch (*stage) {
        case 0:
            assert_int_equal(ev.type, MS_RTSP_EV_INTERLEAVED);
            assert_int_equal(ev.channel, 0);
            assert_int_equal(ev.len, 5);
            assert_int_equal(ev.data[4], 3);
            break;
        case 1:
            assert_int_equal(ev.type, MS_RTSP_EV_MESSAGE);
            expect_describe(&ev.msg);
            break;
        case 2:
            assert_int_equal(ev.type, MS_RTSP_EV_INTERLEAVED);
            assert_int_equal(ev.channel, 3);
            assert_int_equal(ev.len, 0);
            break;
        case 3:
            assert_int_equal(ev.type, MS_RTSP_EV_MESSAGE);
            assert_int_equal(ev.msg.is_request, 1);
            assert_string_equal(ev.msg.method, "GET_PARAMETER");
            assert_string_equal(ev.msg.uri, "rtsp://h/x");
            assert_int_equal(ms_rtsp_msg_cseq(&ev.msg), 7);
            assert_string_equal(ms_rtsp_msg_header(&ev.msg, "session"), "abc");
            assert_int_equal(ev.msg.body_len, 0);
            break;
        default:
            fail();
        }
        (*stage)++;
    }
    assert_int_equal(r, 0);
}

static void test_whole_and_split(void **state)
{
    (void)state;
    uint8_t stream[1024];
    size_t n = build_stream(stream);
    /* every chunk size from 1 to n, and a pseudo-random split */
    for (size_t chunk = 1; chunk <= n; chunk++) {
        ms_rtsp_parser_t p;
        ms_rtsp_parser_init(&p);
        int stage = 0;
        for (size_t off = 0; off < n; off += chunk) {
            size_t len = off + chunk > n ? n - off : chunk;
            assert_int_equal(ms_rtsp_parser_feed(&p, stream + off, len), 0);
            check_events(&p, &stage);
        }
        assert_int_equal(stage, 4);
        ms_rtsp_parser_free(&p);
    }
    ms_rtsp_parser_t p;
    ms_rtsp_parser_init(&p);
    unsigned seed = 12345;
    int stage = 0;
    for (size_t off = 0; off < n;) {
        seed = seed * 1103515245u + 12345u;
        size_t len = 1 + (seed >> 16) % 37;
        if (off + len > n)
            len = n - off;
        assert_int_equal(ms_rtsp_parser_feed(&p, stream + off, len), 0);
        check_events(&p, &stage);
        off += len;
    }
    assert_int_equal(stage, 4);
    ms_rtsp_parser_free(&p);
}

static int feed_all(const char *s, size_t len, ms_rtsp_event_t *ev, ms_rtsp_parser_t *p)
{
    ms_rtsp_parser_init(p);
    int r = ms_rtsp_parser_feed(p, s, len);
    if (r < 0)
        return r;
    return ms_rtsp_parser_next(p, ev);
}

static void test_errors_and_limits(void **state)
{
    (void)state;
    ms_rtsp_parser_t p;
    ms_rtsp_event_t ev;
    const char *bad[] = {
        "RTSP/1.0 20 OK\r\n\r\n",
        "RTSP/2.0 200 OK\r\n\r\n",
        "\x01garbage\r\n\r\n",
        "OPTIONS * HTTP/1.1\r\n\r\n",
        "RTSP/1.0 200 OK\r\nNoColon\r\n\r\n",
        "RTSP/1.0 200 OK\r\n folded-first\r\n\r\n",
        "RTSP/1.0 200 OK\r\nContent-Length: 12x\r\n\r\n",
        "RTSP/1.0 200 OK\r\nBad Name: v\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int r = feed_all(bad[i], strlen(bad[i]), &ev, &p);
        assert_int_equal(r, -EBADMSG);
        /* sticky */
        assert_int_equal(ms_rtsp_parser_next(&p, &ev), -EBADMSG);
        assert_int_equal(ms_rtsp_parser_feed(&p, "x", 1), -EBADMSG);
        ms_rtsp_parser_free(&p);
    }
    /* body over 1 MB */
    const char *huge = "RTSP/1.0 200 OK\r\nContent-Length: 1048577\r\n\r\n";
    assert_int_equal(feed_all(huge, strlen(huge), &ev, &p), -EMSGSIZE);
    ms_rtsp_parser_free(&p);
    /* header block over 64 KB without an end */
    size_t big = MS_RTSP_MAX_HEADER_BLOCK + 10;
    char *blk = malloc(big);
    assert_non_null(blk);
    memcpy(blk, "RTSP/1.0 200 OK\r\nX: ", 20);
    memset(blk + 20, 'a', big - 20);
    assert_int_equal(feed_all(blk, big, &ev, &p), -EMSGSIZE);
    ms_rtsp_parser_free(&p);
    free(blk);
    /* too many headers */
    char many[4096] = "RTSP/1.0 200 OK\r\n";
    for (int i = 0; i < MS_RTSP_MAX_HEADERS + 1; i++)
        strcat(many, "A: b\r\n");
    strcat(many, "\r\n");
    assert_int_equal(feed_all(many, strlen(many), &ev, &p), -EMSGSIZE);
    ms_rtsp_parser_free(&p);
    /* incomplete: needs more */
    assert_int_equal(feed_all("RTSP/1.0 200 OK\r\nCSeq: 1\r\n", 26, &ev, &p), 0);
    ms_rtsp_parser_free(&p);
    /* status without a reason phrase and a body exactly at the limit */
    assert_int_equal(feed_all("RTSP/1.0 404\r\nCSeq: 9\r\n\r\n", 25, &ev, &p), 1);
    assert_int_equal(ev.msg.status, 404);
    assert_string_equal(ev.msg.reason, "");
    ms_rtsp_parser_free(&p);
}

static void test_build(void **state)
{
    (void)state;
    ms_buf_t b = MS_BUF_INIT;
    ms_rtsp_request_t rq = {.method = "SETUP",
                            .uri = "rtsp://h/a/trackID=1",
                            .cseq = 3,
                            .session = "12345678",
                            .user_agent = "mediaserver/0.1",
                            .authorization = "Basic dTpw",
                            .extra = "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n"};
    assert_int_equal(ms_rtsp_build_request(&b, &rq), 0);
    const char *expect = "SETUP rtsp://h/a/trackID=1 RTSP/1.0\r\nCSeq: 3\r\n"
                         "Authorization: Basic dTpw\r\nSession: 12345678\r\n"
                         "User-Agent: mediaserver/0.1\r\n"
                         "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n";
    assert_int_equal(b.len, strlen(expect));
    assert_memory_equal(b.data, expect, b.len);
    /* round trip through the parser */
    ms_rtsp_parser_t p;
    ms_rtsp_event_t ev;
    assert_int_equal(feed_all((const char *)b.data, b.len, &ev, &p), 1);
    assert_string_equal(ev.msg.method, "SETUP");
    assert_string_equal(ms_rtsp_msg_header(&ev.msg, "transport"),
                        "RTP/AVP/TCP;unicast;interleaved=0-1");
    ms_rtsp_parser_free(&p);

    rq.uri = "rtsp://h/\r\nInjected: 1";
    assert_int_equal(ms_rtsp_build_request(&b, &rq), -EINVAL);

    ms_buf_reset(&b);
    assert_int_equal(ms_rtsp_build_response(&b, 200, NULL, 2, NULL, "Content-Base: rtsp://h/\r\n",
                                            "application/sdp", "v=0\r\n", 5),
                     0);
    assert_int_equal(feed_all((const char *)b.data, b.len, &ev, &p), 1);
    assert_int_equal(ev.msg.status, 200);
    assert_int_equal(ev.msg.body_len, 5);
    assert_string_equal(ms_rtsp_msg_header(&ev.msg, "Content-Type"), "application/sdp");
    ms_rtsp_parser_free(&p);
    ms_buf_free(&b);
}

static void test_transport(void **state)
{
    (void)state;
    ms_rtsp_transport_t t;
    assert_int_equal(ms_rtsp_transport_parse("RTP/AVP;unicast;client_port=5000-5001;"
                                             "server_port=6970-6971;ssrc=1A2b3C4d;mode=\"PLAY\"",
                                             0, &t),
                     0);
    assert_int_equal(t.tcp, 0);
    assert_int_equal(t.multicast, 0);
    assert_int_equal(t.client_port[0], 5000);
    assert_int_equal(t.client_port[1], 5001);
    assert_int_equal(t.server_port[0], 6970);
    assert_int_equal(t.server_port[1], 6971);
    assert_int_equal(t.has_ssrc, 1);
    assert_int_equal(t.ssrc, 0x1A2B3C4D);
    assert_string_equal(t.mode, "PLAY");
    assert_int_equal(ms_rtsp_transport_parse("RTP/AVP/TCP;unicast;interleaved=4-5", 0, &t), 0);
    assert_int_equal(t.tcp, 1);
    assert_int_equal(t.interleaved[0], 4);
    assert_int_equal(t.interleaved[1], 5);
    char buf[256];
    assert_true(ms_rtsp_transport_format(&t, buf, sizeof buf) > 0);
    assert_string_equal(buf, "RTP/AVP/TCP;unicast;interleaved=4-5");
    /* a list: pick the second spec; single port */
    assert_int_equal(ms_rtsp_transport_parse("RTP/AVP/TCP;interleaved=0-1, RTP/AVP;unicast;"
                                             "client_port=7000;destination=127.0.0.1;ttl=4",
                                             1, &t),
                     0);
    assert_int_equal(t.tcp, 0);
    assert_int_equal(t.client_port[1], 7001);
    assert_string_equal(t.destination, "127.0.0.1");
    assert_int_equal(t.ttl, 4);
    assert_int_equal(ms_rtsp_transport_parse("RTP/AVP", 2, &t), -ENOENT);
    assert_int_equal(ms_rtsp_transport_parse("RAW/RAW/UDP;unicast", 0, &t), -EINVAL);
    assert_int_equal(ms_rtsp_transport_parse("RTP/AVP;client_port=70000", 0, &t), -EINVAL);
    assert_int_equal(ms_rtsp_transport_parse("RTP/AVP;ssrc=123456789", 0, &t), -EINVAL);
}

static void test_session_rtpinfo_range(void **state)
{
    (void)state;
    char id[64];
    int to;
    assert_int_equal(ms_rtsp_session_parse("47112344;timeout=30", id, sizeof id, &to), 0);
    assert_string_equal(id, "47112344");
    assert_int_equal(to, 30);
    assert_int_equal(ms_rtsp_session_parse(" ABCdef ", id, sizeof id, &to), 0);
    assert_string_equal(id, "ABCdef");
    assert_int_equal(to, 60);
    assert_int_equal(ms_rtsp_session_parse("x; timeout=0", id, sizeof id, &to), 0);
    assert_int_equal(to, 60);
    assert_int_equal(ms_rtsp_session_parse(";timeout=5", id, sizeof id, &to), -EINVAL);

    ms_rtsp_rtpinfo_t ri[4];
    int n = ms_rtsp_rtpinfo_parse("url=rtsp://h/t/stream=0;seq=28910;rtptime=3450017437, "
                                  "url=rtsp://h/t/stream=1;seq=1",
                                  ri, 4);
    assert_int_equal(n, 2);
    assert_string_equal(ri[0].url, "rtsp://h/t/stream=0");
    assert_int_equal(ri[0].seq, 28910);
    assert_int_equal(ri[0].rtptime, 3450017437u);
    assert_int_equal(ri[1].has_rtptime, 0);
    assert_int_equal(ms_rtsp_rtpinfo_parse("seq=1", ri, 4), -EINVAL);

    ms_rtsp_range_t r;
    assert_int_equal(ms_rtsp_range_parse("npt=now-", &r), 0);
    assert_int_equal(r.kind, MS_RANGE_NPT);
    assert_int_equal(r.start_now, 1);
    assert_int_equal(r.has_end, 0);
    assert_int_equal(ms_rtsp_range_parse("npt=10.5-1:02:03.25", &r), 0);
    assert_true(r.start_s > 10.49 && r.start_s < 10.51);
    assert_true(r.end_s > 3723.24 && r.end_s < 3723.26);
    assert_int_equal(ms_rtsp_range_parse("clock=19961108T142300Z-19961108T143520.5Z", &r), 0);
    assert_int_equal(r.kind, MS_RANGE_CLOCK);
    assert_int_equal(r.start_us, 847462980LL * 1000000);
    assert_int_equal(r.end_us, 847463720LL * 1000000 + 500000);
    assert_int_equal(ms_rtsp_range_parse("clock=20240101T000000Z-;time=x", &r), 0);
    assert_int_equal(r.start_us, 1704067200LL * 1000000);
    assert_int_equal(ms_rtsp_range_parse("smpte=10:07:00-", &r), -EINVAL);
    assert_int_equal(ms_rtsp_range_parse("npt=-", &r), -EINVAL);
    assert_int_equal(ms_rtsp_range_parse("npt=1:99:00-", &r), -EINVAL);
    assert_int_equal(ms_rtsp_range_parse("clock=2024-01-01-", &r), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whole_and_split),
        cmocka_unit_test(test_errors_and_limits),
        cmocka_unit_test(test_build),
        cmocka_unit_test(test_transport),
        cmocka_unit_test(test_session_rtpinfo_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
