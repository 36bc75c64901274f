/* /llm-ops/v1/deployments end to end: the stack (tests/harness/stack: private PostgreSQL,
 * llm-opsd behind lighttpd, the background process) with the kserve module in dev and prod
 * and serving-k8s in stg, both against tests/fakes/k8s_fake.py (its simulated controller
 * scripted per object through /_controller, its faults). Every behaviour through the real
 * API: create -> ready, create -> failed with the tool's reason, the tool down during a create
 * (delivered later, exactly one object), GPU types (unknown -> 400 listing the valid ones, MIG
 * resource names), the capacity rule and its race, PATCH, DELETE, canaries (promote, rollback,
 * the automatic rollback of a failed one, audited), predict; serving_rollback_by_name from C
 * on the same database and fake. */
#define _GNU_SOURCE
#include "api.h"
#include "conf.h"
#include "metrics.h"
#include "serving.h"
#include "testutil.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TOKEN "deploy-T0KEN-fake-8"
#define NS "llm"
#define ISVC "/apis/serving.kserve.io/v1beta1/namespaces/" NS "/inferenceservices"

static struct stack st;
static int fake_port, ray_port;
static char fake_dir[256];

#define EXPECT(status, want, j)                                                                    \
    do {                                                                                           \
        if ((status) != (want)) {                                                                  \
            char *d_ = json_dumps(j, JSON_COMPACT);                                                \
            ck_abort_msg("line %d: HTTP %d, wanted %d: %.900s", __LINE__, status, want,            \
                         d_ ? d_ : "?");                                                           \
        }                                                                                          \
    } while (0)

/* ------------------------------------------------------------------ the fake and the stack */

