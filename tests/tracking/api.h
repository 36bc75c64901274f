/* A small HTTP client for the tracking tests: JSON in, envelope out, through the stack's
 * lighttpd (libcurl). */
#ifndef LLMOPS_TRACKING_TEST_API_H
#define LLMOPS_TRACKING_TEST_API_H

#include <jansson.h>

struct stack {
    char dir[256];
    char url[256];
    char admin[160], operator_[160], reader[160];
    char conf[300];
};

/* Starts tests/harness/stack in a fresh temp dir with extra stack options; aborts on failure. */
void stack_start(struct stack *s, const char *tag, const char *options);
void stack_stop(struct stack *s);

/* One call: returns the parsed envelope (never NULL: {} when the body was not JSON) and the
 * HTTP status in *status. body_fmt may be NULL (no body); otherwise printf-formatted JSON. */
json_t *api(const struct stack *s, int *status, const char *token, const char *method,
            const char *path, const char *body_fmt, ...) __attribute__((format(printf, 6, 7)));
/* The same with a prepared body. */
json_t *api_json(const struct stack *s, int *status, const char *token, const char *method,
                 const char *path, json_t *body);

/* Any URL: the answer's body as text (malloc'd, never NULL), its status and Content-Type
 * (ctype may be NULL). token, header (one extra "Name: value" line) and body (JSON) may be
 * NULL. Aborts the test when no answer came. */
char *http_text(const char *method, const char *url, const char *token, const char *header,
                const char *body, int *status, char *ctype, size_t ctsize);

/* data.<dotted path> of an envelope ("data.id", "data.tracking.state"); NULL when absent. */
json_t *jpath(json_t *j, const char *path);
const char *jstr(json_t *j, const char *path);

double now_s(void);
void sleep_ms(int ms);
/* The port a fake started with --ready-file `path` wrote there, waited for up to 20 s; the
 * test fails with "`what` did not start" when none came. */
int ready_port(const char *path, const char *what);
/* A short random suffix so names never collide between runs. */
const char *uniq(void);

#endif
