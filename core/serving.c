/* Serving's shared core (serving.h): the call path with serialized writes, a deployment's row
 * updated from the tool's answers, its watch, its audit, and the canary rollback that the
 * route, the background process and the alert webhook share. Every function here is one or a
 * few single statements, so it runs alike inside the background's one-row transaction and
 * on its own in a request. */
#include "serving.h"

#include "engine.h"
#include "log.h"
#include "metrics.h"
#include "outbox.h"
#include "util.h"
#include "watch.h"

#include "llmops-serving.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SV LLMOPS_CATEGORY_SERVING

/* ------------------------------------------------------------------ the call path */

static int is_write(const struct llmops_op_desc *d)
{
    return d && d->kind != LLMOPS_OP_READ && d->kind != LLMOPS_OP_LIST;
}

int serving_call(struct app *app, struct instance *in, const char *op, json_t *input, json_t **out,
                 struct llmops_error *err)
{
    const struct llmops_op_desc *d = engine_op(SV, op);
    int serial = is_write(d) && in && engine_has_feature(in, "serialized_writes");
    struct db_error dberr;
    const char *p[] = {in ? in->name : ""};
    if (serial) {
        PGresult *res =
            db_exec(&app->db, "SELECT pg_advisory_lock(8009, hashtext($1))", 1, p, &dberr);
        if (!res) {
            memset(err, 0, sizeof *err);
            err->size = sizeof *err;
            outbox_set_err(err, LLMOPS_ERR_UNAVAILABLE, 1,
                           "the writes of this instance cannot be serialised: the database is "
                           "unavailable");
            *out = NULL;
            return -1;
        }
        PQclear(res);
    }
    int rc = engine_call_named(app, in, SV, op, input, out, err);
    if (serial) {
        PGresult *res =
            db_exec(&app->db, "SELECT pg_advisory_unlock(8009, hashtext($1))", 1, p, &dberr);
        if (res)
            PQclear(res);
        else /* the lock went with the connection */
            log_warning("serving: cannot release the write lock of %s: %s", p[0], dberr.message);
    }
    return rc;
}

/* ------------------------------------------------------------------ rows from answers */

char *serving_reason(json_t *o, char *buf, size_t size)
{
    const char *r = json_string_value(json_object_get(o, "reason"));
    const char *m = json_string_value(json_object_get(o, "message"));
    if (r && m && strstr(m, r) != m)
        snprintf(buf, size, "%s: %s", r, m);
    else if (m || r)
        snprintf(buf, size, "%s", m ? m : r);
    else
        return NULL;
    return buf;
}

