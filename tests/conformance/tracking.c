/* The experiment_tracking suite: what llmops-tracking.h promises, checked against any module
 * of the category (tracking-pg on a private PostgreSQL, mlflow on its fake). It asserts
 * only the interface, never a module's internals: names and idempotency keys carry a random
 * suffix, because a tool (or a reused database) keeps what earlier runs made, and answers
 * may hold more than was asked for (tags the tool sets itself). */
#include "conformance.h"
#include "llmops-tracking.h"
#include "tracking.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define IN conformance_instance
#define OPS ((const struct llmops_tracking_ops *)IN->mod->desc->ops)

static char sfx[13];      /* random hex, unique per run of the suite */
static long long base_ms; /* a start time in the recent past, whole seconds */

/* ------------------------------------------------------------------ calling */

/* Whether the instance has `name` (non-NULL in its ops, listed by capabilities). */
static int listed(const char *name)
{
    json_t *caps = NULL, *v;
    struct llmops_error err = {.size = sizeof err};
    if (IN->mod->desc->capabilities(IN->state, &caps, &err) != 0)
        return 0;
    size_t i;
    int found = 0;
    json_array_foreach(json_object_get(caps, "operations"), i, v)
    {
        found |= strcmp(json_string_value(v), name) == 0;
    }
    json_decref(caps);
    return found;
}
#define HAS(member) (LLMOPS_OPS_HAS(struct llmops_tracking_ops, OPS, member) && listed(#member))

/* Calls op with `in` (stolen). On success: 0, *out an object. On failure: -1 with err, and
 * the failure contract checked (out left NULL, a code, a message). */
static int call(const char *name, llmops_op_fn *fn, json_t *in, json_t **out,
                struct llmops_error *err)
{
    ck_assert_msg(in != NULL, "%s: the test built no input", name);
    ck_assert_msg(fn != NULL, "%s: the module lacks it", name);
    memset(err, 0, sizeof *err);
    err->size = sizeof *err;
    *out = NULL;
    /* as the core calls it: `in` checked against the operations table first (modules trust
     * that check), then the module */
    int rc = track_call(NULL, IN, name, in, out, err);
    json_decref(in);
    if (rc == 0) {
        ck_assert_msg(json_is_object(*out), "%s: success must answer an object", name);
        return 0;
    }
    ck_assert_msg(rc == -1, "%s returned %d (0 or -1)", name, rc);
    ck_assert_msg(*out == NULL, "%s: a failure must leave *out NULL", name);
    ck_assert_msg(err->code != LLMOPS_OK, "%s: a failure must set err->code", name);
    ck_assert_msg(err->message[0] != '\0', "%s: a failure must say why", name);
    return -1;
}
#define CALL(op, in, out, err) call(#op, OPS->op, (in), (out), (err))

/* Calls an op that must succeed; returns its answer. */
static json_t *ok_call(const char *name, llmops_op_fn *fn, json_t *in)
{
    json_t *out;
    struct llmops_error err;
    int rc = call(name, fn, in, &out, &err);
    ck_assert_msg(rc == 0, "%s failed: code %d: %s", name, err.code, err.message);
    return out;
}
#define OK(op, in) ok_call(#op, OPS->op, (in))

static const char *code_name(enum llmops_status c)
{
    static const char *const names[] = {"OK",          "INVALID", "NOT_FOUND",   "CONFLICT",
                                        "UNAVAILABLE", "TOOL",    "UNSUPPORTED", "INTERNAL"};
    return (unsigned)c < sizeof names / sizeof names[0] ? names[c] : "?";
}

/* Calls an op that must fail with `code` (not retryable: the request itself is wrong). */
static void fail_call(const char *name, llmops_op_fn *fn, json_t *in, enum llmops_status code)
{
    json_t *out;
    struct llmops_error err;
    int rc = call(name, fn, in, &out, &err);
    if (rc == 0) {
        char *s = json_dumps(out, JSON_COMPACT);
        json_decref(out);
        ck_abort_msg("%s succeeded (%.300s) where %s was expected", name, s, code_name(code));
    }
    ck_assert_msg(err.code == code, "%s failed with %s (%s) where %s was expected", name,
                  code_name(err.code), err.message, code_name(code));
    ck_assert_msg(!err.retryable, "%s: a %s failure is not retryable", name, code_name(code));
}
#define FAIL(op, in, code) fail_call(#op, OPS->op, (in), (code))

/* ------------------------------------------------------------------ names and shapes */

/* "conf-<suffix>-<label>": a name no earlier run made. */
static const char *uname(char *buf, size_t size, const char *label)
{
    snprintf(buf, size, "conf-%s-%s", sfx, label);
    return buf;
}

/* An idempotency key of the documented shape. */
static const char *ukey(char *buf, size_t size, const char *label)
{
    snprintf(buf, size, "k%s-%s", sfx, label);
    return buf;
}

static int all_of(const char *s, const char *set)
{
    return s && *s && strspn(s, set) == strlen(s);
}

static const char *str(json_t *obj, const char *member)
{
    return json_string_value(json_object_get(obj, member));
}

/* A string member that must be there. */
static const char *need(json_t *obj, const char *member)
{
    const char *s = str(obj, member);
    ck_assert_msg(s != NULL, "answer lacks string member '%s'", member);
    return s;
}

static void check_tags(json_t *obj)
{
    json_t *tags = json_object_get(obj, "tags"), *v;
    const char *k;
    ck_assert_msg(json_is_object(tags), "tags must be an object");
    ck_assert_msg(!json_object_get(tags, LLMOPS_TRACKING_KEY_TAG),
                  "answers never show the idempotency tag");
    json_object_foreach(tags, k, v)
    {
        ck_assert_msg(json_is_string(v), "tag %s is not a string", k);
    }
}

/* Whether every tag of `want` is in obj's tags with the same value. */
static void check_has_tags(json_t *obj, json_t *want)
{
    const char *k;
    json_t *v;
    json_object_foreach(want, k, v)
    {
        const char *got = str(json_object_get(obj, "tags"), k);
        ck_assert_msg(got && strcmp(got, json_string_value(v)) == 0, "tag %s: '%s', not '%s'", k,
                      got ? got : "(absent)", json_string_value(v));
    }
}

static void check_experiment(json_t *e, const char *name, const char *lifecycle)
{
    const char *id = need(e, "external_id");
    ck_assert_msg(all_of(id, "0123456789"), "experiment id '%s' is not a decimal string", id);
    ck_assert_str_eq(need(e, "name"), name);
    ck_assert_str_eq(need(e, "lifecycle"), lifecycle);
    check_tags(e);
}

static const char *const statuses[] = {"RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"};

static void check_metric(json_t *m)
{
    ck_assert(json_is_object(m));
    need(m, "key");
    json_t *v = json_object_get(m, "value");
    const char *s = json_string_value(v);
    ck_assert_msg(json_is_number(v) || (s && (strcmp(s, "NaN") == 0 || strcmp(s, "Infinity") == 0 ||
                                              strcmp(s, "-Infinity") == 0)),
                  "a metric value is a number or NaN/Infinity/-Infinity");
    ck_assert(json_is_integer(json_object_get(m, "timestamp_ms")));
    json_t *step = json_object_get(m, "step");
    ck_assert(!step || json_is_integer(step));
}

