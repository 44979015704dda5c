/* Redirects of the RTSP server (RFC 2326 11.3.3): the Location built from
 * the request URI, the 302 response bytes, and the accept thread answering
 * a real connection on loopback with 302 (DESCRIBE) and 200 (OPTIONS) for a
 * stream that the redirect hook sends elsewhere. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "media/rtsp/msg.h"
#include "media/rtsp/server.h"

static char loc[4096];

static void test_location(void **state)
{
    (void)state;
    const char *b = "rtsp://10.0.0.2:8554";
    assert_int_equal(ms_rtsp_redirect_location(b, "rtsp://127.0.0.1:8554/cam1", loc, sizeof loc),
                     (int)strlen("rtsp://10.0.0.2:8554/cam1"));
    assert_string_equal(loc, "rtsp://10.0.0.2:8554/cam1");
    /* the query is kept (token, archive time) */
    assert_true(ms_rtsp_redirect_location(b, "rtsp://h/cam1?token=a.b&from=1700000000", loc,
                                          sizeof loc) > 0);
    assert_string_equal(loc, "rtsp://10.0.0.2:8554/cam1?token=a.b&from=1700000000");
    /* origin form, trailing slash, a SETUP's control: the aggregate path */
    assert_true(ms_rtsp_redirect_location(b, "/cam%2D1/?x=1", loc, sizeof loc) > 0);
    assert_string_equal(loc, "rtsp://10.0.0.2:8554/cam%2D1?x=1");
    assert_true(ms_rtsp_redirect_location(b, "rtsp://h:1/cam1/trackID=1?token=t", loc, sizeof loc) >
                0);
    assert_string_equal(loc, "rtsp://10.0.0.2:8554/cam1?token=t");
    assert_true(ms_rtsp_redirect_location(b, "rtsp://h/cam1?token=t/trackID=0", loc, sizeof loc) >
                0);
    assert_string_equal(loc, "rtsp://10.0.0.2:8554/cam1?token=t");
    assert_true(
        ms_rtsp_redirect_location("rtsp://[::1]:9", "rtsp://[::1]:8554/c", loc, sizeof loc) > 0);
    assert_string_equal(loc, "rtsp://[::1]:9/c");
}

static void test_location_errors(void **state)
{
    (void)state;
    assert_int_equal(ms_rtsp_redirect_location("rtsp://h:1", "*", loc, sizeof loc), -EINVAL);
    assert_int_equal(ms_rtsp_redirect_location("rtsp://h:1", "rtsp://x", loc, sizeof loc), -EINVAL);
    assert_int_equal(ms_rtsp_redirect_location("http://h:1", "/cam", loc, sizeof loc), -EINVAL);
    assert_int_equal(ms_rtsp_redirect_location("rtsp://h:1/", "/cam", loc, sizeof loc), -EINVAL);
    assert_int_equal(ms_rtsp_redirect_location("rtsp://h:1\r\nX: y", "/cam", loc, sizeof loc),
                     -EINVAL);
    assert_int_equal(ms_rtsp_redirect_location("rtsp://h:1", "/cam?a b", loc, sizeof loc), -EINVAL);
    /* exactly fitting, one byte short */
    assert_int_equal(ms_rtsp_redirect_location("rtsp://h:1", "/cam?t=1", loc, 19), 18);
    assert_int_equal(ms_rtsp_redirect_location("rtsp://h:1", "/cam?t=1", loc, 18), -ENAMETOOLONG);
}

static void test_response(void **state)
{
    (void)state;
    ms_buf_t b = MS_BUF_INIT;
    assert_int_equal(ms_rtsp_build_redirect(&b, 3, "rtsp://10.0.0.2:8554/cam1?token=x"), 0);
    const char want[] = "RTSP/1.0 302 Moved Temporarily\r\n"
                        "CSeq: 3\r\n"
                        "Location: rtsp://10.0.0.2:8554/cam1?token=x\r\n"
                        "Server: mediaserver\r\n"
                        "\r\n";
    assert_int_equal(b.len, sizeof want - 1);
    assert_memory_equal(b.data, want, sizeof want - 1);
    /* it parses back as a response with the Location */
    ms_rtsp_parser_t p;
    ms_rtsp_parser_init(&p);
    assert_int_equal(ms_rtsp_parser_feed(&p, b.data, b.len), 0);
    ms_rtsp_event_t ev;
    assert_int_equal(ms_rtsp_parser_next(&p, &ev), 1);
    assert_int_equal(ev.type, MS_RTSP_EV_MESSAGE);
    assert_false(ev.msg.is_request);
    assert_int_equal(ev.msg.status, 302);
    assert_string_equal(ms_rtsp_msg_header(&ev.msg, "Location"),
                        "rtsp://10.0.0.2:8554/cam1?token=x");
    ms_rtsp_parser_free(&p);
    ms_buf_free(&b);
    /* no header injection */
    ms_buf_t c = MS_BUF_INIT;
    assert_int_equal(ms_rtsp_build_redirect(&c, 1, "rtsp://h/x\r\nSet: 1"), -EINVAL);
    assert_int_equal(ms_rtsp_build_redirect(&c, 1, ""), -EINVAL);
    assert_int_equal(c.len, 0);
    ms_buf_free(&c);
}

