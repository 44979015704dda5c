/* Reconciler: makes the node run exactly the streams the replicated state
 * assigns to it (docs/cluster.md "How a node uses the state"). Every stream of the state is known
 * to the local registry (so reads on any node list every stream): the ones
 * whose primary is this node run (MS_RUN_ACTIVE, or suspended when
 * disabled), the others are held suspended; streams gone from the state are
 * removed. Only streams whose state row changed (rev) or whose desired run
 * state changed are touched.
 *
 * Threads: control loop only. */
#ifndef MS_NODE_RECONCILER_H
#define MS_NODE_RECONCILER_H

#include <jansson.h>

#include "node/streams.h"

typedef struct ms_reconciler ms_reconciler_t;

/* apply/remove: ms_streams_apply / ms_streams_remove in the daemon. */
ms_reconciler_t *ms_reconciler_new(const char *node_name,
                                   int (*apply)(const ms_stream_cfg_t *, ms_run_state_t),
                                   int (*remove)(const char *uid));
void ms_reconciler_free(ms_reconciler_t *rc);
/* streams: ms_fsm_list(fsm, "streams") (borrowed). member: 0 when this node
 * is not (or no longer) a server of the state: then it runs nothing.
 * Returns the number of streams touched. */
int ms_reconciler_run(ms_reconciler_t *rc, json_t *streams, int member);
/* Streams the last run could not apply (their config does not parse, or
 * apply failed): the next run retries them. */
int ms_reconciler_pending(const ms_reconciler_t *rc);
/* Restarts the source of a stream this node runs (ms_streams_restart: a
 * new RTSP session). 0, -ENOENT (not in the state), -EAGAIN (held
 * suspended or disabled here). */
int ms_reconciler_restart(ms_reconciler_t *rc, const char *uid);
/* State stream object (with "placement") -> stream config. 0 or -EINVAL. */
int ms_reconciler_cfg_from_state(json_t *st, ms_stream_cfg_t *out);

#endif
