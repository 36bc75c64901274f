/* k8s.h — the plugins' own Kubernetes client, on the host's HTTP service (no libcurl of its
 * own, no link to the core). A static library (PIC) linked into each Kubernetes module
 * (serving-k8s, kserve; orchestration modules later).
 *
 * Configuration. The core owns url, token_file (re-read when it changes: a rotated
 * service-account token), ca_file, timeouts and retries (429 and 5xx with Retry-After). In a
 * pod they are url = https://kubernetes.default.svc, token_file =
 * /var/run/secrets/kubernetes.io/serviceaccount/token and ca_file = .../ca.crt; the library
 * adds the keys of K8S_CONFIG_KEYS: `namespace`, or else the file `namespace_file` (default
 * the service account's namespace file).
 *
 * Errors. Every answer that is not 2xx is a Status; k8s_status_parse maps it (see there).
 * Writes ask for the Warning header and refuse a pruned field with UNSUPPORTED naming it:
 * a write to a custom resource (K8S_CHECK_PRUNE) is sent with dryRun=All first, so that
 * nothing is stored when the tool would drop a member. */
#ifndef LLMOPS_K8S_H
#define LLMOPS_K8S_H

#include "llmops-plugin.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define K8S_NAMESPACE_FILE "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

/* Config keys every Kubernetes module lists (put them in its table). */
#define K8S_CONFIG_KEYS                                                                            \
    {"namespace", LLMOPS_CONFIG_STRING,                                                            \
     0,           0,                                                                               \
     0,           "the namespace the module's objects live in (default: namespace_file)"},         \
    {                                                                                              \
        "namespace_file", LLMOPS_CONFIG_FILE, 0, 0, 0,                                             \
            "a file holding the namespace (default " K8S_NAMESPACE_FILE ")"                        \
    }

struct k8s {
    const struct llmops_host *host;
    char ns[64];          /* a DNS-1123 label */
    long long timeout_ms; /* one op's budget */
};

/* One op of a module: its deadline and where its error goes. */
struct k8s_call {
    struct k8s *k;
    const char *op;
    int64_t deadline;
    struct llmops_error *err;
    char reason[48]; /* the last refusal's Status reason ("" for none) */
    int status;      /* its HTTP status (0 for none) */
};

/* ------------------------------------------------------------------ parsers (k8s_parse.c) */

/* A refusal, as the module reports it. */
struct k8s_fault {
    enum llmops_status code;
    int tool_status;
    int retryable;
    char reason[48];  /* Status.reason ("AlreadyExists", "Conflict", "Invalid", ...) or "" */
    char what[400];   /* one line for the message: fields of 422 causes, the reason */
    char fields[256]; /* 422: the causes' fields, comma-separated ("" for none) */
};

/* Maps a non-2xx answer (status, body: a Status object, or anything) to a fault:
 *   404 NotFound -> NOT_FOUND; 409 AlreadyExists and Conflict -> CONFLICT (reason says
 *   which; Conflict retryable); 422 Invalid -> INVALID naming each cause's field; 400 ->
 *   INVALID; 401, 403 -> TOOL with tool_status; 405, 415 -> TOOL; 429, 5xx -> TOOL
 *   retryable; anything else TOOL. Never fails; reads at most len bytes. */
void k8s_status_parse(int status, const char *body, size_t len, struct k8s_fault *f);

/* The first field a `Warning` header value reports as pruned ("unknown field \"F\""),
 * copied to field: 1 when found, 0 when the value says no such thing. Values are lists of
 * `299 - "text"` warnings (RFC 7234 5.5), quoted-strings with backslash escapes. */
int k8s_warning_unknown_field(const char *value, char *field, size_t size);

/* A list answer: 0 with *items borrowed from obj and *cont the continue token (NULL when
 * none), -1 when obj is not a list. */
int k8s_list_parse(json_t *obj, json_t **items, const char **cont);

/* A JSON object from bytes (NULL when they are not one). */
json_t *k8s_parse_object(const char *body, size_t len);

/* Percent-encodes s for a query value (NULL on out of memory). */
char *k8s_query_escape(const char *s);

/* ------------------------------------------------------------------ client (k8s.c) */

