/* Experiment tracking shared by the API, training jobs, the outbox and llm-opsctl sync:
 * calling instances, checking and splitting logged values, the run filter language, and
 * platform ids for tool objects. */
#include "tracking.h"

#include "category.h"
#include "engine.h"
#include "log.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------------ calls */

int track_has_op(struct instance *in, const char *op)
{
    return engine_has(in, LLMOPS_CATEGORY_EXPERIMENT_TRACKING,
                      engine_op(LLMOPS_CATEGORY_EXPERIMENT_TRACKING, op));
}

int track_call(struct app *app, struct instance *in, const char *op, json_t *input, json_t **out,
               struct llmops_error *err)
{
    return engine_call_named(app, in, LLMOPS_CATEGORY_EXPERIMENT_TRACKING, op, input, out, err);
}

void track_error(struct req *r, const struct instance *in, const char *op,
                 const struct llmops_error *err)
{
    enum api_error e = (enum api_error)plugin_status_to_api(err->code);
    json_t *extra = json_pack("{s:s,s:s,s:b}", "instance", in->name, "operation", op, "retryable",
                              err->retryable);
    if (err->tool_status)
        json_object_set_new(extra, "tool_status", json_integer(err->tool_status));
    resp_error(r, e, extra, "%s (instance %s)", err->message, in->name);
}

/* ------------------------------------------------------------------ logged values */

static int valid_key(const char *k)
{
    size_t n = strlen(k);
    return n >= 1 && n <= LLMOPS_TRACKING_KEY_MAX;
}

/* The shortest "%g" text that reads back as d (0.3 is "0.3", 0.30000000000000004 needs all
 * its 17 digits, 5e-324 is "5e-324"): 17 significant digits always read back. */
static void real_text(char *buf, size_t size, double d)
{
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            return;
    }
}

/* A param or tag value as a string; numbers and booleans are formatted (integers exactly,
 * reals as the shortest text that reads back as the same double). */
static json_t *value_string(json_t *v, size_t max)
{
    char buf[64];
    const char *s = NULL;
    if (json_is_string(v))
        s = json_string_value(v);
    else if (json_is_integer(v))
        snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v)), s = buf;
    else if (json_is_real(v))
        real_text(buf, sizeof buf, json_real_value(v)), s = buf;
    else if (json_is_boolean(v))
        s = json_is_true(v) ? "true" : "false";
    if (!s || strlen(s) > max)
        return NULL;
    return json_string(s);
}

static int check_map(json_t *map, const char *what, size_t vmax, json_t *into, char *msg,
                     size_t msgsize, char *field, size_t fieldsize)
{
    if (!map)
        return 0;
    if (!json_is_object(map)) {
        snprintf(field, fieldsize, "%s", what);
        snprintf(msg, msgsize, "%s must be an object of key: value", what);
        return -1;
    }
    const char *k;
    json_t *v;
    json_object_foreach(map, k, v)
    {
        if (!valid_key(k)) {
            snprintf(field, fieldsize, "%s", what);
            snprintf(msg, msgsize, "%s: a key must be 1-%d bytes", what, LLMOPS_TRACKING_KEY_MAX);
            return -1;
        }
        char qk[UTIL_QUOTE_SIZE(200)];
        if (strcmp(k, LLMOPS_TRACKING_KEY_TAG) == 0) {
            snprintf(field, fieldsize, "%s.%s", what, util_quote(qk, sizeof qk, k, 200));
            snprintf(msg, msgsize, "%s: the key %s is reserved", what, k);
            return -1;
        }
        json_t *s = value_string(v, vmax);
        if (!s) {
            snprintf(field, fieldsize, "%s.%s", what, util_quote(qk, sizeof qk, k, 200));
            snprintf(msg, msgsize,
                     "%s.%s must be a string (or number or boolean) of at most %zu bytes", what, qk,
                     vmax);
            return -1;
        }
        json_object_set_new(into, k, s);
    }
    return 0;
}

