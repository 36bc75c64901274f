/* mlflow_parse.c — see mlflow_parse.h. */
#include "mlflow_parse.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ small helpers */

static void say(char *buf, size_t size, const char *s)
{
    if (buf && size)
        snprintf(buf, size, "%s", s);
}

/* One line of at most size-1 bytes: control characters become spaces; cut between UTF-8
 * characters (the tool's text may quote the client's), bytes that begin none become U+FFFD. */
static void one_line(char *dst, size_t size, const char *src, size_t len)
{
    char line[1024];
    size_t n = 0;
    for (size_t i = 0; src && i < len && n + 1 < sizeof line && n < 4 * size; i++) {
        unsigned char c = (unsigned char)src[i];
        line[n++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
    }
    line[n] = '\0';
    llmops_quote(dst, size, line, SIZE_MAX);
}

static int upper_token(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= sizeof(((struct mlflow_fault *)0)->error_code))
        return 0;
    return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") == n;
}

/* An integer MLflow sends: a JSON integer, an integral real, or a decimal string (protobuf's
 * JSON form of int64). */
static int get_int(json_t *v, long long *out)
{
    if (json_is_integer(v)) {
        *out = (long long)json_integer_value(v);
        return 0;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d != floor(d) || d < -9.2e18 || d > 9.2e18)
            return -1;
        *out = (long long)d;
        return 0;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        if (!*s || strlen(s) > 20)
            return -1;
        errno = 0;
        long long x = strtoll(s, &end, 10);
        if (*end || errno)
            return -1;
        *out = x;
        return 0;
    }
    return -1;
}

/* An optional integer member: absent or null is `def`; anything else must be an integer. */
static int opt_int(json_t *o, const char *k, long long def, long long *out)
{
    json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v)) {
        *out = def;
        return 0;
    }
    return get_int(v, out);
}

int mlflow_id(json_t *v, char *buf, size_t size)
{
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        if (n == 0 || n > MLFLOW_ID_MAX || n >= size || strlen(s) != n)
            return -1;
        memcpy(buf, s, n + 1);
        return 0;
    }
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        snprintf(buf, size, "%lld", (long long)json_integer_value(v));
        return 0;
    }
    return -1;
}

/* ------------------------------------------------------------------ answers */

static int contains(const char *hay, const char *needle)
{
    return hay && strstr(hay, needle) != NULL;
}

int mlflow_classify(int status, const char *body, size_t len, struct mlflow_fault *f)
{
    memset(f, 0, sizeof *f);
    f->tool_status = status;
    if (status >= 200 && status < 300)
        return 0;
    const char *code = NULL, *msg = NULL;
    json_t *j = body && len ? json_loadb(body, len, 0, NULL) : NULL;
    if (json_is_object(j)) {
        code = json_string_value(json_object_get(j, "error_code"));
        msg = json_string_value(json_object_get(j, "message"));
        if (code && !upper_token(code))
            code = NULL;
    }
    if (code)
        snprintf(f->error_code, sizeof f->error_code, "%s", code);
    if (msg)
        one_line(f->detail, sizeof f->detail, msg, strlen(msg));
    else
        one_line(f->detail, sizeof f->detail, body, len);

    enum llmops_status st = LLMOPS_ERR_TOOL;
    int retry = 0;
    const char *what;
    if (status == 401) {
        what = "refused the module's credentials";
    } else if (status == 403) {
        what = "denied the module's credentials access";
    } else if (status == 429) {
        what = "is limiting the request rate";
        retry = 1;
    } else if (status >= 500 && status <= 599) {
        what = "failed";
        retry = 1;
    } else if (code && strcmp(code, "RESOURCE_DOES_NOT_EXIST") == 0) {
        st = LLMOPS_ERR_NOT_FOUND;
        what = "not found";
    } else if (code && strcmp(code, "RESOURCE_ALREADY_EXISTS") == 0) {
        st = LLMOPS_ERR_CONFLICT;
        what = "already exists";
    } else if (code && contains(msg, "Changing param values is not allowed")) {
        st = LLMOPS_ERR_CONFLICT;
        what = "a param already has another value";
    } else if (code && contains(msg, "must be in the 'active' state")) {
        st = LLMOPS_ERR_INVALID;
        what = "it is deleted";
    } else if (code && contains(msg, "page token")) {
        st = LLMOPS_ERR_INVALID;
        what = "the page_token is not valid";
    } else if (code && status == 400) {
        st = LLMOPS_ERR_INVALID;
        what = "refused the request";
    } else if (status == 404) {
        what = "has no such endpoint (is url an MLflow tracking server?)";
    } else if (status == 405) {
        what = "refused the method";
    } else if (code) {
        what = "answered an error";
    } else {
        what = "answered an unexpected status";
    }
    f->code = st;
    f->retryable = retry;
    snprintf(f->what, sizeof f->what, "%s", what);
    json_decref(j);
    return 1;
}

