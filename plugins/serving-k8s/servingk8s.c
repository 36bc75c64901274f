/* serving-k8s — the platform's own ("custom") serving module on plain Kubernetes: per
 * deployment a Deployment (apps/v1) NAME, a Service (v1) NAME in front of it and, with
 * autoscaling, a HorizontalPodAutoscaler (autoscaling/v2) NAME on cpu or memory utilisation.
 * A canary is a second Deployment NAME-canary whose pods the same Service selects, so the
 * traffic split follows the ratio of ready replicas (feature canary_by_replicas): an exact
 * percentage is refused with UNSUPPORTED naming canary_percent, never approximated. The
 * runtime's image and port come from the instance's configuration (image, port); the model
 * reaches the container as MODEL_URI and MODEL_FORMAT. See doc/plugins/serving-k8s.md. */
#include "k8s.h"
#include "llmops-plugin.h"
#include "llmops-serving.h"
#include "sv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SK_MODULE_VERSION "1.0.0"
#define APP_LABEL "llm-ops/deployment" /* the Service selects every track of NAME */
#define TRACK_LABEL "llm-ops/track"    /* stable | canary */
#define CANARY_SUFFIX "-canary"
#define CANARY_NAME_SIZE 80

static const struct llmops_config_key keys[] = {
    K8S_CONFIG_KEYS,
    {"image", LLMOPS_CONFIG_STRING, 1, 0, 0,
     "the model server's container image (the default runtime)"},
    {"port", LLMOPS_CONFIG_INT, 0, 1, 65535, "the port the model server listens on (8080)"},
    {"runtime", LLMOPS_CONFIG_STRING, 0, 0, 0,
     "the name requests use for this image and port (default \"default\")"},
    {NULL, 0, 0, 0, 0, NULL},
};

static const char *const metrics[] = {"cpu", "memory", NULL};

struct sk {
    struct k8s k;
    const char *image, *runtime;
    int port;
    struct sv_features f;
};

enum kind { DEPLOYMENT, SERVICE, HPA };

static void path_of(struct sk *s, enum kind kind, const char *name, char *buf, size_t size)
{
    static const char *const g[] = {"apps", "", "autoscaling"}, *const v[] = {"v1", "v1", "v2"},
                             *const p[] = {"deployments", "services", "horizontalpodautoscalers"};
    k8s_path(buf, size, g[kind], v[kind], s->k.ns, p[kind], name, NULL);
}

/* NAME-canary, the canary Deployment of NAME, into buf (CANARY_NAME_SIZE bytes). */
static char *canary_name(char *buf, const char *name)
{
    snprintf(buf, CANARY_NAME_SIZE, "%s" CANARY_SUFFIX, name);
    return buf;
}

/* ------------------------------------------------------------------ objects */

static json_t *labels(const char *name, const char *key, const char *track)
{
    json_t *l = json_pack("{s:s,s:s}", K8S_MANAGED_KEY, K8S_MANAGED_VALUE, APP_LABEL, name);
    if (key)
        json_object_set_new(l, LLMOPS_SERVING_KEY_LABEL, json_string(key));
    if (track)
        json_object_set_new(l, TRACK_LABEL, json_string(track));
    return l;
}

/* The container from the members of `in`, over `base` (the stable container, or NULL). */
static json_t *container(struct sk *s, json_t *in, json_t *base)
{
    json_t *c = base ? json_deep_copy(base)
                     : json_pack("{s:s,s:s,s:[{s:i,s:s}]}", "name", "main", "image", s->image,
                                 "ports", "containerPort", s->port, "name", "http");
    if (sv_sget(in, "image"))
        json_object_set_new(c, "image", json_string(sv_sget(in, "image")));
    if (json_object_get(in, "args"))
        json_object_set(c, "args", json_object_get(in, "args"));
    json_t *m = json_object_get(in, "model"), *env = json_object_get(in, "env");
    if (m || env) {
        /* env as a list: MODEL_URI, MODEL_FORMAT first, then the request's. */
        json_t *old = json_object_get(c, "env"), *list = json_array(), *v;
        size_t i;
        const char *uri = m ? sv_sget(m, "uri") : NULL, *fmt = m ? sv_sget(m, "format") : NULL;
        json_array_foreach(old, i, v)
        {
            const char *n = sv_sget(v, "name");
            if (n && !strcmp(n, "MODEL_URI") && !uri)
                uri = sv_sget(v, "value");
            if (n && !strcmp(n, "MODEL_FORMAT") && !fmt)
                fmt = sv_sget(v, "value");
        }
        json_array_append_new(list,
                              json_pack("{s:s,s:s}", "name", "MODEL_URI", "value", uri ? uri : ""));
        json_array_append_new(
            list, json_pack("{s:s,s:s}", "name", "MODEL_FORMAT", "value", fmt ? fmt : ""));
        if (env) {
            const char *k;
            json_object_foreach(env, k, v)
                json_array_append_new(list, json_pack("{s:s,s:O}", "name", k, "value", v));
        } else {
            json_array_foreach(old, i, v)
            {
                const char *n = sv_sget(v, "name");
                if (n && strcmp(n, "MODEL_URI") && strcmp(n, "MODEL_FORMAT"))
                    json_array_append(list, v);
            }
        }
        json_object_set_new(c, "env", list);
    }
    json_t *res = sv_resources(json_object_get(in, "resources"));
    if (res)
        json_object_set_new(c, "resources", res);
    return c;
}

