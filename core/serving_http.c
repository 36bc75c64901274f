/* /llm-ops/v1/deployments: serving's routes (doc/api.md, "Deployments"). The body checks are
 * tables (engine_validate, as the ops' inputs are); every tool call goes through
 * serving_call (engine_call); GPU types resolve through gpu.h, whose advisory lock makes the
 * capacity check and the row that takes the GPUs one transaction. */
#include "engine.h"
#include "gpu.h"
#include "handlers.h"
#include "httpclient.h"
#include "log.h"
#include "owner.h"
#include "page.h"
#include "serving.h"
#include "util.h"

#include "llmops-serving.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SV LLMOPS_CATEGORY_SERVING
#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

/* ------------------------------------------------------------------ bodies as tables */

static const struct llmops_member model_m[] = {LLMOPS_STR("uri", LLMOPS_M_REQUIRED, 1, 2048),
                                               LLMOPS_STR("format", LLMOPS_M_REQUIRED, 1, 64),
                                               LLMOPS_STR("format_version", 0, 0, 64), LLMOPS_END};
static const struct llmops_member arg_m[] = {LLMOPS_STR("", 0, 0, 4096)};
static const struct llmops_member env_value_m[] = {LLMOPS_STR("", 0, 0, 32768)};
static const struct llmops_member replicas_m[] = {
    LLMOPS_INT("min", LLMOPS_M_REQUIRED, 0, LLMOPS_SERVING_MAX_REPLICAS),
    LLMOPS_INT("max", LLMOPS_M_REQUIRED, 1, LLMOPS_SERVING_MAX_REPLICAS), LLMOPS_END};
static const struct llmops_member autoscaling_m[] = {
    LLMOPS_STR("metric", LLMOPS_M_REQUIRED, 1, 64),
    LLMOPS_INT("target", LLMOPS_M_REQUIRED, 1, 1000000), LLMOPS_END};
static const struct llmops_member create_m[] = {
    LLMOPS_STR("name", LLMOPS_M_REQUIRED, 1, LLMOPS_SERVING_NAME_MAX),
    LLMOPS_OBJECT("model", LLMOPS_M_REQUIRED, model_m),
    LLMOPS_STR("runtime", 0, 1, 253),
    LLMOPS_STR("gpu_type", 0, 1, 63),
    LLMOPS_INT("gpu_count", 0, 1, LLMOPS_SERVING_MAX_GPUS),
    LLMOPS_STR("cpu", 0, 1, 64),
    LLMOPS_STR("memory", 0, 1, 64),
    LLMOPS_OBJECT("replicas", 0, replicas_m),
    LLMOPS_OBJECT("autoscaling", 0, autoscaling_m),
    LLMOPS_MAP("env", 0, 0, 256, 255, env_value_m, NULL),
    LLMOPS_ARRAY("args", 0, 0, 256, arg_m),
    LLMOPS_END};
static const struct llmops_member patch_m[] = {LLMOPS_OBJECT("replicas", 0, replicas_m),
                                               LLMOPS_OBJECT("autoscaling", 0, autoscaling_m),
                                               LLMOPS_END};
static const struct llmops_member canary_m[] = {
    LLMOPS_OBJECT("model", 0, model_m),
    LLMOPS_MAP("env", 0, 0, 256, 255, env_value_m, NULL),
    LLMOPS_ARRAY("args", 0, 0, 256, arg_m),
    LLMOPS_INT("traffic_percent", 0, 1, 99),
    LLMOPS_INT("canary_replicas", 0, 1, LLMOPS_SERVING_MAX_REPLICAS),
    LLMOPS_END};
static const struct llmops_member canary_patch_m[] = {
    LLMOPS_INT("traffic_percent", 0, 0, LLMOPS_SERVING_MAX_TRAFFIC),
    LLMOPS_INT("canary_replicas", 0, 0, LLMOPS_SERVING_MAX_REPLICAS), LLMOPS_END};
static const struct llmops_member rollback_m[] = {LLMOPS_STR("reason", 0, 0, 1000), LLMOPS_END};
static const struct llmops_member none_m[] = {LLMOPS_END};

static int fail(struct req *r, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct req *r, const char *field, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    resp_error(r, API_VALIDATION_FAILED, json_pack("{s:s}", "field", field), "%s", msg);
    return -1;
}

/* The body (an empty object when the route took none) against `members`: 0, or -1 after a
 * 400 naming the member. */
static int check_body(struct req *r, const struct llmops_member *members)
{
    char path[256], msg[512];
    json_t *empty = r->body ? NULL : json_object();
    int rc =
        engine_validate(members, r->body ? r->body : empty, path, sizeof path, msg, sizeof msg);
    json_decref(empty);
    if (rc < 0)
        return fail(r, path[0] ? path : "body", "%s", msg);
    return 0;
}

/* A body that may be absent (POST .../rollback, .../promote): read when one was sent. 0, or
 * -1 after the answer. */
static int optional_body(struct req *r)
{
    const char *cl = r->in->content_length;
    if (!cl || !*cl || strcmp(cl, "0") == 0)
        return 0;
    return http_read_json_body(r, r->app->conf->max_body_bytes);
}

static int dns1035(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > LLMOPS_SERVING_NAME_MAX || s[0] < 'a' || s[0] > 'z' || s[n - 1] == '-')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return 0;
    return 1;
}

/* replicas {min <= max} and autoscaling exactly when min < max. */
static int check_scaling(struct req *r, json_t *replicas, json_t *autoscaling)
{
    json_int_t min = json_integer_value(json_object_get(replicas, "min"));
    json_int_t max = json_integer_value(json_object_get(replicas, "max"));
    if (min > max)
        return fail(r, "replicas", "replicas.min %lld is more than replicas.max %lld",
                    (long long)min, (long long)max);
    int as = json_is_object(autoscaling);
    if (min < max && !as)
        return fail(r, "autoscaling",
                    "replicas.min < replicas.max needs autoscaling {metric, target}");
    if (min == max && as)
        return fail(r, "autoscaling", "autoscaling needs replicas.min < replicas.max");
    return 0;
}

/* ------------------------------------------------------------------ rows */

static const char dep_select[] =
    "SELECT d.id, d.environment, d.name, d.instance, d.spec::text, coalesce(d.gpu::text, 'null'),"
    " d.state, d.reason, d.url, d.ready_replicas, d.traffic::text,"
    " coalesce(d.canary::text, 'null'), d.links::text, " TS("d.created_at") ", " TS(
        "d.updated_at") ", d.created_by, d.version, coalesce(o.external_id, ''),"
                        " coalesce(d.gpu_type, ''), d.gpu_count, d.replicas_max"
                        " FROM deployments d JOIN objects o ON o.id = d.id";

