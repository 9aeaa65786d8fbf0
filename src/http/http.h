/* http.h (private): the session and response records, and the functions
 * shared by session.c (multi handle, driver), request.c, response.c and
 * fetch.c (generators). */
#ifndef AW_HTTP_PRIV_H
#define AW_HTTP_PRIV_H

#include "../coro/alloc.h" /* aw__malloc ...: the allocator table */
#include "../core/core.h"  /* the loop's count of tasks, its close (session.c) */
#include <awith/err.h>
#include <awith/task.h>
#include <awith/with.h>
#include <awith/track.h>
#include <awith/event.h>
#include <awith/fd.h>
#include <awith/http.h>
#include <curl/curl.h>
#include <stdio.h>

#define AW__HTTP_STREAM_AHEAD (64 * 1024) /* buffered ahead of a streaming reader */
/* Curl's receive buffer (CURLOPT_BUFFERSIZE): a recv per 32 KiB, not per
 * 16 KiB, halves the system calls of a large body (1 MiB: 133 -> 69 per
 * GET, 64 KiB: 12 -> 8). Curl 7.88 mallocs it at each transfer's start
 * and frees it at its end, and still hands it to the write callback 16
 * KiB at a time. Not 64 KiB: 10 transfers' 64 KiB blocks freed at once
 * let glibc trim the heap, and the next ones fault in fresh pages (1 to 3
 * faults per GET, at ~13 us each here). */
#define AW__HTTP_RECV_BUF (32 * 1024)
#define AW__HTTP_FAST_READS 32            /* a reader served from buffers yields this often */
/* How long a session's driver goes on serving after the loop's shutdown
 * cancelled it, for the exits still to run (session.c): the default
 * exit grace, at most. */
#define AW__HTTP_LINGER AW_SEC(10)
/* Meanwhile it looks this often whether tasks other than session drivers
 * are still alive (no task's end wakes it): the delay it adds to a
 * shutdown, at most. */
#define AW__HTTP_LINGER_POLL AW_MS(1)
/* How long the driver pauses when its wait for the epoll fd failed
 * (no memory) before it tries again. */
#define AW__HTTP_RETRY AW_MS(1)
#define AW__HTTP_SPARE 64                 /* response records (and their easy handles) kept */
#define AW__HTTP_KEEP_SMALL ((size_t)16 << 10) /* a reused record keeps a header or body
                                                  buffer up to this size */
/* Body buffers a session keeps for its next responses: at most this
 * many, each at least KEEP_MIN and at most KEEP_ONE bytes, KEEP_ALL in
 * all (header blocks are small: malloc's caches serve them). A body buffer sized from Content-Length and reused costs no
 * realloc chain, no memmove and (below glibc's mmap threshold, or reused)
 * no fresh pages per response (issue 14: 64 KiB GETs spent half their CPU
 * there). */
#define AW__HTTP_SPARE_BUFS 16
#define AW__HTTP_KEEP_MIN ((size_t)16 << 10)
#define AW__HTTP_KEEP_ONE ((size_t)2 << 20)
#define AW__HTTP_KEEP_ALL ((size_t)16 << 20)
/* Request URLs a session keeps resolved (the caller's string, libcurl's
 * handle and its full URL): a URL asked for again costs a compare, not
 * curl_url_set's resolving against the base (~12,500 instructions: it
 * formats the base, joins, and parses the result) and curl_url_get
 * (~6,200). Most sessions ask a few URLs over and over. */
#define AW__HTTP_URLS 8
/* The codings we decode (response.c), asked for as a request header of
 * ours, not with CURLOPT_ACCEPT_ENCODING: curl formats that header anew
 * for every request (an aprintf, ~3,700 instructions); a header of the
 * caller's with this name replaces it, as it replaced curl's. */
#define AW__HTTP_AE "Accept-Encoding: gzip, deflate"

/* A resolved request URL, shared by the session's list and the responses
 * that asked for it (read only, curl included: CURLOPT_CURLU is copied
 * by curl before use); freed by its last holder. */
