/* Conformance: every plugin of a category passes the same suite, custom and open-source
 * alike. The runner loads one instance from a configuration; each suite gets it here. */
#ifndef LLMOPS_CONFORMANCE_H
#define LLMOPS_CONFORMANCE_H

#include "plugin.h"

#include <check.h>

/* The instance under test (initialised), set by the runner before the suites run. */
extern struct instance *conformance_instance;

Suite *conformance_common(void);
/* The category's own suite; NULL when the category has none yet. */
Suite *conformance_category(int category);

#endif
