/* The outbox: delivery by the jobs process, the /llm-ops/v1/outbox routes, and the jobs
 * process itself (llm-opsd --jobs). */
#include "outbox.h"

#include "build-config.h"
#include "dispatch.h"
#include "handlers.h"
#include "log.h"
#include "metrics.h"
#include "page.h"
#include "tracking.h"
#include "util.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

long long outbox_backoff_ms(const struct llmops_conf *conf, int attempts)
{
    long long d = conf->outbox_base_delay_ms;
    for (int i = 0; i < attempts && d < conf->outbox_max_delay_ms; i++)
        d *= 2;
    if (d > conf->outbox_max_delay_ms)
        d = conf->outbox_max_delay_ms;
    char hex[9];
    unsigned long x = 0;
    if (util_random_hex(hex, 4) == 0)
        x = strtoul(hex, NULL, 16);
    /* Full jitter over the upper half: several processes retrying the same tool spread out,
     * and no retry comes sooner than half the step. */
    return d / 2 + (long long)(x % (unsigned long)(d / 2 + 1));
}

/* ------------------------------------------------------------------ delivery */

struct row {
    char id[24];
    char object_id[64];
    char operation[16];
    char instance[64];
    char external_id[256];
    char environment[64];
    int attempts;
    json_t *payload;
};

static void rollback(struct app *app)
{
    struct db_error e;
    PGresult *r = db_exec(&app->db, "ROLLBACK", 0, NULL, &e);
    if (r)
        PQclear(r);
}

static int exec_ok(struct app *app, const char *sql, int n, const char *const *p,
                   struct db_error *e)
{
    PGresult *r = db_exec(&app->db, sql, n, p, e);
    if (!r)
        return -1;
    PQclear(r);
    return 0;
}

static void set_err(struct llmops_error *err, enum llmops_status code, int retryable,
                    const char *msg)
{
    memset(err, 0, sizeof *err);
    err->size = sizeof *err;
    err->code = code;
    err->retryable = retryable;
    snprintf(err->message, sizeof err->message, "%s", msg);
}

/* The experiment a job names, in the run's instance: found by name, else created with a key
 * derived from (instance, name), so a lost answer finds the same one next time. */
static int ensure_experiment(struct app *app, struct instance *in, const char *env,
                             const char *name, char ext[256], char pid[64],
                             struct llmops_error *err)
{
    for (int pass = 0; pass < 2; pass++) {
        json_t *input = json_pack("{s:s,s:i,s:s}", "name", name, "max_results", 1, "lifecycle",
                                  pass ? "all" : "active"),
               *out;
        int rc = track_call(app, in, "search_experiments", input, &out, err);
        json_decref(input);
        if (rc < 0)
            return -1;
        json_t *e = json_array_get(json_object_get(out, "experiments"), 0);
        const char *x = json_string_value(json_object_get(e, "external_id"));
        const char *lc = json_string_value(json_object_get(e, "lifecycle"));
        if (x && (!lc || strcmp(lc, "deleted") != 0)) {
            snprintf(ext, 256, "%s", x);
            json_decref(out);
            break;
        }
        int deleted = x != NULL;
        json_decref(out);
        if (deleted) {
            char m[400], q[200]; /* at most 200 characters, within m */
            snprintf(m, sizeof m,
                     "experiment '%s' is deleted in instance %s; restore it or use another "
                     "name",
                     util_quote(q, sizeof q, name, 200), in->name);
            set_err(err, LLMOPS_ERR_INVALID, 0, m);
            return -1;
        }
        if (pass == 1) {
            set_err(err, LLMOPS_ERR_TOOL, 1, "the experiment was neither found nor created");
            return -1;
        }
        char key[64];
        track_experiment_key(in->name, name, key);
        input = json_pack("{s:s,s:s,s:{}}", "idempotency_key", key, "name", name, "tags");
        rc = track_call(app, in, "create_experiment", input, &out, err);
        json_decref(input);
        if (rc == 0) {
            x = json_string_value(json_object_get(out, "external_id"));
            snprintf(ext, 256, "%s", x ? x : "");
            json_decref(out);
            if (!ext[0]) {
                set_err(err, LLMOPS_ERR_TOOL, 1, "create_experiment answered no id");
                return -1;
            }
            break;
        }
        if (err->code != LLMOPS_ERR_CONFLICT)
            return -1;
        /* made meanwhile by someone else: the second pass finds it */
    }
    json_t *ids = json_object(), *list = json_pack("[s]", ext);
    struct db_error dberr;
    int rc = track_platform_ids(app, "exp", env, in->name, list, ids, &dberr);
    const char *p = json_string_value(json_object_get(ids, ext));
    snprintf(pid, 64, "%s", p ? p : "");
    json_decref(ids);
    json_decref(list);
    if (rc < 0) {
        set_err(err, LLMOPS_ERR_INTERNAL, 1, dberr.message);
        return -1;
    }
    return 0;
}

