/* The core's HTTP client (core/httpclient.c) against tests/fakes/faultserver.py: retries and
 * what is never retried, Retry-After, the total deadline, lost answers, keep-alive reuse, the
 * body cap, TLS verification — and no secret in any message or log line. */
#include "digest.h"
#include "httpclient.h"
#include "log.h"
#include "util.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define TOKEN "s3cr3t-T0KEN-9f8e7d"
#define AUTH "Authorization: Bearer " TOKEN

/* ------------------------------------------------------------------ the fake */

static pid_t fake_pid = -1;
static int fake_port;

/* Starts faultserver.py with extra arguments; returns its pid and sets *port from its
 * "PORT <n>" line. */
static pid_t spawn_fake(const char *const *extra, int *port)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    const char *argv[16] = {PYTHON3, FAULTSERVER, "0", "--idle-timeout", "60"};
    int n = 5;
    for (; extra && *extra && n < 15; extra++)
        argv[n++] = *extra;
    argv[n] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    posix_spawn_file_actions_addclose(&fa, fds[1]);
    pid_t pid;
    int rc = posix_spawnp(&pid, PYTHON3, &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    ck_assert_msg(rc == 0, "cannot start %s: %s", FAULTSERVER, strerror(rc));
    char line[64];
    size_t len = 0;
    int64_t until = util_now_ms() + 10000;
    while (len < sizeof line - 1 && !memchr(line, '\n', len)) {
        struct pollfd p = {.fd = fds[0], .events = POLLIN};
        int left = (int)(until - util_now_ms());
        if (left <= 0 || poll(&p, 1, left) <= 0)
            break;
        ssize_t r = read(fds[0], line + len, sizeof line - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(fds[0]);
    line[len] = '\0';
    ck_assert_msg(sscanf(line, "PORT %d", port) == 1, "faultserver said '%s'", line);
    return pid;
}

static void stop_fake(pid_t pid)
{
    if (pid > 0) {
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
    }
}

static void fake_setup(void)
{
    fake_pid = spawn_fake(NULL, &fake_port);
}

static void fake_teardown(void)
{
    stop_fake(fake_pid);
    fake_pid = -1;
}

/* ------------------------------------------------------------------ helpers */

static char base[64];

static struct httpc_config config(int port)
{
    snprintf(base, sizeof base, "http://127.0.0.1:%d", port);
    return (struct httpc_config){
        .base_url = base,
        .connect_timeout_ms = 1000,
        .total_timeout_ms = 5000,
        .max_retries = 2,
        .backoff_base_ms = 20,
        .backoff_max_ms = 200,
        .auth_header = AUTH,
        .verify_tls = 1,
        .user_agent = "llm-ops-test",
    };
}

static struct httpc *client(void)
{
    struct httpc_config cfg = config(fake_port);
    struct httpc *c = httpc_new(&cfg);
    ck_assert_ptr_nonnull(c);
    return c;
}

static struct llmops_http_response resp;
static struct llmops_error err;

static int call_h(struct httpc *c, const char *method, const char *path, const char *body,
                  int unsafe, const char *const *headers)
{
    struct llmops_http_request q = {.size = sizeof q,
                                    .method = method,
                                    .path = path,
                                    .headers = headers,
                                    .body = body,
                                    .body_len = body ? strlen(body) : 0,
                                    .retry_unsafe = unsafe};
    memset(&resp, 0, sizeof resp);
    resp.size = sizeof resp;
    memset(&err, 0, sizeof err);
    err.size = sizeof err;
    return httpc_request(c, &q, &resp, &err);
}

static int call(struct httpc *c, const char *method, const char *path, const char *body, int unsafe)
{
    return call_h(c, method, path, body, unsafe, NULL);
}

/* Queues faults for a path: `responses` is a JSON array. */
static void fault(const char *path, const char *responses)
{
    char body[1024];
    snprintf(body, sizeof body, "{\"path\": \"%s\", \"responses\": %s}", path, responses);
    struct httpc *c = client();
    ck_assert_int_eq(call(c, "POST", "/_faults", body, 0), 0);
    ck_assert_msg(resp.status == 200, "/_faults said %d: %s", resp.status, resp.body);
    httpc_response_free(&resp);
    httpc_free(c);
}

static json_t *stats_via(struct httpc *c)
{
    ck_assert_int_eq(call(c, "GET", "/_stats", NULL, 0), 0);
    json_t *j = json_loads(resp.body, 0, NULL);
    ck_assert_ptr_nonnull(j);
    httpc_response_free(&resp);
    return j;
}

static json_t *stats(void)
{
    struct httpc *c = client();
    json_t *j = stats_via(c);
    httpc_free(c);
    return j;
}

static int count(const char *path)
{
    json_t *j = stats();
    int n = (int)json_integer_value(json_object_get(json_object_get(j, "counts"), path));
    json_decref(j);
    return n;
}

static int closed_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    ck_assert_int_eq(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(getsockname(s, (struct sockaddr *)&a, &l), 0);
    close(s); /* never listened: connections are refused */
    return ntohs(a.sin_port);
}

static void assert_no_secret(const char *what, const char *s)
{
    ck_assert_msg(!strstr(s, TOKEN), "%s holds the token: %s", what, s);
    ck_assert_msg(!strstr(s, "Bearer"), "%s holds the auth scheme: %s", what, s);
    ck_assert_msg(!strstr(s, "Authorization"), "%s names the auth header: %s", what, s);
}

static double jitter_one(void)
{
    return 1.0;
}

/* ------------------------------------------------------------------ Core */

START_TEST(test_json_round_trip)
{
    struct httpc *c = client();
    const char *const hdrs[] = {"X-Trace: abc-123", NULL};
    ck_assert_int_eq(call_h(c, "POST", "/rt/echo?x=1", "{\"a\": 1}", 0, hdrs), 0);
    ck_assert_int_eq(resp.status, 200);
    ck_assert_int_eq(resp.attempts, 1);
    ck_assert_str_eq(resp.content_type, "application/json");
    ck_assert_uint_eq(resp.body_len, strlen(resp.body));
    json_t *j = json_loads(resp.body, 0, NULL);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(json_string_value(json_object_get(j, "method")), "POST");
    ck_assert_str_eq(json_string_value(json_object_get(j, "path")), "/rt/echo");
    ck_assert_str_eq(json_string_value(json_object_get(j, "query")), "x=1");
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(j, "body"), "a")), 1);
    json_decref(j);
    httpc_response_free(&resp);
    ck_assert_ptr_null(resp.body);

    /* What reached the server: the auth header, our headers, the JSON content type, no Expect */
    json_t *s = stats();
    json_t *h = json_object_get(json_object_get(s, "headers"), "/rt/echo");
    ck_assert_ptr_nonnull(h);
    ck_assert_str_eq(json_string_value(json_object_get(h, "Authorization")), "Bearer " TOKEN);
    ck_assert_str_eq(json_string_value(json_object_get(h, "X-Trace")), "abc-123");
    ck_assert_str_eq(json_string_value(json_object_get(h, "Content-Type")), "application/json");
    ck_assert_str_eq(json_string_value(json_object_get(h, "User-Agent")), "llm-ops-test");
    ck_assert_ptr_null(json_object_get(h, "Expect"));
    json_decref(s);
    httpc_free(c);
}
END_TEST

static const char *const methods[] = {"GET", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS", "POST"};

/* Each method without and with a body (even and odd _i). */
START_TEST(test_methods)
{
    const char *m = methods[_i / 2];
    int with_body = _i % 2 && strcmp(m, "HEAD") != 0;
    char path[32], sent[32], body[64];
    snprintf(path, sizeof path, "/m/%s/%d", m, with_body);
    snprintf(sent, sizeof sent, "%s-body", m);
    snprintf(body, sizeof body, "{\"sent\": \"%s\"}", sent);
    struct httpc *c = client();
    ck_assert_int_eq(call(c, m, path, with_body ? body : NULL, 0), 0);
    ck_assert_int_eq(resp.status, 200);
    ck_assert_ptr_nonnull(resp.body);
    if (strcmp(m, "HEAD") == 0) {
        ck_assert_uint_eq(resp.body_len, 0);
    } else {
        json_t *j = json_loads(resp.body, 0, NULL);
        ck_assert_ptr_nonnull(j);
        ck_assert_str_eq(json_string_value(json_object_get(j, "method")), m);
        json_t *echo = json_object_get(json_object_get(j, "body"), "sent");
        if (with_body)
            ck_assert_str_eq(json_string_value(echo), sent);
        else
            ck_assert_ptr_null(echo);
        json_decref(j);
    }
    httpc_response_free(&resp);
    json_t *s = stats();
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(s, "methods"), path)), m);
    json_t *h = json_object_get(json_object_get(s, "headers"), path);
    const char *len = json_string_value(json_object_get(h, "Content-Length"));
    const char *type = json_string_value(json_object_get(h, "Content-Type"));
    if (with_body) {
        char want[24];
        snprintf(want, sizeof want, "%zu", strlen(body));
        ck_assert_str_eq(len, want);
        ck_assert_str_eq(type, "application/json");
    } else if (!strcmp(m, "POST") || !strcmp(m, "PUT") || !strcmp(m, "PATCH")) {
        /* no body: Content-Length 0 and no form content type from libcurl */
        ck_assert_str_eq(len, "0");
        ck_assert_ptr_null(type);
    }
    json_decref(s);
    httpc_free(c);
}
END_TEST

