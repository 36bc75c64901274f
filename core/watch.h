/* Watches: objects whose state in the tool converges later (a deployment becoming ready, a
 * workflow finishing, an import done), polled by the background process with the
 * category's read op, with exponential backoff and jitter, until a terminal state or their
 * deadline (table watches, migration 0006).
 *
 * A watch row says how to read the answer: read_op is called with {external_id}; the
 * string member state_member of the answer is the tool's state; one of ready_states makes
 * the watch `ready`, one of failed_states `failed` (reason: the answer's `reason` or
 * `message` member when it is a string); no terminal state by deadline_at makes it
 * `timed_out`. NOT_FOUND (the object is gone from the tool) is `failed`; any other error is
 * kept as the reason and retried at the next poll.
 *
 * Every change of the tool's state and the terminal outcome is a row of object_events; the
 * watch row keeps the last tool_state and reason. A category that keeps its own platform
 * row registers a hook that updates it in the poll's transaction. */
#ifndef LLMOPS_WATCH_H
#define LLMOPS_WATCH_H

#include "app.h"
#include "outbox.h"

enum watch_state { WATCH_WATCHING, WATCH_READY, WATCH_FAILED, WATCH_TIMED_OUT };

struct watch_row {
    char id[24];
    char object_id[64];
    char environment[64];
    char category[32];
    char read_op[64];
    char instance[64];
    char external_id[256];
    int polls; /* including this one */
};

struct watch_hook {
    const char *category;
    /* The category's read path (NULL: engine_call_any, by op name). */
    outbox_call_fn *call;
    /* Optional: updates the category's platform row after a poll; `answer` is NULL when
     * the poll failed or timed out. Returns 0, or -1 with err (the poll is then retried). */
    int (*apply)(struct app *app, const struct watch_row *w, enum watch_state state,
                 const char *tool_state, const char *reason, json_t *answer,
                 struct llmops_error *err);
};

#define WATCH_MAX_HOOKS 16
/* Registers a category's hook; returns 0, or -1 when full or the category has one. */
int watch_register(const struct watch_hook *hook);

/* Starts watching `object_id` (its category and environment from the objects table).
 * ready and failed are NULL-terminated lists. Returns the watch id (> 0), or -1 with err. */
long long watch_start(struct db *db, const char *object_id, const char *read_op,
                      const char *state_member, const char *const *ready, const char *const *failed,
                      long long base_delay_ms, long long max_delay_ms, long long deadline_ms,
                      struct db_error *err);

/* Polls due watches, one transaction each (claimed FOR UPDATE SKIP LOCKED), until none is
 * due or `max` were polled. Returns the number polled, or -1 when the database failed. */
int watch_run_once(struct app *app, int max);

/* The delay after poll number `polls`: min(max, base * 2^(polls-1)), with jitter over its
 * upper half. */
long long watch_backoff_ms(long long base_ms, long long max_ms, int polls);

#endif
