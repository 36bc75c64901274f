/* End to end through lighttpd to a standalone llm-opsd (master + 2 workers) on a private
 * PostgreSQL, driven with libcurl: the API over real HTTP, a database outage and recovery
 * with the same master, SIGTERM letting a request in flight finish, and the respawn backoff
 * of a crash loop. */
#include "testutil.h"

#include <check.h>
#include <curl/curl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static struct tu_pg pg;
static char conf_path[160], base[128], admin[128], reader[128];
static int port;
static pid_t master;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct resp {
    long status;
    char body[65536];
    size_t len;
    char headers[4096];
    size_t hlen;
};

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    struct resp *r = ud;
    size_t k = sz * n;
    if (r->len + k < sizeof r->body) {
        memcpy(r->body + r->len, p, k);
        r->len += k;
        r->body[r->len] = '\0';
    }
    return k;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    struct resp *r = ud;
    size_t k = sz * n;
    if (r->hlen + k < sizeof r->headers) {
        memcpy(r->headers + r->hlen, p, k);
        r->hlen += k;
        r->headers[r->hlen] = '\0';
    }
    return k;
}

/* One HTTP request; extra is one more header line or NULL. */
static json_t *http(const char *method, const char *path, const char *token, const char *ctype,
                    const char *body, const char *extra, struct resp *r)
{
    memset(r, 0, sizeof *r);
    CURL *c = curl_easy_init();
    char url[512], auth[200], ct[200];
    snprintf(url, sizeof url, "%s%s", base, path);
    struct curl_slist *h = NULL;
    if (token) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
        h = curl_slist_append(h, auth);
    }
    if (ctype) {
        snprintf(ct, sizeof ct, "Content-Type: %s", ctype);
        h = curl_slist_append(h, ct);
    }
    if (extra)
        h = curl_slist_append(h, extra);
    h = curl_slist_append(h, "Expect:");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 15000L);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return r->len ? json_loads(r->body, 0, NULL) : NULL;
}

static const char *code_of(json_t *j)
{
    return json_string_value(
        json_object_get(json_object_get(json_object_get(j, "data"), "error"), "code"));
}

static const char *message_of(json_t *j)
{
    return json_string_value(json_object_get(j, "message"));
}

static void start_llmopsd(void)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "%s/llm-opsd --config %s --listen unix:%s/llm-opsd.sock --foreground --pid-file "
             "%s/llm-opsd.pid >/dev/null 2>>%s/llm-opsd.log & echo $!",
             LLMOPS_BIN_DIR, conf_path, pg.dir, pg.dir, pg.dir);
    int st;
    master = (pid_t)strtol(tu_capture(&st, "%s", cmd), NULL, 10);
    ck_assert_int_gt(master, 0);
    for (int i = 0; i < 100; i++) {
        struct resp r;
        json_decref(http("GET", "/health", NULL, NULL, NULL, NULL, &r));
        if (r.status == 200)
            return;
        usleep(100000);
    }
    ck_abort_msg("llm-opsd did not answer");
}

static void setup(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    tu_pg_start(&pg, "e2e");
    tu_pg_createdb(&pg, "llmops");
    tu_sh("chmod 755 %s", pg.dir);
    port = tu_free_port();
    snprintf(conf_path, sizeof conf_path, "%s/llm-ops.conf", pg.dir);
    snprintf(base, sizeof base, "http://127.0.0.1:%d/llm-ops/v1", port);
    char conninfo[256];
    tu_pg_conninfo(&pg, "llmops", conninfo, sizeof conninfo);
    FILE *f = fopen(conf_path, "w");
    fprintf(f,
            "[server]\nworkers = 2\nmax_body_bytes = 4096\nplugin_dir = %s\n"
            "[database]\nconninfo = %s\nmigrations_dir = %s/migrations\n"
            "[gpu_types]\nseed_file = %s/etc/gpu-types.json\n"
            "[plugin \"slow\"]\nmodule = echo\nhealth_delay_ms = 1500\n"
            "[plugin \"crasher\"]\nmodule = echo\ncrash_on_health = on\n",
            TEST_PLUGIN_DIR, conninfo, LLMOPS_SOURCE_DIR, LLMOPS_SOURCE_DIR);
    fclose(f);
    ck_assert_int_eq(tu_sh("%s/llm-opsctl --config %s migrate >/dev/null && %s/llm-opsctl "
                           "--config %s seed >/dev/null",
                           LLMOPS_BIN_DIR, conf_path, LLMOPS_BIN_DIR, conf_path),
                     0);
    int st;
    snprintf(admin, sizeof admin, "%s",
             tu_capture(&st, "%s/llm-opsctl --config %s token create --name a --role admin 2>&-",
                        LLMOPS_BIN_DIR, conf_path));
    admin[strcspn(admin, "\n")] = '\0';
    snprintf(reader, sizeof reader, "%s",
             tu_capture(&st, "%s/llm-opsctl --config %s token create --name r --role reader 2>&-",
                        LLMOPS_BIN_DIR, conf_path));
    reader[strcspn(reader, "\n")] = '\0';
    f = fopen("/dev/null", "r"); /* keep the fd numbering stable for lighttpd */
    fclose(f);
    char lconf[256];
    snprintf(lconf, sizeof lconf, "%s/lighttpd.conf", pg.dir);
    f = fopen(lconf, "w");
    fprintf(f,
            "server.modules = (\"mod_fastcgi\")\nserver.document-root = \"%s\"\n"
            "server.bind = \"127.0.0.1\"\nserver.port = %d\nserver.errorlog = \"%s/lighttpd.log\"\n"
            "server.pid-file = \"%s/lighttpd.pid\"\n"
            "fastcgi.server = (\"/llm-ops/\" => ((\"socket\" => \"%s/llm-opsd.sock\", "
            "\"check-local\" => \"disable\")))\n",
            pg.dir, port, pg.dir, pg.dir, pg.dir);
    fclose(f);
    ck_assert_int_eq(tu_sh("lighttpd -f %s", lconf), 0);
    start_llmopsd();
}

