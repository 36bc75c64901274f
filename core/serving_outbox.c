/* Serving's part in the background process: the outbox's deploy (a create that waited while
 * the tool was down) and the watch hook that keeps a deployment's row in step with the tool,
 * rolling back a canary the tool reports failed. */
#include "serving.h"

#include "background.h"
#include "log.h"
#include "outbox.h"
#include "util.h"
#include "watch.h"

#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------------ the outbox's deploy */

/* The row's state, or "" when it has none (-1: the database failed). */
static int dep_state(struct app *app, const char *id, char state[16], struct llmops_error *err)
{
    const char *p[] = {id};
    struct db_error dberr;
    PGresult *res = db_exec(&app->db, "SELECT state FROM deployments WHERE id = $1", 1, p, &dberr);
    if (!res) {
        outbox_set_err(err, LLMOPS_ERR_INTERNAL, 1, dberr.message);
        return -1;
    }
    snprintf(state, 16, "%s", PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "");
    PQclear(res);
    return 0;
}

static int deploy_prepare(struct app *app, struct instance *in, struct outbox_row *row,
                          json_t **input, struct llmops_error *err)
{
    (void)in;
    if (row->external_id[0])
        return 1; /* bound by an earlier attempt whose outcome was not recorded */
    char state[16];
    if (dep_state(app, row->object_id, state, err) < 0)
        return -1;
    if (!state[0] || strcmp(state, "deleted") == 0)
        return 1; /* deleted before it reached the tool: nothing to create */
    *input = json_copy(row->payload);
    return 0;
}

/* Exactly one object in the tool: what an earlier attempt (a lost answer, a killed worker, the
 * request's own try) made under the key is taken; only without one is deploy called. */
static int deploy_call(struct app *app, struct instance *in, const char *op, json_t *input,
                       json_t **out, struct llmops_error *err)
{
    (void)op;
    json_t *key = json_pack("{s:O}", "idempotency_key", json_object_get(input, "idempotency_key"));
    int rc = serving_call(app, in, "find_by_idempotency_key", key, out, err);
    json_decref(key);
    if (rc == 0 || err->code != LLMOPS_ERR_NOT_FOUND)
        return rc;
    return serving_call(app, in, "deploy", input, out, err);
}

static int deploy_apply(struct app *app, struct instance *in, struct outbox_row *row, json_t *out,
                        struct llmops_error *err)
{
    (void)in;
    const char *ext = json_string_value(json_object_get(out, "external_id"));
    if (!ext || !*ext) {
        outbox_set_err(err, LLMOPS_ERR_TOOL, 1, "deploy answered no external_id");
        return -1;
    }
    struct db_error dberr;
    const char *p[] = {row->object_id, ext};
    if (outbox_exec(app, "UPDATE objects SET external_id = $2 WHERE id = $1", 2, p, &dberr) < 0 ||
        serving_apply_answer(app, row->object_id, out, SERVING_ACTOR_BACKGROUND, &dberr) < 0) {
        outbox_set_err(err, LLMOPS_ERR_INTERNAL, 1, dberr.message);
        return -1;
    }
    log_info("serving: %s delivered to %s as %s", row->object_id, row->instance, ext);
    return 0;
}

/* Whether the deliverer would try again (core/deliver.c): an error that may pass by itself. */
static int passes_by_itself(const struct llmops_error *err)
{
    return err->code == LLMOPS_ERR_UNAVAILABLE || err->code == LLMOPS_ERR_INTERNAL ||
           (err->code == LLMOPS_ERR_TOOL && err->retryable);
}

/* The create's row became dead. Refused for good (the tool found the spec invalid, cannot do
 * it, or the name is another object's): the tool made nothing (the call looked for the key
 * first), so the deployment is failed with the tool's reason, holds no GPUs (its gpu_count
 * column, what capacity sums, becomes 0; the spec keeps what was asked), its watch ends, and
 * the outbox row no longer binds the object, so an operator may discard it and a create of
 * the same name replaces the failed deployment (serving_http.c, find_named). After
 * max_attempts of errors that pass by themselves the outcome is unknown (an answer may have
 * been lost after the tool made it): the deployment is failed but keeps its name and GPUs,
 * and its row binds it, until someone deletes it. */
