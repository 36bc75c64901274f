/* The request pipeline: parse, route, authenticate, validate, run the handler. */
#include "app.h"

#include "auth.h"
#include "build-config.h"
#include "dispatch.h"
#include "log.h"
#include "metrics.h"
#include "router.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

static void on_notify(const char *channel, const char *payload, void *ud)
{
    struct app *app = ud;
    if (strcmp(channel, APP_NOTIFY_CHANNEL) != 0)
        return; /* the jobs process's llmops_outbox: only wakes it up */
    if (strcmp(payload, "api_tokens") == 0)
        auth_cache_flush(app);
    else if (strcmp(payload, "gpu_types") == 0)
        gpu_cache_flush(app);
    else if (strcmp(payload, "flag_overrides") == 0)
        app->flags.valid = 0;
    else
        app_flush_caches(app);
}

static void on_connected(void *ud)
{
    /* Notifications may have been missed while the connection was down. */
    app_flush_caches(ud);
}

void app_init(struct app *app, struct llmops_conf *conf)
{
    memset(app, 0, sizeof *app);
    app->conf = conf;
    app->started_wall = util_wall_s();
    app->started_ms = util_now_ms();
    db_init(&app->db, conf->db_conninfo, (int)conf->db_connect_timeout_ms,
            (int)conf->db_query_timeout_ms, "llm-opsd");
    app->db.listen_channel = APP_NOTIFY_CHANNEL;
    app->db.log_unavailable = 1; /* clients are told less than the log */
    app->db.on_notify = on_notify;
    app->db.on_connected = on_connected;
    app->db.ud = app;
    struct conf_errors errs = {0};
    plugins_load(&app->plugins, conf, &app->db, 1, &errs); /* failures are logged per instance */
    conf_errors_free(&errs);
}

const struct flag_cache *app_load_flags(struct app *app, struct db_error *err)
{
    if (!app->flags.valid && flags_load(&app->flags, app->conf, &app->db, err) < 0)
        return NULL;
    return &app->flags;
}

const struct flag_cache *app_flags(struct app *app, struct req *r)
{
    struct db_error err;
    const struct flag_cache *fc = app_load_flags(app, &err);
    if (!fc)
        resp_error(r, API_DATABASE_UNAVAILABLE, NULL, "cannot read the flags: %s", err.message);
    return fc;
}

void app_flush_caches(struct app *app)
{
    auth_cache_flush(app);
    gpu_cache_flush(app);
    app->flags.valid = 0;
}

void app_changed(struct app *app, enum metrics_change what)
{
    metrics_change_bump(what);
    /* this worker at once, also when there is no shared file */
    if (what == METRICS_CHANGE_TOKENS)
        auth_cache_flush(app);
    else if (what == METRICS_CHANGE_GPU_TYPES)
        gpu_cache_flush(app);
    else
        app->flags.valid = 0;
}

/* Drops each cache whose change counter moved since the last request: one load of a shared
 * cache line that is written only when something changed. The total is read first and bumped
 * last, so a kind's counter is never older than the total that was seen. */
static void follow_changes(struct app *app)
{
    uint64_t total = metrics_change_total();
    if (total == app->seen_total)
        return;
    app->seen_total = total;
    for (int k = 0; k < METRICS_CHANGE_KINDS; k++) {
        uint64_t n = metrics_change_count((enum metrics_change)k);
        if (n == app->seen_changes[k])
            continue;
        app->seen_changes[k] = n;
        if (k == METRICS_CHANGE_TOKENS)
            auth_cache_flush(app);
        else if (k == METRICS_CHANGE_GPU_TYPES)
            gpu_cache_flush(app);
        else
            app->flags.valid = 0;
    }
}

void app_fini(struct app *app)
{
    plugins_unload(&app->plugins);
    auth_cache_flush(app);
    gpu_cache_flush(app);
    db_close(&app->db);
}

