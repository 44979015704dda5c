/* This node's own row and load reports (server_upsert, server_report)
 * and its archive ranges (cluster_int.h). Control loop. */
#include <sys/resource.h>

#include "dvr/dvr.h"
#include "node/hls_hint.h"
#include "node/lua.h"
#include "raft/commands.h"
#include "node/cluster/cluster_int.h"
#include "util/procfs.h"

/* ---- periodic duties ------------------------------------------------------- */

void cl_busy_done(void *ud, unsigned st, json_t *res)
{
    int *flag = ud;
    if (st != 200 && flag != &ms_cl.report_busy)
        MS_WARN(CTX, "cluster write refused (%u): %s", st,
                json_string_value(json_object_get(res, "error")));
    (*flag)--;
}

void cl_self_upsert(void)
{
    /* the row is compared again only when a command was applied since it
     * last matched (nothing else changes it): ms_cl.upsert_same_at */
    uint64_t applied = ms_fsm_applied(ms_cl.fsm);
    if (ms_cl.upsert_busy || (ms_cl.upsert_same_at && applied == ms_cl.upsert_same_at) ||
        !cl_raft_member())
        return;
    json_t *row = cl_my_row();
    char want[300], rtsp[300];
    snprintf(want, sizeof want, "%s", ms_cl.http_base);
    snprintf(rtsp, sizeof rtsp, "rtsp://%s:%d", ms_cl.cfg->advertise, ms_cl.cfg->port_rtsp);
    int same = 0;
    if (row) {
        char have[300];
        cl_server_http(row, have, sizeof have);
        /* the rtsp address too: RTSP redirects go there (node/rtsp_redirect.h) */
        const char *hr = json_string_value(json_array_get(json_object_get(row, "addresses"), 1));
        same = strcmp(have, want) == 0 && hr && strcmp(hr, rtsp) == 0 &&
               strcmp(json_string_value(json_object_get(row, "name")), ms_cl.cfg->name) == 0;
    }
    json_decref(row);
    if (same) {
        ms_cl.upsert_same_at = applied;
        return;
    }
    json_t *args =
        json_pack("{s:I,s:s,s:[s,s,s],s:s,s:b,s:I,s:I}", "id", (json_int_t)cl_my_id(), "name",
                  ms_cl.cfg->name, "addresses", ms_cl.http_base, rtsp, ms_cl.raft_addr, "group",
                  ms_cl.cfg->cluster_group[0] ? ms_cl.cfg->cluster_group : "default",
                  "distribution", ms_cl.cfg->cluster_distribution, "stream_limit",
                  (json_int_t)ms_cl.cfg->cluster_stream_limit, "bitrate_limit_kbps",
                  (json_int_t)ms_cl.cfg->cluster_bitrate_limit_kbps);
    ms_cl.upsert_busy++;
    if (cl_cluster_write(ms_cmd_new("server_upsert", args), 3000, cl_busy_done,
                         &ms_cl.upsert_busy) < 0)
        ms_cl.upsert_busy--;
}

static void sample_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    int64_t cpu = (int64_t)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec +
                  (int64_t)ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec;
    int64_t now = ms_mono_us();
    if (ms_cl.cpu_wall_last && now > ms_cl.cpu_wall_last)
        ms_cl.cpu_pct =
            100.0 * (double)(cpu - ms_cl.cpu_last_us) / (double)(now - ms_cl.cpu_wall_last);
    ms_cl.cpu_last_us = cpu;
    ms_cl.cpu_wall_last = now;
}

/* The leader's report is due: never written, its row not "up" or still
 * announcing a stop, LEADER_REPORT_MAX_MS since the last one, or the load
 * changed notably (counts; bitrate by more than a tenth; storage total, or
 * used by more than 1% of the total; the bitrate or storage limit crossed
 * either way: what placement.c reads of a server). Followers report every
 * REPORT_MS regardless: the leader judges their liveness by it. */