static int check_point(json_t *p, size_t i, int64_t now_ms, json_t **out, char *msg, size_t msgsize,
                       char *field, size_t fieldsize)
{
    if (!json_is_object(p)) {
        snprintf(field, fieldsize, "metrics[%zu]", i);
        snprintf(msg, msgsize, "metrics[%zu] must be an object {key, value, timestamp_ms, step}",
                 i);
        return -1;
    }
    const char *k;
    json_t *v;
    json_object_foreach(p, k, v)
    {
        if (strcmp(k, "key") && strcmp(k, "value") && strcmp(k, "timestamp_ms") &&
            strcmp(k, "step")) {
            char qk[UTIL_QUOTE_SIZE(64)];
            snprintf(field, fieldsize, "metrics[%zu].%s", i, util_quote(qk, sizeof qk, k, 64));
            snprintf(msg, msgsize,
                     "metrics[%zu]: unknown member '%s' (known: key, value, timestamp_ms, step)", i,
                     qk);
            return -1;
        }
    }
    json_t *key = json_object_get(p, "key"), *val = json_object_get(p, "value");
    json_t *ts = json_object_get(p, "timestamp_ms"), *step = json_object_get(p, "step");
    if (!json_is_string(key) || !valid_key(json_string_value(key))) {
        snprintf(field, fieldsize, "metrics[%zu].key", i);
        snprintf(msg, msgsize, "metrics[%zu].key must be a string of 1-%d bytes", i,
                 LLMOPS_TRACKING_KEY_MAX);
        return -1;
    }
    int ok = json_is_number(val);
    if (json_is_string(val)) {
        const char *s = json_string_value(val);
        ok = strcmp(s, "NaN") == 0 || strcmp(s, "Infinity") == 0 || strcmp(s, "-Infinity") == 0;
    }
    if (!ok) {
        snprintf(field, fieldsize, "metrics[%zu].value", i);
        snprintf(msg, msgsize,
                 "metrics[%zu].value must be a number or one of \"NaN\", \"Infinity\", "
                 "\"-Infinity\"",
                 i);
        return -1;
    }
    if (ts && !json_is_integer(ts)) {
        snprintf(field, fieldsize, "metrics[%zu].timestamp_ms", i);
        snprintf(msg, msgsize, "metrics[%zu].timestamp_ms must be an integer (ms since the epoch)",
                 i);
        return -1;
    }
    if (step && !json_is_integer(step)) {
        snprintf(field, fieldsize, "metrics[%zu].step", i);
        snprintf(msg, msgsize, "metrics[%zu].step must be an integer", i);
        return -1;
    }
    *out = json_pack("{s:O,s:O,s:I,s:I}", "key", key, "value", val, "timestamp_ms",
                     (json_int_t)(ts ? json_integer_value(ts) : now_ms), "step",
                     (json_int_t)(step ? json_integer_value(step) : 0));
    return 0;
}

static json_t *new_batch(void)
{
    return json_pack("{s:[],s:{},s:{}}", "metrics", "params", "tags");
}

