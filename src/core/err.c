/* err.c: error codes (one table for names and texts) and error records.
 * A record is malloc'd at raise time (errors are the slow path); the
 * pending chain of a task is a singly linked list through `context`,
 * newest first, each record owned by the one before it. */
#include "core.h"

#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* The errno number of a code: -code for a negative code, else 0 (and 0
 * for INT_MIN, whose negation overflows). */
static int aw__err_num(int code) { return code < 0 && code != INT_MIN ? -code : 0; }

const char *aw_err_name(int code) {
    int num = aw__err_num(code);
    switch (num) {
#define AW__ERR_NAME(name, num, text) case num: return "AW_E" #name;
    AW_ERR_MAP(AW__ERR_NAME)
#undef AW__ERR_NAME
    default: break;
    }
    const char *n = num ? strerrorname_np(num) : NULL;
    return n ? n : (code == 0 ? "OK" : "E?");
}

const char *aw_strerror(int code) {
    int num = aw__err_num(code);
    switch (num) {
#define AW__ERR_TEXT(name, num, text) case num: return text;
    AW_ERR_MAP(AW__ERR_TEXT)
#undef AW__ERR_TEXT
    default: break;
    }
    const char *d = num ? strerrordesc_np(num) : NULL;
    return d ? d : (code == 0 ? "Success" : "Unknown error");
}

/* When malloc fails, a record comes from a small per-thread reserve
 * instead (its message cut to fit): a failure must leave a record even
 * out of memory, or `if (aw_status() < 0)` takes it for a success and a
 * caller reading aw_err_current()->msg crashes. Records live and die on
 * their loop's thread, so a thread's reserve needs no lock; aw__err_free
 * gives a reserved record back. Only when all of them are pending does a
 * failure travel as its code alone. */
enum { AW__ERR_RESERVE = 16, AW__ERR_RESERVE_MSG = 128 };
static __thread struct aw__err_spare {
    aw_err_t e;
    char msg[AW__ERR_RESERVE_MSG];
    bool used;
} aw__err_reserve[AW__ERR_RESERVE];

static void aw__err_release(aw_err_t *e) {
    struct aw__err_spare *r = (struct aw__err_spare *)e;
    if (r >= aw__err_reserve && r < aw__err_reserve + AW__ERR_RESERVE)
        r->used = false;
    else
        aw__free(e);
}

/* A record with room for a message of *len bytes (NUL included): from
 * the heap, or from the reserve with *len reduced to what fits. With the
 * reserve used up, the oldest records of t's own chain make room: the
 * newest failure matters most (it is what aw_status() reports). Only
 * records newer than t's floor: an enter or exit never gives up the
 * error it was handed, which it may be reading and the block still
 * propagates, nor anything older (SEMANTICS M2). */
static aw_err_t *aw__err_alloc(aw_task_t *t, size_t *len) {
    aw_err_t *e = aw__malloc(sizeof *e + *len);
    if (e)
        return e;
    for (;;) {
        for (int i = 0; i < AW__ERR_RESERVE; i++)
            if (!aw__err_reserve[i].used) {
                aw__err_reserve[i].used = true;
                if (*len > AW__ERR_RESERVE_MSG)
                    *len = AW__ERR_RESERVE_MSG;
                return &aw__err_reserve[i].e;
            }
        aw_err_t **last = NULL;
        for (aw_err_t **p = t ? &t->err : NULL; p && *p && (*p)->seq > t->err_floor;
             p = &(*p)->context)
            last = p;
        if (!last)
            return NULL;
        aw_err_t *x = *last;
        *last = x->context; /* (what lies below the floor stays) */
        x->context = NULL;
        aw__err_free(x);
    }
}

static aw_err_t *aw__err_new(aw_task_t *t, const char *file, int line, const char *func,
                             int code, const char *fmt, va_list ap) {
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    if (n < 0)
        n = 0;
    size_t len = (size_t)n + 1;
    aw_err_t *e = aw__err_alloc(t, &len);
    if (e) {
        memset(e, 0, sizeof *e);
        vsnprintf(e->msg, len, fmt, ap2);
        e->code = code;
        e->file = file;
        e->line = line;
        e->func = func;
        e->task = t->name;
        e->seq = ++t->errseq;
    }
    va_end(ap2);
    return e;
}

