/* libFuzzer target: the archive playlist parser and splice renderer of
 * cross-server archive playback (api/archive_splice.c), on arbitrary bytes
 * (what another node answers). The input is split at the first NUL into
 * two playlists, parsed as two servers, then rendered as VOD and as EVENT;
 * the output is parsed again. The pure file is compiled in here: it needs
 * only util/ (mspure). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "api/archive_remote.h"

#include "../api/archive_splice.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *t = (const char *)data;
    const char *nul = memchr(t, '\0', size);
    size_t a = nul ? (size_t)(nul - t) : size;
    ms_arch_list_t l = {0};
    ms_arch_parse(t, a, "http://127.0.0.1:1/s/", 1, &l);
    if (nul)
        ms_arch_parse(nul + 1, size - a - 1, "", 0, &l);
    int64_t from = l.n ? l.v[0].t_ms : 0;
    for (int event = 0; event < 2; event++) {
        ms_buf_t out = MS_BUF_INIT;
        int n = ms_arch_render(&l, from, from + 60000, event, 2000, &out);
        if (n >= 0 && !out.err) {
            ms_arch_list_t l2 = {0};
            ms_arch_parse((const char *)out.data, out.len, "", 0, &l2);
            ms_arch_list_free(&l2);
        }
        ms_buf_free(&out);
    }
    ms_arch_list_free(&l);
    return 0;
}
