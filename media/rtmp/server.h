/* RTMP server (Adobe RTMP 1.0): rtmp://H:PORT/{app}/{stream} for
 * publishers (the stream's source) and players (live, from the hub).
 *
 * Threads and hand-off, as the RTSP server (media/rtsp/server.h): one
 * accept thread (its own loop) owns the listening socket and runs the
 * handshake, connect and createStream of each connection (media/rtmp/conn.h)
 * until it asks to publish or play a stream. A play is authorized there
 * (cfg.authorize_play); then the descriptor (dup of uv_fileno), the
 * connection state (plain memory) and any unread bytes are posted to the
 * stream's loop, where uv_tcp_open() adopts it: a publisher is attached
 * there (cfg.publish_begin decides) and publishes into the hub with no
 * locks on the media path; a player opens a hub reader there (starting at
 * the GOP cache's keyframe).
 *
 * Bounds: a connection must ask to publish or play within
 * handshake_timeout_ms; messages are at most 64 KiB until then (and from a
 * player), 8 MiB from a publisher (chunk.h); per address
 * at most conns_per_ip connections at once; a player whose socket holds
 * more than 8 MiB unsent is resynchronised at the next keyframe, and one
 * that makes no write progress for 10 s, or a publisher that sends nothing
 * for 10 s, is closed. Protocol errors close the connection.
 *
 * The server does not know the node: streams are found through callbacks. */
#ifndef MS_MEDIA_RTMP_SERVER_H
#define MS_MEDIA_RTMP_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <uv.h>

#include "media/stream/hub.h"

typedef struct ms_rtmp_server ms_rtmp_server_t;

typedef struct {
    void *ref;       /* opaque reference, released with cfg->release */
    ms_hub_t *hub;   /* borrowed while ref is held; used on the stream's loop only */
    uv_loop_t *loop; /* the stream's loop */
    void *exec;      /* passed to cfg->post */
    char name[64];
} ms_rtmp_stream_t;

typedef struct {
    const char *address;
    int port;
    const char *log_ctx;
    uint32_t handshake_timeout_ms; /* accept to publish/play; 0 = 10000 */
    uint32_t conns_per_ip;         /* 0 = no limit */
    /* Accept thread, optional: 1 for a peer the per-address limit skips. */
    int (*exempt)(void *ud, const struct sockaddr *peer);
    /* Accept thread: the stream of that name (new reference in *out), or
     * -ENOENT. */
    int (*lookup)(void *ud, const char *name, ms_rtmp_stream_t *out);
    void (*release)(void *ud, void *ref); /* any thread */
    /* Stream loop: 1 while the stream is to be served; 0 closes its
     * connections (checked every second). */
    int (*running)(void *ud, void *ref);
    /* Any thread: runs fn(arg) on the loop behind exec; 0 or -errno. */
    int (*post)(void *ud, void *exec, void (*fn)(void *arg), void *arg);
    /* Stream loop: may peer publish the stream with this query (after '?',
     * "" when none)? 0: attached, the connection is the stream's source
     * until publish_end; kick(arg) closes it (stream loop only, may run
     * inside a later publish_begin for another connection). -ENOENT: the
     * stream takes no publisher; -EACCES: bad key; -EBUSY: it has one.
     * grant: what authorize_publish answered (>= 0; 0 without it). */
    int (*publish_begin)(void *ud, void *ref, const char *query, int grant,
                         const struct sockaddr *peer, void (*kick)(void *arg), void *arg);
    void (*publish_end)(void *ud, void *ref, void *arg);
    /* Accept thread, optional (NULL: none): an asynchronous decision on a
     * publish request before the stream is looked up (an HTTP on_publish
     * hook, node/hooks.h). 0: started; done(arg, result) must then be
     * called exactly once, on the accept thread (loop is the accept
     * thread's loop, e.g. the after_work of a uv_queue_work on it), with
     * 0 or a positive value (go on; publish_begin gets it as grant) or a
     * negative errno (refused: onStatus
     * NetStream.Publish.Unauthorized, then the connection closes). A
     * negative return refuses at once. The server waits for done even
     * when the connection closes meanwhile, and at stop. */
    int (*authorize_publish)(void *ud, uv_loop_t *loop, const char *app, const char *name,
                             const char *query, const struct sockaddr *peer,
                             void (*done)(void *arg, int result), void *arg);
    /* Any thread (the accept thread): may peer play the stream with this
     * query? 0 with *expires (UTC s the decision lapses at: the connection
     * is closed then; 0 = never), -ENOENT (refused as unknown) or -EACCES
     * (refused). NULL = every stream is public. */
    int (*authorize_play)(void *ud, const char *name, const char *query,
                          const struct sockaddr *peer, int64_t *expires);
    /* Player sessions, optional (NULL session_open = none), on the stream
     * loop: session_open when a player starts (user_agent: its connect
     * flashVer, NULL when absent; conn_id names the connection for
     * ms_rtmp_server_kick) returns a handle (NULL: not tracked);
     * session_bytes gets the bytes sent so far (every second and at the
     * end); session_close when the connection closes. */
    void *(*session_open)(void *ud, void *ref, const struct sockaddr *peer, const char *user_agent,
                          uint64_t conn_id);
    void (*session_bytes)(void *ud, void *sess, uint64_t bytes);
    void (*session_close)(void *ud, void *sess);
    void *ud;
} ms_rtmp_server_cfg_t;

/* Control thread. Binds and starts the accept thread; NULL with a reason
 * in err. cfg strings are copied. */
ms_rtmp_server_t *ms_rtmp_server_start(const ms_rtmp_server_cfg_t *cfg, char *err, size_t errlen);
int ms_rtmp_server_port(const ms_rtmp_server_t *s);
/* Closes connection conn_id of the stream whose loop runs exec (an
 * administrator ended the session): posted there with cfg->post. Any
 * thread while the server runs. 0 or a negative errno. A connection
 * already gone is ignored. */
int ms_rtmp_server_kick(ms_rtmp_server_t *s, void *exec, uint64_t conn_id);
/* Control thread (the one that started it), never a stream loop: stops
 * accepting, closes every connection on the stream loops (which must still
 * run) and waits for them (bounded, 5 s); frees s. NULL is a no-op. */
void ms_rtmp_server_stop(ms_rtmp_server_t *s);

#endif
