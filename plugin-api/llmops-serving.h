/*
 * llmops-serving.h — the serving category: deployments of a model that answer inference
 * requests.
 *
 * Modules: serving-k8s (a Deployment and a Service per deployment, apps/v1 and v1), kserve
 * (an InferenceService per deployment, serving.kserve.io/v1beta1) and rayserve (one
 * application in Ray Serve's declarative config, PUT /api/serve/applications/). What the
 * three do not share is named, never approximated: a module refuses what it cannot do with
 * UNSUPPORTED, and says ahead of time what it can through "features" (below).
 */
#ifndef LLMOPS_SERVING_H
#define LLMOPS_SERVING_H

#include "llmops-ops.h"
#include "llmops-plugin.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The conventions every category interface follows (calls, ids, idempotency, pages, values,
 * errors, capabilities, long operations, levels), llmops_op_fn and LLMOPS_OPS_HAS are in
 * llmops-plugin.h. */

/* Level 2 (2026-12-03): canary ops, the traffic split, autoscaling; no level-1 module was
 * ever built, so level 1 is no longer loaded. */
#define LLMOPS_SERVING_ABI 2
#define LLMOPS_SERVING_ABI_OLDEST 2

#define LLMOPS_SERVING_NAME_MAX 63 /* a DNS-1035 label */
#define LLMOPS_SERVING_MAX_REPLICAS 100
#define LLMOPS_SERVING_MAX_GPUS 64 /* per replica */
#define LLMOPS_SERVING_MAX_RESULTS 500
#define LLMOPS_SERVING_PREDICT_TIMEOUT_MAX_MS 300000
#define LLMOPS_SERVING_MAX_TRAFFIC 100 /* percent */
/* Kubernetes modules label every object they make with both: the first as it stands (a
 * labelSelector for list_deployments), the second with the idempotency key as its value
 * (for find_by_idempotency_key). */
#define LLMOPS_SERVING_MANAGED_LABEL "app.kubernetes.io/managed-by=llm-ops"
#define LLMOPS_SERVING_KEY_LABEL "llm-ops/idempotency-key"

