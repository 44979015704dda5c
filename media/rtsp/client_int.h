/* Internals of the RTSP client (media/rtsp/client.h), shared by client.c
 * (connection and RTSP state machine) and client_media.c (tracks, UDP,
 * frames, timeline, status). Not a public interface. */
#ifndef MS_MEDIA_RTSP_CLIENT_INT_H
#define MS_MEDIA_RTSP_CLIENT_INT_H

#include <pthread.h>
#include <uv.h>

#include "media/rtp/receiver.h"
#include "media/rtsp/auth.h"
#include "media/rtsp/client.h"
#include "media/rtsp/msg.h"
#include "media/rtsp/sdp.h"
#include "media/rtsp/url.h"
#include "util/log.h"

#define CL_MAX_TRACKS 3 /* one per kind: video, audio, application */

typedef enum {
    SS_RESOLVE = 0,
    SS_CONNECT,
    SS_OPTIONS,
    SS_DESCRIBE,
    SS_SETUP,
    SS_PLAY,
    SS_PLAYING,
    SS_TEARDOWN,
    SS_CLOSING,
} ms_rtsp_sess_state_t;

typedef struct ms_rtsp_sess ms_rtsp_sess_t;

typedef struct {
    ms_rtsp_sess_t *s;
    int index; /* hub track index */
    ms_codec_t codec;
    ms_track_kind_t kind;
    uint32_t clock_rate;
    int pt;
    int channels;
    char *fmtp;    /* malloc'd copy or NULL */
    char *control; /* malloc'd absolute URL of the track */
    ms_rtp_receiver_t *rx;
    ms_codec_params_t params;
    int params_dirty;
    /* transport */
    int ch_rtp, ch_rtcp; /* interleaved channels */
    uv_udp_t udp[2];     /* RTP, RTCP */
    int udp_open;
    uint16_t local_port;
    struct sockaddr_storage srv[2]; /* server RTP/RTCP addresses (UDP) */
    int has_srv;
    /* timeline (see client_media.c) */
    int started;
    int64_t offset; /* added to receiver pts, track clock units */
} ms_rtsp_track_t;

struct ms_rtsp_sess {
    ms_rtsp_client_t *c;
    int dead;    /* detached from the client; closing */
    int pending; /* handles/requests whose callbacks are still due */
    ms_rtsp_sess_state_t state;
    int tcp_transport;
    char url[MS_RTSP_URL_MAX]; /* request URL without credentials */
    ms_rtsp_url_t purl;
    uv_getaddrinfo_t gai;
    uv_connect_t connect_req;
    uv_tcp_t tcp;
    int tcp_open;
    uv_timer_t tick;
    int tick_open;
    uv_timer_t extra; /* batched reads between the ticks (client.c "Reads between") */
    int extra_open;
    uint64_t extra_ms;     /* its period, 0 when stopped */
    int first_reads;       /* extra reads before the first frame */
    int split;             /* batched reads per batch interval (1, 2, 4, ...) */
    int split_calm;        /* reads in a row that found the buffer nearly empty */
    int split_logged;      /* the highest split said in the log */
    uint64_t last_read_ms; /* loop time of the last batched read */
    int paced;             /* TCP socket read on the tick, not on arrival (client.c) */
    struct sockaddr_storage peer;
    ms_rtsp_parser_t parser;
    uint32_t cseq;
    uint32_t wait_cseq;      /* CSeq of the request awaiting its response */
    const char *wait_method; /* its method */
    int64_t wait_since_ms;   /* 0 when nothing is awaited */
    int64_t state_since_ms;
    int auth_tries;
    ms_auth_challenge_t auth;
    int has_get_parameter;
    char base[MS_RTSP_URL_MAX];
    char aggregate[MS_RTSP_URL_MAX];
    char session_id[256];
    int session_timeout_s;
    int ntracks;
    int setup_index;
    ms_rtsp_track_t tracks[CL_MAX_TRACKS];
    /* media */
    int64_t play_ms;      /* mono ms at PLAY 200 */
    int64_t last_data_ms; /* mono ms of the last RTP packet */
    /* clocks read once per socket read (ms_rtsp_cl_arrival): every packet
     * of one read arrived together (a batch is one arrival) */
    int64_t rx_wall_us, rx_mono_ms;
    int64_t last_keepalive_ms;
    int64_t last_rr_ms;
    int hub_set;
    int got_rtp;
    int64_t gap_log_ms; /* mono ms of the last "sequence gap over TCP" warning */
    int first_frame_sent;
    int64_t base_wall_us; /* wall clock of timeline 0 */
    int64_t active_since_ms;
};

