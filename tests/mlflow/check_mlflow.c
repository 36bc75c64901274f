/* The mlflow module, loaded by the core's loader from a configuration file, against
 * tests/fakes/mlflow_fake.py (an in-memory MLflow 2.14 built from the recorded transcript):
 * every operation, the error mappings, NaN and +/-Infinity both ways, idempotent creates after
 * a lost answer, refused and hanging servers, 429 with Retry-After, 5xx, token and basic auth,
 * the version check of health — and, without a server, the parsing half (mlflow_parse.c,
 * compiled in) with table-driven cases. Each test starts its own fake on a free port. */
#include "conf.h"
#include "httpclient.h"
#include "log.h"
#include "mlflow_parse.h"
#include "plugin.h"
#include "testutil.h"
#include "tracking.h"
#include "util.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define SECRET_TOKEN "s3cr3t-T0KEN-mlflow-42"
#define KEY_TAG LLMOPS_TRACKING_KEY_TAG
#define API "/api/2.0/mlflow/"

/* ------------------------------------------------------------------ the fake and the module */

static struct {
    pid_t pid;
    int port;
    char dir[64];
    struct httpc *ctl; /* to the fake's control routes */
    struct llmops_conf conf;
    struct conf_errors errs;
    struct plugin_registry reg;
    int loaded;
    struct instance *in;
    const struct llmops_tracking_ops *ops;
} t;

static void fake_start(const char *const *extra)
{
    snprintf(t.dir, sizeof t.dir, "/tmp/llmops-mlflow-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(t.dir));
    t.port = tu_free_port();
    char port[16], ready[128];
    snprintf(port, sizeof port, "%d", t.port);
    snprintf(ready, sizeof ready, "%s/ready", t.dir);
    const char *argv[24] = {PYTHON3,
                            MLFLOW_FAKE,
                            "--port",
                            port,
                            "--ready-file",
                            ready,
                            "--max-seconds",
                            "120",
                            "--idle-timeout",
                            "60",
                            "--exit-with-parent",
                            "--cleanup-dir",
                            t.dir};
    int n = 13; /* a failed test skips its teardown: the fake exits and removes t.dir */
    for (; extra && *extra && n < 23; extra++)
        argv[n++] = *extra;
    argv[n] = NULL;
    posix_spawn_file_actions_t fa; /* its "PORT n" line is not the test's output */
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    /* Its own process group: Check kills a failed test's group at once, and the fake must
     * outlive that long enough to notice and remove t.dir. */
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attr, 0);
    int rc = posix_spawnp(&t.pid, PYTHON3, &fa, &attr, (char *const *)argv, environ);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    ck_assert_msg(rc == 0, "cannot start %s: %s", MLFLOW_FAKE, strerror(rc));
    struct stat sb;
    for (int i = 0; i < 200 && stat(ready, &sb) != 0; i++)
        usleep(50 * 1000);
    ck_assert_msg(stat(ready, &sb) == 0, "the fake did not become ready on port %d", t.port);
    char base[64];
    snprintf(base, sizeof base, "http://127.0.0.1:%d", t.port);
    struct httpc_config hc = {.base_url = base, .total_timeout_ms = 5000, .verify_tls = 1};
    t.ctl = httpc_new(&hc);
    ck_assert_ptr_nonnull(t.ctl);
}

/* Whether `extra` (lines of a section) sets `key`. */
static int sets(const char *extra, const char *key)
{
    size_t n = strlen(key);
    for (const char *l = extra; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : "")
        if (strncmp(l, key, n) == 0 && (l[n] == ' ' || l[n] == '='))
            return 1;
    return 0;
}

/* Writes the configuration — url pointing at the fake, short timeouts, unless `extra` sets
 * them — and loads it with plugins_load, as llm-opsd does. Returns the number of problems. */
static int load_config(const char *extra, int expect_ok)
{
    char path[128], text[2048];
    snprintf(path, sizeof path, "%s/llm-ops.conf", t.dir);
    snprintf(text, sizeof text,
             "[server]\nplugin_dir = %s\n\n[plugin \"mlflow\"]\nmodule = mlflow\n", PLUGIN_DIR);
    size_t used = strlen(text);
    if (!sets(extra, "url"))
        used += (size_t)snprintf(text + used, sizeof text - used, "url = http://127.0.0.1:%d\n",
                                 t.port);
    if (!sets(extra, "timeout_ms"))
        used += (size_t)snprintf(text + used, sizeof text - used, "timeout_ms = 3000\n");
    snprintf(text + used, sizeof text - used, "connect_timeout_ms = 500\nretries = 2\n%s",
             extra ? extra : "");
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    ck_assert_int_eq(conf_load(path, &t.conf, &t.errs), 0);
    int problems = plugins_load(&t.reg, &t.conf, NULL, 1, &t.errs);
    t.loaded = 1;
    t.in = plugins_find(&t.reg, "mlflow");
    ck_assert_ptr_nonnull(t.in);
    if (expect_ok) {
        for (int i = 0; i < t.errs.n; i++)
            fprintf(stderr, "  %s\n", t.errs.msgs[i]);
        ck_assert_int_eq(problems, 0);
        ck_assert_int_eq(t.in->st, INSTANCE_OK);
        t.ops = t.in->mod->desc->ops;
    }
    return problems;
}

static void start(const char *const *fake_args, const char *config)
{
    fake_start(fake_args);
    load_config(config, 1);
}

static void teardown(void)
{
    if (t.loaded) {
        plugins_unload(&t.reg);
        conf_free(&t.conf);
        conf_errors_free(&t.errs);
    }
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

/* ------------------------------------------------------------------ talking to the fake */

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
    ck_assert_int_eq(resp.status, 200);
    json_t *j = json_loadb(resp.body, resp.body_len, 0, NULL);
    httpc_response_free(&resp);
    ck_assert_ptr_nonnull(j);
    return j;
}

/* Queues faults for a path: `responses` is a JSON array in text. */
static void fault(const char *path, const char *responses)
{
    json_t *r = json_loads(responses, 0, NULL);
    ck_assert_msg(r != NULL, "bad fault JSON %s", responses);
    json_decref(ctl("POST", "/_faults", json_pack("{s:s,s:o}", "path", path, "responses", r)));
}

/* How many requests reached a path. */
static int count(const char *path)
{
    json_t *s = ctl("GET", "/_stats", NULL);
    int n = (int)json_integer_value(json_object_get(json_object_get(s, "counts"), path));
    json_decref(s);
    return n;
}

/* The Authorization header the fake last saw on a path. */
static char *seen_auth(const char *path)
{
    static char v[256];
    json_t *s = ctl("GET", "/_stats", NULL);
    const char *a = json_string_value(
        json_object_get(json_object_get(json_object_get(s, "headers"), path), "Authorization"));
    snprintf(v, sizeof v, "%s", a ? a : "");
    json_decref(s);
    return v;
}

static void set_version(const char *v)
{
    json_decref(ctl("POST", "/_config", json_pack("{s:s}", "version", v)));
}

/* The fake's stored objects. */
static json_t *state(void)
{
    return ctl("GET", "/_state", NULL);
}

/* How many stored experiments have `name`, or runs carry the idempotency tag `key`. */
static int stored(const char *what, const char *field, const char *value)
{
    json_t *s = state();
    size_t i;
    json_t *o;
    int n = 0;
    json_array_foreach(json_object_get(s, what), i, o)
    {
        const char *v = strcmp(field, "name") == 0
                            ? json_string_value(json_object_get(o, "name"))
                            : json_string_value(json_object_get(json_object_get(o, "tags"), field));
        if (v && strcmp(v, value) == 0)
            n++;
    }
    json_decref(s);
    return n;
}

/* ------------------------------------------------------------------ calling ops */

static struct llmops_error last;

static int vcall(llmops_op_fn *fn, json_t **out, const char *fmt, va_list ap)
{
    char text[4096];
    vsnprintf(text, sizeof text, fmt, ap);
    json_error_t je;
    json_t *in = json_loads(text, 0, &je);
    ck_assert_msg(in != NULL, "bad test input %s: %s", text, je.text);
    ck_assert_ptr_nonnull(fn);
    /* as the core calls it: `in` checked against the operations table (which the module
     * trusts), then the module; the op is the one in slot fn */
    size_t n;
    const struct llmops_op_desc *tab = llmops_tracking_op_table(&n);
    const char *name = NULL;
    for (size_t i = 0; i < n && !name; i++) {
        llmops_op_fn *slot;
        memcpy(&slot, (const char *)t.ops + tab[i].slot, sizeof slot);
        if (slot == fn)
            name = tab[i].name;
    }
    ck_assert_ptr_nonnull(name);
    int rc = track_call(NULL, t.in, name, in, out, &last);
    json_decref(in);
    return rc;
}

