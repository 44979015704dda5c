/* RTMP publisher connection state machine (media/rtmp/client.h). Command
 * names, arguments and answers: Adobe RTMP 1.0 section 7.2.1 (connect,
 * createStream, _result / _error) and 7.2.2 (publish, onStatus). */
#include "media/rtmp/client.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "media/rtmp/amf0.h"

#define CSID_CMD    3
#define CSID_AUDIO  4
#define CSID_DATA   5
#define CSID_VIDEO  6
#define OUT_CHUNK   4096u
#define TXN_CONNECT 1
#define TXN_CREATE  4
#define TXN_PUBLISH 5

static int copy_part(char *dst, size_t cap, const char *p, size_t n)
{
    if (n == 0 || n >= cap)
        return -EINVAL;
    memcpy(dst, p, n);
    dst[n] = '\0';
    return 0;
}

int ms_rtmp_url_parse(const char *url, ms_rtmp_url_t *out)
{
    memset(out, 0, sizeof *out);
    if (!url || strncmp(url, "rtmp://", 7) != 0)
        return -EINVAL;
    const char *h = url + 7;
    const char *slash = strchr(h, '/');
    if (!slash)
        return -EINVAL;
    const char *hend = slash, *port = NULL;
    if (*h == '[') {
        const char *rb = memchr(h, ']', (size_t)(slash - h));
        if (!rb)
            return -EINVAL;
        if (copy_part(out->host, sizeof out->host, h + 1, (size_t)(rb - h - 1)) < 0)
            return -EINVAL;
        if (rb + 1 < slash) {
            if (rb[1] != ':')
                return -EINVAL;
            port = rb + 2;
        }
    } else {
        const char *colon = memchr(h, ':', (size_t)(slash - h));
        if (colon) {
            hend = colon;
            port = colon + 1;
        }
        if (copy_part(out->host, sizeof out->host, h, (size_t)(hend - h)) < 0)
            return -EINVAL;
        if (strpbrk(out->host, "@ "))
            return -EINVAL;
    }
    out->port = 1935;
    if (port) {
        if (port == slash)
            return -EINVAL;
        long v = 0;
        for (const char *p = port; p < slash; p++) {
            if (*p < '0' || *p > '9')
                return -EINVAL;
            v = v * 10 + (*p - '0');
            if (v > 65535)
                return -EINVAL;
        }
        if (v < 1)
            return -EINVAL;
        out->port = (int)v;
    }
    /* path: app = up to the last '/' before the query, name = the rest */
    const char *path = slash + 1;
    const char *q = strchr(path, '?');
    size_t plen = q ? (size_t)(q - path) : strlen(path);
    const char *last = NULL;
    for (size_t i = 0; i < plen; i++)
        if (path[i] == '/')
            last = path + i;
    if (!last || last == path || last + 1 == path + plen)
        return -EINVAL;
    if (copy_part(out->app, sizeof out->app, path, (size_t)(last - path)) < 0 ||
        copy_part(out->name, sizeof out->name, last + 1, strlen(last + 1)) < 0)
        return -EINVAL;
    for (const char *p = url; *p; p++)
        if ((unsigned char)*p < 0x21 || *p == 0x7f)
            return -EINVAL; /* no spaces or control characters */
    int n =
        snprintf(out->tc_url, sizeof out->tc_url, "rtmp://%.*s/%s", (int)(slash - h), h, out->app);
    if (n < 0 || (size_t)n >= sizeof out->tc_url)
        return -EINVAL;
    return 0;
}

void ms_rtmp_client_init(ms_rtmp_client_t *c, const char *app, const char *tc_url, const char *name)
{
    memset(c, 0, sizeof *c);
    ms_rtmp_chunk_rd_init(&c->rd, 1u << 20); /* commands only come back */
    snprintf(c->app, sizeof c->app, "%s", app);
    snprintf(c->tc_url, sizeof c->tc_url, "%s", tc_url);
    snprintf(c->name, sizeof c->name, "%s", name);
    /* 5.2.2 C0: version 3; 5.2.3 C1: time, zero, 1528 random bytes */
    uint8_t c1[MS_RTMP_HS_SIZE];
    if (RAND_bytes(c1, (int)sizeof c1) != 1)
        for (size_t i = 0; i < sizeof c1; i++)
            c1[i] = (uint8_t)(i * 167u + 13u);
    ms_wr_be32(c1, 0);
    memset(c1 + 4, 0, 4);
    ms_buf_u8(&c->out, 3);
    ms_buf_append(&c->out, c1, sizeof c1);
}

void ms_rtmp_client_free(ms_rtmp_client_t *c)
{
    ms_rtmp_chunk_rd_free(&c->rd);
    ms_buf_free(&c->out);
}

