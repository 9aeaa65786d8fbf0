/* A stand-in for <criterion/criterion.h> for ThreadSanitizer builds.
 *
 * Criterion cannot run under TSan: its BoxFort arena fails to map
 * ("Could not initialize inheritable arena", Snaipe/Criterion#274). The
 * test files only use Test() and the cr_assert family, so this header
 * gives them the same meaning: each test runs in a forked child (static
 * state stays per test, as with Criterion), a failed assertion prints
 * where and why and fails that test, and the run ends with Criterion's
 * "Synthesis" line. Used by tools/test-tsan.sh only. */
#ifndef AW_TSAN_CRITERION_H
#define AW_TSAN_CRITERION_H

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct cr__opts {
    int pad_;
    int signal;      /* the test passes if it dies of this signal */
    int exit_code;
    double timeout;  /* accepted for the tests' sake; the runner's own limit applies */
};

struct cr__test {
    const char *suite, *name;
    void (*fn)(void);
    struct cr__opts opts;
    struct cr__test *next;
};

static struct cr__test *cr__tests, **cr__tail = &cr__tests;

static inline void cr__register(struct cr__test *t) {
    *cr__tail = t;
    cr__tail = &t->next;
}

#define Test(suite, name, ...)                                                          \
    static void suite##_##name##_impl(void);                                            \
    static struct cr__test suite##_##name##_test = {                                    \
        #suite, #name, suite##_##name##_impl, {.pad_ = 0, __VA_ARGS__}, NULL};          \
    __attribute__((constructor)) static void suite##_##name##_reg(void) {               \
        cr__register(&suite##_##name##_test);                                           \
    }                                                                                   \
    static void suite##_##name##_impl(void)

__attribute__((unused)) static void
cr__fail(const char *file, int line, const char *expr, const char *fmt, ...) {
    fprintf(stderr, "[----] %s:%d: Assertion Failed: %s\n", file, line, expr);
    if (fmt && *fmt) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "[----]   ");
        vfprintf(stderr, fmt, ap);
        fprintf(stderr, "\n");
        va_end(ap);
    }
    fflush(stderr);
    _exit(1);
}

#define cr__check(cond, expr, ...)                                                      \
    do {                                                                                \
        if (!(cond))                                                                    \
            cr__fail(__FILE__, __LINE__, expr, "" __VA_ARGS__);                         \
    } while (0)

#define cr_assert(c, ...) cr__check((c), #c, __VA_ARGS__)
#define cr_assert_not(c, ...) cr__check(!(c), "!(" #c ")", __VA_ARGS__)
#define cr_assert_fail(...) cr__check(0, "failed", __VA_ARGS__)
#define cr_expect(c, ...) cr__check((c), #c, __VA_ARGS__)
#define cr_assert_eq(a, b, ...) cr__check((a) == (b), #a " == " #b, __VA_ARGS__)
#define cr_assert_neq(a, b, ...) cr__check((a) != (b), #a " != " #b, __VA_ARGS__)
#define cr_assert_lt(a, b, ...) cr__check((a) < (b), #a " < " #b, __VA_ARGS__)
#define cr_assert_leq(a, b, ...) cr__check((a) <= (b), #a " <= " #b, __VA_ARGS__)
#define cr_assert_gt(a, b, ...) cr__check((a) > (b), #a " > " #b, __VA_ARGS__)
#define cr_assert_geq(a, b, ...) cr__check((a) >= (b), #a " >= " #b, __VA_ARGS__)
#define cr_assert_null(p, ...) cr__check((p) == NULL, #p " == NULL", __VA_ARGS__)
#define cr_assert_not_null(p, ...) cr__check((p) != NULL, #p " != NULL", __VA_ARGS__)
#define cr_assert_str_eq(a, b, ...) cr__check(strcmp((a), (b)) == 0, #a " eq " #b, __VA_ARGS__)
#define cr_assert_str_neq(a, b, ...) cr__check(strcmp((a), (b)) != 0, #a " neq " #b, __VA_ARGS__)

/* Runs every test (or those whose suite::name contains argv's --filter=
 * text) in a child of its own; options like --jobs are accepted and
 * ignored. */
int main(int argc, char **argv) {
    const char *filter = NULL;
    for (int i = 1; i < argc; i++)
        if (strncmp(argv[i], "--filter=", 9) == 0)
            filter = argv[i] + 9;
    int tested = 0, passing = 0, failing = 0, crashing = 0;
    for (struct cr__test *t = cr__tests; t; t = t->next) {
        char full[256];
        snprintf(full, sizeof full, "%s::%s", t->suite, t->name);
        if (filter && !strstr(full, filter))
            continue;
        tested++;
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
            alarm(120);
            t->fn();
            fflush(NULL);
            _exit(0);
        }
        int st = 0;
        waitpid(pid, &st, 0);
        int ok;
        if (t->opts.signal)
            ok = WIFSIGNALED(st) && WTERMSIG(st) == t->opts.signal;
        else
            ok = WIFEXITED(st) && WEXITSTATUS(st) == t->opts.exit_code;
        if (ok) {
            passing++;
        } else if (WIFSIGNALED(st)) {
            crashing++;
            fprintf(stderr, "[FAIL] %s: CRASH (signal %d)\n", full, WTERMSIG(st));
        } else {
            failing++;
            fprintf(stderr, "[FAIL] %s (exit %d)\n", full, WEXITSTATUS(st));
        }
    }
    printf("[====] Synthesis: Tested: %d | Passing: %d | Failing: %d | Crashing: %d \n", tested,
           passing, failing, crashing);
    return failing || crashing;
}

#endif
