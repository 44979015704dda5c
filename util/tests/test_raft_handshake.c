/* The raft handshake codec (util/raft_handshake.h): a good exchange, the
 * MACs written out independently with OpenSSL's HMAC() (RFC 2104), a wrong
 * key, wrong ids, replayed and altered messages, every truncation, and
 * fields over their bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "util/kdf.h"
#include "util/raft_handshake.h"

#define ID_C 0x1111222233334444ULL
#define ID_A 0x0555666677778888ULL
#define ADDR "127.0.0.1:7001"

static uint8_t key[MS_RHS_KEY_LEN], other[MS_RHS_KEY_LEN];

static int setup(void **st)
{
    (void)st;
    if (ms_kdf_derive("cluster secret", MS_KDF_RAFT, key) < 0 ||
        ms_kdf_derive("another secret", MS_KDF_RAFT, other) < 0)
        return -1;
    return 0;
}

static void nonce_fill(uint8_t n[MS_RHS_NONCE_LEN], uint8_t v)
{
    for (int i = 0; i < MS_RHS_NONCE_LEN; i++)
        n[i] = (uint8_t)(v + i);
}

typedef struct {
    ms_rhs_t c, a;
    uint8_t hello[MS_RHS_HELLO_MAX], chal[MS_RHS_CHALLENGE_LEN], proof[MS_RHS_PROOF_LEN];
    size_t hello_len;
} run_t;

/* A full exchange with acceptor key akey; returns the first error. */
static int run(run_t *r, const uint8_t *ckey, const uint8_t *akey, uint64_t target, uint8_t nc,
               uint8_t na)
{
    uint8_t n1[MS_RHS_NONCE_LEN], n2[MS_RHS_NONCE_LEN];
    nonce_fill(n1, nc);
    nonce_fill(n2, na);
    int rc = ms_rhs_connect_start(&r->c, ckey, ID_C, ADDR, target, n1, r->hello, &r->hello_len);
    if (rc < 0)
        return rc;
    int alen = ms_rhs_hello_addr_len(r->hello, MS_RHS_HELLO_HDR);
    if (alen < 0)
        return alen;
    if ((size_t)alen + MS_RHS_HELLO_HDR != r->hello_len)
        return -999;
    rc = ms_rhs_accept_hello(&r->a, akey, ID_A, r->hello, r->hello_len, n2, r->chal);
    if (rc < 0)
        return rc;
    rc = ms_rhs_connect_finish(&r->c, r->chal, sizeof r->chal, r->proof);
    if (rc < 0)
        return rc;
    return ms_rhs_accept_finish(&r->a, r->proof, sizeof r->proof);
}

static void test_good(void **st)
{
    (void)st;
    run_t r;
    assert_int_equal(run(&r, key, key, ID_A, 1, 2), 0);
    assert_int_equal(r.hello_len, MS_RHS_HELLO_HDR + strlen(ADDR));
    assert_memory_equal(r.hello, "MSRH\x01\x01", 6);
    assert_int_equal(r.hello[6], strlen(ADDR));
    assert_memory_equal(r.hello + MS_RHS_HELLO_HDR, ADDR, strlen(ADDR));
    assert_true(r.a.peer_id == ID_C);
    assert_string_equal(r.a.peer_address, ADDR);
    assert_memory_equal(r.chal, "MSRH\x01\x02\x00\x00", 8);
    assert_memory_equal(r.proof, "MSRH\x01\x03\x00\x00", 8);

    /* the MACs as the header documents them, with plain HMAC-SHA256 */
    uint8_t m[64], want[32];
    unsigned mlen = 0;
    uint8_t buf[512];
    size_t n = 0;
    memcpy(buf, "MSRH1 accept", 13); /* with its NUL */
    n = 13;
    memcpy(buf + n, r.hello, r.hello_len);
    n += r.hello_len;
    memcpy(buf + n, r.chal, 56);
    n += 56;
    HMAC(EVP_sha256(), key, sizeof key, buf, n, m, &mlen);
    assert_int_equal(mlen, 32);
    assert_memory_equal(m, r.chal + 56, 32);
    memcpy(buf, "MSRH1 connect", 14);
    n = 14;
    memcpy(buf + n, r.hello, r.hello_len);
    n += r.hello_len;
    memcpy(buf + n, r.chal, sizeof r.chal);
    n += sizeof r.chal;
    memcpy(buf + n, r.proof, 8);
    n += 8;
    HMAC(EVP_sha256(), key, sizeof key, buf, n, want, &mlen);
    assert_memory_equal(want, r.proof + 8, 32);

    /* fresh nonces, fresh transcript */
    run_t r2;
    assert_int_equal(run(&r2, key, key, ID_A, 3, 4), 0);
    assert_memory_not_equal(r.chal + 56, r2.chal + 56, 32);
    assert_memory_not_equal(r.proof + 8, r2.proof + 8, 32);
}

