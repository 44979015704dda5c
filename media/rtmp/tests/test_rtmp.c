/* RTMP pure layers: AMF0, handshake (simple and digest), chunk stream,
 * server connection commands, FLV tag bodies <-> frames. Parameter sets
 * are those libx264 / libx265 produced for testsrc (as in
 * media/codec/tests). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "media/rtmp/amf0.h"
#include "media/rtmp/chunk.h"
#include "media/rtmp/conn.h"
#include "media/rtmp/flv.h"
#include "media/rtmp/flv_live.h"
#include "media/stream/hub.h"
#include "media/rtmp/handshake.h"

static const uint8_t sps360[] = {0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9, 0x40, 0xa0, 0x2f,
                                 0xf9, 0x70, 0x11, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00,
                                 0x00, 0x03, 0x00, 0x32, 0x0f, 0x16, 0x2d, 0x96};
static const uint8_t pps360[] = {0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0};
static const uint8_t hvps[] = {0x40, 0x01, 0x0c, 0x02, 0xff, 0xff, 0x01, 0x60, 0x00, 0x00,
                               0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03, 0x00,
                               0x3f, 0x00, 0x00, 0x95, 0x98, 0xac, 0xc0, 0x48};
static const uint8_t hsps[] = {
    0x42, 0x01, 0x02, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03,
    0x00, 0x3f, 0x00, 0x00, 0xa0, 0x05, 0x02, 0x01, 0x69, 0x65, 0x95, 0x98, 0xac, 0xd2, 0x49, 0x95,
    0xe0, 0x2d, 0x01, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x03, 0x00, 0x19, 0x08};
static const uint8_t hpps[] = {0x44, 0x01, 0xc1, 0x72, 0xb4, 0x62, 0x40};

/* ---- AMF0 --------------------------------------------------------------- */

static void test_amf0_roundtrip(void **st)
{
    (void)st;
    ms_buf_t b = MS_BUF_INIT;
    ms_amf0_put_string(&b, "connect");
    ms_amf0_put_number(&b, 1);
    ms_amf0_put_object_start(&b);
    ms_amf0_put_key(&b, "app");
    ms_amf0_put_string(&b, "live");
    ms_amf0_put_key(&b, "nested");
    ms_amf0_put_ecma_start(&b, 1);
    ms_amf0_put_key(&b, "x");
    ms_amf0_put_bool(&b, 1);
    ms_amf0_put_object_end(&b);
    ms_amf0_put_key(&b, "tcUrl");
    ms_amf0_put_string(&b, "rtmp://h/live");
    ms_amf0_put_object_end(&b);
    ms_amf0_put_null(&b);
    assert_false(b.err);

    size_t off = 0;
    ms_amf0_val_t v, o, p;
    char s[64];
    assert_int_equal(ms_amf0_next(b.data, b.len, &off, &v), 1);
    assert_int_equal(ms_amf0_str(&v, s, sizeof s), 7);
    assert_string_equal(s, "connect");
    assert_int_equal(ms_amf0_next(b.data, b.len, &off, &v), 1);
    assert_int_equal(v.type, MS_AMF0_NUMBER);
    assert_true(v.num == 1.0);
    assert_int_equal(ms_amf0_next(b.data, b.len, &off, &o), 1);
    assert_int_equal(o.type, MS_AMF0_OBJECT);
    assert_int_equal(ms_amf0_prop_str(&o, "app", s, sizeof s), 4);
    assert_string_equal(s, "live");
    assert_int_equal(ms_amf0_prop_str(&o, "tcUrl", s, sizeof s), 13);
    assert_int_equal(ms_amf0_prop(&o, "nested", &p), 1);
    assert_int_equal(p.type, MS_AMF0_ECMA_ARRAY);
    assert_int_equal(ms_amf0_prop(&o, "missing", &p), 0);
    assert_int_equal(ms_amf0_prop_str(&o, "app", s, 3), -ENAMETOOLONG);
    assert_int_equal(ms_amf0_next(b.data, b.len, &off, &v), 1);
    assert_int_equal(v.type, MS_AMF0_NULL);
    assert_int_equal(ms_amf0_next(b.data, b.len, &off, &v), 0);

    /* every truncation of it fails cleanly (never reads past the end) */
    for (size_t n = 1; n < b.len - 1; n++) {
        uint8_t *cp = malloc(n);
        memcpy(cp, b.data, n);
        off = 0;
        int r;
        while ((r = ms_amf0_next(cp, n, &off, &v)) == 1)
            ;
        assert_true(r == 0 || r == -EINVAL);
        free(cp);
    }
    ms_buf_free(&b);
}

