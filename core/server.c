#define _GNU_SOURCE /* accept4 */
#include "server.h"

#include "app.h"
#include "checkconf.h"
#include "log.h"
#include "metrics.h"
#include "router.h"
#include "util.h"

#include <errno.h>
#include <fcgiapp.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
#endif

/* ------------------------------------------------------------------ worker */

static volatile sig_atomic_t worker_stop;
static volatile sig_atomic_t worker_reload;
static int worker_listen_fd;
static int devnull_fd = -1;

/* SIGTERM sets the flag and replaces the listening descriptor by /dev/null. The handler runs
 * with SA_RESTART: a request in progress continues undisturbed, and an accept() it
 * interrupted restarts on /dev/null and fails at once, as does the next one, so no signal
 * can slip between the flag check and the accept call, and nothing needs blocking. */
#define WAKE_CHECK_MS 200
static int wake_fd = -1; /* standalone: the write end of a pipe the worker's epoll watches */

static void worker_on_term(int sig)
{
    (void)sig;
    int saved = errno;
    worker_stop = 1;
    if (devnull_fd >= 0)
        dup2(devnull_fd, worker_listen_fd);
    if (wake_fd >= 0) { /* epoll watches the socket itself, not the descriptor: wake it */
        ssize_t w = write(wake_fd, "x", 1);
        (void)w;
    }
    errno = saved;
}

/* What libfcgi's own accept does for a TCP connection, done here since the workers accept
 * themselves: no Nagle delay (the answer goes out in a few writes and then the socket is shut
 * down), and, when FCGI_WEB_SERVER_ADDRS lists addresses (comma-separated IPv4, libfcgi's
 * variable), only web servers from that list. */
static int tcp_peer_ok(int fd, const struct sockaddr_storage *peer)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    const char *list = getenv("FCGI_WEB_SERVER_ADDRS");
    if (!list || !*list)
        return 1;
    if (peer->ss_family != AF_INET)
        return 0;
    char addr[INET_ADDRSTRLEN];
    if (!inet_ntop(AF_INET, &((const struct sockaddr_in *)peer)->sin_addr, addr, sizeof addr))
        return 0;
    size_t n = strlen(addr);
    for (const char *p = list; *p;) {
        size_t k = strcspn(p, ",");
        while (k && p[k - 1] == ' ')
            k--;
        if (k == n && memcmp(p, addr, n) == 0)
            return 1;
        p += strcspn(p, ",");
        if (*p == ',')
            p++;
        while (*p == ' ')
            p++;
    }
    log_warning("refused a FastCGI connection from %s: not in FCGI_WEB_SERVER_ADDRS", addr);
    return 0;
}

static void worker_on_hup(int sig)
{
    (void)sig;
    worker_reload = 1;
}

static long fcgi_read(void *ud, char *buf, size_t n)
{
    FCGX_Request *fr = ud;
    int want = n > INT_MAX ? INT_MAX : (int)n;
    return FCGX_GetStr(buf, want, fr->in);
}

static void write_response(FCGX_Request *fr, struct req *r)
{
    /* "Status: ..\r\nContent-Type: ..\r\nX-Request-Id: ..\r\nContent-Length: ..\r\n" and the
     * handler's headers, by hand: snprintf was a good part of the hot path's own work */
    char head[2048];
    struct util_line l = {head, 0, sizeof head, 0};
    int st = r->resp.status >= 100 && r->resp.status <= 999 ? r->resp.status : 500;
    util_line_str(&l, "Status: ");
    util_line_uint(&l, (unsigned long long)st, 3);
    util_line_str(&l, " ");
    util_line_str(&l, http_reason(st));
    util_line_str(&l, "\r\nContent-Type: ");
    util_line_str(&l, r->resp.content_type ? r->resp.content_type : "application/json");
    util_line_str(&l, "\r\nX-Request-Id: ");
    util_line_str(&l, r->request_id);
    util_line_str(&l, "\r\nContent-Length: ");
    util_line_uint(&l, r->resp.body ? r->resp.body_len : 0, 1);
    util_line_str(&l, "\r\n");
    util_line_str(&l, r->resp.headers);
    util_line_str(&l, "\r\n");
    if (l.cut) { /* too long: 500 */
        static const char fail[] = "Status: 500 Internal Server Error\r\n\r\n";
        FCGX_PutStr(fail, (int)sizeof fail - 1, fr->out);
        return;
    }
    FCGX_PutStr(head, (int)l.n, fr->out);
    if (r->resp.body && r->resp.body_len)
        FCGX_PutStr(r->resp.body, (int)r->resp.body_len, fr->out);
}

