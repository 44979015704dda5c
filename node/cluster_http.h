/* Node-to-node HTTP for the cluster (docs/cluster.md "Internal calls"):
 * request signing with the shared node secret, and a small blocking
 * HTTP/1.1 client used from libuv's thread pool (never from a loop).
 *
 * Authentication between nodes: every internal request carries
 *   X-MS-Cluster-Auth: <unix ms>.<hex HMAC-SHA256(secret, canonical)>
 * with canonical = "ms-cluster-v1\n" METHOD "\n" PATH "\n" <unix ms> "\n"
 * BODY. The receiver accepts it when the MAC matches and the time is
 * within MS_CHTTP_SKEW_MS of its clock (bounds replays). The nodes of one
 * cluster share cfg.secret. */
#ifndef MS_NODE_CLUSTER_HTTP_H
#define MS_NODE_CLUSTER_HTTP_H

#include <stddef.h>
#include <stdint.h>

#define MS_CHTTP_HEADER   "X-MS-Cluster-Auth"
#define MS_CHTTP_NODE     "X-MS-Node-Id"
#define MS_CHTTP_SKEW_MS  30000
#define MS_CHTTP_RESP_MAX (4 * 1024 * 1024)

/* Writes the header value for a request into out (>= 96 bytes). Any
 * thread. */
void ms_chttp_sign(const char *secret, const char *method, const char *path, const void *body,
                   size_t blen, int64_t now_ms, char *out, size_t cap);
/* 0 when hdr authenticates the request at now_ms, -EACCES otherwise. Any
 * thread; constant-time comparison. */
int ms_chttp_verify(const char *secret, const char *hdr, const char *method, const char *path,
                    const void *body, size_t blen, int64_t now_ms);

/* Blocking request to base ("http://host:port"): method path with body
 * (may be NULL), extra headers ("Name: value\r\n" lines or NULL), signed
 * when secret is not NULL; node_id goes into X-MS-Node-Id when non-zero.
 * On 0, *status is the HTTP status and *resp a malloc'ed NUL-terminated
 * body (caller frees). Returns -errno on connection or protocol failure
 * (-ETIMEDOUT after timeout_ms; the TCP connect alone gives up after 1 s,
 * so a peer cut off by a partition fails fast). Any thread but a loop thread. */
int ms_chttp_request(const char *base, const char *method, const char *path, const char *body,
                     size_t blen, const char *secret, uint64_t node_id, int timeout_ms, int *status,
                     char **resp);

#endif