/* Only the parameters a route declares are accepted; env is checked against the list. */
static int check_query(struct req *r)
{
    const char *const *allowed = r->route->query;
    for (int i = 0; i < r->n_query; i++) {
        int ok = 0;
        for (const char *const *a = allowed; a && *a; a++)
            if (strcmp(*a, r->query[i].name) == 0)
                ok = 1;
        if (!ok) {
            char list[128] = "";
            size_t used = 0;
            for (const char *const *a = allowed; a && *a; a++) {
                int w = snprintf(list + used, sizeof list - used, "%s%s", used ? ", " : "", *a);
                if (w > 0 && (size_t)w < sizeof list - used)
                    used += (size_t)w;
            }
            char q[UTIL_QUOTE_SIZE(64)];
            resp_error(r, API_VALIDATION_FAILED, json_pack("{s:s}", "field", r->query[i].name),
                       "unknown query parameter '%s'; this route takes: %s",
                       util_quote(q, sizeof q, r->query[i].name, 64), used ? list : "none");
            return -1;
        }
    }
    for (const char *const *a = allowed; a && *a; a++) {
        if (strcmp(*a, "env") != 0)
            continue;
        const struct llmops_conf *c = r->app->conf;
        const char *env = http_query(r, "env");
        if (!env)
            env = c->default_env;
        r->env_index = conf_env_index(c, env);
        if (r->env_index < 0) {
            json_t *valid = json_array();
            for (int i = 0; i < c->n_envs; i++)
                json_array_append_new(valid, json_string(c->envs[i]));
            char list[600];
            conf_env_list(c, list, sizeof list);
            char q[UTIL_QUOTE_SIZE(64)];
            resp_error(
                r, API_VALIDATION_FAILED, json_pack("{s:s,s:o}", "field", "env", "valid", valid),
                "unknown environment '%s'; valid: %s", util_quote(q, sizeof q, env, 64), list);
            return -1;
        }
        r->env = c->envs[r->env_index];
    }
    return 0;
}

static int check_database(struct req *r)
{
    struct db_error err;
    if (db_ensure(&r->app->db, &err) != DB_OK) {
        resp_error(r, API_DATABASE_UNAVAILABLE, NULL, "the database is unavailable");
        return -1;
    }
    int v = db_schema_version(&r->app->db, LLMOPS_SCHEMA_VERSION);
    if (v != LLMOPS_SCHEMA_VERSION) {
        resp_error(r, API_DATABASE_UNAVAILABLE, NULL,
                   "the database schema is at version %d; this llm-opsd needs %d (run llm-opsctl "
                   "migrate)",
                   v, LLMOPS_SCHEMA_VERSION);
        return -1;
    }
    return 0;
}

/* The series of each (route, method, status class) kept per process, so the hot path does not
 * render, hash and compare label sets (index APP_ROUTES_KEPT: unmatched). */
#define APP_ROUTES_KEPT 128
static struct metrics_ref kept_requests[APP_ROUTES_KEPT + 1][7][5];
static struct metrics_ref kept_durations[APP_ROUTES_KEPT + 1][7];