static void test_amf0_malformed(void **st)
{
    (void)st;
    /* nesting deeper than MS_AMF0_MAX_DEPTH */
    uint8_t deep[200];
    size_t n = 0;
    for (int i = 0; i < 40; i++) {
        deep[n++] = MS_AMF0_OBJECT;
        deep[n++] = 0;
        deep[n++] = 1;
        deep[n++] = 'a';
    }
    size_t off = 0;
    ms_amf0_val_t v;
    assert_int_equal(ms_amf0_next(deep, n, &off, &v), -EINVAL);
    /* AVM+ switch and a huge strict array count */
    const uint8_t avm[] = {0x11, 0x02};
    off = 0;
    assert_int_equal(ms_amf0_next(avm, sizeof avm, &off, &v), -EINVAL);
    const uint8_t arr[] = {MS_AMF0_STRICT_ARRAY, 0xff, 0xff, 0xff, 0xff, MS_AMF0_NULL};
    off = 0;
    assert_int_equal(ms_amf0_next(arr, sizeof arr, &off, &v), -EINVAL);
    /* a string with an embedded NUL is refused as a C string */
    const uint8_t nul[] = {MS_AMF0_STRING, 0, 3, 'a', 0, 'b'};
    off = 0;
    assert_int_equal(ms_amf0_next(nul, sizeof nul, &off, &v), 1);
    char s[8];
    assert_int_equal(ms_amf0_str(&v, s, sizeof s), -EINVAL);
}

/* ---- handshake ---------------------------------------------------------- */

static void make_c0c1(uint8_t *c, int digest_base)
{
    c[0] = 3;
    for (int i = 1; i <= MS_RTMP_HS_SIZE; i++)
        c[i] = (uint8_t)(i * 7 + 3);
    uint8_t *c1 = c + 1;
    memset(c1, 0, 4);
    if (digest_base) {
        c1[4] = 9; /* a Flash Player version: digest form */
        c1[5] = 0;
        c1[6] = 124;
        c1[7] = 2;
        ms_rtmp_hs_digest_put(c1, (size_t)digest_base, 0);
    } else {
        memset(c1 + 4, 0, 4);
    }
}

static void test_handshake_simple(void **st)
{
    (void)st;
    uint8_t c[1 + MS_RTMP_HS_SIZE];
    make_c0c1(c, 0);
    ms_rtmp_hs_t hs;
    ms_rtmp_hs_init(&hs);
    ms_buf_t out = MS_BUF_INIT;
    /* byte by byte: nothing until C1 is complete */
    for (size_t i = 0; i < sizeof c - 1; i++)
        assert_int_equal(ms_rtmp_hs_feed(&hs, c + i, 1, &out), 1);
    assert_int_equal(out.len, 0);
    assert_int_equal(ms_rtmp_hs_feed(&hs, c + sizeof c - 1, 1, &out), 1);
    assert_int_equal(out.len, 1 + 2 * MS_RTMP_HS_SIZE);
    assert_int_equal(out.data[0], 3);
    assert_false(hs.digest);
    /* S2 echoes C1 (time, random), 5.2.4 */
    const uint8_t *s2 = out.data + 1 + MS_RTMP_HS_SIZE;
    assert_memory_equal(s2, c + 1, 4);
    assert_memory_equal(s2 + 8, c + 1 + 8, MS_RTMP_HS_SIZE - 8);
    /* C2 and the first chunk bytes: only C2 is consumed */
    uint8_t c2[MS_RTMP_HS_SIZE + 3] = {0};
    assert_int_equal(ms_rtmp_hs_feed(&hs, c2, sizeof c2, &out), MS_RTMP_HS_SIZE);
    assert_int_equal(hs.state, MS_RTMP_HS_DONE);
    ms_buf_free(&out);

    ms_rtmp_hs_init(&hs);
    uint8_t bad = 6; /* RTMPE */
    assert_int_equal(ms_rtmp_hs_feed(&hs, &bad, 1, &out), -EPROTONOSUPPORT);
    ms_buf_free(&out);
}

static void check_digest(int base)
{
    uint8_t c[1 + MS_RTMP_HS_SIZE];
    make_c0c1(c, base);
    assert_true(ms_rtmp_hs_digest_ok(c + 1, (size_t)base, 0));
    ms_rtmp_hs_t hs;
    ms_rtmp_hs_init(&hs);
    ms_buf_t out = MS_BUF_INIT;
    assert_int_equal(ms_rtmp_hs_feed(&hs, c, sizeof c, &out), sizeof c);
    assert_true(hs.digest);
    const uint8_t *s1 = out.data + 1, *s2 = s1 + MS_RTMP_HS_SIZE;
    /* S1's digest validates with the FMS key in the client's scheme; S2's
     * signature is keyed with the C1 digest (what ffmpeg checks) */
    assert_true(ms_rtmp_hs_digest_ok(s1, (size_t)base, 1));
    const uint8_t *cd = c + 1 + ms_rtmp_hs_digest_offset(c + 1, (size_t)base);
    uint8_t sig[32];
    ms_rtmp_hs_s2_sig(s2, cd, 1, sig);
    assert_memory_equal(sig, s2 + MS_RTMP_HS_SIZE - 32, 32);
    ms_buf_free(&out);
}

static void test_handshake_digest(void **st)
{
    (void)st;
    check_digest(8);
    check_digest(772);
    /* a non-zero version with a wrong digest falls back to the simple form */
    uint8_t c[1 + MS_RTMP_HS_SIZE];
    make_c0c1(c, 8);
    c[1 + 100] ^= 0xff;
    c[1 + 900] ^= 0xff;
    ms_rtmp_hs_t hs;
    ms_rtmp_hs_init(&hs);
    ms_buf_t out = MS_BUF_INIT;
    assert_int_equal(ms_rtmp_hs_feed(&hs, c, sizeof c, &out), sizeof c);
    assert_false(hs.digest);
    ms_buf_free(&out);
}

