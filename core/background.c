/* The background process (llm-opsd --background; --jobs is its old name, still accepted):
 * delivers the outbox, probes the tools, prunes what is kept for inspection. */
#include "background.h"

#include "build-config.h"
#include "dispatch.h"
#include "log.h"
#include "metrics.h"
#include "operations.h"
#include "outbox.h"
#include "serving.h"
#include "sync_serving.h"
#include "util.h"
#include "watch.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The categories with work in the background process: the outbox operations they register
 * and what they keep for a while and prune with the outbox. The only place that names
 * them. */
static const struct {
    int (*register_outbox)(void);
    void (*prune)(struct app *app);
} categories[] = {
    {tracking_outbox_register, tracking_prune},
    {serving_outbox_register, NULL},
    {sync_serving_outbox_register, NULL}, /* the old object of a moved deployment */
};

/* One bounded pass over one table: `sql` deletes at most $2 rows older than $1 (hours or
 * days, as the statement says) that nothing still needs, the rows chosen with FOR UPDATE
 * SKIP LOCKED, so two background processes pruning at once delete disjoint rows, wait for
 * none and count each row once. Logs what it deleted; returns the count, or -1. */
static long long prune_table(struct app *app, const char *what, const char *sql, long long age,
                             const char *unit)
{
    char ages[24], batch[24];
    snprintf(ages, sizeof ages, "%lld", age);
    snprintf(batch, sizeof batch, "%lld", app->conf->bg_prune_batch);
    const char *p[] = {ages, batch};
    struct db_error err;
    PGresult *r = db_exec(&app->db, sql, 2, p, &err);
    if (!r) {
        log_warning("background: cannot prune %s: %s", what, err.message);
        return -1;
    }
    long long n = 0;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        util_parse_int(PQgetvalue(r, 0, 0), 0, INT64_MAX, &n, NULL);
    else
        util_parse_int(PQcmdTuples(r), 0, INT64_MAX, &n, NULL);
    PQclear(r);
    if (n > 0)
        log_info("background: pruned %lld %s older than %s %s", n, what, ages, unit);
    return n;
}

/* What the background process keeps for a while ([background] keep_*), pruned by
 * prune_batch rows per table and pass: a first pass over a big table is many short
 * statements, one per prune_interval_seconds, not one long transaction. */
static int prune_retained(struct app *app)
{
    const struct llmops_conf *c = app->conf;
    /* Finished watches: the open one of an object (state watching) is never touched. */
    if (prune_table(app, "finished watches",
                    "DELETE FROM watches WHERE id IN (SELECT id FROM watches WHERE state <>"
                    " 'watching' AND done_at < now() - $1::bigint * interval '1 hour'"
                    " ORDER BY id LIMIT $2::bigint FOR UPDATE SKIP LOCKED)",
                    c->bg_keep_watches_hours, "h") < 0)
        return -1; /* the database is down, most likely: the next pass */
    /* Their events, as old; an object being watched keeps all of its events. */
    if (prune_table(app, "object events",
                    "DELETE FROM object_events WHERE id IN (SELECT e.id FROM object_events e"
                    " WHERE e.created_at < now() - $1::bigint * interval '1 hour' AND NOT EXISTS"
                    " (SELECT 1 FROM watches w WHERE w.object_id = e.object_id AND w.state ="
                    " 'watching') ORDER BY e.id LIMIT $2::bigint FOR UPDATE OF e SKIP LOCKED)",
                    c->bg_keep_watches_hours, "h") < 0)
        return -1;
    /* Finished operations: what a client polls (GET /operations/{id}); pending and running
     * ones are never touched. */
    if (prune_table(app, "finished operations",
                    "DELETE FROM operations WHERE id IN (SELECT id FROM operations WHERE state IN"
                    " ('succeeded', 'failed', 'cancelled') AND finished_at < now() - $1::bigint *"
                    " interval '1 hour' ORDER BY id LIMIT $2::bigint FOR UPDATE SKIP LOCKED)",
                    c->bg_keep_operations_hours, "h") < 0)
        return -1;
    /* Alerts Alertmanager has not sent again for that long: a repeat of a firing alert
     * bumps last_received_at, so the row that stops it acting twice stays. */
    if (prune_table(app, "alert events",
                    "DELETE FROM alert_events WHERE id IN (SELECT id FROM alert_events WHERE"
                    " last_received_at < now() - $1::bigint * interval '1 day'"
                    " ORDER BY last_received_at, id LIMIT $2::bigint FOR UPDATE SKIP LOCKED)",
                    c->bg_keep_alert_events_days, "days") < 0)
        return -1;
    /* Deleted deployments are kept, with their audit trail, unless a limit is set: then a
     * deployment deleted that long ago that no outbox row names any more (its delivered rows
     * are pruned above) goes with its audit rows and its object (the object's watches and
     * events with it), in one statement. */
    if (c->bg_keep_deleted_deployments_days > 0 &&
        prune_table(app, "deleted deployments (with their audit rows)",
                    "WITH d AS (SELECT id FROM deployments WHERE state = 'deleted' AND"
                    " deleted_at < now() - $1::bigint * interval '1 day' AND NOT EXISTS"
                    " (SELECT 1 FROM outbox b WHERE b.object_id = deployments.id) ORDER BY id"
                    " LIMIT $2::bigint FOR UPDATE SKIP LOCKED),"
                    " a AS (DELETE FROM deployment_audit WHERE deployment_id IN (SELECT id FROM"
                    " d)), x AS (DELETE FROM deployments WHERE id IN (SELECT id FROM d)"
                    " RETURNING id),"
                    " o AS (DELETE FROM objects WHERE id IN (SELECT id FROM x))"
                    " SELECT count(*) FROM x",
                    c->bg_keep_deleted_deployments_days, "days") < 0)
        return -1;
    return 0;
}

