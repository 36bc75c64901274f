/*
 * llmops-tracking.h — the experiment_tracking category: experiments, runs, params, tags and
 * metric histories.
 *
 * Modules: tracking-pg (the platform's own tables, through host->db_exec) and mlflow (the
 * MLflow Tracking REST API 2.x, 2.9 and later). The interface follows what both can do:
 * MLflow's data model, with its quirks absorbed by the mlflow module (string experiment
 * ids, omitted empty members, NaN, silently ignored statuses, its filter language).
 */
#ifndef LLMOPS_TRACKING_H
#define LLMOPS_TRACKING_H

#include "llmops-ops.h"
#include "llmops-plugin.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The conventions every category interface follows (calls, ids, idempotency, pages, values,
 * errors, capabilities, long operations, levels), llmops_op_fn and LLMOPS_OPS_HAS are in
 * llmops-plugin.h. */

#define LLMOPS_TRACKING_ABI 1
#define LLMOPS_TRACKING_ABI_OLDEST 1

/* MLflow 2.x server limits, checked by the core, which splits larger client batches. */
#define LLMOPS_TRACKING_BATCH_MAX_METRICS 1000
#define LLMOPS_TRACKING_BATCH_MAX_PARAMS 100
#define LLMOPS_TRACKING_BATCH_MAX_TAGS 100
#define LLMOPS_TRACKING_BATCH_MAX_ENTRIES 1000 /* metrics + params + tags in one call */
#define LLMOPS_TRACKING_KEY_MAX 250            /* bytes: param, tag and metric keys */
#define LLMOPS_TRACKING_PARAM_VALUE_MAX 6000   /* bytes */
#define LLMOPS_TRACKING_TAG_VALUE_MAX 5000     /* bytes */
#define LLMOPS_TRACKING_NAME_MAX 250           /* bytes: experiment and run names */
/* Platform limits. */
#define LLMOPS_TRACKING_MAX_RESULTS 1000          /* search_experiments, search_runs */
#define LLMOPS_TRACKING_HISTORY_MAX_RESULTS 25000 /* get_metric_history */
#define LLMOPS_TRACKING_MAX_CLAUSES 20
#define LLMOPS_TRACKING_MAX_ORDER_BY 3
#define LLMOPS_TRACKING_MAX_EXPERIMENT_IDS 100
/* The tag that holds the idempotency key on MLflow experiments and runs; answers leave it
 * out of `tags`. */
#define LLMOPS_TRACKING_KEY_TAG "llmops.idempotency_key"

