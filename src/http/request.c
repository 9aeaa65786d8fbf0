/* request.c: an HTTP request: the URL, the easy handle's options, the
 * headers and the body (copied, a file, or pulled from a generator as curl
 * sends), adding it to the session's multi handle, and waiting for the
 * response's headers. */
#include "http.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

size_t aw__http_read_cb(char *p, size_t sz, size_t n, void *ud) {
    aw_http_response_t *r = ud;
    if (r->gen || r->up_eof) { /* fed by aw__http_pump, in the waiting task */
        size_t k = r->up.len - r->up.off;
        if (!k) {
            if (r->up_eof)
                return 0;
            r->need_data = r->up_paused = 1;
            aw__wake(r);
            return CURL_READFUNC_PAUSE;
        }
        if (k > sz * n)
            k = sz * n;
        memcpy(p, r->up.p + r->up.off, k);
        r->up.off += k;
        return k;
    }
    size_t got = fread(p, 1, sz * n, r->upload); /* a local file: short blocking read */
    if (!ferror(r->upload))
        return got;
    /* reported as itself: curl's "aborted by callback" reads as a cancel */
    r->file_err = errno ? -errno : -EIO;
    return CURL_READFUNC_ABORT;
}

static bool aw__header_named(const char *line, const char *name, size_t nl) {
    return !strncasecmp(line, name, nl) && (line[nl] == ':' || line[nl] == ';');
}

void aw__http_url_put(aw__http_url_t *u) {
    if (!u)
        return;
    assert(u->refs > 0);
    if (--u->refs)
        return;
    aw__free(u->req);
    aw__free(u->url);
    aw__free(u->shown);
    curl_url_cleanup(u->h);
    aw__free(u);
}

/* The session's resolved URL for the request URL u (asked without
 * query pairs), or NULL. */
static aw__http_url_t *aw__http_url_find(const aw_http_session_t *s, const char *u) {
    for (size_t i = 0; i < s->nurls; i++)
        if (!strcmp(s->urls[i]->req, u))
            return s->urls[i];
    return NULL;
}

/* List e (resolved from the request URL u) for the session's next
 * requests of u, in place of the oldest when all are taken. Without the
 * memory for it nothing is listed: the next request resolves again. */
static void aw__http_url_keep(aw_http_session_t *s, const char *u, aw__http_url_t *e) {
    if (!(e->req = aw__strdup(u)))
        return;
    size_t i;
    if (s->nurls < AW__HTTP_URLS) {
        i = s->nurls++;
    } else {
        i = s->url_next;
        s->url_next = (i + 1) % AW__HTTP_URLS;
        aw__http_url_put(s->urls[i]); /* the oldest goes */
    }
    e->refs++;
    s->urls[i] = e;
}

char *aw__http_shown(CURLU *h, bool *oom) {
    char *pw = NULL, *full = NULL, *out = NULL;
    *oom = false;
    if (curl_url_get(h, CURLUPART_PASSWORD, &pw, 0) != CURLUE_OK)
        return NULL; /* none */
    curl_free(pw);
    CURLU *c = curl_url_dup(h);
    if (c && !curl_url_set(c, CURLUPART_PASSWORD, "***", 0) &&
        !curl_url_get(c, CURLUPART_URL, &full, 0))
        out = aw__strdup(full);
    curl_free(full);
    curl_url_cleanup(c);
    *oom = !out;
    return out;
}

/* x->shown, for h (see aw__http_shown): 0, or -ENOMEM (raised). */
static int aw__http_url_shown(CURLU *h, aw__http_url_t *x) {
    bool oom;
    x->shown = aw__http_shown(h, &oom);
    return oom ? aw_raise(-ENOMEM, "out of memory for an HTTP request") : 0;
}

/* The full URL, by libcurl's URL API: req->url resolved against the
 * session's base_url as a browser would (RFC 3986: "/x" replaces the
 * base's path, "x" replaces its last segment, a query may hold "://"),
 * then the query pairs appended, each name and value escaped. Sets r->u
 * (r->url: its string for messages, its password hidden): the URL also
 * parsed, which curl is handed instead of the string alone
 * (CURLOPT_CURLU: curl would parse the
 * string and format it again, ~11,800 instructions). A URL without
 * query pairs is resolved once per session (AW__HTTP_URLS). Raises:
 * -EINVAL (malformed, or relative without a base), -ENOMEM. */
