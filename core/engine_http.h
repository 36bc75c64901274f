/* Routes as data: a route that names an operation of its category's table is served by one
 * of these generic handlers; the category contributes only hooks (how its objects are loaded
 * and shown). */
#ifndef LLMOPS_ENGINE_HTTP_H
#define LLMOPS_ENGINE_HTTP_H

#include "engine.h"
#include "owner.h"

/* What a category gives the generic handlers. */
struct engine_http_hooks {
    /* Loads platform id `id` of object kind `kind` and the running instance that holds it;
     * -1 after an error response. */
    int (*load)(struct req *r, const char *kind, const char *id, struct owned *o,
                struct instance **in);
    /* The error envelope of a failed call. */
    void (*error)(struct req *r, const struct instance *in, const char *op,
                  const struct llmops_error *err);
    /* The word for an object kind in messages ("exp" -> "experiment"). */
    const char *(*noun)(const char *kind);
    /* The answer's data for the object a read op returned (`out`, borrowed), or NULL after
     * an error response. */
    json_t *(*present)(struct req *r, const struct owned *o, struct instance *in, json_t *out);

    /* ---- for engine_http_create, _update, _action and _list (members appended; NULL where
     * a category has no such routes) */
    /* The op's input from the request, checked the category's way: called first with
     * o == NULL, before the path's object is loaded (check the request, set *input), then
     * with the object loaded (a create's: its parent) to complete *input, which it may
     * replace. After the second call *input is an object, or for an action an array of
     * objects, sent one call each in order (a split into batches). -1 after an error
     * response, *input released. */
    int (*input)(struct req *r, const struct llmops_op_desc *op, const struct owned *o,
                 json_t **input);
    /* The kind of the object a create's path names ("run" -> "exp"): its owner serves the
     * new object. NULL, or a route without a path parameter: the flag's instance does. */
    const char *(*parent)(const char *kind);
    /* The message of a successful create or update. */
    const char *(*done)(const struct llmops_op_desc *op);
    /* The error of call `done` (0-based) of `total` when an action's input is split (NULL:
     * error()). */
    void (*partial)(struct req *r, const struct instance *in, const struct llmops_op_desc *op,
                    const struct llmops_error *err, size_t done, size_t total);
    /* An action's answer: its data and message from what was sent (`input`, as input()
     * left it) and the last call's answer (`out`, borrowed); NULL after an error response. */
    json_t *(*answer)(struct req *r, const struct llmops_op_desc *op, const struct owned *o,
                      json_t *input, json_t *out, char *msg, size_t msgsize);
    /* For engine_http_list: the answer's items for a page `list` (borrowed) that instance
     * `in` answered in env (platform ids given), or NULL after an error response. */
    json_t *(*items)(struct req *r, const char *env, struct instance *in, json_t *list);
    /* For engine_http_create: the data of the object a CREATE op returned (`out`, borrowed),
     * made under `parent` (its id "" when the route has none); NULL hook: present(). NULL
     * after an error response. */
    json_t *(*created)(struct req *r, const struct owned *o, const struct owned *parent,
                       struct instance *in, json_t *out);
};

/* The hooks of a category (NULL: it has no generic routes). */
const struct engine_http_hooks *engine_http_hooks(int category);

/* GET .../{id}: the route's READ op with {external_id}; the hooks' present() answers. */
void engine_http_read(struct req *r);
/* DELETE .../{id}: the route's DELETE op with {external_id}; answers {id, deleted}. */
void engine_http_delete(struct req *r);

/* POST: the route's CREATE op. A platform id is reserved (its owner: the instance that holds
 * the parent object of the path, else the flag's), given as idempotency_key when the op
 * takes one, bound to the tool's external_id; answers 201 with Location (the GET route of
 * the kind's READ op) and created()'s (else present()'s) data, or releases the id when the
 * call fails. */
void engine_http_create(struct req *r);
/* PATCH .../{id}: the route's UPDATE op with input() and {external_id}, then the kind's first
 * READ op for the answer (present()). */
void engine_http_update(struct req *r);
/* An object sub-action (POST .../{id}/log, GET .../{id}/metric-history): the route's op with
 * input() and {external_id}, once per element when input() split it; answer() answers. */
void engine_http_action(struct req *r);

/* GET of a collection: the route's LIST op, with input() (called once, o == NULL; it sets
 * max_results) and each source's page_token, fanned out to every instance that holds objects
 * of the kind in the environment (the flag's active one, its fallback, every earlier owner;
 * ?instance= asks one alone), each to its end, then the next. Answers {NOUNs: items(), instance,
 * sources: {instance: "ok" | "unavailable" | "not_asked"}, next_page_token}: the token keeps
 * each source's position, a source that is down keeps it and is asked again on the pages
 * that follow, but alone it makes no next page. */
void engine_http_list(struct req *r);
/* Whether a failed call counts as its source being down (the others still answer). */
int engine_http_source_down(const struct llmops_error *err);

/* experiment_tracking's hooks (tracking_http.c). */
extern const struct engine_http_hooks tracking_http_hooks;

#endif
