/*
 * llmops-plugin.h — the ABI between llm-opsd and its adapter plugins.
 *
 * A plugin is a shared object that exports exactly one function, llmops_plugin_entry(),
 * returning a `struct llmops_plugin` descriptor. The descriptor starts with a magic block
 * (PostgreSQL's Pg_magic_struct idea) that the core checks before it touches anything else.
 * The core hands each instance a `struct llmops_host` table of services; plugins never link
 * against the core. Every struct that crosses the boundary carries its size first and only
 * grows at the end. See llmops-plugin(7) and plugin-api/ABI-CHANGES.md.
 *
 * Ownership: unless a comment says otherwise, pointers passed into a plugin are borrowed
 * for the duration of the call; json_t values a plugin returns through an `out` parameter
 * are new references that the core releases (json_decref).
 */
#ifndef LLMOPS_PLUGIN_H
#define LLMOPS_PLUGIN_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ABI major: a change that breaks installed plugins. Minor: additions at the end of
 * structs. The core loads a plugin whose major equals its own and whose minor is not newer. */
#define LLMOPS_PLUGIN_ABI_MAJOR 1
#define LLMOPS_PLUGIN_ABI_MINOR 1

/* The minor a module targets (like _WIN32_WINNT): define it to an older minor before this
 * header to build a module that an older core loads; the members added after that minor are
 * then left out, the structs have that minor's sizes and the magic block says that minor.
 * The core always builds with the header's own minor. */
#ifndef LLMOPS_PLUGIN_TARGET_MINOR
#define LLMOPS_PLUGIN_TARGET_MINOR LLMOPS_PLUGIN_ABI_MINOR
#endif
#if LLMOPS_PLUGIN_TARGET_MINOR < 0 || LLMOPS_PLUGIN_TARGET_MINOR > LLMOPS_PLUGIN_ABI_MINOR
#error "LLMOPS_PLUGIN_TARGET_MINOR must lie between 0 and LLMOPS_PLUGIN_ABI_MINOR"
#endif

#define LLMOPS_PLUGIN_MAGIC 0x4c4f5053u /* "LOPS" */
#define LLMOPS_PLUGIN_ENTRY_SYMBOL "llmops_plugin_entry"

#if defined(__GNUC__)
#define LLMOPS_PLUGIN_EXPORT __attribute__((visibility("default")))
#define LLMOPS_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define LLMOPS_PLUGIN_EXPORT
#define LLMOPS_PRINTF(f, a)
#endif

/* ------------------------------------------------------------------ magic block */

struct llmops_plugin_magic {
    uint32_t magic;         /* LLMOPS_PLUGIN_MAGIC */
    uint32_t size;          /* sizeof(struct llmops_plugin_magic) */
    uint16_t abi_major;     /* LLMOPS_PLUGIN_ABI_MAJOR the plugin was built with */
    uint16_t abi_minor;     /* LLMOPS_PLUGIN_ABI_MINOR the plugin was built with */
    uint16_t pointer_bits;  /* build signature: 8 * sizeof(void *) */
    uint16_t jansson_major; /* build signature: json_t values cross the boundary */
};

#define LLMOPS_PLUGIN_MAGIC_INIT                                                                   \
    {                                                                                              \
        LLMOPS_PLUGIN_MAGIC, (uint32_t)sizeof(struct llmops_plugin_magic),                         \
            LLMOPS_PLUGIN_ABI_MAJOR, LLMOPS_PLUGIN_TARGET_MINOR, (uint16_t)(8 * sizeof(void *)),   \
            JANSSON_MAJOR_VERSION                                                                  \
    }

/* ------------------------------------------------------------------ categories */

enum llmops_category {
    LLMOPS_CATEGORY_EXPERIMENT_TRACKING = 1,
    LLMOPS_CATEGORY_SERVING = 2,
    LLMOPS_CATEGORY_ORCHESTRATION = 3,
    LLMOPS_CATEGORY_MODEL_REGISTRY = 4,
    LLMOPS_CATEGORY_DATA_VERSIONING = 5,
};

