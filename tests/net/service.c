/* A small service written the way a user writes one: a TCP server whose
 * handlers take a semaphore, hold a lock, and run under a
 * per-request deadline; shutdown on SIGTERM (cancel_on_signals) with
 * requests in flight. Covers A1 (every handler's exits run on every way
 * out), G1 (a request's deadline fails only that request, a slow reader
 * included), A8 (the server's block failing keeps its error), atomic
 * file writes cut by SIGTERM, and the
 * contracts of awith/server.h and awith/signal.h. */
#include "netutil.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static aw_sem_t sem;
static aw_lock_t lock = AW_LOCK_INIT("db");
static int started, exits, in_sem, max_in_sem;
static int fds0;

/* A request: a line; the reply is the line, after a short hold of the
 * semaphore and the lock. "slow" never finishes (the request's deadline
 * cuts it), "boom" fails. */
static int handler(aw_stream_t *s, void *arg) {
    char line[64];
    ssize_t n;
    started++;
    aw_with (aw_sem_held(&sem)) {
        if (++in_sem > max_in_sem)
            max_in_sem = in_sem;
        aw_with (aw_fail_after(AW_MS(200))) {
            if ((n = aw_stream_read_line(s, line, sizeof line)) <= 0)
                aw_leave();
            aw_with (aw_locked(&lock))
                aw_sleep(AW_MS(2));
            if (!strncmp(line, "slow", 4))
                aw_sleep(AW_NEVER);
            if (!strncmp(line, "boom", 4)) {
                aw_fail(-EIO, "handler: boom");
            }
            aw_stream_write(s, line, (size_t)n);
        }
        in_sem--;
    }
    exits++;
    return aw_status();
}

typedef struct {
    int port;
    const char *req;
    int ok;
} cl_t;

static int client(void *arg) {
    cl_t *c = arg;
    aw_with (aw_stream_t *s, aw_tcp_client("127.0.0.1", c->port)) {
        char in[64];
        size_t n = strlen(c->req);
        if (aw_stream_write(s, c->req, n) < 0)
            aw_leave();
        ssize_t r = aw_stream_read_line(s, in, sizeof in);
        c->ok = r == (ssize_t)n && !memcmp(in, c->req, n);
    }
    aw_err_clear();
    return 0;
}

/* A burst of 12 clients over a semaphore of 3, some slow, some failing:
 * every request ends, the limit held, exits ran, the good ones answered. */
static int t_burst(void *arg) {
    static cl_t cl[12];
    sem = (aw_sem_t)AW_SEM_INIT("slots", 3, 3);
    aw_with (aw_listener_t *l, aw_tcp_listener("127.0.0.1", 0, NULL))
    aw_with (aw_server_t *srv, aw_server(l, handler, NULL)) {
        aw_with (aw_group_t *g, aw_group())
            for (int i = 0; i < 12; i++) {
                cl[i] = (cl_t){.port = aw_listener_port(l),
                               .req = i % 4 == 1 ? "slow\n" : i % 4 == 2 ? "boom\n" : "hello\n"};
                aw_spawn(g, client, &cl[i], NULL);
            }
        cr_assert_eq(aw_status(), 0, "%s", msg_now());
        wait_until(srv->active == 0);
        cr_assert_eq(srv->accepted, 12);
        cr_assert_eq(srv->failed, 6, "slow ones time out, boom ones fail: %zu", srv->failed);
    }
    cr_assert_eq(aw_status(), 0, "%s", msg_now());
    for (int i = 0; i < 12; i++)
        cr_assert_eq(cl[i].ok, i % 4 == 0 || i % 4 == 3, "client %d", i);
    cr_assert_eq(exits, 12);
    cr_assert_eq(max_in_sem, 3);
    cr_assert_eq(aw_sem_value(&sem), 3);
    return 0;
}
Test(service, G1_a_burst_past_a_semaphore_with_deadlines_and_failures) {
    fds0 = aw_test_fds();
    aw_test_run(t_burst, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds0);
}

/* SIGTERM from another process while requests are in flight: the main
 * task is cancelled, the server's block exits, every handler's exits run,
 * aw_main returns -ECANCELED after the one-line report. */
static char logged[1024];
static void hook(const char *msg, void *a) { strncat(logged, msg, sizeof logged - strlen(logged) - 1); }

