#include "check_suites.h"
#include "gpu.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#define VALID                                                                                      \
    "\"name\":\"nvidia-a100-1g-10gb\",\"vendor\":\"nvidia\",\"model\":\"A100 80GB (MIG "           \
    "1g.10gb)\",\"memory_gib\":10,\"resource_name\":\"nvidia.com/mig-1g.10gb\",\"node_selector\":" \
    "{\"key\":\"nvidia.com/gpu.product\",\"value\":\"NVIDIA-A100-SXM4-80GB\"},\"capacity\":14"

static const struct {
    const char *json;
    enum gpu_mode mode;
    const char *field; /* NULL: valid */
} cases[] = {
    {"{" VALID "}", GPU_FULL, NULL},
    {"{" VALID ",\"mig_profile\":\"1g.10gb\",\"enabled\":false}", GPU_FULL, NULL},
    /* read-only members pass validation, which knows no object: gpu_check_read_only
     * compares them with the object's (test_read_only) */
    {"{" VALID ",\"mig_profile\":null,\"environment\":\"dev\",\"created_at\":\"x\"}", GPU_FULL,
     NULL},
    {"{\"capacity\":3}", GPU_PARTIAL, NULL},
    {"{\"capacity\":3}", GPU_FULL, "name"},
    {"{\"name\":\"x\"}", GPU_PARTIAL, "name"},
    {"{" VALID ",\"colour\":\"red\"}", GPU_FULL, "colour"},
    {"{" VALID ",\"vendor\":\"acme\"}", GPU_FULL, "vendor"},
    {"{" VALID ",\"memory_gib\":0}", GPU_FULL, "memory_gib"},
    {"{" VALID ",\"memory_gib\":4097}", GPU_FULL, "memory_gib"},
    {"{" VALID ",\"memory_gib\":1.5}", GPU_FULL, "memory_gib"},
    {"{" VALID ",\"memory_gib\":\"16\"}", GPU_FULL, "memory_gib"},
    {"{" VALID ",\"capacity\":-1}", GPU_FULL, "capacity"},
    {"{" VALID ",\"name\":\"Upper\"}", GPU_FULL, "name"},
    {"{" VALID ",\"name\":\"-lead\"}", GPU_FULL, "name"},
    {"{" VALID ",\"name\":\"\"}", GPU_FULL, "name"},
    {"{" VALID ",\"model\":\"\"}", GPU_FULL, "model"},
    {"{" VALID ",\"model\":\"a\\u0001b\"}", GPU_FULL, "model"},
    {"{" VALID ",\"resource_name\":\"nvidia.com/gpu x\"}", GPU_FULL, "resource_name"},
    {"{" VALID ",\"node_selector\":{\"key\":\"k\"}}", GPU_FULL, "node_selector"},
    {"{" VALID ",\"node_selector\":{\"key\":\"\",\"value\":\"v\"}}", GPU_FULL, "node_selector"},
    {"{" VALID ",\"node_selector\":\"k=v\"}", GPU_FULL, "node_selector"},
    {"{" VALID ",\"mig_profile\":5}", GPU_FULL, "mig_profile"},
    {"{" VALID ",\"enabled\":\"yes\"}", GPU_FULL, "enabled"},
    {"[]", GPU_FULL, "body"},
};

START_TEST(test_validate)
{
    json_t *o = json_loads(cases[_i].json, 0, NULL);
    if (!o)
        o = json_array(); /* only the "[]" case: not an object */
    char msg[256] = "", field[72] = "";
    int rc = gpu_validate(o, cases[_i].mode, msg, sizeof msg, field, sizeof field);
    if (!cases[_i].field) {
        if (rc != 0)
            ck_abort_msg("case %d should pass: %s", _i, msg);
    } else {
        ck_assert_int_eq(rc, -1);
        ck_assert_str_eq(field, cases[_i].field);
        ck_assert_int_gt(strlen(msg), 10);
    }
    json_decref(o);
}
END_TEST

/* model's limit (128) and its message are in characters: 128 two-byte characters pass,
 * 129 do not, and the message says so. */
START_TEST(test_model_characters)
{
    for (int n = 128; n <= 129; n++) {
        char model[600] = "";
        for (int i = 0; i < n; i++)
            strcat(model, "\u00e9");
        char text[1200];
        snprintf(text, sizeof text, "{" VALID ",\"model\":\"%s\"}", model);
        json_t *o = json_loads(text, 0, NULL);
        ck_assert_ptr_nonnull(o);
        char msg[256] = "", field[72] = "";
        int rc = gpu_validate(o, GPU_FULL, msg, sizeof msg, field, sizeof field);
        if (n == 128) {
            ck_assert_msg(rc == 0, "128 characters (256 bytes) refused: %s", msg);
        } else {
            ck_assert_int_eq(rc, -1);
            ck_assert_str_eq(field, "model");
            ck_assert_msg(strstr(msg, "characters") && strstr(msg, "got 129"), "%s", msg);
        }
        json_decref(o);
    }
}
END_TEST

