/* kserve — the serving module for KServe: one InferenceService (serving.kserve.io/v1beta1)
 * per deployment in the instance's namespace, in the instance's deployment mode (Serverless or
 * RawDeployment, config key deployment_mode). Autoscaling as minReplicas, maxReplicas,
 * scaleMetric and scaleTarget; GPUs as resource limits and requests plus a node selector.
 * Canaries: Serverless with canaryTrafficPercent (the spec before the canary kept in the
 * annotation llm-ops/stable-predictor, rolled back to, so that previousRolledoutRevision
 * serves), RawDeployment with spec.canary[] ({predictor, trafficPercent}, as the CRD in
 * contracts/crds defines it). State from conditions and modelStatus. Every write to the
 * custom resource goes as dryRun=All first, so a field the cluster's CRD would prune is
 * refused (UNSUPPORTED naming it) before anything is stored. See doc/plugins/kserve.md. */
#include "k8s.h"
#include "llmops-plugin.h"
#include "llmops-serving.h"
#include "sv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KSERVE_MODULE_VERSION "1.0.0"
#define GROUP "serving.kserve.io"
#define VERSION "v1beta1"
#define PLURAL "inferenceservices"
#define MODE_ANNOTATION "serving.kserve.io/deploymentMode"
#define STABLE_ANNOTATION "llm-ops/stable-predictor"

static const struct llmops_config_key keys[] = {
    K8S_CONFIG_KEYS,
    {"deployment_mode", LLMOPS_CONFIG_STRING, 0, 0, 0,
     "Serverless (Knative, the default) or RawDeployment"},
    {NULL, 0, 0, 0, 0, NULL},
};

static const char *const metrics[] = {"cpu", "memory", "concurrency", "rps", NULL};

struct kserve {
    struct k8s k;
    int raw; /* RawDeployment */
    struct sv_features f;
};

static int item_path(struct kserve *s, const char *name, char *buf, size_t size)
{
    return k8s_path(buf, size, GROUP, VERSION, s->k.ns, PLURAL, name, NULL);
}

/* ------------------------------------------------------------------ spec -> predictor */

/* The model part of a predictor from the members of `in` (deploy, update or canary). */
static void model_members(json_t *model, json_t *in)
{
    json_t *m = json_object_get(in, "model");
    if (m) {
        json_t *fmt = json_pack("{s:s}", "name", sv_sget(m, "format"));
        if (sv_sget(m, "format_version"))
            json_object_set_new(fmt, "version", json_string(sv_sget(m, "format_version")));
        json_object_set_new(model, "modelFormat", fmt);
        json_object_set_new(model, "storageUri", json_string(sv_sget(m, "uri")));
    }
    if (json_object_get(in, "runtime"))
        json_object_set(model, "runtime", json_object_get(in, "runtime"));
    if (json_object_get(in, "image"))
        json_object_set(model, "image", json_object_get(in, "image"));
    if (json_object_get(in, "args"))
        json_object_set(model, "args", json_object_get(in, "args"));
    json_t *env = json_object_get(in, "env");
    if (env) {
        json_t *list = json_array(), *v;
        const char *k;
        json_object_foreach(env, k, v)
            json_array_append_new(list, json_pack("{s:s,s:O}", "name", k, "value", v));
        json_object_set_new(model, "env", list);
    }
    json_t *res = sv_resources(json_object_get(in, "resources"));
    if (res)
        json_object_set_new(model, "resources", res);
}

/* The predictor members (besides model) from `in`: replicas, autoscaling, node selector. */
static void predictor_members(json_t *pred, json_t *in, int is_update)
{
    json_t *rep = json_object_get(in, "replicas"), *as = json_object_get(in, "autoscaling");
    if (rep) {
        json_int_t min = json_integer_value(json_object_get(rep, "min"));
        json_int_t max = json_integer_value(json_object_get(rep, "max"));
        json_object_set_new(pred, "minReplicas", json_integer(min));
        json_object_set_new(pred, "maxReplicas", json_integer(max));
    }
    if (json_is_object(as)) {
        json_object_set(pred, "scaleMetric", json_object_get(as, "metric"));
        json_object_set(pred, "scaleTarget", json_object_get(as, "target"));
    } else if (as && is_update) {
        json_object_set_new(pred, "scaleMetric", json_null());
        json_object_set_new(pred, "scaleTarget", json_null());
    }
    json_t *gpu = json_object_get(json_object_get(in, "resources"), "gpu");
    json_t *ns = json_object_get(gpu, "node_selector");
    if (ns && json_object_size(ns))
        json_object_set(pred, "nodeSelector", ns);
    else if (is_update && json_object_get(in, "resources"))
        json_object_set_new(pred, "nodeSelector", json_null());
}