static int deliver_create_run(struct app *app, struct instance *in, struct row *row,
                              struct llmops_error *err)
{
    if (row->external_id[0])
        return 0; /* bound by an earlier attempt whose outcome was not recorded */
    const char *exp_name = json_string_value(json_object_get(row->payload, "experiment"));
    char exp_ext[256], exp_pid[64];
    if (!exp_name) {
        set_err(err, LLMOPS_ERR_INVALID, 0, "the row names no experiment");
        return -1;
    }
    if (ensure_experiment(app, in, row->environment, exp_name, exp_ext, exp_pid, err) < 0)
        return -1;
    json_t *input = json_pack(
        "{s:s,s:s,s:O?,s:O?,s:O?,s:O?}", "idempotency_key", row->object_id, "experiment_id",
        exp_ext, "name", json_object_get(row->payload, "name"), "start_time_ms",
        json_object_get(row->payload, "start_time_ms"), "user",
        json_object_get(row->payload, "user"), "tags", json_object_get(row->payload, "tags"));
    /* O? writes null for a missing member; the interface wants it absent */
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(input, tmp, k, v) if (json_is_null(v)) json_object_del(input, k);
    json_t *out;
    int rc = track_call(app, in, "create_run", input, &out, err);
    json_decref(input);
    if (rc < 0)
        return -1;
    const char *ext = json_string_value(json_object_get(out, "external_id"));
    const char *ui = json_string_value(json_object_get(json_object_get(out, "links"), "ui"));
    char ui_copy[1024] = "";
    snprintf(ui_copy, sizeof ui_copy, "%s", ui ? ui : "");
    snprintf(row->external_id, sizeof row->external_id, "%s", ext ? ext : "");
    json_decref(out);
    if (!row->external_id[0]) {
        set_err(err, LLMOPS_ERR_TOOL, 1, "create_run answered no id");
        return -1;
    }
    struct db_error dberr;
    const char *p1[] = {row->object_id, row->external_id, in->name};
    /* A run adopted meanwhile (listed by a search before it was bound here) gives way. */
    if (exec_ok(app,
                "DELETE FROM objects WHERE instance = $3 AND kind = 'run' AND external_id = $2"
                " AND id <> $1 AND created_by = 'adopted'",
                3, p1, &dberr) < 0 ||
        exec_ok(app, "UPDATE objects SET external_id = $2 WHERE id = $1 AND $3::text IS NOT NULL",
                3, p1, &dberr) < 0) {
        set_err(err, LLMOPS_ERR_INTERNAL, 1, dberr.message);
        return -1;
    }
    const char *p2[] = {row->object_id, exp_pid[0] ? exp_pid : NULL, ui_copy[0] ? ui_copy : NULL};
    if (exec_ok(app,
                "UPDATE training_jobs SET experiment_id = $2, run_ui_url = $3, updated_at = now()"
                " WHERE run_id = $1",
                3, p2, &dberr) < 0) {
        set_err(err, LLMOPS_ERR_INTERNAL, 1, dberr.message);
        return -1;
    }
    return 0;
}

static int deliver(struct app *app, struct row *row, struct llmops_error *err)
{
    struct instance *in = plugins_find(&app->plugins, row->instance);
    if (!in || !in->initialised) {
        char m[300];
        snprintf(m, sizeof m, "instance %s is not running in the jobs process", row->instance);
        set_err(err, LLMOPS_ERR_UNAVAILABLE, 1, m);
        return -1;
    }
    if (strcmp(row->operation, "create_run") == 0)
        return deliver_create_run(app, in, row, err);
    if (!row->external_id[0]) {
        set_err(err, LLMOPS_ERR_UNAVAILABLE, 1, "the run is not created yet");
        return -1;
    }
    json_t *input = json_copy(row->payload), *out;
    json_object_set_new(input, "external_id", json_string(row->external_id));
    const char *op = strcmp(row->operation, "log_batch") == 0 ? "log_batch" : "update_run";
    int rc = track_call(app, in, op, input, &out, err);
    json_decref(input);
    json_decref(out);
    return rc;
}

static int is_retryable(const struct llmops_error *err)
{
    return err->code == LLMOPS_ERR_UNAVAILABLE || err->code == LLMOPS_ERR_INTERNAL ||
           (err->code == LLMOPS_ERR_TOOL && err->retryable);
}

