/* Where each stream runs, as the local copy of the replicated state says:
 * a small table the control loop refreshes after every applied command
 * (node/cluster/reconcile.c) and the HTTP threads read (stream status, redirects to
 * the node that runs a stream).
 *
 * Threads: ms_placement_view_set/clear from the control loop; the getters
 * from any thread. */
#ifndef MS_NODE_PLACEMENT_VIEW_H
#define MS_NODE_PLACEMENT_VIEW_H

#include <stddef.h>

#include "util/sizes.h"

typedef struct {
    char primary[64];                    /* server name, "" when unassigned */
    char backup[64];                     /* "" when none */
    char primary_http[MS_HTTP_BASE_MAX]; /* http://advertise:port of the primary, "" if unknown */
    int transferred;                     /* transferred_at > 0 */
    int self_primary;                    /* the primary is this node */
    int from_file;                       /* defined by a node's stream file (placement.source) */
    char reason[160];                    /* why the stream is unplaced, "" when placed or unknown */
} ms_placement_view_t;

/* Replaces the view with the given rows (copies); self: this node's name. */
void ms_placement_view_begin(const char *self);
void ms_placement_view_put(const char *uid, const char *name, const char *primary,
                           const char *backup, const char *primary_http, int transferred);
/* Extras of the row put last for uid (between put and end): whether the
 * stream comes from a stream file, and the leader's reason for leaving it
 * unplaced (NULL or "" for none). */
void ms_placement_view_annotate(const char *uid, int from_file, const char *reason);
void ms_placement_view_end(void);

/* 0 and *out when the stream (uid or name) is in the view, -ENOENT
 * otherwise (also when the node runs no cluster). */
int ms_placement_view_get(const char *uid_or_name, ms_placement_view_t *out);

#endif
