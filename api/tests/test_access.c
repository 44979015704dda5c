/* Playback access decisions (public / protected / private, trusted proxies,
 * tokens, public links vs external_access) and share links. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "api/access.h"

typedef struct {
    ms_node_cfg_t node;
    ms_stream_cfg_t s;
} fx_t;

static char *wl[] = {"192.0.2.0/24", "2001:db8:1::/48"};
static char *proxies[] = {"127.0.0.1/32"};

static int setup(void **st)
{
    static fx_t fx;
    memset(&fx, 0, sizeof fx);
    ms_node_cfg_defaults(&fx.node);
    snprintf(fx.node.secret, sizeof fx.node.secret, "%s", "s3cret");
    snprintf(fx.node.advertise, sizeof fx.node.advertise, "%s", "203.0.113.10");
    fx.node.port_http = 8080;
    fx.node.port_rtsp = 8554;
    fx.node.trusted_proxies = proxies;
    fx.node.ntrusted_proxies = 1;
    ms_stream_cfg_defaults(&fx.s);
    snprintf(fx.s.uid, sizeof fx.s.uid, "%s", "uid-1");
    snprintf(fx.s.name, sizeof fx.s.name, "%s", "cam1");
    snprintf(fx.s.quality, sizeof fx.s.quality, "%s", "high");
    fx.s.whitelist = wl;
    fx.s.nwhitelist = 2;
    *st = &fx;
    return 0;
}

static struct sockaddr_storage peer4(const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    a->sin_family = AF_INET;
    inet_pton(AF_INET, ip, &a->sin_addr);
    return ss;
}

static struct sockaddr_storage peer6(const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    a->sin6_family = AF_INET6;
    inet_pton(AF_INET6, ip, &a->sin6_addr);
    return ss;
}

#define NOW 1700000000LL

static int check(fx_t *fx, struct sockaddr_storage *p, const char *xff, const char *tok, int mode,
                 int64_t at, char *why)
{
    return ms_access_check_at(&fx->s, &fx->node, (struct sockaddr *)p, xff, NULL, tok, mode, at,
                              NOW, why, 128);
}

static void test_public(void **st)
{
    fx_t *fx = *st;
    char why[128];
    struct sockaddr_storage p = peer4("203.0.113.99");
    fx->s.access_mode = MS_ACCESS_PUBLIC;
    assert_int_equal(check(fx, &p, NULL, NULL, MS_ACCESS_LIVE, 0, why), 0);
    assert_int_equal(check(fx, &p, NULL, "junk", MS_ACCESS_ARCHIVE, 5, why), 0);
}

static void test_protected(void **st)
{
    fx_t *fx = *st;
    char why[128];
    fx->s.access_mode = MS_ACCESS_PROTECTED;
    struct sockaddr_storage in = peer4("192.0.2.44"), out = peer4("198.51.100.1");
    struct sockaddr_storage mapped = peer6("::ffff:192.0.2.44"), v6 = peer6("2001:db8:1:2::3");
    struct sockaddr_storage v6out = peer6("2001:db8:2::3"), proxy = peer4("127.0.0.1");
    assert_int_equal(check(fx, &in, NULL, NULL, MS_ACCESS_LIVE, 0, why), 0);
    assert_int_equal(check(fx, &mapped, NULL, NULL, MS_ACCESS_LIVE, 0, why), 0);
    assert_int_equal(check(fx, &v6, NULL, NULL, MS_ACCESS_LIVE, 0, why), 0);
    assert_int_equal(check(fx, &out, NULL, NULL, MS_ACCESS_LIVE, 0, why), -EACCES);
    assert_non_null(strstr(why, "198.51.100.1"));
    assert_int_equal(check(fx, &v6out, NULL, NULL, MS_ACCESS_LIVE, 0, why), -EACCES);
    /* XFF from an untrusted peer is ignored (cannot spoof into the list) */
    assert_int_equal(check(fx, &out, "192.0.2.44", NULL, MS_ACCESS_LIVE, 0, why), -EACCES);
    /* the trusted proxy: its XFF is believed, both ways */
    assert_int_equal(check(fx, &proxy, "192.0.2.44", NULL, MS_ACCESS_LIVE, 0, why), 0);
    assert_int_equal(check(fx, &proxy, "198.51.100.1", NULL, MS_ACCESS_LIVE, 0, why), -EACCES);
    assert_int_equal(check(fx, &proxy, NULL, NULL, MS_ACCESS_LIVE, 0, why), -EACCES);
    assert_int_equal(ms_access_check_at(&fx->s, &fx->node, (struct sockaddr *)&proxy, NULL,
                                        "for=192.0.2.1", NULL, MS_ACCESS_LIVE, 0, NOW, why, 128),
                     0);
    /* a valid token admits a client outside the whitelist */
    char tok[MS_TOKEN_MAX];
    assert_true(
        ms_token_make("s3cret", "uid-1", MS_TOKEN_LIVE, NOW + 60, 0, 0, NULL, tok, sizeof tok) > 0);
    assert_int_equal(check(fx, &out, NULL, tok, MS_ACCESS_LIVE, 0, why), 0);
    tok[5] = tok[5] == 'x' ? 'y' : 'x';
    assert_int_equal(check(fx, &out, NULL, tok, MS_ACCESS_LIVE, 0, why), -EACCES);
}

