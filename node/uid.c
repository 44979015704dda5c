#include "node/uid.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/rand.h>
#include <openssl/evp.h>

static void format_uuid(uint8_t b[16], char out[MS_UID_LEN])
{
    snprintf(out, MS_UID_LEN,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
}

int ms_uid_random(char out[MS_UID_LEN])
{
    uint8_t b[16];
    if (RAND_bytes(b, sizeof b) != 1)
        return -EIO;
    /* RFC 4122 4.4: version 4 in the high nibble of octet 6, variant 10xx
     * in the high bits of octet 8. */
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    format_uuid(b, out);
    return 0;
}

void ms_uid_derive(const char *a, const char *b, char out[MS_UID_LEN])
{
    static const char ns[] = "mediaserver stream uid v1";
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    memset(md, 0, sizeof md);
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (c && EVP_DigestInit_ex(c, EVP_sha1(), NULL) == 1) {
        EVP_DigestUpdate(c, ns, sizeof ns); /* includes the NUL separator */
        EVP_DigestUpdate(c, a, strlen(a) + 1);
        EVP_DigestUpdate(c, b, strlen(b));
        EVP_DigestFinal_ex(c, md, &mdlen);
    }
    EVP_MD_CTX_free(c);
    /* RFC 4122 4.3: version 5 (name-based, SHA-1), variant 10xx. */
    md[6] = (uint8_t)((md[6] & 0x0f) | 0x50);
    md[8] = (uint8_t)((md[8] & 0x3f) | 0x80);
    format_uuid(md, out);
}

int ms_secret_random(char *out, size_t outlen, size_t nbytes)
{
    uint8_t b[128];
    if (nbytes > sizeof b || outlen < nbytes * 2 + 1)
        return -EINVAL;
    if (RAND_bytes(b, (int)nbytes) != 1)
        return -EIO;
    for (size_t i = 0; i < nbytes; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
    return 0;
}
