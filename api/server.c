/* HTTP server glue: MHD daemons (HTTP and HTTPS), per-request contexts,
 * routing, LL-HLS suspend/resume, the HLS client table and its sweeper.
 *
 * MHD runs its own thread pool with epoll (docs/architecture.md "Process and threads"). The raw
 * request target is taken from the URI log callback so that decoding and
 * path checks are ours (util/urlquery.c), never MHD's lenient unescaping. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "api/access.h"
#include "api/api.h"
#include "api/http.h"
#include "api/live_mp4.h"
#include "api/status_remote.h"
#include "node/auth_guard.h"
#include "util/clock.h"
#include "util/connlimit.h"
#include "util/ipaddr.h"
#include "util/log.h"

#define POOL_THREADS   4
#define CONN_LIMIT     4000
#define CONN_TIMEOUT_S 30               /* inactivity while a response is sent */
#define MAX_COUNTED    (2 * CONN_LIMIT) /* addresses in the per-address table */
#define MAX_WAITS      16

typedef struct waiter {
    struct waiter *prev, *next;
    struct MHD_Connection *conn;
    atomic_int refs;
    int suspended; /* guarded by g_wait_mu */
} waiter_t;

static const ms_node_cfg_t *g_cfg;
static struct MHD_Daemon *g_daemons[2];
static int64_t g_start_us;
static pthread_mutex_t g_wait_mu = PTHREAD_MUTEX_INITIALIZER;
static waiter_t g_waiters = {&g_waiters, &g_waiters, NULL, 0, 0};
static int g_stopping; /* guarded by g_wait_mu */
static ms_clients_t *g_clients;
static pthread_t g_sweeper;
static int g_sweeper_running;
static pthread_mutex_t g_sweep_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_sweep_cv = PTHREAD_COND_INITIALIZER;
static int g_sweep_stop;
static char *g_tls_cert, *g_tls_key;
static ms_connlimit_t *g_conns; /* open connections per client address */
static ms_ratelimit_t g_rl_conn = MS_RATELIMIT_INIT(1000);

const ms_node_cfg_t *ms_api_cfg(void)
{
    return g_cfg;
}

int64_t ms_api_uptime_s(void)
{
    return (ms_mono_us() - g_start_us) / 1000000;
}

/* ---- LL-HLS blocking requests ------------------------------------------ */

static void waiter_unref(waiter_t *w)
{
    if (atomic_fetch_sub(&w->refs, 1) == 1)
        free(w);
}

/* Caller holds g_wait_mu. */
static void waiter_resume_locked(waiter_t *w)
{
    if (!w->suspended)
        return;
    w->suspended = 0;
    w->prev->next = w->next;
    w->next->prev = w->prev;
    w->prev = w->next = w;
    MHD_resume_connection(w->conn);
}

/* Runs on the stream's worker loop (ms_hls_wait). */
static void wait_cb(void *ud)
{
    waiter_t *w = ud;
    pthread_mutex_lock(&g_wait_mu);
    waiter_resume_locked(w);
    pthread_mutex_unlock(&g_wait_mu);
    waiter_unref(w);
}

int ms_api_suspend(ms_req_t *r, ms_hls_t *h, int64_t msn, int part)
{
    if (++r->waits > MAX_WAITS)
        return -ELOOP;
    waiter_t *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    w->conn = r->conn;
    atomic_init(&w->refs, 2); /* ours + the wait callback's */
    pthread_mutex_lock(&g_wait_mu);
    if (g_stopping) {
        pthread_mutex_unlock(&g_wait_mu);
        free(w);
        return -ESHUTDOWN;
    }
    /* Suspend before registering: the callback may fire at once on the loop
     * thread and must find a suspended connection (MHD_resume_connection on
     * a connection that is not suspended is undefined). */
    MHD_suspend_connection(r->conn);
    w->suspended = 1;
    w->next = &g_waiters;
    w->prev = g_waiters.prev;
    g_waiters.prev->next = w;
    g_waiters.prev = w;
    pthread_mutex_unlock(&g_wait_mu);

    int rc = ms_hls_wait(h, msn, part, wait_cb, w);
    if (rc != 0) {
        /* Not registered (already available, or stopped): resume now; the
         * handler runs again and retries. */
        pthread_mutex_lock(&g_wait_mu);
        waiter_resume_locked(w);
        pthread_mutex_unlock(&g_wait_mu);
        waiter_unref(w);
    }
    waiter_unref(w);
    return 0;
}

/* ---- HLS clients --------------------------------------------------------- */

static void client_expired(void *owner)
{
    ms_stream_t *s = owner;
    ms_hub_t *hub = ms_stream_hub(s);
    if (hub)
        ms_hub_clients_add(hub, -1);
    ms_stream_unref(s);
}

static int admin_client(ms_req_t *r, ms_ip_t *ip);

/* The client of r as text (ip_out) and its group (an IPv6 /64). */
static int client_of(ms_req_t *r, char *ip_out, char *group)
{
    ms_ip_t ip;
    if (admin_client(r, &ip) < 0)
        return -EAFNOSUPPORT;
    ms_ip_format(&ip, ip_out, MS_IP_STRLEN);
    if (!ms_ip_is_v4(&ip))
        memset(ip.a + 8, 0, 8); /* IPv6: one subscriber holds a /64 */
    ms_ip_format(&ip, group, MS_IP_STRLEN);
    return 0;
}

