/* Failure detection and the leader's duties: report ages observed by
 * every node, probes of silent servers, servers marked down, placement and
 * recovery (cluster_int.h, docs/cluster.md "Failover"). Control loop,
 * except probe_work (thread pool). */
#include "node/cluster_http.h"
#include "node/hls_hint.h"
#include "raft/commands.h"
#include "node/cluster/cluster_int.h"

/* Report ages observed on this node: every node (not only the leader)
 * notes the monotonic time at which each server's last_report_ms last
 * changed in its applied state, so a freshly elected leader already knows
 * how long a server has been silent without trusting other clocks and
 * without waiting a grace period (docs/cluster.md "Failover"). */

void cl_observe_reports(void)
{
    if (!ms_cl.fsm)
        return;
    json_t *servers = cl_state_servers(), *s;
    size_t i;
    int64_t now = cl_mono_ms();
    int fresh = 0;
    /* The leader writes its own report only on a notable change or every
     * LEADER_REPORT_MAX_MS (cl_report()): a follower counts the leader's
     * silence from the last message it had from it (raft heartbeats every
     * 50 ms), so a leader that dies is as silent here as a follower that
     * dies, and one alive is never silent. */
    uint64_t lid = 0;
    int64_t contact = ms_cl.raft ? ms_raft_leader_contact_ms(ms_cl.raft, &lid) : 0;
    json_array_foreach(servers, i, s)
    {
        const char *name = json_string_value(json_object_get(s, "name"));
        int64_t lr = json_integer_value(json_object_get(s, "last_report_ms"));
        if (!name || strlen(name) >= sizeof ms_cl.obs[0].name)
            continue;
        int k;
        for (k = 0; k < ms_cl.nobs && strcmp(ms_cl.obs[k].name, name) != 0; k++)
            ;
        if (k == ms_cl.nobs) {
            if (ms_cl.nobs == OBS_MAX)
                continue;
            ms_cl.nobs++;
            snprintf(ms_cl.obs[k].name, sizeof ms_cl.obs[k].name, "%s", name);
            ms_cl.obs[k].last_report_ms = lr;
            ms_cl.obs[k].seen_mono = now; /* first seen: counts from here */
            fresh = 1;
        } else if (ms_cl.obs[k].last_report_ms != lr) {
            ms_cl.obs[k].last_report_ms = lr;
            ms_cl.obs[k].seen_mono = now;
            fresh = 1;
        }
        if (lid && (uint64_t)json_integer_value(json_object_get(s, "id")) == lid &&
            contact > ms_cl.obs[k].seen_mono)
            ms_cl.obs[k].seen_mono = contact;
    }
    if (fresh) /* a new load report: where each stream's HLS numbering stands */
        ms_hls_hint_update(servers);
    json_decref(servers);
}

/* Probes of servers silent since before this node's election: a server
 * whose HTTP port refuses the connection has no process behind it (kill -9,
 * crash), so no election held its reports up: like the previous leader it
 * is exempt from the settling wait and from the floor on its silence
 * (cl_observed_ages). A server cut off by a partition does not refuse (no
 * RST): the connect times out and nothing changes for it. */

typedef struct {
    uv_work_t work;
    char base[300], name[64];
    int64_t term_since;
    uint64_t from; /* this node's raft id (X-MS-Node-Id) */
    int rc;
} probe_t;

static void probe_work(uv_work_t *req)
{
    probe_t *p = req->data;
    int st = 0;
    char *resp = NULL;
    p->rc = ms_chttp_request(p->base, "GET", "/api/v1/cluster", NULL, 0, ms_cl.cfg->secret, p->from,
                             1000, &st, &resp);
    free(resp);
}

static void probe_done(uv_work_t *req, int status)
{
    probe_t *p = req->data;
    (void)status;
    ms_cl.outstanding--;
    for (int k = 0; k < OBS_MAX; k++)
        if (strcmp(ms_cl.probe[k].name, p->name) == 0 &&
            ms_cl.probe[k].term_since == p->term_since && ms_cl.leader_since == p->term_since &&
            p->rc == -ECONNREFUSED) {
            ms_cl.probe[k].refused = 1;
            MS_INFO(CTX, "server %s: connection refused: no process, no settling wait for it",
                    p->name);
        }
    free(p);
}

/* 1 when name refused this leadership's probe. */
static int probe_refused(const char *name)
{
    for (int k = 0; name && k < OBS_MAX; k++)
        if (ms_cl.probe[k].name[0] && strcmp(ms_cl.probe[k].name, name) == 0)
            return ms_cl.probe[k].refused && ms_cl.probe[k].term_since == ms_cl.leader_since;
    return 0;
}

