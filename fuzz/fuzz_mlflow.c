/* The mlflow module's parsing of what an MLflow server sends back (plugins/mlflow/mlflow_parse.c,
 * compiled in): the first byte picks the HTTP status, the rest is the response body. Every
 * answer is classified; a JSON body goes through every converter that a response member can
 * reach (experiments, runs, run infos, metric histories and the points a log_batch leaves out
 * of a re-send, page tokens), and through the filter
 * and order_by renderers when it carries "filter" or "order_by" arrays (their input is the
 * core's, but a renderer must never misbehave on any JSON). */
#include "mlflow_parse.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const int statuses[] = {200, 400, 404, 405, 401, 403, 429, 500, 503, 302, 201, 418};

static void consume(json_t *v)
{
    if (v) {
        char *s = json_dumps(v, JSON_COMPACT);
        free(s);
        json_decref(v);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int status = statuses[data[0] % (sizeof statuses / sizeof statuses[0])];
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    char why[160];

    struct mlflow_fault f;
    if (mlflow_classify(status, body, len, &f)) {
        if (strlen(f.what) >= sizeof f.what || strchr(f.detail, '\n'))
            abort();
    }
    char version[64];
    (void)mlflow_version_parse(body, len, version, sizeof version);

    json_t *o = mlflow_parse_object(body, len);
    if (!o)
        return 0;
    consume(mlflow_experiment(json_object_get(o, "experiment"), "https://ui", why, sizeof why));
    consume(mlflow_run(json_object_get(o, "run"), "https://ui", why, sizeof why));
    consume(mlflow_run_info(json_object_get(o, "run_info"), NULL, "fallback", why, sizeof why));
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(o, "experiments"), i, x)
    {
        consume(mlflow_experiment(x, NULL, why, sizeof why));
    }
    json_array_foreach(json_object_get(o, "runs"), i, x)
    {
        consume(mlflow_run(x, "u", why, sizeof why));
    }
    json_t *history = json_array();
    json_array_foreach(json_object_get(o, "metrics"), i, x)
    {
        json_t *m = mlflow_metric(x, why, sizeof why);
        if (m)
            json_array_append_new(history, m);
        consume(mlflow_value_out(json_object_get(x, "value")));
    }
    /* what log_batch does with a history it read: leave out what the run holds */
    json_t *batch = json_deep_copy(json_object_get(o, "metrics"));
    if (json_is_array(batch)) {
        size_t before = json_array_size(batch);
        long dropped = mlflow_points_drop(batch, history);
        if (dropped >= 0 && json_array_size(batch) + (size_t)dropped != before)
            abort();
    }
    consume(batch);
    mlflow_history_sort(history);
    consume(history);
    (void)mlflow_tag_value(json_object_get(o, "tags"), LLMOPS_TRACKING_KEY_TAG);
    long long offset;
    (void)mlflow_history_token(json_string_value(json_object_get(o, "next_page_token")), &offset);

    char msg[256];
    json_t *filter = json_object_get(o, "filter");
    if (json_is_array(filter))
        free(mlflow_render_filter(filter, msg, sizeof msg));
    json_t *order = json_object_get(o, "order_by");
    if (json_is_array(order))
        consume(mlflow_render_order_by(order, msg, sizeof msg));
    const char *s = json_string_value(json_object_get(o, "name"));
    if (s) {
        struct mlflow_buf b = {0};
        mlflow_quote(&b, s);
        free(b.p);
        free(mlflow_url_encode(s));
    }
    json_decref(o);
    return 0;
}
