/* Alertmanager's webhook message (core/alerts.c): the parser, the target table, the actor and
 * reason written to the audit. */
#include "alerts.h"
#include "check_suites.h"
#include "http.h"

#include <jansson.h>
#include <string.h>

#define GOOD_ALERT                                                                                 \
    "{\"status\":\"firing\",\"labels\":{\"alertname\":\"HighErrors\",\"llmops_env\":\"dev\","      \
    "\"llmops_deployment\":\"chat\"},\"annotations\":{\"summary\":\"5xx above 5 %\"},"             \
    "\"startsAt\":\"2026-12-03T11:30:00.123456789Z\",\"endsAt\":\"0001-01-01T00:00:00Z\","         \
    "\"generatorURL\":\"http://prom/graph\",\"fingerprint\":\"9f09a82baea5e020\"}"

/* As Alertmanager 0.25 sends it (notify/webhook Message), plus a member it does not know. */
static const char *good =
    "{\"receiver\":\"llmops\",\"status\":\"firing\",\"alerts\":[" GOOD_ALERT
    "],\"groupLabels\":{\"alertname\":\"HighErrors\"},\"commonLabels\":{\"alertname\":"
    "\"HighErrors\"},\"commonAnnotations\":{},\"externalURL\":\"http://am:9093\","
    "\"version\":\"4\",\"groupKey\":\"{}:{alertname=\\\"HighErrors\\\"}\","
    "\"truncatedAlerts\":0,\"futureMember\":[1]}";

START_TEST(test_parse_good)
{
    json_t *body = json_loads(good, 0, NULL);
    ck_assert_ptr_nonnull(body);
    struct alerts_message m;
    struct alerts_parse_error e;
    ck_assert_int_eq(alerts_parse(body, &m, &e), 0);
    ck_assert_uint_eq(m.n, 1);
    ck_assert_str_eq(m.receiver, "llmops");
    ck_assert_str_eq(m.status, "firing");
    ck_assert(m.alerts[0].firing);
    ck_assert_str_eq(m.alerts[0].fingerprint, "9f09a82baea5e020");
    ck_assert_str_eq(m.alerts[0].alertname, "HighErrors");
    ck_assert_str_eq(m.alerts[0].starts_at, "2026-12-03T11:30:00.123456789Z");
    ck_assert_str_eq(m.alerts[0].ends_at, "0001-01-01T00:00:00Z");
    alerts_message_free(&m);
    json_decref(body);
}
END_TEST

