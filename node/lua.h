/* Lua hook scripts (docs/lua.md): every *.lua of the node's lua_dir, run in
 * a sandbox (PUC Lua 5.4).
 *
 * Engine: the set of scripts that runs (their sources, each with its
 * SHA-256) is immutable and reference counted; a reload builds a new set
 * and swaps it in under a mutex. Every calling thread has its own
 * lua_State (never shared between threads), built from the current set
 * on the thread's first call and rebuilt on its first call after a reload
 * (the old state is closed by that thread).
 *
 * Sandbox of every state: the base library without dofile, loadfile,
 * collectgarbage (load reads text chunks only), string (without dump),
 * table, math, utf8 and the ms.* API; no io, os, package, debug,
 * coroutine. Limits: a memory cap per state (lua_Alloc), an instruction
 * budget per call (a count hook; once the budget is spent the hook raises
 * an error at every instruction, so a pcall in the script cannot resume),
 * setmetatable refusing a __gc field, and a cost cap on the string
 * library's pattern functions (find/match/gmatch/gsub), which run as one
 * C call the hook cannot interrupt.
 *
 * Each script runs in its own environment (a table whose __index is the
 * shared globals), so two scripts' on_play do not collide. */
#ifndef MS_NODE_LUA_H
#define MS_NODE_LUA_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

typedef struct ms_lua ms_lua_t;

#define MS_LUA_MEM_CAP_DEFAULT (32u << 20) /* bytes per lua_State */
#define MS_LUA_BUDGET_DEFAULT  20000000    /* VM instructions per call */
#define MS_LUA_FILE_MAX        (1 << 20)   /* bytes of one script */
#define MS_LUA_FILES_MAX       64          /* scripts of lua_dir */
#define MS_LUA_PAT_MAX         256         /* bytes of a pattern */
#define MS_LUA_PAT_COST_MAX    2e7         /* pattern cost estimate (lua.c pattern_cost) */
#define MS_LUA_PANEL_MAX       16          /* cpanel columns, and fields, per node */
#define MS_LUA_PANEL_TEXT_MAX  200         /* bytes of one cpanel value */

typedef struct {
    size_t mem_cap;     /* 0 = MS_LUA_MEM_CAP_DEFAULT */
    int64_t budget;     /* 0 = MS_LUA_BUDGET_DEFAULT */
    int fail_open;      /* a script error or spent budget allows (default: denies) */
    int session_ttl_ms; /* on_play decisions cached this long after the last use; 0 = 10 s */
    const char *secret; /* the node's secret, for ms.token (copied; NULL = no tokens) */
} ms_lua_opts_t;

/* A new engine for the scripts of dir (copied; "" = no scripts), which are
 * loaded now (errors logged; a script that does not load is left out).
 * opts may be NULL. Returns NULL only when out of memory. The caller owns
 * it (ms_lua_free). Any thread. */
ms_lua_t *ms_lua_new(const char *dir, const ms_lua_opts_t *opts);
/* Frees the engine. No call on it may run or follow. States that threads
 * still hold are closed by those threads on their next call on another
 * engine or at thread exit. */
void ms_lua_free(ms_lua_t *e);

/* Re-reads the directory: every *.lua that loads (compiles and whose top
 * level runs within the limits) replaces its previous version; one that
 * does not keeps its previous version (if any) and is reported. Returns a
 * new JSON report the caller owns:
 *   {"ok": bool, "hash": "<sha256 of the set>", "files": [{"file": "a.lua",
 *    "sha256": "<of the text that runs>", "loaded": bool, "error": "a.lua:3: ..."}]}
 * (error only when it failed). NULL when out of memory. Any thread;
 * reloads are serialised. */
json_t *ms_lua_reload(ms_lua_t *e);
/* {"dir", "hash", "files": [{"file", "sha256"}]} of what runs (new
 * reference). Any thread. */
json_t *ms_lua_status(ms_lua_t *e);

/* One access request (borrowed strings; NULL = ""). */
typedef struct {
    const char *action;   /* "play" | "publish" */
    const char *stream;   /* stream name */
    const char *app;      /* RTMP application, "" for playback */
    const char *protocol; /* hls | rtsp | mp4 | jpeg | archive | rtmp ... */
    const char *ip;       /* client address */
    const char *query;    /* the request's raw query string */
    const char *token;    /* ?token= or "" */
    const char *user_agent;
    const char *mode; /* "live" | "archive" */
} ms_lua_req_t;

