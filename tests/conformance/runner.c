/* conformance --config FILE --instance NAME: runs the common suite and the suite of the
 * instance's category against that instance. */
#include "category.h"
#include "conformance.h"
#include "log.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct instance *conformance_instance;

int main(int argc, char **argv)
{
    const char *config = NULL, *name = NULL;
    static const struct option o[] = {{"config", required_argument, NULL, 'c'},
                                      {"instance", required_argument, NULL, 'i'},
                                      {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "c:i:", o, NULL)) != -1) {
        if (c == 'c')
            config = optarg;
        else if (c == 'i')
            name = optarg;
        else
            return 2;
    }
    if (!config || !name) {
        fprintf(stderr, "usage: conformance --config FILE --instance NAME\n");
        return 2;
    }
    struct llmops_conf conf;
    struct conf_errors errs = {0};
    if (conf_load(config, &conf, &errs) > 0) {
        for (int i = 0; i < errs.n; i++)
            fprintf(stderr, "%s\n", errs.msgs[i]);
        return 2;
    }
    log_set_level(LOG_LVL_WARNING);
    struct plugin_registry reg;
    plugins_load(&reg, &conf, NULL, 1, &errs);
    conformance_instance = plugins_find(&reg, name);
    if (!conformance_instance || !conformance_instance->initialised) {
        fprintf(stderr, "conformance: instance %s is not running: %s\n", name,
                conformance_instance ? conformance_instance->reason : "not configured");
        return 1;
    }
    int category = (int)conformance_instance->mod->desc->category;
    printf("conformance of instance %s (module %s, %s)\n", name, conformance_instance->mod->name,
           category_name(category));
    SRunner *sr = srunner_create(conformance_common());
    Suite *cat = conformance_category(category);
    if (cat)
        srunner_add_suite(sr, cat);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    plugins_unload(&reg);
    conf_errors_free(&errs);
    conf_free(&conf);
    return failed ? 1 : 0;
}
