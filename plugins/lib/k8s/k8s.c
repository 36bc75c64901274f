/* k8s.c — the verbs of the plugins' Kubernetes client on host->http. See k8s.h. */
#include "k8s.h"
#include "llmops-serving.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int k8s_failf(struct k8s_call *c, enum llmops_status code, int tool_status, int retryable,
              const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return llmops_fail(c->err, code, tool_status, retryable, msg);
}

int k8s_oom(struct k8s_call *c)
{
    return k8s_failf(c, LLMOPS_ERR_INTERNAL, 0, 0, "%s: out of memory", c->op);
}

int k8s_ours(json_t *obj)
{
    const char *m = json_string_value(json_object_get(
        json_object_get(json_object_get(obj, "metadata"), "labels"), K8S_MANAGED_KEY));
    return m && !strcmp(m, K8S_MANAGED_VALUE);
}

json_t *k8s_cond(json_t *status, const char *type)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(status, "conditions"), i, c)
    {
        const char *t = json_string_value(json_object_get(c, "type"));
        if (t && !strcmp(t, type))
            return c;
    }
    return NULL;
}

const char *k8s_generation_state(json_t *obj, const char **reason, const char **message)
{
    json_t *md = json_object_get(obj, "metadata"), *st = json_object_get(obj, "status");
    *reason = *message = NULL;
    if (json_object_get(md, "deletionTimestamp"))
        return "deleting";
    json_t *gen = json_object_get(md, "generation"),
           *seen = json_object_get(st, "observedGeneration");
    if (json_is_integer(gen) &&
        (!json_is_integer(seen) || json_integer_value(seen) < json_integer_value(gen)))
        return "progressing";
    return NULL;
}

int k8s_list_page(struct k8s_call *c, const char *collection, const char *selector, json_t *in,
                  json_t **list, json_t **items, const char **next)
{
    json_int_t max = json_integer_value(json_object_get(in, "max_results"));
    if (max < 1 || max > LLMOPS_SERVING_MAX_RESULTS)
        return k8s_failf(c, LLMOPS_ERR_INVALID, 0, 0, "max_results must be 1..%d",
                         LLMOPS_SERVING_MAX_RESULTS);
    const char *token = json_string_value(json_object_get(in, "page_token"));
    if (token && strlen(token) > 2048)
        return k8s_failf(c, LLMOPS_ERR_INVALID, 0, 0, "page_token is too long");
    if (k8s_list(c, collection, selector, (int)max, token && *token ? token : NULL, list) < 0) {
        if (token && c->err->code == LLMOPS_ERR_INVALID)
            return k8s_failf(c, LLMOPS_ERR_INVALID, c->err->tool_status, 0,
                             "page_token is not a continue token the cluster accepts");
        return -1;
    }
    k8s_list_parse(*list, items, next);
    return 0;
}

static int dns_label(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                 (ch == '-' && i > 0 && i + 1 < n);
        if (!ok)
            return 0;
    }
    return 1;
}

int k8s_init(struct k8s *k, const struct llmops_host *h, struct llmops_error *err)
{
    char m[400];
    memset(k, 0, sizeof *k);
    k->host = h;
    k->timeout_ms = h->config_int(h, "timeout_ms", 10000);
    const char *url = h->config_string(h, "url", NULL);
    if (!url || !*url) {
        snprintf(m, sizeof m,
                 "%s: module %s needs url: the API server (in a pod: url = "
                 "https://kubernetes.default.svc, token_file = "
                 "/var/run/secrets/kubernetes.io/serviceaccount/token, ca_file = "
                 "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt)",
                 h->config_where(h, "url"), h->module);
        return llmops_fail(err, LLMOPS_ERR_INVALID, 0, 0, m);
    }
    const char *ns = h->config_string(h, "namespace", NULL);
    const char *key = "namespace";
    if (!ns) {
        const char *file = h->config_string(h, "namespace_file", K8S_NAMESPACE_FILE);
        key = "namespace_file";
        FILE *f = fopen(file, "r");
        if (!f) {
            snprintf(m, sizeof m,
                     "%s: set namespace, or namespace_file to a readable file (%s cannot be "
                     "read: not in a pod?)",
                     h->config_where(h, "namespace_file"), file);
            return llmops_fail(err, LLMOPS_ERR_INVALID, 0, 0, m);
        }
        size_t n = fread(k->ns, 1, sizeof k->ns - 1, f);
        fclose(f);
        k->ns[n] = '\0';
        while (n > 0 && (k->ns[n - 1] == '\n' || k->ns[n - 1] == '\r' || k->ns[n - 1] == ' '))
            k->ns[--n] = '\0';
    } else {
        snprintf(k->ns, sizeof k->ns, "%.63s", ns);
    }
    if (!dns_label(k->ns) || (ns && strlen(ns) > 63)) {
        char q[80];
        snprintf(m, sizeof m, "%s: namespace \"%s\" is not a DNS-1123 label",
                 h->config_where(h, key), llmops_quote(q, sizeof q, ns ? ns : k->ns, 63));
        return llmops_fail(err, LLMOPS_ERR_INVALID, 0, 0, m);
    }
    return 0;
}