static void uid_of(ms_stream_t *s, char *uid, size_t cap)
{
    ms_stream_cfg_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    uid[0] = '\0';
    if (ms_stream_get_cfg(s, &cfg) == 0) {
        snprintf(uid, cap, "%s", cfg.uid);
        ms_stream_cfg_free(&cfg);
    }
}

void ms_api_client_seen(ms_req_t *r, ms_stream_t *s, const char *protocol, uint64_t bytes)
{
    if (!g_clients || (r->method && strcmp(r->method, "HEAD") == 0))
        return;
    char ip[MS_IP_STRLEN], group[MS_IP_STRLEN], uid[64];
    if (client_of(r, ip, group) < 0)
        return;
    uid_of(s, uid, sizeof uid);
    char key[160];
    snprintf(key, sizeof(key), "%s\n%s", uid, group);
    ms_session_meta_t meta = {uid,
                              protocol,
                              ip,
                              MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "User-Agent"),
                              ms_wall_us() / 1000000,
                              bytes};
    ms_stream_t *ref = ms_stream_ref(s);
    int rc = ms_clients_touch_meta(g_clients, key, group, ref, ms_mono_ms(), &meta);
    if (rc == 1) {
        ms_hub_t *hub = ms_stream_hub(s);
        if (hub)
            ms_hub_clients_add(hub, 1);
    } else {
        ms_stream_unref(ref);
    }
}

int ms_api_client_refused(ms_req_t *r, ms_stream_t *s)
{
    char ip[MS_IP_STRLEN], group[MS_IP_STRLEN], uid[64];
    if (!g_clients || client_of(r, ip, group) < 0)
        return 0;
    uid_of(s, uid, sizeof uid);
    char key[160];
    snprintf(key, sizeof(key), "%s\n%s", uid, group);
    return ms_clients_refused(g_clients, key, ms_mono_ms());
}

/* Connection sessions may end after ms_http_stop freed the table (RTSP
 * connections close later): the table pointer is read under this lock and
 * the calls on a freed table are no-ops (its entries went with it). */
static pthread_rwlock_t g_sess_lock = PTHREAD_RWLOCK_INITIALIZER;

static ms_session_t *session_open(ms_stream_t *s, const char *protocol, const char *ip,
                                  const char *group, const char *ua,
                                  void (*kick)(void *ctx, uint64_t arg), void *ctx, uint64_t arg)
{
    char uid[64];
    uid_of(s, uid, sizeof uid);
    ms_session_meta_t meta = {uid, protocol, ip, ua, ms_wall_us() / 1000000, 0};
    pthread_rwlock_rdlock(&g_sess_lock);
    ms_session_t *ss =
        g_clients ? ms_clients_open(g_clients, group, &meta, kick, ctx, arg, ms_mono_ms()) : NULL;
    pthread_rwlock_unlock(&g_sess_lock);
    return ss;
}

ms_session_t *ms_api_session_open(ms_req_t *r, ms_stream_t *s, const char *protocol,
                                  void (*kick)(void *ctx, uint64_t arg), void *ctx)
{
    char ip[MS_IP_STRLEN], group[MS_IP_STRLEN];
    if (client_of(r, ip, group) < 0)
        return NULL;
    return session_open(s, protocol, ip, group,
                        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "User-Agent"), kick,
                        ctx, 0);
}

ms_session_t *ms_api_session_open_peer(ms_stream_t *s, const char *protocol,
                                       const struct sockaddr *peer, const char *ua,
                                       void (*kick)(void *ctx, uint64_t arg), void *ctx,
                                       uint64_t arg)
{
    ms_ip_t ip;
    if (ms_ip_from_sockaddr(peer, &ip) < 0)
        return NULL;
    char text[MS_IP_STRLEN], group[MS_IP_STRLEN];
    ms_ip_format(&ip, text, sizeof text);
    if (!ms_ip_is_v4(&ip))
        memset(ip.a + 8, 0, 8);
    ms_ip_format(&ip, group, sizeof group);
    return session_open(s, protocol, text, group, ua, kick, ctx, arg);
}

void ms_api_session_bytes(ms_session_t *ss, uint64_t bytes)
{
    pthread_rwlock_rdlock(&g_sess_lock);
    if (g_clients)
        ms_clients_bytes(g_clients, ss, bytes);
    pthread_rwlock_unlock(&g_sess_lock);
}

void ms_api_session_close(ms_session_t *ss)
{
    pthread_rwlock_rdlock(&g_sess_lock);
    if (g_clients)
        ms_clients_close(g_clients, ss);
    pthread_rwlock_unlock(&g_sess_lock);
}

/* The node/rtsp_glue.h hooks (api/http.h). */
static void *rtsp_open(ms_stream_t *s, const char *protocol, const struct sockaddr *peer,
                       const char *ua, void (*kick)(void *ctx, uint64_t arg), void *ctx,
                       uint64_t arg)
{
    return ms_api_session_open_peer(s, protocol, peer, ua, kick, ctx, arg);
}