static void test_private(void **st)
{
    fx_t *fx = *st;
    char why[128], tok[MS_TOKEN_MAX];
    fx->s.access_mode = MS_ACCESS_PRIVATE;
    struct sockaddr_storage in = peer4("192.0.2.44"), proxy = peer4("127.0.0.1");
    /* no token: 401 even inside the whitelist */
    assert_int_equal(check(fx, &in, NULL, NULL, MS_ACCESS_LIVE, 0, why), -EPERM);
    assert_int_equal(check(fx, &in, NULL, "", MS_ACCESS_LIVE, 0, why), -EPERM);
    assert_true(ms_token_make("s3cret", "uid-1", MS_TOKEN_LIVE, NOW + 60, 0, 0, "198.51.100.7", tok,
                              sizeof tok) > 0);
    /* IP-bound token: the client address comes from XFF via the proxy */
    assert_int_equal(check(fx, &proxy, "198.51.100.7", tok, MS_ACCESS_LIVE, 0, why), 0);
    assert_int_equal(check(fx, &proxy, "198.51.100.8", tok, MS_ACCESS_LIVE, 0, why), -EACCES);
    assert_non_null(strstr(why, "address"));
    assert_int_equal(check(fx, &in, NULL, tok, MS_ACCESS_LIVE, 0, why), -EACCES);
    assert_int_equal(check(fx, &proxy, "198.51.100.7", tok, MS_ACCESS_ARCHIVE, NOW, why), -EACCES);
    assert_non_null(strstr(why, "live token"));
    /* expired */
    assert_true(ms_token_make("s3cret", "uid-1", MS_TOKEN_LIVE, NOW, 0, 0, NULL, tok, sizeof tok) >
                0);
    assert_int_equal(check(fx, &in, NULL, tok, MS_ACCESS_LIVE, 0, why), -EACCES);
    assert_non_null(strstr(why, "expired"));
    /* another stream */
    assert_true(
        ms_token_make("s3cret", "uid-2", MS_TOKEN_LIVE, NOW + 9, 0, 0, NULL, tok, sizeof tok) > 0);
    assert_int_equal(check(fx, &in, NULL, tok, MS_ACCESS_LIVE, 0, why), -EACCES);
    assert_non_null(strstr(why, "another stream"));
    /* secret rotation */
    assert_true(
        ms_token_make("s3cret", "uid-1", MS_TOKEN_LIVE, NOW + 9, 0, 0, NULL, tok, sizeof tok) > 0);
    assert_int_equal(check(fx, &in, NULL, tok, MS_ACCESS_LIVE, 0, why), 0);
    snprintf(fx->node.secret, sizeof fx->node.secret, "%s", "rotated");
    assert_int_equal(check(fx, &in, NULL, tok, MS_ACCESS_LIVE, 0, why), -EACCES);
    assert_non_null(strstr(why, "tampered"));
    snprintf(fx->node.secret, sizeof fx->node.secret, "%s", "s3cret");
    /* a public (no expiry) token needs external_access */
    assert_true(ms_token_make("s3cret", "uid-1", MS_TOKEN_LIVE, 0, 0, 0, NULL, tok, sizeof tok) >
                0);
    fx->node.external_access = 0;
    assert_int_equal(check(fx, &in, NULL, tok, MS_ACCESS_LIVE, 0, why), -EACCES);
    assert_non_null(strstr(why, "external_access"));
    fx->node.external_access = 1;
    assert_int_equal(check(fx, &in, NULL, tok, MS_ACCESS_LIVE, 0, why), 0);
    fx->node.external_access = 0;
}

