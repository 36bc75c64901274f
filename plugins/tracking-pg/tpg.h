/* tracking-pg: the platform's own experiment tracker, in PostgreSQL tables reached through
 * host->db_exec (migrations/tracking-pg). Shared parts of the module's files. */
#ifndef TPG_H
#define TPG_H

#include "llmops-plugin.h"
#include "llmops-tracking.h"

#include <jansson.h>
#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

/* The migration that creates the tables; health and errors name it. */
#define TPG_MIGRATION "migrations/tracking-pg/0001_tracking.sql"

struct tpg {
    const struct llmops_host *host;
};

/* ------------------------------------------------------------------ database (tpg.c) */

/* Runs one parameterised statement for op `op`. Returns the result (PQclear it), or NULL with
 * err filled: UNAVAILABLE (retryable) when the database cannot be reached, TOOL when the
 * module's tables are missing, INTERNAL otherwise; the database's own text goes to the log,
 * never into err. */
PGresult *tpg_exec(struct tpg *t, const char *op, const char *sql, int nparams,
                   const char *const *params, struct llmops_error *err);
/* Parses a json/jsonb text column. NULL when it is not JSON (a bug: err INTERNAL). */
json_t *tpg_json_column(PGresult *r, int row, int col, struct llmops_error *err);
/* A Run or Experiment object read from SQL: drops nulls and turns the metric values (hex of
 * float8send) into numbers or "NaN"/"Infinity"/"-Infinity". Returns 0 or -1 (err INTERNAL). */
int tpg_finish_object(json_t *obj, struct llmops_error *err);

/* ------------------------------------------------------------------ values (tpg.c) */

/* A metric value from JSON: a number or one of the three strings. Returns 0 or -1. */
int tpg_metric_value(json_t *v, double *out);
/* A double as float8 reads it back exactly ("%.17g", "NaN", "Infinity", "-Infinity"). */
void tpg_format_double(double d, char *buf, size_t size);
/* A double as an answer's value: a JSON number, or one of the three strings. */
json_t *tpg_value_json(double d);
/* The 16 hex digits of float8send (big-endian IEEE 754) into a double. Returns 0 or -1. */
int tpg_hex_double(const char *hex, double *out);

/* ------------------------------------------------------------------ reading `in`
 *
 * The core checked `in` against llmops_tracking_op_table before the call (types, bounds,
 * enums, required members, no NUL, never the idempotency tag): these only read it. */

/* A string member, or NULL when absent. */
static inline const char *tpg_str(json_t *in, const char *member)
{
    return json_string_value(json_object_get(in, member));
}
/* An integer member: 1 with *out, or 0 when absent. */
static inline int tpg_int(json_t *in, const char *member, long long *out)
{
    json_t *v = json_object_get(in, member);
    if (!json_is_integer(v))
        return 0;
    *out = json_integer_value(v);
    return 1;
}
/* A tags or params object as a new reference ({} when absent). */
static inline json_t *tpg_map(json_t *in, const char *member)
{
    json_t *v = json_object_get(in, member);
    return json_is_object(v) ? json_incref(v) : json_object();
}
/* A search's lifecycle: "active" when absent. */
static inline const char *tpg_lifecycle(json_t *in)
{
    const char *s = tpg_str(in, "lifecycle");
    return s ? s : "active";
}
/* A whole decimal integer ("-12"): no sign but '-', no spaces, no overflow. 0 or -1. */
int tpg_parse_ll(const char *s, long long *out);
/* Whether s is a tool id of the shapes tracking-pg makes. */
int tpg_is_experiment_id(const char *s);
int tpg_is_run_id(const char *s);
/* The dump of a JSON value for a jsonb parameter (free it). */
char *tpg_dump(json_t *v);

/* ------------------------------------------------------------------ page tokens (tpg.c) */

/* Tokens are "<kind>.<fields>.<check>": fields are [0-9a-f.-] only, and check binds them to
 * the search (digest: its members other than max_results and page_token), so a token from
 * another search, or altered, is refused. */
void tpg_token_make(char *out, size_t size, const char *kind, const char *digest,
                    const char *fields);
/* Copies the fields of a token of `kind` for `digest` into fields. Returns 0 or -1. */
int tpg_token_read(const char *token, const char *kind, const char *digest, char *fields,
                   size_t size);

/* ------------------------------------------------------------------ SQL fragments */

/* An Experiment as a json object, from alias e of tracking_pg_experiments. */
#define TPG_EXPERIMENT_JSON                                                                        \
    "json_build_object('external_id', e.experiment_id::text, 'name', e.name,"                      \
    " 'lifecycle', e.lifecycle, 'tags', coalesce((SELECT json_object_agg(t.key, t.value)"          \
    " FROM tracking_pg_experiment_tags t WHERE t.experiment_id = e.experiment_id), '{}'),"         \
    " 'created_ms', e.created_ms, 'updated_ms', e.updated_ms)"

#define TPG_RUN_INFO_MEMBERS                                                                       \
    "'external_id', r.run_id, 'experiment_id', r.experiment_id::text, 'name', r.name,"             \
    " 'status', r.status, 'lifecycle', r.lifecycle, 'start_time_ms', r.start_time_ms,"             \
    " 'end_time_ms', r.end_time_ms, 'user', r.user_id"

/* A RunInfo as a json object, from alias r of tracking_pg_runs. */
#define TPG_RUN_INFO_JSON "json_build_object(" TPG_RUN_INFO_MEMBERS ")"

/* A Run: RunInfo + params, tags and the latest point of each metric (values in hex). */
#define TPG_RUN_JSON                                                                               \
    "json_build_object(" TPG_RUN_INFO_MEMBERS ","                                                  \
    " 'params', coalesce((SELECT json_object_agg(p.key, p.value) FROM tracking_pg_params p"        \
    " WHERE p.run_id = r.run_id), '{}'),"                                                          \
    " 'tags', coalesce((SELECT json_object_agg(t.key, t.value) FROM tracking_pg_run_tags t"        \
    " WHERE t.run_id = r.run_id), '{}'),"                                                          \
    " 'metrics', coalesce((SELECT json_agg(json_build_object('key', m.key,"                        \
    " 'value', encode(float8send(m.value), 'hex'), 'timestamp_ms', m.timestamp_ms,"                \
    " 'step', m.step) ORDER BY m.key) FROM tracking_pg_latest_metrics m"                           \
    " WHERE m.run_id = r.run_id), '[]'))"

/* ------------------------------------------------------------------ operations */

/* experiments.c */
llmops_op_fn tpg_create_experiment, tpg_get_experiment, tpg_search_experiments,
    tpg_set_experiment_tags, tpg_delete_experiment;
/* The Experiment with this id, or NULL with err (NOT_FOUND). */
json_t *tpg_experiment_by_id(struct tpg *t, const char *op, const char *id,
                             struct llmops_error *err);
json_t *tpg_experiment_by_key(struct tpg *t, const char *op, const char *key,
                              struct llmops_error *err);

/* runs.c */
llmops_op_fn tpg_create_run, tpg_get_run, tpg_update_run, tpg_delete_run, tpg_log_batch,
    tpg_get_metric_history, tpg_find_by_idempotency_key;
json_t *tpg_run_by_id(struct tpg *t, const char *op, const char *id, struct llmops_error *err);

/* search.c */
llmops_op_fn tpg_search_runs;

#endif
