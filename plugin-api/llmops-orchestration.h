/*
 * llmops-orchestration.h — the orchestration category: runs of a DAG of container steps.
 *
 * Modules: orchestration-k8s (the platform runs the DAG itself: one Kubernetes Job per step,
 * the run kept in its own tables) and argo (one Workflow, argoproj.io/v1alpha1,
 * with a container template per step and a dag template). Argo's controller walks the DAG;
 * orchestration-k8s has no controller, so the jobs process drives it through reconcile.
 */
#ifndef LLMOPS_ORCHESTRATION_H
#define LLMOPS_ORCHESTRATION_H

#include "llmops-plugin.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The conventions every category interface follows (calls, ids, idempotency, pages, values,
 * errors, capabilities, long operations, levels), llmops_op_fn and LLMOPS_OPS_HAS are in
 * llmops-plugin.h. */

#define LLMOPS_ORCHESTRATION_ABI 1
#define LLMOPS_ORCHESTRATION_ABI_OLDEST 1

#define LLMOPS_ORCHESTRATION_NAME_MAX 40 /* run and step names; the tool adds suffixes */
#define LLMOPS_ORCHESTRATION_MAX_STEPS 100
#define LLMOPS_ORCHESTRATION_MAX_RETRIES 10
#define LLMOPS_ORCHESTRATION_MAX_GPUS 64 /* per step */
#define LLMOPS_ORCHESTRATION_MAX_RESULTS 500
#define LLMOPS_ORCHESTRATION_LOG_MAX_LINES 10000
#define LLMOPS_ORCHESTRATION_LOG_MAX_BYTES (1024 * 1024)
/* Kubernetes objects a module makes carry both labels: the first as it stands (a
 * labelSelector for list_runs), the second with the idempotency key as its value. */
#define LLMOPS_ORCHESTRATION_MANAGED_LABEL "app.kubernetes.io/managed-by=llm-ops"
#define LLMOPS_ORCHESTRATION_KEY_LABEL "llm-ops/idempotency-key"

/*
 * Objects in answers
 *   Run         {external_id, name, state, message?, started_ms?, finished_ms?,
 *               steps: [StepStatus] (every step, in submit order), links?, tool?}
 *   StepStatus  {name, state, message?, started_ms?, finished_ms?, attempts (integer, 0
 *               before the first pod), exit_code? (of the last attempt)}
 *
 * Members
 *   external_id    argo: the Workflow's name in the instance's namespace; orchestration-k8s:
 *                  its run's name (a row in its tables, the prefix of its Jobs' names).
 *   name           a DNS-1123 label, [a-z0-9]([-a-z0-9]*[a-z0-9])?,
 *                  1..LLMOPS_ORCHESTRATION_NAME_MAX.
 *   steps          array (1..LLMOPS_ORCHESTRATION_MAX_STEPS) of Step, the core has checked
 *                  that names are unique and depends_on names steps of this run, acyclic.
 *   Step           {name!, image!, command, args, env, depends_on, resources, retries,
 *                  timeout_seconds}:
 *                    command, args: arrays of strings (the container's; absent: the image's)
 *                    env: object NAME ([A-Za-z_][A-Za-z0-9_]*) -> string value
 *                    depends_on: array of step names that must succeed first; absent or
 *                      empty: the step starts with the run
 *                    resources: as in llmops-serving.h: {cpu, memory, gpu {resource_name!,
 *                      count! (1..LLMOPS_ORCHESTRATION_MAX_GPUS), node_selector, type}}
 *                    retries: 0..LLMOPS_ORCHESTRATION_MAX_RETRIES more attempts after a
 *                      failed one (argo: retryStrategy {limit, retryPolicy "OnFailure"};
 *                      orchestration-k8s: the Job's backoffLimit)
 *                    timeout_seconds: per attempt (argo: the template's
 *                      activeDeadlineSeconds; orchestration-k8s: the pod's)
 *                  Steps share no volume: they pass data through URIs in their args.
 *   state          run:  "pending" | "running" | "succeeded" | "failed" | "cancelled";
 *                  step: "pending" | "running" | "succeeded" | "failed" | "skipped" |
 *                        "cancelled"; a step that never ran in a finished run is skipped.
 *                  argo: phase "" and Pending -> pending; Running; Succeeded; Failed and
 *                  Error -> failed (message says which); cancelled once cancel_run set
 *                  spec.shutdown and the phase is final; nodes by displayName, Skipped and
 *                  Omitted -> skipped. orchestration-k8s: from its Jobs' conditions
 *                  Complete and Failed and the steps it has not started.
 */
struct llmops_orchestration_ops {
    uint32_t size; /* sizeof(struct llmops_orchestration_ops) as the module was built */