/* The parameters a request needs, in one pass over the FastCGI environment (seven
 * FCGX_GetParam calls would scan it seven times). */
static void read_params(char **env, struct http_input *in, const char **sn, const char **pi,
                        const char **qs)
{
    static const struct {
        const char *name;
        size_t len;
        size_t off; /* into the pointers below */
    } wanted[] = {
#define P_(n, i) {n "=", sizeof(n), i}
        P_("REQUEST_METHOD", 0),    P_("REQUEST_URI", 1),        P_("CONTENT_TYPE", 2),
        P_("CONTENT_LENGTH", 3),    P_("HTTP_AUTHORIZATION", 4), P_("HTTP_IF_NONE_MATCH", 5),
        P_("HTTP_X_REQUEST_ID", 6), P_("SCRIPT_NAME", 7),        P_("PATH_INFO", 8),
        P_("QUERY_STRING", 9),      P_("REMOTE_ADDR", 10),       P_("HTTP_IF_MATCH", 11),
#undef P_
    };
    const char **slots[] = {&in->method,
                            &in->uri,
                            &in->content_type,
                            &in->content_length,
                            &in->authorization,
                            &in->if_none_match,
                            &in->request_id,
                            sn,
                            pi,
                            qs,
                            &in->remote_addr,
                            &in->if_match};
    for (char **e = env; e && *e; e++) {
        const char *v = *e;
        if (v[0] != 'R' && v[0] != 'C' && v[0] != 'H' && v[0] != 'S' && v[0] != 'P' && v[0] != 'Q')
            continue;
        for (size_t i = 0; i < UTIL_ARRAY_LEN(wanted); i++) {
            if (v[0] == wanted[i].name[0] && strncmp(v, wanted[i].name, wanted[i].len) == 0) {
                *slots[wanted[i].off] = v + wanted[i].len;
                break;
            }
        }
    }
}

/* One request: read, handle, answer. What only we need (the access line, the metrics, the
 * freeing) waits for finish_one, after FCGX_Finish_r has sent the answer: the web server gets
 * it a write(2) sooner. */
struct served {
    struct http_input in;
    struct req r;
    char method[16]; /* in.method points into the FastCGI parameters, freed by Finish */
    long long dur_us;
};

static void serve_one(struct app *app, FCGX_Request *fr, struct served *sv)
{
    struct http_input *in = &sv->in;
    memset(in, 0, sizeof *in);
    in->read_body = fcgi_read;
    in->body_ud = fr;
    const char *sn = NULL, *pi = NULL, *qs = NULL;
    read_params(fr->envp, in, &sn, &pi, &qs);
    char uri[8192];
    if (!in->uri) {
        /* Servers that send no REQUEST_URI: rebuild it from the CGI variables. */
        snprintf(uri, sizeof uri, "%s%s%s%s", sn ? sn : "", pi ? pi : "", qs && *qs ? "?" : "",
                 qs ? qs : "");
        in->uri = uri;
    }
    app_serve(app, in, &sv->r);
    write_response(fr, &sv->r);
    sv->dur_us = (long long)(util_now_us() - sv->r.start_us);
    /* only the method is read after the answer (and a route pattern, which is static) */
    const char *method = NULL;
    size_t ml = in->method ? strlen(in->method) : 0;
    if (in->method && ml < sizeof sv->method) {
        memcpy(sv->method, in->method, ml + 1);
        method = sv->method;
    } else if (in->method) {
        method = "other";
    }
    memset(in, 0, sizeof *in); /* the rest points into what Finish frees */
    in->method = method;
}

static void finish_one(struct app *app, struct served *sv)
{
    struct req *r = &sv->r;
    if (app->conf->access_log)
        log_access(sv->in.method ? sv->in.method : "-", r->route ? r->route->pattern : "-",
                   r->resp.status, sv->dur_us, r->request_id);
    app_count_request(r, sv->dur_us);
    app_after(app); /* the answer is out: a breaker trip's flag writes happen now */
    log_set_request(NULL);
    http_req_free(r);
}

static int reload_config(const char *path, struct llmops_conf *conf)
{
    struct llmops_conf fresh;
    struct conf_errors errs = {0};
    /* The whole --check-config, modules included: a reload that would leave instances
     * failed is refused like a syntax error, and the old configuration stays. */
    int problems = conf_load(path, &fresh, &errs);
    if (problems == 0) {
        log_set_level(LOG_LVL_SILENT); /* the problems are logged below, once */
        problems = check_config_modules(&fresh, &errs);
        log_set_level(conf->log_level);
        log_set_json(conf->log_json);
    }
    if (problems > 0) {
        for (int i = 0; i < errs.n; i++)
            log_error("%s", errs.msgs[i]);
        log_error("configuration not reloaded: %d problem%s (the old one stays in force)", errs.n,
                  errs.n == 1 ? "" : "s");
        conf_errors_free(&errs);
        conf_free(&fresh);
        return -1;
    }
    conf_errors_free(&errs);
    conf_free(conf);
    *conf = fresh;
    log_set_level(conf->log_level);
    log_set_json(conf->log_json);
    return 0;
}

