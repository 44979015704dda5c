/* RTMP handshake (media/rtmp/handshake.h). */
#include "media/rtmp/handshake.h"

#include <errno.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

/* "Genuine Adobe Flash Player 001" + 32 bytes; the digest uses the first 30. */
static const uint8_t fp_key[62] = {
    'G',  'e',  'n',  'u',  'i',  'n',  'e',  ' ',  'A',  'd',  'o',  'b',  'e',  ' ',  'F',  'l',
    'a',  's',  'h',  ' ',  'P',  'l',  'a',  'y',  'e',  'r',  ' ',  '0',  '0',  '1',  0xF0, 0xEE,
    0xC2, 0x4A, 0x80, 0x68, 0xBE, 0xE8, 0x2E, 0x00, 0xD0, 0xD1, 0x02, 0x9E, 0x7E, 0x57, 0x6E, 0xEC,
    0x5D, 0x2D, 0x29, 0x80, 0x6F, 0xAB, 0x93, 0xB8, 0xE6, 0x36, 0xCF, 0xEB, 0x31, 0xAE};
/* "Genuine Adobe Flash Media Server 001" + the same 32 bytes; digest: first 36. */
static const uint8_t fms_key[68] = {
    'G',  'e',  'n',  'u',  'i',  'n',  'e',  ' ',  'A',  'd',  'o',  'b',  'e',  ' ',
    'F',  'l',  'a',  's',  'h',  ' ',  'M',  'e',  'd',  'i',  'a',  ' ',  'S',  'e',
    'r',  'v',  'e',  'r',  ' ',  '0',  '0',  '1',  0xF0, 0xEE, 0xC2, 0x4A, 0x80, 0x68,
    0xBE, 0xE8, 0x2E, 0x00, 0xD0, 0xD1, 0x02, 0x9E, 0x7E, 0x57, 0x6E, 0xEC, 0x5D, 0x2D,
    0x29, 0x80, 0x6F, 0xAB, 0x93, 0xB8, 0xE6, 0x36, 0xCF, 0xEB, 0x31, 0xAE};

static void hmac(const uint8_t *key, size_t klen, const uint8_t *a, size_t alen, const uint8_t *b,
                 size_t blen, uint8_t out[32])
{
    uint8_t tmp[MS_RTMP_HS_SIZE];
    size_t n = 0;
    if (alen)
        memcpy(tmp, a, alen);
    n += alen;
    if (blen)
        memcpy(tmp + n, b, blen);
    n += blen;
    unsigned olen = 32;
    if (!HMAC(EVP_sha256(), key, (int)klen, tmp, n, out, &olen))
        memset(out, 0, 32);
}

size_t ms_rtmp_hs_digest_offset(const uint8_t *p, size_t base)
{
    unsigned sum = (unsigned)p[base] + p[base + 1] + p[base + 2] + p[base + 3];
    return sum % 728 + base + 4;
}

static void digest_at(const uint8_t *p, size_t off, int server_key, uint8_t out[32])
{
    hmac(server_key ? fms_key : fp_key, server_key ? 36 : 30, p, off, p + off + 32,
         MS_RTMP_HS_SIZE - off - 32, out);
}

int ms_rtmp_hs_digest_ok(const uint8_t *p, size_t base, int server_key)
{
    size_t off = ms_rtmp_hs_digest_offset(p, base);
    uint8_t d[32];
    digest_at(p, off, server_key, d);
    return memcmp(d, p + off, 32) == 0;
}

void ms_rtmp_hs_digest_put(uint8_t *p, size_t base, int server_key)
{
    size_t off = ms_rtmp_hs_digest_offset(p, base);
    uint8_t d[32];
    digest_at(p, off, server_key, d);
    memcpy(p + off, d, 32);
}

void ms_rtmp_hs_s2_sig(const uint8_t *s2, const uint8_t peer_digest[32], int server_key,
                       uint8_t out[32])
{
    uint8_t k[32];
    hmac(server_key ? fms_key : fp_key, server_key ? sizeof fms_key : sizeof fp_key, peer_digest,
         32, NULL, 0, k);
    hmac(k, 32, s2, MS_RTMP_HS_SIZE - 32, NULL, 0, out);
}

