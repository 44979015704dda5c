/* RTSP/1.0 messages (RFC 2326 sections 6, 7 and 10.12): an incremental
 * parser for requests and responses with interleaved binary frames in the
 * same byte stream, a request/response builder, and parsers for the
 * Transport (12.39), Session (12.37), RTP-Info (12.33) and Range (12.29)
 * headers.
 *
 * Pure code: no I/O, no loop. A parser is owned by one thread. */
#ifndef MS_MEDIA_RTSP_MSG_H
#define MS_MEDIA_RTSP_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define MS_RTSP_MAX_HEADER_BLOCK (64u * 1024u) /* start line + headers */
#define MS_RTSP_MAX_BODY         (1024u * 1024u)
#define MS_RTSP_MAX_HEADERS      64

typedef struct {
    const char *name;  /* as received (compare case-insensitively) */
    const char *value; /* trimmed; folded lines joined with one space */
} ms_rtsp_header_t;

/* One parsed message. Strings and body point into the parser's buffer and
 * stay valid until the next ms_rtsp_parser_feed()/next()/free() call. */
typedef struct {
    int is_request;
    /* request line (RFC 2326 6.1) */
    const char *method;
    const char *uri;
    /* status line (RFC 2326 7.1) */
    int status;
    const char *reason;
    int nheaders;
    ms_rtsp_header_t headers[MS_RTSP_MAX_HEADERS];
    const uint8_t *body;
    size_t body_len;
} ms_rtsp_msg_t;

typedef enum {
    MS_RTSP_EV_MESSAGE = 1,
    MS_RTSP_EV_INTERLEAVED = 2, /* "$" channel len16 data (RFC 2326 10.12) */
} ms_rtsp_event_type_t;

typedef struct {
    ms_rtsp_event_type_t type;
    ms_rtsp_msg_t msg;   /* MESSAGE */
    uint8_t channel;     /* INTERLEAVED */
    const uint8_t *data; /* INTERLEAVED payload, valid as msg's strings */
    size_t len;
} ms_rtsp_event_t;

typedef struct {
    uint8_t *buf;
    size_t len; /* bytes held */
    size_t off; /* bytes consumed by the last event (dropped on the next call) */
    size_t cap;
    size_t scanned; /* header bytes already searched for the blank line */
    int error;      /* sticky: once a stream is corrupt it stays corrupt */
} ms_rtsp_parser_t;

void ms_rtsp_parser_init(ms_rtsp_parser_t *p);
void ms_rtsp_parser_free(ms_rtsp_parser_t *p);
/* Appends received bytes (copied). Returns 0, -ENOMEM, or the sticky error. */
int ms_rtsp_parser_feed(ms_rtsp_parser_t *p, const void *data, size_t len);
/* Extracts the next complete event: returns 1 (ev filled), 0 (need more
 * bytes) or a negative errno: -EBADMSG (syntax), -EMSGSIZE (header block
 * over 64 KB, body over 1 MB, too many headers). Errors are sticky. */
int ms_rtsp_parser_next(ms_rtsp_parser_t *p, ms_rtsp_event_t *ev);

/* First header named name (case-insensitive), or NULL. Borrows m. */
const char *ms_rtsp_msg_header(const ms_rtsp_msg_t *m, const char *name);
/* CSeq as a number, or -1 when absent/invalid. */
long ms_rtsp_msg_cseq(const ms_rtsp_msg_t *m);

/* Request builder (RFC 2326 6). NULL fields are omitted. extra holds
 * additional header lines, each ending with "\r\n". */
typedef struct {
    const char *method;
    const char *uri;
    uint32_t cseq;
    const char *session;
    const char *user_agent;
    const char *authorization;
    const char *extra;
    const char *content_type;
    const void *body;
    size_t body_len;
} ms_rtsp_request_t;

/* Appends the request to out. Returns 0 or -EINVAL (CR/LF inside a field)
 * / -ENOMEM. */
int ms_rtsp_build_request(ms_buf_t *out, const ms_rtsp_request_t *r);
/* Appends a response (RFC 2326 7): status line, CSeq, optional Session and
 * extra header lines, Content-Length when body_len > 0. Returns 0 or -ENOMEM. */
int ms_rtsp_build_response(ms_buf_t *out, int status, const char *reason, long cseq,
                           const char *session, const char *extra, const char *content_type,
                           const void *body, size_t body_len);
/* Standard reason phrase for a status code (RFC 2326 7.1.1). */
const char *ms_rtsp_reason(int status);

/* Transport header, one transport-spec (RFC 2326 12.39). */
typedef struct {
    int tcp;       /* RTP/AVP/TCP */
    int multicast; /* "multicast" given (default unicast) */
    int has_interleaved, interleaved[2];
    int has_client_port, client_port[2];
    int has_server_port, server_port[2];
    int has_ssrc;
    uint32_t ssrc;
    int ttl; /* -1 when absent */
    char destination[64];
    char source[64];
    char mode[16]; /* "PLAY", "RECORD" or "" */
} ms_rtsp_transport_t;

/* Parses the index-th (0-based) comma-separated transport-spec of value.
 * Returns 0, -ENOENT (no such spec) or -EINVAL (not RTP/AVP or bad values). */
int ms_rtsp_transport_parse(const char *value, int index, ms_rtsp_transport_t *t);
/* Formats t as a header value. Returns the length or -ENAMETOOLONG. */
int ms_rtsp_transport_format(const ms_rtsp_transport_t *t, char *out, size_t cap);

/* Session header (RFC 2326 12.37): id and ";timeout=" seconds (60 when
 * absent). Returns 0 or -EINVAL. */
int ms_rtsp_session_parse(const char *value, char *id, size_t idcap, int *timeout_s);

/* RTP-Info (RFC 2326 12.33). */
typedef struct {
    char url[512];
    int has_seq, has_rtptime;
    uint16_t seq;
    uint32_t rtptime;
} ms_rtsp_rtpinfo_t;

/* Parses up to max entries; returns the count or -EINVAL. */
int ms_rtsp_rtpinfo_parse(const char *value, ms_rtsp_rtpinfo_t *out, int max);

/* Range (RFC 2326 12.29, 3.6 npt, 3.7 clock). */
typedef enum { MS_RANGE_NPT = 1, MS_RANGE_CLOCK = 2 } ms_rtsp_range_kind_t;
typedef struct {
    ms_rtsp_range_kind_t kind;
    int start_now; /* npt=now- */
    int has_start, has_end;
    double start_s, end_s;    /* NPT seconds */
    int64_t start_us, end_us; /* clock: UTC microseconds since the epoch */
} ms_rtsp_range_t;

/* Returns 0 or -EINVAL (also for smpte, not supported). */
int ms_rtsp_range_parse(const char *value, ms_rtsp_range_t *r);

#endif