/* ------------------------------------------------------------------ errors */

/* What went wrong, as the core maps it to the API's error codes. */
enum llmops_status {
    LLMOPS_OK = 0,
    LLMOPS_ERR_INVALID = 1,   /* the request is wrong: VALIDATION_FAILED (400) */
    LLMOPS_ERR_NOT_FOUND = 2, /* NOT_FOUND (404) */
    LLMOPS_ERR_CONFLICT = 3,  /* CONFLICT (409) */
    LLMOPS_ERR_UNAVAILABLE =
        4,               /* the tool cannot be reached or timed out: TOOL_UNAVAILABLE (503) */
    LLMOPS_ERR_TOOL = 5, /* the tool answered with an error: TOOL_ERROR (502) */
    LLMOPS_ERR_UNSUPPORTED = 6, /* this module or tool version cannot do it: VALIDATION_FAILED */
    LLMOPS_ERR_INTERNAL = 7,    /* a bug in the plugin: INTERNAL (500) */
};

/* Filled by a plugin when an operation fails. The message must never contain a secret. */
struct llmops_error {
    uint32_t size; /* set by the core: sizeof(struct llmops_error) */
    enum llmops_status code;
    int tool_status; /* the tool's HTTP status, 0 when there was no answer */
    int retryable;   /* 1 when trying again later may succeed */
    char message[512];
};

/* ------------------------------------------------------------------ configuration keys */

enum llmops_config_type {
    LLMOPS_CONFIG_STRING = 1,
    LLMOPS_CONFIG_INT = 2,  /* min..max */
    LLMOPS_CONFIG_BOOL = 3, /* on/off, true/false, yes/no */
    LLMOPS_CONFIG_URL = 4,  /* http:// or https:// */
    LLMOPS_CONFIG_FILE = 5, /* a path to a readable file (secrets: token_file, ...) */
};

/* The keys of an instance's [plugin "NAME"] section that the module accepts. The core checks
 * the section against this table before init (unknown key, wrong type, missing required
 * key → file:line errors), so a module never sees an invalid configuration. The table ends
 * with an entry whose name is NULL. `module` is always accepted and never listed. */
struct llmops_config_key {
    const char *name;
    enum llmops_config_type type;
    int required;
    long long min, max; /* LLMOPS_CONFIG_INT only */
    const char *help;   /* one line, shown when a required key is missing */
};

/* The keys the core itself reads in every instance's section, on top of the module's own
 * (a module never lists them; the core checks them; see llm-ops.conf(5)):
 *   url                 URL   the tool's base URL: host->http's default endpoint
 *   connect_timeout_ms  INT   100..60000, per connection attempt (default 2000)
 *   timeout_ms          INT   100..600000, a whole call, retries and waits included (10000)
 *   retries             INT   0..10, extra attempts on connection errors, 429, 5xx (2)
 *   tls_verify          BOOL  verify the tool's certificate (default on)
 *   ca_file             FILE  a CA bundle (PEM) for the tool's certificate
 *   token_file          FILE  "Authorization: Bearer <content>"; read again when the file
 *                             changes (a rotated Kubernetes service-account token)
 *   basic_auth_file     FILE  "Authorization: Basic <base64 of user:password>", likewise
 *   allowed_hosts       STRING  [1.1] hosts, besides those of the instance's URL keys, that
 *                             absolute URLs and redirects may go to: names or *.suffix,
 *                             separated by commas or blanks
 *   unsupported_version STRING  refuse or degrade (default) when health reports a tool
 *                             version outside tool_version_min..tool_version_max
 *   module              STRING  the module's name (always accepted)
 * Every key of type LLMOPS_CONFIG_URL, the core's `url` and a module's own (`ui_url`,
 * `logs_url`, ...), is an endpoint that llmops_http_request.endpoint can name [1.1]. */

/* ------------------------------------------------------------------ host services */

