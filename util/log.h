/* Logging with a context prefix and rate limiting of repeats.
 *
 * Every line: "2026-11-21T13:57:45.123Z LEVEL [ctx] message".  The context is
 * a short string owned by the caller, e.g. "[node n1] [stream cam7] [rtsp-client]".
 * Thread-safe (one write(2) per line). */
#ifndef MS_UTIL_LOG_H
#define MS_UTIL_LOG_H

#include <stdint.h>

typedef enum { MS_LOG_DEBUG = 0, MS_LOG_INFO, MS_LOG_WARN, MS_LOG_ERROR } ms_log_level_t;

void ms_log_set_level(ms_log_level_t level);
ms_log_level_t ms_log_get_level(void);
/* Parses "debug|info|warn|error"; returns 0 or -1. */
int ms_log_level_parse(const char *s, ms_log_level_t *out);

void ms_log(ms_log_level_t level, const char *ctx, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Rate limiter for repeated messages: at most one line per interval_ms; the
 * next line that passes says how many were suppressed. Embed one per source. */
typedef struct {
    int64_t last_ms;
    uint32_t suppressed;
    uint32_t interval_ms;
} ms_ratelimit_t;

#define MS_RATELIMIT_INIT(ms)                                                                      \
    {                                                                                              \
        0, 0, (ms)                                                                                 \
    }
/* Returns 1 when the caller may log now (and *suppressed gets the count
 * skipped since the last allowed line), else 0. Not thread-safe per limiter. */
int ms_ratelimit_ok(ms_ratelimit_t *rl, uint32_t *suppressed);
/* The same for a limiter shared by several threads (serialized by one
 * process-wide mutex; cheap, for logging paths only). */
int ms_ratelimit_ok_mt(ms_ratelimit_t *rl, uint32_t *suppressed);

#define MS_DEBUG(ctx, ...) ms_log(MS_LOG_DEBUG, ctx, __VA_ARGS__)
#define MS_INFO(ctx, ...)  ms_log(MS_LOG_INFO, ctx, __VA_ARGS__)
#define MS_WARN(ctx, ...)  ms_log(MS_LOG_WARN, ctx, __VA_ARGS__)
#define MS_ERROR(ctx, ...) ms_log(MS_LOG_ERROR, ctx, __VA_ARGS__)

#endif
