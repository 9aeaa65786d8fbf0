/* examples/fs/file_handling.c -- seed 003's patterns on real files ("File
 * I/O operations", one of its practical applications).
 *
 *   async with aiofiles.open(p) as f: ...          (a) aw_file, used directly
 *   class LogFile: __aenter__ / __aexit__          (b) a manager type
 *   @asynccontextmanager async def log_file(...)   (c) aw_gencm
 *   __aexit__ sees the error, returns False/True   (d) propagate / suppress
 *   async with a() as x, b() as y / nested /       (e) copies: one statement,
 *       a combined manager                             nested (atomic), combined;
 *                                                      an atomic write that fails
 *
 * Everything happens in a scratch directory: `arg` if given (the test
 * passes its own and checks it is left empty), else a new one under /tmp,
 * removed at the end. Messages are printed with that directory left out,
 * so the output is the same on every run. */
#include <awith.h>
#include <awith/file.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs_demo.h"

static char fh_dir[200]; /* the scratch directory */

static const char *fh_path(const char *name) {
    static char buf[4][256];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof buf[i], "%s/%s", fh_dir, name);
    return buf[i];
}

/* A message with the scratch directory left out. */
static const char *fh_rel(const char *msg) {
    static char out[512];
    char prefix[sizeof fh_dir + 1];
    snprintf(prefix, sizeof prefix, "%s/", fh_dir);
    size_t pl = strlen(prefix), o = 0;
    while (*msg && o < sizeof out - 1) {
        if (!strncmp(msg, prefix, pl))
            msg += pl;
        else
            out[o++] = *msg++;
    }
    out[o] = 0;
    return out;
}

/* What left the last block: print it; handle it unless it is a cancel. */
static int fh_after(void) {
    const aw_err_t *e = aw_err_current();
    if (!e) {
        puts("after the block: no error");
        return 0;
    }
    printf("after the block: %s: %s\n", aw_err_name(e->code), fh_rel(e->msg));
    if (e->code == -ECANCELED || e->code == -ETIMEDOUT)
        return e->code; /* not ours to handle */
    aw_err_clear();
    return 0;
}

