/* Applying the replicated state to this node: the reconciler and the
 * placement and archive views the HTTP threads read (cluster_int.h).
 * Control loop. */
#include "node/archive_view.h"
#include "node/placement_view.h"
#include "node/rtsp_redirect.h"
#include "node/cluster/cluster_int.h"

/* ---- reconcile ------------------------------------------------------------ */

/* Why stream (a row of the state) has no server, as a fresh search over
 * this node's copy of the state sees it: a new string (caller frees), or
 * NULL when a server qualifies (the leader's next duty run assigns it). */
char *cl_unplaced_reason(json_t *stream, json_t *servers, json_t *streams)
{
    json_t *groups = cl_state_groups(), *clusters = cl_state_clusters();
    ms_placement_opts_t po;
    cl_placement_opts(&po, cl_wall_ms());
    /* only the leader is healthy without a report (it reports rarely): a
     * follower judges as the leader does, so every node gives the leader's
     * reason (docs/cluster.md "One status on every node") */
    json_t *leader = NULL;
    if (!ms_raft_is_leader(ms_cl.raft)) {
        ms_raft_info_t in;
        ms_raft_info(ms_cl.raft, &in);
        json_t *id = json_integer((json_int_t)in.leader_id);
        leader = in.leader_id ? cl_server_by("id", id) : NULL;
        json_decref(id);
        po.self = json_string_value(json_object_get(leader, "name"));
    }
    json_t *r =
        ms_placement_search(servers, groups ? groups : json_array(),
                            clusters ? clusters : json_array(), streams, stream, NULL, NULL, &po);
    const char *why = json_string_value(json_object_get(r, "reason"));
    char *out = why ? strdup(why) : NULL;
    json_decref(r);
    json_decref(leader);
    json_decref(groups);
    json_decref(clusters);
    return out;
}

/* The placement view the HTTP threads read (status, redirects). */
static void view_refresh(json_t *streams)
{
    json_t *servers = cl_state_servers(), *st, *s;
    size_t i, k;
    ms_rtsp_redirect_servers_set(servers);
    ms_placement_view_begin(ms_cl.cfg->name);
    json_array_foreach(streams, i, st)
    {
        json_t *pl = json_object_get(st, "placement");
        const char *p = json_string_value(json_object_get(pl, "primary"));
        char http[160] = "";
        json_array_foreach(
            servers, k, s) if (p && strcmp(json_string_value(json_object_get(s, "name")), p) == 0)
            cl_server_http(s, http, sizeof http);
        ms_placement_view_put(json_string_value(json_object_get(st, "uid")),
                              json_string_value(json_object_get(st, "name")), p,
                              json_string_value(json_object_get(pl, "backup")), http,
                              json_integer_value(json_object_get(pl, "transferred_at")) > 0);
        char *why = p ? NULL : cl_unplaced_reason(st, servers, streams);
        ms_placement_view_annotate(json_string_value(json_object_get(st, "uid")),
                                   json_is_object(json_object_get(pl, "source")), why);
        free(why);
    }
    ms_placement_view_end();
    json_decref(servers);
}

/* The archive view the HTTP threads read (merged ranges, archive
 * redirects): the published ranges of streams that record (seed rule: with
 * recording off the index is not handed off), with each server's http
 * address. */
static void archive_view_refresh(json_t *streams)
{
    json_t *arch = cl_state_archive(), *servers = cl_state_servers();
    json_t *rows = json_array(), *a, *st, *s;
    size_t i, k;
    json_array_foreach(arch, i, a)
    {
        const char *uid = json_string_value(json_object_get(a, "stream_uid"));
        const char *srv = json_string_value(json_object_get(a, "server"));
        if (!uid || !srv)
            continue;
        int rec = 0;
        json_array_foreach(streams, k, st)
        {
            const char *u = json_string_value(json_object_get(st, "uid"));
            if (u && strcmp(u, uid) == 0)
                rec = json_is_true(json_object_get(json_object_get(st, "dvr"), "enabled"));
        }
        if (!rec)
            continue;
        char http[300] = "";
        json_array_foreach(servers, k, s)
        {
            const char *n = json_string_value(json_object_get(s, "name"));
            if (n && strcmp(n, srv) == 0)
                cl_server_http(s, http, sizeof http);
        }
        json_t *rg = json_object_get(a, "ranges");
        json_t *parsed = json_is_string(rg)
                             ? json_loads(json_string_value(rg), JSON_DECODE_ANY, NULL)
                             : json_incref(rg);
        json_array_append_new(rows, json_pack("{s:s,s:s,s:s,s:o}", "stream", uid, "server", srv,
                                              "http", http, "ranges",
                                              json_is_array(parsed) ? parsed : json_array()));
        if (!json_is_array(parsed))
            json_decref(parsed);
    }
    ms_archive_view_set(rows, ms_cl.cfg->name);
    json_decref(rows);
    json_decref(servers);
    json_decref(arch);
}

/* Runs only when something other than load reports changed
 * (ms_fsm_changes), and every RECONCILE_FULL_MS while the reconciler has
 * streams it could not apply (retries of streams that failed to start):
 * reading every stream from SQLite several times a second per node was the
 * node's main CPU cost. */
void cl_reconcile(void)
{
    uint64_t changes = ms_fsm_changes(ms_cl.fsm);
    int64_t now = ms_mono_ms();
    ms_cl.seen_applied = ms_fsm_applied(ms_cl.fsm);
    if (ms_cl.reconciled && changes == ms_cl.seen_changes &&
        (now - ms_cl.last_reconcile < RECONCILE_FULL_MS || !ms_reconciler_pending(ms_cl.rec)))
        return;
    ms_cl.seen_changes = changes;
    ms_cl.last_reconcile = now;
    json_t *streams = cl_state_streams();
    json_t *row = cl_my_row();
    ms_cl.reconciled = streams != NULL; /* a failed read is retried at once */
    if (streams)
        ms_reconciler_run(ms_cl.rec, streams, row != NULL);
    view_refresh(streams);
    archive_view_refresh(streams);
    json_decref(row);
    json_decref(streams);
    ms_cl.seen_applied = ms_fsm_applied(ms_cl.fsm);
}