static void test_wrong_key(void **st)
{
    (void)st;
    run_t r;
    /* the connector notices first: the acceptor's MAC does not verify */
    assert_int_equal(run(&r, other, key, ID_A, 1, 2), MS_RHS_EBADMAC);
    assert_int_equal(run(&r, key, other, ID_A, 1, 2), MS_RHS_EBADMAC);
    /* a connector that ignores the bad challenge and answers with its own
     * key: a PROOF under the wrong key */
    run_t w;
    assert_int_equal(run(&w, other, other, ID_A, 1, 2), 0);
    uint8_t n2[MS_RHS_NONCE_LEN];
    nonce_fill(n2, 2);
    ms_rhs_t a;
    uint8_t chal[MS_RHS_CHALLENGE_LEN];
    assert_int_equal(ms_rhs_accept_hello(&a, key, ID_A, w.hello, w.hello_len, n2, chal), 0);
    assert_int_equal(ms_rhs_accept_finish(&a, w.proof, sizeof w.proof), MS_RHS_EBADMAC);
}

static void test_wrong_id(void **st)
{
    (void)st;
    run_t r;
    /* dialled another node: the acceptor is not the target */
    assert_int_equal(run(&r, key, key, ID_A + 1, 1, 2), MS_RHS_EWRONGID);
    /* a HELLO from our own id */
    uint8_t n[MS_RHS_NONCE_LEN], hello[MS_RHS_HELLO_MAX], chal[MS_RHS_CHALLENGE_LEN];
    size_t hl = 0;
    ms_rhs_t c, a;
    nonce_fill(n, 7);
    assert_int_equal(ms_rhs_connect_start(&c, key, ID_A, ADDR, ID_A, n, hello, &hl), 0);
    assert_int_equal(ms_rhs_accept_hello(&a, key, ID_A, hello, hl, n, chal), MS_RHS_EWRONGID);
    /* zero ids are refused when building */
    assert_int_equal(ms_rhs_connect_start(&c, key, 0, ADDR, ID_A, n, hello, &hl), -EINVAL);
    assert_int_equal(ms_rhs_connect_start(&c, key, ID_C, ADDR, 0, n, hello, &hl), -EINVAL);
    /* a HELLO whose from_id is zero */
    assert_int_equal(ms_rhs_connect_start(&c, key, ID_C, ADDR, ID_A, n, hello, &hl), 0);
    memset(hello + 8, 0, 8);
    assert_int_equal(ms_rhs_accept_hello(&a, key, ID_A, hello, hl, n, chal), MS_RHS_EWRONGID);
}

/* A recorded PROOF or CHALLENGE does not pass on a new connection. */
static void test_replay(void **st)
{
    (void)st;
    run_t old, r;
    assert_int_equal(run(&old, key, key, ID_A, 1, 2), 0);
    /* the attacker replays the whole connector side: same HELLO, old PROOF;
     * the acceptor's nonce is new */
    uint8_t n2[MS_RHS_NONCE_LEN], chal[MS_RHS_CHALLENGE_LEN], proof[MS_RHS_PROOF_LEN];
    nonce_fill(n2, 9);
    ms_rhs_t a;
    assert_int_equal(ms_rhs_accept_hello(&a, key, ID_A, old.hello, old.hello_len, n2, chal), 0);
    assert_int_equal(ms_rhs_accept_finish(&a, old.proof, sizeof old.proof), MS_RHS_EBADMAC);
    /* the acceptor side replayed to a new connector (new nonce) */
    uint8_t n1[MS_RHS_NONCE_LEN];
    nonce_fill(n1, 11);
    assert_int_equal(ms_rhs_connect_start(&r.c, key, ID_C, ADDR, ID_A, n1, r.hello, &r.hello_len),
                     0);
    assert_int_equal(ms_rhs_connect_finish(&r.c, old.chal, sizeof old.chal, proof), MS_RHS_EBADMAC);
    /* a finished handshake takes nothing more */
    assert_int_equal(ms_rhs_accept_finish(&old.a, old.proof, sizeof old.proof), -EINVAL);
    assert_int_equal(ms_rhs_connect_finish(&old.c, old.chal, sizeof old.chal, proof), -EINVAL);
}