static int aw__http_url(aw_http_session_t *s, CURL *e, const aw_http_request_t *req,
                        aw_http_response_t *r) {
    const char *m = req->method ? req->method : "GET";
    const char *u = req->url ? req->url : "";
    bool pairs = req->query && req->query[0] && req->query[1];
    aw__http_url_t *kept = pairs ? NULL : aw__http_url_find(s, u);
    if (kept) {
        kept->refs++;
        r->u = kept;
        r->url = kept->shown ? kept->shown : kept->url;
        return 0;
    }
    char *full = NULL;
    int rc = 0;
    CURLUcode uc = CURLUE_OK;
    /* The base is parsed once per session and copied per request: a
     * parse costs ~7,000 instructions, a third of resolving a URL
     * (callgrind, issue 14). NON_SUPPORT_SCHEME: a scheme curl lacks is
     * refused later, with the session's protocols, as -EPROTONOSUPPORT */
    if (s->base_url && !s->base_h) {
        CURLU *b = curl_url();
        if (!b)
            return aw_raise(-ENOMEM, "out of memory for an HTTP request");
        if ((uc = curl_url_set(b, CURLUPART_URL, s->base_url, CURLU_NON_SUPPORT_SCHEME)) != CURLUE_OK) {
            curl_url_cleanup(b);
            rc = uc == CURLUE_OUT_OF_MEMORY ? -ENOMEM : -EINVAL;
            return aw_raise(rc, "%s %s: the session's base_url %s is malformed (curl: %s)", m, u,
                            s->base_url, curl_url_strerror(uc));
        }
        s->base_h = b;
    }
    aw__http_url_t *x = aw__calloc(1, sizeof *x);
    CURLU *h = s->base_h ? curl_url_dup(s->base_h) : curl_url();
    if (!x || !h) {
        rc = aw_raise(-ENOMEM, "out of memory for an HTTP request");
        goto out;
    }
    if ((uc = curl_url_set(h, CURLUPART_URL, u, CURLU_NON_SUPPORT_SCHEME)) != CURLUE_OK) {
        rc = uc == CURLUE_OUT_OF_MEMORY ? -ENOMEM : -EINVAL;
        rc = aw_raise(rc, "%s %s: malformed URL%s (curl: %s)", m, u,
                      s->base_url ? "" : " (a relative URL needs the session's base_url)",
                      curl_url_strerror(uc));
        goto out;
    }
    for (size_t i = 0; req->query && req->query[i] && req->query[i + 1]; i += 2) {
        char *k = curl_easy_escape(e, req->query[i], 0);
        char *v = curl_easy_escape(e, req->query[i + 1], 0);
        char *pair = k && v ? aw__malloc(strlen(k) + strlen(v) + 2) : NULL;
        uc = CURLUE_OUT_OF_MEMORY;
        if (pair) {
            sprintf(pair, "%s=%s", k, v);
            uc = curl_url_set(h, CURLUPART_QUERY, pair, CURLU_APPENDQUERY);
        }
        curl_free(k);
        curl_free(v);
        aw__free(pair);
        if (uc != CURLUE_OK) {
            rc = aw_raise(-ENOMEM, "%s %s: cannot add the query (curl: %s)", m, u,
                          curl_url_strerror(uc));
            goto out;
        }
    }
    if ((uc = curl_url_get(h, CURLUPART_URL, &full, 0)) != CURLUE_OK || !(x->url = aw__strdup(full))) {
        rc = aw_raise(-ENOMEM, "out of memory for an HTTP request");
        goto out;
    }
    if ((rc = aw__http_url_shown(h, x)) < 0)
        goto out;
    x->h = h;
    x->refs = 1;
    x->https = !strncasecmp(x->url, "https:", 6);
    h = NULL;
    r->u = x;
    r->url = x->shown ? x->shown : x->url;
    x = NULL;
    if (!pairs)
        aw__http_url_keep(s, u, r->u);
out:
    if (x) {
        aw__free(x->url);
        aw__free(x->shown);
        aw__free(x);
    }
    curl_free(full);
    curl_url_cleanup(h);
    return rc;
}

