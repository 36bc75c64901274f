/* The serving behaviour suite (llmops-serving.h), the same for every serving module: deploy
 * answers "progressing" at once and a repeat with the same key finds the first object;
 * get, list (paged), find_by_idempotency_key; the deployment reaches "ready" under polling;
 * update, canaries the way the instance's features say (and UNSUPPORTED naming the feature
 * for the other way), rollback, promote, delete twice. Runs against a fake of the tool. */
#include "conformance.h"
#include "llmops-serving.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const struct llmops_serving_ops *ops(void)
{
    return conformance_instance->mod->desc->ops;
}

static void *st(void)
{
    return conformance_instance->state;
}

/* Calls op; returns its answer (asserting success when want is LLMOPS_OK) or NULL with *err. */
static json_t *call(llmops_op_fn *op, json_t *in, enum llmops_status want, struct llmops_error *e)
{
    json_t *out = NULL;
    memset(e, 0, sizeof *e);
    e->size = sizeof *e;
    int rc = op(st(), in, &out, e);
    json_decref(in);
    if (want == LLMOPS_OK) {
        ck_assert_msg(rc == 0, "expected success, got code %d: %s", e->code, e->message);
        ck_assert_ptr_nonnull(out);
    } else {
        ck_assert_msg(rc == -1, "expected code %d, got success", want);
        ck_assert_msg(e->code == want, "expected code %d, got %d: %s", want, e->code, e->message);
        ck_assert_ptr_null(out);
    }
    return out;
}

static int has_feature(const char *name)
{
    json_t *caps = NULL;
    struct llmops_error e = {.size = sizeof e};
    ck_assert_int_eq(conformance_instance->mod->desc->capabilities(st(), &caps, &e), 0);
    json_t *v;
    size_t i;
    int found = 0;
    json_array_foreach(json_object_get(caps, "features"), i, v) found |=
        strcmp(json_string_value(v), name) == 0;
    json_decref(caps);
    return found;
}

static void unique(char *buf, size_t size, const char *prefix)
{
    static int n;
    snprintf(buf, size, "%s-%d-%d", prefix, (int)getpid() % 100000, n++);
}

static json_t *spec(const char *name, const char *key)
{
    return json_pack("{s:s,s:s,s:{s:s,s:s},s:{s:i,s:i},s:{s:s,s:s}}", "idempotency_key", key,
                     "name", name, "model", "uri", "hf://org/model-a", "format", "huggingface",
                     "replicas", "min", 1, "max", 1, "resources", "cpu", "1", "memory", "1Gi");
}

static json_t *get(const char *id)
{
    struct llmops_error e;
    return call(ops()->get_deployment, json_pack("{s:s}", "external_id", id), LLMOPS_OK, &e);
}

/* Polls get_deployment until `member` of the answer (state, or canary.state) is `want`. */
static json_t *wait_state(const char *id, const char *want)
{
    for (int i = 0; i < 60; i++) {
        json_t *d = get(id);
        const char *s = json_string_value(json_object_get(d, "state"));
        if (s && strcmp(s, want) == 0)
            return d;
        json_decref(d);
        usleep(100 * 1000);
    }
    ck_abort_msg("%s did not become %s", id, want);
    return NULL;
}

static void delete_(const char *id, int want_deleted)
{
    struct llmops_error e;
    json_t *out =
        call(ops()->delete_deployment, json_pack("{s:s}", "external_id", id), LLMOPS_OK, &e);
    ck_assert_int_eq(json_is_true(json_object_get(out, "deleted")), want_deleted);
    json_decref(out);
}

