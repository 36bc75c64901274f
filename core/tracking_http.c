/* /llm-ops/v1/experiments and /llm-ops/v1/runs: experiment tracking through the instance the
 * flags choose for new objects, and through the owning instance for existing ones. */
#include "engine_http.h"
#include "handlers.h"
#include "log.h"
#include "category.h"
#include "owner.h"
#include "tracking.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TRACK LLMOPS_CATEGORY_EXPERIMENT_TRACKING

/* ------------------------------------------------------------------ helpers */

static int parse_max_results(struct req *r, long long max, long long def, long long *out)
{
    const char *s = http_query(r, "max_results");
    const char *why;
    *out = def;
    if (s && util_parse_int(s, 1, max, out, &why) < 0) {
        char q[UTIL_QUOTE_SIZE(32)];
        resp_error(r, API_VALIDATION_FAILED, json_pack("{s:s}", "field", "max_results"),
                   "max_results '%s' %s (1-%lld)", util_quote(q, sizeof q, s, 32), why, max);
        return -1;
    }
    return 0;
}

/* Only the listed members; returns -1 after a 400 naming the first unknown one. */
static int only_members(struct req *r, json_t *obj, const char *const *known)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        int ok = 0;
        for (const char *const *a = known; *a; a++)
            if (strcmp(*a, k) == 0)
                ok = 1;
        if (!ok) {
            char list[200] = "";
            size_t used = 0;
            for (const char *const *a = known; *a; a++) {
                int w = snprintf(list + used, sizeof list - used, "%s%s", used ? ", " : "", *a);
                if (w > 0 && (size_t)w < sizeof list - used)
                    used += (size_t)w;
            }
            char q[UTIL_QUOTE_SIZE(64)];
            resp_error(r, API_VALIDATION_FAILED, json_pack("{s:s}", "field", k),
                       "unknown member '%s'; known: %s", util_quote(q, sizeof q, k, 64), list);
            return -1;
        }
    }
    return 0;
}

static int check_name(struct req *r, json_t *v, int required, const char *what)
{
    if (!v && !required)
        return 0;
    const char *s = json_string_value(v);
    if (!s || !*s || strlen(s) > LLMOPS_TRACKING_NAME_MAX) {
        resp_error(r, API_VALIDATION_FAILED, json_pack("{s:s}", "field", what),
                   "%s must be a string of 1-%d bytes", what, LLMOPS_TRACKING_NAME_MAX);
        return -1;
    }
    return 0;
}

/* A tags object checked and normalised into a new object, or NULL after a 400. */
static json_t *check_tags(struct req *r, json_t *tags)
{
    char msg[300], field[300];
    json_t *body = json_pack("{s:O}", "tags", tags);
    json_t *batches = track_split_log(body, 0, msg, sizeof msg, field, sizeof field);
    json_decref(body);
    if (!batches) {
        resp_error(r, API_VALIDATION_FAILED, json_pack("{s:s}", "field", field), "%s", msg);
        return NULL;
    }
    json_t *out = json_object();
    size_t i;
    json_t *b;
    json_array_foreach(batches, i, b) json_object_update(out, json_object_get(b, "tags"));
    json_decref(batches);
    return out;
}

static const char *actor(struct req *r)
{
    return r->who.name[0] ? r->who.name : "anonymous";
}

static void unreserve(struct app *app, const char *id)
{
    const char *params[] = {id};
    struct db_error err;
    PGresult *res = db_exec(&app->db, "DELETE FROM objects WHERE id = $1 AND external_id IS NULL",
                            1, params, &err);
    if (res)
        PQclear(res);
}

/* Loads a platform id of `kind` and the running instance that holds it; -1 after an error
 * response. */
static int load_object(struct req *r, const char *kind, const char *id, struct owned *o,
                       struct instance **in)
{
    struct db_error err;
    size_t kl = strlen(kind);
    int found = 0;
    if (strncmp(id, kind, kl) == 0 && id[kl] == '_' && strlen(id) < sizeof o->id) {
        found = owner_lookup(r->app, id, o, &err);
        if (found < 0) {
            resp_error(r, API_DATABASE_UNAVAILABLE, NULL, "cannot read the object: %s",
                       err.message);
            return -1;
        }
        if (found && strcmp(o->kind, kind) != 0)
            found = 0;
    }
    const char *what = strcmp(kind, "exp") == 0 ? "experiment" : "run";
    if (!found) {
        char q[UTIL_QUOTE_SIZE(64)];
        resp_error(r, API_NOT_FOUND, json_pack("{s:s}", "field", "id"), "no %s '%s'", what,
                   util_quote(q, sizeof q, id, 64));
        return -1;
    }
    if (!o->external_id[0]) {
        resp_error(r, API_CONFLICT,
                   json_pack("{s:s,s:s}", "field", "id", "tracking_state", "pending"),
                   "%s %s is not created in instance %s yet (tracking pending: the outbox "
                   "delivers it)",
                   what, id, o->instance);
        return -1;
    }
    *in = owner_instance(r->app, o);
    if (!*in) {
        resp_error(r, API_TOOL_UNAVAILABLE, json_pack("{s:s}", "instance", o->instance),
                   "instance %s, which holds %s %s, is not running", o->instance, what, id);
        return -1;
    }
    return 0;
}

static json_t *exp_json(json_t *e, const char *pid, const char *instance)
{
    json_t *o = json_copy(e);
    json_object_del(o, "created");
    json_object_set_new(o, "id", json_string(pid));
    json_object_set_new(o, "instance", json_string(instance));
    return o;
}

/* Runs in an answer get their experiment's platform id. */
static json_t *run_json(json_t *run, const char *pid, const char *exp_pid, const char *instance)
{
    json_t *o = json_copy(run);
    json_object_del(o, "created");
    json_object_set_new(o, "id", json_string(pid));
    json_object_set(o, "experiment_external_id", json_object_get(run, "experiment_id"));
    json_object_set_new(o, "experiment_id", json_str_or_null(exp_pid));
    json_object_set_new(o, "instance", json_string(instance));
    return o;
}