static int aw__http_setup(aw_http_session_t *s, aw_http_response_t *r,
                          const aw_http_request_t *req, bool fresh) {
    CURL *e = r->easy;
    const char *m = r->method;
    if (fresh) { /* what stays the same for every request of the session */
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, aw__http_write_cb);
        curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, aw__http_header_cb);
        curl_easy_setopt(e, CURLOPT_READFUNCTION, aw__http_read_cb);
        curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, aw__http_open_cb);
        curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, s);
        curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, aw__http_close_cb);
        curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, s);
        curl_easy_setopt(e, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
        /* decoded by us, a chunk per read (see response.c); asked for
         * with a header of ours (AW__HTTP_AE) */
        curl_easy_setopt(e, CURLOPT_HTTP_CONTENT_DECODING, 0L);
        /* a recv per 32 KiB, not per 16 KiB (curl's default): see
         * AW__HTTP_RECV_BUF */
        curl_easy_setopt(e, CURLOPT_BUFFERSIZE, (long)AW__HTTP_RECV_BUF);
        /* a redirect to ftp:// (or any scheme curl knows) is not followed,
         * nor is such a URL asked for, unless the session allows it.
         * Redirects are followed by us (aw__http_follow), not by curl */
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, s->protocols);
        curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, s->protocols);
        if (s->ca_file)
            curl_easy_setopt(e, CURLOPT_CAINFO, s->ca_file);
        if (s->share) {
            curl_easy_setopt(e, CURLOPT_SHARE, s->share);
            curl_easy_setopt(e, CURLOPT_COOKIEFILE, ""); /* the cookie engine, in memory */
            curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, aw__http_cookie_prereq);
            curl_easy_setopt(e, CURLOPT_DEBUGFUNCTION, aw__http_cookie_debug);
        }
    }
    if (fresh) { /* the record is the handle's for good (see aw__http_release) */
        curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)r);
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
        curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
        curl_easy_setopt(e, CURLOPT_READDATA, r);
        if (s->share) {
            curl_easy_setopt(e, CURLOPT_PREREQDATA, r);
            curl_easy_setopt(e, CURLOPT_DEBUGDATA, r);
        }
    }
    if (s->share)
        curl_easy_setopt(e, CURLOPT_VERBOSE, 0L); /* on only while cookies are withheld */
    /* what may differ: set to its value or its default whenever the
     * handle holds another (r->h_*), so that a reused handle needs no
     * curl_easy_reset */
    curl_easy_setopt(e, CURLOPT_URL, r->u->url); /* the string for messages and */
    curl_easy_setopt(e, CURLOPT_CURLU, r->u->h); /* its parts: curl reparses neither */
    bool plain = !strcmp(m, "GET") && !req->body && !req->body_file && !req->body_gen &&
                 !s->nheaders && !(req->headers && req->headers[0]);
    if (!plain || !r->h_plain) {
        r->h_plain = 0; /* until this request's options are all set */
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L); /* also: no upload, no NOBODY */
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, NULL);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, plain ? s->ae : NULL); /* else set below */
    }
    /* HTTPS: wait for a connection being set up in case it multiplexes
     * (HTTP/2) rather than opening one per concurrent request */
    if (r->h_pipewait != r->u->https) {
        r->h_pipewait = r->u->https;
        curl_easy_setopt(e, CURLOPT_PIPEWAIT, (long)r->h_pipewait);
    }
    aw_ns_t ct = req->connect_timeout ? req->connect_timeout : s->opts.connect_timeout;
    aw_ns_t tt = req->timeout ? req->timeout : s->opts.timeout;
    long ct_ms = ct > 0 ? (long)((ct + AW_MS(1) - 1) / AW_MS(1)) : 0L;
    long tt_ms = tt > 0 ? (long)((tt + AW_MS(1) - 1) / AW_MS(1)) : 0L;
    if (r->h_ct != ct_ms)
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, r->h_ct = ct_ms);
    if (r->h_tt != tt_ms)
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, r->h_tt = tt_ms);
    r->timeout_at = tt > 0 ? aw_now() + tt : 0;
    r->read_timeout = req->read_timeout ? req->read_timeout : s->opts.read_timeout;
    if (plain) {
        r->h_plain = 1;
        return 0;
    }

    if (!strcasecmp(m, "HEAD"))
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    else if (!strcasecmp(m, "POST") && !req->body_file)
        curl_easy_setopt(e, CURLOPT_POST, 1L);
    else if (strcasecmp(m, "GET"))
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
    if (req->body_file) {
        r->upload = fopen(req->body_file, "rb");
        if (!r->upload)
            return aw_raise(-errno, "%s %s: cannot open the body file %s: %s", m, r->url,
                            req->body_file, aw_strerror(-errno));
        fseeko(r->upload, 0, SEEK_END);
        curl_off_t size = ftello(r->upload);
        rewind(r->upload);
        curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, size);
        if (strcasecmp(m, "PUT"))
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
    } else if (req->body_gen) {
        r->gen = req->body_gen;
        /* the caller's Content-Length becomes curl's size: the length is
         * sent and no chunking (both at once is the smuggling class, RFC
         * 9112 6.2); the pump holds the generator to it */
        r->up_len = -1;
        for (size_t j = 0; req->headers && req->headers[j]; j++) {
            const char *h = req->headers[j];
            if (!aw__header_named(h, "Content-Length", 14))
                continue;
            char *end;
            errno = 0;
            long long v = strtoll(h + 15, &end, 10);
            while (*end == ' ' || *end == '\t')
                end++;
            if (errno || v < 0 || end == h + 15 || *end)
                return aw_raise(-EINVAL, "%s %s: bad Content-Length header \"%s\"", m, r->url, h);
            r->up_len = v;
        }
        if (!strcasecmp(m, "POST")) {
            curl_easy_setopt(e, CURLOPT_POST, 1L);
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, NULL);
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->up_len);
        } else {
            curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
            curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->up_len);
            if (strcasecmp(m, "PUT"))
                curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
        }
    } else if (req->body || !strcasecmp(m, "POST")) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, req->body ? (const char *)req->body : "");
    }
    /* headers: the session's defaults, unless the request names them
     * too; then ours (AW__HTTP_AE) unless one of them names it */
    bool own_ae = false;
    for (size_t i = 0; i < s->nheaders + (req->headers ? SIZE_MAX / 2 : 0); i++) {
        const char *h;
        if (i < s->nheaders) {
            h = s->headers[i];
            size_t nl = strcspn(h, ":;");
            bool overridden = false;
            for (size_t j = 0; req->headers && req->headers[j]; j++)
                overridden |= aw__header_named(req->headers[j], h, nl);
            if (overridden)
                continue;
        } else if (!(h = req->headers[i - s->nheaders])) {
            break;
        }
        if (req->body_gen && aw__header_named(h, "Content-Length", 14))
            continue; /* curl sends it, from the size set above */
        own_ae |= aw__header_named(h, "Accept-Encoding", 15);
        struct curl_slist *l = curl_slist_append(r->req_headers, h);
        if (!l)
            return aw_raise(-ENOMEM, "out of memory for request headers");
        r->req_headers = l;
    }
    if (req->body_gen || req->body_file) { /* no "Expect: 100-continue" round trip */
        struct curl_slist *l = curl_slist_append(r->req_headers, "Expect:");
        if (!l)
            return aw_raise(-ENOMEM, "out of memory for request headers");
        r->req_headers = l;
    }
    if (!own_ae) {
        struct curl_slist *l = curl_slist_append(r->req_headers, AW__HTTP_AE);
        if (!l)
            return aw_raise(-ENOMEM, "out of memory for request headers");
        r->req_headers = l;
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->req_headers);
    return 0;
}

