/* rayserve — the serving module for Ray Serve's REST API on the Ray dashboard: one
 * application per deployment in Serve's declarative config (PUT /api/serve/applications/
 * replaces the whole document and deletes every application it does not list). So every
 * write is a read-modify-write of the whole document: GET the applications, change one,
 * PUT them all back; the instance's feature serialized_writes makes the core run this
 * instance's writes one at a time across processes. Autoscaling as autoscaling_config
 * (target_ongoing_requests), resources as ray_actor_options (num_cpus, memory in bytes,
 * num_gpus for the one GPU resource the instance names). Ray Serve has no traffic split
 * between versions of an application: canaries are refused with UNSUPPORTED naming the
 * feature. The idempotency key and the platform's mark live in the application's
 * runtime_env.env_vars (LLMOPS_IDEMPOTENCY_KEY, LLMOPS_MANAGED). See doc/plugins/rayserve.md. */
#include "llmops-plugin.h"
#include "llmops-serving.h"
#include "sv.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RS_MODULE_VERSION "1.0.0"
#define RS_TOOL_MIN "2.9"
#define RS_TOOL_MAX "2.99"
#define APPS "/api/serve/applications/"
#define KEY_ENV "LLMOPS_IDEMPOTENCY_KEY"
#define MANAGED_ENV "LLMOPS_MANAGED"

static const struct llmops_config_key keys[] = {
    {"import_path", LLMOPS_CONFIG_STRING, 1, 0, 0,
     "the application builder, module:attribute (\"serve_llm:app\")"},
    {"deployment_name", LLMOPS_CONFIG_STRING, 0, 0, 0,
     "the deployment in the application's code whose options are set (\"LLMServer\")"},
    {"runtime", LLMOPS_CONFIG_STRING, 0, 0, 0,
     "the name requests use for this import path (default \"default\")"},
    {"gpu_resource", LLMOPS_CONFIG_STRING, 0, 0, 0,
     "the one GPU resource name the cluster's GPUs are (default nvidia.com/gpu)"},
    {"serve_url", LLMOPS_CONFIG_URL, 0, 0, 0,
     "where Serve's HTTP proxy answers (default: url's host, port 8000)"},
    {NULL, 0, 0, 0, 0, NULL},
};

static const char *const metrics[] = {"ongoing_requests", NULL};

struct rs {
    const struct llmops_host *host;
    const char *import_path, *deployment, *runtime, *gpu;
    char serve_url[300];
    long long timeout_ms;
    struct sv_features f;
};

struct call {
    struct rs *s;
    const char *op;
    int64_t deadline;
    struct llmops_error *err;
};

static struct call begin(void *state, const char *op, struct llmops_error *err)
{
    struct rs *s = state;
    return (struct call){s, op, s->host->now_ms() + s->timeout_ms, err};
}

/* ------------------------------------------------------------------ HTTP */

static int request(struct call *c, const char *method, const char *path, json_t *body, json_t **out)
{
    const struct llmops_host *h = c->s->host;
    if (out)
        *out = NULL;
    int64_t left = c->deadline - h->now_ms();
    if (left <= 0)
        return sv_fail_tool(c->err, LLMOPS_ERR_UNAVAILABLE, 0, 1,
                            "Ray Serve: no time left within timeout_ms");
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    struct llmops_http_request req = {
        .size = sizeof req,
        .method = method,
        .path = path,
        .body = text,
        .body_len = text ? strlen(text) : 0,
        .content_type = text ? "application/json" : NULL,
        .timeout_ms = (long)left,
    };
    struct llmops_http_response resp = {.size = sizeof resp};
    h->metric_add(h, "requests", 1);
    int rc = h->http(h, &req, &resp, c->err);
    free(text);
    if (rc != 0) {
        h->metric_add(h, "request_failures", 1);
        return -1;
    }
    int status = resp.status;
    if (status < 200 || status > 299) {
        h->metric_add(h, "request_failures", 1);
        /* Serve's refusals are pydantic text: logged, never quoted to clients. */
        h->log(h, LLMOPS_LOG_WARNING, "%s: %s %s answered HTTP %d: %.300s", c->op, method, path,
               status, resp.body ? resp.body : "");
        h->http_free(&resp);
        if (status == 400 || status == 422)
            return sv_fail_tool(c->err, LLMOPS_ERR_INVALID, status, 0,
                                "Ray Serve refused the config (HTTP %d; details in the log)",
                                status);
        if (status == 401 || status == 403)
            return sv_fail_tool(c->err, LLMOPS_ERR_TOOL, status, 0, "Ray Serve: %s (HTTP %d)",
                                status == 401 ? "unauthorized" : "forbidden", status);
        if (status == 404)
            return sv_fail_tool(c->err, LLMOPS_ERR_TOOL, status, 0,
                                "Ray Serve %s: not found (is url the Ray dashboard?)", path);
        return sv_fail_tool(c->err, LLMOPS_ERR_TOOL, status, status == 429 || status >= 500,
                            "Ray Serve %s %s: HTTP %d", method, path, status);
    }
    if (out) {
        json_t *o = resp.body_len ? json_loadb(resp.body, resp.body_len, 0, NULL) : json_object();
        h->http_free(&resp);
        if (!json_is_object(o)) {
            json_decref(o);
            return sv_fail_tool(c->err, LLMOPS_ERR_TOOL, status, 0,
                                "Ray Serve %s: not a JSON object", path);
        }
        *out = o;
        return 0;
    }
    h->http_free(&resp);
    return 0;
}

