/* DVR archive: recording, local chunk index, ranges, retention, event-based
 * recording and the reading side for playback (docs/dvr.md).
 *
 * Chunks: one fMP4/CMAF file per chunk (ISO/IEC 14496-12 section 8.8,
 * ISO/IEC 23000-19), `<root>/<uid>/YYYY/MM/DD/HH/<start_ms>.m4s` (UTC): an
 * init segment (ftyp + moov) then fragments (moof + mdat), each starting a
 * new GOP or cut after ~1 s. A file truncated at a fragment boundary is a
 * valid fMP4 file. tfdt carries wall time: baseMediaDecodeTime / timescale
 * is UTC seconds since the unix epoch, so a file describes itself.
 *
 * Threads: the recorder lives on its stream's worker loop; every file write,
 * fsync, directory scan, SQLite write and retention pass runs on a writer
 * thread per storage root (which owns its SQLite connection). Functions
 * marked "any thread" open their own read connection or take the registry
 * lock; none of them blocks a media loop for long.
 *
 * Errors: 0 or a negative errno code. */
#ifndef MS_DVR_DVR_H
#define MS_DVR_DVR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/statvfs.h>

#include <jansson.h>
#include <uv.h>

#include "media/stream/hub.h"
#include "util/blob.h"
#include "util/sizes.h"

/* Paths of roots (config path + a suffix) and of chunk files. */
#define MS_DVR_ROOT_MAX (MS_PATH_MAX + 32)
#define MS_DVR_PATH_MAX (MS_DVR_ROOT_MAX + 160)

/* Tuning (defaults in brackets). Set before ms_dvr_init(); test hooks too. */
typedef struct {
    int64_t gap_ms;       /* a hole longer than this ends a range [2000] */
    int64_t frag_ms;      /* longest fragment [1000] */
    int64_t prebuffer_ms; /* event mode: frames kept while idle [5000] */
    int64_t retention_ms; /* period of the retention pass [10000] */
    /* statvfs replacement (tests); NULL = statvfs(3) */
    int (*statvfs_fn)(const char *path, struct statvfs *out);
} ms_dvr_tuning_t;

/* Main thread, before ms_dvr_init(). NULL restores the defaults. */
void ms_dvr_set_tuning(const ms_dvr_tuning_t *t);
void ms_dvr_tuning_defaults(ms_dvr_tuning_t *t);

/* A storage root as configured (node config storage[]). */
typedef struct {
    const char *path;     /* absolute */
    int max_used_percent; /* 1..100 */
} ms_dvr_root_cfg_t;

/* What the DVR takes of the node config (node/main.c fills it in). */
typedef struct {
    const char *node_name;          /* for log lines */
    const char *data_dir;           /* absolute; holds the index */
    const ms_dvr_root_cfg_t *roots; /* nroots == 0: <data_dir>/archive, 80 % */
    size_t nroots;
} ms_dvr_cfg_t;

/* Main thread, once at start (before any recorder). Opens (creates) the
 * index `<data_dir>/dvr_index.sqlite` (WAL), reconciles it with the chunk
 * files of every storage root (orphans indexed, missing files dropped, torn
 * last fragments truncated; blocking, one pass per root), then starts one
 * writer thread per root. Without storage roots in the config the root is
 * `<data_dir>/archive`. Borrows cfg (copies what it needs). */
int ms_dvr_init(const ms_dvr_cfg_t *cfg);
/* Main thread, after every recorder was stopped: drains the writers (data
 * fsynced, index updated), stops the threads, closes the index. */
void ms_dvr_shutdown(void);

typedef struct ms_dvr_recorder ms_dvr_recorder_t;

/* What a recorder takes of a stream's config (its dvr.* keys). */
typedef struct {
    const char *uid;  /* the stream's uid: the index key */
    const char *name; /* for log lines; NULL or "": uid */
    int enabled;      /* dvr.enabled */
    int chunk_s;      /* dvr.chunk_s (<= 0: 10) */
    int64_t depth_s;  /* dvr.depth_s */
    int event_mode;   /* dvr.mode is "event" */
} ms_dvr_rec_cfg_t;

/* Loop thread (the stream's worker). Opens a hub reader and records
 * according to cfg (borrowed, copied). Returns NULL when cfg->enabled is 0,
 * DVR is not initialized or memory is short. A config change to dvr.* needs
 * a stop + start. */
ms_dvr_recorder_t *ms_dvr_recorder_start(uv_loop_t *loop, ms_hub_t *hub,
                                         const ms_dvr_rec_cfg_t *cfg);