static void rtsp_bytes(void *ss, uint64_t bytes)
{
    ms_api_session_bytes(ss, bytes);
}

static void rtsp_close(void *ss)
{
    ms_api_session_close(ss);
}

const ms_rtsp_glue_sessions_t *ms_http_rtsp_sessions(void)
{
    static const ms_rtsp_glue_sessions_t hooks = {rtsp_open, rtsp_bytes, rtsp_close};
    return &hooks;
}

int ms_api_sessions_list(const char *uid, ms_session_info_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    return g_clients ? ms_clients_list(g_clients, uid, out, n) : 0;
}

int ms_api_sessions_end(const char *uid, const char *id)
{
    return g_clients ? ms_clients_end(g_clients, uid, id, ms_mono_ms(), MS_SESSION_BAN_MS)
                     : -ENOENT;
}

static void sweep_half_closed(void);

static void *sweeper_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&g_sweep_mu);
    while (!g_sweep_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&g_sweep_cv, &g_sweep_mu, &ts);
        if (g_sweep_stop)
            break;
        pthread_mutex_unlock(&g_sweep_mu);
        ms_clients_sweep(g_clients, ms_mono_ms(), MS_HLS_CLIENT_TTL_MS);
        sweep_half_closed();
        /* CPU samples are taken on demand (ms_sys_get) */
        pthread_mutex_lock(&g_sweep_mu);
    }
    pthread_mutex_unlock(&g_sweep_mu);
    return NULL;
}

/* ---- connections per address ------------------------------------------- */

/* Trusted proxies carry many clients: never limited. */
static int conn_exempt(const ms_ip_t *ip)
{
    return ms_cidr_list_match(g_cfg->trusted_proxies, g_cfg->ntrusted_proxies, ip);
}

/* MHD accept policy (any MHD thread): refuses a connection from an address
 * that already has listen.conns_per_ip open. MHD closes the socket. */
static enum MHD_Result accept_policy_cb(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
    (void)cls;
    (void)addrlen;
    ms_ip_t ip;
    if (!g_conns || ms_ip_from_sockaddr(addr, &ip) < 0 || conn_exempt(&ip) ||
        ms_connlimit_room(g_conns, &ip))
        return MHD_YES;
    uint32_t supp = 0;
    if (ms_ratelimit_ok_mt(&g_rl_conn, &supp)) {
        char a[MS_IP_STRLEN];
        MS_WARN(MS_API_CTX,
                "refused a connection from %s: %d connections open from that address "
                "(listen.conns_per_ip; %u more refusals suppressed)",
                ms_ip_format(&ip, a, sizeof a), g_cfg->conns_per_ip, supp);
    }
    return MHD_NO;
}

/* Every open connection, for the per-address count and the half-close
 * sweep (socket_context of the MHD connection). */
typedef struct conn_track {
    struct conn_track *prev, *next; /* g_track, under g_track_mu */
    ms_ip_t ip;
    int counted; /* ip is counted in g_conns */
    int fd;
    atomic_int busy;      /* a request's headers are in, its response not done */
    atomic_uint requests; /* requests whose headers came in */
    unsigned eof_at;      /* requests when EOF was first seen + 1, 0 = none */
} conn_track_t;

static pthread_mutex_t g_track_mu = PTHREAD_MUTEX_INITIALIZER;
static conn_track_t g_track = {&g_track, &g_track, {{0}}, 0, -1, 0, 0, 0};

/* MHD connection start/end (the connection's thread): counts the
 * connection for its address and tracks it for the half-close sweep.
 * Counted here rather than in the accept policy, which has no matching
 * "closed" call when MHD drops a connection after accepting it; racing
 * accepts may overshoot the limit by the number of pool threads. MHD
 * closes the socket after the "closed" notification. */
static void notify_conn_cb(void *cls, struct MHD_Connection *conn, void **socket_context,
                           enum MHD_ConnectionNotificationCode code)
{
    (void)cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        conn_track_t *t = calloc(1, sizeof *t);
        if (!t)
            return;
        t->fd = -1;
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (g_conns && ci && ms_ip_from_sockaddr(ci->client_addr, &t->ip) == 0 &&
            !conn_exempt(&t->ip))
            t->counted = ms_connlimit_acquire_force(g_conns, &t->ip) == 0;
        ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (ci)
            t->fd = ci->connect_fd;
        pthread_mutex_lock(&g_track_mu);
        t->next = &g_track;
        t->prev = g_track.prev;
        g_track.prev->next = t;
        g_track.prev = t;
        pthread_mutex_unlock(&g_track_mu);
        *socket_context = t;
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context) {
        conn_track_t *t = *socket_context;
        pthread_mutex_lock(&g_track_mu);
        t->prev->next = t->next;
        t->next->prev = t->prev;
        pthread_mutex_unlock(&g_track_mu);
        if (t->counted)
            ms_connlimit_release(g_conns, &t->ip);
        free(t);
        *socket_context = NULL;
    }
}