/* ---- chunk stream ------------------------------------------------------- */

/* Reads every message of data (fed in pieces of step bytes). */
static int read_all(ms_rtmp_chunk_rd_t *rd, const uint8_t *data, size_t len, size_t step,
                    ms_buf_t *bodies, uint32_t *ts, uint8_t *types, int max)
{
    int n = 0;
    size_t off = 0;
    while (off < len) {
        size_t l = len - off < step ? len - off : step, used = 0;
        const uint8_t *p = data + off;
        while (l > 0) {
            ms_rtmp_msg_t m;
            int r = ms_rtmp_chunk_read(rd, p, l, &used, &m);
            if (r < 0)
                return r;
            p += used;
            l -= used;
            off += used;
            if (r == 1) {
                if (n < max) {
                    ms_buf_append(&bodies[n], m.data, m.len);
                    ts[n] = m.timestamp;
                    types[n] = m.type;
                }
                n++;
            }
        }
    }
    return n;
}

static void test_chunk_roundtrip(void **st)
{
    (void)st;
    uint8_t big[1000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)i;
    ms_buf_t w = MS_BUF_INIT;
    ms_rtmp_chunk_write(&w, 128, 6, MS_RTMP_VIDEO, 1, 0x1000000, big, sizeof big); /* ext ts */
    ms_rtmp_put_set_chunk_size(&w, 300);
    ms_rtmp_chunk_write(&w, 300, 320, MS_RTMP_AUDIO, 1, 40, big, 700); /* 3-byte basic hdr */
    ms_rtmp_chunk_write(&w, 300, 70, MS_RTMP_AUDIO, 1, 41, big, 0);    /* empty */
    assert_false(w.err);
    for (size_t step = 1; step <= w.len; step = step * 3 + 1) {
        ms_rtmp_chunk_rd_t rd;
        ms_rtmp_chunk_rd_init(&rd, 0);
        ms_buf_t bodies[4] = {MS_BUF_INIT, MS_BUF_INIT, MS_BUF_INIT, MS_BUF_INIT};
        uint32_t ts[4];
        uint8_t types[4];
        assert_int_equal(read_all(&rd, w.data, w.len, step, bodies, ts, types, 4), 4);
        assert_int_equal(types[0], MS_RTMP_VIDEO);
        assert_int_equal(ts[0], 0x1000000);
        assert_int_equal(bodies[0].len, sizeof big);
        assert_memory_equal(bodies[0].data, big, sizeof big);
        assert_int_equal(types[1], MS_RTMP_SET_CHUNK_SIZE);
        assert_int_equal(rd.chunk_size, 300);
        assert_int_equal(bodies[2].len, 700);
        assert_memory_equal(bodies[2].data, big, 700);
        assert_int_equal(ts[2], 40);
        assert_int_equal(bodies[3].len, 0);
        assert_int_equal(rd.bytes_in, w.len);
        for (int i = 0; i < 4; i++)
            ms_buf_free(&bodies[i]);
        ms_rtmp_chunk_rd_free(&rd);
    }
    ms_buf_free(&w);
}

/* Headers of types 1, 2 and 3 (5.3.1.2.2-4), written by hand. */
static void test_chunk_header_types(void **st)
{
    (void)st;
    const uint8_t in[] = {/* type 0, csid 4: ts 100, len 2, type 8, stream 1 */
                          0x04, 0x00, 0x00, 0x64, 0x00, 0x00, 0x02, 0x08, 0x01, 0x00, 0x00, 0x00,
                          0xaa, 0xbb,
                          /* type 1: delta 20, len 1, type 8 */
                          0x44, 0x00, 0x00, 0x14, 0x00, 0x00, 0x01, 0x08, 0xcc,
                          /* type 2: delta 30 */
                          0x84, 0x00, 0x00, 0x1e, 0xdd,
                          /* type 3: same delta (30) again */
                          0xc4, 0xee};
    ms_rtmp_chunk_rd_t rd;
    ms_rtmp_chunk_rd_init(&rd, 0);
    ms_buf_t bodies[4] = {MS_BUF_INIT, MS_BUF_INIT, MS_BUF_INIT, MS_BUF_INIT};
    uint32_t ts[4];
    uint8_t types[4];
    assert_int_equal(read_all(&rd, in, sizeof in, sizeof in, bodies, ts, types, 4), 4);
    assert_int_equal(ts[0], 100);
    assert_int_equal(ts[1], 120);
    assert_int_equal(ts[2], 150);
    assert_int_equal(ts[3], 180);
    assert_int_equal(bodies[3].len, 1);
    assert_int_equal(bodies[3].data[0], 0xee);
    for (int i = 0; i < 4; i++)
        ms_buf_free(&bodies[i]);
    ms_rtmp_chunk_rd_free(&rd);
}

