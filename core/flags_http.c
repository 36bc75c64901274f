/* /llm-ops/v1/flags: read, set, roll back, audit. */
#include "app.h"
#include "handlers.h"
#include "metrics.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

void flags_list(struct req *r)
{
    const struct flag_cache *fc = app_flags(r->app, r);
    if (!fc)
        return;
    json_t *list = json_array();
    for (int c = 1; c <= CATEGORY_COUNT; c++)
        json_array_append_new(list, flag_to_json(&fc->f[r->env_index][c], r->env, c));
    char msg[96];
    snprintf(msg, sizeof msg, "flags of %s", r->env);
    resp_success(r, 200, msg, json_pack("{s:s,s:o}", "environment", r->env, "flags", list));
}

/* {env} and {category} of the path; writes a 400 listing the valid values. */
static int path_env_category(struct req *r, int *env_index, int *category)
{
    const struct llmops_conf *c = r->app->conf;
    *env_index = conf_env_index(c, r->path_params[0]);
    if (*env_index < 0) {
        char list[600];
        conf_env_list(c, list, sizeof list);
        char q[UTIL_QUOTE_SIZE(64)];
        resp_error(r, API_VALIDATION_FAILED, json_pack("{s:s}", "field", "env"),
                   "unknown environment '%s'; valid: %s",
                   util_quote(q, sizeof q, r->path_params[0], 64), list);
        return -1;
    }
    *category = category_from_string(r->path_params[1]);
    if (*category < 0) {
        char q[UTIL_QUOTE_SIZE(64)];
        resp_error(r, API_VALIDATION_FAILED, json_pack("{s:s}", "field", "category"),
                   "unknown category '%s'; valid: %s",
                   util_quote(q, sizeof q, r->path_params[1], 64), category_list());
        return -1;
    }
    r->env = c->envs[*env_index];
    return 0;
}

/* An optional string member that names an instance (or null). */
static int instance_member(struct req *r, const char *key, int required, char *out, size_t size)
{
    json_t *v = json_object_get(r->body, key);
    out[0] = '\0';
    if (!v || json_is_null(v)) {
        if (required) {
            resp_error(r, API_VALIDATION_FAILED, json_pack("{s:s}", "field", key),
                       "member '%s' is required", key);
            return -1;
        }
        return 0;
    }
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) >= size) {
        resp_error(r, API_VALIDATION_FAILED, json_pack("{s:s}", "field", key),
                   "%s must be an instance name", key);
        return -1;
    }
    snprintf(out, size, "%s", json_string_value(v));
    return 0;
}

static const char *reason_member(struct req *r)
{
    json_t *v = json_object_get(r->body, "reason");
    if (!json_is_string(v) || json_string_length(v) == 0 ||
        json_string_length(v) > FLAGS_REASON_MAX) {
        resp_error(r, API_VALIDATION_FAILED, json_pack("{s:s}", "field", "reason"),
                   "reason is required: 1-%d characters saying why (it goes to the audit log)",
                   FLAGS_REASON_MAX);
        return NULL;
    }
    return json_string_value(v);
}

static int only_members(struct req *r, const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach(r->body, key, v)
    {
        int ok = 0;
        for (const char *const *a = allowed; *a; a++)
            if (strcmp(*a, key) == 0)
                ok = 1;
        if (!ok) {
            char q[UTIL_QUOTE_SIZE(64)];
            resp_error(r, API_VALIDATION_FAILED, json_pack("{s:s}", "field", key),
                       "unknown member '%s'", util_quote(q, sizeof q, key, 64));
            return -1;
        }
    }
    return 0;
}

/* plan of a PUT: the flag asked for, whatever it was. */
static int plan_set(const struct flag *before, struct flag *after, void *ud, char *msg,
                    size_t msgsize)
{
    (void)before;
    (void)msg;
    (void)msgsize;
    *after = *(const struct flag *)ud;
    return 0;
}

struct rollback_plan {
    const char *env;
    int category;
};

/* plan of a rollback: decided on the flag as it is now, under the lock. */
static int plan_rollback(const struct flag *before, struct flag *after, void *ud, char *msg,
                         size_t msgsize)
{
    const struct rollback_plan *rp = ud;
    return flags_plan_rollback(before, rp->env, rp->category, after, msg, msgsize);
}

/* Changes the flag; answers 200 {flag, audit}, 409 when plan refused, or 503. Returns 1 when
 * the flag was changed. */
