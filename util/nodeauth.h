/* Authentication between the nodes of a cluster: the join datagrams and
 * the header of node-to-node HTTP calls (docs/security.md "Joins and
 * node-to-node HTTP"). Both are HMAC-SHA256 (RFC 2104) under a key derived
 * from the cluster secret for that purpose (util/kdf.h: MS_KDF_JOIN,
 * MS_KDF_CHTTP), bound to the sender's node id, and fresh: a timestamp
 * within skew of the receiver's clock and a random 16-byte nonce the
 * receiver remembers for the validity window (util/replay.h).
 *
 * Join datagram (UDP, one line of ASCII, at most MS_JOIN_MAX bytes):
 *   MSJ1 <op> <from> <to> <ts> <nonce> <reply-to> <address> <mac>
 *   op        join | joining | redirect
 *   from, to  node ids (decimal); to is 0 in a join, the joiner's id in an
 *             answer
 *   ts        sender's wall clock, Unix ms
 *   nonce     32 hex digits, random per datagram
 *   reply-to  an answer: the nonce of the join it answers; a join: "-"
 *   address   join: the joiner's raft address; redirect: the leader's
 *             raft address; joining: "-" (1..255 printable, no space)
 *   mac       64 hex digits: HMAC-SHA256(join key, every byte before it,
 *             including the space that precedes it)
 *
 * Node HTTP header (MS_CHTTP_HEADER, node/cluster_http.h):
 *   v2.<node id>.<ts>.<nonce>.<mac>
 *   mac = HMAC-SHA256(node http key, "ms-cluster-v2\n" METHOD "\n" PATH
 *         "\n" hex(SHA-256(body)) "\n" <node id> "\n" <ts> "\n" <nonce>)
 *   PATH is the request target as sent (path and query).
 *
 * Pure (no I/O; the clock and the nonces are the caller's). Threads: any
 * (the replay cache passed in has its own lock). */
#ifndef MS_UTIL_NODEAUTH_H
#define MS_UTIL_NODEAUTH_H

#include <stddef.h>
#include <stdint.h>

#include "util/kdf.h"
#include "util/replay.h"

#define MS_NAUTH_SKEW_MS   30000 /* validity: |receiver now - ts| <= this */
#define MS_NAUTH_NONCE_LEN MS_REPLAY_NONCE_LEN
#define MS_JOIN_MAX        512 /* a join datagram's size bound */
#define MS_JOIN_ADDR_MAX   255
#define MS_NAUTH_HDR_MAX   160 /* a node HTTP header value's size bound */

typedef enum { MS_JOIN_REQ = 1, MS_JOIN_ACCEPT = 2, MS_JOIN_REDIRECT = 3 } ms_join_op_t;

typedef struct {
    ms_join_op_t op;
    uint64_t from;                        /* sender's node id (non-zero) */
    uint64_t to;                          /* 0 in a join; the joiner in an answer */
    int64_t ts_ms;                        /* sender's wall clock */
    uint8_t nonce[MS_NAUTH_NONCE_LEN];    /* random per datagram */
    uint8_t reply_to[MS_NAUTH_NONCE_LEN]; /* answers: the join's nonce */
    char addr[MS_JOIN_ADDR_MAX + 1];      /* "" for joining */
} ms_join_msg_t;

/* Writes m as a signed datagram into out (NUL-terminated). Returns its
 * length (without the NUL), -EINVAL for a bad field (op, from == 0, an
 * address with a space or control byte, missing where required, too long),
 * -ENOSPC when cap is too small, -EIO when HMAC fails. */
int ms_join_encode(const uint8_t key[MS_KDF_KEY_LEN], const ms_join_msg_t *m, char *out,
                   size_t cap);

/* Parses and authenticates a datagram of n bytes (any bytes) into *m.
 * Returns 0, or -EBADMSG (malformed, truncated or over MS_JOIN_MAX),
 * -EACCES (MAC does not match), -ETIME (ts further than MS_NAUTH_SKEW_MS
 * from now_ms), -EALREADY (its nonce is in replay: a replay), -EBUSY
 * (replay full). replay may be NULL (no replay check: the caller checks
 * freshness otherwise, e.g. an answer against its pending joins). A
 * datagram is entered in replay only when everything else holds. */
int ms_join_decode(const uint8_t key[MS_KDF_KEY_LEN], const void *buf, size_t n, int64_t now_ms,
                   ms_replay_t *replay, ms_join_msg_t *m);

/* The joiner's outstanding joins, for binding answers to them: a small
 * ring of the last MS_JOIN_PENDING nonces sent, each usable once. Not
 * locked (one owner thread). */
#define MS_JOIN_PENDING 8
typedef struct {
    uint8_t nonce[MS_JOIN_PENDING][MS_NAUTH_NONCE_LEN];
    int64_t sent_ms[MS_JOIN_PENDING]; /* 0: free */
    unsigned next;
} ms_join_pending_t;

/* Remembers the nonce of a join sent at now_ms (the oldest is forgotten). */
void ms_join_pending_add(ms_join_pending_t *p, const uint8_t nonce[MS_NAUTH_NONCE_LEN],
                         int64_t now_ms);
/* 0 when reply_to is the nonce of a join sent within MS_NAUTH_SKEW_MS of
 * now_ms, which is then consumed (a second answer to it is refused);
 * -ENOENT otherwise. */
int ms_join_pending_take(ms_join_pending_t *p, const uint8_t reply_to[MS_NAUTH_NONCE_LEN],
                         int64_t now_ms);

/* Writes the node HTTP header value for a request into out. method, path:
 * NUL-terminated without '\n'; body may be NULL when blen is 0. Returns
 * its length, -EINVAL (node_id 0, '\n' in method or path), -ENOSPC (cap
 * below MS_NAUTH_HDR_MAX is always enough), -EIO (hash failure). */
int ms_nauth_http_sign(const uint8_t key[MS_KDF_KEY_LEN], uint64_t node_id, const char *method,
                       const char *path, const void *body, size_t blen, int64_t now_ms,
                       const uint8_t nonce[MS_NAUTH_NONCE_LEN], char *out, size_t cap);

/* Authenticates a request's header value hdr (any NUL-terminated text).
 * claimed_id: the X-MS-Node-Id header's text or NULL; when present it
 * must be the id the MAC covers. On 0, *node_id is the sender's id.
 * Returns 0, -EBADMSG (malformed), -EACCES (MAC or claimed id mismatch),
 * -ETIME (expired), -EALREADY (replay), -EBUSY (replay cache full).
 * replay: the receiver's cache (NULL: no replay check). */
int ms_nauth_http_verify(const uint8_t key[MS_KDF_KEY_LEN], const char *hdr, const char *claimed_id,
                         const char *method, const char *path, const void *body, size_t blen,
                         int64_t now_ms, ms_replay_t *replay, uint64_t *node_id);

#endif
