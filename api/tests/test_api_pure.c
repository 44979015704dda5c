/* Pure parts of the HTTP server: request-target parsing, routes, admin
 * auth header parsing, Prometheus rendering, the HLS client table. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <netinet/in.h>

#include "api/api.h"
#include "util/urlquery.h"

static void test_split(void **state)
{
    (void)state;
    ms_url_parts_t p;
    const char *t = "/cam1/index.m3u8?_HLS_msn=5&token=a%20b";
    assert_int_equal(ms_url_split(t, strlen(t), &p), 0);
    assert_int_equal(p.path_len, strlen("/cam1/index.m3u8"));
    assert_memory_equal(p.query, "_HLS_msn=5&token=a%20b", p.query_len);
    assert_int_equal(ms_url_split("cam1", 4, &p), -EINVAL);
    assert_int_equal(ms_url_split("/a b", 4, &p), -EINVAL);
    assert_int_equal(ms_url_split("/a#b", 4, &p), -EINVAL);
    assert_int_equal(ms_url_split("/a\x01", 3, &p), -EINVAL);
    static char big[MS_URL_MAX + 2];
    memset(big, 'a', sizeof(big) - 1);
    big[0] = '/';
    assert_int_equal(ms_url_split(big, MS_URL_MAX + 1, &p), -E2BIG);
    assert_int_equal(ms_url_split(big, MS_URL_MAX, &p), 0);
    assert_null(p.query);
}

static void test_decode(void **state)
{
    (void)state;
    char out[32];
    assert_int_equal(ms_url_decode("a%20b+c", 7, 1, out, sizeof(out)), 5);
    assert_string_equal(out, "a b c");
    assert_int_equal(ms_url_decode("a%20b+c", 7, 0, out, sizeof(out)), 5);
    assert_string_equal(out, "a b+c");
    assert_int_equal(ms_url_decode("%4A%6b", 6, 0, out, sizeof(out)), 2);
    assert_string_equal(out, "Jk");
    assert_int_equal(ms_url_decode("%", 1, 0, out, sizeof(out)), -EINVAL);
    assert_int_equal(ms_url_decode("%2", 2, 0, out, sizeof(out)), -EINVAL);
    assert_int_equal(ms_url_decode("%zz", 3, 0, out, sizeof(out)), -EINVAL);
    assert_int_equal(ms_url_decode("%00", 3, 0, out, sizeof(out)), -EINVAL);
    assert_int_equal(ms_url_decode("abcdef", 6, 0, out, 6), -ENOSPC);
    assert_int_equal(ms_url_decode("abcde", 5, 0, out, 6), 5);
}

static void test_path(void **state)
{
    (void)state;
    char buf[256], *segs[MS_URL_MAX_SEGS];
#define SPLIT(s) ms_url_path_split(s, strlen(s), buf, sizeof(buf), segs, MS_URL_MAX_SEGS)
    assert_int_equal(SPLIT("/"), 0);
    assert_int_equal(SPLIT("/api/v1/streams/"), 3);
    assert_string_equal(segs[2], "streams");
    assert_int_equal(SPLIT("/cam%201/index.m3u8"), 2);
    assert_string_equal(segs[0], "cam 1");
    assert_string_equal(segs[1], "index.m3u8");
    assert_int_equal(SPLIT("/../etc/passwd"), -EINVAL);
    assert_int_equal(SPLIT("/cam/%2e%2e/x"), -EINVAL);
    assert_int_equal(SPLIT("/cam/./x"), -EINVAL);
    assert_int_equal(SPLIT("/cam/a%2fb"), -EINVAL);
    assert_int_equal(SPLIT("/cam/a%5cb"), -EINVAL);
    assert_int_equal(SPLIT("/cam//x"), -EINVAL);
    assert_int_equal(SPLIT("//"), -EINVAL);
    assert_int_equal(SPLIT("/cam/%zz"), -EINVAL);
    assert_int_equal(SPLIT("/a/b/c/d/e/f/g/h/i"), -E2BIG);
    assert_int_equal(SPLIT("/a/b/c/d/e/f/g/h"), 8);
    assert_int_equal(ms_url_path_split("/abcdef", 7, buf, 4, segs, 8), -ENOSPC);
#undef SPLIT
}

static void test_query(void **state)
{
    (void)state;
    char v[16];
    const char *q = "a=1&_HLS_msn=12&flag&token=x%2By+z&bad=%G1";
    size_t n = strlen(q);
    assert_int_equal(ms_url_query_get(q, n, "_HLS_msn", v, sizeof(v)), 2);
    assert_string_equal(v, "12");
    assert_int_equal(ms_url_query_get(q, n, "flag", v, sizeof(v)), 0);
    assert_string_equal(v, "");
    assert_int_equal(ms_url_query_get(q, n, "token", v, sizeof(v)), 5);
    assert_string_equal(v, "x+y z");
    assert_int_equal(ms_url_query_get(q, n, "missing", v, sizeof(v)), -ENOENT);
    assert_int_equal(ms_url_query_get(q, n, "bad", v, sizeof(v)), -EINVAL);
    assert_int_equal(ms_url_query_get(NULL, 0, "a", v, sizeof(v)), -ENOENT);
    assert_int_equal(ms_url_query_get("a=0123456789abcdefXYZ", 21, "a", v, sizeof(v)), -ENOSPC);
    assert_int_equal(ms_url_query_validate(q, n), -EINVAL);
    assert_int_equal(ms_url_query_validate("a=%41&b=c", 9), 0);
    assert_int_equal(ms_url_query_validate("a=%4", 4), -EINVAL);
    assert_int_equal(ms_url_query_validate("a=%00", 5), -EINVAL);
    /* first pair wins, ';' separates too */
    assert_int_equal(ms_url_query_get("x=1;x=2", 7, "x", v, sizeof(v)), 1);
    assert_string_equal(v, "1");
}

