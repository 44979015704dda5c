/* Keys derived from the cluster secret, one per purpose.
 *
 * Every node of a cluster shares one `secret` (docs/security.md); each use of
 * it (the raft transport handshake, node-to-node HTTP, join datagrams,
 * playback tokens) takes its own key, derived with HKDF-SHA256 (RFC 5869):
 *   PRK = HKDF-Extract(salt = "mediaserver-kdf-v1", IKM = secret)
 *   key = HKDF-Expand(PRK, info = label, L = 32)
 * so a key that leaks from one purpose (say, a MAC seen on the wire) says
 * nothing about the others. Labels are the MS_KDF_* strings below; a new
 * purpose adds a new label, never reuses one.
 *
 * Pure (no I/O, no state); threads: any. */
#ifndef MS_UTIL_KDF_H
#define MS_UTIL_KDF_H

#include <stddef.h>
#include <stdint.h>

#define MS_KDF_KEY_LEN 32

#define MS_KDF_RAFT       "raft transport v1"
#define MS_KDF_CHTTP      "node http v1"
#define MS_KDF_JOIN       "join v1"
#define MS_KDF_TOKEN      "playback token v1"
#define MS_KDF_LOGIN      "login v1"      /* admin login tokens (util/logintoken.h) */
#define MS_KDF_RTSP_NONCE "rtsp nonce v1" /* RTSP Digest nonces (api/rtsp_access.c) */

/* Derives the key for label from secret into out (MS_KDF_KEY_LEN bytes).
 * secret: NUL-terminated, non-empty; label: one of MS_KDF_*. Returns 0, or
 * -EINVAL for an empty secret or label, -EIO when OpenSSL fails. */
int ms_kdf_derive(const char *secret, const char *label, uint8_t out[MS_KDF_KEY_LEN]);

#endif
