/* llm-opsctl sync tracking: one experiment_tracking instance into another, idempotently. */
#ifndef LLMOPS_SYNC_H
#define LLMOPS_SYNC_H

#include "plugin.h"

#include <stddef.h>

struct sync_counts {
    long experiments_created, experiments_existing;
    long runs_created, runs_existing;
    long params, tags; /* set on the target (or that would be, with dry_run) */
    long points_copied, points_existing;
};

/* Copies the active experiments of `from` (only the one named `experiment` when not NULL)
 * with their active runs, params, tags, metric histories and final statuses into `to`.
 * dry_run: reads only and counts what would be copied. A progress line goes to stderr when
 * it is a terminal. Returns 0, or -1 with error filled (what was copied stays: run again). */
int sync_tracking(struct instance *from, struct instance *to, const char *experiment, int dry_run,
                  struct sync_counts *counts, char *error, size_t errsize);

#endif
