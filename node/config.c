/* Node config and stream config parsing (docs/config.md "Node config" and
 * "Stream"; every key is documented in docs/config.md).
 *
 * Pure apart from reading the file in ms_node_cfg_load() and the random
 * generator used for absent secrets and uids. Every problem becomes one
 * "FILE: KEY: reason" line; parsing goes on after an error so that one run
 * reports them all. */
#include "node/config.h"

#include <arpa/inet.h>
#include <assert.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "media/hls/hls.h"
#include "media/rtmp/client.h"
#include "node/hooks.h"
#include "node/uid.h"
#include "util/ipaddr.h"
#include "util/log.h"

/* ---- parse context and typed getters ---------------------------------- */

typedef struct {
    const char *file;
    ms_errlist_t *errs;
    int bad;
} pctx_t;

#define KEY_MAX 256

static void perr(pctx_t *p, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void perr(pctx_t *p, const char *key, const char *fmt, ...)
{
    char reason[512];
    va_list ap;
    va_start(ap, fmt);
    int r = vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    if (r < 0)
        reason[0] = '\0';
    p->bad = 1;
    ms_errlist_add(p->errs, p->file, key, "%s", reason);
}

/* "prefix.key" (or "key" at the top level). */
static const char *kp(char *buf, const char *prefix, const char *key)
{
    if (prefix && *prefix)
        snprintf(buf, KEY_MAX, "%s.%s", prefix, key);
    else
        snprintf(buf, KEY_MAX, "%s", key);
    return buf;
}

/* Reports every key of obj not in allowed (NULL-terminated). */
static void check_keys(pctx_t *p, json_t *obj, const char *prefix, const char *const *allowed)
{
    const char *key;
    json_t *v;
    char k[KEY_MAX];
    json_object_foreach(obj, key, v)
    {
        int ok = 0;
        for (const char *const *a = allowed; *a; a++)
            if (strcmp(*a, key) == 0) {
                ok = 1;
                break;
            }
        if (!ok)
            perr(p, kp(k, prefix, key), "unknown key");
    }
}

/* Returns the member when it is an object, NULL when absent (or wrong type,
 * which is reported). */
static json_t *get_obj(pctx_t *p, json_t *parent, const char *prefix, const char *key)
{
    json_t *v = json_object_get(parent, key);
    char k[KEY_MAX];
    if (!v)
        return NULL;
    if (!json_is_object(v)) {
        perr(p, kp(k, prefix, key), "must be an object");
        return NULL;
    }
    return v;
}

/* 1 when present and valid (stored), 0 when absent, -1 when invalid. */
static int get_int(pctx_t *p, json_t *parent, const char *prefix, const char *key, int64_t min,
                   int64_t max, int64_t *out)
{
    json_t *v = json_object_get(parent, key);
    char k[KEY_MAX];
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        if (max == INT64_MAX)
            perr(p, kp(k, prefix, key), "must be an integer >= %lld", (long long)min);
        else
            perr(p, kp(k, prefix, key), "must be an integer %lld..%lld", (long long)min,
                 (long long)max);
        return -1;
    }
    *out = json_integer_value(v);
    return 1;
}

static int get_int32(pctx_t *p, json_t *parent, const char *prefix, const char *key, int64_t min,
                     int64_t max, int *out)
{
    int64_t v;
    int r = get_int(p, parent, prefix, key, min, max, &v);
    if (r == 1)
        *out = (int)v;
    return r;
}

static int get_u32(pctx_t *p, json_t *parent, const char *prefix, const char *key, int64_t min,
                   int64_t max, uint32_t *out)
{
    int64_t v;
    int r = get_int(p, parent, prefix, key, min, max, &v);
    if (r == 1)
        *out = (uint32_t)v;
    return r;
}

static int get_bool(pctx_t *p, json_t *parent, const char *prefix, const char *key, int *out)
{
    json_t *v = json_object_get(parent, key);
    char k[KEY_MAX];
    if (!v)
        return 0;
    if (!json_is_boolean(v)) {
        perr(p, kp(k, prefix, key), "must be true or false");
        return -1;
    }
    *out = json_is_true(v);
    return 1;
}

/* String of 1..dstlen-1 bytes (0.. when allow_empty). */
static int get_str(pctx_t *p, json_t *parent, const char *prefix, const char *key, char *dst,
                   size_t dstlen, int allow_empty)
{
    json_t *v = json_object_get(parent, key);
    char k[KEY_MAX];
    if (!v)
        return 0;
    if (!json_is_string(v)) {
        perr(p, kp(k, prefix, key), "must be a string");
        return -1;
    }
    size_t n = json_string_length(v);
    const char *s = json_string_value(v);
    if (n == 0 && !allow_empty) {
        perr(p, kp(k, prefix, key), "must not be empty");
        return -1;
    }
    if (n >= dstlen) {
        perr(p, kp(k, prefix, key), "too long (at most %zu characters)", dstlen - 1);
        return -1;
    }
    if (strlen(s) != n) {
        perr(p, kp(k, prefix, key), "must not contain NUL characters");
        return -1;
    }
    memcpy(dst, s, n + 1);
    return 1;
}

static int valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 63 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && c != '.' && c != '_' && c != '-')
            return 0;
    }
    return 1;
}

#define NAME_RULE "must be 1..63 characters of A-Z a-z 0-9 . _ -"

static int get_name(pctx_t *p, json_t *parent, const char *prefix, const char *key, char *dst,
                    size_t dstlen)
{
    json_t *v = json_object_get(parent, key);
    char k[KEY_MAX];
    if (!v)
        return 0;
    if (!json_is_string(v) || !valid_name(json_string_value(v)) ||
        json_string_length(v) >= dstlen) {
        perr(p, kp(k, prefix, key), NAME_RULE);
        return -1;
    }
    snprintf(dst, dstlen, "%s", json_string_value(v));
    return 1;
}

static int get_path(pctx_t *p, json_t *parent, const char *prefix, const char *key, char *dst,
                    size_t dstlen)
{
    char tmp[MS_PATH_MAX];
    char k[KEY_MAX];
    int r = get_str(p, parent, prefix, key, tmp, sizeof tmp < dstlen ? sizeof tmp : dstlen, 0);
    if (r != 1)
        return r;
    if (tmp[0] != '/') {
        perr(p, kp(k, prefix, key), "must be an absolute path");
        return -1;
    }
    snprintf(dst, dstlen, "%s", tmp);
    return 1;
}

/* Value checkers for lists: NULL when fine, else the reason. */
typedef const char *(*check_fn)(const char *s);

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* Array of strings (each 1..maxlen-1 bytes, checked by fn, duplicates
 * rejected). Replaces *out only when every element is valid. */
