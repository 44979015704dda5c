#include "raft/commands.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "raft/fsm.h"
#include "util/clock.h"

/* req_id: 8 random bytes drawn once per process (OpenSSL RAND_bytes) and a
 * 64-bit counter. Two processes (nodes, or one node before and after a
 * restart) share a prefix with probability ~n^2 / 2^65, and within one
 * process the counter never repeats, so ids stay unique across the cluster
 * without a RAND_bytes call (locks, getpid) per command. */
static pthread_once_t g_req_once = PTHREAD_ONCE_INIT;
static unsigned char g_req_prefix[8];
static int g_req_ok;
static atomic_uint_fast64_t g_req_seq;

static void req_init(void)
{
    g_req_ok = RAND_bytes(g_req_prefix, sizeof g_req_prefix) == 1;
}

int ms_cmd_req_id(char out[33])
{
    static const char hex[] = "0123456789abcdef";
    pthread_once(&g_req_once, req_init);
    if (!g_req_ok)
        return -EIO;
    uint64_t seq = (uint64_t)atomic_fetch_add(&g_req_seq, 1);
    for (int i = 0; i < 8; i++) {
        out[2 * i] = hex[g_req_prefix[i] >> 4];
        out[2 * i + 1] = hex[g_req_prefix[i] & 15];
    }
    for (int i = 0; i < 16; i++)
        out[16 + i] = hex[(seq >> (60 - 4 * i)) & 15];
    out[32] = '\0';
    return 0;
}

json_t *ms_cmd_new_at(const char *op, json_t *args, const char *req_id, int64_t ts_ms)
{
    if (!args)
        args = json_object();
    if (!op || !req_id || !args) {
        json_decref(args);
        return NULL;
    }
    return json_pack("{s:i, s:s, s:s, s:I, s:o}", "v", MS_FSM_CMD_VERSION, "op", op, "req_id",
                     req_id, "ts", (json_int_t)ts_ms, "args", args);
}

json_t *ms_cmd_new(const char *op, json_t *args)
{
    char id[33];
    if (ms_cmd_req_id(id) < 0) {
        json_decref(args);
        return NULL;
    }
    return ms_cmd_new_at(op, args, id, ms_wall_us() / 1000);
}

char *ms_cmd_encode(const json_t *cmd, size_t *len)
{
    char *s = json_dumps(cmd, JSON_COMPACT);
    if (s && len)
        *len = strlen(s);
    return s;
}

json_t *ms_cmd_schema_init(void)
{
    return ms_cmd_new("schema_init", json_pack("{s:i}", "version", MS_FSM_SCHEMA_LATEST));
}

json_t *ms_cmd_schema_upgrade(void)
{
    return ms_cmd_new("schema_upgrade", json_pack("{s:i}", "to", MS_FSM_SCHEMA_LATEST));
}
