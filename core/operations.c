/* The operations lane (operations.h). */
#include "operations.h"

#include "build-config.h"
#include "llmops-operations.h"
#include "engine.h"
#include "log.h"
#include "util.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* now() + the lease, OPERATIONS_LEASE_SECONDS, in SQL */
#define LEASE "interval '5 seconds'"

long long operations_start(struct db *db, const char *env, const char *category, const char *op,
                           const char *instance, const char *object_id, json_t *input,
                           const char *who, struct db_error *err)
{
    char *in = json_dumps(input ? input : json_object(), JSON_COMPACT);
    const char *p[] = {env, category, op, instance, object_id, in, who};
    PGresult *res = db_exec(db,
                            "INSERT INTO operations (environment, category, operation, instance,"
                            " object_id, input, created_by) VALUES ($1, $2, $3, $4, $5,"
                            " $6::jsonb, $7) RETURNING id",
                            7, p, err);
    free(in);
    if (!res)
        return -1;
    int bad = 0;
    long long id = db_int(res, 0, 0, &bad);
    PQclear(res);
    return bad ? -1 : id;
}

/* The running operation: one at a time per lane process. */
struct run {
    struct llmops_op_ctx ctx;
    struct app *app;
    const struct llmops_host *host;
    char id[24];
    char owner[96];
    volatile sig_atomic_t *stop;
    int64_t last_write_ms, last_read_ms;
    int cancel_seen, lost;
};

static struct run *current;

const struct llmops_op_ctx *operations_host_ctx(const struct llmops_host *h)
{
    return current && current->host == h ? &current->ctx : NULL;
}

static PGresult *exec_lease(struct run *r, const char *sql, int n, const char *const *extra)
{
    const char *p[4] = {r->id, r->owner, NULL, NULL};
    for (int i = 0; i < n && i < 2; i++)
        p[2 + i] = extra[i];
    struct db_error err;
    PGresult *res = db_exec(&r->app->db, sql, 2 + n, p, &err);
    if (!res) {
        log_warning("operation %s: %s", r->id, err.message);
        return NULL;
    }
    return res;
}

/* Renews the lease, and reads the cancel flag; 0, or -1 when the operation is no longer
 * ours (its lease was taken over, or it was deleted). */
static int renew(struct run *r)
{
    PGresult *res = exec_lease(r,
                               "UPDATE operations SET lease_until = now() + " LEASE
                               " WHERE id = $1::bigint AND lease_owner = $2"
                               " AND state = 'running' RETURNING cancel_requested",
                               0, NULL);
    if (!res)
        return 0; /* the database is away: keep going, the lease says who owns it */
    int n = PQntuples(res);
    if (n == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0)
        r->cancel_seen = 1;
    PQclear(res);
    r->last_read_ms = util_now_ms();
    if (n != 1)
        r->lost = 1;
    return n == 1 ? 0 : -1;
}

static int ctx_progress(const struct llmops_op_ctx *ctx, int64_t done, int64_t total,
                        const char *unit)
{
    struct run *r = ctx->core_private;
    if (r->lost)
        return -1;
    int64_t now = util_now_ms();
    if (now - r->last_write_ms < 50 && !(total >= 0 && done >= total))
        return 0;
    r->last_write_ms = now;
    char d[24], t[24], u[LLMOPS_OP_UNIT_MAX + 1];
    snprintf(d, sizeof d, "%lld", (long long)done);
    snprintf(t, sizeof t, "%lld", (long long)total);
    snprintf(u, sizeof u, "%s", unit ? unit : "");
    const char *p[] = {r->id, r->owner, d, total >= 0 ? t : NULL, u[0] ? u : NULL};
    struct db_error err;
    PGresult *res = db_exec(
        &r->app->db,
        "UPDATE operations SET progress_done = $3::bigint, progress_total = $4::bigint,"
        " progress_unit = $5, updated_at = now(),"
        " lease_until = now() + " LEASE " WHERE id = $1::bigint AND lease_owner = $2 AND state ="
        " 'running' RETURNING cancel_requested",
        5, p, &err);
    if (!res) {
        log_warning("operation %s: cannot record progress: %s", r->id, err.message);
        return 0;
    }
    int n = PQntuples(res);
    if (n == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0)
        r->cancel_seen = 1;
    PQclear(res);
    r->last_read_ms = now;
    if (n != 1)
        r->lost = 1;
    return n == 1 ? 0 : -1;
}

