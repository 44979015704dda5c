/* The stream directory (node/loader.h). */
#include "node/loader.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "node/uid.h"
#include "util/log.h"

#define FILE_MAX_BYTES (1u << 20) /* a stream file is a few hundred bytes */

void ms_stream_set_free(ms_stream_set_t *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        ms_stream_cfg_free(&s->v[i]);
    free(s->v);
    for (size_t i = 0; i < s->nfailed; i++)
        free(s->failed[i]);
    free(s->failed);
    memset(s, 0, sizeof *s);
}

static int add_failed(ms_stream_set_t *s, const char *path)
{
    char **nf = realloc(s->failed, (s->nfailed + 1) * sizeof *nf);
    if (!nf)
        return -ENOMEM;
    s->failed = nf;
    if (!(nf[s->nfailed] = strdup(path)))
        return -ENOMEM;
    s->nfailed++;
    return 0;
}

static int add_cfg(ms_stream_set_t *s, ms_stream_cfg_t *cfg)
{
    ms_stream_cfg_t *nv = realloc(s->v, (s->n + 1) * sizeof *nv);
    if (!nv)
        return -ENOMEM;
    s->v = nv;
    nv[s->n++] = *cfg; /* moved */
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int is_json_name(const char *n)
{
    size_t l = strlen(n);
    return n[0] != '.' && l > 5 && strcmp(n + l - 5, ".json") == 0;
}

/* Reads a whole small file: NULL with *err = errno on failure. */
static char *slurp(const char *path, size_t *len, int *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        *err = errno;
        return NULL;
    }
    char *buf = malloc(FILE_MAX_BYTES + 1);
    if (!buf) {
        fclose(f);
        *err = ENOMEM;
        return NULL;
    }
    size_t n = fread(buf, 1, FILE_MAX_BYTES + 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || n > FILE_MAX_BYTES) {
        free(buf);
        *err = bad ? EIO : EFBIG;
        return NULL;
    }
    *len = n;
    return buf;
}

/* One file: parse, derive the uid when absent, reject duplicates. */
static int scan_one(const char *dir, const char *fname, const char *node_name, ms_stream_set_t *out,
                    ms_errlist_t *errs)
{
    char path[MS_PATH_MAX];
    size_t dl = strlen(dir);
    while (dl > 1 && dir[dl - 1] == '/') /* "dir/" and "dir" name files alike */
        dl--;
    if (snprintf(path, sizeof path, "%.*s/%s", (int)dl, dir, fname) >= (int)sizeof path) {
        ms_errlist_add(errs, fname, "(file)", "path too long");
        return 0;
    }
    size_t len = 0;
    int err = 0;
    char *text = slurp(path, &len, &err);
    if (!text) {
        ms_errlist_add(errs, path, "(file)", "cannot read: %s", strerror(err));
        return add_failed(out, path);
    }
    ms_stream_cfg_t cfg;
    if (ms_stream_cfg_parse(text, len, path, &cfg, errs) < 0) {
        free(text);
        ms_stream_cfg_free(&cfg);
        return add_failed(out, path);
    }
    json_t *root = json_loadb(text, len, 0, NULL);
    if (root && !json_object_get(root, "uid")) {
        char uid[MS_UID_LEN];
        ms_uid_derive(node_name, fname, uid);
        snprintf(cfg.uid, sizeof cfg.uid, "%s", uid);
    }
    json_decref(root);
    free(text);
    for (size_t i = 0; i < out->n; i++) {
        const char *key = NULL;
        if (strcmp(out->v[i].name, cfg.name) == 0)
            key = "name";
        else if (strcmp(out->v[i].uid, cfg.uid) == 0)
            key = "uid";
        if (key) {
            ms_errlist_add(errs, path, key, "\"%s\" is already used by %s",
                           strcmp(key, "name") == 0 ? cfg.name : cfg.uid, out->v[i].source_file);
            ms_stream_cfg_free(&cfg);
            return add_failed(out, path);
        }
    }
    int r = add_cfg(out, &cfg);
    if (r < 0)
        ms_stream_cfg_free(&cfg);
    return r;
}

