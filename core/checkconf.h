/* --check-config: the configuration, every module it names (loaded, not initialised) and the
 * flags' instances and categories. */
#ifndef LLMOPS_CHECKCONF_H
#define LLMOPS_CHECKCONF_H

/* Prints every problem as file:line: message on stderr and returns 2, or prints
 * "configuration OK" and returns 0. */
int check_config(const char *path);

struct llmops_conf;
struct conf_errors;
/* The checks beyond the INI layer, for an already loaded configuration: every module loaded
 * (not initialised) with its keys, and the flags' instances and categories. Returns the
 * number of problems, appended to errs. */
int check_config_modules(const struct llmops_conf *conf, struct conf_errors *errs);

#endif
