/* The serving behaviour suite (llmops-serving.h), the same for every serving module: deploy
 * answers "progressing" at once and a repeat with the same key finds the first object;
 * get, list (paged), find_by_idempotency_key; the deployment reaches "ready" under polling;
 * update, canaries the way the instance's features say (and UNSUPPORTED naming the feature
 * for the other way), rollback, promote, delete twice. Runs against a fake of the tool.
 *
 * Every behaviour case calls the module the way llm-opsd does: engine_call_named, so the
 * input is checked against llmops_serving_op_table and the features gate refuses what the
 * instance's capabilities do not list before the module runs. What the table refuses the
 * suite asserts as the engine's refusal ("Engine" cases), and hands the same bad input to the
 * module directly as well ("Direct" cases): a module must stay safe (no crash, INVALID or
 * UNSUPPORTED, *out NULL) without the core in front of it. The "Gate" cases take features out
 * of the instance's cached capabilities and check that the engine refuses the call naming the
 * feature, and (with LLMOPS_CONFORMANCE_FAKE set: the instance's url is a tests/fakes fake
 * that answers GET /_stats) that the tool saw no request. */
#include "conformance.h"
#include "engine.h"
#include "httpclient.h"
#include "llmops-serving.h"

#include <stdio.h>
#include <stdlib.h>
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

static void check_answer(const char *op, int rc, json_t *out, enum llmops_status want,
                         const struct llmops_error *e)
{
    if (want == LLMOPS_OK) {
        ck_assert_msg(rc == 0, "%s: expected success, got code %d: %s", op, e->code, e->message);
        ck_assert_ptr_nonnull(out);
    } else {
        ck_assert_msg(rc == -1, "%s: expected code %d, got success", op, want);
        ck_assert_msg(e->code == want, "%s: expected code %d, got %d: %s", op, want, e->code,
                      e->message);
        ck_assert_msg(out == NULL, "%s: a failure must leave *out NULL", op);
        ck_assert_msg(e->message[0] != '\0', "%s: a failure must say why", op);
    }
}

/* Calls op through the engine, as llm-opsd does (input checked against the operations table,
 * the features gate); `in` stolen. Returns the answer (asserting success when want is
 * LLMOPS_OK) or NULL with *e. */
static json_t *call(const char *op, json_t *in, enum llmops_status want, struct llmops_error *e)
{
    json_t *out = NULL;
    ck_assert_msg(in != NULL, "%s: the test built no input", op);
    int rc =
        engine_call_named(NULL, conformance_instance, LLMOPS_CATEGORY_SERVING, op, in, &out, e);
    json_decref(in);
    check_answer(op, rc, out, want, e);
    return out;
}

/* Calls the module's op directly, past the engine (`in` stolen): for the cases that check a
 * module stays safe on input the engine would have refused. */
static json_t *direct(const char *name, llmops_op_fn *op, json_t *in, enum llmops_status want,
                      struct llmops_error *e)
{
    json_t *out = NULL;
    memset(e, 0, sizeof *e);
    e->size = sizeof *e;
    ck_assert_msg(op != NULL, "%s: the module lacks it", name);
    ck_assert_msg(in != NULL, "%s: the test built no input", name);
    int rc = op(st(), in, &out, e);
    json_decref(in);
    check_answer(name, rc, out, want, e);
    return out;
}

/* The requests the tool has seen (the fake's GET /_stats, control routes not counted), or -1
 * when the instance's url is not a fake (LLMOPS_CONFORMANCE_FAKE unset). */
static long long tool_requests(void)
{
    if (!getenv("LLMOPS_CONFORMANCE_FAKE"))
        return -1;
    struct llmops_http_request req = {.size = sizeof req, .method = "GET", .path = "/_stats"};
    struct llmops_http_response resp = {.size = sizeof resp};
    struct llmops_error e = {.size = sizeof e};
    ck_assert_ptr_nonnull(conformance_instance->http);
    ck_assert_msg(httpc_request(conformance_instance->http, &req, &resp, &e) == 0,
                  "GET /_stats of the fake: %s", e.message);
    ck_assert_msg(resp.status == 200, "GET /_stats of the fake answered %d", resp.status);
    json_t *stats = json_loads(resp.body, 0, NULL);
    httpc_response_free(&resp);
    ck_assert_msg(json_is_object(json_object_get(stats, "counts")),
                  "GET /_stats of the fake answered no counts");
    long long n = 0;
    const char *path;
    json_t *v;
    json_object_foreach(json_object_get(stats, "counts"), path, v) n += json_integer_value(v);
    json_decref(stats);
    return n;
}

