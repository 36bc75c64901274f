/* tracking-pg's own promises, beyond the interface (doc/plugins/tracking-pg.md): page tokens
 * bound to their search, limits refused rather than passed on, values stored as IEEE
 * doubles, no links. Run by the runner after the category's suites, for this module only. */
#include "conformance.h"
#include "llmops-tracking.h"
#include "tracking.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define IN conformance_instance
#define OPS ((const struct llmops_tracking_ops *)IN->mod->desc->ops)

static char tag[32]; /* per run of the suite */

/* The name of the op in slot fn (the operations table in the ops struct's order). */
static const char *op_name(llmops_op_fn *fn)
{
    size_t n;
    const struct llmops_op_desc *t = llmops_tracking_op_table(&n);
    for (size_t i = 0; i < n; i++) {
        llmops_op_fn *slot;
        memcpy(&slot, (const char *)OPS + t[i].slot, sizeof slot);
        if (slot == fn)
            return t[i].name;
    }
    ck_abort_msg("no operation of the table has this slot");
    return NULL;
}

/* As the core calls an op: `in` checked against the operations table first, then the module. */
static int call(llmops_op_fn *fn, json_t *in, json_t **out, struct llmops_error *err)
{
    int rc = track_call(NULL, IN, op_name(fn), in, out, err);
    json_decref(in);
    return rc;
}

static json_t *ok(llmops_op_fn *fn, json_t *in)
{
    json_t *out;
    struct llmops_error err;
    ck_assert_msg(call(fn, in, &out, &err) == 0, "failed: %s", err.message);
    ck_assert_msg(!json_object_get(out, "links"), "tracking-pg has no UI: no links");
    return out;
}

static void refused(llmops_op_fn *fn, json_t *in, enum llmops_status code, const char *what)
{
    json_t *out;
    struct llmops_error err;
    int rc = call(fn, in, &out, &err);
    json_decref(out);
    ck_assert_msg(rc == -1 && err.code == code, "%s: rc %d, code %d (%s), not code %d", what, rc,
                  err.code, err.message, code);
}

static const char *id_of(json_t *obj, char *buf, size_t size)
{
    snprintf(buf, size, "%s", json_string_value(json_object_get(obj, "external_id")));
    json_decref(obj);
    return buf;
}

/* An experiment with `runs` runs, each with three points of "loss"; the run ids in runs_out. */
static void fixture(const char *label, char exp[32], int runs, char run_ids[][40])
{
    char name[96], key[64];
    snprintf(name, sizeof name, "tpg-%s-%s", tag, label);
    snprintf(key, sizeof key, "t%s-%s", tag, label);
    id_of(ok(OPS->create_experiment, json_pack("{s:s,s:s}", "idempotency_key", key, "name", name)),
          exp, 32);
    for (int i = 0; i < runs; i++) {
        snprintf(key, sizeof key, "t%s-%s-%d", tag, label, i);
        id_of(
            ok(OPS->create_run, json_pack("{s:s,s:s,s:I}", "idempotency_key", key, "experiment_id",
                                          exp, "start_time_ms", (json_int_t)1700000000000 + i)),
            run_ids[i], 40);
        json_decref(ok(OPS->log_batch,
                       json_pack("{s:s,s:[{s:s,s:f,s:I,s:I},{s:s,s:s,s:I,s:I},{s:s,s:s,s:I,s:I}]}",
                                 "external_id", run_ids[i], "metrics", "key", "loss", "value", 0.5,
                                 "timestamp_ms", (json_int_t)1, "step", (json_int_t)0, "key",
                                 "loss", "value", "NaN", "timestamp_ms", (json_int_t)2, "step",
                                 (json_int_t)1, "key", "loss", "value", "-Infinity", "timestamp_ms",
                                 (json_int_t)3, "step", (json_int_t)2)));
    }
}

