/* The outbox: tool writes that can wait (a training job's run, the values logged to it),
 * delivered by the background process (background.c, deliver.c) in order per object, with exponential backoff and full
 * jitter, idempotently, and dead-lettered after [outbox] max_attempts. */
#ifndef LLMOPS_OUTBOX_H
#define LLMOPS_OUTBOX_H

#include "app.h"

#define OUTBOX_CHANNEL "llmops_outbox"

/* Delivers due rows, one transaction each (claimed FOR UPDATE SKIP LOCKED, so several background
 * processes may run), until none is due or `max` were tried. Returns the number of rows
 * tried, or -1 when the database failed. */
int outbox_run_once(struct app *app, int max);

/* The delay before attempt `attempts` + 1: min(max, base * 2^attempts), with jitter drawn
 * from its upper half, in milliseconds. */
long long outbox_backoff_ms(const struct llmops_conf *conf, int attempts);

/* Discarding a dead row (POST /llm-ops/v1/outbox/{id}/discard, llm-opsctl outbox discard):
 * it becomes 'discarded' with who, when and why kept on it, and no longer holds its object's
 * later rows back. Refused for a row that is not dead, and for a create_run (the rows behind
 * it need the run). */
#define OUTBOX_DISCARD_REASON_MAX 500 /* characters */
enum outbox_discard_outcome {
    OUTBOX_DISCARDED,
    OUTBOX_DISCARD_NOT_FOUND,
    OUTBOX_DISCARD_NOT_DEAD,   /* state says which */
    OUTBOX_DISCARD_CREATE_RUN, /* dead, but a run's creation */
    OUTBOX_DISCARD_DB_ERROR,   /* err says why */
};
struct outbox_discarded {
    char object_id[64];
    char operation[16];
    char state[16];     /* the row's state after the call */
    long long released; /* pending rows behind it, up to the object's next dead row */
};
enum outbox_discard_outcome outbox_discard_row(struct db *db, long long id, const char *who,
                                               const char *reason, struct outbox_discarded *out,
                                               struct db_error *err);
/* 1-OUTBOX_DISCARD_REASON_MAX characters. */
int outbox_discard_reason_ok(const char *reason);

#endif