static json_t *deployment_obj(const char *name, const char *app, const char *key, const char *track,
                              json_int_t replicas, json_t *pod_spec)
{
    return json_pack("{s:s,s:s,s:{s:s,s:o},s:{s:I,s:{s:{s:s,s:s}},s:{s:{s:{s:s,s:s}},s:o}}}",
                     "apiVersion", "apps/v1", "kind", "Deployment", "metadata", "name", name,
                     "labels", labels(app, key, track), "spec", "replicas", replicas, "selector",
                     "matchLabels", APP_LABEL, app, TRACK_LABEL, track, "template", "metadata",
                     "labels", APP_LABEL, app, TRACK_LABEL, track, "spec", pod_spec);
}

static json_t *hpa_obj(const char *name, const char *key, json_t *rep, json_t *as)
{
    return json_pack(
        "{s:s,s:s,s:{s:s,s:o},s:{s:{s:s,s:s,s:s},s:I,s:I,s:[{s:s,s:{s:s,s:{s:s,s:O}}}]}}",
        "apiVersion", "autoscaling/v2", "kind", "HorizontalPodAutoscaler", "metadata", "name", name,
        "labels", labels(name, key, NULL), "spec", "scaleTargetRef", "apiVersion", "apps/v1",
        "kind", "Deployment", "name", name, "minReplicas",
        json_integer_value(json_object_get(rep, "min")), "maxReplicas",
        json_integer_value(json_object_get(rep, "max")), "metrics", "type", "Resource", "resource",
        "name", sv_sget(as, "metric"), "target", "type", "Utilization", "averageUtilization",
        json_object_get(as, "target"));
}

/* ------------------------------------------------------------------ reading */

static json_t *main_container(json_t *dep)
{
    json_t *cs = json_object_get(
        json_object_get(json_object_get(json_object_get(dep, "spec"), "template"), "spec"),
        "containers");
    return json_array_get(cs, 0);
}

static json_int_t ready_of(json_t *dep)
{
    json_t *r = json_object_get(json_object_get(dep, "status"), "readyReplicas");
    return json_is_integer(r) ? json_integer_value(r) : 0;
}

static const char *state_of(json_t *dep, json_int_t min, const char **reason, const char **message)
{
    const char *pending = k8s_generation_state(dep, reason, message);
    if (pending)
        return pending;
    json_t *st = json_object_get(dep, "status");
    json_t *avail = k8s_cond(st, "Available"), *prog = k8s_cond(st, "Progressing");
    if (sv_sget(avail, "status") && !strcmp(sv_sget(avail, "status"), "True") &&
        ready_of(dep) >= min && ready_of(dep) >= 1)
        return "ready";
    if (sv_sget(prog, "status") && !strcmp(sv_sget(prog, "status"), "False")) {
        *reason = sv_sget(prog, "reason");
        *message = sv_sget(prog, "message");
        return "failed";
    }
    *reason = sv_sget(avail, "reason");
    *message = sv_sget(avail, "message");
    return "progressing";
}

/* Spec members from a container (model, image, args, env, resources). */
static void spec_members(json_t *o, json_t *c, json_t *pod)
{
    json_t *env = json_object_get(c, "env"), *e = json_object(), *v;
    size_t i;
    const char *uri = "", *fmt = "";
    json_array_foreach(env, i, v)
    {
        const char *n = sv_sget(v, "name"), *val = sv_sget(v, "value");
        if (!n)
            continue;
        if (!strcmp(n, "MODEL_URI"))
            uri = val ? val : "";
        else if (!strcmp(n, "MODEL_FORMAT"))
            fmt = val ? val : "";
        else
            json_object_set_new(e, n, json_string(val ? val : ""));
    }
    json_object_set_new(o, "model", json_pack("{s:s,s:s}", "uri", uri, "format", fmt));
    if (sv_sget(c, "image"))
        json_object_set_new(o, "image", json_string(sv_sget(c, "image")));
    if (json_is_array(json_object_get(c, "args")))
        json_object_set(o, "args", json_object_get(c, "args"));
    json_object_set_new(o, "env", e);
    json_t *lim = json_object_get(json_object_get(c, "resources"), "limits");
    if (json_is_object(lim) && pod)
        json_object_set_new(o, "resources", sv_resources_of(lim, pod, 0));
}