static int holder(void *arg) {
    cl_t *c = arg;
    aw_with (aw_stream_t *s, aw_tcp_client("127.0.0.1", c->port)) {
        aw_stream_write(s, "slow\n", 5);
        char in[8];
        aw_stream_read_line(s, in, sizeof in);
    }
    aw_err_clear();
    return 0;
}

static int main_saw;
static int t_sigterm(void *arg) {
    static cl_t cl[4];
    sem = (aw_sem_t)AW_SEM_INIT("slots", 2, 2);
    aw_with (aw_listener_t *l, aw_tcp_listener("127.0.0.1", 0, NULL))
    aw_with (aw_server_t *srv, aw_server(l, handler, NULL))
    aw_with (aw_group_t *g, aw_group()) {
        for (int i = 0; i < 4; i++) {
            cl[i] = (cl_t){.port = aw_listener_port(l)};
            aw_spawn(g, holder, &cl[i], NULL);
        }
        while (started < 4 && aw_sleep(AW_MS(1)) == 0)
            ;
        pid_t pid = fork();
        if (pid == 0) {
            kill(getppid(), SIGTERM);
            _exit(0);
        }
        main_saw = aw_sleep(AW_NEVER);
        waitpid(pid, NULL, 0);
    }
    return aw_status();
}
Test(service, A1_sigterm_with_requests_in_flight_runs_every_exit) {
    fds0 = aw_test_fds();
    aw_loop_opts_t o = {.cancel_on_signals = true, .log = hook};
    int rc = aw_main_opts(&o, t_sigterm, NULL);
    cr_assert_eq(rc, -ECANCELED, "aw_main: %d", rc);
    cr_assert_eq(main_saw, -ECANCELED);
    cr_assert(strstr(logged, "TERM received"), "%s", logged);
    cr_assert_eq(started, 4);
    cr_assert_eq(exits, 4, "every handler's exits ran: %d", exits);
    cr_assert_eq(in_sem, 0);
    cr_assert_eq(aw_sem_value(&sem), 2);
    cr_assert_null(aw_lock_owner(&lock));
    cr_assert_eq(aw_test_fds(), fds0);
}

/* A client that disconnects mid-request: the handler's read sees the end,
 * its exits run, the server keeps serving the next one. */
static int t_disconnect(void *arg) {
    sem = (aw_sem_t)AW_SEM_INIT("slots", 1, 1);
    aw_with (aw_listener_t *l, aw_tcp_listener("127.0.0.1", 0, NULL))
    aw_with (aw_server_t *srv, aw_server(l, handler, NULL)) {
        aw_with (aw_stream_t *s, aw_tcp_client("127.0.0.1", aw_listener_port(l)))
            aw_stream_write(s, "hal", 3); /* half a line, then gone */
        wait_until(srv->active == 0 && srv->accepted == 1);
        cl_t c = {.port = aw_listener_port(l), .req = "again\n"};
        client(&c);
        cr_assert(c.ok);
    }
    cr_assert_eq(exits, 2);
    return aw_status();
}
Test(service, A1_a_client_gone_mid_request_leaves_the_server_serving) {
    fds0 = aw_test_fds();
    aw_test_run(t_disconnect, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds0);
}

/* The server's block left while handlers wait on the semaphore and the
 * lock: each handler is cancelled, its exits run, nothing stays held. */
static int t_leave(void *arg) {
    static cl_t cl[5];
    sem = (aw_sem_t)AW_SEM_INIT("slots", 1, 1);
    aw_with (aw_listener_t *l, aw_tcp_listener("127.0.0.1", 0, NULL))
    aw_with (aw_group_t *g, aw_group()) {
        aw_with (aw_server_t *srv, aw_server(l, handler, NULL)) {
            for (int i = 0; i < 5; i++) {
                cl[i] = (cl_t){.port = aw_listener_port(l)};
                aw_spawn(g, holder, &cl[i], NULL);
            }
            wait_until(started == 5);
        }
        cr_assert_eq(aw_status(), 0, "%s", msg_now());
        cr_assert_eq(exits, 5);
        cr_assert_eq(aw_sem_value(&sem), 1);
        cr_assert_null(aw_lock_owner(&lock));
    }
    return aw_status();
}
Test(service, A1_leaving_the_server_while_handlers_queue_on_a_semaphore) {
    fds0 = aw_test_fds();
    aw_test_run(t_leave, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds0);
}

