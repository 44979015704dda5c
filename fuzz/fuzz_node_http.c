/* libFuzzer target: the node-to-node HTTP auth header (util/nodeauth.h
 * ms_nauth_http_verify) on arbitrary text. The input is split at NULs:
 * header, X-MS-Node-Id, path, body. A header that verifies must be the one
 * ms_nauth_http_sign writes for the same request. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/nodeauth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW 1700000000000LL

static int hexv(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c - 'a' + 10;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t key[MS_KDF_KEY_LEN];
    static ms_replay_t *rc;
    if (!rc) {
        if (ms_kdf_derive("fuzz secret", MS_KDF_CHTTP, key) < 0)
            abort();
        rc = ms_replay_new(64);
    }
    char *s = malloc(size + 4);
    if (!s)
        return 0;
    memcpy(s, data, size);
    memset(s + size, 0, 4);
    const char *part[4];
    const char *p = s;
    for (int k = 0; k < 4; k++) {
        part[k] = p;
        if (p < s + size)
            p += strlen(p) + 1;
    }
    const char *hdr = part[0], *nid = part[1][0] ? part[1] : NULL,
               *path = part[2][0] ? part[2] : "/";
    const char *body = part[3];
    size_t blen = strlen(body);
    uint64_t id = 0;
    int r = ms_nauth_http_verify(key, hdr, nid, "POST", path, body, blen, NOW, rc, &id);
    if (r == 0) {
        /* re-sign with the header's own id, time and nonce */
        const char *f = strchr(hdr + 3, '.');
        f = f ? strchr(f + 1, '.') : NULL;
        int64_t ts = 0;
        for (const char *q = strchr(hdr + 3, '.') + 1; *q != '.'; q++)
            ts = ts * 10 + (*q - '0');
        uint8_t nonce[MS_NAUTH_NONCE_LEN];
        for (int i = 0; f && i < MS_NAUTH_NONCE_LEN; i++)
            nonce[i] = (uint8_t)(hexv(f[1 + 2 * i]) << 4 | hexv(f[2 + 2 * i]));
        char out[MS_NAUTH_HDR_MAX + 1];
        if (!f ||
            ms_nauth_http_sign(key, id, "POST", path, body, blen, ts, nonce, out, sizeof out) < 0 ||
            strcmp(out, hdr) != 0)
            abort();
        /* and a second time it is a replay */
        if (ms_nauth_http_verify(key, hdr, nid, "POST", path, body, blen, NOW, rc, &id) !=
            -EALREADY)
            abort();
    }
    free(s);
    return 0;
}