/* ------------------------------------------------------------------ InferenceService -> Deployment
 */

/* The spec as the Spec object of llmops-serving.h. */
static json_t *spec_of(const char *name, json_t *pred)
{
    json_t *model = json_object_get(pred, "model");
    json_t *o = json_pack("{s:s}", "name", name);
    json_t *fmt = json_object_get(model, "modelFormat");
    json_t *m = json_pack("{s:s,s:s}", "uri",
                          sv_sget(model, "storageUri") ? sv_sget(model, "storageUri") : "",
                          "format", sv_sget(fmt, "name") ? sv_sget(fmt, "name") : "");
    if (sv_sget(fmt, "version"))
        json_object_set_new(m, "format_version", json_string(sv_sget(fmt, "version")));
    json_object_set_new(o, "model", m);
    if (sv_sget(model, "runtime"))
        json_object_set_new(o, "runtime", json_string(sv_sget(model, "runtime")));
    if (sv_sget(model, "image"))
        json_object_set_new(o, "image", json_string(sv_sget(model, "image")));
    if (json_is_array(json_object_get(model, "args")))
        json_object_set(o, "args", json_object_get(model, "args"));
    json_t *env = json_object_get(model, "env");
    if (json_is_array(env)) {
        json_t *e = json_object(), *v;
        size_t i;
        json_array_foreach(env, i, v) if (sv_sget(v, "name")) json_object_set_new(
            e, sv_sget(v, "name"), json_string(sv_sget(v, "value") ? sv_sget(v, "value") : ""));
        json_object_set_new(o, "env", e);
    }
    json_t *lim = json_object_get(json_object_get(model, "resources"), "limits");
    if (json_is_object(lim))
        json_object_set_new(o, "resources", sv_resources_of(lim, pred, 1));
    json_t *min = json_object_get(pred, "minReplicas"), *max = json_object_get(pred, "maxReplicas");
    json_int_t mn = json_is_integer(min) ? json_integer_value(min) : 1;
    json_int_t mx = json_is_integer(max) ? json_integer_value(max) : mn;
    json_object_set_new(o, "replicas", json_pack("{s:I,s:I}", "min", mn, "max", mx));
    if (sv_sget(pred, "scaleMetric") && json_is_integer(json_object_get(pred, "scaleTarget")))
        json_object_set_new(o, "autoscaling",
                            json_pack("{s:s,s:O}", "metric", sv_sget(pred, "scaleMetric"), "target",
                                      json_object_get(pred, "scaleTarget")));
    return o;
}

/* state, reason, message from the status (of the current generation). */
static const char *state_of(json_t *obj, const char **reason, const char **message)
{
    const char *pending = k8s_generation_state(obj, reason, message);
    if (pending)
        return pending;
    json_t *st = json_object_get(obj, "status");
    json_t *ready = k8s_cond(st, "Ready");
    const char *rs = sv_sget(ready, "status");
    if (rs && strcmp(rs, "True") == 0)
        return "ready";
    *reason = sv_sget(ready, "reason");
    *message = sv_sget(ready, "message");
    json_t *ms = json_object_get(st, "modelStatus");
    const char *ts = sv_sget(ms, "transitionStatus");
    json_t *fail = json_object_get(ms, "lastFailureInfo");
    if (ts && (!strcmp(ts, "BlockedByFailedLoad") || !strcmp(ts, "InvalidSpec"))) {
        if (sv_sget(fail, "reason"))
            *reason = sv_sget(fail, "reason");
        if (sv_sget(fail, "message"))
            *message = sv_sget(fail, "message");
        if (!*reason)
            *reason = ts;
        return "failed";
    }
    if (rs && strcmp(rs, "False") == 0 && *reason && strcmp(*reason, "RevisionFailed") == 0)
        return "failed";
    return "progressing";
}