/* Any byte flipped in any message ends the handshake. */
static void test_altered(void **st)
{
    (void)st;
    run_t g;
    assert_int_equal(run(&g, key, key, ID_A, 1, 2), 0);
    uint8_t n2[MS_RHS_NONCE_LEN], chal[MS_RHS_CHALLENGE_LEN], proof[MS_RHS_PROOF_LEN];
    nonce_fill(n2, 2);
    for (size_t i = 0; i < g.hello_len; i++) {
        /* HELLO altered on the way: the acceptor either refuses it or
         * MACs what it saw, which the connector then refuses */
        run_t r;
        uint8_t n1[MS_RHS_NONCE_LEN];
        nonce_fill(n1, 1);
        assert_int_equal(
            ms_rhs_connect_start(&r.c, key, ID_C, ADDR, ID_A, n1, r.hello, &r.hello_len), 0);
        uint8_t bad[MS_RHS_HELLO_MAX];
        memcpy(bad, r.hello, r.hello_len);
        bad[i] ^= 0x01;
        ms_rhs_t a;
        int rc = ms_rhs_accept_hello(&a, key, ID_A, bad, r.hello_len, n2, chal);
        if (rc == 0)
            rc = ms_rhs_connect_finish(&r.c, chal, sizeof chal, proof);
        assert_true(rc < 0);
    }
    for (size_t i = 0; i < MS_RHS_CHALLENGE_LEN; i++) {
        run_t r;
        uint8_t n1[MS_RHS_NONCE_LEN];
        nonce_fill(n1, 1);
        assert_int_equal(
            ms_rhs_connect_start(&r.c, key, ID_C, ADDR, ID_A, n1, r.hello, &r.hello_len), 0);
        uint8_t bad[MS_RHS_CHALLENGE_LEN];
        memcpy(bad, g.chal, sizeof bad);
        bad[i] ^= 0x80;
        assert_true(ms_rhs_connect_finish(&r.c, bad, sizeof bad, proof) < 0);
    }
    for (size_t i = 0; i < MS_RHS_PROOF_LEN; i++) {
        ms_rhs_t a;
        assert_int_equal(ms_rhs_accept_hello(&a, key, ID_A, g.hello, g.hello_len, n2, chal), 0);
        uint8_t bad[MS_RHS_PROOF_LEN];
        memcpy(bad, g.proof, sizeof bad);
        bad[i] ^= 0x02;
        int rc = ms_rhs_accept_finish(&a, bad, sizeof bad);
        assert_true(rc == MS_RHS_EBADMAC || rc == MS_RHS_EMALFORMED);
    }
}

static void test_truncated(void **st)
{
    (void)st;
    run_t g;
    assert_int_equal(run(&g, key, key, ID_A, 1, 2), 0);
    uint8_t n2[MS_RHS_NONCE_LEN], chal[MS_RHS_CHALLENGE_LEN], proof[MS_RHS_PROOF_LEN];
    nonce_fill(n2, 2);
    for (size_t len = 0; len < MS_RHS_HELLO_HDR; len++)
        assert_int_equal(ms_rhs_hello_addr_len(g.hello, len), MS_RHS_EMALFORMED);
    for (size_t len = 0; len < g.hello_len; len++) {
        ms_rhs_t a;
        assert_int_equal(ms_rhs_accept_hello(&a, key, ID_A, g.hello, len, n2, chal),
                         MS_RHS_EMALFORMED);
    }
    for (size_t len = 0; len < MS_RHS_CHALLENGE_LEN; len++) {
        run_t r;
        uint8_t n1[MS_RHS_NONCE_LEN];
        nonce_fill(n1, 1);
        assert_int_equal(
            ms_rhs_connect_start(&r.c, key, ID_C, ADDR, ID_A, n1, r.hello, &r.hello_len), 0);
        assert_int_equal(ms_rhs_connect_finish(&r.c, g.chal, len, proof), MS_RHS_EMALFORMED);
    }
    for (size_t len = 0; len < MS_RHS_PROOF_LEN; len++) {
        ms_rhs_t a;
        assert_int_equal(ms_rhs_accept_hello(&a, key, ID_A, g.hello, g.hello_len, n2, chal), 0);
        assert_int_equal(ms_rhs_accept_finish(&a, g.proof, len), MS_RHS_EMALFORMED);
    }
    /* one byte too many is as wrong as one too few */
    uint8_t big[MS_RHS_HELLO_MAX + 1] = {0};
    memcpy(big, g.hello, g.hello_len);
    ms_rhs_t a;
    assert_int_equal(ms_rhs_accept_hello(&a, key, ID_A, big, g.hello_len + 1, n2, chal),
                     MS_RHS_EMALFORMED);
    assert_int_equal(ms_rhs_accept_hello(&a, key, ID_A, NULL, 0, n2, chal), MS_RHS_EMALFORMED);
}

