/* Calling an op of any category by its member name (opcall.c). The category engine's call
 * path replaces this once it lands; its signature is the outbox's outbox_call_fn. */
#ifndef LLMOPS_OPCALL_H
#define LLMOPS_OPCALL_H

#include "app.h"

#include <jansson.h>

/* Calls `op` of `in` (any category): 0 with *out set, or -1 with err filled; an op the
 * module lacks (NULL, or beyond the size it built its ops with) is LLMOPS_ERR_UNSUPPORTED.
 * The outcome feeds the instance's breaker and the call metrics. */
int opcall(struct app *app, struct instance *in, const char *op, json_t *input, json_t **out,
           struct llmops_error *err);
/* Whether `in` is initialised and has `op`. */
int opcall_has(const struct instance *in, const char *op);

#endif