/* ------------------------------------------------- standalone: several connections per worker */

/* A standalone worker holds several FastCGI connections: the ones the web server keeps
 * (FCGI_KEEP_CONN: nginx fastcgi_keep_conn on with an upstream keepalive) and new ones whose
 * first request has not arrived. One epoll set watches them and the listening socket
 * (EPOLLEXCLUSIVE: one connection wakes one idle worker); the worker serves one request at a
 * time from whichever connection is readable, so an idle kept connection never holds it.
 *
 * libfcgi still reads and writes the protocol (FCGX_Accept_r reads the begin record and the
 * parameters, the streams carry stdin and stdout, FCGX_Finish_r ends the request): each
 * connection has its own FCGX_Request, made with no listening socket (-1), so libfcgi never
 * accepts or waits for a connection itself. Taken over from libfcgi: the accept (non-blocking,
 * TCP_NODELAY and FCGI_WEB_SERVER_ADDRS as its accept does), the decision to keep or close a
 * connection (its keepConnection is read after FCGX_Accept_r, then held at 1 so Finish closes
 * only on an error), and the close: libfcgi's lingers (shutdown, then select(2) up to 2 s per
 * read until the web server closes, on an fd that must be below FD_SETSIZE), which would pin the
 * worker; here the request's stdin is read to its end (bounded) and the socket closed at once,
 * with detached set so that libfcgi's own closes on an error do not linger either.
 *
 * FastCGI records may still arrive slowly once a connection is readable: every read and write
 * on a connection waits at most [server] fastcgi_io_timeout_ms (SO_RCVTIMEO, SO_SNDTIMEO), and
 * libfcgi then fails the request and closes the connection. Web servers send a request whole
 * (nginx and lighttpd buffer the client's body first), so reads find their data at once. */

#define POOL_EVENTS 64
#define DRAIN_MAX (1 << 20) /* stdin a handler left unread, read before the next request */

struct fconn {
    FCGX_Request fr; /* fr.ipcFd < 0: the slot is free */
    int64_t last_ms; /* accepted, or its last request ended */
    int watched;     /* in the epoll set */
};

struct pool {
    struct app *app;
    int ep;
    int listen_fd;
    int wake_rd;
    int tcp;
    int io_timeout_ms;
    int64_t keep_timeout_ms;
    struct fconn *c;
    int cap, n;
    struct epoll_event ev[POOL_EVENTS];
    int ev_n, ev_i; /* the batch being handled */
};

static char pool_listen_tag, pool_wake_tag;

static int pool_open(struct pool *p, int listen_fd, const struct llmops_conf *conf)
{
    p->listen_fd = listen_fd;
    p->cap = (int)conf->fastcgi_keep_max;
    p->io_timeout_ms = (int)conf->fastcgi_io_timeout_ms;
    p->keep_timeout_ms = conf->fastcgi_keep_timeout * 1000;
    p->c = calloc((size_t)p->cap, sizeof *p->c);
    p->ep = epoll_create1(EPOLL_CLOEXEC);
    int pp[2] = {-1, -1};
    if (!p->c || p->ep < 0 || pipe2(pp, O_CLOEXEC | O_NONBLOCK) != 0) {
        log_error("worker: cannot set up its connections: %s", strerror(errno));
        return -1;
    }
    for (int i = 0; i < p->cap; i++)
        p->c[i].fr.ipcFd = -1;
    struct epoll_event a = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = &pool_listen_tag};
    struct epoll_event b = {.events = EPOLLIN, .data.ptr = &pool_wake_tag};
    if (epoll_ctl(p->ep, EPOLL_CTL_ADD, listen_fd, &a) != 0 ||
        epoll_ctl(p->ep, EPOLL_CTL_ADD, pp[0], &b) != 0) {
        log_error("worker: epoll_ctl failed: %s", strerror(errno));
        close(pp[0]);
        close(pp[1]);
        return -1;
    }
    p->wake_rd = pp[0];
    wake_fd = pp[1];
    struct sockaddr_storage self;
    socklen_t slen = sizeof self;
    p->tcp = getsockname(listen_fd, (struct sockaddr *)&self, &slen) == 0 &&
             (self.ss_family == AF_INET || self.ss_family == AF_INET6);
    return 0;
}