/* A8: the server's block failing while handlers run: the handlers are
 * cancelled and their exits run, and the block's own error leaves the
 * statement unchanged (same record, not the handlers' cancels). */
static int t_body_fails(void *arg) {
    static cl_t cl[3];
    sem = (aw_sem_t)AW_SEM_INIT("slots", 1, 1);
    const aw_err_t *raised = NULL;
    aw_with (aw_listener_t *l, aw_tcp_listener("127.0.0.1", 0, NULL))
    aw_with (aw_group_t *g, aw_group()) {
        aw_with (aw_server_t *srv, aw_server(l, handler, NULL)) {
            for (int i = 0; i < 3; i++) {
                cl[i] = (cl_t){.port = aw_listener_port(l)};
                aw_spawn(g, holder, &cl[i], NULL);
            }
            wait_until(started == 3);
            aw_raise(-EIO, "config reload failed");
            raised = aw_err_current();
            aw_leave();
        }
        cr_assert_eq(aw_status(), -EIO, "%s", msg_now());
        cr_assert_eq(aw_err_current(), raised, "the same record");
        cr_assert(msg_has("config reload failed"));
        cr_assert_eq(exits, 3);
        cr_assert_eq(aw_sem_value(&sem), 1);
        aw_err_clear();
    }
    return aw_status();
}
Test(service, A8_the_servers_block_failing_keeps_its_error_and_runs_every_exit) {
    fds0 = aw_test_fds();
    aw_test_run(t_body_fails, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds0);
}

/* G1: a slow client that never reads a large reply: the request's
 * deadline cuts the write, the handler fails with the deadline's error
 * (counted, its message kept), and the server answers the next client. */
static int big_writer(aw_stream_t *s, void *arg) {
    static char chunk[65536];
    aw_with (aw_fail_after(AW_MS(50)))
        for (;;)
            if (aw_stream_write(s, chunk, sizeof chunk) < 0)
                aw_leave();
    exits++;
    return aw_status();
}
static int t_slow_reader(void *arg) {
    aw_with (aw_listener_t *l, aw_tcp_listener("127.0.0.1", 0, NULL))
    aw_with (aw_server_t *srv, aw_server(l, big_writer, NULL)) {
        aw_with (aw_stream_t *s, aw_tcp_client("127.0.0.1", aw_listener_port(l)))
            wait_until(srv->accepted == 1 && srv->active == 0); /* never reads */
        cr_assert_eq(aw_status(), 0, "%s", msg_now());
        cr_assert_eq(srv->failed, 1);
        cr_assert(strstr(srv->last_error, "deadline") || strstr(srv->last_error, "timed out"),
                  "%s", srv->last_error);
        aw_with (aw_stream_t *s, aw_tcp_client("127.0.0.1", aw_listener_port(l))) {
            char buf[4096];
            cr_assert_gt(aw_stream_read(s, buf, sizeof buf), 0, "the next client is served");
        }
        aw_err_clear();
        wait_until(srv->accepted == 2 && srv->active == 0);
    }
    cr_assert_eq(exits, 2);
    return aw_status();
}
Test(service, G1_a_slow_reader_is_cut_by_its_deadline_and_the_server_goes_on) {
    fds0 = aw_test_fds();
    aw_test_run(t_slow_reader, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds0);
}

/* A1 with files: handlers write their reply atomically (aw_file_atomic);
 * SIGTERM lands while three are mid-write: their temporary files are
 * unlinked and no final file appears, while the one that finished
 * before stays. */
