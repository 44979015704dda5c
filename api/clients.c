/* Viewers of HLS and the other short-lived outputs: HTTP is stateless, so a
 * "client" is a key (stream and client address, built by the caller) seen
 * within the last MS_HLS_CLIENT_TTL_MS. A chained hash table under one
 * mutex; expiry callbacks run outside the lock.
 *
 * Bounded so that one client cannot inflate the count (or the memory)
 * cheaply: at most max_per_group entries per group (the caller's client
 * address, an IPv6 /64) and max_total in all; a key past either cap is
 * not counted. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"

#define NBUCKETS 1024

typedef struct group {
    struct group *next;
    size_t n; /* entries of this group */
    char name[];
} group_t;

typedef struct entry {
    struct entry *next;
    group_t *group;
    void *owner;
    int64_t last_ms;
    char key[];
} entry_t;

struct ms_clients {
    pthread_mutex_t mu;
    entry_t *b[NBUCKETS];
    group_t *g[NBUCKETS];
    size_t n, max_total, max_per_group;
    void (*on_expire)(void *owner);
};

static uint32_t hash(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h;
}

ms_clients_t *ms_clients_new(void (*on_expire)(void *owner), size_t max_total, size_t max_per_group)
{
    if (!max_total || !max_per_group)
        return NULL;
    ms_clients_t *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    pthread_mutex_init(&t->mu, NULL);
    t->on_expire = on_expire;
    t->max_total = max_total;
    t->max_per_group = max_per_group;
    return t;
}

/* Caller holds mu. The group named name, created when absent (NULL when
 * out of memory). */
static group_t *group_get(ms_clients_t *t, const char *name)
{
    uint32_t i = hash(name) % NBUCKETS;
    for (group_t *g = t->g[i]; g; g = g->next)
        if (strcmp(g->name, name) == 0)
            return g;
    size_t len = strlen(name);
    group_t *g = malloc(sizeof(*g) + len + 1);
    if (!g)
        return NULL;
    memcpy(g->name, name, len + 1);
    g->n = 0;
    g->next = t->g[i];
    t->g[i] = g;
    return g;
}

/* Caller holds mu: frees g when it has no entry left. */
static void group_put(ms_clients_t *t, group_t *g)
{
    if (g->n)
        return;
    group_t **pp = &t->g[hash(g->name) % NBUCKETS];
    while (*pp != g)
        pp = &(*pp)->next;
    *pp = g->next;
    free(g);
}

int ms_clients_touch(ms_clients_t *t, const char *key, const char *group, void *owner,
                     int64_t now_ms)
{
    uint32_t i = hash(key) % NBUCKETS;
    pthread_mutex_lock(&t->mu);
    for (entry_t *e = t->b[i]; e; e = e->next)
        if (strcmp(e->key, key) == 0) {
            e->last_ms = now_ms;
            pthread_mutex_unlock(&t->mu);
            return 0;
        }
    int rc = -ENOSPC;
    group_t *g = NULL;
    entry_t *e = NULL;
    if (t->n >= t->max_total)
        goto out;
    rc = -ENOMEM;
    g = group_get(t, group ? group : "");
    if (!g)
        goto out;
    rc = -ENOSPC;
    if (g->n >= t->max_per_group)
        goto out;
    rc = -ENOMEM;
    size_t klen = strlen(key);
    e = malloc(sizeof(*e) + klen + 1);
    if (!e)
        goto out;
    memcpy(e->key, key, klen + 1);
    e->group = g;
    e->owner = owner;
    e->last_ms = now_ms;
    e->next = t->b[i];
    t->b[i] = e;
    t->n++;
    g->n++;
    rc = 1;
out:
    if (g && rc != 1)
        group_put(t, g);
    pthread_mutex_unlock(&t->mu);
    return rc;
}

static size_t expire(ms_clients_t *t, int64_t now_ms, int64_t ttl_ms, int all)
{
    entry_t *dead = NULL;
    size_t n = 0;
    pthread_mutex_lock(&t->mu);
    for (size_t i = 0; i < NBUCKETS; i++) {
        entry_t **pp = &t->b[i];
        while (*pp) {
            entry_t *e = *pp;
            if (all || now_ms - e->last_ms > ttl_ms) {
                *pp = e->next;
                e->next = dead;
                dead = e;
                t->n--;
                e->group->n--;
                group_put(t, e->group);
                e->group = NULL;
                n++;
            } else {
                pp = &e->next;
            }
        }
    }
    pthread_mutex_unlock(&t->mu);
    while (dead) {
        entry_t *e = dead;
        dead = e->next;
        if (t->on_expire)
            t->on_expire(e->owner);
        free(e);
    }
    return n;
}

size_t ms_clients_sweep(ms_clients_t *t, int64_t now_ms, int64_t ttl_ms)
{
    return expire(t, now_ms, ttl_ms, 0);
}

size_t ms_clients_count(ms_clients_t *t)
{
    pthread_mutex_lock(&t->mu);
    size_t n = t->n;
    pthread_mutex_unlock(&t->mu);
    return n;
}

void ms_clients_free(ms_clients_t *t)
{
    if (!t)
        return;
    expire(t, 0, 0, 1);
    pthread_mutex_destroy(&t->mu);
    free(t);
}