    /* submit_run — required. Creates the run and answers at once, "pending".
     *   in   idempotency_key!, name!, steps!, timeout_seconds (the whole run: argo
     *        spec.activeDeadlineSeconds; orchestration-k8s enforces it in reconcile)
     *   out  Run + {created}
     *   err  CONFLICT: the name belongs to an object without this key; INVALID;
     *        UNSUPPORTED.
     * Kubernetes modules name objects after the key (argo: NAME-<10 hex of the key's
     * SHA-1>, never generateName, which makes a second Workflow on a retry), so a retried
     * create answers 409 AlreadyExists, and label them LLMOPS_ORCHESTRATION_KEY_LABEL. */
    llmops_op_fn *submit_run;

    /* get_run — required.
     *   in   external_id!
     *   out  Run
     *   err  NOT_FOUND. */
    llmops_op_fn *get_run;

    /* list_runs — required. The runs the platform made, without their steps, in the
     * tool's order.
     *   in   max_results! (1..LLMOPS_ORCHESTRATION_MAX_RESULTS), page_token
     *   out  {runs: [Run without steps], next_page_token?}
     *   err  INVALID (page_token). */
    llmops_op_fn *list_runs;

    /* cancel_run — required. Stops the run's pods and starts no more steps; the run ends
     * "cancelled" once the tool has stopped them. A finished run stays as it is (success).
     * argo: merge patch {"spec":{"shutdown":"Terminate"}}; orchestration-k8s: deletes its
     * running Jobs (propagationPolicy Background) and marks the rest cancelled.
     *   in   external_id!
     *   out  Run
     *   err  NOT_FOUND. */
    llmops_op_fn *cancel_run;

    /* find_by_idempotency_key — required. The run a submit_run made with this key.
     *   in   idempotency_key!
     *   out  Run
     *   err  NOT_FOUND: nothing carries the key. */
    llmops_op_fn *find_by_idempotency_key;

    /* reconcile — optional; required in effect for a tool with no DAG controller
     * (orchestration-k8s); NULL for argo. Moves the run on: starts the steps whose
     * dependencies succeeded, records finished attempts, skips what follows a failure,
     * enforces timeout_seconds. The jobs process calls it, instead of get_run, for every
     * run that is not finished, every few seconds, possibly from several processes at
     * once: starting a step twice must be harmless (a deterministic Job name makes the
     * second create a 409).
     *   in   external_id!
     *   out  Run
     *   err  NOT_FOUND. */
    llmops_op_fn *reconcile;

    /* get_logs — optional. The end of one step attempt's log (container "main"). argo:
     * the Argo Server log API where the instance names one, else the pod log of the
     * step's node; orchestration-k8s: the log of that attempt's pod of the step's Job.
     *   in   external_id!, step!, attempt (1.., absent: the last), tail_lines
     *        (1..LLMOPS_ORCHESTRATION_LOG_MAX_LINES)
     *   out  {lines: [string] (oldest first, without newlines), truncated (boolean: older
     *        lines were dropped to stay within LLMOPS_ORCHESTRATION_LOG_MAX_BYTES)}
     *   err  NOT_FOUND: the run, the step, or its pod (not started yet, or collected). */
    llmops_op_fn *get_logs;

    /* delete_run — optional. Removes the tool's objects of a finished run (argo: the
     * Workflow and its pods; orchestration-k8s: its Jobs, their pods and its rows).
     *   in   external_id!
     *   out  {deleted}
     *   err  CONFLICT: the run has not finished (cancel it first). */
    llmops_op_fn *delete_run;
};

/* Every op in struct order, X(member, required): the names capabilities() lists. */
#define LLMOPS_ORCHESTRATION_OPS(X)                                                                \
    X(submit_run, 1)                                                                               \
    X(get_run, 1)                                                                                  \
    X(list_runs, 1)                                                                                \
    X(cancel_run, 1)                                                                               \
    X(find_by_idempotency_key, 1)                                                                  \
    X(reconcile, 0)                                                                                \
    X(get_logs, 0)                                                                                 \
    X(delete_run, 0)

/* The name of the first required op that `ops` lacks (NULL, or beyond ops->size), or NULL
 * when it has them all: the loader refuses the module with that name. */
static inline const char *
llmops_orchestration_missing_op(const struct llmops_orchestration_ops *ops)
{
    if (!ops)
        return "ops";
#define LLMOPS_REQUIRED_OP_(member, required)                                                      \
    if ((required) && !LLMOPS_OPS_HAS(struct llmops_orchestration_ops, ops, member))               \
        return #member;
    LLMOPS_ORCHESTRATION_OPS(LLMOPS_REQUIRED_OP_)
#undef LLMOPS_REQUIRED_OP_
    return NULL;
}

#ifdef __cplusplus
}
#endif

#endif /* LLMOPS_ORCHESTRATION_H */