/* One row: 1 tried, 0 none due, -1 database error. */
static int run_one(struct app *app)
{
    struct db_error dberr;
    if (exec_ok(app, "BEGIN", 0, NULL, &dberr) < 0)
        return -1;
    PGresult *res = db_exec(
        &app->db,
        "SELECT o.id, o.object_id, o.operation, o.payload::text, o.attempts, ob.instance,"
        " coalesce(ob.external_id, ''), o.environment FROM outbox o"
        " JOIN objects ob ON ob.id = o.object_id"
        " WHERE o.state = 'pending' AND o.next_attempt_at <= now()"
        " AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.object_id = o.object_id AND p.id < o.id"
        "  AND p.state IN ('pending', 'dead'))"
        " ORDER BY o.id LIMIT 1 FOR UPDATE OF o SKIP LOCKED",
        0, NULL, &dberr);
    if (!res) {
        rollback(app);
        return -1;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        rollback(app);
        return 0;
    }
    struct row row;
    memset(&row, 0, sizeof row);
    snprintf(row.id, sizeof row.id, "%s", PQgetvalue(res, 0, 0));
    snprintf(row.object_id, sizeof row.object_id, "%s", PQgetvalue(res, 0, 1));
    snprintf(row.operation, sizeof row.operation, "%s", PQgetvalue(res, 0, 2));
    row.payload = json_loads(PQgetvalue(res, 0, 3), 0, NULL);
    int bad = 0;
    row.attempts = (int)db_int(res, 0, 4, &bad);
    snprintf(row.instance, sizeof row.instance, "%s", PQgetvalue(res, 0, 5));
    snprintf(row.external_id, sizeof row.external_id, "%s", PQgetvalue(res, 0, 6));
    snprintf(row.environment, sizeof row.environment, "%s", PQgetvalue(res, 0, 7));
    PQclear(res);

    struct llmops_error err;
    int rc;
    if (bad) {
        json_decref(row.payload);
        rollback(app);
        return -1;
    }
    if (!row.payload) {
        set_err(&err, LLMOPS_ERR_INVALID, 0, "the row's payload is not JSON");
        rc = -1;
    } else {
        rc = deliver(app, &row, &err);
    }
    json_decref(row.payload);
    int ok;
    if (rc == 0) {
        const char *p[] = {row.id};
        char labels[96];
        snprintf(labels, sizeof labels, "operation=\"%s\",outcome=\"ok\"", row.operation);
        metrics_add("llmops_outbox_deliveries_total", labels, 1);
        ok = exec_ok(app,
                     "UPDATE outbox SET state = 'done', attempts = attempts + 1, last_error = NULL,"
                     " done_at = now(), updated_at = now() WHERE id = $1::bigint",
                     1, p, &dberr) == 0;
        log_debug("outbox %s: %s of %s delivered to %s", row.id, row.operation, row.object_id,
                  row.instance);
    } else {
        int retry = is_retryable(&err) && row.attempts + 1 < app->conf->outbox_max_attempts;
        char labels[96];
        snprintf(labels, sizeof labels, "operation=\"%s\",outcome=\"%s\"", row.operation,
                 retry ? "retry" : "dead");
        metrics_add("llmops_outbox_deliveries_total", labels, 1);
        if (!retry)
            metrics_add("llmops_outbox_dead_letters_total", "", 1);
        char delay[24], msg[700];
        snprintf(delay, sizeof delay, "%lld", outbox_backoff_ms(app->conf, row.attempts));
        snprintf(msg, sizeof msg, "%s (instance %s)", err.message, row.instance);
        const char *p[] = {row.id, msg, delay, retry ? "pending" : "dead"};
        ok = exec_ok(app,
                     "UPDATE outbox SET attempts = attempts + 1, last_error = $2, state = $4,"
                     " next_attempt_at = now() + $3::bigint * interval '1 millisecond',"
                     " updated_at = now() WHERE id = $1::bigint",
                     4, p, &dberr) == 0;
        if (retry)
            log_info("outbox %s: %s of %s failed (attempt %d): %s; next in %s ms", row.id,
                     row.operation, row.object_id, row.attempts + 1, msg, delay);
        else
            log_warning("outbox %s: %s of %s dead-lettered after %d attempt%s: %s", row.id,
                        row.operation, row.object_id, row.attempts + 1, row.attempts ? "s" : "",
                        msg);
    }
    if (!ok || exec_ok(app, "COMMIT", 0, NULL, &dberr) < 0) {
        rollback(app);
        return -1;
    }
    return 1;
}

int outbox_run_once(struct app *app, int max)
{
    int n = 0;
    while (n < max) {
        int rc = run_one(app);
        if (rc < 0)
            return -1;
        if (rc == 0)
            break;
        n++;
    }
    return n;
}

/* ------------------------------------------------------------------ the API */

static const char *const states[] = {"pending", "done", "dead", "discarded"};

#define TS_(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

