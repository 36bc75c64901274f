/* A real module on the kit's mock host: the built mlflow.so, dlopened with llmops_mock_open,
 * its health answered from canned /version responses (no MLflow, no fake server, no core).
 * It shows what the mock is for: the module's own logic (version parsing and range, error
 * mapping, counters, the request it makes) checked in isolation. */
#include "llmops-mock-host.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct llmops_mock *m;
static const struct llmops_plugin *desc;
static void *state;

static void setup(void)
{
    char msg[600];
    m = llmops_mock_new("mlflow-test", "mlflow");
    desc = llmops_mock_open(m, MLFLOW_SO, msg, sizeof msg);
    ck_assert_msg(desc != NULL, "%s", msg);
    const char *const conf[] = {"module = mlflow", "url = http://mlflow.test:5000",
                                "timeout_ms = 3000", NULL};
    ck_assert_int_eq(llmops_mock_config_table(m, conf, msg, sizeof msg), 0);
    struct llmops_error err = {.size = sizeof err};
    state = NULL;
    ck_assert_msg(llmops_mock_init(m, desc, &state, &err) == 0, "init: %s", err.message);
}

static void teardown(void)
{
    if (state)
        desc->fini(state);
    llmops_mock_free(m);
}

static int health(json_t **info, struct llmops_error *err)
{
    memset(err, 0, sizeof *err);
    err->size = sizeof *err;
    *info = NULL;
    return desc->health(state, info, err);
}

START_TEST(test_health_reports_the_version)
{
    llmops_mock_http_add(m, "GET", "/version", 200, "Content-Type: text/plain", "2.14.3\n");
    json_t *info;
    struct llmops_error err;
    ck_assert_msg(health(&info, &err) == 0, "%s", err.message);
    ck_assert_str_eq(json_string_value(json_object_get(info, "tool_version")), "2.14.3");
    ck_assert(json_is_true(json_object_get(info, "supported")));
    json_decref(info);
    const struct llmops_mock_request *q = llmops_mock_http_request(m, 0);
    ck_assert_ptr_nonnull(q);
    ck_assert_str_eq(q->method, "GET");
    ck_assert_str_eq(q->path, "/version");
    ck_assert_int_gt(q->timeout_ms, 0);
    ck_assert_int_le(q->timeout_ms, 3000); /* within the instance's timeout_ms */
    ck_assert(llmops_mock_metric(m, "requests") == 1);
    ck_assert(llmops_mock_metric(m, "request_failures") == 0);
    ck_assert_int_eq(llmops_mock_http_unreleased(m), 0);
}
END_TEST

START_TEST(test_health_outside_the_range)
{
    llmops_mock_http_add(m, "GET", "/version", 200, NULL, "2.8.1");
    json_t *info;
    struct llmops_error err;
    ck_assert_int_eq(health(&info, &err), 0);
    ck_assert(json_is_false(json_object_get(info, "supported")));
    json_decref(info);
}
END_TEST

START_TEST(test_health_not_mlflow)
{
    llmops_mock_http_add(m, "GET", "/version", 200, "Content-Type: text/html",
                         "<html>hello</html>");
    json_t *info;
    struct llmops_error err;
    ck_assert_int_eq(health(&info, &err), -1);
    ck_assert_ptr_null(info);
    ck_assert_int_eq(err.code, LLMOPS_ERR_TOOL);
    ck_assert_msg(strstr(err.message, "not a version") != NULL, "%s", err.message);
    ck_assert_int_eq(llmops_mock_http_unreleased(m), 0);
}
END_TEST

START_TEST(test_health_tool_error_and_down)
{
    llmops_mock_http_add(m, "GET", "/version", 503, "Retry-After: 1",
                         "{\"error_code\":\"TEMPORARILY_UNAVAILABLE\",\"message\":\"busy\"}");
    llmops_mock_http_add(m, "GET", "/version", 0, NULL, NULL);
    json_t *info;
    struct llmops_error err;
    ck_assert_int_eq(health(&info, &err), -1);
    ck_assert_int_eq(err.code, LLMOPS_ERR_TOOL);
    ck_assert_int_eq(err.tool_status, 503);
    ck_assert_int_eq(err.retryable, 1);
    ck_assert_int_eq(health(&info, &err), -1);
    ck_assert_int_eq(err.code, LLMOPS_ERR_UNAVAILABLE);
    ck_assert(llmops_mock_metric(m, "request_failures") == 2);
    ck_assert_uint_ge(llmops_mock_log_find(m, LLMOPS_LOG_WARNING, "HTTP 503"), 1);
    ck_assert_int_eq(llmops_mock_http_unreleased(m), 0);
}
END_TEST

START_TEST(test_init_needs_url)
{
    struct llmops_mock *bare = llmops_mock_new("bare", "mlflow");
    void *s = NULL;
    struct llmops_error err = {.size = sizeof err};
    ck_assert_int_eq(llmops_mock_init(bare, desc, &s, &err), -1);
    ck_assert_int_eq(err.code, LLMOPS_ERR_INVALID);
    ck_assert_msg(strstr(err.message, "needs url") != NULL, "%s", err.message);
    llmops_mock_free(bare);
}
END_TEST

static Suite *mlflow_mock_suite(void)
{
    Suite *s = suite_create("mlflow-on-mock");
    TCase *tc = tcase_create("Core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_health_reports_the_version);
    tcase_add_test(tc, test_health_outside_the_range);
    tcase_add_test(tc, test_health_not_mlflow);
    tcase_add_test(tc, test_health_tool_error_and_down);
    tcase_add_test(tc, test_init_needs_url);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(mlflow_mock_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
