/* Synchronous reads of the replicated state for code that is not on the
 * control loop (the Lua scripts' ms.servers() and ms.cluster(),
 * docs/lua.md): the same GET the REST API posts (node/cluster.h
 * ms_cluster_post, res "servers" or "cluster"), so both answer from one
 * builder (the control loop's servers_get and cluster_view).
 *
 * Threads: any thread but the control loop (which runs the job: waiting
 * for it there would stall until the timeout). */
#ifndef MS_NODE_CLUSTER_READ_H
#define MS_NODE_CLUSTER_READ_H

#include <jansson.h>

#define MS_CLUSTER_READ_TIMEOUT_MS 2000

/* GET of res ("servers" or "cluster", as GET /api/v1/{res}), waiting up
 * to timeout_ms (<= 0: MS_CLUSTER_READ_TIMEOUT_MS) for the control loop.
 * Returns 0 with *status (the HTTP status the API would answer) and
 * *reply (its body, a new reference the caller owns; may be NULL when the
 * loop gave none), or -ENOTSUP without the cluster state (listen.raft =
 * 0), -EINVAL for another res, -ESHUTDOWN when the node is stopping,
 * -ETIMEDOUT when the loop did not answer in time (the job is then freed
 * by the loop when it does), -ENOMEM. */
int ms_cluster_read(const char *res, int timeout_ms, unsigned *status, json_t **reply);

#endif
