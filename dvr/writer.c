/* Writer thread of one storage root: the only place where chunk files are
 * written, fsynced and deleted and where the index is written for that
 * root. Recorders (worker loops) queue operations with refcounted blobs;
 * the thread takes the whole queue at once, writes every blob, fdatasyncs
 * each file it touched once, then updates the index rows in one
 * transaction. Frames reach the queue at least once a second (the
 * recorder's fragments, and what each batched camera read brought at once:
 * ms_hub_batch_end), so a kill -9 loses at most about a second (docs/dvr.md
 * "What a crash loses").
 *
 * Retention runs here too, every tuning.retention_ms: by age (chunks that
 * ended more than the stream's depth ago) and by fullness (oldest chunks of
 * the root, whatever the stream, until used% <= max_used_percent). A pass
 * deletes a bounded number of files before going back to the queue, so it
 * never holds recording back for long. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dvr/dvr_int.h"
#include "util/clock.h"
#include "util/fs.h"
#include "util/log.h"

#define RET_BATCH     64 /* deletions per statement */
#define RET_MAX_BATCH 16 /* statements per pass */

void ms_dvr_op_free(ms_dvr_op_t *op)
{
    if (!op)
        return;
    ms_blob_unref(op->blob);
    free(op);
}

int ms_dvr_writer_post(ms_dvr_root_t *r, ms_dvr_op_t *op)
{
    size_t len = op->blob ? op->blob->len : 0;
    pthread_mutex_lock(&r->mu);
    if (r->stop || !r->started) {
        pthread_mutex_unlock(&r->mu);
        /* op->c is not touched: after a refused OPEN the caller still owns
         * it; a chunk whose OPEN was accepted was closed by the writer's
         * exit, so a refused FRAG or CLOSE leaves nothing behind */
        ms_dvr_op_free(op);
        return -ESHUTDOWN;
    }
    op->next = NULL;
    if (r->tail)
        r->tail->next = op;
    else
        r->head = op;
    r->tail = op;
    atomic_fetch_add(&r->queued_bytes, (int_least64_t)len);
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    return 0;
}

int ms_dvr_root_stat(ms_dvr_root_t *r)
{
    struct statvfs sv;
    int rc =
        ms_dvr_g.tun.statvfs_fn ? ms_dvr_g.tun.statvfs_fn(r->path, &sv) : statvfs(r->path, &sv);
    if (rc < 0)
        return -errno;
    uint64_t fr = sv.f_frsize ? sv.f_frsize : sv.f_bsize;
    uint64_t total = (uint64_t)sv.f_blocks * fr;
    uint64_t used = (uint64_t)(sv.f_blocks - sv.f_bfree) * fr;
    uint64_t avail = (uint64_t)sv.f_bavail * fr;
    /* df's figure: used / (used + available to unprivileged users) */
    int pct = used + avail ? (int)((used * 100 + used + avail - 1) / (used + avail)) : 0;
    atomic_store(&r->total, (int_least64_t)total);
    atomic_store(&r->used, (int_least64_t)used);
    atomic_store(&r->avail, (int_least64_t)avail);
    atomic_store(&r->used_pct, pct);
    return 0;
}

