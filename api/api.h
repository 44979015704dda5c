/* Internals shared by the files of api/ (not used outside api/).
 *
 * A request context (ms_req_t) is created by the URI log callback of MHD
 * when the request line arrives (so it sees the raw, undecoded target), is
 * handed to the access handler on every call for that request, and is freed
 * in the request-completed callback. It belongs to the MHD thread that
 * serves the connection. */
#ifndef MS_API_API_H
#define MS_API_API_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <jansson.h>
#include <microhttpd.h>

#include "api/access.h"
#include "media/hls/hls.h"
#include "node/config.h"
#include "node/streams.h"
#include "util/blob.h"
#include "util/buf.h"
#include "util/ipaddr.h"
#include "util/urlquery.h"

#define MS_API_CTX      "[http]"
#define MS_API_BODY_MAX (64 * 1024) /* request bodies above this get 413 */

typedef struct ms_req {
    struct MHD_Connection *conn;
    const char *method;
    char raw[MS_URL_MAX + 1];
    size_t raw_len;
    int bad_target; /* 0, or the HTTP status to answer (400, 414) */
    ms_url_parts_t parts;
    char segbuf[MS_URL_MAX + 1];
    char *segs[MS_URL_MAX_SEGS];
    int nsegs;
    ms_route_t route;
    char peer[64]; /* client address as text */
    int peer_loopback;
    struct sockaddr_storage peer_sa; /* TCP peer (ss_family 0 when unknown) */
    char *body;                      /* request body (POST/PUT), NUL-terminated, or NULL */
    size_t body_len;
    int body_too_big; /* the body passed MS_API_BODY_MAX: answered 413 */
    uint64_t sent;    /* streamed body bytes (live.mp4), added to bytes at the end */
    int64_t start_us;
    unsigned status; /* status of the queued response, 0 until queued */
    uint64_t bytes;  /* body size of the queued response */
    int waits;       /* times this request was suspended */
    int busy;        /* marked busy in the connection's tracker (server.c) */
} ms_req_t;

/* The running server's config (borrowed from ms_http_start). */
const ms_node_cfg_t *ms_api_cfg(void);
/* Seconds since ms_http_start. */
int64_t ms_api_uptime_s(void);

/* --- replies (reply.c). Each queues a response on r->conn and records the
 * status and size for the log and /metrics. Return the MHD result. --- */
/* Takes the blob reference (released when MHD is done sending). */
enum MHD_Result ms_api_reply_blob(ms_req_t *r, unsigned code, const char *ctype, ms_blob_t *b,
                                  const char *const *headers);
/* Takes the blob references of b (b is left empty; released when MHD is
 * done sending); the body is the blobs one after the other, not copied. */
enum MHD_Result ms_api_reply_body(ms_req_t *r, unsigned code, const char *ctype, ms_hls_body_t *b,
                                  const char *const *headers);
/* Copies text. headers: NULL or a NULL-terminated list of name, value. */
enum MHD_Result ms_api_reply_text(ms_req_t *r, unsigned code, const char *ctype, const char *text,
                                  size_t len, const char *const *headers);
/* Steals j. */
enum MHD_Result ms_api_reply_json(ms_req_t *r, unsigned code, json_t *j,
                                  const char *const *headers);
/* {"error": msg, "field": field} (field omitted when NULL). */
enum MHD_Result ms_api_reply_error(ms_req_t *r, unsigned code, const char *msg, const char *field,
                                   const char *const *headers);
/* Counts a response with this status in ms_http_requests_total. */
void ms_api_count_status(unsigned code);
/* Fills counts[code - 100] for codes 100..599 (500 entries). */
void ms_api_status_counts(uint64_t *counts, size_t n);