/* The platform ids of a list of tool objects (member `member` of each). */
static json_t *ids_for(struct req *r, const char *kind, const char *env, struct instance *in,
                       json_t *list, const char *member)
{
    json_t *ext = json_array(), *ids = json_object();
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        json_t *x = json_object_get(v, member);
        if (json_is_string(x))
            json_array_append(ext, x);
    }
    struct db_error err;
    int rc = track_platform_ids(r->app, kind, env, in->name, ext, ids, &err);
    json_decref(ext);
    if (rc < 0) {
        json_decref(ids);
        resp_error(r, API_DATABASE_UNAVAILABLE, NULL, "cannot record platform ids: %s",
                   err.message);
        return NULL;
    }
    return ids;
}

/* One run answer with both ids mapped; NULL after an error response. */
static json_t *map_run(struct req *r, const char *env, struct instance *in, json_t *run,
                       const char *known_pid)
{
    json_t *one = json_pack("[O]", run);
    json_t *rids =
        known_pid ? json_pack("{s:s}", json_string_value(json_object_get(run, "external_id")) ?: "",
                              known_pid)
                  : ids_for(r, "run", env, in, one, "external_id");
    json_t *eids = rids ? ids_for(r, "exp", env, in, one, "experiment_id") : NULL;
    json_decref(one);
    if (!eids) {
        json_decref(rids);
        return NULL;
    }
    const char *rid = json_string_value(
        json_object_get(rids, json_string_value(json_object_get(run, "external_id")) ?: ""));
    const char *eid = json_string_value(
        json_object_get(eids, json_string_value(json_object_get(run, "experiment_id")) ?: ""));
    json_t *o = run_json(run, rid ? rid : "", eid, in->name);
    json_decref(rids);
    json_decref(eids);
    return o;
}

/* ------------------------------------------------------------------ experiments */

/* The platform id bound to experiment `ext` of `in`, and whether it was adopted (listed
 * before any create bound it): 1 found, 0 none, -1 database error. */
static int bound_experiment(struct app *app, struct instance *in, const char *ext, char pid[64],
                            int *adopted, struct db_error *err)
{
    const char *params[] = {in->name, ext};
    PGresult *res = db_exec(&app->db,
                            "SELECT id, created_by = 'adopted' FROM objects WHERE instance = $1"
                            " AND kind = 'exp' AND external_id = $2",
                            2, params, err);
    if (!res)
        return -1;
    int found = PQntuples(res) == 1;
    if (found) {
        snprintf(pid, 64, "%s", PQgetvalue(res, 0, 0));
        *adopted = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
    }
    PQclear(res);
    return found;
}

/* The 409 of a name taken by an experiment made otherwise (another key: another client of
 * the tool, or a create before keys were derived): its platform id added when one is bound. */
static void conflict_id(struct req *r, struct instance *in, const char *name,
                        const struct llmops_error *cerr)
{
    json_t *input = json_pack("{s:s,s:s,s:i}", "name", name, "lifecycle", "all", "max_results", 1),
           *out;
    struct llmops_error err;
    char pid[64] = "";
    int adopted = 0;
    if (track_call(r->app, in, "search_experiments", input, &out, &err) == 0) {
        const char *ext = json_string_value(
            json_object_get(json_array_get(json_object_get(out, "experiments"), 0), "external_id"));
        struct db_error dberr;
        if (ext && bound_experiment(r->app, in, ext, pid, &adopted, &dberr) != 1)
            pid[0] = '\0';
        json_decref(out);
    }
    json_decref(input);
    enum api_error e = (enum api_error)plugin_status_to_api(cerr->code);
    json_t *extra = json_pack("{s:s,s:s,s:s,s:b}", "field", "name", "instance", in->name,
                              "operation", "create_experiment", "retryable", cerr->retryable);
    if (pid[0])
        json_object_set_new(extra, "id", json_string(pid));
    resp_error(r, e, extra, "%s (instance %s)%s%s", cerr->message, in->name, pid[0] ? ": " : "",
               pid);
}

/* POST /experiments. The tool's idempotency key is derived from (instance, name), and the
 * platform id is reserved under it, so a retry of the same body finds what a killed attempt
 * left: the reservation (no tool call made, or made but its id not recorded), reused and
 * bound; or the experiment, which the tool answers for the key. An experiment of the name
 * bound to a platform id already is a 409 that carries that id. */
