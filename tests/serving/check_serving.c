/* The serving modules' own suite. Without a server: the parsers of the Kubernetes client
 * (plugins/lib/k8s/k8s_parse.c: Status, Warning, lists) and the shared checks (sv.c),
 * compiled in, table-driven. Against tests/fakes/k8s_fake.py (plain http, a bearer token),
 * with serving-k8s and kserve loaded by the core's loader as llm-opsd loads them: every Status
 * mapping (404, 409 AlreadyExists vs Conflict, 422 causes naming fields, 401, 403, 429 with
 * Retry-After, 5xx), the pruning Warning refused with UNSUPPORTED before anything is stored,
 * a missing CRD at init and in health, every state (ready, failed, stuck), faults (refused,
 * 5xx, 429, a lost answer: exactly one object), configuration errors with file:line. Each
 * test starts its own fake on a free port. */
#include "conf.h"
#include "httpclient.h"
#include "k8s.h"
#include "log.h"
#include "plugin.h"
#include "sv.h"
#include "testutil.h"

#include <check.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define TOKEN "serving-T0KEN-k8s-17"

/* ------------------------------------------------------------------ parsers */

START_TEST(test_status_mapping)
{
    static const struct {
        int status;
        const char *body;
        enum llmops_status code;
        int retryable;
        const char *reason, *what;
    } cases[] = {
        {404, "{\"kind\":\"Status\",\"status\":\"Failure\",\"reason\":\"NotFound\",\"code\":404}",
         LLMOPS_ERR_NOT_FOUND, 0, "NotFound", "not found"},
        {404, "404 page not found", LLMOPS_ERR_NOT_FOUND, 0, "", "group installed"},
        {409,
         "{\"kind\":\"Status\",\"reason\":\"AlreadyExists\",\"details\":{\"name\":\"a\",\"kind\":"
         "\"inferenceservices\"},\"code\":409}",
         LLMOPS_ERR_CONFLICT, 0, "AlreadyExists", "already exists"},
        {409, "{\"kind\":\"Status\",\"reason\":\"Conflict\",\"code\":409}", LLMOPS_ERR_CONFLICT, 1,
         "Conflict", "stale resourceVersion"},
        {422,
         "{\"kind\":\"Status\",\"reason\":\"Invalid\",\"details\":{\"kind\":\"InferenceService\","
         "\"causes\":[{\"reason\":\"FieldValueRequired\",\"field\":\"spec.predictor\"},{"
         "\"reason\":\"FieldValueInvalid\",\"field\":\"<nil>\"},{\"reason\":"
         "\"FieldValueTypeInvalid\",\"field\":\"spec.predictor.minReplicas\"}]},\"code\":422}",
         LLMOPS_ERR_INVALID, 0, "Invalid",
         "spec.predictor: FieldValueRequired; spec.predictor.minReplicas: FieldValueTypeInvalid"},
        {400, "{\"kind\":\"Status\",\"reason\":\"BadRequest\"}", LLMOPS_ERR_INVALID, 0,
         "BadRequest", "bad request"},
        {401, "{\"kind\":\"Status\",\"reason\":\"Unauthorized\"}", LLMOPS_ERR_TOOL, 0,
         "Unauthorized", "token_file"},
        {403, "{\"kind\":\"Status\",\"reason\":\"Forbidden\"}", LLMOPS_ERR_TOOL, 0, "Forbidden",
         "RBAC"},
        {429, "{\"kind\":\"Status\",\"reason\":\"TooManyRequests\"}", LLMOPS_ERR_TOOL, 1,
         "TooManyRequests", "too many"},
        {503, "<html>upstream</html>", LLMOPS_ERR_TOOL, 1, "", "server error"},
        {415, "{\"kind\":\"Status\",\"reason\":\"UnsupportedMediaType\"}", LLMOPS_ERR_TOOL, 0,
         "UnsupportedMediaType", "refused"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct k8s_fault f;
        k8s_status_parse(cases[i].status, cases[i].body, strlen(cases[i].body), &f);
        ck_assert_msg(f.code == cases[i].code, "case %zu: code %d", i, f.code);
        ck_assert_int_eq(f.tool_status, cases[i].status);
        ck_assert_msg(f.retryable == cases[i].retryable, "case %zu: retryable %d", i, f.retryable);
        ck_assert_str_eq(f.reason, cases[i].reason);
        ck_assert_msg(strstr(f.what, cases[i].what), "case %zu: \"%s\" lacks \"%s\"", i, f.what,
                      cases[i].what);
    }
    struct k8s_fault f;
    k8s_status_parse(422, NULL, 0, &f);
    ck_assert_int_eq(f.code, LLMOPS_ERR_INVALID);
}
END_TEST

START_TEST(test_warning_parse)
{
    char field[128];
    ck_assert_int_eq(
        k8s_warning_unknown_field("299 - \"unknown field \\\"spec.predictor.bogusField\\\"\"",
                                  field, sizeof field),
        1);
    ck_assert_str_eq(field, "spec.predictor.bogusField");
    /* A list of warnings, the pruned one second. */
    ck_assert_int_eq(k8s_warning_unknown_field("299 - \"deprecated: use v2\", 299 - \"unknown "
                                               "field \\\"spec.x\\\"\"",
                                               field, sizeof field),
                     1);
    ck_assert_str_eq(field, "spec.x");
    ck_assert_int_eq(k8s_warning_unknown_field("299 - \"deprecated\"", field, sizeof field), 0);
    ck_assert_int_eq(k8s_warning_unknown_field("299 - \"unterminated", field, sizeof field), 0);
    ck_assert_int_eq(k8s_warning_unknown_field("", field, sizeof field), 0);
    ck_assert_int_eq(k8s_warning_unknown_field(NULL, field, sizeof field), 0);
}
END_TEST

START_TEST(test_list_parse)
{
    json_t *o = json_loads("{\"kind\":\"DeploymentList\",\"metadata\":{\"continue\":\"abc\"},"
                           "\"items\":[{}]}",
                           0, NULL);
    json_t *items;
    const char *cont;
    ck_assert_int_eq(k8s_list_parse(o, &items, &cont), 0);
    ck_assert_int_eq(json_array_size(items), 1);
    ck_assert_str_eq(cont, "abc");
    json_decref(o);
    o = json_loads("{\"kind\":\"Status\",\"items\":[]}", 0, NULL);
    ck_assert_int_eq(k8s_list_parse(o, &items, &cont), -1);
    json_decref(o);
    o = json_loads("{\"kind\":\"PodList\",\"metadata\":{\"continue\":\"\"},\"items\":null}", 0,
                   NULL);
    ck_assert_int_eq(k8s_list_parse(o, &items, &cont), 0);
    ck_assert_ptr_null(cont);
    json_decref(o);
}
END_TEST

START_TEST(test_rfc3339)
{
    ck_assert_int_eq(sv_rfc3339_ms("1970-01-01T00:00:01Z"), 1000);
    ck_assert_int_eq(sv_rfc3339_ms("2026-12-03T09:15:00.250Z"), 1796289300250LL);
    ck_assert_int_eq(sv_rfc3339_ms("2026-12-03T10:15:00+01:00"), 1796289300000LL);
    ck_assert_int_eq(sv_rfc3339_ms("2026-12-03 09:15:00Z"), -1);
    ck_assert_int_eq(sv_rfc3339_ms("2026-13-03T09:15:00Z"), -1);
    ck_assert_int_eq(sv_rfc3339_ms(NULL), -1);
}
END_TEST

START_TEST(test_split_checks)
{
    struct sv_features by_replicas = {SV_CANARY | SV_CANARY_BY_REPLICAS, NULL, 56};
    struct llmops_error e = {.size = sizeof e};
    int p, r;
    json_t *in = json_pack("{s:i}", "traffic_percent", 10);
    ck_assert_int_eq(sv_check_split(in, &by_replicas, 0, &p, &r, &e), -1);
    ck_assert_int_eq(e.code, LLMOPS_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(e.message, "canary_percent"));
    json_decref(in);
    in = json_pack("{s:i}", "canary_replicas", 2);
    ck_assert_int_eq(sv_check_split(in, &by_replicas, 0, &p, &r, &e), 0);
    ck_assert_int_eq(r, 2);
    ck_assert_int_eq(p, -1);
    json_decref(in);
    struct sv_features none = {0, NULL, 63};
    in = json_pack("{s:i}", "traffic_percent", 10);
    ck_assert_int_eq(sv_check_split(in, &none, 0, &p, &r, &e), -1);
    ck_assert_int_eq(e.code, LLMOPS_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(e.message, "\"canary\""));
    json_decref(in);
    struct sv_features percent = {SV_CANARY | SV_CANARY_PERCENT, NULL, 63};
    in = json_pack("{s:i}", "traffic_percent", 100);
    ck_assert_int_eq(sv_check_split(in, &percent, 0, &p, &r, &e), -1);
    ck_assert_int_eq(e.code, LLMOPS_ERR_INVALID);
    ck_assert_int_eq(sv_check_split(in, &percent, 1, &p, &r, &e), 0);
    ck_assert_int_eq(p, 100);
    json_decref(in);
}
END_TEST

/* ------------------------------------------------------------------ the fake */

static struct {
    pid_t pid;
    int port;
    char dir[64];
    struct httpc *ctl;
    struct llmops_conf conf;
    struct conf_errors errs;
    struct plugin_registry reg;
    int loaded;
} t;

static void fake_start_script(const char *script, const char *const *extra);

static void fake_start(const char *const *extra)
{
    fake_start_script(K8S_FAKE, extra);
}

static void fake_start_script(const char *script, const char *const *extra)
{
    int k8s = strcmp(script, K8S_FAKE) == 0;
    snprintf(t.dir, sizeof t.dir, "/tmp/llmops-serving-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(t.dir));
    t.port = tu_free_port();
    char port[16], ready[128];
    snprintf(port, sizeof port, "%d", t.port);
    snprintf(ready, sizeof ready, "%s/ready", t.dir);
    const char *argv[32] = {PYTHON3,
                            script,
                            "--port",
                            port,
                            "--ready-file",
                            ready,
                            "--max-seconds",
                            "120",
                            "--exit-with-parent",
                            "--polls",
                            "2"};
    int n = 11;
    if (k8s) {
        argv[n++] = "--token";
        argv[n++] = TOKEN;
        argv[n++] = "--any-namespace";
    }
    for (; extra && *extra && n < 31; extra++)
        argv[n++] = *extra;
    argv[n] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attr, 0);
    int rc = posix_spawnp(&t.pid, PYTHON3, &fa, &attr, (char *const *)argv, environ);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    ck_assert_msg(rc == 0, "cannot start %s: %s", script, strerror(rc));
    struct stat sb;
    for (int i = 0; i < 200 && stat(ready, &sb) != 0; i++)
        usleep(50 * 1000);
    ck_assert_msg(stat(ready, &sb) == 0, "the fake did not become ready on port %d", t.port);
    char base[64];
    snprintf(base, sizeof base, "http://127.0.0.1:%d", t.port);
    struct httpc_config hc = {.base_url = base, .total_timeout_ms = 5000, .verify_tls = 1};
    t.ctl = httpc_new(&hc);
    ck_assert_ptr_nonnull(t.ctl);
    char path[128];
    snprintf(path, sizeof path, "%s/token", t.dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(TOKEN "\n", f);
    fclose(f);
}

/* Loads serving-k8s as "sk" and kserve as "ks" against the fake, `extra` appended to both
 * sections. Returns the number of problems. */
static int load(const char *extra_sk, const char *extra_ks)
{
    char path[128], text[4096];
    snprintf(path, sizeof path, "%s/llm-ops.conf", t.dir);
    snprintf(text, sizeof text,
             "[server]\nplugin_dir = %s\n\n"
             "[plugin \"sk\"]\nmodule = serving-k8s\nurl = http://127.0.0.1:%d\n"
             "token_file = %s/token\nnamespace = llm\ntimeout_ms = 4000\nretries = 2\n"
             "connect_timeout_ms = 500\n%s\n"
             "[plugin \"ks\"]\nmodule = kserve\nurl = http://127.0.0.1:%d\n"
             "token_file = %s/token\nnamespace = llm\ntimeout_ms = 4000\nretries = 2\n"
             "connect_timeout_ms = 500\n%s\n",
             PLUGIN_DIR, t.port, t.dir, extra_sk ? extra_sk : "image = ghcr.io/example/srv:1",
             t.port, t.dir, extra_ks ? extra_ks : "");
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    int problems = conf_load(path, &t.conf, &t.errs);
    if (problems > 0) {
        conf_free(&t.conf);
        t.loaded = 0;
        return problems;
    }
    problems = plugins_load(&t.reg, &t.conf, NULL, 1, &t.errs);
    t.loaded = 1;
    return problems;
}

static void setup(void)
{
    fake_start(NULL);
    ck_assert_int_eq(load(NULL, NULL), 0);
}

static void teardown(void)
{
    if (t.loaded) {
        plugins_unload(&t.reg);
        conf_free(&t.conf);
    }
    conf_errors_free(&t.errs);
    if (t.ctl)
        httpc_free(t.ctl);
    if (t.pid > 0) {
        kill(t.pid, SIGTERM);
        waitpid(t.pid, NULL, 0);
    }
    if (t.dir[0])
        tu_sh("rm -rf %s", t.dir);
    memset(&t, 0, sizeof t);
}

static json_t *ctl(const char *method, const char *path, json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    struct llmops_http_request req = {.size = sizeof req,
                                      .method = method,
                                      .path = path,
                                      .body = text,
                                      .body_len = text ? strlen(text) : 0,
                                      .retry_unsafe = 1};
    struct llmops_http_response resp = {.size = sizeof resp};
    struct llmops_error err = {.size = sizeof err};
    int rc = httpc_request(t.ctl, &req, &resp, &err);
    free(text);
    json_decref(body);
    ck_assert_msg(rc == 0, "fake control %s %s: %s", method, path, err.message);
    ck_assert_msg(resp.status == 200, "fake control %s %s: HTTP %d", method, path, resp.status);
    json_t *j = json_loadb(resp.body, resp.body_len, 0, NULL);
    httpc_response_free(&resp);
    return j ? j : json_object();
}

static void fault(const char *path, const char *responses)
{
    json_t *r = json_loads(responses, 0, NULL);
    ck_assert_msg(r != NULL, "bad fault JSON %s", responses);
    json_decref(ctl("POST", "/_faults", json_pack("{s:s,s:o}", "path", path, "responses", r)));
}

/* Faults still queued for a path (0: every one was used). */
static int queued(const char *path)
{
    json_t *s = ctl("GET", "/_stats", NULL);
    int n = (int)json_integer_value(json_object_get(json_object_get(s, "queued"), path));
    json_decref(s);
    return n;
}

static int count(const char *path)
{
    json_t *s = ctl("GET", "/_stats", NULL);
    int n = (int)json_integer_value(json_object_get(json_object_get(s, "counts"), path));
    json_decref(s);
    return n;
}

/* How many stored objects of `what` ("serving.kserve.io/inferenceservices",
 * "apps/deployments") carry label llm-ops/idempotency-key=key (/_state: {what: {"ns/name":
 * object}}). */
static int stored(const char *what, const char *key)
{
    json_t *s = ctl("GET", "/_state", NULL), *o;
    const char *k;
    int n = 0;
    json_object_foreach(json_object_get(s, what), k, o)
    {
        const char *label = json_string_value(json_object_get(
            json_object_get(json_object_get(o, "metadata"), "labels"), LLMOPS_SERVING_KEY_LABEL));
        if (label && !strcmp(label, key))
            n++;
    }
    json_decref(s);
    return n;
}

static struct instance *inst(const char *name)
{
    struct instance *in = plugins_find(&t.reg, name);
    ck_assert_ptr_nonnull(in);
    ck_assert_msg(in->initialised, "%s: %s", name, in->reason);
    return in;
}

static const struct llmops_serving_ops *ops_of(const char *name)
{
    return inst(name)->mod->desc->ops;
}

static struct llmops_error last;

/* Calls op `fn` of instance `name` with JSON text; 0 or -1 (the error in `last`). */
static int callv(const char *name, llmops_op_fn *fn, json_t **out, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int callv(const char *name, llmops_op_fn *fn, json_t **out, const char *fmt, ...)
{
    char text[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    json_t *in = json_loads(text, 0, NULL);
    ck_assert_msg(in != NULL, "bad JSON %s", text);
    memset(&last, 0, sizeof last);
    last.size = sizeof last;
    json_t *o = NULL;
    int rc = fn(inst(name)->state, in, &o, &last);
    json_decref(in);
    if (out)
        *out = o;
    else
        json_decref(o);
    return rc;
}

#define SPEC(name, key)                                                                            \
    "{\"idempotency_key\":\"" key "\",\"name\":\"" name "\",\"model\":{\"uri\":\"hf://o/m\","      \
    "\"format\":\"huggingface\"},\"replicas\":{\"min\":1,\"max\":1}}"

#define COLL_KS "/apis/serving.kserve.io/v1beta1/namespaces/llm/inferenceservices"
#define COLL_SK "/apis/apps/v1/namespaces/llm/deployments"

static const char *poll_state(const char *name, const char *id, int polls)
{
    static char st[32];
    for (int i = 0; i < polls; i++) {
        json_t *d;
        ck_assert_int_eq(
            callv(name, ops_of(name)->get_deployment, &d, "{\"external_id\":\"%s\"}", id), 0);
        snprintf(st, sizeof st, "%s", json_string_value(json_object_get(d, "state")));
        json_decref(d);
        if (strcmp(st, "progressing"))
            break;
    }
    return st;
}

/* ------------------------------------------------------------------ Status mappings, live */

START_TEST(test_live_mappings)
{
    json_t *d;
    /* 404 */
    ck_assert_int_eq(callv("ks", ops_of("ks")->get_deployment, NULL, "{\"external_id\":\"nope\"}"),
                     -1);
    ck_assert_int_eq(last.code, LLMOPS_ERR_NOT_FOUND);
    ck_assert_int_eq(last.tool_status, 404);
    /* 422 with causes: each field named. */
    fault(COLL_KS, "[{\"status\":422,\"body\":{\"kind\":\"Status\",\"apiVersion\":\"v1\","
                   "\"status\":\"Failure\",\"reason\":\"Invalid\",\"code\":422,\"details\":{"
                   "\"causes\":[{\"reason\":\"FieldValueInvalid\",\"field\":\"spec.predictor."
                   "maxReplicas\"},{\"reason\":\"FieldValueRequired\",\"field\":\"spec.predictor."
                   "model.modelFormat.name\"}]}}}]");
    ck_assert_int_eq(callv("ks", ops_of("ks")->deploy, NULL, SPEC("v1", "key-v1")), -1);
    ck_assert_int_eq(last.code, LLMOPS_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(last.message, "spec.predictor.maxReplicas"));
    ck_assert_ptr_nonnull(strstr(last.message, "spec.predictor.model.modelFormat.name"));
    /* 403 from RBAC: TOOL with the tool's status, not retried. */
    fault(COLL_SK, "[{\"status\":403,\"body\":{\"kind\":\"Status\",\"reason\":\"Forbidden\","
                   "\"code\":403}}]");
    ck_assert_int_eq(callv("sk", ops_of("sk")->deploy, NULL, SPEC("f1", "key-f1")), -1);
    ck_assert_int_eq(last.code, LLMOPS_ERR_TOOL);
    ck_assert_int_eq(last.tool_status, 403);
    ck_assert_int_eq(last.retryable, 0);
    /* 429 with Retry-After, then an answer: the host's client waited and retried. */
    fault(COLL_KS, "[{\"status\":429,\"retry_after\":1,\"body\":{\"kind\":\"Status\","
                   "\"reason\":\"TooManyRequests\",\"code\":429}}]");
    int before = count(COLL_KS);
    ck_assert_int_eq(callv("ks", ops_of("ks")->deploy, &d, SPEC("r1", "key-r1")), 0);
    ck_assert(json_is_true(json_object_get(d, "created")));
    json_decref(d);
    ck_assert_int_ge(count(COLL_KS) - before, 3); /* list, 429, dry run, create */
    ck_assert_int_eq(stored("serving.kserve.io/inferenceservices", "key-r1"), 1);
    /* 5xx until the retries are spent: TOOL, retryable. */
    fault(COLL_KS, "[{\"status\":503},{\"status\":503},{\"status\":503},{\"status\":503}]");
    ck_assert_int_eq(callv("ks", ops_of("ks")->find_by_idempotency_key, NULL,
                           "{\"idempotency_key\":\"key-r1\"}"),
                     -1);
    ck_assert_int_eq(last.code, LLMOPS_ERR_TOOL);
    ck_assert_int_eq(last.tool_status, 503);
    ck_assert_int_eq(last.retryable, 1);
    json_decref(ctl("POST", "/_reset", NULL));
    /* 409 Conflict on a write: CONFLICT, retryable (a stale resourceVersion). */
    char path[256];
    snprintf(path, sizeof path, COLL_KS "/r1");
    fault(path, "[{\"status\":409,\"body\":{\"kind\":\"Status\",\"reason\":\"Conflict\","
                "\"code\":409}}]");
    ck_assert_int_eq(callv("ks", ops_of("ks")->get_deployment, NULL, "{\"external_id\":\"r1\"}"),
                     -1);
    ck_assert_int_eq(last.code, LLMOPS_ERR_CONFLICT);
    ck_assert_int_eq(last.retryable, 1);
    /* 409 AlreadyExists with someone else's object: CONFLICT naming the key. */
    ck_assert_int_eq(callv("ks", ops_of("ks")->deploy, NULL, SPEC("r1", "key-other")), -1);
    ck_assert_int_eq(last.code, LLMOPS_ERR_CONFLICT);
    ck_assert_ptr_nonnull(strstr(last.message, "idempotency key"));
}
END_TEST

START_TEST(test_unauthorized)
{
    fake_start(NULL);
    char extra[256];
    snprintf(extra, sizeof extra, "image = x:1\ntoken_file = %s/bad", t.dir);
    tu_sh("echo wrong-token > %s/bad", t.dir);
    /* The core takes the last token_file line of a section? Use a section of its own. */
    char path[128], text[2048];
    snprintf(path, sizeof path, "%s/llm-ops.conf", t.dir);
    snprintf(text, sizeof text,
             "[server]\nplugin_dir = %s\n\n[plugin \"sk\"]\nmodule = serving-k8s\n"
             "url = http://127.0.0.1:%d\ntoken_file = %s/bad\nnamespace = llm\nimage = x:1\n",
             PLUGIN_DIR, t.port, t.dir);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    ck_assert_int_eq(conf_load(path, &t.conf, &t.errs), 0);
    plugins_load(&t.reg, &t.conf, NULL, 1, &t.errs);
    t.loaded = 1;
    ck_assert_int_eq(callv("sk", ops_of("sk")->get_deployment, NULL, "{\"external_id\":\"a\"}"),
                     -1);
    ck_assert_int_eq(last.code, LLMOPS_ERR_TOOL);
    ck_assert_int_eq(last.tool_status, 401);
    ck_assert_ptr_nonnull(strstr(last.message, "token_file"));
    ck_assert_ptr_null(strstr(last.message, "wrong-token"));
    /* The token rotates: the host reads the file again, the module works. */
    tu_sh("sleep 1; echo %s > %s/bad", TOKEN, t.dir);
    ck_assert_int_eq(callv("sk", ops_of("sk")->get_deployment, NULL, "{\"external_id\":\"a\"}"),
                     -1);
    ck_assert_int_eq(last.code, LLMOPS_ERR_NOT_FOUND);
}
END_TEST

/* A canary's read-modify-write meets a concurrent change (409 Conflict on the stale
 * resourceVersion): the module reads the object again and succeeds. */
START_TEST(test_conflict_is_retried_with_a_fresh_read)
{
    json_t *d;
    ck_assert_int_eq(callv("ks", ops_of("ks")->deploy, &d, SPEC("cf", "key-cf")), 0);
    json_decref(d);
    ck_assert_str_eq(poll_state("ks", "cf", 10), "ready");
    ck_assert_int_eq(callv("ks", ops_of("ks")->create_canary, &d,
                           "{\"external_id\":\"cf\",\"model\":{\"uri\":\"hf://o/n\","
                           "\"format\":\"huggingface\"},\"traffic_percent\":10}"),
                     0);
    json_decref(d);
    fault(COLL_KS "/cf", "[{\"pass\":true},{\"status\":409,\"body\":{\"kind\":\"Status\","
                         "\"reason\":\"Conflict\",\"code\":409}}]");
    ck_assert_int_eq(callv("ks", ops_of("ks")->set_canary_traffic, &d,
                           "{\"external_id\":\"cf\",\"traffic_percent\":30}"),
                     0);
    ck_assert_int_eq(json_integer_value(json_object_get(
                         json_object_get(json_object_get(d, "traffic"), "canary"), "percent")),
                     30);
    json_decref(d);
    ck_assert_int_eq(queued(COLL_KS "/cf"), 0);
    /* A Conflict on every attempt: CONFLICT, retryable, after 4 reads. */
    fault(COLL_KS "/cf", "[{\"pass\":true},{\"status\":409,\"body\":{\"reason\":\"Conflict\","
                         "\"kind\":\"Status\"}},{\"pass\":true},{\"status\":409,\"body\":{"
                         "\"reason\":\"Conflict\",\"kind\":\"Status\"}},{\"pass\":true},{"
                         "\"status\":409,\"body\":{\"reason\":\"Conflict\",\"kind\":"
                         "\"Status\"}},{\"pass\":true},{\"status\":409,\"body\":{\"reason\":"
                         "\"Conflict\",\"kind\":\"Status\"}}]");
    ck_assert_int_eq(callv("ks", ops_of("ks")->set_canary_traffic, NULL,
                           "{\"external_id\":\"cf\",\"traffic_percent\":40}"),
                     -1);
    ck_assert_int_eq(last.code, LLMOPS_ERR_CONFLICT);
    ck_assert_int_eq(last.retryable, 1);
    ck_assert_int_eq(queued(COLL_KS "/cf"), 0);
}
END_TEST

/* The client's verbs the modules do not all use, on the serving-k8s instance's host: list
 * with a label selector, limit and continue; merge-patch of the status subresource; dryRun
 * stores nothing; delete with DeleteOptions; pod logs as text; discovery of a core group. */
START_TEST(test_client_verbs)
{
    struct llmops_error e = {.size = sizeof e};
    struct k8s k;
    ck_assert_int_eq(k8s_init(&k, &inst("sk")->host, &e), 0);
    ck_assert_str_eq(k.ns, "llm");
    struct k8s_call c = k8s_begin(&k, "test", &e);
    char coll[256], path[256];
    ck_assert_int_eq(k8s_path(coll, sizeof coll, "", "v1", "llm", "pods", NULL, NULL), 0);
    ck_assert_str_eq(coll, "/api/v1/namespaces/llm/pods");
    for (int i = 0; i < 3; i++) {
        json_t *pod = json_pack("{s:s,s:s,s:{s:s,s:{s:s}},s:{s:[{s:s,s:s}]}}", "apiVersion", "v1",
                                "kind", "Pod", "metadata", "name",
                                i == 0   ? "p0"
                                : i == 1 ? "p1"
                                         : "p2",
                                "labels", "tier", i < 2 ? "web" : "db", "spec", "containers",
                                "name", "main", "image", "busybox:1");
        json_t *made;
        ck_assert_msg(k8s_create(&c, coll, pod, 0, &made) == 0, "%s", e.message);
        json_decref(made);
        json_decref(pod);
    }
    /* dryRun=All: answered, not stored. */
    json_t *dry = json_pack("{s:s,s:s,s:{s:s},s:{s:[{s:s,s:s}]}}", "apiVersion", "v1", "kind",
                            "Pod", "metadata", "name", "pdry", "spec", "containers", "name", "main",
                            "image", "busybox:1"),
           *o;
    ck_assert_int_eq(k8s_create(&c, coll, dry, K8S_DRY_RUN, &o), 0);
    json_decref(o);
    json_decref(dry);
    k8s_path(path, sizeof path, "", "v1", "llm", "pods", "pdry", NULL);
    ck_assert_int_eq(k8s_get(&c, path, &o), -1);
    ck_assert_int_eq(e.code, LLMOPS_ERR_NOT_FOUND);
    /* Pages of one, by selector. */
    int seen = 0, pages = 0;
    char cont[1024] = "";
    do {
        json_t *l, *items;
        const char *next;
        ck_assert_int_eq(k8s_list(&c, coll, "tier in (web)", 1, cont[0] ? cont : NULL, &l), 0);
        ck_assert_int_eq(k8s_list_parse(l, &items, &next), 0);
        seen += (int)json_array_size(items);
        snprintf(cont, sizeof cont, "%s", next ? next : "");
        json_decref(l);
        pages++;
    } while (cont[0] && pages < 10);
    ck_assert_int_eq(seen, 2);
    ck_assert_int_ge(pages, 2);
    /* An expired or forged continue token. */
    ck_assert_int_eq(k8s_list(&c, coll, NULL, 1, "not-a-token", &o), -1);
    ck_assert_int_eq(e.code, LLMOPS_ERR_INVALID);
    /* Logs as text. */
    json_decref(ctl("POST", "/_logs",
                    json_pack("{s:s,s:s,s:s,s:[s,s]}", "namespace", "llm", "pod", "p0", "container",
                              "main", "lines", "hello", "world")));
    char *text = NULL;
    int rc = k8s_logs(&c, "p0", "main", 1, &text);
    ck_assert_msg(rc == 0, "%s", e.message);
    ck_assert_ptr_nonnull(strstr(text, "world"));
    ck_assert_ptr_null(strstr(text, "hello"));
    free(text);
    /* The status subresource: only status changes. */
    k8s_path(path, sizeof path, "", "v1", "llm", "pods", "p1", "status");
    json_t *patch =
        json_pack("{s:{s:s},s:{s:s}}", "metadata", "name", "p1", "status", "phase", "Failed");
    ck_assert_int_eq(k8s_patch(&c, path, patch, 0, &o), 0);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(o, "status"), "phase")),
                     "Failed");
    json_decref(o);
    json_decref(patch);
    /* Delete with DeleteOptions; again: NOT_FOUND. */
    k8s_path(path, sizeof path, "", "v1", "llm", "pods", "p2", NULL);
    ck_assert_int_eq(k8s_delete(&c, path, "Foreground", 0, &o), 0);
    json_decref(o);
    ck_assert_int_eq(k8s_delete(&c, path, "Foreground", 0, &o), -1);
    ck_assert_int_eq(e.code, LLMOPS_ERR_NOT_FOUND);
    ck_assert_int_eq(k8s_discover(&c, "", "v1", "pods"), 0);
    ck_assert_int_eq(k8s_discover(&c, "argoproj.io", "v9", NULL), -1);
    ck_assert_str_eq(e.message, "argoproj.io/v9 is not installed in the cluster");
}
END_TEST

/* ------------------------------------------------------------------ pruning */

START_TEST(test_pruned_field_is_refused_before_storing)
{
    /* The dry run answers as a cluster with an older CRD would: created, a field pruned. */
    fault(COLL_KS,
          "[{\"pass\":true},{\"status\":201,\"headers\":{\"Warning\":\"299 - \\\"unknown field "
          "\\\\\\\"spec.predictor.scaleMetric\\\\\\\"\\\"\"},\"body\":{\"kind\":"
          "\"InferenceService\",\"apiVersion\":\"serving.kserve.io/v1beta1\","
          "\"metadata\":{\"name\":\"p1\"}}}]");
    ck_assert_int_eq(callv("ks", ops_of("ks")->deploy, NULL,
                           "{\"idempotency_key\":\"key-p1\",\"name\":\"p1\",\"model\":{\"uri\":"
                           "\"hf://o/m\",\"format\":\"huggingface\"},\"replicas\":{\"min\":1,"
                           "\"max\":3},\"autoscaling\":{\"metric\":\"rps\",\"target\":5}}"),
                     -1);
    ck_assert_int_eq(last.code, LLMOPS_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(last.message, "spec.predictor.scaleMetric"));
    ck_assert_int_eq(queued(COLL_KS), 0); /* the dry run got the Warning */
    ck_assert_int_eq(stored("serving.kserve.io/inferenceservices", "key-p1"), 0);
    /* A real pruning by the fake (a member the CRD lacks) is caught the same way. */
    json_t *d;
    ck_assert_int_eq(callv("ks", ops_of("ks")->deploy, &d,
                           "{\"idempotency_key\":\"key-p2\",\"name\":\"p2\",\"model\":{\"uri\":"
                           "\"hf://o/m\",\"format\":\"huggingface\"},\"replicas\":{\"min\":1,"
                           "\"max\":3},\"autoscaling\":{\"metric\":\"rps\",\"target\":5}}"),
                     0);
    ck_assert_str_eq(
        json_string_value(json_object_get(json_object_get(d, "autoscaling"), "metric")), "rps");
    json_decref(d);
}
END_TEST

/* ------------------------------------------------------------------ lost answers */

START_TEST(test_lost_answer_makes_one_object)
{
    json_t *d;
    /* The create is carried out and its answer never arrives: the host retries, the cluster
     * says AlreadyExists, the module finds its object by the key label. */
    fault(COLL_KS, "[{\"pass\":true},{\"pass\":true},{\"lost\":true}]");
    ck_assert_int_eq(callv("ks", ops_of("ks")->deploy, &d, SPEC("l1", "key-l1")), 0);
    ck_assert_str_eq(json_string_value(json_object_get(d, "external_id")), "l1");
    ck_assert_int_eq(queued(COLL_KS), 0); /* the create's answer was lost */
    json_decref(d);
    ck_assert_int_eq(stored("serving.kserve.io/inferenceservices", "key-l1"), 1);
    /* And the caller's own retry: created false, still one. */
    ck_assert_int_eq(callv("ks", ops_of("ks")->deploy, &d, SPEC("l1", "key-l1")), 0);
    ck_assert(json_is_false(json_object_get(d, "created")));
    json_decref(d);
    ck_assert_int_eq(stored("serving.kserve.io/inferenceservices", "key-l1"), 1);

    fault(COLL_SK, "[{\"pass\":true},{\"lost\":true}]");
    ck_assert_int_eq(callv("sk", ops_of("sk")->deploy, &d, SPEC("l2", "key-l2")), 0);
    json_decref(d);
    ck_assert_int_eq(queued(COLL_SK), 0);
    ck_assert_int_eq(stored("apps/deployments", "key-l2"), 1);
    ck_assert_int_eq(callv("sk", ops_of("sk")->deploy, &d, SPEC("l2", "key-l2")), 0);
    ck_assert(json_is_false(json_object_get(d, "created")));
    json_decref(d);
    ck_assert_int_eq(stored("apps/deployments", "key-l2"), 1);
}
END_TEST

START_TEST(test_refused)
{
    json_decref(ctl("POST", "/_refuse", json_pack("{s:i}", "seconds", 15)));
    usleep(500 * 1000); /* the fake stops listening from a thread of its own */
    ck_assert_int_eq(callv("sk", ops_of("sk")->get_deployment, NULL, "{\"external_id\":\"a\"}"),
                     -1);
    ck_assert_int_eq(last.code, LLMOPS_ERR_UNAVAILABLE);
    ck_assert_int_eq(last.retryable, 1);
}
END_TEST

/* ------------------------------------------------------------------ states */

static void controller(const char *plural, const char *name, const char *outcome, int polls)
{
    json_decref(ctl("POST", "/_controller",
                    json_pack("{s:s,s:s,s:s,s:s,s:i}", "namespace", "llm", "plural", plural, "name",
                              name, "outcome", outcome, "polls", polls)));
}

START_TEST(test_states)
{
    json_t *d;
    controller("inferenceservices", "bad", "failed", 1);
    ck_assert_int_eq(callv("ks", ops_of("ks")->deploy, &d, SPEC("bad", "key-bad")), 0);
    json_decref(d);
    ck_assert_str_eq(poll_state("ks", "bad", 10), "failed");
    ck_assert_int_eq(callv("ks", ops_of("ks")->get_deployment, &d, "{\"external_id\":\"bad\"}"), 0);
    ck_assert_ptr_nonnull(json_object_get(d, "reason"));
    ck_assert_ptr_nonnull(json_object_get(json_object_get(d, "tool"), "conditions"));
    json_decref(d);

    controller("inferenceservices", "stuck", "stuck", 1);
    ck_assert_int_eq(callv("ks", ops_of("ks")->deploy, &d, SPEC("stuck", "key-stuck")), 0);
    json_decref(d);
    ck_assert_str_eq(poll_state("ks", "stuck", 8), "progressing");

    ck_assert_int_eq(callv("ks", ops_of("ks")->deploy, &d, SPEC("good", "key-good")), 0);
    json_decref(d);
    ck_assert_str_eq(poll_state("ks", "good", 10), "ready");
    ck_assert_int_eq(callv("ks", ops_of("ks")->get_deployment, &d, "{\"external_id\":\"good\"}"),
                     0);
    ck_assert_str_eq(json_string_value(json_object_get(d, "url")), "http://good.llm.example.com");
    json_decref(d);

    controller("deployments", "skbad", "failed", 1);
    ck_assert_int_eq(callv("sk", ops_of("sk")->deploy, &d, SPEC("skbad", "key-skbad")), 0);
    json_decref(d);
    ck_assert_str_eq(poll_state("sk", "skbad", 10), "failed");
    ck_assert_int_eq(callv("sk", ops_of("sk")->get_deployment, &d, "{\"external_id\":\"skbad\"}"),
                     0);
    ck_assert_str_eq(json_string_value(json_object_get(d, "reason")), "ProgressDeadlineExceeded");
    json_decref(d);
    controller("deployments", "skstuck", "stuck", 1);
    ck_assert_int_eq(callv("sk", ops_of("sk")->deploy, &d, SPEC("skstuck", "key-skstuck")), 0);
    json_decref(d);
    ck_assert_str_eq(poll_state("sk", "skstuck", 8), "progressing");
}
END_TEST

START_TEST(test_gpu_and_autoscaling_objects)
{
    json_t *d;
    ck_assert_int_eq(
        callv("sk", ops_of("sk")->deploy, &d,
              "{\"idempotency_key\":\"key-g\",\"name\":\"g1\",\"model\":{\"uri\":\"hf://o/m\","
              "\"format\":\"huggingface\"},\"replicas\":{\"min\":1,\"max\":4},\"autoscaling\":{"
              "\"metric\":\"cpu\",\"target\":70},\"resources\":{\"cpu\":\"2\",\"gpu\":{"
              "\"resource_name\":\"nvidia.com/mig-1g.10gb\",\"count\":1,\"node_selector\":{"
              "\"nvidia.com/gpu.product\":\"A100\"}}}}"),
        0);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(d, "replicas"), "max")), 4);
    ck_assert_str_eq(
        json_string_value(json_object_get(json_object_get(d, "autoscaling"), "metric")), "cpu");
    json_t *gpu = json_object_get(json_object_get(d, "resources"), "gpu");
    ck_assert_str_eq(json_string_value(json_object_get(gpu, "resource_name")),
                     "nvidia.com/mig-1g.10gb");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(gpu, "node_selector"),
                                                       "nvidia.com/gpu.product")),
                     "A100");
    json_decref(d);
    /* The HPA exists; removing autoscaling deletes it and fixes the replicas. */
    json_t *hpa = ctl("GET", "/_state", NULL);
    char *text = json_dumps(hpa, JSON_COMPACT);
    ck_assert_ptr_nonnull(strstr(text, "HorizontalPodAutoscaler"));
    free(text);
    json_decref(hpa);
    ck_assert_int_eq(callv("sk", ops_of("sk")->update_deployment, &d,
                           "{\"external_id\":\"g1\",\"replicas\":{\"min\":2,\"max\":2},"
                           "\"autoscaling\":null}"),
                     0);
    ck_assert_ptr_null(json_object_get(d, "autoscaling"));
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(d, "replicas"), "min")), 2);
    json_decref(d);
    /* An unknown metric for this module: UNSUPPORTED naming what it scales on. */
    ck_assert_int_eq(callv("sk", ops_of("sk")->deploy, NULL,
                           "{\"idempotency_key\":\"key-h\",\"name\":\"h1\",\"model\":{\"uri\":"
                           "\"hf://o/m\",\"format\":\"x\"},\"replicas\":{\"min\":1,\"max\":4},"
                           "\"autoscaling\":{\"metric\":\"rps\",\"target\":5}}"),
                     -1);
    ck_assert_int_eq(last.code, LLMOPS_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(last.message, "cpu, memory"));
}
END_TEST