static void test_encode_int_csv(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(ms_url_encode("a b/c~d", out, sizeof(out)), 11);
    assert_string_equal(out, "a%20b%2Fc~d");
    assert_int_equal(ms_url_encode("abc", out, 3), -ENOSPC);
    int64_t x;
    assert_int_equal(ms_url_parse_i64("0", 0, 100, &x), 0);
    assert_int_equal(x, 0);
    assert_int_equal(ms_url_parse_i64("42", 0, 100, &x), 0);
    assert_int_equal(x, 42);
    assert_int_equal(ms_url_parse_i64("101", 0, 100, &x), -ERANGE);
    assert_int_equal(ms_url_parse_i64("-1", 0, 100, &x), -EINVAL);
    assert_int_equal(ms_url_parse_i64("-5", -10, 100, &x), 0);
    assert_int_equal(x, -5);
    assert_int_equal(ms_url_parse_i64("", 0, 100, &x), -EINVAL);
    assert_int_equal(ms_url_parse_i64("1a", 0, 100, &x), -EINVAL);
    assert_int_equal(ms_url_parse_i64("01", 0, 100, &x), -EINVAL);
    assert_int_equal(ms_url_parse_i64(" 1", 0, 100, &x), -EINVAL);
    assert_int_equal(ms_url_parse_i64("99999999999999999999999", 0, INT64_MAX, &x), -ERANGE);
    assert_int_equal(ms_url_parse_i64("9223372036854775807", 0, INT64_MAX, &x), 0);
    assert_true(x == INT64_MAX);
    assert_int_equal(ms_url_parse_i64("-9223372036854775808", INT64_MIN, 0, &x), 0);
    assert_true(x == INT64_MIN);
    assert_true(ms_url_csv_has("primary,secondary", "secondary"));
    assert_true(ms_url_csv_has("active", "active"));
    assert_false(ms_url_csv_has("primary,secondary", "second"));
    assert_false(ms_url_csv_has("", "x"));
}

static void route(const char *m, const char *path, ms_route_t *r)
{
    static char buf[512];
    static char *segs[MS_URL_MAX_SEGS];
    int n = ms_url_path_split(path, strlen(path), buf, sizeof(buf), segs, MS_URL_MAX_SEGS);
    assert_true(n >= 0);
    ms_route_match(m, segs, n, r);
}

