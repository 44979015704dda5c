/* Internal pieces of the RTP receive path (not for use outside media/rtp/).
 * Pure code; everything here is owned and called by the receiver's thread. */
#ifndef MS_MEDIA_RTP_INTERNAL_H
#define MS_MEDIA_RTP_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "media/rtp/fmtp.h"
#include "media/rtp/receiver.h"
#include "media/stream/frame.h"

/* Frames (and fragmented units) larger than this are dropped as malformed. */
#define MS_RTP_MAX_FRAME (8u * 1024u * 1024u)

/* ---- rtp_packet.c: fixed header, RFC 3550 section 5.1 ---- */
typedef struct {
    uint8_t version, padding, extension, marker, pt, csrc_count;
    uint16_t seq;
    uint32_t ts, ssrc;
    const uint8_t *payload; /* borrowed from the packet buffer */
    size_t payload_len;
} ms_rtp_packet_t;

/* Returns 0 or -EINVAL (short, version != 2, CSRC/extension/padding running
 * past the end). */
int ms_rtp_packet_parse(const uint8_t *pkt, size_t len, ms_rtp_packet_t *out);

/* ---- reorder.c: sequence unwrapping, reorder window, loss/dups ---- */
#define MS_RTP_HIST 512
typedef struct {
    uint8_t *data;
    size_t len;
    uint64_t seq;
    int64_t at_us;
    int used;
} ms_rtp_slot_t;

/* Called in sequence order for each released packet; lost = how many
 * sequence numbers right before this one were never received. */
typedef void (*ms_rtp_deliver_fn)(void *ud, const uint8_t *pkt, size_t len, uint64_t lost);

typedef struct {
    ms_rtp_slot_t *slots; /* cap entries, indexed by ext seq % cap */
    uint32_t cap, count;
    int started;
    uint64_t next;              /* next extended sequence number to release */
    uint64_t max_seen;          /* highest extended sequence number received */
    uint64_t base;              /* first extended sequence number (RR "expected") */
    uint64_t received;          /* distinct packets received (RR) */
    uint64_t hist[MS_RTP_HIST]; /* last released ext seq per slot (+1), for dups */
    ms_rtp_stats_t *stats;
    ms_rtp_deliver_fn deliver;
    void *ud;
} ms_rtp_reorder_t;

int ms_rtp_reorder_init(ms_rtp_reorder_t *o, uint32_t window, ms_rtp_stats_t *stats,
                        ms_rtp_deliver_fn deliver, void *ud);
void ms_rtp_reorder_free(ms_rtp_reorder_t *o);
/* Forgets everything held (SSRC change). Held packets are discarded. */
void ms_rtp_reorder_reset(ms_rtp_reorder_t *o);
/* Takes a copy of pkt when it has to be held. Returns 0 or -ENOMEM. */
int ms_rtp_reorder_push(ms_rtp_reorder_t *o, uint16_t seq, const uint8_t *pkt, size_t len,
                        int64_t now_us);
/* Releases everything held, in order, counting the holes as lost. */
void ms_rtp_reorder_flush(ms_rtp_reorder_t *o);

/* ---- timeline.c: output pts/dts of a track, jump detection ---- */
#define MS_RTP_JUMP_MS    2000 /* timestamps ahead of arrival by more: a jump */
#define MS_RTP_REORDER_MS 500  /* a step back shorter than this is reordering */
#define MS_RTP_TL_RECENT  8    /* positive steps the nominal interval is taken from */
typedef struct {
    uint32_t rate;
    int64_t thresh, reorder; /* MS_RTP_JUMP_MS, MS_RTP_REORDER_MS in ticks */
    int64_t nominal;         /* frame interval: smallest recent positive step */
    int64_t recent[MS_RTP_TL_RECENT];
    int nrecent;
    int started, resync_next;
    int64_t off; /* output pts = extended RTP timestamp + off */
    int64_t last_ext, last_arr_us, last_dts;
    int held; /* a frame that jumped waits for the next one */
    int64_t h_ext, h_arr_us;
    uint64_t jumps, resyncs;
} ms_rtp_timeline_t;

/* clock_rate in Hz; video selects the default nominal interval (25 fps,
 * else 20 ms) used until one is learned. */
