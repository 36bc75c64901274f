/* llm-opsctl doctor: configuration, database and migration level, every instance's
 * reachability and tool version against its module's range, and the flags. */
#ifndef LLMOPS_DOCTOR_H
#define LLMOPS_DOCTOR_H

#include "conf.h"

#include <stdio.h>

/* Prints a table (CHECK STATE DETAIL) and a verdict to out. Returns 0 when nothing failed
 * (warnings allowed), 1 when a check failed. */
int doctor_run(const char *config_path, const struct llmops_conf *conf, FILE *out);

#endif