static int leader_report_due(json_t *row, int streams, int active, int clients, int kbps,
                             int64_t total, int64_t used, int64_t now)
{
    const char *h = json_string_value(json_object_get(row, "health"));
    if (!ms_cl.rep.valid || !h || strcmp(h, "up") != 0 ||
        json_is_true(json_object_get(json_object_get(row, "load"), "leaving")) ||
        now - ms_cl.rep.at >= LEADER_REPORT_MAX_MS)
        return 1;
    if (streams != ms_cl.rep.streams || active != ms_cl.rep.active ||
        clients != ms_cl.rep.clients || total != ms_cl.rep.total)
        return 1;
    int dk = kbps > ms_cl.rep.kbps ? kbps - ms_cl.rep.kbps : ms_cl.rep.kbps - kbps;
    if ((int64_t)dk * 10 > (int64_t)(kbps > ms_cl.rep.kbps ? kbps : ms_cl.rep.kbps))
        return 1;
    int64_t du = used > ms_cl.rep.used ? used - ms_cl.rep.used : ms_cl.rep.used - used;
    if (total > 0 && du * 100 > total)
        return 1;
    int64_t bl = json_integer_value(json_object_get(row, "bitrate_limit_kbps"));
    if (bl > 0 && (kbps >= bl) != (ms_cl.rep.kbps >= bl))
        return 1;
    int64_t pct = cl_setting_int("storage_max_pct", 80);
    if (total > 0 && (used * 100 > pct * total) != (ms_cl.rep.used * 100 > pct * total))
        return 1;
    return 0;
}

void cl_report(void)
{
    json_t *row = cl_my_row();
    if (!row || ms_cl.report_busy || ms_cl.handing_over) { /* leaving: handover_announce */
        json_decref(row);
        return;
    }
    int leader = ms_raft_is_leader(ms_cl.raft);
    ms_stream_t **list = NULL;
    size_t n = ms_streams_list(&list);
    int running = 0, active = 0, clients = 0;
    double kbps = 0;
    for (size_t i = 0; i < n; i++) {
        ms_stream_load_t ld;
        ms_stream_get_load(list[i], &ld);
        if (ld.run == MS_RUN_ACTIVE) {
            running++;
            active += ld.source_active;
            clients += ld.clients;
            kbps += ld.bitrate_kbps;
        }
        ms_stream_unref(list[i]);
    }
    free(list);
    json_t *storage = NULL, *root;
    int64_t total = 0, used = 0;
    size_t i;
    if (ms_dvr_storage(&storage) == 0) {
        json_array_foreach(json_object_get(storage, "roots"), i, root)
        {
            total += json_integer_value(json_object_get(root, "total_bytes"));
            used += json_integer_value(json_object_get(root, "used_bytes"));
        }
    }
    int64_t now = ms_mono_ms();
    if (leader && !leader_report_due(row, running, active, clients, (int)kbps, total, used, now)) {
        json_decref(row);
        json_decref(storage);
        return;
    }
    json_decref(row);
    ms_cl.rep.valid = 1;
    ms_cl.rep.streams = running;
    ms_cl.rep.active = active;
    ms_cl.rep.clients = clients;
    ms_cl.rep.kbps = (int)kbps;
    ms_cl.rep.total = total;
    ms_cl.rep.used = used;
    ms_cl.rep.at = now;
    sample_cpu(); /* averaged since the previous written report */
    json_t *load =
        json_pack("{s:i,s:i,s:i,s:i,s:f}", "streams", running, "active", active, "clients", clients,
                  "bitrate_kbps", (int)kbps, "cpu_pct", (double)(int)(ms_cl.cpu_pct * 10) / 10.0);
    /* memory, as GET /system shows it for the node itself (the panel's
     * Servers tab shows every server's) */
    json_object_set_new(
        load, "mem_rss_bytes",
        json_integer((json_int_t)(ms_procfs_value("/proc/self/status", "VmRSS") << 10)));
    json_object_set_new(
        load, "mem_total_bytes",
        json_integer((json_int_t)(ms_procfs_value("/proc/meminfo", "MemTotal") << 10)));
    json_object_set_new(load, "storage",
                        storage ? json_incref(json_object_get(storage, "roots")) : json_array());
    /* the Lua scripts this node runs (docs/lua.md: each node's own files) */
    json_t *lua = ms_lua_global() ? ms_lua_status(ms_lua_global()) : NULL;
    if (lua)
        json_object_set(load, "lua_hash", json_object_get(lua, "hash"));
    json_decref(lua);
    /* a new output adds the segments cut since the report (node/hls_hint.c);
     * 100 streams make ~6 KB of it: every 4th report of a follower (2 s),
     * every report of the leader (its reports are rarer), none while this
     * is the only server (nobody else starts this node's streams) */
    json_t *servers = cl_state_servers();
    int others = json_array_size(servers) > 1;
    json_decref(servers);
    if (others && (leader || ms_cl.rep.nrep % 4 == 0))
        json_object_set_new(load, "hls", ms_hls_hint_report());
    ms_cl.rep.nrep++;
    json_decref(storage);
    json_t *args = json_pack("{s:s,s:I,s:I,s:o,s:s}", "name", ms_cl.cfg->name, "storage_total",
                             (json_int_t)total, "storage_used", (json_int_t)used, "load", load,
                             "health", "up");
    ms_cl.report_busy++;
    if (cl_cluster_write(ms_cmd_new("server_report", args), 1500, cl_busy_done,
                         &ms_cl.report_busy) < 0)
        ms_cl.report_busy--;
}

