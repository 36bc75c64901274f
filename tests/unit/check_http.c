#include "app.h"
#include "check_suites.h"
#include "http.h"
#include "log.h"
#include "router.h"
#include "util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct llmops_conf conf;
static struct app app;

static void setup(void)
{
    struct conf_errors e = {0};
    ck_assert_int_eq(conf_load_buffer("t.conf", "[server]\nmax_body_bytes = 2048\n", &conf, &e), 0);
    conf_errors_free(&e);
    app_init(&app, &conf);
}

static void teardown(void)
{
    app_fini(&app);
    conf_free(&conf);
}

struct body {
    const char *data;
    size_t pos, len;
};

static long read_mem(void *ud, char *buf, size_t n)
{
    struct body *b = ud;
    size_t left = b->len - b->pos;
    if (n > left)
        n = left;
    memcpy(buf, b->data + b->pos, n);
    b->pos += n;
    return (long)n;
}

/* Runs one request through the whole pipeline (no database needed for these paths) and
 * returns the parsed body, checking the envelope's shape. */
static json_t *run(const char *method, const char *uri, const char *auth, int *status,
                   struct req *r)
{
    static struct http_input in;
    memset(&in, 0, sizeof in);
    in.method = method;
    in.uri = uri;
    in.authorization = auth;
    app_handle(&app, &in, r);
    *status = r->resp.status;
    json_error_t err;
    json_t *j = json_loadb(r->resp.body, r->resp.body_len, 0, &err);
    ck_assert_ptr_nonnull(j);
    ck_assert_int_eq(json_object_size(j), 3);
    ck_assert(json_is_string(json_object_get(j, "status")));
    ck_assert(json_is_string(json_object_get(j, "message")));
    ck_assert_ptr_nonnull(json_object_get(j, "data"));
    return j;
}

static const char *err_code(json_t *j)
{
    return json_string_value(
        json_object_get(json_object_get(json_object_get(j, "data"), "error"), "code"));
}

START_TEST(test_not_found)
{
    struct req r;
    int st;
    json_t *j = run("GET", "/llm-ops/v1/nope", NULL, &st, &r);
    ck_assert_int_eq(st, 404);
    ck_assert_str_eq(json_string_value(json_object_get(j, "status")), "error");
    ck_assert_str_eq(err_code(j), "NOT_FOUND");
    const char *rid = json_string_value(
        json_object_get(json_object_get(json_object_get(j, "data"), "error"), "request_id"));
    ck_assert_str_eq(rid, r.request_id);
    ck_assert_int_eq(strlen(rid), 32);
    json_decref(j);
    http_req_free(&r);
}
END_TEST

START_TEST(test_method_not_allowed)
{
    struct req r;
    int st;
    json_t *j = run("PUT", "/llm-ops/v1/health", NULL, &st, &r);
    ck_assert_int_eq(st, 405);
    ck_assert_str_eq(err_code(j), "METHOD_NOT_ALLOWED");
    ck_assert_ptr_nonnull(strstr(r.resp.headers, "Allow: GET\r\n"));
    json_decref(j);
    http_req_free(&r);
}
END_TEST

START_TEST(test_unauthenticated)
{
    struct req r;
    int st;
    json_t *j = run("GET", "/llm-ops/v1/gpu-types?env=dev", NULL, &st, &r);
    ck_assert_int_eq(st, 401);
    ck_assert_str_eq(err_code(j), "UNAUTHENTICATED");
    ck_assert_ptr_nonnull(strstr(r.resp.headers, "WWW-Authenticate: Bearer realm=\"llm-ops\""));
    json_decref(j);
    http_req_free(&r);
    j = run("GET", "/llm-ops/v1/gpu-types", "Basic dXNlcjpwYXNz", &st, &r);
    ck_assert_int_eq(st, 401);
    ck_assert_ptr_nonnull(strstr(r.resp.headers, "error=\"invalid_request\""));
    json_decref(j);
    http_req_free(&r);
}
END_TEST