static conn_track_t *conn_track(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* Sweeper thread, once a second: a connection between requests (or in the
 * middle of a request head) whose peer has closed its side (a FIN with
 * nothing left to read) will never send a request; libmicrohttpd may not
 * notice until the inactivity timeout (edge-triggered epoll: the FIN came
 * with the last bytes it read), leaving the socket in CLOSE-WAIT. Shut it
 * down so that MHD closes it. EOF must be seen on two sweeps in a row with
 * no request in between, so a request that arrived with its FIN (a client
 * that half-closes after sending, RFC 9112 section 9.6) is never cut. */
static void sweep_half_closed(void)
{
    pthread_mutex_lock(&g_track_mu);
    for (conn_track_t *t = g_track.next; t != &g_track; t = t->next) {
        unsigned reqs = atomic_load(&t->requests);
        char c;
        if (t->fd < 0 || atomic_load(&t->busy) ||
            recv(t->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) != 0) {
            t->eof_at = 0;
            continue;
        }
        if (t->eof_at == reqs + 1)
            shutdown(t->fd, SHUT_RDWR); /* MHD sees the hang-up and closes */
        else
            t->eof_at = reqs + 1;
    }
    pthread_mutex_unlock(&g_track_mu);
}

/* ---- requests ------------------------------------------------------------ */

int ms_api_query(ms_req_t *r, const char *key, char *out, size_t cap)
{
    return ms_url_query_get(r->parts.query, r->parts.query_len, key, out, cap);
}

static void *uri_log_cb(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)cls;
    (void)conn;
    ms_req_t *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->start_us = ms_mono_us();
    size_t len = uri ? strlen(uri) : 0;
    if (len > MS_URL_MAX) {
        r->bad_target = 414;
        len = 0;
    }
    if (len)
        memcpy(r->raw, uri, len);
    r->raw[len] = '\0';
    r->raw_len = len;
    return r;
}

static void completed_cb(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    ms_req_t *r = *con_cls;
    /* Idle keep-alive until the next request: the daemon's default
     * (listen.request_timeout_s) again. Only on a completed request: the
     * connection stays in MHD's timeout lists then (not when closing). */
    if (conn && g_cfg && toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
        MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT,
                                  (unsigned)g_cfg->request_timeout_s);
    if (!r)
        return;
    *con_cls = NULL;
    conn_track_t *t = r->busy && conn ? conn_track(conn) : NULL;
    if (t)
        atomic_store(&t->busy, 0);
    r->bytes += r->sent; /* streamed bodies (live.mp4) */
    if (r->status)
        ms_api_count_status(r->status);
    if (ms_log_get_level() <= MS_LOG_DEBUG)
        MS_DEBUG(MS_API_CTX, "%s %s %s -> %u %llu bytes %lld us%s", r->peer,
                 r->method ? r->method : "-", r->raw, r->status, (unsigned long long)r->bytes,
                 (long long)(ms_mono_us() - r->start_us),
                 toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (aborted)");
    free(r->body);
    free(r);
}

static void fill_peer(ms_req_t *r)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    snprintf(r->peer, sizeof(r->peer), "?");
    if (!sa)
        return;
    if (sa->sa_family == AF_INET)
        memcpy(&r->peer_sa, sa, sizeof(struct sockaddr_in));
    else if (sa->sa_family == AF_INET6)
        memcpy(&r->peer_sa, sa, sizeof(struct sockaddr_in6));
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, r->peer,
                  sizeof(r->peer));
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, r->peer,
                  sizeof(r->peer));
    r->peer_loopback = ms_auth_is_loopback(sa);
}

/* The client address the admin back-off counts: the TCP peer, or the
 * forwarded client when the peer is a trusted proxy (else every client
 * behind the proxy would share one counter). 0 or a negative errno. */
static int admin_client(ms_req_t *r, ms_ip_t *ip)
{
    if (r->peer_sa.ss_family == 0)
        return -EAFNOSUPPORT;
    const char *xff = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-Forwarded-For");
    const char *fwd = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Forwarded");
    return ms_access_client_addr((const struct sockaddr *)&r->peer_sa, xff, fwd,
                                 g_cfg->trusted_proxies, g_cfg->ntrusted_proxies, ip);
}

static const char *auth_scheme(const char *authz)
{
    return strncasecmp(authz, "Basic ", 6) == 0    ? "Basic"
           : strncasecmp(authz, "Bearer ", 7) == 0 ? "Bearer"
                                                   : "other scheme";
}

/* Admin authentication with the per-address back-off (node/auth_guard.h):
 * a blocked address gets 429 with Retry-After (RFC 6585 section 4) before
 * its credentials are looked at; failures are counted and logged. */
