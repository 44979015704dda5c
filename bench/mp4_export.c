/* MP4 export benchmark, in process (bench/README.md "MP4 export
 * throughput"): the exporter itself, without HTTP. Each run builds the
 * export of UID for [FROM, FROM + DUR) (ms_dvr_export_open: index lookup,
 * init segment and moof reads, moov) and reads it whole with
 * ms_dvr_export_read in blocks of the size the HTTP handler asks for
 * (1 MiB, MHD's callback block in api/archive.c), writing each block to
 * /dev/null: the same code path that produces the bytes of
 * /{stream}/archive-FROM-DUR.mp4. Beside it, in the same runs, the chunk
 * files FILE... are read the way `cat` does (read(2) of 128 KiB into one
 * buffer, write(2) to /dev/null). The page cache is warmed by one run of
 * each first; runs are interleaved; medians. Prints figures; never fails
 * on time.
 *
 *   bench_mp4_export DATA_DIR UID FROM_S DUR_S RUNS FILE... */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dvr/archive.h"
#include "dvr/dvr_int.h"

#define EXPORT_BLOCK (1024 * 1024) /* api/archive.c: MHD callback block */
#define CAT_BLOCK    (128 * 1024)  /* coreutils cat's buffer (io_blksize) */
#define MAX_RUNS     50

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

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return v[n / 2];
}

/* One export, read whole into out; bytes produced (< 0: error). t_open
 * gets the time of ms_dvr_export_open. */
static long long run_export(const char *uid, int64_t from_ms, int64_t dur_ms, uint8_t *buf, int out,
                            double *t_open)
{
    double a = now_ms();
    ms_dvr_export_t *x = NULL;
    if (ms_dvr_export_open(uid, from_ms, dur_ms, &x) < 0)
        return -1;
    *t_open = now_ms() - a;
    uint64_t off = 0;
    for (;;) {
        ssize_t k = ms_dvr_export_read(x, off, buf, EXPORT_BLOCK);
        if (k < 0) {
            ms_dvr_export_free(x);
            return -1;
        }
        if (k == 0)
            break;
        if (write(out, buf, (size_t)k) != k) {
            ms_dvr_export_free(x);
            return -1;
        }
        off += (uint64_t)k;
    }
    ms_dvr_export_free(x);
    return (long long)off;
}

/* `cat FILE... > /dev/null` in process. */
static long long run_cat(char **files, int nfiles, uint8_t *buf, int out)
{
    long long total = 0;
    for (int i = 0; i < nfiles; i++) {
        int fd = open(files[i], O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return -1;
        ssize_t k;
        while ((k = read(fd, buf, CAT_BLOCK)) > 0) {
            if (write(out, buf, (size_t)k) != k) {
                close(fd);
                return -1;
            }
            total += k;
        }
        close(fd);
        if (k < 0)
            return -1;
    }
    return total;
}

int main(int argc, char **argv)
{
    if (argc < 7) {
        fprintf(stderr, "usage: %s DATA_DIR UID FROM_S DUR_S RUNS FILE...\n", argv[0]);
        return 2;
    }
    const char *uid = argv[2];
    int64_t from_ms = atoll(argv[3]) * 1000, dur_ms = atoll(argv[4]) * 1000;
    int runs = atoi(argv[5]);
    if (runs < 1 || runs > MAX_RUNS || dur_ms <= 0)
        return 2;
    snprintf(ms_dvr_g.db_path, sizeof ms_dvr_g.db_path, "%s/dvr_index.sqlite", argv[1]);
    snprintf(ms_dvr_g.node_name, sizeof ms_dvr_g.node_name, "bench");
    ms_dvr_tuning_defaults(&ms_dvr_g.tun);
    int out = open("/dev/null", O_WRONLY | O_CLOEXEC);
    uint8_t *ebuf = malloc(EXPORT_BLOCK), *cbuf = malloc(CAT_BLOCK);
    if (out < 0 || !ebuf || !cbuf)
        return 1;
    double to, te[MAX_RUNS], topen[MAX_RUNS], tc[MAX_RUNS];
    /* warm-up: page cache, the read connection of this thread */
    long long eb = run_export(uid, from_ms, dur_ms, ebuf, out, &to);
    long long cb = run_cat(argv + 6, argc - 6, cbuf, out);
    if (eb <= 0 || cb <= 0) {
        fprintf(stderr, "export or cat failed\n");
        return 1;
    }
    for (int r = 0; r < runs; r++) {
        double a = now_ms();
        if (run_export(uid, from_ms, dur_ms, ebuf, out, &topen[r]) != eb)
            return 1;
        te[r] = now_ms() - a;
        a = now_ms();
        if (run_cat(argv + 6, argc - 6, cbuf, out) != cb)
            return 1;
        tc[r] = now_ms() - a;
    }
    double me = median(te, runs), mc = median(tc, runs), mo = median(topen, runs);
    /* one line each, parsed by bench/mp4_export.py */
    printf("inproc-export %lld bytes median %.3f ms (open %.3f ms) %.1f MB/s\n", eb, me, mo,
           (double)eb / me / 1e3);
    printf("inproc-cat %lld bytes median %.3f ms %.1f MB/s\n", cb, mc, (double)cb / mc / 1e3);
    printf("inproc-ratio %.3f\n", ((double)eb / me) / ((double)cb / mc));
    free(ebuf);
    free(cbuf);
    close(out);
    return 0;
}
