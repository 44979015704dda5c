/* GET /api/v1/system: this node's name, version, uptime, CPU, memory,
 * disks, threads and stream count. CPU percentages come from /proc samples
 * (proc(5): /proc/stat, /proc/self/stat, /proc/self/status, /proc/meminfo)
 * taken on demand: when /system or /metrics is served and the last sample
 * is at least a second old (nothing is read while nobody asks). The network
 * counters are the kernel's per-interface totals (/proc/net/dev, proc(5)). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "api/api.h"
#include "util/procfs.h"
#include "dvr/dvr.h"
#include "node/lua.h"
#include "util/clock.h"
#include "util/version.h"

/* a request takes a new sample when the last one is this old */
#define MS_SYS_SAMPLE_MIN_US 1000000

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned long long g_prev_proc, g_prev_total, g_prev_idle;
static int64_t g_prev_us;
static double g_proc_pct, g_sys_pct, g_proc_seconds;

/* utime + stime of this process in clock ticks (fields 14 and 15). */
static int read_proc_ticks(unsigned long long *ticks)
{
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "r");
    if (!f)
        return -errno;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name (field 2) may hold spaces: skip past its ')'. */
    char *p = strrchr(buf, ')');
    if (!p)
        return -EINVAL;
    unsigned long long ut = 0, st = 0;
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -EINVAL;
    *ticks = ut + st;
    return 0;
}

static int read_sys_ticks(unsigned long long *total, unsigned long long *idle)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return -errno;
    unsigned long long v[8] = {0};
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    if (n < 4)
        return -EINVAL;
    *total = 0;
    for (int i = 0; i < 8; i++)
        *total += v[i];
    *idle = v[3] + v[4]; /* idle + iowait */
    return 0;
}

void ms_sys_sample(void)
{
    unsigned long long pt = 0, tot = 0, idle = 0;
    int64_t now = ms_mono_us();
    int okp = read_proc_ticks(&pt) == 0;
    int oks = read_sys_ticks(&tot, &idle) == 0;
    long hz = sysconf(_SC_CLK_TCK);
    if (hz <= 0)
        hz = 100;
    pthread_mutex_lock(&g_mu);
    if (okp) {
        if (g_prev_us && now > g_prev_us && pt >= g_prev_proc)
            g_proc_pct =
                100.0 * (double)(pt - g_prev_proc) / (double)hz / ((double)(now - g_prev_us) / 1e6);
        g_prev_proc = pt;
        g_proc_seconds = (double)pt / (double)hz;
    }
    if (oks) {
        if (g_prev_total && tot > g_prev_total && idle >= g_prev_idle) {
            double dt = (double)(tot - g_prev_total), di = (double)(idle - g_prev_idle);
            g_sys_pct = di <= dt ? 100.0 * (dt - di) / dt : 0;
        }
        g_prev_total = tot;
        g_prev_idle = idle;
    }
    g_prev_us = now;
    pthread_mutex_unlock(&g_mu);
}

void ms_sys_get(ms_sysinfo_t *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&g_mu);
    int stale = ms_mono_us() - g_prev_us >= MS_SYS_SAMPLE_MIN_US;
    pthread_mutex_unlock(&g_mu);
    if (stale)
        ms_sys_sample();
    pthread_mutex_lock(&g_mu);
    out->cpu_process_pct = g_proc_pct;
    out->cpu_system_pct = g_sys_pct;
    out->cpu_process_seconds = g_proc_seconds;
    pthread_mutex_unlock(&g_mu);
    unsigned long long pt;
    long hz = sysconf(_SC_CLK_TCK);
    if (read_proc_ticks(&pt) == 0 && hz > 0)
        out->cpu_process_seconds = (double)pt / (double)hz;
    out->rss_bytes = ms_procfs_value("/proc/self/status", "VmRSS") * 1024;
    out->threads = (int)ms_procfs_value("/proc/self/status", "Threads");
    out->mem_total_bytes = ms_procfs_value("/proc/meminfo", "MemTotal") * 1024;
    out->mem_available_bytes = ms_procfs_value("/proc/meminfo", "MemAvailable") * 1024;
}

