/* The cluster's view of a stream's status on every node (docs/cluster.md
 * "One status on every node"): the live figures and the state of a stream
 * come from the node that runs it as primary, read node to node (signed,
 * docs/security.md "Joins and node-to-node HTTP") as one compact table per
 * server and kept MS_STATUS_REMOTE_TTL_MS; nothing of it is written to the
 * replicated state.
 *
 * Threads: MHD threads (the fetch blocks the calling thread for at most
 * MS_STATUS_REMOTE_TIMEOUT_MS; a server that did not answer is not asked
 * again for MS_STATUS_REMOTE_BACKOFF_MS). */
#ifndef MS_API_STATUS_REMOTE_H
#define MS_API_STATUS_REMOTE_H

#include <jansson.h>
#include <stdint.h>

#include "api/api.h"

#define MS_STATUS_REMOTE_TTL_MS     1000
#define MS_STATUS_REMOTE_TIMEOUT_MS 800
#define MS_STATUS_REMOTE_BACKOFF_MS 2000

/* The compact status of uid as server (its http base http) last said:
 * a new reference to an object with the keys of the status object that
 * describe the stream's source and outputs (state, characteristic, reason,
 * bitrate_kbps, output_kbps, clients, width, height, codecs, uptime_s,
 * ...), and *age_ms how old that answer is. NULL when the server cannot be
 * asked (*why: "unreachable") or does not run the stream (*why:
 * "not running"). */
json_t *ms_status_remote_get(const char *server, const char *http, const char *uid, int64_t *age_ms,
                             const char **why);

/* The compact status of one local stream as the table carries it (new
 * reference). Any thread. */
json_t *ms_status_compact(const ms_stream_status_t *st);

/* 1 when r is the signed internal read of this node's table (GET
 * /api/v1/streams?cluster_local=1 with a valid X-MS-Cluster-Auth). */
int ms_status_remote_internal(ms_req_t *r);
/* Replies {"streams": {uid: compact status}} for the streams this node runs
 * (as primary). MHD threads. */
enum MHD_Result ms_api_streams_local(ms_req_t *r);

#endif
