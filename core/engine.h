/* The category engine: every category's operations as data (plugin-api/llmops-ops.h) and the
 * one path every call to a category module takes: find the op in the table, check `in`
 * against its members, refuse what the instance's capabilities do not list, call, map the
 * error, count the metrics, record the breaker outcome (a trip is carried out later, outside
 * the request: dispatch_run_pending). */
#ifndef LLMOPS_ENGINE_H
#define LLMOPS_ENGINE_H

#include "app.h"
#include "llmops-ops.h"

#include <jansson.h>

/* The operations table of a category (NULL, *n = 0 for one without a table yet). */
const struct llmops_op_desc *engine_ops(int category, size_t *n);
/* The op `name` of a category, or NULL. */
const struct llmops_op_desc *engine_op(int category, const char *name);

/* Checks `in` (an object) against `members` (ended by LLMOPS_END). Returns 0, or -1 with
 * path (the member, "metrics[3].value") and msg (what is wrong, the path included). */
int engine_validate(const struct llmops_member *members, json_t *in, char *path, size_t pathsize,
                    char *msg, size_t msgsize);

/* The capabilities an instance answered at load (or at its last refresh); NULL when it could
 * not answer (the core then goes by the ops struct alone). Borrowed. */
json_t *engine_capabilities(struct instance *in);
/* Calls capabilities() again and caches the answer (at load, after a breaker probe). */
void engine_refresh_capabilities(struct instance *in);
/* Whether `in` is an initialised instance of the op's category whose ops struct has the op
 * (non-NULL, inside ops->size) and whose capabilities list it. */
int engine_has(struct instance *in, int category, const struct llmops_op_desc *op);
/* Whether the instance's capabilities list `feature` in "features". */
int engine_has_feature(struct instance *in, const char *feature);
/* The first feature `op` needs for `input` (its `features` table) that the instance's
 * capabilities do not list, or NULL: engine_call refuses such a call with UNSUPPORTED
 * naming the feature and the instance; a handler may ask first, e.g. to name the body's
 * member. */
const struct llmops_op_feature *
engine_missing_feature(struct instance *in, const struct llmops_op_desc *op, json_t *input);
/* 0 when the instance has every feature `op` needs for `input`; else -1 with err filled as
 * engine_call refuses it (UNSUPPORTED, `OP with MEMBER needs feature "F", which instance I
 * (module M) does not list in its capabilities`), so a handler can refuse before it stores
 * anything. */
int engine_check_features(struct instance *in, const struct llmops_op_desc *op, json_t *input,
                          struct llmops_error *err);

/* The one call path. Calls `op` of `in` with `input` (borrowed): 0 with *out (an object, the
 * caller's), or -1 with err filled and *out NULL. An input the table refuses is
 * LLMOPS_ERR_INVALID with err->message naming the member path, the op and the instance; an op
 * the module lacks or its capabilities do not list is LLMOPS_ERR_UNSUPPORTED naming the op
 * and the instance (both map to VALIDATION_FAILED). Every call that reached the module counts
 * in the metrics and feeds the breaker (app NULL: metrics only, for the CLI). */
int engine_call(struct app *app, struct instance *in, int category, const struct llmops_op_desc *op,
                json_t *input, json_t **out, struct llmops_error *err);
/* engine_call by op name. A category without an operations table yet finds the op by its
 * ops-struct member name (the header's X-macro) and has no input validation; the capabilities
 * gate, the metrics and the breaker are as for any call. */
int engine_call_named(struct app *app, struct instance *in, int category, const char *op,
                      json_t *input, json_t **out, struct llmops_error *err);
/* engine_call_named in the instance's own category: the outbox's outbox_call_fn, for the
 * generic deliverer, watches and long operations. */
int engine_call_any(struct app *app, struct instance *in, const char *op, json_t *input,
                    json_t **out, struct llmops_error *err);

#endif
