/* Long operations (table operations, migration 0006): [jobs] ops run by the operations
 * lane of the background process, a child process of its own, so a multi-minute op never
 * delays the outbox, the watches or the probes. The module sees progress, checkpoint and
 * cancellation through struct llmops_op_ctx (plugin-api/llmops-operations.h). */
#ifndef LLMOPS_OPERATIONS_CORE_H
#define LLMOPS_OPERATIONS_CORE_H

#include "app.h"

#include <signal.h>

#define OPERATIONS_LEASE_SECONDS 5
#define OPERATIONS_MAX_ATTEMPTS 5

/* Adds an operation (state pending): `op` of `instance`, in env, with input; returns its id
 * (> 0), or -1 with err. */
long long operations_start(struct db *db, const char *env, const char *category, const char *op,
                           const char *instance, const char *object_id, json_t *input,
                           const char *who, struct db_error *err);

/* Claims and runs operations, one at a time, until *stop is set (SIGTERM: the op in hand
 * sees cancelled() and returns; its record goes back to pending for the next claim). */
void operations_lane_run(struct app *app, volatile sig_atomic_t *stop);

/* host->op_ctx: the context of the operation running on the instance, or NULL. */
const struct llmops_op_ctx *operations_host_ctx(const struct llmops_host *h);

#endif