/* Loop thread. Closes the reader, writes what is pending, closes the open
 * chunk (asynchronously on the writer) and frees rec once its timer handle
 * is closed (the loop must run once more). NULL is a no-op. */
void ms_dvr_recorder_stop(ms_dvr_recorder_t *rec);

/* Any thread. Event-based recording: opens or extends the recording window
 * of stream uid to now + duration_s. The recording starts with the frames
 * already held in memory (pre-event buffer, from a keyframe). -ENOENT when
 * the stream has no recorder, -EINVAL for duration_s <= 0 or > 86400. In
 * continuous mode the call is accepted and changes nothing. */
int ms_dvr_event(const char *uid, int64_t duration_s);

/* Any thread. Ranges of contiguous recording of uid that overlap
 * [from, to] (UTC seconds; to <= 0 means now):
 * {"ranges":[{"from":t,"duration":s,"server":"n1"}]} (new reference). */
int ms_dvr_ranges(const char *uid, int64_t from, int64_t to, json_t **out);

/* Any thread. Overview fields of one stream for cpanel (new reference):
 * records_path, depth_s, chunk_s, mode, recording, ranges, bytes, chunks,
 * disk_free_bytes, memory_bytes. -ENOENT when uid has neither a recorder
 * nor chunks. */
int ms_dvr_status(const char *uid, json_t **out);

/* Any thread. {"roots":[{"path","total_bytes","used_bytes","free_bytes",
 * "used_percent","max_used_percent","queued_bytes"}]} (new reference). */
int ms_dvr_storage(json_t **out);

/* Any thread but a media loop: returns once every operation queued before
 * the call has been written, fsynced and indexed. */
int ms_dvr_flush(void);
/* Same, after a retention pass on every root (tests, admin). */
int ms_dvr_retention_now(void);

/* ---- reading side (playback) ----------------------------------------- */

typedef struct {
    int64_t t_ms;    /* wall time of the fragment's first sample (UTC ms) */
    uint32_t dur_ms; /* its duration */
    uint32_t key;    /* 1 when it starts with a video keyframe */
    uint64_t off;    /* byte offset of its moof in the chunk file */
    uint64_t size;   /* moof + mdat */
} ms_dvr_frag_t;

typedef struct {
    int64_t id;
    const char *uid;          /* stream; points into the array's string pool */
    const char *path;         /* chunk file; likewise */
    const char *root;         /* its storage root; likewise */
    int64_t start_ms, end_ms; /* [start, end) UTC ms */
    uint64_t bytes;           /* file size covered by the index */
    uint32_t init_len;        /* ftyp + moov at offset 0 */
    int open;                 /* still being written */
    size_t nfrags;
    ms_dvr_frag_t *frags;
} ms_dvr_chunk_t;

/* Any thread. Chunks of uid overlapping [from_ms, to_ms), oldest first, in
 * a new array (free with ms_dvr_chunks_free(v, n) with the same n). *n may
 * be 0. uid, path, root and frags point into pools owned by the array (no
 * per-chunk allocation) and stay valid until ms_dvr_chunks_free. */
int ms_dvr_chunks(const char *uid, int64_t from_ms, int64_t to_ms, ms_dvr_chunk_t **out, size_t *n);
void ms_dvr_chunks_free(ms_dvr_chunk_t *v, size_t n);

/* Any thread. Reads [off, off + len) of a chunk file into a new blob
 * (len is clipped to the indexed size; -ERANGE past it). Use for the init
 * segment ([0, init_len)) and for fragments. */
int ms_dvr_chunk_read(const ms_dvr_chunk_t *c, uint64_t off, uint64_t len, ms_blob_t **out);

/* Pure scan of a chunk file's bytes (fMP4 boxes, ISO/IEC 14496-12 8.8):
 * init length, the fragments with their wall times (tfdt / timescale of
 * the video track, else the first track) and the length of the valid
 * prefix (the end of the last complete moof + mdat). */
typedef struct {
    uint32_t init_len;
    uint64_t valid_len;
    size_t nfrags;
    ms_dvr_frag_t *frags; /* malloc'ed; free() */
} ms_dvr_scan_t;

/* Reads through fd with pread (any thread, blocking: writer threads and
 * tests). size = the file size. Returns 0 (valid_len may be 0 when not
 * even the init segment is whole), -EINVAL (not an fMP4 chunk), -ENOMEM or
 * -errno of pread. */
int ms_dvr_scan_fd(int fd, uint64_t size, ms_dvr_scan_t *out);
void ms_dvr_scan_free(ms_dvr_scan_t *s);

#endif
