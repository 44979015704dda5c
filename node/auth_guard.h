/* Brute-force protection of the admin credentials, shared by every
 * listener (HTTP API Basic/Bearer, RTSP admin Basic/Digest, later the login
 * endpoint): one per-address back-off table (util/backoff.h, with its
 * defaults MS_BACKOFF_DEFAULTS) and rate-limited logging of failures.
 * One table for all protocols, so an attacker gains nothing by switching.
 *
 * Use: before verifying credentials sent by address ip, ms_auth_guard_check;
 * when it returns > 0 refuse without checking (HTTP 429 with Retry-After,
 * RTSP 401 with a fresh challenge); otherwise verify and report the result
 * with ms_auth_guard_failed or ms_auth_guard_ok. A request without any
 * credentials is neither a failure nor a success.
 *
 * Logs (WARN, at most one line per second per kind, the next line says how
 * many were suppressed): a failed admin authentication (address and
 * protocol), an address blocked (address, delay), attempts refused while
 * blocked. Never the credentials.
 *
 * Threads: any (the table is created on first use and lives until exit). */
#ifndef MS_NODE_AUTH_GUARD_H
#define MS_NODE_AUTH_GUARD_H

#include <stdint.h>

#include "util/ipaddr.h"

/* 0 when ip may try now, else the milliseconds its block still lasts (the
 * refusal is counted for the log). proto: "http", "rtsp" (for the log). */
int64_t ms_auth_guard_check(const ms_ip_t *ip, const char *proto);
/* A failed attempt: what (e.g. "Basic", "Digest", "Bearer") for the log. */
void ms_auth_guard_failed(const ms_ip_t *ip, const char *proto, const char *what);
/* A successful attempt: the address is forgotten. */
void ms_auth_guard_ok(const ms_ip_t *ip);

#endif
