/* Alertmanager's webhook (POST /llm-ops/v1/alerts): its JSON (version "4") parsed and checked,
 * and what a firing alert makes the platform do, chosen by its labels through a table of
 * targets. The flag target is built in (llmops_env + llmops_category: the flag is rolled back
 * to its fallback, as POST /flags/{env}/{category}/rollback does); another part of the core
 * registers its own at start-up (llmops_env + llmops_deployment: the serving core rolls the
 * deployment's canary back). Recording and idempotency are in alerts_http.c. */
#ifndef LLMOPS_ALERTS_H
#define LLMOPS_ALERTS_H

#include "llmops-plugin.h"

#include <jansson.h>
#include <stddef.h>

struct app;

/* The most alerts one notification may carry (Alertmanager's max_alerts is 0 = all). */
#define ALERTS_MAX 1000

struct alerts_alert {
    int firing;                /* status "firing" (1) or "resolved" (0) */
    json_t *labels;            /* borrowed from the body: an object of strings */
    json_t *annotations;       /* the same; NULL when absent */
    const char *starts_at;     /* RFC 3339 */
    const char *ends_at;       /* RFC 3339, or "" */
    const char *generator_url; /* or "" */
    const char *fingerprint;   /* 1-64 of [A-Za-z0-9] */
    const char *alertname;     /* labels.alertname, or "" */
};

struct alerts_message {
    const char *status;                              /* the group's: "firing" or "resolved" */
    const char *receiver, *group_key, *external_url; /* or "" */
    long long truncated_alerts;
    size_t n;
    struct alerts_alert *alerts; /* malloc'd, n of them */
};

struct alerts_parse_error {
    char field[96];    /* where: "version", "alerts[2].startsAt", "alerts[0].labels.team" */
    char message[400]; /* what, naming the field */
};

/* Checks body against Alertmanager's webhook message, version "4". Members it does not know
 * are ignored (a newer Alertmanager may add some); those it knows must have their type.
 * Returns 0 with m filled (free it with alerts_message_free; it borrows from body), or -1 with
 * e filled. */
int alerts_parse(json_t *body, struct alerts_message *m, struct alerts_parse_error *e);
void alerts_message_free(struct alerts_message *m);

/* 1 when s is an RFC 3339 date-time as Go writes it ("2026-12-03T11:30:00.123Z",
 * "...+02:00"). */
int alerts_valid_time(const char *s);

/* A target: does what an alert asks of the object `value` names in environment `env`.
 * Returns 0 with *changed 1 (done) or 0 (nothing to do: already so), or -1 with err filled
 * (code NOT_FOUND, INVALID... ; retryable or UNAVAILABLE: tried again when Alertmanager
 * repeats the alert). The serving core's serving_rollback_by_name has this type. */
typedef int (*alerts_target_fn)(struct app *app, const char *env, const char *value,
                                const char *actor, const char *reason, int *changed,
                                struct llmops_error *err);

#define ALERTS_TARGETS_MAX 8

/* Registers fn for alerts carrying label `label` (and llmops_env): action names it in the
 * record and in llmops_alert_actions_total (e.g. "deployment_rollback"). A label registered
 * again is replaced. Returns 0, or -1 (table full, bad names, or the label llmops_env).
 * Call it at start-up, before requests are served. */
int alerts_register_target(const char *label, const char *action, alerts_target_fn fn);
/* Removes the targets registered (the built-in flag target stays): for tests. */
void alerts_reset_targets(void);

#define ALERTS_ENV_LABEL "llmops_env"
#define ALERTS_CATEGORY_LABEL "llmops_category"
#define ALERTS_DEPLOYMENT_LABEL "llmops_deployment"

/* One thing an alert asks for. */
struct alerts_action {
    const char *label, *action;
    alerts_target_fn fn;     /* NULL: a reserved label nothing registered */
    const char *env, *value; /* borrowed from the alert's labels */
};

/* What a firing alert asks for: one action per target whose label it carries (and one with
 * fn NULL for llmops_deployment while no target is registered for it: alerts_run fails it,
 * saying so). Returns the
 * count (0: the alert names nothing; it is ignored), at most max. *missing_env is set when
 * the alert names a target but no llmops_env (nothing can be done: failed). */
int alerts_plan(const struct alerts_alert *a, struct alerts_action *out, int max, int *missing_env);

/* "alertmanager:<alertname>" (or the fingerprint), at most size-1 bytes. */
void alerts_actor(const struct alerts_alert *a, char *out, size_t size);
/* The audit reason: the alert's name, fingerprint, start and summary (or description,
 * message), at most size-1 bytes, cut on a UTF-8 boundary. */
void alerts_reason(const struct alerts_alert *a, char *out, size_t size);

/* The result of one action: "done", "noop", "failed" or "error". */
const char *alerts_run(struct app *app, const struct alerts_action *act, const char *actor,
                       const char *reason, char *message, size_t msgsize);

#endif
