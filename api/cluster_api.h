/* REST calls executed on the replicated state (docs/api.md "Cluster"):
 * POST /streams, PUT|DELETE /streams/{id}, POST /streams/{id}/restart|
 * enable|disable, GET /streams?consistent=1, GET /cluster, GET /servers,
 * GET|PUT|DELETE /servers/{name}, and the internal POST /cluster/submit.
 * Each call is handed to the control loop (node/cluster.h) while its MHD
 * connection is suspended, and answered when the loop is done.
 *
 * Threads: ms_api_cluster_quiesce from the main thread before
 * ms_http_stop(); the route hook (api.h) from MHD threads. */
#ifndef MS_API_CLUSTER_API_H
#define MS_API_CLUSTER_API_H

/* Answers every suspended call 503 and refuses new ones. */
void ms_api_cluster_quiesce(void);

#endif
