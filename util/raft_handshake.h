/* The raft transport's connection handshake: a mutual challenge-response
 * that every raft connection runs before libraft reads a byte of it
 * (docs/security.md "The raft transport"). Both sides prove knowledge of
 * the cluster's raft key K = ms_kdf_derive(secret, MS_KDF_RAFT) with
 * HMAC-SHA256 (RFC 2104 over SHA-256, FIPS 180-4) over the whole transcript,
 * which holds a fresh random nonce from each side and both node ids; a peer
 * that cannot prove it never reaches libraft's decoder.
 *
 * Wire format (integers big-endian, every length fixed or bounded):
 *
 *   HELLO, connector -> acceptor, 56 + addr_len bytes
 *     0  4   magic "MSRH"
 *     4  1   version (1)
 *     5  1   type (1 = HELLO)
 *     6  1   addr_len, 1..MS_RHS_ADDR_MAX
 *     7  1   zero
 *     8  8   from_id: the connector's raft id (non-zero)
 *     16 8   to_id: the raft id it means to reach (non-zero)
 *     24 32  nonce_c: fresh random bytes
 *     56 addr_len  the connector's advertised raft address ("host:port",
 *            printable ASCII, no NUL): libraft's accept callback needs it
 *
 *   CHALLENGE, acceptor -> connector, 88 bytes
 *     0  4   magic "MSRH"
 *     4  1   version (1)
 *     5  1   type (2 = CHALLENGE)
 *     6  2   zero
 *     8  8   from_id: the acceptor's raft id (== HELLO.to_id)
 *     16 8   to_id: HELLO.from_id
 *     24 32  nonce_a: fresh random bytes
 *     56 32  mac_a = HMAC(K, "MSRH1 accept" 0x00 || HELLO || CHALLENGE[0..56))
 *
 *   PROOF, connector -> acceptor, 40 bytes
 *     0  4   magic "MSRH"
 *     4  1   version (1)
 *     5  1   type (3 = PROOF)
 *     6  2   zero
 *     8  32  mac_c = HMAC(K, "MSRH1 connect" 0x00 || HELLO || CHALLENGE ||
 *                          PROOF[0..8))
 *
 * The acceptor checks HELLO.to_id is its own id, answers with CHALLENGE,
 * and hands the stream to libraft only once mac_c verifies. The connector
 * checks CHALLENGE's ids (from the id it dialled, to itself) and mac_a
 * before it sends PROOF, so a connector never talks raft to a non-member
 * either. The role labels differ, so neither MAC can be reflected as the
 * other; each side's nonce makes a recorded transcript useless on a new
 * connection. After PROOF the stream is plain libraft traffic: the
 * handshake authenticates the connection once, it does not encrypt or
 * protect later messages.
 *
 * Pure (no I/O; nonces come from the caller); threads: any, one state per
 * connection. */
#ifndef MS_UTIL_RAFT_HANDSHAKE_H
#define MS_UTIL_RAFT_HANDSHAKE_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#define MS_RHS_KEY_LEN       32
#define MS_RHS_NONCE_LEN     32
#define MS_RHS_MAC_LEN       32
#define MS_RHS_ADDR_MAX      255
#define MS_RHS_HELLO_HDR     56
#define MS_RHS_HELLO_MAX     (MS_RHS_HELLO_HDR + MS_RHS_ADDR_MAX)
#define MS_RHS_CHALLENGE_LEN 88
#define MS_RHS_PROOF_LEN     40

/* Errors, besides -EINVAL for a misuse by the caller. */
#define MS_RHS_EMALFORMED (-EBADMSG) /* not a handshake message of this version */
#define MS_RHS_EBADMAC    (-EACCES)  /* the peer does not hold the key */
#define MS_RHS_EWRONGID   (-ENXIO)   /* the message names another node */

/* One side's handshake. Fill with ms_rhs_connect_start / ms_rhs_accept_*. */
typedef struct {
    uint8_t key[MS_RHS_KEY_LEN];
    uint64_t self_id, peer_id;
    uint8_t hello[MS_RHS_HELLO_MAX];
    size_t hello_len;
    uint8_t challenge[MS_RHS_CHALLENGE_LEN];
    int stage; /* connector: 1 hello sent; acceptor: 1 challenge sent; 2 done */
    char peer_address[MS_RHS_ADDR_MAX + 1]; /* acceptor: from HELLO */
} ms_rhs_t;

/* Connector, step 1: the HELLO for a connection from self_id (advertising
 * self_address, 1..MS_RHS_ADDR_MAX printable characters) to peer_id, with
 * the caller's fresh nonce. Writes *out_len (<= MS_RHS_HELLO_MAX) bytes to
 * out. 0 or -EINVAL (zero id, bad address). */
int ms_rhs_connect_start(ms_rhs_t *hs, const uint8_t key[MS_RHS_KEY_LEN], uint64_t self_id,
                         const char *self_address, uint64_t peer_id,
                         const uint8_t nonce[MS_RHS_NONCE_LEN], uint8_t out[MS_RHS_HELLO_MAX],
                         size_t *out_len);
/* Connector, step 2: verifies the acceptor's CHALLENGE (exactly len ==
 * MS_RHS_CHALLENGE_LEN bytes) and writes the PROOF to out. 0,
 * MS_RHS_EMALFORMED, MS_RHS_EWRONGID (not from the dialled id, or not to
 * us), MS_RHS_EBADMAC; -EINVAL when called out of order. */
int ms_rhs_connect_finish(ms_rhs_t *hs, const uint8_t *in, size_t len,
                          uint8_t out[MS_RHS_PROOF_LEN]);

/* Acceptor, step 0: checks HELLO's fixed header (len must be
 * MS_RHS_HELLO_HDR) and returns how many address bytes follow (1..
 * MS_RHS_ADDR_MAX), or MS_RHS_EMALFORMED. Lets the reader ask for exactly
 * the rest, never more. */
int ms_rhs_hello_addr_len(const uint8_t *in, size_t len);
/* Acceptor, step 1: checks the whole HELLO (header + address, len bytes)
 * against self_id and answers with a CHALLENGE carrying the caller's fresh
 * nonce (MS_RHS_CHALLENGE_LEN bytes to out). 0, MS_RHS_EMALFORMED,
 * MS_RHS_EWRONGID (to_id is not self_id, or from_id is zero or self_id). */
int ms_rhs_accept_hello(ms_rhs_t *hs, const uint8_t key[MS_RHS_KEY_LEN], uint64_t self_id,
                        const uint8_t *in, size_t len, const uint8_t nonce[MS_RHS_NONCE_LEN],
                        uint8_t out[MS_RHS_CHALLENGE_LEN]);
/* Acceptor, step 2: verifies the PROOF (len == MS_RHS_PROOF_LEN). 0 (the
 * peer is hs->peer_id at hs->peer_address), MS_RHS_EMALFORMED or
 * MS_RHS_EBADMAC; -EINVAL out of order. */
int ms_rhs_accept_finish(ms_rhs_t *hs, const uint8_t *in, size_t len);

/* "malformed", "bad MAC", "wrong id", ... for a log line. Static string. */
const char *ms_rhs_strerror(int err);

/* Wipes the key and transcript. */
void ms_rhs_clear(ms_rhs_t *hs);

#endif
