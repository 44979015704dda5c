/* Replicated state machine core: command validation, req_id dedup,
 * transactions, canonical dump + SHA-256 checksum, snapshot/restore
 * (sqlite3_serialize / sqlite3_deserialize). The ops are in fsm_ops.c.
 *
 * Determinism: apply reads nothing but the command and the database. The
 * command's ts (stamped by the leader) is the only time; no random numbers.
 * Raft guarantees every node applies the same commands in the same order
 * (Raft paper section 5.3, State Machine Safety). */
#include "raft/fsm_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "util/buf.h"

#define SNAP_MAGIC "MSFSM001"
#define SNAP_HDR   16

static const char *const base_schema =
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
    "CREATE TABLE applied_reqs(req_id TEXT PRIMARY KEY, seq INTEGER NOT NULL,"
    " result TEXT NOT NULL);"
    "CREATE INDEX applied_reqs_seq ON applied_reqs(seq);"
    "INSERT INTO meta(key, value) VALUES('schema', 0), ('seq', 0);";

/* ---- SQL helpers ---------------------------------------------------- */

static int bind_va(sqlite3_stmt *st, const char *fmt, va_list ap)
{
    int i = 1;
    for (const char *p = fmt; p && *p; p++, i++) {
        int rc = SQLITE_OK;
        switch (*p) {
        case 't': {
            const char *s = va_arg(ap, const char *);
            rc = s ? sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(st, i);
            break;
        }
        case 'i':
            rc = sqlite3_bind_int64(st, i, (sqlite3_int64)va_arg(ap, int64_t));
            break;
        case 'j': {
            json_t *j = va_arg(ap, json_t *);
            if (!j) {
                rc = sqlite3_bind_null(st, i);
                break;
            }
            char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
            if (!s)
                return -ENOMEM;
            rc = sqlite3_bind_text(st, i, s, -1, free);
            break;
        }
        default:
            return -EINVAL;
        }
        if (rc != SQLITE_OK)
            return -EIO;
    }
    return 0;
}

/* The statement cache: a statement is compiled once per database
 * (SQLITE_PREPARE_PERSISTENT) and reset after each use. A statement in use
 * (a nested query of the same text) gets a fresh one, finalized after. */
static sqlite3_stmt *stmt_get(ms_fsm_t *f, const char *sql)
{
    int i, free_slot = -1;
    for (i = 0; i < f->nstc; i++) {
        if (f->stc[i].sql != sql && strcmp(f->stc[i].sql, sql) != 0)
            continue;
        if (f->stc[i].busy)
            break; /* in use: an uncached one */
        f->stc[i].busy = 1;
        return f->stc[i].st;
    }
    if (i == f->nstc && f->nstc < MS_FSM_STMT_CACHE)
        free_slot = f->nstc;
    sqlite3_stmt *st = NULL;
    if (free_slot >= 0) {
        char *copy = strdup(sql);
        if (copy &&
            sqlite3_prepare_v3(f->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) == SQLITE_OK &&
            st) {
            f->stc[free_slot].sql = copy;
            f->stc[free_slot].st = st;
            f->stc[free_slot].busy = 1;
            f->nstc++;
            return st;
        }
        free(copy);
        sqlite3_finalize(st);
        st = NULL;
    }
    if (sqlite3_prepare_v2(f->db, sql, -1, &st, NULL) != SQLITE_OK) {
        sqlite3_finalize(st);
        return NULL;
    }
    return st;
}

void ms_fsm_done(ms_fsm_t *f, sqlite3_stmt *st)
{
    if (!st)
        return;
    for (int i = 0; i < f->nstc; i++) {
        if (f->stc[i].st == st) {
            sqlite3_reset(st);
            sqlite3_clear_bindings(st);
            f->stc[i].busy = 0;
            return;
        }
    }
    sqlite3_finalize(st);
}

/* Finalizes every cached statement (before the database closes). */
static void stmt_cache_clear(ms_fsm_t *f)
{
    for (int i = 0; i < f->nstc; i++) {
        sqlite3_finalize(f->stc[i].st);
        free(f->stc[i].sql);
    }
    memset(f->stc, 0, sizeof f->stc);
    f->nstc = 0;
}

static int prep_va(ms_fsm_t *f, sqlite3_stmt **st, const char *sql, const char *fmt, va_list ap)
{
    *st = stmt_get(f, sql);
    if (!*st)
        return -EIO;
    int rc = bind_va(*st, fmt, ap);
    if (rc < 0) {
        ms_fsm_done(f, *st);
        *st = NULL;
    }
    return rc;
}

