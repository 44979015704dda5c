/* Tokens (HMAC-SHA256, base64url) and IP/CIDR/forwarding helpers: round
 * trips, one flipped character, wrong stream/IP/mode, expiry, archive window,
 * secret rotation, CIDR edges (/0 /32 /128, IPv4-mapped), and forwarding
 * chains with and without a trusted proxy. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "util/ipaddr.h"
#include "util/token.h"

static const char *UID = "0d6b6c1e-3f0a-4c5e-9a55-2f4f0b7a2a11";
static const char *UID2 = "0d6b6c1e-3f0a-4c5e-9a55-2f4f0b7a2a12";
static const char *SECRET = "node secret one";

static void test_b64url(void **st)
{
    (void)st;
    /* RFC 4648 section 10 vectors, unpadded, in the URL alphabet. */
    static const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *out[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        char t[16];
        uint8_t b[16];
        assert_int_equal(ms_b64url_encode((const uint8_t *)in[i], strlen(in[i]), t, sizeof t),
                         (int)strlen(out[i]));
        assert_string_equal(t, out[i]);
        int n = ms_b64url_decode(out[i], strlen(out[i]), b, sizeof b);
        assert_int_equal(n, (int)strlen(in[i]));
        assert_memory_equal(b, in[i], (size_t)n);
    }
    uint8_t hi[2] = {0xfb, 0xff};
    char t[8];
    assert_int_equal(ms_b64url_encode(hi, 2, t, sizeof t), 3);
    assert_string_equal(t, "-_8");
    uint8_t b[8];
    assert_int_equal(ms_b64url_decode("Zm9=", 4, b, sizeof b), -EINVAL); /* padding */
    assert_int_equal(ms_b64url_decode("Zm+v", 4, b, sizeof b), -EINVAL); /* std alphabet */
    assert_int_equal(ms_b64url_decode("Zh", 2, b, sizeof b), -EINVAL);   /* trailing bits */
    assert_int_equal(ms_b64url_decode("Z", 1, b, sizeof b), -EINVAL);
    assert_int_equal(ms_b64url_encode(hi, 2, t, 3), -ENOSPC);
    assert_int_equal(ms_b64url_decode("Zm9v", 4, b, 2), -ENOSPC);
    assert_int_equal(ms_b64url_decode("Zm9 v", 5, b, sizeof b), -EINVAL); /* whitespace */
    /* the standard alphabet, strict */
    assert_int_equal(ms_b64_decode("+/8", 3, MS_B64_STD, b, sizeof b), 2);
    assert_int_equal(b[0], 0xfb);
    assert_int_equal(b[1], 0xff);
    assert_int_equal(ms_b64_decode("-_8", 3, MS_B64_STD, b, sizeof b), -EINVAL);
    /* hex digits */
    assert_int_equal(ms_hexval('0'), 0);
    assert_int_equal(ms_hexval('9'), 9);
    assert_int_equal(ms_hexval('a'), 10);
    assert_int_equal(ms_hexval('F'), 15);
    assert_int_equal(ms_hexval('g'), -1);
    assert_int_equal(ms_hexval('/'), -1);
    assert_int_equal(ms_hexval(0), -1);
}

