/* Admin brute-force protection shared by the listeners (node/auth_guard.h). */
#include "node/auth_guard.h"

#include <pthread.h>
#include <stdlib.h>

#include "util/backoff.h"
#include "util/clock.h"
#include "util/log.h"

#define CTX "[auth]"

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static ms_backoff_t *g_table;
static ms_ratelimit_t g_rl_fail = MS_RATELIMIT_INIT(1000);
static ms_ratelimit_t g_rl_block = MS_RATELIMIT_INIT(1000);
static ms_ratelimit_t g_rl_refused = MS_RATELIMIT_INIT(1000);

static void init_once(void)
{
    const ms_backoff_cfg_t cfg = MS_BACKOFF_DEFAULTS;
    g_table = ms_backoff_new(&cfg); /* NULL (out of memory): no back-off, logged */
    if (!g_table)
        MS_ERROR(CTX, "out of memory: failed logins are not throttled");
}

static ms_backoff_t *table(void)
{
    pthread_once(&g_once, init_once);
    return g_table;
}

int64_t ms_auth_guard_check(const ms_ip_t *ip, const char *proto)
{
    ms_backoff_t *t = table();
    if (!t || !ip)
        return 0;
    int64_t left = ms_backoff_check(t, ip, ms_mono_ms());
    uint32_t supp = 0;
    if (left > 0 && ms_ratelimit_ok_mt(&g_rl_refused, &supp)) {
        char a[MS_IP_STRLEN];
        MS_WARN(CTX,
                "%s: refused an admin login from %s: blocked for %lld ms more (%u more refusals "
                "suppressed)",
                proto, ms_ip_format(ip, a, sizeof a), (long long)left, supp);
    }
    return left;
}

void ms_auth_guard_failed(const ms_ip_t *ip, const char *proto, const char *what)
{
    ms_backoff_t *t = table();
    if (!ip)
        return;
    int64_t delay = t ? ms_backoff_fail(t, ip, ms_mono_ms()) : 0;
    char a[MS_IP_STRLEN];
    uint32_t supp = 0;
    if (ms_ratelimit_ok_mt(&g_rl_fail, &supp))
        MS_WARN(CTX, "%s: failed admin login (%s) from %s (%u more failures suppressed)", proto,
                what, ms_ip_format(ip, a, sizeof a), supp);
    if (delay > 0 && ms_ratelimit_ok_mt(&g_rl_block, &supp))
        MS_WARN(CTX,
                "%s: %s blocked for %lld ms after repeated failed admin logins (%u more blocks "
                "suppressed)",
                proto, ms_ip_format(ip, a, sizeof a), (long long)delay, supp);
}

void ms_auth_guard_ok(const ms_ip_t *ip)
{
    ms_backoff_t *t = table();
    if (t && ip)
        ms_backoff_success(t, ip);
}
