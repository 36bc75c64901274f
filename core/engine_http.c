/* The generic handlers of routes that name an operation (cgit's command table, applied to
 * category operations): load the object, call the op through the engine, answer. */
#include "engine_http.h"

#include "category.h"
#include "router.h"
#include "tracking.h" /* the page token codec of lists across instances */
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
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
    json_t *data = h->created ? h->created(r, &o, &parent, in, out) : h->present(r, &o, in, out);
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

/* ------------------------------------------------------------------ list across instances */

int engine_http_source_down(const struct llmops_error *err)
{
    return err->code == LLMOPS_ERR_UNAVAILABLE || err->code == LLMOPS_ERR_TOOL ||
           err->code == LLMOPS_ERR_INTERNAL;
}

/* The instance a list reads: ?instance= (one serving the category), else the active
 * instance of the environment's flag. */
static struct instance *list_instance(struct req *r, int category)
{
    const char *name = http_query(r, "instance"), *cat = category_name(category);
    struct instance *in;
    if (name) {
        in = plugins_find(&r->app->plugins, name);
        if (!in || !in->mod || (int)in->mod->desc->category != category) {
            char q[UTIL_QUOTE_SIZE(64)];
            resp_error(r, API_VALIDATION_FAILED, json_pack("{s:s}", "field", "instance"),
                       "no %s instance named '%s'", cat, util_quote(q, sizeof q, name, 64));
            return NULL;
        }
        if (!in->initialised || in->st == INSTANCE_FAILED) {
            resp_error(r, API_TOOL_UNAVAILABLE, json_pack("{s:s}", "instance", in->name),
                       "instance %s is not running: %s", in->name, in->reason);
            return NULL;
        }
        return in;
    }
    const struct flag_cache *fc = app_flags(r->app, r);
    if (!fc)
        return NULL;
    const char *active = fc->f[r->env_index][category].active;
    if (!active[0]) {
        resp_error(r, API_VALIDATION_FAILED, json_pack("{s:s}", "field", "env"),
                   "no instance serves %s in %s: set the flag", cat, r->env);
        return NULL;
    }
    in = plugins_find(&r->app->plugins, active);
    if (!in || !in->initialised || in->st == INSTANCE_FAILED) {
        resp_error(r, API_TOOL_UNAVAILABLE, json_pack("{s:s}", "instance", active),
                   "instance %s, which serves %s in %s, is not running", active, cat, r->env);
        return NULL;
    }
    return in;
}

/* The instances a list of the environment asks (llm-ops' "unified search"): the active one,
 * the fallback, then every earlier owner of objects of the kind (the objects table), each
 * once. */
static json_t *list_sources(struct req *r, int category, const char *kind, const char *active,
                            struct db_error *err)
{
    json_t *names = json_array();
    const struct flag_cache *fc = app_load_flags(r->app, err);
    const char *fallback = fc ? fc->f[r->env_index][category].fallback : "";
    json_array_append_new(names, json_string(active));
    if (fallback[0] && strcmp(fallback, active) != 0)
        json_array_append_new(names, json_string(fallback));
    const char *params[] = {r->env, category_name(category), kind};
    /* the distinct instances in order, as a skip scan of objects_env_kind_instance
     * (migration 0007): one index probe per instance, not a walk of every object */
    PGresult *res = db_exec(&r->app->db,
                            "WITH RECURSIVE s(instance) AS ((SELECT instance FROM objects"
                            " WHERE environment = $1 AND category = $2 AND kind = $3"
                            " ORDER BY instance LIMIT 1) UNION ALL SELECT (SELECT o.instance"
                            " FROM objects o WHERE o.environment = $1 AND o.category = $2"
                            " AND o.kind = $3 AND o.instance > s.instance ORDER BY"
                            " o.instance LIMIT 1) FROM s WHERE s.instance IS NOT NULL)"
                            " SELECT instance FROM s WHERE instance IS NOT NULL",
                            3, params, err);
    if (!res) {
        json_decref(names);
        return NULL;
    }
    for (int i = 0; i < PQntuples(res); i++) {
        const char *n = PQgetvalue(res, i, 0);
        int seen = 0;
        size_t k;
        json_t *v;
        json_array_foreach(names, k, v) seen |= strcmp(json_string_value(v), n) == 0;
        if (!seen)
            json_array_append_new(names, json_string(n));
    }
    PQclear(res);
    return names;
}

