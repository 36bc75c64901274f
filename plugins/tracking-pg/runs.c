/* tracking-pg: runs, their params, tags and metric points. Run ids are 32 lowercase hex
 * (a random UUID's digits); the idempotency key is a column, unique within the experiment. */
#include "tpg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* ------------------------------------------------------------------ reading runs */

static json_t *one_run(struct tpg *t, const char *op, const char *sql, int n, const char *const *p,
                       struct llmops_error *err)
{
    PGresult *r = tpg_exec(t, op, sql, n, p, err);
    if (!r)
        return NULL;
    json_t *run = NULL;
    if (PQntuples(r) == 0) {
        llmops_fail(err, LLMOPS_ERR_NOT_FOUND, 0, 0, "no such run");
    } else {
        run = tpg_json_column(r, 0, 0, err);
        if (run && tpg_finish_object(run, err) < 0) {
            json_decref(run);
            run = NULL;
        }
    }
    PQclear(r);
    return run;
}

json_t *tpg_run_by_id(struct tpg *t, const char *op, const char *id, struct llmops_error *err)
{
    if (!tpg_is_run_id(id)) {
        llmops_fail(err, LLMOPS_ERR_NOT_FOUND, 0, 0, "no such run");
        return NULL;
    }
    const char *p[] = {id};
    return one_run(t, op, "SELECT " TPG_RUN_JSON " FROM tracking_pg_runs r WHERE r.run_id = $1", 1,
                   p, err);
}

static json_t *run_by_key(struct tpg *t, const char *op, const char *experiment_id, const char *key,
                          struct llmops_error *err)
{
    if (!tpg_is_experiment_id(experiment_id)) {
        llmops_fail(err, LLMOPS_ERR_NOT_FOUND, 0, 0, "no such experiment");
        return NULL;
    }
    const char *p[] = {experiment_id, key};
    json_t *run = one_run(t, op,
                          "SELECT " TPG_RUN_JSON " FROM tracking_pg_runs r"
                          " WHERE r.experiment_id = $1::bigint AND r.idempotency_key = $2",
                          2, p, err);
    if (!run && err->code == LLMOPS_ERR_NOT_FOUND)
        llmops_fail(err, LLMOPS_ERR_NOT_FOUND, 0, 0,
                    "no run of this experiment has this idempotency key");
    return run;
}

int tpg_get_run(void *state, json_t *in, json_t **out, struct llmops_error *err)
{
    const char *id = tpg_str(in, "external_id");
    *out = tpg_run_by_id(state, "get_run", id, err);
    return *out ? 0 : -1;
}

int tpg_find_by_idempotency_key(void *state, json_t *in, json_t **out, struct llmops_error *err)
{
    struct tpg *t = state;
    const char *kind = tpg_str(in, "kind"), *key = tpg_str(in, "idempotency_key"),
               *experiment_id = tpg_str(in, "experiment_id");
    if (strcmp(kind, "experiment") == 0) {
        *out = tpg_experiment_by_key(t, "find_by_idempotency_key", key, err);
    } else if (strcmp(kind, "run") == 0) {
        if (!experiment_id)
            return llmops_fail(err, LLMOPS_ERR_INVALID, 0, 0,
                               "experiment_id is required to find a run");
        *out = run_by_key(t, "find_by_idempotency_key", experiment_id, key, err);
    } else {
        return llmops_fail(err, LLMOPS_ERR_INVALID, 0, 0, "kind must be \"experiment\" or \"run\"");
    }
    return *out ? 0 : -1;
}

/* ------------------------------------------------------------------ creating runs */