static void test_cpanel_paths(void **state)
{
    (void)state;
    char a[] = "app.js", v[] = "vendor", hv[] = "hls.js-1.7.4", m[] = "hls.min.mjs";
    char dots[] = "..", hid[] = ".env", sp[] = "a b.js", bs[] = "a\\b.js", empty[] = "";
    char *ok1[] = {a}, *ok2[] = {v, hv, m};
    assert_int_equal(ms_cpanel_path_ok(ok1, 0), 0); /* index.html */
    assert_int_equal(ms_cpanel_path_ok(ok1, 1), 0);
    assert_int_equal(ms_cpanel_path_ok(ok2, 3), 0);
    char *bad[][2] = {{v, dots}, {hid, a}, {v, sp}, {v, bs}, {v, empty}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(ms_cpanel_path_ok(bad[i], 2), -EINVAL);
    char *deep[] = {v, v, v, v, v, v, a};
    assert_int_equal(ms_cpanel_path_ok(deep, 7), -EINVAL);
    assert_string_equal(ms_cpanel_ctype("index.html"), "text/html; charset=utf-8");
    assert_string_equal(ms_cpanel_ctype("hls.min.mjs"), "text/javascript; charset=utf-8");
    assert_string_equal(ms_cpanel_ctype("style.css"), "text/css; charset=utf-8");
    assert_null(ms_cpanel_ctype("copy.cmake"));
    assert_null(ms_cpanel_ctype("README"));
    ms_node_cfg_t cfg;
    memset(&cfg, 0, sizeof cfg);
    snprintf(cfg.cpanel_dir, sizeof cfg.cpanel_dir, "/srv/panel");
    assert_string_equal(ms_cpanel_dir(&cfg), "/srv/panel");
    cfg.cpanel_dir[0] = '\0';
    assert_true(ms_cpanel_dir(&cfg)[0] == '/');
}

static void test_routes(void **state)
{
    (void)state;
    ms_route_t r;
    route("GET", "/", &r);
    assert_int_equal(r.id, MS_ROUTE_ROOT);
    /* the web panel; a stream called "cpanel" still plays */
    route("GET", "/cpanel/", &r);
    assert_int_equal(r.id, MS_ROUTE_CPANEL);
    route("GET", "/cpanel/vendor/hls.js-1.7.4/hls.min.mjs", &r);
    assert_int_equal(r.id, MS_ROUTE_CPANEL);
    route("POST", "/cpanel/app.js", &r);
    assert_int_equal(r.id, MS_ROUTE_CPANEL);
    assert_false(r.method_ok);
    route("GET", "/cpanel/index.m3u8", &r);
    assert_int_equal(r.id, MS_ROUTE_HLS_PLAYLIST);
    assert_string_equal(r.stream, "cpanel");
    route("GET", "/cam1/index.m3u8", &r);
    assert_int_equal(r.id, MS_ROUTE_HLS_PLAYLIST);
    assert_string_equal(r.stream, "cam1");
    assert_true(r.method_ok);
    route("HEAD", "/cam1/seg12.ts", &r);
    assert_int_equal(r.id, MS_ROUTE_HLS_MEDIA);
    assert_string_equal(r.name, "seg12.ts");
    assert_true(r.method_ok);
    route("POST", "/cam1/index.m3u8", &r);
    assert_int_equal(r.id, MS_ROUTE_HLS_PLAYLIST);
    assert_false(r.method_ok);
    assert_string_equal(r.allow, "GET, HEAD");
    route("GET", "/cam1/part3.4.m4s", &r);
    assert_int_equal(r.id, MS_ROUTE_HLS_MEDIA);
    route("GET", "/cam1/init0.mp4", &r);
    assert_int_equal(r.id, MS_ROUTE_HLS_MEDIA);
    route("GET", "/cam1/seg.ts", &r);
    assert_int_equal(r.id, MS_ROUTE_NONE);
    route("GET", "/cam1/part3.ts", &r);
    assert_int_equal(r.id, MS_ROUTE_NONE);
    route("GET", "/cam1/seg1.mp3", &r);
    assert_int_equal(r.id, MS_ROUTE_NONE);
    route("GET", "/metrics", &r);
    assert_int_equal(r.id, MS_ROUTE_METRICS);
    route("GET", "/api/v1/streams", &r);
    assert_int_equal(r.id, MS_ROUTE_API_STREAMS);
    route("POST", "/api/v1/streams", &r);
    assert_int_equal(r.id, MS_ROUTE_API_PLANNED);
    assert_true(r.method_ok);
    route("DELETE", "/api/v1/streams", &r);
    assert_false(r.method_ok);
    route("GET", "/api/v1/streams/cam1", &r);
    assert_int_equal(r.id, MS_ROUTE_API_STREAM);
    assert_string_equal(r.stream, "cam1");
    route("PUT", "/api/v1/streams/cam1", &r);
    assert_int_equal(r.id, MS_ROUTE_API_PLANNED);
    route("PATCH", "/api/v1/streams/cam1", &r); /* merge patch (RFC 7396) */
    assert_int_equal(r.id, MS_ROUTE_API_PLANNED);
    assert_true(r.method_ok);
    route("POST", "/api/v1/streams/cam1", &r);
    assert_false(r.method_ok);
    assert_string_equal(r.allow, "GET, HEAD, PUT, PATCH, DELETE");
    route("POST", "/api/v1/streams/cam1/restart", &r);
    assert_int_equal(r.id, MS_ROUTE_API_PLANNED);
    assert_true(r.method_ok);
    route("GET", "/api/v1/streams/cam1/restart", &r);
    assert_false(r.method_ok);
    assert_string_equal(r.allow, "POST");
    route("GET", "/api/v1/streams/cam1/ranges", &r);
    assert_int_equal(r.id, MS_ROUTE_API_RANGES);
    route("POST", "/api/v1/streams/cam1/events", &r);
    assert_int_equal(r.id, MS_ROUTE_API_EVENTS);
    assert_true(r.method_ok);
    route("POST", "/api/v1/login", &r);
    assert_int_equal(r.id, MS_ROUTE_API_LOGIN);
    assert_true(r.method_ok);
    route("GET", "/api/v1/login", &r);
    assert_int_equal(r.id, MS_ROUTE_API_LOGIN);
    assert_false(r.method_ok);
    assert_string_equal(r.allow, "POST");
    route("POST", "/api/v1/login/x", &r);
    assert_int_equal(r.id, MS_ROUTE_API_UNKNOWN);
    route("GET", "/cam1/archive-1700000000-60.m3u8", &r);
    assert_int_equal(r.id, MS_ROUTE_ARCHIVE);
    assert_string_equal(r.name, "archive-1700000000-60.m3u8");
    route("POST", "/api/v1/streams/cam1/tokens", &r);
    assert_int_equal(r.id, MS_ROUTE_API_TOKENS);
    assert_string_equal(r.stream, "cam1");
    assert_true(r.method_ok);
    route("GET", "/api/v1/streams/cam1/share", &r);
    assert_int_equal(r.id, MS_ROUTE_API_SHARE);
    assert_false(r.method_ok);
    assert_string_equal(r.allow, "POST");
    route("GET", "/api/v1/streams/cam1/sessions", &r);
    assert_int_equal(r.id, MS_ROUTE_API_SESSIONS);
    assert_string_equal(r.stream, "cam1");
    assert_true(r.method_ok);
    route("DELETE", "/api/v1/streams/cam1/sessions", &r);
    assert_false(r.method_ok);
    assert_string_equal(r.allow, "GET, HEAD");
    route("DELETE", "/api/v1/streams/cam1/sessions/1f", &r);
    assert_int_equal(r.id, MS_ROUTE_API_SESSIONS);
    assert_string_equal(r.stream, "cam1");
    assert_string_equal(r.name, "1f");
    assert_true(r.method_ok);
    route("GET", "/api/v1/streams/cam1/sessions/1f", &r);
    assert_false(r.method_ok);
    assert_string_equal(r.allow, "DELETE");
    route("DELETE", "/api/v1/streams/cam1/other/1f", &r);
    assert_int_equal(r.id, MS_ROUTE_API_UNKNOWN);
    route("GET", "/cam1/live.mp4", &r);
    assert_int_equal(r.id, MS_ROUTE_LIVE_MP4);
    assert_string_equal(r.stream, "cam1");
    route("HEAD", "/cam1/videoshot.jpg", &r);
    assert_int_equal(r.id, MS_ROUTE_SNAPSHOT);
    assert_string_equal(r.name, "videoshot.jpg");
    assert_true(r.method_ok);
    route("GET", "/cam1/preview.jpg", &r);
    assert_int_equal(r.id, MS_ROUTE_SNAPSHOT);
    assert_string_equal(r.name, "preview.jpg");
    route("POST", "/cam1/preview.mp4", &r);
    assert_int_equal(r.id, MS_ROUTE_PREVIEW_MP4);
    assert_false(r.method_ok);
    route("GET", "/cam1/preview.png", &r);
    assert_int_equal(r.id, MS_ROUTE_NONE);
    route("GET", "/api/v1/streams/cam1/bogus", &r);
    assert_int_equal(r.id, MS_ROUTE_API_UNKNOWN);
    route("GET", "/api/v1/system", &r);
    assert_int_equal(r.id, MS_ROUTE_API_SYSTEM);
    route("GET", "/api/v1/cluster", &r);
    assert_int_equal(r.id, MS_ROUTE_API_PLANNED);
    route("GET", "/api/v1/servers/n1", &r);
    assert_int_equal(r.id, MS_ROUTE_API_PLANNED);
    route("GET", "/api/v1/nothing", &r);
    assert_int_equal(r.id, MS_ROUTE_API_UNKNOWN);
    route("GET", "/api/v1", &r);
    assert_int_equal(r.id, MS_ROUTE_API_UNKNOWN);
    route("GET", "/api/index.m3u8", &r);
    assert_int_equal(r.id, MS_ROUTE_NONE);
}

static void test_auth_parse(void **state)
{
    (void)state;
    char u[32], p[32];
    /* "admin:secret" */
    assert_int_equal(ms_auth_parse_basic("Basic YWRtaW46c2VjcmV0", u, sizeof(u), p, sizeof(p)), 0);
    assert_string_equal(u, "admin");
    assert_string_equal(p, "secret");
    /* scheme is case-insensitive; "a:b:c" -> user a, password b:c */
    assert_int_equal(ms_auth_parse_basic("basic YTpiOmM=", u, sizeof(u), p, sizeof(p)), 0);
    assert_string_equal(u, "a");
    assert_string_equal(p, "b:c");
    /* "u:" -> empty password; padding "==" */
    assert_int_equal(ms_auth_parse_basic("Basic dTo=", u, sizeof(u), p, sizeof(p)), 0);
    assert_string_equal(u, "u");
    assert_string_equal(p, "");
    assert_int_equal(ms_auth_parse_basic("Basic dQ==", u, sizeof(u), p, sizeof(p)), -EINVAL);
    assert_int_equal(ms_auth_parse_basic("Basic !!!!", u, sizeof(u), p, sizeof(p)), -EINVAL);
    assert_int_equal(ms_auth_parse_basic("Basic abc", u, sizeof(u), p, sizeof(p)), -EINVAL);
    assert_int_equal(ms_auth_parse_basic("Basic", u, sizeof(u), p, sizeof(p)), -EINVAL);
    assert_int_equal(ms_auth_parse_basic("Bearer xyz", u, sizeof(u), p, sizeof(p)), -EINVAL);
    assert_int_equal(ms_auth_parse_basic(NULL, u, sizeof(u), p, sizeof(p)), -EINVAL);
    /* user too long for the buffer */
    assert_int_equal(ms_auth_parse_basic("Basic YWRtaW46c2VjcmV0", u, 3, p, sizeof(p)), -EINVAL);
    char t[16];
    assert_int_equal(ms_auth_parse_bearer("Bearer k1", t, sizeof(t)), 0);
    assert_string_equal(t, "k1");
    assert_int_equal(ms_auth_parse_bearer("bearer   k2  ", t, sizeof(t)), 0);
    assert_string_equal(t, "k2");
    assert_int_equal(ms_auth_parse_bearer("Bearer a b", t, sizeof(t)), -EINVAL);
    assert_int_equal(ms_auth_parse_bearer("Bearer ", t, sizeof(t)), -EINVAL);
    assert_int_equal(ms_auth_parse_bearer("Bearerk", t, sizeof(t)), -EINVAL);
    assert_true(ms_auth_secret_eq("abc", "abc"));
    assert_false(ms_auth_secret_eq("abc", "abd"));
    assert_false(ms_auth_secret_eq("abc", "abcd"));
}

static void test_auth_check(void **state)
{
    (void)state;
    ms_node_cfg_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    /* nothing configured: loopback only */
    assert_int_equal(ms_auth_check(&cfg, NULL, 1), 0);
    assert_int_equal(ms_auth_check(&cfg, NULL, 0), -EPERM);
    strcpy(cfg.admin_user, "admin");
    strcpy(cfg.admin_password, "secret");
    assert_int_equal(ms_auth_check(&cfg, NULL, 1), -EACCES);
    assert_int_equal(ms_auth_check(&cfg, "Basic YWRtaW46c2VjcmV0", 0), 0);
    /* admin:secreT */
    assert_int_equal(ms_auth_check(&cfg, "Basic YWRtaW46c2VjcmVU", 0), -EACCES);
    assert_int_equal(ms_auth_check(&cfg, "Bearer secret", 0), -EACCES);
    char *keys[] = {"k-one", "k-two"};
    cfg.api_keys = keys;
    cfg.napi_keys = 2;
    assert_int_equal(ms_auth_check(&cfg, "Bearer k-two", 0), 0);
    assert_int_equal(ms_auth_check(&cfg, "Bearer k-three", 0), -EACCES);
    /* keys only */
    cfg.admin_password[0] = '\0';
    assert_int_equal(ms_auth_check(&cfg, "Basic YWRtaW46c2VjcmV0", 1), -EACCES);
    assert_int_equal(ms_auth_check(&cfg, "Bearer k-one", 0), 0);

    struct sockaddr_in a4 = {.sin_family = AF_INET};
    a4.sin_addr.s_addr = htonl(0x7f000002);
    assert_true(ms_auth_is_loopback((struct sockaddr *)&a4));
    a4.sin_addr.s_addr = htonl(0xc0000201);
    assert_false(ms_auth_is_loopback((struct sockaddr *)&a4));
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6};
    a6.sin6_addr = in6addr_loopback;
    assert_true(ms_auth_is_loopback((struct sockaddr *)&a6));
    uint8_t mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1};
    memcpy(&a6.sin6_addr, mapped, 16);
    assert_true(ms_auth_is_loopback((struct sockaddr *)&a6));
    mapped[12] = 10;
    memcpy(&a6.sin6_addr, mapped, 16);
    assert_false(ms_auth_is_loopback((struct sockaddr *)&a6));
}

