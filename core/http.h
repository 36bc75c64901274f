/* The HTTP side of a request, independent of FastCGI: what came in, what goes out, the
 * envelope and the stable error codes. server.c fills `struct http_input` from FastCGI;
 * tests and fuzzers fill it from memory. */
#ifndef LLMOPS_HTTP_H
#define LLMOPS_HTTP_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct app;
struct route;

enum api_error {
    API_INVALID_JSON,
    API_VALIDATION_FAILED,
    API_UNAUTHENTICATED,
    API_FORBIDDEN,
    API_NOT_FOUND,
    API_METHOD_NOT_ALLOWED,
    API_CONFLICT,
    API_PRECONDITION_FAILED,
    API_PAYLOAD_TOO_LARGE,
    API_UNSUPPORTED_MEDIA_TYPE,
    API_INTERNAL,
    API_TOOL_ERROR,
    API_DATABASE_UNAVAILABLE,
    API_TOOL_UNAVAILABLE,
    API_ERROR_COUNT
};

const char *api_error_code(enum api_error e);
int api_error_status(enum api_error e);
const char *http_reason(int status);

/* reader < operator < admin. alerts is outside that order: a token of it may call only the
 * routes marked ROUTE_ALERTS (Alertmanager's webhook), and nothing else, not even a read. */
enum role { ROLE_PUBLIC = 0, ROLE_READER, ROLE_OPERATOR, ROLE_ADMIN, ROLE_ALERTS };
const char *role_name(enum role r);
int role_from_string(const char *s, enum role *out);

/* Reads up to n body bytes into buf; returns bytes read, 0 at the end, -1 on error. */
typedef long (*http_body_reader)(void *ud, char *buf, size_t n);

struct http_input {
    const char *method;
    const char *uri; /* path and optional ?query, still percent-encoded */
    const char *content_type;
    const char *content_length;
    const char *authorization;
    const char *if_none_match;
    const char *if_match;
    const char *request_id;
    const char *remote_addr; /* the client's address (REMOTE_ADDR), or NULL */
    http_body_reader read_body;
    void *body_ud;
};

#define HTTP_MAX_SEGMENTS 16
#define HTTP_MAX_QUERY 16
#define HTTP_MAX_PATH_PARAMS 4

struct query_param {
    char *name;
    char *value;
};

struct principal {
    char name[64];
    enum role role;
};

struct http_response {
    int status;
    char headers[1024]; /* extra header lines, each ending in \r\n */
    size_t headers_len;
    char *body; /* NULL for no body */
    size_t body_len;
    int body_owned;
    const char *content_type; /* NULL: application/json */
};

/* Everything about one request, passed down to every handler (cgit's context idea). */
struct req {
    struct app *app;
    const struct http_input *in;
    int64_t start_us;
    char request_id[129];
    /* parsed */
    char *path_buf; /* decoded path, segments point into it */
    char *segments[HTTP_MAX_SEGMENTS];
    int n_segments;
    struct query_param query[HTTP_MAX_QUERY];
    int n_query;
    char *query_buf;
    const struct route *route;
    const char *path_params[HTTP_MAX_PATH_PARAMS];
    const char *env;
    int env_index;
    struct principal who;
    json_t *body;
    struct http_response resp;
};

/* Splits in->uri into decoded path segments and query parameters. Returns 0, or -1 after
 * writing an error response. */
int http_parse_uri(struct req *r);
/* Its two halves: the path (before routing) and the query string (only after the token was
 * checked, so a client without one learns nothing about how its query parses). */
int http_parse_path(struct req *r);
int http_parse_query(struct req *r);
/* The query parameter's value, or NULL. */
const char *http_query(const struct req *r, const char *name);
/* Reads and parses the JSON body (415, 413, 400 on failure: response written, -1). */
int http_read_json_body(struct req *r, long long max_bytes);
void http_req_free(struct req *r);

/* Adds a header line ("Name: value") to the response. */
void resp_header(struct req *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The envelope {"status":"success","message":...,"data":data}; steals data (NULL → null). */
void resp_success(struct req *r, int status, const char *message, json_t *data);
/* The envelope for an error; steals extra (members merged into data.error; may be NULL). */
void resp_error(struct req *r, enum api_error e, json_t *extra, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A body already serialised (e.g. from a cache); not copied: must outlive the request. */
void resp_bytes(struct req *r, int status, const char *body, size_t len);
/* Serialises the whole envelope (for caches); returns malloc'd bytes. */
char *envelope_dump(const char *message, json_t *data, size_t *len);

/* A JSON string, or null for NULL and "". */
json_t *json_str_or_null(const char *s);

/* An X-Request-Id from the client is kept when it is 1-128 of [A-Za-z0-9._:-]. */
int http_valid_request_id(const char *s);
#endif
