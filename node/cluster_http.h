/* Node-to-node HTTP for the cluster (docs/cluster.md "Internal calls"):
 * request signing with a key derived from the shared cluster secret, and a
 * small blocking HTTP/1.1 client used from libuv's thread pool (never from
 * a loop).
 *
 * Authentication between nodes (docs/security.md "Joins and node-to-node
 * HTTP"): every internal request carries
 *   X-MS-Cluster-Auth: v2.<node id>.<unix ms>.<nonce>.<mac>
 * (util/nodeauth.h), an HMAC-SHA256 under ms_kdf_derive(secret,
 * MS_KDF_CHTTP) over the method, the request target (path and query), the
 * body's SHA-256, the sender's node id, the time and a random nonce. The
 * receiver accepts it when the MAC matches, X-MS-Node-Id (when sent) is
 * the id the MAC covers, the time is within MS_CHTTP_SKEW_MS of its clock
 * and the nonce was not seen within that window (a process-wide replay
 * cache). The traffic itself is plain HTTP: authenticated, not encrypted. */
#ifndef MS_NODE_CLUSTER_HTTP_H
#define MS_NODE_CLUSTER_HTTP_H

#include <stddef.h>
#include <stdint.h>

#define MS_CHTTP_HEADER   "X-MS-Cluster-Auth"
#define MS_CHTTP_NODE     "X-MS-Node-Id"
#define MS_CHTTP_SKEW_MS  30000
#define MS_CHTTP_RESP_MAX (4 * 1024 * 1024)

/* Writes the header value for a request from node node_id (non-zero) at
 * now_ms into out (cap >= 160), with a fresh random nonce. Returns its
 * length, or -EINVAL (empty secret, node_id 0), -EIO (no randomness or
 * HMAC failure), -ENOSPC. Any thread. */
int ms_chttp_sign(const char *secret, uint64_t node_id, const char *method, const char *path,
                  const void *body, size_t blen, int64_t now_ms, char *out, size_t cap);
/* 0 when hdr authenticates the request at now_ms, -EACCES otherwise
 * (also for a replay, an expired time, node_hdr (X-MS-Node-Id, may be
 * NULL) naming another node than the MAC, or an empty secret); refusals are
 * logged, rate-limited. On 0 *from (may be NULL) is the sender's node id.
 * Any thread (the replay cache is locked); constant-time comparison. */
int ms_chttp_verify(const char *secret, const char *hdr, const char *node_hdr, const char *method,
                    const char *path, const void *body, size_t blen, int64_t now_ms,
                    uint64_t *from);
/* Sets the node id ms_chttp_request signs with when its caller passes 0
 * (the cluster sets it once its raft id is known). Any thread. */
void ms_chttp_set_self(uint64_t node_id);

/* Blocking request to base ("http://host:port"): method path with body
 * (may be NULL), signed when secret is not NULL, as node node_id (0: the
 * id set by ms_chttp_set_self; -EINVAL when that is 0 too), which also goes
 * into X-MS-Node-Id.
 * On 0, *status is the HTTP status and *resp a malloc'ed NUL-terminated
 * body (caller frees). Returns -errno on connection or protocol failure
 * (-ETIMEDOUT after timeout_ms; the TCP connect alone gives up after 1 s,
 * so a peer cut off by a partition fails fast). Any thread but a loop thread. */
int ms_chttp_request(const char *base, const char *method, const char *path, const char *body,
                     size_t blen, const char *secret, uint64_t node_id, int timeout_ms, int *status,
                     char **resp);

#endif