/* RunInfo; a full Run too when `full`. */
static void check_run(json_t *r, const char *experiment_id, const char *lifecycle, int full)
{
    const char *id = need(r, "external_id");
    ck_assert_msg(strlen(id) == 32 && all_of(id, "0123456789abcdef"),
                  "run id '%s' is not 32 lowercase hex", id);
    ck_assert_str_eq(need(r, "experiment_id"), experiment_id);
    ck_assert_msg(strlen(need(r, "name")) > 0, "a run always has a name");
    const char *st = need(r, "status");
    int known = 0;
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++)
        known |= strcmp(st, statuses[i]) == 0;
    ck_assert_msg(known, "unknown status %s", st);
    ck_assert_str_eq(need(r, "lifecycle"), lifecycle);
    ck_assert(json_is_integer(json_object_get(r, "start_time_ms")));
    json_t *end = json_object_get(r, "end_time_ms");
    ck_assert(!end || json_is_integer(end));
    if (!full)
        return;
    ck_assert_msg(json_is_object(json_object_get(r, "params")), "a Run has params");
    check_tags(r);
    json_t *metrics = json_object_get(r, "metrics"), *m;
    ck_assert_msg(json_is_array(metrics), "a Run has metrics");
    size_t i;
    json_array_foreach(metrics, i, m) check_metric(m);
}

/* The latest point of `key` in a Run's metrics, or NULL. */
static json_t *latest(json_t *run, const char *key)
{
    json_t *m;
    size_t i;
    json_array_foreach(json_object_get(run, "metrics"), i, m)
    {
        if (strcmp(str(m, "key"), key) == 0)
            return m;
    }
    return NULL;
}

/* A value compares equal to what was written: a number exactly, or the same string. */
static void check_value(json_t *got, json_t *want)
{
    if (json_is_string(want)) {
        ck_assert_msg(json_is_string(got), "value %s came back as a number",
                      json_string_value(want));
        ck_assert_str_eq(json_string_value(got), json_string_value(want));
    } else {
        ck_assert_msg(json_is_number(got), "value %.17g came back as a string '%s'",
                      json_number_value(want), json_string_value(got));
        ck_assert_msg(json_number_value(got) == json_number_value(want),
                      "value %.17g came back as %.17g", json_number_value(want),
                      json_number_value(got));
    }
}

/* ------------------------------------------------------------------ building objects */

static json_t *new_experiment(const char *label, const char *key_label, json_t *tags)
{
    char name[128], key[80];
    json_t *in = json_pack("{s:s,s:s}", "idempotency_key", ukey(key, sizeof key, key_label), "name",
                           uname(name, sizeof name, label));
    if (tags)
        json_object_set_new(in, "tags", tags);
    json_t *e = OK(create_experiment, in);
    ck_assert_msg(json_is_true(json_object_get(e, "created")), "a new experiment: created true");
    return e;
}

/* A new experiment's id (copied into buf). */
static const char *experiment_id(const char *label, char *buf, size_t size)
{
    char key[64];
    snprintf(key, sizeof key, "e-%s", label);
    json_t *e = new_experiment(label, key, NULL);
    snprintf(buf, size, "%s", need(e, "external_id"));
    json_decref(e);
    return buf;
}

static json_t *new_run(const char *experiment, const char *key_label, const char *name,
                       long long start_ms)
{
    char key[80];
    json_t *in = json_pack("{s:s,s:s,s:I}", "idempotency_key", ukey(key, sizeof key, key_label),
                           "experiment_id", experiment, "start_time_ms", (json_int_t)start_ms);
    if (name)
        json_object_set_new(in, "name", json_string(name));
    json_t *r = OK(create_run, in);
    ck_assert_msg(json_is_true(json_object_get(r, "created")), "a new run: created true");
    return r;
}

static void run_id(json_t *run, char *buf, size_t size)
{
    snprintf(buf, size, "%s", need(run, "external_id"));
    json_decref(run);
}

/* A run id that no tool made (the shape is right, the digits random). */
static void unknown_run_id(char out[33])
{
    snprintf(out, 33, "%s%s%s0000000", "f0e1d2c3b4a5", sfx, "9");
}

static json_t *get_run(const char *id)
{
    return OK(get_run, json_pack("{s:s}", "external_id", id));
}

static void log_batch(const char *run, json_t *metrics, json_t *params, json_t *tags)
{
    json_t *in = json_pack("{s:s}", "external_id", run);
    if (metrics)
        json_object_set_new(in, "metrics", metrics);
    if (params)
        json_object_set_new(in, "params", params);
    if (tags)
        json_object_set_new(in, "tags", tags);
    json_decref(OK(log_batch, in));
}

static json_t *point(const char *key, json_t *value, long long ts, long long step)
{
    return json_pack("{s:s,s:o,s:I,s:I}", "key", key, "value", value, "timestamp_ms",
                     (json_int_t)ts, "step", (json_int_t)step);
}

/* Every point of key, read in pages of page_size, with checks on the pages. */
static json_t *history(const char *run, const char *key, int page_size)
{
    json_t *all = json_array();
    char token[2100] = "";
    for (int pages = 0;; pages++) {
        ck_assert_msg(pages < 2000, "history paging does not end");
        json_t *in =
            json_pack("{s:s,s:s,s:i}", "external_id", run, "key", key, "max_results", page_size);
        if (token[0])
            json_object_set_new(in, "page_token", json_string(token));
        json_t *out = OK(get_metric_history, in), *m;
        json_t *list = json_object_get(out, "metrics");
        ck_assert_msg(json_is_array(list), "history answers metrics: [...]");
        ck_assert_msg(json_array_size(list) <= (size_t)page_size,
                      "a page holds at most max_results points");
        size_t i;
        json_array_foreach(list, i, m)
        {
            check_metric(m);
            ck_assert_str_eq(str(m, "key"), key);
            json_array_append(all, m);
        }
        const char *next = str(out, "next_page_token");
        if (next) {
            ck_assert_msg(strlen(next) <= 2048, "a token is at most 2048 bytes");
            snprintf(token, sizeof token, "%s", next);
        }
        json_decref(out);
        if (!next)
            return all;
    }
}

/* ------------------------------------------------------------------ experiments */

START_TEST(test_experiment_create_get_find)
{
    char name[128], key[80];
    uname(name, sizeof name, "basic");
    json_t *tags = json_pack("{s:s,s:s}", "team", "vision", "note", "caf\xc3\xa9 \"quoted\"");
    json_t *e = new_experiment("basic", "basic", json_incref(tags));
    check_experiment(e, name, "active");
    check_has_tags(e, tags);
    const char *id = need(e, "external_id");

    json_t *got = OK(get_experiment, json_pack("{s:s}", "external_id", id));
    check_experiment(got, name, "active");
    ck_assert_str_eq(need(got, "external_id"), id);
    check_has_tags(got, tags);
    json_decref(got);

    /* the same create again (an answer lost on the way): the same experiment, not created */
    json_t *again = OK(create_experiment,
                       json_pack("{s:s,s:s,s:O}", "idempotency_key", ukey(key, sizeof key, "basic"),
                                 "name", name, "tags", tags));
    ck_assert_msg(json_is_false(json_object_get(again, "created")), "a replayed create: false");
    ck_assert_str_eq(need(again, "external_id"), id);
    check_experiment(again, name, "active");
    json_decref(again);

    json_t *found = OK(find_by_idempotency_key,
                       json_pack("{s:s,s:s}", "kind", "experiment", "idempotency_key", key));
    ck_assert_str_eq(need(found, "external_id"), id);
    check_experiment(found, name, "active");
    json_decref(found);

    FAIL(find_by_idempotency_key,
         json_pack("{s:s,s:s}", "kind", "experiment", "idempotency_key",
                   ukey(key, sizeof key, "never-used")),
         LLMOPS_ERR_NOT_FOUND);
    json_decref(tags);
    json_decref(e);
}
END_TEST

