/* Experiment tracking end to end through lighttpd → llm-opsd → the tracking-pg plugin (real
 * PostgreSQL), and training jobs whose runs the jobs process opens through the outbox.
 * One stack (tests/harness/stack --custom-plugins) for the whole suite. */
#include "api.h"
#include "testutil.h"

#include <check.h>
#include <curl/curl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pwd.h>
#include <sys/wait.h>
#include <unistd.h>

static struct stack st;

static void setup(void)
{
    /* six workers: the six copies of a resent body are served at once */
    stack_start(&st, "track", "--custom-plugins --workers 6");
}

static void teardown(void)
{
    stack_stop(&st);
}

#define EXPECT(status, want, j)                                                                    \
    do {                                                                                           \
        if ((status) != (want)) {                                                                  \
            char *d_ = json_dumps(j, JSON_COMPACT);                                                \
            ck_abort_msg("HTTP %d, wanted %d: %.600s", status, want, d_ ? d_ : "?");               \
        }                                                                                          \
    } while (0)

static char *create_experiment(const char *name)
{
    int s;
    json_t *j = api(&st, &s, st.operator_, "POST", "/experiments?env=dev",
                    "{\"name\":\"%s\",\"tags\":{\"team\":\"nlp\"}}", name);
    EXPECT(s, 201, j);
    char *id = strdup(jstr(j, "data.id"));
    json_decref(j);
    return id;
}

static char *create_run(const char *exp, const char *name)
{
    int s;
    char path[128];
    snprintf(path, sizeof path, "/experiments/%s/runs", exp);
    json_t *j = api(&st, &s, st.operator_, "POST", path, "{\"name\":\"%s\"}", name);
    EXPECT(s, 201, j);
    char *id = strdup(jstr(j, "data.id"));
    json_decref(j);
    return id;
}

START_TEST(experiments_crud)
{
    int s;
    char name[64];
    snprintf(name, sizeof name, "exp-%s", uniq());
    char *id = create_experiment(name);
    ck_assert_msg(strncmp(id, "exp_", 4) == 0 && strlen(id) == 28, "id %s", id);

    /* a second experiment with the name: 409, naming the one there is */
    json_t *j =
        api(&st, &s, st.operator_, "POST", "/experiments?env=dev", "{\"name\":\"%s\"}", name);
    EXPECT(s, 409, j);
    ck_assert_str_eq(jstr(j, "data.error.code"), "CONFLICT");
    ck_assert_str_eq(jstr(j, "data.error.id"), id);
    json_decref(j);

    char path[128];
    snprintf(path, sizeof path, "/experiments/%s", id);
    j = api(&st, &s, st.reader, "GET", path, NULL);
    EXPECT(s, 200, j);
    ck_assert_str_eq(jstr(j, "data.name"), name);
    ck_assert_str_eq(jstr(j, "data.instance"), "tracking-pg");
    ck_assert_str_eq(jstr(j, "data.tags.team"), "nlp");
    ck_assert_str_eq(jstr(j, "data.lifecycle"), "active");
    json_decref(j);

    j = api(&st, &s, st.operator_, "PATCH", path, "{\"tags\":{\"stage\":\"eval\"}}");
    EXPECT(s, 200, j);
    ck_assert_str_eq(jstr(j, "data.tags.stage"), "eval");
    ck_assert_str_eq(jstr(j, "data.tags.team"), "nlp");
    json_decref(j);

    /* readers cannot write; unknown members are named */
    j = api(&st, &s, st.reader, "POST", "/experiments", "{\"name\":\"x%s\"}", uniq());
    EXPECT(s, 403, j);
    json_decref(j);
    j = api(&st, &s, st.operator_, "POST", "/experiments", "{\"name\":\"x\",\"colour\":1}");
    EXPECT(s, 400, j);
    ck_assert_str_eq(jstr(j, "data.error.field"), "colour");
    json_decref(j);
    j = api(&st, &s, st.reader, "GET", "/experiments/exp_000000000000000000000000", NULL);
    EXPECT(s, 404, j);
    json_decref(j);

    /* list: exact name, prefix, and pages of one */
    char prefix[64];
    snprintf(prefix, sizeof prefix, "pfx-%s-", uniq());
    for (int i = 0; i < 3; i++) {
        char n[80];
        snprintf(n, sizeof n, "%s%d", prefix, i);
        free(create_experiment(n));
    }
    char q[256];
    snprintf(q, sizeof q, "/experiments?name=%s", name);
    j = api(&st, &s, st.reader, "GET", q, NULL);
    EXPECT(s, 200, j);
    ck_assert_int_eq(json_array_size(jpath(j, "data.experiments")), 1);
    ck_assert_str_eq(jstr(j, "data.experiments.0.id"), id);
    json_decref(j);
    json_t *seen = json_object();
    char token[2100] = "";
    for (int page = 0; page < 5; page++) {
        char *esc = curl_easy_escape(NULL, token, 0);
        snprintf(q, sizeof q, "/experiments?name_prefix=%s&max_results=1%s%s", prefix,
                 token[0] ? "&page_token=" : "", token[0] ? esc : "");
        curl_free(esc);
        j = api(&st, &s, st.reader, "GET", q, NULL);
        EXPECT(s, 200, j);
        ck_assert_int_le(json_array_size(jpath(j, "data.experiments")), 1);
        if (json_array_size(jpath(j, "data.experiments")))
            json_object_set_new(seen, jstr(j, "data.experiments.0.name"), json_true());
        const char *t = jstr(j, "data.next_page_token");
        snprintf(token, sizeof token, "%s", t ? t : "");
        json_decref(j);
        if (!token[0])
            break;
    }
    ck_assert_int_eq(json_object_size(seen), 3);
    json_decref(seen);

    j = api(&st, &s, st.reader, "GET", "/experiments?lifecycle=gone", NULL);
    EXPECT(s, 400, j);
    json_decref(j);

    j = api(&st, &s, st.operator_, "DELETE", path, NULL);
    EXPECT(s, 200, j);
    json_decref(j);
    j = api(&st, &s, st.reader, "GET", path, NULL);
    EXPECT(s, 200, j);
    ck_assert_str_eq(jstr(j, "data.lifecycle"), "deleted");
    json_decref(j);
    free(id);
}
END_TEST

START_TEST(runs_log_and_read)
{
    int s;
    char name[64], path[160];
    snprintf(name, sizeof name, "runs-%s", uniq());
    char *exp = create_experiment(name);
    char *run = create_run(exp, "first");
    ck_assert(strncmp(run, "run_", 4) == 0);

    /* 2,500 points in one request: the core splits them into batches of 1,000 */
    json_t *metrics = json_array();
    for (int i = 0; i < 2500; i++)
        json_array_append_new(metrics,
                              json_pack("{s:s,s:f,s:i,s:i}", "key", "loss", "value", 1.0 / (i + 1),
                                        "step", i, "timestamp_ms", 1700000000000 + i));
    json_array_append_new(metrics, json_pack("{s:s,s:s}", "key", "nan", "value", "NaN"));
    json_array_append_new(metrics, json_pack("{s:s,s:s}", "key", "inf", "value", "Infinity"));
    json_array_append_new(metrics, json_pack("{s:s,s:s}", "key", "ninf", "value", "-Infinity"));
    json_t *body = json_pack("{s:o,s:{s:s,s:f},s:{s:s}}", "metrics", metrics, "params", "lr",
                             "0.001", "batch", 32.0, "tags", "note", "baseline");
    snprintf(path, sizeof path, "/runs/%s/log", run);
    json_t *j = api_json(&st, &s, st.operator_, "POST", path, body);
    EXPECT(s, 200, j);
    ck_assert_int_eq(json_integer_value(jpath(j, "data.metrics")), 2503);
    ck_assert_int_eq(json_integer_value(jpath(j, "data.batches")), 3);
    json_decref(j);
    /* the same body again adds nothing (replays are safe) */
    j = api_json(&st, &s, st.operator_, "POST", path, body);
    EXPECT(s, 200, j);
    json_decref(j);
    json_decref(body);

    /* changing a logged param: 409 */
    j = api(&st, &s, st.operator_, "POST", path, "{\"params\":{\"lr\":\"0.1\"}}");
    EXPECT(s, 409, j);
    json_decref(j);
    /* bad values are named */
    j = api(&st, &s, st.operator_, "POST", path,
            "{\"metrics\":[{\"key\":\"a\",\"value\":1},{\"key\":\"b\",\"value\":\"nan\"}]}");
    EXPECT(s, 400, j);
    ck_assert_str_eq(jstr(j, "data.error.field"), "metrics[1].value");
    json_decref(j);

    snprintf(path, sizeof path, "/runs/%s", run);
    j = api(&st, &s, st.reader, "GET", path, NULL);
    EXPECT(s, 200, j);
    ck_assert_str_eq(jstr(j, "data.params.lr"), "0.001");
    ck_assert_str_eq(jstr(j, "data.params.batch"), "32");
    ck_assert_str_eq(jstr(j, "data.tags.note"), "baseline");
    ck_assert_str_eq(jstr(j, "data.experiment_id"), exp);
    ck_assert_str_eq(jstr(j, "data.status"), "RUNNING");
    json_t *latest = jpath(j, "data.metrics");
    size_t i;
    json_t *m;
    int seen = 0;
    json_array_foreach(latest, i, m)
    {
        const char *k = jstr(m, "key");
        if (strcmp(k, "loss") == 0) {
            ck_assert_int_eq(json_integer_value(jpath(m, "step")), 2499);
            seen++;
        } else if (strcmp(k, "nan") == 0) {
            ck_assert_str_eq(jstr(m, "value"), "NaN");
            seen++;
        } else if (strcmp(k, "inf") == 0) {
            ck_assert_str_eq(jstr(m, "value"), "Infinity");
            seen++;
        } else if (strcmp(k, "ninf") == 0) {
            ck_assert_str_eq(jstr(m, "value"), "-Infinity");
            seen++;
        }
    }
    ck_assert_int_eq(seen, 4);
    json_decref(j);

    /* the whole history, in pages, in step order, no duplicates from the replay */
    char token[2100] = "", q[2400];
    long long next_step = 0;
    for (int page = 0; page < 10; page++) {
        char *esc = curl_easy_escape(NULL, token, 0);
        snprintf(q, sizeof q, "/runs/%s/metric-history?key=loss&max_results=1000%s%s", run,
                 token[0] ? "&page_token=" : "", token[0] ? esc : "");
        curl_free(esc);
        j = api(&st, &s, st.reader, "GET", q, NULL);
        EXPECT(s, 200, j);
        json_array_foreach(jpath(j, "data.metrics"), i, m)
        {
            ck_assert_int_eq(json_integer_value(jpath(m, "step")), next_step);
            next_step++;
        }
        const char *t = jstr(j, "data.next_page_token");
        snprintf(token, sizeof token, "%s", t ? t : "");
        json_decref(j);
        if (!token[0])
            break;
    }
    ck_assert_int_eq(next_step, 2500);

    /* status: unknown → 400 naming the valid ones; FINISHED sets the end time */
    j = api(&st, &s, st.operator_, "PATCH", path, "{\"status\":\"DONE\"}");
    EXPECT(s, 400, j);
    ck_assert_int_eq(json_array_size(jpath(j, "data.error.valid")), 4);
    json_decref(j);
    j = api(&st, &s, st.operator_, "PATCH", path, "{\"status\":\"FINISHED\"}");
    EXPECT(s, 200, j);
    ck_assert_str_eq(jstr(j, "data.status"), "FINISHED");
    ck_assert(json_is_integer(jpath(j, "data.end_time_ms")));
    json_decref(j);
    free(exp);
    free(run);
}
END_TEST