void experiments_create(struct req *r)
{
    static const char *const known[] = {"name", "tags", NULL};
    struct app *app = r->app;
    if (only_members(r, r->body, known) < 0 ||
        check_name(r, json_object_get(r->body, "name"), 1, "name") < 0)
        return;
    json_t *tags = check_tags(r, json_object_get(r->body, "tags"));
    if (!tags)
        return;
    struct instance *in = owner_pick(app, r, r->env_index, TRACK, NULL);
    if (!in) {
        json_decref(tags);
        return;
    }
    const char *name = json_string_value(json_object_get(r->body, "name"));
    char key[64];
    track_experiment_key(in->name, name, key);
    struct owned o;
    struct db_error dberr;
    if (owner_reserve_keyed(app, "exp", r->env, TRACK, in->name, actor(r), key, &o, &dberr) < 0) {
        json_decref(tags);
        resp_error(r, API_DATABASE_UNAVAILABLE, NULL, "cannot reserve an id: %s", dberr.message);
        return;
    }
    json_t *input = json_pack("{s:s,s:s,s:o}", "idempotency_key", key, "name", name, "tags", tags);
    json_t *out;
    struct llmops_error err;
    int rc = track_call(app, in, "create_experiment", input, &out, &err);
    json_decref(input);
    if (rc < 0) {
        /* the tool may have made it all the same: the retry finds it by the key */
        unreserve(app, o.id);
        if (err.code == LLMOPS_ERR_CONFLICT)
            conflict_id(r, in, name, &err);
        else
            track_error(r, in, "create_experiment", &err);
        return;
    }
    const char *ext = json_string_value(json_object_get(out, "external_id"));
    if (!ext) {
        json_decref(out);
        unreserve(app, o.id);
        resp_error(r, API_TOOL_ERROR, json_pack("{s:s}", "instance", in->name),
                   "instance %s answered no id", in->name);
        return;
    }
    int created = !json_is_false(json_object_get(out, "created"));
    const char *lc = json_string_value(json_object_get(out, "lifecycle"));
    char pid[64] = "";
    int adopted = 0, found = 0;
    if (!created) {
        /* made by an earlier request with this name: bound already, or not (its worker was
         * killed before it recorded the id) */
        found = bound_experiment(app, in, ext, pid, &adopted, &dberr);
        if (found < 0) {
            json_decref(out);
            resp_error(r, API_DATABASE_UNAVAILABLE, NULL, "cannot read the experiment's id: %s",
                       dberr.message);
            return;
        }
    }
    int deleted = !created && lc && strcmp(lc, "deleted") == 0;
    if (!found && !deleted && owner_bind(app, o.id, ext, &dberr) < 0) {
        /* a twin request bound it a moment ago */
        if (strcmp(dberr.sqlstate, DB_SQLSTATE_UNIQUE_VIOLATION) != 0 ||
            (found = bound_experiment(app, in, ext, pid, &adopted, &dberr)) != 1) {
            json_decref(out);
            unreserve(app, o.id);
            resp_error(r, API_DATABASE_UNAVAILABLE, NULL, "cannot record the experiment: %s",
                       dberr.message);
            return;
        }
    }
    if (found || deleted) {
        unreserve(app, o.id);
        if (!adopted || deleted) {
            json_decref(out);
            json_t *extra = json_pack("{s:s,s:s}", "field", "name", "instance", in->name);
            if (pid[0])
                json_object_set_new(extra, "id", json_string(pid));
            char q[UTIL_QUOTE_SIZE(250)];
            resp_error(r, API_CONFLICT, extra,
                       "an experiment named '%s' exists already in %s%s%s%s",
                       util_quote(q, sizeof q, name, 250), in->name, pid[0] ? ": " : "", pid,
                       deleted ? " (deleted; its name stays taken)" : "");
            return;
        }
        /* listed (and so adopted) between the killed attempt and this retry: it is this
         * request's experiment, under the id the listing gave it */
        snprintf(o.id, sizeof o.id, "%s", pid);
    }
    char msg[400];
    snprintf(msg, sizeof msg, "experiment '%s' created in %s%s",
             json_string_value(json_object_get(out, "name")) ?: "", in->name,
             created ? "" : " (by an earlier attempt of this request)");
    resp_header(r, "Location: /llm-ops/v1/experiments/%s", o.id);
    resp_success(r, 201, msg, exp_json(out, o.id, in->name));
    json_decref(out);
}

static int check_lifecycle(struct req *r, const char *s)
{
    if (!s || strcmp(s, "active") == 0 || strcmp(s, "deleted") == 0 || strcmp(s, "all") == 0)
        return 0;
    char q[UTIL_QUOTE_SIZE(32)];
    resp_error(
        r, API_VALIDATION_FAILED,
        json_pack("{s:s,s:[sss]}", "field", "lifecycle", "valid", "active", "deleted", "all"),
        "unknown lifecycle '%s'; valid: active, deleted, all", util_quote(q, sizeof q, s, 32));
    return -1;
}

/* ------------------------------------------------------------------ runs */

/* ------------------------------------------------------------------ run search across
 * instances */

/* One instance a run search asks: the experiments it holds, where its answers stand. */
struct run_source {
    struct instance *in;
    char env[64];
    json_t *ext;      /* its experiments' tool ids */
    json_t *token;    /* the tool token of the page the cursor stands in (null: the first) */
    long long offset; /* runs of that page already answered */
    json_t *cands;    /* its runs not answered yet, in the search's order */
    size_t used, fetched;
    json_t *next; /* the tool's token after the fetched page */
    int more, done, down;
};

/* The value a run sorts by: a number (kept in *d) or a string; 0 when it has none. */
static int run_key(json_t *run, json_t *ob, double *d, const char **s)
{
    const char *field = json_string_value(json_object_get(ob, "field"));
    const char *key = json_string_value(json_object_get(ob, "key"));
    json_t *v = NULL;
    if (!field || !key)
        return 0;
    if (strcmp(field, "attribute") == 0)
        v = json_object_get(run, key);
    else if (strcmp(field, "param") == 0)
        v = json_object_get(json_object_get(run, "params"), key);
    else if (strcmp(field, "tag") == 0)
        v = json_object_get(json_object_get(run, "tags"), key);
    else if (strcmp(field, "metric") == 0) {
        size_t i;
        json_t *m;
        json_array_foreach(json_object_get(run, "metrics"), i, m)
        {
            if (json_is_string(json_object_get(m, "key")) &&
                strcmp(json_string_value(json_object_get(m, "key")), key) == 0)
                v = json_object_get(m, "value");
        }
    }
    if (json_is_number(v)) {
        *d = json_number_value(v);
        return 1;
    }
    if (json_is_string(v)) {
        *s = json_string_value(v);
        return 2;
    }
    return 0;
}

/* <0 when a comes first in the search's order (absent: start_time_ms descending); runs
 * without the value come last, as MLflow puts them. */
