/* The category engine's operations tables and their validation: every member type and bound,
 * table-driven (libcheck's tcase_add_loop_test), the member paths of the errors, and the
 * tracking table against the ops struct it describes. */
#include "check_suites.h"
#include "engine.h"
#include "llmops-orchestration.h"
#include "llmops-serving.h"
#include "llmops-tracking.h"
#include "plugin.h"
#include "tracking.h"

#include <stdlib.h>

#include <string.h>

static const char *const colours[] = {"red", "green", NULL};
static const char *const taken[] = {"rsv", NULL};
static const struct llmops_member str3[] = {LLMOPS_STR("", 0, 1, 3)};
static const struct llmops_member point[] = {LLMOPS_STR("key", LLMOPS_M_REQUIRED, 1, 4),
                                             LLMOPS_VALUE("value", LLMOPS_M_REQUIRED),
                                             LLMOPS_INT("step", 0, -5, 5), LLMOPS_END};
static const struct llmops_member point_el[] = {LLMOPS_OBJECT("", 0, point)};
static const struct llmops_member inner[] = {LLMOPS_BOOL("on", LLMOPS_M_REQUIRED), LLMOPS_END};

/* One table with one member of each type. */
static const struct llmops_member all[] = {
    LLMOPS_STR("s", LLMOPS_M_REQUIRED, 2, 4),
    LLMOPS_STR("chars", LLMOPS_M_CHARS, 1, 2),
    LLMOPS_ENUM("colour", 0, colours),
    LLMOPS_INT("i", 0, -3, 10),
    LLMOPS_NUMBER("n", 0, 0, 1),
    LLMOPS_VALUE("v", 0),
    LLMOPS_BOOL("b", 0),
    LLMOPS_IDKEY("key", 0),
    LLMOPS_OBJECT("o", 0, inner),
    LLMOPS_ARRAY("metrics", 0, 0, 2, point_el),
    LLMOPS_ARRAY("names", 0, 1, 2, str3),
    LLMOPS_MAP("tags", 0, 0, 2, 5, str3, taken),
    LLMOPS_ANY("any", 0),
    LLMOPS_END,
};

static const struct {
    const char *json; /* members besides "s": "ab" */
    const char *path; /* NULL: valid */
    const char *says; /* a part of the message */
} cases[] = {
    {"{}", NULL, NULL},
    {"{\"s\":null}", "s", "is required"},
    {"{\"s\":\"a\"}", "s", "2-4 bytes"},
    {"{\"s\":\"abcde\"}", "s", "2-4 bytes"},
    {"{\"s\":7}", "s", "must be a string"},
    {"{\"chars\":\"\xc3\xa9\xc3\xa9\"}", NULL, NULL}, /* 2 characters, 4 bytes */
    {"{\"chars\":\"\xc3\xa9\xc3\xa9x\"}", "chars", "1-2 characters"},
    {"{\"colour\":\"red\"}", NULL, NULL},
    {"{\"colour\":\"blue\"}", "colour", "valid: red, green"},
    {"{\"i\":-3}", NULL, NULL},
    {"{\"i\":10}", NULL, NULL},
    {"{\"i\":11}", "i", "integer -3-10"},
    {"{\"i\":-4}", "i", "integer -3-10"},
    {"{\"i\":1.5}", "i", "must be an integer"},
    {"{\"n\":0.5}", NULL, NULL},
    {"{\"n\":1}", NULL, NULL},
    {"{\"n\":1.01}", "n", "number 0-1"},
    {"{\"n\":\"1\"}", "n", "must be a number"},
    {"{\"v\":\"NaN\"}", NULL, NULL},
    {"{\"v\":\"-Infinity\"}", NULL, NULL},
    {"{\"v\":-2.5}", NULL, NULL},
    {"{\"v\":\"nan\"}", "v", "\"NaN\""},
    {"{\"b\":false}", NULL, NULL},
    {"{\"b\":0}", "b", "true or false"},
    {"{\"key\":\"a-b_c9\"}", NULL, NULL},
    {"{\"key\":\"-ab\"}", "key", "1-63 characters"},
    {"{\"key\":\"ab_\"}", "key", "1-63 characters"},
    {"{\"key\":\"a.b\"}", "key", "1-63 characters"},
    {"{\"key\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}", "key",
     "1-63"},
    {"{\"o\":{\"on\":true}}", NULL, NULL},
    {"{\"o\":{}}", "o.on", "is required"},
    {"{\"o\":{\"on\":true,\"off\":1}}", "o.off", "known: on"},
    {"{\"o\":[]}", "o", "must be an object"},
    {"{\"metrics\":[{\"key\":\"m\",\"value\":1,\"step\":5}]}", NULL, NULL},
    {"{\"metrics\":[{\"key\":\"m\",\"value\":1},{\"key\":\"m\",\"value\":\"x\"}]}",
     "metrics[1].value", "\"NaN\""},
    {"{\"metrics\":[{\"key\":\"m\",\"value\":1,\"step\":6}]}", "metrics[0].step", "-5-5"},
    {"{\"metrics\":[{\"value\":1}]}", "metrics[0].key", "is required"},
    {"{\"metrics\":[1]}", "metrics[0]", "must be an object"},
    {"{\"metrics\":[{\"key\":\"a\",\"value\":1},{\"key\":\"a\",\"value\":1},{\"key\":\"a\","
     "\"value\":1}]}",
     "metrics", "0-2 elements"},
    {"{\"names\":[]}", "names", "1-2 elements"},
    {"{\"names\":[\"abcd\"]}", "names[0]", "1-3 bytes"},
    {"{\"names\":{}}", "names", "must be an array"},
    {"{\"tags\":{\"a\":\"x\",\"b\":\"yyy\"}}", NULL, NULL},
    {"{\"tags\":{\"a\":\"x\",\"b\":\"y\",\"c\":\"z\"}}", "tags", "0-2 entries"},
    {"{\"tags\":{\"a\":\"long\"}}", "tags.a", "1-3 bytes"},
    {"{\"tags\":{\"a\":1}}", "tags.a", "must be a string"},
    {"{\"tags\":{\"toolong\":\"x\"}}", "tags", "key that is not 1-5 bytes"},
    {"{\"tags\":{\"\":\"x\"}}", "tags", "key that is not 1-5 bytes"},
    {"{\"tags\":[]}", "tags", "key: value"},
    {"{\"any\":[1,{\"x\":null}]}", NULL, NULL},
    {"{\"nope\":1}", "nope", "is not a member (known: s, chars, colour"},
    {"{\"s\":\"a\\u0000b\"}", "s", "must not contain NUL"},
    {"{\"key\":\"a\\u0000b\"}", "key", "1-63 characters"},
};

