/* Cross-server archive HLS playlists (docs/cluster.md "Playback on any
 * node"): an archive window whose pieces lie on several servers (after a
 * transfer, a failover, a split brain) is listed as one timeline. Local
 * pieces come from the local renderer (dvr/archive.h ms_dvr_playlist);
 * the pieces other servers published (node/archive_view.h) come from
 * those servers' own archive playlists, fetched node to node, with their
 * URIs made absolute. The segment lists are merged in time order with
 * EXT-X-DISCONTINUITY at every switch of server, init segment or hole
 * (RFC 8216 section 4.3.2.3) and EXT-X-MAP per piece (section 4.3.2.5).
 *
 * The pure part (parse, merge, render) has no I/O and is unit-tested; the
 * fetch part blocks the calling MHD thread for at most
 * MS_ARCH_REMOTE_TIMEOUT_MS in all. */
#ifndef MS_API_ARCHIVE_REMOTE_H
#define MS_API_ARCHIVE_REMOTE_H

#include <stddef.h>
#include <stdint.h>

#include "api/api.h"
#include "dvr/archive.h"
#include "util/buf.h"

/* Time budget for all the node-to-node playlist fetches of one request
 * (shared: each server gets what is left divided by the servers left). */
#define MS_ARCH_REMOTE_TIMEOUT_MS 2000
/* A server that could not be reached (timeout, refused, unreachable) is
 * not asked again (it is listed as missing at once) for this long. */
#define MS_ARCH_REMOTE_BACKOFF_MS 10000

/* ---- pure part ---------------------------------------------------------- */

/* One media segment of an archive playlist. */
typedef struct {
    int64_t t_ms;   /* EXT-X-PROGRAM-DATE-TIME (UTC ms) */
    int64_t dur_ms; /* EXTINF */
    char *uri;      /* absolute or relative, query included (owned) */
    char *map;      /* URI of its EXT-X-MAP, or NULL (owned) */
    int disc;       /* EXT-X-DISCONTINUITY before it in its source */
    int src;        /* which playlist it came from (0 = local) */
} ms_arch_seg_t;

typedef struct {
    ms_arch_seg_t *v;
    size_t n, cap;
} ms_arch_list_t;

/* Parses an archive media playlist (RFC 8216 section 4.3) as
 * ms_dvr_playlist renders it: every segment needs an
 * EXT-X-PROGRAM-DATE-TIME (section 4.3.2.6) or follows one (then it
 * starts where the previous ended). prefix ("" or e.g.
 * "http://host:port/stream/") is put before every relative URI (segments
 * and EXT-X-MAP). Segments are appended to l with src. Borrows text (need
 * not be NUL-terminated). Returns the number appended, -EINVAL (not a
 * playlist) or -ENOMEM. Pure; any thread. */
int ms_arch_parse(const char *text, size_t len, const char *prefix, int src, ms_arch_list_t *l);

/* Renders l as one playlist of the window [from_ms, to_ms) (UTC ms): the
 * segments sorted by time; a segment starting before the end of the one
 * kept before it (the same time from two servers) is dropped; VOD
 * (event 0): segments starting at or after to_ms or ending at or before
 * from_ms are dropped and EXT-X-ENDLIST ends the list; event 1: an EVENT
 * playlist. EXT-X-DISCONTINUITY where the server (src), the init segment
 * or a hole longer than gap_ms changes (RFC 8216 sections 4.3.2.3,
 * 6.2.2), EXT-X-MAP at the first segment and after every change of init
 * segment. Sorts l in place. Returns the number of segments rendered or
 * -ENOMEM. Pure; any thread. */
int ms_arch_render(ms_arch_list_t *l, int64_t from_ms, int64_t to_ms, int event, int64_t gap_ms,
                   ms_buf_t *out);

void ms_arch_list_free(ms_arch_list_t *l);

/* "YYYY-MM-DDTHH:MM:SS[.fff](Z|+00:00)" -> UTC ms. 0 or -EINVAL. Pure. */
int ms_arch_parse_pdt(const char *s, size_t len, int64_t *out_ms);

/* ---- node part (MHD threads) -------------------------------------------- */

/* 1 when r asks for the local archive only (query cluster_local=1, as the
 * node-to-node fetches of a splice do): no splice, no redirect, so two
 * nodes never ask each other in a loop (even with different secrets).
 * MHD threads; borrows r. */
int ms_archive_remote_local_only(ms_req_t *r);
/* 1 when r is such a request signed by another node (X-MS-Cluster-Auth
 * valid for the cluster secret): its playback access was already decided
 * by the asking node for its client. MHD threads; borrows r. */
int ms_archive_remote_internal(ms_req_t *r);

/* How many other servers published ranges of uid overlapping
 * [from, to] (UTC s). Any thread. */
int ms_archive_remote_servers(const char *uid, int64_t from, int64_t to);

/* Forgets the servers being skipped after a failure (tests). Any thread. */
void ms_archive_remote_backoff_reset(void);

/* The playlist of the window of stream uid as one timeline: the window
 * starts at o->from_ms and ends at to_ms (UTC ms; now for an event
 * playlist); the local archive is the chunks v[0..nv) (as ms_dvr_chunks
 * returned them, borrowed), rendered by ms_dvr_playlist with o (borrowed)
 * for the sub-window they cover; the pieces of the other servers are
 * fetched from them (their http base + "/{uid}/archive-...m3u8" +
 * o->query; o->query is "" or "?token=..." and is kept in their URIs).
 * A server that does not answer within the budget leaves a hole (a
 * discontinuity) and, when unreachable, is not asked again for
 * MS_ARCH_REMOTE_BACKOFF_MS; its
 * name is added to missing (comma-separated, cap bytes). Returns -ENOENT when no other server holds
 * any of the window (serve the local playlist as it is), the number of segments (>= 0) rendered
 * into out, or -ENOMEM. MHD threads (blocks up to MS_ARCH_REMOTE_TIMEOUT_MS); borrows everything.
 */
int ms_archive_remote_splice(const char *uid, const ms_dvr_chunk_t *v, size_t nv,
                             const ms_dvr_pl_opts_t *o, int64_t to_ms, ms_buf_t *out, char *missing,
                             size_t cap);

#endif
