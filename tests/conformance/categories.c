/* Per category: the operation names of its interface (from the header's X-list), which a
 * module's capabilities() may list, and the required ones it must list; the category's
 * behaviour suite; and the modules' own suites. A category adds its suite by naming it in
 * its row below (see conformance.h). */
#include "conformance.h"
#include "llmops-orchestration.h"
#include "llmops-registry.h"
#include "llmops-serving.h"
#include "llmops-tracking.h"
#include "llmops-versioning.h"

#include <string.h>

#define OP_(member, required) {#member, required},
static const struct conformance_op tracking[] = {LLMOPS_TRACKING_OPS(OP_){NULL, 0}};
static const struct conformance_op serving[] = {LLMOPS_SERVING_OPS(OP_){NULL, 0}};
static const struct conformance_op orchestration[] = {LLMOPS_ORCHESTRATION_OPS(OP_){NULL, 0}};
static const struct conformance_op registry[] = {LLMOPS_REGISTRY_OPS(OP_){NULL, 0}};
static const struct conformance_op versioning[] = {LLMOPS_VERSIONING_OPS(OP_){NULL, 0}};
#undef OP_

const struct conformance_category conformance_categories[] = {
    {LLMOPS_CATEGORY_EXPERIMENT_TRACKING, "experiment_tracking", tracking, conformance_tracking},
    {LLMOPS_CATEGORY_SERVING, "serving", serving, conformance_serving},
    {LLMOPS_CATEGORY_ORCHESTRATION, NULL, orchestration, NULL},
    {LLMOPS_CATEGORY_MODEL_REGISTRY, NULL, registry, NULL},
    {LLMOPS_CATEGORY_DATA_VERSIONING, NULL, versioning, NULL},
    {0, NULL, NULL, NULL},
};

const struct conformance_module_suite conformance_modules[] = {
    {"tracking-pg", conformance_tracking_pg},
    {NULL, NULL},
};

const struct conformance_category *conformance_category_find(int category)
{
    for (const struct conformance_category *c = conformance_categories; c->category; c++)
        if (c->category == category)
            return c;
    return NULL;
}

START_TEST(test_capabilities_name_the_interface)
{
    const struct conformance_category *cat =
        conformance_category_find((int)conformance_instance->mod->desc->category);
    ck_assert_ptr_nonnull(cat);
    const struct conformance_op *names = cat->ops;
    json_t *caps = NULL;
    struct llmops_error err = {.size = sizeof err};
    ck_assert_int_eq(
        conformance_instance->mod->desc->capabilities(conformance_instance->state, &caps, &err), 0);
    json_t *ops = json_object_get(caps, "operations"), *v;
    size_t i;
    json_array_foreach(ops, i, v)
    {
        int known = 0;
        for (const struct conformance_op *n = names; n->name; n++)
            if (strcmp(n->name, json_string_value(v)) == 0)
                known = 1;
        ck_assert_msg(known, "capabilities lists '%s', which is not an operation of the interface",
                      json_string_value(v));
    }
    for (const struct conformance_op *n = names; n->name; n++) {
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

Suite *conformance_interface(int category)
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
    const struct conformance_category *c = conformance_category_find(category);
    return c && c->behaviour ? c->behaviour() : NULL;
}

Suite *conformance_module(const char *module)
{
    for (const struct conformance_module_suite *m = conformance_modules; m->module; m++)
        if (strcmp(m->module, module) == 0)
            return m->suite();
    return NULL;
}