/* Each bad message is refused naming the member and where it is. */
static const struct {
    const char *body, *field, *says;
} bad_cases[] = {
    {"[]", "", "JSON object"},
    {"{\"status\":\"firing\",\"alerts\":[]}", "version", "version \"4\""},
    {"{\"version\":\"3\",\"status\":\"firing\",\"alerts\":[]}", "version", "'3' is not supported"},
    {"{\"version\":4,\"status\":\"firing\",\"alerts\":[]}", "version",
     "must be a string, not a number"},
    {"{\"version\":\"4\",\"status\":\"burning\",\"alerts\":[]}", "status", "firing or resolved"},
    {"{\"version\":\"4\",\"status\":\"firing\"}", "alerts", "array"},
    {"{\"version\":\"4\",\"status\":\"firing\",\"alerts\":{}}", "alerts", "array"},
    {"{\"version\":\"4\",\"status\":\"firing\",\"truncatedAlerts\":-1,\"alerts\":[]}",
     "truncatedAlerts", ">= 0"},
    {"{\"version\":\"4\",\"status\":\"firing\",\"receiver\":7,\"alerts\":[]}", "receiver",
     "string"},
    {"{\"version\":\"4\",\"status\":\"firing\",\"commonLabels\":{\"a\":1},\"alerts\":[]}",
     "commonLabels", "commonLabels.a must be a string"},
    {"{\"version\":\"4\",\"status\":\"firing\",\"alerts\":[" GOOD_ALERT ",3]}", "alerts[1]",
     "alerts[1] must be an object"},
    {"{\"version\":\"4\",\"status\":\"firing\",\"alerts\":[{\"status\":\"firing\","
     "\"startsAt\":\"2026-12-03T11:30:00Z\",\"fingerprint\":\"ab\"}]}",
     "alerts[0].labels", "alerts[0].labels is required"},
    {"{\"version\":\"4\",\"status\":\"firing\",\"alerts\":[{\"status\":\"firing\",\"labels\":{},"
     "\"startsAt\":\"yesterday\",\"fingerprint\":\"ab\"}]}",
     "alerts[0].startsAt", "RFC 3339"},
    {"{\"version\":\"4\",\"status\":\"firing\",\"alerts\":[{\"status\":\"firing\",\"labels\":{},"
     "\"startsAt\":\"2026-12-03T11:30:00Z\",\"endsAt\":\"soon\",\"fingerprint\":\"ab\"}]}",
     "alerts[0].endsAt", "RFC 3339"},
    {"{\"version\":\"4\",\"status\":\"firing\",\"alerts\":[{\"status\":\"firing\",\"labels\":{},"
     "\"startsAt\":\"2026-12-03T11:30:00Z\",\"fingerprint\":\"a/b\"}]}",
     "alerts[0].fingerprint", "letters and digits"},
    {"{\"version\":\"4\",\"status\":\"firing\",\"alerts\":[{\"status\":\"on\",\"labels\":{},"
     "\"startsAt\":\"2026-12-03T11:30:00Z\",\"fingerprint\":\"ab\"}]}",
     "alerts[0].status", "firing or resolved"},
    {"{\"version\":\"4\",\"status\":\"firing\",\"alerts\":[{\"status\":\"firing\",\"labels\":"
     "{\"x\":null},\"startsAt\":\"2026-12-03T11:30:00Z\",\"fingerprint\":\"ab\"}]}",
     "alerts[0].labels", "alerts[0].labels.x must be a string"},
};

START_TEST(test_parse_bad)
{
    json_t *body = json_loads(bad_cases[_i].body, JSON_DECODE_ANY, NULL);
    ck_assert_msg(body != NULL, "case %d is not JSON", _i);
    struct alerts_message m;
    struct alerts_parse_error e;
    ck_assert_int_eq(alerts_parse(body, &m, &e), -1);
    ck_assert_msg(strcmp(e.field, bad_cases[_i].field) == 0, "case %d: field '%s', wanted '%s'", _i,
                  e.field, bad_cases[_i].field);
    ck_assert_msg(strstr(e.message, bad_cases[_i].says) != NULL,
                  "case %d: message '%s' does not say '%s'", _i, e.message, bad_cases[_i].says);
    ck_assert_ptr_null(m.alerts);
    json_decref(body);
}
END_TEST

START_TEST(test_times)
{
    ck_assert(alerts_valid_time("2026-12-03T11:30:00Z"));
    ck_assert(alerts_valid_time("2026-12-03T11:30:00.5+02:00"));
    ck_assert(alerts_valid_time("0001-01-01T00:00:00Z"));
    ck_assert(!alerts_valid_time("2026-12-03 11:30:00Z"));
    ck_assert(!alerts_valid_time("2026-13-03T11:30:00Z"));
    ck_assert(!alerts_valid_time("2026-12-03T11:30:00"));
    ck_assert(!alerts_valid_time("2026-12-03T11:30:00.Z"));
    ck_assert(!alerts_valid_time("2026-12-03T11:30:00.1234567890Z"));
    ck_assert(!alerts_valid_time("2026-12-03T11:30:00+2:00"));
    ck_assert(!alerts_valid_time("2026-12-03T11:30:00Zjunk"));
}
END_TEST

/* A target registered as the serving core will register serving_rollback_by_name. */
static struct {
    int calls;
    char env[32], name[64], actor[64], reason[600];
    int rc, changed;
    enum llmops_status code;
} seen;

static int test_target(struct app *app, const char *env, const char *value, const char *actor,
                       const char *reason, int *changed, struct llmops_error *err)
{
    (void)app;
    seen.calls++;
    snprintf(seen.env, sizeof seen.env, "%s", env);
    snprintf(seen.name, sizeof seen.name, "%s", value);
    snprintf(seen.actor, sizeof seen.actor, "%s", actor);
    snprintf(seen.reason, sizeof seen.reason, "%s", reason);
    *changed = seen.changed;
    if (seen.rc < 0) {
        err->code = seen.code;
        snprintf(err->message, sizeof err->message, "deployment '%s' not there", value);
    }
    return seen.rc;
}

