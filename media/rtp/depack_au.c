/* Access unit assembly shared by the H.264 (RFC 6184) and H.265 (RFC 7798)
 * depacketizers: collects complete NAL units of one RTP timestamp into the
 * frame payload format of media/stream/frame.h (4-byte lengths), strips
 * AUDs, inserts parameter sets before IDR/IRAP pictures, and tracks loss.
 * Fragmentation units (RFC 6184 5.8, RFC 7798 4.4.3) are reassembled in
 * place in the AU buffer (no separate fragment buffer, one copy less). */
#include <stdlib.h>
#include <string.h>

#include "media/codec/h264.h"
#include "media/codec/h265.h"
#include "media/codec/nal.h"
#include "media/rtp/rtp_internal.h"

#define AU_HINT_MIN 2048
#define AU_HINT_MAX (1u << 20)
/* The frame under construction is kept for the next AU (after a dropped
 * or empty one) while it is this small; a larger one is released, so no
 * stream keeps its largest keyframe's size. */
#define AU_KEEP_MAX (32u * 1024u)

static void au_release(ms_rtp_au_t *a)
{
    ms_frame_unref(a->frame);
    a->frame = NULL;
    ms_buf_free(&a->au); /* a view of the frame: forgets it */
}

void ms_rtp_au_free(ms_rtp_au_t *a)
{
    au_release(a);
}

static const uint8_t *au_data(const ms_rtp_au_t *a)
{
    return a->au.data;
}

static size_t au_len(const ms_rtp_au_t *a)
{
    return a->au.len;
}

static int nal_type(int hevc, const uint8_t *nal);

/* The NAL can open a keyframe (parameter set or IDR/IRAP): the AU it
 * starts gets the keyframe size hint. */
static int keyish(const ms_rtp_au_t *a, const uint8_t *nal)
{
    int t = nal_type(a->hevc, nal);
    if (a->hevc)
        return t == MS_H265_NAL_VPS || t == MS_H265_NAL_SPS || t == MS_H265_NAL_PPS ||
               ms_h265_is_irap(t);
    return t == MS_H264_NAL_SPS || t == MS_H264_NAL_PPS || t == MS_H264_NAL_IDR;
}

/* Room for n more bytes in the frame being assembled. The first call of an
 * AU allocates the frame at the AU's expected size (key: the hint of the
 * keyframes), exactly (ms_buf_reserve would round up to a power of two);
 * an AU larger than expected grows it by half. Sets au.err on failure. */
static int au_reserve(ms_rtp_au_t *a, size_t n, int key)
{
    if (a->au.err)
        return -1;
    size_t need = a->au.len + n;
    if (a->frame && need <= a->au.cap)
        return 0;
    size_t cap;
    if (!a->frame) {
        size_t hint = key && a->key_hint ? a->key_hint : a->hint;
        cap = hint < AU_HINT_MIN ? AU_HINT_MIN : hint;
    } else {
        cap = a->want + a->want / 2 + 1500;
    }
    if (cap < need)
        cap = need;
    ms_frame_t *f = a->frame ? ms_frame_resize(a->frame, cap) : ms_frame_new(NULL, cap);
    if (!f) {
        a->au.err = 1;
        return -1;
    }
    size_t len = a->au.len;
    a->frame = f;
    a->want = cap;
    f->size = f->cap; /* the size class's room is used too (kept by a resize) */
    ms_buf_wrap(&a->au, f->data, f->cap);
    a->au.len = len;
    return 0;
}

/* Appends n bytes; key: see au_reserve (only the AU's first bytes matter). */
static inline void au_put(ms_rtp_au_t *a, const void *p, size_t n, int key)
{
    if (!n || au_reserve(a, n, key) < 0)
        return;
    memcpy(a->au.data + a->au.len, p, n);
    a->au.len += n;
}

static inline void au_put_be32(ms_rtp_au_t *a, uint32_t v, int key)
{
    uint8_t p[4];
    ms_wr_be32(p, v);
    au_put(a, p, 4, key);
}

/* Ends the AU; release: drop the frame under construction too (else it is
 * kept for the next AU while small). */
