/* /llm-ops/v1/training-jobs: the platform's training jobs. Creating one never waits for the
 * tracker: the job, the platform id of its run and the outbox rows that open the run are
 * written in one statement; the background process (deliver.c) delivers them. */
#include "gpu.h"
#include "handlers.h"
#include "log.h"
#include "owner.h"
#include "page.h"
#include "tracking.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TRACK LLMOPS_CATEGORY_EXPERIMENT_TRACKING

#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

/* One job as JSON, with its tracking state from the objects and outbox tables: the counts of
 * its run's pending and dead rows, the first error, and the first dead row with the number of
 * pending rows it holds back (an object's rows go out in order). */
static const char job_select[] =
    "SELECT j.id, j.environment, j.name, j.experiment, j.base_model, j.dataset, j.gpu_type,"
    " j.gpu_count, j.hyperparameters::text, coalesce(j.description, ''), j.status, j.run_id,"
    " coalesce(j.experiment_id, ''), coalesce(j.run_ui_url, ''), " TS("j.created_at") ", " TS(
        "j.updated_at") ", j.created_by, o.instance, coalesce(o.external_id, ''),"
                        " (SELECT count(*) FROM outbox b WHERE b.object_id = j.run_id AND b.state "
                        "= 'pending'),"
                        " (SELECT count(*) FROM outbox b WHERE b.object_id = j.run_id AND b.state "
                        "= 'dead'),"
                        " (SELECT b.last_error FROM outbox b WHERE b.object_id = j.run_id"
                        "   AND b.state IN ('pending', 'dead') AND b.last_error IS NOT NULL"
                        "   ORDER BY b.id LIMIT 1),"
                        " d.id, d.operation, d.last_error,"
                        " to_char(d.updated_at AT TIME ZONE 'UTC', "
                        "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),"
                        " (SELECT count(*) FROM outbox b WHERE b.object_id = j.run_id"
                        "   AND b.state = 'pending' AND b.id > d.id)"
                        " FROM training_jobs j JOIN objects o ON o.id = j.run_id"
                        " LEFT JOIN LATERAL (SELECT b.id, b.operation, b.last_error, b.updated_at"
                        "   FROM outbox b WHERE b.object_id = j.run_id AND b.state = 'dead'"
                        "   ORDER BY b.id LIMIT 1) d ON true";

/* tracking.blocked_by: the run's first dead row and the pending rows behind it, or null. */
static json_t *blocked_by(PGresult *res, int i, int *bad)
{
    if (PQgetisnull(res, i, 22))
        return json_null();
#define V(c) PQgetvalue(res, i, c)
    return json_pack("{s:I,s:s,s:o,s:s,s:I}", "outbox_id", (json_int_t)db_int(res, i, 22, bad),
                     "operation", V(23), "last_error",
                     json_str_or_null(PQgetisnull(res, i, 24) ? NULL : V(24)), "dead_since", V(25),
                     "blocked_rows", (json_int_t)db_int(res, i, 26, bad));
#undef V
}

/* tracking.state of row i of job_select. */
static const char *job_state(PGresult *res, int i, int *bad)
{
    if (db_int(res, i, 20, bad) > 0)
        return "dead";
    if (!PQgetvalue(res, i, 18)[0])
        return "pending";
    return db_int(res, i, 19, bad) > 0 ? "syncing" : "ready";
}