static json_t *list_row(PGresult *res, int i, int *bad)
{
#define V(c) PQgetvalue(res, i, c)
#define N(c) (PQgetisnull(res, i, c) ? NULL : V(c))
    json_t *discarded = json_null();
    if (N(14))
        discarded = json_pack("{s:s,s:s,s:s}", "by", V(14), "at", V(15), "reason", V(16));
    return json_pack(
        "{s:I,s:s,s:s,s:s,s:s,s:I,s:s,s:o,s:s,s:s,s:s,s:o,s:o,s:I,s:o,s:o}", "id",
        (json_int_t)db_int(res, i, 0, bad), "object_id", V(1), "environment", V(2), "operation",
        V(3), "state", V(4), "attempts", (json_int_t)db_int(res, i, 5, bad), "next_attempt_at",
        V(6), "last_error", json_str_or_null(N(7)), "created_at", V(8), "updated_at", V(9),
        "instance", V(10), "external_id", json_str_or_null(V(11)), "training_job_id",
        json_str_or_null(N(12)), "metric_points", (json_int_t)db_int(res, i, 13, bad), "blocked_by",
        N(17) ? json_integer(db_int(res, i, 17, bad)) : json_null(), "discarded", discarded);
#undef N
#undef V
}

void outbox_list(struct req *r)
{
    const char *state = http_query(r, "state");
    const char *env = http_query(r, "env") ? r->env : NULL;
    struct page pg;
    if (page_args(r, PAGE_CURSOR_ROW_ID, 100, 1000, &pg) < 0)
        return;
    int known = !state;
    for (size_t i = 0; state && i < UTIL_ARRAY_LEN(states); i++)
        if (strcmp(state, states[i]) == 0)
            known = 1;
    if (!known) {
        char q[UTIL_QUOTE_SIZE(32)];
        resp_error(r, API_VALIDATION_FAILED,
                   json_pack("{s:s,s:[ssss]}", "field", "state", "valid", "pending", "done", "dead",
                             "discarded"),
                   "unknown state '%s'; valid: pending, done, dead, discarded",
                   util_quote(q, sizeof q, state, 32));
        return;
    }
    char lim[24], aft[24];
    snprintf(lim, sizeof lim, "%lld", pg.limit + 1);
    snprintf(aft, sizeof aft, "%lld", pg.after_id);
    const char *params[] = {state, env, aft, lim};
    struct db_error err;
    /* blocked_by: for a pending row, the first dead row of its object before it (which
     * holds it back until an admin retries or discards it). */
    PGresult *res = db_exec(
        &r->app->db,
        "SELECT o.id, o.object_id, o.environment, o.operation, o.state, o.attempts,"
        " " TS_("o.next_attempt_at") ", o.last_error, " TS_(
            "o.created_at") ","
                            " " TS_(
                                "o.updated_at") ", ob.instance, coalesce(ob.external_id, ''), j.id,"
                                                " coalesce(jsonb_array_length(o.payload->'metrics')"
                                                ", 0),"
                                                " o.discarded_by, " TS_(
                                                    "o.discarded_at") ", o.discard_reason,"
                                                                      " CASE WHEN o.state = "
                                                                      "'pending' THEN (SELECT "
                                                                      "min(d.id) FROM outbox d"
                                                                      "  WHERE d.object_id = "
                                                                      "o.object_id AND d.id < o.id "
                                                                      "AND d.state = 'dead') END"
                                                                      " FROM outbox o JOIN objects "
                                                                      "ob ON ob.id = o.object_id"
                                                                      " LEFT JOIN training_jobs j "
                                                                      "ON j.run_id = o.object_id"
                                                                      " WHERE ($1::text IS NULL OR "
                                                                      "o.state = $1) AND ($2::text "
                                                                      "IS NULL OR o.environment = "
                                                                      "$2)"
                                                                      " AND o.id > $3::bigint "
                                                                      "ORDER BY o.id LIMIT "
                                                                      "$4::integer",
        4, params, &err);
    if (!res) {
        resp_error(r, API_DATABASE_UNAVAILABLE, NULL, "cannot read the outbox: %s", err.message);
        return;
    }
    json_t *list = json_array();
    int n = PQntuples(res), more = n > pg.limit, bad = 0;
    for (int i = 0; i < n && i < pg.limit; i++)
        json_array_append_new(list, list_row(res, i, &bad));
    json_t *data =
        json_pack("{s:o,s:o}", "rows", list, "next_cursor",
                  more ? json_integer(db_int(res, (int)pg.limit - 1, 0, &bad)) : json_null());
    PQclear(res);
    const char *p2[] = {env};
    res = db_exec(&r->app->db,
                  "SELECT state, count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0)"
                  " FROM outbox WHERE state <> 'done' AND ($1::text IS NULL OR environment = $1)"
                  " GROUP BY state",
                  1, p2, &err);
    json_t *counts = json_pack("{s:i,s:i,s:i,s:f}", "pending", 0, "dead", 0, "discarded", 0,
                               "oldest_pending_seconds", 0.0);
    for (int i = 0; res && i < PQntuples(res); i++) {
        json_object_set_new(counts, PQgetvalue(res, i, 0), json_integer(db_int(res, i, 1, &bad)));
        if (strcmp(PQgetvalue(res, i, 0), "pending") == 0)
            json_object_set_new(counts, "oldest_pending_seconds",
                                json_real(db_real(res, i, 2, &bad)));
    }
    if (!res || bad) {
        json_decref(counts);
        json_decref(data);
        if (res)
            PQclear(res);
        if (res)
            resp_error(r, API_INTERNAL, NULL, "an outbox row could not be read (see the log)");
        else
            resp_error(r, API_DATABASE_UNAVAILABLE, NULL, "cannot count the outbox: %s",
                       err.message);
        return;
    }
    PQclear(res);
    json_object_set_new(data, "counts", counts);
    char msg[64];
    snprintf(msg, sizeof msg, "%zu outbox row%s", json_array_size(list),
             json_array_size(list) == 1 ? "" : "s");
    resp_success(r, 200, msg, data);
}

