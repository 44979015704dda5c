/* Live HLS numbering across servers (docs/cluster.md "Playback on any
 * node"): every server reports, for each stream it runs, where its live HLS
 * output's numbering stands (next media sequence number, last discontinuity
 * sequence, at wall time); a server that starts the stream's output later
 * (failover, transfer) continues above those numbers, so a player that
 * follows the stream from one server to the other sees EXT-X-MEDIA-SEQUENCE
 * and EXT-X-DISCONTINUITY-SEQUENCE only grow and by about the time that
 * passed (RFC 8216 section 6.2.2; hls.js places the new segments by
 * sequence number times target duration).
 *
 * A server's load report carries its numbers every few reports; the last
 * ones seen per server are kept.
 *
 * Threads: ms_hls_hint_update and ms_hls_hint_clear from the control loop;
 * ms_hls_hint_base from any thread. */
#ifndef MS_NODE_HLS_HINT_H
#define MS_NODE_HLS_HINT_H

#include <stdint.h>

#include <jansson.h>

/* The report of one stream's output, as put in a server's load report:
 * {"<uid>": [next_msn, last_disc, wall_ms], ...}. New reference. */
json_t *ms_hls_hint_report(void);

/* Replaces the table from the servers rows of the state (borrowed): each
 * row's load.hls as ms_hls_hint_report() makes it; for a stream reported by
 * several servers the highest numbers are kept. */
void ms_hls_hint_update(json_t *servers);
void ms_hls_hint_clear(void);

/* The first media and discontinuity sequence numbers for a new output of
 * uid with segments of target_ms: above the reported numbers by the number
 * of segments that could have been cut since the report, plus one. Without
 * a report: tenths of a second since the epoch for both (above every
 * output started earlier: an output uses at most one number per segment of
 * at least 500 ms). */
void ms_hls_hint_base(const char *uid, uint32_t target_ms, int64_t now_wall_ms, int64_t *msn,
                      int64_t *disc);

#endif
