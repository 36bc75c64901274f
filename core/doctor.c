/* llm-opsctl doctor: a pre-flight check of a host, printed as a table. */
#include "doctor.h"

#include "build-config.h"
#include "category.h"
#include "checkconf.h"
#include "db.h"
#include "flags.h"
#include "plugin.h"
#include "util.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum verdict { OK, WARN, FAIL };

struct table {
    FILE *out;
    int worst;
    int rows;
};

static void row(struct table *t, const char *check, enum verdict v, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void row(struct table *t, const char *check, enum verdict v, const char *fmt, ...)
{
    static const char *const names[] = {"ok", "WARN", "FAIL"};
    if (t->rows++ == 0)
        fprintf(t->out, "%-32s %-5s %s\n", "CHECK", "STATE", "DETAIL");
    char detail[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    fprintf(t->out, "%-32.32s %-5s %s\n", check, names[v], detail);
    if ((int)v > t->worst)
        t->worst = (int)v;
}

/* The highest NNNN of dir's NNNN_*.sql files, 0 when none. */
static int highest_file(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int best = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *n = e->d_name;
        size_t l = strlen(n);
        if (l > 8 && strspn(n, "0123456789") == 4 && n[4] == '_' &&
            strcmp(n + l - 4, ".sql") == 0) {
            int v = (int)strtol(n, NULL, 10); /* 4 digits: in range */
            if (v > best)
                best = v;
        }
    }
    closedir(d);
    return best;
}

static int applied(struct db *db, const char *component)
{
    const char *p[] = {component};
    struct db_error err;
    PGresult *r = db_exec(db,
                          "SELECT coalesce(max(version), 0) FROM schema_migrations WHERE"
                          " component = $1",
                          1, p, &err);
    if (!r)
        return -1;
    long long v = -1;
    if (util_parse_int(PQgetvalue(r, 0, 0), 0, 1000000, &v, NULL) < 0)
        v = -1; /* not a version number this doctor understands */
    PQclear(r);
    return (int)v;
}

static void check_schema(struct table *t, struct db *db, const struct llmops_conf *conf)
{
    int core = applied(db, "core");
    if (core < 0)
        row(t, "schema core", FAIL, "no schema_migrations table: run llm-opsctl migrate");
    else if (core < LLMOPS_SCHEMA_VERSION)
        row(t, "schema core", FAIL, "at version %d, this build needs %d: run llm-opsctl migrate",
            core, LLMOPS_SCHEMA_VERSION);
    else if (core > LLMOPS_SCHEMA_VERSION)
        row(t, "schema core", FAIL,
            "at version %d, newer than this build knows (%d): upgrade llm-ops", core,
            LLMOPS_SCHEMA_VERSION);
    else
        row(t, "schema core", OK, "at version %d", core);
    DIR *d = opendir(conf->migrations_dir);
    if (!d) {
        row(t, "migrations", WARN, "cannot read %s", conf->migrations_dir);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", conf->migrations_dir, e->d_name);
        int want = highest_file(path);
        if (want <= 0)
            continue;
        int have = core < 0 ? -1 : applied(db, e->d_name);
        char name[300];
        snprintf(name, sizeof name, "schema %s", e->d_name);
        if (have < want)
            row(t, name, FAIL, "at version %d of %d: run llm-opsctl migrate", have < 0 ? 0 : have,
                want);
        else
            row(t, name, OK, "at version %d", have);
    }
    closedir(d);
}

static void check_instance(struct table *t, struct instance *in)
{
    char name[96];
    snprintf(name, sizeof name, "instance %s", in->name);
    if (!in->mod) {
        row(t, name, FAIL, "module %s not loaded: %s", in->cfg->module, in->reason);
        return;
    }
    const struct llmops_plugin *d = in->mod->desc;
    const char *cat = category_name((int)d->category);
    if (!in->initialised) {
        row(t, name, FAIL, "%s (%s %s) did not start: %s", cat, d->name, d->version, in->reason);
        return;
    }
    json_t *info = NULL;
    struct llmops_error err = {.size = sizeof err};
    int64_t t0 = util_now_us();
    int rc = d->health(in->state, &info, &err);
    double ms = (double)(util_now_us() - t0) / 1000.0;
    if (rc != 0) {
        json_decref(info);
        row(t, name, FAIL, "%s: unreachable or unhealthy after %.1f ms: %s", cat, ms, err.message);
        return;
    }
    const char *tv = json_string_value(json_object_get(info, "tool_version"));
    char range[160];
    snprintf(range, sizeof range, "%s to %s", d->tool_version_min ? d->tool_version_min : "any",
             d->tool_version_max ? d->tool_version_max : "any");
    int supported = !tv || util_version_in_range(tv, d->tool_version_min, d->tool_version_max);
    if (!supported) {
        const char *policy = in->host.config_string(&in->host, "unsupported_version", "degrade");
        row(t, name, strcmp(policy, "refuse") == 0 ? FAIL : WARN,
            "%s: tool version %s is outside %s (module %s %s supports %s; unsupported_version = "
            "%s)",
            cat, tv, range, d->name, d->version, range, policy);
    } else {
        row(t, name, OK, "%s: %s %s, tool %s (supported %s), answered in %.1f ms", cat, d->name,
            d->version, tv ? tv : "version not reported", range, ms);
    }
    json_decref(info);
}

int doctor_run(const char *config_path, const struct llmops_conf *conf, FILE *out)
{
    struct table t = {out, OK, 0};
    struct conf_errors errs = {0};
    int problems = check_config_modules(conf, &errs);
    if (problems)
        for (int i = 0; i < errs.n; i++)
            row(&t, "configuration", FAIL, "%s", errs.msgs[i]);
    else
        row(&t, "configuration", OK, "%s: %d environment%s, %d instance%s", config_path,
            conf->n_envs, conf->n_envs == 1 ? "" : "s", conf->nplugins,
            conf->nplugins == 1 ? "" : "s");
    conf_errors_free(&errs);

    struct db db;
    db_init(&db, conf->db_conninfo, (int)conf->db_connect_timeout_ms,
            (int)conf->db_query_timeout_ms, "llm-opsctl doctor");
    struct db_error err;
    int64_t t0 = util_now_us();
    int db_ok = db_ensure(&db, &err) == DB_OK;
    double ms = (double)(util_now_us() - t0) / 1000.0;
    if (!db_ok) {
        row(&t, "database", FAIL, "cannot connect: %s", db_error_detail(&err));
    } else {
        row(&t, "database", OK, "PostgreSQL %d.%d, connected in %.1f ms",
            PQserverVersion(db.conn) / 10000, PQserverVersion(db.conn) % 10000, ms);
        check_schema(&t, &db, conf);
    }

    struct plugin_registry reg;
    struct conf_errors perrs = {0};
    plugins_load(&reg, conf, db_ok ? &db : NULL, 1, &perrs);
    conf_errors_free(&perrs);
    for (int i = 0; i < reg.ninsts; i++)
        check_instance(&t, &reg.insts[i]);
    if (reg.ninsts == 0)
        row(&t, "instances", WARN, "no [plugin \"NAME\"] section: no category is served");

    /* every flag names a running instance */
    if (db_ok) {
        struct flag_cache fc;
        memset(&fc, 0, sizeof fc);
        if (flags_load(&fc, conf, &db, &err) < 0) {
            row(&t, "flags", FAIL, "cannot read the flags: %s", db_error_detail(&err));
        } else {
            int named = 0, bad = 0;
            for (int e = 0; e < conf->n_envs; e++) {
                for (int c = 1; c <= CATEGORY_COUNT; c++) {
                    const struct flag *f = &fc.f[e][c];
                    const char *roles[3] = {f->active, f->fallback, f->candidate};
                    static const char *const what[3] = {"active", "fallback", "candidate"};
                    for (int k = 0; k < 3; k++) {
                        if (!roles[k][0])
                            continue;
                        named++;
                        struct instance *in = plugins_find(&reg, roles[k]);
                        if (!in || !in->initialised) {
                            char name[96];
                            snprintf(name, sizeof name, "flag %s/%s", conf->envs[e],
                                     category_name(c));
                            row(&t, name, k == 0 ? FAIL : WARN, "%s instance %s is not running",
                                what[k], roles[k]);
                            bad++;
                        }
                    }
                }
            }
            if (!bad)
                row(&t, "flags", OK, "%d flag role%s, each naming a running instance", named,
                    named == 1 ? "" : "s");
        }
    }
    plugins_unload(&reg);
    db_close(&db);
    fprintf(out, "\n%s\n",
            t.worst == FAIL   ? "doctor: problems found (FAIL rows)"
            : t.worst == WARN ? "doctor: usable, with warnings"
                              : "doctor: all checks passed");
    return t.worst == FAIL ? 1 : 0;
}