static void test_prom(void **state)
{
    (void)state;
    ms_buf_t b = MS_BUF_INIT;
    ms_prom_head(&b, "ms_stream_up", "gauge", "Up");
    ms_prom_sample(&b, "ms_stream_up", "stream", "c\"a\\m\n1", 1);
    ms_prom_sample(&b, "ms_x", NULL, NULL, 2.5);
    ms_prom_sample(&b, "ms_big", NULL, NULL, 12345678901.0);
    assert_string_equal(ms_buf_cstr(&b), "# HELP ms_stream_up Up\n# TYPE ms_stream_up gauge\n"
                                         "ms_stream_up{stream=\"c\\\"a\\\\m\\n1\"} 1\n"
                                         "ms_x 2.5\n"
                                         "ms_big 12345678901\n");
    ms_buf_reset(&b);
    const char *kv[] = {"stream", "c\"1", "role", "secondary", "server", "n2", NULL};
    ms_prom_sample_labels(&b, "ms_stream_up", kv, 0);
    const char *none[] = {NULL};
    ms_prom_sample_labels(&b, "ms_y", none, 3);
    assert_string_equal(ms_buf_cstr(&b),
                        "ms_stream_up{stream=\"c\\\"1\",role=\"secondary\",server=\"n2\"} 0\n"
                        "ms_y 3\n");
    ms_buf_reset(&b);
    double bounds[MS_HLS_LAT_BUCKETS];
    ms_hls_latency_t lat;
    memset(&lat, 0, sizeof(lat));
    for (int i = 0; i < MS_HLS_LAT_BUCKETS; i++) {
        bounds[i] = 50.0 * (i + 1);
        lat.buckets[i] = (uint64_t)(i < 3 ? i : 3);
    }
    lat.count = 4;
    lat.sum_ms = 310.5;
    ms_prom_histogram(&b, "ms_hls_part_latency_ms", "cam1", bounds, &lat);
    const char *s = ms_buf_cstr(&b);
    assert_non_null(strstr(s, "ms_hls_part_latency_ms_bucket{stream=\"cam1\",le=\"50\"} 0\n"
                              "ms_hls_part_latency_ms_bucket{stream=\"cam1\",le=\"100\"} 1\n"));
    assert_non_null(strstr(s, "ms_hls_part_latency_ms_bucket{stream=\"cam1\",le=\"750\"} 3\n"
                              "ms_hls_part_latency_ms_bucket{stream=\"cam1\",le=\"+Inf\"} 4\n"
                              "ms_hls_part_latency_ms_sum{stream=\"cam1\"} 310.5\n"
                              "ms_hls_part_latency_ms_count{stream=\"cam1\"} 4\n"));
    int lines = 0;
    for (const char *p = s; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, MS_HLS_LAT_BUCKETS + 3);
    ms_buf_free(&b);
}

