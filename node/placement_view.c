/* The local placement view. See placement_view.h. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/placement_view.h"
#include "util/owner.h"

typedef struct {
    char uid[64], name[128];
    ms_placement_view_t v;
} row_t;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static row_t *g_rows, *g_next;
/* Row indexes sorted by uid and by name: the stream status asks the view
 * for every stream (a load report: all of them twice a second), a linear
 * search made that quadratic. */
static size_t *g_by_uid, *g_by_name;
static size_t g_n, g_nnext, g_cap;
static char g_self[64];
/* The next view is built without a lock: by the control loop only. */
static ms_owner_t g_builder;

void ms_placement_view_begin(const char *self)
{
    MS_ASSERT_OWNER(&g_builder);
    snprintf(g_self, sizeof g_self, "%s", self ? self : "");
    g_next = NULL;
    g_nnext = g_cap = 0;
}

void ms_placement_view_put(const char *uid, const char *name, const char *primary,
                           const char *backup, const char *primary_http, int transferred)
{
    MS_ASSERT_OWNER(&g_builder);
    if (!uid)
        return;
    if (g_nnext == g_cap) {
        size_t cap = g_cap ? g_cap * 2 : 16;
        row_t *n = realloc(g_next, cap * sizeof *n);
        if (!n)
            return;
        g_next = n;
        g_cap = cap;
    }
    row_t *r = &g_next[g_nnext++];
    memset(r, 0, sizeof *r);
    snprintf(r->uid, sizeof r->uid, "%s", uid);
    snprintf(r->name, sizeof r->name, "%s", name ? name : "");
    snprintf(r->v.primary, sizeof r->v.primary, "%s", primary ? primary : "");
    snprintf(r->v.backup, sizeof r->v.backup, "%s", backup ? backup : "");
    snprintf(r->v.primary_http, sizeof r->v.primary_http, "%s", primary_http ? primary_http : "");
    r->v.transferred = transferred;
    r->v.self_primary = primary && strcmp(primary, g_self) == 0;
}

void ms_placement_view_annotate(const char *uid, int from_file, const char *reason)
{
    MS_ASSERT_OWNER(&g_builder);
    if (!uid || g_nnext == 0 || strcmp(g_next[g_nnext - 1].uid, uid) != 0)
        return;
    row_t *r = &g_next[g_nnext - 1];
    r->v.from_file = from_file;
    snprintf(r->v.reason, sizeof r->v.reason, "%s", reason ? reason : "");
}

/* qsort comparators over the rows being installed (control loop only). */
static const row_t *g_sorting;

static int by_uid(const void *a, const void *b)
{
    const size_t *x = a, *y = b;
    int c = strcmp(g_sorting[*x].uid, g_sorting[*y].uid);
    return c ? c : (*x > *y) - (*x < *y);
}

static int by_name(const void *a, const void *b)
{
    const size_t *x = a, *y = b;
    int c = strcmp(g_sorting[*x].name, g_sorting[*y].name);
    return c ? c : (*x > *y) - (*x < *y);
}

void ms_placement_view_end(void)
{
    MS_ASSERT_OWNER(&g_builder);
    size_t n = g_nnext;
    size_t *bu = n ? malloc(n * sizeof *bu) : NULL, *bn = n ? malloc(n * sizeof *bn) : NULL;
    if (n && (!bu || !bn)) { /* keep the old view */
        free(bu);
        free(bn);
        free(g_next);
        g_next = NULL;
        g_nnext = g_cap = 0;
        return;
    }
    for (size_t i = 0; i < n; i++)
        bu[i] = bn[i] = i;
    g_sorting = g_next;
    if (n) {
        qsort(bu, n, sizeof *bu, by_uid);
        qsort(bn, n, sizeof *bn, by_name);
    }
    g_sorting = NULL;
    pthread_mutex_lock(&g_mu);
    row_t *old = g_rows;
    size_t *old_u = g_by_uid, *old_n = g_by_name;
    g_rows = g_next;
    g_by_uid = bu;
    g_by_name = bn;
    g_n = n;
    pthread_mutex_unlock(&g_mu);
    free(old);
    free(old_u);
    free(old_n);
    g_next = NULL;
    g_nnext = g_cap = 0;
}

/* The first row (in put order) whose uid (uids: 1) or name (names: 0)
 * is key, as an index; g_n when none. Under g_mu. */
static size_t find(const size_t *idx, int uids, const char *key)
{
    size_t lo = 0, hi = g_n;
    while (lo < hi) { /* the first entry not below key */
        size_t mid = lo + (hi - lo) / 2;
        const row_t *r = &g_rows[idx[mid]];
        if (strcmp(uids ? r->uid : r->name, key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < g_n && strcmp(uids ? g_rows[idx[lo]].uid : g_rows[idx[lo]].name, key) == 0)
        return idx[lo]; /* equal keys are sorted by put order */
    return g_n;
}

int ms_placement_view_get(const char *uid_or_name, ms_placement_view_t *out)
{
    int rc = -ENOENT;
    if (!uid_or_name)
        return rc;
    pthread_mutex_lock(&g_mu);
    /* the first row matching by uid or by name, as a scan in put order */
    size_t u = find(g_by_uid, 1, uid_or_name), n = find(g_by_name, 0, uid_or_name);
    size_t i = u < n ? u : n;
    if (i < g_n) {
        *out = g_rows[i].v;
        rc = 0;
    }
    pthread_mutex_unlock(&g_mu);
    return rc;
}
