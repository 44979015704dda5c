/* mediaserver: the node daemon (README.md "Running", docs/config.md).
 *
 *   mediaserver                      run a single node from the embedded
 *                                    default config (run_default)
 *   mediaserver --config FILE        run a node
 *   mediaserver --check-config FILE  validate the node config and its stream
 *                                    files; problems on stdout as
 *                                    "FILE: KEY: reason"; exit 0 valid, 1 not
 *   mediaserver --version | --help
 *
 * Threads: the main thread runs the control loop (signals today; raft and
 * the reconciler later), N media workers run the streams, libmicrohttpd runs
 * its own pool. SIGTERM/SIGINT stop gracefully (HTTP, then every stream with
 * a TEARDOWN to its camera, then the workers); SIGHUP re-reads the stream
 * directory and reloads the Lua scripts (node/lua.h). SIGSEGV, SIGBUS, SIGFPE, SIGILL and SIGABRT
 * are reported (signal, address, backtrace on stderr) before the process dies of them
 * (node/crash.h). */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "api/cluster_api.h"
#include "api/http.h"
#include "api/rtmp_access.h"
#include "node/cluster.h"
#include "node/config.h"
#include "node/crash.h"
#include "node/loader.h"
#include "node/lua.h"
#include "dvr/dvr.h"
#include "api/rtsp_access.h"
#include "node/rtmp_glue.h"
#include "node/rtsp_glue.h"
#include "node/streams.h"
#include "node/workers.h"
#include "util/clock.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/version.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: mediaserver\n"
               "       mediaserver --config FILE\n"
               "       mediaserver --check-config FILE\n"
               "       mediaserver --version\n"
               "\n"
               "  (no argument)            run a single node on loopback from the embedded\n"
               "                           default: data and its generated config in\n"
               "                           $MS_DATA_DIR, else ./mediaserver-data; HTTP 8080,\n"
               "                           RTSP 8554, raft 7000 (MS_HTTP_PORT, MS_RTSP_PORT,\n"
               "                           MS_RAFT_PORT change them when the config is\n"
               "                           generated); the admin password is printed once\n"
               "  -c, --config FILE        run a node with this node config (JSON)\n"
               "      --check-config FILE  validate the node config, the stream files of\n"
               "                           its streams_dir and what the node needs from\n"
               "                           this host (directories, TLS files, lua_dir,\n"
               "                           advertise for a join; ports in use: warning);\n"
               "                           print each problem as \"FILE: KEY: reason\";\n"
               "                           exit 0 (valid) or 1\n"
               "  -V, --version            print the version\n"
               "  -h, --help               this text\n"
               "\n"
               "Signals: SIGTERM/SIGINT stop gracefully, SIGHUP re-reads the stream directory\n"
               "and the Lua scripts.\n");
}

static int check_config(const char *path)
{
    ms_log_set_level(MS_LOG_ERROR); /* no "random secret" warning here */
    ms_errlist_t errs = {0};
    ms_node_cfg_t cfg;
    ms_errlist_t warns = {0};
    int bad = ms_node_cfg_load(path, &cfg, &errs) < 0;
    if (!bad) /* the host checks only make sense for a parsed config */
        ms_node_cfg_check_env(&cfg, path, &errs, &warns);
    size_t nstreams = 0;
    if (cfg.streams_dir[0]) {
        ms_stream_set_t set;
        if (ms_loader_scan(cfg.streams_dir, cfg.name, &set, &errs) == 0)
            nstreams = set.n;
        ms_stream_set_free(&set);
    }
    for (size_t i = 0; i < errs.n; i++)
        printf("%s\n", errs.lines[i]);
    for (size_t i = 0; i < warns.n; i++)
        printf("%s\n", warns.lines[i]);
    int ok = !bad && errs.n == 0;
    if (ok)
        fprintf(stderr, "%s: valid (%zu stream file%s)\n", path, nstreams,
                nstreams == 1 ? "" : "s");
    fflush(stdout);
    ms_errlist_free(&errs);
    ms_errlist_free(&warns);
    ms_node_cfg_free(&cfg);
    return ok ? 0 : 1;
}

