/* A trivial test module: an experiment_tracking instance that keeps nothing and answers
 * health with a fixed tool version. Its config keys exercise the core's key checks.
 * Built once more with LLMOPS_PLUGIN_TARGET_MINOR=0 as "echo10", a module of ABI 1.0: its
 * health reports the struct sizes it was compiled with and makes an HTTP call with them. */
#include "llmops-plugin.h"
#include "llmops-tracking.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Every tracking operation answers UNSUPPORTED: the module tests the core's plumbing, not
 * tracking (the tracking plugins and their conformance suite do that). */
__attribute__((unused)) static int unsupported(void *state, json_t *in, json_t **out,
                                               struct llmops_error *err)
{
    (void)state;
    (void)in;
    (void)out;
    return llmops_fail(err, LLMOPS_ERR_UNSUPPORTED, 0, 0, "the echo test module tracks nothing");
}

#ifdef NO_OPS
static const struct llmops_tracking_ops ops = {.size = sizeof ops};
#else
static const struct llmops_tracking_ops ops = {.size = sizeof ops,
#define ECHO_OP_(member, required) .member = unsupported,
                                               LLMOPS_TRACKING_OPS(ECHO_OP_)
#undef ECHO_OP_
};
#endif

struct state {
    const struct llmops_host *host;
    char version[32];
};

static const struct llmops_config_key keys[] = {
    {"tool_version", LLMOPS_CONFIG_STRING, 0, 0, 0, "the version health reports"},
    {"limit", LLMOPS_CONFIG_INT, 0, 1, 10, "a number from 1 to 10"},
    {"fail_init", LLMOPS_CONFIG_BOOL, 0, 0, 0, "make init fail"},
    {"token_file", LLMOPS_CONFIG_FILE, 0, 0, 0, "a secret"},
    {"health_fail_file", LLMOPS_CONFIG_STRING, 0, 0, 0, "health fails while this file exists"},
    {"crash_on_health", LLMOPS_CONFIG_BOOL, 0, 0, 0, "health dereferences NULL (crash test)"},
#ifdef CORE_KEY
    {"allowed_hosts", LLMOPS_CONFIG_STRING, 0, 0, 0, "redefines a key of the core's (refused)"},
#endif
    {"health_delay_ms", LLMOPS_CONFIG_INT, 0, 0, 60000, "health sleeps this long first"},
    {"probe_path", LLMOPS_CONFIG_STRING, 0, 0, 0, "health GETs this path with host->http"},
    {"ui_url", LLMOPS_CONFIG_URL, 0, 0, 0, "a second endpoint"},
    {"unlisted", LLMOPS_CONFIG_STRING, 0, 0, 0, "an op capabilities() leaves out"},
    {"feature", LLMOPS_CONFIG_STRING, 0, 0, 0, "a feature capabilities() lists"},
    {NULL, 0, 0, 0, 0, NULL},
};

static int init(const struct llmops_host *host, void **state, struct llmops_error *err)
{
    if (host->config_bool(host, "fail_init", 0))
        return llmops_fail(err, LLMOPS_ERR_INVALID, 0, 0, "fail_init is on");
    struct state *s = calloc(1, sizeof *s);
    s->host = host;
    const char *v = host->config_string(host, "tool_version", "1.0.0");
    strncpy(s->version, v, sizeof s->version - 1);
    *state = s;
    return 0;
}

static void fini(void *state)
{
    free(state);
}

