/* fuzz.h: the composition fuzzer (tests/fuzz/README.md).
 *
 * A program is a small tree of statements over the toolkit (managers,
 * scopes, groups, sync, generators, raises...), made from a seed by
 * fz_gen, interpreted by C code (fz_run) under the checker of
 * awith/testing.h plus the fuzzer's own invariants, printed and parsed
 * back as s-expressions, and shrunk (fz_shrink) when it fails. */
#ifndef AW_FUZZ_H
#define AW_FUZZ_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Program features. A feature off is never generated. The FZ_PENDING_*
 * ones are the combinations that hit the defects of issue 10 items 3-8;
 * they were off by default until those were fixed, and FZ_PENDING is
 * where a feature goes while a defect it finds is open. */
#define FZ_FEATURES(X)                                                                      \
    X(CLASS, "class", "class managers (enter/exit bodies, suppress, fail)")                 \
    X(GENCM, "gencm", "generator managers (aw_gencm)")                                      \
    X(XSTACK, "exitstack", "exit stacks with class and generator entries")                  \
    X(CSCOPE, "cancel-scope", "cancel scopes, and cancelling them from inside")             \
    X(MOVEON, "move-on", "move-on scopes")                                                  \
    X(FAILAFTER, "fail-after", "fail-after scopes")                                         \
    X(SHIELD, "shield", "shields")                                                          \
    X(GROUP, "group", "task groups, spawned children, aw_group_cancel")                     \
    X(LOCK, "lock", "locks and semaphores")                                                 \
    X(EVENT, "event", "events (a setter child sets them)")                                  \
    X(COND, "cond", "conditions (a setter child notifies one, each waiter the next)")       \
    X(AGEN, "agen", "async generators consumed by aw_for, with break")                      \
    X(SLEEP, "sleep", "short real sleeps (timing-dependent)")                               \
    X(REALTIME, "realtime", "short real deadlines on scopes (timing-dependent)")            \
    X(RAISE, "raise", "raises, failing enters and exits")                                   \
    X(CATCH, "catch", "catching an error by code in a body")                                \
    X(SUPPRESS, "suppress", "exits and generator managers that suppress")                   \
    X(INJECT, "inject", "cancels and deadline expiries landing from outside")               \
    X(DUMP, "dump", "aw_loop_dump at random points")                                        \
    X(PENDING_EXIT_OWN, "exit-own",                                                         \
      "issue 10 item 3: exits/enters that raise and clear their own error")                  \
    X(PENDING_GENCM_AROUND, "gencm-around",                                                 \
      "issue 10 item 4: a gencm holding managers/scopes/groups around its yield")            \
    X(PENDING_AGEN_AROUND, "agen-around",                                                   \
      "issue 10 item 4: an async generator holding managers around its yield")               \
    X(PENDING_ABSORB, "absorb",                                                             \
      "issue 10 item 5: errors raised while a scope/group unwinds its own cancel")           \
    X(PENDING_LOCK_LEAK, "lock-leak", "issue 10 item 6: a task that ends holding a lock")    \
    X(PENDING_COND_NOBATON, "cond-nobaton",                                                 \
      "issue 10 item 7: a cancelled condition waiter does not notify the next")              \
    X(PENDING_SPAWN_OUTER, "spawn-outer",                                                   \
      "issue 10 item 8: a child spawns a sibling while the owner waits")

enum {
#define FZ__FBIT(name, str, doc) FZ__BIT_##name,
    FZ_FEATURES(FZ__FBIT)
#undef FZ__FBIT
    FZ_NFEATURES
};
enum {
#define FZ__FVAL(name, str, doc) FZ_F_##name = 1u << FZ__BIT_##name,
    FZ_FEATURES(FZ__FVAL)
#undef FZ__FVAL
};
#define FZ_ALL ((1u << FZ_NFEATURES) - 1)
#define FZ_PENDING 0u /* none open */
#define FZ_DEFAULT (FZ_ALL & ~FZ_PENDING)

/* Feature names <-> bits: "+x,-y" edits `base`; "all", "default", "none". */
int fz_features_parse(const char *s, unsigned base, unsigned *out);
void fz_features_print(unsigned f, FILE *out);
const char *fz_feature_doc(int bit, const char **name);

