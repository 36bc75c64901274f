#include "plugin.h"

#include "category.h"
#include "llmops-orchestration.h"
#include "llmops-registry.h"
#include "llmops-serving.h"
#include "llmops-tracking.h"
#include "llmops-versioning.h"
#include "db.h"
#include "digest.h"
#include "http.h"
#include "httpclient.h"
#include "operations.h"
#include "log.h"
#include "util.h"

#include <dlfcn.h>
#include <openssl/evp.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#if LLMOPS_PLUGIN_TARGET_MINOR != LLMOPS_PLUGIN_ABI_MINOR
#error "the core builds with the header's own ABI minor"
#endif

static int valid_module_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* Each category's interface: the ABI levels the core accepts and its required-op check. */
typedef const char *(*missing_op_fn)(const void *ops);
static const struct {
    uint32_t oldest, newest;
    missing_op_fn missing;
} interfaces[CATEGORY_COUNT + 1] = {
    [LLMOPS_CATEGORY_EXPERIMENT_TRACKING] = {LLMOPS_TRACKING_ABI_OLDEST, LLMOPS_TRACKING_ABI,
                                             (missing_op_fn)llmops_tracking_missing_op},
    [LLMOPS_CATEGORY_SERVING] = {LLMOPS_SERVING_ABI_OLDEST, LLMOPS_SERVING_ABI,
                                 (missing_op_fn)llmops_serving_missing_op},
    [LLMOPS_CATEGORY_ORCHESTRATION] = {LLMOPS_ORCHESTRATION_ABI_OLDEST, LLMOPS_ORCHESTRATION_ABI,
                                       (missing_op_fn)llmops_orchestration_missing_op},
    [LLMOPS_CATEGORY_MODEL_REGISTRY] = {LLMOPS_REGISTRY_ABI_OLDEST, LLMOPS_REGISTRY_ABI,
                                        (missing_op_fn)llmops_registry_missing_op},
    [LLMOPS_CATEGORY_DATA_VERSIONING] = {LLMOPS_VERSIONING_ABI_OLDEST, LLMOPS_VERSIONING_ABI,
                                         (missing_op_fn)llmops_versioning_missing_op},
};

/* The ABI 1.0 descriptor ends with capabilities: later minors may only grow past it, so a
 * 1.0 module stays loadable when the struct grows. */
#define PLUGIN_DESCRIPTOR_1_0_SIZE                                                                 \
    (offsetof(struct llmops_plugin, capabilities) +                                                \
     sizeof(((struct llmops_plugin *)0)->capabilities))