json_t *track_split_log(json_t *body, int64_t now_ms, char *msg, size_t msgsize, char *field,
                        size_t fieldsize)
{
    const char *k;
    json_t *v;
    json_object_foreach(body, k, v)
    {
        if (strcmp(k, "metrics") && strcmp(k, "params") && strcmp(k, "tags")) {
            char qk[UTIL_QUOTE_SIZE(64)];
            snprintf(field, fieldsize, "%s", util_quote(qk, sizeof qk, k, 64));
            snprintf(msg, msgsize, "unknown member '%s' (known: metrics, params, tags)", qk);
            return NULL;
        }
    }
    json_t *metrics = json_object_get(body, "metrics");
    if (metrics && !json_is_array(metrics)) {
        snprintf(field, fieldsize, "metrics");
        snprintf(msg, msgsize, "metrics must be an array of {key, value, timestamp_ms, step}");
        return NULL;
    }
    json_t *params = json_object(), *tags = json_object();
    if (check_map(json_object_get(body, "params"), "params", LLMOPS_TRACKING_PARAM_VALUE_MAX,
                  params, msg, msgsize, field, fieldsize) < 0 ||
        check_map(json_object_get(body, "tags"), "tags", LLMOPS_TRACKING_TAG_VALUE_MAX, tags, msg,
                  msgsize, field, fieldsize) < 0) {
        json_decref(params);
        json_decref(tags);
        return NULL;
    }
    json_t *batches = json_array();
    json_t *b = new_batch();
    size_t np = 0, nt = 0, nm = 0;
#define ENTRIES_ (np + nt + nm)
#define FLUSH_()                                                                                   \
    do {                                                                                           \
        json_array_append_new(batches, b);                                                         \
        b = new_batch();                                                                           \
        np = nt = nm = 0;                                                                          \
    } while (0)
    json_object_foreach(params, k, v)
    {
        if (np == LLMOPS_TRACKING_BATCH_MAX_PARAMS || ENTRIES_ == LLMOPS_TRACKING_BATCH_MAX_ENTRIES)
            FLUSH_();
        json_object_set(json_object_get(b, "params"), k, v);
        np++;
    }
    json_object_foreach(tags, k, v)
    {
        if (nt == LLMOPS_TRACKING_BATCH_MAX_TAGS || ENTRIES_ == LLMOPS_TRACKING_BATCH_MAX_ENTRIES)
            FLUSH_();
        json_object_set(json_object_get(b, "tags"), k, v);
        nt++;
    }
    size_t i;
    json_array_foreach(metrics, i, v)
    {
        json_t *pt;
        if (check_point(v, i, now_ms, &pt, msg, msgsize, field, fieldsize) < 0) {
            json_decref(b);
            json_decref(batches);
            json_decref(params);
            json_decref(tags);
            return NULL;
        }
        if (nm == LLMOPS_TRACKING_BATCH_MAX_METRICS ||
            ENTRIES_ == LLMOPS_TRACKING_BATCH_MAX_ENTRIES)
            FLUSH_();
        json_array_append_new(json_object_get(b, "metrics"), pt);
        nm++;
    }
    if (ENTRIES_ > 0 || json_array_size(batches) == 0)
        json_array_append_new(batches, b);
    else
        json_decref(b);
#undef FLUSH_
#undef ENTRIES_
    json_decref(params);
    json_decref(tags);
    return batches;
}

void track_experiment_key(const char *instance, const char *name, char key[64])
{
    char seed[600], hash[65];
    snprintf(seed, sizeof seed, "%s\n%s", instance, name);
    util_sha256_hex(seed, strlen(seed), hash);
    snprintf(key, 64, "exp-%.40s", hash);
}

int track_log_default_ms(struct app *app, const char *object_id, json_t *body, int64_t *ms,
                         struct db_error *err)
{
    *ms = util_wall_ms();
    int needed = 0;
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(body, "metrics"), i,
                       p) if (!json_object_get(p, "timestamp_ms")) needed = 1;
    if (!needed)
        return 0;
    char *text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
    if (!text) {
        err->status = DB_QUERY_ERROR;
        snprintf(err->message, sizeof err->message, "out of memory");
        return -1;
    }
    char hash[65], now[24], hours[16];
    util_sha256_hex(text, strlen(text), hash);
    free(text);
    snprintf(now, sizeof now, "%lld", (long long)*ms);
    snprintf(hours, sizeof hours, "%d", TRACK_LOG_BODY_HOURS);
    const char *params[] = {object_id, hash, now, hours};
    /* One statement: copies of the body sent at once wait for the first one's row (the
     * primary key) and read its time. */
    PGresult *res =
        db_exec(&app->db,
                "INSERT INTO log_bodies AS b (object_id, body_sha256, timestamp_ms) VALUES ($1, $2,"
                " $3::bigint) ON CONFLICT (object_id, body_sha256) DO UPDATE SET"
                " timestamp_ms = CASE WHEN b.seen_at < now() - $4::integer * interval '1 hour'"
                "  THEN EXCLUDED.timestamp_ms ELSE b.timestamp_ms END, seen_at = now()"
                " RETURNING timestamp_ms",
                4, params, err);
    if (!res)
        return -1;
    int bad = 0;
    long long v = PQntuples(res) == 1 ? db_int(res, 0, 0, &bad) : (bad = 1, 0);
    PQclear(res);
    if (bad) {
        err->status = DB_QUERY_ERROR;
        snprintf(err->message, sizeof err->message, "log_bodies answered no timestamp");
        return -1;
    }
    *ms = v;
    return 0;
}

