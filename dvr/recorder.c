/* DVR recorder (dvr/dvr.h): a hub reader on the stream's worker loop that
 * cuts the frames into fragments (moof + mdat, ISO/IEC 14496-12 8.8; one
 * per GOP or per ~1 s) and chunks (a new file at the first keyframe after
 * dvr.chunk_s), and hands the bytes to its root's writer thread as
 * refcounted blobs. Nothing here touches the disk.
 *
 * Time: a recording session is anchored at its first keyframe (wall clock
 * of that frame, its dts); every sample's decode time is the anchor's wall
 * time plus the dts elapsed since, written into tfdt in the track timescale
 * (so tfdt / timescale = UTC seconds and chunks of one session follow each
 * other without a timeline jump). A session ends (and the chunk closes) on
 * MS_FRAME_DISCONT, on a dts hole or step back longer than gap_ms, when the
 * frames' wall clock drifts more than gap_ms from the anchored timeline, and
 * when no frame came for gap_ms; the next keyframe starts a new one.
 *
 * Event mode: while no event window is open the recorder keeps the last
 * prebuffer_ms of frame references (from a keyframe); ms_dvr_event() opens
 * or extends the window (an atomic deadline), the next frame replays the
 * buffer into a new session and recording continues until a frame (or the
 * timer) finds the window closed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dvr/dvr_int.h"
#include "media/fmp4/fmp4.h"
#include "util/clock.h"
#include "util/log.h"

/* An event window takes the frames that arrive up to this long after its
 * end: one batched read (ingest_batch_ms is at most 1 s; docs/dvr.md). */
#define EVENT_GRACE_MS 1000

/* A batched camera read (ingest_batch_ms, 1 s by default) brings a recorded
 * stream's frames at most this long after they arrived: a kill -9 then loses
 * at most this wait plus the camera's own latency and one frame, within 1 s
 * (tests/integration/test_crash_loss.py; docs/dvr.md "What a crash loses").
 * Costs one more read per second per recorded camera at the default. */
#define BATCH_MAX_MS 500

#define FRAG_MAX 1024 /* frames in one fragment before a forced cut */
#define PRE_MAX  8192 /* frames in the pre-event buffer */
#define TIMER_MS 250

struct ms_dvr_recorder {
    struct ms_dvr_recorder *next; /* registry, under ms_dvr_g.reg_mu */
    char uid[64];
    char ctx[200];
    int64_t chunk_ms, depth_s;
    int event_mode;
    atomic_int_least64_t event_until_ms;
    atomic_int_least64_t mem;
    atomic_int recording;
    atomic_int paused_err; /* set by the writer: why chunks are not written */
    atomic_int root;       /* last root used */

    /* loop only */
    uv_loop_t *loop;
    ms_hub_t *hub;
    ms_reader_t *reader;
    uv_timer_t timer;
    ms_codec_params_t params[MS_MAX_TRACKS];
    int ntracks, vtrack;
    ms_fmp4_t *mp4;
    ms_blob_t *init;
    int session;
    int64_t anchor_wall_ms, anchor90, last_v90, last_frame_mono;
    ms_dvr_wchunk_t *chunk;
    int chunk_root;
    int64_t chunk_start_ms;
    uint32_t seq;
    ms_frame_t *pend[FRAG_MAX];
    int npend;
    int64_t pend_bytes;
    int pend_capped; /* the byte limit cut a fragment since the last keyframe */
    int64_t frag_start90;
    uint32_t last_dur[MS_MAX_TRACKS];
    ms_buf_t buf;
    ms_frame_t **pre;
    size_t npre, precap;
    int64_t pre_bytes;
};

static void update_mem(ms_dvr_recorder_t *rec)
{
    atomic_store(&rec->mem, (int_least64_t)(rec->pend_bytes + rec->pre_bytes +
                                            (int64_t)rec->buf.cap + (int64_t)sizeof *rec +
                                            (int64_t)(rec->precap * sizeof(ms_frame_t *))));
}

static int64_t rate_of(const ms_dvr_recorder_t *rec, int track)
{
    return rec->params[track].clock_rate ? rec->params[track].clock_rate : 90000;
}