int serving_apply_answer(struct app *app, const char *id, json_t *answer, const char *actor,
                         struct db_error *err)
{
    const char *state = json_string_value(json_object_get(answer, "state"));
    if (!state)
        return 0;
    char rbuf[700], crbuf[700], ready[24];
    const char *reason =
        strcmp(state, "ready") == 0 ? NULL : serving_reason(answer, rbuf, sizeof rbuf);
    const char *url = json_string_value(json_object_get(answer, "url"));
    json_int_t rr = json_integer_value(json_object_get(answer, "ready_replicas"));
    snprintf(ready, sizeof ready, "%lld", (long long)(rr < 0 ? 0 : rr));
    json_t *tr = json_object_get(answer, "traffic");
    json_t *c = json_object_get(tr, "canary");
    json_int_t stable =
        json_is_integer(json_object_get(json_object_get(tr, "stable"), "percent"))
            ? json_integer_value(json_object_get(json_object_get(tr, "stable"), "percent"))
            : 100;
    json_t *traffic = json_pack("{s:I,s:I}", "stable", stable, "canary",
                                c ? json_integer_value(json_object_get(c, "percent")) : 0);
    json_t *canary = json_object_get(answer, "canary"), *cst = NULL;
    if (json_is_object(canary)) {
        const char *cs = json_string_value(json_object_get(canary, "state"));
        const char *cr =
            cs && strcmp(cs, "ready") ? serving_reason(canary, crbuf, sizeof crbuf) : NULL;
        cst = json_pack("{s:s?,s:s?,s:I}", "state", cs, "reason", cr, "ready_replicas",
                        json_integer_value(json_object_get(canary, "ready_replicas")));
        if (!cr)
            json_object_set_new(cst, "reason", json_null());
    }
    json_t *links = json_object_get(answer, "links");
    char *ttext = json_dumps(traffic, JSON_COMPACT);
    char *ctext = cst ? json_dumps(cst, JSON_COMPACT) : NULL;
    char *ltext = json_is_object(links) ? json_dumps(links, JSON_COMPACT) : NULL;
    json_decref(traffic);
    json_decref(cst);
    const char *p[] = {id, state, reason, url, ready, ttext, ctext, ltext};
    /* the row and, when the deployment or its canary became ready or failed, the states
     * before and after (audited below) */
    PGresult *res = db_exec(
        &app->db,
        /* a row the answer would not change is neither locked nor written: a read that
         * only confirms what is stored costs no new row version and bumps no version */
        "WITH old AS (SELECT id, state, canary->>'state' AS cstate FROM deployments d"
        "  WHERE id = $1 AND (d.state, d.reason, d.url, d.ready_replicas, d.traffic, d.canary,"
        "  d.links) IS DISTINCT FROM (CASE WHEN d.state = 'deleted' THEN d.state ELSE $2 END,"
        "  $3::text, coalesce($4::text, d.url), $5::integer,"
        "  CASE WHEN d.canary IS NULL THEN '{\"stable\": 100, \"canary\": 0}'::jsonb"
        "    ELSE $6::jsonb END,"
        "  CASE WHEN d.canary IS NULL OR $7::jsonb IS NULL THEN d.canary"
        "    ELSE d.canary || $7::jsonb END,"
        "  coalesce($8::jsonb, d.links)) FOR UPDATE),"
        " upd AS (UPDATE deployments d SET"
        "  state = CASE WHEN d.state = 'deleted' THEN d.state ELSE $2 END,"
        "  reason = $3, url = coalesce($4, d.url), ready_replicas = $5::integer,"
        "  traffic = CASE WHEN d.canary IS NULL THEN '{\"stable\": 100, \"canary\": 0}'::jsonb"
        "    ELSE $6::jsonb END,"
        "  canary = CASE WHEN d.canary IS NULL OR $7::jsonb IS NULL THEN d.canary"
        "    ELSE d.canary || $7::jsonb END,"
        "  links = coalesce($8::jsonb, d.links), version = d.version + 1, updated_at = now()"
        "  FROM old WHERE d.id = old.id"
        "  RETURNING d.state, d.canary->>'state' AS cstate, d.environment, d.reason,"
        "  d.canary->>'reason' AS creason)"
        " SELECT old.state, upd.state, coalesce(old.cstate, ''), coalesce(upd.cstate, ''),"
        "  upd.environment, upd.reason, upd.creason FROM old, upd",
        8, p, err);
    free(ttext);
    free(ctext);
    free(ltext);
    if (!res)
        return -1;
    int rc = 0;
    if (PQntuples(res) == 1) {
        const char *os = PQgetvalue(res, 0, 0), *ns = PQgetvalue(res, 0, 1);
        const char *oc = PQgetvalue(res, 0, 2), *nc = PQgetvalue(res, 0, 3);
        const char *env = PQgetvalue(res, 0, 4);
        int moved = strcmp(os, ns) != 0 && (!strcmp(ns, "ready") || !strcmp(ns, "failed"));
        int cand = nc[0] && strcmp(oc, nc) != 0 && (!strcmp(nc, "ready") || !strcmp(nc, "failed"));
        if (moved)
            rc = serving_audit(app, id, env, actor, ns, json_pack("{s:s}", "state", os),
                               json_pack("{s:s}", "state", ns),
                               PQgetisnull(res, 0, 5) ? NULL : PQgetvalue(res, 0, 5), err);
        if (rc == 0 && cand)
            rc = serving_audit(app, id, env, actor, nc,
                               json_pack("{s:{s:s}}", "canary", "state", oc),
                               json_pack("{s:{s:s}}", "canary", "state", nc),
                               PQgetisnull(res, 0, 6) ? NULL : PQgetvalue(res, 0, 6), err);
    }
    PQclear(res);
    return rc;
}

/* ------------------------------------------------------------------ watch and audit */