/* The API object of row i of dep_select (NULL when a column is not what it should be). */
static json_t *dep_json(const PGresult *res, int i, int *bad)
{
#define V(c) PQgetvalue(res, i, c)
#define N(c) (PQgetisnull(res, i, c) ? NULL : V(c))
    json_t *spec = json_loads(V(4), 0, NULL), *gpu = json_loads(V(5), JSON_DECODE_ANY, NULL);
    json_t *traffic = json_loads(V(10), 0, NULL),
           *canary = json_loads(V(11), JSON_DECODE_ANY, NULL);
    json_t *links = json_loads(V(12), 0, NULL);
    if (!spec || !gpu || !traffic || !canary || !links) {
        *bad = 1;
        json_decref(spec), json_decref(gpu), json_decref(traffic), json_decref(canary);
        json_decref(links);
        return NULL;
    }
    json_t *g = json_object_get(spec, "gpu_count");
    json_t *o = json_pack(
        "{s:s,s:s,s:s,s:s,s:s,s:o,s:o,s:I,s:O,s:O,s:O,s:O,s:o,s:O,s:O,s:O,s:O,s:O,s:O,s:o,s:o,"
        "s:o,s:s,s:s,s:s,s:I}",
        "id", V(0), "name", V(2), "environment", V(1), "instance", V(3), "state", V(6), "reason",
        json_str_or_null(N(7)), "url", json_str_or_null(N(8)), "ready_replicas",
        (json_int_t)db_int(res, i, 9, bad), "model", json_object_get(spec, "model"), "runtime",
        json_object_get(spec, "runtime") ? json_object_get(spec, "runtime") : json_null(),
        "gpu_type",
        json_object_get(spec, "gpu_type") ? json_object_get(spec, "gpu_type") : json_null(),
        "gpu_count", g ? g : json_null(), "gpu", gpu, "cpu",
        json_object_get(spec, "cpu") ? json_object_get(spec, "cpu") : json_null(), "memory",
        json_object_get(spec, "memory") ? json_object_get(spec, "memory") : json_null(), "replicas",
        json_object_get(spec, "replicas"), "autoscaling",
        json_object_get(spec, "autoscaling") ? json_object_get(spec, "autoscaling") : json_null(),
        "env", json_object_get(spec, "env") ? json_object_get(spec, "env") : json_null(), "args",
        json_object_get(spec, "args") ? json_object_get(spec, "args") : json_null(), "traffic",
        traffic, "canary", canary, "links", links, "created_at", V(13), "updated_at", V(14),
        "created_by", V(15), "version", (json_int_t)db_int(res, i, 16, bad));
    json_decref(spec);
#undef V
#undef N
    if (!o)
        *bad = 1;
    if (json_is_null(json_object_get(o, "env")))
        json_object_set_new(o, "env", json_object());
    if (json_is_null(json_object_get(o, "args")))
        json_object_set_new(o, "args", json_array());
    return o;
}

static json_t *dep_row(const PGresult *res, int i, int *bad)
{
    return dep_json(res, i, bad);
}

struct dep {
    char id[64], env[64], name[64], instance[64], ext[256], state[16], gpu_type[64];
    long long gpu_count, replicas_max, version;
    json_t *spec, *canary, *traffic, *gpu; /* the caller's (dep_free) */
};

static void dep_free(struct dep *d)
{
    json_decref(d->spec);
    json_decref(d->canary);
    json_decref(d->traffic);
    json_decref(d->gpu);
    memset(d, 0, sizeof *d);
}

static void db_failed(struct req *r, const char *what, const struct db_error *err)
{
    resp_error(r, err->status == DB_UNAVAILABLE ? API_DATABASE_UNAVAILABLE : API_INTERNAL, NULL,
               "cannot %s: %s", what, err->message);
}

static void not_found(struct req *r, const char *id)
{
    char q[UTIL_QUOTE_SIZE(64)];
    resp_error(r, API_NOT_FOUND, json_pack("{s:s}", "field", "id"), "no deployment '%s'",
               util_quote(q, sizeof q, id, 64));
}

/* Loads a live deployment: 0, or -1 after the answer (404 for a deleted one too). */
static int load_dep(struct req *r, const char *id, struct dep *d)
{
    memset(d, 0, sizeof *d);
    char sql[1400];
    snprintf(sql, sizeof sql, "%s WHERE d.id = $1", dep_select);
    const char *p[] = {id};
    struct db_error err;
    PGresult *res = db_exec(&r->app->db, sql, 1, p, &err);
    if (!res) {
        db_failed(r, "read the deployment", &err);
        return -1;
    }
    if (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 6), "deleted") == 0) {
        PQclear(res);
        not_found(r, id);
        return -1;
    }
    int bad = 0;
#define CP(f, c) snprintf(d->f, sizeof d->f, "%s", PQgetvalue(res, 0, c))
    CP(id, 0);
    CP(env, 1);
    CP(name, 2);
    CP(instance, 3);
    CP(state, 6);
    CP(ext, 17);
    CP(gpu_type, 18);
#undef CP
    d->spec = json_loads(PQgetvalue(res, 0, 4), 0, NULL);
    d->gpu = json_loads(PQgetvalue(res, 0, 5), JSON_DECODE_ANY, NULL);
    d->traffic = json_loads(PQgetvalue(res, 0, 10), 0, NULL);
    d->canary = json_loads(PQgetvalue(res, 0, 11), JSON_DECODE_ANY, NULL);
    d->version = db_int(res, 0, 16, &bad);
    d->gpu_count = db_int(res, 0, 19, &bad);
    d->replicas_max = db_int(res, 0, 20, &bad);
    PQclear(res);
    if (bad || !d->spec || !d->canary || !d->traffic) {
        dep_free(d);
        resp_error(r, API_INTERNAL, NULL, "the deployment's row could not be read (see the log)");
        return -1;
    }
    if (json_is_null(d->canary)) {
        json_decref(d->canary);
        d->canary = NULL;
    }
    return 0;
}

/* Answers deployment `id` as stored now. */
static void answer_dep(struct req *r, int status, const char *msg, const char *id)
{
    char sql[1400];
    snprintf(sql, sizeof sql, "%s WHERE d.id = $1", dep_select);
    const char *p[] = {id};
    struct db_error err;
    PGresult *res = db_exec(&r->app->db, sql, 1, p, &err);
    if (!res) {
        db_failed(r, "read the deployment", &err);
        return;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        not_found(r, id);
        return;
    }
    int bad = 0;
    json_t *o = dep_json(res, 0, &bad);
    PQclear(res);
    if (bad) {
        json_decref(o);
        resp_error(r, API_INTERNAL, NULL, "the deployment's row could not be read (see the log)");
        return;
    }
    resp_success(r, status, msg, o);
}

static struct instance *dep_instance(struct req *r, const struct dep *d)
{
    struct instance *in = plugins_find(&r->app->plugins, d->instance);
    if (!in || !in->initialised) {
        resp_error(r, API_TOOL_UNAVAILABLE, json_pack("{s:s}", "instance", d->instance),
                   "instance %s, which holds deployment %s, is not running", d->instance, d->id);
        return NULL;
    }
    return in;
}

