/* GET /metrics: per-stream gauges and counters, the LL-HLS part latency
 * histogram, process figures and HTTP responses by code, in the Prometheus
 * text format 0.0.4 (writers in prom.c).
 *
 * Without metrics_auth anyone may read this page, so it must not name the
 * streams that are not public (docs/security.md "Playback"): their samples
 * are labelled stream="~" + 16 hex digits of SHA-256("ms-metrics" NUL uid),
 * stable per stream (a dashboard keeps its series) but not the name. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "api/api.h"
#include "node/placement_view.h"

typedef struct {
    char name[MS_NAME_MAX];
    char role[16]; /* of this node's copy: primary, migrated, secondary, none */
    ms_stream_status_t st;
    int has_lat;
    ms_hls_latency_t lat;
    int has_snap;
    uint64_t snap_decodes;
} snap_t;

typedef struct {
    const char *name, *type, *help;
} family_t;

static const family_t fam[] = {
    {"ms_stream_up", "gauge",
     "1 when this node runs the stream as primary and its source is active"},
    {"ms_stream_clients", "gauge", "Viewers of the stream"},
    {"ms_stream_input_bitrate_kbps", "gauge", "Input bitrate in kbit/s"},
    {"ms_stream_output_bitrate_kbps", "gauge", "Output bitrate in kbit/s"},
    {"ms_stream_reconnects_total", "counter", "Reconnections since the stream started"},
    {"ms_stream_frames_in_total", "counter", "Frames received"},
    {"ms_stream_bytes_in_total", "counter", "Media bytes received"},
    {"ms_stream_rtp_lost_total", "counter", "RTP packets detected as lost"},
    {"ms_stream_frames_dropped_total", "counter", "Frames dropped for loss or corruption"},
    {"ms_stream_hls_bytes", "gauge",
     "Media bytes held by the live HLS output (listed, kept-after-expiry and open segments)"},
    {"ms_stream_gop_bytes", "gauge", "Bytes held by the hub's GOP cache"},
    {"ms_stream_timestamp_jumps_total", "counter",
     "RTP timestamp jumps that started a new timeline (media/rtp/timeline.c)"},
    {"ms_stream_keyframe_limit_hits_total", "counter",
     "Buffers that hit their cap waiting for a keyframe (cut, dropped or resynchronised)"},
};

static double value_of(int i, const ms_stream_status_t *st)
{
    switch (i) {
    case 0: /* a copy held suspended (backup) is never up */
        return st->src.state == MS_STATE_ACTIVE;
    case 1:
        return st->clients;
    case 2:
        return st->src.bitrate_kbps;
    case 3:
        return st->output_kbps;
    case 4:
        return st->src.reconnects_total;
    case 5:
        return (double)st->frames_in;
    case 6:
        return (double)st->bytes_in;
    case 7:
        return (double)st->src.rtp_lost;
    case 9:
        return (double)st->hls_bytes;
    case 10:
        return (double)st->gop_bytes;
    case 11:
        return (double)st->src.timestamp_jumps;
    case 12:
        return (double)st->keyframe_limit_hits;
    default:
        return (double)st->src.frames_dropped;
    }
}

/* The label of a stream that is not public on an unauthenticated page. */
static void hidden_label(const char *uid, char *out, size_t cap)
{
    char msg[sizeof "ms-metrics" + sizeof(((ms_stream_cfg_t *)0)->uid)];
    size_t ul = strnlen(uid, sizeof(((ms_stream_cfg_t *)0)->uid) - 1);
    memcpy(msg, "ms-metrics", sizeof "ms-metrics"); /* with its NUL */
    memcpy(msg + sizeof "ms-metrics", uid, ul);
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)msg, sizeof "ms-metrics" + ul, md);
    char hex[17];
    for (int i = 0; i < 8; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    snprintf(out, cap, "~%s", hex);
}

/* The role of this node's copy of s (docs/api.md "Metrics"): primary or
 * migrated where it runs, secondary on its backup, none elsewhere; primary
 * without a cluster. A copy that is not the primary is never up. */
static void copy_role(ms_stream_t *s, snap_t *sn)
{
    ms_placement_view_t pv;
    ms_stream_cfg_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    const char *self = ms_api_cfg()->name, *role = "primary";
    if (ms_stream_get_cfg(s, &cfg) == 0 && ms_placement_view_get(cfg.uid, &pv) == 0) {
        if (pv.self_primary)
            role = pv.transferred ? "migrated" : "primary";
        else if (pv.backup[0] && strcmp(pv.backup, self) == 0)
            role = "secondary";
        else
            role = "none";
    }
    ms_stream_cfg_free(&cfg);
    snprintf(sn->role, sizeof sn->role, "%s", role);
    if (strcmp(role, "primary") != 0 && strcmp(role, "migrated") != 0)
        sn->st.src.state =
            sn->st.src.state == MS_STATE_ACTIVE ? MS_STATE_SUSPEND : sn->st.src.state;
}