/* A call the engine refuses before the module runs: `want` with `mentions` in the message,
 * and no request reached the tool. */
static void refused(const char *op, json_t *in, enum llmops_status want, const char *mentions)
{
    struct llmops_error e;
    json_t *out = NULL;
    long long before = tool_requests();
    int rc =
        engine_call_named(NULL, conformance_instance, LLMOPS_CATEGORY_SERVING, op, in, &out, &e);
    json_decref(in);
    long long after = tool_requests();
    ck_assert_msg(before == after,
                  "%s: the tool saw %lld request(s) the engine should have stopped (code %d: %s)",
                  op, after - before, e.code, e.message);
    check_answer(op, rc, out, want, &e);
    ck_assert_msg(strstr(e.message, mentions) != NULL, "%s: the refusal does not name %s: %s", op,
                  mentions, e.message);
    ck_assert_msg(strstr(e.message, conformance_instance->name) != NULL,
                  "%s: the engine's refusal names the instance %s: %s", op,
                  conformance_instance->name, e.message);
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
    return call("get_deployment", json_pack("{s:s}", "external_id", id), LLMOPS_OK, &e);
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
    json_t *out = call("delete_deployment", json_pack("{s:s}", "external_id", id), LLMOPS_OK, &e);
    ck_assert_int_eq(json_is_true(json_object_get(out, "deleted")), want_deleted);
    json_decref(out);
}

