/* The mock host of the plugin developer kit — see llmops-mock-host.h. Written against the
 * public header only: nothing here comes from core/. */
#include "llmops-mock-host.h"

#include <curl/curl.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <ini.h>
#include <libpq-fe.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define MOCK_LOG_MAX 1024
#define MOCK_METRICS 32
#define MOCK_METRIC_NAME 48

struct kv {
    char *key, *value, *where;
};

struct canned {
    char *method, *path, *headers, *body;
    int status;
    int used;
};

struct recorded {
    struct llmops_mock_request r;
    char *method, *endpoint, *path, *headers, *body, *content_type;
};

struct logline {
    enum llmops_log_level level;
    char *text;
};

struct metric {
    char name[MOCK_METRIC_NAME];
    double value;
};

struct llmops_mock {
    struct llmops_host host; /* first: the host pointer is the mock */
    char *instance, *module;
    struct kv *kv;
    size_t nkv;
    struct logline logs[MOCK_LOG_MAX];
    size_t nlogs;
    int echo;
    struct canned *canned;
    size_t ncanned;
    struct recorded *reqs;
    size_t nreqs;
    int real_http;
    int http_open;
    struct metric metrics[MOCK_METRICS];
    int nmetrics, metric_refused;
    char *conninfo;
    PGconn *pg;
    int db_open;
    void **dls;
    size_t ndls;
};

