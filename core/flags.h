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

/* Writes an override and its audit row in one statement. `before` is the effective flag.
 * action: "set", "rollback", "breaker_trip" or "breaker_restore". With expect_active, an
 * existing override is only replaced while its active instance is still that one (so that
 * workers racing to trip the same breaker write once). Returns the audit row as JSON, or NULL
 * with err filled — err->status DB_OK when the condition did not hold and nothing was written. */
json_t *flags_write(struct db *db, const char *env, int category, const struct flag *before,
                    const struct flag *after, const char *actor, const char *action,
                    const char *reason, const char *expect_active, struct db_error *err);

#endif