static int get_strlist(pctx_t *p, json_t *parent, const char *prefix, const char *key,
                       size_t maxlen, check_fn fn, char ***out, size_t *nout)
{
    json_t *v = json_object_get(parent, key);
    char k[KEY_MAX], ke[KEY_MAX + 32];
    if (!v)
        return 0;
    kp(k, prefix, key);
    if (!json_is_array(v)) {
        perr(p, k, "must be an array of strings");
        return -1;
    }
    size_t n = json_array_size(v);
    char **list = calloc(n ? n : 1, sizeof *list);
    if (!list) {
        perr(p, k, "out of memory");
        return -1;
    }
    int ok = 1;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(v, i);
        snprintf(ke, sizeof ke, "%s[%zu]", k, i);
        if (!json_is_string(e) || json_string_length(e) == 0 ||
            strlen(json_string_value(e)) != json_string_length(e)) {
            perr(p, ke, "must be a non-empty string");
            ok = 0;
            continue;
        }
        const char *s = json_string_value(e);
        if (json_string_length(e) >= maxlen) {
            perr(p, ke, "too long (at most %zu characters)", maxlen - 1);
            ok = 0;
            continue;
        }
        const char *why = fn ? fn(s) : NULL;
        if (why) {
            perr(p, ke, "%s", why);
            ok = 0;
            continue;
        }
        for (size_t j = 0; j < i; j++)
            if (list[j] && strcmp(list[j], s) == 0) {
                perr(p, ke, "duplicate of %s[%zu]", k, j);
                ok = 0;
                break;
            }
        list[i] = strdup(s);
        if (!list[i]) {
            perr(p, ke, "out of memory");
            ok = 0;
        }
    }
    if (!ok) {
        free_strv(list, n);
        return -1;
    }
    free_strv(*out, *nout);
    *out = list;
    *nout = n;
    return 1;
}

static int parse_ip(const char *s, unsigned char buf[16], int *family)
{
    if (inet_pton(AF_INET, s, buf) == 1) {
        *family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, s, buf) == 1) {
        *family = AF_INET6;
        return 0;
    }
    return -1;
}

/* IPv4/IPv6 address, optionally with "/prefix" (util/ipaddr.h). A prefix
 * length with leading zeros ("/024") passes, as it always has. */
static const char *check_cidr(const char *s)
{
    ms_cidr_t c;
    const char *why = NULL;
    return ms_cidr_parse_opt(s, MS_CIDR_LEADING_ZEROS, &c, &why) < 0 ? why : NULL;
}

/* host:port, host being a name, an IPv4 address or [IPv6]. */
static const char *check_hostport(const char *s)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s)
        return "must be host:port";
    const char *port = colon + 1;
    if (!*port || strlen(port) > 5)
        return "must be host:port with a port 1..65535";
    for (const char *q = port; *q; q++)
        if (!isdigit((unsigned char)*q))
            return "must be host:port with a port 1..65535";
    long pn = atol(port);
    if (pn < 1 || pn > 65535)
        return "must be host:port with a port 1..65535";
    if (s[0] == '[') {
        if (colon[-1] != ']')
            return "must be host:port ([IPv6]:port for IPv6)";
    } else if (memchr(s, ':', (size_t)(colon - s))) {
        return "must be host:port ([IPv6]:port for IPv6)";
    }
    for (const char *q = s; q < colon; q++)
        if (isspace((unsigned char)*q) || *q == '/' || *q == '@')
            return "must be host:port";
    return NULL;
}

static const char *check_nonblank(const char *s)
{
    for (; *s; s++)
        if (iscntrl((unsigned char)*s))
            return "must not contain control characters";
    return NULL;
}

/* ---- node config ------------------------------------------------------ */

static int ncores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        n = 1;
    if (n > 256)
        n = 256;
    return (int)n;
}

void ms_node_cfg_defaults(ms_node_cfg_t *c)
{
    memset(c, 0, sizeof *c);
    c->threads = ncores();
    snprintf(c->listen_address, sizeof c->listen_address, "0.0.0.0");
    c->port_http = 8080;
    c->port_https = 0;
    c->port_rtsp = 8554;
    c->port_rtmp = 1935;
    c->port_raft = 7000;
    c->conns_per_ip = 256;
    c->request_timeout_s = 10;
    c->hook_timeout_ms = MS_HOOK_TIMEOUT_MS_DEFAULT;
    snprintf(c->advertise, sizeof c->advertise, "127.0.0.1");
    snprintf(c->cluster_group, sizeof c->cluster_group, "default");
    c->cluster_distribution = 1;
    c->cluster_stream_limit = 1000;
    c->cluster_bitrate_limit_kbps = 2000000;
    c->external_access = 0;
    snprintf(c->log_level, sizeof c->log_level, "info");
    c->metrics_auth = 0;
    c->ingest_batch_ms = 1000;
    c->keyframe_wait_s = 30;
    c->keyframe_wait_mb = 32;
}

void ms_node_cfg_free(ms_node_cfg_t *c)
{
    if (!c)
        return;
    free_strv(c->api_keys, c->napi_keys);
    free(c->storage);
    free_strv(c->cluster_join, c->ncluster_join);
    free_strv(c->trusted_proxies, c->ntrusted_proxies);
    c->api_keys = c->cluster_join = c->trusted_proxies = NULL;
    c->storage = NULL;
    c->napi_keys = c->nstorage = c->ncluster_join = c->ntrusted_proxies = 0;
}

static void parse_listen(pctx_t *p, json_t *root, ms_node_cfg_t *c, int *https_set)
{
    static const char *const keys[] = {"address", "http", "https",        "rtsp",
                                       "rtmp",    "raft", "conns_per_ip", "request_timeout_s",
                                       NULL};
    json_t *l = get_obj(p, root, "", "listen");
    if (!l)
        return;
    check_keys(p, l, "listen", keys);
    char addr[64];
    if (get_str(p, l, "listen", "address", addr, sizeof addr, 0) == 1) {
        unsigned char buf[16];
        int fam;
        if (parse_ip(addr, buf, &fam) < 0)
            perr(p, "listen.address", "must be an IPv4 or IPv6 address");
        else
            snprintf(c->listen_address, sizeof c->listen_address, "%s", addr);
    }
    get_int32(p, l, "listen", "http", 0, 65535, &c->port_http);
    *https_set = get_int32(p, l, "listen", "https", 0, 65535, &c->port_https) != 0;
    get_int32(p, l, "listen", "rtsp", 0, 65535, &c->port_rtsp);
    get_int32(p, l, "listen", "rtmp", 0, 65535, &c->port_rtmp);
    get_int32(p, l, "listen", "raft", 0, 65535, &c->port_raft);
    get_int32(p, l, "listen", "conns_per_ip", 1, 100000, &c->conns_per_ip);
    get_int32(p, l, "listen", "request_timeout_s", 1, 3600, &c->request_timeout_s);
}

/* hooks: {"on_publish": URL, "on_play": URL, "timeout_ms": N}
 * (node/hooks.h, docs/config.md) */
