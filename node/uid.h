/* Stream uids and secrets (RFC 4122 UUID text form, 36 characters).
 * Every function: any thread. */
#ifndef MS_NODE_UID_H
#define MS_NODE_UID_H

#include <stddef.h>

#define MS_UID_LEN 37 /* 36 characters + NUL */

/* Random UUID version 4 (RFC 4122 section 4.4) from OpenSSL RAND_bytes.
 * Returns 0 or -EIO when the random generator fails. */
int ms_uid_random(char out[MS_UID_LEN]);

/* Name-based UUID in the manner of version 5 (RFC 4122 section 4.3): the
 * first 16 bytes of SHA-1 over a fixed namespace string, a, NUL, b, with the
 * version and variant bits set. Same inputs give the same uid on every node
 * and every start. */
void ms_uid_derive(const char *a, const char *b, char out[MS_UID_LEN]);

/* Random secret: 2*nbytes lowercase hex characters into out (outlen >=
 * 2*nbytes+1). Returns 0 or -EIO / -EINVAL. */
int ms_secret_random(char *out, size_t outlen, size_t nbytes);

#endif
