/* The kit's mock host (kit/llmops-mock-host.h) on its own: each service a module gets
 * behaves as llmops-plugin.h documents it, and a test can control and inspect it. Real
 * HTTP is checked against a one-shot server forked here; PostgreSQL is not touched (db_exec
 * without a conninfo answers UNAVAILABLE, as the server does without a [database]). */
#include "llmops-mock-host.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static struct llmops_mock *m;
static const struct llmops_host *h;

static void setup(void)
{
    m = llmops_mock_new("inst", "mod");
    h = llmops_mock_host(m);
    llmops_mock_clock_real(0);
    llmops_mock_clock_autostep(0);
    llmops_mock_clock_set(1000000, 1700000000000LL);
}

static void teardown(void)
{
    llmops_mock_free(m);
}

static const char *tmpfile_with(char *path, const char *text)
{
    strcpy(path, "/tmp/mockhost-XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    size_t n = strlen(text);
    ck_assert_int_eq(write(fd, text, n), (ssize_t)n);
    close(fd);
    return path;
}

/* ------------------------------------------------------------------ configuration */

START_TEST(test_config_table_and_types)
{
    char msg[300];
    const char *const t[] = {"name = x", "count=7", "on = yes", NULL};
    ck_assert_int_eq(llmops_mock_config_table(m, t, msg, sizeof msg), 0);
    ck_assert_str_eq(h->config_string(h, "name", "d"), "x");
    ck_assert_str_eq(h->config_string(h, "absent", "d"), "d");
    ck_assert_int_eq(h->config_int(h, "count", 0), 7);
    ck_assert_int_eq(h->config_int(h, "name", 42), 42); /* not a number: the default */
    ck_assert_int_eq(h->config_bool(h, "on", 0), 1);
    ck_assert_str_eq(h->config_where(h, "count"), "table:2");
    const char *const bad[] = {"no-equals", NULL};
    ck_assert_int_eq(llmops_mock_config_table(m, bad, msg, sizeof msg), -1);
    ck_assert_msg(strstr(msg, "table:1") != NULL, "%s", msg);
    ck_assert_int_eq(llmops_mock_config_set(m, "count", "8"), 0);
    ck_assert_int_eq(h->config_int(h, "count", 0), 8);
    ck_assert_str_eq(h->config_where(h, "count"), "mock:count");
}
END_TEST

START_TEST(test_config_check_like_the_server)
{
    static const struct llmops_config_key keys[] = {
        {"count", LLMOPS_CONFIG_INT, 1, 1, 10, "how many"},
        {"flag", LLMOPS_CONFIG_BOOL, 0, 0, 0, "a switch"},
        {"ui_url", LLMOPS_CONFIG_URL, 0, 0, 0, "a page"},
        {"key_file", LLMOPS_CONFIG_FILE, 0, 0, 0, "a file"},
        {NULL, 0, 0, 0, 0, NULL},
    };
    char msg[600];
    ck_assert_int_eq(llmops_mock_config_check(m, keys, msg, sizeof msg), 1);
    ck_assert_msg(strstr(msg, "needs key 'count' (how many)") != NULL, "%s", msg);
    llmops_mock_config_set(m, "count", "11");
    ck_assert_int_eq(llmops_mock_config_check(m, keys, msg, sizeof msg), 1);
    ck_assert_msg(strstr(msg, "mock:count: count: '11' is not an integer 1-10") != NULL, "%s", msg);
    llmops_mock_config_set(m, "count", "3x");
    ck_assert_int_eq(llmops_mock_config_check(m, keys, msg, sizeof msg), 1);
    llmops_mock_config_set(m, "count", "3");
    llmops_mock_config_set(m, "flag", "maybe");
    llmops_mock_config_set(m, "ui_url", "ftp://x");
    llmops_mock_config_set(m, "key_file", "/nonexistent/file");
    llmops_mock_config_set(m, "timeout_ms", "50"); /* the core's key, below its 100 */
    llmops_mock_config_set(m, "colour", "red");
    ck_assert_int_eq(llmops_mock_config_check(m, keys, msg, sizeof msg), 5);
    ck_assert_msg(strstr(msg, "'maybe' is not on or off") != NULL, "%s", msg);
    llmops_mock_config_set(m, "flag", "off");
    llmops_mock_config_set(m, "ui_url", "https://ui.example");
    llmops_mock_config_set(m, "key_file", "/etc/hostname");
    llmops_mock_config_set(m, "timeout_ms", "5000");
    ck_assert_int_eq(llmops_mock_config_check(m, keys, msg, sizeof msg), 1);
    ck_assert_msg(strstr(msg, "unknown key 'colour' for module mod") != NULL, "%s", msg);
}
END_TEST

START_TEST(test_config_ini_section)
{
    char path[64], msg[400], where[128];
    tmpfile_with(path, "; a comment\n[server]\nplugin_dir = /x\n\n[plugin \"inst\"]\nmodule = mod\n"
                       "url = http://tool.test:8080\n");
    ck_assert_int_eq(llmops_mock_config_ini(m, path, "plugin \"inst\"", msg, sizeof msg), 0);
    ck_assert_str_eq(h->config_string(h, "url", NULL), "http://tool.test:8080");
    ck_assert_ptr_null(h->config_string(h, "plugin_dir", NULL)); /* another section's */
    snprintf(where, sizeof where, "%s:7", path);
    ck_assert_str_eq(h->config_where(h, "url"), where);
    ck_assert_int_eq(llmops_mock_config_ini(m, path, "plugin \"other\"", msg, sizeof msg), -1);
    ck_assert_msg(strstr(msg, "no section [plugin \"other\"]") != NULL, "%s", msg);
    unlink(path);
    tmpfile_with(path, "[plugin \"inst\"]\nmodule = mod\nthis line is wrong\n");
    ck_assert_int_eq(llmops_mock_config_ini(m, path, "plugin \"inst\"", msg, sizeof msg), -1);
    snprintf(where, sizeof where, "%s:3: syntax error", path);
    ck_assert_msg(strstr(msg, where) != NULL, "%s", msg);
    unlink(path);
    ck_assert_int_eq(llmops_mock_config_ini(m, "/nonexistent.conf", "x", msg, sizeof msg), -1);
}
END_TEST

START_TEST(test_secret_from_file)
{
    char path[64], buf[16];
    struct llmops_error err = {.size = sizeof err};
    tmpfile_with(path, "s3cret\n");
    llmops_mock_config_set(m, "token_file", path);
    ck_assert_int_eq(h->secret(h, "token_file", buf, sizeof buf, &err), 0);
    ck_assert_str_eq(buf, "s3cret");
    char exact[7]; /* "s3cret" and its NUL: the newline beyond does not count */
    ck_assert_msg(h->secret(h, "token_file", exact, sizeof exact, &err) == 0, "%s", err.message);
    ck_assert_str_eq(exact, "s3cret");
    ck_assert_int_eq(h->secret(h, "token_file", buf, 4, &err), -1); /* too long */
    ck_assert_ptr_null(strstr(err.message, "s3cret"));
    ck_assert_msg(strstr(err.message, "token_file") != NULL, "%s", err.message);
    ck_assert_int_eq(h->secret(h, "basic_auth_file", buf, sizeof buf, &err), -1);
    ck_assert_int_eq(err.code, LLMOPS_ERR_INVALID);
    unlink(path);
}
END_TEST

/* ------------------------------------------------------------------ log, counters, clocks */

START_TEST(test_log_capture)
{
    h->log(h, LLMOPS_LOG_DEBUG, "dbg %d", 1);
    h->log(h, LLMOPS_LOG_WARNING, "careful: %s", "edge");
    ck_assert_uint_eq(llmops_mock_log_count(m), 2);
    enum llmops_log_level l;
    ck_assert_str_eq(llmops_mock_log_line(m, 1, &l), "careful: edge");
    ck_assert_int_eq(l, LLMOPS_LOG_WARNING);
    ck_assert_ptr_null(llmops_mock_log_line(m, 2, &l));
    ck_assert_uint_eq(llmops_mock_log_find(m, LLMOPS_LOG_INFO, "dbg"), 0);
    ck_assert_uint_eq(llmops_mock_log_find(m, LLMOPS_LOG_DEBUG, "dbg"), 1);
    llmops_mock_log_clear(m);
    ck_assert_uint_eq(llmops_mock_log_count(m), 0);
}
END_TEST

START_TEST(test_metrics)
{
    h->metric_add(h, "requests", 1);
    h->metric_add(h, "requests", 2.5);
    ck_assert(llmops_mock_metric(m, "requests") == 3.5);
    ck_assert(llmops_mock_metric(m, "never") == 0);
    h->metric_add(h, "Bad-Name", 1);
    h->metric_add(h, "negative", -1);
    ck_assert_int_eq(llmops_mock_metric_refused(m), 2);
    ck_assert_uint_eq(llmops_mock_log_find(m, LLMOPS_LOG_ERROR, "'Bad-Name' refused"), 1);
    char name[16];
    for (int i = 0; i < 40; i++) {
        snprintf(name, sizeof name, "c%d", i);
        h->metric_add(h, name, 1);
    }
    ck_assert_int_eq(llmops_mock_metric_refused(m), 2 + 40 - 31); /* 32 in all, requests too */
}
END_TEST

START_TEST(test_clocks)
{
    ck_assert_int_eq(h->now_ms(), 1000000);
    ck_assert_int_eq(h->wall_ms(), 1700000000000LL);
    llmops_mock_clock_advance(1500);
    ck_assert_int_eq(h->now_ms(), 1001500);
    ck_assert_int_eq(h->wall_ms(), 1700000001500LL);
    llmops_mock_clock_autostep(10);
    ck_assert_int_eq(h->now_ms(), 1001500);
    ck_assert_int_eq(h->now_ms(), 1001510);
    llmops_mock_clock_autostep(0);
    llmops_mock_clock_real(1);
    ck_assert_int_gt(h->wall_ms(), 1700000000000LL + 86400000LL);
    llmops_mock_clock_real(0);
}
END_TEST

/* ------------------------------------------------------------------ digests, versions, db */

START_TEST(test_digests)
{
    char hex[LLMOPS_DIGEST_HEX_MAX], path[64];
    struct llmops_error err = {.size = sizeof err};
    ck_assert_int_eq(h->digest(LLMOPS_DIGEST_MD5, "abc", 3, hex, sizeof hex, &err), 0);
    ck_assert_str_eq(hex, "900150983cd24fb0d6963f7d28e17f72");
    ck_assert_int_eq(h->digest(LLMOPS_DIGEST_SHA1, "abc", 3, hex, sizeof hex, &err), 0);
    ck_assert_str_eq(hex, "a9993e364706816aba3e25717850c26c9cd0d89d");
    ck_assert_int_eq(h->digest(LLMOPS_DIGEST_SHA256, "abc", 3, hex, sizeof hex, &err), 0);
    ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    ck_assert_int_eq(h->digest(LLMOPS_DIGEST_SHA256, "abc", 3, hex, 64, &err), -1);
    ck_assert_int_eq(err.code, LLMOPS_ERR_INVALID);
    ck_assert_int_eq(h->digest((enum llmops_digest)9, "abc", 3, hex, sizeof hex, &err), -1);
    int64_t bytes = 0;
    tmpfile_with(path, "abc");
    ck_assert_int_eq(h->digest_file(LLMOPS_DIGEST_MD5, path, hex, sizeof hex, &bytes, &err), 0);
    ck_assert_str_eq(hex, "900150983cd24fb0d6963f7d28e17f72");
    ck_assert_int_eq(bytes, 3);
    unlink(path);
    ck_assert_int_eq(h->digest_file(LLMOPS_DIGEST_MD5, path, hex, sizeof hex, &bytes, &err), -1);
}
END_TEST

START_TEST(test_versions)
{
    ck_assert_int_lt(h->version_compare("2.9", "2.14"), 0);
    ck_assert_int_eq(h->version_compare("2.14", "2.14.0"), 0);
    ck_assert_int_eq(h->version_compare("v3.1rc2", "3.1.2"), 0);
    ck_assert_int_gt(h->version_compare("10", "9.99"), 0);
    ck_assert_int_eq(h->version_in_range("2.14.3", "2.9", "3.99"), 1);
    ck_assert_int_eq(h->version_in_range("2.8", "2.9", NULL), 0);
    ck_assert_int_eq(h->version_in_range("4.0", NULL, "3.99"), 0);
    ck_assert_int_eq(h->version_in_range("4.0", NULL, NULL), 1);
}
END_TEST

START_TEST(test_db_without_conninfo)
{
    struct llmops_error err = {.size = sizeof err};
    ck_assert_ptr_null(h->db_exec(h, "SELECT 1", 0, NULL, &err));
    ck_assert_int_eq(err.code, LLMOPS_ERR_UNAVAILABLE);
    ck_assert_int_eq(err.retryable, 1);
    ck_assert_msg(strstr(err.message, "no database") != NULL, "%s", err.message);
    ck_assert_int_eq(llmops_mock_db_unreleased(m), 0);
}
END_TEST

/* With a conninfo (argv[1], from tests/kit/with-pg): db_exec runs on PostgreSQL. */
static const char *conninfo;

START_TEST(test_db_on_postgresql)
{
    struct llmops_error err = {.size = sizeof err};
    ck_assert_int_eq(llmops_mock_db_conninfo(m, conninfo), 0);
    void *r =
        h->db_exec(h, "CREATE TEMP TABLE mod_t (id int PRIMARY KEY, name text)", 0, NULL, &err);
    ck_assert_msg(r != NULL, "%s", err.message);
    h->db_clear(r);
    const char *const p1[] = {"1", "one"}, *const p2[] = {"2", NULL};
    r = h->db_exec(h, "INSERT INTO mod_t VALUES ($1, $2)", 2, p1, &err);
    ck_assert_msg(r != NULL, "%s", err.message);
    ck_assert_int_eq(h->db_affected(r), 1);
    h->db_clear(r);
    r = h->db_exec(h, "INSERT INTO mod_t VALUES ($1, $2)", 2, p2, &err);
    h->db_clear(r);
    /* a duplicate key is CONFLICT, and names no SQL */
    ck_assert_ptr_null(h->db_exec(h, "INSERT INTO mod_t VALUES ($1, $2)", 2, p1, &err));
    ck_assert_int_eq(err.code, LLMOPS_ERR_CONFLICT);
    ck_assert_msg(strstr(err.message, "23505") != NULL, "%s", err.message);
    r = h->db_exec(h, "SELECT id, name FROM mod_t ORDER BY id", 0, NULL, &err);
    ck_assert_msg(r != NULL, "%s", err.message);
    ck_assert_int_eq(h->db_rows(r), 2);
    ck_assert_int_eq(h->db_columns(r), 2);
    ck_assert_str_eq(h->db_column_name(r, 1), "name");
    ck_assert_str_eq(h->db_value(r, 0, 1), "one");
    ck_assert_ptr_null(h->db_value(r, 1, 1)); /* SQL NULL */
    ck_assert_ptr_null(h->db_value(r, 2, 0)); /* out of range */
    ck_assert_int_eq(llmops_mock_db_unreleased(m), 1);
    h->db_clear(r);
    ck_assert_int_eq(llmops_mock_db_unreleased(m), 0);
    ck_assert_ptr_null(h->db_exec(h, "SELECT * FROM no_such_table", 0, NULL, &err));
    ck_assert_int_eq(err.code, LLMOPS_ERR_INTERNAL);
    /* a database that does not answer is UNAVAILABLE */
    ck_assert_int_eq(llmops_mock_db_conninfo(m, "host=/nonexistent port=1 connect_timeout=2"), 0);
    ck_assert_ptr_null(h->db_exec(h, "SELECT 1", 0, NULL, &err));
    ck_assert_int_eq(err.code, LLMOPS_ERR_UNAVAILABLE);
    ck_assert_int_eq(err.retryable, 1);
}
END_TEST

/* ------------------------------------------------------------------ canned HTTP */

static int get(const char *path, struct llmops_http_response *resp, struct llmops_error *err)
{
    struct llmops_http_request req = {.size = sizeof req, .method = "GET", .path = path};
    memset(resp, 0, sizeof *resp);
    resp->size = sizeof *resp;
    return h->http(h, &req, resp, err);
}

START_TEST(test_canned_answers_in_turn)
{
    struct llmops_http_response r;
    struct llmops_error err = {.size = sizeof err};
    ck_assert_int_eq(llmops_mock_http_add(m, "GET", "/v", 503, "Retry-After: 2", "busy"), 0);
    ck_assert_int_eq(llmops_mock_http_add(m, "GET", "/v", 200,
                                          "Content-Type: text/plain\nETag: \"e1\"\nX-Other: 1",
                                          "2.14.3"),
                     0);
    ck_assert_int_eq(get("/v", &r, &err), 0);
    ck_assert_int_eq(r.status, 503);
    ck_assert_str_eq(h->http_header(&r, "retry-after"), "2");
    h->http_free(&r);
    for (int i = 0; i < 2; i++) { /* the last answer repeats */
        ck_assert_int_eq(get("/v", &r, &err), 0);
        ck_assert_int_eq(r.status, 200);
        ck_assert_str_eq(r.body, "2.14.3");
        ck_assert_uint_eq(r.body_len, 6);
        ck_assert_str_eq(r.content_type, "text/plain");
        ck_assert_str_eq(h->http_header(&r, "ETag"), "\"e1\"");
        ck_assert_ptr_null(h->http_header(&r, "x-other")); /* not asked for */
        h->http_free(&r);
    }
    ck_assert_int_eq(llmops_mock_http_unreleased(m), 0);
    /* nothing registered: as if the tool were down */
    ck_assert_int_eq(get("/other", &r, &err), -1);
    ck_assert_int_eq(err.code, LLMOPS_ERR_UNAVAILABLE);
    ck_assert_msg(strstr(err.message, "GET /other") != NULL, "%s", err.message);
    ck_assert_uint_eq(llmops_mock_http_calls(m, "GET", "/v"), 3);
    ck_assert_uint_eq(llmops_mock_http_calls(m, "GET", "/*"), 4);
    ck_assert_uint_eq(llmops_mock_http_count(m), 4);
    ck_assert_int_eq(llmops_mock_http_request(m, 3)->status, 0);
}
END_TEST

START_TEST(test_canned_failure_and_prefix)
{
    struct llmops_http_response r;
    struct llmops_error err = {.size = sizeof err};
    llmops_mock_http_add(m, "GET", "/down", 0, NULL, NULL);
    llmops_mock_http_add(m, "POST", "/api/*", 201, NULL, "{}");
    ck_assert_int_eq(get("/down", &r, &err), -1);
    ck_assert_int_eq(err.code, LLMOPS_ERR_UNAVAILABLE);
    ck_assert_int_eq(err.retryable, 1);
    const char *const hdrs[] = {"X-Trace: 7", NULL};
    struct llmops_http_request req = {.size = sizeof req,
                                      .method = "POST",
                                      .path = "/api/runs?x=1",
                                      .headers = hdrs,
                                      .body = "{\"a\":1}",
                                      .body_len = 7,
                                      .retry_unsafe = 1};
    r.size = sizeof r;
    ck_assert_int_eq(h->http(h, &req, &r, &err), 0);
    ck_assert_int_eq(r.status, 201);
    h->http_free(&r);
    const struct llmops_mock_request *q = llmops_mock_http_request(m, 1);
    ck_assert_str_eq(q->method, "POST");
    ck_assert_str_eq(q->endpoint, "url");
    ck_assert_str_eq(q->path, "/api/runs?x=1");
    ck_assert_str_eq(q->headers, "X-Trace: 7\n");
    ck_assert_str_eq(q->body, "{\"a\":1}");
    ck_assert_int_eq(q->retry_unsafe, 1);
    ck_assert_int_eq(q->status, 201);
    /* another endpoint key and an absolute URL are told apart */
    llmops_mock_http_add(m, "GET", "ui_url:/p", 200, NULL, "ui");
    llmops_mock_http_add(m, "GET", "https://cdn.test/f", 200, NULL, "file");
    struct llmops_http_request u = {
        .size = sizeof u, .method = "GET", .path = "/p", .endpoint = "ui_url"};
    ck_assert_int_eq(h->http(h, &u, &r, &err), 0);
    ck_assert_str_eq(r.body, "ui");
    h->http_free(&r);
    struct llmops_http_request a = {.size = sizeof a, .method = "GET", .url = "https://cdn.test/f"};
    ck_assert_int_eq(h->http(h, &a, &r, &err), 0);
    ck_assert_str_eq(r.body, "file");
    ck_assert_str_eq(r.url, "https://cdn.test/f");
    h->http_free(&r);
    ck_assert_ptr_null(llmops_mock_http_request(m, 3)->endpoint);
    llmops_mock_http_clear(m);
    ck_assert_uint_eq(llmops_mock_http_count(m), 0);
}
END_TEST

START_TEST(test_canned_response_file)
{
    char path[64], body[64];
    struct llmops_error err = {.size = sizeof err};
    tmpfile_with(path, "old");
    llmops_mock_http_add(m, "GET", "/blob", 200, NULL, "0123456789");
    llmops_mock_http_add(m, "GET", "/blob", 404, NULL, "{\"error\":\"gone\"}");
    struct llmops_http_request req = {
        .size = sizeof req, .method = "GET", .path = "/blob", .response_file = path};
    struct llmops_http_response r = {.size = sizeof r};
    ck_assert_int_eq(h->http(h, &req, &r, &err), 0);
    ck_assert_int_eq(r.file_bytes, 10);
    ck_assert_uint_eq(r.body_len, 0);
    h->http_free(&r);
    FILE *f = fopen(path, "r");
    size_t n = fread(body, 1, sizeof body - 1, f);
    fclose(f);
    body[n] = '\0';
    ck_assert_str_eq(body, "0123456789");
    r.size = sizeof r;
    ck_assert_int_eq(h->http(h, &req, &r, &err), 0);
    ck_assert_int_eq(r.status, 404);
    ck_assert_str_eq(r.body, "{\"error\":\"gone\"}"); /* not 2xx: in memory */
    ck_assert_int_eq(r.file_bytes, 0);
    h->http_free(&r);
    unlink(path);
}
END_TEST

/* A response struct of a 1.0 module ends at `attempts`: the mock writes nothing past it. */
START_TEST(test_abi10_response_size)
{
    struct {
        struct llmops_http_response r;
        char guard[64];
    } big;
    memset(&big, 0x5a, sizeof big);
    uint32_t size10 = (uint32_t)(offsetof(struct llmops_http_response, attempts) + sizeof(int));
    big.r.size = size10;
    struct llmops_http_request req = {.size = sizeof req, .method = "GET", .path = "/v"};
    struct llmops_error err = {.size = sizeof err};
    llmops_mock_http_add(m, "GET", "/v", 200, "ETag: x", "ok");
    ck_assert_int_eq(h->http(h, &req, &big.r, &err), 0);
    ck_assert_str_eq(big.r.body, "ok");
    const unsigned char *tail = (const unsigned char *)&big.r + size10;
    for (size_t i = 0; i < sizeof big - size10; i++)
        ck_assert_uint_eq(tail[i], 0x5a);
    h->http_free(&big.r);
}
END_TEST

/* ------------------------------------------------------------------ real HTTP */

/* Serves `count` requests, one connection each, on 127.0.0.1 in a child: a request for a path
 * starting /redirect answers 302 to /final; any other 200 with the request line and the
 * Authorization header it got as the body. Returns the port. */
static int serve(int count, pid_t *child)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(listen(s, 4), 0);
    socklen_t len = sizeof a;
    getsockname(s, (struct sockaddr *)&a, &len);
    *child = fork();
    ck_assert_int_ge(*child, 0);
    if (*child == 0) {
        alarm(10);
        for (int i = 0; i < count; i++) {
            int c = accept(s, NULL, NULL);
            char req[4096];
            size_t n = 0;
            ssize_t r;
            while (n < sizeof req - 1 && (r = read(c, req + n, sizeof req - 1 - n)) > 0) {
                n += (size_t)r;
                req[n] = '\0';
                if (strstr(req, "\r\n\r\n"))
                    break;
            }
            req[n] = '\0';
            char *eol = strstr(req, "\r\n"), body[2048], out[3000];
            const char *auth = strstr(req, "Authorization: ");
            int ol;
            if (strncmp(req, "GET /redirect", 13) == 0) {
                ol = snprintf(out, sizeof out,
                              "HTTP/1.1 302 Found\r\nLocation: /final\r\nContent-Length: 0\r\n"
                              "Connection: close\r\n\r\n");
            } else {
                int bl = snprintf(body, sizeof body, "%.*s|%.*s", eol ? (int)(eol - req) : 0, req,
                                  auth ? (int)strcspn(auth, "\r") : 0, auth ? auth : "");
                ol = snprintf(out, sizeof out,
                              "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                              "Link: <x>; rel=next\r\nContent-Length: %d\r\n"
                              "Connection: close\r\n\r\n%s",
                              bl, body);
            }
            if (write(c, out, (size_t)ol) != ol)
                _exit(1);
            close(c);
        }
        _exit(0);
    }
    close(s);
    return ntohs(a.sin_port);
}