/* Which statuses are retried for which methods: the first answer is `status`, the second 200. */
static const struct {
    const char *method;
    int unsafe, status, attempts;
} status_cases[] = {
    {"GET", 0, 404, 1},  {"GET", 0, 400, 1},    {"GET", 0, 500, 2},   {"GET", 0, 502, 2},
    {"GET", 0, 503, 2},  {"GET", 0, 504, 2},    {"GET", 0, 429, 2},   {"HEAD", 0, 503, 2},
    {"PUT", 0, 503, 2},  {"DELETE", 0, 504, 2}, {"POST", 0, 503, 1},  {"POST", 1, 503, 2},
    {"POST", 1, 500, 1}, {"PATCH", 0, 502, 1},  {"PATCH", 1, 429, 2}, {"GET", 0, 501, 1},
};

START_TEST(test_status_retries)
{
    char path[32], faults[128];
    snprintf(path, sizeof path, "/st/%d", _i);
    snprintf(faults, sizeof faults, "[{\"status\": %d}, {\"status\": 200}]",
             status_cases[_i].status);
    fault(path, faults);
    struct httpc *c = client();
    ck_assert_int_eq(call(c, status_cases[_i].method, path, NULL, status_cases[_i].unsafe), 0);
    int want = status_cases[_i].attempts == 2 ? 200 : status_cases[_i].status;
    ck_assert_msg(resp.status == want && resp.attempts == status_cases[_i].attempts,
                  "%s %d (unsafe %d): got %d after %d attempts, want %d after %d",
                  status_cases[_i].method, status_cases[_i].status, status_cases[_i].unsafe,
                  resp.status, resp.attempts, want, status_cases[_i].attempts);
    httpc_response_free(&resp);
    ck_assert_int_eq(count(path), status_cases[_i].attempts);
    httpc_free(c);
}
END_TEST

START_TEST(test_503_then_200)
{
    fault("/flaky", "[{\"status\": 503}, {\"status\": 200, \"body\": {\"done\": true}}]");
    struct httpc *c = client();
    ck_assert_int_eq(call(c, "GET", "/flaky", NULL, 0), 0);
    ck_assert_int_eq(resp.status, 200);
    ck_assert_int_eq(resp.attempts, 2);
    ck_assert_str_eq(resp.body, "{\"done\": true}");
    httpc_response_free(&resp);
    httpc_free(c);
}
END_TEST

START_TEST(test_404_and_html_not_retried)
{
    fault("/gone", "[{\"status\": 404, \"html\": true}, {\"status\": 200}]");
    struct httpc *c = client();
    ck_assert_int_eq(call(c, "GET", "/gone", NULL, 0), 0);
    ck_assert_int_eq(resp.status, 404);
    ck_assert_int_eq(resp.attempts, 1);
    ck_assert_str_eq(resp.content_type, "text/html; charset=utf-8");
    ck_assert_ptr_nonnull(strstr(resp.body, "<html>"));
    httpc_response_free(&resp);
    ck_assert_int_eq(count("/gone"), 1);
    httpc_free(c);
}
END_TEST

START_TEST(test_retry_after_seconds)
{
    fault("/ra", "[{\"status\": 429, \"retry_after\": 1}, {\"status\": 200}]");
    struct httpc *c = client();
    int64_t t0 = util_now_ms();
    ck_assert_int_eq(call(c, "GET", "/ra", NULL, 0), 0);
    int64_t dt = util_now_ms() - t0;
    ck_assert_int_eq(resp.status, 200);
    ck_assert_int_eq(resp.attempts, 2);
    ck_assert_msg(dt >= 900 && dt < 3000, "waited %lld ms for Retry-After: 1", (long long)dt);
    httpc_response_free(&resp);
    httpc_free(c);
}
END_TEST

START_TEST(test_retry_after_http_date)
{
    fault("/ra-date", "[{\"status\": 503, \"retry_after_date\": 2}, {\"status\": 200}]");
    struct httpc *c = client();
    int64_t t0 = util_now_ms();
    ck_assert_int_eq(call(c, "GET", "/ra-date", NULL, 0), 0);
    int64_t dt = util_now_ms() - t0;
    ck_assert_int_eq(resp.status, 200);
    ck_assert_int_eq(resp.attempts, 2);
    /* an HTTP date has whole seconds: 2 s from now is 1 to 2 s away */
    ck_assert_msg(dt >= 900 && dt < 3500, "waited %lld ms for a date 2 s away", (long long)dt);
    httpc_response_free(&resp);
    httpc_free(c);
}
END_TEST

START_TEST(test_retry_after_beyond_deadline)
{
    fault("/ra-long", "[{\"status\": 429, \"retry_after\": 30}, {\"status\": 200}]");
    struct httpc_config cfg = config(fake_port);
    cfg.total_timeout_ms = 2000;
    struct httpc *c = httpc_new(&cfg);
    int64_t t0 = util_now_ms();
    ck_assert_int_eq(call(c, "GET", "/ra-long", NULL, 0), 0);
    int64_t dt = util_now_ms() - t0;
    ck_assert_int_eq(resp.status, 429);
    ck_assert_int_eq(resp.attempts, 1);
    ck_assert_msg(dt < 1000, "took %lld ms to give the 429 back", (long long)dt);
    httpc_response_free(&resp);
    httpc_free(c);
}
END_TEST

START_TEST(test_connection_refused)
{
    int port = closed_port();
    struct httpc_config cfg = config(port);
    struct httpc *c = httpc_new(&cfg);
    ck_assert_ptr_nonnull(c);
    for (int unsafe_post = 0; unsafe_post < 2; unsafe_post++) {
        /* nothing was sent, so even a plain POST is retried */
        ck_assert_int_eq(call(c, unsafe_post ? "POST" : "GET", "/ref?token=" TOKEN, "{}", 0), -1);
        ck_assert_int_eq(err.code, LLMOPS_ERR_UNAVAILABLE);
        ck_assert_int_eq(err.retryable, 1);
        ck_assert_int_eq(err.tool_status, 0);
        ck_assert_int_eq(resp.attempts, cfg.max_retries + 1);
        ck_assert_ptr_null(resp.body);
        char want[128];
        snprintf(want, sizeof want,
                 "cannot reach http://127.0.0.1:%d/ref: Connection refused (3 attempts)", port);
        ck_assert_str_eq(err.message, want);
        assert_no_secret("refused message", err.message);
    }
    httpc_free(c);
}
END_TEST

START_TEST(test_hang_past_deadline)
{
    fault("/slow", "[{\"delay_ms\": 4000}]");
    struct httpc_config cfg = config(fake_port);
    cfg.total_timeout_ms = 800;
    struct httpc *c = httpc_new(&cfg);
    int64_t t0 = util_now_ms();
    ck_assert_int_eq(call(c, "GET", "/slow", NULL, 0), -1);
    int64_t dt = util_now_ms() - t0;
    ck_assert_int_eq(err.code, LLMOPS_ERR_UNAVAILABLE);
    ck_assert_int_eq(err.retryable, 1);
    ck_assert_ptr_nonnull(strstr(err.message, "timed out after 800 ms"));
    assert_no_secret("timeout message", err.message);
    ck_assert_msg(dt >= 750 && dt < 800 + 700, "gave up after %lld ms", (long long)dt);
    httpc_free(c);
}
END_TEST

