/* RTMP server connection state machine (media/rtmp/conn.h). Command
 * names, arguments and answers: Adobe RTMP 1.0 section 7.2.1 (connect,
 * createStream, _result) and 7.2.2 (play, publish, deleteStream, onStatus). */
#include "media/rtmp/conn.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "media/rtmp/amf0.h"

#define CSID_CMD   3
#define CSID_AUDIO 4
#define CSID_DATA  5
#define CSID_VIDEO 6

void ms_rtmp_conn_init(ms_rtmp_conn_t *c, uint32_t max_msg)
{
    memset(c, 0, sizeof *c);
    ms_rtmp_hs_init(&c->hs);
    ms_rtmp_chunk_rd_init(&c->rd, max_msg);
}

void ms_rtmp_conn_free(ms_rtmp_conn_t *c)
{
    ms_rtmp_chunk_rd_free(&c->rd);
    ms_buf_free(&c->out);
}

int ms_rtmp_split_name(const char *in, char *name, size_t ncap, char *query, size_t qcap)
{
    name[0] = '\0';
    query[0] = '\0';
    const char *q = strchr(in, '?');
    size_t plen = q ? (size_t)(q - in) : strlen(in);
    const char *last = in;
    for (size_t i = 0; i < plen; i++)
        if (in[i] == '/')
            last = in + i + 1;
    size_t nlen = plen - (size_t)(last - in);
    if (nlen == 0)
        return -EINVAL;
    if (nlen >= ncap || (q && strlen(q + 1) >= qcap))
        return -EINVAL;
    memcpy(name, last, nlen);
    name[nlen] = '\0';
    if (q)
        snprintf(query, qcap, "%s", q + 1);
    return 0;
}

/* Writes an AMF0 command message (type 20) from the body in b. */
static void send_cmd(ms_rtmp_conn_t *c, uint32_t sid, const ms_buf_t *b)
{
    if (b->err) {
        c->out.err = 1;
        return;
    }
    ms_rtmp_chunk_write(&c->out, MS_RTMP_OUT_CHUNK, CSID_CMD, MS_RTMP_COMMAND_AMF0, sid, 0, b->data,
                        b->len);
}

static void status_obj(ms_buf_t *b, const char *level, const char *code, const char *desc)
{
    ms_amf0_put_object_start(b);
    ms_amf0_put_key(b, "level");
    ms_amf0_put_string(b, level);
    ms_amf0_put_key(b, "code");
    ms_amf0_put_string(b, code);
    ms_amf0_put_key(b, "description");
    ms_amf0_put_string(b, desc);
    ms_amf0_put_object_end(b);
}

void ms_rtmp_conn_status(ms_rtmp_conn_t *c, const char *level, const char *code,
                         const char *description)
{
    ms_buf_t b = MS_BUF_INIT;
    ms_amf0_put_string(&b, "onStatus");
    ms_amf0_put_number(&b, 0);
    ms_amf0_put_null(&b);
    status_obj(&b, level, code, description);
    send_cmd(c, c->stream_id ? c->stream_id : 1, &b);
    ms_buf_free(&b);
}

static void on_connect(ms_rtmp_conn_t *c, double txn, const ms_amf0_val_t *obj)
{
    if (obj->type == MS_AMF0_OBJECT || obj->type == MS_AMF0_ECMA_ARRAY) {
        ms_amf0_prop_str(obj, "app", c->app, sizeof c->app);
        ms_amf0_prop_str(obj, "tcUrl", c->tc_url, sizeof c->tc_url);
        ms_amf0_prop_str(obj, "flashVer", c->flash_ver, sizeof c->flash_ver);
    }
    /* 7.2.1.1: Window Acknowledgement Size, Set Peer Bandwidth, then _result */
    ms_rtmp_put_window_ack_size(&c->out, MS_RTMP_WINDOW);
    ms_rtmp_put_set_peer_bw(&c->out, MS_RTMP_WINDOW, 2);
    ms_rtmp_put_set_chunk_size(&c->out, MS_RTMP_OUT_CHUNK);
    ms_buf_t b = MS_BUF_INIT;
    ms_amf0_put_string(&b, "_result");
    ms_amf0_put_number(&b, txn);
    ms_amf0_put_object_start(&b);
    ms_amf0_put_key(&b, "fmsVer");
    ms_amf0_put_string(&b, "FMS/3,0,1,123");
    ms_amf0_put_key(&b, "capabilities");
    ms_amf0_put_number(&b, 31);
    ms_amf0_put_object_end(&b);
    ms_amf0_put_object_start(&b);
    ms_amf0_put_key(&b, "level");
    ms_amf0_put_string(&b, "status");
    ms_amf0_put_key(&b, "code");
    ms_amf0_put_string(&b, "NetConnection.Connect.Success");
    ms_amf0_put_key(&b, "description");
    ms_amf0_put_string(&b, "Connection succeeded.");
    ms_amf0_put_key(&b, "objectEncoding");
    ms_amf0_put_number(&b, 0);
    ms_amf0_put_object_end(&b);
    send_cmd(c, 0, &b);
    ms_buf_free(&b);
    c->connected = 1;
}

