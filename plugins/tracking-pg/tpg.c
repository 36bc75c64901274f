/* tracking-pg: the descriptor, init/fini/health/capabilities, and what the operations share
 * (database calls, input checks, metric values, page tokens). The operations live in
 * experiments.c, runs.c and search.c. */
#include "tpg.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ database */

/* The objects the module needs, each with the migration that makes it. */
static const struct {
    const char *name;
    const char *migration;
} required_tables[] = {
    {"tracking_pg_experiments", TPG_MIGRATION},    {"tracking_pg_experiment_tags", TPG_MIGRATION},
    {"tracking_pg_runs", TPG_MIGRATION},           {"tracking_pg_params", TPG_MIGRATION},
    {"tracking_pg_run_tags", TPG_MIGRATION},       {"tracking_pg_metrics", TPG_MIGRATION},
    {"tracking_pg_latest_metrics", TPG_MIGRATION},
};
#define TPG_LOG_BATCH_FN "tracking_pg_log_batch(text,jsonb,jsonb,jsonb)"

/* The first missing table or function, with its migration, into what/migration, in one
 * statement (health runs it at every probe). Returns 1 when one is missing, 0 when all
 * exist, -1 when the check itself failed (err filled). */
static int find_missing(struct tpg *t, char *what, size_t size, const char **migration,
                        struct llmops_error *err)
{
    size_t n = sizeof required_tables / sizeof required_tables[0], used = 1;
    char names[512] = "{";
    for (size_t i = 0; i < n; i++)
        used += (size_t)snprintf(names + used, sizeof names - used, "%s%s", i ? "," : "",
                                 required_tables[i].name);
    snprintf(names + used, sizeof names - used, "}");
    const char *p[] = {names, TPG_LOG_BATCH_FN};
    PGresult *r = t->host->db_exec(t->host,
                                   "SELECT (SELECT min(i) FROM unnest($1::text[]) WITH ORDINALITY"
                                   " AS o(name, i) WHERE to_regclass(name) IS NULL),"
                                   " to_regprocedure($2) IS NULL",
                                   2, p, err);
    if (!r)
        return -1;
    long long first = 0;
    int table = !PQgetisnull(r, 0, 0) && tpg_parse_ll(PQgetvalue(r, 0, 0), &first) == 0 &&
                first >= 1 && first <= (long long)n;
    int function = strcmp(PQgetvalue(r, 0, 1), "t") == 0;
    t->host->db_clear(r);
    if (table) {
        snprintf(what, size, "table %s", required_tables[first - 1].name);
        *migration = required_tables[first - 1].migration;
        return 1;
    }
    if (function) {
        snprintf(what, size, "function %s", TPG_LOG_BATCH_FN);
        *migration = TPG_MIGRATION;
        return 1;
    }
    return 0;
}

static int missing_error(const char *what, const char *migration, struct llmops_error *err)
{
    char msg[400];
    snprintf(msg, sizeof msg,
             "the tracking-pg schema is missing (%s): apply %s with llm-opsctl migrate", what,
             migration);
    return llmops_fail(err, LLMOPS_ERR_TOOL, 0, 0, msg);
}

PGresult *tpg_exec(struct tpg *t, const char *op, const char *sql, int nparams,
                   const char *const *params, struct llmops_error *err)
{
    PGresult *r = t->host->db_exec(t->host, sql, nparams, params, err);
    if (r)
        return r;
    switch (err->code) {
    case LLMOPS_ERR_UNAVAILABLE:
        t->host->log(t->host, LLMOPS_LOG_WARNING, "%s: database unavailable: %s", op, err->message);
        llmops_fail(err, LLMOPS_ERR_UNAVAILABLE, 0, 1, "the tracking database is unavailable");
        return NULL;
    case LLMOPS_ERR_UNSUPPORTED: /* no database in this process: the core's own words */
        return NULL;
    default:
        break;
    }
    t->host->log(t->host, LLMOPS_LOG_ERROR, "%s: database error: %s", op, err->message);
    char what[128];
    const char *migration = NULL;
    struct llmops_error check = {.size = sizeof check};
    if (find_missing(t, what, sizeof what, &migration, &check) == 1) {
        missing_error(what, migration, err);
        return NULL;
    }
    char msg[160];
    snprintf(msg, sizeof msg, "tracking-pg: database error in %s (see the log)", op);
    llmops_fail(err, LLMOPS_ERR_INTERNAL, 0, 0, msg);
    return NULL;
}