/* ---- redirects ----
 * Followed by us, not by curl: curl repeats the request as it was told
 * (a PUT answered with 303 stays a PUT; a caller's Content-Length
 * survives a POST turned into a GET, which then hangs). The rules are
 * aiohttp's (and browsers'): 303 turns every method but HEAD into a GET
 * without a body; 301 and 302 change only POST; 307 and 308 keep the
 * method and the body. A dropped body takes the caller's Content-Length,
 * Content-Type and Transfer-Encoding headers with it; a redirect to
 * another origin drops Authorization and Cookie (curl's own jar still
 * applies its cookies) and the URL's credentials, which the same origin
 * keeps (aw__http_next_url). */

static bool aw__http_is_redirect(long status) {
    return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

/* Does following r's redirect turn it into a GET without a body? */
static bool aw__http_to_get(const aw_http_response_t *r) {
    bool head = !strcasecmp(r->method, "HEAD"), post = !strcasecmp(r->method, "POST");
    return (r->status == 303 && !head) || ((r->status == 301 || r->status == 302) && post);
}

bool aw__http_will_follow(const aw_http_response_t *r) {
    if (!r->s || r->s->opts.no_redirects || !aw__http_is_redirect(r->status) ||
        !aw_http_response_header(r, "location"))
        return false;
    /* a generated body cannot be sent twice: its 307/308 is the answer
     * (too many redirects is decided when following: -ELOOP) */
    return aw__http_to_get(r) || !(r->gen || r->up_eof);
}

static bool aw__http_same_origin(const char *a, const char *b) {
    CURLU *ua = curl_url(), *ub = curl_url();
    bool same = false;
    if (ua && ub && !curl_url_set(ua, CURLUPART_URL, a, CURLU_NON_SUPPORT_SCHEME) &&
        !curl_url_set(ub, CURLUPART_URL, b, CURLU_NON_SUPPORT_SCHEME)) {
        same = true;
        static const CURLUPart parts[] = {CURLUPART_SCHEME, CURLUPART_HOST, CURLUPART_PORT};
        for (int i = 0; i < 3 && same; i++) {
            char *x = NULL, *y = NULL;
            curl_url_get(ua, parts[i], &x, CURLU_DEFAULT_PORT);
            curl_url_get(ub, parts[i], &y, CURLU_DEFAULT_PORT);
            same = x && y && !strcasecmp(x, y);
            curl_free(x);
            curl_free(y);
        }
    }
    curl_url_cleanup(ua);
    curl_url_cleanup(ub);
    return same;
}

/* The next hop's URL (malloc'd; NULL: no memory): the Location as curl
 * resolved it against the URL it came from, which keeps that URL's
 * credentials (user:password@) for a relative Location only. On the same
 * origin an absolute Location that names none keeps them too, as
 * curl -L, requests and aiohttp do: without them, the next hop is
 * asked without its Basic Authorization. Another origin gets none. */
static char *aw__http_next_url(const char *loc, const char *from, bool other) {
    if (other)
        return aw__strdup(loc);
    char *user = NULL, *pw = NULL, *own = NULL, *full = NULL, *out = NULL;
    CURLU *hf = curl_url(), *hn = curl_url();
    if (!hf || !hn)
        goto out;
    if (curl_url_set(hf, CURLUPART_URL, from, CURLU_NON_SUPPORT_SCHEME) ||
        curl_url_get(hf, CURLUPART_USER, &user, 0) ||
        curl_url_set(hn, CURLUPART_URL, loc, CURLU_NON_SUPPORT_SCHEME) ||
        curl_url_get(hn, CURLUPART_USER, &own, 0) != CURLUE_NO_USER) {
        out = aw__strdup(loc); /* none to keep, or the Location names its own */
        goto out;
    }
    curl_url_get(hf, CURLUPART_PASSWORD, &pw, 0);
    if (!curl_url_set(hn, CURLUPART_USER, user, 0) &&
        (!pw || !curl_url_set(hn, CURLUPART_PASSWORD, pw, 0)) &&
        !curl_url_get(hn, CURLUPART_URL, &full, 0))
        out = aw__strdup(full);
out:
    curl_free(user);
    curl_free(pw);
    curl_free(own);
    curl_free(full);
    curl_url_cleanup(hf);
    curl_url_cleanup(hn);
    return out;
}

/* The request headers for the next hop (NULL with *fail on no memory). */
static struct curl_slist *aw__http_hop_headers(const aw_http_response_t *r, bool drop_body,
                                               bool other_origin, bool *fail) {
    struct curl_slist *out = NULL;
    *fail = false;
    /* a plain GET's are the session's (see aw__http_setup) */
    const struct curl_slist *from = r->req_headers ? r->req_headers : r->s->ae;
    for (const struct curl_slist *l = from; l; l = l->next) {
        const char *h = l->data;
        if (drop_body && (aw__header_named(h, "Content-Length", 14) ||
                          aw__header_named(h, "Content-Type", 12) ||
                          aw__header_named(h, "Transfer-Encoding", 17)))
            continue;
        if (other_origin && (aw__header_named(h, "Authorization", 13) ||
                             aw__header_named(h, "Cookie", 6)))
            continue;
        struct curl_slist *n = curl_slist_append(out, h);
        if (!n) {
            curl_slist_free_all(out);
            *fail = true;
            return NULL;
        }
        out = n;
    }
    return out;
}

CURLcode aw__http_follow(aw_http_response_t *r) {
    aw_http_session_t *s = r->s;
    CURL *e = r->easy;
    if (r->hops_left <= 0)
        return CURLE_TOO_MANY_REDIRECTS;
    char *loc = NULL, *from = NULL;
    curl_easy_getinfo(e, CURLINFO_REDIRECT_URL, &loc);
    curl_easy_getinfo(e, CURLINFO_EFFECTIVE_URL, &from);
    if (!loc)
        return CURLE_WEIRD_SERVER_REPLY; /* a Location curl could not make a URL of */
    if (r->timeout_at) {
        /* curl's TIMEOUT_MS counts from each transfer's start, and each
         * hop is a transfer of its own: the next one gets only what is
         * left of the request's timeout (http.h: the whole transfer; as
         * curl's own, across redirects) */
        aw_ns_t left = r->timeout_at - aw_now();
        if (left <= 0)
            return CURLE_OPERATION_TIMEDOUT;
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, r->h_tt = (long)((left + AW_MS(1) - 1) / AW_MS(1)));
    }
    bool drop = aw__http_to_get(r), fail;
    bool other = !from || !aw__http_same_origin(from, loc);
    char *next = aw__http_next_url(loc, from, other);
    struct curl_slist *hs = next ? aw__http_hop_headers(r, drop, other, &fail) : NULL;
    if (!next || fail) {
        aw__free(next);
        return CURLE_OUT_OF_MEMORY;
    }
    long c = 0;
    curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &c);
    r->hop_connects += c;
    s->connects += (uint64_t)c;
    aw__http_cookie_restore(r);
    /* finished: its connection is back in the pool. r->in_multi stays
     * set: if the next hop cannot start, aw__http_remove ends the
     * transfer (its curl_multi_remove_handle is then a no-op) */
    curl_multi_remove_handle(s->multi, e);
    curl_easy_setopt(e, CURLOPT_CURLU, NULL); /* the next hop: curl parses the string */
    curl_easy_setopt(e, CURLOPT_URL, next);
    aw__free(next);
    if (drop) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L); /* also: no upload, no body */
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, NULL);
        r->method = "GET";
    } else if (r->upload) {
        rewind(r->upload); /* a body file is sent again (307, 308, or not POST) */
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hs);
    r->h_plain = 0; /* set again for the handle's next request */
    curl_slist_free_all(r->req_headers);
    r->req_headers = hs;
    r->hops_left--;
    /* a fresh response */
    r->status = 0;
    r->hdr.len = r->hdr.off = 0;
    r->nhdr = 0;
    r->redirecting = 0;
    r->paused = 0;
    r->errbuf[0] = 0;
    CURLMcode mc = curl_multi_add_handle(s->multi, e);
    if (mc != CURLM_OK)
        return mc == CURLM_OUT_OF_MEMORY ? CURLE_OUT_OF_MEMORY : CURLE_FAILED_INIT;
    return CURLE_OK;
}

