#include "util/log.h"
#include "util/clock.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static volatile ms_log_level_t g_level = MS_LOG_INFO;
static const char *const g_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

void ms_log_set_level(ms_log_level_t level)
{
    g_level = level;
}

ms_log_level_t ms_log_get_level(void)
{
    return g_level;
}

int ms_log_level_parse(const char *s, ms_log_level_t *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(s, g_names[i]) == 0) {
            *out = (ms_log_level_t)i;
            return 0;
        }
    }
    if (strcasecmp(s, "warning") == 0) {
        *out = MS_LOG_WARN;
        return 0;
    }
    return -1;
}

void ms_log(ms_log_level_t level, const char *ctx, const char *fmt, ...)
{
    if (level < g_level)
        return;
    char line[2048];
    int64_t us = ms_wall_us();
    time_t sec = (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %-5s %s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (int)(us / 1000 % 1000), g_names[level], ctx ? ctx : "");
    if (n < 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

static pthread_mutex_t g_rl_mu = PTHREAD_MUTEX_INITIALIZER;

int ms_ratelimit_ok_mt(ms_ratelimit_t *rl, uint32_t *suppressed)
{
    pthread_mutex_lock(&g_rl_mu);
    int ok = ms_ratelimit_ok(rl, suppressed);
    pthread_mutex_unlock(&g_rl_mu);
    return ok;
}

int ms_ratelimit_ok(ms_ratelimit_t *rl, uint32_t *suppressed)
{
    int64_t now = ms_mono_ms();
    if (rl->last_ms == 0 || now - rl->last_ms >= (int64_t)rl->interval_ms) {
        if (suppressed)
            *suppressed = rl->suppressed;
        rl->suppressed = 0;
        rl->last_ms = now;
        return 1;
    }
    rl->suppressed++;
    return 0;
}