/* --- admin authentication (auth.c), RFC 7617 Basic and RFC 6750 Bearer. */
/* Decodes "Basic base64(user:pass)". Returns 0 or -EINVAL. */
int ms_auth_parse_basic(const char *hdr, char *user, size_t ucap, char *pass, size_t pcap);
/* Extracts the token of "Bearer TOKEN". Returns 0 or -EINVAL. */
int ms_auth_parse_bearer(const char *hdr, char *tok, size_t cap);
/* Constant-time equality of two NUL-terminated secrets (1/0). */
int ms_auth_secret_eq(const char *a, const char *b);
int ms_auth_is_loopback(const struct sockaddr *sa);
/* Decision for one request: 0 allowed; -EACCES no or wrong credentials
 * (401); -EKEYEXPIRED an authentic login token that has expired (401, not
 * a guess: not counted by the back-off); -EPERM no admin credential
 * configured and the client is not on loopback (403). authz is the
 * Authorization header or NULL: Basic admin.user/admin.password, or Bearer
 * with one of admin.keys or a login token (util/logintoken.h) made under
 * cfg->secret for the current admin.user and admin.password. Any thread. */
int ms_auth_check(const ms_node_cfg_t *cfg, const char *authz, int peer_loopback);

/* Admin authentication of request r (server.c) with the login back-off
 * of node/auth_guard.h: *allowed = 1 and MHD_YES when r may proceed; else
 * *allowed = 0 and the 401/403/429 reply is queued (its MHD result is
 * returned). MHD threads. */
enum MHD_Result ms_api_check_admin(ms_req_t *r, int *allowed);

/* POST /api/v1/login (auth.c): {"user","password"[,"ttl_s"]} ->
 * {"token","expires"}. ip: the client address the back-off counts (the
 * forwarded client behind a trusted proxy), NULL when unknown. Checks the
 * back-off (429), the body (400), the credentials (401, counted as a
 * failure). MHD threads. */
enum MHD_Result ms_api_login(ms_req_t *r, const ms_ip_t *ip);
#define MS_LOGIN_TTL_DEFAULT_S (12 * 3600)     /* login tokens: 12 h unless ttl_s */
#define MS_LOGIN_TTL_MAX_S     (7 * 24 * 3600) /* ttl_s at most 7 days */

/* --- HLS client table (clients.c): key -> last seen; thread-safe. ----
 * Each key belongs to a group (the client address); at most max_per_group
 * keys per group and max_total in all are counted, so one client cannot
 * inflate the viewer count or the memory. */
typedef struct ms_clients ms_clients_t;
/* on_expire(owner) runs (outside the table lock) when an entry expires or
 * the table is freed; it releases what touch() handed over. NULL when a
 * cap is 0 or out of memory. */
ms_clients_t *ms_clients_new(void (*on_expire)(void *owner), size_t max_total,
                             size_t max_per_group);
void ms_clients_free(ms_clients_t *t);
/* Returns 1 when key is new (the table now owns owner), 0 when it was known
 * (last-seen refreshed; owner is NOT taken), -ENOSPC (a cap is reached:
 * not counted, owner not taken), -ENOMEM. */
int ms_clients_touch(ms_clients_t *t, const char *key, const char *group, void *owner,
                     int64_t now_ms);
/* --- playback sessions (same table, docs/api.md "Sessions") ---------
 * Every protocol registers its viewers here: HLS and the other
 * short-lived HTTP outputs by key (touch, expiring after
 * MS_HLS_CLIENT_TTL_MS), connections (RTSP, live.mp4) from open to close.
 * The caps above hold for both: a session past a cap plays but is not
 * listed. */
typedef struct ms_session ms_session_t;
typedef struct {
    char id[24];      /* opaque, unique on this node */
    char protocol[8]; /* hls | llhls | rtsp | mp4 | jpeg */
    char ip[MS_IP_STRLEN];
    char user_agent[128]; /* printable ASCII, truncated */
    int64_t since;        /* UTC s the session started */
    uint64_t bytes;       /* sent so far */
} ms_session_info_t;
/* What a protocol tells about a session (all borrowed; NULL = ""). */
typedef struct {
    const char *uid;        /* the stream's uid */
    const char *protocol;   /* as ms_session_info_t.protocol */
    const char *ip;         /* client address as text */
    const char *user_agent; /* User-Agent header or NULL */
    int64_t now_s;          /* UTC s, for since */
    uint64_t bytes;         /* touch: bytes to add; open: bytes so far */
} ms_session_meta_t;
/* ms_clients_touch with the session's metadata (meta may be NULL): a new
 * key gets an id and meta; a known key adds meta->bytes and takes the
 * newer user agent. Any thread. */