void app_count_request(const struct req *r, long long duration_us)
{
    if (!metrics_enabled())
        return;
    /* Route patterns and methods come from the route table (bounded), never from the raw
     * request; anything else is "unmatched" / "other". */
    static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "other"};
    size_t mi = UTIL_ARRAY_LEN(methods) - 1;
    for (size_t i = 0; r->in->method && i + 1 < UTIL_ARRAY_LEN(methods); i++)
        if (strcmp(r->in->method, methods[i]) == 0) {
            mi = i;
            break;
        }
    const char *m = methods[mi];
    const char *route = r->route ? r->route->pattern : "unmatched";
    int cls = r->resp.status / 100;
    if (cls < 1 || cls > 5)
        cls = 5;
    size_t n;
    const struct route *t = route_table(&n);
    size_t ri = APP_ROUTES_KEPT;
    if (r->route) {
        ri = r->route >= t && r->route < t + n ? (size_t)(r->route - t) : APP_ROUTES_KEPT + 1;
        if (ri >= APP_ROUTES_KEPT)
            ri = APP_ROUTES_KEPT + 1; /* not kept: looked up each time */
    }
    struct metrics_ref scratch[2] = {{0}, {0}};
    struct metrics_ref *req = ri <= APP_ROUTES_KEPT ? &kept_requests[ri][mi][cls - 1] : &scratch[0];
    struct metrics_ref *dur = ri <= APP_ROUTES_KEPT ? &kept_durations[ri][mi] : &scratch[1];
    char labels[METRICS_LABELS_MAX];
    const char *l = NULL;
    if (!metrics_ref_ready(req)) {
        snprintf(labels, sizeof labels, "route=\"%s\",method=\"%s\",code=\"%dxx\"", route, m, cls);
        l = labels;
    }
    metrics_ref_add(req, "llmops_http_requests_total", l, 1);
    l = NULL;
    if (!metrics_ref_ready(dur)) {
        snprintf(labels, sizeof labels, "route=\"%s\",method=\"%s\"", route, m);
        l = labels;
    }
    metrics_ref_observe(dur, "llmops_http_request_duration_seconds", l, (double)duration_us / 1e6);
}

void app_after(struct app *app)
{
    if (dispatch_pending(app))
        dispatch_run_pending(app);
}

void app_handle(struct app *app, const struct http_input *in, struct req *r)
{
    app_serve(app, in, r);
    app_after(app);
}

void app_serve(struct app *app, const struct http_input *in, struct req *r)
{
    memset(r, 0, sizeof *r);
    r->app = app;
    r->in = in;
    r->start_us = util_now_us();
    if (in->request_id && http_valid_request_id(in->request_id))
        snprintf(r->request_id, sizeof r->request_id, "%s", in->request_id);
    else
        util_request_id(r->request_id);
    log_set_request(r->request_id);

    /* Read-your-writes: a worker of this host that changed tokens, GPU types or flags bumped
     * a shared change counter after its commit and before its answer, so a request that
     * follows that answer finds the counter moved here and reads the change from PostgreSQL.
     * Changes made elsewhere (another host, llm-opsctl, psql) arrive as notifications, looked
     * for on every request (one recvfrom(2)): those are seen once PostgreSQL has delivered
     * them, normally within milliseconds, promised within a second (doc/api.md). */
    follow_changes(app);
    db_poll(&app->db);
    dispatch_tick(app);

    if (metrics_try_route(r))
        return;
    if (http_parse_path(r) < 0)
        return;
    char allow[128];
    const char *method = in->method ? in->method : "GET";
    char qm[UTIL_QUOTE_SIZE(16)], qu[UTIL_QUOTE_SIZE(200)];
    switch (route_match(r, method, allow, sizeof allow)) {
    case ROUTE_NO_PATH:
        resp_error(r, API_NOT_FOUND, NULL, "no route for %s %s",
                   util_quote(qm, sizeof qm, method, 16),
                   util_quote(qu, sizeof qu, in->uri ? in->uri : "/", 200));
        return;
    case ROUTE_NO_METHOD:
        resp_header(r, "Allow: %s", allow);
        resp_error(r, API_METHOD_NOT_ALLOWED, json_pack("{s:s}", "allow", allow),
                   "method %s is not allowed here; allowed: %s",
                   util_quote(qm, sizeof qm, method, 16), allow);
        return;
    case ROUTE_FOUND:
        break;
    }
    if (r->route->min_role != ROLE_PUBLIC && auth_check(r) < 0)
        return;
    if (http_parse_query(r) < 0 || check_query(r) < 0)
        return;
    if ((r->route->flags & ROUTE_JSON_BODY) &&
        http_read_json_body(r, app->conf->max_body_bytes) < 0)
        return;
    if ((r->route->flags & ROUTE_DB) && check_database(r) < 0)
        return;
    r->route->handler(r);
}