/* While settling, probes once each server (not this one, not the previous
 * leader) whose last report was observed before this leadership began. */
static void probe_silent(json_t *servers)
{
    json_t *s;
    size_t i;
    if (!ms_cl.leader_since || cl_mono_ms() - ms_cl.leader_since >= LEADER_SETTLE_MS)
        return;
    json_array_foreach(servers, i, s)
    {
        const char *name = json_string_value(json_object_get(s, "name"));
        if (!name || strlen(name) >= sizeof ms_cl.probe[0].name ||
            strcmp(name, ms_cl.cfg->name) == 0 ||
            (uint64_t)json_integer_value(json_object_get(s, "id")) == ms_cl.prev_leader)
            continue;
        int k, seen_before = 0;
        for (k = 0; k < ms_cl.nobs; k++)
            if (strcmp(ms_cl.obs[k].name, name) == 0)
                seen_before = ms_cl.obs[k].seen_mono < ms_cl.leader_since;
        if (!seen_before)
            continue;
        int free_k = -1;
        for (k = 0; k < OBS_MAX; k++) {
            if (strcmp(ms_cl.probe[k].name, name) == 0)
                break;
            if (free_k < 0 && !ms_cl.probe[k].name[0])
                free_k = k;
        }
        if (k == OBS_MAX && (k = free_k) < 0)
            continue;
        if (ms_cl.probe[k].name[0] && ms_cl.probe[k].term_since == ms_cl.leader_since)
            continue; /* probed already */
        probe_t *p = calloc(1, sizeof *p);
        if (!p)
            return;
        cl_server_http(s, p->base, sizeof p->base);
        if (!p->base[0]) {
            free(p);
            continue;
        }
        snprintf(ms_cl.probe[k].name, sizeof ms_cl.probe[k].name, "%s", name);
        ms_cl.probe[k].term_since = ms_cl.leader_since;
        ms_cl.probe[k].refused = 0;
        snprintf(p->name, sizeof p->name, "%s", name);
        p->term_since = ms_cl.leader_since;
        p->from = cl_my_id();
        p->work.data = p;
        if (uv_queue_work(ms_cl.loop, &p->work, probe_work, probe_done) == 0)
            ms_cl.outstanding++;
        else
            free(p);
    }
}

/* Rewrites last_report_ms of each server (servers: ms_fsm_list array,
 * modified in place) to the leader's wall clock minus the age observed
 * here, so placement.c's age test uses this node's observation. */
void cl_observed_ages(json_t *servers, int64_t now_wall)
{
    json_t *s;
    size_t i;
    int64_t now = cl_mono_ms();
    json_array_foreach(servers, i, s)
    {
        const char *name = json_string_value(json_object_get(s, "name"));
        for (int k = 0; name && k < ms_cl.nobs; k++)
            if (strcmp(ms_cl.obs[k].name, name) == 0 &&
                json_is_integer(json_object_get(s, "last_report_ms"))) {
                int64_t seen = ms_cl.obs[k].seen_mono;
                /* After an election the others' reports may have been held
                 * up longer than the settling period (a forward stuck on an
                 * old leader cut off by a partition): while leading, their
                 * silence counts from the end of settling. Not the previous
                 * leader's: it submitted its own reports. */
                if (ms_cl.leader_since && seen < ms_cl.leader_since + LEADER_SETTLE_MS &&
                    (uint64_t)json_integer_value(json_object_get(s, "id")) != ms_cl.prev_leader &&
                    !probe_refused(name))
                    seen = ms_cl.leader_since + LEADER_SETTLE_MS;
                json_object_set_new(s, "last_report_ms", json_integer(now_wall - (now - seen)));
            }
    }
}

/* The leader's duties run after every applied command and every tick, but
 * their decisions (servers marked down, ms_placement_plan) depend only on
 * the streams, groups, clusters and settings (ms_fsm_changes()) and, per
 * server, on what placement.c reads of it: health, healthy now (the report
 * age against down_after_ms, as observed here), distribution, stream
 * limit, bitrate and storage over their limits, group. A load report
 * changes none of these unless it crosses a limit or brings a server back,
 * so while they stay equal and the last run decided nothing, the run is
 * skipped (the plan would be empty again). */

/* placement.c's reading of a number (booleans are 0/1). */
static int64_t num_of(json_t *v)
{
    if (json_is_boolean(v))
        return json_is_true(v);
    return json_is_integer(v) ? json_integer_value(v) : (int64_t)json_number_value(v);
}

/* The inputs of cl_leader_duties' decisions (see g_duty) into b. servers: as
 * cl_leader_duties prepared them (observed ages, removal under way). */
