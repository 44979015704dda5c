/* Internals shared by raft/fsm.c (apply, dedup, checksum, snapshot) and
 * raft/fsm_ops.c (the whitelisted ops and the schema). Not for other
 * modules: use raft/fsm.h. Same thread rules as ms_fsm_t. */
#ifndef MS_RAFT_FSM_INT_H
#define MS_RAFT_FSM_INT_H

#include <stdint.h>

#include <jansson.h>
#include <sqlite3.h>

#include "raft/fsm.h"

/* Statements kept per state database (fsm.c). */
#define MS_FSM_STMT_CACHE 64

struct ms_fsm {
    sqlite3 *db;
    ms_fsm_apply_hook_t hook;
    void *hook_ud;
    uint64_t seq;                 /* cache of meta 'seq' */
    int schema;                   /* cache of meta 'schema' */
    uint64_t snapshots, restores; /* process-local counters, not state */
    uint64_t changes;             /* process-local: see ms_fsm_changes() */
    /* ms_fsm_checksum() of the state at seq sum_seq (sum_valid): every
     * commit bumps seq, a restore replaces the struct (cache invalid). */
    char sum[65];
    uint64_t sum_seq;
    int sum_valid;
    /* Prepared statements kept for reuse (ms_fsm_prep; fsm.c): the same few
     * statements run for every applied command and every read of a table.
     * busy: handed out, not yet given back with ms_fsm_done(). */
    struct {
        char *sql;
        sqlite3_stmt *st;
        int busy;
    } stc[MS_FSM_STMT_CACHE];
    int nstc;
};

/* What an op sees of its command. ts is unix milliseconds. */
typedef struct {
    int64_t ts;
    json_t *args; /* borrowed object */
} ms_fsm_ctx_t;

/* An op fills *res with a new reference: an "ok" object, or a rejection
 * from ms_fsm_reject() (then every change it made is rolled back). It
 * returns a negative errno only for failures that must stop the node. */
typedef int (*ms_fsm_op_fn)(ms_fsm_t *f, const ms_fsm_ctx_t *c, json_t **res);

typedef struct {
    const char *name;
    int min_schema; /* 0: allowed before schema_init */
    ms_fsm_op_fn fn;
} ms_fsm_op_t;

/* The whitelist; NULL for an unknown op. */
const ms_fsm_op_t *ms_fsm_op_find(const char *name);

/* SQL helpers. fmt names each bound parameter: 't' const char * (NULL binds
 * NULL), 'i' int64_t, 'j' json_t * (stored as compact JSON text with sorted
 * keys; NULL binds NULL). */
/* Runs a statement to completion: 0, -EEXIST (constraint), -EIO. */
int ms_fsm_sql(ms_fsm_t *f, const char *sql, const char *fmt, ...);
/* Prepares (or takes from the statement cache) and binds; the caller steps
 * and gives the statement back with ms_fsm_done() (never
 * sqlite3_finalize). 0 or -EIO. */
int ms_fsm_prep(ms_fsm_t *f, sqlite3_stmt **st, const char *sql, const char *fmt, ...);
/* Gives back a statement of ms_fsm_prep(): reset and kept when it is a
 * cached one, else finalized. NULL is a no-op. */
void ms_fsm_done(ms_fsm_t *f, sqlite3_stmt *st);
/* One integer from the first row: 1 found, 0 no row, -EIO. */
int ms_fsm_sql_int(ms_fsm_t *f, int64_t *out, const char *sql, const char *fmt, ...);

/* A rejection result {"error":..., "field":..., "status":...}. */
json_t *ms_fsm_reject(int status, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The current row as an object (JSON text columns listed in fsm_ops.c are
 * decoded), new reference. */
json_t *ms_fsm_row_json(sqlite3_stmt *st);

/* Stores a meta key. */
int ms_fsm_meta_set(ms_fsm_t *f, const char *key, int64_t v);

#endif
