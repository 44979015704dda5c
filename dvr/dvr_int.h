/* DVR internals shared by recorder.c, writer.c, index.c, reconcile.c and
 * dvr.c. Not for other modules. */
#ifndef MS_DVR_DVR_INT_H
#define MS_DVR_DVR_INT_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>

#include "dvr/dvr.h"

/* A chunk being written. Created by the recorder (loop thread), handed to
 * its root's writer with the OPEN op; from then on only the writer thread
 * touches it (the recorder keeps the pointer as an opaque handle for the
 * FRAG and CLOSE ops) and the writer frees it after CLOSE. */
typedef struct ms_dvr_wchunk {
    char uid[64];
    char path[MS_DVR_PATH_MAX];
    int root;
    /* writer thread only */
    int64_t rowid;
    int fd;
    uint64_t bytes;
    uint32_t init_len;
    int64_t start_ms, end_ms;
    ms_dvr_frag_t *frags;
    size_t nfrags, cap;
    int dirty, failed, closed;
    int err;         /* last write error (negative errno), 0 when writing */
    ms_blob_t *init; /* init segment, kept to restart the file after a failure */
    struct ms_dvr_wchunk *next_open;
} ms_dvr_wchunk_t;

typedef enum {
    MS_DVR_OP_OPEN = 1, /* blob = init segment */
    MS_DVR_OP_FRAG,     /* blob = moof + mdat, meta = t/dur/key */
    MS_DVR_OP_CLOSE,
    MS_DVR_OP_STREAM, /* uid/depth_s: retention parameters */
    MS_DVR_OP_SYNC,   /* barrier (optionally after a retention pass) */
} ms_dvr_op_kind_t;

typedef struct ms_dvr_sync {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int pending;
} ms_dvr_sync_t;

typedef struct ms_dvr_op {
    struct ms_dvr_op *next;
    ms_dvr_op_kind_t kind;
    ms_dvr_wchunk_t *c;
    ms_blob_t *blob; /* owned by the op */
    ms_dvr_frag_t meta;
    char uid[64];
    int64_t depth_s;
    int retain;
    ms_dvr_sync_t *sync;
} ms_dvr_op_t;

typedef struct {
    char path[MS_DVR_ROOT_MAX];
    int max_used_percent;
    int idx;
    pthread_t th;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    ms_dvr_op_t *head, *tail; /* guarded by mu */
    int stop;                 /* guarded by mu */
    atomic_int_least64_t queued_bytes;
    /* last statvfs, written by the writer thread */
    atomic_int_least64_t total, used, avail;
    atomic_int used_pct;
    /* writer thread only */
    sqlite3 *db;
    ms_dvr_wchunk_t *open;
    int64_t last_retention_ms;
} ms_dvr_root_t;

typedef struct {
    int inited;
    char node_name[MS_NAME_MAX];
    char db_path[MS_DVR_ROOT_MAX];
    ms_dvr_tuning_t tun;
    ms_dvr_root_t *roots;
    size_t nroots;
    pthread_mutex_t reg_mu; /* recorder registry */
    struct ms_dvr_recorder *recs;
} ms_dvr_global_t;

extern ms_dvr_global_t ms_dvr_g;

/* ---- index (index.c); one connection per thread ----------------------- */
int ms_dvr_db_open(const char *path, sqlite3 **out);
void ms_dvr_db_close(sqlite3 *db);
int ms_dvr_db_begin(sqlite3 *db);
int ms_dvr_db_commit(sqlite3 *db);
/* Inserts a row for c (c->rowid set). */
int ms_dvr_db_insert(sqlite3 *db, ms_dvr_wchunk_t *c, const char *root);
int ms_dvr_db_update(sqlite3 *db, const ms_dvr_wchunk_t *c, int open);
int ms_dvr_db_delete(sqlite3 *db, int64_t rowid);
int ms_dvr_db_set_stream(sqlite3 *db, const char *uid, int64_t depth_s);
/* Chunks of uid overlapping [from_ms, to_ms), oldest first (from the
 * blocks and the open rows: blocks.c). */
int ms_dvr_db_query(sqlite3 *db, const char *uid, int64_t from_ms, int64_t to_ms,
                    ms_dvr_chunk_t **out, size_t *n);
typedef struct {
    int64_t start_ms, end_ms;
} ms_dvr_span_t;
typedef struct {
    size_t chunks;
    uint64_t bytes;
    int64_t first_ms, last_ms;
} ms_dvr_totals_t;
/* Ranges of uid overlapping [from_ms, to_ms): chunks merged while the hole
 * between them is <= gap_ms, oldest first, in a new array (free()). Reads
 * times only. tot (may be NULL) gets the count, bytes and extent of all
 * the chunks of uid (whatever the window: ms_dvr_db_totals). */
