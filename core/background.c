/* The background process (llm-opsd --background; --jobs is its old name, still accepted):
 * delivers the outbox, probes the tools, prunes what is kept for inspection. */
#include "background.h"

#include "build-config.h"
#include "dispatch.h"
#include "log.h"
#include "metrics.h"
#include "outbox.h"
#include "tracking.h"
#include "util.h"
#include "watch.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Delivered rows are kept [outbox] keep_done_hours for inspection, then deleted (at most
 * once a minute, a bounded number at a time). */
static void prune(struct app *app)
{
    static int64_t last;
    int64_t now = util_now_ms();
    if (last && now - last < 60000)
        return;
    last = now;
    char hours[24];
    snprintf(hours, sizeof hours, "%lld", app->conf->outbox_keep_done_hours);
    const char *p[] = {hours};
    struct db_error err;
    PGresult *r = db_exec(&app->db,
                          "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE state ="
                          " 'done' AND done_at < now() - $1::bigint * interval '1 hour'"
                          " ORDER BY id LIMIT 10000)",
                          1, p, &err);
    if (!r) {
        log_warning("background: cannot prune delivered outbox rows: %s", err.message);
        return;
    }
    long long n = 0;
    if (util_parse_int(PQcmdTuples(r), 0, INT64_MAX, &n, NULL) == 0 && n > 0)
        log_info("background: pruned %lld delivered outbox rows older than %s h", n, hours);
    PQclear(r);
    /* Log bodies not sent again for TRACK_LOG_BODY_HOURS: a resend now is new points. */
    snprintf(hours, sizeof hours, "%d", TRACK_LOG_BODY_HOURS);
    r = db_exec(&app->db,
                "DELETE FROM log_bodies WHERE (object_id, body_sha256) IN (SELECT object_id,"
                " body_sha256 FROM log_bodies WHERE seen_at < now() - $1::bigint * interval"
                " '1 hour' ORDER BY seen_at LIMIT 10000)",
                1, p, &err);
    if (!r) {
        log_warning("background: cannot prune remembered log bodies: %s", err.message);
        return;
    }
    PQclear(r);
    /* Experiment reservations a killed create left and no retry came for within an hour: a
     * later create of the name finds the experiment by its key (tracking.h). */
    r = db_exec(&app->db,
                "DELETE FROM objects o WHERE o.kind = 'exp' AND o.external_id IS NULL"
                " AND o.create_key IS NOT NULL AND o.created_at < now() - interval '1 hour'"
                " AND NOT EXISTS (SELECT 1 FROM training_jobs j WHERE j.experiment_id = o.id)",
                0, NULL, &err);
    if (!r) {
        log_warning("background: cannot prune abandoned experiment reservations: %s", err.message);
        return;
    }
    PQclear(r);
}

/* The categories that have outbox operations: the only place that names them. */
static int (*const outbox_registrars[])(void) = {tracking_outbox_register};

static volatile sig_atomic_t background_stop;

static void on_stop(int sig)
{
    (void)sig;
    background_stop = 1;
}

int background_run(const char *config_path)
{
    struct llmops_conf conf;
    struct conf_errors errs = {0};
    if (conf_load(config_path, &conf, &errs) > 0) {
        for (int i = 0; i < errs.n; i++)
            log_error("%s", errs.msgs[i]);
        conf_errors_free(&errs);
        conf_free(&conf);
        return 2;
    }
    conf_errors_free(&errs);
    log_set_level(conf.log_level);
    log_set_json(conf.log_json);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);

    struct app *app = calloc(1, sizeof *app);
    if (!app) {
        conf_free(&conf);
        return 1;
    }
    if (!conf.metrics_enabled)
        metrics_disable();
    else
        metrics_open(conf.metrics_shm_file, 0);
    for (size_t i = 0; i < UTIL_ARRAY_LEN(outbox_registrars); i++)
        if (outbox_registrars[i]() < 0)
            log_error("background: a category's outbox operations could not be registered");
    app_init(app, &conf);
    app->db.listen_channel2 = OUTBOX_CHANNEL;
    log_info(
        "background process started: delivering the outbox (max_attempts %lld, backoff %lld ms "
        "to %lld ms)",
        conf.outbox_max_attempts, conf.outbox_base_delay_ms, conf.outbox_max_delay_ms);
    int warned = 0;
    while (!background_stop) {
        probes_run(app); /* tools are probed whether PostgreSQL is up or not */
        struct db_error err;
        if (db_ensure(&app->db, &err) != DB_OK) {
            if (!warned++)
                log_warning("background: the database is unavailable: %s", db_error_detail(&err));
            usleep(500 * 1000);
            continue;
        }
        int v = db_schema_version(&app->db, LLMOPS_SCHEMA_VERSION);
        if (v != LLMOPS_SCHEMA_VERSION) {
            if (!warned++)
                log_warning(
                    "background: the database schema is at version %d; this llm-opsd needs %d "
                    "(run llm-opsctl migrate)",
                    v, LLMOPS_SCHEMA_VERSION);
            usleep(500 * 1000);
            continue;
        }
        warned = 0;
        db_poll(&app->db);
        dispatch_tick(app);
        /* One row and one watch at a time, so SIGTERM waits for one tool call at most. A
         * watch is polled between outbox rows, so a busy outbox does not starve them. */
        int w = watch_run_once(app, 1);
        int n = outbox_run_once(app, 1);
        if (n > 0 || w > 0)
            continue;
        prune(app);
        if (n < 0) {
            usleep(200 * 1000);
            continue;
        }
        /* Nothing due: sleep until a new row is committed (NOTIFY) or a backoff may have
         * ended. */
        if (app->db.conn) {
            struct pollfd pfd = {.fd = PQsocket(app->db.conn), .events = POLLIN};
            if (poll(&pfd, 1, 250) < 0 && errno != EINTR)
                usleep(250 * 1000);
        }
    }
    log_info("background process stopping");
    app_fini(app);
    free(app);
    conf_free(&conf);
    return 0;
}
