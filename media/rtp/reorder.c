/* Sequence number unwrapping, reorder window, loss and duplicate detection
 * (RFC 3550 section 5.1 sequence number, appendix A.1 for the dropout rule,
 * A.3 for the loss accounting used by receiver reports). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "media/rtp/rtp_internal.h"

/* A jump this large is a source restart rather than loss (RFC 3550 A.1). */
#define MAX_DROPOUT 3000
/* Held packets are released after this long even if the window is not full. */
#define MAX_HOLD_US 500000
/* Extended numbers start here so that early reordering cannot underflow. */
#define SEQ_BASE (1u << 20)

int ms_rtp_reorder_init(ms_rtp_reorder_t *o, uint32_t window, ms_rtp_stats_t *stats,
                        ms_rtp_deliver_fn deliver, void *ud)
{
    memset(o, 0, sizeof *o);
    if (window > 4096)
        window = 4096;
    o->cap = window;
    if (window) {
        o->slots = calloc(window, sizeof *o->slots);
        if (!o->slots)
            return -ENOMEM;
    }
    o->stats = stats;
    o->deliver = deliver;
    o->ud = ud;
    return 0;
}

void ms_rtp_reorder_reset(ms_rtp_reorder_t *o)
{
    for (uint32_t i = 0; i < o->cap; i++) {
        free(o->slots[i].data);
        memset(&o->slots[i], 0, sizeof o->slots[i]);
    }
    o->count = 0;
    o->started = 0;
    o->received = 0;
    memset(o->hist, 0, sizeof o->hist);
}

void ms_rtp_reorder_free(ms_rtp_reorder_t *o)
{
    if (o->slots)
        ms_rtp_reorder_reset(o);
    free(o->slots);
    o->slots = NULL;
}

static void mark_released(ms_rtp_reorder_t *o, uint64_t ext)
{
    o->hist[ext % MS_RTP_HIST] = ext + 1;
}

static void release(ms_rtp_reorder_t *o, const uint8_t *pkt, size_t len, uint64_t ext,
                    uint64_t lost)
{
    mark_released(o, ext);
    o->next = ext + 1;
    o->deliver(o->ud, pkt, len, lost);
}

/* Releases consecutive held packets starting at next. */
static void drain(ms_rtp_reorder_t *o)
{
    while (o->count) {
        ms_rtp_slot_t *s = &o->slots[o->next % o->cap];
        if (!s->used || s->seq != o->next)
            return;
        uint8_t *d = s->data;
        size_t l = s->len;
        uint64_t ext = s->seq;
        memset(s, 0, sizeof *s);
        o->count--;
        release(o, d, l, ext, 0);
        free(d);
    }
}

/* Lowest held extended number (count > 0). */
static uint64_t lowest_held(const ms_rtp_reorder_t *o, int64_t *at_us)
{
    uint64_t best = UINT64_MAX;
    for (uint32_t i = 0; i < o->cap; i++)
        if (o->slots[i].used && o->slots[i].seq < best) {
            best = o->slots[i].seq;
            *at_us = o->slots[i].at_us;
        }
    return best;
}

/* Gives up on the hole before the lowest held packet: counts it as lost and
 * releases from there. */
static void skip_hole(ms_rtp_reorder_t *o)
{
    int64_t at;
    uint64_t low = lowest_held(o, &at);
    if (low == UINT64_MAX || low < o->next)
        return;
    ms_rtp_slot_t *s = &o->slots[low % o->cap];
    uint64_t lost = low - o->next;
    o->stats->lost += lost;
    uint8_t *d = s->data;
    size_t l = s->len;
    memset(s, 0, sizeof *s);
    o->count--;
    release(o, d, l, low, lost);
    free(d);
    drain(o);
}

void ms_rtp_reorder_flush(ms_rtp_reorder_t *o)
{
    while (o->count)
        skip_hole(o);
}

int ms_rtp_reorder_push(ms_rtp_reorder_t *o, uint16_t seq, const uint8_t *pkt, size_t len,
                        int64_t now_us)
{
    uint64_t ext;
    if (!o->started) {
        o->started = 1;
        ext = SEQ_BASE + seq;
        o->next = o->max_seen = o->base = ext;
    } else {
        int16_t d = (int16_t)(uint16_t)(seq - (uint16_t)o->max_seen);
        ext = (uint64_t)((int64_t)o->max_seen + d);
    }

    if (ext < o->next) {
        /* Already released or given up on. */
        if (o->hist[ext % MS_RTP_HIST] == ext + 1)
            o->stats->duplicates++;
        return 0; /* late: it was counted as lost */
    }
    if (ext - o->next > MAX_DROPOUT) {
        /* Restart of the numbering: release what we hold and resync. */
        ms_rtp_reorder_flush(o);
        o->next = ext;
        o->max_seen = ext;
        o->received++;
        release(o, pkt, len, ext, 1);
        return 0;
    }
    if (ext < o->max_seen)
        o->stats->reordered++;
    else
        o->max_seen = ext;

    if (o->cap == 0) {
        /* No window (TCP): release at once, holes are lost. */
        uint64_t lost = ext - o->next;
        o->stats->lost += lost;
        o->received++;
        release(o, pkt, len, ext, lost);
        return 0;
    }
    if (ext == o->next) {
        o->received++;
        release(o, pkt, len, ext, 0);
        drain(o);
    } else {
        /* Make room: ext must fall inside [next, next + cap). */
        while (ext >= o->next + o->cap) {
            if (o->count == 0) {
                /* Nothing held: the whole hole is lost. */
                uint64_t lost = ext - o->next;
                o->stats->lost += lost;
                o->received++;
                release(o, pkt, len, ext, lost);
                return 0;
            }
            skip_hole(o);
        }
        if (ext == o->next) {
            o->received++;
            release(o, pkt, len, ext, 0);
            drain(o);
        } else {
            ms_rtp_slot_t *s = &o->slots[ext % o->cap];
            if (s->used) {
                o->stats->duplicates++;
                return 0;
            }
            uint8_t *copy = malloc(len ? len : 1);
            if (!copy)
                return -ENOMEM;
            memcpy(copy, pkt, len);
            s->data = copy;
            s->len = len;
            s->seq = ext;
            s->at_us = now_us;
            s->used = 1;
            o->count++;
            o->received++;
        }
    }
    /* A hole that persists too long is given up even with room left. */
    while (o->count) {
        int64_t at = 0;
        (void)lowest_held(o, &at);
        if (now_us - at < MAX_HOLD_US)
            break;
        skip_hole(o);
    }
    return 0;
}
