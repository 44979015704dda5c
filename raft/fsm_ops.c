/* The whitelisted ops of the replicated state and its versioned schema
 * (docs/cluster.md "Commands", "Tables"). Every op is a deterministic
 * function of (state, args, ts): it validates its args, rejects with a
 * status (400 bad input, 404 unknown reference, 409 conflict) or changes
 * rows. Times stored are derived from the command's ts only. */
#include "raft/fsm_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/ipaddr.h"

/* Seconds between two transfers of one stream (seed rule: once per hour). */
#define MS_TRANSFER_INTERVAL_S 3600

/* ---- schema --------------------------------------------------------- */

/* schema[v - 1] builds version v from v - 1. Never edit a released entry:
 * add a new version (it is replayed from the log on every node). */
static const char *const schema_steps[MS_FSM_SCHEMA_LATEST] = {
    /* 1: the cluster state (docs/cluster.md "Tables") */
    "CREATE TABLE servers(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    " addresses TEXT NOT NULL, grp TEXT NOT NULL, distribution INTEGER NOT NULL,"
    " stream_limit INTEGER NOT NULL, bitrate_limit_kbps INTEGER NOT NULL,"
    " storage_total INTEGER NOT NULL DEFAULT 0, storage_used INTEGER NOT NULL DEFAULT 0,"
    " load TEXT, health TEXT NOT NULL DEFAULT 'unknown',"
    " last_report_ms INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL,"
    " rev INTEGER NOT NULL);"
    "CREATE TABLE server_groups(name TEXT PRIMARY KEY, subnets TEXT NOT NULL,"
    " rev INTEGER NOT NULL);"
    "CREATE TABLE clusters(name TEXT PRIMARY KEY, grp TEXT NOT NULL, main TEXT NOT NULL,"
    " additional TEXT, rev INTEGER NOT NULL);"
    "CREATE TABLE streams(uid TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, url TEXT NOT NULL,"
    " enabled INTEGER NOT NULL, channels TEXT NOT NULL, transport TEXT NOT NULL,"
    " reconnect_interval_ms INTEGER NOT NULL, reconnect_max_interval_ms INTEGER NOT NULL,"
    " dvr_enabled INTEGER NOT NULL, dvr_depth_s INTEGER NOT NULL, dvr_chunk_s INTEGER NOT NULL,"
    " dvr_mode TEXT NOT NULL, access_mode TEXT NOT NULL, access_whitelist TEXT NOT NULL,"
    " camera TEXT NOT NULL, quality TEXT NOT NULL, reserve INTEGER NOT NULL, grp TEXT NOT NULL,"
    " extra TEXT NOT NULL, primary_server TEXT, backup_server TEXT,"
    " role TEXT NOT NULL DEFAULT 'primary', state TEXT NOT NULL DEFAULT 'active',"
    " transferred_at INTEGER NOT NULL DEFAULT 0, added TEXT NOT NULL,"
    " created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, rev INTEGER NOT NULL);"
    "CREATE INDEX streams_primary ON streams(primary_server);"
    "CREATE INDEX streams_backup ON streams(backup_server);"
    "CREATE TABLE archive_locations(stream_uid TEXT NOT NULL, server TEXT NOT NULL,"
    " ranges TEXT NOT NULL, updated_at INTEGER NOT NULL, PRIMARY KEY(stream_uid, server));",
    /* 2: cluster-wide settings (op setting_set) */
    "CREATE TABLE settings(key TEXT PRIMARY KEY, value TEXT NOT NULL,"
    " updated_at INTEGER NOT NULL);",
    /* 3: where a stream defined by a stream file came from (node name, file name) */
    "ALTER TABLE streams ADD COLUMN source_node TEXT;"
    "ALTER TABLE streams ADD COLUMN source_file TEXT;",
};

static int schema_build(ms_fsm_t *f, int to, json_t **res)
{
    for (int v = f->schema + 1; v <= to; v++) {
        if (sqlite3_exec(f->db, schema_steps[v - 1], NULL, NULL, NULL) != SQLITE_OK)
            return -EIO;
    }
    int from = f->schema;
    int rc = ms_fsm_meta_set(f, "schema", to);
    if (rc < 0)
        return rc;
    f->schema = to;
    *res = json_pack("{s:b, s:i, s:i}", "ok", 1, "from", from, "schema", to);
    return 0;
}

static int schema_target(ms_fsm_t *f, json_t *args, const char *key, int *to, json_t **res)
{
    json_t *v = json_object_get(args, key);
    if (!json_is_integer(v) || json_integer_value(v) < 1) {
        *res = ms_fsm_reject(400, key, "schema version must be an integer >= 1");
        return 0;
    }
    if (json_integer_value(v) > MS_FSM_SCHEMA_LATEST)
        return -EPROTO; /* a newer binary wrote this: stop rather than diverge */
    *to = (int)json_integer_value(v);
    (void)f;
    return 1;
}

static int op_schema_init(ms_fsm_t *f, const ms_fsm_ctx_t *c, json_t **res)
{
    int to = 0;
    int rc = schema_target(f, c->args, "version", &to, res);
    if (rc <= 0)
        return rc;
    if (f->schema != 0) {
        *res = ms_fsm_reject(409, "version", "schema already initialised (version %d)", f->schema);
        return 0;
    }
    return schema_build(f, to, res);
}

static int op_schema_upgrade(ms_fsm_t *f, const ms_fsm_ctx_t *c, json_t **res)
{
    int to = 0;
    int rc = schema_target(f, c->args, "to", &to, res);
    if (rc <= 0)
        return rc;
    if (to < f->schema) {
        *res = ms_fsm_reject(409, "to", "cannot downgrade schema %d to %d", f->schema, to);
        return 0;
    }
    return schema_build(f, to, res);
}

/* ---- argument helpers ---------------------------------------------- */

/* Each helper returns 1 when the value is usable, 0 after setting a
 * rejection in *res. Absent keys take the default (or reject when
 * required). */

static int name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= 64 || s[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              ch == '-' || ch == '_' || ch == '.'))
            return 0;
    }
    return 1;
}

