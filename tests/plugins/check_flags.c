/* Flags and integrations against a real PostgreSQL, through the request pipeline of two
 * "workers" (two app instances, each with its own connection), as llm-opsd runs them. */
#include "app.h"
#include "auth.h"
#include "build-config.h"
#include "flags.h"
#include "owner.h"
#include "testutil.h"

#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static struct tu_pg pg;
static char conf_path[128];
#define dir pg.dir /* the cluster's temp directory */
#define sh tu_sh
static struct llmops_conf conf;
static struct app w1, w2;
static char admin[128], reader[128];

static void token(const char *name, const char *role, char *out, size_t size)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "%s/llm-opsctl --config %s token create --name %s --role %s 2>/dev/null",
             LLMOPS_BIN_DIR, conf_path, name, role);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(fgets(out, (int)size, p));
    pclose(p);
    out[strcspn(out, "\n")] = '\0';
}

static void setup(void)
{
    tu_pg_start(&pg, "flags");
    snprintf(conf_path, sizeof conf_path, "%s/llm-ops.conf", dir);
    tu_pg_createdb(&pg, "llmops");
    FILE *f = fopen(conf_path, "w");
    fprintf(f,
            "[server]\nplugin_dir = %s\n[database]\n"
            "conninfo = host=%s/sock port=%d user=postgres dbname=llmops\n"
            "migrations_dir = %s/migrations\n"
            "[plugin \"track-a\"]\nmodule = echo\ntool_version = 2.14.1\n"
            "[plugin \"track-b\"]\nmodule = echo\n"
            "[plugin \"flaky\"]\nmodule = echo\nhealth_fail_file = %s/flaky-down\n"
            "[plugin \"steady\"]\nmodule = echo\n"
            "[flags \"stg\"]\nexperiment_tracking = flaky\n"
            "experiment_tracking.fallback = steady\n"
            "[breaker]\nmin_calls = 5\nerror_percent = 50\nopen_seconds = 1\nauto_close = on\n"
            "[flags \"prod\"]\nexperiment_tracking = track-a\n"
            "experiment_tracking.fallback = track-b\n",
            TEST_PLUGIN_DIR, dir, pg.port, LLMOPS_SOURCE_DIR, dir);
    fclose(f);
    ck_assert_int_eq(sh("%s/llm-opsctl --config %s migrate >/dev/null", LLMOPS_BIN_DIR, conf_path),
                     0);
    token("admin", "admin", admin, sizeof admin);
    token("reader", "reader", reader, sizeof reader);
    struct conf_errors e = {0};
    ck_assert_int_eq(conf_load(conf_path, &conf, &e), 0);
    conf_errors_free(&e);
    app_init(&w1, &conf);
    app_init(&w2, &conf);
}

static void teardown(void)
{
    app_fini(&w1);
    app_fini(&w2);
    conf_free(&conf);
    tu_pg_stop(&pg);
}

struct body {
    const char *p;
    size_t left;
};

static long rd(void *ud, char *buf, size_t n)
{
    struct body *b = ud;
    if (n > b->left)
        n = b->left;
    memcpy(buf, b->p, n);
    b->p += n;
    b->left -= n;
    return (long)n;
}

/* One request through a worker; returns the parsed envelope and the status. */
static json_t *call(struct app *w, const char *method, const char *uri, const char *tok,
                    const char *json, int *status)
{
    char auth[160], len[24];
    snprintf(auth, sizeof auth, "Bearer %s", tok);
    struct body b = {json, json ? strlen(json) : 0};
    snprintf(len, sizeof len, "%zu", b.left);
    struct http_input in = {.method = method,
                            .uri = uri,
                            .authorization = tok ? auth : NULL,
                            .content_type = json ? "application/json" : NULL,
                            .content_length = json ? len : NULL,
                            .read_body = rd,
                            .body_ud = &b};
    struct req r;
    app_handle(w, &in, &r);
    *status = r.resp.status;
    json_t *j = json_loadb(r.resp.body, r.resp.body_len, 0, NULL);
    http_req_free(&r);
    ck_assert_ptr_nonnull(j);
    return j;
}

