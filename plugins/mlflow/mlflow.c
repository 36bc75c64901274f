/* mlflow — the experiment_tracking module for the MLflow Tracking REST API 2.x (2.9 and later;
 * 3.x keeps the 2.0 paths). It speaks to the server through host->http (timeouts, retries,
 * Retry-After, TLS and the auth header from token_file or basic_auth_file are the core's) and
 * absorbs MLflow's quirks: string experiment ids, omitted empty members, NaN and +/-Infinity,
 * silently ignored statuses, max_results ignored by metrics/get-history, HTML error pages.
 *
 * Idempotency lives in MLflow, never in the state (each worker has its own): the key is the
 * tag LLMOPS_TRACKING_KEY_TAG on the experiment or run. create_experiment reads the name back
 * when MLflow answers RESOURCE_ALREADY_EXISTS; create_run searches the experiment's runs
 * (run_view_type ALL) for the tag before creating. A create whose answer was lost looks the
 * object up once before it reports the failure. A log-batch that MLflow refuses because it
 * holds some of its points already (its SQL store never finds a NaN point it has) is sent again
 * without them (send_batch). Every op shares one deadline, the instance's timeout_ms, across
 * its HTTP calls. See doc/plugins/mlflow.md. */
#include "llmops-plugin.h"
#include "llmops-tracking.h"
#include "mlflow_parse.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MLFLOW_MODULE_VERSION "1.0.0"
#define MLFLOW_TOOL_MIN "2.9"
#define MLFLOW_TOOL_MAX "3.99" /* every 3.x */
#define MLFLOW_API "/api/2.0/mlflow/"
#define MLFLOW_TOKEN_MAX 2048 /* page tokens (llmops-plugin.h) */
#define MLFLOW_HISTORY_PAGES 1000
#define MLFLOW_BATCH_RESENDS 3 /* log_batch: re-sends after a refused replay (see there) */

static const struct llmops_config_key keys[] = {
    {"ui_url", LLMOPS_CONFIG_URL, 0, 0, 0,
     "the MLflow UI's base URL for links.ui (default: url without credentials)"},
    {NULL, 0, 0, 0, 0, NULL},
};

struct mlflow {
    const struct llmops_host *host;
    char *ui;             /* links.ui base: no userinfo, no trailing '/' */
    long long timeout_ms; /* one op's budget, all its HTTP calls together */
};

/* One op: its deadline and where its error goes. */
struct call {
    struct mlflow *s;
    const char *op;
    int64_t deadline;
    struct llmops_error *err;
    char error_code[48]; /* MLflow's error_code of the last refusal ("" for none) */
};

static struct call begin(void *state, const char *op, struct llmops_error *err)
{
    struct mlflow *s = state;
    return (struct call){s, op, s->host->now_ms() + s->timeout_ms, err, ""};
}

static int failf(struct call *c, enum llmops_status code, int tool_status, int retryable,
                 const char *fmt, ...) LLMOPS_PRINTF(5, 6);
static int failf(struct call *c, enum llmops_status code, int tool_status, int retryable,
                 const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return llmops_fail(c->err, code, tool_status, retryable, msg);
}

static int oom(struct call *c)
{
    return failf(c, LLMOPS_ERR_INTERNAL, 0, 0, "%s: out of memory", c->op);
}

/* ------------------------------------------------------------------ HTTP */

/* One request; `path` is absolute ("/version", MLFLOW_API "runs/get?run_id=..."). A 2xx answer
 * returns 0 with *resp to release with http_free; anything else returns -1 with the error
 * mapped (MLflow's own text goes to the log only). */
static int request(struct call *c, const char *endpoint, const char *path, json_t *body,
                   int retry_unsafe, struct llmops_http_response *resp)
{
    const struct llmops_host *h = c->s->host;
    int64_t left = c->deadline - h->now_ms();
    c->error_code[0] = '\0';
    if (left <= 0)
        return failf(c, LLMOPS_ERR_UNAVAILABLE, 0, 1,
                     "MLflow %s: no time left within timeout_ms (%lld ms)", endpoint,
                     c->s->timeout_ms);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    if (body && !text)
        return oom(c);
    struct llmops_http_request req = {
        .size = sizeof req,
        .method = body ? "POST" : "GET",
        .path = path,
        .body = text,
        .body_len = text ? strlen(text) : 0,
        .content_type = text ? "application/json" : NULL,
        .retry_unsafe = retry_unsafe,
        .timeout_ms = (long)left,
    };
    memset(resp, 0, sizeof *resp);
    resp->size = sizeof *resp;
    h->metric_add(h, "requests", 1);
    int rc = h->http(h, &req, resp, c->err);
    free(text);
    if (rc != 0) {
        h->metric_add(h, "request_failures", 1);
        h->log(h, LLMOPS_LOG_INFO, "%s: %s: %s", c->op, endpoint, c->err->message);
        return -1;
    }
    struct mlflow_fault f;
    if (mlflow_classify(resp->status, resp->body, resp->body_len, &f) == 0)
        return 0;
    h->metric_add(h, "request_failures", 1);
    h->log(h, f.retryable || f.code == LLMOPS_ERR_TOOL ? LLMOPS_LOG_WARNING : LLMOPS_LOG_INFO,
           "%s: %s answered HTTP %d %s: %s", c->op, endpoint, resp->status,
           f.error_code[0] ? f.error_code : "(no error_code)", f.detail);
    h->http_free(resp);
    snprintf(c->error_code, sizeof c->error_code, "%s", f.error_code);
    return failf(c, f.code, f.tool_status, f.retryable, "MLflow %s: %s (%s%sHTTP %d)", endpoint,
                 f.what, f.error_code, f.error_code[0] ? ", " : "", f.tool_status);
}