struct k8s_call k8s_begin(struct k8s *k, const char *op, struct llmops_error *err)
{
    struct k8s_call c = {k, op, k->host->now_ms() + k->timeout_ms, err, "", 0};
    return c;
}

int k8s_path(char *buf, size_t size, const char *group, const char *version, const char *ns,
             const char *plural, const char *name, const char *sub)
{
    int n;
    if (group && *group)
        n = snprintf(buf, size, "/apis/%s/%s", group, version);
    else
        n = snprintf(buf, size, "/api/%s", version);
    if (n < 0 || (size_t)n >= size)
        return -1;
    size_t used = (size_t)n;
    n = snprintf(buf + used, size - used, "%s%s/%s%s%s%s%s", ns ? "/namespaces/" : "", ns ? ns : "",
                 plural, name ? "/" : "", name ? name : "", sub ? "/" : "", sub ? sub : "");
    return n < 0 || (size_t)n >= size - used ? -1 : 0;
}

/* The first pruned field any Warning header of resp reports (0 when none). */
static int pruned_field(const struct llmops_http_response *resp, char *field, size_t size)
{
    const char *p = resp->headers;
    if (!p)
        return 0;
    while (*p) {
        const char *name = p, *value = p + strlen(p) + 1;
        if (strcmp(name, "warning") == 0 && k8s_warning_unknown_field(value, field, size))
            return 1;
        p = value + strlen(value) + 1;
    }
    return 0;
}

enum { RAW_TEXT = 1 << 8 };

/* One request. A 2xx answer: 0 with *out the parsed object (or, with RAW_TEXT, *text). */
static int request(struct k8s_call *c, const char *method, const char *path, json_t *body,
                   const char *content_type, int flags, json_t **out, char **text)
{
    const struct llmops_host *h = c->k->host;
    if (out)
        *out = NULL;
    c->reason[0] = '\0';
    c->status = 0;
    int64_t left = c->deadline - h->now_ms();
    if (left <= 0)
        return k8s_failf(c, LLMOPS_ERR_UNAVAILABLE, 0, 1,
                         "Kubernetes %s %s: no time left within timeout_ms (%lld ms)", method, path,
                         c->k->timeout_ms);
    char *json = body ? json_dumps(body, JSON_COMPACT) : NULL;
    if (body && !json)
        return k8s_failf(c, LLMOPS_ERR_INTERNAL, 0, 0, "%s: out of memory", c->op);
    size_t plen = strlen(path) + 16;
    char *full = malloc(plen);
    if (!full) {
        free(json);
        return k8s_failf(c, LLMOPS_ERR_INTERNAL, 0, 0, "%s: out of memory", c->op);
    }
    snprintf(full, plen, "%s%s", path,
             (flags & K8S_DRY_RUN) ? (strchr(path, '?') ? "&dryRun=All" : "?dryRun=All") : "");
    static const char *const want[] = {"warning", "retry-after", NULL};
    static const char *const accept_json[] = {"Accept: application/json", NULL};
    static const char *const accept_text[] = {"Accept: text/plain, */*", NULL};
    struct llmops_http_request req = {
        .size = sizeof req,
        .method = method,
        .path = full,
        .headers = (flags & RAW_TEXT) ? accept_text : accept_json,
        .body = json,
        .body_len = json ? strlen(json) : 0,
        .content_type = json ? (content_type ? content_type : "application/json") : NULL,
        /* POST creates a named object (a repeat is AlreadyExists) and a merge patch sets
         * values: both are safe to repeat. */
        .retry_unsafe = 1,
        .timeout_ms = (long)left,
        .want_headers = want,
    };
    struct llmops_http_response resp;
    memset(&resp, 0, sizeof resp);
    resp.size = sizeof resp;
    h->metric_add(h, "requests", 1);
    int rc = h->http(h, &req, &resp, c->err);
    free(json);
    if (rc != 0) {
        h->metric_add(h, "request_failures", 1);
        h->log(h, LLMOPS_LOG_INFO, "%s: %s %s: %s", c->op, method, full, c->err->message);
        free(full);
        return -1;
    }
    c->status = resp.status;
    if (resp.status < 200 || resp.status > 299) {
        struct k8s_fault f;
        k8s_status_parse(resp.status, resp.body, resp.body_len, &f);
        h->metric_add(h, "request_failures", 1);
        h->log(h, f.retryable || f.code == LLMOPS_ERR_TOOL ? LLMOPS_LOG_WARNING : LLMOPS_LOG_INFO,
               "%s: %s %s answered HTTP %d %s (%d attempts)", c->op, method, full, resp.status,
               f.reason[0] ? f.reason : "(no Status)", resp.attempts);
        h->http_free(&resp);
        snprintf(c->reason, sizeof c->reason, "%s", f.reason);
        rc = k8s_failf(c, f.code, f.tool_status, f.retryable, "Kubernetes %s %s: %s (%s%sHTTP %d)",
                       method, path, f.what, f.reason, f.reason[0] ? ", " : "", f.tool_status);
        free(full);
        return rc;
    }
    char field[220];
    if (pruned_field(&resp, field, sizeof field)) {
        h->log(h, LLMOPS_LOG_WARNING, "%s: %s %s: the API server pruned %s", c->op, method, full,
               field);
        h->http_free(&resp);
        free(full);
        return k8s_failf(c, LLMOPS_ERR_UNSUPPORTED, 0, 0,
                         "%s: the cluster's CRD has no field %s (the API server would drop it): "
                         "upgrade the CRD or leave the member out",
                         c->op, field);
    }
    free(full);
    if (flags & RAW_TEXT) {
        *text = malloc(resp.body_len + 1);
        if (!*text) {
            h->http_free(&resp);
            return k8s_failf(c, LLMOPS_ERR_INTERNAL, 0, 0, "%s: out of memory", c->op);
        }
        memcpy(*text, resp.body ? resp.body : "", resp.body_len);
        (*text)[resp.body_len] = '\0';
        h->http_free(&resp);
        return 0;
    }
    json_t *o = k8s_parse_object(resp.body, resp.body_len);
    int status = resp.status;
    h->http_free(&resp);
    if (!o)
        return k8s_failf(c, LLMOPS_ERR_TOOL, status, 0,
                         "Kubernetes %s %s: the answer is not a JSON object (HTTP %d)", method,
                         path, status);
    if (out)
        *out = o;
    else
        json_decref(o);
    return 0;
}

