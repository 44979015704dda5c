/* Clocks. Monotonic for intervals and timeouts, wall (UTC) for timestamps. */
#ifndef MS_UTIL_CLOCK_H
#define MS_UTIL_CLOCK_H

#include <stdint.h>

int64_t ms_mono_us(void);
int64_t ms_mono_ms(void);
int64_t ms_wall_us(void); /* microseconds since the unix epoch, UTC */

#endif
