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
#include <poll.h>
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

/* Standalone: the worker waits for a connection in epoll_wait with EPOLLEXCLUSIVE, so one
 * connection wakes one idle worker, not all of them (poll(2) would wake every one, and all
 * but one would find nothing to accept). Returns the epoll descriptor, or -1 (then poll). */
static int make_waiter(int listen_fd)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    int p[2];
    if (ep < 0)
        return -1;
    if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) {
        close(ep);
        return -1;
    }
    struct epoll_event a = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.fd = listen_fd};
    struct epoll_event b = {.events = EPOLLIN, .data.fd = p[0]};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, listen_fd, &a) != 0 ||
        epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &b) != 0) {
        close(ep);
        close(p[0]);
        close(p[1]);
        return -1;
    }
    wake_fd = p[1];
    return ep;
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
    FCGX_Request fr;
    FCGX_InitRequest(&fr, listen_fd, 0);
    /* Standalone, the master's socket is non-blocking and the workers accept themselves: an
     * accept that finds nothing waiting is the moment to write the access lines kept
     * ([server] access_log_flush_ms) before sleeping in poll(2), so under load the lines cost
     * one write(2) per batch and none waits once the worker is idle. The connection is handed
     * to libfcgi as an open one (ipcFd, keepConnection so that FCGX_Accept_r's own Finish
     * does not close it); libfcgi sets keepConnection again from the request. Spawned by a
     * web server, the socket is the web server's: libfcgi accepts, and lines are written at
     * once. */
    int own_accept = !spawned && (fcntl(listen_fd, F_GETFL) & O_NONBLOCK);
    int waiter = own_accept ? make_waiter(listen_fd) : -1;
    struct sockaddr_storage self;
    socklen_t slen = sizeof self;
    int tcp = own_accept && getsockname(listen_fd, (struct sockaddr *)&self, &slen) == 0 &&
              (self.ss_family == AF_INET || self.ss_family == AF_INET6);
    log_access_buffer(own_accept ? (int)conf->access_log_flush_ms : 0);
    log_info("worker ready");
    while (!worker_stop) {
        if (own_accept && fr.ipcFd >= 0) {
            /* the web server kept the connection (FCGI_KEEP_CONN: nginx fastcgi_keep_conn):
             * libfcgi reads the next request from it, and may wait there, so nothing kept
             * may wait with it */
            log_flush();
        } else if (own_accept) {
            struct sockaddr_storage peer;
            socklen_t plen = sizeof peer;
            int fd = accept4(listen_fd, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC);
            if (fd < 0) {
                int e = errno;
                if (worker_stop)
                    break;
                if (e == EAGAIN || e == EWOULDBLOCK) {
                    log_flush();
                    if (waiter >= 0) {
                        /* SIGTERM ends the wait (EINTR, or the pipe). EPOLLEXCLUSIVE wakes one
                         * waiting worker per connection; if that worker is being stopped
                         * (a reload) it leaves without accepting, and no other worker is
                         * woken for that connection: every worker looks again after
                         * WAKE_CHECK_MS, so such a connection waits that long at most. */
                        struct epoll_event ev[2];
                        epoll_wait(waiter, ev, 2, WAKE_CHECK_MS);
                    } else {
                        struct pollfd p = {.fd = listen_fd, .events = POLLIN};
                        poll(&p, 1, -1); /* SIGTERM: EINTR, or /dev/null is readable */
                    }
                    continue;
                }
                if (e == EINTR || e == ECONNABORTED || e == EPROTO || e == EMFILE || e == ENFILE ||
                    e == ENOBUFS || e == ENOMEM) {
                    if (e != EINTR && e != ECONNABORTED) {
                        log_error("accept failed: %s", strerror(e));
                        struct timespec pause = {0, 100 * 1000 * 1000};
                        nanosleep(&pause, NULL);
                    }
                    continue;
                }
                log_error("accept failed: %s", strerror(e));
                break;
            }
            if (tcp && !tcp_peer_ok(fd, &peer)) {
                close(fd);
                continue;
            }
            fr.ipcFd = fd;
            fr.keepConnection = 1;
        }
        int rc = FCGX_Accept_r(&fr);
        if (rc < 0) {
            if (worker_stop)
                break;
            if (errno == EINTR || rc == -EINTR)
                continue;
            /* own_accept: the request could not be read and libfcgi tried to accept another
             * on the non-blocking socket */
            if (own_accept && (rc == -EAGAIN || rc == -EWOULDBLOCK))
                continue;
            log_error("accept failed: %s", strerror(rc < 0 ? -rc : errno));
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
    app_fini(app);
    free(app);
    log_info("worker exiting"); /* writes the kept access lines first */
    log_flush();
    return 0;
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
    if (fd < 0)
        return -1;
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
                return -1;
            }
        }
        if (chmod(path, (mode_t)conf->listen_mode) != 0) {
            log_error("cannot chmod %s: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
    }
    return fd;
}

static int master_run(const struct server_opts *opts, struct llmops_conf *conf,
                      const char *listen_spec)
{
    struct master *m = calloc(1, sizeof *m);
    if (!m)
        return 1;
    m->opts = opts;
    m->conf = *conf;
    if (FCGX_Init() != 0) {
        log_error("FCGX_Init failed");
        return 1;
    }
    m->listen_fd = open_listen_socket(listen_spec, &m->conf);
    if (m->listen_fd < 0) {
        log_error("cannot listen on %s: %s", listen_spec, strerror(errno));
        return 1;
    }
    if (!opts->foreground) {
        pid_t pid = fork();
        if (pid < 0) {
            log_error("fork failed: %s", strerror(errno));
            return 1;
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