START_TEST(test_deadline_covers_retries)
{
    /* 503s forever, long waits: the deadline, not the retry count, ends the call */
    fault("/always503", "[{\"status\": 503}, {\"status\": 503}, {\"status\": 503}, "
                        "{\"status\": 503}, {\"status\": 503}, {\"status\": 503}]");
    struct httpc_config cfg = config(fake_port);
    cfg.total_timeout_ms = 1000;
    cfg.max_retries = 10;
    cfg.backoff_base_ms = 300;
    cfg.backoff_max_ms = 5000;
    cfg.jitter = jitter_one;
    struct httpc *c = httpc_new(&cfg);
    int64_t t0 = util_now_ms();
    ck_assert_int_eq(call(c, "GET", "/always503", NULL, 0), 0);
    int64_t dt = util_now_ms() - t0;
    ck_assert_int_eq(resp.status, 503);
    ck_assert_int_eq(resp.attempts, 3); /* 0, wait 300, 300, wait 600, 900: 1200 would not fit */
    ck_assert_msg(dt >= 850 && dt < 1000 + 300, "took %lld ms with a 1000 ms budget",
                  (long long)dt);
    httpc_response_free(&resp);
    httpc_free(c);
}
END_TEST

START_TEST(test_lost_answer)
{
    fault("/drop-get", "[{\"drop\": true}, {\"status\": 200}]");
    struct httpc *c = client();
    ck_assert_int_eq(call(c, "GET", "/drop-get", NULL, 0), 0);
    ck_assert_int_eq(resp.status, 200);
    ck_assert_int_eq(resp.attempts, 2);
    httpc_response_free(&resp);
    ck_assert_int_eq(count("/drop-get"), 2);
    httpc_free(c);

    /* a POST whose answer was lost is not repeated: it may have been processed */
    fault("/drop-post", "[{\"drop\": true}, {\"status\": 200}]");
    c = client();
    ck_assert_int_eq(call(c, "POST", "/drop-post", "{}", 0), -1);
    ck_assert_int_eq(err.code, LLMOPS_ERR_UNAVAILABLE);
    ck_assert_int_eq(resp.attempts, 1);
    ck_assert_ptr_nonnull(strstr(err.message, "may have been processed"));
    assert_no_secret("lost-answer message", err.message);
    ck_assert_int_eq(count("/drop-post"), 1);
    httpc_free(c);
}
END_TEST

/* libcurl 7.88 re-sends a request by itself when a reused connection dies before any answer
 * byte: for an unsafe request the client must stop that (the tool may have processed it). */
START_TEST(test_lost_answer_on_reused_connection)
{
    static const struct {
        const char *method, *body;
        int unsafe, rc, sent;
    } cases[] = {
        {"POST", "{\"run\": 1}", 0, -1, 1}, /* a body: libcurl's rewind is refused */
        {"POST", NULL, 0, -1, 1},           /* no body: a connection of its own */
        {"PATCH", "{\"x\": 2}", 0, -1, 1},
        {"POST", "{\"run\": 2}", 1, 0, 2}, /* retry_unsafe: repeated, answered */
        {"GET", NULL, 0, 0, 2},
    };
    for (size_t i = 0; i < UTIL_ARRAY_LEN(cases); i++) {
        char path[32];
        snprintf(path, sizeof path, "/reuse-drop/%zu", i);
        fault(path, "[{\"drop\": true}, {\"status\": 200}]");
        struct httpc *c = client();
        ck_assert_int_eq(call(c, "GET", "/warm-up", NULL, 0), 0); /* a connection to reuse */
        httpc_response_free(&resp);
        int rc = call(c, cases[i].method, path, cases[i].body, cases[i].unsafe);
        ck_assert_msg(rc == cases[i].rc, "%s %s unsafe %d: rc %d (%s)", cases[i].method,
                      cases[i].body ? "with body" : "no body", cases[i].unsafe, rc,
                      rc ? err.message : "answered");
        if (rc == 0) {
            ck_assert_int_eq(resp.status, 200);
            httpc_response_free(&resp);
        } else {
            ck_assert_int_eq(err.code, LLMOPS_ERR_UNAVAILABLE);
            ck_assert_ptr_nonnull(strstr(err.message, "may have been processed"));
        }
        ck_assert_msg(count(path) == cases[i].sent, "%s %s: the tool got it %d times",
                      cases[i].method, cases[i].body ? "with body" : "no body", count(path));
        httpc_free(c);
    }
}
END_TEST

START_TEST(test_keep_alive_reuse)
{
    struct httpc *c = client();
    json_t *s = stats_via(c);
    json_int_t before = json_integer_value(json_object_get(s, "connections"));
    json_decref(s);
    ck_assert_int_eq(call(c, "GET", "/ka/1", NULL, 0), 0);
    httpc_response_free(&resp);
    ck_assert_int_eq(call(c, "POST", "/ka/2", "{\"n\": 2}", 0), 0);
    httpc_response_free(&resp);
    s = stats_via(c);
    json_int_t after = json_integer_value(json_object_get(s, "connections"));
    json_decref(s);
    ck_assert_msg(after == before, "%lld new connections for 3 sequential calls",
                  (long long)(after - before));

    /* a child process gets its own connection and leaves the parent's alone (it reports
     * through a pipe: under valgrind --error-exitcode its exit status says other things) */
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        int rc = call(c, "GET", "/ka/child", NULL, 0);
        char line[600];
        snprintf(line, sizeof line, "%d %d %s", rc, resp.status, rc ? err.message : "ok");
        ssize_t w = write(fds[1], line, strlen(line));
        (void)w;
        _exit(0);
    }
    close(fds[1]);
    char line[600] = "";
    ssize_t r = read(fds[0], line, sizeof line - 1);
    close(fds[0]);
    line[r > 0 ? r : 0] = '\0';
    waitpid(pid, NULL, 0);
    ck_assert_msg(strcmp(line, "0 200 ok") == 0, "the child's call: %s", line);
    s = stats_via(c);
    json_int_t later = json_integer_value(json_object_get(s, "connections"));
    json_decref(s);
    ck_assert_int_eq(later, after + 1);
    httpc_free(c);
}
END_TEST

START_TEST(test_no_secret_anywhere)
{
    /* password in the base URL + auth header; debug logging captured from stderr */
    char tmpl[] = "/tmp/httpc-log-XXXXXX";
    int fd = mkstemp(tmpl);
    ck_assert_int_ge(fd, 0);
    unlink(tmpl);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    log_set_level(LOG_LVL_DEBUG);

    char url[128];
    int port = closed_port();
    snprintf(url, sizeof url, "http://alice:pw-" TOKEN "@127.0.0.1:%d/api/", port);
    struct httpc_config cfg = config(port);
    cfg.base_url = url;
    struct httpc *c = httpc_new(&cfg);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(call(c, "GET", "/x?access_token=" TOKEN, NULL, 0), -1);
    char want[128];
    snprintf(want, sizeof want, "cannot reach http://127.0.0.1:%d/api/x: ", port);
    ck_assert_msg(strncmp(err.message, want, strlen(want)) == 0, "message: %s", err.message);
    assert_no_secret("message", err.message);
    ck_assert_ptr_null(strstr(err.message, "alice"));
    /* a credential in the call's own headers is scrubbed too, wherever it turns up */
    const char *const key_hdr[] = {"X-Api-Key: apikey-778899", NULL};
    ck_assert_int_eq(call_h(c, "GET", "/keys/apikey-778899/info", NULL, 0, key_hdr), -1);
    ck_assert_msg(strstr(err.message, "/api/keys/***/info"), "message: %s", err.message);
    httpc_free(c);

    /* answered calls with retries log too */
    fault("/sec", "[{\"status\": 503}, {\"status\": 200}]");
    c = client();
    ck_assert_int_eq(call(c, "GET", "/sec", NULL, 0), 0);
    httpc_response_free(&resp);
    httpc_free(c);

    log_set_level(LOG_LVL_INFO);
    dup2(saved, STDERR_FILENO);
    close(saved);
    char logbuf[8192];
    ssize_t n = pread(fd, logbuf, sizeof logbuf - 1, 0);
    close(fd);
    ck_assert_int_gt(n, 0);
    logbuf[n] = '\0';
    ck_assert_msg(strstr(logbuf, "retry"), "no retry lines were logged: %s", logbuf);
    assert_no_secret("the log", logbuf);
    ck_assert_ptr_null(strstr(logbuf, "alice"));

    /* ... while the header does reach the tool */
    json_t *s = stats();
    ck_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(json_object_get(s, "headers"), "/sec"), "Authorization")),
                     "Bearer " TOKEN);
    json_decref(s);
}
END_TEST