static int write_(struct k8s_call *c, const char *method, const char *path, json_t *body,
                  const char *ctype, int flags, json_t **out)
{
    if ((flags & K8S_CHECK_PRUNE) && !(flags & K8S_DRY_RUN)) {
        if (request(c, method, path, body, ctype, flags | K8S_DRY_RUN, NULL, NULL) < 0)
            return -1;
    }
    return request(c, method, path, body, ctype, flags, out, NULL);
}

int k8s_create(struct k8s_call *c, const char *collection, json_t *obj, int flags, json_t **out)
{
    return write_(c, "POST", collection, obj, "application/json", flags, out);
}

int k8s_get(struct k8s_call *c, const char *path, json_t **out)
{
    return request(c, "GET", path, NULL, NULL, 0, out, NULL);
}

int k8s_list(struct k8s_call *c, const char *collection, const char *selector, int limit,
             const char *cont, json_t **out)
{
    char *sel = selector ? k8s_query_escape(selector) : NULL;
    char *co = cont ? k8s_query_escape(cont) : NULL;
    size_t n = strlen(collection) + (sel ? strlen(sel) : 0) + (co ? strlen(co) : 0) + 64;
    char *path = malloc(n);
    if (!path || (selector && !sel) || (cont && !co)) {
        free(sel), free(co), free(path);
        return k8s_failf(c, LLMOPS_ERR_INTERNAL, 0, 0, "%s: out of memory", c->op);
    }
    int len = snprintf(path, n, "%s", collection);
    char sep = '?';
    if (sel) {
        len += snprintf(path + len, n - (size_t)len, "%clabelSelector=%s", sep, sel);
        sep = '&';
    }
    if (limit > 0) {
        len += snprintf(path + len, n - (size_t)len, "%climit=%d", sep, limit);
        sep = '&';
    }
    if (co)
        snprintf(path + len, n - (size_t)len, "%ccontinue=%s", sep, co);
    free(sel), free(co);
    int rc = request(c, "GET", path, NULL, NULL, 0, out, NULL);
    free(path);
    if (rc == 0) {
        json_t *items;
        const char *next;
        if (k8s_list_parse(*out, &items, &next) < 0) {
            json_decref(*out);
            *out = NULL;
            return k8s_failf(c, LLMOPS_ERR_TOOL, 200, 0, "Kubernetes GET %s: not a list",
                             collection);
        }
    } else if (cont && c->err->code == LLMOPS_ERR_TOOL && c->status == 410) {
        return k8s_failf(c, LLMOPS_ERR_INVALID, 410, 0,
                         "page_token: the cluster no longer accepts this continue token (expired)");
    }
    return rc;
}

