/* tests/fault/driver.c: the fault sweep (aw-fault). For each scenario
 * (scenarios.c) a first run counts the calls of each class libawith makes
 * (src/coro/fault.h); then, for each class and each N of that count (or a
 * sample of them, --samples), a run in a forked child makes the N-th call
 * fail, once or from then on (persistent), and the run is classified:
 *
 *   ok      the scenario completed (the fault was absorbed: a retry, EINTR)
 *   error   it failed cleanly: nonzero status with an error record (or,
 *           before any task exists, aw_main's message naming the call)
 *   bare    it failed with a code and no record saying what failed
 *   crash   killed by a signal, or died without reporting
 *   memory  an AddressSanitizer / UndefinedBehaviorSanitizer report
 *   leak    a LeakSanitizer report (the child exits normally to get one)
 *   hang    it outlived its timeout (killed)
 *   fd      descriptors open after aw_main returned that were not before
 *
 * and a table of counts per scenario and class is printed, then each
 * distinct finding (by class and the first frame of the library's code in
 * its report) with the command that reproduces it. Exit status: 1 if any
 * run crashed, corrupted memory, leaked, hung or left an fd open.
 *
 *   aw-fault [--samples K] [--jobs J] [--timeout S] [--scenario a,b]
 *            [--class alloc,fd,thread,io] [--modes oneshot,persistent]
 *            [--no-nginx] [-v]
 *   aw-fault --one SCENARIO CLASS N [ERRNO|p]...   (one run; its stderr)
 *
 * PostgreSQL scenarios run when AW_TEST_PG_DSN is set (run the driver
 * under tests/db/with-postgres.sh); nginx is started by the driver
 * (tests/http/servers.h) unless --no-nginx. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <awith/err.h>
#include <awith/task.h>

#include "../http/servers.h"
#include "fault.h"

enum outcome { OK, ERROR, BARE, CRASH, MEMORY, LEAK, HANG, FD, NOUTCOME };
static const char *const outcome_names[NOUTCOME] = {"ok", "error", "bare", "crash",
                                                    "memory", "leak", "hang", "fd"};
#define BAD(o) ((o) >= CRASH)

/* What a child tells its parent through a pipe before it exits. */
typedef struct child_report {
    int ran;                 /* the scenario's task started */
    int rc;                  /* aw_main's status */
    int record;              /* an error record was pending when the scenario failed */
    int names_fault;         /* the record's chain holds the injected code */
    long count[AW_FAULT_NCLASS];
    long fired;
    char what[24];           /* the function made to fail first */
    int fds_left;
    int hung;                /* it reported its own hang (SIGALRM) */
    int died;                /* a sanitizer ended it (its death callback) */
    char msg[160];           /* the record's message */
} child_report_t;

typedef struct run {
    const fault_scenario_t *sc;
    int cls;                 /* -1: the counting run */
    long n;
    int err;
    bool persistent;
} run_t;

static struct {
    int samples, jobs;
    double timeout;
    const char *scenarios, *classes, *modes;
    bool nginx, verbose;
} opt = {.samples = 0, .jobs = 1, .timeout = 0, .nginx = true};

/* ---- the child ---- */

static child_report_t rep;
static int injected_code;

static bool chain_has(const aw_err_t *e, int code, int depth) {
    for (; e && depth < 64; e = e->context, depth++) {
        if (e->code == code)
            return true;
        for (const aw_err_t *m = e->members; m; m = m->next)
            if (chain_has(m, code, depth + 1))
                return true;
    }
    return false;
}

static int scenario_task(void *arg) {
    const fault_scenario_t *sc = arg;
    rep.ran = 1;
    int rc = sc->fn(NULL);
    const aw_err_t *e = aw_err_current();
    if (rc < 0 && e) {
        rep.record = 1;
        rep.names_fault = injected_code && chain_has(e, injected_code, 0);
        snprintf(rep.msg, sizeof rep.msg, "%s: %s", aw_err_name(e->code), e->msg);
    }
    return rc;
}

