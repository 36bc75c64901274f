/* The five categories and their configuration/API names. */
#ifndef LLMOPS_CATEGORY_H
#define LLMOPS_CATEGORY_H

#include "llmops-plugin.h"

#define CATEGORY_COUNT 5

/* "experiment_tracking", ... for 1..5; NULL otherwise. */
const char *category_name(int category);
/* 1..5, or -1. */
int category_from_string(const char *s);
/* "experiment_tracking, serving, ..." */
const char *category_list(void);

#endif