json_t *track_log_rebatch(struct req *r, const char *object_id, json_t *batches, int64_t now_ms)
{
    int64_t default_ms;
    struct db_error dberr;
    if (track_log_default_ms(r->app, object_id, r->body, &default_ms, &dberr) < 0) {
        json_decref(batches);
        resp_error(r, API_DATABASE_UNAVAILABLE, NULL, "cannot read the log body's time: %s",
                   dberr.message);
        return NULL;
    }
    if (default_ms == now_ms)
        return batches;
    json_decref(batches);
    char msg[300], field[300];
    batches = track_split_log(r->body, default_ms, msg, sizeof msg, field, sizeof field);
    if (!batches)
        resp_error(r, API_INTERNAL, json_pack("{s:s}", "field", field), "%s", msg);
    return batches;
}

/* ------------------------------------------------------------------ the filter language */

struct lex {
    const char *s, *p;
    char *msg;
    size_t msgsize;
};

static void skip_ws(struct lex *l)
{
    while (*l->p == ' ' || *l->p == '\t' || *l->p == '\n' || *l->p == '\r')
        l->p++;
}

/* "at character N" counts characters, not bytes; the text found is quoted whole characters
 * only (at most 20, and no more than the message has room for). */
static int lex_fail(struct lex *l, const char *what)
{
    size_t pos = util_utf8_count(l->s, (size_t)(l->p - l->s)) + 1;
    if (!*l->p) {
        snprintf(l->msg, l->msgsize, "filter: at character %zu: %s, found the end", pos, what);
        return -1;
    }
    int n = snprintf(l->msg, l->msgsize, "filter: at character %zu: %s, found '", pos, what);
    if (n < 0 || (size_t)n + 2 > l->msgsize)
        return -1;
    char q[UTIL_QUOTE_SIZE(20)];
    size_t room = l->msgsize - (size_t)n - 1; /* the closing quote and the NUL */
    snprintf(l->msg + n, l->msgsize - (size_t)n, "%s'",
             util_quote(q, room < sizeof q ? room : sizeof q, l->p, 20));
    return -1;
}

static int is_key_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '.' || c == ':' || c == '/' || c == '-';
}

static const char *const attributes[] = {"status", "name", "start_time_ms", "end_time_ms"};

