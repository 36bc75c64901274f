/* Loading modules and creating instances (collectd's loading, PostgreSQL's magic block,
 * Janus's required-method checks, WeeChat's host table). */
#ifndef LLMOPS_PLUGIN_LOADER_H
#define LLMOPS_PLUGIN_LOADER_H

#include "breaker.h"
#include "conf.h"
#include "llmops-plugin.h"

#include <jansson.h>

struct db;
struct httpc;

struct module {
    char *name;
    char *path;
    void *dl;
    const struct llmops_plugin *desc;
};

enum instance_state { INSTANCE_OK, INSTANCE_DEGRADED, INSTANCE_FAILED };

#define INSTANCE_METRICS 32

/* A counter a plugin keeps through host->metric_add (per worker until the metrics issue moves
 * counters to shared memory). */
struct instance_metric {
    char name[48];
    double value;
};

struct instance {
    char *name;
    const struct conf_plugin *cfg; /* its section (owned by the configuration) */
    struct module *mod;            /* NULL when the module could not be loaded */
    struct llmops_host host;
    void *state;
    int initialised;
    enum instance_state st;
    char reason[600];
    char tool_version[64];
    struct httpc *http;
    struct plugin_registry *reg;
    struct breaker breaker;
    struct instance_metric metrics[INSTANCE_METRICS];
    int nmetrics;
    json_t *caps;     /* what capabilities() answered at load or the last refresh; NULL: none */
    int caps_loaded;  /* capabilities() was asked */
    int trip_pending; /* its breaker opened: the flags move after the answer (dispatch.h) */
    unsigned trip_calls, trip_failures; /* the window that opened it */
};

struct plugin_registry {
    const struct llmops_conf *conf;
    struct breaker_policy policy;
    struct db *db; /* for host->db_exec; may be NULL */
    struct module *mods;
    int nmods;
    struct instance *insts;
    int ninsts;
};

/* Loads every module the configuration names and initialises every instance (init=1), or
 * only loads and checks them (init=0: --check-config). Problems go to errs as
 * "file:line: message" and are kept on the failed instance; the others still serve.
 * Returns the number of problems. */
int plugins_load(struct plugin_registry *reg, const struct llmops_conf *conf, struct db *db,
                 int init, struct conf_errors *errs);
void plugins_unload(struct plugin_registry *reg);
struct instance *plugins_find(struct plugin_registry *reg, const char *name);
/* Asks an initialised instance's capabilities() and caches the answer in in->caps (NULL when
 * it fails or lists no "operations"): at load, and after a breaker probe found it healthy. */
void plugins_refresh_capabilities(struct instance *in);

/* Opens <dir>/<name>.so and checks it; on failure returns -1 with a message that names the
 * file, what was expected, what was found, and the fix. */
int module_open(const char *dir, const char *name, struct module *out, char *msg, size_t msgsize);
void module_close(struct module *m);

/* Maps a plugin status to the API's error. */
int plugin_status_to_api(enum llmops_status st);

#endif