static void duty_inputs(ms_buf_t *b, json_t *servers, const char *old_leader, int64_t now)
{
    json_t *s;
    size_t i;
    int64_t pct = cl_setting_int("storage_max_pct", 80);
    ms_buf_printf(b, "%" PRIu64 " %zu:%s %zu:%s\n", ms_fsm_changes(ms_cl.fsm),
                  strlen(ms_cl.removing), ms_cl.removing, old_leader ? strlen(old_leader) : 0,
                  old_leader ? old_leader : "");
    json_array_foreach(servers, i, s)
    {
        const char *name = json_string_value(json_object_get(s, "name"));
        const char *health = json_string_value(json_object_get(s, "health"));
        const char *grp = json_string_value(json_object_get(s, "group"));
        int64_t bl = num_of(json_object_get(s, "bitrate_limit_kbps"));
        int64_t tot = num_of(json_object_get(s, "storage_total"));
        int64_t used = num_of(json_object_get(s, "storage_used"));
        int over_bitrate =
            bl > 0 && num_of(json_object_get(json_object_get(s, "load"), "bitrate_kbps")) >= bl;
        ms_buf_printf(b, "%zu:%s %zu:%s %d %" PRId64 " %" PRId64 " %" PRId64 " %d %zu:%s %d\n",
                      name ? strlen(name) : 0, name ? name : "", health ? strlen(health) : 0,
                      health ? health : "", cl_server_healthy(s, now),
                      num_of(json_object_get(s, "distribution")),
                      num_of(json_object_get(s, "draining")),
                      num_of(json_object_get(s, "stream_limit")), over_bitrate,
                      grp ? strlen(grp) : 0, grp ? grp : "", tot > 0 && used * 100 > pct * tot);
    }
}

/* One of the leader's writes (cmd stolen): cl_cluster_write_ex, or the
 * test's recorder (ms_cl.seam.write), counted in duty_busy until answered.
 * A write refused at once (out of memory) is never answered: it is
 * uncounted here, else the duties would stay busy for ever. */
static void duty_write(json_t *cmd)
{
    ms_cl.duty_busy++;
    int rc = ms_cl.seam.write ? ms_cl.seam.write(cmd, 2000, 1, cl_busy_done, &ms_cl.duty_busy)
                              : cl_cluster_write_ex(cmd, 2000, 1, cl_busy_done, &ms_cl.duty_busy);
    if (rc < 0) {
        ms_cl.duty_busy--;
        MS_WARN(CTX, "leader's write not submitted: %s", strerror(-rc));
    }
}