/* Delivered rows are kept [outbox] keep_done_hours for inspection, then deleted; with them
 * what [background] keeps (at most once per prune_interval_seconds, a bounded number at a
 * time). */
static void prune(struct app *app)
{
    static int64_t last;
    int64_t now = util_now_ms();
    if (last && now - last < app->conf->bg_prune_interval_seconds * 1000)
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
    if (prune_retained(app) < 0)
        return;
    for (size_t k = 0; k < UTIL_ARRAY_LEN(categories); k++)
        if (categories[k].prune)
            categories[k].prune(app);
}

static volatile sig_atomic_t background_stop;

static void on_stop(int sig)
{
    (void)sig;
    background_stop = 1;
}

/* The operations lane: a child process of its own with its own connection and plugin
 * instances, so a multi-minute operation never holds up a delivery, a watch or a probe. It
 * dies with the background process (PR_SET_PDEATHSIG), so a SIGKILLed process leaves no
 * orphan holding an operation: the operation's lease runs out and the next process resumes
 * it from its checkpoint. Returns the child's pid, or -1. */
static pid_t lane_spawn(struct llmops_conf *conf)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0) {
        if (pid < 0)
            log_error("background: cannot start the operations lane: %s", strerror(errno));
        return pid;
    }
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(0);
    struct app *app = calloc(1, sizeof *app);
    if (!app)
        _exit(1);
    app_init(app, conf);
    log_info("operations lane started (pid %ld)", (long)getpid());
    operations_lane_run(app, &background_stop);
    log_info("operations lane stopping");
    app_fini(app);
    free(app);
    _exit(0);
}

/* SIGTERM to the lane; SIGKILL if it has not stopped within 900 ms (the op in hand sees
 * cancelled() at its next report), so the whole process stops within a second. */
static void lane_stop(pid_t lane)
{
    if (lane <= 0)
        return;
    kill(lane, SIGTERM);
    for (int i = 0; i < 90; i++) {
        if (waitpid(lane, NULL, WNOHANG) == lane)
            return;
        usleep(10 * 1000);
    }
    log_warning("background: the operations lane did not stop within 0.9 s; killing it");
    kill(lane, SIGKILL);
    waitpid(lane, NULL, 0);
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
    for (size_t i = 0; i < UTIL_ARRAY_LEN(categories); i++)
        if (categories[i].register_outbox && categories[i].register_outbox() < 0)
            log_error("background: a category's outbox operations could not be registered");
    pid_t lane = lane_spawn(&conf);
    int64_t lane_started = util_now_ms();
    app_init(app, &conf);
    app->db.listen_channel2 = OUTBOX_CHANNEL;
    log_info(
        "background process started: delivering the outbox (max_attempts %lld, backoff %lld ms "
        "to %lld ms)",
        conf.outbox_max_attempts, conf.outbox_base_delay_ms, conf.outbox_max_delay_ms);
    int warned = 0;
    int64_t watch_idle_until = 0;
    while (!background_stop) {
        if (lane > 0 && waitpid(lane, NULL, WNOHANG) == lane)
            lane = -1;
        if (lane < 0 && util_now_ms() - lane_started >= 1000) { /* a crashed lane: again */
            log_warning("background: the operations lane exited; starting it again");
            lane = lane_spawn(&conf);
            lane_started = util_now_ms();
        }
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
        int w = 0;
        if (util_now_ms() >= watch_idle_until) { /* none due: look again in 100 ms */
            w = watch_run_once(app, 1);
            if (w == 0)
                watch_idle_until = util_now_ms() + 100;
        }
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
    lane_stop(lane);
    app_fini(app);
    free(app);
    conf_free(&conf);
    return 0;
}
