#include "check_suites.h"
#include "conf.h"
#include "llmops-plugin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int load(const char *text, struct llmops_conf *c, struct conf_errors *e)
{
    memset(e, 0, sizeof *e);
    return conf_load_buffer("t.conf", text, c, e);
}

static int has_error(const struct conf_errors *e, const char *needle)
{
    for (int i = 0; i < e->n; i++)
        if (strstr(e->msgs[i], needle))
            return 1;
    return 0;
}

START_TEST(test_defaults)
{
    struct llmops_conf c;
    struct conf_errors e;
    ck_assert_int_eq(load("", &c, &e), 0);
    ck_assert_int_eq(c.n_envs, 3);
    ck_assert_str_eq(c.envs[2], "prod");
    ck_assert_str_eq(c.default_env, "dev");
    ck_assert_int_eq(c.workers, 2);
    ck_assert_int_eq(c.max_body_bytes, 1048576);
    ck_assert_int_eq(c.access_log, 1);
    /* what the background process keeps, and prunes after */
    ck_assert_int_eq(c.bg_prune_interval_seconds, 60);
    ck_assert_int_eq(c.bg_prune_batch, 1000);
    ck_assert_int_eq(c.bg_keep_watches_hours, 168);
    ck_assert_int_eq(c.bg_keep_operations_hours, 168);
    ck_assert_int_eq(c.bg_keep_alert_events_days, 90);
    ck_assert_int_eq(c.bg_keep_deleted_deployments_days, 0);
    conf_free(&c);
    conf_errors_free(&e);
}
END_TEST

START_TEST(test_background_keys)
{
    struct llmops_conf c;
    struct conf_errors e;
    const char *t = "[background]\nprune_interval_seconds = 5\nprune_batch = 250\n"
                    "keep_watches_hours = 24\nkeep_operations_hours = 720\n"
                    "keep_alert_events_days = 30\nkeep_deleted_deployments_days = 365\n";
    ck_assert_int_eq(load(t, &c, &e), 0);
    ck_assert_int_eq(c.bg_prune_interval_seconds, 5);
    ck_assert_int_eq(c.bg_prune_batch, 250);
    ck_assert_int_eq(c.bg_keep_watches_hours, 24);
    ck_assert_int_eq(c.bg_keep_operations_hours, 720);
    ck_assert_int_eq(c.bg_keep_alert_events_days, 30);
    ck_assert_int_eq(c.bg_keep_deleted_deployments_days, 365);
    conf_free(&c);
    conf_errors_free(&e);
}
END_TEST

START_TEST(test_values)
{
    struct llmops_conf c;
    struct conf_errors e;
    const char *t = "[server]\n"
                    "environments = qa prod\n"
                    "default_environment = prod\n"
                    "workers = 8\n"
                    "access_log = off\n"
                    "listen = unix:/run/x.sock\n"
                    "[database]\n"
                    "conninfo = host=/tmp dbname=x ; a comment\n"
                    "query_timeout_ms = 2500\n"
                    "[auth]\ntoken_cache_seconds = 0\n";
    ck_assert_int_eq(load(t, &c, &e), 0);
    ck_assert_int_eq(c.n_envs, 2);
    ck_assert_str_eq(c.envs[0], "qa");
    ck_assert_str_eq(c.default_env, "prod");
    ck_assert_int_eq(c.workers, 8);
    ck_assert_int_eq(c.access_log, 0);
    ck_assert_str_eq(c.listen, "unix:/run/x.sock");
    ck_assert_str_eq(c.db_conninfo, "host=/tmp dbname=x");
    ck_assert_int_eq(c.db_query_timeout_ms, 2500);
    ck_assert_int_eq(c.token_cache_seconds, 0);
    ck_assert_int_eq(conf_env_index(&c, "prod"), 1);
    ck_assert_int_eq(conf_env_index(&c, "dev"), -1);
    conf_free(&c);
    conf_errors_free(&e);
}
END_TEST

