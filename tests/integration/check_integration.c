/* Integration tests: the real llm-ops stack (tests/harness/stack: a private PostgreSQL,
 * llm-opsd and lighttpd on 127.0.0.1) driven over HTTP with libcurl, against doc/api.md and
 * doc/config-and-cli.md.
 *
 * Two test cases, each with an unchecked fixture that starts its own stack once and stops it
 * at the end:
 *   standalone  llm-opsd --listen (a master and 2 workers) behind lighttpd: the API, every
 *               error class, ETag/304, the route table from doc/openapi.json, cache
 *               invalidation and token revocation across workers, then the process model:
 *               SIGHUP reload, a worker killed by SIGSEGV, a PostgreSQL outage, SIGTERM
 *               draining a request in flight (last: it stops the server).
 *   spawned     lighttpd starts llm-opsd itself (bin-path, 2 processes).
 *
 * Environment: LLMOPS_SOURCE_DIR (the source tree), LLMOPS_BIN_DIR (llm-opsd, llm-opsctl),
 * TMPDIR (where the stacks live), LLMOPS_KEEP_STATE=1 (keep the stacks' directories and
 * logs instead of removing them). Each test runs in a child process (CK_FORK) with a
 * timeout; a test only reads the stack's state, so one failure does not hide the others. */
#include <check.h>
#include <ctype.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef LLMOPS_DEFAULT_SOURCE_DIR
#define LLMOPS_DEFAULT_SOURCE_DIR "."
#endif
#ifndef LLMOPS_DEFAULT_BIN_DIR
#define LLMOPS_DEFAULT_BIN_DIR "./bin"
#endif
#define PGBIN "/usr/lib/postgresql/15/bin"
#define WORKERS 2
/* The default [server] max_body_bytes (doc/config-and-cli.md). */
#define MAX_BODY_BYTES 1048576

/* ---------------------------------------------------------------------------------------- */
/* Small utilities                                                                           */

static char src_dir[1024], bin_dir[1024];
static pid_t runner_pid;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Runs a shell command; returns its exit status, or -1 when it did not exit normally. */
static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int st = system(cmd);
    if (st == -1 || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

/* Runs a shell command and returns its stdout (malloc'd, trailing newlines cut); *status
 * gets the exit status. */
static char *capture(int *status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *capture(int *status, const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    FILE *p = popen(cmd, "r");
    size_t cap = 4096, len = 0;
    char *out = malloc(cap);
    ck_assert_ptr_nonnull(out);
    out[0] = '\0';
    if (!p) {
        *status = -1;
        return out;
    }
    size_t n;
    while ((n = fread(out + len, 1, cap - len - 1, p)) > 0) {
        len += n;
        if (cap - len < 2) {
            cap *= 2;
            out = realloc(out, cap);
            ck_assert_ptr_nonnull(out);
        }
    }
    out[len] = '\0';
    while (len > 0 && (out[len - 1] == '\n' || out[len - 1] == '\r'))
        out[--len] = '\0';
    int st = pclose(p);
    *status = (st != -1 && WIFEXITED(st)) ? WEXITSTATUS(st) : -1;
    return out;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    size_t cap = 8192, len = 0, n;
    char *buf = malloc(cap);
    while (buf && (n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len < 2)
            buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    if (buf)
        buf[len] = '\0';
    return buf;
}

static int write_file(const char *path, const char *text)
{
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    fputs(text, f);
    if (fclose(f) != 0)
        return -1;
    return rename(tmp, path);
}

/* ---------------------------------------------------------------------------------------- */
/* The stack under test                                                                      */

struct stack {
    char dir[512];    /* the state directory (tests/harness/stack start DIR) */
    char url[512];    /* http://127.0.0.1:PORT/llm-ops/v1 */
    char origin[512]; /* http://127.0.0.1:PORT */
    char admin[256], op[256], reader[256];
    char pghost[512];
    int pgport;
    char config[600];
    char pid_file[600];
    char mode[32];
};

static struct stack st; /* the stack of the running test case */

static void env_value(const char *env, const char *key, char *out, size_t size)
{
    size_t k = strlen(key);
    out[0] = '\0';
    for (const char *line = env; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len > k && strncmp(line, key, k) == 0 && line[k] == '=') {
            snprintf(out, size, "%.*s", (int)(len - k - 1), line + k + 1);
            return;
        }
        line = end ? end + 1 : NULL;
    }
}

static void stack_read_env(struct stack *s)
{
    char path[600], port[32];
    snprintf(path, sizeof path, "%s/env", s->dir);
    char *env = read_file(path);
    ck_assert_msg(env != NULL, "no %s", path);
    env_value(env, "LLMOPS_URL", s->url, sizeof s->url);
    env_value(env, "LLMOPS_ADMIN_TOKEN", s->admin, sizeof s->admin);
    env_value(env, "LLMOPS_OPERATOR_TOKEN", s->op, sizeof s->op);
    env_value(env, "LLMOPS_READER_TOKEN", s->reader, sizeof s->reader);
    env_value(env, "PGHOST", s->pghost, sizeof s->pghost);
    env_value(env, "PGPORT", port, sizeof port);
    env_value(env, "LLMOPS_CONFIG", s->config, sizeof s->config);
    env_value(env, "LLMOPS_PID_FILE", s->pid_file, sizeof s->pid_file);
    env_value(env, "LLMOPS_MODE", s->mode, sizeof s->mode);
    free(env);
    s->pgport = atoi(port);
    ck_assert_msg(strncmp(s->url, "http://127.0.0.1:", 17) == 0, "LLMOPS_URL='%s'", s->url);
    ck_assert_msg(s->admin[0] && s->op[0] && s->reader[0], "a token is missing in %s", path);
    ck_assert_msg(s->pgport > 0 && s->config[0], "PGPORT or LLMOPS_CONFIG missing in %s", path);
    snprintf(s->origin, sizeof s->origin, "%s", s->url);
    char *p = strstr(s->origin + 7, "/llm-ops/");
    if (p)
        *p = '\0';
}

/* The state directories of the stacks started, for the end of the run. */
static char started[6][512];
static int nstarted;

/* Stops the running stack's processes; its directory stays until finish_stacks(). */
static void stack_stop_now(void)
{
    if (!st.dir[0])
        return;
    sh("LLMOPS_BIN_DIR='%s' '%s/tests/harness/stack' stop '%s' >/dev/null", bin_dir, src_dir,
       st.dir);
    st.dir[0] = '\0';
}

/* After the run: when a test failed, the tails of the logs; then each directory is removed,
 * unless LLMOPS_KEEP_STATE is set. */
static void finish_stacks(int failed)
{
    const char *keep = getenv("LLMOPS_KEEP_STATE");
    int clean = !(keep && *keep && strcmp(keep, "0") != 0);
    for (int i = 0; i < nstarted; i++) {
        const char *dir = started[i];
        if (failed)
            sh("for f in '%s'/llm-opsd.log '%s'/lighttpd.log; do [ -f \"$f\" ] || continue; "
               "echo \"== $f (last 40 lines)\"; tail -n 40 \"$f\"; done >&2",
               dir, dir);
        if (!clean) {
            fprintf(stderr, "integration: the stack's state is kept in %s\n", dir);
            continue;
        }
        sh("LLMOPS_BIN_DIR='%s' '%s/tests/harness/stack' stop '%s' --clean >/dev/null", bin_dir,
           src_dir, dir);
        char path[3200];
        snprintf(path, sizeof path, "%s.start.log", dir);
        unlink(path);
        char *slash = strrchr(path, '/');
        if (slash) {
            *slash = '\0';
            rmdir(path);
        }
    }
    nstarted = 0;
}

/* Starts a stack; extra: more options of tests/harness/stack start ("" for none), where
 * "%B" stands for the directory the stack's directory is made in (for drop-ins written
 * there by prepare). */
static void stack_start_with(const char *mode, const char *extra,
                             void (*prepare)(const char *base));

static void stack_start(const char *mode)
{
    stack_start_with(mode, "", NULL);
}

static void stack_start_with(const char *mode, const char *extra, void (*prepare)(const char *base))
{
    memset(&st, 0, sizeof st);
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp || strlen(tmp) > 60)
        tmp = "/tmp";
    char base[256];
    snprintf(base, sizeof base, "%s/llmops-it.XXXXXX", tmp);
    ck_assert_msg(mkdtemp(base) != NULL, "mkdtemp %s: %s", base, strerror(errno));
    chmod(base, 0755); /* PostgreSQL runs as postgres and must reach its directory */
    snprintf(st.dir, sizeof st.dir, "%s/%s", base, mode);
    if (nstarted < 6)
        snprintf(started[nstarted++], sizeof started[0], "%s", st.dir);
    if (prepare)
        prepare(base);
    char opts[2048] = "";
    for (const char *p = extra; *p && strlen(opts) + strlen(base) + 2 < sizeof opts; p++) {
        if (p[0] == '%' && p[1] == 'B') {
            strcat(opts, base);
            p++;
        } else {
            size_t n = strlen(opts);
            opts[n] = *p;
            opts[n + 1] = '\0';
        }
    }
    double t0 = now_s();
    int rc = sh("LLMOPS_BIN_DIR='%s' '%s/tests/harness/stack' start '%s' --mode %s --workers %d "
                "%s >'%s.start.log' 2>&1",
                bin_dir, src_dir, st.dir, mode, WORKERS, opts, st.dir);
    if (rc != 0) {
        int s;
        char *log = capture(&s, "cat '%s.start.log'", st.dir);
        fprintf(stderr, "integration: stack start failed (%d):\n%s\n", rc, log);
        free(log);
        ck_abort_msg("tests/harness/stack start %s --mode %s failed with %d", st.dir, mode, rc);
    }
    char log[600];
    snprintf(log, sizeof log, "%s.start.log", st.dir);
    unlink(log);
    stack_read_env(&st);
    fprintf(stderr, "integration: %s stack up in %.1f s at %s (%s)\n", mode, now_s() - t0, st.url,
            st.dir);
}

static void on_signal(int sig)
{
    if (getpid() == runner_pid) {
        stack_stop_now();
        finish_stacks(0);
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

static void setup_standalone(void)
{
    stack_start("standalone");
}

static void setup_spawned(void)
{
    stack_start("spawned");
}

static void teardown_stack(void)
{
    stack_stop_now();
}

static pid_t master_pid(void)
{
    char *text = read_file(st.pid_file);
    pid_t pid = text ? (pid_t)strtol(text, NULL, 10) : 0;
    free(text);
    return pid;
}

/* The live (not zombie) children of parent, from /proc; returns how many, up to max. */
static int children_of(pid_t parent, pid_t *out, int max)
{
    DIR *d = opendir("/proc");
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (!isdigit((unsigned char)e->d_name[0]))
            continue;
        char path[300], buf[1024];
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = '\0';
        char *p = strrchr(buf, ')');
        char state;
        int ppid;
        if (!p || sscanf(p + 1, " %c %d", &state, &ppid) != 2)
            continue;
        if (ppid == parent && state != 'Z' && state != 'X') {
            if (n < max)
                out[n] = (pid_t)atoi(e->d_name);
            n++;
        }
    }
    if (d)
        closedir(d);
    return n;
}

/* Waits up to seconds for parent to have exactly want children; returns the last count. */
static int wait_children(pid_t parent, int want, double seconds, pid_t *out, int max)
{
    double end = now_s() + seconds;
    int n;
    while ((n = children_of(parent, out, max)) != want && now_s() < end)
        sleep_ms(50);
    return n;
}

/* llm-opsctl ARGS: its stdout; stderr goes to the test's output. */
static char *ctl(int *status, const char *args)
{
    return capture(status, "'%s/llm-opsctl' --config '%s' %s", bin_dir, st.config, args);
}

static char *psql(int *status, const char *sql)
{
    return capture(status, "'%s/psql' -X -q -tA -h '%s' -p %d -U postgres -d llmops -c \"%s\" 2>&1",
                   PGBIN, st.pghost, st.pgport, sql);
}

/* ---------------------------------------------------------------------------------------- */
/* HTTP                                                                                      */

struct resp {
    long status;
    char *body;
    size_t len;
    char headers[8192];
    size_t hlen;
    double secs;
    json_t *json;
    char curl_error[CURL_ERROR_SIZE];
};

struct req {
    const char *token; /* Authorization: Bearer TOKEN */
    const char *ctype; /* Content-Type; NULL with a body: none at all */
    const char *body;
    size_t body_len;    /* 0: strlen(body) */
    const char *hdr[4]; /* more header lines */
    long timeout_ms;    /* 0: 15 s */
};

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    struct resp *r = ud;
    size_t k = sz * n;
    char *nb = realloc(r->body, r->len + k + 1);
    if (!nb)
        return 0;
    r->body = nb;
    memcpy(r->body + r->len, p, k);
    r->len += k;
    r->body[r->len] = '\0';
    return k;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    struct resp *r = ud;
    size_t k = sz * n;
    if (k >= 5 && strncmp(p, "HTTP/", 5) == 0) /* a new response (e.g. after 100): restart */
        r->hlen = 0;
    if (r->hlen + k < sizeof r->headers) {
        memcpy(r->headers + r->hlen, p, k);
        r->hlen += k;
        r->headers[r->hlen] = '\0';
    }
    return k;
}

static void resp_free(struct resp *r)
{
    free(r->body);
    r->body = NULL;
    json_decref(r->json);
    r->json = NULL;
}

/* Sets up handle c for one request (see http()); *hl gets the header list to free after. */
static void http_setup(CURL *c, int reuse, struct resp *r, const char *method, const char *path,
                       const struct req *q, struct curl_slist **hl)
{
    static const struct req none;
    if (!q)
        q = &none;
    memset(r, 0, sizeof *r);
    char url[2048], auth[400], ct[300];
    snprintf(url, sizeof url, "%s%s", strncmp(path, "/llm-ops/", 9) == 0 ? st.origin : st.url,
             path);
    struct curl_slist *h = NULL;
    if (q->token) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", q->token);
        h = curl_slist_append(h, auth);
    }
    if (q->ctype) {
        snprintf(ct, sizeof ct, "Content-Type: %s", q->ctype);
        h = curl_slist_append(h, ct);
    } else if (q->body) {
        h = curl_slist_append(h, "Content-Type:"); /* no Content-Type at all */
    }
    for (int i = 0; i < 4 && q->hdr[i]; i++)
        h = curl_slist_append(h, q->hdr[i]);
    h = curl_slist_append(h, "Expect:");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, r->curl_error);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, q->timeout_ms ? q->timeout_ms : 15000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_FORBID_REUSE, reuse ? 0L : 1L);
    if (q->body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, q->body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)(q->body_len ? q->body_len : strlen(q->body)));
    }
    *hl = h;
}