/* ------------------------------------------------------------------ the document */

/* The applications' configs as deployed (name -> config), from GET. */
static int read_doc(struct call *c, json_t **doc)
{
    return request(c, "GET", APPS, NULL, doc);
}

static json_t *app_config(json_t *app)
{
    return json_object_get(app, "deployed_app_config");
}

static const char *env_of(json_t *cfg, const char *name)
{
    return sv_sget(json_object_get(json_object_get(cfg, "runtime_env"), "env_vars"), name);
}

/* Writes the document back with apps' configs, `replace` put in for `name` (NULL: removed). */
static int write_doc(struct call *c, json_t *doc, const char *name, json_t *replace)
{
    json_t *list = json_array(), *app;
    const char *k;
    json_object_foreach(json_object_get(doc, "applications"), k, app)
    {
        if (!strcmp(k, name))
            continue;
        json_t *cfg = app_config(app);
        if (!cfg) {
            json_decref(list);
            return sv_fail_tool(c->err, LLMOPS_ERR_TOOL, 200, 0,
                                "Ray Serve: application %s has no deployed_app_config (deployed "
                                "imperatively?): refusing to rewrite the document without it",
                                k);
        }
        json_array_append(list, cfg);
    }
    if (replace)
        json_array_append(list, replace);
    json_t *body = json_pack("{s:o}", "applications", list);
    if (sv_sget(doc, "proxy_location"))
        json_object_set(body, "proxy_location", json_object_get(doc, "proxy_location"));
    int rc = request(c, "PUT", APPS, body, NULL);
    json_decref(body);
    return rc;
}

