/* RTSP on any node of the cluster (docs/cluster.md "Playback on any
 * node"): a node asked over RTSP for a stream that another server runs
 * answers 302 Moved Temporarily (RFC 2326 11.3.3) with the Location of the
 * same path and query on that server (so ?token= and ?from= are kept):
 *  - live (no ?from=): when the stream does not run here and the placement
 *    view (node/placement_view.h) names another primary;
 *  - archive (?from=T): when recording is on, the local archive has nothing
 *    at T and another server published a range holding T (the rule of the
 *    HTTP archive redirect, node/archive_view.h ms_archive_view_holder).
 * The servers' RTSP addresses come from their rows in the replicated state
 * ("addresses": [http, "rtsp://advertise:port", raft]).
 *
 * Threads: ms_rtsp_redirect_servers_set from the control loop; the others
 * from any thread. */
#ifndef MS_NODE_RTSP_REDIRECT_H
#define MS_NODE_RTSP_REDIRECT_H

#include <stddef.h>

#include <jansson.h>

/* Replaces the table of RTSP addresses with those of servers (borrowed:
 * the state's server rows, [{"name":…, "addresses":[…]}]); NULL empties
 * it. A server whose RTSP listener is off (port 0) has no address. */
void ms_rtsp_redirect_servers_set(json_t *servers);

/* The "rtsp://host:port" of server name into out (cap bytes): 0, or
 * -ENOENT (unknown, or its RTSP is off). */
int ms_rtsp_redirect_server_rtsp(const char *name, char *out, size_t cap);

/* ms_rtsp_server_cfg_t.redirect (media/rtsp/server.h): 1 with the base of
 * the server to send the client to, 0 to answer here (also when the node
 * runs no cluster). ud is unused. Any thread; an archive request reads the
 * local archive index (a short SQLite query). */
int ms_rtsp_redirect_decide(void *ud, const char *stream, const char *query, int here, char *base,
                            size_t cap);

#endif
