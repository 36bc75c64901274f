/* conformance --config FILE --instance NAME [--interface-only | --health]: runs the common
 * suite, the interface suite and the behaviour suite of the instance's category, then the
 * module's own suite where it has one (tracking_pg.c), against that instance. The configuration's
 * [database] conninfo is the database handed to the instance (host->db_exec) for modules that own
 * tables; nothing connects until one asks.
 *   --interface-only  skips the behaviour suite (test modules that implement nothing)
 *   --health          only calls health and prints its answer: exit 0 healthy, 1 not */
#include "category.h"
#include "conformance.h"
#include "db.h"
#include "log.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct instance *conformance_instance;

static int health_only(struct instance *in)
{
    json_t *info = NULL;
    struct llmops_error err = {.size = sizeof err};
    int rc = in->mod->desc->health(in->state, &info, &err);
    if (rc == 0) {
        char *s = json_dumps(info, JSON_COMPACT | JSON_SORT_KEYS);
        printf("health: ok %s\n", s ? s : "?");
        free(s);
    } else {
        printf("health: failed (code %d, retryable %d): %s\n", err.code, err.retryable,
               err.message);
    }
    json_decref(info);
    return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    const char *config = NULL, *name = NULL;
    int interface_only = 0, health = 0;
    static const struct option o[] = {{"config", required_argument, NULL, 'c'},
                                      {"instance", required_argument, NULL, 'i'},
                                      {"interface-only", no_argument, NULL, 'I'},
                                      {"health", no_argument, NULL, 'H'},
                                      {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "c:i:", o, NULL)) != -1) {
        if (c == 'c')
            config = optarg;
        else if (c == 'i')
            name = optarg;
        else if (c == 'I')
            interface_only = 1;
        else if (c == 'H')
            health = 1;
        else
            return 2;
    }
    if (!config || !name) {
        fprintf(stderr, "usage: conformance --config FILE --instance NAME [--interface-only | "
                        "--health]\n");
        return 2;
    }
    struct llmops_conf conf;
    struct conf_errors errs = {0};
    if (conf_load(config, &conf, &errs) > 0) {
        for (int i = 0; i < errs.n; i++)
            fprintf(stderr, "%s\n", errs.msgs[i]);
        conf_errors_free(&errs);
        conf_free(&conf);
        return 2;
    }
    log_set_level(LOG_LVL_WARNING);
    struct db db;
    db_init(&db, conf.db_conninfo, (int)conf.db_connect_timeout_ms, (int)conf.db_query_timeout_ms,
            "conformance");
    struct plugin_registry reg;
    plugins_load(&reg, &conf, &db, 1, &errs);
    conformance_instance = plugins_find(&reg, name);
    int rc;
    if (!conformance_instance || !conformance_instance->initialised) {
        fprintf(stderr, "conformance: instance %s is not running: %s\n", name,
                conformance_instance ? conformance_instance->reason : "not configured");
        rc = 1;
    } else if (health) {
        rc = health_only(conformance_instance);
    } else {
        int category = (int)conformance_instance->mod->desc->category;
        printf("conformance of instance %s (module %s, %s)\n", name,
               conformance_instance->mod->name, category_name(category));
        SRunner *sr = srunner_create(conformance_common());
        srunner_add_suite(sr, conformance_category(category));
        Suite *behaviour = interface_only ? NULL : conformance_behaviour(category);
        if (behaviour)
            srunner_add_suite(sr, behaviour);
        Suite *own = interface_only ? NULL : conformance_module(conformance_instance->mod->name);
        if (own)
            srunner_add_suite(sr, own);
        srunner_set_fork_status(sr, CK_NOFORK);
        srunner_run_all(sr, CK_NORMAL);
        rc = srunner_ntests_failed(sr) ? 1 : 0;
        srunner_free(sr);
    }
    plugins_unload(&reg);
    db_close(&db);
    conf_errors_free(&errs);
    conf_free(&conf);
    return rc;
}
