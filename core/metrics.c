#include "metrics.h"

#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAGIC "llmopsM2" /* M2: the change counters */

static const double bucket_le[METRICS_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                  0.1,    0.25,  0.5,    1,     2.5,  5,     10};

enum { SLOT_EMPTY = 0, SLOT_CLAIMING = 1, SLOT_READY = 2 };

struct slot {
    uint32_t state; /* atomic */
    uint32_t kind;
    uint64_t hash;
    char name[METRICS_NAME_MAX];
    char labels[METRICS_LABELS_MAX];
    uint64_t value; /* atomic: double bits (counter, gauge) or histogram sum */
    uint64_t count; /* atomic: histogram observations */
    uint64_t buckets[METRICS_BUCKETS];
};

struct head {
    char magic[8];
    uint32_t nslots;
    uint32_t slot_size;
    int64_t created;
    uint32_t full_warned;
    uint32_t pad;
    uint64_t changes[METRICS_CHANGE_KINDS + 1]; /* atomic: metrics_change_bump; last: all */
    struct slot slots[METRICS_SLOTS];
};

static struct head *H;
static int disabled;
static int shared;
static dev_t mapped_dev;
static ino_t mapped_ino;
/* Bumped whenever H changes: a struct metrics_ref of an older generation is looked up again. */
static uint64_t generation = 1;

/* A small per-process cache: hash of name+labels -> slot, so the hot path probes once. */
#define CACHE_SIZE 512
static struct {
    uint64_t hash;
    struct slot *slot;
} cache[CACHE_SIZE];

static void init_head(struct head *h)
{
    memset(h, 0, sizeof *h);
    h->nslots = METRICS_SLOTS;
    h->slot_size = sizeof(struct slot);
    h->created = (int64_t)time(NULL);
    memcpy(h->magic, MAGIC, 8); /* last: a reader sees a whole header or none */
}

static int valid_head(const struct head *h)
{
    return memcmp(h->magic, MAGIC, 8) == 0 && h->nslots == METRICS_SLOTS &&
           h->slot_size == sizeof(struct slot);
}

static void use_private(const char *why)
{
    static struct head *mem;
    if (!mem)
        mem = calloc(1, sizeof *mem);
    if (mem && !valid_head(mem))
        init_head(mem);
    if (H != mem)
        generation++;
    H = mem;
    shared = 0;
    if (why)
        log_warning("metrics: %s: counting in this process only", why);
}

int metrics_open(const char *path, int create)
{
    memset(cache, 0, sizeof cache);
    generation++;
    if (H && shared)
        munmap(H, sizeof *H);
    H = NULL;
    if (!path || !*path) {
        use_private(NULL);
        return -1;
    }
    char why[512];
    int fd = -1;
    if (create) {
        /* A new file under a temporary name, renamed into place: processes still mapping the
         * old one keep it until they attach again. */
        char tmp[4200];
        snprintf(tmp, sizeof tmp, "%s.%d", path, (int)getpid());
        fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd >= 0 && (ftruncate(fd, sizeof *H) < 0 || rename(tmp, path) < 0)) {
            snprintf(why, sizeof why, "cannot make %s: %s", path, strerror(errno));
            close(fd);
            unlink(tmp);
            use_private(why);
            return -1;
        }
    } else {
        fd = open(path, O_RDWR | O_CLOEXEC);
        struct stat st;
        if (fd >= 0 && (fstat(fd, &st) < 0 || (size_t)st.st_size != sizeof *H)) {
            close(fd);
            fd = -1;
        }
        if (fd < 0) {
            /* none yet (the web server spawned us), or another layout: make it; O_EXCL so
             * only one of several starting processes does */
            char tmp[4200];
            snprintf(tmp, sizeof tmp, "%s.%d", path, (int)getpid());
            int nfd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
            if (nfd >= 0 && ftruncate(nfd, sizeof *H) == 0) {
                struct head *h = mmap(NULL, sizeof *h, PROT_READ | PROT_WRITE, MAP_SHARED, nfd, 0);
                if (h != MAP_FAILED) {
                    init_head(h);
                    munmap(h, sizeof *h);
                    if (link(tmp, path) < 0 && errno == EEXIST) {
                        /* someone else made one meanwhile: use theirs if it is good */
                        int ofd = open(path, O_RDWR | O_CLOEXEC);
                        if (ofd >= 0 && fstat(ofd, &st) == 0 && (size_t)st.st_size == sizeof *H) {
                            close(nfd);
                            nfd = ofd;
                        } else {
                            if (ofd >= 0)
                                close(ofd);
                            rename(tmp, path);
                        }
                    }
                }
            }
            unlink(tmp);
            fd = nfd;
        }
    }
    if (fd < 0) {
        snprintf(why, sizeof why, "cannot open %s: %s", path, strerror(errno));
        use_private(why);
        return -1;
    }
    struct stat fst;
    if (fstat(fd, &fst) == 0) {
        mapped_dev = fst.st_dev;
        mapped_ino = fst.st_ino;
    }
    struct head *h = mmap(NULL, sizeof *h, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (h == MAP_FAILED) {
        snprintf(why, sizeof why, "cannot map %s: %s", path, strerror(errno));
        use_private(why);
        return -1;
    }
    if (!valid_head(h))
        init_head(h);
    H = h;
    shared = 1;
    return 0;
}