static json_t *deployment_of(struct kserve *s, json_t *obj)
{
    json_t *md = json_object_get(obj, "metadata"), *st = json_object_get(obj, "status");
    json_t *spec = json_object_get(obj, "spec"), *pred = json_object_get(spec, "predictor");
    const char *name = sv_sget(md, "name");
    json_t *ann = json_object_get(md, "annotations");
    int raw =
        sv_sget(ann, MODE_ANNOTATION) && !strcmp(sv_sget(ann, MODE_ANNOTATION), "RawDeployment");
    json_t *canary_spec = json_array_get(json_object_get(spec, "canary"), 0);
    const char *stable_json = sv_sget(ann, STABLE_ANNOTATION);
    int has_canary =
        raw ? canary_spec != NULL
            : (stable_json && json_is_integer(json_object_get(pred, "canaryTrafficPercent")));
    json_t *stable_pred = NULL;
    if (!raw && has_canary)
        stable_pred = json_loads(stable_json, 0, NULL);
    json_t *o = spec_of(name ? name : "", json_is_object(stable_pred) ? stable_pred : pred);
    json_object_set_new(o, "external_id", json_string(name ? name : ""));
    const char *reason, *message;
    const char *state = state_of(obj, &reason, &message);
    json_t *comp = json_object_get(json_object_get(st, "components"), "predictor");
    json_t *traffic = json_object(), *stable = json_object();
    json_object_set_new(traffic, "stable", stable);
    if (!has_canary) {
        json_object_set_new(stable, "percent", json_integer(100));
        const char *rev = sv_sget(comp, "latestRolledoutRevision")
                              ? sv_sget(comp, "latestRolledoutRevision")
                              : sv_sget(comp, "latestReadyRevision");
        if (rev)
            json_object_set_new(stable, "revision", json_string(rev));
    } else {
        json_int_t pct = raw ? json_integer_value(json_object_get(canary_spec, "trafficPercent"))
                             : json_integer_value(json_object_get(pred, "canaryTrafficPercent"));
        json_t *tr, *cobj = json_object();
        size_t i;
        json_t *c = json_pack("{s:I}", "percent", pct);
        json_object_set_new(stable, "percent", json_integer(100 - pct));
        /* The tool's split once it has observed this spec; the spec's until then. */
        json_t *gen = json_object_get(md, "generation");
        json_t *seen = json_object_get(st, "observedGeneration");
        const char *rs = sv_sget(k8s_cond(st, "Ready"), "status");
        json_t *split =
            json_integer_value(gen) == json_integer_value(seen) && rs && !strcmp(rs, "True")
                ? json_object_get(comp, "traffic")
                : NULL;
        json_array_foreach(split, i, tr)
        {
            json_t *latest = json_object_get(tr, "latestRevision");
            json_t *target = json_is_true(latest) ? c : stable;
            if (sv_sget(tr, "revisionName"))
                json_object_set_new(target, "revision", json_string(sv_sget(tr, "revisionName")));
            if (json_is_integer(json_object_get(tr, "percent")))
                json_object_set(target, "percent", json_object_get(tr, "percent"));
        }
        json_object_set_new(traffic, "canary", c);
        /* The candidate: the canary's spec, the state of the latest revision. */
        json_t *cs =
            spec_of(name ? name : "", raw ? json_object_get(canary_spec, "predictor") : pred);
        json_object_set(cobj, "model", json_object_get(cs, "model"));
        const char *ks[] = {"image", "args", "env"};
        for (int k = 0; k < 3; k++)
            if (json_object_get(cs, ks[k]))
                json_object_set(cobj, ks[k], json_object_get(cs, ks[k]));
        json_decref(cs);
        json_object_set_new(cobj, "state", json_string(state));
        sv_put_str(cobj, "reason", reason, 60);
        sv_put_str(cobj, "message", message, 300);
        json_object_set_new(cobj, "ready_replicas", json_integer(!strcmp(state, "ready")));
        json_object_set_new(o, "canary", cobj);
        /* The stable revision keeps serving whatever the candidate does. */
        if (sv_sget(comp, "previousRolledoutRevision") || raw || sv_sget(st, "url")) {
            state = "ready";
            reason = message = NULL;
        }
    }
    json_decref(stable_pred);
    json_object_set_new(o, "traffic", traffic);
    json_object_set_new(o, "state", json_string(state));
    sv_put_str(o, "reason", reason, 60);
    sv_put_str(o, "message", message, 300);
    if (sv_sget(st, "url"))
        json_object_set_new(o, "url", json_string(sv_sget(st, "url")));
    json_t *copies = json_object_get(json_object_get(st, "modelStatus"), "copies");
    json_int_t ready = 0;
    if (json_is_integer(json_object_get(copies, "totalCopies")))
        ready = json_integer_value(json_object_get(copies, "totalCopies")) -
                json_integer_value(json_object_get(copies, "failedCopies"));
    else if (!strcmp(state, "ready"))
        ready = 1;
    json_object_set_new(o, "ready_replicas", json_integer(ready < 0 ? 0 : ready));
    long long created = sv_rfc3339_ms(sv_sget(md, "creationTimestamp"));
    if (created >= 0)
        json_object_set_new(o, "created_ms", json_integer(created));
    json_t *tool = json_object();
    json_object_set_new(tool, "deployment_mode", json_string(raw ? "RawDeployment" : "Serverless"));
    if (json_object_get(st, "conditions"))
        json_object_set(tool, "conditions", json_object_get(st, "conditions"));
    if (json_object_get(st, "modelStatus"))
        json_object_set(tool, "model_status", json_object_get(st, "modelStatus"));
    if (json_object_get(st, "canaryStatuses"))
        json_object_set(tool, "canary_statuses", json_object_get(st, "canaryStatuses"));
    json_object_set_new(o, "tool", tool);
    (void)s;
    return o;
}