START_TEST(test_bad_input)
{
    log_set_level(LOG_LVL_SILENT); /* the refusals below are logged as errors */
    struct httpc_config cfg = config(fake_port);
    const char *bad_bases[] = {"ftp://127.0.0.1/", "127.0.0.1:80", "http://h/?q=1", "file:///etc",
                               "http://"};
    for (size_t i = 0; i < UTIL_ARRAY_LEN(bad_bases); i++) {
        cfg.base_url = bad_bases[i];
        ck_assert_msg(httpc_new(&cfg) == NULL, "accepted base %s", bad_bases[i]);
    }
    cfg = config(fake_port);
    cfg.auth_header = "Authorization: Bearer x\r\nX-Evil: 1";
    ck_assert_ptr_null(httpc_new(&cfg));
    log_set_level(LOG_LVL_INFO);

    struct httpc *c = client();
    ck_assert_int_eq(call(c, "GET", "no-slash", NULL, 0), -1);
    ck_assert_int_eq(err.code, LLMOPS_ERR_INVALID);
    ck_assert_int_eq(call(c, "GET", "/a b", NULL, 0), -1);
    ck_assert_int_eq(err.code, LLMOPS_ERR_INVALID);
    ck_assert_int_eq(call(c, "get", "/x", NULL, 0), -1);
    ck_assert_int_eq(err.code, LLMOPS_ERR_INVALID);
    const char *const evil[] = {"X-A: 1\r\nX-B: 2", NULL};
    ck_assert_int_eq(call_h(c, "GET", "/x", NULL, 0, evil), -1);
    ck_assert_int_eq(err.code, LLMOPS_ERR_INVALID);

    struct llmops_http_request q = {.size = 0, .method = "GET", .path = "/x"};
    struct llmops_http_response r = {.size = sizeof r};
    struct llmops_error e = {.size = sizeof e};
    ck_assert_int_eq(httpc_request(c, &q, &r, &e), -1);
    ck_assert_int_eq(e.code, LLMOPS_ERR_INTERNAL);

    /* base with a prefix and a trailing slash */
    httpc_free(c);
    cfg = config(fake_port);
    char pre[96];
    snprintf(pre, sizeof pre, "http://127.0.0.1:%d/prefix/", fake_port);
    cfg.base_url = pre;
    c = httpc_new(&cfg);
    ck_assert_int_eq(call(c, "GET", "/p", NULL, 0), 0);
    ck_assert_ptr_nonnull(strstr(resp.body, "\"/prefix/p\""));
    httpc_response_free(&resp);
    httpc_free(c);
}
END_TEST

/* ------------------------------------------------------------------ Limits */

START_TEST(test_body_cap_small)
{
    fault("/cap", "[{\"body_bytes\": 1000}, {\"body_bytes\": 1001}, "
                  "{\"body_bytes\": 50000, \"chunked\": true}]");
    struct httpc_config cfg = config(fake_port);
    cfg.max_body_bytes = 1000;
    struct httpc *c = httpc_new(&cfg);
    ck_assert_int_eq(call(c, "GET", "/cap", NULL, 0), 0);
    ck_assert_uint_eq(resp.body_len, 1000);
    ck_assert_int_eq(resp.body[1000], '\0');
    httpc_response_free(&resp);
    for (int i = 0; i < 2; i++) { /* Content-Length over the cap; chunked past it */
        ck_assert_int_eq(call(c, "GET", "/cap", NULL, 0), -1);
        ck_assert_int_eq(err.code, LLMOPS_ERR_TOOL);
        ck_assert_int_eq(err.retryable, 0);
        ck_assert_int_eq(resp.attempts, 1);
        ck_assert_ptr_nonnull(strstr(err.message, "response too large"));
    }
    ck_assert_int_eq(count("/cap"), 3);
    httpc_free(c);
}
END_TEST

START_TEST(test_body_cap_64mib)
{
    fault("/huge", "[{\"body_bytes\": 67108865}, {\"body_bytes\": 67108865, \"chunked\": true}]");
    struct httpc *c = client();
    int64_t t0 = util_now_ms();
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(call(c, "GET", "/huge", NULL, 0), -1);
        ck_assert_int_eq(err.code, LLMOPS_ERR_TOOL);
        ck_assert_int_eq(err.tool_status, 200);
        ck_assert_ptr_nonnull(strstr(err.message, "response too large"));
        ck_assert_ptr_nonnull(strstr(err.message, "64 MiB"));
    }
    int64_t dt = util_now_ms() - t0;
    ck_assert_msg(dt < 5000, "took %lld ms", (long long)dt);

    /* HEAD of something big (a model file's size): the Content-Length is no body */
    fault("/huge-head", "[{\"body_bytes\": 5368709120}]");
    ck_assert_int_eq(call(c, "HEAD", "/huge-head", NULL, 0), 0);
    ck_assert_int_eq(resp.status, 200);
    ck_assert_uint_eq(resp.body_len, 0);
    httpc_response_free(&resp);
    httpc_free(c);
}
END_TEST

START_TEST(test_backoff_grows)
{
    fault("/bo", "[{\"status\": 503}, {\"status\": 503}, {\"status\": 503}, {\"status\": 503}]");
    struct httpc_config cfg = config(fake_port);
    cfg.max_retries = 3;
    cfg.backoff_base_ms = 50;
    cfg.backoff_max_ms = 10000;
    cfg.jitter = jitter_one; /* the top of each full-jitter range: 50, 100, 200 */
    struct httpc *c = httpc_new(&cfg);
    int64_t t0 = util_now_ms();
    ck_assert_int_eq(call(c, "GET", "/bo", NULL, 0), 0);
    int64_t dt = util_now_ms() - t0;
    ck_assert_int_eq(resp.status, 503);
    ck_assert_int_eq(resp.attempts, 4);
    ck_assert_msg(dt >= 330 && dt < 2000, "3 retries from 50 ms took %lld ms", (long long)dt);
    httpc_response_free(&resp);
    httpc_free(c);

    /* capped: 200 each time, not 200, 400, 800 */
    fault("/bo-cap",
          "[{\"status\": 503}, {\"status\": 503}, {\"status\": 503}, {\"status\": 503}]");
    cfg.backoff_base_ms = 200;
    cfg.backoff_max_ms = 200;
    c = httpc_new(&cfg);
    t0 = util_now_ms();
    ck_assert_int_eq(call(c, "GET", "/bo-cap", NULL, 0), 0);
    dt = util_now_ms() - t0;
    ck_assert_int_eq(resp.attempts, 4);
    ck_assert_msg(dt >= 580 && dt < 1300, "capped backoff took %lld ms", (long long)dt);
    httpc_response_free(&resp);
    httpc_free(c);

    /* full jitter by default: never above the cap */
    fault("/bo-rand",
          "[{\"status\": 503}, {\"status\": 503}, {\"status\": 503}, {\"status\": 503}]");
    cfg.jitter = NULL;
    cfg.backoff_base_ms = 100;
    cfg.backoff_max_ms = 100;
    c = httpc_new(&cfg);
    t0 = util_now_ms();
    ck_assert_int_eq(call(c, "GET", "/bo-rand", NULL, 0), 0);
    dt = util_now_ms() - t0;
    ck_assert_int_eq(resp.attempts, 4);
    ck_assert_msg(dt < 300 + 700, "jittered backoff took %lld ms", (long long)dt);
    httpc_response_free(&resp);
    httpc_free(c);
}
END_TEST

