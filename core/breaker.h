/* A circuit breaker per instance over a sliding window of call outcomes. */
#ifndef LLMOPS_BREAKER_H
#define LLMOPS_BREAKER_H

#include <stdint.h>

#define BREAKER_BUCKETS 60

enum breaker_state { BREAKER_CLOSED, BREAKER_OPEN, BREAKER_HALF_OPEN };

struct breaker {
    enum breaker_state state;
    int64_t bucket_ms; /* width of one bucket */
    int64_t epoch[BREAKER_BUCKETS];
    unsigned calls[BREAKER_BUCKETS];
    unsigned failures[BREAKER_BUCKETS];
    int64_t opened_ms;
    unsigned trips;
};

struct breaker_policy {
    int64_t window_ms;
    unsigned min_calls;
    unsigned error_percent;
    int64_t open_ms;
};

void breaker_init(struct breaker *b, const struct breaker_policy *p);
/* Records one call. Returns 1 when this call made the breaker open. */
int breaker_record(struct breaker *b, const struct breaker_policy *p, int failed, int64_t now_ms);
/* Calls and failures in the window. */
void breaker_window(const struct breaker *b, int64_t now_ms, unsigned *calls, unsigned *failures);
/* OPEN for at least open_ms: time to probe (the state becomes HALF_OPEN). */
int breaker_probe_due(struct breaker *b, const struct breaker_policy *p, int64_t now_ms);
/* The probe's outcome: success closes, failure reopens. */
void breaker_probed(struct breaker *b, int ok, int64_t now_ms);
const char *breaker_state_name(enum breaker_state s);

#endif
