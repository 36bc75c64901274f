/* The category engine: operations tables, input validation against them (kcgi's kvalid for
 * JSON), capabilities and the one call path. */
#include "engine.h"

#include "dispatch.h"
#include "llmops-orchestration.h"
#include "llmops-registry.h"
#include "llmops-serving.h"
#include "llmops-tracking.h"
#include "llmops-versioning.h"
#include "util.h"

#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------------ tables */

const struct llmops_op_desc *engine_ops(int category, size_t *n)
{
    switch (category) {
    case LLMOPS_CATEGORY_EXPERIMENT_TRACKING:
        return llmops_tracking_op_table(n);
    case LLMOPS_CATEGORY_SERVING:
        return llmops_serving_op_table(n);
    default:
        *n = 0;
        return NULL;
    }
}

const struct llmops_op_desc *engine_op(int category, const char *name)
{
    size_t n;
    const struct llmops_op_desc *t = engine_ops(category, &n);
    for (size_t i = 0; name && i < n; i++)
        if (strcmp(t[i].name, name) == 0)
            return &t[i];
    return NULL;
}

/* The ops of a category without a table yet, by member name from its header's X-macro: no
 * input members (engine_call validates nothing for them), kind and object unknown. Only
 * engine_call_named uses these; engine_ops and engine_op answer for tabled categories alone. */