static const char *msg_of(json_t *j)
{
    return json_string_value(json_object_get(j, "message"));
}

static json_t *data_of(json_t *j)
{
    return json_object_get(j, "data");
}

static const char *active_of(json_t *list_env, const char *category)
{
    json_t *flags = json_object_get(data_of(list_env), "flags"), *f;
    size_t i;
    json_array_foreach(flags, i, f)
    {
        if (strcmp(json_string_value(json_object_get(f, "category")), category) == 0)
            return json_string_value(json_object_get(f, "active"));
    }
    return NULL;
}

START_TEST(test_defaults_from_config)
{
    int st;
    json_t *j = call(&w1, "GET", "/llm-ops/v1/flags?env=prod", reader, NULL, &st);
    ck_assert_int_eq(st, 200);
    ck_assert_str_eq(active_of(j, "experiment_tracking"), "track-a");
    ck_assert_ptr_null(active_of(j, "serving"));
    json_decref(j);
}
END_TEST

START_TEST(test_flip_reaches_every_worker)
{
    int st;
    /* both workers have read the flags once (cached) */
    json_decref(call(&w1, "GET", "/llm-ops/v1/flags?env=prod", reader, NULL, &st));
    json_decref(call(&w2, "GET", "/llm-ops/v1/flags?env=prod", reader, NULL, &st));
    json_t *j = call(&w1, "PUT", "/llm-ops/v1/flags/prod/experiment_tracking", admin,
                     "{\"active\":\"track-b\",\"fallback\":\"track-a\",\"reason\":\"move\"}", &st);
    ck_assert_msg(st == 200, "%s", msg_of(j));
    ck_assert_str_eq(
        json_string_value(json_object_get(json_object_get(data_of(j), "audit"), "actor")), "admin");
    json_decref(j);
    /* the other worker sees it at its next request: NOTIFY, no restart */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    const char *seen = NULL;
    json_t *k = NULL;
    for (int i = 0; i < 100; i++) {
        json_decref(k);
        k = call(&w2, "GET", "/llm-ops/v1/flags?env=prod", reader, NULL, &st);
        seen = active_of(k, "experiment_tracking");
        if (strcmp(seen, "track-b") == 0)
            break;
        usleep(10000);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ck_assert_str_eq(seen, "track-b");
    ck_assert_double_lt((double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
                        1.0);
    json_decref(k);
    /* and back at once with a rollback to the fallback */
    j = call(&w2, "POST", "/llm-ops/v1/flags/prod/experiment_tracking/rollback", admin,
             "{\"reason\":\"errors after the flip\"}", &st);
    ck_assert_msg(st == 200, "%s", msg_of(j));
    json_decref(j);
    j = call(&w1, "GET", "/llm-ops/v1/flags?env=prod", reader, NULL, &st);
    ck_assert_str_eq(active_of(j, "experiment_tracking"), "track-a");
    json_decref(j);
    /* the audit log has both, newest first, with before and after */
    j = call(&w1, "GET", "/llm-ops/v1/flags/audit?env=prod&limit=2", reader, NULL, &st);
    ck_assert_int_eq(st, 200);
    json_t *entries = json_object_get(data_of(j), "entries");
    ck_assert_int_eq(json_array_size(entries), 2);
    json_t *e0 = json_array_get(entries, 0);
    ck_assert_str_eq(json_string_value(json_object_get(e0, "action")), "rollback");
    ck_assert_str_eq(json_string_value(json_object_get(e0, "reason")), "errors after the flip");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(e0, "before"), "active")),
                     "track-b");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(e0, "after"), "active")),
                     "track-a");
    json_decref(j);
}
END_TEST