static void clear_au(ms_rtp_au_t *a, int release)
{
    if (release || (a->frame && a->au.cap > AU_KEEP_MAX))
        au_release(a);
    else
        ms_buf_reset(&a->au);
    a->active = a->fu_active = 0;
    a->corrupt = 0;
    a->has_key = a->has_vps = a->has_sps = a->has_pps = 0;
}

void ms_rtp_au_reset(ms_rtp_au_t *a)
{
    clear_au(a, 0);
    a->pending_gap = 0;
}

/* Drops the fragmented NAL being reassembled. */
static void fu_drop(ms_rtp_au_t *a)
{
    if (a->fu_active && a->au.len > a->fu_off)
        a->au.len = a->fu_off;
    a->fu_active = 0;
    a->fu_len = 0;
}

void ms_rtp_au_gap(ms_rtp_au_t *a)
{
    if (a->active)
        a->corrupt = 1;
    fu_drop(a);
    a->pending_gap = 1;
}

void ms_rtp_au_bad(ms_rtp_receiver_t *r, ms_rtp_au_t *a)
{
    ms_rtp_receiver_count_malformed(r);
    a->corrupt = 1;
    fu_drop(a);
}

void ms_rtp_au_packet(ms_rtp_receiver_t *r, ms_rtp_au_t *a, const ms_rtp_packet_t *p, int starts_au)
{
    if (a->active && p->ts != a->ts)
        ms_rtp_au_finish(r, a);
    if (!a->active) {
        a->active = 1;
        a->ts = p->ts;
        ms_buf_reset(&a->au); /* the frame is allocated by the first NAL */
        /* After a loss, a new AU is only trusted when its first packet
         * begins with something that can open an access unit (an AUD,
         * parameter set, SEI, or the first slice of a picture). */
        if (a->pending_gap && !starts_au)
            a->corrupt = 1;
    }
    a->pending_gap = 0;
}

static int nal_type(int hevc, const uint8_t *nal)
{
    return hevc ? ms_h265_nal_type(nal[0]) : ms_h264_nal_type(nal[0]);
}

static int same(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    return al == bl && memcmp(a, b, al) == 0;
}

int ms_rtp_au_param_set(ms_rtp_receiver_t *r, int hevc, const uint8_t *nal, size_t len)
{
    ms_codec_params_t *p = ms_rtp_receiver_params_mut(r);
    if (len < 2 || len > MS_PARAM_SET_MAX)
        return 0;
    int t = nal_type(hevc, nal);
    uint8_t *dst;
    uint16_t *dl;
    if (hevc ? t == MS_H265_NAL_VPS : 0) {
        dst = p->vps;
        dl = &p->vps_len;
    } else if (t == (hevc ? MS_H265_NAL_SPS : MS_H264_NAL_SPS)) {
        dst = p->sps;
        dl = &p->sps_len;
    } else if (t == (hevc ? MS_H265_NAL_PPS : MS_H264_NAL_PPS)) {
        dst = p->pps;
        dl = &p->pps_len;
    } else {
        return 0;
    }
    if (same(dst, *dl, nal, len))
        return 0;
    if (dst == p->sps) {
        /* Only an SPS we can parse replaces the current one. */
        if (hevc) {
            ms_h265_sps_t s;
            if (ms_h265_parse_sps(nal, len, &s) != 0)
                return 0;
            p->width = s.width;
            p->height = s.height;
            p->profile = s.general_profile_idc;
            p->level = s.general_level_idc;
        } else {
            ms_h264_sps_t s;
            if (ms_h264_parse_sps(nal, len, &s) != 0)
                return 0;
            p->width = s.width;
            p->height = s.height;
            p->profile = s.profile_idc;
            p->level = s.level_idc;
        }
    }
    memcpy(dst, nal, len);
    *dl = (uint16_t)len;
    ms_rtp_receiver_params_changed(r);
    return 1;
}

/* Looks at one complete NAL: 1 = keep it, 0 = skip it (AUD), -1 = bad.
 * Updates the AU's flags and the track's parameter sets. */
