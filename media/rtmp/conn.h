/* One RTMP connection, server side, without I/O (Adobe RTMP 1.0): the
 * handshake (5.2), the chunk stream (5.3), protocol control (5.4), and the
 * NetConnection / NetStream commands of a publisher or a player (7.2):
 * connect, createStream, publish, play, deleteStream, closeStream;
 * releaseStream, FCPublish, FCUnpublish, getStreamLength are tolerated.
 *
 * The owner feeds the bytes it reads and sends what accumulates in
 * c->out. ms_rtmp_conn_feed() answers connect and createStream by itself
 * and stops at each event the owner must act on: a publish or play request
 * (answered with ms_rtmp_conn_publish_ok / _play_ok / _refuse), a media or
 * data message of the publisher, the end of publishing.
 *
 * Pure; the whole object may move between threads with its owner (no
 * handles inside), used by one thread at a time. */
#ifndef MS_MEDIA_RTMP_CONN_H
#define MS_MEDIA_RTMP_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "media/rtmp/chunk.h"
#include "media/rtmp/handshake.h"
#include "util/buf.h"

#define MS_RTMP_OUT_CHUNK 4096    /* our Set Chunk Size */
#define MS_RTMP_WINDOW    2500000 /* our Window Acknowledgement Size */

typedef enum {
    MS_RTMP_EV_NONE = 0,
    MS_RTMP_EV_PUBLISH,   /* app, name, query set; answer it */
    MS_RTMP_EV_PLAY,      /* idem */
    MS_RTMP_EV_MEDIA,     /* msg_type 8 (audio), 9 (video) or 18 (data): ts, data */
    MS_RTMP_EV_UNPUBLISH, /* deleteStream / closeStream / FCUnpublish */
} ms_rtmp_ev_type_t;

typedef struct {
    ms_rtmp_ev_type_t type;
    uint8_t msg_type;
    int64_t ts_ms;       /* extended beyond 32 bits across wraps */
    const uint8_t *data; /* borrowed until the next feed */
    size_t len;
} ms_rtmp_ev_t;

typedef struct {
    ms_rtmp_hs_t hs;
    ms_rtmp_chunk_rd_t rd;
    ms_buf_t out;         /* bytes to send (the owner sends and resets it) */
    int connected;        /* connect answered */
    uint32_t peer_window; /* the peer's Window Acknowledgement Size, 0 = none */
    uint64_t acked;       /* bytes_in at our last Acknowledgement */
    uint32_t stream_id;   /* the message stream createStream handed out (1) */
    double pending_txn;   /* the publish/play transaction */
    int pending;          /* a publish/play waits for an answer */
    int publishing, playing;
    uint32_t last_ts32;
    int64_t ts_hi; /* wraps of the 32-bit timestamp seen so far, times 2^32 */
    int have_ts;
    char app[128];
    char tc_url[512];
    char name[128];  /* stream name: the last path element of the publish/play name */
    char query[512]; /* the name's query (or tcUrl's when the name has none), without '?' */
    char flash_ver[64];
} ms_rtmp_conn_t;

/* max_msg: the largest message accepted (0 = MS_RTMP_DEF_MAX_MSG). */
void ms_rtmp_conn_init(ms_rtmp_conn_t *c, uint32_t max_msg);
void ms_rtmp_conn_free(ms_rtmp_conn_t *c);
/* Feeds bytes; *used gets what was consumed. Returns 1 with an event in *ev
 * (call again with the rest), 0 when everything was consumed, or a
 * negative errno (protocol error: close the connection after sending
 * c->out). A publish or play event leaves c->pending set: further bytes are
 * still accepted, the answer may come later. */
int ms_rtmp_conn_feed(ms_rtmp_conn_t *c, const uint8_t *data, size_t len, size_t *used,
                      ms_rtmp_ev_t *ev);
/* Answers the pending publish (NetStream.Publish.Start) or play
 * (StreamBegin, NetStream.Play.Reset/Start, |RtmpSampleAccess). */
void ms_rtmp_conn_publish_ok(ms_rtmp_conn_t *c);
void ms_rtmp_conn_play_ok(ms_rtmp_conn_t *c);
/* Refuses the pending request: onStatus level "error" with code (e.g.
 * "NetStream.Publish.BadName", "NetStream.Publish.Unauthorized",
 * "NetStream.Play.StreamNotFound") and description; the owner closes the
 * connection once c->out is sent. */
void ms_rtmp_conn_refuse(ms_rtmp_conn_t *c, const char *code, const char *description);
/* onStatus on the stream (level "status"), e.g. NetStream.Unpublish.Success
 * or NetStream.Play.UnpublishNotify. */
void ms_rtmp_conn_status(ms_rtmp_conn_t *c, const char *level, const char *code,
                         const char *description);
/* A media message to a player (csid 4 audio, 6 video, 5 data). */
void ms_rtmp_conn_send_media(ms_rtmp_conn_t *c, uint8_t msg_type, uint32_t ts_ms, const uint8_t *p,
                             size_t len);

/* Splits a publish/play name ("cam1?key=x", "a/b/cam1") into its last path
 * element and query. Returns 0 or -EINVAL (empty name, too long). Pure. */
int ms_rtmp_split_name(const char *in, char *name, size_t ncap, char *query, size_t qcap);

#endif
