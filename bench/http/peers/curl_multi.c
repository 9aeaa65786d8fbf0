/* curl_multi.c: the physical limit of the dependency. N GETs of one URL,
 * C at a time, keep-alive, with libcurl's multi interface and its own
 * poll loop (curl_multi_poll), no event library. Prints rps=<requests/s>.
 *
 * curl_multi URL N C        bodies counted and dropped: the floor
 * curl_multi URL N C same   awith's exchange: its request (Accept-Encoding:
 *                           gzip, deflate; curl decodes nothing) and each
 *                           body kept whole in memory, in a buffer of its
 *                           handle reused for the next body, as text()
 *                           keeps it in a buffer the session reuses */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static size_t sink(char *p, size_t sz, size_t n, void *ud) {
    (void)p;
    *(size_t *)ud += sz * n;
    return sz * n;
}

typedef struct {
    char *p;
    size_t len, cap;
} body_t;

static size_t keep(char *p, size_t sz, size_t n, void *ud) {
    body_t *b = ud;
    size_t k = sz * n;
    if (b->len + k > b->cap) {
        size_t cap = b->cap ? b->cap : 16384;
        while (cap < b->len + k)
            cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q)
            return 0;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, k);
    b->len += k;
    return k;
}

int main(int argc, char **argv) {
    if (argc < 4)
        return 2;
    const char *url = argv[1];
    long n = atol(argv[2]), c = atol(argv[3]);
    int same = argc > 4 && !strcmp(argv[4], "same");
    body_t *bodies = calloc((size_t)c, sizeof *bodies);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURLM *m = curl_multi_init();
    curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, c);
    size_t bytes = 0;
    long started = 0, done = 0;
    struct timespec t0, t1, c0, c1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
    for (long i = 0; i < c && started < n; i++, started++) {
        CURL *e = curl_easy_init();
        curl_easy_setopt(e, CURLOPT_URL, url);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, same ? keep : sink);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, same ? (void *)&bodies[i] : (void *)&bytes);
        curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)&bodies[i]);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        if (same) {
            curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "gzip, deflate");
            curl_easy_setopt(e, CURLOPT_HTTP_CONTENT_DECODING, 0L);
        }
        curl_multi_add_handle(m, e);
    }
    int running = 1;
    while (done < n) {
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            CURL *e = msg->easy_handle;
            if (msg->data.result != CURLE_OK) {
                fprintf(stderr, "curl: %s\n", curl_easy_strerror(msg->data.result));
                return 1;
            }
            done++;
            body_t *b;
            curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&b);
            bytes += b->len; /* same: the body is complete in b */
            b->len = 0;
            curl_multi_remove_handle(m, e);
            if (started < n) {
                started++;
                curl_multi_add_handle(m, e); /* same options: the next GET */
            } else {
                curl_easy_cleanup(e);
            }
        }
        if (done < n)
            curl_multi_poll(m, NULL, 0, 1000, NULL);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    double cpu = (double)(c1.tv_sec - c0.tv_sec) * 1e9 + (double)(c1.tv_nsec - c0.tv_nsec);
    printf("rps=%.1f cpu_ns=%.0f bytes=%zu\n", (double)n / s, cpu / (double)n, bytes);
    curl_multi_cleanup(m);
    for (long i = 0; i < c; i++)
        free(bodies[i].p);
    free(bodies);
    curl_global_cleanup();
    return 0;
}
