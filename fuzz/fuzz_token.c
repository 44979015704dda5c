/* libFuzzer target: token verification (base64url + layout + MAC) and the
 * forwarding-header parsers, on arbitrary bytes. The input is split at the
 * first NUL: token text, then header text. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/ipaddr.h"
#include "util/token.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int trust_all_private(const ms_ip_t *ip, void *ud)
{
    (void)ud;
    return ms_ip_is_v4(ip) && ip->a[12] == 10;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    const char *hdr = s + strlen(s) + (strlen(s) < size ? 1 : 0);
    char why[96];
    (void)ms_token_verify(s, "fuzz secret", "uid", MS_TOKEN_LIVE, 1000, "192.0.2.1", 0, why,
                          sizeof why);
    (void)ms_token_verify(s, "fuzz secret", "uid", MS_TOKEN_ARCHIVE, 1000, NULL, 50, why,
                          sizeof why);
    int64_t e;
    (void)ms_token_expires(s, &e);
    int64_t wf = 0, wt = 0;
    (void)ms_token_window(s, &wf, &wt);
    uint8_t raw[256];
    (void)ms_b64url_decode(s, strlen(s), raw, sizeof raw);
    ms_ip_t peer, out;
    ms_cidr_t c;
    (void)ms_cidr_parse(s, &c);
    (void)ms_ip_parse("10.0.0.1", &peer);
    (void)ms_ip_forwarded_client(&peer, hdr, NULL, trust_all_private, NULL, &out);
    (void)ms_ip_forwarded_client(&peer, NULL, hdr, trust_all_private, NULL, &out);
    free(s);
    return 0;
}