static int arg_str(json_t *o, const char *key, const char *field, const char *def, size_t max,
                   const char **out, json_t **res)
{
    json_t *v = json_object_get(o, key);
    if (!v) {
        if (!def) {
            *res = ms_fsm_reject(400, field, "required");
            return 0;
        }
        *out = def;
        return 1;
    }
    if (!json_is_string(v) || json_string_length(v) > max ||
        strlen(json_string_value(v)) != json_string_length(v)) {
        *res = ms_fsm_reject(400, field, "must be a string of at most %zu bytes", max);
        return 0;
    }
    *out = json_string_value(v);
    return 1;
}

static int arg_name(json_t *o, const char *key, const char *field, const char **out, json_t **res)
{
    if (!arg_str(o, key, field, NULL, 63, out, res))
        return 0;
    if (!name_ok(*out)) {
        *res = ms_fsm_reject(400, field, "must be 1-63 characters of [A-Za-z0-9._-]");
        return 0;
    }
    return 1;
}

static int arg_enum(json_t *o, const char *key, const char *field, const char *def,
                    const char *const *vals, const char **out, json_t **res)
{
    if (!arg_str(o, key, field, def, 32, out, res))
        return 0;
    for (const char *const *p = vals; *p; p++)
        if (strcmp(*p, *out) == 0)
            return 1;
    *res = ms_fsm_reject(400, field, "unknown value '%s'", *out);
    return 0;
}

static int arg_bool(json_t *o, const char *key, const char *field, int def, int64_t *out,
                    json_t **res)
{
    json_t *v = json_object_get(o, key);
    if (!v) {
        *out = def;
        return 1;
    }
    if (!json_is_boolean(v)) {
        *res = ms_fsm_reject(400, field, "must be true or false");
        return 0;
    }
    *out = json_is_true(v);
    return 1;
}

static int arg_int(json_t *o, const char *key, const char *field, int has_def, int64_t def,
                   int64_t min, int64_t max, int64_t *out, json_t **res)
{
    json_t *v = json_object_get(o, key);
    if (!v) {
        if (!has_def) {
            *res = ms_fsm_reject(400, field, "required");
            return 0;
        }
        *out = def;
        return 1;
    }
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        *res = ms_fsm_reject(400, field, "must be an integer in [%lld, %lld]", (long long)min,
                             (long long)max);
        return 0;
    }
    *out = json_integer_value(v);
    return 1;
}

/* An array of strings (each at most max bytes, at most maxn items), or the
 * empty array when absent. *out borrows from o or is a new empty array
 * owned by the caller when absent (then *owned = 1). */
static int arg_str_array(json_t *o, const char *key, const char *field, size_t maxn, size_t max,
                         json_t **out, json_t **res)
{
    json_t *v = json_object_get(o, key);
    if (!v) {
        *out = NULL;
        return 1;
    }
    if (!json_is_array(v) || json_array_size(v) > maxn) {
        *res = ms_fsm_reject(400, field, "must be an array of at most %zu strings", maxn);
        return 0;
    }
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e)
    {
        if (!json_is_string(e) || json_string_length(e) > max ||
            strlen(json_string_value(e)) != json_string_length(e)) {
            *res = ms_fsm_reject(400, field, "item %zu must be a string", i);
            return 0;
        }
    }
    *out = v;
    return 1;
}

static int check_object(json_t *o, const char *field, json_t **res)
{
    if (o && !json_is_object(o)) {
        *res = ms_fsm_reject(400, field, "must be an object");
        return 0;
    }
    return 1;
}

/* Rejects keys of a nested object that are not in allowed. */
static int only_keys(json_t *o, const char *field, const char *const *allowed, json_t **res)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        const char *const *p = allowed;
        while (*p && strcmp(*p, k) != 0)
            p++;
        if (!*p) {
            *res = ms_fsm_reject(400, field, "unknown key '%s'", k);
            return 0;
        }
    }
    return 1;
}

/* IPv4/IPv6 CIDR "a.b.c.d/n" or "x::y/n" (RFC 4632 section 3.1): the
 * prefix length is required and may have leading zeros. This decides what an
 * applied entry stores, so it must not change between versions. */
static int cidr_ok(const char *s)
{
    ms_cidr_t c;
    return ms_cidr_parse_opt(s, MS_CIDR_NEED_PREFIX | MS_CIDR_LEADING_ZEROS, &c, NULL) == 0;
}

/* ---- rows → JSON ---------------------------------------------------- */

static const char *const json_columns[] = {"addresses", "subnets", "channels", "access_whitelist",
                                           "ranges",    "load",    "extra",    "value",
                                           NULL};

json_t *ms_fsm_row_json(sqlite3_stmt *st)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    int n = sqlite3_column_count(st);
    for (int i = 0; i < n; i++) {
        const char *name = sqlite3_column_name(st, i);
        json_t *v = NULL;
        switch (sqlite3_column_type(st, i)) {
        case SQLITE_INTEGER:
            v = json_integer(sqlite3_column_int64(st, i));
            break;
        case SQLITE_FLOAT:
            v = json_real(sqlite3_column_double(st, i));
            break;
        case SQLITE_TEXT: {
            const char *t = (const char *)sqlite3_column_text(st, i);
            int is_json = 0;
            for (const char *const *p = json_columns; *p; p++)
                is_json |= strcmp(*p, name) == 0;
            v = is_json ? json_loads(t, JSON_DECODE_ANY, NULL) : json_string(t);
            break;
        }
        default:
            v = json_null();
            break;
        }
        if (strcmp(name, "grp") == 0)
            name = "group";
        json_object_set_new(o, name, v ? v : json_null());
    }
    return o;
}

/* Runs a query and returns its rows as an array (new reference). */
static json_t *query_rows(ms_fsm_t *f, const char *sql, const char *key)
{
    sqlite3_stmt *st;
    if (ms_fsm_prep(f, &st, sql, key ? "t" : "", key) < 0)
        return NULL;
    json_t *arr = json_array();
    int s;
    while (arr && (s = sqlite3_step(st)) == SQLITE_ROW)
        json_array_append_new(arr, ms_fsm_row_json(st));
    ms_fsm_done(f, st);
    return arr;
}