int ms_fsm_prep(ms_fsm_t *f, sqlite3_stmt **st, const char *sql, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = prep_va(f, st, sql, fmt, ap);
    va_end(ap);
    return rc;
}

int ms_fsm_sql(ms_fsm_t *f, const char *sql, const char *fmt, ...)
{
    sqlite3_stmt *st;
    va_list ap;
    va_start(ap, fmt);
    int rc = prep_va(f, &st, sql, fmt, ap);
    va_end(ap);
    if (rc < 0)
        return rc;
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
    }
    ms_fsm_done(f, st);
    if (s == SQLITE_DONE)
        return 0;
    return (s & 0xff) == SQLITE_CONSTRAINT ? -EEXIST : -EIO;
}

int ms_fsm_sql_int(ms_fsm_t *f, int64_t *out, const char *sql, const char *fmt, ...)
{
    sqlite3_stmt *st;
    va_list ap;
    va_start(ap, fmt);
    int rc = prep_va(f, &st, sql, fmt, ap);
    va_end(ap);
    if (rc < 0)
        return rc;
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        rc = 1;
    } else {
        rc = s == SQLITE_DONE ? 0 : -EIO;
    }
    ms_fsm_done(f, st);
    return rc;
}

int ms_fsm_meta_set(ms_fsm_t *f, const char *key, int64_t v)
{
    return ms_fsm_sql(f,
                      "INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE "
                      "SET value = excluded.value",
                      "ti", key, v);
}

json_t *ms_fsm_reject(int status, const char *field, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *r = json_pack("{s:s, s:i}", "error", msg, "status", status);
    if (r && field)
        json_object_set_new(r, "field", json_string(field));
    return r;
}

/* ---- lifecycle ------------------------------------------------------ */

static int open_db(sqlite3 **db)
{
    *db = NULL;
    if (sqlite3_open_v2(":memory:", db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        sqlite3_close(*db);
        *db = NULL;
        return -ENOMEM;
    }
    return 0;
}

static int load_meta(ms_fsm_t *f)
{
    int64_t v = 0;
    if (ms_fsm_sql_int(f, &v, "SELECT value FROM meta WHERE key = 'schema'", "") != 1 || v < 0 ||
        v > MS_FSM_SCHEMA_LATEST)
        return -EINVAL;
    f->schema = (int)v;
    if (ms_fsm_sql_int(f, &v, "SELECT value FROM meta WHERE key = 'seq'", "") != 1 || v < 0)
        return -EINVAL;
    f->seq = (uint64_t)v;
    return 0;
}

int ms_fsm_new(ms_fsm_t **out)
{
    *out = NULL;
    ms_fsm_t *f = calloc(1, sizeof *f);
    if (!f)
        return -ENOMEM;
    int rc = open_db(&f->db);
    if (rc < 0)
        goto err;
    if (sqlite3_exec(f->db, base_schema, NULL, NULL, NULL) != SQLITE_OK) {
        rc = -EIO;
        goto err;
    }
    *out = f;
    return 0;
err:
    sqlite3_close(f->db);
    free(f);
    return rc;
}

void ms_fsm_free(ms_fsm_t *f)
{
    if (!f)
        return;
    stmt_cache_clear(f);
    sqlite3_close(f->db);
    free(f);
}

void ms_fsm_set_apply_hook(ms_fsm_t *f, ms_fsm_apply_hook_t hook, void *ud)
{
    f->hook = hook;
    f->hook_ud = ud;
}

uint64_t ms_fsm_applied(const ms_fsm_t *f)
{
    return f->seq;
}

uint64_t ms_fsm_changes(const ms_fsm_t *f)
{
    return f->changes;
}

uint64_t ms_fsm_snapshot_count(const ms_fsm_t *f)
{
    return f->snapshots;
}

uint64_t ms_fsm_restore_count(const ms_fsm_t *f)
{
    return f->restores;
}

int ms_fsm_schema_version(const ms_fsm_t *f)
{
    return f->schema;
}

struct sqlite3 *ms_fsm_db(ms_fsm_t *f)
{
    return f->db;
}

/* ---- apply ---------------------------------------------------------- */

static int req_id_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '-' || c == '_'))
            return 0;
    }
    return 1;
}

/* Looks the req_id up; on a hit *res gets the stored result. 1 hit, 0 miss. */
static int dedup_lookup(ms_fsm_t *f, const char *req_id, json_t **res)
{
    sqlite3_stmt *st;
    int rc = ms_fsm_prep(f, &st, "SELECT result FROM applied_reqs WHERE req_id = ?", "t", req_id);
    if (rc < 0)
        return rc;
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        const char *txt = (const char *)sqlite3_column_text(st, 0);
        *res = txt ? json_loads(txt, 0, NULL) : NULL;
        if (!*res)
            *res = json_object();
        rc = *res ? 1 : -ENOMEM;
    } else {
        rc = s == SQLITE_DONE ? 0 : -EIO;
    }
    ms_fsm_done(f, st);
    return rc;
}