static void teardown(void)
{
    tu_sh("kill $(cat %s/lighttpd.pid) 2>/dev/null", pg.dir);
    if (master > 0 && kill(master, 0) == 0) {
        kill(master, SIGTERM);
        for (int i = 0; i < 50 && kill(master, 0) == 0; i++)
            usleep(100000);
    }
    tu_sh("pkill -f '%s/' 2>/dev/null; true", pg.dir);
    tu_pg_stop(&pg);
    curl_global_cleanup();
}

#define GPU                                                                                        \
    "{\"name\":\"e2e-l4\",\"vendor\":\"nvidia\",\"model\":\"L4\",\"memory_gib\":24,"               \
    "\"resource_name\":\"nvidia.com/gpu\",\"node_selector\":{\"key\":\"nvidia.com/gpu.product\","  \
    "\"value\":\"NVIDIA-L4\"},\"capacity\":4}"

START_TEST(test_gpu_types_over_http)
{
    struct resp r;
    json_t *j = http("POST", "/gpu-types?env=stg", admin, "application/json", GPU, NULL, &r);
    ck_assert_msg(r.status == 201, "%ld %s", r.status, r.body);
    ck_assert_str_eq(json_string_value(json_object_get(j, "status")), "success");
    json_decref(j);
    j = http("POST", "/gpu-types?env=stg", admin, "application/json", GPU, NULL, &r);
    ck_assert_int_eq(r.status, 409);
    ck_assert_str_eq(code_of(j), "CONFLICT");
    json_decref(j);
    j = http("PATCH", "/gpu-types/e2e-l4?env=stg", admin, "application/json",
             "{\"capacity\": 9, \"enabled\": false}", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(j, "data"), "capacity")),
                     9);
    json_decref(j);
    j = http("PUT", "/gpu-types/e2e-l4?env=stg", admin, "application/json", GPU, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(j, "data"), "capacity")),
                     4);
    json_decref(j);
    j = http("GET", "/gpu-types/e2e-l4?env=stg", reader, NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    json_decref(j);
    /* per environment: not in dev */
    j = http("GET", "/gpu-types/e2e-l4?env=dev", reader, NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 404);
    ck_assert_str_eq(code_of(j), "NOT_FOUND");
    json_decref(j);
    j = http("DELETE", "/gpu-types/e2e-l4?env=stg", admin, NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    json_decref(j);
    j = http("DELETE", "/gpu-types/e2e-l4?env=stg", admin, NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 404);
    json_decref(j);
    /* no env: the default (dev), whose seed differs from prod's */
    json_t *dev = http("GET", "/gpu-types", reader, NULL, NULL, NULL, &r);
    json_t *prod = http("GET", "/gpu-types?env=prod", reader, NULL, NULL, NULL, &r);
    ck_assert_str_eq(
        json_string_value(json_object_get(json_object_get(dev, "data"), "environment")), "dev");
    ck_assert(!json_equal(json_object_get(json_object_get(dev, "data"), "gpu_types"),
                          json_object_get(json_object_get(prod, "data"), "gpu_types")));
    json_decref(dev);
    json_decref(prod);
}
END_TEST

/* Every error class through the web server, each in the envelope with its code. */
static const struct {
    const char *method, *path, *token_kind, *ctype, *body;
    long status;
    const char *code, *in_message;
} errors[] = {
    {"GET", "/gpu-types?env=qa", "r", NULL, NULL, 400, "VALIDATION_FAILED",
     "valid: dev, stg, prod"},
    {"GET", "/gpu-types?colour=red", "r", NULL, NULL, 400, "VALIDATION_FAILED", "'colour'"},
    {"POST", "/gpu-types", "a", "application/json", "{\"name\": }", 400, "INVALID_JSON",
     "line 1, column"},
    {"POST", "/gpu-types", "a", "text/plain", GPU, 415, "UNSUPPORTED_MEDIA_TYPE",
     "application/json"},
    {"POST", "/gpu-types", "a", "application/json",
     "{\"pad\":\""
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "\"}",
     413, "PAYLOAD_TOO_LARGE", "at most 4096"},
    {"POST", "/gpu-types", "r", "application/json", GPU, 403, "FORBIDDEN",
     "needs the operator role"},
    {"GET", "/gpu-types", "bad", NULL, NULL, 401, "UNAUTHENTICATED", "unknown or revoked"},
    {"GET", "/gpu-types", NULL, NULL, NULL, 401, "UNAUTHENTICATED", "needs a token"},
    {"GET", "/nothing-here", "r", NULL, NULL, 404, "NOT_FOUND", "no route"},
    {"DELETE", "/gpu-types", "a", NULL, NULL, 405, "METHOD_NOT_ALLOWED", "GET, POST"},
};

START_TEST(test_error_classes)
{
    struct resp r;
    const char *tok = !errors[_i].token_kind                    ? NULL
                      : strcmp(errors[_i].token_kind, "a") == 0 ? admin
                      : strcmp(errors[_i].token_kind, "r") == 0 ? reader
                                                                : "llmops_nope";
    json_t *j = http(errors[_i].method, errors[_i].path, tok, errors[_i].ctype, errors[_i].body,
                     "X-Request-Id: e2e-error", &r);
    ck_assert_msg(r.status == errors[_i].status, "%s %s: %ld %s", errors[_i].method,
                  errors[_i].path, r.status, r.body);
    ck_assert_ptr_nonnull(j);
    ck_assert_int_eq(json_object_size(j), 3);
    ck_assert_str_eq(json_string_value(json_object_get(j, "status")), "error");
    ck_assert_str_eq(code_of(j), errors[_i].code);
    ck_assert_msg(strstr(message_of(j), errors[_i].in_message), "'%s' lacks '%s'", message_of(j),
                  errors[_i].in_message);
    ck_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(json_object_get(j, "data"), "error"), "request_id")),
                     "e2e-error");
    ck_assert_ptr_nonnull(strstr(r.headers, "X-Request-Id: e2e-error"));
    if (r.status == 401)
        ck_assert_ptr_nonnull(strstr(r.headers, "WWW-Authenticate: Bearer"));
    if (r.status == 405)
        ck_assert_ptr_nonnull(strstr(r.headers, "Allow: GET, POST"));
    json_decref(j);
}
END_TEST

