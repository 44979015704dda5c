/* Per-address back-off for failed authentication (brute-force protection).
 *
 * Each client address has a failure count within a sliding window. When an
 * address reaches max_failures failures within window_ms, it is blocked:
 * every further attempt from it is refused (without checking credentials)
 * for a delay that starts at base_delay_ms and doubles with each block in a
 * row, up to max_delay_ms. A block in a row is one that follows the previous
 * one by less than reset_ms without a success; after reset_ms without a
 * failure the address starts over. A success (which the caller only sees
 * when the address was not blocked) forgets the address. Other addresses
 * are never affected.
 *
 * IPv6 clients are keyed by their /64 prefix (one subscriber usually holds
 * a whole /64); IPv4 clients by their address.
 *
 * Memory is bounded: at most max_entries addresses are remembered; when the
 * table is full, the entry seen least recently that is not blocked is
 * forgotten (or, when every entry is blocked, the one whose block ends
 * first).
 *
 * Pure (no I/O, the caller passes the time); thread-safe: one mutex per
 * table, so the HTTP pool threads and the RTSP stream loops may share one. */
#ifndef MS_UTIL_BACKOFF_H
#define MS_UTIL_BACKOFF_H

#include <stddef.h>
#include <stdint.h>

#include "util/ipaddr.h"

typedef struct {
    uint32_t max_failures; /* failures within window_ms that block (>= 1) */
    int64_t window_ms;     /* > 0 */
    int64_t base_delay_ms; /* first block (> 0) */
    int64_t max_delay_ms;  /* >= base_delay_ms */
    int64_t reset_ms;      /* quiet time after which the delay starts over */
    size_t max_entries;    /* addresses remembered (>= 1) */
} ms_backoff_cfg_t;

/* The defaults (documented in docs/security.md "Authentication and
 * listeners"): 10 failures in 60 s block for 2 s, then 4, 8, ... 300 s;
 * 15 minutes without a failure start over; 4096 addresses. */
#define MS_BACKOFF_DEFAULTS                                                                        \
    {                                                                                              \
        10, 60000, 2000, 300000, 900000, 4096                                                      \
    }

typedef struct ms_backoff ms_backoff_t;

/* Returns a new table (the caller owns it; ms_backoff_free), or NULL on a
 * bad cfg or out of memory. */
ms_backoff_t *ms_backoff_new(const ms_backoff_cfg_t *cfg);
/* Frees t (NULL allowed). No other thread may use t any more. */
void ms_backoff_free(ms_backoff_t *t);

/* Before checking credentials from ip: 0 when an attempt is allowed, else
 * the milliseconds until the block of ip ends (> 0). */
int64_t ms_backoff_check(ms_backoff_t *t, const ms_ip_t *ip, int64_t now_ms);
/* Records a failed attempt from ip. Returns 0, or the delay (ms) of the
 * block this failure started (> 0). */
int64_t ms_backoff_fail(ms_backoff_t *t, const ms_ip_t *ip, int64_t now_ms);
/* Records a successful attempt from ip: the address is forgotten. */
void ms_backoff_success(ms_backoff_t *t, const ms_ip_t *ip);
/* Addresses remembered now (for tests and metrics). */
size_t ms_backoff_size(ms_backoff_t *t);

#endif