static void test_token_roundtrip(void **st)
{
    (void)st;
    char tok[MS_TOKEN_MAX], why[96];
    int n = ms_token_make(SECRET, UID, MS_TOKEN_LIVE, 2000, 0, 0, NULL, tok, sizeof tok);
    assert_true(n > 0);
    assert_int_equal((int)strlen(tok), n);
    assert_int_equal(
        strspn(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
        strlen(tok));
    assert_int_equal(ms_token_verify(tok, SECRET, UID, MS_TOKEN_LIVE, 1999, NULL, 0, why, 96), 0);
    int64_t e = 0;
    assert_int_equal(ms_token_expires(tok, &e), 0);
    assert_int_equal(e, 2000);
    /* expiry: valid until the second before */
    assert_int_equal(ms_token_verify(tok, SECRET, UID, MS_TOKEN_LIVE, 2000, NULL, 0, why, 96),
                     MS_TOKEN_EEXPIRED);
    assert_non_null(strstr(why, "expired"));
    /* wrong stream */
    assert_int_equal(ms_token_verify(tok, SECRET, UID2, MS_TOKEN_LIVE, 1000, NULL, 0, why, 96),
                     MS_TOKEN_ESTREAM);
    assert_non_null(strstr(why, "another stream"));
    /* wrong mode */
    assert_int_equal(ms_token_verify(tok, SECRET, UID, MS_TOKEN_ARCHIVE, 1000, NULL, 0, why, 96),
                     MS_TOKEN_EMODE);
    /* secret rotation invalidates */
    assert_int_equal(
        ms_token_verify(tok, "node secret two", UID, MS_TOKEN_LIVE, 1000, NULL, 0, why, 96),
        MS_TOKEN_ETAMPERED);
    assert_int_equal(ms_token_verify(tok, "", UID, MS_TOKEN_LIVE, 1000, NULL, 0, why, 96),
                     MS_TOKEN_ETAMPERED);
    /* no expiry */
    assert_true(ms_token_make(SECRET, UID, MS_TOKEN_LIVE, 0, 0, 0, NULL, tok, sizeof tok) > 0);
    assert_int_equal(ms_token_verify(tok, SECRET, UID, MS_TOKEN_LIVE, INT64_MAX, NULL, 0, why, 96),
                     0);
}

/* Flipping any single character of a token (to another base64url
 * character) must never verify. */
static void test_token_flip_every_char(void **st)
{
    (void)st;
    char tok[MS_TOKEN_MAX], why[96];
    int n =
        ms_token_make(SECRET, UID, MS_TOKEN_ARCHIVE, 5000, 100, 200, "192.0.2.7", tok, sizeof tok);
    assert_true(n > 0);
    assert_int_equal(
        ms_token_verify(tok, SECRET, UID, MS_TOKEN_ARCHIVE, 10, "192.0.2.7", 150, why, 96), 0);
    int rejected = 0;
    for (int i = 0; i < n; i++) {
        char t[MS_TOKEN_MAX];
        memcpy(t, tok, (size_t)n + 1);
        t[i] = t[i] == 'A' ? 'B' : 'A';
        int rc = ms_token_verify(t, SECRET, UID, MS_TOKEN_ARCHIVE, 10, "192.0.2.7", 150, why, 96);
        assert_int_equal(rc, MS_TOKEN_ETAMPERED);
        assert_non_null(strstr(why, "tampered"));
        rejected++;
    }
    assert_int_equal(rejected, n);
    /* truncated, extended, garbage */
    char t[MS_TOKEN_MAX + 8];
    memcpy(t, tok, (size_t)n + 1);
    t[n - 1] = '\0';
    assert_int_equal(
        ms_token_verify(t, SECRET, UID, MS_TOKEN_ARCHIVE, 10, "192.0.2.7", 150, NULL, 0),
        MS_TOKEN_ETAMPERED);
    snprintf(t, sizeof t, "%sAA", tok);
    assert_int_equal(
        ms_token_verify(t, SECRET, UID, MS_TOKEN_ARCHIVE, 10, "192.0.2.7", 150, NULL, 0),
        MS_TOKEN_ETAMPERED);
    assert_int_equal(ms_token_verify("", SECRET, UID, MS_TOKEN_LIVE, 0, NULL, 0, NULL, 0),
                     MS_TOKEN_ETAMPERED);
    assert_int_equal(ms_token_verify("%%%%", SECRET, UID, MS_TOKEN_LIVE, 0, NULL, 0, NULL, 0),
                     MS_TOKEN_ETAMPERED);
    assert_int_equal(ms_token_verify(NULL, SECRET, UID, MS_TOKEN_LIVE, 0, NULL, 0, NULL, 0),
                     MS_TOKEN_ETAMPERED);
}

static void test_token_ip_and_window(void **st)
{
    (void)st;
    char tok[MS_TOKEN_MAX], why[96];
    assert_true(ms_token_make(SECRET, UID, MS_TOKEN_ARCHIVE, 0, 1000, 1000 + 86400, "192.0.2.7",
                              tok, sizeof tok) > 0);
    /* same address in IPv4-mapped form is the same client */
    assert_int_equal(
        ms_token_verify(tok, SECRET, UID, MS_TOKEN_ARCHIVE, 5, "::ffff:192.0.2.7", 1000, why, 96),
        0);
    assert_int_equal(
        ms_token_verify(tok, SECRET, UID, MS_TOKEN_ARCHIVE, 5, "192.0.2.8", 1000, why, 96),
        MS_TOKEN_EIP);
    assert_non_null(strstr(why, "address"));
    assert_int_equal(ms_token_verify(tok, SECRET, UID, MS_TOKEN_ARCHIVE, 5, NULL, 1000, why, 96),
                     MS_TOKEN_EIP);
    assert_int_equal(
        ms_token_verify(tok, SECRET, UID, MS_TOKEN_ARCHIVE, 5, "192.0.2.7", 999, why, 96),
        MS_TOKEN_EWINDOW);
    assert_non_null(strstr(why, "window"));
    assert_int_equal(
        ms_token_verify(tok, SECRET, UID, MS_TOKEN_ARCHIVE, 5, "192.0.2.7", 1000 + 86399, why, 96),
        0);
    assert_int_equal(
        ms_token_verify(tok, SECRET, UID, MS_TOKEN_ARCHIVE, 5, "192.0.2.7", 1000 + 86400, why, 96),
        MS_TOKEN_EWINDOW);
    assert_int_equal(
        ms_token_verify(tok, SECRET, UID, MS_TOKEN_LIVE, 5, "192.0.2.7", 1000, why, 96),
        MS_TOKEN_EMODE);
    /* IPv6 binding */
    assert_true(ms_token_make(SECRET, UID, MS_TOKEN_LIVE, 0, 0, 0, "2001:db8::1", tok, sizeof tok) >
                0);
    assert_int_equal(
        ms_token_verify(tok, SECRET, UID, MS_TOKEN_LIVE, 5, "2001:db8:0::1", 0, why, 96), 0);
    assert_int_equal(ms_token_verify(tok, SECRET, UID, MS_TOKEN_LIVE, 5, "2001:db8::2", 0, why, 96),
                     MS_TOKEN_EIP);
    /* bad arguments */
    assert_int_equal(ms_token_make(SECRET, UID, MS_TOKEN_ARCHIVE, 0, 10, 10, NULL, tok, 99),
                     -EINVAL);
    assert_int_equal(ms_token_make("", UID, MS_TOKEN_LIVE, 0, 0, 0, NULL, tok, 99), -EINVAL);
    assert_int_equal(ms_token_make(SECRET, UID, MS_TOKEN_LIVE, 0, 0, 0, "1.2.3", tok, 99), -EINVAL);
    assert_int_equal(ms_token_make(SECRET, UID, MS_TOKEN_LIVE, 0, 0, 0, NULL, tok, 10), -ENOSPC);
}

static int cidr_has(const char *cidr, const char *ip)
{
    ms_cidr_t c;
    ms_ip_t a;
    assert_int_equal(ms_cidr_parse(cidr, &c), 0);
    assert_int_equal(ms_ip_parse(ip, &a), 0);
    return ms_cidr_match(&c, &a);
}

static void test_cidr(void **st)
{
    (void)st;
    assert_true(cidr_has("192.0.2.0/24", "192.0.2.255"));
    assert_false(cidr_has("192.0.2.0/24", "192.0.3.0"));
    assert_true(cidr_has("192.0.2.0/24", "::ffff:192.0.2.9")); /* mapped */
    assert_true(cidr_has("0.0.0.0/0", "203.0.113.1"));
    assert_false(cidr_has("0.0.0.0/0", "2001:db8::1")); /* v4 /0 is v4 only */
    assert_true(cidr_has("::/0", "2001:db8::1"));
    assert_true(cidr_has("::/0", "10.1.2.3"));
    assert_true(cidr_has("10.1.2.3/32", "10.1.2.3"));
    assert_false(cidr_has("10.1.2.3/32", "10.1.2.4"));
    assert_true(cidr_has("10.1.2.3", "10.1.2.3")); /* bare = /32 */
    assert_true(cidr_has("2001:db8::1/128", "2001:db8::1"));
    assert_false(cidr_has("2001:db8::1/128", "2001:db8::0"));
    assert_true(cidr_has("2001:db8::/32", "2001:db8:ffff::1"));
    assert_false(cidr_has("2001:db8::/32", "2001:db9::1"));
    assert_true(cidr_has("192.0.2.77/25", "192.0.2.1")); /* host bits cleared */
    assert_true(cidr_has("10.0.0.0/7", "11.255.0.1"));   /* non-octet boundary */
    assert_false(cidr_has("10.0.0.0/7", "12.0.0.1"));
    assert_true(cidr_has("::ffff:0:0/96", "198.51.100.1")); /* all of IPv4 */
    ms_cidr_t c;
    const char *badc[] = {"10.0.0.0/33", "::/129",      "10.0.0.0/", "10.0.0.0/-1", "10.0.0/8",
                          "x/8",         "10.0.0.0/08", "",          "1.2.3.4/3a",  "::1/1000"};
    for (size_t i = 0; i < sizeof badc / sizeof *badc; i++)
        assert_int_equal(ms_cidr_parse(badc[i], &c), -EINVAL);
    /* options: a required prefix, leading zeros, the reason of a refusal */
    const char *why = NULL;
    assert_int_equal(ms_cidr_parse_opt("10.0.0.0/08", MS_CIDR_LEADING_ZEROS, &c, &why), 0);
    assert_int_equal(c.bits, 96 + 8);
    assert_int_equal(c.v4, 1);
    assert_int_equal(ms_cidr_parse_opt("::ffff:10.0.0.0/104", 0, &c, &why), 0);
    assert_int_equal(c.bits, 104);
    assert_int_equal(c.v4, 0);
    assert_int_equal(ms_cidr_parse_opt("10.0.0.1", MS_CIDR_NEED_PREFIX, &c, &why), -EINVAL);
    assert_non_null(strstr(why, "prefix length"));
    assert_int_equal(ms_cidr_parse_opt("10.0.0.1/32", MS_CIDR_NEED_PREFIX, &c, NULL), 0);
    assert_int_equal(ms_cidr_parse_opt("10.0.0.0/08", 0, &c, &why), -EINVAL);
    assert_string_equal(why, "bad prefix length after /");
    assert_int_equal(ms_cidr_parse_opt("10.0.0.0/033", MS_CIDR_LEADING_ZEROS, &c, &why), -EINVAL);
    assert_string_equal(why, "IPv4 prefix length must be 0..32");
    assert_int_equal(ms_cidr_parse_opt("::/129", 0, &c, &why), -EINVAL);
    assert_string_equal(why, "IPv6 prefix length must be 0..128");
    assert_int_equal(ms_cidr_parse_opt("10.0.0/8", 0, &c, &why), -EINVAL);
    assert_string_equal(why, "must be an IPv4 or IPv6 address or CIDR (e.g. 192.0.2.0/24)");
    assert_int_equal(ms_cidr_parse_opt(NULL, 0, &c, &why), -EINVAL);
    char *list[] = {"garbage", "198.51.100.0/24", "2001:db8::/48"};
    ms_ip_t a;
    assert_int_equal(ms_ip_parse("2001:db8:0:1::5", &a), 0);
    assert_int_equal(ms_cidr_list_match(list, 3, &a), 1);
    assert_int_equal(ms_ip_parse("2001:db8:1::5", &a), 0);
    assert_int_equal(ms_cidr_list_match(list, 3, &a), 0);
    char t[MS_IP_STRLEN];
    assert_int_equal(ms_ip_parse("::ffff:192.0.2.1", &a), 0);
    assert_string_equal(ms_ip_format(&a, t, sizeof t), "192.0.2.1");
    assert_int_equal(ms_ip_parse("2001:DB8:0:0::1", &a), 0);
    assert_string_equal(ms_ip_format(&a, t, sizeof t), "2001:db8::1");
}

static int trusted_fn(const ms_ip_t *ip, void *ud)
{
    return ms_cidr_list_match((char *const *)ud, 2, ip);
}

static const char *client_of(const char *peer, const char *xff, const char *fwd, int trust)
{
    static char out[MS_IP_STRLEN];
    static char *proxies[] = {"10.0.0.0/8", "fd00::/8"};
    ms_ip_t p, c;
    assert_int_equal(ms_ip_parse(peer, &p), 0);
    assert_int_equal(ms_ip_forwarded_client(&p, xff, fwd, trust ? trusted_fn : NULL, proxies, &c),
                     0);
    return ms_ip_format(&c, out, sizeof out);
}

static void test_forwarded(void **st)
{
    (void)st;
    /* untrusted peer: headers ignored */
    assert_string_equal(client_of("203.0.113.5", "198.51.100.1", NULL, 1), "203.0.113.5");
    assert_string_equal(client_of("10.0.0.1", "198.51.100.1", NULL, 0), "10.0.0.1");
    /* trusted proxy: rightmost untrusted hop */
    assert_string_equal(client_of("10.0.0.1", "198.51.100.1", NULL, 1), "198.51.100.1");
    assert_string_equal(client_of("10.0.0.1", "1.1.1.1, 198.51.100.1, 10.2.2.2", NULL, 1),
                        "198.51.100.1"); /* a spoofed leftmost entry is not believed */
    assert_string_equal(client_of("10.0.0.1", "10.9.9.9,10.2.2.2", NULL, 1), "10.9.9.9");
    assert_string_equal(client_of("10.0.0.1", "198.51.100.1:5555", NULL, 1), "198.51.100.1");
    assert_string_equal(client_of("10.0.0.1", "2001:db8::7", NULL, 1), "2001:db8::7");
    assert_string_equal(client_of("10.0.0.1", "[2001:db8::7]:443", NULL, 1), "2001:db8::7");
    assert_string_equal(client_of("10.0.0.1", "198.51.100.1, unknown", NULL, 1), "10.0.0.1");
    assert_string_equal(client_of("10.0.0.1", "", NULL, 1), "10.0.0.1");
    assert_string_equal(client_of("10.0.0.1", "198.51.100.1,,", NULL, 1), "10.0.0.1");
    assert_string_equal(client_of("::ffff:10.0.0.1", "198.51.100.1", NULL, 1), "198.51.100.1");
    assert_string_equal(client_of("fd00::1", "2001:db8::9", NULL, 1), "2001:db8::9");
    /* Forwarded (RFC 7239 section 7.4 examples) wins over X-Forwarded-For */
    assert_string_equal(
        client_of("10.0.0.1", "1.2.3.4", "for=192.0.2.43, for=\"[2001:db8:cafe::17]:4711\"", 1),
        "2001:db8:cafe::17");
    assert_string_equal(client_of("10.0.0.1", NULL, "for=192.0.2.60;proto=http;by=203.0.113.43", 1),
                        "192.0.2.60");
    assert_string_equal(client_of("10.0.0.1", NULL, "For=\"192.0.2.60:80\" , for=10.3.3.3", 1),
                        "192.0.2.60");
    assert_string_equal(client_of("10.0.0.1", NULL, "for=_hidden, for=10.3.3.3", 1), "10.3.3.3");
    assert_string_equal(client_of("10.0.0.1", NULL, "proto=https", 1), "10.0.0.1");
    assert_string_equal(client_of("10.0.0.1", NULL, "for=\"[2001:db8::1\"", 1), "10.0.0.1");
    /* more hops than the parser keeps: the nearest ones count */
    char big[2048] = "";
    for (int i = 0; i < 40; i++)
        strcat(big, "10.1.1.1, ");
    strcat(big, "198.51.100.3");
    assert_string_equal(client_of("10.0.0.1", big, NULL, 1), "198.51.100.3");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64url),
        cmocka_unit_test(test_token_roundtrip),
        cmocka_unit_test(test_token_flip_every_char),
        cmocka_unit_test(test_token_ip_and_window),
        cmocka_unit_test(test_cidr),
        cmocka_unit_test(test_forwarded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
