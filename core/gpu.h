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

/* ------------------------------------------------------------------ use by deployments and jobs
 *
 * The capacity rule: for each (environment, GPU type), the sum over live (not deleted)
 * deployments of gpu_count x replicas.max (twice while a canary runs: the candidate may
 * scale as far as the stable one) plus gpu_count of RUNNING training jobs never exceeds
 * the type's capacity (a QUEUED job holds no GPUs yet: its create is refused when its count
 * is more than is free now, and its move to RUNNING is checked again). Every writer that adds use
 * takes the type's advisory lock in its transaction first (gpu_lock_usage), so two concurrent
 * creates cannot both see the same free GPUs. */
struct gpu_pick {
    char name[64];
    char resource_name[256];
    char node_key[256], node_value[64];
    char mig_profile[64]; /* "" when the type is a whole GPU */
    long long capacity;
};

/* 1 with *out: `name` is an enabled GPU type of env; 0: it is unknown (*disabled 0) or
 * disabled (*disabled 1), and *valid is a new array of the enabled names; -1 with err. */
int gpu_resolve(struct db *db, const char *env, const char *name, struct gpu_pick *out,
                json_t **valid, int *disabled, struct db_error *err);

/* In an open transaction: takes the advisory lock of (env, type) (held until COMMIT or
 * ROLLBACK), then reads the GPUs of that type in use (not counting deployment `exclude`'s,
 * when not NULL) and its capacity. Returns 0, or -1 with err. */
int gpu_lock_usage(struct db *db, const char *env, const char *type, const char *exclude,
                   long long *used, long long *capacity, struct db_error *err);

/* The refusal of a request that would exceed the capacity: 409 CONFLICT, details gpu_type,
 * requested, free, capacity; the message names all four and the environment. */
struct req;
void gpu_refuse_capacity(struct req *r, const char *env, const char *type, long long requested,
                         long long used, long long capacity);
/* The 400 for an unknown or disabled type: field gpu_type, valid (the enabled names, stolen),
 * the message listing them. */
void gpu_refuse_type(struct req *r, const char *env, const char *name, int disabled, json_t *valid);

#endif