/* A call of MLFLOW_API `endpoint`: POST with `body`, or GET with `query` (already encoded)
 * when body is NULL. Returns 0 with *out a JSON object, or -1. */
static int api(struct call *c, const char *endpoint, const char *query, json_t *body,
               int retry_unsafe, json_t **out)
{
    *out = NULL;
    size_t n = strlen(MLFLOW_API) + strlen(endpoint) + (query ? strlen(query) + 1 : 0) + 1;
    char *path = malloc(n);
    if (!path)
        return oom(c);
    snprintf(path, n, "%s%s%s%s", MLFLOW_API, endpoint, query ? "?" : "", query ? query : "");
    struct llmops_http_response resp;
    int rc = request(c, endpoint, path, body, retry_unsafe, &resp);
    free(path);
    if (rc != 0)
        return -1;
    *out = mlflow_parse_object(resp.body, resp.body_len);
    int status = resp.status;
    c->s->host->http_free(&resp);
    if (!*out)
        return failf(c, LLMOPS_ERR_TOOL, status, 0,
                     "MLflow %s: the answer is not a JSON object (HTTP %d)", endpoint, status);
    return 0;
}

/* "name=value" with value percent-encoded, appended to a query being built. */
static int query_add(struct mlflow_buf *q, const char *name, const char *value)
{
    char *v = mlflow_url_encode(value);
    if (!v)
        return -1;
    if (q->len)
        mlflow_buf_adds(q, "&");
    mlflow_buf_adds(q, name);
    mlflow_buf_adds(q, "=");
    mlflow_buf_adds(q, v);
    free(v);
    return q->oom ? -1 : 0;
}

/* GET endpoint?name=value. */
static int api_get1(struct call *c, const char *endpoint, const char *name, const char *value,
                    json_t **out)
{
    struct mlflow_buf q = {0};
    if (query_add(&q, name, value) < 0) {
        free(q.p);
        return oom(c);
    }
    int rc = api(c, endpoint, q.p, NULL, 0, out);
    free(q.p);
    return rc;
}

static int malformed(struct call *c, const char *endpoint, const char *why)
{
    c->s->host->log(c->s->host, LLMOPS_LOG_WARNING, "%s: %s answered a malformed object: %s", c->op,
                    endpoint, why);
    return failf(c, LLMOPS_ERR_TOOL, 200, 0, "MLflow %s: malformed answer: %s", endpoint, why);
}

/* Whether the failure in c->err may hide a create that was done (a lost answer, a timeout, a
 * 5xx after the write). */
static int maybe_done(const struct call *c)
{
    return c->err->code == LLMOPS_ERR_UNAVAILABLE ||
           (c->err->code == LLMOPS_ERR_TOOL && c->err->retryable);
}

/* ------------------------------------------------------------------ input */

static const char *in_str(json_t *in, const char *k)
{
    return json_string_value(json_object_get(in, k));
}

/* {key: value} → MLflow's [{key, value}], refusing the reserved idempotency tag; with
 * `key_value`, that tag is appended. NULL with c->err filled. */
static json_t *tag_list(struct call *c, json_t *tags, const char *what, const char *key_value)
{
    json_t *list = json_array();
    if (tags && !json_is_null(tags) && !json_is_object(tags)) {
        json_decref(list);
        failf(c, LLMOPS_ERR_INVALID, 0, 0, "%s must be an object of key: string", what);
        return NULL;
    }
    const char *k;
    json_t *v;
    json_object_foreach(tags, k, v)
    {
        if (!json_is_string(v) || !*k) {
            json_decref(list);
            failf(c, LLMOPS_ERR_INVALID, 0, 0, "%s must be an object of key: string", what);
            return NULL;
        }
        if (key_value && strcmp(k, LLMOPS_TRACKING_KEY_TAG) == 0) {
            json_decref(list);
            failf(c, LLMOPS_ERR_INVALID, 0, 0, "%s: %s is reserved for the idempotency key", what,
                  LLMOPS_TRACKING_KEY_TAG);
            return NULL;
        }
        json_array_append_new(list, json_pack("{s:s,s:O}", "key", k, "value", v));
    }
    if (key_value && *key_value)
        json_array_append_new(
            list, json_pack("{s:s,s:s}", "key", LLMOPS_TRACKING_KEY_TAG, "value", key_value));
    return list;
}

/* lifecycle → MLflow's view type; NULL for a value the interface does not have. */
static const char *view_type(json_t *in)
{
    const char *l = in_str(in, "lifecycle");
    if (!l || strcmp(l, "active") == 0)
        return "ACTIVE_ONLY";
    if (strcmp(l, "deleted") == 0)
        return "DELETED_ONLY";
    if (strcmp(l, "all") == 0)
        return "ALL";
    return NULL;
}

/* page_token from a client: MLflow's own (base64), so printable, bounded, no blanks. */
static int check_token(struct call *c, const char *token)
{
    if (!token)
        return 0;
    size_t n = strlen(token);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)token[i] <= ' ' || (unsigned char)token[i] >= 0x7f)
            n = 0;
    if (n == 0 || n > MLFLOW_TOKEN_MAX)
        return failf(c, LLMOPS_ERR_INVALID, 0, 0, "page_token is not one this module gave");
    return 0;
}

/* next_page_token from MLflow into out (absent: nothing set). */
static int pass_token(struct call *c, const char *endpoint, json_t *ans, json_t *out)
{
    const char *t = json_string_value(json_object_get(ans, "next_page_token"));
    if (!t || !*t)
        return 0;
    if (strlen(t) > MLFLOW_TOKEN_MAX)
        return malformed(c, endpoint, "next_page_token is over 2048 bytes");
    json_object_set_new(out, "next_page_token", json_string(t));
    return 0;
}

