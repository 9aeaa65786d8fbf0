/* main.c: the fuzzer's command line (tests/fuzz/README.md).
 *
 *   fuzz [--seed S] [--count N] [--seconds T] [--features SPEC] [--jobs J]
 *        [--no-shrink] [--tries N] [--keep-going] [--verbose]
 *   fuzz --print SEED [--features SPEC]     show the program of a seed
 *   fuzz --file F [--repeat N] [--shrink]   run (and shrink) a saved program
 *   fuzz --list-features
 *
 * Seeds S, S+1, ... run until N programs or T seconds. On a violation the
 * seed, the program and the violations are printed, the program is shrunk
 * to a minimal one that still shows the first violation's class, and the
 * run stops (or, with --keep-going, goes on and reports each new class
 * once). --jobs forks J workers over disjoint seed ranges. Exit status: 0
 * if no program broke an invariant, 1 otherwise. */
#include "fuzz.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static volatile sig_atomic_t stop; /* SIGINT, SIGTERM: finish the program, summarize */
static void on_stop(int sig) { (void)sig; stop = 1; }

static void wr(const char *s) {
    ssize_t r = write(2, s, strlen(s));
    (void)r;
}

static void on_fatal(int sig) {
    char buf[128];
    snprintf(buf, sizeof buf, "\nfuzz: signal %d while running seed %llu (re-run: fuzz --seed %llu "
             "--count 1)\n", sig, (unsigned long long)fz_current_seed,
             (unsigned long long)fz_current_seed);
    wr(buf);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* ASan's last words name the seed too. */
void __sanitizer_set_death_callback(void (*cb)(void)) __attribute__((weak));
static void on_death(void) { on_fatal(0); }

static void report(const fz_prog_t *p, const fz_result_t *r, FILE *f) {
    fprintf(f, "fuzz: seed %llu broke %d invariant(s):\n%s", (unsigned long long)p->seed, r->nv,
            r->log ? r->log : "");
}

static void print_items(unsigned items, FILE *f) {
    if (!items) {
        fputs("fuzz: classified: NEW (needs none of the open items 3-8)\n", f);
        return;
    }
    fputs("fuzz: classified: issue 10 item(s)", f);
    for (int i = 0; i < 32; i++)
        if (items & (1u << i))
            fprintf(f, " %d", i);
    fputc('\n', f);
}

static int shrink_and_print(fz_prog_t *p, int v, int tries) {
    fprintf(stderr, "fuzz: shrinking (class '%s', %d nodes)\n", fz_violation_name(v),
            fz_count_nodes(p));
    fz_shrink(p, v, tries, stderr);
    fz_result_t r;
    for (int i = 0; i < tries; i++) {
        fz_run(p, &r);
        if (r.classes & (1u << v))
            break;
        fz_result_free(&r);
    }
    fprintf(stderr, "fuzz: minimal program (%d nodes):\n", fz_count_nodes(p));
    fz_print(p, stderr);
    fprintf(stderr, "fuzz: its violations:\n%s", r.log ? r.log : "");
    fz_result_free(&r);
    print_items(fz_classify(p, v, tries), stderr);
    return 0;
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    char tmp[4096];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
        fwrite(tmp, 1, n, m);
    fclose(m);
    fclose(f);
    return buf;
}

static void signature(const char *log, char *sig, size_t cap) {
    size_t n = 0;
    const char *p = log ? log : "";
    while (*p == ' ')
        p++;
    /* numbers and error names out: one finding, whatever the codes */
    for (; *p && *p != '\n' && n + 1 < cap; p++) {
        if (*p >= '0' && *p <= '9')
            continue;
        if ((*p == 'E' || !strncmp(p, "AW_E", 4)) && (p == log || p[-1] == ' ' || p[-1] == '(')) {
            while (*p == '_' || (*p >= 'A' && *p <= 'Z'))
                p++;
            sig[n++] = 'E';
            p--;
            continue;
        }
        sig[n++] = *p;
    }
    sig[n] = 0;
}

static bool known_sig(char **sigs, int n, const char *sig) {
    for (int i = 0; i < n; i++)
        if (!strcmp(sigs[i], sig))
            return true;
    return false;
}

/* A seed's run: the program plain (counting its points), then, if it has
 * injections, with them placed among those points. The result is the
 * first run that broke an invariant, else the injected one; p keeps its
 * placed injections (what --print and the shrinker see). */
static void run_seed(fz_prog_t *p, fz_result_t *r) {
    fz_prog_t plain = *p;
    plain.ninj = 0;
    plain.harness_how = plain.harness_k = 0;
    fz_run(&plain, r);
    int points = r->points;
    /* one seed in 4: a sweep -- one scope or group cancelled (or expired)
     * at each point in turn, as aw_testing_run does for the whole program:
     * a window one point wide is found for sure */
    int ids[64], nt = r->nv ? 0 : fz_targets(p, ids, 64);
    if (p->seed % 4 == 0 && nt && points < 64) {
        /* every target when the program is small, else one */
        int t0 = nt * points <= 64 ? 0 : (int)((p->seed / 4) % (uint64_t)nt);
        int t1 = nt * points <= 64 ? nt : t0 + 1;
        for (int t = t0; t < t1; t++)
            for (int k = 1; k <= points; k++) {
                fz_result_free(r);
                p->inj[0] = (fz_inject_t){.point = k, .target = ids[t], .how = (p->seed / 4) & 1};
                p->ninj = 1;
                p->harness_how = p->harness_k = 0;
                fz_run(p, r);
                if (r->nv)
                    return;
            }
        return;
    }
    fz_place(p, points);
    if (r->nv || (!p->ninj && !p->harness_how)) {
        if (r->nv) { /* the plain program is the repro */
            p->ninj = 0;
            p->harness_how = p->harness_k = 0;
        }
        return;
    }
    fz_result_free(r);
    fz_run(p, r);
}

typedef struct opts {
    uint64_t seed, count;
    double seconds;
    unsigned features;
    int jobs, shrink, tries, keep_going, verbose, repeat;
    const char *file;
    int print;
} opts_t;

/* One worker: seeds seed, seed+step, ... */
static int worker(const opts_t *o, uint64_t first, uint64_t step, uint64_t *ran) {
    uint64_t t0 = now_ms(), last = t0;
    char *sigs[256];
    int nsigs = 0;
    uint64_t n = 0, bad = 0, counts[FZ_NV] = {0};
    uint64_t points = 0, enters = 0, landed = 0, failed_status = 0;
    int status = 0;
    for (uint64_t s = first;; s += step) {
        if ((o->count && n >= o->count) || stop)
            break;
        if (o->seconds > 0 && (n & 15) == 0 && now_ms() - t0 >= o->seconds * 1000)
            break;
        fz_prog_t p;
        fz_gen(&p, s, o->features);
        fz_result_t r;
        run_seed(&p, &r);
        n++;
        points += (uint64_t)r.points;
        enters += (uint64_t)r.enters;
        landed += r.landed > 0;
        failed_status += r.status < 0;
        if (r.nv) {
            bad++;
            status = 1;
            for (int v = 0; v < FZ_NV; v++)
                if (r.classes & (1u << v))
                    counts[v]++;
            /* a finding is its first violation's line, numbers left out */
            char sig[160];
            signature(r.log, sig, sizeof sig);
            bool fresh = nsigs < 256 && !known_sig(sigs, nsigs, sig);
            fprintf(stderr, "fuzz: seed %llu: %s%s\n", (unsigned long long)s, sig,
                    fresh ? " (new)" : "");
            if (fresh) {
                sigs[nsigs++] = strdup(sig);
                fprintf(stderr, "\n");
                report(&p, &r, stderr);
                fz_print(&p, stderr);
                if (o->shrink)
                    shrink_and_print(&p, r.first, o->tries);
                fflush(stderr);
            }
            if (!o->keep_going) {
                fz_result_free(&r);
                fz_prog_free(&p);
                break;
            }
        }
        fz_result_free(&r);
        fz_prog_free(&p);
        if (o->verbose && now_ms() - last > 10000) {
            last = now_ms();
            fprintf(stderr, "fuzz: [%d] %llu programs (%llu runs), %llu broke invariants\n",
                    (int)getpid(), (unsigned long long)n, (unsigned long long)fz_runs,
                    (unsigned long long)bad);
        }
    }
    double secs = (double)(now_ms() - t0) / 1000;
    fprintf(stderr, "fuzz: %llu programs (seeds from %llu, step %llu; %llu runs) in %.1f s "
            "(%.0f programs/s), %llu broke invariants", (unsigned long long)n,
            (unsigned long long)first, (unsigned long long)step, (unsigned long long)fz_runs,
            secs, secs > 0 ? (double)n / secs : 0.0, (unsigned long long)bad);
    for (int v = 0; v < FZ_NV; v++)
        if (counts[v])
            fprintf(stderr, " [%s: %llu]", fz_violation_name(v), (unsigned long long)counts[v]);
    fputc('\n', stderr);
    if (n)
        fprintf(stderr, "fuzz: per program: %.1f cancellation points, %.1f managers entered; "
                "%.0f%% had an injected cancel land, %.0f%% ended with an error\n",
                (double)points / (double)n, (double)enters / (double)n,
                100.0 * (double)landed / (double)n, 100.0 * (double)failed_status / (double)n);
    *ran = n;
    for (int i = 0; i < nsigs; i++)
        free(sigs[i]);
    return status;
}

int main(int argc, char **argv) {
    opts_t o = {.seed = 1, .features = FZ_DEFAULT, .jobs = 1, .shrink = 1, .tries = 3,
                .repeat = 1};
    bool have_seed = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--seed") && v)
            o.seed = strtoull(v, NULL, 0), have_seed = true, i++;
        else if (!strcmp(a, "--count") && v)
            o.count = strtoull(v, NULL, 0), i++;
        else if (!strcmp(a, "--seconds") && v)
            o.seconds = atof(v), i++;
        else if (!strcmp(a, "--features") && v) {
            if (fz_features_parse(v, FZ_DEFAULT, &o.features) < 0)
                return 2;
            i++;
        } else if (!strcmp(a, "--jobs") && v)
            o.jobs = atoi(v), i++;
        else if (!strcmp(a, "--tries") && v)
            o.tries = atoi(v), i++;
        else if (!strcmp(a, "--repeat") && v)
            o.repeat = atoi(v), i++;
        else if (!strcmp(a, "--no-shrink"))
            o.shrink = 0;
        else if (!strcmp(a, "--shrink"))
            o.shrink = 2;
        else if (!strcmp(a, "--keep-going"))
            o.keep_going = 1;
        else if (!strcmp(a, "--verbose"))
            o.verbose = 1;
        else if (!strcmp(a, "--file") && v)
            o.file = v, i++;
        else if (!strcmp(a, "--print") && v)
            o.print = 1, o.seed = strtoull(v, NULL, 0), i++;
        else if (!strcmp(a, "--list-features")) {
            for (int b = 0; b < FZ_NFEATURES; b++) {
                const char *name;
                const char *doc = fz_feature_doc(b, &name);
                printf("%-14s %s %s\n", name, FZ_DEFAULT & (1u << b) ? "on " : "off", doc);
            }
            return 0;
        } else {
            fprintf(stderr, "usage: see tests/fuzz/README.md (unknown argument '%s')\n", a);
            return 2;
        }
    }
    if (!have_seed && !o.print && !o.file)
        o.seed = (uint64_t)time(NULL) * 1000003u;
    if (!o.count && o.seconds <= 0)
        o.count = 1000;
    signal(SIGINT, on_stop);
    signal(SIGTERM, on_stop);
    signal(SIGSEGV, on_fatal);
    signal(SIGBUS, on_fatal);
    signal(SIGABRT, on_fatal);
    signal(SIGALRM, on_fatal);
    if (__sanitizer_set_death_callback)
        __sanitizer_set_death_callback(on_death);

    if (o.print) {
        fz_prog_t p;
        fz_gen(&p, o.seed, o.features);
        fz_result_t r;
        run_seed(&p, &r);
        fz_result_free(&r);
        fz_print(&p, stdout);
        fz_prog_free(&p);
        return 0;
    }
    if (o.file) {
        char *text = slurp(o.file);
        fz_prog_t p;
        if (!text || fz_parse(text, &p) < 0) {
            fprintf(stderr, "fuzz: cannot read a program from %s\n", o.file);
            return 2;
        }
        free(text);
        int status = 0;
        for (int i = 0; i < o.repeat; i++) {
            fz_result_t r;
            fz_run(&p, &r);
            if (r.nv) {
                status = 1;
                report(&p, &r, stdout);
                if (o.shrink == 2) {
                    fz_print(&p, stdout);
                    shrink_and_print(&p, r.first, o.tries);
                }
                fz_result_free(&r);
                break;
            }
            fz_result_free(&r);
        }
        if (!status)
            printf("fuzz: %s: %d run(s), no invariant broken\n", o.file, o.repeat);
        fz_prog_free(&p);
        return status;
    }

    fprintf(stderr, "fuzz: features ");
    fz_features_print(o.features, stderr);
    fprintf(stderr, ", seeds from %llu\n", (unsigned long long)o.seed);
    if (o.jobs <= 1) {
        uint64_t n;
        return worker(&o, o.seed, 1, &n);
    }
    if (o.count)
        o.count = (o.count + (uint64_t)o.jobs - 1) / (uint64_t)o.jobs;
    for (int j = 0; j < o.jobs; j++) {
        pid_t pid = fork();
        if (pid == 0) {
            uint64_t n;
            _exit(worker(&o, o.seed + (uint64_t)j, (uint64_t)o.jobs, &n));
        }
    }
    int status = 0, ws;
    while (wait(&ws) > 0)
        if (!WIFEXITED(ws) || WEXITSTATUS(ws))
            status = 1;
    return status;
}
