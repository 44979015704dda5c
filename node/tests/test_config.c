/* Node and stream config parsing: valid files, defaults, every kind of error
 * line ("FILE: KEY: reason"), unknown keys, round trip through to_json. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "media/hls/hls.h"
#include "node/config.h"
#include "node/uid.h"

static int has_line(const ms_errlist_t *e, const char *line)
{
    for (size_t i = 0; i < e->n; i++)
        if (strcmp(e->lines[i], line) == 0)
            return 1;
    return 0;
}

static void dump(const ms_errlist_t *e)
{
    for (size_t i = 0; i < e->n; i++)
        fprintf(stderr, "  | %s\n", e->lines[i]);
}

#define ASSERT_LINE(e, l)                                                                          \
    do {                                                                                           \
        if (!has_line((e), (l))) {                                                                 \
            dump(e);                                                                               \
            fail_msg("missing error line: %s", (l));                                               \
        }                                                                                          \
    } while (0)

static int node_parse(const char *js, ms_node_cfg_t *c, ms_errlist_t *e)
{
    return ms_node_cfg_parse(js, strlen(js), "node.json", c, e);
}

static int stream_parse(const char *js, ms_stream_cfg_t *s, ms_errlist_t *e)
{
    return ms_stream_cfg_parse(js, strlen(js), "cam1.json", s, e);
}

/* s written as JSON (ms_stream_cfg_to_json) and parsed again into *out:
 * equal to s. The caller frees *out. */
static void reparse_equal(const ms_stream_cfg_t *s, ms_stream_cfg_t *out)
{
    ms_errlist_t e = {0};
    json_t *j = ms_stream_cfg_to_json(s);
    char *txt = json_dumps(j, 0);
    json_decref(j);
    assert_int_equal(stream_parse(txt, out, &e), 0);
    free(txt);
    assert_true(ms_stream_cfg_equal(s, out));
    ms_errlist_free(&e);
}

/* ---- node config ---- */

static void test_node_full(void **state)
{
    (void)state;
    const char *js =
        "{\"name\":\"n1\",\"data_dir\":\"/var/lib/ms\",\"threads\":2,"
        "\"listen\":{\"address\":\"127.0.0.1\",\"http\":8081,\"https\":8444,\"rtsp\":8555,"
        "\"rtmp\":0,\"raft\":7001,\"conns_per_ip\":512,\"request_timeout_s\":20},"
        "\"advertise\":\"10.0.0.1\","
        "\"tls\":{\"cert\":\"/etc/c.pem\",\"key\":\"/etc/k.pem\"},\"secret\":\"s3cr3t\","
        "\"admin\":{\"user\":\"root\",\"password\":\"pw\",\"keys\":[\"k1\",\"k2\"]},"
        "\"storage\":[{\"path\":\"/a\",\"max_used_percent\":90},{\"path\":\"/b\"}],"
        "\"streams_dir\":\"/etc/ms/streams\",\"cluster\":{\"join\":[\"10.0.0.2:7000\","
        "\"[::1]:7000\",\"n3.local:7000\"],\"group\":\"north\",\"distribution\":false,"
        "\"stream_limit\":10,\"bitrate_limit_kbps\":5000},\"external_access\":true,"
        "\"trusted_proxies\":[\"127.0.0.1\",\"10.0.0.0/8\",\"::1/128\"],\"lua_dir\":\"/etc/lua\","
        "\"log_level\":\"debug\",\"metrics_auth\":true}";
    ms_node_cfg_t c;
    ms_errlist_t e = {0};
    int r = node_parse(js, &c, &e);
    if (r)
        dump(&e);
    assert_int_equal(r, 0);
    assert_int_equal(e.n, 0);
    assert_string_equal(c.name, "n1");
    assert_string_equal(c.data_dir, "/var/lib/ms");
    assert_int_equal(c.threads, 2);
    assert_string_equal(c.listen_address, "127.0.0.1");
    assert_int_equal(c.port_http, 8081);
    assert_int_equal(c.port_https, 8444);
    assert_int_equal(c.port_rtsp, 8555);
    assert_int_equal(c.port_rtmp, 0);
    assert_int_equal(c.port_raft, 7001);
    assert_int_equal(c.conns_per_ip, 512);
    assert_int_equal(c.request_timeout_s, 20);
    assert_string_equal(c.advertise, "10.0.0.1");
    assert_string_equal(c.tls_cert, "/etc/c.pem");
    assert_string_equal(c.tls_key, "/etc/k.pem");
    assert_string_equal(c.secret, "s3cr3t");
    assert_string_equal(c.admin_user, "root");
    assert_string_equal(c.admin_password, "pw");
    assert_int_equal(c.napi_keys, 2);
    assert_string_equal(c.api_keys[1], "k2");
    assert_int_equal(c.nstorage, 2);
    assert_string_equal(c.storage[0].path, "/a");
    assert_int_equal(c.storage[0].max_used_percent, 90);
    assert_int_equal(c.storage[1].max_used_percent, 80);
    assert_string_equal(c.streams_dir, "/etc/ms/streams");
    assert_int_equal(c.ncluster_join, 3);
    assert_string_equal(c.cluster_join[1], "[::1]:7000");
    assert_string_equal(c.cluster_group, "north");
    assert_int_equal(c.cluster_distribution, 0);
    assert_int_equal(c.cluster_stream_limit, 10);
    assert_int_equal(c.cluster_bitrate_limit_kbps, 5000);
    assert_int_equal(c.external_access, 1);
    assert_int_equal(c.ntrusted_proxies, 3);
    assert_string_equal(c.lua_dir, "/etc/lua");
    assert_string_equal(c.log_level, "debug");
    assert_int_equal(c.metrics_auth, 1);
    ms_node_cfg_free(&c);
    ms_errlist_free(&e);
}