void engine_http_list(struct req *r)
{
    const struct engine_http_hooks *h;
    const struct llmops_op_desc *op = route_op_input(r, &h);
    json_t *base = NULL;
    if (!op || !h->items) {
        if (op)
            resp_error(r, API_INTERNAL, NULL, "route %s %s: its category has no items hook",
                       r->route->method, r->route->pattern);
        return;
    }
    if (h->input(r, op, NULL, &base) < 0)
        return;
    int category = r->route->category;
    long long max = json_integer_value(json_object_get(base, "max_results"));
    struct instance *in = list_instance(r, category);
    if (!in) {
        json_decref(base);
        return;
    }
    struct db_error dberr;
    json_t *names = http_query(r, "instance")
                        ? json_pack("[s]", in->name)
                        : list_sources(r, category, op->object, in->name, &dberr);
    if (!names) {
        json_decref(base);
        resp_error(r, API_DATABASE_UNAVAILABLE, NULL, "cannot read the sources: %s", dberr.message);
        return;
    }
    const char *pt = http_query(r, "page_token");
    json_t *cursor = NULL;
    if (pt && !(cursor = track_cursor_decode(pt))) {
        json_decref(base);
        json_decref(names);
        resp_error(r, API_VALIDATION_FAILED, json_pack("{s:s}", "field", "page_token"),
                   "page_token is not one this list gave");
        return;
    }
    const char *noun = h->noun(op->object);
    char member[64];
    snprintf(member, sizeof member, "%ss", noun);
    json_t *res = json_array(), *sources = json_object(), *next = json_object();
    int more = 0;
    size_t k;
    json_t *v;
    json_array_foreach(names, k, v)
    {
        const char *n = json_string_value(v);
        json_t *st = cursor ? json_object_get(cursor, n) : json_null();
        if (cursor && !st) /* a source that came since the first page: from its start */
            st = json_null();
        if (json_is_integer(st) && json_integer_value(st) == 0) {
            json_object_set_new(next, n, json_integer(0));
            continue; /* done on an earlier page */
        }
        if (!json_is_null(st) && !json_is_string(st)) {
            resp_error(r, API_VALIDATION_FAILED, json_pack("{s:s}", "field", "page_token"),
                       "page_token is not one this list gave (instance %s)", n);
            goto out;
        }
        if ((long long)json_array_size(res) >= max) {
            json_object_set(next, n, st);
            json_object_set_new(sources, n, json_string("not_asked"));
            more = 1;
            continue;
        }
        struct instance *src = strcmp(n, in->name) == 0 ? in : plugins_find(&r->app->plugins, n);
        if (!src || !src->initialised || src->st == INSTANCE_FAILED) {
            json_object_set(next, n, st); /* kept, but alone it makes no next page */
            json_object_set_new(sources, n, json_string("unavailable"));
            continue;
        }
        json_t *input = json_copy(base);
        json_object_set_new(input, "max_results",
                            json_integer((json_int_t)(max - (long long)json_array_size(res))));
        if (json_is_string(st))
            json_object_set(input, "page_token", st);
        json_t *out;
        struct llmops_error err;
        int rc = engine_call(r->app, src, category, op, input, &out, &err);
        json_decref(input);
        if (rc < 0 && engine_http_source_down(&err) && json_array_size(names) > 1) {
            json_object_set(next, n, st);
            json_object_set_new(sources, n, json_string("unavailable"));
            continue;
        }
        if (rc < 0) {
            h->error(r, src, op->name, &err);
            goto out;
        }
        json_t *items = h->items(r, r->env, src, json_object_get(out, member));
        if (!items) {
            json_decref(out);
            goto out;
        }
        json_array_extend(res, items);
        json_decref(items);
        json_object_set_new(sources, n, json_string("ok"));
        json_t *tok = json_object_get(out, "next_page_token");
        if (json_is_string(tok)) {
            json_object_set(next, n, tok);
            more = 1;
            max = (long long)json_array_size(res); /* this source has more: the page ends here */
        } else {
            json_object_set_new(next, n, json_integer(0));
        }
        json_decref(out);
    }
    {
        size_t n = json_array_size(res);
        char *tok = more ? track_cursor_encode(next) : NULL;
        json_t *data = json_pack("{s:O,s:s,s:O,s:o}", member, res, "instance", in->name, "sources",
                                 sources, "next_page_token", tok ? json_string(tok) : json_null());
        free(tok);
        char msg[96];
        snprintf(msg, sizeof msg, "%zu %s%s", n, noun, n == 1 ? "" : "s");
        resp_success(r, 200, msg, data);
    }
out:
    json_decref(base);
    json_decref(res);
    json_decref(sources);
    json_decref(next);
    json_decref(names);
    json_decref(cursor);
}
