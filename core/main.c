/* llm-opsd: the FastCGI server of llm-ops. */
#include "build-config.h"
#include "conf.h"
#include "log.h"
#include "checkconf.h"
#include "alerts.h"
#include "background.h"
#include "server.h"
#include "serving.h"
#include "util.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *to)
{
    fprintf(to, "usage: llm-opsd [--config PATH] [--listen unix:PATH|HOST:PORT] [--workers N]\n"
                "                [--pid-file PATH] [--foreground] [--check-config] [--version]\n"
                "       llm-opsd --background [--config PATH]   (--jobs: the same)\n"
                "\n"
                "Without --listen, llm-opsd serves FastCGI on standard input, as spawned by a web\n"
                "server (lighttpd bin-path, Apache mod_fcgid). With --listen, a master pre-forks\n"
                "workers on that socket. --background runs the background process instead: it\n"
                "delivers the outbox (training jobs' runs and what they log), watches objects\n"
                "that converge later, runs long operations and probes the tools.\n"
                "See llm-opsd(8).\n");
}

int main(int argc, char **argv)
{
    struct server_opts o = {.config_path = LLMOPS_DEFAULT_CONFIG};
    int check = 0, background = 0;
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"listen", required_argument, NULL, 'l'},
        {"workers", required_argument, NULL, 'w'},
        {"pid-file", required_argument, NULL, 'p'},
        {"foreground", no_argument, NULL, 'f'},
        {"check-config", no_argument, NULL, 'k'},
        {"jobs", no_argument, NULL, 'j'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {"background", no_argument, NULL, 'j'},
        {NULL, 0, NULL, 0},
    };
    log_set_program("llm-opsd");
    const char *env_conf = getenv("LLMOPS_CONFIG");
    if (env_conf && *env_conf)
        o.config_path = env_conf;
    int c;
    while ((c = getopt_long(argc, argv, "c:l:w:p:fkjVh", opts, NULL)) != -1) {
        const char *why;
        switch (c) {
        case 'c':
            o.config_path = optarg;
            break;
        case 'l':
            o.listen = optarg;
            break;
        case 'w':
            if (util_parse_int(optarg, 1, 256, &o.workers, &why) < 0) {
                fprintf(stderr, "llm-opsd: --workers '%s' %s (1-256)\n", optarg, why);
                return 2;
            }
            break;
        case 'p':
            o.pid_file = optarg;
            break;
        case 'f':
            o.foreground = 1;
            break;
        case 'k':
            check = 1;
            break;
        case 'j':
            background = 1; /* --background, or --jobs, its earlier name */
            break;
        case 'V':
            printf("llm-opsd %s\n", LLMOPS_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "llm-opsd: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (check)
        return check_config(o.config_path);
    if (background) {
        log_set_program("llm-opsd-background");
        return background_run(o.config_path);
    }
    /* An alert naming a deployment (llmops_env + llmops_deployment) rolls its canary back.
     * Registered before the workers exist: a standalone worker inherits the table from the
     * master, a spawned one runs this main itself. */
    alerts_register_target(ALERTS_DEPLOYMENT_LABEL, "deployment_rollback",
                           serving_rollback_by_name);
    return server_run(&o);
}
