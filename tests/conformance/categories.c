/* Per category: the operation names of its interface (from the header's X-list), which a
 * module's capabilities() may list, and the required ones it must list; and the category's
 * behaviour suite (tracking.c, ...), added as the category's plugins land. */
#include "conformance.h"
#include "llmops-orchestration.h"
#include "llmops-registry.h"
#include "llmops-serving.h"
#include "llmops-tracking.h"
#include "llmops-versioning.h"

#include <string.h>

struct op_name {
    const char *name;
    int required;
};

#define OP_(member, required) {#member, required},
static const struct op_name tracking[] = {LLMOPS_TRACKING_OPS(OP_){NULL, 0}};
static const struct op_name serving[] = {LLMOPS_SERVING_OPS(OP_){NULL, 0}};
static const struct op_name orchestration[] = {LLMOPS_ORCHESTRATION_OPS(OP_){NULL, 0}};
static const struct op_name registry[] = {LLMOPS_REGISTRY_OPS(OP_){NULL, 0}};
static const struct op_name versioning[] = {LLMOPS_VERSIONING_OPS(OP_){NULL, 0}};
#undef OP_

static const struct op_name *ops_of(int category)
{
    switch (category) {
    case LLMOPS_CATEGORY_EXPERIMENT_TRACKING:
        return tracking;
    case LLMOPS_CATEGORY_SERVING:
        return serving;
    case LLMOPS_CATEGORY_ORCHESTRATION:
        return orchestration;
    case LLMOPS_CATEGORY_MODEL_REGISTRY:
        return registry;
    case LLMOPS_CATEGORY_DATA_VERSIONING:
        return versioning;
    default:
        return NULL;
    }
}

START_TEST(test_capabilities_name_the_interface)
{
    const struct op_name *names = ops_of((int)conformance_instance->mod->desc->category);
    ck_assert_ptr_nonnull(names);
    json_t *caps = NULL;
    struct llmops_error err = {.size = sizeof err};
    ck_assert_int_eq(
        conformance_instance->mod->desc->capabilities(conformance_instance->state, &caps, &err), 0);
    json_t *ops = json_object_get(caps, "operations"), *v;
    size_t i;
    json_array_foreach(ops, i, v)
    {
        int known = 0;
        for (const struct op_name *n = names; n->name; n++)
            if (strcmp(n->name, json_string_value(v)) == 0)
                known = 1;
        ck_assert_msg(known, "capabilities lists '%s', which is not an operation of the interface",
                      json_string_value(v));
    }
    for (const struct op_name *n = names; n->name; n++) {
        if (!n->required)
            continue;
        int listed = 0;
        json_array_foreach(ops, i, v)
        {
            if (strcmp(n->name, json_string_value(v)) == 0)
                listed = 1;
        }
        ck_assert_msg(listed, "capabilities does not list the required operation '%s'", n->name);
    }
    json_decref(caps);
}
END_TEST

Suite *conformance_category(int category)
{
    (void)category;
    Suite *s = suite_create("interface");
    TCase *tc = tcase_create("Core");
    tcase_add_test(tc, test_capabilities_name_the_interface);
    suite_add_tcase(s, tc);
    return s;
}

Suite *conformance_behaviour(int category)
{
    switch (category) {
    case LLMOPS_CATEGORY_EXPERIMENT_TRACKING:
        return conformance_tracking();
    case LLMOPS_CATEGORY_SERVING:
        return conformance_serving();
    default:
        return NULL;
    }
}
