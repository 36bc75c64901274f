/* Configuration: llm-ops.conf plus the conf.d drop-ins, INI parsed by libinih. */
#ifndef LLMOPS_CONF_H
#define LLMOPS_CONF_H

#include "log.h"

#include <stddef.h>

#define CONF_MAX_ENVS 16
#define CONF_ENV_NAME_MAX 32

struct conf_errors {
    char **msgs; /* each "file:line: message" */
    int n;
};

struct llmops_conf {
    char *path; /* main file */
    /* [server] */
    char envs[CONF_MAX_ENVS][CONF_ENV_NAME_MAX + 1];
    int n_envs;
    char default_env[CONF_ENV_NAME_MAX + 1];
    char *listen;
    char *listen_group;
    long long listen_mode;
    long long workers;
    char *pid_file;
    long long shutdown_timeout;
    long long max_body_bytes;
    int access_log;
    enum log_level log_level;
    char *plugin_dir;
    /* [database] */
    char *db_conninfo;
    long long db_connect_timeout_ms;
    long long db_query_timeout_ms;
    char *migrations_dir;
    /* [auth] */
    long long token_cache_seconds;
    /* [gpu_types] */
    char *seed_file;
};

/* Loads path and the conf.d/ drop-ins beside it. Returns 0, or the number of problems, each
 * appended to errs (which the caller frees with conf_errors_free). conf is always filled with
 * defaults at least and must be freed with conf_free. */
int conf_load(const char *path, struct llmops_conf *conf, struct conf_errors *errs);
/* Parses one buffer as if it were the file `name` (used by tests and the fuzzer). */
int conf_load_buffer(const char *name, const char *text, struct llmops_conf *conf,
                     struct conf_errors *errs);
void conf_free(struct llmops_conf *conf);
void conf_errors_free(struct conf_errors *errs);

/* Index of env in the configured list, or -1. */
int conf_env_index(const struct llmops_conf *conf, const char *env);
/* "dev, stg, prod" into buf. */
void conf_env_list(const struct llmops_conf *conf, char *buf, size_t size);

#endif