/* A header line (a request's or a session default's) that curl would
 * send as it is, breaking the request: it holds a line break. The index
 * in `hs` of the first one, or -1. Curl checks neither; aiohttp,
 * requests and httpx refuse them: a value built from someone else's
 * input could add headers, or a whole second request whose response the
 * next request on the kept-alive connection would read as its own. */
long aw__http_bad_header(const char *const *hs) {
    for (long i = 0; hs && hs[i]; i++)
        if (strpbrk(hs[i], "\r\n"))
            return i;
    return -1;
}

/* The method and headers can be sent as they are: 0, or -EINVAL
 * (raised; the message names the header, not its value). */
static int aw__http_check(const aw_http_request_t *req, const char *m, const char *url) {
    if (strpbrk(m, " \t\r\n"))
        return aw_raise(-EINVAL, "%s: the method holds a space or a line break", url);
    long i = aw__http_bad_header(req->headers);
    if (i >= 0)
        return aw_raise(-EINVAL, "%s %s: request header \"%.*s\" holds a line break", m, url,
                        (int)strcspn(req->headers[i], ":\r\n"), req->headers[i]);
    return 0;
}

/* A request that does not start: its body generator, borrowed until the
 * response is closed, is closed now (there will be no response). */
static int aw__http_not_started(const aw_http_request_t *req, int rc) {
    if (req->body_gen)
        aw_gen_close(req->body_gen);
    return rc;
}