enum llmops_log_level {
    LLMOPS_LOG_DEBUG = 0,
    LLMOPS_LOG_INFO = 1,
    LLMOPS_LOG_WARNING = 2,
    LLMOPS_LOG_ERROR = 3,
};

/* One HTTP call to the instance's tool. The core's client adds the base URL, timeouts,
 * retries (connection errors, 429 and 5xx, honouring Retry-After; only for idempotent
 * methods unless `retry_unsafe` is set), TLS verification and the auth header from the
 * instance's secret file, and reuses connections.
 *
 * [1.1] The auth header goes only to the origins (scheme, host, port) of the instance's URL
 * keys: never to another host named by `url`, and never after a redirect that changed the
 * origin (a CDN, a presigned URL). The request's own credential headers (Authorization,
 * Cookie, X-Api-Key, ...) are dropped on such a redirect too. Absolute URLs and redirect
 * targets must be on a host the instance allows (its URL keys' hosts, allowed_hosts);
 * others are refused (INVALID for `url`, TOOL for a redirect) with a message naming the
 * host and the key to set. A redirect from https to http is refused. 303, and 301/302
 * after a POST, continue as GET without a body; 307 and 308 repeat the method and body. */
struct llmops_http_request {
    uint32_t size;              /* sizeof(struct llmops_http_request) */
    const char *method;         /* "GET", "POST", ... */
    const char *path;           /* appended to the instance's base URL; may hold ?query */
    const char *const *headers; /* extra "Name: value" lines, NULL-terminated, or NULL */
    const char *body;           /* or NULL */
    size_t body_len;
    const char *content_type; /* of body; NULL → application/json when body is set */
    int retry_unsafe;         /* retry a non-idempotent method too (the plugin made it so) */
    long timeout_ms;          /* 0 → the instance's configured total timeout */
#if LLMOPS_PLUGIN_TARGET_MINOR >= 1
    /* ABI 1.1 (a 1.0 module's struct ends above: the core treats these as 0/NULL) */
    const char *endpoint; /* the URL key `path` is appended to: NULL → "url"; "ui_url", ... */
    const char *url;      /* instead of endpoint + path: an absolute http(s) URL on an allowed
                             host (path is then ignored) */
    int max_redirects;    /* redirects to follow, 0..20 (0: none, answer the 3xx itself) */
    const char *const *want_headers; /* response headers to keep besides Location, Link,
                                        ETag, Retry-After, Warning, Content-Length and
                                        Last-Modified; NULL-terminated, or NULL */
    const char *body_file;           /* stream the body from this file (body must be NULL; any
                                        size; content_type as for body) */
    const char *response_file;       /* a 2xx answer's body is streamed into this file (created or
                                        truncated; no size cap) instead of `body`; other answers'
                                        bodies stay in `body` under the cap and the file is left
                                        empty */
    /* Called while bytes move (at least once a second): totals are 0 when unknown. A
     * nonzero return aborts the call (UNAVAILABLE, "aborted by the module"). */
    int (*progress)(void *ctx, int64_t down_now, int64_t down_total, int64_t up_now,
                    int64_t up_total);
    void *progress_ctx;
#endif
};

struct llmops_http_response {
    uint32_t size; /* sizeof(struct llmops_http_response) */
    int status;    /* HTTP status of the final attempt */
    char *body;    /* NUL-terminated; owned by the core: release with http_free */
    size_t body_len;
    char content_type[128];
    int attempts; /* how many attempts were made */
#if LLMOPS_PLUGIN_TARGET_MINOR >= 1
    /* ABI 1.1, all owned by the core and released by http_free: */
    char *headers;      /* the kept headers of the final answer as "name\0value\0" pairs (names
                           lower case, in arrival order, repeats kept), ended by an empty name;
                           never NULL after a 0 return. Look one up with host->http_header. */
    char *url;          /* the final answer's URL (after redirects) without userinfo or query */
    int redirects;      /* how many redirects were followed */
    int64_t file_bytes; /* bytes written to response_file */
#endif
};

