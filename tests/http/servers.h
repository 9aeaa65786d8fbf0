/* servers.h: real local servers for the HTTP tests, started outside the
 * loop (plain blocking POSIX code) and stopped at the end of each test.
 *
 * - nginx (Debian's), in a temp dir, on 127.0.0.1 and a free port: static
 *   files (/1k.bin, /1m.bin, /index.html), keep-alive, /slow/ (limit_rate
 *   64 KiB/s), /gz/ (files served as they are with Content-Encoding: gzip,
 *   the test puts them there), redirects, status codes, a POST echo-ish location,
 *   /r/same-auth and /r/other-auth (redirects to /echo-auth, which echoes
 *   the Authorization and Cookie it got, on this origin or on
 *   localhost's), /cookie/redir (sets a cookie and redirects),
 *   cookie paths (/one/set: Path=/one/two/; /dflt/sub/set: no Path;
 *   /ex/set: Path=/ex/, its own directory; each directory echoes the
 *   Cookie header it got; /one/two/go and /one/go-x redirect there), and
 *   optionally HTTPS with a test CA made by openssl(1).
 * - a misbehaving server: a forked process (its own process group) that
 *   answers by path: /truncated, /reset, /wrong-length, /huge-headers,
 *   /endless (chunked forever), /stall (headers, then silence), /noreply,
 *   /ok (a correct keep-alive reply), /gate/N (a correct reply held back
 *   until N /ok replies were sent, counted in a file); and the hostile
 *   ones of issue 11: /to-ftp (a redirect to ftp:// on this server's
 *   port), /bad-chunked, /long-header (one 100 KB header line),
 *   /garbage-status, /two-lengths (conflicting Content-Length),
 *   /same-lengths (the same Content-Length twice, names in other cases),
 *   /length-and-chunked (both framings; then keeps the connection open),
 *   /cut (headers and 6 of 1000 bytes in one send, then close),
 *   /sleepy/N (300 ms, then a redirect to /sleepy/N-1; /sleepy/0 answers),
 *   /trailer (a chunked body, its trailer fields after a pause),
 *   /chunk-cut (one chunk of a chunked body, then close). It counts
 *   the connections it accepts in a file, so that tests can tell a reused
 *   connection from a new one. */
#ifndef AW_TEST_HTTP_SERVERS_H
#define AW_TEST_HTTP_SERVERS_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct test_server {
    char dir[128];
    int port, tls_port;
    pid_t pid;                /* nginx, or the misbehaving server (group leader) */
    char url[64], tls_url[64];
    char ca[192], wrong_ca[192];
} test_server_t;

static inline int ts_free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0)
        abort();
    close(fd);
    return ntohs(a.sin_port);
}

static inline void ts_sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Wait (up to 30 s) until something accepts connections on port. */
static inline int ts_wait_port(int port) {
    for (int i = 0; i < 3000; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
        close(fd);
        if (ok)
            return 0;
        ts_sleep_ms(10);
    }
    return -1;
}

static inline void ts_write_file(const char *dir, const char *name, const char *data, size_t len) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0)
        abort();
}

static inline void ts_pattern_file(const char *dir, const char *name, size_t len) {
    char *b = malloc(len);
    for (size_t i = 0; i < len; i++)
        b[i] = (char)('a' + i % 26);
    ts_write_file(dir, name, b, len);
    free(b);
}

static inline int ts_sh(const char *cmd) {
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* A CA, a certificate for 127.0.0.1 signed by it, and an unrelated CA. */
static inline int ts_make_certs(test_server_t *s) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "cd %s && "
             "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 "
             "-subj /CN=awith-test-ca 2>/dev/null && "
             "openssl req -x509 -newkey rsa:2048 -nodes -keyout wrong.key -out wrong-ca.pem -days 2 "
             "-subj /CN=awith-wrong-ca 2>/dev/null && "
             "openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr "
             "-subj /CN=127.0.0.1 2>/dev/null && "
             "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > ext.cnf && "
             "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
             "-out server.pem -days 2 -extfile ext.cnf 2>/dev/null",
             s->dir);
    snprintf(s->ca, sizeof s->ca, "%s/ca.pem", s->dir);
    snprintf(s->wrong_ca, sizeof s->wrong_ca, "%s/wrong-ca.pem", s->dir);
    return ts_sh(cmd);
}

static inline void ts_mkdir(test_server_t *s) {
    snprintf(s->dir, sizeof s->dir, "/tmp/awith-http-XXXXXX");
    if (!mkdtemp(s->dir))
        abort();
}