int ms_dvr_db_ranges(sqlite3 *db, const char *uid, int64_t from_ms, int64_t to_ms, int64_t gap_ms,
                     ms_dvr_span_t **out, size_t *n, ms_dvr_totals_t *tot);

/* ---- blocks and totals (blocks.c): kept with the chunk rows ------------ */
/* Chunks of uid overlapping [from_ms, to_ms), oldest first (as
 * ms_dvr_db_query): closed chunks from the blocks plus the open rows when
 * use_blocks, else every row of the chunks table (the reference the tests
 * compare with). Borrows db (a read connection or the writer's). */
int ms_dvr_db_query_from(sqlite3 *db, const char *uid, int64_t from_ms, int64_t to_ms,
                         int use_blocks, ms_dvr_chunk_t **out, size_t *n);
/* Prepared statements cached per thread for one connection (index.c):
 * ms_dvr_db_prep(db, sql, &st) returns SQLITE_OK and a statement for the
 * string literal sql (prepared once); ms_dvr_db_fin(st) resets and unbinds
 * it after use (NULL: no-op). ms_dvr_db_forget(db) finalizes the calling
 * thread's statements of db: call it on the thread that used db before the
 * connection closes (ms_dvr_db_close does for its thread). */
int ms_dvr_db_prep(sqlite3 *db, const char *sql, sqlite3_stmt **st);
void ms_dvr_db_fin(sqlite3_stmt *st);
void ms_dvr_db_forget(sqlite3 *db);
/* Row c (already written, c->rowid set) is now indexed: when closed its
 * record joins its block; the stream's totals change by dcount/dbytes. */
int ms_dvr_db_chunk_indexed(sqlite3 *db, const ms_dvr_wchunk_t *c, const char *root, int closed,
                            int64_t dbytes, int dcount);
/* Row id of uid (start start_ms) is leaving the index or changing: when it
 * was closed its record leaves its block. */
int ms_dvr_db_chunk_unindexed(sqlite3 *db, const char *uid, int64_t id, int64_t start_ms,
                              int closed);
int ms_dvr_db_totals_add(sqlite3 *db, const char *uid, int dcount, int64_t dbytes);
/* Count and bytes of every chunk of uid and the extent of its ranges (all
 * zero when none), from one row. */
int ms_dvr_db_totals(sqlite3 *db, const char *uid, ms_dvr_totals_t *t);
/* Rebuilds the blocks and the totals from the chunk rows (an index that
 * predates them; synthetic indexes). In the caller's transaction. */
int ms_dvr_db_blocks_rebuild(sqlite3 *db);
/* Rebuilds the totals only (one pass over the covering index). */
int ms_dvr_db_totals_rebuild(sqlite3 *db);
/* Rebuilds the ranges table from the chunks (startup, after the
 * reconciliation; synthetic indexes). */
int ms_dvr_db_ranges_rebuild(sqlite3 *db);
/* Encodes/decodes the frags blob (little-endian records of 32 bytes). */
void *ms_dvr_frags_encode(const ms_dvr_frag_t *f, size_t n, size_t *len);
int ms_dvr_frags_decode(const void *p, size_t len, ms_dvr_frag_t **out, size_t *n);

/* ---- reconcile (reconcile.c), blocking --------------------------------- */
/* Returns the number of rows/files it changed (>= 0) or a negative errno. */
int ms_dvr_reconcile(sqlite3 *db, const char *root);

/* ---- writers (writer.c) ------------------------------------------------ */
int ms_dvr_writer_start(ms_dvr_root_t *r);
void ms_dvr_writer_stop(ms_dvr_root_t *r); /* drains, joins */
/* Any thread: queues op (takes ownership); -ESHUTDOWN (op freed) when
 * stopped. Never frees op->c: after a refused OPEN the caller frees it. */
int ms_dvr_writer_post(ms_dvr_root_t *r, ms_dvr_op_t *op);
void ms_dvr_op_free(ms_dvr_op_t *op);
/* statvfs through the tuning hook; fills the root's cached figures. */
int ms_dvr_root_stat(ms_dvr_root_t *r);
/* Path of a chunk file: <root>/<uid>/YYYY/MM/DD/HH/<start_ms>.m4s (UTC). */
void ms_dvr_chunk_path(char *out, size_t n, const char *root, const char *uid, int64_t start_ms);
/* Removes empty directories from dir up to (not including) root. */
void ms_dvr_prune_dirs(const char *root, const char *path);

/* ---- recorder registry (recorder.c) ------------------------------------ */
/* Under reg_mu: fills the recorder's part of the status object. */
int ms_dvr_recorder_status_locked(const char *uid, json_t *o);
/* Any thread (the writers): records why the recording of uid is paused
 * (negative errno of the failed write/open, 0 = writing again) for its
 * status. Takes reg_mu. */
void ms_dvr_recorder_set_paused(const char *uid, int err);

#endif