/* [1.1] Digest algorithms of host->digest and host->digest_file (libcrypto). */
enum llmops_digest {
    LLMOPS_DIGEST_MD5 = 1,    /* 32 hex digits: DVC's content ids, Content-MD5 */
    LLMOPS_DIGEST_SHA1 = 2,   /* 40: git blob ids */
    LLMOPS_DIGEST_SHA256 = 3, /* 64: Hugging Face LFS oids, OCI digests */
};
#define LLMOPS_DIGEST_HEX_MAX 65 /* the longest hex digest and its NUL */
struct llmops_op_ctx;            /* llmops-operations.h */

struct llmops_host {
    uint32_t size;      /* sizeof(struct llmops_host) as the core built it */
    uint16_t abi_major; /* the core's ABI */
    uint16_t abi_minor;
    const char *instance; /* the instance's name: [plugin "NAME"] */
    const char *module;   /* the module's name */

    /* Logging, prefixed with the instance name. */
    void (*log)(const struct llmops_host *h, enum llmops_log_level level, const char *fmt, ...)
        LLMOPS_PRINTF(3, 4);

    /* The instance's configuration section (already validated against config_keys).
     * config_string returns the value or `def`; the string lives as long as the instance. */
    const char *(*config_string)(const struct llmops_host *h, const char *key, const char *def);
    long long (*config_int)(const struct llmops_host *h, const char *key, long long def);
    int (*config_bool)(const struct llmops_host *h, const char *key, int def);
    /* Where a key was set, for the plugin's own semantic errors: "file:line". */
    const char *(*config_where)(const struct llmops_host *h, const char *key);

    /* Reads the secret file named by config key `key` (e.g. token_file) into buf, trailing
     * newline removed. Returns 0, or -1 with err filled (the message names the key, never
     * the content). */
    int (*secret)(const struct llmops_host *h, const char *key, char *buf, size_t size,
                  struct llmops_error *err);

    /* HTTP to the tool (see struct llmops_http_request). Returns 0 when an HTTP answer came
     * back (whatever its status), or -1 with err filled (LLMOPS_ERR_UNAVAILABLE: refused,
     * timed out, TLS failure). */
    int (*http)(const struct llmops_host *h, const struct llmops_http_request *req,
                struct llmops_http_response *resp, struct llmops_error *err);
    void (*http_free)(struct llmops_http_response *resp);

    /* Clocks: monotonic and wall, in milliseconds. */
    int64_t (*now_ms)(void);
    int64_t (*wall_ms)(void);

    /* Adds `value` (>= 0) to the counter `name` (a snake_case suffix, under 48 bytes; at most
     * 32 per instance). The core labels it with the instance and shows it in
     * /llm-ops/v1/integrations; the Prometheus export prefixes it with llmops_plugin_. */
    void (*metric_add)(const struct llmops_host *h, const char *name, double value);

    /* Runs parameterised SQL on the core's database for modules that own tables (their own
     * migrations, in tables prefixed with the module name). Returns a result to read with the
     * db_* accessors below [1.1] and to release with db_clear, or NULL with err filled.
     * libpq is not part of this ABI: the result is opaque to a 1.1 module, which needs no
     * libpq of its own. (It is a libpq PGresult *, and 1.0 modules that read it with their
     * own libpq.so.5 keep working: the process holds one libpq, the core's.) */
    void *(*db_exec)(const struct llmops_host *h, const char *sql, int nparams,
                     const char *const *params, struct llmops_error *err);
    void (*db_clear)(void *result);

    void *core_private; /* the core's: plugins leave it alone */

#if LLMOPS_PLUGIN_TARGET_MINOR >= 1
    /* ---- ABI 1.1. A module built for 1.1 is only loaded by a 1.1 core, so it may call
     * these without checks; a module targeting 1.0 that wants them checks
     * h->abi_minor >= 1 (the struct it was compiled with ends at core_private). */