static int g_expired[4];
static void on_expire(void *owner)
{
    g_expired[(intptr_t)owner]++;
}

static void test_clients(void **state)
{
    (void)state;
    memset(g_expired, 0, sizeof(g_expired));
    ms_clients_t *t = ms_clients_new(on_expire, 100000, 100000);
    assert_non_null(t);
    assert_int_equal(ms_clients_touch(t, "s1\n1.2.3.4", "1.2.3.4", (void *)1, 1000), 1);
    assert_int_equal(ms_clients_touch(t, "s1\n1.2.3.4", "1.2.3.4", (void *)1, 5000), 0);
    assert_int_equal(ms_clients_touch(t, "s1\n1.2.3.5", "1.2.3.5", (void *)2, 6000), 1);
    assert_int_equal(ms_clients_touch(t, "s2\n1.2.3.4", "1.2.3.4", (void *)3, 6000), 1);
    assert_int_equal(ms_clients_count(t), 3);
    /* 10 s after the last fetch nothing expires yet, just after it does */
    assert_int_equal(ms_clients_sweep(t, 15000, MS_HLS_CLIENT_TTL_MS), 0);
    assert_int_equal(ms_clients_sweep(t, 15001, MS_HLS_CLIENT_TTL_MS), 1);
    assert_int_equal(g_expired[1], 1);
    assert_int_equal(ms_clients_count(t), 2);
    /* a returning client is new again */
    assert_int_equal(ms_clients_touch(t, "s1\n1.2.3.4", "1.2.3.4", (void *)1, 15002), 1);
    assert_int_equal(ms_clients_sweep(t, 16001, MS_HLS_CLIENT_TTL_MS), 2);
    assert_int_equal(g_expired[2], 1);
    assert_int_equal(g_expired[3], 1);
    ms_clients_free(t); /* expires the rest */
    assert_int_equal(g_expired[1], 2);
    /* many keys, all hashed and all expired */
    t = ms_clients_new(on_expire, 100000, 100000);
    char key[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        assert_int_equal(ms_clients_touch(t, key, "g", (void *)0, i), 1);
    }
    assert_int_equal(ms_clients_count(t), 5000);
    assert_int_equal(ms_clients_sweep(t, 3000 + MS_HLS_CLIENT_TTL_MS, MS_HLS_CLIENT_TTL_MS), 3000);
    ms_clients_free(t);
    assert_int_equal(g_expired[0], 5000);
}