/* Coarse ranges of the local archive of uid as [[from, to], ...] (UTC
 * seconds, sorted, not overlapping: what archive_ranges_set accepts); NULL
 * when the index cannot be read. Reads the local index (a small query). */
static json_t *local_ranges(const char *uid)
{
    json_t *j = NULL, *r;
    if (ms_dvr_ranges(uid, 0, 0, &j) < 0)
        return NULL;
    json_t *out = json_array(), *last = NULL;
    size_t i;
    json_array_foreach(json_object_get(j, "ranges"), i, r)
    {
        json_int_t f = json_integer_value(json_object_get(r, "from"));
        json_int_t t = f + json_integer_value(json_object_get(r, "duration"));
        json_int_t lt = last ? json_integer_value(json_array_get(last, 1)) : -1;
        if (last && f <= lt) { /* rounding made them touch: one range */
            if (t > lt)
                json_array_set_new(last, 1, json_integer(t));
            continue;
        }
        last = json_pack("[I,I]", f, t);
        json_array_append_new(out, last);
    }
    json_decref(j);
    return out;
}

/* Index handoff (docs/cluster.md "Archive index handoff"): every node
 * publishes the coarse ranges of its local archive per recording stream
 * into the state (archive_ranges_set), only those that differ from what
 * the state holds for it; a stream that does not record has nothing
 * published (its row is cleared). */
void cl_archive_publish(void)
{
    json_t *row = cl_my_row();
    if (!row || ms_cl.archive_busy) {
        json_decref(row);
        return;
    }
    json_decref(row);
    json_t *streams = cl_state_streams(), *arch = cl_state_archive();
    json_t *st, *a;
    size_t i, k;
    json_array_foreach(streams, i, st)
    {
        const char *uid = json_string_value(json_object_get(st, "uid"));
        if (!uid)
            continue;
        json_t *have = NULL;
        json_array_foreach(arch, k, a)
        {
            const char *u = json_string_value(json_object_get(a, "stream_uid"));
            const char *s = json_string_value(json_object_get(a, "server"));
            if (u && s && strcmp(u, uid) == 0 && strcmp(s, ms_cl.cfg->name) == 0) {
                json_t *rg = json_object_get(a, "ranges");
                have = json_is_string(rg) ? json_loads(json_string_value(rg), 0, NULL)
                                          : json_incref(rg);
            }
        }
        int rec = json_is_true(json_object_get(json_object_get(st, "dvr"), "enabled"));
        json_t *want = rec ? local_ranges(uid) : json_array();
        int same = have ? json_equal(want, have) : json_array_size(want) == 0;
        if (want && !same) {
            json_t *args = json_pack("{s:s,s:s,s:O}", "stream", uid, "server", ms_cl.cfg->name,
                                     "ranges", want);
            ms_cl.archive_busy++;
            if (cl_cluster_write(ms_cmd_new("archive_ranges_set", args), 3000, cl_busy_done,
                                 &ms_cl.archive_busy) < 0)
                ms_cl.archive_busy--;
        }
        json_decref(want);
        json_decref(have);
    }
    json_decref(arch);
    json_decref(streams);
}