static json_t *query_one(ms_fsm_t *f, const char *sql, const char *key)
{
    json_t *arr = query_rows(f, sql, key);
    json_t *one = json_incref(json_array_get(arr, 0));
    json_decref(arr);
    return one;
}

/* The stored stream as the stream object of docs/config.md "Stream config" plus "placement". */
static json_t *stream_json(json_t *row)
{
    if (!row)
        return NULL;
    json_t *o = json_object();
    json_t *extra = json_object_get(row, "extra");
    if (json_is_object(extra))
        json_object_update(o, extra);
#define G(k) json_incref(json_object_get(row, k))
    json_object_set_new(o, "uid", G("uid"));
    json_object_set_new(o, "name", G("name"));
    json_object_set_new(o, "url", G("url"));
    json_object_set_new(o, "enabled",
                        json_boolean(json_integer_value(json_object_get(row, "enabled"))));
    json_object_set_new(o, "channels", G("channels"));
    json_object_set_new(o, "transport", G("transport"));
    json_object_set_new(o, "reconnect",
                        json_pack("{s:O, s:O}", "interval_ms",
                                  json_object_get(row, "reconnect_interval_ms"), "max_interval_ms",
                                  json_object_get(row, "reconnect_max_interval_ms")));
    json_object_set_new(o, "dvr",
                        json_pack("{s:b, s:O, s:O, s:O}", "enabled",
                                  (int)json_integer_value(json_object_get(row, "dvr_enabled")),
                                  "depth_s", json_object_get(row, "dvr_depth_s"), "chunk_s",
                                  json_object_get(row, "dvr_chunk_s"), "mode",
                                  json_object_get(row, "dvr_mode")));
    json_object_set_new(o, "access",
                        json_pack("{s:O, s:O}", "mode", json_object_get(row, "access_mode"),
                                  "whitelist", json_object_get(row, "access_whitelist")));
    json_object_set_new(o, "camera", G("camera"));
    json_object_set_new(o, "quality", G("quality"));
    json_object_set_new(o, "reserve",
                        json_boolean(json_integer_value(json_object_get(row, "reserve"))));
    json_object_set_new(o, "group", G("group"));
    json_object_set_new(
        o, "placement",
        json_pack("{s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:O}", "primary",
                  json_object_get(row, "primary_server"), "backup",
                  json_object_get(row, "backup_server"), "role", json_object_get(row, "role"),
                  "state", json_object_get(row, "state"), "transferred_at",
                  json_object_get(row, "transferred_at"), "added", json_object_get(row, "added"),
                  "created_at", json_object_get(row, "created_at"), "updated_at",
                  json_object_get(row, "updated_at"), "rev", json_object_get(row, "rev")));
    if (json_is_string(json_object_get(row, "source_node")))
        json_object_set_new(json_object_get(o, "placement"), "source",
                            json_pack("{s:O, s:O}", "node", json_object_get(row, "source_node"),
                                      "file", json_object_get(row, "source_file")));
#undef G
    json_decref(row);
    return o;
}

static json_t *stream_by_uid(ms_fsm_t *f, const char *uid)
{
    return stream_json(query_one(f, "SELECT * FROM streams WHERE uid = ?", uid));
}

json_t *ms_fsm_get_stream(ms_fsm_t *f, const char *id)
{
    if (f->schema < 1)
        return NULL;
    json_t *row = query_one(f, "SELECT * FROM streams WHERE uid = ?", id);
    if (!row)
        row = query_one(f, "SELECT * FROM streams WHERE name = ?", id);
    return stream_json(row);
}

json_t *ms_fsm_list(ms_fsm_t *f, const char *table)
{
    if (f->schema < 1)
        return json_array();
    if (strcmp(table, "streams") == 0) {
        json_t *rows = query_rows(f, "SELECT * FROM streams ORDER BY name", NULL);
        json_t *out = json_array();
        size_t i;
        json_t *r;
        json_array_foreach(rows, i, r) json_array_append_new(out, stream_json(json_incref(r)));
        json_decref(rows);
        return out;
    }
    if (strcmp(table, "servers") == 0)
        return query_rows(f, "SELECT * FROM servers ORDER BY name", NULL);
    if (strcmp(table, "groups") == 0)
        return query_rows(f, "SELECT * FROM server_groups ORDER BY name", NULL);
    if (strcmp(table, "clusters") == 0)
        return query_rows(f, "SELECT * FROM clusters ORDER BY name", NULL);
    if (strcmp(table, "archive") == 0)
        return query_rows(f, "SELECT * FROM archive_locations ORDER BY stream_uid, server", NULL);
    return NULL;
}

/* ---- lookups -------------------------------------------------------- */

static int server_exists(ms_fsm_t *f, const char *name)
{
    int64_t v;
    return ms_fsm_sql_int(f, &v, "SELECT 1 FROM servers WHERE name = ?", "t", name);
}

/* Resolves a stream by uid, then by name, into uid (64 bytes). 1, 0, <0. */
static int stream_resolve(ms_fsm_t *f, const char *id, char uid[64])
{
    sqlite3_stmt *st;
    int rc = ms_fsm_prep(f, &st,
                         "SELECT uid FROM streams WHERE uid = ?1 UNION ALL "
                         "SELECT uid FROM streams WHERE name = ?1 LIMIT 1",
                         "t", id);
    if (rc < 0)
        return rc;
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        snprintf(uid, 64, "%s", (const char *)sqlite3_column_text(st, 0));
        rc = 1;
    } else {
        rc = s == SQLITE_DONE ? 0 : -EIO;
    }
    ms_fsm_done(f, st);
    return rc;
}

static int arg_stream(ms_fsm_t *f, json_t *args, char uid[64], json_t **res)
{
    const char *id;
    if (!arg_str(args, "stream", "stream", NULL, 63, &id, res))
        return 0;
    int rc = stream_resolve(f, id, uid);
    if (rc == 0)
        *res = ms_fsm_reject(404, "stream", "no such stream '%s'", id);
    return rc;
}