/* FIELD → {field, key}. */
static int parse_field(struct lex *l, json_t **out)
{
    skip_ws(l);
    const char *start = l->p;
    while (isalpha((unsigned char)*l->p) || *l->p == '_')
        l->p++;
    size_t n = (size_t)(l->p - start);
    char word[32];
    if (n == 0 || n >= sizeof word) {
        l->p = start;
        return lex_fail(l, "expected a field (metric.KEY, param.KEY, tag.KEY, status, name, "
                           "start_time_ms, end_time_ms)");
    }
    memcpy(word, start, n);
    word[n] = '\0';
    static const struct {
        const char *prefix, *field;
    } prefixes[] = {{"metric", "metric"},
                    {"metrics", "metric"},
                    {"param", "param"},
                    {"params", "param"},
                    {"tag", "tag"},
                    {"tags", "tag"},
                    {"attribute", "attribute"},
                    {"attributes", "attribute"}};
    const char *field = NULL;
    for (size_t i = 0; i < UTIL_ARRAY_LEN(prefixes); i++)
        if (strcasecmp(word, prefixes[i].prefix) == 0)
            field = prefixes[i].field;
    if (!field || *l->p != '.') {
        /* a bare attribute name */
        for (size_t i = 0; i < UTIL_ARRAY_LEN(attributes); i++) {
            if (strcmp(word, attributes[i]) == 0) {
                *out = json_pack("{s:s,s:s}", "field", "attribute", "key", attributes[i]);
                return 0;
            }
        }
        l->p = start;
        return lex_fail(l, "expected a field (metric.KEY, param.KEY, tag.KEY, status, name, "
                           "start_time_ms, end_time_ms)");
    }
    l->p++; /* '.' */
    char key[LLMOPS_TRACKING_KEY_MAX + 1];
    size_t kn = 0;
    if (*l->p == '`') {
        const char *ks = ++l->p;
        while (*l->p && *l->p != '`')
            l->p++;
        if (*l->p != '`') {
            l->p = ks - 1;
            return lex_fail(l, "a `quoted key` is not closed");
        }
        kn = (size_t)(l->p - ks);
        if (kn == 0 || kn > LLMOPS_TRACKING_KEY_MAX) {
            l->p = ks - 1;
            return lex_fail(l, "a key must be 1-250 bytes");
        }
        memcpy(key, ks, kn);
        l->p++;
    } else {
        const char *ks = l->p;
        while (is_key_char(*l->p))
            l->p++;
        kn = (size_t)(l->p - ks);
        if (kn == 0 || kn > LLMOPS_TRACKING_KEY_MAX) {
            l->p = ks;
            return lex_fail(l, "expected a key after the '.' (letters, digits, _ . : / -, or "
                               "`any` in backquotes)");
        }
        memcpy(key, ks, kn);
    }
    key[kn] = '\0';
    if (strcmp(field, "attribute") == 0) {
        for (size_t i = 0; i < UTIL_ARRAY_LEN(attributes); i++) {
            if (strcmp(key, attributes[i]) == 0) {
                *out = json_pack("{s:s,s:s}", "field", "attribute", "key", attributes[i]);
                return 0;
            }
        }
        l->p = start;
        return lex_fail(l, "unknown attribute (valid: status, name, start_time_ms, end_time_ms)");
    }
    *out = json_pack("{s:s,s:s}", "field", field, "key", key);
    if (!*out) {
        l->p = start;
        return lex_fail(l, "a key must be UTF-8");
    }
    return 0;
}

static int parse_op(struct lex *l, char op[8])
{
    skip_ws(l);
    static const char *const ops[] = {"<=", ">=", "!=", "<", ">", "="};
    for (size_t i = 0; i < UTIL_ARRAY_LEN(ops); i++) {
        size_t n = strlen(ops[i]);
        if (strncmp(l->p, ops[i], n) == 0) {
            strcpy(op, ops[i]);
            l->p += n;
            return 0;
        }
    }
    if (strncasecmp(l->p, "ILIKE", 5) == 0 && !is_key_char(l->p[5])) {
        strcpy(op, "ILIKE");
        l->p += 5;
        return 0;
    }
    if (strncasecmp(l->p, "LIKE", 4) == 0 && !is_key_char(l->p[4])) {
        strcpy(op, "LIKE");
        l->p += 4;
        return 0;
    }
    return lex_fail(l, "expected an operator (< <= = != >= > LIKE ILIKE)");
}