enum MHD_Result ms_api_check_admin(ms_req_t *r, int *allowed)
{
    const char *authz = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Authorization");
    *allowed = 0;
    ms_ip_t ip;
    int have_ip = authz && admin_client(r, &ip) == 0;
    int64_t left = have_ip ? ms_auth_guard_check(&ip, "http") : 0;
    if (left > 0) {
        char secs[24];
        snprintf(secs, sizeof secs, "%lld", (long long)((left + 999) / 1000));
        const char *const hdrs[] = {"Retry-After", secs, NULL};
        return ms_api_reply_error(
            r, 429, "too many failed authentication attempts from this address", NULL, hdrs);
    }
    int rc = ms_auth_check(g_cfg, authz, r->peer_loopback);
    *allowed = rc == 0;
    if (have_ip && rc == 0)
        ms_auth_guard_ok(&ip);
    else if (have_ip && rc == -EACCES) /* an expired login token is not a guess */
        ms_auth_guard_failed(&ip, "http", auth_scheme(authz));
    if (rc == 0)
        return MHD_YES;
    if (rc == -EPERM)
        return ms_api_reply_error(
            r, 403, "no admin credentials are configured: the API answers loopback clients only",
            NULL, NULL);
    /* A Bearer client gets a Bearer challenge (RFC 6750 section 3), which
     * browsers do not turn into a password prompt. */
    static const char *const basic[] = {"WWW-Authenticate", "Basic realm=\"mediaserver\"", NULL};
    static const char *const bearer[] = {
        "WWW-Authenticate", "Bearer realm=\"mediaserver\", error=\"invalid_token\"", NULL};
    int is_bearer = authz && strcmp(auth_scheme(authz), "Bearer") == 0;
    return ms_api_reply_error(r, 401,
                              rc == -EKEYEXPIRED ? "login token expired: log in again"
                              : authz            ? "invalid credentials"
                                                 : "authentication required",
                              NULL, is_bearer ? bearer : basic);
}

static enum MHD_Result route(ms_req_t *r)
{
    int n;
    if (r->bad_target == 414)
        return ms_api_reply_error(r, 414, "request target too long", NULL, NULL);
    if ((n = ms_url_split(r->raw, r->raw_len, &r->parts)) < 0)
        return ms_api_reply_error(r, n == -E2BIG ? 414 : 400, "bad request target", NULL, NULL);
    if (ms_url_query_validate(r->parts.query, r->parts.query_len) < 0)
        return ms_api_reply_error(r, 400, "bad percent-encoding in the query", NULL, NULL);
    n = ms_url_path_split(r->parts.path, r->parts.path_len, r->segbuf, sizeof(r->segbuf), r->segs,
                          MS_URL_MAX_SEGS);
    if (n == -E2BIG)
        return ms_api_reply_error(r, 404, "not found", NULL, NULL);
    if (n < 0)
        return ms_api_reply_error(r, 400, "bad path", NULL, NULL);
    r->nsegs = n;
    ms_route_match(r->method, r->segs, r->nsegs, &r->route);
    /* another node reads the status of the streams this node runs
     * (api/status_remote.h): signed, no barrier */
    if (r->route.id == MS_ROUTE_API_STREAMS && strcmp(r->method, "GET") == 0 &&
        ms_status_remote_internal(r))
        return ms_api_streams_local(r);
    enum MHD_Result cret; /* calls on the replicated state (cluster_api.c) */
    if (ms_api_cluster_route(r, &cret) || ms_api_redirect_route(r, &cret))
        return cret;

    int is_api = r->route.id == MS_ROUTE_API_STREAMS || r->route.id == MS_ROUTE_API_STREAM ||
                 r->route.id == MS_ROUTE_API_SYSTEM || r->route.id == MS_ROUTE_API_PLANNED ||
                 r->route.id == MS_ROUTE_API_TOKENS || r->route.id == MS_ROUTE_API_SHARE ||
                 r->route.id == MS_ROUTE_API_RANGES || r->route.id == MS_ROUTE_API_EVENTS ||
                 r->route.id == MS_ROUTE_API_SESSIONS || r->route.id == MS_ROUTE_API_UNKNOWN;
    if (is_api || (r->route.id == MS_ROUTE_METRICS && g_cfg->metrics_auth)) {
        int ok = 0;
        enum MHD_Result ret = ms_api_check_admin(r, &ok);
        if (!ok)
            return ret;
    }
    /* /api/v1/lua/... (docs/lua.md): admin-checked above as an API call */
    if (r->route.id == MS_ROUTE_API_UNKNOWN && r->nsegs >= 3 && strcmp(r->segs[2], "lua") == 0)
        return ms_api_lua(r);
    if (r->route.id == MS_ROUTE_NONE || r->route.id == MS_ROUTE_API_UNKNOWN)
        return ms_api_reply_error(r, 404, "not found", NULL, NULL);
    if (!r->route.method_ok) {
        const char *hdrs[] = {"Allow", r->route.allow, NULL};
        return ms_api_reply_error(r, 405, "method not allowed", NULL, hdrs);
    }
    switch (r->route.id) {
    case MS_ROUTE_ROOT:
        return ms_api_root(r);
    case MS_ROUTE_CPANEL:
        return ms_api_cpanel(r);
    case MS_ROUTE_METRICS:
        return ms_api_metrics(r);
    case MS_ROUTE_HLS_PLAYLIST:
        return ms_api_hls_playlist(r);
    case MS_ROUTE_HLS_MEDIA:
        return ms_api_hls_media(r);
    case MS_ROUTE_LIVE_MP4:
        return ms_api_live_mp4(r);
    case MS_ROUTE_LIVE_FLV:
        return ms_api_live_flv(r);
    case MS_ROUTE_SNAPSHOT:
        return ms_api_archive_wants_jpeg(r) ? ms_api_archive_jpeg(r) : ms_api_snapshot(r);
    case MS_ROUTE_ARCHIVE:
        return ms_api_archive(r);
    case MS_ROUTE_API_RANGES:
        return ms_api_stream_ranges(r);
    case MS_ROUTE_API_EVENTS:
        return ms_api_stream_events(r);
    case MS_ROUTE_PREVIEW_MP4:
        return ms_api_preview_mp4(r);
    case MS_ROUTE_API_TOKENS:
        return ms_api_stream_tokens(r);
    case MS_ROUTE_API_SHARE:
        return ms_api_stream_share(r);
    case MS_ROUTE_API_SESSIONS:
        return ms_api_stream_sessions(r);
    case MS_ROUTE_API_STREAMS:
        return ms_api_streams_list(r);
    case MS_ROUTE_API_STREAM:
        return ms_api_stream_get(r);
    case MS_ROUTE_API_SYSTEM:
        return ms_api_system(r);
    case MS_ROUTE_API_LOGIN: { /* no admin check: the credentials are in the body */
        ms_ip_t ip;
        return ms_api_login(r, admin_client(r, &ip) == 0 ? &ip : NULL);
    }
    case MS_ROUTE_API_PLANNED:
        /* Writes and cluster calls go through the replicated state, which a
         * node started with listen.raft = 0 does not have. */
        return ms_api_reply_error(r, 501,
                                  "this node runs without the cluster state (listen.raft is 0): "
                                  "stream management and cluster calls are unavailable; define "
                                  "streams in streams_dir or enable listen.raft",
                                  NULL, NULL);
    default:
        return ms_api_reply_error(r, 404, "not found", NULL, NULL);
    }
}

