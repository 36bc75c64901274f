#include "http.h"

#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct {
    const char *code;
    int status;
} api_errors[API_ERROR_COUNT] = {
    [API_INVALID_JSON] = {"INVALID_JSON", 400},
    [API_VALIDATION_FAILED] = {"VALIDATION_FAILED", 400},
    [API_UNAUTHENTICATED] = {"UNAUTHENTICATED", 401},
    [API_FORBIDDEN] = {"FORBIDDEN", 403},
    [API_NOT_FOUND] = {"NOT_FOUND", 404},
    [API_METHOD_NOT_ALLOWED] = {"METHOD_NOT_ALLOWED", 405},
    [API_CONFLICT] = {"CONFLICT", 409},
    [API_PRECONDITION_FAILED] = {"PRECONDITION_FAILED", 412},
    [API_PAYLOAD_TOO_LARGE] = {"PAYLOAD_TOO_LARGE", 413},
    [API_UNSUPPORTED_MEDIA_TYPE] = {"UNSUPPORTED_MEDIA_TYPE", 415},
    [API_INTERNAL] = {"INTERNAL", 500},
    [API_TOOL_ERROR] = {"TOOL_ERROR", 502},
    [API_DATABASE_UNAVAILABLE] = {"DATABASE_UNAVAILABLE", 503},
    [API_TOOL_UNAVAILABLE] = {"TOOL_UNAVAILABLE", 503},
};

const char *api_error_code(enum api_error e)
{
    return api_errors[e].code;
}

int api_error_status(enum api_error e)
{
    return api_errors[e].status;
}

const char *http_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Unknown";
    }
}

static const char *const role_names[] = {"public", "reader", "operator", "admin", "alerts"};

const char *role_name(enum role r)
{
    return role_names[r];
}

int role_from_string(const char *s, enum role *out)
{
    for (int i = ROLE_READER; i <= ROLE_ALERTS; i++) {
        if (strcmp(s, role_names[i]) == 0) {
            *out = (enum role)i;
            return 0;
        }
    }
    return -1;
}

int http_valid_request_id(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-'))
            return 0;
        if (n >= 128)
            return 0;
    }
    return n > 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes %XX (and '+' as space when plus_space) in place. Rejects bad escapes and NUL. */
static int pct_decode(char *s, int plus_space)
{
    char *w = s;
    for (char *p = s; *p; p++) {
        if (*p == '%') {
            int hi = hexval(p[1]), lo = hi < 0 ? -1 : hexval(p[2]);
            if (hi < 0 || lo < 0)
                return -1;
            char c = (char)(hi * 16 + lo);
            if (c == '\0')
                return -1;
            *w++ = c;
            p += 2;
        } else if (*p == '+' && plus_space) {
            *w++ = ' ';
        } else {
            *w++ = *p;
        }
    }
    *w = '\0';
    return 0;
}

int http_parse_path(struct req *r)
{
    const char *uri = r->in->uri ? r->in->uri : "/";
    const char *q = strchr(uri, '?');
    size_t plen = q ? (size_t)(q - uri) : strlen(uri);
    r->path_buf = malloc(plen + 1);
    if (!r->path_buf) {
        resp_error(r, API_INTERNAL, NULL, "out of memory");
        return -1;
    }
    memcpy(r->path_buf, uri, plen);
    r->path_buf[plen] = '\0';
    /* Split on '/' first, then decode each segment, so %2F stays inside its segment. */
    char *save = NULL;
    for (char *seg = strtok_r(r->path_buf, "/", &save); seg; seg = strtok_r(NULL, "/", &save)) {
        if (r->n_segments == HTTP_MAX_SEGMENTS) {
            resp_error(r, API_NOT_FOUND, NULL, "no route for a path of more than %d segments",
                       HTTP_MAX_SEGMENTS);
            return -1;
        }
        if (pct_decode(seg, 0) < 0) {
            resp_error(r, API_VALIDATION_FAILED, json_pack("{s:s}", "field", "path"),
                       "the path has a bad percent-escape in segment %d", r->n_segments + 1);
            return -1;
        }
        r->segments[r->n_segments++] = seg;
    }
    return 0;
}

