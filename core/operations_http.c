/* The /llm-ops/v1/operations routes: long operations (operations.h), read by readers and
 * cancelled by operators. */
#include "operations.h"

#include "handlers.h"
#include "log.h"
#include "page.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const op_states[] = {"pending", "running", "succeeded", "failed", "cancelled"};

#define TS_(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

static const char op_select[] =
    "SELECT id, environment, category, operation, instance, object_id, state, progress_done,"
    " progress_total, progress_unit, error, result::text, cancel_requested, attempts,"
    " " TS_("created_at") ", " TS_("started_at") ", " TS_("updated_at") ", " TS_(
        "finished_at") ", created_by, cancelled_by FROM operations";

static json_t *str_or_null(const PGresult *res, int i, int c)
{
    return PQgetisnull(res, i, c) ? json_null() : json_string(PQgetvalue(res, i, c));
}

static json_t *int_or_null(const PGresult *res, int i, int c, int *bad)
{
    return PQgetisnull(res, i, c) ? json_null() : json_integer(db_int(res, i, c, bad));
}

static json_t *op_json(const PGresult *res, int i, int *bad)
{
    json_t *result = json_null();
    if (!PQgetisnull(res, i, 11)) {
        result = json_loads(PQgetvalue(res, i, 11), 0, NULL);
        if (!result)
            result = json_null();
    }
    return json_pack(
        "{s:I,s:s,s:s,s:s,s:s,s:o,s:s,s:{s:o,s:o,s:o},s:o,s:o,s:b,s:I,s:s,s:o,s:s,s:o,s:s,s:o}",
        "id", (json_int_t)db_int(res, i, 0, bad), "environment", PQgetvalue(res, i, 1), "category",
        PQgetvalue(res, i, 2), "operation", PQgetvalue(res, i, 3), "instance",
        PQgetvalue(res, i, 4), "object_id", str_or_null(res, i, 5), "state", PQgetvalue(res, i, 6),
        "progress", "done", int_or_null(res, i, 7, bad), "total", int_or_null(res, i, 8, bad),
        "unit", str_or_null(res, i, 9), "error", str_or_null(res, i, 10), "result", result,
        "cancel_requested", strcmp(PQgetvalue(res, i, 12), "t") == 0, "attempts",
        (json_int_t)db_int(res, i, 13, bad), "created", PQgetvalue(res, i, 14), "started",
        str_or_null(res, i, 15), "updated", PQgetvalue(res, i, 16), "finished",
        str_or_null(res, i, 17), "created_by", PQgetvalue(res, i, 18), "cancelled_by",
        str_or_null(res, i, 19));
}

static int parse_id(struct req *r, long long *id)
{
    const char *why;
    if (util_parse_int(r->path_params[0], 1, INT64_MAX, id, &why) < 0) {
        char q[UTIL_QUOTE_SIZE(32)];
        resp_error(r, API_NOT_FOUND, json_pack("{s:s}", "field", "id"), "no operation '%s'",
                   util_quote(q, sizeof q, r->path_params[0], 32));
        return -1;
    }
    return 0;
}

static void answer_one(struct req *r, long long id, int status, const char *msg)
{
    char ids[24];
    snprintf(ids, sizeof ids, "%lld", id);
    const char *p[] = {ids};
    char sql[sizeof op_select + 40];
    snprintf(sql, sizeof sql, "%s WHERE id = $1::bigint", op_select);
    struct db_error err;
    PGresult *res = db_exec(&r->app->db, sql, 1, p, &err);
    if (!res) {
        resp_error(r, API_DATABASE_UNAVAILABLE, NULL, "cannot read the operation: %s", err.message);
        return;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        resp_error(r, API_NOT_FOUND, json_pack("{s:s}", "field", "id"), "no operation %lld", id);
        return;
    }
    int bad = 0;
    json_t *j = op_json(res, 0, &bad);
    char m[96];
    if (!msg)
        snprintf(m, sizeof m, "operation %lld is %s", id, PQgetvalue(res, 0, 6));
    PQclear(res);
    if (bad) {
        json_decref(j);
        resp_error(r, API_INTERNAL, NULL, "the operation could not be read (see the log)");
        return;
    }
    resp_success(r, status, msg ? msg : m, j);
}

