/* The generic handlers of routes that name an operation (cgit's command table, applied to
 * category operations): load the object, call the op through the engine, answer. */
#include "engine_http.h"

#include "router.h"

#include <stdio.h>

const struct engine_http_hooks *engine_http_hooks(int category)
{
    return category == LLMOPS_CATEGORY_EXPERIMENT_TRACKING ? &tracking_http_hooks : NULL;
}

/* The route's op and hooks, or NULL after a 500 (a route table entry that names no op). */
static const struct llmops_op_desc *route_op(struct req *r, const struct engine_http_hooks **h)
{
    const struct llmops_op_desc *op = engine_op(r->route->category, r->route->op);
    *h = engine_http_hooks(r->route->category);
    if (!op || !*h || !op->object) {
        resp_error(r, API_INTERNAL, NULL, "route %s %s names no operation of its category",
                   r->route->method, r->route->pattern);
        return NULL;
    }
    return op;
}

/* Calls op on the object of the path; 0 with *out, or -1 after an error response. */
static int call_on_object(struct req *r, const struct engine_http_hooks *h,
                          const struct llmops_op_desc *op, struct owned *o, struct instance **in,
                          json_t **out)
{
    if (h->load(r, op->object, r->path_params[0], o, in) < 0)
        return -1;
    json_t *input = json_pack("{s:s}", "external_id", o->external_id);
    struct llmops_error err;
    int rc = engine_call(r->app, *in, r->route->category, op, input, out, &err);
    json_decref(input);
    if (rc < 0) {
        h->error(r, *in, op->name, &err);
        return -1;
    }
    return 0;
}

void engine_http_read(struct req *r)
{
    const struct engine_http_hooks *h;
    const struct llmops_op_desc *op = route_op(r, &h);
    struct owned o;
    struct instance *in;
    json_t *out;
    if (!op || call_on_object(r, h, op, &o, &in, &out) < 0)
        return;
    json_t *data = h->present(r, &o, in, out);
    json_decref(out);
    if (data)
        resp_success(r, 200, h->noun(op->object), data);
}

void engine_http_delete(struct req *r)
{
    const struct engine_http_hooks *h;
    const struct llmops_op_desc *op = route_op(r, &h);
    struct owned o;
    struct instance *in;
    json_t *out;
    if (!op || call_on_object(r, h, op, &o, &in, &out) < 0)
        return;
    int deleted = !json_is_false(json_object_get(out, "deleted"));
    json_decref(out);
    char msg[96];
    snprintf(msg, sizeof msg, "%s %s", h->noun(op->object),
             deleted ? "deleted" : "was already deleted");
    resp_success(r, 200, msg, json_pack("{s:s,s:b}", "id", o.id, "deleted", deleted));
}