/* A name for a run created without one, as MLflow makes them: "salty-bug-69". */
static void invent_name(char *buf, size_t size)
{
    static const char *const adjectives[] = {
        "able",   "bold",  "brave",  "bright", "calm",  "clever", "crisp", "eager",
        "fair",   "fancy", "gentle", "glad",   "grand", "happy",  "keen",  "kind",
        "lively", "lucky", "mellow", "merry",  "proud", "quick",  "quiet", "salty",
        "sharp",  "shy",   "silent", "sleek",  "swift", "tidy",   "vivid", "wise"};
    static const char *const nouns[] = {
        "ant",  "bass", "bat",  "bear", "bee",  "bird", "bug",   "carp", "cat",  "colt", "crab",
        "crow", "deer", "dove", "duck", "eel",  "elk",  "finch", "fox",  "frog", "goat", "hawk",
        "hen",  "lark", "lynx", "mole", "moth", "owl",  "ram",   "seal", "slug", "wolf"};
    unsigned char rnd[4] = {0};
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        memset(rnd, 7, sizeof rnd);
    unsigned num = ((unsigned)rnd[2] << 8 | rnd[3]) % 1000;
    snprintf(buf, size, "%s-%s-%u", adjectives[rnd[0] % 32], nouns[rnd[1] % 32], num);
}

int tpg_create_run(void *state, json_t *in, json_t **out, struct llmops_error *err)
{
    struct tpg *t = state;
    const char *key = tpg_str(in, "idempotency_key"), *experiment_id = tpg_str(in, "experiment_id"),
               *name = tpg_str(in, "name"), *user = tpg_str(in, "user");
    long long start = 0;
    tpg_int(in, "start_time_ms", &start);
    json_t *tags = tpg_map(in, "tags");
    char *tj = tpg_dump(tags);
    json_decref(tags);
    if (!tj)
        return llmops_fail(err, LLMOPS_ERR_INTERNAL, 0, 0, "out of memory");
    if (!tpg_is_experiment_id(experiment_id)) {
        free(tj);
        return llmops_fail(err, LLMOPS_ERR_NOT_FOUND, 0, 0, "no experiment has this id");
    }
    char invented[64], start_s[24];
    if (!name) {
        invent_name(invented, sizeof invented);
        name = invented;
    }
    snprintf(start_s, sizeof start_s, "%lld", start);
    const char *p[] = {experiment_id, name, start_s, user, key, tj};
    /* Inserts nothing when the key is taken in the experiment or the experiment is deleted;
     * the experiment row is share-locked so a delete waits for the run. */
    PGresult *r = tpg_exec(
        t, "create_run",
        "WITH e AS (SELECT experiment_id, lifecycle FROM tracking_pg_experiments"
        "  WHERE experiment_id = $1::bigint FOR SHARE),"
        " ins AS (INSERT INTO tracking_pg_runs (run_id, experiment_id, name, status, lifecycle,"
        "  start_time_ms, user_id, idempotency_key)"
        "  SELECT replace(gen_random_uuid()::text, '-', ''), e.experiment_id, $2, 'RUNNING',"
        "  'active', $3::bigint, $4, $5 FROM e WHERE e.lifecycle = 'active'"
        "  ON CONFLICT (experiment_id, idempotency_key) DO NOTHING RETURNING run_id),"
        " tags AS (INSERT INTO tracking_pg_run_tags (run_id, key, value)"
        "  SELECT ins.run_id, j.key, j.value FROM ins, jsonb_each_text($6::jsonb) j)"
        " SELECT (SELECT lifecycle FROM e), (SELECT run_id FROM ins)",
        6, p, err);
    free(tj);
    if (!r)
        return -1;
    int found = !PQgetisnull(r, 0, 0);
    int active = found && strcmp(PQgetvalue(r, 0, 0), "active") == 0;
    char run_id[40] = "";
    if (!PQgetisnull(r, 0, 1))
        snprintf(run_id, sizeof run_id, "%s", PQgetvalue(r, 0, 1));
    PQclear(r);
    if (!found)
        return llmops_fail(err, LLMOPS_ERR_NOT_FOUND, 0, 0, "no experiment has this id");
    json_t *run;
    if (run_id[0]) {
        run = tpg_run_by_id(t, "create_run", run_id, err);
    } else {
        run = run_by_key(t, "create_run", experiment_id, key, err);
        if (!run && err->code == LLMOPS_ERR_NOT_FOUND)
            return llmops_fail(err, active ? LLMOPS_ERR_TOOL : LLMOPS_ERR_INVALID, 0, active,
                               active ? "the run was not created: try again"
                                      : "the experiment is deleted");
    }
    if (!run)
        return -1;
    json_object_set_new(run, "created", json_boolean(run_id[0] != '\0'));
    *out = run;
    return 0;
}

