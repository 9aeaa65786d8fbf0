/* examples/net/timing.c -- the seeds' "timer and instrumentation" manager
 * (seed 003's list of uses) with the deadlines of seed 002 section 9, on
 * a real resource: requests to a TCP server that answers after a delay.
 *
 *   @asynccontextmanager
 *   async def timed(stats):
 *       start = time.monotonic()
 *       try:
 *           yield
 *       finally:
 *           stats.add(time.monotonic() - start)
 *
 *   async with timed(rtt), asyncio.timeout(0.1):
 *       reader, writer = await asyncio.open_connection(host, port)
 *       ...
 *
 * aw_timed (awith/timing.h) measures each block from its enter to its
 * exit on every way out, a deadline included: a request cut short by
 * aw_fail_after still counts, as a failure, with the time it took. The
 * connection is opened inside the measured block, so the figures are
 * whole round trips (connect, request, answer, close).
 *
 * Four parts: requests well within their deadline; one past it
 * (aw_fail_after: -ETIMEDOUT, caught); the same with aw_move_on_after
 * (left quietly); and one absolute deadline (aw_fail_at) over a batch,
 * which bounds the batch, not each request. Then the statistics.
 *
 * The server is local (127.0.0.1, a free port), run by the same program;
 * a request is a line "<ms>\n" and the answer comes after that delay. */
#include <awith.h>
#include <awith/server.h>
#include <awith/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net_demo.h"

#define DEADLINE_MS 100 /* the seed: asyncio.timeout(2) */
#define SLOW_MS 60000   /* a request that would take a minute */

/* The server side: wait as long as the request says, then answer. */
static int slow_echo(aw_stream_t *s, void *arg) {
    char line[32];
    ssize_t n;
    while ((n = aw_stream_read_line(s, line, sizeof line - 1)) > 0) {
        line[n] = '\0';
        if (aw_sleep_ms(atoi(line)) < 0) /* the server is stopping */
            return aw_status();
        if (aw_stream_write(s, line, (size_t)n) < 0)
            return aw_status();
    }
    return (int)n;
}

/* The report hook: one line per measured block. */
static void report(const aw_timing_t *t, aw_ns_t elapsed, const aw_err_t *err, void *arg) {
    printf("   %s #%llu: %.1f ms (%s)\n", t->name, (unsigned long long)t->count,
           (double)elapsed / 1e6, err ? aw_err_name(err->code) : "ok");
}

static aw_timing_t rtt = AW_TIMING_INIT("request", report, NULL);

/* One request on its own connection, measured. Returns 0 or -errno
 * (pending), whatever ended it: the server, a deadline around it. */
static int request(int port, int delay_ms) {
    aw_with (aw_timed(&rtt))
    aw_with (aw_stream_t *s, aw_tcp_client("127.0.0.1", port)) {
        char line[32];
        int n = snprintf(line, sizeof line, "%d\n", delay_ms);
        if (aw_stream_write(s, line, (size_t)n) < 0 ||
            aw_stream_read_line(s, line, sizeof line) < 0)
            aw_leave();
    }
    return aw_status();
}

static int client(int port) {
    /* 1. well within the deadline (a loaded machine may still miss it:
     * the outcome is printed, not assumed) */
    puts("requests of 10, 20 and 30 ms, each with a 100 ms deadline:");
    for (int ms = 10; ms <= 30; ms += 10) {
        aw_with (aw_fail_after(AW_MS(DEADLINE_MS)))
            request(port, ms);
        if (aw_status() < 0) {
            printf("   %d ms: %s\n", ms, aw_err_name(aw_status()));
            aw_err_clear();
        }
    }

    /* 2. past the deadline: the block fails with -ETIMEDOUT, the
     * connection is closed by its exit, the timing still recorded. The
     * measured block, inside the deadline's scope, sees what unwinds it
     * there: the cancel (ECANCELED in the report); the scope turns it
     * into -ETIMEDOUT as it is left. */
    puts("a request of a minute, with a 100 ms deadline (fail_after):");
    aw_with (aw_fail_after(AW_MS(DEADLINE_MS)))
        request(port, SLOW_MS);
    if (aw_status() == -ETIMEDOUT) { /* except asyncio.TimeoutError: */
        puts("   caught the timeout");
        aw_err_clear();
    }

    /* 3. the quiet variant: left at the deadline, no error */
    puts("the same with move_on_after:");
    bool expired = false;
    aw_with (aw_scope_t *scope, aw_move_on_after(AW_MS(DEADLINE_MS))) {
        request(port, SLOW_MS);
        expired = aw_scope_expired(scope);
    }
    printf("   moved on: %s, status %s\n", expired ? "yes" : "no", aw_err_name(aw_status()));

    /* 4. one deadline for a batch: requests of 100 ms under a 250 ms
     * deadline; the third cannot finish before it */
    puts("requests of 100 ms under one 250 ms deadline (fail_at):");
    int done = 0;
    aw_with (aw_fail_at(aw_now() + AW_MS(250)))
        for (int i = 0; i < 5 && request(port, 100) == 0; i++)
            done++;
    printf("   %d done, then %s\n", done, aw_err_name(aw_status()));
    if (aw_status() == -ETIMEDOUT)
        aw_err_clear();
    return aw_status();
}

int example_timing(void *arg) {
    int rc = 0;
    aw_with (aw_listener_t *l, aw_tcp_listener("127.0.0.1", 0, NULL))
    aw_with (aw_server(l, slow_echo, NULL))
        rc = client(aw_listener_port(l));
    if (rc < 0 || aw_status() < 0)
        return aw_status();
    printf("%llu requests, %llu failed; min %.1f ms, mean %.1f ms, max %.1f ms\n",
           (unsigned long long)rtt.count, (unsigned long long)rtt.failed, (double)rtt.min / 1e6,
           (double)rtt.total / 1e6 / (double)(rtt.count ? rtt.count : 1), (double)rtt.max / 1e6);
    /* what holds whatever the machine's load: every block was measured
     * once, and the two cut at a minute's request failed */
    if (rtt.count < 6 || rtt.failed < 3 || rtt.max < AW_MS(DEADLINE_MS))
        return aw_raise(-EPROTO, "timing: %llu measured, %llu failed, max %lld ns",
                        (unsigned long long)rtt.count, (unsigned long long)rtt.failed,
                        (long long)rtt.max);
    return 0;
}

#ifndef AW_EXAMPLE_NO_MAIN
int main(void) { return aw_main(example_timing, NULL) < 0; }
#endif
