#include "alerts.h"

#include "app.h"
#include "category.h"
#include "flags.h"
#include "metrics.h"
#include "util.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ the message */

static int bad(struct alerts_parse_error *e, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int bad(struct alerts_parse_error *e, const char *field, const char *fmt, ...)
{
    snprintf(e->field, sizeof e->field, "%s", field);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return -1;
}

static int digits(const char *s, int n)
{
    for (int i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return 0;
    return 1;
}

int alerts_valid_time(const char *s)
{
    /* YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM) */
    if (strlen(s) < 20 || strlen(s) > 40)
        return 0;
    if (!digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) || s[7] != '-' || !digits(s + 8, 2) ||
        (s[10] != 'T' && s[10] != 't') || !digits(s + 11, 2) || s[13] != ':' ||
        !digits(s + 14, 2) || s[16] != ':' || !digits(s + 17, 2))
        return 0;
    int mon = (s[5] - '0') * 10 + (s[6] - '0'), day = (s[8] - '0') * 10 + (s[9] - '0');
    int hh = (s[11] - '0') * 10 + (s[12] - '0'), mm = (s[14] - '0') * 10 + (s[15] - '0');
    int ss = (s[17] - '0') * 10 + (s[18] - '0');
    if (mon < 1 || mon > 12 || day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60)
        return 0;
    const char *p = s + 19;
    if (*p == '.') {
        p++;
        const char *f = p;
        while (isdigit((unsigned char)*p))
            p++;
        if (p == f || p - f > 9)
            return 0;
    }
    if ((*p == 'Z' || *p == 'z') && p[1] == '\0')
        return 1;
    if ((*p == '+' || *p == '-') && digits(p + 1, 2) && p[3] == ':' && digits(p + 4, 2) &&
        p[6] == '\0')
        return (p[1] - '0') * 10 + (p[2] - '0') <= 23 && (p[4] - '0') * 10 + (p[5] - '0') <= 59;
    return 0;
}

/* An optional string member: "" when absent or null. */
static int opt_string(json_t *obj, const char *key, const char *where, size_t max, const char **out,
                      struct alerts_parse_error *e)
{
    json_t *v = json_object_get(obj, key);
    *out = "";
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return bad(e, where, "%s must be a string", where);
    if (json_string_length(v) > max)
        return bad(e, where, "%s is longer than %zu bytes", where, max);
    if (strlen(json_string_value(v)) != json_string_length(v))
        return bad(e, where, "%s must not contain a NUL character", where);
    *out = json_string_value(v);
    return 0;
}

/* A map of label or annotation names to strings (Go's map[string]string); absent or null
 * is an empty object when !required. */
static int string_map(json_t *obj, const char *key, const char *where, int required, json_t **out,
                      struct alerts_parse_error *e)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v)) {
        if (required)
            return bad(e, where, "%s is required (an object of strings)", where);
        return 0;
    }
    if (!json_is_object(v))
        return bad(e, where, "%s must be an object of strings", where);
    const char *k;
    json_t *s;
    json_object_foreach(v, k, s)
    {
        char q[UTIL_QUOTE_SIZE(48)];
        if (!json_is_string(s))
            return bad(e, where, "%s.%s must be a string", where, util_quote(q, sizeof q, k, 48));
        if (json_string_length(s) > 8192 || strlen(json_string_value(s)) != json_string_length(s))
            return bad(e, where, "%s.%s must be a string of at most 8192 bytes without NUL", where,
                       util_quote(q, sizeof q, k, 48));
    }
    *out = v;
    return 0;
}

static int fingerprint_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]))
            return 0;
    return 1;
}

static int status_of(json_t *obj, const char *where, const char **out, struct alerts_parse_error *e)
{
    json_t *v = json_object_get(obj, "status");
    if (!v)
        return bad(e, where, "%s is required: firing or resolved", where);
    if (!json_is_string(v) || (strcmp(json_string_value(v), "firing") != 0 &&
                               strcmp(json_string_value(v), "resolved") != 0)) {
        char q[UTIL_QUOTE_SIZE(32)];
        return bad(e, where, "%s must be firing or resolved, not %s", where,
                   json_is_string(v) ? util_quote(q, sizeof q, json_string_value(v), 32)
                                     : "a non-string");
    }
    *out = json_string_value(v);
    return 0;
}