static void http_finish(CURL *c, CURLcode rc, struct resp *r, struct curl_slist *h)
{
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    else if (!r->curl_error[0])
        snprintf(r->curl_error, sizeof r->curl_error, "%s", curl_easy_strerror(rc));
    curl_slist_free_all(h);
    if (r->len)
        r->json = json_loadb(r->body, r->len, 0, NULL);
}

/* One request on handle c, which keeps its connection to the web server for the next one
 * (a client that reads right after its write, with no new connection in between). */
static void http_on(CURL *c, struct resp *r, const char *method, const char *path,
                    const struct req *q)
{
    struct curl_slist *h;
    curl_easy_reset(c);
    http_setup(c, 1, r, method, path, q, &h);
    double t0 = now_s();
    CURLcode rc = curl_easy_perform(c);
    r->secs = now_s() - t0;
    http_finish(c, rc, r, h);
}

/* One request. path: "/gpu-types?env=dev" (under LLMOPS_URL) or "/llm-ops/..." (from the
 * origin). The answer's body is parsed into r->json when it is JSON. */
static void http(struct resp *r, const char *method, const char *path, const struct req *q)
{
    CURL *c = curl_easy_init();
    ck_assert_ptr_nonnull(c);
    struct curl_slist *h;
    http_setup(c, 0, r, method, path, q, &h);
    double t0 = now_s();
    CURLcode rc = curl_easy_perform(c);
    r->secs = now_s() - t0;
    http_finish(c, rc, r, h);
    curl_easy_cleanup(c);
}

/* n requests sent at the same time (each on its own connection); r[i] answers the i-th. */
static void http_parallel(int n, struct resp *r, const char *const *method, const char *const *path,
                          const struct req *q)
{
    CURLM *m = curl_multi_init();
    CURL *c[16];
    struct curl_slist *h[16];
    ck_assert(n <= 16);
    for (int i = 0; i < n; i++) {
        c[i] = curl_easy_init();
        ck_assert_ptr_nonnull(c[i]);
        http_setup(c[i], 0, &r[i], method[i], path[i], &q[i], &h[i]);
        curl_multi_add_handle(m, c[i]);
    }
    int running = 1;
    while (running) {
        curl_multi_perform(m, &running);
        if (running)
            curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(m, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        for (int i = 0; i < n; i++)
            if (c[i] == msg->easy_handle)
                http_finish(c[i], msg->data.result, &r[i], h[i]);
    }
    for (int i = 0; i < n; i++) {
        curl_multi_remove_handle(m, c[i]);
        curl_easy_cleanup(c[i]);
    }
    curl_multi_cleanup(m);
}

/* The value of header name (case-insensitive) into out; returns 0 when absent. */
static int header(const struct resp *r, const char *name, char *out, size_t size)
{
    size_t k = strlen(name);
    for (const char *line = r->headers; line && *line;) {
        const char *end = strstr(line, "\r\n");
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len > k && strncasecmp(line, name, k) == 0 && line[k] == ':') {
            const char *v = line + k + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            size_t vl = len - (size_t)(v - line);
            while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
                vl--;
            if (out)
                snprintf(out, size, "%.*s", (int)vl, v);
            return 1;
        }
        line = end ? end + 2 : NULL;
    }
    return 0;
}

/* json at a dotted path ("data.error.code"); NULL when absent. */
static json_t *jget(json_t *j, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    char *save = NULL;
    for (char *k = strtok_r(buf, ".", &save); k && j; k = strtok_r(NULL, ".", &save))
        j = json_object_get(j, k);
    return j;
}

static const char *jstr(json_t *j, const char *path)
{
    return json_string_value(jget(j, path));
}

static const char *body_of(const struct resp *r)
{
    return r->body ? r->body : (r->curl_error[0] ? r->curl_error : "(no body)");
}

static int is_hex32(const char *s)
{
    if (!s || strlen(s) != 32)
        return 0;
    for (; *s; s++)
        if (!isxdigit((unsigned char)*s))
            return 0;
    return 1;
}