/* Runs on_play (action "play") or on_publish (action "publish") of every
 * script, in file name order, until one refuses. 0 = allowed (also when
 * no script defines the hook); -EACCES refused (reason gets the script's
 * reason, or the error under fail "closed"). Not cached. Any thread. */
int ms_lua_decide(ms_lua_t *e, const ms_lua_req_t *q, char *reason, size_t cap);

/* An HTTP call of a script's route (ms.route): script = the file's base
 * name, path = the rest after /api/v1/lua/{script} ("/" when empty),
 * body = JSON text or NULL. *out gets the JSON answer (new reference,
 * never NULL on return >= 0). Returns the HTTP status (the script's, or
 * 404 no such script or route, 400 body not JSON, 500 script error), or
 * -ENOMEM. Any thread. */
int ms_lua_http(ms_lua_t *e, const char *script, const char *method, const char *path,
                const char *query, const char *ip, const char *body, size_t body_len, json_t **out);

/* The cpanel descriptor (GET /api/v1/lua/panel): every ms.panel_column
 * and ms.panel_field of the scripts (file name order), each computed for
 * every stream of this node, in one call under one budget:
 *   {"columns": [{"title", "script", "values": {uid: text}, "error"?}],
 *    "fields": [...same...], "error"?: "..."}
 * A value is the function's string, number or boolean as text (nil: none),
 * cut to MS_LUA_PANEL_TEXT_MAX bytes at a character boundary; "error" of
 * an entry is its first failure. New reference the caller owns, NULL only
 * when out of memory. Any thread. */
json_t *ms_lua_panel(ms_lua_t *e);

/* ---- events and timers (off the media path) ---------------------------
 * One thread per engine runs on_event(ev) of every script for each queued
 * event, and the ms.every(seconds, fn) timers of the scripts (in that
 * thread's own state). With poll_ms > 0 it also polls this node's streams
 * every poll_ms and posts a "stream" event for each change of state
 * (active, inactive, suspended, stopped, removed). Stopped by
 * ms_lua_free. 0 or -errno. Any thread, once. */
int ms_lua_events_start(ms_lua_t *e, int poll_ms);
/* Queues ev = {type, stream, state, previous} for on_event (copied; at
 * most 1024 waiting: the oldest is dropped, -ENOSPC). Any thread. */
int ms_lua_event_post(ms_lua_t *e, const char *type, const char *stream, const char *state,
                      const char *previous);

/* ---- the node's engine ------------------------------------------------
 * main sets it before serving and clears it (NULL) after the servers
 * stopped; it owns it. */
void ms_lua_set_global(ms_lua_t *e);
ms_lua_t *ms_lua_global(void);

/* The playback hook (api/access.c ms_playback_decide): on_play of the
 * node's engine, its answer cached per session, the key being protocol,
 * stream, client address, token and user agent, until the session is
 * idle for session_ttl_ms, until expires (UTC s, 0 = none: a token's
 * expiry) or until a reload. 0 allowed (also without an engine), -EACCES
 * refused with reason. Any thread. */
int ms_lua_on_play(const ms_lua_req_t *q, int64_t expires, char *reason, size_t cap);

/* A check that runs before the scripts on a cache miss (the HTTP on_play
 * hook, node/hooks.h): 0 or -EACCES with the reason in why. It may block
 * (it runs on the caller's thread). */
typedef int (*ms_lua_pre_fn)(void *ud, const ms_lua_req_t *q, char *why, size_t cap);

/* ms_lua_on_play with pre (may be NULL) run first: the cache holds the
 * combined answer (one call of pre per session, as for the scripts), and
 * works without an engine (session TTL 10 s then). Any thread; it blocks
 * for as long as pre does on a miss. */
int ms_lua_on_play_pre(const ms_lua_req_t *q, int64_t expires, ms_lua_pre_fn pre, void *pre_ud,
                       char *reason, size_t cap);

/* The publish hook for ingest protocols (RTMP): on_publish of the node's
 * engine, q->action is set to "publish"; not cached (call it once per
 * publishing session). 0 allowed, -EACCES refused with reason. Any
 * thread. */
int ms_lua_on_publish(const ms_lua_req_t *q, char *reason, size_t cap);

#endif
