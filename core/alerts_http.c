/* /llm-ops/v1/alerts: Alertmanager's webhook receiver, and the record of what it received.
 *
 * Each alert of a notification is recorded once per (fingerprint, startsAt, status) in
 * alert_events: Alertmanager sends a group again every repeat_interval and after a restart,
 * and such a repeat only bumps times_received, so a firing alert acts once, also when two
 * deliveries of it cross (the row is claimed under its lock). An alert whose action could not
 * be made (result error: the database or the tool was down), or that a delivery took more
 * than 60 s ago without finishing (its worker died: still pending), acts again when it comes
 * again. Alertmanager
 * looks only at the status: 2xx is delivered, 5xx is retried; so the answer is 200 whenever
 * one alert was recorded (what went wrong per alert is in the answer and the record), and
 * 503 only when none could be. */
#include "alerts.h"
#include "app.h"
#include "handlers.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TS_FMT "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'"

static void count_action(const char *action, const char *result)
{
    char labels[128];
    snprintf(labels, sizeof labels, "action=\"%s\",result=\"%s\"", action, result);
    metrics_add("llmops_alert_actions_total", labels, 1);
}

static int severity(const char *result)
{
    static const char *const order[] = {"ignored", "noop", "done", "failed", "error", NULL};
    for (int i = 0; order[i]; i++)
        if (strcmp(order[i], result) == 0)
            return i;
    return 0;
}

/* What a new (or retried) alert makes happen: the actions' JSON, and the worst result. */
static json_t *act(struct app *app, const struct alerts_alert *a, const char **result)
{
    json_t *out = json_array();
    if (!a->firing) {
        *result = "ignored";
        count_action("none", "ignored");
        return out;
    }
    struct alerts_action acts[ALERTS_TARGETS_MAX];
    int missing_env = 0;
    int n = alerts_plan(a, acts, ALERTS_TARGETS_MAX, &missing_env);
    *result = "ignored";
    if (missing_env) {
        *result = "failed";
        count_action("none", "failed");
        json_array_append_new(
            out, json_pack("{s:s,s:n,s:s,s:s}", "action", "none", "target", "result", "failed",
                           "message",
                           "the alert names a target (llmops_category, llmops_deployment) but no"
                           " environment: add the label llmops_env"));
    }
    if (n == 0 && !missing_env) {
        count_action("none", "ignored");
        return out;
    }
    char actor[64], reason[FLAGS_REASON_MAX + 1];
    alerts_actor(a, actor, sizeof actor);
    alerts_reason(a, reason, sizeof reason);
    for (int i = 0; i < n; i++) {
        char msg[600], target[200];
        const char *res = alerts_run(app, &acts[i], actor, reason, msg, sizeof msg);
        snprintf(target, sizeof target, "%s/%s", acts[i].env, acts[i].value);
        count_action(acts[i].action, res);
        if (severity(res) > severity(*result))
            *result = res;
        json_array_append_new(out, json_pack("{s:s,s:s,s:s,s:s}", "action", acts[i].action,
                                             "target", target, "result", res, "message", msg));
        log_info("alert %s (%s): %s %s: %s: %s", a->alertname, a->fingerprint, acts[i].action,
                 target, res, msg);
    }
    return out;
}

static json_t *answer(const struct alerts_alert *a, const char *id, int repeat, const char *result,
                      json_t *actions)
{
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:b,s:s,s:o}", "id", id, "fingerprint", a->fingerprint,
                     "alertname", a->alertname, "status", a->firing ? "firing" : "resolved",
                     "starts_at", a->starts_at, "repeat", repeat, "result", result, "actions",
                     actions);
}

/* Records and handles one alert. Returns its answer, or NULL when it could not be recorded
 * (the database failed: err filled). */
