/* Admin login tokens (util/logintoken.h): a good token, every byte altered,
 * expiry at the boundary, another key (secret rotation), another user or
 * password, truncated and overlong texts, bad arguments. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "util/kdf.h"
#include "util/logintoken.h"

static const uint8_t ID[MS_LOGIN_ID_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

static void keys(uint8_t k1[MS_KDF_KEY_LEN], uint8_t k2[MS_KDF_KEY_LEN])
{
    assert_int_equal(ms_kdf_derive("cluster secret one", MS_KDF_LOGIN, k1), 0);
    assert_int_equal(ms_kdf_derive("cluster secret two", MS_KDF_LOGIN, k2), 0);
}

static void test_good(void **st)
{
    (void)st;
    uint8_t k[MS_KDF_KEY_LEN], k2[MS_KDF_KEY_LEN];
    keys(k, k2);
    char tok[MS_LOGIN_TOKEN_MAX];
    int n = ms_login_token_make(k, "admin", "pw", 1000, 2000, ID, tok, sizeof tok);
    assert_int_equal(n, 87);
    assert_int_equal((int)strlen(tok), n);
    assert_int_equal(
        strspn(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
        strlen(tok));
    int64_t e = 0;
    assert_int_equal(ms_login_token_verify(tok, k, "admin", "pw", 1000, &e), 0);
    assert_int_equal(e, 2000);
    assert_int_equal(ms_login_token_verify(tok, k, "admin", "pw", 1999, NULL), 0);
    /* Another id: another token, both valid. */
    uint8_t id2[MS_LOGIN_ID_LEN] = {0};
    char tok2[MS_LOGIN_TOKEN_MAX];
    assert_int_equal(ms_login_token_make(k, "admin", "pw", 1000, 2000, id2, tok2, sizeof tok2), 87);
    assert_string_not_equal(tok, tok2);
    assert_int_equal(ms_login_token_verify(tok2, k, "admin", "pw", 1500, NULL), 0);
    /* An empty password is a password like any other. */
    assert_int_equal(ms_login_token_make(k, "admin", "", 1000, 2000, ID, tok2, sizeof tok2), 87);
    assert_int_equal(ms_login_token_verify(tok2, k, "admin", "", 1500, NULL), 0);
    assert_int_equal(ms_login_token_verify(tok2, k, "admin", "pw", 1500, NULL), MS_LOGIN_ETAMPERED);
}

/* A known answer computed independently of this code (HKDF and HMAC of
 * Python's hmac/hashlib, docs/security.md layout): key from "fuzz secret",
 * user "admin", password "secret", issued 500, expires 2000, id 0..15. */
static void test_known_answer(void **st)
{
    (void)st;
    static const char *KAT = "AQAAAAAAAAH0AAAAAAAAB9AAAQIDBAUGBwgJCgsMDQ4PmwkbtRKz0Ma7QxnIXSzLYp_"
                             "8DwXJhphmDPtW-lpNBcs";
    uint8_t k[MS_KDF_KEY_LEN], id[MS_LOGIN_ID_LEN];
    assert_int_equal(ms_kdf_derive("fuzz secret", MS_KDF_LOGIN, k), 0);
    for (int i = 0; i < MS_LOGIN_ID_LEN; i++)
        id[i] = (uint8_t)i;
    char tok[MS_LOGIN_TOKEN_MAX];
    assert_int_equal(ms_login_token_make(k, "admin", "secret", 500, 2000, id, tok, sizeof tok), 87);
    assert_string_equal(tok, KAT);
    int64_t e = 0;
    assert_int_equal(ms_login_token_verify(KAT, k, "admin", "secret", 1999, &e), 0);
    assert_int_equal(e, 2000);
}

static void test_altered(void **st)
{
    (void)st;
    uint8_t k[MS_KDF_KEY_LEN], k2[MS_KDF_KEY_LEN];
    keys(k, k2);
    char tok[MS_LOGIN_TOKEN_MAX];
    assert_int_equal(ms_login_token_make(k, "admin", "pw", 1000, 2000, ID, tok, sizeof tok), 87);
    /* Every character changed to another of the alphabet is refused (the
     * last one carries 2 unused bits: changing them is a decoding error). */
    for (size_t i = 0; i < 87; i++) {
        char t[MS_LOGIN_TOKEN_MAX];
        memcpy(t, tok, sizeof t);
        t[i] = t[i] == 'A' ? 'B' : 'A';
        assert_int_equal(ms_login_token_verify(t, k, "admin", "pw", 1500, NULL),
                         MS_LOGIN_ETAMPERED);
    }
    /* A later expiry written into an intercepted token does not verify. */
    char t[MS_LOGIN_TOKEN_MAX];
    assert_int_equal(ms_login_token_make(k, "admin", "pw", 1000, 900000, ID, t, sizeof t), 87);
    memcpy(t + 44, tok + 44, 44); /* body (expiry) of one, MAC of the other */
    assert_int_equal(ms_login_token_verify(t, k, "admin", "pw", 1500, NULL), MS_LOGIN_ETAMPERED);
}