/* Formats what is wrong into a static buffer and returns it. */
static const char *problem(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *problem(const char *fmt, ...)
{
    static char why[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return why;
}

/* Checks the envelope of any answer with a body; returns NULL or what is wrong. */
static const char *envelope_problem(const struct resp *r, const char *want_status)
{
    char ct[200] = "", rid[200] = "";
    if (!r->json || !json_is_object(r->json))
        return problem("HTTP %ld: the body is not a JSON object: %.300s", r->status, body_of(r));
    if (!header(r, "Content-Type", ct, sizeof ct) || strncmp(ct, "application/json", 16) != 0)
        return problem("HTTP %ld: Content-Type '%s'", r->status, ct);
    if (!header(r, "X-Request-Id", rid, sizeof rid) || !rid[0])
        return problem("HTTP %ld: no X-Request-Id header", r->status);
    if (json_object_size(r->json) != 3 || !json_object_get(r->json, "status") ||
        !json_object_get(r->json, "message") || !json_object_get(r->json, "data"))
        return problem("HTTP %ld: the envelope must have exactly status, message, data: %.300s",
                       r->status, r->body);
    const char *status = jstr(r->json, "status");
    if (!status || strcmp(status, want_status) != 0)
        return problem("HTTP %ld: status '%s', expected '%s': %.300s", r->status,
                       status ? status : "(not a string)", want_status, r->body);
    if (!json_is_string(json_object_get(r->json, "message")))
        return problem("HTTP %ld: message is not a string", r->status);
    return NULL;
}

/* An error answer: the HTTP status, the envelope, data.error.code and request_id (equal to
 * the X-Request-Id header). Returns NULL or what is wrong. */
static const char *error_problem(const struct resp *r, long status, const char *code)
{
    if (r->status != status)
        return problem("HTTP %ld, expected %ld (%s): %.400s", r->status, status, code, body_of(r));
    const char *p = envelope_problem(r, "error");
    if (p)
        return p;
    if (!json_is_object(jget(r->json, "data.error")))
        return problem("no data.error object: %.300s", r->body);
    const char *got = jstr(r->json, "data.error.code");
    if (!got || strcmp(got, code) != 0)
        return problem("data.error.code '%s', expected '%s': %.300s", got ? got : "(none)", code,
                       r->body);
    const char *rid = jstr(r->json, "data.error.request_id");
    char hrid[200] = "";
    header(r, "X-Request-Id", hrid, sizeof hrid);
    if (!rid || !*rid || strcmp(rid, hrid) != 0)
        return problem("data.error.request_id '%s' is not the X-Request-Id header '%s'",
                       rid ? rid : "(none)", hrid);
    const char *msg = jstr(r->json, "message");
    if (!msg || !*msg)
        return problem("an error without a message: %.300s", r->body);
    return NULL;
}

static const char *success_problem(const struct resp *r, long status)
{
    if (r->status != status)
        return problem("HTTP %ld, expected %ld: %.400s", r->status, status, body_of(r));
    return envelope_problem(r, "success");
}

#define ASSERT_OK(r, status)                                                                       \
    do {                                                                                           \
        const char *why_ = success_problem((r), (status));                                         \
        ck_assert_msg(why_ == NULL, "%s", why_);                                                   \
    } while (0)

#define ASSERT_ERROR(r, status, code)                                                              \
    do {                                                                                           \
        const char *why_ = error_problem((r), (status), (code));                                   \
        ck_assert_msg(why_ == NULL, "%s", why_);                                                   \
    } while (0)

#define ASSERT_MESSAGE_HAS(r, text)                                                                \
    ck_assert_msg(jstr((r)->json, "message") && strstr(jstr((r)->json, "message"), (text)),        \
                  "message '%s' does not contain '%s'", jstr((r)->json, "message"), (text))

/* A GPU type body; name may be NULL (member left out). */
static char *gpu_json(const char *name, int memory_gib, int capacity)
{
    char *out = malloc(1024);
    ck_assert_ptr_nonnull(out);
    char namepart[200] = "";
    if (name)
        snprintf(namepart, sizeof namepart, "\"name\": \"%s\", ", name);
    snprintf(
        out, 1024,
        "{%s\"vendor\": \"nvidia\", \"model\": \"L40S\", \"memory_gib\": %d, "
        "\"resource_name\": \"nvidia.com/gpu\", "
        "\"node_selector\": {\"key\": \"nvidia.com/gpu.product\", \"value\": \"NVIDIA-L40S\"}, "
        "\"capacity\": %d}",
        namepart, memory_gib, capacity);
    return out;
}

/* A unique GPU type name for this test process. */
static void uniq_name(char *out, size_t size, const char *prefix)
{
    static int n;
    snprintf(out, size, "%s-%d-%d", prefix, (int)getpid(), ++n);
}

static json_t *find_gpu(json_t *list_answer, const char *name)
{
    json_t *arr = jget(list_answer, "data.gpu_types"), *it;
    size_t i;
    json_array_foreach(arr, i, it)
    {
        const char *n = json_string_value(json_object_get(it, "name"));
        if (n && strcmp(n, name) == 0)
            return it;
    }
    return NULL;
}

static void delete_gpu(const char *env, const char *name)
{
    char path[300];
    struct resp r;
    snprintf(path, sizeof path, "/gpu-types/%s?env=%s", name, env);
    http(&r, "DELETE", path, &(struct req){.token = st.admin});
    resp_free(&r);
}

/* ---------------------------------------------------------------------------------------- */
/* Standalone: the API                                                                       */

START_TEST(test_health)
{
    struct resp r;
    http(&r, "GET", "/health", NULL);
    ASSERT_OK(&r, 200);
    json_t *d = json_object_get(r.json, "data");
    ck_assert_str_eq(jstr(d, "database"), "up");
    ck_assert_msg(json_is_string(json_object_get(d, "version")), "no version: %s", r.body);
    ck_assert_msg(json_is_integer(json_object_get(d, "schema_version")) &&
                      json_integer_value(json_object_get(d, "schema_version")) ==
                          json_integer_value(json_object_get(d, "schema_version_needed")),
                  "schema_version != schema_version_needed: %s", r.body);
    ck_assert_msg(json_integer_value(json_object_get(d, "pid")) > 0, "no pid: %s", r.body);
    ck_assert_msg(json_is_integer(json_object_get(d, "uptime_seconds")), "%s", r.body);
    pid_t workers[8];
    int n = children_of(master_pid(), workers, 8);
    int found = 0;
    for (int i = 0; i < n && i < 8; i++)
        found |= workers[i] == (pid_t)json_integer_value(json_object_get(d, "pid"));
    ck_assert_msg(found, "health's pid %lld is not a worker of master %d",
                  (long long)json_integer_value(json_object_get(d, "pid")), (int)master_pid());
    resp_free(&r);
}
END_TEST

START_TEST(test_request_id)
{
    struct resp r;
    char rid[200], rid2[200];
    /* none given: a generated 32-hex-digit id, a new one each time */
    http(&r, "GET", "/health", NULL);
    ck_assert_msg(header(&r, "X-Request-Id", rid, sizeof rid) && is_hex32(rid),
                  "generated X-Request-Id '%s' is not 32 hex digits", rid);
    resp_free(&r);
    http(&r, "GET", "/health", NULL);
    ck_assert(header(&r, "X-Request-Id", rid2, sizeof rid2) && is_hex32(rid2));
    ck_assert_str_ne(rid, rid2);
    resp_free(&r);
    /* a valid one is echoed, on success and in an error's data.error.request_id */
    http(&r, "GET", "/health", &(struct req){.hdr = {"X-Request-Id: it.req_1:A-z"}});
    ck_assert(header(&r, "X-Request-Id", rid, sizeof rid));
    ck_assert_str_eq(rid, "it.req_1:A-z");
    resp_free(&r);
    http(&r, "GET", "/gpu-types", &(struct req){.hdr = {"X-Request-Id: it-error-42"}});
    ASSERT_ERROR(&r, 401, "UNAUTHENTICATED");
    ck_assert_str_eq(jstr(r.json, "data.error.request_id"), "it-error-42");
    resp_free(&r);
    /* 128 characters: echoed; 129, or a character outside [A-Za-z0-9._:-]: replaced */
    char h[300], id[200];
    memset(id, 'a', 128);
    id[128] = '\0';
    snprintf(h, sizeof h, "X-Request-Id: %s", id);
    http(&r, "GET", "/health", &(struct req){.hdr = {h}});
    ck_assert(header(&r, "X-Request-Id", rid, sizeof rid));
    ck_assert_str_eq(rid, id);
    resp_free(&r);
    strcat(id, "a");
    snprintf(h, sizeof h, "X-Request-Id: %s", id);
    http(&r, "GET", "/health", &(struct req){.hdr = {h}});
    ck_assert(header(&r, "X-Request-Id", rid, sizeof rid));
    ck_assert_msg(is_hex32(rid), "a 129-character id gave X-Request-Id '%s'", rid);
    resp_free(&r);
    http(&r, "GET", "/health", &(struct req){.hdr = {"X-Request-Id: bad/id"}});
    ck_assert(header(&r, "X-Request-Id", rid, sizeof rid));
    ck_assert_msg(is_hex32(rid), "'bad/id' gave X-Request-Id '%s'", rid);
    resp_free(&r);
}
END_TEST

/* The seed differs per environment; no env is the default environment, dev. */
START_TEST(test_gpu_types_per_environment)
{
    static const struct {
        const char *env;
        int count;
        const char *has, *lacks;
    } seeds[] = {
        {"dev", 3, "nvidia-t4", "amd-mi300x"},
        {"stg", 3, "nvidia-a10g", "nvidia-t4"},
        {"prod", 5, "amd-mi300x", "nvidia-t4"},
    };
    struct resp r;
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        char path[100];
        snprintf(path, sizeof path, "/gpu-types?env=%s", seeds[i].env);
        http(&r, "GET", path, &(struct req){.token = st.reader});
        ASSERT_OK(&r, 200);
        ck_assert_str_eq(jstr(r.json, "data.environment"), seeds[i].env);
        json_t *arr = jget(r.json, "data.gpu_types");
        ck_assert_msg(json_is_array(arr), "no data.gpu_types array: %s", r.body);
        ck_assert_msg((int)json_array_size(arr) == seeds[i].count, "%s has %zu GPU types, seed %d",
                      seeds[i].env, json_array_size(arr), seeds[i].count);
        ck_assert_msg(find_gpu(r.json, seeds[i].has), "%s lacks %s", seeds[i].env, seeds[i].has);
        ck_assert_msg(!find_gpu(r.json, seeds[i].lacks), "%s has %s", seeds[i].env, seeds[i].lacks);
        json_t *it;
        size_t k;
        json_array_foreach(arr, k, it)
        {
            ck_assert_str_eq(jstr(it, "environment"), seeds[i].env);
        }
        resp_free(&r);
    }
    /* one name, two environments, two objects */
    http(&r, "GET", "/gpu-types/nvidia-l4?env=dev", &(struct req){.token = st.reader});
    ASSERT_OK(&r, 200);
    ck_assert_int_eq(json_integer_value(jget(r.json, "data.capacity")), 4);
    resp_free(&r);
    http(&r, "GET", "/gpu-types/nvidia-l4?env=stg", &(struct req){.token = st.reader});
    ASSERT_OK(&r, 200);
    ck_assert_int_eq(json_integer_value(jget(r.json, "data.capacity")), 16);
    ck_assert_str_eq(jstr(r.json, "data.environment"), "stg");
    resp_free(&r);
    /* no env: dev */
    http(&r, "GET", "/gpu-types", &(struct req){.token = st.reader});
    ASSERT_OK(&r, 200);
    ck_assert_str_eq(jstr(r.json, "data.environment"), "dev");
    ck_assert_msg(find_gpu(r.json, "nvidia-t4") != NULL, "no env did not give dev: %s", r.body);
    resp_free(&r);
}
END_TEST

static int rfc3339_utc(const char *s)
{
    int y, mo, d, h, mi, se;
    char z = 0;
    if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d", &y, &mo, &d, &h, &mi, &se) != 6)
        return 0;
    z = s[strlen(s) - 1];
    return z == 'Z';
}

START_TEST(test_gpu_type_lifecycle)
{
    struct resp r;
    char name[80], path[200], other[200];
    uniq_name(name, sizeof name, "it-life");
    snprintf(path, sizeof path, "/gpu-types/%s?env=dev", name);
    char *body = gpu_json(name, 48, 4);
    /* create: 201 with the object */
    http(&r, "POST", "/gpu-types?env=dev",
         &(struct req){.token = st.op, .ctype = "application/json", .body = body});
    ASSERT_OK(&r, 201);
    json_t *d = json_object_get(r.json, "data");
    ck_assert_str_eq(jstr(d, "name"), name);
    ck_assert_str_eq(jstr(d, "environment"), "dev");
    ck_assert_str_eq(jstr(d, "vendor"), "nvidia");
    ck_assert_int_eq(json_integer_value(json_object_get(d, "memory_gib")), 48);
    ck_assert_str_eq(jstr(d, "node_selector.value"), "NVIDIA-L40S");
    ck_assert_msg(json_is_true(json_object_get(d, "enabled")), "enabled defaults to true: %s",
                  r.body);
    ck_assert_msg(json_is_null(json_object_get(d, "mig_profile")),
                  "mig_profile defaults to null: %s", r.body);
    ck_assert_msg(rfc3339_utc(jstr(d, "created_at")) && rfc3339_utc(jstr(d, "updated_at")),
                  "created_at/updated_at not RFC 3339 UTC: %s", r.body);
    resp_free(&r);
    /* read it */
    http(&r, "GET", path, &(struct req){.token = st.reader});
    ASSERT_OK(&r, 200);
    ck_assert_str_eq(jstr(r.json, "data.name"), name);
    resp_free(&r);
    /* the same name again in dev: 409; in stg: another object, 201 */
    http(&r, "POST", "/gpu-types?env=dev",
         &(struct req){.token = st.op, .ctype = "application/json", .body = body});
    ASSERT_ERROR(&r, 409, "CONFLICT");
    resp_free(&r);
    http(&r, "POST", "/gpu-types?env=stg",
         &(struct req){.token = st.op, .ctype = "application/json", .body = body});
    ASSERT_OK(&r, 201);
    ck_assert_str_eq(jstr(r.json, "data.environment"), "stg");
    resp_free(&r);
    free(body);
    /* replace (PUT, name left out): every member replaced */
    body = gpu_json(NULL, 96, 7);
    http(&r, "PUT", path, &(struct req){.token = st.op, .ctype = "application/json", .body = body});
    ASSERT_OK(&r, 200);
    ck_assert_int_eq(json_integer_value(jget(r.json, "data.memory_gib")), 96);
    ck_assert_int_eq(json_integer_value(jget(r.json, "data.capacity")), 7);
    ck_assert_str_eq(jstr(r.json, "data.name"), name);
    resp_free(&r);
    free(body);
    /* PUT with another name in the body: 400 naming name */
    body = gpu_json("it-some-other-name", 96, 7);
    http(&r, "PUT", path, &(struct req){.token = st.op, .ctype = "application/json", .body = body});
    ASSERT_ERROR(&r, 400, "VALIDATION_FAILED");
    ck_assert_str_eq(jstr(r.json, "data.error.field"), "name");
    resp_free(&r);
    free(body);
    /* patch: only the members given change */
    http(&r, "PATCH", path,
         &(struct req){.token = st.op,
                       .ctype = "application/json",
                       .body =
                           "{\"capacity\": 11, \"enabled\": false, \"mig_profile\": \"1g.10gb\"}"});
    ASSERT_OK(&r, 200);
    ck_assert_int_eq(json_integer_value(jget(r.json, "data.capacity")), 11);
    ck_assert_int_eq(json_integer_value(jget(r.json, "data.memory_gib")), 96);
    ck_assert(json_is_false(jget(r.json, "data.enabled")));
    ck_assert_str_eq(jstr(r.json, "data.mig_profile"), "1g.10gb");
    resp_free(&r);
    /* PATCH may not change the name */
    http(&r, "PATCH", path,
         &(struct req){.token = st.op, .ctype = "application/json", .body = "{\"name\": \"x\"}"});
    ASSERT_ERROR(&r, 400, "VALIDATION_FAILED");
    ck_assert_str_eq(jstr(r.json, "data.error.field"), "name");
    resp_free(&r);
    /* the stg object did not change */
    snprintf(other, sizeof other, "/gpu-types/%s?env=stg", name);
    http(&r, "GET", other, &(struct req){.token = st.reader});
    ASSERT_OK(&r, 200);
    ck_assert_int_eq(json_integer_value(jget(r.json, "data.capacity")), 4);
    resp_free(&r);
    /* delete: 200 with data null, then 404 for every method */
    http(&r, "DELETE", path, &(struct req){.token = st.op});
    ASSERT_OK(&r, 200);
    ck_assert_msg(json_is_null(json_object_get(r.json, "data")), "DELETE: data is not null: %s",
                  r.body);
    resp_free(&r);
    http(&r, "GET", path, &(struct req){.token = st.reader});
    ASSERT_ERROR(&r, 404, "NOT_FOUND");
    resp_free(&r);
    http(&r, "DELETE", path, &(struct req){.token = st.op});
    ASSERT_ERROR(&r, 404, "NOT_FOUND");
    resp_free(&r);
    body = gpu_json(NULL, 8, 1);
    http(&r, "PUT", path, &(struct req){.token = st.op, .ctype = "application/json", .body = body});
    ASSERT_ERROR(&r, 404, "NOT_FOUND");
    resp_free(&r);
    free(body);
    http(&r, "PATCH", path,
         &(struct req){.token = st.op, .ctype = "application/json", .body = "{\"capacity\": 1}"});
    ASSERT_ERROR(&r, 404, "NOT_FOUND");
    resp_free(&r);
    delete_gpu("stg", name);
}
END_TEST

/* Validation: each 400 VALIDATION_FAILED names the member (data.error.field). */
static const struct {
    const char *what, *body, *field, *in_message;
} invalid[] = {
    {"bad vendor",
     "{\"name\":\"it-bad\",\"vendor\":\"acme\",\"model\":\"X\",\"memory_gib\":8,"
     "\"resource_name\":\"nvidia.com/gpu\",\"node_selector\":{\"key\":\"k\",\"value\":\"v\"},"
     "\"capacity\":1}",
     "vendor", "vendor"},
    {"memory_gib 0",
     "{\"name\":\"it-bad\",\"vendor\":\"nvidia\",\"model\":\"X\",\"memory_gib\":0,"
     "\"resource_name\":\"nvidia.com/gpu\",\"node_selector\":{\"key\":\"k\",\"value\":\"v\"},"
     "\"capacity\":1}",
     "memory_gib", "memory_gib"},
    {"memory_gib 4097",
     "{\"name\":\"it-bad\",\"vendor\":\"nvidia\",\"model\":\"X\",\"memory_gib\":4097,"
     "\"resource_name\":\"nvidia.com/gpu\",\"node_selector\":{\"key\":\"k\",\"value\":\"v\"},"
     "\"capacity\":1}",
     "memory_gib", "memory_gib"},
    {"unknown member",
     "{\"name\":\"it-bad\",\"vendor\":\"nvidia\",\"model\":\"X\",\"memory_gib\":8,"
     "\"resource_name\":\"nvidia.com/gpu\",\"node_selector\":{\"key\":\"k\",\"value\":\"v\"},"
     "\"capacity\":1,\"colour\":\"green\"}",
     "colour", "colour"},
    {"wrong type",
     "{\"name\":\"it-bad\",\"vendor\":\"nvidia\",\"model\":\"X\",\"memory_gib\":\"8\","
     "\"resource_name\":\"nvidia.com/gpu\",\"node_selector\":{\"key\":\"k\",\"value\":\"v\"},"
     "\"capacity\":1}",
     "memory_gib", "memory_gib"},
    {"missing member",
     "{\"name\":\"it-bad\",\"vendor\":\"nvidia\",\"memory_gib\":8,"
     "\"resource_name\":\"nvidia.com/gpu\",\"node_selector\":{\"key\":\"k\",\"value\":\"v\"},"
     "\"capacity\":1}",
     "model", "model"},
    {"bad name",
     "{\"name\":\"Bad_Name\",\"vendor\":\"nvidia\",\"model\":\"X\",\"memory_gib\":8,"
     "\"resource_name\":\"nvidia.com/gpu\",\"node_selector\":{\"key\":\"k\",\"value\":\"v\"},"
     "\"capacity\":1}",
     "name", "name"},
    {"not an object", "[1, 2]", NULL, NULL},
};

START_TEST(test_gpu_type_validation)
{
    struct resp r;
    http(&r, "POST", "/gpu-types?env=dev",
         &(struct req){.token = st.admin, .ctype = "application/json", .body = invalid[_i].body});
    const char *why = error_problem(&r, 400, "VALIDATION_FAILED");
    ck_assert_msg(!why, "%s: %s", invalid[_i].what, why);
    if (invalid[_i].field) {
        const char *field = jstr(r.json, "data.error.field");
        ck_assert_msg(field && strcmp(field, invalid[_i].field) == 0,
                      "%s: data.error.field '%s', expected '%s'", invalid[_i].what, field,
                      invalid[_i].field);
        ASSERT_MESSAGE_HAS(&r, invalid[_i].in_message);
    }
    resp_free(&r);
    /* nothing was created */
    http(&r, "GET", "/gpu-types/it-bad?env=dev", &(struct req){.token = st.reader});
    ASSERT_ERROR(&r, 404, "NOT_FOUND");
    resp_free(&r);
}
END_TEST

START_TEST(test_query_parameters)
{
    struct resp r;
    http(&r, "GET", "/gpu-types?env=qa", &(struct req){.token = st.reader});
    ASSERT_ERROR(&r, 400, "VALIDATION_FAILED");
    ASSERT_MESSAGE_HAS(&r, "dev, stg, prod");
    ck_assert_str_eq(jstr(r.json, "data.error.field"), "env");
    json_t *valid = jget(r.json, "data.error.valid");
    ck_assert_msg(json_is_array(valid) && json_array_size(valid) == 3 &&
                      strcmp(json_string_value(json_array_get(valid, 0)), "dev") == 0 &&
                      strcmp(json_string_value(json_array_get(valid, 2)), "prod") == 0,
                  "data.error.valid: %s", r.body);
    resp_free(&r);
    /* on an item route and a write too */
    http(&r, "GET", "/gpu-types/nvidia-l4?env=nope", &(struct req){.token = st.reader});
    ASSERT_ERROR(&r, 400, "VALIDATION_FAILED");
    ASSERT_MESSAGE_HAS(&r, "dev, stg, prod");
    resp_free(&r);
    /* an undeclared parameter is named */
    http(&r, "GET", "/gpu-types?colour=red", &(struct req){.token = st.reader});
    ASSERT_ERROR(&r, 400, "VALIDATION_FAILED");
    ASSERT_MESSAGE_HAS(&r, "colour");
    resp_free(&r);
}
END_TEST

START_TEST(test_etag)
{
    struct resp r;
    char etag[200], etag2[200], inm[260];
    http(&r, "GET", "/gpu-types?env=stg", &(struct req){.token = st.reader});
    ASSERT_OK(&r, 200);
    ck_assert_msg(header(&r, "ETag", etag, sizeof etag) && etag[0], "no ETag: %s", r.headers);
    resp_free(&r);
    snprintf(inm, sizeof inm, "If-None-Match: %s", etag);
    /* several times: every worker answers 304 with no body */
    for (int i = 0; i < 6; i++) {
        http(&r, "GET", "/gpu-types?env=stg", &(struct req){.token = st.reader, .hdr = {inm}});
        ck_assert_msg(r.status == 304, "If-None-Match %s: HTTP %ld %s", etag, r.status,
                      body_of(&r));
        ck_assert_msg(r.len == 0, "a 304 with a body: %s", r.body);
        ck_assert(header(&r, "X-Request-Id", NULL, 0));
        resp_free(&r);
    }
    /* another environment's list has another tag */
    http(&r, "GET", "/gpu-types?env=dev", &(struct req){.token = st.reader, .hdr = {inm}});
    ASSERT_OK(&r, 200);
    resp_free(&r);
    /* a changed list: a new ETag, and the old one gets the full list */
    char name[80];
    uniq_name(name, sizeof name, "it-etag");
    char *body = gpu_json(name, 16, 2);
    http(&r, "POST", "/gpu-types?env=stg",
         &(struct req){.token = st.op, .ctype = "application/json", .body = body});
    ASSERT_OK(&r, 201);
    resp_free(&r);
    free(body);
    /* every worker follows within a second (the NOTIFY reaches each at its next request) */
    for (int i = 0, tries = 0; i < 4; i++) {
        http(&r, "GET", "/gpu-types?env=stg", &(struct req){.token = st.reader, .hdr = {inm}});
        if (r.status == 304 && tries++ < 100) {
            resp_free(&r);
            usleep(10000);
            i = -1; /* start the count of fresh answers again */
            continue;
        }
        ASSERT_OK(&r, 200);
        ck_assert_msg(find_gpu(r.json, name) != NULL, "the new type is missing");
        ck_assert(header(&r, "ETag", etag2, sizeof etag2));
        ck_assert_msg(strcmp(etag, etag2) != 0, "the ETag did not change: %s", etag);
        resp_free(&r);
    }
    delete_gpu("stg", name);
}
END_TEST

START_TEST(test_authentication)
{
    struct resp r;
    char www[200];
    const char *bad[] = {NULL,
                         "llmops_0000000000000000000000000000000000000000000000000000"
                         "000000000000",
                         "nonsense"};
    for (int i = 0; i < 3; i++) {
        http(&r, "GET", "/gpu-types", &(struct req){.token = bad[i]});
        ASSERT_ERROR(&r, 401, "UNAUTHENTICATED");
        ck_assert_msg(header(&r, "WWW-Authenticate", www, sizeof www), "no WWW-Authenticate");
        /* RFC 6750 allows more parameters after the realm (error="invalid_token") */
        ck_assert_msg(strncmp(www, "Bearer realm=\"llm-ops\"", 22) == 0 &&
                          (www[22] == '\0' || www[22] == ','),
                      "WWW-Authenticate: %s", www);
        resp_free(&r);
    }
    /* another scheme */
    http(&r, "GET", "/gpu-types", &(struct req){.hdr = {"Authorization: Basic dXNlcjpwYXNz"}});
    ASSERT_ERROR(&r, 401, "UNAUTHENTICATED");
    resp_free(&r);
    /* reader may read, not write: 403 naming the roles */
    char *body = gpu_json("it-forbidden", 16, 1);
    http(&r, "POST", "/gpu-types?env=dev",
         &(struct req){.token = st.reader, .ctype = "application/json", .body = body});
    ASSERT_ERROR(&r, 403, "FORBIDDEN");
    ck_assert_str_eq(jstr(r.json, "data.error.required_role"), "operator");
    ck_assert_str_eq(jstr(r.json, "data.error.role"), "reader");
    resp_free(&r);
    http(&r, "DELETE", "/gpu-types/nvidia-t4?env=dev", &(struct req){.token = st.reader});
    ASSERT_ERROR(&r, 403, "FORBIDDEN");
    resp_free(&r);
    free(body);
    http(&r, "GET", "/gpu-types/nvidia-t4?env=dev", &(struct req){.token = st.reader});
    ASSERT_OK(&r, 200);
    resp_free(&r);
}
END_TEST

START_TEST(test_invalid_json)
{
    struct resp r;
    http(&r, "POST", "/gpu-types?env=dev",
         &(struct req){.token = st.admin,
                       .ctype = "application/json",
                       .body = "{\n  \"name\": \"it-json\",\n  \"vendor\": nvidia\n}"});
    ASSERT_ERROR(&r, 400, "INVALID_JSON");
    ASSERT_MESSAGE_HAS(&r, "line 3");
    ASSERT_MESSAGE_HAS(&r, "column");
    ck_assert_int_eq(json_integer_value(jget(r.json, "data.error.line")), 3);
    ck_assert_msg(json_integer_value(jget(r.json, "data.error.column")) > 0, "column: %s", r.body);
    resp_free(&r);
    /* an empty body where one is needed */
    http(&r, "POST", "/gpu-types?env=dev",
         &(struct req){.token = st.admin, .ctype = "application/json", .body = "", .body_len = 0});
    ck_assert_msg(r.status == 400, "an empty body: HTTP %ld %s", r.status, body_of(&r));
    ck_assert_msg(envelope_problem(&r, "error") == NULL, "%s", envelope_problem(&r, "error"));
    resp_free(&r);
}
END_TEST

START_TEST(test_payload_too_large)
{
    struct resp r;
    size_t n = MAX_BODY_BYTES + 4096;
    char *big = malloc(n + 1);
    ck_assert_ptr_nonnull(big);
    memset(big, ' ', n);
    big[0] = '{';
    memcpy(big + 1, "\"pad\": \"", 8);
    memset(big + 9, 'x', n - 11);
    big[n - 2] = '"';
    big[n - 1] = '}';
    big[n] = '\0';
    http(&r, "POST", "/gpu-types?env=dev",
         &(struct req){.token = st.admin, .ctype = "application/json", .body = big, .body_len = n});
    ASSERT_ERROR(&r, 413, "PAYLOAD_TOO_LARGE");
    ck_assert_int_eq(json_integer_value(jget(r.json, "data.error.limit")), MAX_BODY_BYTES);
    resp_free(&r);
    free(big);
}
END_TEST

START_TEST(test_unsupported_media_type)
{
    struct resp r;
    char name[80];
    uniq_name(name, sizeof name, "it-media");
    char *body = gpu_json(name, 16, 1);
    http(&r, "POST", "/gpu-types?env=dev",
         &(struct req){.token = st.admin, .ctype = "text/plain", .body = body});
    ASSERT_ERROR(&r, 415, "UNSUPPORTED_MEDIA_TYPE");
    resp_free(&r);
    http(&r, "POST", "/gpu-types?env=dev", &(struct req){.token = st.admin, .body = body});
    ASSERT_ERROR(&r, 415, "UNSUPPORTED_MEDIA_TYPE");
    resp_free(&r);
    http(&r, "PATCH", "/gpu-types/nvidia-t4?env=dev",
         &(struct req){.token = st.admin,
                       .ctype = "application/x-www-form-urlencoded",
                       .body = "capacity=3"});
    ASSERT_ERROR(&r, 415, "UNSUPPORTED_MEDIA_TYPE");
    resp_free(&r);
    free(body);
}
END_TEST

/* application/json with a charset parameter is still application/json (RFC 8259 has no
 * charset parameter, but clients send one). */
START_TEST(test_json_with_charset)
{
    struct resp r;
    char name[80];
    uniq_name(name, sizeof name, "it-charset");
    char *body = gpu_json(name, 16, 1);
    http(
        &r, "POST", "/gpu-types?env=dev",
        &(struct req){.token = st.admin, .ctype = "application/json; charset=utf-8", .body = body});
    ASSERT_OK(&r, 201);
    resp_free(&r);
    free(body);
    delete_gpu("dev", name);
}
END_TEST

START_TEST(test_not_found_and_method)
{
    struct resp r;
    char allow[200];
    http(&r, "GET", "/no-such-route", &(struct req){.token = st.reader});
    ASSERT_ERROR(&r, 404, "NOT_FOUND");
    resp_free(&r);
    http(&r, "GET", "/gpu-types/no-such-gpu?env=prod", &(struct req){.token = st.reader});
    ASSERT_ERROR(&r, 404, "NOT_FOUND");
    resp_free(&r);
    http(&r, "DELETE", "/gpu-types", &(struct req){.token = st.admin});
    ASSERT_ERROR(&r, 405, "METHOD_NOT_ALLOWED");
    ck_assert_msg(header(&r, "Allow", allow, sizeof allow), "405 without Allow");
    ck_assert_msg(strstr(allow, "GET") && strstr(allow, "POST") && !strstr(allow, "DELETE"),
                  "Allow: %s", allow);
    ck_assert_msg(jget(r.json, "data.error.allow") != NULL, "no data.error.allow: %s", r.body);
    resp_free(&r);
    http(&r, "POST", "/gpu-types/nvidia-t4",
         &(struct req){.token = st.admin, .ctype = "application/json", .body = "{}"});
    ASSERT_ERROR(&r, 405, "METHOD_NOT_ALLOWED");
    ck_assert(header(&r, "Allow", allow, sizeof allow));
    ck_assert_msg(strstr(allow, "GET") && strstr(allow, "PUT") && strstr(allow, "PATCH") &&
                      strstr(allow, "DELETE"),
                  "Allow: %s", allow);
    resp_free(&r);
    http(&r, "DELETE", "/health", NULL);
    ASSERT_ERROR(&r, 405, "METHOD_NOT_ALLOWED");
    ck_assert(header(&r, "Allow", allow, sizeof allow));
    ck_assert_msg(strstr(allow, "GET") != NULL, "Allow: %s", allow);
    resp_free(&r);
}
END_TEST

/* Every operation of doc/openapi.json but GET /health needs a token. */
START_TEST(test_route_table_needs_tokens)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/doc/openapi.json", src_dir);
    json_error_t jerr;
    json_t *doc = json_load_file(path, 0, &jerr);
    ck_assert_msg(doc != NULL, "%s:%d: %s", path, jerr.line, jerr.text);
    json_t *paths = json_object_get(doc, "paths");
    ck_assert_msg(json_object_size(paths) > 0, "no paths in %s", path);
    static const char *methods[] = {"get", "put", "post", "delete", "patch"};
    int checked = 0;
    char failures[4096] = "";
    const char *p;
    json_t *item;
    json_object_foreach(paths, p, item)
    {
        for (size_t m = 0; m < sizeof methods / sizeof methods[0]; m++) {
            json_t *op = json_object_get(item, methods[m]);
            if (!op)
                continue;
            char method[16];
            for (size_t k = 0; k <= strlen(methods[m]); k++)
                method[k] = (char)toupper((unsigned char)methods[m][k]);
            if (strcmp(method, "GET") == 0 && strcmp(p, "/llm-ops/v1/health") == 0)
                continue;
            /* {params} -> x */
            char url[600];
            size_t o = 0;
            for (const char *c = p; *c && o < sizeof url - 2; c++) {
                if (*c == '{') {
                    const char *e = strchr(c, '}');
                    if (e) {
                        url[o++] = 'x';
                        c = e;
                        continue;
                    }
                }
                url[o++] = *c;
            }
            url[o] = '\0';
            ck_assert_msg(strncmp(url, "/llm-ops/v1/", 12) == 0, "path %s is not under the prefix",
                          p);
            int with_body = json_object_get(op, "requestBody") != NULL;
            struct resp r;
            /* a POST without a body still sends Content-Length: 0, as curl --data "" does
             * (lighttpd answers 411 Length Required otherwise) */
            int bodiless_write = strcmp(method, "GET") != 0 && strcmp(method, "DELETE") != 0;
            http(&r, method, url,
                 with_body        ? &(struct req){.ctype = "application/json", .body = "{}"}
                 : bodiless_write ? &(struct req){.body = ""}
                                  : NULL);
            const char *why = error_problem(&r, 401, "UNAUTHENTICATED");
            if (!why && !header(&r, "WWW-Authenticate", NULL, 0))
                why = "no WWW-Authenticate header";
            if (why) {
                size_t used = strlen(failures);
                snprintf(failures + used, sizeof failures - used, "\n  %s %s: %.300s", method, url,
                         why);
            }
            resp_free(&r);
            checked++;
        }
    }
    json_decref(doc);
    ck_assert_msg(checked >= 10, "only %d operations in doc/openapi.json", checked);
    ck_assert_msg(failures[0] == '\0', "operations answering without a token:%s", failures);
}
END_TEST