START_TEST(test_deploy_get_list_find_delete)
{
    char name[40], key[40];
    unique(name, sizeof name, "conf");
    unique(key, sizeof key, "key");
    struct llmops_error e;
    json_t *d = call("deploy", spec(name, key), LLMOPS_OK, &e);
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
    d = call("deploy", spec(name, key), LLMOPS_OK, &e);
    ck_assert(json_is_false(json_object_get(d, "created")));
    ck_assert_str_eq(json_string_value(json_object_get(d, "external_id")), id);
    json_decref(d);

    /* The same name under another key is someone else's. */
    char other[40];
    unique(other, sizeof other, "key");
    call("deploy", spec(name, other), LLMOPS_ERR_CONFLICT, &e);

    d = call("find_by_idempotency_key", json_pack("{s:s}", "idempotency_key", key), LLMOPS_OK, &e);
    ck_assert_str_eq(json_string_value(json_object_get(d, "external_id")), id);
    json_decref(d);
    call("find_by_idempotency_key", json_pack("{s:s}", "idempotency_key", other),
         LLMOPS_ERR_NOT_FOUND, &e);
    call("get_deployment", json_pack("{s:s}", "external_id", "no-such-deployment"),
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
        json_t *l = call("list_deployments", in, LLMOPS_OK, &e);
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
    d = call("update_deployment",
             json_pack("{s:s,s:{s:i,s:i}}", "external_id", id, "replicas", "min", 2, "max", 2),
             LLMOPS_OK, &e);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(d, "replicas"), "max")), 2);
    json_decref(d);
    json_decref(wait_state(id, "ready"));

    call("update_deployment", json_pack("{s:s}", "external_id", id), LLMOPS_ERR_INVALID, &e);
    call("update_deployment",
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
    call("deploy", in, LLMOPS_ERR_INVALID, &e);
    ck_assert_ptr_nonnull(strstr(e.message, "name"));
    in = spec(name, "k1");
    json_object_set_new(in, "replicas", json_pack("{s:i,s:i}", "min", 3, "max", 2));
    call("deploy", in, LLMOPS_ERR_INVALID, &e);
    ck_assert_ptr_nonnull(strstr(e.message, "replicas"));
    in = spec(name, "k1");
    json_object_set_new(in, "model", json_pack("{s:s,s:s}", "uri", "ftp://x/y", "format", "onnx"));
    call("deploy", in, LLMOPS_ERR_UNSUPPORTED, &e);
    ck_assert_ptr_nonnull(strstr(e.message, "model.uri"));
    in = spec(name, "k1");
    json_object_set_new(in, "replicas", json_pack("{s:i,s:i}", "min", 1, "max", 3));
    json_object_set_new(in, "autoscaling", json_pack("{s:s,s:i}", "metric", "bogus", "target", 5));
    if (has_feature("autoscaling")) { /* a metric outside autoscaling_metrics: the module's */
        call("deploy", in, LLMOPS_ERR_UNSUPPORTED, &e);
        ck_assert_ptr_nonnull(strstr(e.message, "autoscaling"));
    } else {
        refused("deploy", in, LLMOPS_ERR_UNSUPPORTED, "\"autoscaling\"");
    }
    if (!has_feature("scale_to_zero")) {
        in = spec(name, "k1");
        json_object_set_new(in, "replicas", json_pack("{s:i,s:i}", "min", 0, "max", 1));
        call("deploy", in, LLMOPS_ERR_UNSUPPORTED, &e);
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
    json_t *d = call("deploy", spec(name, key), LLMOPS_OK, &e);
    char id[256];
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(d, "external_id")));
    json_decref(d);
    json_decref(wait_state(id, "ready"));
    int percent = has_feature("canary_percent"), replicas = has_feature("canary_by_replicas");
    if (!has_feature("canary")) {
        ck_assert(!percent && !replicas);
        /* The engine refuses it (the op unlisted, or its feature "canary" absent); a module
         * that has the op refuses it too when called directly. */
        refused("create_canary",
                json_pack("{s:s,s:{s:s,s:s},s:i}", "external_id", id, "model", "uri",
                          "hf://org/model-b", "format", "huggingface", "traffic_percent", 10),
                LLMOPS_ERR_UNSUPPORTED, "canary");
        if (ops()->create_canary) {
            direct("create_canary", ops()->create_canary,
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
    /* The other way of splitting is refused by name, never approximated: by the engine's
     * features gate before the tool sees a request, and by the module called directly. */
    const char *other = percent ? "canary_replicas" : "traffic_percent";
    const char *other_feature = percent ? "\"canary_by_replicas\"" : "\"canary_percent\"";
    json_t *in = json_pack("{s:s,s:{s:s,s:s}}", "external_id", id, "model", "uri",
                           "hf://org/model-b", "format", "huggingface");
    json_object_set_new(in, other, json_integer(1));
    refused("create_canary", in, LLMOPS_ERR_UNSUPPORTED, other_feature);
    refused("set_canary_traffic", json_pack("{s:s,s:i}", "external_id", id, other, 1),
            LLMOPS_ERR_UNSUPPORTED, other_feature);
    in = json_pack("{s:s,s:{s:s,s:s}}", "external_id", id, "model", "uri", "hf://org/model-b",
                   "format", "huggingface");
    json_object_set_new(in, other, json_integer(1));
    direct("create_canary", ops()->create_canary, in, LLMOPS_ERR_UNSUPPORTED, &e);
    ck_assert_ptr_nonnull(strstr(e.message, percent ? "canary_by_replicas" : "canary_percent"));

    in = json_pack("{s:s,s:{s:s,s:s}}", "external_id", id, "model", "uri", "hf://org/model-b",
                   "format", "huggingface");
    json_object_set_new(in, percent ? "traffic_percent" : "canary_replicas",
                        json_integer(percent ? 10 : 1));
    d = call("create_canary", in, LLMOPS_OK, &e);
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
    call("create_canary", in, LLMOPS_ERR_CONFLICT, &e);

    in = json_pack("{s:s}", "external_id", id);
    json_object_set_new(in, percent ? "traffic_percent" : "canary_replicas",
                        json_integer(percent ? 30 : 2));
    d = call("set_canary_traffic", in, LLMOPS_OK, &e);
    if (percent)
        ck_assert_int_eq(json_integer_value(json_object_get(
                             json_object_get(json_object_get(d, "traffic"), "canary"), "percent")),
                         30);
    json_decref(d);

    /* Rollback: the canary is gone, the stable model stays, a second rollback is a no-op. */
    d = call("rollback_canary", json_pack("{s:s,s:s}", "external_id", id, "reason", "test"),
             LLMOPS_OK, &e);
    ck_assert(json_is_true(json_object_get(d, "rolled_back")));
    ck_assert_ptr_null(json_object_get(d, "canary"));
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(d, "model"), "uri")),
                     "hf://org/model-a");
    json_decref(d);
    d = call("rollback_canary", json_pack("{s:s}", "external_id", id), LLMOPS_OK, &e);
    ck_assert(json_is_false(json_object_get(d, "rolled_back")));
    json_decref(d);
    call("promote_canary", json_pack("{s:s}", "external_id", id), LLMOPS_ERR_NOT_FOUND, &e);
    json_decref(wait_state(id, "ready"));

    /* Promote: the canary's model becomes the stable spec at 100 %. */
    in = json_pack("{s:s,s:{s:s,s:s}}", "external_id", id, "model", "uri", "hf://org/model-b",
                   "format", "huggingface");
    json_object_set_new(in, percent ? "traffic_percent" : "canary_replicas",
                        json_integer(percent ? 10 : 1));
    json_decref(call("create_canary", in, LLMOPS_OK, &e));
    d = call("promote_canary", json_pack("{s:s}", "external_id", id), LLMOPS_OK, &e);
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