/* Events of this batch that name c are dropped: c is closed, and its slot may be reused. */
static void pool_forget(struct pool *p, struct fconn *c)
{
    for (int i = p->ev_i + 1; i < p->ev_n; i++)
        if (p->ev[i].data.ptr == c)
            p->ev[i].data.ptr = NULL;
}

/* Closes c's socket (if libfcgi has not) and frees the slot. */
static void pool_drop(struct pool *p, struct fconn *c)
{
    if (c->fr.ipcFd >= 0)
        close(c->fr.ipcFd); /* also leaves the epoll set */
    FCGX_Free(&c->fr, 0);
    c->fr.ipcFd = -1;
    c->watched = 0;
    p->n--;
    pool_forget(p, c);
}

/* The rest of the request's stdin, which a handler that answered early left unread: read to
 * its end record, so a kept connection is at the next request and a closed one has nothing
 * unread (closing on unread data would reset the connection, and the web server could lose
 * the answer). 0 when more than DRAIN_MAX or an error: then the connection is closed. */
static int drain_stdin(FCGX_Request *fr)
{
    char buf[4096];
    long total = 0;
    while (!FCGX_HasSeenEOF(fr->in)) {
        int n = FCGX_GetStr(buf, (int)sizeof buf, fr->in);
        if (n <= 0)
            break;
        total += n;
        if (total > DRAIN_MAX)
            return 0;
    }
    return FCGX_GetError(fr->in) == 0;
}

/* One request from c, whose socket is readable. */
static void pool_serve(struct pool *p, struct fconn *c)
{
    FCGX_Request *fr = &c->fr;
    fr->keepConnection = 1; /* FCGX_Accept_r begins with a Finish: it must not close */
    fr->detached = 1;       /* libfcgi closes on an error without lingering */
    int rc = FCGX_Accept_r(fr);
    if (rc < 0 || fr->ipcFd < 0) { /* the web server closed it, or a bad or slow request */
        pool_drop(p, c);
        return;
    }
    int keep = fr->keepConnection; /* FCGI_KEEP_CONN */
    fr->keepConnection = 1;
    struct served sv;
    serve_one(p->app, fr, &sv);
    int whole = drain_stdin(fr);
    FCGX_Finish_r(fr); /* sends the end of the answer; closes only on an error */
    finish_one(p->app, &sv);
    if (fr->ipcFd < 0 || !keep || !whole || worker_stop) {
        pool_drop(p, c);
        return;
    }
    c->last_ms = util_now_ms();
    if (!c->watched) {
        struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(p->ep, EPOLL_CTL_ADD, fr->ipcFd, &e) != 0) {
            log_error("worker: cannot watch a kept connection: %s", strerror(errno));
            pool_drop(p, c);
            return;
        }
        c->watched = 1;
    }
}

/* A free slot; when every one is taken, the connection idle the longest is closed for it
 * (the web server opens a new one when it needs it, and retries a request that met a kept
 * connection just closed). */
static struct fconn *pool_slot(struct pool *p)
{
    struct fconn *oldest = NULL;
    for (int i = 0; i < p->cap; i++) {
        struct fconn *c = &p->c[i];
        if (c->fr.ipcFd < 0)
            return c;
        if (!oldest || c->last_ms < oldest->last_ms)
            oldest = c;
    }
    pool_drop(p, oldest);
    return oldest;
}

/* Accepts one connection; serves its request at once when it is there. -1: a fatal error. */
static int pool_accept(struct pool *p)
{
    struct sockaddr_storage peer;
    socklen_t plen = sizeof peer;
    int fd = accept4(p->listen_fd, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (worker_stop || e == EAGAIN || e == EWOULDBLOCK || e == EINTR || e == ECONNABORTED)
            return 0;
        log_error("accept failed: %s", strerror(e));
        if (e == EPROTO || e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
            struct timespec pause = {0, 100 * 1000 * 1000};
            nanosleep(&pause, NULL);
            return 0;
        }
        return -1;
    }
    if (p->tcp && !tcp_peer_ok(fd, &peer)) {
        close(fd);
        return 0;
    }
    struct timeval tv = {.tv_sec = p->io_timeout_ms / 1000,
                         .tv_usec = (p->io_timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct fconn *c = pool_slot(p);
    FCGX_InitRequest(&c->fr, -1, 0); /* no listening socket: libfcgi never accepts */
    c->fr.ipcFd = fd;
    c->last_ms = util_now_ms();
    c->watched = 0;
    p->n++;
    char b;
    ssize_t r = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (r > 0) {
        pool_serve(p, c);
    } else if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        pool_drop(p, c);
    } else {
        struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(p->ep, EPOLL_CTL_ADD, fd, &e) != 0) {
            log_error("worker: cannot watch a connection: %s", strerror(errno));
            pool_drop(p, c);
        } else {
            c->watched = 1;
        }
    }
    return 0;
}

