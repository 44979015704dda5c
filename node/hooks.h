/* HTTP authorization hooks (docs/config.md "hooks", docs/rtmp.md), as
 * nginx-rtmp's on_publish: the node POSTs a JSON description of a publish
 * (hooks.on_publish) to an http:// URL and allows it only on a 2xx answer
 * within hooks.timeout_ms; anything else (another status, no answer in
 * time, a connection failure) refuses. A 2xx body may carry overrides
 * ({"dvr": false}: parsed, see ms_hook_parse_answer).
 *
 * The request body (application/json):
 *   {"action": "publish", "stream": "...", "app": "...", "ip": "...",
 *    "protocol": "rtmp", "query": "key=...&token=...", "token": "..."}
 * The call blocks (ms_chttp_request): thread pool or a thread that may
 * block for timeout_ms, never a loop. */
#ifndef MS_NODE_HOOKS_H
#define MS_NODE_HOOKS_H

#include <stddef.h>

#define MS_HOOK_TIMEOUT_MS_DEFAULT 3000
#define MS_HOOK_URL_MAX            512

/* Splits an http:// URL "http://host[:port][/path[?query]]" into
 * base "http://host:port" (port 80 when absent) and the request target
 * (path and query, "/" when absent). 0, or -EINVAL (not http://, no host,
 * bad port, spaces or control characters) or -ENOSPC. Pure; any thread. */
int ms_hook_url_split(const char *url, char *base, size_t bcap, char *target, size_t tcap);

typedef struct {
    int dvr; /* -1: no override; 0 / 1: DVR off / on for this session */
} ms_hook_answer_t;

/* Parses a 2xx answer's body (may be NULL or empty: no overrides). A body
 * that is not a JSON object, or whose "dvr" is not a boolean, is -EINVAL
 * (the caller refuses: a hook that answers garbage is not trusted).
 * Unknown keys are ignored. Pure; any thread. */
int ms_hook_parse_answer(const char *body, ms_hook_answer_t *out);

typedef struct {
    const char *action; /* "publish" or "play" */
    const char *stream, *app, *ip, *protocol, *query, *token;
} ms_hook_req_t;

/* Blocking: POSTs q to url and waits at most timeout_ms (<= 0: the
 * default). 0 allowed (*ans filled, may be NULL), -EACCES refused (reason
 * in why: the status, or "no answer within N ms", ...). Thread pool or a
 * thread that may block; never a loop thread. */
int ms_hook_call(const char *url, const ms_hook_req_t *q, int timeout_ms, ms_hook_answer_t *ans,
                 char *why, size_t cap);

#endif
