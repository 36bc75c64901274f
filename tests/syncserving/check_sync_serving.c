/* llm-opsctl sync serving end to end: the stack (tests/harness/stack: private PostgreSQL,
 * llm-opsd behind lighttpd, the background process) with serving-k8s serving dev (k8s-dev)
 * and stg (k8s-stg) and a kserve instance (kserve) that no flag names yet, all against
 * tests/fakes/k8s_fake.py. Deployments are made through the API on serving-k8s, moved with
 * the real llm-opsctl, and observed in the fake (Deployments, Services, InferenceServices)
 * and through the API (the same platform id, the new owner, the audit): a dry run changes
 * nothing; --deployment moves only that one; the old objects go only once the new one is
 * ready; a target that fails or does not become ready in time leaves the old one owned and
 * serving; a re-run adopts what an earlier run left (no second object) and, once all moved,
 * does nothing and says so; an open canary is skipped; one failure does not stop the rest. */
#define _GNU_SOURCE
#include "api.h"
#include "testutil.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TOKEN "syncsv-T0KEN-fake-3"
#define NS "llm"

static struct stack st;
static int fake_port;
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
    snprintf(fake_dir, sizeof fake_dir, "/tmp/llmops-syncsv-XXXXXX");
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
}

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

/* Object `name` of collection `coll` ("apps/deployments", "services",
 * "serving.kserve.io/inferenceservices") in a /_state answer, borrowed; NULL when absent. */
static json_t *in_state(json_t *state, const char *coll, const char *name)
{
    char key[128];
    snprintf(key, sizeof key, NS "/%s", name);
    return json_object_get(json_object_get(state, coll), key);
}

/* Present and not being deleted. */
static int live(json_t *o)
{
    return o && !json_object_get(json_object_get(o, "metadata"), "deletionTimestamp");
}

static int isvc_ready(json_t *o)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(json_object_get(o, "status"), "conditions"), i, c)
    {
        if (!strcmp(json_string_value(json_object_get(c, "type")), "Ready") &&
            !strcmp(json_string_value(json_object_get(c, "status")), "True"))
            return 1;
    }
    return 0;
}

/* How many objects of `coll` the fake holds named `name`. */
static int fake_count(const char *coll, const char *name)
{
    json_t *all = fake("GET", "/_state", NULL);
    const char *k;
    json_t *v;
    int n = 0;
    json_object_foreach(json_object_get(all, coll), k, v)
    {
        const char *nm = json_string_value(json_object_get(json_object_get(v, "metadata"), "name"));
        n += nm && strcmp(nm, name) == 0 && live(v);
    }
    json_decref(all);
    return n;
}

#define DEPS "apps/deployments"
#define SVCS "services"
#define ISVCS "serving.kserve.io/inferenceservices"

static void setup(void)
{
    fake_start();
    char dropin[300];
    snprintf(dropin, sizeof dropin, "%s/20-serving.conf", fake_dir);
    FILE *f = fopen(dropin, "w");
    ck_assert_ptr_nonnull(f);
    static const char *const k8s[] = {"k8s-dev", "k8s-stg"};
    for (int i = 0; i < 2; i++)
        fprintf(f,
                "[plugin \"%s\"]\nmodule = serving-k8s\nurl = http://127.0.0.1:%d\n"
                "token_file = %s/token\nnamespace = " NS "\ntimeout_ms = 3000\nretries = 0\n"
                "connect_timeout_ms = 500\nimage = ghcr.io/example/model-server:1\n",
                k8s[i], fake_port, fake_dir);
    fprintf(f,
            "[plugin \"kserve\"]\nmodule = kserve\nurl = http://127.0.0.1:%d\n"
            "token_file = %s/token\nnamespace = " NS "\ntimeout_ms = 3000\nretries = 0\n"
            "connect_timeout_ms = 500\n"
            "[flags \"dev\"]\nserving = k8s-dev\n[flags \"stg\"]\nserving = k8s-stg\n"
            "[flags \"prod\"]\nserving = kserve\n",
            fake_port, fake_dir);
    fclose(f);
    char opts[900];
    snprintf(opts, sizeof opts,
             "--custom-plugins --workers 2 --drop-in %s --set outbox.base_delay_ms=100"
             " --set outbox.max_delay_ms=1000 --set breaker.min_calls=100000",
             dropin);
    stack_start(&st, "syncsv", opts);
}