static int nal_check(ms_rtp_receiver_t *r, ms_rtp_au_t *a, const uint8_t *nal, size_t len)
{
    if (len == 0 || (a->hevc && len < 2))
        return -1;
    int t = nal_type(a->hevc, nal);
    if (a->hevc) {
        if (t == MS_H265_NAL_AUD)
            return 0;
        if (ms_h265_is_irap(t))
            a->has_key = 1;
        a->has_vps |= t == MS_H265_NAL_VPS;
        a->has_sps |= t == MS_H265_NAL_SPS;
        a->has_pps |= t == MS_H265_NAL_PPS;
    } else {
        if (t == MS_H264_NAL_AUD)
            return 0;
        if (t == MS_H264_NAL_IDR)
            a->has_key = 1;
        a->has_sps |= t == MS_H264_NAL_SPS;
        a->has_pps |= t == MS_H264_NAL_PPS;
    }
    (void)ms_rtp_au_param_set(r, a->hevc, nal, len);
    return 1;
}

void ms_rtp_au_add(ms_rtp_receiver_t *r, ms_rtp_au_t *a, const uint8_t *nal, size_t len)
{
    int k = nal_check(r, a, nal, len);
    if (k < 0) {
        ms_rtp_au_bad(r, a);
        return;
    }
    if (!k)
        return;
    if (au_len(a) + 4 + len > MS_RTP_MAX_FRAME) {
        ms_rtp_au_bad(r, a);
        return;
    }
    if (a->corrupt)
        return; /* will be dropped: keep no bytes */
    int key = keyish(a, nal);
    au_put_be32(a, (uint32_t)len, key);
    au_put(a, nal, len, key);
}

void ms_rtp_au_fu(ms_rtp_receiver_t *r, ms_rtp_au_t *a, int start, int end, const uint8_t *hdr,
                  size_t hdr_len, const uint8_t *data, size_t len)
{
    if (start) {
        if (a->fu_active) /* the previous NAL never ended */
            ms_rtp_au_bad(r, a);
        a->fu_active = 1;
        a->fu_off = a->au.len;
        a->fu_len = hdr_len;
        if (!a->corrupt) {
            int key = hdr_len && keyish(a, hdr);
            au_put_be32(a, 0, key); /* patched when the NAL ends */
            au_put(a, hdr, hdr_len, key);
        }
    } else if (!a->fu_active) {
        /* Continuation without a start: the start was lost (already
         * counted) or the stream is broken. */
        if (!a->corrupt)
            ms_rtp_receiver_count_malformed(r);
        a->corrupt = 1;
        return;
    }
    if (a->fu_len + len > MS_RTP_MAX_FRAME || au_len(a) + len > MS_RTP_MAX_FRAME) {
        ms_rtp_au_bad(r, a);
        return;
    }
    a->fu_len += len;
    if (!a->corrupt && len)
        au_put(a, data, len, 0);
    if (!end)
        return;
    a->fu_active = 0;
    if (a->corrupt || a->au.err) {
        a->corrupt = 1;
        return; /* nothing of this AU is kept */
    }
    uint8_t *nal = a->au.data + a->fu_off + 4;
    size_t nlen = a->au.len - a->fu_off - 4;
    int k = nal_check(r, a, nal, nlen);
    if (k <= 0) {
        a->au.len = a->fu_off; /* an AUD (dropped) or a bad NAL */
        if (k < 0)
            ms_rtp_au_bad(r, a);
        return;
    }
    ms_wr_be32(a->au.data + a->fu_off, (uint32_t)nlen);
}

static void put_nal(ms_buf_t *o, const uint8_t *nal, size_t len)
{
    ms_buf_be32(o, (uint32_t)len);
    ms_buf_append(o, nal, len);
}

/* Writes the AU's own NALs of type t, or the stored set when it has none. */
static void put_sets(ms_buf_t *o, const ms_rtp_au_t *a, int t, int has, const uint8_t *stored,
                     size_t stored_len)
{
    if (!has) {
        if (stored_len)
            put_nal(o, stored, stored_len);
        return;
    }
    size_t off = 0;
    const uint8_t *n;
    size_t nl;
    while (ms_nal_next(au_data(a), au_len(a), &off, &n, &nl) == 1)
        if (nal_type(a->hevc, n) == t)
            put_nal(o, n, nl);
}

