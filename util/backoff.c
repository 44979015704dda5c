/* Per-address back-off for failed authentication (util/backoff.h).
 *
 * A fixed pool of max_entries entries, chained in a hash table by index;
 * a free list holds the unused ones. Eviction (table full) scans the pool
 * once, which only happens when a new address fails. */
#include "util/backoff.h"

#include <assert.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    ms_ip_t key;
    int32_t next; /* chain (or free list) index, -1 = end */
    int32_t used;
    uint32_t fails;       /* within the window */
    uint32_t strikes;     /* blocks in a row */
    int64_t window_start; /* first failure of the window */
    int64_t last_ms;      /* last failure or success */
    int64_t blocked_until;
} be_t;

struct ms_backoff {
    pthread_mutex_t mu;
    ms_backoff_cfg_t cfg;
    size_t nbuckets, n;
    int32_t *buckets;
    int32_t free_head;
    be_t *e;
};

static void key_of(const ms_ip_t *ip, ms_ip_t *k)
{
    *k = *ip;
    if (!ms_ip_is_v4(ip))
        memset(k->a + 8, 0, 8); /* IPv6: the /64 */
}

static size_t hash_of(const ms_ip_t *k, size_t nb)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a 64 */
    for (int i = 0; i < 16; i++) {
        h ^= k->a[i];
        h *= 1099511628211ull;
    }
    return (size_t)(h % nb);
}

ms_backoff_t *ms_backoff_new(const ms_backoff_cfg_t *cfg)
{
    if (!cfg || cfg->max_failures < 1 || cfg->window_ms <= 0 || cfg->base_delay_ms <= 0 ||
        cfg->max_delay_ms < cfg->base_delay_ms || cfg->reset_ms < 0 || cfg->max_entries < 1 ||
        cfg->max_entries > (1u << 24))
        return NULL;
    ms_backoff_t *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->cfg = *cfg;
    t->nbuckets = cfg->max_entries * 2 + 1;
    t->buckets = malloc(t->nbuckets * sizeof *t->buckets);
    t->e = calloc(cfg->max_entries, sizeof *t->e);
    if (!t->buckets || !t->e) {
        free(t->buckets);
        free(t->e);
        free(t);
        return NULL;
    }
    for (size_t i = 0; i < t->nbuckets; i++)
        t->buckets[i] = -1;
    for (size_t i = 0; i < cfg->max_entries; i++)
        t->e[i].next = i + 1 < cfg->max_entries ? (int32_t)(i + 1) : -1;
    t->free_head = 0;
    pthread_mutex_init(&t->mu, NULL);
    return t;
}

void ms_backoff_free(ms_backoff_t *t)
{
    if (!t)
        return;
    pthread_mutex_destroy(&t->mu);
    free(t->buckets);
    free(t->e);
    free(t);
}

static be_t *find(ms_backoff_t *t, const ms_ip_t *k)
{
    for (int32_t i = t->buckets[hash_of(k, t->nbuckets)]; i >= 0; i = t->e[i].next)
        if (ms_ip_equal(&t->e[i].key, k))
            return &t->e[i];
    return NULL;
}

static void unlink_entry(ms_backoff_t *t, int32_t idx)
{
    int32_t *pp = &t->buckets[hash_of(&t->e[idx].key, t->nbuckets)];
    while (*pp != idx) {
        assert(*pp >= 0);
        pp = &t->e[*pp].next;
    }
    *pp = t->e[idx].next;
    memset(&t->e[idx], 0, sizeof t->e[idx]);
    t->e[idx].next = t->free_head;
    t->free_head = idx;
    t->n--;
}

/* Frees one entry: the least recently seen one not blocked at now, else
 * the one whose block ends first. */
static void evict(ms_backoff_t *t, int64_t now_ms)
{
    int32_t best = -1, best_blocked = -1;
    for (size_t i = 0; i < t->cfg.max_entries; i++) {
        const be_t *e = &t->e[i];
        if (!e->used)
            continue;
        if (e->blocked_until <= now_ms) {
            if (best < 0 || e->last_ms < t->e[best].last_ms)
                best = (int32_t)i;
        } else if (best_blocked < 0 || e->blocked_until < t->e[best_blocked].blocked_until) {
            best_blocked = (int32_t)i;
        }
    }
    if (best < 0)
        best = best_blocked;
    if (best >= 0)
        unlink_entry(t, best);
}

static be_t *get_or_add(ms_backoff_t *t, const ms_ip_t *k, int64_t now_ms)
{
    be_t *e = find(t, k);
    if (e)
        return e;
    if (t->free_head < 0)
        evict(t, now_ms);
    if (t->free_head < 0)
        return NULL;
    int32_t idx = t->free_head;
    e = &t->e[idx];
    t->free_head = e->next;
    memset(e, 0, sizeof *e);
    e->key = *k;
    e->used = 1;
    size_t b = hash_of(k, t->nbuckets);
    e->next = t->buckets[b];
    t->buckets[b] = idx;
    t->n++;
    return e;
}

int64_t ms_backoff_check(ms_backoff_t *t, const ms_ip_t *ip, int64_t now_ms)
{
    assert(t && ip);
    ms_ip_t k;
    key_of(ip, &k);
    pthread_mutex_lock(&t->mu);
    const be_t *e = find(t, &k);
    int64_t left = e && e->blocked_until > now_ms ? e->blocked_until - now_ms : 0;
    pthread_mutex_unlock(&t->mu);
    return left;
}

int64_t ms_backoff_fail(ms_backoff_t *t, const ms_ip_t *ip, int64_t now_ms)
{
    assert(t && ip);
    ms_ip_t k;
    key_of(ip, &k);
    pthread_mutex_lock(&t->mu);
    be_t *e = get_or_add(t, &k, now_ms);
    int64_t delay = 0;
    if (e) {
        if (e->last_ms && now_ms - e->last_ms > t->cfg.reset_ms)
            e->strikes = 0;
        if (!e->fails || now_ms - e->window_start > t->cfg.window_ms) {
            e->fails = 0;
            e->window_start = now_ms;
        }
        e->last_ms = now_ms;
        if (++e->fails >= t->cfg.max_failures) {
            delay = t->cfg.base_delay_ms;
            for (uint32_t i = 0; i < e->strikes && delay < t->cfg.max_delay_ms; i++)
                delay *= 2;
            if (delay > t->cfg.max_delay_ms)
                delay = t->cfg.max_delay_ms;
            e->strikes++;
            e->fails = 0;
            e->blocked_until = now_ms + delay;
        }
    }
    pthread_mutex_unlock(&t->mu);
    return delay;
}

void ms_backoff_success(ms_backoff_t *t, const ms_ip_t *ip)
{
    assert(t && ip);
    ms_ip_t k;
    key_of(ip, &k);
    pthread_mutex_lock(&t->mu);
    be_t *e = find(t, &k);
    if (e) /* never blocked at this point: the caller checked first */
        unlink_entry(t, (int32_t)(e - t->e));
    pthread_mutex_unlock(&t->mu);
}

size_t ms_backoff_size(ms_backoff_t *t)
{
    pthread_mutex_lock(&t->mu);
    size_t n = t->n;
    pthread_mutex_unlock(&t->mu);
    return n;
}
