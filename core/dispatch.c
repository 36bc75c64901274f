#include "dispatch.h"

#include "log.h"
#include "metrics.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

static int is_failure(const struct llmops_error *err)
{
    if (!err)
        return 0;
    return err->code == LLMOPS_ERR_UNAVAILABLE || err->code == LLMOPS_ERR_TOOL ||
           err->code == LLMOPS_ERR_INTERNAL;
}

/* plan of a trip: decided on the flag as it is now (another worker's breaker may have moved
 * it already). */
static int plan_trip(const struct flag *before, struct flag *after, void *ud, char *msg,
                     size_t msgsize)
{
    const char *name = ud;
    *after = *before;
    if (strcmp(before->active, name) == 0 && before->fallback[0] &&
        strcmp(before->fallback, name) != 0) {
        snprintf(after->active, sizeof after->active, "%s", before->fallback);
        after->candidate[0] = '\0';
        after->rollout = 0;
        return 0;
    }
    if (strcmp(before->candidate, name) == 0) {
        after->candidate[0] = '\0';
        after->rollout = 0;
        return 0;
    }
    snprintf(msg, msgsize, "%s serves this pair no longer", name);
    return -1;
}

/* After this process changed the flags (committed): every worker drops its flag cache before
 * its next request, this one at once (what app_changed does, without calling back into it). */
static void flags_changed(struct app *app)
{
    metrics_change_bump(METRICS_CHANGE_FLAGS);
    app->flags.valid = 0;
}

/* Moves every pair `in` serves as active (to its fallback) or as candidate (rollout off). */
static void trip(struct app *app, struct instance *in, unsigned calls, unsigned failures)
{
    char reason[300];
    snprintf(reason, sizeof reason,
             "circuit breaker of instance %s opened: %u of %u calls failed in the last %lld s",
             in->name, failures, calls, (long long)(in->reg->policy.window_ms / 1000));
    log_error("%s", reason);
    app->flags.valid = 0; /* which pairs it serves: read afresh, each decided under its lock */
    if (flags_load(&app->flags, app->conf, &app->db, &(struct db_error){0}) < 0) {
        log_error("breaker of %s: cannot read the flags; traffic stays where it is", in->name);
        return;
    }
    struct flag now[CONF_MAX_ENVS][CATEGORY_COUNT + 1];
    memcpy(now, app->flags.f, sizeof now);
    int changed = 0;
    for (int e = 0; e < app->conf->n_envs; e++) {
        for (int c = 1; c <= CATEGORY_COUNT; c++) {
            if (strcmp(now[e][c].active, in->name) != 0 &&
                strcmp(now[e][c].candidate, in->name) != 0)
                continue;
            struct db_error err;
            struct flag_change ch = {.actor = "circuit-breaker",
                                     .action = "breaker_trip",
                                     .reason = reason,
                                     .plan = plan_trip,
                                     .ud = (void *)in->name};
            json_t *row = flags_change(&app->db, app->conf, app->conf->envs[e], c, &ch, &err);
            if (row) {
                changed = 1;
                log_error("breaker of %s: %s of %s now served by %s", in->name, category_name(c),
                          app->conf->envs[e], ch.after.active);
                char labels[160];
                snprintf(labels, sizeof labels, "environment=\"%s\",category=\"%s\"",
                         app->conf->envs[e], category_name(c));
                if (strcmp(ch.after.active, ch.before.active) != 0)
                    metrics_add("llmops_flag_fallbacks_total", labels, 1);
                json_decref(row);
            } else if (err.status != DB_OK) {
                log_error("breaker of %s: could not move %s of %s: %s", in->name, category_name(c),
                          app->conf->envs[e], err.message);
            }
        }
    }
    if (changed)
        flags_changed(app);
    app->flags.valid = 0;
}

void dispatch_outcome(struct app *app, struct instance *in, const struct llmops_error *err)
{
    int64_t now = util_now_ms();
    if (breaker_record(&in->breaker, &in->reg->policy, is_failure(err), now)) {
        char labels[160], name[140];
        metrics_escape(name, sizeof name, in->name);
        snprintf(labels, sizeof labels, "plugin=\"%s\"", name);
        metrics_add("llmops_breaker_trips_total", labels, 1);
        metrics_gauge_add("llmops_breaker_open", labels, 1);
        /* The request that saw the failure only records it: the flags move in
         * dispatch_run_pending, after its answer is sent. */
        breaker_window(&in->breaker, now, &in->trip_calls, &in->trip_failures);
        in->trip_pending = 1;
    }
}

int dispatch_pending(const struct app *app)
{
    for (int i = 0; i < app->plugins.ninsts; i++)
        if (app->plugins.insts[i].trip_pending)
            return 1;
    return 0;
}

void dispatch_run_pending(struct app *app)
{
    for (int i = 0; i < app->plugins.ninsts; i++) {
        struct instance *in = &app->plugins.insts[i];
        if (!in->trip_pending)
            continue;
        in->trip_pending = 0;
        trip(app, in, in->trip_calls, in->trip_failures);
    }
}

void dispatch_labels(const struct instance *in, char *out, size_t size)
{
    char name[140];
    metrics_escape(name, sizeof name, in->name);
    const char *cat = in->mod ? category_name((int)in->mod->desc->category) : NULL;
    snprintf(out, size, "plugin=\"%s\",category=\"%s\"", name, cat ? cat : "unknown");
}

