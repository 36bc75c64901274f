/* sv.c — the serving modules' shared checks. See sv.h. */
#define _DEFAULT_SOURCE /* timegm */
#include "sv.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int vfail(struct llmops_error *err, enum llmops_status code, int tool_status, int retryable,
                 const char *fmt, va_list ap) LLMOPS_PRINTF(5, 0);
static int vfail(struct llmops_error *err, enum llmops_status code, int tool_status, int retryable,
                 const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    return llmops_fail(err, code, tool_status, retryable, msg);
}

int sv_failf(struct llmops_error *err, enum llmops_status code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vfail(err, code, 0, 0, fmt, ap);
    va_end(ap);
    return rc;
}

int sv_fail_tool(struct llmops_error *err, enum llmops_status code, int tool_status, int retryable,
                 const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vfail(err, code, tool_status, retryable, fmt, ap);
    va_end(ap);
    return rc;
}

const char *sv_sget(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

void sv_put_str(json_t *o, const char *k, const char *v, size_t max)
{
    if (!v)
        return;
    char buf[600];
    json_object_set_new(o, k, json_string(llmops_quote(buf, sizeof buf, v, max)));
}

json_t *sv_resources(json_t *res)
{
    if (!res)
        return NULL;
    json_t *q = json_object();
    if (sv_sget(res, "cpu"))
        json_object_set_new(q, "cpu", json_string(sv_sget(res, "cpu")));
    if (sv_sget(res, "memory"))
        json_object_set_new(q, "memory", json_string(sv_sget(res, "memory")));
    json_t *gpu = json_object_get(res, "gpu");
    if (gpu) {
        char n[24];
        snprintf(n, sizeof n, "%lld", (long long)json_integer_value(json_object_get(gpu, "count")));
        json_object_set_new(q, sv_sget(gpu, "resource_name"), json_string(n));
    }
    json_t *r = json_pack("{s:O,s:O}", "limits", q, "requests", q);
    json_decref(q);
    return r;
}

json_t *sv_resources_of(json_t *lim, json_t *pod, int skip_unreadable)
{
    json_t *r = json_object(), *v;
    const char *k;
    json_object_foreach(lim, k, v)
    {
        if (!strcmp(k, "cpu") || !strcmp(k, "memory")) {
            if (json_is_string(v))
                json_object_set(r, k, v);
        } else if (strchr(k, '/') &&
                   (!skip_unreadable || json_is_string(v) || json_is_integer(v))) {
            long long n = json_is_integer(v)  ? (long long)json_integer_value(v)
                          : json_is_string(v) ? strtoll(json_string_value(v), NULL, 10)
                                              : 0;
            json_t *g = json_pack("{s:s,s:I}", "resource_name", k, "count", (json_int_t)n);
            json_t *ns = json_object_get(pod, "nodeSelector");
            if (json_is_object(ns))
                json_object_set(g, "node_selector", ns);
            json_object_set_new(r, "gpu", g);
        }
    }
    return r;
}

int sv_answer_capabilities(const struct sv_features *f, const struct llmops_serving_ops *ops,
                           json_t **out, struct llmops_error *err)
{
    *out = sv_capabilities(f, ops);
    return *out ? 0 : llmops_fail(err, LLMOPS_ERR_INTERNAL, 0, 0, "out of memory");
}

void sv_fini(void *state)
{
    free(state);
}

json_t *sv_capabilities(const struct sv_features *f, const struct llmops_serving_ops *ops)
{
    json_t *names = json_array(), *feats = json_array(), *metrics = json_array();
    json_array_append_new(names, json_string("deploy"));
    json_array_append_new(names, json_string("get_deployment"));
    json_array_append_new(names, json_string("list_deployments"));
    json_array_append_new(names, json_string("update_deployment"));
    json_array_append_new(names, json_string("delete_deployment"));
    json_array_append_new(names, json_string("find_by_idempotency_key"));
    if (ops->predict)
        json_array_append_new(names, json_string("predict"));
    if ((f->flags & SV_CANARY) && ops->create_canary) {
        json_array_append_new(names, json_string("create_canary"));
        json_array_append_new(names, json_string("set_canary_traffic"));
        json_array_append_new(names, json_string("promote_canary"));
        json_array_append_new(names, json_string("rollback_canary"));
    }
    static const struct {
        unsigned bit;
        const char *name;
    } table[] = {{SV_AUTOSCALING, "autoscaling"},
                 {SV_SCALE_TO_ZERO, "scale_to_zero"},
                 {SV_IMAGE, "image"},
                 {SV_NODE_SELECTOR, "node_selector"},
                 {SV_CANARY, "canary"},
                 {SV_CANARY_PERCENT, "canary_percent"},
                 {SV_CANARY_BY_REPLICAS, "canary_by_replicas"},
                 {SV_SERIALIZED_WRITES, "serialized_writes"}};
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (f->flags & table[i].bit)
            json_array_append_new(feats, json_string(table[i].name));
    for (const char *const *m = f->metrics; m && *m; m++)
        json_array_append_new(metrics, json_string(*m));
    return json_pack("{s:o,s:o,s:o}", "operations", names, "features", feats, "autoscaling_metrics",
                     metrics);
}

static int dns1035(const char *s, int max)
{
    size_t n = strlen(s);
    if (n == 0 || n > (size_t)max || s[0] < 'a' || s[0] > 'z' || s[n - 1] == '-')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return 0;
    return 1;
}

static int is_int_in(json_t *v, long long lo, long long hi)
{
    return json_is_integer(v) && json_integer_value(v) >= lo && json_integer_value(v) <= hi;
}

static int env_name(const char *s)
{
    if (!s || !*s || (s[0] >= '0' && s[0] <= '9'))
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return 0;
    return 1;
}

static int check_model(json_t *m, struct llmops_error *err)
{
    const char *uri = json_string_value(json_object_get(m, "uri"));
    const char *format = json_string_value(json_object_get(m, "format"));
    json_t *fv = json_object_get(m, "format_version");
    if (!json_is_object(m) || !uri || !format || !*format || (fv && !json_is_string(fv)))
        return sv_failf(err, LLMOPS_ERR_INVALID,
                        "model must be {uri, format[, format_version]} with string members");
    static const char *const schemes[] = {"hf://", "s3://", "gs://", "pvc://", NULL};
    for (const char *const *s = schemes; *s; s++)
        if (strncmp(uri, *s, strlen(*s)) == 0 && uri[strlen(*s)])
            return 0;
    char q[80];
    return sv_failf(err, LLMOPS_ERR_UNSUPPORTED,
                    "model.uri \"%s\": the scheme is not one of hf://, s3://, gs://, pvc://",
                    llmops_quote(q, sizeof q, uri, 60));
}

static int check_args_env(json_t *in, struct llmops_error *err)
{
    /* the core checked these types against the operations table (llmops_serving_op_table);
     * checked again for a caller that did not go through the core, so that such a call
     * never writes a spec the module did not read */
    json_t *args = json_object_get(in, "args"), *env = json_object_get(in, "env"), *v;
    size_t i;
    if (args && !json_is_array(args))
        return sv_failf(err, LLMOPS_ERR_INVALID, "args must be an array of strings");
    json_array_foreach(args, i, v) if (!json_is_string(v)) return sv_failf(
        err, LLMOPS_ERR_INVALID, "args[%zu] must be a string", i);
    if (env && !json_is_object(env))
        return sv_failf(err, LLMOPS_ERR_INVALID, "env must be an object of strings");
    json_t *image = json_object_get(in, "image");
    if (image && !json_is_string(image))
        return sv_failf(err, LLMOPS_ERR_INVALID, "image must be a string");
    const char *k;
    json_object_foreach(env, k, v)
    {
        char q[80];
        if (!env_name(k))
            return sv_failf(err, LLMOPS_ERR_INVALID,
                            "env: \"%s\" is not a variable name ([A-Za-z_][A-Za-z0-9_]*)",
                            llmops_quote(q, sizeof q, k, 60));
        if (!json_is_string(v))
            return sv_failf(err, LLMOPS_ERR_INVALID, "env.%s must be a string",
                            llmops_quote(q, sizeof q, k, 60));
    }
    return 0;
}

int sv_check_spec(json_t *in, const struct sv_features *f, int is_update, struct llmops_error *err)
{
    if (!json_is_object(in))
        return sv_failf(err, LLMOPS_ERR_INVALID, "the request must be an object");
    if (!is_update) {
        /* required members (the operations table's): checked again for a direct caller */
        const char *key = json_string_value(json_object_get(in, "idempotency_key"));
        if (!key || !*key)
            return sv_failf(err, LLMOPS_ERR_INVALID, "idempotency_key is required (a string)");
        if (!json_is_object(json_object_get(in, "model")))
            return sv_failf(err, LLMOPS_ERR_INVALID, "model is required: {uri, format}");
        if (!json_is_object(json_object_get(in, "replicas")))
            return sv_failf(err, LLMOPS_ERR_INVALID, "replicas is required: {min, max}");
        const char *name = json_string_value(json_object_get(in, "name"));
        if (!name || !dns1035(name, f->name_max)) {
            char q[80];
            return sv_failf(err, LLMOPS_ERR_INVALID,
                            "name \"%s\" must be a DNS-1035 label of at most %d characters "
                            "([a-z]([-a-z0-9]*[a-z0-9])?)",
                            llmops_quote(q, sizeof q, name ? name : "", 70), f->name_max);
        }
    } else {
        static const char *const members[] = {"model",     "runtime",  "image",       "args", "env",
                                              "resources", "replicas", "autoscaling", NULL};
        int any = 0;
        for (const char *const *m = members; *m; m++)
            any |= json_object_get(in, *m) != NULL;
        if (!any)
            return sv_failf(err, LLMOPS_ERR_INVALID,
                            "update_deployment needs at least one of model, runtime, image, "
                            "args, env, resources, replicas, autoscaling");
    }
    json_t *model = json_object_get(in, "model");
    if (model && check_model(model, err) < 0)
        return -1;
    if (check_args_env(in, err) < 0)
        return -1;
    if (json_object_get(in, "image") && !(f->flags & SV_IMAGE))
        return sv_failf(err, LLMOPS_ERR_UNSUPPORTED,
                        "image: this module runs its runtime's image (feature \"image\")");
    json_t *res = json_object_get(in, "resources");
    if (res) {
        if (!json_is_object(res))
            return sv_failf(err, LLMOPS_ERR_INVALID, "resources must be an object");
        const char *k;
        json_t *v;
        json_object_foreach(res, k, v)
        {
            if (strcmp(k, "cpu") && strcmp(k, "memory") && strcmp(k, "gpu"))
                return sv_failf(err, LLMOPS_ERR_INVALID,
                                "resources.%s: not a member (cpu, memory, gpu)", k);
            if (strcmp(k, "gpu") && (!json_is_string(v) || !*json_string_value(v)))
                return sv_failf(err, LLMOPS_ERR_INVALID,
                                "resources.%s must be a Kubernetes quantity as a string", k);
        }
        json_t *gpu = json_object_get(res, "gpu");
        if (gpu) {
            const char *rn = json_string_value(json_object_get(gpu, "resource_name"));
            if (!json_is_object(gpu) || !rn || !*rn ||
                !is_int_in(json_object_get(gpu, "count"), 1, LLMOPS_SERVING_MAX_GPUS))
                return sv_failf(err, LLMOPS_ERR_INVALID,
                                "resources.gpu must be {resource_name, count 1..%d[, "
                                "node_selector, type]}",
                                LLMOPS_SERVING_MAX_GPUS);
            json_t *ns = json_object_get(gpu, "node_selector");
            if (ns) {
                if (!json_is_object(ns))
                    return sv_failf(err, LLMOPS_ERR_INVALID,
                                    "resources.gpu.node_selector must be an object of strings");
                if (!(f->flags & SV_NODE_SELECTOR) && json_object_size(ns))
                    return sv_failf(err, LLMOPS_ERR_UNSUPPORTED,
                                    "resources.gpu.node_selector: this module cannot place "
                                    "replicas by node label (feature \"node_selector\")");
                const char *nk;
                json_t *nv;
                json_object_foreach(ns, nk, nv) if (!json_is_string(nv)) return sv_failf(
                    err, LLMOPS_ERR_INVALID, "resources.gpu.node_selector.%s must be a string", nk);
            }
        }
    }
    json_t *rep = json_object_get(in, "replicas");
    json_t *as = json_object_get(in, "autoscaling");
    if (rep) {
        json_t *min = json_object_get(rep, "min"), *max = json_object_get(rep, "max");
        if (!json_is_object(rep) || !is_int_in(max, 1, LLMOPS_SERVING_MAX_REPLICAS) ||
            !is_int_in(min, 0, json_integer_value(max)))
            return sv_failf(err, LLMOPS_ERR_INVALID,
                            "replicas must be {min, max} with 0 <= min <= max and 1 <= max <= %d",
                            LLMOPS_SERVING_MAX_REPLICAS);
        if (json_integer_value(min) == 0 && !(f->flags & SV_SCALE_TO_ZERO))
            return sv_failf(err, LLMOPS_ERR_UNSUPPORTED,
                            "replicas.min 0: this instance cannot scale to zero (feature "
                            "\"scale_to_zero\")");
        if (json_integer_value(min) < json_integer_value(max) && !(f->flags & SV_AUTOSCALING))
            return sv_failf(err, LLMOPS_ERR_UNSUPPORTED,
                            "replicas.min < replicas.max: this instance does not autoscale "
                            "(feature \"autoscaling\")");
        if (!is_update && json_integer_value(min) < json_integer_value(max) && !json_is_object(as))
            return sv_failf(err, LLMOPS_ERR_INVALID,
                            "replicas.min < replicas.max needs autoscaling {metric, target}");
        if (json_is_object(as) && json_integer_value(min) == json_integer_value(max))
            return sv_failf(err, LLMOPS_ERR_INVALID,
                            "autoscaling needs replicas.min < replicas.max");
    }
    if (as && !json_is_null(as)) {
        const char *metric = json_string_value(json_object_get(as, "metric"));
        if (!json_is_object(as) || !metric || !is_int_in(json_object_get(as, "target"), 1, 1000000))
            return sv_failf(err, LLMOPS_ERR_INVALID,
                            "autoscaling must be {metric, target 1..1000000}");
        if (!(f->flags & SV_AUTOSCALING))
            return sv_failf(err, LLMOPS_ERR_UNSUPPORTED,
                            "autoscaling: this instance does not autoscale (feature "
                            "\"autoscaling\")");
        int known = 0;
        char list[200] = "";
        for (const char *const *m = f->metrics; m && *m; m++) {
            known |= strcmp(*m, metric) == 0;
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", list[0] ? ", " : "",
                     *m);
        }
        if (!known) {
            char q[60];
            return sv_failf(err, LLMOPS_ERR_UNSUPPORTED,
                            "autoscaling.metric \"%s\": this instance scales on %s",
                            llmops_quote(q, sizeof q, metric, 40), list);
        }
    }
    return 0;
}