static void parse_hooks(pctx_t *p, json_t *root, ms_node_cfg_t *c)
{
    static const char *const keys[] = {"on_publish", "on_play", "timeout_ms", NULL};
    json_t *h = get_obj(p, root, "", "hooks");
    if (!h)
        return;
    check_keys(p, h, "hooks", keys);
    struct {
        const char *key;
        char *dst;
        size_t cap;
    } urls[] = {{"on_publish", c->hook_on_publish, sizeof c->hook_on_publish},
                {"on_play", c->hook_on_play, sizeof c->hook_on_play}};
    for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
        char base[MS_HOOK_URL_MAX], target[MS_HOOK_URL_MAX];
        if (get_str(p, h, "hooks", urls[i].key, urls[i].dst, urls[i].cap, 0) == 1 &&
            ms_hook_url_split(urls[i].dst, base, sizeof base, target, sizeof target) < 0) {
            char where[32];
            snprintf(where, sizeof where, "hooks.%s", urls[i].key);
            perr(p, where, "must be an http://host[:port]/path URL (https is not supported)");
            urls[i].dst[0] = '\0';
        }
    }
    get_int32(p, h, "hooks", "timeout_ms", 50, 60000, &c->hook_timeout_ms);
}

static void check_ports(pctx_t *p, const ms_node_cfg_t *c)
{
    const struct {
        const char *key;
        int port;
    } ports[] = {{"listen.http", c->port_http},
                 {"listen.https", c->port_https},
                 {"listen.rtsp", c->port_rtsp},
                 {"listen.rtmp", c->port_rtmp},
                 {"listen.raft", c->port_raft}};
    for (size_t i = 1; i < sizeof ports / sizeof ports[0]; i++)
        for (size_t j = 0; j < i; j++)
            if (ports[i].port != 0 && ports[i].port == ports[j].port) {
                perr(p, ports[i].key, "port %d is already used by %s", ports[i].port, ports[j].key);
                break;
            }
}

static void parse_storage(pctx_t *p, json_t *root, ms_node_cfg_t *c)
{
    static const char *const keys[] = {"path", "max_used_percent", NULL};
    json_t *v = json_object_get(root, "storage");
    if (!v)
        return;
    if (!json_is_array(v)) {
        perr(p, "storage", "must be an array of objects");
        return;
    }
    size_t n = json_array_size(v);
    ms_storage_cfg_t *st = calloc(n ? n : 1, sizeof *st);
    if (!st) {
        perr(p, "storage", "out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        char pre[64];
        json_t *e = json_array_get(v, i);
        snprintf(pre, sizeof pre, "storage[%zu]", i);
        if (!json_is_object(e)) {
            perr(p, pre, "must be an object");
            continue;
        }
        check_keys(p, e, pre, keys);
        st[i].max_used_percent = 80;
        char k[KEY_MAX];
        if (get_path(p, e, pre, "path", st[i].path, sizeof st[i].path) == 0)
            perr(p, kp(k, pre, "path"), "required");
        get_int32(p, e, pre, "max_used_percent", 1, 100, &st[i].max_used_percent);
        for (size_t j = 0; j < i; j++)
            if (st[j].path[0] && strcmp(st[j].path, st[i].path) == 0) {
                perr(p, kp(k, pre, "path"), "duplicate of storage[%zu].path", j);
                break;
            }
    }
    free(c->storage);
    c->storage = st;
    c->nstorage = n;
}

static void parse_cluster(pctx_t *p, json_t *root, ms_node_cfg_t *c)
{
    static const char *const keys[] = {
        "join", "group", "distribution", "stream_limit", "bitrate_limit_kbps", NULL};
    json_t *o = get_obj(p, root, "", "cluster");
    if (!o)
        return;
    check_keys(p, o, "cluster", keys);
    get_strlist(p, o, "cluster", "join", 300, check_hostport, &c->cluster_join, &c->ncluster_join);
    get_name(p, o, "cluster", "group", c->cluster_group, sizeof c->cluster_group);
    get_bool(p, o, "cluster", "distribution", &c->cluster_distribution);
    get_int(p, o, "cluster", "stream_limit", 0, INT64_MAX, &c->cluster_stream_limit);
    get_int(p, o, "cluster", "bitrate_limit_kbps", 0, INT64_MAX, &c->cluster_bitrate_limit_kbps);
}

static int node_from_json(pctx_t *p, json_t *root, ms_node_cfg_t *c)
{
    static const char *const top[] = {"name",
                                      "data_dir",
                                      "threads",
                                      "listen",
                                      "advertise",
                                      "tls",
                                      "secret",
                                      "admin",
                                      "storage",
                                      "streams_dir",
                                      "cluster",
                                      "external_access",
                                      "trusted_proxies",
                                      "lua_dir",
                                      "lua",
                                      "hooks",
                                      "log_level",
                                      "metrics_auth",
                                      "ingest_batch_ms",
                                      "keyframe_wait_s",
                                      "keyframe_wait_mb",
                                      "cpanel_dir",
                                      "status_log_s",
                                      NULL};
    if (!json_is_object(root)) {
        perr(p, "", "must be a JSON object");
        return -1;
    }
    check_keys(p, root, "", top);

    if (get_name(p, root, "", "name", c->name, sizeof c->name) == 0)
        perr(p, "name", "required");
    if (get_path(p, root, "", "data_dir", c->data_dir, sizeof c->data_dir) == 0)
        perr(p, "data_dir", "required");
    get_int32(p, root, "", "threads", 1, 256, &c->threads);

    int https_set = 0;
    parse_listen(p, root, c, &https_set);

    if (get_str(p, root, "", "advertise", c->advertise, sizeof c->advertise, 0) == 1) {
        for (const char *q = c->advertise; *q; q++)
            if (isspace((unsigned char)*q) || iscntrl((unsigned char)*q) || *q == '/') {
                perr(p, "advertise", "must be a host name or an IP address");
                break;
            }
    }

    json_t *tls = get_obj(p, root, "", "tls");
    if (tls) {
        static const char *const keys[] = {"cert", "key", NULL};
        check_keys(p, tls, "tls", keys);
        if (get_path(p, tls, "tls", "cert", c->tls_cert, sizeof c->tls_cert) == 0)
            perr(p, "tls.cert", "required when tls is set");
        if (get_path(p, tls, "tls", "key", c->tls_key, sizeof c->tls_key) == 0)
            perr(p, "tls.key", "required when tls is set");
        /* HTTPS listens on 8443 when tls is set and listen.https is absent. */
        if (!https_set)
            c->port_https = 8443;
    } else if (c->port_https != 0) {
        perr(p, "listen.https", "requires tls.cert and tls.key");
    }
    check_ports(p, c);

    int has_secret = get_str(p, root, "", "secret", c->secret, sizeof c->secret, 0);

    json_t *admin = get_obj(p, root, "", "admin");
    if (admin) {
        static const char *const keys[] = {"user", "password", "keys", NULL};
        check_keys(p, admin, "admin", keys);
        int u = get_str(p, admin, "admin", "user", c->admin_user, sizeof c->admin_user, 0);
        int pw =
            get_str(p, admin, "admin", "password", c->admin_password, sizeof c->admin_password, 0);
        if (u == 1 && pw == 0)
            perr(p, "admin.password", "required when admin.user is set");
        if (pw == 1 && u == 0)
            perr(p, "admin.user", "required when admin.password is set");
        if (u == 1 && strchr(c->admin_user, ':'))
            perr(p, "admin.user", "must not contain ':' (HTTP Basic, RFC 7617)");
        get_strlist(p, admin, "admin", "keys", 256, check_nonblank, &c->api_keys, &c->napi_keys);
    }

    parse_storage(p, root, c);
    get_path(p, root, "", "streams_dir", c->streams_dir, sizeof c->streams_dir);
    parse_cluster(p, root, c);
    get_bool(p, root, "", "external_access", &c->external_access);
    get_strlist(p, root, "", "trusted_proxies", 64, check_cidr, &c->trusted_proxies,
                &c->ntrusted_proxies);
    get_path(p, root, "", "lua_dir", c->lua_dir, sizeof c->lua_dir);
    parse_hooks(p, root, c);
    json_t *lua = json_object_get(root, "lua");
    if (lua && !json_is_object(lua)) {
        perr(p, "lua", "must be an object");
    } else if (lua) {
        static const char *const lua_keys[] = {"fail", NULL};
        check_keys(p, lua, "lua", lua_keys);
        char fail[16];
        if (get_str(p, lua, "lua", "fail", fail, sizeof fail, 0) == 1) {
            if (strcmp(fail, "open") == 0)
                c->lua_fail_open = 1;
            else if (strcmp(fail, "closed") != 0)
                perr(p, "lua.fail", "must be \"open\" or \"closed\"");
        }
    }
    get_path(p, root, "", "cpanel_dir", c->cpanel_dir, sizeof c->cpanel_dir);

    char lvl[16];
    if (get_str(p, root, "", "log_level", lvl, sizeof lvl, 0) == 1) {
        if (strcmp(lvl, "debug") && strcmp(lvl, "info") && strcmp(lvl, "warn") &&
            strcmp(lvl, "error"))
            perr(p, "log_level", "must be one of debug, info, warn, error");
        else
            snprintf(c->log_level, sizeof c->log_level, "%s", lvl);
    }
    get_bool(p, root, "", "metrics_auth", &c->metrics_auth);
    if (get_u32(p, root, "", "ingest_batch_ms", 0, 1000, &c->ingest_batch_ms) == 1 &&
        c->ingest_batch_ms > 0 && c->ingest_batch_ms < 10)
        perr(p, "ingest_batch_ms", "must be 0 (read on arrival) or 10..1000");
    get_u32(p, root, "", "keyframe_wait_s", 1, 3600, &c->keyframe_wait_s);
    get_u32(p, root, "", "keyframe_wait_mb", 1, 4096, &c->keyframe_wait_mb);
    get_u32(p, root, "", "status_log_s", 0, 86400, &c->status_log_s);

    /* a joining node without the cluster's secret could never authenticate
     * its joins nor its calls (docs/security.md "Keys") */
    if (has_secret == 0 && c->ncluster_join > 0)
        perr(p, "secret",
             "required when cluster.join is set (the cluster's shared secret: "
             "joins and node-to-node calls are signed with keys derived from it)");
    if (has_secret == 0 && !p->bad) {
        if (ms_secret_random(c->secret, sizeof c->secret, 32) < 0)
            perr(p, "secret", "cannot generate a random secret");
        else
            MS_WARN("[config]",
                    "%s: secret: absent, using a random secret for this run "
                    "(playback tokens will not survive a restart nor work across nodes, "
                    "and no other node can talk raft with this one)",
                    p->file);
    }
    return p->bad ? -1 : 0;
}

static void json_error_line(pctx_t *p, const json_error_t *je)
{
    perr(p, "", "invalid JSON at line %d column %d: %s", je->line, je->column, je->text);
}

int ms_node_cfg_parse(const char *json, size_t len, const char *file, ms_node_cfg_t *out,
                      ms_errlist_t *errs)
{
    pctx_t p = {file, errs, 0};
    ms_node_cfg_defaults(out);
    json_error_t je;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        json_error_line(&p, &je);
        return -1;
    }
    int r = node_from_json(&p, root, out);
    json_decref(root);
    return r;
}