/* ------------------------------------------------------------------ lookups */

/* GET by name: 0, or -1 (NOT_FOUND also for an object the platform did not make). */
static int get_isvc(struct kserve *s, struct k8s_call *c, const char *name, json_t **obj)
{
    char path[512];
    if (!name || item_path(s, name, path, sizeof path) < 0)
        return k8s_failf(c, LLMOPS_ERR_NOT_FOUND, 0, 0,
                         "no InferenceService with this external_id");
    if (k8s_get(c, path, obj) < 0)
        return -1;
    if (!k8s_ours(*obj)) {
        json_decref(*obj);
        *obj = NULL;
        return k8s_failf(c, LLMOPS_ERR_NOT_FOUND, 0, 0,
                         "InferenceService %s was not made by llm-ops (no label %s=%s)", name,
                         K8S_MANAGED_KEY, K8S_MANAGED_VALUE);
    }
    return 0;
}

/* The object carrying the key: 0, 1 when none, -1. */
static int find_key(struct kserve *s, struct k8s_call *c, const char *key, json_t **obj)
{
    char coll[300], sel[200];
    *obj = NULL;
    k8s_path(coll, sizeof coll, GROUP, VERSION, s->k.ns, PLURAL, NULL, NULL);
    snprintf(sel, sizeof sel, "%s=%s,%s=%s", K8S_MANAGED_KEY, K8S_MANAGED_VALUE,
             LLMOPS_SERVING_KEY_LABEL, key);
    json_t *list;
    if (k8s_list(c, coll, sel, 2, NULL, &list) < 0)
        return -1;
    json_t *first = json_array_get(json_object_get(list, "items"), 0);
    if (first)
        *obj = json_incref(first);
    json_decref(list);
    return first ? 0 : 1;
}

static int answer(struct kserve *s, json_t *obj, json_t **out, const char *flag, int value)
{
    *out = deployment_of(s, obj);
    if (flag)
        json_object_set_new(*out, flag, json_boolean(value));
    json_decref(obj);
    return 0;
}

/* ------------------------------------------------------------------ ops */

static int deploy(void *state, json_t *in, json_t **out, struct llmops_error *err)
{
    struct kserve *s = state;
    struct k8s_call c = k8s_begin(&s->k, "deploy", err);
    const char *key = sv_sget(in, "idempotency_key");
    if (sv_check_spec(in, &s->f, 0, err) < 0)
        return -1;
    const char *name = sv_sget(in, "name");
    json_t *obj;
    int rc = find_key(s, &c, key, &obj);
    if (rc < 0)
        return -1;
    if (rc == 0)
        return answer(s, obj, out, "created", 0);
    json_t *model = json_object(), *pred = json_object();
    model_members(model, in);
    json_object_set_new(pred, "model", model);
    predictor_members(pred, in, 0);
    json_t *isvc =
        json_pack("{s:s,s:s,s:{s:s,s:{s:s,s:s},s:{s:s}},s:{s:o}}", "apiVersion", GROUP "/" VERSION,
                  "kind", "InferenceService", "metadata", "name", name, "labels", K8S_MANAGED_KEY,
                  K8S_MANAGED_VALUE, LLMOPS_SERVING_KEY_LABEL, key, "annotations", MODE_ANNOTATION,
                  s->raw ? "RawDeployment" : "Serverless", "spec", "predictor", pred);
    if (!isvc)
        return k8s_oom(&c);
    char coll[300];
    k8s_path(coll, sizeof coll, GROUP, VERSION, s->k.ns, PLURAL, NULL, NULL);
    rc = k8s_create(&c, coll, isvc, K8S_CHECK_PRUNE, &obj);
    json_decref(isvc);
    if (rc == 0)
        return answer(s, obj, out, "created", 1);
    if (err->code == LLMOPS_ERR_CONFLICT && !strcmp(c.reason, "AlreadyExists")) {
        /* A repeat of a create whose answer was lost, or someone else's name. */
        char path[512];
        struct llmops_error e2 = {.size = sizeof e2};
        struct k8s_call c2 = k8s_begin(&s->k, "deploy", &e2);
        item_path(s, name, path, sizeof path);
        if (k8s_get(&c2, path, &obj) == 0) {
            const char *k = sv_sget(json_object_get(json_object_get(obj, "metadata"), "labels"),
                                    LLMOPS_SERVING_KEY_LABEL);
            if (k && !strcmp(k, key))
                return answer(s, obj, out, "created", 0);
            json_decref(obj);
        }
        return k8s_failf(&c, LLMOPS_ERR_CONFLICT, 409, 0,
                         "InferenceService %s exists and was not made with this idempotency key",
                         name);
    }
    if (err->code == LLMOPS_ERR_UNAVAILABLE || (err->code == LLMOPS_ERR_TOOL && err->retryable)) {
        struct llmops_error keep = *err;
        struct llmops_error e2 = {.size = sizeof e2};
        struct k8s_call c2 = k8s_begin(&s->k, "deploy", &e2);
        if (find_key(s, &c2, key, &obj) == 0)
            return answer(s, obj, out, "created", 1);
        *err = keep;
    }
    return -1;
}

