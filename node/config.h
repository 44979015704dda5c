/* Node config and stream config (docs/config.md "Node config" and "Stream config").
 *
 * Parsing is pure (JSON text in, struct out) and reports every problem as
 * "FILE: KEY: reason" lines into an error list, so --check-config can print
 * them all. Unknown keys are errors. */
#ifndef MS_NODE_CONFIG_H
#define MS_NODE_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "media/rtsp/client.h"
#include "util/errlist.h" /* ms_errlist_t */
#include "util/sizes.h"   /* MS_NAME_MAX, MS_PATH_MAX */

typedef struct {
    char path[MS_PATH_MAX];
    int max_used_percent; /* default 80 */
} ms_storage_cfg_t;

typedef struct {
    char name[MS_NAME_MAX];
    char data_dir[MS_PATH_MAX];
    int threads;                                                /* default: number of cores */
    char listen_address[64];                                    /* default "0.0.0.0" */
    int port_http, port_https, port_rtsp, port_rtmp, port_raft; /* 0 = disabled */
    int conns_per_ip;      /* listen.conns_per_ip: HTTP and RTSP connections per client address */
    int request_timeout_s; /* listen.request_timeout_s: to send a request; idle keep-alive */
    char advertise[256];   /* default "127.0.0.1" */
    char tls_cert[MS_PATH_MAX], tls_key[MS_PATH_MAX];
    char secret[256]; /* default: random per start (logged as a warning) */
    char admin_user[128], admin_password[256];
    char **api_keys;
    size_t napi_keys; /* extra Bearer keys (admin.keys) */
    ms_storage_cfg_t *storage;
    size_t nstorage;
    char streams_dir[MS_PATH_MAX]; /* "" = none */
    char **cluster_join;
    size_t ncluster_join;
    char cluster_group[MS_NAME_MAX];
    int cluster_distribution;
    int64_t cluster_stream_limit, cluster_bitrate_limit_kbps;
    int external_access;
    char **trusted_proxies;
    size_t ntrusted_proxies;
    char lua_dir[MS_PATH_MAX];
    /* hooks.on_publish / hooks.on_play: http:// URLs ("" = none),
     * hooks.timeout_ms (default 3000); node/hooks.h, docs/config.md */
    char hook_on_publish[512], hook_on_play[512];
    int hook_timeout_ms;
    int lua_fail_open;        /* lua.fail: "open" (1) or "closed" (0, default); docs/lua.md */
    char log_level[16];       /* "info" */
    int metrics_auth;         /* /metrics needs admin auth (default 0) */
    uint32_t ingest_batch_ms; /* batched TCP camera reads, 0 = on arrival (default 1000) */
    /* web panel files; "" = the default (docs/cpanel.md) */
    char cpanel_dir[MS_PATH_MAX];
    /* caps of every buffer that waits for a keyframe (media/stream/hub.h "Limits") */
    uint32_t keyframe_wait_s;  /* default 30 */
    uint32_t keyframe_wait_mb; /* default 32 */
    /* every N s one INFO line per stream (state, bitrates, clients, drops,
     * uptime); 0 = off (default) */
    uint32_t status_log_s;
} ms_node_cfg_t;

#define MS_PUSH_MAX 8 /* push targets per stream */

typedef enum { MS_ACCESS_PUBLIC = 0, MS_ACCESS_PROTECTED, MS_ACCESS_PRIVATE } ms_access_mode_t;
typedef enum { MS_DVR_CONTINUOUS = 0, MS_DVR_EVENT } ms_dvr_mode_t;

typedef struct {
    char uid[64];
    char name[MS_NAME_MAX];
    char url[2048];
    int enabled;
    unsigned channels; /* MS_CHANNEL_* */
    ms_transport_t transport;
    uint32_t reconnect_interval_ms, reconnect_max_interval_ms;
    int dvr_enabled;
    int64_t dvr_depth_s;
    int dvr_chunk_s;
    ms_dvr_mode_t dvr_mode;
    ms_access_mode_t access_mode;
    char **whitelist;
    size_t nwhitelist;
    char camera[128];
    char quality[8]; /* "high" | "low" */
    int reserve;
    char group[MS_NAME_MAX];
    /* product extensions (documented in docs/config.md) */
    int hls_format; /* ms_hls_format_t */
    uint32_t hls_segment_ms, hls_part_ms, hls_window;
    /* RTMP publishing (docs/rtmp.md): url "publish://" waits for a publisher */
    char publish_key[128];         /* "" = any publisher of the name; else ?key= must match */
    int republish_kick;            /* publish.republish: 0 reject (default), 1 kick */
    char source_file[MS_PATH_MAX]; /* file it came from, "" for API */
    /* push (docs/rtmp.md "Push"): the primary publishes the stream to each
     * rtmp:// target */
    char push_url[MS_PUSH_MAX][512];
    int npush;
} ms_stream_cfg_t;

/* Defaults for every key but name and data_dir. */
void ms_node_cfg_defaults(ms_node_cfg_t *c);
void ms_node_cfg_free(ms_node_cfg_t *c);
/* Parses JSON text. file names the source in error lines. Returns 0 when
 * valid; otherwise -1 with lines appended to errs. */
int ms_node_cfg_parse(const char *json, size_t len, const char *file, ms_node_cfg_t *out,
                      ms_errlist_t *errs);
int ms_node_cfg_load(const char *path, ms_node_cfg_t *out, ms_errlist_t *errs);

/* Checks of the config against this host for --check-config (I/O: stat,
 * access, a bind of each TCP port): data_dir and storage paths creatable
 * and writable, TLS files readable, lua_dir a directory, a non-loopback
 * advertise when cluster.join names another host (errors), and ports
 * already in use (warnings: the node may be running). Lines are appended
 * to errs / warns (caller-owned). Any thread. */
void ms_node_cfg_check_env(const ms_node_cfg_t *c, const char *file, ms_errlist_t *errs,
                           ms_errlist_t *warns);

/* The embedded default config of a node started with no argument (a
 * single node on loopback; docs/config.md "No config"): dir (absolute,
 * existing) holds node.json. When it exists it is reused (returns 0);
 * otherwise it is generated with a random admin password (copied to
 * password, pcap >= 33) and secret, ports 8080/8554/7000 unless
 * MS_HTTP_PORT / MS_RTSP_PORT / MS_RAFT_PORT say otherwise, written 0600
 * (returns 1). cfg_path receives the file's path. Negative errno on
 * failure. Main thread, before the node starts. */
int ms_node_cfg_embedded(const char *dir, char *cfg_path, size_t cap, char *password, size_t pcap);

void ms_stream_cfg_defaults(ms_stream_cfg_t *s);
void ms_stream_cfg_free(ms_stream_cfg_t *s);
int ms_stream_cfg_copy(ms_stream_cfg_t *dst, const ms_stream_cfg_t *src);
int ms_stream_cfg_parse(const char *json, size_t len, const char *file, ms_stream_cfg_t *out,
                        ms_errlist_t *errs);
/* The stream object (docs/config.md "Stream config"; same shape as the file), new reference. */
json_t *ms_stream_cfg_to_json(const ms_stream_cfg_t *s);
/* Equal in every key that matters to a running stream (1/0). */
int ms_stream_cfg_equal(const ms_stream_cfg_t *a, const ms_stream_cfg_t *b);

#endif