/* serving-k8s's split is the ratio of ready replicas: 3 stable and 1 canary pod are 25 %. */
START_TEST(test_split_by_replicas)
{
    json_t *d;
    ck_assert_int_eq(callv("sk", ops_of("sk")->deploy, &d,
                           "{\"idempotency_key\":\"key-sp\",\"name\":\"sp\",\"model\":{"
                           "\"uri\":\"hf://o/m\",\"format\":\"x\"},\"replicas\":{\"min\":3,"
                           "\"max\":3}}"),
                     0);
    json_decref(d);
    ck_assert_str_eq(poll_state("sk", "sp", 10), "ready");
    ck_assert_int_eq(callv("sk", ops_of("sk")->create_canary, &d,
                           "{\"external_id\":\"sp\",\"image\":\"ghcr.io/example/srv:2\","
                           "\"canary_replicas\":1}"),
                     0);
    json_decref(d);
    int pct = -1;
    for (int i = 0; i < 10 && pct != 25; i++) {
        ck_assert_int_eq(callv("sk", ops_of("sk")->get_deployment, &d, "{\"external_id\":\"sp\"}"),
                         0);
        pct = (int)json_integer_value(
            json_object_get(json_object_get(json_object_get(d, "traffic"), "canary"), "percent"));
        if (pct == 25) {
            ck_assert_int_eq(
                json_integer_value(json_object_get(
                    json_object_get(json_object_get(d, "traffic"), "stable"), "percent")),
                75);
            ck_assert_str_eq(
                json_string_value(json_object_get(json_object_get(d, "canary"), "image")),
                "ghcr.io/example/srv:2");
            ck_assert_str_eq(json_string_value(json_object_get(d, "image")),
                             "ghcr.io/example/srv:1");
        }
        json_decref(d);
    }
    ck_assert_int_eq(pct, 25);
    /* The canary scaled to 3: an even split. */
    ck_assert_int_eq(callv("sk", ops_of("sk")->set_canary_traffic, &d,
                           "{\"external_id\":\"sp\",\"canary_replicas\":3}"),
                     0);
    json_decref(d);
    for (int i = 0; i < 10 && pct != 50; i++) {
        ck_assert_int_eq(callv("sk", ops_of("sk")->get_deployment, &d, "{\"external_id\":\"sp\"}"),
                         0);
        pct = (int)json_integer_value(
            json_object_get(json_object_get(json_object_get(d, "traffic"), "canary"), "percent"));
        json_decref(d);
    }
    ck_assert_int_eq(pct, 50);
}
END_TEST

