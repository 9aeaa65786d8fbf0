/* examples/http/http_demo.h: the seeds' aiohttp examples (001, 004) on
 * awith's HTTP session, against a tiny HTTP server the examples start in
 * their own loop (127.0.0.1, a free port; plain non-blocking sockets and
 * aw_fd_wait). Each is a task for aw_main(); aw_example_http_demo() runs
 * them all (it makes its own loops) and returns 0 or a negative code. */
#ifndef AWITH_EXAMPLE_HTTP_DEMO_H
#define AWITH_EXAMPLE_HTTP_DEMO_H

int example_http_get(void *arg);    /* seed 001: session.get(url) -> resp.text() */
int example_http_fetch(void *arg);  /* seed 004: AsyncHTTPClient + async_fetch(urls); fetch-many with progress */
int aw_example_http_demo(void);

#endif