static void test_chunk_bounds(void **st)
{
    (void)st;
    ms_rtmp_chunk_rd_t rd;
    ms_rtmp_msg_t m;
    size_t used;
    /* type 3 with no previous header */
    const uint8_t t3[] = {0xc5, 0x00};
    ms_rtmp_chunk_rd_init(&rd, 0);
    assert_int_equal(ms_rtmp_chunk_read(&rd, t3, sizeof t3, &used, &m), -EPROTO);
    ms_rtmp_chunk_rd_free(&rd);
    /* a message over max_msg */
    const uint8_t huge[] = {0x04, 0, 0, 0, 0xff, 0xff, 0xff, 0x09, 1, 0, 0, 0};
    ms_rtmp_chunk_rd_init(&rd, 1 << 20);
    assert_int_equal(ms_rtmp_chunk_read(&rd, huge, sizeof huge, &used, &m), -EMSGSIZE);
    ms_rtmp_chunk_rd_free(&rd);
    /* Set Chunk Size 0 */
    ms_buf_t w = MS_BUF_INIT;
    uint8_t zero[4] = {0};
    ms_rtmp_chunk_write(&w, 128, 2, MS_RTMP_SET_CHUNK_SIZE, 0, 0, zero, 4);
    ms_rtmp_chunk_rd_init(&rd, 0);
    assert_int_equal(ms_rtmp_chunk_read(&rd, w.data, w.len, &used, &m), -EPROTO);
    ms_rtmp_chunk_rd_free(&rd);
    ms_buf_reset(&w);
    ms_buf_free(&w);
    uint8_t body[10] = {0};
    int r = 0;
    size_t off = 0;
    /* many distinct chunk streams: at most MS_RTMP_MAX_CSIDS keep state (a
     * header of type 1-3 needs the previous one, so none is forgotten) */
    ms_buf_t w2 = MS_BUF_INIT;
    for (uint32_t cs = 3; cs < 3 + MS_RTMP_MAX_CSIDS + 1; cs++)
        ms_rtmp_chunk_write(&w2, 128, cs, MS_RTMP_VIDEO, 1, 0, body, 1);
    ms_rtmp_chunk_rd_init(&rd, 0);
    off = 0;
    while (off < w2.len &&
           (r = ms_rtmp_chunk_read(&rd, w2.data + off, w2.len - off, &used, &m)) >= 0)
        off += used;
    assert_int_equal(r, -EPROTO);
    ms_rtmp_chunk_rd_free(&rd);
    ms_buf_free(&w2);
}

/* ---- connection --------------------------------------------------------- */

static void cmd(ms_buf_t *w, uint32_t sid, const char *name, double txn, const char *arg)
{
    ms_buf_t b = MS_BUF_INIT;
    ms_amf0_put_string(&b, name);
    ms_amf0_put_number(&b, txn);
    if (strcmp(name, "connect") == 0) {
        ms_amf0_put_object_start(&b);
        ms_amf0_put_key(&b, "app");
        ms_amf0_put_string(&b, "live");
        ms_amf0_put_key(&b, "tcUrl");
        ms_amf0_put_string(&b, "rtmp://127.0.0.1/live");
        ms_amf0_put_object_end(&b);
    } else {
        ms_amf0_put_null(&b);
    }
    if (arg)
        ms_amf0_put_string(&b, arg);
    ms_rtmp_chunk_write(w, 128, 3, MS_RTMP_COMMAND_AMF0, sid, 0, b.data, b.len);
    ms_buf_free(&b);
}

static int has(const ms_buf_t *b, const char *s)
{
    return memmem(b->data, b->len, s, strlen(s)) != NULL;
}

/* Runs a client up to its publish or play; returns the event. */
static int session_to(ms_rtmp_conn_t *c, const char *verb, const char *name, ms_rtmp_ev_t *ev)
{
    uint8_t c0c1[1 + MS_RTMP_HS_SIZE];
    make_c0c1(c0c1, 772);
    ms_buf_t w = MS_BUF_INIT;
    ms_buf_append(&w, c0c1, sizeof c0c1);
    ms_buf_fill(&w, 0, MS_RTMP_HS_SIZE); /* C2 */
    ms_rtmp_put_window_ack_size(&w, 100);
    cmd(&w, 0, "connect", 1, NULL);
    cmd(&w, 0, "releaseStream", 2, name);
    cmd(&w, 0, "FCPublish", 3, name);
    cmd(&w, 0, "createStream", 4, NULL);
    cmd(&w, 1, verb, 5, name);
    size_t off = 0, used;
    int r = 0;
    while (off < w.len && (r = ms_rtmp_conn_feed(c, w.data + off, w.len - off, &used, ev)) == 0)
        off += used;
    off += used;
    assert_int_equal(off, w.len);
    ms_buf_free(&w);
    return r;
}