static int ctx_checkpoint_save(const struct llmops_op_ctx *ctx, const json_t *cp)
{
    struct run *r = ctx->core_private;
    if (r->lost || !cp)
        return -1;
    char *text = json_dumps(cp, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!text || strlen(text) > LLMOPS_OP_CHECKPOINT_MAX) {
        log_warning("operation %s: checkpoint refused (%s)", r->id,
                    text ? "over 64 KiB" : "not JSON");
        free(text);
        return -1;
    }
    const char *extra[] = {text};
    PGresult *res = exec_lease(r,
                               "UPDATE operations SET checkpoint = $3::jsonb, updated_at = now()"
                               " WHERE id = $1::bigint AND lease_owner = $2 AND state = 'running'",
                               1, extra);
    free(text);
    if (!res)
        return -1;
    int ok = strcmp(PQcmdTuples(res), "1") == 0;
    PQclear(res);
    if (!ok)
        r->lost = 1;
    return ok ? 0 : -1;
}

static json_t *ctx_checkpoint_load(const struct llmops_op_ctx *ctx)
{
    struct run *r = ctx->core_private;
    PGresult *res = exec_lease(r,
                               "SELECT checkpoint::text FROM operations WHERE id = $1::bigint AND"
                               " lease_owner = $2 AND checkpoint IS NOT NULL",
                               0, NULL);
    if (!res)
        return NULL;
    json_t *j =
        PQntuples(res) == 1 ? json_loads(PQgetvalue(res, 0, 0), JSON_DECODE_ANY, NULL) : NULL;
    PQclear(res);
    return j;
}

static int ctx_cancelled(const struct llmops_op_ctx *ctx)
{
    struct run *r = ctx->core_private;
    if (*r->stop || r->cancel_seen || r->lost)
        return 1;
    if (util_now_ms() - r->last_read_ms >= 100)
        renew(r);
    return r->cancel_seen || r->lost;
}

static void finish(struct run *r, const char *state, json_t *result, const char *error)
{
    char *res_text = result ? json_dumps(result, JSON_COMPACT) : NULL;
    const char *p[] = {r->id, r->owner, state, res_text, error};
    struct db_error err;
    PGresult *res = db_exec(
        &r->app->db,
        "UPDATE operations SET state = $3, result = $4::jsonb, error = $5, updated_at = now(),"
        " lease_owner = NULL, lease_until = NULL,"
        " finished_at = CASE WHEN $3 IN ('succeeded', 'failed', 'cancelled') THEN now() END"
        " WHERE id = $1::bigint AND lease_owner = $2",
        5, p, &err);
    free(res_text);
    if (!res)
        log_warning("operation %s: cannot record it %s: %s", r->id, state, err.message);
    else
        PQclear(res);
}