/* A Deployment object of llmops-serving.h from the stable Deployment, its HPA and canary
 * (either may be NULL). */
static json_t *answer_of(struct sk *s, json_t *dep, json_t *hpa, json_t *canary)
{
    json_t *md = json_object_get(dep, "metadata");
    const char *name = sv_sget(md, "name");
    json_t *pod =
        json_object_get(json_object_get(json_object_get(dep, "spec"), "template"), "spec");
    json_t *o = json_pack("{s:s,s:s,s:s}", "name", name ? name : "", "external_id",
                          name ? name : "", "runtime", s->runtime);
    spec_members(o, main_container(dep), pod);
    json_t *replicas = json_object_get(json_object_get(dep, "spec"), "replicas");
    json_int_t min, max;
    if (hpa) {
        json_t *hs = json_object_get(hpa, "spec");
        min = json_integer_value(json_object_get(hs, "minReplicas"));
        max = json_integer_value(json_object_get(hs, "maxReplicas"));
        json_t *m = json_array_get(json_object_get(hs, "metrics"), 0);
        json_t *res = json_object_get(m, "resource");
        json_object_set_new(
            o, "autoscaling",
            json_pack("{s:s,s:O}", "metric", sv_sget(res, "name") ? sv_sget(res, "name") : "",
                      "target",
                      json_object_get(json_object_get(res, "target"), "averageUtilization")));
    } else {
        min = max = json_is_integer(replicas) ? json_integer_value(replicas) : 1;
    }
    json_object_set_new(o, "replicas", json_pack("{s:I,s:I}", "min", min, "max", max));
    const char *reason, *message;
    const char *state = state_of(dep, min, &reason, &message);
    json_object_set_new(o, "state", json_string(state));
    sv_put_str(o, "reason", reason, 60);
    sv_put_str(o, "message", message, 300);
    json_int_t ready = ready_of(dep);
    json_object_set_new(o, "ready_replicas", json_integer(ready));
    char url[300];
    snprintf(url, sizeof url, "http://%s.%s.svc", name ? name : "", s->k.ns);
    json_object_set_new(o, "url", json_string(url));
    long long created = sv_rfc3339_ms(sv_sget(md, "creationTimestamp"));
    if (created >= 0)
        json_object_set_new(o, "created_ms", json_integer(created));
    json_t *traffic = json_object();
    if (canary) {
        json_t *c = json_object(), *cs = json_object_get(canary, "spec");
        spec_members(c, main_container(canary), NULL);
        json_object_del(c, "resources");
        json_int_t creps = json_integer_value(json_object_get(cs, "replicas"));
        json_int_t cready = ready_of(canary);
        const char *cr, *cm;
        const char *cst = state_of(canary, 0, &cr, &cm);
        if (creps == 0 && !strcmp(cst, "progressing") &&
            json_is_integer(
                json_object_get(json_object_get(canary, "status"), "observedGeneration")))
            cst = "ready"; /* scaled to 0 replicas on purpose: nothing to wait for */
        json_object_set_new(c, "state", json_string(cst));
        sv_put_str(c, "reason", cr, 60);
        sv_put_str(c, "message", cm, 300);
        json_object_set_new(c, "ready_replicas", json_integer(cready));
        json_object_set_new(c, "replicas", json_integer(creps));
        json_object_set_new(o, "canary", c);
        /* The split the Service makes: by ready pods; by desired ones before any is ready. */
        json_int_t a = ready, b = cready;
        if (a + b == 0) {
            a = json_is_integer(replicas) ? json_integer_value(replicas) : max;
            b = creps;
        }
        json_int_t pct = a + b ? (100 * b + (a + b) / 2) / (a + b) : 0;
        json_object_set_new(traffic, "stable",
                            json_pack("{s:I,s:s}", "percent", 100 - pct, "revision", name));
        json_object_set_new(traffic, "canary",
                            json_pack("{s:I,s:s}", "percent", pct, "revision",
                                      sv_sget(json_object_get(canary, "metadata"), "name")));
    } else {
        json_object_set_new(traffic, "stable",
                            json_pack("{s:i,s:s}", "percent", 100, "revision", name ? name : ""));
    }
    json_object_set_new(o, "traffic", traffic);
    json_t *tool = json_object();
    if (json_object_get(json_object_get(dep, "status"), "conditions"))
        json_object_set(tool, "conditions",
                        json_object_get(json_object_get(dep, "status"), "conditions"));
    json_object_set_new(o, "tool", tool);
    return o;
}

/* ------------------------------------------------------------------ lookups */

/* GET kind/name: 0; 1 when absent; -1 on another error. */
static int get_opt(struct sk *s, struct k8s_call *c, enum kind kind, const char *name, json_t **obj)
{
    char path[512];
    *obj = NULL;
    path_of(s, kind, name, path, sizeof path);
    if (k8s_get(c, path, obj) == 0)
        return 0;
    return c->err->code == LLMOPS_ERR_NOT_FOUND ? 1 : -1;
}

