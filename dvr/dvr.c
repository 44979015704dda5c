/* DVR module glue (dvr/dvr.h): start and stop, ranges, status, storage
 * figures, barriers and the reading side for playback. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dvr/dvr_int.h"
#include "util/clock.h"
#include "util/fs.h"
#include "util/log.h"

#define CTX "[dvr]"

ms_dvr_global_t ms_dvr_g = {.reg_mu = PTHREAD_MUTEX_INITIALIZER};
/* generation of the read connections (open_read) */
static atomic_uint rd_gen;

static ms_dvr_tuning_t g_tun;
static int g_tun_set;

void ms_dvr_tuning_defaults(ms_dvr_tuning_t *t)
{
    memset(t, 0, sizeof *t);
    t->gap_ms = 2000;
    t->frag_ms = 1000;
    t->prebuffer_ms = 5000;
    t->retention_ms = 10000;
}

void ms_dvr_set_tuning(const ms_dvr_tuning_t *t)
{
    if (t) {
        g_tun = *t;
        g_tun_set = 1;
    } else {
        g_tun_set = 0;
    }
}

int ms_dvr_init(const ms_dvr_cfg_t *cfg)
{
    if (ms_dvr_g.inited)
        return -EALREADY;
    if (g_tun_set)
        ms_dvr_g.tun = g_tun;
    else
        ms_dvr_tuning_defaults(&ms_dvr_g.tun);
    if (ms_dvr_g.tun.gap_ms <= 0)
        ms_dvr_g.tun.gap_ms = 2000;
    if (ms_dvr_g.tun.frag_ms <= 0)
        ms_dvr_g.tun.frag_ms = 1000;
    if (ms_dvr_g.tun.retention_ms <= 0)
        ms_dvr_g.tun.retention_ms = 10000;
    snprintf(ms_dvr_g.node_name, sizeof ms_dvr_g.node_name, "%s",
             cfg->node_name ? cfg->node_name : "");
    snprintf(ms_dvr_g.db_path, sizeof ms_dvr_g.db_path, "%s/dvr_index.sqlite", cfg->data_dir);
    size_t n = cfg->nroots ? cfg->nroots : 1;
    ms_dvr_g.roots = calloc(n, sizeof *ms_dvr_g.roots);
    if (!ms_dvr_g.roots)
        return -ENOMEM;
    ms_dvr_g.nroots = n;
    int rc = ms_mkdir_p(cfg->data_dir, 0, 0755);
    for (size_t i = 0; i < n && rc == 0; i++) {
        ms_dvr_root_t *r = &ms_dvr_g.roots[i];
        r->idx = (int)i;
        if (cfg->nroots) {
            snprintf(r->path, sizeof r->path, "%s", cfg->roots[i].path);
            r->max_used_percent = cfg->roots[i].max_used_percent;
        } else {
            snprintf(r->path, sizeof r->path, "%s/archive", cfg->data_dir);
            r->max_used_percent = 80;
        }
        size_t l = strlen(r->path);
        while (l > 1 && r->path[l - 1] == '/')
            r->path[--l] = '\0';
        rc = ms_mkdir_p(r->path, 0, 0755);
        if (rc < 0)
            MS_ERROR(CTX, "storage root %s: %s", r->path, strerror(-rc));
    }
    sqlite3 *db = NULL;
    if (rc == 0 && (rc = ms_dvr_db_open(ms_dvr_g.db_path, &db)) == 0) {
        int changed = 0;
        for (size_t i = 0; i < n && rc >= 0; i++)
            if ((rc = ms_dvr_reconcile(db, ms_dvr_g.roots[i].path)) > 0)
                changed += rc;
        if (rc > 0)
            rc = 0;
        /* The ranges, blocks and totals follow the chunks as reconciled:
         * they are kept in the chunks' transactions by the same calls
         * (ms_dvr_db_insert/update/delete; a re-indexed file's old row is
         * deleted through them), so neither a crash nor the reconciliation
         * leaves them wrong. They are built once for an index that never
         * had them: user_version 0 (before the ranges table) or 1 (before
         * the blocks and totals). */
        sqlite3_stmt *uv = NULL;
        int version = 0;
        if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &uv, NULL) == SQLITE_OK &&
            sqlite3_step(uv) == SQLITE_ROW)
            version = sqlite3_column_int(uv, 0);
        sqlite3_finalize(uv);
        /* The totals are also recounted after a reconciliation that
         * changed rows (cheap beside the walk of every file it just did),
         * so that no drift can outlive a restart. */
        if (rc == 0 && (changed || version < 2) && (rc = ms_dvr_db_begin(db)) == 0) {
            if (version < 1)
                rc = ms_dvr_db_ranges_rebuild(db);
            if (rc == 0)
                rc = version < 2 ? ms_dvr_db_blocks_rebuild(db) : ms_dvr_db_totals_rebuild(db);
            if (rc == 0 && sqlite3_exec(db, "PRAGMA user_version=2", NULL, NULL, NULL) != SQLITE_OK)
                rc = -EIO;
            int c = ms_dvr_db_commit(db);
            if (rc == 0)
                rc = c;
        }
        ms_dvr_db_close(db);
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        ms_dvr_root_t *r = &ms_dvr_g.roots[i];
        if ((rc = ms_dvr_db_open(ms_dvr_g.db_path, &r->db)) < 0)
            break;
        ms_dvr_root_stat(r);
        rc = ms_dvr_writer_start(r);
    }
    if (rc < 0) {
        MS_ERROR(CTX, "cannot start: %s", strerror(-rc));
        for (size_t i = 0; i < n; i++) {
            ms_dvr_writer_stop(&ms_dvr_g.roots[i]);
            ms_dvr_db_close(ms_dvr_g.roots[i].db);
        }
        free(ms_dvr_g.roots);
        ms_dvr_g.roots = NULL;
        ms_dvr_g.nroots = 0;
        return rc;
    }
    ms_dvr_g.inited = 1;
    atomic_fetch_add(&rd_gen, 1);
    MS_INFO(CTX, "index %s, %zu storage root(s)", ms_dvr_g.db_path, n);
    return 0;
}