static int run(const char *const *argv)
{
    pid_t pid;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        return -1;
    int st;
    if (waitpid(pid, &st, 0) != pid)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

START_TEST(test_tls_verification)
{
    if (!OPENSSL_BIN[0]) {
        fprintf(stderr, "test_tls_verification: no openssl program, skipped\n");
        return;
    }
    char dir[] = "/tmp/httpc-tls-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char cert[64], key[64];
    snprintf(cert, sizeof cert, "%s/cert.pem", dir);
    snprintf(key, sizeof key, "%s/key.pem", dir);
    const char *const gen[] = {OPENSSL_BIN,
                               "req",
                               "-x509",
                               "-newkey",
                               "ec",
                               "-pkeyopt",
                               "ec_paramgen_curve:prime256v1",
                               "-nodes",
                               "-keyout",
                               key,
                               "-out",
                               cert,
                               "-days",
                               "1",
                               "-subj",
                               "/CN=127.0.0.1",
                               "-addext",
                               "subjectAltName=IP:127.0.0.1",
                               NULL};
    ck_assert_int_eq(run(gen), 0);
    int port;
    const char *const extra[] = {"--tls-cert", cert, "--tls-key", key, NULL};
    pid_t pid = spawn_fake(extra, &port);

    char url[64];
    snprintf(url, sizeof url, "https://127.0.0.1:%d", port);
    struct httpc_config cfg = config(port);
    cfg.base_url = url;
    struct httpc *c = httpc_new(&cfg); /* the system CAs: a self-signed cert is refused */
    int rc = call(c, "GET", "/tls", NULL, 0);
    httpc_free(c);
    if (rc == 0)
        httpc_response_free(&resp);
    struct llmops_error e1 = err;
    int attempts = resp.attempts;

    cfg.ca_file = cert; /* trusted through ca_file */
    c = httpc_new(&cfg);
    int rc2 = call(c, "GET", "/tls", NULL, 0);
    int status2 = resp.status;
    struct llmops_error e2 = err;
    if (rc2 == 0)
        httpc_response_free(&resp);
    httpc_free(c);

    cfg.ca_file = NULL; /* verification off */
    cfg.verify_tls = 0;
    c = httpc_new(&cfg);
    int rc3 = call(c, "GET", "/tls", NULL, 0);
    if (rc3 == 0)
        httpc_response_free(&resp);
    httpc_free(c);

    stop_fake(pid);
    unlink(cert);
    unlink(key);
    rmdir(dir);

    ck_assert_int_eq(rc, -1);
    ck_assert_int_eq(e1.code, LLMOPS_ERR_UNAVAILABLE);
    ck_assert_int_eq(e1.retryable, 0);
    ck_assert_int_eq(attempts, 1);
    ck_assert_msg(strstr(e1.message, "certificate verification failed"), "message: %s", e1.message);
    assert_no_secret("TLS message", e1.message);
    ck_assert_msg(rc2 == 0 && status2 == 200, "with ca_file: rc %d status %d: %s", rc2, status2,
                  e2.message);
    ck_assert_int_eq(rc3, 0);
}
END_TEST

START_TEST(test_dns_failure)
{
    struct httpc_config cfg = config(0);
    cfg.base_url = "http://no-such-host.invalid";
    cfg.total_timeout_ms = 1500;
    struct httpc *c = httpc_new(&cfg);
    int64_t t0 = util_now_ms();
    ck_assert_int_eq(call(c, "GET", "/x", NULL, 0), -1);
    int64_t dt = util_now_ms() - t0;
    ck_assert_int_eq(err.code, LLMOPS_ERR_UNAVAILABLE);
    ck_assert_int_eq(err.retryable, 1);
    ck_assert_msg(strstr(err.message, "no-such-host.invalid"), "message: %s", err.message);
    ck_assert_msg(dt < 1500 + 700, "took %lld ms", (long long)dt);
    httpc_free(c);
}
END_TEST

/* ------------------------------------------------------------------ ABI 1.1 services
 *
 * A second fake listens on 127.0.0.2, another host on loopback: redirects and absolute URLs
 * to it cross an origin, so credentials must stay behind. */

static pid_t other_pid = -1;
static int other_port;

static void services_setup(void)
{
    fake_setup();
    const char *const bind2[] = {"--bind", "127.0.0.2", NULL};
    other_pid = spawn_fake(bind2, &other_port);
}

static void services_teardown(void)
{
    stop_fake(other_pid);
    other_pid = -1;
    fake_teardown();
}

static struct httpc *other_client(void)
{
    char b[64];
    snprintf(b, sizeof b, "http://127.0.0.2:%d", other_port);
    struct httpc_config cfg = config(fake_port);
    cfg.base_url = b;
    cfg.auth_header = NULL;
    struct httpc *c = httpc_new(&cfg);
    ck_assert_ptr_nonnull(c);
    return c;
}

/* The headers the fake at 127.0.0.2 saw for path (a new reference), or NULL. */
static json_t *other_headers(const char *path)
{
    struct httpc *c = other_client();
    json_t *s = stats_via(c);
    httpc_free(c);
    json_t *h = json_object_get(json_object_get(s, "headers"), path);
    json_incref(h);
    json_decref(s);
    return h;
}

static json_t *headers_seen(const char *path)
{
    json_t *s = stats();
    json_t *h = json_object_get(json_object_get(s, "headers"), path);
    json_incref(h);
    json_decref(s);
    return h;
}

static int call_req(struct httpc *c, struct llmops_http_request *q)
{
    q->size = sizeof *q;
    memset(&resp, 0, sizeof resp);
    resp.size = sizeof resp;
    memset(&err, 0, sizeof err);
    err.size = sizeof err;
    return httpc_request(c, q, &resp, &err);
}

static long peak_rss_kib(void)
{
    struct rusage ru;
    ck_assert_int_eq(getrusage(RUSAGE_SELF, &ru), 0);
    return ru.ru_maxrss;
}

START_TEST(test_redirect_same_host_keeps_auth)
{
    fault("/r/same", "[{\"status\": 302, \"headers\": {\"Location\": \"/r/target?x=1\"}}]");
    struct httpc *c = client();
    struct llmops_http_request q = {.method = "GET", .path = "/r/same", .max_redirects = 3};
    ck_assert_int_eq(call_req(c, &q), 0);
    ck_assert_int_eq(resp.status, 200);
    ck_assert_int_eq(resp.redirects, 1);
    ck_assert_int_eq(resp.attempts, 2);
    char want[96];
    snprintf(want, sizeof want, "http://127.0.0.1:%d/r/target", fake_port);
    ck_assert_str_eq(resp.url, want); /* no query: it may hold a signature */
    httpc_response_free(&resp);
    json_t *h = headers_seen("/r/target");
    ck_assert_ptr_nonnull(h);
    ck_assert_str_eq(json_string_value(json_object_get(h, "Authorization")), "Bearer " TOKEN);
    json_decref(h);

    /* max_redirects 0 (and every 1.0 module): the 3xx itself, Location readable */
    fault("/r/same", "[{\"status\": 302, \"headers\": {\"Location\": \"/r/target\"}}]");
    q.max_redirects = 0;
    ck_assert_int_eq(call_req(c, &q), 0);
    ck_assert_int_eq(resp.status, 302);
    ck_assert_int_eq(resp.redirects, 0);
    ck_assert_str_eq(httpc_response_header(&resp, "location"), "/r/target");
    httpc_response_free(&resp);
    httpc_free(c);
}
END_TEST

START_TEST(test_redirect_other_host_drops_auth)
{
    char loc[256];
    snprintf(loc, sizeof loc,
             "[{\"status\": 302, \"headers\": {\"Location\": "
             "\"http://127.0.0.2:%d/cdn/blob?sig=abc\"}}]",
             other_port);
    fault("/r/cdn", loc);
    struct httpc_config cfg = config(fake_port);
    cfg.allowed_hosts = "cdn.example.org, 127.0.0.2";
    struct httpc *c = httpc_new(&cfg);
    ck_assert_ptr_nonnull(c);
    const char *const hdrs[] = {"X-Api-Key: key-4455", "X-Trace: t1", NULL};
    struct llmops_http_request q = {
        .method = "GET", .path = "/r/cdn", .headers = hdrs, .max_redirects = 2};
    ck_assert_int_eq(call_req(c, &q), 0);
    ck_assert_int_eq(resp.status, 200);
    ck_assert_int_eq(resp.redirects, 1);
    httpc_response_free(&resp);
    /* the first hop carried the credentials ... */
    json_t *h = headers_seen("/r/cdn");
    ck_assert_str_eq(json_string_value(json_object_get(h, "Authorization")), "Bearer " TOKEN);
    ck_assert_str_eq(json_string_value(json_object_get(h, "X-Api-Key")), "key-4455");
    json_decref(h);
    /* ... the other host got neither the token nor the request's own key, but the rest */
    h = other_headers("/cdn/blob");
    ck_assert_ptr_nonnull(h);
    ck_assert_ptr_null(json_object_get(h, "Authorization"));
    ck_assert_ptr_null(json_object_get(h, "X-Api-Key"));
    ck_assert_str_eq(json_string_value(json_object_get(h, "X-Trace")), "t1");
    json_decref(h);
    httpc_free(c);
}
END_TEST

START_TEST(test_redirect_host_not_allowed)
{
    char loc[256];
    snprintf(loc, sizeof loc,
             "[{\"status\": 307, \"headers\": {\"Location\": \"http://127.0.0.2:%d/cdn/no\"}}]",
             other_port);
    fault("/r/no", loc);
    struct httpc *c = client(); /* no allowed_hosts */
    struct llmops_http_request q = {.method = "GET", .path = "/r/no", .max_redirects = 2};
    ck_assert_int_eq(call_req(c, &q), -1);
    ck_assert_int_eq(err.code, LLMOPS_ERR_TOOL);
    ck_assert_int_eq(err.tool_status, 307);
    ck_assert_msg(strstr(err.message, "redirect to host 127.0.0.2 refused") &&
                      strstr(err.message, "allowed_hosts"),
                  "message: %s", err.message);
    ck_assert_ptr_null(resp.body);
    httpc_free(c);
    ck_assert_ptr_null(other_headers("/cdn/no")); /* never asked */

    /* a wildcard allows subdomains only, not look-alikes */
    struct httpc_config cfg = config(fake_port);
    cfg.allowed_hosts = "*.0.0.2 *.example.org";
    c = httpc_new(&cfg);
    fault("/r/no", loc);
    ck_assert_int_eq(call_req(c, &q), 0); /* 127.0.0.2 ends in .0.0.2 */
    httpc_response_free(&resp);
    httpc_free(c);
}
END_TEST

START_TEST(test_redirect_method_rules)
{
    struct httpc *c = client();
    /* 303 after a POST: GET, no body */
    fault("/r/post303", "[{\"status\": 303, \"headers\": {\"Location\": \"/r/after303\"}}]");
    struct llmops_http_request q = {.method = "POST",
                                    .path = "/r/post303",
                                    .body = "{\"a\": 1}",
                                    .body_len = 8,
                                    .max_redirects = 1};
    ck_assert_int_eq(call_req(c, &q), 0);
    ck_assert_int_eq(resp.status, 200);
    json_t *j = json_loads(resp.body, 0, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(j, "method")), "GET");
    ck_assert(json_is_null(json_object_get(j, "body")));
    json_decref(j);
    httpc_response_free(&resp);
    /* 307: the same method and body again */
    fault("/r/post307", "[{\"status\": 307, \"headers\": {\"Location\": \"/r/after307\"}}]");
    q.path = "/r/post307";
    ck_assert_int_eq(call_req(c, &q), 0);
    j = json_loads(resp.body, 0, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(j, "method")), "POST");
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(j, "body"), "a")), 1);
    json_decref(j);
    httpc_response_free(&resp);
    /* a loop ends at max_redirects with the 3xx itself */
    fault("/r/loop", "[{\"status\": 302, \"headers\": {\"Location\": \"/r/loop\"}}, "
                     "{\"status\": 302, \"headers\": {\"Location\": \"/r/loop\"}}, "
                     "{\"status\": 302, \"headers\": {\"Location\": \"/r/loop\"}}]");
    struct llmops_http_request g = {.method = "GET", .path = "/r/loop", .max_redirects = 2};
    ck_assert_int_eq(call_req(c, &g), 0);
    ck_assert_int_eq(resp.status, 302);
    ck_assert_int_eq(resp.redirects, 2);
    httpc_response_free(&resp);
    g.max_redirects = 21;
    ck_assert_int_eq(call_req(c, &g), -1);
    ck_assert_int_eq(err.code, LLMOPS_ERR_INVALID);
    httpc_free(c);
}
END_TEST