json_t *mlflow_parse_object(const char *body, size_t len)
{
    if (!body)
        return NULL;
    json_t *j = json_loadb(body, len, 0, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/* ------------------------------------------------------------------ URLs */

char *mlflow_url_encode(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    char *out = malloc(3 * n + 1), *o = out;
    if (!out)
        return NULL;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 15];
        }
    }
    *o = '\0';
    return out;
}

static json_t *ui_link(const char *ui_base, const char *exp_id, const char *run_id)
{
    if (!ui_base || !*ui_base)
        return NULL;
    char *e = mlflow_url_encode(exp_id);
    char *r = run_id ? mlflow_url_encode(run_id) : NULL;
    json_t *link = NULL;
    if (e && (r || !run_id)) {
        struct mlflow_buf b = {0};
        mlflow_buf_adds(&b, ui_base);
        mlflow_buf_adds(&b, "/#/experiments/");
        mlflow_buf_adds(&b, e);
        if (r) {
            mlflow_buf_adds(&b, "/runs/");
            mlflow_buf_adds(&b, r);
        }
        if (!b.oom && b.p)
            link = json_pack("{s:s}", "ui", b.p);
        free(b.p);
    }
    free(e);
    free(r);
    return link;
}

/* ------------------------------------------------------------------ objects */

const char *mlflow_tag_value(json_t *list, const char *key)
{
    size_t i;
    json_t *t;
    if (!json_is_array(list))
        return NULL;
    json_array_foreach(list, i, t)
    {
        const char *k = json_string_value(json_object_get(t, "key"));
        if (k && strcmp(k, key) == 0)
            return json_string_value(json_object_get(t, "value"));
    }
    return NULL;
}

/* MLflow's [{key, value}] (absent: empty) → {key: value}, without the idempotency tag when
 * `hide_key_tag`. NULL when malformed. A value MLflow left out is "". */
static json_t *pairs(json_t *list, int hide_key_tag, const char *what, char *why, size_t whysize)
{
    json_t *o = json_object();
    if (!list || json_is_null(list))
        return o;
    if (!json_is_array(list)) {
        json_decref(o);
        snprintf(why, whysize, "%s is not a list", what);
        return NULL;
    }
    size_t i;
    json_t *t;
    json_array_foreach(list, i, t)
    {
        json_t *k = json_object_get(t, "key"), *v = json_object_get(t, "value");
        if (!json_is_string(k) || json_string_length(k) == 0 || (v && !json_is_string(v))) {
            json_decref(o);
            snprintf(why, whysize, "%s[%zu] is not {key, value} of strings", what, i);
            return NULL;
        }
        if (hide_key_tag && strcmp(json_string_value(k), LLMOPS_TRACKING_KEY_TAG) == 0)
            continue;
        json_object_set_new(o, json_string_value(k), json_string(v ? json_string_value(v) : ""));
    }
    return o;
}

static const char *lifecycle_of(json_t *v)
{
    const char *s = json_string_value(v);
    return s && strcmp(s, "deleted") == 0 ? "deleted" : "active";
}

