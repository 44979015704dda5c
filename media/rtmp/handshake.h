/* RTMP handshake, server side (Adobe RTMP 1.0 section 5.2), both forms:
 *  - simple (5.2.2-5.2.3): S1 = time + zero + random, S2 = echo of C1
 *    (GStreamer rtmp2, rtmpdump, OBS);
 *  - digest ("complex", Flash Player 9+ and ffmpeg): C1 carries an
 *    HMAC-SHA256 digest keyed with the Flash Player key at one of two
 *    schemes (offset base 8 or 772 of C1); when it validates, S1 carries a
 *    digest keyed with the Flash Media Server key and the last 32 bytes of
 *    S2 are an HMAC of S2 keyed with HMAC(FMS full key, C1 digest). These
 *    are the well-known FP/FMS keys and offsets that the open
 *    implementations (librtmp, ffmpeg, nginx-rtmp) agree on; the RTMP 1.0
 *    spec itself documents only the simple form.
 *
 * Pure: fed bytes, produces bytes. One object per connection, its owner's
 * thread. */
#ifndef MS_MEDIA_RTMP_HANDSHAKE_H
#define MS_MEDIA_RTMP_HANDSHAKE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/buf.h"

#define MS_RTMP_HS_SIZE 1536

typedef enum {
    MS_RTMP_HS_C0C1 = 0, /* waiting for C0 + C1 */
    MS_RTMP_HS_C2,       /* S0 S1 S2 sent, waiting for C2 */
    MS_RTMP_HS_DONE,
} ms_rtmp_hs_state_t;

typedef struct {
    ms_rtmp_hs_state_t state;
    int digest; /* the client used the digest form (scheme 0 or 1), 0 = simple */
    size_t have;
    uint8_t buf[1 + MS_RTMP_HS_SIZE];
} ms_rtmp_hs_t;

void ms_rtmp_hs_init(ms_rtmp_hs_t *hs);
/* Consumes up to len bytes of data; appends S0+S1+S2 to out once C0+C1 are
 * in. Returns the bytes consumed (the rest belongs to the chunk stream once
 * the state is DONE), or -EPROTONOSUPPORT (C0 version other than 3; RTMPE
 * 6 is not supported), -ENOMEM. */
ssize_t ms_rtmp_hs_feed(ms_rtmp_hs_t *hs, const uint8_t *data, size_t len, ms_buf_t *out);

/* Digest helpers (exposed for tests and the client side of tests):
 * the offset of the 32-byte digest in a 1536-byte C1/S1 for scheme base
 * (8 or 772), and whether the digest there validates with the first
 * key_len bytes of the FP (client) or FMS (server) key. */
size_t ms_rtmp_hs_digest_offset(const uint8_t *p, size_t base);
int ms_rtmp_hs_digest_ok(const uint8_t *p, size_t base, int server_key);
/* Writes a valid digest into p (1536 bytes) at scheme base with the
 * client (server_key 0) or server key. */
void ms_rtmp_hs_digest_put(uint8_t *p, size_t base, int server_key);
/* The expected last 32 bytes of S2 (server) or C2 for a peer digest. */
void ms_rtmp_hs_s2_sig(const uint8_t *s2, const uint8_t peer_digest[32], int server_key,
                       uint8_t out[32]);

#endif