void ms_dvr_chunk_path(char *out, size_t n, const char *root, const char *uid, int64_t start_ms)
{
    time_t secs = (time_t)(start_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(out, n, "%s/%s/%04d/%02d/%02d/%02d/%lld.m4s", root, uid, tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, (long long)start_ms);
}

void ms_dvr_prune_dirs(const char *root, const char *path)
{
    char d[MS_DVR_PATH_MAX];
    snprintf(d, sizeof d, "%s", path);
    size_t rl = strlen(root);
    for (;;) {
        char *s = strrchr(d, '/');
        if (!s || (size_t)(s - d) <= rl)
            return;
        *s = '\0';
        if (rmdir(d) < 0)
            return;
    }
}

/* Creates the directory of file, which lies below root (an existing
 * directory). */
static int mkdirs(const char *root, const char *file)
{
    char d[MS_DVR_PATH_MAX];
    snprintf(d, sizeof d, "%s", file);
    char *s = strrchr(d, '/');
    if (!s)
        return -EINVAL;
    *s = '\0';
    return ms_mkdir_p(d, strlen(root), 0755);
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static void chunk_fail(ms_dvr_root_t *r, ms_dvr_wchunk_t *c, const char *what, int err)
{
    static ms_ratelimit_t rl = MS_RATELIMIT_INIT(10000);
    uint32_t supp;
    c->failed = 1;
    if (c->err != err) /* the stream's status says why it does not record */
        ms_dvr_recorder_set_paused(c->uid, err);
    c->err = err;
    if (ms_ratelimit_ok(&rl, &supp))
        MS_ERROR("[dvr] [writer]", "%s: %s %s: %s (%u similar suppressed)", r->path, what, c->path,
                 strerror(-err), supp);
}

static void open_list_remove(ms_dvr_root_t *r, ms_dvr_wchunk_t *c)
{
    for (ms_dvr_wchunk_t **pp = &r->open; *pp; pp = &(*pp)->next_open)
        if (*pp == c) {
            *pp = c->next_open;
            return;
        }
}

/* Creates c->path and writes the init segment; 0 or a negative errno (the
 * file is removed again on failure). */
static int open_file(ms_dvr_root_t *r, ms_dvr_wchunk_t *c)
{
    int rc = mkdirs(r->path, c->path);
    if (rc < 0)
        return rc;
    c->fd = open(c->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (c->fd < 0)
        return -errno;
    if ((rc = write_all(c->fd, c->init->data, c->init->len)) < 0) {
        close(c->fd);
        c->fd = -1;
        unlink(c->path);
        ms_dvr_prune_dirs(r->path, c->path);
        return rc;
    }
    c->init_len = (uint32_t)c->init->len;
    c->bytes = c->init->len;
    c->dirty = 1;
    if (ms_dvr_db_insert(r->db, c, r->path) < 0)
        c->rowid = 0;
    return 0;
}

static void do_open(ms_dvr_root_t *r, ms_dvr_op_t *op)
{
    ms_dvr_wchunk_t *c = op->c;
    c->fd = -1;
    c->start_ms = c->end_ms = op->meta.t_ms;
    c->next_open = r->open;
    r->open = c;
    c->init = ms_blob_ref(op->blob);
    int rc = open_file(r, c);
    if (rc < 0) {
        chunk_fail(r, c, "open", rc);
        return;
    }
    ms_dvr_recorder_set_paused(c->uid, 0);
}

/* Ends the file of c as it is on disk (its row closed, or file and row
 * removed when it holds no fragment). c stays open for the recorder. */
static void finish_file(ms_dvr_root_t *r, ms_dvr_wchunk_t *c)
{
    if (c->fd >= 0) {
        if (c->dirty)
            fdatasync(c->fd);
        close(c->fd);
        c->fd = -1;
    }
    if (!c->nfrags) {
        /* nothing but an init segment: not a recording */
        unlink(c->path);
        ms_dvr_prune_dirs(r->path, c->path);
        if (c->rowid)
            ms_dvr_db_delete(r->db, c->rowid);
    } else if (c->rowid) {
        ms_dvr_db_update(r->db, c, 0);
    }
    c->dirty = 0;
}

/* A write of c failed (disk full, I/O error): at the next keyframe fragment
 * the file written so far is ended and a new one started at t_ms, so the
 * recording resumes as soon as space is back, with a gap in the ranges for
 * what was lost. 0 when writing again. */
static int restart_file(ms_dvr_root_t *r, ms_dvr_wchunk_t *c, int64_t t_ms)
{
    finish_file(r, c);
    c->rowid = 0;
    c->nfrags = 0;
    c->bytes = 0;
    c->start_ms = c->end_ms = t_ms;
    ms_dvr_chunk_path(c->path, sizeof c->path, r->path, c->uid, t_ms);
    int rc = open_file(r, c);
    if (rc < 0) {
        chunk_fail(r, c, "reopen", rc);
        return rc;
    }
    c->failed = 0;
    c->err = 0;
    ms_dvr_recorder_set_paused(c->uid, 0);
    MS_INFO("[dvr] [writer]", "%s: recording of %s resumed in %s", r->path, c->uid, c->path);
    return 0;
}

static void do_frag(ms_dvr_root_t *r, ms_dvr_op_t *op)
{
    ms_dvr_wchunk_t *c = op->c;
    if (c->failed && c->init && op->meta.key && restart_file(r, c, op->meta.t_ms) < 0)
        return;
    if (c->failed || c->fd < 0)
        return;
    if (c->nfrags == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 32;
        ms_dvr_frag_t *nf = realloc(c->frags, nc * sizeof *nf);
        if (!nf) {
            chunk_fail(r, c, "index", -ENOMEM);
            return;
        }
        c->frags = nf;
        c->cap = nc;
    }
    int rc = write_all(c->fd, op->blob->data, op->blob->len);
    if (rc < 0) {
        /* cut back to the last whole fragment so the file stays valid */
        if (ftruncate(c->fd, (off_t)c->bytes) == 0)
            lseek(c->fd, (off_t)c->bytes, SEEK_SET);
        chunk_fail(r, c, "write", rc);
        return;
    }
    ms_dvr_frag_t f = op->meta;
    f.off = c->bytes;
    f.size = op->blob->len;
    c->frags[c->nfrags++] = f;
    if (c->nfrags == 1)
        c->start_ms = f.t_ms;
    c->bytes += op->blob->len;
    c->end_ms = f.t_ms + f.dur_ms;
    c->dirty = 1;
}

static void do_close(ms_dvr_root_t *r, ms_dvr_wchunk_t *c)
{
    open_list_remove(r, c);
    finish_file(r, c);
    c->closed = 1;
    ms_blob_unref(c->init);
    free(c->frags);
    free(c);
}

static void delete_rows(ms_dvr_root_t *r, sqlite3_stmt *st, int *deleted)
{
    int64_t ids[RET_BATCH];
    char *paths[RET_BATCH];
    int n = 0;
    while (n < RET_BATCH && sqlite3_step(st) == SQLITE_ROW) {
        ids[n] = sqlite3_column_int64(st, 0);
        paths[n] = strdup((const char *)sqlite3_column_text(st, 1));
        if (!paths[n])
            break;
        n++;
    }
    sqlite3_reset(st);
    if (!n)
        return;
    /* file first: a crash in between leaves a row without a file, which the
     * startup reconciliation drops */
    ms_dvr_db_begin(r->db);
    for (int i = 0; i < n; i++) {
        if (unlink(paths[i]) == 0 || errno == ENOENT) {
            ms_dvr_db_delete(r->db, ids[i]);
            ms_dvr_prune_dirs(r->path, paths[i]);
            (*deleted)++;
        }
        free(paths[i]);
    }
    ms_dvr_db_commit(r->db);
}

static void retention(ms_dvr_root_t *r)
{
    int64_t now_ms = ms_wall_us() / 1000;
    int by_age = 0, by_full = 0;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(r->db,
                           "SELECT c.id,c.path FROM chunks c JOIN streams s ON s.uid=c.uid "
                           "WHERE c.root=?1 AND c.open=0 AND s.depth_s>0 "
                           "AND c.end_ms < ?2 - s.depth_s*1000 ORDER BY c.start_ms LIMIT 64",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, r->path, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, now_ms);
        for (int i = 0; i < RET_MAX_BATCH; i++) {
            int before = by_age;
            delete_rows(r, st, &by_age);
            if (by_age == before)
                break;
        }
        sqlite3_finalize(st);
    }
    ms_dvr_root_stat(r);
    if (r->max_used_percent > 0 && r->max_used_percent < 100 &&
        atomic_load(&r->used_pct) > r->max_used_percent &&
        sqlite3_prepare_v2(r->db,
                           "SELECT id,path FROM chunks WHERE root=?1 AND open=0 "
                           "ORDER BY start_ms LIMIT 1",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, r->path, -1, SQLITE_STATIC);
        /* one chunk at a time: the figure is re-read after each deletion */
        for (int i = 0; i < RET_BATCH * RET_MAX_BATCH; i++) {
            int before = by_full;
            delete_rows(r, st, &by_full);
            ms_dvr_root_stat(r);
            if (by_full == before || atomic_load(&r->used_pct) <= r->max_used_percent)
                break;
        }
        sqlite3_finalize(st);
    }
    if (by_age || by_full)
        MS_INFO("[dvr] [retention]", "%s: %d chunk(s) past their depth, %d for space removed",
                r->path, by_age, by_full);
}

static void sync_done(ms_dvr_sync_t *s)
{
    pthread_mutex_lock(&s->mu);
    s->pending--;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void process(ms_dvr_root_t *r, ms_dvr_op_t *ops)
{
    int txn = ms_dvr_db_begin(r->db) == 0;
    ms_dvr_op_t *syncs = NULL, **stail = &syncs;
    int retain = 0;
    while (ops) {
        ms_dvr_op_t *op = ops;
        ops = op->next;
        if (op->blob)
            atomic_fetch_sub(&r->queued_bytes, (int_least64_t)op->blob->len);
        switch (op->kind) {
        case MS_DVR_OP_OPEN:
            do_open(r, op);
            break;
        case MS_DVR_OP_FRAG:
            do_frag(r, op);
            break;
        case MS_DVR_OP_CLOSE:
            do_close(r, op->c);
            break;
        case MS_DVR_OP_STREAM:
            ms_dvr_db_set_stream(r->db, op->uid, op->depth_s);
            break;
        case MS_DVR_OP_SYNC:
            retain |= op->retain;
            op->next = NULL;
            *stail = op;
            stail = &op->next;
            continue; /* kept until the batch is durable */
        }
        ms_dvr_op_free(op);
    }
    for (ms_dvr_wchunk_t *c = r->open; c; c = c->next_open) {
        if (!c->dirty || c->fd < 0)
            continue;
        fdatasync(c->fd);
        c->dirty = 0;
        if (c->rowid)
            ms_dvr_db_update(r->db, c, 1);
    }
    if (txn)
        ms_dvr_db_commit(r->db);
    if (retain) {
        retention(r);
        r->last_retention_ms = ms_mono_ms();
    }
    while (syncs) {
        ms_dvr_op_t *op = syncs;
        syncs = op->next;
        sync_done(op->sync);
        ms_dvr_op_free(op);
    }
}

static void *writer_main(void *arg)
{
    ms_dvr_root_t *r = arg;
    r->last_retention_ms = ms_mono_ms();
    for (;;) {
        pthread_mutex_lock(&r->mu);
        if (!r->head && !r->stop) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_sec += 1;
            pthread_cond_timedwait(&r->cv, &r->mu, &ts);
        }
        ms_dvr_op_t *ops = r->head;
        r->head = r->tail = NULL;
        int stop = r->stop;
        pthread_mutex_unlock(&r->mu);
        if (ops)
            process(r, ops);
        if (ms_mono_ms() - r->last_retention_ms >= ms_dvr_g.tun.retention_ms) {
            retention(r);
            r->last_retention_ms = ms_mono_ms();
        }
        if (stop && !ops)
            break;
    }
    /* recorders were stopped first; anything still open is closed here */
    while (r->open)
        do_close(r, r->open);
    /* this thread's prepared statements go before the connection closes */
    ms_dvr_db_forget(r->db);
    return NULL;
}

int ms_dvr_writer_start(ms_dvr_root_t *r)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, &ca);
    pthread_condattr_destroy(&ca);
    r->head = r->tail = NULL;
    r->stop = 0;
    r->open = NULL;
    r->started = 1;
    int rc = pthread_create(&r->th, NULL, writer_main, r);
    if (rc) {
        r->started = 0;
        pthread_cond_destroy(&r->cv);
        pthread_mutex_destroy(&r->mu);
        return -rc;
    }
    return 0;
}

void ms_dvr_writer_stop(ms_dvr_root_t *r)
{
    if (!r->started)
        return;
    pthread_mutex_lock(&r->mu);
    r->stop = 1;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->th, NULL);
    pthread_mutex_lock(&r->mu);
    r->started = 0;
    pthread_mutex_unlock(&r->mu);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
}