START_TEST(test_absolute_url)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.2:%d/abs/predict?x=1", other_port);
    struct llmops_http_request q = {.method = "GET", .url = url};
    struct httpc *c = client();
    ck_assert_int_eq(call_req(c, &q), -1);
    ck_assert_int_eq(err.code, LLMOPS_ERR_INVALID);
    ck_assert_msg(strstr(err.message, "host 127.0.0.2 is not allowed") &&
                      strstr(err.message, "allowed_hosts"),
                  "message: %s", err.message);
    httpc_free(c);
    ck_assert_ptr_null(other_headers("/abs/predict"));

    struct httpc_config cfg = config(fake_port);
    cfg.allowed_hosts = "127.0.0.2";
    c = httpc_new(&cfg);
    ck_assert_int_eq(call_req(c, &q), 0);
    ck_assert_int_eq(resp.status, 200);
    httpc_response_free(&resp);
    json_t *h = other_headers("/abs/predict");
    ck_assert_ptr_nonnull(h);
    ck_assert_ptr_null(json_object_get(h, "Authorization")); /* not an endpoint's origin */
    json_decref(h);
    /* an absolute URL on the endpoint's own origin is the tool: the token goes */
    snprintf(url, sizeof url, "http://127.0.0.1:%d/abs/own", fake_port);
    ck_assert_int_eq(call_req(c, &q), 0);
    httpc_response_free(&resp);
    h = headers_seen("/abs/own");
    ck_assert_str_eq(json_string_value(json_object_get(h, "Authorization")), "Bearer " TOKEN);
    json_decref(h);
    const char *bad[] = {"ftp://127.0.0.2/x", "/relative", "http://127.0.0.2/a b"};
    for (size_t i = 0; i < UTIL_ARRAY_LEN(bad); i++) {
        q.url = bad[i];
        ck_assert_int_eq(call_req(c, &q), -1);
        ck_assert_int_eq(err.code, LLMOPS_ERR_INVALID);
    }
    httpc_free(c);
}
END_TEST

START_TEST(test_endpoints)
{
    struct httpc_config cfg = config(fake_port);
    char ui[96];
    snprintf(ui, sizeof ui, "http://127.0.0.1:%d/ui/", fake_port);
    const struct httpc_endpoint eps[] = {{"ui_url", ui}};
    cfg.endpoints = eps;
    cfg.nendpoints = 1;
    struct httpc *c = httpc_new(&cfg);
    ck_assert_ptr_nonnull(c);
    struct llmops_http_request q = {.method = "GET", .endpoint = "ui_url", .path = "/page"};
    ck_assert_int_eq(call_req(c, &q), 0);
    json_t *j = json_loads(resp.body, 0, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(j, "path")), "/ui/page");
    json_decref(j);
    httpc_response_free(&resp);
    q.endpoint = "logs_url";
    ck_assert_int_eq(call_req(c, &q), -1);
    ck_assert_int_eq(err.code, LLMOPS_ERR_INVALID);
    ck_assert_msg(strstr(err.message, "endpoint 'logs_url' is not configured"), "message: %s",
                  err.message);
    httpc_free(c);
    /* a URL key that cannot be a base (a UI link with a fragment) costs that endpoint only */
    log_set_level(LOG_LVL_SILENT);
    const struct httpc_endpoint odd[] = {{"ui_url", "http://127.0.0.1:1/#/experiments"}};
    cfg.endpoints = odd;
    c = httpc_new(&cfg);
    log_set_level(LOG_LVL_INFO);
    ck_assert_ptr_nonnull(c);
    q.endpoint = NULL;
    ck_assert_int_eq(call_req(c, &q), 0); /* url still works */
    httpc_response_free(&resp);
    q.endpoint = "ui_url";
    ck_assert_int_eq(call_req(c, &q), -1);
    ck_assert_int_eq(err.code, LLMOPS_ERR_INVALID);
    httpc_free(c);
}
END_TEST

START_TEST(test_response_headers)
{
    fault("/hdr", "[{\"status\": 200, \"headers\": {"
                  "\"Link\": \"<https://hub/api/models?cursor=2>; rel=\\\"next\\\"\", "
                  "\"ETag\": \"\\\"abc123\\\"\", \"Warning\": \"299 - \\\"deprecated\\\"\", "
                  "\"X-Repo-Commit\": \"deadbeef\", \"X-Other\": \"no\"}}]");
    struct httpc *c = client();
    const char *const want[] = {"x-repo-commit", NULL};
    struct llmops_http_request q = {.method = "GET", .path = "/hdr", .want_headers = want};
    ck_assert_int_eq(call_req(c, &q), 0);
    ck_assert_str_eq(httpc_response_header(&resp, "Link"),
                     "<https://hub/api/models?cursor=2>; rel=\"next\"");
    ck_assert_str_eq(httpc_response_header(&resp, "etag"), "\"abc123\"");
    ck_assert_str_eq(httpc_response_header(&resp, "WARNING"), "299 - \"deprecated\"");
    ck_assert_str_eq(httpc_response_header(&resp, "X-Repo-Commit"), "deadbeef");
    ck_assert_ptr_null(httpc_response_header(&resp, "X-Other")); /* not asked for */
    ck_assert_ptr_nonnull(httpc_response_header(&resp, "Content-Length"));
    ck_assert_ptr_null(httpc_response_header(&resp, "Retry-After"));
    httpc_response_free(&resp);
    ck_assert_ptr_null(resp.headers);
    /* A NUL inside a value must not forge a header of its own. libcurl refuses such an
     * answer before our parser sees it; fuzz_http_headers checks the parser alone. */
    fault("/hdr", "[{\"status\": 200, \"headers\": {"
                  "\"X-Repo-Commit\": \"abc\\u0000location\\u0000https://evil.example/\"}}]");
    ck_assert_int_eq(call_req(c, &q), -1);
    ck_assert_ptr_null(resp.headers);
    /* Retry-After of a 429 answered as it is (no retries left) */
    fault("/hdr", "[{\"status\": 429, \"retry_after\": 7}]");
    struct httpc_config cfg = config(fake_port);
    cfg.max_retries = 0;
    httpc_free(c);
    c = httpc_new(&cfg);
    ck_assert_int_eq(call_req(c, &q), 0);
    ck_assert_int_eq(resp.status, 429);
    ck_assert_str_eq(httpc_response_header(&resp, "retry-after"), "7");
    httpc_response_free(&resp);
    httpc_free(c);
}
END_TEST