static int g_kicked[4];
static void kick(void *ctx, uint64_t arg)
{
    g_kicked[(intptr_t)ctx] += (int)arg;
}

static const ms_session_info_t *find_id(const ms_session_info_t *v, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].id, id) == 0)
            return &v[i];
    return NULL;
}

/* Sessions: HLS keys and connections in one table, listed per stream with
 * their metadata; ending a connection kicks its owner (which closes it),
 * ending an HLS key drops it (its owner released) and refuses the key. */
static void test_sessions(void **state)
{
    (void)state;
    memset(g_expired, 0, sizeof(g_expired));
    memset(g_kicked, 0, sizeof(g_kicked));
    ms_clients_t *t = ms_clients_new(on_expire, 100, 2);
    ms_session_meta_t hm = {"u1", "hls", "10.0.0.1", "ua\x01\xff-1", 1700000000, 100};
    assert_int_equal(ms_clients_touch_meta(t, "u1\n10.0.0.1", "10.0.0.1", (void *)1, 1000, &hm), 1);
    ms_session_info_t *v = NULL;
    size_t n = 0;
    assert_int_equal(ms_clients_list(t, "u1", &v, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].user_agent, "ua?"
                                         "?-1"); /* printable ASCII only */
    assert_string_equal(v[0].ip, "10.0.0.1");
    free(v);
    hm.bytes = 50;
    hm.protocol = "llhls";
    hm.user_agent = "ua-2";
    assert_int_equal(ms_clients_touch_meta(t, "u1\n10.0.0.1", "10.0.0.1", (void *)1, 2000, &hm), 0);
    ms_session_meta_t cm = {"u1", "rtsp", "10.0.0.1", NULL, 1700000001, 0};
    ms_session_t *c = ms_clients_open(t, "10.0.0.1", &cm, kick, (void *)2, 7, 2000);
    assert_non_null(c);
    /* the group cap (2) holds for connections too */
    assert_null(ms_clients_open(t, "10.0.0.1", &cm, kick, (void *)2, 7, 2000));
    ms_session_meta_t om = {"u2", "mp4", "10.0.0.2", "x", 1700000002, 0};
    ms_session_t *o = ms_clients_open(t, "10.0.0.2", &om, kick, (void *)3, 1, 2000);
    assert_non_null(o);
    ms_clients_bytes(t, c, 12345);

    assert_int_equal(ms_clients_list(t, "u1", &v, &n), 0);
    assert_int_equal(n, 2);
    const ms_session_info_t *h = strcmp(v[0].protocol, "rtsp") == 0 ? &v[1] : &v[0];
    const ms_session_info_t *r = h == &v[0] ? &v[1] : &v[0];
    assert_string_equal(h->protocol, "llhls"); /* upgraded once it blocked */
    assert_string_equal(h->user_agent, "ua-2");
    assert_int_equal(h->bytes, 150);
    assert_int_equal(h->since, 1700000000);
    assert_string_equal(r->protocol, "rtsp");
    assert_string_equal(r->user_agent, "");
    assert_int_equal(r->bytes, 12345);
    assert_string_not_equal(h->id, r->id);
    char hid[24], rid[24];
    snprintf(hid, sizeof hid, "%s", h->id);
    snprintf(rid, sizeof rid, "%s", r->id);
    free(v);

    /* connections never expire by TTL */
    assert_int_equal(ms_clients_sweep(t, 2000 + 10 * MS_HLS_CLIENT_TTL_MS, MS_HLS_CLIENT_TTL_MS),
                     1);
    assert_int_equal(g_expired[1], 1);
    assert_int_equal(ms_clients_count(t), 2);
    assert_int_equal(ms_clients_touch_meta(t, "u1\n10.0.0.1", "10.0.0.1", (void *)1, 200000, &hm),
                     1);
    assert_int_equal(ms_clients_list(t, "u1", &v, &n), 0);
    assert_non_null(find_id(v, n, rid));
    assert_null(find_id(v, n, hid)); /* a returning client is a new session */
    const ms_session_info_t *h2 = strcmp(v[0].protocol, "rtsp") == 0 ? &v[1] : &v[0];
    snprintf(hid, sizeof hid, "%s", h2->id);
    free(v);

    /* unknown ids and another stream's: -ENOENT */
    assert_int_equal(ms_clients_end(t, "u1", "nosuch", 200000, MS_SESSION_BAN_MS), -ENOENT);
    assert_int_equal(ms_clients_end(t, "u2", rid, 200000, MS_SESSION_BAN_MS), -ENOENT);
    /* a connection is kicked, not removed: its owner closes it */
    assert_int_equal(ms_clients_end(t, "u1", rid, 200000, MS_SESSION_BAN_MS), 0);
    assert_int_equal(g_kicked[2], 7);
    assert_int_equal(ms_clients_count(t), 3);
    ms_clients_close(t, c);
    assert_int_equal(ms_clients_count(t), 2);
    assert_int_equal(ms_clients_end(t, "u1", rid, 200000, MS_SESSION_BAN_MS), -ENOENT);
    /* an HLS session: dropped (owner released) and its key refused for the ban */
    assert_int_equal(ms_clients_refused(t, "u1\n10.0.0.1", 200000), 0);
    assert_int_equal(ms_clients_end(t, "u1", hid, 200000, MS_SESSION_BAN_MS), 0);
    assert_int_equal(g_expired[1], 2);
    assert_int_equal(ms_clients_count(t), 1);
    assert_int_equal(ms_clients_refused(t, "u1\n10.0.0.1", 200000 + MS_SESSION_BAN_MS - 1), 1);
    assert_int_equal(ms_clients_refused(t, "u1\n10.0.0.2", 200001), 0);
    assert_int_equal(ms_clients_refused(t, "u1\n10.0.0.1", 200000 + MS_SESSION_BAN_MS), 0);
    ms_clients_sweep(t, 200000 + MS_SESSION_BAN_MS, MS_HLS_CLIENT_TTL_MS);
    /* the connection of u2 is still there; free releases it without on_expire */
    assert_int_equal(ms_clients_count(t), 1);
    ms_clients_close(t, o);
    ms_clients_free(t);
    assert_int_equal(g_expired[0], 0);
}