/* The stable Deployment by external_id: 0, or -1 (NOT_FOUND also when not the platform's). */
static int get_stable(struct sk *s, struct k8s_call *c, const char *name, json_t **dep)
{
    if (!name || strlen(name) > LLMOPS_SERVING_NAME_MAX)
        return k8s_failf(c, LLMOPS_ERR_NOT_FOUND, 0, 0, "no deployment with this external_id");
    int rc = get_opt(s, c, DEPLOYMENT, name, dep);
    if (rc < 0)
        return -1;
    if (rc == 1)
        return k8s_failf(c, LLMOPS_ERR_NOT_FOUND, 404, 0, "no Deployment %s", name);
    if (!k8s_ours(*dep)) {
        json_decref(*dep);
        *dep = NULL;
        return k8s_failf(c, LLMOPS_ERR_NOT_FOUND, 0, 0,
                         "Deployment %s was not made by llm-ops (no label %s=%s)", name,
                         K8S_MANAGED_KEY, K8S_MANAGED_VALUE);
    }
    return 0;
}

/* The answer for the stable Deployment dep (consumed): its HPA and canary read too. */
static int full_answer(struct sk *s, struct k8s_call *c, json_t *dep, json_t **out)
{
    const char *name = sv_sget(json_object_get(dep, "metadata"), "name");
    char cname[CANARY_NAME_SIZE];
    canary_name(cname, name);
    json_t *hpa = NULL, *canary = NULL;
    if (get_opt(s, c, HPA, name, &hpa) < 0 || get_opt(s, c, DEPLOYMENT, cname, &canary) < 0) {
        json_decref(dep);
        json_decref(hpa);
        return -1;
    }
    *out = answer_of(s, dep, hpa, canary);
    json_decref(dep);
    json_decref(hpa);
    json_decref(canary);
    return 0;
}

/* full_answer for the stable Deployment of NAME, read again. */
static int stable_answer(struct sk *s, struct k8s_call *c, const char *name, json_t **out)
{
    json_t *dep;
    if (get_stable(s, c, name, &dep) < 0)
        return -1;
    return full_answer(s, c, dep, out);
}

static int find_key(struct sk *s, struct k8s_call *c, const char *key, json_t **dep)
{
    char coll[300], sel[200];
    *dep = NULL;
    path_of(s, DEPLOYMENT, NULL, coll, sizeof coll);
    snprintf(sel, sizeof sel, "%s=%s,%s=%s,%s=stable", K8S_MANAGED_KEY, K8S_MANAGED_VALUE,
             LLMOPS_SERVING_KEY_LABEL, key, TRACK_LABEL);
    json_t *list;
    if (k8s_list(c, coll, sel, 2, NULL, &list) < 0)
        return -1;
    json_t *first = json_array_get(json_object_get(list, "items"), 0);
    if (first)
        *dep = json_incref(first);
    json_decref(list);
    return first ? 0 : 1;
}

/* Creates obj unless an object of that name exists already carrying `key` (a resumed
 * deploy): 0 created, 1 there already, -1 (CONFLICT when it is someone else's). */
static int create_or_find(struct sk *s, struct k8s_call *c, enum kind kind, json_t *obj,
                          const char *key)
{
    char coll[300];
    path_of(s, kind, NULL, coll, sizeof coll);
    json_t *made;
    if (k8s_create(c, coll, obj, 0, &made) == 0) {
        json_decref(made);
        return 0;
    }
    if (c->err->code != LLMOPS_ERR_CONFLICT || strcmp(c->reason, "AlreadyExists"))
        return -1;
    const char *name = sv_sget(json_object_get(obj, "metadata"), "name");
    json_t *there;
    struct llmops_error keep = *c->err;
    if (get_opt(s, c, kind, name, &there) == 0) {
        const char *k = sv_sget(json_object_get(json_object_get(there, "metadata"), "labels"),
                                LLMOPS_SERVING_KEY_LABEL);
        int mine = k && !strcmp(k, key);
        json_decref(there);
        if (mine)
            return 1;
    }
    *c->err = keep;
    return k8s_failf(c, LLMOPS_ERR_CONFLICT, 409, 0,
                     "%s %s exists and was not made with this idempotency key",
                     kind == DEPLOYMENT ? "Deployment"
                     : kind == SERVICE  ? "Service"
                                        : "HPA",
                     name);
}

/* ------------------------------------------------------------------ ops */

static int check_runtime(struct sk *s, struct k8s_call *c, json_t *in)
{
    const char *rt = sv_sget(in, "runtime");
    if (rt && strcmp(rt, s->runtime)) {
        char q[80];
        return k8s_failf(c, LLMOPS_ERR_INVALID, 0, 0,
                         "runtime \"%s\" is not known to this instance (its runtime is \"%s\")",
                         llmops_quote(q, sizeof q, rt, 60), s->runtime);
    }
    return 0;
}