START_TEST(test_unknown_query_parameter)
{
    struct req r;
    int st;
    json_t *j = run("GET", "/llm-ops/v1/health?verbose=1", NULL, &st, &r);
    ck_assert_int_eq(st, 400);
    ck_assert_str_eq(err_code(j), "VALIDATION_FAILED");
    ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(j, "message")), "'verbose'"));
    json_decref(j);
    http_req_free(&r);
    j = run("GET", "/llm-ops/v1/health?a=1&a=2", NULL, &st, &r);
    ck_assert_int_eq(st, 400);
    json_decref(j);
    http_req_free(&r);
    j = run("GET", "/llm-ops/v1/health?a=%zz", NULL, &st, &r);
    ck_assert_int_eq(st, 400);
    json_decref(j);
    http_req_free(&r);
}
END_TEST

/* A client without a token learns nothing about its query string: 401 first, not 400. */
START_TEST(test_token_before_query)
{
    static const char *const uris[] = {
        "/llm-ops/v1/gpu-types?a=%zz",
        "/llm-ops/v1/gpu-types?env=dev&env=stg",
        "/llm-ops/v1/gpu-types?verbose=1",
        "/llm-ops/v1/gpu-types?env=nowhere",
    };
    for (size_t i = 0; i < sizeof uris / sizeof uris[0]; i++) {
        struct req r;
        int st;
        json_t *j = run("GET", uris[i], NULL, &st, &r);
        ck_assert_msg(st == 401, "%s answered %d without a token", uris[i], st);
        ck_assert_str_eq(err_code(j), "UNAUTHENTICATED");
        json_decref(j);
        http_req_free(&r);
    }
}
END_TEST

/* Messages that quote client text stay UTF-8: a 64-byte cut of "x" + 40 "é" split the 32nd
 * "é", and the whole message became "(message not valid UTF-8)". */
START_TEST(test_quoted_client_text_stays_utf8)
{
    char name[256] = "x", uri[512], want[256] = "'x";
    for (int i = 0; i < 40; i++)
        strcat(name, "\xc3\xa9");
    for (int i = 0; i < 63; i++) /* 64 characters quoted */
        strcat(want, "\xc3\xa9");
    strcat(want, "'");
    snprintf(uri, sizeof uri, "/llm-ops/v1/health?%s=1", name);
    struct req r;
    int st;
    json_t *j = run("GET", uri, NULL, &st, &r);
    ck_assert_int_eq(st, 400);
    const char *msg = json_string_value(json_object_get(j, "message"));
    ck_assert_msg(strstr(msg, "unknown query parameter 'x\xc3\xa9") != NULL, "%s", msg);
    json_decref(j);
    http_req_free(&r);
    /* 70 characters: cut after 64 whole ones */
    strcpy(name, "x");
    for (int i = 0; i < 69; i++)
        strcat(name, "\xc3\xa9");
    snprintf(uri, sizeof uri, "/llm-ops/v1/health?%s=1", name);
    j = run("GET", uri, NULL, &st, &r);
    msg = json_string_value(json_object_get(j, "message"));
    ck_assert_msg(strstr(msg, want) != NULL, "%s", msg);
    json_decref(j);
    http_req_free(&r);
    /* bytes that are no UTF-8 at all (%FF decoded): shown as U+FFFD, the message kept */
    j = run("GET", "/llm-ops/v1/health?a%FFb=1", NULL, &st, &r);
    msg = json_string_value(json_object_get(j, "message"));
    ck_assert_msg(strstr(msg, "unknown query parameter 'a\xef\xbf\xbd"
                              "b'") != NULL,
                  "%s", msg);
    json_decref(j);
    http_req_free(&r);
    /* the same through the other sites: a method and a Content-Type */
    j = run("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9",
            "/llm-ops/v1/health", NULL, &st, &r);
    ck_assert_int_eq(st, 405);
    msg = json_string_value(json_object_get(j, "message"));
    ck_assert_msg(
        strstr(
            msg,
            "method \xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9 is") !=
            NULL,
        "%s", msg);
    json_decref(j);
    http_req_free(&r);
}
END_TEST