/*
 * Capabilities: {"operations": [...], "features": [...], "autoscaling_metrics"?: [...],
 * "mode"?: "..."}, features among:
 *   "autoscaling"        replicas.min < replicas.max and `autoscaling` (serving-k8s: a
 *                        HorizontalPodAutoscaler autoscaling/v2; kserve: minReplicas,
 *                        maxReplicas, scaleMetric, scaleTarget; rayserve:
 *                        autoscaling_config). "autoscaling_metrics" lists the metrics the
 *                        instance accepts (serving-k8s "cpu", "memory"; kserve "cpu",
 *                        "memory", "concurrency", "rps"; rayserve "ongoing_requests").
 *   "scale_to_zero"      replicas.min = 0 (kserve in Serverless mode only).
 *   "image"              `image` (serving-k8s, kserve).
 *   "node_selector"      resources.gpu.node_selector (serving-k8s, kserve).
 *   "canary"             the canary ops (create_canary, set_canary_traffic,
 *                        promote_canary, rollback_canary) work; one of the next two says
 *                        how traffic is split:
 *   "canary_percent"     an exact traffic_percent (kserve: Serverless canaryTrafficPercent,
 *                        RawDeployment spec.canary[].trafficPercent).
 *   "canary_by_replicas" the split follows the ratio of canary to stable replicas
 *                        (serving-k8s: a second Deployment behind the same Service); such
 *                        an instance takes canary_replicas, and refuses traffic_percent
 *                        with UNSUPPORTED "canary_percent" rather than approximating it.
 *   "serialized_writes"  the tool holds every deployment in one document that a write
 *                        replaces whole (Ray Serve deletes each application a PUT does not
 *                        list): the core runs this instance's deploy, update_deployment,
 *                        delete_deployment and canary ops one at a time across all
 *                        processes (a PostgreSQL advisory lock), and the module reads the
 *                        document again before each write (rayserve).
 * The core refuses a request that needs an absent feature before calling the module: the
 * operations table (llmops_serving_op_table) names, per op, the feature each member needs
 * (image, autoscaling, resources.gpu.node_selector, traffic_percent, canary_replicas, and
 * "canary" for every canary op). A module refuses it too (UNSUPPORTED, the message naming the
 * feature as `feature "NAME"`), so that a caller that did not go through the core (the
 * modules' own suites, and the conformance runner's cases that hand a module bad input
 * directly) never gets an approximation; what depends on values (scale_to_zero, min < max)
 * only the module checks.
 *
 * Objects in answers
 *   Spec        {name, model, runtime?, image?, args?, env?, resources?, replicas,
 *               autoscaling?}
 *   Deployment  Spec + {external_id, state, reason?, message?, url?, ready_replicas
 *               (integer), traffic, canary?, created_ms?, updated_ms?, links?, tool?
 *               (kserve: its conditions)}
 *   Canary      {model, image?, args?, env?, state, reason?, message?, ready_replicas,
 *               replicas? (canary_by_replicas)}: the candidate while one exists.
 *   Traffic     {stable: {percent, revision?}, canary?: {percent, revision?}}: percent
 *               integers 0..100 that add up to 100; revision the tool's name of what
 *               serves (kserve: a Knative revision or the predictor's; serving-k8s: the
 *               Deployment's name); without a canary stable is {percent: 100}.
 *
 * Members
 *   external_id    serving-k8s, kserve: the object's name in the instance's namespace;
 *                  rayserve: the application's name.
 *   name           a DNS-1035 label, [a-z]([-a-z0-9]*[a-z0-9])?, 1..LLMOPS_SERVING_NAME_MAX
 *                  (KServe's webhook and Kubernetes Services require it); rayserve names the
 *                  application and its route_prefix "/NAME" after it. serving-k8s names a
 *                  canary's Deployment NAME-canary, so its names stop 7 short of the max.
 *   model          {uri!, format!, format_version}: uri "hf://ORG/MODEL", "s3://...",
 *                  "gs://..." or "pvc://CLAIM/PATH" (a module refuses a scheme its tool
 *                  cannot fetch with UNSUPPORTED); format a KServe modelFormat name
 *                  ("huggingface", "pytorch", "onnx", "sklearn", ...). rayserve hands both to
 *                  its application in runtime_env.env_vars (MODEL_URI, MODEL_FORMAT);
 *                  serving-k8s to its container as env MODEL_URI, MODEL_FORMAT.
 *   runtime        a name the instance knows: kserve a ServingRuntime or
 *                  ClusterServingRuntime (absent: KServe picks one by format); serving-k8s
 *                  and rayserve a name in their own configuration (an image and port; an
 *                  import_path and runtime_env), absent: the instance's default.
 *   image          a container image that replaces the runtime's (feature "image").
 *   args           array of strings, extra arguments to the runtime ("--max-model-len=4096");
 *                  rayserve passes them to the application builder as args.argv.
 *   env            object: NAME ([A-Za-z_][A-Za-z0-9_]*) -> string value.
 *   resources      {cpu, memory, gpu}, each used both as request and as limit. cpu and
 *                  memory are Kubernetes quantities as strings ("4", "500m", "32Gi"); gpu is
 *                  what the core resolved from the platform's GPU type: {resource_name!
 *                  ("nvidia.com/gpu", "nvidia.com/mig-1g.10gb", "amd.com/gpu"), count!
 *                  (1..LLMOPS_SERVING_MAX_GPUS), node_selector (object: label -> value;
 *                  feature "node_selector"), type (the platform's GPU type name, for
 *                  messages)}. rayserve maps them to ray_actor_options num_cpus, memory
 *                  (bytes) and num_gpus, and accepts only the resource_name its
 *                  configuration names (Ray counts GPUs; it does not tell kinds apart).
 *   replicas       {min!, max!}: 0 <= min <= max, 1 <= max <= LLMOPS_SERVING_MAX_REPLICAS.
 *                  min < max needs "autoscaling"; min = 0 needs "scale_to_zero". Without
 *                  autoscaling a module runs `max` replicas.
 *   autoscaling    {metric!, target!}: metric one of the instance's "autoscaling_metrics";
 *                  target an integer 1..1000000: a utilisation percent for cpu and memory,
 *                  requests in flight per replica for concurrency and ongoing_requests,
 *                  requests per second per replica for rps. Only with min < max.
 *   traffic_percent the canary's share, an integer 1..99 ("canary_percent").
 *   canary_replicas the canary Deployment's replicas, 1..LLMOPS_SERVING_MAX_REPLICAS
 *                  ("canary_by_replicas"); traffic.canary.percent then reports
 *                  round(100 * canary ready / (stable ready + canary ready)).
 *   state          of the CURRENT spec: a spec the tool has not observed yet (a
 *                  metadata.generation above status.observedGeneration) is "progressing".
 *                  "progressing" | "ready" | "failed" | "deleting":
 *                    kserve: condition Ready "True" -> ready; modelStatus.transitionStatus
 *                      BlockedByFailedLoad or InvalidSpec, or Ready "False" with reason
 *                      RevisionFailed -> failed; otherwise progressing;
 *                    serving-k8s: condition Available "True" and readyReplicas >= min ->
 *                      ready; Progressing "False" (ProgressDeadlineExceeded) -> failed;
 *                    rayserve: RUNNING -> ready; NOT_STARTED, DEPLOYING -> progressing;
 *                      DEPLOY_FAILED, UNHEALTHY -> failed; DELETING -> deleting;
 *                    all: a deletion in progress (metadata.deletionTimestamp) -> deleting.
 *                  With a canary, `state` is the stable one's and canary.state the
 *                  candidate's (kserve: the latest revision's, from the same conditions).
 *   reason         the tool's short cause while not ready (a condition reason,
 *                  "ProgressDeadlineExceeded", "DEPLOY_FAILED"); `message` its text, trimmed.
 *   url            where inference requests go, once known: kserve status.url; serving-k8s
 *                  http://NAME.NAMESPACE.svc; rayserve http://HEAD:8000/NAME.
 */
