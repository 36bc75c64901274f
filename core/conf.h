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

/* One key of a [plugin "NAME"] section, with where it was set. */
struct conf_kv {
    char *key;
    char *value;
    char *where; /* "file:line" */
};

/* A [plugin "NAME"] section: an instance of a module. */
struct conf_plugin {
    char *name;
    char *module;       /* the module key, or NULL */
    char *where;        /* "file:line" of the section header */
    struct conf_kv *kv; /* every key but module */
    int nkv;
};

/* One (environment, category) of a [flags "ENV"] section. */
struct conf_flag {
    char env[CONF_ENV_NAME_MAX + 1];
    int category; /* 1..5 */
    char *active; /* instance names or NULL */
    char *fallback;
    char *candidate;
    int rollout; /* percent of subjects sent to the candidate, 0..100 */
    char *where; /* "file:line" of the first key */
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
    long long access_log_flush_ms; /* standalone workers keep access lines up to this long */
    /* standalone workers: FastCGI connections each holds (kept by the web server, or waiting
     * for their first request), how long an idle one is kept, and how long one read or write
     * on a connection may wait */
    long long fastcgi_keep_max;
    long long fastcgi_keep_timeout;
    long long fastcgi_io_timeout_ms;
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
    /* [breaker] */
    long long breaker_window_seconds;
    long long breaker_min_calls;
    long long breaker_error_percent;
    long long breaker_open_seconds;
    int breaker_auto_close;
    int log_json; /* [server] log_format = json */
    /* [outbox] */
    long long outbox_max_attempts;
    long long outbox_base_delay_ms;
    long long outbox_max_delay_ms;
    long long outbox_keep_done_hours;
    /* [background]: what the background process prunes, how often, how much at a time */
    long long bg_prune_interval_seconds;
    long long bg_prune_batch;
    long long bg_keep_watches_hours;
    long long bg_keep_operations_hours;
    long long bg_keep_alert_events_days;
    long long bg_keep_deleted_deployments_days; /* 0: kept for ever */
    /* [metrics] */
    int metrics_enabled;
    char *metrics_path;
    char *metrics_shm_file;
    int metrics_require_token;
    char *metrics_allow;
    long long metrics_probe_interval;
    /* [plugin "NAME"] sections, in the order met */
    struct conf_plugin *plugins;
    int nplugins;
    /* [flags "ENV"] keys */
    struct conf_flag *flags;
    int nflags;
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

/* The [plugin "NAME"] section, or NULL. */
const struct conf_plugin *conf_plugin_find(const struct llmops_conf *conf, const char *name);
/* The configured flag of (env, category), or NULL. */
const struct conf_flag *conf_flag_find(const struct llmops_conf *conf, const char *env,
                                       int category);
/* Appends "file:line: message" (or "file: message" when line is 0) to errs. */
void conf_error(struct conf_errors *errs, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Index of env in the configured list, or -1. */
int conf_env_index(const struct llmops_conf *conf, const char *env);
/* "dev, stg, prod" into buf. */
void conf_env_list(const struct llmops_conf *conf, char *buf, size_t size);

#endif