/* Records the command as applied and prunes the dedup table to the last
 * MS_FSM_DEDUP_KEEP entries (by sequence: deterministic on every node). */
static int dedup_record(ms_fsm_t *f, const char *req_id, json_t *res)
{
    int64_t seq = (int64_t)f->seq + 1;
    int rc = ms_fsm_sql(f, "INSERT INTO applied_reqs(req_id, seq, result) VALUES(?, ?, ?)", "tij",
                        req_id, seq, res);
    if (rc == 0)
        rc = ms_fsm_meta_set(f, "seq", seq);
    if (rc == 0 && seq > MS_FSM_DEDUP_KEEP)
        rc = ms_fsm_sql(f, "DELETE FROM applied_reqs WHERE seq <= ?", "i",
                        seq - (int64_t)MS_FSM_DEDUP_KEEP);
    return rc;
}

/* Transaction control (BEGIN, SAVEPOINT...), from the statement cache. */
static int exec_simple(ms_fsm_t *f, const char *sql)
{
    return ms_fsm_sql(f, sql, "") == 0 ? 0 : -EIO;
}

static void notify(ms_fsm_t *f, const char *req_id, const char *op, json_t *res)
{
    if (f->hook)
        f->hook(f->hook_ud, req_id, op, res);
}

int ms_fsm_apply(ms_fsm_t *f, const void *data, size_t len, json_t **result)
{
    json_t *cmd = NULL, *res = NULL;
    const char *req_id = NULL, *opname = NULL;
    int rc = 0;

    if (result)
        *result = NULL;
    if (len > MS_FSM_CMD_MAX) {
        res = ms_fsm_reject(400, NULL, "command too large");
        goto done;
    }
    json_error_t jerr;
    cmd = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!cmd || !json_is_object(cmd)) {
        res = ms_fsm_reject(400, NULL, "malformed command");
        goto done;
    }
    json_t *v = json_object_get(cmd, "v");
    if (!json_is_integer(v) || json_integer_value(v) < 1) {
        res = ms_fsm_reject(400, "v", "missing or bad command version");
        goto done;
    }
    if (json_integer_value(v) > MS_FSM_CMD_VERSION) {
        rc = -EPROTO; /* newer than this binary: stop rather than diverge */
        goto done;
    }
    req_id = json_string_value(json_object_get(cmd, "req_id"));
    if (!req_id || !req_id_ok(req_id)) {
        req_id = NULL;
        res = ms_fsm_reject(400, "req_id", "missing or bad req_id");
        goto done;
    }
    opname = json_string_value(json_object_get(cmd, "op"));

    rc = dedup_lookup(f, req_id, &res);
    if (rc < 0)
        goto done;
    if (rc == 1) {
        rc = 0;
        json_object_set_new(res, "duplicate", json_true());
        goto done;
    }

    /* Everything below changes state in one transaction: the op (inside a
     * savepoint, undone when it rejects) and the dedup record. */
    if ((rc = exec_simple(f, "BEGIN")) < 0)
        goto done;
    json_t *ts = json_object_get(cmd, "ts");
    json_t *args = json_object_get(cmd, "args");
    const ms_fsm_op_t *op = opname ? ms_fsm_op_find(opname) : NULL;
    if (!json_is_integer(ts) || json_integer_value(ts) < 0) {
        res = ms_fsm_reject(400, "ts", "missing or bad ts");
    } else if (!json_is_object(args)) {
        res = ms_fsm_reject(400, "args", "args must be an object");
    } else if (!op) {
        res = ms_fsm_reject(400, "op", "unknown op");
    } else if (f->schema < op->min_schema) {
        res = ms_fsm_reject(409, "op", "op needs schema %d (state has %d)", op->min_schema,
                            f->schema);
    } else {
        ms_fsm_ctx_t c = {json_integer_value(ts), args};
        int old_schema = f->schema;
        if ((rc = exec_simple(f, "SAVEPOINT op")) < 0)
            goto rollback;
        rc = op->fn(f, &c, &res);
        if (rc == 0 && !res)
            rc = -ENOMEM;
        if (rc < 0)
            goto rollback;
        if (json_object_get(res, "error")) {
            f->schema = old_schema;
            rc = exec_simple(f, "ROLLBACK TO op");
        }
        if (rc == 0)
            rc = exec_simple(f, "RELEASE op");
        if (rc < 0)
            goto rollback;
    }
    if (!res) {
        rc = -ENOMEM;
        goto rollback;
    }
    if ((rc = dedup_record(f, req_id, res)) < 0)
        goto rollback;
    if ((rc = exec_simple(f, "COMMIT")) < 0)
        goto rollback;
    f->seq++;
    /* Load reports arrive several times a second from every node and touch
     * only the servers' load columns: they are not "changes" for the
     * readers of ms_fsm_changes() (the reconciler, the views). */
    if (!json_object_get(res, "error") && (!opname || strcmp(opname, "server_report") != 0))
        f->changes++;
    goto done;

