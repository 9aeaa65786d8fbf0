/* read.c -> bench-fs-read: read a 256 MiB file in 64 KiB chunks.
 *
 *   fs_read_mib_per_s   awith (aw_file_read in a task: RWF_NOWAIT on the
 *                       loop's thread, the pool when the page cache misses)
 *                       vs synchronous read(2) in a plain loop ("sync") and
 *                       Python aiofiles (peers/read_aiofiles.py).
 *
 * The file is written once (AW_BENCH_DIR, default /tmp) and read once
 * before measuring, so every side reads from a warm page cache: the figure
 * is the cost of the API, not of the disk. ratio_<peer> = awith / peer
 * (above 1: awith reads faster). Median of BENCH_FS_REPS runs. */
#include "../bench.h"

#include <awith/file.h>
#include <fcntl.h>
#include <unistd.h>

#define BENCH_FS_REPS 3
#define CHUNK 65536

static const char *path;
static size_t size;
static char *buf;

static int awith_read(void *arg) {
    double *out = arg;
    double t0 = bench_now();
    size_t n = 0;
    aw_with (aw_file_t *f, aw_file(path, O_RDONLY, 0)) {
        ssize_t r;
        while ((r = aw_file_read(f, buf, CHUNK)) > 0)
            n += (size_t)r;
    }
    double t = bench_now() - t0;
    *out = n == size ? (double)n / (1 << 20) / (t / 1e9) : BENCH_NA;
    return aw_status();
}

static double sync_read(void) {
    double t0 = bench_now();
    int fd = open(path, O_RDONLY);
    size_t n = 0;
    ssize_t r;
    while ((r = read(fd, buf, CHUNK)) > 0)
        n += (size_t)r;
    close(fd);
    double t = bench_now() - t0;
    return n == size ? (double)n / (1 << 20) / (t / 1e9) : BENCH_NA;
}

int main(void) {
    static char p[256];
    snprintf(p, sizeof p, "%s/awith-bench-read.%d", bench_env("AW_BENCH_DIR", "/tmp"), (int)getpid());
    path = p;
    size = (size_t)bench_n(256) << 20;
    buf = malloc(CHUNK);
    memset(buf, 'x', CHUNK);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    for (size_t i = 0; i < size; i += CHUNK)
        if (write(fd, buf, CHUNK) != CHUNK)
            return 1;
    close(fd);
    sync_read(); /* warm the page cache */
    double a[BENCH_FS_REPS], s[BENCH_FS_REPS];
    for (int i = 0; i < BENCH_FS_REPS; i++) {
        bench_main(NULL, awith_read, &a[i]);
        s[i] = sync_read();
    }
    char cmd[512];
    snprintf(cmd, sizeof cmd, "'%s' '%s' '%s' %d 2>/dev/null", bench_env("AW_BENCH_PYTHON", "/usr/bin/python3"),
             READ_PY, path, BENCH_FS_REPS);
    double py = bench_popen_value(cmd, "mib_per_s");
    double am = bench_median(a, BENCH_FS_REPS), sm = bench_median(s, BENCH_FS_REPS);
    printf("fs_read_mib_per_s awith=%.0f sync=%.0f aiofiles=", am, sm);
    py < 0 ? printf("n/a") : printf("%.0f", py);
    printf(" ratio_sync=%.3g", am / sm);
    if (py > 0)
        printf(" ratio_aiofiles=%.3g", am / py);
    printf("\n");
    unlink(path);
    free(buf);
    return 0;
}