int ms_clients_touch_meta(ms_clients_t *t, const char *key, const char *group, void *owner,
                          int64_t now_ms, const ms_session_meta_t *meta);
/* A connection session: listed until ms_clients_close. kick(kick_ctx,
 * kick_arg) is how ms_clients_end asks the owner to close the connection:
 * it runs under the table lock (so never after ms_clients_close returned),
 * on the HTTP thread of the DELETE, and must only signal (post, resume),
 * never call back into the table. Returns the session (owned by the
 * table, valid until the caller's ms_clients_close) or NULL when a cap is
 * reached or out of memory. Any thread. */
ms_session_t *ms_clients_open(ms_clients_t *t, const char *group, const ms_session_meta_t *meta,
                              void (*kick)(void *ctx, uint64_t arg), void *kick_ctx,
                              uint64_t kick_arg, int64_t now_ms);
/* Sets the bytes sent so far of a connection session (NULL: no-op). Any
 * thread. */
void ms_clients_bytes(ms_clients_t *t, ms_session_t *s, uint64_t bytes);
/* Removes and frees a connection session (NULL: no-op). Any thread. */
void ms_clients_close(ms_clients_t *t, ms_session_t *s);
/* The sessions of stream uid: *out (caller frees) gets *n copies. 0 or
 * -ENOMEM. Any thread. */
int ms_clients_list(ms_clients_t *t, const char *uid, ms_session_info_t **out, size_t *n);
/* Ends session id of stream uid: a connection is kicked (its owner closes
 * it); an HLS session is dropped and its key refused for ban_ms (see
 * ms_clients_refused). 0, -ENOENT (no such session of that stream) or
 * -ENOMEM. Any thread. */
int ms_clients_end(ms_clients_t *t, const char *uid, const char *id, int64_t now_ms,
                   int64_t ban_ms);
/* 1 while key is refused (ended by ms_clients_end), else 0. Any thread. */
int ms_clients_refused(ms_clients_t *t, const char *key, int64_t now_ms);
#define MS_SESSION_BAN_MS 60000 /* an ended HLS session is refused this long */

/* Expires entries not seen for ttl_ms; returns how many expired. */
size_t ms_clients_sweep(ms_clients_t *t, int64_t now_ms, int64_t ttl_ms);
size_t ms_clients_count(ms_clients_t *t);
#define MS_CLIENTS_MAX_TOTAL     65536 /* viewers counted on a node */
#define MS_CLIENTS_MAX_PER_GROUP 256   /* viewers counted per client address */
#define MS_HLS_CLIENT_TTL_MS     10000

/* Records a fetch of stream s by the request's client (server.c owns the
 * table): one viewer and session per stream and client address (the
 * forwarded client behind a trusted proxy; IPv6 per /64), whatever its
 * User-Agent or token; HEAD requests are not counted. protocol ("hls",
 * "llhls", "jpeg", "mp4") names a new session; bytes: this response's body.
 * Borrows s. MHD threads. */
void ms_api_client_seen(ms_req_t *r, ms_stream_t *s, const char *protocol, uint64_t bytes);
/* 1 when the request's client had its session of stream s ended by an
 * administrator (DELETE .../sessions/{sid}) less than MS_SESSION_BAN_MS
 * ago; the caller refuses it (403). MHD threads. */
int ms_api_client_refused(ms_req_t *r, ms_stream_t *s);
/* A live.mp4 (or other connection) session of r's client on stream s:
 * listed until ms_api_session_close. kick as ms_clients_open. NULL when not
 * listed (caps). MHD threads. */
ms_session_t *ms_api_session_open(ms_req_t *r, ms_stream_t *s, const char *protocol,
                                  void (*kick)(void *ctx, uint64_t arg), void *ctx);
void ms_api_session_bytes(ms_session_t *ss, uint64_t bytes);
void ms_api_session_close(ms_session_t *ss);
/* The RTSP server's sessions (main wires them to node/rtsp_glue.h): the
 * same for a connection of peer with user agent ua on stream s (borrowed).
 * Any thread. */
ms_session_t *ms_api_session_open_peer(ms_stream_t *s, const char *protocol,
                                       const struct sockaddr *peer, const char *ua,
                                       void (*kick)(void *ctx, uint64_t arg), void *ctx,
                                       uint64_t arg);