/* ms_dvr_init with the node config's data_dir and storage roots. */
static int dvr_init(const ms_node_cfg_t *c)
{
    ms_dvr_root_cfg_t *roots = c->nstorage ? calloc(c->nstorage, sizeof *roots) : NULL;
    if (c->nstorage && !roots)
        return -ENOMEM;
    for (size_t i = 0; i < c->nstorage; i++) {
        roots[i].path = c->storage[i].path;
        roots[i].max_used_percent = c->storage[i].max_used_percent;
    }
    ms_dvr_cfg_t d = {
        .node_name = c->name, .data_dir = c->data_dir, .roots = roots, .nroots = c->nstorage};
    int r = ms_dvr_init(&d);
    free(roots);
    return r;
}

static int run(const char *path);

/* mediaserver with no argument: the embedded default config, generated in
 * the data directory on the first start and reused after (docs/config.md
 * "No config"). */
static int run_default(void)
{
    char dir[2 * MS_PATH_MAX + 32], cfg[MS_PATH_MAX], pw[65];
    const char *env = getenv("MS_DATA_DIR");
    if (env && env[0] == '/') {
        snprintf(dir, sizeof dir, "%s", env);
    } else {
        char cwd[MS_PATH_MAX];
        if (!getcwd(cwd, sizeof cwd)) {
            fprintf(stderr, "mediaserver: cannot read the current directory: %s\n",
                    strerror(errno));
            return 1;
        }
        /* MS_DATA_DIR relative to the current directory, or the default */
        snprintf(dir, sizeof dir, "%s/%s", strcmp(cwd, "/") ? cwd : "",
                 env && env[0] ? env : "mediaserver-data");
    }
    if (strlen(dir) > MS_PATH_MAX - 64) { /* room for the files below it */
        fprintf(stderr, "mediaserver: the data directory path is too long\n");
        return 1;
    }
    int r = ms_mkdir_p(dir, 0, 0750);
    if (r == 0)
        r = ms_node_cfg_embedded(dir, cfg, sizeof cfg, pw, sizeof pw);
    if (r < 0) {
        fprintf(stderr, "mediaserver: %s: cannot prepare the default config: %s\n", dir,
                strerror(-r));
        return 1;
    }
    fprintf(stderr,
            "mediaserver: no --config given: a single node from the default config\n"
            "  data:   %s\n"
            "  config: %s (%s; edit it, or run with --config FILE)\n",
            dir, cfg, r == 1 ? "generated now" : "generated by an earlier start");
    if (r == 1)
        fprintf(stderr,
                "  admin:  user admin, password %s\n"
                "          (shown this once; it is stored in the config above)\n",
                pw);
    else
        fprintf(stderr, "  admin:  user and password in the config above (admin.user, "
                        "admin.password)\n");
    fflush(stderr);
    return run(cfg);
}

typedef struct {
    char ctx[MS_NAME_MAX + 16];
    ms_loader_t loader;
    int has_loader;
    uv_signal_t sig_term, sig_int, sig_hup;
    int stopping;
} node_t;

/* The rest of a stop, once raft has handed leadership over and closed. */
static void stop_rest(void *ud)
{
    node_t *n = ud;
    ms_http_stop();
    ms_rtsp_glue_stop();
    ms_rtmp_glue_stop();
    ms_streams_shutdown(); /* TEARDOWN to every camera, bounded wait */
    uv_close((uv_handle_t *)&n->sig_term, NULL);
    uv_close((uv_handle_t *)&n->sig_int, NULL);
    uv_close((uv_handle_t *)&n->sig_hup, NULL);
}

static void on_stop_signal(uv_signal_t *h, int signum)
{
    node_t *n = h->data;
    if (n->stopping)
        return;
    n->stopping = 1;
    MS_INFO(n->ctx, "%s: stopping", signum == SIGINT ? "SIGINT" : "SIGTERM");
    if (ms_cluster_enabled()) {
        ms_api_cluster_quiesce(); /* suspended cluster calls answered 503 */
        ms_cluster_stop(stop_rest, n);
    } else {
        stop_rest(n);
    }
}

static void on_hup(uv_signal_t *h, int signum)
{
    (void)signum;
    node_t *n = h->data;
    if (n->stopping)
        return;
    if (ms_lua_global()) { /* the Lua scripts too (docs/lua.md) */
        MS_INFO(n->ctx, "SIGHUP: reloading the Lua scripts");
        json_decref(ms_lua_reload(ms_lua_global()));
    }
    if (!n->has_loader) {
        MS_INFO(n->ctx, "SIGHUP: no streams_dir configured");
        return;
    }
    MS_INFO(n->ctx, "SIGHUP: re-reading %s", n->loader.dir);
    ms_loader_reload(&n->loader);
}

