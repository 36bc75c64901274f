/* The outbox: tool writes that can wait (a training job's run, the values logged to it),
 * delivered by the background process (background.c, deliver.c) in order per object, with
 * exponential backoff and full jitter, idempotently, and dead-lettered after [outbox] max_attempts.
 */
#ifndef LLMOPS_OUTBOX_H
#define LLMOPS_OUTBOX_H

#include "app.h"

#define OUTBOX_CHANNEL "llmops_outbox"

/* ------------------------------------------------------------------ the deliverer's hooks
 *
 * A row names (category, operation). The deliverer (deliver.c) knows no category: each one
 * registers what it delivers, and contributes hooks only where it truly differs. The
 * default delivery of a row calls `operation` with the row's payload plus the object's
 * external_id, once the object is bound to its tool id. */
struct outbox_row {
    char id[24];
    char category[32];
    char object_id[64];
    char operation[64];
    char instance[64];
    char external_id[256];
    char environment[64];
    int attempts;
    json_t *payload; /* borrowed by the hooks */
    json_t *scratch; /* a hook's notes from prepare to apply (released by the deliverer) */
};

/* The category's call path (tracking: track_call). */
typedef int outbox_call_fn(struct app *app, struct instance *in, const char *op, json_t *input,
                           json_t **out, struct llmops_error *err);

struct outbox_op {
    const char *category;  /* "experiment_tracking" */
    const char *operation; /* the op the row names, and the op called */
    outbox_call_fn *call;  /* required */
    /* Optional: builds the call's input (new reference in *input). Returns 0 to call, 1
     * when nothing is left to call (done by an earlier attempt), -1 with err. NULL: the
     * payload with external_id added. */
    int (*prepare)(struct app *app, struct instance *in, struct outbox_row *row, json_t **input,
                   struct llmops_error *err);
    /* Optional: records the answer, in the row's transaction. Returns 0 or -1 with err. */
    int (*apply)(struct app *app, struct instance *in, struct outbox_row *row, json_t *out,
                 struct llmops_error *err);
    /* Optional: told when the row becomes dead. */
    void (*on_dead)(struct app *app, const struct outbox_row *row, const struct llmops_error *err);
    /* The row binds its object to the tool's id: it may go before the object is bound
     * (the others wait), and is never discarded. */
    int binds_object;
};

#define OUTBOX_MAX_OPS 64
/* Adds a category's operations (a table ending with a NULL category); the same table twice
 * is ignored. Returns 0, or -1 when the registry is full or a pair is there already. */
int outbox_register(const struct outbox_op *ops);
/* The hooks of (category, operation), or NULL. */
const struct outbox_op *outbox_find_op(const char *category, const char *operation);

/* Delivers due rows, one transaction each (claimed FOR UPDATE SKIP LOCKED, so several background
 * processes may run), until none is due or `max` were tried. Returns the number of rows
 * tried, or -1 when the database failed. */
int outbox_run_once(struct app *app, int max);

/* The background process's one-row transactions (the deliverer, watches, tracking's hooks). */
/* Runs `sql` and drops its result: 0, or -1 with e filled. */
int outbox_exec(struct app *app, const char *sql, int n, const char *const *p, struct db_error *e);
/* ROLLBACK, its failure ignored (the connection is reset on the next error anyway). */
void outbox_rollback(struct app *app);
/* BEGIN and `sql`, a claim of one due row (FOR UPDATE SKIP LOCKED): 1 with *res (the caller's,
 * in the open transaction), 0 none due or -1 a database error (either rolled back). */
int outbox_claim(struct app *app, const char *sql, PGresult **res);
/* COMMIT when ok, else ROLLBACK (also when COMMIT fails): 1 committed, -1 not. */
int outbox_finish(struct app *app, int ok);
/* Calls one(app) (1 done, 0 none due, -1 database error) until none is due or `max` were
 * done: the number done, or -1. */
int outbox_each(struct app *app, int max, int (*one)(struct app *app));
/* err filled with code, retryable and msg. */
void outbox_set_err(struct llmops_error *err, enum llmops_status code, int retryable,
                    const char *msg);

/* The delay before attempt `attempts` + 1: min(max, base * 2^attempts), with jitter drawn
 * from its upper half, in milliseconds. */
long long outbox_backoff_ms(const struct llmops_conf *conf, int attempts);
/* min(max_ms, base_ms * 2^doublings) with the same jitter (outbox_backoff_ms, watches). */
long long outbox_jitter_ms(long long base_ms, long long max_ms, int doublings);

/* Discarding a dead row (POST /llm-ops/v1/outbox/{id}/discard, llm-opsctl outbox discard):
 * it becomes 'discarded' with who, when and why kept on it, and no longer holds its object's
 * later rows back. Refused for a row that is not dead, and for one that binds its object (a
 * create_run: the rows behind it need the run). */
#define OUTBOX_DISCARD_REASON_MAX 500 /* characters */
enum outbox_discard_outcome {
    OUTBOX_DISCARDED,
    OUTBOX_DISCARD_NOT_FOUND,
    OUTBOX_DISCARD_NOT_DEAD,     /* state says which */
    OUTBOX_DISCARD_BINDS_OBJECT, /* dead, but it binds its object (a run's creation) */
    OUTBOX_DISCARD_DB_ERROR,     /* err says why */
};
struct outbox_discarded {
    char object_id[64];
    char operation[64];
    char state[16];     /* the row's state after the call */
    long long released; /* pending rows behind it, up to the object's next dead row */
};
enum outbox_discard_outcome outbox_discard_row(struct db *db, long long id, const char *who,
                                               const char *reason, struct outbox_discarded *out,
                                               struct db_error *err);
/* 1-OUTBOX_DISCARD_REASON_MAX characters. */
int outbox_discard_reason_ok(const char *reason);

#endif
