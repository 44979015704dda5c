/* Startup reconciliation of the index with the chunk files of one root
 * (after a crash or a kill -9): files the index does not know (or knows
 * with another size, or as still open) are scanned and indexed, a torn last
 * fragment is cut off (ftruncate to the end of the last whole moof + mdat),
 * files with no whole fragment are removed, rows whose file is gone are
 * dropped. Blocking: runs before the writer threads start. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dvr/dvr_int.h"
#include "util/log.h"

#define CTX       "[dvr] [reconcile]"
#define MAX_DEPTH 6 /* <uid>/YYYY/MM/DD/HH/file */

typedef struct {
    int64_t id;
    char *path;
    uint64_t bytes;
    int open, seen;
} row_t;

typedef struct {
    sqlite3 *db;
    const char *root;
    row_t *rows;
    size_t nrows;
    int indexed, truncated, removed, dropped;
} rctx_t;

static int row_cmp(const void *a, const void *b)
{
    return strcmp(((const row_t *)a)->path, ((const row_t *)b)->path);
}

static row_t *row_find(rctx_t *x, const char *path)
{
    row_t key = {.path = (char *)(uintptr_t)path};
    return bsearch(&key, x->rows, x->nrows, sizeof *x->rows, row_cmp);
}

static void handle_file(rctx_t *x, const char *path, const char *rel)
{
    struct stat stb;
    if (stat(path, &stb) < 0)
        return;
    row_t *row = row_find(x, path);
    if (row) {
        row->seen = 1;
        if (!row->open && row->bytes == (uint64_t)stb.st_size)
            return;
    }
    /* the uid is the first component of the path under the root */
    const char *slash = strchr(rel, '/');
    if (!slash || (size_t)(slash - rel) >= 64)
        return;
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return;
    ms_dvr_scan_t sc;
    int rc = ms_dvr_scan_fd(fd, (uint64_t)stb.st_size, &sc);
    if (rc < 0) {
        MS_WARN(CTX, "%s: not a chunk file (%s), left alone", path, strerror(-rc));
        close(fd);
        return;
    }
    if (!sc.nfrags) {
        close(fd);
        unlink(path);
        ms_dvr_prune_dirs(x->root, path);
        if (row)
            ms_dvr_db_delete(x->db, row->id);
        x->removed++;
        ms_dvr_scan_free(&sc);
        return;
    }
    if (sc.valid_len < (uint64_t)stb.st_size) {
        if (ftruncate(fd, (off_t)sc.valid_len) == 0) {
            fsync(fd);
            x->truncated++;
            MS_WARN(CTX, "%s: torn tail cut (%lld -> %llu bytes)", path, (long long)stb.st_size,
                    (unsigned long long)sc.valid_len);
        }
    }
    close(fd);
    ms_dvr_wchunk_t c;
    memset(&c, 0, sizeof c);
    memcpy(c.uid, rel, (size_t)(slash - rel));
    snprintf(c.path, sizeof c.path, "%s", path);
    c.bytes = sc.valid_len;
    c.init_len = sc.init_len;
    c.frags = sc.frags;
    c.nfrags = sc.nfrags;
    c.start_ms = sc.frags[0].t_ms;
    c.end_ms = sc.frags[sc.nfrags - 1].t_ms + sc.frags[sc.nfrags - 1].dur_ms;
    c.closed = 1;
    if (ms_dvr_db_insert(x->db, &c, x->root) == 0)
        x->indexed++;
    ms_dvr_scan_free(&sc);
}

static void walk(rctx_t *x, const char *dir, size_t rel_off, int depth)
{
    if (depth > MAX_DEPTH)
        return;
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char path[MS_DVR_PATH_MAX];
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        int n = snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (n < 0 || (size_t)n >= sizeof path)
            continue;
        struct stat stb;
        if (lstat(path, &stb) < 0)
            continue;
        if (S_ISDIR(stb.st_mode)) {
            walk(x, path, rel_off, depth + 1);
        } else if (S_ISREG(stb.st_mode) && depth > 0) {
            size_t l = strlen(e->d_name);
            if (l > 4 && !strcmp(e->d_name + l - 4, ".m4s"))
                handle_file(x, path, path + rel_off);
        }
    }
    closedir(d);
}

int ms_dvr_reconcile(sqlite3 *db, const char *root)
{
    rctx_t x;
    memset(&x, 0, sizeof x);
    x.db = db;
    x.root = root;
    sqlite3_stmt *st = NULL;
    int rc =
        sqlite3_prepare_v2(db, "SELECT id,path,bytes,open FROM chunks WHERE root=?", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return -EIO;
    sqlite3_bind_text(st, 1, root, -1, SQLITE_STATIC);
    size_t cap = 0;
    int err = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (x.nrows == cap) {
            size_t nc = cap ? cap * 2 : 256;
            row_t *nr = realloc(x.rows, nc * sizeof *nr);
            if (!nr) {
                err = -ENOMEM;
                break;
            }
            x.rows = nr;
            cap = nc;
        }
        row_t *r = &x.rows[x.nrows];
        r->id = sqlite3_column_int64(st, 0);
        r->path = strdup((const char *)sqlite3_column_text(st, 1));
        r->bytes = (uint64_t)sqlite3_column_int64(st, 2);
        r->open = sqlite3_column_int(st, 3);
        r->seen = 0;
        if (!r->path) {
            err = -ENOMEM;
            break;
        }
        x.nrows++;
    }
    sqlite3_finalize(st);
    if (!err && x.nrows)
        qsort(x.rows, x.nrows, sizeof *x.rows, row_cmp);
    if (!err && (err = ms_dvr_db_begin(db)) == 0) {
        walk(&x, root, strlen(root) + 1, 0);
        for (size_t i = 0; i < x.nrows; i++) {
            if (!x.rows[i].seen && ms_dvr_db_delete(db, x.rows[i].id) == 0)
                x.dropped++;
        }
        err = ms_dvr_db_commit(db);
    }
    for (size_t i = 0; i < x.nrows; i++)
        free(x.rows[i].path);
    free(x.rows);
    if (x.indexed || x.truncated || x.removed || x.dropped)
        MS_INFO(CTX,
                "%s: %d file(s) (re)indexed, %d torn tail(s) cut, %d empty file(s) removed, "
                "%d row(s) without a file dropped",
                root, x.indexed, x.truncated, x.removed, x.dropped);
    if (err)
        return err;
    int changed = x.indexed + x.truncated + x.removed + x.dropped;
    return changed > 0 ? changed : 0;
}
