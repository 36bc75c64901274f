/* GET [metrics] path: the Prometheus text format of the shared counters, plus the gauges read
 * at scrape time (build, start, database, outbox, deployments). */
#include "app.h"
#include "auth.h"
#include "build-config.h"
#include "metrics.h"
#include "router.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void metrics_get(struct req *r);

static struct route metrics_route_def = {
    "GET", "/llm-ops/metrics", metrics_get, ROLE_READER, 0, NULL, NULL, 0};

/* The scrape-time series. */
static char *scrape_extra(struct app *app)
{
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    if (!b)
        return NULL;
        /* grows: the deployments' series have a line per (environment, instance, state) */
#define PUT(...)                                                                                   \
    do {                                                                                           \
        int w_ = snprintf(b + n, cap - n, __VA_ARGS__);                                            \
        if (w_ > 0 && (size_t)w_ >= cap - n) {                                                     \
            char *nb_ = realloc(b, cap * 2 + (size_t)w_);                                          \
            if (nb_) {                                                                             \
                b = nb_;                                                                           \
                cap = cap * 2 + (size_t)w_;                                                        \
                w_ = snprintf(b + n, cap - n, __VA_ARGS__);                                        \
            }                                                                                      \
        }                                                                                          \
        if (w_ > 0 && (size_t)w_ < cap - n)                                                        \
            n += (size_t)w_;                                                                       \
    } while (0)
    PUT("# HELP llmops_build_info The running build: version and plugin ABI.\n"
        "# TYPE llmops_build_info gauge\n"
        "llmops_build_info{version=\"%s\",abi=\"%d.%d\"} 1\n",
        LLMOPS_VERSION, LLMOPS_PLUGIN_ABI_MAJOR, LLMOPS_PLUGIN_ABI_MINOR);
    PUT("# HELP llmops_start_time_seconds Unix time of the last full restart (the metrics file "
        "was made).\n"
        "# TYPE llmops_start_time_seconds gauge\n"
        "llmops_start_time_seconds %lld\n",
        (long long)metrics_created());
    struct db_error err;
    int up = db_ensure(&app->db, &err) == DB_OK &&
             db_schema_version(&app->db, LLMOPS_SCHEMA_VERSION) == LLMOPS_SCHEMA_VERSION;
    PUT("# HELP llmops_database_up 1 when PostgreSQL answers at the schema version this build "
        "needs.\n"
        "# TYPE llmops_database_up gauge\n"
        "llmops_database_up %d\n",
        up);
    if (up) {
        PGresult *res = db_exec(
            &app->db,
            "SELECT count(*) FILTER (WHERE state = 'pending'), count(*) FILTER (WHERE state ="
            " 'dead'), coalesce(extract(epoch FROM now() - min(created_at) FILTER (WHERE state ="
            " 'pending')), 0) FROM outbox WHERE state <> 'done'",
            0, NULL, &err);
        if (res && PQntuples(res) == 1) {
            PUT("# HELP llmops_outbox_rows Outbox rows by state.\n"
                "# TYPE llmops_outbox_rows gauge\n"
                "llmops_outbox_rows{state=\"pending\"} %s\n"
                "llmops_outbox_rows{state=\"dead\"} %s\n"
                "# HELP llmops_outbox_oldest_pending_age_seconds Age of the oldest pending "
                "outbox row.\n"
                "# TYPE llmops_outbox_oldest_pending_age_seconds gauge\n"
                "llmops_outbox_oldest_pending_age_seconds %.3f\n",
                PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1), atof(PQgetvalue(res, 0, 2)));
        }
        if (res)
            PQclear(res);
        /* the live deployments by environment, instance and state: every state of a pair
         * that has one, 0 included, so a state that empties reads 0 rather than vanishing.
         * The instance is the label `plugin` (as in llmops_tool_up): Prometheus owns
         * `instance`, the scraped target, and would rename ours to exported_instance. */
        res = db_exec(&app->db,
                      "SELECT d.environment, d.instance, s.state,"
                      " count(*) FILTER (WHERE d.state = s.state) FROM deployments d"
                      " CROSS JOIN (VALUES ('progressing'), ('ready'), ('failed'), ('deleting'))"
                      " s (state) WHERE d.state <> 'deleted' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
                      0, NULL, &err);
        if (res) {
            PUT("# HELP llmops_deployments Live deployments by environment, plugin instance and "
                "state.\n"
                "# TYPE llmops_deployments gauge\n");
            for (int i = 0; i < PQntuples(res); i++) {
                char e[130], in[130];
                metrics_escape(e, sizeof e, PQgetvalue(res, i, 0));
                metrics_escape(in, sizeof in, PQgetvalue(res, i, 1));
                PUT("llmops_deployments{environment=\"%s\",plugin=\"%s\",state=\"%s\"} %s\n", e, in,
                    PQgetvalue(res, i, 2), PQgetvalue(res, i, 3));
            }
            PQclear(res);
        }
        /* how long the oldest progressing deployment has been at it: since the last change
         * that started a rollout (create, scale, promote, move), else since its create */
        res = db_exec(&app->db,
                      "SELECT coalesce(extract(epoch FROM now() - min(coalesce((SELECT max(a.at)"
                      " FROM deployment_audit a WHERE a.deployment_id = d.id AND a.action IN"
                      " ('create', 'scale', 'promote', 'move')), d.created_at))), 0)"
                      " FROM deployments d WHERE d.state = 'progressing'",
                      0, NULL, &err);
        if (res && PQntuples(res) == 1)
            PUT("# HELP llmops_deployments_oldest_progressing_age_seconds Time the oldest "
                "progressing deployment has been rolling out.\n"
                "# TYPE llmops_deployments_oldest_progressing_age_seconds gauge\n"
                "llmops_deployments_oldest_progressing_age_seconds %.3f\n",
                atof(PQgetvalue(res, 0, 0)));
        if (res)
            PQclear(res);
    }