static void test_node_defaults(void **state)
{
    (void)state;
    ms_node_cfg_t c;
    ms_errlist_t e = {0};
    assert_int_equal(node_parse("{\"name\":\"n1\",\"data_dir\":\"/d\"}", &c, &e), 0);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    assert_int_equal(c.threads, cores < 1 ? 1 : cores > 256 ? 256 : cores);
    assert_string_equal(c.listen_address, "0.0.0.0");
    assert_int_equal(c.port_http, 8080);
    assert_int_equal(c.port_https, 0);
    assert_int_equal(c.port_rtsp, 8554);
    assert_int_equal(c.port_rtmp, 1935);
    assert_int_equal(c.port_raft, 7000);
    assert_int_equal(c.conns_per_ip, 256);
    assert_int_equal(c.request_timeout_s, 10);
    assert_string_equal(c.advertise, "127.0.0.1");
    assert_int_equal(c.nstorage, 0);
    assert_string_equal(c.streams_dir, "");
    assert_int_equal(c.ncluster_join, 0);
    assert_string_equal(c.cluster_group, "default");
    assert_int_equal(c.cluster_distribution, 1);
    assert_int_equal(c.cluster_stream_limit, 1000);
    assert_int_equal(c.cluster_bitrate_limit_kbps, 2000000);
    assert_int_equal(c.external_access, 0);
    assert_string_equal(c.log_level, "info");
    assert_int_equal(c.metrics_auth, 0);
    /* absent secret: 32 random bytes in hex, different on every parse */
    assert_int_equal(strlen(c.secret), 64);
    ms_node_cfg_t c2;
    assert_int_equal(node_parse("{\"name\":\"n1\",\"data_dir\":\"/d\"}", &c2, &e), 0);
    assert_string_not_equal(c.secret, c2.secret);
    /* tls without listen.https: HTTPS on 8443 */
    ms_node_cfg_t c3;
    assert_int_equal(node_parse("{\"name\":\"n1\",\"data_dir\":\"/d\",\"tls\":{\"cert\":\"/c\","
                                "\"key\":\"/k\"}}",
                                &c3, &e),
                     0);
    assert_int_equal(c3.port_https, 8443);
    assert_int_equal(e.n, 0);
    ms_node_cfg_free(&c);
    ms_node_cfg_free(&c2);
    ms_node_cfg_free(&c3);
    ms_errlist_free(&e);
}

