/* libFuzzer target: login token verification (util/logintoken.h) on
 * arbitrary text: base64url, layout, version and MAC checks must never
 * crash or read out of bounds, and nothing but a token made with the key
 * verifies. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/kdf.h"
#include "util/logintoken.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t key[MS_KDF_KEY_LEN];
    static int have_key;
    if (!have_key && ms_kdf_derive("fuzz secret", MS_KDF_LOGIN, key) == 0)
        have_key = 1;
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    int64_t e = 0;
    int rc = ms_login_token_verify(s, key, "admin", "secret", 1000, &e);
    if (rc != MS_LOGIN_ETAMPERED && rc != MS_LOGIN_EEXPIRED && rc != 0)
        abort();
    (void)ms_login_token_verify(s, key, "", "", INT64_MAX, NULL);
    /* Round trip of a token made from the input's first bytes. */
    uint8_t id[MS_LOGIN_ID_LEN] = {0};
    memcpy(id, data, size < sizeof id ? size : sizeof id);
    char tok[MS_LOGIN_TOKEN_MAX];
    if (ms_login_token_make(key, s, "pw", 1, 2, id, tok, sizeof tok) == 87 &&
        ms_login_token_verify(tok, key, s, "pw", 1, NULL) != 0)
        abort();
    free(s);
    return 0;
}