static void result_simple(ms_rtmp_conn_t *c, double txn, int with_number, double num)
{
    ms_buf_t b = MS_BUF_INIT;
    ms_amf0_put_string(&b, "_result");
    ms_amf0_put_number(&b, txn);
    ms_amf0_put_null(&b);
    if (with_number)
        ms_amf0_put_number(&b, num);
    else
        ms_buf_u8(&b, MS_AMF0_UNDEFINED);
    send_cmd(c, 0, &b);
    ms_buf_free(&b);
}

/* One command message. Returns 1 with an event, 0, or -EPROTO. */
static int on_command(ms_rtmp_conn_t *c, const uint8_t *p, size_t n, ms_rtmp_ev_t *ev)
{
    size_t off = 0;
    ms_amf0_val_t v_name, v_txn, v_obj, v_arg;
    char cmd[64];
    if (ms_amf0_next(p, n, &off, &v_name) != 1 || ms_amf0_str(&v_name, cmd, sizeof cmd) < 0)
        return -EPROTO;
    double txn = 0;
    if (ms_amf0_next(p, n, &off, &v_txn) == 1 && v_txn.type == MS_AMF0_NUMBER)
        txn = v_txn.num;
    if (ms_amf0_next(p, n, &off, &v_obj) != 1)
        v_obj.type = MS_AMF0_NULL;

    if (strcmp(cmd, "connect") == 0) {
        if (c->connected)
            return -EPROTO;
        on_connect(c, txn, &v_obj);
        return 0;
    }
    if (!c->connected)
        return -EPROTO; /* 7.2.1.1: connect comes first */
    if (strcmp(cmd, "createStream") == 0) {
        if (c->stream_id)
            return -EPROTO; /* one stream per connection */
        c->stream_id = 1;
        result_simple(c, txn, 1, 1);
        return 0;
    }
    if (strcmp(cmd, "releaseStream") == 0 || strcmp(cmd, "FCPublish") == 0) {
        result_simple(c, txn, 0, 0);
        return 0;
    }
    int pub = strcmp(cmd, "publish") == 0;
    if (pub || strcmp(cmd, "play") == 0) {
        if (c->pending || c->publishing || c->playing || !c->stream_id)
            return -EPROTO;
        char full[512];
        if (ms_amf0_next(p, n, &off, &v_arg) != 1 || ms_amf0_str(&v_arg, full, sizeof full) < 0 ||
            ms_rtmp_split_name(full, c->name, sizeof c->name, c->query, sizeof c->query) < 0) {
            c->pending = 1;
            c->pending_txn = txn;
            ms_rtmp_conn_refuse(c,
                                pub ? "NetStream.Publish.BadName" : "NetStream.Play.StreamNotFound",
                                "bad stream name");
            return -EINVAL;
        }
        /* the key may also come with the app or the tcUrl (?key=...) */
        if (!c->query[0]) {
            const char *q = strchr(c->app, '?');
            if (!q)
                q = strchr(c->tc_url, '?');
            if (q)
                snprintf(c->query, sizeof c->query, "%s", q + 1);
        }
        c->pending = 1;
        c->pending_txn = txn;
        ev->type = pub ? MS_RTMP_EV_PUBLISH : MS_RTMP_EV_PLAY;
        return 1;
    }
    if (strcmp(cmd, "deleteStream") == 0 || strcmp(cmd, "closeStream") == 0 ||
        strcmp(cmd, "FCUnpublish") == 0) {
        if (c->publishing) {
            c->publishing = 0;
            ev->type = MS_RTMP_EV_UNPUBLISH;
            return 1;
        }
        return 0;
    }
    return 0; /* getStreamLength, _checkbw, ...: no answer needed */
}

static int64_t extend_ts(ms_rtmp_conn_t *c, uint32_t ts)
{
    if (c->have_ts && ts < c->last_ts32 && c->last_ts32 - ts > 0x80000000u)
        c->ts_hi += (int64_t)1 << 32;
    else if (c->have_ts && ts > c->last_ts32 && ts - c->last_ts32 > 0x80000000u && c->ts_hi > 0)
        return c->ts_hi - ((int64_t)1 << 32) + ts; /* a late one from before the wrap */
    c->have_ts = 1;
    c->last_ts32 = ts;
    return c->ts_hi + ts;
}

