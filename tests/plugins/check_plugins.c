/* The loader: every way a module is refused has a test and a message that names the file,
 * what was expected, what was found, and the fix; instances of a good module come up while a
 * bad one fails alone. */
#include "conf.h"
#include "db.h"
#include "engine.h"
#include "tracking.h"
#include "plugin.h"
#include "testutil.h"

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char msg[1024];

static void expect_refused(const char *dir, const char *name, const char *const *needles)
{
    struct module m;
    ck_assert_int_eq(module_open(dir, name, &m, msg, sizeof msg), -1);
    for (const char *const *n = needles; *n; n++)
        if (!strstr(msg, *n))
            ck_abort_msg("message lacks '%s': %s", *n, msg);
}

START_TEST(test_good_module)
{
    struct module m;
    ck_assert_int_eq(module_open(TEST_PLUGIN_DIR, "echo", &m, msg, sizeof msg), 0);
    ck_assert_str_eq(m.desc->name, "echo");
    ck_assert_int_eq(m.desc->category, LLMOPS_CATEGORY_EXPERIMENT_TRACKING);
    module_close(&m);
}
END_TEST

START_TEST(test_wrong_abi)
{
    expect_refused(TEST_PLUGIN_DIR, "bad-abi",
                   (const char *const[]){TEST_PLUGIN_DIR "/bad-abi.so", "incompatible plugin ABI",
                                         "module has ABI 2.0, server has ABI 1.1",
                                         "rebuild the module", NULL});
}
END_TEST

START_TEST(test_missing_entry)
{
    expect_refused(TEST_PLUGIN_DIR, "no-entry",
                   (const char *const[]){TEST_PLUGIN_DIR "/no-entry.so",
                                         "does not export llmops_plugin_entry()",
                                         "LLMOPS_PLUGIN_DEFINE", NULL});
}
END_TEST

START_TEST(test_null_required_method)
{
    expect_refused(
        TEST_PLUGIN_DIR, "no-health",
        (const char *const[]){TEST_PLUGIN_DIR "/no-health.so", "'health' is NULL", NULL});
}
END_TEST

START_TEST(test_missing_category_op)
{
    expect_refused(
        TEST_PLUGIN_DIR, "no-ops",
        (const char *const[]){TEST_PLUGIN_DIR "/no-ops.so", "a required operation missing",
                              "experiment_tracking operation 'create_experiment' is NULL", NULL});
}
END_TEST

START_TEST(test_unsupported_category_abi)
{
    expect_refused(
        TEST_PLUGIN_DIR, "bad-category-abi",
        (const char *const[]){"an unsupported category interface",
                              "experiment_tracking interface 2; this server takes 1 to 1", NULL});
}
END_TEST

START_TEST(test_name_mismatch)
{
    expect_refused(TEST_PLUGIN_DIR, "wrong-name",
                   (const char *const[]){"the descriptor says 'not-wrong-name'", NULL});
}
END_TEST

static char tmp[64];

