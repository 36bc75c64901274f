/* Watches (watch.h): polling objects whose tool state converges later. */
#include "watch.h"

#include "engine.h"
#include "log.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct watch_hook *hooks[WATCH_MAX_HOOKS];
static int nhooks;

int watch_register(const struct watch_hook *hook)
{
    for (int i = 0; i < nhooks; i++)
        if (hooks[i] == hook)
            return 0;
        else if (strcmp(hooks[i]->category, hook->category) == 0)
            return -1;
    if (nhooks == WATCH_MAX_HOOKS)
        return -1;
    hooks[nhooks++] = hook;
    return 0;
}

static const struct watch_hook *find_hook(const char *category)
{
    for (int i = 0; i < nhooks; i++)
        if (strcmp(hooks[i]->category, category) == 0)
            return hooks[i];
    return NULL;
}

long long watch_backoff_ms(long long base_ms, long long max_ms, int polls)
{
    return outbox_jitter_ms(base_ms, max_ms, polls - 1); /* the first poll waits base_ms */
}

static json_t *str_list(const char *const *l)
{
    json_t *a = json_array();
    for (; l && *l; l++)
        json_array_append_new(a, json_string(*l));
    return a;
}

long long watch_start(struct db *db, const char *object_id, const char *read_op,
                      const char *state_member, const char *const *ready, const char *const *failed,
                      long long base_delay_ms, long long max_delay_ms, long long deadline_ms,
                      struct db_error *err)
{
    json_t *r = str_list(ready), *f = str_list(failed);
    char *rt = json_dumps(r, JSON_COMPACT), *ft = json_dumps(f, JSON_COMPACT);
    json_decref(r);
    json_decref(f);
    char b[24], m[24], d[24];
    snprintf(b, sizeof b, "%lld", base_delay_ms);
    snprintf(m, sizeof m, "%lld", max_delay_ms);
    snprintf(d, sizeof d, "%lld", deadline_ms);
    const char *p[] = {object_id, read_op, state_member, rt, ft, b, m, d};
    PGresult *res = db_exec(
        db,
        "INSERT INTO watches (object_id, environment, category, read_op, state_member,"
        " ready_states, failed_states, base_delay_ms, max_delay_ms, deadline_at)"
        " SELECT id, environment, category, $2, $3,"
        " ARRAY(SELECT jsonb_array_elements_text($4::jsonb)),"
        " ARRAY(SELECT jsonb_array_elements_text($5::jsonb)), $6::bigint, $7::bigint,"
        " now() + $8::bigint * interval '1 millisecond' FROM objects WHERE id = $1 RETURNING id",
        8, p, err);
    free(rt);
    free(ft);
    if (!res)
        return -1;
    int bad = 0;
    long long id = PQntuples(res) == 1 ? db_int(res, 0, 0, &bad) : -1;
    if (id < 0 || bad)
        snprintf(err->message, sizeof err->message, "no object %s to watch", object_id);
    PQclear(res);
    return bad ? -1 : id;
}

static int in_list(json_t *list, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(list, i,
                       v) if (json_is_string(v) && strcmp(json_string_value(v), s) == 0) return 1;
    return 0;
}

static const char *const state_names[] = {"watching", "ready", "failed", "timed_out"};