static int run_order(json_t *a, json_t *b, json_t *order)
{
    json_t *def = NULL;
    if (json_array_size(order) == 0)
        order = def = json_pack("[{s:s,s:s,s:b}]", "field", "attribute", "key", "start_time_ms",
                                "ascending", 0);
    int c = 0;
    size_t i;
    json_t *ob;
    json_array_foreach(order, i, ob)
    {
        double da = 0, db = 0;
        const char *sa = NULL, *sb = NULL;
        int ta = run_key(a, ob, &da, &sa), tb = run_key(b, ob, &db, &sb);
        if (!ta || !tb) {
            c = ta == tb ? 0 : ta ? -1 : 1;
        } else {
            if (ta == 1 && tb == 1)
                c = da < db ? -1 : da > db ? 1 : 0;
            else if (ta == 2 && tb == 2)
                c = strcmp(sa, sb);
            else
                c = ta < tb ? -1 : 1;
            if (!json_is_true(json_object_get(ob, "ascending")))
                c = -c;
        }
        if (c)
            break;
    }
    json_decref(def);
    return c;
}

void runs_search(struct req *r)
{
    static const char *const known[] = {"experiment_ids", "filter",     "order_by", "lifecycle",
                                        "max_results",    "page_token", NULL};
    if (only_members(r, r->body, known) < 0)
        return;
    json_t *eids = json_object_get(r->body, "experiment_ids");
    if (!json_is_array(eids) || json_array_size(eids) == 0 ||
        json_array_size(eids) > LLMOPS_TRACKING_MAX_EXPERIMENT_IDS) {
        resp_error(r, API_VALIDATION_FAILED, json_pack("{s:s}", "field", "experiment_ids"),
                   "experiment_ids must be an array of 1-%d experiment ids",
                   LLMOPS_TRACKING_MAX_EXPERIMENT_IDS);
        return;
    }
    json_t *filter = json_object_get(r->body, "filter"),
           *mr = json_object_get(r->body, "max_results");
    json_t *lc = json_object_get(r->body, "lifecycle"),
           *pt = json_object_get(r->body, "page_token");
    if ((filter && !json_is_string(filter)) || (pt && !json_is_string(pt)) ||
        (lc && !json_is_string(lc))) {
        resp_error(r, API_VALIDATION_FAILED,
                   json_pack("{s:s}", "field",
                             filter && !json_is_string(filter) ? "filter"
                             : pt && !json_is_string(pt)       ? "page_token"
                                                               : "lifecycle"),
                   "filter, lifecycle and page_token must be strings");
        return;
    }
    if (check_lifecycle(r, json_string_value(lc)) < 0)
        return;
    if (mr && (!json_is_integer(mr) || json_integer_value(mr) < 1 ||
               json_integer_value(mr) > LLMOPS_TRACKING_MAX_RESULTS)) {
        resp_error(r, API_VALIDATION_FAILED, json_pack("{s:s}", "field", "max_results"),
                   "max_results must be an integer 1-%d", LLMOPS_TRACKING_MAX_RESULTS);
        return;
    }
    char msg[300];
    json_t *clauses = track_parse_filter(filter ? json_string_value(filter) : "", msg, sizeof msg);
    if (!clauses) {
        resp_error(r, API_VALIDATION_FAILED, json_pack("{s:s}", "field", "filter"), "%s", msg);
        return;
    }
    json_t *order = track_parse_order_by(json_object_get(r->body, "order_by"), msg, sizeof msg);
    if (!order) {
        json_decref(clauses);
        resp_error(r, API_VALIDATION_FAILED, json_pack("{s:s}", "field", "order_by"), "%s", msg);
        return;
    }
    struct run_source src[LLMOPS_TRACKING_MAX_EXPERIMENT_IDS];
    size_t nsrc = 0, i;
    json_t *v, *cursor = NULL, *list = NULL, *sources = NULL;
    struct owned o;
    json_array_foreach(eids, i, v)
    {
        struct instance *one;
        if (!json_is_string(v) || load_object(r, "exp", json_string_value(v), &o, &one) < 0) {
            if (!json_is_string(v))
                resp_error(r, API_VALIDATION_FAILED, json_pack("{s:s}", "field", "experiment_ids"),
                           "experiment_ids[%zu] must be a string", i);
            goto out;
        }
        size_t k = 0;
        while (k < nsrc && src[k].in != one)
            k++;
        if (k == nsrc) {
            memset(&src[k], 0, sizeof src[k]);
            src[k].in = one;
            snprintf(src[k].env, sizeof src[k].env, "%s", o.environment);
            src[k].ext = json_array();
            nsrc++;
        }
        json_array_append_new(src[k].ext, json_string(o.external_id));
    }
    if (pt && !(cursor = track_cursor_decode(json_string_value(pt)))) {
        resp_error(r, API_VALIDATION_FAILED, json_pack("{s:s}", "field", "page_token"),
                   "page_token is not one this search gave");
        goto out;
    }
    long long max = mr ? json_integer_value(mr) : 100;
    sources = json_object();
    size_t up = 0;
    for (size_t k = 0; k < nsrc; k++) {
        struct run_source *rs = &src[k];
        if (cursor) {
            json_t *st = json_object_get(cursor, rs->in->name);
            if (json_is_integer(st) && json_integer_value(st) == 0) {
                rs->done = 1;
                json_object_set_new(sources, rs->in->name, json_string("ok"));
                continue;
            }
            if (!json_is_array(st) || json_array_size(st) != 2 ||
                !json_is_integer(json_array_get(st, 1)) ||
                json_integer_value(json_array_get(st, 1)) < 0 ||
                json_integer_value(json_array_get(st, 1)) >= LLMOPS_TRACKING_MAX_RESULTS ||
                !(json_is_null(json_array_get(st, 0)) || json_is_string(json_array_get(st, 0)))) {
                resp_error(r, API_VALIDATION_FAILED, json_pack("{s:s}", "field", "page_token"),
                           "page_token is not one this search gave (instance %s)", rs->in->name);
                goto out;
            }
            rs->token = json_incref(json_array_get(st, 0));
            rs->offset = json_integer_value(json_array_get(st, 1));
        }
        long long want = rs->offset + max;
        json_t *input = json_pack(
            "{s:O,s:O,s:O,s:I}", "experiment_ids", rs->ext, "filter", clauses, "order_by", order,
            "max_results",
            (json_int_t)(want > LLMOPS_TRACKING_MAX_RESULTS ? LLMOPS_TRACKING_MAX_RESULTS : want));
        if (lc)
            json_object_set(input, "lifecycle", lc);
        if (json_is_string(rs->token))
            json_object_set(input, "page_token", rs->token);
        json_t *res;
        struct llmops_error err;
        int rc = track_call(r->app, rs->in, "search_runs", input, &res, &err);
        json_decref(input);
        if (rc < 0 && engine_http_source_down(&err) && nsrc > 1) {
            rs->down = 1;
            json_object_set_new(sources, rs->in->name, json_string("unavailable"));
            continue;
        }
        if (rc < 0) {
            track_error(r, rs->in, "search_runs", &err);
            goto out;
        }
        json_t *runs = json_object_get(res, "runs");
        rs->fetched = json_array_size(runs);
        rs->cands = json_array();
        for (size_t x = (size_t)rs->offset; x < rs->fetched; x++)
            json_array_append(rs->cands, json_array_get(runs, x));
        rs->next = json_incref(json_object_get(res, "next_page_token"));
        rs->more = rs->next != NULL;
        json_decref(res);
        json_object_set_new(sources, rs->in->name, json_string("ok"));
        up++;
    }
    if (nsrc > 1 && up == 0 && json_object_size(sources) == nsrc) {
        int all_down = 1;
        for (size_t k = 0; k < nsrc; k++)
            all_down &= src[k].down || src[k].done;
        if (all_down) {
            resp_error(r, API_TOOL_UNAVAILABLE, json_pack("{s:O}", "sources", sources),
                       "no instance holding these experiments answered");
            goto out;
        }
    }
    /* the merge, in the search's order: a source that has more beyond its candidates bounds
     * it (nothing that sorts after its last candidate may come before it) */
    list = json_array();
    while ((long long)json_array_size(list) < max) {
        int best = -1;
        for (size_t k = 0; k < nsrc; k++) {
            struct run_source *rs = &src[k];
            if (!rs->cands || rs->used == json_array_size(rs->cands))
                continue;
            if (best < 0 || run_order(json_array_get(rs->cands, rs->used),
                                      json_array_get(src[best].cands, src[best].used), order) < 0)
                best = (int)k;
        }
        int blocked = 0;
        for (size_t k = 0; k < nsrc; k++)
            if (src[k].cands && src[k].more && src[k].used == json_array_size(src[k].cands))
                blocked = 1;
        if (best < 0 || blocked)
            break;
        struct run_source *rs = &src[best];
        json_t *run = json_array_get(rs->cands, rs->used++);
        json_t *one = json_pack("[O]", run);
        json_t *rids = ids_for(r, "run", rs->env, rs->in, one, "external_id");
        json_t *xids = rids ? ids_for(r, "exp", rs->env, rs->in, one, "experiment_id") : NULL;
        json_decref(one);
        if (!xids) {
            json_decref(rids);
            goto out;
        }
        const char *rid = json_string_value(
            json_object_get(rids, json_string_value(json_object_get(run, "external_id")) ?: ""));
        const char *xid = json_string_value(
            json_object_get(xids, json_string_value(json_object_get(run, "experiment_id")) ?: ""));
        json_array_append_new(list, run_json(run, rid ? rid : "", xid, rs->in->name));
        json_decref(rids);
        json_decref(xids);
    }
    /* where each source stands now */
    json_t *next = json_object();
    int any = 0;
    for (size_t k = 0; k < nsrc; k++) {
        struct run_source *rs = &src[k];
        json_t *st;
        if (rs->done) {
            st = json_integer(0);
        } else if (rs->down || rs->used < json_array_size(rs->cands)) {
            st = json_pack("[O,I]", rs->token ? rs->token : json_null(),
                           (json_int_t)(rs->offset + (long long)rs->used));
            any |= !rs->down; /* a source that is down, alone, makes no next page */
        } else if (rs->next) {
            st = json_pack("[O,i]", rs->next, 0);
            any = 1;
        } else {
            st = json_integer(0);
        }
        json_object_set_new(next, rs->in->name, st);
    }
    snprintf(msg, sizeof msg, "%zu run%s", json_array_size(list),
             json_array_size(list) == 1 ? "" : "s");
    json_t *data = json_pack("{s:O,s:O}", "runs", list, "sources", sources);
    char *tok = any ? track_cursor_encode(next) : NULL;
    json_object_set_new(data, "next_page_token", tok ? json_string(tok) : json_null());
    free(tok);
    json_decref(next);
    resp_success(r, 200, msg, data);
out:
    for (size_t k = 0; k < nsrc; k++) {
        json_decref(src[k].ext);
        json_decref(src[k].cands);
        json_decref(src[k].token);
        json_decref(src[k].next);
    }
    json_decref(cursor);
    json_decref(list);
    json_decref(sources);
    json_decref(clauses);
    json_decref(order);
}