static void retry_answer(struct req *r, PGresult *res)
{
    json_t *ids = json_array();
    int bad = 0;
    for (int i = 0; i < PQntuples(res); i++)
        json_array_append_new(ids, json_integer(db_int(res, i, 0, &bad)));
    PQclear(res);
    if (bad) {
        json_decref(ids);
        resp_error(r, API_INTERNAL, NULL, "the retried rows could not be read (see the log)");
        return;
    }
    char msg[96];
    snprintf(msg, sizeof msg, "%zu dead row%s back to pending", json_array_size(ids),
             json_array_size(ids) == 1 ? "" : "s");
    resp_success(r, 200, msg, json_pack("{s:o}", "retried", ids));
}

#define RETRY_SET                                                                                  \
    "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = now(),"                  \
    " updated_at = now() WHERE state = 'dead' "

/* POST /outbox/retry {"ids": [..]} or {"env": "..."} or {}: dead rows back to pending. */
void outbox_retry(struct req *r)
{
    const char *k;
    json_t *v;
    json_object_foreach(r->body, k, v)
    {
        if (strcmp(k, "ids") && strcmp(k, "env")) {
            char q[UTIL_QUOTE_SIZE(64)];
            resp_error(r, API_VALIDATION_FAILED, json_pack("{s:s}", "field", k),
                       "unknown member '%s'; known: ids, env", util_quote(q, sizeof q, k, 64));
            return;
        }
    }
    json_t *ids = json_object_get(r->body, "ids");
    json_t *env = json_object_get(r->body, "env");
    if (ids && (!json_is_array(ids) || json_array_size(ids) > 10000)) {
        resp_error(r, API_VALIDATION_FAILED, json_pack("{s:s}", "field", "ids"),
                   "ids must be an array of outbox ids (at most 10000)");
        return;
    }
    size_t i;
    json_array_foreach(ids, i, v) if (!json_is_integer(v))
    {
        resp_error(r, API_VALIDATION_FAILED, json_pack("{s:s}", "field", "ids"),
                   "ids[%zu] must be an integer", i);
        return;
    }
    if (env && (!json_is_string(env) || conf_env_index(r->app->conf, json_string_value(env)) < 0)) {
        resp_error(r, API_VALIDATION_FAILED, json_pack("{s:s}", "field", "env"),
                   "env must be one of the configured environments");
        return;
    }
    char *ids_text = ids ? json_dumps(ids, JSON_COMPACT) : NULL;
    const char *params[] = {ids_text, json_string_value(env)};
    struct db_error err;
    PGresult *res =
        db_exec(&r->app->db,
                RETRY_SET "AND ($1::jsonb IS NULL OR id IN (SELECT jsonb_array_elements_text($1::"
                          "jsonb)::bigint)) AND ($2::text IS NULL OR environment = $2)"
                          " RETURNING id",
                2, params, &err);
    free(ids_text);
    if (!res) {
        resp_error(r, API_DATABASE_UNAVAILABLE, NULL, "cannot retry: %s", err.message);
        return;
    }
    log_info("outbox: %s retried %d dead rows", r->who.name, PQntuples(res));
    retry_answer(r, res);
}