rollback:
    exec_simple(f, "ROLLBACK");
    load_meta(f); /* the caches follow the database */
    json_decref(res);
    res = NULL;
done:
    if (rc == 0) {
        notify(f, req_id, opname, res);
        if (result)
            *result = res;
        else
            json_decref(res);
    } else {
        json_decref(res);
    }
    json_decref(cmd);
    return rc;
}

/* ---- canonical dump + checksum ------------------------------------- */

/* Value encoding: N | I<decimal> | R<%.17g> | T<len>:<bytes> | B<len>:<bytes>,
 * each followed by '\n' (docs/cluster.md "Checksum"). */
static void dump_value(ms_buf_t *b, sqlite3_stmt *st, int i)
{
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_NULL:
        ms_buf_append(b, "N\n", 2);
        break;
    case SQLITE_INTEGER:
        ms_buf_printf(b, "I%lld\n", (long long)sqlite3_column_int64(st, i));
        break;
    case SQLITE_FLOAT:
        ms_buf_printf(b, "R%.17g\n", sqlite3_column_double(st, i));
        break;
    case SQLITE_TEXT: {
        const unsigned char *t = sqlite3_column_text(st, i);
        int n = sqlite3_column_bytes(st, i);
        ms_buf_printf(b, "T%d:", n);
        ms_buf_append(b, t, (size_t)n);
        ms_buf_u8(b, '\n');
        break;
    }
    default: {
        const void *p = sqlite3_column_blob(st, i);
        int n = sqlite3_column_bytes(st, i);
        ms_buf_printf(b, "B%d:", n);
        ms_buf_append(b, p, (size_t)n);
        ms_buf_u8(b, '\n');
        break;
    }
    }
}

static int dump_table(ms_fsm_t *f, ms_buf_t *b, const char *table)
{
    sqlite3_stmt *st = NULL;
    char sql[512];
    ms_buf_t q = MS_BUF_INIT;
    int rc = -EIO;

    snprintf(sql, sizeof sql, "SELECT * FROM \"%s\"", table);
    if (sqlite3_prepare_v2(f->db, sql, -1, &st, NULL) != SQLITE_OK)
        goto out;
    int ncol = sqlite3_column_count(st);
    sqlite3_finalize(st);
    st = NULL;
    ms_buf_printf(&q, "SELECT * FROM \"%s\" ORDER BY ", table);
    for (int i = 1; i <= ncol; i++)
        ms_buf_printf(&q, "%s%d", i > 1 ? "," : "", i);
    if (!ms_buf_cstr(&q)) {
        rc = -ENOMEM;
        goto out;
    }
    if (sqlite3_prepare_v2(f->db, (const char *)q.data, -1, &st, NULL) != SQLITE_OK)
        goto out;
    ms_buf_printf(b, "table %s %d\n", table, ncol);
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        ms_buf_append(b, "row\n", 4);
        for (int i = 0; i < ncol; i++)
            dump_value(b, st, i);
    }
    rc = s == SQLITE_DONE ? 0 : -EIO;
out:
    sqlite3_finalize(st);
    ms_buf_free(&q);
    return rc;
}

static int dump(ms_fsm_t *f, ms_buf_t *b)
{
    sqlite3_stmt *st = NULL;
    int rc = ms_fsm_prep(f, &st,
                         "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
                         " ORDER BY type, name",
                         "");
    if (rc < 0)
        return rc;
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        ms_buf_append(b, "schema\n", 7);
        for (int i = 0; i < 3; i++)
            dump_value(b, st, i);
    }
    ms_fsm_done(f, st);
    if (s != SQLITE_DONE)
        return -EIO;

    rc = ms_fsm_prep(f, &st,
                     "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE "
                     "'sqlite_%' ORDER BY name",
                     "");
    if (rc < 0)
        return rc;
    while (rc == 0 && (s = sqlite3_step(st)) == SQLITE_ROW) {
        char name[128];
        snprintf(name, sizeof name, "%s", (const char *)sqlite3_column_text(st, 0));
        rc = dump_table(f, b, name);
    }
    ms_fsm_done(f, st);
    if (rc == 0 && s != SQLITE_DONE)
        rc = -EIO;
    if (rc == 0 && b->err)
        rc = -ENOMEM;
    return rc;
}

