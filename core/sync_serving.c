/* llm-opsctl sync serving: moves deployments from one serving instance to another (a custom
 * serving-k8s instance to kserve, the flags' reason for being), one at a time:
 *
 *   1. re-create it on the target with the stored spec and the GPU as resolved at its create,
 *      through the engine (serving_call), under the idempotency key
 *      "mv-" + SHA-256(id, target, moves audited so far): a re-run after a crash finds what
 *      the first made (find_by_idempotency_key) and makes no second object, and a later move
 *      back and forth gets keys of its own;
 *   2. wait (bounded) for it to be ready there; failed: it is deleted from the target again
 *      and the old one stays, owned; still progressing at the deadline: it stays in the
 *      target for a re-run to adopt, and the old one stays, owned;
 *   3. one transaction: the objects row (instance, external id) and the deployments row
 *      (instance, and the state, url and replicas the target answered) switch, the move is
 *      audited in deployment_audit, and an outbox row that removes the old object is queued
 *      (held back a minute for step 4's own try);
 *   4. the old object is deleted from the source; when that fails (or the command dies) the
 *      background process delivers the outbox row.
 *
 * The platform id, name, environment, spec and audit of a deployment stay; only its owner
 * changes. GPU capacity is counted per deployment row, so a move neither takes nor frees
 * any (the cluster runs both for the minutes of a move). */
#include "sync_serving.h"

#include "engine.h"
#include "log.h"
#include "outbox.h"
#include "serving.h"
#include "util.h"

#include "llmops-serving.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct move_ctx {
    struct app *app;
    struct instance *from, *to;
    const struct sync_serving_opts *o;
    struct sync_serving_counts *n;
    int tty;
};

/* One candidate, as read from the database. */
struct cand {
    char id[64], env[64], name[64], state[16], ext[256];
    long long moves;
    int canary, waiting; /* an open canary; outbox rows not delivered */
    json_t *spec, *gpu;
};