void ms_dvr_shutdown(void)
{
    if (!ms_dvr_g.inited)
        return;
    for (size_t i = 0; i < ms_dvr_g.nroots; i++) {
        ms_dvr_writer_stop(&ms_dvr_g.roots[i]);
        ms_dvr_db_close(ms_dvr_g.roots[i].db);
    }
    free(ms_dvr_g.roots);
    ms_dvr_g.roots = NULL;
    ms_dvr_g.nroots = 0;
    ms_dvr_g.inited = 0;
    atomic_fetch_add(&rd_gen, 1);
}

static int barrier(int retain)
{
    if (!ms_dvr_g.inited)
        return -ESHUTDOWN;
    ms_dvr_sync_t s;
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.cv, NULL);
    s.pending = 0;
    for (size_t i = 0; i < ms_dvr_g.nroots; i++) {
        ms_dvr_op_t *op = calloc(1, sizeof *op);
        if (!op)
            continue;
        op->kind = MS_DVR_OP_SYNC;
        op->sync = &s;
        op->retain = retain;
        pthread_mutex_lock(&s.mu);
        s.pending++;
        pthread_mutex_unlock(&s.mu);
        if (ms_dvr_writer_post(&ms_dvr_g.roots[i], op) < 0) {
            pthread_mutex_lock(&s.mu);
            s.pending--;
            pthread_mutex_unlock(&s.mu);
        }
    }
    pthread_mutex_lock(&s.mu);
    while (s.pending)
        pthread_cond_wait(&s.cv, &s.mu);
    pthread_mutex_unlock(&s.mu);
    pthread_cond_destroy(&s.cv);
    pthread_mutex_destroy(&s.mu);
    return 0;
}

int ms_dvr_flush(void)
{
    return barrier(0);
}

int ms_dvr_retention_now(void)
{
    return barrier(1);
}