/* The sessions of stream uid on this node (ms_clients_list of the server's
 * table) and ms_clients_end with MS_SESSION_BAN_MS. MHD threads. */
int ms_api_sessions_list(const char *uid, ms_session_info_t **out, size_t *n);
int ms_api_sessions_end(const char *uid, const char *id);
/* GET and DELETE /api/v1/streams/{id}/sessions[/{sid}] (sessions_api.c). */
enum MHD_Result ms_api_stream_sessions(ms_req_t *r);

/* --- LL-HLS blocking (server.c). Suspends r's connection until part `part`
 * of segment msn exists in h (ms_hls_wait); the access handler is called
 * again afterwards and retries. Returns 0 when suspended (return MHD_YES
 * without queuing), -ESHUTDOWN when the server or the output is stopping,
 * -ELOOP after too many waits for one request. */
int ms_api_suspend(ms_req_t *r, ms_hls_t *h, int64_t msn, int part);

/* --- handlers --- */
enum MHD_Result ms_api_hls_playlist(ms_req_t *r);
enum MHD_Result ms_api_hls_media(ms_req_t *r);
enum MHD_Result ms_api_streams_list(ms_req_t *r);
enum MHD_Result ms_api_stream_get(ms_req_t *r);
enum MHD_Result ms_api_system(ms_req_t *r);
/* /api/v1/lua and everything under it (lua_api.c); the caller checked the
 * admin credentials. */
enum MHD_Result ms_api_lua(ms_req_t *r);
/* Live outputs other than HLS (playback.c). */
enum MHD_Result ms_api_live_mp4(ms_req_t *r);
enum MHD_Result ms_api_live_flv(ms_req_t *r);
enum MHD_Result ms_api_snapshot(ms_req_t *r);
enum MHD_Result ms_api_preview_mp4(ms_req_t *r);
/* Archive playback and DVR API (archive.c): archive-*.m3u8|.mp4|.m4s,
 * JPEG at a time (snapshot routes with ?at=), GET ranges, POST events. */
enum MHD_Result ms_api_archive(ms_req_t *r);
int ms_api_archive_wants_jpeg(ms_req_t *r); /* 1 when the query has at= */
enum MHD_Result ms_api_archive_jpeg(ms_req_t *r);
enum MHD_Result ms_api_stream_ranges(ms_req_t *r);
enum MHD_Result ms_api_stream_events(ms_req_t *r);
/* POST /api/v1/streams/{id}/tokens and /share (tokens_api.c). */
enum MHD_Result ms_api_stream_tokens(ms_req_t *r);
enum MHD_Result ms_api_stream_share(ms_req_t *r);

/* Playback access control of api/access.h for request r on stream s (live
 * mode): 0 when allowed; otherwise the 404/403 reply is queued (JSON error
 * body; the refusal is logged at info level, rate-limited), *ret holds the
 * MHD result and a negative errno is returned. token: the ?token= value
 * ("" or NULL when absent). Borrows s. */
int ms_api_playback_access(ms_req_t *r, ms_stream_t *s, const char *token, enum MHD_Result *ret);
/* The same, giving the decision (its expiry, for live.mp4). */
int ms_api_playback_access_d(ms_req_t *r, ms_stream_t *s, const char *token, ms_play_decision_t *d,
                             enum MHD_Result *ret);
/* The playback decision point for an HTTP request (api/access.h
 * ms_playback_decide with the request's peer and forwarding headers):
 * returns 0, or queues the refusal in *ret (hidden: the 404 of an unknown
 * stream; denied: 403 with the reason) and returns -ENOENT / -EACCES.
 * MHD thread; cfg borrowed. */
int ms_api_playback_decide(ms_req_t *r, const ms_stream_cfg_t *cfg, const char *token, int mode,
                           int64_t at_ms, ms_play_decision_t *d, enum MHD_Result *ret);
/* After the access check passed (never before: a refused client gets
 * the unknown-stream answer, docs/access.md): 0 when stream s may be
 * served to r's client; else queues the answer in *ret and returns a
 * negative errno: -ECANCELED 403 "session ended by an administrator" (the
 * client's HLS session of s was ended; hls != 0 for the routes that share
 * that session: HLS, JPEG, preview.mp4), -EPERM 503 "stream
 * disabled" without Retry-After (enabled is false: it will not come back
 * by itself). Borrows s. MHD threads. */
