/* The node's streams: a registry (name/uid -> stream) and the lifecycle
 * interface that the stream-directory loader drives today and the cluster
 * reconciler will drive later.
 *
 * Lifecycle (each is asynchronous: posted to the stream's worker loop):
 *   ms_streams_apply(cfg, desired)  create or update a stream with a target
 *                                   run state: MS_RUN_ACTIVE (pull and serve),
 *                                   MS_RUN_SUSPEND (configured, not pulling:
 *                                   backup role / disabled), MS_RUN_STOPPED
 *                                   (removed from the node).
 *   A config change that affects the source (url, transport, channels)
 *   restarts the source; other streams are never disturbed.
 *
 * Threads: the registry is guarded by a rwlock; lookups return a reference
 * (ms_stream_ref/unref) that keeps the stream object alive (not running)
 * while an HTTP thread uses it. Streams are spread over the worker loops
 * (least streams first). */
#ifndef MS_NODE_STREAMS_H
#define MS_NODE_STREAMS_H

#include <stdint.h>

#include "media/fmp4/live.h"
#include "media/hls/hls.h"
#include "media/snapshot/snapshot.h"
#include "media/stream/hub.h"
#include "media/stream/source.h"
#include "node/config.h"
#include "node/push.h"
#include "node/workers.h"

typedef enum { MS_RUN_STOPPED = 0, MS_RUN_SUSPEND, MS_RUN_ACTIVE } ms_run_state_t;

typedef struct ms_stream ms_stream_t;

/* The status object (docs/api.md "Status object") of one stream (copied, any thread). */
typedef struct {
    ms_source_status_t src;
    char role[16]; /* "primary" until the cluster lands */
    char server[64];
    char backup_server[64];
    double output_kbps;
    int clients;
    int width, height;
    char video_codec[16], audio_codec[16];
    int64_t uptime_s; /* since the current session's first frame */
    uint64_t frames_in, bytes_in;
    int64_t gop_bytes;
    uint64_t keyframe_limit_hits; /* buffers that hit their cap waiting for a keyframe */
    int64_t hls_bytes; /* media bytes the HLS output holds: listed, kept-after-expiry and open
                          segments */
    int hls_ready;
    int npush; /* push targets (node/push.h) */
    ms_push_status_t push[MS_PUSH_MAX];
} ms_stream_status_t;

int ms_streams_init(ms_workers_t *workers, const ms_node_cfg_t *node);
/* Stops every stream and waits until each is closed. */
void ms_streams_shutdown(void);

/* Any thread. Returns 0 or a negative errno (-ENOMEM, -EEXIST for a name
 * used by another uid). */
int ms_streams_apply(const ms_stream_cfg_t *cfg, ms_run_state_t desired);
int ms_streams_remove(const char *uid);
/* Any thread. Tears the running source of a stream down and starts a new
 * one (a new RTSP session: status uptime_s restarts from 0); the outputs
 * (HLS, DVR, snapshots) stay. Logs "restart requested" (INFO), then
 * "restarted" from the stream's loop. 0 when posted, -ENOENT unknown
 * stream, -EAGAIN when the stream does not run here (suspended/disabled). */
int ms_streams_restart(const char *name_or_uid);

/* Any thread. Lookup by name or uid; NULL when unknown. */
ms_stream_t *ms_streams_find(const char *name_or_uid);
/* Any thread. Array of references (caller unrefs each and frees the array). */
size_t ms_streams_list(ms_stream_t ***out);

ms_stream_t *ms_stream_ref(ms_stream_t *s);
void ms_stream_unref(ms_stream_t *s);

/* Any thread. The config as last applied (copy into dst; free with
 * ms_stream_cfg_free). */
int ms_stream_get_cfg(ms_stream_t *s, ms_stream_cfg_t *dst);
void ms_stream_get_status(ms_stream_t *s, ms_stream_status_t *out);
/* Any thread: the live HLS output (new reference) or NULL when not running. */
ms_hls_t *ms_stream_hls(ms_stream_t *s);
/* Any thread: the snapshot output (videoshot/preview) and the live fMP4
 * output, each a new reference, or NULL when the stream is not running. */
ms_snapshot_t *ms_stream_snapshot(ms_stream_t *s);
ms_fmp4_live_t *ms_stream_live_mp4(ms_stream_t *s);
/* Any thread: the hub (borrowed; valid while the stream reference is held)
 * for output accounting (ms_hub_clients_add, ms_hub_bytes_out_add). */
ms_hub_t *ms_stream_hub(ms_stream_t *s);
ms_run_state_t ms_stream_run_state(ms_stream_t *s);

/* What a load report counts of one stream (docs/cluster.md "Reports"). */
typedef struct {
    ms_run_state_t run;  /* desired run state */
    int source_active;   /* the source's state is MS_STATE_ACTIVE */
    int clients;         /* as ms_stream_status_t.clients */
    double bitrate_kbps; /* as ms_stream_status_t.src.bitrate_kbps */
} ms_stream_load_t;
/* Any thread: the load figures of s (borrowed) into out, without the rest
 * of ms_stream_get_status (no hub/HLS info, codecs or placement lookup).
 * Only a running stream (MS_RUN_ACTIVE) gets its clients and source
 * figures read; the others have them 0. */
void ms_stream_get_load(ms_stream_t *s, ms_stream_load_t *out);
/* Any thread: the worker whose loop runs the stream (fixed for the
 * stream's life; borrowed). Outputs attach to the hub on that loop. */
ms_worker_t *ms_stream_worker(ms_stream_t *s);

/* RTMP publishing (docs/rtmp.md). A stream whose url is "publish://" pulls
 * nothing: an RTMP publisher becomes its source while connected (status
 * active), else it waits (status inactive, "waiting for a publisher").
 * ms_stream_cfg_is_publish: pure. */
int ms_stream_cfg_is_publish(const ms_stream_cfg_t *cfg);
/* Stream loop (the stream's worker): attaches a publisher (arg names it;
 * kick(arg) closes it, called on this loop). A stream that already has one
 * refuses with -EBUSY (publish.republish "reject") or kicks the old one
 * first ("kick"). -ENOENT: not a running publish:// stream. peer: for the
 * log (copied). dvr: this publishing session's DVR override (-1 none,
 * 0 off, 1 on with the stream's dvr.depth_s/chunk_s; docs/rtmp.md), until
 * ms_stream_publisher_detach. */
int ms_stream_publisher_attach(ms_stream_t *s, void (*kick)(void *arg), void *arg, const char *peer,
                               int dvr);
/* Stream loop: the publisher arg left (no-op for another arg). */
void ms_stream_publisher_detach(ms_stream_t *s, void *arg);

#endif