/* ------------------------------------------------------------------ changing runs */

int tpg_update_run(void *state, json_t *in, json_t **out, struct llmops_error *err)
{
    struct tpg *t = state;
    const char *id = tpg_str(in, "external_id"), *status = tpg_str(in, "status"),
               *name = tpg_str(in, "name");
    long long end = 0;
    int has_end = tpg_int(in, "end_time_ms", &end);
    if (!tpg_is_run_id(id))
        return llmops_fail(err, LLMOPS_ERR_NOT_FOUND, 0, 0, "no such run");
    char end_s[24];
    snprintf(end_s, sizeof end_s, "%lld", end);
    const char *p[] = {id, status, has_end ? end_s : NULL, name};
    PGresult *r = tpg_exec(t, "update_run",
                           "WITH u AS (UPDATE tracking_pg_runs r SET"
                           "  status = coalesce($2, r.status),"
                           "  end_time_ms = coalesce($3::bigint, r.end_time_ms),"
                           "  name = coalesce($4, r.name)"
                           "  WHERE r.run_id = $1 AND r.lifecycle = 'active'"
                           "  RETURNING " TPG_RUN_INFO_JSON " AS info)"
                           " SELECT (SELECT lifecycle FROM tracking_pg_runs WHERE run_id = $1),"
                           " (SELECT info FROM u)",
                           4, p, err);
    if (!r)
        return -1;
    int found = !PQgetisnull(r, 0, 0), updated = !PQgetisnull(r, 0, 1);
    json_t *info = updated ? tpg_json_column(r, 0, 1, err) : NULL;
    PQclear(r);
    if (!found)
        return llmops_fail(err, LLMOPS_ERR_NOT_FOUND, 0, 0, "no such run");
    if (!updated)
        return llmops_fail(err, LLMOPS_ERR_INVALID, 0, 0, "the run is deleted");
    if (!info || tpg_finish_object(info, err) < 0) {
        json_decref(info);
        return -1;
    }
    *out = info;
    return 0;
}

int tpg_delete_run(void *state, json_t *in, json_t **out, struct llmops_error *err)
{
    struct tpg *t = state;
    const char *id = tpg_str(in, "external_id");
    int deleted = 0;
    if (tpg_is_run_id(id)) {
        const char *p[] = {id};
        PGresult *r = tpg_exec(t, "delete_run",
                               "WITH d AS (UPDATE tracking_pg_runs SET lifecycle = 'deleted'"
                               "  WHERE run_id = $1 AND lifecycle = 'active' RETURNING 1)"
                               " SELECT count(*) FROM d",
                               1, p, err);
        if (!r)
            return -1;
        deleted = strcmp(PQgetvalue(r, 0, 0), "0") != 0;
        PQclear(r);
    }
    *out = json_pack("{s:b}", "deleted", deleted);
    return 0;
}

/* ------------------------------------------------------------------ metrics, params, tags */

/* The metrics of a batch as the jsonb tracking_pg_log_batch reads: values as float8 text. */
static json_t *batch_metrics(json_t *in, size_t *count, struct llmops_error *err)
{
    json_t *m, *rows = json_array();
    size_t i;
    *count = 0;
    json_array_foreach(json_object_get(in, "metrics"), i, m)
    {
        const char *key = tpg_str(m, "key");
        long long ts = 0, step = 0;
        int has_step;
        double value;
        tpg_int(m, "timestamp_ms", &ts);
        has_step = tpg_int(m, "step", &step);
        if (tpg_metric_value(json_object_get(m, "value"), &value) < 0) {
            json_decref(rows);
            llmops_fail(err, LLMOPS_ERR_INTERNAL, 0, 0, "a metric value the core let through");
            return NULL;
        }
        char v[40];
        tpg_format_double(value, v, sizeof v);
        json_array_append_new(rows,
                              json_pack("{s:s,s:s,s:I,s:I}", "key", key, "value", v, "timestamp_ms",
                                        (json_int_t)ts, "step", (json_int_t)(has_step ? step : 0)));
    }
    *count = json_array_size(rows);
    return rows;
}