enum {
    K8S_DRY_RUN = 1,     /* ?dryRun=All */
    K8S_CHECK_PRUNE = 2, /* a custom resource: dry-run first, refuse pruned fields */
};

int k8s_init(struct k8s *k, const struct llmops_host *h, struct llmops_error *err);
struct k8s_call k8s_begin(struct k8s *k, const char *op, struct llmops_error *err);
int k8s_failf(struct k8s_call *c, enum llmops_status code, int tool_status, int retryable,
              const char *fmt, ...) LLMOPS_PRINTF(5, 6);

/* INTERNAL "OP: out of memory". */
int k8s_oom(struct k8s_call *c);

/* ------------------------------------------------------------------ objects */

/* The label every object the platform makes carries. */
#define K8S_MANAGED_KEY "app.kubernetes.io/managed-by"
#define K8S_MANAGED_VALUE "llm-ops"

/* 1 when obj's labels carry K8S_MANAGED_KEY=K8S_MANAGED_VALUE. */
int k8s_ours(json_t *obj);

/* The condition of status.conditions of that type (borrowed), or NULL. */
json_t *k8s_cond(json_t *status, const char *type);

/* What the metadata alone says of obj's state: "deleting" (a deletionTimestamp),
 * "progressing" (status.observedGeneration behind metadata.generation), or NULL when the
 * status is current; *reason and *message set to NULL. */
const char *k8s_generation_state(json_t *obj, const char **reason, const char **message);

/* One page of a list_deployments request `in` (max_results 1..LLMOPS_SERVING_MAX_RESULTS,
 * page_token at most 2048 bytes, INVALID naming either otherwise): k8s_list of collection
 * with selector, *list the answer (the caller's reference), *items borrowed from it, *next
 * the continue token or NULL. A token the cluster refuses is INVALID naming page_token. */
int k8s_list_page(struct k8s_call *c, const char *collection, const char *selector, json_t *in,
                  json_t **list, json_t **items, const char **next);

/* "/apis/GROUP/VERSION/namespaces/NS/PLURAL[/NAME[/SUB]]" ("/api/v1/..." for group "").
 * Returns 0, or -1 when it does not fit. */
int k8s_path(char *buf, size_t size, const char *group, const char *version, const char *ns,
             const char *plural, const char *name, const char *sub);

/* The verbs: each returns 0 with *out the answer (a new reference), or -1 with c->err
 * filled (c->reason the Status reason). */
int k8s_create(struct k8s_call *c, const char *collection, json_t *obj, int flags, json_t **out);
int k8s_get(struct k8s_call *c, const char *path, json_t **out);
/* selector already in labelSelector syntax ("a=b,c"); limit 0 = none; cont NULL = first. */
int k8s_list(struct k8s_call *c, const char *collection, const char *selector, int limit,
             const char *cont, json_t **out);
/* RFC 7386 merge patch; `sub` paths (".../status") pass as path. */
int k8s_patch(struct k8s_call *c, const char *path, json_t *patch, int flags, json_t **out);
/* Read-modify-write: GET path, build(obj, ctx) answers a merge patch (or NULL with c->err
 * filled), sent with the object's metadata.resourceVersion so that a concurrent change is a
 * 409 Conflict; then the object is read again and the patch rebuilt, up to 4 attempts. */
typedef json_t *k8s_build_fn(struct k8s_call *c, json_t *obj, void *ctx);
int k8s_update(struct k8s_call *c, const char *path, k8s_build_fn *build, void *ctx, int flags,
               json_t **out);
/* propagation "Foreground", "Background", "Orphan" or NULL. */
int k8s_delete(struct k8s_call *c, const char *path, const char *propagation, int flags,
               json_t **out);
/* Pod logs (text): *text malloc'd, NUL-terminated. tail_lines 0 = all. */
int k8s_logs(struct k8s_call *c, const char *pod, const char *container, int tail_lines,
             char **text);
/* GET /apis/GROUP/VERSION (or /api/v1): 0 when served and listing `plural` (NULL: any);
 * -1 with NOT_FOUND "GROUP/VERSION is not installed in the cluster" otherwise. */
int k8s_discover(struct k8s_call *c, const char *group, const char *version, const char *plural);
/* GET /version: gitVersion into buf. */
int k8s_version(struct k8s_call *c, char *buf, size_t size);

#endif