static struct llmops_mock *mock_of(const struct llmops_host *h)
{
    return (struct llmops_mock *)(void *)h;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void put(char *msg, size_t size, const char *fmt, ...) LLMOPS_PRINTF(3, 4);
static void put(char *msg, size_t size, const char *fmt, ...)
{
    if (!msg || size == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, size, fmt, ap);
    va_end(ap);
}

static int failf(struct llmops_error *err, enum llmops_status code, const char *fmt, ...)
    LLMOPS_PRINTF(3, 4);
static int failf(struct llmops_error *err, enum llmops_status code, const char *fmt, ...)
{
    char m[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    return llmops_fail(err, code, 0, code == LLMOPS_ERR_UNAVAILABLE, m);
}

/* ------------------------------------------------------------------ log */

static const char *level_name(enum llmops_log_level l)
{
    static const char *const n[] = {"debug", "info", "warning", "error"};
    return (unsigned)l < 4 ? n[l] : "?";
}

static void add_log(struct llmops_mock *m, enum llmops_log_level level, const char *text)
{
    if (m->echo)
        fprintf(stderr, "mock[%s] %s: %s\n", m->instance, level_name(level), text);
    if (m->nlogs == MOCK_LOG_MAX) {
        free(m->logs[0].text);
        memmove(m->logs, m->logs + 1, (MOCK_LOG_MAX - 1) * sizeof m->logs[0]);
        m->nlogs--;
    }
    m->logs[m->nlogs].level = level;
    m->logs[m->nlogs].text = strdup(text);
    if (m->logs[m->nlogs].text)
        m->nlogs++;
}

static void host_log(const struct llmops_host *h, enum llmops_log_level level, const char *fmt, ...)
    LLMOPS_PRINTF(3, 4);
static void host_log(const struct llmops_host *h, enum llmops_log_level level, const char *fmt, ...)
{
    char text[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    add_log(mock_of(h), level, text);
}

size_t llmops_mock_log_count(const struct llmops_mock *m)
{
    return m->nlogs;
}

const char *llmops_mock_log_line(const struct llmops_mock *m, size_t i,
                                 enum llmops_log_level *level)
{
    if (i >= m->nlogs)
        return NULL;
    if (level)
        *level = m->logs[i].level;
    return m->logs[i].text;
}

size_t llmops_mock_log_find(const struct llmops_mock *m, enum llmops_log_level min_level,
                            const char *needle)
{
    size_t n = 0;
    for (size_t i = 0; i < m->nlogs; i++)
        if (m->logs[i].level >= min_level && strstr(m->logs[i].text, needle ? needle : ""))
            n++;
    return n;
}

void llmops_mock_log_clear(struct llmops_mock *m)
{
    for (size_t i = 0; i < m->nlogs; i++)
        free(m->logs[i].text);
    m->nlogs = 0;
}

void llmops_mock_log_echo(struct llmops_mock *m, int on)
{
    m->echo = on;
}

/* ------------------------------------------------------------------ configuration */

static struct kv *find_kv(const struct llmops_mock *m, const char *key)
{
    for (size_t i = 0; i < m->nkv; i++)
        if (strcmp(m->kv[i].key, key) == 0)
            return &m->kv[i];
    return NULL;
}

static int set_kv(struct llmops_mock *m, const char *key, const char *value, const char *where)
{
    struct kv *k = find_kv(m, key);
    char *v = strdup(value), *w = strdup(where);
    if (!v || !w) {
        free(v);
        free(w);
        return -1;
    }
    if (k) {
        free(k->value);
        free(k->where);
    } else {
        struct kv *grown = realloc(m->kv, (m->nkv + 1) * sizeof *grown);
        if (!grown || !(grown[m->nkv].key = strdup(key))) {
            if (grown)
                m->kv = grown;
            free(v);
            free(w);
            return -1;
        }
        m->kv = grown;
        k = &m->kv[m->nkv++];
    }
    k->value = v;
    k->where = w;
    return 0;
}

int llmops_mock_config_set(struct llmops_mock *m, const char *key, const char *value)
{
    char where[300];
    if (!key || !*key || !value)
        return -1;
    snprintf(where, sizeof where, "mock:%s", key);
    return set_kv(m, key, value, where);
}

/* s without leading and trailing blanks, in place. */
static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

int llmops_mock_config_table(struct llmops_mock *m, const char *const *pairs, char *msg,
                             size_t msgsize)
{
    for (size_t i = 0; pairs && pairs[i]; i++) {
        char *copy = strdup(pairs[i]);
        if (!copy) {
            put(msg, msgsize, "out of memory");
            return -1;
        }
        char *eq = strchr(copy, '=');
        if (!eq) {
            put(msg, msgsize, "table:%zu: '%s' is not key=value", i + 1, pairs[i]);
            free(copy);
            return -1;
        }
        *eq = '\0';
        char *key = trim(copy), *value = trim(eq + 1), where[64];
        snprintf(where, sizeof where, "table:%zu", i + 1);
        int rc = *key ? set_kv(m, key, value, where) : -1;
        if (rc != 0)
            put(msg, msgsize, "table:%zu: '%s' has no key", i + 1, pairs[i]);
        free(copy);
        if (rc != 0)
            return -1;
    }
    return 0;
}

struct ini_read {
    struct llmops_mock *m;
    FILE *f;
    const char *path, *section;
    int line, found, failed;
};

/* inih's reader: counts lines, so the handler knows where each key was. */
static char *ini_line(char *buf, int size, void *ctx)
{
    struct ini_read *r = ctx;
    char *s = fgets(buf, size, r->f);
    if (s)
        r->line++;
    return s;
}

static int ini_key(void *ctx, const char *section, const char *name, const char *value)
{
    struct ini_read *r = ctx;
    if (strcmp(section, r->section) != 0)
        return 1;
    r->found = 1;
    if (!name) /* a section header alone (INI_CALL_HANDLER_ON_NEW_SECTION builds) */
        return 1;
    char where[600];
    snprintf(where, sizeof where, "%s:%d", r->path, r->line);
    if (set_kv(r->m, name, value ? value : "", where) != 0) {
        r->failed = 1;
        return 0;
    }
    return 1;
}

int llmops_mock_config_ini(struct llmops_mock *m, const char *path, const char *section, char *msg,
                           size_t msgsize)
{
    struct ini_read r = {.m = m, .path = path, .section = section};
    if (!path || !section) {
        put(msg, msgsize, "llmops_mock_config_ini: no file or section");
        return -1;
    }
    r.f = fopen(path, "r");
    if (!r.f) {
        put(msg, msgsize, "%s: %s", path, strerror(errno));
        return -1;
    }
    int rc = ini_parse_stream(ini_line, &r, ini_key, &r);
    fclose(r.f);
    if (r.failed || rc == -2) {
        put(msg, msgsize, "%s: out of memory", path);
        return -1;
    }
    if (rc != 0) {
        put(msg, msgsize, "%s:%d: syntax error (expected [section], key = value, or a comment)",
            path, rc);
        return -1;
    }
    if (!r.found) {
        put(msg, msgsize, "%s: no section [%s]", path, section);
        return -1;
    }
    return 0;
}

static const struct llmops_config_key core_keys[] = {
    {"module", LLMOPS_CONFIG_STRING, 0, 0, 0, "the module's name"},
    {"url", LLMOPS_CONFIG_URL, 0, 0, 0, "the tool's base URL"},
    {"connect_timeout_ms", LLMOPS_CONFIG_INT, 0, 100, 60000, "per connection attempt"},
    {"timeout_ms", LLMOPS_CONFIG_INT, 0, 100, 600000, "a whole call, retries included"},
    {"retries", LLMOPS_CONFIG_INT, 0, 0, 10, "extra attempts"},
    {"tls_verify", LLMOPS_CONFIG_BOOL, 0, 0, 0, "verify the tool's certificate"},
    {"ca_file", LLMOPS_CONFIG_FILE, 0, 0, 0, "CA bundle"},
    {"token_file", LLMOPS_CONFIG_FILE, 0, 0, 0, "bearer token"},
    {"basic_auth_file", LLMOPS_CONFIG_FILE, 0, 0, 0, "user:password"},
    {"allowed_hosts", LLMOPS_CONFIG_STRING, 0, 0, 0, "more hosts for absolute URLs"},
    {"unsupported_version", LLMOPS_CONFIG_STRING, 0, 0, 0, "refuse or degrade"},
    {NULL, 0, 0, 0, 0, NULL},
};

/* strtonum-style: the whole string, in min..max. */
static int parse_ll(const char *s, long long min, long long max, long long *out)
{
    char *end;
    errno = 0;
    if (!s || !*s)
        return -1;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || end == s || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int parse_bool(const char *v)
{
    static const char *const yes[] = {"on", "true", "yes", "1"}, *const no[] = {"off", "false",
                                                                                "no", "0"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0)
            return 1;
        if (strcasecmp(v, no[i]) == 0)
            return 0;
    }
    return -1;
}

static const struct llmops_config_key *key_of(const struct llmops_config_key *keys,
                                              const char *name)
{
    for (const struct llmops_config_key *k = keys; k && k->name; k++)
        if (strcmp(k->name, name) == 0)
            return k;
    for (const struct llmops_config_key *k = core_keys; k->name; k++)
        if (strcmp(k->name, name) == 0)
            return k;
    return NULL;
}

int llmops_mock_config_check(struct llmops_mock *m, const struct llmops_config_key *keys, char *msg,
                             size_t msgsize)
{
    int problems = 0;
    char first[600] = "";
#define PROBLEM(...)                                                                               \
    do {                                                                                           \
        if (problems++ == 0)                                                                       \
            snprintf(first, sizeof first, __VA_ARGS__);                                            \
    } while (0)
    for (size_t i = 0; i < m->nkv; i++) {
        const struct kv *e = &m->kv[i];
        const struct llmops_config_key *k = key_of(keys, e->key);
        long long n;
        if (!k) {
            PROBLEM("%s: unknown key '%s' for module %s", e->where, e->key, m->module);
            continue;
        }
        switch (k->type) {
        case LLMOPS_CONFIG_INT:
            if (parse_ll(e->value, k->min, k->max, &n) != 0)
                PROBLEM("%s: %s: '%s' is not an integer %lld-%lld", e->where, e->key, e->value,
                        k->min, k->max);
            break;
        case LLMOPS_CONFIG_BOOL:
            if (parse_bool(e->value) < 0)
                PROBLEM("%s: %s: '%s' is not on or off", e->where, e->key, e->value);
            break;
        case LLMOPS_CONFIG_URL:
            if (strncmp(e->value, "http://", 7) != 0 && strncmp(e->value, "https://", 8) != 0)
                PROBLEM("%s: %s: '%s' is not an http:// or https:// URL", e->where, e->key,
                        e->value);
            break;
        case LLMOPS_CONFIG_FILE:
            if (access(e->value, R_OK) != 0)
                PROBLEM("%s: %s: cannot read %s: %s", e->where, e->key, e->value, strerror(errno));
            break;
        default:
            break;
        }
        if (strcmp(e->key, "unsupported_version") == 0 && strcmp(e->value, "refuse") != 0 &&
            strcmp(e->value, "degrade") != 0)
            PROBLEM("%s: unsupported_version: '%s' is not refuse or degrade", e->where, e->value);
    }
    for (const struct llmops_config_key *k = keys; k && k->name; k++)
        if (k->required && !find_kv(m, k->name))
            PROBLEM("mock: [plugin \"%s\"] needs key '%s' (%s)", m->instance, k->name,
                    k->help ? k->help : "required by its module");
#undef PROBLEM
    if (problems)
        put(msg, msgsize, "%s", first);
    return problems;
}

static const char *host_config_string(const struct llmops_host *h, const char *key, const char *def)
{
    const struct kv *k = find_kv(mock_of(h), key);
    return k ? k->value : def;
}

static long long host_config_int(const struct llmops_host *h, const char *key, long long def)
{
    const struct kv *k = find_kv(mock_of(h), key);
    long long v;
    return k && parse_ll(k->value, LLONG_MIN, LLONG_MAX, &v) == 0 ? v : def;
}

static int host_config_bool(const struct llmops_host *h, const char *key, int def)
{
    const struct kv *k = find_kv(mock_of(h), key);
    int v = k ? parse_bool(k->value) : -1;
    return v < 0 ? def : v;
}

static const char *host_config_where(const struct llmops_host *h, const char *key)
{
    const struct kv *k = find_kv(mock_of(h), key);
    return k ? k->where : "mock: (not set)";
}

/* ------------------------------------------------------------------ secrets */

static int host_secret(const struct llmops_host *h, const char *key, char *buf, size_t size,
                       struct llmops_error *err)
{
    const char *path = host_config_string(h, key, NULL);
    if (!buf || size == 0)
        return failf(err, LLMOPS_ERR_INTERNAL, "secret %s: no buffer", key);
    if (!path)
        return failf(err, LLMOPS_ERR_INVALID, "secret: key %s is not set", key);
    FILE *f = fopen(path, "r");
    if (!f)
        return failf(err, LLMOPS_ERR_INVALID, "secret %s: cannot read %s: %s", key, path,
                     strerror(errno));
    /* at most size - 1 bytes, and a newline beyond them that ends the file */
    size_t n = fread(buf, 1, size - 1, f);
    int bad = ferror(f), c = fgetc(f);
    if (c == '\n' || c == '\r')
        c = fgetc(f);
    if (c == '\n')
        c = fgetc(f);
    int more = c != EOF;
    fclose(f);
    if (bad)
        return failf(err, LLMOPS_ERR_INVALID, "secret %s: cannot read %s", key, path);
    if (more)
        return failf(err, LLMOPS_ERR_INVALID, "secret %s: %s is longer than %zu bytes", key, path,
                     size - 1);
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    if (memchr(buf, '\0', n))
        return failf(err, LLMOPS_ERR_INVALID, "secret %s: %s holds a NUL byte", key, path);
    return 0;
}

/* ------------------------------------------------------------------ clocks */

static int64_t clock_mono = 1000000, clock_wall = 1700000000000LL, clock_step;
static int clock_is_real;

static int64_t real_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t host_now_ms(void)
{
    if (clock_is_real)
        return real_ms(CLOCK_MONOTONIC);
    int64_t now = clock_mono;
    clock_mono += clock_step;
    clock_wall += clock_step;
    return now;
}

static int64_t host_wall_ms(void)
{
    return clock_is_real ? real_ms(CLOCK_REALTIME) : clock_wall;
}

void llmops_mock_clock_set(int64_t mono_ms, int64_t wall_ms)
{
    clock_mono = mono_ms;
    clock_wall = wall_ms;
}

void llmops_mock_clock_advance(int64_t ms)
{
    clock_mono += ms;
    clock_wall += ms;
}

void llmops_mock_clock_real(int on)
{
    clock_is_real = on;
}

void llmops_mock_clock_autostep(int64_t ms)
{
    clock_step = ms > 0 ? ms : 0;
}

/* ------------------------------------------------------------------ counters */

static void host_metric_add(const struct llmops_host *h, const char *name, double value)
{
    struct llmops_mock *m = mock_of(h);
    size_t n = name ? strlen(name) : 0;
    if (!name || n == 0 || n >= MOCK_METRIC_NAME || !(name[0] >= 'a' && name[0] <= 'z') ||
        strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") != n || !(value >= 0)) {
        m->metric_refused++;
        host_log(h, LLMOPS_LOG_ERROR,
                 "metric_add: '%s' refused (snake_case, under %d bytes, "
                 "value >= 0)",
                 name ? name : "(null)", MOCK_METRIC_NAME);
        return;
    }
    for (int i = 0; i < m->nmetrics; i++)
        if (strcmp(m->metrics[i].name, name) == 0) {
            m->metrics[i].value += value;
            return;
        }
    if (m->nmetrics == MOCK_METRICS) {
        m->metric_refused++;
        host_log(h, LLMOPS_LOG_ERROR, "metric_add: more than %d counters; '%s' refused",
                 MOCK_METRICS, name);
        return;
    }
    snprintf(m->metrics[m->nmetrics].name, MOCK_METRIC_NAME, "%s", name);
    m->metrics[m->nmetrics++].value = value;
}

double llmops_mock_metric(const struct llmops_mock *m, const char *name)
{
    for (int i = 0; i < m->nmetrics; i++)
        if (strcmp(m->metrics[i].name, name) == 0)
            return m->metrics[i].value;
    return 0;
}

int llmops_mock_metric_refused(const struct llmops_mock *m)
{
    return m->metric_refused;
}

/* ------------------------------------------------------------------ digests, versions */

static const EVP_MD *md_of(enum llmops_digest algo)
{
    switch (algo) {
    case LLMOPS_DIGEST_MD5:
        return EVP_md5();
    case LLMOPS_DIGEST_SHA1:
        return EVP_sha1();
    case LLMOPS_DIGEST_SHA256:
        return EVP_sha256();
    default:
        return NULL;
    }
}

static EVP_MD_CTX *digest_start(enum llmops_digest algo, char *hex, size_t hexsize,
                                struct llmops_error *err)
{
    const EVP_MD *md = md_of(algo);
    if (!md) {
        failf(err, LLMOPS_ERR_INVALID, "digest algorithm %d is not MD5, SHA-1 or SHA-256",
              (int)algo);
        return NULL;
    }
    if (!hex || hexsize < 2 * (size_t)EVP_MD_get_size(md) + 1) {
        failf(err, LLMOPS_ERR_INVALID, "the hex buffer is too small (LLMOPS_DIGEST_HEX_MAX)");
        return NULL;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_DigestInit_ex(ctx, md, NULL) != 1) {
        EVP_MD_CTX_free(ctx);
        failf(err, LLMOPS_ERR_INTERNAL, "libcrypto cannot start the digest");
        return NULL;
    }
    return ctx;
}

static int digest_end(EVP_MD_CTX *ctx, char *hex, struct llmops_error *err)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    int ok = EVP_DigestFinal_ex(ctx, md, &n) == 1;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return failf(err, LLMOPS_ERR_INTERNAL, "libcrypto cannot finish the digest");
    for (unsigned int i = 0; i < n; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    hex[2 * n] = '\0';
    return 0;
}

static int host_digest(enum llmops_digest algo, const void *data, size_t len, char *hex,
                       size_t hexsize, struct llmops_error *err)
{
    if (!data && len > 0)
        return failf(err, LLMOPS_ERR_INVALID, "digest: NULL buffer");
    EVP_MD_CTX *ctx = digest_start(algo, hex, hexsize, err);
    if (!ctx)
        return -1;
    if (len > 0 && EVP_DigestUpdate(ctx, data, len) != 1) {
        EVP_MD_CTX_free(ctx);
        return failf(err, LLMOPS_ERR_INTERNAL, "libcrypto cannot update the digest");
    }
    return digest_end(ctx, hex, err);
}

static int host_digest_file(enum llmops_digest algo, const char *path, char *hex, size_t hexsize,
                            int64_t *bytes, struct llmops_error *err)
{
    EVP_MD_CTX *ctx = digest_start(algo, hex, hexsize, err);
    if (!ctx)
        return -1;
    FILE *f = path ? fopen(path, "rb") : NULL;
    if (!f) {
        EVP_MD_CTX_free(ctx);
        return failf(err, LLMOPS_ERR_INVALID, "digest: cannot read %s: %s", path ? path : "(null)",
                     strerror(errno));
    }
    char buf[65536];
    size_t n;
    int64_t total = 0;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        total += (int64_t)n;
        if (EVP_DigestUpdate(ctx, buf, n) != 1)
            break;
    }
    int bad = ferror(f) || !feof(f);
    fclose(f);
    if (bad) {
        EVP_MD_CTX_free(ctx);
        return failf(err, LLMOPS_ERR_INVALID, "digest: error reading %s", path);
    }
    if (bytes)
        *bytes = total;
    return digest_end(ctx, hex, err);
}

/* The next numeric run of *s as a number (0 when none is left); advances *s past it. */
static unsigned long long next_part(const char **s, int *any)
{
    while (**s && !(**s >= '0' && **s <= '9'))
        (*s)++;
    unsigned long long v = 0;
    *any = 0;
    while (**s >= '0' && **s <= '9') {
        *any = 1;
        if (v < 1000000000000ULL)
            v = v * 10 + (unsigned)(**s - '0');
        (*s)++;
    }
    return v;
}

static int host_version_compare(const char *a, const char *b)
{
    const char *p = a ? a : "", *q = b ? b : "";
    for (;;) {
        int pa, qa;
        unsigned long long x = next_part(&p, &pa), y = next_part(&q, &qa);
        if (!pa && !qa)
            return 0;
        if (x != y)
            return x < y ? -1 : 1;
    }
}

static int host_version_in_range(const char *v, const char *min, const char *max)
{
    return (!min || host_version_compare(v, min) >= 0) &&
           (!max || host_version_compare(v, max) <= 0);
}

/* ------------------------------------------------------------------ database */

static void *host_db_exec(const struct llmops_host *h, const char *sql, int nparams,
                          const char *const *params, struct llmops_error *err)
{
    struct llmops_mock *m = mock_of(h);
    if (!m->conninfo) {
        failf(err, LLMOPS_ERR_UNAVAILABLE,
              "no database: the mock host has no conninfo (llmops_mock_db_conninfo)");
        return NULL;
    }
    if (!m->pg || PQstatus(m->pg) != CONNECTION_OK) {
        if (m->pg)
            PQfinish(m->pg);
        m->pg = PQconnectdb(m->conninfo);
        if (PQstatus(m->pg) != CONNECTION_OK) {
            char why[256];
            llmops_quote(why, sizeof why, PQerrorMessage(m->pg), 200);
            size_t n = strlen(why);
            while (n > 0 && why[n - 1] == '\n')
                why[--n] = '\0';
            failf(err, LLMOPS_ERR_UNAVAILABLE, "database: %s", why);
            return NULL;
        }
    }
    PGresult *r = PQexecParams(m->pg, sql, nparams, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        char why[300];
        llmops_quote(why, sizeof why, PQresultErrorMessage(r), 250);
        host_log(h, LLMOPS_LOG_WARNING, "db_exec: %s", why);
        int conflict = state && strcmp(state, "23505") == 0;
        failf(err, conflict ? LLMOPS_ERR_CONFLICT : LLMOPS_ERR_INTERNAL, "database: SQLSTATE %s",
              state ? state : "?");
        err->retryable = state && (strncmp(state, "40", 2) == 0 || strncmp(state, "08", 2) == 0);
        PQclear(r);
        return NULL;
    }
    m->db_open++;
    return r;
}

/* db_clear takes no host: results are counted per process and matched on clear. */
static struct llmops_mock *db_owner;

static void host_db_clear(void *result)
{
    if (!result)
        return;
    PQclear(result);
    if (db_owner)
        db_owner->db_open--;
}

static int host_db_rows(const void *r)
{
    return r ? PQntuples(r) : 0;
}

static int host_db_columns(const void *r)
{
    return r ? PQnfields(r) : 0;
}

static const char *host_db_value(const void *r, int row, int col)
{
    if (!r || row < 0 || col < 0 || row >= PQntuples(r) || col >= PQnfields(r) ||
        PQgetisnull(r, row, col))
        return NULL;
    return PQgetvalue(r, row, col);
}

static const char *host_db_column_name(const void *r, int col)
{
    return r && col >= 0 && col < PQnfields(r) ? PQfname(r, col) : NULL;
}

static long long host_db_affected(const void *r)
{
    long long v;
    return r && parse_ll(PQcmdTuples((PGresult *)r), 0, LLONG_MAX, &v) == 0 ? v : 0;
}

int llmops_mock_db_conninfo(struct llmops_mock *m, const char *conninfo)
{
    free(m->conninfo);
    m->conninfo = dup_or_null(conninfo);
    if (m->pg) /* the next db_exec connects with the new conninfo */
        PQfinish(m->pg);
    m->pg = NULL;
    db_owner = m;
    return conninfo && !m->conninfo ? -1 : 0;
}

int llmops_mock_db_unreleased(const struct llmops_mock *m)
{
    return m->db_open;
}

/* ------------------------------------------------------------------ HTTP */

#define HTTP_JSON_CAP (64u << 20)

/* The header block of an answer: "name\0value\0"..."\0", names lower case. */
struct hbuf {
    char *p;
    size_t n, cap;
};

static int hbuf_add(struct hbuf *b, const char *s, size_t len)
{
    if (b->n + len + 2 > b->cap) {
        size_t cap = (b->n + len + 2) * 2;
        char *p = realloc(b->p, cap);
        if (!p)
            return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, len);
    b->n += len;
    b->p[b->n++] = '\0';
    return 0;
}

static const char *const kept_headers[] = {"location",      "link",         "etag",
                                           "retry-after",   "warning",      "content-length",
                                           "last-modified", "content-type", NULL};

static int keep_header(const char *name, const char *const *want)
{
    for (size_t i = 0; kept_headers[i]; i++)
        if (strcasecmp(name, kept_headers[i]) == 0)
            return 1;
    for (size_t i = 0; want && want[i]; i++)
        if (strcasecmp(name, want[i]) == 0)
            return 1;
    return 0;
}

/* Adds one "Name: value" line to b when it is a header to keep. */
static int add_header_line(struct hbuf *b, const char *line, size_t len, const char *const *want,
                           char *ctype, size_t ctsize)
{
    while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == '\n'))
        len--;
    const char *colon = memchr(line, ':', len);
    if (!colon || colon == line)
        return 0;
    char name[128];
    size_t nl = (size_t)(colon - line);
    if (nl >= sizeof name)
        return 0;
    for (size_t i = 0; i < nl; i++)
        name[i] = (char)((line[i] >= 'A' && line[i] <= 'Z') ? line[i] + 32 : line[i]);
    name[nl] = '\0';
    const char *v = colon + 1, *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    if (strcmp(name, "content-type") == 0 && ctype)
        snprintf(ctype, ctsize, "%.*s", (int)(end - v), v);
    if (!keep_header(name, want))
        return 0;
    return hbuf_add(b, name, nl) || hbuf_add(b, v, (size_t)(end - v));
}