/* ---- the accept thread on loopback ---- */

static int hook_calls, hook_here;
static char hook_query[256];

static int lookup_none(void *ud, const char *name, ms_rtsp_stream_t *out)
{
    (void)ud;
    (void)name;
    (void)out;
    return -ENOENT;
}

static void release_none(void *ud, void *ref)
{
    (void)ud;
    (void)ref;
}

static int post_none(void *ud, void *exec, void (*fn)(void *arg), void *arg)
{
    (void)ud;
    (void)exec;
    (void)fn;
    (void)arg;
    return -ENOSYS;
}

/* "moved" goes to another server, everything else is unknown here. */
static int hook(void *ud, const char *stream, const char *query, int here, char *base, size_t cap)
{
    (void)ud;
    hook_calls++;
    hook_here = here;
    snprintf(hook_query, sizeof hook_query, "%s", query);
    if (strcmp(stream, "moved") != 0)
        return 0;
    snprintf(base, cap, "rtsp://127.0.0.2:18554");
    return 1;
}

/* Sends req and reads one response (headers only: none has a body). */
static int roundtrip(int fd, const char *req, char *out, size_t cap)
{
    if (write(fd, req, strlen(req)) != (ssize_t)strlen(req))
        return -1;
    size_t len = 0;
    for (int i = 0; i < 50 && len + 1 < cap; i++) {
        ssize_t n = read(fd, out + len, cap - 1 - len);
        if (n <= 0)
            return -1;
        len += (size_t)n;
        out[len] = '\0';
        if (strstr(out, "\r\n\r\n"))
            return 0;
    }
    return -1;
}

static void test_accept_thread_redirects(void **state)
{
    (void)state;
    char err[256];
    ms_rtsp_server_cfg_t cfg = {
        .address = "127.0.0.1",
        .port = 0,
        .lookup = lookup_none,
        .release = release_none,
        .post = post_none,
        .redirect = hook,
    };
    ms_rtsp_server_t *srv = ms_rtsp_server_start(&cfg, err, sizeof err);
    assert_non_null(srv);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)ms_rtsp_server_port(srv));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    char r[4096];

    /* OPTIONS for the moved stream: answered here (clients follow a
     * redirect of DESCRIBE) */
    assert_int_equal(roundtrip(fd,
                               "OPTIONS rtsp://127.0.0.1/moved?token=t RTSP/1.0\r\nCSeq: 1\r\n\r\n",
                               r, sizeof r),
                     0);
    assert_true(strncmp(r, "RTSP/1.0 200 ", 13) == 0);
    assert_non_null(strstr(r, "CSeq: 1\r\n"));
    assert_non_null(strstr(r, "Public: "));
    assert_null(strstr(r, "Location"));

    /* DESCRIBE: 302 with the same path and query on the other server */
    assert_int_equal(roundtrip(fd,
                               "DESCRIBE rtsp://127.0.0.1/moved?token=t&from=1700000000 "
                               "RTSP/1.0\r\nCSeq: 2\r\nAccept: application/sdp\r\n\r\n",
                               r, sizeof r),
                     0);
    assert_true(strncmp(r, "RTSP/1.0 302 Moved Temporarily\r\n", 32) == 0);
    assert_non_null(strstr(r, "CSeq: 2\r\n"));
    assert_non_null(
        strstr(r, "\r\nLocation: rtsp://127.0.0.2:18554/moved?token=t&from=1700000000\r\n"));
    assert_string_equal(hook_query, "token=t&from=1700000000");
    assert_int_equal(hook_here, 0);

    /* the connection stays usable: a stream the hook keeps here is 404 */
    int before = hook_calls;
    assert_int_equal(
        roundtrip(fd, "DESCRIBE rtsp://127.0.0.1/other RTSP/1.0\r\nCSeq: 3\r\n\r\n", r, sizeof r),
        0);
    assert_true(strncmp(r, "RTSP/1.0 404 ", 13) == 0);
    assert_int_equal(hook_calls, before + 1);
    /* a method that is never redirected does not ask the hook */
    assert_int_equal(
        roundtrip(fd, "ANNOUNCE rtsp://127.0.0.1/moved RTSP/1.0\r\nCSeq: 4\r\n\r\n", r, sizeof r),
        0);
    assert_true(strncmp(r, "RTSP/1.0 404 ", 13) == 0);
    assert_int_equal(hook_calls, before + 1);
    close(fd);
    ms_rtsp_server_stop(srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_location),
        cmocka_unit_test(test_location_errors),
        cmocka_unit_test(test_response),
        cmocka_unit_test(test_accept_thread_redirects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