static void make_tmp(void)
{
    snprintf(tmp, sizeof tmp, "/tmp/llmops-plugins-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmp));
}

START_TEST(test_not_elf)
{
    make_tmp();
    char path[128];
    snprintf(path, sizeof path, "%s/text.so", tmp);
    FILE *f = fopen(path, "w");
    fputs("#!/bin/sh\necho not a module\n", f);
    fclose(f);
    expect_refused(tmp, "text",
                   (const char *const[]){"text.so: not an ELF shared object",
                                         "starts with 23 21 2f 62", NULL});
}
END_TEST

START_TEST(test_symlink_refused)
{
    make_tmp();
    char path[128];
    snprintf(path, sizeof path, "%s/link.so", tmp);
    ck_assert_int_eq(symlink(TEST_PLUGIN_DIR "/echo.so", path), 0);
    expect_refused(tmp, "link", (const char *const[]){"link.so: is a symbolic link", NULL});
}
END_TEST

START_TEST(test_exact_names_only)
{
    expect_refused(TEST_PLUGIN_DIR, "../test-plugins/echo",
                   (const char *const[]){"is not a module name", NULL});
    expect_refused(TEST_PLUGIN_DIR, "echo.so", (const char *const[]){"is not a module name", NULL});
    /* "ech" must not load "echo" (collectd: "cpu" must not load "cpufreq") */
    expect_refused(
        TEST_PLUGIN_DIR, "ech",
        (const char *const[]){"ech.so: No such file or directory", "install its package", NULL});
}
END_TEST

static int has(const struct conf_errors *e, const char *needle)
{
    for (int i = 0; i < e->n; i++)
        if (strstr(e->msgs[i], needle))
            return 1;
    return 0;
}

START_TEST(test_instances)
{
    const char *text = "[server]\nplugin_dir = " TEST_PLUGIN_DIR "\n"
                       "[plugin \"one\"]\nmodule = echo\ntool_version = 2.14.1\n"
                       "[plugin \"two\"]\nmodule = echo\nlimit = 11\ncolour = red\n"
                       "[plugin \"three\"]\nmodule = echo\nfail_init = on\n"
                       "[plugin \"four\"]\nmodule = bad-abi\n"
                       "[plugin \"five\"]\nmodule = echo\nurl = ftp://x\n";
    struct llmops_conf conf;
    struct conf_errors e = {0};
    ck_assert_int_eq(conf_load_buffer("t.conf", text, &conf, &e), 0);
    struct plugin_registry reg;
    int n = plugins_load(&reg, &conf, NULL, 1, &e);
    for (int i = 0; i < e.n; i++)
        fprintf(stderr, "  %s\n", e.msgs[i]);
    ck_assert_int_eq(n, 5);
    ck_assert(has(&e, "t.conf:8: limit: '11' is out of range (expected an integer 1-10)"));
    ck_assert(has(&e, "t.conf:9: unknown key 'colour' for module echo"));
    ck_assert(has(&e, "known: module, url, connect_timeout_ms"));
    ck_assert(has(&e, "t.conf:10: [plugin \"three\"]: init failed: fail_init is on"));
    ck_assert(has(&e, "t.conf:13: [plugin \"four\"]: " TEST_PLUGIN_DIR "/bad-abi.so: refused"));
    ck_assert(has(&e, "t.conf:17: url: 'ftp://x' is not an http:// or https:// URL"));
    struct instance *one = plugins_find(&reg, "one");
    ck_assert_int_eq(one->st, INSTANCE_OK);
    ck_assert(one->initialised);
    json_t *info = NULL;
    struct llmops_error err = {.size = sizeof err};
    ck_assert_int_eq(one->mod->desc->health(one->state, &info, &err), 0);
    ck_assert_str_eq(json_string_value(json_object_get(info, "tool_version")), "2.14.1");
    json_decref(info);
    ck_assert_int_eq(plugins_find(&reg, "two")->st, INSTANCE_FAILED);
    ck_assert_int_eq(plugins_find(&reg, "three")->st, INSTANCE_FAILED);
    ck_assert_ptr_nonnull(strstr(plugins_find(&reg, "three")->reason, "fail_init is on"));
    ck_assert_int_eq(plugins_find(&reg, "four")->st, INSTANCE_FAILED);
    /* one module file, loaded once, shared by its instances */
    ck_assert_int_eq(reg.nmods, 1);
    plugins_unload(&reg);
    conf_free(&conf);
    conf_errors_free(&e);
}
END_TEST

START_TEST(test_host_services)
{
    make_tmp();
    char secret[128], text[1024];
    snprintf(secret, sizeof secret, "%s/token", tmp);
    FILE *f = fopen(secret, "w");
    fputs("s3cr3t-value\n", f);
    fclose(f);
    snprintf(text, sizeof text,
             "[server]\nplugin_dir = %s\n[plugin \"one\"]\nmodule = echo\nlimit = 7\n"
             "token_file = %s\n",
             TEST_PLUGIN_DIR, secret);
    struct llmops_conf conf;
    struct conf_errors e = {0};
    ck_assert_int_eq(conf_load_buffer("t.conf", text, &conf, &e), 0);
    struct plugin_registry reg;
    ck_assert_int_eq(plugins_load(&reg, &conf, NULL, 1, &e), 0);
    const struct llmops_host *h = &plugins_find(&reg, "one")->host;
    ck_assert_int_eq(h->size, sizeof(struct llmops_host));
    ck_assert_str_eq(h->instance, "one");
    ck_assert_str_eq(h->module, "echo");
    ck_assert_int_eq(h->config_int(h, "limit", 0), 7);
    ck_assert_int_eq(h->config_int(h, "missing", 42), 42);
    ck_assert_str_eq(h->config_where(h, "limit"), "t.conf:5");
    char buf[64];
    struct llmops_error err = {.size = sizeof err};
    ck_assert_int_eq(h->secret(h, "token_file", buf, sizeof buf, &err), 0);
    ck_assert_str_eq(buf, "s3cr3t-value");
    ck_assert_int_eq(h->secret(h, "token_file", buf, 4, &err), -1);
    ck_assert_ptr_null(strstr(err.message, "s3cr3t"));
    ck_assert_int_ge(h->now_ms(), 0);
    struct instance *one = plugins_find(&reg, "one");
    h->metric_add(h, "cache_hits", 2);
    h->metric_add(h, "cache_hits", 3);
    h->metric_add(h, "Bad-Name", 1);  /* refused */
    h->metric_add(h, "negative", -1); /* refused */
    ck_assert_int_eq(one->nmetrics, 1);
    ck_assert_str_eq(one->metrics[0].name, "cache_hits");
    ck_assert(one->metrics[0].value == 5.0);
    ck_assert_int_gt(h->wall_ms(), 1700000000000LL);
    plugins_unload(&reg);
    conf_free(&conf);
    conf_errors_free(&e);
}
END_TEST

/* Capabilities: read at load and cached; an op the instance does not list is refused by the
 * core with VALIDATION_FAILED naming the op and the instance, and never reaches the module;
 * the same op on an instance that lists it does. Input the table refuses never reaches it
 * either, and names the member. */
START_TEST(test_capabilities_gate_calls)
{
    char text[1024];
    snprintf(text, sizeof text,
             "[server]\nplugin_dir = %s\n[plugin \"narrow\"]\nmodule = echo\nunlisted = get_run\n"
             "feature = canary\n[plugin \"wide\"]\nmodule = echo\n",
             TEST_PLUGIN_DIR);
    struct llmops_conf conf;
    struct conf_errors e = {0};
    ck_assert_int_eq(conf_load_buffer("t.conf", text, &conf, &e), 0);
    struct plugin_registry reg;
    ck_assert_int_eq(plugins_load(&reg, &conf, NULL, 1, &e), 0);
    struct instance *narrow = plugins_find(&reg, "narrow"), *wide = plugins_find(&reg, "wide");
    ck_assert(narrow->caps_loaded && narrow->caps);
    ck_assert(!track_has_op(narrow, "get_run"));
    ck_assert(track_has_op(wide, "get_run"));
    ck_assert(engine_has_feature(narrow, "canary"));
    ck_assert(!engine_has_feature(wide, "canary"));
    json_t *in = json_pack("{s:s}", "external_id", "r1"), *out;
    struct llmops_error err;
    ck_assert_int_eq(track_call(NULL, narrow, "get_run", in, &out, &err), -1);
    ck_assert_int_eq(err.code, LLMOPS_ERR_UNSUPPORTED);
    ck_assert_int_eq(plugin_status_to_api(err.code), API_VALIDATION_FAILED);
    ck_assert_msg(strstr(err.message, "get_run") && strstr(err.message, "narrow") &&
                      strstr(err.message, "capabilities"),
                  "%s", err.message);
    /* the module itself answers for the instance that lists it */
    ck_assert_int_eq(track_call(NULL, wide, "get_run", in, &out, &err), -1);
    ck_assert_str_eq(err.message, "the echo test module tracks nothing");
    json_decref(in);
    /* input the table refuses: the member path, the op and the instance */
    in = json_pack("{s:s,s:[{s:s,s:s}]}", "external_id", "r1", "metrics", "key", "m", "value", "x");
    ck_assert_int_eq(track_call(NULL, wide, "log_batch", in, &out, &err), -1);
    ck_assert_int_eq(err.code, LLMOPS_ERR_INVALID);
    ck_assert_msg(strstr(err.message, "log_batch of wide: metrics[0].value must be"), "%s",
                  err.message);
    json_decref(in);
    plugins_unload(&reg);
    conf_free(&conf);
    conf_errors_free(&e);
}
END_TEST

/* The features half of the gate: an op whose table entry names a feature (always, or when a
 * member is in the input) is refused by the core for an instance whose capabilities do not
 * list it, with VALIDATION_FAILED naming the op, the member, the feature and the instance,
 * and never reaches the module; the instance that lists it gets the call; a member that is
 * absent (or null) needs nothing. The echo module answers every op it gets with "tracks
 * nothing", so that message proves the module was called. */
START_TEST(test_feature_gate)
{
    char text[1024];
    snprintf(text, sizeof text,
             "[server]\nplugin_dir = %s\n[plugin \"narrow\"]\nmodule = echo\nfeature = canary\n"
             "[plugin \"wide\"]\nmodule = echo\n",
             TEST_PLUGIN_DIR);
    struct llmops_conf conf;
    struct conf_errors e = {0};
    ck_assert_int_eq(conf_load_buffer("t.conf", text, &conf, &e), 0);
    struct plugin_registry reg;
    ck_assert_int_eq(plugins_load(&reg, &conf, NULL, 1, &e), 0);
    struct instance *narrow = plugins_find(&reg, "narrow"), *wide = plugins_find(&reg, "wide");
    static const struct llmops_op_feature always[] = {LLMOPS_FEATURE(NULL, "canary"),
                                                      LLMOPS_FEATURES_END};
    static const struct llmops_op_feature by_member[] = {LLMOPS_FEATURE("params.lr", "canary"),
                                                         LLMOPS_FEATURES_END};
    struct llmops_op_desc get_run = *engine_op(LLMOPS_CATEGORY_EXPERIMENT_TRACKING, "get_run");
    struct llmops_op_desc log_batch = *engine_op(LLMOPS_CATEGORY_EXPERIMENT_TRACKING, "log_batch");
    get_run.features = always;
    log_batch.features = by_member;
    json_t *in = json_pack("{s:s}", "external_id", "r1"), *out;
    struct llmops_error err;
    ck_assert_int_eq(
        engine_call(NULL, wide, LLMOPS_CATEGORY_EXPERIMENT_TRACKING, &get_run, in, &out, &err), -1);
    ck_assert_int_eq(err.code, LLMOPS_ERR_UNSUPPORTED);
    ck_assert_int_eq(plugin_status_to_api(err.code), API_VALIDATION_FAILED);
    ck_assert_str_eq(err.message, "get_run needs feature \"canary\", which instance wide "
                                  "(module echo) does not list in its capabilities");
    ck_assert_ptr_nonnull(engine_missing_feature(wide, &get_run, in));
    ck_assert_ptr_null(engine_missing_feature(narrow, &get_run, in));
    ck_assert_int_eq(
        engine_call(NULL, narrow, LLMOPS_CATEGORY_EXPERIMENT_TRACKING, &get_run, in, &out, &err),
        -1);
    ck_assert_str_eq(err.message, "the echo test module tracks nothing");
    json_decref(in);
    /* by member: a path into the input */
    in = json_pack("{s:s,s:{s:s}}", "external_id", "r1", "params", "lr", "0.1");
    ck_assert_int_eq(
        engine_call(NULL, wide, LLMOPS_CATEGORY_EXPERIMENT_TRACKING, &log_batch, in, &out, &err),
        -1);
    ck_assert_str_eq(err.message, "log_batch with params.lr needs feature \"canary\", which "
                                  "instance wide (module echo) does not list in its "
                                  "capabilities");
    ck_assert_int_eq(
        engine_call(NULL, narrow, LLMOPS_CATEGORY_EXPERIMENT_TRACKING, &log_batch, in, &out, &err),
        -1);
    ck_assert_str_eq(err.message, "the echo test module tracks nothing");
    json_decref(in);
    in = json_pack("{s:s,s:{s:s}}", "external_id", "r1", "params", "other", "0.1");
    ck_assert_int_eq(
        engine_call(NULL, wide, LLMOPS_CATEGORY_EXPERIMENT_TRACKING, &log_batch, in, &out, &err),
        -1);
    ck_assert_str_eq(err.message, "the echo test module tracks nothing");
    json_decref(in);
    in = json_pack("{s:s,s:n}", "external_id", "r1", "params");
    ck_assert_ptr_null(engine_missing_feature(wide, &log_batch, in));
    json_decref(in);
    plugins_unload(&reg);
    conf_free(&conf);
    conf_errors_free(&e);
}
END_TEST

/* Serving's operations table says what each op needs of an instance's features (the members
 * that need one, and "canary" for every canary op), so the core refuses before a module sees
 * the call: asked with the echo module listing only "canary" ("narrow") or nothing ("wide"). */
START_TEST(test_serving_table_features)
{
    char text[1024];
    snprintf(text, sizeof text,
             "[server]\nplugin_dir = %s\n[plugin \"narrow\"]\nmodule = echo\nfeature = canary\n"
             "[plugin \"wide\"]\nmodule = echo\n",
             TEST_PLUGIN_DIR);
    struct llmops_conf conf;
    struct conf_errors e = {0};
    ck_assert_int_eq(conf_load_buffer("t.conf", text, &conf, &e), 0);
    struct plugin_registry reg;
    ck_assert_int_eq(plugins_load(&reg, &conf, NULL, 1, &e), 0);
    struct instance *narrow = plugins_find(&reg, "narrow"), *wide = plugins_find(&reg, "wide");
    static const struct {
        const char *op, *input, *narrow, *wide; /* the feature missing, or NULL */
    } cases[] = {
        {"create_canary", "{\"external_id\":\"x\",\"args\":[]}", NULL, "canary"},
        {"create_canary", "{\"external_id\":\"x\",\"args\":[],\"traffic_percent\":10}",
         "canary_percent", "canary"},
        {"create_canary", "{\"external_id\":\"x\",\"args\":[],\"canary_replicas\":1}",
         "canary_by_replicas", "canary"},
        {"create_canary", "{\"external_id\":\"x\",\"image\":\"i\"}", "image", "canary"},
        {"set_canary_traffic", "{\"external_id\":\"x\",\"traffic_percent\":0}", "canary_percent",
         "canary"},
        {"set_canary_traffic", "{\"external_id\":\"x\",\"canary_replicas\":0}",
         "canary_by_replicas", "canary"},
        {"promote_canary", "{\"external_id\":\"x\"}", NULL, "canary"},
        {"rollback_canary", "{\"external_id\":\"x\"}", NULL, "canary"},
        {"deploy", "{\"name\":\"a\"}", NULL, NULL},
        {"deploy", "{\"name\":\"a\",\"image\":\"i\"}", "image", "image"},
        {"deploy", "{\"autoscaling\":{\"metric\":\"cpu\",\"target\":1}}", "autoscaling",
         "autoscaling"},
        {"deploy", "{\"resources\":{\"gpu\":{\"count\":1}}}", NULL, NULL},
        {"deploy", "{\"resources\":{\"gpu\":{\"node_selector\":{\"k\":\"v\"}}}}", "node_selector",
         "node_selector"},
        {"update_deployment", "{\"external_id\":\"x\",\"autoscaling\":null}", NULL, NULL},
        {"update_deployment", "{\"external_id\":\"x\",\"autoscaling\":{}}", "autoscaling",
         "autoscaling"},
        {"get_deployment", "{\"external_id\":\"x\"}", NULL, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct llmops_op_desc *op = engine_op(LLMOPS_CATEGORY_SERVING, cases[i].op);
        ck_assert_ptr_nonnull(op);
        json_t *in = json_loads(cases[i].input, 0, NULL);
        ck_assert_ptr_nonnull(in);
        const struct llmops_op_feature *n = engine_missing_feature(narrow, op, in),
                                       *w = engine_missing_feature(wide, op, in);
        ck_assert_msg(n == NULL ? cases[i].narrow == NULL
                                : cases[i].narrow && strcmp(n->feature, cases[i].narrow) == 0,
                      "case %zu (%s): narrow misses %s", i, cases[i].op, n ? n->feature : "none");
        ck_assert_msg(w == NULL ? cases[i].wide == NULL
                                : cases[i].wide && strcmp(w->feature, cases[i].wide) == 0,
                      "case %zu (%s): wide misses %s", i, cases[i].op, w ? w->feature : "none");
        json_decref(in);
    }
    /* the refusal names the op, the member and the feature as the modules do ("feature \"F\"") */
    struct llmops_error err;
    json_t *in = json_pack("{s:s,s:i}", "external_id", "x", "traffic_percent", 5);
    ck_assert_int_eq(engine_check_features(narrow,
                                           engine_op(LLMOPS_CATEGORY_SERVING, "set_canary_traffic"),
                                           in, &err),
                     -1);
    ck_assert_int_eq(err.code, LLMOPS_ERR_UNSUPPORTED);
    ck_assert_str_eq(err.message, "set_canary_traffic with traffic_percent needs feature "
                                  "\"canary_percent\", which instance narrow (module echo) does "
                                  "not list in its capabilities");
    json_decref(in);
    plugins_unload(&reg);
    conf_free(&conf);
    conf_errors_free(&e);
}
END_TEST

/* host->http: the core's client with the instance's url, and the bearer token from its
 * token_file, which reaches the tool but no message. */
START_TEST(test_host_http_with_token)
{
    make_tmp();
    char cmd[1024], portfile[128];
    snprintf(portfile, sizeof portfile, "%s/port", tmp);
    snprintf(cmd, sizeof cmd,
             "python3 %s/tests/fakes/faultserver.py 0 --idle-timeout 20 > %s & echo $! > %s/pid",
             LLMOPS_SOURCE_DIR, portfile, tmp);
    ck_assert_int_eq(system(cmd), 0);
    int port = 0;
    for (int i = 0; i < 100 && !port; i++) {
        FILE *f = fopen(portfile, "r");
        if (f) {
            if (fscanf(f, "PORT %d", &port) != 1)
                port = 0;
            fclose(f);
        }
        if (!port)
            usleep(50000);
    }
    ck_assert_int_gt(port, 0);
    char secret[128], text[1024];
    snprintf(secret, sizeof secret, "%s/token", tmp);
    FILE *f = fopen(secret, "w");
    fputs("tok-abc123\n", f);
    fclose(f);
    snprintf(text, sizeof text,
             "[server]\nplugin_dir = %s\n[plugin \"one\"]\nmodule = echo\n"
             "url = http://127.0.0.1:%d\ntoken_file = %s\nretries = 0\n",
             TEST_PLUGIN_DIR, port, secret);
    struct llmops_conf conf;
    struct conf_errors e = {0};
    ck_assert_int_eq(conf_load_buffer("t.conf", text, &conf, &e), 0);
    struct plugin_registry reg;
    ck_assert_int_eq(plugins_load(&reg, &conf, NULL, 1, &e), 0);
    const struct llmops_host *h = &plugins_find(&reg, "one")->host;
    struct llmops_http_request rq = {.size = sizeof rq, .method = "GET", .path = "/api/x"};
    struct llmops_http_response rs = {.size = sizeof rs};
    struct llmops_error err = {.size = sizeof err};
    ck_assert_int_eq(h->http(h, &rq, &rs, &err), 0);
    ck_assert_int_eq(rs.status, 200);
    h->http_free(&rs);
    rq.path = "/_stats";
    memset(&rs, 0, sizeof rs);
    rs.size = sizeof rs;
    ck_assert_int_eq(h->http(h, &rq, &rs, &err), 0);
    ck_assert_ptr_nonnull(strstr(rs.body, "Bearer tok-abc123"));
    h->http_free(&rs);
    plugins_unload(&reg);
    conf_free(&conf);
    conf_errors_free(&e);
    snprintf(cmd, sizeof cmd, "kill $(cat %s/pid)", tmp);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* ------------------------------------------------------------------ ABI 1.1 */

static int fake_port;
static pid_t fake_pid;

/* tests/fakes/faultserver.py on a free port of 127.0.0.1 (make_tmp first). */
static void start_fake(void)
{
    char cmd[1024], portfile[128], pidfile[128];
    snprintf(portfile, sizeof portfile, "%s/port", tmp);
    snprintf(pidfile, sizeof pidfile, "%s/pid", tmp);
    snprintf(cmd, sizeof cmd,
             "python3 %s/tests/fakes/faultserver.py 0 --idle-timeout 20 > %s & echo $! > %s",
             LLMOPS_SOURCE_DIR, portfile, pidfile);
    ck_assert_int_eq(system(cmd), 0);
    fake_port = 0;
    for (int i = 0; i < 100 && !fake_port; i++) {
        FILE *f = fopen(portfile, "r");
        if (f) {
            if (fscanf(f, "PORT %d", &fake_port) != 1)
                fake_port = 0;
            fclose(f);
        }
        if (!fake_port)
            usleep(50000);
    }
    ck_assert_int_gt(fake_port, 0);
    FILE *f = fopen(pidfile, "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fscanf(f, "%d", &fake_pid), 1);
    fclose(f);
}

static void stop_fake(void)
{
    if (fake_pid > 0)
        kill(fake_pid, SIGTERM);
    fake_pid = 0;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

/* What the fake saw as `header` on `path`, through the instance's own client. */
static char *seen(const struct llmops_host *h, const char *path, const char *header)
{
    static char v[256];
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/_stats", fake_port); /* whatever url's prefix */
    struct llmops_http_request rq = {.size = sizeof rq, .method = "GET", .url = url};
    struct llmops_http_response rs = {.size = sizeof rs};
    struct llmops_error err = {.size = sizeof err};
    ck_assert_int_eq(h->http(h, &rq, &rs, &err), 0);
    json_t *j = json_loads(rs.body, 0, NULL);
    h->http_free(&rs);
    ck_assert_ptr_nonnull(j);
    const char *s = json_string_value(
        json_object_get(json_object_get(json_object_get(j, "headers"), path), header));
    snprintf(v, sizeof v, "%s", s ? s : "(none)");
    json_decref(j);
    return v;
}

/* A module built against ABI 1.0 (the same source with LLMOPS_PLUGIN_TARGET_MINOR=0) loads
 * into this 1.1 core and calls host->http with its 1.0-sized structs: the core reads and
 * writes none of the bytes beyond them. */
START_TEST(test_module_built_for_1_0)
{
    struct module m;
    ck_assert_int_eq(module_open(TEST_PLUGIN_DIR, "echo10", &m, msg, sizeof msg), 0);
    ck_assert_int_eq(m.desc->magic.abi_major, 1);
    ck_assert_int_eq(m.desc->magic.abi_minor, 0);
    module_close(&m);

    make_tmp();
    start_fake();
    char secret[128], text[1024];
    snprintf(secret, sizeof secret, "%s/token", tmp);
    write_file(secret, "tok-old-module\n");
    snprintf(text, sizeof text,
             "[server]\nplugin_dir = %s\n[plugin \"old\"]\nmodule = echo10\n"
             "url = http://127.0.0.1:%d\ntoken_file = %s\nprobe_path = /old/probe\n",
             TEST_PLUGIN_DIR, fake_port, secret);
    struct llmops_conf conf;
    struct conf_errors e = {0};
    ck_assert_int_eq(conf_load_buffer("t.conf", text, &conf, &e), 0);
    struct plugin_registry reg;
    ck_assert_int_eq(plugins_load(&reg, &conf, NULL, 1, &e), 0);
    struct instance *old = plugins_find(&reg, "old");
    ck_assert_int_eq(old->st, INSTANCE_OK);
    json_t *info = NULL;
    struct llmops_error err = {.size = sizeof err};
    ck_assert_int_eq(old->mod->desc->health(old->state, &info, &err), 0);
    char *dump = json_dumps(info, JSON_SORT_KEYS);
    fprintf(stderr, "echo10 health: %s\n", dump);
    free(dump);
    /* the 1.0 sizes plugin-api/ABI-CHANGES.md logs (LP64) */
    ck_assert_int_eq(json_integer_value(json_object_get(info, "abi_minor")), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(info, "request_size")), 72);
    ck_assert_int_eq(json_integer_value(json_object_get(info, "response_size")), 160);
    ck_assert_int_eq(json_integer_value(json_object_get(info, "host_size")), 136);
    ck_assert_int_eq(json_integer_value(json_object_get(info, "core_host_size")),
                     (json_int_t)sizeof(struct llmops_host));
    ck_assert_int_eq(json_integer_value(json_object_get(info, "core_abi_minor")),
                     LLMOPS_PLUGIN_ABI_MINOR);
    ck_assert_msg(json_integer_value(json_object_get(info, "probe_rc")) == 0, "probe: %s",
                  json_string_value(json_object_get(info, "probe_error")));
    ck_assert_int_eq(json_integer_value(json_object_get(info, "probe_status")), 200);
    ck_assert(json_is_true(json_object_get(info, "probe_guard_ok")));
    json_decref(info);
    ck_assert_str_eq(seen(&old->host, "/old/probe", "Authorization"), "Bearer tok-old-module");
    plugins_unload(&reg);
    conf_free(&conf);
    conf_errors_free(&e);
    stop_fake();
}
END_TEST

START_TEST(test_newer_minor_refused)
{
    char want[96];
    snprintf(want, sizeof want, "module has ABI 1.%d, server has ABI 1.%d: upgrade llm-ops-server",
             LLMOPS_PLUGIN_ABI_MINOR + 1, LLMOPS_PLUGIN_ABI_MINOR);
    expect_refused(TEST_PLUGIN_DIR, "newer-minor",
                   (const char *const[]){"a newer plugin ABI than this server", want, NULL});
}
END_TEST

/* RFC 1321 appendix A.5 and FIPS 180-2 appendices A/B (SHA-1, SHA-256). */
static const struct {
    enum llmops_digest algo;
    const char *input, *hex;
} vectors[] = {
    {LLMOPS_DIGEST_MD5, "", "d41d8cd98f00b204e9800998ecf8427e"},
    {LLMOPS_DIGEST_MD5, "a", "0cc175b9c0f1b6a831c399e269772661"},
    {LLMOPS_DIGEST_MD5, "abc", "900150983cd24fb0d6963f7d28e17f72"},
    {LLMOPS_DIGEST_MD5, "message digest", "f96b697d7cb7938d525a2f31aaf161d0"},
    {LLMOPS_DIGEST_MD5, "abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"},
    {LLMOPS_DIGEST_MD5,
     "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
     "57edf4a22be3c955ac49da2e2107b67a"},
    {LLMOPS_DIGEST_SHA1, "abc", "a9993e364706816aba3e25717850c26c9cd0d89d"},
    {LLMOPS_DIGEST_SHA1, "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
     "84983e441c3bd26ebaae4aa1f95129e5e54670f1"},
    {LLMOPS_DIGEST_SHA1, "", "da39a3ee5e6b4b0d3255bfef95601890afd80709"},
    {LLMOPS_DIGEST_SHA256, "abc",
     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
    {LLMOPS_DIGEST_SHA256, "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    {LLMOPS_DIGEST_SHA256, "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
};

static void tool_digest(const char *tool, const char *path, char *out, size_t size)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "%s %s", tool, path);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    ck_assert_ptr_nonnull(fgets(out, (int)size, p));
    pclose(p);
    out[strcspn(out, " ")] = '\0';
}

START_TEST(test_host_services_1_1)
{
    make_tmp();
    start_fake();
    char secret[128], text[1024];
    snprintf(secret, sizeof secret, "%s/token", tmp);
    write_file(secret, "tok-first\n");
    snprintf(text, sizeof text,
             "[server]\nplugin_dir = %s\n[plugin \"one\"]\nmodule = echo\n"
             "url = http://127.0.0.1:%d/api\nui_url = http://127.0.0.1:%d/ui\n"
             "allowed_hosts = cdn.example.org\ntoken_file = %s\nretries = 0\n",
             TEST_PLUGIN_DIR, fake_port, fake_port, secret);
    struct llmops_conf conf;
    struct conf_errors e = {0};
    ck_assert_int_eq(conf_load_buffer("t.conf", text, &conf, &e), 0);
    struct plugin_registry reg;
    ck_assert_int_eq(plugins_load(&reg, &conf, NULL, 1, &e), 0);
    const struct llmops_host *h = &plugins_find(&reg, "one")->host;
    ck_assert_int_eq(h->abi_minor, 1);
    ck_assert_uint_ge(h->size, offsetof(struct llmops_host, db_affected) + sizeof h->db_affected);
    struct llmops_error err = {.size = sizeof err};

    /* digests: the vectors, the large "a" * 10^6 one, errors */
    char hex[LLMOPS_DIGEST_HEX_MAX];
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        ck_assert_int_eq(h->digest(vectors[i].algo, vectors[i].input, strlen(vectors[i].input), hex,
                                   sizeof hex, &err),
                         0);
        ck_assert_msg(strcmp(hex, vectors[i].hex) == 0, "vector %zu: %s", i, hex);
    }
    char *million = malloc(1000000);
    memset(million, 'a', 1000000);
    ck_assert_int_eq(h->digest(LLMOPS_DIGEST_SHA256, million, 1000000, hex, sizeof hex, &err), 0);
    ck_assert_str_eq(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    /* the same as a file (3 pieces of 1 MiB and a bit), against the coreutils tools */
    char path[128];
    snprintf(path, sizeof path, "%s/blob", tmp);
    FILE *f = fopen(path, "w");
    for (int i = 0; i < 3; i++)
        fwrite(million, 1, 1000000, f);
    fputs("tail", f);
    fclose(f);
    free(million);
    static const struct {
        enum llmops_digest algo;
        const char *tool;
    } tools[] = {{LLMOPS_DIGEST_MD5, "md5sum"},
                 {LLMOPS_DIGEST_SHA1, "sha1sum"},
                 {LLMOPS_DIGEST_SHA256, "sha256sum"}};
    for (size_t i = 0; i < 3; i++) {
        char want[128];
        int64_t bytes = 0;
        ck_assert_int_eq(h->digest_file(tools[i].algo, path, hex, sizeof hex, &bytes, &err), 0);
        ck_assert_int_eq(bytes, 3000004);
        tool_digest(tools[i].tool, path, want, sizeof want);
        ck_assert_str_eq(hex, want);
    }
    ck_assert_int_eq(h->digest((enum llmops_digest)9, "x", 1, hex, sizeof hex, &err), -1);
    ck_assert_int_eq(err.code, LLMOPS_ERR_INVALID);
    ck_assert_int_eq(h->digest(LLMOPS_DIGEST_SHA256, "x", 1, hex, 64, &err), -1);
    ck_assert_int_eq(h->digest(LLMOPS_DIGEST_MD5, "x", 1, hex, 33, &err), 0);
    ck_assert_int_eq(h->digest_file(LLMOPS_DIGEST_MD5, "/nonexistent", hex, sizeof hex, NULL, &err),
                     -1);
    ck_assert_ptr_nonnull(strstr(err.message, "/nonexistent"));

    /* versions */
    static const struct {
        const char *a, *b;
        int sign;
    } cmp[] = {
        {"2.9", "2.14", -1},     {"2.14", "2.14.0", 0},      {"3.1.0", "2.99", 1},
        {"v3.1rc2", "3.1.2", 0}, {"1.10", "1.9.9", 1},       {"", "0", 0},
        {"v0.11.2", "0.10", 1},  {"release-1.8", "1.9", -1}, {"99999999999999999999999", "1", 1}};
    for (size_t i = 0; i < sizeof cmp / sizeof cmp[0]; i++) {
        int r = h->version_compare(cmp[i].a, cmp[i].b);
        ck_assert_msg((r > 0) - (r < 0) == cmp[i].sign, "%s vs %s: %d", cmp[i].a, cmp[i].b, r);
    }
    ck_assert(h->version_in_range("2.14.1", "2.9", "2.99"));
    ck_assert(h->version_in_range("2.9", "2.9", "2.9.0"));
    ck_assert(!h->version_in_range("2.8.9", "2.9", NULL));
    ck_assert(!h->version_in_range("3.0", NULL, "2.99"));
    ck_assert(h->version_in_range("123", NULL, NULL));

    /* endpoints: ui_url is the module's URL key; the token goes to it as to url */
    struct llmops_http_request rq = {
        .size = sizeof rq, .method = "GET", .endpoint = "ui_url", .path = "/page"};
    struct llmops_http_response rs = {.size = sizeof rs};
    ck_assert_int_eq(h->http(h, &rq, &rs, &err), 0);
    ck_assert_ptr_nonnull(strstr(rs.body, "\"path\": \"/ui/page\""));
    ck_assert_ptr_nonnull(h->http_header(&rs, "content-length"));
    ck_assert_ptr_null(h->http_header(&rs, "link"));
    h->http_free(&rs);
    ck_assert_ptr_null(rs.headers);
    ck_assert_str_eq(seen(h, "/ui/page", "Authorization"), "Bearer tok-first");
    /* an absolute URL elsewhere: refused, naming the key to set */
    rq = (struct llmops_http_request){
        .size = sizeof rq, .method = "GET", .url = "http://127.0.0.3:9/x"};
    ck_assert_int_eq(h->http(h, &rq, &rs, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.message, "host 127.0.0.3 is not allowed"));
    /* the token file rotated between two calls: the second carries the new token */
    write_file(secret, "tok-second\n");
    rq = (struct llmops_http_request){.size = sizeof rq, .method = "GET", .path = "/rot"};
    ck_assert_int_eq(h->http(h, &rq, &rs, &err), 0);
    h->http_free(&rs);
    ck_assert_str_eq(seen(h, "/api/rot", "Authorization"), "Bearer tok-second");

    /* db accessors without a result */
    ck_assert_int_eq(h->db_rows(NULL), 0);
    ck_assert_int_eq(h->db_columns(NULL), 0);
    ck_assert_ptr_null(h->db_value(NULL, 0, 0));
    ck_assert_ptr_null(h->db_column_name(NULL, 0));
    ck_assert_int_eq(h->db_affected(NULL), 0);
    plugins_unload(&reg);
    conf_free(&conf);
    conf_errors_free(&e);
    stop_fake();
}
END_TEST

/* The 1.1 db accessors read a db_exec result of a real PostgreSQL without libpq in the
 * module. */
START_TEST(test_host_db_accessors)
{
    struct tu_pg pg;
    tu_pg_start(&pg, "plugins");
    char conninfo[256], text[512];
    tu_pg_conninfo(&pg, "postgres", conninfo, sizeof conninfo);
    struct db db;
    db_init(&db, conninfo, 5000, 10000, "check_plugins");
    snprintf(text, sizeof text, "[server]\nplugin_dir = %s\n[plugin \"one\"]\nmodule = echo\n",
             TEST_PLUGIN_DIR);
    struct llmops_conf conf;
    struct conf_errors e = {0};
    ck_assert_int_eq(conf_load_buffer("t.conf", text, &conf, &e), 0);
    struct plugin_registry reg;
    ck_assert_int_eq(plugins_load(&reg, &conf, &db, 1, &e), 0);
    const struct llmops_host *h = &plugins_find(&reg, "one")->host;
    struct llmops_error err = {.size = sizeof err};
    const char *p[] = {"7"};
    void *r = h->db_exec(h,
                         "SELECT n AS num, CASE WHEN n = 2 THEN NULL ELSE 'v' || n END AS label "
                         "FROM generate_series(1, $1::int) AS n",
                         1, p, &err);
    ck_assert_msg(r != NULL, "db_exec: %s", err.message);
    ck_assert_int_eq(h->db_rows(r), 7);
    ck_assert_int_eq(h->db_columns(r), 2);
    ck_assert_str_eq(h->db_column_name(r, 0), "num");
    ck_assert_str_eq(h->db_column_name(r, 1), "label");
    ck_assert_ptr_null(h->db_column_name(r, 2));
    ck_assert_str_eq(h->db_value(r, 0, 0), "1");
    ck_assert_str_eq(h->db_value(r, 0, 1), "v1");
    ck_assert_ptr_null(h->db_value(r, 1, 1)); /* SQL NULL */
    ck_assert_str_eq(h->db_value(r, 6, 0), "7");
    ck_assert_ptr_null(h->db_value(r, 7, 0)); /* out of range: NULL, not a crash */
    ck_assert_ptr_null(h->db_value(r, -1, 0));
    ck_assert_ptr_null(h->db_value(r, 0, 2));
    ck_assert_int_eq(h->db_affected(r), 7); /* a SELECT's row count */
    h->db_clear(r);
    r = h->db_exec(h, "CREATE TEMP TABLE echo_t (a int)", 0, NULL, &err);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(h->db_rows(r), 0);
    ck_assert_int_eq(h->db_affected(r), 0);
    h->db_clear(r);
    r = h->db_exec(h, "INSERT INTO echo_t SELECT generate_series(1, 5)", 0, NULL, &err);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(h->db_affected(r), 5);
    h->db_clear(r);
    plugins_unload(&reg);
    conf_free(&conf);
    conf_errors_free(&e);
    db_close(&db);
    tu_pg_stop(&pg);
}
END_TEST

/* STYLE.md: every module exports exactly its one entry symbol. */
START_TEST(test_one_exported_symbol)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "nm -D --defined-only %s/echo.so | awk '$2 ~ /^[TDBRVW]$/ {print $3}'",
             TEST_PLUGIN_DIR);
    FILE *p = popen(cmd, "r");
    char out[1024];
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    ck_assert_int_eq(WEXITSTATUS(st), 0);
    ck_assert_str_eq(out, "llmops_plugin_entry\n");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("plugins");
    TCase *core = tcase_create("Core");
    tcase_set_timeout(core, 60); /* a private PostgreSQL cluster starts in test_host_db_accessors */
    tcase_add_test(core, test_good_module);
    tcase_add_test(core, test_instances);
    tcase_add_test(core, test_host_services);
    tcase_add_test(core, test_one_exported_symbol);
    tcase_add_test(core, test_host_http_with_token);
    tcase_add_test(core, test_module_built_for_1_0);
    tcase_add_test(core, test_host_services_1_1);
    tcase_add_test(core, test_host_db_accessors);
    suite_add_tcase(s, core);
    TCase *limits = tcase_create("Limits");
    tcase_add_test(limits, test_wrong_abi);
    tcase_add_test(limits, test_newer_minor_refused);
    tcase_add_test(limits, test_missing_entry);
    tcase_add_test(limits, test_null_required_method);
    tcase_add_test(limits, test_name_mismatch);
    tcase_add_test(limits, test_missing_category_op);
    tcase_add_test(limits, test_capabilities_gate_calls);
    tcase_add_test(limits, test_feature_gate);
    tcase_add_test(limits, test_serving_table_features);
    tcase_add_test(limits, test_unsupported_category_abi);
    tcase_add_test(limits, test_not_elf);
    tcase_add_test(limits, test_symlink_refused);
    tcase_add_test(limits, test_exact_names_only);
    suite_add_tcase(s, limits);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