void ms_rtp_au_finish(ms_rtp_receiver_t *r, ms_rtp_au_t *a)
{
    if (!a->active)
        return;
    if (a->fu_active) /* the last fragment never came */
        a->corrupt = 1;
    if (a->au.err)
        a->corrupt = 1;
    if (!a->corrupt && au_len(a) == 0) {
        clear_au(a, 0); /* only AUDs or nothing at all */
        return;
    }
    if (a->corrupt) {
        ms_rtp_receiver_emit(r, NULL, 0, a->ts, 0, 1);
        clear_au(a, 0);
        return;
    }
    /* expected size of the next AU of this kind: this one's plus a margin */
    size_t len = au_len(a);
    size_t hint = len + len / 8 + (a->has_key ? 1024 : 512);
    if (hint > AU_HINT_MAX)
        hint = AU_HINT_MAX;
    if (a->has_key)
        a->key_hint = hint;
    else
        a->hint = hint;
    const ms_codec_params_t *p = ms_rtp_receiver_params_mut(r);
    int key = a->has_key;
    if (key && ((!a->has_sps && !p->sps_len) || (!a->has_pps && !p->pps_len) ||
                (a->hevc && !a->has_vps && !p->vps_len)))
        key = 0; /* cannot be decoded on its own: not a usable keyframe */
    if (!key || (a->has_sps && a->has_pps && (!a->hevc || a->has_vps))) {
        if (a->frame && (a->want <= len || a->want - len <= len / 4 + 1024)) {
            /* Little room left: the frame goes as it is (no copy). The
             * room is bounded so that frames held by the GOP cache waste
             * little; the next AU allocates its own frame. */
            ms_frame_t *f = a->frame;
            a->frame = NULL;
            ms_buf_free(&a->au);
            f->size = (uint32_t)len;
            ms_rtp_receiver_emit_frame(r, f, a->ts, key);
            clear_au(a, 0);
            return;
        }
        /* Much smaller than expected: copied into a frame of its exact
         * size, and the large one released (the next AU allocates at the
         * updated hint). */
        ms_rtp_receiver_emit(r, au_data(a), len, a->ts, key, 0);
        clear_au(a, 1);
        return;
    }
    /* Keyframe lacking parameter sets: VPS, SPS, PPS first, then the rest in
     * order (SEI and slices may only follow them, H.264 7.4.1.2.3). */
    ms_buf_t o = MS_BUF_INIT;
    int tv = MS_H265_NAL_VPS;
    int ts = a->hevc ? MS_H265_NAL_SPS : MS_H264_NAL_SPS;
    int tp = a->hevc ? MS_H265_NAL_PPS : MS_H264_NAL_PPS;
    if (a->hevc)
        put_sets(&o, a, tv, a->has_vps, p->vps, p->vps_len);
    put_sets(&o, a, ts, a->has_sps, p->sps, p->sps_len);
    put_sets(&o, a, tp, a->has_pps, p->pps, p->pps_len);
    size_t off = 0;
    const uint8_t *n;
    size_t nl;
    while (ms_nal_next(au_data(a), au_len(a), &off, &n, &nl) == 1) {
        int t = nal_type(a->hevc, n);
        if (t == ts || t == tp || (a->hevc && t == tv))
            continue;
        put_nal(&o, n, nl);
    }
    ms_rtp_receiver_emit(r, o.data, o.len, a->ts, 1, o.err);
    ms_buf_free(&o);
    clear_au(a, 1);
}

void ms_rtp_au_op_flush(ms_rtp_receiver_t *r, void *st)
{
    ms_rtp_au_finish(r, st);
}

void ms_rtp_au_op_reset(ms_rtp_receiver_t *r, void *st)
{
    (void)r;
    ms_rtp_au_reset(st);
}

void ms_rtp_au_op_destroy(void *st)
{
    ms_rtp_au_free(st);
}