static const char *host_http_header(const struct llmops_http_response *resp, const char *name)
{
    if (!resp || resp->size < sizeof *resp || !resp->headers || !name)
        return NULL;
    for (const char *p = resp->headers; *p;) {
        const char *v = p + strlen(p) + 1;
        if (strcasecmp(p, name) == 0)
            return v;
        p = v + strlen(v) + 1;
    }
    return NULL;
}

static int path_matches(const char *pattern, const char *path)
{
    size_t n = strlen(pattern);
    if (n > 0 && pattern[n - 1] == '*')
        return strncmp(pattern, path, n - 1) == 0;
    return strcmp(pattern, path) == 0;
}

/* Whether a request struct, as the module built it, holds `member` (1.0 modules' end early). */
#define REQ_HAS(req, member)                                                                       \
    ((req)->size >= offsetof(struct llmops_http_request, member) + sizeof((req)->member))

/* What a request is matched on: its absolute URL, "path" for the url endpoint, or
 * "ENDPOINT:path" for another endpoint key. */
static void request_key(const struct llmops_http_request *req, char *out, size_t size)
{
    const char *url = REQ_HAS(req, url) ? req->url : NULL;
    const char *ep = REQ_HAS(req, endpoint) ? req->endpoint : NULL;
    if (url)
        snprintf(out, size, "%s", url);
    else if (ep && strcmp(ep, "url") != 0)
        snprintf(out, size, "%s:%s", ep, req->path ? req->path : "");
    else
        snprintf(out, size, "%s", req->path ? req->path : "");
}