/* printf into a file (the whole line or an error naming the file). */
static int fh_printf(aw_file_t *f, const char *fmt, ...) {
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    return aw_file_write(f, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

/* Print a file, indented (aw_file_read_all: open, read, close). */
static int fh_cat(const char *name) {
    char *text;
    size_t len;
    if (aw_file_read_all(fh_path(name), &text, &len, 1 << 20) < 0)
        return aw_status();
    printf("%s:\n", name);
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
        printf("  %s\n", line);
    free(text);
    return 0;
}

/* The directory's entries, dot files included, sorted. */
static void fh_listing(void) {
    struct dirent **v;
    int n = scandir(fh_dir, &v, NULL, alphasort);
    printf("files:");
    for (int i = 0; i < n; i++) {
        if (strcmp(v[i]->d_name, ".") && strcmp(v[i]->d_name, ".."))
            printf(" %s", v[i]->d_name);
        free(v[i]);
    }
    if (n >= 0)
        free(v);
    putchar('\n');
}

/* ---- (a) the file manager, used directly ---- */

static int fh_direct(void) {
    puts("-- (a) aw_file, used directly: async with aiofiles.open(...) as f");
    static const char *const notes[] = {"buy milk", "call Ann", "back up the laptop"};
    aw_with (aw_file_t *f, aw_file(fh_path("notes.txt"), O_WRONLY | O_CREAT | O_TRUNC, 0644)) {
        int i = 0;
        while (i < 3 && fh_printf(f, "%s\n", notes[i]) == 0)
            i++;
        if (i < 3)
            aw_leave(); /* (a break inside a loop would leave only the loop) */
        puts("wrote notes.txt: 3 lines");
    } /* closed here; a close error would fail the block */
    if (aw_status() < 0)
        return aw_status();
    aw_for (aw_line_t *l, aw_file_lines(fh_path("notes.txt"))) /* async for line in f */
        printf("notes.txt:%zu: %s", l->lineno, l->text);
    return aw_status();
}

/* ---- (b) a class-style manager: a log file with a header and a footer ---- */

typedef struct fh_log {
    const char *name;      /* the log file, in the scratch directory */
    const char *job;       /* written in the header and the footer */
    bool suppress_missing; /* exit swallows -ENOENT (__aexit__ returns True) */
    aw_file_t file;
} fh_log;

static int fh_log_enter(void *self, void **out) {
    fh_log *l = self;
    if (aw_file_open(&l->file, fh_path(l->name), O_WRONLY | O_CREAT | O_APPEND, 0644) < 0)
        return aw_status(); /* enter failed: the block is skipped, exit does not run */
    if (fh_printf(&l->file, "== begin %s ==\n", l->job) < 0) {
        aw_file_close(&l->file); /* enter gives back what it took before failing */
        return aw_status();
    }
    printf("[log] %s opened, header written\n", l->name);
    *out = &l->file; /* the `as` target: the open file */
    return 0;
}

static int fh_log_exit(void *self, const aw_err_t *err) {
    fh_log *l = self;
    bool suppress = err && err->code == -ENOENT && l->suppress_missing;
    if (err)
        printf("[log] exit saw %s: %s%s\n", aw_err_name(err->code), fh_rel(err->msg),
               suppress ? " -- suppressed" : "");
    int rc = !err ? fh_printf(&l->file, "== end %s: ok ==\n", l->job)
             : suppress ? fh_printf(&l->file, "== end %s: ok (%s ignored) ==\n", l->job, aw_err_name(err->code))
                        : fh_printf(&l->file, "== end %s: failed (%s) ==\n", l->job, aw_err_name(err->code));
    int crc = aw_file_close(&l->file); /* always released */
    printf("[log] footer written, %s closed\n", l->name);
    if (rc < 0 || crc < 0)
        return rc < 0 ? rc : crc; /* the exit failed: its error replaces the block's */
    return suppress ? AW_SUPPRESS /* return True */
                    : 0;          /* return False: the error, if any, propagates */
}

static const aw_cm_type_t fh_log_type = {.name = "log_file", .enter = fh_log_enter, .exit = fh_log_exit};
#define fh_log_file(name_, job_) aw_cm_temp(&fh_log_type, (fh_log){.name = (name_), .job = (job_)})

static int fh_class(void) {
    puts("-- (b) a class-style manager: enter writes a header, exit a footer");
    aw_with (aw_file_t *log, fh_log_file("run.log", "job 1")) {
        if (fh_printf(log, "step 1 done\n") < 0 || fh_printf(log, "step 2 done\n") < 0)
            aw_leave();
    }
    return aw_status() < 0 ? aw_status() : fh_cat("run.log");
}

/* ---- (c) the same manager as one function (@asynccontextmanager) ---- */

static int fh_log_gen(aw_gencm_t *g, void *arg) {
    fh_log *l = arg;
    aw_file_t f;
    if (aw_file_open(&f, fh_path(l->name), O_WRONLY | O_CREAT | O_APPEND, 0644) < 0)
        return aw_status();
    if (fh_printf(&f, "== begin %s ==\n", l->job) < 0) {
        aw_file_close(&f);
        return aw_status();
    }
    printf("[log_gen] %s opened, header written\n", l->name);
    int rc = aw_gencm_yield(g, &f); /* try: yield f */
    int wrc = rc < 0 ? fh_printf(&f, "== end %s: failed (%s) ==\n", l->job, aw_err_name(rc))
                     : fh_printf(&f, "== end %s: ok ==\n", l->job); /* finally: */
    int crc = aw_file_close(&f);
    printf("[log_gen] footer written, %s closed\n", l->name);
    return rc < 0 ? rc : wrc < 0 ? wrc : crc; /* the block's error first */
}

static int fh_generator(void) {
    puts("-- (c) the same as a generator manager (aw_gencm)");
    fh_log args = {.name = "run.log", .job = "job 2"};
    aw_with (aw_file_t *log, aw_gencm(fh_log_gen, &args)) {
        if (fh_printf(log, "step 1 done\n") < 0)
            aw_leave();
    }
    return aw_status(); /* run.log is shown after (d) */
}

/* ---- (d) an error in the block reaches the exit ---- */

/* The job reads a configuration file that does not exist. */
static int fh_read_config(aw_file_t *log, const char *name) {
    char *text;
    size_t len;
    if (aw_file_read_all(fh_path(name), &text, &len, 0) < 0)
        return aw_status(); /* -ENOENT "open DIR/NAME: No such file or directory" */
    fh_printf(log, "config: %zu bytes\n", len);
    free(text);
    return 0;
}

static int fh_errors(void) {
    puts("-- (d) an error in the block reaches the exit, which lets it propagate");
    aw_with (aw_file_t *log, fh_log_file("run.log", "job 3")) {
        if (fh_read_config(log, "missing.conf") < 0)
            aw_leave(); /* leaves with the pending error */
        puts("not reached");
    }
    if (fh_after() < 0)
        return aw_status();
    puts("-- (d') the same manager told to suppress it (__aexit__ returns True)");
    aw_with (aw_file_t *log, aw_cm_temp(&fh_log_type, (fh_log){.name = "run.log", .job = "job 4",
                                                           .suppress_missing = true})) {
        if (fh_read_config(log, "missing.conf") < 0)
            aw_leave();
    }
    if (fh_after() < 0)
        return aw_status();
    return fh_cat("run.log");
}

/* ---- (e) several managers: copies; an atomic write ---- */

static ssize_t fh_copy_data(aw_file_t *in, aw_file_t *out) {
    char buf[4096];
    ssize_t n, total = 0;
    while ((n = aw_file_read(in, buf, sizeof buf)) > 0) {
        if (aw_file_write(out, buf, (size_t)n) < 0)
            return aw_status();
        total += n;
    }
    return n < 0 ? n : total;
}

typedef struct fh_pair {
    const char *from, *to;
    aw_file_t *in, *out;
} fh_pair;

/* async def copy_pair(a, b): async with open(a) as x: async with open(b) as y: yield (x, y) */
static int fh_copy_pair(aw_gencm_t *g, void *arg) {
    fh_pair *p = arg;
    int rc = 0;
    aw_with (aw_file_t *in, aw_file(fh_path(p->from), O_RDONLY, 0))
    aw_with (aw_file_t *out, aw_file_atomic(fh_path(p->to), 0644)) {
        p->in = in;
        p->out = out;
        rc = aw_gencm_yield(g, p);
    }
    return rc < 0 ? rc : aw_status();
}

static int fh_multiple(void) {
    puts("-- (e) two managers in one statement: copy notes.txt to notes.bak");
    ssize_t n = 0;
    aw_with (aw_file_t *in, aw_file(fh_path("notes.txt"), O_RDONLY, 0))
    aw_with (aw_file_t *out, aw_file(fh_path("notes.bak"), O_WRONLY | O_CREAT | O_TRUNC, 0644)) {
        if ((n = fh_copy_data(in, out)) < 0)
            aw_leave();
    } /* out closed, then in */
    if (aw_status() < 0)
        return aw_status();
    printf("copied %zd bytes\n", n);

    puts("-- nested: the destination is an atomic write inside the source's block");
    aw_with (aw_file_t *in, aw_file(fh_path("notes.txt"), O_RDONLY, 0)) {
        aw_with (aw_file_t *out, aw_file_atomic(fh_path("notes.copy"), 0644)) {
            if ((n = fh_copy_data(in, out)) < 0)
                aw_leave();
        } /* renamed into place here */
    }
    if (aw_status() < 0)
        return aw_status();
    printf("copied %zd bytes\n", n);

    puts("-- combined: one generator manager opening both");
    fh_pair pair = {.from = "notes.txt", .to = "notes.old"};
    aw_with (fh_pair *p, aw_gencm(fh_copy_pair, &pair)) {
        if ((n = fh_copy_data(p->in, p->out)) < 0)
            aw_leave();
    }
    if (aw_status() < 0)
        return aw_status();
    printf("copied %zd bytes\n", n);

    puts("-- an atomic write: all or nothing");
    aw_with (aw_file_t *f, aw_file_atomic(fh_path("settings.conf"), 0644)) {
        fh_printf(f, "mode = fast\n");
    }
    if (aw_status() < 0 || fh_cat("settings.conf") < 0)
        return aw_status();
    aw_with (aw_file_t *f, aw_file_atomic(fh_path("settings.conf"), 0644)) {
        const char *mode = "broken";
        if (fh_printf(f, "mode = %s\n", mode) < 0) /* half the new file is written ... */
            aw_leave();
        aw_fail(-EINVAL, "settings.conf: unknown mode '%s'", mode); /* ... then it is refused */
    }
    if (fh_after() < 0 || fh_cat("settings.conf") < 0) /* unchanged */
        return aw_status();
    fh_listing(); /* no temporary file left behind */
    return 0;
}

static const char *const fh_files[] = {"notes.txt", "notes.bak", "notes.copy", "notes.old",
                                       "run.log", "settings.conf"};

int example_file_handling(void *arg) {
    if (arg) {
        snprintf(fh_dir, sizeof fh_dir, "%s", (const char *)arg);
    } else {
        snprintf(fh_dir, sizeof fh_dir, "/tmp/awith-example-XXXXXX");
        if (!mkdtemp(fh_dir))
            return aw_raise(-errno, "mkdtemp %s: %s", fh_dir, aw_strerror(-errno));
    }
    int rc = 0;
    if ((rc = fh_direct()) == 0 && (rc = fh_class()) == 0 && (rc = fh_generator()) == 0 &&
        (rc = fh_errors()) == 0)
        rc = fh_multiple();
    for (size_t i = 0; i < sizeof fh_files / sizeof fh_files[0]; i++)
        unlink(fh_path(fh_files[i]));
    if (!arg && rmdir(fh_dir) < 0 && rc == 0) /* anything else left would be a leak */
        rc = aw_raise(-errno, "rmdir %s: %s", fh_dir, aw_strerror(-errno));
    return rc < 0 ? rc : aw_status();
}

#ifndef AW_EXAMPLE_NO_MAIN
int main(void) { return aw_main(example_file_handling, NULL) < 0; }
#endif