static int count_fds(char *list, size_t cap) {
    DIR *d = opendir("/proc/self/fd");
    int n = 0, self = d ? dirfd(d) : -1;
    struct dirent *de;
    size_t len = 0;
    if (list)
        list[0] = 0;
    while (d && (de = readdir(d))) {
        if (de->d_name[0] == '.' || atoi(de->d_name) == self)
            continue;
        n++;
        if (list && len < cap) {
            char p[64], t[256] = "";
            snprintf(p, sizeof p, "/proc/self/fd/%s", de->d_name);
            ssize_t k = readlink(p, t, sizeof t - 1);
            t[k > 0 ? k : 0] = 0;
            len += (size_t)snprintf(list + len, cap - len, " %s->%s", de->d_name, t);
        }
    }
    if (d)
        closedir(d);
    return n;
}

/* A hang: say which call was made to fail, report through the pipe and
 * leave before the parent has to kill (async-signal-safe but for the
 * sanitizer's trace, which only a sanitizer build has). */
extern void __sanitizer_print_stack_trace(void) __attribute__((weak));
static int child_resfd, child_cls;

static void child_alarm(int sig) {
    (void)sig;
    static const char m[] = "aw-fault: hang: the scenario outlived its timeout\n";
    if (write(2, m, sizeof m - 1) < 0)
        _exit(98);
    if (__sanitizer_print_stack_trace)
        __sanitizer_print_stack_trace();
    if (child_cls >= 0) {
        rep.fired = aw_fault_fired(child_cls);
        const char *w = aw_fault_what(child_cls);
        for (size_t i = 0; w && w[i] && i + 1 < sizeof rep.what; i++)
            rep.what[i] = w[i];
    }
    rep.hung = 1;
    if (write(child_resfd, &rep, sizeof rep) < 0)
        _exit(98);
    _exit(98);
}

/* A sanitizer report ends the child: say first which call was failed. */
extern void __sanitizer_set_death_callback(void (*cb)(void)) __attribute__((weak));

static void child_death(void) {
    if (child_cls >= 0) {
        rep.fired = aw_fault_fired(child_cls);
        const char *w = aw_fault_what(child_cls);
        snprintf(rep.what, sizeof rep.what, "%s", w ? w : "");
    }
    rep.died = 1;
    if (write(child_resfd, &rep, sizeof rep) < 0)
        return;
}

static void child(const run_t *r, int errfd, int resfd, const char *dir, double timeout) {
    setpgid(0, 0);
    child_resfd = resfd;
    child_cls = r->cls;
    signal(SIGALRM, child_alarm);
    if (__sanitizer_set_death_callback)
        __sanitizer_set_death_callback(child_death);
    alarm((unsigned)(timeout + 0.999));
    int devnull = open("/dev/null", O_RDWR);
    dup2(devnull, 0);
    dup2(devnull, 1);
    dup2(errfd, 2);
    close(devnull);
    fault_env.dir = dir;
    char before_list[2048], after_list[2048];
    int before = count_fds(before_list, sizeof before_list);
    for (int c = 0; c < AW_FAULT_NCLASS; c++)
        aw_fault_set(c, 0, 0, false);
    if (r->cls >= 0) {
        aw_fault_set(r->cls, r->n, r->err, r->persistent);
        injected_code = -r->err;
    }
    rep.rc = aw_main(scenario_task, (void *)r->sc);
    for (int c = 0; c < AW_FAULT_NCLASS; c++)
        rep.count[c] = aw_fault_count(c);
    if (r->cls >= 0) {
        rep.fired = aw_fault_fired(r->cls);
        const char *w = aw_fault_what(r->cls);
        snprintf(rep.what, sizeof rep.what, "%s", w ? w : "");
    }
    for (int c = 0; c < AW_FAULT_NCLASS; c++)
        aw_fault_set(c, 0, 0, false); /* nothing fails from here on */
    int after = count_fds(after_list, sizeof after_list);
    if (after != before) {
        rep.fds_left = after - before;
        fprintf(stderr, "aw-fault: %d fd(s) open after aw_main: before:%s\n  after:%s\n",
                after - before, before_list, after_list);
    }
    if (write(resfd, &rep, sizeof rep) != (ssize_t)sizeof rep)
        _exit(99);
    exit(0); /* exit, not _exit: LeakSanitizer reports at exit */
}