START_TEST(test_tokens_belong_to_their_search)
{
    char exp[32], runs[3][40];
    fixture("tokens", exp, 3, runs);

    /* run searches */
    json_t *first =
        ok(OPS->search_runs, json_pack("{s:[s],s:i}", "experiment_ids", exp, "max_results", 1));
    const char *t = json_string_value(json_object_get(first, "next_page_token"));
    ck_assert_ptr_nonnull(t);
    char token[256], altered[256];
    snprintf(token, sizeof token, "%s", t);
    json_decref(first);
    json_decref(ok(OPS->search_runs, json_pack("{s:[s],s:i,s:s}", "experiment_ids", exp,
                                               "max_results", 2, "page_token", token)));
    snprintf(altered, sizeof altered, "%s", token);
    altered[strlen(altered) - 1] = altered[strlen(altered) - 1] == '0' ? '1' : '0';
    refused(OPS->search_runs,
            json_pack("{s:[s],s:i,s:s}", "experiment_ids", exp, "max_results", 1, "page_token",
                      altered),
            LLMOPS_ERR_INVALID, "an altered token");
    refused(OPS->search_runs,
            json_pack("{s:[s],s:i,s:s,s:s}", "experiment_ids", exp, "max_results", 1, "lifecycle",
                      "all", "page_token", token),
            LLMOPS_ERR_INVALID, "a token of another search");
    refused(OPS->search_runs,
            json_pack("{s:[s],s:i,s:s}", "experiment_ids", exp, "max_results", 1, "page_token",
                      "r1.5.0000000000000000"),
            LLMOPS_ERR_INVALID, "a made-up token");

    /* histories */
    json_t *h = ok(OPS->get_metric_history, json_pack("{s:s,s:s,s:i}", "external_id", runs[0],
                                                      "key", "loss", "max_results", 1));
    t = json_string_value(json_object_get(h, "next_page_token"));
    ck_assert_ptr_nonnull(t);
    snprintf(token, sizeof token, "%s", t);
    json_decref(h);
    refused(OPS->get_metric_history,
            json_pack("{s:s,s:s,s:i,s:s}", "external_id", runs[1], "key", "loss", "max_results", 1,
                      "page_token", token),
            LLMOPS_ERR_INVALID, "a history token of another run");
    refused(OPS->get_metric_history,
            json_pack("{s:s,s:s,s:i,s:s}", "external_id", runs[0], "key", "acc", "max_results", 1,
                      "page_token", token),
            LLMOPS_ERR_INVALID, "a history token of another key");

    /* experiment searches */
    char prefix[64];
    snprintf(prefix, sizeof prefix, "tpg-%s-", tag);
    fixture("tokens-2", exp, 0, NULL);
    json_t *e = ok(OPS->search_experiments,
                   json_pack("{s:s,s:i}", "name_prefix", prefix, "max_results", 1));
    t = json_string_value(json_object_get(e, "next_page_token"));
    ck_assert_ptr_nonnull(t);
    snprintf(token, sizeof token, "%s", t);
    json_decref(e);
    refused(
        OPS->search_experiments,
        json_pack("{s:s,s:i,s:s}", "name_prefix", "tpg-", "max_results", 1, "page_token", token),
        LLMOPS_ERR_INVALID, "an experiment token of another search");
    refused(OPS->get_metric_history,
            json_pack("{s:s,s:s,s:i,s:s}", "external_id", runs[0], "key", "loss", "max_results", 1,
                      "page_token", token),
            LLMOPS_ERR_INVALID, "an experiment token given to a history");
}
END_TEST