int tpg_log_batch(void *state, json_t *in, json_t **out, struct llmops_error *err)
{
    struct tpg *t = state;
    const char *id;
    json_t *params = NULL, *tags = NULL, *metrics;
    size_t nmetrics;
    id = tpg_str(in, "external_id");
    params = tpg_map(in, "params");
    tags = tpg_map(in, "tags");
    metrics = batch_metrics(in, &nmetrics, err);
    if (!metrics) {
        json_decref(params);
        json_decref(tags);
        return -1;
    }
    size_t total = nmetrics + json_object_size(params) + json_object_size(tags);
    char *pj = tpg_dump(params), *tj = tpg_dump(tags), *mj = tpg_dump(metrics);
    json_decref(params);
    json_decref(tags);
    json_decref(metrics);
    int rc = 0;
    if (!pj || !tj || !mj) {
        rc = llmops_fail(err, LLMOPS_ERR_INTERNAL, 0, 0, "out of memory");
    } else if (total > LLMOPS_TRACKING_BATCH_MAX_ENTRIES) {
        char msg[160];
        snprintf(msg, sizeof msg, "a batch holds at most %d metrics, params and tags together",
                 LLMOPS_TRACKING_BATCH_MAX_ENTRIES);
        rc = llmops_fail(err, LLMOPS_ERR_INVALID, 0, 0, msg);
    } else if (!tpg_is_run_id(id)) {
        rc = llmops_fail(err, LLMOPS_ERR_NOT_FOUND, 0, 0, "no such run");
    } else {
        const char *p[] = {id, pj, tj, mj};
        PGresult *r = tpg_exec(t, "log_batch",
                               "SELECT tracking_pg_log_batch($1, $2::jsonb, $3::jsonb, $4::jsonb)",
                               4, p, err);
        if (!r) {
            rc = -1;
        } else {
            const char *res = PQgetvalue(r, 0, 0);
            if (strcmp(res, "not_found") == 0) {
                rc = llmops_fail(err, LLMOPS_ERR_NOT_FOUND, 0, 0, "no such run");
            } else if (strcmp(res, "deleted") == 0) {
                rc = llmops_fail(err, LLMOPS_ERR_INVALID, 0, 0, "the run is deleted");
            } else if (strncmp(res, "conflict:", 9) == 0) {
                char msg[400], q[320]; /* at most 250 characters, whole, within msg */
                snprintf(msg, sizeof msg,
                         "param '%s' was logged with another value; a param never changes",
                         llmops_quote(q, sizeof q, res + 9, 250));
                rc = llmops_fail(err, LLMOPS_ERR_CONFLICT, 0, 0, msg);
            } else if (strcmp(res, "ok") != 0) {
                rc = llmops_fail(err, LLMOPS_ERR_INTERNAL, 0, 0,
                                 "tracking-pg: log_batch answered an unknown result");
            }
            PQclear(r);
        }
    }
    free(pj);
    free(tj);
    free(mj);
    if (rc == 0)
        *out = json_object();
    return rc;
}