void outbox_retry_one(struct req *r)
{
    long long id;
    const char *why;
    if (util_parse_int(r->path_params[0], 1, INT64_MAX, &id, &why) < 0) {
        char q[UTIL_QUOTE_SIZE(32)];
        resp_error(r, API_NOT_FOUND, json_pack("{s:s}", "field", "id"), "no outbox row '%s'",
                   util_quote(q, sizeof q, r->path_params[0], 32));
        return;
    }
    const char *params[] = {r->path_params[0]};
    struct db_error err;
    PGresult *res =
        db_exec(&r->app->db, "SELECT state FROM outbox WHERE id = $1::bigint", 1, params, &err);
    if (!res) {
        resp_error(r, API_DATABASE_UNAVAILABLE, NULL, "cannot read the outbox: %s", err.message);
        return;
    }
    if (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 0), "dead") != 0) {
        int found = PQntuples(res) == 1;
        char state[16] = "";
        if (found)
            snprintf(state, sizeof state, "%s", PQgetvalue(res, 0, 0));
        PQclear(res);
        if (found)
            resp_error(r, API_CONFLICT, json_pack("{s:s}", "state", state),
                       "outbox row %lld is %s, not dead", id, state);
        else
            resp_error(r, API_NOT_FOUND, json_pack("{s:s}", "field", "id"), "no outbox row %lld",
                       id);
        return;
    }
    PQclear(res);
    res = db_exec(&r->app->db, RETRY_SET "AND id = $1::bigint RETURNING id", 1, params, &err);
    if (!res) {
        resp_error(r, API_DATABASE_UNAVAILABLE, NULL, "cannot retry: %s", err.message);
        return;
    }
    retry_answer(r, res);
}

enum outbox_discard_outcome outbox_discard_row(struct db *db, long long id, const char *who,
                                               const char *reason, struct outbox_discarded *out,
                                               struct db_error *err)
{
    memset(out, 0, sizeof *out);
    char ids[24];
    snprintf(ids, sizeof ids, "%lld", id);
    const char *params[] = {ids, who, reason};
    /* One statement decides: only a dead row that is not a create_run changes. */
    PGresult *res = db_exec(
        db,
        "WITH d AS (UPDATE outbox SET state = 'discarded', discarded_by = $2,"
        "  discarded_at = now(), discard_reason = $3, updated_at = now()"
        "  WHERE id = $1::bigint AND state = 'dead' AND operation <> 'create_run'"
        "  RETURNING id, object_id, operation)"
        " SELECT d.id, d.object_id, d.operation,"
        "  (SELECT count(*) FROM outbox p WHERE p.object_id = d.object_id AND p.id > d.id"
        "   AND p.state = 'pending' AND NOT EXISTS (SELECT 1 FROM outbox x"
        "   WHERE x.object_id = d.object_id AND x.id > d.id AND x.id < p.id AND x.state = 'dead'))"
        " FROM d",
        3, params, err);
    if (!res)
        return OUTBOX_DISCARD_DB_ERROR;
    if (PQntuples(res) == 1) {
        int bad = 0;
        out->released = db_int(res, 0, 3, &bad);
        snprintf(out->object_id, sizeof out->object_id, "%s", PQgetvalue(res, 0, 1));
        snprintf(out->operation, sizeof out->operation, "%s", PQgetvalue(res, 0, 2));
        snprintf(out->state, sizeof out->state, "discarded");
        PQclear(res);
        log_info("outbox %lld: %s of %s discarded by %s: %s", id, out->operation, out->object_id,
                 who, reason);
        return OUTBOX_DISCARDED;
    }
    PQclear(res);
    res = db_exec(db, "SELECT state, operation, object_id FROM outbox WHERE id = $1::bigint", 1,
                  params, err);
    if (!res)
        return OUTBOX_DISCARD_DB_ERROR;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return OUTBOX_DISCARD_NOT_FOUND;
    }
    snprintf(out->state, sizeof out->state, "%s", PQgetvalue(res, 0, 0));
    snprintf(out->operation, sizeof out->operation, "%s", PQgetvalue(res, 0, 1));
    snprintf(out->object_id, sizeof out->object_id, "%s", PQgetvalue(res, 0, 2));
    PQclear(res);
    return strcmp(out->state, "dead") != 0 ? OUTBOX_DISCARD_NOT_DEAD : OUTBOX_DISCARD_CREATE_RUN;
}

int outbox_discard_reason_ok(const char *reason)
{
    return reason && *reason && util_utf8_len(reason) <= OUTBOX_DISCARD_REASON_MAX;
}

/* POST /outbox/{id}/discard {"reason": "..."}: an admin skips a dead row, so the rows of its
 * object behind it flow. */