/* c->error = msg followed by detail (may be NULL). */
static int fail(ms_rtmp_client_t *c, int err, const char *msg, const char *detail)
{
    c->state = MS_RTMPC_FAILED;
    snprintf(c->error, sizeof c->error, "%s%s", msg, detail ? detail : "");
    return err;
}

static void send_cmd(ms_rtmp_client_t *c, uint32_t sid, ms_buf_t *b)
{
    if (b->err)
        c->out.err = 1;
    else
        ms_rtmp_chunk_write(&c->out, OUT_CHUNK, CSID_CMD, MS_RTMP_COMMAND_AMF0, sid, 0, b->data,
                            b->len);
    ms_buf_free(b);
}

/* name(txn, null, [arg]) */
static void simple_cmd(ms_rtmp_client_t *c, uint32_t sid, const char *name, double txn,
                       const char *arg)
{
    ms_buf_t b = MS_BUF_INIT;
    ms_amf0_put_string(&b, name);
    ms_amf0_put_number(&b, txn);
    ms_amf0_put_null(&b);
    if (arg)
        ms_amf0_put_string(&b, arg);
    send_cmd(c, sid, &b);
}

static void send_connect(ms_rtmp_client_t *c)
{
    ms_rtmp_put_set_chunk_size(&c->out, OUT_CHUNK); /* 5.4.1 */
    ms_buf_t b = MS_BUF_INIT;
    ms_amf0_put_string(&b, "connect"); /* 7.2.1.1 */
    ms_amf0_put_number(&b, TXN_CONNECT);
    ms_amf0_put_object_start(&b);
    ms_amf0_put_key(&b, "app");
    ms_amf0_put_string(&b, c->app);
    ms_amf0_put_key(&b, "type");
    ms_amf0_put_string(&b, "nonprivate");
    ms_amf0_put_key(&b, "flashVer");
    ms_amf0_put_string(&b, "FMLE/3.0 (compatible; mediaserver)");
    ms_amf0_put_key(&b, "tcUrl");
    ms_amf0_put_string(&b, c->tc_url);
    ms_amf0_put_object_end(&b);
    send_cmd(c, 0, &b);
    c->state = MS_RTMPC_CONNECT;
}

/* The description (else code) of an info object into c->error. */
static void info_text(const ms_amf0_val_t *info, char *out, size_t cap)
{
    out[0] = '\0';
    if (info->type != MS_AMF0_OBJECT && info->type != MS_AMF0_ECMA_ARRAY)
        return;
    char code[128] = "", desc[160] = "";
    ms_amf0_prop_str(info, "code", code, sizeof code);
    ms_amf0_prop_str(info, "description", desc, sizeof desc);
    snprintf(out, cap, "%s%s%s", code, code[0] && desc[0] ? ": " : "", desc);
}

static int on_command(ms_rtmp_client_t *c, const uint8_t *p, size_t n)
{
    size_t off = 0;
    ms_amf0_val_t v_name, v_txn, v_obj, v_arg;
    char cmd[64];
    if (ms_amf0_next(p, n, &off, &v_name) != 1 || ms_amf0_str(&v_name, cmd, sizeof cmd) < 0)
        return fail(c, -EPROTO, "malformed command from the server", NULL);
    double txn = 0;
    if (ms_amf0_next(p, n, &off, &v_txn) == 1 && v_txn.type == MS_AMF0_NUMBER)
        txn = v_txn.num;
    if (ms_amf0_next(p, n, &off, &v_obj) != 1)
        v_obj.type = MS_AMF0_NULL;
    if (ms_amf0_next(p, n, &off, &v_arg) != 1)
        v_arg.type = MS_AMF0_UNDEFINED;
    char text[200];

    if (strcmp(cmd, "_result") == 0) {
        if (txn == TXN_CONNECT && c->state == MS_RTMPC_CONNECT) {
            /* 7.2.1.1 connect succeeded: FMLE-style publish sequence */
            simple_cmd(c, 0, "releaseStream", 2, c->name);
            simple_cmd(c, 0, "FCPublish", 3, c->name);
            simple_cmd(c, 0, "createStream", TXN_CREATE, NULL);
            c->state = MS_RTMPC_CREATE;
        } else if (txn == TXN_CREATE && c->state == MS_RTMPC_CREATE) {
            /* 7.2.1.3: the stream id is the fourth value */
            if (v_arg.type != MS_AMF0_NUMBER || v_arg.num < 1 || v_arg.num > 0xffffff)
                return fail(c, -EPROTO, "createStream result without a stream id", NULL);
            c->stream_id = (uint32_t)v_arg.num;
            ms_buf_t b = MS_BUF_INIT;
            ms_amf0_put_string(&b, "publish"); /* 7.2.2.6 */
            ms_amf0_put_number(&b, TXN_PUBLISH);
            ms_amf0_put_null(&b);
            ms_amf0_put_string(&b, c->name);
            ms_amf0_put_string(&b, "live");
            send_cmd(c, c->stream_id, &b);
            c->state = MS_RTMPC_PUBLISH;
        }
        return 0;
    }
    if (strcmp(cmd, "_error") == 0) {
        if (txn == TXN_CONNECT || txn == TXN_CREATE || txn == TXN_PUBLISH) {
            info_text(&v_arg, text, sizeof text);
            return fail(c, -ECONNREFUSED,
                        "refused: ", text[0] ? text : (txn == TXN_CONNECT ? "connect" : "publish"));
        }
        return 0; /* releaseStream / FCPublish may be refused harmlessly */
    }
    if (strcmp(cmd, "onStatus") == 0) {
        /* 7.2.2: onStatus(0, null, {level, code, description}) */
        if (v_arg.type != MS_AMF0_OBJECT && v_arg.type != MS_AMF0_ECMA_ARRAY)
            return 0;
        char level[32] = "", code[128] = "";
        ms_amf0_prop_str(&v_arg, "level", level, sizeof level);
        ms_amf0_prop_str(&v_arg, "code", code, sizeof code);
        if (strcmp(level, "error") == 0) {
            info_text(&v_arg, text, sizeof text);
            return fail(c, -ECONNREFUSED, "refused: ", text);
        }
        if (strcmp(code, "NetStream.Publish.Start") == 0 && c->state == MS_RTMPC_PUBLISH)
            c->state = MS_RTMPC_PUBLISHING;
        return 0;
    }
    return 0; /* onBWDone, onFCPublish, ...: nothing to do */
}