int module_open(const char *dir, const char *name, struct module *out, char *msg, size_t msgsize)
{
    memset(out, 0, sizeof *out);
    if (!valid_module_name(name)) {
        snprintf(msg, msgsize,
                 "module '%s' is not a module name (1-63 of a-z 0-9 _ -, no path, no .so): set "
                 "module = NAME to load %s/NAME.so",
                 name, dir);
        return -1;
    }
    char path[4096];
    if (util_fmt(path, sizeof path, "%s/%s.so", dir, name) < 0) {
        snprintf(msg, msgsize, "plugin_dir %s is too long", dir);
        return -1;
    }
    /* Exact name, regular file, no symlink (collectd). */
    struct stat sb;
    if (lstat(path, &sb) != 0) {
        snprintf(msg, msgsize,
                 "%s: %s; expected the module file there (install its package, e.g. "
                 "llm-ops-plugin-%s, or check [server] plugin_dir)",
                 path, strerror(errno), name);
        return -1;
    }
    if (S_ISLNK(sb.st_mode) || !S_ISREG(sb.st_mode)) {
        snprintf(msg, msgsize, "%s: is %s, not a regular file; expected the module itself there",
                 path, S_ISLNK(sb.st_mode) ? "a symbolic link" : "not a regular file");
        return -1;
    }
    unsigned char head[4] = {0};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t got = fd >= 0 ? read(fd, head, sizeof head) : -1;
    if (fd >= 0)
        close(fd);
    if (got != 4 || memcmp(head,
                           "\x7f"
                           "ELF",
                           4) != 0) {
        snprintf(msg, msgsize,
                 "%s: not an ELF shared object (it starts with %02x %02x %02x %02x); expected a "
                 "module built with pkg-config --cflags llmops-plugin",
                 path, head[0], head[1], head[2], head[3]);
        return -1;
    }
    dlerror();
    void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        const char *e = dlerror();
        snprintf(msg, msgsize, "%s: cannot be loaded: %s", path, e ? e : "unknown error");
        return -1;
    }
    llmops_plugin_entry_fn entry;
    *(void **)(&entry) = dlsym(dl, LLMOPS_PLUGIN_ENTRY_SYMBOL);
    if (!entry) {
        snprintf(msg, msgsize,
                 "%s: does not export %s(): not an llm-ops plugin (declare it with "
                 "LLMOPS_PLUGIN_DEFINE from llmops-plugin.h)",
                 path, LLMOPS_PLUGIN_ENTRY_SYMBOL);
        dlclose(dl);
        return -1;
    }
    const struct llmops_plugin *d = entry();
    const char *bad = NULL;
    char found[200] = "";
    if (!d || d->magic.magic != LLMOPS_PLUGIN_MAGIC ||
        d->magic.size < sizeof(struct llmops_plugin_magic)) {
        bad = "no llm-ops magic block at the start of its descriptor";
        snprintf(found, sizeof found, "rebuild it with LLMOPS_PLUGIN_MAGIC_INIT");
    } else if (d->magic.abi_major != LLMOPS_PLUGIN_ABI_MAJOR) {
        bad = "an incompatible plugin ABI";
        snprintf(found, sizeof found,
                 "module has ABI %u.%u, server has ABI %d.%d: rebuild the module against "
                 "llmops-plugin %d.x (or install its package built for llm-ops-plugin-abi-%d)",
                 d->magic.abi_major, d->magic.abi_minor, LLMOPS_PLUGIN_ABI_MAJOR,
                 LLMOPS_PLUGIN_ABI_MINOR, LLMOPS_PLUGIN_ABI_MAJOR, LLMOPS_PLUGIN_ABI_MAJOR);
    } else if (d->magic.abi_minor > LLMOPS_PLUGIN_ABI_MINOR) {
        bad = "a newer plugin ABI than this server";
        snprintf(found, sizeof found,
                 "module has ABI %u.%u, server has ABI %d.%d: upgrade llm-ops-server",
                 d->magic.abi_major, d->magic.abi_minor, LLMOPS_PLUGIN_ABI_MAJOR,
                 LLMOPS_PLUGIN_ABI_MINOR);
    } else if (d->magic.pointer_bits != 8 * sizeof(void *) ||
               d->magic.jansson_major != JANSSON_MAJOR_VERSION) {
        bad = "a different build signature";
        snprintf(found, sizeof found,
                 "module: %u-bit pointers, jansson %u; server: %zu-bit, jansson %d",
                 d->magic.pointer_bits, d->magic.jansson_major, 8 * sizeof(void *),
                 JANSSON_MAJOR_VERSION);
    } else if (d->size < PLUGIN_DESCRIPTOR_1_0_SIZE) {
        bad = "a descriptor smaller than ABI 1.0's";
        snprintf(found, sizeof found, "size %u, expected at least %zu", d->size,
                 (size_t)PLUGIN_DESCRIPTOR_1_0_SIZE);
    } else if (!d->name || strcmp(d->name, name) != 0) {
        bad = "another name inside";
        snprintf(found, sizeof found, "the descriptor says '%s'; the file name must match it",
                 d->name ? d->name : "(null)");
    } else if (!category_name((int)d->category)) {
        bad = "an unknown category";
        snprintf(found, sizeof found, "category %d; known: %s", (int)d->category, category_list());
    } else {
        /* Janus: refuse a module whose required methods are missing. */
        const char *missing = !d->init           ? "init"
                              : !d->fini         ? "fini"
                              : !d->health       ? "health"
                              : !d->capabilities ? "capabilities"
                              : !d->ops          ? "ops"
                                                 : NULL;
        if (missing) {
            bad = "a required method missing";
            snprintf(found, sizeof found, "'%s' is NULL; every module must implement it", missing);
        } else {
            int c = (int)d->category;
            const char *op = interfaces[c].missing(d->ops);
            if (d->category_abi < interfaces[c].oldest || d->category_abi > interfaces[c].newest) {
                bad = "an unsupported category interface";
                snprintf(found, sizeof found,
                         "%s interface %u; this server takes %u to %u: rebuild the module against "
                         "this server's llmops-%s header",
                         category_name(c), d->category_abi, interfaces[c].oldest,
                         interfaces[c].newest, category_name(c));
            } else if (op) {
                bad = "a required operation missing";
                snprintf(found, sizeof found,
                         "%s operation '%s' is NULL; every %s module must implement it",
                         category_name(c), op, category_name(c));
            }
        }
    }
    if (bad) {
        snprintf(msg, msgsize, "%s: refused: %s (%s)", path, bad, found);
        dlclose(dl);
        return -1;
    }
    out->name = strdup(name);
    out->path = strdup(path);
    out->dl = dl;
    out->desc = d;
    return 0;
}

