/* llmops-conformance MODULE --category CAT --config FILE [--instance NAME] [--plugin-dir DIR]
 *                    [--interface-only | --health]
 * llmops-conformance --list [--category CAT] [MODULE]
 *
 * Runs the conformance suites on an instance of MODULE (a path to MODULE.so, or a module name
 * looked up in --plugin-dir or the configuration's [server] plugin_dir): the common suite, the
 * interface suite and the behaviour suite of its category, then the module's own suite where
 * it has one (tracking_pg.c). See llmops-conformance(1).
 *
 * The instance is loaded by the server's own loader and gets the server's own host table
 * (llmops_core, linked statically): the same ABI and key checks, HTTP client (retries,
 * redirects, allowed hosts, auth header), counters and database service as in llm-opsd, so
 * a module that passes here behaves the same under the server. The configuration's
 * [database] conninfo is the database handed to the instance (host->db_exec) for modules that
 * own tables; nothing connects until one asks.
 *   --interface-only  skips the behaviour and module suites (modules that implement nothing)
 *   --health          only calls health and prints its answer: exit 0 healthy, 1 not
 * Exit status: 0 passed, 1 a suite failed or the instance did not start, 2 bad usage or
 * configuration. */
#include "category.h"
#include "conformance.h"
#include "db.h"
#include "log.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct instance *conformance_instance;

static const char usage_text[] =
    "usage: llmops-conformance MODULE --category CAT --config FILE [--instance NAME]\n"
    "                          [--plugin-dir DIR] [--interface-only | --health]\n"
    "       llmops-conformance --list [--category CAT] [MODULE]\n"
    "MODULE is a path to MODULE.so or a module name (looked up in --plugin-dir, else the\n"
    "configuration's [server] plugin_dir); CAT is one of %s.\n";

static int usage(void)
{
    fprintf(stderr, usage_text, category_list());
    return 2;
}

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

/* --list: the suites that run for each category (one line each: the category, then its
 * suites in order), and the modules that have their own. */
static int list(int category, const char *module)
{
    for (const struct conformance_category *c = conformance_categories; c->category; c++) {
        if (category > 0 && c->category != category)
            continue;
        printf("%s: common interface", category_name(c->category));
        if (c->suite_name)
            printf(" %s", c->suite_name);
        for (const struct conformance_module_suite *m = conformance_modules; m->module; m++)
            if (module && strcmp(module, m->module) == 0)
                printf(" %s", m->module);
        printf("\n");
    }
    if (!module) {
        printf("module suites:");
        for (const struct conformance_module_suite *m = conformance_modules; m->module; m++)
            printf(" %s", m->module);
        printf("\n");
    }
    return 0;
}

/* Splits MODULE into a directory (NULL for a bare name) and a module name. Returns 0, or -1
 * with a message. */
static int split_module(const char *arg, char **dir, char **name)
{
    *dir = *name = NULL;
    const char *slash = strrchr(arg, '/');
    size_t n = strlen(arg);
    int is_path = slash || (n > 3 && strcmp(arg + n - 3, ".so") == 0);
    if (!is_path) {
        *name = strdup(arg);
        return *name ? 0 : -1;
    }
    const char *base = slash ? slash + 1 : arg;
    size_t bl = strlen(base);
    if (bl <= 3 || strcmp(base + bl - 3, ".so") != 0) {
        fprintf(stderr, "llmops-conformance: %s: a module file is named NAME.so\n", arg);
        return -1;
    }
    *name = strndup(base, bl - 3);
    *dir = slash ? strndup(arg, (size_t)(slash - arg)) : strdup(".");
    if (*dir && !**dir) { /* "/x.so" */
        free(*dir);
        *dir = strdup("/");
    }
    return *name && *dir ? 0 : -1;
}

/* The instance of `module` the configuration declares: `want` if given, else the only one. */
static const struct conf_plugin *pick_instance(const struct llmops_conf *conf, const char *config,
                                               const char *module, const char *want)
{
    if (want) {
        const struct conf_plugin *p = conf_plugin_find(conf, want);
        if (!p) {
            fprintf(stderr, "llmops-conformance: %s declares no [plugin \"%s\"]\n", config, want);
            return NULL;
        }
        if (!p->module || strcmp(p->module, module) != 0) {
            fprintf(stderr, "llmops-conformance: %s: instance %s is of module %s, not %s\n",
                    p->where, want, p->module ? p->module : "(none)", module);
            return NULL;
        }
        return p;
    }
    const struct conf_plugin *found = NULL;
    int n = 0;
    for (int i = 0; i < conf->nplugins; i++)
        if (conf->plugins[i].module && strcmp(conf->plugins[i].module, module) == 0) {
            found = &conf->plugins[i];
            n++;
        }
    if (n == 0)
        fprintf(stderr,
                "llmops-conformance: %s declares no instance of module %s (add [plugin \"%s\"] "
                "with module = %s and its keys)\n",
                config, module, module, module);
    else if (n > 1)
        fprintf(stderr,
                "llmops-conformance: %s declares %d instances of module %s: name one with "
                "--instance\n",
                config, n, module);
    return n == 1 ? found : NULL;
}