START_TEST(validate_each_type_and_bound)
{
    json_t *in = json_loads(cases[_i].json, JSON_ALLOW_NUL, NULL);
    ck_assert_ptr_nonnull(in);
    if (!json_object_get(in, "s"))
        json_object_set_new(in, "s", json_string("ab"));
    else if (json_is_null(json_object_get(in, "s")))
        json_object_del(in, "s");
    char path[256], msg[512];
    int rc = engine_validate(all, in, path, sizeof path, msg, sizeof msg);
    json_decref(in);
    if (!cases[_i].path) {
        ck_assert_msg(rc == 0, "%s refused: %s", cases[_i].json, msg);
        return;
    }
    ck_assert_msg(rc == -1, "%s accepted", cases[_i].json);
    ck_assert_str_eq(path, cases[_i].path);
    ck_assert_msg(strncmp(msg, path, strlen(path)) == 0, "the message names the path: %s", msg);
    ck_assert_msg(strstr(msg, cases[_i].says), "'%s' does not say '%s'", msg, cases[_i].says);
}
END_TEST

START_TEST(validate_reserved_and_not_an_object)
{
    char path[256], msg[512];
    json_t *in = json_pack("{s:s,s:{s:s}}", "s", "ab", "tags", "rsv", "x");
    ck_assert_int_eq(engine_validate(all, in, path, sizeof path, msg, sizeof msg), -1);
    ck_assert_str_eq(path, "tags.rsv");
    ck_assert_ptr_nonnull(strstr(msg, "reserved"));
    json_decref(in);
    /* a key with a NUL (jansson's parser refuses one; a program can make it) */
    in = json_pack("{s:s,s:{}}", "s", "ab", "tags");
    json_object_setn_new(json_object_get(in, "tags"), "a\0b", 3, json_string("x"));
    ck_assert_int_eq(engine_validate(all, in, path, sizeof path, msg, sizeof msg), -1);
    ck_assert_str_eq(path, "tags");
    ck_assert_ptr_nonnull(strstr(msg, "key with a NUL"));
    json_decref(in);
    in = json_array();
    ck_assert_int_eq(engine_validate(all, in, path, sizeof path, msg, sizeof msg), -1);
    ck_assert_str_eq(msg, "the input must be an object");
    json_decref(in);
}
END_TEST

