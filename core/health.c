#include "app.h"
#include "build-config.h"
#include "handlers.h"
#include "util.h"

#include <unistd.h>

/* Cheap: one SELECT 1 with a deadline of at most a second, no tool calls. */
void health_get(struct req *r)
{
    struct app *app = r->app;
    struct db_error err = {0};
    int saved = app->db.query_timeout_ms;
    if (app->db.query_timeout_ms > 1000)
        app->db.query_timeout_ms = 1000;
    PGresult *res = db_exec(&app->db, "SELECT 1", 0, NULL, &err);
    app->db.query_timeout_ms = saved;
    int up = res != NULL;
    if (res)
        PQclear(res);
    int schema = up ? db_schema_version(&app->db, LLMOPS_SCHEMA_VERSION) : -1;
    const char *state = !up ? "down" : schema != LLMOPS_SCHEMA_VERSION ? "schema_mismatch" : "up";
    json_t *data = json_pack("{s:s,s:s,s:I,s:i,s:I,s:i}", "version", LLMOPS_VERSION, "database",
                             state, "schema_version", (json_int_t)schema, "schema_version_needed",
                             LLMOPS_SCHEMA_VERSION, "uptime_seconds",
                             (json_int_t)(util_wall_s() - app->started_wall), "pid", (int)getpid());
    if (!up) {
        /* Public: no libpq text (socket path, host, port, user); db.c logged it. */
        json_t *extra = json_pack("{s:o}", "health", data);
        resp_error(r, API_DATABASE_UNAVAILABLE, extra, "the database is unavailable");
        return;
    }
    if (schema != LLMOPS_SCHEMA_VERSION) {
        json_t *extra = json_pack("{s:o}", "health", data);
        resp_error(r, API_DATABASE_UNAVAILABLE, extra,
                   "the database schema is at version %d; this llm-opsd needs %d (run llm-opsctl "
                   "migrate)",
                   schema, LLMOPS_SCHEMA_VERSION);
        return;
    }
    resp_success(r, 200, "llm-ops is healthy", data);
}
