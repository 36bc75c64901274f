/* --check-config: the configuration, every module it names (loaded, not initialised) and the
 * flags' instances and categories. */
#ifndef LLMOPS_CHECKCONF_H
#define LLMOPS_CHECKCONF_H

/* Prints every problem as file:line: message on stderr and returns 2, or prints
 * "configuration OK" and returns 0. */
int check_config(const char *path);

#endif