/* ------------------------------------------------------------------ configuration */

/* In a pod: https with the service account's CA (ca_file) and token file; the paths are the
 * test's own. */
START_TEST(test_tls_with_ca_file)
{
    char dir[64];
    snprintf(dir, sizeof dir, "/tmp/llmops-serving-tls-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    ck_assert_int_eq(tu_sh("openssl req -x509 -newkey rsa:2048 -nodes -keyout %s/key.pem -out "
                           "%s/ca.crt -days 2 -subj /CN=k8s-fake -addext "
                           "subjectAltName=IP:127.0.0.1,DNS:localhost >/dev/null 2>&1",
                           dir, dir),
                     0);
    char cert[128], key[128];
    snprintf(cert, sizeof cert, "%s/ca.crt", dir);
    snprintf(key, sizeof key, "%s/key.pem", dir);
    const char *extra[] = {"--tls-cert", cert, "--tls-key", key, NULL};
    fake_start(extra);
    char path[128], text[1024];
    snprintf(path, sizeof path, "%s/llm-ops.conf", t.dir);
    snprintf(text, sizeof text,
             "[server]\nplugin_dir = %s\n\n[plugin \"ks\"]\nmodule = kserve\n"
             "url = https://127.0.0.1:%d\ntoken_file = %s/token\nca_file = %s\nnamespace = llm\n",
             PLUGIN_DIR, t.port, t.dir, cert);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    ck_assert_int_eq(conf_load(path, &t.conf, &t.errs), 0);
    ck_assert_int_eq(plugins_load(&t.reg, &t.conf, NULL, 1, &t.errs), 0);
    t.loaded = 1;
    json_t *d;
    ck_assert_int_eq(callv("ks", ops_of("ks")->deploy, &d, SPEC("tls1", "key-tls1")), 0);
    ck_assert(json_is_true(json_object_get(d, "created")));
    json_decref(d);
    tu_sh("rm -rf %s", dir);
}
END_TEST

