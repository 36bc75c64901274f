/* llm-opsctl sync tracking: copies experiments, runs, params, tags and full metric histories
 * from one experiment_tracking instance to another, idempotently.
 *
 * Identity: an experiment is the one of the same name in the target; a run is the target
 * run carrying the idempotency key "sync-" + SHA-256(source instance, source run id), so a
 * second sync (or one after a crash) finds what the first made. Points are copied only for
 * keys whose target history is shorter than the source's, and replays add nothing (the
 * interface's log_batch contract), so a second sync changes nothing. */
#include "sync.h"

#include "category.h"
#include "log.h"
#include "tracking.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct sync_ctx {
    struct instance *from, *to;
    int dry_run;
    int tty;
    struct sync_counts *n;
    char error[700];
};

static int failed(struct sync_ctx *c, struct instance *in, const char *op,
                  const struct llmops_error *err)
{
    snprintf(c->error, sizeof c->error, "%s on instance %s: %s", op, in->name, err->message);
    return -1;
}

static void progress(struct sync_ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void progress(struct sync_ctx *c, const char *fmt, ...)
{
    if (!c->tty)
        return;
    char line[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\r\033[Ksync: %s", line);
    fflush(stderr);
}

static int call(struct sync_ctx *c, struct instance *in, const char *op, json_t *input,
                json_t **out)
{
    struct llmops_error err;
    int rc = track_call(NULL, in, op, input, out, &err);
    json_decref(input);
    if (rc < 0)
        return failed(c, in, op, &err);
    return 0;
}

/* Every point of one key of a run (pages followed). */
static json_t *history(struct sync_ctx *c, struct instance *in, const char *run, const char *key)
{
    json_t *all = json_array(), *page = NULL;
    const char *token = NULL;
    do {
        json_t *input = json_pack("{s:s,s:s,s:i}", "external_id", run, "key", key, "max_results",
                                  LLMOPS_TRACKING_HISTORY_MAX_RESULTS);
        if (token)
            json_object_set_new(input, "page_token", json_string(token));
        json_decref(page);
        page = NULL;
        if (call(c, in, "get_metric_history", input, &page) < 0) {
            json_decref(all);
            return NULL;
        }
        json_array_extend(all, json_object_get(page, "metrics"));
        token = json_string_value(json_object_get(page, "next_page_token"));
    } while (token);
    json_decref(page);
    return all;
}

static int log_batch(struct sync_ctx *c, const char *run, json_t *metrics, json_t *params,
                     json_t *tags)
{
    json_t *input = json_pack("{s:s,s:O,s:O,s:O}", "external_id", run, "metrics", metrics, "params",
                              params, "tags", tags),
           *out;
    if (call(c, c->to, "log_batch", input, &out) < 0)
        return -1;
    json_decref(out);
    return 0;
}

/* The target experiment of the same name: its id in ext, created unless dry-run. Returns 1
 * found, 0 created (or would be), -1 error. */
static int target_experiment(struct sync_ctx *c, json_t *src, char ext[256])
{
    const char *name = json_string_value(json_object_get(src, "name"));
    json_t *out;
    if (call(c, c->to, "search_experiments",
             json_pack("{s:s,s:s,s:i}", "name", name, "lifecycle", "all", "max_results", 1),
             &out) < 0)
        return -1;
    const char *x = json_string_value(
        json_object_get(json_array_get(json_object_get(out, "experiments"), 0), "external_id"));
    ext[0] = '\0';
    if (x)
        snprintf(ext, 256, "%s", x);
    json_decref(out);
    if (ext[0])
        return 1;
    if (c->dry_run)
        return 0;
    char seed[600], hash[65], key[64];
    snprintf(seed, sizeof seed, "%s\n%s", c->from->name,
             json_string_value(json_object_get(src, "external_id")));
    util_sha256_hex(seed, strlen(seed), hash);
    snprintf(key, sizeof key, "sync-%.40s", hash);
    json_t *tags = json_object_get(src, "tags");
    if (call(c, c->to, "create_experiment",
             json_pack("{s:s,s:s,s:O}", "idempotency_key", key, "name", name, "tags",
                       tags ? tags : json_object()),
             &out) < 0)
        return -1;
    x = json_string_value(json_object_get(out, "external_id"));
    snprintf(ext, 256, "%s", x ? x : "");
    json_decref(out);
    return 0;
}

static int copy_run(struct sync_ctx *c, json_t *run, const char *to_exp)
{
    const char *src_id = json_string_value(json_object_get(run, "external_id"));
    char seed[600], hash[65], key[64], dst[256] = "";
    snprintf(seed, sizeof seed, "%s\n%s", c->from->name, src_id);
    util_sha256_hex(seed, strlen(seed), hash);
    snprintf(key, sizeof key, "sync-%.40s", hash);
    json_t *out = NULL;
    if (to_exp[0]) {
        struct llmops_error err;
        json_t *input = json_pack("{s:s,s:s,s:s}", "kind", "run", "idempotency_key", key,
                                  "experiment_id", to_exp);
        int rc = track_call(NULL, c->to, "find_by_idempotency_key", input, &out, &err);
        json_decref(input);
        if (rc == 0) {
            const char *x = json_string_value(json_object_get(out, "external_id"));
            snprintf(dst, sizeof dst, "%s", x ? x : "");
        } else if (err.code != LLMOPS_ERR_NOT_FOUND) {
            return failed(c, c->to, "find_by_idempotency_key", &err);
        }
    }
    json_t *dst_run = out; /* the target Run when found */
    if (dst[0]) {
        c->n->runs_existing++;
    } else {
        c->n->runs_created++;
        json_decref(dst_run);
        dst_run = NULL;
        if (c->dry_run) {
            /* everything of the run would be copied */
            const char *k;
            json_t *v;
            size_t i;
            c->n->params += json_object_size(json_object_get(run, "params"));
            c->n->tags += json_object_size(json_object_get(run, "tags"));
            json_array_foreach(json_object_get(run, "metrics"), i, v)
            {
                json_t *h =
                    history(c, c->from, src_id, json_string_value(json_object_get(v, "key")));
                if (!h)
                    return -1;
                c->n->points_copied += json_array_size(h);
                json_decref(h);
            }
            (void)k;
            return 0;
        }
        json_t *input =
            json_pack("{s:s,s:s,s:O?,s:O?,s:O?}", "idempotency_key", key, "experiment_id", to_exp,
                      "name", json_object_get(run, "name"), "start_time_ms",
                      json_object_get(run, "start_time_ms"), "user", json_object_get(run, "user"));
        const char *k;
        json_t *v;
        void *tmp;
        json_object_foreach_safe(input, tmp, k, v) if (json_is_null(v)) json_object_del(input, k);
        if (!json_object_get(input, "start_time_ms"))
            json_object_set_new(input, "start_time_ms", json_integer(util_wall_ms()));
        if (call(c, c->to, "create_run", input, &dst_run) < 0)
            return -1;
        const char *x = json_string_value(json_object_get(dst_run, "external_id"));
        snprintf(dst, sizeof dst, "%s", x ? x : "");
    }
    int rc = -1;
    /* params and tags the target lacks */
    json_t *params = json_object(), *tags = json_object(), *none = json_array();
    json_t *have_p = json_object_get(dst_run, "params"), *have_t = json_object_get(dst_run, "tags");
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(run, "params"), k, v)
    {
        json_t *h = json_object_get(have_p, k);
        if (!h)
            json_object_set(params, k, v);
        else if (!json_equal(h, v)) {
            char qk[150], qv[150], qh[150]; /* 100 characters, and all within c->error */
            snprintf(c->error, sizeof c->error,
                     "run %s: param %s is '%s' in %s but '%s' in %s (params never change)", src_id,
                     util_quote(qk, sizeof qk, k, 100),
                     util_quote(qv, sizeof qv, json_string_value(v), 100), c->from->name,
                     util_quote(qh, sizeof qh, json_string_value(h), 100), c->to->name);
            goto out;
        }
    }
    json_object_foreach(json_object_get(run, "tags"), k, v)
    {
        if (strcmp(k, LLMOPS_TRACKING_KEY_TAG) == 0)
            continue; /* the source's own key: never copied */
        json_t *h = json_object_get(have_t, k);
        if (!h || !json_equal(h, v))
            json_object_set(tags, k, v);
    }
    c->n->params += json_object_size(params);
    c->n->tags += json_object_size(tags);
    /* in chunks within the batch limits */
    while (!c->dry_run && (json_object_size(params) || json_object_size(tags))) {
        json_t *bp = json_object(), *bt = json_object();
        void *it, *tmp;
        json_object_foreach_safe(params, tmp, k, v)
        {
            if (json_object_size(bp) == LLMOPS_TRACKING_BATCH_MAX_PARAMS)
                break;
            json_object_set(bp, k, v);
            json_object_del(params, k);
        }
        json_object_foreach_safe(tags, tmp, k, v)
        {
            if (json_object_size(bt) == LLMOPS_TRACKING_BATCH_MAX_TAGS)
                break;
            json_object_set(bt, k, v);
            json_object_del(tags, k);
        }
        (void)it;
        int r = log_batch(c, dst, none, bp, bt);
        json_decref(bp);
        json_decref(bt);
        if (r < 0)
            goto out;
    }
    /* metric histories: keys whose target history is shorter */
    size_t i;
    json_array_foreach(json_object_get(run, "metrics"), i, v)
    {
        const char *key_name = json_string_value(json_object_get(v, "key"));
        json_t *src_h = history(c, c->from, src_id, key_name);
        if (!src_h)
            goto out;
        json_t *dst_h = history(c, c->to, dst, key_name);
        if (!dst_h) {
            json_decref(src_h);
            goto out;
        }
        size_t have = json_array_size(dst_h), want = json_array_size(src_h);
        json_decref(dst_h);
        if (have >= want) {
            c->n->points_existing += want;
            json_decref(src_h);
            continue;
        }
        c->n->points_copied += want - have;
        c->n->points_existing += have;
        for (size_t off = 0; !c->dry_run && off < want; off += LLMOPS_TRACKING_BATCH_MAX_METRICS) {
            json_t *chunk = json_array();
            for (size_t p = off; p < want && p < off + LLMOPS_TRACKING_BATCH_MAX_METRICS; p++) {
                json_t *pt = json_copy(json_array_get(src_h, p));
                json_object_set_new(pt, "key", json_string(key_name));
                json_array_append_new(chunk, pt);
            }
            json_t *np = json_object(), *nt = json_object();
            int r = log_batch(c, dst, chunk, np, nt);
            json_decref(chunk);
            json_decref(np);
            json_decref(nt);
            if (r < 0) {
                json_decref(src_h);
                goto out;
            }
        }
        json_decref(src_h);
    }
    /* the status, once it ended */
    const char *status = json_string_value(json_object_get(run, "status"));
    const char *have_status = json_string_value(json_object_get(dst_run, "status"));
    if (!c->dry_run && status && strcmp(status, "RUNNING") != 0 &&
        strcmp(status, "SCHEDULED") != 0 && (!have_status || strcmp(have_status, status) != 0)) {
        json_t *input = json_pack("{s:s,s:s}", "external_id", dst, "status", status);
        json_t *end = json_object_get(run, "end_time_ms");
        json_object_set_new(input, "end_time_ms",
                            json_is_integer(end) ? json_copy(end) : json_integer(util_wall_ms()));
        if (call(c, c->to, "update_run", input, &out) < 0)
            goto out;
        json_decref(out);
    }
    rc = 0;
out:
    json_decref(params);
    json_decref(tags);
    json_decref(none);
    json_decref(dst_run);
    return rc;
}

static int copy_experiment(struct sync_ctx *c, json_t *exp)
{
    char to_exp[256];
    int found = target_experiment(c, exp, to_exp);
    if (found < 0)
        return -1;
    if (found)
        c->n->experiments_existing++;
    else
        c->n->experiments_created++;
    const char *from_exp = json_string_value(json_object_get(exp, "external_id"));
    const char *name = json_string_value(json_object_get(exp, "name"));
    json_t *page = NULL;
    const char *token = NULL;
    int done = 0;
    do {
        json_t *input = json_pack("{s:[s],s:s,s:i}", "experiment_ids", from_exp, "lifecycle",
                                  "active", "max_results", LLMOPS_TRACKING_MAX_RESULTS);
        if (token)
            json_object_set_new(input, "page_token", json_string(token));
        json_decref(page);
        page = NULL;
        if (call(c, c->from, "search_runs", input, &page) < 0)
            return -1;
        size_t i;
        json_t *run;
        json_array_foreach(json_object_get(page, "runs"), i, run)
        {
            char qn[UTIL_QUOTE_SIZE(60)];
            progress(c, "experiment '%s': run %d", util_quote(qn, sizeof qn, name, 60), ++done);
            if (copy_run(c, run, to_exp) < 0) {
                json_decref(page);
                return -1;
            }
        }
        token = json_string_value(json_object_get(page, "next_page_token"));
    } while (token);
    json_decref(page);
    return 0;
}

int sync_tracking(struct instance *from, struct instance *to, const char *experiment, int dry_run,
                  struct sync_counts *counts, char *error, size_t errsize)
{
    memset(counts, 0, sizeof *counts);
    struct sync_ctx c = {from, to, dry_run, isatty(STDERR_FILENO), counts, ""};
    json_t *page = NULL;
    const char *token = NULL;
    int rc = 0;
    do {
        json_t *input = json_pack("{s:s,s:i}", "lifecycle", "active", "max_results",
                                  LLMOPS_TRACKING_MAX_RESULTS);
        if (experiment)
            json_object_set_new(input, "name", json_string(experiment));
        if (token)
            json_object_set_new(input, "page_token", json_string(token));
        json_decref(page);
        page = NULL;
        if (call(&c, from, "search_experiments", input, &page) < 0) {
            rc = -1;
            break;
        }
        size_t i;
        json_t *exp;
        json_array_foreach(json_object_get(page, "experiments"), i, exp)
        {
            if (copy_experiment(&c, exp) < 0) {
                rc = -1;
                break;
            }
        }
        token = rc == 0 ? json_string_value(json_object_get(page, "next_page_token")) : NULL;
    } while (token);
    json_decref(page);
    if (c.tty)
        fprintf(stderr, "\r\033[K");
    if (rc == 0 && experiment && counts->experiments_created + counts->experiments_existing == 0) {
        snprintf(c.error, sizeof c.error, "instance %s has no active experiment named '%s'",
                 from->name, experiment);
        rc = -1;
    }
    if (rc < 0)
        snprintf(error, errsize, "%s", c.error);
    return rc;
}
