/* llmops_<category>_missing_op() as the loader uses it: a module with every required op
 * passes; one with a required op NULL, or built before that op's slot existed (a smaller
 * ops->size), is refused with the op's name; optional ops may be NULL. */
#include "llmops-orchestration.h"
#include "llmops-registry.h"
#include "llmops-serving.h"
#include "llmops-tracking.h"
#include "llmops-versioning.h"

#include <stdio.h>
#include <string.h>

static int op(void *state, json_t *in, json_t **out, struct llmops_error *err)
{
    (void)state;
    (void)in;
    (void)err;
    *out = NULL;
    return 0;
}

static int failures;

static void expect(const char *what, const char *got, const char *want)
{
    if ((got == NULL) != (want == NULL) || (got && strcmp(got, want) != 0)) {
        printf("FAIL %s: got %s, want %s\n", what, got ? got : "NULL", want ? want : "NULL");
        failures++;
    }
}

int main(void)
{
    struct llmops_tracking_ops t = {sizeof t, op, op,   op, NULL, NULL, op,
                                    op,       op, NULL, op, op,   op,   op};
    expect("tracking, optional ops NULL", llmops_tracking_missing_op(&t), NULL);
    t.search_runs = NULL;
    expect("tracking, search_runs NULL", llmops_tracking_missing_op(&t), "search_runs");
    t.search_runs = op;
    t.size = (uint32_t)offsetof(struct llmops_tracking_ops, log_batch);
    expect("tracking, built without log_batch", llmops_tracking_missing_op(&t), "log_batch");
    expect("tracking, no ops", llmops_tracking_missing_op(NULL), "ops");

    struct llmops_serving_ops s = {sizeof s, op, op, op, op, op, op, NULL, NULL, NULL, NULL, NULL};
    expect("serving, predict and canary ops NULL", llmops_serving_missing_op(&s), NULL);
    s.find_by_idempotency_key = NULL;
    expect("serving, find_by_idempotency_key NULL", llmops_serving_missing_op(&s),
           "find_by_idempotency_key");
    s.find_by_idempotency_key = op;
    s.size = (uint32_t)offsetof(struct llmops_serving_ops, create_canary);
    expect("serving, built without the level-2 ops", llmops_serving_missing_op(&s), NULL);
    s.size = sizeof s;
    s.deploy = NULL;
    expect("serving, deploy NULL", llmops_serving_missing_op(&s), "deploy");

    struct llmops_orchestration_ops o = {sizeof o, op, op, op, op, op, NULL, NULL, NULL};
    expect("orchestration, optional ops NULL", llmops_orchestration_missing_op(&o), NULL);
    o.size = sizeof(uint32_t);
    expect("orchestration, empty struct", llmops_orchestration_missing_op(&o), "submit_run");

    struct llmops_registry_ops r = {sizeof r, op, op, op, NULL, NULL, NULL};
    expect("registry, optional ops NULL", llmops_registry_missing_op(&r), NULL);
    r.import_version = NULL;
    expect("registry, import_version NULL", llmops_registry_missing_op(&r), "import_version");

    struct llmops_versioning_ops v = {sizeof v, op, op, op, op, op, op, op, NULL};
    expect("versioning, diff NULL", llmops_versioning_missing_op(&v), NULL);
    v.find_by_idempotency_key = NULL;
    expect("versioning, find NULL", llmops_versioning_missing_op(&v), "find_by_idempotency_key");

    return failures ? 1 : 0;
}