void ms_rtmp_hs_init(ms_rtmp_hs_t *hs)
{
    memset(hs, 0, sizeof *hs);
}

static void fill_random(uint8_t *p, size_t n)
{
    if (RAND_bytes(p, (int)n) != 1)
        for (size_t i = 0; i < n; i++)
            p[i] = (uint8_t)(i * 131u + 7u);
}

/* C0 + C1 are in hs->buf: appends S0 S1 S2. */
static int reply(ms_rtmp_hs_t *hs, ms_buf_t *out)
{
    const uint8_t *c1 = hs->buf + 1;
    uint8_t s1[MS_RTMP_HS_SIZE], s2[MS_RTMP_HS_SIZE];
    size_t base = 0;
    /* Digest form: C1's version field (bytes 4-7) is not zero and a digest
     * validates at scheme 1 (base 772) or scheme 0 (base 8). */
    if (c1[4] | c1[5] | c1[6] | c1[7]) {
        if (ms_rtmp_hs_digest_ok(c1, 772, 0))
            base = 772;
        else if (ms_rtmp_hs_digest_ok(c1, 8, 0))
            base = 8;
    }
    hs->digest = base != 0;
    uint32_t now = (uint32_t)time(NULL);
    fill_random(s1, sizeof s1);
    ms_wr_be32(s1, now);
    if (hs->digest) {
        /* S1: server version + digest in the client's scheme */
        s1[4] = 0x0d;
        s1[5] = 0x0e;
        s1[6] = 0x0a;
        s1[7] = 0x0d;
        ms_rtmp_hs_digest_put(s1, base, 1);
        const uint8_t *cd = c1 + ms_rtmp_hs_digest_offset(c1, base);
        fill_random(s2, sizeof s2);
        uint8_t sig[32];
        ms_rtmp_hs_s2_sig(s2, cd, 1, sig);
        memcpy(s2 + MS_RTMP_HS_SIZE - 32, sig, 32);
    } else {
        memset(s1 + 4, 0, 4);      /* 5.2.3: zero */
        memcpy(s2, c1, sizeof s2); /* 5.2.4: echo of C1 (time, time2 as read) */
        ms_wr_be32(s2 + 4, now);
    }
    ms_buf_u8(out, 3);
    ms_buf_append(out, s1, sizeof s1);
    ms_buf_append(out, s2, sizeof s2);
    return out->err ? -ENOMEM : 0;
}

ssize_t ms_rtmp_hs_feed(ms_rtmp_hs_t *hs, const uint8_t *data, size_t len, ms_buf_t *out)
{
    size_t used = 0;
    while (used < len && hs->state != MS_RTMP_HS_DONE) {
        if (hs->state == MS_RTMP_HS_C0C1) {
            if (hs->have == 0) {
                /* 5.2.2: version 3 (6 = RTMPE, not supported) */
                if (data[used] != 3)
                    return -EPROTONOSUPPORT;
            }
            size_t want = 1 + MS_RTMP_HS_SIZE - hs->have;
            size_t n = len - used < want ? len - used : want;
            memcpy(hs->buf + hs->have, data + used, n);
            hs->have += n;
            used += n;
            if (hs->have == 1 + MS_RTMP_HS_SIZE) {
                if (reply(hs, out) < 0)
                    return -ENOMEM;
                hs->state = MS_RTMP_HS_C2;
                hs->have = 0;
            }
        } else {
            /* C2: read and ignored (clients differ in what they echo) */
            size_t want = MS_RTMP_HS_SIZE - hs->have;
            size_t n = len - used < want ? len - used : want;
            hs->have += n;
            used += n;
            if (hs->have == MS_RTMP_HS_SIZE)
                hs->state = MS_RTMP_HS_DONE;
        }
    }
    return (ssize_t)used;
}