int metrics_follow(const char *path)
{
    if (disabled || !path || !*path)
        return 0;
    struct stat st;
    if (stat(path, &st) != 0)
        return 0;
    if (shared && st.st_dev == mapped_dev && st.st_ino == mapped_ino)
        return 0;
    return metrics_open(path, 0) == 0;
}

void metrics_disable(void)
{
    disabled = 1;
}

int metrics_enabled(void)
{
    return !disabled;
}

void metrics_change_bump(enum metrics_change what)
{
    /* Not subject to [metrics] enabled: H is whatever is mapped (the file, or nothing). */
    if (H && (unsigned)what < METRICS_CHANGE_KINDS) {
        __atomic_add_fetch(&H->changes[what], 1, __ATOMIC_SEQ_CST);
        __atomic_add_fetch(&H->changes[METRICS_CHANGE_KINDS], 1, __ATOMIC_SEQ_CST);
    }
}

uint64_t metrics_change_total(void)
{
    return H ? __atomic_load_n(&H->changes[METRICS_CHANGE_KINDS], __ATOMIC_SEQ_CST) : 0;
}

uint64_t metrics_change_count(enum metrics_change what)
{
    if (!H || (unsigned)what >= METRICS_CHANGE_KINDS)
        return 0;
    return __atomic_load_n(&H->changes[what], __ATOMIC_SEQ_CST);
}

int metrics_shared(void)
{
    return shared;
}

int64_t metrics_created(void)
{
    return H ? H->created : 0;
}

static uint64_t fnv(const char *a, const char *b)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *a; a++)
        h = (h ^ (unsigned char)*a) * 1099511628211ULL;
    h = (h ^ '{') * 1099511628211ULL;
    for (; *b; b++)
        h = (h ^ (unsigned char)*b) * 1099511628211ULL;
    return h | 1; /* never 0 */
}

static struct slot *find(const char *name, const char *labels, enum metric_kind kind)
{
    if (disabled)
        return NULL;
    if (!H)
        use_private(NULL);
    if (!H)
        return NULL;
    uint64_t h = fnv(name, labels);
    unsigned ci = (unsigned)(h % CACHE_SIZE);
    struct slot *s = cache[ci].slot;
    if (s && cache[ci].hash == h && strcmp(s->name, name) == 0 && strcmp(s->labels, labels) == 0)
        return s;
    if (strlen(name) >= METRICS_NAME_MAX || strlen(labels) >= METRICS_LABELS_MAX)
        return NULL;
    for (unsigned i = 0; i < METRICS_SLOTS; i++) {
        s = &H->slots[(h + i) % METRICS_SLOTS];
        uint32_t st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
        if (st == SLOT_EMPTY) {
            uint32_t expect = SLOT_EMPTY;
            if (__atomic_compare_exchange_n(&s->state, &expect, SLOT_CLAIMING, 0, __ATOMIC_ACQ_REL,
                                            __ATOMIC_ACQUIRE)) {
                s->hash = h;
                s->kind = (uint32_t)kind;
                snprintf(s->name, sizeof s->name, "%s", name);
                snprintf(s->labels, sizeof s->labels, "%s", labels);
                __atomic_store_n(&s->state, SLOT_READY, __ATOMIC_RELEASE);
                cache[ci].hash = h;
                cache[ci].slot = s;
                return s;
            }
            st = expect;
        }
        if (st == SLOT_CLAIMING) {
            /* another process is writing this slot's key: wait a little for it */
            for (int spin = 0; spin < 100000 && st == SLOT_CLAIMING; spin++)
                st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
            if (st != SLOT_READY)
                continue; /* it died while claiming: the slot is lost, go on */
        }
        if (s->hash == h && strcmp(s->name, name) == 0 && strcmp(s->labels, labels) == 0) {
            cache[ci].hash = h;
            cache[ci].slot = s;
            return s;
        }
    }
    if (!__atomic_exchange_n(&H->full_warned, 1, __ATOMIC_RELAXED))
        log_warning("metrics: all %d series slots are used; new series are dropped", METRICS_SLOTS);
    return NULL;
}