void ms_rtp_timeline_init(ms_rtp_timeline_t *tl, uint32_t clock_rate, int video);
/* The next frame starts a new timeline whatever its timestamp (SSRC change,
 * RFC 3550 section 8.2); counted as a resync. */
void ms_rtp_timeline_restart(ms_rtp_timeline_t *tl);
/* Maps one frame: ext = its extended RTP timestamp, arr_us = its arrival
 * (any clock in microseconds; a step back counts as 0). Sets *pts and *dts
 * (dts strictly increasing, first frame 0) and returns 0, or
 * MS_FRAME_DISCONT when the frame starts a new timeline (restart), or
 * MS_RTP_TL_HOLD when its timestamp jumped: *pts and *dts are not set, the
 * caller keeps the frame and calls ms_rtp_timeline_resolve() with the next
 * frame (before mapping that one) or without one (flush, SSRC change).
 * See timeline.c for the rules. Pure; the receiver's thread. */
#define MS_RTP_TL_HOLD 0x100
int ms_rtp_timeline_map(ms_rtp_timeline_t *tl, int64_t ext, int64_t arr_us, int64_t *pts,
                        int64_t *dts);
/* Times of the held frame, given the next frame's ext/arrival when
 * have_next: returns 0 (a one-frame outlier, placed on the old timeline) or
 * MS_FRAME_DISCONT (a new timeline starts at it). Requires a held frame. */
int ms_rtp_timeline_resolve(ms_rtp_timeline_t *tl, int have_next, int64_t next_ext,
                            int64_t next_arr_us, int64_t *pts, int64_t *dts);

/* ---- rtcp.c: RFC 3550 sections 6.4.1 (SR) and 6.4.2 (RR), 6.5 (SDES) ---- */
typedef struct {
    uint32_t ssrc;
    uint64_t ntp; /* 32.32 fixed point seconds since 1900 */
    uint32_t rtp_ts;
    uint32_t packets, octets;
} ms_rtcp_sr_t;

/* Finds the first SR in a compound packet. Returns 1 (found), 0 (valid
 * compound without SR) or -EINVAL. */
int ms_rtcp_find_sr(const uint8_t *pkt, size_t len, ms_rtcp_sr_t *out);

typedef struct {
    uint32_t reporter_ssrc, source_ssrc;
    uint8_t fraction_lost;
    int32_t cumulative_lost; /* clamped to 24 bits signed */
    uint32_t ext_highest_seq, jitter, lsr, dlsr;
    const char *cname;
} ms_rtcp_rr_t;

/* RR with one report block + SDES CNAME; returns the length or 0. */
size_t ms_rtcp_build_rr(const ms_rtcp_rr_t *rr, uint8_t *out, size_t cap);

/* ---- fmtp.c: SDP format parameters (media/rtp/fmtp.h) and hex ---- */
/* Hex string to bytes; returns the length or -1. */
int ms_rtp_hex_decode(const char *s, uint8_t *out, size_t cap);

/* ---- depacketizers ---- */
typedef struct {
    size_t state_size;
    /* Parses the fmtp (may be NULL) into the receiver's params. 0 or
     * -EINVAL with a reason in err. */
    int (*init)(ms_rtp_receiver_t *r, void *st, const char *fmtp, char *err, size_t errlen);
    /* One packet in sequence order; lost = packets missing right before. */
    void (*packet)(ms_rtp_receiver_t *r, void *st, const ms_rtp_packet_t *p, uint64_t lost);
    /* End of input: emit a complete unit still pending. */
    void (*flush)(ms_rtp_receiver_t *r, void *st);
    /* SSRC change: drop partial state. */
    void (*reset)(ms_rtp_receiver_t *r, void *st);
    void (*destroy)(void *st);
} ms_rtp_depack_ops_t;

extern const ms_rtp_depack_ops_t ms_rtp_depack_h264;
extern const ms_rtp_depack_ops_t ms_rtp_depack_h265;
extern const ms_rtp_depack_ops_t ms_rtp_depack_aac;
extern const ms_rtp_depack_ops_t ms_rtp_depack_g711;
extern const ms_rtp_depack_ops_t ms_rtp_depack_meta;