/* A change made through one worker shows on every worker within a second. */
START_TEST(test_cache_invalidation)
{
    struct resp r;
    char name[80], path[200];
    uniq_name(name, sizeof name, "it-cache");
    /* warm every worker's cache of the list */
    for (int i = 0; i < 10; i++) {
        http(&r, "GET", "/gpu-types?env=stg", &(struct req){.token = st.reader});
        ASSERT_OK(&r, 200);
        resp_free(&r);
    }
    char *body = gpu_json(name, 16, 3);
    for (int phase = 0; phase < 3; phase++) {
        /* 0: create, 1: patch capacity to 9, 2: delete */
        if (phase == 0)
            http(&r, "POST", "/gpu-types?env=stg",
                 &(struct req){.token = st.op, .ctype = "application/json", .body = body});
        else if (phase == 1) {
            snprintf(path, sizeof path, "/gpu-types/%s?env=stg", name);
            http(&r, "PATCH", path,
                 &(struct req){
                     .token = st.op, .ctype = "application/json", .body = "{\"capacity\": 9}"});
        } else
            http(&r, "DELETE", path, &(struct req){.token = st.op});
        ASSERT_OK(&r, phase == 0 ? 201 : 200);
        resp_free(&r);
        double changed = now_s();
        int stale = 0;
        double worst = 0;
        for (int i = 0; i < 20; i++) {
            for (;;) {
                http(&r, "GET", "/gpu-types?env=stg", &(struct req){.token = st.reader});
                ASSERT_OK(&r, 200);
                json_t *g = find_gpu(r.json, name);
                int seen = phase == 0 ? g != NULL
                           : phase == 1
                               ? g && json_integer_value(json_object_get(g, "capacity")) == 9
                               : g == NULL;
                resp_free(&r);
                double age = now_s() - changed;
                if (seen)
                    break;
                stale++;
                worst = age;
                ck_assert_msg(age < 1.0,
                              "phase %d: GET %d still shows the old list %.2f s after the "
                              "change (%d stale answers)",
                              phase, i, age, stale);
                sleep_ms(20);
            }
        }
        if (stale)
            fprintf(stderr,
                    "integration: cache phase %d: %d stale answers, the last %.3f s after\n", phase,
                    stale, worst);
    }
    free(body);
}
END_TEST