int serving_watch(struct app *app, const char *id, struct db_error *err)
{
    const char *p[] = {id};
    PGresult *res = db_exec(&app->db,
                            "UPDATE watches SET state = 'ready', reason = 'superseded by a newer"
                            " watch', done_at = now(), updated_at = now()"
                            " WHERE object_id = $1 AND state = 'watching'",
                            1, p, err);
    if (!res)
        return -1;
    PQclear(res);
    static const char *const ready[] = {"ready", NULL};
    static const char *const failed[] = {"failed", NULL};
    return watch_start(&app->db, id, "get_deployment", "watch_state", ready, failed,
                       SERVING_WATCH_BASE_MS, SERVING_WATCH_MAX_MS, SERVING_WATCH_DEADLINE_MS,
                       err) < 0
               ? -1
               : 0;
}

int serving_audit(struct app *app, const char *id, const char *env, const char *actor,
                  const char *action, json_t *before, json_t *after, const char *reason,
                  struct db_error *err)
{
    char *b = before ? json_dumps(before, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    char *a = after ? json_dumps(after, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    const char *p[] = {id, env, actor, action, b, a, reason};
    PGresult *res = db_exec(&app->db,
                            "INSERT INTO deployment_audit (deployment_id, environment, actor,"
                            " action, before, after, reason)"
                            " VALUES ($1, coalesce($2, (SELECT environment FROM deployments"
                            "  WHERE id = $1)), $3, $4, $5::jsonb, $6::jsonb, $7)",
                            7, p, err);
    free(b);
    free(a);
    json_decref(before);
    json_decref(after);
    if (!res)
        return -1;
    PQclear(res);
    return 0;
}

/* ------------------------------------------------------------------ rollback */

static void set_err(struct llmops_error *err, enum llmops_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(struct llmops_error *err, enum llmops_status code, const char *fmt, ...)
{
    memset(err, 0, sizeof *err);
    err->size = sizeof *err;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
}

void serving_count_canary(const char *env, const char *action, const char *trigger)
{
    char e[130], labels[256];
    metrics_escape(e, sizeof e, env ? env : "");
    snprintf(labels, sizeof labels, "environment=\"%s\",action=\"%s\",trigger=\"%s\"", e, action,
             trigger);
    metrics_add("llmops_canary_transitions_total", labels, 1);
}

int serving_rollback_id(struct app *app, const char *id, const char *actor, const char *reason,
                        const char *trigger, int *rolled_back, struct llmops_error *err)
{
    *rolled_back = 0;
    struct db_error dberr;
    /* Claim the canary: of concurrent rollbacks (an alert repeated, the background and a
     * client) exactly one finds it and audits; the others answer "none". */
    const char *p[] = {id};
    PGresult *res = db_exec(&app->db,
                            "WITH old AS (SELECT id, canary, traffic FROM deployments WHERE id = $1"
                            "  AND canary IS NOT NULL AND state <> 'deleted' FOR UPDATE)"
                            " UPDATE deployments d SET canary = NULL,"
                            "  traffic = '{\"stable\": 100, \"canary\": 0}',"
                            "  version = d.version + 1, updated_at = now() FROM old"
                            " WHERE d.id = old.id RETURNING old.canary::text, old.traffic::text,"
                            "  d.instance, d.environment, (SELECT coalesce(external_id, '')"
                            "  FROM objects WHERE id = d.id)",
                            1, p, &dberr);
    if (!res) {
        set_err(err, LLMOPS_ERR_UNAVAILABLE, "cannot read the deployment: %s", dberr.message);
        return -1;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        return 0;
    }
    json_t *old_canary = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
    json_t *old_traffic = json_loads(PQgetvalue(res, 0, 1), 0, NULL);
    char instance[64], env[64], ext[256];
    snprintf(instance, sizeof instance, "%s", PQgetvalue(res, 0, 2));
    snprintf(env, sizeof env, "%s", PQgetvalue(res, 0, 3));
    snprintf(ext, sizeof ext, "%s", PQgetvalue(res, 0, 4));
    PQclear(res);
    struct instance *in = plugins_find(&app->plugins, instance);
    int rc = 0;
    json_t *out = NULL;
    if (!in || !in->initialised) {
        set_err(err, LLMOPS_ERR_UNAVAILABLE,
                "instance %s, which holds the deployment, is not running", instance);
        rc = -1;
    } else if (ext[0]) {
        json_t *input = json_pack("{s:s,s:s?}", "external_id", ext, "reason", reason);
        rc = serving_call(app, in, "rollback_canary", input, &out, err);
        json_decref(input);
    }
    if (rc < 0) {
        /* give the canary back: the rollback did not happen */
        char *ct = json_dumps(old_canary, JSON_COMPACT),
             *tt = json_dumps(old_traffic, JSON_COMPACT);
        const char *p2[] = {id, ct, tt};
        res = db_exec(&app->db,
                      "UPDATE deployments SET canary = $2::jsonb, traffic = $3::jsonb,"
                      " version = version + 1, updated_at = now() WHERE id = $1 AND canary IS NULL",
                      3, p2, &dberr);
        if (res)
            PQclear(res);
        free(ct);
        free(tt);
        json_decref(old_canary);
        json_decref(old_traffic);
        return -1;
    }
    if (out && serving_apply_answer(app, id, out, actor, &dberr) < 0)
        log_warning("serving: %s rolled back, but its row could not be refreshed: %s", id,
                    dberr.message);
    json_decref(out);
    json_t *before = json_pack("{s:o,s:o}", "canary", old_canary ? old_canary : json_null(),
                               "traffic", old_traffic ? old_traffic : json_null());
    json_t *after = json_pack("{s:n,s:{s:i,s:i}}", "canary", "traffic", "stable", 100, "canary", 0);
    int arc = serving_audit(app, id, env, actor, "rollback", before, after, reason, &dberr);
    if (arc < 0) {
        set_err(err, LLMOPS_ERR_UNAVAILABLE,
                "the canary was rolled back but the audit row could not be written: %s",
                dberr.message);
        return -1;
    }
    log_info("serving: the canary of %s rolled back by %s%s%s", id, actor, reason ? ": " : "",
             reason ? reason : "");
    serving_count_canary(env, "rollback", trigger);
    *rolled_back = 1;
    return 0;
}

int serving_rollback_by_name(struct app *app, const char *env, const char *name, const char *actor,
                             const char *reason, int *rolled_back, struct llmops_error *err)
{
    *rolled_back = 0;
    struct db_error dberr;
    const char *p[] = {env, name};
    PGresult *res = db_exec(&app->db,
                            "SELECT id FROM deployments WHERE environment = $1 AND name = $2"
                            " AND state <> 'deleted'",
                            2, p, &dberr);
    if (!res) {
        set_err(err, LLMOPS_ERR_UNAVAILABLE, "cannot read the deployments: %s", dberr.message);
        return -1;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        char q[UTIL_QUOTE_SIZE(64)];
        set_err(err, LLMOPS_ERR_NOT_FOUND, "no live deployment '%s' in %s",
                util_quote(q, sizeof q, name ? name : "", 64), env ? env : "?");
        return -1;
    }
    char id[64];
    snprintf(id, sizeof id, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return serving_rollback_id(app, id, actor && *actor ? actor : "unknown", reason,
                               SERVING_TRIGGER_ALERT, rolled_back, err);
}

/* The deploy op's input (llmops-serving.h) from a deployment's stored spec and the GPU
 * resolved at its create (gpu: {resource_name, node_selector} or NULL), under `key`: what the
 * create route and a move (sync serving) hand the module. A new reference. */
json_t *serving_deploy_input(const char *key, const char *name, json_t *spec, json_t *gpu)
{
    json_t *in =
        json_pack("{s:s,s:s,s:O,s:O}", "idempotency_key", key, "name", name, "model",
                  json_object_get(spec, "model"), "replicas", json_object_get(spec, "replicas"));
    static const char *const copy[] = {"runtime", "args", "env", "autoscaling"};
    for (size_t i = 0; i < UTIL_ARRAY_LEN(copy); i++)
        if (json_object_get(spec, copy[i]))
            json_object_set(in, copy[i], json_object_get(spec, copy[i]));
    json_t *res = json_object();
    if (json_object_get(spec, "cpu"))
        json_object_set(res, "cpu", json_object_get(spec, "cpu"));
    if (json_object_get(spec, "memory"))
        json_object_set(res, "memory", json_object_get(spec, "memory"));
    if (json_is_object(gpu)) {
        json_t *g = json_pack("{s:O,s:O}", "resource_name", json_object_get(gpu, "resource_name"),
                              "count", json_object_get(spec, "gpu_count"));
        if (json_object_size(json_object_get(gpu, "node_selector")))
            json_object_set(g, "node_selector", json_object_get(gpu, "node_selector"));
        if (json_object_get(spec, "gpu_type"))
            json_object_set(g, "type", json_object_get(spec, "gpu_type"));
        json_object_set_new(res, "gpu", g);
    }
    if (json_object_size(res))
        json_object_set_new(in, "resources", res);
    else
        json_decref(res);
    return in;
}
