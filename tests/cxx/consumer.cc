/* tests/cxx/consumer.cc: a C++ program using awith, built with g++.
 *
 * Checks that every public header compiles as C++ (awith.h includes them
 * all) and that the functions link with C names (extern "C" in each
 * header), and exercises the macros that work in C++ (README, "From
 * C++"): the AW_*_INIT initialisers, aw_with without a binding over a
 * manager whose state the program names (aw_locked, aw_sem_held,
 * aw_cm(&aw_group_type, &g)), aw_for (void *v, aw_gen(...)), aw_raise,
 * aw_spawn. Managers built by compound literals (aw_group(),
 * aw_fail_after(), aw_tcp_client(), ...) and `aw_with (T *x, ...)`
 * bindings are C only: g++ rejects them ("taking address of rvalue",
 * void * to T *). */
#include <awith.h>
#include <criterion/criterion.h>

#include <cerrno>
#include <cstring>

#if !defined(__cplusplus)
#error "this test must be compiled as C++"
#endif

Test(cxx, version_at_run_time_matches_the_headers) {
    cr_assert_eq(aw_version(), AW_VERSION_NUMBER);
    cr_assert_str_eq(aw_version_string(), AW_VERSION_STRING);
}

namespace {

int child(void *arg) {
    int *n = static_cast<int *>(arg);
    int rc = aw_sleep(AW_MS(1));
    if (rc == 0)
        ++*n;
    return rc;
}

int count_to_three(aw_gen_t *g, void *arg) {
    (void)arg;
    static int vals[3] = {1, 2, 3};
    for (int &v : vals) {
        int rc = aw_gen_yield(g, &v);
        if (rc)
            return rc;
    }
    return 0;
}

int gencm_body(aw_gencm_t *g, void *arg) { return aw_gencm_yield(g, arg); }
void timing_report(const aw_timing_t *t, aw_ns_t ns, const aw_err_t *e, void *arg) {
    (void)t, (void)ns, (void)e, (void)arg;
}

aw_lock_t lock = AW_LOCK_INIT("cxx");
[[maybe_unused]] aw_cond_t cond = AW_COND_INIT(&lock);
aw_sem_t sem = AW_SEM_INIT("cxx", 1, 1);
aw_event_t ev = AW_EVENT_INIT;
[[maybe_unused]] aw_gencm_t gencm_init = AW_GENCM_INIT(gencm_body, nullptr);
[[maybe_unused]] aw_timing_t timing = AW_TIMING_INIT("cxx", timing_report, nullptr);

int body(void *arg) {
    int *checks = static_cast<int *>(arg);
    int rc;

    /* a blocking call on the thread pool, through a captureless lambda */
    int v = 21;
    if (aw_to_thread([](void *p) { *static_cast<int *>(p) *= 2; }, &v, nullptr) != 0 || v != 42)
        return aw_raise(-EIO, "aw_to_thread gave %d", v);
    ++*checks;

    /* a joinable task in the root group */
    int n = 0;
    aw_task_t *t = nullptr;
    if (aw_spawn(nullptr, child, &n, &t) != 0 || aw_task_join(t) != 0 || n != 1)
        return aw_raise(-EIO, "spawn/join: n = %d", n);
    ++*checks;

    /* a group whose state the program names: aw_with without a binding */
    aw_group_t g{};
    aw_with (aw_cm(&aw_group_type, &g)) {
        aw_spawn(&g, child, &n, nullptr);
        aw_spawn(&g, child, &n, nullptr);
    }
    if (aw_status() != 0 || n != 3)
        return aw_raise(-EIO, "group: n = %d", n);
    ++*checks;

    /* managers over named state */
    aw_with (aw_locked(&lock)) {
        if (aw_lock_owner(&lock) != aw_task_self())
            return aw_raise(-EIO, "the lock is not held inside aw_with");
    }
    aw_with (aw_sem_held(&sem)) {}
    /* aw_leave and aw_fail leave the block; aw_fail's error gets out */
    int passes = 0;
    aw_with (aw_locked(&lock)) {
        ++passes;
        aw_leave();
    }
    aw_with (aw_locked(&lock)) {
        ++passes;
        aw_fail(-EPERM, "left with aw_fail");
    }
    if (passes != 2 || aw_status() != -EPERM)
        return aw_raise(-EIO, "aw_leave/aw_fail: %d passes, status %d", passes, aw_status());
    aw_err_clear();
    ++*checks;

    /* a generator, values as void * */
    int sum = 0;
    aw_for (void *p, aw_gen(count_to_three, nullptr))
        sum += *static_cast<int *>(p);
    /* the same through the function API, from AW_GEN_INIT */
    aw_gen_t gen = AW_GEN_INIT(count_to_three, nullptr);
    void *item;
    while ((rc = aw_gen_next(&gen, &item)) == 1)
        sum += *static_cast<int *>(item);
    aw_gen_close(&gen);
    if (rc != 0 || sum != 12)
        return aw_raise(-EIO, "aw_for and aw_gen_next summed %d (%d)", sum, rc);
    ++*checks;

    /* an event and an error record */
    aw_event_set(&ev);
    if (aw_event_wait(&ev) != 0)
        return -EIO;
    rc = aw_raise(-ENOENT, "raised from C++ (%s)", "ok");
    if (rc != -ENOENT || aw_status() != -ENOENT || std::strcmp(aw_err_name(rc), "ENOENT") != 0)
        return aw_raise(-EIO, "aw_raise gave %d", rc);
    aw_err_clear();
    ++*checks;

#if AW_HAVE_SQLITE
    /* an optional layer, through its function API */
    aw_sqlite_t *db = nullptr;
    long long x = 0;
    if (aw_sqlite_open(&db, ":memory:") != 0)
        return aw_status();
    rc = aw_sqlite_fetch_int(db, &x, "SELECT 40 + 2", aw_sqlite_noargs);
    aw_sqlite_close(db);
    if (rc != 0 || x != 42)
        return aw_raise(-EIO, "sqlite gave %lld (%d)", x, rc);
    ++*checks;
#endif
    return 0;
}

} // namespace

Test(cxx, functions_and_the_cxx_macros_link_and_run) {
    int checks = 0;
    int rc = aw_main(body, &checks);
    cr_assert_eq(rc, 0, "aw_main: %s", aw_strerror(rc));
#if AW_HAVE_SQLITE
    cr_assert_eq(checks, 7);
#else
    cr_assert_eq(checks, 6);
#endif
}