static int get_deployment(void *state, json_t *in, json_t **out, struct llmops_error *err)
{
    struct kserve *s = state;
    struct k8s_call c = k8s_begin(&s->k, "get_deployment", err);
    json_t *obj;
    if (get_isvc(s, &c, sv_sget(in, "external_id"), &obj) < 0)
        return -1;
    return answer(s, obj, out, NULL, 0);
}

static int list_deployments(void *state, json_t *in, json_t **out, struct llmops_error *err)
{
    struct kserve *s = state;
    struct k8s_call c = k8s_begin(&s->k, "list_deployments", err);
    char coll[300];
    k8s_path(coll, sizeof coll, GROUP, VERSION, s->k.ns, PLURAL, NULL, NULL);
    json_t *list, *items, *arr, *it;
    const char *next;
    if (k8s_list_page(&c, coll, LLMOPS_SERVING_MANAGED_LABEL, in, &list, &items, &next) < 0)
        return -1;
    arr = json_array();
    size_t i;
    json_array_foreach(items, i, it) json_array_append_new(arr, deployment_of(s, it));
    *out = json_pack("{s:o}", "deployments", arr);
    if (next && strlen(next) <= 2048)
        json_object_set_new(*out, "next_page_token", json_string(next));
    json_decref(list);
    return 0;
}

static int patch_isvc(struct kserve *s, struct k8s_call *c, const char *name, json_t *patch,
                      json_t **obj)
{
    char path[512];
    item_path(s, name, path, sizeof path);
    int rc = k8s_patch(c, path, patch, K8S_CHECK_PRUNE, obj);
    json_decref(patch);
    return rc;
}

static int update_deployment(void *state, json_t *in, json_t **out, struct llmops_error *err)
{
    struct kserve *s = state;
    struct k8s_call c = k8s_begin(&s->k, "update_deployment", err);
    if (sv_check_spec(in, &s->f, 1, err) < 0)
        return -1;
    const char *name = sv_sget(in, "external_id");
    json_t *obj;
    if (get_isvc(s, &c, name, &obj) < 0)
        return -1;
    json_t *pred = json_object_get(json_object_get(obj, "spec"), "predictor");
    json_t *rep = json_object_get(in, "replicas"), *as = json_object_get(in, "autoscaling");
    /* The combination that results must hold too: a metric needs min < max. */
    json_int_t min = rep ? json_integer_value(json_object_get(rep, "min"))
                         : json_integer_value(json_object_get(pred, "minReplicas"));
    json_int_t max = rep ? json_integer_value(json_object_get(rep, "max"))
                         : json_integer_value(json_object_get(pred, "maxReplicas"));
    int metric = as ? json_is_object(as) : sv_sget(pred, "scaleMetric") != NULL;
    json_decref(obj);
    if (metric && min >= max)
        return k8s_failf(&c, LLMOPS_ERR_INVALID, 0, 0,
                         "autoscaling needs replicas.min < replicas.max (give both)");
    if (!metric && min < max)
        return k8s_failf(&c, LLMOPS_ERR_INVALID, 0, 0,
                         "replicas.min < replicas.max needs autoscaling {metric, target}");
    json_t *model = json_object(), *p = json_object();
    model_members(model, in);
    if (json_object_size(model))
        json_object_set(p, "model", model);
    json_decref(model);
    predictor_members(p, in, 1);
    if (patch_isvc(s, &c, name, json_pack("{s:{s:o}}", "spec", "predictor", p), &obj) < 0)
        return -1;
    return answer(s, obj, out, NULL, 0);
}