static void say(struct move_ctx *c, const struct cand *d, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(struct move_ctx *c, const struct cand *d, const char *fmt, ...)
{
    char line[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (c->tty)
        fprintf(stderr, "\r\033[K");
    fprintf(c->o->out, "%s/%s (%s): %s\n", d->env, d->name, d->id, line);
    fflush(c->o->out);
}

static void progress(struct move_ctx *c, const struct cand *d, const char *what, double secs)
{
    if (!c->tty)
        return;
    fprintf(stderr, "\r\033[Ksync: %s/%s: %s (%.0f s)", d->env, d->name, what, secs);
    fflush(stderr);
}

static void sleep_ms(long long ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0)
        ;
}

static int exec0(struct app *app, const char *sql, int n, const char *const *p,
                 struct db_error *err)
{
    PGresult *res = db_exec(&app->db, sql, n, p, err);
    if (!res)
        return -1;
    PQclear(res);
    return 0;
}

static void rollback(struct app *app)
{
    struct db_error e;
    PGresult *r = db_exec(&app->db, "ROLLBACK", 0, NULL, &e);
    if (r)
        PQclear(r);
}

/* What the stored spec needs of the target that its capabilities do not list (a feature, or
 * the autoscaling metric), in buf; NULL when it has all. The module would refuse it too
 * (UNSUPPORTED); asking first lets a dry run say so and a run make nothing for nothing. */
static const char *missing(struct instance *to, const struct cand *d, char *buf, size_t size)
{
    json_t *rep = json_object_get(d->spec, "replicas");
    json_int_t min = json_integer_value(json_object_get(rep, "min"));
    json_int_t max = json_integer_value(json_object_get(rep, "max"));
    json_t *as = json_object_get(d->spec, "autoscaling");
    const char *feature = NULL;
    if (min < max && !engine_has_feature(to, "autoscaling"))
        feature = "autoscaling";
    else if (min == 0 && !engine_has_feature(to, "scale_to_zero"))
        feature = "scale_to_zero";
    else if (json_is_object(d->gpu) && json_object_size(json_object_get(d->gpu, "node_selector")) &&
             !engine_has_feature(to, "node_selector"))
        feature = "node_selector";
    if (feature) {
        snprintf(buf, size, "%s lacks feature \"%s\", which the deployment needs", to->name,
                 feature);
        return buf;
    }
    json_t *metrics = json_object_get(engine_capabilities(to), "autoscaling_metrics");
    const char *metric = json_string_value(json_object_get(as, "metric"));
    if (metric && json_is_array(metrics)) {
        size_t i;
        json_t *m;
        json_array_foreach(metrics, i, m)
        {
            if (json_is_string(m) && strcmp(json_string_value(m), metric) == 0)
                return NULL;
        }
        snprintf(buf, size, "%s does not scale on the metric \"%s\"", to->name, metric);
        return buf;
    }
    return NULL;
}

/* "mv-" + 40 hex digits of SHA-256(id, target, moves so far). */
static void move_key(const struct cand *d, const char *to, char key[64])
{
    char seed[400], hash[65];
    snprintf(seed, sizeof seed, "%s\n%s\n%lld", d->id, to, d->moves);
    util_sha256_hex(seed, strlen(seed), hash);
    snprintf(key, 64, "mv-%.40s", hash);
}

static int call(struct move_ctx *c, struct instance *in, const char *op, json_t *input,
                json_t **out, struct llmops_error *err)
{
    int rc = serving_call(c->app, in, op, input, out, err);
    json_decref(input);
    return rc;
}

/* Whether a live deployment other than `except` is owned by (instance, external_id): then
 * that object is not a leftover of a move and must not be removed. 1 yes, 0 no, -1 error. */
static int ext_live(struct app *app, const char *instance, const char *ext, const char *except,
                    struct db_error *err)
{
    const char *p[] = {instance, ext, except};
    PGresult *res = db_exec(&app->db,
                            "SELECT 1 FROM objects o JOIN deployments d ON d.id = o.id"
                            " WHERE o.instance = $1 AND o.external_id = $2 AND d.state <> 'deleted'"
                            " AND ($3::text IS NULL OR o.id <> $3) LIMIT 1",
                            3, p, err);
    if (!res)
        return -1;
    int live = PQntuples(res) == 1;
    PQclear(res);
    return live;
}

/* Deletes the object made on the target when it is not to be kept (it failed, or the row
 * changed under the move); a failure is said, not fatal: nothing owns it. */
static void drop_new(struct move_ctx *c, const struct cand *d, const char *ext)
{
    struct db_error dberr;
    if (ext_live(c->app, c->to->name, ext, NULL, &dberr) != 0)
        return; /* a live deployment holds it (or that cannot be known): never deleted */
    json_t *out = NULL;
    struct llmops_error err;
    if (call(c, c->to, "delete_deployment", json_pack("{s:s}", "external_id", ext), &out, &err) <
            0 &&
        err.code != LLMOPS_ERR_NOT_FOUND)
        say(c, d, "note: the new object %s could not be deleted from %s (%s): delete it there", ext,
            c->to->name, err.message);
    json_decref(out);
}

/* The new object until it is ready: 1 ready (*answer set), 0 failed or gone (it is deleted
 * then), -1 still not ready at the deadline (it stays for a re-run). */
static int wait_ready(struct move_ctx *c, const struct cand *d, const char *ext, json_t **answer,
                      char *why, size_t whysize)
{
    int64_t t0 = util_now_ms(), end = t0 + c->o->timeout_ms;
    long long delay = 200;
    char last[700] = "";
    for (;;) {
        json_t *out = NULL;
        struct llmops_error err;
        if (call(c, c->to, "get_deployment", json_pack("{s:s}", "external_id", ext), &out, &err) ==
            0) {
            const char *st = json_string_value(json_object_get(out, "state"));
            if (st && strcmp(st, "ready") == 0) {
                *answer = out;
                return 1;
            }
            if (st && (strcmp(st, "failed") == 0 || strcmp(st, "deleting") == 0)) {
                char r[700];
                snprintf(why, whysize, "%s reports it %s: %s", c->to->name, st,
                         serving_reason(out, r, sizeof r) ? r : "no reason given");
                json_decref(out);
                drop_new(c, d, ext);
                return 0;
            }
            snprintf(last, sizeof last, "%s", st ? st : "no state");
            json_decref(out);
        } else if (err.code == LLMOPS_ERR_NOT_FOUND) {
            snprintf(why, whysize, "the new object %s is gone from %s", ext, c->to->name);
            return 0;
        } else {
            snprintf(last, sizeof last, "get_deployment failed: %.600s", err.message);
        }
        int64_t now = util_now_ms();
        if (now >= end) {
            snprintf(why, whysize, "not ready in %s after %lld s (last: %s)", c->to->name,
                     c->o->timeout_ms / 1000, last);
            return -1;
        }
        progress(c, d, "waiting for it to be ready", (double)(now - t0) / 1000);
        sleep_ms(delay < end - now ? delay : end - now);
        delay = delay * 3 / 2 > 2000 ? 2000 : delay * 3 / 2;
    }
}

/* Step 3: the owner switches, audited, the old object's removal queued. 1 done, 0 the row
 * changed under the move (deleted, a canary opened, moved by someone else), -1 error. */
static int switch_owner(struct move_ctx *c, const struct cand *d, const char *ext, json_t *answer,
                        struct db_error *err)
{
    struct app *app = c->app;
    char reason[300];
    snprintf(reason, sizeof reason, "llm-opsctl sync serving --from %s --to %s (by %s)",
             c->from->name, c->to->name, c->o->who ? c->o->who : "unknown");
    json_t *before = json_pack("{s:s,s:s}", "instance", c->from->name, "external_id", d->ext);
    json_t *after = json_pack("{s:s,s:s}", "instance", c->to->name, "external_id", ext);
    char *payload = json_dumps(before, JSON_COMPACT);
    if (exec0(app, "BEGIN", 0, NULL, err) < 0) {
        json_decref(before);
        json_decref(after);
        free(payload);
        return -1;
    }
    /* only the row as the move read it: the same owner, no canary, not deleted, the spec
     * the new object was made from (a PATCH meanwhile went to the old one) */
    char *spec = json_dumps(d->spec, JSON_COMPACT);
    const char *p[] = {d->id, c->from->name, c->to->name, ext, d->ext, spec};
    PGresult *res = db_exec(&app->db,
                            "WITH o AS (UPDATE objects SET instance = $3, external_id = $4"
                            "  WHERE id = $1 AND instance = $2 AND external_id = $5 RETURNING id)"
                            " UPDATE deployments d SET instance = $3, version = d.version + 1,"
                            "  updated_at = now() FROM o WHERE d.id = o.id AND d.instance = $2"
                            "  AND d.canary IS NULL AND d.state NOT IN ('deleted', 'deleting')"
                            "  AND d.spec = $6::jsonb RETURNING d.id",
                            6, p, err);
    free(spec);
    int rc = -1;
    if (!res)
        goto out;
    int n = PQntuples(res);
    PQclear(res);
    if (n != 1) {
        rc = 0;
        goto out;
    }
    const char *q[] = {d->id, d->env, payload};
    if (serving_apply_answer(app, d->id, answer, SYNC_SERVING_ACTOR, err) < 0 ||
        serving_audit(app, d->id, d->env, SYNC_SERVING_ACTOR, SYNC_SERVING_ACTION, before, after,
                      reason, err) < 0) {
        before = after = NULL; /* stolen */
        goto out;
    }
    before = after = NULL;
    if (exec0(app,
              "INSERT INTO outbox (category, object_id, environment, operation, payload,"
              " next_attempt_at) VALUES ('" SERVING_CATEGORY "', $1, $2, '" SYNC_SERVING_CLEANUP_OP
              "', $3::jsonb, now() + interval '60 seconds')",
              3, q, err) < 0 ||
        exec0(app, "COMMIT", 0, NULL, err) < 0)
        goto out;
    rc = 1;
out:
    if (rc != 1)
        rollback(app);
    json_decref(before);
    json_decref(after);
    free(payload);
    return rc;
}

/* Removes the old object from `from` (NOT_FOUND: gone already). 0, or -1 with err. */
static int remove_old(struct app *app, struct instance *from, const char *object_id,
                      const char *ext, struct llmops_error *err)
{
    struct db_error dberr;
    int live = ext_live(app, from->name, ext, object_id, &dberr);
    if (live < 0) {
        outbox_set_err(err, LLMOPS_ERR_INTERNAL, 1, dberr.message);
        return -1;
    }
    if (live)
        return 0; /* the name serves a live deployment of the source again: not a leftover */
    json_t *in = json_pack("{s:s}", "external_id", ext), *out = NULL;
    int rc = serving_call(app, from, "delete_deployment", in, &out, err);
    json_decref(in);
    json_decref(out);
    if (rc < 0 && err->code == LLMOPS_ERR_NOT_FOUND)
        rc = 0;
    return rc;
}

/* One move at a time per deployment, across hosts: a session advisory lock. 1 taken, 0 held
 * by another run, -1 error. */
static int lock_dep(struct app *app, const char *id, int take, struct db_error *err)
{
    const char *p[] = {id};
    PGresult *res = db_exec(&app->db,
                            take ? "SELECT pg_try_advisory_lock(8010, hashtext($1))"
                                 : "SELECT pg_advisory_unlock(8010, hashtext($1))",
                            1, p, err);
    if (!res)
        return -1;
    int got = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    return got;
}

static void move_locked(struct move_ctx *c, struct cand *d);

static void move_one(struct move_ctx *c, struct cand *d)
{
    struct db_error err;
    int got = lock_dep(c->app, d->id, 1, &err);
    if (got <= 0) {
        c->n->skipped++;
        if (got < 0)
            say(c, d, "skipped: cannot take its move lock: %s", err.message);
        else
            say(c, d, "skipped: another llm-opsctl sync serving is moving it");
        return;
    }
    /* another run may have moved it between the listing and the lock */
    const char *p[] = {d->id};
    PGresult *res = db_exec(&c->app->db,
                            "SELECT instance, coalesce(external_id, '') FROM objects WHERE id = $1",
                            1, p, &err);
    if (!res) {
        c->n->failed++;
        say(c, d, "failed: cannot read its owner: %s", err.message);
    } else if (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 0), c->from->name) != 0 ||
               strcmp(PQgetvalue(res, 0, 1), d->ext) != 0) {
        int there = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), c->to->name) == 0;
        if (there)
            c->n->moved++;
        else
            c->n->skipped++;
        say(c, d, "%s: moved meanwhile by another run (now held by %s)",
            there ? "nothing to do" : "skipped",
            PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "nobody");
    } else {
        move_locked(c, d);
    }
    if (res)
        PQclear(res);
    if (lock_dep(c->app, d->id, 0, &err) < 0)
        log_warning("sync serving: %s: cannot release its move lock: %s", d->id, err.message);
}