int aw__http_start(aw_http_session_t *s, const aw_http_request_t *req, size_t limit,
                   aw_event_t *notify, aw_http_response_t **out) {
    *out = NULL;
    if (!s || s->closing)
        return aw__http_not_started(req, aw_raise(-EINVAL, "HTTP request on a closed session"));
    bool fresh = !s->nspare; /* else a closed response, its handle configured */
    aw_http_response_t *r = fresh ? aw__calloc(1, sizeof *r) : s->spare[--s->nspare];
    if (!r)
        return aw__http_not_started(req, aw_raise(-ENOMEM, "out of memory for an HTTP request"));
    r->s = s;
    r->limit = limit;
    r->notify = notify;
    r->method = req->method ? req->method : "GET";
    r->connects = -1;
    r->clen = -1;
    r->raise_status = req->raise_for_status ? req->raise_for_status > 0 : s->opts.raise_for_status;
    r->hops_left = s->opts.no_redirects ? 0 : s->opts.max_redirects ? s->opts.max_redirects : 10;
    if (fresh)
        r->easy = curl_easy_init();
    int rc;
    if (!r->easy || (rc = aw__http_url(s, r->easy, req, r)) < 0 ||
        (rc = aw__http_check(req, r->method, r->url)) < 0) {
        if (!r->easy)
            rc = aw_raise(-ENOMEM, "out of memory for an HTTP request");
        if (fresh && r->easy) { /* never set up: must not join the spares */
            curl_easy_cleanup(r->easy);
            r->easy = NULL;
        }
        goto undo;
    }
    if ((rc = aw__http_setup(s, r, req, fresh)) < 0)
        goto undo;
    if (r->read_timeout) /* the callbacks read the clock only then, too */
        r->last_rx = aw_now();
    s->in_api = 1;
    CURLMcode mc = curl_multi_add_handle(s->multi, r->easy);
    if (mc != CURLM_OK) {
        s->in_api = 0;
        rc = aw_raise(mc == CURLM_OUT_OF_MEMORY ? -ENOMEM : -EIO, "%s %s: %s", r->method, r->url,
                      curl_multi_strerror(mc));
        goto undo;
    }
    r->in_multi = 1;
    r->next = s->live; /* live before curl acts: a failure there ends it too */
    if (s->live)
        s->live->prev = r;
    s->live = r;
    s->active++;
    aw__http_after(s);
    *out = r;
    return 0;
undo:
    r->s = s;
    aw__http_release(r);
    return aw__http_not_started(req, rc);
}