/* ------------------------------------------------------------------ lookups */

static int get_experiment_by(struct call *c, const char *endpoint, const char *param,
                             const char *value, json_t **raw, json_t **out)
{
    json_t *ans;
    *out = NULL;
    if (raw)
        *raw = NULL;
    if (api_get1(c, endpoint, param, value, &ans) < 0)
        return -1;
    char why[160];
    json_t *e = json_object_get(ans, "experiment");
    *out = mlflow_experiment(e, c->s->ui, why, sizeof why);
    if (*out && raw)
        *raw = json_incref(e);
    json_decref(ans);
    return *out ? 0 : malformed(c, endpoint, why);
}

/* The run of `experiment_id` carrying the idempotency key: 0 found (*out), 1 none, -1 error. */
static int find_run(struct call *c, const char *experiment_id, const char *key, json_t **out)
{
    *out = NULL;
    struct mlflow_buf f = {0};
    mlflow_buf_adds(&f, "tags.`" LLMOPS_TRACKING_KEY_TAG "` = ");
    if (mlflow_quote(&f, key) < 0 || f.oom) {
        free(f.p);
        return failf(c, LLMOPS_ERR_INVALID, 0, 0, "idempotency_key cannot be searched for");
    }
    json_t *body = json_pack("{s:[s],s:s,s:s,s:i}", "experiment_ids", experiment_id, "filter", f.p,
                             "run_view_type", "ALL", "max_results", 1);
    free(f.p);
    if (!body)
        return failf(c, LLMOPS_ERR_INVALID, 0, 0, "experiment_id must be a string");
    json_t *ans;
    int rc = api(c, "runs/search", NULL, body, 1, &ans);
    json_decref(body);
    if (rc < 0)
        return -1;
    json_t *first = json_array_get(json_object_get(ans, "runs"), 0);
    if (!first) {
        json_decref(ans);
        return 1;
    }
    char why[160];
    *out = mlflow_run(first, c->s->ui, why, sizeof why);
    json_decref(ans);
    return *out ? 0 : malformed(c, "runs/search", why);
}

/* The experiment carrying the idempotency key: 0 found, 1 none, -1 error. */
static int find_experiment(struct call *c, const char *key, json_t **out)
{
    *out = NULL;
    struct mlflow_buf f = {0};
    mlflow_buf_adds(&f, "tags.`" LLMOPS_TRACKING_KEY_TAG "` = ");
    if (mlflow_quote(&f, key) < 0 || f.oom) {
        free(f.p);
        return failf(c, LLMOPS_ERR_INVALID, 0, 0, "idempotency_key cannot be searched for");
    }
    json_t *body = json_pack("{s:s,s:s,s:i}", "filter", f.p, "view_type", "ALL", "max_results", 1);
    free(f.p);
    json_t *ans;
    int rc = body ? api(c, "experiments/search", NULL, body, 1, &ans) : oom(c);
    json_decref(body);
    if (rc < 0)
        return -1;
    json_t *first = json_array_get(json_object_get(ans, "experiments"), 0);
    if (!first) {
        json_decref(ans);
        return 1;
    }
    char why[160];
    *out = mlflow_experiment(first, c->s->ui, why, sizeof why);
    json_decref(ans);
    return *out ? 0 : malformed(c, "experiments/search", why);
}

/* ------------------------------------------------------------------ experiments */

/* After a duplicate name (or a lost answer): the experiment named `name` is ours when it
 * carries our key. 0 with *out, or -1 (CONFLICT when another one has the name). */
static int adopt_experiment(struct call *c, const char *name, const char *key, json_t **out)
{
    json_t *raw, *exp;
    if (get_experiment_by(c, "experiments/get-by-name", "experiment_name", name, &raw, &exp) < 0)
        return -1;
    const char *k = mlflow_tag_value(json_object_get(raw, "tags"), LLMOPS_TRACKING_KEY_TAG);
    int ours = k && strcmp(k, key) == 0;
    json_decref(raw);
    if (!ours) {
        json_decref(exp);
        return failf(c, LLMOPS_ERR_CONFLICT, 400, 0,
                     "another experiment has this name (MLflow keeps the names of deleted "
                     "experiments)");
    }
    *out = exp;
    return 0;
}

static int create_experiment(void *state, json_t *in, json_t **out, struct llmops_error *err)
{
    struct call c = begin(state, "create_experiment", err);
    const char *key = in_str(in, "idempotency_key"), *name = in_str(in, "name");
    json_t *tags = tag_list(&c, json_object_get(in, "tags"), "tags", key);
    if (!tags)
        return -1;
    json_t *body = json_pack("{s:s,s:o}", "name", name, "tags", tags);
    json_t *ans, *exp = NULL;
    int rc = body ? api(&c, "experiments/create", NULL, body, 0, &ans) : oom(&c);
    json_decref(body);
    if (rc == 0) {
        char id[MLFLOW_ID_MAX + 1];
        int ok = mlflow_id(json_object_get(ans, "experiment_id"), id, sizeof id) == 0;
        json_decref(ans);
        if (!ok)
            return malformed(&c, "experiments/create", "no experiment_id");
        if (get_experiment_by(&c, "experiments/get", "experiment_id", id, NULL, &exp) < 0) {
            /* Made, but not read back in time: answer with what was sent. */
            json_t *t = json_deep_copy(json_object_get(in, "tags"));
            exp = json_pack("{s:s,s:s,s:s,s:o}", "external_id", id, "name", name, "lifecycle",
                            "active", "tags", t ? t : json_object());
            if (!exp)
                return oom(&c);
            err->code = LLMOPS_OK;
        }
        json_object_set_new(exp, "created", json_true());
        *out = exp;
        return 0;
    }
    if (err->code == LLMOPS_ERR_CONFLICT) {
        struct llmops_error first = *err;
        if (adopt_experiment(&c, name, key, &exp) < 0) {
            if (err->code == LLMOPS_ERR_NOT_FOUND) /* gone again: report the duplicate */
                *err = first;
            return -1;
        }
        c.s->host->metric_add(c.s->host, "idempotent_replays", 1);
        json_object_set_new(exp, "created", json_false());
        *out = exp;
        return 0;
    }
    if (maybe_done(&c)) {
        struct llmops_error first = *err;
        if (adopt_experiment(&c, name, key, &exp) == 0) {
            json_object_set_new(exp, "created", json_true());
            *out = exp;
            return 0;
        }
        *err = first;
    }
    return -1;
}