void outbox_discard(struct req *r)
{
    long long id;
    const char *why;
    if (util_parse_int(r->path_params[0], 1, INT64_MAX, &id, &why) < 0) {
        char q[UTIL_QUOTE_SIZE(32)];
        resp_error(r, API_NOT_FOUND, json_pack("{s:s}", "field", "id"), "no outbox row '%s'",
                   util_quote(q, sizeof q, r->path_params[0], 32));
        return;
    }
    const char *k;
    json_t *v;
    json_object_foreach(r->body, k, v)
    {
        if (strcmp(k, "reason") != 0) {
            char q[UTIL_QUOTE_SIZE(64)];
            resp_error(r, API_VALIDATION_FAILED, json_pack("{s:s}", "field", k),
                       "unknown member '%s'; known: reason", util_quote(q, sizeof q, k, 64));
            return;
        }
    }
    const char *reason = json_string_value(json_object_get(r->body, "reason"));
    if (!outbox_discard_reason_ok(reason)) {
        resp_error(r, API_VALIDATION_FAILED, json_pack("{s:s}", "field", "reason"),
                   "reason is required: 1-%d characters saying why the row is skipped (it is "
                   "kept with the row)",
                   OUTBOX_DISCARD_REASON_MAX);
        return;
    }
    const char *who = r->who.name[0] ? r->who.name : "anonymous";
    struct outbox_discarded d;
    struct db_error err;
    switch (outbox_discard_row(&r->app->db, id, who, reason, &d, &err)) {
    case OUTBOX_DISCARDED: {
        char msg[160];
        snprintf(msg, sizeof msg, "outbox row %lld discarded; %lld row%s behind it may go out", id,
                 d.released, d.released == 1 ? "" : "s");
        resp_success(r, 200, msg,
                     json_pack("{s:I,s:s,s:s,s:s,s:I}", "discarded", (json_int_t)id, "object_id",
                               d.object_id, "by", who, "reason", reason, "released",
                               (json_int_t)d.released));
        return;
    }
    case OUTBOX_DISCARD_NOT_FOUND:
        resp_error(r, API_NOT_FOUND, json_pack("{s:s}", "field", "id"), "no outbox row %lld", id);
        return;
    case OUTBOX_DISCARD_NOT_DEAD:
        resp_error(r, API_CONFLICT, json_pack("{s:s}", "state", d.state),
                   "outbox row %lld is %s, not dead: only a dead row can be discarded", id,
                   d.state);
        return;
    case OUTBOX_DISCARD_CREATE_RUN:
        resp_error(r, API_CONFLICT,
                   json_pack("{s:s,s:s}", "state", d.state, "operation", d.operation),
                   "outbox row %lld opens its run (create_run): the rows behind it need the run, "
                   "so it cannot be discarded; fix its cause and retry it "
                   "(POST /llm-ops/v1/outbox/%lld/retry)",
                   id, id);
        return;
    case OUTBOX_DISCARD_DB_ERROR:
        break;
    }
    resp_error(r, API_DATABASE_UNAVAILABLE, NULL, "cannot discard: %s", err.message);
}

/* ------------------------------------------------------------------ the jobs process */

/* Every [metrics] probe_interval_seconds the jobs process probes each instance's tool:
 * llmops_tool_up, llmops_tool_probe_duration_seconds, llmops_tool_probes_total. */
static void probe_tools(struct app *app)
{
    static int64_t last, last_follow;
    int64_t now = util_now_ms();
    if (now - last_follow >= 1000) {
        last_follow = now;
        if (metrics_follow(app->conf->metrics_shm_file))
            log_info("jobs: counting in %s (made anew by a restart of llm-opsd)",
                     app->conf->metrics_shm_file);
    }
    if (!metrics_enabled() || (last && now - last < app->conf->metrics_probe_interval * 1000))
        return;
    last = now;
    for (int i = 0; i < app->plugins.ninsts; i++) {
        struct instance *in = &app->plugins.insts[i];
        char base[200], labels[260];
        char name[140];
        metrics_escape(name, sizeof name, in->name);
        snprintf(base, sizeof base, "plugin=\"%s\"", name);
        int ok = 0;
        double secs = 0;
        if (in->initialised) {
            json_t *info = NULL;
            struct llmops_error err = {.size = sizeof err};
            int64_t t0 = util_now_us();
            ok = in->mod->desc->health(in->state, &info, &err) == 0;
            int64_t dur = util_now_us() - t0;
            secs = (double)dur / 1e6;
            json_decref(info);
            dispatch_call_done(app, in, "health", ok ? NULL : &err, dur);
            if (!ok)
                log_info("jobs: probe of %s failed: %s", in->name, err.message);
        }
        metrics_set("llmops_tool_up", base, ok);
        metrics_set("llmops_tool_probe_duration_seconds", base, secs);
        metrics_set("llmops_tool_last_probe_timestamp_seconds", base,
                    (double)util_wall_ms() / 1000.0);
        snprintf(labels, sizeof labels, "%s,outcome=\"%s\"", base, ok ? "ok" : "failed");
        metrics_add("llmops_tool_probes_total", labels, 1);
    }
}

/* Delivered rows are kept [outbox] keep_done_hours for inspection, then deleted (at most
 * once a minute, a bounded number at a time). */