static void test_node_errors(void **state)
{
    (void)state;
    ms_node_cfg_t c;
    ms_errlist_t e = {0};
    const char *js =
        "{\"name\":\"bad name\",\"threads\":0,\"listen\":{\"http\":70000,\"rtsp\":\"x\","
        "\"raft\":1935,\"bogus\":1},\"storage\":[{\"max_used_percent\":0},{\"path\":\"rel\"}],"
        "\"cluster\":{\"join\":[\"nohost\"],\"distribution\":1,\"stream_limit\":-1},"
        "\"trusted_proxies\":[\"10.0.0.0/33\",\"zz\",\"::/8x\",\"::/129\",\"10.0.0.0/"
        "008\"],\"log_level\":\"loud\","
        "\"admin\":{\"user\":\"a\"},\"extra\":true,\"external_access\":\"yes\"}";
    assert_int_equal(node_parse(js, &c, &e), -1);
    ASSERT_LINE(&e, "node.json: name: must be 1..63 characters of A-Z a-z 0-9 . _ -");
    ASSERT_LINE(&e, "node.json: data_dir: required");
    ASSERT_LINE(&e, "node.json: threads: must be an integer 1..256");
    ASSERT_LINE(&e, "node.json: listen.http: must be an integer 0..65535");
    ASSERT_LINE(&e, "node.json: listen.rtsp: must be an integer 0..65535");
    ASSERT_LINE(&e, "node.json: listen.bogus: unknown key");
    ASSERT_LINE(&e, "node.json: listen.raft: port 1935 is already used by listen.rtmp");
    ASSERT_LINE(&e, "node.json: storage[0].path: required");
    ASSERT_LINE(&e, "node.json: storage[0].max_used_percent: must be an integer 1..100");
    ASSERT_LINE(&e, "node.json: storage[1].path: must be an absolute path");
    ASSERT_LINE(&e, "node.json: cluster.join[0]: must be host:port");
    ASSERT_LINE(&e, "node.json: cluster.distribution: must be true or false");
    ASSERT_LINE(&e, "node.json: cluster.stream_limit: must be an integer >= 0");
    ASSERT_LINE(&e, "node.json: trusted_proxies[0]: IPv4 prefix length must be 0..32");
    ASSERT_LINE(&e, "node.json: trusted_proxies[1]: must be an IPv4 or IPv6 address or CIDR "
                    "(e.g. 192.0.2.0/24)");
    ASSERT_LINE(&e, "node.json: trusted_proxies[2]: bad prefix length after /");
    ASSERT_LINE(&e, "node.json: trusted_proxies[3]: IPv6 prefix length must be 0..128");
    for (size_t i = 0; i < e.n; i++) /* "/008" passes */
        assert_null(strstr(e.lines[i], "trusted_proxies[4]"));
    ASSERT_LINE(&e, "node.json: log_level: must be one of debug, info, warn, error");
    ASSERT_LINE(&e, "node.json: admin.password: required when admin.user is set");
    ASSERT_LINE(&e, "node.json: extra: unknown key");
    ASSERT_LINE(&e, "node.json: external_access: must be true or false");
    ms_node_cfg_free(&c);
    ms_errlist_free(&e);

    /* https without tls, relative path, bad JSON, not an object, missing name */
    assert_int_equal(
        node_parse("{\"name\":\"n\",\"data_dir\":\"d\",\"listen\":{\"https\":8443}}", &c, &e), -1);
    ASSERT_LINE(&e, "node.json: listen.https: requires tls.cert and tls.key");
    ASSERT_LINE(&e, "node.json: data_dir: must be an absolute path");
    ms_node_cfg_free(&c);
    ms_errlist_free(&e);

    assert_int_equal(node_parse("{\"name\":\"n\",", &c, &e), -1);
    assert_int_equal(e.n, 1);
    assert_true(strncmp(e.lines[0], "node.json: (root): invalid JSON at line 1", 41) == 0);
    ms_node_cfg_free(&c);
    ms_errlist_free(&e);

    assert_int_equal(node_parse("[1]", &c, &e), -1);
    ASSERT_LINE(&e, "node.json: (root): must be a JSON object");
    ms_node_cfg_free(&c);
    ms_errlist_free(&e);

    /* duplicate keys are an error, not "last one wins" */
    assert_int_equal(node_parse("{\"name\":\"a\",\"name\":\"b\",\"data_dir\":\"/d\"}", &c, &e), -1);
    assert_true(strstr(e.lines[0], "duplicate") != NULL);
    ms_node_cfg_free(&c);
    ms_errlist_free(&e);
}

/* keyframe_wait_mb / keyframe_wait_s: defaults, values, bounds. */
static void test_node_keyframe_wait(void **state)
{
    (void)state;
    ms_node_cfg_t c;
    ms_errlist_t e = {0};
    assert_int_equal(node_parse("{\"name\":\"n1\",\"data_dir\":\"/d\"}", &c, &e), 0);
    assert_int_equal(c.keyframe_wait_mb, 32);
    assert_int_equal(c.keyframe_wait_s, 30);
    ms_node_cfg_free(&c);
    assert_int_equal(node_parse("{\"name\":\"n1\",\"data_dir\":\"/d\",\"keyframe_wait_mb\":8,"
                                "\"keyframe_wait_s\":120}",
                                &c, &e),
                     0);
    assert_int_equal(c.keyframe_wait_mb, 8);
    assert_int_equal(c.keyframe_wait_s, 120);
    ms_node_cfg_free(&c);
    assert_int_equal(node_parse("{\"name\":\"n1\",\"data_dir\":\"/d\",\"keyframe_wait_mb\":0,"
                                "\"keyframe_wait_s\":3601}",
                                &c, &e),
                     -1);
    ASSERT_LINE(&e, "node.json: keyframe_wait_mb: must be an integer 1..4096");
    ASSERT_LINE(&e, "node.json: keyframe_wait_s: must be an integer 1..3600");
    ms_node_cfg_free(&c);
    ms_errlist_free(&e);
}

