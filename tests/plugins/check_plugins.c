/* The loader: every way a module is refused has a test and a message that names the file,
 * what was expected, what was found, and the fix; instances of a good module come up while a
 * bad one fails alone. */
#include "conf.h"
#include "engine.h"
#include "tracking.h"
#include "plugin.h"

#include <check.h>
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
                                         "module has ABI 2.0, server has ABI 1.0",
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
    tcase_add_test(core, test_good_module);
    tcase_add_test(core, test_instances);
    tcase_add_test(core, test_host_services);
    tcase_add_test(core, test_one_exported_symbol);
    tcase_add_test(core, test_host_http_with_token);
    suite_add_tcase(s, core);
    TCase *limits = tcase_create("Limits");
    tcase_add_test(limits, test_wrong_abi);
    tcase_add_test(limits, test_missing_entry);
    tcase_add_test(limits, test_null_required_method);
    tcase_add_test(limits, test_name_mismatch);
    tcase_add_test(limits, test_missing_category_op);
    tcase_add_test(limits, test_capabilities_gate_calls);
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
