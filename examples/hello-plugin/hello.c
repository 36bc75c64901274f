/* The smallest useful llm-ops plugin: a model_registry module holding one model, "hello",
 * whose health reports the greeting it was configured with. It shows the parts every plugin
 * has: a key table, init, fini, health, capabilities, the category's ops, and
 * LLMOPS_PLUGIN_DEFINE. Its health uses two ABI 1.1 host services, digest and
 * version_in_range (a module built with this header targets 1.1, so it needs no check; one
 * built with -DLLMOPS_PLUGIN_TARGET_MINOR=0 for older servers would test host->abi_minor). */
#include <llmops-plugin.h>
#include <llmops-registry.h>

#include <stdlib.h>
#include <string.h>

static const struct llmops_config_key keys[] = {
    {"greeting", LLMOPS_CONFIG_STRING, 1, 0, 0, "what health answers with"},
    {NULL, 0, 0, 0, 0, NULL},
};

struct hello {
    const struct llmops_host *host;
    char greeting[128];
};

static int hello_init(const struct llmops_host *host, void **state, struct llmops_error *err)
{
    struct hello *h = calloc(1, sizeof *h);
    if (!h)
        return llmops_fail(err, LLMOPS_ERR_INTERNAL, 0, 0, "out of memory");
    h->host = host;
    strncpy(h->greeting, host->config_string(host, "greeting", "hello"), sizeof h->greeting - 1);
    host->log(host, LLMOPS_LOG_INFO, "ready to say %s", h->greeting);
    *state = h;
    return 0;
}

static void hello_fini(void *state)
{
    free(state);
}

static int hello_health(void *state, json_t **info, struct llmops_error *err)
{
    struct hello *h = state;
    char sha[LLMOPS_DIGEST_HEX_MAX];
    if (h->host->digest(LLMOPS_DIGEST_SHA256, h->greeting, strlen(h->greeting), sha, sizeof sha,
                        err) != 0)
        return -1;
    *info = json_pack("{s:s,s:s,s:s,s:b}", "tool_version", "1.0.0", "greeting", h->greeting,
                      "greeting_sha256", sha, "tool_in_range",
                      h->host->version_in_range("1.0.0", "1.0", NULL));
    return 0;
}

static int hello_capabilities(void *state, json_t **out, struct llmops_error *err)
{
    (void)state;
    (void)err;
    *out = json_pack("{s:[s,s,s]}", "operations", "search_models", "get_model", "import_version");
    return 0;
}

static json_t *the_model(const struct hello *h)
{
    return json_pack("{s:s,s:s,s:s}", "external_id", "hello", "name", "hello", "description",
                     h->greeting);
}

static int search_models(void *state, json_t *in, json_t **out, struct llmops_error *err)
{
    (void)in;
    (void)err;
    *out = json_pack("{s:[o]}", "models", the_model(state));
    return 0;
}

static int get_model(void *state, json_t *in, json_t **out, struct llmops_error *err)
{
    const char *id = json_string_value(json_object_get(in, "external_id"));
    if (!id || strcmp(id, "hello") != 0)
        return llmops_fail(err, LLMOPS_ERR_NOT_FOUND, 0, 0, "only the model 'hello' exists");
    *out = the_model(state);
    return 0;
}

static int import_version(void *state, json_t *in, json_t **out, struct llmops_error *err)
{
    (void)state;
    (void)in;
    (void)out;
    return llmops_fail(err, LLMOPS_ERR_UNSUPPORTED, 0, 0, "hello holds one model only");
}

static const struct llmops_registry_ops ops = {
    .size = sizeof ops,
    .search_models = search_models,
    .get_model = get_model,
    .import_version = import_version,
};

static const struct llmops_plugin hello_plugin = {
    .magic = LLMOPS_PLUGIN_MAGIC_INIT,
    .size = sizeof(struct llmops_plugin),
    .name = "hello",
    .version = "1.0.0",
    .category = LLMOPS_CATEGORY_MODEL_REGISTRY,
    .category_abi = LLMOPS_REGISTRY_ABI,
    .ops = &ops,
    .config_keys = keys,
    .tool_version_min = "1.0",
    .init = hello_init,
    .fini = hello_fini,
    .health = hello_health,
    .capabilities = hello_capabilities,
};

LLMOPS_PLUGIN_DEFINE(hello_plugin)
