/* The node's playback sessions (docs/api.md "Sessions"): viewers of HLS and
 * the other short-lived outputs, and connection sessions (RTSP, live.mp4).
 * HTTP is stateless, so an HLS "client" is a key (stream and client
 * address, built by the caller) seen within the last MS_HLS_CLIENT_TTL_MS;
 * a connection session lives from ms_clients_open to ms_clients_close. A
 * chained hash table under one mutex; expiry callbacks run outside the
 * lock, kick callbacks under it (so that a closed session is never kicked).
 *
 * Bounded so that one client cannot inflate the count (or the memory)
 * cheaply: at most max_per_group entries per group (the caller's client
 * address, an IPv6 /64) and max_total in all; a key past either cap is
 * not counted. */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
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

struct ms_session {
    struct ms_session *next;
    group_t *group;
    void *owner;
    int64_t last_ms;
    ms_session_info_t info;
    char uid[64];
    int conn; /* a connection session: removed by ms_clients_close only */
    void (*kick)(void *ctx, uint64_t arg);
    void *kick_ctx;
    uint64_t kick_arg;
    char key[];
};
typedef struct ms_session entry_t;

/* A refused key (an HLS session ended by an administrator) until until_ms. */
typedef struct ban {
    struct ban *next;
    int64_t until_ms;
    char key[];
} ban_t;

