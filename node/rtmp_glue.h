/* Glue between the node's streams (node/streams.h) and the RTMP server
 * (media/rtmp/server.h): stream lookup, stream loops through
 * ms_worker_post(), publishers attached to publish:// streams (their
 * publish_key and publish.republish). Players are decided by the hook main
 * hands in (api/rtmp_access.h: the one playback decision point).
 * docs/rtmp.md. */
#ifndef MS_NODE_RTMP_GLUE_H
#define MS_NODE_RTMP_GLUE_H

#include <stddef.h>

#include <stdint.h>
#include <sys/socket.h>

#include "node/config.h"
#include "node/rtsp_glue.h"

/* media/rtmp/server.h authorize_play. */
typedef int (*ms_rtmp_authorize_play_fn)(void *ud, const char *stream, const char *query,
                                         const struct sockaddr *peer, int64_t *expires);

/* Control thread, after ms_streams_init(). Starts the server on
 * cfg->listen_address:cfg->port_rtmp (0 = disabled: returns 0). cfg is
 * borrowed until ms_rtmp_glue_stop. authorize (ud auth_ud) decides
 * players; NULL = every stream is public. Returns 0 or a negative errno
 * with a reason in err. */
int ms_rtmp_glue_start(const ms_node_cfg_t *cfg, ms_rtmp_authorize_play_fn authorize, void *auth_ud,
                       char *err, size_t errlen);
/* The node's playback session table (as for RTSP, node/rtsp_glue.h): RTMP
 * players are sessions with protocol "rtmp". Control thread, before
 * ms_rtmp_glue_start (hooks borrowed, static). */
void ms_rtmp_glue_set_sessions(const ms_rtsp_glue_sessions_t *hooks);

/* Control thread, before ms_streams_shutdown() (the worker loops must
 * still run). Idempotent. */
void ms_rtmp_glue_stop(void);

#endif
