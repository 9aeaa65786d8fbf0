/* examples/embed_libuv.c: awith inside a libuv program.
 *
 * The program is libuv's: uv_run owns the thread. awith's loop is one
 * more thing libuv watches, as a libcurl multi handle would be:
 *   - a uv_poll on aw_loop_backend_fd(): readable when a task's fd is
 *     ready, a thread-pool job finished or another thread posted;
 *   - a one-shot uv_timer set to aw_loop_next_timeout() (rounded up to
 *     ms), for the tasks' sleeps and deadlines;
 * and each of them calls aw_loop_run_once(), a step that never blocks.
 * When it returns 0 the main task is done: the program closes the awith
 * loop (which reports as aw_main would) and lets libuv's loop end.
 *
 * Meanwhile libuv goes on with its own work: a repeating timer ticks, and
 * at its third tick writes a message into a pipe that an awith task is
 * waiting on. The output is checked by `meson test example/embed_libuv`.
 *
 * Build: cc embed_libuv.c $(pkg-config --cflags --libs awith libuv) */
#include <awith.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

static aw_loop_t *aw;           /* the embedded awith loop */
static uv_poll_t aw_poll;       /* libuv watches its backend fd */
static uv_timer_t aw_timer;     /* and honours its next timeout */
static uv_timer_t ticker;       /* libuv's own work */
static int ticks, pipefd[2], status;

/* ---- the awith side: ordinary tasks ---- */

static void pool_work(void *arg) { *(int *)arg = 6 * 7; } /* a blocking call */

static int awith_main(void *arg) {
    printf("awith task: waiting for a message from libuv\n");
    char buf[64];
    ssize_t n;
    while ((n = read(pipefd[0], buf, sizeof buf - 1)) < 0) {
        int rc = aw_fd_wait(pipefd[0], AW_READ); /* suspends; libuv runs on */
        if (rc < 0)
            return rc;
    }
    buf[n] = '\0';
    printf("awith task: got \"%s\"\n", buf);

    int before = ticks;
    aw_sleep(AW_MS(50));
    printf("awith task: slept 50 ms while libuv kept ticking: %s\n",
           ticks > before ? "yes" : "no");

    int v = 0;
    int rc = aw_to_thread(pool_work, &v, NULL);
    if (rc < 0)
        return rc;
    printf("awith task: the thread pool says %d\n", v);
    return 0;
}

/* ---- the glue: a few lines any libuv program can copy ---- */

static void awith_step(void);
static void on_aw_timer(uv_timer_t *t) { awith_step(); }
static void on_aw_poll(uv_poll_t *p, int st, int events) { awith_step(); }

static void awith_step(void) {
    int rc = aw_loop_run_once(aw);
    if (rc == 1) {
        aw_ns_t ns = aw_loop_next_timeout(aw);
        if (ns < 0)
            uv_timer_stop(&aw_timer); /* no timer: the fd alone wakes us */
        else
            uv_timer_start(&aw_timer, on_aw_timer, (uint64_t)((ns + 999999) / 1000000), 0);
        return;
    }
    /* 0: the main task is done (or <0: awith cannot go on): close awith,
     * which cancels what is left and reports, and stop watching it */
    status = aw_loop_close(aw);
    aw = NULL;
    uv_poll_stop(&aw_poll);
    uv_close((uv_handle_t *)&aw_poll, NULL);
    uv_close((uv_handle_t *)&aw_timer, NULL);
    uv_timer_stop(&ticker);
    uv_close((uv_handle_t *)&ticker, NULL);
}

/* ---- libuv's own work ---- */

static void on_tick(uv_timer_t *t) {
    if (++ticks == 3) {
        const char *msg = "hello from libuv";
        printf("libuv timer: sending \"%s\"\n", msg);
        fflush(stdout);
        ssize_t w = write(pipefd[1], msg, strlen(msg));
        (void)w;
    }
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (pipe2(pipefd, O_NONBLOCK | O_CLOEXEC) < 0)
        return 1;
    uv_loop_t *uv = uv_default_loop();

    if (aw_loop_new(NULL, &aw) < 0 || aw_loop_start(aw, awith_main, NULL) < 0)
        return 1;
    uv_poll_init(uv, &aw_poll, aw_loop_backend_fd(aw));
    uv_poll_start(&aw_poll, UV_READABLE, on_aw_poll);
    uv_timer_init(uv, &aw_timer);
    uv_timer_start(&aw_timer, on_aw_timer, 0, 0); /* the first step: start the task */

    uv_timer_init(uv, &ticker);
    uv_timer_start(&ticker, on_tick, 10, 10);

    uv_run(uv, UV_RUN_DEFAULT);
    printf("main task returned %d; libuv's loop ended\n", status);
    uv_loop_close(uv);
    close(pipefd[0]);
    close(pipefd[1]);
    return status == 0 ? 0 : 1;
}
