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
/* Keep access lines (text or JSON) and write them together: when the oldest kept line is
 * flush_ms old (checked as lines come), when 16 KiB are kept, before any event line, and at
 * log_flush(), which the caller must call before it waits for work and before it exits.
 * flush_ms = 0 (the default) writes each line at once. */
void log_access_buffer(int flush_ms);
void log_flush(void);
/* JSON lines instead of text ([server] log_format = json): one object per line with ts,
 * level (or type "access"), program, pid, msg, and request_id / instance when known. */
void log_set_json(int on);
/* The request being served (its id goes into event lines in JSON mode), or NULL. */
void log_set_request(const char *request_id);
/* Notes that the current request called a plugin instance (JSON access lines list them). */
void log_note_instance(const char *instance);
/* An event of a plugin instance: "instance NAME: ..." in text, an instance member in JSON. */
void log_instance(enum log_level level, const char *instance, const char *msg);
/* Call in a child after fork(): the cached pid is the parent's. */
void log_forked(void);

#endif