/* A quoted string or a number. */
static int parse_value(struct lex *l, json_t **out)
{
    skip_ws(l);
    const char *start = l->p;
    if (*l->p == '\'' || *l->p == '"') {
        char q = *l->p++;
        size_t cap = strlen(l->p) + 1, n = 0;
        char *buf = malloc(cap);
        if (!buf)
            return lex_fail(l, "out of memory");
        for (;;) {
            if (!*l->p) {
                free(buf);
                l->p = start;
                return lex_fail(l, "a quoted value is not closed");
            }
            if (*l->p == q) {
                if (l->p[1] == q) {
                    buf[n++] = q;
                    l->p += 2;
                    continue;
                }
                l->p++;
                break;
            }
            buf[n++] = *l->p++;
        }
        *out = json_stringn(buf, n);
        free(buf);
        if (!*out) {
            l->p = start;
            return lex_fail(l, "a value must be UTF-8");
        }
        return 0;
    }
    const char *ns = l->p;
    if (*l->p == '-' || *l->p == '+')
        l->p++;
    int isreal = 0;
    while (isdigit((unsigned char)*l->p) || *l->p == '.' || *l->p == 'e' || *l->p == 'E' ||
           ((*l->p == '-' || *l->p == '+') && (l->p[-1] == 'e' || l->p[-1] == 'E'))) {
        if (!isdigit((unsigned char)*l->p))
            isreal = 1;
        l->p++;
    }
    size_t n = (size_t)(l->p - ns);
    char num[64];
    if (n == 0 || n >= sizeof num) {
        l->p = start;
        return lex_fail(l, "expected a value: a number, or a string in quotes");
    }
    memcpy(num, ns, n);
    num[n] = '\0';
    char *end;
    errno = 0;
    if (!isreal) {
        long long v = strtoll(num, &end, 10);
        if (*end || errno) {
            l->p = start;
            return lex_fail(l, "expected a value: a number, or a string in quotes");
        }
        *out = json_integer(v);
        return 0;
    }
    double d = strtod(num, &end);
    if (*end || errno || !isfinite(d)) {
        l->p = start;
        return lex_fail(l, "expected a value: a number, or a string in quotes");
    }
    *out = json_real(d);
    return 0;
}

/* The ops and value types each field takes (as llmops-tracking.h states). */
static int check_clause(struct lex *l, const char *at, json_t *c)
{
    const char *field = json_string_value(json_object_get(c, "field"));
    const char *key = json_string_value(json_object_get(c, "key"));
    const char *op = json_string_value(json_object_get(c, "op"));
    json_t *v = json_object_get(c, "value");
    int like = strcmp(op, "LIKE") == 0 || strcmp(op, "ILIKE") == 0;
    int eq = strcmp(op, "=") == 0 || strcmp(op, "!=") == 0;
    const char *save = l->p;
    l->p = at;
    int rc = 0;
    if (strcmp(field, "metric") == 0) {
        if (like)
            rc = lex_fail(l, "a metric compares with < <= = != >= >, not LIKE");
        else if (!json_is_number(v))
            rc = lex_fail(l, "a metric compares with a number");
    } else if (strcmp(field, "param") == 0 || strcmp(field, "tag") == 0 ||
               strcmp(key, "name") == 0) {
        if (!eq && !like)
            rc = lex_fail(l, "params, tags and name compare with = != LIKE ILIKE");
        else if (!json_is_string(v))
            rc = lex_fail(l, "params, tags and name compare with a 'quoted string'");
    } else if (strcmp(key, "status") == 0) {
        static const char *const st[] = {"RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"};
        int known = 0;
        for (size_t i = 0; json_is_string(v) && i < UTIL_ARRAY_LEN(st); i++)
            if (strcmp(json_string_value(v), st[i]) == 0)
                known = 1;
        if (!eq)
            rc = lex_fail(l, "status compares with = or !=");
        else if (!known)
            rc = lex_fail(l, "status is one of 'RUNNING', 'SCHEDULED', 'FINISHED', 'FAILED', "
                             "'KILLED'");
    } else { /* start_time_ms, end_time_ms */
        if (like)
            rc = lex_fail(l, "times compare with < <= = != >= >");
        else if (!json_is_integer(v))
            rc = lex_fail(l, "times compare with an integer (ms since the epoch)");
    }
    if (rc == 0)
        l->p = save;
    return rc;
}

