/* Internals of the RTSP server (media/rtsp/server.h); not for use outside
 * media/rtsp/server*.c.
 *
 * Objects and their threads:
 *  - ms_rtsp_server_t: created by the control thread; its accept loop runs
 *    on its own thread; the outs list and counters are guarded by mu.
 *  - srv_out_t: one per (server, stream) on the stream's loop: a hub reader,
 *    one packetizer per track, the GOP cache of packet blobs, UDP sockets,
 *    a 1 s timer (timeouts, slow clients, RTCP SR), the list of conns.
 *  - srv_conn_t: one per TCP connection, on its out's loop; holds at most
 *    one session. */
#ifndef MS_MEDIA_RTSP_SERVER_INT_H
#define MS_MEDIA_RTSP_SERVER_INT_H

#include <pthread.h>
#include <stdint.h>

#include <uv.h>

#include "media/rtp/packetize.h"
#include "media/rtsp/msg.h"
#include "media/rtsp/server.h"
#include "util/blob.h"
#include "util/buf.h"
#include "util/connlimit.h"
#include "util/log.h"

#define SRV_QUEUE_CAP       512          /* frames (packet blobs) queued per TCP session */
#define SRV_QUEUE_BYTES     (4u << 20)   /* and their bytes, beyond the GOP sent at PLAY */
#define SRV_WRITE_HIGH      (256u << 10) /* bytes handed to libuv per session */
#define SRV_SNDBUF          (256 << 10)  /* SO_SNDBUF of a session socket */
#define SRV_OVERFLOW_LIMIT  3            /* overflows within SRV_OVERFLOW_WIN_MS... */
#define SRV_OVERFLOW_WIN_MS 10000        /* ...close the session */
#define SRV_STALL_MS        10000        /* no write progress for this long: close */
#define SRV_GOP_MAX         65536        /* frames in the GOP cache (bytes: the hub's limit) */
#define SRV_SR_INTERVAL     5            /* timer ticks (s) between RTCP SRs */

/* One frame's packets: a blob of RFC 2326 10.12 records. */
typedef struct {
    ms_blob_t *blob;
    uint8_t track;
    uint8_t vkey; /* video keyframe */
} srv_pkt_t;

typedef struct srv_out srv_out_t;
typedef struct srv_conn srv_conn_t;

typedef struct srv_arch srv_arch_t;

typedef enum { SESS_NONE = 0, SESS_READY, SESS_PLAYING } srv_sess_state_t;

struct srv_conn {
    uv_tcp_t tcp;
    srv_out_t *out; /* NULL once closing */
    srv_conn_t *next;
    ms_rtsp_server_t *srv;
    ms_rtsp_parser_t parser;
    struct sockaddr_storage peer;
    char peer_str[64];
    char ctx[384];
    int closing;
    int authorized;        /* a decision allowed auth_query on this connection */
    char auth_query[1024]; /* the query of the last allowed request */
    ms_rtsp_grant_t grant; /* what that decision allows (window, expiry) */
    int64_t last_activity_ms;

    /* session (at most one per connection) */
    srv_sess_state_t state;
    char session[24];
    int tcp_transport; /* 1 interleaved, 0 UDP */
    int setup[MS_MAX_TRACKS];
    uint8_t ch_rtp[MS_MAX_TRACKS], ch_rtcp[MS_MAX_TRACKS];
    struct sockaddr_storage udp_rtp[MS_MAX_TRACKS], udp_rtcp[MS_MAX_TRACKS];
    char control[MS_MAX_TRACKS][2200]; /* control URLs handed out in DESCRIBE */
    int counted_client;
    /* this connection's address is counted in srv->conns (listen.conns_per_ip)
     * from its accept to its close, not only while it is being accepted */
    int ip_counted;
    ms_ip_t ip;
    int was_played; /* a later PLAY resumes at the next keyframe */

