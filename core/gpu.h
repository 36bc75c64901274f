/* GPU types per environment: validation, the cached list, CRUD handlers, the seed. */
#ifndef LLMOPS_GPU_H
#define LLMOPS_GPU_H

#include "db.h"

#include <jansson.h>
#include <stddef.h>

enum gpu_mode {
    GPU_FULL,    /* POST / PUT / seed: every required member */
    GPU_PARTIAL, /* PATCH: any subset, not name */
};

/* Validates obj. On failure returns -1 with a message and the offending member in field. */
int gpu_validate(json_t *obj, enum gpu_mode mode, char *msg, size_t msgsize, char *field,
                 size_t fieldsize);

/* The read-only members environment and created_at, when the body has them, must equal the
 * object's (current; a member current lacks is not compared): so a GET answer can be sent
 * back, and a body meant for another object or environment is refused. updated_at is never
 * compared (If-Match is the precondition). Returns 0, or -1 with msg and the member in field. */
int gpu_check_read_only(json_t *body, json_t *current, char *msg, size_t msgsize, char *field,
                        size_t fieldsize);

/* Does an If-None-Match or If-Match header (a client's bytes) list this entity tag, or "*"?
 * weak_ok: the weak comparison of If-None-Match (W/"x" equals "x"); else the strong one of
 * If-Match, where a weak tag never matches. */
int gpu_etag_matches(const char *header, const char *etag, int weak_ok);

/* Inserts the seed's types for the configured environments; existing names are kept.
 * Returns 0 or -1 with msg filled. */
struct llmops_conf;
int gpu_seed(struct db *db, const struct llmops_conf *conf, json_t *seed, int *inserted, int *kept,
             char *msg, size_t msgsize);

#endif