static const struct {
    const char *method, *uri, *body;
    int status;
    const char *in_message;
} bad[] = {
    {"PUT", "/llm-ops/v1/flags/qa/serving", "{\"active\":\"track-a\",\"reason\":\"x\"}", 400,
     "unknown environment 'qa'; valid: dev, stg, prod"},
    {"PUT", "/llm-ops/v1/flags/prod/cooking", "{\"active\":\"track-a\",\"reason\":\"x\"}", 400,
     "unknown category 'cooking'; valid: experiment_tracking"},
    {"PUT", "/llm-ops/v1/flags/prod/experiment_tracking", "{\"active\":\"nope\",\"reason\":\"x\"}",
     400, "active instance 'nope' is not configured; experiment_tracking instances: track-a"},
    {"PUT", "/llm-ops/v1/flags/prod/serving", "{\"active\":\"track-a\",\"reason\":\"x\"}", 400,
     "active instance 'track-a' serves experiment_tracking (module echo), not serving"},
    {"PUT", "/llm-ops/v1/flags/prod/experiment_tracking", "{\"active\":\"track-a\"}", 400,
     "reason is required"},
    {"PUT", "/llm-ops/v1/flags/prod/experiment_tracking",
     "{\"active\":\"track-a\",\"rollout_percent\":5,\"reason\":\"x\"}", 400,
     "rollout_percent needs a candidate"},
    {"PUT", "/llm-ops/v1/flags/prod/experiment_tracking",
     "{\"active\":\"track-a\",\"colour\":1,\"reason\":\"x\"}", 400, "unknown member 'colour'"},
    {"POST", "/llm-ops/v1/flags/dev/experiment_tracking/rollback", "{\"reason\":\"x\"}", 409,
     "has no fallback"},
    {"GET", "/llm-ops/v1/flags/audit?limit=0", NULL, 400, "limit must be an integer 1-1000"},
};

START_TEST(test_bad_requests)
{
    int st;
    json_t *j = call(&w1, bad[_i].method, bad[_i].uri, admin, bad[_i].body, &st);
    ck_assert_msg(st == bad[_i].status, "%s %s: %d %s", bad[_i].method, bad[_i].uri, st, msg_of(j));
    if (!strstr(msg_of(j), bad[_i].in_message))
        ck_abort_msg("'%s' lacks '%s'", msg_of(j), bad[_i].in_message);
    json_decref(j);
}
END_TEST

START_TEST(test_reader_cannot_flip)
{
    int st;
    json_t *j = call(&w1, "POST", "/llm-ops/v1/flags/prod/experiment_tracking/rollback", reader,
                     "{\"reason\":\"x\"}", &st);
    ck_assert_int_eq(st, 403);
    json_decref(j);
}
END_TEST

START_TEST(test_bucketing)
{
    /* stable: a subject never flip-flops */
    int b = flags_bucket("prod", 1, "project-42");
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(flags_bucket("prod", 1, "project-42"), b);
    /* about 10% of 10,000 subjects fall under 10 */
    struct flag f = {"track-a", "track-b", "track-b", 10, 0, "", ""};
    int to_candidate = 0;
    for (int i = 0; i < 10000; i++) {
        char s[32];
        snprintf(s, sizeof s, "project-%d", i);
        enum flag_route why;
        const char *inst = flags_pick(&f, "prod", 1, s, &why);
        if (why == FLAG_CANDIDATE) {
            ck_assert_str_eq(inst, "track-b");
            to_candidate++;
        }
    }
    ck_assert_int_gt(to_candidate, 850);
    ck_assert_int_lt(to_candidate, 1150);
    /* raising the percentage only adds subjects: those already on the candidate stay */
    f.rollout = 30;
    for (int i = 0; i < 1000; i++) {
        char s[32];
        snprintf(s, sizeof s, "project-%d", i);
        if (flags_bucket("prod", 1, s) < 10) {
            enum flag_route why;
            flags_pick(&f, "prod", 1, s, &why);
            ck_assert_int_eq(why, FLAG_CANDIDATE);
        }
    }
}
END_TEST