/* util_quote: characters, bytes, and what is not UTF-8. */
static const struct {
    const char *in;
    size_t size, max_chars;
    const char *out;
} quotes[] = {
    {"abc", 16, 2, "ab"},
    {"\xc3\xa9\xc3\xa9\xc3\xa9", 16, 2, "\xc3\xa9\xc3\xa9"},
    {"\xc3\xa9\xc3\xa9\xc3\xa9", 4, 10, "\xc3\xa9"}, /* 3 bytes of room: one whole */
    {"\xe2\x82\xac\xf0\x9f\x98\x80!", 16, 3, "\xe2\x82\xac\xf0\x9f\x98\x80!"}, /* 3, 4 bytes */
    {"\xe2\x82\xac\xf0\x9f\x98\x80!", 7, 3, "\xe2\x82\xac"},
    {"a\xff"
     "b",
     16, 10,
     "a\xef\xbf\xbd"
     "b"},                                                            /* not a lead byte */
    {"a\xc3", 16, 10, "a\xef\xbf\xbd"},                               /* cut short */
    {"\xc0\xaf", 16, 10, "\xef\xbf\xbd\xef\xbf\xbd"},                 /* overlong '/' */
    {"\xed\xa0\x80", 16, 10, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* a surrogate */
    {"\xf4\x90\x80\x80", 16, 1, "\xef\xbf\xbd"},                      /* above U+10FFFF */
    {"", 16, 10, ""},
    {NULL, 16, 10, ""},
    {"abc", 1, 10, ""},
};

START_TEST(test_util_quote)
{
    char buf[64];
    memset(buf, 'Z', sizeof buf);
    const char *got = util_quote(buf, quotes[_i].size, quotes[_i].in, quotes[_i].max_chars);
    ck_assert_ptr_eq(got, buf);
    ck_assert_msg(strcmp(got, quotes[_i].out) == 0, "case %d: got '%s'", _i, got);
    ck_assert_uint_lt(strlen(got), quotes[_i].size);
    json_t *j = json_string(got);
    ck_assert_ptr_nonnull(j);
    json_decref(j);
}
END_TEST

START_TEST(test_utf8_count)
{
    ck_assert_uint_eq(util_utf8_count("abc", 3), 3);
    ck_assert_uint_eq(util_utf8_count("\xc3\xa9t\xc3\xa9", 5), 3);
    ck_assert_uint_eq(util_utf8_count("\xc3\xa9t\xc3\xa9", 3), 2);
    ck_assert_uint_eq(util_utf8_count("\xe2\x82\xac\xf0\x9f\x98\x80", 7), 2);
    ck_assert_uint_eq(util_utf8_count("a\xff\xfe"
                                      "b",
                                      4),
                      4);
    ck_assert_uint_eq(util_utf8_count("ab", 10), 2); /* stops at the NUL */
}
END_TEST

/* llmops_fail cuts a long message between characters: a byte cut at 511 split an "é". */
START_TEST(test_llmops_fail_cuts_whole_characters)
{
    char m[1200] = "xy";
    for (int i = 0; i < 500; i++)
        strcat(m, "\xc3\xa9");
    struct llmops_error err = {.size = sizeof err};
    ck_assert_int_eq(llmops_fail(&err, LLMOPS_ERR_INVALID, 0, 0, m), -1);
    ck_assert_uint_eq(strlen(err.message), sizeof err.message - 2); /* 2 + 254 whole "é" */
    json_t *j = json_string(err.message);
    ck_assert_msg(j != NULL, "not UTF-8: %s", err.message);
    json_decref(j);
    ck_assert_int_eq(llmops_fail(&err, LLMOPS_ERR_INVALID, 0, 0, NULL), -1);
    ck_assert_str_eq(err.message, "");
}
END_TEST

START_TEST(test_request_id)
{
    static struct http_input in;
    struct req r;
    memset(&in, 0, sizeof in);
    in.method = "GET";
    in.uri = "/x";
    in.request_id = "client-id.1:2";
    app_handle(&app, &in, &r);
    ck_assert_str_eq(r.request_id, "client-id.1:2");
    http_req_free(&r);
    in.request_id = "bad id with spaces";
    app_handle(&app, &in, &r);
    ck_assert_str_ne(r.request_id, "bad id with spaces");
    ck_assert_int_eq(strlen(r.request_id), 32);
    http_req_free(&r);
}
END_TEST

/* Generated ids: 32 lowercase hex digits, a per-process prefix and a counter, never twice. */
START_TEST(test_generated_request_ids)
{
    char a[33], b[33];
    util_request_id(a);
    util_request_id(b);
    ck_assert_int_eq(strlen(a), 32);
    ck_assert_int_eq(strspn(a, "0123456789abcdef"), 32);
    ck_assert_int_eq(strspn(b, "0123456789abcdef"), 32);
    ck_assert_str_ne(a, b);
    ck_assert(memcmp(a, b, 16) == 0); /* the same process: the same prefix */
    unsigned long long ca = strtoull(a + 16, NULL, 16), cb = strtoull(b + 16, NULL, 16);
    ck_assert(cb == ca + 1);
}
END_TEST

/* The text access line, put together by hand: its exact bytes. */
START_TEST(test_access_line_text)
{
    char path[] = "/tmp/check-access-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    log_set_program("llm-opsd");
    log_access("GET", "/llm-ops/v1/gpu-types", 200, 12345, "abc");
    log_access("DELETE", "-", 404, 7, "r2");
    log_access("POST", "/x", 503, 2000001, "r3");
    dup2(saved, STDERR_FILENO);
    close(saved);
    char buf[1024] = {0};
    ck_assert_int_gt(pread(fd, buf, sizeof buf - 1, 0), 0);
    close(fd);
    unlink(path);
    char want[1024];
    snprintf(want, sizeof want,
             "llm-opsd[%d]: access: method=GET route=/llm-ops/v1/gpu-types status=200 "
             "duration_ms=12.345 request_id=abc\n"
             "llm-opsd[%d]: access: method=DELETE route=- status=404 duration_ms=0.007 "
             "request_id=r2\n"
             "llm-opsd[%d]: access: method=POST route=/x status=503 duration_ms=2000.001 "
             "request_id=r3\n",
             (int)getpid(), (int)getpid(), (int)getpid());
    ck_assert_str_eq(buf, want);
}
END_TEST

/* The JSON body path: 415, 413, 400 with line and column, non-object. */
static const struct {
    const char *ctype;
    const char *body;
    const char *length; /* NULL: strlen(body) */
    int status;
    const char *code;
    const char *in_message;
} bodies[] = {
    {"text/plain", "{}", NULL, 415, "UNSUPPORTED_MEDIA_TYPE", "application/json"},
    {NULL, "{}", NULL, 415, "UNSUPPORTED_MEDIA_TYPE", "Content-Type"},
    {"application/json", "{}", "4096", 413, "PAYLOAD_TOO_LARGE", "at most 2048"},
    {"application/json", "{\n  \"a\": 1,\n  \"b\": }", NULL, 400, "INVALID_JSON", "line 3, column"},
    {"application/json; charset=utf-8", "[1,2]", NULL, 400, "VALIDATION_FAILED", "JSON object"},
    {"application/json", "{\"a\":1,\"a\":2}", NULL, 400, "INVALID_JSON", "duplicate"},
    {"application/json", "", "0", 400, "VALIDATION_FAILED", "needs a JSON body"},
    {"application/json", "{}", "12x", 400, "VALIDATION_FAILED", "Content-Length"},
    {"application/json", "{\"a\":", "100", 400, "VALIDATION_FAILED", "ended after"},
};

START_TEST(test_json_body)
{
    struct req r;
    memset(&r, 0, sizeof r);
    struct body b = {bodies[_i].body, 0, strlen(bodies[_i].body)};
    char len[32];
    snprintf(len, sizeof len, "%zu", b.len);
    struct http_input in = {.method = "POST",
                            .uri = "/",
                            .content_type = bodies[_i].ctype,
                            .content_length = bodies[_i].length ? bodies[_i].length : len,
                            .read_body = read_mem,
                            .body_ud = &b};
    r.in = &in;
    strcpy(r.request_id, "t");
    ck_assert_int_eq(http_read_json_body(&r, 2048), -1);
    ck_assert_int_eq(r.resp.status, bodies[_i].status);
    json_t *j = json_loadb(r.resp.body, r.resp.body_len, 0, NULL);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(err_code(j), bodies[_i].code);
    const char *msg = json_string_value(json_object_get(j, "message"));
    if (!strstr(msg, bodies[_i].in_message))
        ck_abort_msg("message '%s' lacks '%s'", msg, bodies[_i].in_message);
    json_decref(j);
    http_req_free(&r);
}
END_TEST

START_TEST(test_json_body_ok)
{
    struct req r;
    memset(&r, 0, sizeof r);
    struct body b = {"{\"x\": [1, 2.5, null]}", 0, 21};
    struct http_input in = {.method = "POST",
                            .uri = "/",
                            .content_type = "Application/JSON",
                            .content_length = "21",
                            .read_body = read_mem,
                            .body_ud = &b};
    r.in = &in;
    ck_assert_int_eq(http_read_json_body(&r, 2048), 0);
    ck_assert_int_eq(json_array_size(json_object_get(r.body, "x")), 3);
    http_req_free(&r);
}
END_TEST

/* Walks the route table: every route but the public ones answers 401 without a token. */
START_TEST(test_route_table_needs_tokens)
{
    size_t n;
    const struct route *t = route_table(&n);
    int checked = 0;
    for (size_t i = 0; i < n; i++) {
        if (t[i].min_role == ROLE_PUBLIC) {
            ck_assert_str_eq(t[i].pattern, "/llm-ops/v1/health");
            continue;
        }
        char uri[256];
        size_t u = 0;
        for (const char *p = t[i].pattern; *p && u < sizeof uri - 2;) {
            if (*p == '{') { /* a path parameter: any value */
                uri[u++] = 'x';
                while (*p && *p != '}')
                    p++;
                if (*p)
                    p++;
            } else {
                uri[u++] = *p++;
            }
        }
        uri[u] = '\0';
        struct req r;
        int st;
        json_t *j = run(t[i].method, uri, NULL, &st, &r);
        if (st != 401)
            ck_abort_msg("%s %s answered %d without a token", t[i].method, uri, st);
        ck_assert_str_eq(err_code(j), "UNAUTHENTICATED");
        json_decref(j);
        http_req_free(&r);
        checked++;
    }
    ck_assert_int_ge(checked, 6);
}
END_TEST

START_TEST(test_error_codes_stable)
{
    /* The documented list (doc/api.md): changing one breaks clients. */
    ck_assert_str_eq(api_error_code(API_VALIDATION_FAILED), "VALIDATION_FAILED");
    ck_assert_int_eq(api_error_status(API_UNAUTHENTICATED), 401);
    ck_assert_int_eq(api_error_status(API_PAYLOAD_TOO_LARGE), 413);
    ck_assert_int_eq(api_error_status(API_UNSUPPORTED_MEDIA_TYPE), 415);
    ck_assert_int_eq(api_error_status(API_DATABASE_UNAVAILABLE), 503);
    ck_assert_int_eq(api_error_status(API_TOOL_ERROR), 502);
    for (int e = 0; e < API_ERROR_COUNT; e++) {
        ck_assert_ptr_nonnull(api_error_code((enum api_error)e));
        ck_assert_int_ge(api_error_status((enum api_error)e), 400);
    }
}
END_TEST

Suite *make_http_suite(void)
{
    Suite *s = suite_create("http");
    TCase *core = tcase_create("Core");
    tcase_add_checked_fixture(core, setup, teardown);
    tcase_add_test(core, test_not_found);
    tcase_add_test(core, test_method_not_allowed);
    tcase_add_test(core, test_unauthenticated);
    tcase_add_test(core, test_unknown_query_parameter);
    tcase_add_test(core, test_request_id);
    tcase_add_test(core, test_token_before_query);
    tcase_add_test(core, test_quoted_client_text_stays_utf8);
    tcase_add_test(core, test_utf8_count);
    tcase_add_test(core, test_llmops_fail_cuts_whole_characters);
    tcase_add_test(core, test_json_body_ok);
    tcase_add_test(core, test_error_codes_stable);
    tcase_add_test(core, test_route_table_needs_tokens);
    tcase_add_test(core, test_generated_request_ids);
    tcase_add_test(core, test_access_line_text);
    suite_add_tcase(s, core);
    TCase *limits = tcase_create("Limits");
    tcase_add_loop_test(limits, test_json_body, 0, (int)(sizeof bodies / sizeof bodies[0]));
    tcase_add_loop_test(limits, test_util_quote, 0, (int)(sizeof quotes / sizeof quotes[0]));
    suite_add_tcase(s, limits);
    return s;
}