/* GET /runs/compare?run_ids=a,b,c[&history=true][&keys=k1,k2]: metrics side by side. */
void runs_compare(struct req *r)
{
    const char *ids = http_query(r, "run_ids"), *hist = http_query(r, "history");
    const char *keys_q = http_query(r, "keys");
    if (!ids || !*ids) {
        resp_error(r, API_VALIDATION_FAILED, json_pack("{s:s}", "field", "run_ids"),
                   "run_ids is required: 1-20 run ids separated by commas");
        return;
    }
    if (hist && strcmp(hist, "true") && strcmp(hist, "false")) {
        resp_error(r, API_VALIDATION_FAILED,
                   json_pack("{s:s,s:[ss]}", "field", "history", "valid", "true", "false"),
                   "history must be true or false");
        return;
    }
    int with_history = hist && strcmp(hist, "true") == 0;
    char *copy = strdup(ids);
    if (!copy) {
        resp_error(r, API_INTERNAL, NULL, "out of memory");
        return;
    }
    json_t *list = json_array(), *keys = json_object(), *histories = json_object();
    json_t *only = NULL;
    if (keys_q) {
        only = json_object();
        char *kc = strdup(keys_q), *save = NULL;
        for (char *k = kc ? strtok_r(kc, ",", &save) : NULL; k; k = strtok_r(NULL, ",", &save))
            json_object_set_new(only, k, json_true());
        free(kc);
    }
    char *save = NULL;
    int n = 0;
    for (char *id = strtok_r(copy, ",", &save); id; id = strtok_r(NULL, ",", &save)) {
        if (++n > 20) {
            resp_error(r, API_VALIDATION_FAILED, json_pack("{s:s}", "field", "run_ids"),
                       "at most 20 run ids");
            goto out;
        }
        struct owned o;
        struct instance *in;
        if (load_object(r, "run", id, &o, &in) < 0)
            goto out;
        json_t *input = json_pack("{s:s}", "external_id", o.external_id), *run;
        struct llmops_error err;
        int rc = track_call(r->app, in, "get_run", input, &run, &err);
        json_decref(input);
        if (rc < 0) {
            track_error(r, in, "get_run", &err);
            goto out;
        }
        json_t *latest = json_object();
        size_t i;
        json_t *m;
        json_array_foreach(json_object_get(run, "metrics"), i, m)
        {
            const char *k = json_string_value(json_object_get(m, "key"));
            if (!k || (only && !json_object_get(only, k)))
                continue;
            json_object_set(latest, k, json_object_get(m, "value"));
            json_object_set_new(keys, k, json_true());
        }
        json_t *mapped = map_run(r, o.environment, in, run, o.id);
        json_decref(run);
        if (!mapped) {
            json_decref(latest);
            goto out;
        }
        json_t *row =
            json_pack("{s:s,s:O?,s:O?,s:O?,s:s,s:O?,s:o}", "id", o.id, "name",
                      json_object_get(mapped, "name"), "status", json_object_get(mapped, "status"),
                      "experiment_id", json_object_get(mapped, "experiment_id"), "instance",
                      in->name, "params", json_object_get(mapped, "params"), "metrics", latest);
        json_decref(mapped);
        json_array_append_new(list, row);
        if (!with_history)
            continue;
        const char *k;
        json_t *unused;
        json_object_foreach(latest, k, unused)
        {
            json_t *points = json_array();
            const char *token = NULL;
            json_t *page = NULL;
            do {
                input = json_pack("{s:s,s:s,s:i}", "external_id", o.external_id, "key", k,
                                  "max_results", LLMOPS_TRACKING_HISTORY_MAX_RESULTS);
                if (token)
                    json_object_set_new(input, "page_token", json_string(token));
                json_decref(page);
                page = NULL;
                rc = track_call(r->app, in, "get_metric_history", input, &page, &err);
                json_decref(input);
                if (rc < 0) {
                    json_decref(points);
                    track_error(r, in, "get_metric_history", &err);
                    goto out;
                }
                json_array_extend(points, json_object_get(page, "metrics"));
                token = json_string_value(json_object_get(page, "next_page_token"));
            } while (token && json_array_size(points) < 100000);
            json_decref(page);
            json_t *per = json_object_get(histories, k);
            if (!per)
                json_object_set_new(histories, k, per = json_object());
            json_object_set_new(per, o.id, points);
        }
    }
    if (n < 1) {
        resp_error(r, API_VALIDATION_FAILED, json_pack("{s:s}", "field", "run_ids"),
                   "run_ids is required: 1-20 run ids separated by commas");
        goto out;
    }
    json_t *keylist = json_array();
    const char *k;
    json_t *unused;
    json_object_foreach(keys, k, unused) json_array_append_new(keylist, json_string(k));
    char msg[64];
    snprintf(msg, sizeof msg, "%d runs compared", n);
    json_t *data = json_pack("{s:O,s:o}", "runs", list, "metric_keys", keylist);
    if (with_history)
        json_object_set(data, "histories", histories);
    resp_success(r, 200, msg, data);
out:
    free(copy);
    json_decref(list);
    json_decref(keys);
    json_decref(histories);
    json_decref(only);
}

