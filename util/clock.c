#include "util/clock.h"

#include <time.h>

int64_t ms_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t ms_mono_ms(void)
{
    return ms_mono_us() / 1000;
}

int64_t ms_wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t ms_mono_coarse_us(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) != 0)
        return ms_mono_us();
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