int ms_api_playback_gate(ms_req_t *r, ms_stream_t *s, int hls, enum MHD_Result *ret);
/* 503 for a stream that exists but has no output yet: "stream disabled"
 * (as above) or "stream not ready" with Retry-After: 1 and the source's
 * status.reason ({"error", "status": {"reason"}}: why the camera does not
 * play, e.g. a refused connection). Borrows s. MHD threads. */
enum MHD_Result ms_api_reply_unavailable(ms_req_t *r, ms_stream_t *s);
/* 1 for routes that serve media to players (CORS, access control). */
int ms_api_is_playback(ms_route_id_t id);
enum MHD_Result ms_api_metrics(ms_req_t *r);
/* The web panel (cpanel.c, docs/cpanel.md): GET / -> 302 /cpanel/; the
 * panel's static files with ETag, Cache-Control and the CSP. MHD threads. */
enum MHD_Result ms_api_root(ms_req_t *r);
enum MHD_Result ms_api_cpanel(ms_req_t *r);
/* Pure helpers of cpanel.c, any thread: 0 when the segments after "cpanel"
 * name a servable file (no dot-files, [A-Za-z0-9._-] only), else -EINVAL;
 * the Content-Type by extension (static string, NULL: not served); the
 * directory served (static storage: cfg->cpanel_dir, or the default). */
int ms_cpanel_path_ok(char *const *segs, int nsegs);
const char *ms_cpanel_ctype(const char *name);
const char *ms_cpanel_dir(const ms_node_cfg_t *cfg);
extern const char ms_cpanel_csp[]; /* the Content-Security-Policy value */
/* Cluster calls (cluster_api.c): 1 when the call is executed on the
 * replicated state (the reply, or a suspension, is queued and *ret holds
 * the MHD result), 0 to route it as usual. Authenticates its calls itself
 * (admin, or the node secret for calls between nodes). */
int ms_api_cluster_route(ms_req_t *r, enum MHD_Result *ret);
/* api/redirect.c: live playback of a stream another node runs -> 302 to
 * that node (same target, token kept). 1 when it answered (*ret). MHD
 * threads. */
int ms_api_redirect_route(ms_req_t *r, enum MHD_Result *ret);

/* The config object with "status" added (new reference, NULL on error). */
json_t *ms_api_stream_json(ms_stream_t *s);
json_t *ms_api_status_json(const ms_stream_status_t *st);

/* Query parameter of r decoded into out; -ENOENT when absent. */
int ms_api_query(ms_req_t *r, const char *key, char *out, size_t cap);

/* --- Prometheus text format 0.0.4 (prom.c), pure writers. --- */
void ms_prom_head(ms_buf_t *b, const char *name, const char *type, const char *help);
/* name{label="value"} v ; label NULL = no labels. Value escaped. */
void ms_prom_sample(ms_buf_t *b, const char *name, const char *label, const char *value, double v);
/* A sample with several labels: kv is label, value, label, value, ...,
 * NULL (values escaped as for ms_prom_sample). */
void ms_prom_sample_labels(ms_buf_t *b, const char *name, const char *const *kv, double v);
/* bounds: MS_HLS_LAT_BUCKETS upper bounds matching lat->buckets. */
void ms_prom_histogram(ms_buf_t *b, const char *name, const char *stream, const double *bounds,
                       const ms_hls_latency_t *lat);

/* --- system figures (system.c) --- */
typedef struct {
    double cpu_process_pct, cpu_system_pct; /* over the last sample period */
    double cpu_process_seconds;             /* user + system since start */
    uint64_t rss_bytes, mem_total_bytes, mem_available_bytes;
    int threads;
} ms_sysinfo_t;
/* Takes a CPU sample (at server start; ms_sys_get takes the others). Any
 * thread. */
void ms_sys_sample(void);
/* Any thread. Takes a new sample first when the last one is at least 1 s
 * old, so the CPU percentages cover the time since the previous sample
 * (the previous /system or /metrics request at least 1 s earlier, or the
 * server's start). */
void ms_sys_get(ms_sysinfo_t *out);

#endif