static int deploy(void *state, json_t *in, json_t **out, struct llmops_error *err)
{
    struct sk *s = state;
    struct k8s_call c = k8s_begin(&s->k, "deploy", err);
    const char *key = sv_sget(in, "idempotency_key");
    if (sv_check_spec(in, &s->f, 0, err) < 0 || check_runtime(s, &c, in) < 0)
        return -1;
    const char *name = sv_sget(in, "name");
    json_t *dep;
    int rc = find_key(s, &c, key, &dep);
    if (rc < 0)
        return -1;
    int created = rc == 1;
    json_decref(dep);
    json_t *rep = json_object_get(in, "replicas"), *as = json_object_get(in, "autoscaling");
    json_t *pod = json_pack("{s:[o]}", "containers", container(s, in, NULL));
    json_t *ns =
        json_object_get(json_object_get(json_object_get(in, "resources"), "gpu"), "node_selector");
    if (ns && json_object_size(ns))
        json_object_set(pod, "nodeSelector", ns);
    json_int_t min = json_integer_value(json_object_get(rep, "min"));
    json_int_t max = json_integer_value(json_object_get(rep, "max"));
    json_t *d = deployment_obj(name, name, key, "stable", json_is_object(as) ? min : max, pod);
    json_t *svc = json_pack("{s:s,s:s,s:{s:s,s:o},s:{s:{s:s},s:[{s:s,s:i,s:s}]}}", "apiVersion",
                            "v1", "kind", "Service", "metadata", "name", name, "labels",
                            labels(name, key, NULL), "spec", "selector", APP_LABEL, name, "ports",
                            "name", "http", "port", 80, "targetPort", "http");
    json_t *hpa = json_is_object(as) ? hpa_obj(name, key, rep, as) : NULL;
    if (!d || !svc || (json_is_object(as) && !hpa)) {
        json_decref(d), json_decref(svc), json_decref(hpa);
        return k8s_oom(&c);
    }
    /* Each object is created, or found made with this key by an earlier try: a deploy
     * retried after a lost answer completes what it began and makes nothing twice. */
    rc = create_or_find(s, &c, DEPLOYMENT, d, key);
    if (rc >= 0)
        rc = create_or_find(s, &c, SERVICE, svc, key) < 0 ? -1 : rc;
    if (rc >= 0 && hpa)
        rc = create_or_find(s, &c, HPA, hpa, key) < 0 ? -1 : rc;
    json_decref(d), json_decref(svc), json_decref(hpa);
    if (rc < 0)
        return -1;
    if (stable_answer(s, &c, name, out) < 0)
        return -1;
    json_object_set_new(*out, "created", json_boolean(created && rc == 0));
    return 0;
}

static int get_deployment(void *state, json_t *in, json_t **out, struct llmops_error *err)
{
    struct sk *s = state;
    struct k8s_call c = k8s_begin(&s->k, "get_deployment", err);
    json_t *dep;
    if (get_stable(s, &c, sv_sget(in, "external_id"), &dep) < 0)
        return -1;
    return full_answer(s, &c, dep, out);
}

static int list_deployments(void *state, json_t *in, json_t **out, struct llmops_error *err)
{
    struct sk *s = state;
    struct k8s_call c = k8s_begin(&s->k, "list_deployments", err);
    char coll[300];
    path_of(s, DEPLOYMENT, NULL, coll, sizeof coll);
    json_t *list, *items, *arr, *it;
    const char *next;
    if (k8s_list_page(&c, coll, LLMOPS_SERVING_MANAGED_LABEL "," TRACK_LABEL "=stable", in, &list,
                      &items, &next) < 0)
        return -1;
    arr = json_array();
    size_t i;
    json_array_foreach(items, i, it)
    {
        json_t *one;
        if (full_answer(s, &c, json_incref(it), &one) < 0) {
            json_decref(arr);
            json_decref(list);
            return -1;
        }
        json_array_append_new(arr, one);
    }
    *out = json_pack("{s:o}", "deployments", arr);
    if (next && strlen(next) <= 2048)
        json_object_set_new(*out, "next_page_token", json_string(next));
    json_decref(list);
    return 0;
}

static int patch(struct sk *s, struct k8s_call *c, enum kind kind, const char *name, json_t *p)
{
    char path[512];
    path_of(s, kind, name, path, sizeof path);
    json_t *o;
    int rc = k8s_patch(c, path, p, 0, &o);
    json_decref(p);
    json_decref(o);
    return rc;
}