/* Pull the body generator while curl waits for data (in the waiting task:
 * the generator may suspend). Its failure fails the transfer. */
static int aw__http_pump(aw_http_response_t *r) {
    while (r->need_data && r->in_multi && r->gen) {
        void *v;
        int rc = aw_gen_next(r->gen, &v);
        if (rc < 0) {
            aw__http_remove(r, CURLE_ABORTED_BY_CALLBACK);
            return aw_raise(rc, "%s %s: the body generator failed", r->method, r->url);
        }
        if (rc == 0) {
            r->gen = NULL; /* finished: nothing to close */
            if (aw_cancel_pending()) {
                /* It ended while a cancel is unwinding this request (a
                 * generator stops producing when its wait is cancelled):
                 * not the body's end. The request fails with the cancel,
                 * so the server must not get a complete body either: the
                 * transfer is aborted, no terminating chunk (SEMANTICS M1) */
                aw__http_remove(r, CURLE_ABORTED_BY_CALLBACK);
                return aw_checkpoint();
            }
            r->up_eof = 1;
            if (r->up_len >= 0 && r->up_total != r->up_len) {
                aw__http_remove(r, CURLE_ABORTED_BY_CALLBACK);
                return aw_raise(-EINVAL, "%s %s: the body generator ended after %lld of the %lld "
                                "bytes of its Content-Length", r->method, r->url,
                                (long long)r->up_total, (long long)r->up_len);
            }
        } else {
            const aw_http_chunk_t *c = v;
            if (!c || !c->len)
                continue;
            r->up_total += (int64_t)c->len;
            if (r->up_len >= 0 && r->up_total > r->up_len) {
                aw__http_remove(r, CURLE_ABORTED_BY_CALLBACK);
                return aw_raise(-EINVAL, "%s %s: the body generator yielded more than the %lld "
                                "bytes of its Content-Length", r->method, r->url,
                                (long long)r->up_len);
            }
            if (aw__buf_put(&r->up, c->data, c->len) < 0) {
                aw__http_remove(r, CURLE_OUT_OF_MEMORY);
                return aw_raise(-ENOMEM, "out of memory for a request body");
            }
        }
        r->need_data = r->up_paused = 0;
        if (r->in_multi) /* the transfer may have ended while the generator ran (the
                            session closed under it: r->s is NULL): nothing to resume */
            aw__http_repause(r);
    }
    return 0;
}