/* The tracking table: one entry per op of LLMOPS_TRACKING_OPS, in order, with its slot and
 * required flag, every create idempotent, and the inputs the core sends accepted. */
START_TEST(tracking_table_matches_the_ops_struct)
{
    size_t n;
    const struct llmops_op_desc *t = engine_ops(LLMOPS_CATEGORY_EXPERIMENT_TRACKING, &n);
    static const struct {
        const char *name;
        size_t slot;
        int required;
    } want[] = {
#define WANT_(m, r) {#m, offsetof(struct llmops_tracking_ops, m), r},
        LLMOPS_TRACKING_OPS(WANT_)
#undef WANT_
    };
    ck_assert_uint_eq(n, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < n; i++) {
        ck_assert_str_eq(t[i].name, want[i].name);
        ck_assert_uint_eq(t[i].slot, want[i].slot);
        ck_assert_int_eq(t[i].required, want[i].required);
        ck_assert_ptr_nonnull(t[i].in);
        if (t[i].kind == LLMOPS_OP_CREATE)
            ck_assert(t[i].flags & LLMOPS_OP_IDEMPOTENT);
        ck_assert_ptr_eq(engine_op(LLMOPS_CATEGORY_EXPERIMENT_TRACKING, t[i].name), &t[i]);
    }
    ck_assert_ptr_null(engine_op(LLMOPS_CATEGORY_EXPERIMENT_TRACKING, "nope"));
    ck_assert_ptr_null(engine_ops(LLMOPS_CATEGORY_ORCHESTRATION, &n));
    ck_assert_uint_eq(n, 0);

    char path[256], msg[512];
    const struct llmops_op_desc *lb = engine_op(LLMOPS_CATEGORY_EXPERIMENT_TRACKING, "log_batch");
    json_t *in = json_pack("{s:s,s:[{s:s,s:s,s:I,s:i}],s:{s:s},s:{}}", "external_id", "r1",
                           "metrics", "key", "loss", "value", "NaN", "timestamp_ms",
                           (json_int_t)1700000000000, "step", 3, "params", "lr", "0.1", "tags");
    ck_assert_msg(engine_validate(lb->in, in, path, sizeof path, msg, sizeof msg) == 0, "%s", msg);
    json_object_set_new(json_object_get(in, "tags"), LLMOPS_TRACKING_KEY_TAG, json_string("k"));
    ck_assert_int_eq(engine_validate(lb->in, in, path, sizeof path, msg, sizeof msg), -1);
    ck_assert_str_eq(path, "tags.llmops.idempotency_key");
    json_decref(in);
    const struct llmops_op_desc *ur = engine_op(LLMOPS_CATEGORY_EXPERIMENT_TRACKING, "update_run");
    in = json_pack("{s:s,s:s}", "external_id", "r1", "status", "SCHEDULED");
    ck_assert_int_eq(engine_validate(ur->in, in, path, sizeof path, msg, sizeof msg), -1);
    ck_assert_str_eq(path, "status");
    json_decref(in);
}
END_TEST

/* The serving table: one entry per op of LLMOPS_SERVING_OPS, in order, with its slot and
 * required flag; the inputs the core sends accepted, the shapes it must not send refused. */
