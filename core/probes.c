/* Tool probes, run by the background process. */
#include "background.h"

#include "dispatch.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

/* Every [metrics] probe_interval_seconds the background process probes each instance's tool:
 * llmops_tool_up, llmops_tool_probe_duration_seconds, llmops_tool_probes_total. */
void probes_run(struct app *app)
{
    static int64_t last, last_follow;
    int64_t now = util_now_ms();
    if (now - last_follow >= 1000) {
        last_follow = now;
        if (metrics_follow(app->conf->metrics_shm_file))
            log_info("background: counting in %s (made anew by a restart of llm-opsd)",
                     app->conf->metrics_shm_file);
    }
    if (!metrics_enabled() || (last && now - last < app->conf->metrics_probe_interval * 1000))
        return;
    last = now;
    for (int i = 0; i < app->plugins.ninsts; i++) {
        struct instance *in = &app->plugins.insts[i];
        char base[200], labels[260];
        char name[140];
        metrics_escape(name, sizeof name, in->name);
        snprintf(base, sizeof base, "plugin=\"%s\"", name);
        int ok = 0;
        double secs = 0;
        if (in->initialised) {
            json_t *info = NULL;
            struct llmops_error err = {.size = sizeof err};
            int64_t t0 = util_now_us();
            ok = in->mod->desc->health(in->state, &info, &err) == 0;
            int64_t dur = util_now_us() - t0;
            secs = (double)dur / 1e6;
            json_decref(info);
            dispatch_call_done(app, in, "health", ok ? NULL : &err, dur);
            if (!ok)
                log_info("background: probe of %s failed: %s", in->name, err.message);
        }
        metrics_set("llmops_tool_up", base, ok);
        metrics_set("llmops_tool_probe_duration_seconds", base, secs);
        metrics_set("llmops_tool_last_probe_timestamp_seconds", base,
                    (double)util_wall_ms() / 1000.0);
        snprintf(labels, sizeof labels, "%s,outcome=\"%s\"", base, ok ? "ok" : "failed");
        metrics_add("llmops_tool_probes_total", labels, 1);
    }
}