void dispatch_call_done(struct app *app, struct instance *in, const char *op,
                        const struct llmops_error *err, int64_t duration_us)
{
    log_note_instance(in->name);
    if (metrics_enabled()) {
        char base[200], labels[300];
        dispatch_labels(in, base, sizeof base);
        snprintf(labels, sizeof labels, "%s,operation=\"%s\",outcome=\"%s\"", base, op,
                 metrics_outcome(err ? (int)err->code : 0));
        metrics_add("llmops_plugin_calls_total", labels, 1);
        snprintf(labels, sizeof labels, "%s,operation=\"%s\"", base, op);
        metrics_observe("llmops_plugin_call_duration_seconds", labels, (double)duration_us / 1e6);
    }
    if (app)
        dispatch_outcome(app, in, err);
}

struct restore_plan {
    struct flag to;       /* the flag before the trip */
    const char *expected; /* the active instance the trip left */
};

/* plan of a restore: only while the pair is still where the trip left it. */
static int plan_restore(const struct flag *before, struct flag *after, void *ud, char *msg,
                        size_t msgsize)
{
    const struct restore_plan *rp = ud;
    if (strcmp(before->active, rp->expected) != 0) {
        snprintf(msg, msgsize, "changed since the trip");
        return -1;
    }
    *after = rp->to;
    return 0;
}

/* Gives back what the breaker took from `in`: the pairs whose last change was its trip. */
static void restore(struct app *app, struct instance *in)
{
    const char *params[] = {in->name};
    struct db_error err;
    PGresult *r = db_exec(&app->db,
                          "SELECT a.environment, a.category, a.before::text, a.after->>'active'"
                          " FROM flag_audit a WHERE a.action = 'breaker_trip'"
                          " AND (a.before->>'active' = $1 OR a.before->>'candidate' = $1)"
                          " AND a.id = (SELECT max(id) FROM flag_audit b"
                          "  WHERE b.environment = a.environment AND b.category = a.category)",
                          1, params, &err);
    if (!r)
        return;
    int changed = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        int e = conf_env_index(app->conf, PQgetvalue(r, i, 0));
        int c = category_from_string(PQgetvalue(r, i, 1));
        json_t *b = json_loads(PQgetvalue(r, i, 2), 0, NULL);
        if (e < 0 || c < 0 || !b) {
            json_decref(b);
            continue;
        }
        struct restore_plan rp = {.expected = PQgetvalue(r, i, 3)};
        struct flag *after = &rp.to;
        const char *v;
        if ((v = json_string_value(json_object_get(b, "active"))))
            snprintf(after->active, sizeof after->active, "%s", v);
        if ((v = json_string_value(json_object_get(b, "fallback"))))
            snprintf(after->fallback, sizeof after->fallback, "%s", v);
        if ((v = json_string_value(json_object_get(b, "candidate"))))
            snprintf(after->candidate, sizeof after->candidate, "%s", v);
        after->rollout = (int)json_integer_value(json_object_get(b, "rollout_percent"));
        json_decref(b);
        char reason[200];
        snprintf(reason, sizeof reason, "instance %s is healthy again: traffic returns to it",
                 in->name);
        struct flag_change ch = {.actor = "circuit-breaker",
                                 .action = "breaker_restore",
                                 .reason = reason,
                                 .plan = plan_restore,
                                 .ud = &rp};
        json_t *row = flags_change(&app->db, app->conf, app->conf->envs[e], c, &ch, &err);
        if (row) {
            changed = 1;
            log_info("breaker of %s closed: %s of %s served by %s again", in->name,
                     category_name(c), app->conf->envs[e], ch.after.active);
            json_decref(row);
        }
    }
    PQclear(r);
    if (changed)
        flags_changed(app);
    app->flags.valid = 0;
}

void dispatch_tick(struct app *app)
{
    if (dispatch_pending(app))
        dispatch_run_pending(app); /* a trip whose after-answer step did not run */
    int64_t now = util_now_ms();
    for (int i = 0; i < app->plugins.ninsts; i++) {
        struct instance *in = &app->plugins.insts[i];
        if (in->breaker.state != BREAKER_OPEN || !in->initialised)
            continue;
        if (!breaker_probe_due(&in->breaker, &in->reg->policy, now))
            continue;
        json_t *info = NULL;
        struct llmops_error err = {.size = sizeof err};
        int ok = in->mod->desc->health(in->state, &info, &err) == 0;
        json_decref(info);
        breaker_probed(&in->breaker, ok, util_now_ms());
        if (in->breaker.state == BREAKER_CLOSED) {
            char labels[160], name[140];
            metrics_escape(name, sizeof name, in->name);
            snprintf(labels, sizeof labels, "plugin=\"%s\"", name);
            metrics_gauge_add("llmops_breaker_open", labels, -1);
        }
        if (ok)
            plugins_refresh_capabilities(in); /* what it can do may have changed meanwhile */
        if (ok && in->st == INSTANCE_DEGRADED) {
            in->st = INSTANCE_OK;
            in->reason[0] = '\0';
        }
        log_info("breaker of %s: probe %s", in->name, ok ? "succeeded" : "failed");
        if (ok && app->conf->breaker_auto_close)
            restore(app, in);
    }
}
