/* Where the archive of each stream lies across the cluster, as the local
 * copy of the replicated state says (docs/cluster.md "Archive index
 * handoff"): the coarse ranges every server publishes for its local
 * archive (archive_ranges_set), with the server's http address. The
 * control loop replaces the table after applied commands (node/cluster/reconcile.c);
 * the HTTP threads read it (merged ranges, archive redirects).
 *
 * Threads: ms_archive_view_set from the control loop; the getters from any
 * thread. */
#ifndef MS_NODE_ARCHIVE_VIEW_H
#define MS_NODE_ARCHIVE_VIEW_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Replaces the view. rows (borrowed, deep-copied):
 * [{"stream": uid, "server": name, "http": "http://host:port",
 *   "ranges": [[from, to], ...]}] (UTC seconds). self: this node's name
 * (borrowed, copied); its own rows are skipped by the getters (a node
 * reads its own archive from the local index). */
void ms_archive_view_set(json_t *rows, const char *self);
/* Frees the view (node stop). */
void ms_archive_view_clear(void);

/* Ranges of the other servers for stream uid that overlap [from, to]
 * (UTC seconds), appended to arr (borrowed) as
 * {"from": t, "duration": s, "server": name}. Returns how many. */
int ms_archive_view_append(const char *uid, int64_t from, int64_t to, json_t *arr);

/* The other servers' ranges for stream uid that overlap [from, to] (UTC
 * seconds), appended to arr (borrowed) as
 * {"from": t, "to": t, "server": name, "http": "http://host:port"}
 * (cross-server archive playlists, api/archive_remote.c). Returns how
 * many. Any thread. */
int ms_archive_view_pieces(const char *uid, int64_t from, int64_t to, json_t *arr);

/* The other server whose published ranges overlap [from, to] the most
 * (ties: the earliest range): its http base into http (cap bytes) and name
 * into server (scap bytes). 0, or -ENOENT when no other server holds any
 * part of the window. */
int ms_archive_view_holder(const char *uid, int64_t from, int64_t to, char *http, size_t cap,
                           char *server, size_t scap);

/* Whether archive playback of [from, to] (UTC seconds) of stream (name or
 * uid) belongs on another server: the stream records (dvr.enabled: without
 * recording nothing is handed off), the local archive has none of the
 * window, and another server's published ranges overlap it
 * (ms_archive_view_holder). 1 with the stream's uid (ucap bytes; uid may be
 * NULL), the holder's http base and name; 0 otherwise. Used by the HTTP
 * (api/redirect.c) and RTSP (node/rtsp_redirect.c) archive redirects. Any
 * thread but the control loop (reads the local index). */
int ms_archive_view_elsewhere(const char *stream, int64_t from, int64_t to, char *uid, size_t ucap,
                              char *http, size_t cap, char *server, size_t scap);

#endif