static void move_locked(struct move_ctx *c, struct cand *d)
{
    if (d->canary) {
        c->n->skipped++;
        say(c, d,
            "skipped: its canary is open (promote or roll it back, then run again; only a "
            "deployment without a canary moves)");
        return;
    }
    if (d->waiting || !d->ext[0]) {
        c->n->skipped++;
        say(c, d,
            "skipped: a write of it waits in the outbox (%s); run again once the background "
            "process delivered it",
            d->ext[0] ? "see GET /llm-ops/v1/outbox" : "its create");
        return;
    }
    char why[300];
    if (missing(c->to, d, why, sizeof why)) {
        c->n->failed++;
        say(c, d, "%s: %s; it stays in %s", c->o->dry_run ? "would fail" : "failed", why,
            c->from->name);
        return;
    }
    char key[64];
    move_key(d, c->to->name, key);
    /* an object an earlier run made under the key is adopted */
    json_t *found = NULL;
    struct llmops_error err;
    int rc = call(c, c->to, "find_by_idempotency_key", json_pack("{s:s}", "idempotency_key", key),
                  &found, &err);
    if (rc < 0 && err.code != LLMOPS_ERR_NOT_FOUND) {
        c->n->failed++;
        say(c, d, "failed: find_by_idempotency_key on %s: %s; it stays in %s", c->to->name,
            err.message, c->from->name);
        return;
    }
    const char *fext = rc == 0 ? json_string_value(json_object_get(found, "external_id")) : NULL;
    if (c->o->dry_run) {
        c->n->moved++;
        if (fext)
            say(c, d, "would move from %s to %s, adopting %s there (made by an earlier run)",
                c->from->name, c->to->name, fext);
        else
            say(c, d, "would move from %s to %s (re-created there; %s removed from %s once ready)",
                c->from->name, c->to->name, d->ext, c->from->name);
        json_decref(found);
        return;
    }
    char ext[256];
    int adopted = fext != NULL;
    if (fext) {
        const char *st = json_string_value(json_object_get(found, "state"));
        if (st && strcmp(st, "deleting") == 0) {
            c->n->failed++;
            say(c, d,
                "failed: what an earlier run made in %s (%s) is still being deleted; run again "
                "later; it stays in %s",
                c->to->name, fext, c->from->name);
            json_decref(found);
            return;
        }
        snprintf(ext, sizeof ext, "%s", fext);
    } else {
        json_t *out = NULL;
        if (call(c, c->to, "deploy", serving_deploy_input(key, d->name, d->spec, d->gpu), &out,
                 &err) < 0) {
            c->n->failed++;
            say(c, d, "failed: %s refused it: %s; it stays in %s", c->to->name, err.message,
                c->from->name);
            json_decref(found);
            return;
        }
        fext = json_string_value(json_object_get(out, "external_id"));
        snprintf(ext, sizeof ext, "%s", fext ? fext : "");
        json_decref(out);
        if (!ext[0]) {
            c->n->failed++;
            say(c, d, "failed: %s answered no external_id; it stays in %s", c->to->name,
                c->from->name);
            json_decref(found);
            return;
        }
    }
    json_decref(found);
    /* ready on the target, or the old one stays */
    int64_t t0 = util_now_ms();
    json_t *answer = NULL;
    char wwhy[900];
    int ready = wait_ready(c, d, ext, &answer, wwhy, sizeof wwhy);
    if (ready <= 0) {
        c->n->failed++;
        say(c, d, "failed: %s; it stays in %s, owned and serving%s", wwhy, c->from->name,
            ready < 0 ? " (the new object stays in the target: a re-run adopts it and waits again)"
                      : " (the new object was deleted from the target)");
        return;
    }
    double secs = (double)(util_now_ms() - t0) / 1000;
    struct db_error dberr;
    rc = switch_owner(c, d, ext, answer, &dberr);
    json_decref(answer);
    if (rc <= 0) {
        c->n->failed++;
        if (rc == 0) {
            drop_new(c, d, ext);
            say(c, d,
                "failed: it changed while it moved (deleted, scaled, a canary opened, or "
                "moved by another run); the new object %s was deleted from %s",
                ext, c->to->name);
        } else {
            say(c, d,
                "failed: the owner could not be switched: %s; it stays in %s (the new object "
                "%s stays in %s: a re-run adopts it)",
                dberr.message, c->from->name, ext, c->to->name);
        }
        return;
    }
    c->n->moved++;
    /* step 4: the old object, now the command's own try of the queued row */
    const char *p[] = {d->id};
    if (remove_old(c->app, c->from, d->id, d->ext, &err) == 0 &&
        exec0(c->app,
              "UPDATE outbox SET state = 'done', attempts = attempts + 1, done_at = now(),"
              " updated_at = now() WHERE object_id = $1 AND operation = '" SYNC_SERVING_CLEANUP_OP
              "' AND state = 'pending'",
              1, p, &dberr) == 0) {
        say(c, d, "moved from %s to %s as %s (%s, ready in %.1f s); %s removed from %s",
            c->from->name, c->to->name, ext, adopted ? "adopted from an earlier run" : "created",
            secs, d->ext, c->from->name);
        return;
    }
    c->n->cleanup_left++;
    exec0(c->app,
          "UPDATE outbox SET next_attempt_at = now(), updated_at = now() WHERE object_id = $1"
          " AND operation = '" SYNC_SERVING_CLEANUP_OP "' AND state = 'pending'",
          1, p, &dberr);
    say(c, d,
        "moved from %s to %s as %s (ready in %.1f s); removing %s from %s failed (%s): the "
        "background process removes it (outbox)",
        c->from->name, c->to->name, ext, secs, d->ext, c->from->name, err.message);
}