/* GET /operations/{id} */
void operations_get(struct req *r)
{
    long long id;
    if (parse_id(r, &id) == 0)
        answer_one(r, id, 200, NULL);
}

/* GET /operations?env=&state=&limit=&after= */
void operations_list(struct req *r)
{
    const char *state;
    const char *env = http_query(r, "env") ? r->env : NULL;
    struct page pg;
    if (page_args(r, PAGE_CURSOR_ROW_ID, 100, 1000, &pg) < 0 ||
        page_state_arg(r, op_states, UTIL_ARRAY_LEN(op_states), &state) < 0)
        return;
    char lim[24], aft[24];
    snprintf(lim, sizeof lim, "%lld", pg.limit + 1);
    snprintf(aft, sizeof aft, "%lld", pg.after_id);
    const char *p[] = {state, env, aft, lim};
    char sql[sizeof op_select + 200];
    snprintf(sql, sizeof sql,
             "%s WHERE ($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR environment ="
             " $2) AND id > $3::bigint ORDER BY id LIMIT $4::integer",
             op_select);
    struct db_error err;
    PGresult *res = db_exec(&r->app->db, sql, 4, p, &err);
    if (!res) {
        resp_error(r, API_DATABASE_UNAVAILABLE, NULL, "cannot read the operations: %s",
                   err.message);
        return;
    }
    json_t *list, *next;
    int bad = page_rows(res, &pg, op_json, &list, &next);
    PQclear(res);
    if (bad) {
        json_decref(list);
        json_decref(next);
        resp_error(r, API_INTERNAL, NULL, "an operation could not be read (see the log)");
        return;
    }
    char msg[64];
    snprintf(msg, sizeof msg, "%zu operation%s", json_array_size(list),
             json_array_size(list) == 1 ? "" : "s");
    resp_success(r, 200, msg, json_pack("{s:o,s:o}", "operations", list, "next_cursor", next));
}

/* POST /operations/{id}/cancel: a pending operation is cancelled at once; a running one is
 * asked to stop (its op sees cancelled() within 100 ms of its next report) and becomes
 * cancelled when it has. */
void operations_cancel(struct req *r)
{
    long long id;
    if (parse_id(r, &id) < 0)
        return;
    char ids[24];
    snprintf(ids, sizeof ids, "%lld", id);
    const char *who = r->who.name[0] ? r->who.name : "anonymous";
    const char *p[] = {ids, who};
    struct db_error err;
    PGresult *res = db_exec(
        &r->app->db,
        "UPDATE operations SET cancel_requested = true, cancelled_by = $2, updated_at = now(),"
        " state = CASE WHEN state = 'pending' THEN 'cancelled' ELSE state END,"
        " error = CASE WHEN state = 'pending' THEN 'cancelled before it ran' ELSE error END,"
        " finished_at = CASE WHEN state = 'pending' THEN now() ELSE finished_at END"
        " WHERE id = $1::bigint AND state IN ('pending', 'running') RETURNING state",
        2, p, &err);
    if (!res) {
        resp_error(r, API_DATABASE_UNAVAILABLE, NULL, "cannot cancel: %s", err.message);
        return;
    }
    int changed = PQntuples(res) == 1;
    PQclear(res);
    if (changed) {
        log_info("operation %lld: cancel asked by %s", id, who);
        answer_one(r, id, 202, "cancel requested");
        return;
    }
    res = db_exec(&r->app->db, "SELECT state FROM operations WHERE id = $1::bigint", 1, p, &err);
    if (!res) {
        resp_error(r, API_DATABASE_UNAVAILABLE, NULL, "cannot read the operation: %s", err.message);
        return;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        resp_error(r, API_NOT_FOUND, json_pack("{s:s}", "field", "id"), "no operation %lld", id);
        return;
    }
    char state[16];
    snprintf(state, sizeof state, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    resp_error(r, API_CONFLICT, json_pack("{s:s}", "state", state),
               "operation %lld is %s already: only a pending or running one can be cancelled", id,
               state);
}