int sv_check_canary(json_t *in, const struct sv_features *f, struct llmops_error *err)
{
    if (!(f->flags & SV_CANARY))
        return sv_failf(err, LLMOPS_ERR_UNSUPPORTED,
                        "this instance makes no canaries (feature \"canary\")");
    json_t *model = json_object_get(in, "model");
    if (!model && !json_object_get(in, "image") && !json_object_get(in, "args") &&
        !json_object_get(in, "env"))
        return sv_failf(err, LLMOPS_ERR_INVALID,
                        "a canary needs at least one of model, image, args, env");
    if (model && check_model(model, err) < 0)
        return -1;
    if (check_args_env(in, err) < 0)
        return -1;
    if (json_object_get(in, "image") && !(f->flags & SV_IMAGE))
        return sv_failf(err, LLMOPS_ERR_UNSUPPORTED,
                        "image: this module runs its runtime's image (feature \"image\")");
    return 0;
}

int sv_check_split(json_t *in, const struct sv_features *f, int is_set, int *percent, int *replicas,
                   struct llmops_error *err)
{
    json_t *p = json_object_get(in, "traffic_percent"), *r = json_object_get(in, "canary_replicas");
    *percent = *replicas = -1;
    if (!(f->flags & SV_CANARY))
        return sv_failf(err, LLMOPS_ERR_UNSUPPORTED,
                        "this instance makes no canaries (feature \"canary\")");
    if ((p != NULL) == (r != NULL))
        return sv_failf(err, LLMOPS_ERR_INVALID,
                        "give exactly one of traffic_percent and canary_replicas");
    if (p) {
        if (!(f->flags & SV_CANARY_PERCENT))
            return sv_failf(err, LLMOPS_ERR_UNSUPPORTED,
                            "traffic_percent: this instance cannot split traffic by an exact "
                            "percentage (feature \"canary_percent\"); its split follows the "
                            "replica ratio (canary_by_replicas): give canary_replicas");
        if (!is_int_in(p, is_set ? 0 : 1, is_set ? 100 : 99))
            return sv_failf(err, LLMOPS_ERR_INVALID, "traffic_percent must be an integer %d..%d",
                            is_set ? 0 : 1, is_set ? 100 : 99);
        *percent = (int)json_integer_value(p);
        return 0;
    }
    if (!(f->flags & SV_CANARY_BY_REPLICAS))
        return sv_failf(err, LLMOPS_ERR_UNSUPPORTED,
                        "canary_replicas: this instance splits traffic by percentage (feature "
                        "\"canary_by_replicas\" absent): give traffic_percent");
    if (!is_int_in(r, is_set ? 0 : 1, LLMOPS_SERVING_MAX_REPLICAS))
        return sv_failf(err, LLMOPS_ERR_INVALID, "canary_replicas must be an integer %d..%d",
                        is_set ? 0 : 1, LLMOPS_SERVING_MAX_REPLICAS);
    *replicas = (int)json_integer_value(r);
    return 0;
}

long long sv_rfc3339_ms(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int y, mo, d, h, mi, sec, used = 0;
    if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &used) != 6 ||
        used != 19)
        return -1;
    const char *p = s + used;
    long long frac = 0;
    if (*p == '.') {
        int digits = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, digits++)
            if (digits < 3)
                frac = frac * 10 + (*p - '0');
        for (; digits < 3; digits++)
            frac *= 10;
    }
    long off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        if (sscanf(p + 1, "%2d:%2d", &oh, &om) != 2)
            return -1;
        off = (oh * 60 + om) * 60L * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return -1;
    }
    if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return -1;
    tm.tm_year = y - 1900, tm.tm_mon = mo - 1, tm.tm_mday = d;
    tm.tm_hour = h, tm.tm_min = mi, tm.tm_sec = sec;
    time_t t = timegm(&tm);
    return ((long long)t - off) * 1000 + frac;
}
