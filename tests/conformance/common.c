/* What every module must do, whatever its category. */
#include "category.h"
#include "conformance.h"

#include <string.h>

#define IN conformance_instance
#define DESC (IN->mod->desc)

START_TEST(test_descriptor)
{
    ck_assert_str_eq(DESC->name, IN->mod->name);
    ck_assert_ptr_nonnull(DESC->version);
    ck_assert_int_gt(strlen(DESC->version), 0);
    ck_assert_ptr_nonnull(category_name((int)DESC->category));
    ck_assert_uint_ge(DESC->size, sizeof(struct llmops_plugin));
    ck_assert_uint_ge(*(const uint32_t *)DESC->ops, sizeof(uint32_t)); /* ops carry their size */
    /* key table: unique names, each with a help line, no clash with the core's keys */
    static const char *const core[] = {"module",
                                       "url",
                                       "connect_timeout_ms",
                                       "timeout_ms",
                                       "retries",
                                       "tls_verify",
                                       "ca_file",
                                       "token_file",
                                       "basic_auth_file",
                                       "allowed_hosts",
                                       "unsupported_version"};
    for (const struct llmops_config_key *k = DESC->config_keys; k && k->name; k++) {
        ck_assert_msg(k->help && *k->help, "key %s has no help line", k->name);
        for (const struct llmops_config_key *j = k + 1; j->name; j++)
            ck_assert_msg(strcmp(k->name, j->name) != 0, "key %s listed twice", k->name);
        for (size_t c = 0; c < sizeof core / sizeof core[0]; c++) {
            if (strcmp(k->name, core[c]) == 0 && strcmp(core[c], "token_file") != 0)
                ck_abort_msg("key %s is the core's; the module must not redefine it", k->name);
        }
    }
}
END_TEST

START_TEST(test_health_shape)
{
    json_t *info = NULL;
    struct llmops_error err = {.size = sizeof err};
    int rc = DESC->health(IN->state, &info, &err);
    if (rc == 0) {
        ck_assert_msg(json_is_object(info), "health must return an object");
        ck_assert_msg(json_is_string(json_object_get(info, "tool_version")),
                      "health must report tool_version");
    } else {
        ck_assert_int_eq(rc, -1);
        ck_assert_msg(err.code == LLMOPS_ERR_UNAVAILABLE || err.code == LLMOPS_ERR_TOOL,
                      "a failed health is UNAVAILABLE or TOOL, not %d", err.code);
        ck_assert_int_gt(strlen(err.message), 0);
    }
    json_decref(info);
}
END_TEST

START_TEST(test_capabilities_shape)
{
    json_t *caps = NULL;
    struct llmops_error err = {.size = sizeof err};
    ck_assert_int_eq(DESC->capabilities(IN->state, &caps, &err), 0);
    json_t *ops = json_object_get(caps, "operations");
    ck_assert_msg(json_is_array(ops), "capabilities must list operations");
    size_t i, j;
    json_t *a, *b;
    json_array_foreach(ops, i, a)
    {
        ck_assert(json_is_string(a));
        json_array_foreach(ops, j, b)
        {
            if (j > i)
                ck_assert_str_ne(json_string_value(a), json_string_value(b));
        }
    }
    json_decref(caps);
}
END_TEST

START_TEST(test_second_instance_is_independent)
{
    /* init/fini again with the same host: state is per instance, nothing global */
    void *state = NULL;
    struct llmops_error err = {.size = sizeof err};
    ck_assert_int_eq(DESC->init(&IN->host, &state, &err), 0);
    ck_assert_ptr_ne(state, IN->state);
    DESC->fini(state);
    json_t *info = NULL;
    DESC->health(IN->state, &info, &err); /* the first instance still works */
    json_decref(info);
}
END_TEST

Suite *conformance_common(void)
{
    Suite *s = suite_create("common");
    TCase *tc = tcase_create("Core");
    tcase_add_test(tc, test_descriptor);
    tcase_add_test(tc, test_health_shape);
    tcase_add_test(tc, test_capabilities_shape);
    tcase_add_test(tc, test_second_instance_is_independent);
    suite_add_tcase(s, tc);
    return s;
}
