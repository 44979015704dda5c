/* Node glue for the RTMP server (node/rtmp_glue.h). */
#include "node/rtmp_glue.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "media/rtmp/server.h"
#include "node/hooks.h"
#include "node/lua.h"
#include "node/streams.h"
#include "util/ipaddr.h"
#include "util/log.h"
#include "util/urlquery.h"

static ms_rtmp_server_t *g_srv;
static const ms_node_cfg_t *g_cfg;

static int glue_lookup(void *ud, const char *name, ms_rtmp_stream_t *out)
{
    (void)ud;
    ms_stream_t *s = ms_streams_find(name);
    if (!s)
        return -ENOENT;
    ms_stream_cfg_t cfg;
    if (ms_stream_run_state(s) != MS_RUN_ACTIVE || ms_stream_get_cfg(s, &cfg) < 0) {
        ms_stream_unref(s);
        return -ENOENT;
    }
    memset(out, 0, sizeof *out);
    out->ref = s;
    out->hub = ms_stream_hub(s);
    ms_worker_t *w = ms_stream_worker(s);
    out->loop = ms_worker_loop(w);
    out->exec = w;
    snprintf(out->name, sizeof out->name, "%s", cfg.name);
    ms_stream_cfg_free(&cfg);
    return 0;
}

static void glue_release(void *ud, void *ref)
{
    (void)ud;
    ms_stream_unref(ref);
}

static int glue_running(void *ud, void *ref)
{
    (void)ud;
    return ms_stream_run_state(ref) == MS_RUN_ACTIVE;
}

typedef struct {
    void (*fn)(void *arg);
    void *arg;
} task_t;

static void glue_task(ms_worker_t *w, void *arg)
{
    (void)w;
    task_t t = *(task_t *)arg;
    free(arg);
    t.fn(t.arg);
}

static int glue_post(void *ud, void *exec, void (*fn)(void *arg), void *arg)
{
    (void)ud;
    task_t *t = malloc(sizeof *t);
    if (!t)
        return -ENOMEM;
    t->fn = fn;
    t->arg = arg;
    int r = ms_worker_post(exec, glue_task, t);
    if (r < 0)
        free(t);
    return r;
}

/* The publish key check: ?key= of the publish name (or of the app/tcUrl)
 * against the stream's publish_key, in constant time. */
static int key_ok(const ms_stream_cfg_t *cfg, const char *query)
{
    if (!cfg->publish_key[0])
        return 1;
    char key[sizeof cfg->publish_key];
    if (!query || ms_url_query_get(query, strlen(query), "key", key, sizeof key) < 0)
        return 0;
    size_t a = strlen(key), b = strlen(cfg->publish_key);
    return a == b && CRYPTO_memcmp(key, cfg->publish_key, a) == 0;
}

static int glue_publish_begin(void *ud, void *ref, const char *query, int grant,
                              const struct sockaddr *peer, void (*kick)(void *arg), void *arg)
{
    (void)ud;
    ms_stream_t *s = ref;
    ms_stream_cfg_t cfg;
    if (ms_stream_get_cfg(s, &cfg) < 0)
        return -ENOENT;
    int pub = ms_stream_cfg_is_publish(&cfg), ok = key_ok(&cfg, query);
    char name[MS_NAME_MAX];
    snprintf(name, sizeof name, "%s", cfg.name);
    ms_stream_cfg_free(&cfg);
    if (!pub)
        return -ENOENT;
    if (!ok)
        return -EACCES;
    char ip[MS_IP_STRLEN] = "?";
    ms_ip_t a;
    if (ms_ip_from_sockaddr(peer, &a) == 0)
        ms_ip_format(&a, ip, sizeof ip);
    /* the Lua on_publish hook after the publish key (docs/lua.md): once
     * per publishing session */
    char tok[1024] = "", why[256];
    if (query && query[0] && ms_url_query_get(query, strlen(query), "token", tok, sizeof tok) < 0)
        tok[0] = '\0';
    ms_lua_req_t lq = {.stream = name,
                       .app = "",
                       .protocol = "rtmp",
                       .ip = ip,
                       .query = query ? query : "",
                       .token = tok,
                       .mode = "live"};
    if (ms_lua_on_publish(&lq, why, sizeof why) < 0) {
        MS_INFO("[rtmp-server]", "publish of %s from %s refused by Lua: %s", name, ip, why);
        return -EACCES;
    }
    /* grant: the on_publish hook's DVR override + 1 (0: none) */
    return ms_stream_publisher_attach(s, kick, arg, ip, grant > 0 ? grant - 1 : -1);
}

static void glue_publish_end(void *ud, void *ref, void *arg)
{
    (void)ud;
    ms_stream_publisher_detach(ref, arg);
}

/* The HTTP on_publish hook (node/hooks.h): the blocking call runs in
 * libuv's thread pool, its answer on the accept thread. */
typedef struct {
    uv_work_t req;
    char url[sizeof g_cfg->hook_on_publish];
    int timeout_ms;
    char app[128], name[128], query[512], token[512], ip[MS_IP_STRLEN];
    int result;
    void (*done)(void *arg, int result);
    void *arg;
} pubhook_t;