START_TEST(test_experiment_duplicate_name)
{
    char name[128], key[80];
    json_t *e = new_experiment("dup", "dup-1", NULL);
    FAIL(create_experiment,
         json_pack("{s:s,s:s}", "idempotency_key", ukey(key, sizeof key, "dup-2"), "name",
                   uname(name, sizeof name, "dup")),
         LLMOPS_ERR_CONFLICT);
    /* the first key still answers its experiment */
    json_t *again = OK(create_experiment, json_pack("{s:s,s:s}", "idempotency_key",
                                                    ukey(key, sizeof key, "dup-1"), "name", name));
    ck_assert(json_is_false(json_object_get(again, "created")));
    ck_assert_str_eq(need(again, "external_id"), need(e, "external_id"));
    /* the refused key made nothing */
    FAIL(find_by_idempotency_key,
         json_pack("{s:s,s:s}", "kind", "experiment", "idempotency_key",
                   ukey(key, sizeof key, "dup-2")),
         LLMOPS_ERR_NOT_FOUND);
    json_decref(again);
    json_decref(e);
}
END_TEST

START_TEST(test_experiment_not_found)
{
    FAIL(get_experiment, json_pack("{s:s}", "external_id", "987654321098765"),
         LLMOPS_ERR_NOT_FOUND);
    if (HAS(set_experiment_tags))
        FAIL(set_experiment_tags,
             json_pack("{s:s,s:{s:s}}", "external_id", "987654321098765", "tags", "a", "b"),
             LLMOPS_ERR_NOT_FOUND);
    FAIL(create_run,
         json_pack("{s:s,s:s,s:I}", "idempotency_key", "knotfound", "experiment_id",
                   "987654321098765", "start_time_ms", (json_int_t)base_ms),
         LLMOPS_ERR_NOT_FOUND);
}
END_TEST

/* Searches experiments with `in` (stolen; max_results added) in pages of page_size;
 * returns the names found, sorted, joined with '|'. */
static char *search_experiment_names(json_t *in, int page_size)
{
    static char joined[2048];
    char *names[64];
    int n = 0;
    char token[2100] = "";
    for (int pages = 0;; pages++) {
        ck_assert_msg(pages < 64, "experiment search paging does not end");
        json_t *q = json_deep_copy(in);
        json_object_set_new(q, "max_results", json_integer(page_size));
        if (token[0])
            json_object_set_new(q, "page_token", json_string(token));
        json_t *out = OK(search_experiments, q), *e;
        json_t *list = json_object_get(out, "experiments");
        ck_assert_msg(json_is_array(list), "search_experiments answers experiments: [...]");
        ck_assert(json_array_size(list) <= (size_t)page_size);
        size_t i;
        json_array_foreach(list, i, e)
        {
            ck_assert(n < 64);
            check_tags(e);
            names[n++] = strdup(need(e, "name"));
        }
        const char *next = str(out, "next_page_token");
        snprintf(token, sizeof token, "%s", next ? next : "");
        json_decref(out);
        if (!next)
            break;
    }
    json_decref(in);
    /* sort, check no name came twice, and join */
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (strcmp(names[j], names[i]) < 0) {
                char *x = names[i];
                names[i] = names[j];
                names[j] = x;
            }
    joined[0] = '\0';
    for (int i = 0; i < n; i++) {
        ck_assert_msg(i == 0 || strcmp(names[i], names[i - 1]) != 0, "%s came twice", names[i]);
        size_t used = strlen(joined);
        snprintf(joined + used, sizeof joined - used, "%s%s", i ? "|" : "", names[i]);
    }
    for (int i = 0; i < n; i++)
        free(names[i]);
    return joined;
}

START_TEST(test_search_experiments)
{
    /* A prefix with % and _ is literal: "pfx_a%" must not match "pfxZa%b" or "pfx_aZb". */
    json_decref(new_experiment("pfx_a%b", "pfx-1", NULL));
    json_decref(new_experiment("pfxZa%b", "pfx-2", NULL));
    json_decref(new_experiment("pfx_aZb", "pfx-3", NULL));
    char a[128], b[128], c[128], want[512], prefix[128];
    uname(a, sizeof a, "pfx_a%b");
    uname(b, sizeof b, "pfxZa%b");
    uname(c, sizeof c, "pfx_aZb");

    uname(prefix, sizeof prefix, "pfx_a%");
    ck_assert_str_eq(search_experiment_names(json_pack("{s:s}", "name_prefix", prefix), 100), a);
    uname(prefix, sizeof prefix, "pfx_");
    snprintf(want, sizeof want, "%s|%s", a, c);
    ck_assert_str_eq(search_experiment_names(json_pack("{s:s}", "name_prefix", prefix), 100), want);
    ck_assert_str_eq(search_experiment_names(json_pack("{s:s}", "name", b), 100), b);
    ck_assert_str_eq(search_experiment_names(json_pack("{s:s}", "name", prefix), 100), "");

    /* every page of one, following the tokens: each experiment exactly once */
    uname(prefix, sizeof prefix, "pfx");
    snprintf(want, sizeof want, "%s|%s|%s", b, a, c); /* sorted bytewise: Z < _ */
    ck_assert_str_eq(search_experiment_names(json_pack("{s:s}", "name_prefix", prefix), 1), want);
    ck_assert_str_eq(search_experiment_names(json_pack("{s:s}", "name_prefix", prefix), 2), want);

    FAIL(search_experiments,
         json_pack("{s:s,s:i,s:s}", "name_prefix", prefix, "max_results", 1, "page_token",
                   "not-a-token"),
         LLMOPS_ERR_INVALID);
}
END_TEST

START_TEST(test_set_experiment_tags)
{
    if (!HAS(set_experiment_tags))
        return;
    json_t *e = new_experiment("settags", "settags", json_pack("{s:s}", "a", "1"));
    const char *id = need(e, "external_id");
    json_decref(OK(set_experiment_tags,
                   json_pack("{s:s,s:{s:s,s:s}}", "external_id", id, "tags", "a", "3", "b", "2")));
    json_t *got = OK(get_experiment, json_pack("{s:s}", "external_id", id));
    json_t *want = json_pack("{s:s,s:s}", "a", "3", "b", "2");
    check_has_tags(got, want);
    json_decref(want);
    json_decref(got);
    json_decref(e);
}
END_TEST