struct llmops_serving_ops {
    uint32_t size; /* sizeof(struct llmops_serving_ops) as the module was built */

    /* deploy — required. Creates the deployment and answers at once, "progressing"; the
     * jobs process polls get_deployment until it is ready or failed.
     *   in   idempotency_key! (string), name! (string), model! (object), runtime (string),
     *        image (string), args (array of strings), env (object of strings), resources
     *        (object), replicas! (object), autoscaling (object)
     *   out  Deployment + {created}
     *   err  CONFLICT: the name belongs to an object without this key; INVALID: the tool
     *        refused the spec (a Kubernetes 422 names the field of each cause);
     *        UNSUPPORTED: a member or value this tool cannot honour. */
    llmops_op_fn *deploy;

    /* get_deployment — required.
     *   in   external_id!
     *   out  Deployment
     *   err  NOT_FOUND. */
    llmops_op_fn *get_deployment;

    /* list_deployments — required. The deployments the platform made (Kubernetes: label
     * LLMOPS_SERVING_MANAGED_LABEL; rayserve: applications whose runtime_env carries the
     * key), in the tool's order.
     *   in   max_results! (1..LLMOPS_SERVING_MAX_RESULTS), page_token
     *   out  {deployments: [Deployment], next_page_token?}
     *   err  INVALID (page_token). */
    llmops_op_fn *list_deployments;