/* NULL (after logging) when a column is not what the query promises. */
static json_t *job_json(PGresult *res, int i)
{
    int bad = 0;
#define V(c) PQgetvalue(res, i, c)
    long long queued = db_int(res, i, 19, &bad);
    json_t *hp = json_loads(V(8), 0, NULL);
    const char *state = job_state(res, i, &bad);
    json_t *tracking =
        json_pack("{s:s,s:s,s:o,s:o,s:I,s:o,s:o}", "state", state, "instance", V(17),
                  "run_external_id", json_str_or_null(V(18)), "last_error",
                  json_str_or_null(PQgetisnull(res, i, 21) ? NULL : V(21)), "queued",
                  (json_int_t)queued, "blocked_by", blocked_by(res, i, &bad), "links",
                  V(13)[0] ? json_pack("{s:s}", "ui", V(13)) : json_object());
    json_t *j = json_pack(
        "{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:o,s:o,s:s,s:s,s:o,s:o,s:s,s:s,s:s,s:o}", "id", V(0),
        "environment", V(1), "name", V(2), "experiment", V(3), "base_model", V(4), "dataset", V(5),
        "gpu_type", V(6), "gpu_count", (json_int_t)db_int(res, i, 7, &bad), "hyperparameters",
        hp ? hp : json_object(), "description", json_str_or_null(V(9)), "status", V(10), "run_id",
        V(11), "experiment_id", json_str_or_null(V(12)), "links",
        V(13)[0] ? json_pack("{s:s}", "ui", V(13)) : json_object(), "created_at", V(14),
        "updated_at", V(15), "created_by", V(16), "tracking", tracking);
#undef V
    if (bad) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/* A job answer, or a 500 when job_json refused its row. */
static void job_answer(struct req *r, int status, const char *msg, PGresult *res)
{
    json_t *job = job_json(res, 0);
    PQclear(res);
    if (!job) {
        resp_error(r, API_INTERNAL, NULL, "the job's row could not be read (see the log)");
        return;
    }
    resp_success(r, status, msg, job);
}

static PGresult *select_job(struct req *r, const char *id)
{
    char sql[2048];
    snprintf(sql, sizeof sql, "%s WHERE j.id = $1", job_select);
    const char *params[] = {id};
    struct db_error err;
    PGresult *res = db_exec(&r->app->db, sql, 1, params, &err);
    if (!res) {
        resp_error(r, API_DATABASE_UNAVAILABLE, NULL, "cannot read the job: %s", err.message);
        return NULL;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        char q[UTIL_QUOTE_SIZE(64)];
        resp_error(r, API_NOT_FOUND, json_pack("{s:s}", "field", "id"), "no training job '%s'",
                   util_quote(q, sizeof q, id, 64));
        return NULL;
    }
    return res;
}

/* ------------------------------------------------------------------ create */

static int fail(struct req *r, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct req *r, const char *field, const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    resp_error(r, API_VALIDATION_FAILED, json_pack("{s:s}", "field", field), "%s", msg);
    return -1;
}

static int text_member(struct req *r, const char *name, size_t max, int required)
{
    json_t *v = json_object_get(r->body, name);
    if (!v && !required)
        return 0;
    const char *s = json_string_value(v);
    if (!s || !*s || strlen(s) > max) {
        return fail(r, name, "%s must be a string of 1-%zu bytes", name, max);
    }
    return 0;
}

static int validate_create(struct req *r)
{
    static const char *const known[] = {"name",     "experiment", "base_model",      "dataset",
                                        "gpu_type", "gpu_count",  "hyperparameters", "description",
                                        NULL};
    const char *k;
    json_t *v;
    json_object_foreach(r->body, k, v)
    {
        int ok = 0;
        for (const char *const *a = known; *a; a++)
            if (strcmp(*a, k) == 0)
                ok = 1;
        if (!ok) {
            char q[UTIL_QUOTE_SIZE(64)];
            resp_error(r, API_VALIDATION_FAILED, json_pack("{s:s}", "field", k),
                       "unknown member '%s'; known: name, experiment, base_model, dataset, "
                       "gpu_type, gpu_count, hyperparameters, description",
                       util_quote(q, sizeof q, k, 64));
            return -1;
        }
    }
    if (text_member(r, "name", LLMOPS_TRACKING_NAME_MAX, 1) < 0 ||
        text_member(r, "experiment", LLMOPS_TRACKING_NAME_MAX, 1) < 0 ||
        text_member(r, "base_model", 512, 1) < 0 || text_member(r, "dataset", 2048, 1) < 0 ||
        text_member(r, "gpu_type", 63, 1) < 0 || text_member(r, "description", 4096, 0) < 0)
        return -1;
    json_t *n = json_object_get(r->body, "gpu_count");
    if (!json_is_integer(n) || json_integer_value(n) < 1 || json_integer_value(n) > 1024)
        return fail(r, "gpu_count", "gpu_count must be an integer 1-1024");
    json_t *hp = json_object_get(r->body, "hyperparameters");
    if (hp && !json_is_object(hp))
        return fail(r, "hyperparameters", "hyperparameters must be an object of name: value");
    if (json_object_size(hp) > 500)
        return fail(r, "hyperparameters", "hyperparameters: at most 500 entries");
    json_object_foreach(hp, k, v)
    {
        if (!json_is_string(v) && !json_is_number(v) && !json_is_boolean(v)) {
            char q[UTIL_QUOTE_SIZE(200)];
            resp_error(r, API_VALIDATION_FAILED, json_pack("{s:s}", "field", "hyperparameters"),
                       "hyperparameters.%s must be a string, number or boolean",
                       util_quote(q, sizeof q, k, 200));
            return -1;
        }
    }
    return 0;
}

/* The GPU type must exist and be enabled in the job's environment (the capacity is checked
 * in the creating transaction: gpu_lock_usage). */
static int check_gpu(struct req *r)
{
    const char *name = json_string_value(json_object_get(r->body, "gpu_type"));
    struct gpu_pick g;
    json_t *valid = NULL;
    int disabled = 0;
    struct db_error err;
    int found = gpu_resolve(&r->app->db, r->env, name, &g, &valid, &disabled, &err);
    if (found < 0) {
        resp_error(r, API_DATABASE_UNAVAILABLE, NULL, "cannot read the GPU types: %s", err.message);
        return -1;
    }
    if (!found) {
        gpu_refuse_type(r, r->env, name, disabled, valid);
        return -1;
    }
    return 0;
}

/* ROLLBACK of the creating transaction, its failure ignored (the connection is reset on the
 * next error anyway). */
static void rollback(struct req *r)
{
    struct db_error e;
    PGresult *x = db_exec(&r->app->db, "ROLLBACK", 0, NULL, &e);
    if (x)
        PQclear(x);
}

/* The outbox rows that open a job's run: create_run, then the hyperparameters as params. */
static json_t *open_run_rows(struct req *r, const char *job_id, char *msg, size_t msgsize,
                             char *field, size_t fieldsize)
{
    json_t *b = r->body;
    json_t *tags =
        json_pack("{s:s,s:O,s:O,s:O,s:O,s:s}", "llmops.job_id", job_id, "llmops.base_model",
                  json_object_get(b, "base_model"), "llmops.dataset", json_object_get(b, "dataset"),
                  "llmops.gpu_type", json_object_get(b, "gpu_type"), "llmops.job_name",
                  json_object_get(b, "name"), "llmops.environment", r->env);
    json_t *rows = json_array();
    json_array_append_new(
        rows, json_pack("{s:s,s:{s:O,s:O,s:I,s:s,s:o}}", "op", "create_run", "payload",
                        "experiment", json_object_get(b, "experiment"), "name",
                        json_object_get(b, "name"), "start_time_ms", (json_int_t)(util_wall_ms()),
                        "user", r->who.name[0] ? r->who.name : "anonymous", "tags", tags));
    json_t *hp = json_object_get(b, "hyperparameters");
    if (json_object_size(hp) > 0) {
        json_t *body = json_pack("{s:O}", "params", hp);
        json_t *batches = track_split_log(body, 0, msg, msgsize, field, fieldsize);
        json_decref(body);
        if (!batches) {
            json_decref(rows);
            return NULL;
        }
        size_t i;
        json_t *x;
        json_array_foreach(batches, i, x)
            json_array_append_new(rows, json_pack("{s:s,s:O}", "op", "log_batch", "payload", x));
        json_decref(batches);
    }
    return rows;
}

void jobs_create(struct req *r)
{
    struct app *app = r->app;
    if (validate_create(r) < 0 || check_gpu(r) < 0)
        return;
    struct instance *in = owner_pick(app, r, r->env_index, TRACK, NULL);
    if (!in)
        return;
    char hex[25], job_id[32], run_id[32];
    if (util_random_hex(hex, 12) < 0)
        goto oom;
    snprintf(job_id, sizeof job_id, "job_%s", hex);
    if (util_random_hex(hex, 12) < 0)
        goto oom;
    snprintf(run_id, sizeof run_id, "run_%s", hex);
    char msg[300], field[300];
    json_t *rows = open_run_rows(r, job_id, msg, sizeof msg, field, sizeof field);
    if (!rows) {
        resp_error(r, API_VALIDATION_FAILED, json_pack("{s:s}", "field", "hyperparameters"),
                   "hyperparameters: %s", msg);
        return;
    }
    char *rows_text = json_dumps(rows, JSON_COMPACT);
    json_decref(rows);
    json_t *hp_in = json_object_get(r->body, "hyperparameters");
    char *hp = hp_in ? json_dumps(hp_in, JSON_COMPACT) : strdup("{}");
    char count[16];
    snprintf(count, sizeof count, "%lld",
             (long long)json_integer_value(json_object_get(r->body, "gpu_count")));
    json_t *b = r->body;
    const char *params[] = {run_id,
                            job_id,
                            r->env,
                            in->name,
                            r->who.name[0] ? r->who.name : "anonymous",
                            json_string_value(json_object_get(b, "name")),
                            json_string_value(json_object_get(b, "experiment")),
                            json_string_value(json_object_get(b, "base_model")),
                            json_string_value(json_object_get(b, "dataset")),
                            json_string_value(json_object_get(b, "gpu_type")),
                            count,
                            hp,
                            json_string_value(json_object_get(b, "description")),
                            rows_text};
    struct db_error err;
    /* The capacity check and the insert in one transaction under the GPU type's lock, so
     * concurrent creates (jobs and deployments) cannot both take the last GPUs. */
    long long used = 0, capacity = 0, want = json_integer_value(json_object_get(b, "gpu_count"));
    const char *gtype = json_string_value(json_object_get(b, "gpu_type"));
    PGresult *res = db_exec(&app->db, "BEGIN", 0, NULL, &err);
    if (res)
        PQclear(res);
    if (!res || gpu_lock_usage(&app->db, r->env, gtype, NULL, &used, &capacity, &err) < 0) {
        if (res)
            rollback(r);
        free(rows_text);
        free(hp);
        resp_error(r, API_DATABASE_UNAVAILABLE, NULL, "cannot store the job: %s", err.message);
        return;
    }
    if (used + want > capacity) {
        rollback(r);
        free(rows_text);
        free(hp);
        gpu_refuse_capacity(r, r->env, gtype, want, used, capacity);
        return;
    }
    /* One statement: the job exists exactly when its run's outbox rows do. */
    res = db_exec(
        &app->db,
        "WITH obj AS (INSERT INTO objects (id, kind, environment, category, instance, created_by)"
        "  VALUES ($1, 'run', $3, 'experiment_tracking', $4, $5) RETURNING id),"
        " job AS (INSERT INTO training_jobs (id, environment, name, experiment, base_model,"
        "  dataset, gpu_type, gpu_count, hyperparameters, description, run_id, created_by)"
        "  SELECT $2, $3, $6, $7, $8, $9, $10, $11::integer, $12::jsonb, $13, obj.id, $5 FROM obj"
        "  RETURNING id),"
        " ob AS (INSERT INTO outbox (category, object_id, environment, operation, payload,"
        "  binds_object)"
        "  SELECT 'experiment_tracking', obj.id, $3, t.x->>'op', t.x->'payload',"
        "  t.x->>'op' = 'create_run' FROM obj,"
        "  jsonb_array_elements($14::jsonb) WITH ORDINALITY AS t(x, n) ORDER BY t.n RETURNING id)"
        " SELECT (SELECT id FROM job), (SELECT count(*) FROM ob)",
        14, params, &err);
    free(rows_text);
    free(hp);
    if (res) {
        PQclear(res);
        res = db_exec(&app->db, "COMMIT", 0, NULL, &err);
    }
    if (!res) {
        rollback(r);
        resp_error(r, API_DATABASE_UNAVAILABLE, NULL, "cannot store the job: %s", err.message);
        return;
    }
    PQclear(res);
    res = select_job(r, job_id);
    if (!res)
        return;
    snprintf(msg, sizeof msg, "training job '%s' created; its run in %s is %s",
             json_string_value(json_object_get(b, "name")), in->name, job_state(res, 0, &(int){0}));
    resp_header(r, "Location: /llm-ops/v1/training-jobs/%s", job_id);
    job_answer(r, 201, msg, res);
    return;
oom:
    resp_error(r, API_INTERNAL, NULL, "cannot make an id");
}

/* ------------------------------------------------------------------ read */

void jobs_get(struct req *r)
{
    PGresult *res = select_job(r, r->path_params[0]);
    if (!res)
        return;
    job_answer(r, 200, "training job", res);
}

static const char *const job_statuses[] = {"QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"};

static int known_status(const char *s)
{
    for (size_t i = 0; s && i < UTIL_ARRAY_LEN(job_statuses); i++)
        if (strcmp(s, job_statuses[i]) == 0)
            return 1;
    return 0;
}

static json_t *status_list(void)
{
    json_t *a = json_array();
    for (size_t i = 0; i < UTIL_ARRAY_LEN(job_statuses); i++)
        json_array_append_new(a, json_string(job_statuses[i]));
    return a;
}

void jobs_list(struct req *r)
{
    const char *status = http_query(r, "status");
    struct page pg;
    if (page_args(r, PAGE_CURSOR_JOB_ID, 100, 1000, &pg) < 0)
        return;
    if (status && !known_status(status)) {
        char q[UTIL_QUOTE_SIZE(32)];
        resp_error(r, API_VALIDATION_FAILED,
                   json_pack("{s:s,s:o}", "field", "status", "valid", status_list()),
                   "unknown status '%s'; valid: QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED",
                   util_quote(q, sizeof q, status, 32));
        return;
    }
    char lim[24];
    snprintf(lim, sizeof lim, "%lld", pg.limit + 1);
    const char *params[] = {r->env, status, pg.after, lim};
    struct db_error err;
    if (pg.after) {
        /* a cursor is a job of this environment: anything else would answer an empty page */
        const char *p2[] = {pg.after, r->env};
        PGresult *c =
            db_exec(&r->app->db, "SELECT 1 FROM training_jobs WHERE id = $1 AND environment = $2",
                    2, p2, &err);
        if (!c) {
            resp_error(r, API_DATABASE_UNAVAILABLE, NULL, "cannot list the jobs: %s", err.message);
            return;
        }
        int found = PQntuples(c) == 1;
        PQclear(c);
        if (!found) {
            page_unknown_cursor(r, PAGE_CURSOR_JOB_ID, pg.after);
            return;
        }
    }
    char sql[2600];
    snprintf(sql, sizeof sql,
             "%s WHERE j.environment = $1 AND ($2::text IS NULL OR j.status = $2)"
             " AND ($3::text IS NULL OR (j.created_at, j.id) > (SELECT created_at, id FROM"
             " training_jobs WHERE id = $3)) ORDER BY j.created_at, j.id LIMIT $4::integer",
             job_select);
    PGresult *res = db_exec(&r->app->db, sql, 4, params, &err);
    if (!res) {
        resp_error(r, API_DATABASE_UNAVAILABLE, NULL, "cannot list the jobs: %s", err.message);
        return;
    }
    json_t *list = json_array();
    int n = PQntuples(res);
    int more = n > pg.limit;
    for (int i = 0; i < n && i < pg.limit; i++) {
        json_t *job = job_json(res, i);
        if (!job) {
            PQclear(res);
            json_decref(list);
            resp_error(r, API_INTERNAL, NULL, "a job's row could not be read (see the log)");
            return;
        }
        json_array_append_new(list, job);
    }
    json_t *data =
        json_pack("{s:o,s:o}", "training_jobs", list, "next_cursor",
                  more ? json_string(PQgetvalue(res, (int)pg.limit - 1, 0)) : json_null());
    PQclear(res);
    char msg[64];
    snprintf(msg, sizeof msg, "%zu training job%s in %s", json_array_size(list),
             json_array_size(list) == 1 ? "" : "s", r->env);
    resp_success(r, 200, msg, data);
}

/* ------------------------------------------------------------------ status and logging */

/* The run status that follows a job status. */
static const char *run_status(const char *job_status)
{
    if (strcmp(job_status, "SUCCEEDED") == 0)
        return "FINISHED";
    if (strcmp(job_status, "FAILED") == 0)
        return "FAILED";
    if (strcmp(job_status, "CANCELLED") == 0)
        return "KILLED";
    return "RUNNING";
}

static int terminal(const char *s)
{
    return strcmp(s, "SUCCEEDED") == 0 || strcmp(s, "FAILED") == 0 || strcmp(s, "CANCELLED") == 0;
}

/* The environment, GPU type and count of job r->path_params[0]: 0, or -1 after the answer. */
static int job_gpu(struct req *r, char env[64], char gtype[64], long long *count)
{
    const char *p[] = {r->path_params[0]};
    struct db_error err;
    PGresult *res = db_exec(&r->app->db,
                            "SELECT environment, gpu_type, gpu_count FROM training_jobs"
                            " WHERE id = $1",
                            1, p, &err);
    if (!res) {
        resp_error(r, API_DATABASE_UNAVAILABLE, NULL, "cannot read the job: %s", err.message);
        return -1;
    }
    int bad = 0, found = PQntuples(res) == 1;
    if (found) {
        snprintf(env, 64, "%s", PQgetvalue(res, 0, 0));
        snprintf(gtype, 64, "%s", PQgetvalue(res, 0, 1));
        *count = db_int(res, 0, 2, &bad);
    }
    PQclear(res);
    if (!found || bad) {
        resp_error(r, API_INTERNAL, NULL, "the job's GPUs could not be read");
        return -1;
    }
    return 0;
}

void jobs_update(struct req *r)
{
    const char *k;
    json_t *v;
    json_object_foreach(r->body, k, v)
    {
        if (strcmp(k, "status") != 0) {
            char q[UTIL_QUOTE_SIZE(64)];
            resp_error(r, API_VALIDATION_FAILED, json_pack("{s:s}", "field", k),
                       "unknown member '%s'; known: status", util_quote(q, sizeof q, k, 64));
            return;
        }
    }
    const char *status = json_string_value(json_object_get(r->body, "status"));
    if (!known_status(status)) {
        resp_error(r, API_VALIDATION_FAILED,
                   json_pack("{s:s,s:o}", "field", "status", "valid", status_list()),
                   "status must be one of QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED");
        return;
    }
    PGresult *res = select_job(r, r->path_params[0]);
    if (!res)
        return;
    char from[16];
    snprintf(from, sizeof from, "%s", PQgetvalue(res, 0, 10));
    PQclear(res);
    if (strcmp(from, status) == 0) {
        jobs_get(r);
        return;
    }
    if (terminal(from) || strcmp(status, "QUEUED") == 0) {
        resp_error(r, API_CONFLICT,
                   json_pack("{s:s,s:s,s:s}", "field", "status", "from", from, "to", status),
                   "a %s job cannot become %s", from, status);
        return;
    }
    char payload[160];
    if (terminal(status))
        snprintf(payload, sizeof payload, "{\"status\":\"%s\",\"end_time_ms\":%lld}",
                 run_status(status), (long long)util_wall_ms());
    else
        snprintf(payload, sizeof payload, "{\"status\":\"%s\"}", run_status(status));
    const char *params[] = {r->path_params[0], from, status, payload};
    struct db_error err;
    /* A job that starts takes its GPUs: checked under the type's lock, in the transaction
     * of the change (gpu.h). */
    int txn = strcmp(status, "RUNNING") == 0;
    if (txn) {
        char env[64], gtype[64];
        long long count = 0, used = 0, capacity = 0;
        if (job_gpu(r, env, gtype, &count) < 0)
            return;
        res = db_exec(&r->app->db, "BEGIN", 0, NULL, &err);
        if (res)
            PQclear(res);
        if (!res || gpu_lock_usage(&r->app->db, env, gtype, NULL, &used, &capacity, &err) < 0) {
            if (res)
                rollback(r);
            resp_error(r, API_DATABASE_UNAVAILABLE, NULL, "cannot update the job: %s", err.message);
            return;
        }
        if (used + count > capacity) {
            rollback(r);
            gpu_refuse_capacity(r, env, gtype, count, used, capacity);
            return;
        }
    }
    /* The status change and the run's update are one statement; `from` guards a race. */
    res = db_exec(&r->app->db,
                  "WITH j AS (UPDATE training_jobs SET status = $3, updated_at = now()"
                  "  WHERE id = $1 AND status = $2 RETURNING run_id, environment),"
                  " ob AS (INSERT INTO outbox (category, object_id, environment, operation,"
                  "  payload) SELECT 'experiment_tracking', run_id, environment, 'update_run',"
                  "  $4::jsonb FROM j RETURNING id)"
                  " SELECT count(*) FROM ob",
                  4, params, &err);
    if (res && txn) {
        PGresult *c = db_exec(&r->app->db, "COMMIT", 0, NULL, &err);
        if (c) {
            PQclear(c);
        } else {
            PQclear(res);
            res = NULL;
        }
    }
    if (!res) {
        if (txn)
            rollback(r);
        resp_error(r, API_DATABASE_UNAVAILABLE, NULL, "cannot update the job: %s", err.message);
        return;
    }
    int bad = 0;
    long long changed = db_int(res, 0, 0, &bad);
    PQclear(res);
    if (bad) {
        resp_error(r, API_INTERNAL, NULL, "the update could not be counted (see the log)");
        return;
    }
    if (!changed) {
        resp_error(r, API_CONFLICT, json_pack("{s:s}", "field", "status"),
                   "the job's status changed meanwhile; read it again");
        return;
    }
    res = select_job(r, r->path_params[0]);
    if (!res)
        return;
    char msg[96];
    snprintf(msg, sizeof msg, "training job is %s", status);
    job_answer(r, 200, msg, res);
}

/* Metrics, params and tags for the job's run go through the outbox, in order, whether the
 * run exists yet or not. */
void jobs_log(struct req *r)
{
    char msg[300], field[300];
    int64_t now_ms = util_wall_ms();
    json_t *batches = track_split_log(r->body, now_ms, msg, sizeof msg, field, sizeof field);
    if (!batches) {
        resp_error(r, API_VALIDATION_FAILED, json_pack("{s:s}", "field", field), "%s", msg);
        return;
    }
    const char *p1[] = {r->path_params[0]};
    struct db_error err;
    PGresult *res =
        db_exec(&r->app->db, "SELECT run_id FROM training_jobs WHERE id = $1", 1, p1, &err);
    if (!res) {
        json_decref(batches);
        resp_error(r, API_DATABASE_UNAVAILABLE, NULL, "cannot read the job: %s", err.message);
        return;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        json_decref(batches);
        char q[UTIL_QUOTE_SIZE(64)];
        resp_error(r, API_NOT_FOUND, json_pack("{s:s}", "field", "id"), "no training job '%s'",
                   util_quote(q, sizeof q, r->path_params[0], 64));
        return;
    }
    char run_id[64];
    snprintf(run_id, sizeof run_id, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    /* As POST /runs/{id}/log: a resend of the body queues the same points again, which the
     * tool stores once. */
    batches = track_log_rebatch(r, run_id, batches, now_ms);
    if (!batches)
        return;
    char *text = json_dumps(batches, JSON_COMPACT);
    size_t nb = json_array_size(batches), nm = 0, np = 0, nt = 0, i;
    json_t *b;
    json_array_foreach(batches, i, b)
    {
        nm += json_array_size(json_object_get(b, "metrics"));
        np += json_object_size(json_object_get(b, "params"));
        nt += json_object_size(json_object_get(b, "tags"));
    }
    json_decref(batches);
    const char *params[] = {r->path_params[0], text};
    res = db_exec(
        &r->app->db,
        "WITH j AS (SELECT run_id, environment FROM training_jobs WHERE id = $1),"
        " ob AS (INSERT INTO outbox (category, object_id, environment, operation, payload)"
        "  SELECT 'experiment_tracking', j.run_id, j.environment, 'log_batch', t.x FROM j,"
        "  jsonb_array_elements($2::jsonb) WITH ORDINALITY AS t(x, n) ORDER BY t.n RETURNING id)"
        " SELECT (SELECT count(*) FROM j), (SELECT count(*) FROM ob)",
        2, params, &err);
    free(text);
    if (!res) {
        resp_error(r, API_DATABASE_UNAVAILABLE, NULL, "cannot queue the values: %s", err.message);
        return;
    }
    int bad = 0;
    long long found = db_int(res, 0, 0, &bad);
    PQclear(res);
    if (bad) {
        resp_error(r, API_INTERNAL, NULL, "the queued rows could not be counted (see the log)");
        return;
    }
    if (!found) {
        char q[UTIL_QUOTE_SIZE(64)];
        resp_error(r, API_NOT_FOUND, json_pack("{s:s}", "field", "id"), "no training job '%s'",
                   util_quote(q, sizeof q, r->path_params[0], 64));
        return;
    }
    snprintf(msg, sizeof msg, "queued %zu metric points, %zu params, %zu tags for the job's run",
             nm, np, nt);
    resp_success(r, 202, msg,
                 json_pack("{s:s,s:i,s:i,s:i,s:i}", "id", r->path_params[0], "metrics", (int)nm,
                           "params", (int)np, "tags", (int)nt, "batches", (int)nb));
}