/* ---- message framing (RFC 9112 sections 6.1 and 6.3) ------------------- */

typedef struct {
    int ncl, nte, bad;
    char cl[24]; /* the first Content-Length value */
} framing_t;

static enum MHD_Result framing_iter(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    (void)kind;
    framing_t *f = cls;
    if (!key)
        return MHD_YES;
    /* A field name with whitespace (e.g. "Transfer-Encoding :") is invalid
     * (RFC 9112 section 5.1) and the kind a proxy may read differently. */
    if (strpbrk(key, " \t")) {
        f->bad = 1;
        return MHD_YES;
    }
    const char *v = value ? value : "";
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
        size_t n = strlen(v);
        if (n == 0 || n >= sizeof f->cl || strspn(v, "0123456789") != n)
            f->bad = 1; /* also "5, 5": a list is not one length */
        else if (f->ncl && strcmp(f->cl, v) != 0)
            f->bad = 1; /* two different lengths */
        else
            memcpy(f->cl, v, n + 1);
        f->ncl++;
    } else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
        /* We accept no coding but chunked (section 6.1), once. */
        if (strcasecmp(v, "chunked") != 0 || f->nte)
            f->bad = 1;
        f->nte++;
    }
    return MHD_YES;
}

/* 0 when the request's framing is unambiguous: at most one Content-Length
 * value (repeats of the same value allowed), a Transfer-Encoding only as a
 * single "chunked" and never together with Content-Length. Else -EINVAL:
 * a proxy in front may have framed the message differently (request
 * smuggling), so the connection must be closed after the 400. */
static int check_framing(struct MHD_Connection *conn)
{
    framing_t f;
    memset(&f, 0, sizeof f);
    MHD_get_connection_values(conn, MHD_HEADER_KIND, framing_iter, &f);
    return f.bad || (f.ncl && f.nte) ? -EINVAL : 0;
}

static enum MHD_Result access_cb(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
    (void)cls;
    (void)url;
    (void)version;
    ms_req_t *r = *con_cls;
    if (!r)
        return MHD_NO; /* allocation failed in uri_log_cb: drop the connection */
    if (r->status) {
        /* A response is queued; discard any request body. */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (!r->conn) {
        /* First call: headers parsed, body not read yet. A response queued
         * here makes MHD discard the rest of the request and close the
         * connection, so only a body announced too large is refused now;
         * everything else is routed once the whole body has been read (the
         * last call has *upload_data_size == 0), which keeps keep-alive. */
        r->conn = conn;
        r->method = method;
        conn_track_t *t = conn_track(conn);
        if (t) {
            atomic_fetch_add(&t->requests, 1);
            atomic_store(&t->busy, 1);
            r->busy = 1;
        }
        fill_peer(r);
        if (check_framing(conn) < 0) {
            static const char *const hdrs[] = {"Connection", "close", NULL};
            return ms_api_reply_error(
                r, 400, "ambiguous message framing (Content-Length / Transfer-Encoding)", NULL,
                hdrs);
        }
        const char *cl =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        int64_t clen = 0;
        if (cl && ms_url_parse_i64(cl, 0, INT64_MAX, &clen) == 0 && clen > MS_API_BODY_MAX)
            return ms_api_reply_error(r, 413, "request body too large", NULL, NULL);
        return MHD_YES;
    }
    if (*upload_data_size) {
        /* MHD hands the body over in pieces: keep it (bounded); past the
         * bound, read and drop the rest and answer 413 at the end. */
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (r->body_too_big)
            return MHD_YES;
        if (r->body_len + n > MS_API_BODY_MAX) {
            r->body_too_big = 1;
            free(r->body);
            r->body = NULL;
            r->body_len = 0;
            return MHD_YES;
        }
        char *nb = realloc(r->body, r->body_len + n + 1);
        if (!nb)
            return MHD_NO;
        memcpy(nb + r->body_len, upload_data, n);
        r->body = nb;
        r->body_len += n;
        r->body[r->body_len] = '\0';
        return MHD_YES;
    }
    /* The request is complete: the response may take its time. */
    MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT, CONN_TIMEOUT_S);
    if (r->body_too_big)
        return ms_api_reply_error(r, 413, "request body too large", NULL, NULL);
    return route(r);
}