START_TEST(test_deploy_get_list_find_delete)
{
    char name[40], key[40];
    unique(name, sizeof name, "conf");
    unique(key, sizeof key, "key");
    struct llmops_error e;
    json_t *d = call(ops()->deploy, spec(name, key), LLMOPS_OK, &e);
    ck_assert(json_is_true(json_object_get(d, "created")));
    ck_assert_str_eq(json_string_value(json_object_get(d, "state")), "progressing");
    const char *id0 = json_string_value(json_object_get(d, "external_id"));
    ck_assert_ptr_nonnull(id0);
    char id[256];
    snprintf(id, sizeof id, "%s", id0);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(d, "model"), "uri")),
                     "hf://org/model-a");
    ck_assert_int_eq(json_integer_value(json_object_get(
                         json_object_get(json_object_get(d, "traffic"), "stable"), "percent")),
                     100);
    json_decref(d);

    /* The same key again: the first object, not a second one. */
    d = call(ops()->deploy, spec(name, key), LLMOPS_OK, &e);
    ck_assert(json_is_false(json_object_get(d, "created")));
    ck_assert_str_eq(json_string_value(json_object_get(d, "external_id")), id);
    json_decref(d);

    /* The same name under another key is someone else's. */
    char other[40];
    unique(other, sizeof other, "key");
    call(ops()->deploy, spec(name, other), LLMOPS_ERR_CONFLICT, &e);

    d = call(ops()->find_by_idempotency_key, json_pack("{s:s}", "idempotency_key", key), LLMOPS_OK,
             &e);
    ck_assert_str_eq(json_string_value(json_object_get(d, "external_id")), id);
    json_decref(d);
    call(ops()->find_by_idempotency_key, json_pack("{s:s}", "idempotency_key", other),
         LLMOPS_ERR_NOT_FOUND, &e);
    call(ops()->get_deployment, json_pack("{s:s}", "external_id", "no-such-deployment"),
         LLMOPS_ERR_NOT_FOUND, &e);

    d = wait_state(id, "ready");
    ck_assert_int_ge(json_integer_value(json_object_get(d, "ready_replicas")), 1);
    json_decref(d);

    /* A list, one a page, holds it. */
    int found = 0, pages = 0;
    char token[2100] = "";
    do {
        json_t *in = json_pack("{s:i}", "max_results", 1);
        if (token[0])
            json_object_set_new(in, "page_token", json_string(token));
        json_t *l = call(ops()->list_deployments, in, LLMOPS_OK, &e);
        json_t *v;
        size_t i;
        ck_assert_int_le(json_array_size(json_object_get(l, "deployments")), 1);
        json_array_foreach(json_object_get(l, "deployments"), i, v) found |=
            strcmp(json_string_value(json_object_get(v, "external_id")), id) == 0;
        const char *next = json_string_value(json_object_get(l, "next_page_token"));
        snprintf(token, sizeof token, "%s", next ? next : "");
        json_decref(l);
    } while (token[0] && ++pages < 50);
    ck_assert_msg(found, "list_deployments does not list %s", id);

    /* A scale: progressing again, then ready. */
    d = call(ops()->update_deployment,
             json_pack("{s:s,s:{s:i,s:i}}", "external_id", id, "replicas", "min", 2, "max", 2),
             LLMOPS_OK, &e);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(d, "replicas"), "max")), 2);
    json_decref(d);
    json_decref(wait_state(id, "ready"));

    call(ops()->update_deployment, json_pack("{s:s}", "external_id", id), LLMOPS_ERR_INVALID, &e);
    call(ops()->update_deployment,
         json_pack("{s:s,s:{s:i,s:i}}", "external_id", "no-such-deployment", "replicas", "min", 1,
                   "max", 1),
         LLMOPS_ERR_NOT_FOUND, &e);

    delete_(id, 1);
    delete_(id, 0);
}
END_TEST

START_TEST(test_bad_input_is_refused_by_name)
{
    char name[40];
    unique(name, sizeof name, "bad");
    struct llmops_error e;
    json_t *in = spec("Not_A_Label", "k1");
    call(ops()->deploy, in, LLMOPS_ERR_INVALID, &e);
    ck_assert_ptr_nonnull(strstr(e.message, "name"));
    in = spec(name, "k1");
    json_object_set_new(in, "replicas", json_pack("{s:i,s:i}", "min", 3, "max", 2));
    call(ops()->deploy, in, LLMOPS_ERR_INVALID, &e);
    ck_assert_ptr_nonnull(strstr(e.message, "replicas"));
    in = spec(name, "k1");
    json_object_set_new(in, "model", json_pack("{s:s,s:s}", "uri", "ftp://x/y", "format", "onnx"));
    call(ops()->deploy, in, LLMOPS_ERR_UNSUPPORTED, &e);
    ck_assert_ptr_nonnull(strstr(e.message, "model.uri"));
    in = spec(name, "k1");
    json_object_set_new(in, "replicas", json_pack("{s:i,s:i}", "min", 1, "max", 3));
    json_object_set_new(in, "autoscaling", json_pack("{s:s,s:i}", "metric", "bogus", "target", 5));
    call(ops()->deploy, in, LLMOPS_ERR_UNSUPPORTED, &e);
    ck_assert_ptr_nonnull(strstr(e.message, "autoscaling"));
    if (!has_feature("scale_to_zero")) {
        in = spec(name, "k1");
        json_object_set_new(in, "replicas", json_pack("{s:i,s:i}", "min", 0, "max", 1));
        call(ops()->deploy, in, LLMOPS_ERR_UNSUPPORTED, &e);
        ck_assert_ptr_nonnull(strstr(e.message, "scale_to_zero"));
    }
}
END_TEST

