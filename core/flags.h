/* Feature flags: for each (environment, category) the active instance, an optional fallback,
 * and an optional candidate that a stable percentage of subjects is sent to. Defaults come from
 * [flags "ENV"]; overrides live in PostgreSQL (flag_overrides), audited in flag_audit, and
 * reach every worker through LISTEN/NOTIFY. */
#ifndef LLMOPS_FLAGS_H
#define LLMOPS_FLAGS_H

#include "category.h"
#include "conf.h"
#include "db.h"

#include <jansson.h>

struct plugin_registry;

struct flag {
    char active[64]; /* "" = none */
    char fallback[64];
    char candidate[64];
    int rollout;    /* percent */
    int overridden; /* from flag_overrides rather than the configuration */
    char updated_by[64];
    char updated_at[32];
};

struct flag_cache {
    int valid;
    struct flag f[CONF_MAX_ENVS][CATEGORY_COUNT + 1];
};

/* Fills the cache from the configuration and the overrides (one query). */
int flags_load(struct flag_cache *fc, const struct llmops_conf *conf, struct db *db,
               struct db_error *err);

/* 0..99, stable for (env, category, subject). */
int flags_bucket(const char *env, int category, const char *subject);

enum flag_route { FLAG_NONE, FLAG_ACTIVE, FLAG_CANDIDATE, FLAG_FALLBACK };
/* Which instance serves `subject`: the candidate for its bucket, else the active one. */
const char *flags_pick(const struct flag *f, const char *env, int category, const char *subject,
                       enum flag_route *why);

json_t *flag_to_json(const struct flag *f, const char *env, int category);

/* The longest reason a flag change may give (bytes); it goes to the audit log. */
#define FLAGS_REASON_MAX 500

/* The flag a rollback leads to: the fallback becomes active, the candidate is dropped.
 * Returns 0, or -1 with msg when there is nothing to roll back to (no fallback, or the
 * fallback serves already). The API (409) and llm-opsctl (exit 1) share this rule. */
int flags_plan_rollback(const struct flag *before, const char *env, int category,
                        struct flag *after, char *msg, size_t msgsize);

/* Checks that each instance exists and belongs to `category`. Returns 0, or -1 with msg. */
int flags_check_instances(const struct plugin_registry *reg, int category, const char *active,
                          const char *fallback, const char *candidate, char *msg, size_t msgsize);
/* Checks the [flags] sections of the configuration against the loaded modules. */
int flags_check_config(const struct llmops_conf *conf, const struct plugin_registry *reg,
                       struct conf_errors *errs);

/* One change of the flag of (env, category), made in one transaction that holds a lock on
 * that pair: the flag is read there (the override row FOR UPDATE, else the configuration's),
 * plan() decides from what it read, and the override and its audit row (`before` = what was
 * read) are written and committed together. So concurrent writers are serialised, each
 * audit row's before is the previous row's after, and a conditional change (a rollback, a
 * breaker's trip or restore) is decided on the state it changes. */
struct flag_change {
    const char *actor, *action, *reason; /* action: set, rollback, breaker_trip, breaker_restore */
    /* Fills after from before; returns 0 to write it, or -1 to change nothing (msg: why). */
    int (*plan)(const struct flag *before, struct flag *after, void *ud, char *msg, size_t msgsize);
    void *ud;
    struct flag before, after; /* out: as read under the lock, as written */
    char refusal[300];         /* out: plan's reason when it refused */
};

/* Returns the audit row as JSON; NULL with err->status DB_OK when plan refused (ch->refusal
 * says why), or NULL with err filled when the database failed (nothing was written). */
json_t *flags_change(struct db *db, const struct llmops_conf *conf, const char *env, int category,
                     struct flag_change *ch, struct db_error *err);

#endif