static void prune(struct app *app)
{
    static int64_t last;
    int64_t now = util_now_ms();
    if (last && now - last < 60000)
        return;
    last = now;
    char hours[24];
    snprintf(hours, sizeof hours, "%lld", app->conf->outbox_keep_done_hours);
    const char *p[] = {hours};
    struct db_error err;
    PGresult *r = db_exec(&app->db,
                          "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE state ="
                          " 'done' AND done_at < now() - $1::bigint * interval '1 hour'"
                          " ORDER BY id LIMIT 10000)",
                          1, p, &err);
    if (!r) {
        log_warning("jobs: cannot prune delivered outbox rows: %s", err.message);
        return;
    }
    long long n = 0;
    if (util_parse_int(PQcmdTuples(r), 0, INT64_MAX, &n, NULL) == 0 && n > 0)
        log_info("jobs: pruned %lld delivered outbox rows older than %s h", n, hours);
    PQclear(r);
    /* Log bodies not sent again for TRACK_LOG_BODY_HOURS: a resend now is new points. */
    snprintf(hours, sizeof hours, "%d", TRACK_LOG_BODY_HOURS);
    r = db_exec(&app->db,
                "DELETE FROM log_bodies WHERE (object_id, body_sha256) IN (SELECT object_id,"
                " body_sha256 FROM log_bodies WHERE seen_at < now() - $1::bigint * interval"
                " '1 hour' ORDER BY seen_at LIMIT 10000)",
                1, p, &err);
    if (!r) {
        log_warning("jobs: cannot prune remembered log bodies: %s", err.message);
        return;
    }
    PQclear(r);
    /* Experiment reservations a killed create left and no retry came for within an hour: a
     * later create of the name finds the experiment by its key (tracking.h). */
    r = db_exec(&app->db,
                "DELETE FROM objects o WHERE o.kind = 'exp' AND o.external_id IS NULL"
                " AND o.create_key IS NOT NULL AND o.created_at < now() - interval '1 hour'"
                " AND NOT EXISTS (SELECT 1 FROM training_jobs j WHERE j.experiment_id = o.id)",
                0, NULL, &err);
    if (!r) {
        log_warning("jobs: cannot prune abandoned experiment reservations: %s", err.message);
        return;
    }
    PQclear(r);
}

static volatile sig_atomic_t jobs_stop;

static void on_stop(int sig)
{
    (void)sig;
    jobs_stop = 1;
}

int jobs_process_run(const char *config_path)
{
    struct llmops_conf conf;
    struct conf_errors errs = {0};
    if (conf_load(config_path, &conf, &errs) > 0) {
        for (int i = 0; i < errs.n; i++)
            log_error("%s", errs.msgs[i]);
        conf_errors_free(&errs);
        conf_free(&conf);
        return 2;
    }
    conf_errors_free(&errs);
    log_set_level(conf.log_level);
    log_set_json(conf.log_json);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);

    struct app *app = calloc(1, sizeof *app);
    if (!app) {
        conf_free(&conf);
        return 1;
    }
    if (!conf.metrics_enabled)
        metrics_disable();
    else
        metrics_open(conf.metrics_shm_file, 0);
    app_init(app, &conf);
    app->db.listen_channel2 = OUTBOX_CHANNEL;
    log_info("jobs process started: delivering the outbox (max_attempts %lld, backoff %lld ms "
             "to %lld ms)",
             conf.outbox_max_attempts, conf.outbox_base_delay_ms, conf.outbox_max_delay_ms);
    int warned = 0;
    while (!jobs_stop) {
        probe_tools(app); /* tools are probed whether PostgreSQL is up or not */
        struct db_error err;
        if (db_ensure(&app->db, &err) != DB_OK) {
            if (!warned++)
                log_warning("jobs: the database is unavailable: %s", db_error_detail(&err));
            usleep(500 * 1000);
            continue;
        }
        int v = db_schema_version(&app->db, LLMOPS_SCHEMA_VERSION);
        if (v != LLMOPS_SCHEMA_VERSION) {
            if (!warned++)
                log_warning("jobs: the database schema is at version %d; this llm-opsd needs %d "
                            "(run llm-opsctl migrate)",
                            v, LLMOPS_SCHEMA_VERSION);
            usleep(500 * 1000);
            continue;
        }
        warned = 0;
        db_poll(&app->db);
        dispatch_tick(app);
        /* One row at a time, so SIGTERM waits for one tool call at most. */
        int n = outbox_run_once(app, 1);
        if (n > 0)
            continue;
        prune(app);
        if (n < 0) {
            usleep(200 * 1000);
            continue;
        }
        /* Nothing due: sleep until a new row is committed (NOTIFY) or a backoff may have
         * ended. */
        if (app->db.conn) {
            struct pollfd pfd = {.fd = PQsocket(app->db.conn), .events = POLLIN};
            if (poll(&pfd, 1, 250) < 0 && errno != EINTR)
                usleep(250 * 1000);
        }
    }
    log_info("jobs process stopping");
    app_fini(app);
    free(app);
    conf_free(&conf);
    return 0;
}