static int delete_deployment(void *state, json_t *in, json_t **out, struct llmops_error *err)
{
    struct kserve *s = state;
    struct k8s_call c = k8s_begin(&s->k, "delete_deployment", err);
    const char *name = sv_sget(in, "external_id");
    json_t *obj;
    if (get_isvc(s, &c, name, &obj) < 0) {
        if (err->code == LLMOPS_ERR_NOT_FOUND && err->tool_status == 404) {
            *out = json_pack("{s:b}", "deleted", 0);
            return 0;
        }
        return -1;
    }
    json_decref(obj);
    char path[512];
    item_path(s, name, path, sizeof path);
    if (k8s_delete(&c, path, "Foreground", 0, &obj) < 0) {
        if (err->code != LLMOPS_ERR_NOT_FOUND)
            return -1;
        *out = json_pack("{s:b}", "deleted", 0);
        return 0;
    }
    json_decref(obj);
    *out = json_pack("{s:b}", "deleted", 1);
    return 0;
}

static int find_by_idempotency_key(void *state, json_t *in, json_t **out, struct llmops_error *err)
{
    struct kserve *s = state;
    struct k8s_call c = k8s_begin(&s->k, "find_by_idempotency_key", err);
    const char *key = sv_sget(in, "idempotency_key");
    json_t *obj;
    int rc = find_key(s, &c, key, &obj);
    if (rc < 0)
        return -1;
    if (rc == 1)
        return k8s_failf(&c, LLMOPS_ERR_NOT_FOUND, 0, 0,
                         "no InferenceService carries this idempotency key");
    return answer(s, obj, out, NULL, 0);
}

/* ------------------------------------------------------------------ canaries */

static int canary_present(json_t *obj)
{
    json_t *md = json_object_get(obj, "metadata"), *spec = json_object_get(obj, "spec");
    return json_array_size(json_object_get(spec, "canary")) > 0 ||
           sv_sget(json_object_get(md, "annotations"), STABLE_ANNOTATION) != NULL;
}

/* The read-modify-write of a canary op (k8s_update: built again on a 409 Conflict). */
struct edit {
    struct kserve *s;
    json_t *in;
    const char *name;
    int pct;
    int step;      /* rollback: 0 traffic to the stable revision, 1 its spec back */
    int no_canary; /* the object has none (rollback answers rolled_back false) */
};

static json_t *check_obj(struct k8s_call *c, struct edit *e, json_t *obj, int want_canary)
{
    if (!k8s_ours(obj)) {
        k8s_failf(c, LLMOPS_ERR_NOT_FOUND, 0, 0, "InferenceService %s was not made by llm-ops",
                  e->name);
        return NULL;
    }
    if (want_canary && !canary_present(obj)) {
        e->no_canary = 1;
        k8s_failf(c, LLMOPS_ERR_NOT_FOUND, 0, 0, "%s has no canary", e->name);
        return NULL;
    }
    if (!want_canary && canary_present(obj)) {
        k8s_failf(c, LLMOPS_ERR_CONFLICT, 0, 0,
                  "%s has a canary already: promote or roll it back first", e->name);
        return NULL;
    }
    return json_object_get(json_object_get(obj, "spec"), "predictor");
}

static json_t *build_create(struct k8s_call *c, json_t *obj, void *ctx)
{
    struct edit *e = ctx;
    json_t *pred = check_obj(c, e, obj, 0);
    if (!pred)
        return NULL;
    if (e->s->raw) {
        /* spec.canary[]: a whole predictor beside the stable one. */
        json_t *cp = json_deep_copy(pred), *model = json_object_get(cp, "model");
        if (!json_is_object(model)) {
            model = json_object();
            json_object_set_new(cp, "model", model);
        }
        json_t *m = json_object();
        model_members(m, e->in);
        json_object_update(model, m);
        json_decref(m);
        /* The CRD requires the container's name in spec.canary[].predictor.model. */
        if (!json_object_get(model, "name"))
            json_object_set_new(model, "name", json_string("kserve-container"));
        json_object_del(cp, "canaryTrafficPercent");
        return json_pack("{s:{s:[{s:o,s:i}]}}", "spec", "canary", "predictor", cp, "trafficPercent",
                         e->pct);
    }
    char *stable = json_dumps(pred, JSON_COMPACT | JSON_SORT_KEYS);
    json_t *m = json_object();
    model_members(m, e->in);
    json_t *patch = json_pack("{s:{s:{s:s}},s:{s:{s:o,s:i}}}", "metadata", "annotations",
                              STABLE_ANNOTATION, stable ? stable : "{}", "spec", "predictor",
                              "model", m, "canaryTrafficPercent", e->pct);
    free(stable);
    return patch;
}

static json_t *build_traffic(struct k8s_call *c, json_t *obj, void *ctx)
{
    struct edit *e = ctx;
    if (!check_obj(c, e, obj, 1))
        return NULL;
    if (e->s->raw) {
        json_t *list = json_deep_copy(json_object_get(json_object_get(obj, "spec"), "canary"));
        json_object_set_new(json_array_get(list, 0), "trafficPercent", json_integer(e->pct));
        return json_pack("{s:{s:o}}", "spec", "canary", list);
    }
    return json_pack("{s:{s:{s:i}}}", "spec", "predictor", "canaryTrafficPercent", e->pct);
}