/* Closes the connections idle longer than [server] fastcgi_keep_timeout. */
static void pool_sweep(struct pool *p, int64_t now)
{
    for (int i = 0; i < p->cap && p->n; i++) {
        struct fconn *c = &p->c[i];
        if (c->fr.ipcFd >= 0 && now - c->last_ms >= p->keep_timeout_ms)
            pool_drop(p, c);
    }
}

/* Handles one batch of events. -1: a fatal error. */
static int pool_batch(struct pool *p, int with_accept)
{
    for (p->ev_i = 0; p->ev_i < p->ev_n; p->ev_i++) {
        void *tag = p->ev[p->ev_i].data.ptr;
        if (tag == &pool_wake_tag) {
            char buf[16];
            while (read(p->wake_rd, buf, sizeof buf) > 0)
                ;
        } else if (tag == &pool_listen_tag) {
            if (with_accept && !worker_stop && pool_accept(p) < 0)
                return -1;
        } else if (tag) {
            pool_serve(p, tag);
        }
    }
    p->ev_n = 0;
    return 0;
}

/* Until SIGTERM. Each round takes the events ready now and serves one request from each ready
 * connection and at most one new connection, so a busy connection cannot starve the others
 * (epoll reports a connection still readable again at the end of its ready list). Only when
 * nothing is ready are the kept access lines written, and the worker sleeps. */
static int pool_run(struct pool *p)
{
    int64_t next_sweep = util_now_ms() + 1000;
    int rc = 0;
    while (!worker_stop) {
        int n = epoll_wait(p->ep, p->ev, POOL_EVENTS, 0);
        if (n == 0) {
            log_flush();
            /* SIGTERM ends the wait (EINTR, or the pipe). EPOLLEXCLUSIVE wakes one waiting
             * worker per connection; if that worker is being stopped (a reload) it leaves
             * without accepting, and no other worker is woken for that connection: every
             * worker looks again after WAKE_CHECK_MS, so such a connection waits that long
             * at most. */
            n = epoll_wait(p->ep, p->ev, POOL_EVENTS, WAKE_CHECK_MS);
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            log_error("epoll_wait failed: %s", strerror(errno));
            rc = 1;
            break;
        }
        p->ev_n = n;
        if (pool_batch(p, 1) < 0) {
            rc = 1;
            break;
        }
        int64_t now = util_now_ms();
        if (now >= next_sweep) {
            pool_sweep(p, now);
            next_sweep = now + 1000;
        }
    }
    /* Stopping: a request the web server sent on a kept connection just before is served
     * (a reload stops the old workers; the web server opens new connections to the new
     * ones), then every connection is closed. */
    if (p->n && rc == 0) {
        int n = epoll_wait(p->ep, p->ev, POOL_EVENTS, 0);
        if (n > 0) {
            p->ev_n = n;
            pool_batch(p, 0);
        }
    }
    for (int i = 0; i < p->cap && p->n; i++)
        if (p->c[i].fr.ipcFd >= 0)
            pool_drop(p, &p->c[i]);
    return rc;
}

static void pool_close(struct pool *p)
{
    if (p->ep >= 0)
        close(p->ep);
    if (p->wake_rd >= 0)
        close(p->wake_rd);
    if (wake_fd >= 0) {
        int w = wake_fd;
        wake_fd = -1;
        close(w);
    }
    free(p->c);
}

/* Spawned by the web server (lighttpd bin-path, mod_fcgid), the listening socket is the web
 * server's, shared by its processes and blocking: libfcgi accepts and reads the request, and
 * access lines are written at once. A connection the web server keeps is read again by
 * FCGX_Accept_r, which waits on it; neither of these web servers sets FCGI_KEEP_CONN. */
static int spawned_run(const char *config_path, struct llmops_conf *conf, struct app *app,
                       int listen_fd)
{
    FCGX_Request fr;
    FCGX_InitRequest(&fr, listen_fd, 0);
    while (!worker_stop) {
        int rc = FCGX_Accept_r(&fr);
        if (rc < 0) {
            if (worker_stop)
                break;
            if (errno == EINTR || rc == -EINTR)
                continue;
            log_error("accept failed: %s", strerror(-rc));
            break;
        }
        if (worker_reload) {
            worker_reload = 0;
            if (reload_config(config_path, conf) == 0) {
                app_fini(app);
                app_init(app, conf);
                log_info("configuration reloaded");
            }
        }
        struct served sv;
        serve_one(app, &fr, &sv);
        FCGX_Finish_r(&fr);
        finish_one(app, &sv);
    }
    FCGX_Free(&fr, 0);
    return 0;
}