/* One watch: 1 polled, 0 none due, -1 database error. */
static int poll_one(struct app *app)
{
    PGresult *res;
    int claimed = outbox_claim(
        app,
        "SELECT w.id, w.object_id, w.environment, w.category, w.read_op, w.state_member,"
        " array_to_json(w.ready_states)::text, array_to_json(w.failed_states)::text, w.polls,"
        " w.base_delay_ms, w.max_delay_ms, w.deadline_at <= now(), ob.instance,"
        " coalesce(ob.external_id, ''), coalesce(w.tool_state, '')"
        " FROM watches w JOIN objects ob ON ob.id = w.object_id"
        " WHERE w.state = 'watching' AND w.next_poll_at <= now()"
        " ORDER BY w.next_poll_at, w.id LIMIT 1 FOR UPDATE OF w SKIP LOCKED",
        &res);
    if (claimed <= 0)
        return claimed;
    struct db_error dberr;
    struct watch_row w;
    memset(&w, 0, sizeof w);
    int bad = 0;
#define CP(field, col) snprintf(w.field, sizeof w.field, "%s", PQgetvalue(res, 0, col))
    CP(id, 0);
    CP(object_id, 1);
    CP(environment, 2);
    CP(category, 3);
    CP(read_op, 4);
    CP(instance, 12);
    CP(external_id, 13);
#undef CP
    char member[64], prev[128];
    snprintf(member, sizeof member, "%s", PQgetvalue(res, 0, 5));
    snprintf(prev, sizeof prev, "%s", PQgetvalue(res, 0, 14));
    json_t *ready = json_loads(PQgetvalue(res, 0, 6), 0, NULL);
    json_t *failed = json_loads(PQgetvalue(res, 0, 7), 0, NULL);
    w.polls = (int)db_int(res, 0, 8, &bad) + 1;
    long long base = db_int(res, 0, 9, &bad), max = db_int(res, 0, 10, &bad);
    int past_deadline = strcmp(PQgetvalue(res, 0, 11), "t") == 0;
    PQclear(res);
    if (bad) {
        json_decref(ready);
        json_decref(failed);
        outbox_rollback(app);
        return -1;
    }

    const struct watch_hook *hook = find_hook(w.category);
    enum watch_state st = WATCH_WATCHING;
    char tool_state[128] = "", reason[1024] = "";
    json_t *answer = NULL;
    struct instance *in = plugins_find(&app->plugins, w.instance);
    struct llmops_error err = {.size = sizeof err};
    if (!in || !in->initialised) {
        snprintf(reason, sizeof reason, "instance %s is not running in the background process",
                 w.instance);
    } else if (!w.external_id[0]) {
        snprintf(reason, sizeof reason, "the object is not created in the tool yet");
    } else {
        json_t *input = json_pack("{s:s}", "external_id", w.external_id);
        outbox_call_fn *call = hook && hook->call ? hook->call : engine_call_any;
        int rc = call(app, in, w.read_op, input, &answer, &err);
        json_decref(input);
        if (rc < 0) {
            snprintf(reason, sizeof reason, "%s: %.600s (instance %s)", w.read_op, err.message,
                     w.instance);
            if (err.code == LLMOPS_ERR_NOT_FOUND)
                st = WATCH_FAILED;
        } else {
            const char *s = json_string_value(json_object_get(answer, member));
            if (!s) {
                snprintf(reason, sizeof reason, "%s answered no string '%s'", w.read_op, member);
            } else {
                snprintf(tool_state, sizeof tool_state, "%s", s);
                if (in_list(ready, s))
                    st = WATCH_READY;
                else if (in_list(failed, s))
                    st = WATCH_FAILED;
                const char *why = json_string_value(json_object_get(answer, "reason"));
                if (!why)
                    why = json_string_value(json_object_get(answer, "message"));
                if (why)
                    snprintf(reason, sizeof reason, "%s", why);
            }
        }
    }
    json_decref(ready);
    json_decref(failed);
    if (st == WATCH_WATCHING && past_deadline) {
        st = WATCH_TIMED_OUT;
        char last[1024];
        snprintf(last, sizeof last, "%s", reason);
        snprintf(reason, sizeof reason,
                 "no terminal state by the deadline after %d polls (last tool state '%s'%s%.700s)",
                 w.polls, tool_state[0] ? tool_state : (prev[0] ? prev : "none"),
                 last[0] ? ": " : "", last);
    }
    int ok = 1;
    if (hook && hook->apply &&
        hook->apply(app, &w, st, tool_state[0] ? tool_state : NULL, reason[0] ? reason : NULL,
                    st == WATCH_TIMED_OUT ? NULL : answer, &err) < 0) {
        log_warning("watch %s of %s: the %s hook failed: %s", w.id, w.object_id, w.category,
                    err.message);
        st = WATCH_WATCHING;
    }
    json_decref(answer);
    char delay[24];
    snprintf(delay, sizeof delay, "%lld", watch_backoff_ms(base, max, w.polls));
    const char *p[] = {w.id, state_names[st], tool_state[0] ? tool_state : NULL,
                       reason[0] ? reason : NULL, delay};
    ok = outbox_exec(app,
                     "UPDATE watches SET polls = polls + 1, state = $2,"
                     " tool_state = coalesce($3, tool_state), reason = $4, updated_at = now(),"
                     " next_poll_at = now() + $5::bigint * interval '1 millisecond',"
                     " done_at = CASE WHEN $2 = 'watching' THEN NULL ELSE now() END"
                     " WHERE id = $1::bigint",
                     5, p, &dberr) == 0;
    if (ok && tool_state[0] && strcmp(tool_state, prev) != 0) {
        const char *pe[] = {w.object_id, w.environment, w.category, tool_state,
                            reason[0] ? reason : NULL};
        ok = outbox_exec(app,
                         "INSERT INTO object_events (object_id, environment, category, kind,"
                         " tool_state, reason) VALUES ($1, $2, $3, 'tool_state', $4, $5)",
                         5, pe, &dberr) == 0;
    }
    if (ok && st != WATCH_WATCHING) {
        const char *pe[] = {w.object_id,
                            w.environment,
                            w.category,
                            state_names[st],
                            tool_state[0] ? tool_state : NULL,
                            reason[0] ? reason : NULL};
        ok = outbox_exec(app,
                         "INSERT INTO object_events (object_id, environment, category, kind,"
                         " tool_state, reason) VALUES ($1, $2, $3, $4, $5, $6)",
                         6, pe, &dberr) == 0;
        log_info("watch %s of %s: %s after %d polls%s%s", w.id, w.object_id, state_names[st],
                 w.polls, reason[0] ? ": " : "", reason);
    }
    return outbox_finish(app, ok);
}

int watch_run_once(struct app *app, int max)
{
    return outbox_each(app, max, poll_one);
}