static struct alerts_message parse_good(json_t **body)
{
    *body = json_loads(good, 0, NULL);
    struct alerts_message m;
    struct alerts_parse_error e;
    ck_assert_int_eq(alerts_parse(*body, &m, &e), 0);
    return m;
}

START_TEST(test_registered_target)
{
    json_t *body;
    struct alerts_message m = parse_good(&body);
    struct alerts_action acts[ALERTS_TARGETS_MAX];
    int missing;
    char actor[64], reason[501], msg[600];
    /* before the serving core registers: the deployment label fails, saying why */
    alerts_reset_targets();
    ck_assert_int_eq(alerts_plan(&m.alerts[0], acts, ALERTS_TARGETS_MAX, &missing), 1);
    ck_assert_int_eq(missing, 0);
    ck_assert_ptr_null(acts[0].fn);
    ck_assert_str_eq(alerts_run(NULL, &acts[0], "a", "r", msg, sizeof msg), "failed");
    ck_assert_ptr_nonnull(strstr(msg, "llmops_deployment"));

    ck_assert_int_eq(
        alerts_register_target("llmops_deployment", "deployment_rollback", test_target), 0);
    ck_assert_int_eq(alerts_register_target("llmops_env", "x", test_target), -1);
    ck_assert_int_eq(alerts_register_target("Bad-Label", "x", test_target), -1);
    ck_assert_int_eq(alerts_register_target("llmops_x", "x", NULL), -1);
    ck_assert_int_eq(alerts_plan(&m.alerts[0], acts, ALERTS_TARGETS_MAX, &missing), 1);
    ck_assert_str_eq(acts[0].action, "deployment_rollback");
    ck_assert_str_eq(acts[0].env, "dev");
    ck_assert_str_eq(acts[0].value, "chat");

    alerts_actor(&m.alerts[0], actor, sizeof actor);
    alerts_reason(&m.alerts[0], reason, sizeof reason);
    ck_assert_str_eq(actor, "alertmanager:HighErrors");
    ck_assert_ptr_nonnull(strstr(reason, "HighErrors"));
    ck_assert_ptr_nonnull(strstr(reason, "9f09a82baea5e020"));
    ck_assert_ptr_nonnull(strstr(reason, "5xx above 5 %"));

    memset(&seen, 0, sizeof seen);
    seen.changed = 1;
    ck_assert_str_eq(alerts_run(NULL, &acts[0], actor, reason, msg, sizeof msg), "done");
    ck_assert_int_eq(seen.calls, 1);
    ck_assert_str_eq(seen.env, "dev");
    ck_assert_str_eq(seen.name, "chat");
    ck_assert_str_eq(seen.actor, "alertmanager:HighErrors");
    ck_assert_str_eq(seen.reason, reason);
    seen.changed = 0; /* nothing to roll back: not an error */
    ck_assert_str_eq(alerts_run(NULL, &acts[0], actor, reason, msg, sizeof msg), "noop");
    seen.rc = -1;
    seen.code = LLMOPS_ERR_NOT_FOUND;
    ck_assert_str_eq(alerts_run(NULL, &acts[0], actor, reason, msg, sizeof msg), "failed");
    ck_assert_str_eq(msg, "deployment 'chat' not there");
    seen.code = LLMOPS_ERR_UNAVAILABLE; /* tried again on Alertmanager's next repeat */
    ck_assert_str_eq(alerts_run(NULL, &acts[0], actor, reason, msg, sizeof msg), "error");

    /* registered again: replaced, not added */
    ck_assert_int_eq(alerts_register_target("llmops_deployment", "canary_rollback", test_target),
                     0);
    ck_assert_int_eq(alerts_plan(&m.alerts[0], acts, ALERTS_TARGETS_MAX, &missing), 1);
    ck_assert_str_eq(acts[0].action, "canary_rollback");

    /* the built-in flag target and the registered one, both named by one alert */
    json_object_set_new(m.alerts[0].labels, "llmops_category", json_string("serving"));
    ck_assert_int_eq(alerts_plan(&m.alerts[0], acts, ALERTS_TARGETS_MAX, &missing), 2);
    ck_assert_str_eq(acts[0].action, "flag_rollback");
    ck_assert_str_eq(acts[0].value, "serving");
    /* a target without llmops_env: nothing planned, and said so */
    json_object_del(m.alerts[0].labels, "llmops_env");
    ck_assert_int_eq(alerts_plan(&m.alerts[0], acts, ALERTS_TARGETS_MAX, &missing), 0);
    ck_assert_int_eq(missing, 1);
    alerts_reset_targets();
    alerts_message_free(&m);
    json_decref(body);
}
END_TEST