/* ---- servers -------------------------------------------------------- */

static int op_server_upsert(ms_fsm_t *f, const ms_fsm_ctx_t *c, json_t **res)
{
    json_t *a = c->args, *addrs;
    const char *name, *grp;
    int64_t id, dist, slimit, blimit, other;
    if (!arg_int(a, "id", "id", 0, 0, 1, INT64_MAX, &id, res) ||
        !arg_name(a, "name", "name", &name, res) ||
        !arg_str_array(a, "addresses", "addresses", 16, 255, &addrs, res) ||
        !arg_str(a, "group", "group", "default", 63, &grp, res) ||
        !arg_bool(a, "distribution", "distribution", 1, &dist, res) ||
        !arg_int(a, "stream_limit", "stream_limit", 1, 1000, 0, INT32_MAX, &slimit, res) ||
        !arg_int(a, "bitrate_limit_kbps", "bitrate_limit_kbps", 1, 2000000, 0, INT64_MAX / 2,
                 &blimit, res))
        return 0;
    int rc = ms_fsm_sql_int(f, &other, "SELECT id FROM servers WHERE name = ? AND id != ?", "ti",
                            name, id);
    if (rc < 0)
        return rc;
    if (rc == 1) {
        *res = ms_fsm_reject(409, "name", "server name '%s' is used by id %lld", name,
                             (long long)other);
        return 0;
    }
    json_t *empty = addrs ? NULL : json_array();
    rc = ms_fsm_sql(
        f,
        "INSERT INTO servers(id, name, addresses, grp, distribution, stream_limit,"
        " bitrate_limit_kbps, created_at, rev) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 1)"
        " ON CONFLICT(id) DO UPDATE SET name = ?2, addresses = ?3, grp = ?4,"
        " distribution = ?5, stream_limit = ?6, bitrate_limit_kbps = ?7,"
        " rev = rev + 1",
        "itjtiiii", id, name, addrs ? addrs : empty, grp, dist, slimit, blimit, c->ts / 1000);
    json_decref(empty);
    if (rc < 0)
        return rc;
    json_t *row = query_one(f, "SELECT * FROM servers WHERE name = ?", name);
    *res = json_pack("{s:b, s:o}", "ok", 1, "server", row ? row : json_null());
    return 0;
}

static int op_server_report(ms_fsm_t *f, const ms_fsm_ctx_t *c, json_t **res)
{
    json_t *a = c->args, *load = json_object_get(a, "load");
    const char *name, *health;
    int64_t total, used;
    static const char *const healths[] = {"up", "down", "unknown", NULL};
    if (!arg_name(a, "name", "name", &name, res) ||
        !arg_int(a, "storage_total", "storage_total", 1, 0, 0, INT64_MAX, &total, res) ||
        !arg_int(a, "storage_used", "storage_used", 1, 0, 0, INT64_MAX, &used, res) ||
        !arg_enum(a, "health", "health", "up", healths, &health, res) ||
        !check_object(load, "load", res))
        return 0;
    int rc = ms_fsm_sql(f,
                        "UPDATE servers SET storage_total = ?, storage_used = ?, load = ?,"
                        " health = ?, last_report_ms = ? WHERE name = ?",
                        "iijtit", total, used, load, health, c->ts, name);
    if (rc < 0)
        return rc;
    if (sqlite3_changes(f->db) == 0) {
        *res = ms_fsm_reject(404, "name", "no such server '%s'", name);
        return 0;
    }
    *res = json_pack("{s:b}", "ok", 1);
    return 0;
}

static int op_server_set_health(ms_fsm_t *f, const ms_fsm_ctx_t *c, json_t **res)
{
    const char *name, *health;
    static const char *const healths[] = {"up", "down", "unknown", NULL};
    if (!arg_name(c->args, "name", "name", &name, res) ||
        !arg_enum(c->args, "health", "health", NULL, healths, &health, res))
        return 0;
    int rc = ms_fsm_sql(f, "UPDATE servers SET health = ?, rev = rev + 1 WHERE name = ?", "tt",
                        health, name);
    if (rc < 0)
        return rc;
    if (sqlite3_changes(f->db) == 0) {
        *res = ms_fsm_reject(404, "name", "no such server '%s'", name);
        return 0;
    }
    *res = json_pack("{s:b}", "ok", 1);
    return 0;
}

static int op_server_remove(ms_fsm_t *f, const ms_fsm_ctx_t *c, json_t **res)
{
    const char *name;
    int64_t v;
    if (!arg_name(c->args, "name", "name", &name, res))
        return 0;
    int rc = ms_fsm_sql_int(f, &v,
                            "SELECT 1 FROM streams WHERE primary_server = ?1 OR backup_server = ?1"
                            " UNION ALL SELECT 1 FROM clusters WHERE main = ?1 OR additional = ?1",
                            "t", name);
    if (rc < 0)
        return rc;
    if (rc == 1) {
        *res = ms_fsm_reject(409, "name", "server '%s' still holds streams or clusters", name);
        return 0;
    }
    if ((rc = ms_fsm_sql(f, "DELETE FROM servers WHERE name = ?", "t", name)) < 0)
        return rc;
    if (sqlite3_changes(f->db) == 0) {
        *res = ms_fsm_reject(404, "name", "no such server '%s'", name);
        return 0;
    }
    *res = json_pack("{s:b}", "ok", 1);
    return 0;
}

/* ---- groups and clusters ------------------------------------------- */