START_TEST(test_delete_experiment)
{
    if (!HAS(delete_experiment))
        return;
    char name[128], key[80];
    json_t *e = new_experiment("deleted", "deleted", NULL);
    const char *id = need(e, "external_id");
    json_t *out = OK(delete_experiment, json_pack("{s:s}", "external_id", id));
    ck_assert_msg(json_is_true(json_object_get(out, "deleted")), "the first delete: true");
    json_decref(out);
    out = OK(delete_experiment, json_pack("{s:s}", "external_id", id));
    ck_assert_msg(json_is_false(json_object_get(out, "deleted")), "deleting again: false");
    json_decref(out);

    json_t *got = OK(get_experiment, json_pack("{s:s}", "external_id", id));
    check_experiment(got, uname(name, sizeof name, "deleted"), "deleted");
    json_decref(got);

    /* searches see it only when they ask for deleted ones */
    ck_assert_str_eq(search_experiment_names(json_pack("{s:s}", "name", name), 10), "");
    ck_assert_str_eq(
        search_experiment_names(json_pack("{s:s,s:s}", "name", name, "lifecycle", "deleted"), 10),
        name);
    ck_assert_str_eq(
        search_experiment_names(json_pack("{s:s,s:s}", "name", name, "lifecycle", "all"), 10),
        name);

    /* its name stays taken; it takes no new runs or tags */
    FAIL(
        create_experiment,
        json_pack("{s:s,s:s}", "idempotency_key", ukey(key, sizeof key, "deleted-2"), "name", name),
        LLMOPS_ERR_CONFLICT);
    FAIL(create_run,
         json_pack("{s:s,s:s,s:I}", "idempotency_key", ukey(key, sizeof key, "deleted-run"),
                   "experiment_id", id, "start_time_ms", (json_int_t)base_ms),
         LLMOPS_ERR_INVALID);
    if (HAS(set_experiment_tags))
        FAIL(set_experiment_tags, json_pack("{s:s,s:{s:s}}", "external_id", id, "tags", "a", "b"),
             LLMOPS_ERR_INVALID);
    json_decref(e);
}
END_TEST

/* ------------------------------------------------------------------ runs */

START_TEST(test_run_create_get_find)
{
    char exp[32], key[80];
    experiment_id("runs", exp, sizeof exp);
    json_t *tags = json_pack("{s:s}", "purpose", "conformance");
    json_t *in = json_pack("{s:s,s:s,s:s,s:I,s:s,s:O}", "idempotency_key",
                           ukey(key, sizeof key, "run-1"), "experiment_id", exp, "name", "first",
                           "start_time_ms", (json_int_t)base_ms, "user", "alice", "tags", tags);
    json_t *run = OK(create_run, json_incref(in));
    ck_assert(json_is_true(json_object_get(run, "created")));
    check_run(run, exp, "active", 1);
    ck_assert_str_eq(need(run, "name"), "first");
    ck_assert_str_eq(need(run, "status"), "RUNNING");
    ck_assert_int_eq(json_integer_value(json_object_get(run, "start_time_ms")), base_ms);
    ck_assert_msg(!json_object_get(run, "end_time_ms"), "a running run has no end_time_ms");
    if (json_object_get(run, "user"))
        ck_assert_str_eq(str(run, "user"), "alice");
    check_has_tags(run, tags);
    ck_assert_int_eq(json_object_size(json_object_get(run, "params")), 0);
    ck_assert_int_eq(json_array_size(json_object_get(run, "metrics")), 0);
    const char *id = need(run, "external_id");

    /* the same create again: the same run */
    json_t *again = OK(create_run, in);
    ck_assert(json_is_false(json_object_get(again, "created")));
    ck_assert_str_eq(need(again, "external_id"), id);
    json_decref(again);

    json_t *got = get_run(id);
    check_run(got, exp, "active", 1);
    ck_assert_str_eq(need(got, "external_id"), id);
    ck_assert_str_eq(need(got, "name"), "first");
    check_has_tags(got, tags);
    json_decref(got);

    json_t *found =
        OK(find_by_idempotency_key,
           json_pack("{s:s,s:s,s:s}", "kind", "run", "idempotency_key", key, "experiment_id", exp));
    ck_assert_str_eq(need(found, "external_id"), id);
    check_run(found, exp, "active", 1);
    json_decref(found);
    FAIL(find_by_idempotency_key,
         json_pack("{s:s,s:s,s:s}", "kind", "run", "idempotency_key",
                   ukey(key, sizeof key, "run-never"), "experiment_id", exp),
         LLMOPS_ERR_NOT_FOUND);
    FAIL(find_by_idempotency_key,
         json_pack("{s:s,s:s}", "kind", "run", "idempotency_key", ukey(key, sizeof key, "run-1")),
         LLMOPS_ERR_INVALID);

    /* without a name, the tool gives one */
    json_t *anon = new_run(exp, "run-anon", NULL, base_ms + 1);
    check_run(anon, exp, "active", 1);
    json_decref(anon);
    json_decref(tags);
    json_decref(run);
}
END_TEST

START_TEST(test_run_not_found)
{
    char id[33];
    unknown_run_id(id);
    FAIL(get_run, json_pack("{s:s}", "external_id", id), LLMOPS_ERR_NOT_FOUND);
    FAIL(update_run, json_pack("{s:s,s:s}", "external_id", id, "status", "FINISHED"),
         LLMOPS_ERR_NOT_FOUND);
    FAIL(log_batch, json_pack("{s:s,s:{s:s}}", "external_id", id, "params", "a", "b"),
         LLMOPS_ERR_NOT_FOUND);
    FAIL(get_metric_history,
         json_pack("{s:s,s:s,s:i}", "external_id", id, "key", "loss", "max_results", 10),
         LLMOPS_ERR_NOT_FOUND);
}
END_TEST

START_TEST(test_update_run)
{
    char exp[32], id[40];
    experiment_id("update", exp, sizeof exp);
    run_id(new_run(exp, "upd", "before", base_ms), id, sizeof id);
    json_t *info = OK(update_run, json_pack("{s:s,s:s,s:I}", "external_id", id, "status",
                                            "FINISHED", "end_time_ms", (json_int_t)base_ms + 5000));
    check_run(info, exp, "active", 0);
    ck_assert_str_eq(need(info, "status"), "FINISHED");
    ck_assert_int_eq(json_integer_value(json_object_get(info, "end_time_ms")), base_ms + 5000);
    json_decref(info);

    info = OK(update_run, json_pack("{s:s,s:s}", "external_id", id, "name", "after"));
    ck_assert_str_eq(need(info, "name"), "after");
    ck_assert_str_eq(need(info, "status"), "FINISHED");
    json_decref(info);

    /* a status outside the input set is refused, not ignored */
    FAIL(update_run, json_pack("{s:s,s:s}", "external_id", id, "status", "DONE"),
         LLMOPS_ERR_INVALID);
    FAIL(update_run, json_pack("{s:s,s:s}", "external_id", id, "status", "SCHEDULED"),
         LLMOPS_ERR_INVALID);
    json_t *run = get_run(id);
    ck_assert_str_eq(need(run, "status"), "FINISHED");
    ck_assert_str_eq(need(run, "name"), "after");
    ck_assert_int_eq(json_integer_value(json_object_get(run, "end_time_ms")), base_ms + 5000);
    json_decref(run);
}
END_TEST