    /* The value of response header `name` (any case) as kept in resp->headers, the first
     * when it came more than once; NULL when absent. Lives as long as resp. */
    const char *(*http_header)(const struct llmops_http_response *resp, const char *name);

    /* Hex digests (lower case) of a buffer, or of a file read in pieces (any size; *bytes,
     * if not NULL, receives its length). hexsize >= LLMOPS_DIGEST_HEX_MAX always fits.
     * Return 0, or -1 with err filled (INVALID: unknown algorithm, unreadable file, hex too
     * small). */
    int (*digest)(enum llmops_digest algo, const void *data, size_t len, char *hex, size_t hexsize,
                  struct llmops_error *err);
    int (*digest_file)(enum llmops_digest algo, const char *path, char *hex, size_t hexsize,
                       int64_t *bytes, struct llmops_error *err);

    /* Versions as dotted numbers, the way the core compares tool_version_min/max: the
     * numeric runs compared in turn, other characters separating them, missing parts 0
     * ("2.9" < "2.14", "2.14" == "2.14.0", "v3.1rc2" == "3.1.2"). version_compare answers
     * <0, 0 or >0; version_in_range 1 when min <= v <= max (NULL bounds are open). */
    int (*version_compare)(const char *a, const char *b);
    int (*version_in_range)(const char *v, const char *min, const char *max);

    /* Reading a db_exec result without libpq: rows, columns, a value as text (NULL for SQL
     * NULL or out of range), a column's name, and the rows an INSERT/UPDATE/DELETE touched. */
    int (*db_rows)(const void *result);
    int (*db_columns)(const void *result);
    const char *(*db_value)(const void *result, int row, int column);
    const char *(*db_column_name)(const void *result, int column);
    long long (*db_affected)(const void *result);

    /* The context of the long operation ([jobs] op) running on this instance now, or NULL:
     * see llmops-operations.h, whose llmops_op_ctx() checks size first. */
    const struct llmops_op_ctx *(*op_ctx)(const struct llmops_host *h);
#endif
};