/* Start nginx; with tls, also an HTTPS server. Returns 0 or -1. */
static inline int ts_nginx_start(test_server_t *s, int tls) {
    ts_mkdir(s);
    char p[256];
    snprintf(p, sizeof p, "%s/www", s->dir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/www/slow", s->dir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/www", s->dir);
    ts_write_file(p, "index.html", "<html>hello from nginx</html>\n", 30);
    ts_pattern_file(p, "1k.bin", 1024);
    ts_pattern_file(p, "1m.bin", 1 << 20);
    snprintf(p, sizeof p, "%s/www/slow", s->dir);
    ts_pattern_file(p, "1m.bin", 1 << 20);
    if (tls && ts_make_certs(s) != 0)
        return -1;
    s->port = ts_free_port();
    s->tls_port = tls ? ts_free_port() : 0;
    char tls_conf[1024] = "";
    if (tls)
        snprintf(tls_conf, sizeof tls_conf,
                 "  server { listen 127.0.0.1:%d ssl http2; root %s/www;\n"
                 "    ssl_certificate %s/server.pem; ssl_certificate_key %s/server.key; }\n",
                 s->tls_port, s->dir, s->dir, s->dir);
    char conf[12288];
    int n = snprintf(conf, sizeof conf,
             "worker_processes 1; pid %s/nginx.pid; error_log %s/error.log;\n"
             "events { worker_connections 1024; }\n"
             "http {\n"
             "  access_log off; client_body_temp_path %s/tmp; proxy_temp_path %s/tmp;\n"
             "  fastcgi_temp_path %s/tmp; uwsgi_temp_path %s/tmp; scgi_temp_path %s/tmp;\n"
             "  keepalive_requests 100000; keepalive_timeout 60s;\n"
             "  default_type application/octet-stream;\n"
             "  server { listen 127.0.0.1:%d; root %s/www;\n"
             "    location /slow/ { limit_rate 64k; }\n"
             "    location /gz/ { add_header Content-Encoding gzip; }\n"
             "    location /upload/ { dav_methods PUT DELETE; create_full_put_path on; "
             "client_max_body_size 64m; }\n"
             "    location = /redirect { return 302 /index.html; }\n"
             "    location = /loop { return 302 /loop; }\n"
             "    location = /r/301 { return 301 /echo-ct; }\n"
             "    location = /r/302 { return 302 /echo-ct; }\n"
             "    location = /r/303 { return 303 /echo-ct; }\n"
             "    location = /r/307 { return 307 /echo-ct; }\n"
             "    location = /r/308 { return 308 /echo-ct; }\n"
             "    location = /r/ae { return 302 /echo-ae; }\n"
             "    location = /echo-ae { return 200 'ae=[$http_accept_encoding]\\n'; }\n"
             "    location = /echo-ct { return 200 '$request_method len=$content_length "
             "ct=$content_type\\n'; }\n"
             "    location = /status/404 { return 404 'not here\\n'; }\n"
             "    location = /status/500 { return 500 'broken\\n'; }\n"
             "    location = /cookie/set { add_header Set-Cookie 'session=s3cr3t; Path=/'; return 200 'set\\n'; }\n"
             "    location = /cookie/get { return 200 'cookie=[$http_cookie]\\n'; }\n"
             "    location = /one/set { add_header Set-Cookie 'p=1; Path=/one/two/'; return 200 'set\\n'; }\n"
             "    location /one/ { return 200 'cookie=[$http_cookie]\\n'; }\n"
             "    location = /one/two/go { return 302 /one/two; }\n"
             "    location = /one/go-x { return 302 /one/two/x; }\n"
             "    location = /dflt/sub/set { add_header Set-Cookie 'd=1'; return 200 'set\\n'; }\n"
             "    location /dflt { return 200 'cookie=[$http_cookie]\\n'; }\n"
             "    location = /ex/set { add_header Set-Cookie 'e=1; Path=/ex/'; return 200 'set\\n'; }\n"
             "    location /ex { return 200 'cookie=[$http_cookie]\\n'; }\n"
             "    location = /r/other-auth { return 302 http://localhost:$server_port/echo-auth; }\n"
             "    location = /r/same-auth { return 302 /echo-auth; }\n"
             "    location = /echo-auth { return 200 'auth=[$http_authorization] cookie=[$http_cookie]\\n'; }\n"
             "    location = /cookie/redir { add_header Set-Cookie 'redir=1; Path=/'; return 302 /cookie/get; }\n"
             "    location = /echo { return 200 '$request_method $request_uri len=$content_length "
             "ua=$http_user_agent x=$http_x_test\\n'; }\n"
             "  }\n%s}\n",
             s->dir, s->dir, s->dir, s->dir, s->dir, s->dir, s->dir, s->port, s->dir, tls_conf);
    (void)n;
    ts_write_file(s->dir, "nginx.conf", conf, strlen(conf));
    snprintf(p, sizeof p, "%s/tmp", s->dir);
    mkdir(p, 0755);
    s->pid = fork();
    if (s->pid == 0) {
        char c[256];
        snprintf(c, sizeof c, "%s/nginx.conf", s->dir);
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test */
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        dup2(devnull, 2);
        execlp("nginx", "nginx", "-p", s->dir, "-c", c, "-e", "stderr", "-g",
               "daemon off; master_process off;", (char *)NULL);
        _exit(127);
    }
    snprintf(s->url, sizeof s->url, "http://127.0.0.1:%d", s->port);
    snprintf(s->tls_url, sizeof s->tls_url, "https://127.0.0.1:%d", s->tls_port);
    if (ts_wait_port(s->port) < 0 || (tls && ts_wait_port(s->tls_port) < 0))
        return -1;
    return 0;
}