START_TEST(test_delete_run)
{
    if (!HAS(delete_run))
        return;
    char exp[32], id[40], keep[40];
    experiment_id("delrun", exp, sizeof exp);
    run_id(new_run(exp, "del", "doomed", base_ms), id, sizeof id);
    run_id(new_run(exp, "keep", "kept", base_ms + 1), keep, sizeof keep);
    json_t *out = OK(delete_run, json_pack("{s:s}", "external_id", id));
    ck_assert(json_is_true(json_object_get(out, "deleted")));
    json_decref(out);
    out = OK(delete_run, json_pack("{s:s}", "external_id", id));
    ck_assert_msg(json_is_false(json_object_get(out, "deleted")), "deleting again: false");
    json_decref(out);

    json_t *run = get_run(id);
    check_run(run, exp, "deleted", 1);
    json_decref(run);
    FAIL(log_batch, json_pack("{s:s,s:{s:s}}", "external_id", id, "tags", "a", "b"),
         LLMOPS_ERR_INVALID);
    FAIL(update_run, json_pack("{s:s,s:s}", "external_id", id, "status", "KILLED"),
         LLMOPS_ERR_INVALID);

    const char *want[][2] = {{"active", "kept"}, {"deleted", "doomed"}, {"all", "doomed|kept"}};
    for (size_t i = 0; i < 3; i++) {
        json_t *res = OK(search_runs, json_pack("{s:[s],s:s,s:i}", "experiment_ids", exp,
                                                "lifecycle", want[i][0], "max_results", 100));
        char names[256] = "";
        json_t *r;
        size_t j;
        json_array_foreach(json_object_get(res, "runs"), j, r)
        {
            size_t used = strlen(names);
            snprintf(names + used, sizeof names - used, "%s%s", used ? "|" : "", need(r, "name"));
        }
        if (strcmp(names, "kept|doomed") == 0)
            snprintf(names, sizeof names, "doomed|kept");
        ck_assert_msg(strcmp(names, want[i][1]) == 0, "lifecycle %s found '%s', not '%s'",
                      want[i][0], names, want[i][1]);
        json_decref(res);
    }
}
END_TEST

/* ------------------------------------------------------------------ logging */

START_TEST(test_params_never_change)
{
    char exp[32], id[40];
    experiment_id("params", exp, sizeof exp);
    run_id(new_run(exp, "params", "params", base_ms), id, sizeof id);
    log_batch(id, NULL, json_pack("{s:s,s:s}", "lr", "0.01", "opt", "adam"), NULL);
    log_batch(id, NULL, json_pack("{s:s}", "lr", "0.01"), NULL); /* the same value: fine */
    FAIL(log_batch, json_pack("{s:s,s:{s:s}}", "external_id", id, "params", "lr", "0.02"),
         LLMOPS_ERR_CONFLICT);
    json_t *run = get_run(id);
    json_t *params = json_object_get(run, "params");
    ck_assert_str_eq(str(params, "lr"), "0.01");
    ck_assert_str_eq(str(params, "opt"), "adam");
    json_decref(run);
}
END_TEST

START_TEST(test_log_tags_and_latest_metrics)
{
    char exp[32], id[40];
    experiment_id("latest", exp, sizeof exp);
    run_id(new_run(exp, "latest", "latest", base_ms), id, sizeof id);
    log_batch(id,
              json_pack("[o,o,o]", point("acc", json_real(0.5), base_ms + 10, 0),
                        point("acc", json_real(0.75), base_ms + 20, 1),
                        point("loss", json_integer(3), base_ms + 10, 0)),
              NULL, json_pack("{s:s,s:s}", "team", "red", "stage", "dev"));
    log_batch(id, NULL, NULL, json_pack("{s:s}", "stage", "prod")); /* a tag may change */
    json_t *run = get_run(id);
    json_t *want = json_pack("{s:s,s:s}", "team", "red", "stage", "prod");
    check_has_tags(run, want);
    json_decref(want);
    json_t *acc = latest(run, "acc"), *loss = latest(run, "loss");
    ck_assert_msg(acc && loss, "get_run answers the latest point of each key");
    ck_assert_int_eq(json_array_size(json_object_get(run, "metrics")), 2);
    ck_assert(json_number_value(json_object_get(acc, "value")) == 0.75);
    ck_assert_int_eq(json_integer_value(json_object_get(acc, "step")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(acc, "timestamp_ms")), base_ms + 20);
    ck_assert(json_number_value(json_object_get(loss, "value")) == 3);
    json_decref(run);
}
END_TEST

START_TEST(test_nan_and_infinity_round_trip)
{
    char exp[32], id[40];
    experiment_id("nan", exp, sizeof exp);
    run_id(new_run(exp, "nan", "nan", base_ms), id, sizeof id);
    /* (not DBL_MAX: MLflow answers Infinity as DBL_MAX, so the mlflow module reads it back
     * as "Infinity") */
    json_t *values =
        json_pack("[s,s,s,f,f,f,f,i]", "NaN", "Infinity", "-Infinity", 0.1, 1e300, -2.5, 5e-324, 0);
    json_t *points = json_array(), *v;
    size_t i;
    json_array_foreach(values, i, v)
    {
        json_array_append_new(
            points, point("special", json_incref(v), base_ms + (long long)i, (long long)i));
    }
    json_array_append_new(points, point("nan", json_string("NaN"), base_ms, 0));
    json_array_append_new(points, point("pinf", json_string("Infinity"), base_ms, 0));
    json_array_append_new(points, point("ninf", json_string("-Infinity"), base_ms, 0));
    log_batch(id, points, NULL, NULL);

    json_t *h = history(id, "special", 100), *m;
    ck_assert_int_eq(json_array_size(h), json_array_size(values));
    json_array_foreach(h, i, m)
    {
        ck_assert_int_eq(json_integer_value(json_object_get(m, "step")), (long long)i);
        check_value(json_object_get(m, "value"), json_array_get(values, i));
    }
    json_decref(h);

    json_t *run = get_run(id);
    ck_assert_str_eq(str(latest(run, "nan"), "value"), "NaN");
    ck_assert_str_eq(str(latest(run, "pinf"), "value"), "Infinity");
    ck_assert_str_eq(str(latest(run, "ninf"), "value"), "-Infinity");
    json_decref(run);
    json_decref(values);
}
END_TEST

START_TEST(test_replayed_batch_adds_nothing)
{
    char exp[32], id[40];
    experiment_id("replay", exp, sizeof exp);
    run_id(new_run(exp, "replay", "replay", base_ms), id, sizeof id);
    json_t *batch = json_pack("{s:s,s:[o,o,o,o],s:{s:s},s:{s:s}}", "external_id", id, "metrics",
                              point("loss", json_real(0.5), base_ms, 0),
                              point("loss", json_real(0.25), base_ms + 1, 1),
                              point("loss", json_string("NaN"), base_ms + 2, 2),
                              point("loss", json_real(0.5), base_ms + 3, 0), /* another point */
                              "params", "lr", "0.1", "tags", "t", "v");
    for (int i = 0; i < 3; i++) /* the outbox may send it again, and again */
        json_decref(OK(log_batch, json_deep_copy(batch)));
    json_t *h = history(id, "loss", 100);
    ck_assert_msg(json_array_size(h) == 4, "a replayed batch added points: %zu, not 4",
                  json_array_size(h));
    json_decref(h);
    json_t *run = get_run(id);
    ck_assert_str_eq(str(json_object_get(run, "params"), "lr"), "0.1");
    ck_assert_str_eq(str(json_object_get(run, "tags"), "t"), "v");
    json_decref(run);
    json_decref(batch);
}
END_TEST