/* An op that must succeed: returns its answer (the caller releases it). */
static json_t *ok(llmops_op_fn *fn, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static json_t *ok(llmops_op_fn *fn, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    json_t *out;
    int rc = vcall(fn, &out, fmt, ap);
    va_end(ap);
    ck_assert_msg(rc == 0, "op failed (%d): %s", last.code, last.message);
    ck_assert_msg(json_is_object(out), "op answered no object");
    return out;
}

/* An op that must fail with `code`: returns the error (also in `last`). */
static struct llmops_error fails(enum llmops_status code, llmops_op_fn *fn, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static struct llmops_error fails(enum llmops_status code, llmops_op_fn *fn, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    json_t *out;
    int rc = vcall(fn, &out, fmt, ap);
    va_end(ap);
    char *dump = out ? json_dumps(out, JSON_COMPACT) : NULL;
    ck_assert_msg(rc == -1, "op should have failed with %d, answered %s", code,
                  dump ? dump : "(nothing)");
    free(dump);
    ck_assert_ptr_null(out);
    ck_assert_msg(last.code == code, "expected code %d, got %d: %s", code, last.code, last.message);
    ck_assert_int_gt(strlen(last.message), 0);
    /* one short line, never MLflow's raw text (SQL, HTML) or a secret */
    static const char *const banned[] = {"\n",    "INSERT", "sqlite",     "SELECT",    "<html",
                                         "<!doc", "<title", SECRET_TOKEN, "pw-s3cr3t", "Traceback"};
    for (size_t i = 0; i < sizeof banned / sizeof banned[0]; i++)
        ck_assert_msg(!strstr(last.message, banned[i]), "message holds '%s': %s", banned[i],
                      last.message);
    return last;
}

static const char *s_of(json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    ck_assert_msg(v != NULL, "member %s is not a string", k);
    return v;
}

static long long i_of(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    ck_assert_msg(json_is_integer(v), "member %s is not an integer", k);
    return (long long)json_integer_value(v);
}

static int is_true(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    ck_assert_msg(json_is_boolean(v), "member %s is not a boolean", k);
    return json_is_true(v);
}

static int64_t now_ms(void)
{
    return util_now_ms();
}

#define OPS t.ops

/* Creates an experiment and returns its id (static buffer per call site: copy it). */
static void new_experiment(const char *key, const char *name, char *id, size_t size)
{
    json_t *e =
        ok(OPS->create_experiment, "{\"idempotency_key\": \"%s\", \"name\": \"%s\"}", key, name);
    snprintf(id, size, "%s", s_of(e, "external_id"));
    json_decref(e);
    usleep(3000); /* MLflow orders experiments by creation time (ms), then id */
}

static void new_run(const char *exp, const char *key, long long start, const char *extra, char *id,
                    size_t size)
{
    json_t *r = ok(OPS->create_run,
                   "{\"idempotency_key\": \"%s\", \"experiment_id\": \"%s\", "
                   "\"start_time_ms\": %lld%s}",
                   key, exp, start, extra ? extra : "");
    ck_assert(is_true(r, "created"));
    snprintf(id, size, "%s", s_of(r, "external_id"));
    json_decref(r);
}

/* ------------------------------------------------------------------ Core: every op */

START_TEST(test_descriptor_and_capabilities)
{
    start(NULL, NULL);
    const struct llmops_plugin *d = t.in->mod->desc;
    ck_assert_str_eq(d->name, "mlflow");
    ck_assert_int_eq(d->category, LLMOPS_CATEGORY_EXPERIMENT_TRACKING);
    ck_assert_str_eq(d->tool_version_min, "2.9");
    ck_assert_str_eq(d->tool_version_max, "3.99");
    ck_assert_ptr_null(llmops_tracking_missing_op(OPS));
    json_t *caps = NULL;
    struct llmops_error err = {.size = sizeof err};
    ck_assert_int_eq(d->capabilities(t.in->state, &caps, &err), 0);
    json_t *list = json_object_get(caps, "operations");
    static const char *const names[] = {
#define NAME_(member, required) #member,
        LLMOPS_TRACKING_OPS(NAME_)
#undef NAME_
    };
    ck_assert_int_eq(json_array_size(list), sizeof names / sizeof names[0]);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        ck_assert_str_eq(json_string_value(json_array_get(list, i)), names[i]);
    json_decref(caps);
    /* exactly one exported symbol (hidden visibility for everything else) */
    int st;
    char *syms =
        tu_capture(&st, "nm -D --defined-only %s/mlflow.so | awk '{print $3}'", PLUGIN_DIR);
    ck_assert_int_eq(st, 0);
    ck_assert_str_eq(syms, "llmops_plugin_entry\n");
}
END_TEST

START_TEST(test_health_version_check)
{
    start(NULL, NULL);
    const struct llmops_plugin *d = t.in->mod->desc;
    static const struct {
        const char *version;
        int supported;
    } cases[] = {{"2.14.3", 1}, {"2.9.0", 1}, {"2.8.1", 0},
                 {"3.1.0", 1},  {"4.0.0", 0}, {"2.20.0rc1", 1}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        set_version(cases[i].version);
        json_t *info = NULL;
        struct llmops_error err = {.size = sizeof err};
        ck_assert_int_eq(d->health(t.in->state, &info, &err), 0);
        ck_assert_str_eq(s_of(info, "tool_version"), cases[i].version);
        ck_assert_msg(is_true(info, "supported") == cases[i].supported, "%s", cases[i].version);
        /* the range the core checks it against agrees */
        int in_range =
            util_version_in_range(cases[i].version, d->tool_version_min, d->tool_version_max);
        ck_assert_int_eq(in_range, cases[i].supported);
        json_decref(info);
    }
    ck_assert_int_eq(count("/version"), 6);
    /* an answer that is no version: not an MLflow server */
    set_version("<html>hello</html>");
    json_t *info = NULL;
    struct llmops_error err = {.size = sizeof err};
    ck_assert_int_eq(d->health(t.in->state, &info, &err), -1);
    ck_assert_int_eq(err.code, LLMOPS_ERR_TOOL);
    ck_assert_ptr_null(strstr(err.message, "<html"));
    /* down: UNAVAILABLE */
    fault("/version", "[{\"status\": 503}, {\"status\": 503}, {\"status\": 503}]");
    ck_assert_int_eq(d->health(t.in->state, &info, &err), -1);
    ck_assert_int_eq(err.code, LLMOPS_ERR_TOOL);
    ck_assert_int_eq(err.retryable, 1);
    ck_assert_int_eq(err.tool_status, 503);
}
END_TEST

START_TEST(test_experiments)
{
    start(NULL, NULL);
    char link[128];
    json_t *e = ok(OPS->create_experiment,
                   "{\"idempotency_key\": \"exp-key-1\", \"name\": \"heldout-exp\", "
                   "\"tags\": {\"team\": \"c-fcgi\"}}");
    ck_assert(is_true(e, "created"));
    ck_assert_str_eq(s_of(e, "external_id"), "1"); /* a string, never a number */
    ck_assert_str_eq(s_of(e, "name"), "heldout-exp");
    ck_assert_str_eq(s_of(e, "lifecycle"), "active");
    ck_assert_int_eq(json_object_size(json_object_get(e, "tags")), 1); /* key tag hidden */
    ck_assert_str_eq(s_of(json_object_get(e, "tags"), "team"), "c-fcgi");
    ck_assert_int_gt(i_of(e, "created_ms"), 1700000000000LL);
    ck_assert_int_gt(i_of(e, "updated_ms"), 1700000000000LL);
    snprintf(link, sizeof link, "http://127.0.0.1:%d/#/experiments/1", t.port);
    ck_assert_str_eq(s_of(json_object_get(e, "links"), "ui"), link);
    ck_assert_str_eq(s_of(json_object_get(e, "tool"), "artifact_location"),
                     "/srv/mlflow/artifacts/1");
    json_decref(e);
    /* the key lives in MLflow, as a tag */
    ck_assert_int_eq(stored("experiments", KEY_TAG, "exp-key-1"), 1);

    /* the same create again: the first experiment, created false */
    e = ok(OPS->create_experiment,
           "{\"idempotency_key\": \"exp-key-1\", \"name\": \"heldout-exp\"}");
    ck_assert(!is_true(e, "created"));
    ck_assert_str_eq(s_of(e, "external_id"), "1");
    ck_assert_str_eq(s_of(json_object_get(e, "tags"), "team"), "c-fcgi");
    json_decref(e);
    ck_assert_int_eq(stored("experiments", "name", "heldout-exp"), 1);
    /* another key, same name: CONFLICT (MLflow's 400 RESOURCE_ALREADY_EXISTS, SQL not shown) */
    struct llmops_error err = fails(LLMOPS_ERR_CONFLICT, OPS->create_experiment,
                                    "{\"idempotency_key\": \"exp-key-2\", \"name\": "
                                    "\"heldout-exp\"}");
    ck_assert_int_eq(err.tool_status, 400);
    ck_assert_int_eq(err.retryable, 0);

    e = ok(OPS->get_experiment, "{\"external_id\": \"1\"}");
    ck_assert_str_eq(s_of(e, "name"), "heldout-exp");
    ck_assert_ptr_null(json_object_get(json_object_get(e, "tags"), KEY_TAG));
    ck_assert_ptr_null(json_object_get(e, "created"));
    json_decref(e);
    e = ok(OPS->get_experiment, "{\"external_id\": \"0\"}");
    ck_assert_str_eq(s_of(e, "name"), "Default");
    ck_assert_int_eq(json_object_size(json_object_get(e, "tags")), 0); /* omitted by MLflow */
    json_decref(e);
    err = fails(LLMOPS_ERR_NOT_FOUND, OPS->get_experiment, "{\"external_id\": \"999999\"}");
    ck_assert_int_eq(err.tool_status, 404);

    /* tags */
    json_decref(ok(OPS->set_experiment_tags,
                   "{\"external_id\": \"1\", \"tags\": {\"team\": \"ml\", \"stage\": \"x\"}}"));
    e = ok(OPS->get_experiment, "{\"external_id\": \"1\"}");
    ck_assert_str_eq(s_of(json_object_get(e, "tags"), "team"), "ml");
    ck_assert_str_eq(s_of(json_object_get(e, "tags"), "stage"), "x");
    ck_assert_int_eq(json_object_size(json_object_get(e, "tags")), 2);
    json_decref(e);
    int before = count(API "experiments/set-experiment-tag");
    fails(LLMOPS_ERR_INVALID, OPS->set_experiment_tags,
          "{\"external_id\": \"1\", \"tags\": {\"" KEY_TAG "\": \"stolen\"}}");
    ck_assert_int_eq(count(API "experiments/set-experiment-tag"), before);
    ck_assert_int_eq(stored("experiments", KEY_TAG, "exp-key-1"), 1);
    fails(LLMOPS_ERR_NOT_FOUND, OPS->set_experiment_tags,
          "{\"external_id\": \"424242\", \"tags\": {\"a\": \"b\"}}");

    /* delete: once true, then false; the name stays taken */
    e = ok(OPS->delete_experiment, "{\"external_id\": \"1\"}");
    ck_assert(is_true(e, "deleted"));
    json_decref(e);
    e = ok(OPS->delete_experiment, "{\"external_id\": \"1\"}");
    ck_assert(!is_true(e, "deleted"));
    json_decref(e);
    e = ok(OPS->delete_experiment, "{\"external_id\": \"31337\"}");
    ck_assert(!is_true(e, "deleted"));
    json_decref(e);
    e = ok(OPS->get_experiment, "{\"external_id\": \"1\"}");
    ck_assert_str_eq(s_of(e, "lifecycle"), "deleted");
    json_decref(e);
    fails(LLMOPS_ERR_CONFLICT, OPS->create_experiment,
          "{\"idempotency_key\": \"exp-key-3\", \"name\": \"heldout-exp\"}");
    e = ok(OPS->create_experiment,
           "{\"idempotency_key\": \"exp-key-1\", \"name\": \"heldout-exp\"}");
    ck_assert(!is_true(e, "created"));
    ck_assert_str_eq(s_of(e, "lifecycle"), "deleted");
    json_decref(e);
    fails(LLMOPS_ERR_INVALID, OPS->set_experiment_tags,
          "{\"external_id\": \"1\", \"tags\": {\"a\": \"b\"}}");
    fails(LLMOPS_ERR_INVALID, OPS->create_run,
          "{\"idempotency_key\": \"r\", \"experiment_id\": \"1\", \"start_time_ms\": 1}");
    fails(LLMOPS_ERR_INVALID, OPS->create_experiment,
          "{\"idempotency_key\": \"k9\", \"name\": \"x\", \"tags\": {\"" KEY_TAG "\": \"k\"}}");
}
END_TEST

/* Every page of a search, its items' `field` joined with ','. */
static void all_pages(llmops_op_fn *fn, const char *list, const char *field, const char *in,
                      int max, char *joined, size_t size, int *pages)
{
    char token[2100] = "";
    joined[0] = '\0';
    *pages = 0;
    for (;;) {
        char tokpart[2200] = "";
        if (token[0])
            snprintf(tokpart, sizeof tokpart, ", \"page_token\": \"%s\"", token);
        json_t *o = ok(fn, "{%s%s\"max_results\": %d%s}", in, *in ? ", " : "", max, tokpart);
        (*pages)++;
        ck_assert_int_le(json_array_size(json_object_get(o, list)), (size_t)max);
        size_t i;
        json_t *x;
        json_array_foreach(json_object_get(o, list), i, x)
        {
            if (joined[0])
                strncat(joined, ",", size - strlen(joined) - 1);
            strncat(joined, s_of(x, field), size - strlen(joined) - 1);
        }
        const char *next = json_string_value(json_object_get(o, "next_page_token"));
        snprintf(token, sizeof token, "%s", next ? next : "");
        json_decref(o);
        if (!next)
            break;
        ck_assert_int_lt(*pages, 50);
    }
}

START_TEST(test_search_experiments)
{
    start(NULL, NULL);
    char id[64];
    new_experiment("e1", "alpha-1", id, sizeof id);
    new_experiment("e2", "alpha-2", id, sizeof id);
    new_experiment("e3", "alpha_3", id, sizeof id);
    new_experiment("e4", "alphaX4", id, sizeof id);
    new_experiment("e5", "it's quoted", id, sizeof id);
    char names[512];
    int pages;
    all_pages(OPS->search_experiments, "experiments", "name", "\"name_prefix\": \"alpha\"", 2,
              names, sizeof names, &pages);
    /* newest first; MLflow's full last page still carries a token: a third, empty page */
    ck_assert_str_eq(names, "alphaX4,alpha_3,alpha-2,alpha-1");
    ck_assert_int_eq(pages, 3);
    /* a literal prefix: MLflow's LIKE reads _ as any character, the module filters again */
    all_pages(OPS->search_experiments, "experiments", "name", "\"name_prefix\": \"alpha_\"", 100,
              names, sizeof names, &pages);
    ck_assert_str_eq(names, "alpha_3");
    all_pages(OPS->search_experiments, "experiments", "name", "\"name\": \"alpha-1\"", 10, names,
              sizeof names, &pages);
    ck_assert_str_eq(names, "alpha-1");
    all_pages(OPS->search_experiments, "experiments", "name", "\"name\": \"it's quoted\"", 10,
              names, sizeof names, &pages);
    ck_assert_str_eq(names, "it's quoted");
    all_pages(OPS->search_experiments, "experiments", "name", "", 100, names, sizeof names, &pages);
    ck_assert_str_eq(names, "it's quoted,alphaX4,alpha_3,alpha-2,alpha-1,Default");
    /* lifecycle */
    json_decref(ok(OPS->delete_experiment, "{\"external_id\": \"2\"}"));
    all_pages(OPS->search_experiments, "experiments", "name",
              "\"name_prefix\": \"alpha\", \"lifecycle\": \"deleted\"", 10, names, sizeof names,
              &pages);
    ck_assert_str_eq(names, "alpha-2");
    all_pages(OPS->search_experiments, "experiments", "name",
              "\"name_prefix\": \"alpha\", \"lifecycle\": \"all\"", 10, names, sizeof names,
              &pages);
    ck_assert_str_eq(names, "alphaX4,alpha_3,alpha-2,alpha-1");
    all_pages(OPS->search_experiments, "experiments", "name", "\"name_prefix\": \"alpha\"", 10,
              names, sizeof names, &pages);
    ck_assert_str_eq(names, "alphaX4,alpha_3,alpha-1");
    /* a name no quoting carries: refused before anything is sent */
    int before = count(API "experiments/search");
    fails(LLMOPS_ERR_INVALID, OPS->search_experiments,
          "{\"name\": \"both ' and \\\"\", \"max_results\": 10}");
    ck_assert_int_eq(count(API "experiments/search"), before);
    /* a token MLflow refuses */
    fails(LLMOPS_ERR_INVALID, OPS->search_experiments,
          "{\"max_results\": 10, \"page_token\": \"%%%%%%\"}");
    fails(LLMOPS_ERR_INVALID, OPS->search_experiments,
          "{\"max_results\": 10, \"page_token\": \"with blank\"}");
}
END_TEST

START_TEST(test_runs)
{
    start(NULL, NULL);
    char exp[64], id[64], link[256];
    new_experiment("exp", "runs-exp", exp, sizeof exp);
    json_t *r = ok(OPS->create_run,
                   "{\"idempotency_key\": \"run-key-1\", \"experiment_id\": \"%s\", \"name\": "
                   "\"run-1\", \"start_time_ms\": 1795713258923, \"user\": \"alice\", \"tags\": "
                   "{\"source\": \"curl\"}}",
                   exp);
    ck_assert(is_true(r, "created"));
    snprintf(id, sizeof id, "%s", s_of(r, "external_id"));
    ck_assert_int_eq(strlen(id), 32);
    ck_assert_int_eq(strspn(id, "0123456789abcdef"), 32);
    ck_assert_str_eq(s_of(r, "experiment_id"), exp);
    ck_assert_str_eq(s_of(r, "name"), "run-1");
    ck_assert_str_eq(s_of(r, "status"), "RUNNING");
    ck_assert_str_eq(s_of(r, "lifecycle"), "active");
    ck_assert_str_eq(s_of(r, "user"), "alice");
    ck_assert_int_eq(i_of(r, "start_time_ms"), 1795713258923LL);
    ck_assert_ptr_null(json_object_get(r, "end_time_ms"));
    json_t *tags = json_object_get(r, "tags");
    ck_assert_str_eq(s_of(tags, "source"), "curl");
    ck_assert_str_eq(s_of(tags, "mlflow.runName"), "run-1");
    ck_assert_ptr_null(json_object_get(tags, KEY_TAG));
    ck_assert_int_eq(json_object_size(json_object_get(r, "params")), 0);
    ck_assert_int_eq(json_array_size(json_object_get(r, "metrics")), 0);
    snprintf(link, sizeof link, "http://127.0.0.1:%d/#/experiments/%s/runs/%s", t.port, exp, id);
    ck_assert_str_eq(s_of(json_object_get(r, "links"), "ui"), link);
    ck_assert_ptr_nonnull(strstr(s_of(json_object_get(r, "tool"), "artifact_uri"), id));
    json_decref(r);
    ck_assert_int_eq(stored("runs", KEY_TAG, "run-key-1"), 1);

    /* again: found by its tag first, nothing created */
    r = ok(OPS->create_run,
           "{\"idempotency_key\": \"run-key-1\", \"experiment_id\": \"%s\", \"name\": "
           "\"run-1\", \"start_time_ms\": 1795713258923}",
           exp);
    ck_assert(!is_true(r, "created"));
    ck_assert_str_eq(s_of(r, "external_id"), id);
    json_decref(r);
    ck_assert_int_eq(count(API "runs/create"), 1);
    ck_assert_int_eq(stored("runs", KEY_TAG, "run-key-1"), 1);

    /* no name: MLflow invents one, the answer has it */
    r = ok(OPS->create_run,
           "{\"idempotency_key\": \"run-key-2\", \"experiment_id\": \"%s\", \"start_time_ms\": 5}",
           exp);
    const char *invented = s_of(r, "name");
    ck_assert_int_gt(strlen(invented), 3);
    ck_assert_ptr_nonnull(strchr(invented, '-'));
    ck_assert_int_eq(i_of(r, "start_time_ms"), 5);
    json_decref(r);

    r = ok(OPS->get_run, "{\"external_id\": \"%s\"}", id);
    ck_assert_str_eq(s_of(r, "name"), "run-1");
    ck_assert_str_eq(s_of(r, "user"), "alice");
    json_decref(r);
    fails(LLMOPS_ERR_NOT_FOUND, OPS->get_run,
          "{\"external_id\": \"00000000000000000000000000000000\"}");

    /* status is checked here: MLflow would answer 200 and ignore it */
    fails(LLMOPS_ERR_INVALID, OPS->update_run, "{\"external_id\": \"%s\", \"status\": \"DONE\"}",
          id);
    fails(LLMOPS_ERR_INVALID, OPS->update_run,
          "{\"external_id\": \"%s\", \"status\": \"SCHEDULED\"}", id);
    ck_assert_int_eq(count(API "runs/update"), 0);
    r = ok(OPS->update_run,
           "{\"external_id\": \"%s\", \"status\": \"FINISHED\", \"end_time_ms\": 1795713263923}",
           id);
    ck_assert_str_eq(s_of(r, "status"), "FINISHED");
    ck_assert_int_eq(i_of(r, "end_time_ms"), 1795713263923LL);
    ck_assert_str_eq(s_of(r, "name"), "run-1");
    ck_assert_ptr_null(json_object_get(r, "params")); /* a RunInfo */
    json_decref(r);
    r = ok(OPS->update_run, "{\"external_id\": \"%s\", \"name\": \"renamed\"}", id);
    ck_assert_str_eq(s_of(r, "name"), "renamed");
    ck_assert_str_eq(s_of(r, "status"), "FINISHED");
    json_decref(r);
    r = ok(OPS->get_run, "{\"external_id\": \"%s\"}", id);
    ck_assert_str_eq(s_of(r, "name"), "renamed");
    ck_assert_str_eq(s_of(json_object_get(r, "tags"), "mlflow.runName"), "renamed");
    json_decref(r);
    fails(LLMOPS_ERR_NOT_FOUND, OPS->update_run,
          "{\"external_id\": \"0123456789abcdef0123456789abcdef\", \"status\": \"KILLED\"}");

    /* delete */
    r = ok(OPS->delete_run, "{\"external_id\": \"%s\"}", id);
    ck_assert(is_true(r, "deleted"));
    json_decref(r);
    r = ok(OPS->delete_run, "{\"external_id\": \"%s\"}", id);
    ck_assert(!is_true(r, "deleted"));
    json_decref(r);
    r = ok(OPS->delete_run, "{\"external_id\": \"0123456789abcdef0123456789abcdef\"}");
    ck_assert(!is_true(r, "deleted"));
    json_decref(r);
    r = ok(OPS->get_run, "{\"external_id\": \"%s\"}", id);
    ck_assert_str_eq(s_of(r, "lifecycle"), "deleted");
    json_decref(r);
    fails(LLMOPS_ERR_INVALID, OPS->update_run, "{\"external_id\": \"%s\", \"status\": \"FAILED\"}",
          id);
    fails(LLMOPS_ERR_INVALID, OPS->log_batch,
          "{\"external_id\": \"%s\", \"params\": {\"a\": \"b\"}}", id);
    /* the create of a deleted run's key still finds it */
    r = ok(OPS->create_run,
           "{\"idempotency_key\": \"run-key-1\", \"experiment_id\": \"%s\", \"start_time_ms\": 1}",
           exp);
    ck_assert(!is_true(r, "created"));
    ck_assert_str_eq(s_of(r, "lifecycle"), "deleted");
    json_decref(r);

    fails(LLMOPS_ERR_NOT_FOUND, OPS->create_run,
          "{\"idempotency_key\": \"k\", \"experiment_id\": \"999999\", \"start_time_ms\": 1}");
    fails(LLMOPS_ERR_INVALID, OPS->create_run,
          "{\"idempotency_key\": \"k\", \"experiment_id\": \"%s\", \"start_time_ms\": 1, "
          "\"tags\": {\"" KEY_TAG "\": \"x\"}}",
          exp);
}
END_TEST

START_TEST(test_log_batch_and_history)
{
    start(NULL, NULL);
    char exp[64], id[64];
    new_experiment("exp", "batch-exp", exp, sizeof exp);
    new_run(exp, "run", 1795713258923LL, NULL, id, sizeof id);
#define BATCH                                                                                      \
    "{\"external_id\": \"%s\", \"metrics\": ["                                                     \
    "{\"key\": \"loss\", \"value\": 0.9, \"timestamp_ms\": 1000, \"step\": 2},"                    \
    "{\"key\": \"loss\", \"value\": 0.5, \"timestamp_ms\": 3000, \"step\": 1},"                    \
    "{\"key\": \"loss\", \"value\": 0.7, \"timestamp_ms\": 2000, \"step\": 1},"                    \
    "{\"key\": \"loss\", \"value\": 0.25, \"timestamp_ms\": 4000, \"step\": 3},"                   \
    "{\"key\": \"acc\", \"value\": 3, \"timestamp_ms\": 4000}],"                                   \
    "\"params\": {\"lr\": \"0.01\", \"batch_size\": \"32\"},"                                      \
    "\"tags\": {\"stage\": \"test\"}}"
    json_t *o = ok(OPS->log_batch, BATCH, id);
    ck_assert_int_eq(json_object_size(o), 0);
    json_decref(o);
    json_t *r = ok(OPS->get_run, "{\"external_id\": \"%s\"}", id);
    ck_assert_str_eq(s_of(json_object_get(r, "params"), "lr"), "0.01");
    ck_assert_str_eq(s_of(json_object_get(r, "params"), "batch_size"), "32");
    ck_assert_str_eq(s_of(json_object_get(r, "tags"), "stage"), "test");
    json_t *metrics = json_object_get(r, "metrics");
    ck_assert_int_eq(json_array_size(metrics), 2); /* the latest point of each key */
    json_t *loss = json_array_get(metrics, 0);
    ck_assert_str_eq(s_of(loss, "key"), "loss");
    ck_assert(json_real_value(json_object_get(loss, "value")) == 0.25);
    ck_assert_int_eq(i_of(loss, "step"), 3);
    ck_assert_int_eq(i_of(loss, "timestamp_ms"), 4000);
    json_t *acc = json_array_get(metrics, 1);
    ck_assert(json_number_value(json_object_get(acc, "value")) == 3.0);
    ck_assert_int_eq(i_of(acc, "step"), 0);
    json_decref(r);

    /* the history, by step then timestamp (MLflow answers in insertion order) */
    o = ok(OPS->get_metric_history,
           "{\"external_id\": \"%s\", \"key\": \"loss\", "
           "\"max_results\": 1000}",
           id);
    static const double want[] = {0.7, 0.5, 0.9, 0.25};
    static const long long ts[] = {2000, 3000, 1000, 4000};
    json_t *h = json_object_get(o, "metrics");
    ck_assert_int_eq(json_array_size(h), 4);
    for (size_t i = 0; i < 4; i++) {
        ck_assert(json_real_value(json_object_get(json_array_get(h, i), "value")) == want[i]);
        ck_assert_int_eq(i_of(json_array_get(h, i), "timestamp_ms"), ts[i]);
    }
    ck_assert_ptr_null(json_object_get(o, "next_page_token"));
    json_decref(o);

    /* a replayed batch adds nothing */
    json_decref(ok(OPS->log_batch, BATCH, id));
    o = ok(OPS->get_metric_history,
           "{\"external_id\": \"%s\", \"key\": \"loss\", \"max_results\": 1000}", id);
    ck_assert_int_eq(json_array_size(json_object_get(o, "metrics")), 4);
    json_decref(o);

    /* paging of the module's own (MLflow 2.14 ignores max_results) */
    o = ok(OPS->get_metric_history,
           "{\"external_id\": \"%s\", \"key\": \"loss\", \"max_results\": 3}", id);
    ck_assert_int_eq(json_array_size(json_object_get(o, "metrics")), 3);
    char token[64];
    snprintf(token, sizeof token, "%s", s_of(o, "next_page_token"));
    json_decref(o);
    o = ok(OPS->get_metric_history,
           "{\"external_id\": \"%s\", \"key\": \"loss\", \"max_results\": 3, \"page_token\": "
           "\"%s\"}",
           id, token);
    ck_assert_int_eq(json_array_size(json_object_get(o, "metrics")), 1);
    ck_assert(json_real_value(json_object_get(json_array_get(json_object_get(o, "metrics"), 0),
                                              "value")) == 0.25);
    ck_assert_ptr_null(json_object_get(o, "next_page_token"));
    json_decref(o);
    fails(LLMOPS_ERR_INVALID, OPS->get_metric_history,
          "{\"external_id\": \"%s\", \"key\": \"loss\", \"max_results\": 3, \"page_token\": "
          "\"abc\"}",
          id);
    o = ok(OPS->get_metric_history,
           "{\"external_id\": \"%s\", \"key\": \"never\", \"max_results\": 10}", id);
    ck_assert_int_eq(json_array_size(json_object_get(o, "metrics")), 0); /* MLflow: {} */
    json_decref(o);
    /* MLflow 2.14 answers 200 {} for the history of a run it does not have ... */
    json_t *none = ctl(
        "GET", API "metrics/get-history?run_id=00000000000000000000000000000000&metric_key=loss",
        NULL);
    ck_assert_int_eq(json_object_size(none), 0);
    json_decref(none);
    /* ... and the module still says so */
    fails(LLMOPS_ERR_NOT_FOUND, OPS->get_metric_history,
          "{\"external_id\": \"00000000000000000000000000000000\", \"key\": \"loss\", "
          "\"max_results\": 10}");

    /* params never change */
    fails(LLMOPS_ERR_CONFLICT, OPS->log_batch,
          "{\"external_id\": \"%s\", \"params\": {\"lr\": \"0.02\"}}", id);
    json_decref(
        ok(OPS->log_batch, "{\"external_id\": \"%s\", \"params\": {\"lr\": \"0.01\"}}", id));
    int before = count(API "runs/log-batch");
    fails(LLMOPS_ERR_INVALID, OPS->log_batch,
          "{\"external_id\": \"%s\", \"tags\": {\"" KEY_TAG "\": \"x\"}}", id);
    fails(LLMOPS_ERR_INVALID, OPS->log_batch,
          "{\"external_id\": \"%s\", \"metrics\": [{\"key\": \"a\", \"value\": \"nope\", "
          "\"timestamp_ms\": 1}]}",
          id);
    ck_assert_int_eq(count(API "runs/log-batch"), before);
    fails(LLMOPS_ERR_NOT_FOUND, OPS->log_batch,
          "{\"external_id\": \"00000000000000000000000000000000\", \"params\": {\"a\": \"b\"}}");
}
END_TEST

START_TEST(test_nan_and_infinity)
{
    start(NULL, NULL);
    char exp[64], id[64];
    new_experiment("exp", "nan-exp", exp, sizeof exp);
    new_run(exp, "run", 1795713258923LL, NULL, id, sizeof id);
    json_decref(ok(OPS->log_batch,
                   "{\"external_id\": \"%s\", \"metrics\": ["
                   "{\"key\": \"v\", \"value\": \"NaN\", \"timestamp_ms\": 11, \"step\": 0},"
                   "{\"key\": \"v\", \"value\": \"Infinity\", \"timestamp_ms\": 12, \"step\": 1},"
                   "{\"key\": \"v\", \"value\": \"-Infinity\", \"timestamp_ms\": 13, \"step\": 2},"
                   "{\"key\": \"v\", \"value\": 1.5, \"timestamp_ms\": 14, \"step\": 3},"
                   "{\"key\": \"w\", \"value\": \"-Infinity\", \"timestamp_ms\": 15}]}",
                   id));
    /* MLflow got strings (a bare NaN token would be stored as 0 at time 0) */
    json_t *s = state();
    json_t *pts = json_object_get(json_array_get(json_object_get(s, "runs"), 0), "metrics");
    ck_assert_int_eq(json_array_size(pts), 5);
    static const char *const stored_as[] = {"nan", "inf", "-inf", "1.5", "-inf"};
    for (size_t i = 0; i < 5; i++) {
        ck_assert_str_eq(s_of(json_array_get(pts, i), "value"), stored_as[i]);
        ck_assert_int_eq(i_of(json_array_get(pts, i), "timestamp"), 11 + (long long)i);
    }
    json_decref(s);
    /* and they read back as written */
    json_t *o = ok(OPS->get_metric_history,
                   "{\"external_id\": \"%s\", \"key\": \"v\", \"max_results\": 10}", id);
    json_t *h = json_object_get(o, "metrics");
    ck_assert_int_eq(json_array_size(h), 4);
    ck_assert_str_eq(s_of(json_array_get(h, 0), "value"), "NaN");
    ck_assert_str_eq(s_of(json_array_get(h, 1), "value"), "Infinity");
    ck_assert_str_eq(s_of(json_array_get(h, 2), "value"), "-Infinity");
    ck_assert(json_real_value(json_object_get(json_array_get(h, 3), "value")) == 1.5);
    ck_assert_int_eq(i_of(json_array_get(h, 2), "timestamp_ms"), 13);
    json_decref(o);
    json_t *r = ok(OPS->get_run, "{\"external_id\": \"%s\"}", id);
    json_t *latest = json_object_get(r, "metrics");
    ck_assert_int_eq(json_array_size(latest), 2);
    ck_assert_str_eq(s_of(json_array_get(latest, 1), "key"), "w");
    ck_assert_str_eq(s_of(json_array_get(latest, 1), "value"), "-Infinity");
    json_decref(r);
}
END_TEST

/* Calls an op with a JSON value built here (too big for the text helpers); returns rc. */
static int call_json(llmops_op_fn *fn, json_t *in, json_t **out)
{
    memset(&last, 0, sizeof last);
    last.size = sizeof last;
    *out = NULL;
    int rc = fn(t.in->state, in, out, &last);
    json_decref(in);
    return rc;
}

/* How many points of the fake's run are exactly this one (value as the fake stores it). */
static int points_held(const char *run, const char *key, const char *value, long long ts,
                       long long step)
{
    json_t *s = state();
    size_t i, k;
    json_t *r, *p;
    int n = 0;
    json_array_foreach(json_object_get(s, "runs"), i, r)
    {
        if (strcmp(s_of(r, "id"), run) != 0)
            continue;
        json_array_foreach(json_object_get(r, "metrics"), k, p)
        {
            if (strcmp(s_of(p, "key"), key) == 0 && strcmp(s_of(p, "value"), value) == 0 &&
                i_of(p, "timestamp") == ts && i_of(p, "step") == step)
                n++;
        }
    }
    json_decref(s);
    return n;
}

static size_t points_of(const char *run)
{
    json_t *s = state();
    size_t i, n = 0;
    json_t *r;
    json_array_foreach(json_object_get(s, "runs"), i, r)
    {
        if (strcmp(s_of(r, "id"), run) == 0)
            n = json_array_size(json_object_get(r, "metrics"));
    }
    json_decref(s);
    return n;
}

#define NAN_BATCH                                                                                  \
    "{\"external_id\": \"%s\", \"metrics\": ["                                                     \
    "{\"key\": \"loss\", \"value\": \"NaN\", \"timestamp_ms\": 100, \"step\": 1},"                 \
    "{\"key\": \"loss\", \"value\": 0.5, \"timestamp_ms\": 200, \"step\": 2},"                     \
    "{\"key\": \"grad\", \"value\": \"NaN\", \"timestamp_ms\": 100, \"step\": 1},"                 \
    "{\"key\": \"grad\", \"value\": \"Infinity\", \"timestamp_ms\": 200, \"step\": 2}],"           \
    "\"params\": {\"lr\": \"0.01\"}, \"tags\": {\"stage\": \"nan\"}}"

/* Every point of NAN_BATCH, once. */
static void expect_nan_batch(const char *id)
{
    ck_assert_int_eq(points_of(id), 4);
    ck_assert_int_eq(points_held(id, "loss", "nan", 100, 1), 1);
    ck_assert_int_eq(points_held(id, "loss", "0.5", 200, 2), 1);
    ck_assert_int_eq(points_held(id, "grad", "nan", 100, 1), 1);
    ck_assert_int_eq(points_held(id, "grad", "inf", 200, 2), 1);
    json_t *r = ok(OPS->get_run, "{\"external_id\": \"%s\"}", id);
    ck_assert_str_eq(s_of(json_object_get(r, "params"), "lr"), "0.01");
    ck_assert_str_eq(s_of(json_object_get(r, "tags"), "stage"), "nan");
    json_decref(r);
}

START_TEST(test_nan_sent_again)
{
    start(NULL, NULL);
    char exp[64], id[64];
    new_experiment("exp", "nan-again", exp, sizeof exp);
    new_run(exp, "run", 1795713258923LL, NULL, id, sizeof id);
    json_decref(ok(OPS->log_batch, NAN_BATCH, id));
    expect_nan_batch(id);
    /* MLflow refuses the same batch again: NaN never equals the NaN it holds */
    int before = count(API "runs/log-batch");
    json_t *refused = json_pack("{s:s,s:[{s:s,s:s,s:i,s:i}]}", "run_id", id, "metrics", "key",
                                "loss", "value", "NaN", "timestamp", 100, "step", 1);
    char *text = json_dumps(refused, JSON_COMPACT);
    json_decref(refused);
    struct llmops_http_request req = {.size = sizeof req,
                                      .method = "POST",
                                      .path = API "runs/log-batch",
                                      .body = text,
                                      .body_len = strlen(text),
                                      .content_type = "application/json"};
    struct llmops_http_response resp = {.size = sizeof resp};
    struct llmops_error err = {.size = sizeof err};
    ck_assert_int_eq(httpc_request(t.ctl, &req, &resp, &err), 0);
    free(text);
    ck_assert_int_eq(resp.status, 400);
    json_t *body = json_loadb(resp.body, resp.body_len, 0, NULL);
    httpc_response_free(&resp);
    ck_assert_str_eq(s_of(body, "error_code"), "BAD_REQUEST");
    ck_assert_ptr_nonnull(strstr(s_of(body, "message"), "UNIQUE constraint failed: metrics.key, "
                                                        "metrics.timestamp, metrics.step, "
                                                        "metrics.run_uuid, metrics.value, "
                                                        "metrics.is_nan"));
    json_decref(body);
    ck_assert_int_eq(count(API "runs/log-batch"), before + 1);

    /* through the module: the same body again is safe, twice over */
    for (int round = 0; round < 2; round++) {
        before = count(API "runs/log-batch");
        json_t *o = ok(OPS->log_batch, NAN_BATCH, id);
        ck_assert_int_eq(json_object_size(o), 0);
        json_decref(o);
        /* refused, then the points it does not hold (none) with the params and tags */
        ck_assert_int_eq(count(API "runs/log-batch"), before + 2);
        expect_nan_batch(id);
    }
    /* a batch holding new points beside the stored NaN ones: only the new ones are sent again */
    json_decref(ok(OPS->log_batch,
                   "{\"external_id\": \"%s\", \"metrics\": ["
                   "{\"key\": \"loss\", \"value\": \"NaN\", \"timestamp_ms\": 100, \"step\": 1},"
                   "{\"key\": \"loss\", \"value\": \"NaN\", \"timestamp_ms\": 300, \"step\": 3},"
                   "{\"key\": \"loss\", \"value\": 0.25, \"timestamp_ms\": 400, \"step\": 4}]}",
                   id));
    ck_assert_int_eq(points_of(id), 6);
    ck_assert_int_eq(points_held(id, "loss", "nan", 300, 3), 1);
    ck_assert_int_eq(points_held(id, "loss", "0.25", 400, 4), 1);
    json_t *o = ok(OPS->get_metric_history,
                   "{\"external_id\": \"%s\", \"key\": \"loss\", \"max_results\": 10}", id);
    ck_assert_int_eq(json_array_size(json_object_get(o, "metrics")), 4);
    ck_assert_str_eq(s_of(json_array_get(json_object_get(o, "metrics"), 2), "value"), "NaN");
    json_decref(o);
    /* the same NaN point twice in one batch (MLflow would refuse it even once) */
    before = count(API "runs/log-batch");
    json_decref(ok(OPS->log_batch,
                   "{\"external_id\": \"%s\", \"metrics\": ["
                   "{\"key\": \"twice\", \"value\": \"NaN\", \"timestamp_ms\": 5, \"step\": 0},"
                   "{\"key\": \"twice\", \"value\": \"NaN\", \"timestamp_ms\": 5, \"step\": 0}]}",
                   id));
    ck_assert_int_eq(count(API "runs/log-batch"), before + 1);
    ck_assert_int_eq(points_held(id, "twice", "nan", 5, 0), 1);
    /* a refusal no stored point explains is reported as it came, after one look */
    fault(API "runs/log-batch",
          "[{\"status\": 400, \"body\": {\"error_code\": \"BAD_REQUEST\", \"message\": "
          "\"(sqlite3.IntegrityError) something else\"}}]");
    before = count(API "metrics/get-history");
    struct llmops_error e = fails(LLMOPS_ERR_INVALID, OPS->log_batch,
                                  "{\"external_id\": \"%s\", \"metrics\": [{\"key\": \"fresh\", "
                                  "\"value\": \"NaN\", \"timestamp_ms\": 9, \"step\": 0}]}",
                                  id);
    ck_assert_int_eq(e.tool_status, 400);
    ck_assert_ptr_nonnull(strstr(e.message, "BAD_REQUEST"));
    ck_assert_int_eq(count(API "metrics/get-history"), before + 1);
    ck_assert_int_eq(points_held(id, "fresh", "nan", 9, 0), 0);
}
END_TEST

START_TEST(test_replay_refused_by_slices)
{
    /* MLflow filters a replay's stored points per slice of 100 of its points' keys: a key that
     * only shows after the first 100 points is refused by the UNIQUE constraint, NaN or not */
    start(NULL, NULL);
    char exp[64], id[64];
    new_experiment("exp", "slices", exp, sizeof exp);
    new_run(exp, "run", 1795713258923LL, NULL, id, sizeof id);
    json_t *ms = json_array();
    for (int i = 0; i < 150; i++)
        json_array_append_new(ms, json_pack("{s:s,s:f,s:i,s:i}", "key", "loss", "value", i / 4.0,
                                            "timestamp_ms", 1000 + i, "step", i));
    for (int i = 0; i < 10; i++)
        json_array_append_new(ms, json_pack("{s:s,s:i,s:i,s:i}", "key", "acc", "value", i,
                                            "timestamp_ms", 1000 + i, "step", i));
    json_t *in = json_pack("{s:s,s:o}", "external_id", id, "metrics", ms), *out;
    for (int round = 0; round < 3; round++) {
        int before = count(API "runs/log-batch"), read = count(API "metrics/get-history");
        ck_assert_msg(call_json(OPS->log_batch, json_incref(in), &out) == 0, "round %d: %s", round,
                      last.message);
        json_decref(out);
        /* a replay is refused, then the module reads both keys' points: all are stored */
        ck_assert_int_eq(count(API "metrics/get-history"), read + (round ? 2 : 0));
        /* a replay is refused once, then nothing is left to send: no second call */
        ck_assert_int_eq(count(API "runs/log-batch"), before + 1);
        ck_assert_int_eq(points_of(id), 160);
    }
    json_decref(in);
}
END_TEST

START_TEST(test_search_runs)
{
    start(NULL, NULL);
    char exp[64], exp2[64], a[64], b[64], c[64], d[64], e[64];
    new_experiment("exp", "search-exp", exp, sizeof exp);
    new_experiment("exp2", "other-exp", exp2, sizeof exp2);
    static const char *const runs[][4] = {
        /* key, name, start_time_ms, status */
        {"ka", "alpha", "1000", "FINISHED"},
        {"kb", "beta", "2000", "RUNNING"},
        {"kc", "gamma", "3000", "KILLED"},
    };
    char *ids[] = {a, b, c};
    static const char *const loss[] = {"0.5", "0.2", "0.9"};
    static const char *const lr[] = {"0.01", "0.02", "0.01"};
    static const char *const team[] = {"red", "Blue", "it's"};
    for (int i = 0; i < 3; i++) {
        json_t *r = ok(OPS->create_run,
                       "{\"idempotency_key\": \"%s\", \"experiment_id\": \"%s\", \"name\": "
                       "\"%s\", \"start_time_ms\": %s}",
                       runs[i][0], exp, runs[i][1], runs[i][2]);
        snprintf(ids[i], 64, "%s", s_of(r, "external_id"));
        json_decref(r);
        json_decref(ok(OPS->log_batch,
                       "{\"external_id\": \"%s\", \"metrics\": [{\"key\": \"loss\", \"value\": "
                       "%s, \"timestamp_ms\": 1}], \"params\": {\"lr\": \"%s\"}, \"tags\": "
                       "{\"team\": \"%s\"}}",
                       ids[i], loss[i], lr[i], team[i]));
        if (strcmp(runs[i][3], "RUNNING") != 0)
            json_decref(ok(OPS->update_run, "{\"external_id\": \"%s\", \"status\": \"%s\"}", ids[i],
                           runs[i][3]));
    }
    new_run(exp, "kd", 4000, NULL, d, sizeof d);
    json_decref(ok(OPS->delete_run, "{\"external_id\": \"%s\"}", d));
    new_run(exp2, "ke", 500, NULL, e, sizeof e);

    char got[1024], want[1024], in[1024];
    int pages;
#define SEARCH(expected_fmt, ...)                                                                  \
    do {                                                                                           \
        all_pages(OPS->search_runs, "runs", "name", in, 100, got, sizeof got, &pages);             \
        snprintf(want, sizeof want, expected_fmt, ##__VA_ARGS__);                                  \
        ck_assert_msg(strcmp(got, want) == 0, "search %s: got '%s', want '%s'", in, got, want);    \
    } while (0)
#define IN(...) snprintf(in, sizeof in, __VA_ARGS__)

    IN("\"experiment_ids\": [\"%s\"]", exp);
    SEARCH("gamma,beta,alpha"); /* start_time_ms descending; deleted left out */
    IN("\"experiment_ids\": [\"%s\"], \"lifecycle\": \"deleted\"", exp);
    all_pages(OPS->search_runs, "runs", "external_id", in, 100, got, sizeof got, &pages);
    ck_assert_str_eq(got, d);
    IN("\"experiment_ids\": [\"%s\", \"%s\"], \"lifecycle\": \"all\"", exp, exp2);
    all_pages(OPS->search_runs, "runs", "external_id", in, 100, got, sizeof got, &pages);
    snprintf(want, sizeof want, "%s,%s,%s,%s,%s", d, c, b, a, e);
    ck_assert_str_eq(got, want);
    IN("\"experiment_ids\": [\"%s\"], \"filter\": [{\"field\": \"metric\", \"key\": \"loss\", "
       "\"op\": \"<\", \"value\": 0.6}]",
       exp);
    SEARCH("beta,alpha");
    IN("\"experiment_ids\": [\"%s\"], \"filter\": [{\"field\": \"param\", \"key\": \"lr\", "
       "\"op\": \"=\", \"value\": \"0.01\"}, {\"field\": \"metric\", \"key\": \"loss\", \"op\": "
       "\">=\", \"value\": 1}]",
       exp);
    SEARCH("%s", ""); /* no match: MLflow answers {} */
    IN("\"experiment_ids\": [\"%s\"], \"filter\": [{\"field\": \"param\", \"key\": \"lr\", "
       "\"op\": \"=\", \"value\": \"0.01\"}, {\"field\": \"metric\", \"key\": \"loss\", \"op\": "
       "\">\", \"value\": 0.6}]",
       exp);
    SEARCH("gamma");
    IN("\"experiment_ids\": [\"%s\"], \"filter\": [{\"field\": \"tag\", \"key\": \"team\", "
       "\"op\": \"ILIKE\", \"value\": \"blue\"}]",
       exp);
    SEARCH("beta");
    IN("\"experiment_ids\": [\"%s\"], \"filter\": [{\"field\": \"tag\", \"key\": \"team\", "
       "\"op\": \"LIKE\", \"value\": \"blue\"}]",
       exp);
    SEARCH("%s", "");
    IN("\"experiment_ids\": [\"%s\"], \"filter\": [{\"field\": \"tag\", \"key\": \"team\", "
       "\"op\": \"=\", \"value\": \"it's\"}]",
       exp);
    SEARCH("gamma");
    IN("\"experiment_ids\": [\"%s\"], \"filter\": [{\"field\": \"attribute\", \"key\": "
       "\"status\", \"op\": \"=\", \"value\": \"FINISHED\"}]",
       exp);
    SEARCH("alpha");
    IN("\"experiment_ids\": [\"%s\"], \"filter\": [{\"field\": \"attribute\", \"key\": "
       "\"status\", \"op\": \"!=\", \"value\": \"FINISHED\"}]",
       exp);
    SEARCH("gamma,beta");
    IN("\"experiment_ids\": [\"%s\"], \"filter\": [{\"field\": \"attribute\", \"key\": "
       "\"name\", \"op\": \"LIKE\", \"value\": \"%%a\"}]",
       exp);
    SEARCH("gamma,beta,alpha");
    IN("\"experiment_ids\": [\"%s\"], \"filter\": [{\"field\": \"attribute\", \"key\": "
       "\"name\", \"op\": \"LIKE\", \"value\": \"_eta\"}]",
       exp);
    SEARCH("beta");
    IN("\"experiment_ids\": [\"%s\"], \"filter\": [{\"field\": \"attribute\", \"key\": "
       "\"start_time_ms\", \"op\": \">=\", \"value\": 2000}]",
       exp);
    SEARCH("gamma,beta");
    IN("\"experiment_ids\": [\"%s\"], \"order_by\": [{\"field\": \"metric\", \"key\": "
       "\"loss\", \"ascending\": true}]",
       exp);
    SEARCH("beta,alpha,gamma");
    IN("\"experiment_ids\": [\"%s\"], \"order_by\": [{\"field\": \"param\", \"key\": \"lr\", "
       "\"ascending\": true}, {\"field\": \"attribute\", \"key\": \"name\"}]",
       exp);
    SEARCH("gamma,alpha,beta");
    /* pages: 2 at a time */
    IN("\"experiment_ids\": [\"%s\"]", exp);
    all_pages(OPS->search_runs, "runs", "name", in, 2, got, sizeof got, &pages);
    ck_assert_str_eq(got, "gamma,beta,alpha");
    ck_assert_int_eq(pages, 2);
    /* a whole Run in each item, the key tag hidden */
    json_t *o = ok(OPS->search_runs,
                   "{\"experiment_ids\": [\"%s\"], \"max_results\": 1, \"filter\": [{\"field\": "
                   "\"attribute\", \"key\": \"name\", \"op\": \"=\", \"value\": \"alpha\"}]}",
                   exp);
    json_t *run = json_array_get(json_object_get(o, "runs"), 0);
    ck_assert_str_eq(s_of(run, "external_id"), a);
    ck_assert_str_eq(s_of(json_object_get(run, "params"), "lr"), "0.01");
    ck_assert_ptr_null(json_object_get(json_object_get(run, "tags"), KEY_TAG));
    ck_assert_int_eq(json_array_size(json_object_get(run, "metrics")), 1);
    ck_assert_ptr_nonnull(json_object_get(o, "next_page_token")); /* a full page */
    json_decref(o);
    /* what MLflow's filter language cannot carry is refused before anything is sent */
    int before = count(API "runs/search");
    fails(LLMOPS_ERR_INVALID, OPS->search_runs,
          "{\"experiment_ids\": [\"%s\"], \"max_results\": 10, \"filter\": [{\"field\": "
          "\"tag\", \"key\": \"team\", \"op\": \"=\", \"value\": \"it's \\\"both\\\"\"}]}",
          exp);
    fails(LLMOPS_ERR_INVALID, OPS->search_runs,
          "{\"experiment_ids\": [\"%s\"], \"max_results\": 10, \"filter\": [{\"field\": "
          "\"param\", \"key\": \"a`b\", \"op\": \"=\", \"value\": \"x\"}]}",
          exp);
    fails(LLMOPS_ERR_INVALID, OPS->search_runs,
          "{\"experiment_ids\": [\"%s\"], \"max_results\": 10, \"filter\": [{\"field\": "
          "\"param\", \"key\": \"p\", \"op\": \"=\", \"value\": \"ends in \\\\\"}]}",
          exp);
    fails(LLMOPS_ERR_INVALID, OPS->search_runs,
          "{\"experiment_ids\": [\"%s\"], \"max_results\": 10, \"order_by\": [{\"field\": "
          "\"metric\", \"key\": \"`\"}]}",
          exp);
    fails(LLMOPS_ERR_INVALID, OPS->search_runs,
          "{\"experiment_ids\": [\"%s\"], \"max_results\": 10, \"lifecycle\": \"gone\"}", exp);
    ck_assert_int_eq(count(API "runs/search"), before);
    /* a value with a backslash inside is fine */
    IN("\"experiment_ids\": [\"%s\"], \"filter\": [{\"field\": \"param\", \"key\": \"lr\", "
       "\"op\": \"!=\", \"value\": \"C:\\\\data\\\\\\\\\"}]",
       exp);
    SEARCH("gamma,beta,alpha");
#undef SEARCH
#undef IN
}
END_TEST

START_TEST(test_find_by_idempotency_key)
{
    start(NULL, NULL);
    char exp[64], run[64];
    new_experiment("find-exp", "find-me", exp, sizeof exp);
    new_run(exp, "find-run", 1795713258923LL, ", \"name\": \"found\"", run, sizeof run);
    json_t *o = ok(OPS->find_by_idempotency_key,
                   "{\"kind\": \"experiment\", \"idempotency_key\": \"find-exp\"}");
    ck_assert_str_eq(s_of(o, "external_id"), exp);
    ck_assert_str_eq(s_of(o, "name"), "find-me");
    ck_assert_ptr_null(json_object_get(json_object_get(o, "tags"), KEY_TAG));
    json_decref(o);
    o = ok(OPS->find_by_idempotency_key,
           "{\"kind\": \"run\", \"idempotency_key\": \"find-run\", \"experiment_id\": \"%s\"}",
           exp);
    ck_assert_str_eq(s_of(o, "external_id"), run);
    ck_assert_str_eq(s_of(o, "name"), "found");
    ck_assert_ptr_nonnull(json_object_get(o, "params"));
    json_decref(o);
    fails(LLMOPS_ERR_NOT_FOUND, OPS->find_by_idempotency_key,
          "{\"kind\": \"experiment\", \"idempotency_key\": \"nobody\"}");
    fails(LLMOPS_ERR_NOT_FOUND, OPS->find_by_idempotency_key,
          "{\"kind\": \"run\", \"idempotency_key\": \"nobody\", \"experiment_id\": \"%s\"}", exp);
    fails(LLMOPS_ERR_INVALID, OPS->find_by_idempotency_key,
          "{\"kind\": \"run\", \"idempotency_key\": \"find-run\"}");
    fails(LLMOPS_ERR_INVALID, OPS->find_by_idempotency_key,
          "{\"kind\": \"model\", \"idempotency_key\": \"find-run\"}");
    /* deleted objects are still found */
    json_decref(ok(OPS->delete_experiment, "{\"external_id\": \"%s\"}", exp));
    o = ok(OPS->find_by_idempotency_key,
           "{\"kind\": \"experiment\", \"idempotency_key\": \"find-exp\"}");
    ck_assert_str_eq(s_of(o, "lifecycle"), "deleted");
    json_decref(o);
}
END_TEST

/* ------------------------------------------------------------------ Limits */

START_TEST(test_limits)
{
    start(NULL, NULL);
    char exp[64], id[64], name[LLMOPS_TRACKING_NAME_MAX + 1];
    memset(name, 'n', LLMOPS_TRACKING_NAME_MAX);
    name[LLMOPS_TRACKING_NAME_MAX] = '\0';
    new_experiment("limits", name, exp, sizeof exp);
    json_t *e = ok(OPS->get_experiment, "{\"external_id\": \"%s\"}", exp);
    ck_assert_str_eq(s_of(e, "name"), name);
    json_decref(e);
    new_run(exp, "run", 1, NULL, id, sizeof id);
    /* over MLflow's batch limits: refused here, nothing sent */
    json_t *metrics = json_array(), *out;
    for (int i = 0; i <= LLMOPS_TRACKING_BATCH_MAX_METRICS; i++)
        json_array_append_new(metrics, json_pack("{s:s,s:i,s:i,s:i}", "key", "m", "value", i,
                                                 "timestamp_ms", i, "step", i));
    ck_assert_int_eq(call_json(OPS->log_batch,
                               json_pack("{s:s,s:o}", "external_id", id, "metrics", metrics), &out),
                     -1);
    ck_assert_int_eq(last.code, LLMOPS_ERR_INVALID);
    json_t *params = json_object();
    for (int i = 0; i <= LLMOPS_TRACKING_BATCH_MAX_PARAMS; i++) {
        char k[16];
        snprintf(k, sizeof k, "p%d", i);
        json_object_set_new(params, k, json_string("v"));
    }
    ck_assert_int_eq(call_json(OPS->log_batch,
                               json_pack("{s:s,s:o}", "external_id", id, "params", params), &out),
                     -1);
    ck_assert_int_eq(last.code, LLMOPS_ERR_INVALID);
    ck_assert_int_eq(count(API "runs/log-batch"), 0);
    /* exactly at the limit: accepted */
    metrics = json_array();
    for (int i = 0; i < LLMOPS_TRACKING_BATCH_MAX_METRICS; i++)
        json_array_append_new(metrics, json_pack("{s:s,s:f,s:i,s:i}", "key", "m", "value", i * 0.5,
                                                 "timestamp_ms", i, "step", i));
    ck_assert_int_eq(call_json(OPS->log_batch,
                               json_pack("{s:s,s:o}", "external_id", id, "metrics", metrics), &out),
                     0);
    json_decref(out);
    json_t *h = ok(OPS->get_metric_history,
                   "{\"external_id\": \"%s\", \"key\": \"m\", \"max_results\": 25000}", id);
    ck_assert_int_eq(json_array_size(json_object_get(h, "metrics")),
                     LLMOPS_TRACKING_BATCH_MAX_METRICS);
    json_decref(h);
    fails(LLMOPS_ERR_INVALID, OPS->get_metric_history,
          "{\"external_id\": \"%s\", \"key\": \"m\", \"max_results\": 25001}", id);
    /* page tokens: at most 2048 bytes */
    char *token = malloc(2050);
    memset(token, 'A', 2049);
    token[2049] = '\0';
    ck_assert_int_eq(call_json(OPS->search_runs,
                               json_pack("{s:[s],s:i,s:s}", "experiment_ids", exp, "max_results",
                                         10, "page_token", token),
                               &out),
                     -1);
    ck_assert_int_eq(last.code, LLMOPS_ERR_INVALID);
    ck_assert_int_eq(count(API "runs/search"), 1); /* new_run's own search only */
    free(token);
}
END_TEST

/* ------------------------------------------------------------------ Errors */

START_TEST(test_lost_answer_experiment)
{
    start(NULL, NULL);
    fault(API "experiments/create", "[{\"lost\": true}]");
    json_t *e = ok(OPS->create_experiment,
                   "{\"idempotency_key\": \"lost-exp\", \"name\": \"lost-and-found\"}");
    ck_assert(is_true(e, "created")); /* found by name with our key: this call made it */
    char id[64];
    snprintf(id, sizeof id, "%s", s_of(e, "external_id"));
    json_decref(e);
    ck_assert_int_eq(count(API "experiments/create"), 1); /* a POST: never repeated blindly */
    e = ok(OPS->create_experiment,
           "{\"idempotency_key\": \"lost-exp\", \"name\": \"lost-and-found\"}");
    ck_assert(!is_true(e, "created"));
    ck_assert_str_eq(s_of(e, "external_id"), id);
    json_decref(e);
    ck_assert_int_eq(stored("experiments", "name", "lost-and-found"), 1);
    ck_assert_int_eq(stored("experiments", KEY_TAG, "lost-exp"), 1);
}
END_TEST

START_TEST(test_lost_answer_run)
{
    start(NULL, NULL);
    char exp[64], id[64];
    new_experiment("exp", "lost-runs", exp, sizeof exp);
    fault(API "runs/create", "[{\"lost\": true}]");
    json_t *r = ok(OPS->create_run,
                   "{\"idempotency_key\": \"lost-run\", \"experiment_id\": \"%s\", "
                   "\"start_time_ms\": 7}",
                   exp);
    ck_assert(is_true(r, "created"));
    snprintf(id, sizeof id, "%s", s_of(r, "external_id"));
    json_decref(r);
    ck_assert_int_eq(count(API "runs/create"), 1);
    ck_assert_int_eq(stored("runs", KEY_TAG, "lost-run"), 1);

    /* lost, and the tool then too slow to look it up: the call fails (retryable) ... */
    fault(API "runs/create", "[{\"lost\": true}]");
    fault(API "runs/search",
          "[{\"pass\": true}, {\"status\": 503}, {\"status\": 503}, {\"status\": 503}]");
    struct llmops_error err = fails(LLMOPS_ERR_UNAVAILABLE, OPS->create_run,
                                    "{\"idempotency_key\": \"lost-run-2\", \"experiment_id\": "
                                    "\"%s\", \"start_time_ms\": 8}",
                                    exp);
    ck_assert_int_eq(err.retryable, 1);
    /* ... and the retry (the outbox's) finds the run made: still exactly one */
    r = ok(OPS->create_run,
           "{\"idempotency_key\": \"lost-run-2\", \"experiment_id\": \"%s\", \"start_time_ms\": 8}",
           exp);
    ck_assert(!is_true(r, "created"));
    json_decref(r);
    ck_assert_int_eq(stored("runs", KEY_TAG, "lost-run-2"), 1);
    r = ok(OPS->find_by_idempotency_key,
           "{\"kind\": \"run\", \"idempotency_key\": \"lost-run-2\", \"experiment_id\": \"%s\"}",
           exp);
    json_decref(r);
    ck_assert_int_eq(count(API "runs/create"), 2);
}
END_TEST

START_TEST(test_lost_answer_nan_batch)
{
    start(NULL, NULL);
    char exp[64], id[64];
    new_experiment("exp", "lost-nan", exp, sizeof exp);
    new_run(exp, "run", 1795713258923LL, NULL, id, sizeof id);
    /* stored, its answer lost: the core's client sends it again, MLflow refuses that (it holds
     * the NaN points), the module reads what the run holds and sends the params and tags */
    fault(API "runs/log-batch", "[{\"lost\": true}]");
    int before = count(API "runs/log-batch");
    json_decref(ok(OPS->log_batch, NAN_BATCH, id));
    ck_assert_int_eq(count(API "runs/log-batch"), before + 3);
    expect_nan_batch(id);
    /* the outbox delivering it once more */
    json_decref(ok(OPS->log_batch, NAN_BATCH, id));
    expect_nan_batch(id);
    /* a new NaN point beside the stored ones, and the answer to the re-send lost: refused,
     * re-sent with the new point (stored, answer lost), sent again by the client (refused),
     * and the params and tags once more */
    fault(API "runs/log-batch", "[{\"pass\": true}, {\"lost\": true}]");
    before = count(API "runs/log-batch");
    json_decref(ok(OPS->log_batch,
                   "{\"external_id\": \"%s\", \"metrics\": ["
                   "{\"key\": \"loss\", \"value\": \"NaN\", \"timestamp_ms\": 100, \"step\": 1},"
                   "{\"key\": \"loss\", \"value\": \"NaN\", \"timestamp_ms\": 500, \"step\": 5}],"
                   "\"params\": {\"lr\": \"0.01\"}, \"tags\": {\"stage\": \"nan\"}}",
                   id));
    ck_assert_int_eq(count(API "runs/log-batch"), before + 4);
    ck_assert_int_eq(points_of(id), 5);
    ck_assert_int_eq(points_held(id, "loss", "nan", 500, 5), 1);
    ck_assert_int_eq(points_held(id, "loss", "nan", 100, 1), 1);
}
END_TEST

START_TEST(test_refused)
{
    start(NULL, NULL);
    json_decref(ctl("POST", "/_refuse", json_pack("{s:f}", "seconds", 2.0)));
    usleep(300 * 1000); /* the fake stops listening */
    int64_t t0 = now_ms();
    struct llmops_error err =
        fails(LLMOPS_ERR_UNAVAILABLE, OPS->get_experiment, "{\"external_id\": \"0\"}");
    int64_t took = now_ms() - t0;
    ck_assert_int_eq(err.retryable, 1);
    ck_assert_int_eq(err.tool_status, 0);
    ck_assert_msg(took < 1500, "refused took %lld ms", (long long)took);
    json_t *info = NULL;
    err.size = sizeof err;
    ck_assert_int_eq(t.in->mod->desc->health(t.in->state, &info, &err), -1);
    ck_assert_int_eq(err.code, LLMOPS_ERR_UNAVAILABLE);
    /* back again */
    json_t *e = NULL;
    for (int i = 0; i < 60 && !e; i++) {
        usleep(100 * 1000);
        json_t *in = json_pack("{s:s}", "external_id", "0");
        struct llmops_error e2 = {.size = sizeof e2};
        if (OPS->get_experiment(t.in->state, in, &e, &e2) != 0)
            e = NULL;
        json_decref(in);
    }
    ck_assert_ptr_nonnull(e);
    ck_assert_str_eq(s_of(e, "name"), "Default");
    json_decref(e);
}
END_TEST

START_TEST(test_nothing_listening)
{
    fake_start(NULL);
    char cfg[128];
    snprintf(cfg, sizeof cfg, "url = http://127.0.0.1:%d\n", tu_free_port());
    load_config(cfg, 1);
    int64_t t0 = now_ms();
    struct llmops_error err = fails(LLMOPS_ERR_UNAVAILABLE, OPS->create_run,
                                    "{\"idempotency_key\": \"k\", \"experiment_id\": \"0\", "
                                    "\"start_time_ms\": 1}");
    ck_assert_int_eq(err.retryable, 1);
    ck_assert_int_lt(now_ms() - t0, 1500);
}
END_TEST

START_TEST(test_hang)
{
    start(NULL, "timeout_ms = 1000\n");
    fault(API "experiments/get", "[{\"delay_ms\": 5000}]");
    int64_t t0 = now_ms();
    struct llmops_error err =
        fails(LLMOPS_ERR_UNAVAILABLE, OPS->get_experiment, "{\"external_id\": \"0\"}");
    int64_t took = now_ms() - t0;
    ck_assert_int_eq(err.retryable, 1);
    ck_assert_msg(took >= 900 && took < 1700, "hang took %lld ms", (long long)took);
    /* an op of several calls keeps within the same budget */
    char exp[64];
    new_experiment("exp", "hang-exp", exp, sizeof exp);
    fault(API "runs/search", "[{\"delay_ms\": 5000}]");
    t0 = now_ms();
    fails(LLMOPS_ERR_UNAVAILABLE, OPS->create_run,
          "{\"idempotency_key\": \"k\", \"experiment_id\": \"%s\", \"start_time_ms\": 1}", exp);
    took = now_ms() - t0;
    ck_assert_msg(took >= 900 && took < 1700, "create_run took %lld ms", (long long)took);
    ck_assert_int_eq(count(API "runs/create"), 0);
    fault(API "runs/create", "[{\"delay_ms\": 5000}]");
    t0 = now_ms();
    fails(LLMOPS_ERR_UNAVAILABLE, OPS->create_run,
          "{\"idempotency_key\": \"k2\", \"experiment_id\": \"%s\", \"start_time_ms\": 1}", exp);
    took = now_ms() - t0;
    ck_assert_msg(took < 1700, "create_run (hanging create) took %lld ms", (long long)took);
    /* the budget is the op's, not each call's: a slow search leaves less for the create */
    fault(API "runs/search", "[{\"delay_ms\": 600}]");
    fault(API "runs/create", "[{\"delay_ms\": 5000}]");
    t0 = now_ms();
    fails(LLMOPS_ERR_UNAVAILABLE, OPS->create_run,
          "{\"idempotency_key\": \"k3\", \"experiment_id\": \"%s\", \"start_time_ms\": 1}", exp);
    took = now_ms() - t0;
    ck_assert_msg(took >= 900 && took < 1450,
                  "create_run (slow search, hanging create) took %lld ms", (long long)took);
}
END_TEST

START_TEST(test_retry_after)
{
    start(NULL, NULL);
    fault(API "experiments/get", "[{\"status\": 429, \"retry_after\": 1}]");
    int64_t t0 = now_ms();
    json_t *e = ok(OPS->get_experiment, "{\"external_id\": \"0\"}");
    int64_t took = now_ms() - t0;
    json_decref(e);
    ck_assert_msg(took >= 950, "Retry-After: 1 not honoured (%lld ms)", (long long)took);
    ck_assert_int_eq(count(API "experiments/get"), 2);
    /* searches are POSTs the module marks safe to repeat */
    fault(API "runs/search", "[{\"status\": 429, \"retry_after\": 1}]");
    t0 = now_ms();
    json_decref(ok(OPS->search_runs, "{\"experiment_ids\": [\"0\"], \"max_results\": 5}"));
    ck_assert_int_ge(now_ms() - t0, 950);
    ck_assert_int_eq(count(API "runs/search"), 2);
    /* a create is not repeated blindly: 429 comes back as a retryable TOOL error */
    fault(API "experiments/create", "[{\"status\": 429, \"retry_after\": 1}]");
    struct llmops_error err = fails(LLMOPS_ERR_TOOL, OPS->create_experiment,
                                    "{\"idempotency_key\": \"k\", \"name\": \"limited\"}");
    ck_assert_int_eq(err.tool_status, 429);
    ck_assert_int_eq(err.retryable, 1);
    ck_assert_int_eq(count(API "experiments/create"), 1);
    ck_assert_int_eq(stored("experiments", "name", "limited"), 0);
    /* 429 again and again: the retries give up, the error says so */
    fault(API "experiments/get", "[{\"status\": 429}, {\"status\": 429}, {\"status\": 429}]");
    err = fails(LLMOPS_ERR_TOOL, OPS->get_experiment, "{\"external_id\": \"0\"}");
    ck_assert_int_eq(err.tool_status, 429);
    ck_assert_int_eq(err.retryable, 1);
}
END_TEST

START_TEST(test_server_errors)
{
    start(NULL, NULL);
    char exp[64], id[64];
    new_experiment("exp", "errors", exp, sizeof exp);
    new_run(exp, "run", 1795713258923LL, NULL, id, sizeof id);
    /* one 500 on a GET: retried */
    fault(API "runs/get", "[{\"status\": 500, \"html\": true}]");
    json_decref(ok(OPS->get_run, "{\"external_id\": \"%s\"}", id));
    /* 500 every time: TOOL, retryable, MLflow's HTML page kept out of the message */
    fault(API "runs/get", "[{\"status\": 500, \"html\": true}, {\"status\": 500, \"html\": "
                          "true}, {\"status\": 500, \"html\": true}]");
    struct llmops_error err = fails(LLMOPS_ERR_TOOL, OPS->get_run, "{\"external_id\": \"%s\"}", id);
    ck_assert_int_eq(err.tool_status, 500);
    ck_assert_int_eq(err.retryable, 1);
    /* a 500 to a log-batch (retried: a replay adds nothing) */
    fault(API "runs/log-batch", "[{\"status\": 503}]");
    json_decref(ok(OPS->log_batch,
                   "{\"external_id\": \"%s\", \"metrics\": [{\"key\": \"m\", \"value\": 1, "
                   "\"timestamp_ms\": 1}]}",
                   id));
    ck_assert_int_eq(count(API "runs/log-batch"), 2);
    json_t *h = ok(OPS->get_metric_history,
                   "{\"external_id\": \"%s\", \"key\": \"m\", \"max_results\": 10}", id);
    ck_assert_int_eq(json_array_size(json_object_get(h, "metrics")), 1);
    json_decref(h);
    /* 401 and 403 to the module's credentials: TOOL, not retryable */
    fault(API "experiments/get", "[{\"status\": 401, \"body\": \"You are not authenticated.\"}]");
    err = fails(LLMOPS_ERR_TOOL, OPS->get_experiment, "{\"external_id\": \"0\"}");
    ck_assert_int_eq(err.tool_status, 401);
    ck_assert_int_eq(err.retryable, 0);
    fault(API "experiments/get", "[{\"status\": 403, \"body\": \"Permission denied\"}]");
    err = fails(LLMOPS_ERR_TOOL, OPS->get_experiment, "{\"external_id\": \"0\"}");
    ck_assert_int_eq(err.tool_status, 403);
    /* 405 with HTML, a 400 that is not MLflow's JSON, a 200 that is not JSON */
    fault(API "experiments/get", "[{\"status\": 405, \"html\": true}]");
    err = fails(LLMOPS_ERR_TOOL, OPS->get_experiment, "{\"external_id\": \"0\"}");
    ck_assert_int_eq(err.tool_status, 405);
    fault(API "experiments/get", "[{\"status\": 400, \"html\": true}]");
    err = fails(LLMOPS_ERR_TOOL, OPS->get_experiment, "{\"external_id\": \"0\"}");
    ck_assert_int_eq(err.tool_status, 400);
    fault(API "experiments/get", "[{\"status\": 200, \"body\": \"<html>proxy</html>\"}]");
    fails(LLMOPS_ERR_TOOL, OPS->get_experiment, "{\"external_id\": \"0\"}");
    fault(API "experiments/get", "[{\"status\": 200, \"body\": {\"experiment\": {\"name\": 5}}}]");
    fails(LLMOPS_ERR_TOOL, OPS->get_experiment, "{\"external_id\": \"0\"}");
    /* MLflow's messages can carry SQL: they reach the log, never the error */
    fault(API "runs/update", "[{\"status\": 400, \"body\": {\"error_code\": "
                             "\"INVALID_PARAMETER_VALUE\", \"message\": \"(sqlite3.Error) SELECT "
                             "* FROM runs\"}}]");
    err = fails(LLMOPS_ERR_INVALID, OPS->update_run,
                "{\"external_id\": \"%s\", \"status\": \"FAILED\"}", id);
    ck_assert_ptr_nonnull(strstr(err.message, "INVALID_PARAMETER_VALUE"));
    fault(API "runs/update", "[{\"status\": 404, \"body\": {\"error_code\": "
                             "\"RESOURCE_DOES_NOT_EXIST\", \"message\": \"gone\"}}]");
    fails(LLMOPS_ERR_NOT_FOUND, OPS->update_run, "{\"external_id\": \"%s\", \"name\": \"x\"}", id);
}
END_TEST

START_TEST(test_not_an_mlflow_url)
{
    fake_start(NULL);
    char cfg[128];
    snprintf(cfg, sizeof cfg, "url = http://127.0.0.1:%d/not-mlflow\n", t.port);
    load_config(cfg, 1);
    /* the server's HTML 404 for an unknown path is TOOL, never NOT_FOUND */
    struct llmops_error err =
        fails(LLMOPS_ERR_TOOL, OPS->get_experiment, "{\"external_id\": \"0\"}");
    ck_assert_int_eq(err.tool_status, 404);
    ck_assert_int_eq(err.retryable, 0);
    ck_assert_ptr_nonnull(strstr(err.message, "no such endpoint"));
    json_t *info = NULL;
    err.size = sizeof err;
    ck_assert_int_eq(t.in->mod->desc->health(t.in->state, &info, &err), -1);
    ck_assert_int_eq(err.code, LLMOPS_ERR_TOOL);
}
END_TEST

/* A secret file in the test's directory. */
static void secret_file(const char *name, const char *content, char *path, size_t size)
{
    snprintf(path, size, "%s/%s", t.dir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "%s\n", content);
    fclose(f);
    chmod(path, 0600);
}

START_TEST(test_token_auth)
{
    fake_start((const char *const[]){"--token", SECRET_TOKEN, NULL});
    char path[128], cfg[256];
    secret_file("token", SECRET_TOKEN, path, sizeof path);
    snprintf(cfg, sizeof cfg, "token_file = %s\n", path);
    load_config(cfg, 1);
    json_t *info = NULL;
    struct llmops_error err = {.size = sizeof err};
    ck_assert_int_eq(t.in->mod->desc->health(t.in->state, &info, &err), 0);
    json_decref(info);
    char id[64];
    new_experiment("auth", "with-token", id, sizeof id);
    ck_assert_str_eq(seen_auth(API "experiments/create"), "Bearer " SECRET_TOKEN);
    ck_assert_str_eq(seen_auth("/version"), "Bearer " SECRET_TOKEN);
}
END_TEST

START_TEST(test_wrong_token)
{
    fake_start((const char *const[]){"--token", "another-token", NULL});
    char path[128], cfg[256];
    secret_file("token", SECRET_TOKEN, path, sizeof path);
    snprintf(cfg, sizeof cfg, "token_file = %s\n", path);
    load_config(cfg, 1);
    struct llmops_error err =
        fails(LLMOPS_ERR_TOOL, OPS->get_experiment, "{\"external_id\": \"0\"}");
    ck_assert_int_eq(err.tool_status, 401);
    ck_assert_int_eq(err.retryable, 0);
    json_t *info = NULL;
    err.size = sizeof err;
    ck_assert_int_eq(t.in->mod->desc->health(t.in->state, &info, &err), -1);
    ck_assert_int_eq(err.tool_status, 401);
    ck_assert_ptr_null(strstr(err.message, SECRET_TOKEN));
    err = fails(LLMOPS_ERR_TOOL, OPS->create_experiment,
                "{\"idempotency_key\": \"k\", \"name\": \"n\"}");
    ck_assert_int_eq(err.tool_status, 401);
}
END_TEST

START_TEST(test_basic_auth)
{
    fake_start((const char *const[]){"--basic-auth", "alice:pw-s3cr3t", NULL});
    char path[128], cfg[256];
    secret_file("basic", "alice:pw-s3cr3t", path, sizeof path);
    snprintf(cfg, sizeof cfg, "basic_auth_file = %s\n", path);
    load_config(cfg, 1);
    char id[64];
    new_experiment("auth", "with-basic", id, sizeof id);
    json_t *e = ok(OPS->get_experiment, "{\"external_id\": \"%s\"}", id);
    json_decref(e);
    ck_assert_str_eq(seen_auth(API "experiments/get"), "Basic YWxpY2U6cHctczNjcjN0");
}
END_TEST

START_TEST(test_ui_links)
{
    start(NULL, "ui_url = https://mlflow.example.org/ui/\n");
    char id[64], run[64];
    new_experiment("k", "linked", id, sizeof id);
    json_t *e = ok(OPS->get_experiment, "{\"external_id\": \"%s\"}", id);
    ck_assert_str_eq(s_of(json_object_get(e, "links"), "ui"),
                     "https://mlflow.example.org/ui/#/experiments/1");
    json_decref(e);
    new_run(id, "r", 1795713258923LL, NULL, run, sizeof run);
    json_t *r = ok(OPS->get_run, "{\"external_id\": \"%s\"}", run);
    char want[256];
    snprintf(want, sizeof want, "https://mlflow.example.org/ui/#/experiments/1/runs/%s", run);
    ck_assert_str_eq(s_of(json_object_get(r, "links"), "ui"), want);
    json_decref(r);
}
END_TEST

START_TEST(test_ui_links_without_credentials)
{
    fake_start(NULL);
    char cfg[128], want[128];
    snprintf(cfg, sizeof cfg, "url = http://bob:pw-s3cr3t@127.0.0.1:%d/\n", t.port);
    load_config(cfg, 1);
    char id[64];
    new_experiment("k", "no-creds", id, sizeof id);
    json_t *e = ok(OPS->get_experiment, "{\"external_id\": \"%s\"}", id);
    snprintf(want, sizeof want, "http://127.0.0.1:%d/#/experiments/1", t.port);
    ck_assert_str_eq(s_of(json_object_get(e, "links"), "ui"), want);
    json_decref(e);
}
END_TEST

static int has_error(const char *needle)
{
    for (int i = 0; i < t.errs.n; i++)
        if (strstr(t.errs.msgs[i], needle))
            return 1;
    return 0;
}

START_TEST(test_configuration_keys)
{
    fake_start(NULL);
    ck_assert_int_gt(load_config("colour = red\nui_url = ftp://x\n", 0), 0);
    ck_assert(has_error("unknown key 'colour' for module mlflow"));
    ck_assert(has_error("ui_url"));
    ck_assert(has_error("ui_url: 'ftp://x' is not an http:// or https:// URL"));
    ck_assert_int_eq(t.in->st, INSTANCE_FAILED);
}
END_TEST

START_TEST(test_needs_url)
{
    snprintf(t.dir, sizeof t.dir, "/tmp/llmops-mlflow-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(t.dir));
    char path[128];
    snprintf(path, sizeof path, "%s/llm-ops.conf", t.dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "[server]\nplugin_dir = %s\n[plugin \"mlflow\"]\nmodule = mlflow\n", PLUGIN_DIR);
    fclose(f);
    ck_assert_int_eq(conf_load(path, &t.conf, &t.errs), 0);
    ck_assert_int_gt(plugins_load(&t.reg, &t.conf, NULL, 1, &t.errs), 0);
    t.loaded = 1;
    ck_assert(has_error("init failed"));
    ck_assert(has_error("needs url"));
    ck_assert_int_eq(plugins_find(&t.reg, "mlflow")->st, INSTANCE_FAILED);
}
END_TEST

/* ------------------------------------------------------------------ Parse: no server */

static const struct {
    const char *clauses;
    const char *rendered; /* NULL: INVALID */
} filters[] = {
    {"[]", ""},
    {"[{\"field\": \"metric\", \"key\": \"loss\", \"op\": \"<\", \"value\": 0.5}, {\"field\": "
     "\"param\", \"key\": \"lr\", \"op\": \"=\", \"value\": \"0.01\"}]",
     "metrics.`loss` < 0.5 and params.`lr` = '0.01'"},
    {"[{\"field\": \"tag\", \"key\": \"my tag\", \"op\": \"ILIKE\", \"value\": \"a%_b\"}]",
     "tags.`my tag` ILIKE 'a%_b'"},
    {"[{\"field\": \"tag\", \"key\": \"k\", \"op\": \"=\", \"value\": \"it's\"}]",
     "tags.`k` = \"it's\""},
    {"[{\"field\": \"tag\", \"key\": \"k\", \"op\": \"=\", \"value\": \"say \\\"hi\\\"\"}]",
     "tags.`k` = 'say \"hi\"'"},
    {"[{\"field\": \"tag\", \"key\": \"k\", \"op\": \"=\", \"value\": \"it's \\\"x\\\"\"}]", NULL},
    {"[{\"field\": \"tag\", \"key\": \"k\", \"op\": \"=\", \"value\": \"a\\\\\"}]", NULL},
    {"[{\"field\": \"tag\", \"key\": \"k\", \"op\": \"=\", \"value\": \"a\\\\\\\\\"}]",
     "tags.`k` = 'a\\\\'"},
    {"[{\"field\": \"tag\", \"key\": \"k`\", \"op\": \"=\", \"value\": \"v\"}]", NULL},
    {"[{\"field\": \"metric\", \"key\": \"m\", \"op\": \">=\", \"value\": 1e20}]",
     "metrics.`m` >= 1e20"},
    {"[{\"field\": \"metric\", \"key\": \"m\", \"op\": \"!=\", \"value\": -3}]",
     "metrics.`m` != -3"},
    {"[{\"field\": \"metric\", \"key\": \"m\", \"op\": \"=\", \"value\": 2.0}]",
     "metrics.`m` = 2.0"},
    {"[{\"field\": \"metric\", \"key\": \"m\", \"op\": \"LIKE\", \"value\": 1}]", NULL},
    {"[{\"field\": \"metric\", \"key\": \"m\", \"op\": \"<\", \"value\": \"1\"}]", NULL},
    {"[{\"field\": \"attribute\", \"key\": \"status\", \"op\": \"!=\", \"value\": "
     "\"KILLED\"}]",
     "attributes.status != 'KILLED'"},
    {"[{\"field\": \"attribute\", \"key\": \"status\", \"op\": \"=\", \"value\": \"DONE\"}]", NULL},
    {"[{\"field\": \"attribute\", \"key\": \"status\", \"op\": \"LIKE\", \"value\": \"R%\"}]",
     NULL},
    {"[{\"field\": \"attribute\", \"key\": \"name\", \"op\": \"LIKE\", \"value\": \"r%\"}]",
     "attributes.run_name LIKE 'r%'"},
    {"[{\"field\": \"attribute\", \"key\": \"start_time_ms\", \"op\": \">\", \"value\": 5}, "
     "{\"field\": \"attribute\", \"key\": \"end_time_ms\", \"op\": \"<=\", \"value\": 9}]",
     "attributes.start_time > 5 and attributes.end_time <= 9"},
    {"[{\"field\": \"attribute\", \"key\": \"start_time_ms\", \"op\": \">\", \"value\": 5.5}]",
     NULL},
    {"[{\"field\": \"attribute\", \"key\": \"run_id\", \"op\": \"=\", \"value\": \"x\"}]", NULL},
    {"[{\"field\": \"dataset\", \"key\": \"d\", \"op\": \"=\", \"value\": \"x\"}]", NULL},
    {"[{\"field\": \"param\", \"key\": \"p\", \"op\": \"<\", \"value\": \"x\"}]", NULL},
};

START_TEST(test_render_filter)
{
    json_t *clauses = json_loads(filters[_i].clauses, 0, NULL);
    ck_assert_ptr_nonnull(clauses);
    char msg[256] = "";
    char *s = mlflow_render_filter(clauses, msg, sizeof msg);
    if (filters[_i].rendered) {
        ck_assert_msg(s != NULL, "%s refused: %s", filters[_i].clauses, msg);
        ck_assert_str_eq(s, filters[_i].rendered);
    } else {
        ck_assert_msg(s == NULL, "%s rendered as %s", filters[_i].clauses, s);
        ck_assert_int_gt(strlen(msg), 0);
    }
    free(s);
    json_decref(clauses);
}
END_TEST

START_TEST(test_render_order_by)
{
    char msg[256];
    json_t *in = json_loads("[{\"field\": \"metric\", \"key\": \"val loss\", \"ascending\": "
                            "true}, {\"field\": \"attribute\", \"key\": \"start_time_ms\"}, "
                            "{\"field\": \"tag\", \"key\": \"t\", \"ascending\": false}]",
                            0, NULL);
    json_t *o = mlflow_render_order_by(in, msg, sizeof msg);
    ck_assert_ptr_nonnull(o);
    ck_assert_str_eq(json_string_value(json_array_get(o, 0)), "metrics.`val loss` ASC");
    ck_assert_str_eq(json_string_value(json_array_get(o, 1)), "attributes.start_time DESC");
    ck_assert_str_eq(json_string_value(json_array_get(o, 2)), "tags.`t` DESC");
    json_decref(o);
    json_decref(in);
    in = json_loads("[{\"field\": \"attribute\", \"key\": \"colour\"}]", 0, NULL);
    ck_assert_ptr_null(mlflow_render_order_by(in, msg, sizeof msg));
    json_decref(in);
}
END_TEST

static const struct {
    int status;
    const char *body;
    enum llmops_status code;
    int retryable;
    const char *error_code;
} answers[] = {
    {200, "{}", LLMOPS_OK, 0, ""},
    {404, "{\"error_code\": \"RESOURCE_DOES_NOT_EXIST\", \"message\": \"Run with id=x not found\"}",
     LLMOPS_ERR_NOT_FOUND, 0, "RESOURCE_DOES_NOT_EXIST"},
    {400, "{\"error_code\": \"RESOURCE_ALREADY_EXISTS\", \"message\": \"[SQL: INSERT ...]\"}",
     LLMOPS_ERR_CONFLICT, 0, "RESOURCE_ALREADY_EXISTS"},
    {400,
     "{\"error_code\": \"INVALID_PARAMETER_VALUE\", \"message\": \"Changing param values is "
     "not allowed. Param with key='lr'\"}",
     LLMOPS_ERR_CONFLICT, 0, "INVALID_PARAMETER_VALUE"},
    {400,
     "{\"error_code\": \"INVALID_PARAMETER_VALUE\", \"message\": \"The run x must be in the "
     "'active' state. Current state is deleted.\"}",
     LLMOPS_ERR_INVALID, 0, "INVALID_PARAMETER_VALUE"},
    {400, "{\"error_code\": \"INVALID_PARAMETER_VALUE\", \"message\": \"Missing value\"}",
     LLMOPS_ERR_INVALID, 0, "INVALID_PARAMETER_VALUE"},
    {400, "<!doctype html><title>400 Bad Request</title>", LLMOPS_ERR_TOOL, 0, ""},
    {404, "<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>", LLMOPS_ERR_TOOL, 0, ""},
    {405, "<!doctype html>\n<title>405 Method Not Allowed</title>", LLMOPS_ERR_TOOL, 0, ""},
    {401, "You are not authenticated.", LLMOPS_ERR_TOOL, 0, ""},
    {403, "{\"error_code\": \"PERMISSION_DENIED\", \"message\": \"no\"}", LLMOPS_ERR_TOOL, 0,
     "PERMISSION_DENIED"},
    {429, "", LLMOPS_ERR_TOOL, 1, ""},
    {500, "<!doctype html><title>500 Internal Server Error</title>", LLMOPS_ERR_TOOL, 1, ""},
    {503, "{\"error_code\": \"TEMPORARILY_UNAVAILABLE\", \"message\": \"x\"}", LLMOPS_ERR_TOOL, 1,
     "TEMPORARILY_UNAVAILABLE"},
    {400, "{\"error_code\": \"lower case\", \"message\": \"x\"}", LLMOPS_ERR_TOOL, 0, ""},
    {302, "", LLMOPS_ERR_TOOL, 0, ""},
};

START_TEST(test_classify)
{
    struct mlflow_fault f;
    int rc = mlflow_classify(answers[_i].status, answers[_i].body, strlen(answers[_i].body), &f);
    ck_assert_int_eq(rc, answers[_i].code == LLMOPS_OK ? 0 : 1);
    if (rc == 0)
        return;
    ck_assert_msg(f.code == answers[_i].code, "%d %s: code %d", answers[_i].status,
                  answers[_i].body, f.code);
    ck_assert_int_eq(f.retryable, answers[_i].retryable);
    ck_assert_int_eq(f.tool_status, answers[_i].status);
    ck_assert_str_eq(f.error_code, answers[_i].error_code);
    ck_assert_ptr_null(strchr(f.what, '<'));
    ck_assert_ptr_null(strchr(f.detail, '\n'));
}
END_TEST

/* The tool's message quotes the client's text: cut to f.detail between UTF-8 characters (a
 * byte cut made the whole error message "(message not valid UTF-8)"), bytes that begin no
 * character shown as U+FFFD. */
START_TEST(test_classify_detail_utf8)
{
    char body[2048] = "{\"error_code\": \"RESOURCE_ALREADY_EXISTS\", \"message\": \"Experiment 'xy";
    for (int i = 0; i < 400; i++)
        strcat(body, "\xc3\xa9");
    strcat(body, "' already exists.\"}");
    struct mlflow_fault f;
    ck_assert_int_eq(mlflow_classify(400, body, strlen(body), &f), 1);
    ck_assert_uint_lt(strlen(f.detail), sizeof f.detail);
    ck_assert_uint_ge(strlen(f.detail), sizeof f.detail - 2); /* as much as fits */
    json_t *j = json_string(f.detail);
    ck_assert_msg(j != NULL, "detail is not UTF-8: %s", f.detail);
    json_decref(j);
    const char *raw = "<html>caf\xe9 \xff</html>"; /* Latin-1, not UTF-8 */
    ck_assert_int_eq(mlflow_classify(500, raw, strlen(raw), &f), 1);
    ck_assert_str_eq(f.detail, "<html>caf\xef\xbf\xbd \xef\xbf\xbd</html>");
}
END_TEST

START_TEST(test_values)
{
    static const struct {
        const char *in, *out; /* MLflow's value → ours, as JSON */
    } in[] = {{"0.5", "0.5"},
              {"3", "3.0"},
              {"1.7976931348623157e+308", "\"Infinity\""},
              {"-1.7976931348623157e+308", "\"-Infinity\""},
              {"\"NaN\"", "\"NaN\""},
              {"\"Infinity\"", "\"Infinity\""},
              {"\"-Infinity\"", "\"-Infinity\""},
              {"\"abc\"", NULL},
              {"true", NULL},
              {"[1]", NULL}};
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
        json_t *v = json_loads(in[i].in, JSON_DECODE_ANY, NULL);
        ck_assert_ptr_nonnull(v);
        json_t *o = mlflow_value_in(v);
        if (!in[i].out) {
            ck_assert_ptr_null(o);
        } else {
            json_t *want = json_loads(in[i].out, JSON_DECODE_ANY, NULL);
            ck_assert_msg(json_equal(o, want), "%s", in[i].in);
            json_decref(want);
        }
        json_decref(o);
        json_decref(v);
    }
    json_t *v = json_string("NaN"), *o = mlflow_value_out(v);
    ck_assert_str_eq(json_string_value(o), "NaN");
    json_decref(o);
    json_decref(v);
    v = json_string("nan");
    ck_assert_ptr_null(mlflow_value_out(v));
    json_decref(v);
    v = json_real(0.25);
    o = mlflow_value_out(v);
    ck_assert(json_real_value(o) == 0.25);
    json_decref(o);
    json_decref(v);
}
END_TEST

START_TEST(test_points_drop)
{
    /* MLflow's form in, stored points in either form: NaN equals NaN, Infinity equals DBL_MAX */
    json_t *pts =
        json_loads("[{\"key\": \"a\", \"value\": \"NaN\", \"timestamp\": 1, \"step\": 0},"
                   " {\"key\": \"a\", \"value\": \"NaN\", \"timestamp\": 1, \"step\": 0},"
                   " {\"key\": \"a\", \"value\": \"NaN\", \"timestamp\": 1, \"step\": 1},"
                   " {\"key\": \"b\", \"value\": \"NaN\", \"timestamp\": 1, \"step\": 0},"
                   " {\"key\": \"a\", \"value\": 0, \"timestamp\": 1, \"step\": 0},"
                   " {\"key\": \"a\", \"value\": 0.0, \"timestamp\": 1, \"step\": 0},"
                   " {\"key\": \"a\", \"value\": \"Infinity\", \"timestamp\": 2, \"step\": 0},"
                   " {\"key\": \"a\", \"value\": -1.5, \"timestamp\": 3, \"step\": 0}]",
                   0, NULL);
    ck_assert_ptr_nonnull(pts);
    ck_assert_int_eq(mlflow_points_drop(pts, NULL), 2); /* the second NaN and the second 0 */
    ck_assert_int_eq(json_array_size(pts), 6);
    ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(pts, 1), "step")), 1);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(pts, 2), "key")), "b");
    json_t *held =
        json_loads("[{\"key\": \"a\", \"value\": \"NaN\", \"timestamp_ms\": 1, \"step\": 0},"
                   " {\"key\": \"a\", \"value\": \"Infinity\", \"timestamp_ms\": 2, \"step\": 0},"
                   " {\"key\": \"a\", \"value\": -1.5, \"timestamp_ms\": 3, \"step\": 1},"
                   " {\"key\": \"a\", \"value\": 0.5, \"timestamp_ms\": 1, \"step\": 0},"
                   " {\"key\": \"b\", \"value\": \"bogus\", \"timestamp_ms\": 1, \"step\": 0}]",
                   0, NULL);
    ck_assert_ptr_nonnull(held);
    ck_assert_int_eq(mlflow_points_drop(pts, held), 2); /* a NaN@1/0 and a Infinity@2 */
    ck_assert_int_eq(json_array_size(pts), 4);
    static const char *const left[] = {"a", "b", "a", "a"};
    static const long long ts[] = {1, 1, 1, 3};
    for (size_t i = 0; i < 4; i++) {
        json_t *m = json_array_get(pts, i);
        ck_assert_str_eq(json_string_value(json_object_get(m, "key")), left[i]);
        ck_assert_int_eq(json_integer_value(json_object_get(m, "timestamp")), ts[i]);
    }
    json_t *dbl = json_pack("[{s:s,s:f,s:i,s:i}]", "key", "a", "value", MLFLOW_DBL_MAX,
                            "timestamp_ms", 2, "step", 0);
    json_t *inf = json_pack("[{s:s,s:s,s:i,s:i}]", "key", "a", "value", "Infinity", "timestamp", 2,
                            "step", 0);
    ck_assert_int_eq(mlflow_points_drop(inf, dbl), 1); /* MLflow answers Infinity as DBL_MAX */
    ck_assert_int_eq(json_array_size(inf), 0);
    json_t *other = json_pack("[{s:s,s:s,s:i,s:i},{s:s,s:f,s:i,s:i}]", "key", "b", "value", "NaN",
                              "timestamp_ms", 1, "step", 9, "key", "a", "value", -1.25,
                              "timestamp_ms", 3, "step", 0);
    ck_assert_int_eq(mlflow_points_drop(pts, other), 0); /* another step, another value */
    ck_assert_int_eq(json_array_size(pts), 4);
    json_decref(other);
    json_decref(dbl);
    json_decref(inf);
    json_decref(held);
    json_decref(pts);
}
END_TEST