/* Read connections (the index file is shared in WAL mode): one per thread,
 * kept open between calls so that the schema is parsed and the file mapped
 * once (an HTTP thread serving playlists reuses its mapping). A new
 * ms_dvr_init/shutdown (generation) or another index path reopens it; the
 * thread's exit closes it. Statements are finalized by every call, so an
 * idle connection holds no read transaction. */
static pthread_once_t rd_once = PTHREAD_ONCE_INIT;
static pthread_key_t rd_key;
static _Thread_local struct {
    sqlite3 *db;
    unsigned gen;
    char path[MS_DVR_ROOT_MAX];
} rd;

static void rd_close(void *db)
{
    ms_dvr_db_close(db);
}

static void rd_key_init(void)
{
    pthread_key_create(&rd_key, rd_close);
}

static int open_read(sqlite3 **db)
{
    *db = NULL;
    if (!ms_dvr_g.db_path[0])
        return -ESHUTDOWN;
    unsigned gen = atomic_load(&rd_gen);
    if (rd.db && rd.gen == gen && strcmp(rd.path, ms_dvr_g.db_path) == 0) {
        *db = rd.db;
        return 0;
    }
    pthread_once(&rd_once, rd_key_init);
    if (rd.db) {
        pthread_setspecific(rd_key, NULL);
        ms_dvr_db_close(rd.db);
        rd.db = NULL;
    }
    sqlite3 *c = NULL;
    int rc =
        sqlite3_open_v2(ms_dvr_g.db_path, &c, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        sqlite3_close(c);
        return -EIO;
    }
    sqlite3_busy_timeout(c, 5000);
    /* pages read from the mapped file (page cache) instead of a pread and a
     * copy per page: a 24 h window of 2 s chunks is ~2000 pages */
    sqlite3_exec(c, "PRAGMA mmap_size=1073741824", NULL, NULL, NULL);
    rd.db = c;
    rd.gen = gen;
    snprintf(rd.path, sizeof rd.path, "%s", ms_dvr_g.db_path);
    pthread_setspecific(rd_key, c);
    *db = c;
    return 0;
}

/* The connection stays with the thread (see open_read). */
static void close_read(sqlite3 *db)
{
    (void)db;
}

int ms_dvr_chunks(const char *uid, int64_t from_ms, int64_t to_ms, ms_dvr_chunk_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    sqlite3 *db;
    int rc = open_read(&db);
    if (rc < 0)
        return rc;
    rc = ms_dvr_db_query(db, uid, from_ms, to_ms, out, n);
    close_read(db);
    return rc;
}

int ms_dvr_chunk_read(const ms_dvr_chunk_t *c, uint64_t off, uint64_t len, ms_blob_t **out)
{
    *out = NULL;
    if (off > c->bytes)
        return -ERANGE;
    if (len > c->bytes - off)
        len = c->bytes - off;
    int fd = open(c->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ms_blob_t *b = ms_blob_new(NULL, (size_t)len);
    if (!b) {
        close(fd);
        return -ENOMEM;
    }
    size_t got = 0;
    while (got < len) {
        ssize_t k = pread(fd, b->data + got, (size_t)len - got, (off_t)(off + got));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            int e = k < 0 ? -errno : -EIO;
            close(fd);
            ms_blob_unref(b);
            return e;
        }
        got += (size_t)k;
    }
    close(fd);
    *out = b;
    return 0;
}

/* Ranges of uid in [from_ms, to_ms) from the index (times only). */
static int spans(const char *uid, int64_t from_ms, int64_t to_ms, ms_dvr_span_t **v, size_t *k,
                 ms_dvr_totals_t *tot)
{
    sqlite3 *db;
    int rc = open_read(&db);
    if (rc < 0)
        return rc;
    rc = ms_dvr_db_ranges(db, uid, from_ms, to_ms, ms_dvr_g.tun.gap_ms, v, k, tot);
    close_read(db);
    return rc;
}

