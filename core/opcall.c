/* Calling any category's op by name, for the background process's generic work (watches,
 * long operations): the op is found in the category's ops struct through the category
 * header's X-macro, bounded by the size the module built it with. */
#include "opcall.h"

#include "dispatch.h"
#include "llmops-orchestration.h"
#include "llmops-registry.h"
#include "llmops-serving.h"
#include "llmops-tracking.h"
#include "llmops-versioning.h"
#include "util.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

struct slot {
    int category;
    const char *name;
    size_t offset;
};

#define TR_(member, req)                                                                           \
    {LLMOPS_CATEGORY_EXPERIMENT_TRACKING, #member, offsetof(struct llmops_tracking_ops, member)},
#define SV_(member, req)                                                                           \
    {LLMOPS_CATEGORY_SERVING, #member, offsetof(struct llmops_serving_ops, member)},
#define OR_(member, req)                                                                           \
    {LLMOPS_CATEGORY_ORCHESTRATION, #member, offsetof(struct llmops_orchestration_ops, member)},
#define RG_(member, req)                                                                           \
    {LLMOPS_CATEGORY_MODEL_REGISTRY, #member, offsetof(struct llmops_registry_ops, member)},
#define DV_(member, req)                                                                           \
    {LLMOPS_CATEGORY_DATA_VERSIONING, #member, offsetof(struct llmops_versioning_ops, member)},
static const struct slot slots[] = {LLMOPS_TRACKING_OPS(TR_) LLMOPS_SERVING_OPS(
    SV_) LLMOPS_ORCHESTRATION_OPS(OR_) LLMOPS_REGISTRY_OPS(RG_) LLMOPS_VERSIONING_OPS(DV_)};
#undef TR_
#undef SV_
#undef OR_
#undef RG_
#undef DV_

static llmops_op_fn *find(const struct instance *in, const char *op)
{
    if (!in || !in->initialised || !in->mod || !in->mod->desc->ops)
        return NULL;
    uint32_t size;
    memcpy(&size, in->mod->desc->ops, sizeof size); /* every ops struct starts with its size */
    for (size_t i = 0; i < UTIL_ARRAY_LEN(slots); i++) {
        if (slots[i].category != (int)in->mod->desc->category || strcmp(slots[i].name, op) != 0)
            continue;
        if (size < slots[i].offset + sizeof(llmops_op_fn *))
            return NULL;
        llmops_op_fn *fn;
        memcpy(&fn, (const char *)in->mod->desc->ops + slots[i].offset, sizeof fn);
        return fn;
    }
    return NULL;
}

int opcall_has(const struct instance *in, const char *op)
{
    return find(in, op) != NULL;
}

int opcall(struct app *app, struct instance *in, const char *op, json_t *input, json_t **out,
           struct llmops_error *err)
{
    memset(err, 0, sizeof *err);
    err->size = sizeof *err;
    *out = NULL;
    llmops_op_fn *fn = find(in, op);
    if (!fn) {
        err->code = LLMOPS_ERR_UNSUPPORTED;
        snprintf(err->message, sizeof err->message, "%s is not supported by module %s", op,
                 in && in->mod ? in->mod->name : "?");
        return -1;
    }
    int64_t t0 = util_now_us();
    int rc = fn(in->state, input, out, err);
    int64_t dur = util_now_us() - t0;
    if (rc == 0 && !*out)
        *out = json_object();
    if (rc != 0) {
        json_decref(*out);
        *out = NULL;
        if (err->code == LLMOPS_OK)
            err->code = LLMOPS_ERR_INTERNAL;
        if (!err->message[0])
            snprintf(err->message, sizeof err->message, "%s failed without a message", op);
    }
    dispatch_call_done(app, in, op, rc == 0 ? NULL : err, dur);
    return rc == 0 ? 0 : -1;
}
