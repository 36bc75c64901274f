/* llm-opsctl sync serving: moves deployments from one serving instance to another. */
#ifndef LLMOPS_SYNC_SERVING_H
#define LLMOPS_SYNC_SERVING_H

#include "app.h"

#include <stdio.h>

/* The actor of a move in deployment_audit, and its action. */
#define SYNC_SERVING_ACTOR "llm-opsctl"
#define SYNC_SERVING_ACTION "move"
/* How long one deployment may take to be ready on the target, by default (--timeout). */
#define SYNC_SERVING_TIMEOUT_S 300
/* The outbox operation that removes the old object from the source after a move, when the
 * command could not (the source down, the command killed between the switch and the
 * removal). Its payload is {instance, external_id}: the source and the old object. */
#define SYNC_SERVING_CLEANUP_OP "move_cleanup"

struct sync_serving_opts {
    const char *deployment; /* only the live deployments of this name (NULL: all) */
    int dry_run;            /* read only; say what would be done */
    long long timeout_ms;   /* per deployment, for it to be ready on the target */
    const char *who;        /* "cli:USER", in the audit row's reason */
    FILE *out;              /* one line per deployment */
};

struct sync_serving_counts {
    long listed;  /* live deployments of the source (of that name) */
    long moved;   /* or, with dry_run, would be */
    long skipped; /* an open canary, or a write still waiting in the outbox */
    long failed;
    long cleanup_left; /* old objects the background process removes (outbox) */
};

/* For each live deployment whose owner is `from` (only those named opts->deployment when
 * set): re-creates it on `to` with the same spec (model, runtime, the GPU as resolved at its
 * create, cpu, memory, replicas, autoscaling, env, args) through the engine under an
 * idempotency key derived from (id, to, moves so far), so a re-run after a crash adopts what
 * the first made; waits for it to be ready there (opts->timeout_ms); switches the owner
 * (objects and deployments rows, audited "move" by SYNC_SERVING_ACTOR) in one transaction
 * that also queues the old object's removal; then removes the old object from `from`. A
 * deployment with an open canary is skipped (promote or roll it back first). One
 * deployment's failure does not stop the others. Returns 0 when the database could be read
 * (the counts say what happened), -1 with error otherwise. */
int sync_serving(struct app *app, struct instance *from, struct instance *to,
                 const struct sync_serving_opts *opts, struct sync_serving_counts *n, char *error,
                 size_t errsize);

/* The background process's delivery of SYNC_SERVING_CLEANUP_OP rows. */
int sync_serving_outbox_register(void);

#endif
