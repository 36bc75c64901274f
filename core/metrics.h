/* Prometheus metrics shared by every process of a host: counters, gauges and histograms in
 * a memory-mapped file ([metrics] shm_file) updated with atomics, so GET /metrics sums all
 * workers, the master and the jobs process, also when the web server spawned the workers.
 * The series are listed in doc/metrics.md. */
#ifndef LLMOPS_METRICS_H
#define LLMOPS_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define METRICS_SLOTS 4096
#define METRICS_NAME_MAX 64
#define METRICS_LABELS_MAX 256
#define METRICS_BUCKETS 14

enum metric_kind { METRIC_COUNTER = 1, METRIC_GAUGE = 2, METRIC_HISTOGRAM = 3 };

/* Maps the metrics file. create = 1 (the master at a full start): a new, empty file. Else the
 * existing one, or a new one when there is none or it is not a metrics file of this layout.
 * When the file cannot be used, metrics stay in this process's memory (logged once).
 * Returns 0 when the file is shared, -1 when private memory is used. Calling it again
 * replaces the earlier mapping. */
int metrics_open(const char *path, int create);
/* A process that did not make the file (the jobs process) attaches again when `path` now
 * names another file (the master made a new one at a full restart) or when it had to count
 * privately and the file exists now. Returns 1 when it attached. */
int metrics_follow(const char *path);
/* Metrics off ([metrics] enabled = off): every update is a no-op. */
void metrics_disable(void);
int metrics_enabled(void);
/* Change counters in the same file, one per cache the workers keep: a process that changed
 * the cached data bumps its counter after the commit and before it answers; a worker that sees
 * a counter other than the one it saw last drops that cache before it serves the request, so
 * a client reads its own write back from any worker of the host (the LISTEN/NOTIFY
 * invalidation comes later and covers other hosts). Without a shared file (metrics off, or
 * it could not be made) a counter is this process's own, or absent (0). */
enum metrics_change {
    METRICS_CHANGE_TOKENS,
    METRICS_CHANGE_GPU_TYPES,
    METRICS_CHANGE_FLAGS,
    METRICS_CHANGE_KINDS
};
void metrics_change_bump(enum metrics_change what);
uint64_t metrics_change_count(enum metrics_change what);
/* The sum of the counters (bumped after the kind's): one load for the hot path. */
uint64_t metrics_change_total(void);
/* 1 while the metrics file is mapped (shared with the other processes of the host). */
int metrics_shared(void);

/* The Unix time the file was made. */
int64_t metrics_created(void);

/* `labels` is the rendered label set without braces (`route="/x",method="GET"`), or "".
 * Values must already be escaped (metrics_escape). */
void metrics_add(const char *name, const char *labels, double v);           /* counter */
void metrics_set(const char *name, const char *labels, double v);           /* gauge */
void metrics_gauge_add(const char *name, const char *labels, double v);     /* gauge, +/- */
void metrics_observe(const char *name, const char *labels, double seconds); /* histogram */

/* A series kept by the caller for the hot path: name and labels are hashed and compared
 * only when it is looked up (the first time, and again after the mapping changed).
 * Zero-initialise it. While metrics_ref_ready() says so, name and labels are not read (the
 * caller may skip rendering them and pass NULL). */
struct metrics_ref {
    void *slot;
    uint64_t generation;
};
int metrics_ref_ready(const struct metrics_ref *ref);
void metrics_ref_add(struct metrics_ref *ref, const char *name, const char *labels, double v);
void metrics_ref_observe(struct metrics_ref *ref, const char *name, const char *labels,
                         double seconds);

/* Writes a label value escaped for the text format (\ " and newline) into out. */
void metrics_escape(char *out, size_t size, const char *value);

/* The text format of every series (HELP and TYPE for the known names), malloc'd. `extra` is
 * appended verbatim (scrape-time gauges). */
char *metrics_render(const char *extra, size_t *len);

/* Outcome label of a plugin status (enum llmops_status). */
const char *metrics_outcome(int status);

/* [metrics] path: answers it (returns 1) or leaves the request to the router (0). Defined
 * in metrics_http.c, next to the exposition it serves. */
struct req;
int metrics_try_route(struct req *r);

#endif
