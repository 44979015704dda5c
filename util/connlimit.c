/* Per-address connection counting (util/connlimit.h): a chained hash table
 * of malloc'd entries, removed when their count drops to zero. */
#include "util/connlimit.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define NBUCKETS 1021

typedef struct cl_entry {
    struct cl_entry *next;
    ms_ip_t ip;
    uint32_t n;
} cl_entry_t;

struct ms_connlimit {
    pthread_mutex_t mu;
    uint32_t per_ip;
    size_t max_addrs, naddrs;
    cl_entry_t *b[NBUCKETS];
};

static size_t bucket(const ms_ip_t *ip)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (int i = 0; i < 16; i++) {
        h ^= ip->a[i];
        h *= 16777619u;
    }
    return h % NBUCKETS;
}

ms_connlimit_t *ms_connlimit_new(uint32_t per_ip, size_t max_addrs)
{
    if (per_ip == 0 || max_addrs == 0)
        return NULL;
    ms_connlimit_t *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    pthread_mutex_init(&t->mu, NULL);
    t->per_ip = per_ip;
    t->max_addrs = max_addrs;
    return t;
}

void ms_connlimit_free(ms_connlimit_t *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < NBUCKETS; i++)
        while (t->b[i]) {
            cl_entry_t *e = t->b[i];
            t->b[i] = e->next;
            free(e);
        }
    pthread_mutex_destroy(&t->mu);
    free(t);
}

static cl_entry_t **find(ms_connlimit_t *t, const ms_ip_t *ip)
{
    cl_entry_t **pp = &t->b[bucket(ip)];
    while (*pp && !ms_ip_equal(&(*pp)->ip, ip))
        pp = &(*pp)->next;
    return pp;
}

int ms_connlimit_room(ms_connlimit_t *t, const ms_ip_t *ip)
{
    assert(t && ip);
    pthread_mutex_lock(&t->mu);
    cl_entry_t *e = *find(t, ip);
    int ok = e ? e->n < t->per_ip : t->naddrs < t->max_addrs;
    pthread_mutex_unlock(&t->mu);
    return ok;
}

static int acquire(ms_connlimit_t *t, const ms_ip_t *ip, int force)
{
    assert(t && ip);
    int rc = 0;
    pthread_mutex_lock(&t->mu);
    cl_entry_t **pp = find(t, ip);
    if (*pp) {
        if (!force && (*pp)->n >= t->per_ip)
            rc = -EBUSY;
        else
            (*pp)->n++;
    } else if (t->naddrs >= t->max_addrs) {
        rc = -ENOSPC;
    } else {
        cl_entry_t *e = calloc(1, sizeof *e);
        if (!e) {
            rc = -ENOMEM;
        } else {
            e->ip = *ip;
            e->n = 1;
            *pp = e;
            t->naddrs++;
        }
    }
    pthread_mutex_unlock(&t->mu);
    return rc;
}

int ms_connlimit_acquire(ms_connlimit_t *t, const ms_ip_t *ip)
{
    return acquire(t, ip, 0);
}

int ms_connlimit_acquire_force(ms_connlimit_t *t, const ms_ip_t *ip)
{
    return acquire(t, ip, 1);
}

void ms_connlimit_release(ms_connlimit_t *t, const ms_ip_t *ip)
{
    assert(t && ip);
    pthread_mutex_lock(&t->mu);
    cl_entry_t **pp = find(t, ip);
    cl_entry_t *e = *pp;
    assert(e && e->n > 0);
    if (e && --e->n == 0) {
        *pp = e->next;
        free(e);
        t->naddrs--;
    }
    pthread_mutex_unlock(&t->mu);
}

uint32_t ms_connlimit_count(ms_connlimit_t *t, const ms_ip_t *ip)
{
    pthread_mutex_lock(&t->mu);
    cl_entry_t *e = *find(t, ip);
    uint32_t n = e ? e->n : 0;
    pthread_mutex_unlock(&t->mu);
    return n;
}