static void teardown(void)
{
    stack_stop(&st);
    if (fake_dir[0]) {
        tu_sh("kill $(cat %s/pid) 2>/dev/null; rm -rf %s", fake_dir, fake_dir);
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

static json_t *get_dep(const char *id)
{
    char path[96];
    snprintf(path, sizeof path, "/deployments/%s", id);
    int s;
    json_t *j = api(&st, &s, st.reader, "GET", path, NULL);
    EXPECT(s, 200, j);
    return j;
}

static json_t *wait_for(const char *id, const char *member, const char *want, double seconds)
{
    double end = now_s() + seconds;
    for (;;) {
        json_t *j = get_dep(id);
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

/* A ready deployment made through the API in env; its id (the caller's). */
static char *deployed(const char *env, const char *name, const char *extra)
{
    char path[64];
    snprintf(path, sizeof path, "/deployments?env=%s", env);
    int s;
    json_t *j = api(&st, &s, st.operator_, "POST", path,
                    "{\"name\":\"%s\",\"model\":{\"uri\":\"hf://org/llama\",\"format\":"
                    "\"huggingface\"}%s%s}",
                    name, extra && *extra ? "," : "", extra ? extra : "");
    EXPECT(s, 201, j);
    ck_assert_msg(jstr(j, "data.id"), "201 without data.id for %s", name);
    char *id = strdup(jstr(j, "data.id"));
    json_decref(j);
    json_decref(wait_for(id, "data.state", "ready", 30));
    return id;
}

/* The deployment's audit actions, comma-separated, and the answer (the caller's). */
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

static json_t *audit_row(json_t *answer, const char *action)
{
    json_t *found = NULL, *a;
    size_t i;
    json_array_foreach(jpath(answer, "data.audit"), i, a)
    {
        if (strcmp(json_string_value(json_object_get(a, "action")), action) == 0)
            found = a;
    }
    return found;
}

static const char *bin(void)
{
    return getenv("LLMOPS_BIN_DIR") ? getenv("LLMOPS_BIN_DIR") : "build/bin";
}

/* llm-opsctl sync serving ARGS: its output (stdout and stderr; static) and exit status. */
static char *ctl_sync(const char *args, int *rc)
{
    return tu_capture(rc, "%s/llm-opsctl --config %s sync serving %s 2>&1", bin(), st.conf, args);
}

#define HAS(out, text) ck_assert_msg(strstr(out, text) != NULL, "no '%s' in: %s", text, out)
#define HASNT(out, text) ck_assert_msg(strstr(out, text) == NULL, "'%s' in: %s", text, out)

/* ------------------------------------------------------------------ tests */

static char *dev_a, *dev_b, *name_a, *name_b;

START_TEST(dry_run_changes_nothing)
{
    name_a = strdup(uname_("mva"));
    dev_a = deployed("dev", name_a, NULL);
    int rc;
    char *out = ctl_sync("--from k8s-dev --to kserve --dry-run", &rc);
    ck_assert_msg(rc == 0, "rc %d: %s", rc, out);
    HAS(out, "would move from k8s-dev to kserve");
    HAS(out, "dry run (nothing written): k8s-dev -> kserve: deployments 1 would move, 0 skipped");
    HAS(out, dev_a);
    /* nothing changed: not in kserve, still owned by k8s-dev, no move audited */
    ck_assert_int_eq(fake_count(ISVCS, name_a), 0);
    ck_assert_int_eq(fake_count(DEPS, name_a), 1);
    ck_assert_int_eq(fake_count(SVCS, name_a), 1);
    json_t *j = get_dep(dev_a);
    ck_assert_str_eq(jstr(j, "data.instance"), "k8s-dev");
    json_decref(j);
    char actions[300];
    json_decref(audit(dev_a, actions, sizeof actions));
    ck_assert_str_eq(actions, "create,ready");
}
END_TEST

START_TEST(moves_one_then_the_rest_then_nothing)
{
    name_b = strdup(uname_("mvb"));
    dev_b = deployed("dev", name_b,
                     "\"gpu_type\":\"nvidia-l4\",\"gpu_count\":1,\"cpu\":\"2\",\"memory\":\"8Gi\","
                     "\"replicas\":{\"min\":1,\"max\":2},"
                     "\"autoscaling\":{\"metric\":\"cpu\",\"target\":70},"
                     "\"env\":{\"HF_HOME\":\"/cache\"},\"args\":[\"--max-model-len\",\"4096\"]");
    json_t *before = get_dep(dev_b);
    /* the new InferenceService of A takes a while: the old objects must outlive its rollout */
    json_decref(fake("POST", "/_controller",
                     "{\"plural\":\"inferenceservices\",\"namespace\":\"" NS "\",\"name\":\"%s\","
                     "\"polls\":6}",
                     name_a));
    char outf[300], rcf[300];
    snprintf(outf, sizeof outf, "%s/sync-a.out", fake_dir);
    snprintf(rcf, sizeof rcf, "%s/sync-a.rc", fake_dir);
    ck_assert_int_eq(tu_sh("(%s/llm-opsctl --config %s sync serving --from k8s-dev --to kserve"
                           " --deployment %s >%s 2>&1; echo $? >%s) &",
                           bin(), st.conf, name_a, outf, rcf),
                     0);
    int samples = 0, waiting = 0;
    char arg_a[160];
    snprintf(arg_a, sizeof arg_a, "--from k8s-dev --to kserve --deployment %s", name_a);
    double end = now_s() + 90;
    while (access(rcf, F_OK) != 0) {
        ck_assert_msg(now_s() < end, "sync serving --deployment %s did not finish", name_a);
        json_t *s = fake("GET", "/_state", NULL);
        json_t *d = in_state(s, DEPS, name_a), *v = in_state(s, SVCS, name_a);
        json_t *i = in_state(s, ISVCS, name_a);
        /* the old Deployment and Service go only once the new one is ready */
        if (!live(d) || !live(v))
            ck_assert_msg(i && isvc_ready(i), "the old objects of %s went before the new was ready",
                          name_a);
        if (i && !isvc_ready(i) && live(d) && live(v) && !waiting++) {
            /* a second run meanwhile leaves it to the first */
            int rc2;
            char *o2 = ctl_sync(arg_a, &rc2);
            ck_assert_msg(rc2 == 1, "rc %d: %s", rc2, o2);
            HAS(o2, "skipped: another llm-opsctl sync serving is moving it");
        }
        samples++;
        json_decref(s);
        sleep_ms(50);
    }
    ck_assert_msg(waiting > 0, "never saw the new object rolling out beside the old (%d samples)",
                  samples);
    int rc = -1;
    char out[4096];
    FILE *f = fopen(rcf, "r");
    ck_assert_int_eq(fscanf(f, "%d", &rc), 1);
    fclose(f);
    f = fopen(outf, "r");
    size_t n = fread(out, 1, sizeof out - 1, f);
    out[n] = '\0';
    fclose(f);
    ck_assert_msg(rc == 0, "rc %d: %s", rc, out);
    HAS(out, "moved from k8s-dev to kserve");
    HAS(out, "k8s-dev -> kserve: deployments 1 moved, 0 skipped, 0 failed");
    HASNT(out, name_b); /* --deployment: only that one */
    ck_assert_int_eq(fake_count(ISVCS, name_a), 1);
    ck_assert_int_eq(fake_count(DEPS, name_a), 0);
    ck_assert_int_eq(fake_count(SVCS, name_a), 0);
    ck_assert_int_eq(fake_count(ISVCS, name_b), 0);
    ck_assert_int_eq(fake_count(DEPS, name_b), 1);
    /* the same platform id, now held by kserve, ready, with kserve's URL */
    json_t *j = get_dep(dev_a);
    ck_assert_str_eq(jstr(j, "data.id"), dev_a);
    ck_assert_str_eq(jstr(j, "data.instance"), "kserve");
    ck_assert_str_eq(jstr(j, "data.state"), "ready");
    json_decref(j);
    char actions[300];
    j = audit(dev_a, actions, sizeof actions);
    ck_assert_msg(strstr(actions, "create,ready") == actions && strstr(actions, ",move"), "%s",
                  actions);
    json_t *mv = audit_row(j, "move");
    ck_assert_str_eq(json_string_value(json_object_get(mv, "actor")), "llm-opsctl");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(mv, "before"), "instance")),
                     "k8s-dev");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(mv, "after"), "instance")),
                     "kserve");
    ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(mv, "reason")),
                                 "sync serving --from k8s-dev --to kserve"));
    json_decref(j);

    /* the rest: B, with its GPU as resolved at its create, autoscaling, env and args */
    char *o2 = ctl_sync("--from k8s-dev --to kserve", &rc);
    ck_assert_msg(rc == 0, "rc %d: %s", rc, o2);
    HAS(o2, dev_b);
    HASNT(o2, dev_a);
    HAS(o2, "k8s-dev -> kserve: deployments 1 moved, 0 skipped, 0 failed");
    json_t *s = fake("GET", "/_state", NULL);
    char *isvc = json_dumps(in_state(s, ISVCS, name_b), JSON_COMPACT);
    ck_assert_ptr_nonnull(isvc);
    HAS(isvc, "\"nvidia.com/gpu\"");
    HAS(isvc, "\"HF_HOME\"");
    HAS(isvc, "\"--max-model-len\"");
    HAS(isvc, "\"minReplicas\":1");
    HAS(isvc, "\"maxReplicas\":2");
    free(isvc);
    ck_assert(!live(in_state(s, DEPS, name_b)));
    json_decref(s);
    j = get_dep(dev_b);
    ck_assert_str_eq(jstr(j, "data.instance"), "kserve");
    ck_assert_str_eq(jstr(j, "data.id"), dev_b);
    /* the spec as the API answers it is unchanged by the move */
    static const char *const same[] = {"data.model",       "data.gpu",       "data.replicas",
                                       "data.autoscaling", "data.env",       "data.args",
                                       "data.gpu_type",    "data.created_at"};
    for (size_t k = 0; k < sizeof same / sizeof same[0]; k++)
        ck_assert_msg(json_equal(jpath(j, same[k]), jpath(before, same[k])), "%s changed", same[k]);
    json_decref(j);
    json_decref(before);

    /* once all moved: nothing to do, and it says so; no second object anywhere */
    o2 = ctl_sync("--from k8s-dev --to kserve", &rc);
    ck_assert_msg(rc == 0, "rc %d: %s", rc, o2);
    HAS(o2, "nothing to move: k8s-dev owns no live deployment");
    char arg[160];
    snprintf(arg, sizeof arg, "--from k8s-dev --to kserve --deployment %s", name_a);
    o2 = ctl_sync(arg, &rc);
    ck_assert_msg(rc == 0, "rc %d: %s", rc, o2);
    HAS(o2, "is owned by kserve already");
    ck_assert_int_eq(fake_count(ISVCS, name_a), 1);
    ck_assert_int_eq(fake_count(ISVCS, name_b), 1);
    json_decref(audit(dev_a, actions, sizeof actions));
    int moves = 0;
    for (const char *p = actions; (p = strstr(p, "move")) != NULL; p++)
        moves++;
    ck_assert_msg(moves == 1, "%d moves audited: %s", moves, actions);
    /* a name nobody has is an error */
    o2 = ctl_sync("--from k8s-dev --to kserve --deployment no-such-one", &rc);
    ck_assert_int_eq(rc, 1);
    HAS(o2, "instance k8s-dev has no live deployment named 'no-such-one'");
    /* the moved deployment is served by kserve: scaling it goes there */
    char path[96];
    snprintf(path, sizeof path, "/deployments/%s", dev_b);
    int hs;
    j = api(&st, &hs, st.operator_, "PATCH", path, "{\"replicas\":{\"min\":1,\"max\":3}}");
    EXPECT(hs, 200, j);
    json_decref(j);
    s = fake("GET", "/_state", NULL);
    isvc = json_dumps(in_state(s, ISVCS, name_b), JSON_COMPACT);
    HAS(isvc, "\"maxReplicas\":3");
    free(isvc);
    json_decref(s);
}
END_TEST

