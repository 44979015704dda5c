/* Bridge from libraft's struct raft_fsm to ms_fsm_t: used by the node
 * (raft/node.c) and by raft_fixture tests, so both drive the same code.
 *
 * apply: ms_fsm_apply(); the result goes to the fsm's apply hook (the node
 * matches it to its pending request by req_id), raft's result pointer is
 * always NULL so followers leak nothing. A fatal apply error (-EPROTO,
 * -EIO, -ENOMEM) is returned to raft as RAFT_IOERR / RAFT_NOMEM, which
 * stops this node from applying further entries.
 * snapshot: one raft_malloc'ed buffer (ms_fsm_snapshot), freed by raft.
 * restore: ms_fsm_restore(); frees the buffer on success (libraft's rule).
 *
 * Threads: the thread that drives the struct raft. */
#ifndef MS_RAFT_FSM_RAFT_H
#define MS_RAFT_FSM_RAFT_H

#include <raft.h>

#include "raft/fsm.h"

/* Fills rf (borrowing fsm, which must outlive the raft instance). */
void ms_fsm_raft_init(struct raft_fsm *rf, ms_fsm_t *fsm);

#endif