void module_close(struct module *m)
{
    if (m->dl)
        dlclose(m->dl);
    free(m->name);
    free(m->path);
    memset(m, 0, sizeof *m);
}

int plugin_status_to_api(enum llmops_status st)
{
    switch (st) {
    case LLMOPS_ERR_INVALID:
        return API_VALIDATION_FAILED;
    case LLMOPS_ERR_UNSUPPORTED:
        return API_VALIDATION_FAILED;
    case LLMOPS_ERR_NOT_FOUND:
        return API_NOT_FOUND;
    case LLMOPS_ERR_CONFLICT:
        return API_CONFLICT;
    case LLMOPS_ERR_UNAVAILABLE:
        return API_TOOL_UNAVAILABLE;
    case LLMOPS_ERR_TOOL:
        return API_TOOL_ERROR;
    default:
        return API_INTERNAL;
    }
}

/* ------------------------------------------------------------------ host services */

static struct instance *inst_of(const struct llmops_host *h)
{
    return h->core_private;
}

static void host_log(const struct llmops_host *h, enum llmops_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void host_log(const struct llmops_host *h, enum llmops_log_level level, const char *fmt, ...)
{
    char msg[1500];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    enum log_level l = level <= LLMOPS_LOG_DEBUG     ? LOG_LVL_DEBUG
                       : level == LLMOPS_LOG_INFO    ? LOG_LVL_INFO
                       : level == LLMOPS_LOG_WARNING ? LOG_LVL_WARNING
                                                     : LOG_LVL_ERROR;
    log_instance(l, h->instance, msg);
}

static const struct conf_kv *find_kv(const struct llmops_host *h, const char *key)
{
    const struct conf_plugin *p = inst_of(h)->cfg;
    for (int i = 0; i < p->nkv; i++)
        if (strcmp(p->kv[i].key, key) == 0)
            return &p->kv[i];
    return NULL;
}

static const char *host_config_string(const struct llmops_host *h, const char *key, const char *def)
{
    const struct conf_kv *kv = find_kv(h, key);
    return kv ? kv->value : def;
}

static long long host_config_int(const struct llmops_host *h, const char *key, long long def)
{
    const struct conf_kv *kv = find_kv(h, key);
    long long v;
    if (!kv || util_parse_int(kv->value, -(1LL << 62), 1LL << 62, &v, NULL) < 0)
        return def;
    return v;
}

static int parse_bool(const char *v)
{
    if (!strcasecmp(v, "on") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcmp(v, "1"))
        return 1;
    if (!strcasecmp(v, "off") || !strcasecmp(v, "false") || !strcasecmp(v, "no") || !strcmp(v, "0"))
        return 0;
    return -1;
}

static int host_config_bool(const struct llmops_host *h, const char *key, int def)
{
    const struct conf_kv *kv = find_kv(h, key);
    int b = kv ? parse_bool(kv->value) : -1;
    return b < 0 ? def : b;
}

static const char *host_config_where(const struct llmops_host *h, const char *key)
{
    const struct conf_kv *kv = find_kv(h, key);
    return kv ? kv->where : inst_of(h)->cfg->where;
}

static int host_secret(const struct llmops_host *h, const char *key, char *buf, size_t size,
                       struct llmops_error *err)
{
    const struct conf_kv *kv = find_kv(h, key);
    char m[300];
    if (!kv) {
        snprintf(m, sizeof m, "instance %s: no %s is configured", h->instance, key);
        return llmops_fail(err, LLMOPS_ERR_INVALID, 0, 0, m);
    }
    size_t len;
    char *content = util_read_file(kv->value, &len);
    if (!content) {
        snprintf(m, sizeof m, "%s: cannot read the %s of instance %s: %s", kv->where, key,
                 h->instance, strerror(errno));
        return llmops_fail(err, LLMOPS_ERR_INVALID, 0, 0, m);
    }
    while (len > 0 && (content[len - 1] == '\n' || content[len - 1] == '\r'))
        len--;
    if (len + 1 > size) {
        free(content);
        snprintf(m, sizeof m, "%s: the %s of instance %s is too long", kv->where, key, h->instance);
        return llmops_fail(err, LLMOPS_ERR_INVALID, 0, 0, m);
    }
    memcpy(buf, content, len);
    buf[len] = '\0';
    memset(content, 0, len);
    free(content);
    return 0;
}

static int host_http(const struct llmops_host *h, const struct llmops_http_request *req,
                     struct llmops_http_response *resp, struct llmops_error *err)
{
    struct instance *in = inst_of(h);
    if (!in->http)
        return llmops_fail(err, LLMOPS_ERR_INVALID, 0, 0,
                           "this instance has no url configured for HTTP calls");
    return httpc_request(in->http, req, resp, err);
}

static void host_http_free(struct llmops_http_response *resp)
{
    httpc_response_free(resp);
}

static int64_t host_now_ms(void)
{
    return util_now_ms();
}

static int64_t host_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Counter names are snake_case suffixes (the header's rule); others are refused, logged. */
static int valid_metric_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n >= sizeof(((struct instance_metric *)0)->name) ||
        !(name[0] >= 'a' && name[0] <= 'z'))
        return 0;
    return strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") == n;
}