/* Violation classes: what the shrinker keeps, what the report counts. */
#define FZ_VIOLATIONS(X)                                                                    \
    X(TESTING, "checker", "awith/testing.h: manager not exited once, fd leak, lock held...") \
    X(EXIT_COUNT, "exit-count", "a manager's exit ran other than once")                     \
    X(EXIT_SAW, "exit-saw", "an exit was not handed the error the block left with")         \
    X(OUTCOME, "outcome", "what left a block differs from the manager's rule")              \
    X(LOST_ERROR, "lost-error", "an error vanished: not suppressed, caught or present")     \
    X(LOST_CANCEL, "lost-cancel", "a task cancelled from outside ended with status 0")      \
    X(NOT_DELIVERED, "not-delivered", "a point returned 0 while a cancel was visible")      \
    X(COVER, "cover", "a scope held open around a gencm yield does not cover the block")    \
    X(YIELD_ERR, "yield-err", "the block's error is not pending inside the generator")      \
    X(DEADLINE, "deadline", "a deadline fired before its time")                             \
    X(SPAWN, "spawn", "spawn into an open group refused")                                   \
    X(DUP, "dup", "an error appears twice in what leaves a block")                          \
    X(NORECORD, "no-record", "a call failed without recording an error")                    \
    X(HANG, "hang", "the loop reported a deadlock (a wait nobody can end)")                 \
    X(REPORT, "report", "the runtime printed a report at loop close")                       \
    X(LOCKS, "locks", "a condition's lock is held or awaited after its group")              \
    X(CRASH, "crash", "the program crashed (signal)")

enum {
#define FZ__VENUM(name, str, doc) FZ_V_##name,
    FZ_VIOLATIONS(FZ__VENUM)
#undef FZ__VENUM
    FZ_NV
};
const char *fz_violation_name(int v);

typedef struct fz_node fz_node_t;
typedef struct fz_list {
    fz_node_t **v;
    int n;
} fz_list_t;

struct fz_node {
    int kind, a, b, c, id;
    fz_list_t body, l1, l2;
};

typedef struct fz_inject {
    int point;  /* global cancellation point count (every task) */
    int target; /* node id: a scope or a group */
    int how;    /* 0 cancel, 1 expire its deadline now */
} fz_inject_t;

enum { FZ_MAX_INJ = 4 };

typedef struct fz_prog {
    fz_list_t main;
    fz_inject_t inj[FZ_MAX_INJ];
    int ninj;
    int harness_how, harness_k; /* aw_testing's injection on the whole program */
    int nids;
    uint64_t seed;
    unsigned features;
} fz_prog_t;

typedef struct fz_result {
    int nv;                  /* violations */
    unsigned classes;        /* bit per FZ_V_* seen */
    int first;               /* class of the first one, -1 if none */
    int points, status;
    int landed;              /* injections that found their target live */
    long enters;
    char *log;               /* the violations, one per line (malloc'd) */
} fz_result_t;

/* A program from a seed. Its injection points are placeholders (1..1000)
 * until fz_place scales them to the points a run without them counted
 * (the driver runs each seed that way: once plain, once injected). */
void fz_gen(fz_prog_t *p, uint64_t seed, unsigned features);
void fz_place(fz_prog_t *p, int points);
/* The ids of the scopes and groups of p (what injections can target). */
int fz_targets(const fz_prog_t *p, int *ids, int max);
void fz_prog_free(fz_prog_t *p);
fz_prog_t *fz_prog_clone(const fz_prog_t *p);
void fz_print(const fz_prog_t *p, FILE *f);
int fz_parse(const char *text, fz_prog_t *p); /* 0, or -1 with a message on stderr */
int fz_count_nodes(const fz_prog_t *p);

/* Run once; res->log must be freed by the caller (fz_result_free). */
void fz_run(const fz_prog_t *p, fz_result_t *res);
void fz_result_free(fz_result_t *res);

/* Shrink p (in place) while some run out of `tries` still shows class v. */
int fz_shrink(fz_prog_t *p, int v, int tries, FILE *progress);

/* Which issue-10 items a (shrunk) program's violation of class v needs:
 * bit N for item N, found from the PENDING constructs it contains and, for
 * the behaviour switches (absorb, cond-nobaton), by running it without
 * them. 0: none of them, a new finding. */
unsigned fz_classify(const fz_prog_t *p, int v, int tries);

/* Runs so far in this process (a seed may take several: plain, injected,
 * a sweep of injection points). */
extern uint64_t fz_runs;

/* The seed of the program now running (for the crash handler). */
extern volatile uint64_t fz_current_seed;

#endif