START_TEST(test_versions_and_tokens)
{
    char v[64];
    ck_assert_int_eq(mlflow_version_parse("2.14.3\n", 7, v, sizeof v), 0);
    ck_assert_str_eq(v, "2.14.3");
    ck_assert_int_eq(mlflow_version_parse("  3.0.0rc1 ", 11, v, sizeof v), 0);
    ck_assert_str_eq(v, "3.0.0rc1");
    ck_assert_int_eq(mlflow_version_parse("OK", 2, v, sizeof v), -1);
    ck_assert_int_eq(mlflow_version_parse("2.14 <b>", 8, v, sizeof v), -1);
    ck_assert_int_eq(mlflow_version_parse("", 0, v, sizeof v), -1);
    long long off;
    ck_assert_int_eq(mlflow_history_token(NULL, &off), 0);
    ck_assert_int_eq(off, 0);
    ck_assert_int_eq(mlflow_history_token("25000", &off), 0);
    ck_assert_int_eq(off, 25000);
    ck_assert_int_eq(mlflow_history_token("-1", &off), -1);
    ck_assert_int_eq(mlflow_history_token("01", &off), -1);
    ck_assert_int_eq(mlflow_history_token("9999999999999", &off), -1);
    ck_assert_int_eq(mlflow_history_token("eyJvZmZzZXQiOiAxfQ==", &off), -1);
}
END_TEST