static void cand_free(struct cand *d)
{
    json_decref(d->spec);
    json_decref(d->gpu);
}

int sync_serving(struct app *app, struct instance *from, struct instance *to,
                 const struct sync_serving_opts *opts, struct sync_serving_counts *n, char *error,
                 size_t errsize)
{
    memset(n, 0, sizeof *n);
    struct move_ctx c = {app, from, to, opts, n, isatty(STDERR_FILENO)};
    const char *p[] = {from->name, opts->deployment};
    struct db_error err;
    PGresult *res = db_exec(
        &app->db,
        "SELECT d.id, d.environment, d.name, d.state, d.spec::text, coalesce(d.gpu::text,"
        " 'null'), d.canary IS NOT NULL, coalesce(o.external_id, ''),"
        " (SELECT count(*) FROM deployment_audit a WHERE a.deployment_id = d.id"
        "  AND a.action = '" SYNC_SERVING_ACTION "'),"
        " EXISTS (SELECT 1 FROM outbox x WHERE x.object_id = d.id"
        "  AND x.state IN ('pending', 'dead'))"
        " FROM deployments d JOIN objects o ON o.id = d.id"
        " WHERE d.instance = $1 AND o.instance = $1 AND d.state NOT IN ('deleted', 'deleting')"
        " AND ($2::text IS NULL OR d.name = $2) ORDER BY d.environment, d.name, d.id",
        2, p, &err);
    if (!res) {
        snprintf(error, errsize, "cannot read the deployments: %s", err.message);
        return -1;
    }
    int rows = PQntuples(res);
    struct cand *all = calloc((size_t)(rows ? rows : 1), sizeof *all);
    if (!all) {
        PQclear(res);
        snprintf(error, errsize, "out of memory");
        return -1;
    }
    int bad = 0;
    for (int i = 0; i < rows; i++) {
        struct cand *d = &all[i];
#define CP(f, col) snprintf(d->f, sizeof d->f, "%s", PQgetvalue(res, i, col))
        CP(id, 0);
        CP(env, 1);
        CP(name, 2);
        CP(state, 3);
        CP(ext, 7);
#undef CP
        d->spec = json_loads(PQgetvalue(res, i, 4), 0, NULL);
        d->gpu = json_loads(PQgetvalue(res, i, 5), JSON_DECODE_ANY, NULL);
        d->canary = strcmp(PQgetvalue(res, i, 6), "t") == 0;
        d->moves = db_int(res, i, 8, &bad);
        d->waiting = strcmp(PQgetvalue(res, i, 9), "t") == 0;
        if (!d->spec || !d->gpu)
            bad = 1;
    }
    PQclear(res);
    if (bad) {
        for (int i = 0; i < rows; i++)
            cand_free(&all[i]);
        free(all);
        snprintf(error, errsize, "a deployment's row could not be read");
        return -1;
    }
    n->listed = rows;
    for (int i = 0; i < rows; i++) {
        move_one(&c, &all[i]);
        cand_free(&all[i]);
    }
    free(all);
    if (c.tty)
        fprintf(stderr, "\r\033[K");
    return 0;
}