/* ------------------------------------------------------------------ category operations
 *
 * The conventions of every category interface (llmops-tracking.h, llmops-serving.h,
 * llmops-orchestration.h, llmops-registry.h, llmops-versioning.h).
 *
 * Calls. Each operation is an llmops_op_fn. `in` is a JSON object the core has checked
 * against the members the operation lists (types, ranges, `!` = required; unknown members
 * never reach the module); it is borrowed, never modified. Success: return 0 with *out set
 * to a new JSON object (`{}` when there is nothing to say), released by the core. Failure:
 * return -1 with *err filled (llmops_fail) and *out left NULL. Calls on one state never
 * overlap, but each worker and the jobs process holds its own state for the same tool:
 * what must hold across calls lives in the tool or the module's tables, never in state.
 *
 * Ids. `external_id` is the TOOL's id of an object (at most 255 bytes): a create returns
 * it, the core stores the mapping from its own id and passes it back verbatim. Ids of
 * other objects in `in` (a run's experiment_id, ...) are tool ids too; platform ids reach
 * a module only as idempotency keys.
 *
 * Idempotency. Every create takes `idempotency_key!`, 1..63 characters matching
 * [A-Za-z0-9]([A-Za-z0-9_-]*[A-Za-z0-9])? (so a Kubernetes label value can hold it). The
 * module records it on the object in the tool (an MLflow tag, a Kubernetes label, a
 * column, a commit summary) and looks it up, before creating or when the tool reports a
 * duplicate, so that a create retried after a lost answer returns the first object with
 * "created": false and never makes a second one; a create that made it answers "created":
 * true. Deleting what is already gone succeeds with "deleted": false.
 *
 * Pages. List and search ops take `max_results` (1..the op's maximum; the core always
 * sends it) and `page_token`, and answer `next_page_token`, absent on the last page (a
 * short page may still carry one). Tokens are the module's own format, at most 2048 bytes,
 * free of secrets. They come back from API clients, so they are untrusted input: never
 * follow a URL found in one to another host. A token the tool no longer accepts (an
 * expired Kubernetes continue) is INVALID.
 *
 * Values. Times are integers, milliseconds since the Unix epoch (members end in _ms);
 * durations are seconds (_seconds), sizes bytes (_bytes), strings UTF-8. An object in an
 * answer may carry `links` ({"ui": URL} where the tool has a page for it) and `tool` (an
 * object of tool-specific details that clients get as they are; never a secret). `?` marks
 * members an answer may omit.
 *
 * Errors. Any op may fail with UNAVAILABLE (no answer in time; retryable), TOOL (the tool
 * answered with an error; retryable for 429 and 5xx; a 401 or 403 to the module's own
 * credentials is TOOL with tool_status set) or INTERNAL; each op lists the other codes it
 * uses. A member the tool cannot honour is refused with UNSUPPORTED naming it, never
 * dropped (Kubernetes prunes unknown fields of custom resources without an error).
 * Messages are one short line without secrets or raw tool text (MLflow's carry SQL);
 * details go to host->log.
 *
 * Capabilities. The descriptor's capabilities() answers {"operations": [names], ...} with
 * the names of the ops members. Required ops are non-NULL (the loader refuses the module
 * otherwise: llmops_<category>_missing_op) and always listed; optional ops may be NULL and
 * are listed when this instance can do them (tool version, credentials). The core calls an
 * op only when it is listed, non-NULL and inside ops->size; otherwise it answers
 * VALIDATION_FAILED "not supported by this module" itself.
 *
 * Long ops. Ops marked [jobs] may run for minutes: the core calls them from the jobs
 * process only, and again after a crash or a retryable error, so they resume (work done
 * and verified is kept). Other ops answer within the instance's HTTP timeouts and never
 * wait for the tool to converge: the jobs process polls.
 *
 * Levels. LLMOPS_<CATEGORY>_ABI grows by one with each change to the category's contract
 * (an op appended to the ops struct, which only grows at its end; a JSON member added or
 * changed); ops added after level 1 are optional. The core loads a module whose descriptor
 * category_abi lies in [LLMOPS_<CATEGORY>_ABI_OLDEST, LLMOPS_<CATEGORY>_ABI]. See
 * ABI-CHANGES.md.
 */
typedef int llmops_op_fn(void *state, json_t *in, json_t **out, struct llmops_error *err);
/* Whether `ops`, an ops struct of `type` as the module built it, has a non-NULL `member`. */
#define LLMOPS_OPS_HAS(type, ops, member)                                                          \
    ((ops)->size >= offsetof(type, member) + sizeof((ops)->member) && (ops)->member != NULL)

/* ------------------------------------------------------------------ the descriptor */

struct llmops_plugin {
    struct llmops_plugin_magic magic; /* LLMOPS_PLUGIN_MAGIC_INIT: checked first */
    uint32_t size;                    /* sizeof(struct llmops_plugin) */
    const char *name;                 /* must equal the file name without .so */
    const char *version;              /* the module's own version */
    enum llmops_category category;
    uint32_t category_abi; /* the category header's LLMOPS_*_ABI the ops follow */
    const void *ops;       /* the category's ops struct (its size first) */
    const struct llmops_config_key *config_keys;
    /* The tool versions this module supports, inclusive; NULL = any. Compared as dotted
     * numbers ("2.9" < "2.14"). */
    const char *tool_version_min;
    const char *tool_version_max;

    /* Required. Creates the instance's state. Returns 0, or -1 with err filled (the core
     * then reports the instance as failed and does not call anything else). */
    int (*init)(const struct llmops_host *host, void **state, struct llmops_error *err);
    /* Required. Releases the state. */
    void (*fini)(void *state);
    /* Required. Probes the tool: *info receives at least {"tool_version": "..."} when the
     * tool answered. Returns 0 healthy, -1 with err filled. */
    int (*health)(void *state, json_t **info, struct llmops_error *err);
    /* Required. What this instance can do: {"operations": [...], ...} (see the category
     * header for the names). */
    int (*capabilities)(void *state, json_t **out, struct llmops_error *err);
};

