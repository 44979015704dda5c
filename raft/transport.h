/* libraft's raft_uv_transport over TCP (libuv), with the mutual
 * challenge-response of util/raft_handshake.h on every connection before
 * the stream reaches libraft: a peer that cannot prove it holds the
 * cluster's raft key never gets a byte to libraft's decoder
 * (docs/security.md "The raft transport"). Replaces raft_uv_tcp_init,
 * whose own preamble (protocol, id, address) it does not speak.
 *
 * - Connect: numeric or resolved address, TCP connect bounded by
 *   MS_RAFT_CONNECT_TIMEOUT_MS (a partitioned peer drops SYNs; libraft then
 *   retries after its connect retry delay with a fresh SYN), then the
 *   handshake bounded by MS_RAFT_HANDSHAKE_TIMEOUT_MS. Established outgoing
 *   sockets get TCP_USER_TIMEOUT (RFC 5482) so a peer that vanished is
 *   dropped in MS_RAFT_STALL_TIMEOUT_MS instead of the kernel's minutes.
 * - Accept: at most MS_RAFT_HANDSHAKES_MAX handshakes at once (more are
 *   closed at once), each bounded by MS_RAFT_HANDSHAKE_TIMEOUT_MS and read
 *   in exact lengths (nothing past the handshake is consumed).
 * - A refused peer: connection closed, one rate-limited WARN with the
 *   peer's address and the reason (bad MAC, wrong id, timeout, malformed).
 * - close(): stops listening, cancels pending connects (their callbacks
 *   fire with RAFT_CANCELED) and handshakes, fires its callback once every
 *   handle is closed and freed.
 *
 * Threads: everything on the loop given to ms_raft_transport_init. */
#ifndef MS_RAFT_TRANSPORT_H
#define MS_RAFT_TRANSPORT_H

#include <stdint.h>

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#include "util/raft_handshake.h"

#define MS_RAFT_CONNECT_TIMEOUT_MS   1000
#define MS_RAFT_HANDSHAKE_TIMEOUT_MS 2000
#define MS_RAFT_STALL_TIMEOUT_MS     1500
#define MS_RAFT_HANDSHAKES_MAX       64

/* Sets up t (whose version the caller set to 1) as our transport on loop.
 * key: the raft key (ms_kdf_derive(secret, MS_KDF_RAFT)), copied. bind:
 * optional "a.b.c.d:port" to listen on instead of the advertised address,
 * copied. 0 or a negative errno. The memory is released by
 * ms_raft_transport_free, after close's callback (or when it never
 * listened). */
int ms_raft_transport_init(struct raft_uv_transport *t, uv_loop_t *loop,
                           const uint8_t key[MS_RHS_KEY_LEN], const char *bind);
/* Releases what init allocated. Only when nothing runs: close's callback
 * has fired, or listen/connect were never called. NULL-safe via t->impl. */
void ms_raft_transport_free(struct raft_uv_transport *t);

#endif