/* ------------------------------------------------------------------ the generic routes' hooks
 *
 * Routes as data (core/routes.c): GET /experiments, GET and DELETE of /experiments/{id} and
 * /runs/{id}, PATCH of both, POST /experiments/{id}/runs, POST /runs/{id}/log and GET
 * /runs/{id}/metric-history
 * name their op and a generic handler of engine_http.c; tracking adds how its objects are
 * loaded, named and shown, and how a request becomes an op's input (its REST checks, the
 * log's split into batches). */

static const char *track_noun(const char *kind)
{
    return strcmp(kind, "exp") == 0 ? "experiment" : "run";
}

static json_t *track_present(struct req *r, const struct owned *o, struct instance *in, json_t *out)
{
    if (strcmp(o->kind, "exp") == 0)
        return exp_json(out, o->id, in->name);
    return map_run(r, o->environment, in, out, o->id);
}

/* A run just created: its experiment is the parent of the path. */
static json_t *track_created(struct req *r, const struct owned *o, const struct owned *parent,
                             struct instance *in, json_t *out)
{
    (void)r;
    return run_json(out, o->id, parent->id, in->name);
}

static const char *track_parent(const char *kind)
{
    return strcmp(kind, "run") == 0 ? "exp" : NULL;
}

static const char *track_done(const struct llmops_op_desc *op)
{
    if (strcmp(op->name, "set_experiment_tags") == 0)
        return "experiment tags set";
    return strcmp(op->name, "create_run") == 0 ? "run created" : "run updated";
}