static int64_t to90(const ms_dvr_recorder_t *rec, const ms_frame_t *f)
{
    int64_t r = rate_of(rec, f->track);
    return r == 90000 ? f->dts : f->dts * 90000 / r;
}

/* tfdt of a dts of track (track timescale), on the session's wall timeline. */
static int64_t tfdt_of(const ms_dvr_recorder_t *rec, int track, int64_t dts)
{
    int64_t r = rate_of(rec, track);
    return rec->anchor_wall_ms * r / 1000 + (dts - rec->anchor90 * r / 90000);
}

/* ---- chunks ------------------------------------------------------------- */

static int pick_root(void)
{
    int best = 0, best_pct = 101;
    for (size_t i = 0; i < ms_dvr_g.nroots; i++) {
        int p = atomic_load(&ms_dvr_g.roots[i].used_pct);
        if (p < best_pct) {
            best = (int)i;
            best_pct = p;
        }
    }
    return best;
}

static void open_chunk(ms_dvr_recorder_t *rec, int64_t start_ms)
{
    if (!rec->init)
        return;
    int root = pick_root();
    ms_dvr_root_t *r = &ms_dvr_g.roots[root];
    ms_dvr_wchunk_t *c = calloc(1, sizeof *c);
    ms_dvr_op_t *op = calloc(1, sizeof *op);
    if (!c || !op) {
        free(c);
        free(op);
        MS_ERROR(rec->ctx, "out of memory opening a chunk");
        return;
    }
    snprintf(c->uid, sizeof c->uid, "%s", rec->uid);
    ms_dvr_chunk_path(c->path, sizeof c->path, r->path, rec->uid, start_ms);
    c->root = root;
    c->fd = -1;
    op->kind = MS_DVR_OP_OPEN;
    op->c = c;
    op->blob = ms_blob_ref(rec->init);
    op->meta.t_ms = start_ms;
    if (ms_dvr_writer_post(r, op) < 0) {
        free(c);
        return;
    }
    rec->chunk = c;
    rec->chunk_root = root;
    rec->chunk_start_ms = start_ms;
    atomic_store(&rec->root, root);
    atomic_store(&rec->recording, 1);
}

static void close_chunk(ms_dvr_recorder_t *rec)
{
    if (!rec->chunk)
        return;
    ms_dvr_op_t *op = calloc(1, sizeof *op);
    if (op) {
        op->kind = MS_DVR_OP_CLOSE;
        op->c = rec->chunk;
        ms_dvr_writer_post(&ms_dvr_g.roots[rec->chunk_root], op);
    } else {
        MS_ERROR(rec->ctx, "out of memory closing a chunk (left open until shutdown)");
    }
    rec->chunk = NULL;
    atomic_store(&rec->recording, 0);
}

/* ---- fragments ---------------------------------------------------------- */

static void drop_pending(ms_dvr_recorder_t *rec)
{
    for (int i = 0; i < rec->npend; i++)
        ms_frame_unref(rec->pend[i]);
    rec->npend = 0;
    rec->pend_bytes = 0;
}

/* Writes the pending frames as one fragment. next_of (may be NULL) gives the
 * duration of the last sample of its track. */
