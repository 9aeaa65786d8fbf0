/* log.c: every report of the library goes through aw__log (awith/log.h):
 * the loop's hook if it has one, else the process-wide one, else stderr.
 * A report is formatted into one malloc'd string so that a hook gets it
 * whole; when that allocation fails it is written to stderr directly,
 * rather than lost. Reports are rare (shutdown, misuse): no cost on any
 * path that runs often. */
#include "core.h"

#include <awith/log.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* Process-wide hook: set before loops start (awith/log.h). The mutex
 * keeps fn and arg a pair when it changes while loops report. */
static struct {
    aw_log_fn fn;
    void *arg;
} aw__log_global;
static pthread_mutex_t aw__log_mu = PTHREAD_MUTEX_INITIALIZER;

static void aw__log_hold(void) { pthread_mutex_lock(&aw__log_mu); }
static void aw__log_drop(void) { pthread_mutex_unlock(&aw__log_mu); }

void aw_log_set(aw_log_fn fn, void *arg) {
    aw__log_hold();
    aw__log_global.fn = fn;
    aw__log_global.arg = arg;
    aw__log_drop();
}

void aw__log_msg(aw_loop_t *l, const char *msg) {
    aw_log_fn fn = NULL;
    void *arg = NULL;
    if (l && l->opts.log) {
        fn = l->opts.log;
        arg = l->opts.log_arg;
    } else {
        aw__log_hold();
        fn = aw__log_global.fn;
        arg = aw__log_global.arg;
        aw__log_drop();
    }
    if (fn) {
        fn(msg, arg);
    } else {
        fputs(msg, stderr);
        fflush(stderr);
    }
}

void aw__log(aw_loop_t *l, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = aw__vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0) { /* no memory for the text: stderr, never nothing */
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        return;
    }
    aw__log_msg(l, s);
    aw__free(s);
}

FILE *aw__log_begin(aw__logbuf_t *b) {
    b->text = NULL;
    b->len = 0;
    b->f = open_memstream(&b->text, &b->len);
    return b->f ? b->f : stderr; /* no memory: straight to stderr */
}

void aw__log_end(aw_loop_t *l, aw__logbuf_t *b) {
    if (!b->f)
        return;
    fclose(b->f);
    if (b->text && b->len)
        aw__log_msg(l, b->text);
    free(b->text);
}