static void test_conn_publish(void **st)
{
    (void)st;
    ms_rtmp_conn_t c;
    ms_rtmp_conn_init(&c, 0);
    ms_rtmp_ev_t ev;
    assert_int_equal(session_to(&c, "publish", "cam1?key=abc", &ev), 1);
    assert_int_equal(ev.type, MS_RTMP_EV_PUBLISH);
    assert_string_equal(c.app, "live");
    assert_string_equal(c.name, "cam1");
    assert_string_equal(c.query, "key=abc");
    assert_true(c.hs.digest);
    assert_true(has(&c.out, "NetConnection.Connect.Success"));
    assert_true(has(&c.out, "_result"));
    /* the peer's window (100 bytes) was acknowledged */
    assert_int_equal(c.peer_window, 100);
    assert_true(c.acked > 0);
    ms_buf_reset(&c.out);
    ms_rtmp_conn_publish_ok(&c);
    assert_true(has(&c.out, "NetStream.Publish.Start"));

    /* media on the stream, then deleteStream */
    ms_buf_t w = MS_BUF_INIT;
    const uint8_t vid[] = {0x17, 0x01, 0, 0, 0};
    ms_rtmp_chunk_write(&w, 128, 6, MS_RTMP_VIDEO, 1, 1234, vid, sizeof vid);
    cmd(&w, 0, "deleteStream", 6, NULL);
    size_t used;
    assert_int_equal(ms_rtmp_conn_feed(&c, w.data, w.len, &used, &ev), 1);
    assert_int_equal(ev.type, MS_RTMP_EV_MEDIA);
    assert_int_equal(ev.msg_type, MS_RTMP_VIDEO);
    assert_int_equal(ev.ts_ms, 1234);
    assert_int_equal(ev.len, sizeof vid);
    size_t off = used;
    assert_int_equal(ms_rtmp_conn_feed(&c, w.data + off, w.len - off, &used, &ev), 1);
    assert_int_equal(ev.type, MS_RTMP_EV_UNPUBLISH);
    ms_buf_free(&w);
    ms_rtmp_conn_free(&c);
}

static void test_conn_refuse_and_errors(void **st)
{
    (void)st;
    ms_rtmp_conn_t c;
    ms_rtmp_conn_init(&c, 0);
    ms_rtmp_ev_t ev;
    assert_int_equal(session_to(&c, "publish", "live/x", &ev), 1);
    assert_string_equal(c.name, "x");
    ms_buf_reset(&c.out);
    ms_rtmp_conn_refuse(&c, "NetStream.Publish.Unauthorized", "bad key");
    assert_true(has(&c.out, "NetStream.Publish.Unauthorized"));
    assert_true(has(&c.out, "error"));
    ms_rtmp_conn_free(&c);

    /* an empty name is refused with BadName by the connection itself */
    ms_rtmp_conn_init(&c, 0);
    assert_int_equal(session_to(&c, "publish", "live/", &ev), -EINVAL);
    assert_true(has(&c.out, "NetStream.Publish.BadName"));
    ms_rtmp_conn_free(&c);

    /* play */
    ms_rtmp_conn_init(&c, 0);
    assert_int_equal(session_to(&c, "play", "cam?token=t", &ev), 1);
    assert_int_equal(ev.type, MS_RTMP_EV_PLAY);
    assert_string_equal(c.query, "token=t");
    ms_rtmp_conn_play_ok(&c);
    assert_true(has(&c.out, "NetStream.Play.Start"));
    ms_rtmp_conn_free(&c);

    /* a command before connect */
    ms_rtmp_conn_init(&c, 0);
    uint8_t c0c1[1 + MS_RTMP_HS_SIZE];
    make_c0c1(c0c1, 0);
    ms_buf_t w = MS_BUF_INIT;
    ms_buf_append(&w, c0c1, sizeof c0c1);
    ms_buf_fill(&w, 0, MS_RTMP_HS_SIZE);
    cmd(&w, 0, "createStream", 2, NULL);
    size_t used;
    assert_int_equal(ms_rtmp_conn_feed(&c, w.data, w.len, &used, &ev), -EPROTO);
    ms_buf_free(&w);
    ms_rtmp_conn_free(&c);

    char n[16], q[16];
    assert_int_equal(ms_rtmp_split_name("a/b/c?x=1", n, sizeof n, q, sizeof q), 0);
    assert_string_equal(n, "c");
    assert_string_equal(q, "x=1");
    assert_int_equal(ms_rtmp_split_name("?x", n, sizeof n, q, sizeof q), -EINVAL);
    assert_int_equal(ms_rtmp_split_name("waytoolongnameforthis", n, sizeof n, q, sizeof q),
                     -EINVAL);
}

/* ---- FLV ---------------------------------------------------------------- */