typedef struct aw__http_url {
    char *req;                     /* the caller's string (NULL: not listed) */
    char *url;                     /* the full URL, as libcurl writes it */
    char *shown;                   /* the same with its password as "***", for
                                      messages (NULL: it has none) */
    CURLU *h;                      /* the same, parsed */
    size_t refs;
    uint8_t https;                 /* its scheme is https */
} aw__http_url_t;

/* A socket as the session's epoll set sees it. Curl's REMOVE is applied
 * lazily: the socket stays registered (a kept-alive connection is usually
 * wanted again by the next request, with the same events: no epoll_ctl at
 * all); if it reports an event while unwanted, it is deleted then. Curl
 * closes sockets through aw__http_close_cb, which forgets the entry (the
 * kernel drops a closed fd from the set). */
typedef struct aw__sock {
    uint8_t reg;                   /* in the epoll set */
    uint8_t want;                  /* curl wants events for it */
    uint32_t events;               /* what the set holds */
} aw__sock_t;

struct aw_http_session {
    CURLM *multi;
    CURLSH *share;                 /* cookies, when enabled */
    struct curl_slist *ae;         /* "Accept-Encoding: gzip, deflate": a plain GET's
                                      request headers (see request.c) */
    CURL *cookie_scratch;          /* curl parses Set-Cookie lines in it (cookie.c) */
    int epfd;
    aw__sock_t *socks;             /* by fd: what the epoll set holds, what curl wants */
    size_t nsocks;
    aw_task_t *driver;
    aw_scope_t *drv_scope;         /* the driver's wait, while it waits */
    aw_scope_t *drv_life;          /* the shield it serves in after the loop's
                                      shutdown, while it does */
    aw_ns_t timer_at;              /* curl's timer (absolute), AW_NEVER */
    aw_ns_t poll_at;               /* while it serves after the shutdown: its next
                                      look at the loop's tasks; else AW_NEVER */
    aw_ns_t drv_until;             /* the deadline the driver waits with */
    uint8_t in_api;                /* a task is inside a curl call (add, pause) */
    aw_http_session_opts_t opts;   /* string fields below are copies */
    char *base_url, *ca_file, *protocols;
    CURLU *base_h;                 /* base_url parsed, once (request URLs are resolved
                                      against a copy of it), NULL until the first */
    aw__http_url_t *urls[AW__HTTP_URLS]; /* see AW__HTTP_URLS */
    size_t nurls, url_next;        /* entries in use; the one replaced next */
    char **headers;
    size_t nheaders;
    /* closed responses kept for the next requests, with their easy handle
     * configured and their small buffers (aw__http_release): a request then
     * allocates nothing and sets only the options that differ */
    aw_http_response_t *spare[AW__HTTP_SPARE];
    size_t nspare;
    struct { char *p; size_t cap; } bufs[AW__HTTP_SPARE_BUFS]; /* see AW__HTTP_SPARE_BUFS */
    size_t nbufs, bufs_bytes;
    aw_http_response_t *live;      /* responses not yet closed */
    size_t active;
    uint64_t requests, connects;
    const char *file;
    int line;
    uint8_t closing;
    uint8_t managed;               /* opened by the manager: its exit closes it */
    uint8_t stopped;               /* closed: transfers aborted, driver joined */
    uint8_t orphaned;              /* close could not await the driver: it frees s */
    uint8_t lingering;             /* the driver serves after the loop's shutdown */
    aw_track_t track;              /* reported at loop close if never closed */
    aw__atclose_t atclose;         /* left by its driver for the loop's close to free */
    int cb_err;                    /* why our socket callback refused curl (-errno) */
};

typedef struct aw__buf {
    char *p;
    size_t off, len, cap;          /* unread bytes: p[off..len) */
} aw__buf_t;