START_TEST(test_transcript_objects)
{
    /* runs/get from the recorded transcript, the idempotency tag and a DBL_MAX point added */
    const char *body =
        "{\"run\": {\"info\": {\"run_uuid\": \"de1038a098a8467da8a4ef0225daf7d1\", "
        "\"experiment_id\": \"1\", \"run_name\": \"run-1\", \"user_id\": \"\", \"status\": "
        "\"FINISHED\", \"start_time\": 1795713258923, \"end_time\": 1795713263923, "
        "\"artifact_uri\": \"/srv/mlflow/artifacts/1/de10/artifacts\", \"lifecycle_stage\": "
        "\"active\", \"run_id\": \"de1038a098a8467da8a4ef0225daf7d1\"}, \"data\": {\"metrics\": "
        "[{\"key\": \"loss\", \"value\": 0.125, \"timestamp\": 1795713261923, \"step\": 3}, "
        "{\"key\": \"weird\", \"value\": 1.7976931348623157e+308, \"timestamp\": 1795713258923, "
        "\"step\": 1}], \"params\": [{\"key\": \"lr\", \"value\": \"0.01\"}], \"tags\": "
        "[{\"key\": \"mlflow.runName\", \"value\": \"run-1\"}, {\"key\": \"" KEY_TAG
        "\", \"value\": \"k\"}]}, \"inputs\": {}}}";
    json_t *ans = mlflow_parse_object(body, strlen(body));
    ck_assert_ptr_nonnull(ans);
    char why[160];
    json_t *r = mlflow_run(json_object_get(ans, "run"), "https://ui", why, sizeof why);
    ck_assert_msg(r != NULL, "%s", why);
    ck_assert_str_eq(s_of(r, "external_id"), "de1038a098a8467da8a4ef0225daf7d1");
    ck_assert_str_eq(s_of(r, "status"), "FINISHED");
    ck_assert_int_eq(i_of(r, "end_time_ms"), 1795713263923LL);
    ck_assert_ptr_null(json_object_get(r, "user")); /* "" is no user */
    ck_assert_int_eq(json_object_size(json_object_get(r, "tags")), 1);
    ck_assert_str_eq(s_of(json_array_get(json_object_get(r, "metrics"), 1), "value"), "Infinity");
    ck_assert_str_eq(s_of(json_object_get(r, "links"), "ui"),
                     "https://ui/#/experiments/1/runs/de1038a098a8467da8a4ef0225daf7d1");
    json_decref(r);
    json_decref(ans);
    /* an experiment id sent as a number, run data left out entirely */
    ans = json_loads("{\"info\": {\"run_id\": \"ab\", \"experiment_id\": 7, \"status\": "
                     "\"RUNNING\"}}",
                     0, NULL);
    r = mlflow_run(ans, NULL, why, sizeof why);
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(s_of(r, "experiment_id"), "7");
    ck_assert_int_eq(i_of(r, "start_time_ms"), 0);
    ck_assert_ptr_null(json_object_get(r, "links"));
    json_decref(r);
    json_decref(ans);
    /* malformed: refused with a reason, never a crash */
    static const char *const bad[] = {
        "{\"info\": {\"experiment_id\": \"1\", \"status\": \"RUNNING\"}}",
        "{\"info\": {\"run_id\": \"a\", \"experiment_id\": \"1\", \"status\": \"RUNNING\", "
        "\"start_time\": \"soon\"}}",
        "{\"info\": {\"run_id\": \"a\", \"experiment_id\": \"1\", \"status\": \"RUNNING\"}, "
        "\"data\": {\"metrics\": [{\"key\": \"m\", \"value\": \"abc\"}]}}",
        "{\"info\": {\"run_id\": \"a\", \"experiment_id\": \"1\", \"status\": \"RUNNING\"}, "
        "\"data\": {\"tags\": {\"k\": \"v\"}}}",
        "{\"info\": {\"run_id\": \"a\", \"experiment_id\": [], \"status\": \"RUNNING\"}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ans = json_loads(bad[i], 0, NULL);
        why[0] = '\0';
        ck_assert_ptr_null(mlflow_run(ans, NULL, why, sizeof why));
        ck_assert_int_gt(strlen(why), 0);
        json_decref(ans);
    }
}
END_TEST

