/* tests for examples/fs/file_handling.c (seed 003's patterns on real
 * files): it prints exactly the lines below, and leaves no file and no fd
 * behind -- on its normal path and when cancelled, or hit by a deadline,
 * at any of its cancellation points (awith/testing.h). The example runs
 * in a scratch directory of the test's, which must be empty afterwards:
 * the example removes the files it knows it made, so anything else (a
 * temporary file of an atomic write) would remain and fail the test. */
#define AW_EXAMPLE_NO_MAIN
#include "../../examples/fs/file_handling.c"

#include "capture.h"
#include "testutil.h"
#include <awith/testing.h>

static char dir[64];
static int fds0;

static void setup(void) {
    snprintf(dir, sizeof dir, "/tmp/awith-fh-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    fds0 = aw_test_fds();
}

/* The names left in the scratch directory (dot files included). */
static const char *leftovers(void) {
    static char out[512];
    DIR *d = opendir(dir);
    out[0] = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (strlen(out) + strlen(e->d_name) + 2 < sizeof out)
            strcat(strcat(out, " "), e->d_name);
    }
    if (d)
        closedir(d);
    return out;
}

static void teardown(void) {
    cr_assert_eq(aw_test_fds(), fds0, "file descriptors leaked");
    cr_assert_str_empty(leftovers(), "files left behind:%s", leftovers());
    cr_assert_eq(rmdir(dir), 0);
}

TestSuite(file_handling, .init = setup, .fini = teardown);

static const char expected[] =
    "-- (a) aw_file, used directly: async with aiofiles.open(...) as f\n"
    "wrote notes.txt: 3 lines\n"
    "notes.txt:1: buy milk\n"
    "notes.txt:2: call Ann\n"
    "notes.txt:3: back up the laptop\n"
    "-- (b) a class-style manager: enter writes a header, exit a footer\n"
    "[log] run.log opened, header written\n"
    "[log] footer written, run.log closed\n"
    "run.log:\n"
    "  == begin job 1 ==\n"
    "  step 1 done\n"
    "  step 2 done\n"
    "  == end job 1: ok ==\n"
    "-- (c) the same as a generator manager (aw_gencm)\n"
    "[log_gen] run.log opened, header written\n"
    "[log_gen] footer written, run.log closed\n"
    "-- (d) an error in the block reaches the exit, which lets it propagate\n"
    "[log] run.log opened, header written\n"
    "[log] exit saw ENOENT: open missing.conf: No such file or directory\n"
    "[log] footer written, run.log closed\n"
    "after the block: ENOENT: open missing.conf: No such file or directory\n"
    "-- (d') the same manager told to suppress it (__aexit__ returns True)\n"
    "[log] run.log opened, header written\n"
    "[log] exit saw ENOENT: open missing.conf: No such file or directory -- suppressed\n"
    "[log] footer written, run.log closed\n"
    "after the block: no error\n"
    "run.log:\n"
    "  == begin job 1 ==\n"
    "  step 1 done\n"
    "  step 2 done\n"
    "  == end job 1: ok ==\n"
    "  == begin job 2 ==\n"
    "  step 1 done\n"
    "  == end job 2: ok ==\n"
    "  == begin job 3 ==\n"
    "  == end job 3: failed (ENOENT) ==\n"
    "  == begin job 4 ==\n"
    "  == end job 4: ok (ENOENT ignored) ==\n"
    "-- (e) two managers in one statement: copy notes.txt to notes.bak\n"
    "copied 37 bytes\n"
    "-- nested: the destination is an atomic write inside the source's block\n"
    "copied 37 bytes\n"
    "-- combined: one generator manager opening both\n"
    "copied 37 bytes\n"
    "-- an atomic write: all or nothing\n"
    "settings.conf:\n"
    "  mode = fast\n"
    "after the block: EINVAL: settings.conf: unknown mode 'broken'\n"
    "settings.conf:\n"
    "  mode = fast\n"
    /* the failed atomic write left no ".settings.conf.XXXXXX" */
    "files: notes.bak notes.copy notes.old notes.txt run.log settings.conf\n";

Test(file_handling, prints_the_seed_003_patterns_and_leaves_nothing_behind) {
    static char out[8192];
    int rc = aw_test_capture(example_file_handling, dir, out, sizeof out);
    cr_assert_eq(rc, 0, "the example failed: %s", aw_err_name(rc));
    cr_assert_str_eq(out, expected);
}

/* Before each run of the checker: the previous run left nothing. */
static void no_leftovers(void *arg) {
    (void)arg;
    cr_assert_str_empty(leftovers(), "files left behind by the previous run:%s", leftovers());
}

Test(file_handling, K3_cancel_or_deadline_at_every_point_leaves_no_file_or_fd) {
    aw_testing_t h = {.name = "file_handling", .fn = example_file_handling, .arg = dir,
                      .reset = no_leftovers, .mute_stdout = true};
    aw_testing_report_t r;
    int v = aw_testing_run(&h, &r);
    cr_assert_eq(v, 0, "%d invariant violation(s), listed on stderr", v);
    cr_assert_geq(r.points, 20, "%d cancellation points counted", r.points);
    /* a point served from the page cache on one run may go to the thread
     * pool on another: a run may miss its point k, but most must inject */
    cr_assert_geq(r.cancels + r.deadlines, r.points, "cancels %d, deadlines %d, points %d",
                  r.cancels, r.deadlines, r.points);
    cr_assert_gt(r.enters, 0);
}