int llmops_mock_http_add(struct llmops_mock *m, const char *method, const char *path, int status,
                         const char *headers, const char *body)
{
    if (!method || !path || status < 0 || status > 999)
        return -1;
    struct canned *grown = realloc(m->canned, (m->ncanned + 1) * sizeof *grown);
    if (!grown)
        return -1;
    m->canned = grown;
    struct canned *c = &m->canned[m->ncanned];
    memset(c, 0, sizeof *c);
    c->method = strdup(method);
    c->path = strdup(path);
    c->headers = strdup(headers ? headers : "");
    c->body = strdup(body ? body : "");
    c->status = status;
    if (!c->method || !c->path || !c->headers || !c->body) {
        free(c->method);
        free(c->path);
        free(c->headers);
        free(c->body);
        return -1;
    }
    m->ncanned++;
    return 0;
}

/* The canned answer for a request: the first unused one registered for it, else the last
 * one registered for it; NULL when none is. */
static struct canned *find_canned(struct llmops_mock *m, const char *method, const char *key)
{
    struct canned *last = NULL;
    for (size_t i = 0; i < m->ncanned; i++) {
        struct canned *c = &m->canned[i];
        if (strcmp(c->method, method) != 0 || !path_matches(c->path, key))
            continue;
        if (!c->used) {
            c->used = 1;
            return c;
        }
        last = c;
    }
    return last;
}