/* ---- the parent ---- */

typedef struct result {
    enum outcome oc;
    child_report_t rep;
    char sig[200];           /* what identifies the finding */
} result_t;

typedef struct slot {
    pid_t pid;
    run_t run;
    int errfd, resfd;
    double start;
    char dir[64];
    bool busy, killed;
} slot_t;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void rm_rf(const char *dir) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "aw-fault: could not remove %s\n", dir);
}

static const char *errname(int e) { return e ? aw_err_name(-e) : "-"; }

/* The first frame of a sanitizer report in awith's own sources (the
 * library first, then the tests and examples): "func file:line". */
static void first_frame(const char *text, char *out, size_t cap) {
    static const char *const where[] = {" ../src/", " ../examples/", " ../tests/"};
    out[0] = 0;
    for (const char *p = text; (p = strstr(p, " in ")); p += 4) {
        const char *eol = strchr(p, '\n'), *hit = NULL;
        if (!eol)
            break;
        for (int w = 0; w < 3 && !hit; w++)
            if ((hit = strstr(p, where[w])) && hit > eol)
                hit = NULL;
        if (!hit)
            continue;
        const char *fn = p + 4, *sp = strchr(fn, ' ');
        snprintf(out, cap, "%.*s %.*s", (int)(sp - fn), fn, (int)(eol - hit - 4), hit + 4);
        return;
    }
}

static void classify(const slot_t *s, int status, const char *text, result_t *res) {
    memset(&res->rep, 0, sizeof res->rep);
    bool got = read(s->resfd, &res->rep, sizeof res->rep) == (ssize_t)sizeof res->rep;
    char frame[160];
    first_frame(text, frame, sizeof frame);
    const char *what = got && res->rep.what[0] ? res->rep.what : "?";
    res->sig[0] = 0;
    if (s->killed || (got && res->rep.hung)) {
        res->oc = HANG;
        snprintf(res->sig, sizeof res->sig, "hang after %s failed%s", what,
                 got ? "" : " (killed: no report)");
    } else if (strstr(text, "AddressSanitizer: SEGV") || strstr(text, "AddressSanitizer: stack-overflow") ||
               strstr(text, "AddressSanitizer: ABRT") || strstr(text, "AddressSanitizer: BUS") ||
               strstr(text, "AddressSanitizer: FPE")) {
        res->oc = CRASH;
        snprintf(res->sig, sizeof res->sig, "crash at %s", frame[0] ? frame : "?");
    } else if (strstr(text, "ERROR: AddressSanitizer") || strstr(text, "runtime error:")) {
        res->oc = MEMORY;
        const char *e = strstr(text, "ERROR: AddressSanitizer: ");
        char kind[48] = "undefined behaviour";
        if (e)
            sscanf(e + 25, "%47s", kind);
        snprintf(res->sig, sizeof res->sig, "%s at %s", kind, frame[0] ? frame : "?");
    } else if (strstr(text, "ERROR: LeakSanitizer")) {
        res->oc = LEAK;
        snprintf(res->sig, sizeof res->sig, "leak from %s", frame[0] ? frame : "?");
    } else if (WIFSIGNALED(status)) {
        res->oc = CRASH;
        snprintf(res->sig, sizeof res->sig, "signal %d (%s) after %s failed", WTERMSIG(status),
                 strsignal(WTERMSIG(status)), what);
    } else if (!got || res->rep.died) {
        res->oc = CRASH;
        snprintf(res->sig, sizeof res->sig, "died with status %d after %s failed",
                 WIFEXITED(status) ? WEXITSTATUS(status) : -1, what);
    } else if (res->rep.fds_left) {
        res->oc = FD;
        const char *a = strstr(text, "after:");
        snprintf(res->sig, sizeof res->sig, "%d fd(s) left after %s failed (%s)", res->rep.fds_left,
                 what, a ? "see report" : "?");
    } else if (res->rep.rc == 0) {
        res->oc = OK;
    } else if (res->rep.record) {
        res->oc = ERROR;
    } else if (!res->rep.ran && strstr(text, "awith: ") && strstr(text, "cannot start")) {
        res->oc = ERROR; /* no task to hold a record: aw_main printed what failed */
    } else {
        res->oc = BARE;
        snprintf(res->sig, sizeof res->sig, "%s with no record after %s failed%s",
                 aw_err_name(res->rep.rc), what, res->rep.ran ? "" : " (before the scenario ran)");
    }
}