/* Receive buffer for TCP reads and UDP datagrams: one per thread (worker
 * loop), shared by every session of that thread, since a read is fully
 * consumed inside its callback (what is left of an incomplete message is
 * copied into the session's parser). Allocated on first use, freed when the
 * thread exits. NULL when out of memory. */
#define CL_READ_BUF 65536
uint8_t *ms_rtsp_cl_read_buf(void);

struct ms_rtsp_client {
    uv_loop_t *loop;
    ms_hub_t *hub;
    char *url;
    ms_rtsp_url_t purl;
    ms_transport_t transport;
    int tcp_learned; /* auto mode fell back to TCP once: stay on TCP */
    unsigned channels;
    uint32_t interval_ms, max_interval_ms, timeout_ms;
    uint32_t batch_ms; /* TCP reads batched on the session tick; 0 = on arrival */
    uint32_t delay_ms; /* next reconnect delay */
    char ctx[192];
    ms_ratelimit_t rl;
    int redirects;
    char redirect_url[MS_RTSP_URL_MAX];
    ms_rtsp_sess_t *sess;
    int nsessions; /* sessions allocated (current + closing) */
    int started_sessions;
    uv_timer_t retry;
    int retry_open;
    int stopping;
    void (*done)(void *ud);
    void *done_ud;
    int64_t losses[3]; /* mono ms of the last losses of established sessions */
    /* bitrate */
    uint64_t bytes_window;
    int64_t bitrate_since_ms;
    double bitrate_samples[5];
    int bitrate_n, bitrate_pos;
    uint64_t acc_packets, acc_lost, acc_dropped; /* of sessions already closed */
    uint64_t acc_jumps, acc_resyncs;             /* the same */
    ms_src_window_t jump_window;                 /* RTP timestamp jumps, last minute */
    pthread_mutex_t lock;                        /* guards status */
    ms_source_status_t status;
};

/* client_media.c */
/* Chooses the tracks of sdp (borrowed: what the tracks keep is copied). */
int ms_rtsp_cl_tracks_select(ms_rtsp_sess_t *s, const ms_sdp_t *sdp, char *err, size_t errlen);
void ms_rtsp_cl_tracks_free(ms_rtsp_sess_t *s);
int ms_rtsp_cl_udp_open(ms_rtsp_track_t *t);
void ms_rtsp_cl_udp_set_server(ms_rtsp_track_t *t, int rtp_port, int rtcp_port);
void ms_rtsp_cl_udp_punch(ms_rtsp_sess_t *s);
/* Stamps the packets of the read about to be parsed with the arrival time
 * (loop thread; call before ms_rtsp_cl_interleaved for each read). */
void ms_rtsp_cl_arrival(ms_rtsp_sess_t *s);
void ms_rtsp_cl_interleaved(ms_rtsp_sess_t *s, uint8_t ch, const uint8_t *data, size_t len);
void ms_rtsp_cl_hub_start(ms_rtsp_sess_t *s);
void ms_rtsp_cl_send_rr(ms_rtsp_sess_t *s);
void ms_rtsp_cl_stats_tick(ms_rtsp_client_t *c, int64_t now_ms);
void ms_rtsp_cl_count_bytes(ms_rtsp_client_t *c, size_t n);

/* client.c */
void ms_rtsp_cl_sess_handle_closed(ms_rtsp_sess_t *s);
int ms_rtsp_cl_send_raw(ms_rtsp_sess_t *s, const void *data, size_t len);
void ms_rtsp_cl_set_status(ms_rtsp_client_t *c, ms_stream_state_t st, ms_characteristic_t ch,
                           const char *reason);

#endif