START_TEST(test_batch_limits)
{
    char exp[32], id[40], id2[40], k[32], v[32];
    experiment_id("limits", exp, sizeof exp);
    run_id(new_run(exp, "limits", "limits", base_ms), id, sizeof id);
    /* the largest batch the interface allows: 1000 entries, every kind at its own maximum
     * where the total allows it */
    int nmetrics = LLMOPS_TRACKING_BATCH_MAX_ENTRIES - LLMOPS_TRACKING_BATCH_MAX_PARAMS -
                   LLMOPS_TRACKING_BATCH_MAX_TAGS;
    json_t *metrics = json_array(), *params = json_object(), *tags = json_object();
    for (int i = 0; i < nmetrics; i++)
        json_array_append_new(metrics, point("m", json_real(i * 0.5), base_ms + i, i));
    for (int i = 0; i < LLMOPS_TRACKING_BATCH_MAX_PARAMS; i++) {
        snprintf(k, sizeof k, "p%03d", i);
        snprintf(v, sizeof v, "%d", i);
        json_object_set_new(params, k, json_string(v));
    }
    for (int i = 0; i < LLMOPS_TRACKING_BATCH_MAX_TAGS; i++) {
        snprintf(k, sizeof k, "t%03d", i);
        json_object_set_new(tags, k, json_string("x"));
    }
    /* the longest key and values */
    char longkey[LLMOPS_TRACKING_KEY_MAX + 1];
    memset(longkey, 'k', LLMOPS_TRACKING_KEY_MAX);
    longkey[LLMOPS_TRACKING_KEY_MAX] = '\0';
    char *longval = malloc(LLMOPS_TRACKING_PARAM_VALUE_MAX + 1);
    memset(longval, 'v', LLMOPS_TRACKING_PARAM_VALUE_MAX);
    longval[LLMOPS_TRACKING_PARAM_VALUE_MAX] = '\0';
    json_object_set_new(params, "p000", json_string(longval));
    longval[LLMOPS_TRACKING_TAG_VALUE_MAX] = '\0';
    json_object_set_new(tags, longkey, json_string(longval));
    json_object_del(tags, "t000");
    log_batch(id, metrics, params, tags);

    json_t *run = get_run(id);
    ck_assert_int_eq(json_object_size(json_object_get(run, "params")),
                     LLMOPS_TRACKING_BATCH_MAX_PARAMS);
    ck_assert_uint_eq(strlen(str(json_object_get(run, "params"), "p000")),
                      LLMOPS_TRACKING_PARAM_VALUE_MAX);
    ck_assert_uint_eq(strlen(str(json_object_get(run, "tags"), longkey)),
                      LLMOPS_TRACKING_TAG_VALUE_MAX);
    json_decref(run);
    free(longval);
    json_t *h = history(id, "m", LLMOPS_TRACKING_HISTORY_MAX_RESULTS);
    ck_assert_int_eq(json_array_size(h), nmetrics);
    json_decref(h);
    h = history(id, "m", 300); /* three pages */
    ck_assert_int_eq(json_array_size(h), nmetrics);
    json_decref(h);

    /* and 1000 metric points alone */
    run_id(new_run(exp, "limits-2", "limits-2", base_ms), id2, sizeof id2);
    metrics = json_array();
    for (int i = 0; i < LLMOPS_TRACKING_BATCH_MAX_METRICS; i++)
        json_array_append_new(metrics, point(i % 2 ? "odd" : "even", json_integer(i), base_ms, i));
    log_batch(id2, metrics, NULL, NULL);
    h = history(id2, "odd", 1000);
    ck_assert_int_eq(json_array_size(h), LLMOPS_TRACKING_BATCH_MAX_METRICS / 2);
    json_decref(h);
}
END_TEST

START_TEST(test_history_order_and_paging)
{
    char exp[32], id[40];
    experiment_id("history", exp, sizeof exp);
    run_id(new_run(exp, "history", "history", base_ms), id, sizeof id);
    /* logged out of order; read by step, then timestamp */
    log_batch(id,
              json_pack("[o,o,o,o,o,o]", point("loss", json_real(0.2), base_ms + 100, 2),
                        point("loss", json_real(1.0), base_ms + 300, 0),
                        point("loss", json_real(0.5), base_ms + 200, 1),
                        point("loss", json_real(0.6), base_ms + 150, 1),
                        point("loss", json_integer(9), base_ms + 50, -1),
                        point("loss", json_real(1.1), base_ms + 100, 0)),
              NULL, NULL);
    const long long want[][2] = {{-1, 50}, {0, 100}, {0, 300}, {1, 150}, {1, 200}, {2, 100}};
    for (int size = 1; size <= 7; size += 2) {
        json_t *h = history(id, "loss", size), *m;
        ck_assert_int_eq(json_array_size(h), 6);
        size_t i;
        json_array_foreach(h, i, m)
        {
            ck_assert_msg(json_integer_value(json_object_get(m, "step")) == want[i][0] &&
                              json_integer_value(json_object_get(m, "timestamp_ms")) ==
                                  base_ms + want[i][1],
                          "page size %d: point %zu is not step %lld at +%lld ms", size, i,
                          want[i][0], want[i][1]);
        }
        json_decref(h);
    }
    json_t *none = history(id, "never-logged", 10);
    ck_assert_int_eq(json_array_size(none), 0);
    json_decref(none);
    FAIL(get_metric_history,
         json_pack("{s:s,s:s,s:i,s:s}", "external_id", id, "key", "loss", "max_results", 2,
                   "page_token", "not-a-token"),
         LLMOPS_ERR_INVALID);
}
END_TEST

/* ------------------------------------------------------------------ searching runs */

/* Four runs with metrics, params, tags, statuses, names and times to search through. */
static char search_exp[32];
static const char *const run_names[] = {"alpha-0", "alpha-1", "beta-2", "Beta_3"};

static void search_fixture(void)
{
    if (search_exp[0])
        return;
    char exp[32], id[40], key[32];
    experiment_id("search", exp, sizeof exp);
    static const double loss[] = {0.9, 0.5, 0.1, 0.5}, acc[] = {0.1, 0.5, 0.9, 0.7};
    static const char *const lr[] = {"0.1", "0.01", "0.001", "0.01"};
    static const char *const opt[] = {"adam", "sgd", "adamw", "Adam"};
    static const char *const team[] = {"red", "blue", "red", "green"};
    static const char *const stage[] = {"Dev", "prod", "PROD", "prod"};
    /* a backslash is an ordinary character in LIKE (only % and _ are wildcards) */
    static const char *const path[] = {"x\\y", "xy", "x\\\\y", "x_y"};
    static const char *const status[] = {"FINISHED", "FAILED", NULL, "KILLED"};
    static const long long end[] = {100, 2000, 0, 3500};
    for (int i = 0; i < 4; i++) {
        snprintf(key, sizeof key, "search-%d", i);
        run_id(new_run(exp, key, run_names[i], base_ms + 1000 * i), id, sizeof id);
        log_batch(id,
                  json_pack("[o,o]", point("loss", json_real(loss[i]), base_ms, 0),
                            point("acc", json_real(acc[i]), base_ms, 0)),
                  json_pack("{s:s,s:s}", "lr", lr[i], "opt", opt[i]),
                  json_pack("{s:s,s:s,s:s}", "team", team[i], "stage", stage[i], "path", path[i]));
        if (status[i])
            json_decref(
                OK(update_run, json_pack("{s:s,s:s,s:I}", "external_id", id, "status", status[i],
                                         "end_time_ms", (json_int_t)(base_ms + end[i]))));
    }
    snprintf(search_exp, sizeof search_exp, "%s", exp);
}