START_TEST(serving_table_matches_the_ops_struct)
{
    size_t n;
    const struct llmops_op_desc *t = engine_ops(LLMOPS_CATEGORY_SERVING, &n);
    static const struct {
        const char *name;
        size_t slot;
        int required;
    } want[] = {
#define WANT_(m, r) {#m, offsetof(struct llmops_serving_ops, m), r},
        LLMOPS_SERVING_OPS(WANT_)
#undef WANT_
    };
    ck_assert_ptr_nonnull(t);
    ck_assert_uint_eq(n, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < n; i++) {
        ck_assert_str_eq(t[i].name, want[i].name);
        ck_assert_uint_eq(t[i].slot, want[i].slot);
        ck_assert_int_eq(t[i].required, want[i].required);
        ck_assert_ptr_nonnull(t[i].in);
        if (t[i].kind == LLMOPS_OP_CREATE)
            ck_assert(t[i].flags & LLMOPS_OP_IDEMPOTENT);
        ck_assert_ptr_eq(engine_op(LLMOPS_CATEGORY_SERVING, t[i].name), &t[i]);
    }
    ck_assert(engine_op(LLMOPS_CATEGORY_SERVING, "deploy")->flags & LLMOPS_OP_OUTBOX);
    char path[256], msg[512];
    const struct llmops_op_desc *d = engine_op(LLMOPS_CATEGORY_SERVING, "deploy");
    json_t *in = json_pack(
        "{s:s,s:s,s:{s:s,s:s},s:s,s:[s],s:{s:s},s:{s:s,s:s,s:{s:s,s:i,s:{s:s},s:s}},"
        "s:{s:i,s:i},s:{s:s,s:i}}",
        "idempotency_key", "dep_0123", "name", "llama", "model", "uri", "hf://o/m", "format",
        "huggingface", "runtime", "vllm", "args", "--x", "env", "K", "V", "resources", "cpu", "4",
        "memory", "16Gi", "gpu", "resource_name", "nvidia.com/mig-1g.10gb", "count", 1,
        "node_selector", "k", "v", "type", "a100-mig", "replicas", "min", 1, "max", 2,
        "autoscaling", "metric", "concurrency", "target", 10);
    ck_assert_msg(engine_validate(d->in, in, path, sizeof path, msg, sizeof msg) == 0, "%s", msg);
    json_object_set_new(json_object_get(in, "replicas"), "max", json_integer(101));
    ck_assert_int_eq(engine_validate(d->in, in, path, sizeof path, msg, sizeof msg), -1);
    ck_assert_str_eq(path, "replicas.max");
    json_object_set_new(json_object_get(in, "replicas"), "max", json_integer(2));
    json_object_set_new(in, "args", json_pack("[i]", 4));
    ck_assert_int_eq(engine_validate(d->in, in, path, sizeof path, msg, sizeof msg), -1);
    ck_assert_str_eq(path, "args[0]");
    json_object_del(in, "args");
    json_object_set_new(in, "idempotency_key", json_string("-bad"));
    ck_assert_int_eq(engine_validate(d->in, in, path, sizeof path, msg, sizeof msg), -1);
    ck_assert_str_eq(path, "idempotency_key");
    json_decref(in);
    const struct llmops_op_desc *c = engine_op(LLMOPS_CATEGORY_SERVING, "create_canary");
    in = json_pack("{s:s,s:i}", "external_id", "llama", "traffic_percent", 100);
    ck_assert_int_eq(engine_validate(c->in, in, path, sizeof path, msg, sizeof msg), -1);
    ck_assert_str_eq(path, "traffic_percent");
    json_decref(in);
    const struct llmops_op_desc *st = engine_op(LLMOPS_CATEGORY_SERVING, "set_canary_traffic");
    in = json_pack("{s:s,s:i}", "external_id", "llama", "traffic_percent", 100);
    ck_assert_msg(engine_validate(st->in, in, path, sizeof path, msg, sizeof msg) == 0, "%s", msg);
    json_decref(in);
    const struct llmops_op_desc *u = engine_op(LLMOPS_CATEGORY_SERVING, "update_deployment");
    in = json_pack("{s:s,s:n}", "external_id", "llama", "autoscaling"); /* null: removed */
    ck_assert_msg(engine_validate(u->in, in, path, sizeof path, msg, sizeof msg) == 0, "%s", msg);
    json_decref(in);
}
END_TEST

/* The cursor of a search across instances: what encode gives, decode gives back; anything
 * else a client may send is refused. */