struct aw_http_response {
    aw_http_session_t *s;          /* NULL once the session closed under us */
    aw_http_response_t *prev, *next; /* the session's live responses */
    CURL *easy;
    const char *url;               /* what was asked (full URL), for messages: u->shown
                                      or u->url */
    aw__http_url_t *u;             /* the same, parsed: curl's CURLOPT_CURLU (it
                                      parses no string of ours) */
    const char *method;
    struct curl_slist *req_headers;
    FILE *upload;
    aw_gen_t *gen;                 /* body generator, until it finished or was closed */
    aw__buf_t up;                  /* generated body not yet taken by curl */
    int64_t up_len, up_total;      /* the caller's Content-Length (-1: none, chunked); yielded */
    aw_event_t ev;                 /* set on progress: headers, data, end */
    aw_event_t *notify;            /* also set (fetch-many's shared event) */
    /* the response */
    long status;
    aw__buf_t hdr;                 /* "name\0value\0" pairs of the final response */
    size_t nhdr;
    /* what the framing and decoding need of hdr, noted as each line is
     * stored (response.c), so the end of the headers scans nothing:
     * offsets in hdr of the first Content-Length and Content-Encoding
     * values (0: none), the last Content-Length parsed (-1: unreadable) */
    size_t cl_at, ce_at;
    int64_t cl_last;
    uint8_t cl_conflict;           /* a Content-Length differs from the first */
    uint8_t chunked;               /* Transfer-Encoding names chunked */
    aw__buf_t body;                /* the body (decoded), read by read/text */
    int64_t clen;                  /* the final response's Content-Length; -1: unknown */
    uint64_t body_seen;            /* bytes the write callback put into body (no coding) */
    aw__buf_t raw;                 /* encoded body not yet decoded (see response.c) */
    struct z_stream_s *z;          /* gzip/deflate decoder, or NULL */
    uint64_t raw_seen;             /* encoded bytes received */
    uint8_t coding;                /* 0: none, 1: gzip or zlib, 2: deflate (raw tried) */
    uint8_t z_end, bad_coding;     /* the stream's end seen; it was broken (1) or no memory (2) */
    uint8_t fast;                  /* reads served without waiting, since the last yield */
    size_t limit;                  /* accumulate: fail past this; 0: streaming */
    size_t last_chunk;             /* bytes handed out by the last read */
    long connects;
    aw_ns_t read_timeout, last_rx; /* last_rx: the last byte in, kept only with a read_timeout */
    CURLcode result;
    int raise_status;
    uint8_t in_multi, done, paused, too_big;
    uint8_t headers_done;          /* the final response's headers arrived */
    uint8_t bad_framing;           /* refused: 1 conflicting lengths, 2 length and chunked */
    uint8_t redirecting;           /* this hop's answer is a redirect we follow */
    int hops_left;                 /* redirects still allowed */
    long hop_connects;             /* connections opened by earlier hops */
    aw_ns_t timeout_at;            /* the request's timeout (absolute; 0: none): it bounds
                                      the whole redirect chain, each hop gets what is left */
    uint8_t texted;                /* text() returned the body: it stays in `body` */
    uint8_t held;                  /* entered by the manager: its exit releases it */
    uint8_t released;              /* closed by hand inside its block (see response.c) */
    uint8_t need_data, up_paused, up_eof;
    int own_error;                 /* our own failure under curl (-errno), or 0 */
    int file_err;                  /* reading the body file failed (-errno), or 0 */
    /* what the easy handle holds, kept with it when the record is reused:
     * options set to the same value again are skipped (request.c) */
    uint8_t h_plain;               /* a GET's method, no body, no request headers */
    uint8_t h_pipewait;
    long h_ct, h_tt;               /* CONNECTTIMEOUT_MS, TIMEOUT_MS */
    struct curl_slist *withheld;   /* jar lines kept from this request (cookie.c) */
    char errbuf[CURL_ERROR_SIZE];
};

static inline void aw__wake(aw_http_response_t *r) {
    aw_event_set(&r->ev);
    if (r->notify)
        aw_event_set(r->notify);
}

/* session.c */
size_t aw__http_max_text(const aw_http_session_t *s);
/* Let go of the session's resolved URLs (request.c fills them). */
void aw__http_urls_free(aw_http_session_t *s);
/* Let go of u (NULL: nothing); its last holder frees it. */
void aw__http_url_put(aw__http_url_t *u);
/* Take r's transfer out of the multi handle (see session.c). */
void aw__http_remove(aw_http_response_t *r, CURLcode result);
/* After a task's curl call: act on curl's timer if due, re-arm the driver. */
void aw__http_after(aw_http_session_t *s);
/* Curl opens and closes sockets through these (the epoll set's book). */
curl_socket_t aw__http_open_cb(void *ud, curlsocktype purpose, struct curl_sockaddr *a);
int aw__http_close_cb(void *ud, curl_socket_t fd);