/* Runs search_runs over the fixture with filter and order_by (JSON texts, "" for none) in
 * pages of page_size; returns the names in the order answered, joined with '|'. Each page
 * is checked; no run may come twice. */
static const char *search(const char *filter, const char *order_by, int page_size)
{
    static char joined[512];
    joined[0] = '\0';
    char token[2100] = "";
    json_error_t je;
    json_t *f = filter[0] ? json_loads(filter, 0, &je) : NULL;
    json_t *o = order_by[0] ? json_loads(order_by, 0, &je) : NULL;
    ck_assert_msg(!filter[0] || f, "bad test filter %s", filter);
    ck_assert_msg(!order_by[0] || o, "bad test order_by %s", order_by);
    for (int pages = 0;; pages++) {
        ck_assert_msg(pages < 20, "run search paging does not end");
        json_t *in =
            json_pack("{s:[s],s:i}", "experiment_ids", search_exp, "max_results", page_size);
        if (f)
            json_object_set(in, "filter", f);
        if (o)
            json_object_set(in, "order_by", o);
        if (token[0])
            json_object_set_new(in, "page_token", json_string(token));
        json_t *out = OK(search_runs, in), *r;
        json_t *runs = json_object_get(out, "runs");
        ck_assert_msg(json_is_array(runs), "search_runs answers runs: [...] (even when empty)");
        ck_assert(json_array_size(runs) <= (size_t)page_size);
        size_t i;
        json_array_foreach(runs, i, r)
        {
            check_run(r, search_exp, "active", 1);
            const char *name = need(r, "name");
            char bar[64];
            snprintf(bar, sizeof bar, "|%s|", name);
            char have[520];
            snprintf(have, sizeof have, "|%s|", joined);
            ck_assert_msg(!strstr(have, bar), "%s came twice (filter %s)", name, filter);
            size_t used = strlen(joined);
            snprintf(joined + used, sizeof joined - used, "%s%s", used ? "|" : "", name);
        }
        const char *next = str(out, "next_page_token");
        snprintf(token, sizeof token, "%s", next ? next : "");
        json_decref(out);
        if (!next)
            break;
    }
    json_decref(f);
    json_decref(o);
    return joined;
}

/* The names of `search` in the fixture's order (alpha-0, alpha-1, beta-2, Beta_3), so that
 * sets compare whatever order the tool answered in. */
static const char *as_set(const char *names)
{
    static char out[512];
    char have[520];
    snprintf(have, sizeof have, "|%s|", names);
    out[0] = '\0';
    for (int i = 0; i < 4; i++) {
        char bar[64];
        snprintf(bar, sizeof bar, "|%s|", run_names[i]);
        if (strstr(have, bar)) {
            size_t used = strlen(out);
            snprintf(out + used, sizeof out - used, "%s%s", used ? "|" : "", run_names[i]);
        }
    }
    return out;
}

struct filter_case {
    const char *field, *key, *op, *value; /* value: JSON text; %lld is base_ms + it */
    long long add;
    const char *want; /* names in fixture order */
    int may_refuse;   /* a value a tool's filter language may not quote: INVALID allowed */
};

static const struct filter_case filter_cases[] = {
    {"metric", "loss", "<", "0.5", 0, "beta-2", 0},
    {"metric", "loss", "<=", "0.5", 0, "alpha-1|beta-2|Beta_3", 0},
    {"metric", "loss", "=", "0.5", 0, "alpha-1|Beta_3", 0},
    {"metric", "loss", "!=", "0.5", 0, "alpha-0|beta-2", 0},
    {"metric", "loss", ">=", "0.5", 0, "alpha-0|alpha-1|Beta_3", 0},
    {"metric", "loss", ">", "0.5", 0, "alpha-0", 0},
    {"metric", "loss", ">", "100", 0, "", 0},
    {"param", "lr", "=", "\"0.01\"", 0, "alpha-1|Beta_3", 0},
    {"param", "lr", "!=", "\"0.01\"", 0, "alpha-0|beta-2", 0},
    {"param", "opt", "LIKE", "\"adam%\"", 0, "alpha-0|beta-2", 0},
    {"param", "opt", "ILIKE", "\"adam%\"", 0, "alpha-0|beta-2|Beta_3", 0},
    {"param", "opt", "LIKE", "\"a_am\"", 0, "alpha-0", 0},
    {"tag", "team", "=", "\"red\"", 0, "alpha-0|beta-2", 0},
    {"tag", "team", "!=", "\"red\"", 0, "alpha-1|Beta_3", 0},
    {"tag", "stage", "LIKE", "\"%rod\"", 0, "alpha-1|Beta_3", 0},
    {"tag", "stage", "ILIKE", "\"%ROD\"", 0, "alpha-1|beta-2|Beta_3", 0},
    {"tag", "path", "LIKE", "\"x\\\\y\"", 0, "alpha-0", 1},
    {"tag", "path", "=", "\"x\\\\\\\\y\"", 0, "beta-2", 1},
    {"tag", "path", "LIKE", "\"x_y\"", 0, "alpha-0|Beta_3", 0},
    {"attribute", "status", "=", "\"FINISHED\"", 0, "alpha-0", 0},
    {"attribute", "status", "!=", "\"RUNNING\"", 0, "alpha-0|alpha-1|Beta_3", 0},
    {"attribute", "name", "=", "\"alpha-1\"", 0, "alpha-1", 0},
    {"attribute", "name", "!=", "\"alpha-1\"", 0, "alpha-0|beta-2|Beta_3", 0},
    {"attribute", "name", "LIKE", "\"alpha%\"", 0, "alpha-0|alpha-1", 0},
    {"attribute", "name", "LIKE", "\"beta%\"", 0, "beta-2", 0},
    {"attribute", "name", "LIKE", "\"%eta_%\"", 0, "beta-2|Beta_3", 0},
    {"attribute", "name", "ILIKE", "\"BETA%\"", 0, "beta-2|Beta_3", 0},
    {"attribute", "start_time_ms", "<", "%lld", 1000, "alpha-0", 0},
    {"attribute", "start_time_ms", "<=", "%lld", 1000, "alpha-0|alpha-1", 0},
    {"attribute", "start_time_ms", "=", "%lld", 2000, "beta-2", 0},
    {"attribute", "start_time_ms", "!=", "%lld", 2000, "alpha-0|alpha-1|Beta_3", 0},
    {"attribute", "start_time_ms", ">=", "%lld", 2000, "beta-2|Beta_3", 0},
    {"attribute", "start_time_ms", ">", "%lld", 2000, "Beta_3", 0},
    {"attribute", "end_time_ms", "<", "%lld", 2000, "alpha-0", 0},
    {"attribute", "end_time_ms", ">=", "%lld", 2000, "alpha-1|Beta_3", 0},
};

