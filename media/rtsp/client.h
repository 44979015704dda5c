/* RTSP 1.0 client (RFC 2326) that pulls one camera into a stream hub.
 *
 * Runs on one worker loop; every function is called on that loop except
 * ms_rtsp_client_get_status() (any thread).
 *
 * Behaviour: OPTIONS, DESCRIBE (SDP, Content-Base), SETUP of the tracks
 * selected by channels (video, audio, application = ONVIF metadata), PLAY,
 * keepalive (GET_PARAMETER or OPTIONS) within the session timeout, TEARDOWN
 * on stop. Basic and Digest (RFC 2617, MD5, qop=auth) with the URL's
 * credentials; 3xx redirects (bounded). Transport: udp (RTP+RTCP port pair),
 * tcp (interleaved), auto (udp, falling back to tcp when no packet arrives
 * in time). Every failure (refused, timeout, 4xx/5xx, no data, EOF) leads to
 * a reconnect after interval_ms, doubling up to max_interval_ms.
 *
 * Frames go into the hub: ms_hub_set_tracks() after each successful SETUP
 * set (a new session), then ms_hub_publish() with pts aligned across tracks
 * (RTCP SR when available, else arrival) and MS_FRAME_DISCONT on the first
 * frame of each session. */
#ifndef MS_MEDIA_RTSP_CLIENT_H
#define MS_MEDIA_RTSP_CLIENT_H

#include <uv.h>

#include "media/stream/hub.h"
#include "media/stream/source.h"

typedef enum {
    MS_TRANSPORT_AUTO = 0,
    MS_TRANSPORT_TCP,
    MS_TRANSPORT_UDP,
} ms_transport_t;

typedef struct {
    const char *url; /* rtsp://[user:pass@]host[:port]/path (copied) */
    ms_transport_t transport;
    unsigned channels;        /* MS_CHANNEL_* mask */
    uint32_t interval_ms;     /* first reconnect delay */
    uint32_t max_interval_ms; /* cap of the growing delay */
    uint32_t timeout_ms;      /* connect/response/no-data timeout; 0 = 5000 */
    uint32_t batch_ms;        /* read a TCP camera every batch_ms while the hub wants no
                                 prompt delivery (client.c); 0 = on arrival; max 1000 */
    const char *log_ctx;      /* e.g. "[stream cam1] [rtsp-client]" (copied) */
} ms_rtsp_client_cfg_t;

typedef struct ms_rtsp_client ms_rtsp_client_t;

/* Starts connecting at once. The hub is borrowed and must outlive the client.
 * Returns NULL on a config error (bad URL) with the reason in err. */
ms_rtsp_client_t *ms_rtsp_client_start(uv_loop_t *loop, const ms_rtsp_client_cfg_t *cfg,
                                       ms_hub_t *hub, char *err, size_t errlen);
/* Sends TEARDOWN when a session exists (best effort, bounded wait), closes
 * every handle and then calls done(ud) on the loop; the client is freed after
 * done returns. The hub is reset (no tracks) before done. */
void ms_rtsp_client_stop(ms_rtsp_client_t *c, void (*done)(void *ud), void *ud);
/* Copies the current status (any thread). */
void ms_rtsp_client_get_status(ms_rtsp_client_t *c, ms_source_status_t *out);
/* The two figures a load report needs, without copying the whole status
 * (its SDP and strings): whether the source is active and its input bitrate
 * in kbit/s (any thread). */
void ms_rtsp_client_get_load(ms_rtsp_client_t *c, int *active, double *bitrate_kbps);

#endif