struct progress_seen {
    int64_t calls, down_max, down_total, up_max, up_total;
    int64_t abort_after; /* bytes either way; 0 = never */
};

static int on_progress_cb(void *ctx, int64_t dn, int64_t dt, int64_t un, int64_t ut)
{
    struct progress_seen *p = ctx;
    p->calls++;
    if (dn > p->down_max)
        p->down_max = dn;
    if (dt > p->down_total)
        p->down_total = dt;
    if (un > p->up_max)
        p->up_max = un;
    if (ut > p->up_total)
        p->up_total = ut;
    return p->abort_after > 0 && dn + un >= p->abort_after;
}

/* The hex digest `tool` (md5sum, sha256sum) prints for path. */
static void tool_digest(const char *tool, const char *path, char *out, size_t size)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "%s %s", tool, path);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    ck_assert_ptr_nonnull(fgets(out, (int)size, p));
    pclose(p);
    out[strcspn(out, " ")] = '\0';
}

#define UPLOAD_BYTES ((int64_t)200 << 20)

START_TEST(test_upload_streamed_from_file)
{
    char path[] = "/tmp/httpc-up-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    /* 200 MiB, sparse: a few real bytes at each end, holes between (no disk, no memory) */
    ck_assert_int_eq(pwrite(fd, "head-bytes", 10, 0), 10);
    ck_assert_int_eq(ftruncate(fd, UPLOAD_BYTES - 10), 0);
    ck_assert_int_eq(pwrite(fd, "tail-bytes", 10, UPLOAD_BYTES - 10), 10);
    close(fd);
    char want_sha[LLMOPS_DIGEST_HEX_MAX], tool_sha[128];
    int64_t n = 0;
    ck_assert_int_eq(digest_file(LLMOPS_DIGEST_SHA256, path, want_sha, sizeof want_sha, &n, &err),
                     0);
    ck_assert_int_eq(n, UPLOAD_BYTES);
    tool_digest("sha256sum", path, tool_sha, sizeof tool_sha);
    ck_assert_str_eq(want_sha, tool_sha);

    struct httpc_config cfg = config(fake_port);
    cfg.total_timeout_ms = 60000;
    struct httpc *c = httpc_new(&cfg);
    struct progress_seen ps = {0};
    struct llmops_http_request q = {.method = "PUT",
                                    .path = "/_sink/model.bin",
                                    .body_file = path,
                                    .content_type = "application/octet-stream",
                                    .progress = on_progress_cb,
                                    .progress_ctx = &ps};
    long before = peak_rss_kib();
    int64_t t0 = util_now_ms();
    ck_assert_int_eq(call_req(c, &q), 0);
    int64_t ms = util_now_ms() - t0;
    long grew = peak_rss_kib() - before;
    ck_assert_int_eq(resp.status, 200);
    json_t *j = json_loads(resp.body, 0, NULL);
    ck_assert_ptr_nonnull(j);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "bytes")), UPLOAD_BYTES);
    ck_assert_str_eq(json_string_value(json_object_get(j, "sha256")), want_sha);
    ck_assert_str_eq(json_string_value(json_object_get(j, "method")), "PUT");
    json_decref(j);
    httpc_response_free(&resp);
    /* held in memory, 200 MiB would show here; streamed, libcurl's buffers do */
    ck_assert_msg(grew < 32 * 1024, "peak RSS grew by %ld KiB", grew);
    ck_assert_int_eq(ps.up_max, UPLOAD_BYTES);
    ck_assert_int_eq(ps.up_total, UPLOAD_BYTES);
    ck_assert_int_gt(ps.calls, 1);
    fprintf(stderr, "upload: 200 MiB in %lld ms, peak RSS +%ld KiB, %lld progress calls\n",
            (long long)ms, grew, (long long)ps.calls);
    json_t *h = headers_seen("/_sink/model.bin");
    ck_assert_str_eq(json_string_value(json_object_get(h, "Content-Type")),
                     "application/octet-stream");
    json_decref(h);

    /* POST from a file (unsafe: read through on_read, never rewound) */
    q.method = "POST";
    q.path = "/_sink/post";
    q.progress = NULL;
    ck_assert_int_eq(call_req(c, &q), 0);
    j = json_loads(resp.body, 0, NULL);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "bytes")), UPLOAD_BYTES);
    json_decref(j);
    httpc_response_free(&resp);
    /* a missing file is the module's mistake */
    q.body_file = "/nonexistent/file";
    ck_assert_int_eq(call_req(c, &q), -1);
    ck_assert_int_eq(err.code, LLMOPS_ERR_INVALID);
    ck_assert_msg(strstr(err.message, "body_file /nonexistent/file"), "message: %s", err.message);
    httpc_free(c);
    unlink(path);
}
END_TEST

#define DOWNLOAD_BYTES ((int64_t)96 << 20)

START_TEST(test_download_to_file)
{
    char path[] = "/tmp/httpc-down-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    char spec[128];
    snprintf(spec, sizeof spec, "[{\"body_bytes\": %lld}]", (long long)DOWNLOAD_BYTES);
    fault("/dl", spec);
    struct httpc_config cfg = config(fake_port);
    cfg.total_timeout_ms = 60000;
    cfg.max_body_bytes = 1 << 20; /* the JSON cap: a file is not held to it */
    struct httpc *c = httpc_new(&cfg);
    struct progress_seen ps = {0};
    struct llmops_http_request q = {.method = "GET",
                                    .path = "/dl",
                                    .response_file = path,
                                    .progress = on_progress_cb,
                                    .progress_ctx = &ps};
    long before = peak_rss_kib();
    ck_assert_int_eq(call_req(c, &q), 0);
    long grew = peak_rss_kib() - before;
    ck_assert_int_eq(resp.status, 200);
    ck_assert_int_eq(resp.file_bytes, DOWNLOAD_BYTES);
    ck_assert_uint_eq(resp.body_len, 0);
    httpc_response_free(&resp);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_size, DOWNLOAD_BYTES);
    ck_assert_msg(grew < 32 * 1024, "peak RSS grew by %ld KiB", grew);
    ck_assert_int_eq(ps.down_max, DOWNLOAD_BYTES);
    ck_assert_int_eq(ps.down_total, DOWNLOAD_BYTES);
    char md5[LLMOPS_DIGEST_HEX_MAX], tool[128];
    ck_assert_int_eq(digest_file(LLMOPS_DIGEST_MD5, path, md5, sizeof md5, NULL, &err), 0);
    tool_digest("md5sum", path, tool, sizeof tool);
    ck_assert_str_eq(md5, tool);

    /* an error answer's body stays in memory, the file is left empty */
    fault("/dl", "[{\"status\": 404, \"body\": {\"error\": \"no such file\"}}]");
    ck_assert_int_eq(call_req(c, &q), 0);
    ck_assert_int_eq(resp.status, 404);
    ck_assert_ptr_nonnull(strstr(resp.body, "no such file"));
    ck_assert_int_eq(resp.file_bytes, 0);
    httpc_response_free(&resp);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_size, 0);

    /* the progress callback cancels */
    fault("/dl", spec);
    ps = (struct progress_seen){.abort_after = 4 << 20};
    ck_assert_int_eq(call_req(c, &q), -1);
    ck_assert_int_eq(err.code, LLMOPS_ERR_UNAVAILABLE);
    ck_assert_msg(strstr(err.message, "aborted by the module"), "message: %s", err.message);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_size, 0);
    httpc_free(c);
    unlink(path);
}
END_TEST