START_TEST(test_integrations)
{
    int st;
    json_t *j = call(&w1, "GET", "/llm-ops/v1/integrations", reader, NULL, &st);
    ck_assert_int_eq(st, 200);
    json_t *list = json_object_get(data_of(j), "integrations");
    ck_assert_int_eq(json_array_size(list), 4);
    json_t *a = json_array_get(list, 0);
    ck_assert_str_eq(json_string_value(json_object_get(a, "name")), "track-a");
    ck_assert_str_eq(json_string_value(json_object_get(a, "module")), "echo");
    ck_assert_str_eq(json_string_value(json_object_get(a, "abi")), "1.1");
    ck_assert_str_eq(json_string_value(json_object_get(a, "category")), "experiment_tracking");
    ck_assert_str_eq(json_string_value(json_object_get(a, "state")), "ok");
    /* after the rollback earlier, track-a is both prod's active and its fallback */
    json_t *serves = json_object_get(a, "serves"), *sv;
    size_t i;
    int active = 0;
    json_array_foreach(serves, i, sv)
    {
        ck_assert_str_eq(json_string_value(json_object_get(sv, "environment")), "prod");
        if (strcmp(json_string_value(json_object_get(sv, "role")), "active") == 0)
            active = 1;
    }
    ck_assert(active);
    json_decref(j);
    j = call(&w1, "GET", "/llm-ops/v1/integrations/track-a/health", reader, NULL, &st);
    ck_assert_int_eq(st, 200);
    ck_assert_str_eq(json_string_value(json_object_get(data_of(j), "tool_version")), "2.14.1");
    json_decref(j);
    j = call(&w1, "GET", "/llm-ops/v1/integrations/nope/health", reader, NULL, &st);
    ck_assert_int_eq(st, 404);
    json_decref(j);
}
END_TEST

/* The breaker: sustained failures move stg to the fallback (audited, seen by the other
 * worker); once healthy again and with auto_close, traffic returns by itself. */
START_TEST(test_breaker_rollback_and_return)
{
    int st;
    sh("touch %s/flaky-down", dir);
    for (int i = 0; i < 5; i++)
        json_decref(call(&w1, "GET", "/llm-ops/v1/integrations/flaky/health", reader, NULL, &st));
    ck_assert_int_eq(st, 503);
    json_t *j = call(&w2, "GET", "/llm-ops/v1/flags?env=stg", reader, NULL, &st);
    ck_assert_str_eq(active_of(j, "experiment_tracking"), "steady");
    json_decref(j);
    j = call(&w1, "GET", "/llm-ops/v1/flags/audit?env=stg&limit=1", reader, NULL, &st);
    json_t *e0 = json_array_get(json_object_get(data_of(j), "entries"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(e0, "actor")), "circuit-breaker");
    ck_assert_str_eq(json_string_value(json_object_get(e0, "action")), "breaker_trip");
    json_decref(j);
    j = call(&w1, "GET", "/llm-ops/v1/integrations", reader, NULL, &st);
    json_t *list = json_object_get(data_of(j), "integrations"), *it;
    size_t i;
    json_array_foreach(list, i, it)
    {
        if (strcmp(json_string_value(json_object_get(it, "name")), "flaky") == 0)
            ck_assert_str_eq(json_string_value(json_object_get(it, "breaker")), "open");
    }
    json_decref(j);
    /* still down when the probe comes: stays on the fallback */
    sleep(1);
    json_decref(call(&w1, "GET", "/llm-ops/v1/health", NULL, NULL, &st));
    j = call(&w1, "GET", "/llm-ops/v1/flags?env=stg", reader, NULL, &st);
    ck_assert_str_eq(active_of(j, "experiment_tracking"), "steady");
    json_decref(j);
    /* healthy again: the next probe closes the breaker and gives stg back */
    sh("rm -f %s/flaky-down", dir);
    usleep(1100000);
    json_decref(call(&w1, "GET", "/llm-ops/v1/health", NULL, NULL, &st));
    j = call(&w2, "GET", "/llm-ops/v1/flags?env=stg", reader, NULL, &st);
    ck_assert_str_eq(active_of(j, "experiment_tracking"), "flaky");
    json_decref(j);
    j = call(&w1, "GET", "/llm-ops/v1/flags/audit?env=stg&limit=1", reader, NULL, &st);
    e0 = json_array_get(json_object_get(data_of(j), "entries"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(e0, "action")), "breaker_restore");
    json_decref(j);
}
END_TEST