/* llm-opsctl token revoke: the token is refused by every worker within a second. */
START_TEST(test_token_revoke)
{
    char name[80], args[200];
    int status;
    snprintf(name, sizeof name, "it-revoke-%d", (int)getpid());
    snprintf(args, sizeof args, "token create --name %s --role reader", name);
    char *tok = ctl(&status, args);
    ck_assert_msg(status == 0 && tok[0] && !strchr(tok, '\n') && !strchr(tok, ' '),
                  "token create: status %d, output '%s'", status, tok);
    struct resp r;
    for (int i = 0; i < 10; i++) { /* every worker has it cached */
        http(&r, "GET", "/gpu-types", &(struct req){.token = tok});
        ASSERT_OK(&r, 200);
        resp_free(&r);
    }
    snprintf(args, sizeof args, "token revoke %s", name);
    char *out = ctl(&status, args);
    ck_assert_msg(status == 0, "token revoke: status %d: %s", status, out);
    free(out);
    double revoked = now_s();
    int accepted = 0;
    for (;;) {
        http(&r, "GET", "/gpu-types", &(struct req){.token = tok});
        int ok = r.status == 200;
        if (!ok)
            ASSERT_ERROR(&r, 401, "UNAUTHENTICATED");
        resp_free(&r);
        if (!ok)
            break;
        accepted++;
        ck_assert_msg(now_s() - revoked < 1.0, "the revoked token still works %.2f s later",
                      now_s() - revoked);
        sleep_ms(20);
    }
    /* and stays refused, on every worker */
    for (int i = 0; i < 10; i++) {
        http(&r, "GET", "/gpu-types", &(struct req){.token = tok});
        ASSERT_ERROR(&r, 401, "UNAUTHENTICATED");
        resp_free(&r);
    }
    if (accepted)
        fprintf(stderr, "integration: the revoked token was accepted %d more times\n", accepted);
    /* token list shows it revoked */
    out = ctl(&status, "token list");
    ck_assert_int_eq(status, 0);
    ck_assert_msg(strstr(out, name) != NULL, "token list lacks %s: %s", name, out);
    free(out);
    free(tok);
}
END_TEST

/* ---------------------------------------------------------------------------------------- */
/* Standalone: the process model                                                             */

/* A child process sending requests (GET gpu-types) until stop_file exists or for at most
 * max_s; it writes "ok failed statuses..." to result_file. */
struct load {
    pid_t pid;
    char stop_file[700], result_file[700];
};

static void load_start(struct load *l, const char *tag, double max_s)
{
    snprintf(l->stop_file, sizeof l->stop_file, "%s.%s.stop", st.dir, tag);
    snprintf(l->result_file, sizeof l->result_file, "%s.%s.result", st.dir, tag);
    unlink(l->stop_file);
    unlink(l->result_file);
    fflush(NULL);
    l->pid = fork();
    ck_assert_int_ge(l->pid, 0);
    if (l->pid == 0) {
        int ok = 0, failed = 0;
        char bad[2048] = "";
        double end = now_s() + max_s;
        while (now_s() < end && access(l->stop_file, F_OK) != 0) {
            struct resp r;
            http(&r, "GET", "/gpu-types?env=prod", &(struct req){.token = st.reader});
            if (r.status == 200 && r.json) {
                ok++;
            } else {
                failed++;
                size_t u = strlen(bad);
                snprintf(bad + u, sizeof bad - u, " [%ld %.60s]", r.status,
                         r.curl_error[0] ? r.curl_error : (r.body ? r.body : ""));
            }
            resp_free(&r);
        }
        char text[2200];
        snprintf(text, sizeof text, "%d %d%s\n", ok, failed, bad);
        write_file(l->result_file, text);
        _exit(0);
    }
}

/* Stops the load; returns the number of failed requests, ok gets the successful ones. */
static int load_stop(struct load *l, int *ok, char *detail, size_t size)
{
    FILE *f = fopen(l->stop_file, "w");
    if (f)
        fclose(f);
    int status;
    waitpid(l->pid, &status, 0);
    char *text = read_file(l->result_file);
    int failed = -1;
    *ok = 0;
    if (text && sscanf(text, "%d %d", ok, &failed) == 2)
        snprintf(detail, size, "%s", text);
    else
        snprintf(detail, size, "no result from the load process");
    free(text);
    unlink(l->stop_file);
    unlink(l->result_file);
    return failed;
}

/* Access lines kept by a worker (access_log_flush_ms) reach the log: at once when the worker
 * goes idle, within the interval while it is busy, and every one of them. */
static int count_lines(const char *pattern)
{
    int status;
    char *out = capture(&status, "grep -cF -- '%s' '%s/llm-opsd.log'", pattern, st.dir);
    int n = atoi(out);
    free(out);
    return n;
}

START_TEST(test_access_lines_kept_and_written)
{
    struct resp r;
    http(&r, "GET", "/gpu-types?env=dev",
         &(struct req){.token = st.reader, .hdr = {"X-Request-Id: access-idle-1"}});
    ck_assert_int_eq(r.status, 200);
    resp_free(&r);
    double t0 = now_s();
    while (count_lines("request_id=access-idle-1") != 1) {
        ck_assert_msg(now_s() - t0 < 1.0,
                      "the access line of an idle worker was not written within 1 s");
        sleep_ms(10);
    }
    fprintf(stderr, "integration: an idle worker's access line was in the log after %.0f ms\n",
            (now_s() - t0) * 1000);

    const char *pat = "route=/llm-ops/v1/gpu-types status=200";
    int before = count_lines(pat);
    struct load l[4];
    for (int i = 0; i < 4; i++) {
        char tag[16];
        snprintf(tag, sizeof tag, "acc%d", i);
        load_start(&l[i], tag, 20);
    }
    sleep_ms(1500);
    int during = count_lines(pat);
    int ok_total = 0;
    for (int i = 0; i < 4; i++) {
        int ok;
        char detail[2300];
        ck_assert_int_eq(load_stop(&l[i], &ok, detail, sizeof detail), 0);
        ok_total += ok;
    }
    ck_assert_msg(during > before, "no access line written while the workers were busy");
    /* all of them, once each, within a second of the load's end */
    t0 = now_s();
    int after;
    while ((after = count_lines(pat)) - before != ok_total) {
        ck_assert_msg(now_s() - t0 < 1.0, "%d requests answered, %d access lines written", ok_total,
                      after - before);
        sleep_ms(20);
    }
    /* whole lines: every access line has its request id at its end */
    int status;
    char *bad = capture(
        &status, "grep -F 'access: ' '%s/llm-opsd.log' | grep -cvE 'request_id=[^ ]+$'", st.dir);
    ck_assert_msg(atoi(bad) == 0, "%d access lines are broken", atoi(bad));
    free(bad);
}
END_TEST

START_TEST(test_sighup_reload)
{
    pid_t master = master_pid();
    ck_assert_msg(master > 0 && kill(master, 0) == 0, "no master (pid file %s)", st.pid_file);
    struct resp r;
    http(&r, "GET", "/gpu-types?env=qa", &(struct req){.token = st.reader});
    ASSERT_ERROR(&r, 400, "VALIDATION_FAILED");
    resp_free(&r);
    char *conf = read_file(st.config);
    ck_assert_ptr_nonnull(conf);
    const char *line = "environments = dev stg prod\n";
    char *at = strstr(conf, line);
    ck_assert_msg(at != NULL, "no '%s' in %s", line, st.config);
    size_t newlen = strlen(conf) + 16;
    char *changed = malloc(newlen);
    snprintf(changed, newlen, "%.*senvironments = dev stg prod qa\n%s", (int)(at - conf), conf,
             at + strlen(line));
    ck_assert_int_eq(write_file(st.config, changed), 0);

    struct load l;
    load_start(&l, "reload", 30);
    sleep_ms(300);
    ck_assert_int_eq(kill(master, SIGHUP), 0);
    double t0 = now_s();
    long last = 0;
    for (;;) {
        http(&r, "GET", "/gpu-types?env=qa", &(struct req){.token = st.reader});
        last = r.status;
        if (r.status == 200) {
            ck_assert_str_eq(jstr(r.json, "data.environment"), "qa");
            ck_assert_int_eq(json_array_size(jget(r.json, "data.gpu_types")), 0);
            resp_free(&r);
            break;
        }
        resp_free(&r);
        ck_assert_msg(now_s() - t0 < 10, "?env=qa still refused (HTTP %ld) 10 s after SIGHUP",
                      last);
        sleep_ms(100);
    }
    /* every worker: a few more in a row */
    for (int i = 0; i < 6; i++) {
        http(&r, "GET", "/gpu-types?env=qa", &(struct req){.token = st.reader});
        ASSERT_OK(&r, 200);
        resp_free(&r);
    }
    fprintf(stderr, "integration: ?env=qa accepted %.2f s after SIGHUP\n", now_s() - t0);
    pid_t kids[16];
    int n = wait_children(master, WORKERS, 15, kids, 16);
    int ok;
    char detail[2300];
    int failed = load_stop(&l, &ok, detail, sizeof detail);
    ck_assert_msg(n == WORKERS, "%d children of the master after the reload, expected %d", n,
                  WORKERS);
    ck_assert_msg(failed == 0 && ok > 0, "requests during the reload: %s", detail);
    ck_assert_int_eq(master_pid(), master);

    /* back to the original configuration */
    ck_assert_int_eq(write_file(st.config, conf), 0);
    ck_assert_int_eq(kill(master, SIGHUP), 0);
    t0 = now_s();
    for (;;) {
        http(&r, "GET", "/gpu-types?env=qa", &(struct req){.token = st.reader});
        last = r.status;
        resp_free(&r);
        if (last == 400)
            break;
        ck_assert_msg(now_s() - t0 < 10, "?env=qa still answers %ld 10 s after the second SIGHUP",
                      last);
        sleep_ms(100);
    }
    n = wait_children(master, WORKERS, 15, kids, 16);
    ck_assert_int_eq(n, WORKERS);
    free(conf);
    free(changed);
}
END_TEST

START_TEST(test_worker_crash_respawn)
{
    pid_t master = master_pid();
    ck_assert_msg(master > 0 && kill(master, 0) == 0, "no master");
    pid_t before[16], after[16];
    int n = wait_children(master, WORKERS, 10, before, 16);
    ck_assert_msg(n == WORKERS, "%d workers before, expected %d", n, WORKERS);
    struct load l;
    load_start(&l, "crash", 30);
    sleep_ms(500);
    pid_t victim = before[0];
    ck_assert_int_eq(kill(victim, SIGSEGV), 0);
    double t0 = now_s();
    int back = 0;
    while (now_s() - t0 < 10) {
        n = children_of(master, after, 16);
        int has_victim = 0;
        for (int i = 0; i < n && i < 16; i++)
            has_victim |= after[i] == victim;
        if (n == WORKERS && !has_victim) {
            back = 1;
            break;
        }
        sleep_ms(50);
    }
    double took = now_s() - t0;
    sleep_ms(700); /* the new worker serves too */
    int ok;
    char detail[2300];
    int failed = load_stop(&l, &ok, detail, sizeof detail);
    ck_assert_msg(back, "the master did not get back to %d workers within 10 s (now %d)", WORKERS,
                  n);
    fprintf(stderr, "integration: worker %d killed; %d workers again after %.2f s; load: %s",
            (int)victim, WORKERS, took, detail);
    ck_assert_msg(failed >= 0 && failed <= 1, "more than the request in flight failed: %s", detail);
    ck_assert_msg(ok > 10, "too few requests succeeded during the crash: %s", detail);
    ck_assert_int_eq(master_pid(), master);
    ck_assert_int_eq(kill(master, 0), 0);
    /* the master logged it */
    int status;
    char log[700];
    snprintf(log, sizeof log, "%s/llm-opsd.log", st.dir);
    char *line = capture(&status, "grep -F 'worker %d killed by signal 11' '%s'", (int)victim, log);
    if (status != 0) {
        /* Under AddressSanitizer the worker's SEGV handler reports and exits instead; the
         * report is in the log, or in ASAN_OPTIONS' log_path.PID (scripts/test-all) */
        char report[800];
        snprintf(report, sizeof report, "%s", log);
        const char *opts = getenv("ASAN_OPTIONS");
        const char *lp = opts ? strstr(opts, "log_path=") : NULL;
        if (lp) {
            lp += strlen("log_path=");
            snprintf(report, sizeof report, "%.*s.%d", (int)strcspn(lp, ":"), lp, (int)victim);
        }
        free(line);
        line = capture(&status,
                       "grep -qF '==%d==ERROR: AddressSanitizer: SEGV' '%s' && "
                       "grep -F 'worker %d exited with status' '%s'",
                       (int)victim, report, (int)victim, log);
    }
    ck_assert_msg(status == 0, "no 'worker %d killed by signal 11' in %s", (int)victim, log);
    free(line);
    struct resp r;
    http(&r, "GET", "/health", NULL);
    ASSERT_OK(&r, 200);
    resp_free(&r);
}
END_TEST

