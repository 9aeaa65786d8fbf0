/* response.c: an HTTP response: curl's header and write callbacks (which
 * never suspend) filling its buffers, the error a transfer ended with, the
 * status and headers, the body read whole or in chunks (the transfer
 * paused while a streaming reader is behind), and its release. */
#include "http.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

int aw__buf_put(aw__buf_t *b, const void *p, size_t n) {
    if (b->off && b->off == b->len)
        b->off = b->len = 0;
    if (b->len + n + 1 > b->cap) {
        if (b->off) { /* slide the unread part down before growing */
            memmove(b->p, b->p + b->off, b->len - b->off);
            b->len -= b->off;
            b->off = 0;
        }
        if (b->len + n + 1 > b->cap) {
            size_t cap = b->cap ? b->cap : 256; /* small: malloc's per-thread cache */
            while (cap < b->len + n + 1)
                cap *= 2;
            char *q = aw__realloc(b->p, cap);
            if (!q)
                return -ENOMEM;
            b->p = q;
            b->cap = cap;
        }
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = 0;
    return 0;
}

/* b can hold `total` bytes from b->p (the unread part slid down first);
 * grown to exactly that when it must grow: the caller knows the size. */
static int aw__buf_size(aw__buf_t *b, size_t total) {
    if (b->off) {
        memmove(b->p, b->p + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
    }
    if (total <= b->cap)
        return 0;
    char *q = aw__realloc(b->p, total);
    if (!q)
        return -ENOMEM;
    b->p = q;
    b->cap = total;
    return 0;
}

void aw__http_buf_take(aw_http_session_t *s, aw__buf_t *b, size_t want) {
    if (!s || b->p || !s->nbufs)
        return;
    size_t pick = s->nbufs, big = 0;
    for (size_t i = 0; i < s->nbufs; i++) {
        if (s->bufs[i].cap >= want && (pick == s->nbufs || s->bufs[i].cap < s->bufs[pick].cap))
            pick = i;
        if (s->bufs[i].cap > s->bufs[big].cap)
            big = i;
    }
    if (pick == s->nbufs)
        pick = big; /* none big enough: the largest, grown by the caller */
    *b = (aw__buf_t){.p = s->bufs[pick].p, .cap = s->bufs[pick].cap};
    s->bufs_bytes -= b->cap;
    s->bufs[pick] = s->bufs[--s->nbufs];
}

void aw__http_buf_give(aw_http_session_t *s, aw__buf_t *b) {
    if (b->p && s && !s->closing && s->nbufs < AW__HTTP_SPARE_BUFS && b->cap >= AW__HTTP_KEEP_MIN &&
        b->cap <= AW__HTTP_KEEP_ONE &&
        s->bufs_bytes + b->cap <= AW__HTTP_KEEP_ALL) {
        s->bufs[s->nbufs].p = b->p;
        s->bufs[s->nbufs++].cap = b->cap;
        s->bufs_bytes += b->cap;
    } else {
        aw__free(b->p);
    }
    *b = (aw__buf_t){0};
}

void aw__http_bufs_free(aw_http_session_t *s) {
    for (size_t i = 0; i < s->nbufs; i++)
        aw__free(s->bufs[i].p);
    s->nbufs = s->bufs_bytes = 0;
}

/* Room for n more bytes (and the NUL) at b->p + b->len. */
static int aw__buf_reserve(aw__buf_t *b, size_t n) {
    if (b->len + n + 1 <= b->cap)
        return 0;
    size_t len = b->len;
    if (aw__buf_put(b, "", 0) < 0) /* allocate or slide */
        return -ENOMEM;
    if (b->len + n + 1 <= b->cap)
        return 0;
    size_t cap = b->cap;
    while (cap < b->len + n + 1)
        cap *= 2;
    char *q = aw__realloc(b->p, cap);
    if (!q)
        return -ENOMEM;
    b->p = q;
    b->cap = cap;
    (void)len;
    return 0;
}

/* ---- content decoding ----
 * We decode gzip and deflate ourselves (zlib) instead of letting curl do
 * it: curl 7.88 decodes all it has received at once, and while the
 * transfer is paused it keeps the decoded output, so a paused gzip body
 * held its compression ratio times curl's 16 KiB buffer (22 MB after one
 * chunk; and for br or zstd there is no bound at all). Here the encoded
 * bytes wait in r->raw (at most the read-ahead, then the transfer
 * pauses) and are decoded by the reader, at most one chunk per read, in
 * the reader's task: memory per response is bounded whatever the ratio,
 * and decoding is spread over reads that are cancellation points. Only
 * gzip and deflate are asked for (Accept-Encoding); a response in another
 * coding (one the caller asked for) is handed out as it came. */

/* At the final headers: which coding, and its decoder. */
static int aw__http_coding_start(aw_http_response_t *r) {
    const char *ce = r->ce_at ? r->hdr.p + r->ce_at : NULL;
    r->coding = 0;
    if (!ce)
        return 0;
    if (!strcasecmp(ce, "gzip") || !strcasecmp(ce, "x-gzip"))
        r->coding = 1;
    else if (!strcasecmp(ce, "deflate"))
        r->coding = 2;
    else
        return 0; /* identity, or a coding we do not decode: as it came */
    if (!r->z && !(r->z = aw__calloc(1, sizeof *r->z)))
        return -ENOMEM;
    int zr = r->z->state ? inflateReset2(r->z, 15 + 32) : inflateInit2(r->z, 15 + 32);
    return zr == Z_OK ? 0 : -ENOMEM; /* 15 + 32: gzip or zlib header, detected */
}

/* Decode from r->raw into out, appending at most max bytes. Returns 0, or
 * -EBADMSG (broken data) / -ENOMEM with r->bad_coding set. */
static int aw__http_inflate(aw_http_response_t *r, aw__buf_t *out, size_t max) {
    while (max && r->raw.len > r->raw.off && !r->z_end) {
        size_t room = max < AW__HTTP_STREAM_AHEAD ? max : AW__HTTP_STREAM_AHEAD;
        if (aw__buf_reserve(out, room) < 0) {
            r->bad_coding = 2;
            return -ENOMEM;
        }
        z_stream *z = r->z;
        size_t in = r->raw.len - r->raw.off;
        z->next_in = (Bytef *)r->raw.p + r->raw.off;
        z->avail_in = (uInt)(in < UINT32_MAX ? in : UINT32_MAX);
        z->next_out = (Bytef *)out->p + out->len;
        z->avail_out = (uInt)room;
        uLong before = z->total_out;
        int zr = inflate(z, Z_NO_FLUSH);
        if (zr == Z_DATA_ERROR && r->coding == 2 && before == 0 && z->total_in < 2) {
            /* "deflate" sent without its zlib header (as some servers do,
             * and curl accepts): try raw deflate once */
            r->coding = 3;
            if (inflateReset2(z, -15) != Z_OK) {
                r->bad_coding = 2;
                return -ENOMEM;
            }
            continue;
        }
        size_t used = (size_t)(z->next_in - (Bytef *)(r->raw.p + r->raw.off));
        size_t made = room - z->avail_out;
        r->raw.off += used;
        out->len += made;
        out->p[out->len] = 0;
        max -= made;
        if (zr == Z_STREAM_END) {
            r->z_end = 1;
            r->raw.off = r->raw.len; /* anything after the stream is not body */
        } else if (zr == Z_MEM_ERROR) {
            r->bad_coding = 2;
            return -ENOMEM;
        } else if (zr != Z_OK && zr != Z_BUF_ERROR) {
            r->bad_coding = 1;
            return -EBADMSG;
        } else if (!used && !made) {
            break;
        }
    }
    if (r->raw.off == r->raw.len)
        r->raw.off = r->raw.len = 0;
    return 0;
}

/* Is the transfer over for the reader: finished, nothing left to decode? */
static bool aw__http_drained(const aw_http_response_t *r) {
    return r->done && (r->raw.len == r->raw.off || r->z_end || r->bad_coding);
}

void aw__http_coding_end(aw_http_response_t *r) {
    if (r->result == CURLE_OK && r->coding && !r->z_end && !r->bad_coding && r->raw_seen)
        r->bad_coding = 1; /* complete by the framing, not by the coding */
}

/* The error a drained body ends with, raised; 0 if it ended well. */
static int aw__http_end(aw_http_response_t *r) {
    aw__http_coding_end(r);
    if (r->result != CURLE_OK || r->bad_coding)
        return aw__http_fail(r);
    return 0;
}

/* Is the response's framing ambiguous (RFC 9112 6.3: the request
 * smuggling class)? Two Content-Length headers that disagree, or one with
 * chunked Transfer-Encoding: 1 or 2, else 0. Curl 7.88 takes the last
 * length, or ignores it for chunked, and keeps the connection. */
static int aw__http_framing(const aw_http_response_t *r) {
    return r->cl_conflict ? 1 : r->cl_at && r->chunked ? 2 : 0;
}

/* The final response's Content-Length (its last one), or -1 (none,
 * chunked, unreadable). */
static int64_t aw__http_clen(const aw_http_response_t *r) {
    return r->chunked || !r->cl_at ? -1 : r->cl_last;
}

/* Note what a header line just stored (name n, nl bytes; its value at
 * offset `at` of r->hdr, NUL-terminated) tells of the framing and the
 * coding: the names that matter differ in length, so most lines cost a
 * length compare. */
static void aw__http_note(aw_http_response_t *r, const char *n, size_t nl, size_t at) {
    const char *v = r->hdr.p + at;
    if (nl == 14 && !strncasecmp(n, "content-length", 14)) {
        if (r->cl_at && strcmp(r->hdr.p + r->cl_at, v))
            r->cl_conflict = 1;
        if (!r->cl_at)
            r->cl_at = at;
        char *end;
        long long x = strtoll(v, &end, 10);
        r->cl_last = end != v && !*end && x >= 0 ? x : -1;
    } else if (nl == 17 && !strncasecmp(n, "transfer-encoding", 17)) {
        r->chunked |= strcasestr(v, "chunked") != NULL;
    } else if (nl == 16 && !r->ce_at && !strncasecmp(n, "content-encoding", 16)) {
        r->ce_at = at;
    }
}

/* Size the body buffer, once the length is known, for what it will hold:
 * the whole rest of the body when accumulating (up to the limit), the
 * read-ahead and one delivery when streaming. Exact, so that a 64 KiB
 * body takes 64 KiB + 1, not a 128 KiB block past malloc's mmap
 * threshold (fresh pages, unmapped at free). An unknown length (chunked,
 * encoded) grows by doubling as before. */
static int aw__http_body_size(aw_http_response_t *r) {
    if (r->coding || r->clen < 0)
        return 0;
    uint64_t left = (uint64_t)r->clen > r->body_seen ? (uint64_t)r->clen - r->body_seen : 0;
    size_t most = r->limit ? r->limit + 1 : AW__HTTP_STREAM_AHEAD + CURL_MAX_WRITE_SIZE;
    size_t want = (r->body.len - r->body.off) + (left < most ? (size_t)left : most) + 1;
    if (r->body.p && r->body.cap < want && r->body.off == r->body.len) {
        aw__free(r->body.p); /* a reused record's small buffer: a spare of the size instead */
        r->body = (aw__buf_t){0};
    }
    aw__http_buf_take(r->s, &r->body, want);
    return aw__buf_size(&r->body, want);
}

size_t aw__http_header_cb(char *p, size_t sz, size_t n, void *ud) {
    aw_http_response_t *r = ud;
    size_t len = sz * n;
    if (r->read_timeout) /* the clock is read only where it is used */
        r->last_rx = aw_now();
    /* The final headers are in: what curl hands here now is a chunked
     * body's trailer, not a header (aiohttp and requests drop trailers
     * too). Stored, it grew r->hdr under the values header() returned
     * (valid until the close, http.h), and a trailer line that looked
     * like a status line reset the status and the headers. */
    if (r->headers_done)
        return len;
    if (len >= 5 && !memcmp(p, "HTTP/", 5)) { /* a new response (redirect, 1xx) */
        /* not from the session's spares: those are body-sized, and a
         * header block taking one made the next body allocate afresh */
        r->hdr.len = r->hdr.off = 0;
        r->clen = -1;
        r->nhdr = 0;
        r->cl_at = r->ce_at = 0;
        r->cl_conflict = r->chunked = 0;
        const char *sp = memchr(p, ' ', len);
        r->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        return len;
    }
    size_t k = len;
    while (k && (p[k - 1] == '\r' || p[k - 1] == '\n'))
        k--;
    if (k == 0) { /* end of this response's headers */
        if (r->status / 100 == 1)
            return len;
        if ((r->bad_framing = (uint8_t)aw__http_framing(r)))
            return 0; /* CURLE_WRITE_ERROR: curl closes the connection (premature end) */
        if (aw__http_will_follow(r)) {
            r->redirecting = 1; /* its body is dropped; then aw__http_follow */
            return len;
        }
        if (aw__http_coding_start(r) < 0) {
            r->bad_coding = 2;
            return 0;
        }
        r->clen = aw__http_clen(r);
        if (aw__http_body_size(r) < 0)
            return 0; /* no memory: CURLE_WRITE_ERROR */
        r->headers_done = 1;
        aw__wake(r);
        return len;
    }
    const char *colon = memchr(p, ':', k);
    if (!colon || p[0] == ' ' || p[0] == '\t')
        return len; /* obsolete line folding: ignored */
    size_t nl = (size_t)(colon - p);
    const char *v = colon + 1;
    while (v < p + k && (*v == ' ' || *v == '\t'))
        v++;
    size_t vl = (size_t)(p + k - v);
    while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
        vl--;
    if (nl == 10 && r->s && r->s->share && !strncasecmp(p, "Set-Cookie", 10) &&
        aw__http_cookie_seen(r, v, vl) < 0) { /* curl stored it before this call */
        r->own_error = -ENOMEM;
        return 0;
    }
    if (aw__buf_reserve(&r->hdr, nl + vl + 2) < 0)
        return 0;
    char *q = r->hdr.p + r->hdr.len;
    memcpy(q, p, nl);
    q[nl] = 0;
    memcpy(q + nl + 1, v, vl);
    q[nl + 1 + vl] = 0;
    size_t at = r->hdr.len + nl + 1;
    r->hdr.len += nl + vl + 2;
    r->nhdr++;
    aw__http_note(r, q, nl, at);
    return len;
}

size_t aw__http_write_cb(char *p, size_t sz, size_t n, void *ud) {
    aw_http_response_t *r = ud;
    size_t len = sz * n;
    if (r->read_timeout)
        r->last_rx = aw_now();
    if (r->redirecting)
        return len; /* a redirect's body: not the response's */
    if (!r->headers_done) {
        r->headers_done = 1;
        aw__wake(r);
    }
    if (r->coding) {
        if (!r->limit && r->raw.len - r->raw.off >= AW__HTTP_STREAM_AHEAD) {
            r->paused = 1;
            return CURL_WRITEFUNC_PAUSE; /* curl keeps the (encoded) data for later */
        }
        if (aw__buf_put(&r->raw, p, len) < 0)
            return 0;
        r->raw_seen += len;
        if (r->limit) { /* accumulating (fetch-many): decode now, up to the limit */
            size_t have = r->body.len - r->body.off;
            if (aw__http_inflate(r, &r->body, r->limit + 1 - have) < 0)
                return 0;
            if (r->body.len - r->body.off > r->limit) {
                r->too_big = 1;
                return 0;
            }
        } else {
            aw__wake(r);
        }
        return len;
    }
    if (r->limit) {
        if (r->body.len - r->body.off + len > r->limit) {
            r->too_big = 1;
            return 0; /* CURLE_WRITE_ERROR: the transfer stops */
        }
    } else if (r->body.len - r->body.off >= AW__HTTP_STREAM_AHEAD) {
        r->paused = 1;
        return CURL_WRITEFUNC_PAUSE; /* curl keeps the data for later */
    }
    if (aw__buf_put(&r->body, p, len) < 0)
        return 0;
    r->body_seen += len;
    /* a streaming reader wants each chunk; one accumulating the body
     * (text, fetch-many) only its end, which aw__http_remove signals:
     * a 1 MiB body is ~66 deliveries, each a wake and a switch */
    if (!r->limit)
        aw__wake(r);
    return len;
}

/* What a record holds that is the request's alone. */
static void aw__http_record_clear(aw_http_response_t *r) {
    if (r->upload)
        fclose(r->upload);
    curl_slist_free_all(r->req_headers);
    curl_slist_free_all(r->withheld); /* put back when the transfer was removed */
    aw__http_url_put(r->u); /* a spare handle's CURLOPT_CURLU is set before it is used */
    aw__free(r->up.p);
    if (r->z) { /* not kept: a decoder holds ~40 KiB */
        if (r->z->state)
            inflateEnd(r->z);
        aw__free(r->z);
        r->z = NULL;
    }
}

void aw__http_record_free(aw_http_response_t *r) {
    if (r->easy)
        curl_easy_cleanup(r->easy);
    aw__free(r->hdr.p);
    aw__free(r->body.p);
    aw__free(r->raw.p);
    aw__free(r);
}

/* A small buffer stays with the record (emptied); a larger one goes to
 * the session's spares (or is freed). */
static void aw__http_buf_keep(aw_http_session_t *s, aw__buf_t *b) {
    if (b->cap <= AW__HTTP_KEEP_SMALL) {
        b->off = b->len = 0;
        return;
    }
    aw__http_buf_give(s, b);
}

void aw__http_release(aw_http_response_t *r) {
    aw_http_session_t *s = r->s;
    aw__http_record_clear(r);
    if (!r->easy || !s || s->nspare >= AW__HTTP_SPARE) {
        aw__http_buf_give(s, &r->hdr);
        aw__http_buf_give(s, &r->body);
        aw__http_buf_give(s, &r->raw);
        aw__http_record_free(r);
        return;
    }
    /* kept, its easy handle configured, for the session's next request */
    assert(!r->in_multi && r != s->live && !r->prev && !r->next); /* off every list */
    aw__http_buf_keep(s, &r->hdr);
    aw__http_buf_keep(s, &r->body);
    aw__http_buf_keep(s, &r->raw);
    aw_http_response_t keep = {
        .easy = r->easy, .hdr = r->hdr, .body = r->body, .raw = r->raw,
        .h_plain = r->h_plain, .h_pipewait = r->h_pipewait, .h_ct = r->h_ct, .h_tt = r->h_tt,
    };
    *r = keep;
    s->spare[s->nspare++] = r;
}

int aw_http_response_close(aw_http_response_t *r) {
    if (!r)
        return 0;
    aw_http_session_t *s = r->s;
    aw_gen_t *g = r->gen;
    r->gen = NULL;
    if (s) {
        aw__http_remove(r, CURLE_ABORTED_BY_CALLBACK);
        if (r->prev)
            r->prev->next = r->next;
        else
            s->live = r->next;
        if (r->next)
            r->next->prev = r->prev;
        r->prev = r->next = NULL;
        s->active--;
    }
    if (r->held && s) {
        /* Closed by hand inside its with block (aiohttp's release()): the
         * transfer and its connection go now; the record, still readable
         * (status, headers), when the block's exit closes it again, off
         * the session, which may close first (as aw__http_detach_all) */
        if (s->share)
            curl_easy_setopt(r->easy, CURLOPT_SHARE, NULL);
        r->s = NULL;
        r->released = 1;
    } else if (!r->held) {
        aw__http_release(r);
    }
    if (g) /* after the transfer is gone: curl cannot ask it for more */
        aw_gen_close(g);
    return 0;
}

int aw__http_describe(const aw_http_response_t *r, char *msg, size_t size) {
    const char *what, *why = r->errbuf[0] ? r->errbuf : curl_easy_strerror(r->result);
    int code;
    if (r->too_big) {
        snprintf(msg, size, "%s %s: the body is larger than %zu bytes", r->method, r->url, r->limit);
        return -EFBIG;
    }
    if (r->bad_coding) {
        snprintf(msg, size, r->bad_coding == 2 ? "%s %s: out of memory for the body's decoder"
                                               : "%s %s: the server broke the HTTP protocol: "
                                                 "bad %s data (Content-Encoding)",
                 r->method, r->url, r->coding == 1 ? "gzip" : "deflate");
        return r->bad_coding == 2 ? -ENOMEM : -EBADMSG;
    }
    if (r->bad_framing) {
        snprintf(msg, size, "%s %s: the server broke the HTTP protocol: %s (refused, the "
                 "connection closed)", r->method, r->url,
                 r->bad_framing == 1 ? "conflicting Content-Length headers"
                                     : "Content-Length with chunked Transfer-Encoding");
        return -EBADMSG;
    }
    if (r->file_err) {
        snprintf(msg, size, "%s %s: cannot read the body file: %s", r->method, r->url,
                 aw_strerror(r->file_err));
        return r->file_err;
    }
    if (r->own_error) {
        snprintf(msg, size, "%s %s: the HTTP session failed under curl: %s", r->method, r->url,
                 aw_strerror(r->own_error));
        return r->own_error;
    }
    if (r->released && r->result == CURLE_ABORTED_BY_CALLBACK) {
        /* the caller's own close cut it: no cancel, and the session goes
         * on (a stream closed under its reader: -EBADF, stream.h) */
        snprintf(msg, size, "%s %s: the response was closed by hand before its body was all in",
                 r->method, r->url);
        return -EBADF;
    }
    if (!r->s && r->result == CURLE_ABORTED_BY_CALLBACK) {
        snprintf(msg, size, "%s %s: the session was closed", r->method, r->url);
        return -ECANCELED;
    }
    long oserr = 0;
    if (r->easy)
        curl_easy_getinfo(r->easy, CURLINFO_OS_ERRNO, &oserr);
    switch (r->result) {
    case CURLE_OK:
        msg[0] = 0;
        return 0;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        code = -ENXIO, what = "cannot resolve the host name";
        break;
    case CURLE_COULDNT_CONNECT:
        code = oserr > 0 ? -(int)oserr : -ECONNREFUSED, what = "cannot connect";
        break;
    case CURLE_OPERATION_TIMEDOUT:
        code = -ETIMEDOUT, what = "timed out";
        break;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_USE_SSL_FAILED:
        code = -EPROTO, what = "TLS failed";
        break;
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_HTTP3:
        code = -EBADMSG, what = "the server broke the HTTP protocol";
        break;
    case CURLE_PARTIAL_FILE:
        code = -EPIPE, what = "the body was cut short";
        break;
    case CURLE_GOT_NOTHING:
        code = -ECONNRESET, what = "the server closed the connection without a reply";
        break;
    case CURLE_RECV_ERROR:
        if (strstr(why, "eaders")) { /* curl 7.88: "Too large response headers" */
            code = -EBADMSG, what = "the response headers are too large";
            break;
        }
        /* "Illegal or missing hexadecimal sequence in chunked-encoding" */
        if (strstr(why, "hunk")) {
            code = -EBADMSG, what = "bad chunked encoding";
            break;
        }
        /* fall through */
    case CURLE_SEND_ERROR:
        code = oserr > 0 ? -(int)oserr : -ECONNRESET, what = "the connection failed";
        break;
    case CURLE_TOO_MANY_REDIRECTS:
        code = -ELOOP, what = "too many redirects";
        break;
    case CURLE_FILESIZE_EXCEEDED:
        code = -EFBIG, what = "the body is too large";
        break;
    case CURLE_URL_MALFORMAT:
        code = -EINVAL, what = "malformed URL";
        break;
    case CURLE_UNSUPPORTED_PROTOCOL:
        /* also curl's word for a status line that is not HTTP/1.x, 2 or 3
         * ("Received HTTP/0.9 when not allowed", "Unsupported HTTP version
         * in response"): a broken server, not a scheme we refused */
        if (strstr(why, "HTTP")) {
            code = -EBADMSG, what = "bad status line";
            break;
        }
        code = -EPROTONOSUPPORT, what = "the URL's scheme is not allowed (session's protocols)";
        break;
    case CURLE_OUT_OF_MEMORY:
        /* curl 7.88 says "Out of memory" for a header line or headers past
         * its 100 KiB limit; our own allocations are reported by us, so
         * before the headers are complete this is the server's doing */
        if (strstr(why, "header") || !r->headers_done) {
            code = -EBADMSG, what = "the response headers are too large";
            break;
        }
        code = -ENOMEM, what = "out of memory";
        break;
    case CURLE_ABORTED_BY_CALLBACK:
        code = -ECANCELED, what = "aborted";
        break;
    default:
        code = -EIO, what = "transfer failed";
        break;
    }
    snprintf(msg, size, "%s %s: %s (curl: %s)", r->method, r->url, what, why);
    return code;
}

int aw__http_fail(aw_http_response_t *r) {
    char msg[CURL_ERROR_SIZE + 512];
    int code = aw__http_describe(r, msg, sizeof msg);
    return code < 0 ? aw_raise(code, "%s", msg) : 0;
}

long aw_http_response_status(const aw_http_response_t *r) { return r->status; }
const char *aw_http_response_url(const aw_http_response_t *r) {
    char *u = NULL;
    if (r->easy)
        curl_easy_getinfo(r->easy, CURLINFO_EFFECTIVE_URL, &u);
    return u ? u : r->u ? r->u->url : r->url;
}
long aw_http_response_connects(const aw_http_response_t *r) { return r->done ? r->connects : -1; }
int aw_http_response_version(const aw_http_response_t *r) {
    long v = 0;
    if (r->easy)
        curl_easy_getinfo(r->easy, CURLINFO_HTTP_VERSION, &v);
    return v == CURL_HTTP_VERSION_1_0 ? 10 : v == CURL_HTTP_VERSION_1_1 ? 11
         : v == CURL_HTTP_VERSION_2_0 ? 20 : v == CURL_HTTP_VERSION_3 ? 30 : 0;
}

bool aw_http_response_header_at(const aw_http_response_t *r, size_t i, const char **name,
                                const char **value) {
    if (i >= r->nhdr)
        return false;
    const char *p = r->hdr.p;
    for (size_t k = 0; k < i; k++) {
        p += strlen(p) + 1;
        p += strlen(p) + 1;
    }
    *name = p;
    *value = p + strlen(p) + 1;
    return true;
}

const char *aw_http_response_header(const aw_http_response_t *r, const char *name) {
    const char *p = r->hdr.p;
    for (size_t k = 0; k < r->nhdr; k++) {
        const char *v = p + strlen(p) + 1;
        if (!strcasecmp(p, name))
            return v;
        p = v + strlen(v) + 1;
    }
    return NULL;
}

/* Tell curl which directions stay paused (may deliver data right away). */
void aw__http_repause(aw_http_response_t *r) {
    r->s->in_api = 1;
    curl_easy_pause(r->easy, (r->paused ? CURLPAUSE_RECV : 0) | (r->up_paused ? CURLPAUSE_SEND : 0));
    aw__http_after(r->s);
}

static void aw__http_unpause(aw_http_response_t *r) {
    if (r->paused && r->in_multi) {
        r->paused = 0;
        aw__http_repause(r);
    }
}

/* Entry of a read: a cancellation point even with data ready (a deadline
 * past due is seen here: aw_checkpoint looks at the clock), and a yield
 * every AW__HTTP_FAST_READS reads served without waiting, so that a long
 * stream of ready data (a fast server, a body decoded from a small one)
 * does not starve the other tasks (as the file API does). */
static int aw__http_turn(aw_http_response_t *r) {
    if (++r->fast < AW__HTTP_FAST_READS)
        return aw_checkpoint();
    r->fast = 0;
    return aw_yield();
}

/* Wait for more body (the transfer unpaused first). */
static int aw__http_more(aw_http_response_t *r) {
    aw__http_unpause(r);
    if (r->body.len > r->body.off || r->raw.len > r->raw.off || r->done)
        return 0; /* curl delivered at once (what it held while paused) */
    r->fast = 0;
    return aw__http_wait(r, &r->ev);
}

long aw_http_response_read(aw_http_response_t *r, const void **data) {
    if (r->texted)
        return 0; /* text() took the whole body */
    r->body.off += r->last_chunk;
    r->last_chunk = 0;
    int rc = aw__http_turn(r);
    if (rc < 0)
        return rc;
    for (;;) {
        size_t n = r->body.len - r->body.off;
        if (n) {
            *data = r->body.p + r->body.off;
            r->last_chunk = n;
            return (long)n;
        }
        r->body.off = r->body.len = 0;
        if (r->coding && r->raw.len > r->raw.off && !r->z_end) {
            if (aw__http_inflate(r, &r->body, AW__HTTP_STREAM_AHEAD) < 0) {
                if (r->s)
                    aw__http_remove(r, CURLE_BAD_CONTENT_ENCODING);
                return aw__http_fail(r);
            }
            if (r->body.len)
                continue;
        }
        if (aw__http_drained(r))
            return aw__http_end(r);
        if ((rc = aw__http_more(r)) < 0)
            return rc;
    }
}

/* text() of an encoded body: decoded here, in the reader's task, a chunk
 * at a time between turns (not by curl's callback in the driver, where a
 * large ratio means a long stall), appended to r->body up to the limit. */
static int aw__http_text_decoded(aw_http_response_t *r, size_t limit) {
    for (;;) {
        int rc = aw__http_turn(r);
        if (rc < 0)
            return rc;
        if (r->raw.len > r->raw.off && !r->z_end) {
            size_t have = r->body.len - r->body.off;
            size_t max = limit + 1 - have, step = 4 * AW__HTTP_STREAM_AHEAD;
            if (aw__http_inflate(r, &r->body, max < step ? max : step) < 0) {
                if (r->s)
                    aw__http_remove(r, CURLE_BAD_CONTENT_ENCODING);
                return aw__http_fail(r);
            }
            if (r->body.len - r->body.off > limit) {
                r->too_big = 1;
                return 0;
            }
            continue;
        }
        if (aw__http_drained(r))
            return aw__http_end(r);
        if ((rc = aw__http_more(r)) < 0)
            return rc;
    }
}

long aw_http_response_text(aw_http_response_t *r, size_t limit, const char **text, size_t *len) {
    if (r->texted) /* again: the same text (it stays in r->body) */
        goto out;
    r->body.off += r->last_chunk;
    r->last_chunk = 0;
    int rc = aw_checkpoint();
    if (rc < 0)
        return rc;
    limit = limit ? limit : r->s ? aw__http_max_text(r->s) : (size_t)64 << 20;
    if (r->body.len - r->body.off > limit)
        r->too_big = 1;
    if (r->coding && !r->too_big) {
        /* r->limit stays 0: the callback keeps the encoded bytes, paused
         * past the read-ahead, and this task decodes them */
        rc = aw__http_text_decoded(r, limit);
        if (rc < 0)
            return rc;
    } else {
        r->limit = limit;
        if (aw__http_body_size(r) < 0) /* the whole body now, in one block */
            return aw_raise(-ENOMEM, "out of memory for a response body");
        aw__http_unpause(r);
        while (!r->done && !r->too_big) {
            rc = aw__http_wait(r, &r->ev);
            if (rc < 0)
                return rc;
        }
        if (!r->too_big && r->result != CURLE_OK)
            return aw__http_fail(r);
    }
    if (r->too_big) {
        r->limit = limit; /* for the message */
        if (r->s)
            aw__http_remove(r, CURLE_WRITE_ERROR);
        return aw__http_fail(r);
    }
    if (aw__buf_put(&r->body, "", 0) < 0) /* NUL-terminate even when empty */
        return aw_raise(-ENOMEM, "out of memory for a response body");
    r->texted = 1;
out:;
    size_t n = r->body.len - r->body.off;
    *text = r->body.p + r->body.off;
    if (len)
        *len = n;
    return (long)n;
}

static int aw__http_response_enter(void *self, void **out) {
    aw_http_response_cm_t *c = self;
    int rc = aw_http_request(c->s, &c->req, &c->r);
    if (rc == 0)
        c->r->held = 1; /* its exit releases it (see aw_http_response_close) */
    *out = c->r;
    return rc;
}

static int aw__http_response_exit(void *self, const aw_err_t *err) {
    (void)err;
    aw_http_response_cm_t *c = self;
    c->r->held = 0;
    aw_http_response_close(c->r);
    c->r = NULL;
    return 0;
}

const aw_cm_type_t aw_http_response_type = {"aw_http_response", aw__http_response_enter,
                                            aw__http_response_exit, 0, 0};
