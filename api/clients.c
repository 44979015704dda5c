/* HLS viewers: HLS is stateless HTTP, so a "client" is a key (stream, IP,
 * User-Agent, token) seen within the last MS_HLS_CLIENT_TTL_MS. A chained
 * hash table under one mutex; expiry callbacks run outside the lock. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"

#define NBUCKETS 1024

typedef struct entry {
    struct entry *next;
    void *owner;
    int64_t last_ms;
    char key[];
} entry_t;

struct ms_clients {
    pthread_mutex_t mu;
    entry_t *b[NBUCKETS];
    size_t n;
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

ms_clients_t *ms_clients_new(void (*on_expire)(void *owner))
{
    ms_clients_t *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    pthread_mutex_init(&t->mu, NULL);
    t->on_expire = on_expire;
    return t;
}

int ms_clients_touch(ms_clients_t *t, const char *key, void *owner, int64_t now_ms)
{
    uint32_t i = hash(key) % NBUCKETS;
    pthread_mutex_lock(&t->mu);
    for (entry_t *e = t->b[i]; e; e = e->next)
        if (strcmp(e->key, key) == 0) {
            e->last_ms = now_ms;
            pthread_mutex_unlock(&t->mu);
            return 0;
        }
    size_t klen = strlen(key);
    entry_t *e = malloc(sizeof(*e) + klen + 1);
    if (!e) {
        pthread_mutex_unlock(&t->mu);
        return -ENOMEM;
    }
    memcpy(e->key, key, klen + 1);
    e->owner = owner;
    e->last_ms = now_ms;
    e->next = t->b[i];
    t->b[i] = e;
    t->n++;
    pthread_mutex_unlock(&t->mu);
    return 1;
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