int ms_loader_scan(const char *dir, const char *node_name, ms_stream_set_t *out, ms_errlist_t *errs)
{
    memset(out, 0, sizeof *out);
    DIR *d = opendir(dir);
    if (!d) {
        int e = errno;
        ms_errlist_add(errs, dir, "(dir)", "cannot open the stream directory: %s", strerror(e));
        return -e;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    int r = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!is_json_name(de->d_name))
            continue;
        char path[MS_PATH_MAX];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            char **nn = realloc(names, cap * sizeof *nn);
            if (!nn) {
                r = -ENOMEM;
                break;
            }
            names = nn;
        }
        if (!(names[n] = strdup(de->d_name))) {
            r = -ENOMEM;
            break;
        }
        n++;
    }
    closedir(d);
    if (names)
        qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n && r == 0; i++)
        r = scan_one(dir, names[i], node_name, out, errs);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (r < 0) {
        ms_errlist_add(errs, dir, "(dir)", "out of memory");
        ms_stream_set_free(out);
    }
    return r;
}

static ssize_t find_uid(const ms_stream_set_t *s, const char *uid)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i].uid, uid) == 0)
            return (ssize_t)i;
    return -1;
}

static int is_failed(const ms_stream_set_t *s, const char *file)
{
    for (size_t i = 0; i < s->nfailed; i++)
        if (strcmp(s->failed[i], file) == 0)
            return 1;
    return 0;
}

long ms_loader_diff(const ms_stream_set_t *cur, const ms_stream_set_t *next,
                    ms_loader_action_t **out)
{
    *out = NULL;
    size_t cap = cur->n + next->n;
    ms_loader_action_t *a = calloc(cap ? cap : 1, sizeof *a);
    unsigned char *matched = calloc(next->n ? next->n : 1, 1);
    if (!a || !matched) {
        free(a);
        free(matched);
        return -ENOMEM;
    }
    size_t n = 0;
    /* pass 1: removals; pass 2: updates; pass 3: adds; pass 4: keeps */
    for (size_t i = 0; i < cur->n; i++) {
        ssize_t j = find_uid(next, cur->v[i].uid);
        if (j >= 0)
            matched[j] = 1;
        else if (!is_failed(next, cur->v[i].source_file))
            a[n++] = (ms_loader_action_t){MS_LOADER_REMOVE, i};
    }
    for (size_t i = 0; i < cur->n; i++) {
        ssize_t j = find_uid(next, cur->v[i].uid);
        if (j >= 0 && !ms_stream_cfg_equal(&cur->v[i], &next->v[j]))
            a[n++] = (ms_loader_action_t){MS_LOADER_UPDATE, (size_t)j};
    }
    for (size_t j = 0; j < next->n; j++)
        if (!matched[j])
            a[n++] = (ms_loader_action_t){MS_LOADER_ADD, j};
    for (size_t i = 0; i < cur->n; i++)
        if (find_uid(next, cur->v[i].uid) < 0 && is_failed(next, cur->v[i].source_file))
            a[n++] = (ms_loader_action_t){MS_LOADER_KEEP, i};
    free(matched);
    *out = a;
    return (long)n;
}

void ms_loader_init(ms_loader_t *l, const char *dir, const char *node_name,
                    ms_loader_apply_fn apply, ms_loader_remove_fn remove)
{
    memset(l, 0, sizeof *l);
    snprintf(l->dir, sizeof l->dir, "%s", dir ? dir : "");
    snprintf(l->node_name, sizeof l->node_name, "%s", node_name ? node_name : "");
    l->apply = apply;
    l->remove = remove;
}

void ms_loader_free(ms_loader_t *l)
{
    ms_stream_set_free(&l->cur);
}

static ms_run_state_t desired_of(const ms_stream_cfg_t *c)
{
    return c->enabled ? MS_RUN_ACTIVE : MS_RUN_SUSPEND;
}