/* A GET answer sent back passes; a read-only member that differs from the object's is
 * refused, naming it; updated_at is never compared. */
static const struct {
    const char *body;
    const char *field; /* NULL: accepted */
} readonly_cases[] = {
    {"{\"environment\":\"stg\",\"created_at\":\"2026-01-02T03:04:05Z\","
     "\"updated_at\":\"2026-01-02T03:04:05Z\",\"capacity\":3}",
     NULL},
    {"{\"capacity\":3}", NULL},
    {"{\"updated_at\":\"1999-01-01T00:00:00Z\"}", NULL},
    {"{\"environment\":\"prod\",\"created_at\":\"2026-01-02T03:04:05Z\"}", "environment"},
    {"{\"environment\":\"stg\",\"created_at\":\"2001-01-02T03:04:05Z\"}", "created_at"},
    {"{\"environment\":null}", "environment"},
    {"{\"created_at\":5}", "created_at"},
};

START_TEST(test_read_only)
{
    json_t *cur = json_loads("{\"name\":\"x\",\"environment\":\"stg\","
                             "\"created_at\":\"2026-01-02T03:04:05Z\","
                             "\"updated_at\":\"2026-02-02T03:04:05Z\",\"capacity\":1}",
                             0, NULL);
    json_t *body = json_loads(readonly_cases[_i].body, 0, NULL);
    ck_assert_ptr_nonnull(cur);
    ck_assert_ptr_nonnull(body);
    char msg[256] = "", field[72] = "";
    int rc = gpu_check_read_only(body, cur, msg, sizeof msg, field, sizeof field);
    if (!readonly_cases[_i].field) {
        ck_assert_msg(rc == 0, "case %d should pass: %s", _i, msg);
    } else {
        ck_assert_int_eq(rc, -1);
        ck_assert_str_eq(field, readonly_cases[_i].field);
        ck_assert_msg(strstr(msg, readonly_cases[_i].field) && strstr(msg, "read-only"),
                      "the message does not name the member: %s", msg);
    }
    /* with no object to compare (POST): only what the caller gives is compared */
    json_t *env_only = json_pack("{s:s}", "environment", "stg");
    rc = gpu_check_read_only(body, env_only, msg, sizeof msg, field, sizeof field);
    if (readonly_cases[_i].field && strcmp(readonly_cases[_i].field, "environment") == 0)
        ck_assert_int_eq(rc, -1);
    else
        ck_assert_int_eq(rc, 0);
    json_decref(env_only);
    json_decref(body);
    json_decref(cur);
}
END_TEST

/* If-None-Match compares weakly, If-Match strongly (a W/ tag never matches); lists and "*". */
START_TEST(test_etag_matches)
{
    ck_assert(gpu_etag_matches("\"1.5\"", "\"1.5\"", 0));
    ck_assert(!gpu_etag_matches("\"1.5\"", "\"1.6\"", 0));
    ck_assert(gpu_etag_matches("\"0.1\", \"1.5\"", "\"1.5\"", 0));
    ck_assert(gpu_etag_matches("\"0.1\" ,\"1.5\" ", "\"1.5\"", 0));
    ck_assert(gpu_etag_matches("*", "\"1.5\"", 0));
    ck_assert(!gpu_etag_matches("W/\"1.5\"", "\"1.5\"", 0));
    ck_assert(gpu_etag_matches("W/\"1.5\"", "\"1.5\"", 1));
    ck_assert(!gpu_etag_matches("\"1.55\"", "\"1.5\"", 1));
    ck_assert(!gpu_etag_matches("", "\"1.5\"", 1));
    ck_assert(!gpu_etag_matches(" , ,", "\"1.5\"", 1));
    ck_assert(!gpu_etag_matches("W/", "\"1.5\"", 1));
}
END_TEST

Suite *make_gpu_suite(void)
{
    Suite *s = suite_create("gpu");
    TCase *limits = tcase_create("Limits");
    tcase_add_loop_test(limits, test_validate, 0, (int)(sizeof cases / sizeof cases[0]));
    tcase_add_test(limits, test_model_characters);
    tcase_add_loop_test(limits, test_read_only, 0,
                        (int)(sizeof readonly_cases / sizeof readonly_cases[0]));
    tcase_add_test(limits, test_etag_matches);
    suite_add_tcase(s, limits);
    return s;
}
