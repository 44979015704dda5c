/* Glue between the node's streams (node/streams.h) and the live RTSP server
 * (media/rtsp/server.h): stream lookup by name or uid, stream loops through
 * ms_worker_post(), and the access-control hook. */
#ifndef MS_NODE_RTSP_GLUE_H
#define MS_NODE_RTSP_GLUE_H

#include "media/rtsp/server.h"
#include "node/config.h"
#include "node/streams.h"

/* Control thread, after ms_streams_init(). Starts the server on
 * cfg->listen_address:cfg->port_rtsp (0 = disabled: returns 0). authorize
 * may be NULL (every stream public). Returns 0 or a negative errno with a
 * reason in err. */
int ms_rtsp_glue_start(const ms_node_cfg_t *cfg, ms_rtsp_authorize_fn authorize, void *auth_ud,
                       char *err, size_t errlen);
/* The node's playback session table (docs/api.md "Sessions"), implemented
 * above this layer and handed in by main. open: a session of the RTSP
 * connection of peer on stream s (borrowed); kick(ctx, arg) closes it (any
 * thread); returns a handle or NULL. bytes/close as media/rtsp/server.h. */
typedef struct {
    void *(*open)(ms_stream_t *s, const char *protocol, const struct sockaddr *peer, const char *ua,
                  void (*kick)(void *ctx, uint64_t arg), void *ctx, uint64_t arg);
    void (*bytes)(void *sess, uint64_t bytes);
    void (*close)(void *sess);
} ms_rtsp_glue_sessions_t;
/* Control thread, before ms_rtsp_glue_start (hooks borrowed, static). */
void ms_rtsp_glue_set_sessions(const ms_rtsp_glue_sessions_t *hooks);

/* Control thread, before ms_streams_shutdown() (the worker loops must still
 * run). Idempotent. */
void ms_rtsp_glue_stop(void);

#endif