START_TEST(test_missing_crd)
{
    const char *extra[] = {"--crd", WORKFLOW_CRD, NULL};
    fake_start(extra);
    load(NULL, NULL);
    struct instance *ks = plugins_find(&t.reg, "ks");
    ck_assert_ptr_nonnull(ks);
    ck_assert(!ks->initialised);
    ck_assert_msg(strstr(ks->reason, "serving.kserve.io/v1beta1 is not installed in the cluster"),
                  "%s", ks->reason);
    /* serving-k8s needs no CRD. */
    inst("sk");
}
END_TEST

START_TEST(test_config_errors)
{
    fake_start(NULL);
    ck_assert_int_gt(load("image = x:1", "deployment_mode = Knative"), 0);
    struct instance *ks = plugins_find(&t.reg, "ks");
    ck_assert(!ks->initialised);
    ck_assert_msg(strstr(ks->reason, "llm-ops.conf:") && strstr(ks->reason, "deployment_mode"),
                  "%s", ks->reason);
    plugins_unload(&t.reg);
    conf_free(&t.conf);
    conf_errors_free(&t.errs);
    t.loaded = 0;
    /* No namespace: namespace_file is read (its newline trimmed) and must hold a label. */
    for (int round = 0; round < 2; round++) {
        tu_sh("printf '%s' > %s/ns", round == 0 ? "bad_NS" : "llm\\n", t.dir);
        char path[128], text[1024];
        snprintf(path, sizeof path, "%s/llm-ops.conf", t.dir);
        snprintf(text, sizeof text,
                 "[server]\nplugin_dir = %s\n\n[plugin \"sk\"]\nmodule = serving-k8s\n"
                 "url = http://127.0.0.1:%d\ntoken_file = %s/token\nimage = x:1\n"
                 "namespace_file = %s/ns\n",
                 PLUGIN_DIR, t.port, t.dir, t.dir);
        FILE *f = fopen(path, "w");
        fputs(text, f);
        fclose(f);
        ck_assert_int_eq(conf_load(path, &t.conf, &t.errs), 0);
        int problems = plugins_load(&t.reg, &t.conf, NULL, 1, &t.errs);
        t.loaded = 1;
        struct instance *sk = plugins_find(&t.reg, "sk");
        if (round == 0) {
            ck_assert_int_gt(problems, 0);
            ck_assert(!sk->initialised);
            ck_assert_msg(strstr(sk->reason, "llm-ops.conf:") &&
                              strstr(sk->reason, "not a DNS-1123 label"),
                          "%s", sk->reason);
            plugins_unload(&t.reg);
            conf_free(&t.conf);
            conf_errors_free(&t.errs);
            t.loaded = 0;
        } else {
            ck_assert_int_eq(problems, 0);
            struct llmops_error e = {.size = sizeof e};
            struct k8s k;
            ck_assert_int_eq(k8s_init(&k, &sk->host, &e), 0);
            ck_assert_str_eq(k.ns, "llm");
        }
    }
}
END_TEST