static int get_experiment(void *state, json_t *in, json_t **out, struct llmops_error *err)
{
    struct call c = begin(state, "get_experiment", err);
    const char *id = in_str(in, "external_id");
    return get_experiment_by(&c, "experiments/get", "experiment_id", id, NULL, out);
}

static int search_experiments(void *state, json_t *in, json_t **out, struct llmops_error *err)
{
    struct call c = begin(state, "search_experiments", err);
    const char *name = in_str(in, "name"), *prefix = in_str(in, "name_prefix");
    const char *token = in_str(in, "page_token"), *view = view_type(in);
    json_int_t max = json_integer_value(json_object_get(in, "max_results"));
    if (check_token(&c, token) < 0)
        return -1;
    struct mlflow_buf f = {0};
    mlflow_buf_adds(&f, "");
    int bad = 0;
    if (name) {
        mlflow_buf_adds(&f, "name = ");
        bad |= mlflow_quote(&f, name);
    }
    if (prefix && *prefix) {
        /* LIKE reads % and _ as wildcards: the answer is filtered again below. */
        char *pattern = malloc(strlen(prefix) + 2);
        if (pattern) {
            strcpy(pattern, prefix);
            strcat(pattern, "%");
            mlflow_buf_adds(&f, name ? " and name LIKE " : "name LIKE ");
            bad |= mlflow_quote(&f, pattern);
        }
        free(pattern);
        bad |= !pattern;
    }
    if (bad || f.oom) {
        free(f.p);
        return failf(&c, LLMOPS_ERR_INVALID, 0, 0,
                     "MLflow cannot quote this name (it holds both ' and \", or ends in a "
                     "backslash)");
    }
    json_t *body = json_pack("{s:I,s:s}", "max_results", max, "view_type", view);
    if (body && f.len)
        json_object_set_new(body, "filter", json_string(f.p));
    if (body && token)
        json_object_set_new(body, "page_token", json_string(token));
    free(f.p);
    json_t *ans;
    int rc = body ? api(&c, "experiments/search", NULL, body, 1, &ans) : oom(&c);
    json_decref(body);
    if (rc < 0)
        return -1;
    json_t *list = json_array(), *o = json_pack("{s:o}", "experiments", list);
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(ans, "experiments"), i, e)
    {
        char why[160];
        json_t *x = mlflow_experiment(e, c.s->ui, why, sizeof why);
        if (!x) {
            json_decref(ans);
            json_decref(o);
            return malformed(&c, "experiments/search", why);
        }
        const char *n = json_string_value(json_object_get(x, "name"));
        if ((name && strcmp(n, name) != 0) || (prefix && strncmp(n, prefix, strlen(prefix)) != 0)) {
            json_decref(x);
            continue;
        }
        json_array_append_new(list, x);
    }
    rc = pass_token(&c, "experiments/search", ans, o);
    json_decref(ans);
    if (rc < 0) {
        json_decref(o);
        return -1;
    }
    *out = o;
    return 0;
}

static int set_experiment_tags(void *state, json_t *in, json_t **out, struct llmops_error *err)
{
    struct call c = begin(state, "set_experiment_tags", err);
    const char *id = in_str(in, "external_id");
    json_t *tags = json_object_get(in, "tags");
    json_t *list = tag_list(&c, tags, "tags", "");
    if (!list)
        return -1;
    size_t i;
    json_t *t;
    json_array_foreach(list, i, t)
    {
        json_t *body = json_pack("{s:s,s:O,s:O}", "experiment_id", id, "key",
                                 json_object_get(t, "key"), "value", json_object_get(t, "value"));
        json_t *ans;
        int rc = body ? api(&c, "experiments/set-experiment-tag", NULL, body, 1, &ans) : oom(&c);
        json_decref(body);
        if (rc < 0) {
            json_decref(list);
            return -1;
        }
        json_decref(ans);
    }
    json_decref(list);
    *out = json_object();
    return 0;
}

static int delete_experiment(void *state, json_t *in, json_t **out, struct llmops_error *err)
{
    struct call c = begin(state, "delete_experiment", err);
    const char *id = in_str(in, "external_id");
    json_t *exp;
    if (get_experiment_by(&c, "experiments/get", "experiment_id", id, NULL, &exp) < 0) {
        if (err->code != LLMOPS_ERR_NOT_FOUND)
            return -1;
        *out = json_pack("{s:b}", "deleted", 0); /* already gone */
        return 0;
    }
    int gone = strcmp(json_string_value(json_object_get(exp, "lifecycle")), "deleted") == 0;
    json_decref(exp);
    if (!gone) {
        json_t *body = json_pack("{s:s}", "experiment_id", id), *ans;
        int rc = body ? api(&c, "experiments/delete", NULL, body, 1, &ans) : oom(&c);
        json_decref(body);
        if (rc < 0)
            return -1;
        json_decref(ans);
    }
    *out = json_pack("{s:b}", "deleted", !gone);
    return 0;
}

