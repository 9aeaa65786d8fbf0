/* examples/generators.c -- seed 004: an async context manager, an async
 * generator, and the two combined.
 *
 *   class AsyncContextManager:             # sleeps in enter and exit
 *       async def __aenter__(self): print("Entering context"); await asyncio.sleep(1); return self
 *       async def __aexit__(self, *exc): print("Exiting context"); await asyncio.sleep(1)
 *
 *   async def async_generator():
 *       for i in range(5):
 *           await asyncio.sleep(1)
 *           yield i
 *   async for value in async_generator(): print(value)
 *
 *   async def async_fetch(urls):           # a manager per item
 *       for url in urls:
 *           async with AsyncHTTPClient(url) as response:
 *               yield await response.text()
 *
 * aw_gen() runs a generator on its own coroutine for the consuming task;
 * aw_for is `async for`. Leaving the loop by any way closes the generator
 * at once, in the consumer's task: a `break` after the first page closes
 * the client still open inside the generator before the next statement
 * (Python would leave that to the garbage collector). The HTTP client is
 * simulated (the net layer has the real one); the sleeps are 10 ms. */
#include <awith.h>
#include <stdio.h>

#include "examples.h"

#define GN_IO_MS 10 /* the seed: asyncio.sleep(1) */

static int gn_enter(void *self, void **out) {
    puts("Entering context");
    *out = self;
    return aw_sleep_ms(GN_IO_MS);
}

static int gn_exit(void *self, const aw_err_t *err) {
    puts("Exiting context");
    aw_sleep_ms(GN_IO_MS);
    return 0;
}

static const aw_cm_type_t gn_type = {.name = "AsyncContextManager", .enter = gn_enter, .exit = gn_exit};

static int async_generator(aw_gen_t *g, void *arg) {
    for (int i = 0; i < 5; i++) {
        if (aw_sleep_ms(GN_IO_MS) < 0)
            return aw_status();
        if (aw_gen_yield(g, &i) < 0)
            break; /* the consumer left */
    }
    return 0;
}

/* A simulated HTTP client: enter "sends the request", exit releases. */
typedef struct gn_client {
    const char *url;
    char text[64];
} gn_client;

static int gn_client_enter(void *self, void **out) {
    gn_client *c = self;
    if (aw_sleep_ms(GN_IO_MS) < 0) /* the request */
        return aw_status();
    snprintf(c->text, sizeof c->text, "<html>%s</html>", c->url + 7);
    *out = c;
    return 0;
}

static int gn_client_exit(void *self, const aw_err_t *err) {
    gn_client *c = self;
    printf("released %s\n", c->url);
    return 0;
}

static const aw_cm_type_t gn_client_type = {
    .name = "AsyncHTTPClient", .enter = gn_client_enter, .exit = gn_client_exit};

static int async_fetch(aw_gen_t *g, void *arg) {
    const char *const *urls = arg;
    int rc = 0;
    for (int i = 0; urls[i] && rc == 0; i++) {
        aw_with (gn_client *response, aw_cm_temp(&gn_client_type, (gn_client){urls[i]})) {
            rc = aw_gen_yield(g, response->text); /* yield await response.text() */
        }
        if (aw_status() < 0)
            return aw_status();
    }
    return 0;
}

static const char *const gn_urls[] = {"http://example.com", "http://example.org",
                                      "http://example.net", NULL};

int example_generators(void *arg) {
    aw_with (aw_cm(&gn_type, NULL)) {
        puts("Inside context");
    }
    if (aw_status() < 0)
        return aw_status();

    aw_for (int *value, aw_gen(async_generator, NULL)) {
        printf("%d\n", *value);
    }
    if (aw_status() < 0)
        return aw_status();

    aw_for (const char *data, aw_gen(async_fetch, (void *)gn_urls)) {
        puts(data);
    }
    if (aw_status() < 0)
        return aw_status();

    /* leave early: the open client is released before the next line */
    aw_for (const char *data, aw_gen(async_fetch, (void *)gn_urls)) {
        puts(data);
        break;
    }
    puts("after the loop");
    return aw_status();
}

#ifndef AW_EXAMPLE_NO_MAIN
int main(void) { return aw_main(example_generators, NULL) < 0; }
#endif