static inline void ts_stop(test_server_t *s) {
    if (s->pid > 0) {
        kill(-s->pid, SIGKILL); /* the misbehaving server's group (no-op for nginx) */
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
    }
    if (s->dir[0]) {
        char cmd[256];
        snprintf(cmd, sizeof cmd, "rm -rf %s", s->dir);
        ts_sh(cmd);
        s->dir[0] = 0;
    }
}

/* ---- the misbehaving server ---- */

static inline void ts_send(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k <= 0)
            _exit(0);
        p += k;
        n -= (size_t)k;
    }
}
#define TS_SENDS(fd, str) ts_send((fd), (str), strlen(str))

/* Count connections in dir/conns (one byte appended per accept). */
static inline void ts_count_conn(const char *dir) {
    char p[256];
    snprintf(p, sizeof p, "%s/conns", dir);
    int fd = open(p, O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (fd >= 0) {
        if (write(fd, "c", 1) < 0) { /* nothing to do */
        }
        close(fd);
    }
}

static inline int ts_conns(const test_server_t *s) {
    char p[256];
    struct stat st;
    snprintf(p, sizeof p, "%s/conns", s->dir);
    return stat(p, &st) == 0 ? (int)st.st_size : 0;
}

/* Count the /ok replies sent, in dir/served: the /gate/N path waits for N. */
static inline void ts_count_served(const char *dir) {
    char p[256];
    snprintf(p, sizeof p, "%s/served", dir);
    int fd = open(p, O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (fd >= 0) {
        if (write(fd, "s", 1) < 0) { /* nothing to do */
        }
        close(fd);
    }
}

static inline int ts_served_in(const char *dir) {
    char p[256];
    struct stat st;
    snprintf(p, sizeof p, "%s/served", dir);
    return stat(p, &st) == 0 ? (int)st.st_size : 0;
}

static inline void ts_bad_conn(int fd, const char *dir) {
    char req[8192];
    for (;;) { /* keep-alive: one request after another */
        size_t got = 0;
        req[0] = 0;
        while (!strstr(req, "\r\n\r\n")) {
            ssize_t k = recv(fd, req + got, sizeof req - 1 - got, 0);
            if (k <= 0)
                _exit(0);
            got += (size_t)k;
            req[got] = 0;
        }
        char path[256] = "";
        sscanf(req, "%*s %255s", path);
        int gate = 0;
        if (!strcmp(path, "/ok")) {
            TS_SENDS(fd, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n");
            ts_count_served(dir);
        } else if (sscanf(path, "/gate/%d", &gate) == 1) {
            /* answers (like /ok, not counted) once `gate` /ok were answered */
            for (int i = 0; i < 30000 && ts_served_in(dir) < gate; i++)
                ts_sleep_ms(1);
            TS_SENDS(fd, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\ngate\n");
        } else if (!strcmp(path, "/truncated")) {
            TS_SENDS(fd, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
            char b[100];
            memset(b, 'x', sizeof b);
            ts_send(fd, b, sizeof b);
            _exit(0);
        } else if (!strcmp(path, "/reset")) {
            TS_SENDS(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n");
            char b[1000];
            memset(b, 'x', sizeof b);
            ts_send(fd, b, sizeof b);
            ts_sleep_ms(50);
            struct linger l = {1, 0}; /* close with RST */
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
            _exit(0);
        } else if (!strcmp(path, "/wrong-length")) {
            /* says 5 bytes, sends 15: the extra 10 must not be taken as
             * the start of the next response on a reused connection */
            TS_SENDS(fd, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 9");
        } else if (!strcmp(path, "/huge-headers")) {
            TS_SENDS(fd, "HTTP/1.1 200 OK\r\n");
            char line[1024];
            for (int i = 0; i < 400; i++) {
                snprintf(line, sizeof line, "X-Filler-%d: %0900d\r\n", i, 0);
                TS_SENDS(fd, line);
            }
            TS_SENDS(fd, "Content-Length: 2\r\n\r\nok");
        } else if (!strcmp(path, "/endless")) {
            TS_SENDS(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
            for (;;) {
                TS_SENDS(fd, "400\r\n");
                char b[1024];
                memset(b, 'e', sizeof b);
                ts_send(fd, b, sizeof b);
                TS_SENDS(fd, "\r\n");
                ts_sleep_ms(1);
            }
        } else if (!strcmp(path, "/stall")) {
            TS_SENDS(fd, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
            ts_sleep_ms(60000);
            _exit(0);
        } else if (!strcmp(path, "/to-ftp")) {
            struct sockaddr_in me;
            socklen_t ml = sizeof me;
            getsockname(fd, (struct sockaddr *)&me, &ml);
            char h[256];
            snprintf(h, sizeof h, "HTTP/1.1 302 Found\r\nLocation: ftp://127.0.0.1:%d/x\r\n"
                                  "Content-Length: 0\r\n\r\n", ntohs(me.sin_port));
            TS_SENDS(fd, h);
        } else if (!strcmp(path, "/bad-chunked")) {
            TS_SENDS(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                         "5\r\nhello\r\nzz-not-hex\r\nxx\r\n0\r\n\r\n");
        } else if (!strcmp(path, "/long-header")) {
            TS_SENDS(fd, "HTTP/1.1 200 OK\r\nX-Long: ");
            char *b = malloc(100 * 1024);
            memset(b, 'l', 100 * 1024);
            ts_send(fd, b, 100 * 1024);
            free(b);
            TS_SENDS(fd, "\r\nContent-Length: 2\r\n\r\nok");
        } else if (!strcmp(path, "/garbage-status")) {
            TS_SENDS(fd, "HELLO THERE, NOT HTTP\r\nContent-Length: 2\r\n\r\nok");
            _exit(0);
        } else if (!strcmp(path, "/two-lengths")) {
            TS_SENDS(fd, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 10\r\n\r\n"
                         "helloworld");
        } else if (!strcmp(path, "/same-lengths")) {
            TS_SENDS(fd, "HTTP/1.1 200 OK\r\ncontent-length: 5\r\nX-A: 1\r\nCONTENT-LENGTH: 5\r\n\r\n"
                         "hello");
        } else if (!strcmp(path, "/length-and-chunked")) {
            TS_SENDS(fd, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                         "5\r\nhello\r\n0\r\n\r\n");
        } else if (!strcmp(path, "/cut")) {
            TS_SENDS(fd, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nabcdef");
            _exit(0);
        } else if (!strcmp(path, "/trailer")) {
            /* chunked, with trailer fields after the last chunk, sent
             * after a pause (one of 2000 bytes, one that looks like a
             * status line) */
            TS_SENDS(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Trail\r\n"
                         "X-Head: h\r\n\r\n5\r\nhello\r\n0\r\n");
            ts_sleep_ms(100); /* the reader has the headers by then */
            TS_SENDS(fd, "X-Trail: ");
            char b[2000];
            memset(b, 't', sizeof b);
            ts_send(fd, b, sizeof b);
            TS_SENDS(fd, "\r\nHTTP/1.1 500 Trailer: x\r\n\r\n");
        } else if (!strcmp(path, "/chunk-cut")) {
            TS_SENDS(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
            _exit(0);
        } else if (sscanf(path, "/sleepy/%d", &gate) == 1) {
            /* 300 ms, then a redirect to /sleepy/N-1; /sleepy/0 answers */
            ts_sleep_ms(300);
            char h[128];
            if (gate > 0)
                snprintf(h, sizeof h, "HTTP/1.1 302 Found\r\nLocation: /sleepy/%d\r\n"
                                      "Content-Length: 0\r\n\r\n", gate - 1);
            else
                snprintf(h, sizeof h, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n");
            TS_SENDS(fd, h);
        } else if (!strcmp(path, "/noreply")) {
            ts_sleep_ms(60000);
            _exit(0);
        } else {
            TS_SENDS(fd, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        }
    }
}

static inline int ts_bad_start(test_server_t *s) {
    ts_mkdir(s);
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(lfd, 128) < 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &len) < 0)
        return -1;
    s->port = ntohs(a.sin_port);
    snprintf(s->url, sizeof s->url, "http://127.0.0.1:%d", s->port);
    s->pid = fork();
    if (s->pid == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        signal(SIGCHLD, SIG_IGN); /* no zombies */
        for (;;) {
            int c = accept(lfd, NULL, NULL);
            if (c < 0)
                continue;
            ts_count_conn(s->dir);
            if (fork() == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                close(lfd);
                ts_bad_conn(c, s->dir);
                _exit(0);
            }
            close(c);
        }
    }
    setpgid(s->pid, s->pid);
    close(lfd);
    return 0;
}

#endif
