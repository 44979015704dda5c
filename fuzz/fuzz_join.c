/* libFuzzer target: join datagram parsing and authentication
 * (util/nodeauth.h ms_join_decode) on arbitrary bytes, with a replay cache
 * and the joiner's pending-join check; a datagram that decodes must
 * re-encode to the same bytes (one encoding per message). */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/nodeauth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW 1700000000000LL

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t key[MS_KDF_KEY_LEN];
    static ms_replay_t *rc;
    if (!rc) {
        if (ms_kdf_derive("fuzz secret", MS_KDF_JOIN, key) < 0)
            abort();
        rc = ms_replay_new(64);
    }
    ms_join_msg_t m;
    int r = ms_join_decode(key, data, size, NOW, rc, &m);
    if (r != 0 && r != -EALREADY)
        return 0;
    /* the seeds carry valid MACs (fuzz/corpus/fuzz_join): check the round trip */
    char out[MS_JOIN_MAX + 1];
    int n = ms_join_encode(key, &m, out, sizeof out);
    if (n < 0 || (size_t)n != size || memcmp(out, data, size) != 0)
        abort();
    ms_join_pending_t p = {0};
    ms_join_pending_add(&p, m.nonce, NOW);
    if (ms_join_pending_take(&p, m.nonce, NOW) != 0 || ms_join_pending_take(&p, m.nonce, NOW) == 0)
        abort();
    return 0;
}
