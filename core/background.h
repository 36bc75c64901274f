/* The background process (llm-opsd --background, or --jobs, its old name): beside the
 * FastCGI workers, it delivers the outbox, probes the tools and prunes kept rows. "Jobs" in
 * this project are training jobs (training_jobs.c); this process is not one. */
#ifndef LLMOPS_BACKGROUND_H
#define LLMOPS_BACKGROUND_H

#include "app.h"

/* Runs until SIGTERM or SIGINT; returns the process's exit status (2: configuration). */
int background_run(const char *config_path);

/* Every [metrics] probe_interval_seconds: each instance's health, as llmops_tool_up,
 * llmops_tool_probe_duration_seconds and llmops_tool_probes_total (probes.c). */
void probes_run(struct app *app);

/* What each category delivers through the outbox (outbox_register), registered when the
 * background process starts. */
int tracking_outbox_register(void);
/* What tracking keeps for a while (log bodies, abandoned experiment reservations) pruned. */
void tracking_prune(struct app *app);

#endif