struct ms_clients {
    pthread_mutex_t mu;
    entry_t *b[NBUCKETS];
    group_t *g[NBUCKETS];
    ban_t *bans[NBUCKETS];
    size_t n, nbans, max_total, max_per_group;
    uint64_t next_id;
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

/* Copies text into dst as printable ASCII (others become '?'), so that
 * every string of the table is valid JSON text. */
static void copy_text(char *dst, size_t cap, const char *src)
{
    size_t i = 0;
    for (; src && src[i] && i + 1 < cap; i++) {
        unsigned char ch = (unsigned char)src[i];
        dst[i] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    dst[i] = '\0';
}

/* Caller holds mu: fills the metadata of a new entry. */
static void meta_set(ms_clients_t *t, entry_t *e, const ms_session_meta_t *m)
{
    memset(&e->info, 0, sizeof e->info);
    snprintf(e->info.id, sizeof e->info.id, "%llx", (unsigned long long)++t->next_id);
    e->uid[0] = '\0';
    if (!m)
        return;
    copy_text(e->uid, sizeof e->uid, m->uid);
    copy_text(e->info.protocol, sizeof e->info.protocol, m->protocol);
    copy_text(e->info.ip, sizeof e->info.ip, m->ip);
    copy_text(e->info.user_agent, sizeof e->info.user_agent, m->user_agent);
    e->info.since = m->now_s;
    e->info.bytes = m->bytes;
}

int ms_clients_touch(ms_clients_t *t, const char *key, const char *group, void *owner,
                     int64_t now_ms)
{
    return ms_clients_touch_meta(t, key, group, owner, now_ms, NULL);
}

int ms_clients_touch_meta(ms_clients_t *t, const char *key, const char *group, void *owner,
                          int64_t now_ms, const ms_session_meta_t *meta)
{
    uint32_t i = hash(key) % NBUCKETS;
    pthread_mutex_lock(&t->mu);
    for (entry_t *e = t->b[i]; e; e = e->next)
        if (strcmp(e->key, key) == 0) {
            e->last_ms = now_ms;
            if (meta) {
                e->info.bytes += meta->bytes;
                if (meta->user_agent)
                    copy_text(e->info.user_agent, sizeof e->info.user_agent, meta->user_agent);
                /* a client that once blocked on a part is an LL-HLS one */
                if (meta->protocol && strcmp(meta->protocol, "llhls") == 0 &&
                    strcmp(e->info.protocol, "hls") == 0)
                    copy_text(e->info.protocol, sizeof e->info.protocol, meta->protocol);
            }
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
    e->conn = 0;
    e->kick = NULL;
    e->kick_ctx = NULL;
    e->kick_arg = 0;
    meta_set(t, e, meta);
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
            if (all || (!e->conn && now_ms - e->last_ms > ttl_ms)) {
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
        if (t->on_expire && !e->conn) /* a connection's owner is not ours */
            t->on_expire(e->owner);
        free(e);
    }
    return n;
}

/* Caller holds mu: drops the bans that ended before now_ms (all with
 * all). */
static void bans_expire(ms_clients_t *t, int64_t now_ms, int all)
{
    for (size_t i = 0; i < NBUCKETS; i++) {
        ban_t **pp = &t->bans[i];
        while (*pp) {
            ban_t *b = *pp;
            if (all || b->until_ms <= now_ms) {
                *pp = b->next;
                free(b);
                t->nbans--;
            } else {
                pp = &b->next;
            }
        }
    }
}

size_t ms_clients_sweep(ms_clients_t *t, int64_t now_ms, int64_t ttl_ms)
{
    pthread_mutex_lock(&t->mu);
    bans_expire(t, now_ms, 0);
    pthread_mutex_unlock(&t->mu);
    return expire(t, now_ms, ttl_ms, 0);
}

ms_session_t *ms_clients_open(ms_clients_t *t, const char *group, const ms_session_meta_t *meta,
                              void (*kick)(void *ctx, uint64_t arg), void *kick_ctx,
                              uint64_t kick_arg, int64_t now_ms)
{
    assert(meta && kick);
    pthread_mutex_lock(&t->mu);
    entry_t *e = NULL;
    group_t *g = NULL;
    if (t->n >= t->max_total)
        goto out;
    g = group_get(t, group ? group : "");
    if (!g || g->n >= t->max_per_group)
        goto out;
    char key[40];
    /* a key no HLS key can be (those start with a stream uid) */
    int klen = snprintf(key, sizeof key, "\n%llx", (unsigned long long)(t->next_id + 1));
    e = malloc(sizeof(*e) + (size_t)klen + 1);
    if (!e)
        goto out;
    memcpy(e->key, key, (size_t)klen + 1);
    e->group = g;
    e->owner = NULL;
    e->last_ms = now_ms;
    e->conn = 1;
    e->kick = kick;
    e->kick_ctx = kick_ctx;
    e->kick_arg = kick_arg;
    meta_set(t, e, meta);
    uint32_t i = hash(e->key) % NBUCKETS;
    e->next = t->b[i];
    t->b[i] = e;
    t->n++;
    g->n++;
out:
    if (g && !e)
        group_put(t, g);
    pthread_mutex_unlock(&t->mu);
    return e;
}

void ms_clients_bytes(ms_clients_t *t, ms_session_t *e, uint64_t bytes)
{
    if (!e)
        return;
    pthread_mutex_lock(&t->mu);
    e->info.bytes = bytes;
    pthread_mutex_unlock(&t->mu);
}

void ms_clients_close(ms_clients_t *t, ms_session_t *e)
{
    if (!e)
        return;
    pthread_mutex_lock(&t->mu);
    entry_t **pp = &t->b[hash(e->key) % NBUCKETS];
    while (*pp && *pp != e)
        pp = &(*pp)->next;
    assert(*pp == e);
    *pp = e->next;
    t->n--;
    e->group->n--;
    group_put(t, e->group);
    pthread_mutex_unlock(&t->mu);
    free(e);
}

int ms_clients_list(ms_clients_t *t, const char *uid, ms_session_info_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&t->mu);
    size_t cap = 0;
    for (size_t i = 0; i < NBUCKETS; i++)
        for (entry_t *e = t->b[i]; e; e = e->next)
            cap += strcmp(e->uid, uid) == 0;
    ms_session_info_t *v = cap ? malloc(cap * sizeof(*v)) : NULL;
    if (cap && !v) {
        pthread_mutex_unlock(&t->mu);
        return -ENOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < NBUCKETS; i++)
        for (entry_t *e = t->b[i]; e; e = e->next)
            if (strcmp(e->uid, uid) == 0)
                v[k++] = e->info;
    pthread_mutex_unlock(&t->mu);
    *out = v;
    *n = k;
    return 0;
}

int ms_clients_end(ms_clients_t *t, const char *uid, const char *id, int64_t now_ms, int64_t ban_ms)
{
    entry_t *dead = NULL;
    int rc = -ENOENT;
    pthread_mutex_lock(&t->mu);
    for (size_t i = 0; i < NBUCKETS && rc == -ENOENT; i++) {
        for (entry_t **pp = &t->b[i]; *pp; pp = &(*pp)->next) {
            entry_t *e = *pp;
            if (strcmp(e->uid, uid) != 0 || strcmp(e->info.id, id) != 0)
                continue;
            rc = 0;
            if (e->conn) {
                /* the owner closes it (and calls ms_clients_close) */
                e->kick(e->kick_ctx, e->kick_arg);
                break;
            }
            /* an HLS session: refuse its key for ban_ms, drop the entry */
            size_t klen = strlen(e->key);
            uint32_t bi = hash(e->key) % NBUCKETS;
            ban_t *b = NULL;
            for (b = t->bans[bi]; b; b = b->next)
                if (strcmp(b->key, e->key) == 0)
                    break;
            if (b) {
                b->until_ms = now_ms + ban_ms;
            } else if (t->nbans < t->max_total && (b = malloc(sizeof(*b) + klen + 1))) {
                memcpy(b->key, e->key, klen + 1);
                b->until_ms = now_ms + ban_ms;
                b->next = t->bans[bi];
                t->bans[bi] = b;
                t->nbans++;
            } else {
                rc = -ENOMEM;
                break;
            }
            *pp = e->next;
            t->n--;
            e->group->n--;
            group_put(t, e->group);
            e->group = NULL;
            dead = e;
            break;
        }
    }
    pthread_mutex_unlock(&t->mu);
    if (dead) {
        if (t->on_expire)
            t->on_expire(dead->owner);
        free(dead);
    }
    return rc;
}

int ms_clients_refused(ms_clients_t *t, const char *key, int64_t now_ms)
{
    int r = 0;
    pthread_mutex_lock(&t->mu);
    for (ban_t *b = t->bans[hash(key) % NBUCKETS]; b; b = b->next)
        if (strcmp(b->key, key) == 0) {
            r = b->until_ms > now_ms;
            break;
        }
    pthread_mutex_unlock(&t->mu);
    return r;
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
    bans_expire(t, 0, 1);
    pthread_mutex_destroy(&t->mu);
    free(t);
}