/* ------------------------------------------------------------------ runs */

static int run_from_answer(struct call *c, const char *endpoint, json_t *ans, json_t **out)
{
    char why[160];
    *out = mlflow_run(json_object_get(ans, "run"), c->s->ui, why, sizeof why);
    json_decref(ans);
    return *out ? 0 : malformed(c, endpoint, why);
}

static int create_run(void *state, json_t *in, json_t **out, struct llmops_error *err)
{
    struct call c = begin(state, "create_run", err);
    const char *key = in_str(in, "idempotency_key"), *exp = in_str(in, "experiment_id");
    const char *name = in_str(in, "name"), *user = in_str(in, "user");
    json_t *start = json_object_get(in, "start_time_ms");
    json_t *tags = tag_list(&c, json_object_get(in, "tags"), "tags", key);
    if (!tags)
        return -1;
    json_t *run;
    int found = find_run(&c, exp, key, &run);
    if (found <= 0) {
        json_decref(tags);
        if (found < 0)
            return -1;
        c.s->host->metric_add(c.s->host, "idempotent_replays", 1);
        json_object_set_new(run, "created", json_false());
        *out = run;
        return 0;
    }
    /* start_time always: without it MLflow stores 0. */
    json_t *body =
        json_pack("{s:s,s:O,s:o}", "experiment_id", exp, "start_time", start, "tags", tags);
    if (body && name && *name)
        json_object_set_new(body, "run_name", json_string(name));
    if (body && user && *user)
        json_object_set_new(body, "user_id", json_string(user));
    json_t *ans;
    int rc = body ? api(&c, "runs/create", NULL, body, 0, &ans) : oom(&c);
    json_decref(body);
    if (rc == 0) {
        if (run_from_answer(&c, "runs/create", ans, &run) < 0)
            return -1;
        json_object_set_new(run, "created", json_true());
        *out = run;
        return 0;
    }
    if (maybe_done(&c)) {
        /* Not there before this call: if it is there now, this call made it. */
        struct llmops_error first = *err;
        if (find_run(&c, exp, key, &run) == 0) {
            json_object_set_new(run, "created", json_true());
            *out = run;
            return 0;
        }
        *err = first;
    }
    return -1;
}

static int get_run(void *state, json_t *in, json_t **out, struct llmops_error *err)
{
    struct call c = begin(state, "get_run", err);
    const char *id = in_str(in, "external_id");
    json_t *ans;
    if (api_get1(&c, "runs/get", "run_id", id, &ans) < 0)
        return -1;
    return run_from_answer(&c, "runs/get", ans, out);
}

static int update_run(void *state, json_t *in, json_t **out, struct llmops_error *err)
{
    struct call c = begin(state, "update_run", err);
    const char *id = in_str(in, "external_id");
    json_t *status = json_object_get(in, "status"), *end = json_object_get(in, "end_time_ms");
    json_t *name = json_object_get(in, "name");
    json_t *body = json_pack("{s:s}", "run_id", id), *ans;
    if (body && status)
        json_object_set(body, "status", status);
    if (body && end)
        json_object_set(body, "end_time", end);
    if (body && name)
        json_object_set(body, "run_name", name);
    int rc = body ? api(&c, "runs/update", NULL, body, 1, &ans) : oom(&c);
    json_decref(body);
    if (rc < 0)
        return -1;
    char why[160];
    *out = mlflow_run_info(json_object_get(ans, "run_info"), c.s->ui,
                           name ? json_string_value(name) : NULL, why, sizeof why);
    json_decref(ans);
    return *out ? 0 : malformed(&c, "runs/update", why);
}

static int delete_run(void *state, json_t *in, json_t **out, struct llmops_error *err)
{
    struct call c = begin(state, "delete_run", err);
    const char *id = in_str(in, "external_id");
    json_t *ans, *run;
    if (api_get1(&c, "runs/get", "run_id", id, &ans) < 0) {
        if (err->code != LLMOPS_ERR_NOT_FOUND)
            return -1;
        *out = json_pack("{s:b}", "deleted", 0); /* already gone */
        return 0;
    }
    if (run_from_answer(&c, "runs/get", ans, &run) < 0)
        return -1;
    int gone = strcmp(json_string_value(json_object_get(run, "lifecycle")), "deleted") == 0;
    json_decref(run);
    if (!gone) {
        json_t *body = json_pack("{s:s}", "run_id", id);
        int rc = body ? api(&c, "runs/delete", NULL, body, 1, &ans) : oom(&c);
        json_decref(body);
        if (rc < 0)
            return -1;
        json_decref(ans);
    }
    *out = json_pack("{s:b}", "deleted", !gone);
    return 0;
}

static int whole_history(struct call *c, const char *run, const char *key, json_t **all);

/* The points the run holds for every key of `metrics` (MLflow's form), or NULL (c->err). */
static json_t *stored_points(struct call *c, const char *run, json_t *metrics)
{
    json_t *names = json_object(), *all = json_array(), *m;
    size_t i;
    json_array_foreach(metrics, i, m)
        json_object_set(names, json_string_value(json_object_get(m, "key")), json_null());
    const char *k;
    json_t *v;
    json_object_foreach(names, k, v)
    {
        json_t *one;
        if (whole_history(c, run, k, &one) < 0) {
            json_decref(names);
            json_decref(all);
            return NULL;
        }
        json_array_extend(all, one);
        json_decref(one);
    }
    json_decref(names);
    return all;
}