#define UNTABLED_(type, member, req)                                                               \
    {.name = #member, .slot = offsetof(type, member), .required = (req)},
#define OR_(member, req) UNTABLED_(struct llmops_orchestration_ops, member, req)
#define RG_(member, req) UNTABLED_(struct llmops_registry_ops, member, req)
#define DV_(member, req) UNTABLED_(struct llmops_versioning_ops, member, req)
static const struct llmops_op_desc orchestration_ops[] = {LLMOPS_ORCHESTRATION_OPS(OR_)};
static const struct llmops_op_desc registry_ops[] = {LLMOPS_REGISTRY_OPS(RG_)};
static const struct llmops_op_desc versioning_ops[] = {LLMOPS_VERSIONING_OPS(DV_)};
#undef OR_
#undef RG_
#undef DV_
#undef UNTABLED_

static const struct llmops_op_desc *untabled_op(int category, const char *name)
{
    const struct llmops_op_desc *t;
    size_t n;
    switch (category) {
    case LLMOPS_CATEGORY_ORCHESTRATION:
        t = orchestration_ops, n = UTIL_ARRAY_LEN(orchestration_ops);
        break;
    case LLMOPS_CATEGORY_MODEL_REGISTRY:
        t = registry_ops, n = UTIL_ARRAY_LEN(registry_ops);
        break;
    case LLMOPS_CATEGORY_DATA_VERSIONING:
        t = versioning_ops, n = UTIL_ARRAY_LEN(versioning_ops);
        break;
    default:
        return NULL;
    }
    for (size_t i = 0; name && i < n; i++)
        if (strcmp(t[i].name, name) == 0)
            return &t[i];
    return NULL;
}

/* ------------------------------------------------------------------ validation */

struct vctx {
    char *path;
    size_t pathsize;
    char *msg;
    size_t msgsize;
};

static int vfail(struct vctx *c, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int vfail(struct vctx *c, const char *path, const char *fmt, ...)
{
    snprintf(c->path, c->pathsize, "%s", path);
    int n = snprintf(c->msg, c->msgsize, "%s ", path[0] ? path : "the input");
    if (n < 0 || (size_t)n >= c->msgsize)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->msg + n, c->msgsize - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

/* path "a" + ".b", or "b" at the top */
static void join(char *out, size_t size, const char *base, const char *name)
{
    char q[UTIL_QUOTE_SIZE(64)];
    util_quote(q, sizeof q, name, 64);
    if (base[0])
        snprintf(out, size, "%s.%s", base, q);
    else
        snprintf(out, size, "%s", q);
}

static int in_set(const char *s, const char *const *set)
{
    for (; *set; set++)
        if (strcmp(s, *set) == 0)
            return 1;
    return 0;
}

static void set_list(char *out, size_t size, const char *const *set)
{
    size_t used = 0;
    out[0] = '\0';
    for (; *set; set++) {
        int w = snprintf(out + used, size - used, "%s%s", used ? ", " : "", *set);
        if (w < 0 || (size_t)w >= size - used)
            break;
        used += (size_t)w;
    }
}

static int valid_key_shape(const char *s, size_t n)
{
    if (n < 1 || n > 63)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        int alnum =
            (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
        if (!alnum && (i == 0 || i == n - 1 || (ch != '_' && ch != '-')))
            return 0;
    }
    return 1;
}

static int check_members(struct vctx *c, const struct llmops_member *list, json_t *obj,
                         const char *base);

static int check_value(struct vctx *c, const struct llmops_member *m, json_t *v, const char *path)
{
    switch (m->type) {
    case LLMOPS_T_STRING: {
        if (!json_is_string(v))
            return vfail(c, path, "must be a string");
        const char *s = json_string_value(v);
        if (strlen(s) != json_string_length(v))
            return vfail(c, path, "must not contain NUL characters");
        if (m->enums) {
            if (!in_set(s, m->enums)) {
                char list[300], q[UTIL_QUOTE_SIZE(32)];
                set_list(list, sizeof list, m->enums);
                return vfail(c, path, "has an unknown value '%s'; valid: %s",
                             util_quote(q, sizeof q, s, 32), list);
            }
            return 0;
        }
        size_t bytes = json_string_length(v);
        long long len =
            (m->flags & LLMOPS_M_CHARS) ? (long long)llmops_utf8_count(s, bytes) : (long long)bytes;
        if (len < m->min || len > m->max)
            return vfail(c, path, "must be a string of %lld-%lld %s", m->min, m->max,
                         (m->flags & LLMOPS_M_CHARS) ? "characters" : "bytes");
        return 0;
    }
    case LLMOPS_T_INT:
        if (!json_is_integer(v))
            return vfail(c, path, "must be an integer");
        if (json_integer_value(v) < m->min || json_integer_value(v) > m->max)
            return vfail(c, path, "must be an integer %lld-%lld", m->min, m->max);
        return 0;
    case LLMOPS_T_NUMBER: {
        if (!json_is_number(v))
            return vfail(c, path, "must be a number");
        double d = json_number_value(v);
        if (!(d >= (double)m->min && d <= (double)m->max))
            return vfail(c, path, "must be a number %lld-%lld", m->min, m->max);
        return 0;
    }
    case LLMOPS_T_VALUE: {
        if (json_is_number(v))
            return 0;
        const char *s = json_string_value(v);
        if (s &&
            (strcmp(s, "NaN") == 0 || strcmp(s, "Infinity") == 0 || strcmp(s, "-Infinity") == 0))
            return 0;
        return vfail(c, path, "must be a number or one of \"NaN\", \"Infinity\", \"-Infinity\"");
    }
    case LLMOPS_T_BOOL:
        return json_is_boolean(v) ? 0 : vfail(c, path, "must be true or false");
    case LLMOPS_T_KEY:
        if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v) ||
            !valid_key_shape(json_string_value(v), json_string_length(v)))
            return vfail(c, path,
                         "must be 1-63 characters of letters, digits, '_' and '-', beginning and "
                         "ending with a letter or digit");
        return 0;
    case LLMOPS_T_OBJECT:
        if (!json_is_object(v))
            return vfail(c, path, "must be an object");
        return check_members(c, m->sub, v, path);
    case LLMOPS_T_ARRAY: {
        if (!json_is_array(v))
            return vfail(c, path, "must be an array");
        long long n = (long long)json_array_size(v);
        if (n < m->min || n > m->max)
            return vfail(c, path, "must have %lld-%lld elements (it has %lld)", m->min, m->max, n);
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
        {
            char p[512];
            snprintf(p, sizeof p, "%s[%zu]", path, i);
            if (check_value(c, m->sub, e, p) < 0)
                return -1;
        }
        return 0;
    }
    case LLMOPS_T_MAP: {
        if (!json_is_object(v))
            return vfail(c, path, "must be an object of key: value");
        long long n = (long long)json_object_size(v);
        if (n < m->min || n > m->max)
            return vfail(c, path, "must have %lld-%lld entries (it has %lld)", m->min, m->max, n);
        const char *k;
        size_t kl;
        json_t *e;
        json_object_keylen_foreach(v, k, kl, e)
        {
            char p[512];
            join(p, sizeof p, path, k);
            if (strlen(k) != kl)
                return vfail(c, path, "has a key with a NUL character");
            if (kl < 1 || (long long)kl > m->key_max)
                return vfail(c, path, "has a key that is not 1-%lld bytes", m->key_max);
            if (m->reserved && in_set(k, m->reserved))
                return vfail(c, p, "is a reserved key");
            if (check_value(c, m->sub, e, p) < 0)
                return -1;
        }
        return 0;
    }
    case LLMOPS_T_ANY:
        return 0;
    }
    return vfail(c, path, "has a type the table does not know");
}

static int check_members(struct vctx *c, const struct llmops_member *list, json_t *obj,
                         const char *base)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        const struct llmops_member *m = list;
        while (m->name && strcmp(m->name, k) != 0)
            m++;
        if (!m->name) {
            char p[512], known[400] = "";
            size_t used = 0;
            for (m = list; m->name; m++) {
                int w =
                    snprintf(known + used, sizeof known - used, "%s%s", used ? ", " : "", m->name);
                if (w < 0 || (size_t)w >= sizeof known - used)
                    break;
                used += (size_t)w;
            }
            join(p, sizeof p, base, k);
            return vfail(c, p, "is not a member (known: %s)", used ? known : "none");
        }
    }
    for (const struct llmops_member *m = list; m->name; m++) {
        json_t *x = json_object_get(obj, m->name);
        char p[512];
        join(p, sizeof p, base, m->name);
        if (!x || json_is_null(x)) {
            if (m->flags & LLMOPS_M_REQUIRED)
                return vfail(c, p, "is required");
            continue;
        }
        if (check_value(c, m, x, p) < 0)
            return -1;
    }
    return 0;
}