json_t *tpg_json_column(PGresult *r, int row, int col, struct llmops_error *err)
{
    json_error_t je;
    json_t *v = json_loads(PQgetvalue(r, row, col), JSON_DECODE_ANY, &je);
    if (!v)
        llmops_fail(err, LLMOPS_ERR_INTERNAL, 0, 0, "tracking-pg: the database answered bad JSON");
    return v;
}

/* Removes the members of obj whose value is null (absent optional members). */
static void drop_nulls(json_t *obj)
{
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(obj, tmp, k, v)
    {
        if (json_is_null(v))
            json_object_del(obj, k);
    }
}

int tpg_finish_object(json_t *obj, struct llmops_error *err)
{
    if (!json_is_object(obj))
        return llmops_fail(err, LLMOPS_ERR_INTERNAL, 0, 0, "tracking-pg: not an object");
    drop_nulls(obj);
    json_t *metrics = json_object_get(obj, "metrics"), *m;
    size_t i;
    json_array_foreach(metrics, i, m)
    {
        double d;
        const char *hex = json_string_value(json_object_get(m, "value"));
        if (!hex || tpg_hex_double(hex, &d) < 0)
            return llmops_fail(err, LLMOPS_ERR_INTERNAL, 0, 0, "tracking-pg: a bad metric value");
        json_object_set_new(m, "value", tpg_value_json(d));
    }
    return 0;
}

/* ------------------------------------------------------------------ values */

int tpg_metric_value(json_t *v, double *out)
{
    if (json_is_integer(v)) {
        *out = (double)json_integer_value(v);
        return 0;
    }
    if (json_is_real(v)) {
        *out = json_real_value(v);
        return 0;
    }
    const char *s = json_string_value(v);
    if (!s)
        return -1;
    if (strcmp(s, "NaN") == 0)
        *out = NAN;
    else if (strcmp(s, "Infinity") == 0)
        *out = INFINITY;
    else if (strcmp(s, "-Infinity") == 0)
        *out = -INFINITY;
    else
        return -1;
    return 0;
}

void tpg_format_double(double d, char *buf, size_t size)
{
    if (isnan(d))
        snprintf(buf, size, "NaN");
    else if (isinf(d))
        snprintf(buf, size, "%s", d > 0 ? "Infinity" : "-Infinity");
    else
        snprintf(buf, size, "%.17g", d);
}

json_t *tpg_value_json(double d)
{
    if (isnan(d))
        return json_string("NaN");
    if (isinf(d))
        return json_string(d > 0 ? "Infinity" : "-Infinity");
    return json_real(d);
}

int tpg_hex_double(const char *hex, double *out)
{
    if (strlen(hex) != 16 || strspn(hex, "0123456789abcdef") != 16)
        return -1;
    uint64_t bits = 0;
    for (int i = 0; i < 16; i++) {
        char c = hex[i];
        bits = bits << 4 | (uint64_t)(c <= '9' ? c - '0' : c - 'a' + 10);
    }
    memcpy(out, &bits, sizeof *out);
    return 0;
}

/* ------------------------------------------------------------------ input checks */