void llmops_mock_http_real(struct llmops_mock *m, int on)
{
    m->real_http = on;
    if (on)
        curl_global_init(CURL_GLOBAL_DEFAULT);
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0, r;
    char *p = malloc(cap + 1);
    while (p && (r = fread(p + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            char *q = realloc(p, cap * 2 + 1);
            if (!q) {
                free(p);
                p = NULL;
                break;
            }
            p = q;
            cap *= 2;
        }
    }
    fclose(f);
    if (p) {
        p[n] = '\0';
        *len = n;
    }
    return p;
}

static struct recorded *record(struct llmops_mock *m, const struct llmops_http_request *req,
                               const char *method)
{
    struct recorded *grown = realloc(m->reqs, (m->nreqs + 1) * sizeof *grown);
    if (!grown)
        return NULL;
    m->reqs = grown;
    struct recorded *r = &m->reqs[m->nreqs++];
    memset(r, 0, sizeof *r);
    int v11 = REQ_HAS(req, progress_ctx);
    const char *url = v11 ? req->url : NULL;
    r->method = strdup(method);
    r->endpoint = url ? NULL : strdup(v11 && req->endpoint ? req->endpoint : "url");
    r->path = strdup(url ? url : req->path ? req->path : "");
    size_t hl = 1;
    for (size_t i = 0; req->headers && req->headers[i]; i++)
        hl += strlen(req->headers[i]) + 1;
    r->headers = malloc(hl);
    if (r->headers) {
        r->headers[0] = '\0';
        for (size_t i = 0; req->headers && req->headers[i]; i++) {
            strcat(r->headers, req->headers[i]);
            strcat(r->headers, "\n");
        }
    }
    size_t bl = 0;
    if (v11 && req->body_file)
        r->body = read_all(req->body_file, &bl);
    else if (req->body) {
        r->body = malloc(req->body_len + 1);
        if (r->body) {
            memcpy(r->body, req->body, req->body_len);
            r->body[req->body_len] = '\0';
            bl = req->body_len;
        }
    }
    r->content_type = dup_or_null(req->content_type);
    r->r.method = r->method;
    r->r.endpoint = r->endpoint;
    r->r.path = r->path;
    r->r.headers = r->headers ? r->headers : "";
    r->r.body = r->body ? r->body : "";
    r->r.body_len = r->body ? bl : 0;
    r->r.content_type = r->content_type;
    r->r.retry_unsafe = req->retry_unsafe;
    r->r.timeout_ms = req->timeout_ms;
    return r;
}

static int answer_canned(struct llmops_mock *m, const struct canned *c,
                         const struct llmops_http_request *req, struct llmops_http_response *resp,
                         const char *key, struct llmops_error *err)
{
    if (c->status == 0)
        return failf(err, LLMOPS_ERR_UNAVAILABLE, "%s %s: connection refused (canned)", req->method,
                     key);
    struct hbuf h = {0};
    const char *const *want = REQ_HAS(req, want_headers) ? req->want_headers : NULL;
    for (const char *p = c->headers; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (add_header_line(&h, p, len, want, resp->content_type, sizeof resp->content_type))
            break;
        p += len + (nl ? 1 : 0);
    }
    if (hbuf_add(&h, "", 0) != 0) {
        free(h.p);
        return failf(err, LLMOPS_ERR_INTERNAL, "out of memory");
    }
    const char *file = REQ_HAS(req, response_file) ? req->response_file : NULL;
    size_t blen = strlen(c->body);
    resp->status = c->status;
    resp->attempts = 1;
    if (file) {
        FILE *f = fopen(file, "wb");
        if (!f) {
            free(h.p);
            return failf(err, LLMOPS_ERR_INVALID, "response_file %s: %s", file, strerror(errno));
        }
        int twoxx = c->status >= 200 && c->status < 300;
        if (twoxx && fwrite(c->body, 1, blen, f) != blen) {
            fclose(f);
            free(h.p);
            return failf(err, LLMOPS_ERR_INTERNAL, "response_file %s: short write", file);
        }
        fclose(f);
        if (twoxx) {
            resp->file_bytes = (int64_t)blen;
            blen = 0;
        }
    }
    resp->body = malloc(blen + 1);
    if (!resp->body) {
        free(h.p);
        return failf(err, LLMOPS_ERR_INTERNAL, "out of memory");
    }
    memcpy(resp->body, blen ? c->body : "", blen);
    resp->body[blen] = '\0';
    resp->body_len = blen;
    resp->headers = h.p;
    resp->url = strdup(key);
    (void)m;
    return 0;
}

/* ---- real HTTP (libcurl) */

struct xfer {
    char *body;
    size_t n, cap;
    FILE *file;
    int file_ok;
    struct hbuf h;
    const char *const *want;
    char ctype[128];
    int too_big;
};

static size_t on_body(char *p, size_t size, size_t nmemb, void *ctx)
{
    struct xfer *x = ctx;
    size_t len = size * nmemb;
    if (x->file_ok)
        return fwrite(p, 1, len, x->file);
    if (x->n + len > HTTP_JSON_CAP) {
        x->too_big = 1;
        return 0;
    }
    if (x->n + len + 1 > x->cap) {
        size_t cap = (x->n + len + 1) * 2;
        char *q = realloc(x->body, cap);
        if (!q)
            return 0;
        x->body = q;
        x->cap = cap;
    }
    memcpy(x->body + x->n, p, len);
    x->n += len;
    return len;
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *ctx)
{
    struct xfer *x = ctx;
    size_t len = size * nmemb;
    if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) { /* a new answer (after a redirect) */
        x->h.n = 0;
        x->ctype[0] = '\0';
        return len;
    }
    add_header_line(&x->h, p, len, x->want, x->ctype, sizeof x->ctype);
    return len;
}