static int op_group_upsert(ms_fsm_t *f, const ms_fsm_ctx_t *c, json_t **res)
{
    const char *name;
    json_t *subnets;
    if (!arg_name(c->args, "name", "name", &name, res) ||
        !arg_str_array(c->args, "subnets", "subnets", 256, 64, &subnets, res))
        return 0;
    size_t i;
    json_t *e;
    json_array_foreach(subnets, i, e)
    {
        if (!cidr_ok(json_string_value(e))) {
            *res = ms_fsm_reject(400, "subnets", "'%s' is not a CIDR subnet", json_string_value(e));
            return 0;
        }
    }
    json_t *empty = subnets ? NULL : json_array();
    int rc = ms_fsm_sql(f,
                        "INSERT INTO server_groups(name, subnets, rev) VALUES(?1, ?2, 1)"
                        " ON CONFLICT(name) DO UPDATE SET subnets = ?2, rev = rev + 1",
                        "tj", name, subnets ? subnets : empty);
    json_decref(empty);
    if (rc < 0)
        return rc;
    json_t *row = query_one(f, "SELECT * FROM server_groups WHERE name = ?", name);
    *res = json_pack("{s:b, s:o}", "ok", 1, "group", row ? row : json_null());
    return 0;
}

static int op_group_remove(ms_fsm_t *f, const ms_fsm_ctx_t *c, json_t **res)
{
    const char *name;
    int64_t v;
    if (!arg_name(c->args, "name", "name", &name, res))
        return 0;
    int rc = ms_fsm_sql_int(f, &v, "SELECT 1 FROM clusters WHERE grp = ?", "t", name);
    if (rc < 0)
        return rc;
    if (rc == 1) {
        *res = ms_fsm_reject(409, "name", "group '%s' still has clusters", name);
        return 0;
    }
    if ((rc = ms_fsm_sql(f, "DELETE FROM server_groups WHERE name = ?", "t", name)) < 0)
        return rc;
    if (sqlite3_changes(f->db) == 0) {
        *res = ms_fsm_reject(404, "name", "no such group '%s'", name);
        return 0;
    }
    *res = json_pack("{s:b}", "ok", 1);
    return 0;
}

static int op_cluster_upsert(ms_fsm_t *f, const ms_fsm_ctx_t *c, json_t **res)
{
    json_t *a = c->args;
    const char *name, *grp, *mainsrv, *add = NULL;
    if (!arg_name(a, "name", "name", &name, res) ||
        !arg_str(a, "group", "group", "default", 63, &grp, res) ||
        !arg_name(a, "main", "main", &mainsrv, res))
        return 0;
    json_t *av = json_object_get(a, "additional");
    if (av && !json_is_null(av) && !arg_name(a, "additional", "additional", &add, res))
        return 0;
    int rc = server_exists(f, mainsrv);
    if (rc <= 0) {
        *res = rc < 0 ? NULL : ms_fsm_reject(404, "main", "no such server '%s'", mainsrv);
        return rc;
    }
    if (add) {
        if (strcmp(add, mainsrv) == 0) {
            *res = ms_fsm_reject(400, "additional", "main and additional must differ");
            return 0;
        }
        rc = server_exists(f, add);
        if (rc <= 0) {
            *res = rc < 0 ? NULL : ms_fsm_reject(404, "additional", "no such server '%s'", add);
            return rc;
        }
    }
    rc = ms_fsm_sql(f,
                    "INSERT INTO clusters(name, grp, main, additional, rev) VALUES(?1,?2,?3,?4,1)"
                    " ON CONFLICT(name) DO UPDATE SET grp = ?2, main = ?3, additional = ?4,"
                    " rev = rev + 1",
                    "tttt", name, grp, mainsrv, add);
    if (rc < 0)
        return rc;
    json_t *row = query_one(f, "SELECT * FROM clusters WHERE name = ?", name);
    *res = json_pack("{s:b, s:o}", "ok", 1, "cluster", row ? row : json_null());
    return 0;
}

static int op_cluster_remove(ms_fsm_t *f, const ms_fsm_ctx_t *c, json_t **res)
{
    const char *name;
    if (!arg_name(c->args, "name", "name", &name, res))
        return 0;
    int rc = ms_fsm_sql(f, "DELETE FROM clusters WHERE name = ?", "t", name);
    if (rc < 0)
        return rc;
    if (sqlite3_changes(f->db) == 0) {
        *res = ms_fsm_reject(404, "name", "no such cluster '%s'", name);
        return 0;
    }
    *res = json_pack("{s:b}", "ok", 1);
    return 0;
}

/* ---- streams -------------------------------------------------------- */

typedef struct {
    const char *uid, *name, *url, *transport, *dvr_mode, *access_mode, *camera, *quality, *grp;
    json_t *channels, *whitelist, *extra;
    int64_t enabled, rci, rcmax, dvr_enabled, depth, chunk, reserve;
} stream_args_t;

static const char *const stream_keys[] = {"uid",       "name",      "url",   "enabled", "channels",
                                          "transport", "reconnect", "dvr",   "access",  "camera",
                                          "quality",   "reserve",   "group", NULL};

/* Validates the stream object (docs/config.md "Stream config"). Unknown top-level keys (product
 * extensions) are kept verbatim in sa->extra (new reference). */
