#include "checkconf.h"

#include "conf.h"
#include "flags.h"
#include "log.h"
#include "plugin.h"

#include <stdio.h>

int check_config_modules(const struct llmops_conf *conf, struct conf_errors *errs)
{
    struct plugin_registry reg;
    int n = plugins_load(&reg, conf, NULL, 0, errs);
    n += flags_check_config(conf, &reg, errs);
    plugins_unload(&reg);
    return n;
}

int check_config(const char *path)
{
    struct llmops_conf conf;
    struct conf_errors errs = {0};
    int n = conf_load(path, &conf, &errs);
    if (n == 0) {
        log_set_level(LOG_LVL_SILENT); /* each problem is printed below, once */
        n += check_config_modules(&conf, &errs);
    }
    for (int i = 0; i < errs.n; i++)
        fprintf(stderr, "%s\n", errs.msgs[i]);
    conf_errors_free(&errs);
    conf_free(&conf);
    if (n > 0)
        return 2;
    printf("configuration OK\n");
    return 0;
}
