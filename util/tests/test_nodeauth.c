/* Join datagrams, node HTTP headers and the replay cache (util/nodeauth.h,
 * util/replay.h): a good message verifies once; a wrong key, another node
 * id, any altered field, a replay, an expired timestamp, truncated or
 * oversized input are refused; answers bind to the join they answer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/kdf.h"
#include "util/nodeauth.h"
#include "util/replay.h"

#define NOW 1700000000000LL

static uint8_t K[MS_KDF_KEY_LEN], K2[MS_KDF_KEY_LEN];

static int setup(void **st)
{
    (void)st;
    assert_int_equal(ms_kdf_derive("cluster secret", MS_KDF_JOIN, K), 0);
    assert_int_equal(ms_kdf_derive("other secret", MS_KDF_JOIN, K2), 0);
    return 0;
}

static void nonce_of(uint8_t n[16], unsigned v)
{
    memset(n, 0, 16);
    memcpy(n, &v, sizeof v);
    n[15] = 0x5a;
}

/* ---- replay cache -------------------------------------------------------- */

static void test_replay_basic(void **st)
{
    (void)st;
    ms_replay_t *rc = ms_replay_new(4);
    assert_non_null(rc);
    uint8_t a[16], b[16];
    nonce_of(a, 1);
    nonce_of(b, 2);
    assert_int_equal(ms_replay_check_add(rc, a, NOW + 100, NOW), 0);
    assert_int_equal(ms_replay_check_add(rc, a, NOW + 100, NOW + 50), -EALREADY);
    assert_int_equal(ms_replay_check_add(rc, b, NOW + 100, NOW), 0);
    /* expired: the same nonce is new again (the caller refuses its old
     * timestamp before asking) */
    assert_int_equal(ms_replay_check_add(rc, a, NOW + 300, NOW + 100), 0);
    assert_int_equal(ms_replay_check_add(rc, a, NOW + 300, NOW + 200), -EALREADY);
    ms_replay_free(rc);
}

static void test_replay_full_fails_closed(void **st)
{
    (void)st;
    ms_replay_t *rc = ms_replay_new(8);
    uint8_t n[16];
    for (unsigned i = 0; i < 8; i++) {
        nonce_of(n, 100 + i);
        assert_int_equal(ms_replay_check_add(rc, n, NOW + 1000, NOW), 0);
    }
    nonce_of(n, 999);
    assert_int_equal(ms_replay_check_add(rc, n, NOW + 1000, NOW), -EBUSY);
    /* every stored one is still refused: nothing was forgotten */
    for (unsigned i = 0; i < 8; i++) {
        nonce_of(n, 100 + i);
        assert_int_equal(ms_replay_check_add(rc, n, NOW + 1000, NOW + 1), -EALREADY);
    }
    /* once they expire, the space is reused (here at most 3 live at once) */
    for (int64_t i = 0; i < 50; i++) {
        nonce_of(n, 1000 + (unsigned)i);
        int64_t now = NOW + 1000 + 10 * i;
        assert_int_equal(ms_replay_check_add(rc, n, now + 25, now), 0);
    }
    assert_true(ms_replay_count(rc) <= 8);
    ms_replay_free(rc);
}

typedef struct {
    ms_replay_t *rc;
    unsigned base;
    int dup;
} thr_t;

static void *adder(void *ud)
{
    thr_t *t = ud;
    uint8_t n[16];
    for (unsigned i = 0; i < 2000; i++) {
        nonce_of(n, t->base + i);
        if (ms_replay_check_add(t->rc, n, NOW + 1000, NOW) != 0)
            t->dup++;
    }
    return NULL;
}

/* Two threads adding the same nonces: each is accepted exactly once. */
static void test_replay_threads(void **st)
{
    (void)st;
    ms_replay_t *rc = ms_replay_new(4096);
    thr_t a = {rc, 0, 0}, b = {rc, 0, 0};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, adder, &a);
    pthread_create(&tb, NULL, adder, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    assert_int_equal(a.dup + b.dup, 2000);
    assert_int_equal(ms_replay_count(rc), 2000);
    ms_replay_free(rc);
}

/* ---- join datagrams ------------------------------------------------------ */

static ms_join_msg_t join_req(void)
{
    ms_join_msg_t m = {.op = MS_JOIN_REQ, .from = 42, .to = 0, .ts_ms = NOW};
    nonce_of(m.nonce, 7);
    snprintf(m.addr, sizeof m.addr, "127.0.0.1:7001");
    return m;
}