static int stream_parse(json_t *s, stream_args_t *sa, json_t **res)
{
    static const char *const transports[] = {"auto", "tcp", "udp", NULL};
    static const char *const modes[] = {"continuous", "event", NULL};
    static const char *const access[] = {"public", "protected", "private", NULL};
    static const char *const quals[] = {"high", "low", NULL};
    static const char *const chans[] = {"video", "audio", "application", NULL};
    static const char *const rc_keys[] = {"interval_ms", "max_interval_ms", NULL};
    static const char *const dvr_keys[] = {"enabled", "depth_s", "chunk_s", "mode", NULL};
    static const char *const acc_keys[] = {"mode", "whitelist", NULL};
    memset(sa, 0, sizeof *sa);
    if (!json_is_object(s)) {
        *res = ms_fsm_reject(400, "stream", "must be an object");
        return 0;
    }
    json_t *rcn = json_object_get(s, "reconnect"), *dvr = json_object_get(s, "dvr"),
           *acc = json_object_get(s, "access");
    if (!arg_name(s, "uid", "uid", &sa->uid, res) || !arg_name(s, "name", "name", &sa->name, res) ||
        !arg_str(s, "url", "url", "", 2047, &sa->url, res) ||
        !arg_bool(s, "enabled", "enabled", 1, &sa->enabled, res) ||
        !arg_str_array(s, "channels", "channels", 3, 16, &sa->channels, res) ||
        !arg_enum(s, "transport", "transport", "auto", transports, &sa->transport, res) ||
        !check_object(rcn, "reconnect", res) || !check_object(dvr, "dvr", res) ||
        !check_object(acc, "access", res) || !only_keys(rcn, "reconnect", rc_keys, res) ||
        !only_keys(dvr, "dvr", dvr_keys, res) || !only_keys(acc, "access", acc_keys, res) ||
        !arg_int(rcn, "interval_ms", "reconnect.interval_ms", 1, 1000, 1, 3600000, &sa->rci, res) ||
        !arg_int(rcn, "max_interval_ms", "reconnect.max_interval_ms", 1, 30000, 1, 3600000,
                 &sa->rcmax, res) ||
        !arg_bool(dvr, "enabled", "dvr.enabled", 0, &sa->dvr_enabled, res) ||
        !arg_int(dvr, "depth_s", "dvr.depth_s", 1, 604800, 0, INT32_MAX, &sa->depth, res) ||
        !arg_int(dvr, "chunk_s", "dvr.chunk_s", 1, 10, 1, 3600, &sa->chunk, res) ||
        !arg_enum(dvr, "mode", "dvr.mode", "continuous", modes, &sa->dvr_mode, res) ||
        !arg_enum(acc, "mode", "access.mode", "public", access, &sa->access_mode, res) ||
        !arg_str_array(acc, "whitelist", "access.whitelist", 1024, 64, &sa->whitelist, res) ||
        !arg_str(s, "camera", "camera", "", 127, &sa->camera, res) ||
        !arg_enum(s, "quality", "quality", "high", quals, &sa->quality, res) ||
        !arg_bool(s, "reserve", "reserve", 0, &sa->reserve, res) ||
        !arg_str(s, "group", "group", "", 63, &sa->grp, res))
        return 0;
    if (sa->rcmax < sa->rci) {
        *res = ms_fsm_reject(400, "reconnect.max_interval_ms", "must be >= interval_ms");
        return 0;
    }
    size_t i, j;
    json_t *e, *e2;
    json_array_foreach(sa->channels, i, e)
    {
        const char *const *p = chans;
        while (*p && strcmp(*p, json_string_value(e)) != 0)
            p++;
        if (!*p) {
            *res = ms_fsm_reject(400, "channels", "unknown channel '%s'", json_string_value(e));
            return 0;
        }
        json_array_foreach(sa->channels, j, e2) if (j < i && json_equal(e, e2))
        {
            *res = ms_fsm_reject(400, "channels", "duplicate channel '%s'", json_string_value(e));
            return 0;
        }
    }
    sa->extra = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(s, k, v)
    {
        const char *const *p = stream_keys;
        while (*p && strcmp(*p, k) != 0)
            p++;
        if (!*p)
            json_object_set(sa->extra, k, v);
    }
    return 1;
}

static int op_stream_upsert(ms_fsm_t *f, const ms_fsm_ctx_t *c, json_t **res)
{
    static const char *const added_vals[] = {"manual", "auto", NULL};
    stream_args_t sa;
    const char *added;
    int64_t v;
    if (!arg_enum(c->args, "added", "added", "manual", added_vals, &added, res) ||
        !stream_parse(json_object_get(c->args, "stream"), &sa, res))
        return 0;
    int rc = ms_fsm_sql_int(f, &v, "SELECT 1 FROM streams WHERE name = ? AND uid != ?", "tt",
                            sa.name, sa.uid);
    if (rc != 0) {
        json_decref(sa.extra);
        if (rc == 1)
            *res = ms_fsm_reject(409, "name", "stream name '%s' is taken", sa.name);
        return rc < 0 ? rc : 0;
    }
    int64_t created = 0;
    rc = ms_fsm_sql_int(f, &v, "SELECT 1 FROM streams WHERE uid = ?", "t", sa.uid);
    if (rc < 0) {
        json_decref(sa.extra);
        return rc;
    }
    created = rc == 0;
    json_t *defchan = sa.channels ? NULL : json_pack("[s, s]", "video", "audio");
    json_t *emptywl = sa.whitelist ? NULL : json_array();
    int64_t now_s = c->ts / 1000;
    rc = ms_fsm_sql(f,
                    "INSERT INTO streams(uid, name, url, enabled, channels, transport,"
                    " reconnect_interval_ms, reconnect_max_interval_ms, dvr_enabled, dvr_depth_s,"
                    " dvr_chunk_s, dvr_mode, access_mode, access_whitelist, camera, quality,"
                    " reserve, grp, extra, added, created_at, updated_at, rev)"
                    " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,"
                    " ?20, ?21, ?21, 1)"
                    " ON CONFLICT(uid) DO UPDATE SET name=?2, url=?3, enabled=?4, channels=?5,"
                    " transport=?6, reconnect_interval_ms=?7, reconnect_max_interval_ms=?8,"
                    " dvr_enabled=?9, dvr_depth_s=?10, dvr_chunk_s=?11, dvr_mode=?12,"
                    " access_mode=?13, access_whitelist=?14, camera=?15, quality=?16,"
                    " reserve=?17, grp=?18, extra=?19, updated_at=?21, rev = rev + 1",
                    "tttijtiiiiittjttitjti", sa.uid, sa.name, sa.url, sa.enabled,
                    sa.channels ? sa.channels : defchan, sa.transport, sa.rci, sa.rcmax,
                    sa.dvr_enabled, sa.depth, sa.chunk, sa.dvr_mode, sa.access_mode,
                    sa.whitelist ? sa.whitelist : emptywl, sa.camera, sa.quality, sa.reserve,
                    sa.grp, sa.extra, added, now_s);
    json_decref(defchan);
    json_decref(emptywl);
    json_decref(sa.extra);
    if (rc < 0)
        return rc;
    if (f->schema >= 3) {
        /* schema 3: the origin of a stream file (both or neither; an API write clears it) */
        const char *sn = json_string_value(json_object_get(c->args, "source_node"));
        const char *sf = json_string_value(json_object_get(c->args, "source_file"));
        if (!sn || !sf || !sn[0] || !sf[0] || strlen(sn) > 255 || strlen(sf) > 255)
            sn = sf = NULL;
        rc = ms_fsm_sql(f, "UPDATE streams SET source_node = ?, source_file = ? WHERE uid = ?",
                        "ttt", sn, sf, sa.uid);
        if (rc < 0)
            return rc;
    }
    json_t *st = stream_by_uid(f, sa.uid);
    *res = json_pack("{s:b, s:b, s:o}", "ok", 1, "created", (int)created, "stream",
                     st ? st : json_null());
    return 0;
}

