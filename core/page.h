/* Pages of the platform's own lists (GET /training-jobs, GET /outbox): ?limit= and the
 * ?after= cursor, checked in one place so every list answers a bad one alike. */
#ifndef LLMOPS_PAGE_H
#define LLMOPS_PAGE_H

#include "db.h"
#include "http.h"

#include <jansson.h>
#include <stddef.h>

/* What a list's cursor is: next_cursor of its previous page. */
enum page_cursor {
    PAGE_CURSOR_ROW_ID, /* an integer >= 0 (an outbox id) */
    PAGE_CURSOR_JOB_ID, /* a training job id: job_ + 24 lowercase hex digits */
    PAGE_CURSOR_DEP_ID, /* a deployment id: dep_ + 24 lowercase hex digits */
};

struct page {
    long long limit;    /* ?limit=, 1..max, or the default */
    const char *after;  /* ?after= as given, or NULL */
    long long after_id; /* PAGE_CURSOR_ROW_ID: its value; else 0 */
};

/* Reads ?limit= and ?after= of r. Returns 0, or -1 after a 400 VALIDATION_FAILED naming the
 * parameter, what it was and what a cursor of this list looks like. */
int page_args(struct req *r, enum page_cursor cursor, long long def_limit, long long max_limit,
              struct page *out);

/* The 400 for a cursor of the right shape that names nothing in this list (a job id of
 * another environment, say). */
void page_unknown_cursor(struct req *r, enum page_cursor cursor, const char *after);

/* Reads ?state= of r into *state (NULL when absent). Returns 0, or -1 after a 400
 * VALIDATION_FAILED ("field": "state", "valid": the n states) for one not in `states`. */
int page_state_arg(struct req *r, const char *const *states, size_t n, const char **state);

/* The page of `res` (up to pg->limit + 1 rows, the id first): *list holds row(res, i, &bad) of
 * the first pg->limit rows, *next the id of the last of them when there was one more row,
 * else null (both the caller's). Returns bad: nonzero when a row could not be read. */
int page_rows(const PGresult *res, const struct page *pg,
              json_t *(*row)(const PGresult *res, int i, int *bad), json_t **list, json_t **next);

#endif