/* The caps: per group and in total; a refused key is not counted and its
 * owner is not taken; expiry gives the room back. */
static void test_clients_caps(void **state)
{
    (void)state;
    memset(g_expired, 0, sizeof(g_expired));
    ms_clients_t *t = ms_clients_new(on_expire, 5, 3);
    char key[32];
    for (int i = 0; i < 3; i++) {
        snprintf(key, sizeof(key), "s%d\na", i);
        assert_int_equal(ms_clients_touch(t, key, "a", (void *)1, 0), 1);
    }
    assert_int_equal(ms_clients_touch(t, "s9\na", "a", (void *)1, 0), -ENOSPC);
    assert_int_equal(ms_clients_touch(t, "s0\nb", "b", (void *)2, 0), 1);
    assert_int_equal(ms_clients_touch(t, "s1\nb", "b", (void *)2, 0), 1);
    assert_int_equal(ms_clients_touch(t, "s0\nc", "c", (void *)3, 0), -ENOSPC); /* total */
    assert_int_equal(ms_clients_count(t), 5);
    assert_int_equal(ms_clients_touch(t, "s0\na", "a", (void *)1, 20000), 0); /* refresh */
    assert_int_equal(ms_clients_sweep(t, 20000, MS_HLS_CLIENT_TTL_MS), 4);
    assert_int_equal(ms_clients_touch(t, "s0\nc", "c", (void *)3, 20000), 1);
    assert_int_equal(ms_clients_touch(t, "s9\na", "a", (void *)1, 20000), 1);
    ms_clients_free(t);
    assert_int_equal(g_expired[1], 4);
    assert_int_equal(g_expired[2], 2);
    assert_int_equal(g_expired[3], 1);
    assert_null(ms_clients_new(on_expire, 0, 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split),          cmocka_unit_test(test_decode),
        cmocka_unit_test(test_path),           cmocka_unit_test(test_query),
        cmocka_unit_test(test_encode_int_csv), cmocka_unit_test(test_routes),
        cmocka_unit_test(test_auth_parse),     cmocka_unit_test(test_auth_check),
        cmocka_unit_test(test_prom),           cmocka_unit_test(test_clients),
        cmocka_unit_test(test_clients_caps),   cmocka_unit_test(test_cpanel_paths),
        cmocka_unit_test(test_sessions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