static char *read_file(const char *path, size_t *len, int *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        *err = errno;
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n == cap) {
            /* config files are small; refuse anything absurd */
            if (cap >= (16u << 20)) {
                free(buf);
                buf = NULL;
                *err = EFBIG;
                break;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                *err = ENOMEM;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) {
            if (ferror(f)) {
                free(buf);
                buf = NULL;
                *err = EIO;
            }
            break;
        }
    }
    if (!buf && *err == 0)
        *err = ENOMEM;
    fclose(f);
    *len = n;
    return buf;
}

int ms_node_cfg_load(const char *path, ms_node_cfg_t *out, ms_errlist_t *errs)
{
    size_t len = 0;
    int err = 0;
    char *text = read_file(path, &len, &err);
    if (!text) {
        ms_node_cfg_defaults(out);
        ms_errlist_add(errs, path, "(file)", "cannot read: %s", strerror(err));
        return -1;
    }
    int r = ms_node_cfg_parse(text, len, path, out, errs);
    free(text);
    return r;
}

/* ---- stream config ---------------------------------------------------- */

void ms_stream_cfg_defaults(ms_stream_cfg_t *s)
{
    memset(s, 0, sizeof *s);
    s->enabled = 1;
    s->channels = MS_CHANNEL_VIDEO | MS_CHANNEL_AUDIO;
    s->transport = MS_TRANSPORT_AUTO;
    s->reconnect_interval_ms = 1000;
    s->reconnect_max_interval_ms = 30000;
    s->dvr_enabled = 0;
    s->dvr_depth_s = 86400;
    s->dvr_chunk_s = 10;
    s->dvr_mode = MS_DVR_CONTINUOUS;
    s->access_mode = MS_ACCESS_PUBLIC;
    snprintf(s->quality, sizeof s->quality, "high");
    s->reserve = 0;
    s->hls_format = MS_HLS_AUTO;
    s->hls_segment_ms = 2000;
    s->hls_part_ms = 200;
    s->hls_window = 6;
}

void ms_stream_cfg_free(ms_stream_cfg_t *s)
{
    if (!s)
        return;
    free_strv(s->whitelist, s->nwhitelist);
    s->whitelist = NULL;
    s->nwhitelist = 0;
}

int ms_stream_cfg_copy(ms_stream_cfg_t *dst, const ms_stream_cfg_t *src)
{
    *dst = *src;
    dst->whitelist = NULL;
    dst->nwhitelist = 0;
    if (src->nwhitelist == 0)
        return 0;
    dst->whitelist = calloc(src->nwhitelist, sizeof *dst->whitelist);
    if (!dst->whitelist)
        return -ENOMEM;
    for (size_t i = 0; i < src->nwhitelist; i++) {
        dst->whitelist[i] = strdup(src->whitelist[i]);
        if (!dst->whitelist[i]) {
            free_strv(dst->whitelist, i);
            dst->whitelist = NULL;
            return -ENOMEM;
        }
    }
    dst->nwhitelist = src->nwhitelist;
    return 0;
}