int engine_validate(const struct llmops_member *members, json_t *in, char *path, size_t pathsize,
                    char *msg, size_t msgsize)
{
    struct vctx c = {path, pathsize, msg, msgsize};
    path[0] = '\0';
    msg[0] = '\0';
    if (!json_is_object(in))
        return vfail(&c, "", "must be an object");
    return check_members(&c, members, in, "");
}

/* ------------------------------------------------------------------ capabilities */

void engine_refresh_capabilities(struct instance *in)
{
    plugins_refresh_capabilities(in);
}

json_t *engine_capabilities(struct instance *in)
{
    if (!in->caps_loaded)
        engine_refresh_capabilities(in);
    return in->caps;
}

static int listed(json_t *caps, const char *member, const char *name)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(caps, member), i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), name) == 0)
            return 1;
    }
    return 0;
}

static llmops_op_fn *slot_of(const struct instance *in, int category,
                             const struct llmops_op_desc *op)
{
    if (!in || !in->initialised || !in->mod || !op || (int)in->mod->desc->category != category)
        return NULL;
    const void *ops = in->mod->desc->ops;
    uint32_t size;
    memcpy(&size, ops, sizeof size);
    if (size < op->slot + sizeof(llmops_op_fn *))
        return NULL;
    llmops_op_fn *fn;
    memcpy(&fn, (const char *)ops + op->slot, sizeof fn);
    return fn;
}

int engine_has(struct instance *in, int category, const struct llmops_op_desc *op)
{
    if (!slot_of(in, category, op))
        return 0;
    json_t *caps = engine_capabilities(in);
    return !caps || listed(caps, "operations", op->name);
}

int engine_has_feature(struct instance *in, const char *feature)
{
    json_t *caps = engine_capabilities(in);
    return caps && listed(caps, "features", feature);
}

/* The value at a path of object members ("a.b.c") in `input`, or NULL; JSON null counts as
 * absent, as in the members' validation. */
static json_t *member_at(json_t *input, const char *path)
{
    json_t *v = input;
    const char *p = path;
    while (v && *p) {
        size_t n = strcspn(p, ".");
        char key[128];
        if (n >= sizeof key || !json_is_object(v))
            return NULL;
        memcpy(key, p, n);
        key[n] = '\0';
        v = json_object_get(v, key);
        p += n + (p[n] == '.');
    }
    return json_is_null(v) ? NULL : v;
}

