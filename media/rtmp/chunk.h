/* RTMP chunk stream (Adobe RTMP 1.0 section 5.3) and protocol control
 * messages (5.4). Pure; one reader per connection, its owner's thread.
 *
 * Reader: fed raw bytes after the handshake, returns whole messages. Basic
 * header (5.3.1.1: 1-3 bytes, chunk stream ids 2..65599), message header
 * types 0-3 (5.3.1.2), extended timestamp (5.3.1.3; also present in type 3
 * chunks after a header that used it, as librtmp and ffmpeg write it), Set
 * Chunk Size (5.4.1) and Abort (5.4.2) are applied inside the reader.
 * Bounds: at most MS_RTMP_MAX_CSIDS chunk streams with state, a message of
 * at most max_msg bytes, and at most 2 x max_msg bytes of partial messages
 * held at once; beyond that the reader fails (-EMSGSIZE), so the caller
 * closes the connection.
 *
 * Writer: stateless; a message is written as a type 0 chunk followed by
 * type 3 continuation chunks (5.3.1.2.1, 5.3.1.2.4). */
#ifndef MS_MEDIA_RTMP_CHUNK_H
#define MS_MEDIA_RTMP_CHUNK_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* Message type ids (5.4, 7.1). */
enum {
    MS_RTMP_SET_CHUNK_SIZE = 1,
    MS_RTMP_ABORT = 2,
    MS_RTMP_ACK = 3,
    MS_RTMP_USER_CONTROL = 4,
    MS_RTMP_WINDOW_ACK_SIZE = 5,
    MS_RTMP_SET_PEER_BW = 6,
    MS_RTMP_AUDIO = 8,
    MS_RTMP_VIDEO = 9,
    MS_RTMP_DATA_AMF3 = 15,
    MS_RTMP_COMMAND_AMF3 = 17,
    MS_RTMP_DATA_AMF0 = 18,
    MS_RTMP_COMMAND_AMF0 = 20,
    MS_RTMP_AGGREGATE = 22,
};

#define MS_RTMP_MAX_CSIDS   32
#define MS_RTMP_DEF_CHUNK   128
#define MS_RTMP_MAX_CHUNK   (1u << 24) /* larger Set Chunk Size values are refused */
#define MS_RTMP_DEF_MAX_MSG (8u << 20)

typedef struct {
    uint32_t csid;
    uint8_t type;
    uint32_t stream_id;
    uint32_t timestamp;  /* absolute, 32 bits (wraps) */
    const uint8_t *data; /* borrowed until the next feed */
    size_t len;
} ms_rtmp_msg_t;

typedef struct {
    uint32_t csid;
    uint32_t ts;       /* of the last message */
    uint32_t ts_field; /* last timestamp / delta field (extended value when ext) */
    int ext;           /* the last type 0-2 header used the extended timestamp */
    uint32_t len;      /* message length */
    uint8_t type;
    uint32_t sid;
    int inuse;
    int partial; /* a message is being assembled */
    ms_buf_t payload;
} ms_rtmp_cs_t;

typedef struct {
    uint32_t chunk_size; /* incoming, set by the peer (5.4.1) */
    uint32_t max_msg;
    uint64_t bytes_in; /* every byte fed (for Acknowledgement, 5.4.3) */
    size_t held;       /* bytes held in partial messages */
    uint8_t hdr[18];
    size_t hdr_have;
    ms_rtmp_cs_t *cur; /* chunk whose payload is being read, NULL = in a header */
    uint32_t cur_left; /* payload bytes of the current chunk still to read */
    ms_rtmp_cs_t cs[MS_RTMP_MAX_CSIDS];
} ms_rtmp_chunk_rd_t;

/* max_msg 0 = MS_RTMP_DEF_MAX_MSG. */
void ms_rtmp_chunk_rd_init(ms_rtmp_chunk_rd_t *rd, uint32_t max_msg);
void ms_rtmp_chunk_rd_free(ms_rtmp_chunk_rd_t *rd);
/* Consumes bytes of data until a message completes or data ends; *used
 * gets the bytes consumed. Returns 1 (a message in *msg, valid until the
 * next call), 0 (all consumed, no message), -EPROTO (bad header: a type
 * 1-3 chunk without a previous header, Set Chunk Size 0 or too large, too
 * many chunk streams) or -EMSGSIZE (over the bounds) or -ENOMEM. After an
 * error the reader must not be fed again. */
int ms_rtmp_chunk_read(ms_rtmp_chunk_rd_t *rd, const uint8_t *data, size_t len, size_t *used,
                       ms_rtmp_msg_t *msg);

/* Appends one message as chunks of chunk_size bytes. */
void ms_rtmp_chunk_write(ms_buf_t *out, uint32_t chunk_size, uint32_t csid, uint8_t type,
                         uint32_t stream_id, uint32_t timestamp, const uint8_t *p, size_t len);

/* Protocol control messages (5.4) and User Control events (6.2, 7.1.7), on
 * chunk stream 2, message stream 0. */
void ms_rtmp_put_set_chunk_size(ms_buf_t *out, uint32_t size);
void ms_rtmp_put_ack(ms_buf_t *out, uint32_t seq);
void ms_rtmp_put_window_ack_size(ms_buf_t *out, uint32_t size);
void ms_rtmp_put_set_peer_bw(ms_buf_t *out, uint32_t size, uint8_t limit_type);
/* event: 0 Stream Begin, 1 Stream EOF, 6 PingRequest, 7 PingResponse;
 * value: the stream id or the ping timestamp. */
void ms_rtmp_put_user_control(ms_buf_t *out, uint16_t event, uint32_t value);

/* What both ends of a connection do with what they read, into out:
 * - ms_rtmp_ack_due: after a chunk read, an Acknowledgement (5.4.3) once
 *   the peer's window is reached since the last one (*acked: bytes_in at the
 *   last Acknowledgement; peer_window 0: none asked);
 * - ms_rtmp_peer_control: a Window Acknowledgement Size (5.4.4) sets
 *   *peer_window, a User Control PingRequest (7.1.7) is answered with a
 *   PingResponse; returns 1 when m was a Window Acknowledgement Size or a
 *   User Control message (consumed), else 0.
 * The connection's thread. */
void ms_rtmp_ack_due(ms_buf_t *out, uint64_t bytes_in, uint64_t *acked, uint32_t peer_window);
int ms_rtmp_peer_control(ms_buf_t *out, const ms_rtmp_msg_t *m, uint32_t *peer_window);

#endif