static json_t *handle(struct req *r, const struct alerts_message *m, const struct alerts_alert *a,
                      struct db_error *err)
{
    struct app *app = r->app;
    const char *status = a->firing ? "firing" : "resolved";
    char *labels = json_dumps(a->labels, JSON_COMPACT | JSON_SORT_KEYS);
    char *annotations =
        a->annotations ? json_dumps(a->annotations, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    /* Go's zero time: a firing alert has no end yet */
    int no_end = !a->ends_at[0] || strncmp(a->ends_at, "0001-01-01T00:00:00", 19) == 0;
    const char *params[] = {a->fingerprint,   a->starts_at, no_end ? NULL : a->ends_at,
                            status,           a->alertname, m->receiver,
                            m->group_key,     labels,       annotations ? annotations : "{}",
                            a->generator_url, r->who.name};
    PGresult *res = db_exec(
        &app->db,
        "INSERT INTO alert_events (fingerprint, starts_at, ends_at, status, alertname, receiver,"
        " group_key, labels, annotations, generator_url, received_by) VALUES ($1,"
        " $2::timestamptz, $3::timestamptz, $4, $5, $6, $7, $8::jsonb, $9::jsonb, $10, $11)"
        " ON CONFLICT (fingerprint, starts_at, status) DO NOTHING RETURNING id",
        11, params, err);
    free(labels);
    free(annotations);
    if (!res)
        return NULL;
    char id[24] = "";
    int repeat = PQntuples(res) == 0;
    if (!repeat)
        snprintf(id, sizeof id, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    if (repeat) {
        /* Takes the alert to act on it again when its last try failed (error), or when the
         * delivery acting on it has not finished for 60 s (its worker died). The row lock
         * serialises concurrent deliveries: the one that blocked sees the claim made. */
        const char *p2[] = {a->fingerprint, a->starts_at, status};
        res = db_exec(&app->db,
                      "WITH old AS (SELECT id, result, (result = 'error' OR (result = 'pending' AND"
                      "  claimed_at < now() - interval '60 seconds')) AS take FROM alert_events"
                      "  WHERE fingerprint = $1 AND starts_at = $2::timestamptz AND status = $3"
                      "  FOR UPDATE)"
                      " UPDATE alert_events e SET times_received = e.times_received + 1,"
                      "  last_received_at = now(),"
                      "  result = CASE WHEN old.take THEN 'pending' ELSE e.result END,"
                      "  claimed_at = CASE WHEN old.take THEN now() ELSE e.claimed_at END"
                      " FROM old WHERE e.id = old.id"
                      " RETURNING e.id, old.result, e.actions::text, old.take",
                      3, p2, err);
        if (!res)
            return NULL;
        if (PQntuples(res) != 1) {
            PQclear(res);
            err->status = DB_QUERY_ERROR;
            snprintf(err->message, sizeof err->message, "the alert's record vanished");
            return NULL;
        }
        snprintf(id, sizeof id, "%s", PQgetvalue(res, 0, 0));
        char result[16];
        snprintf(result, sizeof result, "%s", PQgetvalue(res, 0, 1));
        int take = strcmp(PQgetvalue(res, 0, 3), "t") == 0;
        json_t *actions = json_loads(PQgetvalue(res, 0, 2), 0, NULL);
        PQclear(res);
        if (!take) /* done, or being done by another delivery (pending) */
            return answer(a, id, 1, result, actions ? actions : json_array());
        json_decref(actions); /* acted on again below */
    }
    const char *result;
    json_t *actions = act(app, a, &result);
    char *as = json_dumps(actions, JSON_COMPACT);
    const char *p3[] = {id, result, as};
    struct db_error uerr;
    res =
        db_exec(&app->db, "UPDATE alert_events SET result = $2, actions = $3::jsonb WHERE id = $1",
                3, p3, &uerr);
    free(as);
    if (res)
        PQclear(res);
    else /* acted but not written: the record stays pending; a repeat 60 s on acts again */
        log_warning("alert %s: its result could not be recorded: %s", a->fingerprint,
                    db_error_detail(&uerr));
    return answer(a, id, repeat, result, actions);
}

void alerts_post(struct req *r)
{
    struct alerts_message m;
    struct alerts_parse_error pe;
    if (alerts_parse(r->body, &m, &pe) < 0) {
        resp_error(r, API_VALIDATION_FAILED,
                   pe.field[0] ? json_pack("{s:s}", "field", pe.field) : NULL, "%s", pe.message);
        return;
    }
    json_t *list = json_array();
    size_t recorded = 0, firing = 0, acted = 0;
    struct db_error err = {0};
    for (size_t i = 0; i < m.n; i++) {
        const struct alerts_alert *a = &m.alerts[i];
        metrics_add("llmops_alerts_received_total",
                    a->firing ? "status=\"firing\"" : "status=\"resolved\"", 1);
        firing += a->firing;
        json_t *one = handle(r, &m, a, &err);
        if (!one) {
            log_warning("alert %s could not be recorded: %s", a->fingerprint,
                        db_error_detail(&err));
            json_array_append_new(
                list, json_pack("{s:n,s:s,s:s,s:s,s:s,s:b,s:s,s:[],s:s}", "id", "fingerprint",
                                a->fingerprint, "alertname", a->alertname, "status",
                                a->firing ? "firing" : "resolved", "starts_at", a->starts_at,
                                "repeat", 0, "result", "error", "actions", "message",
                                "the alert could not be recorded: the database is unavailable"));
            continue;
        }
        recorded++;
        if (strcmp(json_string_value(json_object_get(one, "result")), "done") == 0 &&
            !json_is_true(json_object_get(one, "repeat")))
            acted++;
        json_array_append_new(list, one);
    }
    if (m.n > 0 && recorded == 0) {
        json_decref(list);
        alerts_message_free(&m);
        resp_error(r, API_DATABASE_UNAVAILABLE, NULL,
                   "no alert could be recorded (%s): Alertmanager will send them again",
                   err.message[0] ? err.message : "the database is unavailable");
        return;
    }
    char msg[160];
    snprintf(msg, sizeof msg, "%zu alert%s received (%zu firing), %zu rolled back now", m.n,
             m.n == 1 ? "" : "s", firing, acted);
    json_t *data = json_pack("{s:s,s:s,s:I,s:o}", "receiver", m.receiver, "status", m.status,
                             "truncated_alerts", (json_int_t)m.truncated_alerts, "alerts", list);
    alerts_message_free(&m);
    resp_success(r, 200, msg, data);
}

void alerts_list(struct req *r)
{
    const char *lim = http_query(r, "limit");
    long long limit = 100;
    if (lim && util_parse_int(lim, 1, 1000, &limit, NULL) < 0) {
        resp_error(r, API_VALIDATION_FAILED, json_pack("{s:s}", "field", "limit"),
                   "limit must be an integer 1-1000");
        return;
    }
    const char *status = http_query(r, "status");
    if (status && strcmp(status, "firing") != 0 && strcmp(status, "resolved") != 0) {
        resp_error(r, API_VALIDATION_FAILED,
                   json_pack("{s:s,s:[ss]}", "field", "status", "valid", "firing", "resolved"),
                   "status must be firing or resolved");
        return;
    }
    const char *fp = http_query(r, "fingerprint");
    char lims[24];
    snprintf(lims, sizeof lims, "%lld", limit);
    const char *params[] = {lims, status, fp};
    struct db_error err;
    PGresult *res = db_exec(
        &r->app->db,
        "SELECT coalesce(json_agg(a ORDER BY a.lr DESC, a.rid DESC), '[]') FROM ("
        " SELECT id::text AS id, fingerprint, alertname, status,"
        " to_char(starts_at AT TIME ZONE 'UTC', " TS_FMT ") AS starts_at,"
        " to_char(ends_at AT TIME ZONE 'UTC', " TS_FMT ") AS ends_at, receiver, group_key,"
        " labels, annotations, generator_url, received_by, result, actions, times_received,"
        " to_char(first_received_at AT TIME ZONE 'UTC', " TS_FMT ") AS first_received_at,"
        " to_char(last_received_at AT TIME ZONE 'UTC', " TS_FMT ") AS last_received_at,"
        " e.last_received_at AS lr, e.id AS rid FROM alert_events e"
        " WHERE ($2::text IS NULL OR status = $2) AND ($3::text IS NULL OR fingerprint = $3)"
        " ORDER BY e.last_received_at DESC, e.id DESC LIMIT $1::int) a",
        3, params, &err);
    if (!res) {
        resp_error(r, API_DATABASE_UNAVAILABLE, NULL, "the alert record is unavailable");
        return;
    }
    json_t *list = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
    PQclear(res);
    if (!list)
        list = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        json_object_del(v, "lr"); /* only for the order */
        json_object_del(v, "rid");
    }
    char msg[64];
    snprintf(msg, sizeof msg, "%zu alert%s", json_array_size(list),
             json_array_size(list) == 1 ? "" : "s");
    resp_success(r, 200, msg, json_pack("{s:o}", "alerts", list));
}
