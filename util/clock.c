#include "util/clock.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>
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

int ms_utc_basic_parse(const char *s, size_t n, int64_t *us)
{
    if (n < 16 || n > 40 || s[8] != 'T' || s[n - 1] != 'Z')
        return -EINVAL;
    int v[6];
    const int pos[6] = {0, 4, 6, 9, 11, 13}, len[6] = {4, 2, 2, 2, 2, 2};
    for (int k = 0; k < 6; k++) {
        v[k] = 0;
        for (int j = 0; j < len[k]; j++) {
            char c = s[pos[k] + j];
            if (!isdigit((unsigned char)c))
                return -EINVAL;
            v[k] = v[k] * 10 + (c - '0');
        }
    }
    if (v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31 || v[3] > 23 || v[4] > 59 || v[5] > 60)
        return -EINVAL;
    int64_t frac_us = 0;
    size_t i = 15;
    if (i < n - 1) {
        if (s[i] != '.')
            return -EINVAL;
        i++;
        int64_t scale = 100000;
        for (; i < n - 1; i++) {
            if (!isdigit((unsigned char)s[i]))
                return -EINVAL;
            frac_us += (s[i] - '0') * scale;
            scale /= 10;
        }
    } else if (i != n - 1) {
        return -EINVAL;
    }
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = v[0] - 1900;
    tm.tm_mon = v[1] - 1;
    tm.tm_mday = v[2];
    tm.tm_hour = v[3];
    tm.tm_min = v[4];
    tm.tm_sec = v[5];
    time_t t = timegm(&tm);
    *us = (int64_t)t * 1000000 + frac_us;
    return 0;
}

int ms_utc_parse_s(const char *s, int64_t *sec)
{
    if (!s || !s[0])
        return -EINVAL;
    size_t n = strlen(s);
    if (n > 8 && s[8] == 'T') {
        int64_t us;
        if (ms_utc_basic_parse(s, n, &us) < 0 || us < 1000000)
            return -EINVAL;
        *sec = us / 1000000;
        return 0;
    }
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]) || v > (INT64_MAX / 4000) / 10)
            return -EINVAL;
        v = v * 10 + (s[i] - '0');
    }
    if (v < 1 || v > INT64_MAX / 4000)
        return -EINVAL;
    *sec = v;
    return 0;
}