const struct llmops_op_feature *
engine_missing_feature(struct instance *in, const struct llmops_op_desc *op, json_t *input)
{
    for (const struct llmops_op_feature *f = op ? op->features : NULL; f && f->feature; f++)
        if ((!f->member || member_at(input, f->member)) && !engine_has_feature(in, f->feature))
            return f;
    return NULL;
}

int engine_check_features(struct instance *in, const struct llmops_op_desc *op, json_t *input,
                          struct llmops_error *err)
{
    const struct llmops_op_feature *miss = engine_missing_feature(in, op, input);
    if (!miss)
        return 0;
    memset(err, 0, sizeof *err);
    err->size = sizeof *err;
    err->code = LLMOPS_ERR_UNSUPPORTED;
    snprintf(err->message, sizeof err->message,
             "%s%s%s needs feature \"%s\", which instance %s (module %s) does not list in its "
             "capabilities",
             op->name, miss->member ? " with " : "", miss->member ? miss->member : "",
             miss->feature, in && in->name ? in->name : "?", in && in->mod ? in->mod->name : "?");
    return -1;
}

/* ------------------------------------------------------------------ the call path */

int engine_call(struct app *app, struct instance *in, int category, const struct llmops_op_desc *op,
                json_t *input, json_t **out, struct llmops_error *err)
{
    memset(err, 0, sizeof *err);
    err->size = sizeof *err;
    *out = NULL;
    const char *name = op ? op->name : "?";
    const char *iname = in && in->name ? in->name : "?";
    llmops_op_fn *fn = slot_of(in, category, op);
    json_t *caps = fn ? engine_capabilities(in) : NULL;
    if (!fn || (caps && !listed(caps, "operations", op->name))) {
        err->code = LLMOPS_ERR_UNSUPPORTED;
        snprintf(err->message, sizeof err->message,
                 "%s is not supported by instance %s (module %s%s)", name, iname,
                 in && in->mod ? in->mod->name : "?",
                 fn ? ": its capabilities do not list it" : "");
        return -1;
    }
    char path[256], msg[sizeof err->message];
    if (op->in && engine_validate(op->in, input, path, sizeof path, msg, sizeof msg) < 0) {
        char full[sizeof msg + 200];
        snprintf(full, sizeof full, "%s of %s: %s", name, iname, msg);
        err->code = LLMOPS_ERR_INVALID;
        llmops_quote(err->message, sizeof err->message, full, SIZE_MAX); /* cut between chars */
        return -1;
    }
    if (engine_check_features(in, op, input, err) < 0)
        return -1;
    int64_t t0 = util_now_us();
    int rc = fn(in->state, input, out, err);
    int64_t dur = util_now_us() - t0;
    if (rc == 0 && !*out)
        *out = json_object();
    if (rc != 0) {
        json_decref(*out);
        *out = NULL;
        if (err->code == LLMOPS_OK)
            err->code = LLMOPS_ERR_INTERNAL;
        if (!err->message[0])
            snprintf(err->message, sizeof err->message, "%s failed without a message", name);
    }
    dispatch_call_done(app, in, name, rc == 0 ? NULL : err, dur);
    return rc == 0 ? 0 : -1;
}

int engine_call_named(struct app *app, struct instance *in, int category, const char *op,
                      json_t *input, json_t **out, struct llmops_error *err)
{
    size_t n;
    const struct llmops_op_desc *d =
        engine_ops(category, &n) ? engine_op(category, op) : untabled_op(category, op);
    if (!d) {
        memset(err, 0, sizeof *err);
        err->size = sizeof *err;
        *out = NULL;
        err->code = LLMOPS_ERR_UNSUPPORTED;
        snprintf(err->message, sizeof err->message, "%s is not an operation of %s", op,
                 category_name(category) ? category_name(category) : "this category");
        return -1;
    }
    return engine_call(app, in, category, d, input, out, err);
}

int engine_call_any(struct app *app, struct instance *in, const char *op, json_t *input,
                    json_t **out, struct llmops_error *err)
{
    int category = in && in->mod ? (int)in->mod->desc->category : -1;
    return engine_call_named(app, in, category, op, input, out, err);
}
