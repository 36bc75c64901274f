/* Experiment tracking's part in the outbox: the operations a training job's run waits for
 * (create_run, log_batch, update_run) and the hooks where tracking differs from the default
 * delivery: create_run finds or makes the job's experiment first, then binds the run's
 * platform id to the tool's and the job to its experiment and run page. */
#include "outbox.h"

#include "background.h"
#include "tracking.h"
#include "log.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

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
            outbox_set_err(err, LLMOPS_ERR_INVALID, 0, m);
            return -1;
        }
        if (pass == 1) {
            outbox_set_err(err, LLMOPS_ERR_TOOL, 1, "the experiment was neither found nor created");
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
                outbox_set_err(err, LLMOPS_ERR_TOOL, 1, "create_experiment answered no id");
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
        outbox_set_err(err, LLMOPS_ERR_INTERNAL, 1, dberr.message);
        return -1;
    }
    return 0;
}

static int create_run_prepare(struct app *app, struct instance *in, struct outbox_row *row,
                              json_t **input, struct llmops_error *err)
{
    if (row->external_id[0])
        return 1; /* bound by an earlier attempt whose outcome was not recorded */
    const char *exp_name = json_string_value(json_object_get(row->payload, "experiment"));
    char exp_ext[256], exp_pid[64];
    if (!exp_name) {
        outbox_set_err(err, LLMOPS_ERR_INVALID, 0, "the row names no experiment");
        return -1;
    }
    if (ensure_experiment(app, in, row->environment, exp_name, exp_ext, exp_pid, err) < 0)
        return -1;
    *input = json_pack("{s:s,s:s,s:O?,s:O?,s:O?,s:O?}", "idempotency_key", row->object_id,
                       "experiment_id", exp_ext, "name", json_object_get(row->payload, "name"),
                       "start_time_ms", json_object_get(row->payload, "start_time_ms"), "user",
                       json_object_get(row->payload, "user"), "tags",
                       json_object_get(row->payload, "tags"));
    /* O? writes null for a missing member; the interface wants it absent */
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(*input, tmp, k, v) if (json_is_null(v)) json_object_del(*input, k);
    row->scratch = json_pack("{s:s}", "experiment_pid", exp_pid);
    return 0;
}

static int create_run_apply(struct app *app, struct instance *in, struct outbox_row *row,
                            json_t *out, struct llmops_error *err)
{
    const char *ext = json_string_value(json_object_get(out, "external_id"));
    const char *ui = json_string_value(json_object_get(json_object_get(out, "links"), "ui"));
    const char *exp_pid = json_string_value(json_object_get(row->scratch, "experiment_pid"));
    snprintf(row->external_id, sizeof row->external_id, "%s", ext ? ext : "");
    if (!row->external_id[0]) {
        outbox_set_err(err, LLMOPS_ERR_TOOL, 1, "create_run answered no id");
        return -1;
    }
    struct db_error dberr;
    const char *p1[] = {row->object_id, row->external_id, in->name};
    /* A run adopted meanwhile (listed by a search before it was bound here) gives way. */
    if (outbox_exec(app,
                    "DELETE FROM objects WHERE instance = $3 AND kind = 'run' AND external_id = $2"
                    " AND id <> $1 AND created_by = 'adopted'",
                    3, p1, &dberr) < 0 ||
        outbox_exec(app,
                    "UPDATE objects SET external_id = $2 WHERE id = $1 AND $3::text IS NOT NULL", 3,
                    p1, &dberr) < 0) {
        outbox_set_err(err, LLMOPS_ERR_INTERNAL, 1, dberr.message);
        return -1;
    }
    const char *p2[] = {row->object_id, exp_pid && exp_pid[0] ? exp_pid : NULL,
                        ui && ui[0] ? ui : NULL};
    if (outbox_exec(
            app,
            "UPDATE training_jobs SET experiment_id = $2, run_ui_url = $3, updated_at = now()"
            " WHERE run_id = $1",
            3, p2, &dberr) < 0) {
        outbox_set_err(err, LLMOPS_ERR_INTERNAL, 1, dberr.message);
        return -1;
    }
    return 0;
}

#define TRACKING "experiment_tracking"

static const struct outbox_op tracking_ops[] = {
    {TRACKING, "create_run", track_call, create_run_prepare, create_run_apply, NULL, 1},
    {TRACKING, "log_batch", track_call, NULL, NULL, NULL, 0},
    {TRACKING, "update_run", track_call, NULL, NULL, NULL, 0},
    {NULL, NULL, NULL, NULL, NULL, NULL, 0},
};

/* Log bodies not sent again for TRACK_LOG_BODY_HOURS, and experiment reservations a killed
 * create left (run by the background process's prune). */
void tracking_prune(struct app *app)
{
    /* Log bodies not sent again for TRACK_LOG_BODY_HOURS: a resend now is new points. */
    char hours[24];
    snprintf(hours, sizeof hours, "%d", TRACK_LOG_BODY_HOURS);
    const char *p[] = {hours};
    struct db_error err;
    PGresult *r =
        db_exec(&app->db,
                "DELETE FROM log_bodies WHERE (object_id, body_sha256) IN (SELECT object_id,"
                " body_sha256 FROM log_bodies WHERE seen_at < now() - $1::bigint * interval"
                " '1 hour' ORDER BY seen_at LIMIT 10000)",
                1, p, &err);
    if (!r) {
        log_warning("background: cannot prune remembered log bodies: %s", err.message);
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
        log_warning("background: cannot prune abandoned experiment reservations: %s", err.message);
        return;
    }
    PQclear(r);
}

int tracking_outbox_register(void)
{
    return outbox_register(tracking_ops);
}
