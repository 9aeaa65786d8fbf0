/* cookie.c: RFC 6265's path-match on top of libcurl's cookie jar.
 *
 * libcurl 7.88 matches a cookie's path after dropping one trailing '/'
 * (its "sanitized" path), so a cookie with Path=/a/b/ is also sent to
 * /a/b, where RFC 6265 5.1.4 says no. Its jar keeps the path as it was
 * given, though (the Netscape lines of CURLINFO_COOKIELIST), so the
 * session corrects that one case and leaves every other rule (domain,
 * secure, expiry, order, limits) to curl. Curl stays the only cookie
 * parser: we only split its own tab-separated lines.
 *
 * - Withholding. Right before a transfer's request is built
 *   (CURLOPT_PREREQFUNCTION), the cookies whose path is the request's
 *   path plus "/" leave the jar (re-added already expired: curl drops them
 *   when it picks the cookies to send); once the request is built (its
 *   CURLINFO_HEADER_OUT, through the debug callback, switched on for that
 *   moment only) they are put back as they were. Both happen inside one
 *   curl call for that transfer, between which curl runs no other
 *   transfer's request and stores no Set-Cookie, so no other request sees
 *   the jar without them. Each hop of a redirect (we follow them, one
 *   transfer per hop: request.c) is withheld for on its own. A transfer
 *   that ends before its request went out puts them back when it is
 *   removed (aw__http_cookie_restore).
 * - Default paths. Curl stores a cookie without a Path attribute with the
 *   request's directory and its '/' ("/a/" for /a/x), where RFC 6265
 *   5.1.4's default-path is "/a", which matches /a. Such a cookie is
 *   rewritten in the jar to "/a" as soon as curl stored it (our header
 *   callback runs after curl's own), so that a jar path ending in '/' is
 *   always a Path attribute's; "/a/" and "/a" are one cookie to curl (the
 *   same sanitized path), so the rewrite replaces it in place. Whether the
 *   header had a Path (and a Domain) attribute is asked of curl's own
 *   parser: the line goes to a scratch jar with sentinel attributes ahead
 *   of the cookie's own, which override them.
 *
 * A newer libcurl that stores only the sanitized path (curl 8 does) lists
 * "/a/b" for Path=/a/b/: nothing is withheld then, as before this file;
 * tests/http/cookie.c notices.
 *
 * Cost, for sessions with cookies only: the jar listed once per transfer
 * (O(cookies)), a scratch parse and a listing per Set-Cookie header. */
#include "http.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define AW__NO_DOMAIN "aw-no-domain.invalid"
#define AW__NO_PATH "aw-no-path"

enum { F_DOMAIN, F_TAIL, F_PATH, F_SECURE, F_EXPIRES, F_NAME, F_VALUE, F_N };

/* Split a copy of one of curl's Netscape lines into its 7 fields (the
 * value may be empty). Returns the copy (free it), or NULL if the line is
 * not 7 fields or there is no memory (*oom then). */
static char *aw__cookie_split(const char *line, char *f[F_N], bool *oom) {
    char *c = aw__strdup(line);
    *oom = !c;
    if (!c)
        return NULL;
    char *p = c;
    for (int i = 0; i < F_N; i++) {
        f[i] = p;
        char *t = strchr(p, '\t');
        if (i == F_N - 1 ? t != NULL : !t) {
            aw__free(c);
            return NULL;
        }
        if (t) {
            *t = 0;
            p = t + 1;
        }
    }
    return c;
}

/* The line with field `which` replaced by `by` (malloc'd; NULL: no memory). */
static char *aw__cookie_with(char *f[F_N], int which, const char *by) {
    size_t n = 1;
    for (int i = 0; i < F_N; i++)
        n += strlen(i == which ? by : f[i]) + 1;
    char *out = aw__malloc(n), *p = out;
    for (int i = 0; out && i < F_N; i++)
        p += sprintf(p, i ? "\t%s" : "%s", i == which ? by : f[i]);
    return out;
}