/* Ownership with two instances: objects created while track-a is active stay with track-a
 * after the flag flips to track-b; only new objects go to track-b. */
START_TEST(test_ownership_survives_a_flip)
{
    int st;
    int prod = conf_env_index(&conf, "prod");
    struct req r;
    memset(&r, 0, sizeof r);
    r.app = &w1;
    snprintf(r.who.name, sizeof r.who.name, "admin");
    json_t *j = call(&w1, "PUT", "/llm-ops/v1/flags/prod/experiment_tracking", admin,
                     "{\"active\":\"track-a\",\"fallback\":\"track-b\",\"reason\":\"t\"}", &st);
    json_decref(j);
    struct instance *in = owner_pick(&w1, &r, prod, LLMOPS_CATEGORY_EXPERIMENT_TRACKING, "p1");
    ck_assert_ptr_nonnull(in);
    ck_assert_str_eq(in->name, "track-a");
    struct owned old, fresh, seen;
    struct db_error err;
    ck_assert_int_eq(owner_reserve(&w1, "exp", "prod", LLMOPS_CATEGORY_EXPERIMENT_TRACKING,
                                   in->name, "admin", &old, &err),
                     0);
    ck_assert_int_eq(owner_bind(&w1, old.id, "mlflow-17", &err), 0);
    /* flip */
    j = call(&w2, "PUT", "/llm-ops/v1/flags/prod/experiment_tracking", admin,
             "{\"active\":\"track-b\",\"fallback\":\"track-a\",\"reason\":\"flip\"}", &st);
    ck_assert_int_eq(st, 200);
    json_decref(j);
    json_decref(call(&w1, "GET", "/llm-ops/v1/health", NULL, NULL, &st)); /* reads NOTIFY */
    in = owner_pick(&w1, &r, prod, LLMOPS_CATEGORY_EXPERIMENT_TRACKING, "p1");
    ck_assert_str_eq(in->name, "track-b");
    ck_assert_int_eq(owner_reserve(&w1, "exp", "prod", LLMOPS_CATEGORY_EXPERIMENT_TRACKING,
                                   in->name, "admin", &fresh, &err),
                     0);
    ck_assert_str_ne(fresh.id, old.id);
    /* the old object is still read from the instance that holds it */
    ck_assert_int_eq(owner_lookup(&w2, old.id, &seen, &err), 1);
    ck_assert_str_eq(seen.instance, "track-a");
    ck_assert_str_eq(seen.external_id, "mlflow-17");
    ck_assert_str_eq(owner_instance(&w2, &seen)->name, "track-a");
    ck_assert_int_eq(owner_lookup(&w2, fresh.id, &seen, &err), 1);
    ck_assert_str_eq(seen.instance, "track-b");
    ck_assert_int_eq(owner_lookup(&w2, "exp_000000000000000000000000", &seen, &err), 0);
    /* a flag naming no instance: a clear 400 */
    memset(&r.resp, 0, sizeof r.resp);
    ck_assert_ptr_null(
        owner_pick(&w1, &r, conf_env_index(&conf, "dev"), LLMOPS_CATEGORY_SERVING, "p1"));
    ck_assert_int_eq(r.resp.status, 400);
    http_req_free(&r);
}
END_TEST

/* The hot path: once a worker has the token and the list cached, an authenticated GET of
 * the GPU types sends no statement to PostgreSQL at all. */