    /* update_deployment — required. Changes the members given; the others stay. A call
     * with replicas alone is a scale (Kubernetes: the scale subresource or a merge patch).
     *   in   external_id! (string), model, runtime, image, args, env, resources, replicas,
     *        autoscaling (at least one; args, env, resources and autoscaling replace the
     *        whole member; autoscaling null removes it)
     *   out  Deployment, "progressing" until the tool has rolled the change out
     *   err  NOT_FOUND; INVALID; UNSUPPORTED; CONFLICT: a concurrent change in the tool
     *        (Kubernetes 409 Conflict on a stale resourceVersion; retryable). */
    llmops_op_fn *update_deployment;

    /* delete_deployment — required. The tool may take a while: get_deployment answers
     * "deleting", then NOT_FOUND. serving-k8s deletes its Service and Deployment; rayserve
     * writes the config back without the application (its DELETE removes all of them).
     *   in   external_id!
     *   out  {deleted} */
    llmops_op_fn *delete_deployment;

    /* find_by_idempotency_key — required. The deployment a deploy made with this key
     * (Kubernetes: label LLMOPS_SERVING_KEY_LABEL; rayserve: runtime_env.env_vars
     * LLMOPS_IDEMPOTENCY_KEY of the deployed application config).
     *   in   idempotency_key!
     *   out  Deployment
     *   err  NOT_FOUND: nothing carries the key. */
    llmops_op_fn *find_by_idempotency_key;

    /* predict — optional. Forwards one JSON request to the deployment and answers what the
     * model server answered, whatever its status. Not streamed.
     *   in   external_id!, path! (begins with "/", appended to url: "/v1/models/m:predict",
     *        "/openai/v1/chat/completions"), body! (any JSON value), timeout_ms
     *        (1..LLMOPS_SERVING_PREDICT_TIMEOUT_MAX_MS; absent: the instance's timeout)
     *   out  {status (the model server's HTTP status), body (its JSON, or a string when it
     *        was not JSON), content_type}
     *   err  NOT_FOUND; INVALID: the deployment has no url yet or is not ready. */
    llmops_op_fn *predict;

    /* ---- level 2: canaries. Optional; listed (with feature "canary") only where the
     * instance can make one. A module without canaries may leave them NULL; one that has
     * them but whose instance cannot (kserve in a mode the CRD lacks) answers UNSUPPORTED
     * naming the feature and the reason. At most one canary per deployment. */

    /* create_canary — a candidate beside the stable spec, taking part of the traffic.
     *   in   external_id! (string), model (object), image (string), args (array of
     *        strings), env (object of strings): at least one; the members absent are the
     *        stable spec's; traffic_percent (integer 1..99, "canary_percent") or
     *        canary_replicas (integer, "canary_by_replicas"): exactly one, the one the
     *        instance's feature names.
     *   out  Deployment (with canary, "progressing")
     *   err  NOT_FOUND; CONFLICT: a canary exists already; UNSUPPORTED: the other way of
     *        splitting (its feature named) or no canary in this mode. */
    llmops_op_fn *create_canary;

    /* set_canary_traffic — changes the canary's share.
     *   in   external_id! (string), traffic_percent (integer 0..100, "canary_percent") or
     *        canary_replicas (integer 0..LLMOPS_SERVING_MAX_REPLICAS,
     *        "canary_by_replicas"): exactly one
     *   out  Deployment
     *   err  NOT_FOUND: the deployment, or no canary ("no canary" in the message);
     *        UNSUPPORTED as create_canary. */
    llmops_op_fn *set_canary_traffic;

    /* promote_canary — the canary becomes the stable spec at 100 % and the canary is gone
     * (kserve: canaryTrafficPercent removed, or spec.canary[] folded into the predictor;
     * serving-k8s: the stable Deployment takes the canary's template, the canary's
     * Deployment is deleted).
     *   in   external_id! (string)
     *   out  Deployment
     *   err  NOT_FOUND: the deployment, or no canary. */
    llmops_op_fn *promote_canary;