static void emit(ms_dvr_recorder_t *rec, const ms_frame_t *next_of)
{
    if (!rec->npend)
        return;
    if (!rec->chunk) {
        drop_pending(rec);
        return;
    }
    ms_fmp4_sample_t *smp = malloc(sizeof *smp * (size_t)rec->npend);
    if (!smp) {
        drop_pending(rec);
        return;
    }
    ms_fmp4_run_t runs[MS_MAX_TRACKS];
    int nruns = 0, prim = -1;
    uint64_t prim_dur = 0;
    size_t k = 0;
    for (int t = 0; t < rec->ntracks; t++) {
        if (!ms_fmp4_carries(rec->mp4, t))
            continue;
        size_t first = k;
        uint64_t sum = 0;
        for (int i = 0; i < rec->npend; i++) {
            const ms_frame_t *f = rec->pend[i];
            if (f->track != t)
                continue;
            int64_t nd = -1;
            for (int j = i + 1; j < rec->npend && nd < 0; j++)
                if (rec->pend[j]->track == t)
                    nd = rec->pend[j]->dts;
            if (nd < 0 && next_of && next_of->track == t)
                nd = next_of->dts;
            /* never <= 0 nor absurd (a hole in an audio track, a fault) */
            uint32_t d = ms_fmp4_sample_duration(f->dts, nd, rec->last_dur[t],
                                                 (uint32_t)rate_of(rec, t), rec->params[t].codec);
            rec->last_dur[t] = d;
            smp[k].frame = f;
            smp[k].duration = d;
            sum += d;
            k++;
        }
        if (k > first) {
            runs[nruns].track = t;
            runs[nruns].base_dts = (uint64_t)tfdt_of(rec, t, smp[first].frame->dts);
            runs[nruns].samples = smp + first;
            runs[nruns].nsamples = k - first;
            if (prim < 0 || t == rec->vtrack) {
                prim = nruns;
                prim_dur = sum;
            }
            nruns++;
        }
    }
    ms_buf_reset(&rec->buf);
    ms_blob_t *b = NULL;
    if (nruns && ms_fmp4_write_fragment(rec->mp4, ++rec->seq, runs, nruns, &rec->buf) == 0)
        b = ms_buf_to_blob(&rec->buf);
    ms_dvr_op_t *op = b ? calloc(1, sizeof *op) : NULL;
    if (op) {
        const ms_fmp4_run_t *pr = &runs[prim];
        int64_t r = rate_of(rec, pr->track);
        op->kind = MS_DVR_OP_FRAG;
        op->c = rec->chunk;
        op->blob = b;
        op->meta.t_ms = (int64_t)pr->base_dts * 1000 / r;
        op->meta.dur_ms = (uint32_t)(prim_dur * 1000 / (uint64_t)r);
        op->meta.key = rec->vtrack < 0 ||
                       (rec->pend[0]->track == rec->vtrack && (rec->pend[0]->flags & MS_FRAME_KEY));
        ms_dvr_writer_post(&ms_dvr_g.roots[rec->chunk_root], op);
    } else {
        ms_blob_unref(b);
        MS_ERROR(rec->ctx, "cannot build a fragment (out of memory)");
    }
    free(smp);
    drop_pending(rec);
}

static void end_session(ms_dvr_recorder_t *rec)
{
    emit(rec, NULL);
    close_chunk(rec);
    rec->session = 0;
}

