/* The generic handlers of routes that name an operation (cgit's command table, applied to
 * category operations): load the object, call the op through the engine, answer. */
#include "engine_http.h"

#include "router.h"

#include <stdio.h>
#include <string.h>

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

/* ------------------------------------------------------------------ create, update, action */

/* The route's op and hooks when the hooks have `input`, or NULL after a 500. */
static const struct llmops_op_desc *route_op_input(struct req *r,
                                                   const struct engine_http_hooks **h)
{
    const struct llmops_op_desc *op = route_op(r, h);
    if (op && !(*h)->input) {
        resp_error(r, API_INTERNAL, NULL, "route %s %s: its category has no input hook",
                   r->route->method, r->route->pattern);
        return NULL;
    }
    return op;
}

/* The first READ op of the category that reads `object` (its table order). */
static const struct llmops_op_desc *read_op(int category, const char *object)
{
    size_t n;
    const struct llmops_op_desc *t = engine_ops(category, &n);
    for (size_t i = 0; t && i < n; i++)
        if (t[i].kind == LLMOPS_OP_READ && t[i].object && !(t[i].flags & LLMOPS_OP_INTERNAL) &&
            strcmp(t[i].object, object) == 0)
            return &t[i];
    return NULL;
}

/* Where an object of `object` is read: the GET route naming its READ op, its pattern up to
 * the parameter ("/llm-ops/v1/runs/"). */
static void object_path(int category, const char *object, const char *noun, char *buf, size_t size)
{
    const struct llmops_op_desc *rd = read_op(category, object);
    size_t n;
    const struct route *t = route_table(&n);
    for (size_t i = 0; rd && i < n; i++) {
        const char *brace = strchr(t[i].pattern, '{');
        if (t[i].op && t[i].category == category && strcmp(t[i].method, "GET") == 0 &&
            strcmp(t[i].op, rd->name) == 0 && brace) {
            snprintf(buf, size, "%.*s", (int)(brace - t[i].pattern), t[i].pattern);
            return;
        }
    }
    snprintf(buf, size, "/llm-ops/v1/%ss/", noun);
}

static void release_id(struct app *app, const char *id)
{
    const char *params[] = {id};
    struct db_error err;
    PGresult *res = db_exec(&app->db, "DELETE FROM objects WHERE id = $1 AND external_id IS NULL",
                            1, params, &err);
    if (res)
        PQclear(res);
}

void engine_http_create(struct req *r)
{
    const struct engine_http_hooks *h;
    const struct llmops_op_desc *op = route_op_input(r, &h);
    json_t *input = NULL;
    if (!op || h->input(r, op, NULL, &input) < 0)
        return;
    struct app *app = r->app;
    struct owned parent = {.id = ""}, o;
    struct instance *in;
    const char *pkind = h->parent && r->route->pattern[strcspn(r->route->pattern, "{")]
                            ? h->parent(op->object)
                            : NULL;
    if (pkind) {
        if (h->load(r, pkind, r->path_params[0], &parent, &in) < 0) {
            json_decref(input);
            return;
        }
    } else if (!(in = owner_pick(app, r, r->env_index, r->route->category, NULL))) {
        json_decref(input);
        return;
    }
    if (h->input(r, op, &parent, &input) < 0)
        return;
    struct db_error dberr;
    if (owner_reserve(app, op->object, pkind ? parent.environment : r->env, r->route->category,
                      in->name, r->who.name[0] ? r->who.name : "anonymous", &o, &dberr) < 0) {
        json_decref(input);
        resp_error(r, API_DATABASE_UNAVAILABLE, NULL, "cannot reserve an id: %s", dberr.message);
        return;
    }
    if (op->flags & LLMOPS_OP_IDEMPOTENT)
        json_object_set_new(input, "idempotency_key", json_string(o.id));
    json_t *out;
    struct llmops_error err;
    int rc = engine_call(app, in, r->route->category, op, input, &out, &err);
    json_decref(input);
    if (rc < 0) {
        release_id(app, o.id);
        h->error(r, in, op->name, &err);
        return;
    }
    const char *ext = json_string_value(json_object_get(out, "external_id"));
    const char *noun = h->noun(op->object);
    if (!ext || owner_bind(app, o.id, ext, &dberr) < 0) {
        json_decref(out);
        release_id(app, o.id);
        if (ext)
            resp_error(r, API_DATABASE_UNAVAILABLE, json_pack("{s:s}", "instance", in->name),
                       "cannot record the %s: %s", noun, dberr.message);
        else
            resp_error(r, API_TOOL_ERROR, json_pack("{s:s}", "instance", in->name),
                       "instance %s answered no id", in->name);
        return;
    }
    snprintf(o.external_id, sizeof o.external_id, "%s", ext);
    json_t *data = h->present(r, &o, in, out);
    json_decref(out);
    if (!data)
        return;
    char where[128];
    object_path(r->route->category, op->object, noun, where, sizeof where);
    resp_header(r, "Location: %s%s", where, o.id);
    resp_success(r, 201, h->done ? h->done(op) : noun, data);
}