/* Each bad input and the file:line message it must produce. */
static const struct {
    const char *text;
    const char *error;
} bad[] = {
    {"[server]\nworkers = 0\n", "t.conf:2: workers: '0' is out of range"},
    {"[server]\nworkers = 12abc\n", "t.conf:2: workers: '12abc' is not an integer"},
    {"[server]\nworkers = 99999999999999999999\n", "t.conf:2: workers: '99999999999999999999'"},
    {"[server]\n\nbogus = 1\n", "t.conf:3: unknown key 'bogus' in [server]"},
    {"[nope]\nx = 1\n", "t.conf:2: unknown section [nope]"},
    {"[background]\nprune_batch = 0\n", "t.conf:2: prune_batch: '0' is out of range"},
    {"[background]\nkeep_operations_hours = 0\n",
     "t.conf:2: keep_operations_hours: '0' is out of range"},
    {"[background]\nkeep_deleted_deployments_days = -1\n",
     "t.conf:2: keep_deleted_deployments_days: '-1' is out of range"},
    {"[background]\nkeep_event_days = 1\n",
     "t.conf:2: unknown key 'keep_event_days' in [background]"},
    {"x = 1\n", "t.conf:1: key 'x' is outside any section"},
    {"[server]\naccess_log = maybe\n", "t.conf:2: access_log: 'maybe' is not on or off"},
    {"[server]\nlog_level = loud\n", "t.conf:2: log_level: 'loud' is not one of"},
    {"[server]\nenvironments = dev Prod\n", "t.conf:2: environments: 'Prod' is not a valid"},
    {"[server]\nenvironments = dev dev\n", "t.conf:2: environments: 'dev' is listed twice"},
    {"[server]\ndefault_environment = qa\n", "t.conf:2: default_environment: 'qa' is not one"},
    {"[server]\nlisten = nowhere\n", "t.conf:2: listen: 'nowhere' is neither"},
    {"[server\n", "t.conf:1: syntax error"},
    {"[database]\nconnect_timeout_ms = 5\n", "t.conf:2: connect_timeout_ms: '5' is out of range"},
    {"[plugin \"a\"]\nurl = x\n", "t.conf:1: [plugin \"a\"] has no module key"},
    {"[plugin \"a\"]\n", "t.conf:1: [plugin \"a\"] has no module key"},
    {"[plugin \"A B\"]\nmodule = m\n", "t.conf:2: [plugin \"A B\"]: an instance name"},
    {"[plugin \"a\"]\nmodule = m\n[plugin \"a\"]\nmodule = m\n",
     "t.conf:3: [plugin \"a\"] is defined twice (first at t.conf:1)"},
    {"[plugin \"a\"]\nmodule = m\nx = 1\nx = 2\n", "t.conf:4: key 'x' is set twice"},
    {"[flags \"dev\"]\nserving = nope\n",
     "t.conf:2: [flags \"dev\"] serving names instance 'nope', but there is no"},
    {"[plugin \"a\"]\nmodule = m\n[flags \"qa\"]\nserving = a\n",
     "t.conf:4: [flags \"qa\"]: 'qa' is not one of the environments"},
    {"[plugin \"a\"]\nmodule = m\n[flags \"dev\"]\ncooking = a\n",
     "t.conf:4: unknown category 'cooking'"},
    {"[plugin \"a\"]\nmodule = m\n[flags \"dev\"]\nserving = a\nserving.rollout = 101\n",
     "t.conf:5: serving.rollout: '101' is out of range"},
    {"[plugin \"a\"]\nmodule = m\n[flags \"dev\"]\nserving = a\nserving.rollout = 5\n",
     "t.conf:4: [flags \"dev\"] serving.rollout is set without a candidate"},
    {"[plugin \"a\"]\nmodule = m\n[flags \"dev\"]\nserving.fallback = a\n",
     "t.conf:4: [flags \"dev\"] sets no active instance for serving"},
    {"[plugin \"a\"]\nmodule = m\n[flags \"dev\"]\nserving.colour = a\n",
     "t.conf:4: unknown key 'serving.colour'"},
    {"[breaker]\nerror_percent = 0\n", "t.conf:2: error_percent: '0' is out of range"},
    {"[server]\nlisten_mode = 0999\n", "t.conf:2: listen_mode: '0999' is not an octal"},
};

START_TEST(test_bad)
{
    struct llmops_conf c;
    struct conf_errors e;
    ck_assert_int_gt(load(bad[_i].text, &c, &e), 0);
    if (!has_error(&e, bad[_i].error))
        ck_abort_msg("expected '%s', got '%s'", bad[_i].error, e.n ? e.msgs[0] : "(none)");
    conf_free(&c);
    conf_errors_free(&e);
}
END_TEST

START_TEST(test_plugins_and_flags)
{
    struct llmops_conf c;
    struct conf_errors e;
    const char *t = "[server]\nenvironments = dev prod\n"
                    "[plugin \"tracking-pg\"]\nmodule = tracking-pg\n"
                    "[plugin \"mlflow-prod\"]\n"
                    "module = mlflow\n"
                    "tracking_uri = https://mlflow.example.internal\n"
                    "token_file = /etc/llm-ops/secrets/mlflow-prod.token\n"
                    "[flags \"prod\"]\n"
                    "experiment_tracking = mlflow-prod\n"
                    "experiment_tracking.fallback = tracking-pg\n"
                    "experiment_tracking.candidate = tracking-pg\n"
                    "experiment_tracking.rollout = 10\n"
                    "[breaker]\nauto_close = on\nmin_calls = 5\n";
    ck_assert_int_eq(load(t, &c, &e), 0);
    ck_assert_int_eq(c.nplugins, 2);
    const struct conf_plugin *p = conf_plugin_find(&c, "mlflow-prod");
    ck_assert_ptr_nonnull(p);
    ck_assert_str_eq(p->module, "mlflow");
    ck_assert_int_eq(p->nkv, 2);
    ck_assert_str_eq(p->kv[0].key, "tracking_uri");
    ck_assert_str_eq(p->kv[0].where, "t.conf:7");
    ck_assert_str_eq(p->where, "t.conf:5");
    const struct conf_flag *f = conf_flag_find(&c, "prod", LLMOPS_CATEGORY_EXPERIMENT_TRACKING);
    ck_assert_ptr_nonnull(f);
    ck_assert_str_eq(f->active, "mlflow-prod");
    ck_assert_str_eq(f->fallback, "tracking-pg");
    ck_assert_int_eq(f->rollout, 10);
    ck_assert_ptr_null(conf_flag_find(&c, "dev", LLMOPS_CATEGORY_EXPERIMENT_TRACKING));
    ck_assert_int_eq(c.breaker_auto_close, 1);
    ck_assert_int_eq(c.breaker_min_calls, 5);
    ck_assert_int_eq(c.breaker_window_seconds, 60);
    conf_free(&c);
    conf_errors_free(&e);
}
END_TEST

