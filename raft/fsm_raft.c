#include "raft/fsm_raft.h"

#include <errno.h>
#include <string.h>

#include "util/log.h"

static int fr_apply(struct raft_fsm *rf, const struct raft_buffer *buf, void **result)
{
    json_t *res = NULL;
    *result = NULL;
    int rc = ms_fsm_apply(rf->data, buf->base, buf->len, &res);
    json_decref(res);
    if (rc < 0) {
        MS_ERROR("[raft] [fsm]", "apply failed (%s): this node stops applying%s", strerror(-rc),
                 rc == -EPROTO ? "; a newer binary wrote this command, upgrade" : "");
        return rc == -ENOMEM ? RAFT_NOMEM : RAFT_IOERR;
    }
    return 0;
}

static int fr_snapshot(struct raft_fsm *rf, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    void *p = NULL;
    size_t len = 0;
    *bufs = NULL;
    *n_bufs = 0;
    if (ms_fsm_snapshot(rf->data, raft_malloc, &p, &len) < 0)
        return RAFT_NOMEM;
    *bufs = raft_malloc(sizeof **bufs);
    if (!*bufs) {
        raft_free(p);
        return RAFT_NOMEM;
    }
    (*bufs)[0].base = p;
    (*bufs)[0].len = len;
    *n_bufs = 1;
    return 0;
}

static int fr_restore(struct raft_fsm *rf, struct raft_buffer *buf)
{
    int rc = ms_fsm_restore(rf->data, buf->base, buf->len);
    if (rc < 0) {
        MS_ERROR("[raft] [fsm]", "snapshot restore failed: %s", strerror(-rc));
        return rc == -ENOMEM ? RAFT_NOMEM : RAFT_CORRUPT;
    }
    raft_free(buf->base);
    return 0;
}

void ms_fsm_raft_init(struct raft_fsm *rf, ms_fsm_t *fsm)
{
    memset(rf, 0, sizeof *rf);
    rf->version = 1;
    rf->data = fsm;
    rf->apply = fr_apply;
    rf->snapshot = fr_snapshot;
    rf->restore = fr_restore;
}