static int update_deployment(void *state, json_t *in, json_t **out, struct llmops_error *err)
{
    struct sk *s = state;
    struct k8s_call c = k8s_begin(&s->k, "update_deployment", err);
    if (sv_check_spec(in, &s->f, 1, err) < 0 || check_runtime(s, &c, in) < 0)
        return -1;
    const char *name = sv_sget(in, "external_id");
    json_t *dep, *hpa;
    if (get_stable(s, &c, name, &dep) < 0)
        return -1;
    int rc = get_opt(s, &c, HPA, name, &hpa);
    if (rc < 0) {
        json_decref(dep);
        return -1;
    }
    json_t *rep = json_object_get(in, "replicas"), *as = json_object_get(in, "autoscaling");
    json_t *hs = json_object_get(hpa, "spec");
    json_t *cur = json_object_get(json_object_get(dep, "spec"), "replicas");
    json_int_t min = rep   ? json_integer_value(json_object_get(rep, "min"))
                     : hpa ? json_integer_value(json_object_get(hs, "minReplicas"))
                           : json_integer_value(cur);
    json_int_t max = rep   ? json_integer_value(json_object_get(rep, "max"))
                     : hpa ? json_integer_value(json_object_get(hs, "maxReplicas"))
                           : json_integer_value(cur);
    int autoscale = as ? json_is_object(as) : hpa != NULL;
    if (autoscale && min >= max) {
        json_decref(dep), json_decref(hpa);
        return k8s_failf(&c, LLMOPS_ERR_INVALID, 0, 0,
                         "autoscaling needs replicas.min < replicas.max (give both)");
    }
    if (!autoscale && min < max) {
        json_decref(dep), json_decref(hpa);
        return k8s_failf(&c, LLMOPS_ERR_INVALID, 0, 0,
                         "replicas.min < replicas.max needs autoscaling {metric, target}");
    }
    json_t *pod =
        json_object_get(json_object_get(json_object_get(dep, "spec"), "template"), "spec");
    json_t *spec = json_object();
    if (json_object_get(in, "model") || json_object_get(in, "image") ||
        json_object_get(in, "args") || json_object_get(in, "env") ||
        json_object_get(in, "resources")) {
        json_t *ps = json_pack("{s:[o]}", "containers", container(s, in, main_container(dep)));
        if (json_object_get(in, "resources")) {
            json_t *ns = json_object_get(json_object_get(json_object_get(in, "resources"), "gpu"),
                                         "node_selector");
            json_object_set_new(ps, "nodeSelector",
                                ns && json_object_size(ns) ? json_incref(ns) : json_null());
        }
        json_object_set_new(spec, "template", json_pack("{s:o}", "spec", ps));
    }
    (void)pod;
    if (!autoscale && (rep || (as && hpa)))
        json_object_set_new(spec, "replicas", json_integer(max));
    const char *key = sv_sget(json_object_get(json_object_get(dep, "metadata"), "labels"),
                              LLMOPS_SERVING_KEY_LABEL);
    rc = 0;
    if (json_object_size(spec))
        rc = patch(s, &c, DEPLOYMENT, name, json_pack("{s:O}", "spec", spec));
    json_decref(spec);
    if (rc == 0 && autoscale && (rep || as)) {
        json_t *r = json_pack("{s:I,s:I}", "min", min, "max", max);
        json_t *a = json_is_object(as) ? json_incref(as) : NULL;
        if (!a) {
            json_t *m = json_array_get(json_object_get(hs, "metrics"), 0);
            json_t *res = json_object_get(m, "resource");
            a = json_pack("{s:s,s:O}", "metric",
                          sv_sget(res, "name") ? sv_sget(res, "name") : "cpu", "target",
                          json_object_get(json_object_get(res, "target"), "averageUtilization"));
        }
        json_t *h = hpa_obj(name, key ? key : "", r, a);
        if (hpa) {
            rc = patch(s, &c, HPA, name, json_pack("{s:O}", "spec", json_object_get(h, "spec")));
        } else {
            char coll[300];
            json_t *made;
            path_of(s, HPA, NULL, coll, sizeof coll);
            rc = k8s_create(&c, coll, h, 0, &made);
            json_decref(made);
        }
        json_decref(h), json_decref(r), json_decref(a);
    } else if (rc == 0 && !autoscale && hpa) {
        char path[512];
        json_t *o;
        path_of(s, HPA, name, path, sizeof path);
        rc = k8s_delete(&c, path, NULL, 0, &o);
        json_decref(o);
        if (rc < 0 && err->code == LLMOPS_ERR_NOT_FOUND)
            rc = 0;
    }
    json_decref(dep), json_decref(hpa);
    if (rc < 0)
        return -1;
    return stable_answer(s, &c, name, out);
}

/* DELETE kind/name: 1 deleted, 0 gone already, -1. */
static int delete_one(struct sk *s, struct k8s_call *c, enum kind kind, const char *name)
{
    char path[512];
    json_t *o;
    path_of(s, kind, name, path, sizeof path);
    if (k8s_delete(c, path, "Background", 0, &o) == 0) {
        json_decref(o);
        return 1;
    }
    return c->err->code == LLMOPS_ERR_NOT_FOUND ? 0 : -1;
}