static void deploy_dead(struct app *app, const struct outbox_row *row,
                        const struct llmops_error *err)
{
    char reason[700];
    int for_good = !passes_by_itself(err);
    if (for_good)
        snprintf(reason, sizeof reason, "refused by %s: %.600s", row->instance, err->message);
    else
        snprintf(reason, sizeof reason, "the create could not be delivered to %s: %.600s",
                 row->instance, err->message);
    const char *p[] = {row->object_id, reason, for_good ? "t" : "f", row->id};
    struct db_error dberr;
    if (outbox_exec(app,
                    "UPDATE deployments SET state = 'failed', reason = $2,"
                    " gpu_count = CASE WHEN $3::boolean THEN 0 ELSE gpu_count END,"
                    " version = version + 1, updated_at = now() WHERE id = $1"
                    " AND state <> 'deleted'",
                    3, p, &dberr) < 0 ||
        (for_good &&
         (outbox_exec(app,
                      "UPDATE watches SET state = 'failed', reason = $2, done_at = now(),"
                      " updated_at = now() WHERE object_id = $1 AND state = 'watching'",
                      2, p, &dberr) < 0 ||
          outbox_exec(app,
                      "UPDATE outbox SET binds_object = false, updated_at = now()"
                      " WHERE id = $1::bigint",
                      1, p + 3, &dberr) < 0)) ||
        serving_audit(app, row->object_id, row->environment, SERVING_ACTOR_BACKGROUND, "failed",
                      NULL, json_pack("{s:s}", "state", "failed"), reason, &dberr) < 0)
        log_warning("serving: %s: cannot record the dead create: %s", row->object_id,
                    dberr.message);
}

static const struct outbox_op serving_ops[] = {
    {SERVING_CATEGORY, "deploy", deploy_call, deploy_prepare, deploy_apply, deploy_dead, 1},
    {NULL, NULL, NULL, NULL, NULL, NULL, 0},
};

/* ------------------------------------------------------------------ the watch */

/* get_deployment, with the member the watch reads: the canary's state while there is one (the
 * stable one keeps serving), else the deployment's; and the canary's reason then. */
static int watch_call(struct app *app, struct instance *in, const char *op, json_t *input,
                      json_t **out, struct llmops_error *err)
{
    int rc = serving_call(app, in, op, input, out, err);
    if (rc < 0)
        return rc;
    json_t *c = json_object_get(*out, "canary");
    json_t *st = json_object_get(json_is_object(c) ? c : *out, "state");
    json_object_set_new(*out, "watch_state", json_is_string(st) ? json_copy(st) : json_null());
    return 0;
}

static int watch_apply(struct app *app, const struct watch_row *w, enum watch_state state,
                       const char *tool_state, const char *reason, json_t *answer,
                       struct llmops_error *err)
{
    (void)tool_state;
    struct db_error dberr;
    /* the row, and the ready or failed it became audited (serving_apply_answer) */
    if (answer &&
        serving_apply_answer(app, w->object_id, answer, SERVING_ACTOR_BACKGROUND, &dberr) < 0) {
        outbox_set_err(err, LLMOPS_ERR_INTERNAL, 1, dberr.message);
        return -1;
    }
    if (state == WATCH_WATCHING)
        return 0;
    json_t *canary = json_object_get(answer, "canary");
    if (json_is_object(canary)) {
        const char *cs = json_string_value(json_object_get(canary, "state"));
        if (state == WATCH_FAILED && cs && strcmp(cs, "failed") == 0) {
            /* the tool reports the candidate failed: all traffic back to the stable one */
            char cr[700], why[800];
            const char *r = serving_reason(canary, cr, sizeof cr);
            snprintf(why, sizeof why, "the tool reports the canary failed: %.700s",
                     r ? r : (reason ? reason : "no reason given"));
            int rolled = 0;
            return serving_rollback_id(app, w->object_id, SERVING_ACTOR_BACKGROUND, why,
                                       SERVING_TRIGGER_TOOL_FAILED, &rolled, err) < 0
                       ? -1 /* polled again */
                       : 0;
        }
        return 0;
    }
    if (answer)
        return 0;
    /* gone from the tool, or no terminal state by the deadline */
    const char *p[] = {w->object_id, reason};
    PGresult *res = db_exec(&app->db,
                            "UPDATE deployments SET state = 'failed', reason = $2,"
                            " version = version + 1, updated_at = now()"
                            " WHERE id = $1 AND state NOT IN ('deleted', 'deleting', 'failed')"
                            " RETURNING environment",
                            2, p, &dberr);
    if (!res) {
        outbox_set_err(err, LLMOPS_ERR_INTERNAL, 1, dberr.message);
        return -1;
    }
    int changed = PQntuples(res) == 1;
    PQclear(res);
    if (changed &&
        serving_audit(app, w->object_id, w->environment, SERVING_ACTOR_BACKGROUND, "failed", NULL,
                      json_pack("{s:s}", "state", "failed"), reason, &dberr) < 0) {
        outbox_set_err(err, LLMOPS_ERR_INTERNAL, 1, dberr.message);
        return -1;
    }
    return 0;
}

static const struct watch_hook serving_hook = {SERVING_CATEGORY, watch_call, watch_apply};

int serving_outbox_register(void)
{
    if (outbox_register(serving_ops) < 0)
        return -1;
    return watch_register(&serving_hook);
}
