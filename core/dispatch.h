/* Calling plugins: every outcome feeds the instance's circuit breaker; a trip moves the
 * (environment, category) pairs the instance serves to their fallback, audited. */
#ifndef LLMOPS_DISPATCH_H
#define LLMOPS_DISPATCH_H

#include "app.h"

/* Records the outcome of one call to `in` (err NULL or code LLMOPS_OK: success). Tool-side
 * failures (unavailable, tool error, internal) count against the breaker; client errors
 * (invalid, not found, conflict) do not. */
void dispatch_outcome(struct app *app, struct instance *in, const struct llmops_error *err);
/* Probes instances whose breaker has been open for [breaker] open_seconds; with
 * auto_close, a healthy one gets back what the breaker took from it. Cheap when no breaker
 * is open. */
void dispatch_tick(struct app *app);

#endif