START_TEST(runs_search_and_compare)
{
    int s;
    char name[64], path[200];
    snprintf(name, sizeof name, "search-%s", uniq());
    char *exp = create_experiment(name);
    char *runs[3];
    static const double loss[3] = {0.9, 0.5, 0.2};
    static const char *const opt[3] = {"sgd", "adam", "adam"};
    for (int i = 0; i < 3; i++) {
        char rn[32];
        snprintf(rn, sizeof rn, "r%d", i);
        runs[i] = create_run(exp, rn);
        snprintf(path, sizeof path, "/runs/%s/log", runs[i]);
        json_t *j = api(&st, &s, st.operator_, "POST", path,
                        "{\"metrics\":[{\"key\":\"loss\",\"value\":%g,\"step\":1},"
                        "{\"key\":\"acc\",\"value\":%g,\"step\":1}],"
                        "\"params\":{\"optimizer\":\"%s\"}}",
                        loss[i], 1 - loss[i], opt[i]);
        EXPECT(s, 200, j);
        json_decref(j);
    }
    snprintf(path, sizeof path, "/runs/%s", runs[2]);
    json_decref(api(&st, &s, st.operator_, "PATCH", path, "{\"status\":\"FINISHED\"}"));

    json_t *j = api(&st, &s, st.reader, "POST", "/runs/search",
                    "{\"experiment_ids\":[\"%s\"],\"filter\":\"metric.loss < 0.6 and "
                    "params.optimizer = 'adam'\",\"order_by\":[\"metric.loss ASC\"]}",
                    exp);
    EXPECT(s, 200, j);
    ck_assert_int_eq(json_array_size(jpath(j, "data.runs")), 2);
    ck_assert_str_eq(jstr(j, "data.runs.0.id"), runs[2]);
    ck_assert_str_eq(jstr(j, "data.runs.1.id"), runs[1]);
    json_decref(j);

    j = api(&st, &s, st.reader, "POST", "/runs/search",
            "{\"experiment_ids\":[\"%s\"],\"filter\":\"status = 'FINISHED'\"}", exp);
    EXPECT(s, 200, j);
    ck_assert_int_eq(json_array_size(jpath(j, "data.runs")), 1);
    ck_assert_str_eq(jstr(j, "data.runs.0.id"), runs[2]);
    json_decref(j);

    j = api(&st, &s, st.reader, "POST", "/runs/search",
            "{\"experiment_ids\":[\"%s\"],\"filter\":\"tags.`mlflow.runName` LIKE 'r%%'"
            " AND name != 'r0'\"}",
            exp);
    EXPECT(s, 200, j);
    json_decref(j);

    /* the filter is checked before any tool sees it, with the position of the problem */
    static const char *const bad[] = {"metric.loss LIKE 'a'",
                                      "loss < 1",
                                      "params.x = 3",
                                      "status = 'DONE'",
                                      "metric.loss < 1 OR metric.acc > 0",
                                      "metric.loss <",
                                      "param.`open = 'x'",
                                      "name = 'unterminated"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *body = json_pack("{s:[s],s:s}", "experiment_ids", exp, "filter", bad[i]);
        j = api_json(&st, &s, st.reader, "POST", "/runs/search", body);
        json_decref(body);
        if (s != 400)
            ck_abort_msg("filter \"%s\": HTTP %d, wanted 400", bad[i], s);
        ck_assert_str_eq(jstr(j, "data.error.field"), "filter");
        ck_assert_msg(strstr(jstr(j, "message"), "at character") != NULL, "%s", jstr(j, "message"));
        json_decref(j);
    }

    char q[400];
    snprintf(q, sizeof q, "/runs/compare?run_ids=%s,%s&history=true", runs[0], runs[1]);
    j = api(&st, &s, st.reader, "GET", q, NULL);
    EXPECT(s, 200, j);
    ck_assert_int_eq(json_array_size(jpath(j, "data.runs")), 2);
    ck_assert(fabs(json_number_value(jpath(j, "data.runs.0.metrics.loss")) - 0.9) < 1e-9);
    ck_assert(fabs(json_number_value(jpath(j, "data.runs.1.metrics.loss")) - 0.5) < 1e-9);
    ck_assert_str_eq(jstr(j, "data.runs.1.params.optimizer"), "adam");
    ck_assert_int_eq(json_array_size(jpath(j, "data.metric_keys")), 2);
    json_t *h = json_object_get(json_object_get(jpath(j, "data.histories"), "loss"), runs[0]);
    ck_assert_int_eq(json_array_size(h), 1);
    json_decref(j);
    for (int i = 0; i < 3; i++)
        free(runs[i]);
    free(exp);
}
END_TEST

/* Waits until the job's tracking state is `want` (bounded); returns the job. */
static json_t *wait_job(const char *id, const char *want, double seconds)
{
    char path[128];
    snprintf(path, sizeof path, "/training-jobs/%s", id);
    double end = now_s() + seconds;
    for (;;) {
        int s;
        json_t *j = api(&st, &s, st.reader, "GET", path, NULL);
        EXPECT(s, 200, j);
        const char *state = jstr(j, "data.tracking.state");
        if (state && strcmp(state, want) == 0)
            return j;
        if (now_s() > end) {
            char *d = json_dumps(j, JSON_COMPACT);
            ck_abort_msg("job %s still not %s after %.0f s: %.800s", id, want, seconds, d);
        }
        json_decref(j);
        sleep_ms(100);
    }
}

START_TEST(training_job_opens_a_run)
{
    int s;
    char exp[64];
    snprintf(exp, sizeof exp, "jobs-%s", uniq());
    /* the GPU type is checked against the environment's list */
    json_t *j = api(&st, &s, st.operator_, "POST", "/training-jobs?env=dev",
                    "{\"name\":\"ft\",\"experiment\":\"%s\",\"base_model\":\"llama-3-8b\","
                    "\"dataset\":\"s3://d/v1\",\"gpu_type\":\"no-such-gpu\",\"gpu_count\":1}",
                    exp);
    EXPECT(s, 400, j);
    ck_assert_str_eq(jstr(j, "data.error.field"), "gpu_type");
    json_decref(j);
    j = api(&st, &s, st.reader, "GET", "/gpu-types?env=dev", NULL);
    EXPECT(s, 200, j);
    char gpu[64];
    snprintf(gpu, sizeof gpu, "%s", jstr(j, "data.gpu_types.0.name"));
    json_decref(j);

    j = api(&st, &s, st.operator_, "POST", "/training-jobs?env=dev",
            "{\"name\":\"ft-1\",\"experiment\":\"%s\",\"base_model\":\"llama-3-8b\","
            "\"dataset\":\"s3://d/v1\",\"gpu_type\":\"%s\",\"gpu_count\":1,"
            "\"hyperparameters\":{\"lr\":0.0002,\"epochs\":3,\"lora\":true}}",
            exp, gpu);
    EXPECT(s, 201, j);
    char id[64], run[64];
    snprintf(id, sizeof id, "%s", jstr(j, "data.id"));
    snprintf(run, sizeof run, "%s", jstr(j, "data.run_id"));
    ck_assert(strncmp(id, "job_", 4) == 0);
    ck_assert(strncmp(run, "run_", 4) == 0);
    ck_assert_str_eq(jstr(j, "data.status"), "QUEUED");
    json_decref(j);

    /* values logged before the run exists are queued and delivered in order */
    char path[160];
    snprintf(path, sizeof path, "/training-jobs/%s/log", id);
    j = api(&st, &s, st.operator_, "POST", path,
            "{\"metrics\":[{\"key\":\"loss\",\"value\":2.5,\"step\":0},"
            "{\"key\":\"loss\",\"value\":1.5,\"step\":1}]}");
    EXPECT(s, 202, j);
    json_decref(j);

    j = wait_job(id, "ready", 20);
    ck_assert_str_eq(jstr(j, "data.tracking.instance"), "tracking-pg");
    ck_assert_ptr_nonnull(jstr(j, "data.experiment_id"));
    json_decref(j);

    snprintf(path, sizeof path, "/runs/%s", run);
    j = api(&st, &s, st.reader, "GET", path, NULL);
    EXPECT(s, 200, j);
    ck_assert_str_eq(jstr(j, "data.params.epochs"), "3");
    ck_assert_str_eq(jstr(j, "data.params.lora"), "true");
    json_t *tags = jpath(j, "data.tags");
    ck_assert_str_eq(json_string_value(json_object_get(tags, "llmops.job_id")), id);
    ck_assert_str_eq(json_string_value(json_object_get(tags, "llmops.base_model")), "llama-3-8b");
    ck_assert_str_eq(jstr(j, "data.name"), "ft-1");
    json_decref(j);
    snprintf(path, sizeof path, "/runs/%s/metric-history?key=loss", run);
    j = api(&st, &s, st.reader, "GET", path, NULL);
    EXPECT(s, 200, j);
    ck_assert_int_eq(json_array_size(jpath(j, "data.metrics")), 2);
    json_decref(j);

    /* status: the run follows */
    snprintf(path, sizeof path, "/training-jobs/%s", id);
    j = api(&st, &s, st.operator_, "PATCH", path, "{\"status\":\"RUNNING\"}");
    EXPECT(s, 200, j);
    json_decref(j);
    j = api(&st, &s, st.operator_, "PATCH", path, "{\"status\":\"SUCCEEDED\"}");
    EXPECT(s, 200, j);
    json_decref(j);
    j = api(&st, &s, st.operator_, "PATCH", path, "{\"status\":\"RUNNING\"}");
    EXPECT(s, 409, j);
    json_decref(j);
    j = api(&st, &s, st.operator_, "PATCH", path, "{\"status\":\"PAUSED\"}");
    EXPECT(s, 400, j);
    json_decref(j);
    j = wait_job(id, "ready", 20);
    json_decref(j);
    snprintf(path, sizeof path, "/runs/%s", run);
    j = api(&st, &s, st.reader, "GET", path, NULL);
    EXPECT(s, 200, j);
    ck_assert_str_eq(jstr(j, "data.status"), "FINISHED");
    json_decref(j);

    j = api(&st, &s, st.reader, "GET", "/training-jobs?env=dev&status=SUCCEEDED", NULL);
    EXPECT(s, 200, j);
    int found = 0;
    size_t i;
    json_t *x;
    json_array_foreach(jpath(j, "data.training_jobs"), i, x) if (strcmp(jstr(x, "id"), id) == 0)
        found = 1;
    ck_assert(found);
    json_decref(j);
}
END_TEST