START_TEST(test_not_modified_over_http)
{
    struct resp r;
    json_decref(http("GET", "/gpu-types?env=prod", reader, NULL, NULL, NULL, &r));
    ck_assert_int_eq(r.status, 200);
    char *h = strstr(r.headers, "ETag: ");
    ck_assert_ptr_nonnull(h);
    char etag[80], inm[120];
    ck_assert_int_eq(sscanf(h, "ETag: %79s", etag), 1);
    snprintf(inm, sizeof inm, "If-None-Match: %s", etag);
    /* twenty times: each worker answers 304 from its own cache */
    for (int i = 0; i < 20; i++) {
        json_decref(http("GET", "/gpu-types?env=prod", reader, NULL, NULL, inm, &r));
        ck_assert_int_eq(r.status, 304);
        ck_assert_int_eq(r.len, 0);
    }
}
END_TEST

/* PostgreSQL stops: /health answers 503 within about a second; it comes back: 200, with the
 * same llm-opsd master. */
START_TEST(test_database_outage)
{
    struct resp r;
    ck_assert_int_eq(tu_sh("%s/tests/db/pg-private stop %s", LLMOPS_SOURCE_DIR, pg.dir), 0);
    for (int i = 0; i < 4; i++) { /* both workers, twice */
        double t0 = now_s();
        json_t *j = http("GET", "/health", NULL, NULL, NULL, NULL, &r);
        double took = now_s() - t0;
        ck_assert_int_eq(r.status, 503);
        ck_assert_str_eq(code_of(j), "DATABASE_UNAVAILABLE");
        ck_assert_double_lt(took, 1.5);
        json_decref(j);
    }
    json_t *j = http("POST", "/gpu-types?env=dev", admin, "application/json", GPU, NULL, &r);
    ck_assert_int_eq(r.status, 503); /* a write cannot succeed: it says so */
    json_decref(j);
    ck_assert_int_eq(
        tu_sh("%s/tests/db/pg-private start %s %d", LLMOPS_SOURCE_DIR, pg.dir, pg.port), 0);
    int ok = 0;
    for (int i = 0; i < 50 && ok < 4; i++) {
        json_decref(http("GET", "/health", NULL, NULL, NULL, NULL, &r));
        ok = r.status == 200 ? ok + 1 : 0;
        if (ok < 4)
            usleep(100000);
    }
    ck_assert_int_eq(ok, 4);
    ck_assert_int_eq(kill(master, 0), 0);
    int st;
    ck_assert_int_eq((pid_t)strtol(tu_capture(&st, "cat %s/llm-opsd.pid", pg.dir), NULL, 10),
                     master);
}
END_TEST

