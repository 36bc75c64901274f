/* Conformance: every plugin of a category passes the same suite, custom and open-source
 * alike. The runner loads one instance from a configuration; each suite gets it here. */
#ifndef LLMOPS_CONFORMANCE_H
#define LLMOPS_CONFORMANCE_H

#include "plugin.h"

#include <check.h>

/* The instance under test (initialised), set by the runner before the suites run. */
extern struct instance *conformance_instance;

Suite *conformance_common(void);
/* The category's interface suite: capabilities name the operations of its header. */
Suite *conformance_category(int category);
/* The category's behaviour suite; NULL when the category has none yet. */
Suite *conformance_behaviour(int category);
Suite *conformance_tracking(void); /* tracking.c */
Suite *conformance_serving(void);  /* serving.c */
/* A module's own promises beyond its category's interface; NULL when it has none. */
Suite *conformance_module(const char *module);

#endif