/* rtsp:// or rtsps:// with a host (RFC 2326 section 3.2), or exactly
 * "publish://" (a stream fed by an RTMP publisher, docs/rtmp.md). */
static const char *check_rtsp_url(const char *u)
{
    const char *rest;
    if (strcmp(u, "publish://") == 0)
        return NULL;
    if (strncasecmp(u, "rtsp://", 7) == 0)
        rest = u + 7;
    else if (strncasecmp(u, "rtsps://", 8) == 0)
        rest = u + 8;
    else
        return "must start with rtsp:// or rtsps:// (or be publish://)";
    for (const char *q = u; *q; q++)
        if (isspace((unsigned char)*q) || iscntrl((unsigned char)*q))
            return "must not contain spaces or control characters";
    size_t alen = strcspn(rest, "/?#");
    const char *auth = rest;
    /* userinfo ends at the last '@' of the authority */
    for (size_t i = 0; i < alen; i++)
        if (rest[i] == '@')
            auth = rest + i + 1;
    size_t hlen = alen - (size_t)(auth - rest);
    if (hlen == 0)
        return "must name a host (rtsp://host[:port]/path)";
    const char *port = NULL;
    if (auth[0] == '[') {
        const char *close = memchr(auth, ']', hlen);
        if (!close || close == auth + 1)
            return "bad [IPv6] host";
        if ((size_t)(close - auth) + 1 < hlen) {
            if (close[1] != ':')
                return "bad host";
            port = close + 2;
        }
    } else {
        const char *colon = memchr(auth, ':', hlen);
        if (colon == auth)
            return "must name a host (rtsp://host[:port]/path)";
        if (colon)
            port = colon + 1;
    }
    if (port) {
        size_t plen = hlen - (size_t)(port - auth);
        long pn = 0;
        if (plen == 0 || plen > 5)
            return "bad port (1..65535)";
        for (size_t i = 0; i < plen; i++) {
            if (!isdigit((unsigned char)port[i]))
                return "bad port (1..65535)";
            pn = pn * 10 + (port[i] - '0');
        }
        if (pn < 1 || pn > 65535)
            return "bad port (1..65535)";
    }
    return NULL;
}

static const char *const g_channel_names[] = {"video", "audio", "application"};

static void parse_channels(pctx_t *p, json_t *root, ms_stream_cfg_t *s)
{
    json_t *v = json_object_get(root, "channels");
    if (!v)
        return;
    if (!json_is_array(v) || json_array_size(v) == 0) {
        perr(p, "channels", "must be a non-empty array of video, audio, application");
        return;
    }
    unsigned mask = 0;
    int ok = 1;
    for (size_t i = 0; i < json_array_size(v); i++) {
        char k[KEY_MAX];
        snprintf(k, sizeof k, "channels[%zu]", i);
        json_t *e = json_array_get(v, i);
        unsigned bit = 0;
        for (unsigned c = 0; c < 3 && json_is_string(e); c++)
            if (strcmp(json_string_value(e), g_channel_names[c]) == 0)
                bit = 1u << c;
        if (!bit) {
            perr(p, k, "must be one of video, audio, application");
            ok = 0;
        } else if (mask & bit) {
            perr(p, k, "duplicate channel \"%s\"", json_string_value(e));
            ok = 0;
        }
        mask |= bit;
    }
    if (ok)
        s->channels = mask;
}

/* Matches one of the names (NULL-terminated) and returns its index. */
static int get_enum(pctx_t *p, json_t *parent, const char *prefix, const char *key,
                    const char *const *names, int *out)
{
    json_t *v = json_object_get(parent, key);
    char k[KEY_MAX];
    if (!v)
        return 0;
    if (json_is_string(v))
        for (int i = 0; names[i]; i++)
            if (strcmp(json_string_value(v), names[i]) == 0) {
                *out = i;
                return 1;
            }
    char list[256] = "";
    for (int i = 0; names[i]; i++) {
        size_t l = strlen(list);
        snprintf(list + l, sizeof list - l, "%s%s", i ? ", " : "", names[i]);
    }
    perr(p, kp(k, prefix, key), "must be one of %s", list);
    return -1;
}

/* "push": [{"url": "rtmp://host[:port]/app/name"}, ...], at most
 * MS_PUSH_MAX targets (docs/config.md, docs/rtmp.md "Push"). */
static void push_from_json(pctx_t *p, json_t *root, ms_stream_cfg_t *s)
{
    json_t *v = json_object_get(root, "push");
    if (!v || json_is_null(v))
        return;
    if (!json_is_array(v)) {
        perr(p, "push", "must be an array of {\"url\": \"rtmp://host[:port]/app/name\"}");
        return;
    }
    if (json_array_size(v) > MS_PUSH_MAX) {
        perr(p, "push", "at most %d targets", MS_PUSH_MAX);
        return;
    }
    size_t i;
    json_t *t;
    json_array_foreach(v, i, t)
    {
        char key[32];
        snprintf(key, sizeof key, "push[%zu]", i);
        static const char *const keys[] = {"url", NULL};
        if (!json_is_object(t)) {
            perr(p, key, "must be an object {\"url\": \"rtmp://host[:port]/app/name\"}");
            continue;
        }
        check_keys(p, t, key, keys);
        const char *u = json_string_value(json_object_get(t, "url"));
        ms_rtmp_url_t ru;
        if (!u) {
            perr(p, key, "needs \"url\" (a string)");
        } else if (strlen(u) >= sizeof s->push_url[0]) {
            perr(p, key, "url is longer than %zu bytes", sizeof s->push_url[0] - 1);
        } else if (ms_rtmp_url_parse(u, &ru) < 0) {
            perr(p, key, "url must be rtmp://host[:port]/app/name (got \"%.200s\")", u);
        } else {
            for (int j = 0; j < s->npush; j++)
                if (strcmp(s->push_url[j], u) == 0)
                    perr(p, key, "url repeats an earlier target");
            snprintf(s->push_url[s->npush++], sizeof s->push_url[0], "%s", u);
        }
    }
}