/* The actor fits flag_audit's 64 bytes and the reason FLAGS_REASON_MAX, both cut on a UTF-8
 * boundary (jansson and PostgreSQL refuse a broken sequence). */
START_TEST(test_cut_utf8)
{
    json_t *body;
    struct alerts_message m = parse_good(&body);
    char name[200] = "";
    for (int i = 0; i < 40; i++)
        strcat(name, "\xc3\xa9"); /* é: 2 bytes each */
    json_object_set_new(m.alerts[0].labels, "alertname", json_string(name));
    m.alerts[0].alertname = json_string_value(json_object_get(m.alerts[0].labels, "alertname"));
    char actor[64];
    alerts_actor(&m.alerts[0], actor, sizeof actor);
    /* "alertmanager:" is 13 bytes; 63 - 13 = 50 = 25 whole é */
    ck_assert_uint_eq(strlen(actor), 13 + 50);
    json_t *s = json_string(actor);
    ck_assert_ptr_nonnull(s);
    json_decref(s);
    alerts_actor(&m.alerts[0], actor, 16); /* 15 bytes: one whole é */
    ck_assert_str_eq(actor, "alertmanager:\xc3\xa9");
    alerts_actor(&m.alerts[0], actor, 15); /* 14 bytes: no room for the é, cut whole */
    ck_assert_str_eq(actor, "alertmanager:");
    char big[6001] = "";
    for (int i = 0; i < 2000; i++)
        strcat(big, "\xe2\x82\xac"); /* a 3-byte sequence: most cuts land inside one */
    json_t *ann = json_object();
    json_object_set_new(ann, "summary", json_string(big));
    m.alerts[0].annotations = ann;
    char reason[501];
    alerts_reason(&m.alerts[0], reason, sizeof reason);
    ck_assert_uint_le(strlen(reason), 500);
    ck_assert_uint_ge(strlen(reason), 498);
    s = json_string(reason);
    ck_assert_ptr_nonnull(s);
    json_decref(s);
    for (size_t cut = 480; cut < 500; cut++) { /* every cut position */
        alerts_reason(&m.alerts[0], reason, cut);
        s = json_string(reason);
        ck_assert_msg(s != NULL, "reason cut at %zu is not UTF-8", cut);
        json_decref(s);
    }
    json_decref(ann);
    alerts_message_free(&m);
    json_decref(body);
}
END_TEST

START_TEST(test_roles)
{
    enum role r;
    ck_assert_int_eq(role_from_string("alerts", &r), 0);
    ck_assert_int_eq(r, ROLE_ALERTS);
    ck_assert_str_eq(role_name(ROLE_ALERTS), "alerts");
    ck_assert_int_eq(role_from_string("public", &r), -1);
}
END_TEST

Suite *make_alerts_suite(void)
{
    Suite *s = suite_create("alerts");
    TCase *core = tcase_create("Core");
    tcase_add_test(core, test_parse_good);
    tcase_add_loop_test(core, test_parse_bad, 0, (int)(sizeof bad_cases / sizeof bad_cases[0]));
    tcase_add_test(core, test_times);
    tcase_add_test(core, test_registered_target);
    tcase_add_test(core, test_roles);
    suite_add_tcase(s, core);
    TCase *limits = tcase_create("Limits");
    tcase_add_test(limits, test_cut_utf8);
    suite_add_tcase(s, limits);
    return s;
}