int ms_loader_reload(ms_loader_t *l)
{
    char ctx[MS_NAME_MAX + 32];
    snprintf(ctx, sizeof ctx, "[node %s] [streams-dir]", l->node_name);
    if (!l->dir[0])
        return 0;
    ms_errlist_t errs = {0};
    ms_stream_set_t next;
    int r = ms_loader_scan(l->dir, l->node_name, &next, &errs);
    int problems = (int)errs.n;
    for (size_t i = 0; i < errs.n; i++)
        MS_ERROR(ctx, "%s", errs.lines[i]);
    ms_errlist_free(&errs);
    if (r < 0)
        return r;

    ms_loader_action_t *acts;
    long na = ms_loader_diff(&l->cur, &next, &acts);
    if (na < 0) {
        ms_stream_set_free(&next);
        return (int)na;
    }
    /* keep_next[j]: next->v[j] becomes current; keep_cur[i]: cur->v[i] stays */
    unsigned char *keep_next = calloc(next.n ? next.n : 1, 1);
    unsigned char *keep_cur = calloc(l->cur.n ? l->cur.n : 1, 1);
    if (!keep_next || !keep_cur) {
        free(keep_next);
        free(keep_cur);
        free(acts);
        ms_stream_set_free(&next);
        return -ENOMEM;
    }
    for (size_t j = 0; j < next.n; j++)
        keep_next[j] = find_uid(&l->cur, next.v[j].uid) >= 0; /* unchanged unless acted on */
    size_t added = 0, updated = 0, removed = 0;
    for (long k = 0; k < na; k++) {
        ms_loader_action_t *a = &acts[k];
        int rc;
        switch (a->op) {
        case MS_LOADER_REMOVE:
            rc = l->remove(l->cur.v[a->index].uid);
            if (rc < 0 && rc != -ENOENT)
                MS_ERROR(ctx, "%s: cannot remove stream %s: %s", l->cur.v[a->index].source_file,
                         l->cur.v[a->index].name, strerror(-rc));
            removed++;
            break;
        case MS_LOADER_UPDATE:
        case MS_LOADER_ADD: {
            const ms_stream_cfg_t *c = &next.v[a->index];
            rc = l->apply(c, desired_of(c));
            if (rc < 0) {
                problems++;
                MS_ERROR(ctx, "%s: name: cannot apply stream %s: %s", c->source_file, c->name,
                         rc == -EEXIST ? "the name is used by another stream" : strerror(-rc));
                keep_next[a->index] = 0;
                if (a->op == MS_LOADER_UPDATE) {
                    /* the old version keeps running and stays current */
                    ssize_t i = find_uid(&l->cur, c->uid);
                    if (i >= 0)
                        keep_cur[i] = 1;
                }
            } else {
                keep_next[a->index] = 1;
                if (a->op == MS_LOADER_ADD)
                    added++;
                else
                    updated++;
            }
            break;
        }
        case MS_LOADER_KEEP:
            keep_cur[a->index] = 1;
            MS_WARN(ctx, "%s: invalid now, stream %s keeps its last valid config",
                    l->cur.v[a->index].source_file, l->cur.v[a->index].name);
            break;
        }
    }
    ms_stream_set_t nc = {0};
    size_t total = 0;
    for (size_t j = 0; j < next.n; j++)
        total += keep_next[j];
    for (size_t i = 0; i < l->cur.n; i++)
        total += keep_cur[i];
    nc.v = calloc(total ? total : 1, sizeof *nc.v);
    if (nc.v) {
        for (size_t j = 0; j < next.n; j++)
            if (keep_next[j]) {
                nc.v[nc.n++] = next.v[j];
                memset(&next.v[j], 0, sizeof next.v[j]); /* moved */
            }
        for (size_t i = 0; i < l->cur.n; i++)
            if (keep_cur[i]) {
                nc.v[nc.n++] = l->cur.v[i];
                memset(&l->cur.v[i], 0, sizeof l->cur.v[i]);
            }
        ms_stream_set_free(&l->cur);
        l->cur = nc;
    } else {
        problems++;
        MS_ERROR(ctx, "out of memory");
    }
    MS_INFO(ctx, "%s: %zu stream file(s), %zu added, %zu changed, %zu removed, %d problem(s)",
            l->dir, next.n, added, updated, removed, problems);
    free(keep_next);
    free(keep_cur);
    free(acts);
    ms_stream_set_free(&next);
    return problems;
}
