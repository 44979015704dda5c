/* Clocks. Monotonic for intervals and timeouts, wall (UTC) for timestamps. */
#ifndef MS_UTIL_CLOCK_H
#define MS_UTIL_CLOCK_H

#include <stddef.h>
#include <stdint.h>

int64_t ms_mono_us(void);
int64_t ms_mono_ms(void);
int64_t ms_wall_us(void); /* microseconds since the unix epoch, UTC */
/* CLOCK_MONOTONIC_COARSE in microseconds: the monotonic clock as of the
 * last kernel tick (1-10 ms behind ms_mono_us(), never ahead of it), read
 * without a timer access; for per-frame bookkeeping that needs no better
 * (e.g. "last frame seen"). Any thread. */
int64_t ms_mono_coarse_us(void);

/* UTC time in the ISO 8601 basic form of RFC 2326 section 3.7 (utc-time):
 * YYYYMMDDThhmmss[.fraction]Z, the n bytes at s (not NUL-terminated). Sets
 * *us (microseconds since the epoch). 0, or -EINVAL when malformed. Pure. */
int ms_utc_basic_parse(const char *s, size_t n, int64_t *us);
/* A time in a URL (archive-{from}-..., ?at=): UTC seconds since the epoch
 * (1 .. INT64_MAX/4000) or the basic form above (fraction dropped). Sets
 * *sec. 0, or -EINVAL when malformed. Pure. */
int ms_utc_parse_s(const char *s, int64_t *sec);

/* Delay from now to the next multiple of period (1..period; any clock, e.g.
 * uv_now()). Periodic timers of one loop started with it fire in the same
 * loop iteration: one wakeup serves them all instead of one each. */
static inline uint64_t ms_phase_delay(uint64_t now, uint64_t period)
{
    return period ? period - now % period : 0;
}

#endif