START_TEST(test_real_http_with_token)
{
    pid_t child;
    int port = serve(1, &child);
    char url[64], path[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/base", port);
    llmops_mock_config_set(m, "url", url);
    llmops_mock_config_set(m, "token_file", tmpfile_with(path, "tok123\n"));
    llmops_mock_http_real(m, 1);
    struct llmops_http_response r;
    struct llmops_error err = {.size = sizeof err};
    ck_assert_msg(get("/version?x=1", &r, &err) == 0, "%s", err.message);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "GET /base/version?x=1 HTTP/1.1|Authorization: Bearer tok123");
    ck_assert_str_eq(r.content_type, "text/plain");
    ck_assert_str_eq(h->http_header(&r, "link"), "<x>; rel=next");
    h->http_free(&r);
    int status;
    waitpid(child, &status, 0);
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    ck_assert_uint_eq(llmops_mock_http_count(m), 1);
    unlink(path);
    /* the server is gone: a refused connection is UNAVAILABLE */
    ck_assert_int_eq(get("/version", &r, &err), -1);
    ck_assert_int_eq(err.code, LLMOPS_ERR_UNAVAILABLE);
}
END_TEST

START_TEST(test_real_http_redirects)
{
    pid_t child;
    int port = serve(3, &child); /* 302; 302 then /final */
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    llmops_mock_config_set(m, "url", url);
    llmops_mock_http_real(m, 1);
    struct llmops_http_response r = {.size = sizeof r};
    struct llmops_error err = {.size = sizeof err};
    /* max_redirects 0: the 302 itself, with its Location */
    struct llmops_http_request req = {.size = sizeof req, .method = "GET", .path = "/redirect"};
    ck_assert_msg(h->http(h, &req, &r, &err) == 0, "%s", err.message);
    ck_assert_int_eq(r.status, 302);
    ck_assert_str_eq(h->http_header(&r, "location"), "/final");
    ck_assert_int_eq(r.redirects, 0);
    h->http_free(&r);
    /* followed: the final answer, its URL, and the redirect counted */
    req.max_redirects = 1;
    r.size = sizeof r;
    ck_assert_msg(h->http(h, &req, &r, &err) == 0, "%s", err.message);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(r.redirects, 1);
    char final[96];
    snprintf(final, sizeof final, "%s/final", url);
    ck_assert_str_eq(r.url, final);
    ck_assert_ptr_null(h->http_header(&r, "location")); /* the final answer's headers only */
    h->http_free(&r);
    int status;
    waitpid(child, &status, 0);
    ck_assert_int_eq(WEXITSTATUS(status), 0);
}
END_TEST

