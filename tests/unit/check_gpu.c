#include "check_suites.h"
#include "gpu.h"

#include <jansson.h>
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

Suite *make_gpu_suite(void)
{
    Suite *s = suite_create("gpu");
    TCase *limits = tcase_create("Limits");
    tcase_add_loop_test(limits, test_validate, 0, (int)(sizeof cases / sizeof cases[0]));
    suite_add_tcase(s, limits);
    return s;
}