struct progress_ctx {
    int (*fn)(void *, int64_t, int64_t, int64_t, int64_t);
    void *ctx;
};

static int on_progress(void *ctx, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    struct progress_ctx *p = ctx;
    return p->fn(p->ctx, dn, dt, un, ut);
}

static int answer_real(struct llmops_mock *m, const struct llmops_http_request *req,
                       const char *method, struct llmops_http_response *resp,
                       struct llmops_error *err)
{
    int v11 = REQ_HAS(req, progress_ctx);
    const char *ep = v11 && req->endpoint ? req->endpoint : "url";
    char url[4096];
    if (v11 && req->url)
        snprintf(url, sizeof url, "%s", req->url);
    else {
        const struct kv *base = find_kv(m, ep);
        if (!base)
            return failf(err, LLMOPS_ERR_INVALID, "http: endpoint key %s is not set", ep);
        size_t bl = strlen(base->value);
        int slash = bl > 0 && base->value[bl - 1] == '/' && req->path && req->path[0] == '/';
        snprintf(url, sizeof url, "%.*s%s", (int)(bl - (size_t)slash), base->value,
                 req->path ? req->path : "");
    }
    CURL *c = curl_easy_init();
    if (!c)
        return failf(err, LLMOPS_ERR_INTERNAL, "libcurl: cannot start");
    struct xfer x = {.want = v11 ? req->want_headers : NULL};
    struct curl_slist *hl = NULL;
    char line[1200], secret[800];
    struct llmops_error serr = {.size = sizeof serr};
    if (find_kv(m, "token_file") &&
        host_secret(&m->host, "token_file", secret, sizeof secret, &serr) == 0) {
        snprintf(line, sizeof line, "Authorization: Bearer %s", secret);
        hl = curl_slist_append(hl, line);
    } else if (find_kv(m, "basic_auth_file") &&
               host_secret(&m->host, "basic_auth_file", secret, sizeof secret, &serr) == 0) {
        curl_easy_setopt(c, CURLOPT_USERPWD, secret);
    }
    for (size_t i = 0; req->headers && req->headers[i]; i++)
        hl = curl_slist_append(hl, req->headers[i]);
    FILE *upload = NULL;
    if (req->body || (v11 && req->body_file)) {
        snprintf(line, sizeof line, "Content-Type: %s",
                 req->content_type ? req->content_type : "application/json");
        hl = curl_slist_append(hl, line);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (v11 && req->body_file) {
        upload = fopen(req->body_file, "rb");
        if (!upload) {
            curl_slist_free_all(hl);
            curl_easy_cleanup(c);
            return failf(err, LLMOPS_ERR_INVALID, "body_file %s: %s", req->body_file,
                         strerror(errno));
        }
        fseek(upload, 0, SEEK_END);
        long size = ftell(upload);
        rewind(upload);
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(c, CURLOPT_READDATA, upload);
        curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)size);
    } else if (req->body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    } else if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    }
    if (v11 && req->response_file) {
        x.file = fopen(req->response_file, "wb");
        if (!x.file) {
            if (upload)
                fclose(upload);
            curl_slist_free_all(hl);
            curl_easy_cleanup(c);
            return failf(err, LLMOPS_ERR_INVALID, "response_file %s: %s", req->response_file,
                         strerror(errno));
        }
    }
    long timeout =
        req->timeout_ms > 0 ? req->timeout_ms : host_config_int(&m->host, "timeout_ms", 10000);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)host_config_int(&m->host, "connect_timeout_ms", 2000));
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, (long)host_config_bool(&m->host, "tls_verify", 1));
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST,
                     host_config_bool(&m->host, "tls_verify", 1) ? 2L : 0L);
    if (find_kv(m, "ca_file"))
        curl_easy_setopt(c, CURLOPT_CAINFO, host_config_string(&m->host, "ca_file", NULL));
    long redirects = v11 ? req->max_redirects : 0;
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, redirects > 0 ? 1L : 0L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, redirects);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &x);
    struct progress_ctx pc = {v11 ? req->progress : NULL, v11 ? req->progress_ctx : NULL};
    if (pc.fn) {
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, &pc);
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    }
    /* The status is known only after the body: every body goes to the file, and a non-2xx
     * one is moved back into memory afterwards. */
    x.file_ok = x.file != NULL;
    CURLcode rc = curl_easy_perform(c);
    long status = 0, nred = 0;
    char *eff = NULL;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(c, CURLINFO_REDIRECT_COUNT, &nred);
    curl_easy_getinfo(c, CURLINFO_EFFECTIVE_URL, &eff);
    if (upload)
        fclose(upload);
    curl_slist_free_all(hl);
    int result = 0;
    if (rc != CURLE_OK) {
        result = failf(err,
                       rc == CURLE_ABORTED_BY_CALLBACK ? LLMOPS_ERR_UNAVAILABLE
                       : x.too_big                     ? LLMOPS_ERR_TOOL
                                                       : LLMOPS_ERR_UNAVAILABLE,
                       "%s %s: %s", method, url,
                       rc == CURLE_ABORTED_BY_CALLBACK ? "aborted by the module"
                       : x.too_big                     ? "the answer is larger than 64 MiB"
                                                       : curl_easy_strerror(rc));
    } else {
        if (x.file) {
            fflush(x.file);
            long written = ftell(x.file);
            if (status < 200 || status >= 300) { /* the body belongs in memory */
                fclose(x.file);
                x.file = NULL;
                size_t bl = 0;
                free(x.body);
                x.body = read_all(req->response_file, &bl);
                x.n = bl;
                FILE *t = fopen(req->response_file, "wb");
                if (t)
                    fclose(t);
            } else
                resp->file_bytes = written;
        }
        if (hbuf_add(&x.h, "", 0) != 0)
            result = failf(err, LLMOPS_ERR_INTERNAL, "out of memory");
    }
    if (x.file)
        fclose(x.file);
    if (result == 0) {
        resp->status = (int)status;
        resp->body = x.body ? x.body : strdup("");
        if (x.body)
            x.body[x.n] = '\0';
        resp->body_len = x.body ? x.n : 0;
        snprintf(resp->content_type, sizeof resp->content_type, "%s", x.ctype);
        resp->attempts = 1;
        resp->headers = x.h.p;
        char clean[4096];
        snprintf(clean, sizeof clean, "%s", eff ? eff : url);
        char *q = strchr(clean, '?');
        if (q)
            *q = '\0';
        resp->url = strdup(clean);
        resp->redirects = (int)nred;
    } else {
        free(x.body);
        free(x.h.p);
    }
    curl_easy_cleanup(c);
    return result;
}

