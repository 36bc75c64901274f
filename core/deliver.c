/* The deliverer: claims due outbox rows (FOR UPDATE SKIP LOCKED) and calls the tool, one
 * transaction per row, in order per object. */
#include "outbox.h"

#include "dispatch.h"
#include "log.h"
#include "metrics.h"
#include "tracking.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
        snprintf(m, sizeof m, "instance %s is not running in the background process",
                 row->instance);
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
