/* SDP a=fmtp parameter lookup (RFC 4566 section 6, "a=fmtp:<format>
 * <format specific parameters>"): the one parser of "key=value; key=value"
 * strings, used by the SDP parser (media/rtsp/sdp.c) and the depacketizers.
 * Pure: no I/O, no globals. Threads: any. */
#ifndef MS_MEDIA_RTP_FMTP_H
#define MS_MEDIA_RTP_FMTP_H

#include <stddef.h>

/* Copies the value of key (case-insensitive; blanks around key and value
 * and a trailing CR/LF dropped) from fmtp (the parameters after the format,
 * may be NULL) into out (caller's, NUL-terminated). Returns the value
 * length, or -1 when absent or when the value does not fit in cap - 1. */
int ms_rtp_fmtp_get(const char *fmtp, const char *key, char *out, size_t cap);
/* Non-negative decimal value of key, or def when absent/invalid. */
long ms_rtp_fmtp_int(const char *fmtp, const char *key, long def);

#endif
