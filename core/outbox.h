/* The outbox: tool writes that can wait (a training job's run, the values logged to it),
 * delivered by the jobs process in order per object, with exponential backoff and full
 * jitter, idempotently, and dead-lettered after [outbox] max_attempts. */
#ifndef LLMOPS_OUTBOX_H
#define LLMOPS_OUTBOX_H

#include "app.h"

#define OUTBOX_CHANNEL "llmops_outbox"

/* Delivers due rows, one transaction each (claimed FOR UPDATE SKIP LOCKED, so several jobs
 * processes may run), until none is due or `max` were tried. Returns the number of rows
 * tried, or -1 when the database failed. */
int outbox_run_once(struct app *app, int max);

/* The delay before attempt `attempts` + 1: min(max, base * 2^attempts), with jitter drawn
 * from its upper half, in milliseconds. */
long long outbox_backoff_ms(const struct llmops_conf *conf, int attempts);

/* llm-opsd --jobs: delivers the outbox and probes open breakers until SIGTERM. */
int jobs_process_run(const char *config_path);

#endif