json_t *track_parse_filter(const char *s, char *msg, size_t msgsize)
{
    struct lex l = {s, s, msg, msgsize};
    json_t *clauses = json_array();
    skip_ws(&l);
    if (!*l.p)
        return clauses;
    for (;;) {
        skip_ws(&l);
        const char *at = l.p;
        json_t *c = NULL, *v = NULL;
        char op[8];
        if (parse_field(&l, &c) < 0)
            goto fail;
        if (parse_op(&l, op) < 0 || parse_value(&l, &v) < 0) {
            json_decref(c);
            goto fail;
        }
        json_object_set_new(c, "op", json_string(op));
        json_object_set_new(c, "value", v);
        if (check_clause(&l, at, c) < 0) {
            json_decref(c);
            goto fail;
        }
        if (json_array_size(clauses) == LLMOPS_TRACKING_MAX_CLAUSES) {
            json_decref(c);
            l.p = at;
            lex_fail(&l, "at most 20 clauses");
            goto fail;
        }
        json_array_append_new(clauses, c);
        skip_ws(&l);
        if (!*l.p)
            return clauses;
        if (strncasecmp(l.p, "AND", 3) != 0 || is_key_char(l.p[3])) {
            lex_fail(&l, "expected AND or the end (there is no OR)");
            goto fail;
        }
        l.p += 3;
    }
fail:
    json_decref(clauses);
    return NULL;
}

json_t *track_parse_order_by(json_t *list, char *msg, size_t msgsize)
{
    json_t *out = json_array();
    if (!list)
        return out;
    if (!json_is_array(list) || json_array_size(list) > LLMOPS_TRACKING_MAX_ORDER_BY) {
        snprintf(msg, msgsize, "order_by must be an array of at most %d \"FIELD [ASC|DESC]\"",
                 LLMOPS_TRACKING_MAX_ORDER_BY);
        json_decref(out);
        return NULL;
    }
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        const char *s = json_string_value(v);
        if (!s) {
            snprintf(msg, msgsize, "order_by[%zu] must be a string \"FIELD [ASC|DESC]\"", i);
            json_decref(out);
            return NULL;
        }
        char sub[200];
        struct lex l = {s, s, sub, sizeof sub};
        json_t *c = NULL;
        int asc = 0;
        if (parse_field(&l, &c) == 0) {
            skip_ws(&l);
            if (strncasecmp(l.p, "ASC", 3) == 0 && !is_key_char(l.p[3]))
                asc = 1, l.p += 3;
            else if (strncasecmp(l.p, "DESC", 4) == 0 && !is_key_char(l.p[4]))
                l.p += 4;
            skip_ws(&l);
            if (*l.p) {
                json_decref(c);
                c = NULL;
                lex_fail(&l, "expected ASC, DESC or the end");
            }
        }
        if (!c) {
            /* "filter: at ..." → "order_by[i]: at ..." */
            snprintf(msg, msgsize, "order_by[%zu]%s", i, sub + strlen("filter"));
            json_decref(out);
            return NULL;
        }
        json_object_set_new(c, "ascending", json_boolean(asc));
        json_array_append_new(out, c);
    }
    return out;
}

/* ------------------------------------------------------------------ search cursors */