/* DIR/env holds the tokens: 0600 (DIR is 0755, for PostgreSQL). The cluster runs with trust
 * auth: its socket's directory lets nobody but its owner (and root) in. */
START_TEST(test_state_is_private)
{
    char path[700];
    struct stat sb;
    snprintf(path, sizeof path, "%s/env", st.dir);
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_msg((sb.st_mode & 07777) == 0600, "%s has mode %o", path,
                  (unsigned)(sb.st_mode & 07777));
    ck_assert_int_eq(stat(st.pghost, &sb), 0);
    ck_assert_msg((sb.st_mode & 0077) == 0, "%s has mode %o", st.pghost,
                  (unsigned)(sb.st_mode & 07777));
}
END_TEST

static int stack_cmd(const char *what)
{
    return sh("LLMOPS_BIN_DIR='%s' '%s/tests/harness/stack' %s '%s' >/dev/null 2>&1", bin_dir,
              src_dir, what, st.dir);
}

START_TEST(test_database_outage)
{
    pid_t master = master_pid();
    ck_assert_msg(master > 0 && kill(master, 0) == 0, "no master");
    struct resp r;
    /* every worker has its connection and cache */
    for (int i = 0; i < 6; i++) {
        http(&r, "GET", "/gpu-types?env=dev", &(struct req){.token = st.reader});
        ASSERT_OK(&r, 200);
        resp_free(&r);
    }
    ck_assert_int_eq(stack_cmd("pg-stop"), 0);
    /* gpu-types first: a worker's first request after the server closed its connection
     * (a cached answer, no query) must already see it */
    for (int i = 0; i < 4; i++) {
        http(&r, "GET", "/gpu-types?env=dev", &(struct req){.token = st.reader});
        ASSERT_ERROR(&r, 503, "DATABASE_UNAVAILABLE");
        ck_assert_msg(r.secs < 3.0, "gpu-types took %.2f s with the database down", r.secs);
        resp_free(&r);
    }
    for (int i = 0; i < 4; i++) {
        http(&r, "GET", "/health", NULL);
        ASSERT_ERROR(&r, 503, "DATABASE_UNAVAILABLE");
        ck_assert_msg(r.secs < 1.5, "/health took %.2f s with the database down", r.secs);
        ck_assert_str_eq(jstr(r.json, "data.error.health.database"), "down");
        ck_assert_int_eq(json_integer_value(jget(r.json, "data.error.health.schema_version")), -1);
        /* /health is public: how to reach the database (socket path, host, port, user) is
         * for the log only */
        ck_assert_str_eq(jstr(r.json, "message"), "the database is unavailable");
        static const char *const secret[] = {".s.PGSQL", "socket",  "connection to server",
                                             "host=",    "port=",   "port ",
                                             "user",     "postgres"};
        for (size_t k = 0; k < sizeof secret / sizeof secret[0]; k++)
            ck_assert_msg(!strstr(r.body, secret[k]), "/health shows '%s': %s", secret[k], r.body);
        ck_assert_msg(!strstr(r.body, st.pghost), "/health shows the socket path: %s", r.body);
        resp_free(&r);
    }
    /* ... which has libpq's words, with the socket path */
    ck_assert_int_ge(count_lines("PostgreSQL is unavailable: connection to server"), 1);
    ck_assert_int_ge(count_lines(st.pghost), 1);

    char *body = gpu_json("it-outage", 16, 1);
    http(&r, "POST", "/gpu-types?env=dev",
         &(struct req){.token = st.op, .ctype = "application/json", .body = body});
    ASSERT_ERROR(&r, 503, "DATABASE_UNAVAILABLE");
    resp_free(&r);
    free(body);

    ck_assert_int_eq(stack_cmd("pg-start"), 0);
    double t0 = now_s();
    int good = 0;
    long last = 0;
    while (good < 4) {
        http(&r, "GET", "/health", NULL);
        last = r.status;
        good = r.status == 200 ? good + 1 : 0;
        resp_free(&r);
        ck_assert_msg(now_s() - t0 < 15, "/health answers %ld 15 s after PostgreSQL came back",
                      last);
        if (good < 4)
            sleep_ms(100);
    }
    fprintf(stderr, "integration: /health 200 again %.2f s after pg-start\n", now_s() - t0);
    for (int i = 0; i < 4; i++) {
        http(&r, "GET", "/gpu-types?env=dev", &(struct req){.token = st.reader});
        ASSERT_OK(&r, 200);
        resp_free(&r);
    }
    ck_assert_int_eq(master_pid(), master);
    ck_assert_int_eq(kill(master, 0), 0);
}
END_TEST

/* SIGTERM: the master stops accepting, a request in flight finishes, then it exits. The
 * request is held in flight by a lock on gpu_types taken in another session. */
START_TEST(test_sigterm_drains)
{
    pid_t master = master_pid();
    ck_assert_msg(master > 0 && kill(master, 0) == 0, "no master");
    int status;
    char cmd[2000];
    snprintf(cmd, sizeof cmd,
             "'%s/psql' -X -q -h '%s' -p %d -U postgres -d llmops -c 'BEGIN' -c 'LOCK TABLE "
             "gpu_types IN ACCESS EXCLUSIVE MODE' -c 'SELECT pg_sleep(3)' -c 'COMMIT' "
             ">/dev/null 2>&1 & echo $!",
             PGBIN, st.pghost, st.pgport);
    char *locker_s = capture(&status, "%s", cmd);
    pid_t locker = (pid_t)atoi(locker_s);
    free(locker_s);
    ck_assert_int_gt(locker, 0);
    double t0 = now_s();
    for (;;) {
        char *n =
            psql(&status, "SELECT count(*) FROM pg_locks WHERE relation = "
                          "'gpu_types'::regclass AND mode = 'AccessExclusiveLock' AND granted");
        int locked = atoi(n);
        free(n);
        if (locked)
            break;
        ck_assert_msg(now_s() - t0 < 3, "the lock was not taken");
        sleep_ms(20);
    }
    char name[80];
    uniq_name(name, sizeof name, "it-drain");
    fflush(NULL);
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        char *body = gpu_json(name, 16, 1);
        struct resp r;
        http(
            &r, "POST", "/gpu-types?env=dev",
            &(struct req){
                .token = st.admin, .ctype = "application/json", .body = body, .timeout_ms = 20000});
        _exit(r.status == 201 ? 0 : r.status > 0 ? (int)(r.status % 200) + 1 : 99);
    }
    /* wait until the POST waits for the lock: it is in flight in a worker */
    t0 = now_s();
    for (;;) {
        char *n = psql(&status, "SELECT count(*) FROM pg_stat_activity WHERE datname = 'llmops' "
                                "AND wait_event_type = 'Lock'");
        int waiting = atoi(n);
        free(n);
        if (waiting)
            break;
        ck_assert_msg(now_s() - t0 < 2.5, "the POST never waited for the lock");
        sleep_ms(20);
    }
    double term_at = now_s();
    ck_assert_int_eq(kill(master, SIGTERM), 0);
    int cst;
    ck_assert_int_eq(waitpid(child, &cst, 0), child);
    double finished = now_s() - term_at;
    waitpid(locker, NULL, 0);
    ck_assert_msg(WIFEXITED(cst) && WEXITSTATUS(cst) == 0,
                  "the request in flight did not finish with 201 (child exit %d)",
                  WIFEXITED(cst) ? WEXITSTATUS(cst) : -1);
    t0 = now_s();
    while (kill(master, 0) == 0 && now_s() - t0 < 15)
        sleep_ms(50);
    ck_assert_msg(kill(master, 0) != 0, "the master did not exit 15 s after SIGTERM");
    fprintf(stderr, "integration: the request in flight finished %.2f s after SIGTERM\n", finished);
    /* the row is there: the request was not cut short */
    char sql[300];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM gpu_types WHERE name = '%s'", name);
    char *n = psql(&status, sql);
    ck_assert_msg(strcmp(n, "1") == 0, "%s: %s", sql, n);
    free(n);
}
END_TEST

/* ---------------------------------------------------------------------------------------- */
/* Spawned by lighttpd (bin-path)                                                            */

START_TEST(test_spawned_serves)
{
    struct resp r;
    ck_assert_str_eq(st.mode, "spawned");
    for (int i = 0; i < 4; i++) {
        http(&r, "GET", "/health", NULL);
        ASSERT_OK(&r, 200);
        ck_assert_str_eq(jstr(r.json, "data.database"), "up");
        resp_free(&r);
    }
    http(&r, "GET", "/gpu-types?env=prod", &(struct req){.token = st.reader});
    ASSERT_OK(&r, 200);
    ck_assert_int_eq(json_array_size(jget(r.json, "data.gpu_types")), 5);
    resp_free(&r);
    http(&r, "GET", "/gpu-types", NULL);
    ASSERT_ERROR(&r, 401, "UNAUTHENTICATED");
    resp_free(&r);
    /* a write and the read of it */
    char name[80], path[200];
    uniq_name(name, sizeof name, "it-spawned");
    char *body = gpu_json(name, 16, 1);
    http(&r, "POST", "/gpu-types?env=stg",
         &(struct req){.token = st.op, .ctype = "application/json", .body = body});
    ASSERT_OK(&r, 201);
    resp_free(&r);
    free(body);
    snprintf(path, sizeof path, "/gpu-types/%s?env=stg", name);
    for (int i = 0; i < 4; i++) {
        http(&r, "GET", path, &(struct req){.token = st.reader});
        ASSERT_OK(&r, 200);
        resp_free(&r);
    }
    delete_gpu("stg", name);
}
END_TEST

START_TEST(test_spawned_processes)
{
    /* lighttpd started the llm-opsd processes: its children */
    char env_path[600], lpid_s[32];
    snprintf(env_path, sizeof env_path, "%s/env", st.dir);
    char *env = read_file(env_path);
    ck_assert_ptr_nonnull(env);
    env_value(env, "LIGHTTPD_PID", lpid_s, sizeof lpid_s);
    free(env);
    pid_t lpid = (pid_t)atoi(lpid_s), kids[16];
    ck_assert_int_gt(lpid, 0);
    int n = wait_children(lpid, WORKERS, 5, kids, 16);
    ck_assert_msg(n == WORKERS, "lighttpd has %d children, expected %d llm-opsd", n, WORKERS);
    for (int i = 0; i < n && i < 16; i++) {
        char exe[300], link[600];
        snprintf(link, sizeof link, "/proc/%d/exe", (int)kids[i]);
        ssize_t k = readlink(link, exe, sizeof exe - 1);
        ck_assert_int_gt(k, 0);
        exe[k] = '\0';
        ck_assert_msg(strstr(exe, "llm-opsd") != NULL, "child %d of lighttpd runs %s", (int)kids[i],
                      exe);
    }
}
END_TEST

/* ---------------------------------------------------------------------------------------- */
/* Races: hostile clients writing at the same time (their own stack, echo instances for the
 * flags)                                                                                    */

static void write_races_dropin(const char *base)
{
    char path[600];
    snprintf(path, sizeof path, "%s/races.conf", base);
    ck_assert_int_eq(write_file(path, "[plugin \"race-a\"]\nmodule = echo\n"
                                      "[plugin \"race-b\"]\nmodule = echo\n"
                                      "[plugin \"race-c\"]\nmodule = echo\n"
                                      "[flags \"dev\"]\nexperiment_tracking = race-a\n"
                                      "experiment_tracking.fallback = race-b\n"),
                     0);
}

static void setup_races(void)
{
    char extra[1200];
    snprintf(extra, sizeof extra, "--plugin-dir '%s/../test-plugins' --drop-in '%%B/races.conf'",
             bin_dir);
    stack_start_with("standalone", extra, write_races_dropin);
}

/* A GPU type of this test in stg, created; its path into path. */
static void race_gpu(char *name, size_t nsize, char *path, size_t psize, const char *prefix)
{
    struct resp r;
    uniq_name(name, nsize, prefix);
    char *body = gpu_json(name, 16, 1);
    http(&r, "POST", "/gpu-types?env=stg",
         &(struct req){.token = st.op, .ctype = "application/json", .body = body});
    ASSERT_OK(&r, 201);
    resp_free(&r);
    free(body);
    snprintf(path, psize, "/gpu-types/%s?env=stg", name);
}

/* Issue 11.5: concurrent PATCHes of different members of one GPU type all answer 200, so
 * every one of their changes must be in the object afterwards. */