/* Sends one runs/log-batch `body` (its metrics without duplicates) so that sending it again is
 * safe on a real MLflow 2.x SQL store. That store drops a point it holds already by comparing
 * key, timestamp, step and value after its INSERT broke the primary key, and NaN never equals
 * NaN: a NaN point the run holds (a replay, a re-delivery, or this very batch stored while its
 * answer was lost and the core's client sent it again) reaches the INSERT again, and the batch
 * is refused with 400 BAD_REQUEST ("UNIQUE constraint failed: metrics..."; so is a replay whose
 * stored points' keys are missing from one of its slices of 100 points). Its params are stored
 * by then, its tags not, its metrics not or in part. So, on that refusal: read what the run
 * holds of the batch's keys, leave those points out and send the rest; a refusal that no
 * stored point explains is reported as it came. */
static int send_batch(struct call *c, const char *run, json_t *body)
{
    const struct llmops_host *h = c->s->host;
    json_t *ms = json_object_get(body, "metrics"), *ans;
    if (mlflow_points_drop(ms, NULL) < 0)
        return oom(c);
    for (int resend = 0;; resend++) {
        if (api(c, "runs/log-batch", NULL, body, 1, &ans) == 0) {
            json_decref(ans);
            return 0;
        }
        if (resend == MLFLOW_BATCH_RESENDS || c->err->tool_status != 400 ||
            strcmp(c->error_code, "BAD_REQUEST") != 0 || json_array_size(ms) == 0)
            return -1;
        struct llmops_error refused = *c->err;
        json_t *held = stored_points(c, run, ms);
        if (!held)
            return -1;
        size_t before = json_array_size(ms);
        long dropped = mlflow_points_drop(ms, held);
        json_decref(held);
        if (dropped < 0)
            return oom(c);
        if (dropped == 0) {
            *c->err = refused;
            return -1;
        }
        h->metric_add(h, "replayed_batches", 1);
        h->log(h, LLMOPS_LOG_INFO,
               "%s: MLflow refused a batch holding points it has (it matches no NaN point, "
               "nor keys past a slice of 100); %ld of %zu are stored, sending the other %zu",
               c->op, dropped, before, json_array_size(ms));
        if (json_array_size(ms) == 0 && json_array_size(json_object_get(body, "params")) == 0 &&
            json_array_size(json_object_get(body, "tags")) == 0)
            return 0;
    }
}

static int log_batch(void *state, json_t *in, json_t **out, struct llmops_error *err)
{
    struct call c = begin(state, "log_batch", err);
    const char *id = in_str(in, "external_id");
    json_t *metrics = json_object_get(in, "metrics"), *params = json_object_get(in, "params");
    size_t nm = json_array_size(metrics), np = json_object_size(params);
    json_t *tags = tag_list(&c, json_object_get(in, "tags"), "tags", "");
    if (!tags)
        return -1;
    size_t nt = json_array_size(tags);
    if (nm > LLMOPS_TRACKING_BATCH_MAX_METRICS || np > LLMOPS_TRACKING_BATCH_MAX_PARAMS ||
        nt > LLMOPS_TRACKING_BATCH_MAX_TAGS || nm + np + nt > LLMOPS_TRACKING_BATCH_MAX_ENTRIES) {
        json_decref(tags);
        return failf(&c, LLMOPS_ERR_INVALID, 0, 0,
                     "a batch holds at most %d metrics, %d params, %d tags, %d entries",
                     LLMOPS_TRACKING_BATCH_MAX_METRICS, LLMOPS_TRACKING_BATCH_MAX_PARAMS,
                     LLMOPS_TRACKING_BATCH_MAX_TAGS, LLMOPS_TRACKING_BATCH_MAX_ENTRIES);
    }
    json_t *ms = json_array(), *ps = json_array();
    size_t i;
    json_t *m;
    json_array_foreach(metrics, i, m)
    {
        json_t *key = json_object_get(m, "key"), *ts = json_object_get(m, "timestamp_ms");
        json_t *step = json_object_get(m, "step");
        json_t *value = mlflow_value_out(json_object_get(m, "value"));
        if (!json_is_string(key) || !value || !json_is_integer(ts) ||
            (step && !json_is_integer(step))) {
            json_decref(value);
            json_decref(ms);
            json_decref(ps);
            json_decref(tags);
            return failf(&c, LLMOPS_ERR_INVALID, 0, 0,
                         "metrics[%zu] needs key, value (a number, \"NaN\", \"Infinity\" or "
                         "\"-Infinity\") and timestamp_ms",
                         i);
        }
        json_array_append_new(ms, json_pack("{s:O,s:o,s:O,s:I}", "key", key, "value", value,
                                            "timestamp", ts, "step",
                                            (json_int_t)(step ? json_integer_value(step) : 0)));
    }
    const char *k;
    json_t *v;
    json_object_foreach(params, k, v)
    {
        if (!json_is_string(v)) {
            json_decref(ms);
            json_decref(ps);
            json_decref(tags);
            return failf(&c, LLMOPS_ERR_INVALID, 0, 0, "param values must be strings");
        }
        json_array_append_new(ps, json_pack("{s:s,s:O}", "key", k, "value", v));
    }
    json_t *body =
        json_pack("{s:s,s:o,s:o,s:o}", "run_id", id, "metrics", ms, "params", ps, "tags", tags);
    int rc = body ? send_batch(&c, id, body) : oom(&c);
    json_decref(body);
    if (rc < 0)
        return -1;
    *out = json_object();
    return 0;
}

/* Every point of one key, following MLflow's own pages where a server has them (2.14 answers
 * everything at once and ignores max_results). */