int http_parse_query(struct req *r)
{
    const char *uri = r->in->uri ? r->in->uri : "/";
    const char *q = strchr(uri, '?');
    if (!q || !q[1])
        return 0;
    r->query_buf = strdup(q + 1);
    if (!r->query_buf) {
        resp_error(r, API_INTERNAL, NULL, "out of memory");
        return -1;
    }
    char *save = NULL;
    for (char *kv = strtok_r(r->query_buf, "&", &save); kv; kv = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(kv, '=');
        char *val = "";
        if (eq) {
            *eq = '\0';
            val = eq + 1;
        }
        if (pct_decode(kv, 1) < 0 || (eq && pct_decode(val, 1) < 0)) {
            resp_error(r, API_VALIDATION_FAILED, json_pack("{s:s}", "field", "query"),
                       "the query string has a bad percent-escape");
            return -1;
        }
        if (!*kv)
            continue;
        for (int i = 0; i < r->n_query; i++) {
            if (strcmp(r->query[i].name, kv) == 0) {
                char qk[UTIL_QUOTE_SIZE(64)];
                resp_error(r, API_VALIDATION_FAILED, json_pack("{s:s}", "field", kv),
                           "query parameter '%s' is given more than once",
                           util_quote(qk, sizeof qk, kv, 64));
                return -1;
            }
        }
        if (r->n_query == HTTP_MAX_QUERY) {
            resp_error(r, API_VALIDATION_FAILED, json_pack("{s:s}", "field", "query"),
                       "more than %d query parameters", HTTP_MAX_QUERY);
            return -1;
        }
        r->query[r->n_query].name = kv;
        r->query[r->n_query].value = val;
        r->n_query++;
    }
    return 0;
}

int http_parse_uri(struct req *r)
{
    return http_parse_path(r) < 0 ? -1 : http_parse_query(r);
}

const char *http_query(const struct req *r, const char *name)
{
    for (int i = 0; i < r->n_query; i++)
        if (strcmp(r->query[i].name, name) == 0)
            return r->query[i].value;
    return NULL;
}

static int is_json_media_type(const char *ct)
{
    if (!ct)
        return 0;
    while (*ct == ' ')
        ct++;
    size_t n = strlen("application/json");
    if (strncasecmp(ct, "application/json", n) != 0)
        return 0;
    const char *rest = ct + n;
    while (*rest == ' ')
        rest++;
    return *rest == '\0' || *rest == ';';
}