static int op_stream_remove(ms_fsm_t *f, const ms_fsm_ctx_t *c, json_t **res)
{
    char uid[64];
    int rc = arg_stream(f, c->args, uid, res);
    if (rc <= 0)
        return rc;
    if ((rc = ms_fsm_sql(f, "DELETE FROM streams WHERE uid = ?", "t", uid)) < 0 ||
        (rc = ms_fsm_sql(f, "DELETE FROM archive_locations WHERE stream_uid = ?", "t", uid)) < 0)
        return rc;
    *res = json_pack("{s:b, s:s}", "ok", 1, "uid", uid);
    return 0;
}

static int op_stream_set_state(ms_fsm_t *f, const ms_fsm_ctx_t *c, json_t **res)
{
    static const char *const states[] = {"active", "suspend", NULL};
    char uid[64];
    json_t *a = c->args;
    int rc = arg_stream(f, a, uid, res);
    if (rc <= 0)
        return rc;
    int64_t enabled = -1, audio = -1;
    const char *state = NULL;
    if ((json_object_get(a, "enabled") && !arg_bool(a, "enabled", "enabled", 0, &enabled, res)) ||
        (json_object_get(a, "audio") && !arg_bool(a, "audio", "audio", 0, &audio, res)) ||
        (json_object_get(a, "state") && !arg_enum(a, "state", "state", NULL, states, &state, res)))
        return 0;
    if (enabled < 0 && audio < 0 && !state) {
        *res = ms_fsm_reject(400, NULL, "nothing to change (enabled, audio, state)");
        return 0;
    }
    int64_t now_s = c->ts / 1000;
    if (enabled >= 0 && (rc = ms_fsm_sql(f, "UPDATE streams SET enabled = ? WHERE uid = ?", "it",
                                         enabled, uid)) < 0)
        return rc;
    if (state &&
        (rc = ms_fsm_sql(f, "UPDATE streams SET state = ? WHERE uid = ?", "tt", state, uid)) < 0)
        return rc;
    if (audio >= 0) {
        /* channels keeps its order; "audio" is appended or removed */
        json_t *row = query_one(f, "SELECT channels FROM streams WHERE uid = ?", uid);
        json_t *ch = json_object_get(row, "channels");
        json_t *out = json_array();
        size_t i;
        json_t *e;
        json_array_foreach(ch, i, e) if (strcmp(json_string_value(e), "audio") != 0)
            json_array_append(out, e);
        if (audio)
            json_array_append_new(out, json_string("audio"));
        rc = ms_fsm_sql(f, "UPDATE streams SET channels = ? WHERE uid = ?", "jt", out, uid);
        json_decref(out);
        json_decref(row);
        if (rc < 0)
            return rc;
    }
    if ((rc = ms_fsm_sql(f, "UPDATE streams SET updated_at = ?, rev = rev + 1 WHERE uid = ?", "it",
                         now_s, uid)) < 0)
        return rc;
    json_t *st = stream_by_uid(f, uid);
    *res = json_pack("{s:b, s:o}", "ok", 1, "stream", st ? st : json_null());
    return 0;
}

static int op_stream_assign(ms_fsm_t *f, const ms_fsm_ctx_t *c, json_t **res)
{
    static const char *const roles[] = {"primary", "secondary", "migrated", NULL};
    char uid[64];
    json_t *a = c->args;
    const char *prim = NULL, *back = NULL, *role;
    int64_t transfer, force;
    int rc = arg_stream(f, a, uid, res);
    if (rc <= 0)
        return rc;
    json_t *pv = json_object_get(a, "primary"), *bv = json_object_get(a, "backup");
    if ((pv && !json_is_null(pv) && !arg_name(a, "primary", "primary", &prim, res)) ||
        (bv && !json_is_null(bv) && !arg_name(a, "backup", "backup", &back, res)) ||
        !arg_enum(a, "role", "role", "primary", roles, &role, res) ||
        !arg_bool(a, "transfer", "transfer", 0, &transfer, res) ||
        !arg_bool(a, "force", "force", 0, &force, res))
        return 0;
    if (prim && back && strcmp(prim, back) == 0) {
        *res = ms_fsm_reject(400, "backup", "primary and backup must differ");
        return 0;
    }
    const char *names[2] = {prim, back}, *fields[2] = {"primary", "backup"};
    for (int i = 0; i < 2; i++) {
        if (!names[i])
            continue;
        rc = server_exists(f, names[i]);
        if (rc <= 0) {
            *res = rc < 0 ? NULL : ms_fsm_reject(404, fields[i], "no such server '%s'", names[i]);
            return rc;
        }
    }
    /* Compare-and-set: a leader decides on the state it has applied; when
     * the primary changed meanwhile (a decision of a deposed leader that
     * reached the new one), the command is refused rather than undo it. */
    json_t *ip = json_object_get(a, "if_primary");
    if (ip) {
        sqlite3_stmt *q;
        if ((rc = ms_fsm_prep(f, &q, "SELECT primary_server FROM streams WHERE uid = ?", "t",
                              uid)) < 0)
            return rc;
        int same = 0;
        if (sqlite3_step(q) == SQLITE_ROW) {
            const char *cur = (const char *)sqlite3_column_text(q, 0);
            same = json_is_null(ip)
                       ? cur == NULL
                       : (json_is_string(ip) && cur && strcmp(cur, json_string_value(ip)) == 0);
        }
        ms_fsm_done(f, q);
        if (!same) {
            *res = ms_fsm_reject(409, "if_primary", "the primary changed meanwhile");
            return 0;
        }
    }
    int64_t now_s = c->ts / 1000;
    if (transfer && !force) { /* one transfer per hour and stream (seed rule);
                                 force: an administrator's override */
        int64_t prev = 0;
        rc = ms_fsm_sql_int(f, &prev,
                            "SELECT transferred_at FROM streams WHERE uid = ?"
                            " AND transferred_at IS NOT NULL",
                            "t", uid);
        if (rc < 0)
            return rc;
        if (rc > 0 && now_s - prev < MS_TRANSFER_INTERVAL_S) {
            *res = ms_fsm_reject(409, "transfer", "transferred less than an hour ago");
            json_object_set_new(*res, "time_left_s",
                                json_integer(MS_TRANSFER_INTERVAL_S - (now_s - prev)));
            return 0;
        }
    }
    rc = ms_fsm_sql(f,
                    "UPDATE streams SET primary_server = ?1, backup_server = ?2, role = ?3,"
                    " transferred_at = CASE WHEN ?4 THEN ?5 ELSE transferred_at END,"
                    " updated_at = ?5, rev = rev + 1 WHERE uid = ?6",
                    "tttiit", prim, back, role, transfer, now_s, uid);
    if (rc < 0)
        return rc;
    json_t *st = stream_by_uid(f, uid);
    *res = json_pack("{s:b, s:o}", "ok", 1, "stream", st ? st : json_null());
    return 0;
}