    /* rollback_canary — all traffic back to the stable revision, the canary removed (kserve
     * Serverless: the predictor spec of before the canary back, so that
     * previousRolledoutRevision serves; serving-k8s: the canary's Deployment deleted).
     * Rolling back when there is no canary succeeds with "rolled_back": false.
     *   in   external_id! (string), reason (string, for the log)
     *   out  Deployment + {rolled_back}
     *   err  NOT_FOUND: the deployment. */
    llmops_op_fn *rollback_canary;
};

/* Every op in struct order, X(member, required): the names capabilities() lists. */
#define LLMOPS_SERVING_OPS(X)                                                                      \
    X(deploy, 1)                                                                                   \
    X(get_deployment, 1)                                                                           \
    X(list_deployments, 1)                                                                         \
    X(update_deployment, 1)                                                                        \
    X(delete_deployment, 1)                                                                        \
    X(find_by_idempotency_key, 1)                                                                  \
    X(predict, 0)                                                                                  \
    X(create_canary, 0)                                                                            \
    X(set_canary_traffic, 0)                                                                       \
    X(promote_canary, 0)                                                                           \
    X(rollback_canary, 0)

/* The operations as data (llmops-ops.h): kinds, objects, flags and input members, in the
 * order of LLMOPS_SERVING_OPS (a unit test keeps them equal). The core checks every call's
 * input against it, so a module may trust the types and bounds it states, and refuses a call
 * whose members need a feature the instance does not list; what it cannot state (a DNS-1035
 * name, min <= max, a URI scheme, an env name's shape, features that depend on values) the
 * modules still check. */