START_TEST(test_every_problem_reported)
{
    struct llmops_conf c;
    struct conf_errors e;
    ck_assert_int_eq(load("[server]\nworkers = x\nfoo = 1\n[bar]\ny = 2\n", &c, &e), 3);
    ck_assert(has_error(&e, "t.conf:2:"));
    ck_assert(has_error(&e, "t.conf:3:"));
    ck_assert(has_error(&e, "t.conf:5:"));
    conf_free(&c);
    conf_errors_free(&e);
}
END_TEST

START_TEST(test_long_line)
{
    /* Debian's libinih cuts lines at 200 bytes: we refuse them, at the right line. */
    char text[600];
    char pad[300];
    memset(pad, 'a', 250);
    pad[250] = '\0';
    snprintf(text, sizeof text, "[database]\nconninfo = %s\n[server]\nworkers = 3\n", pad);
    struct llmops_conf c;
    struct conf_errors e;
    ck_assert_int_eq(load(text, &c, &e), 1);
    ck_assert(has_error(&e, "t.conf:2: line is 261 characters long"));
    ck_assert_int_eq(c.workers, 3); /* the rest of the file is still read */
    conf_free(&c);
    conf_errors_free(&e);
}
END_TEST

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

START_TEST(test_dropins)
{
    char dir[] = "/tmp/llmops-conf-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[256], d[256], a[256], b[256], ignored[256];
    snprintf(path, sizeof path, "%s/llm-ops.conf", dir);
    snprintf(d, sizeof d, "%s/conf.d", dir);
    snprintf(a, sizeof a, "%s/conf.d/10-a.conf", dir);
    snprintf(b, sizeof b, "%s/conf.d/20-b.conf", dir);
    snprintf(ignored, sizeof ignored, "%s/conf.d/30-c.conf.disabled", dir);
    write_file(path, "[server]\nworkers = 2\n");
    mkdir(d, 0755);
    write_file(a, "[server]\nworkers = 3\nmax_body_bytes = 4096\n");
    write_file(b, "[server]\nworkers = 4\n\nnope = 1\n");
    write_file(ignored, "[server]\nworkers = 99\n");
    struct llmops_conf c;
    struct conf_errors e = {0};
    ck_assert_int_eq(conf_load(path, &c, &e), 1);
    ck_assert_int_eq(c.workers, 4); /* sorted order: 20-b wins */
    ck_assert_int_eq(c.max_body_bytes, 4096);
    char want[300];
    snprintf(want, sizeof want, "%s:4: unknown key 'nope'", b);
    ck_assert(has_error(&e, want));
    conf_free(&c);
    conf_errors_free(&e);
    unlink(a);
    unlink(b);
    unlink(ignored);
    rmdir(d);
    unlink(path);
    rmdir(dir);
}
END_TEST

START_TEST(test_missing_file)
{
    struct llmops_conf c;
    struct conf_errors e = {0};
    ck_assert_int_eq(conf_load("/nonexistent/llm-ops.conf", &c, &e), 1);
    ck_assert(has_error(&e, "/nonexistent/llm-ops.conf: cannot open"));
    conf_free(&c);
    conf_errors_free(&e);
}
END_TEST

Suite *make_conf_suite(void)
{
    Suite *s = suite_create("conf");
    TCase *core = tcase_create("Core");
    tcase_add_test(core, test_defaults);
    tcase_add_test(core, test_values);
    tcase_add_test(core, test_background_keys);
    tcase_add_test(core, test_dropins);
    tcase_add_test(core, test_plugins_and_flags);
    suite_add_tcase(s, core);
    TCase *limits = tcase_create("Limits");
    tcase_add_loop_test(limits, test_bad, 0, (int)(sizeof bad / sizeof bad[0]));
    tcase_add_test(limits, test_every_problem_reported);
    tcase_add_test(limits, test_long_line);
    tcase_add_test(limits, test_missing_file);
    suite_add_tcase(s, limits);
    return s;
}