static int parse_alert(json_t *v, size_t i, struct alerts_alert *a, struct alerts_parse_error *e)
{
    char where[64], w[96];
    snprintf(where, sizeof where, "alerts[%zu]", i);
    if (!json_is_object(v))
        return bad(e, where, "%s must be an object", where);
    const char *st;
    snprintf(w, sizeof w, "%s.status", where);
    if (status_of(v, w, &st, e) < 0)
        return -1;
    a->firing = strcmp(st, "firing") == 0;
    snprintf(w, sizeof w, "%s.labels", where);
    if (string_map(v, "labels", w, 1, &a->labels, e) < 0)
        return -1;
    snprintf(w, sizeof w, "%s.annotations", where);
    if (string_map(v, "annotations", w, 0, &a->annotations, e) < 0)
        return -1;
    snprintf(w, sizeof w, "%s.startsAt", where);
    json_t *sa = json_object_get(v, "startsAt");
    if (!json_is_string(sa) || !alerts_valid_time(json_string_value(sa)))
        return bad(e, w, "%s is required: an RFC 3339 time such as 2026-12-03T11:30:00Z", w);
    a->starts_at = json_string_value(sa);
    snprintf(w, sizeof w, "%s.endsAt", where);
    if (opt_string(v, "endsAt", w, 40, &a->ends_at, e) < 0)
        return -1;
    if (a->ends_at[0] && !alerts_valid_time(a->ends_at))
        return bad(e, w, "%s must be an RFC 3339 time such as 2026-12-03T11:30:00Z", w);
    snprintf(w, sizeof w, "%s.generatorURL", where);
    if (opt_string(v, "generatorURL", w, 4096, &a->generator_url, e) < 0)
        return -1;
    snprintf(w, sizeof w, "%s.fingerprint", where);
    json_t *fp = json_object_get(v, "fingerprint");
    if (!json_is_string(fp) || !fingerprint_ok(json_string_value(fp)))
        return bad(e, w,
                   "%s is required: 1-64 letters and digits (Alertmanager's hash of the"
                   " labels)",
                   w);
    a->fingerprint = json_string_value(fp);
    json_t *an = json_object_get(a->labels, "alertname");
    a->alertname = json_is_string(an) ? json_string_value(an) : "";
    return 0;
}

int alerts_parse(json_t *body, struct alerts_message *m, struct alerts_parse_error *e)
{
    memset(m, 0, sizeof *m);
    memset(e, 0, sizeof *e);
    if (!json_is_object(body))
        return bad(e, "", "the body must be Alertmanager's webhook message, a JSON object");
    json_t *ver = json_object_get(body, "version");
    if (!ver)
        return bad(e, "version",
                   "version is required: this receiver takes Alertmanager's"
                   " webhook message version \"4\"");
    if (!json_is_string(ver))
        return bad(e, "version",
                   "version must be a string, not a %s: Alertmanager's webhook"
                   " message version \"4\"",
                   json_is_integer(ver) ? "number" : "non-string");
    if (strcmp(json_string_value(ver), "4") != 0) {
        char q[UTIL_QUOTE_SIZE(16)];
        return bad(e, "version",
                   "version '%s' is not supported: this receiver takes Alertmanager's webhook"
                   " message version \"4\"",
                   util_quote(q, sizeof q, json_string_value(ver), 16));
    }
    if (status_of(body, "status", &m->status, e) < 0 ||
        opt_string(body, "receiver", "receiver", 1024, &m->receiver, e) < 0 ||
        opt_string(body, "groupKey", "groupKey", 8192, &m->group_key, e) < 0 ||
        opt_string(body, "externalURL", "externalURL", 4096, &m->external_url, e) < 0)
        return -1;
    json_t *tr = json_object_get(body, "truncatedAlerts");
    if (tr && !json_is_null(tr)) {
        if (!json_is_integer(tr) || json_integer_value(tr) < 0)
            return bad(e, "truncatedAlerts", "truncatedAlerts must be an integer >= 0");
        m->truncated_alerts = json_integer_value(tr);
    }
    json_t *map;
    if (string_map(body, "groupLabels", "groupLabels", 0, &map, e) < 0 ||
        string_map(body, "commonLabels", "commonLabels", 0, &map, e) < 0 ||
        string_map(body, "commonAnnotations", "commonAnnotations", 0, &map, e) < 0)
        return -1;
    json_t *list = json_object_get(body, "alerts");
    if (!json_is_array(list))
        return bad(e, "alerts", "alerts is required: an array of alerts");
    if (json_array_size(list) > ALERTS_MAX)
        return bad(e, "alerts", "alerts holds %zu alerts; at most %d in one notification",
                   json_array_size(list), ALERTS_MAX);
    m->n = json_array_size(list);
    m->alerts = calloc(m->n ? m->n : 1, sizeof *m->alerts);
    if (!m->alerts)
        return bad(e, "alerts", "out of memory");
    for (size_t i = 0; i < m->n; i++) {
        if (parse_alert(json_array_get(list, i), i, &m->alerts[i], e) < 0) {
            alerts_message_free(m);
            return -1;
        }
    }
    return 0;
}