/* Takes the reference f. */
static void record(ms_dvr_recorder_t *rec, ms_frame_t *f)
{
    if (!rec->mp4 || f->track >= rec->ntracks || !ms_fmp4_carries(rec->mp4, f->track)) {
        ms_frame_unref(f);
        return;
    }
    int64_t gap90 = ms_dvr_g.tun.gap_ms * 90;
    int is_video = f->track == rec->vtrack;
    int clockish = is_video || rec->vtrack < 0; /* frames that drive the cuts */
    int vkey = is_video && (f->flags & MS_FRAME_KEY);
    int boundary = vkey || rec->vtrack < 0; /* may start a session or a chunk */
    int64_t t90 = to90(rec, f);
    if (rec->session && (f->flags & MS_FRAME_DISCONT))
        end_session(rec);
    if (rec->session && clockish) {
        int64_t exp_ms = rec->anchor_wall_ms + (t90 - rec->anchor90) / 90;
        int64_t wall_ms = f->wallclock_us / 1000;
        int64_t drift = wall_ms - exp_ms;
        if (t90 < rec->last_v90 || t90 - rec->last_v90 > gap90 ||
            (f->wallclock_us && (drift > ms_dvr_g.tun.gap_ms || drift < -ms_dvr_g.tun.gap_ms)))
            end_session(rec);
    }
    if (!rec->session) {
        if (!boundary) {
            ms_frame_unref(f);
            return;
        }
        rec->session = 1;
        rec->anchor_wall_ms = f->wallclock_us ? f->wallclock_us / 1000 : ms_wall_us() / 1000;
        rec->anchor90 = t90;
        rec->last_v90 = t90;
        rec->frag_start90 = t90;
        open_chunk(rec, rec->anchor_wall_ms);
    }
    if (t90 < rec->anchor90) { /* audio slightly before the first keyframe */
        ms_frame_unref(f);
        return;
    }
    int64_t tms = rec->anchor_wall_ms + (t90 - rec->anchor90) / 90;
    if (boundary && rec->chunk && tms - rec->chunk_start_ms >= rec->chunk_ms) {
        emit(rec, f);
        close_chunk(rec);
        open_chunk(rec, tms);
        rec->frag_start90 = t90;
    } else if (!rec->chunk && boundary) {
        open_chunk(rec, tms); /* a previous open failed: retry at a keyframe */
        rec->frag_start90 = t90;
    } else if (rec->npend && (vkey || rec->npend == FRAG_MAX ||
                              (clockish && t90 - rec->frag_start90 >= ms_dvr_g.tun.frag_ms * 90))) {
        emit(rec, f);
        rec->frag_start90 = t90;
    } else if (rec->npend && rec->pend_bytes + f->size > ms_hub_limit_bytes(rec->hub)) {
        /* a huge frame rate x size: the fragment in memory stays under the
         * hub's byte limit (the chunk goes on, nothing is lost) */
        emit(rec, f);
        rec->frag_start90 = t90;
        if (!rec->pend_capped) {
            char what[96];
            snprintf(what, sizeof what, "DVR fragment written at %lld MB",
                     (long long)(ms_hub_limit_bytes(rec->hub) >> 20));
            ms_hub_note_limit(rec->hub, what);
            rec->pend_capped = 1;
        }
    }
    if (vkey)
        rec->pend_capped = 0;
    if (!rec->chunk) {
        ms_frame_unref(f);
        return;
    }
    if (!rec->npend)
        rec->frag_start90 = t90;
    rec->pend[rec->npend++] = f;
    rec->pend_bytes += f->size;
    if (clockish)
        rec->last_v90 = t90;
    rec->last_frame_mono = ms_mono_ms();
}

/* ---- pre-event buffer ---------------------------------------------------- */

static void pre_drop_front(ms_dvr_recorder_t *rec, size_t k)
{
    for (size_t i = 0; i < k; i++) {
        rec->pre_bytes -= rec->pre[i]->size;
        ms_frame_unref(rec->pre[i]);
    }
    if (k && rec->npre > k)
        memmove(rec->pre, rec->pre + k, (rec->npre - k) * sizeof *rec->pre);
    rec->npre -= k;
}

static void pre_clear(ms_dvr_recorder_t *rec)
{
    pre_drop_front(rec, rec->npre);
}

static int pre_is_key(const ms_dvr_recorder_t *rec, const ms_frame_t *f)
{
    return rec->vtrack < 0 || (f->track == rec->vtrack && (f->flags & MS_FRAME_KEY));
}

/* Takes the reference f. Keeps from the newest keyframe at least
 * prebuffer_ms older than f. */