static int whole_history(struct call *c, const char *run, const char *key, json_t **all)
{
    *all = json_array();
    char *next = NULL;
    for (int page = 0; page < MLFLOW_HISTORY_PAGES; page++) {
        struct mlflow_buf q = {0};
        int bad = query_add(&q, "run_id", run) < 0 || query_add(&q, "metric_key", key) < 0 ||
                  (next && query_add(&q, "page_token", next) < 0);
        free(next);
        next = NULL;
        json_t *ans;
        int rc = bad ? oom(c) : api(c, "metrics/get-history", q.p, NULL, 0, &ans);
        free(q.p);
        if (rc < 0)
            goto fail;
        size_t i;
        json_t *m;
        json_array_foreach(json_object_get(ans, "metrics"), i, m)
        {
            char why[160];
            json_t *x = mlflow_metric(m, why, sizeof why);
            if (!x) {
                json_decref(ans);
                malformed(c, "metrics/get-history", why);
                goto fail;
            }
            json_array_append_new(*all, x);
        }
        const char *t = json_string_value(json_object_get(ans, "next_page_token"));
        next = t && *t ? strdup(t) : NULL;
        json_decref(ans);
        if (!next)
            return 0;
    }
    free(next);
    malformed(c, "metrics/get-history", "more than 1000 pages");
fail:
    json_decref(*all);
    *all = NULL;
    return -1;
}

static int get_metric_history(void *state, json_t *in, json_t **out, struct llmops_error *err)
{
    struct call c = begin(state, "get_metric_history", err);
    const char *id = in_str(in, "external_id"), *key = in_str(in, "key");
    json_int_t max = json_integer_value(json_object_get(in, "max_results"));
    long long offset;
    if (mlflow_history_token(in_str(in, "page_token"), &offset) < 0)
        return failf(&c, LLMOPS_ERR_INVALID, 0, 0, "page_token is not one this module gave");
    json_t *all;
    if (whole_history(&c, id, key, &all) < 0)
        return -1;
    if (json_array_size(all) == 0) {
        /* MLflow answers {} for a run it does not have as for a key never logged */
        json_t *ans;
        if (api_get1(&c, "runs/get", "run_id", id, &ans) < 0) {
            json_decref(all);
            return -1;
        }
        json_decref(ans);
    }
    if (mlflow_history_sort(all) < 0) {
        json_decref(all);
        return oom(&c);
    }
    long long total = (long long)json_array_size(all);
    json_t *page = json_array();
    for (long long i = offset; i < total && i < offset + max; i++)
        json_array_append(page, json_array_get(all, (size_t)i));
    json_decref(all);
    json_t *o = json_pack("{s:o}", "metrics", page);
    if (o && offset + max < total) {
        char next[32];
        snprintf(next, sizeof next, "%lld", offset + (long long)max);
        json_object_set_new(o, "next_page_token", json_string(next));
    }
    if (!o)
        return oom(&c);
    *out = o;
    return 0;
}

static int search_runs(void *state, json_t *in, json_t **out, struct llmops_error *err)
{
    struct call c = begin(state, "search_runs", err);
    json_t *ids = json_object_get(in, "experiment_ids");
    const char *token = in_str(in, "page_token"), *view = view_type(in);
    json_int_t max = json_integer_value(json_object_get(in, "max_results"));
    char msg[256];
    if (check_token(&c, token) < 0)
        return -1;
    char *filter = mlflow_render_filter(json_object_get(in, "filter"), msg, sizeof msg);
    if (!filter)
        return failf(&c, LLMOPS_ERR_INVALID, 0, 0, "%s", msg);
    json_t *order = mlflow_render_order_by(json_object_get(in, "order_by"), msg, sizeof msg);
    if (!order) {
        free(filter);
        return failf(&c, LLMOPS_ERR_INVALID, 0, 0, "%s", msg);
    }
    if (json_array_size(order) == 0)
        json_array_append_new(order, json_string("attributes.start_time DESC"));
    json_t *body = json_pack("{s:O,s:I,s:s,s:o}", "experiment_ids", ids, "max_results", max,
                             "run_view_type", view, "order_by", order);
    if (body && *filter)
        json_object_set_new(body, "filter", json_string(filter));
    if (body && token)
        json_object_set_new(body, "page_token", json_string(token));
    free(filter);
    json_t *ans;
    int rc = body ? api(&c, "runs/search", NULL, body, 1, &ans) : oom(&c);
    json_decref(body);
    if (rc < 0)
        return -1;
    json_t *runs = json_array(), *o = json_pack("{s:o}", "runs", runs), *r;
    size_t i;
    json_array_foreach(json_object_get(ans, "runs"), i, r)
    {
        char why[160];
        json_t *x = mlflow_run(r, c.s->ui, why, sizeof why);
        if (!x) {
            json_decref(ans);
            json_decref(o);
            return malformed(&c, "runs/search", why);
        }
        json_array_append_new(runs, x);
    }
    rc = pass_token(&c, "runs/search", ans, o);
    json_decref(ans);
    if (rc < 0) {
        json_decref(o);
        return -1;
    }
    *out = o;
    return 0;
}