static void test_join_roundtrip(void **st)
{
    (void)st;
    ms_join_msg_t m = join_req(), d;
    char buf[MS_JOIN_MAX + 1];
    int n = ms_join_encode(K, &m, buf, sizeof buf);
    assert_true(n > 0 && n <= MS_JOIN_MAX);
    assert_int_equal(strncmp(buf, "MSJ1 join 42 0 1700000000000 ", 29), 0);
    ms_replay_t *rc = ms_replay_new(16);
    assert_int_equal(ms_join_decode(K, buf, (size_t)n, NOW + 29000, rc, &d), 0);
    assert_int_equal(d.op, MS_JOIN_REQ);
    assert_int_equal(d.from, 42);
    assert_string_equal(d.addr, "127.0.0.1:7001");
    assert_memory_equal(d.nonce, m.nonce, 16);
    /* the same datagram again: a replay */
    assert_int_equal(ms_join_decode(K, buf, (size_t)n, NOW + 1, rc, &d), -EALREADY);
    /* wrong key */
    assert_int_equal(ms_join_decode(K2, buf, (size_t)n, NOW, NULL, &d), -EACCES);
    /* expired / from the future */
    assert_int_equal(ms_join_decode(K, buf, (size_t)n, NOW + 30001, NULL, &d), -ETIME);
    assert_int_equal(ms_join_decode(K, buf, (size_t)n, NOW - 30001, NULL, &d), -ETIME);
    ms_replay_free(rc);
}

/* Any single changed byte before the MAC (the id, the address, the
 * timestamp, the nonce, the op) breaks it; so does one in the MAC. */
static void test_join_altered(void **st)
{
    (void)st;
    ms_join_msg_t m = join_req(), d;
    char buf[MS_JOIN_MAX + 1], alt[MS_JOIN_MAX + 1];
    int n = ms_join_encode(K, &m, buf, sizeof buf);
    for (int i = 0; i < n; i++) {
        memcpy(alt, buf, (size_t)n + 1);
        if (alt[i] == ' ')
            continue;
        alt[i] = alt[i] == '1' ? '2' : '1';
        int r = ms_join_decode(K, alt, (size_t)n, NOW, NULL, &d);
        assert_true(r == -EACCES || r == -EBADMSG);
    }
    /* another node's id, re-signed with another key: refused */
    m.from = 43;
    n = ms_join_encode(K2, &m, buf, sizeof buf);
    assert_int_equal(ms_join_decode(K, buf, (size_t)n, NOW, NULL, &d), -EACCES);
}

static void test_join_malformed(void **st)
{
    (void)st;
    ms_join_msg_t m = join_req(), d;
    char buf[MS_JOIN_MAX + 1];
    int n = ms_join_encode(K, &m, buf, sizeof buf);
    for (int cut = 0; cut < n; cut++)
        assert_int_not_equal(ms_join_decode(K, buf, (size_t)cut, NOW, NULL, &d), 0);
    char big[MS_JOIN_MAX + 2];
    memset(big, 'a', sizeof big);
    assert_int_equal(ms_join_decode(K, big, sizeof big, NOW, NULL, &d), -EBADMSG);
    /* a 255-byte address fits; 256 does not encode */
    memset(m.addr, 'h', 255);
    m.addr[255] = '\0';
    n = ms_join_encode(K, &m, buf, sizeof buf);
    assert_true(n > 0);
    assert_int_equal(ms_join_decode(K, buf, (size_t)n, NOW, NULL, &d), 0);
    assert_string_equal(d.addr, m.addr);
    snprintf(m.addr, sizeof m.addr, "has space");
    assert_int_equal(ms_join_encode(K, &m, buf, sizeof buf), -EINVAL);
    const char *junk[] = {"", "MSJ1", "MSJ1 join 42 0 1 00 - a b", "{\"op\":\"redirect\"}",
                          "MSJ1 join 042 0 1700000000000 00000000000000000000000000000000 - a "
                          "0000000000000000000000000000000000000000000000000000000000000000"};
    for (size_t i = 0; i < sizeof junk / sizeof *junk; i++)
        assert_int_equal(ms_join_decode(K, junk[i], strlen(junk[i]), NOW, NULL, &d), -EBADMSG);
}