static void add_double(uint64_t *p, double v)
{
    uint64_t old = __atomic_load_n(p, __ATOMIC_RELAXED), neu;
    do {
        double d;
        memcpy(&d, &old, sizeof d);
        d += v;
        memcpy(&neu, &d, sizeof neu);
    } while (!__atomic_compare_exchange_n(p, &old, neu, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
}

void metrics_add(const char *name, const char *labels, double v)
{
    struct slot *s = find(name, labels, METRIC_COUNTER);
    if (s)
        add_double(&s->value, v);
}

void metrics_gauge_add(const char *name, const char *labels, double v)
{
    struct slot *s = find(name, labels, METRIC_GAUGE);
    if (s)
        add_double(&s->value, v);
}

void metrics_set(const char *name, const char *labels, double v)
{
    struct slot *s = find(name, labels, METRIC_GAUGE);
    if (!s)
        return;
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    __atomic_store_n(&s->value, bits, __ATOMIC_RELAXED);
}

static void observe(struct slot *s, double seconds)
{
    if (!s)
        return;
    for (int i = 0; i < METRICS_BUCKETS; i++) {
        if (seconds <= bucket_le[i]) {
            __atomic_add_fetch(&s->buckets[i], 1, __ATOMIC_RELAXED);
            break;
        }
    }
    __atomic_add_fetch(&s->count, 1, __ATOMIC_RELAXED);
    add_double(&s->value, seconds);
}

void metrics_observe(const char *name, const char *labels, double seconds)
{
    observe(find(name, labels, METRIC_HISTOGRAM), seconds);
}

int metrics_ref_ready(const struct metrics_ref *ref)
{
    return ref->slot && ref->generation == generation && !disabled;
}

/* The series of ref, found again when the mapping changed since it was kept. */
static struct slot *ref_slot(struct metrics_ref *ref, const char *name, const char *labels,
                             enum metric_kind kind)
{
    if (ref->generation != generation || !ref->slot) {
        if (disabled || !name || !labels)
            return NULL;
        ref->slot = find(name, labels, kind);
        ref->generation = generation;
    }
    return ref->slot;
}

void metrics_ref_add(struct metrics_ref *ref, const char *name, const char *labels, double v)
{
    struct slot *s = ref_slot(ref, name, labels, METRIC_COUNTER);
    if (s)
        add_double(&s->value, v);
}

void metrics_ref_observe(struct metrics_ref *ref, const char *name, const char *labels,
                         double seconds)
{
    observe(ref_slot(ref, name, labels, METRIC_HISTOGRAM), seconds);
}

void metrics_escape(char *out, size_t size, const char *value)
{
    size_t o = 0;
    for (const char *p = value ? value : ""; *p && o + 3 < size; p++) {
        if (*p == '\\' || *p == '"') {
            out[o++] = '\\';
            out[o++] = *p;
        } else if (*p == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else {
            out[o++] = *p;
        }
    }
    out[o] = '\0';
}

/* ------------------------------------------------------------------ rendering */

static const struct {
    const char *name, *help;
} helps[] = {
    {"llmops_http_requests_total",
     "HTTP requests answered, by route pattern, method and status class."},
    {"llmops_http_request_duration_seconds", "Time from a request's start to its answer."},
    {"llmops_plugin_calls_total",
     "Calls to plugin operations, by instance, category, operation and outcome."},
    {"llmops_plugin_call_duration_seconds", "Duration of calls to plugin operations."},
    {"llmops_tool_up", "1 when the last health probe of the instance's tool succeeded, else 0."},
    {"llmops_tool_probe_duration_seconds",
     "Duration of the last health probe of the instance's tool."},
    {"llmops_tool_probes_total", "Health probes of the instance's tool made by the jobs process."},
    {"llmops_tool_last_probe_timestamp_seconds",
     "Unix time of the jobs process's last health probe of the instance's tool."},
    {"llmops_breaker_open",
     "Processes in which the instance's circuit breaker is open (0 when closed everywhere)."},
    {"llmops_breaker_trips_total", "Times the instance's circuit breaker opened."},
    {"llmops_flag_evaluations_total", "New objects routed by a feature flag to an instance."},
    {"llmops_flag_fallbacks_total", "Times the traffic of a flag was moved to its fallback."},
    {"llmops_alerts_received_total", "Alerts received from Alertmanager's webhook, by status."},
    {"llmops_alert_actions_total",
     "What alerts received for the first time made happen, by action and result."},
    {"llmops_outbox_dead_letters_total", "Outbox rows that became dead."},
    {"llmops_outbox_deliveries_total",
     "Outbox delivery attempts, by category, operation and outcome."},
    {"llmops_canary_transitions_total",
     "Canary changes of deployments, by environment, action and trigger."},
    {"llmops_database_reconnects_total", "Reconnections to PostgreSQL, all processes."},
};

struct buf {
    char *p;
    size_t n, cap;
    int oom;
};

static void put(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct buf *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int w = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
        va_end(ap);
        if (w < 0) {
            b->oom = 1;
            return;
        }
        if ((size_t)w < b->cap - b->n) {
            b->n += (size_t)w;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)w;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
}

static void put_value(struct buf *b, double v)
{
    if (v == floor(v) && fabs(v) < 1e15)
        put(b, "%.0f\n", v);
    else
        put(b, "%.15g\n", v);
}

static const char *kind_name(uint32_t k)
{
    return k == METRIC_COUNTER ? "counter" : k == METRIC_GAUGE ? "gauge" : "histogram";
}

static int by_name(const void *a, const void *b)
{
    const struct slot *x = *(struct slot *const *)a, *y = *(struct slot *const *)b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->labels, y->labels);
}

char *metrics_render(const char *extra, size_t *len)
{
    struct buf b = {malloc(65536), 0, 65536, 0};
    if (!b.p)
        return NULL;
    b.p[0] = '\0';
    struct slot **list = calloc(METRICS_SLOTS, sizeof *list);
    int n = 0;
    for (int i = 0; H && list && i < METRICS_SLOTS; i++)
        if (__atomic_load_n(&H->slots[i].state, __ATOMIC_ACQUIRE) == SLOT_READY)
            list[n++] = &H->slots[i];
    if (list)
        qsort(list, (size_t)n, sizeof *list, by_name);
    const char *last = "";
    for (int i = 0; i < n; i++) {
        struct slot *s = list[i];
        if (strcmp(s->name, last) != 0) {
            for (size_t k = 0; k < UTIL_ARRAY_LEN(helps); k++)
                if (strcmp(helps[k].name, s->name) == 0)
                    put(&b, "# HELP %s %s\n", s->name, helps[k].help);
            put(&b, "# TYPE %s %s\n", s->name, kind_name(s->kind));
            last = s->name;
        }
        uint64_t bits = __atomic_load_n(&s->value, __ATOMIC_RELAXED);
        double v;
        memcpy(&v, &bits, sizeof v);
        const char *sep = s->labels[0] ? "," : "";
        if (s->kind != METRIC_HISTOGRAM) {
            if (s->kind == METRIC_GAUGE && strcmp(s->name, "llmops_breaker_open") == 0)
                v = v > 0 ? 1 : 0; /* a process that died open cannot close its share */
            put(&b, "%s%s%s%s ", s->name, s->labels[0] ? "{" : "", s->labels,
                s->labels[0] ? "}" : "");
            put_value(&b, v);
            continue;
        }
        uint64_t cum = 0;
        for (int k = 0; k < METRICS_BUCKETS; k++) {
            cum += __atomic_load_n(&s->buckets[k], __ATOMIC_RELAXED);
            put(&b, "%s_bucket{%s%sle=\"%g\"} %llu\n", s->name, s->labels, sep, bucket_le[k],
                (unsigned long long)cum);
        }
        uint64_t count = __atomic_load_n(&s->count, __ATOMIC_RELAXED);
        put(&b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", s->name, s->labels, sep,
            (unsigned long long)count);
        put(&b, "%s_sum%s%s%s ", s->name, s->labels[0] ? "{" : "", s->labels,
            s->labels[0] ? "}" : "");
        put_value(&b, v);
        put(&b, "%s_count%s%s%s %llu\n", s->name, s->labels[0] ? "{" : "", s->labels,
            s->labels[0] ? "}" : "", (unsigned long long)count);
    }
    free(list);
    if (extra)
        put(&b, "%s", extra);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    *len = b.n;
    return b.p;
}

const char *metrics_outcome(int status)
{
    static const char *const names[] = {"ok",          "invalid",    "not_found",   "conflict",
                                        "unavailable", "tool_error", "unsupported", "internal"};
    return status >= 0 && status < (int)UTIL_ARRAY_LEN(names) ? names[status] : "internal";
}