/* Serves requests on listen_fd until SIGTERM/SIGINT. spawned: no master of ours (SIGHUP
 * reloads in place). */
static int worker_loop(const char *config_path, struct llmops_conf *conf, int listen_fd,
                       int spawned)
{
    worker_listen_fd = listen_fd;
    devnull_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = worker_on_term;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = spawned ? worker_on_hup : SIG_IGN;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGHUP);
    sigprocmask(SIG_UNBLOCK, &block, NULL);

    if (FCGX_Init() != 0) {
        log_error("FCGX_Init failed");
        return 1;
    }
    struct app *app = malloc(sizeof *app);
    if (!app)
        return 1;
    app_init(app, conf);
    /* Standalone, the master's socket is non-blocking and the workers accept themselves
     * (pool_run). Under load, access lines are kept ([server] access_log_flush_ms) and written
     * together when nothing is ready, before the worker sleeps. */
    int standalone = !spawned && (fcntl(listen_fd, F_GETFL) & O_NONBLOCK);
    log_access_buffer(standalone ? (int)conf->access_log_flush_ms : 0);
    int rc;
    if (standalone) {
        struct pool p = {.app = app, .ep = -1, .wake_rd = -1};
        rc = pool_open(&p, listen_fd, conf);
        if (rc == 0) {
            log_info("worker ready");
            rc = pool_run(&p);
        } else {
            rc = 1;
        }
        pool_close(&p);
    } else {
        log_info("worker ready");
        rc = spawned_run(config_path, conf, app, listen_fd);
    }
    app_fini(app);
    free(app);
    log_info("worker exiting"); /* writes the kept access lines first */
    log_flush();
    return rc;
}

/* ------------------------------------------------------------------ master */

#define MAX_WORKERS 256
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define STABLE_MS 10000

struct slot {
    pid_t pid;          /* 0 = not running */
    int64_t started_ms; /* when pid was started */
    int64_t respawn_at; /* when to start it again (0 = now) */
    int64_t backoff_ms; /* next delay after a quick death */
};

struct master {
    const struct server_opts *opts;
    struct llmops_conf conf;
    int listen_fd;
    int nslots;
    struct slot slots[MAX_WORKERS];
    pid_t retiring[MAX_WORKERS * 4]; /* old generation, finishing in-flight work */
    int nretiring;
    int64_t retire_deadline;
};

static pid_t spawn_worker(struct master *m)
{
    pid_t pid = fork();
    if (pid < 0) {
        log_error("fork failed: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        log_forked();
        util_forked();
        sigset_t all;
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        signal(SIGCHLD, SIG_DFL);
        int rc = worker_loop(m->opts->config_path, &m->conf, m->listen_fd, 0);
#ifdef __SANITIZE_ADDRESS__
        /* _exit skips LeakSanitizer's check at exit: a leak per request would go unseen */
        __lsan_do_leak_check();
#endif
        _exit(rc);
    }
    return pid;
}

static void start_slot(struct master *m, struct slot *s)
{
    pid_t pid = spawn_worker(m);
    if (pid > 0) {
        s->pid = pid;
        s->started_ms = util_now_ms();
        s->respawn_at = 0;
    } else {
        s->respawn_at = util_now_ms() + BACKOFF_MIN_MS;
    }
}

static void reap(struct master *m, int stopping)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (int i = 0; i < m->nretiring; i++) {
            if (m->retiring[i] == pid) {
                m->retiring[i] = m->retiring[--m->nretiring];
                pid = 0;
                break;
            }
        }
        if (pid == 0)
            continue;
        for (int i = 0; i < m->nslots; i++) {
            struct slot *s = &m->slots[i];
            if (s->pid != pid)
                continue;
            s->pid = 0;
            if (stopping)
                break;
            int64_t now = util_now_ms();
            if (now - s->started_ms >= STABLE_MS)
                s->backoff_ms = 0;
            int64_t delay = s->backoff_ms;
            s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : BACKOFF_MIN_MS;
            if (s->backoff_ms > BACKOFF_MAX_MS)
                s->backoff_ms = BACKOFF_MAX_MS;
            s->respawn_at = now + delay;
            if (WIFSIGNALED(status))
                log_error("worker %d killed by signal %d (%s); respawning in %lld ms", (int)pid,
                          WTERMSIG(status), strsignal(WTERMSIG(status)), (long long)delay);
            else
                log_error("worker %d exited with status %d; respawning in %lld ms", (int)pid,
                          WEXITSTATUS(status), (long long)delay);
            break;
        }
    }
}

