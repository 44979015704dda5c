/* The node's HTTP server (libmicrohttpd): live HLS playback, the REST API
 * under /api/v1, /metrics (Prometheus text format 0.0.4).
 *
 * One MHD daemon per listener (HTTP on cfg->port_http, HTTPS on
 * cfg->port_https when tls_cert/tls_key are set), each with an internal
 * thread pool driven by epoll. Blocking LL-HLS requests suspend their
 * connection and are resumed from the stream's worker loop.
 *
 * Threads: ms_http_start/ms_http_stop are called from the main thread, once
 * each (start, then stop). The config is borrowed: it must stay valid and
 * unchanged until ms_http_stop() returns. */
#ifndef MS_API_HTTP_H
#define MS_API_HTTP_H

#include <stddef.h>

#include "node/config.h"
#include "node/rtsp_glue.h"

/* Starts the listeners. Returns 0, or a negative errno with a human readable
 * message in err (e.g. -EADDRINUSE, -EINVAL for an unreadable or invalid
 * TLS certificate/key). A port of 0 disables that listener. */
int ms_http_start(const ms_node_cfg_t *cfg, char *err, size_t errlen);

/* Stops every listener and waits for the handler threads. Safe to call when
 * ms_http_start failed or was never called. */
void ms_http_stop(void);

/* The hooks that list RTSP connections in the node's playback session
 * table (docs/api.md "Sessions"), for ms_rtsp_glue_set_sessions. Safe to
 * call before ms_http_start and after ms_http_stop (no-ops then). Static
 * storage; any thread. */
const ms_rtsp_glue_sessions_t *ms_http_rtsp_sessions(void);

#endif