/*
 * Objects in answers
 *   Experiment  {external_id, name, lifecycle, tags, created_ms?, updated_ms?, links?, tool?}
 *   RunInfo     {external_id, experiment_id, name, status, lifecycle, start_time_ms,
 *                end_time_ms? (set once the run ended), user?, links?,
 *                tool? (mlflow: {artifact_uri})}
 *   Run         RunInfo + {params, tags, metrics: [Metric], the latest point of each key}
 *   Metric      {key!, value!, timestamp_ms!, step (integer, default 0)}
 *
 * Members
 *   external_id    experiment: MLflow's decimal string ("0" is Default; never turned into
 *                  a number); run: MLflow's run_id, 32 lowercase hex. tracking-pg makes
 *                  ids of the same shapes.
 *   experiment_id  the tool id of a run's experiment.
 *   name           1..LLMOPS_TRACKING_NAME_MAX bytes. A run created without one gets a
 *                  name from the tool (MLflow invents "salty-bug-69"), so answers have one.
 *   lifecycle      "active" | "deleted". In search input also "all"; absent: "active".
 *   status         "RUNNING" | "SCHEDULED" | "FINISHED" | "FAILED" | "KILLED". Input never
 *                  has SCHEDULED (answers may: runs other MLflow clients made). MLflow
 *                  ignores an unknown status with a 200, so the mlflow module checks too.
 *   user           string: the platform user the run is for (MLflow's user_id).
 *   tags           object: key (1..LLMOPS_TRACKING_KEY_MAX bytes) -> string (at most
 *                  LLMOPS_TRACKING_TAG_VALUE_MAX bytes). Answers include tags the tool sets
 *                  itself (MLflow's mlflow.runName, ...) but never LLMOPS_TRACKING_KEY_TAG.
 *   params         object: key (1..LLMOPS_TRACKING_KEY_MAX bytes) -> string (at most
 *                  LLMOPS_TRACKING_PARAM_VALUE_MAX bytes). A logged param never changes.
 *   key            a metric key, 1..LLMOPS_TRACKING_KEY_MAX bytes.
 *   value          a JSON number, or exactly one of the strings "NaN", "Infinity",
 *                  "-Infinity": JSON has no such numbers, jansson's json_real() refuses
 *                  them, and a bare NaN token makes MLflow store 0 and answer 200. Values
 *                  read back as written: MLflow answers +/-Infinity as +/-1.7976931348623157e308
 *                  (DBL_MAX), which the mlflow module turns back into the strings;
 *                  tracking-pg stores IEEE doubles.
 *   timestamp_ms   integer; likewise start_time_ms and end_time_ms. The core always sends
 *                  start_time_ms (MLflow stores 0 without it) and sends end_time_ms with
 *                  every terminal status.
 *   step           integer (64-bit, may be negative).
 *   filter         array (0..LLMOPS_TRACKING_MAX_CLAUSES) of clauses that must all hold
 *                  (MLflow has no OR), each {field!, key!, op!, value!}:
 *                    field "metric": op < <= = != >= >, value a number; compares the
 *                      latest point of the key;
 *                    field "param" or "tag": op = != LIKE ILIKE, value a string;
 *                    field "attribute": key "status" (op = !=, value a status), key "name"
 *                      (op = != LIKE ILIKE, value a string), key "start_time_ms" or
 *                      "end_time_ms" (op < <= = != >= >, value an integer).
 *                  LIKE: % matches any run of characters and _ one character, with case;
 *                  ILIKE ignores case. The core built and checked these clauses; the mlflow
 *                  module renders them in its filter language (keys in backquotes, values
 *                  quoted: metrics.`loss` < 0.5 and params.`lr` = '0.01') and answers
 *                  INVALID for a value it cannot quote; tracking-pg binds them as SQL
 *                  parameters. No raw tool filter string ever crosses this interface.
 *   order_by       array (0..LLMOPS_TRACKING_MAX_ORDER_BY) of {field!, key!, ascending
 *                  (boolean, default false)} with the fields and keys of `filter`. Absent
 *                  or empty: start_time_ms descending.
 */
struct llmops_tracking_ops {
    uint32_t size; /* sizeof(struct llmops_tracking_ops) as the module was built */

    /* create_experiment — required.
     *   in   idempotency_key!, name!, tags
     *   out  Experiment + {created}
     *   err  CONFLICT: another experiment has the name (MLflow keeps the names of deleted
     *        experiments and answers 400 RESOURCE_ALREADY_EXISTS); INVALID.
     *   mlflow keeps the key in tag LLMOPS_TRACKING_KEY_TAG: after a duplicate-name answer
     *   it reads the experiment by name and returns it when the tag matches. */
    llmops_op_fn *create_experiment;

    /* get_experiment — required.
     *   in   external_id!
     *   out  Experiment
     *   err  NOT_FOUND. */
    llmops_op_fn *get_experiment;

    /* search_experiments — required.
     *   in   name (exact), name_prefix (a literal prefix: a module whose tool reads % and _
     *        as wildcards filters again), lifecycle, max_results! (1..LLMOPS_TRACKING_MAX_RESULTS),
     *        page_token
     *   out  {experiments: [Experiment], next_page_token?}
     *   err  INVALID (page_token). */
    llmops_op_fn *search_experiments;

    /* set_experiment_tags — optional (not in the MLflow contract yet).
     *   in   external_id!, tags! (1..LLMOPS_TRACKING_BATCH_MAX_TAGS entries)
     *   out  {}
     *   err  NOT_FOUND; INVALID (a deleted experiment). */
    llmops_op_fn *set_experiment_tags;

    /* delete_experiment — optional. Marks it deleted (lifecycle "deleted"); MLflow keeps
     * its name taken.
     *   in   external_id!
     *   out  {deleted} */
    llmops_op_fn *delete_experiment;

    /* create_run — required. The run starts RUNNING, on the instance that holds its
     * experiment (the core routes it there whatever the flag says now).
     *   in   idempotency_key!, experiment_id!, name, start_time_ms!, user, tags
     *   out  Run + {created}
     *   err  NOT_FOUND (the experiment); INVALID (a deleted experiment).
     *   mlflow sends the key as tag LLMOPS_TRACKING_KEY_TAG in runs/create and finds it
     *   with runs/search (run_view_type ALL) in that experiment before creating. */
    llmops_op_fn *create_run;

    /* get_run — required.
     *   in   external_id!
     *   out  Run
     *   err  NOT_FOUND. */
    llmops_op_fn *get_run;

