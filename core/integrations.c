/* /llm-ops/v1/integrations: every instance, its module, state and what it serves. */
#include "app.h"
#include "dispatch.h"
#include "handlers.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *state_name(enum instance_state s)
{
    return s == INSTANCE_OK ? "ok" : s == INSTANCE_DEGRADED ? "degraded" : "failed";
}

static json_t *instance_json(struct app *app, const struct instance *in,
                             const struct flag_cache *fc)
{
    const struct llmops_plugin *d = in->mod ? in->mod->desc : NULL;
    char abi[16] = "";
    if (d)
        snprintf(abi, sizeof abi, "%u.%u", d->magic.abi_major, d->magic.abi_minor);
    json_t *serves = json_array();
    for (int e = 0; fc && e < app->conf->n_envs; e++) {
        for (int c = 1; c <= CATEGORY_COUNT; c++) {
            const struct flag *f = &fc->f[e][c];
            const char *roles[3] = {f->active, f->candidate, f->fallback};
            static const char *const names[3] = {"active", "candidate", "fallback"};
            for (int k = 0; k < 3; k++)
                if (strcmp(roles[k], in->name) == 0)
                    json_array_append_new(serves, json_pack("{s:s,s:s,s:s}", "environment",
                                                            app->conf->envs[e], "category",
                                                            category_name(c), "role", names[k]));
        }
    }
    json_t *metrics = json_object();
    for (int i = 0; i < in->nmetrics; i++)
        json_object_set_new(metrics, in->metrics[i].name, json_real(in->metrics[i].value));
    return json_pack("{s:s,s:o,s:o,s:o,s:o,s:o,s:s,s:o,s:s,s:o,s:o}", "name", in->name, "module",
                     json_str_or_null(in->cfg->module), "module_version",
                     json_str_or_null(d ? d->version : NULL), "abi", json_str_or_null(abi),
                     "category", json_str_or_null(d ? category_name((int)d->category) : NULL),
                     "tool_version", json_str_or_null(in->tool_version), "state",
                     state_name(in->st), "reason",
                     json_str_or_null(in->st == INSTANCE_OK ? NULL : in->reason), "breaker",
                     breaker_state_name(in->breaker.state), "serves", serves, "metrics", metrics);
}

void integrations_list(struct req *r)
{
    struct app *app = r->app;
    const struct flag_cache *fc = app_flags(app, r);
    if (!fc)
        return;
    json_t *list = json_array();
    for (int i = 0; i < app->plugins.ninsts; i++)
        json_array_append_new(list, instance_json(app, &app->plugins.insts[i], fc));
    char msg[64];
    snprintf(msg, sizeof msg, "%d integration%s", app->plugins.ninsts,
             app->plugins.ninsts == 1 ? "" : "s");
    resp_success(r, 200, msg, json_pack("{s:o}", "integrations", list));
}

void integration_health(struct req *r)
{
    struct app *app = r->app;
    struct instance *in = plugins_find(&app->plugins, r->path_params[0]);
    if (!in) {
        char q[UTIL_QUOTE_SIZE(64)];
        resp_error(r, API_NOT_FOUND, json_pack("{s:s}", "field", "name"),
                   "no integration named '%s'", util_quote(q, sizeof q, r->path_params[0], 64));
        return;
    }
    if (!in->initialised) {
        resp_error(r, API_TOOL_UNAVAILABLE, json_pack("{s:s}", "state", "failed"),
                   "integration %s is not running: %s", in->name, in->reason);
        return;
    }
    const struct llmops_plugin *d = in->mod->desc;
    int64_t t0 = util_now_us();
    json_t *info = NULL;
    struct llmops_error err = {.size = sizeof err};
    int rc = d->health(in->state, &info, &err);
    double ms = (double)((util_now_us() - t0 + 5) / 10) / 100.0; /* to 0.01 ms */
    dispatch_call_done(app, in, "health", rc == 0 ? NULL : &err, util_now_us() - t0);
    if (rc != 0) {
        json_decref(info);
        in->st = INSTANCE_DEGRADED;
        snprintf(in->reason, sizeof in->reason, "health probe failed: %s", err.message);
        resp_error(r,
                   plugin_status_to_api(err.code) == API_TOOL_ERROR ? API_TOOL_ERROR
                                                                    : API_TOOL_UNAVAILABLE,
                   json_pack("{s:s,s:f,s:i}", "state", "degraded", "latency_ms", ms, "tool_status",
                             err.tool_status),
                   "integration %s is unhealthy: %s", in->name, err.message);
        return;
    }
    const char *tv = json_string_value(json_object_get(info, "tool_version"));
    snprintf(in->tool_version, sizeof in->tool_version, "%s", tv ? tv : "");
    int supported = !tv || util_version_in_range(tv, d->tool_version_min, d->tool_version_max);
    const char *policy = in->host.config_string(&in->host, "unsupported_version", "degrade");
    if (!supported) {
        in->st = strcmp(policy, "refuse") == 0 ? INSTANCE_FAILED : INSTANCE_DEGRADED;
        snprintf(in->reason, sizeof in->reason,
                 "tool version %s is outside the range module %s supports (%s to %s)", tv,
                 in->mod->name, d->tool_version_min ? d->tool_version_min : "any",
                 d->tool_version_max ? d->tool_version_max : "any");
    } else {
        in->st = INSTANCE_OK;
        in->reason[0] = '\0';
    }
    json_t *data = json_pack("{s:s,s:s,s:o,s:b,s:f,s:o}", "name", in->name, "state",
                             in->st == INSTANCE_OK         ? "ok"
                             : in->st == INSTANCE_DEGRADED ? "degraded"
                                                           : "failed",
                             "tool_version", json_str_or_null(in->tool_version), "supported",
                             supported, "latency_ms", ms, "info", info ? info : json_object());
    char msg[200];
    snprintf(msg, sizeof msg, "integration %s answered in %.1f ms", in->name, ms);
    resp_success(r, 200, msg, data);
}