static void fake_start(void)
{
    snprintf(fake_dir, sizeof fake_dir, "/tmp/llmops-depfake-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(fake_dir));
    ck_assert_int_eq(tu_sh("printf %%s '%s' >%s/token && python3 %s/tests/fakes/k8s_fake.py"
                           " --port 0 --ready-file %s/ready --token %s --any-namespace --polls 2"
                           " --max-seconds 900 --idle-timeout 600 >%s/fake.log 2>&1 &"
                           " echo $! >%s/pid",
                           TOKEN, fake_dir, LLMOPS_SOURCE_DIR, fake_dir, TOKEN, fake_dir, fake_dir),
                     0);
    char path[300];
    snprintf(path, sizeof path, "%s/ready", fake_dir);
    fake_port = ready_port(path, "the Kubernetes fake");
    /* Ray Serve's dashboard API: one document that every write replaces whole */
    ck_assert_int_eq(tu_sh("python3 %s/tests/fakes/rayserve_fake.py --port 0 --ready-file"
                           " %s/ray-ready --max-seconds 900 --idle-timeout 600 --polls 2"
                           " >%s/ray.log 2>&1 & echo $! >%s/ray-pid",
                           LLMOPS_SOURCE_DIR, fake_dir, fake_dir, fake_dir),
                     0);
    snprintf(path, sizeof path, "%s/ray-ready", fake_dir);
    ray_port = ready_port(path, "the Ray Serve fake");
}

/* A control call to the fake (/_controller, /_faults, /_refuse, /_state). */
static json_t *fake(const char *method, const char *path, const char *body_fmt, ...)
    __attribute__((format(printf, 3, 4)));
static json_t *fake(const char *method, const char *path, const char *body_fmt, ...)
{
    struct stack f;
    memset(&f, 0, sizeof f);
    snprintf(f.url, sizeof f.url, "http://127.0.0.1:%d", fake_port);
    char *body = NULL;
    if (body_fmt) {
        va_list ap;
        va_start(ap, body_fmt);
        ck_assert_int_ge(vasprintf(&body, body_fmt, ap), 0);
        va_end(ap);
    }
    int s;
    json_t *j =
        body ? api(&f, &s, NULL, method, path, "%s", body) : api(&f, &s, NULL, method, path, NULL);
    free(body);
    ck_assert_msg(s == 200, "fake %s %s: HTTP %d", method, path, s);
    return j;
}

/* The InferenceService `name` as the fake stores it (NULL: none), the caller's. */
static json_t *fake_isvc(const char *name)
{
    json_t *all = fake("GET", "/_state", NULL);
    json_t *coll = json_object_get(all, "serving.kserve.io/inferenceservices");
    char key[128];
    snprintf(key, sizeof key, "%s/%s", NS, name);
    json_t *o = json_object_get(coll, key);
    if (o)
        json_incref(o);
    json_decref(all);
    return o;
}

/* How many InferenceServices the fake holds whose name is `name`. */
static int fake_count(const char *name)
{
    json_t *all = fake("GET", "/_state", NULL);
    json_t *coll = json_object_get(all, "serving.kserve.io/inferenceservices");
    const char *k;
    json_t *v;
    int n = 0;
    json_object_foreach(coll, k, v)
    {
        const char *nm = json_string_value(json_object_get(json_object_get(v, "metadata"), "name"));
        n += nm && strcmp(nm, name) == 0;
    }
    json_decref(all);
    return n;
}

static const char *stack_breaker = "--set breaker.min_calls=100000";
static int stack_workers = 4;

static void setup(void)
{
    fake_start();
    char dropin[300];
    snprintf(dropin, sizeof dropin, "%s/20-serving.conf", fake_dir);
    FILE *f = fopen(dropin, "w");
    ck_assert_ptr_nonnull(f);
    static const char *const names[] = {"kserve-dev", "kserve-prod"};
    for (int i = 0; i < 2; i++)
        fprintf(f,
                "[plugin \"%s\"]\nmodule = kserve\nurl = http://127.0.0.1:%d\n"
                "token_file = %s/token\nnamespace = " NS "\ntimeout_ms = 3000\nretries = 0\n"
                "connect_timeout_ms = 500\n",
                names[i], fake_port, fake_dir);
    fprintf(f,
            "[plugin \"k8s-stg\"]\nmodule = serving-k8s\nurl = http://127.0.0.1:%d\n"
            "token_file = %s/token\nnamespace = " NS "\ntimeout_ms = 3000\nretries = 0\n"
            "connect_timeout_ms = 500\nimage = ghcr.io/example/model-server:1\n"
            "[plugin \"ray-qa\"]\nmodule = rayserve\nurl = http://127.0.0.1:%d\n"
            "import_path = serve_llm:app\ntimeout_ms = 3000\nretries = 0\n"
            "[flags \"dev\"]\nserving = kserve-dev\n[flags \"prod\"]\nserving = kserve-prod\n"
            "[flags \"stg\"]\nserving = k8s-stg\n[flags \"qa\"]\nserving = ray-qa\n"
            "[flags \"flip\"]\nserving = k8s-stg\n",
            fake_port, fake_dir, ray_port);
    fclose(f);
    char opts[900];
    snprintf(opts, sizeof opts,
             "--custom-plugins --workers %d --drop-in %s"
             " --set 'server.environments=dev stg prod qa flip' --set outbox.base_delay_ms=100"
             " --set outbox.max_delay_ms=1000 --set outbox.max_attempts=1000 %s",
             stack_workers, dropin, stack_breaker);
    stack_start(&st, "deploy", opts);
}

/* One worker whose breaker opens after two failed calls of three. */
static void setup_breaker(void)
{
    stack_breaker = "--set breaker.min_calls=2 --set breaker.error_percent=50"
                    " --set breaker.open_seconds=30";
    stack_workers = 1;
    setup();
}

static void teardown(void)
{
    stack_stop(&st);
    if (fake_dir[0]) {
        tu_sh("kill $(cat %s/pid) $(cat %s/ray-pid) 2>/dev/null; rm -rf %s", fake_dir, fake_dir,
              fake_dir);
        fake_dir[0] = '\0';
    }
}

/* ------------------------------------------------------------------ helpers */

static char *uname_(const char *prefix)
{
    static char buf[8][64];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s-%s", prefix, uniq());
    return buf[k];
}

/* POST /deployments?env=E of `extra` members beside name and model; the answer. */
static char last_raw[4096];

static json_t *create(const char *env, const char *name, int *s, const char *extra)
{
    char url[400], *body = NULL;
    snprintf(url, sizeof url, "%s/deployments?env=%s", st.url, env);
    ck_assert_int_ge(asprintf(&body,
                              "{\"name\":\"%s\",\"model\":{\"uri\":\"hf://org/llama\",\"format\":"
                              "\"huggingface\"}%s%s}",
                              name, extra && *extra ? "," : "", extra ? extra : ""),
                     0);
    char *text = http_text("POST", url, st.operator_, NULL, body, s, NULL, 0);
    snprintf(last_raw, sizeof last_raw, "%s", text);
    json_t *j = json_loads(text, 0, NULL);
    free(text);
    free(body);
    return j ? j : json_object();
}

static char *create_ok(const char *env, const char *name, const char *extra)
{
    int s;
    json_t *j = create(env, name, &s, extra);
    EXPECT(s, 201, j);
    if (!jstr(j, "data.state") || strcmp(jstr(j, "data.state"), "progressing") != 0) {
        char *d = json_dumps(j, JSON_COMPACT);
        ck_abort_msg("create of %s answered 201 but not progressing: %.900s (raw: %.1500s)", name,
                     d, last_raw);
    }
    char *id = strdup(jstr(j, "data.id"));
    ck_assert(strncmp(id, "dep_", 4) == 0);
    json_decref(j);
    return id;
}

/* GET /deployments/{id} until `member` (a data.<path>) is `want`, within `seconds`. */
static json_t *wait_for(const char *id, const char *member, const char *want, double seconds)
{
    char path[96];
    snprintf(path, sizeof path, "/deployments/%s", id);
    double end = now_s() + seconds;
    for (;;) {
        int s;
        json_t *j = api(&st, &s, st.reader, "GET", path, NULL);
        EXPECT(s, 200, j);
        const char *v = jstr(j, member);
        if (v && strcmp(v, want) == 0)
            return j;
        if (now_s() > end) {
            char *d = json_dumps(j, JSON_COMPACT);
            ck_abort_msg("%s: %s is not %s after %.0f s: %.900s", id, member, want, seconds, d);
        }
        json_decref(j);
        sleep_ms(150);
    }
}

/* The deployment's audit actions, comma-separated, and the row of the last `action`. */
static json_t *audit(const char *id, char *actions, size_t size)
{
    char path[96];
    snprintf(path, sizeof path, "/deployments/%s/audit", id);
    int s;
    json_t *j = api(&st, &s, st.reader, "GET", path, NULL);
    EXPECT(s, 200, j);
    size_t used = 0, i;
    json_t *a;
    actions[0] = '\0';
    json_array_foreach(jpath(j, "data.audit"), i, a)
    {
        int w = snprintf(actions + used, size - used, "%s%s", used ? "," : "",
                         json_string_value(json_object_get(a, "action")));
        if (w > 0 && (size_t)w < size - used)
            used += (size_t)w;
    }
    return j;
}

static json_t *audit_row(json_t *audit_answer, const char *action)
{
    json_t *found = NULL, *a;
    size_t i;
    json_array_foreach(jpath(audit_answer, "data.audit"), i, a)
    {
        if (strcmp(json_string_value(json_object_get(a, "action")), action) == 0)
            found = a;
    }
    return found;
}

/* ------------------------------------------------------------------ metrics */

/* The value of the series line "NAME{LABELS} V" in a scrape's text, or -1 when absent. */
static double series(const char *text, const char *name_labels)
{
    size_t n = strlen(name_labels);
    for (const char *p = text; p && *p;) {
        if (strncmp(p, name_labels, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return -1;
}

/* One series of GET /llm-ops/metrics (the stack's workers and background process), -1 when
 * absent. */
static double scrape(const char *name_labels)
{
    char url[300];
    snprintf(url, sizeof url, "%.*s/metrics", (int)(strlen(st.url) - 3), st.url);
    int status;
    char *t = http_text("GET", url, NULL, NULL, NULL, &status, NULL, 0);
    ck_assert_int_eq(status, 200);
    double v = series(t, name_labels);
    free(t);
    return v;
}

/* A counter's value, 0 while it was never counted. */
static double counted(const char *name_labels)
{
    double v = scrape(name_labels);
    return v < 0 ? 0 : v;
}

#define DEPS_DEV(state)                                                                            \
    "llmops_deployments{environment=\"dev\",plugin=\"kserve-dev\",state=\"" state "\"}"
#define CANARY(env, action, trigger)                                                               \
    "llmops_canary_transitions_total{environment=\"" env "\",action=\"" action                     \
    "\",trigger=\"" trigger "\"}"
#define SERVING_DEPLOY_OK                                                                          \
    "llmops_outbox_deliveries_total{category=\"serving\",operation=\"deploy\",outcome=\"ok\"}"

/* ------------------------------------------------------------------ create, read, list */

START_TEST(create_becomes_ready)
{
    const char *name = uname_("chat");
    const char *body = "\"runtime\":\"kserve-huggingfaceserver\",\"gpu_type\":\"nvidia-l4\","
                       "\"gpu_count\":1,\"cpu\":\"4\",\"memory\":\"16Gi\","
                       "\"env\":{\"HF_HOME\":\"/cache\"},\"args\":[\"--max-model-len\",\"4096\"]";
    double t0 = now_s();
    char *id = create_ok("dev", name, body);
    json_t *j = wait_for(id, "data.state", "ready", 30);
    double took = now_s() - t0;
    ck_assert_ptr_nonnull(jstr(j, "data.url"));
    ck_assert_int_ge(json_integer_value(jpath(j, "data.ready_replicas")), 1);
    ck_assert_str_eq(jstr(j, "data.instance"), "kserve-dev");
    ck_assert_str_eq(jstr(j, "data.gpu.resource_name"), "nvidia.com/gpu");
    ck_assert_str_eq(json_string_value(json_object_get(jpath(j, "data.gpu.node_selector"),
                                                       "nvidia.com/gpu.product")),
                     "NVIDIA-L4");
    ck_assert_int_eq(json_integer_value(jpath(j, "data.traffic.stable")), 100);
    ck_assert(json_is_null(jpath(j, "data.canary")));
    ck_assert_str_eq(jstr(j, "data.args.1"), "4096");
    json_decref(j);
    fprintf(stderr, "create -> ready through llm-opsd and the background process: %.2f s\n", took);

    /* the tool got the resolved GPU: limit and node selector */
    json_t *o = fake_isvc(name);
    ck_assert_ptr_nonnull(o);
    json_t *pred = jpath(o, "spec.predictor");
    char *text = json_dumps(pred, JSON_COMPACT);
    ck_assert_msg(strstr(text, "\"nvidia.com/gpu\":\"1\"") || strstr(text, "\"nvidia.com/gpu\":1"),
                  "%s", text);
    ck_assert_msg(strstr(text, "NVIDIA-L4"), "%s", text);
    free(text);
    json_decref(o);

    /* the same body again is a retry: 200, the same id; another body is a conflict */
    int s;
    j = create("dev", name, &s, body);
    EXPECT(s, 200, j);
    ck_assert_str_eq(jstr(j, "data.id"), id);
    json_decref(j);
    j = create("dev", name, &s, "\"cpu\":\"2\"");
    EXPECT(s, 409, j);
    ck_assert_str_eq(jstr(j, "data.error.code"), "CONFLICT");
    json_decref(j);
    ck_assert_int_eq(fake_count(name), 1);

    /* listed, with paging */
    j = api(&st, &s, st.reader, "GET", "/deployments?env=dev&state=ready&limit=1000", NULL);
    EXPECT(s, 200, j);
    int listed = 0;
    size_t i;
    json_t *d;
    json_array_foreach(jpath(j, "data.deployments"), i, d) listed +=
        strcmp(json_string_value(json_object_get(d, "id")), id) == 0;
    ck_assert_int_eq(listed, 1);
    json_decref(j);
    j = api(&st, &s, st.reader, "GET", "/deployments?env=dev&state=sleeping", NULL);
    EXPECT(s, 400, j);
    json_decref(j);
    j = api(&st, &s, st.reader, "GET", "/deployments?env=dev&after=job_1", NULL);
    EXPECT(s, 400, j);
    ck_assert_str_eq(jstr(j, "data.error.field"), "after");
    json_decref(j);

    char actions[300];
    j = audit(id, actions, sizeof actions);
    ck_assert_str_eq(actions, "create,ready");
    ck_assert_str_eq(jstr(j, "data.audit.1.after.state"), "ready");
    /* whoever saw it first: the background's watch or this test's GET */
    const char *seen = json_string_value(json_object_get(audit_row(j, "ready"), "actor"));
    ck_assert_msg(!strcmp(seen, SERVING_ACTOR_BACKGROUND) || !strcmp(seen, SERVING_ACTOR_PLATFORM),
                  "%s", seen);
    ck_assert_str_eq(json_string_value(json_object_get(audit_row(j, "create"), "actor")),
                     "stack-operator");
    json_decref(j);
    free(id);
}
END_TEST

START_TEST(create_fails_with_the_tools_reason)
{
    const char *name = uname_("broken");
    json_decref(fake("POST", "/_controller",
                     "{\"plural\":\"inferenceservices\",\"namespace\":\"" NS "\",\"name\":\"%s\","
                     "\"outcome\":\"failed\",\"message\":\"weights missing at hf://org/llama\"}",
                     name));
    char *id = create_ok("dev", name, NULL);
    json_t *j = wait_for(id, "data.state", "failed", 30);
    ck_assert_msg(jstr(j, "data.reason") && strstr(jstr(j, "data.reason"), "weights missing"),
                  "reason %s", jstr(j, "data.reason"));
    json_decref(j);
    char actions[300];
    j = audit(id, actions, sizeof actions);
    ck_assert_str_eq(actions, "create,failed");
    ck_assert_ptr_nonnull(strstr(
        json_string_value(json_object_get(audit_row(j, "failed"), "reason")), "weights missing"));
    json_decref(j);
    free(id);
}
END_TEST

START_TEST(tool_down_during_create_is_delivered_later_once)
{
    /* refused connections: the create is accepted, waits in the outbox, is delivered */
    const char *name = uname_("later");
    /* dev's earlier deployments are ready or failed by now: none progressing */
    double progressing0 = counted(DEPS_DEV("progressing")), ready0 = counted(DEPS_DEV("ready"));
    double deploys0 = counted(SERVING_DEPLOY_OK);
    json_decref(fake("POST", "/_refuse", "{\"seconds\": 3}"));
    sleep_ms(500); /* the fake stops listening from a thread of its own */
    int s;
    json_t *j = create("dev", name, &s, NULL);
    EXPECT(s, 201, j);
    ck_assert_str_eq(jstr(j, "data.state"), "progressing");
    ck_assert_msg(strstr(jstr(j, "message"), "background process delivers it"), "%s",
                  jstr(j, "message"));
    char *id = strdup(jstr(j, "data.id"));
    json_decref(j);
    j = api(&st, &s, st.operator_, "GET", "/outbox?env=dev&state=pending", NULL);
    EXPECT(s, 200, j);
    char *text = json_dumps(j, JSON_COMPACT);
    ck_assert_msg(strstr(text, id), "no pending outbox row for %s: %.600s", id, text);
    free(text);
    json_decref(j);
    /* the scrape counts it progressing (from PostgreSQL), and how long it has been at it */
    ck_assert_double_eq(scrape(DEPS_DEV("progressing")), progressing0 + 1);
    ck_assert_double_gt(scrape("llmops_deployments_oldest_progressing_age_seconds"), 0);
    sleep_ms(2600);
    j = wait_for(id, "data.state", "ready", 40);
    json_decref(j);
    ck_assert_int_eq(fake_count(name), 1);
    /* then ready; the outbox delivered it, counted as serving's deploy (the count follows
     * the tool's answer, which a GET may have seen first) */
    ck_assert_double_eq(scrape(DEPS_DEV("progressing")), progressing0);
    ck_assert_double_eq(scrape(DEPS_DEV("ready")), ready0 + 1);
    for (double end = now_s() + 10; counted(SERVING_DEPLOY_OK) < deploys0 + 1;) {
        ck_assert_msg(now_s() < end, "no " SERVING_DEPLOY_OK " counted after 10 s (was %g)",
                      deploys0);
        sleep_ms(100);
    }
    /* a read while the tool is down answers the stored row, and says so */
    json_decref(fake("POST", "/_refuse", "{\"seconds\": 1.5}"));
    sleep_ms(500);
    char path[96];
    snprintf(path, sizeof path, "/deployments/%s", id);
    j = api(&st, &s, st.reader, "GET", path, NULL);
    EXPECT(s, 200, j);
    ck_assert_str_eq(jstr(j, "data.state"), "ready");
    ck_assert_msg(strstr(jstr(j, "message"), "the tool did not answer"), "%s", jstr(j, "message"));
    json_decref(j);
    sleep_ms(1200);

    /* a lost answer: the tool made it, the request never heard; the background finds it by
     * its key instead of making a second one */
    name = uname_("lost");
    /* the module lists by key, dry-runs, then creates: the create's answer is lost, and so
     * are the answers to the module's own retry and search, so the request gives up; the
     * background then finds the object by its key */
    json_decref(fake("POST", "/_faults",
                     "{\"path\":\"" ISVC "\",\"responses\":[{\"pass\":true},{\"pass\":true},"
                     "{\"lost\":true},{\"lost\":true},{\"lost\":true},{\"lost\":true},"
                     "{\"lost\":true}]}"));
    j = create("dev", name, &s, NULL);
    EXPECT(s, 201, j);
    ck_assert_msg(strstr(jstr(j, "message"), "background process delivers it"), "%s",
                  jstr(j, "message"));
    char *id2 = strdup(jstr(j, "data.id"));
    json_decref(j);
    json_t *stats;
    j = wait_for(id2, "data.state", "ready", 40);
    json_decref(j);
    ck_assert_int_eq(fake_count(name), 1);
    stats = fake("GET", "/_stats", NULL);
    ck_assert_ptr_null(json_object_get(json_object_get(stats, "queued"), ISVC));
    json_decref(stats);
    json_decref(fake("POST", "/_faults", "{\"path\":\"" ISVC "\",\"responses\":[]}"));
    free(id);
    free(id2);
}
END_TEST

/* ------------------------------------------------------------------ GPU types */

START_TEST(unknown_gpu_type_lists_the_valid_ones)
{
    int s;
    json_t *j = create("dev", uname_("nogpu"), &s, "\"gpu_type\":\"tpu-v5\",\"gpu_count\":1");
    EXPECT(s, 400, j);
    ck_assert_str_eq(jstr(j, "data.error.code"), "VALIDATION_FAILED");
    ck_assert_str_eq(jstr(j, "data.error.field"), "gpu_type");
    ck_assert_ptr_nonnull(strstr(jstr(j, "message"), "nvidia-l4"));
    ck_assert_ptr_nonnull(strstr(jstr(j, "message"), "nvidia-t4"));
    int has = 0;
    size_t i;
    json_t *v;
    json_array_foreach(jpath(j, "data.error.valid"), i, v) has +=
        strcmp(json_string_value(v), "nvidia-a100-1g-10gb") == 0;
    ck_assert_int_eq(has, 1);
    json_decref(j);
    /* a disabled type is refused too, and not listed */
    j = api(&st, &s, st.operator_, "PATCH", "/gpu-types/nvidia-t4?env=stg", "{\"enabled\":false}");
    if (s == 404) { /* stg has no t4: take its first type */
        json_decref(j);
        j = api(&st, &s, st.operator_, "PATCH", "/gpu-types/nvidia-a10g?env=stg",
                "{\"enabled\":false}");
    }
    EXPECT(s, 200, j);
    char gname[64];
    snprintf(gname, sizeof gname, "%s", jstr(j, "data.name"));
    json_decref(j);
    char extra[128];
    snprintf(extra, sizeof extra, "\"gpu_type\":\"%s\"", gname);
    j = create("stg", uname_("off"), &s, extra);
    EXPECT(s, 400, j);
    ck_assert_ptr_nonnull(strstr(jstr(j, "message"), "disabled"));
    json_decref(j);
    j = create("dev", uname_("count"), &s, "\"gpu_count\":2");
    EXPECT(s, 400, j);
    ck_assert_str_eq(jstr(j, "data.error.field"), "gpu_type");
    json_decref(j);
    j = create("dev", "Not_A_Label", &s, NULL);
    EXPECT(s, 400, j);
    ck_assert_str_eq(jstr(j, "data.error.field"), "name");
    json_decref(j);
    j = create("dev", uname_("rep"), &s, "\"replicas\":{\"min\":1,\"max\":101}");
    EXPECT(s, 400, j);
    ck_assert_str_eq(jstr(j, "data.error.field"), "replicas.max");
    json_decref(j);
}
END_TEST

START_TEST(mig_slice_is_its_own_resource)
{
    const char *name = uname_("mig");
    char *id = create_ok("dev", name, "\"gpu_type\":\"nvidia-a100-1g-10gb\",\"gpu_count\":2");
    json_t *j = wait_for(id, "data.state", "ready", 30);
    ck_assert_str_eq(jstr(j, "data.gpu.resource_name"), "nvidia.com/mig-1g.10gb");
    ck_assert_str_eq(jstr(j, "data.gpu.mig_profile"), "1g.10gb");
    json_decref(j);
    json_t *o = fake_isvc(name);
    char *text = json_dumps(jpath(o, "spec.predictor"), JSON_COMPACT);
    ck_assert_msg(strstr(text, "nvidia.com/mig-1g.10gb"), "%s", text);
    ck_assert_msg(!strstr(text, "\"nvidia.com/gpu\""), "%s", text);
    ck_assert_msg(strstr(text, "all-1g.10gb"), "%s", text);
    free(text);
    json_decref(o);
    free(id);
}
END_TEST

/* ------------------------------------------------------------------ capacity */

/* A GPU type of prod with `capacity`, used by nothing else. */
static void gpu_type(const char *name, int capacity)
{
    int s;
    json_t *j = api(&st, &s, st.operator_, "POST", "/gpu-types?env=prod",
                    "{\"name\":\"%s\",\"vendor\":\"nvidia\",\"model\":\"Race\",\"memory_gib\":80,"
                    "\"resource_name\":\"nvidia.com/gpu\",\"node_selector\":{\"key\":\"race\","
                    "\"value\":\"%s\"},\"capacity\":%d}",
                    name, name, capacity);
    EXPECT(s, 201, j);
    json_decref(j);
}

/* N concurrent creates through lighttpd and llm-opsd (curl processes started together) in
 * env, of gpu type gname when not NULL, named PREFIX-i: how many answered each status. */
static void race_in(const char *env, const char *prefix, const char *gname, int n, int *created,
                    int *refused, int *other)
{
    char out[300], body[300];
    snprintf(out, sizeof out, "%s/race.out", fake_dir);
    snprintf(body, sizeof body, "%s/race.sh", fake_dir);
    FILE *f = fopen(body, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "#!/bin/sh\nrm -f %s\n", out);
    for (int i = 0; i < n; i++)
        fprintf(f,
                "curl -s -o /dev/null -w '%%{http_code}\\n' -X POST -H 'Authorization: Bearer %s'"
                " -H 'Content-Type: application/json' -d '{\"name\":\"%s-%d\",\"model\":"
                "{\"uri\":\"hf://org/m\",\"format\":\"huggingface\"}%s%s%s}'"
                " '%s/deployments?env=%s' >>%s &\n",
                st.operator_, prefix, i, gname ? ",\"gpu_count\":1,\"gpu_type\":\"" : "",
                gname ? gname : "", gname ? "\"" : "", st.url, env, out);
    fprintf(f, "wait\n");
    fclose(f);
    ck_assert_int_eq(tu_sh("sh %s", body), 0);
    *created = *refused = *other = 0;
    f = fopen(out, "r");
    ck_assert_ptr_nonnull(f);
    int code;
    while (fscanf(f, "%d", &code) == 1) {
        if (code == 201)
            (*created)++;
        else if (code == 409)
            (*refused)++;
        else
            (*other)++;
    }
    fclose(f);
}

static void race(const char *gname, int n, int *created, int *refused, int *other)
{
    char prefix[64];
    snprintf(prefix, sizeof prefix, "race-%s", uniq());
    race_in("prod", prefix, gname, n, created, refused, other);
}

START_TEST(capacity_race_cannot_oversubscribe)
{
    enum { N = 16, CAPACITY = 3, TRIALS = 3 };
    for (int t = 0; t < TRIALS; t++) {
        char gname[64];
        snprintf(gname, sizeof gname, "race-%s", uniq());
        gpu_type(gname, CAPACITY);
        int created, refused, other;
        double t0 = now_s();
        race(gname, N, &created, &refused, &other);
        fprintf(stderr,
                "capacity race %d: %d parallel creates, capacity %d: %d created, %d refused "
                "(409), %d other, %.2f s\n",
                t + 1, N, CAPACITY, created, refused, other, now_s() - t0);
        ck_assert_int_eq(other, 0);
        ck_assert_int_eq(created, CAPACITY);
        ck_assert_int_eq(refused, N - CAPACITY);
    }
}
END_TEST

START_TEST(capacity_counts_deployments_canaries_and_jobs)
{
    char gname[64];
    snprintf(gname, sizeof gname, "cap-%s", uniq());
    gpu_type(gname, 6);
    char extra[200];
    /* 2 GPUs x replicas.max 2 = 4 of 6 */
    snprintf(extra, sizeof extra,
             "\"gpu_type\":\"%s\",\"gpu_count\":2,\"replicas\":{\"min\":1,\"max\":2},"
             "\"autoscaling\":{\"metric\":\"concurrency\",\"target\":10}",
             gname);
    char *id = create_ok("prod", uname_("cap"), extra);
    int s;
    /* 4 more would be 8 */
    json_t *j = create("prod", uname_("cap2"), &s, extra);
    EXPECT(s, 409, j);
    ck_assert_str_eq(jstr(j, "data.error.code"), "CONFLICT");
    ck_assert_str_eq(jstr(j, "data.error.gpu_type"), gname);
    ck_assert_int_eq(json_integer_value(jpath(j, "data.error.requested")), 4);
    ck_assert_int_eq(json_integer_value(jpath(j, "data.error.free")), 2);
    ck_assert_int_eq(json_integer_value(jpath(j, "data.error.capacity")), 6);
    ck_assert_ptr_nonnull(strstr(jstr(j, "message"), "2 free of 6"));
    json_decref(j);
    /* a training job of 3 GPUs does not fit in the 2 free: the same 409 */
    j = api(&st, &s, st.operator_, "POST", "/training-jobs?env=prod",
            "{\"name\":\"ft\",\"experiment\":\"cap-%s\",\"base_model\":\"m\",\"dataset\":\"d\","
            "\"gpu_type\":\"%s\",\"gpu_count\":3}",
            uniq(), gname);
    EXPECT(s, 409, j);
    ck_assert_msg(json_integer_value(jpath(j, "data.error.free")) == 2, "%s", jstr(j, "message"));
    ck_assert_int_eq(json_integer_value(jpath(j, "data.error.requested")), 3);
    json_decref(j);
    /* one of 2 fits; once RUNNING it holds them: then nothing is free */
    j = api(&st, &s, st.operator_, "POST", "/training-jobs?env=prod",
            "{\"name\":\"ft\",\"experiment\":\"cap-%s\",\"base_model\":\"m\",\"dataset\":\"d\","
            "\"gpu_type\":\"%s\",\"gpu_count\":2}",
            uniq(), gname);
    EXPECT(s, 201, j);
    char jpath_[96];
    snprintf(jpath_, sizeof jpath_, "/training-jobs/%s", jstr(j, "data.id"));
    json_decref(j);
    j = api(&st, &s, st.operator_, "PATCH", jpath_, "{\"status\":\"RUNNING\"}");
    EXPECT(s, 200, j);
    json_decref(j);
    /* PATCH raising replicas.max to 3 needs 6 in all (its own 4 given back): 4 free */
    char path[96];
    snprintf(path, sizeof path, "/deployments/%s", id);
    json_decref(wait_for(id, "data.state", "ready", 30));
    j = api(&st, &s, st.operator_, "PATCH", path, "{\"replicas\":{\"min\":1,\"max\":3}}");
    EXPECT(s, 409, j);
    ck_assert_int_eq(json_integer_value(jpath(j, "data.error.requested")), 6);
    ck_assert_int_eq(json_integer_value(jpath(j, "data.error.free")), 4);
    json_decref(j);
    /* a canary would take as many again: refused */
    snprintf(path, sizeof path, "/deployments/%s/canary", id);
    j = api(&st, &s, st.operator_, "POST", path,
            "{\"model\":{\"uri\":\"hf://org/m2\",\"format\":\"huggingface\"},"
            "\"traffic_percent\":10}");
    EXPECT(s, 409, j);
    ck_assert_int_eq(json_integer_value(jpath(j, "data.error.requested")), 8);
    json_decref(j);
    /* the job ends: its GPUs are free again, the PATCH fits */
    j = api(&st, &s, st.operator_, "PATCH", jpath_, "{\"status\":\"SUCCEEDED\"}");
    EXPECT(s, 200, j);
    json_decref(j);
    snprintf(path, sizeof path, "/deployments/%s", id);
    j = api(&st, &s, st.operator_, "PATCH", path, "{\"replicas\":{\"min\":1,\"max\":3}}");
    EXPECT(s, 200, j);
    json_decref(j);
    free(id);
}
END_TEST

/* ------------------------------------------------------------------ PATCH, DELETE */

START_TEST(patch_scales_and_delete_removes)
{
    const char *name = uname_("scale");
    char *id = create_ok("dev", name, NULL);
    json_decref(wait_for(id, "data.state", "ready", 30));
    char path[96];
    snprintf(path, sizeof path, "/deployments/%s", id);
    int s;
    json_t *j = api(&st, &s, st.operator_, "PATCH", path,
                    "{\"replicas\":{\"min\":1,\"max\":4},\"autoscaling\":{\"metric\":"
                    "\"concurrency\",\"target\":8}}");
    EXPECT(s, 200, j);
    ck_assert_int_eq(json_integer_value(jpath(j, "data.replicas.max")), 4);
    ck_assert_str_eq(jstr(j, "data.autoscaling.metric"), "concurrency");
    json_decref(j);
    json_t *o = fake_isvc(name);
    ck_assert_int_eq(json_integer_value(jpath(o, "spec.predictor.maxReplicas")), 4);
    ck_assert_int_eq(json_integer_value(jpath(o, "spec.predictor.minReplicas")), 1);
    json_decref(o);
    json_decref(wait_for(id, "data.state", "ready", 30));
    /* one member alone: the other stays as it is */
    j = api(&st, &s, st.operator_, "PATCH", path,
            "{\"autoscaling\":{\"metric\":\"concurrency\",\"target\":20}}");
    EXPECT(s, 200, j);
    ck_assert_int_eq(json_integer_value(jpath(j, "data.replicas.max")), 4);
    ck_assert_int_eq(json_integer_value(jpath(j, "data.autoscaling.target")), 20);
    json_decref(j);
    json_decref(wait_for(id, "data.state", "ready", 30));
    /* min < max without autoscaling, and an empty body: 400 */
    j = api(&st, &s, st.operator_, "PATCH", path, "{\"autoscaling\":null}");
    EXPECT(s, 400, j);
    ck_assert_str_eq(jstr(j, "data.error.field"), "autoscaling");
    json_decref(j);
    j = api(&st, &s, st.operator_, "PATCH", path, "{}");
    EXPECT(s, 400, j);
    json_decref(j);
    /* back to one replica, autoscaling removed */
    j = api(&st, &s, st.operator_, "PATCH", path,
            "{\"replicas\":{\"min\":2,\"max\":2},\"autoscaling\":null}");
    EXPECT(s, 200, j);
    ck_assert(json_is_null(jpath(j, "data.autoscaling")));
    json_decref(j);
    char actions[300];
    json_decref(audit(id, actions, sizeof actions));
    ck_assert_msg(strstr(actions, "create,ready,scale,ready,scale"), "%s", actions);

    j = api(&st, &s, st.operator_, "DELETE", path, NULL);
    EXPECT(s, 204, j);
    json_decref(j);
    j = api(&st, &s, st.reader, "GET", path, NULL);
    EXPECT(s, 404, j);
    json_decref(j);
    j = api(&st, &s, st.operator_, "DELETE", path, NULL);
    EXPECT(s, 404, j);
    json_decref(j);
    ck_assert_int_eq(fake_count(name), 0);
    json_decref(audit(id, actions, sizeof actions));
    ck_assert_msg(strstr(actions, ",delete"), "%s", actions);
    /* the name is free again */
    char *id2 = create_ok("dev", name, NULL);
    ck_assert_str_ne(id2, id);
    free(id2);
    free(id);
}
END_TEST

/* ------------------------------------------------------------------ canary */

static char *ready_deployment(const char *env, const char *name)
{
    char *id = create_ok(env, name, NULL);
    json_decref(wait_for(id, "data.state", "ready", 30));
    return id;
}

START_TEST(canary_then_promote)
{
    const char *name = uname_("canary");
    char *id = ready_deployment("dev", name);
    double created0 = counted(CANARY("dev", "create", "api")),
           traffic0 = counted(CANARY("dev", "traffic", "api")),
           promoted0 = counted(CANARY("dev", "promote", "api"));
    char path[128];
    snprintf(path, sizeof path, "/deployments/%s/canary", id);
    int s;
    json_t *j = api(&st, &s, st.operator_, "POST", path,
                    "{\"model\":{\"uri\":\"hf://org/llama-v2\",\"format\":\"huggingface\"},"
                    "\"traffic_percent\":10}");
    EXPECT(s, 201, j);
    ck_assert_int_eq(json_integer_value(jpath(j, "data.canary.traffic_percent")), 10);
    ck_assert_str_eq(jstr(j, "data.canary.model.uri"), "hf://org/llama-v2");
    json_decref(j);
    /* one at a time */
    j = api(&st, &s, st.operator_, "POST", path, "{\"args\":[\"--x\"],\"traffic_percent\":20}");
    EXPECT(s, 409, j);
    json_decref(j);
    j = wait_for(id, "data.canary.state", "ready", 30);
    ck_assert_int_eq(json_integer_value(jpath(j, "data.traffic.canary")), 10);
    ck_assert_int_eq(json_integer_value(jpath(j, "data.traffic.stable")), 90);
    ck_assert_str_eq(jstr(j, "data.state"), "ready");
    json_decref(j);
    j = api(&st, &s, st.operator_, "PATCH", path, "{\"traffic_percent\":30}");
    EXPECT(s, 200, j);
    ck_assert_int_eq(json_integer_value(jpath(j, "data.canary.traffic_percent")), 30);
    json_decref(j);
    json_t *o = fake_isvc(name);
    ck_assert_int_eq(json_integer_value(jpath(o, "spec.predictor.canaryTrafficPercent")), 30);
    json_decref(o);
    snprintf(path, sizeof path, "/deployments/%s/promote", id);
    j = api(&st, &s, st.operator_, "POST", path, NULL);
    EXPECT(s, 200, j);
    ck_assert(json_is_null(jpath(j, "data.canary")));
    ck_assert_int_eq(json_integer_value(jpath(j, "data.traffic.stable")), 100);
    ck_assert_str_eq(jstr(j, "data.model.uri"), "hf://org/llama-v2");
    json_decref(j);
    o = fake_isvc(name);
    ck_assert_ptr_null(jpath(o, "spec.predictor.canaryTrafficPercent"));
    json_decref(o);
    j = api(&st, &s, st.operator_, "POST", path, NULL);
    EXPECT(s, 409, j); /* no canary left */
    json_decref(j);
    json_decref(wait_for(id, "data.state", "ready", 30));
    char actions[300];
    json_decref(audit(id, actions, sizeof actions));
    ck_assert_msg(strstr(actions, "create,ready,canary,ready,traffic,promote,ready"), "%s",
                  actions);
    /* one of each, by the API; the refused second canary and promote count nothing */
    ck_assert_double_eq(counted(CANARY("dev", "create", "api")), created0 + 1);
    ck_assert_double_eq(counted(CANARY("dev", "traffic", "api")), traffic0 + 1);
    ck_assert_double_eq(counted(CANARY("dev", "promote", "api")), promoted0 + 1);
    free(id);
}
END_TEST

START_TEST(canary_then_rollback)
{
    char *id = ready_deployment("dev", uname_("back"));
    double api0 = counted(CANARY("dev", "rollback", "api")),
           auto0 = counted(CANARY("dev", "rollback", "tool_failed"));
    char path[128];
    snprintf(path, sizeof path, "/deployments/%s/canary", id);
    int s;
    json_t *j = api(&st, &s, st.operator_, "POST", path,
                    "{\"env\":{\"MODE\":\"fast\"},\"traffic_percent\":25}");
    EXPECT(s, 201, j);
    json_decref(j);
    snprintf(path, sizeof path, "/deployments/%s/rollback", id);
    j = api(&st, &s, st.operator_, "POST", path, "{\"reason\":\"p99 latency doubled\"}");
    EXPECT(s, 200, j);
    ck_assert(json_is_null(jpath(j, "data.canary")));
    ck_assert_int_eq(json_integer_value(jpath(j, "data.traffic.stable")), 100);
    ck_assert_int_eq(json_integer_value(jpath(j, "data.traffic.canary")), 0);
    json_decref(j);
    j = api(&st, &s, st.operator_, "POST", path, NULL);
    EXPECT(s, 409, j);
    json_decref(j);
    char actions[300];
    j = audit(id, actions, sizeof actions);
    json_t *row = audit_row(j, "rollback");
    ck_assert_ptr_nonnull(row);
    ck_assert_str_eq(json_string_value(json_object_get(row, "reason")), "p99 latency doubled");
    ck_assert_str_eq(json_string_value(json_object_get(row, "actor")), "stack-operator");
    ck_assert_int_eq(json_integer_value(jpath(row, "before.canary.traffic_percent")), 25);
    json_decref(j);
    /* a rollback by hand: trigger api, once (the 409 counts nothing) */
    ck_assert_double_eq(counted(CANARY("dev", "rollback", "api")), api0 + 1);
    ck_assert_double_eq(counted(CANARY("dev", "rollback", "tool_failed")), auto0);
    free(id);
}
END_TEST

START_TEST(failed_canary_is_rolled_back_by_the_background)
{
    const char *name = uname_("auto");
    char *id = ready_deployment("dev", name);
    double api0 = counted(CANARY("dev", "rollback", "api")),
           auto0 = counted(CANARY("dev", "rollback", "tool_failed"));
    /* the next rollout of this object (the canary's revision) fails in the tool */
    json_decref(fake("POST", "/_controller",
                     "{\"plural\":\"inferenceservices\",\"namespace\":\"" NS "\",\"name\":\"%s\","
                     "\"outcome\":\"failed\",\"message\":\"CUDA out of memory in the canary\"}",
                     name));
    char path[128];
    snprintf(path, sizeof path, "/deployments/%s/canary", id);
    int s;
    json_t *j = api(&st, &s, st.operator_, "POST", path,
                    "{\"model\":{\"uri\":\"hf://org/too-big\",\"format\":\"huggingface\"},"
                    "\"traffic_percent\":10}");
    EXPECT(s, 201, j);
    json_decref(j);
    double end = now_s() + 30;
    json_t *row = NULL;
    char actions[300];
    for (;;) {
        j = audit(id, actions, sizeof actions);
        row = audit_row(j, "rollback");
        if (row)
            break;
        ck_assert_msg(now_s() < end, "no automatic rollback after 30 s: %s", actions);
        json_decref(j);
        sleep_ms(200);
    }
    ck_assert_str_eq(json_string_value(json_object_get(row, "actor")), SERVING_ACTOR_BACKGROUND);
    /* counted by the background before it committed the audit row: trigger tool_failed */
    ck_assert_double_eq(counted(CANARY("dev", "rollback", "tool_failed")), auto0 + 1);
    ck_assert_double_eq(counted(CANARY("dev", "rollback", "api")), api0);
    ck_assert_msg(strstr(json_string_value(json_object_get(row, "reason")), "CUDA out of memory"),
                  "%s", json_string_value(json_object_get(row, "reason")));
    json_decref(j);
    snprintf(path, sizeof path, "/deployments/%s", id);
    j = api(&st, &s, st.reader, "GET", path, NULL);
    EXPECT(s, 200, j);
    ck_assert(json_is_null(jpath(j, "data.canary")));
    ck_assert_int_eq(json_integer_value(jpath(j, "data.traffic.stable")), 100);
    json_decref(j);
    json_t *o = fake_isvc(name);
    ck_assert_ptr_null(jpath(o, "spec.predictor.canaryTrafficPercent"));
    ck_assert_str_eq(jstr(o, "spec.predictor.model.storageUri"), "hf://org/llama");
    json_decref(o);
    free(id);
}
END_TEST

START_TEST(unsupported_split_names_the_feature)
{
    /* serving-k8s splits by replicas: an exact percentage is refused, not approximated */
    char *id = ready_deployment("stg", uname_("split"));
    char path[128];
    snprintf(path, sizeof path, "/deployments/%s/canary", id);
    int s;
    json_t *j =
        api(&st, &s, st.operator_, "POST", path, "{\"args\":[\"--v2\"],\"traffic_percent\":10}");
    EXPECT(s, 400, j);
    ck_assert_str_eq(jstr(j, "data.error.code"), "VALIDATION_FAILED");
    ck_assert_str_eq(jstr(j, "data.error.feature"), "canary_percent");
    ck_assert_ptr_nonnull(strstr(jstr(j, "message"), "canary_percent"));
    /* refused by the core from serving's operations table, before the module: the message
     * names the op, the member, the feature and the instance */
    ck_assert_msg(strstr(jstr(j, "message"),
                         "create_canary with traffic_percent needs feature \"canary_percent\", "
                         "which instance k8s-stg (module serving-k8s)"),
                  "%s", jstr(j, "message"));
    ck_assert_str_eq(jstr(j, "data.error.field"), "traffic_percent");
    ck_assert_str_eq(jstr(j, "data.error.instance"), "k8s-stg");
    json_decref(j);
    snprintf(path, sizeof path, "/deployments/%s", id);
    j = api(&st, &s, st.reader, "GET", path, NULL);
    EXPECT(s, 200, j);
    ck_assert(json_is_null(jpath(j, "data.canary"))); /* nothing left behind */
    json_decref(j);
    /* the same for set_canary_traffic on a canary made the instance's way */
    snprintf(path, sizeof path, "/deployments/%s/canary", id);
    j = api(&st, &s, st.operator_, "POST", path, "{\"args\":[\"--v2\"],\"canary_replicas\":1}");
    EXPECT(s, 201, j);
    json_decref(j);
    j = api(&st, &s, st.operator_, "PATCH", path, "{\"traffic_percent\":50}");
    EXPECT(s, 400, j);
    ck_assert_str_eq(jstr(j, "data.error.feature"), "canary_percent");
    ck_assert_msg(strstr(jstr(j, "message"), "set_canary_traffic with traffic_percent needs "
                                             "feature \"canary_percent\""),
                  "%s", jstr(j, "message"));
    json_decref(j);
    snprintf(path, sizeof path, "/deployments/%s/rollback", id);
    j = api(&st, &s, st.operator_, "POST", path, NULL);
    EXPECT(s, 200, j);
    json_decref(j);
    free(id);
}
END_TEST

/* ------------------------------------------------------------------ the alert entry point */

START_TEST(rollback_by_name_from_c)
{
    const char *name = uname_("alert");
    char *id = ready_deployment("dev", name);
    char path[128];
    snprintf(path, sizeof path, "/deployments/%s/canary", id);
    int s;
    json_t *j =
        api(&st, &s, st.operator_, "POST", path, "{\"args\":[\"--v2\"],\"traffic_percent\":10}");
    EXPECT(s, 201, j);
    json_decref(j);

    struct llmops_conf conf;
    struct conf_errors errs = {0};
    ck_assert_int_eq(conf_load(st.conf, &conf, &errs), 0);
    conf_errors_free(&errs);
    struct app *app = calloc(1, sizeof *app);
    ck_assert_ptr_nonnull(app);
    app_init(app, &conf);
    struct llmops_error err;
    int rolled = -1;
    ck_assert_int_eq(serving_rollback_by_name(app, "dev", "no-such-deployment", "alertmanager",
                                              "HighErrorRate", &rolled, &err),
                     -1);
    ck_assert_int_eq(err.code, LLMOPS_ERR_NOT_FOUND);
    ck_assert_int_eq(
        serving_rollback_by_name(app, "prod", name, "alertmanager", "HighErrorRate", &rolled, &err),
        -1); /* another environment */
    ck_assert_int_eq(err.code, LLMOPS_ERR_NOT_FOUND);
    ck_assert_msg(serving_rollback_by_name(app, "dev", name, "alertmanager", "HighErrorRate",
                                           &rolled, &err) == 0,
                  "%s", err.message);
    ck_assert_int_eq(rolled, 1);
    /* Alertmanager repeats itself: nothing more happens */
    ck_assert_int_eq(
        serving_rollback_by_name(app, "dev", name, "alertmanager", "HighErrorRate", &rolled, &err),
        0);
    ck_assert_int_eq(rolled, 0);
    /* counted in this process's metrics (it has no shared file): trigger alert, once */
    size_t len = 0;
    char *text = metrics_render(NULL, &len);
    ck_assert_ptr_nonnull(text);
    ck_assert_msg(series(text, CANARY("dev", "rollback", "alert")) == 1, "%s", text);
    ck_assert_msg(series(text, CANARY("dev", "rollback", "api")) == -1, "%s", text);
    free(text);
    app_fini(app);
    free(app);
    conf_free(&conf);

    char actions[300];
    j = audit(id, actions, sizeof actions);
    ck_assert_msg(strstr(actions, "canary,rollback") && !strstr(actions, "rollback,rollback"), "%s",
                  actions);
    json_t *row = audit_row(j, "rollback");
    ck_assert_str_eq(json_string_value(json_object_get(row, "actor")), "alertmanager");
    ck_assert_str_eq(json_string_value(json_object_get(row, "reason")), "HighErrorRate");
    json_decref(j);
    json_t *o = fake_isvc(name);
    ck_assert_ptr_null(jpath(o, "spec.predictor.canaryTrafficPercent"));
    json_decref(o);
    free(id);
}
END_TEST

/* ------------------------------------------------------------------ predict */

START_TEST(predict_passes_through)
{
    const char *name = uname_("pred");
    json_decref(fake("POST", "/_controller",
                     "{\"plural\":\"inferenceservices\",\"namespace\":\"" NS "\",\"name\":\"%s\","
                     "\"polls\":6,\"url\":\"http://127.0.0.1:%d/_predict/%s\"}",
                     name, fake_port, name));
    char *id = create_ok("dev", name, NULL);
    char path[160];
    snprintf(path, sizeof path, "/deployments/%s/predict", id);
    int s;
    json_t *j = api(&st, &s, st.operator_, "POST", path, "{\"instances\":[[1,2]]}");
    EXPECT(s, 409, j); /* not ready yet */
    json_decref(j);
    json_decref(wait_for(id, "data.state", "ready", 30));
    j = api(&st, &s, st.operator_, "POST", path, "{\"instances\":[[1,2]]}");
    EXPECT(s, 200, j);
    ck_assert_int_eq(json_integer_value(jpath(j, "data.status")), 200);
    ck_assert_int_eq(json_integer_value(jpath(j, "data.body.echo.instances.0.1")), 2);
    char want[128];
    snprintf(want, sizeof want, "/_predict/%s/v1/models/%s:predict", name, name);
    ck_assert_str_eq(jstr(j, "data.body.path"), want);
    json_decref(j);
    /* the model server's status is kept, its JSON too */
    snprintf(path, sizeof path, "/deployments/%s/predict?path=/v2/models/m/infer", id);
    j = api(&st, &s, st.operator_, "POST", path, "{\"fake_status\":422}");
    EXPECT(s, 422, j);
    ck_assert_str_eq(jstr(j, "data.error.code"), "TOOL_ERROR");
    ck_assert_int_eq(json_integer_value(jpath(j, "data.error.tool_status")), 422);
    ck_assert_ptr_nonnull(strstr(jstr(j, "data.error.body.path"), "/v2/models/m/infer"));
    json_decref(j);
    snprintf(path, sizeof path, "/deployments/%s/predict?path=../etc", id);
    j = api(&st, &s, st.operator_, "POST", path, "{}");
    EXPECT(s, 400, j);
    json_decref(j);
    j = api(&st, &s, st.reader, "POST", path, "{}");
    EXPECT(s, 403, j);
    json_decref(j);
    free(id);
}
END_TEST

/* rayserve keeps every application in one document that a write replaces whole: concurrent
 * creates through different workers would lose each other's applications unless the core
 * runs the instance's writes one at a time (feature serialized_writes). */
START_TEST(serialized_writes_lose_no_application)
{
    enum { N = 8 };
    char prefix[64];
    snprintf(prefix, sizeof prefix, "ray-%s", uniq());
    int created, refused, other;
    double t0 = now_s();
    race_in("qa", prefix, NULL, N, &created, &refused, &other);
    fprintf(stderr, "rayserve: %d parallel creates: %d created, %d other, %.2f s\n", N, created,
            refused + other, now_s() - t0);
    ck_assert_int_eq(created, N);
    json_t *all = NULL;
    int present = 0;
    double end = now_s() + 20;
    for (;;) { /* what the tool holds: every application written */
        struct stack f;
        memset(&f, 0, sizeof f);
        snprintf(f.url, sizeof f.url, "http://127.0.0.1:%d", ray_port);
        int s;
        all = api(&f, &s, NULL, "GET", "/api/serve/applications/", NULL);
        ck_assert_int_eq(s, 200);
        present = 0;
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(all, "applications"), k, v) present +=
            strncmp(k, prefix, strlen(prefix)) == 0;
        json_decref(all);
        if (present == N || now_s() > end)
            break;
        sleep_ms(200);
    }
    ck_assert_int_eq(present, N);
}
END_TEST

/* With the instance's breaker open the request does not call the tool at all: the create
 * waits in the outbox at once and is delivered once the tool is back. */
START_TEST(breaker_open_create_waits_in_the_outbox)
{
    json_decref(fake("POST", "/_refuse", "{\"seconds\": 4}"));
    sleep_ms(500);
    char ids[3][64];
    const char *names[3];
    for (int i = 0; i < 3; i++) {
        names[i] = uname_("brk");
        int s;
        json_t *j = create("dev", names[i], &s, NULL);
        EXPECT(s, 201, j);
        snprintf(ids[i], sizeof ids[i], "%s", jstr(j, "data.id"));
        const char *msg = jstr(j, "message");
        if (i == 2)
            ck_assert_msg(strstr(msg, "breaker open"), "%s", msg);
        else
            ck_assert_msg(strstr(msg, "did not take it yet"), "%s", msg);
        json_decref(j);
    }
    for (int i = 0; i < 3; i++) {
        json_decref(wait_for(ids[i], "data.state", "ready", 40));
        ck_assert_int_eq(fake_count(names[i]), 1);
    }
}
END_TEST

/* ------------------------------------------------------------------ follow-ups */

/* The dev-like environment flip starts on serving-k8s; its flag then moves to kserve and back.
 * Every deployment stays on the instance that made it (the objects table), whatever the flag
 * says now. */
static json_t *flag_put(const char *body)
{
    int s;
    json_t *j = api(&st, &s, st.operator_, "PUT", "/flags/flip/serving", "%s", body);
    EXPECT(s, 200, j);
    return j;
}

/* Creates deployments named PREFIX-N in flip until one lands on `instance` (the workers see a
 * flag change within a few seconds), deleting those that did not; its id. */
static char *create_on(const char *prefix, const char *instance, char *name, size_t size)
{
    double end = now_s() + 10;
    for (int n = 0;; n++) {
        snprintf(name, size, "%s-%d", prefix, n);
        int s;
        json_t *j = create("flip", name, &s, NULL);
        EXPECT(s, 201, j);
        char *id = strdup(jstr(j, "data.id"));
        int here = strcmp(jstr(j, "data.instance"), instance) == 0;
        json_decref(j);
        if (here)
            return id;
        ck_assert_msg(now_s() < end, "creates in flip still go to another instance than %s",
                      instance);
        char path[96];
        snprintf(path, sizeof path, "/deployments/%s", id);
        j = api(&st, &s, st.operator_, "DELETE", path, NULL);
        EXPECT(s, 204, j);
        json_decref(j);
        free(id);
        sleep_ms(300);
    }
}

/* The serving-k8s Deployment `name` as the fake stores it (NULL: none), the caller's. */
static json_t *fake_k8s_deployment(const char *name)
{
    json_t *all = fake("GET", "/_state", NULL);
    char key[128];
    snprintf(key, sizeof key, "%s/%s", NS, name);
    json_t *o = json_object_get(json_object_get(all, "apps/deployments"), key);
    if (o)
        json_incref(o);
    json_decref(all);
    return o;
}

START_TEST(flag_flip_keeps_each_deployment_where_it_lives)
{
    char prefix[64], a[80], b[80], c[80];
    snprintf(prefix, sizeof prefix, "flipa-%s", uniq());
    char *ida = create_on(prefix, "k8s-stg", a, sizeof a);
    json_decref(wait_for(ida, "data.state", "ready", 30));
    json_t *o = fake_k8s_deployment(a);
    ck_assert_ptr_nonnull(o);
    json_decref(o);

    json_decref(flag_put("{\"active\":\"kserve-dev\",\"fallback\":\"k8s-stg\","
                         "\"reason\":\"flip to kserve\"}"));
    snprintf(prefix, sizeof prefix, "flipb-%s", uniq());
    char *idb = create_on(prefix, "kserve-dev", b, sizeof b);
    json_decref(wait_for(idb, "data.state", "ready", 30));
    ck_assert_int_eq(fake_count(b), 1);
    ck_assert_ptr_null(fake_k8s_deployment(b));

    /* A still reads, patches and deletes through serving-k8s */
    char path[96];
    snprintf(path, sizeof path, "/deployments/%s", ida);
    int s;
    json_t *j = api(&st, &s, st.reader, "GET", path, NULL);
    EXPECT(s, 200, j);
    ck_assert_str_eq(jstr(j, "data.instance"), "k8s-stg");
    ck_assert_str_eq(jstr(j, "data.state"), "ready");
    json_decref(j);
    j = api(&st, &s, st.operator_, "PATCH", path, "{\"replicas\":{\"min\":2,\"max\":2}}");
    EXPECT(s, 200, j);
    ck_assert_str_eq(jstr(j, "data.instance"), "k8s-stg");
    json_decref(j);
    o = fake_k8s_deployment(a);
    ck_assert_int_eq(json_integer_value(jpath(o, "spec.replicas")), 2);
    json_decref(o);
    ck_assert_int_eq(fake_count(a), 0); /* never an InferenceService */

    /* the list holds both, each with its instance */
    j = api(&st, &s, st.reader, "GET", "/deployments?env=flip&limit=500", NULL);
    EXPECT(s, 200, j);
    int seen = 0;
    size_t i;
    json_t *d;
    json_array_foreach(jpath(j, "data.deployments"), i, d)
    {
        const char *id = json_string_value(json_object_get(d, "id"));
        const char *inst = json_string_value(json_object_get(d, "instance"));
        if (strcmp(id, ida) == 0) {
            ck_assert_str_eq(inst, "k8s-stg");
            seen |= 1;
        } else if (strcmp(id, idb) == 0) {
            ck_assert_str_eq(inst, "kserve-dev");
            seen |= 2;
        }
    }
    ck_assert_int_eq(seen, 3);
    json_decref(j);

    j = api(&st, &s, st.operator_, "DELETE", path, NULL);
    EXPECT(s, 204, j);
    json_decref(j);
    ck_assert_ptr_null(fake_k8s_deployment(a));
    ck_assert_int_eq(fake_count(b), 1); /* B untouched */

    /* the flag rolled back: new deployments go to serving-k8s again, B stays on kserve */
    j = api(&st, &s, st.operator_, "POST", "/flags/flip/serving/rollback",
            "{\"reason\":\"back to serving-k8s\"}");
    EXPECT(s, 200, j);
    ck_assert_str_eq(jstr(j, "data.flag.active"), "k8s-stg");
    json_decref(j);
    snprintf(prefix, sizeof prefix, "flipc-%s", uniq());
    char *idc = create_on(prefix, "k8s-stg", c, sizeof c);
    json_decref(wait_for(idc, "data.state", "ready", 30));
    o = fake_k8s_deployment(c);
    ck_assert_ptr_nonnull(o);
    json_decref(o);
    ck_assert_int_eq(fake_count(c), 0);
    snprintf(path, sizeof path, "/deployments/%s", idb);
    j = api(&st, &s, st.reader, "GET", path, NULL);
    EXPECT(s, 200, j);
    ck_assert_str_eq(jstr(j, "data.instance"), "kserve-dev");
    ck_assert_str_eq(jstr(j, "data.state"), "ready");
    json_decref(j);
    j = api(&st, &s, st.operator_, "DELETE", path, NULL);
    EXPECT(s, 204, j);
    json_decref(j);
    ck_assert_int_eq(fake_count(b), 0);
    free(ida);
    free(idb);
    free(idc);
}
END_TEST

/* Two PATCHes at once of different members (replicas, autoscaling), through lighttpd and two
 * workers, 20 times: the row and the InferenceService keep both changes every time. */
START_TEST(concurrent_patches_of_different_members_lose_nothing)
{
    enum { TRIALS = 20 };
    const char *name = uname_("conc");
    char *id = create_ok("dev", name,
                         "\"replicas\":{\"min\":1,\"max\":2},\"autoscaling\":{\"metric\":"
                         "\"concurrency\",\"target\":5}");
    json_decref(wait_for(id, "data.state", "ready", 30));
    char script[300], out[300];
    snprintf(script, sizeof script, "%s/patch.sh", fake_dir);
    snprintf(out, sizeof out, "%s/patch.out", fake_dir);
    int lost_row = 0, lost_tool = 0;
    for (int t = 0; t < TRIALS; t++) {
        int max = 3 + t % 2, target = 10 + t;
        FILE *f = fopen(script, "w");
        ck_assert_ptr_nonnull(f);
        fprintf(f, "#!/bin/sh\nrm -f %s\n", out);
        char body[2][160];
        snprintf(body[0], sizeof body[0], "{\"replicas\":{\"min\":1,\"max\":%d}}", max);
        snprintf(body[1], sizeof body[1],
                 "{\"autoscaling\":{\"metric\":\"concurrency\",\"target\":%d}}", target);
        for (int k = 0; k < 2; k++)
            fprintf(f,
                    "curl -s -o /dev/null -w '%%{http_code}\\n' -X PATCH -H 'Authorization: Bearer"
                    " %s' -H 'Content-Type: application/json' -d '%s' '%s/deployments/%s' >>%s &\n",
                    st.operator_, body[k], st.url, id, out);
        fprintf(f, "wait\n");
        fclose(f);
        ck_assert_int_eq(tu_sh("sh %s", script), 0);
        f = fopen(out, "r");
        ck_assert_ptr_nonnull(f);
        int code, n = 0;
        while (fscanf(f, "%d", &code) == 1) {
            ck_assert_msg(code == 200, "trial %d: a PATCH answered %d", t, code);
            n++;
        }
        fclose(f);
        ck_assert_int_eq(n, 2);
        char path[96];
        snprintf(path, sizeof path, "/deployments/%s", id);
        int s;
        json_t *j = api(&st, &s, st.reader, "GET", path, NULL);
        EXPECT(s, 200, j);
        if (json_integer_value(jpath(j, "data.replicas.max")) != max ||
            json_integer_value(jpath(j, "data.autoscaling.target")) != target) {
            fprintf(stderr, "trial %d: the row has max %lld target %lld, wanted %d %d\n", t,
                    (long long)json_integer_value(jpath(j, "data.replicas.max")),
                    (long long)json_integer_value(jpath(j, "data.autoscaling.target")), max,
                    target);
            lost_row++;
        }
        json_decref(j);
        json_t *o = fake_isvc(name);
        if (json_integer_value(jpath(o, "spec.predictor.maxReplicas")) != max ||
            json_integer_value(jpath(o, "spec.predictor.scaleTarget")) != target) {
            fprintf(stderr, "trial %d: the tool has max %lld target %lld, wanted %d %d\n", t,
                    (long long)json_integer_value(jpath(o, "spec.predictor.maxReplicas")),
                    (long long)json_integer_value(jpath(o, "spec.predictor.scaleTarget")), max,
                    target);
            lost_tool++;
        }
        json_decref(o);
    }
    fprintf(stderr, "concurrent PATCHes: %d trials, a change lost in the row %d, in the tool %d\n",
            TRIALS, lost_row, lost_tool);
    ck_assert_int_eq(lost_row, 0);
    ck_assert_int_eq(lost_tool, 0);
    free(id);
}
END_TEST

/* A create accepted while the tool is down, whose delivery the tool then refuses for good
 * (the InferenceService's dry run answers 422 Invalid, as an admission check only the cluster
 * can make would): the deployment is failed with the tool's reason, the tool has nothing, its
 * GPUs are free at once, the dead outbox row can be discarded, and a create of the same name
 * takes the name. */
START_TEST(create_refused_for_good_through_the_outbox)
{
    char gname[64];
    snprintf(gname, sizeof gname, "refuse-%s", uniq());
    gpu_type(gname, 1);
    char name[80], extra[200];
    snprintf(name, sizeof name, "%s", uname_("refused"));
    snprintf(extra, sizeof extra, "\"gpu_type\":\"%s\",\"gpu_count\":1", gname);
    /* the outbox's delivery: find by key (a list), the module's own list, its dry run: 422 */
    json_decref(fake(
        "POST", "/_faults",
        "{\"path\":\"" ISVC "\",\"responses\":[{\"pass\":true},{\"pass\":true},{\"status\":422,"
        "\"body\":{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":"
        "\"Failure\",\"message\":\"admission webhook \\\"inferenceservice.kserve-webhook-server."
        "validator\\\" denied the request: no ServingRuntime supports model format huggingface "
        "on nvidia.com/gpu\",\"reason\":\"Invalid\",\"details\":{\"name\":\"%s\",\"group\":"
        "\"serving.kserve.io\",\"kind\":\"InferenceService\",\"causes\":[{\"reason\":"
        "\"FieldValueNotSupported\",\"message\":\"no ServingRuntime supports model format "
        "huggingface on nvidia.com/gpu\",\"field\":\"spec.predictor.model.modelFormat\"}]},"
        "\"code\":422}}]}",
        name));
    json_decref(fake("POST", "/_refuse", "{\"seconds\": 2}"));
    sleep_ms(500);
    int s;
    json_t *j = create("prod", name, &s, extra);
    EXPECT(s, 201, j);
    ck_assert_msg(strstr(jstr(j, "message"), "background process delivers it"), "%s",
                  jstr(j, "message"));
    char *id = strdup(jstr(j, "data.id"));
    json_decref(j);
    double t0 = now_s();
    j = wait_for(id, "data.state", "failed", 40);
    fprintf(stderr, "refused for good: failed %.1f s after the create\n", now_s() - t0);
    ck_assert_msg(jstr(j, "data.reason") &&
                      strstr(jstr(j, "data.reason"), "refused by kserve-prod") &&
                      strstr(jstr(j, "data.reason"), "spec.predictor.model.modelFormat"),
                  "reason %s", jstr(j, "data.reason"));
    ck_assert_int_eq(json_integer_value(jpath(j, "data.gpu_count")), 1); /* as asked */
    json_decref(j);
    ck_assert_int_eq(fake_count(name), 0);
    char actions[300];
    json_decref(audit(id, actions, sizeof actions));
    ck_assert_str_eq(actions, "create,failed");

    /* its GPU is free: another deployment takes the type's only one */
    char *other = create_ok("prod", uname_("takes"), extra);
    /* the dead row is listed and can be discarded */
    j = api(&st, &s, st.operator_, "GET", "/outbox?env=prod&state=dead", NULL);
    EXPECT(s, 200, j);
    long long row = -1;
    size_t i;
    json_t *r;
    json_array_foreach(jpath(j, "data.rows"), i, r)
    {
        if (strcmp(json_string_value(json_object_get(r, "object_id")), id) == 0)
            row = json_integer_value(json_object_get(r, "id"));
    }
    json_decref(j);
    ck_assert_msg(row > 0, "no dead outbox row for %s", id);
    char path[96];
    snprintf(path, sizeof path, "/outbox/%lld/discard", row);
    j = api(&st, &s, st.admin, "POST", path, "{\"reason\":\"the tool refused it for good\"}");
    EXPECT(s, 200, j);
    json_decref(j);
    /* the name is free for a new create (with another body; the failed one is retired) */
    snprintf(path, sizeof path, "/deployments/%s", other);
    j = api(&st, &s, st.operator_, "DELETE", path, NULL);
    EXPECT(s, 204, j);
    json_decref(j);
    char *again = create_ok("prod", name, "\"args\":[\"--fixed\"]");
    ck_assert_str_ne(again, id);
    json_decref(wait_for(again, "data.state", "ready", 30));
    ck_assert_int_eq(fake_count(name), 1);
    snprintf(path, sizeof path, "/deployments/%s", id);
    j = api(&st, &s, st.reader, "GET", path, NULL);
    EXPECT(s, 404, j);
    json_decref(j);
    json_decref(audit(id, actions, sizeof actions));
    ck_assert_str_eq(actions, "create,failed,delete");
    snprintf(path, sizeof path, "/deployments/%s", again);
    j = api(&st, &s, st.operator_, "DELETE", path, NULL);
    EXPECT(s, 204, j);
    json_decref(j);
    free(again);
    free(other);
    free(id);
}
END_TEST

static Suite *deployments_suite(void)
{
    Suite *s = suite_create("deployments");
    TCase *tc = tcase_create("Core");
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, create_becomes_ready);
    tcase_add_test(tc, create_fails_with_the_tools_reason);
    tcase_add_test(tc, tool_down_during_create_is_delivered_later_once);
    tcase_add_test(tc, unknown_gpu_type_lists_the_valid_ones);
    tcase_add_test(tc, mig_slice_is_its_own_resource);
    tcase_add_test(tc, capacity_race_cannot_oversubscribe);
    tcase_add_test(tc, capacity_counts_deployments_canaries_and_jobs);
    tcase_add_test(tc, patch_scales_and_delete_removes);
    tcase_add_test(tc, canary_then_promote);
    tcase_add_test(tc, canary_then_rollback);
    tcase_add_test(tc, failed_canary_is_rolled_back_by_the_background);
    tcase_add_test(tc, unsupported_split_names_the_feature);
    tcase_add_test(tc, rollback_by_name_from_c);
    tcase_add_test(tc, predict_passes_through);
    tcase_add_test(tc, serialized_writes_lose_no_application);
    suite_add_tcase(s, tc);
    TCase *tf = tcase_create("Follow");
    tcase_add_unchecked_fixture(tf, setup, teardown);
    tcase_set_timeout(tf, 240);
    tcase_add_test(tf, flag_flip_keeps_each_deployment_where_it_lives);
    tcase_add_test(tf, concurrent_patches_of_different_members_lose_nothing);
    tcase_add_test(tf, create_refused_for_good_through_the_outbox);
    suite_add_tcase(s, tf);
    TCase *tb = tcase_create("Breaker");
    tcase_add_unchecked_fixture(tb, setup_breaker, teardown);
    tcase_set_timeout(tb, 120);
    tcase_add_test(tb, breaker_open_create_waits_in_the_outbox);
    suite_add_tcase(s, tb);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(deployments_suite());
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