START_TEST(test_hot_path_sends_no_sql)
{
    int st;
    ck_assert_int_eq(sh("%s/llm-opsctl --config %s seed --file %s/etc/gpu-types.json >/dev/null",
                        LLMOPS_BIN_DIR, conf_path, LLMOPS_SOURCE_DIR),
                     0);
    json_decref(call(&w1, "GET", "/llm-ops/v1/gpu-types?env=dev", reader, NULL, &st));
    ck_assert_int_eq(st, 200);
    unsigned long before = w1.db.statements;
    for (int i = 0; i < 200; i++) {
        json_t *j = call(&w1, "GET", "/llm-ops/v1/gpu-types?env=dev", reader, NULL, &st);
        ck_assert_int_eq(st, 200);
        json_decref(j);
    }
    ck_assert_uint_eq(w1.db.statements, before);
    /* a revoke still reaches the worker (NOTIFY, no polling the table) within a second */
    ck_assert_int_eq(
        sh("%s/llm-opsctl --config %s token revoke reader >/dev/null", LLMOPS_BIN_DIR, conf_path),
        0);
    for (int i = 0; i < 100; i++) { /* within a second */
        json_decref(call(&w1, "GET", "/llm-ops/v1/gpu-types?env=dev", reader, NULL, &st));
        if (st == 401)
            break;
        usleep(10000);
    }
    ck_assert_int_eq(st, 401);
    token("reader", "reader", reader, sizeof reader);
}
END_TEST

/* ETag and If-None-Match: 304 without a body while the list is unchanged; a change made
 * through another worker gives a new tag. */
START_TEST(test_etag_304)
{
    char a[160];
    snprintf(a, sizeof a, "Bearer %s", admin);
    struct http_input in = {
        .method = "GET", .uri = "/llm-ops/v1/gpu-types?env=stg", .authorization = a};
    struct req r;
    app_handle(&w1, &in, &r);
    ck_assert_int_eq(r.resp.status, 200);
    const char *h = strstr(r.resp.headers, "ETag: ");
    ck_assert_ptr_nonnull(h);
    char etag[64];
    ck_assert_int_eq(sscanf(h, "ETag: %63s", etag), 1);
    http_req_free(&r);
    in.if_none_match = etag;
    app_handle(&w1, &in, &r);
    ck_assert_int_eq(r.resp.status, 304);
    ck_assert_ptr_null(r.resp.body);
    ck_assert_ptr_nonnull(strstr(r.resp.headers, etag));
    http_req_free(&r);
    char list[160];
    snprintf(list, sizeof list, "\"nope\", W/%s", etag); /* a list, weak form */
    in.if_none_match = list;
    app_handle(&w1, &in, &r);
    ck_assert_int_eq(r.resp.status, 304);
    http_req_free(&r);
    int st;
    json_t *j = call(&w2, "POST", "/llm-ops/v1/gpu-types?env=stg", admin,
                     "{\"name\":\"etag-test\",\"vendor\":\"amd\",\"model\":\"MI300X\","
                     "\"memory_gib\":192,\"resource_name\":\"amd.com/gpu\",\"node_selector\":"
                     "{\"key\":\"k\",\"value\":\"v\"},\"capacity\":2}",
                     &st);
    ck_assert_int_eq(st, 201);
    json_decref(j);
    /* w1 drops its cache when the NOTIFY arrives: within a second (normally milliseconds) */
    in.if_none_match = etag;
    for (int i = 0; i < 100; i++) {
        app_handle(&w1, &in, &r);
        if (r.resp.status == 200)
            break;
        http_req_free(&r);
        usleep(10000);
    }
    ck_assert_int_eq(r.resp.status, 200);
    ck_assert_ptr_nonnull(strstr(r.resp.body, "etag-test"));
    ck_assert_ptr_null(strstr(r.resp.headers, etag));
    http_req_free(&r);
}
END_TEST