/* ------------------------------------------------------------------ the outbox's cleanup */

static int cleanup_prepare(struct app *app, struct instance *in, struct outbox_row *row,
                           json_t **input, struct llmops_error *err)
{
    (void)app;
    (void)in;
    if (!json_string_value(json_object_get(row->payload, "instance")) ||
        !json_string_value(json_object_get(row->payload, "external_id"))) {
        outbox_set_err(err, LLMOPS_ERR_INVALID, 0,
                       "the row's payload names no instance and external_id");
        return -1;
    }
    *input = json_copy(row->payload);
    json_object_set_new(*input, "object_id", json_string(row->object_id));
    return 0;
}

/* `in` is the deployment's owner now; the old object is in the payload's instance. */
static int cleanup_call(struct app *app, struct instance *in, const char *op, json_t *input,
                        json_t **out, struct llmops_error *err)
{
    (void)in;
    (void)op;
    *out = NULL;
    const char *name = json_string_value(json_object_get(input, "instance"));
    struct instance *from = plugins_find(&app->plugins, name);
    if (!from || !from->initialised) {
        char m[300];
        snprintf(m, sizeof m, "instance %s, which holds the old object, is not running", name);
        outbox_set_err(err, LLMOPS_ERR_UNAVAILABLE, 1, m);
        return -1;
    }
    const char *object_id = json_string_value(json_object_get(input, "object_id"));
    if (remove_old(app, from, object_id, json_string_value(json_object_get(input, "external_id")),
                   err) < 0)
        return -1;
    *out = json_object();
    return 0;
}

static int cleanup_apply(struct app *app, struct instance *in, struct outbox_row *row, json_t *out,
                         struct llmops_error *err)
{
    (void)app;
    (void)in;
    (void)out;
    (void)err;
    log_info("serving: %s: the old object %s removed from %s after its move", row->object_id,
             json_string_value(json_object_get(row->payload, "external_id")),
             json_string_value(json_object_get(row->payload, "instance")));
    return 0;
}

static const struct outbox_op cleanup_ops[] = {
    {SERVING_CATEGORY, SYNC_SERVING_CLEANUP_OP, cleanup_call, cleanup_prepare, cleanup_apply, NULL,
     0},
    {NULL, NULL, NULL, NULL, NULL, NULL, 0},
};

int sync_serving_outbox_register(void)
{
    return outbox_register(cleanup_ops);
}