START_TEST(failures_leave_the_old_one_and_do_not_stop_the_rest)
{
    /* stg: F whose InferenceService fails, S whose one never gets ready in time, C with an
     * open canary, G that moves */
    char *nf = uname_("mvf"), *ns = uname_("mvs"), *nc = uname_("mvc"), *ng = uname_("mvg");
    char *f = deployed("stg", nf, NULL), *s_ = deployed("stg", ns, NULL);
    char *c = deployed("stg", nc, NULL), *g = deployed("stg", ng, NULL);
    char path[128];
    snprintf(path, sizeof path, "/deployments/%s/canary", c);
    int hs;
    json_t *j = api(&st, &hs, st.operator_, "POST", path,
                    "{\"model\":{\"uri\":\"hf://org/llama-2\",\"format\":\"huggingface\"},"
                    "\"canary_replicas\":1}");
    EXPECT(hs, 201, j);
    json_decref(j);
    json_decref(fake("POST", "/_controller",
                     "{\"plural\":\"inferenceservices\",\"namespace\":\"" NS "\",\"name\":\"%s\","
                     "\"outcome\":\"failed\",\"message\":\"weights missing at hf://org/llama\"}",
                     nf));
    json_decref(fake("POST", "/_controller",
                     "{\"plural\":\"inferenceservices\",\"namespace\":\"" NS "\",\"name\":\"%s\","
                     "\"outcome\":\"stuck\"}",
                     ns));
    int rc;
    double t0 = now_s();
    char *out = strdup(ctl_sync("--from k8s-stg --to kserve --timeout 3", &rc));
    ck_assert_msg(rc == 1, "rc %d: %s", rc, out);
    HAS(out, "k8s-stg -> kserve: deployments 1 moved, 1 skipped, 2 failed (of 4; up to 3 s each");
    HAS(out, "weights missing");
    HAS(out, "not ready in kserve after 3 s");
    HAS(out, "skipped: its canary is open");
    ck_assert_msg(now_s() - t0 < 60, "took %.0f s", now_s() - t0);
    /* F and S: the old ones stay, owned and ready; F's failed object is gone from kserve,
     * S's stays for a re-run */
    static const char *const kept[] = {"F", "S", "C"};
    const char *ids[] = {f, s_, c}, *names[] = {nf, ns, nc};
    for (int k = 0; k < 3; k++) {
        j = get_dep(ids[k]);
        ck_assert_msg(!strcmp(jstr(j, "data.instance"), "k8s-stg"), "%s moved", kept[k]);
        json_decref(j);
        ck_assert_int_eq(fake_count(DEPS, names[k]), 1);
        ck_assert_int_eq(fake_count(SVCS, names[k]), 1);
        char actions[300];
        json_decref(audit(ids[k], actions, sizeof actions));
        ck_assert_msg(!strstr(actions, "move"), "%s: %s", kept[k], actions);
    }
    ck_assert_int_eq(fake_count(ISVCS, nf), 0);
    ck_assert_int_eq(fake_count(ISVCS, ns), 1);
    ck_assert_int_eq(fake_count(ISVCS, nc), 0);
    j = get_dep(g);
    ck_assert_str_eq(jstr(j, "data.instance"), "kserve");
    json_decref(j);
    ck_assert_int_eq(fake_count(DEPS, ng), 0);
    free(out);

    /* S's object becomes ready after all: a re-run adopts it (no second InferenceService) */
    json_decref(fake("POST", "/_controller",
                     "{\"plural\":\"inferenceservices\",\"namespace\":\"" NS "\",\"name\":\"%s\","
                     "\"outcome\":\"ready\"}",
                     ns));
    char arg[160];
    snprintf(arg, sizeof arg, "--from k8s-stg --to kserve --deployment %s", ns);
    out = ctl_sync(arg, &rc);
    ck_assert_msg(rc == 0, "rc %d: %s", rc, out);
    HAS(out, "adopted from an earlier run");
    ck_assert_int_eq(fake_count(ISVCS, ns), 1);
    ck_assert_int_eq(fake_count(DEPS, ns), 0);
    j = get_dep(s_);
    ck_assert_str_eq(jstr(j, "data.instance"), "kserve");
    json_decref(j);
    free(f);
    free(s_);
    free(c);
    free(g);
}
END_TEST