#undef PUT
    return b;
}

static void metrics_get(struct req *r)
{
    char *extra = scrape_extra(r->app);
    size_t len = 0;
    char *text = metrics_render(extra, &len);
    free(extra);
    if (!text) {
        resp_error(r, API_INTERNAL, NULL, "out of memory");
        return;
    }
    r->resp.status = 200;
    r->resp.body = text;
    r->resp.body_len = len;
    r->resp.body_owned = 1;
    r->resp.content_type = "text/plain; version=0.0.4; charset=utf-8";
}

int metrics_try_route(struct req *r)
{
    const struct llmops_conf *c = r->app->conf;
    if (!c->metrics_enabled || !c->metrics_path)
        return 0;
    const char *uri = r->in->uri ? r->in->uri : "/";
    size_t pl = strcspn(uri, "?");
    if (strlen(c->metrics_path) != pl || strncmp(uri, c->metrics_path, pl) != 0)
        return 0;
    metrics_route_def.pattern = c->metrics_path;
    r->route = &metrics_route_def;
    const char *method = r->in->method ? r->in->method : "GET";
    if (strcmp(method, "GET") != 0) {
        resp_header(r, "Allow: GET");
        char q[UTIL_QUOTE_SIZE(16)];
        resp_error(r, API_METHOD_NOT_ALLOWED, json_pack("{s:s}", "allow", "GET"),
                   "method %s is not allowed here; allowed: GET",
                   util_quote(q, sizeof q, method, 16));
        return 1;
    }
    char why[200];
    const char *addr = r->in->remote_addr;
    if (util_cidr_match(c->metrics_allow, addr ? addr : "", why, sizeof why) != 1) {
        char q[UTIL_QUOTE_SIZE(64)];
        resp_error(r, API_FORBIDDEN, json_pack("{s:s}", "field", "remote_addr"),
                   "metrics are not served to %s ([metrics] allow)",
                   util_quote(q, sizeof q, addr ? addr : "an unknown address", 64));
        return 1;
    }
    if (c->metrics_require_token && auth_check(r) < 0)
        return 1;
    metrics_get(r);
    return 1;
}