START_TEST(search_cursor_round_trip_and_refusals)
{
    json_t *st =
        json_pack("{s:[s,i],s:[n,i],s:i}", "mlflow", "tok:en", 3, "tracking-pg", 0, "other", 0);
    char *c = track_cursor_encode(st);
    ck_assert_ptr_nonnull(c);
    ck_assert(strncmp(c, "rs1.", 4) == 0);
    json_t *back = track_cursor_decode(c);
    ck_assert(json_equal(back, st));
    json_decref(back);
    static const char *const bad[] = {"",
                                      "rs1.",
                                      "rs1.7",
                                      "rs1.zz",
                                      "rs2.7b7d",
                                      "7b7d",
                                      "rs1.5b5d" /* [] */,
                                      "rs1.7b" /* { */,
                                      "rs1.7B7D"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(track_cursor_decode(bad[i]) == NULL, "'%s' decoded", bad[i]);
    ck_assert_ptr_null(track_cursor_decode(NULL));
    free(c);
    json_decref(st);
}
END_TEST

static int get_run_calls;
static int fake_get_run(void *state, json_t *in, json_t **out, struct llmops_error *err)
{
    (void)state;
    (void)err;
    get_run_calls++;
    *out = json_pack("{s:O}", "echo", in);
    return 0;
}

/* A category without an operations table (orchestration) still takes the one call path: the op is
 * found by member name, called without validation, and refused when the capabilities do not
 * list it (the generic deliverer's and the watches' calls). */
START_TEST(untabled_category_calls_by_name_and_gates)
{
    struct llmops_orchestration_ops ops = {.size = sizeof ops, .get_run = fake_get_run};
    struct llmops_plugin desc = {.size = sizeof desc,
                                 .name = "fake",
                                 .category = LLMOPS_CATEGORY_ORCHESTRATION,
                                 .ops = &ops};
    struct module mod = {.name = "fake", .desc = &desc};
    struct instance in = {.name = "fake-1", .mod = &mod, .initialised = 1, .caps_loaded = 1};
    in.caps = json_pack("{s:[s]}", "operations", "get_run");
    json_t *input = json_pack("{s:i}", "anything", 1), *out = NULL;
    struct llmops_error err;
    get_run_calls = 0;

    ck_assert_int_eq(
        engine_call_named(NULL, &in, LLMOPS_CATEGORY_ORCHESTRATION, "get_run", input, &out, &err),
        0);
    ck_assert_int_eq(get_run_calls, 1);
    ck_assert_ptr_eq(json_object_get(out, "echo"), input);
    json_decref(out);
    ck_assert_int_eq(engine_call_any(NULL, &in, "get_run", input, &out, &err), 0);
    ck_assert_int_eq(get_run_calls, 2);
    json_decref(out);

    ck_assert_int_eq(engine_call_any(NULL, &in, "submit_run", input, &out, &err), -1);
    ck_assert_int_eq(err.code, LLMOPS_ERR_UNSUPPORTED);
    ck_assert_ptr_null(out);
    ck_assert_int_eq(engine_call_any(NULL, &in, "no_such_op", input, &out, &err), -1);
    ck_assert_int_eq(err.code, LLMOPS_ERR_UNSUPPORTED);

    json_decref(in.caps);
    in.caps = json_pack("{s:[s]}", "operations", "submit_run");
    ck_assert_int_eq(engine_call_any(NULL, &in, "get_run", input, &out, &err), -1);
    ck_assert_int_eq(err.code, LLMOPS_ERR_UNSUPPORTED);
    ck_assert_msg(strstr(err.message, "capabilities do not list it"), "%s", err.message);
    ck_assert_int_eq(get_run_calls, 2);
    json_decref(in.caps);
    json_decref(input);

    /* serving has a table now: the same call by name is validated, and refused by member */
    struct llmops_serving_ops sops = {.size = sizeof sops, .predict = fake_get_run};
    struct llmops_plugin sdesc = {
        .size = sizeof sdesc, .name = "fake", .category = LLMOPS_CATEGORY_SERVING, .ops = &sops};
    struct module smod = {.name = "fake", .desc = &sdesc};
    struct instance sin = {.name = "fake-2", .mod = &smod, .initialised = 1, .caps_loaded = 1};
    sin.caps = json_pack("{s:[s]}", "operations", "predict");
    input = json_pack("{s:i}", "anything", 1);
    ck_assert_int_eq(engine_call_any(NULL, &sin, "predict", input, &out, &err), -1);
    ck_assert_int_eq(err.code, LLMOPS_ERR_INVALID);
    ck_assert_msg(strstr(err.message, "anything is not a member"), "%s", err.message);
    ck_assert_int_eq(get_run_calls, 2);
    json_decref(input);
    json_decref(sin.caps);
}
END_TEST

Suite *make_engine_suite(void)
{
    Suite *s = suite_create("engine");
    TCase *tc = tcase_create("Core");
    tcase_add_loop_test(tc, validate_each_type_and_bound, 0, (int)(sizeof cases / sizeof cases[0]));
    tcase_add_test(tc, validate_reserved_and_not_an_object);
    tcase_add_test(tc, tracking_table_matches_the_ops_struct);
    tcase_add_test(tc, serving_table_matches_the_ops_struct);
    tcase_add_test(tc, search_cursor_round_trip_and_refusals);
    tcase_add_test(tc, untabled_category_calls_by_name_and_gates);
    suite_add_tcase(s, tc);
    return s;
}
