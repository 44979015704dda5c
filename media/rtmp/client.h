/* One RTMP connection, client (publisher) side, without I/O (Adobe RTMP
 * 1.0): the simple handshake (5.2.2-5.2.4: C0 C1, then C2 = echo of S1),
 * the chunk stream (5.3), protocol control (5.4), and the commands of a
 * publisher (7.2.1.1 connect, 7.2.1.3 createStream, 7.2.2.6 publish; the
 * releaseStream / FCPublish calls that FMLE, OBS and ffmpeg send before
 * createStream, which nginx-rtmp and SRS expect), then media messages.
 *
 * The owner sends what accumulates in c->out (C0+C1 right after init) and
 * feeds what it reads; ms_rtmp_client_feed() answers by itself until the
 * server's onStatus NetStream.Publish.Start (state PUBLISHING), or fails
 * with the server's reason in c->error (a _error result, an onStatus of
 * level "error", a protocol error).
 *
 * Pure; one object per connection, used by one thread at a time. */
#ifndef MS_MEDIA_RTMP_CLIENT_H
#define MS_MEDIA_RTMP_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "media/rtmp/chunk.h"
#include "media/rtmp/handshake.h"
#include "util/buf.h"

typedef enum {
    MS_RTMPC_HANDSHAKE = 0, /* C0 C1 sent, waiting for S0 S1 S2 */
    MS_RTMPC_CONNECT,       /* C2 + connect sent */
    MS_RTMPC_CREATE,        /* releaseStream, FCPublish, createStream sent */
    MS_RTMPC_PUBLISH,       /* publish sent */
    MS_RTMPC_PUBLISHING,    /* NetStream.Publish.Start received: media may flow */
    MS_RTMPC_FAILED,        /* c->error says why; close the connection */
} ms_rtmpc_state_t;

typedef struct {
    ms_rtmpc_state_t state;
    ms_rtmp_chunk_rd_t rd;
    ms_buf_t out;   /* bytes to send (the owner sends and resets it) */
    size_t hs_have; /* bytes of S0 S1 S2 read */
    uint8_t s1[MS_RTMP_HS_SIZE];
    uint32_t peer_window; /* the server's Window Acknowledgement Size, 0 = none */
    uint64_t acked;       /* rd.bytes_in at our last Acknowledgement */
    uint32_t stream_id;   /* from the createStream result */
    char app[128];
    char tc_url[512];
    char name[256]; /* the publish name (may carry "?query") */
    char error[256];
} ms_rtmp_client_t;

/* Parts of rtmp://host[:port]/app[/more]/name[?query] (the stream name is
 * the last path element with the query; the app is everything between
 * host and name, as ffmpeg splits it). port defaults to 1935; an IPv6 host
 * is written [addr]. Returns 0 or -EINVAL (not rtmp://, no app or name,
 * a part too long, bad port). Pure, any thread. */
typedef struct {
    char host[256];
    int port;
    char app[128];
    char name[256];
    char tc_url[512]; /* rtmp://host:port/app */
} ms_rtmp_url_t;
int ms_rtmp_url_parse(const char *url, ms_rtmp_url_t *out);

/* Starts a publish of name to app (tc_url: the tcUrl property of
 * connect): C0 + C1 are put in c->out. Free with ms_rtmp_client_free. */
void ms_rtmp_client_init(ms_rtmp_client_t *c, const char *app, const char *tc_url,
                         const char *name);
void ms_rtmp_client_free(ms_rtmp_client_t *c);
/* Feeds all of data. Returns 0 (state may have advanced; send c->out) or
 * a negative errno with state FAILED and c->error set: -EPROTO (protocol
 * error), -ECONNREFUSED (the server refused connect or publish), -EMSGSIZE,
 * -ENOMEM. A FAILED client must not be fed again. */
int ms_rtmp_client_feed(ms_rtmp_client_t *c, const uint8_t *data, size_t len);
/* A media message on the published stream (msg_type 8 audio, 9 video, 18
 * data), ts in ms. State PUBLISHING only (asserted). */
void ms_rtmp_client_send_media(ms_rtmp_client_t *c, uint8_t msg_type, uint32_t ts_ms,
                               const uint8_t *p, size_t len);

#endif