/* The joiner accepts an answer only to a join it sent, once. */
static void test_join_answers(void **st)
{
    (void)st;
    ms_join_pending_t pend = {0};
    ms_join_msg_t req = join_req(), a = {.op = MS_JOIN_REDIRECT, .from = 1, .to = 42, .ts_ms = NOW},
                  d;
    ms_join_pending_add(&pend, req.nonce, NOW);
    nonce_of(a.nonce, 8);
    memcpy(a.reply_to, req.nonce, 16);
    snprintf(a.addr, sizeof a.addr, "127.0.0.1:7000");
    char buf[MS_JOIN_MAX + 1];
    int n = ms_join_encode(K, &a, buf, sizeof buf);
    assert_int_equal(ms_join_decode(K, buf, (size_t)n, NOW + 10, NULL, &d), 0);
    assert_int_equal(d.op, MS_JOIN_REDIRECT);
    assert_int_equal(d.to, 42);
    assert_string_equal(d.addr, "127.0.0.1:7000");
    assert_int_equal(ms_join_pending_take(&pend, d.reply_to, NOW + 10), 0);
    /* replayed answer: its join is consumed */
    assert_int_equal(ms_join_pending_take(&pend, d.reply_to, NOW + 20), -ENOENT);
    /* an answer to a join never sent */
    uint8_t other[16];
    nonce_of(other, 9);
    assert_int_equal(ms_join_pending_take(&pend, other, NOW), -ENOENT);
    /* an answer to a join sent too long ago */
    ms_join_pending_add(&pend, other, NOW);
    assert_int_equal(ms_join_pending_take(&pend, other, NOW + MS_NAUTH_SKEW_MS + 1), -ENOENT);
    /* the ring keeps the last MS_JOIN_PENDING */
    for (unsigned i = 0; i < MS_JOIN_PENDING + 1; i++) {
        nonce_of(other, 200 + i);
        ms_join_pending_add(&pend, other, NOW);
    }
    nonce_of(other, 200);
    assert_int_equal(ms_join_pending_take(&pend, other, NOW), -ENOENT);
    nonce_of(other, 201);
    assert_int_equal(ms_join_pending_take(&pend, other, NOW), 0);
    /* joining: no address; the old unauthenticated JSON answers are junk */
    ms_join_msg_t ok = {.op = MS_JOIN_ACCEPT, .from = 1, .to = 42, .ts_ms = NOW};
    n = ms_join_encode(K, &ok, buf, sizeof buf);
    assert_true(n > 0);
    assert_int_equal(ms_join_decode(K, buf, (size_t)n, NOW, NULL, &d), 0);
    assert_int_equal(d.op, MS_JOIN_ACCEPT);
    assert_string_equal(d.addr, "");
    /* field rules */
    ok.to = 0;
    assert_int_equal(ms_join_encode(K, &ok, buf, sizeof buf), -EINVAL);
    ok.to = 42;
    ok.from = 0;
    assert_int_equal(ms_join_encode(K, &ok, buf, sizeof buf), -EINVAL);
    ok.from = 1;
    assert_int_equal(ms_join_encode(K, &ok, buf, 10), -ENOSPC);
}

/* ---- node HTTP header ---------------------------------------------------- */