START_TEST(a_change_during_the_move_is_not_lost)
{
    /* a PATCH while the new object rolls out goes to the old one; the switch sees the spec
     * changed and does not happen, and the new object is deleted again */
    char *np = uname_("mvp");
    char *d = deployed("dev", np, NULL);
    json_decref(fake("POST", "/_controller",
                     "{\"plural\":\"inferenceservices\",\"namespace\":\"" NS "\",\"name\":\"%s\","
                     "\"polls\":12}",
                     np));
    char outf[300], rcf[300];
    snprintf(outf, sizeof outf, "%s/sync-p.out", fake_dir);
    snprintf(rcf, sizeof rcf, "%s/sync-p.rc", fake_dir);
    ck_assert_int_eq(tu_sh("(%s/llm-opsctl --config %s sync serving --from k8s-dev --to kserve"
                           " --deployment %s >%s 2>&1; echo $? >%s) &",
                           bin(), st.conf, np, outf, rcf),
                     0);
    double end = now_s() + 30;
    while (fake_count(ISVCS, np) == 0) {
        ck_assert_msg(now_s() < end, "the move of %s did not start", np);
        sleep_ms(50);
    }
    char path[96];
    snprintf(path, sizeof path, "/deployments/%s", d);
    int hs;
    json_t *j = api(&st, &hs, st.operator_, "PATCH", path, "{\"replicas\":{\"min\":2,\"max\":2}}");
    EXPECT(hs, 200, j);
    json_decref(j);
    while (access(rcf, F_OK) != 0) {
        ck_assert_msg(now_s() < end + 60, "sync serving --deployment %s did not finish", np);
        sleep_ms(100);
    }
    int rc = -1;
    char out[4096];
    FILE *f = fopen(rcf, "r");
    ck_assert_int_eq(fscanf(f, "%d", &rc), 1);
    fclose(f);
    f = fopen(outf, "r");
    size_t n = fread(out, 1, sizeof out - 1, f);
    out[n] = '\0';
    fclose(f);
    ck_assert_msg(rc == 1, "rc %d: %s", rc, out);
    HAS(out, "failed: it changed while it moved");
    j = get_dep(d);
    ck_assert_str_eq(jstr(j, "data.instance"), "k8s-dev");
    ck_assert_int_eq(json_integer_value(jpath(j, "data.replicas.max")), 2);
    json_decref(j);
    ck_assert_int_eq(fake_count(ISVCS, np), 0);
    ck_assert_int_eq(fake_count(DEPS, np), 1);
    free(d);
}
END_TEST