static int on_message(ms_rtmp_client_t *c, const ms_rtmp_msg_t *m)
{
    if (ms_rtmp_peer_control(&c->out, m, &c->peer_window))
        return 0;
    switch (m->type) {
    case MS_RTMP_COMMAND_AMF3:
        if (m->len < 1)
            return fail(c, -EPROTO, "empty AMF3 command", NULL);
        return on_command(c, m->data + 1, m->len - 1);
    case MS_RTMP_COMMAND_AMF0:
        return on_command(c, m->data, m->len);
    default: /* Ack, Set Peer Bandwidth, media, data: ignored */
        return 0;
    }
}

int ms_rtmp_client_feed(ms_rtmp_client_t *c, const uint8_t *data, size_t len)
{
    assert(c->state != MS_RTMPC_FAILED);
    size_t u = 0;
    if (c->state == MS_RTMPC_HANDSHAKE) {
        /* S0 (1) S1 (1536) S2 (1536); C2 = echo of S1 (5.2.4) */
        const size_t total = 1 + 2 * MS_RTMP_HS_SIZE;
        while (u < len && c->hs_have < total) {
            if (c->hs_have == 0 && data[u] != 3)
                return fail(c, -EPROTO, "not an RTMP server (handshake version ",
                            data[u] == 6 ? "6, RTMPE)" : "other than 3)");
            if (c->hs_have >= 1 && c->hs_have < 1 + MS_RTMP_HS_SIZE)
                c->s1[c->hs_have - 1] = data[u];
            c->hs_have++;
            u++;
        }
        if (c->hs_have < total)
            return 0;
        ms_buf_append(&c->out, c->s1, sizeof c->s1);
        send_connect(c);
    }
    while (u < len) {
        size_t n = 0;
        ms_rtmp_msg_t m;
        int r = ms_rtmp_chunk_read(&c->rd, data + u, len - u, &n, &m);
        u += n;
        if (r < 0)
            return fail(c, r, "chunk stream error from the server", NULL);
        ms_rtmp_ack_due(&c->out, c->rd.bytes_in, &c->acked, c->peer_window);
        if (r == 0)
            break;
        r = on_message(c, &m);
        if (r < 0)
            return r;
    }
    if (c->out.err)
        return fail(c, -ENOMEM, "out of memory", NULL);
    return 0;
}

void ms_rtmp_client_send_media(ms_rtmp_client_t *c, uint8_t msg_type, uint32_t ts_ms,
                               const uint8_t *p, size_t len)
{
    assert(c->state == MS_RTMPC_PUBLISHING);
    uint32_t csid = msg_type == MS_RTMP_AUDIO   ? CSID_AUDIO
                    : msg_type == MS_RTMP_VIDEO ? CSID_VIDEO
                                                : CSID_DATA;
    ms_rtmp_chunk_write(&c->out, OUT_CHUNK, csid, msg_type, c->stream_id, ts_ms, p, len);
}