/* ------------------------------------------------------------------ what the table refuses */

/* Input the operations table refuses (a type, a bound, a required member), and the member
 * path the engine's message names. The "Engine" case asserts the engine's INVALID before the
 * tool sees a request; the "Direct" case hands the same input to the module. */
enum direct_answer {
    REFUSE, /* INVALID or UNSUPPORTED: the op would build what it writes from the member */
    LOOKUP, /* INVALID, UNSUPPORTED or NOT_FOUND (a delete: {"deleted": false}): a lookup by a
             * malformed key finds nothing */
    ANY     /* any answer of the contract: an optional member the op only reads in passing */
};

static const struct bad_input {
    const char *op, *json, *path;
    enum direct_answer direct;
} bad_inputs[] = {
    {"deploy",
     "{\"idempotency_key\":\"kbad-1\",\"name\":\"bad-a\",\"replicas\":{\"min\":1,"
     "\"max\":1}}",
     "model", REFUSE},
    {"deploy",
     "{\"idempotency_key\":5,\"name\":\"bad-k\",\"model\":{\"uri\":\"hf://org/m\","
     "\"format\":\"huggingface\"},\"replicas\":{\"min\":1,\"max\":1}}",
     "idempotency_key", REFUSE},
    {"deploy",
     "{\"idempotency_key\":\"kbad-2\",\"name\":\"bad-b\",\"model\":{\"uri\":"
     "\"hf://org/m\",\"format\":\"huggingface\"},\"replicas\":{\"min\":\"1\",\"max\":1}}",
     "replicas.min", REFUSE},
    {"deploy",
     "{\"idempotency_key\":\"kbad-3\",\"name\":\"bad-c\",\"model\":{\"uri\":"
     "\"hf://org/m\",\"format\":\"huggingface\"},\"replicas\":{\"min\":1,\"max\":101}}",
     "replicas.max", REFUSE},
    {"deploy",
     "{\"idempotency_key\":\"kbad-4\",\"name\":\"bad-d\",\"model\":{\"uri\":7,"
     "\"format\":\"huggingface\"},\"replicas\":{\"min\":1,\"max\":1}}",
     "model.uri", REFUSE},
    {"deploy",
     "{\"idempotency_key\":\"kbad-5\",\"name\":\"b123456789012345678901234567890123456"
     "789012345678901234567890123\",\"model\":{\"uri\":\"hf://org/m\",\"format\":"
     "\"huggingface\"},\"replicas\":{\"min\":1,\"max\":1}}",
     "name", REFUSE},
    {"deploy",
     "{\"idempotency_key\":\"kbad-6\",\"name\":\"bad-f\",\"model\":{\"uri\":"
     "\"hf://org/m\",\"format\":\"huggingface\"},\"replicas\":{\"min\":1,\"max\":1},"
     "\"args\":\"--x\"}",
     "args", REFUSE},
    {"deploy",
     "{\"idempotency_key\":\"kbad-7\",\"name\":\"bad-g\",\"model\":{\"uri\":"
     "\"hf://org/m\",\"format\":\"huggingface\"},\"replicas\":{\"min\":1,\"max\":1},"
     "\"env\":{\"A\":1}}",
     "env", REFUSE},
    {"deploy",
     "{\"idempotency_key\":\"kbad-8\",\"name\":\"bad-h\",\"model\":{\"uri\":"
     "\"hf://org/m\",\"format\":\"huggingface\"},\"replicas\":{\"min\":1,\"max\":1},"
     "\"resources\":{\"gpu\":{\"resource_name\":\"nvidia.com/gpu\",\"count\":65}}}",
     "resources.gpu.count", REFUSE},
    {"deploy",
     "{\"idempotency_key\":\"kbad-9\",\"name\":\"bad-i\",\"model\":{\"uri\":"
     "\"hf://org/m\",\"format\":\"huggingface\"},\"replicas\":[1,1]}",
     "replicas", REFUSE},
    {"get_deployment", "{\"external_id\":7}", "external_id", LOOKUP},
    {"get_deployment", "{\"external_id\":null}", "external_id", LOOKUP},
    {"get_deployment", "{}", "external_id", LOOKUP},
    {"list_deployments", "{\"max_results\":0}", "max_results", REFUSE},
    {"list_deployments", "{\"max_results\":501}", "max_results", REFUSE},
    {"list_deployments", "{\"max_results\":\"10\"}", "max_results", REFUSE},
    {"list_deployments", "{\"max_results\":1,\"page_token\":5}", "page_token", ANY},
    {"update_deployment", "{\"external_id\":\"x\",\"replicas\":{\"min\":-1,\"max\":1}}",
     "replicas.min", REFUSE},
    {"update_deployment", "{\"external_id\":\"x\",\"model\":\"hf://org/m\"}", "model", REFUSE},
    {"delete_deployment", "{\"external_id\":\"\"}", "external_id", LOOKUP},
    {"find_by_idempotency_key", "{\"idempotency_key\":true}", "idempotency_key", LOOKUP},
    {"predict", "{\"external_id\":\"x\",\"body\":{}}", "path", REFUSE},
    {"predict", "{\"external_id\":\"x\",\"path\":\"/p\",\"body\":{},\"timeout_ms\":0}",
     "timeout_ms", REFUSE},
    {"create_canary", "{\"external_id\":\"x\",\"traffic_percent\":100}", "traffic_percent", REFUSE},
    {"set_canary_traffic", "{\"external_id\":\"x\",\"traffic_percent\":101}", "traffic_percent",
     REFUSE},
    {"set_canary_traffic", "{\"external_id\":\"x\",\"canary_replicas\":-1}", "canary_replicas",
     REFUSE},
    {"promote_canary", "{\"external_id\":[\"x\"]}", "external_id", LOOKUP},
    {"rollback_canary", "{\"external_id\":\"x\",\"reason\":1}", "reason", ANY},
};
#define NBAD ((int)(sizeof bad_inputs / sizeof bad_inputs[0]))