static void pre_push(ms_dvr_recorder_t *rec, ms_frame_t *f)
{
    if (!rec->mp4 || f->track >= rec->ntracks || !ms_fmp4_carries(rec->mp4, f->track) ||
        (!rec->npre && !pre_is_key(rec, f)) || ms_dvr_g.tun.prebuffer_ms <= 0) {
        ms_frame_unref(f);
        return;
    }
    if (f->flags & MS_FRAME_DISCONT)
        pre_clear(rec);
    if (rec->npre == rec->precap) {
        size_t nc = rec->precap ? rec->precap * 2 : 256;
        ms_frame_t **np = nc <= PRE_MAX ? realloc(rec->pre, nc * sizeof *np) : NULL;
        if (!np) { /* full: restart at the next keyframe after the first */
            size_t k = 1;
            while (k < rec->npre && !pre_is_key(rec, rec->pre[k]))
                k++;
            pre_drop_front(rec, k);
        } else {
            rec->pre = np;
            rec->precap = nc;
        }
    }
    if (!rec->npre && !pre_is_key(rec, f)) {
        ms_frame_unref(f);
        return;
    }
    if (rec->npre && rec->pre_bytes + f->size > ms_hub_limit_bytes(rec->hub)) {
        /* no keyframe for too long: keep from the next keyframe after the
         * first, else nothing (the buffer restarts at the next keyframe) */
        size_t k = 1;
        while (k < rec->npre && !pre_is_key(rec, rec->pre[k]))
            k++;
        pre_drop_front(rec, k);
        char what[96];
        snprintf(what, sizeof what, "DVR pre-event buffer dropped at %lld MB",
                 (long long)(ms_hub_limit_bytes(rec->hub) >> 20));
        if (!rec->npre)
            ms_hub_note_limit(rec->hub, what);
        if (!rec->npre && !pre_is_key(rec, f)) {
            ms_frame_unref(f);
            return;
        }
    }
    rec->pre[rec->npre++] = f;
    rec->pre_bytes += f->size;
    if (pre_is_key(rec, f) && (f->track == rec->vtrack || rec->vtrack < 0)) {
        int64_t now90 = to90(rec, f);
        size_t cut = 0;
        for (size_t i = 1; i < rec->npre; i++) {
            const ms_frame_t *g = rec->pre[i];
            if (!pre_is_key(rec, g))
                continue;
            if (now90 - to90(rec, g) >= ms_dvr_g.tun.prebuffer_ms * 90)
                cut = i;
            else
                break;
        }
        if (cut)
            pre_drop_front(rec, cut);
    }
}

/* ---- hub side ------------------------------------------------------------ */

static void load_tracks(ms_dvr_recorder_t *rec)
{
    ms_fmp4_free(rec->mp4);
    rec->mp4 = NULL;
    ms_blob_unref(rec->init);
    rec->init = NULL;
    rec->ntracks = ms_hub_ntracks(rec->hub);
    if (rec->ntracks > MS_MAX_TRACKS)
        rec->ntracks = MS_MAX_TRACKS;
    rec->vtrack = -1;
    for (int i = 0; i < rec->ntracks; i++)
        rec->params[i] = *ms_hub_track(rec->hub, i);
    if (!rec->ntracks)
        return;
    rec->mp4 = ms_fmp4_new(rec->params, rec->ntracks);
    if (!rec->mp4)
        return;
    for (int i = 0; i < rec->ntracks; i++)
        if (rec->vtrack < 0 && rec->params[i].kind == MS_TRACK_VIDEO &&
            ms_fmp4_carries(rec->mp4, i))
            rec->vtrack = i;
    ms_buf_t b = MS_BUF_INIT;
    if (ms_fmp4_write_init(rec->mp4, &b) == 0)
        rec->init = ms_buf_to_blob(&b);
    ms_buf_free(&b);
    if (!rec->init) {
        MS_WARN(rec->ctx, "tracks cannot be recorded (no parameter sets yet?)");
        ms_fmp4_free(rec->mp4);
        rec->mp4 = NULL;
    }
}

static void on_frame(ms_dvr_recorder_t *rec, ms_frame_t *f)
{
    if (!rec->event_mode) {
        record(rec, f);
        return;
    }
    /* judged on arrival (a camera's clock may be off), with one batch of
     * grace: a batched read (ingest_batch_ms, at most 1 s) brings frames
     * up to one interval after their capture, and those of the window's
     * last second would otherwise be lost */
    int64_t now_ms = ms_wall_us() / 1000;
    if (now_ms < atomic_load(&rec->event_until_ms) + EVENT_GRACE_MS) {
        if (rec->npre) {
            /* the recording starts with what was already in memory */
            size_t n = rec->npre;
            rec->npre = 0;
            rec->pre_bytes = 0;
            for (size_t i = 0; i < n; i++)
                record(rec, rec->pre[i]);
        }
        record(rec, f);
    } else {
        if (rec->session)
            end_session(rec);
        pre_push(rec, f);
    }
}