static void test_node_lua(void **state)
{
    (void)state;
    ms_node_cfg_t c;
    ms_errlist_t e = {0};
    assert_int_equal(node_parse("{\"name\":\"n1\",\"data_dir\":\"/d\"}", &c, &e), 0);
    assert_int_equal(c.lua_fail_open, 0);
    ms_node_cfg_free(&c);
    assert_int_equal(
        node_parse("{\"name\":\"n1\",\"data_dir\":\"/d\",\"lua\":{\"fail\":\"open\"}}", &c, &e), 0);
    assert_int_equal(c.lua_fail_open, 1);
    ms_node_cfg_free(&c);
    assert_int_equal(node_parse("{\"name\":\"n1\",\"data_dir\":\"/d\",\"lua\":{\"fail\":\"maybe\","
                                "\"x\":1}}",
                                &c, &e),
                     -1);
    ASSERT_LINE(&e, "node.json: lua.fail: must be \"open\" or \"closed\"");
    ms_node_cfg_free(&c);
    ms_errlist_free(&e);
}

static void test_node_hooks(void **state)
{
    (void)state;
    ms_node_cfg_t c;
    ms_errlist_t e = {0};
    assert_int_equal(node_parse("{\"name\":\"n1\",\"data_dir\":\"/d\"}", &c, &e), 0);
    assert_string_equal(c.hook_on_publish, "");
    assert_string_equal(c.hook_on_play, "");
    assert_int_equal(c.hook_timeout_ms, 3000);
    ms_node_cfg_free(&c);
    assert_int_equal(node_parse("{\"name\":\"n1\",\"data_dir\":\"/d\",\"hooks\":{"
                                "\"on_publish\":\"http://127.0.0.1:8080/pub\","
                                "\"on_play\":\"http://auth.example/play?x=1\",\"timeout_ms\":500}}",
                                &c, &e),
                     0);
    assert_string_equal(c.hook_on_publish, "http://127.0.0.1:8080/pub");
    assert_string_equal(c.hook_on_play, "http://auth.example/play?x=1");
    assert_int_equal(c.hook_timeout_ms, 500);
    ms_node_cfg_free(&c);
    assert_int_equal(node_parse("{\"name\":\"n1\",\"data_dir\":\"/d\",\"hooks\":{"
                                "\"on_publish\":\"https://a/b\",\"on_play\":\"http://:80/\","
                                "\"timeout_ms\":0,\"on_done\":\"http://a/\"}}",
                                &c, &e),
                     -1);
    ASSERT_LINE(&e, "node.json: hooks.on_publish: must be an http://host[:port]/path URL (https "
                    "is not supported)");
    ASSERT_LINE(&e, "node.json: hooks.on_play: must be an http://host[:port]/path URL (https is "
                    "not supported)");
    ASSERT_LINE(&e, "node.json: hooks.timeout_ms: must be an integer 50..60000");
    ASSERT_LINE(&e, "node.json: hooks.on_done: unknown key");
    ms_node_cfg_free(&c);
    ms_errlist_free(&e);
}

static void test_node_load_file(void **state)
{
    (void)state;
    char path[] = "ms_test_cfg_XXXXXX"; /* in the test's working directory */
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *js = "{\"name\":\"n9\",\"data_dir\":\"/d\",\"threads\":3}";
    assert_int_equal(write(fd, js, strlen(js)), (ssize_t)strlen(js));
    close(fd);
    ms_node_cfg_t c;
    ms_errlist_t e = {0};
    assert_int_equal(ms_node_cfg_load(path, &c, &e), 0);
    assert_string_equal(c.name, "n9");
    assert_int_equal(c.threads, 3);
    ms_node_cfg_free(&c);
    unlink(path);
    assert_int_equal(ms_node_cfg_load(path, &c, &e), -1);
    char want[256];
    snprintf(want, sizeof want, "%s: (file): cannot read: No such file or directory", path);
    ASSERT_LINE(&e, want);
    ms_node_cfg_free(&c);
    ms_errlist_free(&e);
}

/* ---- stream config ---- */

static const char *k_cam1 =
    "{\"uid\":\"0d6b6c1e-3f0a-4c5e-9a55-2f4f0b7a2a11\",\"name\":\"cam1\","
    "\"url\":\"rtsp://user:pass@192.0.2.10:554/stream1\",\"enabled\":true,"
    "\"channels\":[\"video\",\"audio\"],\"transport\":\"auto\","
    "\"reconnect\":{\"interval_ms\":1000,\"max_interval_ms\":30000},"
    "\"dvr\":{\"enabled\":true,\"depth_s\":604800,\"chunk_s\":10,\"mode\":\"continuous\"},"
    "\"access\":{\"mode\":\"public\",\"whitelist\":[]},"
    "\"camera\":\"cam-0042\",\"quality\":\"high\",\"reserve\":true,\"group\":\"north\"}";