int k8s_patch(struct k8s_call *c, const char *path, json_t *patch, int flags, json_t **out)
{
    return write_(c, "PATCH", path, patch, "application/merge-patch+json", flags, out);
}

int k8s_update(struct k8s_call *c, const char *path, k8s_build_fn *build, void *ctx, int flags,
               json_t **out)
{
    for (int attempt = 1;; attempt++) {
        json_t *obj;
        if (k8s_get(c, path, &obj) < 0)
            return -1;
        const char *rv =
            json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
        char version[64];
        snprintf(version, sizeof version, "%s", rv ? rv : "");
        json_t *patch = build(c, obj, ctx);
        json_decref(obj);
        if (!patch)
            return -1;
        if (version[0]) {
            json_t *md = json_object_get(patch, "metadata");
            if (!json_is_object(md)) {
                md = json_object();
                json_object_set_new(patch, "metadata", md);
            }
            json_object_set_new(md, "resourceVersion", json_string(version));
        }
        int rc = k8s_patch(c, path, patch, flags, out);
        json_decref(patch);
        if (rc == 0 || c->err->code != LLMOPS_ERR_CONFLICT || strcmp(c->reason, "Conflict") ||
            attempt >= 4)
            return rc;
        c->k->host->log(c->k->host, LLMOPS_LOG_INFO,
                        "%s: %s changed meanwhile (409 Conflict): reading it again", c->op, path);
    }
}

int k8s_delete(struct k8s_call *c, const char *path, const char *propagation, int flags,
               json_t **out)
{
    json_t *opts = NULL;
    if (propagation)
        opts = json_pack("{s:s,s:s,s:s}", "kind", "DeleteOptions", "apiVersion", "v1",
                         "propagationPolicy", propagation);
    int rc = request(c, "DELETE", path, opts, "application/json", flags, out, NULL);
    json_decref(opts);
    return rc;
}

int k8s_logs(struct k8s_call *c, const char *pod, const char *container, int tail_lines,
             char **text)
{
    char base[512], path[700];
    if (k8s_path(base, sizeof base, "", "v1", c->k->ns, "pods", pod, "log") < 0)
        return k8s_failf(c, LLMOPS_ERR_INVALID, 0, 0, "%s: pod name too long", c->op);
    char *ct = container ? k8s_query_escape(container) : NULL;
    int n = snprintf(path, sizeof path, "%s?follow=false%s%s", base, ct ? "&container=" : "",
                     ct ? ct : "");
    free(ct);
    if (tail_lines > 0 && n > 0 && (size_t)n < sizeof path)
        snprintf(path + n, sizeof path - (size_t)n, "&tailLines=%d", tail_lines);
    return request(c, "GET", path, NULL, NULL, RAW_TEXT, NULL, text);
}

int k8s_discover(struct k8s_call *c, const char *group, const char *version, const char *plural)
{
    char path[300];
    if (group && *group)
        snprintf(path, sizeof path, "/apis/%s/%s", group, version);
    else
        snprintf(path, sizeof path, "/api/%s", version);
    json_t *doc = NULL;
    if (request(c, "GET", path, NULL, NULL, 0, &doc, NULL) < 0) {
        if (c->err->code == LLMOPS_ERR_NOT_FOUND)
            return k8s_failf(c, LLMOPS_ERR_NOT_FOUND, 404, 0,
                             "%s%s%s is not installed in the cluster", group && *group ? group : "",
                             group && *group ? "/" : "", version);
        return -1;
    }
    int found = plural == NULL;
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(doc, "resources"), i, r)
    {
        const char *name = json_string_value(json_object_get(r, "name"));
        if (plural && name && strcmp(name, plural) == 0)
            found = 1;
    }
    json_decref(doc);
    if (!found)
        return k8s_failf(c, LLMOPS_ERR_NOT_FOUND, 200, 0,
                         "%s%s%s is served but has no resource %s (is the CRD installed?)",
                         group && *group ? group : "", group && *group ? "/" : "", version, plural);
    return 0;
}

int k8s_version(struct k8s_call *c, char *buf, size_t size)
{
    json_t *v = NULL;
    if (request(c, "GET", "/version", NULL, NULL, 0, &v, NULL) < 0)
        return -1;
    const char *g = json_string_value(json_object_get(v, "gitVersion"));
    llmops_quote(buf, size, g ? g : "unknown", 40);
    json_decref(v);
    return 0;
}