int http_read_json_body(struct req *r, long long max_bytes)
{
    const struct http_input *in = r->in;
    long long declared = -1;
    char q[UTIL_QUOTE_SIZE(64)];
    if (in->content_length && *in->content_length &&
        util_parse_int(in->content_length, 0, (long long)1 << 62, &declared, NULL) < 0) {
        resp_error(r, API_VALIDATION_FAILED, json_pack("{s:s}", "field", "Content-Length"),
                   "Content-Length '%s' is not a number",
                   util_quote(q, sizeof q, in->content_length, 32));
        return -1;
    }
    if (declared <= 0) {
        resp_error(r, API_VALIDATION_FAILED, json_pack("{s:s}", "field", "body"),
                   "this route needs a JSON body");
        return -1;
    }
    if (!is_json_media_type(in->content_type)) {
        resp_error(r, API_UNSUPPORTED_MEDIA_TYPE, json_pack("{s:s}", "field", "Content-Type"),
                   "the body must be sent with Content-Type: application/json (got '%s')",
                   util_quote(q, sizeof q, in->content_type, 64));
        return -1;
    }
    if (declared > max_bytes) {
        resp_error(r, API_PAYLOAD_TOO_LARGE, json_pack("{s:I}", "limit", (json_int_t)max_bytes),
                   "the body is %lld bytes; at most %lld are accepted", declared, max_bytes);
        return -1;
    }
    char *buf = malloc((size_t)declared + 1);
    if (!buf) {
        resp_error(r, API_INTERNAL, NULL, "out of memory");
        return -1;
    }
    size_t got = 0;
    while (got < (size_t)declared && in->read_body) {
        long n = in->read_body(in->body_ud, buf + got, (size_t)declared - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (got != (size_t)declared) {
        free(buf);
        resp_error(r, API_VALIDATION_FAILED, json_pack("{s:s}", "field", "body"),
                   "the body ended after %zu of %lld bytes", got, declared);
        return -1;
    }
    json_error_t jerr;
    r->body = json_loadb(buf, got, JSON_REJECT_DUPLICATES, &jerr);
    free(buf);
    if (!r->body) {
        resp_error(r, API_INVALID_JSON,
                   json_pack("{s:i,s:i}", "line", jerr.line, "column", jerr.column),
                   "invalid JSON at line %d, column %d: %s", jerr.line, jerr.column, jerr.text);
        return -1;
    }
    if (!json_is_object(r->body)) {
        resp_error(r, API_VALIDATION_FAILED, json_pack("{s:s}", "field", "body"),
                   "the body must be a JSON object");
        return -1;
    }
    return 0;
}

void http_req_free(struct req *r)
{
    free(r->path_buf);
    free(r->query_buf);
    if (r->body)
        json_decref(r->body);
    if (r->resp.body_owned)
        free(r->resp.body);
    r->path_buf = r->query_buf = NULL;
    r->body = NULL;
    r->resp.body = NULL;
}

void resp_header(struct req *r, const char *fmt, ...)
{
    struct http_response *p = &r->resp;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(p->headers + p->headers_len, sizeof p->headers - p->headers_len - 2, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof p->headers - p->headers_len - 2)
        return; /* header does not fit: dropped */
    p->headers_len += (size_t)n;
    p->headers[p->headers_len++] = '\r';
    p->headers[p->headers_len++] = '\n';
    p->headers[p->headers_len] = '\0';
}

static void set_body(struct req *r, char *body, size_t len)
{
    if (r->resp.body_owned)
        free(r->resp.body);
    r->resp.body = body;
    r->resp.body_len = len;
    r->resp.body_owned = 1;
}

char *envelope_dump(const char *message, json_t *data, size_t *len)
{
    json_t *env = json_object();
    json_object_set_new(env, "status", json_string("success"));
    json_object_set_new(env, "message", json_string(message ? message : ""));
    json_object_set_new(env, "data", data ? data : json_null());
    char *s = json_dumps(env, JSON_COMPACT);
    json_decref(env);
    if (s && len)
        *len = strlen(s);
    return s;
}

void resp_success(struct req *r, int status, const char *message, json_t *data)
{
    size_t len = 0;
    char *s = envelope_dump(message, data, &len);
    r->resp.status = status;
    set_body(r, s, len);
}

void resp_error(struct req *r, enum api_error e, json_t *extra, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *err = json_object();
    json_object_set_new(err, "code", json_string(api_error_code(e)));
    json_object_set_new(err, "request_id", json_string(r->request_id));
    if (extra) {
        json_object_update(err, extra);
        json_decref(extra);
    }
    json_t *env = json_object();
    json_object_set_new(env, "status", json_string("error"));
    /* json_string refuses invalid UTF-8: client bytes a message quotes without util_quote, or
     * a character the 1024-byte cut split. Those bytes become U+FFFD, the rest stays. */
    json_t *m = json_string(msg);
    if (!m) {
        char clean[3 * sizeof msg];
        m = json_string(util_quote(clean, sizeof clean, msg, SIZE_MAX));
    }
    json_object_set_new(env, "message", m);
    json_object_set_new(env, "data", json_pack("{s:o}", "error", err));
    char *s = json_dumps(env, JSON_COMPACT);
    json_decref(env);
    r->resp.status = api_error_status(e);
    set_body(r, s, s ? strlen(s) : 0);
}

void resp_bytes(struct req *r, int status, const char *body, size_t len)
{
    if (r->resp.body_owned)
        free(r->resp.body);
    r->resp.status = status;
    r->resp.body = (char *)body;
    r->resp.body_len = len;
    r->resp.body_owned = 0;
}

json_t *json_str_or_null(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}