static void test_stream_contract_example(void **state)
{
    (void)state;
    ms_stream_cfg_t s;
    ms_errlist_t e = {0};
    int r = stream_parse(k_cam1, &s, &e);
    if (r)
        dump(&e);
    assert_int_equal(r, 0);
    assert_string_equal(s.uid, "0d6b6c1e-3f0a-4c5e-9a55-2f4f0b7a2a11");
    assert_string_equal(s.name, "cam1");
    assert_string_equal(s.url, "rtsp://user:pass@192.0.2.10:554/stream1");
    assert_int_equal(s.enabled, 1);
    assert_int_equal(s.channels, MS_CHANNEL_VIDEO | MS_CHANNEL_AUDIO);
    assert_int_equal(s.transport, MS_TRANSPORT_AUTO);
    assert_int_equal(s.reconnect_interval_ms, 1000);
    assert_int_equal(s.reconnect_max_interval_ms, 30000);
    assert_int_equal(s.dvr_enabled, 1);
    assert_int_equal(s.dvr_depth_s, 604800);
    assert_int_equal(s.dvr_chunk_s, 10);
    assert_int_equal(s.dvr_mode, MS_DVR_CONTINUOUS);
    assert_int_equal(s.access_mode, MS_ACCESS_PUBLIC);
    assert_int_equal(s.nwhitelist, 0);
    assert_string_equal(s.camera, "cam-0042");
    assert_string_equal(s.quality, "high");
    assert_int_equal(s.reserve, 1);
    assert_string_equal(s.group, "north");
    assert_string_equal(s.source_file, "cam1.json");

    /* to_json round trip: the output parses back to an equal config and has
     * the CONTRACT keys plus hls */
    json_t *j = ms_stream_cfg_to_json(&s);
    assert_non_null(j);
    const char *keys[] = {"uid",       "name", "url",         "enabled", "channels", "transport",
                          "reconnect", "dvr",  "access",      "camera",  "quality",  "reserve",
                          "group",     "hls",  "publish_key", "publish", "push"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        assert_non_null(json_object_get(j, keys[i]));
    assert_int_equal(json_object_size(j), sizeof keys / sizeof keys[0]);
    assert_string_equal(json_string_value(json_array_get(json_object_get(j, "channels"), 1)),
                        "audio");
    char *txt = json_dumps(j, 0);
    json_decref(j);
    ms_stream_cfg_t s2;
    assert_int_equal(stream_parse(txt, &s2, &e), 0);
    free(txt);
    assert_true(ms_stream_cfg_equal(&s, &s2));
    s2.reserve = 0;
    assert_false(ms_stream_cfg_equal(&s, &s2));
    ms_stream_cfg_free(&s);
    ms_stream_cfg_free(&s2);
    ms_errlist_free(&e);
}

static void test_stream_defaults_and_extensions(void **state)
{
    (void)state;
    ms_stream_cfg_t s, s2;
    ms_errlist_t e = {0};
    const char *js = "{\"name\":\"cam2\",\"url\":\"rtsps://[::1]:8322/x\"}";
    assert_int_equal(stream_parse(js, &s, &e), 0);
    assert_int_equal(stream_parse(js, &s2, &e), 0);
    /* uid: a random UUID v4 when absent */
    assert_int_equal(strlen(s.uid), 36);
    assert_int_equal(s.uid[14], '4');
    assert_true(strchr("89ab", s.uid[19]) != NULL);
    assert_string_not_equal(s.uid, s2.uid);
    assert_int_equal(s.enabled, 1);
    assert_int_equal(s.channels, MS_CHANNEL_VIDEO | MS_CHANNEL_AUDIO);
    assert_int_equal(s.transport, MS_TRANSPORT_AUTO);
    assert_int_equal(s.reconnect_interval_ms, 1000);
    assert_int_equal(s.reconnect_max_interval_ms, 30000);
    assert_int_equal(s.dvr_enabled, 0);
    assert_int_equal(s.dvr_depth_s, 86400);
    assert_int_equal(s.dvr_chunk_s, 10);
    assert_int_equal(s.access_mode, MS_ACCESS_PUBLIC);
    assert_string_equal(s.quality, "high");
    assert_int_equal(s.reserve, 0);
    assert_string_equal(s.group, "");
    assert_int_equal(s.hls_format, MS_HLS_AUTO);
    assert_int_equal(s.hls_segment_ms, 2000);
    assert_int_equal(s.hls_part_ms, 200);
    assert_int_equal(s.hls_window, 6);
    ms_stream_cfg_free(&s);
    ms_stream_cfg_free(&s2);

    js = "{\"name\":\"cam3\",\"url\":\"rtsp://h/p\",\"transport\":\"tcp\",\"enabled\":false,"
         "\"channels\":[\"application\",\"video\"],\"access\":{\"mode\":\"protected\","
         "\"whitelist\":[\"192.0.2.0/24\",\"2001:db8::/32\",\"127.0.0.1\"]},"
         "\"reconnect\":{\"interval_ms\":50000},"
         "\"hls\":{\"format\":\"fmp4\",\"segment_ms\":1000,\"part_ms\":100,\"window\":10},"
         "\"dvr\":{\"mode\":\"event\",\"depth_s\":0}}";
    int r = stream_parse(js, &s, &e);
    if (r)
        dump(&e);
    assert_int_equal(r, 0);
    assert_int_equal(s.transport, MS_TRANSPORT_TCP);
    assert_int_equal(s.enabled, 0);
    assert_int_equal(s.channels, MS_CHANNEL_VIDEO | MS_CHANNEL_APP);
    assert_int_equal(s.access_mode, MS_ACCESS_PROTECTED);
    assert_int_equal(s.nwhitelist, 3);
    assert_string_equal(s.whitelist[1], "2001:db8::/32");
    /* only interval given and above the default cap: the cap follows */
    assert_int_equal(s.reconnect_interval_ms, 50000);
    assert_int_equal(s.reconnect_max_interval_ms, 50000);
    assert_int_equal(s.hls_format, MS_HLS_FMP4);
    assert_int_equal(s.hls_segment_ms, 1000);
    assert_int_equal(s.hls_part_ms, 100);
    assert_int_equal(s.hls_window, 10);
    assert_int_equal(s.dvr_mode, MS_DVR_EVENT);
    assert_int_equal(s.dvr_depth_s, 0);

    ms_stream_cfg_t cp;
    assert_int_equal(ms_stream_cfg_copy(&cp, &s), 0);
    assert_true(cp.whitelist != s.whitelist);
    assert_true(ms_stream_cfg_equal(&cp, &s));
    free(cp.whitelist[2]);
    cp.whitelist[2] = strdup("127.0.0.2");
    assert_false(ms_stream_cfg_equal(&cp, &s));
    ms_stream_cfg_free(&cp);
    ms_stream_cfg_free(&s);
    ms_errlist_free(&e);
}

/* RTMP publishing keys (docs/rtmp.md): url publish://, publish_key,
 * publish.republish. */
static void test_stream_publish(void **state)
{
    (void)state;
    ms_stream_cfg_t s;
    ms_errlist_t e = {0};
    const char *js = "{\"name\":\"studio\",\"url\":\"publish://\",\"publish_key\":\"k-1_x.~\","
                     "\"publish\":{\"republish\":\"kick\"}}";
    assert_int_equal(stream_parse(js, &s, &e), 0);
    assert_string_equal(s.url, "publish://");
    assert_string_equal(s.publish_key, "k-1_x.~");
    assert_int_equal(s.republish_kick, 1);
    ms_stream_cfg_t s2;
    reparse_equal(&s, &s2);
    s2.republish_kick = 0;
    assert_false(ms_stream_cfg_equal(&s, &s2));
    ms_stream_cfg_free(&s2);
    ms_stream_cfg_free(&s);

    js = "{\"name\":\"studio\",\"url\":\"publish://x\",\"publish_key\":\"a b\","
         "\"publish\":{\"republish\":\"maybe\",\"x\":1}}";
    assert_int_equal(stream_parse(js, &s, &e), -1);
    ASSERT_LINE(&e, "cam1.json: url: must start with rtsp:// or rtsps:// (or be publish://)");
    ASSERT_LINE(&e, "cam1.json: publish_key: may hold only letters, digits and - _ . ~");
    ASSERT_LINE(&e, "cam1.json: publish.republish: must be one of reject, kick");
    ASSERT_LINE(&e, "cam1.json: publish.x: unknown key");
    ms_errlist_free(&e);
}

/* push targets (docs/rtmp.md "Push"): rtmp:// URLs, at most 8. */
static void test_stream_push(void **state)
{
    (void)state;
    ms_stream_cfg_t s;
    ms_errlist_t e = {0};
    const char *js =
        "{\"name\":\"c\",\"url\":\"rtsp://h/x\",\"push\":["
        "{\"url\":\"rtmp://127.0.0.1:1936/live/c\"},{\"url\":\"rtmp://h/a/b/c?k=1\"}]}";
    assert_int_equal(stream_parse(js, &s, &e), 0);
    assert_int_equal(s.npush, 2);
    assert_string_equal(s.push_url[0], "rtmp://127.0.0.1:1936/live/c");
    assert_string_equal(s.push_url[1], "rtmp://h/a/b/c?k=1");
    ms_stream_cfg_t s2;
    reparse_equal(&s, &s2);
    s2.push_url[1][7] = 'x';
    assert_false(ms_stream_cfg_equal(&s, &s2));
    s2.npush = 1;
    assert_false(ms_stream_cfg_equal(&s, &s2));
    ms_stream_cfg_free(&s2);
    ms_stream_cfg_free(&s);

    js = "{\"name\":\"c\",\"url\":\"rtsp://h/x\",\"push\":[{\"url\":\"http://h/a/b\"},"
         "{\"uri\":1},\"rtmp://h/a/b\",{\"url\":\"rtmp://h/a/b\"},{\"url\":\"rtmp://h/a/b\"}]}";
    assert_int_equal(stream_parse(js, &s, &e), -1);
    ASSERT_LINE(&e, "cam1.json: push[0]: url must be rtmp://host[:port]/app/name (got "
                    "\"http://h/a/b\")");
    ASSERT_LINE(&e, "cam1.json: push[1].uri: unknown key");
    ASSERT_LINE(&e, "cam1.json: push[1]: needs \"url\" (a string)");
    ASSERT_LINE(&e,
                "cam1.json: push[2]: must be an object {\"url\": \"rtmp://host[:port]/app/name\"}");
    ASSERT_LINE(&e, "cam1.json: push[4]: url repeats an earlier target");
    ms_errlist_free(&e);
    ms_errlist_t e2 = {0};
    char big[2048] = "{\"name\":\"c\",\"url\":\"rtsp://h/x\",\"push\":[";
    for (int i = 0; i < 9; i++)
        snprintf(big + strlen(big), sizeof big - strlen(big), "%s{\"url\":\"rtmp://h/a/s%d\"}",
                 i ? "," : "", i);
    strcat(big, "]}");
    assert_int_equal(stream_parse(big, &s, &e2), -1);
    ASSERT_LINE(&e2, "cam1.json: push: at most 8 targets");
    ms_errlist_free(&e2);
}

static void test_stream_errors(void **state)
{
    (void)state;
    ms_stream_cfg_t s;
    ms_errlist_t e = {0};
    const char *js =
        "{\"uid\":\"has space\",\"url\":\"http://x/y\",\"enabled\":1,"
        "\"channels\":[\"video\",\"smell\",\"video\"],\"transport\":\"quic\","
        "\"reconnect\":{\"interval_ms\":50,\"max_interval_ms\":20,\"jitter\":1},"
        "\"dvr\":{\"depth_s\":-1,\"chunk_s\":0,\"mode\":\"sometimes\"},"
        "\"access\":{\"mode\":\"secret\",\"whitelist\":[\"300.1.1.1/8\",\"::1/129\"]},"
        "\"quality\":\"medium\",\"reserve\":\"no\",\"group\":\"a/b\",\"colour\":\"red\","
        "\"hls\":{\"format\":\"mkv\",\"segment_ms\":100,\"window\":1,\"x\":0}}";
    assert_int_equal(stream_parse(js, &s, &e), -1);
    ASSERT_LINE(&e, "cam1.json: uid: must be 1..63 characters of A-Z a-z 0-9 . _ - (a UUID is "
                    "usual)");
    ASSERT_LINE(&e, "cam1.json: name: required");
    ASSERT_LINE(&e, "cam1.json: url: must start with rtsp:// or rtsps:// (or be publish://)");
    ASSERT_LINE(&e, "cam1.json: enabled: must be true or false");
    ASSERT_LINE(&e, "cam1.json: channels[1]: must be one of video, audio, application");
    ASSERT_LINE(&e, "cam1.json: channels[2]: duplicate channel \"video\"");
    ASSERT_LINE(&e, "cam1.json: transport: must be one of auto, tcp, udp");
    ASSERT_LINE(&e, "cam1.json: reconnect.interval_ms: must be an integer 100..3600000");
    ASSERT_LINE(&e, "cam1.json: reconnect.max_interval_ms: must be an integer 100..3600000");
    ASSERT_LINE(&e, "cam1.json: reconnect.jitter: unknown key");
    ASSERT_LINE(&e, "cam1.json: dvr.depth_s: must be an integer >= 0");
    ASSERT_LINE(&e, "cam1.json: dvr.chunk_s: must be an integer 1..3600");
    ASSERT_LINE(&e, "cam1.json: dvr.mode: must be one of continuous, event");
    ASSERT_LINE(&e, "cam1.json: access.mode: must be one of public, protected, private");
    ASSERT_LINE(&e, "cam1.json: access.whitelist[0]: must be an IPv4 or IPv6 address or CIDR "
                    "(e.g. 192.0.2.0/24)");
    ASSERT_LINE(&e, "cam1.json: access.whitelist[1]: IPv6 prefix length must be 0..128");
    ASSERT_LINE(&e, "cam1.json: quality: must be one of high, low");
    ASSERT_LINE(&e, "cam1.json: reserve: must be true or false");
    ASSERT_LINE(&e, "cam1.json: group: must be 1..63 characters of A-Z a-z 0-9 . _ -");
    ASSERT_LINE(&e, "cam1.json: colour: unknown key");
    ASSERT_LINE(&e, "cam1.json: hls.format: must be one of auto, ts, fmp4");
    ASSERT_LINE(&e, "cam1.json: hls.segment_ms: must be an integer 500..60000");
    ASSERT_LINE(&e, "cam1.json: hls.window: must be an integer 2..1000");
    ASSERT_LINE(&e, "cam1.json: hls.x: unknown key");
    ms_stream_cfg_free(&s);
    ms_errlist_free(&e);

    /* URL shapes, empty channels, max < interval, part > segment */
    const struct {
        const char *js, *line;
    } cases[] = {
        {"{\"name\":\"a\",\"url\":\"rtsp:///path\"}",
         "cam1.json: url: must name a host (rtsp://host[:port]/path)"},
        {"{\"name\":\"a\",\"url\":\"rtsp://u:p@/path\"}",
         "cam1.json: url: must name a host (rtsp://host[:port]/path)"},
        {"{\"name\":\"a\",\"url\":\"rtsp://h:99999/p\"}", "cam1.json: url: bad port (1..65535)"},
        {"{\"name\":\"a\",\"url\":\"rtsp://h p/\"}",
         "cam1.json: url: must not contain spaces or control characters"},
        {"{\"name\":\"a\"}", "cam1.json: url: required"},
        {"{\"name\":\"a\",\"url\":5}", "cam1.json: url: must be a string"},
        {"{\"name\":\"a\",\"url\":\"rtsp://h/\",\"channels\":[]}",
         "cam1.json: channels: must be a non-empty array of video, audio, application"},
        {"{\"name\":\"a\",\"url\":\"rtsp://h/\",\"reconnect\":{\"interval_ms\":2000,"
         "\"max_interval_ms\":1000}}",
         "cam1.json: reconnect.max_interval_ms: must be >= reconnect.interval_ms (2000)"},
        {"{\"name\":\"a\",\"url\":\"rtsp://h/\",\"hls\":{\"segment_ms\":1000,\"part_ms\":2000}}",
         "cam1.json: hls.part_ms: must be <= hls.segment_ms (1000)"},
        {"{\"name\":\"..\",\"url\":\"rtsp://h/\"}",
         "cam1.json: name: must be 1..63 characters of A-Z a-z 0-9 . _ -"},
        {"{\"name\":\"a\",\"url\":\"rtsp://h/\",\"dvr\":[]}", "cam1.json: dvr: must be an object"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(stream_parse(cases[i].js, &s, &e), -1);
        ASSERT_LINE(&e, cases[i].line);
        ms_stream_cfg_free(&s);
        ms_errlist_free(&e);
    }
    /* valid URL shapes */
    const char *good[] = {"rtsp://h", "RTSP://h:554", "rtsp://u:p@h:1/a?b=c",
                          "rtsps://[2001:db8::1]/s", "rtsp://user:p%40ss@10.0.0.1/"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char js2[256];
        snprintf(js2, sizeof js2, "{\"name\":\"a\",\"url\":\"%s\"}", good[i]);
        int r = stream_parse(js2, &s, &e);
        if (r)
            dump(&e);
        assert_int_equal(r, 0);
        ms_stream_cfg_free(&s);
    }
    ms_errlist_free(&e);
}

static void test_uid_derive(void **state)
{
    (void)state;
    char a[MS_UID_LEN], b[MS_UID_LEN], c[MS_UID_LEN];
    ms_uid_derive("n1", "cam1.json", a);
    ms_uid_derive("n1", "cam1.json", b);
    ms_uid_derive("n1", "cam2.json", c);
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
    assert_int_equal(strlen(a), 36);
    assert_int_equal(a[14], '5');
    assert_true(strchr("89ab", a[19]) != NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_node_full),
        cmocka_unit_test(test_node_defaults),
        cmocka_unit_test(test_node_errors),
        cmocka_unit_test(test_node_keyframe_wait),
        cmocka_unit_test(test_node_lua),
        cmocka_unit_test(test_node_hooks),
        cmocka_unit_test(test_node_load_file),
        cmocka_unit_test(test_stream_contract_example),
        cmocka_unit_test(test_stream_defaults_and_extensions),
        cmocka_unit_test(test_stream_errors),
        cmocka_unit_test(test_stream_publish),
        cmocka_unit_test(test_stream_push),
        cmocka_unit_test(test_uid_derive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