static int change_flag(struct req *r, int category, struct flag_change *ch)
{
    struct db_error err;
    ch->actor = r->who.name;
    json_t *audit = flags_change(&r->app->db, r->app->conf, r->env, category, ch, &err);
    if (!audit) {
        if (err.status == DB_OK)
            resp_error(r, API_CONFLICT, NULL, "%s", ch->refusal);
        else
            resp_error(r, API_DATABASE_UNAVAILABLE, NULL, "the flag could not be stored: %s",
                       err.message);
        return 0;
    }
    app_changed(r->app, METRICS_CHANGE_FLAGS);
    char msg[200];
    snprintf(msg, sizeof msg, "%s of %s now served by %s", category_name(category), r->env,
             ch->after.active);
    struct flag shown = ch->after;
    shown.overridden = 1;
    snprintf(shown.updated_by, sizeof shown.updated_by, "%s", r->who.name);
    snprintf(shown.updated_at, sizeof shown.updated_at, "%s",
             json_string_value(json_object_get(audit, "at")));
    resp_success(
        r, 200, msg,
        json_pack("{s:o,s:o}", "flag", flag_to_json(&shown, r->env, category), "audit", audit));
    return 1;
}

void flags_put(struct req *r)
{
    int env_index, category;
    if (path_env_category(r, &env_index, &category) < 0)
        return;
    static const char *const allowed[] = {"active",          "fallback", "candidate",
                                          "rollout_percent", "reason",   NULL};
    if (only_members(r, allowed) < 0)
        return;
    struct flag after;
    memset(&after, 0, sizeof after);
    if (instance_member(r, "active", 1, after.active, sizeof after.active) < 0 ||
        instance_member(r, "fallback", 0, after.fallback, sizeof after.fallback) < 0 ||
        instance_member(r, "candidate", 0, after.candidate, sizeof after.candidate) < 0)
        return;
    json_t *ro = json_object_get(r->body, "rollout_percent");
    if (ro && !json_is_null(ro)) {
        if (!json_is_integer(ro) || json_integer_value(ro) < 0 || json_integer_value(ro) > 100) {
            resp_error(r, API_VALIDATION_FAILED, json_pack("{s:s}", "field", "rollout_percent"),
                       "rollout_percent must be an integer 0-100");
            return;
        }
        after.rollout = (int)json_integer_value(ro);
    }
    if (after.rollout > 0 && !after.candidate[0]) {
        resp_error(r, API_VALIDATION_FAILED, json_pack("{s:s}", "field", "rollout_percent"),
                   "rollout_percent needs a candidate");
        return;
    }
    const char *reason = reason_member(r);
    if (!reason)
        return;
    char msg[600];
    if (flags_check_instances(&r->app->plugins, category, after.active, after.fallback,
                              after.candidate, msg, sizeof msg) < 0) {
        resp_error(r, API_VALIDATION_FAILED, NULL, "%s", msg);
        return;
    }
    (void)env_index;
    struct flag_change ch = {.action = "set", .reason = reason, .plan = plan_set, .ud = &after};
    change_flag(r, category, &ch);
}

void flags_rollback(struct req *r)
{
    int env_index, category;
    if (path_env_category(r, &env_index, &category) < 0)
        return;
    static const char *const allowed[] = {"reason", NULL};
    if (only_members(r, allowed) < 0)
        return;
    const char *reason = reason_member(r);
    if (!reason)
        return;
    (void)env_index;
    struct rollback_plan rp = {r->env, category};
    struct flag_change ch = {
        .action = "rollback", .reason = reason, .plan = plan_rollback, .ud = &rp};
    /* counted once: only the rollback that changed the flag gets here */
    if (change_flag(r, category, &ch)) {
        char labels[160];
        snprintf(labels, sizeof labels, "environment=\"%s\",category=\"%s\"", r->env,
                 category_name(category));
        metrics_add("llmops_flag_fallbacks_total", labels, 1);
    }
}

void flags_audit(struct req *r)
{
    const char *lim = http_query(r, "limit");
    long long limit = 100;
    if (lim && util_parse_int(lim, 1, 1000, &limit, NULL) < 0) {
        resp_error(r, API_VALIDATION_FAILED, json_pack("{s:s}", "field", "limit"),
                   "limit must be an integer 1-1000");
        return;
    }
    char lims[24];
    snprintf(lims, sizeof lims, "%lld", limit);
    /* no env: every environment */
    const char *env = http_query(r, "env") ? r->env : NULL;
    const char *params[] = {env, lims};
    struct db_error err;
    PGresult *res = db_exec(
        &r->app->db,
        "SELECT coalesce(json_agg(a ORDER BY a.id DESC), '[]') FROM ("
        " SELECT id, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS at,"
        " actor, action, environment, category, before, after, reason FROM flag_audit"
        " WHERE $1::text IS NULL OR environment = $1 ORDER BY id DESC LIMIT $2::int) a",
        2, params, &err);
    if (!res) {
        resp_error(r, API_DATABASE_UNAVAILABLE, NULL, "the audit log is unavailable");
        return;
    }
    json_t *list = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
    PQclear(res);
    char msg[64];
    snprintf(msg, sizeof msg, "%zu flag change%s", json_array_size(list),
             json_array_size(list) == 1 ? "" : "s");
    resp_success(r, 200, msg, json_pack("{s:o}", "entries", list ? list : json_array()));
}
