/* tests/fuzz/regress.c: the fuzzer's findings, kept. Each file of cases/
 * is a minimal program (as the shrinker printed it) with its expectation
 * on the first line:
 *   ; expect: clean        no invariant broken, in any of 5 runs;
 *   ; expect: CLASS (...)  a defect still open in issue 10: some run of 5
 *                          shows a violation of that class. When the
 *                          defect is fixed this test fails: change the
 *                          line to `; expect: clean` and turn the matching
 *                          PENDING feature on by default (fuzz.h).
 * Plus a short seeded run with the default features, which must be clean
 * (the long one is `make fuzz`, and a minute under ASan in make test). */
#include "fuzz.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

static char *slurp(const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", FZ_CASES_DIR, name);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "cannot open %s", path);
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

static void check_case(const char *name) {
    char *text = slurp(name);
    const char *e = strstr(text, "expect:");
    cr_assert_not_null(e, "%s: no '; expect:' line", name);
    char want[32] = "";
    sscanf(e + 7, " %31[a-z-]", want);
    fz_prog_t p;
    cr_assert_eq(fz_parse(text, &p), 0, "%s does not parse", name);
    free(text);
    bool clean = !strcmp(want, "clean");
    int v = -1;
    for (int i = 0; i < FZ_NV; i++)
        if (!strcmp(fz_violation_name(i), want))
            v = i;
    cr_assert(clean || v >= 0, "%s: unknown expectation '%s'", name, want);
    bool seen = false;
    for (int i = 0; i < 5 && !seen; i++) {
        fz_result_t r;
        fz_run(&p, &r);
        if (clean)
            cr_expect_eq(r.nv, 0, "%s: run %d broke invariants:\n%s", name, i, r.log);
        else
            seen = r.classes & (1u << v);
        fz_result_free(&r);
        if (clean && r.nv)
            break;
    }
    fz_prog_free(&p);
    if (!clean)
        cr_assert(seen, "%s: no '%s' violation in 5 runs: is the defect fixed? Then mark the case "
                  "'; expect: clean' and turn its PENDING feature on in fuzz.h", name, want);
}

Test(fuzz, item3_exit_own) { check_case("item3_exit_own.fz"); }
Test(fuzz, item3_exit_own_cancel) { check_case("item3_exit_own_cancel.fz"); }
Test(fuzz, item4_gencm_around) { check_case("item4_gencm_around.fz"); }
Test(fuzz, item4_gencm_scope) { check_case("item4_gencm_scope.fz"); }
Test(fuzz, item4_agen_around) { check_case("item4_agen_around.fz"); }
Test(fuzz, item5_group_absorb) { check_case("item5_group_absorb.fz"); }
Test(fuzz, item5_scope_absorb) { check_case("item5_scope_absorb.fz"); }
Test(fuzz, item5_shield_absorb) { check_case("item5_shield_absorb.fz"); }
Test(fuzz, item6_lock_leak) { check_case("item6_lock_leak.fz"); }
Test(fuzz, item7_cond_nobaton) { check_case("item7_cond_nobaton.fz"); }
Test(fuzz, item7_found) { check_case("item7_found.fz"); }
Test(fuzz, item7_cond_baton) { check_case("item7_cond_baton.fz"); }
Test(fuzz, item8_spawn_outer) { check_case("item8_spawn_outer.fz"); }
Test(fuzz, gencm_zombie_cancel_suppressed) { check_case("gencm_zombie_cancel_suppressed.fz"); }
Test(fuzz, gencm_zombie_cancel_replaced) { check_case("gencm_zombie_cancel_replaced.fz"); }
Test(fuzz, failafter_group_ownerdead) { check_case("failafter_group_ownerdead.fz"); }
Test(fuzz, gencm_cancel_scope_no_deadline) { check_case("gencm_cancel_scope_no_deadline.fz"); }
Test(fuzz, gencm_group_child_outer_cancel) { check_case("gencm_group_child_outer_cancel.fz"); }
Test(fuzz, gencm_scope_outer_in_cleanup) { check_case("gencm_scope_outer_in_cleanup.fz"); }
Test(fuzz, gencm_covered_deadline_spin) { check_case("gencm_covered_deadline_spin.fz"); }
Test(fuzz, agen_close_failure_in_cancelled_group) {
    check_case("agen_close_failure_in_cancelled_group.fz");
}

/* Seeds 1..300 with the default features but the timing-dependent ones
 * (real sleeps and deadlines: their outcome moves with the machine's
 * load), a smoke run of the fuzzer in every build that gives the same
 * answer every time (the minute-long run is tools/test.sh's). */
Test(fuzz, default_features_are_clean, .timeout = 120) {
    for (uint64_t s = 1; s <= 300; s++) {
        fz_prog_t p;
        fz_gen(&p, s, FZ_DEFAULT & ~(FZ_F_SLEEP | FZ_F_REALTIME));
        fz_result_t r;
        fz_run(&p, &r); /* the plain program */
        if (!r.nv && (p.ninj || p.harness_how)) {
            fz_place(&p, r.points); /* and with its injections */
            fz_result_free(&r);
            fz_run(&p, &r);
        }
        if (r.nv) {
            fz_print(&p, stderr);
            cr_assert_fail("seed %llu broke invariants:\n%s", (unsigned long long)s, r.log);
        }
        fz_result_free(&r);
        fz_prog_free(&p);
    }
}
