/* The context, the state cache and its cached reads, server lookups and
 * the inputs of placement (cluster_int.h). Control loop. */
#include <sqlite3.h>

#include "node/cluster/cluster_int.h"

ms_cluster_ctx_t ms_cl = {.qmu = PTHREAD_MUTEX_INITIALIZER, .duty = {.sig = MS_BUF_INIT}};

int64_t cl_wall_ms(void)
{
    if (ms_cl.seam.wall_ms)
        return ms_cl.seam.wall_ms();
    return ms_wall_us() / 1000;
}

int ms_cluster_enabled(void)
{
    return atomic_load(&ms_cl.enabled);
}

int ms_cluster_ready(void)
{
    return ms_cl.ready;
}

/* ---- state helpers ------------------------------------------------------ */

uint64_t cl_my_id(void)
{
    return ms_cl.raft ? ms_raft_id(ms_cl.raft) : 0;
}

/* Cached reads of the state. The control loop reads the same tables
 * several times per tick and after every applied command, while most
 * commands are load reports that change nothing but the servers' load
 * columns (ms_fsm_changes() does not count them). A list is read again
 * only when what it depends on may have changed: streams, groups,
 * clusters and settings when ms_fsm_changes() moved, servers when any
 * command was applied (ms_fsm_applied(), plus changes for a snapshot
 * restored at the same index). The getters return a new reference to the
 * shared array: the caller must not modify it (cl_servers_copy() gives rows
 * that may be changed), and nothing of it is handed to another thread
 * (API replies read ms_fsm_list() themselves). Control loop only. */
static void cache_drop(cached_t *c)
{
    json_decref(c->v);
    memset(c, 0, sizeof *c);
}

void cl_cache_drop_all(void)
{
    cache_drop(&ms_cl.cache.streams);
    cache_drop(&ms_cl.cache.servers);
    cache_drop(&ms_cl.cache.groups);
    cache_drop(&ms_cl.cache.clusters);
    cache_drop(&ms_cl.cache.settings);
    cache_drop(&ms_cl.cache.archive);
}

/* The settings table as one object key -> decoded value (schema 2). */
static json_t *read_settings(void)
{
    json_t *o = json_object();
    sqlite3_stmt *q = NULL;
    if (!o || ms_fsm_schema_version(ms_cl.fsm) < 2 ||
        sqlite3_prepare_v2(ms_fsm_db(ms_cl.fsm), "SELECT key, value FROM settings", -1, &q, NULL) !=
            SQLITE_OK) {
        sqlite3_finalize(q);
        return o;
    }
    while (sqlite3_step(q) == SQLITE_ROW) {
        const char *k = (const char *)sqlite3_column_text(q, 0);
        const char *t = (const char *)sqlite3_column_text(q, 1);
        json_t *j = t ? json_loads(t, JSON_DECODE_ANY, NULL) : NULL;
        if (k && j)
            json_object_set_new(o, k, j);
        else
            json_decref(j);
    }
    sqlite3_finalize(q);
    return o;
}

/* table: an ms_fsm_list() name, or "settings". per_seq: also re-read after
 * every applied command. New reference (may be NULL when the read failed). */
static json_t *cached_list(cached_t *c, const char *table, int per_seq)
{
    uint64_t ch = ms_fsm_changes(ms_cl.fsm), seq = ms_fsm_applied(ms_cl.fsm);
    if (!c->valid || c->changes != ch || (per_seq && c->seq != seq)) {
        json_t *v =
            strcmp(table, "settings") == 0 ? read_settings() : ms_fsm_list(ms_cl.fsm, table);
        json_decref(c->v);
        c->v = v;
        c->changes = ch;
        c->seq = seq;
        c->valid = v != NULL; /* a failed read is retried next time */
    }
    return json_incref(c->v);
}

json_t *cl_state_streams(void)
{
    return cached_list(&ms_cl.cache.streams, "streams", 0);
}

json_t *cl_state_servers(void)
{
    return cached_list(&ms_cl.cache.servers, "servers", 1);
}

json_t *cl_state_groups(void)
{
    return cached_list(&ms_cl.cache.groups, "groups", 0);
}

json_t *cl_state_clusters(void)
{
    return cached_list(&ms_cl.cache.clusters, "clusters", 0);
}

json_t *cl_state_archive(void)
{
    return cached_list(&ms_cl.cache.archive, "archive", 0);
}

/* Draining (POST /servers/{name}/drain, docs/cluster.md "Draining a
 * server"): the cluster setting "drain.{name}" is true while the server is
 * drained; placement (node/placement.c) reads it as the row's "draining".
 * The key must be a valid setting name: at most 63 characters. */
#define DRAIN_PREFIX   "drain."
#define DRAIN_NAME_MAX (63 - (int)(sizeof DRAIN_PREFIX - 1))

int cl_server_draining(const char *name)
{
    char k[80];
    if (!name || (int)strlen(name) > DRAIN_NAME_MAX)
        return 0;
    snprintf(k, sizeof k, DRAIN_PREFIX "%s", name);
    return cl_setting_int(k, 0) != 0;
}

/* The servers as rows the caller may change (json_object_set on a row
 * replaces the value in that row only; nested values stay shared and must
 * not be changed), each with its "draining". New array. */
json_t *cl_servers_copy(void)
{
    json_t *list = cl_state_servers(), *out = json_array(), *s;
    size_t i;
    if (!list || !out) {
        json_decref(list);
        json_decref(out);
        return NULL;
    }
    json_array_foreach(list, i, s)
    {
        json_t *c = json_copy(s);
        if (c && cl_server_draining(json_string_value(json_object_get(s, "name"))))
            json_object_set_new(c, "draining", json_true());
        json_array_append_new(out, c);
    }
    json_decref(list);
    return out;
}