/* Outside a task (a thread with no loop, the loop's own stack) there is
 * no chain to record into: the thread keeps its last record, one, no
 * context, its message cut to fit; no malloc, so nothing to free when the
 * thread ends. */
enum { AW__TLS_MSG = 512 };
static __thread union {
    aw_err_t e;
    char bytes[sizeof(aw_err_t) + AW__TLS_MSG];
} aw__tls_err;
static __thread bool aw__tls_has, aw__tls_told;

static int aw__raise_tls(const char *file, int line, const char *func, int code,
                         const char *fmt, va_list ap) {
    aw_err_t *e = &aw__tls_err.e;
    memset(e, 0, sizeof *e);
    vsnprintf(e->msg, AW__TLS_MSG, fmt, ap);
    e->code = code;
    e->file = file;
    e->line = line;
    e->func = func;
    e->task = "(no task)";
    aw__tls_has = true;
    return code;
}

int aw__no_task(const char *func) {
    int rc = aw__raise(__FILE__, __LINE__, func, -EPERM,
                       "%s called outside a task: it suspends, and only a task can (call it "
                       "from a task: the function given to aw_main or to aw_spawn)", func);
    if (!aw__tls_told) { /* the caller may not look: say it once per thread */
        aw__tls_told = true;
        aw__log(aw__loop_tls, "awith: %s\n", aw__tls_err.e.msg);
    }
    return rc;
}

static int aw__raise_v(aw_task_t *t, const char *file, int line, const char *func, int code,
                       const char *fmt, va_list ap) {
    if (code >= 0)
        code = -EINVAL; /* a raise of "success" is a bug: make it visible */
    if (!t)
        return aw__raise_tls(file, line, func, code, fmt, ap);
    if (code == -ECANCELED)
        t->cancel_seen = 1; /* whatever it does next, it was told */
    if (code == -ECANCELED && t->err && t->err->code == -ECANCELED)
        return code;
    aw_err_t *e = aw__err_new(t, file, line, func, code, fmt, ap);
    if (!e)
        return code; /* out of memory: the code still travels */
    e->context = t->err;
    t->err = e;
    return code;
}

int aw__raise_at(aw_task_t *t, const char *file, int line, const char *func, int code,
                 const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = aw__raise_v(t, file, line, func, code, fmt, ap);
    va_end(ap);
    return rc;
}

int aw__raise(const char *file, int line, const char *func, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = aw__raise_v(aw__task_cur(), file, line, func, code, fmt, ap);
    va_end(ap);
    return rc;
}

void aw_err_set_origin(int origin, int origin_code, const char *sqlstate) {
    aw_task_t *t = aw__task_cur();
    aw_err_t *e = t ? t->err : aw__tls_has ? &aw__tls_err.e : NULL;
    if (!e)
        return;
    e->origin = origin;
    e->origin_code = origin_code;
    snprintf(e->sqlstate, sizeof e->sqlstate, "%s", sqlstate ? sqlstate : "");
}

void aw__err_free(aw_err_t *e) {
    while (e) {
        aw_err_t *next = e->context;
        aw_err_t *m = e->members;
        while (m) {
            aw_err_t *mn = m->next;
            aw__err_free(m);
            m = mn;
        }
        aw__err_release(e);
        e = next;
    }
}

static aw_err_t *aw__err_copy_in(const aw_err_t *e, const char *prefix, bool heap);

/* A copy of the one record e with its members (each with its chain), no
 * context; prefix before its message. NULL when out of memory. */
static aw_err_t *aw__err_copy_one(const aw_err_t *e, const char *prefix, bool heap) {
    size_t pl = strlen(prefix), ml = strlen(e->msg);
    size_t len = pl + ml + 1;
    aw_err_t *c = heap ? aw__malloc(sizeof *c + len) : aw__err_alloc(NULL, &len);
    if (!c)
        return NULL;
    memcpy(c, e, sizeof *c);
    snprintf(c->msg, len, "%s%s", prefix, e->msg);
    c->context = NULL;
    c->members = NULL;
    aw_err_t **tail = &c->members;
    for (const aw_err_t *m = e->members; m; m = m->next) {
        *tail = aw__err_copy_in(m, "", heap);
        if (!*tail)
            break;
        tail = &(*tail)->next;
    }
    c->next = NULL;
    return c;
}