    /* TCP send queue: a ring of ring_cap slots (a power of two, grown on
     * demand) holding at most SRV_QUEUE_CAP + q_gop_frames frames and
     * SRV_QUEUE_BYTES + q_gop_bytes bytes; q_gop_* are the GOP cache sent at
     * PLAY (the same blobs as the cache's, shared, not copied), so that a
     * long GOP (a 10 s GOP with audio is ~750 frames) starts a viewer whole */
    srv_pkt_t *ring;
    uint32_t ring_cap, head, count;
    size_t queued_bytes;
    uint32_t q_gop_frames;
    size_t q_gop_bytes;
    int wait_key;
    uint64_t dropped;
    int64_t overflow_ms[SRV_OVERFLOW_LIMIT];
    uint32_t overflows;
    int64_t last_progress_ms;
    uint64_t udp_dropped;

    srv_arch_t *arch; /* archive session (?from=), NULL for live */
    int arch_pending; /* request waiting for the archive work: 1 DESCRIBE, 2 PLAY */
    long arch_cseq;
    char arch_base[2048]; /* DESCRIBE: Content-Base */
    int input_paused;     /* requests wait in the parser until the work ends */

    uint64_t id;         /* unique in the process (ms_rtsp_server_kick) */
    void *sess;          /* cfg.session_open's handle, or NULL */
    uint64_t bytes_sent; /* handed to the socket (TCP) or sent (UDP) */
};

/* The UDP sockets (RTP, RTCP) of an output track; loop thread only. */
typedef enum {
    SRV_UDP_NONE = 0, /* not bound */
    SRV_UDP_BOUND,    /* both bound, RTCP receiving */
    SRV_UDP_CLOSING,  /* uv_close asked for both */
} srv_udp_state_t;

typedef struct {
    int active; /* packetizer initialised for this track */
    ms_codec_params_t params;
    ms_rtp_packetizer_t pk;
    int pt;
    int64_t last_wall_us; /* wallclock of the last frame sent (RTCP SR) */
    uint32_t last_ts;
    int has_last;
    uv_udp_t rtp, rtcp;
    srv_udp_state_t udp_state;
    int udp_port; /* RTP port; RTCP = +1 */
} srv_track_t;

struct srv_out {
    ms_rtsp_server_t *srv;
    srv_out_t *next; /* srv->outs, under srv->mu */
    ms_rtsp_stream_t st;
    char ctx[256];
    ms_reader_t *reader;
    int ntracks;
    int has_video;
    srv_track_t tracks[MS_MAX_TRACKS];
    srv_pkt_t *gop; /* from the last video keyframe on, gop_cap slots */
    uint32_t gop_len, gop_cap;
    size_t gop_bytes;
    ms_buf_t scratch;
    srv_conn_t *conns;
    int nconns;
    uv_timer_t timer;
    uint32_t ticks;
    int closing;
    int pending_closes; /* handles still closing */
};

struct ms_rtsp_server {
    ms_rtsp_server_cfg_t cfg;
    char address[64];
    char ctx[128];
    int port;
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_async_t wake;
    uv_thread_t thread;
    int thread_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    srv_out_t *outs;
    int nouts;
    int pending; /* hand-offs posted but not yet run */
    int stopping;
    int accept_conns;
    ms_connlimit_t *conns; /* accept-phase connections per address, or NULL */
    ms_ratelimit_t rl_limit;
    uint16_t next_udp_port;
};

/* server_out.c (stream loop) */
/* Adopts a connection socket on the stream loop (takes fd, the stream
 * reference and the initial bytes). counted: the address counted in
 * srv->conns for this connection (ownership of that count moves here: it is
 * released when the connection closes), or NULL. */
void ms_rtsp_srv_adopt(ms_rtsp_server_t *srv, ms_rtsp_stream_t *st, int fd, const uint8_t *data,
                       size_t len, const ms_ip_t *counted);
/* Closes every conn of every out on this loop belonging to srv whose exec
 * matches (posted at stop). */
void ms_rtsp_srv_out_shutdown(srv_out_t *o);
void ms_rtsp_srv_out_detach(srv_out_t *o, srv_conn_t *c);
int ms_rtsp_srv_out_prepare(srv_out_t *o); /* tracks ready: 0 or -EAGAIN */
void ms_rtsp_srv_out_play(srv_out_t *o, srv_conn_t *c, int resume, char *rtpinfo, size_t cap);
/* Queues the GOP cache (new PLAY) or waits for the next keyframe (resume
 * after PAUSE). Call right after the PLAY response was queued. */