/* ---- start / stop -------------------------------------------------------- */

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
/* libmicrohttpd's messages (every aborted connection is one: a flood of
 * aborts would flood the log): at most one line per second, the next one
 * says how many were suppressed. */
static ms_ratelimit_t g_rl_mhd = MS_RATELIMIT_INIT(1000);

static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    uint32_t supp = 0;
    if (!ms_ratelimit_ok_mt(&g_rl_mhd, &supp))
        return;
    char line[512];
    vsnprintf(line, sizeof(line), fmt, ap);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    if (supp)
        MS_WARN(MS_API_CTX, "libmicrohttpd: %s (%u more libmicrohttpd messages suppressed)", line,
                supp);
    else
        MS_WARN(MS_API_CTX, "libmicrohttpd: %s", line);
}
#pragma GCC diagnostic pop

static char *read_file(const char *path, size_t max)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = malloc(max + 1);
    size_t n = buf ? fread(buf, 1, max, f) : 0;
    int bad = !buf || ferror(f) || (!feof(f) && n == max);
    fclose(f);
    if (bad) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

/* Loads and validates the PEM certificate and key before MHD sees them, so
 * a bad file is reported clearly instead of as a TLS library error. */
static int load_tls(const ms_node_cfg_t *cfg, char *err, size_t errlen)
{
    int rc = -EINVAL;
    BIO *bc = NULL, *bk = NULL;
    X509 *x = NULL;
    EVP_PKEY *k = NULL;
    g_tls_cert = read_file(cfg->tls_cert, 1 << 20);
    if (!g_tls_cert) {
        snprintf(err, errlen, "tls.cert: cannot read %s: %s", cfg->tls_cert, strerror(errno));
        return -EINVAL;
    }
    g_tls_key = read_file(cfg->tls_key, 1 << 20);
    if (!g_tls_key) {
        snprintf(err, errlen, "tls.key: cannot read %s: %s", cfg->tls_key, strerror(errno));
        return -EINVAL;
    }
    bc = BIO_new_mem_buf(g_tls_cert, -1);
    bk = BIO_new_mem_buf(g_tls_key, -1);
    if (!bc || !bk) {
        snprintf(err, errlen, "tls: out of memory");
        rc = -ENOMEM;
        goto out;
    }
    x = PEM_read_bio_X509(bc, NULL, NULL, NULL);
    if (!x) {
        snprintf(err, errlen, "tls.cert: %s is not a PEM certificate", cfg->tls_cert);
        goto out;
    }
    k = PEM_read_bio_PrivateKey(bk, NULL, NULL, NULL);
    if (!k) {
        snprintf(err, errlen, "tls.key: %s is not an unencrypted PEM private key", cfg->tls_key);
        goto out;
    }
    if (X509_check_private_key(x, k) != 1) {
        snprintf(err, errlen, "tls: the key %s does not match the certificate %s", cfg->tls_key,
                 cfg->tls_cert);
        goto out;
    }
    rc = 0;
out:
    ERR_clear_error();
    X509_free(x);
    EVP_PKEY_free(k);
    BIO_free(bc);
    BIO_free(bk);
    return rc;
}

static struct MHD_Daemon *start_one(const ms_node_cfg_t *cfg, int port, int tls, char *err,
                                    size_t errlen, int *rc)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG;
    const char *addr = cfg->listen_address[0] ? cfg->listen_address : "0.0.0.0";
    struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, addr, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
    } else if (inet_pton(AF_INET6, addr, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        /* "::" listens on IPv4 too (dual stack); other v6 addresses v6 only. */
        flags |= strcmp(addr, "::") == 0 ? MHD_USE_DUAL_STACK : MHD_USE_IPv6;
    } else {
        snprintf(err, errlen, "listen.address: \"%s\" is not an IP address", addr);
        *rc = -EINVAL;
        return NULL;
    }
    if (tls)
        flags |= MHD_USE_TLS;
    struct MHD_OptionItem opts[] = {
        {MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)(uintptr_t)mhd_logger, NULL},
        {MHD_OPTION_SOCK_ADDR, 0, &ss},
        {MHD_OPTION_THREAD_POOL_SIZE, POOL_THREADS, NULL},
        {MHD_OPTION_CONNECTION_LIMIT, CONN_LIMIT, NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)cfg->request_timeout_s, NULL},
        {MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)(uintptr_t)notify_conn_cb, NULL},
        {MHD_OPTION_CONNECTION_MEMORY_LIMIT, 64 * 1024, NULL},
        {MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)(uintptr_t)uri_log_cb, NULL},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)(uintptr_t)completed_cb, NULL},
        {tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, g_tls_cert},
        {tls ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, 0, g_tls_key},
        {MHD_OPTION_END, 0, NULL},
    };
    errno = 0;
    struct MHD_Daemon *d =
        MHD_start_daemon(flags, (uint16_t)port, accept_policy_cb, NULL, access_cb, NULL,
                         MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
    if (!d) {
        int e = errno ? errno : EIO;
        snprintf(err, errlen, "%s: cannot listen on [%s]:%d: %s", tls ? "https" : "http", addr,
                 port, strerror(e));
        *rc = -e;
    }
    return d;
}

