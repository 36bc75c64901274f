/* Pages of the platform's own lists (GET /training-jobs, GET /outbox): ?limit= and the
 * ?after= cursor, checked in one place so every list answers a bad one alike. */
#ifndef LLMOPS_PAGE_H
#define LLMOPS_PAGE_H

#include "http.h"

/* What a list's cursor is: next_cursor of its previous page. */
enum page_cursor {
    PAGE_CURSOR_ROW_ID, /* an integer >= 0 (an outbox id) */
    PAGE_CURSOR_JOB_ID, /* a training job id: job_ + 24 lowercase hex digits */
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

#endif