static json_t *bad_json(const struct bad_input *b)
{
    json_error_t je;
    json_t *in = json_loads(b->json, 0, &je);
    ck_assert_msg(in != NULL, "case %s %s: %s", b->op, b->json, je.text);
    return in;
}

/* The module's slot of a serving op (NULL: it lacks it). */
static llmops_op_fn *slot(const char *name)
{
    const struct llmops_op_desc *d = engine_op(LLMOPS_CATEGORY_SERVING, name);
    ck_assert_msg(d != NULL, "%s is not an op of the serving table", name);
    const struct llmops_serving_ops *o = ops();
    if (d->slot + sizeof(llmops_op_fn *) > o->size)
        return NULL;
    llmops_op_fn *fn;
    memcpy(&fn, (const char *)o + d->slot, sizeof fn);
    return fn;
}

START_TEST(test_engine_refuses_what_the_table_refuses)
{
    const struct bad_input *b = &bad_inputs[_i];
    const struct llmops_op_desc *d = engine_op(LLMOPS_CATEGORY_SERVING, b->op);
    ck_assert_ptr_nonnull(d);
    if (!engine_has(conformance_instance, LLMOPS_CATEGORY_SERVING, d)) {
        /* an op the instance does not offer: refused as such, whatever the input */
        refused(b->op, bad_json(b), LLMOPS_ERR_UNSUPPORTED, b->op);
        return;
    }
    refused(b->op, bad_json(b), LLMOPS_ERR_INVALID, b->path);
}
END_TEST

