/* fetch.c: the HTTP layer's async generators: a response's body in chunks,
 * and fetch-many (seed 004), which keeps up to N transfers in the session's
 * multi handle at once, all signalling one event, and yields each as it
 * completes, or (in_order) in the order of the list with the same bound.
 * No task per URL: curl multiplexes them; the generator runs in the
 * consumer's task. */
#include "http.h"

#include <stdlib.h>
#include <string.h>

int aw__http_chunks_gen(aw_gen_t *g, void *arg) {
    aw_http_response_t *r = arg;
    for (;;) {
        const void *data;
        long n = aw_http_response_read(r, &data);
        if (n <= 0)
            return (int)n; /* end of the body, or its error (pending) */
        aw_http_chunk_t c = {data, (size_t)n};
        if (aw_gen_yield(g, &c) < 0)
            return 0; /* the consumer left; closing the response is its job */
    }
}

typedef struct aw__flight {
    aw_http_response_t *r; /* the transfer, or NULL */
    size_t index;
    int error;             /* in order: the URL could not even start */
    char *emsg;            /* its message (malloc'd; NULL: see `error`) */
} aw__flight_t;

/* Fill `res` for a finished transfer (the body stays in r until it is closed). */
static void aw__fetch_result(const aw_http_fetch_t *f, aw_http_response_t *r, size_t index,
                             aw_http_result_t *res, char *msg, size_t size) {
    *res = (aw_http_result_t){.index = index, .url = f->urls[index], .status = r->status,
                              .message = "", .body = ""};
    /* decoded as it came (accumulating): a gzip stream cut short is an
     * error, as text() says, never a short body */
    aw__http_coding_end(r);
    res->error = aw__http_describe(r, msg, size);
    if (!res->error && r->raise_status && r->status >= 400) {
        snprintf(msg, size, "%s %s: HTTP status %ld", r->method, r->url, r->status);
        res->error = -EREMOTEIO;
    }
    if (res->error) {
        res->message = msg;
    } else if (r->body.p) { /* the buffer is NUL-terminated */
        res->body = r->body.p + r->body.off;
        res->len = r->body.len - r->body.off;
    }
}

/* Start URL `i`; 0, or its error (the record cleared, its message in msg). */
static int aw__fetch_start(const aw_http_fetch_t *f, size_t i, aw_event_t *ev, size_t limit,
                           aw_http_response_t **out, char *msg, size_t size) {
    aw_http_request_t req = {.url = f->urls[i]};
    if (aw__http_start(f->session, &req, limit, ev, out) < 0) { /* this URL fails alone */
        const aw_err_t *e = aw_err_current();
        snprintf(msg, size, "%s", e ? e->msg : "cannot start the request");
        int code = aw_status();
        aw_err_clear();
        *out = NULL;
        return code ? code : -EIO;
    }
    return 0;
}

/* In the order of the list: URL i lives in slot i % conc from its start
 * until it is yielded, so the URLs started but not yet yielded (in flight,
 * or finished early and waiting for their turn) are at most `conc`: a
 * finished transfer keeps its slot, and no new URL starts until the first
 * one not yet yielded has been. */
static int aw__fetch_in_order(aw_gen_t *g, aw_http_fetch_t *f, aw__flight_t *fly, size_t conc,
                              size_t limit, aw_event_t *ev, char *msg, size_t size) {
    size_t base = 0, next = 0; /* yielded: [0, base); started: [base, next) */
    while (base < f->count) {
        while (next - base < conc && next < f->count) {
            aw__flight_t *fl = &fly[next % conc];
            *fl = (aw__flight_t){.index = next};
            fl->error = aw__fetch_start(f, next, ev, limit, &fl->r, msg, size);
            if (fl->error)
                fl->emsg = aw__strdup(msg); /* NULL: reported without its message */
            next++;
        }
        aw__flight_t *fl = &fly[base % conc];
        if (fl->r && !fl->r->done) {
            aw_event_clear(ev);
            int rc = aw_event_wait(ev);
            if (rc < 0)
                return rc; /* cancelled: the pending error ends the consumer's loop */
            continue;
        }
        aw_http_result_t res;
        if (fl->r) {
            aw__fetch_result(f, fl->r, base, &res, msg, size);
        } else {
            res = (aw_http_result_t){.index = base, .url = f->urls[base], .error = fl->error,
                                     .message = fl->emsg ? fl->emsg : "cannot start the request",
                                     .body = ""};
        }
        int y = aw_gen_yield(g, &res);
        aw_http_response_close(fl->r);
        aw__free(fl->emsg);
        *fl = (aw__flight_t){0};
        base++;
        if (y < 0)
            return 0; /* the consumer left */
    }
    return 0;
}

int aw__http_fetch_gen(aw_gen_t *g, void *arg) {
    aw_http_fetch_t *f = arg;
    aw_http_session_t *s = f->session;
    size_t conc = f->concurrency ? f->concurrency : 10;
    size_t limit = f->max_text ? f->max_text : s ? aw__http_max_text(s) : 0;
    aw__flight_t *fly = aw__calloc(conc, sizeof *fly);
    if (!fly)
        return aw_raise(-ENOMEM, "out of memory for fetch-many");
    aw_event_t ev = AW_EVENT_INIT;
    size_t next = 0, inflight = 0;
    char msg[CURL_ERROR_SIZE + 512];
    int rc = 0;
    if (f->in_order) {
        rc = aw__fetch_in_order(g, f, fly, conc, limit, &ev, msg, sizeof msg);
        goto leave;
    }
    for (;;) {
        /* keep `conc` transfers in flight */
        while (inflight < conc && next < f->count) {
            aw_http_response_t *r;
            int err = aw__fetch_start(f, next, &ev, limit, &r, msg, sizeof msg);
            if (err) {
                aw_http_result_t res = {.index = next, .url = f->urls[next],
                                        .error = err, .message = msg, .body = ""};
                next++;
                if (aw_gen_yield(g, &res) < 0)
                    goto leave;
                continue;
            }
            size_t k = 0;
            while (fly[k].r)
                k++;
            fly[k] = (aw__flight_t){.r = r, .index = next++};
            inflight++;
        }
        if (!inflight)
            break;
        size_t k = 0;
        while (k < conc && !(fly[k].r && fly[k].r->done))
            k++;
        if (k == conc) {
            aw_event_clear(&ev);
            if ((rc = aw_event_wait(&ev)) < 0)
                goto leave; /* cancelled: the pending error ends the consumer's loop */
            continue;
        }
        aw_http_response_t *r = fly[k].r;
        fly[k].r = NULL;
        inflight--;
        aw_http_result_t res;
        aw__fetch_result(f, r, fly[k].index, &res, msg, sizeof msg);
        int y = aw_gen_yield(g, &res);
        aw_http_response_close(r);
        if (y < 0)
            goto leave;
    }
leave:
    /* the consumer left early (or was cancelled): abort what is in flight
     * and drop what finished but was not yielded; unfinished transfers'
     * connections are closed, never pooled half-read */
    for (size_t k = 0; k < conc; k++) {
        aw_http_response_close(fly[k].r);
        aw__free(fly[k].emsg);
    }
    aw__free(fly);
    return rc;
}