static int run_suites(struct instance *in, int interface_only)
{
    int category = (int)in->mod->desc->category;
    printf("conformance of instance %s (module %s, %s)\n", in->name, in->mod->name,
           category_name(category));
    SRunner *sr = srunner_create(conformance_common());
    srunner_add_suite(sr, conformance_interface(category));
    Suite *behaviour = interface_only ? NULL : conformance_behaviour(category);
    if (behaviour)
        srunner_add_suite(sr, behaviour);
    Suite *own = interface_only ? NULL : conformance_module(in->mod->name);
    if (own)
        srunner_add_suite(sr, own);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_ENV); /* CK_VERBOSITY=verbose lists every test */
    int rc = srunner_ntests_failed(sr) ? 1 : 0;
    srunner_free(sr);
    return rc;
}

int main(int argc, char **argv)
{
    const char *config = NULL, *name = NULL, *cat = NULL, *plugin_dir = NULL;
    int interface_only = 0, health = 0, listing = 0;
    static const struct option o[] = {{"config", required_argument, NULL, 'c'},
                                      {"category", required_argument, NULL, 'C'},
                                      {"instance", required_argument, NULL, 'i'},
                                      {"plugin-dir", required_argument, NULL, 'd'},
                                      {"list", no_argument, NULL, 'l'},
                                      {"interface-only", no_argument, NULL, 'I'},
                                      {"health", no_argument, NULL, 'H'},
                                      {"help", no_argument, NULL, 'h'},
                                      {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "c:C:i:d:lh", o, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 'C':
            cat = optarg;
            break;
        case 'i':
            name = optarg;
            break;
        case 'd':
            plugin_dir = optarg;
            break;
        case 'l':
            listing = 1;
            break;
        case 'I':
            interface_only = 1;
            break;
        case 'H':
            health = 1;
            break;
        case 'h':
            printf(usage_text, category_list());
            return 0;
        default:
            return usage();
        }
    }
    if (argc - optind > 1)
        return usage();
    const char *module_arg = optind < argc ? argv[optind] : NULL;
    int category = cat ? category_from_string(cat) : 0;
    if (cat && category < 0) {
        fprintf(stderr, "llmops-conformance: --category %s is not one of %s\n", cat,
                category_list());
        return 2;
    }
    char *dir = NULL, *module = NULL;
    if (module_arg && split_module(module_arg, &dir, &module) != 0)
        return 2;
    if (listing) {
        int rc = list(category, module);
        free(dir);
        free(module);
        return rc;
    }
    if (!module || !config || !cat || (interface_only && health)) {
        free(dir);
        free(module);
        return usage();
    }
    if (dir && plugin_dir) {
        fprintf(stderr, "llmops-conformance: give MODULE as a path or --plugin-dir, not both\n");
        free(dir);
        free(module);
        return 2;
    }
    struct llmops_conf conf;
    struct conf_errors errs = {0};
    int rc = 2;
    if (conf_load(config, &conf, &errs) > 0) {
        for (int i = 0; i < errs.n; i++)
            fprintf(stderr, "%s\n", errs.msgs[i]);
        conf_errors_free(&errs);
        conf_free(&conf);
        free(dir);
        free(module);
        return 2;
    }
    if (dir || plugin_dir) {
        free(conf.plugin_dir);
        conf.plugin_dir = strdup(dir ? dir : plugin_dir);
    }
    const struct conf_plugin *p = pick_instance(&conf, config, module, name);
    if (!p || !conf.plugin_dir)
        goto out;
    log_set_level(LOG_LVL_WARNING);
    struct db db;
    db_init(&db, conf.db_conninfo, (int)conf.db_connect_timeout_ms, (int)conf.db_query_timeout_ms,
            "llmops-conformance");
    struct plugin_registry reg;
    plugins_load(&reg, &conf, &db, 1, &errs);
    conformance_instance = plugins_find(&reg, p->name);
    struct instance *in = conformance_instance;
    if (!in || !in->initialised || !in->mod) {
        for (int i = 0; i < errs.n; i++)
            fprintf(stderr, "%s\n", errs.msgs[i]);
        fprintf(stderr, "llmops-conformance: instance %s is not running: %s\n", p->name,
                in ? in->reason : "not configured");
        rc = 1;
    } else if ((int)in->mod->desc->category != category) {
        fprintf(stderr, "llmops-conformance: module %s is of category %s, not %s\n", in->mod->name,
                category_name((int)in->mod->desc->category), cat);
        rc = 1;
    } else if (health) {
        rc = health_only(in);
    } else {
        rc = run_suites(in, interface_only);
    }
    plugins_unload(&reg);
    db_close(&db);
out:
    conf_errors_free(&errs);
    conf_free(&conf);
    free(dir);
    free(module);
    return rc;
}