static void host_metric_add(const struct llmops_host *h, const char *name, double value)
{
    struct instance *in = inst_of(h);
    if (!name || !valid_metric_name(name) || !(value >= 0)) {
        log_warning("instance %s: metric '%s' refused (snake_case name, value >= 0)", h->instance,
                    name ? name : "(null)");
        return;
    }
    for (int i = 0; i < in->nmetrics; i++) {
        if (strcmp(in->metrics[i].name, name) == 0) {
            in->metrics[i].value += value;
            return;
        }
    }
    if (in->nmetrics == INSTANCE_METRICS) {
        log_warning("instance %s: more than %d metrics; '%s' dropped", h->instance,
                    INSTANCE_METRICS, name);
        return;
    }
    snprintf(in->metrics[in->nmetrics].name, sizeof in->metrics[0].name, "%s", name);
    in->metrics[in->nmetrics++].value = value;
}

static void *host_db_exec(const struct llmops_host *h, const char *sql, int nparams,
                          const char *const *params, struct llmops_error *err)
{
    struct instance *in = inst_of(h);
    if (!in->reg->db) {
        llmops_fail(err, LLMOPS_ERR_UNSUPPORTED, 0, 0, "no database in this process");
        return NULL;
    }
    struct db_error e;
    PGresult *r = db_exec(in->reg->db, sql, nparams, params, &e);
    if (!r)
        llmops_fail(err, e.status == DB_UNAVAILABLE ? LLMOPS_ERR_UNAVAILABLE : LLMOPS_ERR_INTERNAL,
                    0, e.status == DB_UNAVAILABLE, e.message);
    return r;
}