#define PATCH_TRIALS 40
START_TEST(test_concurrent_patches_keep_every_change)
{
    char name[80], path[200];
    race_gpu(name, sizeof name, path, sizeof path, "it-race");
    int lost = 0;
    for (int t = 0; t < PATCH_TRIALS; t++) {
        char b[3][120];
        snprintf(b[0], sizeof b[0], "{\"capacity\": %d}", 1000 + t);
        snprintf(b[1], sizeof b[1], "{\"memory_gib\": %d}", 100 + t);
        snprintf(b[2], sizeof b[2], "{\"model\": \"model-%d\"}", t);
        const char *m[3] = {"PATCH", "PATCH", "PATCH"}, *pa[3] = {path, path, path};
        struct req q[3];
        for (int i = 0; i < 3; i++)
            q[i] = (struct req){.token = st.op, .ctype = "application/json", .body = b[i]};
        struct resp r[3];
        http_parallel(3, r, m, pa, q);
        for (int i = 0; i < 3; i++) {
            ASSERT_OK(&r[i], 200);
            resp_free(&r[i]);
        }
        struct resp g;
        http(&g, "GET", path, &(struct req){.token = st.reader});
        ASSERT_OK(&g, 200);
        char model[40];
        snprintf(model, sizeof model, "model-%d", t);
        if (json_integer_value(jget(g.json, "data.capacity")) != 1000 + t ||
            json_integer_value(jget(g.json, "data.memory_gib")) != 100 + t ||
            !jstr(g.json, "data.model") || strcmp(jstr(g.json, "data.model"), model) != 0)
            lost++;
        resp_free(&g);
    }
    fprintf(stderr, "integration: %d of %d trials of 3 concurrent PATCHes lost a change\n", lost,
            PATCH_TRIALS);
    ck_assert_msg(lost == 0, "%d of %d trials: a PATCH answered 200 and its change is gone", lost,
                  PATCH_TRIALS);
    delete_gpu("stg", name);
}
END_TEST

/* Each GPU type has its own ETag; If-Match on PUT and PATCH answers 412 on a mismatch. */
START_TEST(test_gpu_type_if_match)
{
    char name[80], path[200], etag[200], etag2[200], h[260], h2[260];
    race_gpu(name, sizeof name, path, sizeof path, "it-ifmatch");
    struct resp r;
    http(&r, "GET", path, &(struct req){.token = st.reader});
    ASSERT_OK(&r, 200);
    ck_assert_msg(header(&r, "ETag", etag, sizeof etag) && etag[0] == '"', "no strong ETag: %s",
                  r.headers);
    resp_free(&r);
    /* the tag is the object's, not the list's */
    http(&r, "GET", "/gpu-types?env=stg", &(struct req){.token = st.reader});
    ck_assert(header(&r, "ETag", etag2, sizeof etag2));
    ck_assert_str_ne(etag, etag2);
    resp_free(&r);
    /* If-None-Match on the object */
    snprintf(h, sizeof h, "If-None-Match: %s", etag);
    http(&r, "GET", path, &(struct req){.token = st.reader, .hdr = {h}});
    ck_assert_msg(r.status == 304 && r.len == 0, "If-None-Match: HTTP %ld %s", r.status,
                  body_of(&r));
    resp_free(&r);
    /* a matching If-Match: 200 and a new tag */
    snprintf(h, sizeof h, "If-Match: %s", etag);
    http(&r, "PATCH", path,
         &(struct req){
             .token = st.op, .ctype = "application/json", .body = "{\"capacity\": 5}", .hdr = {h}});
    ASSERT_OK(&r, 200);
    ck_assert(header(&r, "ETag", etag2, sizeof etag2));
    ck_assert_msg(strcmp(etag, etag2) != 0, "the ETag did not change: %s", etag);
    resp_free(&r);
    /* the old tag: 412 for PATCH and PUT, nothing written */
    http(&r, "PATCH", path,
         &(struct req){
             .token = st.op, .ctype = "application/json", .body = "{\"capacity\": 6}", .hdr = {h}});
    ASSERT_ERROR(&r, 412, "PRECONDITION_FAILED");
    ASSERT_MESSAGE_HAS(&r, "If-Match");
    resp_free(&r);
    char *full = gpu_json(name, 16, 7);
    http(&r, "PUT", path,
         &(struct req){.token = st.op, .ctype = "application/json", .body = full, .hdr = {h}});
    ASSERT_ERROR(&r, 412, "PRECONDITION_FAILED");
    resp_free(&r);
    http(&r, "GET", path, &(struct req){.token = st.reader});
    ck_assert_int_eq(json_integer_value(jget(r.json, "data.capacity")), 5);
    resp_free(&r);
    /* the current tag, a list of tags, and "*" */
    snprintf(h2, sizeof h2, "If-Match: \"nope\", %s", etag2);
    http(&r, "PUT", path,
         &(struct req){.token = st.op, .ctype = "application/json", .body = full, .hdr = {h2}});
    ASSERT_OK(&r, 200);
    ck_assert_int_eq(json_integer_value(jget(r.json, "data.capacity")), 7);
    resp_free(&r);
    http(&r, "PATCH", path,
         &(struct req){.token = st.op,
                       .ctype = "application/json",
                       .body = "{\"capacity\": 8}",
                       .hdr = {"If-Match: *"}});
    ASSERT_OK(&r, 200);
    resp_free(&r);
    /* a weak tag never matches (If-Match compares strongly) */
    http(&r, "GET", path, &(struct req){.token = st.reader});
    ck_assert(header(&r, "ETag", etag, sizeof etag));
    resp_free(&r);
    snprintf(h, sizeof h, "If-Match: W/%s", etag);
    http(&r, "PATCH", path,
         &(struct req){
             .token = st.op, .ctype = "application/json", .body = "{\"capacity\": 9}", .hdr = {h}});
    ASSERT_ERROR(&r, 412, "PRECONDITION_FAILED");
    resp_free(&r);
    free(full);
    /* n writers with the same tag at the same time: exactly one wins, the others get 412 */
    int bad = 0;
    for (int t = 0; t < 15; t++) {
        http(&r, "GET", path, &(struct req){.token = st.reader});
        ck_assert(header(&r, "ETag", etag, sizeof etag));
        resp_free(&r);
        snprintf(h, sizeof h, "If-Match: %s", etag);
        const char *m[4], *pa[4];
        struct req q[4];
        char b[4][64];
        for (int i = 0; i < 4; i++) {
            m[i] = "PATCH";
            pa[i] = path;
            snprintf(b[i], sizeof b[i], "{\"capacity\": %d}", 100 + i);
            q[i] =
                (struct req){.token = st.op, .ctype = "application/json", .body = b[i], .hdr = {h}};
        }
        struct resp rr[4];
        http_parallel(4, rr, m, pa, q);
        int ok = 0, pre = 0;
        for (int i = 0; i < 4; i++) {
            ok += rr[i].status == 200;
            pre += rr[i].status == 412;
            resp_free(&rr[i]);
        }
        if (ok != 1 || pre != 3)
            bad++;
    }
    ck_assert_msg(bad == 0, "%d of 15 trials: not exactly one 200 and three 412", bad);
    /* a GPU type that does not exist: nothing to match */
    http(&r, "PATCH", "/gpu-types/no-such-type?env=stg",
         &(struct req){.token = st.op,
                       .ctype = "application/json",
                       .body = "{\"capacity\": 1}",
                       .hdr = {"If-Match: *"}});
    ASSERT_ERROR(&r, 412, "PRECONDITION_FAILED");
    resp_free(&r);
    delete_gpu("stg", name);
}
END_TEST

/* Issue 11.12: a GET answer sent back with PUT works; a read-only member that differs from
 * the object's is refused, naming it. */