static json_t *disk_json(const char *role, const char *path)
{
    struct statvfs sv;
    json_t *j = json_pack("{s:s,s:s}", "role", role, "path", path);
    if (!j)
        return NULL;
    if (statvfs(path, &sv) == 0) {
        uint64_t total = (uint64_t)sv.f_blocks * sv.f_frsize;
        uint64_t avail = (uint64_t)sv.f_bavail * sv.f_frsize;
        uint64_t freeb = (uint64_t)sv.f_bfree * sv.f_frsize;
        uint64_t used = total - freeb;
        json_object_set_new(j, "total_bytes", json_integer((json_int_t)total));
        json_object_set_new(j, "used_bytes", json_integer((json_int_t)used));
        json_object_set_new(j, "available_bytes", json_integer((json_int_t)avail));
        /* df(1)'s Use%: used / (used + available to unprivileged users). */
        double pct = used + avail ? 100.0 * (double)used / (double)(used + avail) : 0;
        json_object_set_new(j, "used_percent", json_real(pct));
    } else {
        json_object_set_new(j, "error", json_string(strerror(errno)));
    }
    return j;
}

/* The interfaces of /proc/net/dev (proc(5)): receive bytes and packets are
 * the first two counters after "name:", transmit bytes and packets the ninth
 * and tenth. Returns a new array (empty when the file cannot be read); the
 * caller owns it. Any thread. */
static json_t *net_json(void)
{
    json_t *a = json_array();
    FILE *f = fopen("/proc/net/dev", "r");
    if (!a || !f) {
        if (f)
            fclose(f);
        return a;
    }
    char line[512];
    while (fgets(line, sizeof(line), f)) {
        char *colon = strchr(line, ':');
        if (!colon) /* the two header lines */
            continue;
        *colon = '\0';
        char *name = line;
        while (*name == ' ')
            name++;
        unsigned long long v[10];
        if (sscanf(colon + 1, "%llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
                   &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]) != 10)
            continue;
        json_array_append_new(a, json_pack("{s:s,s:I,s:I,s:I,s:I}", "interface", name, "rx_bytes",
                                           (json_int_t)v[0], "rx_packets", (json_int_t)v[1],
                                           "tx_bytes", (json_int_t)v[8], "tx_packets",
                                           (json_int_t)v[9]));
    }
    fclose(f);
    return a;
}

enum MHD_Result ms_api_system(ms_req_t *r)
{
    const ms_node_cfg_t *cfg = ms_api_cfg();
    ms_sysinfo_t si;
    ms_sys_get(&si);
    ms_stream_t **list = NULL;
    size_t n = ms_streams_list(&list);
    for (size_t i = 0; i < n; i++)
        ms_stream_unref(list[i]);
    free(list);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

    json_t *disks = json_array();
    if (disks) {
        json_array_append_new(disks, disk_json("data", cfg->data_dir));
        for (size_t i = 0; i < cfg->nstorage; i++)
            json_array_append_new(disks, disk_json("storage", cfg->storage[i].path));
    }
    json_t *j = json_pack(
        "{s:s,s:s,s:I,s:{s:f,s:f,s:f,s:i},s:{s:I,s:I,s:I},s:o,s:i,s:i}", "name", cfg->name,
        "version", ms_version(), "uptime_s", (json_int_t)ms_api_uptime_s(), "cpu",
        "process_percent", si.cpu_process_pct, "system_percent", si.cpu_system_pct,
        "process_seconds", si.cpu_process_seconds, "cores", (int)ncpu, "memory", "rss_bytes",
        (json_int_t)si.rss_bytes, "total_bytes", (json_int_t)si.mem_total_bytes, "available_bytes",
        (json_int_t)si.mem_available_bytes, "disks", disks ? disks : json_array(), "threads",
        si.threads, "streams", (int)n);
    /* per-interface byte counters: the web panel draws rates from them */
    if (j)
        json_object_set_new(j, "network", net_json());
    /* public share links (docs/access.md): the web panel shows the switch */
    if (j)
        json_object_set_new(j, "external_access", json_boolean(cfg->external_access));
    /* DVR storage roots (docs/dvr.md "Retention"). */
    json_t *storage = NULL;
    if (j && ms_dvr_storage(&storage) == 0)
        json_object_set_new(j, "storage", json_incref(json_object_get(storage, "roots")));
    json_decref(storage);
    /* the Lua scripts that run on this node (docs/lua.md): never replicated */
    ms_lua_t *lua = ms_lua_global();
    json_t *ls = lua ? ms_lua_status(lua) : NULL;
    if (j && ls)
        json_object_set_new(j, "lua",
                            json_pack("{s:O,s:I}", "hash", json_object_get(ls, "hash"), "scripts",
                                      (json_int_t)json_array_size(json_object_get(ls, "files"))));
    json_decref(ls);
    return ms_api_reply_json(r, 200, j, NULL);
}