/* The path of the URL curl is at (what its path-match sees), malloc'd:
 * curl's own parse, without the query; "/" when empty. */
static char *aw__cookie_url_part(CURL *e, CURLUPart part) {
    char *url = NULL, *v = NULL, *out = NULL;
    curl_easy_getinfo(e, CURLINFO_EFFECTIVE_URL, &url);
    CURLU *h = curl_url();
    if (h && url && !curl_url_set(h, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) &&
        !curl_url_get(h, part, &v, 0))
        out = aw__strdup(v);
    curl_free(v);
    curl_url_cleanup(h);
    return out;
}

void aw__http_cookie_restore(aw_http_response_t *r) {
    if (!r->withheld)
        return;
    for (struct curl_slist *l = r->withheld; l; l = l->next)
        curl_easy_setopt(r->easy, CURLOPT_COOKIELIST, l->data);
    curl_slist_free_all(r->withheld);
    r->withheld = NULL;
    curl_easy_setopt(r->easy, CURLOPT_VERBOSE, 0L);
}

int aw__http_cookie_debug(CURL *e, curl_infotype type, char *p, size_t n, void *ud) {
    (void)e, (void)p, (void)n;
    aw_http_response_t *r = ud;
    if (type == CURLINFO_HEADER_OUT)
        aw__http_cookie_restore(r); /* the request, and its Cookie line, are built */
    return 0;
}

int aw__http_cookie_prereq(void *ud, char *ip, char *lip, int port, int lport) {
    (void)ip, (void)lip, (void)port, (void)lport;
    aw_http_response_t *r = ud;
    aw__http_cookie_restore(r); /* a retry on a fresh connection: withheld again below */
    struct curl_slist *jar = NULL;
    curl_easy_getinfo(r->easy, CURLINFO_COOKIELIST, &jar);
    if (!jar) /* empty (or no memory to list it: curl's own rule then) */
        return CURL_PREREQFUNC_OK;
    char *path = aw__cookie_url_part(r->easy, CURLUPART_PATH);
    bool oom = !path;
    size_t pl = path ? strlen(path) : 0;
    for (struct curl_slist *l = jar; l && !oom; l = l->next) {
        char *f[F_N], *c = aw__cookie_split(l->data, f, &oom);
        if (!c)
            continue;
        /* RFC path-match refuses it, curl's accepts it: P + "/" */
        if (strlen(f[F_PATH]) == pl + 1 && !strncmp(f[F_PATH], path, pl) &&
            f[F_PATH][pl] == '/') {
            char *gone = aw__cookie_with(f, F_EXPIRES, "1");
            struct curl_slist *w = gone ? curl_slist_append(r->withheld, l->data) : NULL;
            if (w) {
                r->withheld = w;
                curl_easy_setopt(r->easy, CURLOPT_COOKIELIST, gone);
            }
            oom = !w;
            aw__free(gone);
        }
        aw__free(c);
    }
    curl_slist_free_all(jar);
    aw__free(path);
    if (r->withheld) /* for the debug callback's HEADER_OUT */
        curl_easy_setopt(r->easy, CURLOPT_VERBOSE, 1L);
    if (oom) {
        aw__http_cookie_restore(r);
        r->own_error = -ENOMEM;
        return CURL_PREREQFUNC_ABORT;
    }
    return CURL_PREREQFUNC_OK;
}

/* Is line (a jar entry) the cookie `name` of `domain` (no leading '.'),
 * stored at path `dir`? */
static bool aw__cookie_is(char *f[F_N], const char *name, const char *domain, const char *dir) {
    const char *d = f[F_DOMAIN];
    if (!strncmp(d, "#HttpOnly_", 10))
        d += 10;
    d += *d == '.';
    return !strcmp(f[F_NAME], name) && !strcmp(f[F_PATH], dir) && !strcasecmp(d, domain);
}