int tpg_get_metric_history(void *state, json_t *in, json_t **out, struct llmops_error *err)
{
    struct tpg *t = state;
    const char *id, *key, *token;
    long long max = LLMOPS_TRACKING_HISTORY_MAX_RESULTS;
    id = tpg_str(in, "external_id");
    key = tpg_str(in, "key");
    tpg_int(in, "max_results", &max);
    token = tpg_str(in, "page_token");
    if (!tpg_is_run_id(id))
        return llmops_fail(err, LLMOPS_ERR_NOT_FOUND, 0, 0, "no such run");
    /* The token: the last point answered, as "step.timestamp_ms.value-hex". */
    size_t dlen = strlen(id) + strlen(key) + 2;
    char *digest = malloc(dlen);
    if (!digest)
        return llmops_fail(err, LLMOPS_ERR_INTERNAL, 0, 0, "out of memory");
    snprintf(digest, dlen, "%s\n%s", id, key);
    char fields[128], step_s[24] = "", ts_s[24] = "", value_s[40] = "";
    int after = 0;
    if (token) {
        char *part[3] = {NULL};
        long long a, b;
        double d;
        int ok = tpg_token_read(token, "h1", digest, fields, sizeof fields) == 0;
        if (ok) {
            part[0] = fields;
            part[1] = strchr(part[0], '.');
            part[2] = part[1] ? strchr(part[1] + 1, '.') : NULL;
            ok = part[2] != NULL;
        }
        if (ok) {
            *part[1]++ = '\0';
            *part[2]++ = '\0';
            ok = tpg_parse_ll(part[0], &a) == 0 && tpg_parse_ll(part[1], &b) == 0 &&
                 tpg_hex_double(part[2], &d) == 0;
        }
        if (!ok) {
            free(digest);
            return llmops_fail(err, LLMOPS_ERR_INVALID, 0, 0,
                               "page_token is not a token of this history");
        }
        snprintf(step_s, sizeof step_s, "%lld", a);
        snprintf(ts_s, sizeof ts_s, "%lld", b);
        tpg_format_double(d, value_s, sizeof value_s);
        after = 1;
    }
    char limit[24];
    snprintf(limit, sizeof limit, "%lld", max + 1);
    const char *p[] = {id, key, after ? step_s : NULL, ts_s, value_s, limit};
    /* No row: no such run; one row of nulls: no point (after the token). */
    PGresult *r =
        tpg_exec(t, "get_metric_history",
                 "SELECT m.step, m.timestamp_ms, encode(float8send(m.value), 'hex')"
                 " FROM tracking_pg_runs r LEFT JOIN LATERAL (SELECT step, timestamp_ms, value"
                 "  FROM tracking_pg_metrics WHERE run_id = r.run_id AND key = $2"
                 "  AND ($3::bigint IS NULL OR (step, timestamp_ms, value) >"
                 "   ($3::bigint, nullif($4, '')::bigint, nullif($5, '')::float8))"
                 "  ORDER BY step, timestamp_ms, value LIMIT $6::int) m ON true"
                 " WHERE r.run_id = $1",
                 6, p, err);
    if (!r) {
        free(digest);
        return -1;
    }
    int n = PQntuples(r);
    if (n == 0) {
        PQclear(r);
        free(digest);
        return llmops_fail(err, LLMOPS_ERR_NOT_FOUND, 0, 0, "no such run");
    }
    json_t *list = json_array();
    int rc = 0;
    for (int i = 0; i < n && i < max && !PQgetisnull(r, i, 0); i++) {
        double d;
        if (tpg_hex_double(PQgetvalue(r, i, 2), &d) < 0) {
            rc = llmops_fail(err, LLMOPS_ERR_INTERNAL, 0, 0, "tracking-pg: a bad metric value");
            break;
        }
        json_array_append_new(
            list, json_pack("{s:s,s:o,s:I,s:I}", "key", key, "value", tpg_value_json(d),
                            "timestamp_ms", (json_int_t)strtoll(PQgetvalue(r, i, 1), NULL, 10),
                            "step", (json_int_t)strtoll(PQgetvalue(r, i, 0), NULL, 10)));
    }
    if (rc == 0) {
        *out = json_pack("{s:o}", "metrics", list);
        if (n > max) {
            char next[256];
            snprintf(fields, sizeof fields, "%s.%s.%s", PQgetvalue(r, (int)max - 1, 0),
                     PQgetvalue(r, (int)max - 1, 1), PQgetvalue(r, (int)max - 1, 2));
            tpg_token_make(next, sizeof next, "h1", digest, fields);
            json_object_set_new(*out, "next_page_token", json_string(next));
        }
    } else {
        json_decref(list);
    }
    PQclear(r);
    free(digest);
    return rc;
}
