/* libFuzzer target: WWW-Authenticate and Authorization parsing
 * (media/rtsp/auth.h), and building a response from what was parsed. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "media/rtsp/auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 16384)
        return 0;
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    ms_auth_challenge_t ch;
    memset(&ch, 0, sizeof ch);
    if (ms_auth_challenge_parse(&ch, s) == 0) {
        char out[2048];
        (void)ms_auth_authorization(&ch, "user", "pass", "DESCRIBE", "rtsp://h/x", out, sizeof out);
    }
    ms_auth_credentials_t c;
    if (ms_auth_credentials_parse(s, &c) == 0) {
        (void)ms_auth_verify(&c, "DESCRIBE", "realm", "nonce", "pass", 1);
        (void)ms_auth_digest_uri_match(c.uri, "rtsp://h:554/stream?x=1");
    }
    (void)ms_auth_digest_uri_match(s, "rtsp://h/x");
    (void)ms_auth_digest_uri_match("rtsp://h/x", s);
    free(s);
    return 0;
}
