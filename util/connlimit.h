/* Per-address connection counting for listeners (HTTP, RTSP): at most
 * per_ip open connections per client address, so one address cannot take
 * every connection slot of a server (slowloris).
 *
 * Keys are IP addresses as in util/ipaddr.h (IPv4 as mapped IPv6); IPv6 is
 * counted per address, not per prefix (a /64 behind one router may hold
 * many clients). Entries exist only while their count is above zero and at
 * most max_addrs addresses are counted at once (beyond that, new addresses
 * are refused), so memory is bounded.
 *
 * Pure (no I/O); thread-safe (one mutex per table). */
#ifndef MS_UTIL_CONNLIMIT_H
#define MS_UTIL_CONNLIMIT_H

#include <stddef.h>
#include <stdint.h>

#include "util/ipaddr.h"

typedef struct ms_connlimit ms_connlimit_t;

/* Returns a new table (the caller owns it; ms_connlimit_free) or NULL
 * (per_ip or max_addrs 0, out of memory). */
ms_connlimit_t *ms_connlimit_new(uint32_t per_ip, size_t max_addrs);
/* Frees t (NULL allowed); no thread may use it any more. */
void ms_connlimit_free(ms_connlimit_t *t);
/* 1 when ip has fewer than per_ip connections now (a new one would be
 * allowed), else 0. Does not count anything. */
int ms_connlimit_room(ms_connlimit_t *t, const ms_ip_t *ip);
/* Counts a new connection of ip. Returns 0, -EBUSY (ip already has per_ip:
 * not counted), -ENOSPC (max_addrs addresses counted: not counted) or
 * -ENOMEM. Only a 0 return must be matched by ms_connlimit_release. */
int ms_connlimit_acquire(ms_connlimit_t *t, const ms_ip_t *ip);
/* Counts a connection of ip even past per_ip (for a connection already
 * accepted after ms_connlimit_room said yes: racing accepts may overshoot
 * by the number of accepting threads). Same returns but never -EBUSY. */
int ms_connlimit_acquire_force(ms_connlimit_t *t, const ms_ip_t *ip);
/* Uncounts a connection counted by acquire. */
void ms_connlimit_release(ms_connlimit_t *t, const ms_ip_t *ip);
/* Open connections of ip. */
uint32_t ms_connlimit_count(ms_connlimit_t *t, const ms_ip_t *ip);

#endif