static void test_flv_h264(void **st)
{
    (void)st;
    ms_codec_params_t p;
    memset(&p, 0, sizeof p);
    p.codec = MS_CODEC_H264;
    memcpy(p.sps, sps360, sizeof sps360);
    p.sps_len = sizeof sps360;
    memcpy(p.pps, pps360, sizeof pps360);
    p.pps_len = sizeof pps360;
    ms_buf_t seq = MS_BUF_INIT;
    assert_int_equal(ms_flv_out_video_seq(&p, &seq), 0);
    ms_flv_in_t in;
    ms_flv_in_init(&in);
    ms_frame_t *f = NULL;
    assert_int_equal(ms_flv_in_video(&in, 0, seq.data, seq.len, &f), 0);
    assert_true(in.have_video && in.changed);
    assert_int_equal(in.video.width, 640);
    assert_int_equal(in.video.height, 360);
    assert_int_equal(in.video.sps_len, sizeof sps360);

    /* a keyframe: AUD + IDR with 4-byte lengths, composition time 80 ms */
    const uint8_t body[] = {0x17, 0x01, 0x00, 0x00, 0x50, 0, 0,    0,    2,
                            0x09, 0xf0, 0,    0,    0,    3, 0x65, 0x88, 0x84};
    assert_int_equal(ms_flv_in_video(&in, 1000, body, sizeof body, &f), 1);
    assert_true(f->flags & MS_FRAME_KEY);
    assert_int_equal(f->dts, 90000);
    assert_int_equal(f->pts, 97200);
    /* SPS, PPS prepended; AUD gone */
    assert_int_equal(f->size, 4 + sizeof sps360 + 4 + sizeof pps360 + 4 + 3);
    assert_memory_equal(f->data + 4, sps360, sizeof sps360);
    assert_int_equal(f->data[f->size - 3], 0x65);

    /* back to a message body, and in again: same payload */
    ms_buf_t out = MS_BUF_INIT;
    assert_int_equal(ms_flv_out_video(&in.video, f, 80, &out), 0);
    assert_int_equal(out.data[0], 0x17);
    ms_frame_t *g = NULL;
    assert_int_equal(ms_flv_in_video(&in, 1000, out.data, out.len, &g), 1);
    assert_int_equal(g->size, f->size);
    assert_memory_equal(g->data, f->data, f->size);
    assert_int_equal(g->pts, f->pts);
    ms_frame_unref(g);
    ms_frame_unref(f);

    /* a NAL length running past the body, other codecs */
    const uint8_t bad[] = {0x27, 0x01, 0, 0, 0, 0, 0, 0, 9, 0x41};
    assert_int_equal(ms_flv_in_video(&in, 0, bad, sizeof bad, &f), -EINVAL);
    const uint8_t vp6[] = {0x14, 0};
    assert_int_equal(ms_flv_in_video(&in, 0, vp6, sizeof vp6, &f), -ENOTSUP);
    ms_buf_free(&out);
    ms_buf_free(&seq);
}

static void test_flv_h265_enhanced(void **st)
{
    (void)st;
    ms_codec_params_t p;
    memset(&p, 0, sizeof p);
    p.codec = MS_CODEC_H265;
    memcpy(p.vps, hvps, sizeof hvps);
    p.vps_len = sizeof hvps;
    memcpy(p.sps, hsps, sizeof hsps);
    p.sps_len = sizeof hsps;
    memcpy(p.pps, hpps, sizeof hpps);
    p.pps_len = sizeof hpps;
    ms_buf_t seq = MS_BUF_INIT;
    assert_int_equal(ms_flv_out_video_seq(&p, &seq), 0);
    assert_int_equal(seq.data[0], 0x90);
    assert_memory_equal(seq.data + 1, "hvc1", 4);
    ms_flv_in_t in;
    ms_flv_in_init(&in);
    ms_frame_t *f = NULL;
    assert_int_equal(ms_flv_in_video(&in, 0, seq.data, seq.len, &f), 0);
    assert_int_equal(in.video.codec, MS_CODEC_H265);
    assert_int_equal(in.video.width, 640);
    assert_int_equal(in.video.height, 360);
    /* CodedFramesX (no composition time), an IDR_W_RADL (19) */
    const uint8_t body[] = {0x93, 'h', 'v', 'c', '1', 0, 0, 0, 3, 0x26, 0x01, 0xaf};
    assert_int_equal(ms_flv_in_video(&in, 40, body, sizeof body, &f), 1);
    assert_true(f->flags & MS_FRAME_KEY);
    assert_int_equal(f->pts, 3600);
    assert_memory_equal(f->data + 4, hvps, sizeof hvps);
    ms_frame_unref(f);
    ms_buf_free(&seq);
}