static void test_field_bounds(void **st)
{
    (void)st;
    uint8_t n[MS_RHS_NONCE_LEN], hello[MS_RHS_HELLO_MAX], chal[MS_RHS_CHALLENGE_LEN];
    size_t hl = 0;
    ms_rhs_t c, a;
    nonce_fill(n, 5);
    char addr[MS_RHS_ADDR_MAX + 2];
    memset(addr, 'a', sizeof addr);
    addr[MS_RHS_ADDR_MAX] = '\0'; /* the longest allowed */
    assert_int_equal(ms_rhs_connect_start(&c, key, ID_C, addr, ID_A, n, hello, &hl), 0);
    assert_int_equal(hl, MS_RHS_HELLO_MAX);
    assert_int_equal(ms_rhs_hello_addr_len(hello, MS_RHS_HELLO_HDR), MS_RHS_ADDR_MAX);
    assert_int_equal(ms_rhs_accept_hello(&a, key, ID_A, hello, hl, n, chal), 0);
    assert_string_equal(a.peer_address, addr);
    addr[MS_RHS_ADDR_MAX] = 'a';
    addr[MS_RHS_ADDR_MAX + 1] = '\0'; /* one too long */
    assert_int_equal(ms_rhs_connect_start(&c, key, ID_C, addr, ID_A, n, hello, &hl), -EINVAL);
    assert_int_equal(ms_rhs_connect_start(&c, key, ID_C, "", ID_A, n, hello, &hl), -EINVAL);
    assert_int_equal(ms_rhs_connect_start(&c, key, ID_C, "a b:1", ID_A, n, hello, &hl), -EINVAL);
    assert_int_equal(ms_rhs_connect_start(&c, key, ID_C, NULL, ID_A, n, hello, &hl), -EINVAL);

    /* an address length of zero, a control byte in the address, nonzero
     * reserved bytes, another version or type */
    assert_int_equal(ms_rhs_connect_start(&c, key, ID_C, ADDR, ID_A, n, hello, &hl), 0);
    uint8_t bad[MS_RHS_HELLO_MAX];
    memcpy(bad, hello, hl);
    bad[6] = 0;
    assert_int_equal(ms_rhs_hello_addr_len(bad, MS_RHS_HELLO_HDR), MS_RHS_EMALFORMED);
    memcpy(bad, hello, hl);
    bad[MS_RHS_HELLO_HDR + 3] = '\n';
    assert_int_equal(ms_rhs_accept_hello(&a, key, ID_A, bad, hl, n, chal), MS_RHS_EMALFORMED);
    const size_t pos[] = {0, 3, 4, 5, 7};
    for (size_t i = 0; i < sizeof pos / sizeof pos[0]; i++) {
        memcpy(bad, hello, hl);
        bad[pos[i]] ^= 0x10;
        assert_int_equal(ms_rhs_hello_addr_len(bad, MS_RHS_HELLO_HDR), MS_RHS_EMALFORMED);
    }
    /* libraft's own preamble (protocol 1, little-endian) is not a HELLO */
    uint8_t pre[MS_RHS_HELLO_HDR] = {1};
    assert_int_equal(ms_rhs_hello_addr_len(pre, sizeof pre), MS_RHS_EMALFORMED);
    assert_string_equal(ms_rhs_strerror(MS_RHS_EMALFORMED), "malformed");
    assert_string_equal(ms_rhs_strerror(MS_RHS_EBADMAC), "bad MAC");
    assert_string_equal(ms_rhs_strerror(MS_RHS_EWRONGID), "wrong id");
    assert_string_equal(ms_rhs_strerror(-ETIMEDOUT), "timeout");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),         cmocka_unit_test(test_wrong_key),
        cmocka_unit_test(test_wrong_id),     cmocka_unit_test(test_replay),
        cmocka_unit_test(test_altered),      cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_field_bounds),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