START_TEST(test_module_called_directly_stays_safe)
{
    const struct bad_input *b = &bad_inputs[_i];
    llmops_op_fn *fn = slot(b->op);
    if (!fn)
        return;
    json_t *out = NULL;
    struct llmops_error e = {.size = sizeof e};
    json_t *in = bad_json(b);
    int rc = fn(st(), in, &out, &e);
    json_decref(in);
    if (rc == 0 && b->direct == LOOKUP && strcmp(b->op, "delete_deployment") == 0) {
        /* nothing has that id: deleting it deletes nothing, as a second delete does */
        ck_assert_msg(json_is_false(json_object_get(out, "deleted")),
                      "%s called directly with %s deleted something", b->op, b->json);
        json_decref(out);
        return;
    }
    if (rc == 0 && b->direct == ANY) {
        ck_assert_msg(json_is_object(out), "%s: success must answer an object", b->op);
        json_decref(out);
        return;
    }
    if (rc == 0) {
        char *s = json_dumps(out, JSON_COMPACT);
        json_decref(out);
        ck_abort_msg("%s called directly with %s succeeded (%.200s): a module checks its input "
                     "itself",
                     b->op, b->json, s ? s : "?");
    }
    ck_assert_msg(rc == -1, "%s returned %d (0 or -1)", b->op, rc);
    ck_assert_msg(out == NULL, "%s: a failure must leave *out NULL", b->op);
    ck_assert_msg(e.message[0] != '\0', "%s: a failure must say why", b->op);
    int refusal = e.code == LLMOPS_ERR_INVALID || e.code == LLMOPS_ERR_UNSUPPORTED;
    ck_assert_msg(refusal || (b->direct == LOOKUP && e.code == LLMOPS_ERR_NOT_FOUND) ||
                      (b->direct == ANY && e.code != LLMOPS_ERR_INTERNAL),
                  "%s called directly with %s: code %d (%s), expected %s", b->op, b->json, e.code,
                  e.message,
                  b->direct == LOOKUP ? "INVALID, UNSUPPORTED or NOT_FOUND"
                  : b->direct == ANY  ? "an answer of the contract"
                                      : "INVALID or UNSUPPORTED");
}
END_TEST

/* ------------------------------------------------------------------ the features gate */

/* The instance's capabilities as loaded; a Gate case replaces them for the engine and the
 * teardown puts them back (also after a failed assertion). */
static json_t *saved_caps;

static void gate_setup(void)
{
    saved_caps = engine_capabilities(conformance_instance); /* the instance's reference */
    ck_assert_ptr_nonnull(saved_caps);
}

static void gate_teardown(void)
{
    if (conformance_instance->caps != saved_caps)
        json_decref(conformance_instance->caps);
    conformance_instance->caps = saved_caps;
    saved_caps = NULL;
}

static void drop(json_t *arr, const char *name)
{
    for (size_t i = json_array_size(arr); i-- > 0;)
        if (json_is_string(json_array_get(arr, i)) &&
            strcmp(json_string_value(json_array_get(arr, i)), name) == 0)
            json_array_remove(arr, i);
}

static void ensure(json_t *arr, const char *name)
{
    drop(arr, name);
    json_array_append_new(arr, json_string(name));
}

/* Capabilities for the engine: every op the module has and every feature of the header
 * listed, then `feature` (or the op `op_unlisted`) taken out. */