/* ---- the tallies ---- */

typedef struct finding {
    char sig[200];
    enum outcome oc;
    int count;
    run_t first;
    struct finding *next;
} finding_t;

static finding_t *findings;
static long tally[64][AW_FAULT_NCLASS][NOUTCOME], unfired[64][AW_FAULT_NCLASS];
static long named[64][AW_FAULT_NCLASS];
static long total_runs, total_bad, swept[64][AW_FAULT_NCLASS];

static int scenario_index(const fault_scenario_t *sc) { return (int)(sc - fault_scenarios); }

static void print_repro(FILE *f, const run_t *r) {
    fprintf(f, "aw-fault --one %s %s %ld %s%s", r->sc->name, aw_fault_class_name(r->cls), r->n,
            errname(r->err), r->persistent ? " p" : "");
}

static void record(const run_t *r, const result_t *res, const char *text) {
    int si = scenario_index(r->sc);
    total_runs++;
    tally[si][r->cls][res->oc]++;
    if (res->rep.fired == 0 && res->oc != CRASH && res->oc != HANG)
        unfired[si][r->cls]++;
    if (res->oc == ERROR && res->rep.names_fault)
        named[si][r->cls]++;
    if (BAD(res->oc))
        total_bad++;
    if (res->oc == OK || res->oc == ERROR)
        return;
    char key[260];
    snprintf(key, sizeof key, "%s", res->sig);
    for (finding_t *f = findings; f; f = f->next)
        if (f->oc == res->oc && strcmp(f->sig, key) == 0) {
            f->count++;
            return;
        }
    finding_t *f = calloc(1, sizeof *f);
    snprintf(f->sig, sizeof f->sig, "%s", key);
    f->oc = res->oc;
    f->count = 1;
    f->first = *r;
    f->next = findings;
    findings = f;
    if (opt.verbose) {
        fprintf(stderr, "-- new finding (%s): %s\n   ", outcome_names[res->oc], key);
        print_repro(stderr, r);
        fprintf(stderr, "\n%.1500s\n", text);
    }
}

/* ---- running children, up to opt.jobs at once ---- */

static slot_t *slots;
static char text_buf[1 << 20];

static void start(slot_t *s, const run_t *r, double timeout) {
    static int seq;
    s->run = *r;
    snprintf(s->dir, sizeof s->dir, "/tmp/aw-fault-%d-%d", getpid(), seq++);
    if (mkdir(s->dir, 0700) < 0) {
        perror("aw-fault: mkdir");
        exit(2);
    }
    /* the child writes through a dup of errfd: the same file offset */
    if (ftruncate(s->errfd, 0) < 0 || lseek(s->errfd, 0, SEEK_SET) < 0)
        exit(2);
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) {
        perror("aw-fault: pipe");
        exit(2);
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        perror("aw-fault: fork");
        exit(2);
    }
    if (pid == 0) {
        close(p[0]);
        child(r, s->errfd, p[1], s->dir, timeout);
    }
    close(p[1]);
    s->pid = pid;
    s->resfd = p[0];
    s->start = now_s();
    s->busy = true;
    s->killed = false;
}

static size_t slurp(int fd) {
    off_t end = lseek(fd, 0, SEEK_END);
    size_t n = end > 0 ? (size_t)end : 0;
    if (n >= sizeof text_buf)
        n = sizeof text_buf - 1;
    ssize_t k = pread(fd, text_buf, n, 0);
    text_buf[k > 0 ? k : 0] = 0;
    return k > 0 ? (size_t)k : 0;
}

