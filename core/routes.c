/* The API: every route of /llm-ops/v1. doc/openapi.json must list exactly these (a test
 * checks it). */
#include "engine_http.h"
#include "handlers.h"
#include "router.h"
#include "util.h"

static const char *const q_env[] = {"env", NULL};
static const char *const q_audit[] = {"env", "limit", NULL};
static const char *const q_exp_list[] = {"env",       "instance",    "name",       "name_prefix",
                                         "lifecycle", "max_results", "page_token", NULL};
static const char *const q_history[] = {"key", "max_results", "page_token", NULL};
static const char *const q_compare[] = {"run_ids", "keys", "history", NULL};
static const char *const q_jobs[] = {"env", "status", "limit", "after", NULL};
static const char *const q_outbox[] = {"env", "state", "limit", "after", NULL};
static const char *const q_operations[] = {"env", "state", "limit", "after", NULL};
static const char *const q_alerts[] = {"status", "fingerprint", "limit", NULL};
static const char *const q_deployments[] = {"env", "state", "limit", "after", NULL};
static const char *const q_predict[] = {"path", NULL};

static const struct route routes[] = {
    {"GET", "/llm-ops/v1/health", health_get, ROLE_PUBLIC, 0, NULL, NULL, 0},
    {"GET", "/llm-ops/v1/gpu-types", gpu_list, ROLE_READER, ROUTE_DB, q_env, NULL, 0},
    {"POST", "/llm-ops/v1/gpu-types", gpu_create, ROLE_OPERATOR, ROUTE_DB | ROUTE_JSON_BODY, q_env,
     NULL, 0},
    {"GET", "/llm-ops/v1/gpu-types/{name}", gpu_get, ROLE_READER, ROUTE_DB, q_env, NULL, 0},
    {"PUT", "/llm-ops/v1/gpu-types/{name}", gpu_replace, ROLE_OPERATOR, ROUTE_DB | ROUTE_JSON_BODY,
     q_env, NULL, 0},
    {"PATCH", "/llm-ops/v1/gpu-types/{name}", gpu_update, ROLE_OPERATOR, ROUTE_DB | ROUTE_JSON_BODY,
     q_env, NULL, 0},
    {"DELETE", "/llm-ops/v1/gpu-types/{name}", gpu_delete, ROLE_OPERATOR, ROUTE_DB, q_env, NULL, 0},
    {"GET", "/llm-ops/v1/flags", flags_list, ROLE_READER, ROUTE_DB, q_env, NULL, 0},
    {"GET", "/llm-ops/v1/flags/audit", flags_audit, ROLE_READER, ROUTE_DB, q_audit, NULL, 0},
    {"PUT", "/llm-ops/v1/flags/{env}/{category}", flags_put, ROLE_OPERATOR,
     ROUTE_DB | ROUTE_JSON_BODY, NULL, NULL, 0},
    {"POST", "/llm-ops/v1/flags/{env}/{category}/rollback", flags_rollback, ROLE_OPERATOR,
     ROUTE_DB | ROUTE_JSON_BODY, NULL, NULL, 0},
    {"GET", "/llm-ops/v1/integrations", integrations_list, ROLE_READER, ROUTE_DB, NULL, NULL, 0},
    {"GET", "/llm-ops/v1/integrations/{name}/health", integration_health, ROLE_READER, 0, NULL,
     NULL, 0},
    {"GET", "/llm-ops/v1/experiments", experiments_list, ROLE_READER, ROUTE_DB, q_exp_list, NULL,
     0},
    {"POST", "/llm-ops/v1/experiments", experiments_create, ROLE_OPERATOR,
     ROUTE_DB | ROUTE_JSON_BODY, q_env, NULL, 0},
    {"GET", "/llm-ops/v1/experiments/{id}", engine_http_read, ROLE_READER, ROUTE_DB, NULL,
     "get_experiment", LLMOPS_CATEGORY_EXPERIMENT_TRACKING},
    {"PATCH", "/llm-ops/v1/experiments/{id}", experiments_update, ROLE_OPERATOR,
     ROUTE_DB | ROUTE_JSON_BODY, NULL, NULL, 0},
    {"DELETE", "/llm-ops/v1/experiments/{id}", engine_http_delete, ROLE_OPERATOR, ROUTE_DB, NULL,
     "delete_experiment", LLMOPS_CATEGORY_EXPERIMENT_TRACKING},
    {"POST", "/llm-ops/v1/experiments/{id}/runs", runs_create, ROLE_OPERATOR,
     ROUTE_DB | ROUTE_JSON_BODY, NULL, NULL, 0},
    {"POST", "/llm-ops/v1/runs/search", runs_search, ROLE_READER, ROUTE_DB | ROUTE_JSON_BODY, NULL,
     NULL, 0},
    {"GET", "/llm-ops/v1/runs/compare", runs_compare, ROLE_READER, ROUTE_DB, q_compare, NULL, 0},
    {"GET", "/llm-ops/v1/runs/{id}", engine_http_read, ROLE_READER, ROUTE_DB, NULL, "get_run",
     LLMOPS_CATEGORY_EXPERIMENT_TRACKING},
    {"PATCH", "/llm-ops/v1/runs/{id}", runs_update, ROLE_OPERATOR, ROUTE_DB | ROUTE_JSON_BODY, NULL,
     NULL, 0},
    {"DELETE", "/llm-ops/v1/runs/{id}", engine_http_delete, ROLE_OPERATOR, ROUTE_DB, NULL,
     "delete_run", LLMOPS_CATEGORY_EXPERIMENT_TRACKING},
    {"POST", "/llm-ops/v1/runs/{id}/log", runs_log, ROLE_OPERATOR, ROUTE_DB | ROUTE_JSON_BODY, NULL,
     NULL, 0},
    {"GET", "/llm-ops/v1/runs/{id}/metric-history", runs_metric_history, ROLE_READER, ROUTE_DB,
     q_history, NULL, 0},
    {"GET", "/llm-ops/v1/training-jobs", jobs_list, ROLE_READER, ROUTE_DB, q_jobs, NULL, 0},
    {"POST", "/llm-ops/v1/training-jobs", jobs_create, ROLE_OPERATOR, ROUTE_DB | ROUTE_JSON_BODY,
     q_env, NULL, 0},
    {"GET", "/llm-ops/v1/training-jobs/{id}", jobs_get, ROLE_READER, ROUTE_DB, NULL, NULL, 0},
    {"PATCH", "/llm-ops/v1/training-jobs/{id}", jobs_update, ROLE_OPERATOR,
     ROUTE_DB | ROUTE_JSON_BODY, NULL, NULL, 0},
    {"POST", "/llm-ops/v1/training-jobs/{id}/log", jobs_log, ROLE_OPERATOR,
     ROUTE_DB | ROUTE_JSON_BODY, NULL, NULL, 0},
    {"GET", "/llm-ops/v1/outbox", outbox_list, ROLE_OPERATOR, ROUTE_DB, q_outbox, NULL, 0},
    {"POST", "/llm-ops/v1/outbox/retry", outbox_retry, ROLE_ADMIN, ROUTE_DB | ROUTE_JSON_BODY, NULL,
     NULL, 0},
    {"POST", "/llm-ops/v1/outbox/{id}/retry", outbox_retry_one, ROLE_ADMIN, ROUTE_DB, NULL, NULL,
     0},
    {"POST", "/llm-ops/v1/outbox/{id}/discard", outbox_discard, ROLE_ADMIN,
     ROUTE_DB | ROUTE_JSON_BODY, NULL, NULL, 0},
    {"GET", "/llm-ops/v1/operations", operations_list, ROLE_READER, ROUTE_DB, q_operations, NULL,
     0},
    {"GET", "/llm-ops/v1/operations/{id}", operations_get, ROLE_READER, ROUTE_DB, NULL, NULL, 0},
    {"POST", "/llm-ops/v1/operations/{id}/cancel", operations_cancel, ROLE_OPERATOR, ROUTE_DB, NULL,
     NULL, 0},
    /* Alertmanager's webhook: operator, admin, or a token of the alerts role */
    {"POST", "/llm-ops/v1/alerts", alerts_post, ROLE_OPERATOR,
     ROUTE_DB | ROUTE_JSON_BODY | ROUTE_ALERTS, NULL, NULL, 0},
    {"GET", "/llm-ops/v1/alerts", alerts_list, ROLE_READER, ROUTE_DB, q_alerts, NULL, 0},
    {"GET", "/llm-ops/v1/deployments", deployments_list, ROLE_READER, ROUTE_DB, q_deployments, NULL,
     0},
    {"POST", "/llm-ops/v1/deployments", deployments_create, ROLE_OPERATOR,
     ROUTE_DB | ROUTE_JSON_BODY, q_env, NULL, 0},
    {"GET", "/llm-ops/v1/deployments/{id}", deployments_get, ROLE_READER, ROUTE_DB, NULL, NULL, 0},
    {"PATCH", "/llm-ops/v1/deployments/{id}", deployments_update, ROLE_OPERATOR,
     ROUTE_DB | ROUTE_JSON_BODY, NULL, NULL, 0},
    {"DELETE", "/llm-ops/v1/deployments/{id}", deployments_delete, ROLE_OPERATOR, ROUTE_DB, NULL,
     NULL, 0},
    {"GET", "/llm-ops/v1/deployments/{id}/audit", deployments_audit, ROLE_READER, ROUTE_DB, NULL,
     NULL, 0},
    {"POST", "/llm-ops/v1/deployments/{id}/canary", deployments_canary_create, ROLE_OPERATOR,
     ROUTE_DB | ROUTE_JSON_BODY, NULL, NULL, 0},
    {"PATCH", "/llm-ops/v1/deployments/{id}/canary", deployments_canary_update, ROLE_OPERATOR,
     ROUTE_DB | ROUTE_JSON_BODY, NULL, NULL, 0},
    {"POST", "/llm-ops/v1/deployments/{id}/promote", deployments_promote, ROLE_OPERATOR, ROUTE_DB,
     NULL, NULL, 0},
    {"POST", "/llm-ops/v1/deployments/{id}/rollback", deployments_rollback, ROLE_OPERATOR, ROUTE_DB,
     NULL, NULL, 0},
    {"POST", "/llm-ops/v1/deployments/{id}/predict", deployments_predict, ROLE_OPERATOR,
     ROUTE_DB | ROUTE_JSON_BODY, q_predict, NULL, 0},
};

const struct route *route_table(size_t *count)
{
    *count = UTIL_ARRAY_LEN(routes);
    return routes;
}