START_TEST(test_health)
{
    json_t *info = NULL;
    struct llmops_error e = {.size = sizeof e};
    struct instance *ks = inst("ks");
    ck_assert_int_eq(ks->mod->desc->health(ks->state, &info, &e), 0);
    ck_assert_str_eq(json_string_value(json_object_get(info, "api")), "serving.kserve.io/v1beta1");
    ck_assert_ptr_nonnull(json_object_get(info, "tool_version"));
    json_decref(info);
    json_t *caps = NULL;
    ck_assert_int_eq(ks->mod->desc->capabilities(ks->state, &caps, &e), 0);
    char *text = json_dumps(caps, JSON_COMPACT);
    ck_assert_ptr_nonnull(strstr(text, "\"canary_percent\""));
    ck_assert_ptr_nonnull(strstr(text, "\"scale_to_zero\""));
    free(text);
    json_decref(caps);
    struct instance *sk = inst("sk");
    ck_assert_int_eq(sk->mod->desc->capabilities(sk->state, &caps, &e), 0);
    text = json_dumps(caps, JSON_COMPACT);
    ck_assert_ptr_nonnull(strstr(text, "\"canary_by_replicas\""));
    ck_assert_ptr_null(strstr(text, "\"canary_percent\""));
    free(text);
    json_decref(caps);
}
END_TEST

