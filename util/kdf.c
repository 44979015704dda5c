/* HKDF-SHA256 (RFC 5869) through OpenSSL 3's EVP_KDF; see util/kdf.h. */
#include "util/kdf.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

static const char SALT[] = "mediaserver-kdf-v1";

int ms_kdf_derive(const char *secret, const char *label, uint8_t out[MS_KDF_KEY_LEN])
{
    assert(out);
    if (!secret || !secret[0] || !label || !label[0])
        return -EINVAL;
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    if (!kdf)
        return -EIO;
    EVP_KDF_CTX *ctx = EVP_KDF_CTX_new(kdf);
    EVP_KDF_free(kdf);
    if (!ctx)
        return -EIO;
    OSSL_PARAM p[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)(uintptr_t) "SHA256", 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)(uintptr_t)secret,
                                          strlen(secret)),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)(uintptr_t)SALT,
                                          sizeof SALT - 1),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)(uintptr_t)label,
                                          strlen(label)),
        OSSL_PARAM_construct_end(),
    };
    int ok = EVP_KDF_derive(ctx, out, MS_KDF_KEY_LEN, p) == 1;
    EVP_KDF_CTX_free(ctx);
    return ok ? 0 : -EIO;
}