static inline const struct llmops_op_desc *llmops_serving_op_table(size_t *n)
{
#define LLMOPS_S_ID_ LLMOPS_STR("external_id", LLMOPS_M_REQUIRED, 1, 255)
#define LLMOPS_S_SPEC_                                                                             \
    LLMOPS_OBJECT("model", 0, model), LLMOPS_STR("runtime", 0, 1, 253),                            \
        LLMOPS_STR("image", 0, 1, 1024), LLMOPS_ARRAY("args", 0, 0, 256, arg),                     \
        LLMOPS_MAP("env", 0, 0, 256, 255, env_value, NULL),                                        \
        LLMOPS_OBJECT("resources", 0, resources), LLMOPS_OBJECT("replicas", 0, replicas),          \
        LLMOPS_OBJECT("autoscaling", 0, autoscaling)
    static const struct llmops_member model[] = {LLMOPS_STR("uri", LLMOPS_M_REQUIRED, 1, 2048),
                                                 LLMOPS_STR("format", LLMOPS_M_REQUIRED, 1, 64),
                                                 LLMOPS_STR("format_version", 0, 0, 64),
                                                 LLMOPS_END};
    static const struct llmops_member arg[] = {LLMOPS_STR("", 0, 0, 4096)};
    static const struct llmops_member env_value[] = {LLMOPS_STR("", 0, 0, 32768)};
    static const struct llmops_member label_value[] = {LLMOPS_STR("", 0, 0, 63)};
    static const struct llmops_member gpu[] = {
        LLMOPS_STR("resource_name", LLMOPS_M_REQUIRED, 1, 253),
        LLMOPS_INT("count", LLMOPS_M_REQUIRED, 1, LLMOPS_SERVING_MAX_GPUS),
        LLMOPS_MAP("node_selector", 0, 0, 64, 317, label_value, NULL), LLMOPS_STR("type", 0, 0, 63),
        LLMOPS_END};
    static const struct llmops_member resources[] = {LLMOPS_STR("cpu", 0, 1, 64),
                                                     LLMOPS_STR("memory", 0, 1, 64),
                                                     LLMOPS_OBJECT("gpu", 0, gpu), LLMOPS_END};
    static const struct llmops_member replicas[] = {
        LLMOPS_INT("min", LLMOPS_M_REQUIRED, 0, LLMOPS_SERVING_MAX_REPLICAS),
        LLMOPS_INT("max", LLMOPS_M_REQUIRED, 1, LLMOPS_SERVING_MAX_REPLICAS), LLMOPS_END};
    static const struct llmops_member autoscaling[] = {
        LLMOPS_STR("metric", LLMOPS_M_REQUIRED, 1, 64),
        LLMOPS_INT("target", LLMOPS_M_REQUIRED, 1, 1000000), LLMOPS_END};
    static const struct llmops_member deploy[] = {
        LLMOPS_IDKEY("idempotency_key", LLMOPS_M_REQUIRED),
        LLMOPS_STR("name", LLMOPS_M_REQUIRED, 1, LLMOPS_SERVING_NAME_MAX),
        LLMOPS_OBJECT("model", LLMOPS_M_REQUIRED, model),
        LLMOPS_STR("runtime", 0, 1, 253),
        LLMOPS_STR("image", 0, 1, 1024),
        LLMOPS_ARRAY("args", 0, 0, 256, arg),
        LLMOPS_MAP("env", 0, 0, 256, 255, env_value, NULL),
        LLMOPS_OBJECT("resources", 0, resources),
        LLMOPS_OBJECT("replicas", LLMOPS_M_REQUIRED, replicas),
        LLMOPS_OBJECT("autoscaling", 0, autoscaling),
        LLMOPS_END};
    static const struct llmops_member id_only[] = {LLMOPS_S_ID_, LLMOPS_END};
    static const struct llmops_member list[] = {
        LLMOPS_INT("max_results", LLMOPS_M_REQUIRED, 1, LLMOPS_SERVING_MAX_RESULTS),
        LLMOPS_STR("page_token", 0, 1, 4096), LLMOPS_END};
    static const struct llmops_member update[] = {LLMOPS_S_ID_, LLMOPS_S_SPEC_, LLMOPS_END};
    static const struct llmops_member find[] = {LLMOPS_IDKEY("idempotency_key", LLMOPS_M_REQUIRED),
                                                LLMOPS_END};
    static const struct llmops_member predict[] = {
        LLMOPS_S_ID_, LLMOPS_STR("path", LLMOPS_M_REQUIRED, 1, 2048),
        LLMOPS_ANY("body", LLMOPS_M_REQUIRED),
        LLMOPS_INT("timeout_ms", 0, 1, LLMOPS_SERVING_PREDICT_TIMEOUT_MAX_MS), LLMOPS_END};
    static const struct llmops_member create_canary[] = {
        LLMOPS_S_ID_,
        LLMOPS_OBJECT("model", 0, model),
        LLMOPS_STR("image", 0, 1, 1024),
        LLMOPS_ARRAY("args", 0, 0, 256, arg),
        LLMOPS_MAP("env", 0, 0, 256, 255, env_value, NULL),
        LLMOPS_INT("traffic_percent", 0, 1, 99),
        LLMOPS_INT("canary_replicas", 0, 1, LLMOPS_SERVING_MAX_REPLICAS),
        LLMOPS_END};
    static const struct llmops_member set_traffic[] = {
        LLMOPS_S_ID_, LLMOPS_INT("traffic_percent", 0, 0, LLMOPS_SERVING_MAX_TRAFFIC),
        LLMOPS_INT("canary_replicas", 0, 0, LLMOPS_SERVING_MAX_REPLICAS), LLMOPS_END};
    static const struct llmops_member rollback[] = {LLMOPS_S_ID_, LLMOPS_STR("reason", 0, 0, 1024),
                                                    LLMOPS_END};
    /* The features (above) each op needs, when its input has the member (NULL: always): the
     * core refuses the call before the module sees it. What depends on values rather than on
     * a member being there (replicas.min 0: scale_to_zero; min < max: autoscaling; a metric
     * outside autoscaling_metrics) the modules check. */
    static const struct llmops_op_feature spec_needs[] = {
        LLMOPS_FEATURE("image", "image"), LLMOPS_FEATURE("autoscaling", "autoscaling"),
        LLMOPS_FEATURE("resources.gpu.node_selector", "node_selector"), LLMOPS_FEATURES_END};
    static const struct llmops_op_feature canary_needs[] = {
        LLMOPS_FEATURE(NULL, "canary"), LLMOPS_FEATURE("traffic_percent", "canary_percent"),
        LLMOPS_FEATURE("canary_replicas", "canary_by_replicas"), LLMOPS_FEATURE("image", "image"),
        LLMOPS_FEATURES_END};
    static const struct llmops_op_feature traffic_needs[] = {
        LLMOPS_FEATURE(NULL, "canary"), LLMOPS_FEATURE("traffic_percent", "canary_percent"),
        LLMOPS_FEATURE("canary_replicas", "canary_by_replicas"), LLMOPS_FEATURES_END};
    static const struct llmops_op_feature canary_only[] = {LLMOPS_FEATURE(NULL, "canary"),
                                                           LLMOPS_FEATURES_END};
#define LLMOPS_S_OP_(...) LLMOPS_OP(struct llmops_serving_ops, __VA_ARGS__)
#define LLMOPS_S_OP_F_(...) LLMOPS_OP_F(struct llmops_serving_ops, __VA_ARGS__)
    static const struct llmops_op_desc table[] = {
        LLMOPS_S_OP_F_(deploy, 1, CREATE, "dep", LLMOPS_OP_IDEMPOTENT | LLMOPS_OP_OUTBOX, deploy,
                       spec_needs),
        LLMOPS_S_OP_(get_deployment, 1, READ, "dep", 0, id_only),
        LLMOPS_S_OP_(list_deployments, 1, LIST, "dep", 0, list),
        LLMOPS_S_OP_F_(update_deployment, 1, UPDATE, "dep", 0, update, spec_needs),
        LLMOPS_S_OP_(delete_deployment, 1, DELETE, "dep", 0, id_only),
        LLMOPS_S_OP_(find_by_idempotency_key, 1, READ, NULL, LLMOPS_OP_INTERNAL, find),
        LLMOPS_S_OP_(predict, 0, READ, "dep", 0, predict),
        LLMOPS_S_OP_F_(create_canary, 0, UPDATE, "dep", 0, create_canary, canary_needs),
        LLMOPS_S_OP_F_(set_canary_traffic, 0, UPDATE, "dep", 0, set_traffic, traffic_needs),
        LLMOPS_S_OP_F_(promote_canary, 0, UPDATE, "dep", 0, id_only, canary_only),
        LLMOPS_S_OP_F_(rollback_canary, 0, UPDATE, "dep", 0, rollback, canary_only),
    };
#undef LLMOPS_S_OP_
#undef LLMOPS_S_OP_F_
#undef LLMOPS_S_ID_
#undef LLMOPS_S_SPEC_
    *n = sizeof table / sizeof table[0];
    return table;
}

/* The name of the first required op that `ops` lacks (NULL, or beyond ops->size), or NULL
 * when it has them all: the loader refuses the module with that name. */
static inline const char *llmops_serving_missing_op(const struct llmops_serving_ops *ops)
{
    if (!ops)
        return "ops";
#define LLMOPS_REQUIRED_OP_(member, required)                                                      \
    if ((required) && !LLMOPS_OPS_HAS(struct llmops_serving_ops, ops, member))                     \
        return #member;
    LLMOPS_SERVING_OPS(LLMOPS_REQUIRED_OP_)
#undef LLMOPS_REQUIRED_OP_
    return NULL;
}

#ifdef __cplusplus
}
#endif

#endif /* LLMOPS_SERVING_H */
