#include "flags.h"

#include "http.h"
#include "plugin.h"
#include "util.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

static void copy(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src ? src : "");
}

/* The flag the configuration gives (all empty when it gives none). */
static void config_flag(const struct llmops_conf *conf, const char *env, int category,
                        struct flag *f)
{
    memset(f, 0, sizeof *f);
    const struct conf_flag *cf = conf_flag_find(conf, env, category);
    if (!cf)
        return;
    copy(f->active, sizeof f->active, cf->active);
    copy(f->fallback, sizeof f->fallback, cf->fallback);
    copy(f->candidate, sizeof f->candidate, cf->candidate);
    f->rollout = cf->rollout;
}

int flags_load(struct flag_cache *fc, const struct llmops_conf *conf, struct db *db,
               struct db_error *err)
{
    memset(fc, 0, sizeof *fc);
    for (int e = 0; e < conf->n_envs; e++)
        for (int c = 1; c <= CATEGORY_COUNT; c++)
            config_flag(conf, conf->envs[e], c, &fc->f[e][c]);
    PGresult *r =
        db_exec(db,
                "SELECT environment, category, active, coalesce(fallback, ''), "
                "coalesce(candidate, ''), rollout_percent, updated_by, "
                "to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
                "FROM flag_overrides",
                0, NULL, err);
    if (!r)
        return -1;
    for (int i = 0; i < PQntuples(r); i++) {
        int e = conf_env_index(conf, PQgetvalue(r, i, 0));
        int c = category_from_string(PQgetvalue(r, i, 1));
        if (e < 0 || c < 0)
            continue; /* an environment no longer configured */
        struct flag *f = &fc->f[e][c];
        copy(f->active, sizeof f->active, PQgetvalue(r, i, 2));
        copy(f->fallback, sizeof f->fallback, PQgetvalue(r, i, 3));
        copy(f->candidate, sizeof f->candidate, PQgetvalue(r, i, 4));
        long long v = 0;
        util_parse_int(PQgetvalue(r, i, 5), 0, 100, &v, NULL);
        f->rollout = (int)v;
        f->overridden = 1;
        copy(f->updated_by, sizeof f->updated_by, PQgetvalue(r, i, 6));
        copy(f->updated_at, sizeof f->updated_at, PQgetvalue(r, i, 7));
    }
    PQclear(r);
    fc->valid = 1;
    return 0;
}

/* FNV-1a, 64-bit: stable across builds and hosts, and cheap (SHA-256 through EVP cost
 * ~400 ns per evaluation; this is ~20). Stability is all bucketing needs. */