static int stream_from_json(pctx_t *p, json_t *root, ms_stream_cfg_t *s)
{
    static const char *const top[] = {"uid",       "name",      "url",   "enabled", "channels",
                                      "transport", "reconnect", "dvr",   "access",  "camera",
                                      "quality",   "reserve",   "group", "hls",     "publish_key",
                                      "publish",   "push",      NULL};
    if (!json_is_object(root)) {
        perr(p, "", "must be a JSON object");
        return -1;
    }
    check_keys(p, root, "", top);

    json_t *uidv = json_object_get(root, "uid");
    if (uidv && (!json_is_string(uidv) || !valid_name(json_string_value(uidv))))
        perr(p, "uid", NAME_RULE " (a UUID is usual)");
    else if (uidv)
        snprintf(s->uid, sizeof s->uid, "%s", json_string_value(uidv));

    if (get_name(p, root, "", "name", s->name, sizeof s->name) == 0)
        perr(p, "name", "required");

    json_t *url = json_object_get(root, "url");
    if (!url) {
        perr(p, "url", "required");
    } else if (get_str(p, root, "", "url", s->url, sizeof s->url, 0) == 1) {
        const char *why = check_rtsp_url(s->url);
        if (why)
            perr(p, "url", "%s", why);
    }

    get_bool(p, root, "", "enabled", &s->enabled);
    parse_channels(p, root, s);

    static const char *const transports[] = {"auto", "tcp", "udp", NULL};
    int t = 0;
    if (get_enum(p, root, "", "transport", transports, &t) == 1)
        s->transport = t == 0 ? MS_TRANSPORT_AUTO : t == 1 ? MS_TRANSPORT_TCP : MS_TRANSPORT_UDP;

    json_t *rc = get_obj(p, root, "", "reconnect");
    if (rc) {
        static const char *const keys[] = {"interval_ms", "max_interval_ms", NULL};
        check_keys(p, rc, "reconnect", keys);
        int a = get_u32(p, rc, "reconnect", "interval_ms", 100, 3600000, &s->reconnect_interval_ms);
        int b = get_u32(p, rc, "reconnect", "max_interval_ms", 100, 3600000,
                        &s->reconnect_max_interval_ms);
        if (a >= 0 && b >= 0 && s->reconnect_max_interval_ms < s->reconnect_interval_ms) {
            if (b == 0) /* only interval given: raise the cap with it */
                s->reconnect_max_interval_ms = s->reconnect_interval_ms;
            else
                perr(p, "reconnect.max_interval_ms", "must be >= reconnect.interval_ms (%u)",
                     s->reconnect_interval_ms);
        }
    }

    json_t *dvr = get_obj(p, root, "", "dvr");
    if (dvr) {
        static const char *const keys[] = {"enabled", "depth_s", "chunk_s", "mode", NULL};
        static const char *const modes[] = {"continuous", "event", NULL};
        check_keys(p, dvr, "dvr", keys);
        get_bool(p, dvr, "dvr", "enabled", &s->dvr_enabled);
        get_int(p, dvr, "dvr", "depth_s", 0, INT64_MAX, &s->dvr_depth_s);
        get_int32(p, dvr, "dvr", "chunk_s", 1, 3600, &s->dvr_chunk_s);
        int m = 0;
        if (get_enum(p, dvr, "dvr", "mode", modes, &m) == 1)
            s->dvr_mode = m == 0 ? MS_DVR_CONTINUOUS : MS_DVR_EVENT;
    }

    json_t *acc = get_obj(p, root, "", "access");
    if (acc) {
        static const char *const keys[] = {"mode", "whitelist", NULL};
        static const char *const modes[] = {"public", "protected", "private", NULL};
        check_keys(p, acc, "access", keys);
        int m = 0;
        if (get_enum(p, acc, "access", "mode", modes, &m) == 1)
            s->access_mode = m == 0   ? MS_ACCESS_PUBLIC
                             : m == 1 ? MS_ACCESS_PROTECTED
                                      : MS_ACCESS_PRIVATE;
        get_strlist(p, acc, "access", "whitelist", 64, check_cidr, &s->whitelist, &s->nwhitelist);
    }

    if (get_str(p, root, "", "camera", s->camera, sizeof s->camera, 1) == 1) {
        const char *why = check_nonblank(s->camera);
        if (why)
            perr(p, "camera", "%s", why);
    }
    static const char *const qualities[] = {"high", "low", NULL};
    int q = 0;
    if (get_enum(p, root, "", "quality", qualities, &q) == 1)
        snprintf(s->quality, sizeof s->quality, "%s", qualities[q]);
    get_bool(p, root, "", "reserve", &s->reserve);
    json_t *g = json_object_get(root, "group");
    if (g && json_is_string(g) && json_string_length(g) == 0)
        s->group[0] = '\0'; /* "" = no pinned group */
    else
        get_name(p, root, "", "group", s->group, sizeof s->group);

    if (get_str(p, root, "", "publish_key", s->publish_key, sizeof s->publish_key, 1) == 1) {
        for (const char *k = s->publish_key; *k; k++)
            if (!isalnum((unsigned char)*k) && !strchr("-_.~", *k)) {
                perr(p, "publish_key", "may hold only letters, digits and - _ . ~");
                break;
            }
    }
    json_t *pub = get_obj(p, root, "", "publish");
    if (pub) {
        static const char *const keys[] = {"republish", NULL};
        static const char *const modes[] = {"reject", "kick", NULL};
        check_keys(p, pub, "publish", keys);
        int m = 0;
        if (get_enum(p, pub, "publish", "republish", modes, &m) == 1)
            s->republish_kick = m == 1;
    }

    push_from_json(p, root, s);

    json_t *hls = get_obj(p, root, "", "hls");
    if (hls) {
        static const char *const keys[] = {"format", "segment_ms", "part_ms", "window", NULL};
        static const char *const formats[] = {"auto", "ts", "fmp4", NULL};
        check_keys(p, hls, "hls", keys);
        int f = 0;
        if (get_enum(p, hls, "hls", "format", formats, &f) == 1)
            s->hls_format = f == 0 ? MS_HLS_AUTO : f == 1 ? MS_HLS_TS : MS_HLS_FMP4;
        get_u32(p, hls, "hls", "segment_ms", 500, 60000, &s->hls_segment_ms);
        int pr = get_u32(p, hls, "hls", "part_ms", 50, 5000, &s->hls_part_ms);
        get_u32(p, hls, "hls", "window", 2, 1000, &s->hls_window);
        if (pr == 1 && s->hls_part_ms > s->hls_segment_ms)
            perr(p, "hls.part_ms", "must be <= hls.segment_ms (%u)", s->hls_segment_ms);
    }

    if (!p->bad && s->uid[0] == '\0') {
        char uid[MS_UID_LEN];
        if (ms_uid_random(uid) < 0)
            perr(p, "uid", "cannot generate a random uid");
        else
            snprintf(s->uid, sizeof s->uid, "%s", uid);
    }
    return p->bad ? -1 : 0;
}

int ms_stream_cfg_parse(const char *json, size_t len, const char *file, ms_stream_cfg_t *out,
                        ms_errlist_t *errs)
{
    pctx_t p = {file, errs, 0};
    ms_stream_cfg_defaults(out);
    snprintf(out->source_file, sizeof out->source_file, "%s", file ? file : "");
    json_error_t je;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        json_error_line(&p, &je);
        return -1;
    }
    int r = stream_from_json(&p, root, out);
    json_decref(root);
    return r;
}

static const char *transport_name(ms_transport_t t)
{
    return t == MS_TRANSPORT_TCP ? "tcp" : t == MS_TRANSPORT_UDP ? "udp" : "auto";
}