    /* update_run — required.
     *   in   external_id!, status ("RUNNING" | "FINISHED" | "FAILED" | "KILLED"), end_time_ms,
     *        name
     *   out  RunInfo
     *   err  NOT_FOUND; INVALID (a deleted run). */
    llmops_op_fn *update_run;

    /* delete_run — optional. Marks it deleted (lifecycle "deleted").
     *   in   external_id!
     *   out  {deleted} */
    llmops_op_fn *delete_run;

    /* log_batch — required. Metric points, params and tags in one call, within the
     * LLMOPS_TRACKING_BATCH_* limits: the core splits larger client batches, so a call
     * carries a bounded amount of JSON and needs no streaming shape.
     *   in   external_id!, metrics (array of Metric), params, tags
     *   out  {}
     *   err  NOT_FOUND (the run); CONFLICT: a param already has another value (MLflow's
     *        400 "Changing param values is not allowed"); INVALID (a deleted run).
     * The outbox may send a batch twice: replaying it must not add points (a point equal
     * in key, value, timestamp_ms and step to a stored one is the same point, as MLflow's
     * SQL store keys them), set params to other values or change tags. */
    llmops_op_fn *log_batch;

    /* get_metric_history — required. Every point of one key, by step then timestamp_ms.
     *   in   external_id! (the run), key!, max_results! (1..LLMOPS_TRACKING_HISTORY_MAX_RESULTS),
     *        page_token
     *   out  {metrics: [Metric], next_page_token?}; a key never logged gives an empty list
     *   err  NOT_FOUND (the run); INVALID (page_token).
     * MLflow 2.14 ignores max_results and answers every point: the mlflow module pages
     * itself (an offset in its token). */
    llmops_op_fn *get_metric_history;

    /* search_runs — required.
     *   in   experiment_ids! (1..LLMOPS_TRACKING_MAX_EXPERIMENT_IDS tool ids), filter,
     *        order_by, lifecycle, max_results! (1..LLMOPS_TRACKING_MAX_RESULTS), page_token
     *   out  {runs: [Run], next_page_token?}; no match: an empty list (MLflow answers {})
     *   err  INVALID (a value the module cannot express, page_token). */
    llmops_op_fn *search_runs;

    /* find_by_idempotency_key — required. The object a create made with this key, for the
     * outbox to bind an id whose create answer was lost.
     *   in   kind! ("experiment" | "run"), idempotency_key!, experiment_id (required for
     *        "run": MLflow searches runs only within named experiments)
     *   out  Experiment or Run
     *   err  NOT_FOUND: nothing carries the key. */
    llmops_op_fn *find_by_idempotency_key;
};

/* Every op in struct order, X(member, required): the names capabilities() lists. */
#define LLMOPS_TRACKING_OPS(X)                                                                     \
    X(create_experiment, 1)                                                                        \
    X(get_experiment, 1)                                                                           \
    X(search_experiments, 1)                                                                       \
    X(set_experiment_tags, 0)                                                                      \
    X(delete_experiment, 0)                                                                        \
    X(create_run, 1)                                                                               \
    X(get_run, 1)                                                                                  \
    X(update_run, 1)                                                                               \
    X(delete_run, 0)                                                                               \
    X(log_batch, 1)                                                                                \
    X(get_metric_history, 1)                                                                       \
    X(search_runs, 1)                                                                              \
    X(find_by_idempotency_key, 1)

/* The operations as data (llmops-ops.h): kind, object, flags and input members of each, in
 * the order of LLMOPS_TRACKING_OPS. The core checks every call's `in` against these before the
 * module sees it. The cross-member limit of log_batch (LLMOPS_TRACKING_BATCH_MAX_ENTRIES in
 * all) and the clauses' field/op/value pairs are checked by the core's tracking code. */
