#include "breaker.h"

#include <string.h>

void breaker_init(struct breaker *b, const struct breaker_policy *p)
{
    memset(b, 0, sizeof *b);
    b->bucket_ms = p->window_ms / BREAKER_BUCKETS;
    if (b->bucket_ms < 1)
        b->bucket_ms = 1;
    for (int i = 0; i < BREAKER_BUCKETS; i++)
        b->epoch[i] = -1;
}

void breaker_window(const struct breaker *b, int64_t now_ms, unsigned *calls, unsigned *failures)
{
    int64_t cur = now_ms / b->bucket_ms;
    *calls = *failures = 0;
    for (int i = 0; i < BREAKER_BUCKETS; i++) {
        if (b->epoch[i] >= 0 && cur - b->epoch[i] < BREAKER_BUCKETS) {
            *calls += b->calls[i];
            *failures += b->failures[i];
        }
    }
}

int breaker_record(struct breaker *b, const struct breaker_policy *p, int failed, int64_t now_ms)
{
    int64_t e = now_ms / b->bucket_ms;
    int i = (int)(e % BREAKER_BUCKETS);
    if (b->epoch[i] != e) {
        b->epoch[i] = e;
        b->calls[i] = b->failures[i] = 0;
    }
    b->calls[i]++;
    if (failed)
        b->failures[i]++;
    if (b->state != BREAKER_CLOSED)
        return 0;
    unsigned calls, failures;
    breaker_window(b, now_ms, &calls, &failures);
    if (calls >= p->min_calls && failures * 100 >= p->error_percent * calls) {
        b->state = BREAKER_OPEN;
        b->opened_ms = now_ms;
        b->trips++;
        return 1;
    }
    return 0;
}

int breaker_probe_due(struct breaker *b, const struct breaker_policy *p, int64_t now_ms)
{
    if (b->state == BREAKER_OPEN && now_ms - b->opened_ms >= p->open_ms) {
        b->state = BREAKER_HALF_OPEN;
        return 1;
    }
    return 0;
}

void breaker_probed(struct breaker *b, int ok, int64_t now_ms)
{
    if (ok) {
        b->state = BREAKER_CLOSED;
        for (int i = 0; i < BREAKER_BUCKETS; i++)
            b->epoch[i] = -1; /* a fresh window */
    } else {
        b->state = BREAKER_OPEN;
        b->opened_ms = now_ms;
    }
}

const char *breaker_state_name(enum breaker_state s)
{
    return s == BREAKER_CLOSED ? "closed" : s == BREAKER_OPEN ? "open" : "half_open";
}