json_t *mlflow_experiment(json_t *e, const char *ui_base, char *why, size_t whysize)
{
    char id[MLFLOW_ID_MAX + 1];
    if (!json_is_object(e)) {
        say(why, whysize, "the experiment is not an object");
        return NULL;
    }
    if (mlflow_id(json_object_get(e, "experiment_id"), id, sizeof id) < 0) {
        say(why, whysize, "the experiment has no experiment_id");
        return NULL;
    }
    json_t *name = json_object_get(e, "name");
    if (!json_is_string(name)) {
        say(why, whysize, "the experiment has no name");
        return NULL;
    }
    long long created, updated;
    if (opt_int(e, "creation_time", -1, &created) < 0 ||
        opt_int(e, "last_update_time", -1, &updated) < 0) {
        say(why, whysize, "the experiment's times are not integers");
        return NULL;
    }
    json_t *tags = pairs(json_object_get(e, "tags"), 1, "tags", why, whysize);
    if (!tags)
        return NULL;
    json_t *o = json_pack("{s:s,s:O,s:s,s:o}", "external_id", id, "name", name, "lifecycle",
                          lifecycle_of(json_object_get(e, "lifecycle_stage")), "tags", tags);
    if (!o) {
        say(why, whysize, "out of memory");
        return NULL;
    }
    if (created >= 0)
        json_object_set_new(o, "created_ms", json_integer(created));
    if (updated >= 0)
        json_object_set_new(o, "updated_ms", json_integer(updated));
    json_t *link = ui_link(ui_base, id, NULL);
    if (link)
        json_object_set_new(o, "links", link);
    json_t *loc = json_object_get(e, "artifact_location");
    if (json_is_string(loc))
        json_object_set_new(o, "tool", json_pack("{s:O}", "artifact_location", loc));
    return o;
}

json_t *mlflow_run_info(json_t *info, const char *ui_base, const char *name_fallback, char *why,
                        size_t whysize)
{
    char id[MLFLOW_ID_MAX + 1], exp[MLFLOW_ID_MAX + 1];
    if (!json_is_object(info)) {
        say(why, whysize, "the run has no info object");
        return NULL;
    }
    if (mlflow_id(json_object_get(info, "run_id"), id, sizeof id) < 0 &&
        mlflow_id(json_object_get(info, "run_uuid"), id, sizeof id) < 0) {
        say(why, whysize, "the run has no run_id");
        return NULL;
    }
    if (mlflow_id(json_object_get(info, "experiment_id"), exp, sizeof exp) < 0) {
        say(why, whysize, "the run has no experiment_id");
        return NULL;
    }
    const char *status = json_string_value(json_object_get(info, "status"));
    if (!status || !upper_token(status)) {
        say(why, whysize, "the run has no status");
        return NULL;
    }
    long long start, end;
    if (opt_int(info, "start_time", 0, &start) < 0 || opt_int(info, "end_time", -1, &end) < 0) {
        say(why, whysize, "the run's times are not integers");
        return NULL;
    }
    const char *name = json_string_value(json_object_get(info, "run_name"));
    if (!name || !*name)
        name = name_fallback ? name_fallback : "";
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:I}", "external_id", id, "experiment_id", exp,
                          "name", name, "status", status, "lifecycle",
                          lifecycle_of(json_object_get(info, "lifecycle_stage")), "start_time_ms",
                          (json_int_t)start);
    if (!o) {
        say(why, whysize, "the run's name is not UTF-8");
        return NULL;
    }
    json_t *end_v = json_object_get(info, "end_time");
    if (end_v && !json_is_null(end_v))
        json_object_set_new(o, "end_time_ms", json_integer(end));
    const char *user = json_string_value(json_object_get(info, "user_id"));
    if (user && *user)
        json_object_set_new(o, "user", json_string(user));
    json_t *link = ui_link(ui_base, exp, id);
    if (link)
        json_object_set_new(o, "links", link);
    json_t *uri = json_object_get(info, "artifact_uri");
    if (json_is_string(uri))
        json_object_set_new(o, "tool", json_pack("{s:O}", "artifact_uri", uri));
    return o;
}

json_t *mlflow_value_in(json_t *v)
{
    if (!v || json_is_null(v))
        return json_real(0.0); /* protobuf leaves a 0 value out */
    if (json_is_number(v)) {
        double d = json_number_value(v);
        if (d >= MLFLOW_DBL_MAX)
            return json_string("Infinity");
        if (d <= -MLFLOW_DBL_MAX)
            return json_string("-Infinity");
        return json_real(d);
    }
    const char *s = json_string_value(v);
    if (!s)
        return NULL;
    if (strcmp(s, "NaN") == 0 || strcmp(s, "nan") == 0)
        return json_string("NaN");
    if (strcmp(s, "Infinity") == 0 || strcmp(s, "inf") == 0)
        return json_string("Infinity");
    if (strcmp(s, "-Infinity") == 0 || strcmp(s, "-inf") == 0)
        return json_string("-Infinity");
    return NULL;
}