static int hex_digit(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

char *track_cursor_encode(json_t *state)
{
    char *js = json_dumps(state, JSON_COMPACT | JSON_SORT_KEYS);
    if (!js)
        return NULL;
    size_t n = strlen(js);
    char *out = malloc(4 + 2 * n + 1);
    if (out) {
        static const char hex[] = "0123456789abcdef";
        memcpy(out, "rs1.", 4);
        for (size_t i = 0; i < n; i++) {
            out[4 + 2 * i] = hex[(unsigned char)js[i] >> 4];
            out[4 + 2 * i + 1] = hex[(unsigned char)js[i] & 15];
        }
        out[4 + 2 * n] = '\0';
    }
    free(js);
    return out;
}

json_t *track_cursor_decode(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 6 || strncmp(s, "rs1.", 4) != 0 || (n - 4) % 2 || n > 65536)
        return NULL;
    size_t len = (n - 4) / 2;
    char *buf = malloc(len + 1);
    if (!buf)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        int hi = hex_digit(s[4 + 2 * i]), lo = hex_digit(s[4 + 2 * i + 1]);
        if (hi < 0 || lo < 0) {
            free(buf);
            return NULL;
        }
        buf[i] = (char)(hi << 4 | lo);
    }
    json_t *j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, NULL);
    free(buf);
    if (!json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/* ------------------------------------------------------------------ platform ids */

/* A PostgreSQL text[] literal of the strings in arr. */
static char *pg_array(json_t *arr)
{
    size_t cap = 3, i;
    json_t *v;
    json_array_foreach(arr, i, v) cap +=
        2 * strlen(json_string_value(v) ? json_string_value(v) : "") + 3;
    char *buf = malloc(cap), *w = buf;
    if (!buf)
        return NULL;
    *w++ = '{';
    json_array_foreach(arr, i, v)
    {
        const char *s = json_string_value(v) ? json_string_value(v) : "";
        if (i)
            *w++ = ',';
        *w++ = '"';
        for (; *s; s++) {
            if (*s == '"' || *s == '\\')
                *w++ = '\\';
            *w++ = *s;
        }
        *w++ = '"';
    }
    *w++ = '}';
    *w = '\0';
    return buf;
}

int track_platform_ids(struct app *app, const char *kind, const char *env, const char *instance,
                       json_t *external_ids, json_t *ids, struct db_error *err)
{
    if (json_array_size(external_ids) == 0)
        return 0;
    char *arr = pg_array(external_ids);
    if (!arr) {
        err->status = DB_QUERY_ERROR;
        snprintf(err->message, sizeof err->message, "out of memory");
        return -1;
    }
    const char *params[] = {kind, env, category_name(LLMOPS_CATEGORY_EXPERIMENT_TRACKING), instance,
                            arr};
    /* Adopts the objects never seen (made by other clients of the tool) in the same
     * statement that reads the known ones. */
    PGresult *res = db_exec(
        &app->db,
        "WITH ins AS (INSERT INTO objects (id, kind, environment, category, instance, external_id,"
        "  created_by) SELECT $1 || '_' || left(md5(random()::text || clock_timestamp()::text || "
        "x),"
        "  24), $1, $2, $3, $4, x, 'adopted' FROM unnest($5::text[]) AS x"
        "  ON CONFLICT (instance, kind, external_id) DO NOTHING RETURNING id, external_id)"
        " SELECT id, external_id FROM ins UNION ALL SELECT id, external_id FROM objects"
        "  WHERE instance = $4 AND kind = $1 AND external_id = ANY($5::text[])",
        5, params, err);
    if (!res) {
        free(arr);
        return -1;
    }
    for (int i = 0; i < PQntuples(res); i++)
        json_object_set_new(ids, PQgetvalue(res, i, 1), json_string(PQgetvalue(res, i, 0)));
    PQclear(res);
    /* Another process adopting the same object at the same moment: its row was not visible
     * to this statement's snapshot; read it now. */
    size_t i;
    json_t *v;
    int missing = 0;
    json_array_foreach(external_ids, i, v) if (!json_object_get(ids, json_string_value(v)))
        missing = 1;
    if (missing) {
        res = db_exec(&app->db,
                      "SELECT id, external_id FROM objects WHERE instance = $4 AND kind = $1"
                      " AND external_id = ANY($5::text[]) AND $2::text IS NOT NULL"
                      " AND $3::text IS NOT NULL",
                      5, params, err);
        if (!res) {
            free(arr);
            return -1;
        }
        for (int r = 0; r < PQntuples(res); r++)
            json_object_set_new(ids, PQgetvalue(res, r, 1), json_string(PQgetvalue(res, r, 0)));
        PQclear(res);
    }
    free(arr);
    return 0;
}