/* request.c */
/* Start a transfer. limit: accumulate the body up to it (0: stream it);
 * notify: an event also set on progress. Both are in place before curl
 * sees the transfer: it may deliver data before this returns. */
int aw__http_start(aw_http_session_t *s, const aw_http_request_t *req, size_t limit,
                   aw_event_t *notify, aw_http_response_t **out);
/* Wait for progress on r (a cancellation point; honours read_timeout). */
int aw__http_wait(aw_http_response_t *r, aw_event_t *ev);
size_t aw__http_read_cb(char *p, size_t sz, size_t n, void *ud);
/* The URL of h with its password as "***" (malloc'd), for messages and
 * reports: error records are printed and logged, and aiohttp, requests
 * and curl do not show it either. NULL: h has no password (*oom false),
 * or no memory (*oom true). */
char *aw__http_shown(CURLU *h, bool *oom);
/* The index of the first header line in hs (NULL-ended, may be NULL)
 * that holds a line break, or -1. */
long aw__http_bad_header(const char *const *hs);
/* Is r's answer (its final headers just in) a redirect we follow? */
bool aw__http_will_follow(const aw_http_response_t *r);
/* Start r's next hop (its transfer finished with a redirect): CURLE_OK,
 * or the code the transfer ends with (-ELOOP's, no memory, ...). */
CURLcode aw__http_follow(aw_http_response_t *r);

/* cookie.c: RFC 6265 path-match over curl's jar (sessions with cookies) */
/* CURLOPT_PREREQFUNCTION: withhold the cookies curl would send against
 * the RFC (data: the response). */
int aw__http_cookie_prereq(void *ud, char *ip, char *lip, int port, int lport);
/* CURLOPT_DEBUGFUNCTION (on while cookies are withheld): put them back. */
int aw__http_cookie_debug(CURL *e, curl_infotype type, char *p, size_t n, void *ud);
/* Put back what r's request withheld, if anything (its transfer ends). */
void aw__http_cookie_restore(aw_http_response_t *r);
/* A Set-Cookie header of r's response (its value, n bytes), after curl
 * stored it: the RFC's default path for a cookie without Path. 0 or
 * -ENOMEM. */
int aw__http_cookie_seen(aw_http_response_t *r, const char *v, size_t n);

/* response.c */
int aw__buf_put(aw__buf_t *b, const void *p, size_t n);
/* A spare buffer of s for b (empty, b->p NULL), at least `want` bytes if
 * one is kept, else the largest; nothing if s keeps none. */
void aw__http_buf_take(aw_http_session_t *s, aw__buf_t *b, size_t want);
/* b's memory back to s's spares (or freed); b is left empty. */
void aw__http_buf_give(aw_http_session_t *s, aw__buf_t *b);
/* Free the spares of s. */
void aw__http_bufs_free(aw_http_session_t *s);
size_t aw__http_header_cb(char *p, size_t sz, size_t n, void *ud);
size_t aw__http_write_cb(char *p, size_t sz, size_t n, void *ud);
/* Let go of r: kept for the session's next request (its easy handle
 * and small buffers with it), or freed. */
void aw__http_release(aw_http_response_t *r);
/* Free r, its easy handle and its buffers (a spare of a session that
 * closes). */
void aw__http_record_free(aw_http_response_t *r);
/* Tell curl which directions stay paused (may deliver data right away). */
void aw__http_repause(aw_http_response_t *r);
/* A body drained to its end: an encoded one whose stream did not end is
 * broken (bad_coding), however complete its framing was. */
void aw__http_coding_end(aw_http_response_t *r);
/* The error a finished transfer ended with: fills msg, returns the code
 * (0 if the transfer succeeded). Raises nothing. */
int aw__http_describe(const aw_http_response_t *r, char *msg, size_t size);
/* aw__http_describe, raised. */
int aw__http_fail(aw_http_response_t *r);

#endif
