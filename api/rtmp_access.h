/* Access control of RTMP players (docs/rtmp.md "Playing"): the one
 * playback decision point (api/access.h ms_playback_decide), live, with
 * the ?token= of the play name. Handed to the RTMP server by main
 * (node/rtmp_glue.h). */
#ifndef MS_API_RTMP_ACCESS_H
#define MS_API_RTMP_ACCESS_H

#include <stdint.h>
#include <sys/socket.h>

/* media/rtmp/server.h authorize_play; ud is the node config (const
 * ms_node_cfg_t *, borrowed for the server's life). Returns 0 with
 * *expires (UTC s the decision lapses at, 0 = never), -ENOENT (refused as
 * an unknown stream: no genuine token) or -EACCES (a genuine token that
 * does not allow it). Any thread. */
int ms_rtmp_access_authorize_play(void *ud, const char *stream, const char *query,
                                  const struct sockaddr *peer, int64_t *expires);

#endif