static int running_count(struct master *m)
{
    int n = m->nretiring;
    for (int i = 0; i < m->nslots; i++)
        if (m->slots[i].pid > 0)
            n++;
    return n;
}

static void master_reload(struct master *m)
{
    char *old_listen = m->conf.listen ? strdup(m->conf.listen) : NULL;
    if (reload_config(m->opts->config_path, &m->conf) < 0) {
        free(old_listen);
        return;
    }
    if ((old_listen || m->conf.listen) &&
        (!old_listen || !m->conf.listen || strcmp(old_listen, m->conf.listen) != 0) &&
        !m->opts->listen)
        log_warning("[server] listen changed: it takes effect at the next restart, not on reload");
    free(old_listen);
    /* Retire the current generation: each finishes its request in flight, then exits. */
    for (int i = 0; i < m->nslots; i++) {
        if (m->slots[i].pid > 0 && m->nretiring < (int)UTIL_ARRAY_LEN(m->retiring)) {
            kill(m->slots[i].pid, SIGTERM);
            m->retiring[m->nretiring++] = m->slots[i].pid;
        }
    }
    m->retire_deadline = util_now_ms() + m->conf.shutdown_timeout * 1000;
    m->nslots = (int)(m->opts->workers > 0 ? m->opts->workers : m->conf.workers);
    memset(m->slots, 0, sizeof m->slots);
    for (int i = 0; i < m->nslots; i++)
        start_slot(m, &m->slots[i]);
    log_info("configuration reloaded: %d new workers started, %d retiring", m->nslots,
             m->nretiring);
}

static void write_pid_file(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        log_error("cannot write pid file %s: %s", path, strerror(errno));
        return;
    }
    fprintf(f, "%d\n", (int)getpid());
    fclose(f);
}

static int open_listen_socket(const char *spec, const struct llmops_conf *conf)
{
    const char *path = spec;
    int is_unix = strncmp(spec, "unix:", 5) == 0;
    if (is_unix)
        path = spec + 5;
    /* libfcgi takes "HOST:PORT" for TCP and a plain path for a unix socket. */
    int fd = FCGX_OpenSocket(path, 1024);
    if (fd < 0) {
        log_error("cannot listen on %s: %s", spec, strerror(errno));
        return -1;
    }
    /* the workers accept themselves (worker_loop); accepted sockets do not inherit it */
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        log_error("cannot make the listening socket non-blocking: %s", strerror(errno));
        close(fd);
        return -1;
    }
    if (is_unix) {
        /* The web server's user must reach the socket: its group and mode come from the
         * configuration (php-fpm's listen.group / listen.mode). */
        if (conf->listen_group && *conf->listen_group) {
            struct group *g = getgrnam(conf->listen_group);
            if (!g || chown(path, (uid_t)-1, g->gr_gid) != 0) {
                log_error("cannot give %s to group '%s': %s", path, conf->listen_group,
                          g ? strerror(errno) : "no such group");
                close(fd);
                unlink(path);
                return -1;
            }
        }
        if (chmod(path, (mode_t)conf->listen_mode) != 0) {
            log_error("cannot chmod %s: %s", path, strerror(errno));
            close(fd);
            unlink(path);
            return -1;
        }
    }
    return fd;
}