/* The one symbol a module exports. */
typedef const struct llmops_plugin *(*llmops_plugin_entry_fn)(void);

#define LLMOPS_PLUGIN_DEFINE(descriptor)                                                           \
    LLMOPS_PLUGIN_EXPORT const struct llmops_plugin *llmops_plugin_entry(void);                    \
    LLMOPS_PLUGIN_EXPORT const struct llmops_plugin *llmops_plugin_entry(void)                     \
    {                                                                                              \
        return &(descriptor);                                                                      \
    }

/* ------------------------------------------------------------------ quoting text in messages */

/* The length in bytes of the UTF-8 character s starts with (RFC 3629: no overlong form, no
 * surrogate, nothing above U+10FFFF: what jansson accepts), or 0 when s starts with NUL or
 * with a byte that does not begin a valid character. Never reads past a NUL. */
static inline size_t llmops_utf8_char_len(const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    unsigned int lo = 0x80, hi = 0xBF;
    size_t n, i;
    if (u[0] < 0x80)
        return u[0] ? 1 : 0;
    if (u[0] >= 0xC2 && u[0] <= 0xDF)
        n = 2;
    else if (u[0] >= 0xE0 && u[0] <= 0xEF)
        n = 3, lo = u[0] == 0xE0 ? 0xA0 : 0x80, hi = u[0] == 0xED ? 0x9F : 0xBF;
    else if (u[0] >= 0xF0 && u[0] <= 0xF4)
        n = 4, lo = u[0] == 0xF0 ? 0x90 : 0x80, hi = u[0] == 0xF4 ? 0x8F : 0xBF;
    else
        return 0;
    if (u[1] < lo || u[1] > hi)
        return 0;
    for (i = 2; i < n; i++)
        if (u[i] < 0x80 || u[i] > 0xBF)
            return 0;
    return n;
}

/* The number of characters in the first n bytes of s (or up to its NUL): what a message means
 * by "character N". A byte that does not begin a valid character counts as one. */
static inline size_t llmops_utf8_count(const char *s, size_t n)
{
    size_t i = 0, chars = 0;
    while (i < n && s[i]) {
        size_t len = llmops_utf8_char_len(s + i);
        i += len ? len : 1;
        chars++;
    }
    return chars;
}

/* Client or tool text, made fit to quote in a message (a JSON string): at most max_chars
 * characters of text and at most size - 1 bytes, cut between characters, never inside one
 * (a "%.20s" cut can split a character, and the whole message is then not UTF-8). A byte
 * that does not begin a valid character becomes U+FFFD. Returns buf, for a "%s" argument. */
static inline const char *llmops_quote(char *buf, size_t size, const char *text, size_t max_chars)
{
    static const char replacement[] = "\xEF\xBF\xBD";
    size_t n = 0, chars = 0, i;
    const char *p = text ? text : "";
    if (!buf || size == 0)
        return "";
    while (*p && chars < max_chars) {
        size_t len = llmops_utf8_char_len(p);
        const char *from = len ? p : replacement;
        size_t w = len ? len : sizeof replacement - 1;
        if (n + w >= size)
            break;
        for (i = 0; i < w; i++)
            buf[n++] = from[i];
        p += len ? len : 1;
        chars++;
    }
    buf[n] = '\0';
    return buf;
}

/* Convenience for plugins: fill an error (cut between characters when it is too long). */
static inline int llmops_fail(struct llmops_error *err, enum llmops_status code, int tool_status,
                              int retryable, const char *message)
{
    if (err) {
        err->code = code;
        err->tool_status = tool_status;
        err->retryable = retryable;
        llmops_quote(err->message, sizeof err->message, message, SIZE_MAX);
    }
    return -1;
}

#ifdef __cplusplus
}
#endif

#endif /* LLMOPS_PLUGIN_H */