static void pubhook_work(uv_work_t *req)
{
    pubhook_t *h = req->data;
    ms_hook_req_t q = {.action = "publish",
                       .stream = h->name,
                       .app = h->app,
                       .ip = h->ip,
                       .protocol = "rtmp",
                       .query = h->query,
                       .token = h->token};
    char why[160] = "";
    ms_hook_answer_t ans;
    h->result = ms_hook_call(h->url, &q, h->timeout_ms, &ans, why, sizeof why);
    if (h->result == 0)
        h->result = ans.dvr + 1; /* the grant glue_publish_begin gets */
    else
        MS_INFO("[rtmp-server]", "publish of %s from %s refused by the on_publish hook: %s",
                h->name, h->ip, why);
}

static void pubhook_after(uv_work_t *req, int status)
{
    pubhook_t *h = req->data;
    h->done(h->arg, status < 0 ? -EACCES : h->result);
    free(h);
}

static int glue_authorize_publish(void *ud, uv_loop_t *loop, const char *app, const char *name,
                                  const char *query, const struct sockaddr *peer,
                                  void (*done)(void *arg, int result), void *arg)
{
    (void)ud;
    pubhook_t *h = calloc(1, sizeof *h);
    if (!h)
        return -ENOMEM;
    snprintf(h->url, sizeof h->url, "%s", g_cfg->hook_on_publish);
    h->timeout_ms = g_cfg->hook_timeout_ms;
    snprintf(h->app, sizeof h->app, "%s", app ? app : "");
    snprintf(h->name, sizeof h->name, "%s", name ? name : "");
    snprintf(h->query, sizeof h->query, "%s", query ? query : "");
    if (query && query[0] &&
        ms_url_query_get(query, strlen(query), "token", h->token, sizeof h->token) < 0)
        h->token[0] = '\0';
    snprintf(h->ip, sizeof h->ip, "?");
    ms_ip_t a;
    if (ms_ip_from_sockaddr(peer, &a) == 0)
        ms_ip_format(&a, h->ip, sizeof h->ip);
    h->done = done;
    h->arg = arg;
    h->req.data = h;
    int r = uv_queue_work(loop, &h->req, pubhook_work, pubhook_after);
    if (r < 0) {
        free(h);
        return r;
    }
    return 0;
}

static const ms_rtsp_glue_sessions_t *g_sess; /* borrowed, static */

void ms_rtmp_glue_set_sessions(const ms_rtsp_glue_sessions_t *hooks)
{
    g_sess = hooks;
}

/* Any thread (the session table's kick): posted to the stream's loop. */
static void glue_kick(void *exec, uint64_t conn_id)
{
    ms_rtmp_server_t *srv = g_srv;
    if (srv)
        ms_rtmp_server_kick(srv, exec, conn_id);
}

static void *glue_session_open(void *ud, void *ref, const struct sockaddr *peer, const char *ua,
                               uint64_t conn_id)
{
    (void)ud;
    if (!g_sess || !g_sess->open)
        return NULL;
    return g_sess->open(ref, "rtmp", peer, ua, glue_kick, ms_stream_worker(ref), conn_id);
}

static void glue_session_bytes(void *ud, void *sess, uint64_t bytes)
{
    (void)ud;
    if (g_sess && g_sess->bytes)
        g_sess->bytes(sess, bytes);
}

static void glue_session_close(void *ud, void *sess)
{
    (void)ud;
    if (g_sess && g_sess->close)
        g_sess->close(sess);
}

static int glue_exempt(void *ud, const struct sockaddr *peer)
{
    (void)ud;
    ms_ip_t ip;
    return g_cfg && ms_ip_from_sockaddr(peer, &ip) == 0 &&
           ms_cidr_list_match(g_cfg->trusted_proxies, g_cfg->ntrusted_proxies, &ip);
}

int ms_rtmp_glue_start(const ms_node_cfg_t *cfg, ms_rtmp_authorize_play_fn authorize, void *auth_ud,
                       char *err, size_t errlen)
{
    if (g_srv)
        return -EALREADY;
    if (cfg->port_rtmp <= 0)
        return 0;
    char ctx[MS_NAME_MAX + 32];
    snprintf(ctx, sizeof ctx, "[node %s] [rtmp-server]", cfg->name);
    g_cfg = cfg;
    ms_rtmp_server_cfg_t sc = {
        .address = cfg->listen_address,
        .port = cfg->port_rtmp,
        .log_ctx = ctx,
        .handshake_timeout_ms = (uint32_t)cfg->request_timeout_s * 1000u,
        .conns_per_ip = (uint32_t)cfg->conns_per_ip,
        .exempt = glue_exempt,
        .lookup = glue_lookup,
        .release = glue_release,
        .running = glue_running,
        .post = glue_post,
        .publish_begin = glue_publish_begin,
        .publish_end = glue_publish_end,
        .authorize_publish = cfg->hook_on_publish[0] ? glue_authorize_publish : NULL,
        .authorize_play = authorize,
        .session_open = glue_session_open,
        .session_bytes = glue_session_bytes,
        .session_close = glue_session_close,
        .ud = auth_ud,
    };
    g_srv = ms_rtmp_server_start(&sc, err, errlen);
    return g_srv ? 0 : -EADDRINUSE;
}

void ms_rtmp_glue_stop(void)
{
    ms_rtmp_server_t *s = g_srv;
    g_srv = NULL;
    ms_rtmp_server_stop(s);
}
