/* Basic and Digest authentication (RFC 2617). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "media/rtsp/auth.h"

static void test_rfc2617_example(void **state)
{
    (void)state;
    /* RFC 2617 section 3.5 */
    char resp[33];
    assert_int_equal(ms_auth_digest_response("Mufasa", "testrealm@host.com", "Circle Of Life",
                                             "GET", "/dir/index.html",
                                             "dcd98b7102dd2f0e8b11d0f600bfb0c093", "00000001",
                                             "0a4f113b", "auth", resp),
                     0);
    assert_string_equal(resp, "6629fae49393a05397450978507c4ef1");

    /* the challenge of the example parses */
    ms_auth_challenge_t ch;
    memset(&ch, 0, sizeof ch);
    assert_int_equal(ms_auth_challenge_parse(&ch, "Digest realm=\"testrealm@host.com\", "
                                                  "qop=\"auth,auth-int\", "
                                                  "nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", "
                                                  "opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""),
                     0);
    assert_int_equal(ch.scheme, MS_AUTH_DIGEST);
    assert_string_equal(ch.realm, "testrealm@host.com");
    assert_string_equal(ch.nonce, "dcd98b7102dd2f0e8b11d0f600bfb0c093");
    assert_string_equal(ch.opaque, "5ccc069c403ebaf9f0171e9517f40e41");
    assert_int_equal(ch.qop_auth, 1);

    /* RFC 2069 form (no qop) */
    assert_int_equal(ms_auth_digest_response(
                         "Mufasa", "testrealm@host.com", "Circle Of Life", "GET", "/dir/index.html",
                         "dcd98b7102dd2f0e8b11d0f600bfb0c093", NULL, NULL, NULL, resp),
                     0);
    assert_string_equal(resp, "670fd8c2df070c60b045671b8b24ff02");
}

static void test_challenge_choice(void **state)
{
    (void)state;
    ms_auth_challenge_t ch;
    /* two headers: Basic first, then Digest: Digest preferred */
    memset(&ch, 0, sizeof ch);
    assert_int_equal(ms_auth_challenge_parse(&ch, "Basic realm=\"IP Camera\""), 0);
    assert_int_equal(ch.scheme, MS_AUTH_BASIC);
    assert_int_equal(ms_auth_challenge_parse(&ch, "Digest realm=\"IP Camera\", nonce=\"abc\", "
                                                  "stale=\"FALSE\""),
                     0);
    assert_int_equal(ch.scheme, MS_AUTH_DIGEST);
    assert_int_equal(ch.qop_auth, 0);
    assert_string_equal(ch.nonce, "abc");
    /* one value with several challenges */
    memset(&ch, 0, sizeof ch);
    assert_int_equal(ms_auth_challenge_parse(&ch, "Newauth realm=\"apps\", type=1, "
                                                  "title=\"Login\", Digest realm=\"r\", "
                                                  "nonce=\"n1\", algorithm=MD5, Basic realm=\"r\""),
                     0);
    assert_int_equal(ch.scheme, MS_AUTH_DIGEST);
    assert_string_equal(ch.realm, "r");
    /* SHA-256 only: not supported */
    memset(&ch, 0, sizeof ch);
    assert_int_equal(ms_auth_challenge_parse(&ch, "Digest realm=\"r\", nonce=\"n\", "
                                                  "algorithm=SHA-256"),
                     -ENOTSUP);
    assert_int_equal(ch.scheme, MS_AUTH_NONE);
    assert_int_equal(ms_auth_challenge_parse(&ch, "Digest realm=\"r, nonce=n"), -EINVAL);
    assert_int_equal(ms_auth_challenge_parse(&ch, "=x"), -EINVAL);
}

