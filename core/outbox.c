/* The outbox: its rows and their states (the backoff of a failed row, an admin's discard).
 * Delivery is in deliver.c, the /llm-ops/v1/outbox routes in outbox_http.c, the background
 * process that runs the deliverer in background.c. */
#include "outbox.h"

#include "log.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int outbox_exec(struct app *app, const char *sql, int n, const char *const *p, struct db_error *e)
{
    PGresult *r = db_exec(&app->db, sql, n, p, e);
    if (!r)
        return -1;
    PQclear(r);
    return 0;
}

void outbox_rollback(struct app *app)
{
    struct db_error e;
    outbox_exec(app, "ROLLBACK", 0, NULL, &e);
}

int outbox_claim(struct app *app, const char *sql, PGresult **res)
{
    struct db_error e;
    *res = NULL;
    if (outbox_exec(app, "BEGIN", 0, NULL, &e) < 0)
        return -1;
    PGresult *r = db_exec(&app->db, sql, 0, NULL, &e);
    if (!r) {
        outbox_rollback(app);
        return -1;
    }
    if (PQntuples(r) == 0) {
        PQclear(r);
        outbox_rollback(app);
        return 0;
    }
    *res = r;
    return 1;
}

int outbox_finish(struct app *app, int ok)
{
    struct db_error e;
    if (!ok || outbox_exec(app, "COMMIT", 0, NULL, &e) < 0) {
        outbox_rollback(app);
        return -1;
    }
    return 1;
}

int outbox_each(struct app *app, int max, int (*one)(struct app *app))
{
    int n = 0;
    while (n < max) {
        int rc = one(app);
        if (rc < 0)
            return -1;
        if (rc == 0)
            break;
        n++;
    }
    return n;
}

void outbox_set_err(struct llmops_error *err, enum llmops_status code, int retryable,
                    const char *msg)
{
    memset(err, 0, sizeof *err);
    err->size = sizeof *err;
    err->code = code;
    err->retryable = retryable;
    snprintf(err->message, sizeof err->message, "%s", msg);
}

long long outbox_backoff_ms(const struct llmops_conf *conf, int attempts)
{
    return outbox_jitter_ms(conf->outbox_base_delay_ms, conf->outbox_max_delay_ms, attempts);
}

long long outbox_jitter_ms(long long base_ms, long long max_ms, int doublings)
{
    long long d = base_ms;
    for (int i = 0; i < doublings && d < max_ms; i++)
        d *= 2;
    if (d > max_ms)
        d = max_ms;
    char hex[9];
    unsigned long x = 0;
    if (util_random_hex(hex, 4) == 0)
        x = strtoul(hex, NULL, 16);
    /* Full jitter over the upper half: several processes retrying the same tool spread out,
     * and no retry comes sooner than half the step. */
    return d / 2 + (long long)(x % (unsigned long)(d / 2 + 1));
}

enum outbox_discard_outcome outbox_discard_row(struct db *db, long long id, const char *who,
                                               const char *reason, struct outbox_discarded *out,
                                               struct db_error *err)
{
    memset(out, 0, sizeof *out);
    char ids[24];
    snprintf(ids, sizeof ids, "%lld", id);
    const char *params[] = {ids, who, reason};
    /* One statement decides: only a dead row that does not bind its object changes. */
    PGresult *res = db_exec(
        db,
        "WITH d AS (UPDATE outbox SET state = 'discarded', discarded_by = $2,"
        "  discarded_at = now(), discard_reason = $3, updated_at = now()"
        "  WHERE id = $1::bigint AND state = 'dead' AND NOT binds_object"
        "  RETURNING id, object_id, operation)"
        " SELECT d.id, d.object_id, d.operation,"
        "  (SELECT count(*) FROM outbox p WHERE p.object_id = d.object_id AND p.id > d.id"
        "   AND p.state = 'pending' AND NOT EXISTS (SELECT 1 FROM outbox x"
        "   WHERE x.object_id = d.object_id AND x.id > d.id AND x.id < p.id AND x.state = 'dead'))"
        " FROM d",
        3, params, err);
    if (!res)
        return OUTBOX_DISCARD_DB_ERROR;
    if (PQntuples(res) == 1) {
        int bad = 0;
        out->released = db_int(res, 0, 3, &bad);
        snprintf(out->object_id, sizeof out->object_id, "%s", PQgetvalue(res, 0, 1));
        snprintf(out->operation, sizeof out->operation, "%s", PQgetvalue(res, 0, 2));
        snprintf(out->state, sizeof out->state, "discarded");
        PQclear(res);
        log_info("outbox %lld: %s of %s discarded by %s: %s", id, out->operation, out->object_id,
                 who, reason);
        return OUTBOX_DISCARDED;
    }
    PQclear(res);
    res = db_exec(db, "SELECT state, operation, object_id FROM outbox WHERE id = $1::bigint", 1,
                  params, err);
    if (!res)
        return OUTBOX_DISCARD_DB_ERROR;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return OUTBOX_DISCARD_NOT_FOUND;
    }
    snprintf(out->state, sizeof out->state, "%s", PQgetvalue(res, 0, 0));
    snprintf(out->operation, sizeof out->operation, "%s", PQgetvalue(res, 0, 1));
    snprintf(out->object_id, sizeof out->object_id, "%s", PQgetvalue(res, 0, 2));
    PQclear(res);
    return strcmp(out->state, "dead") != 0 ? OUTBOX_DISCARD_NOT_DEAD : OUTBOX_DISCARD_BINDS_OBJECT;
}

int outbox_discard_reason_ok(const char *reason)
{
    return reason && *reason && util_utf8_len(reason) <= OUTBOX_DISCARD_REASON_MAX;
}