static char fdir[128];
static int fw_writing;
static int file_handler(aw_stream_t *s, void *arg) {
    char line[16], path[192];
    ssize_t n = aw_stream_read_line(s, line, sizeof line);
    if (n <= 1)
        return aw_status();
    snprintf(path, sizeof path, "%s/%c", fdir, line[0]);
    aw_with (aw_file_t *f, aw_file_atomic(path, 0644)) {
        aw_file_write(f, line, (size_t)n);
        if (line[0] != 'a') {
            fw_writing++;
            aw_sleep(AW_NEVER);
        }
    }
    exits++;
    return aw_status();
}
static int fw_client(void *arg) {
    cl_t *c = arg;
    aw_with (aw_stream_t *s, aw_tcp_client("127.0.0.1", c->port)) {
        aw_stream_write(s, c->req, strlen(c->req));
        char ch;
        aw_stream_read(s, &ch, 1);
    }
    aw_err_clear();
    return 0;
}
static int t_files(void *arg) {
    static cl_t cl[4];
    static const char *reqs[] = {"a\n", "b\n", "c\n", "d\n"};
    aw_with (aw_listener_t *l, aw_tcp_listener("127.0.0.1", 0, NULL))
    aw_with (aw_server_t *srv, aw_server(l, file_handler, NULL))
    aw_with (aw_group_t *g, aw_group()) {
        for (int i = 0; i < 4; i++) {
            cl[i] = (cl_t){.port = aw_listener_port(l), .req = reqs[i]};
            aw_spawn(g, fw_client, &cl[i], NULL);
        }
        while ((fw_writing < 3 || exits < 1) && aw_sleep(AW_MS(1)) == 0)
            ;
        kill(getpid(), SIGTERM);
        aw_sleep(AW_NEVER);
    }
    return aw_status();
}
Test(service, A1_sigterm_mid_write_leaves_no_half_written_file) {
    aw_test_mkdtemp(fdir, sizeof fdir, "svc");
    fds0 = aw_test_fds();
    aw_loop_opts_t o = {.cancel_on_signals = true, .log = hook};
    cr_assert_eq(aw_main_opts(&o, t_files, NULL), -ECANCELED);
    cr_assert(strstr(logged, "TERM received"), "%s", logged);
    cr_assert_eq(exits, 4);
    cr_assert_eq(aw_test_fds(), fds0);
    int n = 0;
    DIR *d = opendir(fdir);
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            cr_assert_str_eq(e->d_name, "a", "only the finished reply is left");
            n++;
        }
    closedir(d);
    cr_assert_eq(n, 1);
    aw_test_rmtree(fdir);
}

/* A1: `return` from inside the server's block (a helper that finds what
 * it wanted) cancels the handlers queued on the semaphore and runs their
 * exits before the caller continues. */
static int serve_until_started(aw_listener_t *l, int want) {
    static cl_t cl[4];
    aw_with (aw_server_t *srv, aw_server(l, handler, NULL)) {
        for (int i = 0; i < 4; i++) {
            cl[i] = (cl_t){.port = aw_listener_port(l)};
            aw_spawn(NULL, holder, &cl[i], NULL);
        }
        while (started < want)
            if (aw_sleep(AW_MS(1)) < 0)
                break;
        return started;
    }
    return -1;
}
static int t_return(void *arg) {
    sem = (aw_sem_t)AW_SEM_INIT("slots", 1, 1);
    aw_with (aw_listener_t *l, aw_tcp_listener("127.0.0.1", 0, NULL)) {
        cr_assert_eq(serve_until_started(l, 4), 4);
        cr_assert_eq(aw_status(), 0, "%s", msg_now());
        cr_assert_eq(exits, 4, "every handler's exits ran before the return arrived");
        cr_assert_eq(aw_sem_value(&sem), 1);
        cr_assert_null(aw_lock_owner(&lock));
    }
    return aw_status();
}
Test(service, A1_a_return_from_the_servers_block_runs_every_handlers_exits) {
    fds0 = aw_test_fds();
    aw_test_run(t_return, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds0);
}

/* G1 on a semaphore: requests whose deadlines fire while they wait for a
 * permit, some just as the permit is handed to them; no permit is lost
 * or doubled, and every request ended. */
static int sem_deadline_handler(aw_stream_t *s, void *arg) {
    static int k;
    aw_with (aw_fail_after(AW_US(500 + 250 * (k++ % 8))))
    aw_with (aw_sem_held(&sem)) {
        if (++in_sem > max_in_sem)
            max_in_sem = in_sem;
        aw_sleep(AW_US(300));
        in_sem--;
    }
    exits++;
    return aw_status();
}
static int t_sem_deadlines(void *arg) {
    sem = (aw_sem_t)AW_SEM_INIT("slots", 2, 2);
    aw_with (aw_listener_t *l, aw_tcp_listener("127.0.0.1", 0, NULL))
    aw_with (aw_server_t *srv, aw_server(l, sem_deadline_handler, NULL)) {
        for (int round = 0; round < 5; round++) {
            aw_stream_t c[12];
            for (int i = 0; i < 12; i++)
                cr_assert_eq(aw_tcp_connect(&c[i], "127.0.0.1", aw_listener_port(l)), 0);
            wait_until(srv->accepted == (size_t)(round + 1) * 12 && srv->active == 0);
            for (int i = 0; i < 12; i++)
                aw_stream_close(&c[i]);
            cr_assert_eq(aw_sem_value(&sem), 2, "round %d", round);
        }
    }
    cr_assert_eq(exits, 60);
    cr_assert_eq(in_sem, 0);
    cr_assert_leq(max_in_sem, 2);
    return aw_status();
}
Test(service, G1_deadlines_firing_at_a_semaphore_lose_no_permit) {
    fds0 = aw_test_fds();
    aw_test_run(t_sem_deadlines, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds0);
}