static void on_frames(ms_reader_t *r, void *ud)
{
    ms_dvr_recorder_t *rec = ud;
    ms_frame_t *f;
    while ((f = ms_reader_pop(r)) != NULL)
        on_frame(rec, f);
    update_mem(rec);
}

/* A batched read ended (ms_hub_batch_end): what it brought goes to the
 * writer now, so a kill -9 loses at most one batch interval (dvr.md). */
static void on_batch_end(ms_reader_t *r, void *ud)
{
    (void)r;
    ms_dvr_recorder_t *rec = ud;
    if (rec->npend) {
        emit(rec, NULL);
        update_mem(rec);
    }
}

static void on_tracks(ms_reader_t *r, void *ud)
{
    (void)r;
    ms_dvr_recorder_t *rec = ud;
    end_session(rec);
    pre_clear(rec);
    load_tracks(rec);
    update_mem(rec);
}

static void timer_cb(uv_timer_t *t)
{
    ms_dvr_recorder_t *rec = t->data;
    int64_t idle = ms_mono_ms() - rec->last_frame_mono;
    /* frames stalled: what is pending reaches the disk anyway */
    if (rec->npend && idle >= ms_dvr_g.tun.frag_ms)
        emit(rec, NULL);
    if (rec->session && idle > ms_dvr_g.tun.gap_ms)
        end_session(rec);
    if (rec->event_mode && rec->session &&
        ms_wall_us() / 1000 >= atomic_load(&rec->event_until_ms) + EVENT_GRACE_MS)
        end_session(rec);
    update_mem(rec);
}

/* ---- lifecycle ----------------------------------------------------------- */

ms_dvr_recorder_t *ms_dvr_recorder_start(uv_loop_t *loop, ms_hub_t *hub,
                                         const ms_dvr_rec_cfg_t *cfg)
{
    if (!ms_dvr_g.inited || !cfg->enabled || !ms_dvr_g.nroots)
        return NULL;
    ms_dvr_recorder_t *rec = calloc(1, sizeof *rec);
    if (!rec)
        return NULL;
    snprintf(rec->uid, sizeof rec->uid, "%s", cfg->uid);
    snprintf(rec->ctx, sizeof rec->ctx, "[node %s] [stream %s] [dvr]", ms_dvr_g.node_name,
             cfg->name && cfg->name[0] ? cfg->name : cfg->uid);
    rec->chunk_ms = (cfg->chunk_s > 0 ? cfg->chunk_s : 10) * (int64_t)1000;
    rec->depth_s = cfg->depth_s;
    rec->event_mode = cfg->event_mode != 0;
    rec->loop = loop;
    rec->hub = hub;
    rec->vtrack = -1;
    rec->last_frame_mono = ms_mono_ms();
    ms_dvr_op_t *op = calloc(1, sizeof *op);
    if (!op) {
        free(rec);
        return NULL;
    }
    op->kind = MS_DVR_OP_STREAM;
    snprintf(op->uid, sizeof op->uid, "%s", rec->uid);
    op->depth_s = rec->depth_s;
    ms_dvr_writer_post(&ms_dvr_g.roots[0], op);

    uv_timer_init(loop, &rec->timer);
    rec->timer.data = rec;
    uv_timer_start(&rec->timer, timer_cb, ms_phase_delay(uv_now(loop), TIMER_MS), TIMER_MS);
    load_tracks(rec);

    pthread_mutex_lock(&ms_dvr_g.reg_mu);
    rec->next = ms_dvr_g.recs;
    ms_dvr_g.recs = rec;
    pthread_mutex_unlock(&ms_dvr_g.reg_mu);

    ms_reader_opts_t ro = {.queue_frames = 0,
                           .on_frames = on_frames,
                           .on_tracks = on_tracks,
                           .on_batch_end = on_batch_end,
                           .batch_max_ms = BATCH_MAX_MS,
                           .ud = rec};
    rec->reader = ms_hub_reader_open(hub, &ro);
    if (!rec->reader)
        MS_ERROR(rec->ctx, "cannot open a hub reader");
    MS_INFO(rec->ctx, "recording (%s, chunk %lld s, depth %lld s)",
            rec->event_mode ? "event" : "continuous", (long long)(rec->chunk_ms / 1000),
            (long long)rec->depth_s);
    update_mem(rec);
    return rec;
}