void cl_leader_duties(void)
{
    int leading = ms_cl.seam.is_leader ? ms_cl.seam.is_leader() : ms_raft_is_leader(ms_cl.raft);
    if (!leading || ms_cl.duty_busy)
        return;
    if (!ms_cl.leader_since)
        ms_cl.leader_since = cl_mono_ms();
    /* settling: a new leader assigns unassigned streams only, until live
     * nodes' reports held up by the election had time to land */
    int grace = cl_mono_ms() - ms_cl.leader_since < LEADER_SETTLE_MS;
    /* Alone (a single-node cluster): no report age can flip over time (the
     * leader is always healthy to itself), so while nothing was applied
     * since a quiet run the inputs are the same without reading them. */
    if (!grace && ms_cl.duty.quiet && ms_cl.duty.alone && !ms_cl.removing[0] &&
        ms_cl.duty.applied == ms_fsm_applied(ms_cl.fsm)) {
        ms_cl.duty.skips++;
        return;
    }
    ms_cl.duty.applied = ms_fsm_applied(ms_cl.fsm);
    int po_down = (int)cl_setting_int("down_after_ms", DOWN_AFTER_MS);
    int64_t now = cl_wall_ms();
    cl_observe_reports();
    json_t *servers = cl_servers_copy(), *streams = cl_state_streams();
    json_t *s, *st;
    size_t i;
    int wrote = 0;
    probe_silent(servers);
    cl_observed_ages(servers, now);
    json_array_foreach(servers, i, s)
    {
        const char *sn = json_string_value(json_object_get(s, "name"));
        if (ms_cl.removing[0] && sn && strcmp(sn, ms_cl.removing) == 0) /* DELETE under way */
            json_object_set_new(s, "distribution", json_integer(0));
    }
    /* The previous leader submitted its own reports, so no election held
     * them up: when it is the server gone silent, it is marked down and its
     * streams fail over without waiting for the settling period (the
     * others' delayed reports only matter for the others). */
    const char *old_leader = NULL;
    json_array_foreach(servers, i, s)
    {
        if (ms_cl.prev_leader && ms_cl.prev_leader != cl_my_id() &&
            (uint64_t)json_integer_value(json_object_get(s, "id")) == ms_cl.prev_leader &&
            !cl_server_healthy(s, now))
            old_leader = json_string_value(json_object_get(s, "name"));
    }
    ms_cl.duty.alone = !ms_cl.removing[0] && json_array_size(servers) == 1 &&
                       (uint64_t)json_integer_value(
                           json_object_get(json_array_get(servers, 0), "id")) == cl_my_id();
    ms_buf_t sig = MS_BUF_INIT;
    duty_inputs(&sig, servers, old_leader, now);
    if (!grace && ms_cl.duty.quiet && !sig.err && !ms_cl.duty.sig.err &&
        sig.len == ms_cl.duty.sig.len && memcmp(sig.data, ms_cl.duty.sig.data, sig.len) == 0) {
        ms_cl.duty.skips++;
        ms_buf_free(&sig);
        json_decref(servers);
        json_decref(streams);
        return;
    }
    ms_buf_free(&ms_cl.duty.sig);
    ms_cl.duty.sig = sig;
    ms_cl.duty.runs++;
    {
        json_array_foreach(servers, i, s)
        {
            const char *h = json_string_value(json_object_get(s, "health"));
            const char *sn = json_string_value(json_object_get(s, "name"));
            if (grace && !(old_leader && sn && strcmp(sn, old_leader) == 0) && !probe_refused(sn))
                continue;
            if (h && strcmp(h, "down") != 0 && !cl_server_healthy(s, now)) {
                wrote++;
                MS_INFO(CTX, "server %s: no report for %d ms: down",
                        json_string_value(json_object_get(s, "name")), po_down);
                duty_write(ms_cmd_new(
                    "server_set_health",
                    json_pack("{s:O,s:s}", "name", json_object_get(s, "name"), "health", "down")));
            }
        }
    }
    /* placement (node/placement.c): new streams, failover to the backup,
     * a new backup; during the grace period only unassigned streams */
    json_t *groups = cl_state_groups(), *clusters = cl_state_clusters();
    ms_placement_opts_t po;
    cl_placement_opts(&po, now);
    json_t *plan = ms_placement_plan(servers, groups ? groups : json_array(),
                                     clusters ? clusters : json_array(), streams, &po);
    json_t *d;
    /* the next run may be skipped when this one had nothing to decide */
    ms_cl.duty.quiet = !grace && !wrote && plan && json_array_size(plan) == 0;
    json_array_foreach(plan, i, d)
    {
        json_t *cur = NULL;
        size_t k;
        json_array_foreach(streams, k, st) if (json_equal(json_object_get(st, "uid"),
                                                          json_object_get(d, "uid"))) cur = st;
        json_t *pl = json_object_get(cur, "placement");
        const char *p = json_string_value(json_object_get(pl, "primary"));
        const char *np = json_string_value(json_object_get(d, "primary"));
        if (cur && json_array_size(servers) > 0) /* none: the node is starting */
            cl_placement_log_once(json_string_value(json_object_get(d, "uid")),
                                  json_string_value(json_object_get(d, "name")),
                                  json_string_value(json_object_get(d, np ? "note" : "reason")),
                                  np != NULL);
        if (!cur ||
            (grace && p && !(old_leader && strcmp(p, old_leader) == 0) && !probe_refused(p)) ||
            (!np && !p))
            continue;
        if (!p || strcmp(np, p) != 0)
            MS_INFO(CTX, "stream %s: primary %s%s%s%s",
                    json_string_value(json_object_get(d, "name")), np, p ? " (was " : "",
                    p ? p : "",
                    p ? (json_is_true(json_object_get(d, "failover")) ? ", down: backup activated)"
                                                                      : ")")
                      : "");
        json_t *args =
            json_pack("{s:O,s:O,s:O,s:s,s:o}", "stream", json_object_get(d, "uid"), "primary",
                      json_object_get(d, "primary"), "backup", json_object_get(d, "backup"), "role",
                      /* a transferred stream stays "migrated" on its server */
                      p && np && strcmp(p, np) == 0 &&
                              strcmp(json_string_value(json_object_get(pl, "role"))
                                         ? json_string_value(json_object_get(pl, "role"))
                                         : "",
                                     "migrated") == 0
                          ? "migrated"
                          : "primary",
                      "if_primary", p ? json_string(p) : json_null());
        duty_write(ms_cmd_new("stream_assign", args));
    }
    json_decref(plan);
    json_decref(groups);
    json_decref(clusters);
    json_decref(servers);
    json_decref(streams);
}
