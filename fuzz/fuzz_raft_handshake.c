/* libFuzzer target: the raft handshake decoders (util/raft_handshake.h) on
 * arbitrary bytes. The first byte picks the side:
 *   0: acceptor: HELLO (header, then as many address bytes as it says),
 *      then the rest as PROOF;
 *   1: connector: the rest as CHALLENGE to a HELLO we sent;
 *   2: round trip: the rest are nonces and an address; a handshake between
 *      two honest sides must succeed, and one flipped PROOF byte must fail.
 * Nothing may crash, read out of bounds, or accept a message the key did
 * not MAC. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/raft_handshake.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t KEY[MS_RHS_KEY_LEN] = "fuzz raft key, thirty-two bytes";
#define ID_A 0x1234
#define ID_C 0x5678

static void acceptor(const uint8_t *d, size_t n)
{
    uint8_t nonce[MS_RHS_NONCE_LEN] = {7}, chal[MS_RHS_CHALLENGE_LEN];
    ms_rhs_t hs;
    int alen = ms_rhs_hello_addr_len(d, n < MS_RHS_HELLO_HDR ? n : MS_RHS_HELLO_HDR);
    size_t hl = alen > 0 ? MS_RHS_HELLO_HDR + (size_t)alen : (n < MS_RHS_HELLO_MAX ? n : 0);
    if (hl > n)
        hl = n;
    if (ms_rhs_accept_hello(&hs, KEY, ID_A, d, hl, nonce, chal) != 0)
        return;
    if (alen <= 0 || hs.peer_id == 0 || hs.peer_id == ID_A ||
        strlen(hs.peer_address) != (size_t)alen)
        abort();
    /* no PROOF can verify unless it came from the key: the fuzzer never
     * holds it, so acceptance here is a bug */
    if (ms_rhs_accept_finish(&hs, d + hl, n - hl) == 0)
        abort();
}

static void connector(const uint8_t *d, size_t n)
{
    uint8_t nonce[MS_RHS_NONCE_LEN] = {9}, hello[MS_RHS_HELLO_MAX], proof[MS_RHS_PROOF_LEN];
    size_t hl = 0;
    ms_rhs_t hs;
    if (ms_rhs_connect_start(&hs, KEY, ID_C, "127.0.0.1:1", ID_A, nonce, hello, &hl) != 0)
        abort();
    if (ms_rhs_connect_finish(&hs, d, n, proof) == 0)
        abort();
}

static void round_trip(const uint8_t *d, size_t n)
{
    uint8_t nc[MS_RHS_NONCE_LEN] = {0}, na[MS_RHS_NONCE_LEN] = {0};
    char addr[MS_RHS_ADDR_MAX + 1];
    size_t k = n < 2 * MS_RHS_NONCE_LEN ? n : 2 * MS_RHS_NONCE_LEN;
    for (size_t i = 0; i < k; i++)
        (i < MS_RHS_NONCE_LEN ? nc : na)[i % MS_RHS_NONCE_LEN] = d[i];
    size_t al = 0;
    for (size_t i = k; i < n && al < MS_RHS_ADDR_MAX; i++)
        addr[al++] = (char)(0x21 + d[i] % 94); /* printable, no space */
    if (al == 0)
        addr[al++] = 'x';
    addr[al] = '\0';
    uint8_t hello[MS_RHS_HELLO_MAX], chal[MS_RHS_CHALLENGE_LEN], proof[MS_RHS_PROOF_LEN];
    size_t hl = 0;
    ms_rhs_t c, a, a2;
    if (ms_rhs_connect_start(&c, KEY, ID_C, addr, ID_A, nc, hello, &hl) != 0 ||
        ms_rhs_hello_addr_len(hello, MS_RHS_HELLO_HDR) != (int)al ||
        ms_rhs_accept_hello(&a, KEY, ID_A, hello, hl, na, chal) != 0 ||
        ms_rhs_connect_finish(&c, chal, sizeof chal, proof) != 0 || strcmp(a.peer_address, addr))
        abort();
    a2 = a;
    if (ms_rhs_accept_finish(&a, proof, sizeof proof) != 0)
        abort();
    proof[8 + (n % MS_RHS_MAC_LEN)] ^= 1;
    if (ms_rhs_accept_finish(&a2, proof, sizeof proof) != MS_RHS_EBADMAC)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    switch (data[0] % 3) {
    case 0:
        acceptor(data + 1, size - 1);
        break;
    case 1:
        connector(data + 1, size - 1);
        break;
    default:
        round_trip(data + 1, size - 1);
        break;
    }
    return 0;
}
