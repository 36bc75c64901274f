/* Logging to stderr, one line per event: "llm-opsd[PID]: LEVEL: message". */
#ifndef LLMOPS_LOG_H
#define LLMOPS_LOG_H

enum log_level { LOG_LVL_DEBUG, LOG_LVL_INFO, LOG_LVL_WARNING, LOG_LVL_ERROR, LOG_LVL_SILENT };

void log_set_program(const char *name);
void log_set_level(enum log_level level);
int log_level_from_string(const char *s, enum log_level *out);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_LVL_WARNING, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)

/* An access line; written whole with one write(2) so workers do not interleave. */
void log_access(const char *method, const char *route, int status, long long duration_us,
                const char *request_id);
/* Call in a child after fork(): the cached pid is the parent's. */
void log_forked(void);

#endif