void ms_rtsp_srv_out_start(srv_out_t *o, srv_conn_t *c, int resume);
int ms_rtsp_srv_out_udp(srv_out_t *o, int track); /* binds the pair; port or negative */

/* server_arch.c (stream loop): archive replay of one connection. The
 * reader works on the libuv threadpool (never on the loop); frames are
 * paced by their wall time with a timer and packetized per session. */
#define ARCH_QCAP 512 /* frames read ahead */
#define ARCH_FILL 96  /* frames per threadpool read */

struct srv_arch {
    srv_conn_t *c; /* NULL once the connection closed (the arch frees itself) */
    ms_rtsp_server_t *srv;
    uv_loop_t *loop;
    char uid[64];
    void *h;          /* archive handle */
    void *old_h;      /* handle to close on the threadpool (seek) */
    int64_t at_ms;    /* asked time of the pending open */
    int64_t start_ms; /* wall time of the first frame of the open */
    int opened;
    int ntracks;
    ms_codec_params_t params[MS_MAX_TRACKS];
    ms_rtp_packetizer_t pk[MS_MAX_TRACKS];
    int pk_ok[MS_MAX_TRACKS];
    int pt[MS_MAX_TRACKS];
    int64_t last_wall_us[MS_MAX_TRACKS];
    int has_last[MS_MAX_TRACKS];
    uv_work_t work;
    int inflight; /* 0 none, 1 open, 2 fill */
    int work_rc;
    ms_frame_t *wq[ARCH_FILL];
    int wn;
    ms_frame_t *q[ARCH_QCAP];
    uint32_t qh, qn;
    int at_end;            /* the last read found nothing more */
    int64_t retry_mono_ms; /* next read after at_end */
    int playing;
    int64_t base_wall_us, base_mono_us; /* pacing anchor */
    int64_t last_sr_ms;
    int64_t end_ms; /* the grant's window end: playback stops there (BYE) */
    int ended;      /* BYE sent at end_ms: nothing more is sent */
    uv_timer_t timer;
    int timer_on;
    int freeing;
    ms_buf_t scratch;
};

srv_arch_t *ms_rtsp_srv_arch_new(srv_conn_t *c, const char *uid);
/* Opens (or re-opens: seek) at at_ms on the threadpool; when done,
 * ms_rtsp_srv_conn_arch_done(c, rc) runs on the loop. 0 or -EBUSY. */
int ms_rtsp_srv_arch_open(srv_arch_t *a, int64_t at_ms);
/* RTP-Info for PLAY (tracks set up in c); then _start after the reply. */
void ms_rtsp_srv_arch_rtpinfo(srv_arch_t *a, char *out, size_t cap);
void ms_rtsp_srv_arch_start(srv_arch_t *a);
void ms_rtsp_srv_arch_pause(srv_arch_t *a);
/* The connection closes: frees a now or when its work ends. */
void ms_rtsp_srv_arch_detach(srv_arch_t *a);
void ms_rtsp_srv_conn_arch_done(srv_conn_t *c, int rc);
/* Queues p on c's TCP queue whatever its mode (live enqueue skips archive
 * sessions). */
void ms_rtsp_srv_conn_queue(srv_conn_t *c, const srv_pkt_t *p);

/* server_conn.c (stream loop) */
srv_conn_t *ms_rtsp_srv_conn_new(srv_out_t *o, int fd);
void ms_rtsp_srv_conn_input(srv_conn_t *c, const uint8_t *data, size_t len);
void ms_rtsp_srv_conn_close(srv_conn_t *c, const char *why);
void ms_rtsp_srv_conn_enqueue(srv_conn_t *c, const srv_pkt_t *p);
void ms_rtsp_srv_conn_tick(srv_conn_t *c, int64_t now_ms);
void ms_rtsp_srv_conn_send_raw(srv_conn_t *c, const void *data, size_t len);
void ms_rtsp_srv_conn_end_session(srv_conn_t *c);
/* Stream loop: the conn of this loop's outs (exec) with that id, or NULL. */
srv_conn_t *ms_rtsp_srv_conn_find(ms_rtsp_server_t *srv, void *exec, uint64_t id);

#endif