static Suite *mockhost_suite(void)
{
    Suite *s = suite_create("mockhost");
    TCase *tc = tcase_create("Core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_config_table_and_types);
    tcase_add_test(tc, test_config_ini_section);
    tcase_add_test(tc, test_secret_from_file);
    tcase_add_test(tc, test_log_capture);
    tcase_add_test(tc, test_metrics);
    tcase_add_test(tc, test_clocks);
    tcase_add_test(tc, test_digests);
    tcase_add_test(tc, test_versions);
    tcase_add_test(tc, test_db_without_conninfo);
    tcase_add_test(tc, test_canned_answers_in_turn);
    tcase_add_test(tc, test_canned_failure_and_prefix);
    tcase_add_test(tc, test_canned_response_file);
    tcase_add_test(tc, test_real_http_with_token);
    tcase_add_test(tc, test_real_http_redirects);
    suite_add_tcase(s, tc);
    TCase *limits = tcase_create("Limits");
    tcase_add_checked_fixture(limits, setup, teardown);
    tcase_add_test(limits, test_config_check_like_the_server);
    tcase_add_test(limits, test_abi10_response_size);
    suite_add_tcase(s, limits);
    return s;
}

static Suite *mockhost_pg_suite(void)
{
    Suite *s = suite_create("mockhost-pg");
    TCase *tc = tcase_create("Core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_db_on_postgresql);
    suite_add_tcase(s, tc);
    return s;
}

/* check_mockhost [CONNINFO]: with a conninfo, only the database suite. */
int main(int argc, char **argv)
{
    conninfo = argc > 1 ? argv[1] : NULL;
    SRunner *sr = srunner_create(conninfo ? mockhost_pg_suite() : mockhost_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