static int on_message(ms_rtmp_conn_t *c, const ms_rtmp_msg_t *m, ms_rtmp_ev_t *ev)
{
    if (ms_rtmp_peer_control(&c->out, m, &c->peer_window))
        return 0;
    switch (m->type) {
    case MS_RTMP_COMMAND_AMF3:
        /* AMF3 command: a 0 format byte, then AMF0 values (7.1.1) */
        if (m->len < 1)
            return -EPROTO;
        return on_command(c, m->data + 1, m->len - 1, ev);
    case MS_RTMP_COMMAND_AMF0:
        return on_command(c, m->data, m->len, ev);
    case MS_RTMP_AUDIO:
    case MS_RTMP_VIDEO:
    case MS_RTMP_DATA_AMF0:
        if (!c->publishing)
            return 0;
        ev->type = MS_RTMP_EV_MEDIA;
        ev->msg_type = m->type;
        ev->ts_ms = extend_ts(c, m->timestamp);
        ev->data = m->data;
        ev->len = m->len;
        return 1;
    default: /* Ack, Set Peer Bandwidth, aggregate, AMF3 data: ignored */
        return 0;
    }
}

int ms_rtmp_conn_feed(ms_rtmp_conn_t *c, const uint8_t *data, size_t len, size_t *used,
                      ms_rtmp_ev_t *ev)
{
    size_t u = 0;
    memset(ev, 0, sizeof *ev);
    if (c->hs.state != MS_RTMP_HS_DONE) {
        ssize_t r = ms_rtmp_hs_feed(&c->hs, data, len, &c->out);
        if (r < 0) {
            *used = 0;
            return (int)r;
        }
        u = (size_t)r;
    }
    while (u < len) {
        size_t n = 0;
        ms_rtmp_msg_t m;
        int r = ms_rtmp_chunk_read(&c->rd, data + u, len - u, &n, &m);
        u += n;
        if (r < 0) {
            *used = u;
            return r;
        }
        ms_rtmp_ack_due(&c->out, c->rd.bytes_in, &c->acked, c->peer_window);
        if (r == 0)
            break;
        r = on_message(c, &m, ev);
        if (r != 0) {
            *used = u;
            return r;
        }
    }
    *used = u;
    return c->out.err ? -ENOMEM : 0;
}

static void stream_begin(ms_rtmp_conn_t *c)
{
    ms_rtmp_put_user_control(&c->out, 0, c->stream_id); /* 7.1.7 Stream Begin */
}

void ms_rtmp_conn_publish_ok(ms_rtmp_conn_t *c)
{
    c->pending = 0;
    c->publishing = 1;
    stream_begin(c);
    ms_rtmp_conn_status(c, "status", "NetStream.Publish.Start", "Start publishing");
}

void ms_rtmp_conn_play_ok(ms_rtmp_conn_t *c)
{
    c->pending = 0;
    c->playing = 1;
    stream_begin(c);
    ms_rtmp_conn_status(c, "status", "NetStream.Play.Reset", "Playing and resetting");
    ms_rtmp_conn_status(c, "status", "NetStream.Play.Start", "Started playing");
    ms_buf_t b = MS_BUF_INIT;
    ms_amf0_put_string(&b, "|RtmpSampleAccess");
    ms_amf0_put_bool(&b, 1);
    ms_amf0_put_bool(&b, 1);
    if (!b.err)
        ms_rtmp_chunk_write(&c->out, MS_RTMP_OUT_CHUNK, CSID_DATA, MS_RTMP_DATA_AMF0, c->stream_id,
                            0, b.data, b.len);
    ms_buf_free(&b);
}

void ms_rtmp_conn_refuse(ms_rtmp_conn_t *c, const char *code, const char *description)
{
    c->pending = 0;
    ms_rtmp_conn_status(c, "error", code, description);
}

void ms_rtmp_conn_send_media(ms_rtmp_conn_t *c, uint8_t msg_type, uint32_t ts_ms, const uint8_t *p,
                             size_t len)
{
    uint32_t csid = msg_type == MS_RTMP_AUDIO   ? CSID_AUDIO
                    : msg_type == MS_RTMP_VIDEO ? CSID_VIDEO
                                                : CSID_DATA;
    ms_rtmp_chunk_write(&c->out, MS_RTMP_OUT_CHUNK, csid, msg_type, c->stream_id, ts_ms, p, len);
}