START_TEST(test_cli)
{
    char base[256];
    snprintf(base, sizeof base, "%s/llm-opsctl --config %s", LLMOPS_BIN_DIR, conf_path);
    ck_assert_int_eq(sh("%s flags get --env prod | grep -q 'experiment_tracking  track-a'", base),
                     0);
    ck_assert_int_eq(
        sh("%s flags set prod experiment_tracking --active track-b --reason t >/dev/null", base),
        0);
    ck_assert_int_eq(sh("%s flags get --env prod | grep -q 'track-b .*override'", base), 0);
    ck_assert_int_eq(sh("%s flags set prod serving --active track-a --reason t 2>/dev/null", base),
                     2);
    ck_assert_int_eq(sh("%s flags set prod experiment_tracking --active track-a 2>/dev/null", base),
                     2);
    ck_assert_int_eq(sh("%s flags rollback prod experiment_tracking --reason t 2>/dev/null", base),
                     1);
    ck_assert_int_eq(sh("%s flags set prod experiment_tracking --active track-b --fallback track-a "
                        "--reason t >/dev/null && %s flags rollback prod experiment_tracking "
                        "--reason back >/dev/null",
                        base, base),
                     0);
    ck_assert_int_eq(sh("%s flags get --env prod | grep -q 'experiment_tracking  track-a'", base),
                     0);
}
END_TEST

/* The request whose call opens the breaker only records it: its answer is made (app_serve)
 * before any flag moves; the trip's flag write happens in app_after, which the worker runs
 * after the answer is sent. */
START_TEST(test_trip_happens_after_the_answer)
{
    int st;
    struct instance *flaky = plugins_find(&w1.plugins, "flaky");
    sh("touch %s/flaky-down", dir);
    int served = 0;
    while (!flaky->trip_pending && served < 20) {
        struct http_input in = {.method = "GET", .uri = "/llm-ops/v1/integrations/flaky/health"};
        char auth[160];
        snprintf(auth, sizeof auth, "Bearer %s", reader);
        in.authorization = auth;
        struct req r;
        app_serve(&w1, &in, &r);
        ck_assert_int_eq(r.resp.status, 503);
        http_req_free(&r);
        served++;
    }
    ck_assert_msg(flaky->trip_pending, "no trip after %d failing calls", served);
    /* answered, and the flags not written yet: the other worker still sees flaky */
    json_t *j = call(&w2, "GET", "/llm-ops/v1/flags?env=stg", reader, NULL, &st);
    ck_assert_str_eq(active_of(j, "experiment_tracking"), "flaky");
    json_decref(j);
    app_after(&w1);
    ck_assert(!flaky->trip_pending);
    j = call(&w2, "GET", "/llm-ops/v1/flags?env=stg", reader, NULL, &st);
    ck_assert_str_eq(active_of(j, "experiment_tracking"), "steady");
    json_decref(j);
    /* give stg back for what follows */
    sh("rm -f %s/flaky-down", dir);
    usleep(1100000);
    json_decref(call(&w1, "GET", "/llm-ops/v1/health", NULL, NULL, &st));
    j = call(&w2, "GET", "/llm-ops/v1/flags?env=stg", reader, NULL, &st);
    ck_assert_str_eq(active_of(j, "experiment_tracking"), "flaky");
    json_decref(j);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("flags");
    TCase *tc = tcase_create("Core");
    tcase_set_timeout(tc, 60);
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_defaults_from_config);
    tcase_add_test(tc, test_flip_reaches_every_worker);
    tcase_add_loop_test(tc, test_bad_requests, 0, (int)(sizeof bad / sizeof bad[0]));
    tcase_add_test(tc, test_reader_cannot_flip);
    tcase_add_test(tc, test_bucketing);
    tcase_add_test(tc, test_integrations);
    tcase_add_test(tc, test_breaker_rollback_and_return);
    tcase_add_test(tc, test_hot_path_sends_no_sql);
    tcase_add_test(tc, test_etag_304);
    tcase_add_test(tc, test_cli);
    tcase_add_test(tc, test_ownership_survives_a_flip);
    tcase_add_test(tc, test_trip_happens_after_the_answer);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
