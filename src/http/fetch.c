/* fetch.c: the HTTP layer's async generators: a response's body in chunks,
 * and fetch-many (seed 004), which keeps up to N transfers in the session's
 * multi handle at once, all signalling one event, and yields each as it
 * completes. No task per URL: curl multiplexes them; the generator runs in
 * the consumer's task. */
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
    aw_http_response_t *r;
    size_t index;
} aw__flight_t;

int aw__http_fetch_gen(aw_gen_t *g, void *arg) {
    aw_http_fetch_t *f = arg;
    aw_http_session_t *s = f->session;
    size_t conc = f->concurrency ? f->concurrency : 10;
    size_t limit = f->max_text ? f->max_text : s ? aw__http_max_text(s) : 0;
    aw__flight_t *fly = calloc(conc, sizeof *fly);
    if (!fly)
        return aw_raise(-ENOMEM, "out of memory for fetch-many");
    aw_event_t ev = AW_EVENT_INIT;
    size_t next = 0, inflight = 0;
    char msg[CURL_ERROR_SIZE + 512];
    int rc = 0;
    for (;;) {
        /* keep `conc` transfers in flight */
        while (inflight < conc && next < f->count) {
            aw_http_response_t *r;
            aw_http_request_t req = {.url = f->urls[next]};
            if (aw__http_start(s, &req, &r) < 0) { /* this URL fails alone */
                const aw_err_t *e = aw_err_current();
                snprintf(msg, sizeof msg, "%s", e ? e->msg : "cannot start the request");
                aw_http_result_t res = {.index = next, .url = f->urls[next],
                                        .error = aw_status(), .message = msg, .body = ""};
                aw_err_clear();
                next++;
                if (aw_gen_yield(g, &res) < 0)
                    goto leave;
                continue;
            }
            r->notify = &ev;
            r->limit = limit;
            size_t k = 0;
            while (fly[k].r)
                k++;
            fly[k] = (aw__flight_t){r, next++};
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
        aw_http_result_t res = {.index = fly[k].index, .url = f->urls[fly[k].index],
                                .status = r->status, .message = "", .body = ""};
        res.error = aw__http_describe(r, msg, sizeof msg);
        if (!res.error && r->raise_status && r->status >= 400) {
            snprintf(msg, sizeof msg, "%s %s: HTTP status %ld", r->method, r->url, r->status);
            res.error = -EREMOTEIO;
        }
        if (res.error) {
            res.message = msg;
        } else if (r->body.p) { /* the buffer is NUL-terminated */
            res.body = r->body.p + r->body.off;
            res.len = r->body.len - r->body.off;
        }
        int y = aw_gen_yield(g, &res);
        aw_http_response_close(r);
        if (y < 0)
            goto leave;
    }
leave:
    /* the consumer left early (or was cancelled): abort what is in flight;
     * their connections are closed, never pooled half-read */
    for (size_t k = 0; k < conc; k++)
        aw_http_response_close(fly[k].r);
    free(fly);
    return rc;
}