/* ------------------------------------------------------------------ rayserve */

static void rs_setup(void)
{
    fake_start_script(RAYSERVE_FAKE, NULL);
    char path[128], text[1024];
    snprintf(path, sizeof path, "%s/llm-ops.conf", t.dir);
    snprintf(text, sizeof text,
             "[server]\nplugin_dir = %s\n\n[plugin \"rs\"]\nmodule = rayserve\n"
             "url = http://127.0.0.1:%d\ntimeout_ms = 4000\nretries = 2\n"
             "import_path = serve_llm:app\n",
             PLUGIN_DIR, t.port);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    ck_assert_int_eq(conf_load(path, &t.conf, &t.errs), 0);
    ck_assert_int_eq(plugins_load(&t.reg, &t.conf, NULL, 1, &t.errs), 0);
    t.loaded = 1;
}

START_TEST(test_rayserve_document)
{
    /* Someone else's application is in the document: every write keeps it. */
    json_t *other = json_loads("{\"applications\":[{\"name\":\"theirs\",\"route_prefix\":"
                               "\"/theirs\",\"import_path\":\"their:app\"}]}",
                               0, NULL);
    char *text = json_dumps(other, JSON_COMPACT);
    struct llmops_http_request req = {.size = sizeof req,
                                      .method = "PUT",
                                      .path = "/api/serve/applications/",
                                      .body = text,
                                      .body_len = strlen(text)};
    struct llmops_http_response resp = {.size = sizeof resp};
    struct llmops_error err = {.size = sizeof err};
    ck_assert_int_eq(httpc_request(t.ctl, &req, &resp, &err), 0);
    ck_assert_int_eq(resp.status, 200);
    httpc_response_free(&resp);
    free(text);
    json_decref(other);
    json_t *d;
    ck_assert_int_eq(
        callv("rs", ops_of("rs")->deploy, &d,
              "{\"idempotency_key\":\"key-a\",\"name\":\"a1\",\"model\":{\"uri\":\"hf://o/m\","
              "\"format\":\"huggingface\"},\"replicas\":{\"min\":1,\"max\":3},\"autoscaling\":{"
              "\"metric\":\"ongoing_requests\",\"target\":4},\"resources\":{\"cpu\":\"500m\","
              "\"memory\":\"1Gi\",\"gpu\":{\"resource_name\":\"nvidia.com/gpu\",\"count\":2}},"
              "\"args\":[\"--max-model-len=4096\"],\"env\":{\"A\":\"b\"}}"),
        0);
    ck_assert(json_is_true(json_object_get(d, "created")));
    json_decref(d);
    json_t *doc = ctl("GET", "/api/serve/applications/", NULL);
    json_t *apps = json_object_get(doc, "applications");
    ck_assert_ptr_nonnull(json_object_get(apps, "theirs"));
    json_t *cfg = json_object_get(json_object_get(apps, "a1"), "deployed_app_config");
    json_t *dep = json_array_get(json_object_get(cfg, "deployments"), 0);
    json_t *rao = json_object_get(dep, "ray_actor_options");
    ck_assert(json_number_value(json_object_get(rao, "num_cpus")) == 0.5);
    ck_assert_int_eq(json_integer_value(json_object_get(rao, "memory")), 1073741824);
    ck_assert_int_eq(json_integer_value(json_object_get(rao, "num_gpus")), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(dep, "autoscaling_config"),
                                                        "target_ongoing_requests")),
                     4);
    ck_assert_str_eq(json_string_value(json_object_get(cfg, "route_prefix")), "/a1");
    ck_assert_str_eq(
        json_string_value(json_array_get(json_object_get(json_object_get(cfg, "args"), "argv"), 0)),
        "--max-model-len=4096");
    json_decref(doc);
    /* theirs is not listed, not deletable through the module, and survives a delete. */
    ck_assert_int_eq(
        callv("rs", ops_of("rs")->get_deployment, NULL, "{\"external_id\":\"theirs\"}"), -1);
    ck_assert_int_eq(last.code, LLMOPS_ERR_NOT_FOUND);
    ck_assert_int_eq(callv("rs", ops_of("rs")->delete_deployment, &d, "{\"external_id\":\"a1\"}"),
                     0);
    ck_assert(json_is_true(json_object_get(d, "deleted")));
    json_decref(d);
    doc = ctl("GET", "/api/serve/applications/", NULL);
    ck_assert_ptr_nonnull(json_object_get(json_object_get(doc, "applications"), "theirs"));
    json_decref(doc);
    /* A GPU kind Ray cannot tell apart, a canary, an image: refused by name. */
    ck_assert_int_eq(
        callv("rs", ops_of("rs")->deploy, NULL,
              "{\"idempotency_key\":\"key-b\",\"name\":\"b1\",\"model\":{\"uri\":\"hf://o/m\","
              "\"format\":\"x\"},\"replicas\":{\"min\":1,\"max\":1},\"resources\":{\"gpu\":{"
              "\"resource_name\":\"nvidia.com/mig-1g.10gb\",\"count\":1}}}"),
        -1);
    ck_assert_int_eq(last.code, LLMOPS_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(last.message, "gpu_resource"));
    ck_assert_int_eq(callv("rs", ops_of("rs")->create_canary, NULL,
                           "{\"external_id\":\"a1\",\"traffic_percent\":10}"),
                     -1);
    ck_assert_int_eq(last.code, LLMOPS_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(last.message, "\"canary\""));
    ck_assert_int_eq(callv("rs", ops_of("rs")->deploy, NULL,
                           "{\"idempotency_key\":\"key-c\",\"name\":\"c1\",\"image\":\"x\","
                           "\"model\":{\"uri\":\"hf://o/m\",\"format\":\"x\"},\"replicas\":{"
                           "\"min\":1,\"max\":1}}"),
                     -1);
    ck_assert_int_eq(last.code, LLMOPS_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(last.message, "\"image\""));
}
END_TEST