static int delete_deployment(void *state, json_t *in, json_t **out, struct llmops_error *err)
{
    struct sk *s = state;
    struct k8s_call c = k8s_begin(&s->k, "delete_deployment", err);
    const char *name = sv_sget(in, "external_id");
    json_t *dep;
    if (get_stable(s, &c, name, &dep) < 0) {
        if (err->code == LLMOPS_ERR_NOT_FOUND && err->tool_status == 404) {
            *out = json_pack("{s:b}", "deleted", 0);
            return 0;
        }
        return -1;
    }
    json_decref(dep);
    char cname[CANARY_NAME_SIZE];
    canary_name(cname, name);
    if (delete_one(s, &c, HPA, name) < 0 || delete_one(s, &c, DEPLOYMENT, cname) < 0 ||
        delete_one(s, &c, SERVICE, name) < 0)
        return -1;
    int rc = delete_one(s, &c, DEPLOYMENT, name);
    if (rc < 0)
        return -1;
    *out = json_pack("{s:b}", "deleted", rc);
    return 0;
}

static int find_by_idempotency_key(void *state, json_t *in, json_t **out, struct llmops_error *err)
{
    struct sk *s = state;
    struct k8s_call c = k8s_begin(&s->k, "find_by_idempotency_key", err);
    const char *key = sv_sget(in, "idempotency_key");
    json_t *dep;
    int rc = find_key(s, &c, key, &dep);
    if (rc < 0)
        return -1;
    if (rc == 1)
        return k8s_failf(&c, LLMOPS_ERR_NOT_FOUND, 0, 0,
                         "no Deployment carries this idempotency key");
    return full_answer(s, &c, dep, out);
}

/* ------------------------------------------------------------------ canaries */

static int get_canary(struct sk *s, struct k8s_call *c, const char *name, json_t **canary)
{
    char cname[CANARY_NAME_SIZE];
    return get_opt(s, c, DEPLOYMENT, canary_name(cname, name), canary);
}

/* get_stable and get_canary of NAME: 0 with *canary, or -1 (NOT_FOUND when there is no
 * canary). */
static int need_canary(struct sk *s, struct k8s_call *c, const char *name, json_t **canary)
{
    json_t *dep;
    if (get_stable(s, c, name, &dep) < 0)
        return -1;
    json_decref(dep);
    int rc = get_canary(s, c, name, canary);
    if (rc != 0)
        return rc < 0 ? -1 : k8s_failf(c, LLMOPS_ERR_NOT_FOUND, 0, 0, "%s has no canary", name);
    return 0;
}

static int create_canary(void *state, json_t *in, json_t **out, struct llmops_error *err)
{
    struct sk *s = state;
    struct k8s_call c = k8s_begin(&s->k, "create_canary", err);
    int pct, reps;
    if (sv_check_canary(in, &s->f, err) < 0 || sv_check_split(in, &s->f, 0, &pct, &reps, err) < 0)
        return -1;
    const char *name = sv_sget(in, "external_id");
    json_t *dep, *canary;
    if (get_stable(s, &c, name, &dep) < 0)
        return -1;
    int rc = get_canary(s, &c, name, &canary);
    if (rc <= 0) {
        json_decref(dep), json_decref(canary);
        return rc < 0 ? -1
                      : k8s_failf(&c, LLMOPS_ERR_CONFLICT, 0, 0,
                                  "%s has a canary already: promote or roll it back first", name);
    }
    json_t *pod = json_deep_copy(
        json_object_get(json_object_get(json_object_get(dep, "spec"), "template"), "spec"));
    json_t *cont = container(s, in, main_container(dep));
    json_array_set_new(json_object_get(pod, "containers"), 0, cont);
    char cname[CANARY_NAME_SIZE];
    canary_name(cname, name);
    json_t *d = deployment_obj(cname, name, NULL, "canary", reps, pod);
    json_decref(dep);
    char coll[300];
    path_of(s, DEPLOYMENT, NULL, coll, sizeof coll);
    json_t *made;
    rc = k8s_create(&c, coll, d, 0, &made);
    json_decref(d);
    if (rc < 0)
        return -1;
    json_decref(made);
    return stable_answer(s, &c, name, out);
}

static int set_canary_traffic(void *state, json_t *in, json_t **out, struct llmops_error *err)
{
    struct sk *s = state;
    struct k8s_call c = k8s_begin(&s->k, "set_canary_traffic", err);
    int pct, reps;
    if (sv_check_split(in, &s->f, 1, &pct, &reps, err) < 0)
        return -1;
    const char *name = sv_sget(in, "external_id");
    json_t *canary;
    if (need_canary(s, &c, name, &canary) < 0)
        return -1;
    json_decref(canary);
    char cname[CANARY_NAME_SIZE];
    canary_name(cname, name);
    if (patch(s, &c, DEPLOYMENT, cname, json_pack("{s:{s:i}}", "spec", "replicas", reps)) < 0)
        return -1;
    return stable_answer(s, &c, name, out);
}