static uint64_t fnv1a(uint64_t h, const char *s)
{
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

int flags_bucket(const char *env, int category, const char *subject)
{
    uint64_t h = 14695981039346656037ULL;
    h = fnv1a(h, env);
    h = fnv1a(h, "/");
    h = fnv1a(h, category_name(category));
    h = fnv1a(h, "/");
    h = fnv1a(h, subject);
    h ^= h >> 33; /* fold the high bits in: FNV's low bits alone spread less well */
    return (int)(h % 100);
}

const char *flags_pick(const struct flag *f, const char *env, int category, const char *subject,
                       enum flag_route *why)
{
    if (!f->active[0]) {
        *why = FLAG_NONE;
        return NULL;
    }
    if (f->candidate[0] && f->rollout > 0 && subject &&
        flags_bucket(env, category, subject) < f->rollout) {
        *why = FLAG_CANDIDATE;
        return f->candidate;
    }
    *why = FLAG_ACTIVE;
    return f->active;
}

json_t *flag_to_json(const struct flag *f, const char *env, int category)
{
    return json_pack("{s:s,s:s,s:o,s:o,s:o,s:i,s:s,s:o,s:o}", "environment", env, "category",
                     category_name(category), "active", json_str_or_null(f->active), "fallback",
                     json_str_or_null(f->fallback), "candidate", json_str_or_null(f->candidate),
                     "rollout_percent", f->rollout, "source", f->overridden ? "override" : "config",
                     "updated_by", json_str_or_null(f->updated_by), "updated_at",
                     json_str_or_null(f->updated_at));
}

int flags_plan_rollback(const struct flag *before, const char *env, int category,
                        struct flag *after, char *msg, size_t msgsize)
{
    if (!before->fallback[0]) {
        snprintf(msg, msgsize, "%s of %s has no fallback to roll back to", category_name(category),
                 env);
        return -1;
    }
    if (strcmp(before->active, before->fallback) == 0 && !before->candidate[0]) {
        snprintf(msg, msgsize, "%s of %s is already served by its fallback %s",
                 category_name(category), env, before->fallback);
        return -1;
    }
    *after = *before;
    snprintf(after->active, sizeof after->active, "%s", before->fallback);
    after->candidate[0] = '\0';
    after->rollout = 0;
    return 0;
}

static int check_one(const struct plugin_registry *reg, int category, const char *role,
                     const char *name, char *msg, size_t msgsize)
{
    if (!name || !*name)
        return 0;
    const struct instance *in = NULL;
    for (int i = 0; i < reg->ninsts; i++)
        if (strcmp(reg->insts[i].name, name) == 0)
            in = &reg->insts[i];
    if (!in) {
        char known[512] = "";
        size_t used = 0;
        for (int i = 0; i < reg->ninsts; i++) {
            if (!reg->insts[i].mod || (int)reg->insts[i].mod->desc->category != category)
                continue;
            int w = snprintf(known + used, sizeof known - used, "%s%s", used ? ", " : "",
                             reg->insts[i].name);
            if (w > 0 && (size_t)w < sizeof known - used)
                used += (size_t)w;
        }
        snprintf(msg, msgsize, "%s instance '%s' is not configured; %s instances: %s", role, name,
                 category_name(category), used ? known : "none");
        return -1;
    }
    if (!in->mod) {
        snprintf(msg, msgsize, "%s instance '%s' has no loaded module (%s)", role, name,
                 in->reason);
        return -1;
    }
    if ((int)in->mod->desc->category != category) {
        snprintf(msg, msgsize, "%s instance '%s' serves %s (module %s), not %s", role, name,
                 category_name((int)in->mod->desc->category), in->mod->name,
                 category_name(category));
        return -1;
    }
    return 0;
}

int flags_check_instances(const struct plugin_registry *reg, int category, const char *active,
                          const char *fallback, const char *candidate, char *msg, size_t msgsize)
{
    if (check_one(reg, category, "active", active, msg, msgsize) < 0 ||
        check_one(reg, category, "fallback", fallback, msg, msgsize) < 0 ||
        check_one(reg, category, "candidate", candidate, msg, msgsize) < 0)
        return -1;
    return 0;
}

int flags_check_config(const struct llmops_conf *conf, const struct plugin_registry *reg,
                       struct conf_errors *errs)
{
    int problems = 0;
    for (int i = 0; i < conf->nflags; i++) {
        const struct conf_flag *f = &conf->flags[i];
        char msg[512];
        /* instances that do not exist are reported by conf_load already */
        if (!f->active)
            continue;
        if (flags_check_instances(reg, f->category, f->active, f->fallback, f->candidate, msg,
                                  sizeof msg) < 0 &&
            !strstr(msg, "is not configured")) {
            conf_error(errs, f->where, "[flags \"%s\"] %s: %s", f->env, category_name(f->category),
                       msg);
            problems++;
        }
    }
    return problems;
}

/* One statement of the change's transaction; NULL with err filled (and the transaction
 * rolled back) when it failed. A statement is never sent once the connection the
 * transaction began on is gone: db_exec would connect again and run it outside the
 * transaction (the server rolled that one back when the old connection went). */
static PGresult *tx_exec(struct db *db, unsigned long reconnects, const char *sql, int n,
                         const char *const *params, struct db_error *err)
{
    if (!db->conn || db->reconnects != reconnects) {
        err->status = DB_UNAVAILABLE;
        err->sqlstate[0] = '\0';
        snprintf(err->message, sizeof err->message,
                 "the connection to PostgreSQL was lost during the change");
        return NULL;
    }
    PGresult *r = db_exec(db, sql, n, params, err);
    if (!r && err->status == DB_QUERY_ERROR)
        PQclear(db_exec(db, "ROLLBACK", 0, NULL, &(struct db_error){0}));
    return r;
}

json_t *flags_change(struct db *db, const struct llmops_conf *conf, const char *env, int category,
                     struct flag_change *ch, struct db_error *err)
{
    memset(err, 0, sizeof *err);
    ch->refusal[0] = '\0';
    if (db_ensure(db, err) != DB_OK)
        return NULL;
    unsigned long reconnects = db->reconnects;
    const char *key[] = {env, category_name(category)};
    PGresult *r = tx_exec(db, reconnects, "BEGIN", 0, NULL, err);
    if (!r)
        return NULL;
    PQclear(r);
    /* A transaction-scoped lock per (environment, category) serialises the writers, also
     * while there is no override row to lock yet; FOR UPDATE then reads the row as the last
     * writer committed it (and keeps out a writer that does not take the lock). */
    r = tx_exec(db, reconnects,
                "SELECT pg_advisory_xact_lock(hashtextextended('llmops flag ' || $1 || '/' || $2,"
                " 0))",
                2, key, err);
    if (!r)
        return NULL;
    PQclear(r);
    r = tx_exec(
        db, reconnects,
        "SELECT active, coalesce(fallback, ''), coalesce(candidate, ''), rollout_percent,"
        " updated_by, to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
        " FROM flag_overrides WHERE environment = $1 AND category = $2 FOR UPDATE",
        2, key, err);
    if (!r)
        return NULL;
    struct flag *before = &ch->before, after;
    config_flag(conf, env, category, before);
    if (PQntuples(r) == 1) {
        copy(before->active, sizeof before->active, PQgetvalue(r, 0, 0));
        copy(before->fallback, sizeof before->fallback, PQgetvalue(r, 0, 1));
        copy(before->candidate, sizeof before->candidate, PQgetvalue(r, 0, 2));
        long long v = 0;
        util_parse_int(PQgetvalue(r, 0, 3), 0, 100, &v, NULL);
        before->rollout = (int)v;
        before->overridden = 1;
        copy(before->updated_by, sizeof before->updated_by, PQgetvalue(r, 0, 4));
        copy(before->updated_at, sizeof before->updated_at, PQgetvalue(r, 0, 5));
    }
    PQclear(r);
    memset(&after, 0, sizeof after);
    if (ch->plan(before, &after, ch->ud, ch->refusal, sizeof ch->refusal) < 0) {
        PQclear(db_exec(db, "ROLLBACK", 0, NULL, &(struct db_error){0}));
        if (!ch->refusal[0])
            snprintf(ch->refusal, sizeof ch->refusal, "nothing to change");
        return NULL; /* err->status DB_OK: refused */
    }
    json_t *bj = before->active[0] ? flag_to_json(before, env, category) : json_null();
    json_t *aj = flag_to_json(&after, env, category);
    json_object_del(aj, "source");
    json_object_del(aj, "updated_by");
    json_object_del(aj, "updated_at");
    json_object_del(bj, "updated_by");
    json_object_del(bj, "updated_at");
    char *bs = json_dumps(bj, JSON_COMPACT | JSON_ENCODE_ANY);
    char *as = json_dumps(aj, JSON_COMPACT);
    json_decref(bj);
    json_decref(aj);
    char rollout[8];
    snprintf(rollout, sizeof rollout, "%d", after.rollout);
    const char *params[] = {env,
                            category_name(category),
                            after.active,
                            after.fallback[0] ? after.fallback : NULL,
                            after.candidate[0] ? after.candidate : NULL,
                            rollout,
                            ch->actor,
                            ch->action,
                            bs,
                            as,
                            ch->reason};
    /* One statement: the override and its audit row. */
    r = tx_exec(
        db, reconnects,
        "WITH up AS ("
        " INSERT INTO flag_overrides (environment, category, active, fallback, candidate,"
        "  rollout_percent, updated_by) VALUES ($1, $2, $3, $4, $5, $6::int, $7)"
        " ON CONFLICT (environment, category) DO UPDATE SET active = EXCLUDED.active,"
        "  fallback = EXCLUDED.fallback, candidate = EXCLUDED.candidate,"
        "  rollout_percent = EXCLUDED.rollout_percent, updated_by = EXCLUDED.updated_by,"
        "  updated_at = now() RETURNING 1)"
        " INSERT INTO flag_audit (actor, action, environment, category, before, after, reason)"
        " SELECT $7, $8, $1, $2, $9::jsonb, $10::jsonb, $11 FROM up"
        " RETURNING json_build_object('id', id, 'at',"
        "  to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), 'actor', actor,"
        "  'action', action, 'environment', environment, 'category', category,"
        "  'before', before, 'after', after, 'reason', reason)",
        11, params, err);
    free(bs);
    free(as);
    if (!r)
        return NULL;
    json_t *row = PQntuples(r) == 1 ? json_loads(PQgetvalue(r, 0, 0), 0, NULL) : NULL;
    PQclear(r);
    PGresult *c = tx_exec(db, reconnects, "COMMIT", 0, NULL, err);
    if (!c || !row) {
        if (c)
            PQclear(c);
        json_decref(row);
        if (err->status == DB_OK) {
            err->status = DB_QUERY_ERROR;
            snprintf(err->message, sizeof err->message, "the audit row was not written");
        }
        return NULL;
    }
    PQclear(c);
    ch->after = after;
    return row;
}