__attribute__((unused)) static int health(void *state, json_t **info, struct llmops_error *err)
{
    struct state *s = state;
    long long delay = s->host->config_int(s->host, "health_delay_ms", 0);
    if (delay > 0)
        usleep((useconds_t)delay * 1000);
    if (s->host->config_bool(s->host, "crash_on_health", 0)) {
        volatile int *nowhere = NULL;
        *nowhere = 1; /* a plugin bug: costs this worker, not the service */
    }
    const char *fail = s->host->config_string(s->host, "health_fail_file", NULL);
    if (fail && access(fail, F_OK) == 0)
        return llmops_fail(err, LLMOPS_ERR_UNAVAILABLE, 503, 1, "the tool is down (test)");
    *info = json_pack("{s:s,s:i,s:i,s:i,s:i,s:i,s:i}", "tool_version", s->version, "abi_minor",
                      LLMOPS_PLUGIN_TARGET_MINOR, "request_size",
                      (int)sizeof(struct llmops_http_request), "response_size",
                      (int)sizeof(struct llmops_http_response), "host_size",
                      (int)sizeof(struct llmops_host), "core_host_size", (int)s->host->size,
                      "core_abi_minor", (int)s->host->abi_minor);
    const char *probe = s->host->config_string(s->host, "probe_path", NULL);
    if (probe) {
        /* whatever lies beyond the struct this module knows must not be read or written */
        struct {
            struct llmops_http_request rq;
            unsigned char guard[64];
        } q;
        struct {
            struct llmops_http_response rs;
            unsigned char guard[64];
        } a;
        memset(&q, 0x5a, sizeof q);
        memset(&a, 0xa5, sizeof a);
        memset(&q.rq, 0, sizeof q.rq);
        memset(&a.rs, 0, sizeof a.rs);
        q.rq.size = sizeof q.rq;
        q.rq.method = "GET";
        q.rq.path = probe;
        a.rs.size = sizeof a.rs;
        struct llmops_error e = {.size = sizeof e};
        int rc = s->host->http(s->host, &q.rq, &a.rs, &e);
        int guard_ok = 1;
        for (size_t i = 0; i < sizeof a.guard; i++)
            if (a.guard[i] != 0xa5)
                guard_ok = 0;
        json_object_set_new(*info, "probe_rc", json_integer(rc));
        json_object_set_new(*info, "probe_status", json_integer(rc == 0 ? a.rs.status : 0));
        json_object_set_new(*info, "probe_error", json_string(rc == 0 ? "" : e.message));
        json_object_set_new(*info, "probe_guard_ok", json_boolean(guard_ok));
        if (rc == 0)
            s->host->http_free(&a.rs);
    }
    return 0;
}

static int capabilities(void *state, json_t **out, struct llmops_error *err)
{
    struct state *s = state;
    (void)err;
    const char *unlisted = s->host->config_string(s->host, "unlisted", "");
    const char *feature = s->host->config_string(s->host, "feature", NULL);
    json_t *list = json_array();
#define ECHO_NAME_(member, required)                                                               \
    if (strcmp(unlisted, #member) != 0)                                                            \
        json_array_append_new(list, json_string(#member));
    LLMOPS_TRACKING_OPS(ECHO_NAME_)
#undef ECHO_NAME_
    *out = json_pack("{s:o,s:[]}", "operations", list, "features");
    if (feature)
        json_array_append_new(json_object_get(*out, "features"), json_string(feature));
    return 0;
}

static const struct llmops_plugin descriptor = {
    .magic = LLMOPS_PLUGIN_MAGIC_INIT,
    .size = sizeof(struct llmops_plugin),
    .name = MODULE_NAME,
    .version = "0.1",
    .category = LLMOPS_CATEGORY_EXPERIMENT_TRACKING,
#ifdef BAD_CATEGORY_ABI
    .category_abi = LLMOPS_TRACKING_ABI + 1,
#else
    .category_abi = LLMOPS_TRACKING_ABI,
#endif
    .ops = &ops,
    .config_keys = keys,
    .init = init,
    .fini = fini,
#ifndef NO_HEALTH
    .health = health,
#endif
    .capabilities = capabilities,
};

#ifdef BAD_ABI
static struct llmops_plugin bad;
LLMOPS_PLUGIN_EXPORT const struct llmops_plugin *llmops_plugin_entry(void);
LLMOPS_PLUGIN_EXPORT const struct llmops_plugin *llmops_plugin_entry(void)
{
    bad = descriptor;
    bad.magic.abi_major = LLMOPS_PLUGIN_ABI_MAJOR + 1;
    bad.magic.abi_minor = 0;
    return &bad;
}
#elif defined(NEWER_MINOR)
static struct llmops_plugin newer;
LLMOPS_PLUGIN_EXPORT const struct llmops_plugin *llmops_plugin_entry(void);
LLMOPS_PLUGIN_EXPORT const struct llmops_plugin *llmops_plugin_entry(void)
{
    newer = descriptor;
    newer.magic.abi_minor = LLMOPS_PLUGIN_ABI_MINOR + 1;
    return &newer;
}
#elif defined(NO_ENTRY)
LLMOPS_PLUGIN_EXPORT const struct llmops_plugin *some_other_symbol(void);
LLMOPS_PLUGIN_EXPORT const struct llmops_plugin *some_other_symbol(void)
{
    return &descriptor;
}
#else
LLMOPS_PLUGIN_DEFINE(descriptor)
#endif