/* PATCH /experiments/{id}: {tags}, 1 to the batch's most. */
static int set_tags_input(struct req *r, json_t **input)
{
    static const char *const known[] = {"tags", NULL};
    if (only_members(r, r->body, known) < 0)
        return -1;
    json_t *tags = check_tags(r, json_object_get(r->body, "tags"));
    if (!tags)
        return -1;
    if (json_object_size(tags) == 0 || json_object_size(tags) > LLMOPS_TRACKING_BATCH_MAX_TAGS) {
        json_decref(tags);
        resp_error(r, API_VALIDATION_FAILED, json_pack("{s:s}", "field", "tags"),
                   "tags must set 1-%d tags", LLMOPS_TRACKING_BATCH_MAX_TAGS);
        return -1;
    }
    *input = json_pack("{s:o}", "tags", tags);
    return 0;
}

/* POST /experiments/{id}/runs: {name?, tags?, user?, start_time_ms?}; the run's user is the
 * caller's token unless given, its start now unless given. */
static int create_run_input(struct req *r, json_t **input)
{
    static const char *const known[] = {"name", "tags", "user", "start_time_ms", NULL};
    if (only_members(r, r->body, known) < 0 ||
        check_name(r, json_object_get(r->body, "name"), 0, "name") < 0)
        return -1;
    json_t *user = json_object_get(r->body, "user"),
           *start = json_object_get(r->body, "start_time_ms");
    if ((user && (!json_is_string(user) || json_string_length(user) > 255)) ||
        (start && !json_is_integer(start))) {
        resp_error(
            r, API_VALIDATION_FAILED,
            json_pack("{s:s}", "field", user && !json_is_string(user) ? "user" : "start_time_ms"),
            "user must be a string of at most 255 bytes and start_time_ms an integer");
        return -1;
    }
    json_t *tags = check_tags(r, json_object_get(r->body, "tags"));
    if (!tags)
        return -1;
    *input = json_pack("{s:I,s:s,s:o}", "start_time_ms",
                       (json_int_t)(start ? json_integer_value(start) : util_wall_ms()), "user",
                       user ? json_string_value(user) : actor(r), "tags", tags);
    if (json_object_get(r->body, "name"))
        json_object_set(*input, "name", json_object_get(r->body, "name"));
    return 0;
}

static const char *const run_statuses[] = {"RUNNING", "FINISHED", "FAILED", "KILLED"};

/* PATCH /runs/{id}: {status?, name?, end_time_ms?}; a status other than RUNNING ends the run
 * now unless end_time_ms says when. */
static int update_run_input(struct req *r, json_t **input)
{
    static const char *const known[] = {"status", "name", "end_time_ms", NULL};
    if (only_members(r, r->body, known) < 0 ||
        check_name(r, json_object_get(r->body, "name"), 0, "name") < 0)
        return -1;
    json_t *status = json_object_get(r->body, "status"),
           *end = json_object_get(r->body, "end_time_ms");
    int known_status = 0;
    for (size_t i = 0; json_is_string(status) && i < UTIL_ARRAY_LEN(run_statuses); i++)
        if (strcmp(json_string_value(status), run_statuses[i]) == 0)
            known_status = 1;
    if (status && !known_status) {
        char q[UTIL_QUOTE_SIZE(32)];
        resp_error(r, API_VALIDATION_FAILED,
                   json_pack("{s:s,s:[ssss]}", "field", "status", "valid", "RUNNING", "FINISHED",
                             "FAILED", "KILLED"),
                   "unknown status '%s'; valid: RUNNING, FINISHED, FAILED, KILLED",
                   util_quote(q, sizeof q,
                              json_is_string(status) ? json_string_value(status) : "(not a string)",
                              32));
        return -1;
    }
    if (end && !json_is_integer(end)) {
        resp_error(r, API_VALIDATION_FAILED, json_pack("{s:s}", "field", "end_time_ms"),
                   "end_time_ms must be an integer (ms since the epoch)");
        return -1;
    }
    if (json_object_size(r->body) == 0) {
        resp_error(r, API_VALIDATION_FAILED, NULL,
                   "nothing to update: give status, name or end_time_ms");
        return -1;
    }
    *input = json_object();
    if (status)
        json_object_set(*input, "status", status);
    if (json_object_get(r->body, "name"))
        json_object_set(*input, "name", json_object_get(r->body, "name"));
    if (end)
        json_object_set(*input, "end_time_ms", end);
    else if (status && strcmp(json_string_value(status), "RUNNING") != 0)
        json_object_set_new(*input, "end_time_ms", json_integer(util_wall_ms()));
    return 0;
}

/* POST /runs/{id}/log: the body split into batches within the tool's limits (before the run
 * is loaded: {now_ms, batches}); then points without timestamp_ms get the time this body was
 * first sent to the run, so a resend (or copies sent at once) makes the same points, which
 * the tool stores once. */
static int log_input(struct req *r, const struct owned *o, json_t **input)
{
    char msg[300], field[300];
    if (!o) {
        int64_t now_ms = util_wall_ms();
        json_t *batches = track_split_log(r->body, now_ms, msg, sizeof msg, field, sizeof field);
        if (!batches) {
            resp_error(r, API_VALIDATION_FAILED, json_pack("{s:s}", "field", field), "%s", msg);
            return -1;
        }
        *input = json_pack("{s:I,s:o}", "now_ms", (json_int_t)now_ms, "batches", batches);
        return 0;
    }
    int64_t now_ms = json_integer_value(json_object_get(*input, "now_ms"));
    json_t *batches = json_incref(json_object_get(*input, "batches"));
    json_decref(*input);
    *input = track_log_rebatch(r, o->id, batches, now_ms);
    return *input ? 0 : -1;
}