void alerts_message_free(struct alerts_message *m)
{
    free(m->alerts);
    m->alerts = NULL;
    m->n = 0;
}

/* ------------------------------------------------------------------ targets */

static int flag_target(struct app *app, const char *env, const char *value, const char *actor,
                       const char *reason, int *changed, struct llmops_error *err);

struct target {
    char label[64], action[64];
    alerts_target_fn fn;
};

/* [0] is the built-in flag target; the rest are registered. */
static struct target targets[ALERTS_TARGETS_MAX] = {
    {ALERTS_CATEGORY_LABEL, "flag_rollback", flag_target}};
static int ntargets = 1;

static int name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 63 || !islower((unsigned char)s[0]))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!islower((unsigned char)s[i]) && !isdigit((unsigned char)s[i]) && s[i] != '_')
            return 0;
    return 1;
}

int alerts_register_target(const char *label, const char *action, alerts_target_fn fn)
{
    if (!fn || !name_ok(label) || !name_ok(action) || strcmp(label, ALERTS_ENV_LABEL) == 0)
        return -1;
    for (int i = 0; i < ntargets; i++)
        if (strcmp(targets[i].label, label) == 0) {
            snprintf(targets[i].action, sizeof targets[i].action, "%s", action);
            targets[i].fn = fn;
            return 0;
        }
    if (ntargets >= ALERTS_TARGETS_MAX)
        return -1;
    snprintf(targets[ntargets].label, sizeof targets[ntargets].label, "%s", label);
    snprintf(targets[ntargets].action, sizeof targets[ntargets].action, "%s", action);
    targets[ntargets].fn = fn;
    ntargets++;
    return 0;
}

void alerts_reset_targets(void)
{
    memset(&targets[1], 0, sizeof targets - sizeof targets[0]);
    snprintf(targets[0].action, sizeof targets[0].action, "flag_rollback");
    targets[0].fn = flag_target;
    ntargets = 1;
}

static const char *label(const struct alerts_alert *a, const char *name)
{
    json_t *v = json_object_get(a->labels, name);
    return json_is_string(v) && json_string_length(v) > 0 ? json_string_value(v) : NULL;
}

/* Labels the platform defines whose target another part of the core registers: an alert
 * naming one while nothing is registered fails, saying so, rather than being ignored. */
static const struct {
    const char *label, *action;
} reserved[] = {{ALERTS_DEPLOYMENT_LABEL, "deployment_rollback"}};

static int registered(const char *name)
{
    for (int i = 0; i < ntargets; i++)
        if (strcmp(targets[i].label, name) == 0)
            return 1;
    return 0;
}

static int plan_one(const struct alerts_alert *a, const char *env, const char *lbl,
                    const char *action, alerts_target_fn fn, struct alerts_action *out,
                    int *missing_env)
{
    const char *v = label(a, lbl);
    if (!v)
        return 0;
    if (!env) {
        *missing_env = 1;
        return 0;
    }
    out->label = lbl;
    out->action = action;
    out->fn = fn;
    out->env = env;
    out->value = v;
    return 1;
}

int alerts_plan(const struct alerts_alert *a, struct alerts_action *out, int max, int *missing_env)
{
    int n = 0;
    *missing_env = 0;
    const char *env = label(a, ALERTS_ENV_LABEL);
    for (int i = 0; i < ntargets && n < max; i++)
        n += plan_one(a, env, targets[i].label, targets[i].action, targets[i].fn, &out[n],
                      missing_env);
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0] && n < max; i++)
        if (!registered(reserved[i].label))
            n +=
                plan_one(a, env, reserved[i].label, reserved[i].action, NULL, &out[n], missing_env);
    return n;
}

/* Cuts s at size-1 bytes or less, never inside a UTF-8 sequence. */
static void cut_utf8(char *s, size_t size)
{
    size_t n = strlen(s);
    if (n < size)
        return;
    n = size - 1;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    s[n] = '\0';
}

void alerts_actor(const struct alerts_alert *a, char *out, size_t size)
{
    char buf[600];
    snprintf(buf, sizeof buf, "alertmanager:%s", a->alertname[0] ? a->alertname : a->fingerprint);
    cut_utf8(buf, size < sizeof buf ? size : sizeof buf);
    snprintf(out, size, "%s", buf);
}

