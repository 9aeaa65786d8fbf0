/* http.h (private): the session and response records shared by session.c
 * (session, driver, requests) and fetch.c (generators). */
#ifndef AW_HTTP_PRIV_H
#define AW_HTTP_PRIV_H

#include <awith/err.h>
#include <awith/task.h>
#include <awith/with.h>
#include <awith/event.h>
#include <awith/fd.h>
#include <awith/http.h>
#include <curl/curl.h>
#include <stdio.h>

typedef struct aw__buf {
    char *p;
    size_t off, len, cap;          /* unread bytes: p[off..len) */
} aw__buf_t;

struct aw_http_response {
    aw_http_session_t *s;          /* NULL once the session closed under us */
    aw_http_response_t *prev, *next; /* the session's live responses */
    CURL *easy;
    char *url;                     /* what was asked (full URL) */
    const char *method;
    struct curl_slist *req_headers;
    FILE *upload;
    aw_gen_t *gen;                 /* body generator, until it finished or was closed */
    aw__buf_t up;                  /* generated body not yet taken by curl */
    aw_event_t ev;                 /* set on progress: headers, data, end */
    aw_event_t *notify;            /* also set (fetch-many's shared event) */
    /* the response */
    long status;
    aw__buf_t hdr;                 /* "name\0value\0" pairs of the final response */
    size_t nhdr;
    aw__buf_t body;
    size_t limit;                  /* accumulate: fail past this; 0: streaming */
    size_t last_chunk;             /* bytes handed out by the last read */
    long connects;
    aw_ns_t read_timeout, last_rx;
    CURLcode result;
    int raise_status;
    uint8_t in_multi, headers_done, done, paused, too_big;
    uint8_t need_data, up_paused, up_eof;
    char errbuf[CURL_ERROR_SIZE];
};

/* http.c */
int aw__http_start(aw_http_session_t *s, const aw_http_request_t *req, aw_http_response_t **out);
/* Wait for progress on r (a cancellation point; honours read_timeout). */
int aw__http_wait(aw_http_response_t *r, aw_event_t *ev);
/* The error a finished transfer ended with: fills msg, returns the code
 * (0 if the transfer succeeded). Raises nothing. */
int aw__http_describe(const aw_http_response_t *r, char *msg, size_t size);
size_t aw__http_max_text(const aw_http_session_t *s);

#endif