static void host_db_clear(void *result)
{
    if (result)
        PQclear(result);
}

/* 1.1: reading a result without libpq in the module. */
static int host_db_rows(const void *result)
{
    return result ? PQntuples(result) : 0;
}

static int host_db_columns(const void *result)
{
    return result ? PQnfields(result) : 0;
}

static const char *host_db_value(const void *result, int row, int column)
{
    if (!result || row < 0 || column < 0 || row >= PQntuples(result) ||
        column >= PQnfields(result) || PQgetisnull(result, row, column))
        return NULL;
    return PQgetvalue(result, row, column);
}

static const char *host_db_column_name(const void *result, int column)
{
    return result && column >= 0 && column < PQnfields(result) ? PQfname(result, column) : NULL;
}

static long long host_db_affected(const void *result)
{
    long long n = 0;
    const char *v = result ? PQcmdTuples((PGresult *)result) : "";
    if (!v || !*v || util_parse_int(v, 0, 1LL << 62, &n, NULL) < 0)
        return 0;
    return n;
}

static const char *host_http_header(const struct llmops_http_response *resp, const char *name)
{
    return httpc_response_header(resp, name);
}

/* ------------------------------------------------------------------ instances */

/* Keys every instance may set: the core reads them (HTTP client, version policy). */
static const struct llmops_config_key core_keys[] = {
    {"url", LLMOPS_CONFIG_URL, 0, 0, 0, "the tool's base URL"},
    {"connect_timeout_ms", LLMOPS_CONFIG_INT, 0, 100, 60000, "per connection attempt"},
    {"timeout_ms", LLMOPS_CONFIG_INT, 0, 100, 600000, "a whole call, retries included"},
    {"retries", LLMOPS_CONFIG_INT, 0, 0, 10, "extra attempts on connection errors, 429, 5xx"},
    {"tls_verify", LLMOPS_CONFIG_BOOL, 0, 0, 0, "verify the tool's certificate (default on)"},
    {"ca_file", LLMOPS_CONFIG_FILE, 0, 0, 0, "CA bundle for the tool's certificate"},
    {"token_file", LLMOPS_CONFIG_FILE, 0, 0, 0, "a file holding the tool's bearer token"},
    {"basic_auth_file", LLMOPS_CONFIG_FILE, 0, 0, 0, "a file holding user:password for the tool"},
    {"allowed_hosts", LLMOPS_CONFIG_STRING, 0, 0, 0,
     "more hosts that absolute URLs and redirects may go to (names or *.suffix)"},
    {"unsupported_version", LLMOPS_CONFIG_STRING, 0, 0, 0,
     "refuse or degrade when the tool's version is outside the module's range"},
    {NULL, 0, 0, 0, 0, NULL},
};

/* Checks a section against the module's key table and the core's: unknown, missing,
 * mistyped keys. */