START_TEST(test_limits_are_refused)
{
    char exp[32], runs[1][40];
    fixture("limits", exp, 1, runs);
    json_t *many = json_array(), *params = json_object(), *tags = json_object();
    for (int i = 0; i <= LLMOPS_TRACKING_BATCH_MAX_METRICS; i++)
        json_array_append_new(
            many, json_pack("{s:s,s:i,s:i}", "key", "m", "value", i, "timestamp_ms", i));
    refused(OPS->log_batch, json_pack("{s:s,s:O}", "external_id", runs[0], "metrics", many),
            LLMOPS_ERR_INVALID, "1001 metrics");
    char k[16];
    for (int i = 0; i <= LLMOPS_TRACKING_BATCH_MAX_PARAMS; i++) {
        snprintf(k, sizeof k, "p%d", i);
        json_object_set_new(params, k, json_string("v"));
        snprintf(k, sizeof k, "t%d", i);
        json_object_set_new(tags, k, json_string("v"));
    }
    refused(OPS->log_batch, json_pack("{s:s,s:O}", "external_id", runs[0], "params", params),
            LLMOPS_ERR_INVALID, "101 params");
    refused(OPS->log_batch, json_pack("{s:s,s:O}", "external_id", runs[0], "tags", tags),
            LLMOPS_ERR_INVALID, "101 tags");
    /* 1001 entries, each kind within its own limit */
    json_t *some = json_array();
    for (int i = 0; i < LLMOPS_TRACKING_BATCH_MAX_ENTRIES + 1 - LLMOPS_TRACKING_BATCH_MAX_PARAMS;
         i++)
        json_array_append(some, json_array_get(many, (size_t)i));
    json_object_del(params, "p0");
    refused(OPS->log_batch,
            json_pack("{s:s,s:o,s:O}", "external_id", runs[0], "metrics", some, "params", params),
            LLMOPS_ERR_INVALID, "1001 entries");
    char longer[LLMOPS_TRACKING_PARAM_VALUE_MAX + 2];
    memset(longer, 'x', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    refused(OPS->log_batch,
            json_pack("{s:s,s:{s:s}}", "external_id", runs[0], "params", "p", longer),
            LLMOPS_ERR_INVALID, "a param value of 6001 bytes");
    longer[LLMOPS_TRACKING_TAG_VALUE_MAX + 1] = '\0';
    refused(OPS->log_batch, json_pack("{s:s,s:{s:s}}", "external_id", runs[0], "tags", "t", longer),
            LLMOPS_ERR_INVALID, "a tag value of 5001 bytes");
    longer[LLMOPS_TRACKING_KEY_MAX + 1] = '\0';
    refused(OPS->log_batch, json_pack("{s:s,s:{s:s}}", "external_id", runs[0], "tags", longer, "v"),
            LLMOPS_ERR_INVALID, "a key of 251 bytes");
    refused(
        OPS->log_batch,
        json_pack("{s:s,s:{s:s}}", "external_id", runs[0], "tags", LLMOPS_TRACKING_KEY_TAG, "x"),
        LLMOPS_ERR_INVALID, "the idempotency tag");
    refused(OPS->log_batch,
            json_pack("{s:s,s:[{s:s,s:s,s:i}]}", "external_id", runs[0], "metrics", "key", "m",
                      "value", "nan", "timestamp_ms", 1),
            LLMOPS_ERR_INVALID, "a value that is not a number or NaN/Infinity/-Infinity");
    refused(OPS->create_run,
            json_pack("{s:s,s:s,s:I}", "idempotency_key", "-bad-", "experiment_id", exp,
                      "start_time_ms", (json_int_t)1),
            LLMOPS_ERR_INVALID, "an idempotency key of the wrong shape");
    refused(OPS->search_runs, json_pack("{s:[s],s:i}", "experiment_ids", exp, "max_results", 1001),
            LLMOPS_ERR_INVALID, "max_results 1001");
    refused(OPS->search_runs,
            json_pack("{s:[s],s:i,s:[{s:s,s:s,s:s,s:s}]}", "experiment_ids", exp, "max_results", 1,
                      "filter", "field", "metric", "key", "loss", "op", "LIKE", "value", "x"),
            LLMOPS_ERR_INVALID, "LIKE on a metric");
    /* nothing of the refused batches was written */
    json_t *run = ok(OPS->get_run, json_pack("{s:s}", "external_id", runs[0]));
    ck_assert_int_eq(json_object_size(json_object_get(run, "params")), 0);
    ck_assert_int_eq(json_object_size(json_object_get(run, "tags")), 0);
    json_decref(run);
    json_decref(many);
    json_decref(params);
    json_decref(tags);
}
END_TEST

START_TEST(test_values_are_ieee_doubles)
{
    char exp[32], runs[1][40];
    fixture("ieee", exp, 1, runs);
    const char *p[] = {runs[0]};
    struct llmops_error err = {.size = sizeof err};
    PGresult *r =
        IN->host.db_exec(&IN->host,
                         "SELECT count(*) FILTER (WHERE value = 'NaN'::float8),"
                         " count(*) FILTER (WHERE value = '-Infinity'::float8),"
                         " count(*) FILTER (WHERE value = 0.5::float8), pg_typeof(min(value))::text"
                         " FROM tracking_pg_metrics WHERE run_id = $1 AND key = 'loss'",
                         1, p, &err);
    ck_assert_msg(r != NULL, "%s", err.message);
    ck_assert_str_eq(PQgetvalue(r, 0, 0), "1");
    ck_assert_str_eq(PQgetvalue(r, 0, 1), "1");
    ck_assert_str_eq(PQgetvalue(r, 0, 2), "1");
    ck_assert_str_eq(PQgetvalue(r, 0, 3), "double precision");
    IN->host.db_clear(r);
    /* the latest point is the highest step's */
    json_t *run = ok(OPS->get_run, json_pack("{s:s}", "external_id", runs[0]));
    json_t *m = json_array_get(json_object_get(run, "metrics"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(m, "value")), "-Infinity");
    json_decref(run);
}
END_TEST

START_TEST(test_deleting_what_never_was)
{
    json_t *out =
        ok(OPS->delete_run, json_pack("{s:s}", "external_id", "0123456789abcdef0123456789abcdef"));
    ck_assert(json_is_false(json_object_get(out, "deleted")));
    json_decref(out);
    out = ok(OPS->delete_experiment, json_pack("{s:s}", "external_id", "not-an-id"));
    ck_assert(json_is_false(json_object_get(out, "deleted")));
    json_decref(out);
}
END_TEST

Suite *conformance_tracking_pg(void)
{
    snprintf(tag, sizeof tag, "%lx%lx", (unsigned long)time(NULL), (unsigned long)getpid());
    Suite *s = suite_create("tracking-pg");
    TCase *tc = tcase_create("Core");
    tcase_add_test(tc, test_tokens_belong_to_their_search);
    tcase_add_test(tc, test_values_are_ieee_doubles);
    tcase_add_test(tc, test_deleting_what_never_was);
    suite_add_tcase(s, tc);
    TCase *limits = tcase_create("Limits");
    tcase_add_test(limits, test_limits_are_refused);
    suite_add_tcase(s, limits);
    return s;
}