json_t *cl_server_by(const char *key, json_t *val)
{
    json_t *list = cl_state_servers(), *s, *out = NULL;
    size_t i;
    json_array_foreach(list, i, s) if (json_equal(json_object_get(s, key), val))
    {
        out = json_incref(s);
        break;
    }
    json_decref(list);
    return out;
}

/* The http base URL of a server row ("" when none). */
void cl_server_http(json_t *srv, char *out, size_t cap)
{
    out[0] = '\0';
    json_t *addrs = json_object_get(srv, "addresses"), *a;
    size_t i;
    json_array_foreach(addrs, i, a)
    {
        const char *s = json_string_value(a);
        if (s && strncmp(s, "http://", 7) == 0) {
            snprintf(out, cap, "%s", s);
            return;
        }
    }
}

/* The leader's http base from the servers table; 0 when known. */
int cl_leader_base(char *out, size_t cap)
{
    ms_raft_info_t in;
    ms_raft_info(ms_cl.raft, &in);
    out[0] = '\0';
    if (!in.leader_id)
        return -EAGAIN;
    json_t *id = json_integer((json_int_t)in.leader_id);
    json_t *srv = cl_server_by("id", id);
    json_decref(id);
    if (srv)
        cl_server_http(srv, out, cap);
    json_decref(srv);
    return out[0] ? 0 : -EAGAIN;
}

/* 1 when this node is a voter or standby of the raft configuration. */
int cl_raft_member(void)
{
    int role = ms_raft_member_role(ms_cl.raft, cl_my_id());
    return role == MS_RAFT_VOTER || role == MS_RAFT_STANDBY;
}

json_t *cl_my_row(void)
{
    json_t *id = json_integer((json_int_t)cl_my_id());
    json_t *s = cl_server_by("id", id);
    json_decref(id);
    return s;
}

uint64_t cl_applied_index(void)
{
    ms_raft_info_t in;
    ms_raft_info(ms_cl.raft, &in);
    return in.last_applied;
}

int cl_server_healthy(json_t *s, int64_t now)
{
    const char *name = json_string_value(json_object_get(s, "name"));
    if (name && strcmp(name, ms_cl.cfg->name) == 0)
        return 1; /* the leader itself */
    json_t *lr = json_object_get(s, "last_report_ms");
    const char *h = json_string_value(json_object_get(s, "health"));
    return h && strcmp(h, "up") == 0 && json_is_integer(lr) &&
           now - json_integer_value(lr) <= cl_setting_int("down_after_ms", DOWN_AFTER_MS);
}

/* Least-loaded healthy server taking streams (fewest assigned streams, then
 * name order), not exclude; NULL when none. Borrowed from servers. */
const char *cl_pick_server(json_t *servers, json_t *streams, const char *exclude, int64_t now)
{
    const char *best = NULL;
    int64_t best_n = 0;
    json_t *s, *st;
    size_t i, k;
    json_array_foreach(servers, i, s)
    {
        const char *name = json_string_value(json_object_get(s, "name"));
        if (!name || (exclude && strcmp(name, exclude) == 0) || !cl_server_healthy(s, now) ||
            !json_integer_value(json_object_get(s, "distribution")))
            continue;
        int64_t n = 0;
        json_array_foreach(streams, k, st)
        {
            const char *p =
                json_string_value(json_object_get(json_object_get(st, "placement"), "primary"));
            n += p && strcmp(p, name) == 0;
        }
        if (n >= json_integer_value(json_object_get(s, "stream_limit")))
            continue;
        if (!best || n < best_n) {
            best = name;
            best_n = n;
        }
    }
    return best;
}

/* An integer cluster setting (setting_set; docs/cluster.md "Placement"),
 * def when absent. */
int64_t cl_setting_int(const char *key, int64_t def)
{
    json_t *all = cached_list(&ms_cl.cache.settings, "settings", 0);
    json_t *j = json_object_get(all, key);
    int64_t v = def;
    if (json_is_integer(j))
        v = json_integer_value(j);
    else if (json_is_boolean(j))
        v = json_is_true(j);
    json_decref(all);
    return v;
}

void cl_placement_log_once(const char *uid, const char *name, const char *text, int placed)
{
    if (!uid)
        return;
    if (!ms_cl.placement_logged && !(ms_cl.placement_logged = json_object()))
        return;
    const char *last = json_string_value(json_object_get(ms_cl.placement_logged, uid));
    if (!text || !text[0]) {
        if (placed)
            json_object_del(ms_cl.placement_logged, uid);
        return;
    }
    if (last && strcmp(last, text) == 0)
        return;
    json_object_set_new(ms_cl.placement_logged, uid, json_string(text));
    if (placed)
        MS_WARN(CTX, "stream %s: %s", name ? name : uid, text);
    else
        MS_WARN(CTX, "stream %s: unplaced: %s", name ? name : uid, text);
}

void cl_placement_opts(ms_placement_opts_t *o, int64_t now)
{
    ms_placement_opts_defaults(o);
    o->now_ms = now;
    o->self = ms_cl.cfg->name;
    o->down_after_ms = (int)cl_setting_int("down_after_ms", DOWN_AFTER_MS);
    o->storage_max_pct = (int)cl_setting_int("storage_max_pct", 80);
    o->failback = cl_setting_int("failback", 0) != 0;
}
