/* /llm-ops/metrics through lighttpd: counters summed over the workers in both process models,
 * kept across a worker's respawn and reset by a full restart; promtool check metrics; the
 * network and token guards; and a real Prometheus (Debian's package) scraping llm-opsd,
 * whose queries give back what known traffic produced. */
#include "api.h"
#include "testutil.h"

#include <check.h>
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PROMETHEUS "/usr/bin/prometheus"
#define PROMTOOL "/usr/bin/promtool"

static void metrics_url(const struct stack *s, char *out, size_t size)
{
    /* LLMOPS_URL ends in /llm-ops/v1; the metrics path is /llm-ops/metrics */
    snprintf(out, size, "%.*s/metrics", (int)(strlen(s->url) - 3), s->url);
}

/* The value of one series line "NAME{LABELS} V" in a scrape, or -1 when absent. */
static double series(const char *text, const char *name_labels)
{
    size_t n = strlen(name_labels);
    for (const char *p = text; p && *p;) {
        if (strncmp(p, name_labels, n) == 0 && p[n] == ' ')
            return atof(p + n + 1);
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return -1;
}

static double scrape_value(const struct stack *s, const char *name_labels)
{
    char url[300];
    metrics_url(s, url, sizeof url);
    int status;
    char *t = http_text("GET", url, NULL, NULL, NULL, &status, NULL, 0);
    ck_assert_int_eq(status, 200);
    double v = series(t, name_labels);
    free(t);
    return v;
}

static void gpu_requests(const struct stack *s, int n)
{
    for (int i = 0; i < n; i++) {
        int st;
        json_t *j = api(s, &st, s->reader, "GET", "/gpu-types?env=dev", NULL);
        ck_assert_int_eq(st, 200);
        json_decref(j);
    }
}

#define GPU_2XX                                                                                    \
    "llmops_http_requests_total{route=\"/llm-ops/v1/gpu-types\",method=\"GET\",code=\"2xx\"}"

/* ------------------------------------------------------------------ standalone */

static struct stack st;

static void setup(void)
{
    stack_start(&st, "metrics",
                "--custom-plugins --workers 3 --set metrics.probe_interval_seconds=5");
}

static void teardown(void)
{
    stack_stop(&st);
}

START_TEST(summed_over_workers_and_kept_across_respawn)
{
    double before = scrape_value(&st, GPU_2XX);
    if (before < 0)
        before = 0;
    gpu_requests(&st, 90);
    /* 3 workers answered them (lighttpd spreads connections); the scrape sums all */
    ck_assert_double_eq(scrape_value(&st, GPU_2XX), before + 90);
    char pidfile[300];
    snprintf(pidfile, sizeof pidfile, "%s/llm-opsd.pid", st.dir);
    /* a worker dies: its counts stay */
    ck_assert_int_eq(tu_sh("kill -KILL $(pgrep -P $(cat %s) | head -n 1)", pidfile), 0);
    sleep_ms(500);
    gpu_requests(&st, 10);
    ck_assert_double_eq(scrape_value(&st, GPU_2XX), before + 100);

    /* errors by class, and unmatched paths under one label */
    int s;
    json_t *j = api(&st, &s, st.reader, "GET", "/gpu-types?env=nope", NULL);
    ck_assert_int_eq(s, 400);
    json_decref(j);
    j = api(&st, &s, st.reader, "GET", "/no/such/thing/123", NULL);
    ck_assert_int_eq(s, 404);
    json_decref(j);
    ck_assert_double_ge(
        scrape_value(&st,
                     "llmops_http_requests_total{route=\"/llm-ops/v1/gpu-types\",method=\"GET\","
                     "code=\"4xx\"}"),
        1);
    ck_assert_double_ge(
        scrape_value(&st,
                     "llmops_http_requests_total{route=\"unmatched\",method=\"GET\",code=\"4xx\"}"),
        1);
    ck_assert_double_ge(
        scrape_value(&st,
                     "llmops_http_request_duration_seconds_count{route=\"/llm-ops/v1/gpu-types\","
                     "method=\"GET\"}"),
        before + 100);
}
END_TEST

START_TEST(plugin_calls_flags_outbox_and_probes)
{
    int s;
    for (int i = 0; i < 3; i++) {
        json_t *j = api(&st, &s, st.operator_, "POST", "/experiments?env=stg",
                        "{\"name\":\"metrics-%s\"}", uniq());
        ck_assert_int_eq(s, 201);
        json_decref(j);
    }
    ck_assert_double_ge(scrape_value(&st, "llmops_plugin_calls_total{plugin=\"tracking-pg\","
                                          "category=\"experiment_tracking\",operation="
                                          "\"create_experiment\",outcome=\"ok\"}"),
                        3);
    ck_assert_double_ge(scrape_value(&st, "llmops_flag_evaluations_total{environment=\"stg\","
                                          "category=\"experiment_tracking\",plugin="
                                          "\"tracking-pg\"}"),
                        3);
    ck_assert_double_eq(scrape_value(&st, "llmops_database_up"), 1);
    ck_assert_double_ge(scrape_value(&st, "llmops_outbox_rows{state=\"pending\"}"), 0);
    ck_assert_double_eq(
        scrape_value(&st, "llmops_build_info{version=\"" LLMOPS_VERSION_STR "\",abi=\"1.1\"}"), 1);
    /* the jobs process probes every 5 s */
    double end = now_s() + 15;
    while (scrape_value(&st, "llmops_tool_up{plugin=\"tracking-pg\"}") != 1) {
        ck_assert_msg(now_s() < end, "no probe result for tracking-pg");
        sleep_ms(250);
    }
    /* and when it was made: a Unix time, no older than the probe interval and a margin */
    double probed =
        scrape_value(&st, "llmops_tool_last_probe_timestamp_seconds{plugin=\"tracking-pg\"}");
    double wall = (double)time(NULL);
    ck_assert_msg(probed > wall - 15 && probed <= wall + 1, "last probe at %.3f, now %.0f", probed,
                  wall);
}
END_TEST

START_TEST(promtool_check_metrics)
{
    ck_assert_msg(access(PROMTOOL, X_OK) == 0,
                  PROMTOOL " is missing: run scripts/install-deps (Debian package prometheus)");
    char url[300];
    metrics_url(&st, url, sizeof url);
    int rc;
    char *out = tu_capture(&rc, "curl -sf '%s' | " PROMTOOL " check metrics 2>&1", url);
    ck_assert_msg(rc == 0, "promtool check metrics: %s", out);
    char ctype[200];
    int s;
    free(http_text("GET", url, NULL, NULL, NULL, &s, ctype, sizeof ctype));
    ck_assert_msg(strncmp(ctype, "text/plain; version=0.0.4", 25) == 0, "Content-Type %s", ctype);
}
END_TEST

START_TEST(full_restart_resets)
{
    gpu_requests(&st, 5);
    double start1 = scrape_value(&st, "llmops_start_time_seconds");
    ck_assert_double_ge(scrape_value(&st, GPU_2XX), 5);
    sleep_ms(1100);
    /* stop and start the whole stack: a new metrics file */
    ck_assert_int_eq(
        tu_sh("%s/tests/harness/stack stop %s >/dev/null 2>&1", LLMOPS_SOURCE_DIR, st.dir), 0);
    ck_assert_int_eq(tu_sh("%s/tests/harness/stack start %s --custom-plugins --workers 3"
                           " --set metrics.probe_interval_seconds=5 >/dev/null 2>&1",
                           LLMOPS_SOURCE_DIR, st.dir),
                     0);
    char env[300];
    snprintf(env, sizeof env, "%s/env", st.dir);
    /* tokens were made anew */
    struct stack fresh = st;
    char cmd[400];
    snprintf(cmd, sizeof cmd, "awk -F= '$1==\"LLMOPS_READER_TOKEN\"{print $2}' %s", env);
    int rc;
    snprintf(fresh.reader, sizeof fresh.reader, "%s", tu_capture(&rc, "%s", cmd));
    snprintf(cmd, sizeof cmd, "awk -F= '$1==\"LLMOPS_URL\"{print $2}' %s", env);
    snprintf(fresh.url, sizeof fresh.url, "%s", tu_capture(&rc, "%s", cmd));
    fresh.url[strcspn(fresh.url, "\n")] = '\0';
    fresh.reader[strcspn(fresh.reader, "\n")] = '\0';
    st = fresh;
    ck_assert_double_gt(scrape_value(&st, "llmops_start_time_seconds"), start1);
    double v = scrape_value(&st, GPU_2XX);
    ck_assert_msg(v < 0, "the counter survived a full restart: %g", v);
    gpu_requests(&st, 2);
    ck_assert_double_eq(scrape_value(&st, GPU_2XX), 2);
}
END_TEST

/* llm-opsd alone restarts (a new metrics file); the jobs process, still running, re-attaches
 * to the new file by itself and its probe series come back. */
START_TEST(jobs_process_follows_a_restarted_master)
{
    char jobs_pid_file[300], pid_file[300];
    snprintf(jobs_pid_file, sizeof jobs_pid_file, "%s/jobs.pid", st.dir);
    snprintf(pid_file, sizeof pid_file, "%s/llm-opsd.pid", st.dir);
    int rc;
    char jobs_before[32];
    snprintf(jobs_before, sizeof jobs_before, "%s", tu_capture(&rc, "cat %s", jobs_pid_file));
    jobs_before[strcspn(jobs_before, "\n")] = '\0';
    double end = now_s() + 15;
    while (scrape_value(&st, "llmops_tool_up{plugin=\"tracking-pg\"}") != 1) {
        ck_assert_msg(now_s() < end, "no probe result for tracking-pg before the restart");
        sleep_ms(250);
    }
    double start1 = scrape_value(&st, "llmops_start_time_seconds");
    sleep_ms(1100);
    /* stop the master only, and start it the way the stack does */
    ck_assert_int_eq(tu_sh("m=$(cat %s); kill -TERM $m; for i in $(seq 100); do"
                           " kill -0 $m 2>/dev/null || exit 0; sleep 0.1; done; exit 1",
                           pid_file),
                     0);
    ck_assert_int_eq(tu_sh("cd %s && setsid %s/llm-opsd --config %s/llm-ops.conf"
                           " --listen unix:%s/llm-opsd.sock --foreground --pid-file %s"
                           " </dev/null >>%s/llm-opsd.log 2>&1 &",
                           st.dir, getenv("LLMOPS_BIN_DIR"), st.dir, st.dir, pid_file, st.dir),
                     0);
    end = now_s() + 15;
    for (;;) {
        int s;
        json_t *j = api(&st, &s, st.reader, "GET", "/health", NULL);
        json_decref(j);
        if (s == 200 && scrape_value(&st, "llmops_start_time_seconds") > start1)
            break;
        ck_assert_msg(now_s() < end, "llm-opsd did not come back");
        sleep_ms(200);
    }
    /* a new file: the probe series are gone until the jobs process re-attaches and probes
     * again (every 5 s here) */
    end = now_s() + 20;
    while (scrape_value(&st, "llmops_tool_up{plugin=\"tracking-pg\"}") != 1) {
        ck_assert_msg(now_s() < end, "the jobs process did not re-attach to the new metrics file");
        sleep_ms(250);
    }
    /* the same jobs process, never restarted */
    ck_assert_str_eq(strtok(tu_capture(&rc, "cat %s", jobs_pid_file), "\n"), jobs_before);
    ck_assert_int_eq(tu_sh("kill -0 %s", jobs_before), 0);
}
END_TEST

/* ------------------------------------------------------------------ guards, spawned mode */

START_TEST(allow_and_token_guards)
{
    struct stack g;
    stack_start(&g, "mguard", "--set metrics.allow=10.0.0.0/8 --no-jobs");
    char url[300];
    metrics_url(&g, url, sizeof url);
    int s;
    free(http_text("GET", url, NULL, NULL, NULL, &s, NULL, 0));
    ck_assert_int_eq(s, 403);
    stack_stop(&g);
    stack_start(&g, "mguard", "--set metrics.require_token=on --no-jobs");
    metrics_url(&g, url, sizeof url);
    free(http_text("GET", url, NULL, NULL, NULL, &s, NULL, 0));
    ck_assert_int_eq(s, 401);
    free(http_text("GET", url, g.reader, NULL, NULL, &s, NULL, 0));
    ck_assert_int_eq(s, 200);
    stack_stop(&g);
}
END_TEST

START_TEST(spawned_workers_share_the_file)
{
    struct stack sp;
    stack_start(&sp, "mspawn", "--mode spawned --workers 2 --no-jobs");
    gpu_requests(&sp, 40);
    ck_assert_double_eq(scrape_value(&sp, GPU_2XX), 40);
    stack_stop(&sp);
}
END_TEST

/* ------------------------------------------------------------------ a real Prometheus */

START_TEST(prometheus_scrapes)
{
    ck_assert_msg(access(PROMETHEUS, X_OK) == 0,
                  PROMETHEUS " is missing: run scripts/install-deps (Debian package prometheus)");
    struct stack p;
    stack_start(&p, "mprom", "--no-jobs");
    char dir[300];
    snprintf(dir, sizeof dir, "%s/prom", p.dir);
    int port = tu_free_port();
    /* host:port and path of the metrics */
    const char *hp = strstr(p.url, "://") + 3;
    const char *slash = strchr(hp, '/');
    char target[128];
    snprintf(target, sizeof target, "%.*s", (int)(slash - hp), hp);
    ck_assert_int_eq(
        tu_sh("mkdir -p %s/data && cat >%s/prometheus.yml <<'EOF'\n"
              "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
              "scrape_configs:\n  - job_name: llm-ops\n    metrics_path: /llm-ops/metrics\n"
              "    static_configs:\n      - targets: ['%s']\nEOF",
              dir, dir, target),
        0);
    ck_assert_int_eq(tu_sh("cd %s && (timeout 300 " PROMETHEUS " --config.file=prometheus.yml"
                           " --storage.tsdb.path=data --web.listen-address=127.0.0.1:%d"
                           " >prometheus.log 2>&1 & echo $! >pid)",
                           dir, port),
                     0);
    gpu_requests(&p, 25);
    int s;
    json_t *j = api(&p, &s, p.reader, "GET", "/gpu-types?env=nope", NULL);
    json_decref(j);
    /* wait until Prometheus has scraped the traffic, then ask it */
    struct stack prom;
    memset(&prom, 0, sizeof prom);
    snprintf(prom.url, sizeof prom.url, "http://127.0.0.1:%d", port);
    double end = now_s() + 60, got = -1, errs = -1;
    while (now_s() < end) {
        json_t *q = NULL;
        int qs = 0;
        /* a sleep first: Prometheus may not listen yet */
        sleep_ms(500);
        if (tu_sh("curl -sf -o /dev/null http://127.0.0.1:%d/-/ready", port) != 0)
            continue;
        q = api(&prom, &qs, NULL, "GET",
                "/api/v1/query?query=sum(llmops_http_requests_total%7Broute%3D%22%2Fllm-ops%2Fv1%"
                "2Fgpu-types%22%2Ccode%3D%222xx%22%7D)",
                NULL);
        const char *v = jstr(q, "data.result.0.value.1");
        got = v ? atof(v) : -1;
        json_decref(q);
        q = api(&prom, &qs, NULL, "GET",
                "/api/v1/query?query=sum(llmops_http_requests_total%7Bcode%3D%224xx%22%7D)", NULL);
        v = jstr(q, "data.result.0.value.1");
        errs = v ? atof(v) : -1;
        json_decref(q);
        if (got == 25 && errs >= 1)
            break;
    }
    tu_sh("kill $(cat %s/pid) 2>/dev/null", dir);
    if (got != 25 || errs < 1)
        tu_sh("tail -n 20 %s/prometheus.log >&2", dir);
    stack_stop(&p);
    ck_assert_msg(got == 25, "Prometheus says %g gpu-types 2xx requests, wanted 25", got);
    ck_assert_msg(errs >= 1, "Prometheus says %g 4xx requests", errs);
}
END_TEST

/* ------------------------------------------------------------------ llm-opsctl doctor */

static char *doctor(const struct stack *s, int *rc)
{
    return tu_capture(rc, "%s/llm-opsctl --config %s doctor 2>&1",
                      getenv("LLMOPS_BIN_DIR") ? getenv("LLMOPS_BIN_DIR") : "build/bin", s->conf);
}

START_TEST(doctor_table_and_exit)
{
    struct stack d;
    stack_start(&d, "mdoc", "--custom-plugins --no-jobs");
    int rc;
    char *out = doctor(&d, &rc);
    ck_assert_msg(rc == 0, "%s", out);
    ck_assert_msg(strstr(out, "CHECK") && strstr(out, "schema core") &&
                      strstr(out, "instance tracking-pg") && strstr(out, "all checks passed"),
                  "%s", out);
    /* an MLflow of a version the module does not support: a warning, exit 0 */
    char fakedir[64] = "/tmp/llmops-docfake-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(fakedir));
    ck_assert_int_eq(tu_sh("python3 %s/tests/fakes/mlflow_fake.py --port 0 --ready-file %s/port"
                           " --version 1.30.0 --max-seconds 120 >/dev/null 2>&1 & echo $! >%s/pid",
                           LLMOPS_SOURCE_DIR, fakedir, fakedir),
                     0);
    char portfile[128];
    snprintf(portfile, sizeof portfile, "%s/port", fakedir);
    int port = 0;
    for (double end = now_s() + 20; !port && now_s() < end; sleep_ms(50)) {
        FILE *f = fopen(portfile, "r");
        if (f) {
            if (fscanf(f, "%d", &port) != 1)
                port = 0;
            fclose(f);
        }
    }
    ck_assert_int_gt(port, 0);
    ck_assert_int_eq(tu_sh("printf '[plugin \"old-mlflow\"]\\nmodule = mlflow\\nurl = "
                           "http://127.0.0.1:%d\\n' >%s/conf.d/20-old.conf",
                           port, d.dir),
                     0);
    out = doctor(&d, &rc);
    ck_assert_msg(rc == 0 && strstr(out, "instance old-mlflow") && strstr(out, "WARN") &&
                      strstr(out, "1.30.0"),
                  "%s", out);
    /* an instance whose tool does not answer: FAIL, exit 1 */
    ck_assert_int_eq(tu_sh("printf '[plugin \"gone\"]\\nmodule = mlflow\\nurl = "
                           "http://127.0.0.1:%d\\ntimeout_ms = 500\\nretries = 0\\n'"
                           " >%s/conf.d/30-gone.conf",
                           tu_free_port(), d.dir),
                     0);
    out = doctor(&d, &rc);
    ck_assert_msg(rc == 1 && strstr(out, "instance gone") && strstr(out, "FAIL") &&
                      strstr(out, "problems found"),
                  "%s", out);
    tu_sh("kill $(cat %s/pid) 2>/dev/null; rm -rf %s", fakedir, fakedir);
    stack_stop(&d);
}
END_TEST

/* ------------------------------------------------------------------ JSON-lines logs */

START_TEST(json_lines_logs)
{
    struct stack j;
    stack_start(&j, "mjson", "--custom-plugins --set server.log_format=json");
    /* a request with our id that calls a plugin */
    char url[400];
    snprintf(url, sizeof url, "%s/experiments?env=dev", j.url);
    int status;
    free(http_text("POST", url, j.operator_, "X-Request-Id: json-log-test-1",
                   "{\"name\":\"json-logs\"}", &status, NULL, 0));
    sleep_ms(200);
    char path[400];
    snprintf(path, sizeof path, "%s/llm-opsd.log", j.dir);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    char line[8192];
    int lines = 0, found = 0;
    while (fgets(line, sizeof line, f)) {
        json_error_t e;
        json_t *o = json_loads(line, 0, &e);
        ck_assert_msg(o != NULL, "not a JSON line: %s", line);
        ck_assert_ptr_nonnull(json_string_value(json_object_get(o, "ts")));
        ck_assert_int_gt(json_integer_value(json_object_get(o, "pid")), 0);
        const char *rid = json_string_value(json_object_get(o, "request_id"));
        const char *type = json_string_value(json_object_get(o, "type"));
        if (rid && strcmp(rid, "json-log-test-1") == 0 && type && strcmp(type, "access") == 0) {
            ck_assert_str_eq(json_string_value(json_object_get(o, "route")),
                             "/llm-ops/v1/experiments");
            ck_assert_int_eq(json_integer_value(json_object_get(o, "status")), 201);
            ck_assert_str_eq(json_string_value(json_array_get(json_object_get(o, "instances"), 0)),
                             "tracking-pg");
            found = 1;
        }
        json_decref(o);
        lines++;
    }
    fclose(f);
    stack_stop(&j);
    ck_assert_int_gt(lines, 2);
    ck_assert_msg(found, "no access line for request json-log-test-1");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("standalone");
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, summed_over_workers_and_kept_across_respawn);
    tcase_add_test(tc, plugin_calls_flags_outbox_and_probes);
    tcase_add_test(tc, promtool_check_metrics);
    suite_add_tcase(s, tc);
    TCase *rs = tcase_create("restart");
    tcase_add_unchecked_fixture(rs, setup, teardown);
    tcase_set_timeout(rs, 120);
    /* before full_restart_resets: each test runs in a fork, which cannot hand the new stack's
     * url back */
    tcase_add_test(rs, jobs_process_follows_a_restarted_master);
    tcase_add_test(rs, full_restart_resets);
    suite_add_tcase(s, rs);
    TCase *other = tcase_create("other");
    tcase_set_timeout(other, 180);
    tcase_add_test(other, allow_and_token_guards);
    tcase_add_test(other, spawned_workers_share_the_file);
    tcase_add_test(other, prometheus_scrapes);
    tcase_add_test(other, doctor_table_and_exit);
    tcase_add_test(other, json_lines_logs);
    suite_add_tcase(s, other);
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