static int host_http(const struct llmops_host *h, const struct llmops_http_request *req,
                     struct llmops_http_response *resp, struct llmops_error *err)
{
    struct llmops_mock *m = mock_of(h);
    if (!req || !resp ||
        req->size < offsetof(struct llmops_http_request, timeout_ms) + sizeof req->timeout_ms)
        return failf(err, LLMOPS_ERR_INTERNAL, "http: a request struct without its size");
    uint32_t rsize = resp->size;
    if (rsize < offsetof(struct llmops_http_response, attempts) + sizeof resp->attempts)
        return failf(err, LLMOPS_ERR_INTERNAL, "http: a response struct without its size");
    memset(resp, 0, rsize);
    resp->size = rsize;
    const char *method = req->method ? req->method : "GET";
    char key[4096];
    request_key(req, key, sizeof key);
    struct recorded *rec = record(m, req, method);
    if (!rec)
        return failf(err, LLMOPS_ERR_INTERNAL, "out of memory");
    /* a 1.0 module's response ends at attempts: answer into a full-size copy */
    struct llmops_http_response full = {.size = sizeof full};
    const struct canned *c = find_canned(m, method, key);
    int rc;
    if (c)
        rc = answer_canned(m, c, req, &full, key, err);
    else if (m->real_http)
        rc = answer_real(m, req, method, &full, err);
    else
        rc = failf(err, LLMOPS_ERR_UNAVAILABLE,
                   "%s %s: no canned answer (llmops_mock_http_add) and no real HTTP", method, key);
    if (rc != 0)
        return -1;
    rec->r.status = full.status;
    if (rsize >= sizeof full) {
        memcpy(resp, &full, sizeof full);
        resp->size = rsize;
    } else {
        memcpy(resp, &full, rsize);
        resp->size = rsize;
        free(full.headers);
        free(full.url);
    }
    m->http_open++;
    return 0;
}

/* http_free takes no host: responses are counted per process on their owner. */
static struct llmops_mock *http_owner;

static void host_http_free(struct llmops_http_response *resp)
{
    if (!resp)
        return;
    if (resp->body && http_owner)
        http_owner->http_open--;
    free(resp->body);
    resp->body = NULL;
    if (resp->size >= sizeof *resp) {
        free(resp->headers);
        free(resp->url);
        resp->headers = NULL;
        resp->url = NULL;
    }
}

size_t llmops_mock_http_count(const struct llmops_mock *m)
{
    return m->nreqs;
}

const struct llmops_mock_request *llmops_mock_http_request(const struct llmops_mock *m, size_t i)
{
    return i < m->nreqs ? &m->reqs[i].r : NULL;
}