START_TEST(test_search_runs_filter)
{
    search_fixture();
    const struct filter_case *c = &filter_cases[_i];
    char value[64], filter[512];
    if (strcmp(c->value, "%lld") == 0)
        snprintf(value, sizeof value, "%lld", base_ms + c->add);
    else
        snprintf(value, sizeof value, "%s", c->value);
    snprintf(filter, sizeof filter,
             "[{\"field\":\"%s\",\"key\":\"%s\",\"op\":\"%s\",\"value\":%s}]", c->field, c->key,
             c->op, value);
    if (c->may_refuse) {
        json_error_t je;
        json_t *in = json_pack("{s:[s],s:i,s:o}", "experiment_ids", search_exp, "max_results", 100,
                               "filter", json_loads(filter, 0, &je)),
               *out;
        struct llmops_error err;
        if (CALL(search_runs, in, &out, &err) < 0) {
            ck_assert_msg(err.code == LLMOPS_ERR_INVALID, "%s: failed with %s: %s", filter,
                          code_name(err.code), err.message);
            return;
        }
        json_decref(out);
    }
    const char *got = as_set(search(filter, "", 100));
    ck_assert_msg(strcmp(got, c->want) == 0, "%s: found '%s', not '%s'", filter, got, c->want);
}
END_TEST

START_TEST(test_search_runs_clauses_and)
{
    search_fixture();
    const char *two = "[{\"field\":\"param\",\"key\":\"opt\",\"op\":\"ILIKE\",\"value\":\"adam%\"},"
                      "{\"field\":\"metric\",\"key\":\"loss\",\"op\":\"<\",\"value\":0.6}]";
    ck_assert_str_eq(as_set(search(two, "", 100)), "beta-2|Beta_3");
    const char *three =
        "[{\"field\":\"param\",\"key\":\"opt\",\"op\":\"ILIKE\",\"value\":\"adam%\"},"
        "{\"field\":\"metric\",\"key\":\"loss\",\"op\":\"<\",\"value\":0.6},"
        "{\"field\":\"tag\",\"key\":\"team\",\"op\":\"=\",\"value\":\"red\"}]";
    ck_assert_str_eq(as_set(search(three, "", 100)), "beta-2");
    ck_assert_str_eq(as_set(search("[]", "", 100)), "alpha-0|alpha-1|beta-2|Beta_3");
}
END_TEST

START_TEST(test_search_runs_order_and_pages)
{
    search_fixture();
    /* no order: start_time_ms descending; pages of every size give the same list */
    for (int size = 1; size <= 5; size++)
        ck_assert_str_eq(search("", "", size), "Beta_3|beta-2|alpha-1|alpha-0");
    ck_assert_str_eq(search("", "[]", 2), "Beta_3|beta-2|alpha-1|alpha-0");
    ck_assert_str_eq(search("", "[{\"field\":\"metric\",\"key\":\"acc\",\"ascending\":true}]", 3),
                     "alpha-0|alpha-1|Beta_3|beta-2");
    ck_assert_str_eq(search("", "[{\"field\":\"metric\",\"key\":\"acc\",\"ascending\":false}]", 1),
                     "beta-2|Beta_3|alpha-1|alpha-0");
    ck_assert_str_eq(search("", "[{\"field\":\"metric\",\"key\":\"acc\"}]", 100),
                     "beta-2|Beta_3|alpha-1|alpha-0"); /* ascending defaults to false */
    ck_assert_str_eq(
        search("", "[{\"field\":\"attribute\",\"key\":\"start_time_ms\",\"ascending\":true}]", 3),
        "alpha-0|alpha-1|beta-2|Beta_3");
    ck_assert_str_eq(search("",
                            "[{\"field\":\"param\",\"key\":\"lr\",\"ascending\":true},"
                            "{\"field\":\"attribute\",\"key\":\"start_time_ms\",\"ascending\":"
                            "true}]",
                            1),
                     "beta-2|alpha-1|Beta_3|alpha-0");
    ck_assert_str_eq(search("",
                            "[{\"field\":\"tag\",\"key\":\"team\",\"ascending\":true},"
                            "{\"field\":\"metric\",\"key\":\"loss\",\"ascending\":false}]",
                            2),
                     "alpha-1|Beta_3|alpha-0|beta-2");
    /* a filter and an order, paged */
    ck_assert_str_eq(search("[{\"field\":\"metric\",\"key\":\"loss\",\"op\":\"<=\",\"value\":0.5}]",
                            "[{\"field\":\"metric\",\"key\":\"acc\",\"ascending\":true}]", 1),
                     "alpha-1|Beta_3|beta-2");
    FAIL(search_runs,
         json_pack("{s:[s],s:i,s:s}", "experiment_ids", search_exp, "max_results", 1, "page_token",
                   "not-a-token"),
         LLMOPS_ERR_INVALID);
}
END_TEST

START_TEST(test_search_runs_several_experiments)
{
    search_fixture();
    char other[32], id[40];
    experiment_id("search-other", other, sizeof other);
    run_id(new_run(other, "other", "other", base_ms + 500), id, sizeof id);
    json_t *out =
        OK(search_runs, json_pack("{s:[s],s:i}", "experiment_ids", other, "max_results", 100));
    ck_assert_int_eq(json_array_size(json_object_get(out, "runs")), 1);
    json_decref(out);
    out = OK(search_runs,
             json_pack("{s:[s,s],s:i}", "experiment_ids", search_exp, other, "max_results", 100));
    ck_assert_int_eq(json_array_size(json_object_get(out, "runs")), 5);
    json_decref(out);
}
END_TEST

/* ------------------------------------------------------------------ the suite */

static void pick_suffix(void)
{
    unsigned char b[6] = {0};
    int fd = open("/dev/urandom", O_RDONLY);
    if (fd < 0 || read(fd, b, sizeof b) != (ssize_t)sizeof b) {
        unsigned long x = (unsigned long)time(NULL) ^ ((unsigned long)getpid() << 16);
        memcpy(b, &x, sizeof b < sizeof x ? sizeof b : sizeof x);
    }
    if (fd >= 0)
        close(fd);
    for (int i = 0; i < 6; i++)
        snprintf(sfx + 2 * i, 3, "%02x", b[i]);
    base_ms = ((long long)time(NULL) - 3600) * 1000;
}

Suite *conformance_tracking(void)
{
    pick_suffix();
    Suite *s = suite_create("experiment_tracking");
    TCase *tc = tcase_create("Core");
    tcase_add_test(tc, test_experiment_create_get_find);
    tcase_add_test(tc, test_experiment_duplicate_name);
    tcase_add_test(tc, test_experiment_not_found);
    tcase_add_test(tc, test_search_experiments);
    tcase_add_test(tc, test_set_experiment_tags);
    tcase_add_test(tc, test_delete_experiment);
    tcase_add_test(tc, test_run_create_get_find);
    tcase_add_test(tc, test_run_not_found);
    tcase_add_test(tc, test_update_run);
    tcase_add_test(tc, test_delete_run);
    tcase_add_test(tc, test_params_never_change);
    tcase_add_test(tc, test_log_tags_and_latest_metrics);
    tcase_add_test(tc, test_nan_and_infinity_round_trip);
    tcase_add_test(tc, test_replayed_batch_adds_nothing);
    tcase_add_test(tc, test_history_order_and_paging);
    suite_add_tcase(s, tc);
    TCase *search_tc = tcase_create("Search");
    tcase_add_loop_test(search_tc, test_search_runs_filter, 0,
                        (int)(sizeof filter_cases / sizeof filter_cases[0]));
    tcase_add_test(search_tc, test_search_runs_clauses_and);
    tcase_add_test(search_tc, test_search_runs_order_and_pages);
    tcase_add_test(search_tc, test_search_runs_several_experiments);
    suite_add_tcase(s, search_tc);
    TCase *limits = tcase_create("Limits");
    tcase_add_test(limits, test_batch_limits);
    suite_add_tcase(s, limits);
    return s;
}