/* ---------------------------------------------------------------------------------------- */
/* Defects found by hostile clients (issue 11): resends, cursors, dead rows, killed creates.   */

/* One SQL statement against the stack's database; its output (tu_capture's static buffer). */
static char *sql(const char *q)
{
    int rc;
    char *out = tu_capture(&rc,
                           ". %s/env && psql -h \"$PGHOST\" -p \"$PGPORT\" -U postgres -d llmops"
                           " -X -q -tA -c \"%s\"",
                           st.dir, q);
    ck_assert_msg(rc == 0, "psql failed (%d) on: %s", rc, q);
    out[strcspn(out, "\n")] = '\0';
    return out;
}

/* `copies` POSTs of the same body to path, all let go at once (one process each); returns
 * how many answered `want`. */
static int post_at_once(const struct stack *k, int copies, const char *path, const char *body,
                        int want)
{
    char url[512];
    snprintf(url, sizeof url, "%s%s", k->url, path);
    int go[2];
    ck_assert_int_eq(pipe(go), 0);
    pid_t kids[16];
    for (int i = 0; i < copies; i++) {
        kids[i] = fork();
        ck_assert_int_ge(kids[i], 0);
        if (kids[i] == 0) {
            close(go[1]);
            char c;
            if (read(go[0], &c, 1) < 0)
                _exit(3);
            int s = 0;
            char *t = http_text("POST", url, k->operator_, NULL, body, &s, NULL, 0);
            free(t);
            _exit(s == want ? 0 : 1);
        }
    }
    close(go[0]);
    close(go[1]); /* every child's read returns at once */
    int ok = 0;
    for (int i = 0; i < copies; i++) {
        int status;
        ck_assert_int_eq(waitpid(kids[i], &status, 0), kids[i]);
        ok += WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
    return ok;
}

static json_int_t history_count_of(const struct stack *k, const char *run, const char *key)
{
    int s;
    char q[256];
    snprintf(q, sizeof q, "/runs/%s/metric-history?key=%s&max_results=25000", run, key);
    json_t *j = api(k, &s, k->reader, "GET", q, NULL);
    EXPECT(s, 200, j);
    json_int_t n = (json_int_t)json_array_size(jpath(j, "data.metrics"));
    json_decref(j);
    return n;
}

static json_int_t history_count(const char *run, const char *key)
{
    return history_count_of(&st, run, key);
}

/* 1,500 points of `key` without timestamp_ms (steps 0..1499). */
static char *points_body(const char *key, double offset)
{
    json_t *metrics = json_array();
    for (int i = 0; i < 1500; i++)
        json_array_append_new(metrics, json_pack("{s:s,s:f,s:i}", "key", key, "value",
                                                 offset + (double)i / 4.0, "step", i));
    json_t *body = json_pack("{s:o}", "metrics", metrics);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    return text;
}

START_TEST(log_resend_stores_each_point_once)
{
    char name[64], path[160];
    snprintf(name, sizeof name, "resend-%s", uniq());
    char *exp = create_experiment(name);
    char *run = create_run(exp, "resend");
    snprintf(path, sizeof path, "/runs/%s/log", run);
    char *body = points_body("loss", 0);
    /* six copies at once, then a late resend: each point is stored once */
    double t0 = now_s();
    ck_assert_int_eq(post_at_once(&st, 6, path, body, 200), 6);
    double took = now_s() - t0;
    sleep_ms(20);
    int s;
    json_t *j = api(&st, &s, st.operator_, "POST", path, "%s", body);
    EXPECT(s, 200, j);
    json_decref(j);
    json_int_t n = history_count(run, "loss");
    fprintf(stderr,
            "log_resend: 7 copies of a 1,500-point body (6 at once in %.2f s): %lld points\n", took,
            (long long)n);
    ck_assert_int_eq(n, 1500);
    /* another body is other points: it adds its own */
    j = api(&st, &s, st.operator_, "POST", path, "{\"metrics\":[{\"key\":\"loss\",\"value\":9}]}");
    EXPECT(s, 200, j);
    json_decref(j);
    ck_assert_int_eq(history_count(run, "loss"), 1501);
    free(body);

    /* the same through a training job's log (queued in the outbox) */
    j = api(&st, &s, st.reader, "GET", "/gpu-types?env=dev", NULL);
    EXPECT(s, 200, j);
    char gpu[64];
    snprintf(gpu, sizeof gpu, "%s", jstr(j, "data.gpu_types.0.name"));
    json_decref(j);
    j = api(&st, &s, st.operator_, "POST", "/training-jobs?env=dev",
            "{\"name\":\"resend\",\"experiment\":\"%s\",\"base_model\":\"m\",\"dataset\":\"d\","
            "\"gpu_type\":\"%s\",\"gpu_count\":1}",
            name, gpu);
    EXPECT(s, 201, j);
    char id[64], jrun[64];
    snprintf(id, sizeof id, "%s", jstr(j, "data.id"));
    snprintf(jrun, sizeof jrun, "%s", jstr(j, "data.run_id"));
    json_decref(j);
    snprintf(path, sizeof path, "/training-jobs/%s/log", id);
    body = points_body("acc", 0.5);
    ck_assert_int_eq(post_at_once(&st, 6, path, body, 202), 6);
    free(body);
    json_decref(wait_job(id, "ready", 60));
    n = history_count(jrun, "acc");
    fprintf(stderr, "log_resend: 6 copies at once to a job: %lld points\n", (long long)n);
    ck_assert_int_eq(n, 1500);
    free(exp);
    free(run);
}
END_TEST

START_TEST(list_cursors_are_checked)
{
    int s;
    static const char *const bad[] = {"/training-jobs?env=dev&after=abc",
                                      "/training-jobs?env=dev&after=job_000000000000000000000000",
                                      "/training-jobs?env=dev&after=job_1",
                                      "/outbox?after=abc",
                                      "/outbox?after=-1",
                                      "/outbox?after=1x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *j = api(&st, &s, st.operator_, "GET", bad[i], NULL);
        EXPECT(s, 400, j);
        ck_assert_str_eq(jstr(j, "data.error.field"), "after");
        ck_assert_msg(strstr(jstr(j, "message"), "next_cursor"), "%s: %s", bad[i],
                      jstr(j, "message"));
        json_decref(j);
    }
    /* a real cursor pages on */
    json_t *j = api(&st, &s, st.reader, "GET", "/training-jobs?env=dev&limit=1", NULL);
    EXPECT(s, 200, j);
    const char *next = jstr(j, "data.next_cursor");
    if (next) {
        char q[160];
        snprintf(q, sizeof q, "/training-jobs?env=dev&limit=1&after=%s", next);
        json_t *k = api(&st, &s, st.reader, "GET", q, NULL);
        EXPECT(s, 200, k);
        ck_assert_int_eq(json_array_size(jpath(k, "data.training_jobs")), 1);
        ck_assert_str_ne(jstr(k, "data.training_jobs.0.id"), next);
        json_decref(k);
        /* a job of dev is no cursor of prod's list */
        snprintf(q, sizeof q, "/training-jobs?env=prod&after=%s", next);
        k = api(&st, &s, st.reader, "GET", q, NULL);
        EXPECT(s, 400, k);
        json_decref(k);
    }
    json_decref(j);
    j = api(&st, &s, st.operator_, "GET", "/outbox?after=0&limit=1", NULL);
    EXPECT(s, 200, j);
    json_decref(j);
}
END_TEST

START_TEST(dead_row_blocks_until_discarded)
{
    int s;
    char exp[64];
    snprintf(exp, sizeof exp, "blocked-%s", uniq());
    json_t *j = api(&st, &s, st.reader, "GET", "/gpu-types?env=dev", NULL);
    EXPECT(s, 200, j);
    char gpu[64];
    snprintf(gpu, sizeof gpu, "%s", jstr(j, "data.gpu_types.0.name"));
    json_decref(j);
    j = api(&st, &s, st.operator_, "POST", "/training-jobs?env=dev",
            "{\"name\":\"b\",\"experiment\":\"%s\",\"base_model\":\"m\",\"dataset\":\"d\","
            "\"gpu_type\":\"%s\",\"gpu_count\":1,\"hyperparameters\":{\"lr\":\"1\"}}",
            exp, gpu);
    EXPECT(s, 201, j);
    char id[64], run[64], path[160];
    snprintf(id, sizeof id, "%s", jstr(j, "data.id"));
    snprintf(run, sizeof run, "%s", jstr(j, "data.run_id"));
    json_decref(j);
    json_decref(wait_job(id, "ready", 20));
    /* a param logged again with another value: the tool refuses for good, the row is dead,
     * and the metrics queued after it wait */
    snprintf(path, sizeof path, "/training-jobs/%s/log", id);
    j = api(&st, &s, st.operator_, "POST", path, "{\"params\":{\"lr\":\"2\"}}");
    EXPECT(s, 202, j);
    json_decref(j);
    j = api(&st, &s, st.operator_, "POST", path,
            "{\"metrics\":[{\"key\":\"loss\",\"value\":1,\"step\":1,\"timestamp_ms\":1}]}");
    EXPECT(s, 202, j);
    json_decref(j);
    j = wait_job(id, "dead", 20);
    json_t *by = jpath(j, "data.tracking.blocked_by");
    ck_assert_msg(json_is_object(by), "no tracking.blocked_by");
    json_int_t dead = json_integer_value(json_object_get(by, "outbox_id"));
    ck_assert_int_gt(dead, 0);
    ck_assert_str_eq(jstr(by, "operation"), "log_batch");
    ck_assert_int_eq(json_integer_value(json_object_get(by, "blocked_rows")), 1);
    ck_assert_ptr_nonnull(jstr(by, "last_error"));
    json_decref(j);
    /* /outbox shows the pending row and what holds it back */
    j = api(&st, &s, st.operator_, "GET", "/outbox?env=dev&state=pending", NULL);
    EXPECT(s, 200, j);
    int listed = 0;
    size_t i;
    json_t *row;
    json_int_t pending = 0;
    json_array_foreach(jpath(j, "data.rows"), i, row) if (strcmp(jstr(row, "object_id"), run) == 0)
    {
        ck_assert_int_eq(json_integer_value(json_object_get(row, "blocked_by")), dead);
        pending = json_integer_value(json_object_get(row, "id"));
        listed++;
    }
    ck_assert_int_eq(listed, 1);
    json_decref(j);
    /* only admins discard; a reason is required; only a dead row */
    char dpath[96];
    snprintf(dpath, sizeof dpath, "/outbox/%lld/discard", (long long)dead);
    j = api(&st, &s, st.operator_, "POST", dpath, "{\"reason\":\"x\"}");
    EXPECT(s, 403, j);
    json_decref(j);
    j = api(&st, &s, st.admin, "POST", dpath, "{}");
    EXPECT(s, 400, j);
    ck_assert_str_eq(jstr(j, "data.error.field"), "reason");
    json_decref(j);
    char ppath[96];
    snprintf(ppath, sizeof ppath, "/outbox/%lld/discard", (long long)pending);
    j = api(&st, &s, st.admin, "POST", ppath, "{\"reason\":\"x\"}");
    EXPECT(s, 409, j);
    ck_assert_str_eq(jstr(j, "data.error.state"), "pending");
    json_decref(j);
    j = api(&st, &s, st.admin, "POST", "/outbox/999999999/discard", "{\"reason\":\"x\"}");
    EXPECT(s, 404, j);
    json_decref(j);
    j = api(&st, &s, st.admin, "POST", dpath, "{\"reason\":\"lr is fixed at 1\"}");
    EXPECT(s, 200, j);
    ck_assert_int_eq(json_integer_value(jpath(j, "data.released")), 1);
    json_decref(j);
    /* the rest flows */
    j = wait_job(id, "ready", 20);
    ck_assert(json_is_null(jpath(j, "data.tracking.blocked_by")));
    ck_assert(json_is_null(jpath(j, "data.tracking.last_error")));
    json_decref(j);
    ck_assert_int_eq(history_count(run, "loss"), 1);
    /* audited: who, when, why; and not twice */
    j = api(&st, &s, st.admin, "POST", dpath, "{\"reason\":\"again\"}");
    EXPECT(s, 409, j);
    ck_assert_str_eq(jstr(j, "data.error.state"), "discarded");
    json_decref(j);
    j = api(&st, &s, st.operator_, "GET", "/outbox?env=dev&state=discarded", NULL);
    EXPECT(s, 200, j);
    listed = 0;
    json_array_foreach(jpath(j, "data.rows"), i,
                       row) if (json_integer_value(json_object_get(row, "id")) == dead)
    {
        ck_assert_str_eq(jstr(row, "state"), "discarded");
        ck_assert_str_eq(jstr(row, "discarded.by"), "stack-admin");
        ck_assert_str_eq(jstr(row, "discarded.reason"), "lr is fixed at 1");
        ck_assert_ptr_nonnull(jstr(row, "discarded.at"));
        listed++;
    }
    ck_assert_int_eq(listed, 1);
    ck_assert_int_ge(json_integer_value(jpath(j, "data.counts.discarded")), 1);
    json_decref(j);
    /* a dead row cannot be retried once discarded */
    snprintf(dpath, sizeof dpath, "/outbox/%lld/retry", (long long)dead);
    j = api(&st, &s, st.admin, "POST", dpath, NULL);
    EXPECT(s, 409, j);
    json_decref(j);

    /* the same with llm-opsctl outbox discard */
    j = api(&st, &s, st.operator_, "POST", path, "{\"params\":{\"lr\":\"3\"}}");
    EXPECT(s, 202, j);
    json_decref(j);
    j = api(&st, &s, st.operator_, "POST", path,
            "{\"metrics\":[{\"key\":\"loss\",\"value\":2,\"step\":2,\"timestamp_ms\":2}]}");
    EXPECT(s, 202, j);
    json_decref(j);
    j = wait_job(id, "dead", 20);
    dead = json_integer_value(jpath(j, "data.tracking.blocked_by.outbox_id"));
    json_decref(j);
    const char *bin = getenv("LLMOPS_BIN_DIR") ? getenv("LLMOPS_BIN_DIR") : "build/bin";
    int rc;
    char *out = tu_capture(&rc, "%s/llm-opsctl --config %s outbox discard %lld 2>&1", bin, st.conf,
                           (long long)dead);
    ck_assert_msg(rc == 2, "no reason: exit %d: %s", rc, out);
    out =
        tu_capture(&rc, "%s/llm-opsctl --config %s outbox discard %lld --reason 'lr stays 1' 2>&1",
                   bin, st.conf, (long long)dead);
    ck_assert_msg(rc == 0 && strstr(out, "discarded") && strstr(out, "1 row behind"), "exit %d: %s",
                  rc, out);
    out = tu_capture(&rc, "%s/llm-opsctl --config %s outbox discard %lld --reason again 2>&1", bin,
                     st.conf, (long long)dead);
    ck_assert_msg(rc == 1 && strstr(out, "discarded, not dead"), "exit %d: %s", rc, out);
    json_decref(wait_job(id, "ready", 20));
    ck_assert_int_eq(history_count(run, "loss"), 2);
    char q[200];
    snprintf(q, sizeof q,
             "SELECT discarded_by || '/' || discard_reason FROM outbox WHERE id = %lld",
             (long long)dead);
    struct passwd *pw = getpwuid(getuid());
    char want[160];
    snprintf(want, sizeof want, "cli:%s/lr stays 1", pw ? pw->pw_name : "unknown");
    ck_assert_str_eq(sql(q), want);
}
END_TEST

/* SIGKILL to every worker of the stack (the one serving the request among them); the master
 * starts new ones. */
static void kill_workers(void)
{
    ck_assert_int_eq(tu_sh(". %s/env && for p in $(pgrep -P \"$(cat \"$LLMOPS_PID_FILE\")\"); do"
                           " kill -KILL \"$p\"; done",
                           st.dir),
                     0);
}

/* The create of `name` hangs in the tool (its table locked), the worker is killed, and the
 * tool's statement is let go (tool_made) or cancelled (not made). Returns the platform id the
 * killed attempt reserved. */
static void killed_create(const char *name, int tool_made, char reserved[64])
{
    char q[600];
    /* a session holding the lock for 4 s in the background */
    ck_assert_int_eq(tu_sh(". %s/env && (psql -h \"$PGHOST\" -p \"$PGPORT\" -U postgres -d llmops"
                           " -X -q -c 'BEGIN' -c 'LOCK TABLE tracking_pg_experiments IN SHARE MODE'"
                           " -c 'SELECT pg_sleep(4)' -c 'COMMIT' >/dev/null 2>&1 &)",
                           st.dir),
                     0);
    double end = now_s() + 10;
    while (strcmp(sql("SELECT count(*) FROM pg_locks WHERE relation ="
                      " 'tracking_pg_experiments'::regclass AND mode = 'ShareLock' AND granted"),
                  "1") != 0) {
        ck_assert_msg(now_s() < end, "the lock was not taken");
        sleep_ms(20);
    }
    char url[300], body[200];
    snprintf(url, sizeof url, "%s/experiments?env=dev", st.url);
    snprintf(body, sizeof body, "{\"name\":\"%s\"}", name);
    pid_t kid = fork();
    ck_assert_int_ge(kid, 0);
    if (kid == 0) {
        int s = 0;
        free(http_text("POST", url, st.operator_, NULL, body, &s, NULL, 0));
        _exit(s == 201 ? 0 : 1);
    }
    /* the worker reserved the id and waits in the tool's INSERT */
    while (strcmp(sql("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                      " AND query LIKE '%INSERT INTO tracking_pg_experiments%'"),
                  "1") != 0) {
        ck_assert_msg(now_s() < end, "the create did not reach the tool");
        sleep_ms(20);
    }
    snprintf(q, sizeof q,
             "SELECT id FROM objects WHERE kind = 'exp' AND external_id IS NULL AND"
             " created_at > now() - interval '1 minute' ORDER BY created_at DESC LIMIT 1");
    snprintf(reserved, 64, "%s", sql(q));
    ck_assert_msg(strncmp(reserved, "exp_", 4) == 0, "no reservation: '%s'", reserved);
    kill_workers();
    if (!tool_made)
        sql("SELECT count(pg_cancel_backend(pid)) FROM pg_stat_activity WHERE wait_event_type ="
            " 'Lock' AND query LIKE '%INSERT INTO tracking_pg_experiments%'");
    int status;
    ck_assert_int_eq(waitpid(kid, &status, 0), kid);
    ck_assert_msg(!(WIFEXITED(status) && WEXITSTATUS(status) == 0),
                  "the killed create answered 201");
    /* the lock goes; the tool's statement commits (or was cancelled) */
    end = now_s() + 15;
    snprintf(q, sizeof q, "SELECT count(*) FROM tracking_pg_experiments WHERE name = '%s'", name);
    for (;;) {
        int busy = strcmp(sql("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type ="
                              " 'Lock' AND query LIKE '%INSERT INTO tracking_pg_experiments%'"),
                          "0") != 0 ||
                   strcmp(sql("SELECT count(*) FROM pg_locks WHERE relation ="
                              " 'tracking_pg_experiments'::regclass AND mode = 'ShareLock'"),
                          "0") != 0;
        if (!busy)
            break;
        ck_assert_msg(now_s() < end, "the tool's table stays locked");
        sleep_ms(50);
    }
    ck_assert_str_eq(sql(q), tool_made ? "1" : "0");
    /* the worker died before it recorded the tool's id */
    snprintf(q, sizeof q, "SELECT coalesce(external_id, 'none') FROM objects WHERE id = '%s'",
             reserved);
    ck_assert_str_eq(sql(q), "none");
}

START_TEST(experiment_create_survives_a_killed_worker)
{
    for (int made = 1; made >= 0; made--) {
        char name[64], reserved[64];
        snprintf(name, sizeof name, "killed-%d-%s", made, uniq());
        killed_create(name, made, reserved);
        /* the client retries the same body: it gets the experiment, under the id reserved */
        int s;
        json_t *j = NULL;
        double end = now_s() + 20;
        for (;;) { /* the master replaces the killed workers */
            j = api(&st, &s, st.operator_, "POST", "/experiments?env=dev", "{\"name\":\"%s\"}",
                    name);
            if (s != 502 && s != 503)
                break;
            ck_assert_msg(now_s() < end, "no worker came back");
            json_decref(j);
            sleep_ms(200);
        }
        EXPECT(s, 201, j);
        ck_assert_str_eq(jstr(j, "data.id"), reserved);
        ck_assert_str_eq(jstr(j, "data.name"), name);
        json_decref(j);
        char q[300];
        snprintf(q, sizeof q, "/experiments/%s", reserved);
        j = api(&st, &s, st.reader, "GET", q, NULL);
        EXPECT(s, 200, j);
        json_decref(j);
        snprintf(q, sizeof q,
                 "SELECT count(*) FROM objects o JOIN tracking_pg_experiments e ON"
                 " e.experiment_id::text = o.external_id WHERE e.name = '%s' AND o.kind = 'exp'",
                 name);
        ck_assert_str_eq(sql(q), "1");
        /* a retry of a create that did answer: 409, with the id */
        j = api(&st, &s, st.operator_, "POST", "/experiments?env=dev", "{\"name\":\"%s\"}", name);
        EXPECT(s, 409, j);
        ck_assert_str_eq(jstr(j, "data.error.id"), reserved);
        json_decref(j);
        fprintf(stderr, "experiment_create_survives_a_killed_worker: tool call %s, retry got %s\n",
                made ? "made" : "not made", reserved);
    }
    /* a name another client of the tool took (another key): 409, with the platform id once a
     * listing has recorded it */
    char other[64], q[400];
    snprintf(other, sizeof other, "other-%s", uniq());
    snprintf(q, sizeof q,
             "INSERT INTO tracking_pg_experiments (name, idempotency_key, created_ms, updated_ms)"
             " VALUES ('%s', 'someone-else-%s', 1, 1)",
             other, other);
    sql(q);
    int s;
    snprintf(q, sizeof q, "/experiments?env=dev&name=%s", other);
    json_t *j = api(&st, &s, st.reader, "GET", q, NULL);
    EXPECT(s, 200, j);
    char adopted[64];
    snprintf(adopted, sizeof adopted, "%s", jstr(j, "data.experiments.0.id"));
    json_decref(j);
    j = api(&st, &s, st.operator_, "POST", "/experiments?env=dev", "{\"name\":\"%s\"}", other);
    EXPECT(s, 409, j);
    ck_assert_str_eq(jstr(j, "data.error.id"), adopted);
    json_decref(j);
    /* no reservation is left without its tool id */
    ck_assert_str_eq(sql("SELECT count(*) FROM objects WHERE kind = 'exp' AND external_id IS NULL"
                         " AND create_key IS NOT NULL"),
                     "0");
}
END_TEST

/* ---------------------------------------------------------------------------------------- */
/* The mlflow plugin against the MLflow fake: stg is served by mlflow (fallback tracking-pg)   */

static struct stack ml;
static int fake_port;
static char fake_dir[256];

static void fake_start(void)
{
    snprintf(fake_dir, sizeof fake_dir, "/tmp/llmops-mlfake-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(fake_dir));
    ck_assert_int_eq(tu_sh("python3 %s/tests/fakes/mlflow_fake.py --port 0 --ready-file %s/ready"
                           " --max-seconds 900 --idle-timeout 600 >%s/fake.log 2>&1 &"
                           " echo $! >%s/pid",
                           LLMOPS_SOURCE_DIR, fake_dir, fake_dir, fake_dir),
                     0);
    char path[300];
    snprintf(path, sizeof path, "%s/ready", fake_dir);
    fake_port = ready_port(path, "the MLflow fake");
}

static void fake_stop(void)
{
    if (!fake_dir[0])
        return;
    tu_sh("kill $(cat %s/pid) 2>/dev/null; rm -rf %s", fake_dir, fake_dir);
    fake_dir[0] = '\0';
}

/* A control call to the fake (/_faults, /_refuse, /_state). */
static json_t *fake(const char *method, const char *path, const char *body)
{
    struct stack f;
    memset(&f, 0, sizeof f);
    snprintf(f.url, sizeof f.url, "http://127.0.0.1:%d", fake_port);
    int s;
    json_t *j =
        body ? api(&f, &s, NULL, method, path, "%s", body) : api(&f, &s, NULL, method, path, NULL);
    ck_assert_msg(s == 200, "fake %s %s: HTTP %d", method, path, s);
    return j;
}

static void setup_mlflow(void)
{
    fake_start();
    char dropin[300];
    snprintf(dropin, sizeof dropin, "%s/10-mlflow.conf", fake_dir);
    FILE *f = fopen(dropin, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "[plugin \"mlflow\"]\nmodule = mlflow\nurl = http://127.0.0.1:%d\n"
            "timeout_ms = 3000\nconnect_timeout_ms = 500\nretries = 0\n"
            "[flags \"stg\"]\nexperiment_tracking = mlflow\n"
            "experiment_tracking.fallback = tracking-pg\n",
            fake_port);
    fclose(f);
    char opts[800];
    snprintf(opts, sizeof opts,
             "--custom-plugins --drop-in %s --set outbox.base_delay_ms=100"
             " --set outbox.max_delay_ms=1500 --set outbox.max_attempts=1000"
             " --set breaker.min_calls=100000",
             dropin);
    stack_start(&ml, "mlflow", opts);
}

static void teardown_mlflow(void)
{
    stack_stop(&ml);
    fake_stop();
}

static json_t *fake_runs_of(const char *tag_key, const char *value, json_t *state)
{
    json_t *out = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(state, "runs"), i, r)
    {
        const char *v = json_string_value(json_object_get(json_object_get(r, "tags"), tag_key));
        if (v && strcmp(v, value) == 0)
            json_array_append(out, r);
    }
    return out;
}

/* Creates n jobs in stg, logs `points` values of "loss" to each; ids into ids[]. */
static void create_jobs(int n, int points, const char *exp, char (*ids)[40])
{
    int s;
    json_t *j = api(&ml, &s, ml.reader, "GET", "/gpu-types?env=stg", NULL);
    EXPECT(s, 200, j);
    char gpu[64];
    snprintf(gpu, sizeof gpu, "%s", jstr(j, "data.gpu_types.0.name"));
    json_decref(j);
    for (int i = 0; i < n; i++) {
        j = api(&ml, &s, ml.operator_, "POST", "/training-jobs?env=stg",
                "{\"name\":\"job-%d\",\"experiment\":\"%s\",\"base_model\":\"m\","
                "\"dataset\":\"d\",\"gpu_type\":\"%s\",\"gpu_count\":1,"
                "\"hyperparameters\":{\"i\":%d}}",
                i, exp, gpu, i);
        EXPECT(s, 201, j);
        snprintf(ids[i], 40, "%s", jstr(j, "data.id"));
        json_decref(j);
        json_t *metrics = json_array();
        for (int k = 0; k < points; k++)
            json_array_append_new(metrics, json_pack("{s:s,s:f,s:i,s:I}", "key", "loss", "value",
                                                     (double)k / 8.0, "step", k, "timestamp_ms",
                                                     (json_int_t)1700000000000 + k));
        json_t *body = json_pack("{s:o}", "metrics", metrics);
        char path[96];
        snprintf(path, sizeof path, "/training-jobs/%s/log", ids[i]);
        j = api_json(&ml, &s, ml.operator_, "POST", path, body);
        json_decref(body);
        EXPECT(s, 202, j);
        json_decref(j);
    }
}

/* Every job of ids is ready, with exactly one run in the fake holding all its points once. */
static void expect_delivered(int n, int points, char (*ids)[40], double seconds)
{
    double end = now_s() + seconds;
    int ready = 0;
    while (ready < n) {
        ready = 0;
        for (int i = 0; i < n; i++) {
            char path[96];
            int s;
            snprintf(path, sizeof path, "/training-jobs/%s", ids[i]);
            json_t *j = api(&ml, &s, ml.reader, "GET", path, NULL);
            EXPECT(s, 200, j);
            const char *state = jstr(j, "data.tracking.state");
            if (state && strcmp(state, "ready") == 0) {
                ready++;
                /* the job shows its run's page in MLflow */
                const char *ui = jstr(j, "data.links.ui");
                ck_assert_msg(ui && strstr(ui, "/runs/"), "job %s has no links.ui", ids[i]);
            } else if (now_s() > end)
                ck_abort_msg("job %s is %s after %.0f s (%d of %d ready): %s", ids[i], state,
                             seconds, ready, n, jstr(j, "data.tracking.last_error") ?: "");
            json_decref(j);
        }
        if (ready < n)
            sleep_ms(300);
    }
    json_t *state = fake("GET", "/_state", NULL);
    for (int i = 0; i < n; i++) {
        json_t *runs = fake_runs_of("llmops.job_id", ids[i], state);
        ck_assert_msg(json_array_size(runs) == 1, "job %s has %zu runs in MLflow", ids[i],
                      json_array_size(runs));
        json_t *m = json_object_get(json_array_get(runs, 0), "metrics");
        ck_assert_msg(json_array_size(m) == (size_t)points, "job %s: %zu points, wanted %d", ids[i],
                      json_array_size(m), points);
        size_t k;
        json_t *pt;
        long long seen = 0;
        json_array_foreach(m, k, pt)
        {
            long long step = json_integer_value(json_object_get(pt, "step"));
            ck_assert(step >= 0 && step < 63);
            ck_assert_msg(!(seen & (1LL << step)), "job %s: step %lld twice", ids[i], step);
            seen |= 1LL << step;
        }
        char want[16];
        snprintf(want, sizeof want, "%d", i);
        ck_assert_str_eq(json_string_value(json_object_get(
                             json_object_get(json_array_get(runs, 0), "params"), "i")),
                         want);
        json_decref(runs);
    }
    json_decref(state);
}

START_TEST(nothing_lost_while_refused)
{
    enum { N = 200, POINTS = 5 };
    static char ids[N][40];
    char exp[64];
    snprintf(exp, sizeof exp, "refused-%s", uniq());
    /* MLflow refuses connections for 10 s: every job is still created */
    json_decref(fake("POST", "/_refuse", "{\"seconds\": 10}"));
    double t0 = now_s();
    create_jobs(N, POINTS, exp, ids);
    double made = now_s() - t0;
    int s;
    char path[96];
    snprintf(path, sizeof path, "/training-jobs/%s", ids[N - 1]);
    json_t *j = api(&ml, &s, ml.reader, "GET", path, NULL);
    if (now_s() - t0 < 9)
        ck_assert_str_eq(jstr(j, "data.tracking.state"), "pending");
    json_decref(j);
    j = api(&ml, &s, ml.operator_, "GET", "/outbox?env=stg&state=pending&limit=1", NULL);
    EXPECT(s, 200, j);
    if (now_s() - t0 < 9)
        ck_assert_int_gt(json_integer_value(jpath(j, "data.counts.pending")), 0);
    json_decref(j);
    fprintf(stderr, "nothing_lost_while_refused: %d jobs and their logs queued in %.1f s\n", N,
            made);
    expect_delivered(N, POINTS, ids, 120);
    fprintf(stderr, "nothing_lost_while_refused: all delivered %.1f s after the first job\n",
            now_s() - t0);
}
END_TEST

START_TEST(nothing_lost_when_answers_are_lost)
{
    enum { N = 200, POINTS = 4 };
    static char ids[N][40];
    char exp[64];
    snprintf(exp, sizeof exp, "lost-%s", uniq());
    /* the tool does the work but the answer never comes: create, then log */
    char body[4096];
    int w =
        snprintf(body, sizeof body, "{\"path\":\"/api/2.0/mlflow/runs/create\",\"responses\":[");
    for (int i = 0; i < N; i++)
        w += snprintf(body + w, sizeof body - (size_t)w, "%s{\"lost\":true}", i ? "," : "");
    snprintf(body + w, sizeof body - (size_t)w, "]}");
    json_decref(fake("POST", "/_faults", body));
    w = snprintf(body, sizeof body, "{\"path\":\"/api/2.0/mlflow/runs/log-batch\",\"responses\":[");
    for (int i = 0; i < N; i++)
        w += snprintf(body + w, sizeof body - (size_t)w, "%s{\"lost\":true}", i ? "," : "");
    snprintf(body + w, sizeof body - (size_t)w, "]}");
    json_decref(fake("POST", "/_faults", body));
    create_jobs(N, POINTS, exp, ids);
    expect_delivered(N, POINTS, ids, 120);
    json_t *stats = fake("GET", "/_stats", NULL);
    long long creates = json_integer_value(
        json_object_get(json_object_get(stats, "counts"), "/api/2.0/mlflow/runs/create"));
    ck_assert_msg(creates >= N, "runs/create was called %lld times: the faults did not bite",
                  creates);
    json_decref(stats);
}
END_TEST

START_TEST(dead_letter_and_admin_retry)
{
    char exp[64];
    snprintf(exp, sizeof exp, "dead-%s", uniq());
    /* an answer that will not pass by retrying: dead at once */
    json_decref(
        fake("POST", "/_faults",
             "{\"path\":\"/api/2.0/mlflow/runs/create\",\"responses\":[{\"status\":400,"
             "\"body\":{\"error_code\":\"INVALID_PARAMETER_VALUE\",\"message\":\"no\"}}]}"));
    static char ids[1][40];
    create_jobs(1, 2, exp, ids);
    char path[96];
    snprintf(path, sizeof path, "/training-jobs/%s", ids[0]);
    double end = now_s() + 30;
    int s;
    json_t *j;
    for (;;) {
        j = api(&ml, &s, ml.reader, "GET", path, NULL);
        if (strcmp(jstr(j, "data.tracking.state"), "dead") == 0)
            break;
        ck_assert_msg(now_s() < end, "not dead: %s", jstr(j, "data.tracking.state"));
        json_decref(j);
        sleep_ms(200);
    }
    ck_assert_ptr_nonnull(jstr(j, "data.tracking.last_error"));
    json_decref(j);
    j = api(&ml, &s, ml.operator_, "GET", "/outbox?env=stg&state=dead", NULL);
    EXPECT(s, 200, j);
    json_t *rows = jpath(j, "data.rows");
    json_int_t dead_id = 0;
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row) if (jstr(row, "training_job_id") &&
                                         strcmp(jstr(row, "training_job_id"), ids[0]) == 0 &&
                                         strcmp(jstr(row, "operation"), "create_run") == 0)
        dead_id = json_integer_value(json_object_get(row, "id"));
    ck_assert_msg(dead_id > 0, "the dead create_run row is not listed");
    ck_assert_int_ge(json_integer_value(jpath(j, "data.counts.dead")), 1);
    json_decref(j);
    /* the job names the row that holds its run back */
    j = api(&ml, &s, ml.reader, "GET", path, NULL);
    EXPECT(s, 200, j);
    ck_assert_int_eq(json_integer_value(jpath(j, "data.tracking.blocked_by.outbox_id")), dead_id);
    ck_assert_str_eq(jstr(j, "data.tracking.blocked_by.operation"), "create_run");
    ck_assert_int_ge(json_integer_value(jpath(j, "data.tracking.blocked_by.blocked_rows")), 1);
    json_decref(j);
    /* a dead create_run cannot be skipped: every row behind it needs the run */
    char dpath[96];
    snprintf(dpath, sizeof dpath, "/outbox/%lld/discard", (long long)dead_id);
    j = api(&ml, &s, ml.admin, "POST", dpath, "{\"reason\":\"skip it\"}");
    EXPECT(s, 409, j);
    ck_assert_str_eq(jstr(j, "data.error.operation"), "create_run");
    json_decref(j);
    /* operators see it; only admins retry */
    j = api(&ml, &s, ml.operator_, "POST", "/outbox/retry", "{\"ids\":[%lld]}", (long long)dead_id);
    EXPECT(s, 403, j);
    json_decref(j);
    j = api(&ml, &s, ml.admin, "POST", "/outbox/retry", "{\"ids\":[%lld]}", (long long)dead_id);
    EXPECT(s, 200, j);
    ck_assert_int_eq(json_array_size(jpath(j, "data.retried")), 1);
    json_decref(j);
    expect_delivered(1, 2, ids, 30);
    snprintf(path, sizeof path, "/outbox/%lld/retry", (long long)dead_id);
    j = api(&ml, &s, ml.admin, "POST", path, NULL);
    EXPECT(s, 409, j);
    json_decref(j);
}
END_TEST

/* The points of the job's run in the fake, or -1 while it has none. */
static int fake_points(const char *job)
{
    json_t *state = fake("GET", "/_state", NULL);
    json_t *runs = fake_runs_of("llmops.job_id", job, state);
    int n = json_array_size(runs) == 1
                ? (int)json_array_size(json_object_get(json_array_get(runs, 0), "metrics"))
                : -1;
    json_decref(runs);
    json_decref(state);
    return n;
}

/* How many of the job's outbox rows are dead. */
static int dead_rows(const char *job)
{
    int s, n = 0;
    json_t *j = api(&ml, &s, ml.operator_, "GET", "/outbox?env=stg&state=dead&limit=1000", NULL);
    EXPECT(s, 200, j);
    size_t i;
    json_t *row;
    json_array_foreach(jpath(j, "data.rows"), i, row)
    {
        const char *t = jstr(row, "training_job_id");
        if (t && strcmp(t, job) == 0)
            n++;
    }
    json_decref(j);
    return n;
}

#define NAN_LOG                                                                                    \
    "{\"metrics\":[{\"key\":\"loss\",\"value\":\"NaN\",\"step\":10,"                               \
    "\"timestamp_ms\":1700000000100},"                                                             \
    "{\"key\":\"grad\",\"value\":\"NaN\",\"step\":10,\"timestamp_ms\":1700000000100},"             \
    "{\"key\":\"loss\",\"value\":0.5,\"step\":11,\"timestamp_ms\":1700000000110}],"                \
    "\"tags\":{\"phase\":\"nan\"}}"

START_TEST(nan_points_sent_again)
{
    char exp[64];
    snprintf(exp, sizeof exp, "nan-%s", uniq());
    static char ids[1][40];
    create_jobs(1, 2, exp, ids);
    expect_delivered(1, 2, ids, 30);
    /* MLflow stores the job's NaN log but its answer is lost; the outbox delivers it again,
     * and the same body is queued twice more: MLflow refuses each of those re-sends (it holds
     * the NaN points), the module sends what it does not hold */
    json_decref(
        fake("POST", "/_faults",
             "{\"path\":\"/api/2.0/mlflow/runs/log-batch\",\"responses\":[{\"lost\":true}]}"));
    char path[96];
    int s;
    snprintf(path, sizeof path, "/training-jobs/%s/log", ids[0]);
    for (int i = 0; i < 3; i++) {
        json_t *j = api(&ml, &s, ml.operator_, "POST", path, NAN_LOG);
        EXPECT(s, 202, j);
        json_decref(j);
    }
    /* and a later log of the job is not stuck behind them */
    json_t *j = api(&ml, &s, ml.operator_, "POST", path,
                    "{\"metrics\":[{\"key\":\"loss\",\"value\":0.25,\"step\":12,"
                    "\"timestamp_ms\":1700000000120}]}");
    EXPECT(s, 202, j);
    json_decref(j);
    double t0 = now_s(), end = t0 + 60;
    snprintf(path, sizeof path, "/training-jobs/%s", ids[0]);
    for (;;) {
        j = api(&ml, &s, ml.reader, "GET", path, NULL);
        EXPECT(s, 200, j);
        const char *state = jstr(j, "data.tracking.state");
        int done = state && strcmp(state, "ready") == 0 && fake_points(ids[0]) == 6;
        ck_assert_msg(dead_rows(ids[0]) == 0, "a log of job %s is dead: %s", ids[0],
                      jstr(j, "data.tracking.last_error") ?: "");
        if (done) {
            json_decref(j);
            break;
        }
        ck_assert_msg(now_s() < end, "job %s is %s with %d points after 60 s: %s", ids[0], state,
                      fake_points(ids[0]), jstr(j, "data.tracking.last_error") ?: "");
        json_decref(j);
        sleep_ms(200);
    }
    fprintf(stderr, "nan_points_sent_again: the NaN logs delivered in %.1f s\n", now_s() - t0);
    json_t *stats = fake("GET", "/_stats", NULL);
    long long batches = json_integer_value(
        json_object_get(json_object_get(stats, "counts"), "/api/2.0/mlflow/runs/log-batch"));
    json_decref(stats);
    ck_assert_msg(batches >= 5, "runs/log-batch was called %lld times: no re-send was refused",
                  batches);

    /* the same body twice straight to the run: safe, as the message of a failure says */
    j = api(&ml, &s, ml.reader, "GET", path, NULL);
    char run[64], rpath[128];
    snprintf(run, sizeof run, "%s", jstr(j, "data.run_id"));
    json_decref(j);
    snprintf(rpath, sizeof rpath, "/runs/%s/log", run);
    for (int i = 0; i < 2; i++) {
        j = api(&ml, &s, ml.operator_, "POST", rpath, NAN_LOG);
        EXPECT(s, 200, j);
        json_decref(j);
    }
    ck_assert_int_eq(fake_points(ids[0]), 6);
    snprintf(rpath, sizeof rpath, "/runs/%s/metric-history?key=grad", run);
    j = api(&ml, &s, ml.reader, "GET", rpath, NULL);
    EXPECT(s, 200, j);
    ck_assert_int_eq(json_array_size(jpath(j, "data.metrics")), 1);
    ck_assert_str_eq(jstr(j, "data.metrics.0.value"), "NaN");
    json_decref(j);
}
END_TEST

START_TEST(history_of_a_vanished_run)
{
    char exp[64];
    snprintf(exp, sizeof exp, "gone-%s", uniq());
    static char ids[1][40];
    create_jobs(1, 2, exp, ids);
    expect_delivered(1, 2, ids, 30);
    char path[128];
    int s;
    snprintf(path, sizeof path, "/training-jobs/%s", ids[0]);
    json_t *j = api(&ml, &s, ml.reader, "GET", path, NULL);
    char run[64], external[64];
    snprintf(run, sizeof run, "%s", jstr(j, "data.run_id"));
    snprintf(external, sizeof external, "%s", jstr(j, "data.tracking.run_external_id"));
    json_decref(j);
    snprintf(path, sizeof path, "/runs/%s/metric-history?key=loss", run);
    j = api(&ml, &s, ml.reader, "GET", path, NULL);
    EXPECT(s, 200, j);
    ck_assert_int_eq(json_array_size(jpath(j, "data.metrics")), 2);
    json_decref(j);
    /* gone from MLflow (its garbage collector): MLflow answers 200 {} for its history */
    char body[128];
    snprintf(body, sizeof body, "{\"run_id\":\"%s\"}", external);
    json_decref(fake("POST", "/_forget", body));
    j = api(&ml, &s, ml.reader, "GET", path, NULL);
    EXPECT(s, 404, j);
    json_decref(j);
    snprintf(path, sizeof path, "/runs/%s/metric-history?key=never", run);
    j = api(&ml, &s, ml.reader, "GET", path, NULL);
    EXPECT(s, 404, j);
    json_decref(j);
}
END_TEST

START_TEST(mlflow_objects_follow_their_owner)
{
    int s;
    char name[64];
    snprintf(name, sizeof name, "owner-%s", uniq());
    json_t *j =
        api(&ml, &s, ml.operator_, "POST", "/experiments?env=stg", "{\"name\":\"%s\"}", name);
    EXPECT(s, 201, j);
    ck_assert_str_eq(jstr(j, "data.instance"), "mlflow");
    ck_assert_ptr_nonnull(jstr(j, "data.links.ui"));
    char exp[64];
    snprintf(exp, sizeof exp, "%s", jstr(j, "data.id"));
    json_decref(j);
    char path[128];
    snprintf(path, sizeof path, "/experiments/%s/runs", exp);
    j = api(&ml, &s, ml.operator_, "POST", path, "{\"name\":\"r\"}");
    EXPECT(s, 201, j);
    char run[64];
    snprintf(run, sizeof run, "%s", jstr(j, "data.id"));
    ck_assert_ptr_nonnull(strstr(jstr(j, "data.links.ui"), "/runs/"));
    json_decref(j);
    snprintf(path, sizeof path, "/runs/%s/log", run);
    j = api(&ml, &s, ml.operator_, "POST", path,
            "{\"metrics\":[{\"key\":\"m\",\"value\":\"NaN\"},{\"key\":\"i\",\"value\":"
            "\"-Infinity\"}]}");
    EXPECT(s, 200, j);
    json_decref(j);
    /* six copies of a body without timestamps at once: MLflow stores each point once too
     * (the core sends equal points, which its store keeps once) */
    char *body = points_body("loss", 0);
    ck_assert_int_eq(post_at_once(&ml, 6, path, body, 200), 6);
    free(body);
    json_int_t n = history_count_of(&ml, run, "loss");
    fprintf(stderr, "mlflow: 6 copies at once of a 1,500-point body: %lld points\n", (long long)n);
    ck_assert_int_eq(n, 1500);

    /* a flag flip sends new objects to tracking-pg; the old ones stay readable in mlflow */
    j = api(&ml, &s, ml.operator_, "PUT", "/flags/stg/experiment_tracking",
            "{\"active\":\"tracking-pg\",\"reason\":\"test flip\"}");
    EXPECT(s, 200, j);
    json_decref(j);
    double end = now_s() + 5;
    for (;;) {
        snprintf(name, sizeof name, "after-%s", uniq());
        j = api(&ml, &s, ml.operator_, "POST", "/experiments?env=stg", "{\"name\":\"%s\"}", name);
        EXPECT(s, 201, j);
        int moved = strcmp(jstr(j, "data.instance"), "tracking-pg") == 0;
        json_decref(j);
        if (moved)
            break;
        ck_assert_msg(now_s() < end, "the flip did not reach the workers");
        sleep_ms(100);
    }
    snprintf(path, sizeof path, "/runs/%s", run);
    j = api(&ml, &s, ml.reader, "GET", path, NULL);
    EXPECT(s, 200, j);
    ck_assert_str_eq(jstr(j, "data.instance"), "mlflow");
    size_t i;
    json_t *m;
    int seen = 0;
    json_array_foreach(jpath(j, "data.metrics"), i, m)
    {
        if (strcmp(jstr(m, "key"), "m") == 0) {
            ck_assert_str_eq(jstr(m, "value"), "NaN");
            seen++;
        }
        if (strcmp(jstr(m, "key"), "i") == 0) {
            ck_assert_str_eq(jstr(m, "value"), "-Infinity");
            seen++;
        }
    }
    ck_assert_int_eq(seen, 2);
    json_decref(j);
    j = api(&ml, &s, ml.operator_, "POST", "/flags/stg/experiment_tracking/rollback",
            "{\"reason\":\"back\"}");
    json_decref(j);
}
END_TEST

/* One search across instances: after the flag moved from mlflow to tracking-pg, GET
 * /experiments of stg finds the experiments of both (the active one first) and POST
 * /runs/search the runs of both (merged in the search's order), each paging through both with
 * one cursor; with MLflow answering 503 both answer 200 with tracking-pg's and
 * sources.mlflow "unavailable". */
static int count_prefix(json_t *list, const char *prefix, const char *instance)
{
    size_t i;
    json_t *e;
    int n = 0;
    json_array_foreach(list, i, e)
    {
        if (strncmp(jstr(e, "name"), prefix, strlen(prefix)) == 0 &&
            (!instance || strcmp(jstr(e, "instance"), instance) == 0))
            n++;
    }
    return n;
}

START_TEST(search_spans_instances_after_a_flip)
{
    int s;
    char prefix[64], name[96], q[256];
    snprintf(prefix, sizeof prefix, "fan-%s-", uniq());
    /* stg served by mlflow first (as it was before, whatever the earlier tests left) */
    json_t *j = api(&ml, &s, ml.reader, "GET", "/flags?env=stg", NULL);
    EXPECT(s, 200, j);
    char was[64] = "";
    size_t fi;
    json_t *f;
    json_array_foreach(jpath(j, "data.flags"), fi, f)
    {
        if (strcmp(jstr(f, "category"), "experiment_tracking") == 0)
            snprintf(was, sizeof was, "%s", jstr(f, "active"));
    }
    json_decref(j);
    json_decref(api(&ml, &s, ml.operator_, "PUT", "/flags/stg/experiment_tracking",
                    "{\"active\":\"mlflow\",\"reason\":\"fan-out test\"}"));
    double end = now_s() + 5;
    int made = 0;
    for (;;) {
        snprintf(name, sizeof name, "%sold%d", prefix, made++);
        j = api(&ml, &s, ml.operator_, "POST", "/experiments?env=stg", "{\"name\":\"%s\"}", name);
        EXPECT(s, 201, j);
        if (strcmp(jstr(j, "data.instance"), "mlflow") == 0)
            break;
        json_decref(j);
        ck_assert_msg(now_s() < end, "the flag did not reach the workers");
        sleep_ms(100);
    }
    int before = made - 1; /* made in tracking-pg before the flag reached this worker */
    char old_exp[64], new_exp[64];
    snprintf(old_exp, sizeof old_exp, "%s", jstr(j, "data.id"));
    json_decref(j);
    j = api(&ml, &s, ml.operator_, "PUT", "/flags/stg/experiment_tracking",
            "{\"active\":\"tracking-pg\",\"reason\":\"fan-out test\"}");
    EXPECT(s, 200, j);
    json_decref(j);
    end = now_s() + 5;
    made = 0;
    for (;;) {
        snprintf(name, sizeof name, "%snew%d", prefix, made++);
        j = api(&ml, &s, ml.operator_, "POST", "/experiments?env=stg", "{\"name\":\"%s\"}", name);
        EXPECT(s, 201, j);
        int moved = strcmp(jstr(j, "data.instance"), "tracking-pg") == 0;
        if (moved)
            snprintf(new_exp, sizeof new_exp, "%s", jstr(j, "data.id"));
        json_decref(j);
        if (moved)
            break;
        ck_assert_msg(now_s() < end, "the flip did not reach the workers");
        sleep_ms(100);
    }
    /* runs of both: one search, merged newest first, one cursor */
    long long t = (long long)(now_s() * 1000);
    char path[160], old_run[64], new_run[64];
    snprintf(path, sizeof path, "/experiments/%s/runs", old_exp);
    j = api(&ml, &s, ml.operator_, "POST", path, "{\"name\":\"o\",\"start_time_ms\":%lld}",
            t - 1000);
    EXPECT(s, 201, j);
    snprintf(old_run, sizeof old_run, "%s", jstr(j, "data.id"));
    json_decref(j);
    snprintf(path, sizeof path, "/experiments/%s/runs", new_exp);
    j = api(&ml, &s, ml.operator_, "POST", path, "{\"name\":\"n\",\"start_time_ms\":%lld}",
            t - 2000);
    EXPECT(s, 201, j);
    snprintf(new_run, sizeof new_run, "%s", jstr(j, "data.id"));
    json_decref(j);
    j = api(&ml, &s, ml.reader, "POST", "/runs/search", "{\"experiment_ids\":[\"%s\",\"%s\"]}",
            new_exp, old_exp);
    EXPECT(s, 200, j);
    ck_assert_int_eq((int)json_array_size(jpath(j, "data.runs")), 2);
    ck_assert_str_eq(jstr(j, "data.runs.0.id"), old_run);
    ck_assert_str_eq(jstr(j, "data.runs.0.instance"), "mlflow");
    ck_assert_str_eq(jstr(j, "data.runs.1.id"), new_run);
    ck_assert_str_eq(jstr(j, "data.runs.1.instance"), "tracking-pg");
    ck_assert_str_eq(jstr(j, "data.sources.mlflow"), "ok");
    ck_assert_str_eq(jstr(j, "data.sources.tracking-pg"), "ok");
    json_decref(j);
    j = api(&ml, &s, ml.reader, "POST", "/runs/search",
            "{\"experiment_ids\":[\"%s\",\"%s\"],\"max_results\":1,"
            "\"order_by\":[\"start_time_ms ASC\"]}",
            new_exp, old_exp);
    EXPECT(s, 200, j);
    ck_assert_int_eq((int)json_array_size(jpath(j, "data.runs")), 1);
    ck_assert_str_eq(jstr(j, "data.runs.0.id"), new_run);
    char rtoken[4096];
    snprintf(rtoken, sizeof rtoken, "%s", jstr(j, "data.next_page_token"));
    json_decref(j);
    j = api(&ml, &s, ml.reader, "POST", "/runs/search",
            "{\"experiment_ids\":[\"%s\",\"%s\"],\"max_results\":1,"
            "\"order_by\":[\"start_time_ms ASC\"],\"page_token\":\"%s\"}",
            new_exp, old_exp, rtoken);
    EXPECT(s, 200, j);
    ck_assert_int_eq((int)json_array_size(jpath(j, "data.runs")), 1);
    ck_assert_str_eq(jstr(j, "data.runs.0.id"), old_run);
    const char *last = jstr(j, "data.next_page_token");
    if (last) { /* a short last page may carry a token: it gives nothing more */
        snprintf(rtoken, sizeof rtoken, "%s", last);
        json_decref(j);
        j = api(&ml, &s, ml.reader, "POST", "/runs/search",
                "{\"experiment_ids\":[\"%s\",\"%s\"],\"max_results\":1,"
                "\"order_by\":[\"start_time_ms ASC\"],\"page_token\":\"%s\"}",
                new_exp, old_exp, rtoken);
        EXPECT(s, 200, j);
        ck_assert_int_eq((int)json_array_size(jpath(j, "data.runs")), 0);
    }
    json_decref(j);
    snprintf(q, sizeof q, "/experiments?env=stg&name_prefix=%s", prefix);
    j = api(&ml, &s, ml.reader, "GET", q, NULL);
    EXPECT(s, 200, j);
    json_t *list = jpath(j, "data.experiments");
    ck_assert_int_eq((int)json_array_size(list), before + made + 1);
    ck_assert_int_eq(count_prefix(list, prefix, "tracking-pg"), before + 1);
    ck_assert_int_eq(count_prefix(list, prefix, "mlflow"), made);
    /* the active instance's first, then the earlier owner's */
    ck_assert_str_eq(jstr(json_array_get(list, 0), "instance"), "tracking-pg");
    ck_assert_str_eq(jstr(j, "data.sources.tracking-pg"), "ok");
    ck_assert_str_eq(jstr(j, "data.sources.mlflow"), "ok");
    ck_assert_ptr_null(jstr(j, "data.next_page_token"));
    json_decref(j);
    /* one at a time: the cursor carries each source's position */
    char token[2400] = "";
    int pages = 0, seen = 0;
    do {
        char url[2800];
        snprintf(url, sizeof url, "%s&max_results=1%s%s", q, token[0] ? "&page_token=" : "", token);
        j = api(&ml, &s, ml.reader, "GET", url, NULL);
        EXPECT(s, 200, j);
        seen += count_prefix(jpath(j, "data.experiments"), prefix, NULL);
        const char *nt = jstr(j, "data.next_page_token");
        snprintf(token, sizeof token, "%s", nt ? nt : "");
        json_decref(j);
        ck_assert_int_lt(++pages, 20);
    } while (token[0]);
    ck_assert_int_eq(seen, before + made + 1);
    /* MLflow down: tracking-pg's still answer, and the answer says which source is not */
    static const char *const down[] = {"/api/2.0/mlflow/experiments/search",
                                       "/api/2.0/mlflow/runs/search"};
    for (size_t d = 0; d < 2; d++) {
        char script[600];
        int w = snprintf(script, sizeof script, "{\"path\":\"%s\",\"responses\":[", down[d]);
        for (int k = 0; k < 8; k++)
            w +=
                snprintf(script + w, sizeof script - (size_t)w, "%s{\"status\":503}", k ? "," : "");
        snprintf(script + w, sizeof script - (size_t)w, "]}");
        json_decref(fake("POST", "/_faults", script));
    }
    j = api(&ml, &s, ml.reader, "GET", q, NULL);
    EXPECT(s, 200, j);
    ck_assert_int_eq(count_prefix(jpath(j, "data.experiments"), prefix, NULL), before + 1);
    ck_assert_str_eq(jstr(j, "data.sources.tracking-pg"), "ok");
    ck_assert_str_eq(jstr(j, "data.sources.mlflow"), "unavailable");
    ck_assert_ptr_null(jstr(j, "data.next_page_token")); /* a source down alone: paging ends */
    json_decref(j);
    j = api(&ml, &s, ml.reader, "POST", "/runs/search", "{\"experiment_ids\":[\"%s\",\"%s\"]}",
            new_exp, old_exp);
    EXPECT(s, 200, j);
    ck_assert_int_eq((int)json_array_size(jpath(j, "data.runs")), 1);
    ck_assert_str_eq(jstr(j, "data.runs.0.id"), new_run);
    ck_assert_str_eq(jstr(j, "data.sources.mlflow"), "unavailable");
    ck_assert_ptr_null(jstr(j, "data.next_page_token"));
    json_decref(j);
    json_decref(fake("POST", "/_reset", NULL)); /* MLflow answers again */
    j = api(&ml, &s, ml.reader, "GET", q, NULL);
    EXPECT(s, 200, j);
    ck_assert_str_eq(jstr(j, "data.sources.mlflow"), "ok");
    json_decref(j);
    j = api(&ml, &s, ml.operator_, "PUT", "/flags/stg/experiment_tracking",
            "{\"active\":\"%s\",\"reason\":\"fan-out test done\"}", was);
    json_decref(j);
}
END_TEST

/* llm-opsctl sync tracking, both ways, twice: the second run copies nothing. */
static char *ctl_sync(const char *args, int *rc)
{
    return tu_capture(rc, "%s/llm-opsctl --config %s sync tracking %s 2>&1",
                      getenv("LLMOPS_BIN_DIR") ? getenv("LLMOPS_BIN_DIR") : "build/bin", ml.conf,
                      args);
}

START_TEST(sync_both_ways)
{
    int s, rc;
    char name[64], path[128], args[300];
    snprintf(name, sizeof name, "sync-%s", uniq());
    /* an experiment in tracking-pg (dev) with two runs and a history */
    json_t *j =
        api(&ml, &s, ml.operator_, "POST", "/experiments?env=dev", "{\"name\":\"%s\"}", name);
    EXPECT(s, 201, j);
    char exp[64];
    snprintf(exp, sizeof exp, "%s", jstr(j, "data.id"));
    json_decref(j);
    for (int r = 0; r < 2; r++) {
        snprintf(path, sizeof path, "/experiments/%s/runs", exp);
        j = api(&ml, &s, ml.operator_, "POST", path, "{\"name\":\"run-%d\"}", r);
        EXPECT(s, 201, j);
        char run[64];
        snprintf(run, sizeof run, "%s", jstr(j, "data.id"));
        json_decref(j);
        json_t *metrics = json_array();
        for (int k = 0; k < 1500; k++)
            json_array_append_new(metrics,
                                  json_pack("{s:s,s:i,s:i,s:I}", "key", "loss", "value", k, "step",
                                            k, "timestamp_ms", (json_int_t)1700000000000 + k));
        json_t *body = json_pack("{s:o,s:{s:s},s:{s:s}}", "metrics", metrics, "params", "lr", "0.1",
                                 "tags", "who", "sync-test");
        snprintf(path, sizeof path, "/runs/%s/log", run);
        j = api_json(&ml, &s, ml.operator_, "POST", path, body);
        json_decref(body);
        EXPECT(s, 200, j);
        json_decref(j);
        if (r == 1) {
            snprintf(path, sizeof path, "/runs/%s", run);
            json_decref(api(&ml, &s, ml.operator_, "PATCH", path, "{\"status\":\"FINISHED\"}"));
        }
    }
    snprintf(args, sizeof args, "--from tracking-pg --to mlflow --experiment %s --dry-run", name);
    char *out = ctl_sync(args, &rc);
    ck_assert_msg(rc == 0, "%s", out);
    ck_assert_msg(strstr(out, "runs 2 created") && strstr(out, "3000 copied"), "%s", out);
    snprintf(args, sizeof args, "--from tracking-pg --to mlflow --experiment %s", name);
    out = ctl_sync(args, &rc);
    ck_assert_msg(rc == 0, "%s", out);
    ck_assert_msg(strstr(out, "experiments 1 created") && strstr(out, "runs 2 created") &&
                      strstr(out, "3000 copied"),
                  "%s", out);
    out = ctl_sync(args, &rc);
    ck_assert_msg(rc == 0, "%s", out);
    ck_assert_msg(strstr(out, "experiments 0 created, 1 existing") &&
                      strstr(out, "runs 0 created, 2 existing") &&
                      strstr(out, "params 0, tags 0 set") && strstr(out, "0 copied, 3000"),
                  "second sync changed something: %s", out);
    /* what MLflow holds now */
    json_t *state = fake("GET", "/_state", NULL);
    size_t i;
    json_t *r;
    int runs = 0, finished = 0;
    json_array_foreach(json_object_get(state, "runs"), i, r)
    {
        json_t *tags = json_object_get(r, "tags");
        if (!json_object_get(tags, "who"))
            continue;
        if (strcmp(json_string_value(json_object_get(tags, "who")), "sync-test") != 0)
            continue;
        const char *rn = json_string_value(json_object_get(r, "name"));
        if (!rn || strncmp(rn, "run-", 4) != 0)
            continue;
        runs++;
        ck_assert_int_eq(json_array_size(json_object_get(r, "metrics")), 1500);
        ck_assert_str_eq(json_string_value(json_object_get(json_object_get(r, "params"), "lr")),
                         "0.1");
        if (strcmp(json_string_value(json_object_get(r, "status")), "FINISHED") == 0)
            finished++;
    }
    json_decref(state);
    ck_assert_int_eq(runs, 2);
    ck_assert_int_eq(finished, 1);

    /* and back: into a fresh tracking-pg name? the same name exists there, so the runs are
     * matched by key: mlflow's copies are new runs for tracking-pg (other source ids) */
    snprintf(args, sizeof args, "--from mlflow --to tracking-pg --experiment %s", name);
    out = ctl_sync(args, &rc);
    ck_assert_msg(rc == 0, "%s", out);
    ck_assert_msg(strstr(out, "experiments 0 created, 1 existing") && strstr(out, "runs 2 created"),
                  "%s", out);
    out = ctl_sync(args, &rc);
    ck_assert_msg(rc == 0 && strstr(out, "runs 0 created, 2 existing") && strstr(out, "0 copied"),
                  "%s", out);
    out = ctl_sync("--from mlflow --to nowhere", &rc);
    ck_assert_int_eq(rc, 2);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("tracking");
    TCase *tc = tcase_create("tracking-pg");
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, experiments_crud);
    tcase_add_test(tc, runs_log_and_read);
    tcase_add_test(tc, runs_search_and_compare);
    tcase_add_test(tc, training_job_opens_a_run);
    tcase_add_test(tc, log_resend_stores_each_point_once);
    tcase_add_test(tc, list_cursors_are_checked);
    tcase_add_test(tc, dead_row_blocks_until_discarded);
    tcase_add_test(tc, experiment_create_survives_a_killed_worker);
    suite_add_tcase(s, tc);
    TCase *m = tcase_create("mlflow");
    tcase_add_unchecked_fixture(m, setup_mlflow, teardown_mlflow);
    tcase_set_timeout(m, 240);
    tcase_add_test(m, nothing_lost_while_refused);
    tcase_add_test(m, nothing_lost_when_answers_are_lost);
    tcase_add_test(m, dead_letter_and_admin_retry);
    tcase_add_test(m, nan_points_sent_again);
    tcase_add_test(m, history_of_a_vanished_run);
    tcase_add_test(m, mlflow_objects_follow_their_owner);
    tcase_add_test(m, search_spans_instances_after_a_flip);
    tcase_add_test(m, sync_both_ways);
    suite_add_tcase(s, m);
    return s;
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    curl_global_cleanup();
    return failed ? 1 : 0;
}
