/* The deliverer: claims due outbox rows (FOR UPDATE SKIP LOCKED) and calls the tool, one
 * transaction per row, in order per object. */
#include "outbox.h"

#include "dispatch.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ delivery */

/* The hook table: every category's (category, operation) pairs. */
static const struct outbox_op *ops_reg[OUTBOX_MAX_OPS];
static int nops;

int outbox_register(const struct outbox_op *ops)
{
    for (int i = 0; i < nops; i++)
        if (ops_reg[i] == &ops[0])
            return 0;
    for (const struct outbox_op *op = ops; op->category; op++) {
        if (outbox_find_op(op->category, op->operation) || nops == OUTBOX_MAX_OPS || !op->call)
            return -1;
        ops_reg[nops++] = op;
    }
    return 0;
}

const struct outbox_op *outbox_find_op(const char *category, const char *operation)
{
    for (int i = 0; i < nops; i++)
        if (strcmp(ops_reg[i]->category, category) == 0 &&
            strcmp(ops_reg[i]->operation, operation) == 0)
            return ops_reg[i];
    return NULL;
}

static int deliver(struct app *app, const struct outbox_op *op, struct outbox_row *row,
                   struct llmops_error *err)
{
    struct instance *in = plugins_find(&app->plugins, row->instance);
    if (!in || !in->initialised) {
        char m[300];
        snprintf(m, sizeof m, "instance %s is not running in the background process",
                 row->instance);
        outbox_set_err(err, LLMOPS_ERR_UNAVAILABLE, 1, m);
        return -1;
    }
    if (!op->binds_object && !row->external_id[0]) {
        outbox_set_err(err, LLMOPS_ERR_UNAVAILABLE, 1,
                       "the object is not created in the tool yet (its binding row goes first)");
        return -1;
    }
    json_t *input = NULL, *out = NULL;
    if (op->prepare) {
        int p = op->prepare(app, in, row, &input, err);
        if (p != 0)
            return p < 0 ? -1 : 0;
    } else {
        input = json_copy(row->payload);
        json_object_set_new(input, "external_id", json_string(row->external_id));
    }
    int rc = op->call(app, in, row->operation, input, &out, err);
    json_decref(input);
    if (rc == 0 && op->apply)
        rc = op->apply(app, in, row, out, err);
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
    PGresult *res;
    int claimed = outbox_claim(
        app,
        "SELECT o.id, o.object_id, o.operation, o.payload::text, o.attempts, ob.instance,"
        " coalesce(ob.external_id, ''), o.environment, o.category FROM outbox o"
        " JOIN objects ob ON ob.id = o.object_id"
        " WHERE o.state = 'pending' AND o.next_attempt_at <= now()"
        " AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.object_id = o.object_id AND p.id < o.id"
        "  AND p.state IN ('pending', 'dead'))"
        " ORDER BY o.id LIMIT 1 FOR UPDATE OF o SKIP LOCKED",
        &res);
    if (claimed <= 0)
        return claimed;
    struct db_error dberr;
    struct outbox_row row;
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
    snprintf(row.category, sizeof row.category, "%s", PQgetvalue(res, 0, 8));
    PQclear(res);

    struct llmops_error err;
    int rc;
    if (bad) {
        json_decref(row.payload);
        outbox_rollback(app);
        return -1;
    }
    if (!row.payload) {
        outbox_set_err(&err, LLMOPS_ERR_INVALID, 0, "the row's payload is not JSON");
        rc = -1;
    } else {
        const struct outbox_op *op = outbox_find_op(row.category, row.operation);
        if (!op) {
            char m[200];
            snprintf(m, sizeof m, "this llm-opsd cannot deliver %s of %s", row.operation,
                     row.category);
            outbox_set_err(&err, LLMOPS_ERR_INVALID, 0, m);
            rc = -1;
        } else {
            rc = deliver(app, op, &row, &err);
            if (rc < 0 && op->on_dead &&
                !(is_retryable(&err) && row.attempts + 1 < app->conf->outbox_max_attempts))
                op->on_dead(app, &row, &err);
        }
    }
    json_decref(row.payload);
    json_decref(row.scratch);
    int ok;
    if (rc == 0) {
        const char *p[] = {row.id};
        char labels[200];
        snprintf(labels, sizeof labels, "category=\"%s\",operation=\"%s\",outcome=\"ok\"",
                 row.category, row.operation);
        metrics_add("llmops_outbox_deliveries_total", labels, 1);
        ok = outbox_exec(
                 app,
                 "UPDATE outbox SET state = 'done', attempts = attempts + 1, last_error = NULL,"
                 " done_at = now(), updated_at = now() WHERE id = $1::bigint",
                 1, p, &dberr) == 0;
        log_debug("outbox %s: %s of %s delivered to %s", row.id, row.operation, row.object_id,
                  row.instance);
    } else {
        int retry = is_retryable(&err) && row.attempts + 1 < app->conf->outbox_max_attempts;
        char labels[200];
        snprintf(labels, sizeof labels, "category=\"%s\",operation=\"%s\",outcome=\"%s\"",
                 row.category, row.operation, retry ? "retry" : "dead");
        metrics_add("llmops_outbox_deliveries_total", labels, 1);
        if (!retry)
            metrics_add("llmops_outbox_dead_letters_total", "", 1);
        char delay[24], msg[700];
        snprintf(delay, sizeof delay, "%lld", outbox_backoff_ms(app->conf, row.attempts));
        snprintf(msg, sizeof msg, "%s (instance %s)", err.message, row.instance);
        const char *p[] = {row.id, msg, delay, retry ? "pending" : "dead"};
        ok = outbox_exec(app,
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
    return outbox_finish(app, ok);
}

int outbox_run_once(struct app *app, int max)
{
    return outbox_each(app, max, run_one);
}
