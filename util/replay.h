/* A bounded replay cache: remembers the nonces of accepted messages until
 * their validity window ends, so the same message is accepted once.
 *
 * Used by the receivers of join datagrams and of node-to-node HTTP calls
 * (docs/security.md "Joins and node-to-node HTTP"): a message carries a
 * random nonce and a timestamp; it is fresh while |now - ts| <= skew, so its
 * nonce is remembered until ts + skew (the caller passes that as expiry).
 *
 * The table has a fixed capacity, chosen at creation. It fails closed: when
 * it is full of nonces that have not yet expired, a new nonce is refused
 * (-EBUSY) rather than an old one forgotten (which would let its message be
 * replayed). Only messages whose MAC verified are ever inserted, so filling
 * it takes the key.
 *
 * Pure (no I/O); the clock is the caller's (now_ms). Thread-safe: every
 * call takes the cache's own mutex. */
#ifndef MS_UTIL_REPLAY_H
#define MS_UTIL_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#define MS_REPLAY_NONCE_LEN 16

typedef struct ms_replay ms_replay_t;

/* A cache holding up to cap (>= 1) live nonces. Returns NULL when out of
 * memory. The caller owns it (ms_replay_free). Any thread. */
ms_replay_t *ms_replay_new(size_t cap);
/* Frees rc (NULL is fine). No call may be running on it. */
void ms_replay_free(ms_replay_t *rc);

/* Records nonce, remembered until expires_ms. Returns 0 when it was not
 * known (the message is new), -EALREADY when it is remembered and not
 * expired at now_ms (a replay), -EBUSY when the cache is full of live
 * nonces (refuse the message). Any thread. */
int ms_replay_check_add(ms_replay_t *rc, const uint8_t nonce[MS_REPLAY_NONCE_LEN],
                        int64_t expires_ms, int64_t now_ms);

/* Number of nonces stored (live or not yet purged). Any thread. */
size_t ms_replay_count(ms_replay_t *rc);

#endif