static int find_by_idempotency_key(void *state, json_t *in, json_t **out, struct llmops_error *err)
{
    struct call c = begin(state, "find_by_idempotency_key", err);
    const char *kind = in_str(in, "kind"), *key = in_str(in, "idempotency_key");
    const char *exp = in_str(in, "experiment_id");
    if (!kind || !key || !*key)
        return failf(&c, LLMOPS_ERR_INVALID, 0, 0, "kind and idempotency_key are required");
    int rc;
    if (strcmp(kind, "experiment") == 0) {
        rc = find_experiment(&c, key, out);
    } else if (strcmp(kind, "run") == 0) {
        if (!exp || !*exp)
            return failf(&c, LLMOPS_ERR_INVALID, 0, 0,
                         "experiment_id is required for kind run (MLflow searches runs only "
                         "within experiments)");
        rc = find_run(&c, exp, key, out);
    } else {
        return failf(&c, LLMOPS_ERR_INVALID, 0, 0, "kind must be experiment or run");
    }
    if (rc == 1)
        return failf(&c, LLMOPS_ERR_NOT_FOUND, 0, 0, "no %s carries this idempotency key", kind);
    return rc;
}

/* ------------------------------------------------------------------ the descriptor */

static const struct llmops_tracking_ops ops = {
    .size = sizeof ops,
    .create_experiment = create_experiment,
    .get_experiment = get_experiment,
    .search_experiments = search_experiments,
    .set_experiment_tags = set_experiment_tags,
    .delete_experiment = delete_experiment,
    .create_run = create_run,
    .get_run = get_run,
    .update_run = update_run,
    .delete_run = delete_run,
    .log_batch = log_batch,
    .get_metric_history = get_metric_history,
    .search_runs = search_runs,
    .find_by_idempotency_key = find_by_idempotency_key,
};

/* url without "user:password@": links go to API clients. */
static char *ui_base(const char *url)
{
    const char *scheme = strstr(url, "://");
    size_t pre = scheme ? (size_t)(scheme - url) + 3 : 0;
    const char *auth = url + pre;
    size_t alen = strcspn(auth, "/?#");
    const char *at = NULL;
    for (size_t i = 0; i < alen; i++)
        if (auth[i] == '@')
            at = auth + i;
    struct mlflow_buf b = {0};
    mlflow_buf_add(&b, url, pre);
    mlflow_buf_adds(&b, at ? at + 1 : auth);
    mlflow_buf_adds(&b, "");
    while (b.p && b.len > 0 && b.p[b.len - 1] == '/')
        b.p[--b.len] = '\0';
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

static int mlflow_init(const struct llmops_host *host, void **state, struct llmops_error *err)
{
    const char *url = host->config_string(host, "url", NULL);
    if (!url || !*url) {
        char m[300];
        snprintf(m, sizeof m, "%s: the mlflow module needs url (the tracking server's base URL)",
                 host->config_where(host, "url"));
        return llmops_fail(err, LLMOPS_ERR_INVALID, 0, 0, m);
    }
    struct mlflow *s = calloc(1, sizeof *s);
    if (!s)
        return llmops_fail(err, LLMOPS_ERR_INTERNAL, 0, 0, "out of memory");
    s->host = host;
    s->ui = ui_base(host->config_string(host, "ui_url", url));
    s->timeout_ms = host->config_int(host, "timeout_ms", 10000);
    if (!s->ui) {
        free(s);
        return llmops_fail(err, LLMOPS_ERR_INTERNAL, 0, 0, "out of memory");
    }
    *state = s;
    return 0;
}

static void mlflow_fini(void *state)
{
    struct mlflow *s = state;
    if (s)
        free(s->ui);
    free(s);
}

static int mlflow_health(void *state, json_t **info, struct llmops_error *err)
{
    struct call c = begin(state, "health", err);
    struct llmops_http_response resp;
    if (request(&c, "/version", "/version", NULL, 0, &resp) < 0)
        return -1;
    char version[64];
    int ok = mlflow_version_parse(resp.body, resp.body_len, version, sizeof version) == 0;
    int status = resp.status;
    c.s->host->http_free(&resp);
    if (!ok)
        return failf(&c, LLMOPS_ERR_TOOL, status, 0,
                     "MLflow /version: the answer is not a version (is url an MLflow tracking "
                     "server?)");
    int supported = c.s->host->version_in_range(version, MLFLOW_TOOL_MIN, MLFLOW_TOOL_MAX);
    *info = json_pack("{s:s,s:b,s:s,s:s}", "tool_version", version, "supported", supported,
                      "supported_min", MLFLOW_TOOL_MIN, "supported_max", MLFLOW_TOOL_MAX);
    return *info ? 0 : oom(&c);
}

static int mlflow_capabilities(void *state, json_t **out, struct llmops_error *err)
{
    (void)state;
    json_t *list = json_array();
#define MLFLOW_OP_NAME_(member, required) json_array_append_new(list, json_string(#member));
    LLMOPS_TRACKING_OPS(MLFLOW_OP_NAME_)
#undef MLFLOW_OP_NAME_
    *out = json_pack("{s:o,s:s,s:s}", "operations", list, "tool_version_min", MLFLOW_TOOL_MIN,
                     "tool_version_max", MLFLOW_TOOL_MAX);
    return *out ? 0 : llmops_fail(err, LLMOPS_ERR_INTERNAL, 0, 0, "out of memory");
}

static const struct llmops_plugin descriptor = {
    .magic = LLMOPS_PLUGIN_MAGIC_INIT,
    .size = sizeof(struct llmops_plugin),
    .name = "mlflow",
    .version = MLFLOW_MODULE_VERSION,
    .category = LLMOPS_CATEGORY_EXPERIMENT_TRACKING,
    .category_abi = LLMOPS_TRACKING_ABI,
    .ops = &ops,
    .config_keys = keys,
    .tool_version_min = MLFLOW_TOOL_MIN,
    .tool_version_max = MLFLOW_TOOL_MAX,
    .init = mlflow_init,
    .fini = mlflow_fini,
    .health = mlflow_health,
    .capabilities = mlflow_capabilities,
};

LLMOPS_PLUGIN_DEFINE(descriptor)