static void test_flv_aac_and_file(void **st)
{
    (void)st;
    const uint8_t seq[] = {0xaf, 0x00, 0x12, 0x10}; /* AAC-LC 44.1 kHz stereo */
    ms_flv_in_t in;
    ms_flv_in_init(&in);
    ms_frame_t *f = NULL;
    const uint8_t early[] = {0xaf, 0x01, 0x21};
    assert_int_equal(ms_flv_in_audio(&in, 0, early, sizeof early, &f), 0); /* no config yet */
    assert_int_equal(ms_flv_in_audio(&in, 0, seq, sizeof seq, &f), 0);
    assert_int_equal(in.audio.sample_rate, 44100);
    assert_int_equal(in.audio.channels, 2);
    const uint8_t raw[] = {0xaf, 0x01, 0x21, 0x10, 0x05};
    assert_int_equal(ms_flv_in_audio(&in, 2000, raw, sizeof raw, &f), 1);
    assert_int_equal(f->dts, 88200);
    assert_int_equal(f->size, 3);
    ms_buf_t b = MS_BUF_INIT;
    assert_int_equal(ms_flv_out_audio_seq(&in.audio, &b), 0);
    assert_memory_equal(b.data, seq, sizeof seq);
    ms_buf_reset(&b);
    assert_int_equal(ms_flv_out_audio(&in.audio, f, &b), 0);
    assert_memory_equal(b.data, raw, sizeof raw);
    /* a file tag: 11-byte header, body, PreviousTagSize */
    ms_buf_t file = MS_BUF_INIT;
    ms_flv_file_header(&file, 1, 1);
    assert_int_equal(file.len, 13);
    assert_memory_equal(file.data, "FLV\x01\x05\x00\x00\x00\x09", 9);
    ms_flv_file_tag(&file, MS_FLV_TAG_AUDIO, 0x01020304, b.data, b.len);
    assert_int_equal(file.len, 13 + 11 + b.len + 4);
    assert_int_equal(file.data[13 + 4], 0x02); /* ts lower 24 bits first */
    assert_int_equal(file.data[13 + 7], 0x01); /* TimestampExtended */
    assert_int_equal(ms_rd_be32(file.data + file.len - 4), 11 + b.len);
    ms_frame_unref(f);
    const uint8_t mp3[] = {0x2f, 0};
    assert_int_equal(ms_flv_in_audio(&in, 0, mp3, sizeof mp3, &f), -ENOTSUP);
    ms_buf_free(&b);
    ms_buf_free(&file);
}

typedef struct {
    int n;
    uint8_t type[16];
    uint32_t ts[16];
} emits_t;

static void on_emit(void *ud, uint8_t type, uint32_t ts, const uint8_t *body, size_t len)
{
    (void)body;
    (void)len;
    emits_t *e = ud;
    if (e->n < 16) {
        e->type[e->n] = type;
        e->ts[e->n] = ts;
    }
    e->n++;
}

static ms_frame_t *mkframe(int track, int key, int64_t dts, int64_t pts, uint8_t flags)
{
    const uint8_t idr[] = {0, 0, 0, 2, 0x65, 0x88};
    ms_frame_t *f = ms_frame_new(idr, sizeof idr);
    f->track = (uint8_t)track;
    f->flags = (uint8_t)((key ? MS_FRAME_KEY : 0) | flags);
    f->dts = dts;
    f->pts = pts;
    return f;
}

static void test_flv_play(void **st)
{
    (void)st;
    ms_codec_params_t t[3];
    memset(t, 0, sizeof t);
    t[0].codec = MS_CODEC_ONVIF_META; /* skipped */
    t[0].kind = MS_TRACK_APP;
    t[1].codec = MS_CODEC_H264;
    t[1].kind = MS_TRACK_VIDEO;
    t[1].clock_rate = 90000;
    memcpy(t[1].sps, sps360, sizeof sps360);
    t[1].sps_len = sizeof sps360;
    memcpy(t[1].pps, pps360, sizeof pps360);
    t[1].pps_len = sizeof pps360;
    t[2].codec = MS_CODEC_AAC;
    t[2].kind = MS_TRACK_AUDIO;
    t[2].clock_rate = 48000;
    t[2].sample_rate = 48000;
    t[2].asc[0] = 0x11;
    t[2].asc[1] = 0x90;
    t[2].asc_len = 2;
    ms_flv_play_t pl;
    ms_flv_play_init(&pl);
    assert_int_equal(ms_flv_play_tracks(&pl, t, 3), 2);
    emits_t e = {0};
    ms_frame_t *f = mkframe(2, 1, 48000, 48000, 0); /* audio before the keyframe: dropped */
    assert_int_equal(ms_flv_play_frame(&pl, f, &t[2], on_emit, &e), 0);
    ms_frame_unref(f);
    f = mkframe(1, 0, 90000, 90000, 0); /* not a keyframe: dropped */
    assert_int_equal(ms_flv_play_frame(&pl, f, &t[1], on_emit, &e), 0);
    ms_frame_unref(f);
    f = mkframe(1, 1, 180000, 183600, 0);
    assert_int_equal(ms_flv_play_frame(&pl, f, &t[1], on_emit, &e), 4);
    ms_frame_unref(f);
    assert_int_equal(e.type[0], MS_FLV_TAG_SCRIPT);
    assert_int_equal(e.type[1], MS_FLV_TAG_VIDEO);
    assert_int_equal(e.type[2], MS_FLV_TAG_AUDIO);
    assert_int_equal(e.type[3], MS_FLV_TAG_VIDEO);
    assert_int_equal(e.ts[3], 0);
    f = mkframe(2, 1, 96000 + 1920, 96000 + 1920, 0); /* 2.04 s: 40 ms after the keyframe */
    assert_int_equal(ms_flv_play_frame(&pl, f, &t[2], on_emit, &e), 1);
    assert_int_equal(e.ts[4], 40);
    ms_frame_unref(f);
    /* a new timeline continues 40 ms after the last time */
    f = mkframe(1, 1, 900000000, 900000000, MS_FRAME_DISCONT);
    assert_int_equal(ms_flv_play_frame(&pl, f, &t[1], on_emit, &e), 1);
    assert_int_equal(e.ts[5], 80);
    ms_frame_unref(f);
    /* a new source (new tracks) whose times fall 30 ms before the last
     * output time, its DISCONT on an audio frame that the keyframe wait
     * drops: the video keyframe continues the timeline (never goes back)
     * after new headers */
    assert_int_equal(ms_flv_play_tracks(&pl, t, 3), 2);
    f = mkframe(2, 1, 4800, 4800, MS_FRAME_DISCONT);
    assert_int_equal(ms_flv_play_frame(&pl, f, &t[2], on_emit, &e), 0);
    ms_frame_unref(f);
    f = mkframe(1, 1, 899997300, 899997300, 0);
    assert_int_equal(ms_flv_play_frame(&pl, f, &t[1], on_emit, &e), 4);
    assert_int_equal(e.ts[9], 120);
    ms_frame_unref(f);
    f = mkframe(1, 0, 899997300 + 3600, 899997300 + 3600, 0);
    assert_int_equal(ms_flv_play_frame(&pl, f, &t[1], on_emit, &e), 1);
    assert_int_equal(e.ts[10], 160);
    ms_frame_unref(f);
    ms_flv_play_free(&pl);
}