/* A Kubernetes quantity as a number ("500m" 0.5, "32Gi" 34359738368); -1 when unreadable. */
static double quantity(const char *q)
{
    char *end;
    double v = strtod(q, &end);
    if (end == q || v < 0)
        return -1;
    static const struct {
        const char *suffix;
        double factor;
    } units[] = {{"", 1},
                 {"m", 1e-3},
                 {"k", 1e3},
                 {"M", 1e6},
                 {"G", 1e9},
                 {"T", 1e12},
                 {"Ki", 1024.0},
                 {"Mi", 1048576.0},
                 {"Gi", 1073741824.0},
                 {"Ti", 1099511627776.0}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (!strcmp(end, units[i].suffix))
            return v * units[i].factor;
    return -1;
}

/* The application config from `in` over `old` (NULL for a new one). */
static int build(struct call *c, json_t *in, json_t *old, const char *name, const char *key,
                 json_t **out)
{
    struct rs *s = c->s;
    json_t *cfg = old ? json_deep_copy(old)
                      : json_pack("{s:s,s:s,s:s,s:{s:{}},s:{},s:[{s:s}]}", "name", name,
                                  "route_prefix", "/", "import_path", s->import_path, "runtime_env",
                                  "env_vars", "args", "deployments", "name", s->deployment);
    char prefix[80];
    snprintf(prefix, sizeof prefix, "/%s", name);
    json_object_set_new(cfg, "route_prefix", json_string(prefix));
    json_t *re = json_object_get(cfg, "runtime_env");
    if (!json_is_object(re)) {
        re = json_object();
        json_object_set_new(cfg, "runtime_env", re);
    }
    json_t *ev = json_object_get(re, "env_vars");
    if (!json_is_object(ev)) {
        ev = json_object();
        json_object_set_new(re, "env_vars", ev);
    }
    json_t *env = json_object_get(in, "env");
    if (env) {
        /* env replaces the request's variables; the module's own stay. */
        json_t *keep = json_object();
        const char *own[] = {"MODEL_URI", "MODEL_FORMAT", KEY_ENV, MANAGED_ENV};
        for (int i = 0; i < 4; i++)
            if (json_object_get(ev, own[i]))
                json_object_set(keep, own[i], json_object_get(ev, own[i]));
        json_object_clear(ev);
        json_object_update(ev, env);
        json_object_update(ev, keep);
        json_decref(keep);
    }
    json_t *m = json_object_get(in, "model");
    if (m) {
        json_object_set_new(ev, "MODEL_URI", json_string(sv_sget(m, "uri")));
        json_object_set_new(ev, "MODEL_FORMAT", json_string(sv_sget(m, "format")));
    }
    if (key)
        json_object_set_new(ev, KEY_ENV, json_string(key));
    json_object_set_new(ev, MANAGED_ENV, json_string("llm-ops"));
    if (json_object_get(in, "args")) {
        json_t *a = json_object_get(cfg, "args");
        if (!json_is_object(a)) {
            a = json_object();
            json_object_set_new(cfg, "args", a);
        }
        json_object_set(a, "argv", json_object_get(in, "args"));
    }
    json_t *dep = json_array_get(json_object_get(cfg, "deployments"), 0);
    if (!dep) {
        dep = json_pack("{s:s}", "name", s->deployment);
        json_object_set_new(cfg, "deployments", json_pack("[o]", dep));
    }
    json_t *rep = json_object_get(in, "replicas"), *as = json_object_get(in, "autoscaling");
    json_t *cur_as = json_object_get(dep, "autoscaling_config");
    json_int_t min = rep      ? json_integer_value(json_object_get(rep, "min"))
                     : cur_as ? json_integer_value(json_object_get(cur_as, "min_replicas"))
                              : json_integer_value(json_object_get(dep, "num_replicas"));
    json_int_t max = rep      ? json_integer_value(json_object_get(rep, "max"))
                     : cur_as ? json_integer_value(json_object_get(cur_as, "max_replicas"))
                              : json_integer_value(json_object_get(dep, "num_replicas"));
    int autoscale = as ? json_is_object(as) : cur_as != NULL;
    if (autoscale && min >= max) {
        json_decref(cfg);
        return sv_fail_tool(c->err, LLMOPS_ERR_INVALID, 0, 0,
                            "autoscaling needs replicas.min < replicas.max (give both)");
    }
    if (!autoscale && min < max) {
        json_decref(cfg);
        return sv_fail_tool(c->err, LLMOPS_ERR_INVALID, 0, 0,
                            "replicas.min < replicas.max needs autoscaling {metric, target}");
    }
    if (autoscale) {
        json_int_t target =
            json_is_object(as)
                ? json_integer_value(json_object_get(as, "target"))
                : json_integer_value(json_object_get(cur_as, "target_ongoing_requests"));
        json_object_del(dep, "num_replicas");
        json_object_set_new(dep, "autoscaling_config",
                            json_pack("{s:I,s:I,s:I}", "min_replicas", min, "max_replicas", max,
                                      "target_ongoing_requests", target));
    } else if (rep || as) {
        json_object_del(dep, "autoscaling_config");
        json_object_set_new(dep, "num_replicas", json_integer(max));
    }
    json_t *res = json_object_get(in, "resources");
    if (res) {
        json_t *rao = json_object();
        if (sv_sget(res, "cpu")) {
            double v = quantity(sv_sget(res, "cpu"));
            if (v < 0) {
                json_decref(rao), json_decref(cfg);
                return sv_fail_tool(c->err, LLMOPS_ERR_INVALID, 0, 0,
                                    "resources.cpu is not a quantity");
            }
            json_object_set_new(rao, "num_cpus", json_real(v));
        }
        if (sv_sget(res, "memory")) {
            double v = quantity(sv_sget(res, "memory"));
            if (v < 0) {
                json_decref(rao), json_decref(cfg);
                return sv_fail_tool(c->err, LLMOPS_ERR_INVALID, 0, 0,
                                    "resources.memory is not a quantity");
            }
            json_object_set_new(rao, "memory", json_integer((json_int_t)llround(v)));
        }
        json_t *gpu = json_object_get(res, "gpu");
        if (gpu) {
            const char *rn = sv_sget(gpu, "resource_name");
            if (strcmp(rn, s->gpu)) {
                json_decref(rao), json_decref(cfg);
                return sv_fail_tool(
                    c->err, LLMOPS_ERR_UNSUPPORTED, 0, 0,
                    "resources.gpu.resource_name %s: Ray counts GPUs without telling "
                    "kinds apart; this instance's GPUs are %s (gpu_resource)",
                    rn, s->gpu);
            }
            json_object_set(rao, "num_gpus", json_object_get(gpu, "count"));
        }
        json_object_set_new(dep, "ray_actor_options", rao);
    }
    *out = cfg;
    return 0;
}

/* ------------------------------------------------------------------ answers */

static json_t *answer_of(struct rs *s, const char *name, json_t *app)
{
    json_t *cfg = app_config(app);
    json_t *ev = json_object_get(json_object_get(cfg, "runtime_env"), "env_vars");
    json_t *o =
        json_pack("{s:s,s:s,s:s}", "name", name, "external_id", name, "runtime", s->runtime);
    json_object_set_new(
        o, "model",
        json_pack("{s:s,s:s}", "uri", sv_sget(ev, "MODEL_URI") ? sv_sget(ev, "MODEL_URI") : "",
                  "format", sv_sget(ev, "MODEL_FORMAT") ? sv_sget(ev, "MODEL_FORMAT") : ""));
    json_t *env = json_object(), *v;
    const char *k;
    json_object_foreach(ev, k, v) if (strcmp(k, "MODEL_URI") && strcmp(k, "MODEL_FORMAT") &&
                                      strcmp(k, KEY_ENV) && strcmp(k, MANAGED_ENV))
        json_object_set(env, k, v);
    json_object_set_new(o, "env", env);
    json_t *argv = json_object_get(json_object_get(cfg, "args"), "argv");
    if (json_is_array(argv))
        json_object_set(o, "args", argv);
    json_t *dep = json_array_get(json_object_get(cfg, "deployments"), 0);
    json_t *as = json_object_get(dep, "autoscaling_config");
    json_int_t min, max;
    if (as) {
        min = json_integer_value(json_object_get(as, "min_replicas"));
        max = json_integer_value(json_object_get(as, "max_replicas"));
        json_object_set_new(o, "autoscaling",
                            json_pack("{s:s,s:O}", "metric", "ongoing_requests", "target",
                                      json_object_get(as, "target_ongoing_requests")));
    } else {
        json_t *n = json_object_get(dep, "num_replicas");
        min = max = json_is_integer(n) ? json_integer_value(n) : 1;
    }
    json_object_set_new(o, "replicas", json_pack("{s:I,s:I}", "min", min, "max", max));
    json_t *rao = json_object_get(dep, "ray_actor_options");
    if (json_is_object(rao)) {
        json_t *r = json_object();
        if (json_is_number(json_object_get(rao, "num_cpus"))) {
            char q[32];
            snprintf(q, sizeof q, "%g", json_number_value(json_object_get(rao, "num_cpus")));
            json_object_set_new(r, "cpu", json_string(q));
        }
        if (json_is_integer(json_object_get(rao, "memory"))) {
            char q[32];
            snprintf(q, sizeof q, "%lld",
                     (long long)json_integer_value(json_object_get(rao, "memory")));
            json_object_set_new(r, "memory", json_string(q));
        }
        if (json_is_integer(json_object_get(rao, "num_gpus")))
            json_object_set_new(r, "gpu",
                                json_pack("{s:s,s:O}", "resource_name", s->gpu, "count",
                                          json_object_get(rao, "num_gpus")));
        json_object_set_new(o, "resources", r);
    }
    const char *status = sv_sget(app, "status");
    const char *state = "progressing";
    if (status && !strcmp(status, "RUNNING"))
        state = "ready";
    else if (status && (!strcmp(status, "DEPLOY_FAILED") || !strcmp(status, "UNHEALTHY")))
        state = "failed";
    else if (status && !strcmp(status, "DELETING"))
        state = "deleting";
    json_object_set_new(o, "state", json_string(state));
    if (strcmp(state, "ready") && status) {
        json_object_set_new(o, "reason", json_string(status));
        const char *msg = sv_sget(app, "message");
        if (msg && *msg) {
            char buf[400];
            json_object_set_new(o, "message", json_string(llmops_quote(buf, sizeof buf, msg, 300)));
        }
    }
    json_int_t ready = 0;
    json_t *d;
    json_object_foreach(json_object_get(app, "deployments"), k, d)
    {
        size_t i;
        json_t *r;
        json_array_foreach(json_object_get(d, "replicas"), i,
                           r) if (sv_sget(r, "state") && !strcmp(sv_sget(r, "state"), "RUNNING"))
            ready++;
    }
    json_object_set_new(o, "ready_replicas", json_integer(ready));
    char url[400];
    snprintf(url, sizeof url, "%s/%s", s->serve_url, name);
    json_object_set_new(o, "url", json_string(url));
    json_t *ts = json_object_get(app, "last_deployed_time_s");
    if (json_is_number(ts))
        json_object_set_new(o, "updated_ms",
                            json_integer((json_int_t)llround(json_number_value(ts) * 1000)));
    json_object_set_new(o, "traffic", json_pack("{s:{s:i}}", "stable", "percent", 100));
    json_object_set_new(o, "tool", json_pack("{s:O}", "status", json_object_get(app, "status")));
    return o;
}

static json_t *managed_app(json_t *doc, const char *name)
{
    json_t *app = json_object_get(json_object_get(doc, "applications"), name ? name : "");
    const char *m = env_of(app_config(app), MANAGED_ENV);
    return m && !strcmp(m, "llm-ops") ? app : NULL;
}

/* ------------------------------------------------------------------ ops */

static int check_runtime(struct call *c, json_t *in)
{
    const char *rt = sv_sget(in, "runtime");
    if (rt && strcmp(rt, c->s->runtime)) {
        char q[80];
        return sv_fail_tool(c->err, LLMOPS_ERR_INVALID, 0, 0,
                            "runtime \"%s\" is not known to this instance (its runtime is \"%s\")",
                            llmops_quote(q, sizeof q, rt, 60), c->s->runtime);
    }
    return 0;
}

static int reread(struct call *c, const char *name, json_t **out, const char *flag, int value)
{
    json_t *doc;
    if (read_doc(c, &doc) < 0)
        return -1;
    json_t *app = managed_app(doc, name);
    if (!app) {
        json_decref(doc);
        return sv_fail_tool(c->err, LLMOPS_ERR_NOT_FOUND, 0, 0, "no application %s", name);
    }
    *out = answer_of(c->s, name, app);
    if (flag)
        json_object_set_new(*out, flag, json_boolean(value));
    json_decref(doc);
    return 0;
}

/* 1 with *out the answer for the application of doc whose env carries idempotency key
 * `key`; 0 when none does. */
static int keyed_answer(struct rs *s, json_t *doc, const char *key, json_t **out)
{
    const char *k;
    json_t *app;
    json_object_foreach(json_object_get(doc, "applications"), k, app)
    {
        const char *has = env_of(app_config(app), KEY_ENV);
        if (has && !strcmp(has, key)) {
            *out = answer_of(s, k, app);
            return 1;
        }
    }
    return 0;
}

static int deploy(void *state, json_t *in, json_t **out, struct llmops_error *err)
{
    struct call c = begin(state, "deploy", err);
    const char *key = sv_sget(in, "idempotency_key"), *name = sv_sget(in, "name");
    if (sv_check_spec(in, &c.s->f, 0, err) < 0 || check_runtime(&c, in) < 0)
        return -1;
    json_t *doc;
    if (read_doc(&c, &doc) < 0)
        return -1;
    if (keyed_answer(c.s, doc, key, out)) {
        json_object_set_new(*out, "created", json_false());
        json_decref(doc);
        return 0;
    }
    if (json_object_get(json_object_get(doc, "applications"), name)) {
        json_decref(doc);
        return sv_fail_tool(c.err, LLMOPS_ERR_CONFLICT, 0, 0,
                            "application %s exists and was not made with this idempotency key",
                            name);
    }
    json_t *cfg;
    if (build(&c, in, NULL, name, key, &cfg) < 0) {
        json_decref(doc);
        return -1;
    }
    int rc = write_doc(&c, doc, name, cfg);
    json_decref(cfg);
    json_decref(doc);
    if (rc < 0)
        return -1;
    return reread(&c, name, out, "created", 1);
}

static int get_deployment(void *state, json_t *in, json_t **out, struct llmops_error *err)
{
    struct call c = begin(state, "get_deployment", err);
    return reread(&c, sv_sget(in, "external_id"), out, NULL, 0);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int list_deployments(void *state, json_t *in, json_t **out, struct llmops_error *err)
{
    struct call c = begin(state, "list_deployments", err);
    json_int_t max = json_integer_value(json_object_get(in, "max_results"));
    if (max < 1 || max > LLMOPS_SERVING_MAX_RESULTS)
        return sv_fail_tool(c.err, LLMOPS_ERR_INVALID, 0, 0, "max_results must be 1..%d",
                            LLMOPS_SERVING_MAX_RESULTS);
    /* The token is the last name of the previous page: applications are listed by name. */
    const char *after = sv_sget(in, "page_token");
    if (after && (strlen(after) > LLMOPS_SERVING_NAME_MAX || strncmp(after, "after:", 6)))
        return sv_fail_tool(c.err, LLMOPS_ERR_INVALID, 0, 0,
                            "page_token is not one this module made");
    if (after)
        after += 6;
    json_t *doc;
    if (read_doc(&c, &doc) < 0)
        return -1;
    json_t *apps = json_object_get(doc, "applications"), *app;
    size_t n = json_object_size(apps), used = 0;
    const char **names = calloc(n + 1, sizeof *names);
    const char *k;
    json_object_foreach(apps, k, app) if (managed_app(doc, k)) names[used++] = k;
    qsort(names, used, sizeof *names, cmp_str);
    json_t *list = json_array();
    const char *last = NULL;
    size_t i = 0;
    while (i < used && after && strcmp(names[i], after) <= 0)
        i++;
    for (; i < used && (json_int_t)json_array_size(list) < max; i++) {
        json_array_append_new(list, answer_of(c.s, names[i], json_object_get(apps, names[i])));
        last = names[i];
    }
    *out = json_pack("{s:o}", "deployments", list);
    if (i < used && last) {
        char tok[80];
        snprintf(tok, sizeof tok, "after:%s", last);
        json_object_set_new(*out, "next_page_token", json_string(tok));
    }
    free(names);
    json_decref(doc);
    return 0;
}

static int update_deployment(void *state, json_t *in, json_t **out, struct llmops_error *err)
{
    struct call c = begin(state, "update_deployment", err);
    const char *name = sv_sget(in, "external_id");
    if (sv_check_spec(in, &c.s->f, 1, err) < 0 || check_runtime(&c, in) < 0)
        return -1;
    json_t *doc, *cfg;
    if (read_doc(&c, &doc) < 0)
        return -1;
    json_t *app = managed_app(doc, name);
    if (!app) {
        json_decref(doc);
        return sv_fail_tool(c.err, LLMOPS_ERR_NOT_FOUND, 0, 0, "no application %s",
                            name ? name : "");
    }
    if (build(&c, in, app_config(app), name, NULL, &cfg) < 0) {
        json_decref(doc);
        return -1;
    }
    int rc = write_doc(&c, doc, name, cfg);
    json_decref(cfg);
    json_decref(doc);
    return rc < 0 ? -1 : reread(&c, name, out, NULL, 0);
}

static int delete_deployment(void *state, json_t *in, json_t **out, struct llmops_error *err)
{
    struct call c = begin(state, "delete_deployment", err);
    const char *name = sv_sget(in, "external_id");
    json_t *doc;
    if (read_doc(&c, &doc) < 0)
        return -1;
    json_t *app = managed_app(doc, name);
    const char *st = sv_sget(app, "status");
    if (!app || (st && !strcmp(st, "DELETING"))) {
        json_decref(doc);
        *out = json_pack("{s:b}", "deleted", 0);
        return 0;
    }
    int rc = write_doc(&c, doc, name, NULL);
    json_decref(doc);
    if (rc < 0)
        return -1;
    *out = json_pack("{s:b}", "deleted", 1);
    return 0;
}

static int find_by_idempotency_key(void *state, json_t *in, json_t **out, struct llmops_error *err)
{
    struct call c = begin(state, "find_by_idempotency_key", err);
    const char *key = sv_sget(in, "idempotency_key");
    json_t *doc;
    if (read_doc(&c, &doc) < 0)
        return -1;
    if (keyed_answer(c.s, doc, key, out)) {
        json_decref(doc);
        return 0;
    }
    json_decref(doc);
    return sv_fail_tool(c.err, LLMOPS_ERR_NOT_FOUND, 0, 0,
                        "no application carries this idempotency key");
}

/* Ray Serve has no split between two versions of an application. */
static int no_canary(void *state, json_t *in, json_t **out, struct llmops_error *err)
{
    (void)state, (void)in, (void)out;
    return llmops_fail(err, LLMOPS_ERR_UNSUPPORTED, 0, 0,
                       "Ray Serve cannot split traffic between versions of an application "
                       "(feature \"canary\")");
}

/* ------------------------------------------------------------------ the descriptor */

static const struct llmops_serving_ops ops =
    SV_SERVING_OPS(no_canary, no_canary, no_canary, no_canary);

static int rs_init(const struct llmops_host *host, void **state, struct llmops_error *err)
{
    const char *url = host->config_string(host, "url", NULL);
    char m[400];
    if (!url || !*url) {
        snprintf(m, sizeof m, "%s: rayserve needs url (the Ray dashboard, port 8265)",
                 host->config_where(host, "url"));
        return llmops_fail(err, LLMOPS_ERR_INVALID, 0, 0, m);
    }
    struct rs *s = calloc(1, sizeof *s);
    if (!s)
        return llmops_fail(err, LLMOPS_ERR_INTERNAL, 0, 0, "out of memory");
    s->host = host;
    s->import_path = host->config_string(host, "import_path", NULL);
    if (!s->import_path || !strchr(s->import_path, ':')) {
        snprintf(m, sizeof m, "%s: import_path must be module:attribute",
                 host->config_where(host, "import_path"));
        free(s);
        return llmops_fail(err, LLMOPS_ERR_INVALID, 0, 0, m);
    }
    s->deployment = host->config_string(host, "deployment_name", "LLMServer");
    s->runtime = host->config_string(host, "runtime", "default");
    s->gpu = host->config_string(host, "gpu_resource", "nvidia.com/gpu");
    s->timeout_ms = host->config_int(host, "timeout_ms", 10000);
    const char *su = host->config_string(host, "serve_url", NULL);
    if (su) {
        snprintf(s->serve_url, sizeof s->serve_url, "%s", su);
    } else {
        /* url's scheme and host, port 8000. */
        const char *h = strstr(url, "://");
        h = h ? h + 3 : url;
        size_t n = strcspn(h, ":/?#");
        snprintf(s->serve_url, sizeof s->serve_url, "http://%.*s:8000", (int)n, h);
    }
    size_t n = strlen(s->serve_url);
    while (n > 0 && s->serve_url[n - 1] == '/')
        s->serve_url[--n] = '\0';
    s->f.flags = SV_AUTOSCALING | SV_SERIALIZED_WRITES;
    s->f.metrics = metrics;
    s->f.name_max = LLMOPS_SERVING_NAME_MAX;
    *state = s;
    return 0;
}

static int rs_health(void *state, json_t **info, struct llmops_error *err)
{
    struct call c = begin(state, "health", err);
    json_t *v;
    if (request(&c, "GET", "/api/version", NULL, &v) < 0)
        return -1;
    const char *rv = sv_sget(v, "ray_version");
    if (!rv) {
        json_decref(v);
        return sv_fail_tool(
            c.err, LLMOPS_ERR_TOOL, 200, 0,
            "Ray dashboard /api/version has no ray_version (is url the dashboard?)");
    }
    int ok = c.s->host->version_in_range(rv, RS_TOOL_MIN, RS_TOOL_MAX);
    *info = json_pack("{s:s,s:b,s:s,s:s}", "tool_version", rv, "supported", ok, "supported_min",
                      RS_TOOL_MIN, "supported_max", RS_TOOL_MAX);
    json_decref(v);
    return *info ? 0 : llmops_fail(err, LLMOPS_ERR_INTERNAL, 0, 0, "out of memory");
}

static int rs_capabilities(void *state, json_t **out, struct llmops_error *err)
{
    struct rs *s = state;
    return sv_answer_capabilities(&s->f, &ops, out, err);
}

static const struct llmops_plugin descriptor = {
    SV_DESCRIPTOR("rayserve", RS_MODULE_VERSION),
    .tool_version_min = RS_TOOL_MIN,
    .tool_version_max = RS_TOOL_MAX,
    .init = rs_init,
    .health = rs_health,
    .capabilities = rs_capabilities,
};

LLMOPS_PLUGIN_DEFINE(descriptor)
