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
};

/* The hooks of a category (NULL: it has no generic routes). */
const struct engine_http_hooks *engine_http_hooks(int category);

/* GET .../{id}: the route's READ op with {external_id}; the hooks' present() answers. */
void engine_http_read(struct req *r);
/* DELETE .../{id}: the route's DELETE op with {external_id}; answers {id, deleted}. */
void engine_http_delete(struct req *r);

/* experiment_tracking's hooks (tracking_http.c). */
extern const struct engine_http_hooks tracking_http_hooks;

#endif