START_TEST(test_rayserve_states_and_faults)
{
    json_t *d;
    json_decref(
        ctl("POST", "/_app",
            json_pack("{s:s,s:s,s:i}", "name", "bad", "outcome", "deploy_failed", "polls", 1)));
    ck_assert_int_eq(callv("rs", ops_of("rs")->deploy, &d, SPEC("bad", "key-bad")), 0);
    json_decref(d);
    ck_assert_str_eq(poll_state("rs", "bad", 10), "failed");
    ck_assert_int_eq(callv("rs", ops_of("rs")->get_deployment, &d, "{\"external_id\":\"bad\"}"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(d, "reason")), "DEPLOY_FAILED");
    json_decref(d);
    /* A lost answer to the PUT: the host repeats it (PUT is idempotent), one application. */
    fault("/api/serve/applications/", "[{\"pass\":true},{\"lost\":true}]");
    ck_assert_int_eq(callv("rs", ops_of("rs")->deploy, &d, SPEC("l1", "key-l1")), 0);
    json_decref(d);
    ck_assert_int_eq(queued("/api/serve/applications/"), 0);
    ck_assert_int_eq(callv("rs", ops_of("rs")->deploy, &d, SPEC("l1", "key-l1")), 0);
    ck_assert(json_is_false(json_object_get(d, "created")));
    json_decref(d);
    /* 503 throughout: TOOL, retryable. */
    fault("/api/serve/applications/", "[{\"status\":503},{\"status\":503},{\"status\":503}]");
    ck_assert_int_eq(callv("rs", ops_of("rs")->get_deployment, NULL, "{\"external_id\":\"l1\"}"),
                     -1);
    ck_assert_int_eq(last.code, LLMOPS_ERR_TOOL);
    ck_assert_int_eq(last.retryable, 1);
}
END_TEST

