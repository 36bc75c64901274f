/* tracking-pg: experiments. Ids are decimal strings of tracking_pg_experiments.experiment_id;
 * names stay taken after a delete (as in MLflow); the idempotency key is a column. */
#include "tpg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *one_experiment(struct tpg *t, const char *op, const char *sql, const char *value,
                              const char *what, struct llmops_error *err)
{
    const char *p[] = {value};
    PGresult *r = tpg_exec(t, op, sql, 1, p, err);
    if (!r)
        return NULL;
    json_t *e = NULL;
    if (PQntuples(r) == 0) {
        char msg[200], q[160]; /* at most 80 characters, whole, within msg */
        snprintf(msg, sizeof msg, "no experiment has %s %s", what,
                 llmops_quote(q, sizeof q, value, 80));
        llmops_fail(err, LLMOPS_ERR_NOT_FOUND, 0, 0, msg);
    } else {
        e = tpg_json_column(r, 0, 0, err);
        if (e && tpg_finish_object(e, err) < 0) {
            json_decref(e);
            e = NULL;
        }
    }
    PQclear(r);
    return e;
}

json_t *tpg_experiment_by_id(struct tpg *t, const char *op, const char *id,
                             struct llmops_error *err)
{
    if (!tpg_is_experiment_id(id)) {
        llmops_fail(err, LLMOPS_ERR_NOT_FOUND, 0, 0, "no experiment has this id");
        return NULL;
    }
    return one_experiment(t, op,
                          "SELECT " TPG_EXPERIMENT_JSON " FROM tracking_pg_experiments e"
                          " WHERE e.experiment_id = $1::bigint",
                          id, "id", err);
}

json_t *tpg_experiment_by_key(struct tpg *t, const char *op, const char *key,
                              struct llmops_error *err)
{
    return one_experiment(t, op,
                          "SELECT " TPG_EXPERIMENT_JSON " FROM tracking_pg_experiments e"
                          " WHERE e.idempotency_key = $1",
                          key, "idempotency key", err);
}