/* The envelope of a failed call: the platform code of the plugin's, the instance, the op. */
static void call_failed(struct req *r, const char *instance, const char *op,
                        const struct llmops_error *err)
{
    enum api_error e = (enum api_error)plugin_status_to_api(err->code);
    json_t *extra = json_pack("{s:s,s:s,s:b}", "instance", instance, "operation", op, "retryable",
                              err->retryable);
    if (err->tool_status)
        json_object_set_new(extra, "tool_status", json_integer(err->tool_status));
    if (err->code == LLMOPS_ERR_UNSUPPORTED) {
        /* `feature "NAME"`: the modules' and the engine's way of naming what is missing;
         * the engine's `OP with MEMBER needs feature` names the member too */
        const char *f = strstr(err->message, "feature \"");
        if (f) {
            char feat[64], member[128];
            if (sscanf(f + 9, "%63[a-z_]", feat) == 1)
                json_object_set_new(extra, "feature", json_string(feat));
            size_t oplen = strlen(op);
            if (strncmp(err->message, op, oplen) == 0 &&
                sscanf(err->message + oplen, " with %127[a-z_.] needs feature", member) == 1)
                json_object_set_new(extra, "field", json_string(member));
        }
    }
    resp_error(r, e, extra, "%s (instance %s)", err->message, instance);
}

static void rollback_txn(struct req *r)
{
    struct db_error e;
    PGresult *x = db_exec(&r->app->db, "ROLLBACK", 0, NULL, &e);
    if (x)
        PQclear(x);
}

static int exec1(struct req *r, const char *sql, int n, const char *const *p, struct db_error *err)
{
    PGresult *res = db_exec(&r->app->db, sql, n, p, err);
    if (!res)
        return -1;
    PQclear(res);
    return 0;
}

/* BEGIN and, for a GPU type, its lock and the check that `need` more GPUs fit (not counting
 * deployment `exclude`'s): 0 in the open transaction, or -1 after the answer (rolled back). */
static int begin_capacity(struct req *r, const char *env, const char *gtype, const char *exclude,
                          long long need)
{
    struct db_error err;
    if (exec1(r, "BEGIN", 0, NULL, &err) < 0) {
        db_failed(r, "start the transaction", &err);
        return -1;
    }
    if (!gtype || !gtype[0])
        return 0;
    long long used = 0, capacity = 0;
    if (gpu_lock_usage(&r->app->db, env, gtype, exclude, &used, &capacity, &err) < 0) {
        rollback_txn(r);
        db_failed(r, "count the GPUs in use", &err);
        return -1;
    }
    if (used + need > capacity) {
        rollback_txn(r);
        gpu_refuse_capacity(r, env, gtype, need, used, capacity);
        return -1;
    }
    return 0;
}