static int check_keys(const struct instance *in, struct conf_errors *errs)
{
    const struct llmops_config_key *keys = in->mod->desc->config_keys;
    int problems = 0;
    const struct conf_plugin *p = in->cfg;
    for (int i = 0; i < p->nkv; i++) {
        const struct llmops_config_key *k = NULL;
        for (const struct llmops_config_key *q = keys; q && q->name; q++)
            if (strcmp(q->name, p->kv[i].key) == 0)
                k = q;
        for (const struct llmops_config_key *q = core_keys; !k && q->name; q++)
            if (strcmp(q->name, p->kv[i].key) == 0)
                k = q;
        if (k && strcmp(k->name, "unsupported_version") == 0 &&
            strcmp(p->kv[i].value, "refuse") != 0 && strcmp(p->kv[i].value, "degrade") != 0) {
            conf_error(errs, p->kv[i].where, "unsupported_version: '%s' is not refuse or degrade",
                       p->kv[i].value);
            problems++;
            continue;
        }
        const char *v = p->kv[i].value;
        if (!k) {
            char known[512] = "module, url, connect_timeout_ms, timeout_ms, retries, tls_verify, "
                              "ca_file, token_file, basic_auth_file, allowed_hosts, "
                              "unsupported_version";
            size_t used = strlen(known);
            for (const struct llmops_config_key *q = keys; q && q->name; q++) {
                int w = snprintf(known + used, sizeof known - used, ", %s", q->name);
                if (w > 0 && (size_t)w < sizeof known - used)
                    used += (size_t)w;
            }
            conf_error(errs, p->kv[i].where,
                       "unknown key '%s' for module %s in [plugin \"%s\"] (known: %s)",
                       p->kv[i].key, in->mod->name, p->name, known);
            problems++;
            continue;
        }
        long long n;
        const char *why = NULL;
        switch (k->type) {
        case LLMOPS_CONFIG_INT:
            if (util_parse_int(v, k->min, k->max, &n, &why) < 0) {
                conf_error(errs, p->kv[i].where, "%s: '%s' %s (expected an integer %lld-%lld)",
                           k->name, v, why, k->min, k->max);
                problems++;
            }
            break;
        case LLMOPS_CONFIG_BOOL:
            if (parse_bool(v) < 0) {
                conf_error(errs, p->kv[i].where, "%s: '%s' is not on or off", k->name, v);
                problems++;
            }
            break;
        case LLMOPS_CONFIG_URL:
            if (strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0) {
                conf_error(errs, p->kv[i].where, "%s: '%s' is not an http:// or https:// URL",
                           k->name, v);
                problems++;
            }
            break;
        case LLMOPS_CONFIG_FILE:
            if (access(v, R_OK) != 0) {
                conf_error(errs, p->kv[i].where, "%s: cannot read %s: %s", k->name, v,
                           strerror(errno));
                problems++;
            }
            break;
        default:
            break;
        }
    }
    for (const struct llmops_config_key *q = keys; q && q->name; q++) {
        int set = 0;
        for (int i = 0; i < p->nkv; i++)
            if (strcmp(p->kv[i].key, q->name) == 0)
                set = 1;
        if (q->required && !set) {
            conf_error(errs, p->where, "[plugin \"%s\"] needs key '%s' (%s)", p->name, q->name,
                       q->help ? q->help : "required by its module");
            problems++;
        }
    }
    return problems;
}