START_TEST(what_the_target_cannot_do_is_refused_before_it_is_asked)
{
    /* the other way, kserve -> serving-k8s, with a metric serving-k8s does not scale on: the
     * dry run says it would fail, the run fails it without making anything */
    char *nq = uname_("mvq");
    char *d = deployed("prod", nq,
                       "\"replicas\":{\"min\":1,\"max\":3},"
                       "\"autoscaling\":{\"metric\":\"concurrency\",\"target\":10}");
    char arg[160];
    snprintf(arg, sizeof arg, "--from kserve --to k8s-stg --deployment %s --dry-run", nq);
    int rc;
    char *out = ctl_sync(arg, &rc);
    ck_assert_msg(rc == 1, "rc %d: %s", rc, out);
    HAS(out, "would fail: k8s-stg does not scale on the metric \"concurrency\"");
    snprintf(arg, sizeof arg, "--from kserve --to k8s-stg --deployment %s", nq);
    out = ctl_sync(arg, &rc);
    ck_assert_msg(rc == 1, "rc %d: %s", rc, out);
    HAS(out, "failed: k8s-stg does not scale on the metric \"concurrency\"; it stays in kserve");
    HAS(out, "kserve -> k8s-stg: deployments 0 moved, 0 skipped, 1 failed");
    ck_assert_int_eq(fake_count(DEPS, nq), 0);
    ck_assert_int_eq(fake_count(ISVCS, nq), 1);
    json_t *j = get_dep(d);
    ck_assert_str_eq(jstr(j, "data.instance"), "kserve");
    json_decref(j);
    free(d);
}
END_TEST