START_TEST(test_gpu_type_read_only_members)
{
    char name[80], path[200];
    race_gpu(name, sizeof name, path, sizeof path, "it-ro");
    struct resp r, w;
    http(&r, "GET", path, &(struct req){.token = st.reader});
    ASSERT_OK(&r, 200);
    json_t *obj = json_deep_copy(jget(r.json, "data"));
    resp_free(&r);
    ck_assert(json_is_string(json_object_get(obj, "created_at")));
    char *text = json_dumps(obj, JSON_COMPACT);
    http(&w, "PUT", path, &(struct req){.token = st.op, .ctype = "application/json", .body = text});
    ASSERT_OK(&w, 200);
    resp_free(&w);
    free(text);
    /* updated_at is ignored: it says when, it is no precondition (If-Match is) */
    json_object_set_new(obj, "updated_at", json_string("2001-01-01T00:00:00Z"));
    text = json_dumps(obj, JSON_COMPACT);
    http(&w, "PUT", path, &(struct req){.token = st.op, .ctype = "application/json", .body = text});
    ASSERT_OK(&w, 200);
    resp_free(&w);
    free(text);
    static const struct {
        const char *method, *member, *value;
    } bad[] = {{"PUT", "environment", "prod"},
               {"PATCH", "environment", "dev"},
               {"PUT", "created_at", "2001-01-01T00:00:00Z"},
               {"PATCH", "created_at", "2001-01-01T00:00:00Z"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *b = strcmp(bad[i].method, "PUT") == 0 ? json_deep_copy(obj) : json_object();
        json_object_set_new(b, bad[i].member, json_string(bad[i].value));
        json_object_set_new(b, "capacity", json_integer(42));
        text = json_dumps(b, JSON_COMPACT);
        json_decref(b);
        http(&w, bad[i].method, path,
             &(struct req){.token = st.op, .ctype = "application/json", .body = text});
        ASSERT_ERROR(&w, 400, "VALIDATION_FAILED");
        ck_assert_str_eq(jstr(w.json, "data.error.field"), bad[i].member);
        ASSERT_MESSAGE_HAS(&w, bad[i].member);
        ASSERT_MESSAGE_HAS(&w, "read-only");
        resp_free(&w);
        free(text);
    }
    http(&r, "GET", path, &(struct req){.token = st.reader});
    ck_assert_int_eq(json_integer_value(jget(r.json, "data.capacity")), 1);
    resp_free(&r);
    /* POST: environment must be the one of ?env */
    char other[80];
    uniq_name(other, sizeof other, "it-ro");
    json_object_set_new(obj, "name", json_string(other));
    text = json_dumps(obj, JSON_COMPACT);
    http(&w, "POST", "/gpu-types?env=dev",
         &(struct req){.token = st.op, .ctype = "application/json", .body = text});
    ASSERT_ERROR(&w, 400, "VALIDATION_FAILED");
    ck_assert_str_eq(jstr(w.json, "data.error.field"), "environment");
    resp_free(&w);
    http(&w, "POST", "/gpu-types?env=stg",
         &(struct req){.token = st.op, .ctype = "application/json", .body = text});
    ASSERT_OK(&w, 201);
    resp_free(&w);
    free(text);
    json_decref(obj);
    delete_gpu("stg", other);
    delete_gpu("stg", name);
}
END_TEST

/* The value of one series of GET /llm-ops/metrics (0 when absent). */
static double metric_value(const char *series)
{
    struct resp r;
    http(&r, "GET", "/llm-ops/metrics", NULL);
    ck_assert_msg(r.status == 200, "metrics: HTTP %ld %s", r.status, body_of(&r));
    double v = 0;
    size_t k = strlen(series);
    for (const char *line = r.body; line && *line;) {
        if (strncmp(line, series, k) == 0 && line[k] == ' ')
            v = strtod(line + k + 1, NULL);
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    resp_free(&r);
    return v;
}

/* The audit entries of dev/experiment_tracking, oldest first. */
static json_t *flag_audit_chain(void)
{
    struct resp r;
    http(&r, "GET", "/flags/audit?env=dev&limit=1000", &(struct req){.token = st.reader});
    ASSERT_OK(&r, 200);
    json_t *out = json_array(), *e;
    json_t *list = jget(r.json, "data.entries");
    for (size_t i = json_array_size(list); i-- > 0;) {
        e = json_array_get(list, i);
        if (strcmp(json_string_value(json_object_get(e, "category")), "experiment_tracking") == 0)
            json_array_append(out, e);
    }
    resp_free(&r);
    return out;
}

/* Does an audit entry's `before` describe the flag its predecessor's `after` left? */
static int chained(json_t *prev_after, json_t *before)
{
    static const char *const keys[] = {"active", "fallback", "candidate", "rollout_percent"};
    if (!json_is_object(before))
        return 0;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (!json_equal(json_object_get(prev_after, keys[i]), json_object_get(before, keys[i])))
            return 0;
    return 1;
}

/* Issue 11.6: concurrent PUTs of one flag: each audit row's `before` is what the row was,
 * so the chain of entries never breaks. */
#define FLAG_PUT_ROUNDS 12
START_TEST(test_concurrent_flag_puts_keep_the_audit_chain)
{
    static const char *const inst[] = {"race-a", "race-b", "race-c"};
    const char *path = "/flags/dev/experiment_tracking";
    for (int t = 0; t < FLAG_PUT_ROUNDS; t++) {
        const char *m[6], *pa[6];
        struct req q[6];
        char b[6][200];
        for (int i = 0; i < 6; i++) {
            m[i] = "PUT";
            pa[i] = path;
            snprintf(b[i], sizeof b[i],
                     "{\"active\": \"%s\", \"fallback\": \"%s\", \"reason\": \"race %d.%d\"}",
                     inst[(t + i) % 3], inst[(t + i + 1) % 3], t, i);
            q[i] = (struct req){.token = st.admin, .ctype = "application/json", .body = b[i]};
        }
        struct resp r[6];
        http_parallel(6, r, m, pa, q);
        for (int i = 0; i < 6; i++) {
            ASSERT_OK(&r[i], 200);
            resp_free(&r[i]);
        }
    }
    json_t *chain = flag_audit_chain();
    int breaks = 0;
    for (size_t i = 1; i < json_array_size(chain); i++)
        if (!chained(jget(json_array_get(chain, i - 1), "after"),
                     jget(json_array_get(chain, i), "before")))
            breaks++;
    fprintf(stderr, "integration: %d breaks in an audit chain of %zu entries (%d x 6 PUTs)\n",
            breaks, json_array_size(chain), FLAG_PUT_ROUNDS);
    ck_assert_int_ge(json_array_size(chain), FLAG_PUT_ROUNDS * 6);
    ck_assert_msg(breaks == 0, "%d audit entries whose before is not the previous after", breaks);
    json_decref(chain);
}
END_TEST

/* Issue 11.6: of concurrent rollbacks exactly one moves the flag; the others are 409, and
 * the fallbacks counter counts one. */
#define ROLLBACK_TRIALS 10
START_TEST(test_concurrent_rollbacks_roll_back_once)
{
    const char *series =
        "llmops_flag_fallbacks_total{environment=\"dev\",category=\"experiment_tracking\"}";
    const char *path = "/flags/dev/experiment_tracking";
    int wrong = 0, miscounted = 0;
    for (int t = 0; t < ROLLBACK_TRIALS; t++) {
        struct resp r;
        http(&r, "PUT", path,
             &(struct req){.token = st.admin,
                           .ctype = "application/json",
                           .body = "{\"active\": \"race-a\", \"fallback\": \"race-b\", "
                                   "\"reason\": \"before a rollback race\"}"});
        ASSERT_OK(&r, 200);
        resp_free(&r);
        double before = metric_value(series);
        const char *m[8], *pa[8];
        struct req q[8];
        char rb[80];
        snprintf(rb, sizeof rb, "%s/rollback", path);
        for (int i = 0; i < 8; i++) {
            m[i] = "POST";
            pa[i] = rb;
            q[i] = (struct req){.token = st.op,
                                .ctype = "application/json",
                                .body = "{\"reason\": \"rollback race\"}"};
        }
        struct resp rr[8];
        http_parallel(8, rr, m, pa, q);
        int ok = 0, conflict = 0;
        for (int i = 0; i < 8; i++) {
            ok += rr[i].status == 200;
            if (rr[i].status == 409) {
                const char *why = error_problem(&rr[i], 409, "CONFLICT");
                ck_assert_msg(why == NULL, "%s", why);
                conflict++;
            }
            resp_free(&rr[i]);
        }
        if (ok != 1 || conflict != 7)
            wrong++;
        if (metric_value(series) - before != 1)
            miscounted++;
    }
    fprintf(stderr,
            "integration: %d of %d trials of 8 concurrent rollbacks did not answer one 200 and "
            "seven 409; %d counted the fallback other than once\n",
            wrong, ROLLBACK_TRIALS, miscounted);
    ck_assert_msg(wrong == 0, "%d of %d trials: not exactly one rollback answered 200", wrong,
                  ROLLBACK_TRIALS);
    ck_assert_msg(miscounted == 0, "%d of %d trials: the fallbacks counter did not grow by 1",
                  miscounted, ROLLBACK_TRIALS);
}
END_TEST

/* Issue 11.13: a client that reads right after its own successful write sees it, whichever
 * worker answers (the same connection to the web server, no pause in between). */
#define RYW_GPU_TRIALS 1000
#define RYW_FLAG_TRIALS 300
#define RYW_CLIENTS 4
#define RYW_PARALLEL_TRIALS 500

/* RYW_CLIENTS clients at once, each writing its own GPU type and reading the list right after
 * each answer: the web server spreads them over both workers, so many a read is answered by
 * the worker that did not write. Returns the stale reads, of RYW_CLIENTS * trials. */
static int parallel_read_your_writes(int trials)
{
    struct client {
        char name[80], path[200], body[64];
        CURL *c;
        struct curl_slist *h;
        struct resp r;
        int t, reading;
    } cl[RYW_CLIENTS];
    CURLM *m = curl_multi_init();
    for (int i = 0; i < RYW_CLIENTS; i++) {
        race_gpu(cl[i].name, sizeof cl[i].name, cl[i].path, sizeof cl[i].path, "it-ryw-p");
        cl[i].c = curl_easy_init();
        cl[i].t = 0;
        cl[i].reading = 0;
        snprintf(cl[i].body, sizeof cl[i].body, "{\"capacity\": %d}", 2);
        http_setup(cl[i].c, 1, &cl[i].r, "PATCH", cl[i].path,
                   &(struct req){.token = st.op, .ctype = "application/json", .body = cl[i].body},
                   &cl[i].h);
        curl_multi_add_handle(m, cl[i].c);
    }
    int stale = 0, done = 0, running = 1;
    while (done < RYW_CLIENTS) {
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left)) != NULL) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            struct client *k = NULL;
            for (int i = 0; i < RYW_CLIENTS; i++)
                if (cl[i].c == msg->easy_handle)
                    k = &cl[i];
            ck_assert_ptr_nonnull(k);
            http_finish(k->c, msg->data.result, &k->r, k->h);
            curl_multi_remove_handle(m, k->c);
            ASSERT_OK(&k->r, 200);
            if (k->reading) {
                json_t *g = find_gpu(k->r.json, k->name);
                if (!g || json_integer_value(json_object_get(g, "capacity")) != 2 + k->t)
                    stale++;
                k->t++;
            }
            resp_free(&k->r);
            k->reading = !k->reading;
            if (!k->reading && k->t == trials) {
                done++;
                continue;
            }
            curl_easy_reset(k->c);
            if (k->reading) {
                http_setup(k->c, 1, &k->r, "GET", "/gpu-types?env=stg",
                           &(struct req){.token = st.reader}, &k->h);
            } else {
                snprintf(k->body, sizeof k->body, "{\"capacity\": %d}", 2 + k->t);
                http_setup(
                    k->c, 1, &k->r, "PATCH", k->path,
                    &(struct req){.token = st.op, .ctype = "application/json", .body = k->body},
                    &k->h);
            }
            curl_multi_add_handle(m, k->c);
        }
        if (done < RYW_CLIENTS)
            curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    for (int i = 0; i < RYW_CLIENTS; i++) {
        curl_easy_cleanup(cl[i].c);
        delete_gpu("stg", cl[i].name);
    }
    curl_multi_cleanup(m);
    return stale;
}

static void read_your_writes(int gpu_trials, int flag_trials)
{
    char name[80], path[200];
    race_gpu(name, sizeof name, path, sizeof path, "it-ryw");
    CURL *c = curl_easy_init();
    ck_assert_ptr_nonnull(c);
    int stale = 0;
    double t0 = now_s();
    for (int t = 0; t < gpu_trials; t++) {
        char body[64];
        snprintf(body, sizeof body, "{\"capacity\": %d}", 2 + t);
        struct resp r;
        http_on(c, &r, "PATCH", path,
                &(struct req){.token = st.op, .ctype = "application/json", .body = body});
        ASSERT_OK(&r, 200);
        resp_free(&r);
        http_on(c, &r, "GET", "/gpu-types?env=stg", &(struct req){.token = st.reader});
        ASSERT_OK(&r, 200);
        json_t *g = find_gpu(r.json, name);
        if (!g || json_integer_value(json_object_get(g, "capacity")) != 2 + t)
            stale++;
        resp_free(&r);
    }
    fprintf(stderr,
            "integration: %s: %d of %d reads of the GPU list after a PATCH were stale "
            "(%.1f s)\n",
            st.mode, stale, gpu_trials, now_s() - t0);
    int fstale = 0;
    static const char *const inst[] = {"race-a", "race-b", "race-c"};
    for (int t = 0; t < flag_trials; t++) {
        char body[200];
        snprintf(body, sizeof body, "{\"active\": \"%s\", \"reason\": \"read your writes %d\"}",
                 inst[t % 3], t);
        struct resp r;
        http_on(c, &r, "PUT", "/flags/dev/experiment_tracking",
                &(struct req){.token = st.admin, .ctype = "application/json", .body = body});
        ASSERT_OK(&r, 200);
        resp_free(&r);
        http_on(c, &r, "GET", "/flags?env=dev", &(struct req){.token = st.reader});
        ASSERT_OK(&r, 200);
        json_t *f, *list = jget(r.json, "data.flags");
        size_t i;
        int seen = 0;
        json_array_foreach(list, i, f)
        {
            const char *cat = json_string_value(json_object_get(f, "category"));
            const char *act = json_string_value(json_object_get(f, "active"));
            if (cat && act && strcmp(cat, "experiment_tracking") == 0 &&
                strcmp(act, inst[t % 3]) == 0)
                seen = 1;
        }
        fstale += !seen;
        resp_free(&r);
    }
    if (flag_trials)
        fprintf(stderr, "integration: %d of %d reads of the flags after a PUT were stale\n", fstale,
                flag_trials);
    curl_easy_cleanup(c);
    double t1 = now_s();
    int pstale = parallel_read_your_writes(RYW_PARALLEL_TRIALS);
    fprintf(stderr,
            "integration: %s: %d of %d reads after a PATCH were stale with %d clients at once "
            "(%.1f s)\n",
            st.mode, pstale, RYW_CLIENTS * RYW_PARALLEL_TRIALS, RYW_CLIENTS, now_s() - t1);
    ck_assert_msg(pstale == 0, "%d of %d reads right after a PATCH were stale (%d clients)", pstale,
                  RYW_CLIENTS * RYW_PARALLEL_TRIALS, RYW_CLIENTS);
    ck_assert_msg(stale == 0, "%d of %d reads of the GPU list right after a PATCH were stale",
                  stale, gpu_trials);
    ck_assert_msg(fstale == 0, "%d of %d reads of the flags right after a PUT were stale", fstale,
                  flag_trials);
    delete_gpu("stg", name);
}

START_TEST(test_read_your_writes)
{
    read_your_writes(RYW_GPU_TRIALS, RYW_FLAG_TRIALS);
}
END_TEST

/* The same with the workers lighttpd spawned (no master: they share the metrics file). */
START_TEST(test_spawned_read_your_writes)
{
    read_your_writes(RYW_GPU_TRIALS, 0);
}
END_TEST

/* ---------------------------------------------------------------------------------------- */

static Suite *integration_suite(void)
{
    Suite *s = suite_create("integration");

    TCase *tc = tcase_create("standalone");
    tcase_add_unchecked_fixture(tc, setup_standalone, teardown_stack);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_health);
    tcase_add_test(tc, test_request_id);
    tcase_add_test(tc, test_gpu_types_per_environment); /* before anything is created */
    tcase_add_test(tc, test_gpu_type_lifecycle);
    tcase_add_loop_test(tc, test_gpu_type_validation, 0, (int)(sizeof invalid / sizeof invalid[0]));
    tcase_add_test(tc, test_query_parameters);
    tcase_add_test(tc, test_etag);
    tcase_add_test(tc, test_authentication);
    tcase_add_test(tc, test_invalid_json);
    tcase_add_test(tc, test_payload_too_large);
    tcase_add_test(tc, test_unsupported_media_type);
    tcase_add_test(tc, test_json_with_charset);
    tcase_add_test(tc, test_not_found_and_method);
    tcase_add_test(tc, test_route_table_needs_tokens);
    tcase_add_test(tc, test_cache_invalidation);
    tcase_add_test(tc, test_token_revoke);
    /* the process model: these change the running server */
    tcase_add_test(tc, test_access_lines_kept_and_written);
    tcase_add_test(tc, test_sighup_reload);
    tcase_add_test(tc, test_worker_crash_respawn);
    tcase_add_test(tc, test_state_is_private);
    tcase_add_test(tc, test_database_outage);
    tcase_add_test(tc, test_sigterm_drains); /* last: it stops llm-opsd */
    suite_add_tcase(s, tc);

    TCase *sp = tcase_create("spawned");
    tcase_add_unchecked_fixture(sp, setup_spawned, teardown_stack);
    tcase_set_timeout(sp, 90);
    tcase_add_test(sp, test_spawned_serves);
    tcase_add_test(sp, test_spawned_processes);
    tcase_add_test(sp, test_spawned_read_your_writes);
    suite_add_tcase(s, sp);

    TCase *ra = tcase_create("races");
    tcase_add_unchecked_fixture(ra, setup_races, teardown_stack);
    tcase_set_timeout(ra, 120);
    tcase_add_test(ra, test_concurrent_patches_keep_every_change);
    tcase_add_test(ra, test_gpu_type_if_match);
    tcase_add_test(ra, test_gpu_type_read_only_members);
    tcase_add_test(ra, test_concurrent_flag_puts_keep_the_audit_chain);
    tcase_add_test(ra, test_concurrent_rollbacks_roll_back_once);
    tcase_add_test(ra, test_read_your_writes);
    suite_add_tcase(s, ra);
    return s;
}

static void pick_dir(char *out, size_t size, const char *var, const char *fallback)
{
    const char *v = getenv(var);
    snprintf(out, size, "%s", v && *v ? v : fallback);
}

int main(void)
{
    pick_dir(src_dir, sizeof src_dir, "LLMOPS_SOURCE_DIR", LLMOPS_DEFAULT_SOURCE_DIR);
    pick_dir(bin_dir, sizeof bin_dir, "LLMOPS_BIN_DIR", LLMOPS_DEFAULT_BIN_DIR);
    runner_pid = getpid();
    /* SIGSEGV sent to a worker must not leave core files behind */
    struct rlimit nocore = {0, 0};
    setrlimit(RLIMIT_CORE, &nocore);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGHUP, on_signal);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    SRunner *sr = srunner_create(integration_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    stack_stop_now(); /* in case a teardown did not run */
    finish_stacks(failed);
    curl_global_cleanup();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