json_t *ms_stream_cfg_to_json(const ms_stream_cfg_t *s)
{
    json_t *o = json_object();
    json_t *ch = json_array();
    json_t *wl = json_array();
    if (!o || !ch || !wl)
        goto err;
    for (unsigned c = 0; c < 3; c++)
        if (s->channels & (1u << c))
            json_array_append_new(ch, json_string(g_channel_names[c]));
    for (size_t i = 0; i < s->nwhitelist; i++)
        json_array_append_new(wl, json_string(s->whitelist[i]));
    static const char *const access[] = {"public", "protected", "private"};
    static const char *const formats[] = {"auto", "ts", "fmp4"};
    int am = (int)s->access_mode, hf = s->hls_format;
    if (am < 0 || am > 2)
        am = 0;
    if (hf < 0 || hf > 2)
        hf = 0;
    json_object_set_new(o, "uid", json_string(s->uid));
    json_object_set_new(o, "name", json_string(s->name));
    json_object_set_new(o, "url", json_string(s->url));
    json_object_set_new(o, "enabled", json_boolean(s->enabled));
    json_object_set_new(o, "channels", ch);
    ch = NULL;
    json_object_set_new(o, "transport", json_string(transport_name(s->transport)));
    json_object_set_new(o, "reconnect",
                        json_pack("{s:I,s:I}", "interval_ms", (json_int_t)s->reconnect_interval_ms,
                                  "max_interval_ms", (json_int_t)s->reconnect_max_interval_ms));
    json_object_set_new(o, "dvr",
                        json_pack("{s:b,s:I,s:i,s:s}", "enabled", s->dvr_enabled, "depth_s",
                                  (json_int_t)s->dvr_depth_s, "chunk_s", s->dvr_chunk_s, "mode",
                                  s->dvr_mode == MS_DVR_EVENT ? "event" : "continuous"));
    json_object_set_new(o, "access", json_pack("{s:s,s:o}", "mode", access[am], "whitelist", wl));
    wl = NULL;
    json_object_set_new(o, "camera", json_string(s->camera));
    json_object_set_new(o, "quality", json_string(s->quality[0] ? s->quality : "high"));
    json_object_set_new(o, "reserve", json_boolean(s->reserve));
    json_object_set_new(o, "group", json_string(s->group));
    json_object_set_new(o, "hls",
                        json_pack("{s:s,s:I,s:I,s:I}", "format", formats[hf], "segment_ms",
                                  (json_int_t)s->hls_segment_ms, "part_ms",
                                  (json_int_t)s->hls_part_ms, "window", (json_int_t)s->hls_window));
    json_object_set_new(o, "publish_key", json_string(s->publish_key));
    json_object_set_new(o, "publish",
                        json_pack("{s:s}", "republish", s->republish_kick ? "kick" : "reject"));
    json_t *push = json_array();
    for (int i = 0; push && i < s->npush; i++)
        json_array_append_new(push, json_pack("{s:s}", "url", s->push_url[i]));
    json_object_set_new(o, "push", push);
    return o;
err:
    json_decref(o);
    json_decref(ch);
    json_decref(wl);
    return NULL;
}

int ms_stream_cfg_equal(const ms_stream_cfg_t *a, const ms_stream_cfg_t *b)
{
    if (strcmp(a->uid, b->uid) || strcmp(a->name, b->name) || strcmp(a->url, b->url) ||
        a->enabled != b->enabled || a->channels != b->channels || a->transport != b->transport ||
        a->reconnect_interval_ms != b->reconnect_interval_ms ||
        a->reconnect_max_interval_ms != b->reconnect_max_interval_ms ||
        a->dvr_enabled != b->dvr_enabled || a->dvr_depth_s != b->dvr_depth_s ||
        a->dvr_chunk_s != b->dvr_chunk_s || a->dvr_mode != b->dvr_mode ||
        a->access_mode != b->access_mode || a->nwhitelist != b->nwhitelist ||
        strcmp(a->camera, b->camera) || strcmp(a->quality, b->quality) ||
        a->reserve != b->reserve || strcmp(a->group, b->group) || a->hls_format != b->hls_format ||
        a->hls_segment_ms != b->hls_segment_ms || a->hls_part_ms != b->hls_part_ms ||
        a->hls_window != b->hls_window || strcmp(a->publish_key, b->publish_key) ||
        a->republish_kick != b->republish_kick || a->npush != b->npush ||
        memcmp(a->push_url, b->push_url, sizeof a->push_url) != 0)
        return 0;
    for (size_t i = 0; i < a->nwhitelist; i++)
        if (strcmp(a->whitelist[i], b->whitelist[i]))
            return 0;
    return 1;
}

/* ---- environment checks (--check-config) ------------------------------ */

/* 1 when host (a name, an IPv4 address or an IPv6 address without
 * brackets) is loopback: "localhost", 127.0.0.0/8 or ::1. */
static int host_is_loopback(const char *host)
{
    unsigned char buf[16];
    int fam = 0;
    if (strcasecmp(host, "localhost") == 0)
        return 1;
    if (parse_ip(host, buf, &fam) < 0)
        return 0;
    if (fam == AF_INET)
        return buf[0] == 127;
    static const unsigned char v6lo[16] = {[15] = 1};
    return memcmp(buf, v6lo, 16) == 0;
}

/* The host part of "host:port" / "[v6]:port" into out. */
static void hostport_host(const char *hp, char *out, size_t cap)
{
    const char *colon = strrchr(hp, ':');
    size_t n = colon ? (size_t)(colon - hp) : strlen(hp);
    if (n >= 2 && hp[0] == '[' && hp[n - 1] == ']') {
        hp++;
        n -= 2;
    }
    if (n >= cap)
        n = cap - 1;
    memcpy(out, hp, n);
    out[n] = '\0';
}

/* A directory the node creates (mkdir -p) and writes: fine when it is a
 * writable directory, or when its nearest existing ancestor is one. */
static void check_dir_creatable(const char *file, const char *key, const char *path,
                                ms_errlist_t *errs)
{
    char tmp[MS_PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    struct stat st;
    int self = 1;
    for (;;) {
        if (stat(tmp, &st) == 0) {
            if (!S_ISDIR(st.st_mode)) {
                if (self)
                    ms_errlist_add(errs, file, key, "%s exists and is not a directory", tmp);
                else
                    ms_errlist_add(errs, file, key, "cannot create %s: %s is not a directory", path,
                                   tmp);
            } else if (access(tmp, W_OK | X_OK) != 0) {
                if (self)
                    ms_errlist_add(errs, file, key, "%s is not writable: %s", tmp, strerror(errno));
                else
                    ms_errlist_add(errs, file, key, "cannot create %s: %s is not writable (%s)",
                                   path, tmp, strerror(errno));
            }
            return;
        }
        if (errno != ENOENT) { /* ENOTDIR: a part of the path is a file */
            ms_errlist_add(errs, file, key, "cannot create %s: %s", path, strerror(errno));
            return;
        }
        char *slash = strrchr(tmp, '/');
        if (!slash || slash == tmp)
            return; /* "/" exists */
        *slash = '\0';
        self = 0;
    }
}

static void check_readable_file(const char *file, const char *key, const char *path,
                                ms_errlist_t *errs)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        ms_errlist_add(errs, file, key, "cannot read %s: %s", path, strerror(errno));
        return;
    }
    if (!S_ISREG(st.st_mode)) {
        ms_errlist_add(errs, file, key, "%s is not a regular file", path);
        return;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        ms_errlist_add(errs, file, key, "cannot read %s: %s", path, strerror(errno));
        return;
    }
    fclose(f);
}