/* The scratch jar's verdict on one Set-Cookie value: its name and domain
 * (NULL: no Domain attribute) as curl parsed them, in *name and *domain
 * (one malloc'd block at *block), if it had no Path attribute. Returns 1
 * (no Path), 0 (a Path, or curl refused the cookie), -ENOMEM. */
static int aw__cookie_no_path(aw_http_session_t *s, const char *v, size_t n, char **block,
                              char **name, char **domain) {
    *block = NULL;
    if (!s->cookie_scratch && !(s->cookie_scratch = curl_easy_init()))
        return -ENOMEM;
    const char *semi = memchr(v, ';', n); /* curl's value ends there too */
    size_t head = semi ? (size_t)(semi - v) : n;
    static const char pre[] = "Set-Cookie: ", mid[] = "; domain=" AW__NO_DOMAIN "; path=" AW__NO_PATH;
    char *line = aw__malloc(sizeof pre + sizeof mid + n);
    if (!line)
        return -ENOMEM;
    sprintf(line, "%s%.*s%s%.*s", pre, (int)head, v, mid, (int)(n - head), v + head);
    CURL *x = s->cookie_scratch;
    CURLcode cc = curl_easy_setopt(x, CURLOPT_COOKIELIST, line);
    aw__free(line);
    struct curl_slist *got = NULL;
    curl_easy_getinfo(x, CURLINFO_COOKIELIST, &got);
    curl_easy_setopt(x, CURLOPT_COOKIELIST, "ALL");
    int rc = cc == CURLE_OUT_OF_MEMORY ? -ENOMEM : 0;
    char *f[F_N];
    bool oom = false;
    char *c = got ? aw__cookie_split(got->data, f, &oom) : NULL;
    curl_slist_free_all(got);
    if (oom)
        return -ENOMEM;
    if (c && !strcmp(f[F_PATH], AW__NO_PATH)) {
        char *d = f[F_DOMAIN] + (f[F_DOMAIN][0] == '.');
        *block = c;
        *name = f[F_NAME];
        *domain = strcmp(d, AW__NO_DOMAIN) ? d : NULL;
        return 1;
    }
    aw__free(c);
    return rc;
}

int aw__http_cookie_seen(aw_http_response_t *r, const char *v, size_t n) {
    char *block, *name, *domain, *dir = NULL, *host = NULL;
    int rc = aw__cookie_no_path(r->s, v, n, &block, &name, &domain);
    if (rc <= 0)
        return rc;
    /* curl's default path: the URL's path up to its last '/', included */
    if (!(dir = aw__cookie_url_part(r->easy, CURLUPART_PATH)) ||
        (!domain && !(host = aw__cookie_url_part(r->easy, CURLUPART_HOST)))) {
        rc = -ENOMEM;
        goto out;
    }
    rc = 0;
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        goto out; /* "/": the same path for curl and the RFC */
    slash[1] = 0;
    if (host && host[0] == '[') { /* curl's host name of an IPv6 address has no brackets */
        memmove(host, host + 1, strlen(host));
        host[strcspn(host, "]")] = 0;
    }
    struct curl_slist *jar = NULL;
    curl_easy_getinfo(r->easy, CURLINFO_COOKIELIST, &jar);
    for (struct curl_slist *l = jar; l; l = l->next) {
        char *f[F_N];
        bool oom;
        char *c = aw__cookie_split(l->data, f, &oom);
        if (!c) {
            rc = oom ? -ENOMEM : rc;
            continue;
        }
        if (aw__cookie_is(f, name, domain ? domain : host, dir)) {
            slash[0] = 0; /* RFC 6265 5.1.4: the directory without its '/' */
            char *fixed = aw__cookie_with(f, F_PATH, dir);
            slash[0] = '/';
            if (fixed)
                curl_easy_setopt(r->easy, CURLOPT_COOKIELIST, fixed);
            else
                rc = -ENOMEM;
            aw__free(fixed);
        }
        aw__free(c);
    }
    curl_slist_free_all(jar);
out:
    aw__free(block);
    aw__free(dir);
    aw__free(host);
    return rc;
}