/* signal.h: a handler whose cleanup never ends (a shielded wait) holds
 * the shutdown; a second SIGTERM is the user insisting: the process ends
 * by the signal at once. */
static int stuck_handler(aw_stream_t *s, void *arg) {
    started++;
    aw_with (aw_shield(AW_NEVER))
        aw_sleep(AW_SEC(3600)); /* AW_NEVER would be a deadlock, reported */
    return 0;
}
static int t_insist(void *arg) {
    aw_with (aw_listener_t *l, aw_tcp_listener("127.0.0.1", 0, NULL))
    aw_with (aw_server_t *srv, aw_server(l, stuck_handler, NULL))
    aw_with (aw_stream_t *c, aw_tcp_client("127.0.0.1", aw_listener_port(l))) {
        while (started < 1 && aw_sleep(AW_MS(1)) == 0)
            ;
        pid_t pid = fork();
        if (pid == 0) {
            kill(getppid(), SIGTERM);
            usleep(100000);
            kill(getppid(), SIGTERM);
            _exit(0);
        }
        aw_sleep(AW_NEVER);
    }
    return aw_status();
}
Test(service, signal_h_a_second_sigterm_ends_a_shutdown_a_handler_holds, .signal = SIGTERM) {
    aw_loop_opts_t o = {.cancel_on_signals = true, .log = hook};
    aw_main_opts(&o, t_insist, NULL);
}

/* A request that fans out (aw_gather) to three parts, each holding locks
 * entered in a loop on an exit stack; one part fails: the request fails
 * with the group's error (counted), the siblings' exits ran, the locks
 * are free, and the server answers the next request. */
static aw_lock_t parts[3] = {AW_LOCK_INIT("p0"), AW_LOCK_INIT("p1"), AW_LOCK_INIT("p2")};
static int part_exits;
static int part(void *arg, void **value) {
    intptr_t id = (intptr_t)arg;
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        for (int i = 0; i < 3; i++)
            if (aw_exitstack_enter(st, aw_locked(&parts[i]), NULL) < 0)
                aw_leave();
        aw_sleep(AW_MS(1));
        if (id == 1) {
            aw_fail(-EIO, "part 1 failed");
        }
        *value = (void *)id;
    }
    part_exits++;
    return aw_status();
}
static int fan_handler(aw_stream_t *s, void *arg) {
    char line[16];
    ssize_t n = aw_stream_read_line(s, line, sizeof line);
    if (n <= 0)
        return aw_status();
    if (line[0] == 'f') {
        aw_result_t r[] = {AW_RESULT(part, (void *)0), AW_RESULT(part, (void *)1),
                           AW_RESULT(part, (void *)2)};
        if (aw_gather(r, 3) < 0)
            return aw_status();
    }
    return aw_stream_write(s, line, (size_t)n);
}
static int t_fanout(void *arg) {
    aw_with (aw_listener_t *l, aw_tcp_listener("127.0.0.1", 0, NULL))
    aw_with (aw_server_t *srv, aw_server(l, fan_handler, NULL)) {
        cl_t a = {.port = aw_listener_port(l), .req = "fan\n"};
        client(&a);
        cr_assert(!a.ok);
        wait_until(srv->active == 0);
        cr_assert_eq(srv->failed, 1);
        cr_assert(strstr(srv->last_error, "group") || strstr(srv->last_error, "part 1"), "%s",
                  srv->last_error);
        cl_t b = {.port = aw_listener_port(l), .req = "next\n"};
        client(&b);
        cr_assert(b.ok);
    }
    cr_assert_eq(part_exits, 3);
    for (int i = 0; i < 3; i++)
        cr_assert_null(aw_lock_owner(&parts[i]));
    return aw_status();
}
Test(service, I11_a_fan_out_request_with_one_failing_part_fails_only_itself) {
    fds0 = aw_test_fds();
    aw_test_run(t_fanout, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds0);
}
