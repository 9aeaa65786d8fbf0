/* testutil.h: run a test body as the main task of a fresh loop. Each
 * Criterion test runs in its own process, so a crash or hang stays local. */
#ifndef AW_TESTUTIL_H
#define AW_TESTUTIL_H

#include <awith.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Run fn as the main task; assert aw_main's result. */
#define aw_test_run(fn, arg, expect) \
    cr_assert_eq(aw_main((fn), (arg)), (expect), "aw_main(" #fn ") returned an unexpected status")

/* Open file descriptors of this process. */
static inline int aw_test_fds(void) {
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n - 3; /* ., .., and the DIR's own fd */
}

/* Threads of this process. */
static inline int aw_test_threads(void) {
    int n = 0;
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return -1;
    struct dirent *e;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* The thread count once it reaches `want`, or after about 5 s of polling.
 * A joined thread can still be listed in /proc/self/task for a moment:
 * pthread_join returns when the kernel clears the thread's tid, which
 * happens before the kernel reaps the task. A count read right after a
 * join may be one high (CI saw it once). */
static inline int aw_test_threads_await(int want) {
    int n = aw_test_threads();
    for (int i = 0; i < 5000 && n != want; i++) {
        usleep(1000);
        n = aw_test_threads();
    }
    return n;
}

/* A fresh directory /tmp/awith-<tag>-XXXXXX in dir (cap bytes), and its
 * removal with everything in it. */
static inline void aw_test_mkdtemp(char *dir, size_t cap, const char *tag) {
    snprintf(dir, cap, "/tmp/awith-%s-XXXXXX", tag);
    cr_assert_not_null(mkdtemp(dir), "mkdtemp %s", dir);
}
static inline void aw_test_rmtree(const char *dir) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    (void)!system(cmd);
}

/* Cancel a task at exactly its k-th cancellation point, seen through the
 * trace hook: counting the test's own yields instead would race with real
 * I/O (the kernel, the pool's threads) on a loaded machine. Set `target`
 * and `k`, zero `points`, install with aw_trace_set(aw_test_cancel_hook,
 * NULL). `fds_at_cancel` is aw_test_fds() when the cancel landed. */
static struct {
    aw_task_t *target;
    int points, k, fds_at_cancel;
} aw_test_cancel_at __attribute__((unused));

static inline void aw_test_cancel_hook(const aw_trace_event_t *ev, void *arg) {
    (void)arg;
    if (ev->kind == AW_TRACE_POINT && ev->task == aw_test_cancel_at.target &&
        ++aw_test_cancel_at.points == aw_test_cancel_at.k) {
        aw_test_cancel_at.fds_at_cancel = aw_test_fds();
        aw_task_cancel(aw_test_cancel_at.target);
    }
}

/* The system calls a path makes, as strace sees them (a test that a path
 * costs N calls). The test `marked` (Criterion's "suite/name") is run
 * again in a child under strace, with `env` ("NAME='value' ...") added;
 * it calls access("/aw-<tag>-begin") and access("/aw-<tag>-end") around
 * what is counted. Returns the calls its thread made between the two
 * markers, one a line, each starting with the call's name ("resumed"
 * halves of a split call left out), in a string to free; *n gets their
 * number. Skips the test where strace is missing or cannot trace (ptrace
 * refused, as under LeakSanitizer). */
static inline char *aw_test_strace(const char *marked, const char *env, const char *tag, int *n) {
    if (system("command -v strace >/dev/null 2>&1") != 0)
        cr_skip_test("strace is not installed");
    char self[512], cmd[2048], trace[64], out_path[80], begin[64], end[64];
    ssize_t l = readlink("/proc/self/exe", self, sizeof self - 1);
    cr_assert_gt(l, 0);
    self[l] = 0;
    snprintf(trace, sizeof trace, "/tmp/aw-strace.%d", (int)getpid());
    snprintf(out_path, sizeof out_path, "%s.out", trace);
    snprintf(cmd, sizeof cmd,
             /* env -i: Criterion's own variables would make the inner run a worker */
             "env -i PATH=\"$PATH\" %s strace -f -o '%s' '%s' --filter '%s' >%s 2>&1", env, trace,
             self, marked, out_path);
    if (system(cmd) != 0) {
        char out[600] = "";
        FILE *o = fopen(out_path, "r");
        if (o) {
            out[fread(out, 1, sizeof out - 1, o)] = 0;
            fclose(o);
        }
        unlink(trace);
        unlink(out_path);
        cr_skip_test("strace could not trace here (ptrace refused?): %s", out);
    }
    unlink(out_path);
    FILE *t = fopen(trace, "r");
    cr_assert(t);
    snprintf(begin, sizeof begin, "/aw-%s-begin", tag);
    snprintf(end, sizeof end, "/aw-%s-end", tag);
    size_t cap = 4096, len = 0;
    char *calls = malloc(cap), line[2048];
    cr_assert(calls);
    calls[0] = 0;
    long pid = -1;
    bool done = false;
    *n = 0;
    while (!done && fgets(line, sizeof line, t)) {
        if (pid < 0) {
            if (strstr(line, begin))
                pid = atol(line);
            continue;
        }
        if (atol(line) != pid || strstr(line, "resumed>"))
            continue; /* another thread, or the second half of a split call */
        if (strstr(line, end)) {
            done = true;
            continue;
        }
        const char *name = line + strspn(line, "0123456789 "); /* past the pid */
        size_t k = strlen(name);
        if (len + k + 1 > cap) {
            cap = 2 * (len + k + 1);
            calls = realloc(calls, cap);
            cr_assert(calls);
        }
        memcpy(calls + len, name, k + 1);
        len += k;
        (*n)++;
    }
    fclose(t);
    unlink(trace);
    cr_assert(done, "the markers %s and %s were traced", begin, end);
    return calls;
}

#endif