int ms_dvr_ranges(const char *uid, int64_t from, int64_t to, json_t **out)
{
    *out = NULL;
    if (!uid)
        return -EINVAL;
    int64_t to_ms = to > 0 ? to * 1000 : ms_wall_us() / 1000 + 1000;
    ms_dvr_span_t *rng;
    size_t k;
    int rc = spans(uid, from * 1000, to_ms, &rng, &k, NULL);
    if (rc < 0)
        return rc;
    json_t *arr = json_array();
    for (size_t i = 0; i < k; i++) {
        int64_t f = rng[i].start_ms / 1000;
        int64_t d = (rng[i].end_ms - f * 1000 + 999) / 1000;
        json_t *o = json_object();
        json_object_set_new(o, "from", json_integer(f));
        json_object_set_new(o, "duration", json_integer(d));
        json_object_set_new(o, "server", json_string(ms_dvr_g.node_name));
        json_array_append_new(arr, o);
    }
    free(rng);
    *out = json_object();
    json_object_set_new(*out, "ranges", arr);
    return 0;
}

int ms_dvr_status(const char *uid, json_t **out)
{
    *out = NULL;
    if (!uid)
        return -EINVAL;
    json_t *o = json_object();
    pthread_mutex_lock(&ms_dvr_g.reg_mu);
    int have_rec = ms_dvr_g.inited ? ms_dvr_recorder_status_locked(uid, o) : 0;
    pthread_mutex_unlock(&ms_dvr_g.reg_mu);
    ms_dvr_span_t *rng = NULL;
    size_t k = 0;
    ms_dvr_totals_t t;
    int rc = spans(uid, INT64_MIN / 2, INT64_MAX / 2, &rng, &k, &t);
    if (rc < 0) {
        json_decref(o);
        return rc;
    }
    size_t n = t.chunks;
    if (!have_rec && !n) {
        json_decref(o);
        free(rng);
        return -ENOENT;
    }
    json_object_set_new(o, "ranges", json_integer((json_int_t)k));
    json_object_set_new(o, "chunks", json_integer((json_int_t)n));
    json_object_set_new(o, "bytes", json_integer((json_int_t)t.bytes));
    json_object_set_new(o, "from", n ? json_integer(t.first_ms / 1000) : json_null());
    json_object_set_new(o, "to", n ? json_integer((t.last_ms + 999) / 1000) : json_null());
    if (!have_rec) {
        json_object_set_new(o, "recording", json_false());
        ms_dvr_chunk_t *v = NULL;
        size_t m = 0;
        /* records_path from the root of the newest chunk */
        if (ms_dvr_chunks(uid, t.last_ms - 1, t.last_ms, &v, &m) == 0 && m) {
            char path[MS_DVR_PATH_MAX];
            snprintf(path, sizeof path, "%s/%s", v[m - 1].root, uid);
            json_object_set_new(o, "records_path", json_string(path));
        }
        ms_dvr_chunks_free(v, m);
    }
    free(rng);
    *out = o;
    return 0;
}

int ms_dvr_storage(json_t **out)
{
    json_t *arr = json_array();
    for (size_t i = 0; ms_dvr_g.inited && i < ms_dvr_g.nroots; i++) {
        ms_dvr_root_t *r = &ms_dvr_g.roots[i];
        json_t *o = json_object();
        json_object_set_new(o, "path", json_string(r->path));
        json_object_set_new(o, "total_bytes", json_integer(atomic_load(&r->total)));
        json_object_set_new(o, "used_bytes", json_integer(atomic_load(&r->used)));
        json_object_set_new(o, "free_bytes", json_integer(atomic_load(&r->avail)));
        json_object_set_new(o, "used_percent", json_integer(atomic_load(&r->used_pct)));
        json_object_set_new(o, "max_used_percent", json_integer(r->max_used_percent));
        json_object_set_new(o, "queued_bytes", json_integer(atomic_load(&r->queued_bytes)));
        json_array_append_new(arr, o);
    }
    *out = json_object();
    json_object_set_new(*out, "roots", arr);
    return 0;
}