/* One operation: 1 ran, 0 none to claim, -1 database error. */
static int run_one(struct app *app, volatile sig_atomic_t *stop, const char *owner)
{
    const char *p[] = {owner};
    struct db_error err;
    /* Pending, or running with its lease run out (its process died). */
    PGresult *res = db_exec(
        &app->db,
        "UPDATE operations SET state = 'running', attempts = attempts + 1, lease_owner = $1,"
        " lease_until = now() + " LEASE ","
        " started_at = coalesce(started_at, now()), updated_at ="
        " now() WHERE id = (SELECT id FROM operations"
        " WHERE state = 'pending' OR (state = 'running' AND"
        " lease_until < now()) ORDER BY id LIMIT 1 FOR UPDATE"
        " SKIP LOCKED)"
        " RETURNING id, category, operation, instance,"
        " input::text, attempts, cancel_requested",
        1, p, &err);
    if (!res)
        return -1;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return 0;
    }
    struct run r;
    memset(&r, 0, sizeof r);
    r.app = app;
    r.stop = stop;
    snprintf(r.owner, sizeof r.owner, "%s", owner);
    snprintf(r.id, sizeof r.id, "%s", PQgetvalue(res, 0, 0));
    char op[64], inst[64];
    snprintf(op, sizeof op, "%s", PQgetvalue(res, 0, 2));
    snprintf(inst, sizeof inst, "%s", PQgetvalue(res, 0, 3));
    json_t *input = json_loads(PQgetvalue(res, 0, 4), 0, NULL);
    int bad = 0;
    long long attempts = db_int(res, 0, 5, &bad);
    r.cancel_seen = strcmp(PQgetvalue(res, 0, 6), "t") == 0;
    PQclear(res);

    struct instance *in = plugins_find(&app->plugins, inst);
    if (r.cancel_seen) {
        finish(&r, "cancelled", NULL, "cancelled before it ran");
    } else if (!input || !json_is_object(input)) {
        finish(&r, "failed", NULL, "the operation's input is not a JSON object");
    } else if (!in || !in->initialised) {
        char m[200];
        snprintf(m, sizeof m, "instance %s is not running in the background process", inst);
        finish(&r, attempts >= OPERATIONS_MAX_ATTEMPTS ? "failed" : "pending", NULL, m);
        if (attempts < OPERATIONS_MAX_ATTEMPTS)
            sleep(1); /* an instance that did not start: no busy loop over it */
    } else {
        r.host = &in->host;
        r.ctx.size = sizeof r.ctx;
        r.ctx.operation_id = r.id;
        r.ctx.progress = ctx_progress;
        r.ctx.checkpoint_save = ctx_checkpoint_save;
        r.ctx.checkpoint_load = ctx_checkpoint_load;
        r.ctx.cancelled = ctx_cancelled;
        r.ctx.core_private = &r;
        r.last_read_ms = util_now_ms();
        log_info("operation %s: %s on %s started (attempt %lld)", r.id, op, inst, attempts);
        current = &r;
        json_t *out = NULL;
        struct llmops_error e;
        int rc = engine_call_any(app, in, op, input, &out, &e);
        current = NULL;
        if (r.lost) {
            log_warning("operation %s: its lease was taken over; the result is dropped", r.id);
        } else if (*stop && rc < 0) {
            finish(&r, "pending", NULL, NULL);
            log_info("operation %s: stopped by SIGTERM; it resumes from its checkpoint", r.id);
        } else if (r.cancel_seen || (rc < 0 && ctx_cancelled(&r.ctx) && !*stop)) {
            finish(&r, "cancelled", NULL, "cancelled");
            log_info("operation %s: cancelled", r.id);
        } else if (rc == 0) {
            finish(&r, "succeeded", out, NULL);
            log_info("operation %s: succeeded", r.id);
        } else {
            int retry =
                (e.code == LLMOPS_ERR_UNAVAILABLE || (e.code == LLMOPS_ERR_TOOL && e.retryable)) &&
                attempts < OPERATIONS_MAX_ATTEMPTS;
            char m[700];
            snprintf(m, sizeof m, "%s (instance %s)", e.message, inst);
            finish(&r, retry ? "pending" : "failed", NULL, m);
            log_info("operation %s: %s: %s", r.id, retry ? "will be retried" : "failed", m);
        }
        json_decref(out);
    }
    json_decref(input);
    return 1;
}

void operations_lane_run(struct app *app, volatile sig_atomic_t *stop)
{
    char owner[96], host[64] = "";
    gethostname(host, sizeof host - 1);
    snprintf(owner, sizeof owner, "%s:%ld", host, (long)getpid());
    int warned = 0;
    while (!*stop) {
        struct db_error err;
        if (db_ensure(&app->db, &err) != DB_OK) {
            if (!warned++)
                log_warning("operations: the database is unavailable: %s", db_error_detail(&err));
            usleep(500 * 1000);
            continue;
        }
        int v = db_schema_version(&app->db, LLMOPS_SCHEMA_VERSION);
        if (v != LLMOPS_SCHEMA_VERSION) {
            usleep(500 * 1000); /* the main process says so in the log */
            continue;
        }
        warned = 0;
        int n = run_one(app, stop, owner);
        if (n > 0)
            continue;
        usleep(n < 0 ? 500 * 1000 : 200 * 1000);
    }
}