void alerts_reason(const struct alerts_alert *a, char *out, size_t size)
{
    const char *text = NULL;
    static const char *const keys[] = {"summary", "description", "message", NULL};
    for (const char *const *k = keys; *k && !text; k++) {
        json_t *v = json_object_get(a->annotations, *k);
        if (json_is_string(v) && json_string_length(v) > 0)
            text = json_string_value(v);
    }
    char *buf = malloc(size + 8192 + 256);
    if (!buf) {
        snprintf(out, size, "Alertmanager alert %s", a->fingerprint);
        return;
    }
    snprintf(buf, size + 8192 + 256, "Alertmanager alert %s (fingerprint %s, firing since %s)%s%s",
             a->alertname[0] ? a->alertname : "(no alertname)", a->fingerprint, a->starts_at,
             text ? ": " : "", text ? text : "");
    cut_utf8(buf, size);
    snprintf(out, size, "%s", buf);
    free(buf);
}

/* ------------------------------------------------------------------ the flag target */

struct alert_rollback {
    const char *env;
    int category;
    int no_fallback;
};

static int plan_alert_rollback(const struct flag *before, struct flag *after, void *ud, char *msg,
                               size_t msgsize)
{
    struct alert_rollback *ar = ud;
    ar->no_fallback = !before->fallback[0];
    return flags_plan_rollback(before, ar->env, ar->category, after, msg, msgsize);
}

static int fail(struct llmops_error *err, enum llmops_status code, int retryable, const char *fmt,
                ...) __attribute__((format(printf, 4, 5)));
static int fail(struct llmops_error *err, enum llmops_status code, int retryable, const char *fmt,
                ...)
{
    err->code = code;
    err->retryable = retryable;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return -1;
}

static int flag_target(struct app *app, const char *env, const char *value, const char *actor,
                       const char *reason, int *changed, struct llmops_error *err)
{
    *changed = 0;
    char q[UTIL_QUOTE_SIZE(64)];
    int ei = conf_env_index(app->conf, env);
    if (ei < 0) {
        char list[600];
        conf_env_list(app->conf, list, sizeof list);
        return fail(err, LLMOPS_ERR_INVALID, 0,
                    "unknown environment '%s' in label llmops_env;"
                    " valid: %s",
                    util_quote(q, sizeof q, env, 64), list);
    }
    int category = category_from_string(value);
    if (category < 0)
        return fail(err, LLMOPS_ERR_INVALID, 0,
                    "unknown category '%s' in label llmops_category;"
                    " valid: %s",
                    util_quote(q, sizeof q, value, 64), category_list());
    struct alert_rollback ar = {app->conf->envs[ei], category, 0};
    struct flag_change ch = {.actor = actor,
                             .action = "rollback",
                             .reason = reason,
                             .plan = plan_alert_rollback,
                             .ud = &ar};
    struct db_error dberr;
    json_t *audit = flags_change(&app->db, app->conf, ar.env, category, &ch, &dberr);
    if (!audit) {
        if (dberr.status != DB_OK)
            return fail(err, LLMOPS_ERR_UNAVAILABLE, 1, "the flag could not be changed: %s",
                        dberr.message);
        if (ar.no_fallback)
            return fail(err, LLMOPS_ERR_CONFLICT, 0, "%s", ch.refusal);
        snprintf(err->message, sizeof err->message, "%s", ch.refusal);
        return 0; /* already on the fallback: nothing to do */
    }
    json_decref(audit);
    app_changed(app, METRICS_CHANGE_FLAGS);
    char labels[160];
    snprintf(labels, sizeof labels, "environment=\"%s\",category=\"%s\"", ar.env,
             category_name(category));
    metrics_add("llmops_flag_fallbacks_total", labels, 1);
    snprintf(err->message, sizeof err->message, "%s of %s now served by %s",
             category_name(category), ar.env, ch.after.active);
    *changed = 1;
    return 0;
}

const char *alerts_run(struct app *app, const struct alerts_action *act, const char *actor,
                       const char *reason, char *message, size_t msgsize)
{
    struct llmops_error err;
    memset(&err, 0, sizeof err);
    err.size = sizeof err;
    int changed = 0;
    if (!act->fn) {
        snprintf(message, msgsize,
                 "nothing in this llm-opsd handles the label %s (the serving core registers it"
                 " when it runs)",
                 act->label);
        return "failed";
    }
    int rc = act->fn(app, act->env, act->value, actor, reason, &changed, &err);
    if (rc == 0) {
        if (err.message[0])
            snprintf(message, msgsize, "%s", err.message);
        else
            snprintf(message, msgsize, "%s", changed ? "rolled back" : "nothing to roll back");
        return changed ? "done" : "noop";
    }
    snprintf(message, msgsize, "%s", err.message[0] ? err.message : "the action failed");
    if (err.retryable || err.code == LLMOPS_ERR_UNAVAILABLE || err.code == LLMOPS_ERR_INTERNAL)
        return "error";
    return "failed";
}
