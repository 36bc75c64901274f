/* The /llm-ops/v1/outbox routes: list, retry, discard. */
#include "outbox.h"

#include "handlers.h"
#include "log.h"
#include "page.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ the API */

static const char *const states[] = {"pending", "done", "dead", "discarded"};

#define TS_(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

static json_t *list_row(const PGresult *res, int i, int *bad)
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
    const char *state;
    const char *env = http_query(r, "env") ? r->env : NULL;
    struct page pg;
    if (page_args(r, PAGE_CURSOR_ROW_ID, 100, 1000, &pg) < 0 ||
        page_state_arg(r, states, UTIL_ARRAY_LEN(states), &state) < 0)
        return;
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
    json_t *list, *next;
    int bad = page_rows(res, &pg, list_row, &list, &next);
    json_t *data = json_pack("{s:o,s:o}", "rows", list, "next_cursor", next);
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
    case OUTBOX_DISCARD_BINDS_OBJECT:
        resp_error(r, API_CONFLICT,
                   json_pack("{s:s,s:s}", "state", d.state, "operation", d.operation),
                   "outbox row %lld opens its object (%s): the rows behind it need the object, "
                   "so it cannot be discarded; fix its cause and retry it "
                   "(POST /llm-ops/v1/outbox/%lld/retry)",
                   id, d.operation, id);
        return;
    case OUTBOX_DISCARD_DB_ERROR:
        break;
    }
    resp_error(r, API_DATABASE_UNAVAILABLE, NULL, "cannot discard: %s", err.message);
}