int tpg_create_experiment(void *state, json_t *in, json_t **out, struct llmops_error *err)
{
    struct tpg *t = state;
    const char *key = tpg_str(in, "idempotency_key"), *name = tpg_str(in, "name");
    json_t *tags = tpg_map(in, "tags");
    char now[24], *tj = tpg_dump(tags);
    json_decref(tags);
    if (!tj)
        return llmops_fail(err, LLMOPS_ERR_INTERNAL, 0, 0, "out of memory");
    snprintf(now, sizeof now, "%lld", (long long)t->host->wall_ms());
    const char *p[] = {name, key, now, tj};
    /* A duplicate name or key inserts nothing; which one it was is read after. */
    PGresult *r = tpg_exec(
        t, "create_experiment",
        "WITH ins AS (INSERT INTO tracking_pg_experiments (name, idempotency_key, created_ms,"
        "  updated_ms) VALUES ($1, $2, $3::bigint, $3::bigint) ON CONFLICT DO NOTHING"
        "  RETURNING experiment_id),"
        " tags AS (INSERT INTO tracking_pg_experiment_tags (experiment_id, key, value)"
        "  SELECT ins.experiment_id, j.key, j.value FROM ins, jsonb_each_text($4::jsonb) j)"
        " SELECT experiment_id::text FROM ins",
        4, p, err);
    free(tj);
    if (!r)
        return -1;
    char id[32] = "";
    if (PQntuples(r) == 1)
        snprintf(id, sizeof id, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    json_t *e;
    if (id[0]) {
        e = tpg_experiment_by_id(t, "create_experiment", id, err);
    } else {
        e = tpg_experiment_by_key(t, "create_experiment", key, err);
        if (!e && err->code == LLMOPS_ERR_NOT_FOUND) {
            char msg[400], q[320]; /* at most 250 characters, whole, within msg */
            snprintf(msg, sizeof msg,
                     "an experiment named '%s' exists already (names of deleted experiments "
                     "stay taken)",
                     llmops_quote(q, sizeof q, name, 250));
            return llmops_fail(err, LLMOPS_ERR_CONFLICT, 0, 0, msg);
        }
    }
    if (!e)
        return -1;
    json_object_set_new(e, "created", json_boolean(id[0] != '\0'));
    *out = e;
    return 0;
}

int tpg_get_experiment(void *state, json_t *in, json_t **out, struct llmops_error *err)
{
    const char *id = tpg_str(in, "external_id");
    *out = tpg_experiment_by_id(state, "get_experiment", id, err);
    return *out ? 0 : -1;
}

/* name_prefix as a LIKE pattern that matches it literally (escape character '\'). */
static char *like_prefix(const char *s)
{
    char *p = malloc(2 * strlen(s) + 2), *w = p;
    if (!p)
        return NULL;
    for (; *s; s++) {
        if (*s == '\\' || *s == '%' || *s == '_')
            *w++ = '\\';
        *w++ = *s;
    }
    *w++ = '%';
    *w = '\0';
    return p;
}

int tpg_search_experiments(void *state, json_t *in, json_t **out, struct llmops_error *err)
{
    struct tpg *t = state;
    const char *name, *prefix, *lifecycle, *token;
    long long max = LLMOPS_TRACKING_MAX_RESULTS;
    name = tpg_str(in, "name");
    prefix = tpg_str(in, "name_prefix");
    lifecycle = tpg_lifecycle(in);
    tpg_int(in, "max_results", &max);
    token = tpg_str(in, "page_token");
    /* The search a token belongs to. */
    json_t *d =
        json_pack("{s:s?,s:s?,s:s}", "name", name, "name_prefix", prefix, "lifecycle", lifecycle);
    char *digest = d ? json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(d);
    if (!digest)
        return llmops_fail(err, LLMOPS_ERR_INTERNAL, 0, 0, "out of memory");
    char after[32] = "";
    if (token && (tpg_token_read(token, "e1", digest, after, sizeof after) < 0 ||
                  !tpg_is_experiment_id(after))) {
        free(digest);
        return llmops_fail(err, LLMOPS_ERR_INVALID, 0, 0,
                           "page_token is not a token of this search");
    }
    char *pattern = prefix ? like_prefix(prefix) : NULL;
    char limit[24];
    snprintf(limit, sizeof limit, "%lld", max + 1);
    const char *p[] = {name, pattern, lifecycle, after[0] ? after : NULL, limit};
    PGresult *r = tpg_exec(t, "search_experiments",
                           "SELECT " TPG_EXPERIMENT_JSON ", e.experiment_id::text"
                           " FROM tracking_pg_experiments e"
                           " WHERE ($1::text IS NULL OR e.name = $1)"
                           " AND ($2::text IS NULL OR e.name LIKE $2 ESCAPE '\\')"
                           " AND ($3 = 'all' OR e.lifecycle = $3)"
                           " AND ($4::bigint IS NULL OR e.experiment_id < $4::bigint)"
                           " ORDER BY e.experiment_id DESC LIMIT $5::int",
                           5, p, err);
    free(pattern);
    if (!r) {
        free(digest);
        return -1;
    }
    json_t *list = json_array();
    int n = PQntuples(r), rc = 0;
    for (int i = 0; i < n && i < max; i++) {
        json_t *e = tpg_json_column(r, i, 0, err);
        if (!e || tpg_finish_object(e, err) < 0) {
            json_decref(e);
            rc = -1;
            break;
        }
        json_array_append_new(list, e);
    }
    if (rc == 0) {
        *out = json_pack("{s:o}", "experiments", list);
        if (n > max) {
            char next[128];
            tpg_token_make(next, sizeof next, "e1", digest, PQgetvalue(r, (int)max - 1, 1));
            json_object_set_new(*out, "next_page_token", json_string(next));
        }
    } else {
        json_decref(list);
    }
    PQclear(r);
    free(digest);
    return rc;
}

int tpg_set_experiment_tags(void *state, json_t *in, json_t **out, struct llmops_error *err)
{
    struct tpg *t = state;
    const char *id = tpg_str(in, "external_id");
    json_t *tags = tpg_map(in, "tags");
    char *tj = tpg_dump(tags);
    json_decref(tags);
    if (!tj)
        return llmops_fail(err, LLMOPS_ERR_INTERNAL, 0, 0, "out of memory");
    if (!tpg_is_experiment_id(id)) {
        free(tj);
        return llmops_fail(err, LLMOPS_ERR_NOT_FOUND, 0, 0, "no experiment has this id");
    }
    char now[24];
    snprintf(now, sizeof now, "%lld", (long long)t->host->wall_ms());
    const char *p[] = {id, tj, now};
    PGresult *r =
        tpg_exec(t, "set_experiment_tags",
                 "WITH e AS (SELECT experiment_id, lifecycle FROM tracking_pg_experiments"
                 "  WHERE experiment_id = $1::bigint FOR UPDATE),"
                 " tags AS (INSERT INTO tracking_pg_experiment_tags (experiment_id, key, value)"
                 "  SELECT e.experiment_id, j.key, j.value FROM e, jsonb_each_text($2::jsonb) j"
                 "  WHERE e.lifecycle = 'active'"
                 "  ON CONFLICT (experiment_id, key) DO UPDATE SET value = EXCLUDED.value),"
                 " touch AS (UPDATE tracking_pg_experiments x SET updated_ms = $3::bigint FROM e"
                 "  WHERE x.experiment_id = e.experiment_id AND e.lifecycle = 'active')"
                 " SELECT lifecycle FROM e",
                 3, p, err);
    free(tj);
    if (!r)
        return -1;
    int found = PQntuples(r) == 1;
    int active = found && strcmp(PQgetvalue(r, 0, 0), "active") == 0;
    PQclear(r);
    if (!found)
        return llmops_fail(err, LLMOPS_ERR_NOT_FOUND, 0, 0, "no experiment has this id");
    if (!active)
        return llmops_fail(err, LLMOPS_ERR_INVALID, 0, 0, "the experiment is deleted");
    *out = json_object();
    return 0;
}

int tpg_delete_experiment(void *state, json_t *in, json_t **out, struct llmops_error *err)
{
    struct tpg *t = state;
    const char *id = tpg_str(in, "external_id");
    int deleted = 0;
    if (tpg_is_experiment_id(id)) {
        char now[24];
        snprintf(now, sizeof now, "%lld", (long long)t->host->wall_ms());
        const char *p[] = {id, now};
        /* Its runs are deleted with it, as MLflow does. */
        PGresult *r =
            tpg_exec(t, "delete_experiment",
                     "WITH d AS (UPDATE tracking_pg_experiments SET lifecycle = 'deleted',"
                     "  updated_ms = $2::bigint WHERE experiment_id = $1::bigint"
                     "  AND lifecycle = 'active' RETURNING experiment_id),"
                     " runs AS (UPDATE tracking_pg_runs SET lifecycle = 'deleted'"
                     "  WHERE experiment_id IN (SELECT experiment_id FROM d)"
                     "  AND lifecycle = 'active')"
                     " SELECT count(*) FROM d",
                     2, p, err);
        if (!r)
            return -1;
        deleted = strcmp(PQgetvalue(r, 0, 0), "0") != 0;
        PQclear(r);
    }
    *out = json_pack("{s:b}", "deleted", deleted);
    return 0;
}
