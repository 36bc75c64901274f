/* Serving: /llm-ops/v1/deployments on the category engine. A deployment is a platform row
 * (table deployments, migration 0008) owned by one serving instance (objects table, kind
 * "dep"); its ops go through engine_call (llmops_serving_op_table checks their input), its
 * create waits in the outbox while the tool is down (serving_outbox.c: exactly one object in
 * the tool, by idempotency key), and a watch (watch.h) moves it to ready or failed. What is
 * serving's own: resolving GPU types (gpu.h) and the capacity rule, canaries, the audit, the
 * automatic rollback of a canary the tool reports failed, and predict. */
#ifndef LLMOPS_SERVING_CORE_H
#define LLMOPS_SERVING_CORE_H

#include "app.h"

#include <jansson.h>

#define SERVING_CATEGORY "serving"
/* The actor of what the background process does by itself (audit rows). */
#define SERVING_ACTOR_BACKGROUND "llm-ops-background"
/* The watch of a deployment: get_deployment with this backoff, until this deadline. */
#define SERVING_WATCH_BASE_MS 200
#define SERVING_WATCH_MAX_MS 5000
#define SERVING_WATCH_DEADLINE_MS (30LL * 60 * 1000)
/* predict: the request and answer bodies, and the time, at most. */
#define SERVING_PREDICT_MAX_BYTES (1024 * 1024)
#define SERVING_PREDICT_TIMEOUT_MS 30000

/* Rolls back the canary of the live deployment `name` in `env` (an alert's
 * llmops_deployment label): traffic back to the stable revision, the canary removed, audited
 * with actor and reason. Returns 0 with *rolled_back 1 (a canary was rolled back) or 0 (there
 * was none: idempotent, so a repeated alert changes nothing), or -1 with err (NOT_FOUND for a
 * name no live deployment of env has; UNAVAILABLE when its instance is not running; the
 * tool's error otherwise). */
int serving_rollback_by_name(struct app *app, const char *env, const char *name, const char *actor,
                             const char *reason, int *rolled_back, struct llmops_error *err);

/* Serving's call path (an outbox_call_fn): engine_call in the serving category, and for an
 * instance with feature "serialized_writes" (rayserve) every write one at a time across all
 * processes (a PostgreSQL advisory lock per instance). */
int serving_call(struct app *app, struct instance *in, const char *op, json_t *input, json_t **out,
                 struct llmops_error *err);

/* The deployment's row updated from a tool answer (a Deployment of llmops-serving.h):
 * state (unless deleted), reason, url, ready_replicas, traffic, the canary's state, links.
 * A deployment or canary that became ready or failed is audited (action "ready" or
 * "failed") with `actor`: whoever observed it (the background's watch, or "llm-ops" when a
 * request's read saw it first). In the caller's transaction or alone. 0 or -1 with err. */
int serving_apply_answer(struct app *app, const char *id, json_t *answer, const char *actor,
                         struct db_error *err);
/* The actor of a transition a request observed (a GET that refreshed the row). */
#define SERVING_ACTOR_PLATFORM "llm-ops"
/* "REASON: MESSAGE" of a tool answer or canary (either alone) in buf, or NULL. */
char *serving_reason(json_t *o, char *buf, size_t size);

/* Starts (again) watching a deployment until its current spec, or its canary, is ready or
 * failed (an open watch of it is closed first). Returns 0 or -1 with err. */
int serving_watch(struct app *app, const char *id, struct db_error *err);

/* One audit row. before/after stolen (NULL: null). Returns 0 or -1 with err. */
int serving_audit(struct app *app, const char *id, const char *env, const char *actor,
                  const char *action, json_t *before, json_t *after, const char *reason,
                  struct db_error *err);

/* Rolls back the canary of deployment `id` (shared by the route, the alert entry point and
 * the background's automatic rollback): claims the row's canary, calls rollback_canary,
 * audits, and counts it in llmops_canary_transitions_total with `trigger` (one of the
 * SERVING_TRIGGER_*). 0 with *rolled_back, or -1 with err. */
int serving_rollback_id(struct app *app, const char *id, const char *actor, const char *reason,
                        const char *trigger, int *rolled_back, struct llmops_error *err);

/* The `trigger` label of llmops_canary_transitions_total: a request to the API, an alert
 * (POST /alerts), the background's rollback of a canary the tool reports failed. */
#define SERVING_TRIGGER_API "api"
#define SERVING_TRIGGER_ALERT "alert"
#define SERVING_TRIGGER_TOOL_FAILED "tool_failed"
/* One llmops_canary_transitions_total{environment, action, trigger}: action create,
 * traffic, promote or rollback. */
void serving_count_canary(const char *env, const char *action, const char *trigger);

/* The deploy op's input from a deployment's stored spec and the GPU resolved at its create
 * ({resource_name, node_selector} or NULL), under idempotency key `key`: the create route's
 * and a move's (sync serving). A new reference. */
json_t *serving_deploy_input(const char *key, const char *name, json_t *spec, json_t *gpu);

/* The background process: the outbox's deploy delivery and the watch hook (serving_outbox.c). */
int serving_outbox_register(void);

#endif
