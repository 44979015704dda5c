/* The local placement view. See placement_view.h. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/placement_view.h"

typedef struct {
    char uid[64], name[128];
    ms_placement_view_t v;
} row_t;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static row_t *g_rows, *g_next;
static size_t g_n, g_nnext, g_cap;
static char g_self[64];

void ms_placement_view_begin(const char *self)
{
    snprintf(g_self, sizeof g_self, "%s", self ? self : "");
    g_next = NULL;
    g_nnext = g_cap = 0;
}

void ms_placement_view_put(const char *uid, const char *name, const char *primary,
                           const char *backup, const char *primary_http, int transferred)
{
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

void ms_placement_view_end(void)
{
    pthread_mutex_lock(&g_mu);
    row_t *old = g_rows;
    g_rows = g_next;
    g_n = g_nnext;
    pthread_mutex_unlock(&g_mu);
    free(old);
    g_next = NULL;
    g_nnext = g_cap = 0;
}

int ms_placement_view_get(const char *uid_or_name, ms_placement_view_t *out)
{
    int rc = -ENOENT;
    if (!uid_or_name)
        return rc;
    pthread_mutex_lock(&g_mu);
    for (size_t i = 0; i < g_n; i++)
        if (strcmp(g_rows[i].uid, uid_or_name) == 0 || strcmp(g_rows[i].name, uid_or_name) == 0) {
            *out = g_rows[i].v;
            rc = 0;
            break;
        }
    pthread_mutex_unlock(&g_mu);
    return rc;
}