static inline const struct llmops_op_desc *llmops_tracking_op_table(size_t *n)
{
#define LLMOPS_T_ID_ LLMOPS_STR("external_id", LLMOPS_M_REQUIRED, 1, 255)
#define LLMOPS_T_NAME_(flags) LLMOPS_STR("name", flags, 1, LLMOPS_TRACKING_NAME_MAX)
#define LLMOPS_T_TOKEN_ LLMOPS_STR("page_token", 0, 1, 2048)
#define LLMOPS_T_TAGS_(min, max)                                                                   \
    LLMOPS_MAP("tags", 0, min, max, LLMOPS_TRACKING_KEY_MAX, tag_value, reserved)
    static const char *const reserved[] = {LLMOPS_TRACKING_KEY_TAG, NULL};
    static const char *const lifecycles[] = {"active", "deleted", "all", NULL};
    static const char *const statuses[] = {"RUNNING", "FINISHED", "FAILED", "KILLED", NULL};
    static const char *const kinds[] = {"experiment", "run", NULL};
    static const struct llmops_member tag_value[] = {
        LLMOPS_STR("", 0, 0, LLMOPS_TRACKING_TAG_VALUE_MAX)};
    static const struct llmops_member param_value[] = {
        LLMOPS_STR("", 0, 0, LLMOPS_TRACKING_PARAM_VALUE_MAX)};
    static const struct llmops_member id_only[] = {LLMOPS_T_ID_, LLMOPS_END};
    static const struct llmops_member create_experiment[] = {
        LLMOPS_IDKEY("idempotency_key", LLMOPS_M_REQUIRED), LLMOPS_T_NAME_(LLMOPS_M_REQUIRED),
        LLMOPS_T_TAGS_(0, LLONG_MAX), LLMOPS_END};
    static const struct llmops_member search_experiments[] = {
        LLMOPS_T_NAME_(0),
        LLMOPS_STR("name_prefix", 0, 0, LLMOPS_TRACKING_NAME_MAX),
        LLMOPS_ENUM("lifecycle", 0, lifecycles),
        LLMOPS_INT("max_results", LLMOPS_M_REQUIRED, 1, LLMOPS_TRACKING_MAX_RESULTS),
        LLMOPS_T_TOKEN_,
        LLMOPS_END};
    static const struct llmops_member set_experiment_tags[] = {
        LLMOPS_T_ID_,
        LLMOPS_MAP("tags", LLMOPS_M_REQUIRED, 1, LLMOPS_TRACKING_BATCH_MAX_TAGS,
                   LLMOPS_TRACKING_KEY_MAX, tag_value, reserved),
        LLMOPS_END};
    static const struct llmops_member create_run[] = {
        LLMOPS_IDKEY("idempotency_key", LLMOPS_M_REQUIRED),
        LLMOPS_STR("experiment_id", LLMOPS_M_REQUIRED, 1, 255),
        LLMOPS_T_NAME_(0),
        LLMOPS_INT_ANY("start_time_ms", LLMOPS_M_REQUIRED),
        LLMOPS_STR("user", 0, 0, 256),
        LLMOPS_T_TAGS_(0, LLONG_MAX),
        LLMOPS_END};
    static const struct llmops_member update_run[] = {
        LLMOPS_T_ID_, LLMOPS_ENUM("status", 0, statuses), LLMOPS_INT_ANY("end_time_ms", 0),
        LLMOPS_T_NAME_(0), LLMOPS_END};
    static const struct llmops_member metric[] = {
        LLMOPS_STR("key", LLMOPS_M_REQUIRED, 1, LLMOPS_TRACKING_KEY_MAX),
        LLMOPS_VALUE("value", LLMOPS_M_REQUIRED), LLMOPS_INT_ANY("timestamp_ms", LLMOPS_M_REQUIRED),
        LLMOPS_INT_ANY("step", 0), LLMOPS_END};
    static const struct llmops_member metric_element[] = {LLMOPS_OBJECT("", 0, metric)};
    static const struct llmops_member log_batch[] = {
        LLMOPS_T_ID_,
        LLMOPS_ARRAY("metrics", 0, 0, LLMOPS_TRACKING_BATCH_MAX_METRICS, metric_element),
        LLMOPS_MAP("params", 0, 0, LLMOPS_TRACKING_BATCH_MAX_PARAMS, LLMOPS_TRACKING_KEY_MAX,
                   param_value, NULL),
        LLMOPS_T_TAGS_(0, LLMOPS_TRACKING_BATCH_MAX_TAGS), LLMOPS_END};
    static const struct llmops_member get_metric_history[] = {
        LLMOPS_T_ID_, LLMOPS_STR("key", LLMOPS_M_REQUIRED, 1, LLMOPS_TRACKING_KEY_MAX),
        LLMOPS_INT("max_results", LLMOPS_M_REQUIRED, 1, LLMOPS_TRACKING_HISTORY_MAX_RESULTS),
        LLMOPS_T_TOKEN_, LLMOPS_END};
    static const struct llmops_member experiment_id[] = {LLMOPS_STR("", 0, 1, 255)};
    static const struct llmops_member clause[] = {
        LLMOPS_STR("field", LLMOPS_M_REQUIRED, 1, 16), LLMOPS_STR("key", LLMOPS_M_REQUIRED, 1, 250),
        LLMOPS_STR("op", LLMOPS_M_REQUIRED, 1, 8), LLMOPS_ANY("value", LLMOPS_M_REQUIRED),
        LLMOPS_END};
    static const struct llmops_member clause_element[] = {LLMOPS_OBJECT("", 0, clause)};
    static const struct llmops_member order[] = {LLMOPS_STR("field", LLMOPS_M_REQUIRED, 1, 16),
                                                 LLMOPS_STR("key", LLMOPS_M_REQUIRED, 1, 250),
                                                 LLMOPS_BOOL("ascending", 0), LLMOPS_END};
    static const struct llmops_member order_element[] = {LLMOPS_OBJECT("", 0, order)};
    static const struct llmops_member search_runs[] = {
        LLMOPS_ARRAY("experiment_ids", LLMOPS_M_REQUIRED, 1, LLMOPS_TRACKING_MAX_EXPERIMENT_IDS,
                     experiment_id),
        LLMOPS_ARRAY("filter", 0, 0, LLMOPS_TRACKING_MAX_CLAUSES, clause_element),
        LLMOPS_ARRAY("order_by", 0, 0, LLMOPS_TRACKING_MAX_ORDER_BY, order_element),
        LLMOPS_ENUM("lifecycle", 0, lifecycles),
        LLMOPS_INT("max_results", LLMOPS_M_REQUIRED, 1, LLMOPS_TRACKING_MAX_RESULTS),
        LLMOPS_T_TOKEN_,
        LLMOPS_END};
    static const struct llmops_member find_by_key[] = {
        LLMOPS_ENUM("kind", LLMOPS_M_REQUIRED, kinds),
        LLMOPS_IDKEY("idempotency_key", LLMOPS_M_REQUIRED), LLMOPS_STR("experiment_id", 0, 1, 255),
        LLMOPS_END};
#define LLMOPS_T_OP_(...) LLMOPS_OP(struct llmops_tracking_ops, __VA_ARGS__)
    static const struct llmops_op_desc table[] = {
        LLMOPS_T_OP_(create_experiment, 1, CREATE, "exp", LLMOPS_OP_IDEMPOTENT, create_experiment),
        LLMOPS_T_OP_(get_experiment, 1, READ, "exp", 0, id_only),
        LLMOPS_T_OP_(search_experiments, 1, LIST, "exp", 0, search_experiments),
        LLMOPS_T_OP_(set_experiment_tags, 0, UPDATE, "exp", 0, set_experiment_tags),
        LLMOPS_T_OP_(delete_experiment, 0, DELETE, "exp", 0, id_only),
        LLMOPS_T_OP_(create_run, 1, CREATE, "run", LLMOPS_OP_IDEMPOTENT | LLMOPS_OP_OUTBOX,
                     create_run),
        LLMOPS_T_OP_(get_run, 1, READ, "run", 0, id_only),
        LLMOPS_T_OP_(update_run, 1, UPDATE, "run", LLMOPS_OP_OUTBOX, update_run),
        LLMOPS_T_OP_(delete_run, 0, DELETE, "run", 0, id_only),
        LLMOPS_T_OP_(log_batch, 1, UPDATE, "run", LLMOPS_OP_OUTBOX, log_batch),
        LLMOPS_T_OP_(get_metric_history, 1, READ, "run", 0, get_metric_history),
        LLMOPS_T_OP_(search_runs, 1, LIST, "run", 0, search_runs),
        LLMOPS_T_OP_(find_by_idempotency_key, 1, READ, NULL, LLMOPS_OP_INTERNAL, find_by_key),
    };
#undef LLMOPS_T_OP_
#undef LLMOPS_T_ID_
#undef LLMOPS_T_NAME_
#undef LLMOPS_T_TOKEN_
#undef LLMOPS_T_TAGS_
    *n = sizeof table / sizeof table[0];
    return table;
}

/* The name of the first required op that `ops` lacks (NULL, or beyond ops->size), or NULL
 * when it has them all: the loader refuses the module with that name. */
static inline const char *llmops_tracking_missing_op(const struct llmops_tracking_ops *ops)
{
    if (!ops)
        return "ops";
#define LLMOPS_REQUIRED_OP_(member, required)                                                      \
    if ((required) && !LLMOPS_OPS_HAS(struct llmops_tracking_ops, ops, member))                    \
        return #member;
    LLMOPS_TRACKING_OPS(LLMOPS_REQUIRED_OP_)
#undef LLMOPS_REQUIRED_OP_
    return NULL;
}

#ifdef __cplusplus
}
#endif

#endif /* LLMOPS_TRACKING_H */
