/* Placement of streams on servers (docs/cluster.md "Placement and
 * failover"): which server runs a stream (primary) and which one holds it
 * suspended to take over (backup). A pure function of the replicated state,
 * so the leader's decision is deterministic and testable.
 *
 * Rules (docs/cluster.md "Placement and failover"):
 * - a server qualifies when it is healthy (the leader itself, or health "up"
 *   with a report younger than down_after_ms), distribution is on, its
 *   primary streams are under stream_limit, its measured input bitrate is
 *   under bitrate_limit_kbps (0 = no limit), its group matches the stream's
 *   group (when the stream has one), and its storage is at most
 *   storage_max_pct full;
 * - a reserved stream gets main + additional of a cluster of its group (the
 *   stream's "group", else the group whose subnet holds its camera IP, else
 *   clusters outside any group);
 * - an unreserved stream gets a primary among the servers in no cluster
 *   (any server while no cluster exists), and a backup from the same pool;
 * - a healthy primary keeps its stream (no rebalancing); a primary that is
 *   down is replaced by its backup when the backup is healthy (failover),
 *   then a new backup is chosen; a returning server takes nothing back
 *   unless failback is set (then a reserved stream returns to its cluster's
 *   main when that is healthy again).
 *
 * Threads: any (pure). */
#ifndef MS_NODE_PLACEMENT_H
#define MS_NODE_PLACEMENT_H

#include <jansson.h>
#include <stdint.h>

typedef struct {
    int64_t now_ms;      /* wall clock of the leader */
    int down_after_ms;   /* report age after which a server is not healthy */
    const char *self;    /* the leader's name: always healthy (may be NULL) */
    int storage_max_pct; /* 80 by default */
    int failback;        /* 0: no failback */
} ms_placement_opts_t;

/* Fills o with the defaults (3000 ms, 80 %, no failback). */
void ms_placement_opts_defaults(ms_placement_opts_t *o);

/* servers/groups/clusters/streams: ms_fsm_list() arrays (borrowed).
 * Returns a new array with one object per stream whose placement must
 * change: {"uid", "name", "primary": name|null, "backup": name|null,
 * "failover": bool, "reason": text|null}. reason says why no (or no
 * qualifying) server was found. Streams whose placement is right are not
 * listed; a stream without any qualifying server always is (primary null). NULL on out of memory.
 */
json_t *ms_placement_plan(json_t *servers, json_t *groups, json_t *clusters, json_t *streams,
                          const ms_placement_opts_t *o);

/* One search for a stream ignoring its current placement (transfer):
 * want_cluster NULL = automatic. exclude: the current primary (may be
 * NULL). Returns a new {"primary", "backup", "rejected"} or {"reason",
 * "rejected"} object (caller owns it; NULL on out of memory); "rejected"
 * lists [{"server", "reason"}] the servers the search passed over (down,
 * distribution disabled, stream limit reached, bitrate limit reached, other
 * group, storage full, current server, in a cluster: runs reserved streams
 * only). */
json_t *ms_placement_search(json_t *servers, json_t *groups, json_t *clusters, json_t *streams,
                            json_t *stream, const char *want_cluster, const char *exclude,
                            const ms_placement_opts_t *o);

/* A transfer to one server (target): it becomes the primary when it
 * qualifies (the rules above; for a reserved stream it must be the main or
 * additional of a cluster of the stream's group, whose other member is the
 * backup); else the backup is chosen from the pool like a new stream's.
 * Returns a new object like ms_placement_search's ("reason" names target
 * and why it does not qualify); NULL on out of memory. Any thread (pure). */
json_t *ms_placement_search_server(json_t *servers, json_t *groups, json_t *clusters,
                                   json_t *streams, json_t *stream, const char *target,
                                   const ms_placement_opts_t *o);

/* The group of a stream: its "group", else the group whose subnets hold
 * the camera IP ("camera" when it is an address, else the URL host); ""
 * when none. Returns a borrowed string from groups/stream. */
const char *ms_placement_stream_group(json_t *groups, json_t *stream);

#endif
