/* sv.h — checks every serving module makes the same way (llmops-serving.h), so that what an
 * instance cannot do is refused by name (UNSUPPORTED naming the feature) before a module
 * builds anything for its tool. */
#ifndef LLMOPS_SV_H
#define LLMOPS_SV_H

#include "llmops-plugin.h"
#include "llmops-serving.h"

#include <jansson.h>

enum {
    SV_AUTOSCALING = 1 << 0,
    SV_SCALE_TO_ZERO = 1 << 1,
    SV_IMAGE = 1 << 2,
    SV_NODE_SELECTOR = 1 << 3,
    SV_CANARY = 1 << 4,
    SV_CANARY_PERCENT = 1 << 5,
    SV_CANARY_BY_REPLICAS = 1 << 6,
    SV_SERIALIZED_WRITES = 1 << 7,
};

struct sv_features {
    unsigned flags;
    const char *const *metrics; /* autoscaling metrics, NULL-terminated */
    int name_max;               /* longest name (LLMOPS_SERVING_NAME_MAX or less) */
};

/* {"operations": [...], "features": [...], "autoscaling_metrics": [...]}; `ops` the module's
 * ops struct (the optional ops listed when non-NULL, the canary ops only with SV_CANARY). */
json_t *sv_capabilities(const struct sv_features *f, const struct llmops_serving_ops *ops);

/* Checks the Spec members of `in` beyond what the operations table states (the core
 * validated types, bounds and required members: llmops_serving_op_table): the name's shape,
 * min <= max, the URI scheme, env names, the instance's features; an update needs at least
 * one member. For a caller that skipped the core it also checks the required members of a
 * deploy (idempotency_key, name, model, replicas) and the types of model, args, env, image,
 * resources, replicas and autoscaling, so a module never writes a spec it did not read.
 * Returns 0, or -1 with err filled (INVALID naming the member, UNSUPPORTED naming the
 * feature). */
int sv_check_spec(json_t *in, const struct sv_features *f, int is_update, struct llmops_error *err);

/* The canary split of create_canary (is_set 0: 1..99, replicas >= 1) or set_canary_traffic
 * (0..100, replicas >= 0): *percent or *replicas set, the other -1. */
int sv_check_split(json_t *in, const struct sv_features *f, int is_set, int *percent, int *replicas,
                   struct llmops_error *err);

/* Checks the canary members of create_canary (model, image, args, env: at least one). */
int sv_check_canary(json_t *in, const struct sv_features *f, struct llmops_error *err);

/* An RFC 3339 time ("2026-12-03T09:15:00Z", fractions and offsets) as ms since the epoch;
 * -1 when unreadable. */
long long sv_rfc3339_ms(const char *s);

/* The string member k of o, or NULL. */
const char *sv_sget(json_t *o, const char *k);

/* o[k] = v quoted (llmops_quote, at most max characters of v); nothing when v is NULL. */
void sv_put_str(json_t *o, const char *k, const char *v, size_t max);

/* {"limits": Q, "requests": Q} for the resources member of a Spec (cpu, memory, gpu as
 * {resource_name: "count"}), Q the same quantities twice; NULL when res is NULL. */
json_t *sv_resources(json_t *res);

/* The resources member of a Spec from the limits object `lim` of a container: cpu and
 * memory (strings), and the one GPU (a limit whose name has a '/') as {resource_name,
 * count, node_selector: the nodeSelector of `pod` when an object}. A GPU limit neither a
 * string nor an integer counts 0, or is skipped when skip_unreadable is set. */
json_t *sv_resources_of(json_t *lim, json_t *pod, int skip_unreadable);

/* The capabilities op's answer: sv_capabilities into *out, INTERNAL "out of memory" when
 * that fails. */
int sv_answer_capabilities(const struct sv_features *f, const struct llmops_serving_ops *ops,
                           json_t **out, struct llmops_error *err);

/* The fini of a module whose state is one malloc'd block. */
void sv_fini(void *state);

/* The ops table of a serving module whose op functions bear the ops' names (deploy,
 * get_deployment, ...), with its four canary ops given. */
#define SV_SERVING_OPS(create, set, promote, rollback)                                             \
    {                                                                                              \
        .size = sizeof(struct llmops_serving_ops), .deploy = deploy,                               \
        .get_deployment = get_deployment, .list_deployments = list_deployments,                    \
        .update_deployment = update_deployment, .delete_deployment = delete_deployment,            \
        .find_by_idempotency_key = find_by_idempotency_key, .create_canary = (create),             \
        .set_canary_traffic = (set), .promote_canary = (promote), .rollback_canary = (rollback),   \
    }

/* The members every serving module's descriptor has alike: its `ops` and `keys`, sv_fini. */
#define SV_DESCRIPTOR(name_, version_)                                                             \
    .magic = LLMOPS_PLUGIN_MAGIC_INIT, .size = sizeof(struct llmops_plugin), .name = (name_),      \
    .version = (version_), .category = LLMOPS_CATEGORY_SERVING,                                    \
    .category_abi = LLMOPS_SERVING_ABI, .ops = &ops, .config_keys = keys, .fini = sv_fini

int sv_failf(struct llmops_error *err, enum llmops_status code, const char *fmt, ...)
    LLMOPS_PRINTF(3, 4);
/* sv_failf with the tool's status and retryable. */
int sv_fail_tool(struct llmops_error *err, enum llmops_status code, int tool_status, int retryable,
                 const char *fmt, ...) LLMOPS_PRINTF(5, 6);

#endif