START_TEST(bad_command_lines)
{
    int rc;
    char *out = ctl_sync("--from k8s-dev", &rc);
    ck_assert_int_eq(rc, 2);
    HAS(out, "--from INSTANCE and --to INSTANCE are required");
    out = ctl_sync("--from k8s-dev --to k8s-dev", &rc);
    ck_assert_int_eq(rc, 2);
    HAS(out, "name the same instance");
    out = ctl_sync("--from k8s-dev --to tracking-pg", &rc);
    ck_assert_int_eq(rc, 2);
    HAS(out, "no serving instance named 'tracking-pg'");
    out = ctl_sync("--from k8s-dev --to kserve --timeout 5s", &rc);
    ck_assert_int_eq(rc, 2);
    HAS(out, "--timeout '5s' is not a number of seconds");
}
END_TEST

START_TEST(old_object_removed_by_the_background_when_the_source_fails)
{
    /* the source answers 503 to the command's removal: the move stands, and the outbox row
     * queued in the switch's transaction has the background process remove the old one
     * (four 503s: the background's watch of the deployment may still read that path once,
     * and the deliverer's first tries may meet the rest) */
    char *nd = uname_("mvd");
    char *d = deployed("dev", nd, NULL);
    json_decref(
        fake("POST", "/_faults",
             "{\"path\":\"/apis/apps/v1/namespaces/" NS "/deployments/%s\","
             "\"responses\":[{\"status\":503},{\"status\":503},{\"status\":503},{\"status\":503}]}",
             nd));
    char arg[160];
    snprintf(arg, sizeof arg, "--from k8s-dev --to kserve --deployment %s", nd);
    int rc;
    char *out = ctl_sync(arg, &rc);
    ck_assert_msg(rc == 0, "rc %d: %s", rc, out);
    HAS(out, "the background process removes it (outbox)");
    HAS(out, "old objects left for the background process to remove");
    json_t *j = get_dep(d);
    ck_assert_str_eq(jstr(j, "data.instance"), "kserve");
    json_decref(j);
    double t0 = now_s();
    while (fake_count(DEPS, nd) + fake_count(SVCS, nd) > 0) {
        ck_assert_msg(now_s() - t0 < 30, "the background process did not remove the old %s", nd);
        sleep_ms(200);
    }
    ck_assert_int_eq(fake_count(ISVCS, nd), 1);
    free(d);
}
END_TEST

static Suite *sync_serving_suite(void)
{
    Suite *s = suite_create("sync-serving");
    TCase *tc = tcase_create("Core");
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, dry_run_changes_nothing);
    tcase_add_test(tc, moves_one_then_the_rest_then_nothing);
    tcase_add_test(tc, failures_leave_the_old_one_and_do_not_stop_the_rest);
    tcase_add_test(tc, old_object_removed_by_the_background_when_the_source_fails);
    tcase_add_test(tc, a_change_during_the_move_is_not_lost);
    tcase_add_test(tc, what_the_target_cannot_do_is_refused_before_it_is_asked);
    tcase_add_test(tc, bad_command_lines);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(sync_serving_suite());
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    free(dev_a);
    free(dev_b);
    free(name_a);
    free(name_b);
    return failed ? 1 : 0;
}
