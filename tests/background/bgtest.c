/* The background tests' module (model_registry): objects whose state converges after some
 * polls, and a long import_version that counts with checkpoints.
 *
 * get_model {external_id}:
 *   "ready-after-N"  answers state "pending" to its first N-1 reads, then "ready";
 *   "fail-after-N"   the same, then "failed" with a reason;
 *   "stuck"          always "pending".
 *   Reads are counted per id in this process (the test runs one background process).
 * import_version {external_id: "count-N-MS", dest_path}: counts from the checkpoint (or 0)
 *   to N, one step every MS milliseconds, reporting progress each step and saving a
 *   checkpoint every 5; stops when cancelled(). Each start appends "start FROM PID" to the
 *   file dest_path, each end "end N PID", so the test sees where a run began and how many
 *   runs there were. Answers {revision, files: [], size_bytes: 0, started_from}. */
#include <llmops-operations.h>
#include <llmops-plugin.h>
#include <llmops-registry.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const struct llmops_config_key keys[] = {
    {NULL, 0, 0, 0, 0, NULL},
};

#define MAX_IDS 64

struct bgtest {
    const struct llmops_host *host;
    char ids[MAX_IDS][64];
    long reads[MAX_IDS];
    int n;
};

static int bg_init(const struct llmops_host *host, void **state, struct llmops_error *err)
{
    struct bgtest *b = calloc(1, sizeof *b);
    if (!b)
        return llmops_fail(err, LLMOPS_ERR_INTERNAL, 0, 0, "out of memory");
    b->host = host;
    *state = b;
    return 0;
}

static void bg_fini(void *state)
{
    free(state);
}

static int bg_health(void *state, json_t **info, struct llmops_error *err)
{
    (void)state;
    (void)err;
    *info = json_pack("{s:s}", "tool_version", "1.0.0");
    return 0;
}

static int bg_capabilities(void *state, json_t **out, struct llmops_error *err)
{
    (void)state;
    (void)err;
    *out = json_pack("{s:[s,s,s]}", "operations", "search_models", "get_model", "import_version");
    return 0;
}

static int search_models(void *state, json_t *in, json_t **out, struct llmops_error *err)
{
    (void)state;
    (void)in;
    (void)err;
    *out = json_pack("{s:[]}", "models");
    return 0;
}

static long count_read(struct bgtest *b, const char *id)
{
    for (int i = 0; i < b->n; i++)
        if (strcmp(b->ids[i], id) == 0)
            return ++b->reads[i];
    if (b->n == MAX_IDS)
        return 1;
    snprintf(b->ids[b->n], sizeof b->ids[0], "%s", id);
    b->reads[b->n] = 1;
    return b->reads[b->n++];
}

static int parse_long(const char *s, long *v)
{
    char *end;
    errno = 0;
    long x = strtol(s, &end, 10);
    if (errno || end == s || x < 0)
        return -1;
    *v = x;
    return (int)(end - s);
}

static int get_model(void *state, json_t *in, json_t **out, struct llmops_error *err)
{
    struct bgtest *b = state;
    const char *id = json_string_value(json_object_get(in, "external_id"));
    if (!id)
        return llmops_fail(err, LLMOPS_ERR_INVALID, 0, 0, "external_id is required");
    long n = 0, reads = count_read(b, id);
    const char *st = "pending", *reason = NULL;
    if (strcmp(id, "stuck") == 0) {
        st = "pending";
    } else if (strncmp(id, "ready-after-", 12) == 0 && parse_long(id + 12, &n) > 0) {
        st = reads >= n ? "ready" : "pending";
    } else if (strncmp(id, "fail-after-", 11) == 0 && parse_long(id + 11, &n) > 0) {
        if (reads >= n) {
            st = "failed";
            reason = "the tool gave up";
        }
    } else {
        return llmops_fail(err, LLMOPS_ERR_NOT_FOUND, 0, 0, "no such model");
    }
    *out = json_pack("{s:s,s:s,s:i,s:[],s:i}", "external_id", id, "state", st, "reads", (int)reads,
                     "files", "size_bytes", 0);
    if (reason)
        json_object_set_new(*out, "reason", json_string(reason));
    return 0;
}

static void note(const char *path, const char *what, long v)
{
    FILE *f = fopen(path, "a");
    if (!f)
        return;
    fprintf(f, "%s %ld %ld\n", what, v, (long)getpid());
    fclose(f);
}

static int import_version(void *state, json_t *in, json_t **out, struct llmops_error *err)
{
    struct bgtest *b = state;
    const char *id = json_string_value(json_object_get(in, "external_id"));
    const char *dest = json_string_value(json_object_get(in, "dest_path"));
    long n = 0, ms = 0;
    int k;
    if (!id || !dest || strncmp(id, "count-", 6) != 0 || (k = parse_long(id + 6, &n)) <= 0 ||
        id[6 + k] != '-' || parse_long(id + 7 + k, &ms) <= 0)
        return llmops_fail(err, LLMOPS_ERR_NOT_FOUND, 0, 0, "no such model to import");
    const struct llmops_op_ctx *ctx = llmops_op_ctx(b->host);
    long from = 0;
    if (ctx) {
        json_t *cp = ctx->checkpoint_load(ctx);
        json_t *i = json_object_get(cp, "i");
        if (json_is_integer(i))
            from = (long)json_integer_value(i);
        json_decref(cp);
    }
    note(dest, "start", from);
    for (long i = from; i < n; i++) {
        if (ctx && ctx->cancelled(ctx))
            return llmops_fail(err, LLMOPS_ERR_UNAVAILABLE, 0, 1, "stopped: cancelled");
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        if (ctx) {
            ctx->progress(ctx, i + 1, n, "steps");
            if ((i + 1) % 5 == 0) {
                json_t *cp = json_pack("{s:I}", "i", (json_int_t)(i + 1));
                ctx->checkpoint_save(ctx, cp);
                json_decref(cp);
            }
        }
    }
    note(dest, "end", n);
    *out = json_pack("{s:s,s:[],s:i,s:I}", "revision", "1", "files", "size_bytes", 0,
                     "started_from", (json_int_t)from);
    return 0;
}

static const struct llmops_registry_ops ops = {
    .size = sizeof ops,
    .search_models = search_models,
    .get_model = get_model,
    .import_version = import_version,
};

static const struct llmops_plugin bgtest_plugin = {
    .magic = LLMOPS_PLUGIN_MAGIC_INIT,
    .size = sizeof(struct llmops_plugin),
    .name = "bgtest",
    .version = "1.0.0",
    .category = LLMOPS_CATEGORY_MODEL_REGISTRY,
    .category_abi = LLMOPS_REGISTRY_ABI,
    .ops = &ops,
    .config_keys = keys,
    .init = bg_init,
    .fini = bg_fini,
    .health = bg_health,
    .capabilities = bg_capabilities,
};

LLMOPS_PLUGIN_DEFINE(bgtest_plugin)