/* Pulls token=... out of a URL. */
static const char *url_token(const char *url)
{
    const char *t = strstr(url, "token=");
    return t ? t + 6 : NULL;
}

static void test_share(void **st)
{
    fx_t *fx = *st;
    char url[512], err[128], why[128];
    const char *field = NULL;
    int64_t exp = -1;
    fx->s.access_mode = MS_ACCESS_PRIVATE;
    struct sockaddr_storage any = peer4("198.51.100.200");

    ms_share_req_t r = {.mode = MS_ACCESS_LIVE, .ttl_s = 3 * 3600, .protocol = MS_SHARE_HLS};
    assert_int_equal(
        ms_share_build(&r, &fx->s, &fx->node, NOW, url, sizeof url, &exp, &field, err, sizeof err),
        0);
    assert_int_equal(exp, NOW + 3 * 3600);
    assert_int_equal(strncmp(url, "http://203.0.113.10:8080/cam1/index.m3u8?token=", 47), 0);
    assert_int_equal(check(fx, &any, NULL, url_token(url), MS_ACCESS_LIVE, 0, why), 0);

    r.protocol = MS_SHARE_RTSP;
    assert_int_equal(
        ms_share_build(&r, &fx->s, &fx->node, NOW, url, sizeof url, &exp, &field, err, sizeof err),
        0);
    assert_int_equal(strncmp(url, "rtsp://203.0.113.10:8554/cam1?token=", 36), 0);

    /* archive: one-day window from `from` */
    r = (ms_share_req_t){.mode = MS_ACCESS_ARCHIVE,
                         .from = NOW - 7200,
                         .ttl_s = 30 * 86400,
                         .protocol = MS_SHARE_HLS};
    assert_int_equal(
        ms_share_build(&r, &fx->s, &fx->node, NOW, url, sizeof url, &exp, &field, err, sizeof err),
        0);
    char want[128];
    snprintf(want, sizeof want, "http://203.0.113.10:8080/cam1/archive-%lld-86400.m3u8?token=",
             (long long)(NOW - 7200));
    assert_int_equal(strncmp(url, want, strlen(want)), 0);
    const char *t = url_token(url);
    assert_int_equal(check(fx, &any, NULL, t, MS_ACCESS_ARCHIVE, NOW - 7200, why), 0);
    assert_int_equal(check(fx, &any, NULL, t, MS_ACCESS_ARCHIVE, NOW - 7200 + 86400, why), -EACCES);
    assert_int_equal(check(fx, &any, NULL, t, MS_ACCESS_ARCHIVE, NOW - 7201, why), -EACCES);
    assert_int_equal(check(fx, &any, NULL, t, MS_ACCESS_LIVE, 0, why), -EACCES);
    r.protocol = MS_SHARE_RTSP;
    assert_int_equal(
        ms_share_build(&r, &fx->s, &fx->node, NOW, url, sizeof url, &exp, &field, err, sizeof err),
        0);
    snprintf(want, sizeof want,
             "rtsp://203.0.113.10:8554/cam1?from=%lld&token=", (long long)(NOW - 7200));
    assert_int_equal(strncmp(url, want, strlen(want)), 0);

    /* errors */
    r = (ms_share_req_t){.mode = MS_ACCESS_ARCHIVE, .protocol = MS_SHARE_HLS};
    assert_int_equal(
        ms_share_build(&r, &fx->s, &fx->node, NOW, url, sizeof url, &exp, &field, err, sizeof err),
        -EINVAL);
    assert_string_equal(field, "from");
    r.from = NOW;
    snprintf(fx->s.quality, sizeof fx->s.quality, "%s", "low");
    assert_int_equal(
        ms_share_build(&r, &fx->s, &fx->node, NOW, url, sizeof url, &exp, &field, err, sizeof err),
        -EPERM);
    snprintf(fx->s.quality, sizeof fx->s.quality, "%s", "high");
    r = (ms_share_req_t){.mode = MS_ACCESS_LIVE, .ttl_s = 30 * 86400 + 1};
    assert_int_equal(
        ms_share_build(&r, &fx->s, &fx->node, NOW, url, sizeof url, &exp, &field, err, sizeof err),
        -EINVAL);
    assert_string_equal(field, "ttl_s");
    r = (ms_share_req_t){.mode = 7};
    assert_int_equal(
        ms_share_build(&r, &fx->s, &fx->node, NOW, url, sizeof url, &exp, &field, err, sizeof err),
        -EINVAL);
    assert_string_equal(field, "mode");
    r = (ms_share_req_t){.mode = MS_ACCESS_LIVE, .protocol = (ms_share_proto_t)5};
    assert_int_equal(
        ms_share_build(&r, &fx->s, &fx->node, NOW, url, sizeof url, &exp, &field, err, sizeof err),
        -EINVAL);
    assert_string_equal(field, "protocol");
    /* public: 409 without external_access, no expiry with it */
    r = (ms_share_req_t){.mode = MS_ACCESS_LIVE, .is_public = 1};
    fx->node.external_access = 0;
    assert_int_equal(
        ms_share_build(&r, &fx->s, &fx->node, NOW, url, sizeof url, &exp, &field, err, sizeof err),
        -EPERM);
    assert_string_equal(field, "public");
    fx->node.external_access = 1;
    assert_int_equal(
        ms_share_build(&r, &fx->s, &fx->node, NOW, url, sizeof url, &exp, &field, err, sizeof err),
        0);
    assert_int_equal(exp, 0);
    assert_int_equal(ms_access_check_at(&fx->s, &fx->node, (struct sockaddr *)&any, NULL, NULL,
                                        url_token(url), MS_ACCESS_LIVE, 0, NOW + 400 * 86400, why,
                                        sizeof why),
                     0);
    fx->node.external_access = 0;
    /* IPv6 advertise address gets brackets */
    snprintf(fx->node.advertise, sizeof fx->node.advertise, "%s", "2001:db8::10");
    r = (ms_share_req_t){.mode = MS_ACCESS_LIVE, .protocol = MS_SHARE_RTSP};
    assert_int_equal(
        ms_share_build(&r, &fx->s, &fx->node, NOW, url, sizeof url, &exp, &field, err, sizeof err),
        0);
    assert_int_equal(strncmp(url, "rtsp://[2001:db8::10]:8554/cam1?token=", 38), 0);
    assert_int_equal(exp, NOW + 86400);
    assert_int_equal(
        ms_share_build(&r, &fx->s, &fx->node, NOW, url, 40, &exp, &field, err, sizeof err),
        -ENOSPC);
    snprintf(fx->node.advertise, sizeof fx->node.advertise, "%s", "203.0.113.10");
}

