/* Object ownership: platform ids and the (instance, external id) behind each. */
#ifndef LLMOPS_OWNER_H
#define LLMOPS_OWNER_H

#include "app.h"

struct owned {
    char id[64]; /* platform id: KIND_ + 24 hex digits */
    char kind[32];
    char environment[CONF_ENV_NAME_MAX + 1];
    int category;
    char instance[64];
    char external_id[256]; /* "" until the tool has created it */
};

/* The instance that serves a NEW object of `category` in env for `subject` (the project id,
 * else the caller's token name): the flag's candidate for the subject's bucket, else its
 * active instance. Returns NULL (and writes the error) when the flag names none or the
 * instance is not running. */
struct instance *owner_pick(struct app *app, struct req *r, int env_index, int category,
                            const char *subject);

/* Reserves a platform id for a new object served by `in` (external id still unknown). */
int owner_reserve(struct app *app, const char *kind, const char *env, int category,
                  const char *instance, const char *actor, struct owned *out, struct db_error *err);
/* The same for a create that a retry must find again: the unbound reservation of
 * (instance, kind, create_key) that an earlier attempt left (its worker killed before the
 * tool's id was recorded) is reused, else a new one is made with that key. */
int owner_reserve_keyed(struct app *app, const char *kind, const char *env, int category,
                        const char *instance, const char *actor, const char *create_key,
                        struct owned *out, struct db_error *err);
/* Records the tool's id once the tool created the object. */
int owner_bind(struct app *app, const char *id, const char *external_id, struct db_error *err);
/* Looks a platform id up: 1 found, 0 not found, -1 error. */
int owner_lookup(struct app *app, const char *id, struct owned *out, struct db_error *err);
/* The running instance that holds an object (for reads after a flip), or NULL. */
struct instance *owner_instance(struct app *app, const struct owned *o);

#endif
