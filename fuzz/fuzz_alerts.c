/* Alertmanager's webhook message (core/alerts.c): JSON of any shape through the parser, then
 * what a handler derives from each alert it accepts (the targets planned, the audit's actor
 * and reason, cut to their sizes). */
#include "alerts.h"

#include <jansson.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int target(struct app *app, const char *env, const char *value, const char *actor,
                  const char *reason, int *changed, struct llmops_error *err)
{
    (void)app, (void)env, (void)value, (void)actor, (void)reason, (void)err;
    *changed = 0;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int registered;
    if (!registered) {
        alerts_register_target(ALERTS_DEPLOYMENT_LABEL, "deployment_rollback", target);
        registered = 1;
    }
    json_error_t jerr;
    json_t *body = json_loadb((const char *)data, size, JSON_DECODE_ANY, &jerr);
    if (!body)
        return 0;
    struct alerts_message m;
    struct alerts_parse_error e;
    if (alerts_parse(body, &m, &e) == 0) {
        for (size_t i = 0; i < m.n; i++) {
            struct alerts_action acts[ALERTS_TARGETS_MAX];
            int missing;
            int n = alerts_plan(&m.alerts[i], acts, ALERTS_TARGETS_MAX, &missing);
            char actor[64], reason[501], msg[600];
            alerts_actor(&m.alerts[i], actor, sizeof actor);
            alerts_reason(&m.alerts[i], reason, sizeof reason);
            if (strlen(actor) >= sizeof actor || strlen(reason) >= sizeof reason)
                __builtin_trap();
            for (int k = 0; k < n; k++)
                if (acts[k].fn == target)
                    alerts_run(NULL, &acts[k], actor, reason, msg, sizeof msg);
        }
        alerts_message_free(&m);
    } else if (strlen(e.message) == 0) {
        __builtin_trap(); /* every refusal says why */
    }
    json_decref(body);
    return 0;
}