/* GET /experiments: max_results, and name, name_prefix, lifecycle as given. */
static int list_input(struct req *r, json_t **input)
{
    long long max;
    const char *lifecycle = http_query(r, "lifecycle");
    if (parse_max_results(r, LLMOPS_TRACKING_MAX_RESULTS, 100, &max) < 0 ||
        check_lifecycle(r, lifecycle) < 0)
        return -1;
    static const char *const pass[] = {"name", "name_prefix", "lifecycle"};
    *input = json_pack("{s:I}", "max_results", (json_int_t)max);
    for (size_t i = 0; i < UTIL_ARRAY_LEN(pass); i++)
        if (http_query(r, pass[i]))
            json_object_set_new(*input, pass[i], json_string(http_query(r, pass[i])));
    return 0;
}

/* A page of experiments an instance listed, with their platform ids (adopting the ones
 * made outside the platform). */
static json_t *track_items(struct req *r, const char *env, struct instance *in, json_t *list)
{
    json_t *ids = ids_for(r, "exp", env, in, list, "external_id");
    if (!ids)
        return NULL;
    json_t *res = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e)
    {
        const char *pid = json_string_value(
            json_object_get(ids, json_string_value(json_object_get(e, "external_id")) ?: ""));
        json_array_append_new(res, exp_json(e, pid ? pid : "", in->name));
    }
    json_decref(ids);
    return res;
}

/* GET /runs/{id}/metric-history?key=K[&max_results][&page_token]. */
static int history_input(struct req *r, json_t **input)
{
    long long max;
    const char *key = http_query(r, "key");
    if (!key || !*key || strlen(key) > LLMOPS_TRACKING_KEY_MAX) {
        resp_error(r, API_VALIDATION_FAILED, json_pack("{s:s}", "field", "key"),
                   "key (the metric) is required: 1-%d bytes", LLMOPS_TRACKING_KEY_MAX);
        return -1;
    }
    if (parse_max_results(r, LLMOPS_TRACKING_HISTORY_MAX_RESULTS, 1000, &max) < 0)
        return -1;
    *input = json_pack("{s:s,s:I}", "key", key, "max_results", (json_int_t)max);
    if (http_query(r, "page_token"))
        json_object_set_new(*input, "page_token", json_string(http_query(r, "page_token")));
    return 0;
}

static int track_input(struct req *r, const struct llmops_op_desc *op, const struct owned *o,
                       json_t **input)
{
    const char *n = op->name;
    if (strcmp(n, "log_batch") == 0)
        return log_input(r, o, input);
    if (o) {
        if (strcmp(n, "create_run") == 0)
            json_object_set_new(*input, "experiment_id", json_string(o->external_id));
        return 0;
    }
    if (strcmp(n, "set_experiment_tags") == 0)
        return set_tags_input(r, input);
    if (strcmp(n, "create_run") == 0)
        return create_run_input(r, input);
    if (strcmp(n, "update_run") == 0)
        return update_run_input(r, input);
    if (strcmp(n, "get_metric_history") == 0)
        return history_input(r, input);
    if (strcmp(n, "search_experiments") == 0)
        return list_input(r, input);
    resp_error(r, API_INTERNAL, NULL, "%s has no REST input", n);
    return -1;
}

/* A log_batch that failed after `done` batches: earlier ones are stored, and sending the
 * whole body again is safe (replays add nothing). */
static void track_partial(struct req *r, const struct instance *in, const struct llmops_op_desc *op,
                          const struct llmops_error *err, size_t done, size_t total)
{
    enum api_error e = (enum api_error)plugin_status_to_api(err->code);
    resp_error(r, e,
               json_pack("{s:s,s:s,s:b,s:i,s:i}", "instance", in->name, "operation", op->name,
                         "retryable", err->retryable, "batches_done", (int)done, "batches",
                         (int)total),
               "%s (instance %s; %zu of %zu batches stored; sending the same body again is "
               "safe)",
               err->message, in->name, done, total);
}

static json_t *track_answer(struct req *r, const struct llmops_op_desc *op, const struct owned *o,
                            json_t *input, json_t *out, char *msg, size_t msgsize)
{
    (void)r;
    if (strcmp(op->name, "get_metric_history") == 0) {
        const char *key = json_string_value(json_object_get(input, "key"));
        json_t *pts = json_object_get(out, "metrics");
        snprintf(msg, msgsize, "%zu points of %s", json_array_size(pts), key);
        return json_pack("{s:s,s:s,s:o,s:O?}", "id", o->id, "key", key, "metrics",
                         pts ? json_incref(pts) : json_array(), "next_page_token",
                         json_object_get(out, "next_page_token"));
    }
    size_t i, nm = 0, np = 0, nt = 0;
    json_t *b;
    json_array_foreach(input, i, b)
    {
        nm += json_array_size(json_object_get(b, "metrics"));
        np += json_object_size(json_object_get(b, "params"));
        nt += json_object_size(json_object_get(b, "tags"));
    }
    snprintf(msg, msgsize, "logged %zu metric points, %zu params, %zu tags", nm, np, nt);
    return json_pack("{s:s,s:i,s:i,s:i,s:i}", "id", o->id, "metrics", (int)nm, "params", (int)np,
                     "tags", (int)nt, "batches", (int)json_array_size(input));
}

const struct engine_http_hooks tracking_http_hooks = {
    .load = load_object,
    .error = track_error,
    .noun = track_noun,
    .present = track_present,
    .input = track_input,
    .parent = track_parent,
    .done = track_done,
    .partial = track_partial,
    .answer = track_answer,
    .items = track_items,
    .created = track_created,
};