int aw__http_wait(aw_http_response_t *r, aw_event_t *ev) {
    if (r->need_data) {
        int rc = aw__http_pump(r);
        if (rc < 0 || r->done || r->headers_done)
            return rc;
    }
    aw_event_clear(ev);
    if (!r->read_timeout)
        return aw_event_wait(ev);
    aw_ns_t until = r->last_rx + r->read_timeout;
    if (until > aw_now()) {
        int rc = 0, idle = 0;
        aw_with (aw_scope_t *sc, aw_move_on_at(until)) {
            rc = aw_event_wait(ev);
            idle = rc == -ECANCELED && aw_scope_expired(sc);
        }
        if (aw_cancel_pending())
            return aw_checkpoint();
        if (!idle || r->last_rx + r->read_timeout > aw_now())
            return 0; /* progress (or a late byte): the caller looks again */
    }
    aw_http_session_t *s = r->s;
    if (s)
        aw__http_remove(r, CURLE_OPERATION_TIMEDOUT);
    return aw_raise(-ETIMEDOUT, "%s %s: no data for %lld ms (read_timeout)", r->method, r->url,
                    (long long)(r->read_timeout / AW_MS(1)));
}

/* Wait until r's headers are in (or the transfer ended). A transfer that
 * failed after the headers arrived (a body cut short, a reset) is still a
 * response: its error comes from the read, as http.h says. */
static int aw__http_wait_headers(aw_http_response_t *r) {
    while (!r->headers_done && !r->done) {
        int rc = aw__http_wait(r, &r->ev);
        if (rc < 0)
            return rc;
    }
    if (!r->headers_done && r->result != CURLE_OK)
        return aw__http_fail(r);
    if (r->raise_status && r->status >= 400) {
        aw_raise(-EREMOTEIO, "%s %s: HTTP status %ld", r->method, r->url, r->status);
        aw_err_set_origin(AW_ORIGIN_HTTP, (int)r->status, NULL);
        return -EREMOTEIO;
    }
    return 0;
}

int aw_http_request(aw_http_session_t *s, const aw_http_request_t *req, aw_http_response_t **out) {
    aw_http_response_t *r;
    int rc = aw__http_start(s, req, 0, NULL, &r);
    if (rc < 0)
        return rc;
    rc = aw__http_wait_headers(r);
    if (rc < 0) {
        aw_http_response_close(r); /* enter is atomic: nothing half-acquired */
        return rc;
    }
    *out = r;
    return 0;
}
