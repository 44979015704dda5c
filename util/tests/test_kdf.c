/* HKDF key derivation: RFC 5869 behaviour through our labels (same input,
 * same key; another label or secret, another key), argument checks. */
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

static void test_derive(void **st)
{
    (void)st;
    uint8_t a[MS_KDF_KEY_LEN], b[MS_KDF_KEY_LEN], c[MS_KDF_KEY_LEN], d[MS_KDF_KEY_LEN];
    assert_int_equal(ms_kdf_derive("s3cret", MS_KDF_RAFT, a), 0);
    assert_int_equal(ms_kdf_derive("s3cret", MS_KDF_RAFT, b), 0);
    assert_memory_equal(a, b, sizeof a);
    assert_int_equal(ms_kdf_derive("s3cret", MS_KDF_JOIN, c), 0);
    assert_memory_not_equal(a, c, sizeof a);
    assert_int_equal(ms_kdf_derive("s3cret!", MS_KDF_RAFT, d), 0);
    assert_memory_not_equal(a, d, sizeof a);
}

/* The same derivation written out from RFC 5869 section 2 with plain HMAC:
 * PRK = HMAC(salt, IKM); T(1) = HMAC(PRK, info | 0x01). */
static void test_matches_rfc5869(void **st)
{
    (void)st;
    const char *secret = "cluster secret", *label = MS_KDF_CHTTP, *salt = "mediaserver-kdf-v1";
    uint8_t prk[32], t1[32], msg[128];
    unsigned n = 0;
    HMAC(EVP_sha256(), salt, (int)strlen(salt), (const uint8_t *)secret, strlen(secret), prk, &n);
    assert_int_equal(n, 32);
    size_t ll = strlen(label);
    memcpy(msg, label, ll);
    msg[ll] = 1;
    HMAC(EVP_sha256(), prk, 32, msg, ll + 1, t1, &n);
    uint8_t got[MS_KDF_KEY_LEN];
    assert_int_equal(ms_kdf_derive(secret, label, got), 0);
    assert_memory_equal(got, t1, 32);
}

static void test_bad_args(void **st)
{
    (void)st;
    uint8_t k[MS_KDF_KEY_LEN];
    assert_int_equal(ms_kdf_derive("", MS_KDF_RAFT, k), -EINVAL);
    assert_int_equal(ms_kdf_derive(NULL, MS_KDF_RAFT, k), -EINVAL);
    assert_int_equal(ms_kdf_derive("x", "", k), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_derive),
        cmocka_unit_test(test_matches_rfc5869),
        cmocka_unit_test(test_bad_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
