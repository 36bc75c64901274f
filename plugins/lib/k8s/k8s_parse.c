/* k8s_parse.c — everything that reads the Kubernetes API server's bytes: Status objects,
 * lists and Warning headers (fuzz/fuzz_k8s.c compiles it in). */
#include "k8s.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_t *k8s_parse_object(const char *body, size_t len)
{
    if (!body || len == 0)
        return NULL;
    json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    if (o && !json_is_object(o)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static const char *str(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* Appends text to buf (quoted, cut between characters), keeping it NUL-terminated. */
static void add(char *buf, size_t size, const char *text, size_t max_chars)
{
    size_t n = strlen(buf);
    if (n + 1 >= size)
        return;
    llmops_quote(buf + n, size - n, text, max_chars);
}

void k8s_status_parse(int status, const char *body, size_t len, struct k8s_fault *f)
{
    memset(f, 0, sizeof *f);
    f->tool_status = status;
    json_t *o = k8s_parse_object(body, len);
    const char *kind = o ? str(o, "kind") : NULL;
    int is_status = kind && strcmp(kind, "Status") == 0;
    const char *reason = is_status ? str(o, "reason") : NULL;
    if (reason)
        llmops_quote(f->reason, sizeof f->reason, reason, 40);
    json_t *details = is_status ? json_object_get(o, "details") : NULL;
    json_t *causes = json_object_get(details, "causes");

    switch (status) {
    case 404:
        f->code = LLMOPS_ERR_NOT_FOUND;
        add(f->what, sizeof f->what,
            is_status ? "not found"
                      : "not found (no Status: is the API "
                        "group installed?)",
            100);
        break;
    case 409:
        f->code = LLMOPS_ERR_CONFLICT;
        if (reason && strcmp(reason, "AlreadyExists") == 0) {
            add(f->what, sizeof f->what, "already exists", 40);
        } else {
            /* Conflict: a stale resourceVersion, or an object being deleted: read again. */
            f->retryable = 1;
            add(f->what, sizeof f->what, "a concurrent change (stale resourceVersion)", 80);
        }
        break;
    case 422:
    case 400: {
        f->code = LLMOPS_ERR_INVALID;
        size_t i;
        json_t *cause;
        int n = 0;
        json_array_foreach(causes, i, cause)
        {
            const char *field = str(cause, "field");
            const char *cr = str(cause, "reason");
            if (!field || !*field || strcmp(field, "<nil>") == 0)
                continue;
            if (n++ < 8) {
                if (f->fields[0])
                    add(f->fields, sizeof f->fields, ",", 1);
                add(f->fields, sizeof f->fields, field, 80);
                if (f->what[0])
                    add(f->what, sizeof f->what, "; ", 2);
                add(f->what, sizeof f->what, field, 80);
                if (cr) {
                    add(f->what, sizeof f->what, ": ", 2);
                    add(f->what, sizeof f->what, cr, 40);
                }
            }
        }
        if (!f->what[0])
            add(f->what, sizeof f->what, status == 422 ? "invalid" : "bad request", 20);
        break;
    }
    case 401:
    case 403:
        f->code = LLMOPS_ERR_TOOL;
        add(f->what, sizeof f->what,
            status == 401 ? "unauthorized (check token_file)"
                          : "forbidden (the service account's RBAC role lacks this verb)",
            100);
        break;
    case 429:
        f->code = LLMOPS_ERR_TOOL;
        f->retryable = 1;
        add(f->what, sizeof f->what, "too many requests", 40);
        break;
    default:
        f->code = LLMOPS_ERR_TOOL;
        f->retryable = status >= 500;
        add(f->what, sizeof f->what, status >= 500 ? "server error" : "refused", 40);
        break;
    }
    json_decref(o);
}

/* Reads one quoted-string at *p (after its opening quote) into out; *p moves past the closing
 * quote. Returns 0, -1 when unterminated. */
static int quoted(const char **p, char *out, size_t size)
{
    const char *s = *p;
    size_t n = 0;
    while (*s && *s != '"') {
        char ch = *s;
        if (ch == '\\') {
            s++;
            if (!*s)
                return -1;
            ch = *s;
        }
        if (n + 1 < size)
            out[n++] = ch;
        s++;
    }
    if (*s != '"')
        return -1;
    if (size)
        out[n < size ? n : size - 1] = '\0';
    *p = s + 1;
    return 0;
}

int k8s_warning_unknown_field(const char *value, char *field, size_t size)
{
    static const char marker[] = "unknown field \"";
    const char *p = value;
    char text[1024];
    if (!p || size == 0)
        return 0;
    while (*p) {
        const char *q = strchr(p, '"');
        if (!q)
            return 0;
        p = q + 1;
        if (quoted(&p, text, sizeof text) < 0)
            return 0;
        const char *m = strstr(text, marker);
        if (m) {
            const char *f = m + sizeof marker - 1;
            const char *end = strchr(f, '"');
            if (end && end > f) {
                size_t n = (size_t)(end - f);
                char tmp[256];
                if (n >= sizeof tmp)
                    n = sizeof tmp - 1;
                memcpy(tmp, f, n);
                tmp[n] = '\0';
                llmops_quote(field, size, tmp, 200);
                return 1;
            }
        }
    }
    return 0;
}

int k8s_list_parse(json_t *obj, json_t **items, const char **cont)
{
    *items = NULL;
    *cont = NULL;
    json_t *it = json_object_get(obj, "items");
    if (!json_is_object(obj) || !(json_is_array(it) || json_is_null(it)))
        return -1;
    const char *kind = str(obj, "kind");
    size_t klen = kind ? strlen(kind) : 0;
    if (!kind || klen < 4 || strcmp(kind + klen - 4, "List") != 0)
        return -1;
    *items = it;
    const char *c = str(json_object_get(obj, "metadata"), "continue");
    *cont = c && *c ? c : NULL;
    return 0;
}

char *k8s_query_escape(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    char *out = malloc(3 * n + 1), *o = out;
    if (!out)
        return NULL;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 15];
        }
    }
    *o = '\0';
    return out;
}