static void test_expired(void **st)
{
    (void)st;
    uint8_t k[MS_KDF_KEY_LEN], k2[MS_KDF_KEY_LEN];
    keys(k, k2);
    char tok[MS_LOGIN_TOKEN_MAX];
    assert_int_equal(ms_login_token_make(k, "admin", "pw", 1000, 1001, ID, tok, sizeof tok), 87);
    int64_t e = 0;
    assert_int_equal(ms_login_token_verify(tok, k, "admin", "pw", 1000, NULL), 0);
    assert_int_equal(ms_login_token_verify(tok, k, "admin", "pw", 1001, &e), MS_LOGIN_EEXPIRED);
    assert_int_equal(e, 1001);
    assert_int_equal(ms_login_token_verify(tok, k, "admin", "pw", INT64_MAX, NULL),
                     MS_LOGIN_EEXPIRED);
    /* An expired token under another key is tampered, not expired. */
    assert_int_equal(ms_login_token_verify(tok, k2, "admin", "pw", 5000, NULL), MS_LOGIN_ETAMPERED);
}

static void test_wrong_key_user_password(void **st)
{
    (void)st;
    uint8_t k[MS_KDF_KEY_LEN], k2[MS_KDF_KEY_LEN], kt[MS_KDF_KEY_LEN];
    keys(k, k2);
    /* The same secret under another label is another key. */
    assert_int_equal(ms_kdf_derive("cluster secret one", MS_KDF_TOKEN, kt), 0);
    char tok[MS_LOGIN_TOKEN_MAX];
    assert_int_equal(ms_login_token_make(k, "admin", "pw", 1000, 2000, ID, tok, sizeof tok), 87);
    assert_int_equal(ms_login_token_verify(tok, k2, "admin", "pw", 1500, NULL), MS_LOGIN_ETAMPERED);
    assert_int_equal(ms_login_token_verify(tok, kt, "admin", "pw", 1500, NULL), MS_LOGIN_ETAMPERED);
    assert_int_equal(ms_login_token_verify(tok, k, "root", "pw", 1500, NULL), MS_LOGIN_ETAMPERED);
    assert_int_equal(ms_login_token_verify(tok, k, "Admin", "pw", 1500, NULL), MS_LOGIN_ETAMPERED);
    assert_int_equal(ms_login_token_verify(tok, k, "admin", "pw2", 1500, NULL), MS_LOGIN_ETAMPERED);
    /* user and password are hashed separately: no shifting of bytes between them. */
    assert_int_equal(ms_login_token_verify(tok, k, "admi", "npw", 1500, NULL), MS_LOGIN_ETAMPERED);
}

static void test_truncated_and_bad(void **st)
{
    (void)st;
    uint8_t k[MS_KDF_KEY_LEN], k2[MS_KDF_KEY_LEN];
    keys(k, k2);
    char tok[MS_LOGIN_TOKEN_MAX];
    assert_int_equal(ms_login_token_make(k, "admin", "pw", 1000, 2000, ID, tok, sizeof tok), 87);
    for (size_t n = 0; n < 87; n++) {
        char t[MS_LOGIN_TOKEN_MAX];
        memcpy(t, tok, n);
        t[n] = '\0';
        assert_int_equal(ms_login_token_verify(t, k, "admin", "pw", 1500, NULL),
                         MS_LOGIN_ETAMPERED);
    }
    char longer[200];
    memset(longer, 'A', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    memcpy(longer, tok, 87);
    assert_int_equal(ms_login_token_verify(longer, k, "admin", "pw", 1500, NULL),
                     MS_LOGIN_ETAMPERED);
    longer[88] = '\0'; /* one character more */
    assert_int_equal(ms_login_token_verify(longer, k, "admin", "pw", 1500, NULL),
                     MS_LOGIN_ETAMPERED);
    /* Padding, whitespace, the standard alphabet: refused. */
    char t[MS_LOGIN_TOKEN_MAX + 4];
    snprintf(t, sizeof t, "%s=", tok);
    assert_int_equal(ms_login_token_verify(t, k, "admin", "pw", 1500, NULL), MS_LOGIN_ETAMPERED);
    snprintf(t, sizeof t, " %s", tok);
    assert_int_equal(ms_login_token_verify(t, k, "admin", "pw", 1500, NULL), MS_LOGIN_ETAMPERED);
    /* A playback token is not a login token. */
    assert_int_equal(ms_login_token_verify("AQAAAAAAAAfQAAAAAAAAAAAA", k, "admin", "pw", 1, NULL),
                     MS_LOGIN_ETAMPERED);
    /* Bad arguments. */
    assert_int_equal(ms_login_token_make(k, "admin", "pw", 2000, 2000, ID, tok, sizeof tok),
                     -EINVAL);
    assert_int_equal(ms_login_token_make(k, "admin", "pw", -1, 2000, ID, tok, sizeof tok), -EINVAL);
    assert_int_equal(ms_login_token_make(k, NULL, "pw", 1000, 2000, ID, tok, sizeof tok), -EINVAL);
    assert_int_equal(ms_login_token_make(k, "admin", "pw", 1000, 2000, ID, tok, 87), -ENOSPC);
    assert_int_equal(ms_login_token_verify(NULL, k, "admin", "pw", 1, NULL), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),
        cmocka_unit_test(test_known_answer),
        cmocka_unit_test(test_altered),
        cmocka_unit_test(test_expired),
        cmocka_unit_test(test_wrong_key_user_password),
        cmocka_unit_test(test_truncated_and_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