static void test_client_server_roundtrip(void **state)
{
    (void)state;
    char nonce[64], hdr[512], auth[1024];
    assert_true(ms_auth_server_challenge("media \"server\"", nonce, sizeof nonce, hdr, sizeof hdr) >
                0);
    assert_int_equal(strlen(nonce), 32);
    ms_auth_challenge_t ch;
    memset(&ch, 0, sizeof ch);
    assert_int_equal(ms_auth_challenge_parse(&ch, hdr), 0);
    assert_int_equal(ch.scheme, MS_AUTH_DIGEST);
    assert_string_equal(ch.realm, "media \"server\"");
    assert_int_equal(ch.qop_auth, 1);
    assert_int_equal(ms_auth_authorization(&ch, "us\"er", "pa ss", "DESCRIBE",
                                           "rtsp://127.0.0.1:8554/cam", auth, sizeof auth) > 0,
                     1);
    assert_int_equal(ch.nc, 1);
    assert_non_null(strstr(auth, "nc=00000001"));

    ms_auth_credentials_t c;
    assert_int_equal(ms_auth_credentials_parse(auth, &c), 0);
    assert_string_equal(c.username, "us\"er");
    assert_string_equal(c.uri, "rtsp://127.0.0.1:8554/cam");
    assert_int_equal(ms_auth_verify(&c, "DESCRIBE", "media \"server\"", nonce, "pa ss", 0), 0);
    assert_int_equal(ms_auth_verify(&c, "DESCRIBE", "media \"server\"", nonce, "wrong", 0),
                     -EACCES);
    assert_int_equal(ms_auth_verify(&c, "SETUP", "media \"server\"", nonce, "pa ss", 0), -EACCES);
    assert_int_equal(ms_auth_verify(&c, "DESCRIBE", "media \"server\"", "othernonce", "pa ss", 0),
                     -EACCES);

    /* second request: nc increments */
    assert_true(ms_auth_authorization(&ch, "u", "p", "PLAY", "rtsp://h/", auth, sizeof auth) > 0);
    assert_non_null(strstr(auth, "nc=00000002"));

    /* legacy (no qop) challenge */
    memset(&ch, 0, sizeof ch);
    assert_int_equal(ms_auth_challenge_parse(&ch, "Digest realm=\"r\", nonce=\"n\""), 0);
    assert_true(ms_auth_authorization(&ch, "u", "p", "OPTIONS", "rtsp://h/", auth, sizeof auth) >
                0);
    assert_null(strstr(auth, "qop"));
    assert_int_equal(ms_auth_credentials_parse(auth, &c), 0);
    assert_int_equal(ms_auth_verify(&c, "OPTIONS", "r", "n", "p", 0), 0);

    /* Basic */
    memset(&ch, 0, sizeof ch);
    assert_int_equal(ms_auth_challenge_parse(&ch, "Basic realm=\"x\""), 0);
    assert_int_equal(ms_auth_authorization(&ch, "Aladdin", "open sesame", "DESCRIBE", "rtsp://h/",
                                           auth, sizeof auth),
                     34);
    assert_string_equal(auth, "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    assert_int_equal(ms_auth_credentials_parse(auth, &c), 0);
    assert_string_equal(c.username, "Aladdin");
    assert_string_equal(c.password, "open sesame");
    assert_int_equal(ms_auth_verify(&c, "DESCRIBE", "x", "", "open sesame", 1), 0);
    assert_int_equal(ms_auth_verify(&c, "DESCRIBE", "x", "", "open sesame", 0), -EACCES);
    assert_int_equal(ms_auth_credentials_parse("Basic !!!!", &c), -EINVAL);
    assert_int_equal(ms_auth_credentials_parse("Bearer x", &c), -ENOTSUP);
    assert_int_equal(ms_auth_credentials_parse("Digest username=\"u\"", &c), -EINVAL);
}

/* Basic: an empty user name is refused; a password of another length or
 * a prefix of the right one is refused. */
static void test_basic_checks(void **state)
{
    (void)state;
    ms_auth_credentials_t c;
    /* ":secret" */
    assert_int_equal(ms_auth_credentials_parse("Basic OnNlY3JldA==", &c), 0);
    assert_string_equal(c.username, "");
    assert_int_equal(ms_auth_verify(&c, "DESCRIBE", "x", "", "secret", 1), -EACCES);
    /* "admin:secre" and "admin:secret" */
    assert_int_equal(ms_auth_credentials_parse("Basic YWRtaW46c2VjcmU=", &c), 0);
    assert_int_equal(ms_auth_verify(&c, "DESCRIBE", "x", "", "secret", 1), -EACCES);
    assert_int_equal(ms_auth_credentials_parse("Basic YWRtaW46c2VjcmV0", &c), 0);
    assert_int_equal(ms_auth_verify(&c, "DESCRIBE", "x", "", "secret", 1), 0);
    assert_int_equal(ms_auth_verify(&c, "DESCRIBE", "x", "", "secret2", 1), -EACCES);
}

/* RFC 2617 3.2.2.5: the digest-uri names the Request-URI. */
static void test_digest_uri_match(void **state)
{
    (void)state;
    assert_true(ms_auth_digest_uri_match("rtsp://h:8554/priv", "rtsp://h:8554/priv"));
    assert_true(ms_auth_digest_uri_match("rtsp://other:1/priv", "rtsp://h:8554/priv"));
    assert_true(ms_auth_digest_uri_match("/priv?token=x", "rtsp://h/priv?token=x"));
    assert_true(ms_auth_digest_uri_match("RTSP://h/priv/trackID=0", "rtsp://h/priv/trackID=0"));
    assert_false(ms_auth_digest_uri_match("rtsp://h:8554/pub", "rtsp://h:8554/priv"));
    assert_false(ms_auth_digest_uri_match("rtsp://h:8554/priv", "rtsp://h:8554/priv2"));
    assert_false(ms_auth_digest_uri_match("rtsp://h:8554/priv2", "rtsp://h:8554/priv"));
    assert_false(ms_auth_digest_uri_match("rtsp://h/priv?from=1", "rtsp://h/priv"));
    assert_false(ms_auth_digest_uri_match("rtsp://h", "rtsp://h/priv"));
    assert_false(ms_auth_digest_uri_match("", "rtsp://h/priv"));
    assert_false(ms_auth_digest_uri_match("*", "rtsp://h/priv"));
}

/* RFC 2617 3.2.2: nc must increase per nonce; forgetting is never a replay. */
static void test_nonce_counts(void **state)
{
    (void)state;
    ms_auth_nc_table_t *t = ms_auth_nc_new(3);
    assert_non_null(t);
    assert_int_equal(ms_auth_nc_use(t, "n1", 100, 1), 0);
    assert_int_equal(ms_auth_nc_use(t, "n1", 100, 1), -EALREADY); /* replay */
    assert_int_equal(ms_auth_nc_use(t, "n1", 100, 2), 0);
    assert_int_equal(ms_auth_nc_use(t, "n1", 100, 5), 0); /* gaps are fine */
    assert_int_equal(ms_auth_nc_use(t, "n1", 100, 4), -EALREADY);
    /* RFC 2069 form: nc 0, single use */
    assert_int_equal(ms_auth_nc_use(t, "n2", 101, 0), 0);
    assert_int_equal(ms_auth_nc_use(t, "n2", 101, 0), -EALREADY);
    assert_int_equal(ms_auth_nc_use(t, "n3", 102, 1), 0);
    /* full: n1 (oldest) is forgotten; it and anything as old are stale */
    assert_int_equal(ms_auth_nc_use(t, "n4", 103, 1), 0);
    assert_int_equal(ms_auth_nc_use(t, "n1", 100, 6), -ESTALE);
    assert_int_equal(ms_auth_nc_use(t, "n0", 99, 1), -ESTALE);
    assert_int_equal(ms_auth_nc_use(t, "n3", 102, 2), 0); /* still known */
    ms_auth_nc_expire(t, 103);                            /* n2, n3 go */
    assert_int_equal(ms_auth_nc_use(t, "n4", 103, 1), -EALREADY);
    assert_int_equal(ms_auth_nc_use(t, "n5", 104, 1), 0);
    assert_int_equal(ms_auth_nc_use(t, "", 104, 1), -EINVAL);
    ms_auth_nc_free(t);
    assert_null(ms_auth_nc_new(0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc2617_example),         cmocka_unit_test(test_challenge_choice),
        cmocka_unit_test(test_client_server_roundtrip), cmocka_unit_test(test_basic_checks),
        cmocka_unit_test(test_digest_uri_match),        cmocka_unit_test(test_nonce_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
