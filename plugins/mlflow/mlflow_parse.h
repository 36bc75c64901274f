/* mlflow_parse.h — the pure half of the mlflow module: classifying MLflow's answers, turning
 * its objects into the experiment_tracking interface's, and rendering clauses in its filter
 * language. No I/O and no host services, so fuzz/fuzz_mlflow.c compiles mlflow_parse.c in
 * directly. Everything here is hidden inside mlflow.so (the module exports one symbol). */
#ifndef LLMOPS_MLFLOW_PARSE_H
#define LLMOPS_MLFLOW_PARSE_H

#include "llmops-plugin.h"
#include "llmops-tracking.h"

#include <jansson.h>
#include <stddef.h>

/* MLflow answers +/-Infinity as +/-DBL_MAX. */
#define MLFLOW_DBL_MAX 1.7976931348623157e308

/* An answer that is not a success, classified: status by HTTP status first, then MLflow's
 * error_code. `what` is our own words (never tool text); `detail` is the tool's message for
 * the log only (it may carry SQL), on one line. */
struct mlflow_fault {
    enum llmops_status code;
    int tool_status;
    int retryable;
    char error_code[48]; /* MLflow's error_code when the body had a well-formed one, else "" */
    char what[128];
    char detail[320];
};

/* Returns 0 for a 2xx answer; otherwise 1 with *f filled. */
int mlflow_classify(int status, const char *body, size_t len, struct mlflow_fault *f);
/* The body as a JSON object, or NULL (not JSON, or not an object). */
json_t *mlflow_parse_object(const char *body, size_t len);

/* MLflow objects → the interface's (llmops-tracking.h). Each returns a new object, or NULL
 * with `why` filled when the input is malformed. ui_base (no trailing '/') makes links.ui. */
json_t *mlflow_experiment(json_t *e, const char *ui_base, char *why, size_t whysize);
json_t *mlflow_run_info(json_t *info, const char *ui_base, const char *name_fallback, char *why,
                        size_t whysize);
json_t *mlflow_run(json_t *run, const char *ui_base, char *why, size_t whysize);
json_t *mlflow_metric(json_t *m, char *why, size_t whysize);
/* The value of `key` in MLflow's [{key, value}] list, or NULL. */
const char *mlflow_tag_value(json_t *list, const char *key);
/* An id MLflow sends as a string (or, from some servers, an integer) into buf (1..255 bytes).
 * Returns 0, or -1 when it is neither. */
int mlflow_id(json_t *v, char *buf, size_t size);
#define MLFLOW_ID_MAX 255 /* bytes: an external_id (llmops-plugin.h) */

/* Metric values. value_in: MLflow's answer (a number, +/-DBL_MAX, "NaN", ...) → a number or
 * one of "NaN", "Infinity", "-Infinity"; NULL when it is none of these. value_out: the
 * interface's value → what MLflow takes (the same strings, or the number); NULL when invalid. */
json_t *mlflow_value_in(json_t *v);
json_t *mlflow_value_out(json_t *v);

/* A growing string. */
struct mlflow_buf {
    char *p;
    size_t len, cap;
    int oom;
};
void mlflow_buf_add(struct mlflow_buf *b, const char *s, size_t n);
void mlflow_buf_adds(struct mlflow_buf *b, const char *s);
/* Appends s quoted for MLflow's filter language: 'v', or "v" when v holds a single quote.
 * Returns -1 (nothing appended) for a value no quoting can carry: both quote characters, or
 * an odd run of backslashes at its end (the tokenizer would read an escaped quote). */
int mlflow_quote(struct mlflow_buf *b, const char *s);
/* The interface's filter clauses → "metrics.`loss` < 0.5 and params.`lr` = '0.01'" (malloc'd;
 * "" for none), or NULL with msg filled (INVALID: a value or key that cannot be quoted, a
 * clause the interface does not allow). */
char *mlflow_render_filter(json_t *clauses, char *msg, size_t msgsize);
/* order_by entries → MLflow's ["metrics.`loss` ASC", ...] (new array), or NULL with msg. */
json_t *mlflow_render_order_by(json_t *order_by, char *msg, size_t msgsize);
/* Percent-encodes s for a query string or URL path segment (malloc'd). */
char *mlflow_url_encode(const char *s);

/* The tool version in /version's body ("2.14.3\n") into out; -1 when it is not a version. */
int mlflow_version_parse(const char *body, size_t len, char *out, size_t outsize);

/* get_metric_history's own page tokens: the offset as decimal digits. NULL or "" is 0. */
int mlflow_history_token(const char *token, long long *offset);
/* Sorts Metric objects by step, then timestamp_ms, keeping the order of equal points. */
int mlflow_history_sort(json_t *metrics);

/* Drops from `points` (MLflow's [{key, value, timestamp, step}], as log-batch takes them) every
 * point equal to an earlier one of `points` or to one of `stored` (Metric objects read back,
 * either form; NULL for none): the same key, timestamp, step and value, where NaN equals NaN
 * and +/-Infinity equals +/-DBL_MAX, as MLflow's SQL store keys them. The order of the others
 * is kept. Returns how many were dropped, or -1 out of memory (points unchanged). */
long mlflow_points_drop(json_t *points, json_t *stored);

#endif