static void test_http_roundtrip(void **st)
{
    (void)st;
    uint8_t n[16];
    nonce_of(n, 77);
    char h[MS_NAUTH_HDR_MAX + 1];
    const char *body = "{\"a\":1}";
    int len = ms_nauth_http_sign(K, 3, "POST", "/api/v1/cluster/submit?x=1", body, strlen(body),
                                 NOW, n, h, sizeof h);
    assert_true(len > 0 && len <= MS_NAUTH_HDR_MAX);
    assert_int_equal(strncmp(h, "v2.3.1700000000000.", 19), 0);
    ms_replay_t *rc = ms_replay_new(16);
    uint64_t id = 0;
    assert_int_equal(ms_nauth_http_verify(K, h, "3", "POST", "/api/v1/cluster/submit?x=1", body,
                                          strlen(body), NOW + 1000, rc, &id),
                     0);
    assert_int_equal(id, 3);
    /* replay */
    assert_int_equal(ms_nauth_http_verify(K, h, "3", "POST", "/api/v1/cluster/submit?x=1", body,
                                          strlen(body), NOW + 2000, rc, &id),
                     -EALREADY);
    assert_int_equal(id, 0);
    /* X-MS-Node-Id absent: fine; another id: refused */
    assert_int_equal(ms_nauth_http_verify(K, h, NULL, "POST", "/api/v1/cluster/submit?x=1", body,
                                          strlen(body), NOW, NULL, &id),
                     0);
    assert_int_equal(ms_nauth_http_verify(K, h, "4", "POST", "/api/v1/cluster/submit?x=1", body,
                                          strlen(body), NOW, NULL, &id),
                     -EACCES);
    /* wrong key, altered method / path / query / body */
    assert_int_equal(ms_nauth_http_verify(K2, h, NULL, "POST", "/api/v1/cluster/submit?x=1", body,
                                          strlen(body), NOW, NULL, &id),
                     -EACCES);
    assert_int_equal(ms_nauth_http_verify(K, h, NULL, "GET", "/api/v1/cluster/submit?x=1", body,
                                          strlen(body), NOW, NULL, &id),
                     -EACCES);
    assert_int_equal(ms_nauth_http_verify(K, h, NULL, "POST", "/api/v1/cluster/submit?x=2", body,
                                          strlen(body), NOW, NULL, &id),
                     -EACCES);
    assert_int_equal(ms_nauth_http_verify(K, h, NULL, "POST", "/api/v1/cluster/submit?x=1",
                                          "{\"a\":2}", 7, NOW, NULL, &id),
                     -EACCES);
    /* expired, future */
    assert_int_equal(ms_nauth_http_verify(K, h, NULL, "POST", "/api/v1/cluster/submit?x=1", body,
                                          strlen(body), NOW + 30001, NULL, &id),
                     -ETIME);
    assert_int_equal(ms_nauth_http_verify(K, h, NULL, "POST", "/api/v1/cluster/submit?x=1", body,
                                          strlen(body), NOW - 30001, NULL, &id),
                     -ETIME);
    ms_replay_free(rc);
}

static void test_http_altered_header(void **st)
{
    (void)st;
    uint8_t n[16];
    nonce_of(n, 78);
    char h[MS_NAUTH_HDR_MAX + 1], alt[MS_NAUTH_HDR_MAX + 1];
    int len = ms_nauth_http_sign(K, 12345, "GET", "/api/v1/cluster", NULL, 0, NOW, n, h, sizeof h);
    uint64_t id;
    for (int i = 0; i < len; i++) {
        memcpy(alt, h, (size_t)len + 1);
        if (alt[i] == '.')
            continue;
        alt[i] = alt[i] == '1' ? '2' : '1';
        int r =
            ms_nauth_http_verify(K, alt, NULL, "GET", "/api/v1/cluster", NULL, 0, NOW, NULL, &id);
        assert_true(r == -EACCES || r == -EBADMSG);
    }
    for (int cut = 0; cut < len; cut++) {
        memcpy(alt, h, (size_t)cut);
        alt[cut] = '\0';
        assert_int_not_equal(
            ms_nauth_http_verify(K, alt, NULL, "GET", "/api/v1/cluster", NULL, 0, NOW, NULL, &id),
            0);
    }
    char big[400];
    snprintf(big, sizeof big, "%s%0200d", h, 0);
    assert_int_equal(
        ms_nauth_http_verify(K, big, NULL, "GET", "/api/v1/cluster", NULL, 0, NOW, NULL, &id),
        -EBADMSG);
    /* the old v1 format ("<ts>.<mac>") is refused */
    assert_int_equal(
        ms_nauth_http_verify(K, "1700000000000.00", NULL, "GET", "/", NULL, 0, NOW, NULL, &id),
        -EBADMSG);
    assert_int_equal(ms_nauth_http_sign(K, 0, "GET", "/", NULL, 0, NOW, n, h, sizeof h), -EINVAL);
    assert_int_equal(ms_nauth_http_sign(K, 1, "GET", "/\n", NULL, 0, NOW, n, h, sizeof h), -EINVAL);
    assert_int_equal(ms_nauth_http_sign(K, 1, "GET", "/", NULL, 0, NOW, n, h, 20), -ENOSPC);
}

int main(void)
{
    const struct CMUnitTest t[] = {
        cmocka_unit_test(test_replay_basic),        cmocka_unit_test(test_replay_full_fails_closed),
        cmocka_unit_test(test_replay_threads),      cmocka_unit_test(test_join_roundtrip),
        cmocka_unit_test(test_join_altered),        cmocka_unit_test(test_join_malformed),
        cmocka_unit_test(test_join_answers),        cmocka_unit_test(test_http_roundtrip),
        cmocka_unit_test(test_http_altered_header),
    };
    return cmocka_run_group_tests(t, setup, NULL);
}