START_TEST(test_redirect_https_to_http_refused)
{
    if (!OPENSSL_BIN[0]) {
        fprintf(stderr, "test_redirect_https_to_http_refused: no openssl program, skipped\n");
        return;
    }
    char dir[] = "/tmp/httpc-tls-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char cert[64], key[64];
    snprintf(cert, sizeof cert, "%s/cert.pem", dir);
    snprintf(key, sizeof key, "%s/key.pem", dir);
    const char *const gen[] = {OPENSSL_BIN,
                               "req",
                               "-x509",
                               "-newkey",
                               "ec",
                               "-pkeyopt",
                               "ec_paramgen_curve:prime256v1",
                               "-nodes",
                               "-keyout",
                               key,
                               "-out",
                               cert,
                               "-days",
                               "1",
                               "-subj",
                               "/CN=127.0.0.1",
                               "-addext",
                               "subjectAltName=IP:127.0.0.1",
                               NULL};
    ck_assert_int_eq(run(gen), 0);
    int port;
    const char *const extra[] = {"--tls-cert", cert, "--tls-key", key, NULL};
    pid_t pid = spawn_fake(extra, &port);
    char url[64], spec[256];
    snprintf(url, sizeof url, "https://127.0.0.1:%d", port);
    struct httpc_config cfg = config(port);
    cfg.base_url = url;
    cfg.ca_file = cert;
    struct httpc *c = httpc_new(&cfg);
    ck_assert_ptr_nonnull(c);
    snprintf(spec, sizeof spec,
             "{\"path\": \"/down\", \"responses\": [{\"status\": 302, \"headers\": "
             "{\"Location\": \"http://127.0.0.1:%d/plain\"}}]}",
             fake_port);
    ck_assert_int_eq(call(c, "POST", "/_faults", spec, 0), 0);
    httpc_response_free(&resp);
    struct llmops_http_request q = {.method = "GET", .path = "/down", .max_redirects = 3};
    int rc = call_req(c, &q);
    struct llmops_error e = err;
    httpc_free(c);
    stop_fake(pid);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_eq(rc, -1);
    ck_assert_int_eq(e.code, LLMOPS_ERR_TOOL);
    ck_assert_msg(strstr(e.message, "redirect from https to http"), "message: %s", e.message);
    ck_assert_int_eq(count("/plain"), 0); /* the token never went out in clear */
}
END_TEST

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

static const char *auth_seen(const char *path)
{
    static char v[128];
    json_t *h = headers_seen(path);
    snprintf(v, sizeof v, "%s", json_string_value(json_object_get(h, "Authorization")));
    json_decref(h);
    return v;
}

START_TEST(test_token_file_rotation)
{
    char dir[] = "/tmp/httpc-tok-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char tok[128], data1[128], data2[128], link[128];
    snprintf(tok, sizeof tok, "%s/token", dir);
    write_file(tok, "token-one-AAAA\n");
    struct httpc_config cfg = config(fake_port);
    cfg.auth_header = NULL;
    cfg.auth_file = tok;
    cfg.auth_scheme = "Bearer";
    struct httpc *c = httpc_new(&cfg);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(call(c, "GET", "/tok", NULL, 0), 0);
    httpc_response_free(&resp);
    ck_assert_str_eq(auth_seen("/tok"), "Bearer token-one-AAAA");
    /* rewritten in place, same length: the next call carries the new one */
    write_file(tok, "token-two-BBBB\n");
    ck_assert_int_eq(call(c, "GET", "/tok", NULL, 0), 0);
    httpc_response_free(&resp);
    ck_assert_str_eq(auth_seen("/tok"), "Bearer token-two-BBBB");

    /* kubelet's way: ..data is a symlink swapped atomically to a new directory */
    snprintf(data1, sizeof data1, "%s/d1", dir);
    snprintf(data2, sizeof data2, "%s/d2", dir);
    ck_assert_int_eq(mkdir(data1, 0700), 0);
    ck_assert_int_eq(mkdir(data2, 0700), 0);
    char f1[160], f2[160], tmp[160];
    snprintf(f1, sizeof f1, "%s/token", data1);
    snprintf(f2, sizeof f2, "%s/token", data2);
    write_file(f1, "sa-token-1111");
    write_file(f2, "sa-token-2222");
    snprintf(link, sizeof link, "%s/..data", dir);
    ck_assert_int_eq(symlink("d1", link), 0);
    char projected[160];
    snprintf(projected, sizeof projected, "%s/sa-token", dir);
    ck_assert_int_eq(symlink("..data/token", projected), 0);
    httpc_free(c);
    cfg.auth_file = projected;
    c = httpc_new(&cfg);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(call(c, "GET", "/tok", NULL, 0), 0);
    httpc_response_free(&resp);
    ck_assert_str_eq(auth_seen("/tok"), "Bearer sa-token-1111");
    snprintf(tmp, sizeof tmp, "%s/..data_tmp", dir);
    ck_assert_int_eq(symlink("d2", tmp), 0);
    ck_assert_int_eq(rename(tmp, link), 0);
    ck_assert_int_eq(call(c, "GET", "/tok", NULL, 0), 0);
    httpc_response_free(&resp);
    ck_assert_str_eq(auth_seen("/tok"), "Bearer sa-token-2222");
    /* a token file that vanishes keeps the last good token */
    log_set_level(LOG_LVL_SILENT);
    ck_assert_int_eq(unlink(link), 0);
    ck_assert_int_eq(call(c, "GET", "/tok", NULL, 0), 0);
    httpc_response_free(&resp);
    log_set_level(LOG_LVL_INFO);
    ck_assert_str_eq(auth_seen("/tok"), "Bearer sa-token-2222");
    httpc_free(c);

    /* Basic from a user:password file */
    write_file(tok, "alice:pw-123\n");
    cfg.auth_file = tok;
    cfg.auth_scheme = "Basic";
    c = httpc_new(&cfg);
    ck_assert_int_eq(call(c, "GET", "/tok", NULL, 0), 0);
    httpc_response_free(&resp);
    ck_assert_str_eq(auth_seen("/tok"), "Basic YWxpY2U6cHctMTIz");
    httpc_free(c);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* ------------------------------------------------------------------ suite */

static Suite *make_httpclient_suite(void)
{
    Suite *s = suite_create("httpclient");
    TCase *core = tcase_create("Core");
    tcase_add_unchecked_fixture(core, fake_setup, fake_teardown);
    tcase_set_timeout(core, 20);
    tcase_add_test(core, test_json_round_trip);
    tcase_add_loop_test(core, test_methods, 0, 2 * (int)UTIL_ARRAY_LEN(methods));
    tcase_add_loop_test(core, test_status_retries, 0, (int)UTIL_ARRAY_LEN(status_cases));
    tcase_add_test(core, test_503_then_200);
    tcase_add_test(core, test_404_and_html_not_retried);
    tcase_add_test(core, test_retry_after_seconds);
    tcase_add_test(core, test_retry_after_http_date);
    tcase_add_test(core, test_retry_after_beyond_deadline);
    tcase_add_test(core, test_connection_refused);
    tcase_add_test(core, test_hang_past_deadline);
    tcase_add_test(core, test_deadline_covers_retries);
    tcase_add_test(core, test_lost_answer);
    tcase_add_test(core, test_lost_answer_on_reused_connection);
    tcase_add_test(core, test_keep_alive_reuse);
    tcase_add_test(core, test_no_secret_anywhere);
    tcase_add_test(core, test_bad_input);
    suite_add_tcase(s, core);

    TCase *limits = tcase_create("Limits");
    tcase_add_unchecked_fixture(limits, fake_setup, fake_teardown);
    tcase_set_timeout(limits, 20);
    tcase_add_test(limits, test_body_cap_small);
    tcase_add_test(limits, test_body_cap_64mib);
    tcase_add_test(limits, test_backoff_grows);
    tcase_add_test(limits, test_tls_verification);
    tcase_add_test(limits, test_dns_failure);
    suite_add_tcase(s, limits);

    TCase *services = tcase_create("Services");
    tcase_add_unchecked_fixture(services, services_setup, services_teardown);
    tcase_set_timeout(services, 60);
    tcase_add_test(services, test_redirect_same_host_keeps_auth);
    tcase_add_test(services, test_redirect_other_host_drops_auth);
    tcase_add_test(services, test_redirect_host_not_allowed);
    tcase_add_test(services, test_redirect_method_rules);
    tcase_add_test(services, test_absolute_url);
    tcase_add_test(services, test_endpoints);
    tcase_add_test(services, test_response_headers);
    tcase_add_test(services, test_upload_streamed_from_file);
    tcase_add_test(services, test_download_to_file);
    tcase_add_test(services, test_token_file_rotation);
    tcase_add_test(services, test_redirect_https_to_http_refused);
    suite_add_tcase(s, services);
    return s;
}

int main(void)
{
    /* the tests talk to 127.0.0.1: a proxy from the environment must not get in between */
    const char *proxies[] = {"http_proxy", "https_proxy", "all_proxy",
                             "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"};
    for (size_t i = 0; i < UTIL_ARRAY_LEN(proxies); i++)
        unsetenv(proxies[i]);
    signal(SIGPIPE, SIG_IGN);
    SRunner *sr = srunner_create(make_httpclient_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