size_t llmops_mock_http_calls(const struct llmops_mock *m, const char *method, const char *path)
{
    size_t n = 0;
    for (size_t i = 0; i < m->nreqs; i++) {
        const struct recorded *r = &m->reqs[i];
        char key[4096];
        if (r->endpoint && strcmp(r->endpoint, "url") != 0)
            snprintf(key, sizeof key, "%s:%s", r->endpoint, r->path);
        else
            snprintf(key, sizeof key, "%s", r->path);
        if (strcmp(r->method, method) == 0 && path_matches(path, key))
            n++;
    }
    return n;
}

static void free_requests(struct llmops_mock *m)
{
    for (size_t i = 0; i < m->nreqs; i++) {
        struct recorded *r = &m->reqs[i];
        free(r->method);
        free(r->endpoint);
        free(r->path);
        free(r->headers);
        free(r->body);
        free(r->content_type);
    }
    free(m->reqs);
    m->reqs = NULL;
    m->nreqs = 0;
}

void llmops_mock_http_clear(struct llmops_mock *m)
{
    free_requests(m);
}

int llmops_mock_http_unreleased(const struct llmops_mock *m)
{
    return m->http_open;
}

/* ------------------------------------------------------------------ modules */

const struct llmops_plugin *llmops_mock_open(struct llmops_mock *m, const char *path, char *msg,
                                             size_t msgsize)
{
    void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        put(msg, msgsize, "%s: %s", path, dlerror());
        return NULL;
    }
    llmops_plugin_entry_fn entry;
    *(void **)(&entry) = dlsym(dl, LLMOPS_PLUGIN_ENTRY_SYMBOL);
    const struct llmops_plugin *d = entry ? entry() : NULL;
    const char *why = NULL;
    char detail[200] = "";
    if (!entry)
        why = "does not export " LLMOPS_PLUGIN_ENTRY_SYMBOL " (use LLMOPS_PLUGIN_DEFINE)";
    else if (!d)
        why = "its entry returned NULL";
    else if (d->magic.magic != LLMOPS_PLUGIN_MAGIC || d->magic.size != sizeof d->magic)
        why = "has no llm-ops magic block (LLMOPS_PLUGIN_MAGIC_INIT)";
    else if (d->magic.abi_major != LLMOPS_PLUGIN_ABI_MAJOR ||
             d->magic.abi_minor > LLMOPS_PLUGIN_ABI_MINOR) {
        snprintf(detail, sizeof detail,
                 "has plugin ABI %u.%u, the mock host %d.%d (rebuild it against these headers)",
                 d->magic.abi_major, d->magic.abi_minor, LLMOPS_PLUGIN_ABI_MAJOR,
                 LLMOPS_PLUGIN_ABI_MINOR);
        why = detail;
    } else if (d->magic.pointer_bits != 8 * sizeof(void *) ||
               d->magic.jansson_major != JANSSON_MAJOR_VERSION)
        why = "was built for another pointer size or jansson major";
    else if (d->size < offsetof(struct llmops_plugin, capabilities) + sizeof(void *))
        why = "has a descriptor smaller than ABI 1.0's";
    else if (!d->init || !d->fini || !d->health || !d->capabilities || !d->ops || !d->name)
        why = "lacks a required member (name, ops, init, fini, health, capabilities)";
    if (why) {
        put(msg, msgsize, "%s %s", path, why);
        dlclose(dl);
        return NULL;
    }
    void **grown = realloc(m->dls, (m->ndls + 1) * sizeof *grown);
    if (!grown) {
        dlclose(dl);
        put(msg, msgsize, "out of memory");
        return NULL;
    }
    m->dls = grown;
    m->dls[m->ndls++] = dl;
    return d;
}

int llmops_mock_init(struct llmops_mock *m, const struct llmops_plugin *desc, void **state,
                     struct llmops_error *err)
{
    char msg[600];
    if (llmops_mock_config_check(m, desc->config_keys, msg, sizeof msg) > 0)
        return llmops_fail(err, LLMOPS_ERR_INVALID, 0, 0, msg);
    *state = NULL;
    return desc->init(&m->host, state, err);
}

/* ------------------------------------------------------------------ the mock */

struct llmops_mock *llmops_mock_new(const char *instance, const char *module)
{
    struct llmops_mock *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->instance = strdup(instance ? instance : "mock");
    m->module = strdup(module ? module : "mock");
    if (!m->instance || !m->module) {
        free(m->instance);
        free(m->module);
        free(m);
        return NULL;
    }
    const char *verbose = getenv("LLMOPS_MOCK_VERBOSE");
    m->echo = verbose && *verbose;
    struct llmops_host *h = &m->host;
    h->size = sizeof *h;
    h->abi_major = LLMOPS_PLUGIN_ABI_MAJOR;
    h->abi_minor = LLMOPS_PLUGIN_ABI_MINOR;
    h->instance = m->instance;
    h->module = m->module;
    h->log = host_log;
    h->config_string = host_config_string;
    h->config_int = host_config_int;
    h->config_bool = host_config_bool;
    h->config_where = host_config_where;
    h->secret = host_secret;
    h->http = host_http;
    h->http_free = host_http_free;
    h->now_ms = host_now_ms;
    h->wall_ms = host_wall_ms;
    h->metric_add = host_metric_add;
    h->db_exec = host_db_exec;
    h->db_clear = host_db_clear;
    h->core_private = NULL;
    h->http_header = host_http_header;
    h->digest = host_digest;
    h->digest_file = host_digest_file;
    h->version_compare = host_version_compare;
    h->version_in_range = host_version_in_range;
    h->db_rows = host_db_rows;
    h->db_columns = host_db_columns;
    h->db_value = host_db_value;
    h->db_column_name = host_db_column_name;
    h->db_affected = host_db_affected;
    http_owner = m;
    return m;
}

const struct llmops_host *llmops_mock_host(struct llmops_mock *m)
{
    http_owner = m;
    return &m->host;
}

void llmops_mock_free(struct llmops_mock *m)
{
    if (!m)
        return;
    llmops_mock_log_clear(m);
    for (size_t i = 0; i < m->nkv; i++) {
        free(m->kv[i].key);
        free(m->kv[i].value);
        free(m->kv[i].where);
    }
    free(m->kv);
    for (size_t i = 0; i < m->ncanned; i++) {
        free(m->canned[i].method);
        free(m->canned[i].path);
        free(m->canned[i].headers);
        free(m->canned[i].body);
    }
    free(m->canned);
    free_requests(m);
    if (m->pg)
        PQfinish(m->pg);
    free(m->conninfo);
    for (size_t i = 0; i < m->ndls; i++)
        dlclose(m->dls[i]);
    free(m->dls);
    if (http_owner == m)
        http_owner = NULL;
    if (db_owner == m)
        db_owner = NULL;
    free(m->instance);
    free(m->module);
    free(m);
}