static int commit(struct req *r)
{
    struct db_error err;
    if (exec1(r, "COMMIT", 0, NULL, &err) < 0) {
        rollback_txn(r);
        db_failed(r, "store the change", &err);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ create */

/* The body as stored: the members given, replicas defaulted to {1, 1}, gpu_count to 1 with a
 * gpu_type. */
static json_t *normal_spec(json_t *body)
{
    json_t *s = json_deep_copy(body);
    json_object_del(s, "name");
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(s, tmp, k, v) if (json_is_null(v)) json_object_del(s, k);
    if (!json_object_get(s, "replicas"))
        json_object_set_new(s, "replicas", json_pack("{s:i,s:i}", "min", 1, "max", 1));
    if (json_object_get(s, "gpu_type") && !json_object_get(s, "gpu_count"))
        json_object_set_new(s, "gpu_count", json_integer(1));
    return s;
}

static int retryable(const struct llmops_error *e)
{
    return e->code == LLMOPS_ERR_UNAVAILABLE || e->code == LLMOPS_ERR_INTERNAL ||
           (e->code == LLMOPS_ERR_TOOL && e->retryable);
}

/* A failed deployment whose create the tool refused for good through the outbox (its dead
 * row no longer binds it: serving_outbox.c) holds its name only until a create of the same
 * name: that create retires it (deleted, audited) in its own transaction. */
#define REFUSED_FOR_GOOD_                                                                          \
    " d.state = 'failed' AND EXISTS (SELECT 1 FROM outbox x WHERE x.object_id = d.id"              \
    "  AND x.operation = 'deploy' AND x.state IN ('dead', 'discarded') AND NOT x.binds_object)"

/* A live deployment named `name` in env: 1 with its id and spec, 0 none, -1 after the answer. */
static int find_named(struct req *r, const char *env, const char *name, char id[64], json_t **spec)
{
    const char *p[] = {env, name};
    struct db_error err;
    PGresult *res = db_exec(&r->app->db,
                            "SELECT id, spec::text FROM deployments d WHERE environment = $1"
                            " AND name = $2 AND state <> 'deleted' AND NOT (" REFUSED_FOR_GOOD_ ")",
                            2, p, &err);
    if (!res) {
        db_failed(r, "read the deployments", &err);
        return -1;
    }
    int found = PQntuples(res) == 1;
    if (found) {
        snprintf(id, 64, "%s", PQgetvalue(res, 0, 0));
        *spec = json_loads(PQgetvalue(res, 0, 1), 0, NULL);
    }
    PQclear(res);
    return found;
}

static void name_taken(struct req *r, const char *env, const char *name, const char *id)
{
    resp_error(r, API_CONFLICT, json_pack("{s:s,s:s?}", "field", "name", "id", id),
               "deployment '%s' exists in %s with another spec%s%s", name, env, id ? ": " : "",
               id ? id : "");
}

void deployments_create(struct req *r)
{
    struct app *app = r->app;
    if (check_body(r, create_m) < 0)
        return;
    json_t *b = r->body;
    const char *name = json_string_value(json_object_get(b, "name"));
    if (!dns1035(name)) {
        char q[UTIL_QUOTE_SIZE(64)];
        fail(r, "name",
             "name '%s' must be a DNS-1035 label: [a-z]([-a-z0-9]*[a-z0-9])?, at most %d "
             "characters",
             util_quote(q, sizeof q, name, 64), LLMOPS_SERVING_NAME_MAX);
        return;
    }
    if (json_object_get(b, "gpu_count") && !json_is_null(json_object_get(b, "gpu_count")) &&
        !json_string_value(json_object_get(b, "gpu_type"))) {
        fail(r, "gpu_type", "gpu_count needs gpu_type (see GET /llm-ops/v1/gpu-types?env=%s)",
             r->env);
        return;
    }
    json_t *spec = normal_spec(b);
    if (check_scaling(r, json_object_get(spec, "replicas"), json_object_get(spec, "autoscaling")) <
        0) {
        json_decref(spec);
        return;
    }
    /* the same name again: the same body is a retry (200), another is a conflict */
    char id[64];
    json_t *old = NULL;
    int found = find_named(r, r->env, name, id, &old);
    if (found != 0) {
        if (found > 0) {
            int same = old && json_equal(old, spec);
            if (same)
                answer_dep(r, 200, "deployment exists with this spec", id);
            else
                name_taken(r, r->env, name, id);
        }
        json_decref(old);
        json_decref(spec);
        return;
    }
    /* the GPU type */
    const char *gtype = json_string_value(json_object_get(spec, "gpu_type"));
    long long gcount = json_integer_value(json_object_get(spec, "gpu_count"));
    long long rmax = json_integer_value(json_object_get(json_object_get(spec, "replicas"), "max"));
    json_t *gpu = json_null();
    if (gtype) {
        struct gpu_pick g;
        json_t *valid = NULL;
        int disabled = 0;
        struct db_error err;
        int ok = gpu_resolve(&app->db, r->env, gtype, &g, &valid, &disabled, &err);
        if (ok <= 0) {
            if (ok < 0)
                db_failed(r, "read the GPU types", &err);
            else
                gpu_refuse_type(r, r->env, gtype, disabled, valid); /* gtype is spec's */
            json_decref(spec);
            return;
        }
        gpu = json_pack("{s:s,s:{s:s},s:s?}", "resource_name", g.resource_name, "node_selector",
                        g.node_key, g.node_value, "mig_profile",
                        g.mig_profile[0] ? g.mig_profile : NULL);
    }
    struct instance *in = owner_pick(app, r, r->env_index, SV, NULL);
    if (!in) {
        json_decref(spec);
        json_decref(gpu);
        return;
    }
    char hex[25];
    if (util_random_hex(hex, 12) < 0) {
        json_decref(spec);
        json_decref(gpu);
        resp_error(r, API_INTERNAL, NULL, "cannot make an id");
        return;
    }
    snprintf(id, sizeof id, "dep_%s", hex);
    json_t *input = serving_deploy_input(id, name, spec, gpu);
    char *spec_t = json_dumps(spec, JSON_COMPACT), *gpu_t = json_dumps(gpu, JSON_ENCODE_ANY);
    char *in_t = json_dumps(input, JSON_COMPACT);
    char count[24], maxs[24];
    snprintf(count, sizeof count, "%lld", gcount);
    snprintf(maxs, sizeof maxs, "%lld", rmax);
    const char *actor = r->who.name[0] ? r->who.name : "anonymous";
    const char *p[] = {id, r->env, name, in->name, spec_t, gpu_t, gtype, count, maxs, actor, in_t};
    struct db_error err;
    int rc = begin_capacity(r, r->env, gtype, NULL, gcount * rmax);
    if (rc == 0) {
        /* a failed deployment of this name that the tool refused for good gives the name up */
        const char *pr[] = {r->env, name, actor, id};
        rc = exec1(r,
                   "WITH old AS (UPDATE deployments d SET state = 'deleted', deleted_at = now(),"
                   "  version = version + 1, updated_at = now()"
                   "  WHERE d.environment = $1 AND d.name = $2 AND " REFUSED_FOR_GOOD_
                   "  RETURNING d.id, d.environment)"
                   " INSERT INTO deployment_audit (deployment_id, environment, actor, action,"
                   "  before, after, reason) SELECT old.id, old.environment, $3, 'delete',"
                   "  '{\"state\": \"failed\"}', '{\"state\": \"deleted\"}',"
                   "  'its name was taken by a new create, ' || $4 FROM old",
                   4, pr, &err);
        if (rc < 0) {
            rollback_txn(r);
            db_failed(r, "retire the failed deployment of this name", &err);
        }
    }
    if (rc == 0) {
        /* the row, its owner, its audit, the outbox row that delivers it if this request's
         * own try does not (held back 60 s for that try), and its watch: one transaction */
        rc = exec1(r,
                   "WITH obj AS (INSERT INTO objects (id, kind, environment, category, instance,"
                   "  created_by) VALUES ($1, 'dep', $2, 'serving', $4, $10) RETURNING id),"
                   " dep AS (INSERT INTO deployments (id, environment, name, instance, spec, gpu,"
                   "  gpu_type, gpu_count, replicas_max, created_by)"
                   "  SELECT obj.id, $2, $3, $4, $5::jsonb, $6::jsonb, $7, $8::integer,"
                   "  $9::integer, $10 FROM obj RETURNING id),"
                   " au AS (INSERT INTO deployment_audit (deployment_id, environment, actor,"
                   "  action, after) SELECT dep.id, $2, $10, 'create', $5::jsonb FROM dep)"
                   " INSERT INTO outbox (category, object_id, environment, operation, payload,"
                   "  binds_object, next_attempt_at)"
                   " SELECT 'serving', dep.id, $2, 'deploy', $11::jsonb, true,"
                   "  now() + interval '60 seconds' FROM dep",
                   11, p, &err);
        if (rc == 0 && serving_watch(app, id, &err) < 0)
            rc = -1;
        if (rc < 0) {
            rollback_txn(r);
            if (strcmp(err.sqlstate, "23505") == 0)
                name_taken(r, r->env, name, NULL);
            else
                db_failed(r, "store the deployment", &err);
        } else {
            rc = commit(r);
        }
    }
    free(spec_t);
    free(gpu_t);
    free(in_t);
    json_decref(spec);
    json_decref(gpu);
    if (rc < 0) {
        json_decref(input);
        return;
    }
    /* the request's own try; the outbox delivers it when the tool is down */
    const char *po[] = {id, NULL};
    char msg[700];
    if (in->breaker.state == BREAKER_OPEN) {
        json_decref(input);
        exec1(r,
              "UPDATE outbox SET next_attempt_at = now(), updated_at = now()"
              " WHERE object_id = $1 AND operation = 'deploy' AND state = 'pending'",
              1, po, &err);
        snprintf(msg, sizeof msg,
                 "deployment '%s' accepted; instance %s is unavailable (breaker open): the "
                 "background process delivers it",
                 name, in->name);
        resp_header(r, "Location: /llm-ops/v1/deployments/%s", id);
        answer_dep(r, 201, msg, id);
        return;
    }
    json_t *out = NULL;
    struct llmops_error e;
    rc = serving_call(app, in, "deploy", input, &out, &e);
    json_decref(input);
    if (rc == 0) {
        const char *ext = json_string_value(json_object_get(out, "external_id"));
        const char *pb[] = {id, ext ? ext : ""};
        /* One transaction: the watch polls only once the external id is visible, and by then
         * the row holds this answer, so a terminal state the watch sees first is not written
         * back to progressing by this (older) answer and audited twice. */
        if (ext && *ext && exec1(r, "BEGIN", 0, NULL, &err) == 0) {
            if (exec1(r, "UPDATE objects SET external_id = $2 WHERE id = $1", 2, pb, &err) == 0 &&
                exec1(r,
                      "UPDATE outbox SET state = 'done', attempts = attempts + 1, done_at = now(),"
                      " updated_at = now() WHERE object_id = $1 AND operation = 'deploy'"
                      " AND state = 'pending'",
                      1, po, &err) == 0 &&
                serving_apply_answer(app, id, out, SERVING_ACTOR_PLATFORM, &err) == 0)
                exec1(r, "COMMIT", 0, NULL, &err);
            else
                exec1(r, "ROLLBACK", 0, NULL, &err);
        }
        json_decref(out);
        snprintf(msg, sizeof msg, "deployment '%s' created in %s", name, in->name);
    } else if (retryable(&e)) {
        char last[700];
        snprintf(last, sizeof last, "%.600s (instance %s)", e.message, in->name);
        po[1] = last;
        exec1(r,
              "UPDATE outbox SET next_attempt_at = now(), attempts = attempts + 1,"
              " last_error = $2, updated_at = now() WHERE object_id = $1"
              " AND operation = 'deploy' AND state = 'pending'",
              2, po, &err);
        snprintf(msg, sizeof msg,
                 "deployment '%s' accepted; %s did not take it yet (%.300s): the background "
                 "process delivers it",
                 name, in->name, e.message);
    } else {
        /* refused for good: nothing to deliver, the name and the GPUs free again */
        char last[700];
        snprintf(last, sizeof last, "refused by %s: %.600s", in->name, e.message);
        po[1] = last;
        exec1(r,
              "UPDATE outbox SET state = 'done', attempts = attempts + 1, last_error = $2,"
              " done_at = now(), updated_at = now() WHERE object_id = $1"
              " AND operation = 'deploy' AND state = 'pending'",
              2, po, &err);
        exec1(r,
              "UPDATE deployments SET state = 'deleted', reason = $2, deleted_at = now(),"
              " version = version + 1, updated_at = now() WHERE id = $1",
              2, po, &err);
        exec1(r,
              "UPDATE watches SET state = 'failed', reason = $2, done_at = now(),"
              " updated_at = now() WHERE object_id = $1 AND state = 'watching'",
              2, po, &err);
        serving_audit(app, id, r->env, actor, "failed", NULL, NULL, last, &err);
        call_failed(r, in->name, "deploy", &e);
        return;
    }
    resp_header(r, "Location: /llm-ops/v1/deployments/%s", id);
    answer_dep(r, 201, msg, id);
}

/* ------------------------------------------------------------------ read, list */

void deployments_get(struct req *r)
{
    struct dep d;
    if (load_dep(r, r->path_params[0], &d) < 0)
        return;
    struct instance *in = plugins_find(&r->app->plugins, d.instance);
    const char *msg = "deployment (as last stored: the tool was not asked)";
    if (in && in->initialised && d.ext[0]) {
        json_t *input = json_pack("{s:s}", "external_id", d.ext), *out = NULL;
        struct llmops_error e;
        struct db_error err;
        if (serving_call(r->app, in, "get_deployment", input, &out, &e) == 0) {
            if (serving_apply_answer(r->app, d.id, out, SERVING_ACTOR_PLATFORM, &err) == 0)
                msg = "deployment";
        } else {
            msg = "deployment (as last stored: the tool did not answer)";
            log_info("GET %s: get_deployment of %s: %s", d.id, in->name, e.message);
        }
        json_decref(input);
        json_decref(out);
    }
    char id[64];
    snprintf(id, sizeof id, "%s", d.id);
    dep_free(&d);
    answer_dep(r, 200, msg, id);
}

static const char *const dep_states[] = {"progressing", "ready", "failed", "deleting"};

void deployments_list(struct req *r)
{
    struct page pg;
    const char *state;
    if (page_args(r, PAGE_CURSOR_DEP_ID, 100, 1000, &pg) < 0 ||
        page_state_arg(r, dep_states, UTIL_ARRAY_LEN(dep_states), &state) < 0)
        return;
    struct db_error err;
    if (pg.after) {
        const char *p2[] = {pg.after, r->env};
        PGresult *c =
            db_exec(&r->app->db, "SELECT 1 FROM deployments WHERE id = $1 AND environment = $2", 2,
                    p2, &err);
        if (!c) {
            db_failed(r, "list the deployments", &err);
            return;
        }
        int found = PQntuples(c) == 1;
        PQclear(c);
        if (!found) {
            page_unknown_cursor(r, PAGE_CURSOR_DEP_ID, pg.after);
            return;
        }
    }
    char lim[24], sql[2000];
    snprintf(lim, sizeof lim, "%lld", pg.limit + 1);
    snprintf(sql, sizeof sql,
             "%s WHERE d.environment = $1 AND d.state <> 'deleted'"
             " AND ($2::text IS NULL OR d.state = $2)"
             " AND ($3::text IS NULL OR (d.created_at, d.id) > (SELECT created_at, id FROM"
             " deployments WHERE id = $3)) ORDER BY d.created_at, d.id LIMIT $4::integer",
             dep_select);
    const char *p[] = {r->env, state, pg.after, lim};
    PGresult *res = db_exec(&r->app->db, sql, 4, p, &err);
    if (!res) {
        db_failed(r, "list the deployments", &err);
        return;
    }
    json_t *list, *next;
    int bad = page_rows(res, &pg, dep_row, &list, &next);
    PQclear(res);
    if (bad) {
        json_decref(list);
        json_decref(next);
        resp_error(r, API_INTERNAL, NULL, "a deployment's row could not be read (see the log)");
        return;
    }
    char msg[80];
    snprintf(msg, sizeof msg, "%zu deployment%s in %s", json_array_size(list),
             json_array_size(list) == 1 ? "" : "s", r->env);
    resp_success(
        r, 200, msg,
        json_pack("{s:o,s:O,s:o}", "deployments", list, "next", next, "next_cursor", next));
}

/* ------------------------------------------------------------------ scale, delete */

void deployments_update(struct req *r)
{
    if (check_body(r, patch_m) < 0)
        return;
    json_t *b = r->body;
    if (!json_object_get(b, "replicas") && !json_object_get(b, "autoscaling")) {
        fail(r, "body",
             "give replicas {min, max} and/or autoscaling {metric, target} (null "
             "removes it)");
        return;
    }
    struct dep d;
    if (load_dep(r, r->path_params[0], &d) < 0)
        return;
    json_t *rep = json_object_get(b, "replicas") ? json_object_get(b, "replicas")
                                                 : json_object_get(d.spec, "replicas");
    json_t *as = json_object_get(b, "autoscaling") ? json_object_get(b, "autoscaling")
                                                   : json_object_get(d.spec, "autoscaling");
    if (check_scaling(r, rep, as) < 0) {
        dep_free(&d);
        return;
    }
    struct instance *in = dep_instance(r, &d);
    if (!in) {
        dep_free(&d);
        return;
    }
    if (!d.ext[0]) {
        resp_error(r, API_CONFLICT, json_pack("{s:s}", "field", "id"),
                   "deployment %s is not created in %s yet (its create waits in the outbox); "
                   "change it once it is",
                   d.id, d.instance);
        dep_free(&d);
        return;
    }
    long long new_max = json_integer_value(json_object_get(rep, "max"));
    long long need = d.gpu_count * new_max * (d.canary ? 2 : 1);
    int raising = d.gpu_type[0] && new_max > d.replicas_max;
    /* only the members the body gives are written (and given back on failure): a concurrent
     * PATCH of the other member keeps its change */
    json_t *given_rep = json_object_get(b, "replicas"),
           *given_as = json_object_get(b, "autoscaling");
    json_t *before = json_object(), *after = json_object();
    if (given_rep) {
        json_object_set(before, "replicas", json_object_get(d.spec, "replicas"));
        json_object_set(after, "replicas", given_rep);
    }
    if (given_as) {
        json_t *old_as = json_object_get(d.spec, "autoscaling");
        json_object_set(before, "autoscaling", old_as ? old_as : json_null());
        json_object_set(after, "autoscaling", given_as);
    }
    char *after_t = json_dumps(after, JSON_COMPACT), *before_t = json_dumps(before, JSON_COMPACT);
    struct db_error err;
    /* the new spec (and the GPUs it takes) first, under the type's lock when it takes more */
    const char *p[] = {d.id, after_t};
    static const char upd[] =
        "UPDATE deployments SET spec = CASE WHEN $2::jsonb ? 'autoscaling'"
        "  THEN spec - 'autoscaling' ELSE spec END || jsonb_strip_nulls($2::jsonb),"
        " replicas_max = coalesce(($2::jsonb -> 'replicas' ->> 'max')::integer, replicas_max),"
        " version = version + 1, updated_at = now() WHERE id = $1";
    int rc = raising ? begin_capacity(r, d.env, d.gpu_type, d.id, need) : 0;
    if (rc == 0) {
        rc = exec1(r, upd, 2, p, &err);
        if (rc < 0)
            db_failed(r, "store the change", &err);
        if (raising)
            rc = rc < 0 ? (rollback_txn(r), -1) : commit(r);
    }
    if (rc < 0)
        goto out;
    json_t *input = json_pack("{s:s}", "external_id", d.ext);
    json_object_update(input, after);
    json_t *res = NULL;
    struct llmops_error e;
    if (serving_call(r->app, in, "update_deployment", input, &res, &e) < 0) {
        const char *pr[] = {d.id, before_t};
        exec1(r, upd, 2, pr, &err); /* the old members back */
        call_failed(r, in->name, "update_deployment", &e);
        json_decref(input);
        goto out;
    }
    json_decref(input);
    serving_audit(r->app, d.id, d.env, r->who.name[0] ? r->who.name : "anonymous", "scale",
                  json_incref(before), json_incref(after), NULL, &err);
    serving_apply_answer(r->app, d.id, res, SERVING_ACTOR_PLATFORM, &err);
    json_decref(res);
    serving_watch(r->app, d.id, &err);
    answer_dep(r, 200, "deployment changed; it is progressing until the tool has rolled it out",
               d.id);
out:
    free(after_t);
    free(before_t);
    json_decref(before);
    json_decref(after);
    dep_free(&d);
}

void deployments_delete(struct req *r)
{
    struct dep d;
    if (load_dep(r, r->path_params[0], &d) < 0)
        return;
    if (d.ext[0]) {
        struct instance *in = dep_instance(r, &d);
        if (!in) {
            dep_free(&d);
            return;
        }
        json_t *input = json_pack("{s:s}", "external_id", d.ext), *out = NULL;
        struct llmops_error e;
        int rc = serving_call(r->app, in, "delete_deployment", input, &out, &e);
        json_decref(input);
        json_decref(out);
        if (rc < 0 && e.code != LLMOPS_ERR_NOT_FOUND) {
            call_failed(r, in->name, "delete_deployment", &e);
            dep_free(&d);
            return;
        }
    }
    /* not in the tool yet: its outbox row finds the row deleted and creates nothing */
    const char *p[] = {d.id};
    struct db_error err;
    if (exec1(r,
              "UPDATE deployments SET state = 'deleted', deleted_at = now(), version = version + 1,"
              " updated_at = now() WHERE id = $1",
              1, p, &err) < 0) {
        db_failed(r, "mark the deployment deleted", &err);
        dep_free(&d);
        return;
    }
    exec1(r,
          "UPDATE watches SET state = 'ready', reason = 'deleted', done_at = now(),"
          " updated_at = now() WHERE object_id = $1 AND state = 'watching'",
          1, p, &err);
    json_t *before = json_pack("{s:s}", "state", d.state);
    serving_audit(r->app, d.id, d.env, r->who.name[0] ? r->who.name : "anonymous", "delete", before,
                  json_pack("{s:s}", "state", "deleted"), NULL, &err);
    dep_free(&d);
    r->resp.status = 204;
}

/* ------------------------------------------------------------------ canary */

/* The deployment, its instance, its tool id: 0, or -1 after the answer. */
static int load_for_canary(struct req *r, struct dep *d, struct instance **in, int want_canary)
{
    if (load_dep(r, r->path_params[0], d) < 0)
        return -1;
    if (want_canary >= 0 && (d->canary != NULL) != want_canary) {
        resp_error(r, API_CONFLICT, json_pack("{s:s}", "field", "canary"),
                   want_canary ? "deployment %s has no canary"
                               : "deployment %s has a canary "
                                 "already (one at a time)",
                   d->id);
        dep_free(d);
        return -1;
    }
    *in = dep_instance(r, d);
    if (!*in) {
        dep_free(d);
        return -1;
    }
    if (!d->ext[0]) {
        resp_error(r, API_CONFLICT, json_pack("{s:s}", "field", "id"),
                   "deployment %s is not created in %s yet", d->id, d->instance);
        dep_free(d);
        return -1;
    }
    if (!engine_has_feature(*in, "canary")) {
        resp_error(r, API_VALIDATION_FAILED,
                   json_pack("{s:s,s:s,s:s}", "field", "canary", "feature", "canary", "instance",
                             (*in)->name),
                   "instance %s cannot make canaries (feature \"canary\")", (*in)->name);
        dep_free(d);
        return -1;
    }
    return 0;
}

static const char *actor_of(struct req *r)
{
    return r->who.name[0] ? r->who.name : "anonymous";
}

void deployments_canary_create(struct req *r)
{
    if (check_body(r, canary_m) < 0)
        return;
    json_t *b = r->body;
    if (!json_object_get(b, "model") && !json_object_get(b, "args") && !json_object_get(b, "env")) {
        fail(r, "model", "a canary needs at least one of model, args, env");
        return;
    }
    int pct = json_object_get(b, "traffic_percent") != NULL;
    if (pct == (json_object_get(b, "canary_replicas") != NULL)) {
        fail(r, "traffic_percent",
             "give traffic_percent (1-99), or canary_replicas where the instance splits by "
             "replicas");
        return;
    }
    struct dep d;
    struct instance *in;
    if (load_for_canary(r, &d, &in, 0) < 0)
        return;
    json_t *input = json_pack("{s:s}", "external_id", d.ext);
    static const char *const copy[] = {"model", "args", "env", "traffic_percent",
                                       "canary_replicas"};
    for (size_t i = 0; i < UTIL_ARRAY_LEN(copy); i++)
        if (json_object_get(b, copy[i]))
            json_object_set(input, copy[i], json_object_get(b, copy[i]));
    /* what the instance lacks (the op table's features) is refused before anything is stored */
    struct llmops_error e;
    if (engine_check_features(in, engine_op(SV, "create_canary"), input, &e) < 0) {
        call_failed(r, in->name, "create_canary", &e);
        json_decref(input);
        dep_free(&d);
        return;
    }
    /* the candidate as the row keeps it: what the body gives, the stable spec's for the rest */
    json_t *canary = json_pack("{s:s,s:n}", "state", "progressing", "reason");
    static const char *const spec_members[] = {"model", "args", "env"};
    for (size_t i = 0; i < UTIL_ARRAY_LEN(spec_members); i++) {
        json_t *v = json_object_get(b, spec_members[i]);
        if (!v)
            v = json_object_get(d.spec, spec_members[i]);
        if (v)
            json_object_set(canary, spec_members[i], v);
        else
            json_object_set_new(canary, spec_members[i], i == 1 ? json_array() : json_object());
    }
    json_object_set(canary, "traffic_percent",
                    pct ? json_object_get(b, "traffic_percent") : json_null());
    json_object_set(canary, "canary_replicas",
                    pct ? json_null() : json_object_get(b, "canary_replicas"));
    char *ct = json_dumps(canary, JSON_COMPACT);
    const char *p[] = {d.id, ct};
    struct db_error err;
    /* the canary's GPUs (as many as the stable one may take) under the type's lock */
    int rc = begin_capacity(r, d.env, d.gpu_type, d.id, d.gpu_count * d.replicas_max * 2);
    if (rc == 0) {
        PGresult *res = db_exec(&r->app->db,
                                "UPDATE deployments SET canary = $2::jsonb, version = version + 1,"
                                " updated_at = now() WHERE id = $1 AND canary IS NULL"
                                " RETURNING id",
                                2, p, &err);
        if (!res) {
            rollback_txn(r);
            db_failed(r, "store the canary", &err);
            rc = -1;
        } else {
            int n = PQntuples(res);
            PQclear(res);
            if (n != 1) {
                rollback_txn(r);
                resp_error(r, API_CONFLICT, json_pack("{s:s}", "field", "canary"),
                           "deployment %s got a canary meanwhile (one at a time)", d.id);
                rc = -1;
            } else {
                rc = commit(r);
            }
        }
    }
    free(ct);
    if (rc < 0) {
        json_decref(input);
        json_decref(canary);
        dep_free(&d);
        return;
    }
    json_t *out = NULL;
    if (serving_call(r->app, in, "create_canary", input, &out, &e) < 0) {
        const char *p2[] = {d.id};
        exec1(r,
              "UPDATE deployments SET canary = NULL, version = version + 1, updated_at = now()"
              " WHERE id = $1",
              1, p2, &err);
        call_failed(r, in->name, "create_canary", &e);
    } else {
        serving_audit(r->app, d.id, d.env, actor_of(r), "canary",
                      json_pack("{s:O}", "traffic", d.traffic), json_incref(canary), NULL, &err);
        serving_count_canary(d.env, "create", SERVING_TRIGGER_API);
        serving_apply_answer(r->app, d.id, out, SERVING_ACTOR_PLATFORM, &err);
        serving_watch(r->app, d.id, &err);
        answer_dep(r, 201, "canary created; it is progressing", d.id);
    }
    json_decref(input);
    json_decref(out);
    json_decref(canary);
    dep_free(&d);
}

void deployments_canary_update(struct req *r)
{
    if (check_body(r, canary_patch_m) < 0)
        return;
    json_t *b = r->body;
    json_t *pct = json_object_get(b, "traffic_percent"),
           *reps = json_object_get(b, "canary_replicas");
    if ((pct != NULL) == (reps != NULL)) {
        fail(r, "traffic_percent", "give traffic_percent (0-100) or canary_replicas");
        return;
    }
    struct dep d;
    struct instance *in;
    if (load_for_canary(r, &d, &in, 1) < 0)
        return;
    json_t *input = json_pack("{s:s}", "external_id", d.ext), *out = NULL;
    json_object_set(input, pct ? "traffic_percent" : "canary_replicas", pct ? pct : reps);
    struct llmops_error e;
    struct db_error err;
    if (serving_call(r->app, in, "set_canary_traffic", input, &out, &e) < 0) {
        call_failed(r, in->name, "set_canary_traffic", &e);
    } else {
        json_t *patch =
            json_pack("{s:O}", pct ? "traffic_percent" : "canary_replicas", pct ? pct : reps);
        char *pt = json_dumps(patch, JSON_COMPACT);
        const char *p[] = {d.id, pt};
        exec1(r,
              "UPDATE deployments SET canary = canary || $2::jsonb, version = version + 1,"
              " updated_at = now() WHERE id = $1 AND canary IS NOT NULL",
              2, p, &err);
        free(pt);
        serving_audit(r->app, d.id, d.env, actor_of(r), "traffic",
                      json_pack("{s:O}", "traffic", d.traffic), json_incref(patch), NULL, &err);
        serving_count_canary(d.env, "traffic", SERVING_TRIGGER_API);
        serving_apply_answer(r->app, d.id, out, SERVING_ACTOR_PLATFORM, &err);
        json_decref(patch);
        answer_dep(r, 200, "canary traffic changed", d.id);
    }
    json_decref(input);
    json_decref(out);
    dep_free(&d);
}

void deployments_promote(struct req *r)
{
    if (optional_body(r) < 0 || check_body(r, none_m) < 0)
        return;
    struct dep d;
    struct instance *in;
    if (load_for_canary(r, &d, &in, 1) < 0)
        return;
    json_t *input = json_pack("{s:s}", "external_id", d.ext), *out = NULL;
    struct llmops_error e;
    struct db_error err;
    if (serving_call(r->app, in, "promote_canary", input, &out, &e) < 0) {
        call_failed(r, in->name, "promote_canary", &e);
    } else {
        /* the canary's model, args and env become the stable spec */
        json_t *patch =
            json_pack("{s:O,s:O,s:O}", "model", json_object_get(d.canary, "model"), "args",
                      json_object_get(d.canary, "args"), "env", json_object_get(d.canary, "env"));
        char *pt = json_dumps(patch, JSON_COMPACT);
        const char *p[] = {d.id, pt};
        exec1(r,
              "UPDATE deployments SET spec = spec || jsonb_strip_nulls($2::jsonb), canary = NULL,"
              " traffic = '{\"stable\": 100, \"canary\": 0}', version = version + 1,"
              " updated_at = now() WHERE id = $1",
              2, p, &err);
        free(pt);
        serving_audit(r->app, d.id, d.env, actor_of(r), "promote",
                      json_pack("{s:O,s:O}", "canary", d.canary, "traffic", d.traffic),
                      json_pack("{s:O,s:n,s:{s:i,s:i}}", "model", json_object_get(patch, "model"),
                                "canary", "traffic", "stable", 100, "canary", 0),
                      NULL, &err);
        serving_count_canary(d.env, "promote", SERVING_TRIGGER_API);
        json_decref(patch);
        serving_apply_answer(r->app, d.id, out, SERVING_ACTOR_PLATFORM, &err);
        serving_watch(r->app, d.id, &err);
        answer_dep(r, 200, "canary promoted: it is the stable spec at 100 %", d.id);
    }
    json_decref(input);
    json_decref(out);
    dep_free(&d);
}

void deployments_rollback(struct req *r)
{
    if (optional_body(r) < 0 || check_body(r, rollback_m) < 0)
        return;
    const char *reason = r->body ? json_string_value(json_object_get(r->body, "reason")) : NULL;
    struct dep d;
    struct instance *in;
    if (load_for_canary(r, &d, &in, 1) < 0)
        return;
    int rolled = 0;
    struct llmops_error e;
    if (serving_rollback_id(r->app, d.id, actor_of(r), reason ? reason : "manual rollback",
                            SERVING_TRIGGER_API, &rolled, &e) < 0)
        call_failed(r, in->name, "rollback_canary", &e);
    else if (!rolled)
        resp_error(r, API_CONFLICT, json_pack("{s:s}", "field", "canary"),
                   "deployment %s has no canary (rolled back meanwhile)", d.id);
    else
        answer_dep(r, 200, "canary rolled back: all traffic on the stable revision", d.id);
    dep_free(&d);
}

/* ------------------------------------------------------------------ audit */

void deployments_audit(struct req *r)
{
    const char *p[] = {r->path_params[0]};
    struct db_error err;
    PGresult *res = db_exec(&r->app->db,
                            "SELECT " TS("a.at") ", a.actor, a.action, coalesce(a.before::text,"
                                                 " 'null'), coalesce(a.after::text, 'null'),"
                                                 " a.reason, d.id"
                                                 " FROM deployments d LEFT JOIN deployment_audit a"
                                                 " ON a.deployment_id = d.id WHERE d.id = $1"
                                                 " ORDER BY a.id LIMIT 1000",
                            1, p, &err);
    if (!res) {
        db_failed(r, "read the audit", &err);
        return;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        not_found(r, r->path_params[0]);
        return;
    }
    json_t *list = json_array();
    for (int i = 0; i < PQntuples(res); i++) {
        if (PQgetisnull(res, i, 0))
            continue;
        json_t *before = json_loads(PQgetvalue(res, i, 3), JSON_DECODE_ANY, NULL);
        json_t *after = json_loads(PQgetvalue(res, i, 4), JSON_DECODE_ANY, NULL);
        json_array_append_new(
            list,
            json_pack("{s:s,s:s,s:s,s:o,s:o,s:o}", "at", PQgetvalue(res, i, 0), "actor",
                      PQgetvalue(res, i, 1), "action", PQgetvalue(res, i, 2), "before",
                      before ? before : json_null(), "after", after ? after : json_null(), "reason",
                      json_str_or_null(PQgetisnull(res, i, 5) ? NULL : PQgetvalue(res, i, 5))));
    }
    PQclear(res);
    char msg[64];
    snprintf(msg, sizeof msg, "%zu audit row%s", json_array_size(list),
             json_array_size(list) == 1 ? "" : "s");
    resp_success(r, 200, msg, json_pack("{s:s,s:o}", "id", r->path_params[0], "audit", list));
}

/* ------------------------------------------------------------------ predict */

static int valid_path(const char *s)
{
    if (!s || s[0] != '/' || strlen(s) > 2048 || strstr(s, ".."))
        return 0;
    for (; *s; s++)
        if ((unsigned char)*s <= ' ' || *s == '#' || (unsigned char)*s >= 0x7f)
            return 0;
    return 1;
}

/* The model server's answer as ours: its status kept; the envelope's data {status, body,
 * content_type}; a status that is not 2xx is the error envelope (TOOL_ERROR) with the same
 * members. */
static void predict_answer(struct req *r, const char *instance, int status, json_t *body,
                           const char *ctype)
{
    if (status < 200 || status > 599)
        status = 502;
    json_t *data = json_pack("{s:i,s:O,s:s,s:s}", "status", status, "body", body, "content_type",
                             ctype ? ctype : "", "instance", instance);
    if (status >= 200 && status < 300) {
        resp_success(r, status, "the model server's answer", data);
        return;
    }
    json_object_set_new(data, "tool_status", json_integer(status));
    resp_error(r, API_TOOL_ERROR, data, "the model server answered HTTP %d", status);
    r->resp.status = status;
}

void deployments_predict(struct req *r)
{
    const char *path = http_query(r, "path");
    struct dep d;
    if (load_dep(r, r->path_params[0], &d) < 0)
        return;
    char def[128];
    snprintf(def, sizeof def, "/v1/models/%s:predict", d.name);
    if (!path)
        path = def;
    if (!valid_path(path)) {
        fail(r, "path",
             "path must begin with '/', hold no '..', spaces or control characters, and be at "
             "most 2048 bytes");
        dep_free(&d);
        return;
    }
    struct instance *in = dep_instance(r, &d);
    if (!in) {
        dep_free(&d);
        return;
    }
    const char *p[] = {d.id};
    struct db_error err;
    PGresult *res = db_exec(&r->app->db,
                            "SELECT state, coalesce(url, '') FROM deployments"
                            " WHERE id = $1",
                            1, p, &err);
    if (!res) {
        db_failed(r, "read the deployment", &err);
        dep_free(&d);
        return;
    }
    char state[16], url[1024];
    snprintf(state, sizeof state, "%s", PQgetvalue(res, 0, 0));
    snprintf(url, sizeof url, "%s", PQgetvalue(res, 0, 1));
    PQclear(res);
    if (strcmp(state, "ready") != 0 || !url[0]) {
        resp_error(r, API_CONFLICT, json_pack("{s:s,s:s}", "field", "id", "state", state),
                   "deployment %s is %s%s: predict needs a ready deployment with a URL", d.id,
                   state, url[0] ? "" : " and has no URL yet");
        dep_free(&d);
        return;
    }
    const struct llmops_op_desc *op = engine_op(SV, "predict");
    if (engine_has(in, SV, op)) {
        json_t *input = json_pack("{s:s,s:s,s:O,s:i}", "external_id", d.ext, "path", path, "body",
                                  r->body, "timeout_ms", SERVING_PREDICT_TIMEOUT_MS),
               *out = NULL;
        struct llmops_error e;
        if (serving_call(r->app, in, "predict", input, &out, &e) < 0)
            call_failed(r, in->name, "predict", &e);
        else
            predict_answer(r, in->name, (int)json_integer_value(json_object_get(out, "status")),
                           json_object_get(out, "body"),
                           json_string_value(json_object_get(out, "content_type")));
        json_decref(input);
        json_decref(out);
        dep_free(&d);
        return;
    }
    /* no predict op: one bounded POST to the deployment's URL (no retry: it is not known to
     * be idempotent), not streamed */
    struct httpc_config cfg = {.base_url = url,
                               .connect_timeout_ms = 2000,
                               .total_timeout_ms = SERVING_PREDICT_TIMEOUT_MS,
                               .max_retries = 0,
                               .verify_tls = 1,
                               .max_body_bytes = SERVING_PREDICT_MAX_BYTES};
    struct httpc *c = httpc_new(&cfg);
    if (!c) {
        resp_error(r, API_TOOL_ERROR, json_pack("{s:s}", "url", url),
                   "the deployment's URL is not one llm-ops can call (http or https only)");
        dep_free(&d);
        return;
    }
    char *body = json_dumps(r->body, JSON_COMPACT);
    struct llmops_http_request rq = {.size = sizeof rq,
                                     .method = "POST",
                                     .path = path,
                                     .body = body,
                                     .body_len = body ? strlen(body) : 0,
                                     .content_type = "application/json"};
    struct llmops_http_response rs = {.size = sizeof rs};
    struct llmops_error e = {.size = sizeof e};
    int rc = httpc_request(c, &rq, &rs, &e);
    free(body);
    if (rc < 0) {
        resp_error(r, e.code == LLMOPS_ERR_UNAVAILABLE ? API_TOOL_UNAVAILABLE : API_TOOL_ERROR,
                   json_pack("{s:s}", "instance", in->name),
                   "the model server of %s did not answer: %s", d.id, e.message);
    } else {
        json_t *j = json_loadb(rs.body, rs.body_len, JSON_DECODE_ANY, NULL);
        if (!j)
            j = json_stringn(rs.body, rs.body_len);
        if (!j)
            j = json_null();
        predict_answer(r, in->name, rs.status, j, rs.content_type);
        json_decref(j);
        httpc_response_free(&rs);
    }
    httpc_free(c);
    dep_free(&d);
}