/* A deep copy of e (its context and members), prefix before the top
 * record's message. heap: every record from the heap, none from this
 * thread's reserve, so that another thread may free the copy; an older
 * record that cannot be copied ends the copy's chain there. The context
 * chain is walked in a loop, not by recursion: an exit stack of a few
 * thousand failing exits makes a chain that long, and a frame per record
 * overflowed the joiner's 128 KiB stack (only group nesting recurses). */
static aw_err_t *aw__err_copy_in(const aw_err_t *e, const char *prefix, bool heap) {
    aw_err_t *head = NULL, **tail = &head;
    for (; e; e = e->context, prefix = "") {
        aw_err_t *c = aw__err_copy_one(e, prefix, heap);
        if (!c)
            break;
        *tail = c;
        tail = &c->context;
    }
    return head;
}

aw_err_t *aw__err_copy(const aw_err_t *e) { return aw__err_copy_in(e, "", false); }

aw_err_t *aw__err_export(const aw_err_t *e, const char *prefix) {
    return aw__err_copy_in(e, prefix, true);
}

/* The top record alone: its chain is not copied only to be freed. */
aw_err_t *aw__err_copy_top(const aw_err_t *e) { return e ? aw__err_copy_one(e, "", false) : NULL; }

aw_err_t *aw__err_unlink(aw_task_t *t, const aw_err_t *e) {
    for (aw_err_t **p = &t->err; *p; p = &(*p)->context)
        if (*p == e) {
            aw_err_t *x = *p;
            *p = x->context;
            x->context = NULL;
            return x;
        }
    return NULL;
}

void aw__err_drop_newer(aw_task_t *t, uint64_t seq) {
    while (t->err && t->err->seq > seq) {
        aw_err_t *e = t->err;
        t->err = e->context;
        e->context = NULL;
        aw__err_free(e);
    }
}

void aw__err_append(aw_err_t *e, aw_err_t *tail) {
    while (e->context)
        e = e->context;
    e->context = tail;
}

/* A record that is the cancel itself, or a timeout it outranked. */
static bool aw__err_cancel_part(const aw_err_t *e) {
    return e->code == -ECANCELED || aw__err_outranked(e);
}

/* A cancel among the records of e's chain newer than mark: a failure
 * above it was raised while that cancel unwound the block. */
static bool aw__err_cancel_since(const aw_err_t *e, uint64_t mark) {
    for (; e && e->seq > mark; e = e->context)
        if (aw__err_cancel_part(e))
            return true;
    return false;
}

void aw__err_absorb_cancels(aw_task_t *t, uint64_t mark, bool keep_one) {
    aw_err_t *last = NULL; /* the oldest -ECANCELED taken off */
    while (t->err && t->err->seq > mark && aw__err_cancel_part(t->err)) {
        aw_err_t *e = t->err;
        t->err = e->context;
        e->context = NULL;
        if (e->code == -ECANCELED) {
            aw__err_free(last);
            last = e;
        } else {
            aw__err_free(e);
        }
    }
    bool newer = t->err && t->err->seq > mark;
    if (last && keep_one &&
        (!newer || (aw__err_cut(last) && !aw__err_cancel_since(t->err, mark)))) {
        /* nothing newer, or only failures pending from before a point cut
         * the block (none raised while the cancel unwound it): it stays,
         * on top, in raise order */
        last->context = t->err;
        t->err = last;
    } else {
        aw__err_free(last);
    }
}

aw_err_t *aw__err_strip_cancels(aw_err_t *e) {
    while (e && aw__err_cancel_part(e) && !e->members) {
        aw_err_t *next = e->context;
        e->context = NULL;
        aw__err_free(e);
        e = next;
    }
    return e;
}