json_t *mlflow_value_out(json_t *v)
{
    if (json_is_integer(v) || json_is_real(v))
        return json_incref(v);
    const char *s = json_string_value(v);
    if (s && (strcmp(s, "NaN") == 0 || strcmp(s, "Infinity") == 0 || strcmp(s, "-Infinity") == 0))
        return json_string(s);
    return NULL;
}

json_t *mlflow_metric(json_t *m, char *why, size_t whysize)
{
    json_t *key = json_object_get(m, "key");
    if (!json_is_string(key) || json_string_length(key) == 0) {
        say(why, whysize, "a metric has no key");
        return NULL;
    }
    json_t *value = mlflow_value_in(json_object_get(m, "value"));
    if (!value) {
        say(why, whysize, "a metric value is neither a number nor NaN/Infinity");
        return NULL;
    }
    long long ts, step;
    if (opt_int(m, "timestamp", 0, &ts) < 0 || opt_int(m, "step", 0, &step) < 0) {
        json_decref(value);
        say(why, whysize, "a metric's timestamp or step is not an integer");
        return NULL;
    }
    return json_pack("{s:O,s:o,s:I,s:I}", "key", key, "value", value, "timestamp_ms",
                     (json_int_t)ts, "step", (json_int_t)step);
}

json_t *mlflow_run(json_t *run, const char *ui_base, char *why, size_t whysize)
{
    if (!json_is_object(run)) {
        say(why, whysize, "the run is not an object");
        return NULL;
    }
    json_t *data = json_object_get(run, "data");
    if (data && !json_is_null(data) && !json_is_object(data)) {
        say(why, whysize, "the run's data is not an object");
        return NULL;
    }
    json_t *raw_tags = json_object_get(data, "tags");
    const char *fallback = mlflow_tag_value(raw_tags, "mlflow.runName");
    json_t *o = mlflow_run_info(json_object_get(run, "info"), ui_base, fallback, why, whysize);
    if (!o)
        return NULL;
    json_t *params = pairs(json_object_get(data, "params"), 0, "params", why, whysize);
    json_t *tags = params ? pairs(raw_tags, 1, "tags", why, whysize) : NULL;
    json_t *metrics = json_array();
    json_t *list = json_object_get(data, "metrics");
    if (list && !json_is_null(list) && !json_is_array(list)) {
        say(why, whysize, "the run's metrics are not a list");
        goto fail;
    }
    size_t i;
    json_t *m;
    json_array_foreach(list, i, m)
    {
        json_t *x = mlflow_metric(m, why, whysize);
        if (!x)
            goto fail;
        json_array_append_new(metrics, x);
    }
    if (!params || !tags)
        goto fail;
    json_object_set_new(o, "params", params);
    json_object_set_new(o, "tags", tags);
    json_object_set_new(o, "metrics", metrics);
    return o;
fail:
    json_decref(params);
    json_decref(tags);
    json_decref(metrics);
    json_decref(o);
    return NULL;
}

/* ------------------------------------------------------------------ the filter language */