static json_t *build_promote(struct k8s_call *c, json_t *obj, void *ctx)
{
    struct edit *e = ctx;
    if (!check_obj(c, e, obj, 1))
        return NULL;
    if (e->s->raw) {
        json_t *cp = json_object_get(
            json_array_get(json_object_get(json_object_get(obj, "spec"), "canary"), 0),
            "predictor");
        return json_pack("{s:{s:O,s:n}}", "spec", "predictor", cp, "canary");
    }
    /* Without canaryTrafficPercent the latest revision takes 100 %. */
    return json_pack("{s:{s:{s:n}},s:{s:{s:n}}}", "metadata", "annotations", STABLE_ANNOTATION,
                     "spec", "predictor", "canaryTrafficPercent");
}

/* A merge patch that turns object `from` into `to`: `to`'s members, null for the others. */
static json_t *replace_patch(json_t *from, json_t *to)
{
    json_t *p = json_deep_copy(to), *v;
    const char *k;
    json_object_foreach(from, k, v) if (!json_object_get(to, k))
        json_object_set_new(p, k, json_null());
    return p;
}

static json_t *build_rollback(struct k8s_call *c, json_t *obj, void *ctx)
{
    struct edit *e = ctx;
    json_t *pred = check_obj(c, e, obj, 1);
    if (!pred)
        return NULL;
    if (e->s->raw)
        return json_pack("{s:{s:n}}", "spec", "canary");
    if (e->step == 0) /* KServe's own rollback: all traffic to previousRolledoutRevision */
        return json_pack("{s:{s:{s:i}}}", "spec", "predictor", "canaryTrafficPercent", 0);
    json_t *md = json_object_get(obj, "metadata");
    json_t *stable =
        json_loads(sv_sget(json_object_get(md, "annotations"), STABLE_ANNOTATION), 0, NULL);
    if (!json_is_object(stable)) {
        json_decref(stable);
        k8s_failf(c, LLMOPS_ERR_TOOL, 0, 0,
                  "%s: annotation %s is not a predictor: roll back by hand", e->name,
                  STABLE_ANNOTATION);
        return NULL;
    }
    json_t *model = replace_patch(json_object_get(pred, "model"), json_object_get(stable, "model"));
    json_decref(stable);
    return json_pack("{s:{s:{s:n}},s:{s:{s:o,s:n}}}", "metadata", "annotations", STABLE_ANNOTATION,
                     "spec", "predictor", "model", model, "canaryTrafficPercent");
}

static int edit(struct kserve *s, struct k8s_call *c, struct edit *e, k8s_build_fn *build,
                json_t **obj)
{
    char path[512];
    if (!e->name || item_path(s, e->name, path, sizeof path) < 0)
        return k8s_failf(c, LLMOPS_ERR_NOT_FOUND, 0, 0,
                         "no InferenceService with this external_id");
    return k8s_update(c, path, build, e, K8S_CHECK_PRUNE, obj);
}

static int create_canary(void *state, json_t *in, json_t **out, struct llmops_error *err)
{
    struct kserve *s = state;
    struct k8s_call c = k8s_begin(&s->k, "create_canary", err);
    struct edit e = {s, in, sv_sget(in, "external_id"), 0, 0, 0};
    int reps;
    json_t *obj;
    if (sv_check_canary(in, &s->f, err) < 0 ||
        sv_check_split(in, &s->f, 0, &e.pct, &reps, err) < 0 ||
        edit(s, &c, &e, build_create, &obj) < 0)
        return -1;
    return answer(s, obj, out, NULL, 0);
}

static int set_canary_traffic(void *state, json_t *in, json_t **out, struct llmops_error *err)
{
    struct kserve *s = state;
    struct k8s_call c = k8s_begin(&s->k, "set_canary_traffic", err);
    struct edit e = {s, in, sv_sget(in, "external_id"), 0, 0, 0};
    int reps;
    json_t *obj;
    if (sv_check_split(in, &s->f, 1, &e.pct, &reps, err) < 0 ||
        edit(s, &c, &e, build_traffic, &obj) < 0)
        return -1;
    return answer(s, obj, out, NULL, 0);
}

static int promote_canary(void *state, json_t *in, json_t **out, struct llmops_error *err)
{
    struct kserve *s = state;
    struct k8s_call c = k8s_begin(&s->k, "promote_canary", err);
    struct edit e = {s, in, sv_sget(in, "external_id"), 0, 0, 0};
    json_t *obj;
    if (edit(s, &c, &e, build_promote, &obj) < 0)
        return -1;
    return answer(s, obj, out, NULL, 0);
}