static int wakes;
static void on_wake(void *ud)
{
    (void)ud;
    wakes++;
}

/* HTTP-FLV subscriber over a real hub: header, then headers + tags from
 * the keyframe; a subscriber that never reads is ended after 3 strikes. */
static void test_flv_live(void **st)
{
    (void)st;
    ms_hub_t *hub = ms_hub_new("[test]");
    ms_codec_params_t t[2];
    memset(t, 0, sizeof t);
    t[0].codec = MS_CODEC_H264;
    t[0].kind = MS_TRACK_VIDEO;
    t[0].clock_rate = 90000;
    memcpy(t[0].sps, sps360, sizeof sps360);
    t[0].sps_len = sizeof sps360;
    memcpy(t[0].pps, pps360, sizeof pps360);
    t[0].pps_len = sizeof pps360;
    t[1].codec = MS_CODEC_AAC;
    t[1].kind = MS_TRACK_AUDIO;
    t[1].clock_rate = 44100;
    t[1].sample_rate = 44100;
    t[1].asc[0] = 0x12;
    t[1].asc[1] = 0x10;
    t[1].asc_len = 2;
    assert_int_equal(ms_hub_set_tracks(hub, t, 2), 0);
    ms_frame_t *f = mkframe(0, 1, 0, 0, MS_FRAME_DISCONT);
    ms_hub_publish(hub, f); /* in the GOP cache */
    ms_frame_unref(f);

    wakes = 0;
    ms_flv_live_t *l = ms_flv_live_new(hub, on_wake, NULL);
    assert_non_null(l);
    ms_blob_t *b = NULL;
    assert_int_equal(ms_flv_live_next(l, &b), 0);
    assert_int_equal(b->len, 13);
    assert_memory_equal(b->data, "FLV\x01\x05", 5);
    ms_blob_unref(b);
    assert_int_equal(ms_flv_live_next(l, &b), -EAGAIN);
    assert_int_equal(ms_flv_live_attach(l), 0); /* the GOP cache comes at once */
    assert_int_equal(wakes, 1);
    assert_int_equal(ms_flv_live_next(l, &b), 0);
    /* script tag first, then the AVC and AAC sequence headers, then the frame */
    assert_int_equal(b->data[0], MS_FLV_TAG_SCRIPT);
    size_t off = 0, ntags = 0;
    while (off + 11 <= b->len) {
        off += 11 + ms_rd_be24(b->data + off + 1) + 4;
        ntags++;
    }
    assert_int_equal(off, b->len);
    assert_int_equal(ntags, 4);
    ms_blob_unref(b);

    /* never read again: 1 MiB frames overflow the 4 MiB queue three times */
    for (int i = 0; i < 20; i++) {
        ms_frame_t *big = ms_frame_new(NULL, 1 << 20);
        memset(big->data, 0, big->size);
        ms_wr_be32(big->data, big->size - 4);
        big->data[4] = 0x65;
        big->track = 0;
        big->flags = MS_FRAME_KEY;
        big->dts = big->pts = 3600 * (i + 1);
        ms_hub_publish(hub, big);
        ms_frame_unref(big);
    }
    int r;
    while ((r = ms_flv_live_next(l, &b)) == 0)
        ms_blob_unref(b);
    assert_int_equal(r, -EPIPE);
    ms_flv_live_close(l);
    ms_flv_live_detach(l);
    ms_hub_free(hub);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_amf0_roundtrip),
        cmocka_unit_test(test_amf0_malformed),
        cmocka_unit_test(test_handshake_simple),
        cmocka_unit_test(test_handshake_digest),
        cmocka_unit_test(test_chunk_roundtrip),
        cmocka_unit_test(test_chunk_header_types),
        cmocka_unit_test(test_chunk_bounds),
        cmocka_unit_test(test_conn_publish),
        cmocka_unit_test(test_conn_refuse_and_errors),
        cmocka_unit_test(test_flv_h264),
        cmocka_unit_test(test_flv_h265_enhanced),
        cmocka_unit_test(test_flv_aac_and_file),
        cmocka_unit_test(test_flv_play),
        cmocka_unit_test(test_flv_live),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