static int run(const char *path)
{
    signal(SIGPIPE, SIG_IGN);
    ms_errlist_t errs = {0};
    ms_node_cfg_t cfg;
    if (ms_node_cfg_load(path, &cfg, &errs) < 0) {
        for (size_t i = 0; i < errs.n; i++)
            fprintf(stderr, "%s\n", errs.lines[i]);
        fprintf(stderr, "mediaserver: invalid config, not starting\n");
        ms_errlist_free(&errs);
        ms_node_cfg_free(&cfg);
        return 1;
    }
    ms_errlist_free(&errs);
    ms_log_level_t lvl = MS_LOG_INFO;
    ms_log_level_parse(cfg.log_level, &lvl);
    ms_log_set_level(lvl);

    static node_t n; /* signal handles must outlive run()'s loop */
    memset(&n, 0, sizeof n);
    snprintf(n.ctx, sizeof n.ctx, "[node %s]", cfg.name);
    MS_INFO(n.ctx, "mediaserver %s starting (%d worker threads)", ms_version(), cfg.threads);

    int rc = 1;
    ms_workers_t *workers = NULL;
    int streams_up = 0, http_up = 0, dvr_up = 0;
    uv_loop_t loop;
    int loop_up = 0;
    ms_lua_t *lua = NULL;

    int r = ms_mkdir_p(cfg.data_dir, 0, 0750);
    if (r < 0) {
        MS_ERROR(n.ctx, "data_dir %s: cannot create: %s", cfg.data_dir, strerror(-r));
        goto out;
    }
    if ((r = dvr_init(&cfg)) < 0) {
        MS_ERROR(n.ctx, "cannot start the DVR: %s", strerror(-r));
        goto out;
    }
    dvr_up = 1;
    workers = ms_workers_start(cfg.threads);
    if (!workers) {
        MS_ERROR(n.ctx, "cannot start %d worker threads", cfg.threads);
        goto out;
    }
    if ((r = ms_streams_init(workers, &cfg)) < 0) {
        MS_ERROR(n.ctx, "cannot initialise the streams: %s", strerror(-r));
        goto out;
    }
    streams_up = 1;
    if (uv_loop_init(&loop) != 0) {
        MS_ERROR(n.ctx, "cannot create the control loop");
        goto out;
    }
    loop_up = 1;
    if ((r = ms_cluster_start(&loop, &cfg)) < 0) {
        MS_ERROR(n.ctx, "cannot start the cluster on raft port %d: %s", cfg.port_raft,
                 strerror(-r));
        fprintf(stderr, "mediaserver: cannot start the cluster: %s\n", strerror(-r));
        goto out;
    }
    if (cfg.streams_dir[0]) {
        if (ms_cluster_enabled()) /* the files go to the replicated state */
            ms_loader_init(&n.loader, cfg.streams_dir, cfg.name, ms_cluster_loader_apply,
                           ms_cluster_loader_remove);
        else
            ms_loader_init(&n.loader, cfg.streams_dir, cfg.name, ms_streams_apply,
                           ms_streams_remove);
        n.has_loader = 1;
        ms_loader_reload(&n.loader);
    }
    if (ms_cluster_enabled()) {
        /* serve HTTP once the files are in the state and this node's streams
         * are applied (bounded: a node without quorum serves anyway) */
        int64_t until = ms_mono_ms() + 8000;
        while (!ms_cluster_ready() && ms_mono_ms() < until)
            uv_run(&loop, UV_RUN_ONCE);
    }
    /* the Lua scripts (docs/lua.md): a script that does not load is
     * logged and left out; the node runs without it */
    ms_lua_opts_t lo = {.fail_open = cfg.lua_fail_open, .secret = cfg.secret};
    lua = ms_lua_new(cfg.lua_dir, &lo);
    ms_lua_set_global(lua);
    /* on_event (stream state changes, polled every second) and ms.every */
    if (lua && cfg.lua_dir[0] && (r = ms_lua_events_start(lua, 1000)) < 0)
        MS_WARN(n.ctx, "Lua events: cannot start the thread: %s", strerror(-r));
    char err[512] = "";
    if ((r = ms_http_start(&cfg, err, sizeof err)) < 0) {
        MS_ERROR(n.ctx, "cannot start HTTP on %s:%d: %s", cfg.listen_address, cfg.port_http,
                 err[0] ? err : strerror(-r));
        fprintf(stderr, "mediaserver: cannot start HTTP: %s\n", err[0] ? err : strerror(-r));
        goto out;
    }
    http_up = 1;
    ms_rtsp_glue_set_sessions(ms_http_rtsp_sessions());
    ms_rtmp_glue_set_sessions(ms_http_rtsp_sessions());
    if ((r = ms_rtsp_glue_start(&cfg, ms_rtsp_access_authorize, &cfg, err, sizeof err)) < 0) {
        MS_ERROR(n.ctx, "cannot start RTSP on %s:%d: %s", cfg.listen_address, cfg.port_rtsp, err);
        fprintf(stderr, "mediaserver: cannot start RTSP: %s\n", err);
        goto out;
    }
    if ((r = ms_rtmp_glue_start(&cfg, ms_rtmp_access_authorize_play, &cfg, err, sizeof err)) < 0) {
        MS_ERROR(n.ctx, "cannot start RTMP on %s:%d: %s", cfg.listen_address, cfg.port_rtmp, err);
        fprintf(stderr, "mediaserver: cannot start RTMP: %s\n", err);
        goto out;
    }

    n.sig_term.data = n.sig_int.data = n.sig_hup.data = &n;
    uv_signal_init(&loop, &n.sig_term);
    uv_signal_init(&loop, &n.sig_int);
    uv_signal_init(&loop, &n.sig_hup);
    uv_signal_start(&n.sig_term, on_stop_signal, SIGTERM);
    uv_signal_start(&n.sig_int, on_stop_signal, SIGINT);
    uv_signal_start(&n.sig_hup, on_hup, SIGHUP);
    MS_INFO(n.ctx, "running: http %s:%d, %zu stream file(s) applied", cfg.listen_address,
            cfg.port_http, n.has_loader ? n.loader.cur.n : (size_t)0);
    uv_run(&loop, UV_RUN_DEFAULT);
    http_up = 0;    /* stopped by the signal handler */
    streams_up = 0; /* likewise */
    rc = 0;

out:
    if (http_up)
        ms_http_stop();
    ms_rtsp_glue_stop();
    ms_rtmp_glue_stop();
    ms_lua_set_global(NULL); /* no server calls it any more */
    ms_lua_free(lua);
    if (streams_up)
        ms_streams_shutdown();
    if (workers)
        ms_workers_stop(workers);
    if (dvr_up) /* after the workers: every recorder is closed by then */
        ms_dvr_shutdown();
    if (loop_up && ms_cluster_enabled() && rc != 0) {
        ms_cluster_stop(NULL, NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    ms_cluster_free();
    if (loop_up) {
        uv_run(&loop, UV_RUN_NOWAIT);
        uv_loop_close(&loop);
    }
    if (n.has_loader)
        ms_loader_free(&n.loader);
    if (rc == 0)
        MS_INFO(n.ctx, "stopped");
    ms_node_cfg_free(&cfg);
    return rc;
}

/* glibc gives each thread that allocates its own malloc arena (up to 8 per
 * core). Frames and blobs are allocated on the media loops and freed on HTTP
 * threads, so free memory ends up scattered over many arenas. Two arenas
 * keep the footprint per camera down at no measurable CPU cost (see
 * bench/README.md). MALLOC_ARENA_MAX in the environment still wins. */
static void tune_malloc(void)
{
    if (!getenv("MALLOC_ARENA_MAX"))
        (void)mallopt(M_ARENA_MAX, 2);
}

int main(int argc, char **argv)
{
    tune_malloc();
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", required_argument, NULL, 'k'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config = NULL, *check = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "c:Vh", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 'k':
            check = optarg;
            break;
        case 'V':
            printf("mediaserver %s\n", ms_version());
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "mediaserver: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (check)
        return check_config(check);
    /* before any thread starts: the alternate stack is this thread's */
    int cr = ms_crash_install();
    if (cr < 0)
        fprintf(stderr, "mediaserver: no crash handler: %s\n", strerror(-cr));
    if (config)
        return run(config);
    return run_default();
}
