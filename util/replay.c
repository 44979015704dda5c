/* Replay cache: an open-addressing hash set (linear probing) of nonces with
 * an expiry each; see util/replay.h. Expired entries stay in place until
 * the table is rebuilt (when the occupied slots reach cap), so probe chains
 * are never broken by a removal. */
#include "util/replay.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint8_t nonce[MS_REPLAY_NONCE_LEN];
    int64_t exp; /* 0: empty slot */
} slot_t;

struct ms_replay {
    pthread_mutex_t mu;
    size_t cap;   /* live entries at most */
    size_t nslot; /* power of two, >= 2 * cap */
    size_t used;  /* occupied slots (live or expired) */
    slot_t *s;
    slot_t *scratch; /* cap entries, for rebuilds */
};

ms_replay_t *ms_replay_new(size_t cap)
{
    assert(cap >= 1);
    ms_replay_t *rc = calloc(1, sizeof *rc);
    if (!rc)
        return NULL;
    rc->cap = cap;
    rc->nslot = 4;
    while (rc->nslot < 2 * cap)
        rc->nslot *= 2;
    rc->s = calloc(rc->nslot, sizeof *rc->s);
    rc->scratch = calloc(cap, sizeof *rc->scratch);
    if (!rc->s || !rc->scratch) {
        ms_replay_free(rc);
        return NULL;
    }
    pthread_mutex_init(&rc->mu, NULL);
    return rc;
}

void ms_replay_free(ms_replay_t *rc)
{
    if (!rc)
        return;
    if (rc->s && rc->scratch)
        pthread_mutex_destroy(&rc->mu);
    free(rc->s);
    free(rc->scratch);
    free(rc);
}

/* The nonces are random: their first bytes are a good enough hash. */
static size_t slot_of(const ms_replay_t *rc, const uint8_t *nonce)
{
    uint64_t h;
    memcpy(&h, nonce, sizeof h);
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 32;
    return (size_t)h & (rc->nslot - 1);
}

/* Drops the expired entries. Returns the live count. */
static size_t rebuild(ms_replay_t *rc, int64_t now_ms)
{
    size_t n = 0;
    for (size_t i = 0; i < rc->nslot; i++)
        if (rc->s[i].exp > now_ms) {
            assert(n < rc->cap);
            rc->scratch[n++] = rc->s[i];
        }
    memset(rc->s, 0, rc->nslot * sizeof *rc->s);
    for (size_t k = 0; k < n; k++) {
        size_t i = slot_of(rc, rc->scratch[k].nonce);
        while (rc->s[i].exp)
            i = (i + 1) & (rc->nslot - 1);
        rc->s[i] = rc->scratch[k];
    }
    rc->used = n;
    return n;
}

int ms_replay_check_add(ms_replay_t *rc, const uint8_t nonce[MS_REPLAY_NONCE_LEN],
                        int64_t expires_ms, int64_t now_ms)
{
    assert(rc && nonce);
    pthread_mutex_lock(&rc->mu);
    int r = 0;
    size_t i = slot_of(rc, nonce), reuse = SIZE_MAX;
    for (; rc->s[i].exp; i = (i + 1) & (rc->nslot - 1)) {
        if (memcmp(rc->s[i].nonce, nonce, MS_REPLAY_NONCE_LEN) == 0) {
            if (rc->s[i].exp > now_ms) {
                r = -EALREADY;
                goto out;
            }
            reuse = i; /* the same nonce, expired: take its slot */
            break;
        }
    }
    if (expires_ms <= now_ms)
        goto out; /* already outside its window: nothing to remember */
    if (reuse != SIZE_MAX) {
        rc->s[reuse].exp = expires_ms;
        goto out;
    }
    if (rc->used >= rc->cap) {
        if (rebuild(rc, now_ms) >= rc->cap) {
            r = -EBUSY;
            goto out;
        }
        i = slot_of(rc, nonce);
        while (rc->s[i].exp)
            i = (i + 1) & (rc->nslot - 1);
    }
    memcpy(rc->s[i].nonce, nonce, MS_REPLAY_NONCE_LEN);
    rc->s[i].exp = expires_ms;
    rc->used++;
out:
    pthread_mutex_unlock(&rc->mu);
    return r;
}

size_t ms_replay_count(ms_replay_t *rc)
{
    pthread_mutex_lock(&rc->mu);
    size_t n = rc->used;
    pthread_mutex_unlock(&rc->mu);
    return n;
}
