/* The route table (cgit's def_cmd idea): method, pattern with {params}, handler, minimum
 * role, and the query parameters each route accepts. */
#ifndef LLMOPS_ROUTER_H
#define LLMOPS_ROUTER_H

#include "http.h"

typedef void (*route_handler)(struct req *r);

enum route_flags {
    ROUTE_JSON_BODY = 1 << 0, /* needs a JSON object body */
    ROUTE_DB = 1 << 1,        /* needs the database at the right schema version */
    ROUTE_ALERTS = 1 << 2,    /* a token of the alerts role may call it (and only these) */
};

struct route {
    const char *method;
    const char *pattern; /* e.g. "/llm-ops/v1/gpu-types/{name}" */
    route_handler handler;
    enum role min_role;
    unsigned flags;
    const char *const *query; /* accepted query parameters, NULL-terminated; NULL = none */
    /* Routes as data: the operation of `category`'s table a generic handler (engine_http.h)
     * calls; NULL for routes with their own handler. */
    const char *op;
    int category;
};

const struct route *route_table(size_t *count);

enum route_match_result { ROUTE_FOUND, ROUTE_NO_PATH, ROUTE_NO_METHOD };

/* Matches r->segments against the table. ROUTE_FOUND sets r->route and r->path_params.
 * ROUTE_NO_METHOD writes the allowed methods ("GET, POST") into allow. */
enum route_match_result route_match(struct req *r, const char *method, char *allow,
                                    size_t allow_size);

#endif