int ms_fsm_dump(ms_fsm_t *f, char **out, size_t *len)
{
    ms_buf_t b = MS_BUF_INIT;
    int rc = dump(f, &b);
    if (rc == 0 && !ms_buf_cstr(&b))
        rc = -ENOMEM;
    if (rc < 0) {
        ms_buf_free(&b);
        return rc;
    }
    *out = (char *)b.data;
    *len = b.len;
    return 0;
}

int ms_fsm_checksum(ms_fsm_t *f, char out[65])
{
    /* The dump reads the whole state: callers ask several times per control
     * tick (cluster info, membership checks), the state changes less often. */
    if (f->sum_valid && f->sum_seq == f->seq) {
        memcpy(out, f->sum, sizeof f->sum);
        return 0;
    }
    ms_buf_t b = MS_BUF_INIT;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int rc = dump(f, &b);
    if (rc == 0 && EVP_Digest(b.data, b.len, md, &mdlen, EVP_sha256(), NULL) != 1)
        rc = -ENOMEM;
    ms_buf_free(&b);
    if (rc < 0)
        return rc;
    static const char hex[] = "0123456789abcdef";
    for (unsigned i = 0; i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
    memcpy(f->sum, out, sizeof f->sum);
    f->sum_seq = f->seq;
    f->sum_valid = 1;
    return 0;
}

/* ---- snapshot / restore -------------------------------------------- */

int ms_fsm_snapshot(ms_fsm_t *f, void *(*alloc)(size_t), void **out, size_t *len)
{
    sqlite3_int64 sz = 0;
    unsigned char *img = sqlite3_serialize(f->db, "main", &sz, 0);
    if (!img)
        return -ENOMEM;
    size_t n = SNAP_HDR + (size_t)sz;
    uint8_t *p = alloc(n);
    if (!p) {
        sqlite3_free(img);
        return -ENOMEM;
    }
    memcpy(p, SNAP_MAGIC, 8);
    uint64_t u = (uint64_t)sz;
    for (int i = 0; i < 8; i++)
        p[8 + i] = (uint8_t)(u >> (56 - 8 * i));
    memcpy(p + SNAP_HDR, img, (size_t)sz);
    sqlite3_free(img);
    *out = p;
    *len = n;
    f->snapshots++;
    return 0;
}

int ms_fsm_restore(ms_fsm_t *f, const void *data, size_t len)
{
    const uint8_t *p = data;
    if (len < SNAP_HDR || memcmp(p, SNAP_MAGIC, 8) != 0)
        return -EINVAL;
    uint64_t sz = 0;
    for (int i = 0; i < 8; i++)
        sz = (sz << 8) | p[8 + i];
    if (sz != len - SNAP_HDR || sz == 0)
        return -EINVAL;

    ms_fsm_t tmp = *f;
    memset(tmp.stc, 0, sizeof tmp.stc); /* f's statements belong to f->db */
    tmp.nstc = 0;
    int rc = open_db(&tmp.db);
    if (rc < 0)
        return rc;
    unsigned char *img = sqlite3_malloc64(sz);
    if (!img) {
        sqlite3_close(tmp.db);
        return -ENOMEM;
    }
    memcpy(img, p + SNAP_HDR, (size_t)sz);
    if (sqlite3_deserialize(tmp.db, "main", img, (sqlite3_int64)sz, (sqlite3_int64)sz,
                            SQLITE_DESERIALIZE_FREEONCLOSE | SQLITE_DESERIALIZE_RESIZEABLE) !=
        SQLITE_OK) {
        sqlite3_close(tmp.db); /* FREEONCLOSE: img is freed even on failure */
        return -EINVAL;
    }
    int64_t ok = 0;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(tmp.db, "PRAGMA quick_check", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(st, 0);
        ok = t && strcmp(t, "ok") == 0;
    }
    sqlite3_finalize(st);
    if (!ok || load_meta(&tmp) < 0) {
        stmt_cache_clear(&tmp);
        sqlite3_close(tmp.db);
        return -EINVAL;
    }
    stmt_cache_clear(f);
    sqlite3_close(f->db);
    *f = tmp;
    f->sum_valid = 0; /* another state, maybe at the same seq */
    f->restores++;
    f->changes++;
    return 0;
}
