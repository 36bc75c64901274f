/* Conformance: every plugin of a category passes the same suite, custom and open-source
 * alike. llmops-conformance (runner.c) loads one instance of a module through the server's
 * own loader and host table; each suite gets it here.
 *
 * Adding a category's suite: write CATEGORY.c with `Suite *conformance_CATEGORY(void)`
 * (see tracking.c), declare it below, name it in that category's row of the table in
 * categories.c, and add the file to CMakeLists.txt. A module's own suite (promises beyond its
 * category's, like tracking_pg.c) goes into the module table at the end of categories.c. */
#ifndef LLMOPS_CONFORMANCE_H
#define LLMOPS_CONFORMANCE_H

#include "plugin.h"

#include <check.h>

/* The instance under test (initialised), set by the runner before the suites run. */
extern struct instance *conformance_instance;

/* An operation of a category interface, from its header's X-list. */
struct conformance_op {
    const char *name;
    int required;
};

/* One category: its interface's operations and its behaviour suite (NULL: none yet). */
struct conformance_category {
    int category;           /* LLMOPS_CATEGORY_* */
    const char *suite_name; /* the behaviour suite's name, for --list; NULL with no suite */
    const struct conformance_op *ops;
    Suite *(*behaviour)(void);
};

/* A module's own suite, beyond its category's interface. */
struct conformance_module_suite {
    const char *module;
    Suite *(*suite)(void);
};

extern const struct conformance_category conformance_categories[];  /* ends with category 0 */
extern const struct conformance_module_suite conformance_modules[]; /* ends with NULL module */

/* The category's row, or NULL. */
const struct conformance_category *conformance_category_find(int category);

Suite *conformance_common(void);               /* common.c: every module */
Suite *conformance_interface(int category);    /* categories.c: capabilities name the ops */
Suite *conformance_behaviour(int category);    /* the category's suite, or NULL */
Suite *conformance_module(const char *module); /* the module's own suite, or NULL */

/* The behaviour suites, one file each. */
Suite *conformance_tracking(void);    /* tracking.c */
Suite *conformance_tracking_pg(void); /* tracking_pg.c: the tracking-pg module's own */
Suite *conformance_serving(void);     /* serving.c */

#endif