void mlflow_buf_add(struct mlflow_buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void mlflow_buf_adds(struct mlflow_buf *b, const char *s)
{
    mlflow_buf_add(b, s, strlen(s));
}

int mlflow_quote(struct mlflow_buf *b, const char *s)
{
    /* MLflow tokenizes with sqlparse ('...' with '' \\ \' inside) and strips the outer quotes
     * without unescaping: a value is safe in quotes it does not contain, unless it ends in an
     * odd run of backslashes (which would escape the closing quote). */
    size_t n = strlen(s), bs = 0;
    while (bs < n && s[n - 1 - bs] == '\\')
        bs++;
    if (bs % 2)
        return -1;
    char q;
    if (!strchr(s, '\''))
        q = '\'';
    else if (!strchr(s, '"'))
        q = '"';
    else
        return -1;
    mlflow_buf_add(b, &q, 1);
    mlflow_buf_add(b, s, n);
    mlflow_buf_add(b, &q, 1);
    return 0;
}

/* `key`: MLflow reads a backquoted identifier up to the next backquote. */
static int add_key(struct mlflow_buf *b, const char *prefix, const char *key)
{
    if (!key || !*key || strchr(key, '`') || strlen(key) > LLMOPS_TRACKING_KEY_MAX)
        return -1;
    mlflow_buf_adds(b, prefix);
    mlflow_buf_adds(b, "`");
    mlflow_buf_adds(b, key);
    mlflow_buf_adds(b, "`");
    return 0;
}

/* A number as MLflow's tokenizer reads it: no '+' in an exponent, never inf or nan. */
static int add_number(struct mlflow_buf *b, json_t *v)
{
    char num[64];
    if (json_is_integer(v)) {
        snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
    } else if (json_is_real(v) && isfinite(json_real_value(v))) {
        snprintf(num, sizeof num, "%.17g", json_real_value(v));
        char *plus = strchr(num, '+');
        if (plus)
            memmove(plus, plus + 1, strlen(plus));
        if (!strpbrk(num, ".e"))
            strcat(num, ".0");
    } else {
        return -1;
    }
    mlflow_buf_adds(b, num);
    return 0;
}

static int one_of(const char *s, const char *const *list)
{
    for (; s && *list; list++)
        if (strcmp(s, *list) == 0)
            return 1;
    return 0;
}

static const char *const numeric_ops[] = {"<", "<=", "=", "!=", ">=", ">", NULL};
static const char *const string_ops[] = {"=", "!=", "LIKE", "ILIKE", NULL};
static const char *const equality_ops[] = {"=", "!=", NULL};
static const char *const statuses[] = {"RUNNING", "SCHEDULED", "FINISHED",
                                       "FAILED",  "KILLED",    NULL};

/* An interface attribute → MLflow's attribute name. */
static const char *attribute_name(const char *key)
{
    if (!key)
        return NULL;
    if (strcmp(key, "status") == 0)
        return "attributes.status";
    if (strcmp(key, "name") == 0)
        return "attributes.run_name";
    if (strcmp(key, "start_time_ms") == 0)
        return "attributes.start_time";
    if (strcmp(key, "end_time_ms") == 0)
        return "attributes.end_time";
    return NULL;
}

static int render_clause(struct mlflow_buf *b, json_t *c, size_t i, char *msg, size_t msgsize)
{
    const char *field = json_string_value(json_object_get(c, "field"));
    const char *key = json_string_value(json_object_get(c, "key"));
    const char *op = json_string_value(json_object_get(c, "op"));
    json_t *v = json_object_get(c, "value");
    if (!field || !key || !op || !v) {
        snprintf(msg, msgsize, "filter[%zu] needs field, key, op and value", i);
        return -1;
    }
    if (strcmp(field, "metric") == 0) {
        if (!one_of(op, numeric_ops) || !json_is_number(v)) {
            snprintf(msg, msgsize, "filter[%zu]: a metric compares with < <= = != >= > a number",
                     i);
            return -1;
        }
        if (add_key(b, "metrics.", key) < 0)
            goto bad_key;
        mlflow_buf_adds(b, " ");
        mlflow_buf_adds(b, op);
        mlflow_buf_adds(b, " ");
        if (add_number(b, v) < 0)
            goto bad_value;
        return 0;
    }
    if (strcmp(field, "param") == 0 || strcmp(field, "tag") == 0) {
        if (!one_of(op, string_ops) || !json_is_string(v)) {
            snprintf(msg, msgsize, "filter[%zu]: %ss compare with = != LIKE ILIKE a string", i,
                     field);
            return -1;
        }
        if (add_key(b, field[0] == 'p' ? "params." : "tags.", key) < 0)
            goto bad_key;
    } else if (strcmp(field, "attribute") == 0 && attribute_name(key)) {
        int is_time = strcmp(key, "start_time_ms") == 0 || strcmp(key, "end_time_ms") == 0;
        int ok = is_time ? one_of(op, numeric_ops) && json_is_integer(v)
                 : strcmp(key, "status") == 0
                     ? one_of(op, equality_ops) && one_of(json_string_value(v), statuses)
                     : one_of(op, string_ops) && json_is_string(v);
        if (!ok) {
            snprintf(msg, msgsize, "filter[%zu]: %s does not compare with %s that value", i, key,
                     op);
            return -1;
        }
        mlflow_buf_adds(b, attribute_name(key));
        if (is_time) {
            mlflow_buf_adds(b, " ");
            mlflow_buf_adds(b, op);
            mlflow_buf_adds(b, " ");
            return add_number(b, v) < 0 ? -1 : 0;
        }
    } else {
        snprintf(msg, msgsize, "filter[%zu]: unknown field or attribute", i);
        return -1;
    }
    mlflow_buf_adds(b, " ");
    mlflow_buf_adds(b, op);
    mlflow_buf_adds(b, " ");
    if (mlflow_quote(b, json_string_value(v)) < 0)
        goto bad_value;
    return 0;
bad_key:
    snprintf(msg, msgsize, "filter[%zu]: MLflow cannot express a key holding a backquote", i);
    return -1;
bad_value:
    snprintf(msg, msgsize,
             "filter[%zu]: MLflow cannot quote this value (it holds both ' and \", or ends in a "
             "backslash)",
             i);
    return -1;
}

char *mlflow_render_filter(json_t *clauses, char *msg, size_t msgsize)
{
    struct mlflow_buf b = {0};
    mlflow_buf_adds(&b, "");
    if (clauses && !json_is_null(clauses) && !json_is_array(clauses)) {
        snprintf(msg, msgsize, "filter must be an array of clauses");
        free(b.p);
        return NULL;
    }
    size_t i;
    json_t *c;
    json_array_foreach(clauses, i, c)
    {
        if (i > 0)
            mlflow_buf_adds(&b, " and ");
        if (render_clause(&b, c, i, msg, msgsize) < 0) {
            free(b.p);
            return NULL;
        }
    }
    if (b.oom) {
        snprintf(msg, msgsize, "out of memory");
        free(b.p);
        return NULL;
    }
    return b.p;
}

json_t *mlflow_render_order_by(json_t *order_by, char *msg, size_t msgsize)
{
    json_t *out = json_array();
    if (order_by && !json_is_null(order_by) && !json_is_array(order_by)) {
        snprintf(msg, msgsize, "order_by must be an array");
        json_decref(out);
        return NULL;
    }
    size_t i;
    json_t *o;
    json_array_foreach(order_by, i, o)
    {
        const char *field = json_string_value(json_object_get(o, "field"));
        const char *key = json_string_value(json_object_get(o, "key"));
        json_t *asc = json_object_get(o, "ascending");
        struct mlflow_buf b = {0};
        int rc = 0;
        if (!field || !key || (asc && !json_is_boolean(asc))) {
            rc = -1;
        } else if (strcmp(field, "metric") == 0) {
            rc = add_key(&b, "metrics.", key);
        } else if (strcmp(field, "param") == 0) {
            rc = add_key(&b, "params.", key);
        } else if (strcmp(field, "tag") == 0) {
            rc = add_key(&b, "tags.", key);
        } else if (strcmp(field, "attribute") == 0 && attribute_name(key)) {
            mlflow_buf_adds(&b, attribute_name(key));
        } else {
            rc = -1;
        }
        mlflow_buf_adds(&b, json_is_true(asc) ? " ASC" : " DESC");
        if (rc < 0 || b.oom) {
            snprintf(msg, msgsize,
                     "order_by[%zu]: not a field and key MLflow can sort by (keys cannot hold a "
                     "backquote)",
                     i);
            free(b.p);
            json_decref(out);
            return NULL;
        }
        json_array_append_new(out, json_string(b.p));
        free(b.p);
    }
    return out;
}

/* ------------------------------------------------------------------ versions and pages */

int mlflow_version_parse(const char *body, size_t len, char *out, size_t outsize)
{
    if (!body)
        return -1;
    while (len > 0 && (body[0] == ' ' || body[0] == '\t' || body[0] == '\r' || body[0] == '\n')) {
        body++;
        len--;
    }
    while (len > 0 && (body[len - 1] == ' ' || body[len - 1] == '\t' || body[len - 1] == '\r' ||
                       body[len - 1] == '\n'))
        len--;
    if (len == 0 || len > 63 || len >= outsize || body[0] < '0' || body[0] > '9')
        return -1;
    for (size_t i = 0; i < len; i++) {
        char c = body[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '.' || c == '+' || c == '-'))
            return -1;
    }
    memcpy(out, body, len);
    out[len] = '\0';
    return 0;
}