void engine_http_update(struct req *r)
{
    const struct engine_http_hooks *h;
    const struct llmops_op_desc *op = route_op_input(r, &h);
    const struct llmops_op_desc *rd = op ? read_op(r->route->category, op->object) : NULL;
    json_t *input = NULL;
    if (!op || h->input(r, op, NULL, &input) < 0)
        return;
    struct owned o;
    struct instance *in;
    if (h->load(r, op->object, r->path_params[0], &o, &in) < 0) {
        json_decref(input);
        return;
    }
    if (h->input(r, op, &o, &input) < 0)
        return;
    json_object_set_new(input, "external_id", json_string(o.external_id));
    json_t *out;
    struct llmops_error err;
    int rc = engine_call(r->app, in, r->route->category, op, input, &out, &err);
    json_decref(input);
    if (rc < 0) {
        h->error(r, in, op->name, &err);
        return;
    }
    json_decref(out);
    if (!rd) {
        resp_success(r, 200, h->done ? h->done(op) : h->noun(op->object),
                     json_pack("{s:s}", "id", o.id));
        return;
    }
    input = json_pack("{s:s}", "external_id", o.external_id);
    rc = engine_call(r->app, in, r->route->category, rd, input, &out, &err);
    json_decref(input);
    if (rc < 0) {
        h->error(r, in, rd->name, &err);
        return;
    }
    json_t *data = h->present(r, &o, in, out);
    json_decref(out);
    if (data)
        resp_success(r, 200, h->done ? h->done(op) : h->noun(op->object), data);
}

void engine_http_action(struct req *r)
{
    const struct engine_http_hooks *h;
    const struct llmops_op_desc *op = route_op_input(r, &h);
    json_t *input = NULL;
    if (!op || !h->answer) {
        if (op)
            resp_error(r, API_INTERNAL, NULL, "route %s %s: its category has no answer hook",
                       r->route->method, r->route->pattern);
        return;
    }
    if (h->input(r, op, NULL, &input) < 0)
        return;
    struct owned o;
    struct instance *in;
    if (h->load(r, op->object, r->path_params[0], &o, &in) < 0) {
        json_decref(input);
        return;
    }
    if (h->input(r, op, &o, &input) < 0)
        return;
    int split = json_is_array(input);
    size_t total = split ? json_array_size(input) : 1;
    json_t *out = NULL;
    for (size_t i = 0; i < total; i++) {
        json_t *one = json_copy(split ? json_array_get(input, i) : input);
        json_object_set_new(one, "external_id", json_string(o.external_id));
        json_decref(out);
        struct llmops_error err;
        int rc = engine_call(r->app, in, r->route->category, op, one, &out, &err);
        json_decref(one);
        if (rc < 0) {
            if (split && h->partial)
                h->partial(r, in, op, &err, i, total);
            else
                h->error(r, in, op->name, &err);
            json_decref(input);
            return;
        }
    }
    char msg[300] = "";
    json_t *data = h->answer(r, op, &o, input, out, msg, sizeof msg);
    json_decref(out);
    json_decref(input);
    if (data)
        resp_success(r, 200, msg, data);
}
