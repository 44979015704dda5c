#include "raft/commands.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "raft/fsm.h"
#include "util/clock.h"

int ms_cmd_req_id(char out[33])
{
    unsigned char b[16];
    static const char hex[] = "0123456789abcdef";
    if (RAND_bytes(b, sizeof b) != 1)
        return -EIO;
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hex[b[i] >> 4];
        out[2 * i + 1] = hex[b[i] & 15];
    }
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