static void fail_instance(struct instance *in, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void fail_instance(struct instance *in, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(in->reason, sizeof in->reason, fmt, ap);
    va_end(ap);
    in->st = INSTANCE_FAILED;
    log_error("instance %s failed: %s", in->name, in->reason);
}

static void setup_host(struct instance *in)
{
    struct llmops_host *h = &in->host;
    memset(h, 0, sizeof *h);
    h->size = sizeof *h;
    h->abi_major = LLMOPS_PLUGIN_ABI_MAJOR;
    h->abi_minor = LLMOPS_PLUGIN_ABI_MINOR;
    h->instance = in->name;
    h->module = in->mod->name;
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
    h->core_private = in;
    /* 1.1 */
    h->http_header = host_http_header;
    h->digest = digest_buffer;
    h->digest_file = digest_file;
    h->version_compare = util_version_cmp;
    h->version_in_range = util_version_in_range;
    h->db_rows = host_db_rows;
    h->db_columns = host_db_columns;
    h->db_value = host_db_value;
    h->db_column_name = host_db_column_name;
    h->db_affected = host_db_affected;
    h->op_ctx = operations_host_ctx;
}

/* "Authorization: Bearer ..." from token_file, or "Authorization: Basic ..." from
 * basic_auth_file; "" when neither is set. */
static int auth_header(struct instance *in, char *out, size_t size, struct conf_errors *errs)
{
    char secret[800];
    struct llmops_error err = {.size = sizeof err};
    out[0] = '\0';
    int bearer = find_kv(&in->host, "token_file") != NULL;
    int basic = find_kv(&in->host, "basic_auth_file") != NULL;
    if (!bearer && !basic)
        return 0;
    if (in->host.secret(&in->host, bearer ? "token_file" : "basic_auth_file", secret, sizeof secret,
                        &err) < 0) {
        conf_error(errs, in->cfg->where, "[plugin \"%s\"]: %s", in->name, err.message);
        log_error("instance %s: %s", in->name, err.message);
        return -1;
    }
    if (bearer) {
        snprintf(out, size, "Authorization: Bearer %s", secret);
    } else {
        unsigned char b64[1100];
        EVP_EncodeBlock(b64, (const unsigned char *)secret, (int)strlen(secret));
        snprintf(out, size, "Authorization: Basic %s", (const char *)b64);
        explicit_bzero(b64, sizeof b64);
    }
    explicit_bzero(secret, sizeof secret);
    return 0;
}

static struct module *get_module(struct plugin_registry *reg, const char *name, char *msg,
                                 size_t msgsize)
{
    for (int i = 0; i < reg->nmods; i++)
        if (strcmp(reg->mods[i].name, name) == 0)
            return &reg->mods[i];
    struct module m;
    if (module_open(reg->conf->plugin_dir, name, &m, msg, msgsize) < 0)
        return NULL;
    reg->mods[reg->nmods] = m;
    return &reg->mods[reg->nmods++];
}

int plugins_load(struct plugin_registry *reg, const struct llmops_conf *conf, struct db *db,
                 int init, struct conf_errors *errs)
{
    memset(reg, 0, sizeof *reg);
    reg->conf = conf;
    reg->db = db;
    reg->policy.window_ms = conf->breaker_window_seconds * 1000;
    reg->policy.min_calls = (unsigned)conf->breaker_min_calls;
    reg->policy.error_percent = (unsigned)conf->breaker_error_percent;
    reg->policy.open_ms = conf->breaker_open_seconds * 1000;
    int before = errs->n;
    if (conf->nplugins == 0)
        return 0;
    reg->mods = calloc((size_t)conf->nplugins, sizeof *reg->mods);
    reg->insts = calloc((size_t)conf->nplugins, sizeof *reg->insts);
    if (!reg->mods || !reg->insts)
        return 1;
    for (int i = 0; i < conf->nplugins; i++) {
        const struct conf_plugin *p = &conf->plugins[i];
        struct instance *in = &reg->insts[reg->ninsts++];
        in->name = p->name;
        in->cfg = p;
        in->reg = reg;
        breaker_init(&in->breaker, &reg->policy);
        char msg[1024];
        in->mod = p->module ? get_module(reg, p->module, msg, sizeof msg) : NULL;
        if (!in->mod) {
            if (p->module) {
                conf_error(errs, p->where, "[plugin \"%s\"]: %s", p->name, msg);
                fail_instance(in, "%s", msg);
            } else {
                fail_instance(in, "no module key");
            }
            continue;
        }
        int bad_keys = check_keys(in, errs);
        if (bad_keys) {
            fail_instance(in,
                          "%d configuration problem%s in its section (see llm-opsd "
                          "--check-config)",
                          bad_keys, bad_keys == 1 ? "" : "s");
            continue;
        }
        setup_host(in);
        const char *url = host_config_string(&in->host, "url", NULL);
        char auth[1200] = "";
        if (url && auth_header(in, auth, sizeof auth, errs) < 0) {
            fail_instance(in, "its credentials cannot be read (see the log)");
            continue;
        }
        if (url) {
            /* Every other URL-typed key of the module is an endpoint (ui_url, logs_url, ...). */
            struct httpc_endpoint eps[8];
            int neps = 0;
            for (const struct llmops_config_key *q = in->mod->desc->config_keys; q && q->name;
                 q++) {
                const char *v = host_config_string(&in->host, q->name, NULL);
                if (q->type == LLMOPS_CONFIG_URL && v && strcmp(q->name, "url") != 0 &&
                    neps < (int)UTIL_ARRAY_LEN(eps) - 1)
                    eps[neps++] = (struct httpc_endpoint){q->name, v};
            }
            const char *token_file = host_config_string(&in->host, "token_file", NULL);
            const char *basic_file = host_config_string(&in->host, "basic_auth_file", NULL);
            struct httpc_config hc = {
                .base_url = url,
                .connect_timeout_ms = host_config_int(&in->host, "connect_timeout_ms", 2000),
                .total_timeout_ms = host_config_int(&in->host, "timeout_ms", 10000),
                .max_retries = (int)host_config_int(&in->host, "retries", 2),
                .backoff_base_ms = 100,
                .backoff_max_ms = 2000,
                .verify_tls = host_config_bool(&in->host, "tls_verify", 1),
                .ca_file = host_config_string(&in->host, "ca_file", NULL),
                .user_agent = "llm-ops",
                /* The secret file itself, read again when it changes (rotated tokens);
                 * auth_header() above only checked that it reads. */
                .auth_file = token_file ? token_file : basic_file,
                .auth_scheme = token_file ? "Bearer" : "Basic",
                .endpoints = eps,
                .nendpoints = neps,
                .allowed_hosts = host_config_string(&in->host, "allowed_hosts", NULL),
            };
            in->http = httpc_new(&hc);
            explicit_bzero(auth, sizeof auth);
        }
        if (!init)
            continue;
        struct llmops_error err = {.size = sizeof err};
        if (in->mod->desc->init(&in->host, &in->state, &err) != 0) {
            conf_error(errs, p->where, "[plugin \"%s\"]: init failed: %s", p->name, err.message);
            fail_instance(in, "init failed: %s", err.message);
            continue;
        }
        in->initialised = 1;
        in->st = INSTANCE_OK;
        plugins_refresh_capabilities(in);
        log_info("instance %s ready (module %s %s, %s)", in->name, in->mod->name,
                 in->mod->desc->version ? in->mod->desc->version : "?",
                 category_name((int)in->mod->desc->category));
    }
    /* Janus: a module none of whose instances came up is closed again. */
    for (int m = 0; m < reg->nmods; m++) {
        int used = 0;
        for (int i = 0; i < reg->ninsts; i++)
            if (reg->insts[i].mod == &reg->mods[m] && (reg->insts[i].initialised || !init))
                used = 1;
        if (!used && reg->mods[m].dl) {
            for (int i = 0; i < reg->ninsts; i++)
                if (reg->insts[i].mod == &reg->mods[m])
                    reg->insts[i].mod = NULL;
            module_close(&reg->mods[m]);
        }
    }
    return errs->n - before;
}

void plugins_refresh_capabilities(struct instance *in)
{
    json_decref(in->caps);
    in->caps = NULL;
    in->caps_loaded = 1;
    if (!in->initialised || !in->mod || !in->mod->desc->capabilities)
        return;
    json_t *out = NULL;
    struct llmops_error err = {.size = sizeof err};
    if (in->mod->desc->capabilities(in->state, &out, &err) == 0 &&
        json_is_array(json_object_get(out, "operations")))
        in->caps = out;
    else
        json_decref(out);
}

void plugins_unload(struct plugin_registry *reg)
{
    for (int i = 0; i < reg->ninsts; i++) {
        struct instance *in = &reg->insts[i];
        if (in->initialised && in->mod)
            in->mod->desc->fini(in->state);
        if (in->http)
            httpc_free(in->http);
        json_decref(in->caps);
        in->caps = NULL;
    }
    for (int m = 0; m < reg->nmods; m++)
        if (reg->mods[m].dl)
            module_close(&reg->mods[m]);
    free(reg->mods);
    free(reg->insts);
    memset(reg, 0, sizeof *reg);
}

struct instance *plugins_find(struct plugin_registry *reg, const char *name)
{
    for (int i = 0; i < reg->ninsts; i++)
        if (strcmp(reg->insts[i].name, name) == 0)
            return &reg->insts[i];
    return NULL;
}