int tpg_parse_ll(const char *s, long long *out)
{
    const char *d = *s == '-' ? s + 1 : s;
    if (!*d || strspn(d, "0123456789") != strlen(d))
        return -1;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

int tpg_is_experiment_id(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    return n >= 1 && n <= 18 && strspn(s, "0123456789") == n;
}

int tpg_is_run_id(const char *s)
{
    return s && strlen(s) == 32 && strspn(s, "0123456789abcdef") == 32;
}

char *tpg_dump(json_t *v)
{
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* ------------------------------------------------------------------ page tokens */

static uint64_t fnv1a(uint64_t h, const char *s)
{
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return h;
}

static uint64_t token_check(const char *kind, const char *digest, const char *fields)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    h = fnv1a(h, "tracking-pg\n");
    h = fnv1a(h, kind);
    h = fnv1a(h, "\n");
    h = fnv1a(h, digest);
    h = fnv1a(h, "\n");
    return fnv1a(h, fields);
}

void tpg_token_make(char *out, size_t size, const char *kind, const char *digest,
                    const char *fields)
{
    snprintf(out, size, "%s.%s.%016llx", kind, fields,
             (unsigned long long)token_check(kind, digest, fields));
}

int tpg_token_read(const char *token, const char *kind, const char *digest, char *fields,
                   size_t size)
{
    size_t n = strlen(token), kn = strlen(kind);
    if (n > 2048 || n < kn + 2 + 16 || strncmp(token, kind, kn) != 0 || token[kn] != '.')
        return -1;
    const char *f = token + kn + 1, *dot = strrchr(token, '.');
    if (dot < f || strlen(dot + 1) != 16 || strspn(dot + 1, "0123456789abcdef") != 16)
        return -1;
    size_t fn = (size_t)(dot - f);
    if (fn == 0 || fn >= size || strspn(f, "0123456789abcdef.-") < fn)
        return -1;
    memcpy(fields, f, fn);
    fields[fn] = '\0';
    char want[17];
    snprintf(want, sizeof want, "%016llx", (unsigned long long)token_check(kind, digest, fields));
    return strcmp(want, dot + 1) == 0 ? 0 : -1;
}

/* ------------------------------------------------------------------ the instance */

static const struct llmops_config_key keys[] = {
    {NULL, 0, 0, 0, 0, NULL},
};

static int tpg_init(const struct llmops_host *host, void **state, struct llmops_error *err)
{
    struct tpg *t = calloc(1, sizeof *t);
    if (!t)
        return llmops_fail(err, LLMOPS_ERR_INTERNAL, 0, 0, "out of memory");
    t->host = host;
    *state = t;
    return 0;
}

static void tpg_fini(void *state)
{
    free(state);
}

/* A failed database call of health as UNAVAILABLE (retryable) or TOOL, without the
 * database's own text (logged). */
static int health_fail(struct tpg *t, struct llmops_error *err)
{
    t->host->log(t->host, LLMOPS_LOG_WARNING, "health: %s", err->message);
    if (err->code == LLMOPS_ERR_UNAVAILABLE)
        return llmops_fail(err, LLMOPS_ERR_UNAVAILABLE, 0, 1,
                           "the tracking database is unavailable");
    if (err->code == LLMOPS_ERR_UNSUPPORTED) /* no database in this process */
        return llmops_fail(err, LLMOPS_ERR_TOOL, 0, 0, err->message);
    return llmops_fail(err, LLMOPS_ERR_TOOL, 0, 0, "the tracking database answered with an error");
}

/* Healthy when the database answers and the module's tables exist. */
static int tpg_health(void *state, json_t **info, struct llmops_error *err)
{
    struct tpg *t = state;
    PGresult *r = t->host->db_exec(
        t->host, "SELECT split_part(current_setting('server_version'), ' ', 1)", 0, NULL, err);
    if (!r)
        return health_fail(t, err);
    char version[64];
    snprintf(version, sizeof version, "%s", PQntuples(r) == 1 ? PQgetvalue(r, 0, 0) : "");
    t->host->db_clear(r);
    char what[128];
    const char *migration = NULL;
    int missing = find_missing(t, what, sizeof what, &migration, err);
    if (missing < 0)
        return health_fail(t, err);
    if (missing)
        return missing_error(what, migration, err);
    *info = json_pack("{s:s,s:s}", "tool_version", version, "tool", "PostgreSQL");
    return 0;
}

static int tpg_capabilities(void *state, json_t **out, struct llmops_error *err)
{
    (void)state;
    json_t *list = json_array();
#define TPG_NAME_(member, required) json_array_append_new(list, json_string(#member));
    LLMOPS_TRACKING_OPS(TPG_NAME_)
#undef TPG_NAME_
    *out = json_pack("{s:o}", "operations", list);
    if (!*out)
        return llmops_fail(err, LLMOPS_ERR_INTERNAL, 0, 0, "out of memory");
    return 0;
}

static const struct llmops_tracking_ops ops = {
    .size = sizeof ops,
    .create_experiment = tpg_create_experiment,
    .get_experiment = tpg_get_experiment,
    .search_experiments = tpg_search_experiments,
    .set_experiment_tags = tpg_set_experiment_tags,
    .delete_experiment = tpg_delete_experiment,
    .create_run = tpg_create_run,
    .get_run = tpg_get_run,
    .update_run = tpg_update_run,
    .delete_run = tpg_delete_run,
    .log_batch = tpg_log_batch,
    .get_metric_history = tpg_get_metric_history,
    .search_runs = tpg_search_runs,
    .find_by_idempotency_key = tpg_find_by_idempotency_key,
};

static const struct llmops_plugin descriptor = {
    .magic = LLMOPS_PLUGIN_MAGIC_INIT,
    .size = sizeof(struct llmops_plugin),
    .name = "tracking-pg",
    .version = "0.1.0",
    .category = LLMOPS_CATEGORY_EXPERIMENT_TRACKING,
    .category_abi = LLMOPS_TRACKING_ABI,
    .ops = &ops,
    .config_keys = keys,
    .tool_version_min = "13", /* gen_random_uuid() in core PostgreSQL */
    .init = tpg_init,
    .fini = tpg_fini,
    .health = tpg_health,
    .capabilities = tpg_capabilities,
};

LLMOPS_PLUGIN_DEFINE(descriptor)