/* Wait for one busy slot to finish; classify its run into *res. */
static slot_t *reap(result_t *res, double timeout) {
    for (unsigned spin = 0;; spin++) {
        for (int i = 0; i < opt.jobs; i++) {
            slot_t *s = &slots[i];
            if (!s->busy)
                continue;
            int status;
            siginfo_t si = {0};
            /* WNOWAIT: the child stays a zombie, so its process group id
             * cannot be reused before the kill below */
            if (waitid(P_PID, (id_t)s->pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || si.si_pid == 0) {
                if (!s->killed && now_s() - s->start > timeout) {
                    kill(-s->pid, SIGKILL);
                    kill(s->pid, SIGKILL);
                    s->killed = true;
                }
                continue;
            }
            kill(-s->pid, SIGKILL); /* anything it left behind */
            waitpid(s->pid, &status, 0);
            slurp(s->errfd);
            classify(s, status, text_buf, res);
            close(s->resfd);
            rm_rf(s->dir);
            s->busy = false;
            return s;
        }
        struct timespec ts = {0, spin < 100 ? 200000 : 2000000};
        nanosleep(&ts, NULL);
    }
}

static int busy_count(void) {
    int n = 0;
    for (int i = 0; i < opt.jobs; i++)
        n += slots[i].busy;
    return n;
}

static slot_t *free_slot(void) {
    for (int i = 0; i < opt.jobs; i++)
        if (!slots[i].busy)
            return &slots[i];
    return NULL;
}

/* One run, alone, synchronously: the counting run and --one. */
static void run_one(const run_t *r, result_t *res, double timeout, double *secs) {
    double t0 = now_s();
    start(free_slot(), r, timeout);
    reap(res, timeout + 5);
    if (secs)
        *secs = now_s() - t0;
}

/* ---- the plan ---- */

static bool listed(const char *list, const char *name) {
    if (!list)
        return true;
    size_t n = strlen(name);
    for (const char *p = list; (p = strstr(p, name)); p += n)
        if ((p == list || p[-1] == ',') && (p[n] == ',' || p[n] == 0))
            return true;
    return false;
}

static const int io_errs[] = {EINTR, EIO, ENOSPC, ECONNRESET};
static const int default_err[AW_FAULT_NCLASS] = {ENOMEM, EMFILE, EAGAIN, EIO};

/* The runs of one class of one scenario, `count` calls: every N, or a
 * sample of `samples` of them (first, last and evenly between; modes and
 * I/O errors rotate over the sample so each is covered). */
static int plan(const fault_scenario_t *sc, int cls, long count, run_t *out, int cap) {
    bool oneshot = listed(opt.modes, "oneshot"), persistent = listed(opt.modes, "persistent");
    int k = 0;
    if (opt.samples <= 0) {
        for (long n = 1; n <= count; n++) {
            if (cls == AW_FAULT_IO) {
                for (int e = 0; oneshot && e < 4; e++)
                    if (k < cap)
                        out[k++] = (run_t){sc, cls, n, io_errs[e], false};
                if (persistent && k < cap)
                    out[k++] = (run_t){sc, cls, n, EIO, true};
            } else {
                if (oneshot && k < cap)
                    out[k++] = (run_t){sc, cls, n, default_err[cls], false};
                if (persistent && k < cap)
                    out[k++] = (run_t){sc, cls, n, default_err[cls], true};
            }
        }
        return k;
    }
    long m = count < opt.samples ? count : opt.samples;
    for (long i = 0; i < m && k < cap; i++) {
        long n = m == 1 ? 1 : 1 + (i * (count - 1)) / (m - 1);
        bool p = (i & 1) ? persistent : !oneshot;
        int err = cls == AW_FAULT_IO ? io_errs[(i / 2 + i) % 4] : default_err[cls];
        if (err == EINTR)
            p = false; /* retried forever by design */
        out[k++] = (run_t){sc, cls, n, err, p};
    }
    return k;
}

static int errno_by_name(const char *s) {
    static const struct { const char *n; int e; } t[] = {
        {"ENOMEM", ENOMEM}, {"EMFILE", EMFILE}, {"EAGAIN", EAGAIN}, {"EIO", EIO},
        {"EINTR", EINTR}, {"ENOSPC", ENOSPC}, {"ECONNRESET", ECONNRESET}, {"ENFILE", ENFILE}};
    for (size_t i = 0; i < sizeof t / sizeof *t; i++)
        if (strcmp(s, t[i].n) == 0)
            return t[i].e;
    return atoi(s);
}

static int class_by_name(const char *s) {
    for (int c = 0; c < AW_FAULT_NCLASS; c++)
        if (strcmp(s, aw_fault_class_name(c)) == 0)
            return c;
    return -1;
}

static const fault_scenario_t *scenario_by_name(const char *s) {
    for (const fault_scenario_t *sc = fault_scenarios; sc->name; sc++)
        if (strcmp(sc->name, s) == 0)
            return sc;
    return NULL;
}

static void usage(void) {
    fprintf(stderr, "usage: aw-fault [--samples K] [--jobs J] [--timeout S] [--scenario a,b] "
                    "[--class alloc,fd,thread,io] [--modes oneshot,persistent] [--no-nginx] [-v]\n"
                    "       aw-fault --one SCENARIO CLASS N [ERRNO] [p]\n");
    exit(2);
}

int main(int argc, char **argv) {
    const char *one[5] = {0};
    int none = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--samples") && i + 1 < argc)
            opt.samples = atoi(argv[++i]);
        else if (!strcmp(a, "--jobs") && i + 1 < argc)
            opt.jobs = atoi(argv[++i]);
        else if (!strcmp(a, "--timeout") && i + 1 < argc)
            opt.timeout = atof(argv[++i]);
        else if (!strcmp(a, "--scenario") && i + 1 < argc)
            opt.scenarios = argv[++i];
        else if (!strcmp(a, "--class") && i + 1 < argc)
            opt.classes = argv[++i];
        else if (!strcmp(a, "--modes") && i + 1 < argc)
            opt.modes = argv[++i];
        else if (!strcmp(a, "--no-nginx"))
            opt.nginx = false;
        else if (!strcmp(a, "-v"))
            opt.verbose = true;
        else if (!strcmp(a, "--one")) {
            while (i + 1 < argc && none < 5)
                one[none++] = argv[++i];
        } else
            usage();
    }
    if (opt.jobs < 1)
        opt.jobs = 1;
    if (none)
        opt.jobs = 1;
    slots = calloc((size_t)opt.jobs, sizeof *slots);
    for (int i = 0; i < opt.jobs; i++)
        if ((slots[i].errfd = memfd_create("aw-fault-stderr", 0)) < 0) {
            perror("aw-fault: memfd_create");
            return 2;
        }
    signal(SIGPIPE, SIG_IGN);
    fault_env.pg_dsn = getenv("AW_TEST_PG_DSN");
    if (fault_env.pg_dsn && !*fault_env.pg_dsn)
        fault_env.pg_dsn = NULL;
    test_server_t nginx = {0};
    if (opt.nginx && system("command -v nginx >/dev/null 2>&1") == 0) {
        if (ts_nginx_start(&nginx, 0) == 0)
            fault_env.http_url = nginx.url;
        else
            fprintf(stderr, "aw-fault: nginx did not start: no HTTP step in the mixed scenario\n");
    }

    int status = 0;
    if (none) { /* --one SCENARIO CLASS N [ERRNO] [p] */
        const fault_scenario_t *sc = none >= 3 ? scenario_by_name(one[0]) : NULL;
        int cls = sc ? class_by_name(one[1]) : -1;
        if (!sc || cls < 0)
            usage();
        run_t r = {sc, cls, atol(one[2]), default_err[cls], false};
        for (int i = 3; i < none; i++) {
            if (!strcmp(one[i], "p"))
                r.persistent = true;
            else if (strcmp(one[i], "-"))
                r.err = errno_by_name(one[i]);
        }
        result_t res;
        run_one(&r, &res, opt.timeout > 0 ? opt.timeout : 30, NULL);
        fputs(text_buf, stderr);
        printf("%s: %s %ld (%s%s): %s; fired %ld (%s), rc %s%s%s\n", sc->name,
               aw_fault_class_name(cls), r.n, errname(r.err), r.persistent ? ", persistent" : "",
               outcome_names[res.oc], res.rep.fired, res.rep.what, aw_err_name(res.rep.rc),
               res.sig[0] ? ": " : "", res.sig);
        status = BAD(res.oc);
        goto out;
    }

    double t0 = now_s();
    printf("%-17s %-6s %6s %6s %5s %5s %5s %5s %5s %5s %5s %5s %7s\n", "scenario", "class", "calls",
           "runs", "ok", "error", "bare", "crash", "memory", "leak", "hang", "fd", "unfired");
    for (const fault_scenario_t *sc = fault_scenarios; sc->name; sc++) {
        if (!listed(opt.scenarios, sc->name))
            continue;
        if ((sc->needs & FAULT_NEEDS_PG) && !fault_env.pg_dsn) {
            printf("%-17s (skipped: no PostgreSQL; run under tests/db/with-postgres.sh)\n", sc->name);
            continue;
        }
        /* the counting run: nothing fails; it must complete */
        run_t base = {sc, -1, 0, 0, false};
        result_t res;
        double secs;
        run_one(&base, &res, 60, &secs);
        if (res.oc != OK) {
            printf("%-17s baseline run did not complete: %s %s\n%.2000s\n", sc->name,
                   outcome_names[res.oc], res.sig, text_buf);
            status = 1;
            continue;
        }
        double timeout = opt.timeout > 0 ? opt.timeout : (secs * 20 < 10 ? 10 : secs * 20);
        int si = scenario_index(sc);
        for (int cls = 0; cls < AW_FAULT_NCLASS; cls++) {
            if (!listed(opt.classes, aw_fault_class_name(cls)))
                continue;
            long count = res.rep.count[cls];
            int cap = (int)(count * 6 + 8);
            run_t *runs = malloc((size_t)cap * sizeof *runs);
            int k = plan(sc, cls, count, runs, cap);
            for (int i = 0; i < k || busy_count(); ) {
                slot_t *s = i < k ? free_slot() : NULL;
                if (s) {
                    start(s, &runs[i++], timeout);
                    continue;
                }
                result_t rr;
                slot_t *done = reap(&rr, timeout + 5);
                record(&done->run, &rr, text_buf);
            }
            free(runs);
            swept[si][cls] = count;
            long *t = tally[si][cls];
            long nruns = 0;
            for (int o = 0; o < NOUTCOME; o++)
                nruns += t[o];
            printf("%-17s %-6s %6ld %6ld %5ld %5ld %5ld %5ld %5ld %5ld %5ld %5ld %7ld\n", sc->name,
                   aw_fault_class_name(cls), count, nruns, t[OK], t[ERROR], t[BARE], t[CRASH],
                   t[MEMORY], t[LEAK], t[HANG], t[FD], unfired[si][cls]);
            fflush(stdout);
        }
    }
    long calls = 0, sums[NOUTCOME] = {0}, nerr = 0, nnamed = 0;
    for (int si = 0; si < 64; si++)
        for (int c = 0; c < AW_FAULT_NCLASS; c++) {
            calls += swept[si][c];
            for (int o = 0; o < NOUTCOME; o++)
                sums[o] += tally[si][c][o];
            nerr += tally[si][c][ERROR];
            nnamed += named[si][c];
        }
    printf("total: %ld calls counted, %ld runs in %.1f s:", calls, total_runs, now_s() - t0);
    for (int o = 0; o < NOUTCOME; o++)
        printf(" %s %ld%s", outcome_names[o], sums[o], o + 1 < NOUTCOME ? "," : "\n");
    printf("clean errors whose record chain holds the injected code: %ld of %ld\n", nnamed, nerr);
    if (findings) {
        printf("findings (distinct, by outcome and where):\n");
        for (int o = NOUTCOME - 1; o >= (int)BARE; o--)
            for (finding_t *f = findings; f; f = f->next)
                if ((int)f->oc == o) {
                    printf("  %-6s x%-4d %s\n         ", outcome_names[o], f->count, f->sig);
                    print_repro(stdout, &f->first);
                    printf("\n");
                }
    }
    status = total_bad > 0;
out:
    if (nginx.pid)
        ts_stop(&nginx);
    return status;
}