/* The decision point: hidden (as unknown) vs denied (the holder of a
 * genuine token learns why), the archive window and expiry it carries, and
 * the window rule's clip. */
static void test_decide(void **st)
{
    fx_t *fx = *st;
    fx->s.access_mode = MS_ACCESS_PRIVATE;
    struct sockaddr_storage in = peer4("192.0.2.44");
    char tok[MS_TOKEN_MAX], other[MS_TOKEN_MAX];
    ms_play_decision_t d;
    ms_play_req_t q = {&fx->s, &fx->node, (struct sockaddr *)&in, NULL,
                       NULL,   NULL,      MS_ACCESS_LIVE,         0};
    /* no token, a tampered one, one for another stream: hidden */
    assert_int_equal(ms_playback_decide(&q, NOW, &d), -ENOENT);
    assert_int_equal(d.verdict, MS_PLAY_HIDDEN);
    assert_true(ms_token_make("s3cret", "uid-2", MS_TOKEN_LIVE, NOW + 9, 0, 0, NULL, other,
                              sizeof other) > 0);
    q.token = other;
    assert_int_equal(ms_playback_decide(&q, NOW, &d), -ENOENT);
    q.token = "AAAA";
    assert_int_equal(ms_playback_decide(&q, NOW, &d), -ENOENT);
    /* a protected stream outside its whitelist: hidden too */
    fx->s.access_mode = MS_ACCESS_PROTECTED;
    struct sockaddr_storage out = peer4("198.51.100.1");
    q.peer = (struct sockaddr *)&out;
    q.token = NULL;
    assert_int_equal(ms_playback_decide(&q, NOW, &d), -ENOENT);
    fx->s.access_mode = MS_ACCESS_PRIVATE;
    q.peer = (struct sockaddr *)&in;

    /* a live token: allowed, lapses at its expiry, no window */
    assert_true(
        ms_token_make("s3cret", "uid-1", MS_TOKEN_LIVE, NOW + 30, 0, 0, NULL, tok, sizeof tok) > 0);
    q.token = tok;
    assert_int_equal(ms_playback_decide(&q, NOW, &d), 0);
    assert_int_equal(d.expires, NOW + 30);
    assert_true(d.by_token);
    /* ...denied (with the reason) once expired or used for the archive */
    assert_int_equal(ms_playback_decide(&q, NOW + 30, &d), -EACCES);
    assert_int_equal(d.verdict, MS_PLAY_DENIED);
    assert_non_null(strstr(d.reason, "expired"));
    q.mode = MS_ACCESS_ARCHIVE;
    q.at_ms = MS_PLAY_ANY_TIME;
    assert_int_equal(ms_playback_decide(&q, NOW, &d), -EACCES);

    /* an archive token for [T, T+4): the window in ms; any time or a time
     * inside it is allowed, a time outside denied */
    int64_t T = NOW - 3600;
    assert_true(ms_token_make("s3cret", "uid-1", MS_TOKEN_ARCHIVE, NOW + 60, T, T + 4, NULL, tok,
                              sizeof tok) > 0);
    assert_int_equal(ms_playback_decide(&q, NOW, &d), 0);
    assert_int_equal(d.win_from_ms, T * 1000);
    assert_int_equal(d.win_to_ms, (T + 4) * 1000);
    q.at_ms = T * 1000 + 3999;
    assert_int_equal(ms_playback_decide(&q, NOW, &d), 0);
    assert_true(ms_play_time_ok(&d, T * 1000));
    assert_false(ms_play_time_ok(&d, (T + 4) * 1000));
    assert_false(ms_play_time_ok(&d, T * 1000 - 1));
    q.at_ms = (T + 70) * 1000;
    assert_int_equal(ms_playback_decide(&q, NOW, &d), -EACCES);
    assert_non_null(strstr(d.reason, "window"));
    q.at_ms = T * 1000 - 1; /* before the window: not floored into it */
    assert_int_equal(ms_playback_decide(&q, NOW, &d), -EACCES);

    /* the clip: a day asked from T gives [T, T+4); a range after it none */
    q.at_ms = MS_PLAY_ANY_TIME;
    assert_int_equal(ms_playback_decide(&q, NOW, &d), 0);
    int64_t f = T * 1000, e = (T + 86400) * 1000;
    assert_int_equal(ms_play_clip(&d, &f, &e), 1);
    assert_int_equal(f, T * 1000);
    assert_int_equal(e, (T + 4) * 1000);
    f = (T - 100) * 1000;
    e = (T + 2) * 1000;
    assert_int_equal(ms_play_clip(&d, &f, &e), 1);
    assert_int_equal(f, T * 1000);
    assert_int_equal(e, (T + 2) * 1000);
    f = (T + 4) * 1000;
    e = (T + 10) * 1000;
    assert_int_equal(ms_play_clip(&d, &f, &e), 0);

    /* public stream: no window, no expiry */
    fx->s.access_mode = MS_ACCESS_PUBLIC;
    assert_int_equal(ms_playback_decide(&q, NOW, &d), 0);
    assert_int_equal(d.win_from_ms, INT64_MIN);
    assert_int_equal(d.win_to_ms, INT64_MAX);
    assert_int_equal(d.expires, 0);
    fx->s.access_mode = MS_ACCESS_PRIVATE;
}

/* A share link's from is one the archive routes accept. */
static void test_share_from(void **st)
{
    fx_t *fx = *st;
    char url[512], err[128];
    const char *field = NULL;
    int64_t exp = 0;
    ms_share_req_t r = {
        .mode = MS_ACCESS_ARCHIVE, .from = MS_ARCHIVE_FROM_MAX + 1, .protocol = MS_SHARE_HLS};
    assert_int_equal(
        ms_share_build(&r, &fx->s, &fx->node, NOW, url, sizeof url, &exp, &field, err, sizeof err),
        -EINVAL);
    assert_string_equal(field, "from");
    r.from = MS_ARCHIVE_FROM_MAX;
    assert_int_equal(
        ms_share_build(&r, &fx->s, &fx->node, NOW, url, sizeof url, &exp, &field, err, sizeof err),
        0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_public, setup),  cmocka_unit_test_setup(test_protected, setup),
        cmocka_unit_test_setup(test_private, setup), cmocka_unit_test_setup(test_share, setup),
        cmocka_unit_test_setup(test_decide, setup),  cmocka_unit_test_setup(test_share_from, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