/* ---- archive locations --------------------------------------------- */

static int op_archive_ranges_set(ms_fsm_t *f, const ms_fsm_ctx_t *c, json_t **res)
{
    char uid[64];
    const char *server;
    json_t *ranges = json_object_get(c->args, "ranges");
    int rc = arg_stream(f, c->args, uid, res);
    if (rc <= 0)
        return rc;
    if (!arg_name(c->args, "server", "server", &server, res))
        return 0;
    if ((rc = server_exists(f, server)) <= 0) {
        *res = rc < 0 ? NULL : ms_fsm_reject(404, "server", "no such server '%s'", server);
        return rc;
    }
    if (!json_is_array(ranges) || json_array_size(ranges) > 100000) {
        *res = ms_fsm_reject(400, "ranges", "must be an array of [from, to] pairs");
        return 0;
    }
    /* Coarse ranges: [from, to] unix seconds, sorted, not overlapping. */
    int64_t prev_to = -1;
    size_t i;
    json_t *r;
    json_array_foreach(ranges, i, r)
    {
        json_t *a0 = json_array_get(r, 0), *a1 = json_array_get(r, 1);
        if (!json_is_array(r) || json_array_size(r) != 2 || !json_is_integer(a0) ||
            !json_is_integer(a1) || json_integer_value(a0) < 0 ||
            json_integer_value(a1) < json_integer_value(a0) || json_integer_value(a0) <= prev_to) {
            *res = ms_fsm_reject(400, "ranges", "range %zu is not a sorted [from, to] pair", i);
            return 0;
        }
        prev_to = json_integer_value(a1);
    }
    if (json_array_size(ranges) == 0)
        rc = ms_fsm_sql(f, "DELETE FROM archive_locations WHERE stream_uid = ? AND server = ?",
                        "tt", uid, server);
    else
        rc = ms_fsm_sql(f,
                        "INSERT INTO archive_locations(stream_uid, server, ranges, updated_at)"
                        " VALUES(?1, ?2, ?3, ?4) ON CONFLICT(stream_uid, server) DO UPDATE"
                        " SET ranges = ?3, updated_at = ?4",
                        "ttji", uid, server, ranges, c->ts / 1000);
    if (rc < 0)
        return rc;
    *res = json_pack("{s:b, s:s, s:s, s:I}", "ok", 1, "stream", uid, "server", server, "n",
                     (json_int_t)json_array_size(ranges));
    return 0;
}

/* ---- settings (schema 2) ------------------------------------------- */

static int op_setting_set(ms_fsm_t *f, const ms_fsm_ctx_t *c, json_t **res)
{
    const char *key;
    json_t *value = json_object_get(c->args, "value");
    if (!arg_name(c->args, "key", "key", &key, res))
        return 0;
    if (!value) {
        *res = ms_fsm_reject(400, "value", "required");
        return 0;
    }
    int rc = json_is_null(value)
                 ? ms_fsm_sql(f, "DELETE FROM settings WHERE key = ?", "t", key)
                 : ms_fsm_sql(f,
                              "INSERT INTO settings(key, value, updated_at) VALUES(?1, ?2, ?3)"
                              " ON CONFLICT(key) DO UPDATE SET value = ?2, updated_at = ?3",
                              "tji", key, value, c->ts / 1000);
    if (rc < 0)
        return rc;
    *res = json_pack("{s:b}", "ok", 1);
    return 0;
}

/* ---- the whitelist -------------------------------------------------- */

static const ms_fsm_op_t ops[] = {
    {"schema_init", 0, op_schema_init},
    {"schema_upgrade", 1, op_schema_upgrade},
    {"server_upsert", 1, op_server_upsert},
    {"server_report", 1, op_server_report},
    {"server_set_health", 1, op_server_set_health},
    {"server_remove", 1, op_server_remove},
    {"group_upsert", 1, op_group_upsert},
    {"group_remove", 1, op_group_remove},
    {"cluster_upsert", 1, op_cluster_upsert},
    {"cluster_remove", 1, op_cluster_remove},
    {"stream_upsert", 1, op_stream_upsert},
    {"stream_remove", 1, op_stream_remove},
    {"stream_set_state", 1, op_stream_set_state},
    {"stream_assign", 1, op_stream_assign},
    {"archive_ranges_set", 1, op_archive_ranges_set},
    {"setting_set", 2, op_setting_set},
};

const ms_fsm_op_t *ms_fsm_op_find(const char *name)
{
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (strcmp(ops[i].name, name) == 0)
            return &ops[i];
    return NULL;
}
