/* Calling plugins: every outcome feeds the instance's circuit breaker; a trip moves the
 * (environment, category) pairs the instance serves to their fallback, audited. The request
 * whose call opened the breaker only records the outcome; the flag write happens after its
 * answer is sent (dispatch_run_pending, from app_after), or at the latest at the start of the
 * next request or jobs-process tick (dispatch_tick). dispatch.c never calls back into app.c. */
#ifndef LLMOPS_DISPATCH_H
#define LLMOPS_DISPATCH_H

#include "app.h"

/* Records the outcome of one call to `in` (err NULL or code LLMOPS_OK: success). Tool-side
 * failures (unavailable, tool error, internal) count against the breaker; client errors
 * (invalid, not found, conflict) do not. A call that opens the breaker marks the instance's
 * trip pending (in->trip_pending): no database work here. */
void dispatch_outcome(struct app *app, struct instance *in, const struct llmops_error *err);
/* dispatch_outcome plus the shared metrics of one call: llmops_plugin_calls_total and
 * llmops_plugin_call_duration_seconds by instance, category and operation. app may be NULL
 * (the CLI: metrics only). */
void dispatch_call_done(struct app *app, struct instance *in, const char *op,
                        const struct llmops_error *err, int64_t duration_us);
/* Labels plugin="..",category=".." of an instance (escaped), for metrics. */
void dispatch_labels(const struct instance *in, char *out, size_t size);
/* Whether a trip is pending; dispatch_run_pending carries out each (the flag writes). */
int dispatch_pending(const struct app *app);
void dispatch_run_pending(struct app *app);
/* Runs pending trips first, then probes instances whose breaker has been open for [breaker]
 * open_seconds; with auto_close, a healthy one gets back what the breaker took from it. Cheap when
 * no breaker is open. */
void dispatch_tick(struct app *app);

#endif