int ms_http_start(const ms_node_cfg_t *cfg, char *err, size_t errlen)
{
    int rc = 0;
    if (err && errlen)
        err[0] = '\0';
    char dummy[8];
    if (!err || !errlen) {
        err = dummy;
        errlen = sizeof(dummy);
    }
    if (g_cfg) {
        snprintf(err, errlen, "http: already started");
        return -EALREADY;
    }
    g_cfg = cfg;
    g_start_us = ms_mono_us();
    pthread_mutex_lock(&g_wait_mu);
    g_stopping = 0;
    pthread_mutex_unlock(&g_wait_mu);
    ms_live_mp4_set_stopping(0);
    g_clients = ms_clients_new(client_expired, MS_CLIENTS_MAX_TOTAL, MS_CLIENTS_MAX_PER_GROUP);
    if (!g_clients) {
        snprintf(err, errlen, "http: out of memory");
        rc = -ENOMEM;
        goto err;
    }
    g_conns =
        ms_connlimit_new((uint32_t)(cfg->conns_per_ip > 0 ? cfg->conns_per_ip : 1), MAX_COUNTED);
    if (!g_conns) {
        snprintf(err, errlen, "http: out of memory");
        rc = -ENOMEM;
        goto err;
    }
    ms_sys_sample();
    if (cfg->port_http > 0) {
        g_daemons[0] = start_one(cfg, cfg->port_http, 0, err, errlen, &rc);
        if (!g_daemons[0])
            goto err;
    }
    if (cfg->port_https > 0) {
        if (!cfg->tls_cert[0] || !cfg->tls_key[0]) {
            snprintf(err, errlen, "listen.https is set but tls.cert/tls.key are not");
            rc = -EINVAL;
            goto err;
        }
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
            snprintf(err, errlen, "https: libmicrohttpd was built without TLS support");
            rc = -ENOTSUP;
            goto err;
        }
        if ((rc = load_tls(cfg, err, errlen)) < 0)
            goto err;
        g_daemons[1] = start_one(cfg, cfg->port_https, 1, err, errlen, &rc);
        if (!g_daemons[1])
            goto err;
    }
    g_sweep_stop = 0;
    if (pthread_create(&g_sweeper, NULL, sweeper_main, NULL) != 0) {
        snprintf(err, errlen, "http: cannot start the sweeper thread");
        rc = -EAGAIN;
        goto err;
    }
    g_sweeper_running = 1;
    MS_INFO(MS_API_CTX, "listening on http %s:%d%s", cfg->listen_address, cfg->port_http,
            g_daemons[1] ? " and https" : "");
    return 0;
err:
    ms_http_stop();
    return rc ? rc : -EIO;
}

void ms_http_stop(void)
{
    /* MHD must not be stopped with suspended connections: resume them all
     * (their handler sees g_stopping and answers 503). */
    pthread_mutex_lock(&g_wait_mu);
    g_stopping = 1;
    while (g_waiters.next != &g_waiters)
        waiter_resume_locked(g_waiters.next);
    pthread_mutex_unlock(&g_wait_mu);
    ms_live_mp4_set_stopping(1); /* live.mp4 and pending snapshots */
    for (int i = 0; i < 2; i++)
        if (g_daemons[i]) {
            MHD_stop_daemon(g_daemons[i]);
            g_daemons[i] = NULL;
        }
    if (g_sweeper_running) {
        pthread_mutex_lock(&g_sweep_mu);
        g_sweep_stop = 1;
        pthread_cond_signal(&g_sweep_cv);
        pthread_mutex_unlock(&g_sweep_mu);
        pthread_join(g_sweeper, NULL);
        g_sweeper_running = 0;
    }
    pthread_rwlock_wrlock(&g_sess_lock);
    ms_clients_free(g_clients);
    g_clients = NULL;
    pthread_rwlock_unlock(&g_sess_lock);
    ms_connlimit_free(g_conns);
    g_conns = NULL;
    if (g_tls_key) {
        OPENSSL_cleanse(g_tls_key, strlen(g_tls_key));
        free(g_tls_key);
    }
    free(g_tls_cert);
    g_tls_cert = g_tls_key = NULL;
    g_cfg = NULL;
}
