/* Reconciler: desired state (the replicated streams table) -> the local
 * stream registry. See reconciler.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "node/reconciler.h"
#include "util/log.h"

typedef struct {
    char uid[64];
    int64_t rev;
    ms_run_state_t desired;
    int seen;
} entry_t;

struct ms_reconciler {
    char name[MS_NAME_MAX];
    char ctx[MS_NAME_MAX + 16];
    int (*apply)(const ms_stream_cfg_t *, ms_run_state_t);
    int (*remove)(const char *uid);
    entry_t *v;
    size_t n, cap;
    int pending; /* not applied by the last run (retried by the next) */
};

ms_reconciler_t *ms_reconciler_new(const char *node_name,
                                   int (*apply)(const ms_stream_cfg_t *, ms_run_state_t),
                                   int (*remove)(const char *uid))
{
    ms_reconciler_t *rc = calloc(1, sizeof *rc);
    if (!rc)
        return NULL;
    snprintf(rc->name, sizeof rc->name, "%s", node_name);
    snprintf(rc->ctx, sizeof rc->ctx, "[node %s] [reconciler]", node_name);
    rc->apply = apply;
    rc->remove = remove;
    return rc;
}

void ms_reconciler_free(ms_reconciler_t *rc)
{
    if (!rc)
        return;
    free(rc->v);
    free(rc);
}

int ms_reconciler_cfg_from_state(json_t *st, ms_stream_cfg_t *out)
{
    ms_stream_cfg_defaults(out);
    if (!json_is_object(st))
        return -EINVAL;
    json_t *c = json_deep_copy(st);
    if (!c)
        return -ENOMEM;
    json_object_del(c, "placement");
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(c, tmp, k, v)
    {
        if (json_is_null(v))
            json_object_del(c, k);
    }
    char *text = json_dumps(c, JSON_COMPACT);
    json_decref(c);
    if (!text)
        return -ENOMEM;
    ms_errlist_t errs = {0};
    int r = ms_stream_cfg_parse(text, strlen(text), "state", out, &errs);
    if (r < 0 && errs.n)
        MS_WARN("[reconciler]", "stream from the state does not parse: %s", errs.lines[0]);
    ms_errlist_free(&errs);
    free(text);
    return r < 0 ? -EINVAL : 0;
}

static entry_t *find(ms_reconciler_t *rc, const char *uid)
{
    for (size_t i = 0; i < rc->n; i++)
        if (strcmp(rc->v[i].uid, uid) == 0)
            return &rc->v[i];
    return NULL;
}

static entry_t *add(ms_reconciler_t *rc, const char *uid)
{
    if (rc->n == rc->cap) {
        size_t cap = rc->cap ? rc->cap * 2 : 32;
        entry_t *nv = realloc(rc->v, cap * sizeof *nv);
        if (!nv)
            return NULL;
        rc->v = nv;
        rc->cap = cap;
    }
    entry_t *e = &rc->v[rc->n++];
    memset(e, 0, sizeof *e);
    snprintf(e->uid, sizeof e->uid, "%s", uid);
    e->rev = -1;
    return e;
}

int ms_reconciler_pending(const ms_reconciler_t *rc)
{
    return rc->pending;
}

int ms_reconciler_run(ms_reconciler_t *rc, json_t *streams, int member)
{
    int touched = 0, pending = 0;
    for (size_t i = 0; i < rc->n; i++)
        rc->v[i].seen = 0;
    size_t i;
    json_t *st;
    /* first pass: mark what stays, so removals happen before adds and a
     * name freed by a removal can be taken by another uid */
    json_array_foreach(streams, i, st)
    {
        const char *uid = json_string_value(json_object_get(st, "uid"));
        entry_t *e = uid ? find(rc, uid) : NULL;
        if (e)
            e->seen = 1;
    }
    for (size_t j = 0; j < rc->n;) {
        if (!rc->v[j].seen) {
            MS_INFO(rc->ctx, "stream %s left the state: removing", rc->v[j].uid);
            rc->remove(rc->v[j].uid);
            rc->v[j] = rc->v[--rc->n];
            touched++;
            continue;
        }
        j++;
    }
    json_array_foreach(streams, i, st)
    {
        const char *uid = json_string_value(json_object_get(st, "uid"));
        json_t *pl = json_object_get(st, "placement");
        if (!uid)
            continue;
        int64_t rev = json_integer_value(json_object_get(pl, "rev"));
        const char *prim = json_string_value(json_object_get(pl, "primary"));
        ms_run_state_t want =
            member && prim && strcmp(prim, rc->name) == 0 ? MS_RUN_ACTIVE : MS_RUN_SUSPEND;
        entry_t *e = find(rc, uid);
        if (e && e->rev == rev && e->desired == want)
            continue;
        ms_stream_cfg_t cfg;
        if (ms_reconciler_cfg_from_state(st, &cfg) < 0) {
            ms_stream_cfg_free(&cfg);
            pending++;
            continue;
        }
        int r = rc->apply(&cfg, want);
        ms_stream_cfg_free(&cfg);
        if (r < 0) {
            MS_WARN(rc->ctx, "stream %s: cannot apply: %s", uid, strerror(-r));
            pending++;
            continue; /* retried at the next run */
        }
        if (!e && !(e = add(rc, uid))) {
            pending++;
            continue;
        }
        if (e->desired != want || e->rev < 0)
            MS_INFO(rc->ctx, "stream %s: %s", uid,
                    want == MS_RUN_ACTIVE ? "runs here" : "held suspended");
        e->rev = rev;
        e->desired = want;
        touched++;
    }
    rc->pending = pending;
    return touched;
}

int ms_reconciler_restart(ms_reconciler_t *rc, const char *uid)
{
    entry_t *e = find(rc, uid);
    if (!e)
        return -ENOENT;
    if (e->desired != MS_RUN_ACTIVE)
        return -EAGAIN;
    return ms_streams_restart(uid);
}
