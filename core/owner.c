#include "owner.h"

#include "metrics.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

struct instance *owner_pick(struct app *app, struct req *r, int env_index, int category,
                            const char *subject)
{
    const struct flag_cache *fc = app_flags(app, r);
    if (!fc)
        return NULL;
    const struct flag *f = &fc->f[env_index][category];
    enum flag_route why;
    const char *name =
        flags_pick(f, app->conf->envs[env_index], category, subject ? subject : r->who.name, &why);
    if (!name) {
        resp_error(r, API_VALIDATION_FAILED, json_pack("{s:s}", "field", "env"),
                   "no instance serves %s in %s: set the flag (PUT /llm-ops/v1/flags/%s/%s)",
                   category_name(category), app->conf->envs[env_index], app->conf->envs[env_index],
                   category_name(category));
        return NULL;
    }
    struct instance *in = plugins_find(&app->plugins, name);
    char labels[300], esc[140];
    metrics_escape(esc, sizeof esc, name);
    snprintf(labels, sizeof labels, "environment=\"%s\",category=\"%s\",plugin=\"%s\"",
             app->conf->envs[env_index], category_name(category), esc);
    metrics_add("llmops_flag_evaluations_total", labels, 1);
    if (!in || !in->initialised || in->st == INSTANCE_FAILED) {
        resp_error(r, API_TOOL_UNAVAILABLE, json_pack("{s:s}", "instance", name),
                   "instance %s, which serves %s in %s, is not running%s%s", name,
                   category_name(category), app->conf->envs[env_index], in ? ": " : "",
                   in ? in->reason : "");
        return NULL;
    }
    return in;
}

static void fill(struct owned *o, PGresult *res, int row)
{
    snprintf(o->id, sizeof o->id, "%s", PQgetvalue(res, row, 0));
    snprintf(o->kind, sizeof o->kind, "%s", PQgetvalue(res, row, 1));
    snprintf(o->environment, sizeof o->environment, "%s", PQgetvalue(res, row, 2));
    o->category = category_from_string(PQgetvalue(res, row, 3));
    snprintf(o->instance, sizeof o->instance, "%s", PQgetvalue(res, row, 4));
    snprintf(o->external_id, sizeof o->external_id, "%s", PQgetvalue(res, row, 5));
}

int owner_reserve(struct app *app, const char *kind, const char *env, int category,
                  const char *instance, const char *actor, struct owned *out, struct db_error *err)
{
    char hex[25], id[64];
    if (util_random_hex(hex, 12) < 0)
        return -1;
    snprintf(id, sizeof id, "%s_%s", kind, hex);
    const char *params[] = {id, kind, env, category_name(category), instance, actor};
    PGresult *r = db_exec(&app->db,
                          "INSERT INTO objects (id, kind, environment, category, instance,"
                          " created_by) VALUES ($1, $2, $3, $4, $5, $6)"
                          " RETURNING id, kind, environment, category, instance, ''",
                          6, params, err);
    if (!r)
        return -1;
    fill(out, r, 0);
    PQclear(r);
    return 0;
}

int owner_reserve_keyed(struct app *app, const char *kind, const char *env, int category,
                        const char *instance, const char *actor, const char *create_key,
                        struct owned *out, struct db_error *err)
{
    char hex[25], id[64];
    if (util_random_hex(hex, 12) < 0)
        return -1;
    snprintf(id, sizeof id, "%s_%s", kind, hex);
    const char *params[] = {id, kind, env, category_name(category), instance, actor, create_key};
    PGresult *r = db_exec(
        &app->db,
        "WITH old AS (SELECT id, kind, environment, category, instance FROM objects"
        "  WHERE instance = $5 AND kind = $2 AND create_key = $7 AND external_id IS NULL"
        "  ORDER BY created_at, id LIMIT 1),"
        " ins AS (INSERT INTO objects (id, kind, environment, category, instance, created_by,"
        "  create_key) SELECT $1, $2, $3, $4, $5, $6, $7 WHERE NOT EXISTS (SELECT 1 FROM old)"
        "  RETURNING id, kind, environment, category, instance)"
        " SELECT id, kind, environment, category, instance, '' FROM old"
        " UNION ALL SELECT id, kind, environment, category, instance, '' FROM ins",
        7, params, err);
    if (!r)
        return -1;
    if (PQntuples(r) != 1) {
        PQclear(r);
        err->status = DB_QUERY_ERROR;
        snprintf(err->message, sizeof err->message, "no reservation was made");
        return -1;
    }
    fill(out, r, 0);
    PQclear(r);
    return 0;
}

int owner_bind(struct app *app, const char *id, const char *external_id, struct db_error *err)
{
    const char *params[] = {id, external_id};
    PGresult *r =
        db_exec(&app->db, "UPDATE objects SET external_id = $2 WHERE id = $1", 2, params, err);
    if (!r)
        return -1;
    PQclear(r);
    return 0;
}

int owner_lookup(struct app *app, const char *id, struct owned *out, struct db_error *err)
{
    const char *params[] = {id};
    PGresult *r = db_exec(&app->db,
                          "SELECT id, kind, environment, category, instance,"
                          " coalesce(external_id, '') FROM objects WHERE id = $1",
                          1, params, err);
    if (!r)
        return -1;
    int found = PQntuples(r) == 1;
    if (found)
        fill(out, r, 0);
    PQclear(r);
    return found;
}

struct instance *owner_instance(struct app *app, const struct owned *o)
{
    struct instance *in = plugins_find(&app->plugins, o->instance);
    return in && in->initialised ? in : NULL;
}