/* 0 when a TCP socket can bind address:port (then closed at once),
 * else -errno. */
static int try_bind(const char *address, int port)
{
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, address, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        len = sizeof *a4;
    } else if (inet_pton(AF_INET6, address, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        len = sizeof *a6;
    } else {
        return -EINVAL;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1; /* as the listeners do: TIME_WAIT leftovers do not count */
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int r = bind(fd, (struct sockaddr *)&ss, len) == 0 ? 0 : -errno;
    close(fd);
    return r;
}

void ms_node_cfg_check_env(const ms_node_cfg_t *c, const char *file, ms_errlist_t *errs,
                           ms_errlist_t *warns)
{
    assert(c && file && errs && warns);
    if (c->data_dir[0])
        check_dir_creatable(file, "data_dir", c->data_dir, errs);
    for (size_t i = 0; i < c->nstorage; i++) {
        char key[64];
        snprintf(key, sizeof key, "storage[%zu].path", i);
        if (c->storage[i].path[0])
            check_dir_creatable(file, key, c->storage[i].path, errs);
    }
    if (c->tls_cert[0])
        check_readable_file(file, "tls.cert", c->tls_cert, errs);
    if (c->tls_key[0])
        check_readable_file(file, "tls.key", c->tls_key, errs);
    if (c->lua_dir[0]) {
        struct stat st;
        if (stat(c->lua_dir, &st) != 0)
            ms_errlist_add(errs, file, "lua_dir", "%s: %s", c->lua_dir, strerror(errno));
        else if (!S_ISDIR(st.st_mode))
            ms_errlist_add(errs, file, "lua_dir", "%s is not a directory", c->lua_dir);
    }
    /* A loopback advertise address is what the other nodes dial back: a
     * join to another host would be accepted and then fail (the leader
     * cannot reach 127.0.0.1 of this node). Joins that all stay on loopback
     * (one host, tests, demos) are fine. */
    if (c->ncluster_join > 0 && c->port_raft > 0 && host_is_loopback(c->advertise)) {
        for (size_t i = 0; i < c->ncluster_join; i++) {
            char host[300];
            hostport_host(c->cluster_join[i], host, sizeof host);
            if (!host_is_loopback(host)) {
                ms_errlist_add(errs, file, "advertise",
                               "is %s (loopback) but cluster.join[%zu] %s is another host: "
                               "set advertise to an address the other nodes reach",
                               c->advertise, i, c->cluster_join[i]);
                break;
            }
        }
    }
    /* Ports the node listens on (TCP). In use is only a warning: the check
     * may run where the node is already running. */
    const struct {
        const char *key;
        int port;
    } ports[] = {{"listen.http", c->port_http},
                 {"listen.https", c->port_https},
                 {"listen.rtsp", c->port_rtsp},
                 {"listen.raft", c->port_raft}};
    for (size_t i = 0; i < sizeof ports / sizeof ports[0]; i++) {
        if (ports[i].port <= 0)
            continue;
        int r = try_bind(c->listen_address, ports[i].port);
        if (r == -EADDRINUSE)
            ms_errlist_add(warns, file, ports[i].key, "warning: port %d is in use", ports[i].port);
        else if (r == -EADDRNOTAVAIL)
            ms_errlist_add(errs, file, "listen.address", "%s is not an address of this host",
                           c->listen_address);
        else if (r == -EACCES)
            ms_errlist_add(warns, file, ports[i].key,
                           "warning: port %d needs privileges (CAP_NET_BIND_SERVICE)",
                           ports[i].port);
        if (r == -EADDRNOTAVAIL)
            break;
    }
}

/* ---- the embedded default (mediaserver with no argument) -------------- */

/* Port from the environment variable env (1..65535), else def. */
static int env_port(const char *env, int def, const char **bad)
{
    const char *v = getenv(env);
    if (!v || !*v)
        return def;
    char *end = NULL;
    long p = strtol(v, &end, 10);
    if (!end || *end || p < 1 || p > 65535) {
        *bad = env;
        return def;
    }
    return (int)p;
}

int ms_node_cfg_embedded(const char *dir, char *cfg_path, size_t cap, char *password, size_t pcap)
{
    assert(dir && dir[0] == '/' && cfg_path && password && pcap >= 33);
    password[0] = '\0';
    if ((size_t)snprintf(cfg_path, cap, "%s/node.json", dir) >= cap)
        return -ENAMETOOLONG;
    struct stat st;
    if (stat(cfg_path, &st) == 0)
        return 0; /* generated by an earlier run: reused as is */
    if (errno != ENOENT)
        return -errno;
    const char *bad = NULL;
    int http = env_port("MS_HTTP_PORT", 8080, &bad);
    int rtsp = env_port("MS_RTSP_PORT", 8554, &bad);
    int raft = env_port("MS_RAFT_PORT", 7000, &bad);
    if (bad) {
        MS_ERROR("[config]", "%s: must be a port 1..65535", bad);
        return -EINVAL;
    }
    char secret[65];
    if (ms_secret_random(secret, sizeof secret, 32) < 0 || ms_secret_random(password, pcap, 16) < 0)
        return -EIO;
    char sub[2][MS_PATH_MAX + 16];
    snprintf(sub[0], sizeof sub[0], "%s/archive", dir);
    snprintf(sub[1], sizeof sub[1], "%s/streams", dir);
    json_t *root = json_pack(
        "{s:s,s:s,s:{s:s,s:i,s:i,s:i,s:i,s:i},s:s,s:s,s:{s:s,s:s},s:[{s:s}],s:s}", "name", "local",
        "data_dir", dir, "listen", "address", "127.0.0.1", "http", http, "https", 0, "rtsp", rtsp,
        "rtmp", 0, "raft", raft, "advertise", "127.0.0.1", "secret", secret, "admin", "user",
        "admin", "password", password, "storage", "path", sub[0], "streams_dir", sub[1]);
    if (!root)
        return -ENOMEM;
    /* the streams directory must exist for the loader */
    if (mkdir(sub[1], 0750) != 0 && errno != EEXIST) {
        int e = errno;
        json_decref(root);
        return -e;
    }
    /* 0600: the file holds the admin password and the cluster secret;
     * O_EXCL: two starts at once do not both write it */
    int fd = open(cfg_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        json_decref(root);
        return -e;
    }
    char *text = json_dumps(root, JSON_INDENT(2));
    json_decref(root);
    size_t len = text ? strlen(text) : 0;
    int r = text && write(fd, text, len) == (ssize_t)len && write(fd, "\n", 1) == 1 ? 0 : -EIO;
    free(text);
    if (close(fd) != 0 && r == 0)
        r = -errno;
    if (r < 0)
        unlink(cfg_path);
    return r < 0 ? r : 1;
}
