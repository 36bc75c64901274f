/* tracking-pg: search_runs. The structured clauses of llmops-tracking.h become SQL whose
 * identifiers and operators come from the tables below and whose values are all bound
 * parameters ($n); page tokens carry an offset bound to the search. */
#include "tpg.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PARAMS 64

/* A statement being built: SQL text and its parameters. */
struct query {
    char *sql;
    size_t len, cap;
    const char *params[MAX_PARAMS];
    char *owned[MAX_PARAMS];
    int nparams;
    int failed; /* out of memory or too many parameters */
};

static void q_add(struct query *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void q_add(struct query *q, const char *fmt, ...)
{
    if (q->failed)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        q->failed = 1;
        return;
    }
    if (q->len + (size_t)n + 1 > q->cap) {
        size_t cap = (q->cap ? q->cap * 2 : 2048) + (size_t)n;
        char *p = realloc(q->sql, cap);
        if (!p) {
            q->failed = 1;
            return;
        }
        q->sql = p;
        q->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(q->sql + q->len, q->cap - q->len, fmt, ap);
    va_end(ap);
    q->len += (size_t)n;
}

/* Adds a parameter (copied); returns its number for $n, 0 when it failed. */
static int q_param(struct query *q, const char *value)
{
    if (q->failed || q->nparams == MAX_PARAMS) {
        q->failed = 1;
        return 0;
    }
    char *copy = strdup(value);
    if (!copy) {
        q->failed = 1;
        return 0;
    }
    q->owned[q->nparams] = copy;
    q->params[q->nparams] = copy;
    return ++q->nparams;
}

static void q_free(struct query *q)
{
    for (int i = 0; i < q->nparams; i++)
        free(q->owned[i]);
    free(q->sql);
}

/* ------------------------------------------------------------------ fields and operators */

enum kind { K_METRIC, K_PARAM, K_TAG, K_STATUS, K_NAME, K_TIME };

/* What each field compares: the SQL operator of each op and the value's type. */
static const struct {
    const char *op, *sql;
    int numeric; /* < <= >= > */
    int like;
} ops[] = {
    {"<", "<", 1, 0},   {"<=", "<=", 1, 0}, {"=", "=", 0, 0},       {"!=", "<>", 0, 0},
    {">=", ">=", 1, 0}, {">", ">", 1, 0},   {"LIKE", "LIKE", 0, 1}, {"ILIKE", "ILIKE", 0, 1},
};

/* The column of an attribute (fixed by code, never taken from input). */
static const struct {
    const char *key;
    enum kind kind;
    const char *column;
} attributes[] = {
    {"status", K_STATUS, "r.status"},
    {"name", K_NAME, "r.name"},
    {"start_time_ms", K_TIME, "r.start_time_ms"},
    {"end_time_ms", K_TIME, "r.end_time_ms"},
};

static const char *const statuses[] = {"RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"};

static int bad(struct llmops_error *err, const char *what, size_t i, const char *why)
{
    char msg[300];
    snprintf(msg, sizeof msg, "%s[%zu]: %s", what, i, why);
    return llmops_fail(err, LLMOPS_ERR_INVALID, 0, 0, msg);
}

/* field + key → kind, and for attributes the column. */
static int field_kind(json_t *c, const char *what, size_t i, enum kind *kind, const char **key,
                      const char **column, struct llmops_error *err)
{
    const char *field = json_string_value(json_object_get(c, "field"));
    *key = json_string_value(json_object_get(c, "key"));
    *column = NULL;
    if (!json_is_object(c) || !field || !*key)
        return bad(err, what, i, "needs a field and a key");
    size_t klen = json_string_length(json_object_get(c, "key"));
    if (strcmp(field, "attribute") == 0) {
        for (size_t a = 0; a < sizeof attributes / sizeof attributes[0]; a++) {
            if (strcmp(*key, attributes[a].key) == 0) {
                *kind = attributes[a].kind;
                *column = attributes[a].column;
                return 0;
            }
        }
        return bad(err, what, i, "an attribute is status, name, start_time_ms or end_time_ms");
    }
    if (klen == 0 || klen > LLMOPS_TRACKING_KEY_MAX || strlen(*key) != klen)
        return bad(err, what, i, "a key is 1 to 250 bytes");
    if (strcmp(field, "metric") == 0)
        *kind = K_METRIC;
    else if (strcmp(field, "param") == 0)
        *kind = K_PARAM;
    else if (strcmp(field, "tag") == 0)
        *kind = K_TAG;
    else
        return bad(err, what, i, "field is metric, param, tag or attribute");
    return 0;
}

/* The table of a metric, param or tag, whose rows are (run_id, key, value). */
static const char *table_of(enum kind k)
{
    return k == K_METRIC ? "tracking_pg_latest_metrics"
                         : (k == K_PARAM ? "tracking_pg_params" : "tracking_pg_run_tags");
}

/* One filter clause as " AND <condition>". */
static int add_clause(struct query *q, json_t *c, size_t i, struct llmops_error *err)
{
    enum kind kind;
    const char *key, *column;
    if (field_kind(c, "filter", i, &kind, &key, &column, err) < 0)
        return -1;
    const char *opname = json_string_value(json_object_get(c, "op"));
    int o = -1;
    for (size_t j = 0; opname && j < sizeof ops / sizeof ops[0]; j++)
        if (strcmp(opname, ops[j].op) == 0)
            o = (int)j;
    if (o < 0)
        return bad(err, "filter", i, "op is one of < <= = != >= > LIKE ILIKE");
    json_t *v = json_object_get(c, "value");
    const char *s = json_string_value(v);
    char num[40];
    int value;
    switch (kind) {
    case K_METRIC:
        if (ops[o].like || !json_is_number(v))
            return bad(err, "filter", i, "a metric compares with < <= = != >= > and a number");
        tpg_format_double(json_number_value(v), num, sizeof num);
        value = q_param(q, num);
        q_add(q,
              " AND EXISTS (SELECT 1 FROM tracking_pg_latest_metrics f WHERE f.run_id = r.run_id"
              " AND f.key = $%d AND f.value %s $%d::float8)",
              q_param(q, key), ops[o].sql, value);
        return 0;
    case K_PARAM:
    case K_TAG:
    case K_NAME:
        if (ops[o].numeric || !s || strlen(s) != json_string_length(v))
            return bad(err, "filter", i,
                       "params, tags and name compare with = != LIKE ILIKE and a string");
        value = q_param(q, s);
        /* LIKE: % and _ are the only wildcards (no escape character), as documented. */
        if (kind == K_NAME)
            q_add(q, " AND r.name %s $%d%s", ops[o].sql, value, ops[o].like ? " ESCAPE ''" : "");
        else
            q_add(q,
                  " AND EXISTS (SELECT 1 FROM %s f WHERE f.run_id = r.run_id AND f.key = $%d"
                  " AND f.value %s $%d%s)",
                  table_of(kind), q_param(q, key), ops[o].sql, value,
                  ops[o].like ? " ESCAPE ''" : "");
        return 0;
    case K_STATUS: {
        int known = 0;
        for (size_t j = 0; s && j < sizeof statuses / sizeof statuses[0]; j++)
            known |= strcmp(s, statuses[j]) == 0;
        if (ops[o].numeric || ops[o].like || !known)
            return bad(err, "filter", i, "status compares with = or != and a status");
        q_add(q, " AND r.status %s $%d", ops[o].sql, q_param(q, s));
        return 0;
    }
    case K_TIME:
        if (ops[o].like || !json_is_integer(v))
            return bad(err, "filter", i, "times compare with < <= = != >= > and an integer");
        snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
        q_add(q, " AND %s %s $%d::bigint", column, ops[o].sql, q_param(q, num));
        return 0;
    }
    return bad(err, "filter", i, "unknown field");
}

/* One order_by entry as "<expression> ASC|DESC NULLS LAST, ". Runs without the metric,
 * param or tag come last either way, as in MLflow. */
static int add_order(struct query *q, json_t *o, size_t i, struct llmops_error *err)
{
    enum kind kind;
    const char *key, *column;
    if (field_kind(o, "order_by", i, &kind, &key, &column, err) < 0)
        return -1;
    json_t *asc = json_object_get(o, "ascending");
    if (asc && !json_is_boolean(asc))
        return bad(err, "order_by", i, "ascending is a boolean");
    const char *dir = json_is_true(asc) ? "ASC" : "DESC";
    if (column)
        q_add(q, "%s%s %s NULLS LAST, ", column, kind == K_NAME ? " COLLATE \"C\"" : "", dir);
    else
        q_add(q,
              "(SELECT f.value FROM %s f WHERE f.run_id = r.run_id AND f.key = $%d)%s %s"
              " NULLS LAST, ",
              table_of(kind), q_param(q, key), kind == K_METRIC ? "" : " COLLATE \"C\"", dir);
    return 0;
}

/* ------------------------------------------------------------------ the operation */

/* experiment_ids as a jsonb array of the ids of tracking-pg's shape (others match nothing). */
static char *experiment_ids(json_t *in, struct llmops_error *err)
{
    json_t *ids = json_object_get(in, "experiment_ids"), *v;
    json_t *keep = json_array();
    size_t i;
    json_array_foreach(ids, i, v)
    {
        if (tpg_is_experiment_id(json_string_value(v)))
            json_array_append(keep, v);
    }
    char *s = tpg_dump(keep);
    json_decref(keep);
    if (!s)
        llmops_fail(err, LLMOPS_ERR_INTERNAL, 0, 0, "out of memory");
    return s;
}

int tpg_search_runs(void *state, json_t *in, json_t **out, struct llmops_error *err)
{
    struct tpg *t = state;
    const char *lifecycle, *token;
    long long max = LLMOPS_TRACKING_MAX_RESULTS;
    lifecycle = tpg_lifecycle(in);
    tpg_int(in, "max_results", &max);
    token = tpg_str(in, "page_token");
    json_t *filter = json_object_get(in, "filter"), *order = json_object_get(in, "order_by");
    char *ids = experiment_ids(in, err);
    if (!ids)
        return -1;

    /* The search a token belongs to: everything but max_results and page_token. */
    json_t *d =
        json_pack("{s:O,s:O?,s:O?,s:s}", "experiment_ids", json_object_get(in, "experiment_ids"),
                  "filter", filter, "order_by", order, "lifecycle", lifecycle);
    char *digest = d ? json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(d);
    long long offset = 0;
    if (digest && token) {
        char fields[32];
        if (tpg_token_read(token, "r1", digest, fields, sizeof fields) < 0 ||
            tpg_parse_ll(fields, &offset) < 0 || offset < 0 || offset > 1000000000000LL) {
            free(digest);
            free(ids);
            return llmops_fail(err, LLMOPS_ERR_INVALID, 0, 0,
                               "page_token is not a token of this search");
        }
    }

    struct query q = {0};
    q_add(&q,
          "SELECT " TPG_RUN_JSON " FROM tracking_pg_runs r WHERE r.experiment_id IN"
          " (SELECT jsonb_array_elements_text($%d::jsonb)::bigint)",
          q_param(&q, ids));
    free(ids);
    if (strcmp(lifecycle, "all") != 0)
        q_add(&q, " AND r.lifecycle = '%s'",
              strcmp(lifecycle, "deleted") == 0 ? "deleted" : "active");
    size_t i;
    json_t *c;
    int rc = 0;
    json_array_foreach(filter, i, c)
    {
        if (rc == 0)
            rc = add_clause(&q, c, i, err);
    }
    q_add(&q, " ORDER BY ");
    json_array_foreach(order, i, c)
    {
        if (rc == 0)
            rc = add_order(&q, c, i, err);
    }
    char limit[24], off[24];
    snprintf(limit, sizeof limit, "%lld", max + 1);
    snprintf(off, sizeof off, "%lld", offset);
    /* Then the default order, and the run id so that pages never overlap. */
    q_add(&q, "r.start_time_ms DESC, r.run_id LIMIT $%d::int OFFSET $%d::bigint",
          q_param(&q, limit), q_param(&q, off));
    if (rc == 0 && (q.failed || !digest))
        rc = llmops_fail(err, LLMOPS_ERR_INTERNAL, 0, 0, "out of memory");
    PGresult *r = NULL;
    if (rc == 0) {
        r = tpg_exec(t, "search_runs", q.sql, q.nparams, q.params, err);
        if (!r)
            rc = -1;
    }
    q_free(&q);
    if (rc < 0) {
        free(digest);
        return -1;
    }
    json_t *runs = json_array();
    int n = PQntuples(r);
    for (int row = 0; row < n && row < max; row++) {
        json_t *run = tpg_json_column(r, row, 0, err);
        if (!run || tpg_finish_object(run, err) < 0) {
            json_decref(run);
            rc = -1;
            break;
        }
        json_array_append_new(runs, run);
    }
    PQclear(r);
    if (rc < 0) {
        json_decref(runs);
        free(digest);
        return -1;
    }
    *out = json_pack("{s:o}", "runs", runs);
    if (n > max) {
        char fields[32], next[128];
        snprintf(fields, sizeof fields, "%lld", offset + max);
        tpg_token_make(next, sizeof next, "r1", digest, fields);
        json_object_set_new(*out, "next_page_token", json_string(next));
    }
    free(digest);
    return 0;
}