static int promote_canary(void *state, json_t *in, json_t **out, struct llmops_error *err)
{
    struct sk *s = state;
    struct k8s_call c = k8s_begin(&s->k, "promote_canary", err);
    const char *name = sv_sget(in, "external_id");
    json_t *canary;
    int rc = need_canary(s, &c, name, &canary);
    if (rc < 0)
        return -1;
    /* The stable Deployment takes the canary's pod spec (its own labels stay), then the
     * canary goes: the Service keeps selecting the stable pods throughout. */
    json_t *pod =
        json_object_get(json_object_get(json_object_get(canary, "spec"), "template"), "spec");
    rc = patch(s, &c, DEPLOYMENT, name,
               json_pack("{s:{s:{s:{s:O}}}}", "spec", "template", "spec", "containers",
                         json_object_get(pod, "containers")));
    json_decref(canary);
    char cname[CANARY_NAME_SIZE];
    canary_name(cname, name);
    if (rc < 0 || delete_one(s, &c, DEPLOYMENT, cname) < 0)
        return -1;
    return stable_answer(s, &c, name, out);
}

static int rollback_canary(void *state, json_t *in, json_t **out, struct llmops_error *err)
{
    struct sk *s = state;
    struct k8s_call c = k8s_begin(&s->k, "rollback_canary", err);
    const char *name = sv_sget(in, "external_id");
    json_t *dep;
    if (get_stable(s, &c, name, &dep) < 0)
        return -1;
    json_decref(dep);
    char cname[CANARY_NAME_SIZE];
    canary_name(cname, name);
    int rc = delete_one(s, &c, DEPLOYMENT, cname);
    if (rc < 0)
        return -1;
    const char *why = sv_sget(in, "reason");
    if (rc)
        s->k.host->log(s->k.host, LLMOPS_LOG_INFO, "rollback_canary %s: %s", name,
                       why ? why : "asked");
    if (stable_answer(s, &c, name, out) < 0)
        return -1;
    json_object_set_new(*out, "rolled_back", json_boolean(rc));
    return 0;
}

/* ------------------------------------------------------------------ the descriptor */

static const struct llmops_serving_ops ops =
    SV_SERVING_OPS(create_canary, set_canary_traffic, promote_canary, rollback_canary);

static int sk_init(const struct llmops_host *host, void **state, struct llmops_error *err)
{
    struct sk *s = calloc(1, sizeof *s);
    if (!s)
        return llmops_fail(err, LLMOPS_ERR_INTERNAL, 0, 0, "out of memory");
    if (k8s_init(&s->k, host, err) < 0) {
        free(s);
        return -1;
    }
    s->image = host->config_string(host, "image", NULL);
    if (!s->image || !*s->image) {
        char m[300];
        snprintf(m, sizeof m, "%s: serving-k8s needs image (the model server's container image)",
                 host->config_where(host, "image"));
        free(s);
        return llmops_fail(err, LLMOPS_ERR_INVALID, 0, 0, m);
    }
    s->runtime = host->config_string(host, "runtime", "default");
    s->port = (int)host->config_int(host, "port", 8080);
    s->f.flags = SV_AUTOSCALING | SV_IMAGE | SV_NODE_SELECTOR | SV_CANARY | SV_CANARY_BY_REPLICAS;
    s->f.metrics = metrics;
    s->f.name_max = LLMOPS_SERVING_NAME_MAX - (int)(sizeof CANARY_SUFFIX - 1);
    *state = s;
    return 0;
}

static int sk_health(void *state, json_t **info, struct llmops_error *err)
{
    struct sk *s = state;
    struct k8s_call c = k8s_begin(&s->k, "health", err);
    char version[64];
    if (k8s_version(&c, version, sizeof version) < 0)
        return -1;
    if (k8s_discover(&c, "apps", "v1", "deployments") < 0 ||
        k8s_discover(&c, "autoscaling", "v2", "horizontalpodautoscalers") < 0)
        return -1;
    *info = json_pack("{s:s,s:s}", "tool_version", version, "namespace", s->k.ns);
    return *info ? 0 : llmops_fail(err, LLMOPS_ERR_INTERNAL, 0, 0, "out of memory");
}

static int sk_capabilities(void *state, json_t **out, struct llmops_error *err)
{
    struct sk *s = state;
    return sv_answer_capabilities(&s->f, &ops, out, err);
}

static const struct llmops_plugin descriptor = {
    SV_DESCRIPTOR("serving-k8s", SK_MODULE_VERSION),
    .init = sk_init,
    .health = sk_health,
    .capabilities = sk_capabilities,
};

LLMOPS_PLUGIN_DEFINE(descriptor)