static void timer_closed(uv_handle_t *h)
{
    ms_dvr_recorder_t *rec = h->data;
    ms_fmp4_free(rec->mp4);
    ms_blob_unref(rec->init);
    ms_buf_free(&rec->buf);
    free(rec->pre);
    free(rec);
}

void ms_dvr_recorder_stop(ms_dvr_recorder_t *rec)
{
    if (!rec)
        return;
    pthread_mutex_lock(&ms_dvr_g.reg_mu);
    for (ms_dvr_recorder_t **pp = &ms_dvr_g.recs; *pp; pp = &(*pp)->next)
        if (*pp == rec) {
            *pp = rec->next;
            break;
        }
    pthread_mutex_unlock(&ms_dvr_g.reg_mu);
    if (rec->reader)
        ms_hub_reader_close(rec->reader);
    rec->reader = NULL;
    end_session(rec);
    pre_clear(rec);
    uv_timer_stop(&rec->timer);
    uv_close((uv_handle_t *)&rec->timer, timer_closed);
}

int ms_dvr_event(const char *uid, int64_t duration_s)
{
    if (!uid || duration_s <= 0 || duration_s > 86400)
        return -EINVAL;
    int64_t until = ms_wall_us() / 1000 + duration_s * 1000;
    int rc = -ENOENT;
    pthread_mutex_lock(&ms_dvr_g.reg_mu);
    for (ms_dvr_recorder_t *r = ms_dvr_g.recs; r; r = r->next) {
        if (strcmp(r->uid, uid) != 0)
            continue;
        int_least64_t cur = atomic_load(&r->event_until_ms);
        while (cur < until && !atomic_compare_exchange_weak(&r->event_until_ms, &cur, until))
            ;
        rc = 0;
    }
    pthread_mutex_unlock(&ms_dvr_g.reg_mu);
    return rc;
}

int ms_dvr_recorder_status_locked(const char *uid, json_t *o)
{
    for (ms_dvr_recorder_t *r = ms_dvr_g.recs; r; r = r->next) {
        if (strcmp(r->uid, uid) != 0)
            continue;
        int root = atomic_load(&r->root);
        char path[MS_DVR_PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", ms_dvr_g.roots[root].path, r->uid);
        json_object_set_new(o, "records_path", json_string(path));
        json_object_set_new(o, "mode", json_string(r->event_mode ? "event" : "continuous"));
        json_object_set_new(o, "chunk_s", json_integer(r->chunk_ms / 1000));
        json_object_set_new(o, "depth_s", json_integer(r->depth_s));
        int perr = atomic_load(&r->paused_err);
        json_object_set_new(o, "recording", json_boolean(atomic_load(&r->recording) && !perr));
        if (perr) {
            char why[160];
            snprintf(why, sizeof why, "%s: %s",
                     perr == -ENOSPC || perr == -EDQUOT ? "disk full" : "write error",
                     strerror(-perr));
            json_object_set_new(o, "paused", json_string(why));
        } else {
            json_object_set_new(o, "paused", json_null());
        }
        json_object_set_new(o, "memory_bytes", json_integer(atomic_load(&r->mem)));
        json_object_set_new(o, "disk_free_bytes",
                            json_integer(atomic_load(&ms_dvr_g.roots[root].avail)));
        int64_t until = atomic_load(&r->event_until_ms);
        if (r->event_mode)
            json_object_set_new(o, "event_until", until ? json_integer(until / 1000) : json_null());
        return 1;
    }
    return 0;
}

void ms_dvr_recorder_set_paused(const char *uid, int err)
{
    pthread_mutex_lock(&ms_dvr_g.reg_mu);
    for (ms_dvr_recorder_t *r = ms_dvr_g.recs; r; r = r->next)
        if (strcmp(r->uid, uid) == 0)
            atomic_store(&r->paused_err, err);
    pthread_mutex_unlock(&ms_dvr_g.reg_mu);
}
