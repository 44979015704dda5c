/* The stream directory: one JSON file per stream (docs/config.md "Stream config", "Stream
 * directory") in the node's streams_dir, applied at start and on SIGHUP (declarative).
 *
 * Rules (docs/config.md "Stream directory"):
 *  - every regular file named *.json (not starting with '.') is read, in
 *    byte order of the file names, so the outcome never depends on readdir;
 *  - an invalid file is reported ("FILE: KEY: reason") and skipped; the
 *    other files still apply. A stream already running from a file that has
 *    become invalid keeps running with its last valid config;
 *  - the same name or uid in two files: the later file (by name) is skipped
 *    with an error;
 *  - a file without "uid" gets a stable uid derived from the node name and
 *    the file name (ms_uid_derive), so reloads and restarts keep it;
 *  - diff against what the directory applied last time: new uid -> apply,
 *    changed (ms_stream_cfg_equal) -> apply, uid gone -> remove; unchanged
 *    streams are not touched. enabled=false applies as MS_RUN_SUSPEND.
 *
 * Threads: a loader belongs to the control loop (main thread). */
#ifndef MS_NODE_LOADER_H
#define MS_NODE_LOADER_H

#include <stddef.h>

#include "node/config.h"
#include "node/streams.h"

/* A set of stream configs plus the files that failed to parse. */
typedef struct {
    ms_stream_cfg_t *v;
    size_t n;
    char **failed; /* source_file paths of skipped files */
    size_t nfailed;
} ms_stream_set_t;

void ms_stream_set_free(ms_stream_set_t *s);

/* Reads dir. Returns 0 (problems with single files are in errs, those files
 * are in out->failed) or a negative errno when the directory itself cannot
 * be read (then out is empty). */
int ms_loader_scan(const char *dir, const char *node_name, ms_stream_set_t *out,
                   ms_errlist_t *errs);

typedef enum {
    MS_LOADER_ADD = 0,
    MS_LOADER_UPDATE,
    MS_LOADER_REMOVE,
    MS_LOADER_KEEP
} ms_loader_op_t;

typedef struct {
    ms_loader_op_t op;
    size_t index; /* into next for ADD/UPDATE, into cur for REMOVE/KEEP */
} ms_loader_action_t;

/* Pure: the actions that take the node from cur (applied last time) to
 * next. Unchanged streams get no action. A stream of cur whose uid is gone
 * from next but whose file is in next->failed gets KEEP (it stays as it
 * is). Order: REMOVE first (frees names for renames), then UPDATE, then ADD,
 * then KEEP. Returns the count (*out allocated, caller frees) or -ENOMEM. */
long ms_loader_diff(const ms_stream_set_t *cur, const ms_stream_set_t *next,
                    ms_loader_action_t **out);

typedef struct {
    char dir[MS_PATH_MAX];
    char node_name[MS_NAME_MAX];
    ms_stream_set_t cur; /* what the directory applied last */
    /* Where the actions go: ms_streams_apply/ms_streams_remove in the
     * daemon (tests substitute their own). */
    int (*apply)(const ms_stream_cfg_t *cfg, ms_run_state_t desired);
    int (*remove)(const char *uid);
} ms_loader_t;

typedef int (*ms_loader_apply_fn)(const ms_stream_cfg_t *cfg, ms_run_state_t desired);
typedef int (*ms_loader_remove_fn)(const char *uid);
void ms_loader_init(ms_loader_t *l, const char *dir, const char *node_name,
                    ms_loader_apply_fn apply, ms_loader_remove_fn remove);
/* Scans, diffs, applies. Every problem is logged; returns the number of
 * problems (0 = clean) or a negative errno when the directory cannot be read
 * (then nothing changes). */
int ms_loader_reload(ms_loader_t *l);
void ms_loader_free(ms_loader_t *l);

#endif
