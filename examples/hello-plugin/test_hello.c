/* Unit tests of the hello module against the kit's mock host (llmops-mock-host.h): no
 * llm-opsd, no database, no network. hello.c is compiled into this test, so its
 * llmops_plugin_entry() is called directly; a test can also dlopen a built module with
 * llmops_mock_open (see doc/plugins/kit.md). Built in the llm-ops tree (tests/kit) and out of
 * tree (this directory's CMakeLists.txt, with pkg-config llmops-mockhost). */
#include <llmops-mock-host.h>
#include <llmops-plugin.h>
#include <llmops-registry.h>

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const struct llmops_plugin *llmops_plugin_entry(void);

static struct llmops_mock *mock;
static const struct llmops_plugin *desc;
static void *state;

static void setup(void)
{
    mock = llmops_mock_new("hello-test", "hello");
    ck_assert_ptr_nonnull(mock);
    desc = llmops_plugin_entry();
    state = NULL;
}

static void teardown(void)
{
    if (state)
        desc->fini(state);
    state = NULL;
    llmops_mock_free(mock);
}

/* The module with greeting = `greeting`, initialised. */
static void start(const char *greeting)
{
    char pair[160], msg[300];
    snprintf(pair, sizeof pair, "greeting = %s", greeting);
    const char *const table[] = {"module=hello", pair, NULL};
    ck_assert_int_eq(llmops_mock_config_table(mock, table, msg, sizeof msg), 0);
    struct llmops_error err = {.size = sizeof err};
    ck_assert_msg(llmops_mock_init(mock, desc, &state, &err) == 0, "init: %s", err.message);
}

START_TEST(test_missing_greeting_is_refused)
{
    struct llmops_error err = {.size = sizeof err};
    ck_assert_int_eq(llmops_mock_init(mock, desc, &state, &err), -1);
    ck_assert_int_eq(err.code, LLMOPS_ERR_INVALID);
    ck_assert_msg(strstr(err.message, "'greeting'") != NULL, "%s", err.message);
    ck_assert_ptr_null(state);
}
END_TEST

START_TEST(test_unknown_key_is_refused)
{
    char msg[300];
    const char *const table[] = {"greeting=hi", "greting=typo", NULL};
    ck_assert_int_eq(llmops_mock_config_table(mock, table, msg, sizeof msg), 0);
    struct llmops_error err = {.size = sizeof err};
    ck_assert_int_eq(llmops_mock_init(mock, desc, &state, &err), -1);
    ck_assert_msg(strstr(err.message, "table:2: unknown key 'greting'") != NULL, "%s", err.message);
}
END_TEST

START_TEST(test_health_says_the_greeting)
{
    start("bonjour");
    ck_assert_uint_eq(llmops_mock_log_find(mock, LLMOPS_LOG_INFO, "ready to say bonjour"), 1);
    json_t *info = NULL;
    struct llmops_error err = {.size = sizeof err};
    ck_assert_int_eq(desc->health(state, &info, &err), 0);
    ck_assert_str_eq(json_string_value(json_object_get(info, "tool_version")), "1.0.0");
    ck_assert_str_eq(json_string_value(json_object_get(info, "greeting")), "bonjour");
    /* sha256("bonjour"), through host->digest */
    ck_assert_str_eq(json_string_value(json_object_get(info, "greeting_sha256")),
                     "2cb4b1431b84ec15d35ed83bb927e27e8967d75f4bcd9cc4b25c8d879ae23e18");
    ck_assert(json_is_true(json_object_get(info, "tool_in_range")));
    json_decref(info);
    ck_assert_uint_eq(llmops_mock_http_count(mock), 0); /* hello never calls a tool */
}
END_TEST

START_TEST(test_config_from_an_ini_section)
{
    char path[] = "/tmp/hello-test-XXXXXX", msg[300];
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    const char text[] = "[plugin \"other\"]\nmodule = hello\ngreeting = no\n"
                        "[plugin \"hello\"]\nmodule = hello\ngreeting = hallo\n";
    ck_assert_int_eq(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
    close(fd);
    ck_assert_int_eq(llmops_mock_config_ini(mock, path, "plugin \"hello\"", msg, sizeof msg), 0);
    struct llmops_error err = {.size = sizeof err};
    ck_assert_int_eq(llmops_mock_init(mock, desc, &state, &err), 0);
    const struct llmops_host *h = llmops_mock_host(mock);
    char where[400];
    snprintf(where, sizeof where, "%s:6", path);
    ck_assert_str_eq(h->config_where(h, "greeting"), where);
    json_t *info = NULL;
    ck_assert_int_eq(desc->health(state, &info, &err), 0);
    ck_assert_str_eq(json_string_value(json_object_get(info, "greeting")), "hallo");
    json_decref(info);
    unlink(path);
}
END_TEST

START_TEST(test_operations)
{
    start("hi");
    const struct llmops_registry_ops *ops = desc->ops;
    json_t *in = json_pack("{s:s}", "external_id", "hello"), *out = NULL;
    struct llmops_error err = {.size = sizeof err};
    ck_assert_int_eq(ops->get_model(state, in, &out, &err), 0);
    ck_assert_str_eq(json_string_value(json_object_get(out, "description")), "hi");
    json_decref(out);
    json_decref(in);
    in = json_pack("{s:s}", "external_id", "nope");
    out = NULL;
    ck_assert_int_eq(ops->get_model(state, in, &out, &err), -1);
    ck_assert_int_eq(err.code, LLMOPS_ERR_NOT_FOUND);
    ck_assert_ptr_null(out);
    json_decref(in);
    in = json_pack("{s:i}", "max_results", 10);
    ck_assert_int_eq(ops->search_models(state, in, &out, &err), 0);
    ck_assert_int_eq(json_array_size(json_object_get(out, "models")), 1);
    json_decref(out);
    json_decref(in);
}
END_TEST

static Suite *hello_suite(void)
{
    Suite *s = suite_create("hello");
    TCase *tc = tcase_create("Core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_health_says_the_greeting);
    tcase_add_test(tc, test_config_from_an_ini_section);
    tcase_add_test(tc, test_operations);
    suite_add_tcase(s, tc);
    TCase *limits = tcase_create("Limits");
    tcase_add_checked_fixture(limits, setup, teardown);
    tcase_add_test(limits, test_missing_greeting_is_refused);
    tcase_add_test(limits, test_unknown_key_is_refused);
    suite_add_tcase(s, limits);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(hello_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