void aw__err_sink(aw_task_t *t, uint64_t mark) {
    aw_err_t *e = t->err;
    if (!e || !e->context || e->context->seq <= mark)
        return; /* nothing else was raised since mark: it stays on top */
    t->err = e->context;
    /* below the oldest failure of that part (a cancel on top of a failure,
     * an outer cancel re-raised over a group's error, is not what the
     * deadline caused), else just above its oldest cancel. A failure
     * below that cancel was pending before the deadline cut the block:
     * then the oldest failure above the cancel is the one (decision 5,
     * raise order: "EPIPE <- ETIMEDOUT <- ECANCELED <- EIO"). */
    aw_err_t **cancel = NULL, **failure = NULL, **above = NULL, **p = &t->err;
    for (; *p && (*p)->seq > mark; p = &(*p)->context) {
        if ((*p)->code == -ECANCELED) {
            cancel = p; /* the last one found is the oldest */
            above = failure;
        } else {
            failure = p;
        }
    }
    if (above)
        failure = above;
    aw_err_t **at = failure ? &(*failure)->context : cancel ? cancel : p;
    if (at == &t->err)
        at = &t->err->context; /* never above the top: that one wins */
    /* seqs stay non-increasing down the chain, and newer than mark */
    e->seq = *at && (*at)->seq > mark ? (*at)->seq : mark + 1;
    e->context = *at;
    *at = e;
}

aw_err_t *aw__err_detach(aw_task_t *t) {
    aw_err_t *e = t->err;
    t->err = NULL;
    return e;
}

const aw_err_t *aw_err_current(void) {
    aw_task_t *t = aw__task_cur();
    if (!t)
        return aw__tls_has ? &aw__tls_err.e : NULL;
    return t->err;
}

int aw_status(void) {
    const aw_err_t *e = aw_err_current();
    return e ? e->code : 0;
}

/* SEMANTICS M2: inside an enter or an exit (and in blocks nested in one)
 * the floor is the seq pending when it began, so a clear there handles
 * what it raised itself, never the error it was handed nor a cancel. */
uint64_t aw_err_mark(void) {
    aw_task_t *t = aw__task_cur();
    return t && t->err ? t->err->seq : 0;
}

void aw_err_restore(uint64_t mark) {
    aw_task_t *t = aw__task_cur();
    if (t)
        aw__err_restore(t, mark > t->err_floor ? mark : t->err_floor);
}

void aw_err_clear(void) {
    aw_task_t *t = aw__task_cur();
    if (t)
        aw__err_restore(t, t->err_floor);
    else
        aw__tls_has = false;
}

static void aw__err_print_one(const aw_err_t *e, FILE *f, int depth, const char *label) {
    fprintf(f, "%*s%s%s: %s [task '%s', %s:%d in %s()]\n", depth * 2, "", label,
            aw_err_name(e->code), e->msg, e->task ? e->task : "?", e->file ? e->file : "?",
            e->line, e->func ? e->func : "?");
    int i = 1;
    for (const aw_err_t *m = e->members; m; m = m->next, i++) {
        char lab[32];
        snprintf(lab, sizeof lab, "member %d: ", i);
        aw__err_print_one(m, f, depth + 2, lab);
        for (const aw_err_t *c = m->context; c; c = c->context)
            aw__err_print_one(c, f, depth + 3, "while handling: ");
    }
}

void aw_err_print(const aw_err_t *err, FILE *f) {
    if (!err) {
        fprintf(f, "no error\n");
        return;
    }
    aw__err_print_one(err, f, 0, "error: ");
    for (const aw_err_t *c = err->context; c; c = c->context)
        aw__err_print_one(c, f, 1, "while handling: ");
}

int aw_err_count(const aw_err_t *err) {
    int n = 0;
    for (; err; err = err->context) {
        n++;
        for (const aw_err_t *m = err->members; m; m = m->next)
            n += aw_err_count(m);
    }
    return n;
}

const aw_err_t *aw_err_find(const aw_err_t *err, int code) {
    for (; err; err = err->context)
        if (err->code == code)
            return err;
    return NULL;
}