START_TEST(test_canary_as_the_features_say)
{
    struct llmops_error e;
    char name[40], key[40];
    unique(name, sizeof name, "can");
    unique(key, sizeof key, "key");
    json_t *d = call(ops()->deploy, spec(name, key), LLMOPS_OK, &e);
    char id[256];
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(d, "external_id")));
    json_decref(d);
    json_decref(wait_state(id, "ready"));
    int percent = has_feature("canary_percent"), replicas = has_feature("canary_by_replicas");
    if (!has_feature("canary")) {
        ck_assert(!percent && !replicas);
        if (ops()->create_canary) {
            call(ops()->create_canary,
                 json_pack("{s:s,s:{s:s,s:s},s:i}", "external_id", id, "model", "uri",
                           "hf://org/model-b", "format", "huggingface", "traffic_percent", 10),
                 LLMOPS_ERR_UNSUPPORTED, &e);
            ck_assert_ptr_nonnull(strstr(e.message, "canary"));
        }
        delete_(id, 1);
        return;
    }
    ck_assert_msg(percent != replicas, "exactly one of canary_percent and canary_by_replicas");
    ck_assert_ptr_nonnull(ops()->create_canary);
    /* The other way of splitting is refused by name, never approximated. */
    json_t *in = json_pack("{s:s,s:{s:s,s:s}}", "external_id", id, "model", "uri",
                           "hf://org/model-b", "format", "huggingface");
    json_object_set_new(in, percent ? "canary_replicas" : "traffic_percent", json_integer(1));
    call(ops()->create_canary, in, LLMOPS_ERR_UNSUPPORTED, &e);
    ck_assert_ptr_nonnull(strstr(e.message, percent ? "canary_by_replicas" : "canary_percent"));

    in = json_pack("{s:s,s:{s:s,s:s}}", "external_id", id, "model", "uri", "hf://org/model-b",
                   "format", "huggingface");
    json_object_set_new(in, percent ? "traffic_percent" : "canary_replicas",
                        json_integer(percent ? 10 : 1));
    d = call(ops()->create_canary, in, LLMOPS_OK, &e);
    json_t *canary = json_object_get(d, "canary");
    ck_assert_ptr_nonnull(canary);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(canary, "model"), "uri")),
                     "hf://org/model-b");
    /* The stable spec is still the old model. */
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(d, "model"), "uri")),
                     "hf://org/model-a");
    if (percent)
        ck_assert_int_eq(json_integer_value(json_object_get(
                             json_object_get(json_object_get(d, "traffic"), "canary"), "percent")),
                         10);
    json_decref(d);
    /* A second canary is a conflict. */
    in = json_pack("{s:s,s:{s:s,s:s}}", "external_id", id, "model", "uri", "hf://org/model-c",
                   "format", "huggingface");
    json_object_set_new(in, percent ? "traffic_percent" : "canary_replicas",
                        json_integer(percent ? 20 : 1));
    call(ops()->create_canary, in, LLMOPS_ERR_CONFLICT, &e);

    in = json_pack("{s:s}", "external_id", id);
    json_object_set_new(in, percent ? "traffic_percent" : "canary_replicas",
                        json_integer(percent ? 30 : 2));
    d = call(ops()->set_canary_traffic, in, LLMOPS_OK, &e);
    if (percent)
        ck_assert_int_eq(json_integer_value(json_object_get(
                             json_object_get(json_object_get(d, "traffic"), "canary"), "percent")),
                         30);
    json_decref(d);

    /* Rollback: the canary is gone, the stable model stays, a second rollback is a no-op. */
    d = call(ops()->rollback_canary, json_pack("{s:s,s:s}", "external_id", id, "reason", "test"),
             LLMOPS_OK, &e);
    ck_assert(json_is_true(json_object_get(d, "rolled_back")));
    ck_assert_ptr_null(json_object_get(d, "canary"));
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(d, "model"), "uri")),
                     "hf://org/model-a");
    json_decref(d);
    d = call(ops()->rollback_canary, json_pack("{s:s}", "external_id", id), LLMOPS_OK, &e);
    ck_assert(json_is_false(json_object_get(d, "rolled_back")));
    json_decref(d);
    call(ops()->promote_canary, json_pack("{s:s}", "external_id", id), LLMOPS_ERR_NOT_FOUND, &e);
    json_decref(wait_state(id, "ready"));

    /* Promote: the canary's model becomes the stable spec at 100 %. */
    in = json_pack("{s:s,s:{s:s,s:s}}", "external_id", id, "model", "uri", "hf://org/model-b",
                   "format", "huggingface");
    json_object_set_new(in, percent ? "traffic_percent" : "canary_replicas",
                        json_integer(percent ? 10 : 1));
    json_decref(call(ops()->create_canary, in, LLMOPS_OK, &e));
    d = call(ops()->promote_canary, json_pack("{s:s}", "external_id", id), LLMOPS_OK, &e);
    ck_assert_ptr_null(json_object_get(d, "canary"));
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(d, "model"), "uri")),
                     "hf://org/model-b");
    ck_assert_int_eq(json_integer_value(json_object_get(
                         json_object_get(json_object_get(d, "traffic"), "stable"), "percent")),
                     100);
    json_decref(d);
    json_decref(wait_state(id, "ready"));
    delete_(id, 1);
}
END_TEST

Suite *conformance_serving(void)
{
    Suite *s = suite_create("serving");
    TCase *tc = tcase_create("Core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_deploy_get_list_find_delete);
    tcase_add_test(tc, test_bad_input_is_refused_by_name);
    tcase_add_test(tc, test_canary_as_the_features_say);
    suite_add_tcase(s, tc);
    return s;
}
