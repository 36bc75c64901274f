/* Experiment tracking in the core: calling an experiment_tracking instance, the filter
 * language of run searches, and the checks and splitting of logged metrics, params and tags
 * shared by the API (tracking.c), training jobs (jobs.c), the outbox and llm-opsctl sync. */
#ifndef LLMOPS_TRACKING_CORE_H
#define LLMOPS_TRACKING_CORE_H

#include "app.h"
#include "llmops-tracking.h"

#include <jansson.h>

/* Calls operation `op` (a member name of struct llmops_tracking_ops) of `in` through the
 * engine's one call path (engine_call: validated against llmops_tracking_op_table, gated on
 * capabilities). Returns 0 with *out set, or -1 with err filled; an op the module lacks or
 * does not list is LLMOPS_ERR_UNSUPPORTED. Every outcome feeds the instance's circuit breaker
 * (app may be NULL: no breaker, for the CLI). */
int track_call(struct app *app, struct instance *in, const char *op, json_t *input, json_t **out,
               struct llmops_error *err);
/* Whether `in` is an initialised experiment_tracking instance that has `op`. */
int track_has_op(struct instance *in, const char *op);
/* The error envelope for a failed call: the plugin's code mapped to the API's, the
 * instance named. */
void track_error(struct req *r, const struct instance *in, const char *op,
                 const struct llmops_error *err);

/* Checks a log body {metrics?, params?, tags?} and splits it into batches within the
 * LLMOPS_TRACKING_BATCH_* limits, in order: params and tags first, then the metric points
 * as given. Metric points get timestamp_ms = now_ms and step 0 when absent; param values
 * that are numbers or booleans become strings. Returns an array of {metrics, params, tags}
 * (at least one element), or NULL with msg and field ("metrics[3].value") filled. */
json_t *track_split_log(json_t *body, int64_t now_ms, char *msg, size_t msgsize, char *field,
                        size_t fieldsize);

/* The idempotency key of the experiment `name` in `instance` ("exp-" + 40 hex digits of
 * SHA-256(instance "\n" name)): the API's create and the outbox's ensure use the same one, so
 * either finds what the other (or a killed attempt of its own) made. */
void track_experiment_key(const char *instance, const char *name, char key[64]);

/* How long a log body is remembered after it was last sent (its default timestamp kept). */
#define TRACK_LOG_BODY_HOURS 24

/* The now_ms to give track_split_log for log body `body` sent to the run with platform id
 * `object_id`: when a metric point lacks timestamp_ms, the time this same body (SHA-256 of
 * its canonical JSON: members sorted, no blanks) was first received for that run, recorded
 * now if it was not sent in the last TRACK_LOG_BODY_HOURS hours; so a resend, or copies sent
 * at once, make the same points, which the tool stores once. When every point has its
 * timestamp, nothing is recorded and *ms is now. Returns 0, or -1 with err. */
int track_log_default_ms(struct app *app, const char *object_id, json_t *body, int64_t *ms,
                         struct db_error *err);

/* The batches of log body r->body sent to the run `object_id`, split again with the body's
 * default time (track_log_default_ms) when it is not now_ms. Takes `batches` (split at
 * now_ms). Returns the batches, or NULL after answering r (503 or 500). */
json_t *track_log_rebatch(struct req *r, const char *object_id, json_t *batches, int64_t now_ms);

/* Parses the run filter language into the interface's clauses:
 *   filter := clause { AND clause }
 *   clause := FIELD op value
 *   FIELD  := metric.KEY | param.KEY | tag.KEY | attribute.NAME | NAME
 *             (plural prefixes metrics. params. tags. attributes. too; NAME is status,
 *             name, start_time_ms or end_time_ms); KEY is [A-Za-z0-9_.:/-]+ or `any`
 *   op     := < <= = != >= > LIKE ILIKE
 *   value  := a number, or a string in '' or "" (a doubled quote stands for itself)
 * Returns the clause array, or NULL with msg naming the character position. */
json_t *track_parse_filter(const char *s, char *msg, size_t msgsize);
/* Parses order_by entries "FIELD [ASC|DESC]" (FIELD as in the filter). */
json_t *track_parse_order_by(json_t *list, char *msg, size_t msgsize);

/* The cursor of a search across instances: "rs1." + the hex digits of the compact JSON of
 * `state` ({instance: [tool token or null, offset] or 0 when done}); malloc'd, NULL when out
 * of memory. decode gives the object back, or NULL for anything else (client bytes: it
 * checks the prefix, the digits and that the JSON is an object, at most 32 KiB). */
char *track_cursor_encode(json_t *state);
json_t *track_cursor_decode(const char *s);

/* Platform ids for tool objects (the objects table): the id of each external id of `kind`
 * held by `instance`, adopting (recording) the ones not seen before. Fills ids (an object
 * external id -> platform id). Returns 0, or -1 with err. */
int track_platform_ids(struct app *app, const char *kind, const char *env, const char *instance,
                       json_t *external_ids, json_t *ids, struct db_error *err);

#endif