static int master_run(const struct server_opts *opts, struct llmops_conf *conf,
                      const char *listen_spec)
{
    struct master *m = calloc(1, sizeof *m);
    if (!m) {
        conf_free(conf);
        return 1;
    }
    m->opts = opts;
    m->conf = *conf; /* the master owns it from here: freed on every way out */
    if (FCGX_Init() != 0) {
        log_error("FCGX_Init failed");
        goto fail;
    }
    m->listen_fd = open_listen_socket(listen_spec, &m->conf); /* says why it failed */
    if (m->listen_fd < 0)
        goto fail;
    if (!opts->foreground) {
        pid_t pid = fork();
        if (pid < 0) {
            log_error("fork failed: %s", strerror(errno));
            close(m->listen_fd);
            goto fail;
        }
        if (pid > 0)
            _exit(0);
        setsid();
        int fd = open("/dev/null", O_RDWR);
        if (fd >= 0) {
            dup2(fd, STDIN_FILENO);
            dup2(fd, STDOUT_FILENO);
            if (fd > 2)
                close(fd);
        }
    }
    const char *pid_file = opts->pid_file ? opts->pid_file : m->conf.pid_file;
    if (pid_file && *pid_file)
        write_pid_file(pid_file);

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    m->nslots = (int)(opts->workers > 0 ? opts->workers : m->conf.workers);
    for (int i = 0; i < m->nslots; i++)
        start_slot(m, &m->slots[i]);
    log_info("llm-opsd master listening on %s with %d workers", listen_spec, m->nslots);

    int stopping = 0;
    int64_t stop_deadline = 0;
    for (;;) {
        int64_t now = util_now_ms();
        int64_t wake = now + 1000;
        if (!stopping) {
            for (int i = 0; i < m->nslots; i++) {
                struct slot *s = &m->slots[i];
                if (s->pid == 0) {
                    if (s->respawn_at <= now)
                        start_slot(m, s);
                    else if (s->respawn_at < wake)
                        wake = s->respawn_at;
                }
            }
        }
        if (m->nretiring && m->retire_deadline && now >= m->retire_deadline) {
            for (int i = 0; i < m->nretiring; i++)
                kill(m->retiring[i], SIGKILL);
            m->retire_deadline = 0;
        }
        if (stopping) {
            if (running_count(m) == 0)
                break;
            if (now >= stop_deadline) {
                log_warning("workers still busy after %lld s: killing them",
                            m->conf.shutdown_timeout);
                for (int i = 0; i < m->nslots; i++)
                    if (m->slots[i].pid > 0)
                        kill(m->slots[i].pid, SIGKILL);
                for (int i = 0; i < m->nretiring; i++)
                    kill(m->retiring[i], SIGKILL);
                stop_deadline = now + 60000;
            }
        }
        int64_t wait_ms = wake - now;
        if (wait_ms < 1)
            wait_ms = 1;
        struct timespec ts = {.tv_sec = wait_ms / 1000, .tv_nsec = (wait_ms % 1000) * 1000000};
        siginfo_t info;
        int sig = sigtimedwait(&set, &info, &ts);
        if (sig == SIGCHLD) {
            reap(m, stopping);
        } else if ((sig == SIGTERM || sig == SIGINT) && !stopping) {
            log_info("stopping: workers finish their requests in flight (up to %lld s)",
                     m->conf.shutdown_timeout);
            stopping = 1;
            stop_deadline = util_now_ms() + m->conf.shutdown_timeout * 1000;
            for (int i = 0; i < m->nslots; i++)
                if (m->slots[i].pid > 0)
                    kill(m->slots[i].pid, SIGTERM);
            for (int i = 0; i < m->nretiring; i++)
                kill(m->retiring[i], SIGTERM);
            reap(m, 1);
        } else if (sig == SIGHUP && !stopping) {
            master_reload(m);
        }
    }
    if (pid_file && *pid_file)
        unlink(pid_file);
    if (strncmp(listen_spec, "unix:", 5) == 0)
        unlink(listen_spec + 5);
    log_info("llm-opsd stopped");
    conf_free(&m->conf);
    free(m);
    return 0;
fail:
    conf_free(&m->conf);
    free(m);
    return 1;
}

int server_run(const struct server_opts *opts)
{
    struct llmops_conf conf;
    struct conf_errors errs = {0};
    if (conf_load(opts->config_path, &conf, &errs) > 0) {
        for (int i = 0; i < errs.n; i++)
            log_error("%s", errs.msgs[i]);
        conf_errors_free(&errs);
        conf_free(&conf);
        return 2;
    }
    conf_errors_free(&errs);
    log_set_level(conf.log_level);
    log_set_json(conf.log_json);
    const char *listen_spec = opts->listen ? opts->listen : conf.listen;
    /* The master makes the metrics file anew (a full restart resets the counters) and its
     * workers inherit the mapping; a worker spawned by the web server attaches to the file
     * the first of them made. */
    if (!conf.metrics_enabled)
        metrics_disable();
    else
        metrics_open(conf.metrics_shm_file, listen_spec && *listen_spec);
    if (listen_spec && *listen_spec) {
        char *spec = strdup(listen_spec);
        if (!spec) {
            conf_free(&conf);
            return 1;
        }
        int rc = master_run(opts, &conf, spec);
        free(spec);
        return rc;
    }
    /* Spawned by the web server: FastCGI on fd 0. */
    if (FCGX_IsCGI()) {
        log_error("no --listen given and standard input is not a FastCGI socket: run llm-opsd "
                  "from the web server (lighttpd bin-path, mod_fcgid) or with --listen");
        conf_free(&conf);
        return 2;
    }
    int rc = worker_loop(opts->config_path, &conf, 0, 1);
    conf_free(&conf);
    return rc;
}