int main(void)
{
    log_set_level(LOG_LVL_ERROR);
    Suite *s = suite_create("serving");
    TCase *parse = tcase_create("parse");
    tcase_add_test(parse, test_status_mapping);
    tcase_add_test(parse, test_warning_parse);
    tcase_add_test(parse, test_list_parse);
    tcase_add_test(parse, test_rfc3339);
    tcase_add_test(parse, test_split_checks);
    suite_add_tcase(s, parse);
    TCase *live = tcase_create("live");
    tcase_add_checked_fixture(live, setup, teardown);
    tcase_set_timeout(live, 60);
    tcase_add_test(live, test_live_mappings);
    tcase_add_test(live, test_pruned_field_is_refused_before_storing);
    tcase_add_test(live, test_conflict_is_retried_with_a_fresh_read);
    tcase_add_test(live, test_client_verbs);
    tcase_add_test(live, test_split_by_replicas);
    tcase_add_test(live, test_lost_answer_makes_one_object);
    tcase_add_test(live, test_refused);
    tcase_add_test(live, test_states);
    tcase_add_test(live, test_gpu_and_autoscaling_objects);
    tcase_add_test(live, test_health);
    suite_add_tcase(s, live);
    TCase *cfg = tcase_create("config");
    tcase_add_checked_fixture(cfg, NULL, teardown);
    tcase_set_timeout(cfg, 60);
    tcase_add_test(cfg, test_unauthorized);
    tcase_add_test(cfg, test_missing_crd);
    tcase_add_test(cfg, test_tls_with_ca_file);
    tcase_add_test(cfg, test_config_errors);
    suite_add_tcase(s, cfg);
    TCase *ray = tcase_create("rayserve");
    tcase_add_checked_fixture(ray, rs_setup, teardown);
    tcase_set_timeout(ray, 60);
    tcase_add_test(ray, test_rayserve_document);
    tcase_add_test(ray, test_rayserve_states_and_faults);
    suite_add_tcase(s, ray);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
