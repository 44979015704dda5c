/* DVR index benchmark (bench/README.md): builds a synthetic index of
 * STREAMS streams x DAYS days of CHUNK_S-second chunks (one keyframe
 * fragment per second, a 10 s hole every 1000 chunks) in one transaction
 * with a prepared statement, then times ms_dvr_ranges() over the whole
 * window and the 24 h archive playlist (ms_dvr_chunks + ms_dvr_playlist, as
 * the HLS handler does) of one stream, ms_dvr_status, and checks that the
 * chunks read from the blocks equal the chunk rows (playlist byte-identical).
 * Prints figures; never fails on time.
 *
 *   dvr_index DIR STREAMS DAYS CHUNK_S */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dvr/archive.h"
#include "dvr/dvr_int.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

#define RUNS 5

int main(int argc, char **argv)
{
    if (argc != 5 && argc != 6) {
        fprintf(stderr, "usage: %s DIR STREAMS DAYS CHUNK_S [RUNS_ONLY]\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    int streams = atoi(argv[2]), days = atoi(argv[3]), chunk_s = atoi(argv[4]);
    if (streams <= 0 || days <= 0 || chunk_s <= 0)
        return 2;
    snprintf(ms_dvr_g.db_path, sizeof ms_dvr_g.db_path, "%s/dvr_index.sqlite", dir);
    snprintf(ms_dvr_g.node_name, sizeof ms_dvr_g.node_name, "bench");
    ms_dvr_tuning_defaults(&ms_dvr_g.tun);
    sqlite3 *db;
    if (ms_dvr_db_open(ms_dvr_g.db_path, &db) < 0)
        return 1;
    int64_t end_ms = (int64_t)time(NULL) * 1000;
    int64_t span_ms = (int64_t)days * 86400000;
    int64_t per = span_ms / (chunk_s * 1000);
    double t0 = now_ms();
    if (argc == 6) {
        /* index of an earlier run in DIR: only the timed queries */
        sqlite3_stmt *q;
        sqlite3_prepare_v2(db, "SELECT max(end_ms) FROM chunks", -1, &q, NULL);
        if (sqlite3_step(q) == SQLITE_ROW)
            end_ms = sqlite3_column_int64(q, 0);
        sqlite3_finalize(q);
        ms_dvr_db_close(db);
        goto timed;
    }
    /* one transaction; a large page cache so that pages are not spilled
     * (and logged again) into the WAL while it grows */
    sqlite3_exec(db, "PRAGMA synchronous=OFF; PRAGMA cache_size=-1500000; BEGIN", NULL, NULL, NULL);
    sqlite3_stmt *st;
    sqlite3_prepare_v2(db,
                       "INSERT INTO chunks(uid,root,path,start_ms,end_ms,bytes,init_len,open,frags)"
                       " VALUES(?,?,?,?,?,?,?,0,?)",
                       -1, &st, NULL);
    ms_dvr_frag_t fr[64];
    int nf = chunk_s < 64 ? chunk_s : 64;
    for (int s = 0; s < streams; s++) {
        char uid[64];
        snprintf(uid, sizeof uid, "stream-%04d", s);
        int64_t t = end_ms - span_ms;
        for (int64_t i = 0; i < per; i++) {
            if (i && i % 1000 == 0)
                t += 10000; /* a hole: a new range */
            char path[256];
            snprintf(path, sizeof path, "%s/archive/%s/%lld.m4s", dir, uid, (long long)t);
            uint64_t off = 1000;
            for (int k = 0; k < nf; k++) {
                fr[k] = (ms_dvr_frag_t){t + k * 1000, 1000, 1, off, 100000};
                off += 100000;
            }
            size_t bl;
            void *blob = ms_dvr_frags_encode(fr, (size_t)nf, &bl);
            sqlite3_bind_text(st, 1, uid, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 2, dir, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 3, path, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int64(st, 4, t);
            sqlite3_bind_int64(st, 5, t + chunk_s * 1000);
            sqlite3_bind_int64(st, 6, (int64_t)off);
            sqlite3_bind_int64(st, 7, 1000);
            sqlite3_bind_blob(st, 8, blob, (int)bl, free);
            if (sqlite3_step(st) != SQLITE_DONE) {
                fprintf(stderr, "insert: %s\n", sqlite3_errmsg(db));
                return 1;
            }
            sqlite3_reset(st);
            t += chunk_s * 1000;
        }
    }
    sqlite3_finalize(st);
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    double t1 = now_ms();
    /* the rows went in without the writer: rebuild the ranges table as the
     * startup reconciliation does */
    if (ms_dvr_db_begin(db) < 0 || ms_dvr_db_ranges_rebuild(db) < 0 || ms_dvr_db_commit(db) < 0)
        return 1;
    double t2 = now_ms();
    /* and the blocks and totals, as a start on an index that predates them */
    if (ms_dvr_db_begin(db) < 0 || ms_dvr_db_blocks_rebuild(db) < 0 || ms_dvr_db_commit(db) < 0)
        return 1;
    double t3 = now_ms();
    sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
    ms_dvr_db_close(db);
    printf("index: %d stream(s) x %d day(s) of %d s chunks = %lld rows, built in %.1f s, ranges "
           "table rebuilt in %.0f ms, blocks and totals in %.0f ms\n",
           streams, days, chunk_s, (long long)per * streams, (t1 - t0) / 1e3, t2 - t1, t3 - t2);

timed:;
    const char *uid = "stream-0000";
    double tr[RUNS], tp[RUNS], tq[RUNS], ts[RUNS];
    size_t nranges = 0, segs = 0, bytes = 0;
    for (int r = 0; r < RUNS; r++) {
        double a = now_ms();
        json_t *js = NULL;
        if (ms_dvr_ranges(uid, (end_ms - span_ms) / 1000, end_ms / 1000 + 1, &js) < 0)
            return 1;
        tr[r] = now_ms() - a;
        nranges = json_array_size(json_object_get(js, "ranges"));
        json_decref(js);

        a = now_ms();
        if (ms_dvr_status(uid, &js) < 0)
            return 1;
        ts[r] = now_ms() - a;
        json_decref(js);

        a = now_ms();
        int64_t from = end_ms - 86400000 - 3600000;
        ms_dvr_chunk_t *v = NULL;
        size_t n = 0;
        if (ms_dvr_chunks(uid, from, from + 86400000 + 60000, &v, &n) < 0)
            return 1;
        tq[r] = now_ms() - a;
        ms_dvr_pl_opts_t o = {from, 86400000, 0, 2000, 4000, ""};
        ms_buf_t b = MS_BUF_INIT;
        int rc = ms_dvr_playlist(v, n, &o, &b);
        tp[r] = now_ms() - a;
        segs = rc > 0 ? (size_t)rc : 0;
        bytes = b.len;
        ms_buf_free(&b);
        ms_dvr_chunks_free(v, n);
    }
    /* the same window read row by row from the chunks table (the query
     * before the blocks): timed, and the playlist must be byte-identical */
    double tq0[RUNS];
    int same = 1;
    sqlite3 *rdb = NULL;
    if (ms_dvr_db_open(ms_dvr_g.db_path, &rdb) < 0)
        return 1;
    sqlite3_exec(rdb, "PRAGMA mmap_size=1073741824", NULL, NULL, NULL);
    for (int r = 0; r < RUNS; r++) {
        int64_t from = end_ms - 86400000 - 3600000;
        ms_dvr_pl_opts_t o = {from, 86400000, 0, 2000, 4000, ""};
        ms_dvr_chunk_t *v0 = NULL, *v1 = NULL;
        size_t n0 = 0, n1 = 0;
        double a = now_ms();
        if (ms_dvr_db_query_from(rdb, uid, from, from + 86400000 + 60000, 0, &v0, &n0) < 0)
            return 1;
        tq0[r] = now_ms() - a;
        if (r)
            goto next;
        if (ms_dvr_chunks(uid, from, from + 86400000 + 60000, &v1, &n1) < 0)
            return 1;
        ms_buf_t b0 = MS_BUF_INIT, b1 = MS_BUF_INIT;
        ms_dvr_playlist(v0, n0, &o, &b0);
        ms_dvr_playlist(v1, n1, &o, &b1);
        same = n0 == n1 && b0.len == b1.len && memcmp(b0.data, b1.data, b0.len) == 0;
        for (size_t i = 0; same && i < n0; i++)
            same = v0[i].id == v1[i].id && v0[i].start_ms == v1[i].start_ms &&
                   v0[i].end_ms == v1[i].end_ms && v0[i].bytes == v1[i].bytes &&
                   v0[i].init_len == v1[i].init_len && v0[i].open == v1[i].open &&
                   v0[i].nfrags == v1[i].nfrags && !strcmp(v0[i].path, v1[i].path) &&
                   !strcmp(v0[i].root, v1[i].root) &&
                   !memcmp(v0[i].frags, v1[i].frags, v0[i].nfrags * sizeof *v0[i].frags);
        ms_buf_free(&b0);
        ms_buf_free(&b1);
        ms_dvr_chunks_free(v1, n1);
    next:
        ms_dvr_chunks_free(v0, n0);
    }
    ms_dvr_db_close(rdb);
    qsort(tq0, RUNS, sizeof *tq0, cmp_d);
    qsort(tr, RUNS, sizeof *tr, cmp_d);
    qsort(tp, RUNS, sizeof *tp, cmp_d);
    qsort(tq, RUNS, sizeof *tq, cmp_d);
    qsort(ts, RUNS, sizeof *ts, cmp_d);
    printf("ranges over %d day(s) of one stream: %zu ranges, median %.2f ms (min %.2f, max %.2f)\n",
           days, nranges, tr[RUNS / 2], tr[0], tr[RUNS - 1]);
    printf("stream status (ranges count, chunks, bytes, extent): median %.2f ms\n", ts[RUNS / 2]);
    printf("24 h archive playlist of one stream: %zu segments, %zu bytes, median %.2f ms (min "
           "%.2f, max %.2f)\n",
           segs, bytes, tp[RUNS / 2], tp[0], tp[RUNS - 1]);
    printf("  of which the index query (ms_dvr_chunks): median %.2f ms\n", tq[RUNS / 2]);
    printf("  the same chunks read row by row from the chunks table (the query before the "
           "blocks): median %.2f ms; chunks and playlist identical: %s\n",
           tq0[RUNS / 2], same ? "yes" : "NO");
    return 0;
}