/* A crash loop does not spin: the master waits longer before each respawn. */
START_TEST(test_respawn_backoff)
{
    struct resp r;
    for (int i = 0; i < 4; i++) {
        json_decref(http("GET", "/integrations/crasher/health", reader, NULL, NULL, NULL, &r));
        ck_assert_int_ge(r.status, 500);
    }
    usleep(500000);
    int st;
    char *delays = tu_capture(&st,
                              "grep -o 'respawning in [0-9]* ms' %s/llm-opsd.log | "
                              "awk '{print $3}' | tr '\\n' ' '",
                              pg.dir);
    /* the slot that keeps crashing waits 0, 100, 200... ms; two slots interleave */
    ck_assert_msg(strstr(delays, "100") && strstr(delays, "0 "), "delays: %s", delays);
    /* and both workers serve again */
    for (int i = 0; i < 30; i++) {
        int n = (int)strtol(tu_capture(&st, "pgrep -P %d | wc -l", (int)master), NULL, 10);
        if (n == 2)
            break;
        usleep(200000);
    }
    ck_assert_int_eq((int)strtol(tu_capture(&st, "pgrep -P %d | wc -l", (int)master), NULL, 10), 2);
    json_decref(http("GET", "/health", NULL, NULL, NULL, NULL, &r));
    ck_assert_int_eq(r.status, 200);
}
END_TEST

/* SIGTERM: the master stops accepting, the request in flight finishes, then it exits. */
START_TEST(test_sigterm_drains)
{
    pid_t child = fork();
    if (child == 0) {
        struct resp r;
        json_decref(http("GET", "/integrations/slow/health", reader, NULL, NULL, NULL, &r));
        _exit(r.status == 200 ? 0 : (int)(r.status % 256 ? r.status % 256 : 1));
    }
    usleep(500000); /* the slow request (1.5 s) is in flight */
    ck_assert_int_eq(kill(master, SIGTERM), 0);
    int status;
    ck_assert_int_eq(waitpid(child, &status, 0), child);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "the request in flight did not finish with 200");
    for (int i = 0; i < 50 && kill(master, 0) == 0; i++)
        usleep(100000);
    ck_assert_msg(kill(master, 0) != 0, "the master did not exit after draining");
    int st;
    ck_assert_int_eq(
        tu_sh("test ! -e %s/llm-opsd.pid && test ! -e %s/llm-opsd.sock", pg.dir, pg.dir), 0);
    ck_assert_ptr_nonnull(
        strstr(tu_capture(&st, "tail -n 3 %s/llm-opsd.log", pg.dir), "llm-opsd stopped"));
    master = 0;
}
END_TEST

int main(void)
{
    Suite *s = suite_create("e2e");
    TCase *tc = tcase_create("Core");
    tcase_set_timeout(tc, 60);
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_gpu_types_over_http);
    tcase_add_loop_test(tc, test_error_classes, 0, (int)(sizeof errors / sizeof errors[0]));
    tcase_add_test(tc, test_not_modified_over_http);
    tcase_add_test(tc, test_database_outage);
    tcase_add_test(tc, test_respawn_backoff);
    tcase_add_test(tc, test_sigterm_drains); /* last: it stops the server */
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