static int rollback_canary(void *state, json_t *in, json_t **out, struct llmops_error *err)
{
    struct kserve *s = state;
    struct k8s_call c = k8s_begin(&s->k, "rollback_canary", err);
    struct edit e = {s, in, sv_sget(in, "external_id"), 0, 0, 0};
    json_t *obj;
    const char *why = sv_sget(in, "reason");
    for (e.step = s->raw ? 1 : 0; e.step < 2; e.step++) {
        if (edit(s, &c, &e, build_rollback, &obj) < 0) {
            if (!e.no_canary || e.step > (s->raw ? 1 : 0))
                return -1;
            /* Nothing to roll back: the deployment as it is. */
            if (get_isvc(s, &c, e.name, &obj) < 0)
                return -1;
            return answer(s, obj, out, "rolled_back", 0);
        }
        if (e.step == 0)
            json_decref(obj);
    }
    s->k.host->log(s->k.host, LLMOPS_LOG_INFO, "rollback_canary %s: %s", e.name,
                   why ? why : "asked");
    return answer(s, obj, out, "rolled_back", 1);
}

/* ------------------------------------------------------------------ the descriptor */

static const struct llmops_serving_ops ops =
    SV_SERVING_OPS(create_canary, set_canary_traffic, promote_canary, rollback_canary);

static int kserve_init(const struct llmops_host *host, void **state, struct llmops_error *err)
{
    struct kserve *s = calloc(1, sizeof *s);
    if (!s)
        return llmops_fail(err, LLMOPS_ERR_INTERNAL, 0, 0, "out of memory");
    if (k8s_init(&s->k, host, err) < 0) {
        free(s);
        return -1;
    }
    const char *mode = host->config_string(host, "deployment_mode", "Serverless");
    if (strcmp(mode, "Serverless") && strcmp(mode, "RawDeployment")) {
        char m[300], q[64];
        snprintf(m, sizeof m, "%s: deployment_mode \"%s\" must be Serverless or RawDeployment",
                 host->config_where(host, "deployment_mode"), llmops_quote(q, sizeof q, mode, 40));
        free(s);
        return llmops_fail(err, LLMOPS_ERR_INVALID, 0, 0, m);
    }
    s->raw = strcmp(mode, "RawDeployment") == 0;
    /* Both modes autoscale and have canaries (RawDeployment through spec.canary[], which the
     * CRD of contracts/crds defines); only Knative scales to zero. */
    s->f.flags = SV_AUTOSCALING | SV_IMAGE | SV_NODE_SELECTOR | SV_CANARY | SV_CANARY_PERCENT |
                 (s->raw ? 0 : SV_SCALE_TO_ZERO);
    s->f.metrics = metrics;
    s->f.name_max = LLMOPS_SERVING_NAME_MAX;
    /* A missing CRD is a clear error at once. */
    struct k8s_call c = k8s_begin(&s->k, "init", err);
    if (k8s_discover(&c, GROUP, VERSION, PLURAL) < 0) {
        host->log(host, LLMOPS_LOG_WARNING, "%s", err->message);
        if (err->code == LLMOPS_ERR_NOT_FOUND) {
            free(s);
            return -1;
        }
        /* The cluster is down: health says so; the instance still starts. */
    }
    *state = s;
    return 0;
}

static int kserve_health(void *state, json_t **info, struct llmops_error *err)
{
    struct kserve *s = state;
    struct k8s_call c = k8s_begin(&s->k, "health", err);
    char version[64];
    if (k8s_version(&c, version, sizeof version) < 0)
        return -1;
    if (k8s_discover(&c, GROUP, VERSION, PLURAL) < 0)
        return -1;
    *info =
        json_pack("{s:s,s:s,s:s,s:s}", "tool_version", version, "api", GROUP "/" VERSION,
                  "namespace", s->k.ns, "deployment_mode", s->raw ? "RawDeployment" : "Serverless");
    return *info ? 0 : llmops_fail(err, LLMOPS_ERR_INTERNAL, 0, 0, "out of memory");
}

static int kserve_capabilities(void *state, json_t **out, struct llmops_error *err)
{
    struct kserve *s = state;
    if (sv_answer_capabilities(&s->f, &ops, out, err) < 0)
        return -1;
    json_object_set_new(*out, "mode", json_string(s->raw ? "RawDeployment" : "Serverless"));
    return 0;
}

static const struct llmops_plugin descriptor = {
    SV_DESCRIPTOR("kserve", KSERVE_MODULE_VERSION),
    .init = kserve_init,
    .health = kserve_health,
    .capabilities = kserve_capabilities,
};

LLMOPS_PLUGIN_DEFINE(descriptor)