static void caps_without(const char *feature, const char *op_unlisted)
{
    static const char *const features[] = {"autoscaling",       "scale_to_zero", "image",
                                           "node_selector",     "canary",        "canary_percent",
                                           "canary_by_replicas"};
    json_t *caps = json_deep_copy(saved_caps);
    json_t *f = json_object_get(caps, "features"), *o = json_object_get(caps, "operations");
    if (!json_is_array(f)) {
        f = json_array();
        json_object_set_new(caps, "features", f);
    }
    ck_assert(json_is_array(o));
    for (size_t i = 0; i < sizeof features / sizeof features[0]; i++)
        ensure(f, features[i]);
#define LIST_(member, required)                                                                    \
    if (slot(#member))                                                                             \
        ensure(o, #member);
    LLMOPS_SERVING_OPS(LIST_)
#undef LIST_
    if (feature)
        drop(f, feature);
    if (op_unlisted)
        drop(o, op_unlisted);
    if (conformance_instance->caps != saved_caps)
        json_decref(conformance_instance->caps);
    conformance_instance->caps = caps;
}

/* A call the instance's capabilities (as the case leaves them) do not allow. */
static const struct gate_case {
    const char *feature, *op_unlisted, *op, *json, *mentions;
} gates[] = {
    {"canary_percent", NULL, "create_canary",
     "{\"external_id\":\"no-such-deployment\",\"model\":{\"uri\":\"hf://org/model-b\",\"format\":"
     "\"huggingface\"},\"traffic_percent\":10}",
     "\"canary_percent\""},
    {"canary_percent", NULL, "set_canary_traffic",
     "{\"external_id\":\"no-such-deployment\",\"traffic_percent\":10}", "\"canary_percent\""},
    {"canary_by_replicas", NULL, "create_canary",
     "{\"external_id\":\"no-such-deployment\",\"model\":{\"uri\":\"hf://org/model-b\",\"format\":"
     "\"huggingface\"},\"canary_replicas\":1}",
     "\"canary_by_replicas\""},
    {"canary", NULL, "promote_canary", "{\"external_id\":\"no-such-deployment\"}", "\"canary\""},
    {"canary", NULL, "rollback_canary", "{\"external_id\":\"no-such-deployment\"}", "\"canary\""},
    {"image", NULL, "deploy",
     "{\"idempotency_key\":\"kgate-1\",\"name\":\"gate-image\",\"model\":{\"uri\":\"hf://org/m\","
     "\"format\":\"huggingface\"},\"replicas\":{\"min\":1,\"max\":1},\"image\":\"example/x:1\"}",
     "\"image\""},
    {"image", NULL, "update_deployment",
     "{\"external_id\":\"no-such-deployment\",\"image\":\"example/x:1\"}", "\"image\""},
    {"autoscaling", NULL, "update_deployment",
     "{\"external_id\":\"no-such-deployment\",\"autoscaling\":{\"metric\":\"cpu\",\"target\":50}}",
     "\"autoscaling\""},
    {"node_selector", NULL, "deploy",
     "{\"idempotency_key\":\"kgate-2\",\"name\":\"gate-ns\",\"model\":{\"uri\":\"hf://org/m\","
     "\"format\":\"huggingface\"},\"replicas\":{\"min\":1,\"max\":1},\"resources\":{\"gpu\":"
     "{\"resource_name\":\"nvidia.com/gpu\",\"count\":1,\"node_selector\":{\"a\":\"b\"}}}}",
     "\"node_selector\""},
    {NULL, "get_deployment", "get_deployment", "{\"external_id\":\"no-such-deployment\"}",
     "get_deployment"},
};
#define NGATES ((int)(sizeof gates / sizeof gates[0]))

START_TEST(test_features_gate_refuses_before_the_module)
{
    const struct gate_case *g = &gates[_i];
    caps_without(g->feature, g->op_unlisted);
    json_error_t je;
    json_t *in = json_loads(g->json, 0, &je);
    ck_assert_msg(in != NULL, "gate case %s: %s", g->op, je.text);
    /* an op the module lacks is refused as such */
    refused(g->op, in, LLMOPS_ERR_UNSUPPORTED, slot(g->op) ? g->mentions : g->op);
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
    tc = tcase_create("Engine");
    tcase_add_loop_test(tc, test_engine_refuses_what_the_table_refuses, 0, NBAD);
    suite_add_tcase(s, tc);
    tc = tcase_create("Direct");
    tcase_add_loop_test(tc, test_module_called_directly_stays_safe, 0, NBAD);
    suite_add_tcase(s, tc);
    tc = tcase_create("Gate");
    tcase_add_checked_fixture(tc, gate_setup, gate_teardown);
    tcase_add_loop_test(tc, test_features_gate_refuses_before_the_module, 0, NGATES);
    suite_add_tcase(s, tc);
    return s;
}