int mlflow_history_token(const char *token, long long *offset)
{
    *offset = 0;
    if (!token || !*token)
        return 0;
    size_t n = strlen(token);
    if (n > 12 || strspn(token, "0123456789") != n || (token[0] == '0' && n > 1))
        return -1;
    *offset = strtoll(token, NULL, 10);
    return 0;
}

struct point {
    long long step, ts;
    size_t index;
    json_t *m;
};

static int point_cmp(const void *pa, const void *pb)
{
    const struct point *a = pa, *b = pb;
    if (a->step != b->step)
        return a->step < b->step ? -1 : 1;
    if (a->ts != b->ts)
        return a->ts < b->ts ? -1 : 1;
    return a->index < b->index ? -1 : a->index > b->index;
}

int mlflow_history_sort(json_t *metrics)
{
    size_t n = json_array_size(metrics);
    if (n < 2)
        return 0;
    struct point *p = calloc(n, sizeof *p);
    if (!p)
        return -1;
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(metrics, i);
        p[i].step = (long long)json_integer_value(json_object_get(m, "step"));
        p[i].ts = (long long)json_integer_value(json_object_get(m, "timestamp_ms"));
        p[i].index = i;
        p[i].m = json_incref(m);
    }
    qsort(p, n, sizeof *p, point_cmp);
    json_array_clear(metrics);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(metrics, p[i].m);
    free(p);
    return 0;
}