enum MHD_Result ms_api_metrics(ms_req_t *r)
{
    int hide = !ms_api_cfg()->metrics_auth;
    ms_buf_t b = MS_BUF_INIT;
    ms_stream_t **list = NULL;
    size_t n = ms_streams_list(&list);
    snap_t *snaps = n ? calloc(n, sizeof(*snaps)) : NULL;
    for (size_t i = 0; i < n; i++) {
        if (snaps) {
            ms_stream_cfg_t cfg;
            memset(&cfg, 0, sizeof(cfg));
            if (ms_stream_get_cfg(list[i], &cfg) == 0) {
                if (hide && cfg.access_mode != MS_ACCESS_PUBLIC) {
                    hidden_label(cfg.uid, snaps[i].name, sizeof snaps[i].name);
                } else {
                    memcpy(snaps[i].name, cfg.name, sizeof(snaps[i].name));
                    snaps[i].name[sizeof(snaps[i].name) - 1] = '\0';
                }
                ms_stream_cfg_free(&cfg);
            }
            ms_stream_get_status(list[i], &snaps[i].st);
            copy_role(list[i], &snaps[i]);
            ms_hls_t *h = ms_stream_hls(list[i]);
            if (h) {
                ms_hls_get_latency(h, &snaps[i].lat);
                snaps[i].has_lat = 1;
                ms_hls_unref(h);
            }
            ms_snapshot_t *sn = ms_stream_snapshot(list[i]);
            if (sn) {
                snaps[i].snap_decodes = ms_snapshot_decodes(sn);
                snaps[i].has_snap = 1;
                ms_snapshot_unref(sn);
            }
        }
        ms_stream_unref(list[i]);
    }
    free(list);
    if (n && !snaps)
        return ms_api_reply_error(r, 500, "out of memory", NULL, NULL);

    for (size_t f = 0; f < sizeof(fam) / sizeof(fam[0]); f++) {
        ms_prom_head(&b, fam[f].name, fam[f].type, fam[f].help);
        for (size_t i = 0; i < n; i++) {
            /* role and server tell the copies of a stream apart */
            const char *kv[] = {"stream", snaps[i].name,      "role", snaps[i].role,
                                "server", ms_api_cfg()->name, NULL};
            ms_prom_sample_labels(&b, fam[f].name, kv, value_of((int)f, &snaps[i].st));
        }
    }
    ms_prom_head(&b, "ms_hls_part_latency_ms", "histogram",
                 "Frame arrival to LL-HLS part listed in the playlist, milliseconds");
    for (size_t i = 0; i < n; i++)
        if (snaps[i].has_lat)
            ms_prom_histogram(&b, "ms_hls_part_latency_ms", snaps[i].name, ms_hls_latency_bounds_ms,
                              &snaps[i].lat);
    ms_prom_head(&b, "ms_snapshot_decodes_total", "counter",
                 "Keyframes decoded for JPEG snapshots (at most one per keyframe)");
    for (size_t i = 0; i < n; i++)
        if (snaps[i].has_snap)
            ms_prom_sample(&b, "ms_snapshot_decodes_total", "stream", snaps[i].name,
                           (double)snaps[i].snap_decodes);
    free(snaps);

    ms_sysinfo_t si;
    ms_sys_get(&si);
    ms_prom_head(&b, "ms_process_resident_memory_bytes", "gauge", "Resident memory size");
    ms_prom_sample(&b, "ms_process_resident_memory_bytes", NULL, NULL, (double)si.rss_bytes);
    ms_prom_head(&b, "ms_process_cpu_seconds_total", "counter", "User and system CPU time");
    ms_prom_sample(&b, "ms_process_cpu_seconds_total", NULL, NULL, si.cpu_process_seconds);

    uint64_t *counts = calloc(500, sizeof(*counts));
    ms_prom_head(&b, "ms_http_requests_total", "counter", "HTTP responses by status code");
    if (counts) {
        ms_api_status_counts(counts, 500);
        for (int c = 0; c < 500; c++)
            if (counts[c]) {
                char code[8];
                snprintf(code, sizeof(code), "%d", c + 100);
                ms_prom_sample(&b, "ms_http_requests_total", "code", code, (double)counts[c]);
            }
        free(counts);
    }
    ms_blob_t *blob = ms_buf_to_blob(&b);
    ms_buf_free(&b);
    if (!blob)
        return ms_api_reply_error(r, 500, "out of memory", NULL, NULL);
    static const char *const hdrs[] = {"Cache-Control", "no-cache", NULL};
    return ms_api_reply_blob(r, 200, "text/plain; version=0.0.4; charset=utf-8", blob, hdrs);
}