/* ---- receiver.c services for depacketizers ---- */
/* The track's params, writable; call ms_rtp_receiver_params_changed() after
 * a change so on_params runs before the next frame. */
ms_codec_params_t *ms_rtp_receiver_params_mut(ms_rtp_receiver_t *r);
void ms_rtp_receiver_params_changed(ms_rtp_receiver_t *r);
void ms_rtp_receiver_count_malformed(ms_rtp_receiver_t *r);
/* Emits one frame (data copied) with RTP timestamp ts; corrupt = 1 drops it
 * (counted; for video, following frames are dropped until a keyframe). */
void ms_rtp_receiver_emit(ms_rtp_receiver_t *r, const uint8_t *data, size_t len, uint32_t ts,
                          int key, int corrupt);
/* Same for a frame built in place by the caller (payload and size set;
 * the other fields are set here): takes the caller's reference. */
void ms_rtp_receiver_emit_frame(ms_rtp_receiver_t *r, ms_frame_t *f, uint32_t ts, int key);

/* ---- depack_au.c: H.264/H.265 access unit assembly shared code ---- */
#include "util/buf.h"
typedef struct {
    int hevc;
    /* The AU being assembled: 4-byte length-prefixed NALs, built in place
     * in the frame that will carry it (au is a fixed-capacity view of
     * frame->data; depack_au.c au_reserve grows the frame when the AU is
     * larger than expected). A fragmented NAL is reassembled right there
     * (its length patched at the end). The frame is allocated at the
     * expected size of the AU (the last one of its kind, plus a margin) and
     * handed over as it is when the room left is small (no copy into a
     * frame of the exact size); otherwise the AU is copied into an exact
     * frame as before. */
    ms_frame_t *frame;
    ms_buf_t au;
    size_t want;     /* payload bytes asked for the frame (its cap may be more) */
    size_t fu_off;   /* offset in au of the fragmented NAL's length prefix */
    size_t fu_len;   /* its bytes so far (header + data) */
    size_t hint;     /* expected AU size: the last non-key one's, plus a margin */
    size_t key_hint; /* the same for keyframes (0: none seen yet) */
    int active, fu_active;
    uint32_t ts;
    int corrupt, pending_gap;
    int has_key, has_vps, has_sps, has_pps;
} ms_rtp_au_t;

void ms_rtp_au_free(ms_rtp_au_t *a);
void ms_rtp_au_reset(ms_rtp_au_t *a);
/* Loss before the current packet. */
void ms_rtp_au_gap(ms_rtp_au_t *a);
/* Starts or continues the AU for packet p (emitting the previous one on a
 * timestamp change). starts_au: the packet begins with a NAL that can open
 * an access unit (used to judge whether a loss hit this AU). */
void ms_rtp_au_packet(ms_rtp_receiver_t *r, ms_rtp_au_t *a, const ms_rtp_packet_t *p,
                      int starts_au);
/* Adds one complete NAL (updates params for in-band parameter sets). */
void ms_rtp_au_add(ms_rtp_receiver_t *r, ms_rtp_au_t *a, const uint8_t *nal, size_t len);
/* Fragments: start (with the reconstructed header), middle/end. */
void ms_rtp_au_fu(ms_rtp_receiver_t *r, ms_rtp_au_t *a, int start, int end, const uint8_t *hdr,
                  size_t hdr_len, const uint8_t *data, size_t len);
/* Marks the AU corrupt (malformed or unsupported payload). */
void ms_rtp_au_bad(ms_rtp_receiver_t *r, ms_rtp_au_t *a);
/* Emits the AU (inserting parameter sets before an IDR/IRAP). */
void ms_rtp_au_finish(ms_rtp_receiver_t *r, ms_rtp_au_t *a);
/* Stores an in-band or sprop parameter set into params; returns 1 when it
 * changed them. */
int ms_rtp_au_param_set(ms_rtp_receiver_t *r, int hevc, const uint8_t *nal, size_t len);
/* Depacketizer ops for the H.264 and H.265 depacketizers, whose state is
 * one ms_rtp_au_t (st points to it). */
void ms_rtp_au_op_flush(ms_rtp_receiver_t *r, void *st);
void ms_rtp_au_op_reset(ms_rtp_receiver_t *r, void *st);
void ms_rtp_au_op_destroy(void *st);

#endif