/* ------------------------------------------------------------------ points MLflow holds */

/* A metric point as MLflow's SQL store keys it: NaN apart, +/-Infinity as +/-DBL_MAX. */
struct stored {
    const char *key;
    long long ts, step;
    int nan;
    double v;
};

/* `m` in either form (MLflow's timestamp or the interface's timestamp_ms) → *p; -1 when it is
 * not a point (a value that is neither a number nor one of the three strings). */
static int stored_of(json_t *m, struct stored *p)
{
    json_t *ts = json_object_get(m, "timestamp");
    if (!ts)
        ts = json_object_get(m, "timestamp_ms");
    json_t *v = json_object_get(m, "value");
    p->key = json_string_value(json_object_get(m, "key"));
    p->ts = (long long)json_integer_value(ts);
    p->step = (long long)json_integer_value(json_object_get(m, "step"));
    p->nan = 0;
    p->v = 0;
    const char *s = json_string_value(v);
    if (!p->key || !json_is_integer(ts))
        return -1;
    if (json_is_number(v)) {
        p->v = json_number_value(v);
        if (isnan(p->v))
            p->nan = 1;
        else if (p->v >= MLFLOW_DBL_MAX)
            p->v = MLFLOW_DBL_MAX;
        else if (p->v <= -MLFLOW_DBL_MAX)
            p->v = -MLFLOW_DBL_MAX;
    } else if (s && strcmp(s, "NaN") == 0) {
        p->nan = 1;
    } else if (s && strcmp(s, "Infinity") == 0) {
        p->v = MLFLOW_DBL_MAX;
    } else if (s && strcmp(s, "-Infinity") == 0) {
        p->v = -MLFLOW_DBL_MAX;
    } else {
        return -1;
    }
    return 0;
}

static int stored_cmp(const void *a, const void *b)
{
    const struct stored *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    if (x->step != y->step)
        return x->step < y->step ? -1 : 1;
    if (x->nan != y->nan)
        return x->nan < y->nan ? -1 : 1;
    if (!x->nan && x->v != y->v)
        return x->v < y->v ? -1 : 1;
    return strcmp(x->key, y->key);
}

long mlflow_points_drop(json_t *points, json_t *stored)
{
    size_t n = json_array_size(points), ns = json_array_size(stored), have = 0;
    struct stored *s = calloc(ns ? ns : 1, sizeof *s);
    struct stored *kept = calloc(n ? n : 1, sizeof *kept);
    json_t *out = json_array();
    if (!s || !kept || !out) {
        free(s);
        free(kept);
        json_decref(out);
        return -1;
    }
    for (size_t i = 0; i < ns; i++)
        if (stored_of(json_array_get(stored, i), &s[have]) == 0)
            have++;
    qsort(s, have, sizeof *s, stored_cmp);
    size_t nkept = 0;
    long dropped = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(points, i);
        struct stored p;
        int drop = 0;
        if (stored_of(m, &p) == 0) {
            drop = have && bsearch(&p, s, have, sizeof *s, stored_cmp) != NULL;
            for (size_t k = 0; !drop && k < nkept; k++)
                drop = stored_cmp(&p, &kept[k]) == 0;
            if (!drop)
                kept[nkept++] = p;
        }
        if (drop)
            dropped++;
        else
            json_array_append(out, m);
    }
    if (dropped) { /* out holds the kept points through the clear */
        json_array_clear(points);
        json_array_extend(points, out);
    }
    json_decref(out);
    free(s);
    free(kept);
    return dropped;
}