/* ------------------------------------------------------------------ the suite */

static Suite *make_mlflow_suite(void)
{
    Suite *s = suite_create("mlflow");
    TCase *core = tcase_create("Core");
    tcase_add_checked_fixture(core, NULL, teardown);
    tcase_set_timeout(core, 60);
    tcase_add_test(core, test_descriptor_and_capabilities);
    tcase_add_test(core, test_health_version_check);
    tcase_add_test(core, test_experiments);
    tcase_add_test(core, test_search_experiments);
    tcase_add_test(core, test_runs);
    tcase_add_test(core, test_log_batch_and_history);
    tcase_add_test(core, test_nan_and_infinity);
    tcase_add_test(core, test_nan_sent_again);
    tcase_add_test(core, test_replay_refused_by_slices);
    tcase_add_test(core, test_search_runs);
    tcase_add_test(core, test_find_by_idempotency_key);
    suite_add_tcase(s, core);

    TCase *limits = tcase_create("Limits");
    tcase_add_checked_fixture(limits, NULL, teardown);
    tcase_set_timeout(limits, 60);
    tcase_add_test(limits, test_limits);
    suite_add_tcase(s, limits);

    TCase *errors = tcase_create("Errors");
    tcase_add_checked_fixture(errors, NULL, teardown);
    tcase_set_timeout(errors, 60);
    tcase_add_test(errors, test_lost_answer_experiment);
    tcase_add_test(errors, test_lost_answer_run);
    tcase_add_test(errors, test_lost_answer_nan_batch);
    tcase_add_test(errors, test_refused);
    tcase_add_test(errors, test_nothing_listening);
    tcase_add_test(errors, test_hang);
    tcase_add_test(errors, test_retry_after);
    tcase_add_test(errors, test_server_errors);
    tcase_add_test(errors, test_not_an_mlflow_url);
    tcase_add_test(errors, test_token_auth);
    tcase_add_test(errors, test_wrong_token);
    tcase_add_test(errors, test_basic_auth);
    tcase_add_test(errors, test_ui_links);
    tcase_add_test(errors, test_ui_links_without_credentials);
    tcase_add_test(errors, test_configuration_keys);
    tcase_add_test(errors, test_needs_url);
    suite_add_tcase(s, errors);

    TCase *parse = tcase_create("Parse");
    tcase_add_loop_test(parse, test_render_filter, 0, sizeof filters / sizeof filters[0]);
    tcase_add_test(parse, test_render_order_by);
    tcase_add_loop_test(parse, test_classify, 0, sizeof answers / sizeof answers[0]);
    tcase_add_test(parse, test_classify_detail_utf8);
    tcase_add_test(parse, test_values);
    tcase_add_test(parse, test_versions_and_tokens);
    tcase_add_test(parse, test_points_drop);
    tcase_add_test(parse, test_transcript_objects);
    suite_add_tcase(s, parse);
    return s;
}

int main(void)
{
    /* the tests talk to 127.0.0.1: a proxy from the environment must not get in between */
    static const char *const proxies[] = {"http_proxy", "https_proxy", "all_proxy",
                                          "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"};
    for (size_t i = 0; i < sizeof proxies / sizeof proxies[0]; i++)
        unsetenv(proxies[i]);
    signal(SIGPIPE, SIG_IGN);
    log_set_level(LOG_LVL_ERROR);
    SRunner *sr = srunner_create(make_mlflow_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
