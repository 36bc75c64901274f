/* What flag evaluation and plugin dispatch cost on the hot path, measured in-process so the
 * FastCGI hop and the web server do not drown the difference. In one run, alternating:
 *   core    GET /llm-ops/v1/gpu-types?env=dev           (cached list, a core route)
 *   plugin  GET /llm-ops/v1/integrations/echo/health    (a trivial plugin: lookup, breaker,
 *                                                        health(), JSON of its answer)
 *   flags   flags_pick() for a candidate rollout          (the evaluation alone)
 *   breaker dispatch_outcome() bookkeeping                (the breaker alone)
 *   op      track_call(get_run) on the echo module        (a category operation through the
 *                                                        core's call path: lookup, input
 *                                                        checks, capabilities, metrics,
 *                                                        breaker; the module answers at once)
 * Prints ns per operation and the plugin/core ratio. Needs PostgreSQL (a private cluster)
 * only for the tokens and the GPU list, which are then cached. Never fails on figures. */
#include "app.h"
#include "dispatch.h"
#include "flags.h"
#include "tracking.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* CPU time of the process (user + system), ns. */
static double cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static char auth[160];

static int get(struct app *app, const char *uri)
{
    struct http_input in = {.method = "GET", .uri = uri, .authorization = auth};
    struct req r;
    app_handle(app, &in, &r);
    int st = r.resp.status;
    http_req_free(&r);
    return st;
}

static void fail(const char *message)
{
    fprintf(stderr, "bench-dispatch: %s\n", message);
    exit(1);
}

int main(int argc, char **argv)
{
    tu_on_failure(fail);
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 200000;
    struct tu_pg pg;
    tu_pg_start(&pg, "bench");
    tu_pg_createdb(&pg, "llmops");
    char conf_path[128], conninfo[256];
    snprintf(conf_path, sizeof conf_path, "%s/llm-ops.conf", pg.dir);
    tu_pg_conninfo(&pg, "llmops", conninfo, sizeof conninfo);
    FILE *f = fopen(conf_path, "w");
    fprintf(f,
            "[server]\nplugin_dir = %s\naccess_log = off\n[database]\nconninfo = %s\n"
            "migrations_dir = %s/migrations\n[plugin \"echo\"]\nmodule = echo\n",
            TEST_PLUGIN_DIR, conninfo, LLMOPS_SOURCE_DIR);
    fclose(f);
    int st;
    tu_sh("%s/llm-opsctl --config %s migrate >/dev/null && %s/llm-opsctl --config %s seed "
          "--file %s/etc/gpu-types.json >/dev/null",
          LLMOPS_BIN_DIR, conf_path, LLMOPS_BIN_DIR, conf_path, LLMOPS_SOURCE_DIR);
    char *tok = tu_capture(&st,
                           "%s/llm-opsctl --config %s token create --name b --role reader "
                           "2>/dev/null",
                           LLMOPS_BIN_DIR, conf_path);
    tok[strcspn(tok, "\n")] = '\0';
    snprintf(auth, sizeof auth, "Bearer %s", tok);

    struct llmops_conf conf;
    struct conf_errors e = {0};
    if (conf_load(conf_path, &conf, &e) > 0) {
        fprintf(stderr, "%s\n", e.msgs[0]);
        return 1;
    }
    log_set_level(LOG_LVL_WARNING);
    struct app app;
    app_init(&app, &conf);
    if (get(&app, "/llm-ops/v1/gpu-types?env=dev") != 200 ||
        get(&app, "/llm-ops/v1/integrations/echo/health") != 200) {
        fprintf(stderr, "bench: the routes did not answer 200\n");
        return 1;
    }
    double core = 0, plugin = 0, core_cpu = 0, plugin_cpu = 0;
    for (int round = 0; round < 4; round++) {
        double t0 = now_ns(), c0 = cpu_ns();
        for (long i = 0; i < n / 4; i++)
            get(&app, "/llm-ops/v1/gpu-types?env=dev");
        double t1 = now_ns(), c1 = cpu_ns();
        for (long i = 0; i < n / 4; i++)
            get(&app, "/llm-ops/v1/integrations/echo/health");
        double t2 = now_ns(), c2 = cpu_ns();
        core += t1 - t0;
        plugin += t2 - t1;
        core_cpu += c1 - c0;
        plugin_cpu += c2 - c1;
    }
    struct flag fl = {"echo", "echo", "echo", 10, 0, "", ""};
    double t0 = now_ns(), c0 = cpu_ns();
    volatile int sink = 0;
    for (long i = 0; i < n; i++) {
        char subject[32];
        snprintf(subject, sizeof subject, "project-%ld", i & 1023);
        enum flag_route why;
        sink += flags_pick(&fl, "prod", 1, subject, &why) != NULL;
    }
    double t1 = now_ns(), c1 = cpu_ns();
    struct instance *in = plugins_find(&app.plugins, "echo");
    for (long i = 0; i < n; i++)
        dispatch_outcome(&app, in, NULL);
    double t2 = now_ns(), c2 = cpu_ns();
    json_t *input = json_pack("{s:s}", "external_id", "0123456789abcdef0123456789abcdef");
    for (long i = 0; i < n; i++) {
        json_t *out;
        struct llmops_error err;
        sink += track_call(&app, in, "get_run", input, &out, &err);
        json_decref(out);
    }
    json_decref(input);
    double t3 = now_ns(), c3 = cpu_ns();
    (void)sink;
    printf("dispatch benchmark, %ld requests per route (in-process, no FastCGI hop)\n", n);
    printf("  core route   (cached GPU list)       %8.0f ns/request\n", core / (double)n);
    printf("  plugin route (trivial plugin health) %8.0f ns/request\n", plugin / (double)n);
    printf("  plugin / core                        %8.2f\n", plugin / core);
    printf("  flag evaluation (candidate rollout)  %8.0f ns\n", (t1 - t0) / (double)n);
    printf("  breaker bookkeeping per call         %8.0f ns\n", (t2 - t1) / (double)n);
    printf("  category op call (track_call)        %8.0f ns\n", (t3 - t2) / (double)n);
    printf("  CPU per call (user + system): core %.0f ns, plugin %.0f ns, flags %.0f ns, "
           "breaker %.0f ns, op %.0f ns\n",
           core_cpu / (double)n, plugin_cpu / (double)n, (c1 - c0) / (double)n,
           (c2 - c1) / (double)n, (c3 - c2) / (double)n);
    printf("  (the FastCGI hop alone is ~50,000 ns per request at 19,000 req/s on 2 cores)\n");
    app_fini(&app);
    conf_free(&conf);
    conf_errors_free(&e);
    tu_pg_stop(&pg);
    return 0;
}
